// Run records' node outcomes: stored compact (`@nodes`) by default, as Flowstate 0.5 stored them with
// `runs: { nodesFormat: 1 }` (or `eventFormat: 1`), and read back the same either way, through
// every reader of the records (getRun, listRuns, the queue's claim) and the runtime.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { openRuntime, openStore } from "../mod.ts";
import { newRunId, Records } from "../records.ts";
import type { RunEvent, RunRecord } from "../records.ts";
import { decodeNodes, encodeNodes } from "../src/records/_node_outcomes.ts";
import { MIXED_FLOW } from "./_mixed_flow.ts";
import { documented, withServed } from "./_serve.ts";

const EXAMPLES = fileURLToPath(new URL("../examples", import.meta.url));

/** Outcomes of every kind the compact form holds, with ids JSON and objects treat specially. */
function mixedNodes(): RunRecord["nodes"] {
  const nodes: RunRecord["nodes"] = {
    a: { status: "succeeded", attempts: 1, output: 42 },
    b: { status: "failed", attempts: 3, error: "boom" },
    c: { status: "skipped", attempts: 0 },
    d: { status: "cancelled", attempts: 2, output: { deep: [1, "x", null] }, error: "stopped" },
    e: { status: "timed-out", attempts: 1, error: "slow" },
    f: { status: "succeeded", attempts: 1, output: null },
    g: { status: "succeeded", attempts: 1, output: undefined }, // no output: left out, as JSON does
    "7": { status: "succeeded", attempts: 1, output: "an integer-like id" },
    "": { status: "succeeded", attempts: 1 },
  };
  Object.defineProperty(nodes, "__proto__", {
    value: { status: "succeeded", attempts: 1, output: "an own __proto__" },
    enumerable: true,
    configurable: true,
    writable: true,
  });
  return nodes;
}

function runOf(id: string, nodes: RunRecord["nodes"] = {}): RunRecord {
  return {
    id,
    flowId: "f",
    flowVersion: "v1",
    status: "running",
    inputs: {},
    outputs: null,
    error: null,
    startedAt: 1,
    endedAt: null,
    durationMs: null,
    nodes,
  };
}

/** Finish a run with `nodes` in `records`; the record as stored and as read back. */
async function finishWith(
  records: Records,
  store: Awaited<ReturnType<typeof openStore>>,
  nodes: RunRecord["nodes"],
  seq: number,
  events = 2_000, // more than fit inline: the record is written without them
): Promise<{ stored: Record<string, unknown>; read: RunRecord; listed: RunRecord }> {
  const run = runOf(newRunId(seq));
  await records.startRun(run);
  const batch: RunEvent[] = Array.from(
    { length: events },
    (_, i) => ({ at: 1 + i, type: "run.start" }),
  );
  await records.appendEvents(run.id, batch);
  await records.finishRun({ ...run, status: "succeeded", endedAt: 5, nodes }, []);
  const stored = (await store.get<Record<string, unknown>>(["flowstate", "runs", run.id]))!.value;
  const read = (await records.getRun(run.id))!;
  const { runs } = await records.listRuns({ flowId: "f", limit: 100 });
  return { stored, read, listed: runs.find((r) => r.id === run.id)! };
}

