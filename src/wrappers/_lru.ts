/**
 * The read cache of `cached()` (src/wrappers/cached.ts): a bounded LRU of key
 * slots, present and absent keys alike, and the tickets that keep the result
 * of a store read or write out of the cache when another write to its key
 * overlapped it.
 *
 * @module
 */
import { hasPrefix } from "../store/keys.ts";
import type { Entry, Key } from "../store/types.ts";
import { parseJson } from "../_json.ts";

/** What the cache knows about one key. */
export interface CacheSlot {
  key: Key;
  /** The value as JSON text, or `null` for a key known to be absent. */
  text: string | null;
  version: string;
  expiresAt: number | null;
}

/** The map id of a key. */
export function idOf(key: Key): string {
  return JSON.stringify(key);
}

/** Whether an entry expiring at `expiresAt` is expired at `now`. */
export function isExpired(expiresAt: number | null, now: number): boolean {
  return expiresAt !== null && expiresAt <= now;
}

/** The entry a present slot stands for, with a fresh copy of its value and key. */
export function slotEntry<T>(slot: CacheSlot): Entry<T> {
  return {
    key: [...slot.key],
    value: parseJson(slot.text as string) as T,
    version: slot.version,
    expiresAt: slot.expiresAt,
  };
}

/** At most `max` slots; the least recently used one is evicted beyond it. */
export class LruCache {
  readonly #max: number;
  /** Map insertion order is recency order (oldest first). */
  readonly #slots = new Map<string, CacheSlot>();
  #evictions = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** Slots held now. */
  get size(): number {
    return this.#slots.size;
  }

  /** Slots dropped because the cache was full (not deletions or expiries). */
  get evictions(): number {
    return this.#evictions;
  }

  /**
   * The slot of `id`, now the most recently used; `undefined` if there is
   * none or if it is a present entry expired at `now` (then it is dropped).
   */
  use(id: string, now: number): CacheSlot | undefined {
    const slot = this.#slots.get(id);
    if (slot === undefined) return undefined;
    this.#slots.delete(id);
    if (slot.text !== null && isExpired(slot.expiresAt, now)) return undefined;
    this.#slots.set(id, slot);
    return slot;
  }

  /** Hold `slot` as the most recently used (unless it is expired at `now`), evicting beyond `max`. */
  put(id: string, slot: CacheSlot, now: number): void {
    this.#slots.delete(id);
    if (slot.text !== null && isExpired(slot.expiresAt, now)) return;
    this.#slots.set(id, slot);
    if (this.#slots.size > this.#max) {
      const oldest = this.#slots.keys().next().value as string;
      this.#slots.delete(oldest);
      this.#evictions++;
    }
  }

  /** Forget the slot of `id`. */
  delete(id: string): void {
    this.#slots.delete(id);
  }

  /** Forget every slot whose key starts with `prefix`. */
  deleteUnder(prefix: Key): void {
    for (const [id, slot] of this.#slots) {
      if (hasPrefix(slot.key, prefix)) this.#slots.delete(id);
    }
  }

  /** Forget every slot. */
  clear(): void {
    this.#slots.clear();
  }
}

/** One store operation in flight on a key: its result may be cached only while `valid`. */
export interface Ticket {
  valid: boolean;
}

/** The store reads and writes in flight, per key id. */
export class InflightTickets {
  readonly #byId = new Map<string, Set<Ticket>>();

  /** An operation on `id` starts. */
  begin(id: string): Ticket {
    const ticket = { valid: true };
    let tickets = this.#byId.get(id);
    if (tickets === undefined) this.#byId.set(id, tickets = new Set());
    tickets.add(ticket);
    return ticket;
  }

  /** Finish an in-flight operation; its ticket stays valid if no write to its key overlapped it. */
  end(id: string, ticket: Ticket): void {
    const tickets = this.#byId.get(id);
    tickets?.delete(ticket);
    if (tickets?.size === 0) this.#byId.delete(id);
  }

  /** A write to `id` started or ended: results of overlapping operations must not be cached. */
  invalidate(id: string): void {
    const tickets = this.#byId.get(id);
    if (tickets === undefined) return;
    for (const ticket of tickets) ticket.valid = false;
  }

  /** {@linkcode invalidate} every key in flight that starts with `prefix`. */
  invalidateUnder(prefix: Key): void {
    for (const id of this.#byId.keys()) {
      if (hasPrefix(JSON.parse(id), prefix)) this.invalidate(id);
    }
  }
}
