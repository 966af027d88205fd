/**
 * Finding and loading migration modules: the authoring API a module uses
 * ({@linkcode defineMigration}), the files in a migrations folder in order
 * ({@linkcode findMigrations}), and importing and checking one of them.
 * Part of the `migrate` job (`jobs/migrate.ts` re-exports the public names).
 *
 * @module
 */
import { resolve } from "node:path";
import { toFileUrl } from "../src/_path.ts";
import type { LogLevel } from "../src/log.ts";
import type { Progress } from "../src/jobs/progress.ts";
import type { Clock, Store } from "../src/store/types.ts";
// MigrationError is used only inside functions, so this import cycle is harmless.
import { MigrationError } from "../src/errors.ts";
import { importFailure, importModule } from "../src/loader.ts";

/**
 * What a migration's `up` and `down` receive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { migrateUp } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/0001_seed.ts`,
 *   `import type { MigrationContext } from "@flowstate/core/jobs";
 * export async function up(ctx: MigrationContext) {
 *   ctx.log(\`seeding for \${ctx.id}\`);
 *   await ctx.store.set(["app", "seeded-by"], ctx.id);
 * }
 * `,
 * );
 * await using store = await openStore({ plugin: "memory" });
 * const lines: string[] = [];
 * await migrateUp(store, dir, { log: (message) => lines.push(message) });
 * assert.equal((await store.get(["app", "seeded-by"]))?.value, "0001_seed");
 * assert.ok(lines.some((line) => line.includes("seeding for 0001_seed")));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface MigrationContext {
  /** The migration's id (its file name without the extension, like `0002_add_index`). */
  id: string;
  /** The store being migrated. */
  store: Store;
  /** Write a log line. */
  log(message: string, level?: LogLevel): void;
  /** Report progress of long work. */
  progress: Progress;
  /** Aborted on Ctrl-C, cancellation, or when the lock is lost: stop at a consistent point. */
  signal: AbortSignal;
  /** The clock the stores use. */
  clock: Clock;
}

/**
 * What {@linkcode defineMigration} takes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineMigration, type MigrationDefinition } from "@flowstate/core/jobs";
 *
 * const definition: MigrationDefinition = {
 *   description: "add a default theme",
 *   up: ({ store }) => store.set(["settings", "theme"], "light").then(() => {}),
 *   down: ({ store }) => store.delete(["settings", "theme"]).then(() => {}),
 * };
 * const migration = defineMigration(definition); // a migration module's default export
 * assert.equal(migration.description, "add a default theme");
 * ```
 */
export interface MigrationDefinition {
  /** One line shown while the migration runs. */
  description?: string;
  /** Apply the migration. */
  up(ctx: MigrationContext): Promise<void> | void;
  /** Revert it. A migration without `down` cannot be reverted. */
  down?(ctx: MigrationContext): Promise<void> | void;
}

/**
 * A migration made by {@linkcode defineMigration}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineMigration, type Migration } from "@flowstate/core/jobs";
 *
 * const migration: Migration = defineMigration({ up: () => {} });
 * assert.equal(migration.kind, "flowstate.migration");
 * ```
 */
export interface Migration extends MigrationDefinition {
  /** Marks the object as a Flowstate migration. */
  readonly kind: "flowstate.migration";
}

/**
 * Define a data migration; a migration module's default export is the result
 * (exporting `up` and `down` functions by name works too). `up` must apply
 * the change and `down` undo it, each through `ctx.store`, honouring
 * `ctx.signal` in long loops.
 *
 * @example
 * ```ts
 * // migrations/0002_rename_counter.ts
 * import { defineMigration } from "@flowstate/core/jobs";
 * import assert from "node:assert/strict";
 *
 * const migration = defineMigration({
 *   description: "rename the counter key",
 *   async up({ store }) {
 *     const old = await store.get(["flow", "counter", "n"]);
 *     if (old === null) return;
 *     await store.atomic().check(old.key, old.version).delete(old.key)
 *       .set(["flow", "counter", "count"], old.value).commit();
 *   },
 * });
 * assert.equal(migration.kind, "flowstate.migration");
 * // In the module itself: export default migration;
 * ```
 */
export function defineMigration(definition: MigrationDefinition): Migration {
  if (typeof definition?.up !== "function") {
    throw new TypeError("Cannot define migration: up must be a function");
  }
  if (definition.down !== undefined && typeof definition.down !== "function") {
    throw new TypeError("Cannot define migration: down must be a function when given");
  }
  if (definition.description !== undefined && typeof definition.description !== "string") {
    throw new TypeError("Cannot define migration: description must be a string when given");
  }
  return Object.freeze({ ...definition, kind: "flowstate.migration" as const });
}

