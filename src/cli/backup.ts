/**
 * `flowstate backup [--store NAME | --all] [--out FILE] [--since FILE] [--keep N]
 * [--keep-for AGE]`, `flowstate backup prune [--store NAME | --all] [--keep N]
 * [--keep-for AGE] [--dir DIR] [--dry-run]` and
 * `flowstate restore <file> [increments...] --store NAME [--force]`
 * (`--at TIME --into NAME [--from STORE]`: a point-in-time restore). These run the built-in
 * `backup` and `restore` jobs, recorded as runs of `job:backup` and
 * `job:restore` like `flowstate jobs run` (a backup leaves its own run
 * record out; a restore into the records store keeps only its own run
 * record beside the backup's content).
 *
 * `backup prune` is not recorded as a run (it writes nothing to a store); a
 * backup's pruning is part of its run's result. Exit codes of `backup prune`:
 * 0 ok; 1 a file could not be deleted; 2 bad arguments; 130 (143, 129)
 * stopped between two files.
 *
 * Exit codes: 0 ok; 1 the backup or restore failed (a damaged backup file, a
 * target store that is not empty without `--force`, a store that kept
 * changing during a snapshot); 2 bad arguments (unknown store, `--store`
 * with `--all`, a backup file that does not exist) or an invalid config; 130
 * (143, 129) interrupted with Ctrl-C (SIGTERM, SIGHUP) (a backup leaves nothing behind; a restore keeps
 * its marker: run the same restore again to finish it).
 *
 * `--json` output (one JSON document on stdout, stable):
 * - `backup`: `{ "files": [{ "store", "plugin", "file", "entries", "bytes", "sha256",
 *   "consistency", "attempts", "feedSeq"?, "fromSeq"?, "toSeq"? }], "entries", "bytes", "dryRun",
 *   "pruned", "warnings", "notCovered", "runId" }` (`feedSeq`: a full backup's feed position;
 *   `fromSeq`/`toSeq`: an increment's range; `pruned`: as `backup prune`'s, or `null` without
 *   `--keep`/`--keep-for`; `notCovered`: `[{ "path", "what", "files", "bytes", "advice" }]`)
 * - `backup prune`: `{ "dir", "stores", "removed": [{ "store", "file", "name", "kind",
 *   "createdAt", "bytes" }], "bytes", "kept": [{ …, "reason" }], "skipped": [{ "file", "reason" }],
 *   "failed": [{ "file", "error" }], "dryRun", "cancelled" }`
 * - `restore`: `{ "file", "store", "entries", "restored", "expired", "cleared", "resumedFrom",
 *   "interruptedRunId", "sha256", "cancelled", "changes", "feedSeq", "dryRun", "runId" }`
 *   (`changes`: replayed from increments and the live feed; `feedSeq`: the source's feed
 *   position the restored store matches, or `null`)
 *
 * `runId` is the run recorded for the command (`flowstate runs show <runId>`).
 *
 * A flag left out is taken from the backup job's options in the config
 * (`jobs.backup.options`, what the daemon's backup runs with; see
 * `backup_policy.ts`): `--keep`/`--keep-for` replace its `keep` and
 * `keepFor` together, `--store`/`--all` its `store` and `all`, `--out` its
 * `out` (taken only for the stores it backs up), `--per-key` its
 * `consistency`; `backup prune` looks where its `out` writes unless `--dir`.
 * Both say which options applied and where from: a `policy: keep 7
 * (jobs.backup.options, flowstate.yaml:9:30), store main (--store)` line
 * first (when an option came from the config, or a retention policy
 * applies), and with `--json` a `policy` field, `{ "<option>": { "value",
 * "from": "--keep" | "jobs.backup.options", "at"?: "flowstate.yaml:9:30" } }`
 * (`backup`: also `notes`, when the config's `out` was not this backup's, or
 * `--no-config-options` left the config's options out). Paths from the
 * config are its folder's, paths from flags the working directory's; the
 * policy gives both absolute.
 *
 * @module
 */
