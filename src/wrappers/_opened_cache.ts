/**
 * The plaintext the encryption wrapper keeps of recently sealed or opened
 * values (`encrypt.cache`), so that a value read again is not decrypted
 * again.
 *
 * @module
 */
import type { Key } from "../store/types.ts";

interface Kept {
  /** The sealed text the plaintext belongs to. */
  sealed: string;
  /** The value's JSON. */
  json: string;
}

/**
 * The JSON of recently sealed or opened values, one per entry key, with the
 * sealed text it came from; least recently used first out, up to a number of
 * bytes (UTF-16: two per character of the key, the sealed text and the
 * JSON). A lookup hits only for the same key and the same sealed text: a
 * value written since (by any process) has another sealed text, and a sealed
 * text copied from another key is another key's entry, so it is decrypted,
 * and fails authentication, as without the cache. A value over a sixteenth
 * of the limit is not kept (it would push out many small ones).
 *
 * @example
 * ```ts
 * import { OpenedCache } from "./_opened_cache.ts";
 * import assert from "node:assert/strict";
 *
 * const cache = new OpenedCache(1024 * 1024);
 * cache.put("v1:sealed-a", ["orders", "1"], '{"total":5}');
 * assert.equal(cache.get("v1:sealed-a", ["orders", "1"]), '{"total":5}');
 * assert.equal(cache.get("v1:sealed-b", ["orders", "1"]), undefined); // written since
 * assert.equal(cache.get("v1:sealed-a", ["orders", "2"]), undefined); // another key
 * ```
 */
export class OpenedCache {
  readonly #entries = new Map<string, Kept>();
  readonly #limit: number;
  #bytes = 0;

  /** A cache of at most `limitBytes` (0: it keeps nothing). */
  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  /** The bytes kept now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** How many values are kept now. */
  get size(): number {
    return this.#entries.size;
  }

  /** The JSON kept for `key` if it came from `sealed`, else `undefined`. */
  get(sealed: string, key: Key): string | undefined {
    if (this.#limit === 0) return undefined;
    const id = cacheId(key);
    const hit = this.#entries.get(id);
    if (hit === undefined || hit.sealed !== sealed) return undefined;
    this.#entries.delete(id); // most recently used last
    this.#entries.set(id, hit);
    return hit.json;
  }

  /** Keep `json` as `key`'s value, sealed as `sealed` (replacing what `key` had). */
  put(sealed: string, key: Key, json: string): void {
    if (this.#limit === 0) return;
    const id = cacheId(key);
    const before = this.#entries.get(id);
    if (before !== undefined) {
      this.#entries.delete(id);
      this.#bytes -= sizeOf(id, before);
    }
    const kept = { sealed, json };
    const size = sizeOf(id, kept);
    if (size > this.#limit / 16) return;
    this.#entries.set(id, kept);
    this.#bytes += size;
    for (const [old, entry] of this.#entries) {
      if (this.#bytes <= this.#limit) break;
      this.#entries.delete(old);
      this.#bytes -= sizeOf(old, entry);
    }
  }

  /** Keep nothing (the store is closed). */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}

function sizeOf(id: string, kept: Kept): number {
  return 2 * (id.length + kept.sealed.length + kept.json.length);
}

/**
 * A key as one string, unambiguous: each part's length before it, so that
 * `["a:b"]` and `["a", "b"]` (or `["0:1:x"]` and `["", "x"]`) differ.
 *
 * @example
 * ```ts
 * import { cacheId } from "./_opened_cache.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(cacheId(["orders", "1"]), "6:orders1:1");
 * assert.notEqual(cacheId(["0:1:x"]), cacheId(["", "x"]));
 * ```
 */
export function cacheId(key: Key): string {
  let id = "";
  for (const part of key) id += part.length + ":" + part;
  return id;
}
