/**
 * The core's Store: wraps a plugin's driver, validates, copies, filters
 * expired entries and supplies fallbacks for what the driver lacks.
 *
 * @module
 */
import { fieldNames } from "../_suggest.ts";
import { FeedDisabledError, StoreClosedError } from "../errors.ts";
import { currentActor } from "./actor.ts";
import { givenUpError } from "./given_up.ts";
import {
  changeAt,
  checkChangesOptions,
  feedBounds,
  feedCommit,
  type FeedRetention,
  keyHistorySeqs,
  planFeed,
  readChanges,
  readEntry,
  readHead,
  setFeedValues,
  trimFeed,
} from "./feed.ts";
import type {
  ClearRange,
  CommitRequest,
  DriverCommitResult,
  KeyRange,
  Mutation,
  PagedListing,
  RawEntry,
  StoreDriver,
} from "./driver.ts";
import {
  assertKey,
  assertKeySize,
  clearEarlierSets,
  compareKeys,
  decodeCursor,
  encodeCursor,
  hasPrefix,
} from "./keys.ts";
import { applyQuery, normalizeQuery } from "./query.ts";
import { encryptionOf } from "./sealed.ts";
import {
  chooseIndex,
  type IndexSpec,
  normalizeSearchRequest,
  searchScore,
  type SearchSpec,
  sortHits,
} from "./indexes.ts";
import type { PreparedIndexes, PrepareIndexesRequest } from "./driver.ts";
import type {
  AtomicCheck,
  AtomicOperation,
  Capabilities,
  Change,
  ChangesOptions,
  ClaimCompanion,
  Clock,
  CommitResult,
  CompactResult,
  DeleteOptions,
  Entry,
  FeedInfo,
  GetOptions,
  IndexInfo,
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
  WatchOptions,
} from "./types.ts";
import { assertValueSize, serializeValue } from "./values.ts";
import { checkExpireIn } from "./write_args.ts";
import { systemClock } from "../clock.ts";
import { uniqueRandomHex } from "../_random.ts";
import { listIterator } from "./list_iterator.ts";
import { CoreIndexes } from "./core_indexes.ts";
import {
  coreStore,
  INTERNAL,
  INTERNAL_ACCESS,
  type InternalAccess,
  internalAccess,
  isInternalKey,
  outsideInternal,
  reachesInternal,
} from "./internal_keys.ts";
import { provideStoredReader, type StoredReader } from "./stored_read.ts";
import { parseJson } from "../_json.ts";

/** The topic of the wake-ups a feed commit sends (`listen`/`signal`) to watchers in other processes. */
export const FEED_TOPIC = "feed";

/**
 * How often a watcher looks for changes by polling: bounded, cheap (the driver's change token,
 * else one read of the head).
 */
const POLL_MS_LOCAL = 20;
/** With wake-ups across processes (`listen`), polling is only a safety net. */
const POLL_MS_SIGNALLED = 1_000;

/**
 * A driver's listing of several ranges one after the other, synchronous when
 * every part is (so the core's fast path for synchronous drivers still holds).
 */
function chainListings(
  parts: (AsyncIterable<RawEntry> | Iterable<RawEntry>)[],
): AsyncIterable<RawEntry> | Iterable<RawEntry> {
  if (parts.length === 1) return parts[0];
  if (parts.every((p) => Symbol.iterator in p)) {
    return (function* () {
      for (const p of parts) yield* p as Iterable<RawEntry>;
    })();
  }
  return (async function* () {
    for (const p of parts) yield* p;
  })();
}

/** This process's part of every version it makes (never repeated by `--seed`: see `_random.ts`). */
const PROCESS_TAG = uniqueRandomHex(8);

/**
 * How many times a commit to a store with a change feed (kept as entries) is
 * planned again when other commits moved the feed's head under it: each retry
 * means another commit went through, so only a store written without pause
 * by as many others, or a driver reporting conflicts it did not have, gets
 * this far.
 */
const MAX_FEED_TRIES = 1_000;
let versionCounter = 0;
let versionMs = -1;
let versionPrefix = "";

/**
 * A new, globally unique version string: the time in ms (base 36, fixed
 * width), a per-process counter and a random per-process tag.
 */
export function newVersion(ms: number = Date.now()): string {
  if (ms !== versionMs) {
    versionMs = ms;
    versionPrefix = ms.toString(36).padStart(9, "0");
  }
  versionCounter = (versionCounter + 1) | 0;
  return `${versionPrefix}.${(versionCounter >>> 0).toString(36)}.${PROCESS_TAG}`;
}

/** What a driver claims when it says nothing: every capability off, the core supplying it. */
const DEFAULT_CAPABILITIES: Capabilities = {
  persistent: false,
  expiry: false,
  query: false,
  count: false,
  clear: false,
  atomicClear: false,
  multiProcess: false,
  indexes: false,
  search: false,
};

/** The names a driver's `capabilities` may use (any other is a misspelling: refused at open). */
export const CAPABILITY_NAMES: readonly string[] = fieldNames<Capabilities>()(
  ["persistent", "expiry", "query", "count", "clear", "atomicClear", "multiProcess"],
  ["indexes", "search", "abort"],
);

/** The core's method that trims a store's feed (the `gc` job calls it through `trimChanges`). */
const TRIM_FEED: unique symbol = Symbol("flowstate.trimFeed");

/**
 * Trim `store`'s change feed by its retention; resolves how many entries were
 * removed, or `undefined` when the store keeps no feed or is not one the core
 * wrapped.
 */
export async function trimChanges(store: Store): Promise<number | undefined> {
  const core = coreStore(store);
  const trim = (core as { [TRIM_FEED]?: () => Promise<number> } | undefined)?.[TRIM_FEED];
  if (typeof trim !== "function") return undefined;
  if (!(await store.feedInfo()).enabled) return undefined;
  return await trim.call(core);
}

/** The core's method that rewrites values of its feed's entries (the `rekey` job, through `setChangeValues`). */
const SET_FEED_VALUES: unique symbol = Symbol("flowstate.setFeedValues");

/**
 * Replace the values of entries of `store`'s change feed, in place (the
 * `rekey` job seals them again): each entry keeps everything else. `from` is
 * the entry as read (an entry no longer kept, or changed since, is left
 * alone), `value` the new value's JSON text. Resolves how many were
 * rewritten, or `undefined` when `store` is not one the core wrapped.
 */
export async function setChangeValues(
  store: Store,
  values: readonly { from: Change; value: string }[],
): Promise<number | undefined> {
  const core = coreStore(store);
  const set = (core as {
    [SET_FEED_VALUES]?: (values: readonly { from: Change; value: string }[]) => Promise<number>;
  } | undefined)?.[SET_FEED_VALUES];
  if (typeof set !== "function") return undefined;
  return await set.call(core, values);
}

/** How the core wraps a driver. */
export interface WrapOptions {
  /** The store's name. */
  name: string;
  /** The plugin's name. */
  plugin: string;
  /** The clock (default: the system clock). */
  clock?: Clock;
  /** The declared indexes (validated with `normalizeIndexes`). */
  indexes?: IndexSpec[];
  /** The declared search index. */
  search?: SearchSpec;
  /** What the driver's `prepareIndexes` built natively. */
  prepared?: PreparedIndexes;
  /** Keep a change feed with this retention (`normalizeFeedOption`); none without it. */
  changes?: FeedRetention;
}

/** What a driver returned, as JSON (or `String()`), cut to `max` characters: for a message. */
function shownBriefly(value: unknown, max: number): string {
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  return shown.length > max ? `${shown.slice(0, max)}…` : shown;
}

/**
 * Throw unless `raw` has a {@linkcode RawEntry}'s shape: a driver's mistake
 * (the value parsed instead of JSON text, `expiresAt` left out) is named at
 * once, instead of an entry that `get` hides as expired while `list` shows
 * it, or a `SyntaxError` from `JSON.parse`.
 */
function checkRaw(raw: RawEntry): void {
  if (raw === undefined) {
    throw new TypeError(
      "The store's driver returned undefined for an entry; return null for an absent key " +
        "(get() and getMany()), and a RawEntry otherwise",
    );
  }
  if (
    typeof raw === "object" && raw !== null && Array.isArray(raw.key) &&
    typeof raw.value === "string" && typeof raw.version === "string" &&
    (raw.expiresAt === null || typeof raw.expiresAt === "number")
  ) return;
  throw new TypeError(
    `The store's driver returned a malformed entry: ${
      shownBriefly(raw, 120)
    }; a RawEntry is { key: string[], value: its JSON text (a string), version: string, expiresAt: number | null }`,
  );
}

