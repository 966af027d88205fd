/**
 * Key validation and the one key ordering shared by every backend.
 *
 * @module
 */
import type { Key } from "./types.ts";

/**
 * Throw a `TypeError` unless `key` is a non-empty array of well-formed strings
 * whose first element does not start with `"\u0000"` (reserved for the
 * core's internal keys). `what` names the operation for the message ("Cannot set").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assertKey } from "@flowstate/core/plugin";
 *
 * assertKey(["flow", "counter"], "Cannot set"); // a well-formed key: no error
 * assert.throws(() => assertKey("counter", "Cannot set"), /key must be an array of strings/);
 * assert.throws(() => assertKey(["\u0000feed"], "Cannot set"), /reserved/);
 * ```
 */
export function assertKey(key: unknown, what: string, allowEmpty = false): asserts key is Key {
  assertKeyShape(key, what, allowEmpty);
  if (key.length > 0 && key[0].charCodeAt(0) === 0) {
    throw new TypeError(
      `${what}: key ${
        safeJson(key)
      } starts with "\\u0000", which is reserved for Flowstate's internal keys ` +
        `(the change feed, indexes); use a first element that does not start with U+0000`,
    );
  }
}

/** {@linkcode assertKey} without the check of the reserved first element (any key a driver holds). */
function assertKeyShape(key: unknown, what: string, allowEmpty: boolean): asserts key is Key {
  if (!Array.isArray(key)) {
    throw new TypeError(
      `${what}: key must be an array of strings, like ["flow", "counter"] (got ${describe(key)})`,
    );
  }
  if (key.length === 0 && !allowEmpty) {
    throw new TypeError(`${what}: key must have at least one element (got [])`);
  }
  for (let i = 0; i < key.length; i++) {
    const part = key[i];
    if (typeof part !== "string") {
      throw new TypeError(
        `${what}: key element ${i} must be a string (got ${describe(part)} in ${safeJson(key)})`,
      );
    }
    if (!part.isWellFormed()) {
      throw new TypeError(
        `${what}: key element ${i} contains a lone UTF-16 surrogate; use well-formed Unicode`,
      );
    }
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? `${v}n` : v) ?? String(value);
  } catch {
    return String(value);
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return typeof value;
}

/**
 * Compare two strings by Unicode code point (UTF-16 code-unit order differs
 * for characters above U+FFFF, so plain `<` is not enough).
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates (astral code points) sort after U+E000..U+FFFF.
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length - b.length < 0 ? -1 : a.length === b.length ? 0 : 1;
}

/**
 * Compare two keys element-wise in code-point order; a key sorts before every
 * longer key it is a prefix of. Returns a negative, zero or positive number.
 *
 * @example
 * ```ts
 * import { compareKeys } from "@flowstate/core/plugin";
 * import assert from "node:assert/strict";
 * const keys = [["b"], ["a", "z"], ["é"], ["a"], ["Z"]];
 * keys.sort(compareKeys);
 * const sorted = JSON.stringify(keys);
 * assert.equal(sorted, '[["Z"],["a"],["a","z"],["b"],["é"]]');
 * ```
 */
export function compareKeys(a: Key, b: Key): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareStrings(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length < 0 ? -1 : a.length === b.length ? 0 : 1;
}

/**
 * True when `key` is strictly under `prefix` (longer, and starts with it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hasPrefix } from "@flowstate/core/plugin";
 *
 * assert.equal(hasPrefix(["flow", "counter", "count"], ["flow", "counter"]), true);
 * assert.equal(hasPrefix(["flow", "counter"], ["flow", "counter"]), false); // not strictly under
 * assert.equal(hasPrefix(["flow", "counters"], ["flow", "counter"]), false); // elements, not text
 * ```
 */
