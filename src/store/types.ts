/**
 * The Store contract: one interface every storage backend implements.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
export type { Clock };

/** One element of a key. Keys are tuples of strings. */
export type KeyPart = string;

/**
 * A key: a non-empty array of strings, ordered element-wise in Unicode
 * code-point order (a shorter key sorts before any key it is a prefix of).
 */
export type Key = readonly KeyPart[];

/** A JSON-compatible value: what a Store can hold. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** One stored entry, as returned by reads. */
export interface Entry<T = JsonValue> {
  /** The entry's key. */
  key: Key;
  /** A copy of the stored value: mutating it never changes the store. */
  value: T;
  /** Changes on every write to this key; pass it to `ifVersion` for compare-and-set. */
  version: string;
  /** When the entry expires (milliseconds since the epoch), or `null` if it never does. */
  expiresAt: number | null;
}

/** Options for {@linkcode Store.set}. */
export interface SetOptions {
  /** Expire the entry this many milliseconds from now. */
  expireIn?: number;
  /**
   * Compare-and-set: write only if the entry's current version is this one.
   * `null` means "only if the key is absent (or expired)".
   */
  ifVersion?: string | null;
}

/** Options for {@linkcode Store.delete}. */
export interface DeleteOptions {
  /** Delete only if the entry's current version is this one. */
  ifVersion?: string;
}

/** The result of a write: either committed with a new version, or a conflict that wrote nothing. */
export type CommitResult =
  | { ok: true; version: string }
  | { ok: false; version: null; conflicts: Key[] };

/** Which entries {@linkcode Store.list} returns, and how. */
export interface ListOptions {
  /** Only keys strictly under this prefix (the prefix key itself is not included). */
  prefix?: Key;
  /** Only keys `>= start`. */
  start?: Key;
  /** Only keys `< end`. */
  end?: Key;
  /** Return at most this many entries. */
  limit?: number;
  /** Return entries in descending key order. */
  reverse?: boolean;
  /** Resume after the entry a previous listing's `cursor` points at. */
  cursor?: string;
  /** Entries fetched from the backend per round trip (a hint). */
  batchSize?: number;
}

/**
 * An async iterator over entries whose `cursor` resumes the listing where it
 * stopped, and that also hands entries out a page at a time.
 *
 * @example Take the first 100 entries under a prefix in one call
 * ```ts
 * import { openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["orders", "1"], { total: 5 });
 * await store.set(["orders", "2"], { total: 7 });
 * const listing = store.list({ prefix: ["orders"], limit: 100 });
 * const page = await listing.nextPage();
 * console.log(page.map((e) => e.key)); // [["orders", "1"], ["orders", "2"]]
 * console.log((await listing.nextPage()).length); // 0: the listing is complete
 * ```
 */
export interface ListIterator<T = JsonValue> extends AsyncIterableIterator<Entry<T>> {
  /** Pass as `cursor` to continue after the last entry handed out ("" before the first). */
  readonly cursor: string;
  /**
   * The next entries of the listing, in its order: exactly `max` of them
   * unless the listing ends first (fewer, then `[]` once it is complete), and
   * never more than its `limit` leaves. One promise for the whole page, not
   * one per entry. `max` defaults to the listing's `batchSize`, or 256.
   * `next()` and `nextPage()` may be mixed: each continues where the other
   * stopped, and `cursor` follows the last entry either handed out.
   * Throws `RangeError` (as a rejection) when `max` is not a positive integer.
   */
  nextPage(max?: number): Promise<Entry<T>[]>;
}

/** A comparison operator of a {@linkcode WhereClause}. */
export type WhereOp = "eq" | "ne" | "lt" | "lte" | "gt" | "gte" | "in" | "contains" | "exists";