function toEntry<T>(raw: RawEntry): Entry<T> {
  checkRaw(raw);
  return checkedEntry(raw);
}

/** {@linkcode toEntry} of an entry already checked with {@linkcode checkRaw}. */
function checkedEntry<T>(raw: RawEntry): Entry<T> {
  return {
    key: [...raw.key],
    value: parseJson(raw.value) as T,
    version: raw.version,
    expiresAt: raw.expiresAt,
  };
}

/**
 * What a driver's `commit()` resolved, checked: a plugin author's mistake (no
 * `return`, `ok` missing, a failure without `conflicts`) is named at once
 * rather than failing later as a `TypeError` inside the core.
 */
function checkedResult(result: unknown, store: string): DriverCommitResult {
  const r = result as { ok?: unknown; conflicts?: unknown } | null | undefined;
  if (r?.ok === true || (r?.ok === false && Array.isArray(r.conflicts))) {
    return r as DriverCommitResult;
  }
  throw new TypeError(
    `Cannot commit to store "${store}": its driver's commit() resolved ${
      shownBriefly(result, 80)
    }; it must resolve { ok: true } or { ok: false, conflicts: [the keys whose checks failed] }`,
  );
}

function commitResult(raw: DriverCommitResult, version: string, store: string): CommitResult {
  const result = checkedResult(raw, store);
  return result.ok ? { ok: true, version } : conflicted(result.conflicts);
}

/**
 * A failed commit's result: each key once, in the order first reported (a
 * driver reports a key checked twice as often as its checks failed).
 */
/** Whether `value` is a promise or another library's thenable (what `await` waits for). */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

