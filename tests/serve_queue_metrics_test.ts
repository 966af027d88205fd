/**
 * `GET /metrics` counts the queue: runs due now, due later, and claimed by a
 * worker (`flowstate_queue_runs{state}`), from the queue's indexes.
 */
import assert from "node:assert/strict";
import { withServed } from "./_serve.ts";

Deno.test("GET /metrics: flowstate_queue_runs counts due, scheduled and claimed queued runs", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ runtime, request }) => {
    const gauge = async () => {
      const text = await (await request("/metrics")).text();
      assert.match(text, /^# TYPE flowstate_queue_runs gauge$/m);
      const value = (state: string) =>
        Number(
          text.match(new RegExp(`^flowstate_queue_runs\\{state="${state}"\\} (\\d+)$`, "m"))?.[1],
        );
      return { due: value("due"), scheduled: value("scheduled"), claimed: value("claimed") };
    };
    assert.deepEqual(await gauge(), { due: 0, scheduled: 0, claimed: 0 });

    await runtime.enqueue("hello");
    await runtime.enqueue("hello");
    await runtime.enqueue("hello", { delay: "1h" });
    // A retry's backoff that has passed is due, whether or not a worker moved it yet.
    await runtime.enqueue("hello", { runAt: Date.now() - 1000 });
    assert.deepEqual(await gauge(), { due: 3, scheduled: 1, claimed: 0 });

    const records = await runtime.records();
    const claimed = await records.claimRuns({ worker: "w1", leaseMs: 30_000 }, 1);
    assert.equal(claimed.length, 1);
    assert.deepEqual(await gauge(), { due: 2, scheduled: 1, claimed: 1 });
    assert.deepEqual(await records.queueCounts(), { due: 2, scheduled: 1, claimed: 1 });
  }, { worker: false }); // other processes' workers run them: here they wait
});
