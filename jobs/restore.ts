/**
 * The `restore` job: load a backup file (see `jobs/backup.ts` for the
 * format) into any store, whatever backend it came from.
 *
 * ```sh
 * flowstate restore .flowstate/backups/default-20260101T030000000Z.fsbackup --store default
 * ```
 *
 * - **Verify first, then write.** The whole file is read and checked before
 *   anything is written: the `.sha256` file beside it (when present), gzip
 *   and its CRC, the header and format version, every entry line (a key, a
 *   JSON value, an expiry; keys strictly increasing), and the trailer's entry
 *   count and SHA-256. A damaged, truncated or unknown file is refused with a
 *   `StoreCorruptError` saying what is wrong, and the store is not
 *   touched.
 * - **An empty target only,** unless `force`: then every entry of the target
 *   is deleted first (when the target is also the records store, the
 *   restore's own run record is kept).
 * - **Crash-safe.** A marker entry ({@linkcode RESTORE_MARKER_KEY}) is written
 *   before the first entry and deleted after the last; each batch (an atomic
 *   commit of `batchSize` entries) also records in the marker how far it got.
 *   If the process dies, the marker stays: a backup of the store is refused,
 *   and running the same restore again resumes after the last committed batch
 *   (`force` starts over instead). Restoring a different file over an
 *   unfinished restore needs `force`.
 * - **New versions, same content.** Keys, values and expiry times are
 *   restored exactly; versions are new (they are not portable across
 *   backends). Entries that expired since the backup are skipped.
 *
 * - **Encrypted backups stay sealed.** A backup of an encrypted store
 *   (`encrypted` in its header) is restored only into an encrypted store
 *   holding one of its key ids, and its values are written as they are,
 *   sealed; a backup of a plain store restored into an encrypted one is
 *   sealed as it is written.
 *
 * Verifying a file (`verifyBackup`, and the checks above) lives in
 * `jobs/_restore_verify.ts`; this module re-exports its public names.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { defineJob, type Job, type JobContext, type JobResult } from "../src/jobs/job.ts";
import type { Progress } from "../src/jobs/progress.ts";
import { keysEqual } from "../src/store/keys.ts";
import type { Clock, Key, Store } from "../src/store/types.ts";
import { cancelled } from "../src/archive_format.ts";
import { RESTORE_MARKER_KEY } from "./backup.ts";
import { type EntryLine, readBackup, verifyBackup } from "./_restore_verify.ts";
import { systemClock } from "../src/clock.ts";
import { BackupError } from "../src/errors.ts";
import { encryptionOf } from "../src/store/sealed.ts";

export { RESTORE_MARKER_KEY } from "./backup.ts";
export { type VerifiedBackup, verifyBackup, type VerifyBackupOptions } from "./_restore_verify.ts";

/** Options of the restore job. */
export interface RestoreOptions {
  /** The backup file (relative to the working directory). */
  file: string;
  /** The store to restore into. */
  store: string;
  /** Delete everything in the target first if it is not empty (or holds another unfinished restore). */
  force: boolean;
  /** Entries per atomic commit. */
  batchSize: number;
}

/** Default options of the restore job. */
export const defaults = {
  force: false,
  batchSize: 500,
} satisfies Partial<RestoreOptions>;

const restoreOptions = z.strictObject({
  file: z.string().min(1),
  store: z.string().min(1),
  force: z.boolean().default(defaults.force),
  batchSize: z.number().int().min(1).max(10_000).default(defaults.batchSize),
});

/** The value of the marker entry of an unfinished restore. */
export interface RestoreMarker {
  /** The backup file being restored. */
  file: string;
  /** Its SHA-256: a rerun with the same file resumes. */
  sha256: string;
  /** Entries in the file. */
  entries: number;
  /** Entries done (written or skipped as expired) by committed batches. */
  done: number;
  /** When the restore started (ISO 8601). */
  startedAt: string;
  /** The job run doing it, if run as a job. */
  runId?: string;
}

/** Options for {@linkcode restoreBackup}. */
export interface RestoreBackupOptions {
  /** Clear a non-empty target (or one holding another unfinished restore) first. */
  force?: boolean;
  /** Entries per atomic commit (default 500). */
  batchSize?: number;
  /** Stops between batches (the marker stays; a rerun resumes). */
  signal?: AbortSignal;
  /** Receives progress. */
  progress?: Progress;
  /** Receives log lines. */
  log?: (message: string, level?: "info" | "warn") => void;
  /** The clock the target store uses (default: the system clock): expiry is restored against it. */
  clock?: Clock;
  /** Verify and check the target, but write nothing. */
  dryRun?: boolean;
  /**
   * Entries of the target that belong to the caller and are neither counted
   * as content nor cleared (the restore job's own run record).
   */
  keep?: (key: Key) => boolean;
  /** Written into the marker, to tell which run left an unfinished restore. */
  runId?: string;
}

