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
 * - The checkpoint key itself, if the source happens to hold it, is neither
 *   copied nor compared.
 * - The target must be empty (or hold a checkpoint of a move from the same
 *   source, with `resume`); `force` clears it first and starts over.
 * - A jsonfile target rewrites its whole file on every commit, so moving a
 *   big store into one costs about (entries / batchSize) file writes of a
 *   growing file: raise `batchSize` for it.
 * - The signal (Ctrl-C) is honoured between batches and during verification:
 *   the move stops with `status: "interrupted"` and the checkpoint in place.
 * - Writers must be stopped while a store moves: entries changed behind the
 *   cursor are not copied again, and verification reports them.
 *
 * @module
 */
import { z } from "zod";
import { defineJob, type Job } from "../src/jobs/job.ts";
import type { LogLevel } from "../src/log.ts";
import { createProgress, type Progress } from "../src/jobs/progress.ts";
import { compareKeys, keysEqual } from "../src/store/keys.ts";
import type { Clock, Entry, JsonValue, Key, Store } from "../src/store/types.ts";
import { MigrationError } from "./migrate.ts";
import { systemClock } from "../src/clock.ts";
import { yieldToEventLoop } from "../src/_yield.ts";

/** Checkpoints live under this prefix in the target: `[...CHECKPOINT_PREFIX, sourceName]`. */
export const CHECKPOINT_PREFIX: Key = Object.freeze(["flowstate", "migrate-store"]);

/** An entry's `expiresAt` on the target may exceed the source's by this much (ms). */
export const EXPIRY_TOLERANCE_MS = 1000;

const CHECKPOINT_FORMAT = "flowstate.migrate-store.checkpoint";
const MAX_BATCH = 100_000;

/** The checkpoint a move keeps in the target while it runs. */
export interface MoveCheckpoint {
  /** Always `"flowstate.migrate-store.checkpoint"`. */
  format: string;
  /** The source store's name. */
  from: string;
  /** The source's plugin, to refuse resuming from another backend. */
  fromPlugin: string;
  /** The source's location, to refuse resuming from another file or server. */
  fromLocation: string;
  /** The target store's name. */
  to: string;
  /** Listing cursor after the last key of the last committed batch (`""` before the first). */
  cursor: string;
  /** The last key read from the source, or `null`. */
  lastKey: Key | null;
  /** Entries written so far. */
  count: number;
  /** Running checksum of the entries written so far (see {@linkcode MoveStoreResult.checksum}). */
  checksum: string;
  /** Entries that expired before they could be written. */
  skippedExpired: number;
  /** Batches committed so far. */
  batches: number;
  /** When the move started (ms since the epoch). */
  startedAt: number;
  /** When the last batch was committed. */
  updatedAt: number;
}

/** Options for {@linkcode moveStore}. */
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