export function hasPrefix(key: Key, prefix: Key): boolean {
  if (key.length <= prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/** Whether `key` lies in `range` (strictly under the prefix, `>= start`, `< end`). */
export function inClearRange(key: Key, range: { prefix: Key; start?: Key; end?: Key }): boolean {
  if (!hasPrefix(key, range.prefix)) return false;
  if (range.start !== undefined && compareKeys(key, range.start) < 0) return false;
  return range.end === undefined || compareKeys(key, range.end) < 0;
}

/**
 * What a `clear` of `range` does to the writes before it in one commit:
 * each earlier `set` of a key in the range becomes a `delete` (in place),
 * since the clear removes what it wrote.
 */
export function clearEarlierSets(
  earlier: { type: string; key?: Key }[],
  range: { prefix: Key; start?: Key; end?: Key },
): void {
  for (let i = 0; i < earlier.length; i++) {
    const prior = earlier[i];
    if (prior.type === "set" && prior.key !== undefined && inClearRange(prior.key, range)) {
      earlier[i] = { type: "delete", key: prior.key };
    }
  }
}

/** True when both keys have the same elements. */
export function keysEqual(a: Key, b: Key): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const encoder = new TextEncoder();

/**
 * The largest key a store accepts for a write, in bytes of its
 * {@linkcode encodeKey} form: the same on every backend. PostgreSQL refuses
 * B-tree entries over about 2,700 bytes (a third of a page), so a longer key
 * would be stored by sqlite and refused by postgres, and a `migrate store`
 * between them could fail halfway; 2 KiB (Deno KV's limit too) leaves room.
 *
 * @example
 * ```ts
 * import { encodeKey, MAX_KEY_BYTES } from "@flowstate/core/plugin";
 * import assert from "node:assert/strict";
 * assert.equal(MAX_KEY_BYTES, 2048);
 * assert.ok(encodeKey(["users", "ada"]).length <= MAX_KEY_BYTES);
 * ```
 */
export const MAX_KEY_BYTES = 2048;

/**
 * Throw a `RangeError` naming the key (shortened) and the limit if `key` is
 * over {@linkcode MAX_KEY_BYTES} once encoded. Cheap for ordinary keys: the
 * exact size is computed only when the UTF-16 length could exceed it.
 */
export function assertKeySize(key: Key, what: string): void {
  let upper = 0;
  for (const part of key) upper += part.length * 3 + 2;
  if (upper <= MAX_KEY_BYTES) return;
  const size = encodeKey(key).length;
  if (size <= MAX_KEY_BYTES) return;
  const shown = key.map((part) =>
    part.length > 24 ? `${part.slice(0, 20)}…(${part.length})` : part
  );
  throw new RangeError(
    `${what}: key ${JSON.stringify(shown)} is ${size.toLocaleString("en-US")} bytes encoded; ` +
      `keys are at most ${MAX_KEY_BYTES.toLocaleString("en-US")} bytes on every backend. ` +
      `Use a shorter key (a hash of a long element, say) and keep long text in the value`,
  );
}

/** The encoded size of `key` if every element is ASCII without NUL (the common case), else -1. */
function asciiKeySize(key: Key): number {
  let size = 0;
  for (let e = 0; e < key.length; e++) {
    const element = key[e];
    for (let i = 0; i < element.length; i++) {
      const c = element.charCodeAt(i);
      if (c === 0 || c >= 0x80) return -1;
    }
    size += element.length + 1;
  }
  return size;
}

/** Write `key` (ASCII without NUL: see {@linkcode asciiKeySize}) encoded into `out` from `at`; returns where it ends. */
function writeAsciiKey(key: Key, out: Uint8Array, at: number): number {
  let o = at;
  for (const element of key) {
    for (let i = 0; i < element.length; i++) out[o++] = element.charCodeAt(i);
    out[o++] = 0;
  }
  return o;
}

/**
 * Write {@linkcode encodeKey}'s bytes of `key` into `out` from `at`, without
 * allocating for a key of ASCII elements (the common case). Returns where
 * they end, or -1 if `out` has no room for them (nothing written then).
 *
 * @example
 * ```ts
 * import { encodeKey, encodeKeyInto } from "./keys.ts";
 * import assert from "node:assert/strict";
 * const out = new Uint8Array(16);
 * const end = encodeKeyInto(["a", "bc"], out, 2);
 * assert.deepEqual(out.subarray(2, end), encodeKey(["a", "bc"]));
 * assert.equal(encodeKeyInto(["x".repeat(20)], out, 0), -1);
 * ```
 */
export function encodeKeyInto(key: Key, out: Uint8Array, at: number): number {
  const size = asciiKeySize(key);
  if (size >= 0) return at + size > out.length ? -1 : writeAsciiKey(key, out, at);
  const bytes = encodeKey(key);
  if (at + bytes.length > out.length) return -1;
  out.set(bytes, at);
  return at + bytes.length;
}

/**
 * Encode a key as bytes whose byte-wise (memcmp) order is the key order:
 * each element is its UTF-8 bytes with 0x00 escaped as 0x00 0xFF, followed by
 * a 0x00 terminator. Backends that sort bytes (SQLite BLOBs) store this.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeKey, encodeKey } from "@flowstate/core/plugin";
 *
 * assert.deepEqual([...encodeKey(["a", "b"])], [0x61, 0x00, 0x62, 0x00]);
 * assert.deepEqual(decodeKey(encodeKey(["a", "b"])), ["a", "b"]);
 * ```
 */
export function encodeKey(key: Key): Uint8Array {
  // Fast path: every element is ASCII without NUL (the common case) — one
  // allocation, no TextEncoder call.
  let size = asciiKeySize(key);
  if (size >= 0) {
    const out = new Uint8Array(size);
    writeAsciiKey(key, out, 0);
    return out;
  }
  const parts: Uint8Array[] = [];
  size = 0;
  for (const element of key) {
    const bytes = encoder.encode(element);
    parts.push(bytes);
    size += bytes.length + 1;
    for (const b of bytes) if (b === 0) size++;
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const bytes of parts) {
    for (const b of bytes) {
      out[o++] = b;
      if (b === 0) out[o++] = 0xff;
    }
    out[o++] = 0;
  }
  return out;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Invert {@linkcode encodeKey}: elements end with 0x00; a 0x00 inside an
 * element is escaped as 0x00 0xFF (UTF-8 never contains 0xFF). Short ASCII
 * elements skip TextDecoder; a leading U+FEFF is kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeKey, encodeKey } from "@flowstate/core/plugin";
 *
 * const key = ["flow", "a\u0000b", "é"]; // a NUL inside an element round-trips
 * assert.deepEqual(decodeKey(encodeKey(key)), key);
 * ```
 */
export function decodeKey(bytes: Uint8Array): string[] {
  // Fast path: short ASCII elements (escaped NULs included), one byte at a
  // time (no subarray or native call per element); anything else takes the
  // general path.
  const key: string[] = [];
  let element = "";
  let length = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0) {
      if (bytes[i + 1] === 0xff) {
        // An escaped NUL (every internal key starts with the element "\u0000").
        if (++length > 32) return keyWithNulFromBytes(bytes);
        element += "\u0000";
        i++;
        continue;
      }
      key.push(element);
      element = "";
      length = 0;
    } else if (b < 0x80 && ++length <= 32) {
      element += String.fromCharCode(b);
    } else {
      return decodeKeyGeneral(bytes);
    }
  }
  return key;
}

/**
 * {@linkcode decodeKey} for a key listed under a prefix: when `bytes` starts
 * with `prefixBytes` (`encodeKey(prefix)`), only the elements after it are
 * decoded and the prefix's own strings are reused; otherwise (or for an
 * element that needs the general path) it is `decodeKey(bytes)`.
 */
export function decodeKeyUnder(bytes: Uint8Array, prefix: Key, prefixBytes: Uint8Array): string[] {
  const n = prefixBytes.length;
  // bytes[n] === 0xff: the prefix's last terminator is an escaped NUL instead.
  if (n === 0 || bytes.length <= n || bytes[n] === 0xff) return decodeKey(bytes);
  for (let i = 0; i < n; i++) if (bytes[i] !== prefixBytes[i]) return decodeKey(bytes);
  const key = prefix.slice();
  let element = "";
  let length = 0;
  for (let i = n; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0) {
      if (bytes[i + 1] === 0xff) return decodeKey(bytes);
      key.push(element);
      element = "";
      length = 0;
    } else if (b < 0x80 && ++length <= 32) {
      element += String.fromCharCode(b);
    } else {
      return decodeKey(bytes);
    }
  }
  return key;
}

function decodeKeyGeneral(bytes: Uint8Array): string[] {
  const key: string[] = [];
  let start = 0;
  for (let i = bytes.indexOf(0); i >= 0; i = bytes.indexOf(0, start)) {
    if (bytes[i + 1] === 0xff) return keyWithNulFromBytes(bytes);
    key.push(decodeElement(bytes, start, i));
    start = i + 1;
  }
  return key;
}

/** Short ASCII elements (the common case) skip TextDecoder, which costs a native call each. */
function decodeElement(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 64) {
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (bytes[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, bytes.subarray(start, end) as never);
  }
  return utf8.decode(bytes.subarray(start, end));
}

/**
 * The general path for keys with an escaped NUL (every internal key starts
 * with the element "\u0000"). Short ASCII elements are built without
 * TextDecoder, as in {@linkcode decodeKey}: a feed or index listing decodes
 * one such key per entry.
 */
function keyWithNulFromBytes(bytes: Uint8Array): string[] {
  const key: string[] = [];
  const element = new Uint8Array(bytes.length);
  let n = 0;
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0) {
      element[n++] = b;
      if (b >= 0x80) ascii = false;
    } else if (bytes[i + 1] === 0xff) {
      element[n++] = 0;
      i++;
    } else {
      key.push(
        ascii && n <= 64
          ? String.fromCharCode.apply(null, element.subarray(0, n) as never)
          : utf8.decode(element.subarray(0, n)),
      );
      n = 0;
      ascii = true;
    }
  }
  return key;
}

/**
 * The exclusive upper bound of the encoded keys strictly under `prefix`:
 * every such key `k` satisfies `encodeKey(prefix) < k < prefixUpperBound(prefix)`
 * (byte-wise). It is `encodeKey(prefix)` followed by `0xFF`, not with its last
 * byte raised: `["a\u0000"]` (`61 00 FF 00`) starts with `encodeKey(["a"])`
 * (`61 00`) but is not under `["a"]`, and sorts above this bound.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeKey, prefixUpperBound } from "@flowstate/core/plugin";
 *
 * const under = (k: string[]) =>
 *   Buffer.compare(encodeKey(k), encodeKey(["a"])) > 0 &&
 *   Buffer.compare(encodeKey(k), prefixUpperBound(["a"])) < 0;
 * assert.ok(under(["a", "b"]));
 * assert.ok(under(["a", ""]));
 * assert.ok(!under(["a\u0000"])); // a sibling of ["a"], not under it
 * assert.ok(!under(["a"]));
 * ```
 */
export function prefixUpperBound(prefix: Key): Uint8Array {
  const enc = encodeKey(prefix);
  const out = new Uint8Array(enc.length + 1);
  out.set(enc);
  out[enc.length] = 0xff;
  return out;
}

/**
 * Encode a key as an opaque, URL-safe listing cursor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCursor, encodeCursor } from "@flowstate/core/plugin";
 *
 * const cursor = encodeCursor(["flow", "counter"]);
 * assert.match(cursor, /^[A-Za-z0-9_-]+$/);
 * assert.deepEqual(decodeCursor(cursor), ["flow", "counter"]);
 * ```
 */
export function encodeCursor(key: Key): string {
  const bytes = encoder.encode(JSON.stringify(key));
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Decode a cursor made by {@linkcode encodeCursor}; a `TypeError` if it is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCursor, encodeCursor } from "@flowstate/core/plugin";
 *
 * assert.deepEqual(decodeCursor(encodeCursor(["a", "b"])), ["a", "b"]);
 * assert.throws(() => decodeCursor("not a cursor"), TypeError);
 * ```
 */
export function decodeCursor(cursor: string): Key {
  try {
    const b64 = cursor.replaceAll("-", "+").replaceAll("_", "/");
    const bin = atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const key = JSON.parse(utf8.decode(bytes));
    // A cursor may point anywhere: the listing's range split keeps out of the internal space.
    assertKeyShape(key, "Cannot list", false);
    return key;
  } catch (err) {
    throw new TypeError(
      `Cannot list: cursor ${
        JSON.stringify(cursor)
      } is not a cursor returned by list(); pass the iterator's .cursor unchanged`,
      { cause: err },
    );
  }
}

