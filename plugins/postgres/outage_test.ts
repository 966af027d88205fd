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
  ].filter(([w]) => !Deno.env.get("ONLY") || Deno.env.get("ONLY") === w) as [string, () => Promise<unknown>][];
}

pgTest(
  "a server lost for a few seconds and back: every store call settles, and the store works again",
  async (url) => {
    const proxy = cuttableProxy(url);
    try {
      const store = await openStore({
        plugin: "postgres",
        url: proxy.url,
        schema: SCHEMA,
        table: newTable("outage"),
        connectTimeout: CONNECT_TIMEOUT,
      } as { plugin: string }, { name: "main" });
      try {
        await store.set(["k", "a"], 1);
        const settled: Promise<{ what: string; error?: unknown }>[] = [];
        let i = 0;
        /** Start calls every 50 ms for `ms`. */
        const keepCalling = async (ms: number) => {
          const until = Date.now() + ms;
          while (Date.now() < until) {
            for (const [what, call] of calls(store, i++)) {
              settled.push(call().then(() => ({ what }), (error) => ({ what, error })));
            }
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        };
        await keepCalling(300);
        proxy.cut();
        await keepCalling(3_000);
        proxy.restore();
        await keepCalling(500);
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
  },
);

dropTestSchema();
