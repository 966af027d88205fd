import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  ConfigError,
  type ListOptions,
  openStore,
  type Store,
  StoreCorruptError,
  StoreMissingError,
} from "@flowstate/core";
import { type ConformanceOptions, fakeClock, testStore } from "@flowstate/core/testing";
import { decodeKey, encodeKey } from "@flowstate/core/plugin";
import redis, { redactRedisUrl, RedisDriver, redisOptions } from "./mod.ts";
import {
  keysUnder,
  NEEDS_SERVER,
  newPrefix,
  PREFIX,
  REDIS_URL,
  redisTest,
  removeTestKeys,
  withAdmin,
} from "./_test_utils.ts";

// The redis plugin: the conformance suite, options, the layout on the server,
// opening (missing, foreign, shared servers). Two processes are in
// processes_test.ts, an unreachable server in unavailable_test.ts. Tests that
// need a server are ignored without FLOWSTATE_TEST_REDIS_URL (see
// _test_utils.ts); every key they write is removed by the last test here.

// --- The conformance suite -------------------------------------------------

if (REDIS_URL === undefined) {
  Deno.test({
    name: `redis: Store conformance (ignored: ${NEEDS_SERVER})`,
    ignore: true,
    fn: () => {},
  });
} else {
  const url = REDIS_URL;
  // Each case id gets its own prefix under this file's; the same id reopens
  // the same keys, and a second process opens them from the same spec.
  const spec = (id: string) => ({
    plugin: import.meta.resolve("./mod.ts"),
    url,
    prefix: `${PREFIX}${id}:`,
  });
  // `multiProcess` and `cleanup` are read by testStore versions that have
  // them (the multi-process case, per-case cleanup) and ignored by older ones;
  // removeTestKeys() below removes whatever is left either way.
  const options: ConformanceOptions = {
    multiProcess: { spec: ({ id }: { id: string }) => spec(id) },
    cleanup: ({ id }: { id: string }) =>
      withAdmin(url, async (admin) => {
        const keys = await keysUnder(admin, spec(id).prefix);
        if (keys.length > 0) await admin.unlink(...keys);
      }),
  } as ConformanceOptions;
  testStore(
    "redis",
    ({ id, clock, indexes, search, changes }) =>
      openStore({ ...spec(id), plugin: redis, indexes, search, changes }, { clock }),
    options,
  );
}

// --- Options (no server needed) ----------------------------------------------

Deno.test("redisOptions fills in defaults and rejects unknown or bad options", async () => {
  assert.deepEqual(redisOptions.parse({}), {
    url: "redis://127.0.0.1:6379",
    prefix: "flowstate:",
    connectTimeout: 10,
  });
  assert.equal(redisOptions.parse({ url: "rediss://u:p@h:6380/3" }).url, "rediss://u:p@h:6380/3");
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ url: "postgres://u@h/db" }, /option "url": must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ url: "not a url" }, /option "url"/],
    [{ url: "redis://h/notanumber" }, /option "url"/],
    [{ prefix: "" }, /option "prefix": must be 1 to 100 letters/],
    [{ prefix: "a*" }, /option "prefix"/],
    [{ prefix: "x".repeat(101) }, /option "prefix"/],
    [{ connectTimeout: 0 }, /option "connectTimeout"/],
    [{ prefx: "a:" }, /unknown option "prefx" \(did you mean "prefix"\?\)/],
  ];
  for (const [options, message] of bad) {
    const err = await openStore({ plugin: redis, ...options }, { name: "cache" }).catch((e) => e);
    assert.ok(err instanceof ConfigError, `${JSON.stringify(options)}: got ${err}`);
    assert.match(err.message, /^Cannot open store "cache" \(plugin "redis"\)/);
    assert.match(err.message, message);
  }
});

Deno.test("redactRedisUrl drops the password and secret parameters, and spells out port and db", () => {
  assert.equal(redactRedisUrl("redis://u:pw@h"), "redis://u@h:6379/0");
  assert.equal(redactRedisUrl("redis://:pw@h:7000/5"), "redis://h:7000/5");
  assert.equal(
    redactRedisUrl("rediss://h/1?password=pw&family=6"),
    "rediss://h:6379/1?family=6",
  );
  assert.equal(redactRedisUrl("::"), "redis://(unparsable URL)");
});

