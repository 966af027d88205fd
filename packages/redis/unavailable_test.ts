import assert from "node:assert/strict";
import { openStore, StoreUnavailableError } from "@flowstate/core";
import redis from "./mod.ts";
import { keysUnder, newPrefix, redisTest, removeTestKeys, withAdmin } from "./_test_utils.ts";
import { listenOutsideEphemeral } from "../../tests/_net.ts";

// A server that cannot be reached, does not answer, refuses us, or goes away
// after the store opened: StoreUnavailableError, naming the store and
// host:port, never the password.

Deno.test("an unreachable server is StoreUnavailableError with the store and address, no password", async () => {
  // Nothing listens on port 1: the connection is refused at once.
  const err = await openStore(
    { plugin: redis, url: "redis://app:s3cret-pw@127.0.0.1:1/0" },
    { name: "cache" },
  ).catch((e) => e);
  assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
  assert.equal(err.code, "STORE_UNAVAILABLE");
  assert.equal(err.store, "cache");
  assert.equal(err.address, "127.0.0.1:1");
  assert.match(
    err.message,
    /^Cannot open store "cache": cannot reach Redis at 127\.0\.0\.1:1: connect ECONNREFUSED/,
  );
  assert.ok(!err.message.includes("s3cret"));
  assert.equal(err.transient, true, "a server down may come up: waited for");
});

Deno.test("a server that accepts but never answers fails after connectTimeout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const err = await openStore(
      { plugin: redis, url: `redis://127.0.0.1:${port}`, connectTimeout: 0.2 },
      { name: "cache" },
    ).catch((e) => e);
    assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
    assert.equal(err.address, `127.0.0.1:${port}`);
    assert.match(err.message, /no answer within connectTimeout \(0\.2 s\)/);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
  }
});

redisTest("a server that refuses the login is StoreUnavailableError saying so", async (url) => {
  const wrong = new URL(url);
  wrong.username = "no_such_flowstate_user";
  wrong.password = "s3cret-pw";
  const err = await openStore({ plugin: redis, url: wrong.href }, { name: "cache" })
    .catch((e) => e);
  assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
  assert.match(err.message, /^Cannot open store "cache": Redis at .* refused: WRONGPASS/);
  assert.ok(!err.message.includes("s3cret"));
  assert.equal(err.transient, false, "a wrong password stays wrong: not waited for");
});

redisTest(
  "a database the server does not have is refused, not replaced by database 0",
  async (url) => {
    // Redis has 16 databases unless configured otherwise; ioredis only emitted the refused SELECT
    // and went on in database 0, where the store wrote.
    const prefix = newPrefix("nodb");
    const missing = new URL(url);
    missing.pathname = "/9999";
    const err = await openStore({ plugin: redis, url: missing.href, prefix }, { name: "cache" })
      .catch((e) => e);
    assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
    assert.match(
      err.message,
      /^Cannot open store "cache": Redis at [^ ]+ refused database 9999 \(the number in the URL's path\): ERR DB index is out of range; use a database the server has/,
    );
    assert.equal(err.transient, false);
    // Nothing was written in database 0 (the test server's) under the prefix.
    await withAdmin(url, async (admin) => assert.deepEqual(await keysUnder(admin, prefix), []));
  },
);

/**
 * A TCP proxy to the server that can be cut: cutting closes its port and
 * every connection through it, as a server that went away; restoring listens
 * on the same port again (a port below the ephemeral range: see
 * {@linkcode listenOutsideEphemeral}).
 */
function cuttableProxy(url: string) {
  const target = new URL(url);
  let listener = listenOutsideEphemeral();
  const port = (listener.addr as Deno.NetAddr).port;
  const conns = new Set<Deno.Conn>();
  const pending: Promise<unknown>[] = [];
  const drop = (c: Deno.Conn) => {
    if (!conns.delete(c)) return;
    try {
      c.close();
    } catch {
      // Already closed.
    }
  };
  /** The accept loop of the listener now: it ends once the listener is closed and its port free. */
  let accepting: Promise<void> = Promise.resolve();
  const accept = (l: Deno.Listener) => {
    accepting = (async () => {
      for await (const client of l) {
        const server = await Deno.connect({
          hostname: target.hostname,
          port: Number(target.port || 6379),
        });
        conns.add(client);
        conns.add(server);
        pending.push(
          server.readable.pipeTo(client.writable).catch(() => {}).finally(() => drop(client)),
          client.readable.pipeTo(server.writable).catch(() => {}).finally(() => drop(server)),
        );
      }
    })().catch(() => {});
    pending.push(accepting);
  };
  accept(listener);
  const proxied = new URL(url);
  proxied.hostname = "127.0.0.1";
  proxied.port = String(port);
  return {
    url: proxied.href,
    /** Resolves once the port is free again (a pending accept holds it until it ends). */
    cut(): Promise<void> {
      listener.close();
      for (const c of [...conns]) drop(c);
      return accepting;
    },
    restore() {
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      accept(listener);
    },
    async close() {
      try {
        listener.close();
      } catch {
        // Cut and not restored.
      }
      for (const c of [...conns]) drop(c);
      await Promise.all(pending);
    },
  };
}

redisTest(
  "a server lost after opening makes operations StoreUnavailableError; they work again once it is back",
  async (url) => {
    const proxy = cuttableProxy(url);
    try {
      const store = await openStore(
        { plugin: redis, url: proxy.url, prefix: newPrefix("lost") },
        { name: "cache" },
      );
      try {
        await store.set(["k"], 1);
        await proxy.cut();
        for (const op of [() => store.get(["k"]), () => store.set(["k"], 2), () => store.count()]) {
          const err = await op().catch((e) => e);
          assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
          assert.equal(err.store, "cache");
          assert.match(
            err.message,
            /^Cannot \w+ (\w+ )?store "cache": cannot reach Redis at 127\.0\.0\.1:\d+: connect ECONNREFUSED .* \(gave up after 2 reconnection attempts\)$/,
          );
        }
        proxy.restore();
        // The client reconnects by itself; a command sent meanwhile waits for it.
        assert.equal((await store.get(["k"]))?.value, 1);
        assert.ok((await store.set(["k"], 3)).ok);
      } finally {
        await store.close();
      }
    } finally {
      await proxy.close();
    }
  },
);

redisTest(
  "a password the server does not ask for is said as a store warning, not printed by ioredis",
  async (url) => {
    const withPassword = new URL(url);
    if (withPassword.password !== "") return; // a server with a password: nothing to show here
    withPassword.password = "needless-pw";
    const printed: unknown[][] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => printed.push(args);
    const warnings: { code: string; message: string }[] = [];
    try {
      await using store = await openStore(
        { plugin: redis, url: withPassword.href, prefix: newPrefix("pw") },
        { name: "cache", onWarning: (w) => warnings.push(w) },
      );
      assert.ok((await store.set(["a"], 1)).ok);
      // ioredis warns after the connection is up: give it a turn to do so.
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      console.warn = warn;
    }
    assert.deepEqual(printed, [], "nothing printed");
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0].code, "REDIS_NEEDLESS_PASSWORD");
    assert.match(warnings[0].message, /asks for no password, so the one in its URL is not sent/);
    assert.ok(!warnings[0].message.includes("needless-pw"));
  },
);

// Last: the tests above all write under this file's prefix.
removeTestKeys();
