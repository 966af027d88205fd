// enqueue's dedupe `key` has a limit of its own (it is the last element of a store key): past it,
// the error speaks of the option and its limit, not of an internal store key.
import assert from "node:assert/strict";
import { runJob, startWorker } from "../mod.ts";
import { withQueueFlow } from "./_queue_flow.ts";

Deno.test("enqueue: a dedupe key over its limit is refused in the option's terms", async () => {
  await withQueueFlow(async (rt, flow) => {
    const error = await rt.enqueue(flow, { key: "é".repeat(3000) }).then(() => null, (e) => e);
    assert.ok(error instanceof RangeError, String(error));
    const match =
      /^Cannot enqueue a run of "q": key is 6,000 bytes \(UTF-8\); a dedupe key is at most ([\d,]+) bytes: use a hash of a longer one$/
        .exec(error.message);
    assert.ok(match, error.message);
    const max = Number(match[1].replaceAll(",", ""));
    assert.ok(max > 1900 && max < 2048, String(max));
    // The longest key works, and dedupes.
    const first = await rt.enqueue(flow, { key: "k".repeat(max) });
    const again = await rt.enqueue(flow, { key: "k".repeat(max) });
    assert.deepEqual(again, { runId: first.runId, existing: true });
    await assert.rejects(() => rt.enqueue(flow, { key: "k".repeat(max + 1) }), RangeError);
  });
});

// A dedupe key lives as long as its run is queued or running: a worker's end of the run deletes
// it, so unique keys (webhook deliveries) do not pile up; gc deletes those older versions left.
Deno.test("enqueue: a worker's end of a keyed run deletes its key; gc sweeps leftovers", async () => {
  await withQueueFlow(async (rt, flow) => {
    const store = await rt.store();
    const KEYS = ["flowstate", "queue", "key"];
    const ids: string[] = [];
    for (const key of ["delivery-1", "delivery-2", "delivery-3"]) {
      ids.push((await rt.enqueue(flow, { key })).runId);
    }
    assert.equal(await store.count(KEYS), 3);
    const worker = startWorker(rt, { pollMs: 10 });
    const records = await rt.records();
    while (
      (await Promise.all(ids.map((id) => records.getRun(id)))).some((r) =>
        r?.status !== "succeeded"
      )
    ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await worker.stop();
    assert.equal(await store.count(KEYS), 0);
    // After the end, the same key makes a new run.
    const again = await rt.enqueue(flow, { key: "delivery-1" });
    assert.equal(again.existing, false);
    assert.ok(!ids.includes(again.runId));
    // A key an older version left behind, of a run that ended.
    await store.set([...KEYS, "left-behind"], { runId: ids[0] });
    const gc = await runJob(rt, "gc", { options: { tempFiles: false, compact: false } });
    assert.equal(gc.status, "succeeded");
    assert.equal((gc.outputs as { dedupeKeysRemoved: number }).dedupeKeysRemoved, 1);
    assert.deepEqual(
      (await Array.fromAsync(store.list({ prefix: KEYS }))).map((e) => e.key[3]),
      ["delivery-1"],
    );
  });
});
