// Tests of `Records`: flow versions, heads, lineage and the content hash.
import assert from "node:assert/strict";
import type { FlowDefinition } from "../flow/types.ts";
import { backendTest, finished, flow, newRun, setup, T0 } from "./_test_utils.ts";
import { canonicalJson, hashFlowDefinition } from "./flow_version.ts";
import { Records } from "./records.ts";

backendTest(
  "Records.saveVersion() stores content once: same content, same hash, created false",
  async (backend) => {
    const { store, records } = await setup(backend);
    const first = await records.saveVersion(flow("f"), "id: f\n");
    assert.equal(first.created, true);
    assert.equal(first.parent, null);
    assert.match(first.hash, /^[0-9a-f]{64}$/);
    const reordered = { nodes: [{ with: { message: "hi" }, type: "log", id: "a" }], id: "f" };
    const second = await records.saveVersion(reordered as FlowDefinition, "# other source\n");
    assert.deepEqual(second, { hash: first.hash, parent: null, created: false });
    const versions = await records.listVersions("f");
    assert.equal(versions.length, 1);
    assert.equal(versions[0].source, "id: f\n", "the first source is kept");
    assert.equal((await records.listFlows())[0].versions, 1);
    await store.close();
  },
);

Deno.test("hashFlowDefinition() ignores key order and undefined properties, not values", async () => {
  const a = await hashFlowDefinition(flow("f", { description: "x" }));
  const b = await hashFlowDefinition({
    description: "x",
    schedule: undefined,
    nodes: [{ type: "log", id: "a", with: { message: "hi" } }],
    id: "f",
  });
  assert.equal(a, b);
  assert.notEqual(a, await hashFlowDefinition(flow("f", { description: "y" })));
  assert.equal(
    canonicalJson({ b: [2, { d: 1, c: null }], a: "x" }),
    '{"a":"x","b":[2,{"c":null,"d":1}]}',
  );
  assert.throws(() => canonicalJson({ when: new Date(0) }), TypeError);
  assert.throws(() => canonicalJson({ n: Infinity }), TypeError);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => canonicalJson(cyclic), TypeError);
});

backendTest(
  "Records.saveVersion() keeps lineage v1 <- v2 <- v3; old content moves the head back",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const v1 = await records.saveVersion(flow("f", { description: "one" }));
    clock.t += 1000;
    const v2 = await records.saveVersion(flow("f", { description: "two" }));
    clock.t += 1000;
    const v3 = await records.saveVersion(flow("f", { description: "three" }));
    assert.equal(v2.parent, v1.hash);
    assert.equal(v3.parent, v2.hash);
    assert.deepEqual(
      (await records.listVersions("f")).map((v) => [v.hash, v.parent, v.seq, v.createdAt]),
      [[v3.hash, v2.hash, 3, T0 + 2000], [v2.hash, v1.hash, 2, T0 + 1000], [v1.hash, null, 1, T0]],
    );
    assert.equal((await records.getHead("f"))?.hash, v3.hash);

    // Going back to v1's content: no new version, the head moves back to v1.
    const back = await records.saveVersion(flow("f", { description: "one" }));
    assert.deepEqual(back, { hash: v1.hash, parent: null, created: false });
    assert.equal((await records.getHead("f"))?.hash, v1.hash);
    assert.equal((await records.listVersions("f")).length, 3);
    const [summary] = await records.listFlows();
    assert.equal(summary.head, v1.hash);
    assert.equal(summary.versions, 3);
    assert.equal(summary.description, "one");

    // The next new content descends from the head, v1.
    const v4 = await records.saveVersion(flow("f", { description: "four" }));
    assert.equal(v4.created, true);
    assert.equal(v4.parent, v1.hash);
    assert.equal((await records.getVersion("f", v4.hash))?.seq, 4);
    assert.equal(await records.getVersion("f", "0".repeat(64)), null);
    await store.close();
  },
);

backendTest(
  "Records.saveVersion() called concurrently with the same content creates one version",
  async (backend) => {
    const { store, records } = await setup(backend);
    const other = new Records(store); // like a second process
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? other : records).saveVersion(flow("f"))),
    );
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal(new Set(results.map((r) => r.hash)).size, 1);
    assert.equal((await records.listVersions("f")).length, 1);
    assert.equal((await records.listFlows())[0].versions, 1);
    await store.close();
  },
);

backendTest(
  "Records.saveVersion() called concurrently with different content keeps one linear lineage",
  async (backend) => {
    const { store, records } = await setup(backend);
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => records.saveVersion(flow("f", { description: `d${i}` }))),
    );
    const versions = await records.listVersions("f");
    assert.deepEqual(versions.map((v) => v.seq), [8, 7, 6, 5, 4, 3, 2, 1]);
    for (let i = 0; i < versions.length - 1; i++) {
      assert.equal(versions[i].parent, versions[i + 1].hash);
    }
    assert.equal(versions[7].parent, null);
    assert.equal((await records.getHead("f"))?.hash, versions[0].hash);
    await store.close();
  },
);

backendTest("Records.saveVersion() rejects a definition without an id", async (backend) => {
  const { store, records } = await setup(backend);
  await assert.rejects(
    () => records.saveVersion({ nodes: [] } as unknown as FlowDefinition),
    TypeError,
  );
  await assert.rejects(() => records.saveVersion(null as unknown as FlowDefinition), TypeError);
  await store.close();
});

backendTest(
  "Records.listFlows() reports head, version count, newest run and description",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const a1 = await records.saveVersion(flow("a", { description: "first a" }));
    const a2 = await records.saveVersion(flow("a", { description: "second a" }));
    const b1 = await records.saveVersion(flow("b"));
    const run = newRun(clock, "a", a1.hash);
    await records.startRun(run);
    await records.finishRun(finished(run, "succeeded", 5));
    clock.t += 10;
    const later = newRun(clock, "a", a2.hash);
    await records.startRun(later);
    assert.deepEqual(await records.listFlows(), [
      {
        id: "a",
        head: a2.hash,
        versions: 2,
        prunedVersions: 0,
        lastRunAt: T0 + 10,
        lastStatus: "running",
        description: "second a",
      },
      {
        id: "b",
        head: b1.hash,
        versions: 1,
        prunedVersions: 0,
        lastRunAt: null,
        lastStatus: null,
        description: null,
      },
    ]);
    await store.close();
  },
);
