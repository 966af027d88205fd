/**
 * The driver contract: the small interface a plugin's `open()` returns. The
 * core wraps it into a full {@linkcode Store}: it validates keys and values,
 * copies values, filters expired entries, makes versions, and supplies
 * `getMany`, `count`, `query` and `clear` when the driver does not.
 *
 * A minimal driver implements four methods: `get`, `list`, `commit`, `close`.
 *
 * @module
 */
import type { AtomicCheck, Capabilities, Change, ClaimCompanion, Key, QueryPlan } from "./types.ts";
import type { NormalizedQuery } from "./query.ts";
import type { IndexSpec, SearchRequest, SearchSpec } from "./indexes.ts";
export type { IndexSpec, SearchRequest, SearchSpec };

/** What {@linkcode StoreDriver.prepareIndexes} receives. */
export interface PrepareIndexesRequest {
  /** The declared indexes (validated, named). */
  indexes: IndexSpec[];
  /** The declared search index, if any. */
  search?: SearchSpec;
  /** Report progress of a long build (shown to the user as a warning line). */
  progress(message: string): void;
  /**
   * Told before and after each index (or search index) the driver builds,
   * and in between when the backend can tell how far a build has got. A
   * driver calls it for every build, large or small (`progress` lines are
   * for large ones only).
   */
  onBuild?(event: IndexBuildEvent): void;
}

/**
 * How far the build of one declared index has got: see
 * {@linkcode PrepareIndexesRequest.onBuild} and the `onIndexBuild` option of
 * `openStore`.
 */
export interface IndexBuildEvent {
  /** The declared index's name (`fs_ix_…`), or `"search"` for the search index. */
  index: string;
  /** For people, e.g. `index fs_ix_58f222c2 on status under ["orders"]`. */
  label: string;
  /**
   * `start` before the build, `progress` while it runs (only where the
   * backend can tell), `done` after it.
   */
  phase: "start" | "progress" | "done";
  /** Entries indexed so far (`progress`, `done`), when the backend can tell. */
  done?: number;
  /** Entries to index (those under the index's prefix), when known. */
  total?: number;
}

/** What {@linkcode StoreDriver.prepareIndexes} built. */
export interface PreparedIndexes {
  /** Names of the indexes the driver maintains natively (the rest are answered by scans). */
  indexes: string[];
  /** Whether the driver maintains the search index natively. */
  search: boolean;
}

/** A search hit as a driver returns it. */
export interface RawSearchHit extends RawEntry {
  /** Relevance, higher is better. */
  score: number;
}

/** An entry as a driver stores it: the value is JSON text. */
export interface RawEntry {
  /** The key. */
  key: Key;
  /** The value as JSON text (exactly as the core handed it to `commit`). */
  value: string;
  /** The version the core made for the write that stored it. */
  version: string;
  /** Expiry time in ms since the epoch, or `null`. */
  expiresAt: number | null;
}

/**
 * What an async driver's {@linkcode StoreDriver.list} may return to hand out
 * entries a page at a time: the core's `ListIterator.nextPage()` then takes
 * them with one promise per page instead of one per entry. Optional (any
 * async iterable will do); `next()` and `nextPage()` may be mixed.
 */
export interface PagedListing extends AsyncIterableIterator<RawEntry> {
  /**
   * The next entries, at most `max` (a positive integer), in the listing's
   * order; `[]` only once the listing is complete.
   */
  nextPage(max: number): Promise<RawEntry[]>;
  /**
   * Optional: the entries already read that `next()` would hand out without
   * any I/O, taken at once (`[]` when there are none, or the listing is
   * complete). The core's `for await` then takes a page's entries
   * synchronously, one resolved promise each, instead of a promise chain
   * per entry; `next()` afterwards reads the next page.
   */
  takeBuffered?(): RawEntry[];
}

/** A key range for {@linkcode StoreDriver.list}. All bounds apply together. */
export interface KeyRange {
  /** Only keys strictly under this prefix (`[]` or absent: every key). */
  prefix?: Key;
  /** Lower bound, inclusive unless `startExclusive`. */
  start?: Key;
  /** Make `start` exclusive. */
  startExclusive?: boolean;
  /** Upper bound, exclusive. */
  end?: Key;
  /** Descending key order. */
  reverse?: boolean;
  /**
   * At most this many entries. Only passed to drivers that filter expiry
   * themselves; otherwise the core stops iterating when it has enough.
   */
  limit?: number;
  /** A hint for how many entries to fetch per round trip. */
  batchSize?: number;
}

