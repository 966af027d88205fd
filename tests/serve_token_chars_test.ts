/**
 * A token no client can send whole (a space, a control character such as a
 * token file's extra blank line, a quote, `;`) is refused when the server
 * starts, naming where it came from and what to use — it used to serve, and
 * every request carrying it was a 401 "the token is wrong".
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import { serve } from "../serve.ts";
import { runCli, withSandbox } from "./_cli_sandbox.ts";

Deno.test("serve(): a token holding a space or a control character is refused", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  for (const token of ["two words", "tok\n", 'a"b', "a;b", "caf\u00e9"]) {
    await assert.rejects(
      () => serve(rt, { port: 0, worker: false, token }),
      (err: Error) => {
        assert.ok(err instanceof RangeError, String(err));
        assert.match(err.message, /^Cannot serve: the token holds /);
        assert.match(err.message, /use letters, digits and -\._~\+\/=/);
        return true;
      },
    );
  }
  // What openssl rand -base64 and the generated tokens are made of is taken.
  await using server = await serve(rt, { port: 0, worker: false, token: "aB3+/x_-~.==" });
  const res = await fetch(new URL("/api/stores", server.url), {
    headers: { authorization: "Bearer aB3+/x_-~.==" },
  });
  assert.equal(res.status, 200);
  await res.body?.cancel();
});

Deno.test("flowstate serve: a token that cannot be sent is exit 2 naming its source", async () => {
  await withSandbox(async ({ dir }) => {
    const flag = await runCli(dir, ["serve", "--port", "0", "--token", "two words"]);
    assert.equal(flag.code, 2, flag.stderr);
    assert.match(
      flag.stderr,
      /Cannot serve: the token of --token holds " " \(at character 4 of 9\)/,
    );
    const file = join(dir, "token");
    await Deno.writeTextFile(file, "sekrit\n\n");
    const fromFile = await runCli(dir, ["serve", "--port", "0"], {
      env: { FLOWSTATE_SERVE_TOKEN_FILE: file },
    });
    assert.equal(fromFile.code, 2, fromFile.stderr);
    assert.match(
      fromFile.stderr,
      /Cannot serve: the token of the file FLOWSTATE_SERVE_TOKEN_FILE names holds "\\n"/,
    );
  });
});
