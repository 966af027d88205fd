/**
 * A session killed right after its login (`pg_terminate_backend`, a pooler
 * restarting, a network cut, before it answered its first query): opening
 * the store fails with a StoreUnavailableError, and the process goes on.
 * The client used to send a query of its own after each login (the array
 * types) whose failure nobody handled: the process ended with an uncaught
 * error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, StoreUnavailableError } from "../../mod.ts";
import { withCliProject } from "../../tests/_cli_sandbox.ts";
import {
  cuttableProxy,
  dropTestSchema,
  pgTest,
  ROOT,
  SCHEMA,
  settlesWithin,
  TESTDATA,
} from "./_test_utils.ts";

/** What opening a store whose every session is killed after its login says. */
const KILLED_AFTER_LOGIN =
  /^Cannot open store "main": cannot reach PostgreSQL at 127\.0\.0\.1:(\d+) \(database "[^"]+"\): /;

/**
 * Run `fn` with a URL of the server of `url` through a proxy that kills every session when
 * its first query arrives (or, `"close"`, closes its connection: see `cuttableProxy`); at
 * least one was.
 */
async function throughKillingProxy(
  url: string,
  fn: (url: string) => Promise<void>,
  afterLogin: "kill" | "close" = "kill",
) {
  const proxy = cuttableProxy(url, { afterLogin });
  try {
    await fn(proxy.url);
    assert.ok(proxy.kills >= 1, "no session logged in through the proxy");
  } finally {
    await proxy.close();
  }
}

pgTest(
  "a session killed right after its login: opening the store fails with StoreUnavailableError",
  (url) =>
    throughKillingProxy(url, async (proxied) => {
      const err = await openStore(
        { plugin: "postgres", url: proxied, schema: SCHEMA, table: "login_killed" },
        { name: "main" },
      ).catch((e) => e);
      assert.ok(err instanceof StoreUnavailableError, `got ${err?.stack ?? err}`);
      assert.equal(err.store, "main");
      assert.equal(err.address, new URL(proxied).host);
      assert.match(err.message, KILLED_AFTER_LOGIN);
    }),
);

pgTest(
  "a session killed right after its login: the process that opens the store goes on",
  (url) =>
    throughKillingProxy(url, async (proxied) => {
      // A process of its own: an uncaught error would end it (exit code 1, "Uncaught" on stderr).
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          "--allow-net=127.0.0.1",
          join(TESTDATA, "postgres_open.ts"),
          proxied,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, stderr);
      assert.equal(stderr, "");
      assert.match(JSON.parse(new TextDecoder().decode(output.stdout)), KILLED_AFTER_LOGIN);
    }),
);

pgTest(
  "a session killed right after its login: the CLI says the store is unavailable, in one line",
  (url) =>
    throughKillingProxy(url, (proxied) =>
      withCliProject(
        `stores:\n  main: { plugin: postgres, url: "${proxied}", schema: ${SCHEMA}, ` +
          `table: login_killed_cli }\n`,
        async (run) => {
          const result = await run("state", "get", "k");
          assert.equal(result.code, 1, result.stderr);
          const lines = result.stderr.trimEnd().split("\n");
          assert.equal(lines.length, 1, result.stderr);
          assert.ok(lines[0].startsWith("error: "), lines[0]);
          assert.match(lines[0].slice("error: ".length), KILLED_AFTER_LOGIN);
        },
      )),
);

pgTest(
  "a connection closed right after its login: opening the store fails with StoreUnavailableError",
  (url) =>
    throughKillingProxy(url, async (proxied) => {
      // The test's own bound: the client used to log in again and again, and the open to wait
      // for good (its login deadline had passed: the login went through).
      const err = await settlesWithin(
        openStore(
          { plugin: "postgres", url: proxied, schema: SCHEMA, table: "login_closed" },
          { name: "main" },
        ).catch((e) => e),
        60_000,
        "opening the store",
      );
      assert.ok(err instanceof StoreUnavailableError, `got ${err?.stack ?? err}`);
      assert.equal(err.store, "main");
      assert.match(err.message, KILLED_AFTER_LOGIN);
    }, "close"),
);

dropTestSchema();
