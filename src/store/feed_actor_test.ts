/**
 * Who writes, as the change feed records it through runs: built-in nodes,
 * sandboxed custom nodes (their state calls arrive by message from a
 * Worker), and jobs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../runtime.ts";
import type { Change } from "./types.ts";

const NODE = `
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
export default {
  kind: "flowstate.node",
  optionsSchema: schema,
  async run(ctx) {
    await ctx.flow.set("from-worker", 1);
    return "ok";
  },
};
`;

/** A runtime in `dir` as actor "tester", over one sqlite store with a change feed (and the records). */
function auditedRuntime(dir: string) {
  return openRuntime({
    cwd: dir,
    actor: "tester",
    config: {
      stores: { main: { plugin: "sqlite", path: join(dir, "s.db"), changes: { keep: "1d" } } },
      records: "main",
    },
  });
}

Deno.test("feed: a run's writes name the run, flow and node; a sandboxed node's too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-feed-actor-" });
  try {
    await Deno.writeTextFile(join(dir, "custom.js"), NODE);
    await Deno.writeTextFile(
      join(dir, "f.flow.yaml"),
      [
        "id: audited",
        "nodes:",
        "  - id: builtin",
        "    type: state.set",
        "    with: { scope: flow, key: from-builtin, value: 2 }",
        "  - id: custom",
        "    type: ./custom.js",
        "    needs: [builtin]",
        "  - id: count",
        "    type: state.increment",
        "    needs: [custom]",
        "    with: { scope: flow, key: counted }",
        "  - id: count-again",
        "    type: state.increment",
        "    needs: [count]",
        "    with: { scope: flow, key: counted }",
        "  - id: forget",
        "    type: state.delete",
        "    needs: [count-again]",
        "    with: { scope: flow, key: from-builtin }",
      ].join("\n"),
    );
    await using rt = await auditedRuntime(dir);
    const run = await rt.runFlow(join(dir, "f.flow.yaml"));
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const store = await rt.store("main");
    const mine: Change[] = [];
    for await (const c of store.changes()) {
      if (c.key[0] === "flow") mine.push(c);
    }
    assert.deepEqual(
      mine.map((c) => [c.key.at(-1), c.op, c.by.runId, c.by.flowId, c.by.nodeId, c.by.actor]),
      [
        ["from-builtin", "set", run.id, "audited", "builtin", "tester"],
        ["from-worker", "set", run.id, "audited", "custom", "tester"],
        ["counted", "set", run.id, "audited", "count", "tester"],
        ["counted", "set", run.id, "audited", "count-again", "tester"],
        ["from-builtin", "delete", run.id, "audited", "forget", "tester"],
      ],
    );
    // Outside of a node (the run's own records), the process's declared actor.
    const others: Change[] = [];
    for await (const c of store.changes()) if (c.by.nodeId === undefined) others.push(c);
    assert.ok(others.length > 0 && others.every((c) => c.by.actor === "tester"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("feed: a sub-run's records are not credited to the parent's node; its nodes' writes name the sub-run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-feed-actor-" });
  try {
    await Deno.writeTextFile(
      join(dir, "child.flow.yaml"),
      "id: child\nnodes:\n  - id: mark\n    type: state.set\n    with: { scope: flow, key: marked, value: 1 }\n",
    );
    await Deno.writeTextFile(
      join(dir, "parent.flow.yaml"),
      [
        "id: parent",
        "nodes:",
        "  - id: call",
        "    type: flow",
        "    with: { flow: ./child.flow.yaml }",
        "  - id: own",
        "    type: state.set",
        "    needs: [call]",
        "    with: { scope: flow, key: own, value: 2 }",
      ].join("\n"),
    );
    await using rt = await auditedRuntime(dir);
    const run = await rt.runFlow(join(dir, "parent.flow.yaml"));
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const store = await rt.store("main");
    const byParent: string[] = [];
    const flowWrites: unknown[][] = [];
    for await (const c of store.changes()) {
      if (c.by.runId === run.id) byParent.push(c.key.join("/"));
      if (c.key[0] === "flow") {
        flowWrites.push([c.key.join("/"), c.by.flowId, c.by.nodeId, c.by.actor]);
        if (c.by.flowId === "child") assert.notEqual(c.by.runId, run.id);
      }
    }
    // The parent run's changes are its nodes' state writes, not the sub-run's records.
    assert.deepEqual(byParent, ["flow/parent/own"]);
    assert.deepEqual(flowWrites, [
      ["flow/child/marked", "child", "mark", "tester"],
      ["flow/parent/own", "parent", "own", "tester"],
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