/**
 * A filter on a JSON path of the value. `path` is dot-separated (`"a.b.0"`)
 * or an array of segments; `""` or `[]` is the value itself.
 *
 * Semantics (identical on every backend):
 * - `eq`/`ne`: deep JSON equality; a missing field equals nothing (so `ne` matches it).
 * - `lt lte gt gte`: only between two numbers or two strings (code-point order); otherwise false.
 * - `in`: `value` is an array; matches if the field deep-equals one of its items.
 * - `contains`: the field is an array with an item deep-equal to `value`, or a string containing `value`.
 * - `exists`: `value` (default `true`) says whether the field must be present.
 */
export interface WhereClause {
  /** Path into the value. */
  path: string | readonly string[];
  /** Operator. */
  op: WhereOp;
  /** Operand. */
  value?: JsonValue;
}

/** One sort key of a query. Ordering across types: missing < null < false < true < numbers < strings < arrays < objects. */
export interface OrderBy {
  /** Path into the value. */
  path: string | readonly string[];
  /** Default `"asc"`. */
  direction?: "asc" | "desc";
}

/** A query over the values under a prefix. Ties are always broken by key order. */
export interface Query {
  /** Only keys under this prefix (default: every key). */
  prefix?: Key;
  /** All clauses must match. */
  where?: readonly WhereClause[];
  /** Sort keys, applied in order; default is key order. */
  orderBy?: OrderBy | readonly OrderBy[];
  /** Return at most this many entries. */
  limit?: number;
  /** Skip this many matching entries first. */
  offset?: number;
}

/** A version check in an atomic operation: `null` means "must be absent". */
export interface AtomicCheck {
  /** The key to check. */
  key: Key;
  /** The version it must have, or `null` if it must not exist. */
  version: string | null;
}

/**
 * A key range within a prefix, for {@linkcode Store.count},
 * {@linkcode Store.clear} and {@linkcode AtomicOperation.clear}: the keys
 * strictly under the prefix that are `>= start` and `< end` (as for
 * {@linkcode Store.list}). Run ids and other time-ordered keys make a time
 * range a key range.
 */
export interface KeyBounds {
  /** Only keys `>= start`. */
  start?: Key;
  /** Only keys `< end`. */
  end?: Key;
}

/** A builder of all-or-nothing writes, returned by {@linkcode Store.atomic}. */
export interface AtomicOperation {
  /** Require `key` to be at `version` (or absent, for `null`) at commit time. */
  check(key: Key, version: string | null): AtomicOperation;
  /** Write `value` at `key`. */
  set(key: Key, value: unknown, options?: { expireIn?: number }): AtomicOperation;
  /** Delete `key`. */
  delete(key: Key): AtomicOperation;
  /**
   * Delete every entry under `prefix` (within `bounds`, if given) as it is at
   * commit time, in order with the other writes: a `set` before it inside the
   * range is deleted too, a `set` after it stays. On a backend without
   * `capabilities.atomicClear`, the core lists the range just before the
   * commit, so an entry another writer adds to the range in between survives.
   */
  clear(prefix: Key, bounds?: KeyBounds): AtomicOperation;
  /** Commit everything, or nothing if a check fails. */
  commit(): Promise<CommitResult>;
}

/** What a backend does natively; the core supplies a correct fallback for the rest. */
export interface Capabilities {
  /** Survives the process (a file or a server). */
  persistent: boolean;
  /** Filters expired entries itself (otherwise the core filters them). */
  expiry: boolean;
  /** Runs queries itself (otherwise the core scans `list`). */
  query: boolean;
  /** Counts itself (otherwise the core scans `list`). */
  count: boolean;
  /** Clears a prefix itself (otherwise the core deletes in batches). */
  clear: boolean;
  /** Deletes key ranges inside a commit itself (otherwise the core lists the range first). */
  atomicClear: boolean;
  /** Several processes may open it at once without lost updates. */
  multiProcess: boolean;
  /** Builds declared indexes itself (otherwise indexed queries are answered by a scan). */
  indexes: boolean;
  /** Runs full-text search itself (otherwise the core scans). */
  search: boolean;
}

