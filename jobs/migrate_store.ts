/**
 * The `migrate-store` job: move every entry of one configured store to
 * another (any backend to any backend), resumably, and verify the copy.
 *
 * ```yaml
 * stores:
 *   old: { plugin: jsonfile, path: state.json }
 *   new: { plugin: sqlite, path: state.db }
 *   runs: { plugin: sqlite, path: runs.db }
 * records: runs     # job runs are recorded here: neither the source nor the target
 * ```
 *
 * How it works:
 * - Entries are read from the source in key order (one listing, paged) and
 *   written to the target in batches of `batchSize` (default 1000), each
 *   batch one atomic commit. The source is only read, never written.
 * - Each batch's commit also writes a checkpoint to the target at
 *   `["flowstate", "migrate-store", <source name>]`: the listing cursor after
 *   the batch's last key, the running count and a running checksum. The
 *   commit checks the checkpoint's previous version, so two moves into the
 *   same target cannot interleave. Whatever stops the move (Ctrl-C, the
 *   signal, `kill -9`, a power cut on a durable backend), the target holds
 *   exactly the batches whose commits succeeded plus the checkpoint that says
 *   so; `resume` continues after the last of them.
 * - When every entry is copied, the source and the target are read again
 *   side by side in key order and compared entry by entry (key, value,
 *   expiry); the counts and the checksums of both sides are reported. Only
 *   then is the checkpoint deleted. A difference fails the move and keeps the
 *   checkpoint (the source was probably written during the move: stop its
 *   writers and start over with `force`).
 * - Values are copied exactly (the same JSON). Versions are new: every entry
 *   gets the version of the target commit that wrote it, as any write does
 *   (the Store API cannot set a version).
 * - Expired entries are not copied. An entry with an expiry keeps it: the
 *   remaining time is computed just before its batch is written and passed
 *   as `expireIn`, so on the target its `expiresAt` equals the source's, or
 *   (with a real clock) exceeds it by the few milliseconds between two clock
 *   reads; verification accepts up to 1 s of difference and counts them as
 *   `expiryAdjusted`. An entry that expires while the move runs may be
 *   dropped: it is gone from both sides by the time they are compared.
 * - Encrypted stores: values are read opened (with the source's keys) and
 *   written through the target, so an encrypted target seals them with its
 *   own key (a move is also how to change a store's key without `rekey`).
 *   An encrypted source is never moved into a plain target: refused.
 * - The checkpoint key itself, if the source happens to hold it, is neither
 *   copied nor compared.
 * - The target must be empty (or hold a checkpoint of a move from the same
 *   source, with `resume`); `force` clears it first and starts over. A
 *   target without a checkpoint that holds exactly the source's entries is a
 *   finished move: nothing is written and the result says `alreadyMoved`.
 * - A jsonfile target rewrites its whole file on every commit, so moving a
 *   big store into one costs about (entries / batchSize) file writes of a
 *   growing file: raise `batchSize` for it.
 * - The signal (Ctrl-C) is honoured between batches and during verification:
 *   the move stops with `status: "interrupted"` and the checkpoint in place.
 * - Writers must be stopped while a store moves: entries changed behind the
 *   cursor are not copied again, and verification reports them.
 *
 * This file holds the options, the decision (fresh start, resume or refuse)
 * and the job; the batched copy with its checkpoints is in `_move_copy.ts`,
 * the side-by-side verification in `_move_verify.ts`, and the checksum both
 * keep in `_move_checksum.ts`.
 *
 * @module
 */
import { z } from "zod";
import { defineJob, type Job } from "../src/jobs/job.ts";
import type { LogLevel } from "../src/log.ts";
import { createProgress, type Progress } from "../src/jobs/progress.ts";
import type { Clock, Key, Store } from "../src/store/types.ts";
import { MigrationError } from "../src/errors.ts";
import { encryptionOf } from "../src/store/sealed.ts";
import { systemClock } from "../src/clock.ts";
import { keyText } from "./_move_checksum.ts";
import { copyBatches, isCheckpoint, type MoveCheckpoint } from "./_move_copy.ts";
import { verify } from "./_move_verify.ts";

