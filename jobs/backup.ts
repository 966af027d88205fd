/**
 * The `backup` job: a snapshot of one store (or of each store) in one
 * compressed, versioned, checksummed file that `restore` can load into any
 * backend.
 *
 * ```yaml
 * jobs:
 *   backup: { schedule: "0 3 * * *", options: { all: true } }
 * ```
 *
 * ## File format (version 1)
 *
 * A gzip'd text file of newline-delimited JSON, `<home>/backups/<store>-<timestamp>.fsbackup`:
 *
 * 1. a header: `{ "format": "flowstate.backup", "version": 1, "store", "plugin", "createdAt",
 *    "origin" }` (`createdAt` is an ISO date; `store` and `plugin` say where it came from;
 *    `origin`, written by the backup job after 0.5, says whose store it is: a SHA-256 of the
 *    project home's real path and the store name, which pruning matches; restore ignores it,
 *    and older versions read the file as before);
 * 2. one line per live entry, in key order: `{ "key": [...], "value": ..., "expiresAt": ms | null }`;
 * 3. a trailer: `{ "end": "flowstate.backup", "entries": N, "sha256": "<hex>", "consistency" }`,
 *    where `sha256` covers the entry lines (each line's UTF-8 bytes plus its `\n`).
 *
 * A store that keeps a change feed also records, in the header, `feedSeq` and
 * `feedAt` (the feed's last sequence number, read before the snapshot starts,
 * and that change's commit time) and, in the trailer, `feedSeqEnd` (the last
 * one read after the entries): replaying the feed's changes after `feedSeq`
 * over the snapshot is exact, and a point-in-time restore needs a point at or
 * after `feedSeqEnd`.
 *
 * ## Incremental backups (format version 2)
 *
 * `since: <previous file>` writes only the feed's changes after the previous
 * backup (a full one's `feedSeq`, an increment's `toSeq`), in the same
 * container: a header `{ "format", "version": 2, "kind": "increment", "store",
 * "plugin", "createdAt", "fromSeq", "toSeq", "toAt", "base" }` (`base`: the
 * SHA-256 of the full backup file the chain starts from), one line per change
 * in sequence order `{ "seq", "at", "key", "op": "set" | "delete", "value",
 * "expiresAt", "by" }`, and the same trailer with the SHA-256 of the lines.
 * It is refused when the feed no longer holds the changes right after the
 * previous backup (its retention removed them): take a full backup then.
 *
 * The whole compressed file's SHA-256 is written beside it as `<file>.sha256`
 * in `sha256sum` format (`sha256sum -c` checks it). gzip adds its own CRC-32.
 * Versions are not written: they are not portable across backends, and a
 * restore gives every entry a new version (compare-and-set callers re-read).
 * Expired entries are not written. An encrypted store's values are written
 * as stored, sealed (the header says `encrypted: { keyIds, plaintext }`:
 * the key ids, and the plaintext paths the values carry beside their sealed
 * text): a backup file never holds a value in the clear, and restoring it
 * needs the key. The file is written to a temp file,
 * fsynced and renamed, so a crash never leaves a partial backup under the
 * final name.
 *
 * ## Consistency
 *
 * The Store contract has no snapshot read (a listing is read in batches, and
 * other writers may commit between them), so with `consistency: "snapshot"`
 * (the default) the job reads the store twice: it writes every entry while
 * hashing each key with its version and expiry, then lists the store again
 * and compares. Versions change on every write, so if both passes saw the
 * same keys at the same versions, every entry in the file held exactly that
 * value at the moment between the two passes: the file is that moment's
 * state (the only thing it can miss is a key created after the first pass
 * went by it and deleted before the second reached it). If anything
 * changed, the file is discarded and the backup retried, up to `attempts`
 * times, and then the job fails rather than write an inconsistent file.
 * `consistency: "per-key"` reads once: each entry is a value it really had,
 * but entries may come from different moments; use it for a store that is
 * never quiet. For a busy SQLite store, a point-in-time copy of the database
 * file itself (SQLite's backup API, `VACUUM INTO`) is the backend's own tool.
 * `all: true` backs up each store in turn: each file is consistent on its
 * own, not with the others.
 *
 * Memory stays constant whatever the store's size: entries are streamed from
 * the store into the compressor and the file.
 *
 * ## Retention
 *
 * Backups are kept until something deletes them. `keep: 7` (the 7 newest
 * backups of each store backed up) and/or `keepFor: 30d` (those taken less
 * than 30 days ago; with both, a backup either keeps is kept) prune the
 * directory the backups were written to after they were all written:
 * only files the job named (`<store>-<timestamp>[-inc][-N].fsbackup`) with a
 * valid header of that store, written by this project (the header's
 * `origin`; a backup an older version wrote, without one, only in
 * `<home>/backups`), never the backups just written, and a full
 * backup with its increments together (see {@linkcode pruneBackups}). What
 * was deleted is in the result's `pruned`; a failure to prune is a warning
 * (`warnings`), never a failed backup.
 *
 * ```yaml
 * jobs:
 *   backup: { schedule: "0 4 * * *", options: { all: true, keep: 7, keepFor: 30d } }
 * ```
 *
 * ## Not covered
 *
 * A backup holds a store's entries. The runs the `archive` job moved out of
 * the records store live in files under `<home>/archive/`, which no backup
 * holds: when the records store is backed up and that directory has files,
 * the result's `notCovered` says so (copy that directory with your other file
 * backups).
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { fileTimestamp, writeFileAtomic } from "../src/_fs.ts";
import { type Duration, durationProblem } from "../src/duration.ts";
import { messageOf } from "../src/errors.ts";
import { explainFsError } from "../src/store/fs_errors.ts";
import { defineJob, type Job, type JobResult } from "../src/jobs/job.ts";
import type { Progress } from "../src/jobs/progress.ts";
import type { Runtime } from "../src/runtime.ts";
import type { Change, Clock, Entry, JsonValue, Key, Store } from "../src/store/types.ts";
import {
  cancelled,
  checksumLine,
  formatBytes,
  GzipFileWriter,
  newSha256,
} from "../src/archive_format.ts";
import { systemClock } from "../src/clock.ts";
import { BackupError } from "../src/errors.ts";
import { encryptionOf } from "../src/store/sealed.ts";
import { keysEqual } from "../src/store/keys.ts";
import { changeTime } from "../src/store/store.ts";
import { verifyBackup } from "./_restore_verify.ts";
import {
  backupOrigin,
  checkPrunePolicy,
  fileSafe,
  pruneBackups,
  type PruneBackupsResult,
} from "./_backup_prune.ts";
import { archiveDir } from "../src/records/_archive_read.ts";
import {
  BACKUP_EXTENSION,
  BACKUP_FORMAT,
  type BackupConsistency,
  type BackupHeader,
  type BackupTrailer,
  type ChangeLine,
  FULL_BACKUP_VERSION,
  INCREMENT_VERSION,
  RESTORE_MARKER_KEY,
} from "./_backup_format.ts";

export {
  BACKUP_EXTENSION,
  BACKUP_FORMAT,
  BACKUP_VERSION,
  type BackupConsistency,
  type BackupHeader,
  type BackupTrailer,
  type ChangeLine,
  FULL_BACKUP_VERSION,
  INCREMENT_VERSION,
  RESTORE_MARKER_KEY,
} from "./_backup_format.ts";
export {
  pruneBackups,
  type PruneBackupsOptions,
  type PruneBackupsResult,
  type PrunedBackup,
} from "./_backup_prune.ts";

/**
 * Options of the backup job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import type { BackupOptions } from "@flowstate/core/jobs";
 *
 * const home = await Deno.makeTempDir();
 * {
 *   await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } } });
 *   await (await rt.store("main")).set(["a"], 1);
 *   const options: Partial<BackupOptions> = { store: "main", out: `${home}/nightly.fsbackup` };
 *   const run = await runJob(rt, "backup", { options });
 *   assert.equal(run.status, "succeeded");
 * }
 * assert.ok((await Deno.stat(`${home}/nightly.fsbackup`)).isFile);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface BackupOptions {
  /** The store to back up (default: the global scope's store). */
  store?: string;
  /** Back up every configured store, one file each. */
  all?: boolean;
  /**
   * The file to write; with `all`, or ending with `/` (`backups/`), the
   * directory to write into (files named `<store>-<time>.fsbackup`, which
   * `keep` and `keepFor` prune). Default: `<home>/backups/`. An existing file
   * is never overwritten. Relative: in
   * the config (`jobs.backup.options`), to the config file's folder; given to
   * `runJob`'s `options` or `backupStores`, to the working directory.
   */
  out?: string;
  /** `"snapshot"` (two passes, verified) or `"per-key"` (one pass). */
  consistency: BackupConsistency;
  /** Tries of a snapshot before giving up when the store keeps changing. */
  attempts: number;
  /**
   * An incremental backup: the previous backup file (full or increment) of
   * the same store; only the feed's changes after it are written. Needs a
   * store with a change feed. Not with `all`.
   */
  since?: string;
  /**
   * After the backup, keep only the `keep` newest backups of each store
   * backed up (an integer >= 1) in the directory written to, with their
   * chains; see {@linkcode pruneBackups}. Default: keep every backup.
   */
  keep?: number;
  /**
   * After the backup, keep only the backups taken less than this long ago
   * (`"30d"`, `"12h"`; a number is milliseconds, and is refused without a
   * unit in `flowstate.yaml` and on the command line), with their chains.
   * With `keep`, a backup either keeps is kept.
   */
  keepFor?: Duration;
}

