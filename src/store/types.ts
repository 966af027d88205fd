/**
 * The Store contract: one interface every storage backend implements.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
export type { Clock };

/**
 * One element of a key. Keys are tuples of strings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Key, KeyPart } from "@flowstate/core";
 *
 * const flowId: KeyPart = "counter";
 * const key: Key = ["flow", flowId, "count"];
 * assert.equal(key[1], "counter");
 * ```
 */
export type KeyPart = string;

/**
 * A key: a non-empty array of strings, ordered element-wise in Unicode
 * code-point order (a shorter key sorts before any key it is a prefix of).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareKeys } from "@flowstate/core/plugin";
 * import type { Key } from "@flowstate/core";
 *
 * const keys: Key[] = [["b"], ["a", "z"], ["a"]];
 * keys.sort(compareKeys);
 * assert.deepEqual(keys, [["a"], ["a", "z"], ["b"]]); // a prefix sorts first
 * ```
 */
export type Key = readonly KeyPart[];

/**
 * A JSON-compatible value: what a Store can hold.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type JsonValue, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const order: JsonValue = { id: 1, items: ["pear", "fig"], paid: false, note: null };
 * await store.set(["orders", "1"], order);
 * assert.deepEqual((await store.get(["orders", "1"]))?.value, order);
 * ```
 */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * One stored entry, as returned by reads.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Entry, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["flow", "counter", "count"], 1);
 * const entry: Entry<number> | null = await store.get<number>(["flow", "counter", "count"]);
 * assert.equal(entry?.value, 1);
 * assert.equal(entry?.expiresAt, null);
 * assert.equal(typeof entry?.version, "string");
 * ```
 */
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

/**
 * Options for {@linkcode Store.set}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type SetOptions } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const onlyIfAbsent: SetOptions = { ifVersion: null, expireIn: 60_000 };
 * assert.equal((await store.set(["lock"], "me", onlyIfAbsent)).ok, true);
 * assert.equal((await store.set(["lock"], "you", onlyIfAbsent)).ok, false); // already there
 * ```
 */
export interface SetOptions {
  /** Expire the entry this many milliseconds from now. */
  expireIn?: number;
  /**
   * Compare-and-set: write only if the entry's current version is this one.
   * `null` means "only if the key is absent (or expired)".
   */
  ifVersion?: string | null;
  /**
   * Give up the write when it aborts while it waits (see {@linkcode GetOptions.signal}):
   * it then rejects and writes nothing.
   */
  signal?: AbortSignal;
}

/**
 * Options for {@linkcode Store.delete}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type DeleteOptions, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const { version } = await store.set(["a"], 1);
 * const stale: DeleteOptions = { ifVersion: "not-the-version" };
 * assert.equal(await store.delete(["a"], stale), false);
 * assert.equal(await store.delete(["a"], { ifVersion: version! }), true);
 * ```
 */
export interface DeleteOptions {
  /** Delete only if the entry's current version is this one. */
  ifVersion?: string;
  /**
   * Give up the delete when it aborts while it waits (see {@linkcode GetOptions.signal}):
   * it then rejects and deletes nothing.
   */
  signal?: AbortSignal;
}

/**
 * Options for {@linkcode Store.get}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type GetOptions, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["a"], 1);
 * const stop = new AbortController();
 * const options: GetOptions = { signal: stop.signal };
 * assert.equal((await store.get(["a"], options))?.value, 1);
 * stop.abort();
 * // A call given a signal aborted already is not started, on every backend.
 * await assert.rejects(store.get(["a"], options), /given up/);
 * ```
 */
export interface GetOptions {
  /**
   * Give up the call when it aborts. A call given a signal aborted already is
   * refused on every backend, before it starts. A store whose backend can end
   * a call that waits ({@linkcode Capabilities.abort}: PostgreSQL cancels a
   * statement waiting for a lock another session holds) ends it at once when
   * the signal aborts: the call rejects, and a write writes nothing. On other
   * backends a call that started runs to its end (none of them waits on
   * another process for long). A node's state calls are given its attempt's
   * stop: they end when the attempt is cancelled or times out.
   */
  signal?: AbortSignal;
}

