/**
 * Reading entries as stored: the core's `get` and `getMany` without parsing
 * the values, each value handed out as the JSON text the driver holds
 * (internal). The encryption wrapper reads its envelopes this way: a value
 * whose stored text is exactly the text it kept for that key is served from
 * its plaintext cache without parsing the envelope.
 *
 * The core's store provides a reader with the same checks as `get` (an open
 * store, a valid key, expired entries absent). A wrapper provides one only
 * when its own `get` hands out the store's entries unchanged (the runtime's
 * notifying store, which forwards the store beneath's); a wrapper that sees
 * or keeps values (a cache, hooks, anyone's own) does not, and
 * {@linkcode storedReads} is then `undefined`: the caller reads through the
 * store's own `get`.
 *
 * The readers are kept here, by the very object that provided one, and not
 * as a property: a `Proxy` of a store, or an object made from it, is another
 * object and has none (it may intercept `get`: the caller must call it). A
 * store whose `get` or `getMany` was replaced (on the instance, or is not its
 * class's own any more) has none either while it is replaced.
 *
 * @module
 */
import type { RawEntry } from "./driver.ts";
import type { Key, Store } from "./types.ts";

/**
 * Reads of live entries as stored (`value` is the entry's JSON text). The
 * entries returned are the driver's own: the caller copies what it hands
 * out (the key) and never changes them.
 */
export interface StoredReader {
  /**
   * `Store.get` without parsing: at once for a synchronous driver, else a
   * native `Promise` (a driver's other thenables are awaited); throws what
   * `get` rejects with.
   */
  get(key: Key): RawEntry | null | Promise<RawEntry | null>;
  /** `Store.getMany` without parsing, in the order of `keys`. */
  getMany(keys: readonly Key[]): Promise<(RawEntry | null)[]>;
}

/** The reads by key a store's class defines (compared with what the store has now). */
type ReadsByKey = Pick<Store, "get" | "getMany">;

/**
 * A store's reads as stored ({@linkcode storedReads}): {@linkcode now} is
 * its reader at the time of a read, or `undefined` while it has none.
 */
export interface StoredReads {
  /** The reader now: ask at each read (a method may be replaced at any time). */
  now(): StoredReader | undefined;
}

const provided = new WeakMap<object, StoredReads>();

/**
 * `store` reads as stored with `reader` while its `get` and `getMany` are
 * those of `own` (its class's prototype). Called by the store itself, in
 * its constructor.
 */
export function provideStoredReader(
  store: ReadsByKey,
  own: ReadsByKey,
  reader: () => StoredReader | undefined,
): void {
  const { get, getMany } = own;
  provided.set(store, {
    // What the store has now, wherever (on the instance, a changed prototype): a stub differs.
    // An own property that holds the class's own method replaces nothing (and `Object.hasOwn`
    // twice a read cost ~4 % of a memory get).
    now: () => store.get !== get || store.getMany !== getMany ? undefined : reader(),
  });
}

/**
 * The reads as stored of `store`, or `undefined` when it has none (then
 * read with its `get`): only the very object that provided them has them,
 * and they answer (`now()`) only while its `get` and `getMany` are its
 * class's own.
 */
export function storedReads(store: object): StoredReads | undefined {
  return provided.get(store);
}