/** Default options of the backup job. */
export const defaults = {
  consistency: "snapshot",
  attempts: 3,
} satisfies Partial<BackupOptions>;

const backupOptions = z.strictObject({
  store: z.string().min(1).optional(),
  all: z.boolean().optional(),
  out: z.string().min(1).optional(),
  consistency: z.enum(["snapshot", "per-key"]).default(defaults.consistency),
  attempts: z.number().int().min(1).max(100).default(defaults.attempts),
  since: z.string().min(1).optional(),
  keep: z.number().superRefine((value, ctx) => {
    if (!Number.isInteger(value) || value < 1) {
      ctx.addIssue({
        code: "custom",
        message: `must be a whole number of backups, 1 or more (the newest backup of a store is ` +
          `always kept), got ${value}; leave keep out to keep every backup`,
      });
    }
  }).optional(),
  keepFor: z.union([z.number(), z.string()]).superRefine((value, ctx) => {
    const problem = durationProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.message });
  }).optional(),
});

/**
 * What {@linkcode backupStore} wrote.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type BackupInfo, backupStore } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * await store.set(["a"], 1);
 * const info: BackupInfo = await backupStore(store, `${dir}/main.fsbackup`);
 * assert.deepEqual([info.store, info.plugin, info.entries], ["main", "memory", 1]);
 * assert.equal(info.bytes, (await Deno.stat(info.file)).size);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface BackupInfo {
  /** The store backed up. */
  store: string;
  /** Its plugin. */
  plugin: string;
  /** The file written (absolute). */
  file: string;
  /** Entries written. */
  entries: number;
  /** Size of the compressed file in bytes. */
  bytes: number;
  /** SHA-256 (hex) of the compressed file, also in `<file>.sha256`. */
  sha256: string;
  /** How the snapshot was taken. */
  consistency: BackupConsistency;
  /** How many tries the snapshot took. */
  attempts: number;
  /** A full backup of a store with a feed: the feed position it records (`feedSeq`). */
  feedSeq?: number;
  /** An increment: the sequence numbers it covers, after `fromSeq` up to `toSeq`. */
  fromSeq?: number;
  /** An increment: the last sequence number it covers. */
  toSeq?: number;
}