Deno.test("RedisDriver.open() refuses a bad URL, prefix or timeout before connecting", async () => {
  await assert.rejects(() => RedisDriver.open("http://h"), /url must be a redis:\/\//);
  await assert.rejects(
    () => RedisDriver.open("redis://h", { prefix: "a b" }),
    /prefix "a b" must be 1 to 100/,
  );
  await assert.rejects(
    () => RedisDriver.open("redis://h", { connectTimeout: -1 }),
    /connectTimeout must be a number of seconds/,
  );
});

// --- On a server ---------------------------------------------------------------

/** The values a listing yields, in order. */
async function listValues(store: Store, options: ListOptions): Promise<number[]> {
  const out: number[] = [];
  for await (const e of store.list<number>(options)) out.push(e.value);
  return out;
}

redisTest("the store says where it lives, without the password, and what it does", async (url) => {
  // Redis accepts any password for the default user when it has none set.
  const withPassword = new URL(url);
  withPassword.username = "default";
  withPassword.password = "s3cret-pw";
  const prefix = newPrefix("location");
  await using store = await openStore({ plugin: redis, url: withPassword.href, prefix });
  const server = new URL(url);
  assert.equal(
    store.location,
    `redis://default@${server.hostname}:${server.port || 6379}/0 (prefix ${
      JSON.stringify(prefix)
    })`,
  );
  assert.deepEqual(store.capabilities, {
    persistent: true,
    expiry: true,
    query: false,
    count: true,
    clear: true,
    atomicClear: true,
    multiProcess: true,
    indexes: false, // the core keeps index entries for declared indexes; search is a scan
    search: false,
  });
});

redisTest(
  "a store is four Redis keys under its prefix, its keys a sorted set in key order",
  async (url) => {
    const prefix = newPrefix("layout");
    const clock = fakeClock(1_000);
    await using store = await openStore({ plugin: redis, url, prefix }, { clock });
    const keys = [["b"], ["a", "z"], ["é"], ["a"], ["Z"], ["a\u0000b"], ["😀"], ["\uffff"]];
    for (const key of keys) await store.set(key, key.join("/"));
    await store.set(["session"], "token", { expireIn: 500 });
    await withAdmin(url, async (admin) => {
      assert.deepEqual(await keysUnder(admin, prefix), [
        `${prefix}entries`,
        `${prefix}expiry`,
        `${prefix}keys`,
        `${prefix}meta`,
      ]);
      assert.deepEqual(await admin.hgetall(`${prefix}meta`), {
        format: "flowstate.redis",
        version: "1",
      });
      // Redis orders the members byte-wise, which is the store's key order.
      const members = await admin.zrangeBuffer(`${prefix}keys`, 0, -1);
      const listed = [];
      for await (const entry of store.list()) listed.push(entry.key);
      assert.deepEqual(members.map((m) => decodeKey(m)), listed);
      assert.deepEqual(
        listed.map((k) => JSON.stringify(k)),
        [
          ["Z"],
          ["a"],
          ["a", "z"],
          ["a\u0000b"],
          ["b"],
          ["session"],
          ["é"],
          ["\uffff"],
          ["😀"],
        ].map((k) => JSON.stringify(k)),
      );
      // Expiry is the store's clock, kept in the expiry set; no Redis TTL.
      const session = Buffer.from(encodeKey(["session"]));
      assert.equal(await admin.zscore(`${prefix}expiry`, session), "1500");
      assert.equal(await admin.pttl(`${prefix}entries`), -1);
      assert.equal(await admin.zcard(`${prefix}expiry`), 1);
    });
    clock.advance(500);
    assert.equal(await store.get(["session"]), null);
    assert.equal(await store.count(), keys.length);
    assert.equal(await store.purgeExpired(), 1);
    await withAdmin(url, async (admin) => {
      assert.equal(await admin.zcard(`${prefix}expiry`), 0);
      assert.equal(await admin.zcard(`${prefix}keys`), keys.length);
      assert.equal(await admin.hlen(`${prefix}entries`), keys.length);
    });
  },
);

redisTest(
  "expiry times round-trip exactly through Redis and Lua, fractions and extremes too",
  async (url) => {
    const clock = fakeClock(1_000);
    await using store = await openStore({ plugin: redis, url, prefix: newPrefix("times") }, {
      clock,
    });
    const cases = [0.5, 1e-3, 2 ** 53, Number.MAX_VALUE];
    for (const [i, expireIn] of cases.entries()) {
      await store.set(["t", String(i)], i, { expireIn });
      assert.equal((await store.get(["t", String(i)]))?.expiresAt, 1_000 + expireIn);
    }
    assert.equal(await store.count(["t"]), cases.length);
    clock.advance(0.5);
    assert.equal(await store.count(["t"]), cases.length - 2);
    // A compare-and-set sees the same times the reads do.
    const live = await store.get(["t", "3"]);
    assert.ok((await store.set(["t", "3"], "again", { ifVersion: live!.version })).ok);
    assert.equal(await store.purgeExpired(), 2);
  },
);

redisTest(
  "a 20,000-entry atomic operation commits whole; clear removes it in one script",
  async (url) => {
    await using store = await openStore({ plugin: redis, url, prefix: newPrefix("big") });
    const op = store.atomic().check(["marker"], null).set(["marker"], true);
    for (let i = 0; i < 20_000; i++) op.set(["big", String(i).padStart(5, "0")], i);
    assert.ok((await op.commit()).ok);
    assert.equal(await store.count(["big"]), 20_000);
    assert.equal((await store.get(["big", "19999"]))?.value, 19_999);
    assert.equal(await store.clear(["big"]), 20_000);
    assert.equal(await store.count(), 1);
  },
);

redisTest("stores under different prefixes on one server do not see each other", async (url) => {
  await using a = await openStore({ plugin: redis, url, prefix: newPrefix("a") });
  await using b = await openStore({ plugin: redis, url, prefix: newPrefix("b") });
  await a.set(["k"], "from a");
  await b.set(["k"], "from b");
  await b.set(["only b"], 1);
  assert.equal((await a.get(["k"]))?.value, "from a");
  assert.equal(await a.count(), 1);
  assert.equal(await b.clear([]), 2);
  assert.equal((await a.get(["k"]))?.value, "from a");
});

redisTest(
  "count() and clear() are right whichever is larger, the range or the expired keys",
  async (url) => {
    const clock = fakeClock(0);
    await using store = await openStore({ plugin: redis, url, prefix: newPrefix("count") }, {
      clock,
    });
    // 30 keys under ["a"], 10 of them expiring; 600 expiring keys under ["b"].
    const op = store.atomic();
    for (let i = 0; i < 30; i++) {
      op.set(["a", String(i).padStart(2, "0")], i, i < 10 ? { expireIn: 100 } : undefined);
    }
    for (let i = 0; i < 600; i++) op.set(["b", String(i).padStart(3, "0")], i, { expireIn: 100 });
    assert.ok((await op.commit()).ok);
    assert.equal(await store.count(["a"]), 30);
    clock.advance(100);
    // The range (30) is smaller than the expired keys (610): walks the range.
    assert.equal(await store.count(["a"]), 20);
    // A range of 590 within 610 expired keys, and bounds.
    assert.equal(await store.count(["b"], { start: ["b", "010"] }), 0);
    assert.equal(await store.count(["a"], { start: ["a", "05"], end: ["a", "15"] }), 5);
    // The whole store (630) is larger than the expired keys (610): walks those.
    assert.equal(await store.count(), 20);
    assert.equal(await store.clear(["a"], { end: ["a", "20"] }), 10);
    assert.equal(await store.count(), 10);
    assert.equal(await store.purgeExpired(), 600);
    assert.equal(await store.count(), 10);
  },
);

redisTest(
  "list() pages through more entries than a page, both ways, with batchSize",
  async (url) => {
    await using store = await openStore({ plugin: redis, url, prefix: newPrefix("pages") });
    const op = store.atomic();
    for (let i = 0; i < 700; i++) op.set(["k", String(i).padStart(4, "0")], i);
    await op.commit();
    const values = (options: ListOptions) => listValues(store, options);
    const all = Array.from({ length: 700 }, (_, i) => i);
    assert.deepEqual(await values({ prefix: ["k"] }), all);
    assert.deepEqual(await values({ prefix: ["k"], reverse: true }), all.toReversed());
    assert.deepEqual(await values({ prefix: ["k"], batchSize: 7 }), all);
    assert.deepEqual(await values({ prefix: ["k"], batchSize: 5000 }), all);
    assert.deepEqual(
      await values({ prefix: ["k"], start: ["k", "0300"], end: ["k", "0310"], reverse: true }),
      all.slice(300, 310).toReversed(),
    );
  },
);

redisTest(
  "list() with a limit skips expired entries across pages and stops at the limit",
  async (url) => {
    const clock = fakeClock(0);
    await using store = await openStore({ plugin: redis, url, prefix: newPrefix("limit") }, {
      clock,
    });
    const op = store.atomic();
    for (let i = 0; i < 300; i++) {
      op.set(["k", String(i).padStart(3, "0")], i, i % 100 < 95 ? { expireIn: 10 } : undefined);
    }
    await op.commit();
    clock.advance(10);
    const values = (options: ListOptions) => listValues(store, options);
    // Live: 95-99, 195-199, 295-299; pages of 10 hold mostly expired entries.
    assert.deepEqual(
      await values({ prefix: ["k"], limit: 7, batchSize: 10 }),
      [95, 96, 97, 98, 99, 195, 196],
    );
    assert.deepEqual(
      await values({ prefix: ["k"], limit: 3, reverse: true, batchSize: 4 }),
      [299, 298, 297],
    );
    assert.equal((await values({ prefix: ["k"] })).length, 15);
  },
);

redisTest(
  "a read-only open of a prefix with no store is StoreMissingError and creates nothing",
  async (url) => {
    const prefix = newPrefix("missing");
    const err = await openStore({ plugin: redis, url, prefix }, { name: "cache", mustExist: true })
      .catch((e) => e);
    assert.ok(err instanceof StoreMissingError, `got ${err}`);
    assert.equal(err.store, "cache");
    assert.match(
      err.message,
      /Store "cache" does not exist yet: there is no Flowstate store at redis:/,
    );
    await withAdmin(url, async (admin) => assert.deepEqual(await keysUnder(admin, prefix), []));
    // Once created, a read-only open works.
    await (await openStore({ plugin: redis, url, prefix })).close();
    await (await openStore({ plugin: redis, url, prefix }, { mustExist: true })).close();
  },
);

redisTest(
  "a prefix holding other data is StoreCorruptError, and nothing is changed",
  async (url) => {
    const wrongType = newPrefix("wrongtype");
    const foreign = newPrefix("foreign");
    const newer = newPrefix("newer");
    await withAdmin(url, async (admin) => {
      await admin.set(`${wrongType}keys`, "a string");
      await admin.hset(`${foreign}meta`, "format", "something.else", "version", "1");
      await admin.hset(`${newer}meta`, "format", "flowstate.redis", "version", "2");
    });
    const cases: [string, RegExp][] = [
      [wrongType, /the Redis key ".*wrongtype:keys" is a string, not a Flowstate key/],
      [foreign, /says format "something\.else", not "flowstate\.redis"/],
      [newer, /layout version 2 is newer than this plugin's \(1\); upgrade @flowstate\/redis/],
    ];
    for (const [prefix, message] of cases) {
      const err = await openStore({ plugin: redis, url, prefix }).catch((e) => e);
      assert.ok(err instanceof StoreCorruptError, `got ${err}`);
      assert.match(err.message, message);
      assert.match(err.message, /Nothing was changed/);
    }
    await withAdmin(url, async (admin) => {
      assert.equal(await admin.get(`${wrongType}keys`), "a string");
      assert.deepEqual(await keysUnder(admin, wrongType), [`${wrongType}keys`]);
    });
  },
);

removeTestKeys();
