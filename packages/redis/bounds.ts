/**
 * Keys as Redis sorted-set members, and key ranges as `ZRANGEBYLEX` bounds.
 *
 * A key is stored as its `encodeKey` bytes, whose byte-wise order is the
 * store's key order; every member of the keys set has score 0, and Redis
 * orders equal-score members byte-wise (memcmp), so `ZRANGEBYLEX` walks keys
 * in the contract's order. (The core's own `byteBounds` helper is not part of
 * `@flowstate/core/plugin` 0.3, so the few lines are here.)
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { encodeKey } from "@flowstate/core/plugin";
import type { Key } from "@flowstate/core";

/** A key as the bytes Redis stores (a `Buffer`: ioredis sends it as is). */
export function member(key: Key): Buffer {
  const bytes = encodeKey(key);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** `ZRANGEBYLEX` bounds: `min` is `-`, `[bytes` or `(bytes`; `max` is `+` or `(bytes`. */
export interface LexRange {
  /** Lower bound. */
  min: Buffer;
  /** Upper bound (always exclusive, or none). */
  max: Buffer;
}

const NONE_BELOW = Buffer.from("-");
const NONE_ABOVE = Buffer.from("+");
const INCLUSIVE = 0x5b; // "["
const EXCLUSIVE = 0x28; // "("

function bound(marker: number, bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + bytes.length);
  out[0] = marker;
  out.set(bytes, 1);
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * The lex bounds of keys strictly under `prefix`, at or after `start` (after
 * it when `startExclusive`) and before `end`.
 */
export function lexRange(
  range: { prefix?: Key; start?: Key; startExclusive?: boolean; end?: Key },
): LexRange {
  const prefix = range.prefix ?? [];
  let lower: Uint8Array | undefined;
  let lowerExclusive = false;
  let upper: Uint8Array | undefined;
  if (prefix.length > 0) {
    // Keys under the prefix are longer than its encoding and start with it;
    // the encoding followed by 0xFF is above all of them (UTF-8 has no 0xFF,
    // and an element's 0x00 is escaped as 0x00 0xFF).
    lower = encodeKey(prefix);
    lowerExclusive = true;
    upper = new Uint8Array(lower.length + 1);
    upper.set(lower);
    upper[lower.length] = 0xff;
  }
  if (range.start !== undefined) {
    const start = encodeKey(range.start);
    const c = lower === undefined ? 1 : compareBytes(start, lower);
    if (c > 0) {
      lower = start;
      lowerExclusive = range.startExclusive === true;
    } else if (c === 0 && range.startExclusive) {
      lowerExclusive = true;
    }
  }
  if (range.end !== undefined) {
    const end = encodeKey(range.end);
    if (upper === undefined || compareBytes(end, upper) < 0) upper = end;
  }
  return {
    min: lower === undefined ? NONE_BELOW : bound(lowerExclusive ? EXCLUSIVE : INCLUSIVE, lower),
    max: upper === undefined ? NONE_ABOVE : bound(EXCLUSIVE, upper),
  };
}

/** The bound just after (`(bytes`) or just before a member, to go on from where a page ended. */
export function after(m: Uint8Array): Buffer {
  return bound(EXCLUSIVE, m);
}