/**
 * Options for {@linkcode backupStore}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { backupStore, type BackupStoreOptions } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * await store.set(["cache", "x"], 1);
 * await store.set(["orders", "1"], 2);
 * const options: BackupStoreOptions = { exclude: (key) => key[0] === "cache", attempts: 3 };
 * assert.equal((await backupStore(store, `${dir}/main.fsbackup`, options)).entries, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface BackupStoreOptions {
  /** See {@linkcode BackupOptions.consistency} (default `"snapshot"`). */
  consistency?: BackupConsistency;
  /** See {@linkcode BackupOptions.attempts} (default 3). */
  attempts?: number;
  /** Stops the backup between batches; nothing is left behind. */
  signal?: AbortSignal;
  /** Receives progress. */
  progress?: Progress;
  /** Receives log lines. */
  log?: (message: string, level?: "info" | "warn") => void;
  /** Time source for `createdAt` (default: the system clock). */
  clock?: Clock;
  /** Entries to leave out (the backup job's own, still running, run record). */
  exclude?: (key: Key) => boolean;
  /**
   * Whose store this is, written into the header as `origin` (the backup job
   * gives a hash of the project's home and the store name): pruning with
   * `project` deletes only the backups of its own stores.
   */
  origin?: string;
}

const LIST_BATCH = 1000;
const CHECK_EVERY = 1000;
/** About how many bytes of entries (as backup lines) one page of the listing holds. */
const LIST_BYTES = 32 * 1024 * 1024;
/** The first page's size, before the entries' size is known (16 values of 16 MiB at most). */
const FIRST_PAGE = 16;

/** The entries read so far and their size as backup lines: it sizes the next pages. */
interface ListStats {
  entries: number;
  bytes: number;
}

/**
 * Every entry of `store` in key order, in pages that hold about
 * {@linkcode LIST_BYTES} (at most {@linkcode LIST_BATCH} entries), sized by
 * the entries of the page before as `stats` counts them (the caller keeps it
 * up to date; a listing that counts nothing uses the average so far): a store
 * of 10 MB values is read 3 at a time, not 1,000 (gigabytes in memory at once).
 */
async function* listBounded(store: Store, stats: ListStats): AsyncGenerator<Entry> {
  let cursor: string | { start: Key } | undefined;
  // The last page's entries (or, on the check pass, the first pass's), for the next page's size.
  let seen = { ...stats };
  for (;;) {
    const entries = stats.entries - seen.entries;
    const average = entries > 0
      ? (stats.bytes - seen.bytes) / entries
      : stats.entries > 0
      ? stats.bytes / stats.entries
      : undefined;
    const size = average === undefined
      ? FIRST_PAGE
      : Math.max(1, Math.min(LIST_BATCH, Math.floor(LIST_BYTES / Math.max(1, average))));
    seen = { ...stats };
    // After the last key: by the listing's cursor, or (a store that gives none) from that key on.
    const from = cursor === undefined ? {} : typeof cursor === "string" ? { cursor } : cursor;
    // From a key on, that key comes again first: one more, so that a page still moves on.
    const limit = "start" in from ? size + 1 : size;
    const page = store.list({ batchSize: limit, limit, ...from });
    let n = 0;
    let last: Key | undefined;
    for await (const entry of page) {
      n++;
      if (last === undefined && "start" in from && keysEqual(entry.key, from.start)) continue;
      last = entry.key;
      yield entry;
    }
    if (n < limit || last === undefined) return;
    cursor = typeof page.cursor === "string" && page.cursor !== "" ? page.cursor : { start: last };
  }
}

function versionLine(entry: Entry): string {
  return `${JSON.stringify(entry.key)}\t${entry.version}\t${entry.expiresAt}\n`;
}

