// A Store method that returns a promise reports bad input (and a closed store) by rejecting it,
// never by throwing where it is called: `store.set(k, v).catch(…)` and `Promise.allSettled`
// see every failure. The same for a store and for each wrapper over it.
import assert from "node:assert/strict";
import { type Key, openStore, type Store } from "../mod.ts";
import { cached } from "../cache.ts";
import { type StoreHooks, withHooks } from "../hooks.ts";

const wrappers: Record<string, (store: Store) => Store> = {
  "the store": (store) => store,
  "cached (write-through)": (store) => cached(store),
  "cached (write-behind)": (store) => cached(store, { mode: "write-behind", flushInterval: 0 }),
  "withHooks": (store) => withHooks(store, {}),
};

/** Calls that must reject, each with bad input. */
const badCalls: Record<string, (store: Store) => Promise<unknown>> = {
  "set with an empty key": (s) => s.set([], 1),
  "set with a Map value": (s) => s.set(["k"], new Map()),
  "set with a negative expireIn": (s) => s.set(["k"], 1, { expireIn: -1 }),
  "set with a numeric ifVersion": (s) => s.set(["k"], 1, { ifVersion: 5 as never }),
  "set with a key over 2 KiB": (s) => s.set(["x".repeat(3000)], 1),
  "delete with an empty key": (s) => s.delete([]),
  "delete with a null ifVersion": (s) => s.delete(["k"], { ifVersion: null as never }),
  "get with an empty key": (s) => s.get([]),
  "getMany with an empty key": (s) => s.getMany([[]]),
  "count with a string prefix": (s) => s.count("k" as never),
  "clear with a string prefix": (s) => s.clear("k" as never),
  "query with a negative limit": (s) => s.query({ limit: -1 }),
};

/** What a call did: threw where it was called, or returned a promise (and how it settled). */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (err) {
    return `threw ${(err as Error).name} where it was called`;
  }
  return await promise.then(() => "resolved", (err) => `rejected ${(err as Error).name}`);
}

for (const [name, wrap] of Object.entries(wrappers)) {
  Deno.test(`${name}: bad input rejects the promise, never throws at the call`, async () => {
    await using store = wrap(await openStore({ plugin: "memory" }));
    for (const [label, call] of Object.entries(badCalls)) {
      assert.match(await outcome(() => call(store)), /^rejected (TypeError|RangeError)$/, label);
    }
  });

  Deno.test(`${name}: a call after close rejects the promise with StoreClosedError`, async () => {
    const store = wrap(await openStore({ plugin: "memory" }));
    await store.close();
    for (
      const [label, call] of Object.entries({
        set: () => store.set(["k"], 1),
        delete: () => store.delete(["k"]),
        get: () => store.get(["k"]),
        count: () => store.count(),
      })
    ) {
      assert.equal(await outcome(call), "rejected StoreClosedError", label);
    }
  });
}

Deno.test("withHooks: a write the store would refuse never reaches beforeSet or beforeDelete", async () => {
  const seen: string[] = [];
  await using store = withHooks(await openStore({ plugin: "memory" }), {
    beforeSet: (key) => void seen.push(`set ${key.join("/").slice(0, 10)}`),
    beforeDelete: (key) => void seen.push(`delete ${key.join("/")}`),
  });
  for (const [label, call] of Object.entries(badCalls)) {
    assert.match(await outcome(() => call(store)), /^rejected (TypeError|RangeError)$/, label);
  }
  await assert.rejects(() => store.set(["k"], "x".repeat(17 * 1024 * 1024)), RangeError);
  assert.deepEqual(seen, []);
  await store.set(["k"], 1);
  await store.delete(["k"]);
  assert.deepEqual(seen, ["set k", "delete k"]);
});

Deno.test("withHooks and cached refuse a misspelt hook or option instead of ignoring it", async () => {
  await using store = await openStore({ plugin: "memory" });
  assert.throws(
    () => withHooks(store, { befoerSet: () => {} } as never),
    (err: Error) =>
      err instanceof TypeError &&
      err.message.startsWith(
        'Cannot add hooks: unknown hook "befoerSet" (did you mean "beforeSet"?); the hooks are beforeGet, afterGet, beforeSet,',
      ),
  );
  assert.throws(
    () => cached(store, { maxx: 10 } as never),
    /^TypeError: Cannot create cached store: unknown option "maxx" \(did you mean "max"\?\); the options are max, mode, flushInterval, clock, onFlushError$/,
  );
  // What is spelt right (or explicitly undefined) is taken as before.
  await using hooked = withHooks(store, { beforeSet: undefined, onError: () => {} });
  await hooked.set(["k"], 1);
  const cache = cached(store, { max: 10, mode: undefined });
  assert.equal((await cache.get(["k"]))?.value, 1);
});

Deno.test("withHooks takes a hooks class with its own state, and refuses a misspelt hook written as a method", async () => {
  await using store = await openStore({ plugin: "memory" });
  // State and helper methods far from any hook name are the class's own business.
  class AuditHooks implements StoreHooks {
    seen: string[] = [];
    limit = 3;
    get count(): number {
      return this.seen.length;
    }
    describe(): string {
      return `${this.count} writes`;
    }
    afterSet(key: Key) {
      this.seen.push(key.join("/"));
    }
  }
  const audit = new AuditHooks();
  await using audited = withHooks(store, audit);
  await audited.set(["a"], 1);
  assert.deepEqual(audit.seen, ["a"]);
  assert.equal(audit.describe(), "1 writes");

  // A misspelt hook as a method lives on the prototype: it must be caught there too,
  // and in a base class, or the authorization it holds silently never runs.
  class Guard implements StoreHooks {
    afterGet() {}
    befoerSet(_key: Key) {
      throw new Error("denied");
    }
  }
  class StrictGuard extends Guard {
    onError() {}
  }
  for (const hooks of [new Guard(), new StrictGuard()]) {
    assert.throws(
      () => withHooks(store, hooks),
      (err: Error) =>
        err instanceof TypeError &&
        err.message.startsWith(
          'Cannot add hooks: unknown hook "befoerSet" (did you mean "beforeSet"?); the hooks are beforeGet,',
        ),
    );
  }
  assert.equal(await store.get(["b"]), null);
});