/** Byte-wise comparison (memcmp order) of two encoded keys. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * A key range as bounds on encoded keys: `lower` (exclusive when
 * `lowerExclusive`), `upper` (exclusive). See {@linkcode byteBounds}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ByteBounds, encodeKey } from "@flowstate/core/plugin";
 *
 * // Keys >= ["b"]: no upper bound.
 * const bounds: ByteBounds = { lower: encodeKey(["b"]), lowerExclusive: false };
 * assert.equal(bounds.upper, undefined);
 * ```
 */
export interface ByteBounds {
  /** Lower bound, or none. */
  lower?: Uint8Array;
  /** Whether `lower` itself is excluded. */
  lowerExclusive: boolean;
  /** Exclusive upper bound, or none. */
  upper?: Uint8Array;
}

/**
 * The encoded-key bounds of a listing: keys strictly under `prefix`, at or
 * after `start` (after it when `startExclusive`), and before `end`. Backends
 * that store {@linkcode encodeKey} bytes (SQLite, PostgreSQL, MariaDB,
 * Redis' `ZRANGEBYLEX`) turn these into `key > ? AND key < ?` clauses; a
 * driver's `list`, `count` and `clear` ranges (`KeyRange`, `ClearRange`) fit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { byteBounds, encodeKey, prefixUpperBound } from "@flowstate/core/plugin";
 *
 * const b = byteBounds({ prefix: ["users"], start: ["users", "m"] });
 * assert.deepEqual(b.lower, encodeKey(["users", "m"]));
 * assert.equal(b.lowerExclusive, false);
 * assert.deepEqual(b.upper, prefixUpperBound(["users"]));
 * // As SQL over a key column of encodeKey bytes:
 * const where = [
 *   b.lower && (b.lowerExclusive ? "k > ?" : "k >= ?"),
 *   b.upper && "k < ?",
 * ].filter(Boolean).join(" AND ");
 * assert.equal(where, "k >= ? AND k < ?");
 * ```
 */
