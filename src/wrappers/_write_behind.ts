/**
 * Write-behind for `cached()` (src/wrappers/cached.ts): the queue of writes
 * acknowledged but not yet in the store, flushed in atomic batches on a
 * timer or on demand, and the provisional versions those writes were given,
 * mapped to the real versions the store made when they were flushed.
 *
 * @module
 */
import { hasPrefix } from "../store/keys.ts";
import type { Clock, Entry, Key, Store } from "../store/types.ts";
import { type CacheSlot, idOf, isExpired } from "./_lru.ts";
import { uniqueRandomHex } from "../_random.ts";
import { parseJson } from "../_json.ts";
import { callGuarded } from "../_callback.ts";

/** A queued write: a slot (`text: null` for a delete) and the id of its key. */
export interface PendingWrite extends CacheSlot {
  id: string;
}

/** Writes per atomic commit of a flush. */
const FLUSH_BATCH = 500;

/** What {@linkcode WriteBehindQueue} needs. */
export interface WriteBehindOptions {
  /** The store flushes write to. */
  store: Store;
  /** Decides expiries at flush time. */
  clock: Clock;
  /** Milliseconds from the first queued write to a timed flush; `0`: no timed flushes. */
  flushInterval: number;
  /** Told when a timed flush fails (what it throws is ignored). */
  onFlushError: ((error: unknown) => void) | undefined;
  /**
   * Called for each write of a batch the store committed, in order, with the
   * commit's version. `current` is false when the key was queued again
   * meanwhile (that newer write stays queued); otherwise the write has left
   * the queue.
   */
  onFlushed(write: PendingWrite, current: boolean, version: string, now: number): void;
}

/** The queued writes, one per key (the latest); authoritative for reads while queued. */
export class WriteBehindQueue {
  readonly #options: WriteBehindOptions;
  readonly #pending = new Map<string, PendingWrite>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushTail: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: WriteBehindOptions) {
    this.#options = options;
  }

  /** Keys with a queued write. */
  get size(): number {
    return this.#pending.size;
  }

  /** The queued write for `id`, if any. */
  get(id: string): PendingWrite | undefined {
    return this.#pending.get(id);
  }

  /** Whether a write for `id` is queued. */
  has(id: string): boolean {
    return this.#pending.has(id);
  }

  /** Queue `write`, replacing any queued write to its key, and arm the timer. */
  add(write: PendingWrite): void {
    this.#pending.set(write.id, write);
    this.#schedule();
  }

  /**
   * Write every queued write to the store. Concurrent calls are serialized; a
   * batch the store rejects stays queued and the returned promise rejects.
   */
  flush(): Promise<void> {
    const run = this.#flushTail.then(() => this.#flushOnce());
    this.#flushTail = run.then(() => {}, () => {});
    return run;
  }

  /** Flush if anything is queued, so the store sees every acknowledged write. */
  settle(): Promise<void> {
    return this.#pending.size === 0 ? Promise.resolve() : this.flush();
  }

  /** No more timed flushes (explicit ones still run). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #schedule(): void {
    const { flushInterval, onFlushError } = this.#options;
    if (
      flushInterval === 0 || this.#timer !== undefined || this.#stopped ||
      this.#pending.size === 0
    ) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopped) return;
      this.flush().catch((error) => {
        // A caller's bug (a throw, an async handler's rejection) must not end the process.
        if (onFlushError !== undefined) callGuarded(() => onFlushError(error), () => {});
        this.#schedule();
      });
    }, flushInterval);
  }

  async #flushOnce(): Promise<void> {
    const { store, clock, onFlushed } = this.#options;
    const queued = [...this.#pending.values()];
    for (let i = 0; i < queued.length; i += FLUSH_BATCH) {
      const batch = queued.slice(i, i + FLUSH_BATCH).filter((w) => this.#pending.get(w.id) === w);
      if (batch.length === 0) continue;
      const op = store.atomic();
      const now = clock.now();
      for (const write of batch) {
        if (write.text === null || isExpired(write.expiresAt, now)) {
          op.delete(write.key);
        } else {
          op.set(
            write.key,
            parseJson(write.text),
            write.expiresAt === null ? undefined : { expireIn: write.expiresAt - now },
          );
        }
      }
      const result = await op.commit();
      if (!result.ok) {
        throw new Error(
          `Cannot flush ${batch.length} pending writes to store "${store.name}": it reported a conflict on ${
            JSON.stringify(result.conflicts)
          } for writes without a version check; they stay pending`,
        );
      }
      for (const write of batch) {
        const current = this.#pending.get(write.id) === write; // else rewritten meanwhile
        if (current) this.#pending.delete(write.id);
        onFlushed(write, current, result.version, now);
      }
    }
  }
}

interface VersionAlias {
  key: Key;
  /** The provisional version the caller was given. */
  shown: string;
  /** The version the store made when the write was flushed. */
  real: string;
}

/**
 * Provisional versions for queued writes, and what the flushed ones became:
 * the aliases of the `max` most recently flushed keys.
 */
export class ProvisionalVersions {
  readonly #max: number;
  readonly #tag = uniqueRandomHex(6);
  #counter = 0;
  /** Flushed provisional versions and the real versions they became, oldest first. */
  readonly #aliases = new Map<string, VersionAlias>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Keys with an alias. */
  get size(): number {
    return this.#aliases.size;
  }

  /** A new provisional version, unique to this handle. */
  next(): string {
    this.#counter++;
    return `wb${this.#counter.toString(36).padStart(8, "0")}${this.#tag}`;
  }

  /** The version to send to the store for a version the caller holds. */
  real(id: string, version: string): string {
    const alias = this.#aliases.get(id);
    return alias !== undefined && alias.shown === version ? alias.real : version;
  }

  /** The entry as the caller should see it (its provisional version, if it has one). */
  shown<T>(entry: Entry<T>): Entry<T>;
  shown<T>(entry: Entry<T> | null): Entry<T> | null;
  shown<T>(entry: Entry<T> | null): Entry<T> | null {
    if (entry === null || this.#aliases.size === 0) return entry;
    const alias = this.#aliases.get(idOf(entry.key));
    return alias !== undefined && alias.real === entry.version
      ? { ...entry, version: alias.shown }
      : entry;
  }

  /**
   * Remember that `shown` became `real` for `id`. Returns the id whose alias
   * was forgotten to stay within `max`, if any.
   */
  alias(id: string, key: Key, shown: string, real: string): string | undefined {
    this.#aliases.delete(id);
    this.#aliases.set(id, { key, shown, real });
    if (this.#aliases.size <= this.#max) return undefined;
    const oldest = this.#aliases.keys().next().value as string;
    this.#aliases.delete(oldest);
    return oldest;
  }

  /** Forget the alias of `id` (its key was written again). */
  forget(id: string): void {
    this.#aliases.delete(id);
  }

  /** Forget the aliases of every key that starts with `prefix`. */
  forgetUnder(prefix: Key): void {
    for (const [id, alias] of this.#aliases) {
      if (hasPrefix(alias.key, prefix)) this.#aliases.delete(id);
    }
  }

  /** Forget every alias. */
  clear(): void {
    this.#aliases.clear();
  }
}
