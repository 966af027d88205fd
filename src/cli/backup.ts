/**
 * `flowstate backup [--store NAME | --all] [--out FILE]` and
 * `flowstate restore <file> --store NAME [--force]`. These run the built-in
 * `backup` and `restore` jobs, recorded as runs of `job:backup` and
 * `job:restore` like `flowstate jobs run` (a backup leaves its own run
 * record out; a restore into the records store keeps only its own run
 * record beside the backup's content).
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
 *   "consistency", "attempts" }], "entries", "bytes", "dryRun", "runId" }`
 * - `restore`: `{ "file", "store", "entries", "restored", "expired", "cleared", "resumedFrom",
 *   "interruptedRunId", "sha256", "cancelled", "dryRun", "runId" }`
 *
 * `runId` is the run recorded for the command (`flowstate runs show <runId>`).
 *
 * @module
 */
import { resolve } from "node:path";
import type { BackupConsistency, BackupResult } from "../../jobs/backup.ts";
import type { RestoreResult } from "../../jobs/restore.ts";
import { formatBytes } from "../archive_format.ts";
import { openRuntime } from "../runtime.ts";
import { UsageError } from "./input.ts";
import { checkStore, type GlobalOptions, printWarning } from "./common.ts";
import { runRecordedJob } from "./recorded.ts";

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
  /** `--dry-run`: say what would be written. */
  dryRun?: boolean;
  /** `--json`. */
  json?: boolean;
}

/** Options of `flowstate restore`. */
export interface RestoreCommandOptions {
  /** `--store NAME`: the store to restore into (required). */
  store: string;
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
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  checkStore(runtime, options.store);
  const consistency: BackupConsistency = options.perKey ? "per-key" : "snapshot";
  const { result, record, failureCode } = await runRecordedJob<BackupResult>(runtime, "backup", {
    options: {
      ...(options.store !== undefined ? { store: options.store } : {}),
      ...(options.all ? { all: true } : {}),
      ...(options.out !== undefined ? { out: options.out } : {}),
      consistency,
    },
    dryRun: options.dryRun,
    quiet: options.json || global.quiet,
    notice: "Stopping the backup at the next consistent point",
  });
  if (result === null) return failureCode;
  if (options.json) {
    console.log(JSON.stringify({ ...result, runId: record.id }));
  } else {
    for (const f of result.files) {
      console.log(
        result.dryRun
          ? `${f.store}: would write ${f.entries} entries to ${f.file}`
          : `${f.store}: ${f.entries} entries → ${f.file} (${
            formatBytes(f.bytes)
          }, sha256 ${f.sha256})`,
      );
    }
  }
  return record.status === "succeeded" ? 0 : failureCode;
}

/** `restore <file> --store NAME [--force] [--dry-run] [--json]`. */
export async function restoreCommand(
  file: string,
  options: RestoreCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  const path = resolve(file);
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new UsageError(`Cannot restore ${file}: it is not a file`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new UsageError(`Cannot restore ${file}: the file does not exist`);
  }
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  checkStore(runtime, options.store);
  const { result, record, failureCode } = await runRecordedJob<RestoreResult>(
    runtime,
    "restore",
    {
      options: { file: path, store: options.store, force: options.force ?? false },
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
      `Restored ${result.restored} entries into store "${result.store}" from ${file}${
        result.resumedFrom > 0 ? ` (resumed after ${result.resumedFrom})` : ""
      }${result.expired > 0 ? `; ${result.expired} had expired and were skipped` : ""}${
        result.cleared > 0 ? `; cleared ${result.cleared} entries first (--force)` : ""
      }`,
    );
  }
  return record.status === "succeeded" && !result.cancelled ? 0 : failureCode;
}