/**
 * An index declared on a store: the values under `prefix`, by the field at
 * `path` (dot-separated or an array of segments; segments that are array
 * indexes are not allowed). `query` uses it for an `eq` or range clause on
 * that path, or to sort by it.
 */
export interface IndexDeclaration {
  /** Only entries strictly under this key prefix. */
  prefix: Key;
  /** The field: `"status"`, `"customer.id"` or `["customer", "id"]`. */
  path: string | readonly string[];
}

/** A declared index as the store uses it (see {@linkcode Store.indexes}). */
export interface IndexInfo {
  /** A stable name derived from the prefix and path (`fs_ix_…`). */
  readonly name: string;
  /** The key prefix. */
  readonly prefix: Key;
  /** The path, split into segments. */
  readonly path: readonly string[];
  /** Whether the backend built it natively; `false`: queries that fit it scan. */
  readonly native: boolean;
}

/**
 * Which values {@linkcode Store.search} indexes: the entries under `prefix`
 * (default: every entry), by the strings at `fields` (default: every string
 * in the value).
 */
export interface SearchDeclaration {
  /** Only entries strictly under this prefix. */
  prefix?: Key;
  /** Paths of the fields to index; a field holding an array or object contributes every string in it. */
  fields?: readonly (string | readonly string[])[];
}

/** Options for {@linkcode Store.search}. */
export interface SearchOptions {
  /** Only entries under this prefix (default: the declared search prefix, or every entry). */
  prefix?: Key;
  /** Return at most this many hits (default 20). */
  limit?: number;
  /** Match only in these fields (default: every declared field). */
  fields?: readonly (string | readonly string[])[];
}

/** One hit of {@linkcode Store.search}: the entry and its relevance (higher is better). */
export interface SearchHit<T = JsonValue> extends Entry<T> {
  /** Relevance: comparable within one result list only. */
  score: number;
}

/** How {@linkcode Store.query} answers a query, as {@linkcode Store.explain} reports it. */
export interface QueryPlan {
  /** The declared index used, or `null`. */
  index: string | null;
  /** Whether every live entry under the prefix is read (no index narrows it). */
  scan: boolean;
  /** Who evaluates it: the backend (`"native"`) or the core's scan (`"core"`). */
  by: "native" | "core";
  /** Human-readable details (the backend's own plan where it has one). */
  detail: string[];
}

/**
 * Who made a change, as the change feed records it: the run, flow and node
 * when a flow wrote it, the job when a job did, and the process's declared
 * actor (`FLOWSTATE_ACTOR`, an `actor` option, or `<user>@<hostname>`).
 */
export interface ChangeActor {
  /** The run that wrote it. */
  runId?: string;
  /** The flow of that run. */
  flowId?: string;
  /** The node of that run. */
  nodeId?: string;
  /** The maintenance job that wrote it. */
  job?: string;
  /** The process's declared actor. */
  actor?: string;
}

/** One entry of a store's change feed: one changed key of one commit. */
export interface Change<T = JsonValue> {
  /** 1, 2, 3 … gap-free per store, in commit order. */
  seq: number;
  /** Commit time, ms since the epoch. */
  at: number;
  /** The key that changed. */
  key: Key;
  /** What happened to it. */
  op: "set" | "delete";
  /** The new value, for `"set"` (as stored). */
  value?: T;
  /** The new version; `null` for `"delete"`. */
  version: string | null;
  /** The version before (`null`: the key was absent or expired). */
  previousVersion: string | null;
  /** The new entry's expiry, for `"set"` (`null`: never). */
  expiresAt: number | null;
  /** Who made the change. */
  by: ChangeActor;
}

/** Which entries {@linkcode Store.changes} reads. */
export interface ChangesOptions {
  /** Only entries after this sequence number (exclusive; default 0: from the oldest kept). */
  since?: number;
  /** Only entries committed at or before this time (ms since the epoch, inclusive). */
  until?: number;
  /** Only changes of keys strictly under this prefix. */
  prefix?: Key;
  /** At most this many entries. */
  limit?: number;
  /** Newest first. */
  reverse?: boolean;
}