/**
 * One write in a commit. Apply in order; a later write to the same key wins.
 * `clear` deletes every entry in the range (expired ones too); the core
 * sends it only to drivers with `capabilities.atomicClear`, and turns it into
 * `delete`s for the others.
 */
export type Mutation =
  | { type: "set"; key: Key; value: string; expiresAt: number | null }
  | { type: "delete"; key: Key }
  | { type: "clear"; range: ClearRange };

/** The range of a `clear` mutation, {@linkcode StoreDriver.count} and {@linkcode StoreDriver.clear}. */
export interface ClearRange {
  /** Only keys strictly under this prefix (`[]`: every key). */
  prefix: Key;
  /** Lower bound, inclusive. */
  start?: Key;
  /** Upper bound, exclusive. */
  end?: Key;
}

/** Everything a commit must apply atomically. */
export interface CommitRequest {
  /** Every check must hold (a `null` version means absent or expired at `now`), or nothing is written. */
  checks: AtomicCheck[];
  /** The writes. */
  mutations: Mutation[];
  /** The version to store on every entry this commit sets. */
  version: string;
  /** The current time (ms), for expiry checks. */
  now: number;
}

/**
 * The change feed's part of a commit, for a driver that writes the feed in
 * the commit's own transaction ({@linkcode StoreDriver.commitFeed}).
 */
export interface FeedCommit {
  /**
   * Entries to read (live at the commit's `now`, like `getMany`) after taking
   * the commit's locks: the feed's head first, then each key the commit
   * writes. The driver locks these keys with the commit's own, so that every
   * commit that writes the feed waits for the one before it.
   */
  reads: Key[];
  /** Given the entries of `reads` as read under the locks: the feed's writes, to apply with the commit's. */
  plan(read: readonly (RawEntry | null)[]): Mutation[];
  /** Call {@linkcode StoreDriver.signal} of this topic inside the transaction (when it wrote entries). */
  topic: string;
  /**
   * What `plan` computes, as pieces for a driver that builds the feed's
   * writes in its own statement (read and write in one round trip). For the
   * i-th write that changes something (a delete of a key absent or expired
   * at `now` changes nothing), in order, with `seq` = the head's `seq` + i:
   * the entry `entries` + [seq as 16 digits] = `{"seq":` + seq + `middle` +
   * the key's previous version as JSON (`null`: none) + `tail`; the by-key
   * entry `byKey` + [seq as 16 digits] = `null`; then, when any changed,
   * `head` = `{"seq":` + last seq + `,"since":` + the head's `since` (or
   * `since`) + `}`. Every one of them with no expiry and the commit's version.
   */
  template: FeedTemplate;
}

/** See {@linkcode FeedCommit.template}. */
export interface FeedTemplate {
  /** The head's key: its value is `{"seq": N, "since": ms}` (absent: seq 0). */
  head: Key;
  /** The prefix of the entries' keys. */
  entries: Key;
  /** `since` for a head that has none. */
  since: number;
  /** One per key written, in order. */
  writes: { key: Key; delete: boolean; byKey: Key; middle: string; tail: string }[];
}

/** Which entries of a feed table to read: see {@linkcode FeedTable.changes}. */
export interface FeedTableRange {
  /** Only sequence numbers above this one (default: from the oldest kept). */
  after?: number;
  /** Only sequence numbers below this one (default: up to the newest). */
  before?: number;
  /** Newest first. */
  reverse?: boolean;
  /** A hint for how many entries to fetch per page. */
  batchSize: number;
}

/** What {@linkcode FeedTable.trim} deletes. */
export interface FeedTrimRequest {
  /** Entries below this sequence number are old by count. */
  keepFrom: number;
  /** Entries committed before this time (ms) are old by age (`undefined`: no age limit). */
  cutoff?: number;
  /** The head when the trim started: no entry above it is deleted. */
  lastSeq: number;
}

/**
 * A change feed the driver keeps natively, in a table of its own written in
 * the commit's transaction (SQLite: `flowstate_feed`, one row per change
 * and an index by key), instead of the core's rows in the reserved key
 * space. When a driver has one, every read and write of the store's feed
 * goes through it.
 */
