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
  /** The whole stored value's JSON text (the envelope), when known. */
  stored: string | undefined;
  /** Whether `sealed` is a slice of `stored` (the characters are shared: counted once). */
  shared: boolean;
  /**
   * Whether the owner sealed `sealed` itself (a write): then it holds
   * nothing that JSON escapes, and the bare rule may apply. A sealed text
   * read from the store may hold what its JSON text escaped (`\n`, which
   * base64 decoding skips), so its bare text is not the stored one.
   */
  own: boolean;
  /** The length of its key's id. */
  idLength: number;
  /** What it is counted as (see {@linkcode OpenedCache}): {@linkcode sizeOf}. */
  bytes: number;
}

/**
 * The JSON of recently sealed or opened values, one per entry key, with the
 * sealed text it came from and, when known, the whole stored value's text
 * (the envelope as the store holds it), up to a number of bytes (UTF-16: two
 * per character of the key, the sealed and stored texts and the JSON, and
 * {@linkcode ENTRY_OVERHEAD_BYTES} for each value; a sealed text found
 * within the stored text is kept as a part of it, and counted once). A
 * lookup hits only for the same key and the same sealed text
 * ({@linkcode OpenedCache.get}) or the same whole stored text
 * ({@linkcode OpenedCache.getStored}): a value written since (by any
 * process) has another sealed text, and a sealed text copied from another
 * key is another key's entry, so it is decrypted, and fails authentication,
 * as without the cache. A value over a sixteenth of the limit is not kept (it
 * would push out many small ones).
 *
 * With an {@linkcode EnvelopeShape}, a stored text that starts with `head`
 * and the sealed text keeps the sealed text as a part of it (V8 shares the
 * characters of a slice), counted once; and with `bareHits`, a value kept
 * without its stored text also hits on the text of an envelope that holds its
 * sealed text and nothing else (`head`, the sealed text, `tail`), compared in
 * place: its owner sets it only when such an envelope opens to the value
 * with no other check (no plaintext fields are declared). The rule applies
 * only to sealed texts the owner sealed itself (`own` at
 * {@linkcode OpenedCache.put}), which hold nothing that JSON escapes
 * (base64), so that this is the whole stored text compared; a sealed text
 * read from a store is kept with its stored text, and hits on that alone.
 *
 * Two generations, each up to half the limit: values are kept in the young
 * one; when it is full it becomes the old one and the old one is dropped
 * whole; a hit in the old one moves the value to the young one. So what was
 * used least recently goes first, with no work per value to push out (a
 * `Map` that loses its first entry at every write also slows down: its
 * iteration walks the deleted slots).
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
 *
 * cache.put("v1:sealed-c", ["orders", "1"], '{"total":6}', '{"s":"v1:sealed-c"}');
 * assert.equal(cache.getStored('{"s":"v1:sealed-c"}', ["orders", "1"]), '{"total":6}');
 * assert.equal(cache.getStored('{"s":"v1:sealed-c","x":1}', ["orders", "1"]), undefined);
 *
 * const bare = new OpenedCache(1024 * 1024, { head: '{"s":"', tail: '"}', bareHits: true });
 * bare.put("v1:sealed-d", ["orders", "1"], '{"total":7}', undefined, true); // sealed here
 * assert.equal(bare.getStored('{"s":"v1:sealed-d"}', ["orders", "1"]), '{"total":7}');
 * assert.equal(bare.getStored('{"s":"v1:sealed-d","x":1}', ["orders", "1"]), undefined);
 * ```
 */
export class OpenedCache {
  #young = new Map<string, Kept>();
  #old = new Map<string, Kept>();
  #youngBytes = 0;
  #oldBytes = 0;
  readonly #half: number;
  readonly #shape: EnvelopeShape | undefined;

  /** A cache of at most `limitBytes` (0: it keeps nothing), of envelopes of `shape`. */
  constructor(limitBytes: number, shape?: EnvelopeShape) {
    this.#half = limitBytes / 2;
    this.#shape = shape;
  }

  /** The bytes kept now. */
  get bytes(): number {
    return this.#youngBytes + this.#oldBytes;
  }

  /** How many values are kept now. */
  get size(): number {
    return this.#young.size + this.#old.size;
  }