function conflicted(conflicts: readonly Key[]): CommitResult {
  const seen = new Set<string>();
  const unique = conflicts.filter((key) => {
    const id = JSON.stringify(key);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  return { ok: false, version: null, conflicts: unique };
}

/** Wrap a driver into a full {@linkcode Store}. */
export function wrapDriver(driver: StoreDriver, options: WrapOptions): Store {
  const store = new CoreStore(driver, options);
  uniqueVersions.add(store);
  if (options.changes === undefined) actorBlind.add(store);
  return store;
}

/** Stores whose every write gets a globally unique version ({@linkcode newVersion}). */
const uniqueVersions = new WeakSet<Store>();

/**
 * Whether every write to `store` gets a version no other write ever gets (a
 * store from {@linkcode wrapDriver}, or a wrapper that says so with
 * {@linkcode markUniqueVersions}): then an entry whose version is one this
 * process wrote still holds the value it wrote (internal).
 */
export function hasUniqueVersions(store: Store): boolean {
  return uniqueVersions.has(store);
}

/** Say that `wrapper` writes through to a store with unique versions, unchanged (internal). */
export function markUniqueVersions(wrapper: Store, inner: Store): void {
  if (uniqueVersions.has(inner)) uniqueVersions.add(wrapper);
  if (actorBlind.has(inner)) actorBlind.add(wrapper);
}

/** Stores known never to read the actor (see {@linkcode readsActor}). */
const actorBlind = new WeakSet<Store>();

/**
 * Whether a write to `store` may read the actor in effect (`actor.ts`):
 * `false` only for a store known to keep no change feed (a store from
 * {@linkcode wrapDriver} opened without `changes`, or a wrapper passed to
 * {@linkcode markUniqueVersions} over one), whose writes never ask who
 * writes; `true` for every other store (internal).
 */
export function readsActor(store: Store): boolean {
  return !actorBlind.has(store);
}

/**
 * Build the index entries the core keeps for a store `wrapDriver` made (no-op
 * for any other store); `authoritative`: the declaration is the whole one,
 * so the entries of indexes no longer in it are dropped.
 */
export async function prepareCoreIndexes(
  store: Store,
  authoritative: boolean,
  progress: (message: string) => void,
  signal?: AbortSignal,
  onBuild?: PrepareIndexesRequest["onBuild"],
): Promise<void> {
  if (store instanceof CoreStore) {
    await store.prepareCoreIndexes(authoritative, progress, signal, onBuild);
  }
}

class CoreStore implements Store {
  readonly name: string;
  readonly plugin: string;
  readonly location: string;
  readonly capabilities: Readonly<Capabilities>;
  #driver: StoreDriver;
  #clock: Clock;
  #closed = false;
  #closing: Promise<void> | undefined;
  #indexSpecs: IndexSpec[];
  #search: SearchSpec | undefined;
  #nativeSearch: boolean;
  /** Index entries kept by the core, for a driver that builds no index natively. */
  #coreIx: CoreIndexes;
  /** Whether the core's index entries are built (answer queries from them only then). */
  #coreIxReady = false;
  readonly indexes: readonly IndexInfo[];
  #feed: FeedRetention | undefined;
  /** Watchers in this process, woken after each feed commit. */
  #wakers = new Set<() => void>();
  /** Wake-ups sent to other processes, awaited by close(). */
  #signals = new Set<Promise<void>>();
  /** Aborted by close(): ends every watch. */
  #closedSignal = new AbortController();
  /** Commits on their way (each write's), which close() lets finish before it closes the driver. */
  #writing = 0;
  /** Resolved when the last commit on its way settles, once close() waits for them. */
  #written: PromiseWithResolvers<void> | undefined;
  #wrote = (): void => {
    if (--this.#writing === 0) this.#written?.resolve();
  };
  /** `committing`, counted as on its way until it settles. */
  #onItsWay = (committing: Promise<CommitResult>): Promise<CommitResult> => {
    this.#writing++;
    committing.then(this.#wrote, this.#wrote);
    return committing;
  };

  constructor(driver: StoreDriver, options: WrapOptions) {
    this.#driver = driver;
    this.#feed = options.changes;
    this.#indexSpecs = options.indexes ?? [];
    this.#search = options.search;
    const native = new Set(options.prepared?.indexes ?? []);
    this.#nativeSearch = options.prepared?.search ?? false;
    this.indexes = Object.freeze(this.#indexSpecs.map((i) =>
      Object.freeze({
        name: i.name,
        prefix: Object.freeze([...i.prefix]),
        path: Object.freeze([...i.path]),
        native: native.has(i.name),
      })
    ));
    this.#clock = options.clock ?? systemClock;
    this.name = options.name;
    this.plugin = options.plugin;
    this.location = driver.location;
    this.capabilities = Object.freeze({ ...DEFAULT_CAPABILITIES, ...driver.capabilities });
    // A driver that builds indexes natively answers (or scans) every query itself; for the
    // others the core keeps index entries in the internal space.
    // The core keeps the indexes recorded in the store whatever this open declares (another
    // program may declare them), so that every write keeps their entries exact.
    this.#coreIx = new CoreIndexes(
      driver,
      this.capabilities.indexes ? [] : this.#indexSpecs.filter((i) => !native.has(i.name)),
      !this.capabilities.indexes,
      (result) => checkedResult(result, this.name),
    );
    if (typeof driver.listen === "function" && typeof driver.signal === "function") {
      this.listen = (topic, onSignal) => {
        this.#assertOpen("Cannot listen");
        return driver.listen!(topic, onSignal);
      };
      this.signal = (topic) => {
        this.#assertOpen("Cannot signal");
        return driver.signal!(topic);
      };
    }
    // A native claim commits inside the driver's own transaction: a store that keeps a feed
    // claims natively only when the driver writes the feed there too (`commitFeed`, or its
    // feed table); otherwise the queue claims through compare-and-set.
    if (
      typeof driver.claim === "function" &&
      (this.#feed === undefined || this.#nativeFeed ||
        (driver.feedTable !== undefined && !this.#coreIx.active))
    ) {
      const claim = driver.claim;
      this.claimFirst = (prefix, take, options) =>
        this.#claimFirst(claim, prefix, take as never, options);
    }
    const reader = this.#storedReader;
    provideStoredReader(this, CoreStore.prototype, () => reader);
  }

  listen?: (topic: string, onSignal: () => void) => Promise<() => Promise<void>>;
  signal?: (topic: string) => Promise<void>;
  claimFirst?: Store["claimFirst"];

  /** The driver writes the feed itself (`commitFeed`), in the commit's own transaction. */
  get #nativeFeed(): boolean {
    return this.#feed !== undefined && typeof this.#driver.commitFeed === "function" &&
      !this.#coreIx.active;
  }

  #assertOpen(what: string): void {
    if (this.#closed) {
      throw new StoreClosedError(`${what}: store "${this.name}" is closed`);
    }
  }

  #live(raw: RawEntry | null, now: number): RawEntry | null {
    if (raw === null) return null;
    checkRaw(raw);
    return raw.expiresAt === null || raw.expiresAt > now ? raw : null;
  }

  async get<T = JsonValue>(key: Key, options?: GetOptions): Promise<Entry<T> | null> {
    this.#assertOpen("Cannot get");
    assertKey(key, "Cannot get");
    const signal = options?.signal;
    if (signal?.aborted) throw givenUpError("Cannot get", this.#where, signal);
    const now = this.#clock.now();
    const raw = this.#live(
      await (signal === undefined
        ? this.#driver.get(key, now)
        : this.#driver.get(key, now, signal)),
      now,
    );
    return raw === null ? null : toEntry<T>(raw);
  }

  /** `store "main" (location)`, for messages. */
  get #where(): string {
    return `store "${this.name}" (${this.location})`;
  }

  async getMany<T = JsonValue>(keys: readonly Key[]): Promise<(Entry<T> | null)[]> {
    const raws = await this.#getManyStored(keys);
    return raws.map((r) => r === null ? null : toEntry<T>(r));
  }

  /** What {@linkcode CoreStore.get} reads, not parsed: at once when the driver answers at once. */
  #getStored(key: Key): RawEntry | null | Promise<RawEntry | null> {
    this.#assertOpen("Cannot get");
    assertKey(key, "Cannot get");
    const now = this.#clock.now();
    const raw = this.#driver.get(key, now);
    // Anything with a `then` is awaited, as `get`'s `await` does (a plugin's own thenable too).
    return isThenable(raw)
      ? Promise.resolve(raw).then((r) => this.#live(r as RawEntry | null, now))
      : this.#live(raw as RawEntry | null, now);
  }

  /** What {@linkcode CoreStore.getMany} reads, not parsed. */
  async #getManyStored(keys: readonly Key[]): Promise<(RawEntry | null)[]> {
    this.#assertOpen("Cannot getMany");
    if (!Array.isArray(keys)) throw new TypeError("Cannot getMany: keys must be an array of keys");
    for (const key of keys) assertKey(key, "Cannot getMany");
    const now = this.#clock.now();
    const raws = this.#driver.getMany
      ? await this.#driver.getMany(keys, now)
      : await Promise.all(keys.map((k) => this.#driver.get(k, now)));
    return raws.map((r) => this.#live(r, now));
  }

  /** Entries as stored, for the encryption wrapper (see `stored_read.ts`). */
  readonly #storedReader: StoredReader = {
    get: (key) => this.#getStored(key),
    getMany: (keys) => this.#getManyStored(keys),
  };

  /**
   * Build the core's index entries not built yet (and, when `authoritative`,
   * drop those of indexes no longer declared); from then on queries use them.
   */
  async prepareCoreIndexes(
    authoritative: boolean,
    progress: (message: string) => void,
    signal?: AbortSignal,
    onBuild?: PrepareIndexesRequest["onBuild"],
  ): Promise<void> {
    await this.#coreIx.prepare(
      authoritative,
      () => this.#clock.now(),
      () => newVersion(),
      progress,
      signal,
      onBuild,
    );
    this.#coreIxReady = this.#coreIx.specs.length > 0;
  }

  /**
   * Commit; one that does not settle at once is counted as on its way until
   * it settles (see `close()`). `signal` (a write's own, see
   * `GetOptions.signal`) reaches the driver's commit, except for a store that
   * keeps a change feed (its commits are not given up once started: a driver
   * may batch the feed's writes of several callers).
   */
  #commit(
    checks: AtomicCheck[],
    mutations: Mutation[],
    what = "Cannot commit",
    signal?: AbortSignal,
  ): Promise<CommitResult> {
    if (signal?.aborted) {
      return Promise.reject(givenUpError(what, this.#where, signal, "nothing was written"));
    }
    if (this.#feed !== undefined) {
      return this.#onItsWay(this.#feedCommit(checks, mutations, signal));
    }
    const now = this.#clock.now();
    const version = newVersion(this.#clock === systemClock ? now : Date.now());
    if (this.#coreIx.enabled) {
      return this.#onItsWay(
        this.#coreIx.commit(checks, mutations, version, () => this.#clock.now(), signal)
          .then((r) => commitResult(r, version, this.name)),
      );
    }
    const request: CommitRequest = signal === undefined
      ? { checks, mutations, version, now }
      : { checks, mutations, version, now, signal };
    let result;
    try {
      result = this.#driver.commit(request);
    } catch (err) {
      return Promise.reject(err);
    }
    if (isThenable(result)) {
      return this.#onItsWay(
        Promise.resolve(result).then((r) => commitResult(r, version, this.name)),
      );
    }
    // A synchronous driver's commit is done: nothing on its way for close() to wait for.
    try {
      return Promise.resolve(commitResult(result, version, this.name));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * A commit with the feed: the entries and the head move in the same driver
   * commit, checked against the head as read. When another commit moved the
   * head meanwhile, plan again (the user's own checks are evaluated anew).
   */
  async #feedCommit(
    checks: AtomicCheck[],
    mutations: Mutation[],
    signal?: AbortSignal,
  ): Promise<CommitResult> {
    const by = currentActor();
    await this.#coreIx.loaded();
    const table = this.#driver.feedTable;
    if (table !== undefined) {
      // The driver keeps the feed in a table of its own, appended in the commit's transaction.
      if (this.#coreIx.active) {
        throw new Error(
          `Cannot commit to store "${this.name}": its driver keeps the change feed in a table ` +
            `of its own but not the declared indexes; a driver with a feed table must build them`,
        );
      }
      if (!this.capabilities.atomicClear && mutations.some((m) => m.type === "clear")) {
        mutations = await this.#expandClears(mutations);
      }
      const now = this.#clock.now();
      const version = newVersion(this.#clock === systemClock ? now : Date.now());
      // The signal goes to the driver: a commit still waiting for its turn may be given up.
      const result = await table.commit(
        signal === undefined
          ? { checks, mutations, version, now }
          : { checks, mutations, version, now, signal },
        { by: JSON.stringify(by), topic: FEED_TOPIC },
      );
      if (!result.ok) return conflicted(result.conflicts);
      for (const wake of this.#wakers) wake();
      return { ok: true, version };
    }
    if (this.#nativeFeed && !mutations.some((m) => m.type === "clear")) {
      // The driver writes the feed in the commit's transaction, under the head's lock. (A clear
      // takes the checked path below: its deletes come from a listing, which the head's check
      // keeps exact.)
      const now = this.#clock.now();
      const version = newVersion(this.#clock === systemClock ? now : Date.now());
      const result = await this.#driver.commitFeed!(
        { checks, mutations, version, now },
        feedCommit(mutations, now, version, by, FEED_TOPIC),
      );
      if (!result.ok) return conflicted(result.conflicts);
      for (const wake of this.#wakers) wake();
      return { ok: true, version };
    }
    for (let tries = 1;; tries++) {
      const expanded = mutations.some((m) => m.type === "clear")
        ? await this.#expandClears(mutations)
        : mutations;
      const now = this.#clock.now();
      const version = newVersion(this.#clock === systemClock ? now : Date.now());
      const plan = await planFeed(this.#driver, expanded, now, version, by);
      // With the core's own indexes, their entries move in the same commit too.
      const result = this.#coreIx.enabled
        ? await this.#coreIx.commit(
          [...checks, plan.check],
          [...expanded, ...plan.mutations],
          version,
          () => now,
        )
        : checkedResult(
          await this.#driver.commit({
            checks: [...checks, plan.check],
            mutations: [...expanded, ...plan.mutations],
            version,
            now,
          }),
          this.name,
        );
      if (result.ok) {
        if (plan.mutations.length > 0) this.#announce();
        return { ok: true, version };
      }
      const head = await readHead(this.#driver);
      if (head.version === version) {
        // The head carries this very commit: the driver wrote it, then said it conflicted.
        throw new TypeError(
          `Cannot commit to store "${this.name}": its driver reported a conflict but applied the ` +
            `commit (the change feed's head carries the commit's own version); a commit with a ` +
            `failing check must write nothing`,
        );
      }
      if (head.version === plan.headVersion) {
        return conflicted(result.conflicts.filter((k) => !isInternalKey(k)));
      }
      // Another commit moved the head meanwhile: plan again, a bounded number of times.
      if (tries >= MAX_FEED_TRIES) {
        throw new Error(
          `Cannot commit to store "${this.name}": the change feed's head moved under each of ` +
            `${tries} tries of this commit (other writers committing without pause, or a driver ` +
            `that reports conflicts it did not have); nothing was written`,
        );
      }
    }
  }

  /** Wake this process's watchers, and other processes' (where the driver carries signals). */
  #announce(): void {
    for (const wake of this.#wakers) wake();
    if (this.#driver.signal && this.#driver.listen) {
      const sent = this.#driver.signal(FEED_TOPIC).catch(() => {});
      this.#signals.add(sent);
      sent.finally(() => this.#signals.delete(sent));
    }
  }

  #assertFeed(what: string): FeedRetention {
    this.#assertOpen(what);
    if (this.#feed === undefined) throw new FeedDisabledError(this.name, what);
    return this.#feed;
  }

  changes<T = JsonValue>(options: ChangesOptions = {}): AsyncIterable<Change<T>> {
    const what = "Cannot read changes";
    this.#assertFeed(what);
    checkChangesOptions(options, what);
    if (options.prefix !== undefined) assertKey(options.prefix, `${what}: prefix`, true);
    const driver = this.#driver;
    // deno-lint-ignore no-this-alias
    const self = this;
    return (async function* () {
      for await (const change of readChanges<T>(driver, options)) {
        self.#assertOpen(what);
        yield change;
      }
    })();
  }

  watch<T = JsonValue>(
    prefixes: readonly Key[],
    options: WatchOptions = {},
  ): AsyncIterable<Change<T>> {
    const what = "Cannot watch";
    this.#assertFeed(what);
    if (!Array.isArray(prefixes) || prefixes.length === 0) {
      throw new TypeError(`${what}: prefixes must be a non-empty array of keys ([[]]: every key)`);
    }
    for (const p of prefixes) assertKey(p, `${what}: prefix`, true);
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`${what}: options must be an object`);
    }
    if (options.since !== undefined) checkChangesOptions({ since: options.since }, what);
    const wanted = prefixes.map((p) => [...p]);
    const driver = this.#driver;
    const closed = this.#closedSignal.signal;
    const wakers = this.#wakers;
    // deno-lint-ignore no-this-alias
    const self = this;
    return (async function* () {
      const signal = options.signal;
      if (signal?.aborted || closed.aborted) return;
      let since = options.since;
      if (since === undefined) since = (await readHead(driver)).seq;
      else {
        const { firstSeq } = await feedBounds(driver);
        if (since < firstSeq - 1) {
          throw new RangeError(
            `${what}: the changes after #${since} were trimmed (the oldest kept is #${firstSeq}); ` +
              `resume from #${firstSeq - 1} or keep the feed longer (changes.keep)`,
          );
        }
      }
      let wake: (() => void) | undefined;
      let woken = false;
      const waker = () => {
        woken = true;
        wake?.();
      };
      wakers.add(waker);
      const onAbort = () => wake?.();
      signal?.addEventListener("abort", onAbort);
      closed.addEventListener("abort", onAbort);
      let unlisten: (() => Promise<void>) | undefined;
      let pollMs = POLL_MS_LOCAL;
      /** Wait for the next poll, or until woken or stopped (at once if woken already). */
      const sleep = () =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(done, pollMs);
          function done() {
            clearTimeout(timer);
            wake = undefined;
            resolve();
          }
          wake = done;
          if (woken || signal?.aborted || closed.aborted) done();
        });
      try {
        if (driver.listen && driver.signal) unlisten = await driver.listen(FEED_TOPIC, waker);
        if (unlisten) pollMs = POLL_MS_SIGNALLED;
        // Without wake-ups across processes, a driver's change token (read before the head, so
        // a commit after it moves the next one) tells whether another process may have written.
        const token = unlisten ? undefined : driver.changeToken?.bind(driver);
        let lastToken: number | undefined;
        let lastHead = -1;
        while (!signal?.aborted && !closed.aborted) {
          const ours = woken; // this store's own commit: the token need not move for it
          woken = false;
          if (token !== undefined) {
            const current = await token();
            if (current === lastToken && !ours && lastHead !== -1) {
              await sleep();
              continue;
            }
            lastToken = current;
          }
          const head = await readHead(driver);
          if (head.seq !== lastHead) {
            lastHead = head.seq;
            for await (const change of readChanges<T>(driver, { since, limit: 1000 })) {
              // Sequence numbers have no gaps: a missing one was trimmed (changes.keep) while
              // this watch was behind. Said, as at the start, rather than passed over.
              if (change.seq !== since + 1) {
                throw new RangeError(
                  `${what}: changes #${since + 1} to #${change.seq - 1} were trimmed by the ` +
                    `feed's retention (changes.keep) before this watch read them; resume from ` +
                    `#${change.seq - 1} to go on without them, or keep the feed longer`,
                );
              }
              since = change.seq;
              if (wanted.some((p) => p.length === 0 || hasPrefix(change.key, p))) {
                yield change;
                if (signal?.aborted || closed.aborted) return;
              }
            }
            if (since < head.seq) {
              lastHead = -1; // more than one batch behind: read on at once
              continue;
            }
          }
          await sleep();
        }
      } finally {
        wakers.delete(waker);
        signal?.removeEventListener("abort", onAbort);
        closed.removeEventListener("abort", onAbort);
        await unlisten?.().catch(() => {});
        void self;
      }
    })();
  }

  async getAt<T = JsonValue>(
    key: Key,
    at: { time: number } | { seq: number },
  ): Promise<Entry<T> | null> {
    const what = "Cannot read a key as it was";
    this.#assertFeed(what);
    assertKey(key, what);
    if (typeof at !== "object" || at === null || !("time" in at || "seq" in at)) {
      throw new TypeError(
        `${what}: at must be { time: <ms since the epoch> } or { seq: <number> }`,
      );
    }
    if ("time" in at && "seq" in at) {
      throw new TypeError(
        `${what}: at has both time (${String(at.time)}) and seq (${String(at.seq)}); give ` +
          "one of them: { time: <ms since the epoch> } or { seq: <number> }",
      );
    }
    const { result, time } = await changeAt(this.#driver, key, at, what);
    if (result.kind === "absent") return null;
    if (result.kind === "current") {
      const raw = await this.#driver.get(key, time);
      if (raw === null || (raw.expiresAt !== null && raw.expiresAt <= time)) return null;
      return toEntry<T>(raw);
    }
    const change = result.change;
    if (change.op === "delete") return null;
    if (change.expiresAt !== null && change.expiresAt <= time) return null;
    return {
      key: [...key],
      value: change.value as T,
      version: change.version!,
      expiresAt: change.expiresAt,
    };
  }

  async feedInfo(): Promise<FeedInfo> {
    this.#assertOpen("Cannot read the feed's state");
    if (this.#feed === undefined) return { enabled: false, firstSeq: 1, lastSeq: 0, keep: null };
    const { firstSeq, lastSeq } = await feedBounds(this.#driver);
    return { enabled: true, firstSeq, lastSeq, keep: this.#feed.keep };
  }

  /** Trim the feed by its retention (the `gc` job); resolves how many entries it removed. */
  async [TRIM_FEED](): Promise<number> {
    const feed = this.#assertFeed("Cannot trim the change feed");
    return await trimFeed(this.#driver, feed, this.#clock.now(), () => newVersion());
  }

  /** Rewrite values of the feed's entries (the `rekey` job): see `setChangeValues`. */
  async [SET_FEED_VALUES](values: readonly { from: Change; value: string }[]): Promise<number> {
    this.#assertFeed("Cannot rewrite the change feed's values");
    return await setFeedValues(this.#driver, values, this.#clock.now(), () => newVersion());
  }

  set(key: Key, value: unknown, options?: SetOptions): Promise<CommitResult> {
    try {
      return this.#set(key, value, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #set(key: Key, value: unknown, options?: SetOptions): Promise<CommitResult> {
    const what = "Cannot set";
    this.#assertOpen(what);
    assertKey(key, what);
    assertKeySize(key, what);
    key = [...key];
    const text = serializeValue(value, what);
    assertValueSize(text, what);
    let expiresAt: number | null = null;
    if (options?.expireIn !== undefined) {
      checkExpireIn(options.expireIn, what);
      expiresAt = this.#clock.now() + options.expireIn;
    }
    const checks: AtomicCheck[] = [];
    if (options?.ifVersion !== undefined) {
      if (options.ifVersion !== null && typeof options.ifVersion !== "string") {
        throw new TypeError(`${what}: ifVersion must be a version string or null`);
      }
      checks.push({ key, version: options.ifVersion });
    }
    return this.#commit(
      checks,
      [{ type: "set", key, value: text, expiresAt }],
      what,
      options?.signal,
    );
  }

  async delete(key: Key, options?: DeleteOptions): Promise<boolean> {
    const what = "Cannot delete";
    this.#assertOpen(what);
    assertKey(key, what);
    key = [...key];
    const checks: AtomicCheck[] = [];
    if (options?.ifVersion !== undefined) {
      if (typeof options.ifVersion !== "string") {
        throw new TypeError(`${what}: ifVersion must be a version string`);
      }
      checks.push({ key, version: options.ifVersion });
    }
    return (await this.#commit(checks, [{ type: "delete", key }], what, options?.signal)).ok;
  }

  list<T = JsonValue>(options: ListOptions = {}): ListIterator<T> {
    const what = "Cannot list";
    this.#assertOpen(what);
    const range = this.#rangeFor(options, what);
    if (options.signal?.aborted) throw givenUpError(what, this.#where, options.signal);
    const limit = options.limit ?? Infinity;
    if (limit !== Infinity && (!Number.isInteger(limit) || limit < 0)) {
      throw new RangeError(`${what}: limit must be a non-negative integer (got ${limit})`);
    }
    const nativeExpiry = this.capabilities.expiry;
    if (nativeExpiry && limit !== Infinity) range.limit = limit;
    // deno-lint-ignore no-this-alias
    const self = this;
    // The cursor is encoded only when asked for: encoding per entry is costly.
    let lastKey: Key | undefined;
    /** A listing step that can also hand out a page of entries at once. */
    type PagedSource = AsyncIterator<Entry<T>> & { page(max: number): Promise<Entry<T>[]> };
    /**
     * A synchronous driver (memory, sqlite) pages its rows itself: hand each
     * entry out as an already resolved promise, without an async generator's
     * promise jobs per entry, and a page of them as one resolved array.
     */
    function fromSync(source: Iterator<RawEntry>): PagedSource {
      let n = 0;
      let finished = limit === 0;
      const done = (): IteratorResult<Entry<T>> => ({ done: true, value: undefined });
      const finish = () => {
        if (!finished) {
          finished = true;
          source.return?.();
        }
      };
      /** The next live entry, or `undefined` at the end (synchronous). */
      const pull = (): Entry<T> | undefined => {
        while (!finished) {
          self.#assertOpen(what);
          const r = source.next();
          if (r.done) {
            finished = true;
            break;
          }
          const raw = r.value;
          if (raw.expiresAt !== null && raw.expiresAt <= self.#clock.now()) continue;
          lastKey = raw.key;
          if (++n >= limit) finish();
          return toEntry<T>(raw);
        }
        return undefined;
      };
      return {
        next() {
          try {
            const entry = pull();
            return Promise.resolve(entry === undefined ? done() : { done: false, value: entry });
          } catch (err) {
            finish();
            return Promise.reject(err);
          }
        },
        page(max: number) {
          const out: Entry<T>[] = [];
          try {
            while (out.length < max) {
              const entry = pull();
              if (entry === undefined) break;
              out.push(entry);
            }
            return Promise.resolve(out);
          } catch (err) {
            finish();
            return Promise.reject(err);
          }
        },
        return() {
          finish();
          return Promise.resolve(done());
        },
        throw(err?: unknown) {
          finish();
          return Promise.reject(err);
        },
      };
    }
    /**
     * An async driver (postgres, redis): each entry is the driver's step
     * mapped in a `then`, without a second async generator's promise jobs per
     * entry. Steps run one at a time, in the order they were asked for.
     */
    function fromAsync(source: AsyncIterator<RawEntry>): PagedSource {
      let n = 0;
      let finished = limit === 0;
      /** The source's `return()` once the listing stopped early, awaited by the next step. */
      let closing: Promise<unknown> | undefined;
      let last: Promise<unknown> = Promise.resolve();
      let inFlight = 0;
      const done = (): IteratorResult<Entry<T>> => ({ done: true, value: undefined });
      const close = () => {
        if (!finished) {
          finished = true;
          closing = Promise.resolve(source.return?.());
          closing.catch(() => {}); // surfaced by the next step, if any
        }
      };
      const step = (
        r: IteratorResult<RawEntry>,
      ): IteratorResult<Entry<T>> | Promise<IteratorResult<Entry<T>>> => {
        if (r.done) {
          finished = true;
          return done();
        }
        try {
          self.#assertOpen(what);
        } catch (err) {
          close();
          return closing!.then(() => Promise.reject(err));
        }
        const raw = r.value;
        if (raw.expiresAt !== null && raw.expiresAt <= self.#clock.now()) {
          return source.next().then(step, fail);
        }
        lastKey = raw.key;
        if (++n >= limit) close();
        return { done: false, value: toEntry<T>(raw) };
      };
      const fail = (err: unknown): never => {
        finished = true;
        throw err;
      };
      const pull = (): Promise<IteratorResult<Entry<T>>> => {
        if (finished) return closing ? closing.then(done) : Promise.resolve(done());
        try {
          // Entries already read first (see fromBuffer), then the driver's next step.
          return fromBuffer() ?? source.next().then(step, fail);
        } catch (err) {
          finished = true;
          return Promise.reject(err);
        }
      };
      /** Runs `fn` now when nothing is in flight, else after the step before it. */
      const queued = <R>(fn: () => Promise<R>): Promise<R> => {
        const p = inFlight === 0 ? fn() : last.then(fn);
        inFlight++;
        const settled = () => void inFlight--;
        last = p.then(settled, settled);
        return p;
      };
      const paged = typeof (source as Partial<PagedListing>).nextPage === "function"
        ? source as PagedListing
        : undefined;
      /**
       * Up to `max` entries in one queued step: pages of the driver's own
       * (`PagedListing`) when it has them, else its listing step by step.
       */
      const page = async (max: number): Promise<Entry<T>[]> => {
        const out: Entry<T>[] = [];
        if (paged === undefined) {
          while (out.length < max) {
            const r = await pull();
            if (r.done) break;
            out.push(r.value);
          }
          return out;
        }
        while (out.length < max && !finished) {
          let batch: RawEntry[];
          try {
            batch = await paged.nextPage(max - out.length);
          } catch (err) {
            finished = true;
            throw err;
          }
          if (batch.length === 0) {
            finished = true;
            break;
          }
          try {
            self.#assertOpen(what);
          } catch (err) {
            close();
            await closing;
            throw err;
          }
          const now = self.#clock.now();
          for (const raw of batch) {
            if (raw.expiresAt !== null && raw.expiresAt <= now) continue;
            lastKey = raw.key;
            out.push(toEntry<T>(raw));
            if (++n >= limit) {
              close();
              break;
            }
          }
        }
        return out;
      };
      const buffered = typeof (source as Partial<PagedListing>).takeBuffered === "function"
        ? source as PagedListing
        : undefined;
      /** Entries the driver had already read (`takeBuffered`), handed out from here. */
      let buffer: RawEntry[] = [];
      let at = 0;
      /**
       * The next live entry of the buffer (refilled from the driver's page
       * without I/O) as one resolved promise, checked as `step` checks it;
       * `undefined` when the driver must read (then `pull` does).
       */
      const fromBuffer = (): Promise<IteratorResult<Entry<T>>> | undefined => {
        for (;;) {
          if (at >= buffer.length) {
            if (buffered === undefined) return undefined;
            buffer = buffered.takeBuffered!();
            at = 0;
            if (buffer.length === 0) return undefined;
          }
          try {
            self.#assertOpen(what);
          } catch (err) {
            close();
            return closing!.then(() => Promise.reject(err));
          }
          const raw = buffer[at++];
          if (raw.expiresAt !== null && raw.expiresAt <= self.#clock.now()) continue;
          lastKey = raw.key;
          if (++n >= limit) close();
          return Promise.resolve({ done: false, value: toEntry<T>(raw) });
        }
      };
      /** `page`, after the entries left in the buffer. */
      const pageAfterBuffer = async (max: number): Promise<Entry<T>[]> => {
        const out: Entry<T>[] = [];
        while (out.length < max && !finished && at < buffer.length) {
          const r = await fromBuffer()!;
          if (r.done) break;
          out.push(r.value);
        }
        if (out.length >= max || finished) return out;
        return out.concat(await page(max - out.length));
      };
      return {
        // Nothing in flight: the buffer's next entry at once (steps stay in order).
        next: () => {
          if (inFlight === 0 && !finished) {
            try {
              const r = fromBuffer();
              if (r !== undefined) return r;
            } catch (err) {
              finished = true;
              return Promise.reject(err);
            }
          }
          return queued(pull);
        },
        page: (max: number) => queued(() => pageAfterBuffer(max)),
        return: () =>
          queued(() => {
            close();
            return closing ? closing.then(done) : Promise.resolve(done());
          }),
        throw: (err?: unknown) =>
          queued(() => {
            close();
            return (closing ?? Promise.resolve()).then(() => Promise.reject(err));
          }),
      };
    }
    // The driver is asked at the first step, as of then (not when list() is called).
    let inner: PagedSource | undefined;
    const started = (): PagedSource => {
      if (inner === undefined) {
        if (limit === 0) inner = fromSync([][Symbol.iterator]());
        else {
          const listed = self.#listOutsideInternal(range, self.#clock.now(), options.signal);
          inner = Symbol.iterator in listed
            ? fromSync((listed as Iterable<RawEntry>)[Symbol.iterator]())
            : fromAsync((listed as AsyncIterable<RawEntry>)[Symbol.asyncIterator]());
        }
      }
      return inner;
    };
    const source: AsyncIterator<Entry<T>> = {
      next() {
        try {
          return started().next();
        } catch (err) {
          return Promise.reject(err);
        }
      },
      return(value?: unknown) {
        return inner?.return?.(value) ??
          Promise.resolve({ done: true as const, value: undefined });
      },
      throw(err?: unknown) {
        return inner?.throw?.(err) ?? Promise.reject(err);
      },
    };
    const closedError = () => new StoreClosedError(`${what}: store "${self.name}" is closed`);
    return listIterator(source, {
      cursor: () => lastKey === undefined ? "" : encodeCursor(lastKey),
      next: (step) => self.#closed ? Promise.reject(closedError()) : step(),
      page(max) {
        if (self.#closed) return Promise.reject(closedError());
        try {
          return started().page(max);
        } catch (err) {
          return Promise.reject(err);
        }
      },
      pageSize: options.batchSize,
    });
  }

  /**
   * The driver's listing of `range` without the internal space: the range as
   * is when it cannot reach it, else the parts below and above it, chained.
   * Lazy: each part is asked of the driver when the listing reaches it.
   */
  #listOutsideInternal(
    range: KeyRange,
    now: number,
    signal?: AbortSignal,
  ): AsyncIterable<RawEntry> | Iterable<RawEntry> {
    const driver = this.#driver;
    // The signal only when given: a driver's list() may count its arguments.
    const part = (r: KeyRange) =>
      signal === undefined ? driver.list(r, now) : driver.list(r, now, signal);
    if (!reachesInternal(range)) return part(range);
    const parts = outsideInternal(range);
    if (range.reverse) parts.reverse();
    if (parts.length === 0) return [];
    if (parts.length === 1) return part(parts[0]);
    const first = part(parts[0]);
    if (Symbol.iterator in first) {
      return (function* () {
        yield* first as Iterable<RawEntry>;
        const second = part(parts[1]);
        if (Symbol.iterator in second) yield* second as Iterable<RawEntry>;
        else throw new TypeError("a driver's list() must be always synchronous or always async");
      })();
    }
    return chainListings([first, {
      [Symbol.asyncIterator]: () => {
        const second = part(parts[1]);
        return Symbol.asyncIterator in second
          ? second[Symbol.asyncIterator]()
          : (async function* () {
            yield* second as Iterable<RawEntry>;
          })();
      },
    }]);
  }

  /** True when the internal space holds at least one entry (expired ones too). */
  async #hasInternal(signal?: AbortSignal): Promise<boolean> {
    const range = { prefix: [INTERNAL], limit: 1, batchSize: 1 };
    const listing = signal === undefined
      ? this.#driver.list(range, 0)
      : this.#driver.list(range, 0, signal);
    for await (const _ of listing) {
      return true;
    }
    return false;
  }

  /** The internal access for core code (see `internalAccess`). */
  [INTERNAL_ACCESS](): InternalAccess {
    return { driver: this.#driver, clock: this.#clock, search: this.#search };
  }

  #rangeFor(options: ListOptions, what: string): KeyRange {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`${what}: options must be an object`);
    }
    const range: KeyRange = { reverse: options.reverse === true };
    if (options.prefix !== undefined) {
      assertKey(options.prefix, what, true);
      range.prefix = options.prefix;
    }
    if (options.start !== undefined) {
      assertKey(options.start, what);
      range.start = options.start;
    }
    if (options.end !== undefined) {
      assertKey(options.end, what);
      range.end = options.end;
    }
    if (options.batchSize !== undefined) {
      if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
        throw new RangeError(`${what}: batchSize must be a positive integer`);
      }
      range.batchSize = options.batchSize;
    }
    if (options.cursor !== undefined && options.cursor !== "") {
      const after = decodeCursor(options.cursor);
      if (range.reverse) {
        if (range.end === undefined || compareKeys(after, range.end) < 0) range.end = after;
      } else if (range.start === undefined || compareKeys(after, range.start) >= 0) {
        range.start = after;
        range.startExclusive = true;
      }
    }
    return range;
  }

  /** Validate a prefix and optional bounds into a driver range. */
  #clearRange(prefix: Key, bounds: KeyBounds | undefined, what: string): ClearRange {
    assertKey(prefix, what, true);
    const range: ClearRange = { prefix: [...prefix] };
    if (bounds === undefined) return range;
    if (typeof bounds !== "object" || bounds === null) {
      throw new TypeError(`${what}: bounds must be an object with optional start and end keys`);
    }
    if (bounds.start !== undefined) {
      assertKey(bounds.start, `${what}: start`);
      range.start = [...bounds.start];
    }
    if (bounds.end !== undefined) {
      assertKey(bounds.end, `${what}: end`);
      range.end = [...bounds.end];
    }
    return range;
  }

  /** Every entry in the range, expired ones too (listed as of the earliest time). */
  #listRange(range: ClearRange, batchSize?: number): AsyncIterable<RawEntry> | Iterable<RawEntry> {
    return this.#listOutsideInternal(
      { prefix: range.prefix, start: range.start, end: range.end, batchSize },
      Number.MIN_SAFE_INTEGER,
    );
  }

  async count(prefix: Key = [], bounds?: KeyBounds): Promise<number> {
    const what = "Cannot count";
    this.#assertOpen(what);
    const range = this.#clearRange(prefix, bounds, what);
    const now = this.#clock.now();
    if (this.capabilities.count && this.#driver.count) {
      let total = 0;
      for (const part of outsideInternal(range)) total += await this.#driver.count(part, now);
      return total;
    }
    let n = 0;
    const { prefix: p, start, end } = range;
    for await (const raw of this.#listOutsideInternal({ prefix: p, start, end }, now)) {
      checkRaw(raw);
      if (raw.expiresAt === null || raw.expiresAt > now) n++;
    }
    return n;
  }

  async query<T = JsonValue>(query: Query = {}): Promise<Entry<T>[]> {
    const what = "Cannot query";
    this.#assertOpen(what);
    const q = normalizeQuery(query);
    assertKey(q.prefix, what, true);
    const signal = query.signal;
    if (signal?.aborted) throw givenUpError(what, this.#where, signal);
    const now = this.#clock.now();
    // A native query over every key would see the internal space: only when it is empty.
    // (A prefix reaches it only when empty: assertKey refused an internal one.)
    if (
      this.capabilities.query && this.#driver.query &&
      !(q.prefix.length === 0 && await this.#hasInternal(signal))
    ) {
      // A driver may answer at once (an array): no await, no turn of the microtask queue.
      // Anything else (a promise, another library's thenable) is awaited.
      let native = signal === undefined
        ? this.#driver.query(q, now)
        : this.#driver.query(q, now, signal);
      if (native !== undefined && !Array.isArray(native)) native = await native;
      if (native !== undefined) {
        const out: Entry<T>[] = [];
        for (const raw of native) {
          checkRaw(raw);
          if (raw.expiresAt === null || raw.expiresAt > now) out.push(checkedEntry<T>(raw));
        }
        return out;
      }
    }
    if (this.#coreIxReady) {
      const indexed = await this.#coreIx.query(q, now);
      if (indexed !== undefined) return indexed.map((r) => toEntry<T>(r));
    }
    const entries: { key: Key; value: unknown; raw: RawEntry }[] = [];
    for await (const raw of this.#listOutsideInternal({ prefix: q.prefix }, now, signal)) {
      checkRaw(raw);
      if (raw.expiresAt !== null && raw.expiresAt <= now) continue;
      entries.push({ key: raw.key, value: parseJson(raw.value), raw });
    }
    return applyQuery(entries, q).map(({ raw }) => toEntry<T>(raw));
  }

  async explain(query: Query = {}): Promise<QueryPlan> {
    const what = "Cannot explain";
    this.#assertOpen(what);
    const q = normalizeQuery(query);
    assertKey(q.prefix, what, true);
    if (this.capabilities.query && this.#driver.explain) {
      const plan = await this.#driver.explain(q, this.#clock.now());
      if (plan !== undefined) return plan;
    }
    if (this.#coreIxReady) {
      const plan = this.#coreIx.explain(q);
      if (plan !== undefined) return plan;
    }
    const choice = chooseIndex(this.#indexSpecs, q);
    const detail = [`scan every live entry under ${JSON.stringify(q.prefix)} and filter in memory`];
    if (choice !== undefined) {
      detail.push(
        `index ${choice.index.name} (${choice.index.path.join(".")}) fits, but this backend ` +
          `does not build indexes natively`,
      );
    }
    return { index: null, scan: true, by: "core", detail };
  }

  async search<T = JsonValue>(text: string, options?: SearchOptions): Promise<SearchHit<T>[]> {
    const what = "Cannot search";
    this.#assertOpen(what);
    const request = normalizeSearchRequest(text, options, this.#search, what);
    const signal = options?.signal;
    if (signal?.aborted) throw givenUpError(what, this.#where, signal);
    const now = this.#clock.now();
    if (
      this.#nativeSearch && this.#driver.search &&
      !(reachesInternal({ prefix: request.prefix }) && await this.#hasInternal(signal))
    ) {
      const native = await (signal === undefined
        ? this.#driver.search(request, now)
        : this.#driver.search(request, now, signal));
      if (native !== undefined) {
        return native.filter((r) =>
          this.#live(r, now) !== null
        ).map((r) => ({
          ...toEntry<T>(r),
          score: r.score,
        }));
      }
    }
    const hits: SearchHit<T>[] = [];
    for await (const raw of this.#listOutsideInternal({ prefix: request.prefix }, now, signal)) {
      checkRaw(raw);
      if (raw.expiresAt !== null && raw.expiresAt <= now) continue;
      const value = parseJson(raw.value);
      const score = searchScore(value, request.terms, request.fields);
      if (score === undefined) continue;
      hits.push({
        key: [...raw.key],
        value: value as T,
        version: raw.version,
        expiresAt: raw.expiresAt,
        score,
      });
    }
    return sortHits(hits).slice(0, request.limit);
  }

  atomic(): AtomicOperation {
    return this.#operation().op;
  }

  /** An atomic operation and what it collects (`commit`: the one to use, or the default). */
  #operation(
    commit?: () => Promise<CommitResult>,
  ): { op: AtomicOperation; checks: AtomicCheck[]; mutations: Mutation[] } {
    const what = "Cannot commit atomic operation";
    this.#assertOpen(what);
    const checks: AtomicCheck[] = [];
    const mutations: Mutation[] = [];
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
        assertKeySize(key, `${what}: set`);
        const text = serializeValue(value, `${what}: set`);
        assertValueSize(text, `${what}: set`);
        let expiresAt: number | null = null;
        if (options?.expireIn !== undefined) {
          checkExpireIn(options.expireIn, what);
          expiresAt = this.#clock.now() + options.expireIn;
        }
        mutations.push({ type: "set", key: [...key], value: text, expiresAt });
        return op;
      },
      delete: (key) => {
        assertKey(key, `${what}: delete`);
        mutations.push({ type: "delete", key: [...key] });
        return op;
      },
      clear: (prefix, bounds) => {
        const range = this.#clearRange(prefix, bounds, `${what}: clear`);
        for (const part of outsideInternal(range)) mutations.push({ type: "clear", range: part });
        return op;
      },
      commit: () => {
        if (commit !== undefined) return commit();
        this.#assertOpen(what);
        if (committed) {
          return Promise.reject(new TypeError(`${what}: this operation was already committed`));
        }
        committed = true;
        const clears = mutations.filter((m) => m.type === "clear");
        if (clears.length === 0) return this.#commit(checks, mutations);
        return this.#coreIx.loaded().then(() => {
          if (
            this.capabilities.atomicClear && !clears.some((m) => this.#coreIx.touches(m.range))
          ) {
            return this.#commit(checks, mutations);
          }
          return this.#expandClears(mutations).then((expanded) => this.#commit(checks, expanded));
        });
      },
    };
    return { op, checks, mutations };
  }

  /** `Store.claimFirst`, over the driver's `claim` (set up in the constructor when it has one). */
  async #claimFirst<T>(
    claim: NonNullable<StoreDriver["claim"]>,
    prefix: Key,
    take: (
      entry: Entry<T>,
      op: AtomicOperation,
      get: <U = JsonValue>(key: Key) => Promise<Entry<U> | null>,
    ) => Promise<boolean>,
    options: { limit?: number; companion?: ClaimCompanion; max?: number } = {},
  ): Promise<{ key: Key; keys: Key[]; result: CommitResult } | null> {
    const what = "Cannot claim";
    this.#assertOpen(what);
    assertKey(prefix, `${what}: prefix`, true);
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`${what}: limit must be a whole number >= 1 (got ${limit})`);
    }
    if (typeof take !== "function") throw new TypeError(`${what}: take must be a function`);
    const max = options.max ?? 1;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`${what}: max must be a whole number >= 1 (got ${max})`);
    }
    const companion = options.companion;
    if (companion !== undefined) {
      assertKey(companion.prefix, `${what}: companion.prefix`, true);
      if (typeof companion.field !== "string") {
        throw new TypeError(`${what}: companion.field must be a string`);
      }
    }
    let version = "";
    const now = this.#clock.now();
    const by = this.#feed === undefined ? undefined : currentActor();
    const claimed = await claim.call(this.#driver, {
      ...(by === undefined
        ? {}
        : this.#driver.feedTable !== undefined
        ? { feedTable: { by: JSON.stringify(by), topic: FEED_TOPIC } }
        : {
          feed: (commit: CommitRequest) =>
            feedCommit(commit.mutations, commit.now, commit.version, by, FEED_TOPIC),
        }),
      prefix: [...prefix],
      limit,
      ...(max === 1 ? {} : { max }),
      now,
      ...(companion === undefined
        ? {}
        : { companion: { prefix: [...companion.prefix], field: companion.field } }),
      decide: async (raw, read) => {
        const get = async <U>(key: Key): Promise<Entry<U> | null> => {
          assertKey(key, `${what}: get`);
          const [found] = await read([[...key]]);
          const live = this.#live(found ?? null, now);
          return live === null ? null : toEntry<U>(live);
        };
        const { op, checks, mutations } = this.#operation(() =>
          Promise.reject(
            new TypeError(`${what}: the claim commits the operation; take() must not`),
          )
        );
        if (!(await take(toEntry<T>(raw), op, get))) return null;
        if (mutations.some((m) => m.type === "clear")) {
          throw new TypeError(`${what}: a claim's operation cannot clear a range`);
        }
        const at = this.#clock.now();
        version = newVersion(this.#clock === systemClock ? at : Date.now());
        return { checks, mutations, version, now: at };
      },
    });
    if (claimed === null) return null;
    if (by !== undefined && claimed.result.ok) { for (const wake of this.#wakers) wake(); }
    return {
      key: claimed.key,
      keys: claimed.keys ?? [claimed.key],
      result: commitResult(claimed.result, version, this.name),
    };
  }

  /**
   * For a driver without `atomicClear`: each `clear` becomes a `delete` of
   * every key in its range now, and an earlier `set` in that range becomes a
   * `delete` (the clear would have removed what it wrote).
   */
  async #expandClears(mutations: Mutation[]): Promise<Mutation[]> {
    const out: Mutation[] = [];
    for (const m of mutations) {
      if (m.type !== "clear") {
        out.push(m);
        continue;
      }
      clearEarlierSets(out, m.range);
      for await (const raw of this.#listRange(m.range, 500)) {
        out.push({ type: "delete", key: raw.key });
      }
    }
    return out;
  }

  async clear(prefix: Key, bounds?: KeyBounds): Promise<number> {
    const what = "Cannot clear";
    this.#assertOpen(what);
    const range = this.#clearRange(prefix, bounds, what);
    await this.#coreIx.loaded();
    const now = this.#clock.now();
    if (
      this.capabilities.clear && this.#driver.clear && this.#feed === undefined &&
      !this.#coreIx.touches(range)
    ) {
      let total = 0;
      for (const part of outsideInternal(range)) total += await this.#driver.clear(part, now);
      return total;
    }
    let removed = 0;
    for (;;) {
      const batch: RawEntry[] = [];
      for await (const raw of this.#listRange(range, 500)) {
        batch.push(raw);
        if (batch.length >= 500) break;
      }
      if (batch.length === 0) return removed;
      removed += batch.filter((r) => r.expiresAt === null || r.expiresAt > now).length;
      const deletes: Mutation[] = batch.map((r) => ({ type: "delete", key: r.key }));
      if (this.#feed !== undefined || this.#coreIx.active) await this.#commit([], deletes);
      else {await this.#driver.commit({
          checks: [],
          mutations: deletes,
          version: newVersion(),
          now,
        });}
    }
  }

  async purgeExpired(): Promise<number> {
    const what = "Cannot purge expired entries";
    this.#assertOpen(what);
    const now = this.#clock.now();
    if (this.#driver.purgeExpired) return await this.#driver.purgeExpired(now);
    let removed = 0;
    let batch: RawEntry[] = [];
    // Each delete is checked against the version seen, evaluated just before
    // that entry expired (an expired entry counts as absent at `now`), so a key
    // rewritten meanwhile is left alone. One commit per batch; on a conflict,
    // one commit per entry.
    const deleteChecked = (entries: RawEntry[]) =>
      this.#driver.commit({
        checks: entries.map((r) => ({ key: r.key, version: r.version })),
        mutations: entries.map((r) => ({ type: "delete", key: r.key })),
        version: newVersion(),
        now: Math.min(...entries.map((r) => r.expiresAt!)) - 1,
      });
    const flush = async () => {
      if (batch.length === 0) return;
      if ((await deleteChecked(batch)).ok) removed += batch.length;
      else {
        for (const raw of batch) if ((await deleteChecked([raw])).ok) removed++;
      }
      batch = [];
    };
    // List as of the earliest time, so a driver that hides expired entries
    // itself still returns them here.
    for await (
      const raw of this.#listOutsideInternal({ batchSize: 500 }, Number.MIN_SAFE_INTEGER)
    ) {
      if (raw.expiresAt !== null && raw.expiresAt <= now) batch.push(raw);
      if (batch.length >= 500) await flush();
    }
    await flush();
    await this.#coreIx.loaded();
    if (this.#coreIx.active) {
      // The core's index entries expire with their entries: purge those too (not counted).
      const counted = removed;
      for await (const raw of this.#driver.list({ prefix: [INTERNAL, "ix"], batchSize: 500 }, 0)) {
        if (raw.expiresAt !== null && raw.expiresAt <= now) batch.push(raw);
        if (batch.length >= 500) await flush();
      }
      await flush();
      removed = counted;
    }
    return removed;
  }

  async compact(): Promise<CompactResult> {
    this.#assertOpen("Cannot compact");
    if (!this.#driver.compact) return { supported: false, bytesBefore: 0, bytesAfter: 0 };
    return { supported: true, ...(await this.#driver.compact()) };
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      this.#closedSignal.abort();
      // The writes on their way land (or fail) before the driver closes: none is acknowledged,
      // then dropped by a driver that stops working through its queue when closed.
      const writes = this.#writing === 0
        ? Promise.resolve()
        : (this.#written = Promise.withResolvers()).promise;
      this.#closing = writes.then(() => Promise.allSettled([...this.#signals]))
        .then(() => this.#driver.close());
    }
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The changes of exactly `key` kept in `store`'s feed, oldest first (newest
 * first with `reverse`), through the feed's index by key: `state history`.
 * Under an encrypted store, the values are opened, as `changes()` and
 * `getAt()` give them (a value that cannot be opened throws its
 * `DecryptionError`); the store under the wrapper gives them sealed.
 * Throws a `FeedDisabledError` when the store keeps no feed.
 */
export async function* keyHistory(
  store: Store,
  key: Key,
  options: { reverse?: boolean; limit?: number } = {},
): AsyncGenerator<Change> {
  assertKey(key, "Cannot read a key's history");
  const info = await store.feedInfo();
  if (!info.enabled) throw new FeedDisabledError(store.name, "Cannot read a key's history");
  const access = internalAccess(store);
  if (access === undefined) {
    // Not a store the core wrapped: read the whole feed.
    const all: Change[] = [];
    for await (const change of store.changes()) {
      if (JSON.stringify(change.key) === JSON.stringify(key)) all.push(change);
    }
    if (options.reverse) all.reverse();
    yield* all.slice(0, options.limit ?? all.length);
    return;
  }
  // The feed's rows are read beneath any wrapper: an encrypted store's are sealed.
  const encryption = encryptionOf(store);
  const limit = options.limit ?? Infinity;
  let n = 0;
  if (n >= limit) return;
  for await (const seq of keyHistorySeqs(access.driver, key, { reverse: options.reverse })) {
    const change = await readEntry(access.driver, seq);
    if (change === null) continue; // trimmed meanwhile
    // Opened as changes() opens it: a value from before encryption comes as it is, marked.
    yield encryption === undefined ? change : await encryption.openChange(change);
    if (++n >= limit) return;
  }
}

/**
 * A sequence number to read `store`'s feed after (`changes({ since })`) so
 * that every change committed at or after `time` comes: a binary search over
 * the kept entries by commit time (a few point reads, however long the feed),
 * assuming commit times follow sequence numbers (give `time` some slack for
 * the clocks of several processes). `firstSeq - 1` when the feed's oldest
 * kept entry is already that late (or for a store the core did not wrap).
 * Throws a `FeedDisabledError` when the store keeps no feed.
 */
export async function feedSeqBefore(store: Store, time: number): Promise<number> {
  const info = await store.feedInfo();
  if (!info.enabled) throw new FeedDisabledError(store.name, "Cannot search the change feed");
  const access = internalAccess(store);
  if (access === undefined) return info.firstSeq - 1;
  // Find the first kept seq whose entry is at or after `time`.
  let low = info.firstSeq;
  let high = info.lastSeq + 1;
  while (low < high) {
    const mid = Math.floor((low + high) / 2);
    const change = await readEntry(access.driver, mid);
    // A trimmed entry (null) is older than any kept one.
    if (change === null || change.at < time) low = mid + 1;
    else high = mid;
  }
  return low - 1;
}

/**
 * The commit time of change `seq` of `store`'s feed, or `null` when it is not
 * kept (or `seq` is 0): with the sequence number, what tells one feed from
 * another (a feed that was reset numbers its changes from 1 again).
 */
export async function changeTime(store: Store, seq: number): Promise<number | null> {
  if (seq < 1) return null;
  for await (const change of store.changes({ since: seq - 1, limit: 1 })) {
    return change.seq === seq ? change.at : null;
  }
  return null;
}
