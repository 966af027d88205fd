import assert from "node:assert/strict";
import { openStore, StoreCorruptError, StoreUnavailableError } from "@flowstate/core";
import redis from "./mod.ts";
import { ownServerTest } from "./_test_utils.ts";

// What a Redis operator's server settings and actions do to a store: each test starts a
// redis-server of its own (ignored without redis-server on PATH) and kills it at the end.

for (const policy of ["allkeys-lru", "allkeys-lfu", "allkeys-random"]) {
  ownServerTest(
    `a server that evicts any key (maxmemory-policy ${policy}) is refused at open, nothing written`,
    ["--maxmemory", "50mb", "--maxmemory-policy", policy],
    async ({ url, admin }) => {
      const err = await openStore({ plugin: redis, url, prefix: "app:" }, { name: "jobs" })
        .catch((e) => e);
      assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
      assert.equal(err.transient, false, "the setting stays until an operator changes it");
      assert.equal(
        err.message,
        `Cannot open store "jobs": Redis at ${url.slice("redis://".length)} has maxmemory-policy ` +
          `${policy}, so it may evict the store's keys and lose its entries without an error; ` +
          `set maxmemory-policy to noeviction (or a volatile-* policy: the store's keys have no TTL) ` +
          `in redis.conf or with CONFIG SET, or use another Redis server`,
      );
      assert.deepEqual(await admin.keys("*"), [], "nothing was created");
    },
  );
}

ownServerTest(
  "a volatile-* eviction policy is accepted: the store's keys have no TTL, so they are never evicted",
  ["--maxmemory", "50mb", "--maxmemory-policy", "volatile-lru"],
  async ({ url, admin }) => {
    await using store = await openStore({ plugin: redis, url, prefix: "app:" }, { name: "jobs" });
    assert.ok((await store.set(["a"], 1, { expireIn: 60_000 })).ok);
    for (const key of await admin.keys("app:*")) assert.equal(await admin.ttl(key), -1, key);
  },
);

const GONE = (op: string) =>
  new RegExp(
    `^Cannot ${op} store "jobs": the store is gone from Redis at 127\\.0\\.0\\.1:\\d+ \\(its key ` +
      `"app:meta" is missing\\): the server lost its data \\(restarted without persistence, ` +
      `FLUSHDB or FLUSHALL, or keys evicted\\)\\. Nothing was done; reopen the store to start it ` +
      `empty, and turn on persistence \\(appendonly yes\\) so a restart keeps it$`,
  );

ownServerTest(
  "a server restarted without persistence: the open store says it is gone instead of writing a part of it",
  [],
  async (server) => {
    await using store = await openStore(
      { plugin: redis, url: server.url, prefix: "app:" },
      { name: "jobs" },
    );
    assert.ok((await store.set(["a"], 1)).ok);
    await server.restart();
    for (
      const [op, run] of [
        ["write to", () => store.set(["b"], 2)],
        ["get from", () => store.get(["a"])],
        ["list", () => Array.fromAsync(store.list({ prefix: [] }))],
        ["count", () => store.count()],
        ["clear", () => store.clear(["x"])],
        ["purge", () => store.purgeExpired()],
      ] as const
    ) {
      const err = await (run as () => Promise<unknown>)().catch((e) => e);
      assert.ok(err instanceof StoreCorruptError, `${op}: got ${err}`);
      assert.match(err.message, GONE(op));
    }
    assert.deepEqual(await server.admin.keys("*"), [], "nothing half-written after the loss");
    // Opening it again starts it empty, as a new store.
    await using again = await openStore(
      { plugin: redis, url: server.url, prefix: "app:" },
      { name: "jobs" },
    );
    assert.equal(await again.get(["a"]), null);
    assert.ok((await store.set(["b"], 2)).ok, "the first handle works again too");
  },
);

ownServerTest(
  "FLUSHDB under an open store: the store says it is gone",
  [],
  async (server) => {
    await using store = await openStore(
      { plugin: redis, url: server.url, prefix: "app:" },
      { name: "jobs" },
    );
    assert.ok((await store.set(["a"], 1)).ok);
    await server.admin.flushdb();
    const err = await store.set(["a"], 2).catch((e) => e);
    assert.ok(err instanceof StoreCorruptError, `got ${err}`);
    assert.match(err.message, GONE("write to"));
    assert.deepEqual(await server.admin.keys("*"), []);
  },
);