export { EXPIRY_TOLERANCE_MS } from "./_move_verify.ts";
export type { MoveCheckpoint } from "./_move_copy.ts";

/**
 * Whether a key written through `target` reads back through `source`: the two
 * handles open one store. The key expires within a minute should a kill leave it.
 */
async function seenThrough(target: Store, source: Store): Promise<boolean> {
  const probe: Key = ["flowstate", "migrate-store-probe", crypto.randomUUID()];
  await target.set(probe, true, { expireIn: 60_000 });
  try {
    return (await source.get(probe)) !== null;
  } finally {
    await target.delete(probe);
  }
}

/** Checkpoints live under this prefix in the target: `[...CHECKPOINT_PREFIX, sourceName]`. */
export const CHECKPOINT_PREFIX: Key = Object.freeze(["flowstate", "migrate-store"]);

const MAX_BATCH = 100_000;

/**
 * Options for {@linkcode moveStore}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { moveStore, type MoveStoreOptions } from "@flowstate/core/jobs";
 *
 * await using source = await openStore({ plugin: "memory" }, { name: "old" });
 * await using target = await openStore({ plugin: "memory" }, { name: "new" });
 * await source.set(["a"], 1);
 * const options: MoveStoreOptions = { dryRun: true, batchSize: 500 };
 * const result = await moveStore(source, target, options);
 * assert.equal(result.status, "dry-run");
 * assert.equal(await target.count(), 0); // nothing copied
 * ```
 */
export interface MoveStoreOptions {
  /** Entries per atomic commit on the target (default 1000). */
  batchSize?: number;
  /** Continue an interrupted move from the target's checkpoint (without one, start afresh). */
  resume?: boolean;
  /** Clear the target first and start over, even if it holds data or a checkpoint (wins over `resume`). */
  force?: boolean;
  /** Report what would be done and change nothing. */
  dryRun?: boolean;
  /** Stop after the batch being written (or during verification); the checkpoint lets `resume` continue. */
  signal?: AbortSignal;
  /** Progress of the copy and of the verification (default: quiet). */
  progress?: Progress;
  /** Receives log lines (default: none). */
  log?: (message: string, level?: LogLevel) => void;
  /** The clock both stores use, to turn `expiresAt` into `expireIn` (default: the system clock). */
  clock?: Clock;
}

/**
 * What {@linkcode moveStore} reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { moveStore, type MoveStoreResult } from "@flowstate/core/jobs";
 *
 * await using source = await openStore({ plugin: "memory" }, { name: "old" });
 * await using target = await openStore({ plugin: "memory" }, { name: "new" });
 * await source.set(["a"], 1);
 * await source.set(["b"], 2);
 * const result: MoveStoreResult = await moveStore(source, target);
 * assert.deepEqual([result.from, result.to, result.copied, result.verified], ["old", "new", 2, true]);
 * assert.equal(result.checksum, result.targetChecksum);
 * ```
 */