/** What {@linkcode moveStore} reports. */
export interface MoveStoreResult {
  /** The source store's name. */
  from: string;
  /** The target store's name. */
  to: string;
  /** `completed` (copied and verified), `interrupted` (resumable) or `dry-run`. */
  status: "completed" | "interrupted" | "dry-run";
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

// --- checksum: an order-independent sum of 128-bit per-entry hashes -------

/** Four 32-bit lanes, least significant first. */
type Sum = [number, number, number, number];

const ZERO = "0".repeat(32);

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** MurmurHash3 x86_128 over the UTF-16 code units of `s` (two per 32-bit word). */
function hash128(s: string, out: Sum): void {
  let h1 = 0x9747b28c, h2 = 0x9747b28c, h3 = 0x9747b28c, h4 = 0x9747b28c;
  const c1 = 0x239b961b, c2 = 0xab0e9789, c3 = 0x38b34ae5, c4 = 0xa1e38b93;
  const n = s.length;
  const blocks = n - (n % 8);
  let i = 0;
  for (; i < blocks; i += 8) {
    let k1 = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    let k2 = s.charCodeAt(i + 2) | (s.charCodeAt(i + 3) << 16);
    let k3 = s.charCodeAt(i + 4) | (s.charCodeAt(i + 5) << 16);
    let k4 = s.charCodeAt(i + 6) | (s.charCodeAt(i + 7) << 16);
    k1 = Math.imul(rotl(Math.imul(k1, c1), 15), c2);
    h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, c2), 16), c3);
    h2 ^= k2;
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, c3), 17), c4);
    h3 ^= k3;
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, c4), 18), c1);
    h4 ^= k4;
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  if (i < n) {
    const t = [0, 0, 0, 0];
    for (let j = 0; i + j < n; j++) t[j >> 1] |= s.charCodeAt(i + j) << ((j & 1) * 16);
    h1 ^= Math.imul(rotl(Math.imul(t[0], c1), 15), c2);
    h2 ^= Math.imul(rotl(Math.imul(t[1], c2), 16), c3);
    h3 ^= Math.imul(rotl(Math.imul(t[2], c3), 17), c4);
    h4 ^= Math.imul(rotl(Math.imul(t[3], c4), 18), c1);
  }
  const len = n * 2;
  h1 ^= len, h2 ^= len, h3 ^= len, h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0, h3 = (h3 + h1) | 0, h4 = (h4 + h1) | 0;
  h1 = fmix(h1), h2 = fmix(h2), h3 = fmix(h3), h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0, h3 = (h3 + h1) | 0, h4 = (h4 + h1) | 0;
  out[0] = h1 >>> 0, out[1] = h2 >>> 0, out[2] = h3 >>> 0, out[3] = h4 >>> 0;
}

/** A running order-independent checksum over entries. */
class Checksum {
  #sum: Sum = [0, 0, 0, 0];
  #h: Sum = [0, 0, 0, 0];

  constructor(hex: string = ZERO) {
    if (!/^[0-9a-f]{32}$/.test(hex)) throw new TypeError(`Invalid checksum ${hex}`);
    for (let i = 0; i < 4; i++) this.#sum[i] = parseInt(hex.slice(24 - i * 8, 32 - i * 8), 16);
  }