Deno.test("node outcomes: the compact and the 0.5 form read back the same, to the JSON text", async () => {
  await using store = await openStore({ plugin: "memory" });
  const compact = new Records(store);
  const plain = new Records(store, { nodesFormat: 1 });
  const a = await finishWith(compact, store, mixedNodes(), 1);
  const b = await finishWith(plain, store, mixedNodes(), 2);
  // What is stored differs: the compact form keeps `nodes: null` (where 0.5 would look) and `@nodes`.
  assert.equal(a.stored.nodes, null);
  assert.equal((a.stored["@nodes"] as { format: number }).format, 2);
  assert.equal("@nodes" in b.stored, false);
  assert.equal(JSON.stringify(b.stored.nodes), JSON.stringify(mixedNodes()));
  // What is read is the same: each reader, the same fields in the same order, the ids as own keys.
  for (const { read, listed } of [a, b]) {
    for (const run of [read, listed]) {
      assert.equal(JSON.stringify(run.nodes), JSON.stringify(mixedNodes()));
      assert.deepEqual(run.nodes, JSON.parse(JSON.stringify(mixedNodes())));
      assert.equal(Object.getPrototypeOf(run.nodes), Object.prototype);
      assert.equal(Object.hasOwn(run.nodes, "__proto__"), true);
      assert.equal("@nodes" in run, false);
    }
  }
  assert.equal(
    JSON.stringify({ ...a.read, id: "" }),
    JSON.stringify({ ...b.read, id: "" }),
    "the whole record reads the same",
  );
});

Deno.test("node outcomes: a record with events inline is compact too, and reads the same", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const { stored, read } = await finishWith(records, store, mixedNodes(), 3, 3);
  assert.ok(Array.isArray(stored["@events"]), "the events are inline");
  assert.equal(stored.nodes, null);
  assert.equal(JSON.stringify(read.nodes), JSON.stringify(mixedNodes()));
  assert.equal((await records.getEvents(read.id)).length, 3);
});

Deno.test("node outcomes: eventFormat 1 writes them as 0.5 did too, unless nodesFormat says otherwise", async () => {
  await using store = await openStore({ plugin: "memory" });
  const old = await finishWith(new Records(store, { eventFormat: 1 }), store, mixedNodes(), 4);
  assert.equal("@nodes" in old.stored, false);
  assert.equal(JSON.stringify(old.stored.nodes), JSON.stringify(mixedNodes()));
  const mixed = await finishWith(
    new Records(store, { eventFormat: 1, nodesFormat: 2 }),
    store,
    mixedNodes(),
    5,
  );
  assert.equal(mixed.stored.nodes, null);
  assert.throws(
    () => new Records(store, { nodesFormat: 3 as never }),
    /nodesFormat must be 1 or 2/,
  );
});

Deno.test("node outcomes the compact form cannot give back exactly are stored as they are", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const odd = [
    { a: { status: "succeeded", attempts: 1, note: "a field more" } },
    { a: { attempts: 1, status: "succeeded" } }, // another order
    { a: { status: "unknown", attempts: 1 } },
    { a: { status: "failed", attempts: 1, error: { message: "not a string" } } },
    { a: { status: "succeeded", attempts: "1" } },
    { a: { status: "succeeded" } },
  ] as unknown as RunRecord["nodes"][];
  for (const [i, nodes] of odd.entries()) {
    assert.equal(encodeNodes(nodes), undefined, JSON.stringify(nodes));
    const { stored, read } = await finishWith(records, store, nodes, 10 + i);
    assert.equal("@nodes" in stored, false);
    assert.equal(JSON.stringify(read.nodes), JSON.stringify(nodes));
  }
  // Empty outcomes (a run's start record) stay as they are: any version reads them.
  assert.equal(encodeNodes({}), undefined);
});

Deno.test("node outcomes: one number of attempts when all are the same, else one a node", () => {
  const same = encodeNodes({
    a: { status: "succeeded", attempts: 2 },
    b: { status: "failed", attempts: 2, error: "x" },
  });
  assert.equal(same?.attempts, 2);
  const each = encodeNodes(mixedNodes());
  assert.ok(Array.isArray(each?.attempts));
  assert.deepEqual(
    decodeNodes(JSON.parse(JSON.stringify(each)), "x"),
    JSON.parse(JSON.stringify(mixedNodes())),
  );
});

