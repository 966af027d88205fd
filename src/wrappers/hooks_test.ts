import assert from "node:assert/strict";
import { StoreClosedError } from "../errors.ts";
import { openStore } from "../plugin.ts";
import type { CommitResult, Entry, Key, Store } from "../store/types.ts";
import { testStore } from "../../testing.ts";
import { cached } from "./cached.ts";
import { type HookMutation, type StoreHooks, withHooks } from "./hooks.ts";

testStore(
  "withHooks(memory)",
  ({ clock, indexes, search, changes }) =>
    openStore({ plugin: "memory", indexes, search, changes }, { clock }).then((s) =>
      withHooks(s, { beforeSet() {} })
    ),
);

testStore(
  "withHooks(cached(memory))",
  ({ clock, indexes, search, changes }) =>
    openStore({ plugin: "memory", indexes, search, changes }, { clock }).then((s) =>
      withHooks(cached(s, { clock }), {})
    ),
);

/** Hooks that record every call as a line in `log`. */
function recordingHooks(log: string[]): StoreHooks {
  const k = (key: Key) => key.join("/");
  return {
    beforeGet: (key) => void log.push(`beforeGet ${k(key)}`),
    afterGet: (key, entry) => void log.push(`afterGet ${k(key)} ${JSON.stringify(entry?.value)}`),
    beforeSet: (key, value) => void log.push(`beforeSet ${k(key)} ${JSON.stringify(value)}`),
    afterSet: (key, result) => void log.push(`afterSet ${k(key)} ${result.ok}`),
    beforeDelete: (key) => void log.push(`beforeDelete ${k(key)}`),
    afterDelete: (key, deleted) => void log.push(`afterDelete ${k(key)} ${deleted}`),
    beforeCommit: (mutations) => void log.push(`beforeCommit ${mutations.length}`),
    afterCommit: (result) => void log.push(`afterCommit ${result.ok}`),
    onError: (operation, error, key) =>
      void log.push(`onError ${operation} ${(error as Error).name} ${key ? k(key) : "-"}`),
  };
}

Deno.test("withHooks() rejects a bad store or a hook that is not a function", async () => {
  await using store = await openStore({ plugin: "memory" });
  assert.throws(() => withHooks(null as unknown as Store, {}), TypeError);
  assert.throws(
    () => withHooks(store, { beforeGet: "no" } as unknown as StoreHooks),
    /hook beforeGet must be a function \(got string\)/,
  );
});

Deno.test("withHooks() runs before hooks, the operation, then after hooks, before the call resolves", async () => {
  const log: string[] = [];
  const base = await openStore({ plugin: "memory" });
  await using store = withHooks(base, recordingHooks(log));
  await store.set(["a"], 1);
  assert.deepEqual(log, ["beforeSet a 1", "afterSet a true"]);
  assert.equal((await store.get(["a"]))?.value, 1);
  assert.equal(await store.delete(["a"]), true);
  assert.equal(await store.delete(["a"], { ifVersion: "stale" }), false);
  assert.deepEqual(log.slice(2), [
    "beforeGet a",
    "afterGet a 1",
    "beforeDelete a",
    "afterDelete a true",
    "beforeDelete a",
    "afterDelete a false",
  ]);
});

Deno.test("withHooks() awaits async hooks in order", async () => {
  const log: string[] = [];
  const base = await openStore({ plugin: "memory" });
  await using store = withHooks(base, {
    async beforeSet(key) {
      await new Promise<void>((r) => queueMicrotask(r));
      // The write has not happened yet while the before hook runs.
      log.push(`before: stored=${JSON.stringify((await base.get(key))?.value ?? null)}`);
    },
    async afterSet(key) {
      await Promise.resolve();
      log.push(`after: stored=${JSON.stringify((await base.get(key))?.value ?? null)}`);
    },
  });
  await store.set(["a"], "x");
  log.push("resolved");
  assert.deepEqual(log, ["before: stored=null", 'after: stored="x"', "resolved"]);
});

Deno.test("withHooks() beforeSet that throws aborts the write and skips onError", async () => {
  const log: string[] = [];
  const base = await openStore({ plugin: "memory" });
  await using store = withHooks(base, {
    ...recordingHooks(log),
    beforeSet(key, value) {
      log.push(`beforeSet ${key.join("/")}`);
      if (typeof value !== "number") throw new TypeError(`Cannot set ${key}: not a number`);
    },
  });
  await assert.rejects(() => store.set(["a"], "text"), /Cannot set a: not a number/);
  assert.equal(await base.get(["a"]), null);
  assert.deepEqual(log, ["beforeSet a"]);
});

Deno.test("withHooks() async beforeDelete and beforeGet can refuse an operation", async () => {
  const base = await openStore({ plugin: "memory" });
  await base.set(["secret"], 42);
  await using store = withHooks(base, {
    beforeGet: async (key) => {
      await Promise.resolve();
      if (key[0] === "secret") throw new Error("Cannot read secret: not authorized");
    },
    beforeDelete: (key) => Promise.reject(new Error(`Cannot delete ${key}: read-only`)),
  });
  await assert.rejects(() => store.get(["secret"]), /not authorized/);
  await assert.rejects(() => store.getMany([["other"], ["secret"]]), /not authorized/);
  await assert.rejects(() => store.delete(["secret"]), /read-only/);
  assert.equal((await base.get(["secret"]))?.value, 42);
});

Deno.test("withHooks() reports a store error to onError, then rethrows it", async () => {
  const log: string[] = [];
  const base = await openStore({ plugin: "memory" });
  const store = withHooks(base, recordingHooks(log));
  await base.close(); // the wrapped store now fails every call
  await assert.rejects(() => store.get(["a"]), StoreClosedError);
  await assert.rejects(() => store.set(["a"], 1), StoreClosedError);
  await assert.rejects(() => store.count(), StoreClosedError);
  assert.deepEqual(log, [
    "beforeGet a",
    "onError get StoreClosedError a",
    "beforeSet a 1",
    "onError set StoreClosedError a",
    "onError count StoreClosedError -",
  ]);
});