/**
 * Write a backup of `store` to `path` (its directory is created; an existing
 * file is replaced atomically). Resolves what was written; rejects if the
 * store holds an unfinished restore, if it kept changing for `attempts`
 * snapshot tries, or when `signal` aborts (the temp file is then removed and
 * nothing else changes).
 *
 * @example
 * ```ts
 * import { backupStore } from "@flowstate/core/jobs";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * await store.set(["flow", "counter", "count"], 1);
 * const info = await backupStore(store, `${dir}/main.fsbackup`);
 * assert.equal(info.entries, 1);
 * assert.equal(info.attempts, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function backupStore(
  store: Store,
  path: string,
  options: BackupStoreOptions = {},
): Promise<BackupInfo> {
  const what = `Cannot back up store "${store.name}"`;
  // An encrypted store is backed up as stored: its values stay sealed.
  const encryption = encryptionOf(store);
  if (encryption !== undefined) store = encryption.sealed;
  const consistency = options.consistency ?? defaults.consistency;
  const attempts = options.attempts ?? defaults.attempts;
  const clock = options.clock ?? systemClock;
  const signal = options.signal;
  const progress = options.progress;
  const exclude = options.exclude;
  const marker = await store.get<{ file?: string }>(RESTORE_MARKER_KEY);
  if (marker !== null) {
    throw new BackupError(
      `${what}: it holds an unfinished restore${
        marker.value?.file ? ` of ${marker.value.file}` : ""
      }, so its content is partial; run the restore again to finish it first`,
    );
  }
  await Deno.mkdir(dirname(path), { recursive: true }).catch((err) => {
    throw writeFailure(what, path, err);
  });
  const total = store.capabilities.count ? await store.count() : undefined;
  const feed = (await store.feedInfo()).enabled;
  const stats: ListStats = { entries: 0, bytes: 0 };
  for (let attempt = 1;; attempt++) {
    if (signal?.aborted) throw cancelled(what);
    // Read before the snapshot starts: replaying the changes after it is exact.
    const createdAt = new Date(clock.now()).toISOString();
    const mark = feed ? await feedMark(store) : undefined;
    const writer = await GzipFileWriter.create(path).catch((err) => {
      throw writeFailure(what, path, err);
    });
    try {
      const header: BackupHeader = {
        format: BACKUP_FORMAT,
        version: FULL_BACKUP_VERSION,
        store: store.name,
        plugin: store.plugin,
        createdAt,
      };
      if (options.origin !== undefined) header.origin = options.origin;
      if (encryption !== undefined) {
        header.encrypted = {
          keyIds: [...encryption.keyIds],
          plaintext: encryption.carriedPlaintext().map((p) => [...p]),
        };
      }
      if (mark !== undefined) {
        header.feedSeq = mark.seq;
        header.feedAt = mark.at;
      }
      await writer.writeLine(JSON.stringify(header));
      const entryHash = newSha256();
      const versions = newSha256();
      let entries = 0;
      // Progress counts the entries read, as `total` does: the excluded ones too (the backup
      // job's own run record), so a finished backup shows 100 %, not 7/11.
      let read = 0;
      progress?.start(`backup ${store.name}`, total);
      for await (const entry of listBounded(store, stats)) {
        read++;
        if (exclude?.(entry.key)) continue;
        const line = JSON.stringify({
          key: entry.key,
          value: entry.value,
          expiresAt: entry.expiresAt,
        });
        stats.entries++;
        stats.bytes += line.length;
        entryHash.update(line);
        entryHash.update("\n");
        versions.update(versionLine(entry));
        await writer.writeLine(line);
        if (++entries % CHECK_EVERY === 0) {
          progress?.update(read);
          if (signal?.aborted) throw cancelled(what);
        }
      }
      progress?.update(read);
      progress?.finish();
      const trailer: BackupTrailer = {
        end: BACKUP_FORMAT,
        entries,
        sha256: entryHash.digest("hex"),
        consistency,
      };
      if (feed) trailer.feedSeqEnd = (await store.feedInfo()).lastSeq;
      await writer.writeLine(JSON.stringify(trailer));
      await writer.finish();
      if (consistency === "snapshot") {
        const first = versions.digest("hex");
        progress?.start(`check ${store.name} did not change`, entries);
        const again = newSha256();
        let n = 0;
        for await (const entry of listBounded(store, stats)) {
          if (exclude?.(entry.key)) continue;
          again.update(versionLine(entry));
          if (++n % CHECK_EVERY === 0) {
            progress?.update(n);
            if (signal?.aborted) throw cancelled(what);
          }
        }
        progress?.update(n);
        progress?.finish();
        if (n !== entries || again.digest("hex") !== first) {
          await writer.abort();
          const change = n === entries ? "entries were rewritten" : `${entries} → ${n} entries`;
          if (attempt >= attempts) {
            throw new BackupError(
              `${what}: it changed while it was being read, in each of ${attempts} tries (last: ${change}); ` +
                `stop its writers and try again, or use consistency "per-key" for a backup whose entries may come from different moments`,
            );
          }
          options.log?.(
            `store "${store.name}" changed during the backup (${change}); trying again (${
              attempt + 1
            } of ${attempts})`,
            "warn",
          );
          continue;
        }
      }
      return {
        ...(await commitBackupFile(writer, path, store, entries)),
        consistency,
        attempts: attempt,
        ...(mark !== undefined ? { feedSeq: mark.seq } : {}),
      };
    } catch (err) {
      await writer.abort();
      throw writeFailure(what, path, err);
    }
  }
}

/**
 * `err`, or when it is the file system's (a full disk, an I/O error, no
 * permission: it carries an OS error code) a {@linkcode BackupError} that
 * names the backup file, says what the error means and that no backup was
 * left: the temp file is removed before this is thrown, and the store is only
 * ever read.
 */
function writeFailure(what: string, path: string, err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof BackupError) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string" && !/\(os error \d+\)/.test(err.message)) return err;
  return new BackupError(
    `${what}: cannot write ${path}: ${
      explainFsError(err)
    }; no backup was written, and the store was only read`,
    { cause: err },
  );
}

/** A feed position: a sequence number and the commit time of that change. */
export interface FeedMark {
  /** The sequence number (0: before the first change). */
  seq: number;
  /** The commit time of change `seq` (`null`: none, or no longer kept). */
  at: number | null;
}

/** The feed's last sequence number now, with its change's commit time. */
async function feedMark(store: Store): Promise<FeedMark> {
  const { lastSeq } = await store.feedInfo();
  return { seq: lastSeq, at: await changeTime(store, lastSeq) };
}

/**
 * Where the changes after a backup file start: a full backup's `feedSeq`, an
 * increment's `toSeq`; and the full backup its chain starts from. Throws a
 * `BackupError` (starting with `what`) for a full backup without a feed
 * position.
 */
export function backupPosition(
  backup: { file: string; header: BackupHeader; sha256: string },
  what: string,
): FeedMark & { base: string } {
  const h = backup.header;
  if (h.kind === "increment") {
    return { seq: h.toSeq!, at: h.toAt ?? null, base: h.base! };
  }
  if (typeof h.feedSeq !== "number") {
    throw new BackupError(
      `${what}: ${backup.file} records no position in a change feed (store "${h.store}" kept no ` +
        `feed when it was taken, or an older Flowstate wrote it); take a full backup first ` +
        `(flowstate backup --store ${h.store}) and base increments on it`,
    );
  }
  return { seq: h.feedSeq, at: h.feedAt ?? null, base: backup.sha256 };
}

