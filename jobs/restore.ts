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
 *   commit of `batchSize` entries, fewer when they hold more than about 32 MiB)
 *   also records in the marker how far it got.
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
 * - **Increments, in order.** `increments` (CLI: more files after the full
 *   backup) are applied after it, each one's changes replayed in sequence
 *   order. Before anything is written, each is verified, and a gap (changes
 *   missing between two files), a wrong order or an increment of another full
 *   backup is refused, naming the files and the sequence numbers.
 * - **Point in time.** `at: { time } | { seq }` (CLI `--at`, `--at-seq`)
 *   rebuilds the store as it was then: the full backup, then the increments'
 *   and the live store's (`from`) changes up to that point. Only into an empty
 *   store (never over a live one: `force` is refused), and only from a full
 *   backup taken before that point. Entries that expired since are left out.
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
import type { Change, Clock, JsonValue, Key, Store } from "../src/store/types.ts";
import { cancelled, readGzipLines } from "../src/archive_format.ts";
import { createHash } from "node:crypto";
import { type BackupHeader, backupPosition, RESTORE_MARKER_KEY } from "./backup.ts";
import { changeTime } from "../src/store/store.ts";
import {
  type EntryLine,
  readBackup,
  type VerifiedBackup,
  verifyBackup,
} from "./_restore_verify.ts";
import { systemClock } from "../src/clock.ts";
import { BackupError, messageOf } from "../src/errors.ts";
import { type EncryptionHandle, encryptionOf } from "../src/store/sealed.ts";

export { RESTORE_MARKER_KEY } from "./backup.ts";
export { type VerifiedBackup, verifyBackup, type VerifyBackupOptions } from "./_restore_verify.ts";

/**
 * Options of the restore job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import { backupStore, type RestoreOptions } from "@flowstate/core/jobs";
 *
 * const home = await Deno.makeTempDir();
 * await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" }, copy: { plugin: "memory" } } } });
 * const main = await rt.store("main");
 * await main.set(["a"], 1);
 * await backupStore(main, `${home}/main.fsbackup`);
 * const options: Partial<RestoreOptions> = { file: `${home}/main.fsbackup`, store: "copy" };
 * assert.equal((await runJob(rt, "restore", { options })).status, "succeeded");
 * assert.equal((await (await rt.store("copy")).get(["a"]))?.value, 1);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface RestoreOptions {
  /** The backup file (relative to the working directory). */
  file: string;
  /** The store to restore into. */
  store: string;
  /** Delete everything in the target first if it is not empty (or holds another unfinished restore). */
  force: boolean;
  /** Entries per atomic commit (at most: a commit holds about 32 MiB of them at most). */
  batchSize: number;
  /** Incremental backups to apply after `file`, in the order they were taken. */
  increments?: string[];
  /**
   * A point-in-time restore into a new, empty store: a time (ISO 8601, or ms
   * since the epoch) up to which changes are replayed.
   */
  at?: string | number;
  /** A point-in-time restore up to this sequence number of the feed instead. */
  atSeq?: number;
  /**
   * The live store whose feed continues the files (default for `at`/`atSeq`:
   * the store named in the backup's header, when it is configured and keeps a
   * feed).
   */
  from?: string;
}

/** Default options of the restore job. */
export const defaults = {
  force: false,
  batchSize: 500,
} satisfies Partial<RestoreOptions>;

/** About how many bytes of backup lines one batch commits at most, whatever `batchSize` says. */
const BATCH_BYTES = 32 * 1024 * 1024;

const restoreOptions = z.strictObject({
  file: z.string().min(1),
  store: z.string().min(1),
  force: z.boolean().default(defaults.force),
  batchSize: z.number().int().min(1).max(10_000).default(defaults.batchSize),
  increments: z.array(z.string().min(1)).optional(),
  at: z.union([z.string().min(1), z.number()]).optional(),
  atSeq: z.number().int().min(0).optional(),
  from: z.string().min(1).optional(),
});

