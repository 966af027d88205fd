/**
 * The `migrate` job: data migrations. A migration is a module in a folder
 * (default `./migrations`, relative to the config's directory) named like
 * `0001_add_index.ts`, exporting `up(ctx)` and `down(ctx)`, either as named
 * exports or as the default export made by {@linkcode defineMigration}:
 *
 * ```ts ignore
 * // migrations/0002_rename_counter.ts
 * export const description = "rename the counter key";
 *
 * export async function up({ store }) {
 *   const old = await store.get(["flow", "counter", "n"]);
 *   if (old === null) return;
 *   await store.atomic().check(old.key, old.version).delete(old.key)
 *     .set(["flow", "counter", "count"], old.value).commit();
 * }
 *
 * export async function down({ store }) {
 *   // … the reverse
 * }
 * ```
 *
 * (`export default defineMigration({ description, up, down })` is the typed
 * equivalent.)
 *
 * - Order: by the number before the first `_` (numerically), then by name.
 *   The id of a migration is its file name without the extension.
 * - Record: each applied migration is recorded in the target store at
 *   `["flowstate", "migrations", id]` as {@linkcode MigrationRecord}
 *   (`checksum` is the SHA-256 of the module's source when it was applied).
 *   The record is written only after `up` resolves, in a commit that also
 *   checks the lock, so a migration that throws is never recorded.
 * - Lock: `up` and `down` hold a lease at `["flowstate", "locks", "migrate"]`,
 *   taken with compare-and-set (`ifVersion: null`) and an expiry (`lockTtl`,
 *   default 30 s), renewed every third of that while migrations run and
 *   deleted at the end. A second `up` fails at once with a message naming
 *   the holder; a lock left by a killed process expires by itself.
 * - `down` reverts the most recently numbered applied migrations (by id, the
 *   reverse of the order `up` applies them) and deletes their records.
 * - The lease is renewed on a timer: a migration that blocks the event loop
 *   for longer than `lockTtl` (synchronous work) lets it expire, and is then
 *   not recorded ("Lost the migration lock"). Raise `lockTtl` for those.
 * - A migration is not atomic with its record: if the process dies after `up`
 *   changed data but before the record is written, the next `up` runs it
 *   again. Write migrations so that running them twice is harmless.
 *
 * @module
 */
import { resolve } from "node:path";
import { setImmediate } from "node:timers";
import { z } from "zod";
import { toFileUrl } from "../src/_path.ts";
import { durationProblem, parseDuration } from "../src/duration.ts";
import { defineJob, type Job, type JobLogLevel, type JobResult } from "../src/jobs/job.ts";
import { createProgress, type Progress } from "../src/jobs/progress.ts";
import { Lease, type LeaseInfo } from "../src/store/lease.ts";
import type {
  AtomicOperation,
  Clock,
  JsonValue,
  Key,
  ListIterator,
  ListOptions,
  Store,
} from "../src/store/types.ts";
import { systemClock } from "../src/clock.ts";

/** What a migration's `up` and `down` receive. */
export interface MigrationContext {
  /** The migration's id (its file name without the extension, like `0002_add_index`). */
  id: string;
  /** The store being migrated. */
  store: Store;
  /** Write a log line. */
  log(message: string, level?: JobLogLevel): void;
  /** Report progress of long work. */
  progress: Progress;
  /** Aborted on Ctrl-C, cancellation, or when the lock is lost: stop at a consistent point. */
  signal: AbortSignal;
  /** The clock the stores use. */
  clock: Clock;
}

/** What {@linkcode defineMigration} takes. */
export interface MigrationDefinition {
  /** One line shown while the migration runs. */
  description?: string;
  /** Apply the migration. */
  up(ctx: MigrationContext): Promise<void> | void;
  /** Revert it. A migration without `down` cannot be reverted. */
  down?(ctx: MigrationContext): Promise<void> | void;
}

/** A migration made by {@linkcode defineMigration}. */
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
 * import { defineMigration } from "@flowstate/core";
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
 * if (migration.kind !== "flowstate.migration") throw new Error("not a migration");
 * export default migration;
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

/** Where applied migrations are recorded: `[...MIGRATIONS_PREFIX, id]`. */
export const MIGRATIONS_PREFIX: Key = Object.freeze(["flowstate", "migrations"]);

/** The lease key `up` and `down` hold while they run. */
export const MIGRATION_LOCK_KEY: Key = Object.freeze(["flowstate", "locks", "migrate"]);

