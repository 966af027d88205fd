/**
 * `flowstate migrate data status|pending|up|down` (data migrations) and
 * `flowstate migrate store --from A --to B` (move a whole store to another
 * backend). `data up|down` and `store` run the built-in `migrate` and
 * `migrate-store` jobs, recorded as runs of `job:migrate` and
 * `job:migrate-store` like `flowstate jobs run`; a move whose source or
 * target is the store runs are recorded in is the exception: it is not
 * recorded (a run record would change what is moved), and says so.
 * `data status|pending` only read, and record nothing.
 *
 * Exit codes: 0 ok; 1 a migration failed, the lock is held, the target is not
 * empty, verification failed; 2 bad arguments (unknown store, unknown
 * `--to`, missing `--dir`) or an invalid config; 130 (143, 129) interrupted
 * with Ctrl-C (SIGTERM, SIGHUP)
 * (a store move keeps its checkpoint: run again with `--resume`).
 *
 * `--json` output (one JSON document on stdout, stable):
 * - `data status`: `{ "store", "dir", "migrations": [{ "id", "state": "applied"|"pending"|"missing",
 *   "appliedAt", "durationMs", "checksum", "changed" }], "pending": [id], "warnings": [text],
 *   "lock": { "holder", "action", "since", "expiresAt" } | null }`
 * - `data pending`: `{ "store", "dir", "pending": [id] }`
 * - `data up|down`: `{ "action", "store", "dryRun", "plan": [id], "done": [id], "cancelled", "warnings",
 *   "runId" }`
 * - `store`: `{ "from", "to", "status": "completed"|"interrupted"|"dry-run", "resumed", "copied",
 *   "total", "skippedExpired", "batches", "copyMs", "verifyMs", "entriesPerSecond", "verified",
 *   "count", "checksum", "targetChecksum", "expiryAdjusted", "runId"? }` (no `runId` when the
 *   move is not recorded)
 *
 * @module
 */
import { resolve } from "node:path";
import {
  migrateDown,
  type MigrateResult,
  migrateUp,
  type MigrationStatus,
  migrationStatus,
} from "../../jobs/migrate.ts";
import { moveStore, type MoveStoreResult } from "../../jobs/migrate_store.ts";
import { createProgress, type Progress } from "../jobs/progress.ts";
import { openRuntime, type Runtime } from "../runtime.ts";
import { formatDuration, formatTime, printTable } from "./format.ts";
import { UsageError } from "./input.ts";
import {
  checkStore,
  type GlobalOptions,
  interruptedExitCode,
  type Interruptible,
  interruptible as interruptibleCommand,
  printWarning,
  stderrLogger,
} from "./common.ts";
import { messageOf } from "../errors.ts";
import { runRecordedJob } from "./recorded.ts";

/** Options of `migrate data status|pending`. */
export interface MigrateDataOptions {
  /** `--dir DIR`: the migrations folder, relative to the working directory (default: `migrations/` beside the config). */
  dir?: string;
  /** `--store NAME` (default: the store of the global scope). */
  store?: string;
  /** `--json`. */
  json?: boolean;
}

/** Options of `migrate data up|down`. */
export interface MigrateDataRunOptions extends MigrateDataOptions {
  /** `--dry-run`: print the plan, change nothing. */
  dryRun?: boolean;
}

/** Options of `migrate store`. */
export interface MigrateStoreCommandOptions {
  /** `--from NAME`: the store to copy (only read). */
  from: string;
  /** `--to NAME`: the store to fill. */
  to: string;
  /** `--batch N`: entries per atomic commit (default 1000). */
  batch?: number;
  /** `--resume`: continue an interrupted move. */
  resume?: boolean;
  /** `--force`: clear the target first and start over. */
  force?: boolean;
  /** `--dry-run`: print what would be done. */
  dryRun?: boolean;
  /** `--json`. */
  json?: boolean;
}

async function migrationsDir(runtime: Runtime, dir: string | undefined): Promise<string> {
  const path = dir === undefined
    ? resolve(runtime.config.baseDir, "migrations")
    : resolve(Deno.cwd(), dir);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new UsageError(
      `Cannot find the migrations folder ${path}${
        dir === undefined ? " (the default: migrations/ beside the config)" : ""
      }; create it or pass --dir DIR`,
    );
  }
  if (!info.isDirectory) {
    throw new UsageError(`Cannot use ${path} as the migrations folder: it is not a directory`);
  }
  return path;
}

function progressFor(json: boolean | undefined): Progress {
  return createProgress({ mode: json ? "quiet" : undefined });
}

/**
 * {@linkcode interruptibleCommand}, where an error thrown after a Ctrl-C (a
 * migration that stopped by throwing) is printed and reported as
 * `interrupted` with no value.
 */
async function interruptible<T>(
  what: string,
  body: (signal: AbortSignal) => Promise<T>,
): Promise<Interruptible<T> | { value: undefined; interrupted: true; exitCode: number }> {
  let signal: AbortSignal | undefined;
  try {
    return await interruptibleCommand(`Stopping ${what} at the next consistent point`, (s) => {
      signal = s;
      return body(s);
    });
  } catch (err) {
    if (!signal?.aborted || err instanceof RangeError) throw err;
    console.error(`error: ${messageOf(err)}`);
    return { value: undefined, interrupted: true, exitCode: interruptedExitCode(signal) };
  }
}

