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

/**
 * What {@linkcode StoreDriver.prepareIndexes} receives.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { definePlugin, openStore } from "@flowstate/core";
 * import type { PrepareIndexesRequest } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 * import { z } from "zod";
 *
 * let seen: PrepareIndexesRequest | undefined;
 * class Spy extends MemoryDriver {
 *   override prepareIndexes(request: PrepareIndexesRequest) {
 *     seen = request;
 *     return super.prepareIndexes(request);
 *   }
 * }
 * const plugin = definePlugin({ name: "spy", optionsSchema: z.strictObject({}), open: () => new Spy() });
 * await using _store = await openStore({
 *   plugin,
 *   indexes: [{ prefix: ["orders"], path: "status" }],
 *   search: { prefix: ["notes"] },
 * });
 * assert.deepEqual(seen?.indexes.map((i) => i.path), [["status"]]);
 * assert.deepEqual(seen?.search?.prefix, ["notes"]);
 * ```
 */
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type IndexBuildEvent, openStore } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * const spec = { plugin: "sqlite", path: `${dir}/state.db` } as const;
 * const plain = await openStore(spec);
 * await plain.set(["orders", "1"], { status: "open" });
 * await plain.close();
 * const events: IndexBuildEvent[] = [];
 * const store = await openStore(
 *   { ...spec, indexes: [{ prefix: ["orders"], path: "status" }] },
 *   { onIndexBuild: (event) => events.push(event) },
 * );
 * assert.deepEqual(events.map((e) => e.phase), ["start", "done"]);
 * assert.match(events[0].label, /status/);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
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

/**
 * What {@linkcode StoreDriver.prepareIndexes} built.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PreparedIndexes } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 *
 * const driver = new MemoryDriver();
 * const prepared: PreparedIndexes = await driver.prepareIndexes({
 *   indexes: [{ name: "fs_ix_status", prefix: ["orders"], path: ["status"] }],
 *   progress: () => {},
 * });
 * assert.deepEqual(prepared.indexes, ["fs_ix_status"]); // maintained natively
 * await driver.close();
 * ```
 */
export interface PreparedIndexes {
  /** Names of the indexes the driver maintains natively (the rest are answered by scans). */
  indexes: string[];
  /** Whether the driver maintains the search index natively. */
  search: boolean;
}

/**
 * A search hit as a driver returns it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RawSearchHit } from "@flowstate/core/plugin";
 *
 * // What a driver's `search` returns: raw entries with a relevance score, best first.
 * const hits: RawSearchHit[] = [
 *   { key: ["notes", "2"], value: '{"title":"pears"}', version: "v2", expiresAt: null, score: 0.4 },
 *   { key: ["notes", "1"], value: '{"title":"pears, pears"}', version: "v1", expiresAt: null, score: 0.9 },
 * ];
 * hits.sort((a, b) => b.score - a.score);
 * assert.deepEqual(hits[0].key, ["notes", "1"]);
 * ```
 */
export interface RawSearchHit extends RawEntry {
  /** Relevance, higher is better. */
  score: number;
}