/**
 * The result of a write: either committed with a new version, or a conflict that wrote nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CommitResult, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["a"], 1);
 * const result: CommitResult = await store.set(["a"], 2, { ifVersion: null });
 * if (!result.ok) assert.deepEqual(result.conflicts, [["a"]]);
 * assert.equal(result.ok, false);
 * ```
 */
export type CommitResult =
  | { ok: true; version: string }
  | { ok: false; version: null; conflicts: Key[] };

/**
 * Which entries {@linkcode Store.list} returns, and how.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ListOptions, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * for (const id of ["1", "2", "3"]) await store.set(["orders", id], { id });
 * const newestTwo: ListOptions = { prefix: ["orders"], reverse: true, limit: 2 };
 * const keys = [];
 * for await (const entry of store.list(newestTwo)) keys.push(entry.key[1]);
 * assert.deepEqual(keys, ["3", "2"]);
 * ```
 */
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
  /** Give up the listing when it aborts (see {@linkcode GetOptions.signal}): a page still waiting rejects. */
  signal?: AbortSignal;
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

/**
 * A comparison operator of a {@linkcode WhereClause}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type WhereOp } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["orders", "1"], { total: 5 });
 * await store.set(["orders", "2"], { total: 50 });
 * const op: WhereOp = "gte";
 * const big = await store.query({ prefix: ["orders"], where: [{ path: "total", op, value: 10 }] });
 * assert.deepEqual(big.map((e) => e.key), [["orders", "2"]]);
 * ```
 */
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type WhereClause } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["orders", "1"], { customer: { id: "ada" }, tags: ["rush"] });
 * await store.set(["orders", "2"], { customer: { id: "bob" }, tags: [] });
 * const where: WhereClause[] = [
 *   { path: "customer.id", op: "eq", value: "ada" },
 *   { path: "tags", op: "contains", value: "rush" },
 * ];
 * assert.equal((await store.query({ prefix: ["orders"], where })).length, 1);
 * ```
 */
export interface WhereClause {
  /** Path into the value. */
  path: string | readonly string[];
  /** Operator. */
  op: WhereOp;
  /** Operand. */
  value?: JsonValue;
}

/**
 * One sort key of a query. Ordering across types: missing < null < false < true < numbers < strings < arrays < objects.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type OrderBy } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["orders", "1"], { total: 5 });
 * await store.set(["orders", "2"], { total: 50 });
 * const biggestFirst: OrderBy = { path: "total", direction: "desc" };
 * const sorted = await store.query({ prefix: ["orders"], orderBy: biggestFirst });
 * assert.deepEqual(sorted.map((e) => e.key[1]), ["2", "1"]);
 * ```
 */
export interface OrderBy {
  /** Path into the value. */
  path: string | readonly string[];
  /** Default `"asc"`. */
  direction?: "asc" | "desc";
}

/**
 * A query over the values under a prefix. Ties are always broken by key order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type Query } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * for (const [id, status] of [["1", "open"], ["2", "paid"], ["3", "open"]]) {
 *   await store.set(["orders", id], { status });
 * }
 * const open: Query = {
 *   prefix: ["orders"],
 *   where: [{ path: "status", op: "eq", value: "open" }],
 *   limit: 10,
 * };
 * assert.deepEqual((await store.query(open)).map((e) => e.key[1]), ["1", "3"]);
 * ```
 */
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
  /** Give up the query when it aborts (see {@linkcode GetOptions.signal}). */
  signal?: AbortSignal;
}

