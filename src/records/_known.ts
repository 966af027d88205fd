/**
 * Entries this process wrote last, per store object: a run's record as its
 * claim, start or heartbeat wrote it, and the metrics entries (or shards) a
 * run's end wrote. A run's end commits over them without reading them first
 * (one round trip less): its commit checks each one's version as usual, so a
 * remembered entry that someone else changed meanwhile fails the check, is
 * forgotten, and the next try reads. Internal to `src/records/`.
 *
 * @module
 */
import type { Entry, Key, Store } from "../store/types.ts";
import type { RecordsContext } from "./_context.ts";

/** At most this many entries are remembered per store; then it starts over. */
const MAX_KNOWN = 10_000;

/** The entries of one store object that this process wrote last. */
export class KnownEntries {
  #entries = new Map<string, Entry<unknown>>();

  /** The entries at `keys`, all remembered, or `undefined` when one is not. */
  getAll<T>(keys: readonly Key[]): Entry<T>[] | undefined {
    const out: Entry<T>[] = [];
    for (const key of keys) {
      const entry = this.#entries.get(idOf(key));
      if (entry === undefined) return undefined;
      out.push(entry as Entry<T>);
    }
    return out;
  }

  /** Remember `value` at `key` as written with `version` (never changed afterwards). */
  set(key: Key, value: unknown, version: string): void {
    const id = idOf(key);
    if (this.#entries.size >= MAX_KNOWN && !this.#entries.has(id)) this.#entries.clear();
    this.#entries.set(id, { key, value, version, expiresAt: null });
  }

  /** Forget the entries at `keys`. */
  forget(...keys: Key[]): void {
    for (const key of keys) this.#entries.delete(idOf(key));
  }
}

function idOf(key: Key): string {
  return key.join("\u0000");
}

const knownOf = new WeakMap<Store, KnownEntries>();

/** The entries `ctx`'s store object had written last by this process (shared by its `Records`). */
export function knownEntries(ctx: RecordsContext): KnownEntries {
  let known = knownOf.get(ctx.store);
  if (known === undefined) knownOf.set(ctx.store, known = new KnownEntries());
  return known;
}
