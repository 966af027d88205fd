/**
 * The server lost for a few seconds while the store works (a failover, a
 * restart, a network cut) and then back: every call settles, none waits for
 * good, and the store works again after.
 */
import assert from "node:assert/strict";
import { openStore, StoreUnavailableError } from "../../mod.ts";
import type { Store } from "../../src/store/types.ts";
import {
  cuttableProxy,
  dropTestSchema,
  newTable,
  pgTest,
  SCHEMA,
  settlesWithin,
} from "./_test_utils.ts";

/** Seconds to connect (the store's option): small, so that a lost server is told soon. */
const CONNECT_TIMEOUT = 1;
/** The test's own bound on every call (generous: it is no timing assertion, only "no hang"). */
const DEADLINE_MS = 60_000;

/** Calls of every kind, on the pooled and the reserved connections. */
function calls(store: Store, i: number): [string, () => Promise<unknown>][] {
  return [
    ["get", () => store.get(["k", "a"])],
    ["set", () => store.set(["k", "n", String(i % 20)], i)],
    // A check of another key: a transaction on a connection reserved for it.
    [
      "checked commit",
      () => store.atomic().check(["k", "c"], null).set(["k", "m", String(i % 20)], i).commit(),
    ],
    ["count", () => store.count(["k", "n"])],
    ["clear", () => store.clear(["k", "gone", String(i)])],
    ["query", () => store.query({ prefix: ["k", "m"], limit: 5 })],
  ];
}

/**
 * Open a store through a cuttable proxy, call it every 50 ms while `scenario`
 * cuts and restores the proxy, then check that every call settled (failures
 * are StoreUnavailableError) and that every kind of call works again.
 */
async function outage(
  url: string,
  label: string,
  scenario: (proxy: ReturnType<typeof cuttableProxy>, calling: Calling) => Promise<void>,
): Promise<void> {
  const proxy = cuttableProxy(url);
  try {
    const store = await openStore({
      plugin: "postgres",
      url: proxy.url,
      schema: SCHEMA,
      table: newTable(label),
      connectTimeout: CONNECT_TIMEOUT,
    } as { plugin: string }, { name: "main" });
    try {
      await store.set(["k", "a"], 1);
      const settled: Promise<{ what: string; error?: unknown }>[] = [];
      let i = 0;
      const calling: Calling = {
        async for(ms: number) {
          const until = Date.now() + ms;
          while (Date.now() < until) {
            for (const [what, call] of calls(store, i++)) {
              settled.push(call().then(() => ({ what }), (error) => ({ what, error })));
            }
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        },
        idle: () => settlesWithin(Promise.all(settled), DEADLINE_MS, "a store call before the cut"),
      };
      await scenario(proxy, calling);
      const outcomes = await settlesWithin(
        Promise.all(settled),
        DEADLINE_MS,
        "a store call after the server was lost and back",
      );
      const failures = outcomes.filter((o) => o.error !== undefined);
      assert.ok(failures.length > 0, "calls during the cut failed");
      for (const { what, error } of failures) {
        assert.ok(error instanceof StoreUnavailableError, `${what}: got ${error}`);
        assert.equal(error.store, "main");
        assert.match(error.message, /PostgreSQL at 127\.0\.0\.1:\d+/);
      }
      // Back: every kind of call works again.
      for (const [what, call] of calls(store, i++)) {
        await settlesWithin(call(), DEADLINE_MS, `${what} once the server is back`);
      }
      assert.equal((await store.get(["k", "a"]))?.value, 1);
    } finally {
      await store.close();
    }
  } finally {
    await proxy.close();
  }
}

/** Calls of {@linkcode calls} started every 50 ms for `ms`; `idle` waits for all so far. */
interface Calling {
  for(ms: number): Promise<void>;
  idle(): Promise<unknown>;
}

pgTest(
  "a server lost while the store is idle, and back: every call settles, and the store works again",
  (url) =>
    outage(url, "idle_cut", async (proxy, calling) => {
      await calling.for(300);
      await calling.idle();
      await proxy.cut();
      await calling.for(3_000);
      proxy.restore();
      await calling.for(500);
    }),
);

pgTest(
  "a server lost while transactions are on their way, and back: every call settles, and the store works again",
  (url) =>
    outage(url, "busy_cut", async (proxy, calling) => {
      const busy = calling.for(3_500);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      proxy.restore();
      await busy;
    }),
);

dropTestSchema();