/**
 * Write an incremental backup of `store` to `path`: the feed's changes after
 * the backup file `previous` (a full backup, or an increment), in the same
 * container as a full backup (header, lines, trailer with their SHA-256,
 * `.sha256` beside it). Rejects with a `BackupError` when the store keeps no
 * feed, when `previous` was taken of another store, or when the feed no
 * longer holds the changes right after it (its retention removed them: take
 * a full backup).
 *
 * @example
 * ```ts
 * import { backupIncrement, backupStore } from "@flowstate/core/jobs";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory", changes: { keep: "30d" } }, {
 *   name: "main",
 * });
 * await store.set(["a"], 1);
 * await backupStore(store, `${dir}/full.fsbackup`);
 * await store.set(["b"], 2);
 * await store.delete(["a"]);
 * const info = await backupIncrement(store, `${dir}/inc1.fsbackup`, `${dir}/full.fsbackup`);
 * assert.equal(info.entries, 2);
 * assert.deepEqual([info.fromSeq, info.toSeq], [1, 3]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function backupIncrement(
  store: Store,
  path: string,
  previous: string,
  options: BackupStoreOptions = {},
): Promise<BackupInfo> {
  const what = `Cannot back up the changes of store "${store.name}" since ${previous}`;
  const encryption = encryptionOf(store);
  if (encryption !== undefined) store = encryption.sealed;
  const clock = options.clock ?? systemClock;
  const { signal, progress, exclude } = options;
  const feed = await store.feedInfo();
  if (!feed.enabled) {
    throw new BackupError(
      `${what}: the store keeps no change feed; add changes: { keep: "30d" } to its config ` +
        `(increments start from a full backup taken with the feed on)`,
    );
  }
  let prev;
  let prevFile: Deno.FileInfo;
  try {
    // What the file was when it was read: the same file must still be there at the end.
    prevFile = await Deno.stat(previous);
    prev = await verifyBackup(previous, { what: `${what}: the backup it follows` });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new BackupError(`${what}: ${previous} does not exist`, { cause: err });
    }
    throw err;
  }
  if (prev.header.store !== store.name) {
    throw new BackupError(
      `${what}: ${previous} is a backup of store "${prev.header.store}"; give a backup of "${store.name}"`,
    );
  }
  const from = backupPosition(prev, what);
  if (feed.lastSeq < from.seq) {
    throw new BackupError(
      `${what}: the store's feed ends at change ${feed.lastSeq}, before ${previous}'s position ` +
        `(${from.seq}): it is not the store that backup was taken of (or its feed was reset); take a full backup`,
    );
  }
  if (feed.firstSeq > from.seq + 1) {
    throw new BackupError(
      `${what}: the feed no longer holds the changes after ${previous} (it needs change ${
        from.seq + 1
      }, the oldest kept is ${feed.firstSeq}: its retention removed them); take a full backup ` +
        `(flowstate backup --store ${store.name}) and base the next increments on it`,
    );
  }
  if (from.at !== null && from.seq >= feed.firstSeq) {
    const at = await changeTime(store, from.seq);
    if (at !== from.at) {
      throw new BackupError(
        `${what}: change ${from.seq} of the store's feed is not the one ${previous} ends at ` +
          `(committed at ${at === null ? "?" : new Date(at).toISOString()}, not ${
            new Date(from.at).toISOString()
          }): the feed was reset or this is another store; take a full backup`,
      );
    }
  }
  // Read before the position: every change committed before this time is in the file.
  const createdAt = new Date(clock.now()).toISOString();
  const to = await feedMark(store);
  await Deno.mkdir(dirname(path), { recursive: true }).catch((err) => {
    throw writeFailure(what, path, err);
  });
  const writer = await GzipFileWriter.create(path).catch((err) => {
    throw writeFailure(what, path, err);
  });
  try {
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      version: INCREMENT_VERSION,
      kind: "increment",
      store: store.name,
      plugin: store.plugin,
      createdAt,
      fromSeq: from.seq,
      toSeq: to.seq,
      toAt: to.at,
      base: from.base,
    };
    if (options.origin !== undefined) header.origin = options.origin;
    if (encryption !== undefined) header.encrypted = { keyIds: [...encryption.keyIds] };
    await writer.writeLine(JSON.stringify(header));
    const hash = newSha256();
    let entries = 0;
    let expected = from.seq + 1;
    progress?.start(`changes of ${store.name}`, to.seq - from.seq);
    if (to.seq > from.seq) {
      for await (const change of store.changes({ since: from.seq })) {
        if (change.seq > to.seq) break;
        if (change.seq !== expected) {
          throw new BackupError(
            `${what}: the feed skipped from change ${expected - 1} to ${change.seq} while it was ` +
              `read (its retention removed them meanwhile?); take a full backup`,
          );
        }
        expected++;
        if (expected % CHECK_EVERY === 0) {
          progress?.update(expected - from.seq - 1);
          if (signal?.aborted) throw cancelled(what);
        }
        if (exclude?.(change.key)) continue;
        const line = JSON.stringify(changeLine(change));
        hash.update(line);
        hash.update("\n");
        await writer.writeLine(line);
        entries++;
      }
      if (expected !== to.seq + 1) {
        throw new BackupError(
          `${what}: the feed ended at change ${
            expected - 1
          } while it was read, before ${to.seq}; take a full backup`,
        );
      }
    }
    progress?.update(to.seq - from.seq);
    progress?.finish();
    const trailer: BackupTrailer = {
      end: BACKUP_FORMAT,
      entries,
      sha256: hash.digest("hex"),
      consistency: "snapshot",
    };
    await writer.writeLine(JSON.stringify(trailer));
    await writer.finish();
    // A prune (another process's backup job with keep) may have deleted the backup this one
    // follows while it was written: an increment without it could never be restored.
    await checkStillThere(previous, prevFile, what, store.name);
    return {
      ...(await commitBackupFile(writer, path, store, entries)),
      consistency: "snapshot",
      attempts: 1,
      fromSeq: from.seq,
      toSeq: to.seq,
    };
  } catch (err) {
    await writer.abort();
    throw writeFailure(what, path, err);
  }
}

/**
 * Throws a `BackupError` when `file` is no longer the file `before` was
 * stat'ed from (deleted, or replaced: another size, time or inode).
 */
