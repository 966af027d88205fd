/**
 * A read cache that composes over any {@linkcode Store}: LRU over keys,
 * negative lookups cached too, exact hit/miss statistics, and either
 * write-through or write-behind writes.
 *
 * @module
 */
import { ForwardingBase } from "./_forwarding.ts";
import { StoreClosedError } from "../errors.ts";
import { assertKnownFields, fieldNames } from "../_suggest.ts";
import { assertKey } from "../store/keys.ts";
import type {
  AtomicCheck,
  AtomicOperation,
  Clock,
  CommitResult,
  CompactResult,
  DeleteOptions,
  Entry,
  GetOptions,
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
import { ENCRYPTION, type EncryptionHandle, encryptionOf } from "../store/sealed.ts";
import { sealedThroughCache } from "./_cached_sealed.ts";
import { checkDeleteArgs, checkSetArgs } from "../store/write_args.ts";
import { systemClock } from "../clock.ts";
import { listIterator } from "../store/list_iterator.ts";
import { type CacheSlot, idOf, InflightTickets, isExpired, LruCache, slotEntry } from "./_lru.ts";
import { type PendingWrite, ProvisionalVersions, WriteBehindQueue } from "./_write_behind.ts";
import { parseJson } from "../_json.ts";

/**
 * Options for {@linkcode cached}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type CacheOptions, cached } from "@flowstate/core/cache";
 *
 * const base = await openStore({ plugin: "memory" });
 * const options: CacheOptions = { max: 10_000, mode: "write-behind", flushInterval: 0 };
 * await using store = cached(base, options);
 * await store.set(["hits"], 1); // acknowledged, not yet in the store
 * assert.equal(await base.get(["hits"]), null);
 * await store.flush();
 * assert.equal((await base.get(["hits"]))?.value, 1);
 * ```
 */
export interface CacheOptions {
  /**
   * How many keys the read cache holds (present and absent ones alike); the
   * least recently used key is evicted beyond it. A positive integer.
   *
   * @default {1000}
   */
  max?: number;
  /**
   * `"write-through"`: every write goes to the store before it resolves.
   * `"write-behind"`: plain `set`/`delete` (without `ifVersion`) resolve at
   * once and are written later, coalesced per key — they are acknowledged
   * before they are durable, and lost if the process dies before a flush.
   *
   * @default {"write-through"}
   */
  mode?: "write-through" | "write-behind";
  /**
   * Write-behind only: flush pending writes this many milliseconds after the
   * first one is queued. `0` flushes only on {@linkcode CachedStore.flush},
   * {@linkcode Store.close} and operations that need the store to be current.
   *
   * @default {1000}
   */
  flushInterval?: number;
  /**
   * The clock used to decide whether a cached entry has expired and to
   * compute the expiry of writes. Pass the same clock the store uses.
   *
   * @default {Date.now}
   */
  clock?: Clock;
  /**
   * Write-behind only: called when a timed flush fails. The writes stay
   * pending and the timed flush is retried after another `flushInterval`;
   * an explicit `flush()` or `close()` rejects with the error instead.
   * Without it, a failed timed flush is visible only in `stats().pendingWrites`
   * until a flush succeeds. What it throws (or an `async` one's rejection) is ignored.
   */
  onFlushError?: (error: unknown) => void;
}

/**
 * Counters reported by {@linkcode CachedStore.stats}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { cached, type CacheStats } from "@flowstate/core/cache";
 *
 * await using store = cached(await openStore({ plugin: "memory" }));
 * await store.set(["a"], 1);
 * await store.get(["a"]); // from the cache
 * await store.get(["b"]); // read from the store (absent), then cached
 * await store.get(["b"]);
 * const stats: CacheStats = store.stats();
 * assert.deepEqual([stats.hits, stats.misses], [2, 1]);
 * ```
 */
export interface CacheStats {
  /** Key lookups (`get`, each key of `getMany`) answered without the store, absent keys included. */
  hits: number;
  /** Key lookups that had to read the store (expired cached entries included). */
  misses: number;
  /** Entries dropped because the cache was full (not invalidations or expiries). */
  evictions: number;
  /** Keys in the read cache now (pending writes are counted in `pendingWrites`). */
  size: number;
  /** Write-behind writes acknowledged but not yet written to the store (one per key). */
  pendingWrites: number;
}

/**
 * A {@linkcode Store} with a read cache in front, made by {@linkcode cached}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { cached, type CachedStore } from "@flowstate/core/cache";
 *
 * const store: CachedStore = cached(await openStore({ plugin: "memory" }), { max: 100 });
 * await store.set(["settings"], { theme: "dark" });
 * assert.deepEqual((await store.get(["settings"]))?.value, { theme: "dark" });
 * assert.equal(store.stats().size, 1);
 * await store.close(); // closes the store behind it too
 * ```
 */
export interface CachedStore extends Store {
  /** A snapshot of the cache's counters. */
  stats(): CacheStats;
  /**
   * Write every pending write-behind write to the store (a no-op in
   * write-through mode). Concurrent calls are serialized. If the store
   * rejects, the writes that were not written stay pending and this rejects
   * with the store's error; nothing acknowledged is ever dropped.
   */
  flush(): Promise<void>;
}

/** Every option {@linkcode CacheOptions} has. */
const CACHE_OPTIONS: readonly string[] = fieldNames<CacheOptions>()(
  ["max", "mode", "flushInterval", "clock", "onFlushError"],
);

/**
 * Put a read cache in front of any store. The result is itself a
 * {@linkcode Store} (so it passes the conformance suite) plus
 * {@linkcode CachedStore.stats} and {@linkcode CachedStore.flush}.
 *
 * Reads: `get` and `getMany` answer from the cache when they can, absent
 * keys included; values are kept as JSON text, so every read returns a
 * fresh copy. A cached entry whose `expiresAt` has passed is a miss and is
 * dropped. `list`, `count` and `query` always read the store.
 *
 * Writes, write-through (the default): the store is written first; on
 * success the cache holds the new entry and version, so the next `get` is a
 * hit; a conflict or an error drops the key from the cache.
 *
 * Writes, write-behind: a plain `set` or `delete` updates what reads see at
 * once, resolves without touching the store, and is queued; repeated writes
 * to one key coalesce into one store write. **Acknowledged is not durable**:
 * queued writes reach the store on the timer, on `flush()`, on `close()`, and
 * before any operation that needs the store current — a `set`/`delete` with
 * `ifVersion`, `atomic().commit()`, `list`, `count`, `query` and `clear`.
 * A flush writes queued writes in atomic batches; a batch the store rejects
 * stays queued, and the error reaches whoever awaited the flush.
 *
 * Versions in write-behind mode: a queued `set` returns a provisional
 * version (the store makes the real one only when it is written). The
 * cached store remembers which real version each flushed provisional
 * version became and translates both ways, so the provisional version is
 * what every read returns and a valid `ifVersion`/`check` — until the key is
 * written again. It remembers this for the `max` most recently flushed keys;
 * for an older one, reads show the real version and a compare-and-set with
 * the provisional one reports a conflict (re-read and retry, as on any
 * conflict). Provisional versions belong to this handle: once it is closed,
 * the store (reopened, or read by another process) reports its real
 * versions.
 *
 * The cache sees only writes made through it. Another process or another
 * handle writing the same backend is not seen until the key is evicted, so
 * use it where this handle is the only writer, or where staleness is fine.
 * `close()` flushes, then closes the underlying store; if the flush fails,
 * `close()` rejects, the store stays open and the writes stay pending (call
 * `close()` again to retry).
 *
 * @example Write-through: the second read is a cache hit
 * ```ts
 * import { cached } from "@flowstate/core/cache";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * await using store = cached(await openStore({ plugin: "memory" }), { max: 100 });
 * await store.set(["user", "ada"], { name: "Ada" });
 * const entry = await store.get(["user", "ada"]);
 * assert.deepEqual(entry?.value, { name: "Ada" });
 * assert.equal(store.stats().hits, 1);
 * ```
 *
 * @example Write-behind: 100 writes to one key become one store write
 * ```ts
 * import { cached } from "@flowstate/core/cache";
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * const base = await openStore({ plugin: "memory" });
 * const store = cached(base, { mode: "write-behind", flushInterval: 0 });
 * for (let i = 1; i <= 100; i++) await store.set(["counter"], i);
 * assert.equal(store.stats().pendingWrites, 1);
 * assert.equal(await base.get(["counter"]), null); // not written yet
 * await store.flush();
 * assert.equal((await base.get(["counter"]))?.value, 100);
 * await store.close(); // flushes, then closes `base`
 * ```
 */
export function cached(store: Store, options: CacheOptions = {}): CachedStore {
  const what = "Cannot create cached store";
  if (
    typeof store !== "object" || store === null || typeof store.get !== "function" ||
    typeof store.atomic !== "function"
  ) {
    throw new TypeError(`${what}: expected a Store (as returned by openStore())`);
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${what}: options must be an object`);
  }
  assertKnownFields(options, CACHE_OPTIONS, what, "option");
  const max = options.max ?? 1000;
  if (!Number.isInteger(max) || max < 1) {
    throw new RangeError(`${what}: max must be a positive integer (got ${String(max)})`);
  }
  const mode = options.mode ?? "write-through";
  if (mode !== "write-through" && mode !== "write-behind") {
    throw new RangeError(
      `${what}: mode must be "write-through" or "write-behind" (got ${JSON.stringify(mode)})`,
    );
  }
  const flushInterval = options.flushInterval ?? 1000;
  if (typeof flushInterval !== "number" || !Number.isFinite(flushInterval) || flushInterval < 0) {
    throw new RangeError(
      `${what}: flushInterval must be a non-negative number of milliseconds (got ${
        String(flushInterval)
      })`,
    );
  }
  if (options.clock !== undefined && typeof options.clock?.now !== "function") {
    throw new TypeError(`${what}: clock must be an object with a now() method`);
  }
  if (options.onFlushError !== undefined && typeof options.onFlushError !== "function") {
    throw new TypeError(`${what}: onFlushError must be a function`);
  }
  return new CachingStore(store, {
    max,
    writeBehind: mode === "write-behind",
    flushInterval,
    clock: options.clock ?? systemClock,
    onFlushError: options.onFlushError,
  });
}

interface ResolvedOptions {
  max: number;
  writeBehind: boolean;
  flushInterval: number;
  clock: Clock;
  onFlushError: ((error: unknown) => void) | undefined;
}

class CachingStore extends ForwardingBase implements CachedStore {
  readonly #store: Store;
  readonly #writeBehind: boolean;
  readonly #clock: Clock;
  readonly #cache: LruCache;
  /** Queued write-behind writes, one per key; authoritative for reads. */
  readonly #writes: WriteBehindQueue;
  /** Provisional versions of write-behind writes, and the real versions they became. */
  readonly #versions: ProvisionalVersions;
  /** Store reads and writes in flight, per key: a result is cached only if still valid. */
  readonly #inflight = new InflightTickets();
  #hits = 0;
  #misses = 0;
  /** Queued writes that had expired when flushed, since the last `purgeExpired()`. */
  #expiredDropped = 0;
  #closed = false;
  /** The encryption handle of the store beneath, and the one this store forwards for it. */
  #encryption: { inner: EncryptionHandle; forwarded: EncryptionHandle } | undefined;
  #closing: Promise<void> | undefined;

  constructor(store: Store, options: ResolvedOptions) {
    super(store);
    this.#store = store;
    this.#writeBehind = options.writeBehind;
    this.#clock = options.clock;
    this.#cache = new LruCache(options.max);
    this.#versions = new ProvisionalVersions(options.max);
    this.#writes = new WriteBehindQueue({
      store,
      clock: options.clock,
      flushInterval: options.flushInterval,
      onFlushError: options.onFlushError,
      onFlushed: (write, current, version, now) => this.#flushed(write, current, version, now),
    });
  }

  /**
   * An encrypted store's handle, forwarded, so that the backup, restore and
   * rekey jobs see through the cache: its sealed store flushes queued writes
   * before each call and drops from the cache every key written through it.
   */
  get [ENCRYPTION](): EncryptionHandle | undefined {
    const inner = encryptionOf(this.#store);
    if (inner === undefined) return undefined;
    if (this.#encryption?.inner !== inner) {
      const sealed = sealedThroughCache(inner.sealed, {
        settle: () => this.#writes.settle(),
        written: (key) => {
          const id = idOf(key);
          this.#drop(id);
          this.#versions.forget(id);
        },
        cleared: (prefix) => this.#dropUnder(prefix),
      });
      this.#encryption = { inner, forwarded: Object.freeze({ ...inner, sealed }) };
    }
    return this.#encryption.forwarded;
  }

  stats(): CacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#cache.evictions,
      size: this.#cache.size,
      pendingWrites: this.#writes.size,
    };
  }

  #assertOpen(what: string): void {
    if (this.#closed) {
      throw new StoreClosedError(`${what}: store "${this.name}" is closed`);
    }
  }

  // ---- cache bookkeeping -------------------------------------------------

  /** What the cache knows about `id`: an entry, `null` (absent), or `undefined` (a miss). */
  #lookup<T>(id: string, now: number): Entry<T> | null | undefined {
    const pending = this.#writes.get(id);
    if (pending !== undefined) {
      return pending.text === null || isExpired(pending.expiresAt, now)
        ? null
        : slotEntry<T>(pending);
    }
    const slot = this.#cache.use(id, now);
    if (slot === undefined) return undefined;
    return slot.text === null ? null : slotEntry<T>(slot);
  }

  /** Cache `slot` as the most recently used entry, unless closed or a write to `id` is queued. */
  #remember(id: string, slot: CacheSlot): void {
    if (this.#closed || this.#writes.has(id)) return;
    this.#cache.put(id, slot, this.#clock.now());
  }

  #rememberEntry(id: string, key: Key, entry: Entry<unknown> | null): void {
    this.#remember(
      id,
      entry === null ? { key: [...key], text: null, version: "", expiresAt: null } : {
        key: [...entry.key],
        text: JSON.stringify(entry.value),
        version: entry.version,
        expiresAt: entry.expiresAt,
      },
    );
  }

  /** Forget cached entries for `id` (a queued write for it stays authoritative). */
  #drop(id: string): void {
    this.#inflight.invalidate(id);
    if (!this.#writes.has(id)) this.#cache.delete(id);
  }

  #dropUnder(prefix: Key): void {
    this.#cache.deleteUnder(prefix);
    this.#versions.forgetUnder(prefix);
    this.#inflight.invalidateUnder(prefix);
  }

  // ---- write-behind -------------------------------------------------------

  #queue(write: PendingWrite): void {
    this.#inflight.invalidate(write.id);
    this.#cache.delete(write.id);
    this.#versions.forget(write.id);
    this.#writes.add(write);
  }

  /** A queued write reached the store: cache what it wrote, under its provisional version. */
  #flushed(write: PendingWrite, current: boolean, version: string, now: number): void {
    this.#inflight.invalidate(write.id);
    if (!current) return; // rewritten meanwhile
    if (write.text === null || isExpired(write.expiresAt, now)) {
      if (write.text !== null) this.#expiredDropped++; // an expired entry the flush deleted
      this.#remember(write.id, { key: write.key, text: null, version: "", expiresAt: null });
    } else {
      const forgotten = this.#versions.alias(write.id, write.key, write.version, version);
      // The cache shows the provisional version; without the alias, show the real one.
      if (forgotten !== undefined) this.#drop(forgotten);
      this.#remember(write.id, write);
    }
  }

  flush(): Promise<void> {
    return this.#writes.flush();
  }

  // ---- Store --------------------------------------------------------------

  async get<T = JsonValue>(key: Key, options?: GetOptions): Promise<Entry<T> | null> {
    this.#assertOpen("Cannot get");
    assertKey(key, "Cannot get");
    const id = idOf(key);
    const known = this.#lookup<T>(id, this.#clock.now());
    if (known !== undefined) {
      this.#hits++;
      return known;
    }
    this.#misses++;
    const ticket = this.#inflight.begin(id);
    let entry: Entry<T> | null;
    try {
      entry = this.#versions.shown(await this.#store.get<T>(key, options));
    } finally {
      this.#inflight.end(id, ticket);
    }
    if (ticket.valid) this.#rememberEntry(id, key, entry);
    return entry;
  }

  async getMany<T = JsonValue>(keys: readonly Key[]): Promise<(Entry<T> | null)[]> {
    const what = "Cannot getMany";
    this.#assertOpen(what);
    if (!Array.isArray(keys)) throw new TypeError(`${what}: keys must be an array of keys`);
    for (const key of keys) assertKey(key, what);
    const now = this.#clock.now();
    const out: (Entry<T> | null)[] = new Array(keys.length);
    const missing: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const known = this.#lookup<T>(idOf(keys[i]), now);
      if (known === undefined) {
        missing.push(i);
      } else {
        out[i] = known;
      }
    }
    this.#hits += keys.length - missing.length;
    this.#misses += missing.length;
    if (missing.length === 0) return out;
    const ids = missing.map((i) => idOf(keys[i]));
    const tickets = ids.map((id) => this.#inflight.begin(id));
    let fetched: (Entry<T> | null)[];
    try {
      fetched = await this.#store.getMany<T>(missing.map((i) => keys[i]));
    } finally {
      ids.forEach((id, j) => this.#inflight.end(id, tickets[j]));
    }
    missing.forEach((i, j) => {
      const entry = this.#versions.shown(fetched[j]);
      if (tickets[j].valid) this.#rememberEntry(ids[j], keys[i], entry);
      out[i] = entry;
    });
    return out;
  }

  set(key: Key, value: unknown, options?: SetOptions): Promise<CommitResult> {
    // Not async (a write-behind set resolves without a turn), so bad input is turned into a
    // rejection here: a promise-returning method never throws where it is called.
    try {
      return this.#set(key, value, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #set(key: Key, value: unknown, options?: SetOptions): Promise<CommitResult> {
    const what = "Cannot set";
    this.#assertOpen(what);
    // All of it here: a write-behind set resolves before the store sees it.
    const text = checkSetArgs(key, value, options, what);
    key = [...key]; // the caller may reuse the array
    const expireIn = options?.expireIn;
    const ifVersion = options?.ifVersion;
    const id = idOf(key);
    if (this.#writeBehind && ifVersion === undefined) {
      const version = this.#versions.next();
      const expiresAt = expireIn === undefined ? null : this.#clock.now() + expireIn;
      this.#queue({ id, key, text, version, expiresAt });
      return Promise.resolve({ ok: true, version });
    }
    if (this.#writes.size === 0) return this.#setThrough(id, key, value, text, options);
    // The store must see queued writes first; pass a copy, as the caller may mutate `value`.
    return this.flush().then(() => this.#setThrough(id, key, parseJson(text), text, options));
  }

  async #setThrough(
    id: string,
    key: Key,
    value: unknown,
    text: string,
    options: SetOptions | undefined,
  ): Promise<CommitResult> {
    const storeOptions: SetOptions = {};
    if (options?.expireIn !== undefined) storeOptions.expireIn = options.expireIn;
    if (options?.signal !== undefined) storeOptions.signal = options.signal;
    if (options?.ifVersion !== undefined) {
      storeOptions.ifVersion = options.ifVersion === null
        ? null
        : this.#versions.real(id, options.ifVersion);
    }
    const expiresAt = options?.expireIn === undefined ? null : this.#clock.now() + options.expireIn;
    this.#drop(id);
    const ticket = this.#inflight.begin(id);
    let result: CommitResult;
    try {
      result = await this.#store.set(key, value, storeOptions);
    } finally {
      this.#inflight.end(id, ticket);
      this.#inflight.invalidate(id);
    }
    if (result.ok) {
      this.#versions.forget(id);
      if (ticket.valid) {
        this.#remember(id, { key, text, version: result.version, expiresAt });
      }
    }
    return result;
  }

  async delete(key: Key, options?: DeleteOptions): Promise<boolean> {
    const what = "Cannot delete";
    this.#assertOpen(what);
    checkDeleteArgs(key, options, what);
    key = [...key];
    const ifVersion = options?.ifVersion;
    const id = idOf(key);
    if (this.#writeBehind && ifVersion === undefined) {
      this.#queue({ id, key, text: null, version: "", expiresAt: null });
      return true;
    }
    await this.#writes.settle();
    const storeOptions: DeleteOptions | undefined = ifVersion === undefined
      ? (options?.signal === undefined ? undefined : { signal: options.signal })
      : { ifVersion: this.#versions.real(id, ifVersion), signal: options?.signal };
    this.#drop(id);
    const ticket = this.#inflight.begin(id);
    let deleted: boolean;
    try {
      deleted = await this.#store.delete(key, storeOptions);
    } finally {
      this.#inflight.end(id, ticket);
      this.#inflight.invalidate(id);
    }
    if (deleted) {
      this.#versions.forget(id);
      if (ticket.valid) {
        this.#remember(id, { key, text: null, version: "", expiresAt: null });
      }
    }
    return deleted;
  }

  list<T = JsonValue>(options?: ListOptions): ListIterator<T> {
    this.#assertOpen("Cannot list");
    const inner = this.#store.list<T>(options);
    const writes = this.#writes;
    const versions = this.#versions;
    async function* entries(): AsyncGenerator<Entry<T>> {
      await writes.settle();
      for await (const entry of inner) yield versions.shown(entry);
    }
    return listIterator(entries(), { cursor: () => inner.cursor, pageSize: options?.batchSize });
  }

  async count(prefix?: Key, bounds?: KeyBounds): Promise<number> {
    this.#assertOpen("Cannot count");
    await this.#writes.settle();
    return await this.#store.count(prefix, bounds);
  }

  async query<T = JsonValue>(query?: Query): Promise<Entry<T>[]> {
    this.#assertOpen("Cannot query");
    await this.#writes.settle();
    const entries = await this.#store.query<T>(query);
    return this.#versions.size === 0 ? entries : entries.map((e) => this.#versions.shown(e));
  }

  async explain(query?: Query): Promise<QueryPlan> {
    this.#assertOpen("Cannot explain");
    await this.#writes.settle();
    return await this.#store.explain(query);
  }

  async search<T = JsonValue>(text: string, options?: SearchOptions): Promise<SearchHit<T>[]> {
    this.#assertOpen("Cannot search");
    await this.#writes.settle();
    const hits = await this.#store.search<T>(text, options);
    return this.#versions.size === 0
      ? hits
      : hits.map((h) => ({ ...this.#versions.shown(h), score: h.score }));
  }

  /**
   * The store's count, plus the queued writes that had expired by the time a
   * flush since the last call dropped them (a flush deletes such a key
   * rather than writing it, so the store never holds them to purge).
   */
  async purgeExpired(): Promise<number> {
    this.#assertOpen("Cannot purge expired entries");
    await this.#writes.settle();
    // Expired entries are already misses here; only the backend holds them.
    const purged = await this.#store.purgeExpired();
    const dropped = this.#expiredDropped;
    this.#expiredDropped = 0;
    return purged + dropped;
  }

  async compact(): Promise<CompactResult> {
    this.#assertOpen("Cannot compact");
    await this.#writes.settle();
    return await this.#store.compact();
  }

  /** Bounds only narrow what the store deletes; the cache drops the whole prefix. */
  async clear(prefix: Key, bounds?: KeyBounds): Promise<number> {
    const what = "Cannot clear";
    this.#assertOpen(what);
    assertKey(prefix, what, true);
    await this.#writes.settle();
    this.#dropUnder(prefix);
    try {
      return await this.#store.clear(prefix, bounds);
    } finally {
      this.#dropUnder(prefix);
    }
  }

  atomic(): AtomicOperation {
    const what = "Cannot commit atomic operation";
    this.#assertOpen(what);
    const inner = this.#store.atomic();
    const checks: AtomicCheck[] = [];
    const written: Key[] = [];
    const cleared: Key[] = [];
    let committed = false;
    const op: AtomicOperation = {
      check: (key, version) => {
        assertKey(key, `${what}: check`);
        if (version !== null && typeof version !== "string") {
          throw new TypeError(`${what}: check version must be a version string or null`);
        }
        checks.push({ key: [...key], version });
        return op;
      },
      set: (key, value, options) => {
        assertKey(key, `${what}: set`);
        key = [...key]; // the caller may reuse the array before commit()
        inner.set(key, value, options);
        written.push(key);
        return op;
      },
      delete: (key) => {
        assertKey(key, `${what}: delete`);
        key = [...key];
        inner.delete(key);
        written.push(key);
        return op;
      },
      clear: (prefix, bounds) => {
        inner.clear(prefix, bounds); // validates
        cleared.push([...prefix]);
        return op;
      },
      commit: () => {
        this.#assertOpen(what);
        if (committed) {
          return Promise.reject(new TypeError(`${what}: this operation was already committed`));
        }
        committed = true;
        return this.#commit(inner, checks, written, cleared);
      },
    };
    return op;
  }

  async #commit(
    inner: AtomicOperation,
    checks: AtomicCheck[],
    written: Key[],
    cleared: Key[],
  ): Promise<CommitResult> {
    await this.#writes.settle();
    for (const prefix of cleared) this.#dropUnder(prefix);
    for (const { key, version } of checks) {
      inner.check(key, version === null ? null : this.#versions.real(idOf(key), version));
    }
    const writtenIds = new Set(written.map(idOf));
    const touched = new Set([...writtenIds, ...checks.map((c) => idOf(c.key))]);
    for (const id of touched) this.#drop(id);
    let result: CommitResult;
    try {
      result = await inner.commit();
    } finally {
      for (const id of touched) this.#drop(id);
      for (const prefix of cleared) this.#dropUnder(prefix);
    }
    if (result.ok) { for (const id of writtenIds) this.#versions.forget(id); }
    return result;
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#writes.stop();
    const closing = this.#writes.settle().then(() => this.#store.close()).then(() => {
      this.#cache.clear();
      this.#versions.clear();
    });
    this.#closing = closing;
    // A failed flush leaves the store open and the writes pending: close() may be retried.
    closing.catch(() => {
      if (this.#closing === closing) this.#closing = undefined;
    });
    return closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