/**
 * An entry as a driver stores it: the value is JSON text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RawEntry } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 *
 * const driver = new MemoryDriver();
 * await driver.commit({
 *   checks: [],
 *   mutations: [{ type: "set", key: ["a"], value: '{"n":1}', expiresAt: null }],
 *   version: "v1",
 *   now: 0,
 * });
 * const raw: RawEntry | null = driver.get(["a"]);
 * assert.deepEqual(raw, { key: ["a"], value: '{"n":1}', version: "v1", expiresAt: null });
 * assert.deepEqual(JSON.parse(raw!.value), { n: 1 }); // the value is JSON text
 * ```
 */
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PagedListing, RawEntry } from "@flowstate/core/plugin";
 *
 * // A listing over an array that hands out pages as well as single entries.
 * function paged(entries: RawEntry[]): PagedListing {
 *   let at = 0;
 *   return {
 *     next: () =>
 *       Promise.resolve(
 *         at < entries.length ? { done: false, value: entries[at++] } : { done: true, value: undefined },
 *       ),
 *     nextPage: (max) => Promise.resolve(entries.slice(at, at += max)),
 *     [Symbol.asyncIterator]() {
 *       return this;
 *     },
 *   };
 * }
 * const e = (k: string): RawEntry => ({ key: [k], value: "1", version: "v", expiresAt: null });
 * const listing = paged([e("a"), e("b"), e("c")]);
 * assert.equal((await listing.nextPage(2)).length, 2);
 * assert.deepEqual((await listing.next()).value?.key, ["c"]);
 * assert.deepEqual(await listing.nextPage(2), []);
 * ```
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

/**
 * A key range for {@linkcode StoreDriver.list}. All bounds apply together.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KeyRange } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 *
 * const driver = new MemoryDriver();
 * const set = (k: string) => ({ type: "set" as const, key: ["log", k], value: "1", expiresAt: null });
 * await driver.commit({ checks: [], mutations: ["1", "2", "3"].map(set), version: "v", now: 0 });
 * const range: KeyRange = { prefix: ["log"], start: ["log", "1"], startExclusive: true, reverse: true };
 * assert.deepEqual([...driver.list(range)].map((e) => e.key[1]), ["3", "2"]);
 * ```
 */
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Mutation } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 *
 * const driver = new MemoryDriver();
 * const mutations: Mutation[] = [
 *   { type: "set", key: ["tmp", "a"], value: "1", expiresAt: null },
 *   { type: "set", key: ["keep"], value: "2", expiresAt: null },
 *   { type: "clear", range: { prefix: ["tmp"] } }, // deletes the set before it
 *   { type: "delete", key: ["never-there"] },
 * ];
 * assert.deepEqual(await driver.commit({ checks: [], mutations, version: "v", now: 0 }), { ok: true });
 * assert.deepEqual([...driver.list({})].map((e) => e.key), [["keep"]]);
 * ```
 */
export type Mutation =
  | { type: "set"; key: Key; value: string; expiresAt: number | null }
  | { type: "delete"; key: Key }
  | { type: "clear"; range: ClearRange };

/**
 * The range of a `clear` mutation, {@linkcode StoreDriver.count} and {@linkcode StoreDriver.clear}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ClearRange } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 *
 * const driver = new MemoryDriver();
 * const set = (k: string) => ({ type: "set" as const, key: ["day", k], value: "1", expiresAt: null });
 * await driver.commit({ checks: [], mutations: ["01", "02", "03"].map(set), version: "v", now: 0 });
 * const range: ClearRange = { prefix: ["day"], start: ["day", "02"], end: ["day", "03"] };
 * await driver.commit({ checks: [], mutations: [{ type: "clear", range }], version: "v2", now: 0 });
 * assert.deepEqual([...driver.list({ prefix: ["day"] })].map((e) => e.key[1]), ["01", "03"]);
 * ```
 */
export interface ClearRange {
  /** Only keys strictly under this prefix (`[]`: every key). */
  prefix: Key;
  /** Lower bound, inclusive. */
  start?: Key;
  /** Upper bound, exclusive. */
  end?: Key;
}

/**
 * Everything a commit must apply atomically.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { definePlugin, openStore } from "@flowstate/core";
 * import type { CommitRequest } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 * import { z } from "zod";
 *
 * const seen: CommitRequest[] = [];
 * class Spy extends MemoryDriver {
 *   override commit(request: CommitRequest) {
 *     seen.push(request);
 *     return super.commit(request);
 *   }
 * }
 * const plugin = definePlugin({ name: "spy", optionsSchema: z.strictObject({}), open: () => new Spy() });
 * await using store = await openStore({ plugin });
 * await store.set(["a"], { n: 1 }, { ifVersion: null });
 * assert.deepEqual(seen[0].checks, [{ key: ["a"], version: null }]);
 * assert.deepEqual(seen[0].mutations, [{ type: "set", key: ["a"], value: '{"n":1}', expiresAt: null }]);
 * ```
 */