  /** The JSON kept for `key` if it came from `sealed`, else `undefined`. */
  get(sealed: string, key: Key): string | undefined {
    if (this.#half === 0) return undefined;
    const id = cacheId(key);
    const young = this.#young.get(id);
    if (young !== undefined) return young.sealed === sealed ? young.json : undefined;
    const old = this.#old.get(id);
    if (old === undefined || old.sealed !== sealed) return undefined;
    return this.#renew(id, old);
  }

  /**
   * The JSON kept for `key` if its stored value's whole text is `stored`,
   * else `undefined`. A bare envelope that hits is kept as the value's
   * stored text from then on (the next hit on the same string is immediate).
   */
  getStored(stored: string, key: Key): string | undefined {
    if (this.#half === 0) return undefined;
    const id = cacheId(key);
    const young = this.#young.get(id);
    if (young !== undefined) {
      if (young.stored === stored) return young.json;
      return this.#isBare(young, stored) ? this.#hitBare(id, young, stored, true) : undefined;
    }
    const old = this.#old.get(id);
    if (old === undefined) return undefined;
    if (old.stored === stored) return this.#renew(id, old);
    return this.#isBare(old, stored) ? this.#hitBare(id, old, stored, false) : undefined;
  }

  /**
   * A bare hit on `kept` (of the young generation or the old one): its
   * stored text is kept from now on, in the young generation, within the
   * limit as at {@linkcode put} (a value that outgrew a sixteenth of it is
   * let go). Resolves its JSON.
   */
  #hitBare(id: string, kept: Kept, stored: string, young: boolean): string {
    const before = kept.bytes;
    this.#attach(kept, stored);
    const grown = kept.bytes - before;
    const small = kept.bytes <= this.#half / 8;
    if (young && small && this.#youngBytes + grown <= this.#half) {
      this.#youngBytes += grown; // in place
      return kept.json;
    }
    if (young) {
      this.#young.delete(id);
      this.#youngBytes -= before;
    } else {
      this.#old.delete(id);
      this.#oldBytes -= before;
    }
    if (small) this.#add(id, kept);
    return kept.json;
  }

  /** Whether `stored` is the bare envelope of `kept`'s own sealed text (see the class documentation). */
  #isBare(kept: Kept, stored: string): boolean {
    const shape = this.#shape;
    if (shape === undefined || !shape.bareHits || !kept.own) return false;
    const { head, tail } = shape;
    const { sealed } = kept;
    // A slice compared whole: V8 compares it as one block (`startsWith` at an offset goes
    // character by character, ~10× slower on a 1 KB value).
    return stored.length === head.length + sealed.length + tail.length &&
      stored.startsWith(head) && stored.endsWith(tail) &&
      stored.slice(head.length, stored.length - tail.length) === sealed;
  }

  /**
   * Keep `stored` as `kept`'s stored text; when the sealed text follows the
   * shape's head in it, the sealed text becomes a slice of it (V8 shares the
   * characters), counted once. Counts `kept` again (not its generation).
   */
  #attach(kept: Kept, stored: string): void {
    const { sealed } = kept;
    const start = this.#shape?.head.length ?? -1;
    const shared = start >= 0 && stored.startsWith(this.#shape!.head) &&
      stored.slice(start, start + sealed.length) === sealed;
    kept.stored = stored;
    kept.shared = shared;
    if (shared) kept.sealed = stored.slice(start, start + sealed.length);
    kept.bytes = sizeOf(kept);
  }

  /** A hit in the old generation: moved to the young one. */
  #renew(id: string, old: Kept): string {
    this.#old.delete(id);
    this.#oldBytes -= old.bytes;
    this.#add(id, old);
    return old.json;
  }

  /**
   * Keep `json` as `key`'s value, sealed as `sealed` (replacing what `key`
   * had), with `stored`, the whole stored value's text, when it is known
   * (only a text that holds exactly that value: {@linkcode getStored} hits
   * on it without another check); `own` when the owner sealed `sealed`
   * itself (see the class documentation).
   */
  put(sealed: string, key: Key, json: string, stored?: string, own = false): void {
    if (this.#half === 0) return;
    const id = cacheId(key);
    const young = this.#young.get(id);
    if (young !== undefined) {
      this.#young.delete(id);
      this.#youngBytes -= young.bytes;
    }
    const old = this.#old.get(id);
    if (old !== undefined) {
      this.#old.delete(id);
      this.#oldBytes -= old.bytes;
    }
    const kept: Kept = {
      sealed,
      json,
      stored: undefined,
      shared: false,
      own,
      idLength: id.length,
      bytes: 0,
    };
    kept.bytes = sizeOf(kept);
    if (stored !== undefined) this.#attach(kept, stored);
    if (kept.bytes > this.#half / 8) return;
    this.#add(id, kept);
  }

  /** Keep nothing (the store is closed). */
  clear(): void {
    this.#young = new Map();
    this.#old = new Map();
    this.#youngBytes = 0;
    this.#oldBytes = 0;
  }

  #add(id: string, kept: Kept): void {
    const size = kept.bytes;
    if (this.#youngBytes + size > this.#half) {
      this.#old = this.#young; // the old generation is dropped whole
      this.#oldBytes = this.#youngBytes;
      this.#young = new Map();
      this.#youngBytes = 0;
    }
    this.#young.set(id, kept);
    this.#youngBytes += size;
  }
}

/** What `kept` is counted as: see {@linkcode OpenedCache}. */
function sizeOf(kept: Kept): number {
  const { sealed, stored } = kept;
  const texts = stored === undefined
    ? sealed.length
    : stored.length + (kept.shared ? 0 : sealed.length);
  return ENTRY_OVERHEAD_BYTES + 2 * (kept.idLength + texts + kept.json.length);
}

/**
 * How a stored envelope's text is laid out (see {@linkcode OpenedCache}):
 * `head`, the sealed text, then the other fields; with nothing else, `head`,
 * the sealed text, `tail`.
 */
export interface EnvelopeShape {
  /** The text before the sealed text (`{"$sealed":"`). */
  readonly head: string;
  /** The text after it in an envelope that holds nothing else (`"}`). */
  readonly tail: string;
  /** Whether a value kept without its stored text hits on its bare envelope. */
  readonly bareHits: boolean;
}

/**
 * What a kept value costs beyond its characters (the map's slot, the record,
 * the strings' headers), in bytes: counted so that many small values do not
 * take far more than the limit.
 *
 * @example
 * ```ts
 * import { ENTRY_OVERHEAD_BYTES, OpenedCache } from "./_opened_cache.ts";
 * import assert from "node:assert/strict";
 * const cache = new OpenedCache(1024 * 1024);
 * cache.put("s", ["a"], "1");
 * assert.equal(cache.bytes, ENTRY_OVERHEAD_BYTES + 2 * ("1:a".length + 1 + 1));
 * ```
 */
export const ENTRY_OVERHEAD_BYTES = 128;

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