  /** Add an entry; returns its hash, which {@linkcode addHash} can add to another sum. */
  add(key: Key, valueText: string, expiresAt: number | null): Readonly<Sum> {
    hash128(`${JSON.stringify(key)}\n${valueText}\n${expiresAt ?? ""}`, this.#h);
    this.addHash(this.#h);
    return this.#h;
  }

  addHash(h: Readonly<Sum>): void {
    let carry = 0;
    for (let i = 0; i < 4; i++) {
      const s = this.#sum[i] + h[i] + carry;
      this.#sum[i] = s >>> 0;
      carry = s > 0xffffffff ? 1 : 0;
    }
  }

  toString(): string {
    let hex = "";
    for (let i = 3; i >= 0; i--) hex += this.#sum[i].toString(16).padStart(8, "0");
    return hex;
  }
}

// --- the move ---------------------------------------------------------------

function isCheckpoint(value: unknown): value is MoveCheckpoint {
  const v = value as Partial<MoveCheckpoint> | null;
  return typeof v === "object" && v !== null && v.format === CHECKPOINT_FORMAT &&
    typeof v.cursor === "string" && typeof v.count === "number" &&
    typeof v.checksum === "string" && /^[0-9a-f]{32}$/.test(v.checksum) &&
    typeof v.fromPlugin === "string" && typeof v.fromLocation === "string";
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

function keyText(key: Key): string {
  return JSON.stringify(key);
}

interface Verification {
  count: number;
  checksum: string;
  targetCount: number;
  targetChecksum: string;
  expiryAdjusted: number;
  differences: number;
  examples: string[];
}

/** Compare source and target side by side in key order. */
async function verify(
  source: Store,
  target: Store,
  reserved: Key,
  options: {
    batchSize: number;
    clock: Clock;
    progress: Progress;
    total: number;
    signal: AbortSignal;
  },
): Promise<Verification | null> {
  const src = source.list({ batchSize: options.batchSize });
  const dst = target.list({ batchSize: options.batchSize });
  const next = async (it: AsyncIterator<Entry>): Promise<Entry | null> => {
    for (;;) {
      const r = await it.next();
      if (r.done) return null;
      if (!keysEqual(r.value.key, reserved)) return r.value;
    }
  };
  const sourceSum = new Checksum();
  const targetSum = new Checksum();
  const out: Verification = {
    count: 0,
    checksum: "",
    targetCount: 0,
    targetChecksum: "",
    expiryAdjusted: 0,
    differences: 0,
    examples: [],
  };
  const differ = (message: string) => {
    out.differences++;
    if (out.examples.length < 3) out.examples.push(message);
  };
  const expiring = (e: Entry) =>
    e.expiresAt !== null && e.expiresAt <= options.clock.now() + EXPIRY_TOLERANCE_MS;
  options.progress.start(`Verifying "${target.name}" against "${source.name}"`, options.total);
  let a = await next(src);
  let b = await next(dst);
  let seen = 0;
  while (a !== null || b !== null) {
    const c = a === null ? 1 : b === null ? -1 : compareKeys(a.key, b.key);
    if (c === 0) {
      const at = JSON.stringify(a!.value);
      const bt = JSON.stringify(b!.value);
      const h = sourceSum.add(a!.key, at, a!.expiresAt);
      if (at === bt && a!.expiresAt === b!.expiresAt) targetSum.addHash(h);
      else targetSum.add(b!.key, bt, b!.expiresAt);
      out.count++;
      out.targetCount++;
      if (at !== bt) {
        differ(`${keyText(a!.key)} has a different value in "${target.name}"`);
      } else if (a!.expiresAt !== b!.expiresAt) {
        const d = a!.expiresAt === null || b!.expiresAt === null
          ? Infinity
          : Math.abs(b!.expiresAt - a!.expiresAt);
        if (d <= EXPIRY_TOLERANCE_MS) out.expiryAdjusted++;
        else {
          differ(
            `${keyText(a!.key)} expires at ${a!.expiresAt ?? "never"} in "${source.name}" ` +
              `but at ${b!.expiresAt ?? "never"} in "${target.name}"`,
          );
        }
      }
      a = await next(src);
      b = await next(dst);
    } else if (c < 0) {
      if (!expiring(a!)) {
        sourceSum.add(a!.key, JSON.stringify(a!.value), a!.expiresAt);
        out.count++;
        differ(`${keyText(a!.key)} is missing from "${target.name}"`);
      }
      a = await next(src);
    } else {
      if (!expiring(b!)) {
        targetSum.add(b!.key, JSON.stringify(b!.value), b!.expiresAt);
        out.targetCount++;
        differ(`${keyText(b!.key)} is in "${target.name}" but not in "${source.name}"`);
      }
      b = await next(dst);
    }
    if (++seen % 1000 === 0) {
      options.progress.update(seen);
      await yieldToEventLoop();
      if (options.signal.aborted) {
        await src.return?.();
        await dst.return?.();
        return null;
      }
    }
  }
  options.progress.update(seen);
  options.progress.finish();
  out.checksum = sourceSum.toString();
  out.targetChecksum = targetSum.toString();
  return out;
}

/**
 * Copy every live entry of `source` into `target` in key order, in atomic
 * batches that each also write a checkpoint, then verify the copy entry by
 * entry and delete the checkpoint. `source` is only read.
 *
 * Refuses (with a {@linkcode MigrationError}, writing nothing) when the
 * target holds entries and no checkpoint of this source (unless `force`),
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
 *
 * await using source = await openStore({ plugin: "memory" }, { name: "old" });
 * await using target = await openStore({ plugin: "memory" }, { name: "new" });
 * await source.set(["flow", "counter", "count"], 1);
 * const moved = await moveStore(source, target);
 * const count = await target.get(["flow", "counter", "count"]);
 * if (moved.status !== "completed" || !moved.verified || count?.value !== 1) {
 *   throw new Error(`move ${moved.status}`);
 * }
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
      const n = await target.count();
      throw new MigrationError(
        `${what}: "${target.name}" is not empty (${n} entr${n === 1 ? "y" : "ies"}, the first ` +
          `${keyText(first)}) and holds no checkpoint of a move from "${source.name}"; ` +
          `pass --force (force: true) to clear it first`,
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
    from: source.name,
    to: target.name,
    status: "dry-run",
    resumed,
    copied: 0,
    total: checkpoint?.count ?? 0,
    skippedExpired: checkpoint?.skippedExpired ?? 0,
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
  const startedAt = checkpoint?.startedAt ?? clock.now();
  let running = new Checksum(checkpoint?.checksum ?? ZERO);
  let count = checkpoint?.count ?? 0;
  let skipped = checkpoint?.skippedExpired ?? 0;
  let batches = checkpoint?.batches ?? 0;
  let lastKey: Key | null = checkpoint?.lastKey ?? null;
  const copyStart = performance.now();
  progress.start(`Moving "${source.name}" to "${target.name}"`, sourceCount);
  if (count > 0) progress.update(count);
  const listing = source.list({
    cursor: checkpoint?.cursor || undefined,
    batchSize: Math.min(batchSize, 10_000),
  });
  let interrupted = false;
  try {
    let exhausted = false;
    while (!exhausted) {
      await yieldToEventLoop();
      if (signal.aborted) {
        interrupted = true;
        break;
      }
      const batch: Entry[] = [];
      while (batch.length < batchSize) {
        const r = await listing.next();
        if (r.done) {
          exhausted = true;
          break;
        }
        if (!keysEqual(r.value.key, reserved)) batch.push(r.value);
        lastKey = r.value.key;
      }
      // "" until the listing yields its first entry: then still where the checkpoint is.
      const cursor = listing.cursor === "" ? (checkpoint?.cursor ?? "") : listing.cursor;
      if (batch.length === 0 && cursor === (checkpoint?.cursor ?? "")) break;
      const op = target.atomic().check(reserved, checkpointVersion);
      const sum = new Checksum(running.toString());
      let written = 0;
      let expired = 0;
      for (const entry of batch) {
        const text = JSON.stringify(entry.value);
        if (entry.expiresAt === null) {
          op.set(entry.key, entry.value);
        } else {
          const expireIn = entry.expiresAt - clock.now();
          if (!(expireIn > 0)) {
            expired++;
            continue;
          }
          op.set(entry.key, entry.value, { expireIn });
        }
        sum.add(entry.key, text, entry.expiresAt);
        written++;
      }
      const next: MoveCheckpoint = {
        format: CHECKPOINT_FORMAT,
        from: source.name,
        fromPlugin: source.plugin,
        fromLocation: source.location,
        to: target.name,
        cursor,
        lastKey: lastKey === null ? null : [...lastKey],
        count: count + written,
        checksum: sum.toString(),
        skippedExpired: skipped + expired,
        batches: batches + 1,
        startedAt,
        updatedAt: clock.now(),
      };
      op.set(reserved, next as unknown as JsonValue);
      const committed = await op.commit();
      if (!committed.ok) {
        throw new MigrationError(
          `${what}: the checkpoint ${keyText(reserved)} in "${target.name}" changed during the ` +
            `move; is another move into "${target.name}" running? Stop it, then run again with --resume`,
        );
      }
      checkpoint = next;
      checkpointVersion = committed.version;
      running = sum;
      count = next.count;
      skipped = next.skippedExpired;
      batches = next.batches;
      result.copied += written;
      result.batches++;
      progress.advance(written + expired);
    }
  } finally {
    await listing.return?.();
  }
  result.copyMs = performance.now() - copyStart;
  result.total = count;
  result.skippedExpired = skipped;
  result.entriesPerSecond = result.copyMs > 0
    ? Math.round(result.copied / (result.copyMs / 1000))
    : 0;
  if (interrupted) {
    progress.finish(
      `Interrupted after ${count} entries; run again with --resume (resume: true) to continue`,
    );
    result.status = "interrupted";
    return result;
  }
  progress.finish();
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
    const sourceChanged = check.count !== count || check.checksum !== running.toString();
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

async function firstKey(store: Store): Promise<Key | null> {
  for await (const entry of store.list({ limit: 1 })) return entry.key;
  return null;
}

// --- the job --------------------------------------------------------------------

/** Options of the `migrate-store` job. */
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