export interface MoveStoreResult {
  /** The source store's name. */
  from: string;
  /** The target store's name. */
  to: string;
  /** `completed` (copied and verified), `interrupted` (resumable) or `dry-run`. */
  status: "completed" | "interrupted" | "dry-run";
  /**
   * Whether the target already held exactly the source's entries and no
   * checkpoint (a finished move run again): nothing was written, `status`
   * is `completed` and `verified` true.
   */
  alreadyMoved: boolean;
  /** Whether this run continued an earlier one's checkpoint. */
  resumed: boolean;
  /** Entries written by this run (a dry run: entries it would write, about). */
  copied: number;
  /** Entries written by the whole move, across resumes. */
  total: number;
  /** Entries that expired before they could be written (whole move). */
  skippedExpired: number;
  /** Batches committed by this run. */
  batches: number;
  /** Time this run spent copying, in ms. */
  copyMs: number;
  /** Time spent verifying, in ms. */
  verifyMs: number;
  /** This run's copy rate (entries written per second of copying). */
  entriesPerSecond: number;
  /** Whether source and target were compared and found equal. */
  verified: boolean;
  /** Entries on each side when verified (`null` unless verified). */
  count: number | null;
  /**
   * Checksum of the source when verified: the sum (mod 2^128) of a 128-bit
   * MurmurHash3 of each entry's key, value and `expiresAt` (hex); `null`
   * unless verified.
   */
  checksum: string | null;
  /** The same checksum of the target (equal unless `expiryAdjusted > 0`). */
  targetChecksum: string | null;
  /** Entries whose `expiresAt` on the target differs from the source's by at most 1 s. */
  expiryAdjusted: number;
}

/**
 * Copy every live entry of `source` into `target` in key order, in atomic
 * batches that each also write a checkpoint, then verify the copy entry by
 * entry and delete the checkpoint. `source` is only read.
 *
 * Refuses (with a {@linkcode MigrationError}, writing nothing) when the
 * target holds entries that differ from the source's and no checkpoint of
 * this source (unless `force`; equal entries are a finished move: resolves
 * `alreadyMoved`),
 * when it holds a checkpoint and neither `resume` nor `force` is given, or
 * when the checkpoint was made from another backend or location. Resolves
 * `status: "interrupted"` when `signal` aborts (after the batch in flight is
 * committed); a rerun with `resume` continues. Rejects with a
 * {@linkcode MigrationError} when verification finds a difference.
 *
 * @example
 * ```ts
 * import { moveStore } from "@flowstate/core/jobs";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * await using source = await openStore({ plugin: "memory" }, { name: "old" });
 * await using target = await openStore({ plugin: "memory" }, { name: "new" });
 * await source.set(["flow", "counter", "count"], 1);
 * const moved = await moveStore(source, target);
 * assert.equal(moved.status, "completed");
 * assert.equal(moved.verified, true);
 * assert.equal((await target.get(["flow", "counter", "count"]))?.value, 1);
 * ```
 */