/** Options for {@linkcode Store.watch}. */
export interface WatchOptions {
  /** Start after this sequence number (exclusive; default: the feed's last one, live changes only). */
  since?: number;
  /** Stop watching when it aborts. */
  signal?: AbortSignal;
}

/**
 * How long a store keeps its change feed: a duration (`"30d"`), or an age
 * and/or a number of entries (whichever removes more). The `gc` job trims it.
 */
export type FeedKeep = string | number | { age?: string | number; count?: number };

/** What {@linkcode Store.feedInfo} reports. */
export interface FeedInfo {
  /** Whether the store keeps a change feed (`changes: { keep }` in its config). */
  enabled: boolean;
  /** The oldest sequence number kept (`lastSeq + 1` when none is). */
  firstSeq: number;
  /** The newest sequence number (0 before the first change). */
  lastSeq: number;
  /** The retention, as configured (`null` without a feed). */
  keep: FeedKeep | null;
}

/** The interface every store exposes, whatever the backend. */
export interface Store extends AsyncDisposable {
  /** The store's name (from the config, or the plugin's name). */
  readonly name: string;
  /** The plugin that opened it. */
  readonly plugin: string;
  /** Where it lives (a file path, a URL without password, or `"memory"`). */
  readonly location: string;
  /** What the backend does natively. */
  readonly capabilities: Readonly<Capabilities>;
  /** Read one entry, or `null` if absent or expired. */
  get<T = JsonValue>(key: Key): Promise<Entry<T> | null>;
  /** Read several entries, in the order of `keys`. */
  getMany<T = JsonValue>(keys: readonly Key[]): Promise<(Entry<T> | null)[]>;
  /** Write one entry (optionally compare-and-set or expiring). */
  set(key: Key, value: unknown, options?: SetOptions): Promise<CommitResult>;
  /** Delete one entry; resolves `false` only when an `ifVersion` check failed. */
  delete(key: Key, options?: DeleteOptions): Promise<boolean>;
  /** Stream entries in key order. */
  list<T = JsonValue>(options?: ListOptions): ListIterator<T>;
  /** Count live entries under a prefix (every entry without one), optionally within `bounds`. */
  count(prefix?: Key, bounds?: KeyBounds): Promise<number>;
  /** Filter and sort values. */
  query<T = JsonValue>(query?: Query): Promise<Entry<T>[]>;
  /** Say how {@linkcode Store.query} would answer `query`: which index, and whether it scans. */
  explain(query?: Query): Promise<QueryPlan>;
  /**
   * Full-text search: the live entries whose indexed text contains every word
   * of `text` (words are runs of letters and digits, compared
   * case-insensitively), best first. Which entries match is the same on every
   * backend; the order of hits by `score` is the backend's.
   */
  search<T = JsonValue>(text: string, options?: SearchOptions): Promise<SearchHit<T>[]>;
  /** The indexes declared when the store was opened. */
  readonly indexes: readonly IndexInfo[];
  /** Start an all-or-nothing operation. */
  atomic(): AtomicOperation;
  /**
   * Delete every entry under a prefix (`[]` clears everything), optionally
   * only those within `bounds`; resolves how many live entries were deleted.
   */
  clear(prefix: Key, bounds?: KeyBounds): Promise<number>;
  /** Delete every expired entry (they are never returned anyway); resolves how many. */
  purgeExpired(): Promise<number>;
  /**
   * Return free space to the file system where the backend can (SQLite,
   * files). `supported: false` when it cannot (memory, most servers).
   */
  compact(): Promise<CompactResult>;
  /** Release the backend; later calls throw. */
  close(): Promise<void>;
  /**
   * Present when the backend carries wake-ups across processes (the postgres
   * plugin: `LISTEN/NOTIFY`): call `onSignal` whenever any process sharing the
   * store calls `signal(topic)`. Resolves a function that stops listening.
   * Queue workers use it to start enqueued runs at once instead of at their
   * next poll.
   */
  listen?(topic: string, onSignal: () => void): Promise<() => Promise<void>>;
  /** Present with `listen`: wake the listeners of `topic` in every process. */
  signal?(topic: string): Promise<void>;
  /**
   * Read the change feed, oldest first (see {@linkcode ChangesOptions}).
   * Throws a `FeedDisabledError` when the store keeps no feed.
   */
  changes<T = JsonValue>(options?: ChangesOptions): AsyncIterable<Change<T>>;
  /**
   * The changes of keys under any of `prefixes` (`[[]]`: every key) as they
   * commit, in any process sharing the store; from `options.since` (so a
   * consumer that restarts from the last `seq` it handled loses nothing and
   * sees nothing twice). Ends when the signal aborts or the store closes.
   */
  watch<T = JsonValue>(prefixes: readonly Key[], options?: WatchOptions): AsyncIterable<Change<T>>;
  /**
   * The entry at `key` as it was at a time (ms since the epoch) or just after
   * the change with a sequence number (one of them: both is a `TypeError`);
   * `null` when it was absent or expired. Throws when the feed does not reach
   * back that far.
   */
  getAt<T = JsonValue>(key: Key, at: { time: number } | { seq: number }): Promise<Entry<T> | null>;
  /** Whether the store keeps a change feed, and which sequence numbers it holds. */
  feedInfo(): Promise<FeedInfo>;
  /**
   * Present when the backend claims natively (the postgres plugin: `SELECT …
   * FOR UPDATE SKIP LOCKED`): offer the first live entries under `prefix`
   * (key order, at most `options.limit`, default 100) that no other claim
   * holds at the moment, one at a time, to `take`, which adds checks and
   * writes to `op` and resolves `true` to commit them (in the same
   * transaction, while the entry is held) or `false` to be offered the next.
   * Concurrent claimers get distinct entries instead of racing for one.
   * `take` reads what it needs with `get` (inside the claim's transaction);
   * it must not commit `op` itself, nor use the store meanwhile (the claim
   * holds one of its connections and the entry). Resolves the entry's key
   * and the commit's result, or `null` when nothing was taken. The queue's
   * workers use it to claim runs. With `options.companion`, each candidate
   * is read together with the entry at `[...companion.prefix,
   * value[companion.field]]` (a string field), in the same statement: `get`
   * of that key then needs no round trip of its own. With `options.max` > 1,
   * up to that many entries are taken in one transaction (each with its own
   * `op`, committed together, all or none): `keys` lists them, `key` is the
   * first. The commit never waits for another commit that holds one of its
   * keys (that commit may be waiting for an entry this claim holds): it then
   * writes nothing, and `result` is a failure with no conflicting keys;
   * claim again.
   */
  claimFirst?<T = JsonValue>(
    prefix: Key,
    take: (
      entry: Entry<T>,
      op: AtomicOperation,
      get: <U = JsonValue>(key: Key) => Promise<Entry<U> | null>,
    ) => Promise<boolean>,
    options?: { limit?: number; companion?: ClaimCompanion; max?: number },
  ): Promise<{ key: Key; keys: Key[]; result: CommitResult } | null>;
}

/**
 * An entry read with each claim candidate (`Store.claimFirst`): the one at
 * `[...prefix, value[field]]` of the candidate's value (a string without
 * NUL characters; otherwise `get` reads it as usual).
 */
export interface ClaimCompanion {
  /** The key prefix of the companion entry. */
  prefix: Key;
  /** The property of the candidate's value that names the companion's last key part. */
  field: string;
}

/** What {@linkcode Store.compact} did. */
export interface CompactResult {
  /** Whether the backend can compact at all. */
  supported: boolean;
  /** Size on disk before, in bytes (0 when unsupported). */
  bytesBefore: number;
  /** Size on disk after, in bytes (0 when unsupported). */
  bytesAfter: number;
}