function printWarnings(warnings: readonly string[]): void {
  for (const warning of warnings) console.error(`warning: ${warning}`);
}

/** `migrate data status [--dir DIR] [--store NAME] [--json]`: every migration, applied or not. */
export async function migrateDataStatus(
  options: MigrateDataOptions,
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  checkStore(runtime, options.store, "--store");
  const dir = await migrationsDir(runtime, options.dir);
  const status = await migrationStatus(await runtime.store(options.store), dir);
  if (options.json) {
    console.log(JSON.stringify(status));
    return 0;
  }
  printStatus(status, runtime.config.timezone);
  return 0;
}

function printStatus(status: MigrationStatus, tz: string): void {
  if (status.migrations.length === 0) {
    console.error(`No migrations in ${status.dir}`);
  } else {
    printTable(
      ["ID", "STATE", "APPLIED AT", "DURATION"],
      status.migrations.map((m) => [
        m.id,
        m.changed ? `${m.state} (changed)` : m.state,
        formatTime(m.appliedAt, tz),
        formatDuration(m.durationMs),
      ]),
    );
  }
  printWarnings(status.warnings);
  if (status.lock !== null) {
    console.error(
      `lock: held by ${status.lock.holder} (${status.lock.action}) since ${
        formatTime(status.lock.since, tz)
      }, until ${formatTime(status.lock.expiresAt, tz)} unless renewed`,
    );
  }
  const applied = status.migrations.length - status.pending.length;
  console.error(
    `Store "${status.store}": ${applied} applied, ${status.pending.length} pending (${status.dir})`,
  );
}

/** `migrate data pending [--dir DIR] [--store NAME] [--json]`: ids of unapplied migrations, one a line. */
export async function migrateDataPending(
  options: MigrateDataOptions,
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  checkStore(runtime, options.store, "--store");
  const dir = await migrationsDir(runtime, options.dir);
  const status = await migrationStatus(await runtime.store(options.store), dir);
  if (options.json) {
    console.log(JSON.stringify({ store: status.store, dir: status.dir, pending: status.pending }));
    return 0;
  }
  for (const id of status.pending) console.log(id);
  printWarnings(status.warnings);
  if (status.pending.length === 0) {
    console.error(`No pending migrations: store "${status.store}" is up to date`);
  }
  return 0;
}

async function runData(
  action: "up" | "down",
  options: MigrateDataRunOptions & { to?: string; step?: number },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  checkStore(runtime, options.store, "--store");
  const dir = await migrationsDir(runtime, options.dir);
  const store = await runtime.store(options.store);
  // A bad --to or --step is a usage error: plan first (a dry run changes nothing).
  try {
    if (action === "up") await migrateUp(store, dir, { dryRun: true, to: options.to });
    else await migrateDown(store, dir, { dryRun: true, step: options.step });
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(err.message, { cause: err });
    throw err;
  }
  const { result, record, failureCode } = await runRecordedJob<MigrateResult>(
    runtime,
    "migrate",
    {
      options: {
        action,
        dir,
        ...(options.store !== undefined ? { store: options.store } : {}),
        ...(options.to !== undefined ? { to: options.to } : {}),
        ...(options.step !== undefined ? { step: options.step } : {}),
      },
      dryRun: options.dryRun,
      quiet: options.json || global.quiet,
      // "Applying 0002_b…" is progress, which the summary below only counts; a dry run's
      // plan is the summary itself.
      infoLogs: !options.dryRun,
      notice: "Stopping the migrations at the next consistent point",
    },
  );
  if (result === null) return failureCode;
  if (options.json) {
    console.log(JSON.stringify({ ...result, runId: record.id }));
  } else {
    printRun(result);
  }
  return record.status === "succeeded" && !result.cancelled ? 0 : failureCode;
}

function printRun(result: MigrateResult): void {
  const verb = result.action === "up" ? "apply" : "revert";
  const past = result.action === "up" ? "Applied" : "Reverted";
  const where = `store "${result.store}"`;
  if (result.dryRun) {
    // Its warnings were printed as the job logged them.
    if (result.plan.length === 0) console.log(`Nothing to ${verb} in ${where}`);
    else {
      console.log(`Would ${verb} in ${where}, in this order:`);
      for (const id of result.plan) console.log(`  ${id}`);
    }
    return;
  }
  if (result.plan.length === 0) {
    console.log(
      result.action === "up"
        ? `Nothing to apply: ${where} is up to date`
        : `Nothing to revert: no migration is applied in ${where}`,
    );
    return;
  }
  if (result.done.length > 0) {
    console.log(
      `${past} ${result.done.length} migration(s) in ${where}: ${result.done.join(", ")}`,
    );
  }
  if (result.cancelled) {
    const rest = result.plan.filter((id) => !result.done.includes(id));
    console.log(
      `Cancelled; not ${result.action === "up" ? "applied" : "reverted"}: ${rest.join(", ")}`,
    );
  }
}

