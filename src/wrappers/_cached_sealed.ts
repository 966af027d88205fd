/**
 * The store of sealed values of an encrypted store beneath `cached()`, as
 * the cache hands it out in its encryption handle (see `src/store/sealed.ts`):
 * the backup, restore and rekey jobs read and write sealed values through it.
 *
 * Every call goes to the sealed store, with the cache kept coherent: queued
 * write-behind writes are flushed first (so a backup or a rekey sees every
 * acknowledged write), and a key written through it (a rekey's reseal, a
 * restore's batch) is dropped from the cache before and after the write, so
 * that no read through the cache shows the version it replaced.
 *
 * @module
 */
import { ForwardingBase } from "./_forwarding.ts";
import type {
  AtomicOperation,
  Change,
  ChangesOptions,
  CommitResult,
  CompactResult,
  DeleteOptions,
  Entry,
  FeedInfo,
  JsonValue,
  Key,
  KeyBounds,
  ListIterator,
  ListOptions,
  Query,
  QueryPlan,
  SearchHit,
  SearchOptions,
  SetOptions,
  Store,
} from "../store/types.ts";
import { listIterator } from "../store/list_iterator.ts";

/** What the cache does for the sealed view. */
export interface CacheCoherence {
  /** Resolves once every queued write-behind write reached the store. */
  settle(): Promise<void>;
  /** Forget what the cache holds of `key` (its entry and its provisional version). */
  written(key: Key): void;
  /** Forget what the cache holds under `prefix`. */
  cleared(prefix: Key): void;
}

/** `sealed` with the cache above it kept coherent (see the module documentation). */
export function sealedThroughCache(sealed: Store, cache: CacheCoherence): Store {
  return new SealedThroughCache(sealed, cache);
}

class SealedThroughCache extends ForwardingBase implements Store {
  readonly #store: Store;
  readonly #cache: CacheCoherence;

  constructor(store: Store, cache: CacheCoherence) {
    super(store);
    this.#store = store;
    this.#cache = cache;
  }

  async get<T = JsonValue>(key: Key): Promise<Entry<T> | null> {
    await this.#cache.settle();
    return await this.#store.get<T>(key);
  }

  async getMany<T = JsonValue>(keys: readonly Key[]): Promise<(Entry<T> | null)[]> {
    await this.#cache.settle();
    return await this.#store.getMany<T>(keys);
  }

  async set(key: Key, value: unknown, options?: SetOptions): Promise<CommitResult> {
    await this.#cache.settle();
    this.#cache.written(key);
    try {
      return await this.#store.set(key, value, options);
    } finally {
      this.#cache.written(key);
    }
  }

  async delete(key: Key, options?: DeleteOptions): Promise<boolean> {
    await this.#cache.settle();
    this.#cache.written(key);
    try {
      return await this.#store.delete(key, options);
    } finally {
      this.#cache.written(key);
    }
  }

  list<T = JsonValue>(options?: ListOptions): ListIterator<T> {
    const inner = this.#store.list<T>(options);
    const cache = this.#cache;
    async function* entries(): AsyncGenerator<Entry<T>> {
      await cache.settle();
      yield* inner;
    }
    return listIterator(entries(), { cursor: () => inner.cursor });
  }

  async count(prefix?: Key, bounds?: KeyBounds): Promise<number> {
    await this.#cache.settle();
    return await this.#store.count(prefix, bounds);
  }

  async query<T = JsonValue>(query?: Query): Promise<Entry<T>[]> {
    await this.#cache.settle();
    return await this.#store.query<T>(query);
  }

  async explain(query?: Query): Promise<QueryPlan> {
    await this.#cache.settle();
    return await this.#store.explain(query);
  }

  async search<T = JsonValue>(text: string, options?: SearchOptions): Promise<SearchHit<T>[]> {
    await this.#cache.settle();
    return await this.#store.search<T>(text, options);
  }

  override changes<T = JsonValue>(options?: ChangesOptions): AsyncIterable<Change<T>> {
    const changes = this.#store.changes<T>(options); // a bad option throws here, at the call
    const cache = this.#cache;
    return (async function* () {
      await cache.settle();
      yield* changes;
    })();
  }

  override async getAt<T = JsonValue>(
    key: Key,
    at: { time: number } | { seq: number },
  ): Promise<Entry<T> | null> {
    await this.#cache.settle();
    return await this.#store.getAt<T>(key, at);
  }

  override async feedInfo(): Promise<FeedInfo> {
    await this.#cache.settle();
    return await this.#store.feedInfo();
  }

  atomic(): AtomicOperation {
    const inner = this.#store.atomic();
    const cache = this.#cache;
    const written: Key[] = [];
    const cleared: Key[] = [];
    const forget = () => {
      for (const key of written) cache.written(key);
      for (const prefix of cleared) cache.cleared(prefix);
    };
    const op: AtomicOperation = {
      check: (key, version) => {
        inner.check(key, version);
        return op;
      },
      set: (key, value, options) => {
        inner.set(key, value, options); // validates
        written.push([...key]);
        return op;
      },
      delete: (key) => {
        inner.delete(key);
        written.push([...key]);
        return op;
      },
      clear: (prefix, bounds) => {
        inner.clear(prefix, bounds);
        cleared.push([...prefix]);
        return op;
      },
      commit: async () => {
        await cache.settle();
        forget();
        try {
          return await inner.commit();
        } finally {
          forget();
        }
      },
    };
    return op;
  }

  async clear(prefix: Key, bounds?: KeyBounds): Promise<number> {
    await this.#cache.settle();
    this.#cache.cleared(prefix);
    try {
      return await this.#store.clear(prefix, bounds);
    } finally {
      this.#cache.cleared(prefix);
    }
  }

  async purgeExpired(): Promise<number> {
    await this.#cache.settle();
    return await this.#store.purgeExpired();
  }

  async compact(): Promise<CompactResult> {
    await this.#cache.settle();
    return await this.#store.compact();
  }

  close(): Promise<void> {
    return this.#store.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