Deno.test("node outcomes of a newer format or damaged are a TypeError naming the run", async () => {
  const good = JSON.parse(JSON.stringify(encodeNodes(mixedNodes())));
  const damaged = [
    { ...good, format: 3 },
    null,
    { ...good, codes: good.codes.slice(1) },
    { ...good, codes: "~" + good.codes.slice(1) },
    { ...good, outputs: [] },
    { ...good, errors: [...good.errors, "one more"] },
    { ...good, attempts: [1] },
    { ...good, ids: "a" },
    // What encodeNodes never writes: attempts that are not finite numbers, an error that is
    // not text, an id twice (one node's outcome would hide another's).
    { ...good, attempts: "x" },
    { ...good, attempts: good.ids.map(() => null) },
    { ...good, attempts: [...good.ids.map(() => 1).slice(1), Infinity] },
    { ...good, errors: [{ msg: 1 }, ...good.errors.slice(1)] },
    { ...good, ids: [good.ids[1], ...good.ids.slice(1)] },
  ];
  for (const value of damaged) {
    assert.throws(() => decodeNodes(value, "Cannot read run"), TypeError, JSON.stringify(value));
  }
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const run = runOf(newRunId(20));
  await store.set(["flowstate", "runs", run.id], {
    ...run,
    status: "succeeded",
    nodes: null,
    "@nodes": { ...good, format: 3 },
  });
  await assert.rejects(
    () => records.getRun(run.id),
    (err) => err instanceof TypeError && err.message.includes(JSON.stringify(run.id)),
  );
  // A listing names it among the malformed runs, and lists the others.
  const other = runOf(newRunId(21));
  await records.startRun(other);
  await records.finishRun({ ...other, status: "succeeded", endedAt: 5, nodes: mixedNodes() });
  await store.set(["flowstate", "runs-by-flow", "f", run.id], { ...run, status: "succeeded" });
  for (const options of [{}, { flowId: "f" }]) {
    const page = await records.listRuns(options);
    assert.deepEqual(page.runs.map((r) => r.id), [other.id]);
    assert.deepEqual(page.malformed, [run.id]);
  }
});

Deno.test("a real flow's outcomes are stored compact, and runFlow and getRun give the same nodes", async () => {
  // A home of its own: node modules may not sit inside the home (the sandbox refuses them).
  const home = await Deno.makeTempDir();
  await using _home = { [Symbol.asyncDispose]: () => Deno.remove(home, { recursive: true }) };
  for (const nodesFormat of [undefined, 1] as const) {
    await using rt = await openRuntime({
      config: {
        stores: { main: { plugin: "memory" } },
        ...(nodesFormat === undefined ? {} : { runs: { nodesFormat } }),
      },
      cwd: EXAMPLES,
      home,
    });
    const record = await rt.runFlow(MIXED_FLOW as never);
    assert.equal(record.status, "failed");
    const store = await rt.store("main");
    const stored = (await store.get<Record<string, unknown>>(["flowstate", "runs", record.id]))!
      .value;
    assert.equal("@nodes" in stored, nodesFormat === undefined, "compact unless nodesFormat: 1");
    const records = await rt.records();
    const read = await records.getRun(record.id);
    assert.equal(JSON.stringify(read?.nodes), JSON.stringify(record.nodes));
    assert.deepEqual(Object.keys(record.nodes), ["flaky", "inc", "say", "skip", "bad"]);
  }
});

