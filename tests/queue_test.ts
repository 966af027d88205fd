/**
 * The run queue through the public library surface (mod.ts): enqueue,
 * workers, priorities, delayed runs, dedupe keys, per-flow limits, retries,
 * cancel of queued and running runs, lost claims, a stopping worker, and the
 * `queue` node type. A controllable clock decides when runs are due; waits
 * are on recorded state, never on elapsed time.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  FlowValidationError,
  openRuntime,
  type Runtime,
  startWorker,
  type Worker,
  type WorkerEvent,
} from "../mod.ts";
import { Records, type RunRecord } from "../records.ts";
import { within } from "./_deadline.ts";

const T0 = Date.UTC(2026, 0, 1);

class TestClock {
  t = T0;
  now = () => this.t;
}

async function project(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-queue-" });
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
  return dir;
}

async function open(dir: string, clock?: TestClock): Promise<Runtime> {
  return await openRuntime({
    cwd: dir,
    ...(clock ? { clock } : {}),
    config: { stores: { main: { plugin: "memory" } }, flows: [dir] },
  });
}

/** Wait until `check` returns a value (polling every 10 ms; fails after 30 s with `what`). */
async function until<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function run(rt: Runtime, id: string): Promise<RunRecord> {
  const r = await (await rt.records()).getRun(id);
  assert.ok(r, `run ${id} exists`);
  return r;
}

function statusIs(rt: Runtime, id: string, status: string) {
  return until(`run ${id} to be ${status}`, async () => {
    const r = await run(rt, id);
    return r.status === status ? r : undefined;
  });
}

const MARK = `id: mark
inputs:
  n: { type: number, default: 0 }
nodes:
  - id: w
    type: state.set
    with: { scope: global, key: "done-\${{ run.id }}", value: "\${{ inputs.n }}" }
`;

