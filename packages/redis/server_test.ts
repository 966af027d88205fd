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

/** The store "jobs" under the prefix `app:` of the server at `url`. */
const openApp = (url: string) =>
  openStore({ plugin: redis, url, prefix: "app:" }, { name: "jobs" });

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
    await using store = await openApp(server.url);
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
    await using again = await openApp(server.url);
    assert.equal(await again.get(["a"]), null);
    assert.ok((await store.set(["b"], 2)).ok, "the first handle works again too");
  },
);

ownServerTest(
  "FLUSHDB under an open store: the store says it is gone",
  [],
  async (server) => {
    await using store = await openApp(server.url);
    assert.ok((await store.set(["a"], 1)).ok);
    await server.admin.flushdb();
    const err = await store.set(["a"], 2).catch((e) => e);
    assert.ok(err instanceof StoreCorruptError, `got ${err}`);
    assert.match(err.message, GONE("write to"));
    assert.deepEqual(await server.admin.keys("*"), []);
  },
);

/**
 * A TCP proxy to `url` that can lose the next reply: `loseNextReply()` makes it drop the next
 * bytes the server sends and close that connection, as a network that fails after the server
 * ran a command and before its answer arrived.
 */
function replyLosingProxy(url: string) {
  const target = new URL(url);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const pending: Promise<unknown>[] = [];
  let lose = false;
  let lost = 0;
  const closeQuietly = (c: Deno.Conn) => {
    conns.delete(c);
    try {
      c.close();
    } catch {
      // Closed already.
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
      conns.add(client);
      conns.add(server);
      pending.push(
        client.readable.pipeTo(server.writable).catch(() => {}).finally(() => closeQuietly(server)),
        (async () => {
          const buf = new Uint8Array(64 * 1024);
          for (;;) {
            const n = await server.read(buf).catch(() => null);
            if (n === null) break;
            if (lose) {
              lose = false;
              lost++;
              break;
            }
            let at = 0;
            while (at < n) at += await client.write(buf.subarray(at, n));
          }
        })().catch(() => {}).finally(() => {
          closeQuietly(client);
          closeQuietly(server);
        }),
      );
    }
  })().catch(() => {});
  return {
    url: `redis://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    loseNextReply() {
      lose = true;
    },
    lost: () => lost,
    async close() {
      listener.close();
      for (const c of [...conns]) closeQuietly(c);
      await accepting;
      await Promise.all(pending);
    },
  };
}

ownServerTest(
  "a commit whose answer was lost is sent again on reconnection and reported as applied, not as a conflict",
  [],
  async (server) => {
    const proxy = replyLosingProxy(server.url);
    try {
      await using store = await openStore(
        { plugin: redis, url: proxy.url, prefix: "app:" },
        { name: "jobs" },
      );
      assert.ok((await store.set(["counter"], 1)).ok);
      const read = await store.get<number>(["counter"]);
      proxy.loseNextReply();
      // The server runs the commit; its answer is lost with the connection; the client
      // reconnects and sends the commit again, whose check no longer holds (the first run
      // changed the version). Reporting a conflict would make a compare-and-set loop add again.
      const result = await store.atomic().check(read!.key, read!.version).set(
        ["counter"],
        read!.value + 1,
      ).commit();
      assert.equal(proxy.lost(), 1, "the answer was lost");
      assert.ok(result.ok, "the commit was applied once: not a conflict");
      assert.equal((await store.get<number>(["counter"]))?.value, 2);
    } finally {
      await proxy.close();
    }
  },
);

ownServerTest(
  "an ACL user without a command or the store's keys is refused naming the user and what to grant",
  [],
  async ({ url, admin }) => {
    await admin.call("ACL", "SETUSER", "noeval", "on", ">pw", "~*", "+@all", "-eval", "-evalsha");
    await admin.call("ACL", "SETUSER", "otherkeys", "on", ">pw", "~other:*", "+@all");
    const grant =
      "ACL SETUSER (\\w+) ~app:\\* \\+@read \\+@write \\+@scripting \\+@connection \\+info$";
    for (const [user, why] of [["noeval", "'eval' command"], ["otherkeys", "one of the keys"]]) {
      const withUser = new URL(url);
      withUser.username = user;
      withUser.password = "pw";
      const err = await openStore({ plugin: redis, url: withUser.href, prefix: "app:" }, {
        name: "jobs",
      }).catch((e) => e);
      assert.ok(err instanceof StoreUnavailableError, `${user}: got ${err}`);
      assert.equal(err.transient, false);
      assert.match(
        err.message,
        new RegExp(
          `^Cannot open store "jobs": Redis at 127\\.0\\.0\\.1:\\d+ refused user "${user}": ` +
            `NOPERM .*${why}.*; the store needs its keys and the commands it runs, inside its Lua ` +
            `scripts too: ${grant}`,
        ),
      );
      assert.equal(new RegExp(grant).exec(err.message)?.[1], user);
      assert.ok(!err.message.includes("pw@"), "no password");
    }
    // The grant the message gives is enough.
    await admin.call(
      "ACL",
      "SETUSER",
      "otherkeys",
      "reset",
      "on",
      ">pw",
      ..."~app:* +@read +@write +@scripting +@connection +info".split(" "),
    );
    await using store = await openStore(
      { plugin: redis, url: url.replace("redis://", "redis://otherkeys:pw@"), prefix: "app:" },
      { name: "jobs" },
    );
    assert.ok((await store.set(["a"], 1, { expireIn: 60_000 })).ok);
    assert.equal(await store.count(), 1);
    assert.equal(await store.clear(["b"]), 0);
    assert.equal(await store.purgeExpired(), 0);
  },
);

ownServerTest(
  "an ACL user without INFO opens the store with the warning that the eviction policy was not checked",
  [],
  async ({ url, admin }) => {
    await admin.call("ACL", "SETUSER", "noinfo", "on", ">pw", "~*", "+@all", "-info");
    const warnings: { code: string; message: string }[] = [];
    const warn = console.warn;
    console.warn = () => {}; // ioredis says it skips its ready check
    try {
      await using store = await openStore(
        { plugin: redis, url: url.replace("redis://", "redis://noinfo:pw@"), prefix: "app:" },
        { name: "jobs", onWarning: (w) => warnings.push(w) },
      );
      assert.ok((await store.set(["a"], 1)).ok);
    } finally {
      console.warn = warn;
    }
    assert.deepEqual(warnings.map((w) => w.code), ["REDIS_EVICTION_UNCHECKED"]);
    assert.match(
      warnings[0].message,
      /^Store "jobs": could not check the maxmemory-policy of Redis at 127\.0\.0\.1:\d+ \(INFO memory: NOPERM .*\); .* Allow the user INFO \(\+info\), or make sure the policy is noeviction$/,
    );
  },
);

ownServerTest(
  "count and clear leave out expired entries past a page of them (walked by rank on the server)",
  [],
  async ({ url }) => {
    let now = 1_000_000;
    await using store = await openStore(
      { plugin: redis, url, prefix: "app:" },
      { name: "jobs", clock: { now: () => now } },
    );
    // 1,700 entries, 1,200 of which expire: more than the expired ones, so the script walks the
    // expired keys (three pages of 500) and tells those in the range from the others.
    for (let from = 0; from < 1700; from += 100) {
      const op = store.atomic();
      for (let i = from; i < from + 100; i++) {
        const key = [i % 2 === 0 ? "even" : "odd", String(i).padStart(4, "0")];
        op.set(key, i, i < 1200 ? { expireIn: 1000 } : {});
      }
      assert.ok((await op.commit()).ok);
    }
    assert.equal(await store.count(), 1700);
    now += 1000;
    assert.equal(await store.count(), 500);
    assert.equal(await store.count(["even"]), 250);
    assert.equal(await store.count(["odd"]), 250);
    assert.equal(await store.clear(["odd"]), 250);
    assert.equal(await store.count(), 250);
  },
);

ownServerTest(
  "rediss:// (TLS) to a server without TLS: the error says the URL asks for TLS",
  [],
  async ({ url }) => {
    const tls = url.replace("redis://", "rediss://");
    const err = await openStore({ plugin: redis, url: tls, connectTimeout: 1 }, { name: "jobs" })
      .catch((e) => e);
    assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
    assert.match(
      err.message,
      /^Cannot open store "jobs": cannot reach Redis at 127\.0\.0\.1:\d+: .* \(the URL asks for TLS with rediss:\/\/: if the server does not speak TLS, use redis:\/\/\)$/,
    );
  },
);

ownServerTest(
  "a server with requirepass and a URL without (or with a wrong) password: the error says how to give it",
  ["--requirepass", "s3cret-pw"],
  async ({ url }) => {
    for (
      const [given, code] of [[url, "NOAUTH"], [url.replace("//", "//:wrong-pw@"), "WRONGPASS"]]
    ) {
      const err = await openStore({ plugin: redis, url: given, prefix: "app:" }, { name: "jobs" })
        .catch((e) => e);
      assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
      assert.equal(err.transient, false);
      assert.match(
        err.message,
        new RegExp(
          `^Cannot open store "jobs": Redis at 127\\.0\\.0\\.1:\\d+ refused: ${code} .*; give the ` +
            `server's user and password in the URL, redis://\\[user\\]:password@host:port, kept in ` +
            `an environment variable \\(url: "\\$\\{env\\.REDIS_URL\\}"\\)$`,
        ),
      );
      assert.ok(!err.message.includes("wrong-pw"));
    }
  },
);