export interface CommitRequest {
  /** Every check must hold (a `null` version means absent or expired at `now`), or nothing is written. */
  checks: AtomicCheck[];
  /** The writes. */
  mutations: Mutation[];
  /** The version to store on every entry this commit sets. */
  version: string;
  /** The current time (ms), for expiry checks. */
  now: number;
  /**
   * The caller gives up when it aborts (see `GetOptions.signal`). A driver
   * that declares `capabilities.abort` ends the commit if it still waits
   * (a lock another process holds) and rejects, having written nothing; any
   * other driver may ignore it. Absent for most commits (the core's own
   * records never carry one).
   */
  signal?: AbortSignal;
}

/**
 * The change feed's part of a commit, for a driver that writes the feed in
 * the commit's own transaction ({@linkcode StoreDriver.commitFeed}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FeedCommit, Mutation, RawEntry } from "@flowstate/core/plugin";
 *
 * // A driver with commitFeed: read `reads` under the commit's locks, then apply `plan(read)` with it.
 * async function applyFeed(feed: FeedCommit, read: (keys: readonly string[][]) => Promise<(RawEntry | null)[]>) {
 *   const entries = await read(feed.reads as string[][]);
 *   return feed.plan(entries);
 * }
 * const feed: FeedCommit = {
 *   reads: [["\u0000feed", "head"]],
 *   plan: (read): Mutation[] => read[0] === null ? [{ type: "set", key: ["\u0000feed", "head"], value: '{"seq":1}', expiresAt: null }] : [],
 *   topic: "feed",
 *   template: { head: ["\u0000feed", "head"], entries: ["\u0000feed", "e"], since: 0, writes: [] },
 * };
 * const writes = await applyFeed(feed, (keys) => Promise.resolve(keys.map(() => null)));
 * assert.equal(writes.length, 1);
 * ```
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

/**
 * See {@linkcode FeedCommit.template}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FeedTemplate } from "@flowstate/core/plugin";
 *
 * const template: FeedTemplate = {
 *   head: ["\u0000feed", "head"],
 *   entries: ["\u0000feed", "e"],
 *   since: 1_000,
 *   writes: [{ key: ["a"], delete: false, byKey: ["\u0000feed", "k", "a"], middle: ',"op":"set","prev":', tail: "}" }],
 * };
 * // the i-th change's entry key: `entries` + the seq as 16 digits
 * const seq = 1;
 * const entryKey = [...template.entries, String(seq).padStart(16, "0")];
 * assert.deepEqual(entryKey, ["\u0000feed", "e", "0000000000000001"]);
 * ```
 */
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

/**
 * Which entries of a feed table to read: see {@linkcode FeedTable.changes}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FeedTableRange } from "@flowstate/core/plugin";
 *
 * const range: FeedTableRange = { after: 10, before: 20, batchSize: 256 };
 * const inRange = (seq: number) =>
 *   (range.after === undefined || seq > range.after) && (range.before === undefined || seq < range.before);
 * assert.deepEqual([10, 11, 19, 20].filter(inRange), [11, 19]);
 * ```
 */
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

/**
 * What {@linkcode FeedTable.trim} deletes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FeedTrimRequest } from "@flowstate/core/plugin";
 *
 * const request: FeedTrimRequest = { keepFrom: 900, cutoff: Date.UTC(2026, 0, 1), lastSeq: 1_000 };
 * // an entry is old by count or by age, and never above the head seen at the start
 * const old = (seq: number, at: number) =>
 *   seq <= request.lastSeq && (seq < request.keepFrom || (request.cutoff !== undefined && at < request.cutoff));
 * assert.equal(old(899, Date.UTC(2026, 5, 1)), true);
 * assert.equal(old(950, Date.UTC(2026, 5, 1)), false);
 * ```
 */
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FeedTable } from "@flowstate/core/plugin";
 *
 * // What the core asks of a driver's feed table: here, the head of an empty one.
 * async function describe(feed: FeedTable): Promise<string> {
 *   const { seq } = await feed.head();
 *   const first = await feed.first();
 *   return first === undefined ? `empty (head ${seq})` : `${first}..${seq}`;
 * }
 * const empty: FeedTable = {
 *   commit: () => ({ ok: true }),
 *   head: () => ({ seq: 0 }),
 *   first: () => undefined,
 *   changes: () => [],
 *   entry: () => null,
 *   keySeqs: () => [],
 *   trim: () => Promise.resolve(0),
 * };
 * assert.equal(await describe(empty), "empty (head 0)");
 * ```
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
  /**
   * Replace the value of kept `set` entries, in place, in one transaction
   * (the `rekey` job seals them again): each entry keeps its number, time,
   * key, op, versions, expiry and actor; `value` is the new value's JSON
   * text. An entry no longer kept (trimmed) or a delete is left alone.
   * Resolves how many entries were rewritten. Optional: without it, `rekey`
   * cannot seal the feed's values and says so.
   */
  setValues?(values: readonly FeedValue[]): Promise<number> | number;
}

/**
 * A new value for one entry of a change feed: see {@linkcode FeedTable.setValues}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FeedValue } from "@flowstate/core/plugin";
 *
 * const value: FeedValue = { seq: 12, value: JSON.stringify({ $sealed: "fs1:..." }) };
 * assert.equal(JSON.parse(value.value).$sealed, "fs1:...");
 * ```
 */
