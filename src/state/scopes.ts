/**
 * Scoped state, as in Node-RED: `node`, `flow` and `global` views onto named
 * stores, each under its own key prefix. Views are prefix wrappers, never copies.
 *
 * Key layout inside a store:
 * - global: `["global", ...key]`
 * - flow:   `["flow", flowId, ...key]`
 * - node:   `["node", flowId, nodeId, ...key]`
 *
 * @module
 */
import { ConflictError } from "../errors.ts";
import { periodicYield } from "../_yield.ts";
import { withNodeActor } from "../store/actor.ts";
import { hasUniqueVersions, readsActor } from "../store/store.ts";
import type {
  Entry,
  JsonValue,
  Key,
  OrderBy,
  SearchOptions,
  Store,
  WhereClause,
} from "../store/types.ts";

/**
 * The three scopes a node sees: `node`, `flow` and `global`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type ScopeName } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const scope: ScopeName = "global";
 * const run = await rt.runFlow({
 *   id: "visits",
 *   nodes: [{ id: "n", type: "state.increment", with: { scope, key: "visits" } }],
 * });
 * assert.equal(run.nodes.n.output, 1);
 * assert.equal((await (await rt.storeFor(scope)).get(["global", "visits"]))?.value, 1);
 * ```
 */
export type ScopeName = "node" | "flow" | "global";

/** Every {@linkcode ScopeName}, widest first. */
export const SCOPES: readonly ["global", "flow", "node"] = ["global", "flow", "node"];

/**
 * A key inside a scope: one string, or a path of strings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type ScopeKey } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const key: ScopeKey = ["orders", "1"]; // or one string: "orders"
 * await rt.runFlow({
 *   id: "shop",
 *   nodes: [{ id: "put", type: "state.set", with: { scope: "flow", key, value: "open" } }],
 * });
 * assert.equal((await (await rt.store()).get(["flow", "shop", "orders", "1"]))?.value, "open");
 * ```
 */
export type ScopeKey = string | readonly string[];

/**
 * Options naming another store than the scope's default.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type ScopeCallOptions } from "@flowstate/core";
 *
 * await using rt = await openRuntime({
 *   config: { stores: { main: { plugin: "memory" }, cache: { plugin: "memory" } } },
 * });
 * const onCache: ScopeCallOptions = { store: "cache" }; // not the scope's default store
 * await rt.runFlow({
 *   id: "warm",
 *   nodes: [{ id: "n", type: "state.set", with: { scope: "global", key: "hot", value: 1, ...onCache } }],
 * });
 * assert.equal((await (await rt.store("cache")).get(["global", "hot"]))?.value, 1);
 * assert.equal(await (await rt.store("main")).get(["global", "hot"]), null);
 * ```
 */
export interface ScopeCallOptions {
  /** A configured store name; default: the store the config maps this scope to. */
  store?: string;
}

