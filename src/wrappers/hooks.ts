/**
 * Hooks around the operations of any {@linkcode Store}: validate or
 * authorize before a write, log or measure after it, report errors.
 *
 * @module
 */
import { ForwardingBase } from "./_forwarding.ts";
import { StoreClosedError } from "../errors.ts";
import { fieldNames, suggest } from "../_suggest.ts";
import { assertKey } from "../store/keys.ts";
import { checkDeleteArgs, checkSetArgs } from "../store/write_args.ts";
import type {
  AtomicCheck,
  AtomicOperation,
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
import { listIterator } from "../store/list_iterator.ts";
import { ENCRYPTION, type EncryptionHandle, encryptionOf } from "../store/sealed.ts";

/**
 * The operation an error came from, as passed to {@linkcode StoreHooks.onError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type HookOperation, withHooks } from "@flowstate/core/hooks";
 *
 * const base = await openStore({ plugin: "memory" });
 * const failed: HookOperation[] = [];
 * const store = withHooks(base, { onError: (operation) => void failed.push(operation) });
 * await base.close(); // the store behind fails from now on
 * await assert.rejects(() => store.get(["a"]));
 * assert.deepEqual(failed, ["get"]);
 * ```
 */
export type HookOperation =
  | "get"
  | "getMany"
  | "set"
  | "delete"
  | "commit"
  | "list"
  | "count"
  | "query"
  | "explain"
  | "search"
  | "clear"
  | "purgeExpired"
  | "compact"
  | "close";

/**
 * One write of an atomic operation, as passed to {@linkcode StoreHooks.beforeCommit}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type HookMutation, withHooks } from "@flowstate/core/hooks";
 *
 * let seen: readonly HookMutation[] = [];
 * await using store = withHooks(await openStore({ plugin: "memory" }), {
 *   beforeCommit: (mutations) => {
 *     seen = mutations;
 *   },
 * });
 * await store.atomic().set(["a"], 1).delete(["b"]).clear(["tmp"]).commit();
 * assert.deepEqual(seen.map((m) => m.type), ["set", "delete", "clear"]);
 * ```
 */
export type HookMutation =
  | { type: "set"; key: Key; value: unknown; expireIn?: number }
  | { type: "delete"; key: Key }
  | { type: "clear"; prefix: Key; bounds?: KeyBounds };

/**
 * Functions called around a store's operations by {@linkcode withHooks}.
 * Every hook is optional and may return a promise, which is awaited.
 *
 * Hooks receive the caller's arguments (and the caller's result objects):
 * treat them as read-only. A hook that needs to read the store should use
 * the store it wrapped, not the hooked one, or it calls itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { type StoreHooks, withHooks } from "@flowstate/core/hooks";
 *
 * const audit: string[] = [];
 * const hooks: StoreHooks = {
 *   beforeSet(key, value) {
 *     if (key[0] === "orders" && typeof value !== "object") throw new TypeError("an order is an object");
 *   },
 *   afterSet: (key, result) => void audit.push(`set ${key.join("/")} ${result.ok}`),
 * };
 * await using store = withHooks(await openStore({ plugin: "memory" }), hooks);
 * await store.set(["orders", "1"], { total: 5 });
 * await assert.rejects(() => store.set(["orders", "2"], 5), TypeError);
 * assert.deepEqual(audit, ["set orders/1 true"]);
 * ```
 */
export interface StoreHooks {
  /** Before a `get` (and before each key of a `getMany`); throw to refuse the read. */
  beforeGet?(key: Key): void | Promise<void>;
  /** After a `get` (and after each key of a `getMany`), with what the caller receives. */
  afterGet?(key: Key, entry: Entry | null): void | Promise<void>;
  /** Before a `set`; throw to refuse it (nothing is written). */
  beforeSet?(key: Key, value: unknown, options: SetOptions): void | Promise<void>;
  /** After a `set`, with its result; also called when `ifVersion` made it a conflict. */
  afterSet?(key: Key, result: CommitResult): void | Promise<void>;
  /** Before a `delete`; throw to refuse it (nothing is deleted). */
  beforeDelete?(key: Key, options: DeleteOptions): void | Promise<void>;
  /** After a `delete`; `deleted` is `false` only when an `ifVersion` check failed. */
  afterDelete?(key: Key, deleted: boolean): void | Promise<void>;
  /**
   * Before an atomic operation commits, with its writes and checks in the
   * order they were added; throw to refuse it (nothing is written). Atomic
   * writes do not call the set/delete hooks, so validate them here too.
   */
  beforeCommit?(
    mutations: readonly HookMutation[],
    checks: readonly AtomicCheck[],
  ): void | Promise<void>;
  /** After an atomic operation committed or reported a conflict. */
  afterCommit?(result: CommitResult, mutations: readonly HookMutation[]): void | Promise<void>;
  /**
   * When the wrapped store failed (not when a hook threw). Called before the
   * caller's promise rejects with the same error; `key` is set for
   * single-key operations.
   */
  onError?(operation: HookOperation, error: unknown, key?: Key): void | Promise<void>;
}

/** Every hook {@linkcode StoreHooks} has. */
const HOOK_NAMES: readonly string[] = fieldNames<StoreHooks>()(
  ["beforeGet", "afterGet", "beforeSet", "afterSet", "beforeDelete", "afterDelete"],
  ["beforeCommit", "afterCommit", "onError"],
);

/**
 * Wrap any store so that `hooks` run around its operations. The result is a
 * {@linkcode Store} that otherwise behaves exactly as `store` does.
 *
 * Ordering guarantees, for each call:
 * 1. Arguments are checked first (an invalid key throws before any hook).
 * 2. The `before*` hook runs and is awaited. If it throws (or rejects), the
 *    operation is not performed, `onError` is not called, and the call
 *    rejects with the hook's error — this is how to add validation or
 *    authorization.
 * 3. The store operation runs. If it fails, `onError` runs and is awaited,
 *    then the call rejects with the store's error (or with `onError`'s own
 *    error, if it throws).
 * 4. The `after*` hook runs and is awaited before the call resolves. If it
 *    throws, the call rejects with that error although the operation took
 *    effect.
 *
 * `getMany` runs `beforeGet` for each key in order, one store `getMany`, then
 * `afterGet` for each key in order. `atomic()` calls `beforeCommit` and
 * `afterCommit` at `commit()`, never the set/delete hooks. `list`, `count`,
 * `query`, `explain`, `search`, `clear` and `close` have no before/after hooks (so they can read
 * or delete without `beforeGet`/`beforeDelete`); their store errors, and
 * errors while iterating a `list`, do go to `onError`. Concurrent calls are
 * not serialized: hooks of different calls may interleave.
 *
 * Composition: `withHooks(cached(store), hooks)` sees every call, cache hits
 * included; `cached(withHooks(store, hooks))` sees only what reaches the
 * store — cache misses, and write-behind flushes as atomic commits.
 *
 * `hooks` may be a class instance that keeps its own state and helpers.
 * A function of it (own or inherited) that is not a hook but is spelt close
 * to one (`befoerSet`) throws a `TypeError` naming the hook it resembles: it
 * would otherwise never run.
 *
 * @example Refuse writes outside a prefix, and count reads
 * ```ts
 * import { openStore } from "@flowstate/core";
 * import { withHooks } from "@flowstate/core/hooks";
 * import assert from "node:assert/strict";
 *
 * let reads = 0;
 * await using store = withHooks(await openStore({ plugin: "memory" }), {
 *   beforeSet(key) {
 *     if (key[0] !== "flow") throw new Error(`Cannot set ${key.join("/")}: outside "flow"`);
 *   },
 *   afterGet() {
 *     reads++;
 *   },
 * });
 * await store.set(["flow", "count"], 1);
 * const refused = await store.set(["other"], 1).then(() => false, (err) => err instanceof Error);
 * assert.equal(refused, true);
 * assert.equal(await store.get(["other"]), null); // nothing was written
 * assert.equal(reads, 1);
 * ```
 */
export function withHooks(store: Store, hooks: StoreHooks): Store {
  const what = "Cannot add hooks";
  if (
    typeof store !== "object" || store === null || typeof store.get !== "function" ||
    typeof store.atomic !== "function"
  ) {
    throw new TypeError(`${what}: expected a Store (as returned by openStore())`);
  }
  if (typeof hooks !== "object" || hooks === null) {
    throw new TypeError(`${what}: hooks must be an object of optional functions`);
  }
  // A misspelt hook (`befoerSet`) would never run: an authorization that silently is not there.
  assertNoMisspeltHook(hooks, what);
  for (const name of HOOK_NAMES) {
    const hook = (hooks as Record<string, unknown>)[name];
    if (hook !== undefined && typeof hook !== "function") {
      throw new TypeError(`${what}: hook ${name} must be a function (got ${typeof hook})`);
    }
  }
  return new HookedStore(store, hooks);
}

/**
 * Refuse a function of `hooks` (own, or inherited from its class, up to
 * `Object.prototype`) that is not a hook but is spelt close to one: a
 * misspelt hook, written as a field or as a method. A hooks object may keep
 * its own state and helper methods: data fields, and functions whose names
 * are far from every hook name, are left alone.
 */
function assertNoMisspeltHook(hooks: object, what: string): void {
  for (
    let level: object | null = hooks;
    level !== null && level !== Object.prototype;
    level = Object.getPrototypeOf(level)
  ) {
    for (const name of Object.getOwnPropertyNames(level)) {
      if (name === "constructor" || HOOK_NAMES.includes(name)) continue;
      // The descriptor, not `hooks[name]`: a getter is state, and is not called here.
      if (typeof Object.getOwnPropertyDescriptor(level, name)?.value !== "function") continue;
      const hook = suggest(name, HOOK_NAMES);
      if (hook === undefined) continue;
      throw new TypeError(
        `${what}: unknown hook ${JSON.stringify(name)} (did you mean "${hook}"?); the hooks are ${
          HOOK_NAMES.join(", ")
        }`,
      );
    }
  }
}

class HookedStore extends ForwardingBase implements Store {
  readonly #store: Store;
  readonly #hooks: StoreHooks;
  #closed = false;

  constructor(store: Store, hooks: StoreHooks) {
    super(store);
    this.#store = store;
    this.#hooks = hooks;
  }

  /**
   * An encrypted store's handle, forwarded: a backup of a hooked encrypted
   * store reads its sealed values (without calling the read hooks), so that
   * it never writes them in the clear.
   */
  get [ENCRYPTION](): EncryptionHandle | undefined {
    return encryptionOf(this.#store);
  }

  #assertOpen(what: string): void {
    if (this.#closed) {
      throw new StoreClosedError(`${what}: store "${this.name}" is closed`);
    }
  }

  /** Run a store operation; on failure, report it to `onError` and rethrow. */
  async #run<R>(operation: HookOperation, key: Key | undefined, run: () => Promise<R>): Promise<R> {
    try {
      return await run();
    } catch (error) {
      await this.#hooks.onError?.(operation, error, key);
      throw error;
    }
  }

  async get<T = JsonValue>(key: Key, options?: GetOptions): Promise<Entry<T> | null> {
    this.#assertOpen("Cannot get");
    assertKey(key, "Cannot get");
    await this.#hooks.beforeGet?.(key);
    const entry = await this.#run("get", key, () => this.#store.get<T>(key, options));
    await this.#hooks.afterGet?.(key, entry as Entry | null);
    return entry;
  }

  async getMany<T = JsonValue>(keys: readonly Key[]): Promise<(Entry<T> | null)[]> {
    const what = "Cannot getMany";
    this.#assertOpen(what);
    if (!Array.isArray(keys)) throw new TypeError(`${what}: keys must be an array of keys`);
    for (const key of keys) assertKey(key, what);
    for (const key of keys) await this.#hooks.beforeGet?.(key);
    const entries = await this.#run("getMany", undefined, () => this.#store.getMany<T>(keys));
    for (let i = 0; i < keys.length; i++) {
      await this.#hooks.afterGet?.(keys[i], entries[i] as Entry | null);
    }
    return entries;
  }

  async set(key: Key, value: unknown, options?: SetOptions): Promise<CommitResult> {
    this.#assertOpen("Cannot set");
    // What the store would refuse never reaches a hook (an audit log, an authorization).
    checkSetArgs(key, value, options, "Cannot set");
    await this.#hooks.beforeSet?.(key, value, options ?? {});
    const result = await this.#run("set", key, () => this.#store.set([...key], value, options));
    await this.#hooks.afterSet?.(key, result);
    return result;
  }

  async delete(key: Key, options?: DeleteOptions): Promise<boolean> {
    this.#assertOpen("Cannot delete");
    checkDeleteArgs(key, options, "Cannot delete");
    await this.#hooks.beforeDelete?.(key, options ?? {});
    const deleted = await this.#run("delete", key, () => this.#store.delete([...key], options));
    await this.#hooks.afterDelete?.(key, deleted);
    return deleted;
  }

  list<T = JsonValue>(options?: ListOptions): ListIterator<T> {
    this.#assertOpen("Cannot list");
    const inner = this.#store.list<T>(options);
    const hooks = this.#hooks;
    async function* entries(): AsyncGenerator<Entry<T>> {
      let done = false;
      try {
        for (;;) {
          let step: IteratorResult<Entry<T>>;
          try {
            step = await inner.next();
          } catch (error) {
            done = true;
            await hooks.onError?.("list", error);
            throw error;
          }
          if (step.done) {
            done = true;
            return;
          }
          yield step.value;
        }
      } finally {
        if (!done) await inner.return?.();
      }
    }
    return listIterator(entries(), { cursor: () => inner.cursor, pageSize: options?.batchSize });
  }

  async count(prefix?: Key, bounds?: KeyBounds): Promise<number> {
    this.#assertOpen("Cannot count");
    return await this.#run("count", undefined, () => this.#store.count(prefix, bounds));
  }

  async query<T = JsonValue>(query?: Query): Promise<Entry<T>[]> {
    this.#assertOpen("Cannot query");
    return await this.#run("query", undefined, () => this.#store.query<T>(query));
  }

  async explain(query?: Query): Promise<QueryPlan> {
    this.#assertOpen("Cannot explain");
    return await this.#run("explain", undefined, () => this.#store.explain(query));
  }

  async search<T = JsonValue>(text: string, options?: SearchOptions): Promise<SearchHit<T>[]> {
    this.#assertOpen("Cannot search");
    return await this.#run("search", undefined, () => this.#store.search<T>(text, options));
  }

  async purgeExpired(): Promise<number> {
    this.#assertOpen("Cannot purge expired entries");
    return await this.#run("purgeExpired", undefined, () => this.#store.purgeExpired());
  }

  async compact(): Promise<CompactResult> {
    this.#assertOpen("Cannot compact");
    return await this.#run("compact", undefined, () => this.#store.compact());
  }

  async clear(prefix: Key, bounds?: KeyBounds): Promise<number> {
    this.#assertOpen("Cannot clear");
    return await this.#run("clear", undefined, () => this.#store.clear(prefix, bounds));
  }

  atomic(): AtomicOperation {
    const what = "Cannot commit atomic operation";
    this.#assertOpen(what);
    const inner = this.#store.atomic();
    const mutations: HookMutation[] = [];
    const checks: AtomicCheck[] = [];
    let committed = false;
    const op: AtomicOperation = {
      check: (key, version) => {
        assertKey(key, `${what}: check`);
        key = [...key]; // the caller may reuse the array before commit()
        inner.check(key, version);
        checks.push({ key, version });
        return op;
      },
      set: (key, value, options) => {
        assertKey(key, `${what}: set`);
        key = [...key];
        inner.set(key, value, options);
        mutations.push(
          options?.expireIn === undefined
            ? { type: "set", key, value }
            : { type: "set", key, value, expireIn: options.expireIn },
        );
        return op;
      },
      delete: (key) => {
        assertKey(key, `${what}: delete`);
        key = [...key];
        inner.delete(key);
        mutations.push({ type: "delete", key });
        return op;
      },
      clear: (prefix, bounds) => {
        inner.clear(prefix, bounds); // validates
        const copy: HookMutation = { type: "clear", prefix: [...prefix] };
        if (bounds !== undefined) {
          copy.bounds = {};
          if (bounds.start !== undefined) copy.bounds.start = [...bounds.start];
          if (bounds.end !== undefined) copy.bounds.end = [...bounds.end];
        }
        mutations.push(copy);
        return op;
      },
      commit: () => {
        this.#assertOpen(what);
        if (committed) {
          return Promise.reject(new TypeError(`${what}: this operation was already committed`));
        }
        committed = true;
        return this.#commit(inner, mutations, checks);
      },
    };
    return op;
  }

  async #commit(
    inner: AtomicOperation,
    mutations: HookMutation[],
    checks: AtomicCheck[],
  ): Promise<CommitResult> {
    await this.#hooks.beforeCommit?.([...mutations], [...checks]);
    const result = await this.#run("commit", undefined, () => inner.commit());
    await this.#hooks.afterCommit?.(result, [...mutations]);
    return result;
  }

  close(): Promise<void> {
    this.#closed = true;
    return this.#run("close", undefined, () => this.#store.close());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