/** What {@linkcode restoreBackup} did. */
export interface RestoreResult {
  /** The backup file (absolute). */
  file: string;
  /** The target store. */
  store: string;
  /** Entries in the file. */
  entries: number;
  /** Entries written by this call. */
  restored: number;
  /** Entries skipped because they had expired since the backup. */
  expired: number;
  /** Entries deleted from the target first (with `force`). */
  cleared: number;
  /** Entries an earlier, interrupted restore had done (0 unless resumed). */
  resumedFrom: number;
  /** The run that left the unfinished restore this one resumed or cleared, if known. */
  interruptedRunId: string | null;
  /** SHA-256 (hex) of the backup file. */
  sha256: string;
  /** `true` when cancelled: the marker stays and a rerun resumes. */
  cancelled: boolean;
}

/** Whether the target holds anything but the caller's own entries and the marker. */
async function firstForeignKey(store: Store, keep?: (key: Key) => boolean): Promise<Key | null> {
  for await (const entry of store.list({ batchSize: 16 })) {
    if (keysEqual(entry.key, RESTORE_MARKER_KEY) || keep?.(entry.key)) continue;
    return entry.key;
  }
  return null;
}

async function clearTarget(
  store: Store,
  keep: ((key: Key) => boolean) | undefined,
  progress: Progress | undefined,
): Promise<number> {
  if (keep === undefined) return await store.clear([]);
  progress?.start(`clear ${store.name}`);
  let cleared = 0;
  for (;;) {
    const batch: Key[] = [];
    for await (const entry of store.list({ batchSize: 500 })) {
      if (keep(entry.key)) continue;
      batch.push(entry.key);
      if (batch.length >= 500) break;
    }
    if (batch.length === 0) break;
    const op = store.atomic();
    for (const key of batch) op.delete(key);
    await op.commit();
    cleared += batch.length;
    progress?.update(cleared);
  }
  progress?.finish();
  return cleared;
}