Deno.test("node outcomes: what the compact form would change or refuse otherwise is written in the first form", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  // An array of outcomes stays an array, as 0.5 stored it (not an object with "0").
  const array = [{ status: "succeeded", attempts: 1 }] as unknown as RunRecord["nodes"];
  const arr = await finishWith(records, store, array, 30);
  assert.equal("@nodes" in arr.stored, false);
  assert.equal(JSON.stringify(arr.read.nodes), JSON.stringify(array));
  // A class instance is refused, as 0.5 refused it, by its own name.
  class Nodes {
    a = { status: "succeeded", attempts: 1, output: 1 };
  }
  await assert.rejects(
    () => finishWith(records, store, new Nodes() as unknown as RunRecord["nodes"], 31),
    /value\.nodes is a Nodes, not a plain object/,
  );
  // An output that is not JSON is refused by the node's own path, as 0.5 named it.
  const bad = {
    ok: { status: "succeeded", attempts: 1, output: 1 },
    e: { status: "succeeded", attempts: 1, output: [undefined] },
  } as unknown as RunRecord["nodes"];
  await assert.rejects(
    () => finishWith(records, store, bad, 32),
    (err) =>
      err instanceof TypeError && err.message.includes("value.nodes.e.output[0]") &&
      !err.message.includes("@nodes"),
  );
  // Attempts that are no JSON number: the first form's error too.
  const nan = { a: { status: "succeeded", attempts: NaN } } as unknown as RunRecord["nodes"];
  assert.equal(encodeNodes(nan), undefined);
  await assert.rejects(
    () => finishWith(records, store, nan, 33),
    (err) => err instanceof TypeError && err.message.includes("value.nodes.a.attempts"),
  );
});

Deno.test("node outcomes: a record at the size limit that fits only in the first form is stored in it", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  // One node whose output brings the first form's record to a few bytes under 16 MiB.
  const nodesOf = (n: number) => ({
    a: { status: "succeeded" as const, attempts: 1, output: "x".repeat(n) },
  });
  const run = runOf(newRunId(40));
  const size = (n: number) =>
    JSON.stringify({ ...run, status: "succeeded", endedAt: 5, nodes: nodesOf(n) }).length;
  const n = 16 * 1024 * 1024 - 10 - (size(0) - 0);
  assert.ok(size(n) <= 16 * 1024 * 1024 - 10);
  await records.startRun(run);
  await records.finishRun({ ...run, status: "succeeded", endedAt: 5, nodes: nodesOf(n) }, []);
  const stored = (await store.get<Record<string, unknown>>(["flowstate", "runs", run.id]))!.value;
  assert.equal("@nodes" in stored, false, "the compact form's header would cross the limit");
  assert.equal((await records.getRun(run.id))?.nodes.a.output, "x".repeat(n));
});

Deno.test("node outcomes: a record 0.5 rewrote with outcomes of its own is read by its nodes", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const first = await finishWith(records, store, mixedNodes(), 50);
  assert.equal(first.stored.nodes, null);
  // What 0.5's requeue-and-finish leaves: the stored record spread, "@nodes" and all, new nodes.
  const fresh = { a: { status: "succeeded", attempts: 2, output: "new attempt" } };
  await store.set(["flowstate", "runs", first.read.id], { ...first.stored, nodes: fresh });
  const read = await records.getRun(first.read.id);
  assert.deepEqual(read?.nodes, fresh);
  assert.equal("@nodes" in read!, false);
});

Deno.test("node outcomes that cannot be read say why: damaged, or written by a newer Flowstate", () => {
  const good = JSON.parse(JSON.stringify(encodeNodes(mixedNodes())));
  const message = (value: unknown) => {
    try {
      decodeNodes(value, "Cannot read run");
    } catch (err) {
      assert.ok(err instanceof TypeError);
      return err.message;
    }
    throw new Error("decoded");
  };
  assert.match(message({ ...good, format: 3 }), /format 3, written by a newer Flowstate/);
  assert.match(message({ ...good, format: "2" }), /format "2", not one Flowstate writes/);
  assert.match(message({ ...good, format: undefined }), /format missing, not one Flowstate writes/);
  assert.match(message("compact"), /"@nodes" is a string, not the compact form/);
  assert.match(message(null), /"@nodes" is null/);
  assert.match(message([good]), /"@nodes" is a list/);
});