/** `migrate data up [--to ID] [--dir DIR] [--store NAME] [--dry-run] [--json]`. */
export function migrateDataUp(
  options: MigrateDataRunOptions & { to?: string },
  global: GlobalOptions,
): Promise<number> {
  return runData("up", options, global);
}

/** `migrate data down [--step N] [--dir DIR] [--store NAME] [--dry-run] [--json]`. */
export function migrateDataDown(
  options: MigrateDataRunOptions & { step?: number },
  global: GlobalOptions,
): Promise<number> {
  return runData("down", options, global);
}

/** `migrate store --from NAME --to NAME [--batch N] [--resume] [--force] [--dry-run] [--json]`. */
export async function migrateStoreCommand(
  options: MigrateStoreCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  checkStore(runtime, options.from, "--from");
  checkStore(runtime, options.to, "--to");
  if (options.from === options.to) {
    throw new UsageError(
      `Cannot move store "${options.from}" to itself: --from and --to must differ`,
    );
  }
  if (options.resume && options.force) {
    throw new UsageError("--resume and --force contradict each other: --force starts over");
  }
  const source = await runtime.store(options.from);
  const target = await runtime.store(options.to);
  const quiet = options.json || global.quiet;
  const records = runtime.config.records;
  let outcome: { value: MoveStoreResult | undefined; interrupted: boolean; exitCode: number };
  if (records !== options.from && records !== options.to) {
    const { result, record, failureCode } = await runRecordedJob<MoveStoreResult>(
      runtime,
      "migrate-store",
      {
        options: {
          from: options.from,
          to: options.to,
          ...(options.batch !== undefined ? { batchSize: options.batch } : {}),
          resume: options.resume ?? false,
          force: options.force ?? false,
        },
        dryRun: options.dryRun,
        quiet,
        notice: "Stopping the move at the next consistent point",
      },
    );
    if (result === null) return failureCode;
    outcome = { value: result, interrupted: failureCode !== 1, exitCode: failureCode };
    if (options.json) {
      console.log(JSON.stringify({ ...result, runId: record.id }));
      return result.status === "interrupted" ? failureCode : 0;
    }
  } else {
    // Runs are recorded in the move's source or target: a run record there would change
    // what is moved or verified, so this move is not recorded.
    if (!quiet) {
      console.error(
        `note: not recorded as a job run: runs are recorded in store "${records}", ` +
          `the move's ${records === options.from ? "source" : "target"}`,
      );
    }
    outcome = await moveUnrecorded();
  }
  return printMove(outcome);

  async function moveUnrecorded() {
    try {
      return await interruptible(
        "the move",
        (signal) =>
          moveStore(source, target, {
            batchSize: options.batch,
            resume: options.resume,
            force: options.force,
            dryRun: options.dryRun,
            signal,
            progress: progressFor(quiet),
            log: stderrLogger(true),
            clock: runtime.clock,
          }),
      );
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(err.message, { cause: err });
      throw err;
    }
  }

  function printMove(
    outcome: { value: MoveStoreResult | undefined; interrupted: boolean; exitCode: number },
  ): number {
    const result = outcome.value;
    if (result === undefined) return outcome.exitCode;
    if (options.json) {
      console.log(JSON.stringify(result));
    } else if (result.status === "dry-run") {
      console.log(
        `Dry run: would copy about ${result.copied.toLocaleString("en-US")} entries from ` +
          `"${result.from}" to "${result.to}" in ${result.batches} batch(es)${
            result.resumed ? `, resuming after ${result.total.toLocaleString("en-US")}` : ""
          }; nothing was changed`,
      );
    } else if (result.alreadyMoved) {
      console.log(
        `Already moved: nothing to do; "${result.to}" holds the same ${
          result.count!.toLocaleString("en-US")
        } entries as "${result.from}" (checksum ${result.checksum})`,
      );
    } else if (result.status === "interrupted") {
      console.log(
        `Interrupted after ${
          result.total.toLocaleString("en-US")
        } entries; the checkpoint is saved ` +
          `in "${result.to}": run the same command with --resume to continue`,
      );
    } else {
      console.log(
        `Moved ${
          result.total.toLocaleString("en-US")
        } entries from "${result.from}" (${source.plugin}) ` +
          `to "${result.to}" (${target.plugin})${result.resumed ? " (resumed)" : ""}: ` +
          `${result.copied.toLocaleString("en-US")} copied by this run in ${
            formatDuration(result.copyMs)
          } (${result.entriesPerSecond.toLocaleString("en-US")} entries/s), verified in ${
            formatDuration(result.verifyMs)
          }: ${result.count!.toLocaleString("en-US")} entries, checksum ${result.checksum}${
            result.skippedExpired > 0 ? `; ${result.skippedExpired} expired entries skipped` : ""
          }`,
      );
    }
    if (result.status === "interrupted") return outcome.interrupted ? outcome.exitCode : 1;
    return 0;
  }
}