/**
 * A version check in an atomic operation: `null` means "must be absent".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { AtomicCheck } from "@flowstate/core";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 *
 * const mustBeAbsent: AtomicCheck = { key: ["a"], version: null };
 * const driver = new MemoryDriver();
 * const result = await driver.commit({ checks: [mustBeAbsent], mutations: [], version: "v1", now: 0 });
 * assert.deepEqual(result, { ok: true });
 * ```
 */
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type KeyBounds, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * for (const day of ["2026-01-01", "2026-01-02", "2026-01-03"]) await store.set(["log", day], 1);
 * const january2: KeyBounds = { start: ["log", "2026-01-02"], end: ["log", "2026-01-03"] };
 * assert.equal(await store.count(["log"], january2), 1);
 * assert.equal(await store.clear(["log"], january2), 1);
 * assert.equal(await store.count(["log"]), 2);
 * ```
 */
export interface KeyBounds {
  /** Only keys `>= start`. */
  start?: Key;
  /** Only keys `< end`. */
  end?: Key;
}

/**
 * A builder of all-or-nothing writes, returned by {@linkcode Store.atomic}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type AtomicOperation, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["stock", "pear"], 3);
 * const stock = await store.get<number>(["stock", "pear"]);
 * const op: AtomicOperation = store.atomic()
 *   .check(["stock", "pear"], stock!.version) // nobody changed it meanwhile
 *   .set(["stock", "pear"], stock!.value - 1)
 *   .set(["orders", "1"], { item: "pear" });
 * assert.equal((await op.commit()).ok, true);
 * assert.equal((await store.get(["stock", "pear"]))?.value, 2);
 * ```
 */
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

/**
 * What a backend does natively; the core supplies a correct fallback for the rest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Capabilities, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const caps: Readonly<Capabilities> = store.capabilities;
 * assert.equal(caps.persistent, false); // memory: gone with the process
 * ```
 */
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
  /**
   * Ends a call that waits as soon as its `signal` aborts ({@linkcode GetOptions.signal}:
   * PostgreSQL cancels a statement waiting for another session's lock). Absent
   * or `false`: a call that started runs to its end.
   */
  abort?: boolean;
}

/**
 * An index declared on a store: the values under `prefix`, by the field at
 * `path` (dot-separated or an array of segments; segments that are array
 * indexes are not allowed). `query` uses it for an `eq` or range clause on
 * that path, or to sort by it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type IndexDeclaration, openStore } from "@flowstate/core";
 *
 * const byStatus: IndexDeclaration = { prefix: ["orders"], path: "status" };
 * await using store = await openStore({ plugin: "memory", indexes: [byStatus] });
 * const plan = await store.explain({
 *   prefix: ["orders"],
 *   where: [{ path: "status", op: "eq", value: "open" }],
 * });
 * assert.equal(plan.index, store.indexes[0].name);
 * ```
 */
export interface IndexDeclaration {
  /** Only entries strictly under this key prefix. */
  prefix: Key;
  /** The field: `"status"`, `"customer.id"` or `["customer", "id"]`. */
  path: string | readonly string[];
}

/**
 * A declared index as the store uses it (see {@linkcode Store.indexes}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type IndexInfo, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({
 *   plugin: "memory",
 *   indexes: [{ prefix: ["orders"], path: "customer.id" }],
 * });
 * const [index]: readonly IndexInfo[] = store.indexes;
 * assert.deepEqual(index.path, ["customer", "id"]);
 * assert.match(index.name, /^fs_ix_/);
 * ```
 */
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type SearchDeclaration } from "@flowstate/core";
 *
 * const notes: SearchDeclaration = { prefix: ["notes"], fields: ["title"] };
 * await using store = await openStore({ plugin: "memory", search: notes });
 * await store.set(["notes", "1"], { title: "Buy pears", body: "and figs" });
 * assert.equal((await store.search("pears")).length, 1);
 * assert.equal((await store.search("figs")).length, 0); // body is not indexed
 * ```
 */
export interface SearchDeclaration {
  /** Only entries strictly under this prefix. */
  prefix?: Key;
  /** Paths of the fields to index; a field holding an array or object contributes every string in it. */
  fields?: readonly (string | readonly string[])[];
}

/**
 * Options for {@linkcode Store.search}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type SearchOptions } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["notes", "1"], { title: "pears" });
 * await store.set(["todo", "1"], { title: "pears" });
 * const onlyNotes: SearchOptions = { prefix: ["notes"], limit: 5 };
 * assert.deepEqual((await store.search("pears", onlyNotes)).map((h) => h.key), [["notes", "1"]]);
 * ```
 */