export async function moveStore(
  source: Store,
  target: Store,
  options: MoveStoreOptions = {},
): Promise<MoveStoreResult> {
  const what = `Cannot move store "${source.name}" to "${target.name}"`;
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) {
    throw new RangeError(
      `${what}: batchSize must be an integer from 1 to ${MAX_BATCH} (got ${batchSize})`,
    );
  }
  if (source === target || source.name === target.name) {
    throw new RangeError(`${what}: the source and the target must be different stores`);
  }
  if (
    source.plugin === target.plugin && source.location === target.location &&
    source.capabilities.persistent
  ) {
    throw new RangeError(
      `${what}: both are the same ${source.plugin} store at ${source.location}`,
    );
  }
  if (encryptionOf(source) !== undefined && encryptionOf(target) === undefined) {
    throw new MigrationError(
      `${what}: "${source.name}" is encrypted and "${target.name}" is not, so its values would ` +
        `be written in the clear; add encrypt: { key } to "${target.name}" (its own key, or the same)`,
    );
  }
  // Two names can spell one store apart (a symlinked or hard-linked path, `localhost` for
  // `127.0.0.1`, a URL with other parameters): a key written through the target and seen through
  // the source proves it, before anything else is written (`force` would clear the source).
  if (!options.dryRun && await seenThrough(target, source)) {
    throw new RangeError(
      `${what}: both are the same ${source.plugin} store (a key written to "${target.name}" ` +
        `reads back from "${source.name}": ${target.location} and ${source.location} are one); ` +
        `move into another store`,
    );
  }
  const clock = options.clock ?? systemClock;
  const log = options.log ?? (() => {});
  const progress = options.progress ?? createProgress({ mode: "quiet" });
  const signal = options.signal ?? new AbortController().signal;
  const reserved: Key = [...CHECKPOINT_PREFIX, source.name];

  // --- decide: fresh start, resume, or refuse --------------------------------
  const found = await target.get(reserved);
  let checkpoint: MoveCheckpoint | null = null;
  let checkpointVersion: string | null = null;
  let clearFirst = false;
  if (options.force) {
    clearFirst = (await firstKey(target)) !== null;
  } else if (found !== null) {
    if (!isCheckpoint(found.value)) {
      throw new MigrationError(
        `${what}: ${keyText(reserved)} in "${target.name}" is not a checkpoint of a store move; ` +
          `pass --force (force: true) to clear "${target.name}" and start over`,
      );
    }
    if (!options.resume) {
      throw new MigrationError(
        `${what}: "${target.name}" holds an interrupted move from "${source.name}" ` +
          `(${found.value.count} entries copied, last batch at ${iso(found.value.updatedAt)}); ` +
          `pass --resume (resume: true) to continue it, or --force (force: true) to clear ` +
          `"${target.name}" and start over`,
      );
    }
    if (
      found.value.fromPlugin !== source.plugin || found.value.fromLocation !== source.location
    ) {
      throw new MigrationError(
        `${what}: the checkpoint in "${target.name}" is of a move from ${found.value.fromPlugin} ` +
          `at ${found.value.fromLocation}, but "${source.name}" is now ${source.plugin} at ` +
          `${source.location}; pass --force (force: true) to start over`,
      );
    }
    checkpoint = found.value;
    checkpointVersion = found.version;
  } else {
    const first = await firstKey(target);
    if (first !== null) {
      // A finished move deletes its checkpoint: a target equal to the source is one (a retried
      // or repeated command), anything else is refused with what differs.
      const check = await verify(source, target, reserved, {
        batchSize: Math.min(batchSize, 10_000),
        clock,
        progress,
        total: await source.count(),
        signal,
      });
      if (check === null) return { ...emptyResult(source, target, false), status: "interrupted" };
      if (check.differences === 0) {
        log(
          `Already moved: nothing to do; "${target.name}" holds the same ${check.count} entries ` +
            `as "${source.name}" (checksum ${check.checksum})`,
        );
        return {
          ...emptyResult(source, target, false),
          status: "completed",
          alreadyMoved: true,
          total: check.count,
          verified: true,
          count: check.count,
          checksum: check.checksum,
          targetChecksum: check.targetChecksum,
          expiryAdjusted: check.expiryAdjusted,
        };
      }
      throw new MigrationError(
        `${what}: "${target.name}" is not empty and differs from "${source.name}" ` +
          `(${check.differences} difference(s): ${check.examples.join("; ")}; ` +
          `"${source.name}" has ${entries(check.count)}, "${target.name}" ${check.targetCount}), ` +
          `and it holds no checkpoint of a move from "${source.name}". Check what ` +
          `"${target.name}" holds (flowstate state ls --store ${target.name}) or move into ` +
          `another store; only if its entries may be thrown away, pass --force (force: true) ` +
          `to clear it and start over`,
      );
    }
  }
  if (options.resume && checkpoint === null && !options.force) {
    log(
      `No checkpoint of a move from "${source.name}" in "${target.name}": starting from the beginning`,
    );
  }

  const resumed = checkpoint !== null;
  const result: MoveStoreResult = {
    ...emptyResult(source, target, resumed),
    total: checkpoint?.count ?? 0,
    skippedExpired: checkpoint?.skippedExpired ?? 0,
  };
  const sourceCount = await source.count();

  if (options.dryRun) {
    result.copied = Math.max(0, sourceCount - (checkpoint?.count ?? 0));
    result.batches = Math.ceil(result.copied / batchSize);
    log(
      `Would ${clearFirst ? `clear "${target.name}", then ` : ""}${
        resumed ? `resume after ${checkpoint!.count} entries and ` : ""
      }copy about ${result.copied} entries from "${source.name}" (${source.plugin}) to ` +
        `"${target.name}" (${target.plugin}) in ${result.batches} batch(es) of ${batchSize}, ` +
        `then verify`,
    );
    return result;
  }

  if (clearFirst) {
    const n = await target.clear([]);
    log(`Cleared "${target.name}" (${n} entries) before the move (force)`);
  }
  if (resumed) {
    log(
      `Resuming the move from "${source.name}" after ${checkpoint!.count} entries ` +
        `(last key ${keyText(checkpoint!.lastKey ?? [])})`,
    );
  }

  // --- copy --------------------------------------------------------------------
  const copyStart = performance.now();
  const copy = await copyBatches(source, target, {
    reserved,
    what,
    batchSize,
    clock,
    progress,
    sourceCount,
    signal,
    checkpoint,
    checkpointVersion,
  });
  const { count, checksum } = copy;
  checkpointVersion = copy.checkpointVersion;
  result.copied = copy.copied;
  result.batches = copy.batches;
  result.copyMs = performance.now() - copyStart;
  result.total = count;
  result.skippedExpired = copy.skippedExpired;
  result.entriesPerSecond = result.copyMs > 0
    ? Math.round(result.copied / (result.copyMs / 1000))
    : 0;
  if (copy.interrupted) {
    progress.finish(
      `Interrupted after ${count} entries; run again with --resume (resume: true) to continue`,
    );
    result.status = "interrupted";
    return result;
  }
  progress.finish();
  const skipped = copy.skippedExpired;
  if (skipped > 0) log(`${skipped} entries expired before they could be copied; skipped`);

  // --- verify --------------------------------------------------------------------
  const verifyStart = performance.now();
  const check = await verify(source, target, reserved, {
    batchSize: Math.min(batchSize, 10_000),
    clock,
    progress,
    total: sourceCount,
    signal,
  });
  result.verifyMs = performance.now() - verifyStart;
  if (check === null) {
    progress.finish(
      `Interrupted while verifying; every entry is copied: run again with --resume (resume: true) to verify`,
    );
    result.status = "interrupted";
    return result;
  }
  if (check.differences > 0) {
    const sourceChanged = check.count !== count || check.checksum !== checksum;
    throw new MigrationError(
      `${what}: verification failed: ${check.differences} difference(s) between the stores ` +
        `(${check.examples.join("; ")}); "${source.name}" has ${check.count} entries ` +
        `(checksum ${check.checksum}), "${target.name}" ${check.targetCount} (checksum ` +
        `${check.targetChecksum}). ${
          sourceChanged
            ? `"${source.name}" changed while it was being moved: stop its writers and run again with --force. `
            : ""
        }The checkpoint was kept`,
    );
  }
  if (check.count < count) {
    log(`${count - check.count} copied entries expired during the move (gone from both stores)`);
  }
  if (checkpointVersion !== null) {
    const deleted = await target.delete(reserved, { ifVersion: checkpointVersion });
    if (!deleted) {
      throw new MigrationError(
        `${what}: the copy is verified, but the checkpoint ${keyText(reserved)} in ` +
          `"${target.name}" changed meanwhile (another move running?); it was not deleted`,
      );
    }
  }
  result.status = "completed";
  result.verified = true;
  result.count = check.count;
  result.checksum = check.checksum;
  result.targetChecksum = check.targetChecksum;
  result.expiryAdjusted = check.expiryAdjusted;
  log(
    `Moved ${count} entries from "${source.name}" to "${target.name}" and verified them ` +
      `(checksum ${check.checksum})`,
  );
  return result;
}