export function byteBounds(
  range: { prefix?: Key; start?: Key; startExclusive?: boolean; end?: Key },
): ByteBounds {
  const prefix = range.prefix ?? [];
  const bounds: ByteBounds = prefix.length === 0
    ? { lowerExclusive: false }
    : { lower: encodeKey(prefix), lowerExclusive: true, upper: prefixUpperBound(prefix) };
  if (range.start !== undefined) {
    const start = encodeKey(range.start);
    const c = bounds.lower === undefined ? 1 : compareBytes(start, bounds.lower);
    if (c > 0) {
      bounds.lower = start;
      bounds.lowerExclusive = range.startExclusive === true;
    } else if (c === 0 && range.startExclusive) {
      bounds.lowerExclusive = true;
    }
  }
  if (range.end !== undefined) {
    const end = encodeKey(range.end);
    if (bounds.upper === undefined || compareBytes(end, bounds.upper) < 0) bounds.upper = end;
  }
  return bounds;
}

/**
 * Format a key for people, as the CLI reads it back: slash-separated when
 * that is unambiguous, else JSON.
 *
 * @example
 * ```ts
 * import { formatKey } from "./keys.ts";
 * import assert from "node:assert/strict";
 * assert.equal(formatKey(["flow", "counter"]), "flow/counter");
 * assert.equal(formatKey(["a/b", ""]), '["a/b",""]');
 * ```
 */
export function formatKey(key: Key): string {
  const plain = key.length > 0 && !key[0].startsWith("[") &&
    key.every((p) => p !== "" && !p.includes("/") && !/[\s\p{Cc}]/u.test(p));
  return plain ? key.join("/") : JSON.stringify(key);
}
