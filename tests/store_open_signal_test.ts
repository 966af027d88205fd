/**
 * Ctrl-C while a store opens: `flowstate run` on a postgres store whose server
 * accepts the connection and never answers waits for the login (up to the
 * store's connectTimeout, here ten minutes). The first SIGINT must end the
 * command at once (nothing ran, nothing is recorded), not only say
 * "Cancelling the run" and go on waiting for the open.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand } from "./_cli_sandbox.ts";
import { killQuietly, within } from "./_deadline.ts";

const FLOW = "id: quick\nnodes:\n  - { id: hello, type: log, with: { message: hi } }\n";

Deno.test("the first Ctrl-C ends `flowstate run` while its postgres store is still connecting", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-open-signal-" });
  // Accepts TCP connections and never says a word.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const connected = Promise.withResolvers<void>();
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.push(conn);
        connected.resolve();
      }
    } catch {
      // Closed.
    }
  })();
  const { port } = listener.addr as Deno.NetAddr;
  let child: Deno.ChildProcess | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Deno.writeTextFile(join(dir, "quick.flow.yaml"), FLOW);
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `stores:\n  main: { plugin: postgres, url: "postgres://u@127.0.0.1:${port}/db", ` +
        `connectTimeout: 600 }\n`,
    );
    child = cliCommand(dir, ["run", "quick.flow.yaml"]).spawn();
    const output = child.output();
    // the store is opening: its client reached the server
    await within(connected.promise, "the CLI's store client to connect", {
      onHang: () => killQuietly(child!),
    });
    child.kill("SIGINT");
    // The test's own bound: before the fix, the process waited for the connectTimeout.
    const hung = new Promise<"hung">((resolve) =>
      timer = setTimeout(() => resolve("hung"), 30_000)
    );
    const ended = await Promise.race([output, hung]);
    if (ended === "hung") {
      child.kill("SIGKILL");
      await output;
      assert.fail("still waiting for the store 30 s after the first SIGINT");
    }
    const stderr = new TextDecoder().decode(ended.stderr);
    assert.equal(ended.code, 130, stderr);
    assert.match(stderr, /Cancelling the run \(SIGINT/);
    assert.match(stderr, /Cancelled before the run started: its records store was still opening/);
  } finally {
    clearTimeout(timer);
    listener.close();
    await accepting;
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Closed by the client.
      }
    }
    await Deno.remove(dir, { recursive: true });
  }
});
