/**
 * `GET /api/runs` and `GET /api/flows` on runs that went through the queue:
 * a summary says when the run was enqueued (`enqueuedAt`, its `startedAt`)
 * and when its attempt was claimed (`claimedAt`: when it really started),
 * so a run another run enqueued (`parentRunId` with `enqueuedAt`) is told
 * apart from a sub-flow's run (`parentRunId` alone).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { documented, type Served, withServed } from "./_serve.ts";
import { waitUntil } from "./_deadline.ts";

Deno.test("GET /api/runs and /api/flows: a queued run's summary has enqueuedAt and its attempt's claimedAt (its real start)", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, runtime, request }) => {
    const parent = await runtime.runFlow(join(dir, "flows", "hello.flow.yaml"));
    const { runId } = await runtime.enqueue("hello", { parentRunId: parent.id });
    const records = await runtime.records();
    const list = async (query: string) => {
      const res = await request(`/api/runs${query}`);
      assert.equal(res.status, 200);
      const { runs } = await res.json();
      return runs.find((r: { id: string }) => r.id === runId);
    };
    const queued = await list("");
    assert.equal(queued.status, "queued");
    assert.equal(queued.parentRunId, parent.id);
    assert.equal(queued.enqueuedAt, queued.startedAt);
    assert.equal(queued.claimedAt, undefined);

    const [claimed] = await records.claimRuns({ worker: "w1", leaseMs: 30_000 }, 1);
    assert.equal(claimed.id, runId);
    assert.ok(
      await records.finishClaimedRun({ ...claimed, status: "succeeded", outputs: {} }),
    );
    const claimedAt = claimed.queue!.claim!.at;
    for (const query of ["", "?flow=hello", "?status=succeeded", "?flow=hello&status=succeeded"]) {
      const done = await list(query);
      assert.equal(done.claimedAt, claimedAt, query);
      assert.equal(done.enqueuedAt, queued.startedAt, query);
      assert.equal(done.startedAt, queued.startedAt, `${query}: still its id's time`);
    }
    // The parent, run directly, has neither.
    const direct = (await (await request("/api/runs?flow=hello")).json()).runs
      .find((r: { id: string }) => r.id === parent.id);
    assert.equal(direct.enqueuedAt, undefined);
    assert.equal(direct.claimedAt, undefined);
    // The flow's last run is the queued one: its summary says when it started.
    const flows = await (await request("/api/flows")).json();
    const hello = flows.find((f: { id: string }) => f.id === "hello");
    assert.equal(hello.lastRun.id, runId);
    assert.equal(hello.lastRun.claimedAt, claimedAt);
  }, { worker: false });
});

/** The `leaseLapsedAt` of run `runId` in `GET /api/runs`, `GET /api/runs/{id}` and `…/nodes`. */
async function leaseLapsedAnswers(
  request: Served["request"],
  runId: string,
): Promise<(number | undefined)[]> {
  const list = await documented<{ runs: { id: string; leaseLapsedAt?: number }[] }>(
    "GET",
    "/api/runs",
    await request("/api/runs"),
  );
  const detail = await documented<{ run: { status: string }; leaseLapsedAt?: number }>(
    "GET",
    "/api/runs/{id}",
    await request(`/api/runs/${runId}`),
  );
  const nodes = await documented<{ leaseLapsedAt?: number }>(
    "GET",
    "/api/runs/{id}/nodes",
    await request(`/api/runs/${runId}/nodes`),
  );
  assert.equal(detail.run.status, "running");
  return [
    list.runs.find((r) => r.id === runId)?.leaseLapsedAt,
    detail.leaseLapsedAt,
    nodes.leaseLapsedAt,
  ];
}

Deno.test("GET /api/runs, /api/runs/{id} and …/nodes: a queued run recorded running whose worker's lease lapsed has leaseLapsedAt", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ runtime, request }) => {
    const { runId } = await runtime.enqueue("hello");
    const records = await runtime.records();
    // A worker claims it for 200 ms, then is gone (no heartbeat, no worker to take it back).
    const [claimed] = await records.claimRuns({ worker: "gone", leaseMs: 200 }, 1);
    assert.equal(claimed.id, runId);
    const lapsesAt = (claimed.heartbeatAt ?? claimed.queue!.claim!.at) + 200;
    const answers = () => leaseLapsedAnswers(request, runId);
    if (Date.now() < lapsesAt) assert.deepEqual(await answers(), [undefined, undefined, undefined]);
    await waitUntil("the lease's end", () => Date.now() > lapsesAt);
    assert.deepEqual(await answers(), [lapsesAt, lapsesAt, lapsesAt]);
  }, { worker: false });
});

Deno.test("GET /api/runs, /api/runs/{id} and …/nodes: leaseLapsedAt follows the runtime's clock, the one claims and heartbeats are written with", async () => {
  // A runtime whose clock is a year behind the system's: its claims are written at its time.
  let now = Date.now() - 365 * 86_400_000;
  await withServed(
    () => ({ main: { plugin: "memory" } }),
    async ({ runtime, request }) => {
      const { runId } = await runtime.enqueue("hello");
      const records = await runtime.records();
      const [claimed] = await records.claimRuns({ worker: "w1", leaseMs: 60_000 }, 1);
      assert.equal(claimed.id, runId);
      const lapsesAt = (claimed.heartbeatAt ?? claimed.queue!.claim!.at) + 60_000;
      // Within its lease by the runtime's clock (a year of the system's clock past it).
      assert.deepEqual(await leaseLapsedAnswers(request, runId), [undefined, undefined, undefined]);
      now += 60_001;
      assert.deepEqual(await leaseLapsedAnswers(request, runId), [lapsesAt, lapsesAt, lapsesAt]);
    },
    { worker: false },
    { now: () => now },
  );
});
