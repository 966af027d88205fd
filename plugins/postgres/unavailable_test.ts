import assert from "node:assert/strict";
import { openStore, StoreUnavailableError } from "../../mod.ts";
import { cliErrors, pgTest } from "./_test_utils.ts";

// No server needed: nothing listens on port 1, so the connection is refused at once.
const URL_WITHOUT_SERVER = "postgres://flow:s3cret-pw@127.0.0.1:1/test";

Deno.test("postgres plugin throws StoreUnavailableError with the store and address for a server it cannot reach", async () => {
  const err = await openStore({ plugin: "postgres", url: URL_WITHOUT_SERVER }, { name: "main" })
    .catch((e) => e);
  assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
  assert.equal(err.code, "STORE_UNAVAILABLE");
  assert.equal(err.store, "main");
  assert.equal(err.address, "127.0.0.1:1");
  assert.ok(!err.message.includes("s3cret"));
  assert.equal(err.transient, true, "a refused connection may be accepted later: waited for");
});

pgTest(
  "postgres plugin: a database that does not exist is unavailable but not transient (waiting does not fix it)",
  async (url) => {
    const missing = new URL(url);
    missing.pathname = `/flowstate_missing_${crypto.randomUUID().slice(0, 8)}`;
    const err = await openStore({ plugin: "postgres", url: missing.href }, { name: "main" })
      .catch((e) => e);
    assert.ok(err instanceof StoreUnavailableError, `got ${err}`);
    assert.match(err.message, /refused: database "flowstate_missing_\w+" does not exist/);
    assert.equal(err.transient, false);
  },
);

Deno.test("the CLI reports an unreachable store in one line, exit 1, without the --debug hint", async () => {
  const { code, lines } = await cliErrors(
    `stores:\n  main: { plugin: postgres, url: "${URL_WITHOUT_SERVER}" }\n`,
    ["state", "get", "k"],
  );
  assert.equal(code, 1);
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(
    lines[0],
    /^error: Cannot open store "main": cannot reach PostgreSQL at 127\.0\.0\.1:1/,
  );
});

/**
 * A TCP server on 127.0.0.1 that answers whatever comes with an HTTP 400 and
 * closes (a web server or proxy on the port a postgres URL names).
 */
function httpOnPort(): { port: number; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const answer = new TextEncoder().encode(
    "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
  );
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    try {
      await conn.read(new Uint8Array(1000));
      await conn.write(answer);
    } catch {
      // The client went first.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) void serve(conn);
    } catch {
      // Closed.
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close: async () => {
      listener.close();
      await accepting;
      for (const conn of conns) conn.close();
    },
  };
}

Deno.test("postgres plugin says a server that answers but is not PostgreSQL is not, within connectTimeout", async () => {
  const server = httpOnPort();
  // The test's own bound: the open used to reconnect without end (it never settled).
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<"hung">((resolve) => timer = setTimeout(() => resolve("hung"), 30_000));
  try {
    const url = `postgres://flow:s3cret-pw@127.0.0.1:${server.port}/x`;
    const outcome = await Promise.race([
      openStore({ plugin: "postgres", url, connectTimeout: 0.5 }, { name: "main" }).then(
        () => "opened",
        (err) => err,
      ),
      hung,
    ]);
    assert.ok(outcome instanceof StoreUnavailableError, `got ${outcome}`);
    assert.equal(outcome.store, "main");
    assert.equal(outcome.address, `127.0.0.1:${server.port}`);
    assert.equal(
      outcome.message,
      `Cannot open store "main": cannot reach PostgreSQL at 127.0.0.1:${server.port} ` +
        `(database "x"): 127.0.0.1:${server.port} answered, but not as PostgreSQL (check the port)`,
    );
  } finally {
    clearTimeout(timer);
    await server.close();
  }
});