Deno.test("a retried run keeps the ended attempt's statuses and errors but not its outputs, and fits in the store", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  // Stored compact at ~12.7 MiB: the same outcomes in the first form are over 16 MiB.
  const nodes: RunRecord["nodes"] = {};
  for (let i = 0; i < 100_000; i++) {
    nodes[`node_${i}`] = i === 0
      ? { status: "failed", attempts: 2, error: "boom" }
      : { status: "succeeded", attempts: 1, output: "x".repeat(120) };
  }
  Object.defineProperty(nodes, "__proto__", {
    value: { status: "succeeded", attempts: 1, output: "kept apart" },
    enumerable: true,
    configurable: true,
    writable: true,
  });
  const run = runOf(newRunId(60));
  await records.startRun(run);
  await records.finishRun({
    ...run,
    status: "failed",
    endedAt: 5,
    durationMs: 4,
    nodes,
    error: { node: "node_0", message: "boom" },
  });
  assert.ok(JSON.stringify({ ...run, nodes }).length > 16 * 1024 * 1024);
  const requeued = await records.requeueRun(run.id, { flowPath: "/flows/f.yaml" });
  assert.equal(requeued.status, "queued");
  const read = (await records.getRun(run.id))!;
  assert.equal(read.status, "queued");
  assert.equal(Object.keys(read.nodes).length, 100_001);
  assert.deepEqual(read.nodes.node_0, { status: "failed", attempts: 2, error: "boom" });
  assert.deepEqual(read.nodes.node_7, { status: "succeeded", attempts: 1 });
  assert.equal(Object.hasOwn(read.nodes, "__proto__"), true);
  assert.deepEqual(Object.getOwnPropertyDescriptor(read.nodes, "__proto__")?.value, {
    status: "succeeded",
    attempts: 1,
  });
  assert.equal(Object.getPrototypeOf(read.nodes), Object.prototype);
  // The queue takes it, and its next attempt's end is recorded as usual.
  const claimed = await records.claimRun({ worker: "w1", leaseMs: 60_000 });
  assert.equal(claimed?.id, run.id);
  await records.finishClaimedRun({
    ...claimed!,
    status: "succeeded",
    endedAt: 9,
    durationMs: 1,
    error: null,
    nodes: { a: { status: "succeeded", attempts: 1, output: 1 } },
  });
  assert.deepEqual((await records.getRun(run.id))?.nodes, {
    a: { status: "succeeded", attempts: 1, output: 1 },
  });
});

Deno.test("a run whose outcomes cannot be read: the HTTP API answers a documented 500 that says so, not a 404", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ runtime, request }) => {
    const records = await runtime.records();
    const store = await runtime.store(runtime.config.records);
    const run = runOf(newRunId(Date.now()));
    await records.startRun(run);
    await records.finishRun({ ...run, status: "failed", endedAt: 5, nodes: mixedNodes() });
    const key = ["flowstate", "runs", run.id];
    const stored = (await store.get<Record<string, unknown>>(key))!.value;
    await store.set(key, { ...stored, "@nodes": { format: 3 } });
    for (
      const [method, pattern, path] of [
        ["GET", "/api/runs/{id}", `/api/runs/${run.id}`],
        ["GET", "/api/runs/{id}/changes", `/api/runs/${run.id}/changes`],
        ["POST", "/api/runs/{id}/cancel", `/api/runs/${run.id}/cancel`],
      ]
    ) {
      const res = await request(path, { method });
      const body = await documented<{ error: { code: string; message: string } }>(
        method,
        pattern,
        res,
      );
      assert.equal(res.status, 500, path);
      assert.equal(body.error.code, "internal");
      assert.match(body.error.message, new RegExp(`Run ${run.id} is recorded but cannot be read`));
      assert.match(body.error.message, /format 3, written by a newer Flowstate/);
      assert.match(body.error.message, new RegExp(`flowstate state get flowstate/runs/${run.id}`));
    }
    // An unknown run is still a 404; what is not a run id is a 400.
    for (const [id, status] of [[newRunId(1), 404], ["nope", 400]] as const) {
      const res = await request(`/api/runs/${id}`);
      await res.body?.cancel();
      assert.equal(res.status, status, id);
    }
  });
});