function emptyResult(source: Store, target: Store, resumed: boolean): MoveStoreResult {
  return {
    from: source.name,
    to: target.name,
    status: "dry-run",
    alreadyMoved: false,
    resumed,
    copied: 0,
    total: 0,
    skippedExpired: 0,
    batches: 0,
    copyMs: 0,
    verifyMs: 0,
    entriesPerSecond: 0,
    verified: false,
    count: null,
    checksum: null,
    targetChecksum: null,
    expiryAdjusted: 0,
  };
}

function entries(n: number): string {
  return `${n} entr${n === 1 ? "y" : "ies"}`;
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

async function firstKey(store: Store): Promise<Key | null> {
  for await (const entry of store.list({ limit: 1 })) return entry.key;
  return null;
}

// --- the job --------------------------------------------------------------------

/**
 * Options of the `migrate-store` job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import type { MigrateStoreOptions } from "@flowstate/core/jobs";
 *
 * await using rt = await openRuntime({
 *   config: {
 *     stores: { old: { plugin: "memory" }, new: { plugin: "memory" }, main: { plugin: "memory" } },
 *     records: "main", // the job's run is recorded in neither the source nor the target
 *   },
 * });
 * await (await rt.store("old")).set(["a"], 1);
 * const options: Partial<MigrateStoreOptions> = { from: "old", to: "new", batchSize: 1_000 };
 * assert.equal((await runJob(rt, "migrate-store", { options })).status, "succeeded");
 * assert.equal((await (await rt.store("new")).get(["a"]))?.value, 1);
 * ```
 */
export interface MigrateStoreOptions {
  /** The configured store to copy from (only read). */
  from: string;
  /** The configured store to copy to (must be empty, unless resuming or `force`). */
  to: string;
  /** Entries per atomic commit (default 1000). */
  batchSize: number;
  /** Continue an interrupted move (default false). */
  resume: boolean;
  /** Clear the target first and start over (default false). */
  force: boolean;
}

const optionsSchema: z.ZodType<MigrateStoreOptions> = z.strictObject({
  from: z.string().min(1),
  to: z.string().min(1),
  batchSize: z.number().int().min(1).max(MAX_BATCH),
  resume: z.boolean(),
  force: z.boolean(),
});

/** Default options of the `migrate-store` job. */
export const defaults = {
  batchSize: 1000,
  resume: false,
  force: false,
} satisfies Partial<MigrateStoreOptions>;

/**
 * The `migrate-store` job: moves every entry of store `from` to store `to`,
 * resumably, and verifies the copy. Its runs are recorded in the records
 * store, which must therefore be neither `from` nor `to`.
 */
const migrateStoreJob: Job<MigrateStoreOptions> = defineJob<MigrateStoreOptions>({
  name: "migrate-store",
  description:
    "moves every entry of one store to another backend, resumably, and verifies the copy",
  optionsSchema,
  defaults,
  async run(ctx, options) {
    const records = ctx.runtime.config.records;
    if (records === options.from || records === options.to) {
      throw new MigrationError(
        `Cannot move store "${options.from}" to "${options.to}" as a recorded job: job runs are ` +
          `recorded in store "${records}" ("records" in the config), which is the move's ` +
          `${records === options.from ? "source" : "target"}. Run "flowstate migrate store ` +
          `--from ${options.from} --to ${options.to}" instead (it records nothing), or set ` +
          `"records" to a third store`,
      );
    }
    if (options.from === options.to) {
      throw new RangeError(
        `Cannot move store "${options.from}" to itself: "from" and "to" must differ`,
      );
    }
    const source = await ctx.store(options.from);
    const target = await ctx.store(options.to);
    const result = await moveStore(source, target, {
      batchSize: options.batchSize,
      resume: options.resume,
      force: options.force,
      dryRun: ctx.dryRun,
      signal: ctx.signal,
      progress: ctx.progress,
      log: (message, level) => ctx.log(message, level),
      clock: ctx.clock,
    });
    return { ...result };
  },
});

export default migrateStoreJob;