/** The record of an applied migration, at `["flowstate", "migrations", id]`. */
export interface MigrationRecord {
  /** The migration's id. */
  id: string;
  /** When it was applied (ms since the epoch, from the store's clock). */
  appliedAt: number;
  /** SHA-256 (hex) of the module's source when it was applied. */
  checksum: string;
  /** How long `up` took, in milliseconds. */
  durationMs: number;
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

/** One line of {@linkcode migrationStatus}. */
export interface MigrationState {
  /** The migration's id. */
  id: string;
  /**
   * `applied`: recorded and its module is present; `pending`: a module not
   * recorded yet; `missing`: recorded, but its module is no longer there.
   */
  state: "applied" | "pending" | "missing";
  /** When it was applied, or `null`. */
  appliedAt: number | null;
  /** How long `up` took, or `null`. */
  durationMs: number | null;
  /** Checksum of the module now (`null` when missing). */
  checksum: string | null;
  /** Whether the module changed since it was applied (its checksum differs from the record's). */
  changed: boolean;
}

/** Who holds the migration lock. */
export interface MigrationLockInfo {
  /** Host and process, like `"build-1 pid 4242"`. */
  holder: string;
  /** `"up"` or `"down"`. */
  action: string;
  /** When it was taken (ms since the epoch). */
  since: number;
  /** When it expires unless renewed (ms since the epoch). */
  expiresAt: number | null;
}

/** What {@linkcode migrationStatus} reports. */
export interface MigrationStatus {
  /** The store's name. */
  store: string;
  /** The migrations folder (absolute). */
  dir: string;
  /** Every migration, applied or not, in order. */
  migrations: MigrationState[];
  /** Ids of the pending migrations, in the order `up` applies them. */
  pending: string[];
  /** Changed modules, missing modules, migrations that would run out of order, ignored files. */
  warnings: string[];
  /** The current holder of the migration lock, or `null`. */
  lock: MigrationLockInfo | null;
}

/** Options shared by {@linkcode migrateUp} and {@linkcode migrateDown}. */
export interface MigrateOptions {
  /** Print the plan and change nothing (no lock, no records; the modules are still imported, to check them). */
  dryRun?: boolean;
  /** Stop between migrations (and inside those that honour `ctx.signal`). */
  signal?: AbortSignal;
  /** Receives log lines (default: none). */
  log?: (message: string, level?: JobLogLevel) => void;
  /** Progress reporter handed to migrations (default: quiet). */
  progress?: Progress;
  /** The stores' clock, for `appliedAt` and the lock's expiry (default: the system clock). */
  clock?: Clock;
  /** How long the lock lives unless renewed, in ms (default 30,000); renewed every third of it. */
  lockTtl?: number;
}

/** What {@linkcode migrateUp} and {@linkcode migrateDown} report. */
export interface MigrateResult {
  /** `"up"` or `"down"`. */
  action: "up" | "down";
  /** The store's name. */
  store: string;
  /** Whether this was a dry run. */
  dryRun: boolean;
  /** Ids to apply (`up`) or revert (`down`), in that order. */
  plan: string[];
  /** Ids applied or reverted (empty for a dry run). */
  done: string[];
  /** Whether the run stopped early because its signal was aborted. */
  cancelled: boolean;
  /** Changed or missing modules noticed on the way. */
  warnings: string[];
}

/**
 * A failure of a migration run: a migration threw, the lock is held or was
 * lost, a module is missing.
 *
 * @example
 * ```ts
 * import { MigrationError, migrateUp, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const err = await migrateUp(store, "./no-such-folder").catch((e) => e);
 * if (!(err instanceof MigrationError) || err.name !== "MigrationError") {
 *   throw new Error(`expected a MigrationError, got ${err}`);
 * }
 * ```
 */
export class MigrationError extends Error {
  /** Create the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MigrationError";
  }
}

const FILE_PATTERN = /^(\d+)_([A-Za-z0-9_-]+)\.(?:ts|mts|js|mjs)$/;
const DEFAULT_LOCK_TTL = 30_000;
/** A migration's store calls let the event loop run at least this often (ms of real time). */
const YIELD_EVERY_MS = 50;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Order ids by their number (numerically), then by the whole id. */
export function compareMigrationIds(a: string, b: string): number {
  const na = numberOf(a);
  const nb = numberOf(b);
  if (na.length !== nb.length) return na.length - nb.length;
  if (na !== nb) return na < nb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function numberOf(id: string): string {
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

async function readRecords(store: Store): Promise<Map<string, MigrationRecord>> {
  const records = new Map<string, MigrationRecord>();
  for await (const entry of store.list<MigrationRecord>({ prefix: MIGRATIONS_PREFIX })) {
    if (entry.key.length !== MIGRATIONS_PREFIX.length + 1) continue;
    const id = entry.key[entry.key.length - 1];
    const v = entry.value as Partial<MigrationRecord> | null;
    records.set(id, {
      id,
      appliedAt: typeof v?.appliedAt === "number" ? v.appliedAt : 0,
      checksum: typeof v?.checksum === "string" ? v.checksum : "",
      durationMs: typeof v?.durationMs === "number" ? v.durationMs : 0,
    });
  }
  return records;
}

async function readLock(store: Store): Promise<MigrationLockInfo | null> {
  const held = await Lease.read<Partial<MigrationLockInfo>>(store, MIGRATION_LOCK_KEY);
  return held === null ? null : lockInfo(held);
}

/** A lock entry as {@linkcode MigrationLockInfo}, whatever process wrote it. */
function lockInfo(held: LeaseInfo<Partial<MigrationLockInfo>>): MigrationLockInfo {
  const v = held.value ?? {};
  return {
    holder: typeof v.holder === "string" ? v.holder : "an unknown process",
    action: typeof v.action === "string" ? v.action : "?",
    since: typeof v.since === "number" ? v.since : 0,
    expiresAt: held.expiresAt,
  };
}

function iso(ms: number | null): string {
  return ms === null || !Number.isFinite(ms) ? "never" : new Date(ms).toISOString();
}

function shortSum(checksum: string): string {
  return checksum === "" ? "unknown" : `${checksum.slice(0, 12)}…`;
}

function changedWarning(id: string, record: MigrationRecord, file: MigrationFile): string {
  return `Migration ${id} changed since it was applied at ${iso(record.appliedAt)} ` +
    `(checksum ${shortSum(record.checksum)} then, ${shortSum(file.checksum)} now); ` +
    `editing an applied migration does not run it again: add a new migration instead`;
}

function missingWarning(id: string, dir: string, record: MigrationRecord): string {
  return `Migration ${id} is recorded as applied (at ${iso(record.appliedAt)}) but has no ` +
    `module in ${dir}; "down" cannot revert it until the file is restored`;
}

/**
 * What is applied and what is pending in `store`, with warnings for modules
 * that changed since they were applied, applied migrations whose module is
 * gone, pending migrations numbered before an applied one, and ignored files.
 * Reads only: takes no lock and imports no module.
 *
 * @example
 * ```ts
 * import { migrationStatus, openStore } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/0001_seed.js`, "export function up() {}");
 * await using store = await openStore({ plugin: "memory" });
 * const status = await migrationStatus(store, dir);
 * if (status.pending[0] !== "0001_seed" || status.lock !== null) throw new Error("not pending");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function migrationStatus(store: Store, dir: string): Promise<MigrationStatus> {
  dir = resolve(dir);
  const { files, ignored } = await findMigrations(dir);
  const records = await readRecords(store);
  const byId = new Map(files.map((f) => [f.id, f]));
  const ids = [...new Set([...files.map((f) => f.id), ...records.keys()])].sort(
    compareMigrationIds,
  );
  const warnings: string[] = [];
  const migrations: MigrationState[] = [];
  for (const id of ids) {
    const file = byId.get(id);
    const record = records.get(id);
    if (record === undefined) {
      migrations.push({
        id,
        state: "pending",
        appliedAt: null,
        durationMs: null,
        checksum: file!.checksum,
        changed: false,
      });
      continue;
    }
    const changed = file !== undefined && file.checksum !== record.checksum;
    if (file === undefined) warnings.push(missingWarning(id, dir, record));
    else if (changed) warnings.push(changedWarning(id, record, file));
    migrations.push({
      id,
      state: file === undefined ? "missing" : "applied",
      appliedAt: record.appliedAt,
      durationMs: record.durationMs,
      checksum: file?.checksum ?? null,
      changed,
    });
  }
  const pending = migrations.filter((m) => m.state === "pending").map((m) => m.id);
  const lastApplied = migrations.findLast((m) => m.state !== "pending");
  if (lastApplied !== undefined) {
    const early = pending.filter((id) => compareMigrationIds(id, lastApplied.id) < 0);
    if (early.length > 0) {
      warnings.push(
        `Pending migration${early.length === 1 ? "" : "s"} ${early.join(", ")} ` +
          `${early.length === 1 ? "is" : "are"} numbered before ${lastApplied.id}, ` +
          `which is applied: "up" will apply ${early.length === 1 ? "it" : "them"} out of order`,
      );
    }
  }
  for (const name of ignored) {
    warnings.push(
      `Ignored ${name} in ${dir}: a migration's file name must look like 0001_name.ts`,
    );
  }
  return { store: store.name, dir, migrations, pending, warnings, lock: await readLock(store) };
}

/** Resolve `--to`: an exact id, or a number matching exactly one migration's number. */
function resolveTarget(to: string, files: readonly MigrationFile[]): MigrationFile {
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

interface LoadedMigration {
  id: string;
  description: string | undefined;
  up: MigrationDefinition["up"];
  down: MigrationDefinition["down"];
}

async function importMigration(file: MigrationFile): Promise<LoadedMigration> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(toFileUrl(file.path).href);
  } catch (err) {
    const reason = messageOf(err).split("\n")[0].replace(/\.+$/, "");
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

function holderName(): string {
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch {
    // Without --allow-sys the host name is unknown; the pid still tells processes apart.
  }
  return `${host} pid ${Deno.pid}`;
}

/** What the migration lock's entry holds. */
interface MigrationLockHolder {
  holder: string;
  action: "up" | "down";
  since: number;
}

/**
 * The migration lock: a {@linkcode Lease} at {@linkcode MIGRATION_LOCK_KEY}
 * in the target store, checked by every record write. It is renewed every
 * third of its lifetime, measured on the stores' clock, two ways: by a timer
 * (for migrations that wait on I/O), and before any call a migration makes
 * through `ctx.store` (for migrations whose store calls never yield to the
 * event loop, such as loops over a SQLite store). The lease runs renewals
 * and record writes one at a time, so they never race on its version.
 */
class MigrationLock {
  #lease: Lease<MigrationLockHolder>;
  #log: (message: string, level?: JobLogLevel) => void;

  private constructor(
    lease: Lease<MigrationLockHolder>,
    log: (message: string, level?: JobLogLevel) => void,
  ) {
    this.#lease = lease;
    this.#log = log;
    lease.keepAlive({ onError: (err) => this.#renewFailed(err) });
  }

  static async acquire(
    store: Store,
    action: "up" | "down",
    options: { ttl: number; clock: Clock; log: (message: string, level?: JobLogLevel) => void },
  ): Promise<MigrationLock> {
    const value: MigrationLockHolder = {
      holder: holderName(),
      action,
      since: options.clock.now(),
    };
    const lostReason = () =>
      new MigrationError(
        `Lost the migration lock of store "${store.name}": it expired or was taken over ` +
          `(lockTtl ${options.ttl} ms); the migration was stopped`,
      );
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await Lease.acquire(store, MIGRATION_LOCK_KEY, value, {
        ttl: options.ttl,
        clock: options.clock,
        lostReason,
      });
      if (result.ok) return new MigrationLock(result.lease, options.log);
      if (result.holder === null) continue; // It expired or was released just now: try again.
      const held = lockInfo(result.holder);
      throw new MigrationError(
        `Cannot migrate ${action} store "${store.name}": another migration holds the lock ` +
          `(${held.holder}, running "${held.action}" since ${
            iso(held.since)
          }; the lock expires at ` +
          `${iso(held.expiresAt)} unless renewed). Wait for it to finish; if that process died, ` +
          `the lock expires by itself`,
      );
    }
    throw new MigrationError(
      `Cannot migrate ${action} store "${store.name}": the migration lock changed hands repeatedly; try again`,
    );
  }

  /** Aborted, with a {@linkcode MigrationError}, when the lock is lost. */
  get signal(): AbortSignal {
    return this.#lease.signal;
  }

  #renewFailed(err: unknown): void {
    // A transient store error: the next renewal tries again; a record write
    // after the lease expired fails its check.
    this.#log(`Cannot renew the migration lock: ${messageOf(err)}`, "warn");
  }

  /**
   * Before a migration's store call: fail if the lock is lost, renew it if a
   * third of its lifetime passed since the last renewal.
   */
  beforeStoreCall(): Promise<void> | undefined {
    const lease = this.#lease;
    if (lease.lost) return Promise.reject(lease.signal.reason);
    if (!lease.due) return undefined;
    return lease.renewIfDue().catch((err) => this.#renewFailed(err)).then(() => {
      if (lease.lost) throw lease.signal.reason;
    });
  }

  /** Commit `build`'s writes together with a check that the lock is still ours. */
  async commit(build: (op: AtomicOperation) => void): Promise<void> {
    const lease = this.#lease;
    if (lease.lost) throw lease.signal.reason;
    const result = await lease.commit(build);
    // The lock's version is the commit's only check: a conflict means the lock was lost.
    if (!result.ok) throw lease.signal.reason;
  }

  async release(): Promise<void> {
    try {
      await this.#lease.release();
    } catch (err) {
      // Do not hide the outcome of the migrations: the lease expires by itself.
      this.#log(
        `Cannot release the migration lock: ${
          messageOf(err)
        }; it expires within ${this.#lease.ttl} ms`,
        "warn",
      );
    }
  }
}

/**
 * The store a migration sees: the target store, with the lock renewed (when
 * due) before each call, the event loop given a turn every 50 ms, and
 * `close` refused (the run still needs the store).
 */
function storeForMigration(store: Store, lock: MigrationLock): Store {
  let yieldedAt = performance.now();
  const guard = async <T>(call: () => Promise<T>): Promise<T> => {
    if (performance.now() - yieldedAt > YIELD_EVERY_MS) {
      // So that Ctrl-C reaches ctx.signal during long loops over a synchronous backend.
      await yieldToEventLoop();
      yieldedAt = performance.now();
    }
    await lock.beforeStoreCall();
    return await call();
  };
  const atomic = (): AtomicOperation => {
    const inner = store.atomic();
    const op: AtomicOperation = {
      check: (key, version) => (inner.check(key, version), op),
      set: (key, value, options) => (inner.set(key, value, options), op),
      delete: (key) => (inner.delete(key), op),
      clear: (prefix, bounds) => (inner.clear(prefix, bounds), op),
      commit: () => guard(() => inner.commit()),
    };
    return op;
  };
  const list = <T = JsonValue>(options?: ListOptions): ListIterator<T> => {
    const inner = store.list<T>(options);
    const it = {
      get cursor() {
        return inner.cursor;
      },
      next: () => guard(() => inner.next()),
      return: (value?: unknown) => inner.return!(value as undefined),
      throw: (err?: unknown) => inner.throw!(err),
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it as unknown as ListIterator<T>;
  };
  const refuseClose = () =>
    Promise.reject(
      new TypeError(`Cannot close store "${store.name}" from a migration: the run still uses it`),
    );
  return {
    name: store.name,
    plugin: store.plugin,
    location: store.location,
    capabilities: store.capabilities,
    get: (key) => guard(() => store.get(key)),
    getMany: (keys) => guard(() => store.getMany(keys)),
    set: (key, value, options) => guard(() => store.set(key, value, options)),
    delete: (key, options) => guard(() => store.delete(key, options)),
    list,
    count: (prefix, bounds) => guard(() => store.count(prefix, bounds)),
    query: (query) => guard(() => store.query(query)),
    atomic,
    clear: (prefix, bounds) => guard(() => store.clear(prefix, bounds)),
    purgeExpired: () => guard(() => store.purgeExpired()),
    compact: () => guard(() => store.compact()),
    close: refuseClose,
    [Symbol.asyncDispose]: refuseClose,
  } as Store;
}

/** Let timers and signal handlers run (store calls over SQLite never yield on their own). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface Runner {
  store: Store;
  clock: Clock;
  log: (message: string, level?: JobLogLevel) => void;
  progress: Progress;
  signal: AbortSignal;
  ttl: number;
}

function runnerFor(store: Store, options: MigrateOptions): Runner {
  const ttl = options.lockTtl ?? DEFAULT_LOCK_TTL;
  if (!Number.isFinite(ttl) || ttl < 10) {
    throw new RangeError(`Cannot migrate: lockTtl must be at least 10 ms (got ${ttl})`);
  }
  return {
    store,
    clock: options.clock ?? systemClock,
    log: options.log ?? (() => {}),
    progress: options.progress ?? createProgress({ mode: "quiet" }),
    signal: options.signal ?? new AbortController().signal,
    ttl,
  };
}

/** How a migration that threw ended: cancelled when the caller's signal was aborted. */
function failedOr(runner: Runner): string {
  return runner.signal.aborted ? "was cancelled" : "failed";
}

function contextFor(
  runner: Runner,
  id: string,
  lock: MigrationLock,
  signal: AbortSignal,
): MigrationContext {
  return {
    id,
    store: storeForMigration(runner.store, lock),
    log: (message, level) => runner.log(`${id}: ${message}`, level),
    progress: runner.progress,
    signal,
    clock: runner.clock,
  };
}

/**
 * Apply the pending migrations in `dir` to `store`, in order, up to and
 * including `to` (an id, or a number that names one migration) when given.
 * Under the migration lock; each migration is recorded as soon as its `up`
 * resolves. A migration that throws is not recorded and the ones after it
 * are not applied: a {@linkcode MigrationError} naming it is thrown. When
 * `signal` is aborted, stops before the next migration (`cancelled: true`).
 *
 * @example
 * ```ts
 * import { migrateUp, openStore } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * const up = `export const up = ({ store }) => store.set(["app", "seeded"], true);`;
 * await Deno.writeTextFile(`${dir}/0001_seed.js`, up);
 * await using store = await openStore({ plugin: "memory" });
 * const result = await migrateUp(store, dir);
 * const seeded = await store.get(["app", "seeded"]);
 * if (result.done[0] !== "0001_seed" || seeded?.value !== true) throw new Error("not applied");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function migrateUp(
  store: Store,
  dir: string,
  options: MigrateOptions & { to?: string } = {},
): Promise<MigrateResult> {
  dir = resolve(dir);
  const runner = runnerFor(store, options);
  const { files } = await findMigrations(dir);
  const target = options.to === undefined ? undefined : resolveTarget(options.to, files);

  const plan = async (): Promise<{ plan: MigrationFile[]; warnings: string[] }> => {
    const records = await readRecords(store);
    const byId = new Map(files.map((f) => [f.id, f]));
    const warnings: string[] = [];
    for (const [id, record] of records) {
      const file = byId.get(id);
      if (file === undefined) warnings.push(missingWarning(id, dir, record));
      else if (file.checksum !== record.checksum) warnings.push(changedWarning(id, record, file));
    }
    const pending = files.filter((f) =>
      !records.has(f.id) && (target === undefined || compareMigrationIds(f.id, target.id) <= 0)
    );
    return { plan: pending, warnings };
  };

  const result: MigrateResult = {
    action: "up",
    store: store.name,
    dryRun: options.dryRun === true,
    plan: [],
    done: [],
    cancelled: false,
    warnings: [],
  };
  if (options.dryRun) {
    const planned = await plan();
    result.plan = planned.plan.map((f) => f.id);
    result.warnings = planned.warnings;
    for (const file of planned.plan) await importMigration(file); // validate the modules
    return result;
  }

  const lock = await MigrationLock.acquire(store, "up", {
    ttl: runner.ttl,
    clock: runner.clock,
    log: runner.log,
  });
  try {
    const planned = await plan();
    result.plan = planned.plan.map((f) => f.id);
    result.warnings = planned.warnings;
    for (const warning of planned.warnings) runner.log(warning, "warn");
    const loaded: LoadedMigration[] = [];
    for (const file of planned.plan) loaded.push(await importMigration(file));
    const signal = AbortSignal.any([runner.signal, lock.signal]);
    for (const [i, migration] of loaded.entries()) {
      await yieldToEventLoop();
      if (signal.aborted) {
        if (lock.signal.aborted) throw lock.signal.reason;
        result.cancelled = true;
        runner.log(
          `Cancelled before ${migration.id}; not applied: ${result.plan.slice(i).join(", ")}`,
        );
        break;
      }
      const file = planned.plan[i];
      runner.log(
        `Applying ${migration.id}${migration.description ? ` (${migration.description})` : ""}`,
      );
      const started = performance.now();
      try {
        await migration.up(contextFor(runner, migration.id, lock, signal));
        if (lock.signal.aborted) throw lock.signal.reason;
      } catch (err) {
        const rest = result.plan.slice(i + 1);
        throw new MigrationError(
          `Migration ${migration.id} ${failedOr(runner)}: ${
            messageOf(err)
          }; it was not recorded as applied` +
            (rest.length > 0
              ? `, and ${rest.join(", ")} ${rest.length === 1 ? "was" : "were"} not applied`
              : "") +
            (result.done.length > 0 ? ` (applied before it: ${result.done.join(", ")})` : ""),
          { cause: err },
        );
      }
      const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      const record: MigrationRecord = {
        id: migration.id,
        appliedAt: runner.clock.now(),
        checksum: file.checksum,
        durationMs,
      };
      try {
        await lock.commit((op) => op.set([...MIGRATIONS_PREFIX, migration.id], record));
      } catch (err) {
        throw new MigrationError(
          `Migration ${migration.id} ran but could not be recorded: ${messageOf(err)}; ` +
            `it will run again on the next "up"`,
          { cause: err },
        );
      }
      result.done.push(migration.id);
      runner.log(`Applied ${migration.id} in ${Math.round(durationMs)} ms`);
    }
  } finally {
    await lock.release();
  }
  return result;
}

/**
 * Revert the `step` (default 1) most recent applied migrations of `store` in
 * reverse order (highest id first), running each module's `down` and deleting
 * its record. Every module is loaded before anything is reverted: a missing
 * module or one without `down` is a {@linkcode MigrationError} that names it.
 *
 * @example
 * ```ts
 * import { migrateDown, migrateUp, openStore } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/0001_seed.js`, [
 *   `export const up = ({ store }) => store.set(["app", "seeded"], true);`,
 *   `export const down = ({ store }) => store.delete(["app", "seeded"]);`,
 * ].join("\n"));
 * await using store = await openStore({ plugin: "memory" });
 * await migrateUp(store, dir);
 * const result = await migrateDown(store, dir);
 * const seeded = await store.get(["app", "seeded"]);
 * if (result.done[0] !== "0001_seed" || seeded !== null) throw new Error("not reverted");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function migrateDown(
  store: Store,
  dir: string,
  options: MigrateOptions & { step?: number } = {},
): Promise<MigrateResult> {
  dir = resolve(dir);
  const step = options.step ?? 1;
  if (!Number.isInteger(step) || step < 1) {
    throw new RangeError(`Cannot migrate down: step must be an integer >= 1 (got ${step})`);
  }
  const runner = runnerFor(store, options);
  const { files } = await findMigrations(dir);
  const byId = new Map(files.map((f) => [f.id, f]));
  const result: MigrateResult = {
    action: "down",
    store: store.name,
    dryRun: options.dryRun === true,
    plan: [],
    done: [],
    cancelled: false,
    warnings: [],
  };

  const prepare = async (): Promise<LoadedMigration[]> => {
    const records = await readRecords(store);
    const ids = [...records.keys()].sort(compareMigrationIds).reverse().slice(0, step);
    result.plan = ids;
    const loaded: LoadedMigration[] = [];
    for (const id of ids) {
      const record = records.get(id)!;
      const file = byId.get(id);
      if (file === undefined) {
        throw new MigrationError(
          `Cannot revert migration ${id}: its module is missing from ${dir} (it was applied at ` +
            `${iso(record.appliedAt)}, checksum ${shortSum(record.checksum)}); restore the file ` +
            `to revert it. Nothing was reverted`,
        );
      }
      if (file.checksum !== record.checksum) {
        result.warnings.push(changedWarning(id, record, file));
      }
      const migration = await importMigration(file);
      if (migration.down === undefined) {
        throw new MigrationError(
          `Cannot revert migration ${id}: ${file.path} has no down() function. Nothing was reverted`,
        );
      }
      loaded.push(migration);
    }
    return loaded;
  };

  if (options.dryRun) {
    await prepare();
    return result;
  }
  const lock = await MigrationLock.acquire(store, "down", {
    ttl: runner.ttl,
    clock: runner.clock,
    log: runner.log,
  });
  try {
    const loaded = await prepare();
    for (const warning of result.warnings) runner.log(warning, "warn");
    const signal = AbortSignal.any([runner.signal, lock.signal]);
    for (const [i, migration] of loaded.entries()) {
      await yieldToEventLoop();
      if (signal.aborted) {
        if (lock.signal.aborted) throw lock.signal.reason;
        result.cancelled = true;
        runner.log(
          `Cancelled before reverting ${migration.id}; still applied: ${
            result.plan.slice(i).join(", ")
          }`,
        );
        break;
      }
      runner.log(
        `Reverting ${migration.id}${migration.description ? ` (${migration.description})` : ""}`,
      );
      const started = performance.now();
      try {
        await migration.down!(contextFor(runner, migration.id, lock, signal));
        if (lock.signal.aborted) throw lock.signal.reason;
      } catch (err) {
        const rest = result.plan.slice(i + 1);
        throw new MigrationError(
          `Reverting migration ${migration.id} ${failedOr(runner)}: ${
            messageOf(err)
          }; it is still recorded ` +
            `as applied` +
            (rest.length > 0
              ? `, and ${rest.join(", ")} ${rest.length === 1 ? "was" : "were"} not reverted`
              : "") +
            (result.done.length > 0 ? ` (reverted before it: ${result.done.join(", ")})` : ""),
          { cause: err },
        );
      }
      try {
        await lock.commit((op) => op.delete([...MIGRATIONS_PREFIX, migration.id]));
      } catch (err) {
        throw new MigrationError(
          `Migration ${migration.id} was reverted but its record could not be deleted: ` +
            `${messageOf(err)}; it still shows as applied`,
          { cause: err },
        );
      }
      result.done.push(migration.id);
      runner.log(`Reverted ${migration.id} in ${Math.round(performance.now() - started)} ms`);
    }
  } finally {
    await lock.release();
  }
  return result;
}

const durationSchema = z.union([z.number(), z.string()]).superRefine((value, ctx) => {
  const problem = durationProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.message });
});

/** Options of the `migrate` job. */
export interface MigrateJobOptions {
  /** `status` and `pending` only read; `up` applies; `down` reverts (default `up`). */
  action: "status" | "pending" | "up" | "down";
  /** The migrations folder, relative to the config's directory (default `./migrations`). */
  dir: string;
  /** The store to migrate (default: the global scope's store). */
  store?: string;
  /** `up` only: apply up to and including this migration (an id or its number). */
  to?: string;
  /** `down` only: how many migrations to revert (default 1). */
  step: number;
  /** How long the lock lives unless renewed: `"30s"` or ms (default `"30s"`). */
  lockTtl: string | number;
}

const optionsSchema: z.ZodType<MigrateJobOptions> = z.strictObject({
  action: z.enum(["status", "pending", "up", "down"]),
  dir: z.string().min(1),
  store: z.string().min(1).optional(),
  to: z.string().min(1).optional(),
  step: z.number().int().min(1),
  lockTtl: durationSchema,
}).superRefine((o, ctx) => {
  if (o.to !== undefined && o.action !== "up") {
    ctx.addIssue({ code: "custom", path: ["to"], message: `"to" applies to action "up" only` });
  }
}) as z.ZodType<MigrateJobOptions>;

/** Default options of the `migrate` job. */
export const defaults = {
  action: "up",
  dir: "./migrations",
  step: 1,
  lockTtl: "30s",
} satisfies Partial<MigrateJobOptions>;

function statusJson(status: MigrationStatus): JobResult {
  return JSON.parse(JSON.stringify(status));
}

/**
 * The `migrate` job: applies (`up`), reverts (`down`) or reports (`status`,
 * `pending`) the data migrations in `dir` for one store.
 */
const migrateJob: Job<MigrateJobOptions> = defineJob<MigrateJobOptions>({
  name: "migrate",
  description:
    "data migrations: apply (up) or revert (down) the modules in ./migrations under a lock, recording each",
  optionsSchema,
  defaults,
  async run(ctx, options) {
    const store = await ctx.store(options.store);
    const dir = resolve(ctx.runtime.config.baseDir, options.dir);
    if (options.action === "status" || options.action === "pending") {
      const status = await migrationStatus(store, dir);
      for (const warning of status.warnings) ctx.log(warning, "warn");
      return options.action === "status"
        ? statusJson(status)
        : { store: status.store, dir: status.dir, pending: status.pending };
    }
    const common: MigrateOptions = {
      dryRun: ctx.dryRun,
      signal: ctx.signal,
      log: (message, level) => ctx.log(message, level),
      progress: ctx.progress,
      clock: ctx.clock,
      lockTtl: parseDuration(options.lockTtl, "lockTtl"),
    };
    const result = options.action === "up"
      ? await migrateUp(store, dir, { ...common, to: options.to })
      : await migrateDown(store, dir, { ...common, step: options.step });
    if (result.dryRun) {
      ctx.log(
        result.plan.length === 0
          ? `Nothing to ${options.action === "up" ? "apply" : "revert"}`
          : `Would ${options.action === "up" ? "apply" : "revert"}: ${result.plan.join(", ")}`,
      );
    }
    return JSON.parse(JSON.stringify(result));
  },
});

export default migrateJob;