/** A time option (ISO 8601 or ms since the epoch) in ms; throws a `TypeError` naming it. */
export function parseTime(value: string | number, what: string): number {
  const ms = typeof value === "number"
    ? value
    : /^\d+$/.test(value)
    ? Number(value)
    : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new TypeError(
      `${what}: ${
        JSON.stringify(value)
      } is not a time; give an ISO 8601 time like 2026-01-01T12:00:00Z (or ms since the epoch)`,
    );
  }
  return ms;
}

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
  /**
   * `true` while the earlier content of the store is being deleted (`force`,
   * or over another file's unfinished restore): a rerun deletes the rest first.
   */
  clearing?: boolean;
}

/**
 * Options for {@linkcode restoreBackup}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { backupStore, restoreBackup, type RestoreBackupOptions } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using source = await openStore({ plugin: "memory" }, { name: "main" });
 * await source.set(["orders", "1"], 1);
 * await backupStore(source, `${dir}/main.fsbackup`);
 * await using target = await openStore({ plugin: "memory" }, { name: "copy" });
 * await target.set(["orders", "2"], 2); // the target is not empty: `force` replaces its content
 * const options: RestoreBackupOptions = { force: true, batchSize: 500 };
 * const result = await restoreBackup(target, `${dir}/main.fsbackup`, options);
 * assert.equal(result.cleared, 1);
 * assert.deepEqual((await Array.fromAsync(target.list())).map((e) => e.key), [["orders", "1"]]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface RestoreBackupOptions {
  /** Clear a non-empty target (or one holding another unfinished restore) first. */
  force?: boolean;
  /** Entries per atomic commit (default 500; fewer when they hold more than about 32 MiB). */
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
  /**
   * Incremental backups to apply after the full backup, in the order they
   * were taken (each one's changes start where the file before it ends; a
   * gap, a wrong order or an increment of another full backup is refused
   * before anything is written).
   */
  increments?: readonly string[];
  /**
   * A point-in-time restore: stop at this time (the first change committed
   * after it, in sequence order, ends the replay) or after this sequence
   * number. The target must be empty (no `force`), and the full backup must
   * have been taken before that point.
   */
  at?: { time: number } | { seq: number };
  /**
   * A live store whose change feed continues the files (the store the backup
   * was taken of): its changes after the last file are replayed too (up to
   * `at`, or up to its last change when the restore starts).
   */
  from?: Store;
}

/**
 * What {@linkcode restoreBackup} did.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { backupStore, restoreBackup, type RestoreResult } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using source = await openStore({ plugin: "memory" }, { name: "main" });
 * await source.set(["a"], 1);
 * const info = await backupStore(source, `${dir}/main.fsbackup`);
 * await using target = await openStore({ plugin: "memory" }, { name: "copy" });
 * const result: RestoreResult = await restoreBackup(target, `${dir}/main.fsbackup`);
 * assert.deepEqual([result.entries, result.restored, result.cancelled], [1, 1, false]);
 * assert.equal(result.holds, 1);
 * assert.equal(result.sha256, info.sha256);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface RestoreResult {
  /** The backup file (absolute). */
  file: string;
  /** The target store. */
  store: string;
  /** Entries in the file. */
  entries: number;
  /** Entries written by this call (a key set again by a later change counts again). */
  restored: number;
  /** Keys deleted by replayed changes (increments, the live feed), by this call. */
  deleted: number;
  /**
   * How many entries the target holds once the restore is done (the number to
   * compare with the source's), or `null` when it was cancelled.
   */
  holds: number | null;
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
  /** Changes replayed from increments and the live feed (0 for a full backup alone). */
  changes: number;
  /**
   * The source's feed position the restored store matches (its last change
   * replayed), or `null` when the backup records none.
   */
  feedSeq: number | null;
}

/** One step of a restore: a full backup's entry, or a change. */
type Item = EntryLine & { op?: "set" | "delete"; seq?: number; at?: number };

/** A source of changes after the full backup: an increment, or the live feed. */
interface ChangeSource {
  /** The file, or `store "<name>"` for the live feed. */
  name: string;
  /** The file (absent for the live feed). */
  file?: string;
  /** How many of its changes are replayed (up to the point in time). */
  apply: number;
}