export interface FeedValue {
  /** The entry's sequence number. */
  seq: number;
  /** Its new value, as JSON text. */
  value: string;
}

/**
 * What a driver's commit reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DriverCommitResult } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 *
 * const driver = new MemoryDriver();
 * const set = { type: "set" as const, key: ["a"], value: "1", expiresAt: null };
 * await driver.commit({ checks: [], mutations: [set], version: "v1", now: 0 });
 * const result: DriverCommitResult = await driver.commit({
 *   checks: [{ key: ["a"], version: null }], // must be absent: it is not
 *   mutations: [set],
 *   version: "v2",
 *   now: 0,
 * });
 * assert.deepEqual(result, { ok: false, conflicts: [["a"]] });
 * ```
 */
export type DriverCommitResult = { ok: true } | { ok: false; conflicts: Key[] };

/**
 * What {@linkcode StoreDriver.claim} is given: a claim of the first entry
 * under `prefix` that no other claim holds at the moment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ClaimRequest, CommitRequest, RawEntry } from "@flowstate/core/plugin";
 *
 * // A driver's `claim` offers candidates to `decide` in key order and applies the first commit it makes.
 * async function claimFrom(entries: RawEntry[], request: ClaimRequest) {
 *   for (const entry of entries.slice(0, request.limit)) {
 *     const commit = await request.decide(entry, () => Promise.resolve([]));
 *     if (commit !== null) return { key: entry.key, commit };
 *   }
 *   return null;
 * }
 * const request: ClaimRequest = {
 *   prefix: ["queue"],
 *   limit: 10,
 *   now: 0,
 *   decide: (entry): Promise<CommitRequest | null> =>
 *     Promise.resolve(entry.value === '"busy"' ? null : {
 *       checks: [{ key: entry.key, version: entry.version }],
 *       mutations: [{ type: "delete", key: entry.key }],
 *       version: "v9",
 *       now: 0,
 *     }),
 * };
 * const e = (id: string, value: string): RawEntry => ({ key: ["queue", id], value, version: "v", expiresAt: null });
 * const taken = await claimFrom([e("1", '"busy"'), e("2", '"free"')], request);
 * assert.deepEqual(taken?.key, ["queue", "2"]);
 * ```
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
  /**
   * Set (only for a driver with {@linkcode StoreDriver.feedTable}) on a store
   * that keeps a change feed: append the entries of the commit `decide` made
   * to the feed's table in the claim's transaction, as
   * {@linkcode FeedTable.commit} would with the same `by` and `topic`.
   */
  feedTable?: { by: string; topic: string };
}

/**
 * What {@linkcode StoreDriver.claim} did.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DriverClaimResult } from "@flowstate/core/plugin";
 *
 * const results: DriverClaimResult[] = [
 *   null, // nothing free
 *   { key: ["queue", "1"], result: { ok: true } },
 *   { key: ["queue", "2"], result: { ok: false, conflicts: [] } }, // held by another commit: claim again
 * ];
 * const taken = results.filter((r) => r?.result.ok).map((r) => r!.key);
 * assert.deepEqual(taken, [["queue", "1"]]);
 * ```
 */
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