import { resolve } from "node:path";
import type {
  BackupResult,
  BackupStoresOptions,
  NotCovered,
  PruneBackupsResult,
} from "../../jobs/backup.ts";
import type { RestoreResult } from "../../jobs/restore.ts";
import { formatBytes } from "../archive_format.ts";
import { printable } from "./format.ts";
import { openRuntime, type Runtime } from "../runtime.ts";
import type { RunRecord } from "../records/types.ts";
import { judgeRun, MIN_ABANDONED_MS } from "../records/heartbeat.ts";
import { UsageError } from "./input.ts";
import {
  checkStore,
  type GlobalOptions,
  interruptible,
  printError,
  printWarning,
  progressMode,
  stderrLogger,
} from "./common.ts";
import { createProgress } from "../jobs/progress.ts";
import { messageOf, StoreReadOnlyError } from "../errors.ts";
import { runRecordedJob } from "./recorded.ts";
import { parsePointInTime } from "./run_filters.ts";
import { parseDuration } from "../duration.ts";
import { backupJobOptions, policyLine, pruneJobTarget } from "./backup_policy.ts";

/** Options of `flowstate backup`. */
export interface BackupCommandOptions {
  /** `--store NAME` (default: the store of the global scope). */
  store?: string;
  /** `--all`: every configured store, one file each. */
  all?: boolean;
  /** `--out PATH`: the file to write (with `--all`, the directory). */
  out?: string;
  /** `--per-key`: one pass, no snapshot check (for a store that is never quiet). */
  perKey?: boolean;
  /** `--since FILE`: an incremental backup, the changes after that backup. */
  since?: string;
  /** `--keep N`: then keep only the N newest backups of each store backed up. */
  keep?: number;
  /** `--keep-for AGE`: then keep only the backups younger than AGE (`30d`). */
  keepFor?: string;
  /** `false` with `--no-config-options`: leave `jobs.backup.options` out. */
  configOptions?: boolean;
  /** `--dry-run`: say what would be written. */
  dryRun?: boolean;
  /** `--json`. */
  json?: boolean;
}

/** Options of `flowstate backup prune`. */
export interface BackupPruneCommandOptions {
  /** `--store NAME` (default: the store of the global scope). */
  store?: string;
  /** `--all`: every configured store. */
  all?: boolean;
  /** `--keep N`: keep the N newest backups of each store. */
  keep?: number;
  /** `--keep-for AGE`: keep the backups younger than AGE. */
  keepFor?: string;
  /** `--dir DIR`: where the backups are (default `<home>/backups`). */
  dir?: string;
  /** `false` with `--no-config-options`: leave `jobs.backup.options` out. */
  configOptions?: boolean;
  /** `--dry-run`: say what would be deleted, delete nothing. */
  dryRun?: boolean;
  /** `--json`. */
  json?: boolean;
}

/**
 * `--keep-for AGE` checked before anything opens: a duration with a unit
 * (`30` alone would be 30 ms, and delete every older backup).
 */
function checkKeepFor(what: string, keepFor: string | undefined): void {
  if (keepFor === undefined) return;
  const text = keepFor.trim();
  if (/^-?\d+(?:\.\d+)?$/.test(text)) {
    throw new UsageError(
      `${what}: --keep-for ${keepFor} has no unit: add one, like --keep-for ${text}d (days), ` +
        `${text}h or ${text}m`,
    );
  }
  try {
    parseDuration(keepFor, "--keep-for");
  } catch (err) {
    throw new UsageError(`${what}: ${(err as Error).message}`);
  }
}