/** A migration module found in the migrations folder. */
export interface MigrationFile {
  /** The file name without the extension: `0002_add_index`. */
  id: string;
  /** The absolute path of the module. */
  path: string;
  /** SHA-256 (hex) of its source. */
  checksum: string;
}

const FILE_PATTERN = /^(\d+)_([A-Za-z0-9_-]+)\.(?:ts|mts|js|mjs)$/;

/** Order ids by their number (numerically), then by the whole id. */
export function compareMigrationIds(a: string, b: string): number {
  const na = numberOf(a);
  const nb = numberOf(b);
  if (na.length !== nb.length) return na.length - nb.length;
  if (na !== nb) return na < nb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The number an id starts with, without leading zeros (`"0002_x"` → `"2"`). */
export function numberOf(id: string): string {
  const digits = /^\d+/.exec(id)?.[0] ?? "";
  return digits.replace(/^0+(?=\d)/, "");
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The migration modules in `dir`, in order, with their checksums. Files that
 * look like modules but are not named `<number>_<name>.ts` are listed in
 * `ignored`. A missing folder is a {@linkcode MigrationError}.
 */
export async function findMigrations(
  dir: string,
): Promise<{ files: MigrationFile[]; ignored: string[] }> {
  dir = resolve(dir);
  const files: MigrationFile[] = [];
  const ignored: string[] = [];
  const seen = new Map<string, string>();
  try {
    for await (const item of Deno.readDir(dir)) {
      if (!item.isFile && !item.isSymlink) continue;
      const name = item.name;
      if (!/\.(?:ts|mts|js|mjs)$/.test(name) || name.endsWith(".d.ts")) continue;
      if (/_test\.(?:ts|mts|js|mjs)$/.test(name) || name.startsWith("_")) continue;
      if (!FILE_PATTERN.test(name)) {
        ignored.push(name);
        continue;
      }
      const id = name.replace(/\.[^.]+$/, "");
      if (seen.has(id)) {
        throw new MigrationError(
          `Cannot read migrations in ${dir}: ${
            seen.get(id)
          } and ${name} have the same id "${id}"; ` +
            `remove or rename one`,
        );
      }
      seen.set(id, name);
      const path = resolve(dir, name);
      files.push({ id, path, checksum: await sha256Hex(await Deno.readFile(path)) });
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new MigrationError(
        `Cannot read migrations: the folder ${dir} does not exist; create it, or point "dir" (--dir) at the migrations`,
        { cause: err },
      );
    }
    throw err;
  }
  files.sort((a, b) => compareMigrationIds(a.id, b.id));
  ignored.sort();
  return { files, ignored };
}

/** Resolve `--to`: an exact id, or a number matching exactly one migration's number. */
export function resolveTarget(to: string, files: readonly MigrationFile[]): MigrationFile {
  const exact = files.find((f) => f.id === to);
  if (exact) return exact;
  if (/^\d+$/.test(to)) {
    const matches = files.filter((f) => numberOf(f.id) === numberOf(to));
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) {
      throw new RangeError(
        `Cannot migrate up to "${to}": several migrations have that number (${
          matches.map((f) => f.id).join(", ")
        }); give the full id`,
      );
    }
  }
  const known = files.map((f) => f.id);
  throw new RangeError(
    `Cannot migrate up to "${to}": there is no such migration; the migrations are ${
      known.length === 0 ? "(none)" : known.join(", ")
    }`,
  );
}

/** A migration module, imported and checked. */
export interface LoadedMigration {
  id: string;
  description: string | undefined;
  up: MigrationDefinition["up"];
  down: MigrationDefinition["down"];
}

/** Import a migration module and check its exports; a bad module is a {@linkcode MigrationError}. */
export async function importMigration(file: MigrationFile): Promise<LoadedMigration> {
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(toFileUrl(file.path).href);
  } catch (err) {
    const reason = importFailure(err);
    throw new MigrationError(`Cannot load migration ${file.id} (${file.path}): ${reason}`, {
      cause: err,
    });
  }
  const def = (mod.default as Partial<Migration> | undefined)?.kind === "flowstate.migration"
    ? mod.default as Migration
    : mod as Partial<MigrationDefinition>;
  if (typeof def.up !== "function") {
    throw new MigrationError(
      `Cannot load migration ${file.id} (${file.path}): it exports no up() function; ` +
        `export async function up(ctx) and down(ctx), or export default defineMigration({ up, down })`,
    );
  }
  if (def.down !== undefined && typeof def.down !== "function") {
    throw new MigrationError(
      `Cannot load migration ${file.id} (${file.path}): its down export is not a function`,
    );
  }
  return {
    id: file.id,
    description: typeof def.description === "string" ? def.description : undefined,
    up: def.up.bind(def),
    down: def.down?.bind(def),
  };
}
