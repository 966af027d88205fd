// `runs.timeout` in the config: a run of a flow without a `timeout:` of its own is stopped and
// recorded `timed-out` past it (a node that never returns no longer holds a run, or a worker's
// slot, forever); a flow's own `timeout:` wins; a bad value is refused where it is written.
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, openRuntime } from "../mod.ts";
import { withCliProject } from "./_cli_sandbox.ts";

const STUCK = `export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  run: () => new Promise(() => {}),
};
`;

Deno.test("runs.timeout stops a run whose flow sets no timeout, naming the setting; a flow's own timeout: wins", async () => {
  await using rt = await openRuntime({
    config: {
      stores: { main: { plugin: "memory" } },
      runs: { timeout: "300ms", abortGrace: "1s" },
    },
  });
  const stuck = await rt.runFlow({
    id: "stuck",
    nodes: [{ id: "wait", type: "delay", with: { for: "1h" } }],
  });
  assert.equal(stuck.status, "timed-out");
  assert.equal(
    stuck.error?.message,
    "the flow timed out after 300 ms (runs.timeout in the config)",
  );
  const own = await rt.runFlow({
    id: "own",
    timeout: "100ms",
    nodes: [{ id: "wait", type: "delay", with: { for: "1h" } }],
  });
  assert.equal(own.status, "timed-out");
  assert.equal(own.error?.message, "the flow timed out after 100 ms");
  // Within the limit, nothing changes.
  const quick = await rt.runFlow({
    id: "quick",
    nodes: [{ id: "n", type: "transform", with: { value: 1 } }],
  });
  assert.equal(quick.status, "succeeded");
});

Deno.test("runs.timeout: a bad value is refused at its place in the config", async () => {
  for (const [timeout, problem] of [[0, /longer than 0/], ["soon", /duration/]] as const) {
    const err = await openRuntime({
      config: { stores: { main: { plugin: "memory" } }, runs: { timeout } },
    }).then((rt) => rt.close(), (e) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /runs\.timeout/);
    assert.match(err.message, problem);
  }
});

Deno.test("flowstate run: a sandboxed node that never returns is stopped by runs.timeout; exit code and record say timed-out", async () => {
  await withCliProject(
    "stores:\n  default: { plugin: sqlite, path: .flowstate/state.db }\nruns:\n  timeout: 500ms\n  abortGrace: 1s\n",
    async (run, dir) => {
      await Deno.writeTextFile(join(dir, "stuck.js"), STUCK);
      await Deno.writeTextFile(
        join(dir, "stuck.flow.yaml"),
        "id: stuck\nnodes:\n  - { id: s, type: ./stuck.js }\n",
      );
      const result = await run("run", "stuck.flow.yaml", "--json");
      assert.notEqual(result.code, 0, result.stdout);
      const record = JSON.parse(result.stdout) as { status: string; error: { message: string } };
      assert.equal(record.status, "timed-out");
      assert.match(
        record.error.message,
        /^the flow timed out after 500 ms \(runs\.timeout in the config\)/,
      );
    },
  );
});