async function checkStillThere(
  file: string,
  before: Deno.FileInfo,
  what: string,
  storeName: string,
): Promise<void> {
  let now: Deno.FileInfo | undefined;
  try {
    now = await Deno.stat(file);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const same = now !== undefined && now.size === before.size &&
    now.mtime?.getTime() === before.mtime?.getTime() && now.ino === before.ino &&
    now.dev === before.dev;
  if (!same) {
    throw new BackupError(
      `${what}: ${file} was ${
        now === undefined ? "deleted" : "replaced"
      } while the increment was written (a prune of old backups, keep/keepFor, removed it?), ` +
        `so the increment would have no base to restore onto; nothing was written. Take a full ` +
        `backup (flowstate backup --store ${storeName}), or base the increment on a backup that is kept`,
    );
  }
}

/** A feed entry as an increment's line (no versions: they are not portable). */
function changeLine(change: Change): ChangeLine {
  return change.op === "set"
    ? {
      seq: change.seq,
      at: change.at,
      key: change.key,
      op: "set",
      value: change.value as JsonValue,
      expiresAt: change.expiresAt,
      by: change.by,
    }
    : {
      seq: change.seq,
      at: change.at,
      key: change.key,
      op: "delete",
      expiresAt: null,
      by: change.by,
    };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** `<dir>/<store>-<timestamp>[-inc].fsbackup`, with `-1`, `-2`… if that exists already. */
async function defaultBackupPath(
  dir: string,
  store: string,
  now: number,
  increment = false,
): Promise<string> {
  const base = join(
    dir,
    `${fileSafe(store)}-${fileTimestamp(new Date(now))}${increment ? "-inc" : ""}`,
  );
  let path = `${base}${BACKUP_EXTENSION}`;
  for (let i = 1; await exists(path); i++) path = `${base}-${i}${BACKUP_EXTENSION}`;
  return path;
}

/**
 * Options for {@linkcode backupStores}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { backupStores, type BackupStoresOptions } from "@flowstate/core/jobs";
 *
 * const home = await Deno.makeTempDir();
 * await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" }, cache: { plugin: "memory" } } } });
 * const options: BackupStoresOptions = { all: true, dryRun: true };
 * const result = await backupStores(rt, options);
 * assert.equal(result.files.length, 2);
 * assert.equal(result.dryRun, true);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface BackupStoresOptions extends Partial<BackupOptions> {
  /** Stops between batches and between stores. */
  signal?: AbortSignal;
  /** Receives progress. */
  progress?: Progress;
  /** Receives log lines. */
  log?: (message: string, level?: "info" | "warn") => void;
  /** Report what would be written, write nothing. */
  dryRun?: boolean;
  /**
   * The job run doing the backup: its own record (still `running`) in the
   * records store is left out of the backup, so a restore never brings back
   * a run that looks forever unfinished.
   */
  runId?: string;
}

/**
 * What {@linkcode backupStores} did (or, in a dry run, would do).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { type BackupResult, backupStores } from "@flowstate/core/jobs";
 *
 * const home = await Deno.makeTempDir();
 * await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } } });
 * await (await rt.store("main")).set(["a"], 1);
 * const result: BackupResult = await backupStores(rt, { store: "main" });
 * assert.equal(result.entries, result.files[0].entries);
 * assert.equal(result.bytes, result.files[0].bytes);
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface BackupResult {
  /** One backup per store. In a dry run, `bytes`, `sha256`… are 0 or empty. */
  files: BackupInfo[];
  /** Entries written, over all files. */
  entries: number;
  /** Bytes written, over all files. */
  bytes: number;
  /** `true` in a dry run. */
  dryRun: boolean;
  /**
   * With `keep` or `keepFor`: the backups deleted after this one was written
   * (in a dry run, those that would be), and those kept; otherwise `null`.
   */
  pruned: PruneBackupsResult | null;
  /**
   * What went wrong after the backups were written (a backup that could not
   * be pruned): the backups themselves are whole.
   */
  warnings: string[];
  /** What these backups do not hold (the archived runs under `<home>/archive/`). */
  notCovered: NotCovered[];
}

/**
 * Something Flowstate keeps that a backup does not hold (see
 * {@linkcode BackupResult.notCovered}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import { backupStores, type NotCovered } from "@flowstate/core/jobs";
 *
 * const home = await Deno.makeTempDir();
 * let now = Date.UTC(2026, 0, 1);
 * await using rt = await openRuntime({ home, config: { stores: { main: { plugin: "memory" } } }, clock: { now: () => now } });
 * await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * now += 40 * 86_400_000;
 * await runJob(rt, "archive", {}); // moves the run into <home>/archive/
 * const [archive]: NotCovered[] = (await backupStores(rt, { all: true })).notCovered;
 * assert.equal(archive.path, `${home}/archive`);
 * assert.ok(archive.files >= 2 && archive.bytes > 0); // an archive file and its index
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export interface NotCovered {
  /** The directory not backed up (absolute). */
  path: string;
  /** What it holds. */
  what: string;
  /** Files in it. */
  files: number;
  /** Their size in bytes. */
  bytes: number;
  /** What to do about it. */
  advice: string;
}

/**
 * The archive directory, when it holds files and the records store (whose
 * runs were moved there) is among `stores`.
 */