/** The lines saying what a prune deleted (or would) and kept, for people. */
function pruneLines(pruned: PruneBackupsResult): string[] {
  const lines: string[] = [];
  const verb = pruned.dryRun ? "would delete" : "deleted";
  for (const f of pruned.removed) {
    lines.push(
      `${verb} ${f.file} (${
        f.kind === "full" ? "full backup" : "increment"
      } of store "${f.store}", taken ${f.createdAt}, ${formatBytes(f.bytes)})`,
    );
  }
  for (const store of pruned.stores) {
    const removed = pruned.removed.filter((f) => f.store === store).length;
    const kept = pruned.kept.filter((f) => f.store === store && f.reason !== "foreign").length;
    const foreign = pruned.kept.filter((f) => f.store === store && f.reason === "foreign").length;
    const bytes = pruned.removed.filter((f) => f.store === store)
      .reduce((sum, f) => sum + f.bytes, 0);
    lines.push(
      `store "${store}": ${removed} backup${removed === 1 ? "" : "s"} ${
        pruned.dryRun ? "would be deleted" : "deleted"
      } (${formatBytes(bytes)} ${
        pruned.dryRun ? "to free" : "freed"
      }), ${kept} kept in ${pruned.dir}${
        foreign > 0 ? ` (and ${foreign} not named by Flowstate, never pruned)` : ""
      }${pruned.cancelled ? " (stopped before the end)" : ""}`,
    );
  }
  return lines;
}

/** The line saying what a backup does not hold. */
function notCoveredLine(n: NotCovered): string {
  return `not in the backup: ${n.path} (${n.files} file${n.files === 1 ? "" : "s"}, ${
    formatBytes(n.bytes)
  }): ${n.what}; ${n.advice}`;
}

/**
 * `restore --force` into the store that records runs clears their records: a
 * run another process is running there (its heartbeat fresh) would then fail
 * to record its end; into another store, it replaces what running flows read
 * and write there. Refused, naming them, until those processes stop (or
 * their heartbeats go stale: the process died).
 */
