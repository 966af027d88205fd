/**
 * The copy of a store move (jobs/migrate_store.ts): entries are read from the
 * source in key order and written to the target in atomic batches, each
 * commit also writing the checkpoint that lets an interrupted move resume
 * after the last committed batch.
 *
 * @module
 */
import { MigrationError } from "../src/errors.ts";
import type { Progress } from "../src/jobs/progress.ts";
import { keysEqual } from "../src/store/keys.ts";
import type { Clock, Entry, JsonValue, Key, Store } from "../src/store/types.ts";
import { yieldToEventLoop } from "../src/_yield.ts";
import { Checksum, keyText, ZERO } from "./_move_checksum.ts";

const CHECKPOINT_FORMAT = "flowstate.migrate-store.checkpoint";

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
  /** Running checksum of the entries written so far (see `MoveStoreResult.checksum`). */
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

/** Whether `value` (read at the checkpoint key) is a checkpoint of a store move. */
export function isCheckpoint(value: unknown): value is MoveCheckpoint {
  const v = value as Partial<MoveCheckpoint> | null;
  return typeof v === "object" && v !== null && v.format === CHECKPOINT_FORMAT &&
    typeof v.cursor === "string" && typeof v.count === "number" &&
    typeof v.checksum === "string" && /^[0-9a-f]{32}$/.test(v.checksum) &&
    typeof v.fromPlugin === "string" && typeof v.fromLocation === "string";
}

/** What {@linkcode copyBatches} needs. */
export interface CopyOptions {
  /** The checkpoint's key in the target (never copied). */
  reserved: Key;
  /** The start of error messages: `Cannot move store "a" to "b"`. */
  what: string;
  /** Entries per atomic commit. */
  batchSize: number;
  /** Turns `expiresAt` into `expireIn`, and stamps the checkpoint. */
  clock: Clock;
  /** Started here with `sourceCount` as the total, advanced per batch; not finished. */
  progress: Progress;
  /** Entries in the source, for the progress total. */
  sourceCount: number;
  /** Stops the copy between batches. */
  signal: AbortSignal;
  /** The checkpoint to resume after, or `null` for a fresh start. */
  checkpoint: MoveCheckpoint | null;
  /** The checkpoint entry's version in the target (`null`: none yet). */
  checkpointVersion: string | null;
}

/** Where {@linkcode copyBatches} stopped. */
export interface CopyOutcome {
  /** The signal stopped the copy before the source was exhausted. */
  interrupted: boolean;
  /** The checkpoint entry's version in the target after the last commit. */
  checkpointVersion: string | null;
  /** Entries written by the whole move, across resumes. */
  count: number;
  /** Entries that expired before they could be written (whole move). */
  skippedExpired: number;
  /** Running checksum of every entry written by the whole move. */
  checksum: string;
  /** Entries written by this run. */
  copied: number;
  /** Batches committed by this run. */
  batches: number;
}

/**
 * Copy the source's entries after the checkpoint's cursor into the target,
 * one atomic commit per batch that also writes the next checkpoint (and
 * checks the previous one's version, so two moves cannot interleave).
 * Rejects with a {@linkcode MigrationError} when that check fails.
 */
export async function copyBatches(
  source: Store,
  target: Store,
  options: CopyOptions,
): Promise<CopyOutcome> {
  const { reserved, what, batchSize, clock, progress, signal } = options;
  let { checkpoint, checkpointVersion } = options;
  const startedAt = checkpoint?.startedAt ?? clock.now();
  let running = new Checksum(checkpoint?.checksum ?? ZERO);
  let count = checkpoint?.count ?? 0;
  let skipped = checkpoint?.skippedExpired ?? 0;
  let batches = checkpoint?.batches ?? 0;
  let lastKey: Key | null = checkpoint?.lastKey ?? null;
  const out: CopyOutcome = {
    interrupted: false,
    checkpointVersion,
    count,
    skippedExpired: skipped,
    checksum: running.toString(),
    copied: 0,
    batches: 0,
  };
  progress.start(`Moving "${source.name}" to "${target.name}"`, options.sourceCount);
  if (count > 0) progress.update(count);
  const listing = source.list({
    cursor: checkpoint?.cursor || undefined,
    batchSize: Math.min(batchSize, 10_000),
  });
  try {
    let exhausted = false;
    while (!exhausted) {
      await yieldToEventLoop();
      if (signal.aborted) {
        out.interrupted = true;
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
      out.copied += written;
      out.batches++;
      progress.advance(written + expired);
    }
  } finally {
    await listing.return?.();
  }
  out.checkpointVersion = checkpointVersion;
  out.count = count;
  out.skippedExpired = skipped;
  out.checksum = running.toString();
  return out;
}
