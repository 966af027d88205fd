// A Store method that returns a promise reports bad input (and a closed store) by rejecting it,
// never by throwing where it is called: `store.set(k, v).catch(…)` and `Promise.allSettled`
// see every failure. The same for a store and for each wrapper over it.
import assert from "node:assert/strict";
import { openStore, type Store } from "../mod.ts";
import { cached } from "../cache.ts";
import { withHooks } from "../hooks.ts";

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