/**
 * Restore the backup at `path` into `store`: verify the whole file, check the
 * target, then write in atomic batches (see the module documentation).
 * Rejects with a `StoreCorruptError` for a damaged file and with an
 * `Error` for a target that is not empty (without `force`), in both cases
 * before anything is written.
 *
 * @example
 * ```ts
 * import { backupStore, restoreBackup } from "@flowstate/core/jobs";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await using old = await openStore({ plugin: "memory" }, { name: "old" });
 * await old.set(["flow", "counter", "count"], 1);
 * await backupStore(old, `${dir}/old.fsbackup`);
 * await using target = await openStore({ plugin: "memory" }, { name: "new" });
 * const result = await restoreBackup(target, `${dir}/old.fsbackup`);
 * const count = await target.get(["flow", "counter", "count"]);
 * assert.equal(result.restored, 1);
 * assert.equal(count?.value, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function restoreBackup(
  store: Store,
  path: string,
  options: RestoreBackupOptions = {},
): Promise<RestoreResult> {
  const file = resolve(path);
  const what = `Cannot restore ${path} into store "${store.name}"`;
  const batchSize = options.batchSize ?? defaults.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`${what}: batchSize must be a positive integer (got ${batchSize})`);
  }
  const clock = options.clock ?? systemClock;
  const { signal, progress, log, keep } = options;
  const force = options.force ?? false;

  progress?.start(`verify ${path}`);
  const verified = await verifyBackup(file, { signal, progress });
  progress?.update(verified.entries);
  progress?.finish();
  if (!verified.checksumFile) {
    log?.(`no ${path}.sha256 beside the backup: checked its embedded checksums only`, "warn");
  }

  const sealedIds = verified.header.encrypted?.keyIds;
  if (Array.isArray(sealedIds)) {
    const encryption = encryptionOf(store);
    if (encryption === undefined) {
      throw new BackupError(
        `${what}: the backup holds sealed values (of an encrypted store, key ids ${
          sealedIds.join(", ")
        }) and the store is not encrypted; add encrypt: { key } with the key they were sealed with to the store`,
      );
    }
    const missing = sealedIds.filter((id) => !encryption.keyIds.includes(id));
    if (missing.length === sealedIds.length) {
      throw new BackupError(
        `${what}: the backup's values are sealed with key ids ${sealedIds.join(", ")}, and the ` +
          `store's keys have ids ${
            encryption.keyIds.join(", ")
          }; add the key they were sealed with to encrypt.keys`,
      );
    }
    if (missing.length > 0) {
      log?.(
        `the store has no key of id ${missing.join(", ")}, which the backed-up store had: ` +
          `values sealed with it will not open (run rekey on the source before backing up)`,
        "warn",
      );
    }
    store = encryption.sealed; // written as they are: sealed
  }
  const result: RestoreResult = {
    file,
    store: store.name,
    entries: verified.entries,
    restored: 0,
    expired: 0,
    cleared: 0,
    resumedFrom: 0,
    interruptedRunId: null,
    sha256: verified.sha256,
    cancelled: false,
  };
  const existing = await store.get<RestoreMarker>(RESTORE_MARKER_KEY);
  const foreign = await firstForeignKey(store, keep);
  let resume = false;
  if (existing !== null) {
    const other = existing.value;
    result.interruptedRunId = other.runId ?? null;
    if (!force && other.sha256 === verified.sha256) {
      resume = true;
    } else if (!force) {
      throw new BackupError(
        `${what}: it holds an unfinished restore of another backup (${other.file}, ${other.done} of ${other.entries} entries done); ` +
          `restore that file again to finish it, or pass force (--force) to clear the store and restore this one`,
      );
    }
  } else if (foreign !== null && !force) {
    throw new BackupError(
      `${what}: the store is not empty (it holds ${JSON.stringify(foreign)} and maybe more); ` +
        `pass force (--force) to delete everything in it first`,
    );
  }
  if (options.dryRun) {
    log?.(
      resume
        ? `would resume the unfinished restore at entry ${existing?.value.done} of ${verified.entries}`
        : `would ${
          foreign !== null || existing !== null ? "clear the store and " : ""
        }restore ${verified.entries} entries`,
    );
    return result;
  }
  if (signal?.aborted) throw cancelled(what);

  let markerVersion: string;
  let marker: RestoreMarker;
  if (resume && existing !== null) {
    marker = existing.value;
    markerVersion = existing.version;
    result.resumedFrom = marker.done;
    log?.(
      `resuming an unfinished restore of this file at entry ${marker.done} of ${marker.entries}`,
    );
  } else {
    if (foreign !== null || existing !== null) {
      result.cleared = await clearTarget(store, keep, progress);
      log?.(`cleared store "${store.name}" (${result.cleared} entries) before restoring`);
    }
    marker = {
      file,
      sha256: verified.sha256,
      entries: verified.entries,
      done: 0,
      startedAt: new Date(clock.now()).toISOString(),
    };
    if (options.runId !== undefined) marker.runId = options.runId;
    const put = await store.set(RESTORE_MARKER_KEY, marker, { ifVersion: null });
    if (!put.ok) {
      throw new BackupError(`${what}: another restore into this store started at the same time`);
    }
    markerVersion = put.version;
  }
  if (options.runId !== undefined && marker.runId !== options.runId) {
    marker = { ...marker, runId: options.runId };
  }

  const lost = () =>
    new Error(
      `${what}: the restore marker changed under it (another restore into this store?); stopped`,
    );
  /** Commit the marker's progress, checked against the version this restore last wrote. */
  const saveProgress = async (done: number) => {
    marker = { ...marker, done };
    const put = await store.set(RESTORE_MARKER_KEY, marker, { ifVersion: markerVersion });
    if (!put.ok) throw lost();
    markerVersion = put.version;
  };
  /** Set `entry` with its exact expiry, correcting for the clock moving during the call. */
  const fixExpiry = async (entry: EntryLine & { expiresAt: number }) => {
    let shift = 0;
    for (let attempt = 0; attempt < 20; attempt++) {
      const expireIn = entry.expiresAt - clock.now() - shift;
      if (!(expireIn > 0)) return false;
      await store.set(entry.key, entry.value, { expireIn });
      const read = await store.get(entry.key);
      if (read === null) return false;
      if (read.expiresAt === entry.expiresAt) return true;
      shift += (read.expiresAt ?? entry.expiresAt) - entry.expiresAt;
    }
    throw new BackupError(
      `${what}: could not set the exact expiry of ${
        JSON.stringify(entry.key)
      }; the clock is unsteady`,
    );
  };

  let batch: EntryLine[] = [];
  let done = marker.done;
  const writeBatch = async () => {
    if (batch.length === 0) return;
    const op = store.atomic().check(RESTORE_MARKER_KEY, markerVersion);
    const suspects: (EntryLine & { expiresAt: number })[] = [];
    let written = 0;
    for (const entry of batch) {
      if (entry.expiresAt === null) {
        op.set(entry.key, entry.value);
        written++;
        continue;
      }
      const before = clock.now();
      const expireIn = entry.expiresAt - before;
      if (!(expireIn > 0)) {
        result.expired++;
        continue;
      }
      op.set(entry.key, entry.value, { expireIn });
      // The store reads the clock inside set(): if it moved, the expiry may be 1 ms off.
      if (clock.now() !== before) suspects.push(entry as EntryLine & { expiresAt: number });
      written++;
    }
    const next = done + batch.length;
    if (suspects.length === 0) op.set(RESTORE_MARKER_KEY, { ...marker, done: next });
    const committed = await op.commit();
    if (!committed.ok) throw lost();
    if (suspects.length === 0) {
      marker = { ...marker, done: next };
      markerVersion = committed.version;
    } else {
      for (const entry of suspects) {
        if (!(await fixExpiry(entry))) {
          result.expired++;
          written--;
          await store.delete(entry.key);
        }
      }
      await saveProgress(next);
    }
    result.restored += written;
    done = next;
    batch = [];
    progress?.update(done);
  };

  const skip = marker.done;
  progress?.start(`restore into ${store.name}`, verified.entries);
  progress?.update(done);
  try {
    // Read the file again (it was verified, but may have been replaced since:
    // the checksums are recomputed, and a mismatch leaves the marker in place).
    const again = await readBackup(file, what, {}, async (entry, index) => {
      if (index < skip) return;
      batch.push(entry);
      if (batch.length >= batchSize) {
        await writeBatch();
        if (signal?.aborted) throw cancelled(what);
      }
    });
    await writeBatch();
    if (again.sha256 !== verified.sha256) {
      throw new BackupError(
        `${what}: the file changed while it was being restored; the store holds a partial restore (marked); restore a sound file with force`,
      );
    }
  } catch (err) {
    progress?.finish();
    if ((err as Error).name === "AbortError") {
      log?.(
        `cancelled after ${done} of ${verified.entries} entries; run the same restore again to finish it`,
        "warn",
      );
      result.cancelled = true;
      return result;
    }
    throw err;
  }
  const removed = await store.atomic().check(RESTORE_MARKER_KEY, markerVersion)
    .delete(RESTORE_MARKER_KEY).commit();
  if (!removed.ok) throw lost();
  progress?.finish();
  return result;
}