Deno.test("queue: enqueue records a queued run at once; a worker runs it on the same run id", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  await using rt = await open(dir);
  const { runId, existing } = await rt.enqueue("mark", { input: { n: 7 } });
  assert.equal(existing, false);
  const queued = await run(rt, runId);
  assert.equal(queued.status, "queued");
  assert.equal(queued.queue?.attempt, 0);
  const page = await (await rt.records()).listRunSummaries({ status: "queued" });
  assert.deepEqual(page.runs.map((r) => r.id), [runId]);
  const worker = startWorker(rt, { pollMs: 20 });
  const done = await statusIs(rt, runId, "succeeded");
  await worker.stop();
  assert.equal(done.queue?.attempts.length, 1);
  assert.equal(done.queue?.attempts[0].outcome, "succeeded");
  assert.equal(done.queue?.attempts[0].worker, worker.id);
  assert.equal((await (await rt.store()).get(["global", `done-${runId}`]))?.value, 7);
  assert.equal((await (await rt.records()).listRunSummaries({ status: "queued" })).runs.length, 0);
  assert.equal((await (await rt.records()).listRunSummaries({ status: "running" })).runs.length, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: startWorker refuses a misspelt option with the closest name, claiming nothing", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  await using rt = await open(dir);
  const { runId } = await rt.enqueue("mark");
  assert.throws(
    () => startWorker(rt, { concurency: 2 } as never),
    (err: unknown) =>
      err instanceof TypeError && /unknown option "concurency"/.test(err.message) &&
      /did you mean "concurrency"/.test(err.message),
  );
  assert.equal((await run(rt, runId)).status, "queued");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: an invalid input or an unknown flow throws and writes nothing", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  await using rt = await open(dir);
  await assert.rejects(rt.enqueue("mark", { input: { n: "x" } }), FlowValidationError);
  await assert.rejects(rt.enqueue("nope"), /Cannot find flow "nope".*found: mark/);
  assert.equal((await (await rt.records()).listRunSummaries()).runs.length, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: higher priority first, then first enqueued first", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  await using rt = await open(dir);
  const priorities = [0, 5, -1, 5, 10, 0];
  const ids: string[] = [];
  for (const [n, priority] of priorities.entries()) {
    ids.push((await rt.enqueue("mark", { input: { n }, priority })).runId);
  }
  const order: string[] = [];
  const worker = startWorker(rt, {
    concurrency: 1,
    pollMs: 20,
    onEvent: (e) => e.type === "claim" && order.push(e.runId),
  });
  await until("all runs", () => order.length === ids.length);
  await worker.stop();
  assert.deepEqual(order, [ids[4], ids[1], ids[3], ids[0], ids[5], ids[2]]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: a delayed run is not claimed before its time, and is once it comes", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const records = await rt.records();
  const later = await rt.enqueue("mark", { delay: "10m", priority: 100 });
  const at = await rt.enqueue("mark", { runAt: new Date(T0 + 5 * 60_000) });
  assert.equal((await run(rt, later.runId)).queue?.runAt, T0 + 600_000);
  assert.equal(await records.claimRun({ worker: "w", leaseMs: 60_000 }), null);
  clock.t = T0 + 5 * 60_000 - 1;
  assert.equal(await records.claimRun({ worker: "w", leaseMs: 60_000 }), null);
  clock.t = T0 + 5 * 60_000;
  assert.equal((await records.claimRun({ worker: "w", leaseMs: 60_000 }))?.id, at.runId);
  // Through a worker: an immediate run goes, the delayed one waits.
  const now = await rt.enqueue("mark");
  const worker = startWorker(rt, { pollMs: 10 });
  await statusIs(rt, now.runId, "succeeded");
  // Several more polls: still not started.
  let polls = 0;
  await until("more polls", () => ++polls > 20);
  assert.equal((await run(rt, later.runId)).status, "queued");
  clock.t = T0 + 600_000;
  const done = await statusIs(rt, later.runId, "succeeded");
  assert.ok(done.queue!.attempts[0].startedAt >= T0 + 600_000);
  await worker.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: a dedupe key returns the queued or running run, and is free once it ended", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  await using rt = await open(dir);
  const a = await rt.enqueue("mark", { key: "invoice-1" });
  const b = await rt.enqueue("mark", { key: "invoice-1", input: { n: 2 } });
  assert.deepEqual(b, { runId: a.runId, existing: true });
  const other = await rt.enqueue("mark", { key: "invoice-2" });
  assert.notEqual(other.runId, a.runId);
  const worker = startWorker(rt, { pollMs: 10 });
  await statusIs(rt, a.runId, "succeeded");
  await worker.stop();
  const c = await rt.enqueue("mark", { key: "invoice-1" });
  assert.equal(c.existing, false);
  assert.notEqual(c.runId, a.runId);
  await Deno.remove(dir, { recursive: true });
});

const SLOW = `id: slow
inputs:
  customer: { type: string }
queue: { concurrency: 1, by: "\${{ inputs.customer }}" }
nodes:
  - id: wait
    type: delay
    with: { for: 50ms }
`;
const SLOW_ALL = `id: slow-all
queue: { concurrency: 2 }
nodes:
  - id: wait
    type: delay
    with: { for: 50ms }
`;

Deno.test("queue: per-flow limits, overall and per input value, hold across workers", async () => {
  const dir = await project({ "slow.flow.yaml": SLOW, "slow_all.flow.yaml": SLOW_ALL });
  await using rt = await open(dir);
  const customerOf = new Map<string, string>();
  for (const customer of ["a", "a", "a", "b", "b"]) {
    const { runId } = await rt.enqueue("slow", { input: { customer } });
    customerOf.set(runId, customer);
  }
  const all = new Set<string>();
  for (let i = 0; i < 5; i++) all.add((await rt.enqueue("slow-all")).runId);
  const running = new Map<string, number>();
  const max = new Map<string, number>();
  let ended = 0;
  const onEvent = (e: WorkerEvent) => {
    if (e.type !== "claim" && e.type !== "end") return;
    const group = customerOf.get(e.runId) ?? "all";
    const n = (running.get(group) ?? 0) + (e.type === "claim" ? 1 : -1);
    running.set(group, n);
    max.set(group, Math.max(max.get(group) ?? 0, n));
    if (e.type === "end") ended++;
  };
  const workers: Worker[] = [
    startWorker(rt, { concurrency: 4, pollMs: 10, onEvent }),
    startWorker(rt, { concurrency: 4, pollMs: 10, onEvent }),
  ];
  await until("every run", () => ended === 10);
  for (const w of workers) await w.stop();
  assert.equal(max.get("a"), 1);
  assert.equal(max.get("b"), 1);
  assert.ok((max.get("all") ?? 0) <= 2, `slow-all ran ${max.get("all")} at once`);
  for (const id of [...customerOf.keys(), ...all]) {
    assert.equal((await run(rt, id)).status, "succeeded");
  }
  await Deno.remove(dir, { recursive: true });
});

const FLAKY = `id: flaky
inputs:
  pass: { type: number }
nodes:
  - id: count
    type: state.increment
    with: { scope: global, key: "tries-\${{ run.id }}" }
  - id: check
    needs: [count]
    if: "\${{ nodes.count.output < inputs.pass }}"
    type: fail
    with: { message: "not yet" }
`;

Deno.test("queue: a failed run is retried per maxAttempts and backoff, then kept failed with every attempt; retry requeues it", async () => {
  const dir = await project({ "flaky.flow.yaml": FLAKY });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const ok = await rt.enqueue("flaky", { input: { pass: 3 }, maxAttempts: 3 });
  const worker = startWorker(rt, { pollMs: 10 });
  const done = await statusIs(rt, ok.runId, "succeeded");
  assert.deepEqual(done.queue?.attempts.map((a) => a.outcome), ["failed", "failed", "succeeded"]);
  assert.match(done.queue?.attempts[0].error ?? "", /not yet/);

  const dead = await rt.enqueue("flaky", {
    input: { pass: 5 },
    maxAttempts: 2,
    backoff: { delay: "1m" },
  });
  const waiting = await until("the first failure", async () => {
    const r = await run(rt, dead.runId);
    return r.queue?.attempts.length === 1 ? r : undefined;
  });
  assert.equal(waiting.status, "queued");
  assert.equal(waiting.queue!.runAt, waiting.queue!.attempts[0].endedAt + 60_000);
  clock.t += 60_000;
  const failed = await statusIs(rt, dead.runId, "failed");
  assert.deepEqual(failed.queue?.attempts.map((a) => a.outcome), ["failed", "failed"]);
  assert.match(failed.error?.message ?? "", /not yet/);

  // Retried by hand: one more attempt on the same id (the third try still fails: pass is 5).
  const requeued = await (await rt.records()).requeueRun(dead.runId);
  assert.equal(requeued.status, "queued");
  const again = await until("the third attempt", async () => {
    const r = await run(rt, dead.runId);
    return r.status === "failed" && r.queue?.attempts.length === 3 ? r : undefined;
  });
  assert.equal(again.queue?.attempt, 3);
  const events = await (await rt.records()).getEvents(dead.runId);
  assert.equal(
    events.filter((e) => e.type === "run.start").length,
    3,
    "every attempt's events kept",
  );
  await worker.stop();
  await Deno.remove(dir, { recursive: true });
});

const WAIT = `id: wait
inputs:
  for: { type: string, default: 30s }
nodes:
  - id: wait
    type: delay
    with: { for: "\${{ inputs.for }}" }
`;

Deno.test("queue: cancelling a queued run ends it cancelled without it ever starting", async () => {
  const dir = await project({ "wait.flow.yaml": WAIT });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const records = await rt.records();
  const { runId } = await rt.enqueue("wait", { delay: "1h" });
  const cancelled = await records.cancelQueuedRun(runId);
  assert.equal(cancelled?.status, "cancelled");
  clock.t += 3_600_000;
  assert.equal(await records.claimRun({ worker: "w", leaseMs: 60_000 }), null);
  const stored = await run(rt, runId);
  assert.equal(stored.status, "cancelled");
  assert.deepEqual(stored.queue?.attempts, []);
  assert.equal(await records.cancelQueuedRun(runId), null, "only a queued run");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: a run cancelled while queued took no time: the hours it waited are not its duration, nor in its flow's metrics", async () => {
  const dir = await project({ "wait.flow.yaml": WAIT });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const records = await rt.records();
  const { runId } = await rt.enqueue("wait", { delay: "1d" });
  clock.t += 3 * 3_600_000; // cancelled three hours later, long before it was due
  const cancelled = await records.cancelQueuedRun(runId);
  assert.equal(cancelled?.durationMs, 0);
  assert.equal((await run(rt, runId)).durationMs, 0);
  const all = (await records.listMetrics("wait")).find((m) => m.version === "*");
  assert.equal(all?.cancelled, 1);
  assert.equal(all?.maxDurationMs, 0, "not 3 h");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: cancelling a running claimed run through the records stops it within the worker", async () => {
  const dir = await project({ "wait.flow.yaml": WAIT });
  await using rt = await open(dir);
  const { runId } = await rt.enqueue("wait", { maxAttempts: 3 });
  const worker = startWorker(rt, { pollMs: 10 });
  await statusIs(rt, runId, "running");
  assert.equal((await (await rt.records()).requestCancel(runId))?.status, "running");
  const done = await statusIs(rt, runId, "cancelled");
  assert.deepEqual(done.queue?.attempts.map((a) => a.outcome), ["cancelled"], "not retried");
  await worker.stop();
  await Deno.remove(dir, { recursive: true });
});

/** Enqueue `mark` and claim it as "dead-worker" (lease 10 s), as a worker that then dies would. */
async function claimedByDeadWorker(rt: Runtime): Promise<{ runId: string; claimed: RunRecord }> {
  const { runId } = await rt.enqueue("mark");
  const claimed = await (await rt.records()).claimRun({ worker: "dead-worker", leaseMs: 10_000 });
  assert.equal(claimed?.id, runId);
  return { runId, claimed: claimed! };
}

Deno.test("queue: a claim whose heartbeat stopped is taken back, its attempt recorded lost", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const records = await rt.records();
  const { runId, claimed } = await claimedByDeadWorker(rt);
  assert.deepEqual(await records.reclaimLost(), [], "the lease has not lapsed");
  clock.t += 10_001;
  const worker = startWorker(rt, { pollMs: 10 });
  const done = await statusIs(rt, runId, "succeeded");
  await worker.stop();
  assert.deepEqual(done.queue?.attempts.map((a) => [a.worker, a.outcome]), [
    ["dead-worker", "lost"],
    [worker.id, "succeeded"],
  ]);
  // The dead worker's late end is refused: the run is not its any more.
  assert.equal(await records.finishClaimedRun({ ...claimed, status: "failed" }), false);
  assert.equal((await run(rt, runId)).status, "succeeded");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: a run cancelled while its worker ran it, then lost with that worker, ends cancelled: it never runs again", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const records = await rt.records();
  const { runId } = await claimedByDeadWorker(rt);
  // `flowstate runs cancel` while the worker is still heard from: a request, for it to act on…
  assert.equal((await records.requestCancel(runId))?.status, "running");
  clock.t += 10_001; // …but it died first (a node crashed it, kill -9)
  const events: WorkerEvent[] = [];
  const worker = startWorker(rt, { pollMs: 10, onEvent: (e) => events.push(e) });
  const done = await statusIs(rt, runId, "cancelled");
  await worker.stop();
  // Its log says it ended the run, not that it queued it again.
  assert.deepEqual(events.filter((e) => e.type === "lost"), [
    { type: "lost", runIds: [runId], ended: [{ runId, status: "cancelled" }] },
  ]);
  assert.deepEqual(done.queue?.attempts.map((a) => [a.worker, a.outcome]), [
    ["dead-worker", "lost"],
  ]);
  assert.match(done.error?.message ?? "", /^cancelled; its attempt was lost: no heartbeat/);
  assert.equal(await records.cancelRequested(runId), false, "the request ended with the run");
  const state = await (await rt.store()).get(["global", `done-${runId}`]);
  assert.equal(state, null, "the flow did not run again");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: a run cancelled just before its worker failed it or released it (stopping) ends cancelled: it is not queued again", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const records = await rt.records();
  for (const how of ["released", "failed"] as const) {
    const { runId } = await rt.enqueue("mark", { maxAttempts: 3 });
    const claimed = await records.claimRun({ worker: "w", leaseMs: 60_000 });
    assert.equal(claimed?.id, runId);
    assert.equal((await records.requestCancel(runId))?.status, "running");
    // Its worker ends the attempt before it looked for the request (it looks once a second).
    const ended = how === "released"
      ? { ...claimed!, status: "cancelled" as const, error: { message: "released" } }
      : { ...claimed!, status: "failed" as const, error: { message: "boom" } };
    assert.equal(
      await records.finishClaimedRun(ended, [], how === "released" ? { release: true } : {}),
      true,
    );
    const done = await run(rt, runId);
    assert.equal(done.status, "cancelled", `${how}: not queued again`);
    assert.equal(done.queue?.attempts.length, 1);
    assert.match(done.error?.message ?? "", /^cancelled before it was queued again; its attempt: /);
    assert.equal(await records.cancelRequested(runId), false);
    assert.equal(await records.claimRun({ worker: "w2", leaseMs: 60_000 }), null);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: a lost attempt ends at its worker's last heartbeat, not when its lease was seen lapsed", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const records = await rt.records();
  const { runId, claimed } = await claimedByDeadWorker(rt);
  clock.t += 4_000;
  assert.equal(await records.heartbeatClaim(claimed, clock.t), true);
  const lastBeat = clock.t;
  clock.t += 15 * 60_000; // found lapsed a quarter of an hour later (a gc, say)
  assert.deepEqual(await records.reclaimLost(), [runId]);
  const queued = await run(rt, runId);
  assert.equal(queued.status, "queued");
  assert.deepEqual(
    queued.queue?.attempts.map((a) => [a.outcome, a.startedAt, a.endedAt]),
    [["lost", T0, lastBeat]],
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: a run queued again has no error (the failed attempt's, with its node, is in its attempts)", async () => {
  const dir = await project({ "flaky.flow.yaml": FLAKY });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const records = await rt.records();
  const { runId } = await rt.enqueue("flaky", { input: { pass: 9 }, maxAttempts: 2 });
  const claimed = await records.claimRun({ worker: "w", leaseMs: 10_000 });
  assert.equal(
    await records.finishClaimedRun({
      ...claimed!,
      status: "failed",
      endedAt: clock.t,
      error: { node: "check", message: "not yet" },
    }),
    true,
  );
  const retrying = await run(rt, runId);
  assert.equal(retrying.status, "queued");
  assert.equal(retrying.error, null, "queued to retry: no error of its own");
  assert.equal(retrying.queue?.attempts[0].error, 'node "check": not yet');

  // Cancelled while queued, then retried by hand: "cancelled while queued" is not the new try's.
  assert.equal((await records.cancelQueuedRun(runId))?.error?.message, "cancelled while queued");
  const requeued = await records.requeueRun(runId);
  assert.equal(requeued.status, "queued");
  assert.equal(requeued.error, null);
  assert.equal((await run(rt, runId)).error, null);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: a stopping worker releases runs still running after the grace period back to queued", async () => {
  const dir = await project({ "wait.flow.yaml": WAIT });
  await using rt = await open(dir);
  const { runId } = await rt.enqueue("wait");
  const events: WorkerEvent[] = [];
  const worker = startWorker(rt, { pollMs: 10, onEvent: (e) => events.push(e) });
  await statusIs(rt, runId, "running");
  await worker.stop({ graceMs: 20 });
  const released = await run(rt, runId);
  assert.equal(released.status, "queued");
  assert.equal(released.queue?.attempts[0].outcome, "lost");
  assert.match(released.queue?.attempts[0].error ?? "", /released/);
  assert.deepEqual(events.at(-1), { type: "stop", released: 1 });
  assert.equal((await (await rt.records()).cancelQueuedRun(runId))?.status, "cancelled");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: the queue node enqueues another flow and returns { runId, existing }", async () => {
  const dir = await project({
    "mark.flow.yaml": MARK,
    "parent.flow.yaml": `id: parent
nodes:
  - id: q
    type: queue
    with: { flow: mark, input: { n: 3 }, key: "once" }
  - id: again
    needs: [q]
    type: queue
    with: { flow: ./mark.flow.yaml, key: "once" }
outputs:
  first: "\${{ nodes.q.output }}"
  second: "\${{ nodes.again.output }}"
`,
  });
  await using rt = await open(dir);
  const parent = await rt.runFlow("parent.flow.yaml");
  assert.equal(parent.status, "succeeded", parent.error?.message);
  const first = parent.outputs?.first as { runId: string; existing: boolean };
  assert.equal(first.existing, false);
  assert.deepEqual(parent.outputs?.second, { runId: first.runId, existing: true });
  const child = await run(rt, first.runId);
  assert.equal(child.status, "queued");
  assert.equal(child.parentRunId, parent.id);
  const worker = startWorker(rt, { pollMs: 10 });
  await statusIs(rt, first.runId, "succeeded");
  await worker.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: POST /api/runs/{id}/cancel cancels a queued run before it starts", async () => {
  const { withServed, documented } = await import("./_serve.ts");
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ runtime, request }) => {
    const { runId } = await runtime.enqueue("hello", { delay: "1h" });
    const response = await request(`/api/runs/${runId}/cancel`, { method: "POST" });
    assert.equal(response.status, 202);
    assert.deepEqual(await documented("POST", "/api/runs/{id}/cancel", response), {
      runId,
      status: "queued",
    });
    const run = await (await runtime.records()).getRun(runId);
    assert.equal(run?.status, "cancelled");
    assert.deepEqual(run?.queue?.attempts, []);
  });
});

Deno.test("queue: a worker whose claim another worker took over (it paused past its lease) stops the run: its effects do not happen twice", async () => {
  // `wait` runs until it is cancelled (or, if nothing stops it, for 10 s), then `effect` counts.
  const dir = await project({
    "twice.flow.yaml": `id: twice
nodes:
  - id: wait
    type: delay
    with: { for: 10s }
  - id: effect
    needs: [wait]
    type: state.increment
    with: { scope: global, key: effects }
`,
  });
  await using rt = await open(dir);
  const { runId } = await rt.enqueue("twice");
  const events: WorkerEvent[] = [];
  const ended = Promise.withResolvers<void>();
  const a = startWorker(rt, {
    workerId: "A",
    leaseMs: 1_000,
    pollMs: 10,
    onEvent: (e) => {
      events.push(e);
      if (e.type === "end") ended.resolve();
    },
  });
  const claimedByA = await statusIs(rt, runId, "running");
  assert.equal(claimedByA.queue?.claim?.worker, "A");
  // Worker B, whose clock is past A's lease (as if A's process had paused that long), takes the
  // run back (A's attempt recorded lost) and claims it again.
  const b = new Records(await rt.store(), { clock: { now: () => Date.now() + 60_000 } });
  assert.deepEqual(await b.reclaimLost(), [runId]);
  const retaken = await b.claimRun({ worker: "B", leaseMs: 120_000 });
  assert.equal(retaken?.queue?.attempt, 2);
  const bBeat = Date.now() + 60_000;
  assert.ok(await b.heartbeatClaim(retaken!, bBeat));
  // A's next heartbeat finds the claim gone: its attempt stops, its end is refused.
  await within(ended.promise, "the ended event");
  const end = events.find((e) => e.type === "end");
  assert.equal(end?.type === "end" && end.attempt, 1);
  assert.match(end?.type === "end" ? end.error ?? "" : "", /recorded as lost/);
  assert.equal(
    await (await rt.store()).get(["global", "effects"]),
    null,
    "A never reached the effect",
  );
  const held = await run(rt, runId);
  assert.equal(held.status, "running");
  assert.equal(held.queue?.claim?.worker, "B");
  assert.equal(held.heartbeatAt, bBeat, "A wrote nothing onto B's claim");
  assert.deepEqual(held.queue?.attempts.map((x) => [x.worker, x.outcome]), [["A", "lost"]]);
  // A's events stop where it found the claim gone: its cancelled `wait` is not mixed into the
  // run's events (B's attempt, which has written none yet, owns them now).
  const written = await (await rt.records()).getEvents(runId);
  assert.deepEqual(written.filter((e) => e.type === "node.end" || e.type === "run.end"), []);
  await a.stop();
  assert.ok(await b.finishClaimedRun({ ...retaken!, status: "succeeded", outputs: {} }));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: a run whose worker stops answering 3 times is recorded failed; attempts released by stopping workers do not count", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const records = await rt.records();
  const { runId } = await rt.enqueue("mark");
  const claim = async (worker: string) => {
    const claimed = await records.claimRun({ worker, leaseMs: 10_000 });
    assert.equal(claimed?.id, runId, `${worker} claims it`);
    return claimed!;
  };
  // Five deploys: each worker stops and releases the run. It stays queued.
  for (let i = 0; i < 5; i++) {
    const claimed = await claim(`deploy-${i}`);
    assert.equal(await records.finishClaimedRun(claimed, [], { release: true }), true);
    assert.equal((await run(rt, runId)).status, "queued");
  }
  // Two crashes under it: queued again each time.
  for (let i = 0; i < 2; i++) {
    await claim(`crashed-${i}`);
    clock.t += 11_000;
    assert.deepEqual(await records.reclaimLost(), [runId]);
    assert.equal((await run(rt, runId)).status, "queued", `after crash ${i + 1}`);
  }
  // The third: a run that takes down every worker that runs it is not claimed again.
  await claim("crashed-2");
  clock.t += 11_000;
  assert.deepEqual(await records.reclaimLost(), [runId]);
  const failed = await run(rt, runId);
  assert.equal(failed.status, "failed");
  assert.match(
    failed.error?.message ?? "",
    /^lost 3 times \(its worker stopped answering each time: does a node end the process, or run out of memory\?\): no heartbeat from worker crashed-2 /,
  );
  assert.equal(failed.queue?.attempts.length, 8);
  assert.equal(await records.claimRun({ worker: "next", leaseMs: 10_000 }), null);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue: a run recorded failed after its third lost attempt keeps what its nodes' events said, as an abandoned run does", async () => {
  const dir = await project({ "mark.flow.yaml": MARK });
  const clock = new TestClock();
  await using rt = await open(dir, clock);
  const records = await rt.records();
  const { runId } = await rt.enqueue("mark", { maxAttempts: 2 });
  // A first attempt fails at its node: queued again, with that attempt's outcomes.
  const first = await records.claimRun({ worker: "first", leaseMs: 10_000 });
  const failedNode = { status: "failed" as const, attempts: 1, error: "boom" };
  assert.ok(
    await records.finishClaimedRun({
      ...first!,
      status: "failed",
      nodes: { w: failedNode },
      error: { message: "boom", node: "w" },
    }, [{ at: clock.t, type: "node.end", node: "w", ...failedNode, attempt: 1, durationMs: 0 }]),
  );
  assert.deepEqual((await run(rt, runId)).nodes, { w: failedNode });
  for (let i = 0; i < 3; i++) {
    const claimed = await records.claimRun({ worker: `crashed-${i}`, leaseMs: 10_000 });
    assert.equal(claimed?.id, runId);
    if (i === 2) {
      // The last attempt's node ended (its write happened) before its worker was lost.
      await records.appendEvents(runId, [
        { at: clock.t, type: "run.start" },
        { at: clock.t, type: "node.start", node: "w" },
        {
          at: clock.t,
          type: "node.end",
          node: "w",
          status: "succeeded",
          attempt: 1,
          durationMs: 0,
        },
      ]);
    }
    clock.t += 11_000;
    assert.deepEqual(await records.reclaimLost(), [runId]);
  }
  const failed = await run(rt, runId);
  assert.equal(failed.status, "failed");
  assert.deepEqual(failed.nodes, { w: { status: "succeeded", attempts: 1 } });
  // A resume says why its node runs again: its worker was lost before the run's end.
  const preview = await rt.previewResume(runId);
  assert.match(
    preview.nodes.find((n) => n.node === "w")?.message ?? "",
    /^succeeded in run \S+, whose process was lost before it recorded its end \(its worker lost\), and its output was not kept with its events \(it ended in the last fraction of a second, its output was over 256 KiB, or Flowstate 0\.7 or before ran the run or recorded its end: it keeps none\): it runs again/,
  );
  await Deno.remove(dir, { recursive: true });
});

const SECRET_INPUT = `id: secret_input
secrets: [QUEUE_TEST_TOKEN]
inputs:
  url: { type: string }
nodes:
  - id: count
    type: state.increment
    with: { scope: global, key: "tries-\${{ run.id }}" }
  - id: check
    needs: [count]
    type: transform
    with: { value: "\${{ inputs.url == 'https://u:' + secrets.QUEUE_TEST_TOKEN + '@h/' }}" }
  - id: first
    needs: [check]
    if: "\${{ nodes.count.output < 2 }}"
    type: fail
    with: { message: "not yet" }
`;

Deno.test("queue: a run's next attempt gets its inputs as enqueued, not *** where they hold a secret's value", async () => {
  const dir = await project({ "secret_input.flow.yaml": SECRET_INPUT });
  Deno.env.set("QUEUE_TEST_TOKEN", "s3cret-queue-token");
  try {
    await using rt = await open(dir);
    const url = "https://u:s3cret-queue-token@h/";
    const { runId } = await rt.enqueue("secret_input", { input: { url }, maxAttempts: 2 });
    const worker = startWorker(rt, { pollMs: 10 });
    const done = await statusIs(rt, runId, "succeeded");
    await worker.stop();
    assert.deepEqual(done.queue?.attempts.map((a) => a.outcome), ["failed", "succeeded"]);
    assert.equal(done.nodes.check.output, true, "the second attempt read the real url");
    assert.deepEqual(done.inputs, { url }, "kept as enqueued, for a retry by hand too");
    assert.equal(done.inputsMasked, undefined);
  } finally {
    Deno.env.delete("QUEUE_TEST_TOKEN");
    await Deno.remove(dir, { recursive: true });
  }
});