async function archiveNotCovered(runtime: Runtime, stores: string[]): Promise<NotCovered[]> {
  const records = runtime.config.records;
  if (!stores.includes(records)) return [];
  const path = archiveDir(runtime.home);
  let files = 0;
  let bytes = 0;
  try {
    for await (const entry of Deno.readDir(path)) {
      if (!entry.isFile) continue;
      files++;
      bytes += (await Deno.stat(join(path, entry.name)).catch(() => ({ size: 0 }))).size;
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  if (files === 0) return [];
  return [{
    path,
    what: `runs the archive job moved out of store "${records}" (runs ls --archived reads them)`,
    files,
    bytes,
    advice: "copy that directory with your other file backups; restore puts back a store, not it",
  }];
}

/**
 * Back up the runtime's store `options.store` (default: the global scope's)
 * or, with `all`, each configured store in turn, one file each, under
 * `<home>/backups/` (or `out`). An existing file is never overwritten. With
 * several stores, one that cannot be backed up does not stop the others: it
 * rejects once every other store is backed up (and pruned), naming the stores
 * that failed and the files written.
 *
 * @example
 * ```ts
 * import { backupStores } from "@flowstate/core/jobs";
 * import { openRuntime } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const home = await Deno.makeTempDir();
 * const config = { stores: { main: { plugin: "memory" } } };
 * await using rt = await openRuntime({ home, config });
 * await (await rt.store("main")).set(["flow", "counter", "count"], 1);
 * const { files } = await backupStores(rt, { all: true });
 * assert.equal(files.length, 1);
 * assert.equal(files[0].entries, 1);
 * await Deno.stat(files[0].file); // <home>/backups/main-<timestamp>.fsbackup
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export async function backupStores(
  runtime: Runtime,
  options: BackupStoresOptions = {},
): Promise<BackupResult> {
  const what = "Cannot back up";
  if (options.all && options.store !== undefined) {
    throw new TypeError(`${what}: give store or all, not both`);
  }
  if (options.all && options.since !== undefined) {
    throw new TypeError(
      `${what}: since (an incremental backup) takes one store: give store, not all`,
    );
  }
  const names = options.all ? [...runtime.storeNames] : [
    options.store ?? runtime.config.scopes.global,
  ];
  const prune = options.keep !== undefined || options.keepFor !== undefined;
  // A policy that cannot be applied is refused before anything is written.
  if (prune) checkPrunePolicy({ stores: names, keep: options.keep, keepFor: options.keepFor });
  for (const name of names) {
    // Let the runtime word an unknown name (with the known names and a suggestion).
    if (!runtime.storeNames.includes(name)) await runtime.store(name);
  }
  const out = options.out === undefined ? undefined : resolve(options.out);
  // `out` names a folder with all, or when it ends with a separator (`backups/`).
  const intoFolder = options.all || (options.out !== undefined && /[/\\]$/.test(options.out));
  const single = !intoFolder && out !== undefined;
  const dir = intoFolder && out !== undefined ? out : join(runtime.home, "backups");
  const result: BackupResult = {
    files: [],
    entries: 0,
    bytes: 0,
    dryRun: options.dryRun ?? false,
    pruned: null,
    warnings: [],
    notCovered: [],
  };
  const runId = options.runId;
  // A dry run's increment: the chain it would join (the backups pruning must keep).
  const pendingBase = new Map<string, string>();
  // With several stores, one that cannot be backed up (its file damaged, its server down)
  // does not keep the others from being backed up: the job fails at the end, naming it.
  const failed: { store: string; error: unknown }[] = [];
  for (const name of names) {
    if (options.signal?.aborted) throw cancelled(what);
    try {
      await backupOne(name);
    } catch (err) {
      if (names.length === 1 || options.signal?.aborted) throw err;
      failed.push({ store: name, error: err });
      options.log?.(`${what} store "${name}": ${messageOf(err)}`, "warn");
    }
  }
  async function backupOne(name: string): Promise<void> {
    const store = await runtime.store(name);
    if (!single && (await Deno.stat(dir).catch(() => null))?.isFile) {
      throw new BackupError(
        `${what} store "${name}": ${dir} is a file, not a directory: move it aside, or write ` +
          `elsewhere with --out (out:)`,
      );
    }
    if (single && await exists(out)) {
      const isDir = (await Deno.stat(out).catch(() => null))?.isDirectory;
      throw new BackupError(
        isDir
          ? `${what} store "${name}" to ${out}: it is a directory; give a file in it (${
            join(out, `${name}${BACKUP_EXTENSION}`)
          }), end it with "/" (${out}/) to write a backup named by Flowstate into it, or all ` +
            `(--all) to write one file per store into it`
          : `${what} store "${name}" to ${out}: the file exists; remove it or choose another`,
      );
    }
    const since = options.since === undefined ? undefined : resolve(options.since);
    const path = single
      ? out
      : await defaultBackupPath(dir, name, runtime.clock.now(), since !== undefined);
    if (options.dryRun && since !== undefined) {
      // The previous file is verified and the feed checked as for a real increment.
      const prev = await verifyBackup(since, {
        what:
          `${what} the changes of store "${name}" since ${options.since}: the backup it follows`,
      });
      const from = backupPosition(prev, `${what} the changes of store "${name}"`);
      const { lastSeq, firstSeq, enabled } = await store.feedInfo();
      if (!enabled || firstSeq > from.seq + 1 || lastSeq < from.seq) {
        throw new BackupError(
          `${what} the changes of store "${name}" since ${options.since}: ${
            !enabled
              ? "the store keeps no change feed"
              : lastSeq < from.seq
              ? `its feed ends at change ${lastSeq}, before the backup's ${from.seq}`
              : `the feed no longer holds change ${from.seq + 1} (the oldest kept is ${firstSeq})`
          }; take a full backup`,
        );
      }
      const entries = lastSeq - from.seq;
      pendingBase.set(name, from.base);
      options.log?.(
        `would back up the changes of store "${name}" after ${from.seq} (${entries}) to ${path}`,
      );
      result.files.push({
        store: name,
        plugin: store.plugin,
        file: path,
        entries,
        bytes: 0,
        sha256: "",
        consistency: "snapshot",
        attempts: 0,
        fromSeq: from.seq,
        toSeq: lastSeq,
      });
      result.entries += entries;
      return;
    }
    if (options.dryRun) {
      const entries = await store.count();
      options.log?.(`would back up store "${name}" (${entries} entries) to ${path}`);
      result.files.push({
        store: name,
        plugin: store.plugin,
        file: path,
        entries,
        bytes: 0,
        sha256: "",
        consistency: options.consistency ?? defaults.consistency,
        attempts: 0,
      });
      result.entries += entries;
      return;
    }
    const storeOptions: BackupStoreOptions = {
      consistency: options.consistency,
      attempts: options.attempts,
      signal: options.signal,
      progress: options.progress,
      log: options.log,
      clock: runtime.clock,
      origin: await backupOrigin(runtime.home, name),
      exclude: runId !== undefined && name === runtime.config.records
        ? (key) => key[0] === "flowstate" && key.includes(runId)
        : undefined,
    };
    const info = since === undefined
      ? await backupStore(store, path, storeOptions)
      : await backupIncrement(store, path, since, storeOptions);
    options.log?.(
      `backed up ${
        since === undefined ? "" : `the changes since ${options.since} of `
      }store "${name}": ${info.entries} ${
        since === undefined ? "entries" : `changes (${info.fromSeq} < seq <= ${info.toSeq})`
      } to ${info.file} (${formatBytes(info.bytes)}, sha256 ${info.sha256.slice(0, 12)}…)`,
    );
    result.files.push(info);
    result.entries += info.entries;
    result.bytes += info.bytes;
  }
  const warn = (message: string) => {
    result.warnings.push(message);
    options.log?.(message, "warn");
  };
  if (prune) {
    // After every backup is written: a failure here is a warning, never a failed backup.
    const pruneDir = single ? dirname(out) : dir;
    try {
      result.pruned = await pruneBackups(pruneDir, {
        // A store not backed up now keeps its backups: its newest is the last sound one.
        stores: names.filter((name) => !failed.some((f) => f.store === name)),
        keep: options.keep,
        keepFor: options.keepFor,
        protect: options.dryRun ? [] : result.files.map((f) => f.file),
        project: runtime.home,
        pending: options.dryRun
          ? result.files.map((f) => ({
            store: f.store,
            createdAt: runtime.clock.now(),
            ...(pendingBase.has(f.store) ? { base: pendingBase.get(f.store) } : {}),
            named: !single,
          }))
          : [],
        dryRun: options.dryRun,
        signal: options.signal,
        now: runtime.clock.now(),
        log: options.log,
      });
      for (const f of result.pruned.failed) {
        result.warnings.push(`Cannot delete old backup ${f.file}: ${f.error}`);
      }
      if (result.pruned.cancelled) {
        warn(
          `Pruning ${pruneDir} stopped (cancelled) after ${result.pruned.removed.length} ` +
            `file(s); the backups are whole, the next run prunes the rest`,
        );
      }
    } catch (err) {
      warn(
        `Cannot prune the backups in ${pruneDir}: ${messageOf(err)}; the backups just written ` +
          `are whole`,
      );
    }
  }
  try {
    result.notCovered = await archiveNotCovered(runtime, names);
  } catch (err) {
    warn(`Cannot look at ${archiveDir(runtime.home)}: ${messageOf(err)}`);
  }
  for (const n of result.notCovered) {
    options.log?.(
      `not in the backup: ${n.path} (${n.files} files, ${
        formatBytes(n.bytes)
      }): ${n.what}; ${n.advice}`,
    );
  }
  if (failed.length > 0) {
    const written = result.files.map((f) => `${f.store} → ${f.file}`).join(", ");
    throw new BackupError(
      `${what} ${
        failed.map((f) => `store "${f.store}"`).join(", ")
      } (${failed.length} of ${names.length}): ${
        failed.map((f) => messageOf(f.error)).join("; ")
      }; ${
        written === "" ? "no other store was backed up" : `the others were backed up: ${written}`
      }`,
      { cause: failed[0].error },
    );
  }
  return result;
}

/**
 * The backup job. Options: `store` or `all`, `out`, `consistency`,
 * `attempts`, `since` (an incremental backup), `keep`, `keepFor` (pruning;
 * see {@linkcode BackupOptions}). Result: a {@linkcode BackupResult}:
 * `{ files: [{ store, plugin, file, entries, bytes, sha256, consistency,
 * attempts }], entries, bytes, dryRun, pruned, warnings, notCovered }`.
 */
const backupJob: Job<BackupOptions> = defineJob<BackupOptions>({
  name: "backup",
  description: "write a consistent, compressed, checksummed snapshot of a store (or of each)",
  optionsSchema: backupOptions,
  defaults,
  pathOptions: ["out", "since"],
  async run(ctx, options): Promise<JobResult> {
    const result = await backupStores(ctx.runtime, {
      ...options,
      signal: ctx.signal,
      progress: ctx.progress,
      log: (message, level) => ctx.log(message, level),
      dryRun: ctx.dryRun,
      runId: ctx.runId,
    });
    // Returned means done: every file written and verified (a stop signal makes
    // backupStores throw). A signal that came after the last step does not undo that.
    // Interfaces are not index signatures: the nested objects go in as the JSON they are.
    const json = (value: unknown) => JSON.parse(JSON.stringify(value)) as JsonValue;
    return {
      ...result,
      files: result.files.map((f) => ({ ...f })),
      pruned: json(result.pruned),
      notCovered: json(result.notCovered),
      cancelled: false,
    };
  },
});

export default backupJob;

/**
 * Put a finished backup file in place, write its `.sha256` beside it, and
 * say what was written (the fields every backup's result shares).
 */
async function commitBackupFile(
  writer: GzipFileWriter,
  path: string,
  store: Store,
  entries: number,
): Promise<
  { store: string; plugin: string; file: string; entries: number; bytes: number; sha256: string }
> {
  const written = await writer.commit();
  try {
    await writeFileAtomic(`${path}.sha256`, checksumLine(written.sha256, path));
  } catch (err) {
    // Without its .sha256 (a full disk), the backup is not left half-made: it goes too.
    await Deno.remove(path).catch(() => {});
    throw err;
  }
  return {
    store: store.name,
    plugin: store.plugin,
    file: path,
    entries,
    bytes: written.bytes,
    sha256: written.sha256,
  };
}