/**
 * The restore job. Options: `file`, `store`, `force`, `batchSize` (see
 * {@linkcode RestoreOptions}). Result: `{ file, store, entries, restored,
 * expired, cleared, resumedFrom, interruptedRunId, sha256, cancelled }`.
 */
const restoreJob: Job<RestoreOptions> = defineJob<RestoreOptions>({
  name: "restore",
  description: "verify a backup file, then load it into a store (empty, or cleared with force)",
  optionsSchema: restoreOptions,
  defaults,
  async run(ctx, options): Promise<JobResult> {
    const store = await ctx.store(options.store);
    const file = isAbsolute(options.file) ? options.file : resolve(options.file);
    // When the target also holds the run records, this run's own record is not content.
    const keep = options.store === ctx.runtime.config.records
      ? (key: Key) => key[0] === "flowstate" && key.includes(ctx.runId)
      : undefined;
    let result: RestoreResult;
    try {
      result = await restoreBackup(store, file, {
        force: options.force,
        batchSize: options.batchSize,
        signal: ctx.signal,
        progress: ctx.progress,
        log: (message, level) => ctx.log(message, level),
        clock: ctx.clock,
        dryRun: ctx.dryRun,
        keep,
        runId: ctx.runId,
      });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new BackupError(`Cannot restore ${options.file}: the file does not exist`, {
          cause: err,
        });
      }
      throw err;
    }
    const interrupted = result.interruptedRunId;
    if (interrupted !== null && interrupted !== ctx.runId && !ctx.dryRun) {
      await finishInterruptedRun(ctx, interrupted);
    }
    if (!ctx.dryRun && !result.cancelled) {
      ctx.log(
        `restored ${result.restored} entries into store "${result.store}"${
          result.resumedFrom > 0 ? ` (resumed after ${result.resumedFrom})` : ""
        }${result.expired > 0 ? `; ${result.expired} had expired and were skipped` : ""}`,
      );
    }
    return { ...result, ...(ctx.dryRun ? { dryRun: true } : {}) };
  },
});

/** Record a restore run killed before it finished as failed, so it does not stay "running". */
async function finishInterruptedRun(ctx: JobContext, runId: string): Promise<void> {
  try {
    const records = await ctx.records();
    const run = await records.getRun(runId);
    if (run === null || run.status !== "running") return;
    await records.finishRun({
      ...run,
      status: "failed",
      endedAt: null,
      durationMs: null,
      error: { message: `interrupted before it finished; completed by run ${ctx.runId}` },
    });
  } catch (err) {
    ctx.log(
      `could not mark the interrupted restore run ${runId} as failed: ${(err as Error).message}`,
      "warn",
    );
  }
}

export default restoreJob;
