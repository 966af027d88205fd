/**
 * The up/down runner of the `migrate` job: the records of applied
 * migrations, {@linkcode migrationStatus}, and {@linkcode migrateUp} and
 * {@linkcode migrateDown}, which run migrations under the migration lock
 * (`_migrate_lock.ts`). Part of the `migrate` job.
 *
 * @module
 */
import { resolve } from "node:path";
import type { LogLevel } from "../src/log.ts";
import { createProgress, type Progress } from "../src/jobs/progress.ts";
import type { Clock, Key, Store } from "../src/store/types.ts";
import { systemClock } from "../src/clock.ts";
import {
  compareMigrationIds,
  findMigrations,
  importMigration,
  type LoadedMigration,
  type MigrationContext,
  type MigrationFile,
  resolveTarget,
} from "./_migrate_discover.ts";
import {
  iso,
  MigrationLock,
  type MigrationLockInfo,
  readLock,
  storeForMigration,
} from "./_migrate_lock.ts";
// MigrationError is used only inside functions, so this import cycle is harmless.
import { messageOf, MigrationError } from "../src/errors.ts";
import { yieldToEventLoop } from "../src/_yield.ts";

/** Where applied migrations are recorded: `[...MIGRATIONS_PREFIX, id]`. */
export const MIGRATIONS_PREFIX: Key = Object.freeze(["flowstate", "migrations"]);

/**
 * The record of an applied migration, at `["flowstate", "migrations", id]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { migrateUp, type MigrationRecord, migrationStatus } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/0001_seed.js`, "export function up() {}");
 * await using store = await openStore({ plugin: "memory" });
 * await migrateUp(store, dir);
 * const [state] = (await migrationStatus(store, dir)).migrations;
 * const record: Pick<MigrationRecord, "id" | "appliedAt"> = { id: state.id, appliedAt: state.appliedAt! };
 * assert.equal(record.id, "0001_seed");
 * assert.ok(record.appliedAt > 0);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
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

/**
 * One line of {@linkcode migrationStatus}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { migrateUp, type MigrationState, migrationStatus } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/0001_a.js`, "export function up() {}");
 * await using store = await openStore({ plugin: "memory" });
 * await migrateUp(store, dir);
 * await Deno.writeTextFile(`${dir}/0002_b.js`, "export function up() {}");
 * const states: MigrationState[] = (await migrationStatus(store, dir)).migrations;
 * assert.deepEqual(states.map((m) => [m.id, m.state]), [["0001_a", "applied"], ["0002_b", "pending"]]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
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

/**
 * What {@linkcode migrationStatus} reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type MigrationStatus, migrationStatus } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/0001_seed.js`, "export function up() {}");
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * const status: MigrationStatus = await migrationStatus(store, dir);
 * assert.equal(status.store, "main");
 * assert.deepEqual(status.pending, ["0001_seed"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
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

/**
 * Options shared by {@linkcode migrateUp} and {@linkcode migrateDown}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type MigrateOptions, migrateUp } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/0001_seed.js`, `export const up = ({ store }) => store.set(["seeded"], true);`);
 * await using store = await openStore({ plugin: "memory" });
 * const options: MigrateOptions = { dryRun: true, lockTtl: 60_000 };
 * const result = await migrateUp(store, dir, options);
 * assert.deepEqual(result.plan, ["0001_seed"]);
 * assert.equal(await store.get(["seeded"]), null); // a dry run writes nothing
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface MigrateOptions {
  /** Print the plan and change nothing (no lock, no records; the modules are still imported, to check them). */
  dryRun?: boolean;
  /** Stop between migrations (and inside those that honour `ctx.signal`). */
  signal?: AbortSignal;
  /** Receives log lines (default: none). */
  log?: (message: string, level?: LogLevel) => void;
  /** Progress reporter handed to migrations (default: quiet). */
  progress?: Progress;
  /** The stores' clock, for `appliedAt` and the lock's expiry (default: the system clock). */
  clock?: Clock;
  /** How long the lock lives unless renewed, in ms (default 30,000); renewed every third of it. */
  lockTtl?: number;
}

/**
 * What {@linkcode migrateUp} and {@linkcode migrateDown} report.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { migrateDown, type MigrateResult, migrateUp } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/0001_seed.js`,
 *   `export const up = ({ store }) => store.set(["seeded"], true);
 * export const down = ({ store }) => store.delete(["seeded"]);`,
 * );
 * await using store = await openStore({ plugin: "memory" });
 * const up: MigrateResult = await migrateUp(store, dir);
 * const down: MigrateResult = await migrateDown(store, dir);
 * assert.deepEqual([up.action, up.done], ["up", ["0001_seed"]]);
 * assert.deepEqual([down.action, down.done], ["down", ["0001_seed"]]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
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

const DEFAULT_LOCK_TTL = 30_000;

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
 * import { migrationStatus } from "@flowstate/core/jobs";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/0001_seed.js`, "export function up() {}");
 * await using store = await openStore({ plugin: "memory" });
 * const status = await migrationStatus(store, dir);
 * assert.equal(status.pending[0], "0001_seed");
 * assert.equal(status.lock, null);
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

interface Runner {
  store: Store;
  clock: Clock;
  log: (message: string, level?: LogLevel) => void;
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
 * import { migrateUp } from "@flowstate/core/jobs";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const up = `export const up = ({ store }) => store.set(["app", "seeded"], true);`;
 * await Deno.writeTextFile(`${dir}/0001_seed.js`, up);
 * await using store = await openStore({ plugin: "memory" });
 * const result = await migrateUp(store, dir);
 * const seeded = await store.get(["app", "seeded"]);
 * assert.equal(result.done[0], "0001_seed");
 * assert.equal(seeded?.value, true);
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
 * import { migrateDown, migrateUp } from "@flowstate/core/jobs";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
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
 * assert.equal(result.done[0], "0001_seed");
 * assert.equal(seeded, null);
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
