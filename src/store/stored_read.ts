/**
 * Reading entries as stored: the core's `get` and `getMany` without parsing
 * the values, each value handed out as the JSON text the driver holds
 * (internal). The encryption wrapper reads its envelopes this way: a value
 * whose stored text is exactly the text it kept for that key is served from
 * its plaintext cache without parsing the envelope.
 *
 * The core's store answers {@linkcode READ_STORED} with the same checks as
 * `get` (an open store, a valid key, expired entries absent). A wrapper
 * answers it only when its own `get` hands out the store's entries unchanged
 * (the runtime's notifying store); a wrapper that sees or keeps values (a
 * cache, hooks, anyone's own) does not, and {@linkcode storedReader} is then
 * `undefined`: the caller reads through the store's own `get`.
 *
 * @module
 */
import type { RawEntry } from "./driver.ts";
import type { Key } from "./types.ts";

/** The method under which a store hands out its {@linkcode StoredReader}. */
export const READ_STORED: unique symbol = Symbol("flowstate.readStored");

/**
 * Reads of live entries as stored (`value` is the entry's JSON text). The
 * entries returned are the driver's own: the caller copies what it hands
 * out (the key) and never changes them.
 */
export interface StoredReader {
  /** `Store.get` without parsing: at once for a synchronous driver; throws what `get` rejects with. */
  get(key: Key): RawEntry | null | Promise<RawEntry | null>;
  /** `Store.getMany` without parsing, in the order of `keys`. */
  getMany(keys: readonly Key[]): Promise<(RawEntry | null)[]>;
}

/** The reader of `store` as stored, or `undefined` when it has none (then read with its `get`). */
export function storedReader(store: object): StoredReader | undefined {
  const read = (store as { [READ_STORED]?: unknown })[READ_STORED];
  return typeof read === "function" ? read.call(store) as StoredReader | undefined : undefined;
}