/**
 * A get/set/delete/increment/keys view onto one scope.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 *
 * // A custom node gets three StateViews: ctx.node, ctx.flow and ctx.global.
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/tally.ts`,
 *   `import { defineNode, type StateView } from "@flowstate/core";
 * import { z } from "zod";
 * async function tally(view: StateView, item: string) {
 *   await view.set(["last"], item);
 *   return await view.increment(["count", item]);
 * }
 * export default defineNode({
 *   optionsSchema: z.object({ item: z.string() }),
 *   async run(ctx, { item }) {
 *     const mine = await tally(ctx.flow, item);
 *     await tally(ctx.global, item);
 *     return { mine, keys: await ctx.flow.keys({ prefix: "count" }) };
 *   },
 * });
 * `,
 * );
 * {
 *   await using rt = await openRuntime({
 *     cwd: dir,
 *     config: { stores: { main: { plugin: "memory" } }, nodes: { trusted: ["./tally.ts"] } },
 *   });
 *   const run = await rt.runFlow({
 *     id: "fruit",
 *     nodes: [{ id: "t", type: "./tally.ts", with: { item: "pear" } }],
 *   });
 *   assert.deepEqual(run.nodes.t.output, { mine: 1, keys: [["count", "pear"]] });
 *   assert.equal((await (await rt.store()).get(["global", "last"]))?.value, "pear");
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface StateView {
  /** The scope. */
  readonly scope: ScopeName;
  /**
   * Read a value: `null` when absent, as {@linkcode Store.get} says absent
   * (a stored `null` reads as `null` too: use {@linkcode StateView.entry} to
   * tell them apart). Until 0.4 this was `undefined`.
   */
  get<T = JsonValue>(key: ScopeKey, options?: ScopeCallOptions): Promise<T | null>;
  /** Read the entry with its version (for compare-and-set). */
  entry<T = JsonValue>(key: ScopeKey, options?: ScopeCallOptions): Promise<Entry<T> | null>;
  /** Write a value. */
  set(
    key: ScopeKey,
    value: unknown,
    options?: ScopeCallOptions & { expireIn?: number },
  ): Promise<void>;
  /** Delete a value; `true` if it existed. */
  delete(key: ScopeKey, options?: ScopeCallOptions): Promise<boolean>;
  /** Add `by` (default 1) atomically and return the new value; safe under concurrent runs. */
  increment(key: ScopeKey, by?: number, options?: ScopeCallOptions): Promise<number>;
  /** Keys in this scope (one-element keys as strings), in key order. */
  keys(options?: ScopeCallOptions & { prefix?: ScopeKey; limit?: number }): Promise<ScopeKey[]>;
  /** Entries in this scope, in key order. */
  entries<T = JsonValue>(
    options?: ScopeCallOptions & { prefix?: ScopeKey; limit?: number },
  ): Promise<{ key: ScopeKey; value: T }[]>;
  /** Filter and sort the values of this scope (using the store's declared indexes). */
  query?<T = JsonValue>(options?: ScopeQueryOptions): Promise<{ key: ScopeKey; value: T }[]>;
  /** Full-text search in this scope, best first (see {@linkcode Store.search}). */
  search?<T = JsonValue>(
    text: string,
    options?: ScopeSearchOptions,
  ): Promise<{ key: ScopeKey; value: T; score: number }[]>;
}

/**
 * Options of {@linkcode StateView.query}: a {@linkcode Query} whose prefix is relative to the scope.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type ScopeQueryOptions } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const main = await rt.store();
 * await main.set(["global", "orders", "1"], { status: "open", total: 5 });
 * await main.set(["global", "orders", "2"], { status: "paid", total: 9 });
 * await main.set(["global", "orders", "3"], { status: "open", total: 7 });
 * // ctx.global.query(options) in a custom node; the same fields in a state.query node
 * const options: ScopeQueryOptions = {
 *   prefix: "orders",
 *   where: [{ path: "status", op: "eq", value: "open" }],
 *   orderBy: { path: "total", direction: "desc" },
 * };
 * const run = await rt.runFlow({
 *   id: "report",
 *   nodes: [{ id: "open", type: "state.query", with: { scope: "global", ...options } }],
 * });
 * const found = run.nodes.open.output as { key: string[] }[];
 * assert.deepEqual(found.map((e) => e.key), [["orders", "3"], ["orders", "1"]]);
 * ```
 */
export interface ScopeQueryOptions extends ScopeCallOptions {
  /** Only keys under this key of the scope (default: the whole scope). */
  prefix?: ScopeKey;
  /** All clauses must match. */
  where?: readonly WhereClause[];
  /** Sort keys (default: key order). */
  orderBy?: OrderBy | readonly OrderBy[];
  /** At most this many. */
  limit?: number;
  /** Skip this many first. */
  offset?: number;
}