async function refuseOverLiveRuns(runtime: Runtime, store: string, file: string): Promise<void> {
  let records;
  try {
    records = await runtime.records();
  } catch {
    return; // a store that does not open is the restore's to report
  }
  const now = Date.now();
  const live: RunRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await records.listRuns({ status: "running", limit: 1000, cursor });
    for (const run of page.runs) {
      // Its process alive on this machine (even stalled): live; dead on this machine: not.
      const judged = judgeRun(run, now, MIN_ABANDONED_MS);
      if (judged.state === "stalled") live.push(run);
      else if (judged.state === "abandoned" && judged.why.by === "process") continue;
      else if (now - (run.heartbeatAt ?? run.startedAt) < MIN_ABANDONED_MS) live.push(run);
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
  if (live.length === 0) return;
  const shown = live.slice(0, 5).map((r) =>
    `${r.id} (${r.flowId}, heartbeat ${
      Math.round((now - (r.heartbeatAt ?? r.startedAt)) / 1000)
    } s ago)`
  ).join(", ");
  const isRecords = store === runtime.config.records;
  throw new UsageError(
    `Cannot restore ${file} into store "${store}" with --force: ${live.length} run${
      live.length === 1 ? " is" : "s are"
    } running${isRecords ? " and recorded there" : " in this project"}: ${shown}${
      live.length > 5 ? ", …" : ""
    }. ${
      isRecords
        ? "--force would delete their records under them"
        : "--force would replace what they read and write there as they run (their writes lost " +
          "or mixed with the backup's)"
    }; stop the workers, daemons and runs using this store first ` +
      `(runs whose process died are not counted once their heartbeat is ${
        MIN_ABANDONED_MS / 1000
      } s old)`,
  );
}

/** Options of `flowstate restore`. */
export interface RestoreCommandOptions {
  /** `--store NAME` (or `--into NAME`): the store to restore into (required). */
  store?: string;
  /** `--into NAME`: the same as `--store`. */
  into?: string;
  /** Increment files after the full backup, in order. */
  increments?: string[];
  /** `--at TIME`: a point-in-time restore (ISO 8601, or ms since the epoch). */
  at?: string;
  /** `--at-seq N`: a point-in-time restore up to a sequence number. */
  atSeq?: string;
  /** `--from STORE`: the live store whose feed continues the files. */
  from?: string;
  /** `--force`: delete everything in a non-empty target first. */
  force?: boolean;
  /** `--dry-run`: verify the file and check the target, write nothing. */
  dryRun?: boolean;
  /** `--json`. */
  json?: boolean;
}

/** `backup [--store NAME | --all] [--out PATH] [--per-key] [--dry-run] [--json]`. */
export async function backupCommand(
  options: BackupCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  if (options.all && options.store !== undefined) {
    throw new UsageError("Cannot back up: give --store NAME or --all, not both");
  }
  if (options.all && options.since !== undefined) {
    throw new UsageError(
      "Cannot back up: --since (an incremental backup) takes one store: give --store NAME, not --all",
    );
  }
  checkKeepFor("Cannot back up", options.keepFor);
  if (options.since !== undefined) {
    try {
      await Deno.stat(resolve(options.since));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      throw new UsageError(
        `Cannot back up: --since ${options.since}: the file does not exist; give the last backup of the store`,
      );
    }
  }
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  checkStore(runtime, options.store);
  // The flags over the config's jobs.backup.options (what the daemon's backup runs with).
  const { options: jobOptions, policy, notes, moved } = await backupJobOptions(
    runtime.config,
    options,
  );
  for (const note of moved) printWarning({ code: "PATH_MOVED", message: note });
  if (typeof jobOptions.store === "string") checkStore(runtime, jobOptions.store);
  if (jobOptions.all === true && jobOptions.since !== undefined) {
    const all = policy.all;
    throw new UsageError(
      `Cannot back up: --since (an incremental backup) takes one store, and ${
        all.from === "--all" ? "--all" : `${all.from}${all.at ? ` (${all.at})` : ""} has all: true`
      } backs up every store: give --store NAME`,
    );
  }
  const quiet = options.json || global.quiet;
  const notice = "Stopping the backup at the next consistent point";
  let started = false;
  let done: { result: BackupResult; runId: string | null; code: number };
  try {
    const { result, record, failureCode } = await runRecordedJob<BackupResult>(runtime, "backup", {
      options: jobOptions,
      dryRun: options.dryRun,
      quiet,
      notice,
      onStart: () => (started = true),
    });
    if (result === null) return failureCode;
    done = { result, runId: record.id, code: record.status === "succeeded" ? 0 : failureCode };
  } catch (err) {
    // A store on a read-only file system can be backed up, but its run cannot be recorded.
    const records = runtime.config.records;
    if (started || !(err instanceof StoreReadOnlyError) || err.store !== records) throw err;
    if (!quiet) {
      console.error(
        `note: not recorded as a job run: store "${records}", where runs are recorded, is read-only`,
      );
    }
    const { backupStores } = await import("../../jobs/backup.ts");
    const { value, interrupted, exitCode } = await interruptible(
      notice,
      (signal) =>
        backupStores(runtime, {
          ...jobOptions as BackupStoresOptions,
          dryRun: options.dryRun ?? false,
          signal,
          progress: createProgress({ mode: progressMode(quiet) }),
          log: stderrLogger(true),
        }).catch((error) => {
          if (!signal.aborted) throw error;
          printError(messageOf(error));
          return null;
        }),
    );
    if (value === null) return interrupted ? exitCode : 1;
    done = { result: value, runId: null, code: 0 };
  }
  const { result, runId, code } = done;
  if (options.json) {
    console.log(
      JSON.stringify({ ...result, runId, policy, ...(notes.length > 0 ? { notes } : {}) }),
    );
  } else {
    const said = policyLine(policy, notes);
    if (said !== undefined) console.log(said);
    for (const f of result.files) {
      // An increment holds changes (sets and deletes) since its base, not the store's entries.
      const what = f.fromSeq === undefined
        ? `${f.entries} ${f.entries === 1 ? "entry" : "entries"}`
        : `${f.entries} ${f.entries === 1 ? "change" : "changes"} (after #${f.fromSeq}, ` +
          `up to #${f.toSeq})`;
      console.log(
        result.dryRun
          ? `${f.store}: would write ${what} to ${f.file}`
          : `${f.store}: ${what} → ${f.file} (${formatBytes(f.bytes)}, sha256 ${f.sha256})`,
      );
    }
    // A result recorded by an older Flowstate has neither field.
    if (result.pruned) { for (const line of pruneLines(result.pruned)) console.log(line); }
    for (const n of result.notCovered ?? []) console.log(notCoveredLine(n));
  }
  warnSkipped(result.pruned?.skipped ?? []);
  return code;
}

/** A file named like a backup that a prune left alone (unreadable, not a backup): said, not kept quietly. */
function warnSkipped(skipped: readonly { file: string; reason: string }[]): void {
  for (const s of skipped) {
    console.error(
      printable(`warning: left alone: ${s.file} is named like a backup but ${s.reason}`),
    );
  }
}

/** `backup prune [--store NAME | --all] [--keep N] [--keep-for AGE] [--dir DIR] [--dry-run] [--json]`. */
export async function backupPruneCommand(
  options: BackupPruneCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  const what = "Cannot prune backups";
  if (options.all && options.store !== undefined) {
    throw new UsageError(`${what}: give --store NAME or --all, not both`);
  }
  checkKeepFor(what, options.keepFor);
  await using runtime = await openRuntime({
    config: global.config,
    onWarning: printWarning,
    createStores: false,
  });
  checkStore(runtime, options.store);
  // The flags over the config's jobs.backup.options (what the daemon's backup prunes by).
  const target = await pruneJobTarget(runtime.config, runtime.home, options);
  for (const note of target.moved) printWarning({ code: "PATH_MOVED", message: note });
  if (target.keep === undefined && target.keepFor === undefined) {
    throw new UsageError(
      `${what}: say what to keep: --keep N (the N newest backups of each store), ` +
        `--keep-for AGE (those younger than AGE, like 30d), or both; or give the backup job ` +
        `a policy in the config (jobs.backup.options: { keep: 7, keepFor: 30d }), which this ` +
        `command then follows`,
    );
  }
  if (target.store !== undefined) checkStore(runtime, target.store);
  const stores = target.all
    ? [...runtime.storeNames]
    : [target.store ?? runtime.config.scopes.global];
  const dir = target.dir;
  const { pruneBackups } = await import("../../jobs/backup.ts");
  const { value: result, interrupted, exitCode } = await interruptible(
    "Stopping the prune before the next file",
    (signal) =>
      pruneBackups(dir, {
        stores,
        keep: target.keep,
        keepFor: target.keepFor,
        dryRun: options.dryRun ?? false,
        signal,
        now: runtime.clock.now(),
        project: runtime.home,
      }),
  );
  if (options.json) {
    console.log(JSON.stringify({ ...result, policy: target.policy }));
  } else {
    const said = policyLine(target.policy, target.notes);
    if (said !== undefined) console.log(said);
    for (const line of pruneLines(result)) console.log(line);
  }
  warnSkipped(result.skipped);
  for (const f of result.failed) printError(`Cannot delete ${f.file}: ${f.error}`);
  if (result.failed.length > 0) return 1;
  return interrupted && result.cancelled ? exitCode : 0;
}

/** `restore <file> --store NAME [--force] [--dry-run] [--json]`. */
export async function restoreCommand(
  file: string,
  options: RestoreCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  const path = resolve(file);
  const increments = options.increments ?? [];
  for (const f of [file, ...increments]) {
    try {
      const info = await Deno.stat(resolve(f));
      if (!info.isFile) throw new UsageError(`Cannot restore ${f}: it is not a file`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      throw new UsageError(`Cannot restore ${f}: the file does not exist`);
    }
  }
  if (options.store !== undefined && options.into !== undefined && options.store !== options.into) {
    throw new UsageError(`Cannot restore ${file}: give --store or --into, not both`);
  }
  const target = options.store ?? options.into;
  if (target === undefined) {
    throw new UsageError(
      `Cannot restore ${file}: say which store to restore into with --store NAME (or --into NAME)`,
    );
  }
  if (options.at !== undefined && options.atSeq !== undefined) {
    throw new UsageError(`Cannot restore ${file}: give --at or --at-seq, not both`);
  }
  let atSeq: number | undefined;
  if (options.atSeq !== undefined) {
    atSeq = Number(options.atSeq);
    if (!/^\d+$/.test(options.atSeq)) {
      throw new UsageError(
        `Cannot restore ${file}: --at-seq ${options.atSeq} is not a sequence number (an integer >= 0)`,
      );
    }
  }
  const now = Date.now();
  // --at takes what `state get --at` takes: #<seq> is --at-seq.
  if (options.at !== undefined) parsePointInTime(options.at, "--at", now); // refused before opening
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  // A time without an offset is one in the config's timezone, the one every table shows.
  const point = options.at === undefined
    ? undefined
    : parsePointInTime(options.at, "--at", now, runtime.config.timezone);
  if (point !== undefined && "seq" in point) atSeq = point.seq;
  const at = point !== undefined && "time" in point ? point.time : undefined;
  if (at !== undefined && at > now + 60_000) {
    // Most likely a typo (2062 for 2026): the store cannot be restored as it will be.
    throw new UsageError(
      `Cannot restore ${file}: --at ${options.at} is in the future (now is ${
        new Date(now).toISOString()
      }); give a past time, or leave --at out for the latest state`,
    );
  }
  if ((at !== undefined || atSeq !== undefined) && options.force) {
    throw new UsageError(
      `Cannot restore ${file}: a point-in-time restore (--at) goes into a new, empty store only; --force is refused`,
    );
  }
  checkStore(runtime, target);
  if (options.from !== undefined) checkStore(runtime, options.from);
  if (options.force && !options.dryRun) await refuseOverLiveRuns(runtime, target, file);
  const { result, record, failureCode } = await runRecordedJob<RestoreResult>(
    runtime,
    "restore",
    {
      options: {
        file: path,
        store: target,
        force: options.force ?? false,
        ...(increments.length > 0 ? { increments: increments.map((f) => resolve(f)) } : {}),
        ...(at !== undefined ? { at } : {}),
        ...(atSeq !== undefined ? { atSeq } : {}),
        ...(options.from !== undefined ? { from: options.from } : {}),
      },
      dryRun: options.dryRun,
      quiet: options.json || global.quiet,
      notice: "Stopping the restore at the next consistent point",
    },
  );
  if (result === null) return failureCode;
  if (options.json) {
    console.log(JSON.stringify({ ...result, dryRun: options.dryRun ?? false, runId: record.id }));
  } else if (options.dryRun) {
    console.log(`${file} is sound: ${result.entries} entries; nothing written (dry run)`);
  } else if (result.cancelled) {
    console.log(
      `Restored ${
        result.resumedFrom + result.restored
      } of ${result.entries} entries into store "${result.store}" before stopping; run the same command again to finish`,
    );
  } else {
    console.log(
      `Restored store "${result.store}" from ${file}${
        increments.length > 0 ? ` and ${increments.length} increment(s)` : ""
      }: it holds ${result.holds} entries${
        result.changes > 0
          ? ` (${result.changes} changes replayed${
            result.deleted > 0 ? `, ${result.deleted} of them deletes` : ""
          })`
          : ""
      }${
        result.feedSeq !== null && (options.at !== undefined || atSeq !== undefined)
          ? `, as of change ${result.feedSeq}`
          : ""
      }${result.resumedFrom > 0 ? ` (resumed after ${result.resumedFrom})` : ""}${
        result.expired > 0 ? `; ${result.expired} had expired and were skipped` : ""
      }${
        result.cleared > 0
          ? `; cleared ${result.cleared} entries first (${
            options.force ? "--force" : "finishing the clearing of the interrupted --force restore"
          })`
          : ""
      }`,
    );
  }
  return record.status === "succeeded" && !result.cancelled ? 0 : failureCode;
}
