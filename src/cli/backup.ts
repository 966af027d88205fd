/**
 * `flowstate backup [--store NAME | --all] [--out FILE]` and
 * `flowstate restore <file> --store NAME [--force]`. These call the library
 * functions of `jobs/backup.ts` and `jobs/restore.ts` directly and record no
 * job run, so a restore into the records store leaves exactly the backup's
 * content (use `flowstate jobs run backup|restore` for a recorded run).
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
 *   "consistency", "attempts" }], "entries", "bytes", "dryRun" }`
 * - `restore`: `{ "file", "store", "entries", "restored", "expired", "cleared", "resumedFrom",
 *   "interruptedRunId", "sha256", "cancelled", "dryRun" }`
 *
 * @module
 */
import { resolve } from "node:path";
import { type BackupConsistency, backupStores } from "../../jobs/backup.ts";
import { restoreBackup } from "../../jobs/restore.ts";
import { formatBytes } from "../archive_format.ts";
import { createProgress } from "../jobs/progress.ts";
import { openRuntime } from "../runtime.ts";
import { UsageError } from "./input.ts";
import {
  checkStore,
  EXIT_INTERRUPTED,
  type GlobalOptions,
  interruptible,
  printWarning,
  stderrLogger,
} from "./common.ts";
import { BackupError, StoreCorruptError } from "../errors.ts";

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

function failure(err: unknown): number {
  if (err instanceof UsageError) throw err;
  if (err instanceof Error && err.name === "AbortError") {
    console.error(`error: ${err.message}`);
    return EXIT_INTERRUPTED;
  }
  // Known failures of these commands: one line, exit 1 (unexpected errors go to main's handler).
  if (err instanceof BackupError || err instanceof StoreCorruptError) {
    console.error(`error: ${err.message.split("\n")[0]}`);
    return 1;
  }
  throw err;
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
  try {
    const { value: result } = await interruptible(
      "Stopping the backup at the next consistent point",
      (signal) =>
        backupStores(runtime, {
          store: options.store,
          all: options.all,
          out: options.out,
          consistency,
          signal,
          progress: createProgress({ mode: options.json ? "quiet" : undefined }),
          log: stderrLogger(options.json),
          dryRun: options.dryRun,
        }),
    );
    if (options.json) {
      console.log(JSON.stringify(result));
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
    return 0;
  } catch (err) {
    return failure(err);
  }
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
  const store = await runtime.store(options.store);
  try {
    const { value: result, interrupted, exitCode } = await interruptible(
      "Stopping the restore at the next consistent point",
      (signal) =>
        restoreBackup(store, path, {
          force: options.force,
          signal,
          progress: createProgress({ mode: options.json ? "quiet" : undefined }),
          log: stderrLogger(options.json),
          clock: runtime.clock,
          dryRun: options.dryRun,
        }),
    );
    if (options.json) {
      console.log(JSON.stringify({ ...result, dryRun: options.dryRun ?? false }));
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
        }${result.expired > 0 ? `; ${result.expired} had expired and were skipped` : ""}`,
      );
    }
    return result.cancelled ? (interrupted ? exitCode : 1) : 0;
  } catch (err) {
    return failure(err);
  }
}
