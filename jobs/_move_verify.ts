/**
 * The verification of a store move (jobs/migrate_store.ts): the source and
 * the target are listed side by side in key order and compared entry by entry
 * (key, value, expiry), with a checksum of each side.
 *
 * @module
 */
import type { Progress } from "../src/jobs/progress.ts";
import { compareKeys, keysEqual } from "../src/store/keys.ts";
import type { Clock, Entry, Key, Store } from "../src/store/types.ts";
import { yieldToEventLoop } from "../src/_yield.ts";
import { Checksum, keyText } from "./_move_checksum.ts";

/** An entry's `expiresAt` on the target may exceed the source's by this much (ms). */
export const EXPIRY_TOLERANCE_MS = 1000;

/** What {@linkcode verify} found. */
export interface Verification {
  /** Entries counted on the source. */
  count: number;
  /** Checksum of the source. */
  checksum: string;
  /** Entries counted on the target. */
  targetCount: number;
  /** Checksum of the target. */
  targetChecksum: string;
  /** Entries whose expiry differs by at most {@linkcode EXPIRY_TOLERANCE_MS}. */
  expiryAdjusted: number;
  /** Entries that differ. */
  differences: number;
  /** The first three differences, as sentences. */
  examples: string[];
}

/**
 * Compare source and target side by side in key order, leaving out the key
 * `reserved` (the checkpoint). Entries expiring within the tolerance may be
 * missing on either side. Resolves `null` when `signal` aborts.
 */
export async function verify(
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