/**
 * The interface a plugin's `open()` returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { definePlugin, openStore } from "@flowstate/core";
 * import { compareKeys, type CommitRequest, hasPrefix, type KeyRange, type RawEntry, type StoreDriver } from "@flowstate/core/plugin";
 * import { z } from "zod";
 *
 * // The smallest driver: get, list, commit, close. The core adds the rest.
 * class MapDriver implements StoreDriver {
 *   readonly location = "map";
 *   #entries = new Map<string, RawEntry>();
 *   get(key: readonly string[]) {
 *     return this.#entries.get(JSON.stringify(key)) ?? null;
 *   }
 *   list(range: KeyRange) {
 *     const all = [...this.#entries.values()]
 *       .filter((e) => !range.prefix?.length || hasPrefix(e.key, range.prefix))
 *       .filter((e) => !range.start || compareKeys(e.key, range.start) >= (range.startExclusive ? 1 : 0))
 *       .filter((e) => !range.end || compareKeys(e.key, range.end) < 0)
 *       .sort((a, b) => compareKeys(a.key, b.key));
 *     return range.reverse ? all.reverse() : all;
 *   }
 *   commit(request: CommitRequest) {
 *     const conflicts = request.checks
 *       .filter((c) => (this.get(c.key)?.version ?? null) !== c.version)
 *       .map((c) => c.key);
 *     if (conflicts.length > 0) return { ok: false as const, conflicts };
 *     for (const m of request.mutations) {
 *       if (m.type === "set") {
 *         this.#entries.set(JSON.stringify(m.key), { key: m.key, value: m.value, version: request.version, expiresAt: m.expiresAt });
 *       } else if (m.type === "delete") this.#entries.delete(JSON.stringify(m.key));
 *     }
 *     return { ok: true as const };
 *   }
 *   close() {}
 * }
 * const plugin = definePlugin({ name: "map", optionsSchema: z.strictObject({}), open: () => new MapDriver() });
 * await using store = await openStore({ plugin });
 * await store.set(["a"], 1);
 * assert.equal((await store.set(["a"], 2, { ifVersion: null })).ok, false);
 * assert.equal(await store.count(), 1); // count, query, clear… come from the core
 * ```
 */
export interface StoreDriver {
  /** Where the data lives, for display (a path, a URL without password, `"memory"`). */
  readonly location: string;
  /** What this driver does natively; the rest gets a core fallback. */
  readonly capabilities?: Partial<Capabilities>;
  /**
   * One entry or `null`. May return an expired entry; the core filters it.
   * `signal`: as {@linkcode CommitRequest.signal} (only a driver that
   * declares `capabilities.abort` need heed it).
   */
  get(key: Key, now: number, signal?: AbortSignal): Promise<RawEntry | null> | RawEntry | null;
  /**
   * Entries in key order within the range. May include expired ones unless
   * `capabilities.expiry`. `signal`: as {@linkcode CommitRequest.signal} (a
   * page still waiting rejects).
   */
  list(
    range: KeyRange,
    now: number,
    signal?: AbortSignal,
  ): AsyncIterable<RawEntry> | Iterable<RawEntry>;
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
   * Used when `capabilities.query`. A driver that has the answer at once may
   * return it without a promise (the core then awaits nothing). `signal`: as
   * {@linkcode CommitRequest.signal}.
   */
  query?(
    query: NormalizedQuery,
    now: number,
    signal?: AbortSignal,
  ): RawEntry[] | undefined | Promise<RawEntry[] | undefined>;
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
   * core scan. Used when `capabilities.search`. `signal`: as
   * {@linkcode CommitRequest.signal}.
   */
  search?(
    request: SearchRequest,
    now: number,
    signal?: AbortSignal,
  ): Promise<RawSearchHit[] | undefined>;
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
   * A driver with both `claim` and `commitFeed` must honour `ClaimRequest.feed`
   * (with `claim` and `feedTable`: `ClaimRequest.feedTable`).
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