export interface FeedTable {
  /**
   * Apply `request` like {@linkcode StoreDriver.commit} (its mutations may
   * include `clear`s when the driver has `capabilities.atomicClear`) and, in
   * the same transaction, append one entry per changed key, in the order of
   * each key's last write in the commit: sequence numbers follow the head
   * with no gap, and commits that write the feed go one at a time (across
   * processes), so they agree with commit order. A key's entry records its
   * last write and the version it had before the commit (live at `now`); a
   * delete of a key that was absent or expired is no change and has no
   * entry. Nothing is appended when a check fails. `by` is the actor, as
   * JSON; `topic` is signalled (where the driver carries signals) when
   * entries were appended.
   */
  commit(
    request: CommitRequest,
    feed: { by: string; topic: string },
  ): Promise<DriverCommitResult> | DriverCommitResult;
  /** The last sequence number (0: none yet) and when the first entry was written, if one was. */
  head(): Promise<{ seq: number; since?: number }> | { seq: number; since?: number };
  /** The oldest kept sequence number, or `undefined` when no entry is kept. */
  first(): Promise<number | undefined> | number | undefined;
  /** The entries in the range, in sequence order (newest first with `reverse`). */
  changes(range: FeedTableRange): Iterable<Change> | AsyncIterable<Change>;
  /** Entry `seq`, or `null` when it is not kept. */
  entry(seq: number): Promise<Change | null> | Change | null;
  /** The sequence numbers of the kept changes of exactly `key` in the range, in order. */
  keySeqs(key: Key, range: FeedTableRange): Iterable<number> | AsyncIterable<number>;
  /**
   * Delete, from the oldest on, the entries that are old by count or by age,
   * stopping at the first that is neither (or above `lastSeq`), in batches
   * (each its own transaction); the head never moves back. Resolves how
   * many were deleted.
   */
  trim(request: FeedTrimRequest): Promise<number>;
}

/** What a driver's commit reports. */
export type DriverCommitResult = { ok: true } | { ok: false; conflicts: Key[] };

/**
 * What {@linkcode StoreDriver.claim} is given: a claim of the first entry
 * under `prefix` that no other claim holds at the moment.
 */
export interface ClaimRequest {
  /** The entries to take from (live ones only, in key order). */
  prefix: Key;
  /** Offer at most this many entries to `decide`. */
  limit: number;
  /**
   * Take up to this many entries (default 1): the driver may hold several
   * candidates at once, and the commits `decide` made for those it took are
   * applied as one (all or none).
   */
  max?: number;
  /** The current time (ms), for expiry. */
  now: number;
  /**
   * Read each candidate's companion entry (see `Store.claimFirst`) with it,
   * so that `read` of that key needs no statement of its own (optional: a
   * driver may read it when asked, as any other key).
   */
  companion?: ClaimCompanion;
  /**
   * Called with each candidate in key order while the driver holds it for
   * this claim (concurrent claims skip it, never wait for it); resolves the
   * commit to apply in the same transaction (without `clear` mutations), or
   * `null` to pass over it and be offered the next. `read` reads entries
   * (live at `now`, like `getMany`) inside the claim's own transaction: a
   * decision needs no other connection while the claim holds one.
   */
  decide(
    entry: RawEntry,
    read: (keys: readonly Key[]) => Promise<(RawEntry | null)[]>,
  ): Promise<CommitRequest | null>;
  /**
   * Set (only for a driver with {@linkcode StoreDriver.commitFeed}) on a
   * store that keeps a change feed: the feed's part of the commit `decide`
   * made, to write in the claim's transaction as `commitFeed` would.
   */
  feed?(commit: CommitRequest): FeedCommit;
}

/** What {@linkcode StoreDriver.claim} did. */
export type DriverClaimResult =
  /** No candidate was taken: none was free, or `decide` passed over all. */
  | null
  /**
   * The commit `decide` made for the candidate at `key` (with `max`, the
   * commits made for every candidate in `keys`, as one), and how it went
   * (a failure with no conflicting keys: a key was held by another commit,
   * which a claim does not wait for, and nothing was written).
   */
  | { key: Key; keys?: Key[]; result: DriverCommitResult };