/**
 * Options of {@linkcode StateView.search}: {@linkcode SearchOptions} with a prefix relative to the scope.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type ScopeSearchOptions } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const main = await rt.store();
 * await main.set(["global", "notes", "1"], { title: "Quarterly report" });
 * await main.set(["global", "todo", "1"], { title: "Write the report" });
 * const options: ScopeSearchOptions = { prefix: "notes", limit: 5 };
 * const run = await rt.runFlow({
 *   id: "find",
 *   nodes: [{ id: "hits", type: "state.search", with: { scope: "global", text: "report", ...options } }],
 * });
 * const hits = run.nodes.hits.output as { key: string[] }[];
 * assert.deepEqual(hits.map((h) => h.key), [["notes", "1"]]);
 * ```
 */
export interface ScopeSearchOptions
  extends ScopeCallOptions, Omit<SearchOptions, "prefix" | "signal"> {
  /** Only keys under this key of the scope (default: the whole scope). */
  prefix?: ScopeKey;
}

/** A committed write to a store, as told to a {@linkcode StateChangeSink}. */
export interface StateChange {
  /** The store's name. */
  store: string;
  /** The whole key in the store (scope prefix included). */
  key: Key;
  /** What the write did. */
  op: "set" | "delete";
  /** The entry's new version, after a `set`. */
  version?: string;
  /** The run that wrote it. */
  runId?: string;
  /** The flow of that run. */
  flowId?: string;
  /** The node that wrote it. */
  nodeId?: string;
}

/** Where committed writes made through state views are told (the runtime's event stream). */
export interface StateChangeSink {
  /** Whether anyone listens: writes are not reported otherwise. */
  readonly listening: boolean;
  /** Report one committed write. */
  changed(change: StateChange): void;
}

/** Finds stores: the one behind each scope, and any by name. */
export interface StoreResolver {
  /** The store a scope maps to. */
  forScope(scope: ScopeName): Promise<Store>;
  /**
   * The store a scope maps to when it is open already (what `forScope` would
   * resolve), else `undefined`: a view then takes it without waiting a turn
   * of the microtask queue for `forScope`'s promise.
   */
  opened?(scope: ScopeName): Store | undefined;
  /** A store by configured name (a clear error for an unknown one). */
  byName(name: string): Promise<Store>;
  /** Told of every committed write made through the views of a run (none by default). */
  stateChanges?: StateChangeSink;
}

/**
 * Told of what a view read and wrote (see {@linkcode createStateView}): keys
 * are within the scope, `store` is set only when the call named a store.
 */
export interface StateObserver {
  /** A read returned: one key, or a listing under `key` (`prefix`). */
  read(scope: ScopeName, key: readonly string[], store: string | undefined, prefix: boolean): void;
  /**
   * A write committed: `key` within the scope, `change.key` the whole key in
   * the store `change.store` (`op: "delete"` only when the entry existed).
   */
  wrote(scope: ScopeName, key: readonly string[], store: string | undefined, change: {
    store: string;
    key: Key;
    op: "set" | "delete";
    version?: string;
  }): void;
  /**
   * The node whose writes these are, for change feeds: when set, each write
   * runs with it as the actor (as `withActor` would set it) on a store that
   * may record one. The executor sets it for the built-in state nodes, which
   * it runs without an actor context of their own (that context costs every
   * `await` of the node a context switch).
   */
  readonly actor?: { runId: string; flowId: string; nodeId: string };
}

/** The key prefix of a scope. */
export function scopePrefix(scope: ScopeName, flowId: string, nodeId?: string): Key {
  switch (scope) {
    case "global":
      return ["global"];
    case "flow":
      return ["flow", flowId];
    case "node":
      if (nodeId === undefined) throw new TypeError("Cannot use node scope outside a node");
      return ["node", flowId, nodeId];
  }
}

/**
 * `key` as an array of its parts (a copy). The error names what was done
 * (`"increment"`) in which scope: made only when there is one (a message
 * made per call cost each call a string).
 */
