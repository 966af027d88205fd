/**
 * A node that loops over state calls on a synchronous backend (memory,
 * sqlite: no call gives the event loop a turn) still has its `timeout:`
 * enforced and still sees Ctrl-C: the views give the event loop a turn now
 * and then, and refuse the calls of an attempt stopped meanwhile.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { exitOf, hangGuard } from "./_deadline.ts";

/** A node that sets keys until it is stopped, or until `seconds` passed (then it succeeds). */
const LOOP = `
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
export default {
  kind: "flowstate.node",
  optionsSchema: schema,
  async run(ctx, options) {
    const until = Date.now() + options.seconds * 1000;
    let i = 0;
    ctx.log("looping");
    while (Date.now() < until) await ctx.flow.set(["item", String(i++ % 1000)], i);
    return i;
  },
};
`;

async function project(store: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-view-yield-" });
  await Deno.mkdir(join(dir, "nodes"));
  await Deno.writeTextFile(join(dir, "nodes", "loop.js"), LOOP);
  await Deno.writeTextFile(
    join(dir, "flowstate.yaml"),
    `stores:\n  main: ${store}\nnodes:\n  trusted: [./nodes/loop.js]\n`,
  );
  await Deno.writeTextFile(
    join(dir, "loop.flow.yaml"),
    "id: loop\nnodes:\n  - id: loop\n    type: ./nodes/loop.js\n    timeout: 200ms\n    with: { seconds: 15 }\n",
  );
  await Deno.writeTextFile(
    join(dir, "long.flow.yaml"),
    "id: long\nnodes:\n  - id: loop\n    type: ./nodes/loop.js\n    with: { seconds: 15 }\n",
  );
  return dir;
}

for (const [name, store] of [["memory", "{ plugin: memory }"], ["sqlite", "{ plugin: sqlite }"]]) {
  Deno.test(`a node looping over state calls on ${name} times out at its timeout`, async () => {
    const dir = await project(store);
    try {
      await using rt = await openRuntime({ config: "flowstate.yaml", cwd: dir });
      const run = await rt.runFlow(join(dir, "loop.flow.yaml"));
      assert.equal(run.nodes.loop.status, "timed-out", JSON.stringify(run.nodes.loop));
      assert.equal(run.status, "failed");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("flowstate run: Ctrl-C reaches a node looping over state calls on sqlite: cancelled, exit 130", async () => {
  const dir = await project("{ plugin: sqlite }");
  try {
    const child = cliCommand(dir, ["run", "long.flow.yaml"], { stdout: "piped" }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let said = "";
    using _hang = hangGuard(child, () => said);
    while (!said.includes("looping")) {
      const { value, done } = await reader.read();
      if (done) break;
      said += value;
    }
    assert.match(said, /looping/);
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      said += value;
    }
    const status = await exitOf(child);
    await child.stdout.cancel();
    assert.equal(status.code, 130, said);
    const listed = await runCli(dir, ["runs", "ls", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      JSON.parse(listed.stdout).map((r: { status: string }) => r.status),
      ["cancelled"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("state.query and state.search record the prefix they read, as state.list does", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const reads: Record<string, unknown> = {};
  const run = await rt.runFlow({
    id: "qr",
    nodes: [
      { id: "l", type: "state.list", with: { scope: "flow", prefix: "users" } },
      {
        id: "q",
        type: "state.query",
        with: { scope: "flow", prefix: "users", where: [{ path: "age", op: "gt", value: 1 }] },
      },
      { id: "s", type: "state.search", with: { scope: "flow", text: "ada", prefix: "users" } },
      { id: "all", type: "state.query", with: { scope: "flow" } },
    ],
  }, {
    onEvent: (e) => {
      if (e.type === "node.end") reads[e.node] = e.reads;
    },
  });
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  const users = [{ scope: "flow", key: ["users"], prefix: true }];
  assert.deepEqual(reads, {
    l: users,
    q: users,
    s: users,
    all: [{ scope: "flow", key: [], prefix: true }],
  });
});
