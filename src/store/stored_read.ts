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
 * {@linkcode storedReader} is then `undefined`: the caller reads through the
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

interface Provided {
  /** The store's class's own `get` and `getMany`. */
  own: ReadsByKey;
  /** Its reader now (a wrapper's follows the store beneath it). */
  reader: () => StoredReader | undefined;
}

const provided = new WeakMap<object, Provided>();

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
  provided.set(store, { own: { get: own.get, getMany: own.getMany }, reader });
}

/**
 * The reader of `store` as stored, or `undefined` when it has none (then
 * read with its `get`): only for the very object that provided one, and
 * only while its `get` and `getMany` are its class's own. Ask again for each
 * read (a method may be replaced at any time).
 */
export function storedReader(store: object): StoredReader | undefined {
  const found = provided.get(store);
  if (found === undefined) return undefined;
  // An own property (a stub, a getter) is not looked at: it is refused as it is.
  if (Object.hasOwn(store, "get") || Object.hasOwn(store, "getMany")) return undefined;
  const { get, getMany } = store as ReadsByKey;
  return get === found.own.get && getMany === found.own.getMany ? found.reader() : undefined;
}