function toParts(key: ScopeKey, verb: string, scope: ScopeName): string[] {
  if (typeof key === "string") {
    if (key === "") {
      throw new TypeError(`Cannot ${verb} ${scope} state: a state key cannot be empty`);
    }
    return [key];
  }
  if (Array.isArray(key) && key.length > 0 && key.every((k) => typeof k === "string")) {
    return [...key];
  }
  throw new TypeError(
    `Cannot ${verb} ${scope} state: a state key is a non-empty string or array of strings (got ${
      JSON.stringify(key)
    })`,
  );
}

function fromParts(parts: readonly string[]): ScopeKey {
  return parts.length === 1 ? parts[0] : [...parts];
}

/** Options for {@linkcode increment}. */
export interface IncrementOptions {
  /** Give up after this many conflicting attempts (default 200). */
  maxAttempts?: number;
  /** Give each read and write this signal (see `GetOptions.signal`). */
  signal?: AbortSignal;
}

/**
 * Add `by` to the number at `key` with compare-and-set, retrying on conflict
 * with jittered backoff. An absent key counts as 0; a non-number is a TypeError.
 */
export async function increment(
  store: Store,
  key: Key,
  by = 1,
  options: IncrementOptions = {},
): Promise<number> {
  return (await incrementEntry(store, key, by, options)).value;
}

/** The last increments this process made in one store, by key, least recent first. */
type LastIncrements = Map<string, { value: number; version: string }> & {
  /** The key incremented last. */
  newest?: string;
};

/** The last increments this process made, per store, by key: the value and version written. */
const lastIncrements = new WeakMap<Store, LastIncrements>();

function newIncrements(): LastIncrements {
  return new Map();
}
/** Keys remembered per store (the least recently incremented are forgotten first). */
const LAST_INCREMENTS = 1024;

/** Remember that this process wrote `value` with `version` at the key `id` of `store`. */
function remember(
  store: Store,
  known: LastIncrements,
  id: string,
  value: number,
  version: string,
): void {
  if (known.size === 0) lastIncrements.set(store, known);
  const entry = known.get(id);
  if (entry !== undefined && known.newest === id) {
    // Already the most recent (a key incremented over and over): no reordering.
    entry.value = value;
    entry.version = version;
    return;
  }
  known.delete(id);
  known.set(id, { value, version });
  known.newest = id;
  if (known.size > LAST_INCREMENTS) known.delete(known.keys().next().value!);
}

/**
 * {@linkcode increment}, also returning the version of the entry it wrote.
 *
 * On a store whose versions are unique (every store the core opens), the
 * value and version of the last increment of each key are remembered: while
 * the entry still has that version it still holds that value, so the next
 * increment is one compare-and-set against it (one conditional statement on
 * sqlite), without reading first. When someone else wrote meanwhile the
 * compare-and-set fails and the increment reads and retries as usual.
 */
/** `value + by`, refused where whole numbers stop counting exactly (past 2^53 - 1). */
function checkedSum(key: Key, value: number, by: number): number {
  const next = value + by;
  if (Number.isInteger(value) && Number.isInteger(by) && !Number.isSafeInteger(next)) {
    throw new RangeError(
      `Cannot increment ${JSON.stringify(key)}: ${value} + ${by} is past ${
        next > 0 ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER
      } (Number.${
        next > 0 ? "MAX" : "MIN"
      }_SAFE_INTEGER), where numbers stop counting exactly; reset the count or keep it as a string`,
    );
  }
  return next;
}