/** The interface a plugin's `open()` returns. */
export interface StoreDriver {
  /** Where the data lives, for display (a path, a URL without password, `"memory"`). */
  readonly location: string;
  /** What this driver does natively; the rest gets a core fallback. */
  readonly capabilities?: Partial<Capabilities>;
  /** One entry or `null`. May return an expired entry; the core filters it. */
  get(key: Key, now: number): Promise<RawEntry | null> | RawEntry | null;
  /** Entries in key order within the range. May include expired ones unless `capabilities.expiry`. */
  list(range: KeyRange, now: number): AsyncIterable<RawEntry> | Iterable<RawEntry>;
  /** Apply checks and mutations all-or-nothing. */
  commit(request: CommitRequest): Promise<DriverCommitResult> | DriverCommitResult;
  /** Release resources. Called once. */
  close(): Promise<void> | void;
  /** Several entries, in the order of `keys`. */
  getMany?(keys: readonly Key[], now: number): Promise<(RawEntry | null)[]>;
  /** Count live entries in a range. Used when `capabilities.count`. */
  count?(range: ClearRange, now: number): Promise<number>;
  /**
   * Run a query natively: the live entries matching it, sorted, with offset
   * and limit applied. Return `undefined` to let the core evaluate this one.
   * Used when `capabilities.query`.
   */
  query?(query: NormalizedQuery, now: number): Promise<RawEntry[] | undefined>;
  /**
   * Build the declared indexes (and search index) natively, once, right after
   * open: an index already built is kept as is, a missing one is built from
   * the existing entries (report progress for a long build). Every later
   * commit must keep them exact. Used when `capabilities.indexes` or
   * `capabilities.search`.
   */
  prepareIndexes?(request: PrepareIndexesRequest): Promise<PreparedIndexes> | PreparedIndexes;
  /** Describe how `query` would run natively (`undefined`: the core scans it). */
  explain?(query: NormalizedQuery, now: number): Promise<QueryPlan | undefined>;
  /**
   * Full-text search natively: the live entries under `request.prefix` whose
   * searchable text holds every term (see `searchScore` for the exact
   * rule), best first, at most `request.limit`. Return `undefined` to let the
   * core scan. Used when `capabilities.search`.
   */
  search?(request: SearchRequest, now: number): Promise<RawSearchHit[] | undefined>;
  /**
   * Delete every entry in a range (expired ones too) and say how many live
   * ones there were. Used when `capabilities.clear`.
   */
  clear?(range: ClearRange, now: number): Promise<number>;
  /**
   * Delete every entry expired at `now`; resolves how many. The core's fallback
   * scans `list`, so a driver that filters expiry itself (`capabilities.expiry`)
   * must implement this.
   */
  purgeExpired?(now: number): Promise<number>;
  /**
   * Return free space to the file system (SQLite: incremental vacuum;
   * jsonfile: rewrite). Resolves the size on disk before and after, in bytes.
   */
  compact?(): Promise<{ bytesBefore: number; bytesAfter: number }>;
  /**
   * Wake-ups across processes (PostgreSQL: `LISTEN`): call `onSignal`
   * whenever any process sharing this store calls {@linkcode StoreDriver.signal}
   * with the same `topic`; resolves a function that stops listening. Optional:
   * without it, whoever waits for news (a queue worker) polls.
   */
  listen?(topic: string, onSignal: () => void): Promise<() => Promise<void>>;
  /** Wake every listener of `topic` in every process (PostgreSQL: `NOTIFY`). */
  signal?(topic: string): Promise<void>;
  /**
   * A cheap token that moves whenever another connection or process may
   * have committed since it was last read (SQLite: `PRAGMA data_version` of
   * the driver's connection; jsonfile: which file is loaded, from one stat).
   * It need not move for this driver's own commits (the core wakes its own
   * watchers on those). A watcher without `listen` polls it and reads the
   * feed's head only when it moved. Optional: without it, the watcher reads
   * the head on every poll.
   */
  changeToken?(): number | Promise<number>;
  /**
   * Native claims (PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED`): in one
   * transaction, hold the first live entries under `request.prefix` that no
   * other claim holds, one at a time, offer each to `request.decide`, and
   * apply the first commit it resolves (checks and all, exactly as
   * {@linkcode StoreDriver.commit} would) before letting the entry go.
   * Concurrent claims get distinct candidates instead of racing for one.
   * Optional: without it, the queue claims by compare-and-set.
   */
  claim?(request: ClaimRequest): Promise<DriverClaimResult>;
  /**
   * A native change feed: apply `request` like {@linkcode StoreDriver.commit}
   * and, in the same transaction, the feed's writes: take the commit's locks
   * and those of `feed.reads` (the feed's head among them: commits that
   * write the feed go one at a time, so sequence numbers are gap-free and in
   * commit order across processes), read `feed.reads`, add
   * `feed.plan(read)`'s writes to the commit (applied only if every check
   * holds), and signal `feed.topic` before committing. Optional: without it,
   * the core appends the feed through `commit` with a check on the head.
   * A driver with both `claim` and `commitFeed` must honour `ClaimRequest.feed`.
   */
  commitFeed?(request: CommitRequest, feed: FeedCommit): Promise<DriverCommitResult>;
  /**
   * A change feed kept natively in a table of the driver's own (see
   * {@linkcode FeedTable}): a store that keeps a feed then writes and reads
   * it there, and `commitFeed` is not used. Optional: without it, the core
   * keeps the feed in the reserved key space.
   */
  readonly feedTable?: FeedTable;
}
