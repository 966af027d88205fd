/**
 * A session that dies right after its login (the connection cut, the
 * backend killed, before it answered the first query): opening the store
 * fails with a StoreUnavailableError, and the process goes on. The client
 * used to send a query of its own after each login (the array types) whose
 * failure nobody handled: the process ended with an uncaught error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, StoreUnavailableError } from "../../mod.ts";
import { withCliProject } from "../../tests/_cli_sandbox.ts";
import { cuttableProxy, dropTestSchema, pgTest, ROOT, SCHEMA, TESTDATA } from "./_test_utils.ts";

/** What opening a store through a proxy that cuts each session after its login says. */
const CUT_AFTER_LOGIN =
  /^Cannot open store "main": cannot reach PostgreSQL at 127\.0\.0\.1:(\d+) \(database "[^"]+"\): /;

pgTest(
  "a session cut right after its login: opening the store fails with StoreUnavailableError",
  async (url) => {
    const proxy = cuttableProxy(url, { killAfterLogin: true });
    try {
      const err = await openStore(
        { plugin: "postgres", url: proxy.url, schema: SCHEMA, table: "login_cut" },
        { name: "main" },
      ).catch((e) => e);
      assert.ok(err instanceof StoreUnavailableError, `got ${err?.stack ?? err}`);
      assert.equal(err.store, "main");
      assert.equal(err.address, new URL(proxy.url).host);
      assert.match(err.message, CUT_AFTER_LOGIN);
      assert.ok(proxy.kills >= 1, "no session logged in through the proxy");
    } finally {
      await proxy.close();
    }
  },
);

pgTest(
  "a session cut right after its login: the process that opens the store goes on",
  async (url) => {
    const proxy = cuttableProxy(url, { killAfterLogin: true });
    try {
      // A process of its own: an uncaught error would end it (exit code 1, "Uncaught" on stderr).
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          "--allow-net=127.0.0.1",
          join(TESTDATA, "postgres_open.ts"),
          proxy.url,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, stderr);
      assert.equal(stderr, "");
      const message = JSON.parse(new TextDecoder().decode(output.stdout));
      assert.match(message, CUT_AFTER_LOGIN);
      assert.ok(proxy.kills >= 1, "no session logged in through the proxy");
    } finally {
      await proxy.close();
    }
  },
);

pgTest(
  "a session cut right after its login: the CLI says the store is unavailable, in one line",
  async (url) => {
    const proxy = cuttableProxy(url, { killAfterLogin: true });
    try {
      await withCliProject(
        `stores:\n  main: { plugin: postgres, url: "${proxy.url}", schema: ${SCHEMA}, ` +
          `table: login_cut_cli }\n`,
        async (run) => {
          const result = await run("state", "get", "k");
          assert.equal(result.code, 1, result.stderr);
          const lines = result.stderr.trimEnd().split("\n");
          assert.equal(lines.length, 1, result.stderr);
          assert.match(lines[0].replace(/^error: /, ""), CUT_AFTER_LOGIN);
          assert.ok(lines[0].startsWith("error: "), lines[0]);
        },
      );
      assert.ok(proxy.kills >= 1, "no session logged in through the proxy");
    } finally {
      await proxy.close();
    }
  },
);

dropTestSchema();