export async function incrementEntry(
  store: Store,
  key: Key,
  by = 1,
  options: IncrementOptions = {},
): Promise<{ value: number; version: string }> {
  if (typeof by !== "number" || !Number.isFinite(by)) {
    throw new TypeError(`Cannot increment ${JSON.stringify(key)}: by must be a finite number`);
  }
  const known = hasUniqueVersions(store) ? lastIncrements.get(store) ?? newIncrements() : undefined;
  const id = known === undefined ? "" : JSON.stringify(key);
  const last = known?.get(id);
  const signal = options.signal;
  const read = signal === undefined ? undefined : { signal };
  if (last !== undefined) {
    const next = checkedSum(key, last.value, by);
    const result = await store.set(key, next, { ifVersion: last.version, signal });
    if (result.ok) {
      remember(store, known!, id, next, result.version);
      return { value: next, version: result.version };
    }
    known!.delete(id); // written by someone else since: read it
  }
  const max = options.maxAttempts ?? 200;
  for (let attempt = 1; attempt <= max; attempt++) {
    const current = await store.get(key, read);
    const value = current?.value ?? 0;
    if (typeof value !== "number") {
      throw new TypeError(
        `Cannot increment ${JSON.stringify(key)}: it holds ${
          JSON.stringify(value).slice(0, 60)
        }, not a number`,
      );
    }
    const next = checkedSum(key, value, by);
    const result = await store.set(key, next, { ifVersion: current?.version ?? null, signal });
    if (result.ok) {
      if (known !== undefined) remember(store, known, id, next, result.version);
      return { value: next, version: result.version };
    }
    const wait = Math.min(50, attempt) * Math.random();
    if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
  }
  throw new ConflictError(
    `Cannot increment ${JSON.stringify(key)}: ${max} attempts lost to concurrent writers`,
  );
}

/** An entry's value, or `null` for none (a view's `get` is its `entry`'s value). */
function valueOf<T>(entry: Entry<T> | null): T | null {
  return entry === null ? null : entry.value;
}

/** The turns state views give the event loop, for the whole process (see `ScopeView.#breathe`). */
const viewBreath = periodicYield(50);

/**
 * What guards the calls of a view (a node attempt's fence, `flow/_attempt.ts`):
 * a call is refused once it says so, and every call it lets through is
 * counted from its start to its end.
 */
export interface ViewGuard {
  /** The error a call made now fails with, or `undefined` while calls may be made. */
  refusal(): Error | undefined;
  /**
   * The error a write that began fails with just before it commits, or `undefined`
   * (default: none; see {@linkcode ViewGuard.refusal} for a call that begins).
   */
  commitRefusal?(): Error | undefined;
  /**
   * Aborted when the calls in flight are to give up (a node attempt was
   * stopped: cancelled, or past its timeout): given to each call on a store
   * that can end a call that waits (`capabilities.abort`). Optional: without
   * it, calls run to their end.
   */
  stopSignal?(): AbortSignal;
  /** A call begins: it is in flight until its {@linkcode ViewGuard.leave}. */
  enter(): void;
  /** A call that began has settled (returned or failed). */
  leave(): void;
}

/**
 * Make the view of one scope for a flow (and node). With an `observer`, every
 * read that returns and every write that commits is told to it (what a node
 * attempt read and wrote, in its `node.end` event); with a `guard`, every
 * call goes through it.
 *
 * The view is a class instance: its methods are on its prototype, not
 * closures made per view (a node attempt makes its views once per run of the
 * node, so on a 10k-node flow the closures were a visible part of the run's
 * time and garbage). Its methods read `this`: code that takes them out of the
 * view (`const { get } = view`) must get them from {@linkcode boundView}.
 */
export function createStateView(
  resolver: StoreResolver,
  scope: ScopeName,
  flowId: string,
  nodeId?: string,
  observer?: StateObserver,
  guard?: ViewGuard,
): StateView {
  return new ScopeView(resolver, scope, scopePrefix(scope, flowId, nodeId), observer, guard);
}

/** `view`, with each method a function of its own (one may take it out of the object). */
export function boundView(view: StateView): StateView {
  return {
    scope: view.scope,
    get: (key, options) => view.get(key, options),
    entry: (key, options) => view.entry(key, options),
    set: (key, value, options) => view.set(key, value, options),
    delete: (key, options) => view.delete(key, options),
    increment: (key, by, options) => view.increment(key, by, options),
    keys: (options) => view.keys(options),
    entries: (options) => view.entries(options),
    query: view.query && ((options) => view.query!(options)),
    search: view.search && ((text, options) => view.search!(text, options)),
  };
}

type ListOptions = ScopeCallOptions & { prefix?: ScopeKey; limit?: number };

