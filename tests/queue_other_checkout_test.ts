/**
 * Workers anywhere, one store (docs/queue.md, "Several workers on one
 * PostgreSQL"): a run enqueued from one checkout of the project is run by a
 * worker of another checkout at another path (another machine, or a deploy
 * into a new release folder that removed the old one). Its record names the
 * flow file as the enqueuing process found it; a worker on which that file
 * does not exist runs its own file of that flow id, rather than failing the
 * run with "no such file".
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, workOneRun } from "./_cli_sandbox.ts";

const flow = (from: string) =>
  `id: hello\nnodes: [{ id: a, type: state.set, with: { scope: global, key: ran, value: ${from} } }]\n`;

Deno.test("queue: a worker of another checkout (another path) runs a run enqueued from a checkout whose file it does not have, with its own file of that flow", async () => {
  const root = await Deno.makeTempDir({ prefix: "flowstate-checkouts-" });
  try {
    const db = join(root, "shared.db");
    const [a, b] = [join(root, "a"), join(root, "b")];
    for (const [dir, from] of [[a, "a"], [b, "b"]]) {
      await Deno.mkdir(join(dir, "flows"), { recursive: true });
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  default: { plugin: sqlite, path: ${JSON.stringify(db)} }\nflows: [./flows]\n`,
      );
      await Deno.writeTextFile(join(dir, "flows", "hello.flow.yaml"), flow(from));
    }
    const enqueued = await runCli(a, ["enqueue", "hello"]);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const runId = enqueued.stdout.trim();
    // Checkout a is not on the worker's machine.
    await Deno.remove(a, { recursive: true });
    await workOneRun(b);
    const shown = await runCli(b, ["runs", "show", runId, "--json"]);
    assert.equal(shown.code, 0, shown.stderr);
    const { run } = JSON.parse(shown.stdout);
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const ran = await runCli(b, ["state", "get", "ran", "--scope", "global"]);
    assert.equal(JSON.parse(ran.stdout), "b", "its own file of the flow");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