export interface SearchOptions {
  /** Only entries under this prefix (default: the declared search prefix, or every entry). */
  prefix?: Key;
  /** Return at most this many hits (default 20). */
  limit?: number;
  /** Match only in these fields (default: every declared field). */
  fields?: readonly (string | readonly string[])[];
  /** Give up the search when it aborts (see {@linkcode GetOptions.signal}). */
  signal?: AbortSignal;
}

/**
 * One hit of {@linkcode Store.search}: the entry and its relevance (higher is better).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type SearchHit } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["notes", "1"], { title: "Ripe pears" });
 * const [hit]: SearchHit<{ title: string }>[] = await store.search("PEARS");
 * assert.equal(hit.value.title, "Ripe pears");
 * assert.equal(typeof hit.score, "number");
 * ```
 */
export interface SearchHit<T = JsonValue> extends Entry<T> {
  /** Relevance: comparable within one result list only. */
  score: number;
}

/**
 * How {@linkcode Store.query} answers a query, as {@linkcode Store.explain} reports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type QueryPlan } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const plan: QueryPlan = await store.explain({
 *   prefix: ["orders"],
 *   where: [{ path: "status", op: "eq", value: "open" }],
 * });
 * assert.equal(plan.index, null); // no index declared: every entry is read
 * assert.equal(plan.scan, true);
 * ```
 */
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ChangeActor, openStore } from "@flowstate/core";
 *
 * await using store = await openStore(
 *   { plugin: "memory", changes: { keep: "1d" } },
 *   { actor: "ops@example" },
 * );
 * await store.set(["a"], 1);
 * const actors: ChangeActor[] = [];
 * for await (const change of store.changes()) actors.push(change.by);
 * assert.deepEqual(actors.map((by) => by.actor), ["ops@example"]);
 * ```
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

/**
 * One entry of a store's change feed: one changed key of one commit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Change, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory", changes: { keep: "1d" } });
 * await store.set(["a"], 1);
 * await store.delete(["a"]);
 * const changes: Change[] = [];
 * for await (const change of store.changes()) changes.push(change);
 * assert.deepEqual(changes.map((c) => `${c.seq} ${c.op}`), ["1 set", "2 delete"]);
 * assert.equal(changes[1].previousVersion, changes[0].version);
 * ```
 */
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
  /**
   * `true` when an encrypted store read this `set`'s value from its feed in
   * the clear: it was written before encryption was turned on (the `rekey`
   * job seals it). Absent otherwise.
   */
  unsealed?: true;
}

/**
 * Which entries {@linkcode Store.changes} reads.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ChangesOptions, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory", changes: { keep: "1d" } });
 * await store.set(["orders", "1"], 1);
 * await store.set(["users", "1"], 1);
 * await store.set(["orders", "2"], 1);
 * const recentOrders: ChangesOptions = { prefix: ["orders"], since: 1 };
 * const seqs = [];
 * for await (const change of store.changes(recentOrders)) seqs.push(change.seq);
 * assert.deepEqual(seqs, [3]);
 * ```
 */
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

/**
 * Options for {@linkcode Store.watch}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type WatchOptions } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory", changes: { keep: "1d" } });
 * await store.set(["orders", "1"], "open");
 * const stop = new AbortController();
 * const options: WatchOptions = { since: 0, signal: stop.signal }; // from the start
 * for await (const change of store.watch([["orders"]], options)) {
 *   assert.deepEqual(change.key, ["orders", "1"]);
 *   stop.abort();
 * }
 * ```
 */
export interface WatchOptions {
  /** Start after this sequence number (exclusive; default: the feed's last one, live changes only). */
  since?: number;
  /** Stop watching when it aborts. */
  signal?: AbortSignal;
}