/**
 * See {@linkcode createStateView}. Each public method asks the guard, then
 * starts its work (a private async method, which tells the guard when it
 * ends, in its `finally`): no promise and no callback per call to follow
 * its end, as `AttemptFence.track` makes.
 */
class ScopeView implements StateView {
  readonly scope: ScopeName;
  readonly #resolver: StoreResolver;
  readonly #prefix: Key;
  readonly #observer: StateObserver | undefined;
  readonly #guard: ViewGuard | undefined;

  constructor(
    resolver: StoreResolver,
    scope: ScopeName,
    prefix: Key,
    observer: StateObserver | undefined,
    guard: ViewGuard | undefined,
  ) {
    this.scope = scope;
    this.#resolver = resolver;
    this.#prefix = prefix;
    this.#observer = observer;
    this.#guard = guard;
  }

  /**
   * A call refused by the guard (the attempt is over), else `undefined`, the
   * call counted as begun: checked before the work starts, and the work ends
   * with {@linkcode ScopeView.#done}.
   */
  #refused(): Promise<never> | undefined {
    const guard = this.#guard;
    if (guard === undefined) return undefined;
    const refused = guard.refusal();
    if (refused !== undefined) return Promise.reject(refused);
    guard.enter();
    return undefined;
  }

  /**
   * Throw if the guard refuses calls now: asked again just before a write
   * commits, after the waits since the call began (a turn of the event loop,
   * opening the store), during which the process may have been paused and
   * the attempt ended (its run's claim lapsed, say).
   */
  #mayWrite(): void {
    const refused = this.#guard?.commitRefusal?.();
    if (refused !== undefined) throw refused;
  }

  /** The call's work has ended (in its `finally`). */
  #done(): void {
    this.#guard?.leave();
  }

  /**
   * Every ~50 ms of calls, a turn of the event loop: calls to a synchronous
   * backend (memory, sqlite) never yield on their own, so a node looping over
   * them would keep its timeout's timer and Ctrl-C from firing until it
   * returned. A call that began goes on after its turn (the executor waits
   * for the calls in flight, as always); an attempt stopped meanwhile has its
   * next call refused.
   */
  #breathe(): Promise<void> | undefined {
    return viewBreath();
  }

  get<T>(key: ScopeKey, options?: ScopeCallOptions): Promise<T | null> {
    return this.#refused() ?? this.#entry<T>(key, options).then(valueOf);
  }

  entry<T>(key: ScopeKey, options?: ScopeCallOptions): Promise<Entry<T> | null> {
    return this.#refused() ?? this.#entry<T>(key, options);
  }

  set(
    key: ScopeKey,
    value: unknown,
    options?: ScopeCallOptions & { expireIn?: number },
  ): Promise<void> {
    return this.#refused() ?? this.#set(key, value, options);
  }

  delete(key: ScopeKey, options?: ScopeCallOptions): Promise<boolean> {
    return this.#refused() ?? this.#delete(key, options);
  }

  increment(key: ScopeKey, by?: number, options?: ScopeCallOptions): Promise<number> {
    return this.#refused() ?? this.#increment(key, by, options);
  }

  keys(options?: ListOptions): Promise<ScopeKey[]> {
    return this.#refused() ?? this.#keys(options);
  }

  entries<T>(options?: ListOptions): Promise<{ key: ScopeKey; value: T }[]> {
    return this.#refused() ?? this.#entries<T>(options);
  }

  query<T>(options?: ScopeQueryOptions): Promise<{ key: ScopeKey; value: T }[]> {
    return this.#refused() ?? this.#query<T>(options);
  }

  search<T>(
    text: string,
    options?: ScopeSearchOptions,
  ): Promise<{ key: ScopeKey; value: T; score: number }[]> {
    return this.#refused() ?? this.#search<T>(text, options);
  }

  /**
   * The guard's stop signal as a call's options, for a store that can end a
   * call that waits (see {@linkcode ViewGuard.stopSignal}); else `undefined`
   * (no signal is made for the other stores).
   */
  #stop(store: Store): { signal: AbortSignal } | undefined {
    const guard = this.#guard;
    if (guard?.stopSignal === undefined || store.capabilities.abort !== true) return undefined;
    return { signal: guard.stopSignal() };
  }

  /** The store of the call, if it can be had without waiting (see {@linkcode StoreResolver.opened}). */
  #openStore(options: ScopeCallOptions | undefined): Store | undefined {
    return options?.store === undefined ? this.#resolver.opened?.(this.scope) : undefined;
  }

  #storeFor(options: ScopeCallOptions | undefined): Promise<Store> {
    return options?.store === undefined
      ? this.#resolver.forScope(this.scope)
      : this.#resolver.byName(options.store);
  }

  #full(parts: readonly string[]): Key {
    // Spread, not `concat`: ~60 ns against ~220 ns for these short arrays, once per call.
    return [...this.#prefix, ...parts];
  }

  /** `write()`, as the observer's node on a store that may record who writes. */
  #asActor<T>(store: Store, write: () => Promise<T>): Promise<T> {
    // The store first: the observer's actor may be made when asked for.
    const actor = readsActor(store) ? this.#observer?.actor : undefined;
    return actor !== undefined
      ? withNodeActor(actor.runId, actor.flowId, actor.nodeId, write)
      : write();
  }

  async #list(options: ListOptions | undefined): Promise<Entry[]> {
    const store = this.#openStore(options) ?? await this.#storeFor(options);
    const parts = this.#parts(options?.prefix, "list");
    const out: Entry[] = [];
    const stop = this.#stop(store);
    const list = store.list(
      stop === undefined
        ? { prefix: this.#full(parts), limit: options?.limit }
        : { prefix: this.#full(parts), limit: options?.limit, signal: stop.signal },
    );
    for await (const e of list) out.push(e);
    this.#observer?.read(this.scope, parts, options?.store, true);
    return out;
  }

  async #entry<T>(key: ScopeKey, options?: ScopeCallOptions): Promise<Entry<T> | null> {
    try {
      const breath = this.#breathe();
      if (breath !== undefined) await breath;
      const store = this.#openStore(options) ?? await this.#storeFor(options);
      const parts = toParts(key, "get", this.scope);
      const e = await store.get<T>(this.#full(parts), this.#stop(store));
      this.#observer?.read(this.scope, parts, options?.store, false);
      return e;
    } finally {
      this.#done();
    }
  }

  async #set(
    key: ScopeKey,
    value: unknown,
    options?: ScopeCallOptions & { expireIn?: number },
  ): Promise<void> {
    try {
      const breath = this.#breathe();
      if (breath !== undefined) await breath;
      const store = this.#openStore(options) ?? await this.#storeFor(options);
      const parts = toParts(key, "set", this.scope);
      const k = this.#full(parts);
      const stop = this.#stop(store);
      const setOptions = options?.expireIn === undefined
        ? stop
        : { expireIn: options.expireIn, signal: stop?.signal };
      this.#mayWrite();
      const result = await this.#asActor(store, () => store.set(k, value, setOptions));
      const observer = this.#observer;
      if (observer && result.ok) {
        observer.wrote(this.scope, parts, options?.store, {
          store: store.name,
          key: k,
          op: "set",
          version: result.version,
        });
      }
    } finally {
      this.#done();
    }
  }

  async #delete(key: ScopeKey, options?: ScopeCallOptions): Promise<boolean> {
    try {
      const breath = this.#breathe();
      if (breath !== undefined) await breath;
      const store = this.#openStore(options) ?? await this.#storeFor(options);
      const parts = toParts(key, "delete", this.scope);
      const k = this.#full(parts);
      const stop = this.#stop(store);
      const existed = (await store.get(k, stop)) !== null;
      this.#mayWrite();
      await this.#asActor(store, () => store.delete(k, stop));
      const observer = this.#observer;
      if (observer && existed) {
        observer.wrote(this.scope, parts, options?.store, {
          store: store.name,
          key: k,
          op: "delete",
        });
      }
      return existed;
    } finally {
      this.#done();
    }
  }

  async #increment(key: ScopeKey, by = 1, options?: ScopeCallOptions): Promise<number> {
    try {
      const breath = this.#breathe();
      if (breath !== undefined) await breath;
      const store = this.#openStore(options) ?? await this.#storeFor(options);
      const parts = toParts(key, "increment", this.scope);
      const k = this.#full(parts);
      this.#mayWrite();
      const observer = this.#observer;
      const stop = this.#stop(store);
      if (!observer) return await increment(store, k, by, stop);
      // The store first: the observer's actor may be made when asked for.
      const actor = readsActor(store) ? observer.actor : undefined;
      // The closure `withNodeActor` needs is made only where an actor is recorded.
      const { value, version } = actor !== undefined
        ? await withNodeActor(
          actor.runId,
          actor.flowId,
          actor.nodeId,
          () => incrementEntry(store, k, by, stop),
        )
        : await incrementEntry(store, k, by, stop);
      observer.read(this.scope, parts, options?.store, false);
      observer.wrote(this.scope, parts, options?.store, {
        store: store.name,
        key: k,
        op: "set",
        version,
      });
      return value;
    } finally {
      this.#done();
    }
  }

  async #keys(options?: ListOptions): Promise<ScopeKey[]> {
    try {
      const breath = this.#breathe();
      if (breath !== undefined) await breath;
      const length = this.#prefix.length;
      return (await this.#list(options)).map((e) => fromParts(e.key.slice(length)));
    } finally {
      this.#done();
    }
  }

  async #entries<T>(options?: ListOptions): Promise<{ key: ScopeKey; value: T }[]> {
    try {
      const breath = this.#breathe();
      if (breath !== undefined) await breath;
      const length = this.#prefix.length;
      return (await this.#list(options)).map((e) => ({
        key: fromParts(e.key.slice(length)),
        value: e.value as T,
      }));
    } finally {
      this.#done();
    }
  }

  /** The parts of `prefix` under this scope's own (none: the whole scope); `verb` names the call. */
  #parts(prefix: ScopeKey | undefined, verb: string): string[] {
    return prefix === undefined ? [] : toParts(prefix, verb, this.scope);
  }

  async #query<T>(options: ScopeQueryOptions = {}): Promise<{ key: ScopeKey; value: T }[]> {
    try {
      const breath = this.#breathe();
      if (breath !== undefined) await breath;
      const store = this.#openStore(options) ?? await this.#storeFor(options);
      const prefix = this.#prefix;
      const parts = this.#parts(options.prefix, "query");
      const entries = await store.query<T>({
        prefix: this.#full(parts),
        where: options.where,
        orderBy: options.orderBy,
        limit: options.limit,
        offset: options.offset,
        signal: this.#stop(store)?.signal,
      });
      // A query reads what is under its prefix, as a list does.
      this.#observer?.read(this.scope, parts, options.store, true);
      return entries.map((e) => ({ key: fromParts(e.key.slice(prefix.length)), value: e.value }));
    } finally {
      this.#done();
    }
  }

  async #search<T>(
    text: string,
    options: ScopeSearchOptions = {},
  ): Promise<{ key: ScopeKey; value: T; score: number }[]> {
    try {
      const breath = this.#breathe();
      if (breath !== undefined) await breath;
      const store = this.#openStore(options) ?? await this.#storeFor(options);
      const prefix = this.#prefix;
      const parts = this.#parts(options.prefix, "search");
      const hits = await store.search<T>(text, {
        prefix: this.#full(parts),
        limit: options.limit,
        fields: options.fields,
        signal: this.#stop(store)?.signal,
      });
      this.#observer?.read(this.scope, parts, options.store, true);
      return hits.map((h) => ({
        key: fromParts(h.key.slice(prefix.length)),
        value: h.value,
        score: h.score,
      }));
    } finally {
      this.#done();
    }
  }
}
