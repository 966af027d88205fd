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

Deno.test("FlowCache sees every kind of in-place change of a definition object between loads", async () => {
  const cache = new FlowCache();
  type Node = { id: string; type: string; needs?: string[]; with: Record<string, unknown> };
  const nodes: Node[] = [
    { id: "a", type: "transform", with: { value: 1 } },
    { id: "b", type: "transform", needs: ["a"], with: { value: "x" } },
  ];
  const def: Record<string, unknown> = { id: "mutable", nodes };
  const cwd = "/";
  let last = await cache.load(def, { cwd });
  /** After `change`, the load is prepared again from the new content. */
  const expectNew = async (change: () => void, check: (n: Node[]) => void) => {
    change();
    const next = await cache.load(def, { cwd });
    assert.notEqual(next, last);
    check(next.prepared.definition.nodes as unknown as Node[]);
    assert.equal(await cache.load(def, { cwd }), next); // and then found again
    last = next;
  };
  const inner = nodes[1].with.value = { x: "x" } as Record<string, unknown>;
  await expectNew(() => {}, (n) => assert.deepEqual(n[1].with.value, { x: "x" }));
  await expectNew(() => inner.extra = true, (n) => assert.deepEqual(n[1].with.value, inner));
  await expectNew(() => delete inner.extra, (n) => assert.deepEqual(n[1].with.value, { x: "x" }));
  await expectNew(() => inner.x = "y", (n) => assert.deepEqual(n[1].with.value, { x: "y" }));
  await expectNew(() => {
    delete inner.x;
    inner.z = "y"; // another key, the same value at the same place
  }, (n) => assert.deepEqual(n[1].with.value, { z: "y" }));
  await expectNew(() => nodes[1].with.value = "y", (n) => assert.equal(n[1].with.value, "y"));
  await expectNew(() => nodes[1].with.value = 2, (n) => assert.equal(n[1].with.value, 2));
  await expectNew(() => nodes[1].with.value = null, (n) => assert.equal(n[1].with.value, null));
  await expectNew(() => nodes[1].with.value = [1], (n) => assert.deepEqual(n[1].with.value, [1]));
  await expectNew(
    () => (nodes[1].with.value as number[]).push(2),
    (n) => assert.deepEqual(n[1].with.value, [1, 2]),
  );
  await expectNew(
    () => nodes[1].with.value = { k: 1 },
    (n) => assert.deepEqual(n[1].with.value, { k: 1 }),
  );
  await expectNew(() => {
    nodes[0].id = "a2";
    nodes[1].needs![0] = "a2";
  }, (n) => assert.deepEqual([n[0].id, n[1].needs], ["a2", ["a2"]]));
  await expectNew(
    () => nodes.push({ id: "c", type: "transform", with: { value: 3 } }),
    (n) => assert.deepEqual(n.map((x) => x.id), ["a2", "b", "c"]),
  );
  await expectNew(() => nodes.pop(), (n) => assert.equal(n.length, 2));
  await expectNew(() => def.description = "now described", () => {});
  // (Two of the changes above went back to content seen before: found by its key.)
  const { hits, misses } = cache.stats;
  // The same JSON: a hit. An undefined property is left out, as JSON leaves it; the
  // same content with its keys in another order is the same flow (found by its key).
  inner.unset = undefined;
  assert.equal(await cache.load(def, { cwd }), last);
  const reordered = { type: nodes[0].type, with: nodes[0].with, id: nodes[0].id };
  nodes[0] = reordered;
  assert.equal(await cache.load(def, { cwd }), last);
  assert.equal(await cache.load(def, { cwd }), last);
  assert.deepEqual(cache.stats, { hits: hits + 3, misses, size: misses });
  // What JSON cannot hold, put in place of an equal-looking value, is refused as it
  // would be without the cache (and bypasses it); put back, the flow is found again.
  const bad: [string, unknown][] = [
    ["NaN", NaN],
    ["Infinity", Infinity],
    ["a function", () => 1],
    ["a Date", new Date(0)],
    ["a BigInt", 1n],
    ["a symbol", Symbol("s")],
    ["a cycle", def],
  ];
  for (const [what, value] of bad) {
    nodes[0].with.value = value;
    await assert.rejects(cache.load(def, { cwd }), Error, what);
  }
  // A hole or an undefined item in an array.
  nodes[0].with.value = 1;
  nodes[1].needs = [undefined as unknown as string];
  await assert.rejects(cache.load(def, { cwd }));
  nodes[1].needs = ["a2"];
  nodes[1].needs.length = 2;
  await assert.rejects(cache.load(def, { cwd }));
  nodes[1].needs = ["a2"];
  assert.equal(await cache.load(def, { cwd }), last);
  // An object that is not plain, whatever its JSON: not taken for the plain one seen before.
  class Options {
    value = 1;
  }
  nodes[0].with = new Options() as unknown as Record<string, unknown>;
  await assert.rejects(cache.load(def, { cwd }), /expected a mapping/);
  nodes[0].with = { value: 1 };
  assert.equal(await cache.load(def, { cwd }), last);
  // Nothing bad was kept (the array with a hole reached validation as a miss: its
  // canonical form has a key).
  assert.deepEqual(cache.stats, { hits: hits + 5, misses: misses + 1, size: misses });
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