/**
 * How long a store keeps its change feed: a duration (`"30d"`), or an age
 * and/or a number of entries (whichever removes more). The `gc` job trims it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FeedKeep, openStore } from "@flowstate/core";
 *
 * const keep: FeedKeep = { age: "30d", count: 100_000 };
 * await using store = await openStore({ plugin: "memory", changes: { keep } });
 * assert.deepEqual((await store.feedInfo()).keep, keep);
 * ```
 */
export type FeedKeep = string | number | { age?: string | number; count?: number };

/**
 * What {@linkcode Store.feedInfo} reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FeedInfo, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory", changes: { keep: "7d" } });
 * await store.set(["a"], 1);
 * const info: FeedInfo = await store.feedInfo();
 * assert.equal(info.enabled, true);
 * assert.equal(info.lastSeq, 1);
 * ```
 */
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

/**
 * The interface every store exposes, whatever the backend.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type Store } from "@flowstate/core";
 *
 * // Every plugin gives the same interface: code written against `Store` runs on all of them.
 * async function bump(store: Store, key: string[]): Promise<number> {
 *   for (;;) {
 *     const current = await store.get<number>(key);
 *     const next = (current?.value ?? 0) + 1;
 *     const result = await store.set(key, next, { ifVersion: current?.version ?? null });
 *     if (result.ok) return next; // compare-and-set: retry if another writer won
 *   }
 * }
 *
 * await using store = await openStore({ plugin: "memory" });
 * assert.equal(await bump(store, ["flow", "counter", "count"]), 1);
 * assert.equal(await bump(store, ["flow", "counter", "count"]), 2);
 * assert.equal(await store.count(["flow"]), 1);
 * for await (const entry of store.list({ prefix: ["flow", "counter"] })) {
 *   assert.deepEqual(entry.key, ["flow", "counter", "count"]);
 * }
 * ```
 */
export interface Store extends AsyncDisposable {
  /** The store's name (from the config, or the plugin's name). */
  readonly name: string;
  /** The plugin that opened it. */
  readonly plugin: string;
  /** Where it lives (a file path, a URL without password, or `"memory"`). */
  readonly location: string;
  /** What the backend does natively. */
  readonly capabilities: Readonly<Capabilities>;
  /** Read one entry, or `null` if absent or expired (`signal`: see {@linkcode GetOptions}). */
  get<T = JsonValue>(key: Key, options?: GetOptions): Promise<Entry<T> | null>;
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
   * of `text`, best first. Words are runs of letters, digits and private-use
   * characters of the text in Unicode NFKC, lower-cased: `Café` finds
   * `cafe\u0301` (NFD), `ＡＢＣ` finds `abc` and `ﬁle` finds `file`. Which
   * entries match is the same on every backend; the order of hits by `score`
   * is the backend's.
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ClaimCompanion } from "@flowstate/core";
 *
 * // Read each candidate `["queue", id]` with `["runs", value.runId]` in one statement.
 * const companion: ClaimCompanion = { prefix: ["runs"], field: "runId" };
 * const candidate = { runId: "0mjuw3ms0abcdefghijk" };
 * const companionKey = [...companion.prefix, candidate[companion.field as "runId"]];
 * assert.deepEqual(companionKey, ["runs", "0mjuw3ms0abcdefghijk"]);
 * ```
 */
export interface ClaimCompanion {
  /** The key prefix of the companion entry. */
  prefix: Key;
  /** The property of the candidate's value that names the companion's last key part. */
  field: string;
}

/**
 * What {@linkcode Store.compact} did.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CompactResult, openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const result: CompactResult = await store.compact();
 * assert.equal(result.supported, false); // nothing to give back for a store in memory
 * ```
 */
export interface CompactResult {
  /** Whether the backend can compact at all. */
  supported: boolean;
  /** Size on disk before, in bytes (0 when unsupported). */
  bytesBefore: number;
  /** Size on disk after, in bytes (0 when unsupported). */
  bytesAfter: number;
}