/** What a restore replays after the full backup, checked before anything is written. */
interface Chain {
  /** Identifies the restore in the marker (a rerun of the same one resumes). */
  id: string;
  /** Items in all: the full backup's entries plus the changes replayed. */
  total: number;
  /** The increments, then the live feed, in order. */
  sources: ChangeSource[];
  /** The SHA-256 of each increment file, as verified. */
  sha256s: Map<string, string>;
  /** The live feed's changes replayed come after this sequence number. */
  liveSince: number;
  /** The source's feed position the restored store matches. */
  feedSeq: number | null;
}

function sealedOf(store: Store): Store {
  return encryptionOf(store)?.sealed ?? store;
}

function itemOf(change: Change): Item {
  return {
    key: change.key,
    value: (change.value ?? null) as JsonValue,
    expiresAt: change.op === "set" ? change.expiresAt : null,
    op: change.op,
    seq: change.seq,
    at: change.at,
  };
}

function showTime(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Check the increments and the live feed against the full backup (order,
 * gaps, the same chain, encryption) and find how much of each to replay,
 * up to `options.at`. Throws a `BackupError` naming the files and sequence
 * numbers; writes nothing.
 */
async function planChain(
  full: VerifiedBackup,
  path: string,
  what: string,
  options: RestoreBackupOptions,
): Promise<Chain> {
  const increments = options.increments ?? [];
  const at = options.at;
  const simple = increments.length === 0 && at === undefined && options.from === undefined;
  const feedSeq = typeof full.header.feedSeq === "number" ? full.header.feedSeq : null;
  const chain: Chain = {
    id: full.sha256,
    total: full.entries,
    sources: [],
    sha256s: new Map(),
    liveSince: 0,
    feedSeq,
  };
  // Alone too: an increment holds only the changes after its full backup, not the store.
  if (full.header.kind === "increment") {
    throw new BackupError(
      `${what}: ${path} is an increment (changes ${full.header.fromSeq} < seq <= ${full.header.toSeq}); ` +
        `give the full backup first, then its increments in order`,
    );
  }
  if (simple) return chain;
  if (at !== undefined) {
    const ok = "time" in at ? Number.isFinite(at.time) : Number.isInteger(at.seq) && at.seq >= 0;
    if (!ok) {
      throw new RangeError(
        `${what}: at must be { time: <ms since the epoch> } or { seq: <sequence number> }`,
      );
    }
  }
  let position = backupPosition(full, what);
  const encrypted = full.header.encrypted !== undefined;
  const late = (c: { seq: number; at: number }) =>
    at === undefined ? false : "time" in at ? c.at > at.time : c.seq > at.seq;
  /** The last sequence number at or before the point in time (when the replay stops early). */
  let stoppedAt: number | null = null;
  let previousName = path;
  let lastCreatedAt = Date.parse(full.header.createdAt);
  for (const inc of increments) {
    let v: VerifiedBackup;
    try {
      v = await verifyBackup(inc);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new BackupError(`${what}: the increment ${inc} does not exist`, { cause: err });
      }
      throw err;
    }
    const h = v.header;
    if (h.kind !== "increment") {
      throw new BackupError(
        `${what}: ${inc} is a full backup, not an increment; give one full backup first, then its increments`,
      );
    }
    if (h.base !== position.base) {
      throw new BackupError(
        `${what}: ${inc} does not continue ${path}: its chain starts from another full backup ` +
          `(SHA-256 ${h.base!.slice(0, 12)}…, not ${position.base.slice(0, 12)}…)`,
      );
    }
    if (h.fromSeq! > position.seq) {
      throw new BackupError(
        `${what}: a gap: ${previousName} ends at change ${position.seq}, and ${inc} holds the changes ` +
          `after ${h.fromSeq}; changes ${position.seq + 1} to ${h.fromSeq} are missing (give the ` +
          `increment that holds them, in the order they were taken)`,
      );
    }
    if (h.fromSeq! < position.seq) {
      throw new BackupError(
        `${what}: out of order: ${inc} holds the changes after ${h.fromSeq}, but ${previousName} ` +
          `already ends at change ${position.seq}; give the increments in the order they were taken`,
      );
    }
    if ((h.encrypted !== undefined) !== encrypted) {
      throw new BackupError(
        `${what}: ${inc} is ${encrypted ? "not " : ""}encrypted and ${path} is${
          encrypted ? "" : " not"
        }; an increment comes from the same store as its full backup`,
      );
    }
    chain.sha256s.set(v.file, v.sha256);
    const source: ChangeSource = { name: inc, file: v.file, apply: 0 };
    if (stoppedAt === null) {
      await readBackup(v.file, what, {}, (c) => {
        if (stoppedAt !== null) return Promise.resolve();
        if (late(c as { seq: number; at: number })) stoppedAt = c.seq! - 1;
        else source.apply++;
        return Promise.resolve();
      });
    }
    chain.sources.push(source);
    chain.total += source.apply;
    position = { seq: h.toSeq!, at: h.toAt ?? null, base: position.base };
    previousName = inc;
    lastCreatedAt = Date.parse(h.createdAt);
  }
  chain.liveSince = position.seq;
  const from = options.from;
  if (from !== undefined && stoppedAt === null) {
    const live = sealedOf(from);
    const name = `store "${from.name}"`;
    if ((encryptionOf(from) !== undefined) !== encrypted) {
      throw new BackupError(
        `${what}: ${name} is ${encrypted ? "not " : ""}encrypted and ${path} is${
          encrypted ? "" : " not"
        }; give the store the backup was taken of`,
      );
    }
    const info = await live.feedInfo();
    if (!info.enabled) {
      throw new BackupError(
        `${what}: ${name} keeps no change feed, so it cannot continue the files`,
      );
    }
    if (info.lastSeq < position.seq) {
      throw new BackupError(
        `${what}: the feed of ${name} ends at change ${info.lastSeq}, before ${previousName} ` +
          `(change ${position.seq}): it is not the store the backup was taken of, or its feed was reset`,
      );
    }
    if (info.firstSeq > position.seq + 1) {
      throw new BackupError(
        `${what}: a gap: ${previousName} ends at change ${position.seq}, and the feed of ${name} ` +
          `starts at ${info.firstSeq} (its retention removed changes ${position.seq + 1} to ${
            info.firstSeq - 1
          }); give the increments that hold them`,
      );
    }
    if (position.at !== null && position.seq >= info.firstSeq) {
      const seen = await changeTime(live, position.seq);
      if (seen !== position.at) {
        throw new BackupError(
          `${what}: change ${position.seq} of ${name}'s feed is not the one ${previousName} ends at ` +
            `(committed at ${seen === null ? "?" : showTime(seen)}, not ${
              showTime(position.at)
            }): ` +
            `give the store the backup was taken of`,
        );
      }
    }
    // A sequence number the feed has not reached is a point in the future: refused, as a time is.
    if (at !== undefined && "seq" in at && at.seq > info.lastSeq) {
      throw new BackupError(
        `${what}: change ${at.seq} has not been made yet: the feed of ${name} ends at change ` +
          `${info.lastSeq}; give a point up to it, or leave --at out for the latest state`,
      );
    }
    // The last change at or before the point: found by a binary search on the
    // commit times (they follow sequence numbers), without reading the feed through.
    const upper = at !== undefined && "seq" in at ? at.seq : info.lastSeq;
    let cutoff = upper;
    if (at !== undefined && "time" in at && upper > position.seq) {
      const timeOf = async (seq: number) => {
        const t = await changeTime(live, seq);
        if (t === null) {
          throw new BackupError(
            `${what}: the feed of ${name} no longer holds change ${seq} (its retention removed it ` +
              `while the restore was planned); try again`,
          );
        }
        return t;
      };
      if ((await timeOf(upper)) > at.time) {
        let lo = position.seq; // at or before the point (checked below against the backup)
        let hi = upper; // after it
        while (hi - lo > 1) {
          const mid = lo + Math.floor((hi - lo) / 2);
          if ((await timeOf(mid)) > at.time) hi = mid;
          else lo = mid;
        }
        cutoff = lo;
      }
    }
    if (cutoff < info.lastSeq) stoppedAt = cutoff;
    const source: ChangeSource = { name, apply: Math.max(0, cutoff - position.seq) };
    chain.sources.push(source);
    chain.total += source.apply;
    position = { seq: Math.max(cutoff, position.seq), at: null, base: position.base };
  }
  const reached: number = stoppedAt ?? position.seq;
  if (at !== undefined) {
    const end = full.trailer.feedSeqEnd ?? full.header.feedSeq!;
    const feedAt = full.header.feedAt ?? null;
    const lastInBackup = { seq: full.header.feedSeq!, at: feedAt ?? -Infinity };
    if (reached < end || late(lastInBackup)) {
      const point = "time" in at ? showTime(at.time) : `change ${at.seq}`;
      throw new BackupError(
        `${what}: ${path} was taken after ${point} (${
          late(lastInBackup)
            ? `it holds change ${lastInBackup.seq}${
              feedAt === null ? "" : `, committed at ${showTime(feedAt)}`
            }`
            : `it was read up to change ${end}, and the point in time is change ${reached}`
        }): restore from a full backup taken before that point`,
      );
    }
    if (stoppedAt === null && from === undefined) {
      if ("seq" in at && at.seq > reached) {
        throw new BackupError(
          `${what}: the files end at change ${reached}, before change ${at.seq}; ` +
            `give the increments after ${previousName}, or the live store (from) to read the rest of its feed`,
        );
      }
      if ("time" in at && at.time > lastCreatedAt) {
        throw new BackupError(
          `${what}: ${previousName}, the last file, was taken at ${showTime(lastCreatedAt)}, ` +
            `before ${showTime(at.time)}: the changes after it are not in the files; give the ` +
            `increments after it, or the live store (from) to read the rest of its feed`,
        );
      }
    }
  }
  chain.feedSeq = reached;
  chain.id = createHash("sha256").update(JSON.stringify({
    full: full.sha256,
    increments: [...chain.sha256s.values()],
    at: at ?? null,
    from: from?.name ?? null,
  })).digest("hex");
  return chain;
}