Deno.test("withHooks() rejects with onError's own error when onError throws", async () => {
  const base = await openStore({ plugin: "memory" });
  const store = withHooks(base, {
    onError: () => {
      throw new Error("reporter broke");
    },
  });
  await base.close();
  await assert.rejects(() => store.get(["a"]), /reporter broke/);
});

Deno.test("withHooks() after hook that throws rejects the call, but the write happened", async () => {
  const base = await openStore({ plugin: "memory" });
  await using store = withHooks(base, {
    afterSet: () => {
      throw new Error("audit log full");
    },
  });
  await assert.rejects(() => store.set(["a"], 1), /audit log full/);
  assert.equal((await base.get(["a"]))?.value, 1);
});

Deno.test("withHooks() afterSet sees a conflict result", async () => {
  const results: CommitResult[] = [];
  await using store = withHooks(await openStore({ plugin: "memory" }), {
    afterSet: (_key, result) => void results.push(result),
  });
  await store.set(["a"], 1);
  await store.set(["a"], 2, { ifVersion: null });
  assert.deepEqual(results.map((r) => r.ok), [true, false]);
});

Deno.test("withHooks() getMany runs the get hooks for each key in order", async () => {
  const log: string[] = [];
  const base = await openStore({ plugin: "memory" });
  await base.set(["b"], 2);
  await using store = withHooks(base, recordingHooks(log));
  const entries = await store.getMany([["a"], ["b"]]);
  assert.deepEqual(entries.map((e) => e?.value ?? null), [null, 2]);
  assert.deepEqual(log, ["beforeGet a", "beforeGet b", "afterGet a undefined", "afterGet b 2"]);
});

Deno.test("withHooks() atomic commit runs beforeCommit and afterCommit, not the set hooks", async () => {
  const log: string[] = [];
  let seen: readonly HookMutation[] = [];
  const base = await openStore({ plugin: "memory" });
  await using store = withHooks(base, {
    ...recordingHooks(log),
    beforeCommit: (mutations, checks) => {
      seen = mutations;
      log.push(`beforeCommit ${mutations.length} ${checks.length}`);
    },
  });
  const result = await store.atomic().check(["a"], null).set(["a"], 1, { expireIn: 1000 })
    .delete(["b"]).commit();
  assert.ok(result.ok);
  assert.deepEqual(log, ["beforeCommit 2 1", "afterCommit true"]);
  assert.deepEqual(seen, [
    { type: "set", key: ["a"], value: 1, expireIn: 1000 },
    { type: "delete", key: ["b"] },
  ]);
});

Deno.test("withHooks() beforeCommit that throws aborts the whole atomic operation", async () => {
  const base = await openStore({ plugin: "memory" });
  await using store = withHooks(base, {
    beforeCommit: (mutations) => {
      for (const m of mutations) {
        if (m.type === "set" && m.key[0] === "locked") throw new Error("Cannot write locked keys");
      }
    },
  });
  const op = store.atomic().set(["free"], 1).set(["locked", "x"], 2);
  await assert.rejects(() => op.commit(), /Cannot write locked keys/);
  assert.equal(await base.count(), 0);
  await assert.rejects(() => op.commit(), /already committed/);
});

Deno.test("withHooks() reports an error while iterating a list to onError", async () => {
  const errors: string[] = [];
  const base = await openStore({ plugin: "memory" });
  await base.set(["a"], 1);
  await base.set(["b"], 2);
  const store = withHooks(base, {
    onError: (operation, error) => void errors.push(`${operation} ${(error as Error).name}`),
  });
  const seen: Entry[] = [];
  await assert.rejects(async () => {
    for await (const entry of store.list()) {
      seen.push(entry);
      await base.close(); // the next step of the listing fails
    }
  }, StoreClosedError);
  assert.equal(seen.length, 1);
  assert.deepEqual(errors, ["list StoreClosedError"]);
});

Deno.test("withHooks() list passes entries and cursor through", async () => {
  await using store = withHooks(await openStore({ plugin: "memory" }), {});
  for (const k of ["a", "b", "c"]) await store.set([k], k);
  const it = store.list({ limit: 2 });
  const keys: string[] = [];
  for await (const entry of it) keys.push(entry.key[0]);
  assert.deepEqual(keys, ["a", "b"]);
  const rest: string[] = [];
  for await (const entry of store.list({ cursor: it.cursor })) rest.push(entry.key[0]);
  assert.deepEqual(rest, ["c"]);
});

Deno.test("withHooks() throws StoreClosedError after close() without running hooks", async () => {
  const log: string[] = [];
  const store = withHooks(await openStore({ plugin: "memory" }), recordingHooks(log));
  await store.close();
  await assert.rejects(() => store.get(["a"]), StoreClosedError);
  await assert.rejects(() => store.set(["a"], 1), StoreClosedError);
  assert.deepEqual(log, []);
});

Deno.test("withHooks() over cached() sees cache hits; cached() over withHooks() sees only misses", async () => {
  let outer = 0;
  let inner = 0;
  const base = await openStore({ plugin: "memory" });
  await base.set(["a"], 1);
  await using store = withHooks(
    cached(withHooks(base, { afterGet: () => void inner++ })),
    { afterGet: () => void outer++ },
  );
  await store.get(["a"]);
  await store.get(["a"]);
  await store.get(["a"]);
  assert.equal(outer, 3);
  assert.equal(inner, 1);
});
