import assert from "node:assert/strict";
import { join } from "node:path";
import { FlowValidationError, openRuntime } from "../mod.ts";
import { FlowCache } from "./flow_cache.ts";
import { flowHostOf } from "./runtime.ts";
import { hashFlowDefinition } from "./records/flow_version.ts";

const counter = (by: number) =>
  `id: cached
nodes:
  - id: bump
    type: state.increment
    with: { scope: flow, key: count, by: ${by} }
outputs:
  count: "\${{ nodes.bump.output }}"
`;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-flow-cache-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("runFlow(path) prepares a flow file once per content and records one version", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "cached.flow.yaml");
    await Deno.writeTextFile(file, counter(1));
    await using rt = await openRuntime({
      config: { stores: { main: { plugin: "memory" } } },
      cwd: dir,
    });
    const cache = flowHostOf(rt).host.flows!;
    const first = await rt.runFlow("cached.flow.yaml");
    const second = await rt.runFlow(file); // another name for the same file: prepared again
    const third = await rt.runFlow("cached.flow.yaml");
    assert.deepEqual(
      [first.status, second.status, third.status],
      ["succeeded", "succeeded", "succeeded"],
    );
    assert.deepEqual([first.outputs, second.outputs, third.outputs], [
      { count: 1 },
      { count: 2 },
      { count: 3 },
    ]);
    assert.deepEqual(cache.stats, { hits: 1, misses: 2, size: 2 });
    // The version is the hash of the definition, as without the cache.
    const records = await rt.records();
    const versions = await records.listVersions("cached");
    assert.equal(versions.length, 1);
    assert.equal(versions[0].hash, await hashFlowDefinition(versions[0].definition));
    assert.equal(third.flowVersion, versions[0].hash);
  });
});

Deno.test("runFlow(path) picks up an edited flow file, and one that became invalid fails clearly", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "cached.flow.yaml");
    await Deno.writeTextFile(file, counter(1));
    await using rt = await openRuntime({
      config: { stores: { main: { plugin: "memory" } } },
      cwd: dir,
    });
    const one = await rt.runFlow("cached.flow.yaml");
    await Deno.writeTextFile(file, counter(10));
    const edited = await rt.runFlow("cached.flow.yaml");
    assert.deepEqual([one.outputs, edited.outputs], [{ count: 1 }, { count: 11 }]);
    assert.notEqual(edited.flowVersion, one.flowVersion);
    const records = await rt.records();
    const versions = await records.listVersions("cached");
    assert.deepEqual(versions.map((v) => v.hash), [edited.flowVersion, one.flowVersion]);
    assert.equal((await records.getHead("cached"))?.hash, edited.flowVersion);

    // Invalid now: the same error as without a cache, and nothing is run or written.
    await Deno.writeTextFile(file, counter(10).replace("state.increment", "state.incremnt"));
    const err = await rt.runFlow("cached.flow.yaml").catch((e) => e);
    assert.ok(err instanceof FlowValidationError);
    assert.match(
      err.message,
      /cached\.flow\.yaml:4:11: nodes\[0\]\.type: unknown node type "state\.incremnt" \(did you mean "state\.increment"\?\)/,
    );
    assert.equal((await records.listRuns({ flowId: "cached" })).runs.length, 2);

    // Back to an earlier content: the cached preparation runs, on the earlier version.
    await Deno.writeTextFile(file, counter(1));
    const back = await rt.runFlow("cached.flow.yaml");
    assert.deepEqual(back.outputs, { count: 12 });
    assert.equal(back.flowVersion, one.flowVersion);
    assert.equal((await records.getHead("cached"))?.hash, one.flowVersion);
    assert.equal(flowHostOf(rt).host.flows!.stats.hits, 1);
  });
});

Deno.test("runFlow(definition) reuses the preparation of equal content, whatever the key order", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const cache = flowHostOf(rt).host.flows!;
  const def = {
    id: "inline",
    nodes: [{ id: "a", type: "transform", with: { value: "${{ inputs.n }}" } }],
    inputs: { n: { type: "number" } },
    outputs: { n: "${{ nodes.a.output }}" },
  };
  const a = await rt.runFlow(def, { input: { n: 1 } });
  const b = await rt.runFlow(
    { outputs: def.outputs, inputs: def.inputs, nodes: def.nodes, id: "inline" },
    { input: { n: 2 } },
  );
  assert.deepEqual([a.outputs, b.outputs], [{ n: 1 }, { n: 2 }]);
  assert.equal(a.flowVersion, b.flowVersion);
  assert.deepEqual(cache.stats, { hits: 1, misses: 1, size: 1 });

  // A changed definition is prepared again, and a bad one is refused as before.
  const c = await rt.runFlow({ ...def, description: "changed" }, { input: { n: 3 } });
  assert.notEqual(c.flowVersion, a.flowVersion);
  await assert.rejects(
    rt.runFlow({ ...def, nodes: [{ id: "a", type: "nope" }] }),
    FlowValidationError,
  );
  await assert.rejects(rt.runFlow(def, { input: { n: "x" } }), FlowValidationError);
  assert.deepEqual(cache.stats, { hits: 2, misses: 3, size: 2 });
});

Deno.test("FlowCache sees the same definition object changed in place between loads", async () => {
  const cache = new FlowCache();
  const def: Record<string, unknown> = {
    id: "mutable",
    nodes: [{ id: "a", type: "transform", with: { value: 1 } }],
  };
  const first = await cache.load(def, { cwd: "/" });
  assert.equal(await cache.load(def, { cwd: "/" }), first); // unchanged: a hit
  // Changed in place: prepared again, from the new content.
  (def.nodes as { with: { value: number } }[])[0].with.value = 2;
  const second = await cache.load(def, { cwd: "/" });
  assert.notEqual(second, first);
  assert.deepEqual(second.prepared.definition.nodes[0].with, { value: 2 });
  // Another directory is another key, even for the same object.
  assert.notEqual(await cache.load(def, { cwd: "/tmp" }), second);
  // Something JSON cannot hold, put in place: refused as it would be without the cache.
  (def.nodes as { with: Record<string, unknown> }[])[0].with.value = () => 1;
  await assert.rejects(cache.load(def, { cwd: "/" }));
  (def.nodes as { with: Record<string, unknown> }[])[0].with.value = 2;
  assert.equal(await cache.load(def, { cwd: "/" }), second);
  assert.deepEqual(cache.stats, { hits: 2, misses: 3, size: 3 }); // the bad one bypassed the cache
});

Deno.test("FlowCache drops the least recently used flow beyond its size", async () => {
  const cache = new FlowCache(2);
  const flow = (id: string) => ({ id, nodes: [{ id: "a", type: "log", with: { message: id } }] });
  const a = await cache.load(flow("a"), { cwd: "/" });
  await cache.load(flow("b"), { cwd: "/" });
  assert.equal(await cache.load(flow("a"), { cwd: "/" }), a); // a is now the most recent
  await cache.load(flow("c"), { cwd: "/" }); // drops b
  assert.equal(await cache.load(flow("a"), { cwd: "/" }), a);
  assert.deepEqual(cache.stats, { hits: 2, misses: 3, size: 2 });
  await cache.load(flow("b"), { cwd: "/" });
  assert.deepEqual(cache.stats, { hits: 2, misses: 4, size: 2 });
  // Another working directory is another flow (sub-flow paths resolve against it).
  await cache.load(flow("a"), { cwd: "/tmp" });
  assert.deepEqual(cache.stats, { hits: 2, misses: 5, size: 2 });
});