/** Whether the target holds anything but the caller's own entries and the marker. */
async function firstForeignKey(store: Store, keep?: (key: Key) => boolean): Promise<Key | null> {
  for await (const entry of store.list({ batchSize: 16 })) {
    if (keysEqual(entry.key, RESTORE_MARKER_KEY) || keep?.(entry.key)) continue;
    return entry.key;
  }
  return null;
}

/**
 * Delete every entry of the target but the restore marker and the caller's
 * kept keys, in atomic batches: the marker stays, so a restore stopped while
 * clearing leaves the store marked as a partial restore.
 */
async function clearTarget(
  store: Store,
  keep: ((key: Key) => boolean) | undefined,
  progress: Progress | undefined,
): Promise<number> {
  progress?.start(`clear ${store.name}`);
  let cleared = 0;
  for (;;) {
    const batch: Key[] = [];
    for await (const entry of store.list({ batchSize: 500 })) {
      if (keysEqual(entry.key, RESTORE_MARKER_KEY) || keep?.(entry.key)) continue;
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

  const chain = await planChain(verified, path, what, options);
  /** The target's encryption, when the backup's values are written sealed as they are. */
  let sealedBy: EncryptionHandle | undefined;
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
    sealedBy = encryption;
  }
  const result: RestoreResult = {
    file,
    store: store.name,
    entries: verified.entries,
    restored: 0,
    deleted: 0,
    holds: null,
    expired: 0,
    cleared: 0,
    resumedFrom: 0,
    interruptedRunId: null,
    sha256: verified.sha256,
    cancelled: false,
    changes: 0,
    feedSeq: chain.feedSeq,
  };
  const existing = await store.get<RestoreMarker>(RESTORE_MARKER_KEY);
  const foreign = await firstForeignKey(store, keep);
  let resume = false;
  const resuming = existing !== null && existing.value.sha256 === chain.id && !force;
  if (options.at !== undefined && foreign !== null && !resuming) {
    throw new BackupError(
      `${what}: a point-in-time restore goes into a new, empty store only, and this one holds ` +
        `${
          JSON.stringify(foreign)
        } (and maybe more); give an empty store (a new one in the config)`,
    );
  }
  if (existing !== null) {
    const other = existing.value;
    result.interruptedRunId = other.runId ?? null;
    if (!force && other.sha256 === chain.id) {
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
        ? `would resume the unfinished restore at entry ${existing?.value.done} of ${chain.total}`
        : `would ${
          foreign !== null || existing !== null ? "clear the store and " : ""
        }restore ${verified.entries} entries${
          chain.total > verified.entries
            ? ` and replay ${chain.total - verified.entries} changes`
            : ""
        }`,
    );
    return result;
  }
  if (signal?.aborted) throw cancelled(what);

  let markerVersion: string;
  let marker: RestoreMarker;
  // Not a partial restore of this one's to finish: the store is the other restore's now.
  const lost = () =>
    new BackupError(
      `${what}: the restore marker changed under it: another restore into this store took it ` +
        `over; this one stopped (see how that one ended: flowstate runs ls --flow job:restore)`,
    );
  /** Whether this restore deleted (some of) the store's earlier content. */
  let wiped = false;
  /** What a failure from here on means for the store, added to its message. */
  const partial = (err: unknown, done: number): Error => {
    if (err instanceof BackupError || (err as Error)?.name === "AbortError") return err as Error;
    return new BackupError(
      `${what}: stopped after ${done} of ${chain.total} entries: ${messageOf(err)}. ` +
        `The store now holds a partial restore (marked: a backup of it is refused)${
          wiped ? ", its earlier content deleted," : ""
        } and ` +
        `${path} is untouched: fix the cause and run the same restore again to finish it`,
      { cause: err },
    );
  };
  if (resume && existing !== null) {
    marker = existing.value;
    markerVersion = existing.version;
    result.resumedFrom = marker.done;
    log?.(
      `resuming an unfinished restore of this file at entry ${marker.done} of ${marker.entries}`,
    );
  } else {
    const clearing = foreign !== null || existing !== null;
    marker = {
      file,
      sha256: chain.id,
      entries: chain.total,
      done: 0,
      startedAt: new Date(clock.now()).toISOString(),
    };
    if (options.runId !== undefined) marker.runId = options.runId;
    if (clearing) marker.clearing = true;
    // The marker goes in before anything is deleted: a restore stopped from here on (killed,
    // a full disk) leaves the store marked as partial, never quietly half-cleared.
    const put = await store.set(RESTORE_MARKER_KEY, marker, {
      ifVersion: existing?.version ?? null,
    });
    if (!put.ok) {
      throw new BackupError(`${what}: another restore into this store started at the same time`);
    }
    markerVersion = put.version;
  }
  if (marker.clearing) {
    wiped = true;
    try {
      result.cleared = await clearTarget(store, keep, progress);
      log?.(`cleared store "${store.name}" (${result.cleared} entries) before restoring`);
      const { clearing: _, ...cleared } = marker;
      const put = await store.set(RESTORE_MARKER_KEY, cleared, { ifVersion: markerVersion });
      if (!put.ok) throw lost();
      marker = cleared;
      markerVersion = put.version;
    } catch (err) {
      progress?.finish();
      throw partial(err, marker.done);
    }
  }
  if (options.runId !== undefined && marker.runId !== options.runId) {
    marker = { ...marker, runId: options.runId };
  }
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

  let batch: (Item | null)[] = [];
  let consumed = 0;
  /** The size of the batch's items as backup lines (0 for changes read from a live feed). */
  let batchBytes = 0;
  /** Where each key is in the batch: a later change of it replaces the earlier one. */
  const inBatch = new Map<string, number>();
  let done = marker.done;
  const writeBatch = async () => {
    if (consumed === 0) return;
    const op = store.atomic().check(RESTORE_MARKER_KEY, markerVersion);
    const suspects: (EntryLine & { expiresAt: number })[] = [];
    let written = 0;
    let deleted = 0;
    for (const entry of batch) {
      if (entry === null) continue;
      if (entry.op === "delete") {
        op.delete(entry.key);
        deleted++;
        continue;
      }
      if (entry.expiresAt === null) {
        op.set(entry.key, entry.value);
        written++;
        continue;
      }
      const before = clock.now();
      const expireIn = entry.expiresAt - before;
      if (!(expireIn > 0)) {
        result.expired++;
        // A change: an older value of the key may be there (from the snapshot).
        if (entry.op === "set") op.delete(entry.key);
        continue;
      }
      op.set(entry.key, entry.value, { expireIn });
      // The store reads the clock inside set(): if it moved, the expiry may be 1 ms off.
      if (clock.now() !== before) suspects.push(entry as EntryLine & { expiresAt: number });
      written++;
    }
    const next = done + consumed;
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
    result.deleted += deleted;
    done = next;
    batch = [];
    consumed = 0;
    batchBytes = 0;
    inBatch.clear();
    progress?.update(done);
  };

  const skip = marker.done;
  const replaying = chain.sources.some((source) => source.apply > 0);
  let index = 0;
  /** Take the next item (past those an interrupted restore did). */
  const take = async (item: Item, _index?: number, bytes = 0) => {
    if (index++ < skip) return;
    if (item.op !== undefined) result.changes++;
    // One write per key in a batch (a change may follow the snapshot's entry in the same batch).
    if (item.op !== undefined || replaying) {
      const id = JSON.stringify(item.key);
      const at = inBatch.get(id);
      if (at !== undefined) batch[at] = null;
      inBatch.set(id, batch.length);
    }
    batch.push(item);
    consumed++;
    batchBytes += bytes;
    // Big values make smaller batches: memory stays bounded (a commit of 500 values of 10 MB
    // would hold 5 GB); resuming counts items, not batches.
    if (consumed >= batchSize || batchBytes >= BATCH_BYTES) {
      await writeBatch();
      if (signal?.aborted) throw cancelled(what);
    }
  };
  progress?.start(`restore into ${store.name}`, chain.total);
  progress?.update(done);
  try {
    // Read the files again (they were verified, but may have been replaced since:
    // the checksums are recomputed, and a mismatch leaves the marker in place).
    const again = await readBackup(file, what, {}, take);
    const changed = () =>
      new BackupError(
        `${what}: a file changed while it was being restored; the store holds a partial restore (marked); restore sound files with force`,
      );
    if (again.sha256 !== verified.sha256) throw changed();
    for (const source of chain.sources) {
      let left = source.apply;
      if (left === 0) continue;
      if (source.file !== undefined) {
        const read = await readBackup(source.file, what, {}, async (item, i, bytes) => {
          if (left > 0) {
            left--;
            await take(item, i, bytes);
          }
        });
        if (read.sha256 !== chain.sha256s.get(source.file)) throw changed();
      } else {
        const live = sealedOf(options.from!);
        let expected = chain.liveSince + 1;
        const until = chain.liveSince + source.apply;
        // Pipelined: the next change is asked for before this one is taken, so
        // that on an asynchronous backend the next page of the feed is read
        // while a batch is being written.
        const changes = live.changes({ since: chain.liveSince })[Symbol.asyncIterator]();
        let next = changes.next();
        try {
          for (;;) {
            const step = await next;
            if (step.done) break;
            const change = step.value;
            if (change.seq > until || change.seq !== expected) break;
            expected++;
            next = change.seq < until
              ? changes.next()
              : Promise.resolve({ done: true, value: undefined });
            next.catch(() => {}); // awaited on the next turn, or dropped if this one fails
            await take(itemOf(change));
          }
        } finally {
          await next.catch(() => {});
          await changes.return?.();
        }
        if (expected !== until + 1) {
          throw new BackupError(
            `${what}: the feed of ${source.name} no longer holds change ${expected} (its retention ` +
              `removed it while the restore ran?); the store holds a partial restore (marked); restore again with force`,
          );
        }
      }
    }
    await writeBatch();
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
    throw partial(err, done);
  }
  const removed = await store.atomic().check(RESTORE_MARKER_KEY, markerVersion)
    .delete(RESTORE_MARKER_KEY).commit();
  if (!removed.ok) throw lost();
  // The values carry the backed-up store's plaintext fields: a target declaring others refuses
  // queries on the paths they lack until rekey. A backup made by Flowstate 0.7 or before does not
  // say which they carry: none is taken for carried (a query on a path they lack would silently
  // miss them), so queries wait for rekey, which stores the declared ones beside every value.
  const carried = verified.header.encrypted?.plaintext;
  if (sealedBy !== undefined) {
    if (!Array.isArray(carried) && sealedBy.carriedPlaintext().length > 0) {
      log?.(
        `the backup was made by Flowstate 0.7 or before and does not say which plaintext fields ` +
          `its sealed values carry: queries and searches on the store's plaintext paths are ` +
          `refused until you run the rekey job (flowstate jobs run rekey)`,
        "warn",
      );
    }
    await sealedBy.settlePlaintext(Array.isArray(carried) ? carried : []);
  }
  progress?.finish();
  result.holds = await store.count();
  return result;
}

/**
 * The restore job. Options: `file`, `store`, `force`, `batchSize`,
 * `increments`, `at`, `atSeq`, `from` (see {@linkcode RestoreOptions}).
 * Result: `{ file, store, entries, restored, expired, cleared, resumedFrom,
 * interruptedRunId, sha256, cancelled, changes, feedSeq }`.
 */
const restoreJob: Job<RestoreOptions> = defineJob<RestoreOptions>({
  name: "restore",
  description: "verify a backup file, then load it into a store (empty, or cleared with force)",
  optionsSchema: restoreOptions,
  defaults,
  pathOptions: ["file", "increments"],
  async run(ctx, options): Promise<JobResult> {
    const store = await ctx.store(options.store);
    const file = isAbsolute(options.file) ? options.file : resolve(options.file);
    const what = `Cannot restore ${options.file} into store "${options.store}"`;
    if (options.at !== undefined && options.atSeq !== undefined) {
      throw new TypeError(`${what}: give at (a time) or atSeq (a sequence number), not both`);
    }
    const at: { time: number } | { seq: number } | undefined = options.at !== undefined
      ? { time: parseTime(options.at, `${what}: at`) }
      : options.atSeq !== undefined
      ? { seq: options.atSeq }
      : undefined;
    if (at !== undefined && options.force) {
      throw new TypeError(
        `${what}: a point-in-time restore goes into a new, empty store only; force is refused`,
      );
    }
    let fromName = options.from;
    if (fromName === undefined && at !== undefined) {
      // The store the backup was taken of, when this config has it with a feed.
      const header = await readHeader(file).catch(() => undefined);
      if (header?.store === options.store) {
        throw new TypeError(
          `${what}: it is the store the backup was taken of; a point-in-time restore goes into ` +
            `a new, empty store: restore into a new, empty store, and move it into place after checking it`,
        );
      }
      if (
        header !== undefined && ctx.runtime.storeNames.includes(header.store) &&
        header.store !== options.store
      ) {
        const candidate = await ctx.store(header.store);
        if ((await candidate.feedInfo()).enabled) fromName = header.store;
      }
    }
    if (fromName !== undefined && fromName === options.store) {
      throw new TypeError(
        `${what}: the store to read the feed from is the store to restore into; ` +
          `restore into a new, empty store`,
      );
    }
    const from = fromName === undefined ? undefined : await ctx.store(fromName);
    if (at !== undefined) {
      ctx.log(
        `point-in-time restore at ${
          "time" in at ? new Date(at.time).toISOString() : `change ${at.seq}`
        }${from !== undefined ? `, reading the feed of store "${from.name}" after the files` : ""}`,
      );
    }
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
        increments: options.increments?.map((f) => resolve(f)),
        at,
        from,
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
        `restored ${result.restored} entries${
          result.changes > 0 ? ` (${result.changes} of them changes replayed)` : ""
        } into store "${result.store}"${
          result.resumedFrom > 0 ? ` (resumed after ${result.resumedFrom})` : ""
        }${result.expired > 0 ? `; ${result.expired} had expired and were skipped` : ""}`,
      );
    }
    return { ...result, ...(ctx.dryRun ? { dryRun: true } : {}) };
  },
});

/** The header of a backup file (its first line), unchecked beyond JSON. */
async function readHeader(file: string): Promise<BackupHeader | undefined> {
  for await (const line of readGzipLines(file, { what: `Cannot read ${file}` })) {
    return JSON.parse(line) as BackupHeader;
  }
  return undefined;
}

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
