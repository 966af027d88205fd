// Tests of `RunRecorder`: heartbeats while a run lives, and retrying its final commit.
import assert from "node:assert/strict";
import { openStore } from "../plugin.ts";
import { fakeClock } from "../testing/clock.ts";
import { manualTimers } from "../testing/timers.ts";
import { withHooks } from "../wrappers/hooks.ts";
import { HEARTBEAT_MS, MIN_ABANDONED_MS } from "./heartbeat.ts";
import {
  CANCEL_POLL_MS,
  claimedRunCommit,
  EVENT_BATCH_MS,
  REQUEUE_MARGIN_MS,
  RunEndNotRecordedError,
  RunNotOwnedError,
  RunRecorder,
} from "./recorder.ts";
import { Records } from "./records.ts";

const START = { flowId: "f", flowVersion: "job", inputs: {} };
const END = { status: "succeeded" as const, outputs: {}, nodes: {}, error: null };

/** A store whose commits that record a run's end fail `failures` times (-1: always). */
async function failingEnds(failures: number) {
  const inner = await openStore({ plugin: "memory" });
  let left = failures;
  let tries = 0;
  const store = withHooks(inner, {
    beforeCommit(mutations) {
      const ends = mutations.some((m) =>
        m.type === "set" && m.key.includes("runs") &&
        (m.value as { status?: string }).status !== "running" &&
        typeof (m.value as { flowId?: unknown }).flowId === "string"
      );
      if (!ends) return;
      tries++;
      if (left === 0) return;
      if (left > 0) left--;
      throw new Error("No space left on device (injected)");
    },
  });
  return { store, tries: () => tries };
}

Deno.test("RunRecorder writes a heartbeat every HEARTBEAT_MS while the run lives, and stops at finish", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  const recorder = await RunRecorder.start(records, clock, START, { timers });
  assert.equal((await records.getRun(recorder.id))?.heartbeatAt, recorder.startedAt);
  await timers.advance(HEARTBEAT_MS);
  assert.equal((await records.getRun(recorder.id))?.heartbeatAt, recorder.startedAt + HEARTBEAT_MS);
  await timers.advance(3 * HEARTBEAT_MS);
  assert.equal(
    (await records.getRun(recorder.id))?.heartbeatAt,
    recorder.startedAt + 4 * HEARTBEAT_MS,
  );
  // Alive: never abandoned, however old, however short the threshold asked for.
  assert.equal(await records.abandonRun(recorder.id, { afterMs: 1 }), null);
  await recorder.finish(END);
  assert.equal(timers.pending, 0, "the heartbeat stopped");
  assert.equal((await records.getRun(recorder.id))?.status, "succeeded");
});

Deno.test("a run whose process stopped beating is abandoned after the threshold, not before", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  const recorder = await RunRecorder.start(records, clock, START, { timers });
  await timers.advance(HEARTBEAT_MS);
  await recorder.close(); // the process "died"
  const lastBeat = clock.now();
  clock.set(lastBeat + MIN_ABANDONED_MS);
  assert.equal(await records.abandonRun(recorder.id, { afterMs: 2_000 }), null, "raised to 20 s");
  clock.set(lastBeat + MIN_ABANDONED_MS + 1);
  const marked = await records.abandonRun(recorder.id, { afterMs: 2_000 });
  assert.equal(marked?.status, "failed");
  assert.equal((await records.getRun(recorder.id))?.status, "failed");
  assert.equal((await records.getMetrics("f"))?.failed, 1);
});

Deno.test("RunRecorder retries a final commit that fails, and records the end", async () => {
  const { store, tries } = await failingEnds(3);
  await using _ = store;
  const records = new Records(store);
  const recorder = await RunRecorder.start(records, { now: Date.now }, START, {
    finishRetryDelaysMs: [0, 0, 0, 0],
  });
  const run = await recorder.finish(END);
  assert.equal(tries(), 4);
  assert.equal((await records.getRun(run.id))?.status, "succeeded");
});

Deno.test("RunRecorder gives up after the last retry with RunEndNotRecordedError; the run stays running", async () => {
  const { store, tries } = await failingEnds(-1);
  await using _ = store;
  const records = new Records(store);
  const recorder = await RunRecorder.start(records, { now: Date.now }, START, {
    finishRetryDelaysMs: [0, 0, 0, 0],
  });
  const err = await recorder.finish(END).then(() => null, (e) => e);
  assert.ok(err instanceof RunEndNotRecordedError, String(err));
  assert.equal(err.runId, recorder.id);
  assert.equal(err.attempts, 5);
  assert.equal(tries(), 5);
  assert.match(err.message, /No space left on device.*found abandoned/);
  assert.equal((await records.getRun(recorder.id))?.status, "running");
});

Deno.test("RunRecorder does not retry when the run was finished by someone else", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const recorder = await RunRecorder.start(records, { now: Date.now }, START, {
    finishRetryDelaysMs: [60_000],
  });
  const run = await records.getRun(recorder.id);
  await records.finishRun({ ...run!, status: "cancelled", error: { message: "by hand" } });
  await assert.rejects(() => recorder.finish(END), /already finished as "cancelled"/);
});

Deno.test("a run recorded abandoned while its process was stalled (SIGSTOP, starved) says so when that process ends it", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  const recorder = await RunRecorder.start(records, clock, START, { timers });
  // The process is stopped: no beat is written (the timers do not fire), and gc, in another
  // process, records the run abandoned once the threshold passed.
  clock.set(recorder.startedAt + MIN_ABANDONED_MS + 1);
  assert.equal(
    (await records.abandonRun(recorder.id, { afterMs: MIN_ABANDONED_MS }))?.status,
    "failed",
  );
  const err = await recorder.finish(END).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Error, "the end is refused");
  assert.match(
    err.message,
    /already finished as "failed" at .*: gc recorded it abandoned: no heartbeat for more than 20s since .*; a process stopped or stalled that long is taken for dead/,
  );
  await recorder.close();
});

Deno.test("RunRecorder sees a cancel request within CANCEL_POLL_MS, once, and the marker ends with the run", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  let requested = 0;
  const recorder = await RunRecorder.start(records, clock, START, {
    timers,
    onCancelRequested: () => requested++,
  });
  await timers.advance(CANCEL_POLL_MS);
  assert.equal(requested, 0, "no request yet");
  assert.equal((await records.requestCancel(recorder.id))?.status, "running");
  assert.equal(await records.cancelRequested(recorder.id), true);
  await timers.advance(CANCEL_POLL_MS);
  assert.equal(requested, 1);
  await timers.advance(3 * CANCEL_POLL_MS);
  assert.equal(requested, 1, "called once");
  await recorder.finish({ ...END, status: "cancelled" });
  assert.equal(timers.pending, 0, "the poll stopped");
  assert.equal(await records.cancelRequested(recorder.id), false, "the marker ended with the run");
  const ended = await records.requestCancel(recorder.id);
  assert.equal(ended?.status, "cancelled", "an ended run is returned as it is");
  assert.equal(await records.cancelRequested(recorder.id), false, "and nothing is written");
  assert.equal(await records.requestCancel("0mjuw3ms0abcdefghijk"), null);
});

Deno.test("RunRecorder stops a run that another process recorded ended (abandoned by a cancel with a clock ahead)", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  let stopped = 0;
  const recorder = await RunRecorder.start(records, clock, START, {
    timers,
    onCancelRequested: () => stopped++,
  });
  await timers.advance(HEARTBEAT_MS);
  assert.equal(stopped, 0, "alive and beating");
  // A canceller whose clock is two minutes ahead takes the run for gone and records it failed;
  // the cancel marker goes with that end, so the cancel poll cannot see it.
  const abandoned = await records.abandonRun(recorder.id, {
    afterMs: 60_000,
    now: clock.now() + 120_000,
  });
  assert.equal(abandoned?.status, "failed");
  await timers.advance(HEARTBEAT_MS);
  assert.equal(stopped, 1, "the next heartbeat finds it ended and stops the run");
  await timers.advance(3 * HEARTBEAT_MS);
  assert.equal(stopped, 1, "once");
  await assert.rejects(() => recorder.finish({ ...END, status: "cancelled" }), /already finished/);
});

Deno.test("Records.deleteRun removes a run's cancel marker with it", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const records = new Records(store, { clock });
  const recorder = await RunRecorder.start(records, clock, START, { timers: manualTimers(clock) });
  await records.requestCancel(recorder.id);
  await recorder.close();
  assert.equal(await records.deleteRun(recorder.id), true);
  assert.deepEqual(await Array.fromAsync(store.list({ prefix: ["flowstate"] })), []);
});

Deno.test("RunRecorder appends buffered events within EVENT_BATCH_MS even when no event follows", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  const recorder = await RunRecorder.start(records, clock, START, { timers });
  recorder.event({ at: clock.now(), type: "node.start", node: "wait" });
  recorder.event({
    at: clock.now(),
    type: "node.log",
    node: "wait",
    message: "waiting",
    level: "info",
  });
  await timers.settle();
  assert.deepEqual(await records.getEvents(recorder.id), [], "still in the batch");
  // The node now waits: no event comes, the batch is appended all the same.
  await timers.advance(EVENT_BATCH_MS);
  assert.deepEqual((await records.getEvents(recorder.id)).map((e) => e.type), [
    "node.start",
    "node.log",
  ]);
  await recorder.finish(END);
  assert.equal(timers.pending, 0, "no timer left");
  assert.equal((await records.getEvents(recorder.id)).length, 2);
});

/** Put one run of flow `f` in the queue; resolves its id. */
async function enqueueOne(records: Records): Promise<string> {
  const queued = { flowId: "f", flowVersion: "v1", inputs: {}, flowPath: "/f.flow.yaml" };
  return (await records.enqueueRun(queued)).runId;
}

Deno.test("RunRecorder.adopt stops a claimed run whose claim another worker took over, and never beats onto that claim", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  // Worker A, whose process pauses past its lease; worker B, whose clock is past A's lease.
  const a = new Records(store, { clock });
  const b = new Records(store, { clock: { now: () => clock.now() + 10_000 } });
  const runId = await enqueueOne(a);
  const claimed = await a.claimRun({ worker: "A", leaseMs: 1_000 });
  assert.equal(claimed?.id, runId);
  let stopped = 0;
  const recorder = RunRecorder.adopt(a, clock, claimed!, { ...START, queue: claimed!.queue }, {
    timers,
    heartbeatMs: 250,
    onCancelRequested: () => stopped++,
    commit: (record, events) => a.finishClaimedRun(record, events),
  });
  recorder.event({ at: clock.now(), type: "run.start" });
  await timers.advance(250);
  assert.equal((await a.getRun(runId))?.heartbeatAt, clock.now(), "A's beat extends its claim");
  assert.equal(stopped, 0);
  // A pauses; B takes the lapsed claim back (A's attempt recorded lost) and claims the run again.
  assert.deepEqual(await b.reclaimLost(), [runId]);
  const retaken = await b.claimRun({ worker: "B", leaseMs: 1_000 });
  assert.equal(retaken?.queue?.attempt, 2);
  const bBeat = clock.now() + 10_000;
  assert.ok(await b.heartbeatClaim(retaken!, bBeat));
  // A resumes: its next beat finds the claim gone and stops the run.
  recorder.event({ at: clock.now(), type: "node.start", node: "effect" });
  await timers.advance(250);
  assert.equal(stopped, 1, "A's run is stopped at its next beat");
  await timers.advance(1_000);
  assert.equal(stopped, 1, "once");
  recorder.event({
    at: clock.now(),
    type: "node.log",
    node: "effect",
    message: "late",
    level: "info",
  });
  await timers.advance(1_000);
  const held = await a.getRun(runId);
  assert.equal(held?.status, "running");
  assert.equal(held?.queue?.claim?.worker, "B");
  assert.equal(held?.heartbeatAt, bBeat, "B's claim keeps B's heartbeat");
  // Its end is refused without a write. Its events up to the beat that found the claim gone were
  // appended (that beat is the first moment it can know); none after it.
  await assert.rejects(
    () => recorder.finish({ ...END, status: "cancelled" }),
    (err: Error) => err.name === "RunNotOwnedError",
  );
  assert.equal(timers.pending, 0, "no timer left");
  assert.deepEqual((await a.getEvents(runId)).map((e) => e.type), ["run.start", "node.start"]);
  const after = await a.getRun(runId);
  assert.deepEqual(after?.queue?.attempts.map((x) => [x.worker, x.outcome]), [["A", "lost"]]);
  assert.equal(after?.heartbeatAt, bBeat);
});

Deno.test("Records.heartbeat never writes onto a claimed run (only heartbeatClaim extends a claim)", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const records = new Records(store, { clock });
  const runId = await enqueueOne(records);
  const claimed = await records.claimRun({ worker: "B", leaseMs: 1_000 });
  const before = (await records.getRun(runId))?.heartbeatAt;
  assert.equal(await records.heartbeat(runId, clock.now() + 500), false);
  assert.equal((await records.getRun(runId))?.heartbeatAt, before);
  assert.equal(await records.heartbeatClaim(claimed!, clock.now() + 500), true);
  assert.equal((await records.getRun(runId))?.heartbeatAt, clock.now() + 500);
});

Deno.test("RunRecorder.adopt with `lost`: once the worker finds the claim gone, nothing more is written and the run stops", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  const runId = await enqueueOne(records);
  const claimed = await records.claimRun({ worker: "A", leaseMs: 60_000 });
  const lost = new AbortController();
  let stopped = 0;
  const recorder = RunRecorder.adopt(
    records,
    clock,
    claimed!,
    { ...START, queue: claimed!.queue },
    {
      timers,
      lost: lost.signal,
      onCancelRequested: () => stopped++,
      commit: (record, events) => records.finishClaimedRun(record, events),
    },
  );
  recorder.event({ at: clock.now(), type: "run.start" });
  await timers.advance(EVENT_BATCH_MS);
  recorder.event({ at: clock.now(), type: "node.start", node: "wait" });
  lost.abort();
  assert.equal(stopped, 1, "the run is told to stop at once");
  recorder.event({
    at: clock.now(),
    type: "node.log",
    node: "wait",
    message: "late",
    level: "info",
  });
  await timers.advance(EVENT_BATCH_MS);
  // Not this process's run any more: a process exiting at once has no end to record for it.
  const { ended, notEnded } = await RunRecorder.interruptAll("cancelled: exiting at once");
  assert.deepEqual([ended, notEnded], [[], []]);
  await assert.rejects(
    () => recorder.finish({ ...END, status: "cancelled" }),
    (err: Error) => err.name === "RunNotOwnedError",
  );
  assert.equal(stopped, 1);
  assert.deepEqual((await records.getEvents(runId)).map((e) => e.type), ["run.start"]);
  assert.equal((await records.getRun(runId))?.status, "running", "nothing was recorded");
});

Deno.test("RunRecorder.adopt with `lost`: no heartbeat renews the claim once lost, so any worker takes the run back a lease later, while the attempt is still stopping", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  let beats = 0;
  const heartbeatClaim = records.heartbeatClaim.bind(records);
  Reflect.set(records, "heartbeatClaim", (...args: Parameters<typeof heartbeatClaim>) => {
    beats++;
    return heartbeatClaim(...args);
  });
  const lost = new AbortController();
  const { runId, recorder } = await claimedRecorder(records, clock, {
    timers,
    heartbeatMs: 250,
    lost: lost.signal,
  });
  await timers.advance(250);
  assert.equal(beats, 1, "the claim is renewed while the attempt holds it");
  const lastBeat = (await records.getRun(runId))?.heartbeatAt;
  assert.equal(lastBeat, clock.now());
  // Its worker saw its lease run out (a starved process): the attempt is lost, and stopping
  // (a node that ignores its signal keeps it from ending for a while).
  lost.abort();
  for (let waited = 0; waited <= 60_000; waited += 250) await timers.advance(250);
  assert.equal(beats, 1, "no heartbeat once lost");
  assert.equal((await records.getRun(runId))?.heartbeatAt, lastBeat);
  // A lease (60 s) after its last heartbeat, another worker takes the run back.
  const b = new Records(store, { clock });
  assert.deepEqual(await b.reclaimLost(), [runId]);
  assert.equal((await b.claimRun({ worker: "B", leaseMs: 60_000 }))?.id, runId);
  await assert.rejects(
    () => recorder.finish({ ...END, status: "cancelled" }),
    (err: Error) => err.name === "RunNotOwnedError",
  );
  assert.equal(timers.pending, 0, "no timer left");
});

Deno.test("a claimed run whose record was deleted meanwhile (restore --force) says its record is gone, not that another worker took it", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  const runId = await enqueueOne(records);
  const claimed = await records.claimRun({ worker: "A", leaseMs: 60_000 });
  const recorder = RunRecorder.adopt(
    records,
    clock,
    claimed!,
    { ...START, queue: claimed!.queue },
    {
      timers,
      commit: (record, events) => records.finishClaimedRun(record, events),
    },
  );
  assert.ok(await records.deleteRun(runId));
  const err = await recorder.finish(END).then(() => assert.fail("recorded"), (e) => e);
  assert.ok(err instanceof RunNotOwnedError, String(err));
  assert.equal(err.gone, true);
  assert.match(err.message, /its record is gone \(deleted while it ran: a restore --force/);
  assert.doesNotMatch(err.message, /another worker/);
  assert.equal(await records.getRun(runId), null, "nothing was written back");
});

Deno.test("RunRecorder.finish() after interruptAll() returns the end interruptAll recorded, without a conflict", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const clock = { now: () => Date.now() };
  const recorder = await RunRecorder.start(records, clock, {
    flowId: "f",
    flowVersion: "job",
    inputs: {},
  });
  recorder.event({ at: clock.now(), type: "node.start", node: "a" });
  recorder.event({ at: clock.now(), type: "node.attempt", node: "a", attempt: 1 });
  const { ended } = await RunRecorder.interruptAll("cancelled: exiting");
  assert.ok(ended.includes(recorder.id));
  // The run's own code reaches its end meanwhile: it gets the recorded end, not an error.
  const record = await recorder.finish({
    status: "succeeded",
    outputs: {},
    nodes: {},
    error: null,
  });
  assert.equal(record.status, "cancelled");
  assert.deepEqual(record.nodes, { a: { status: "cancelled", attempts: 1 } });
  assert.equal((await records.getRun(recorder.id))?.error?.message, "cancelled: exiting");
  // Nothing is left in flight.
  assert.deepEqual(await RunRecorder.interruptAll("again"), {
    ended: [],
    notEnded: [],
    elsewhere: [],
  });
});

/**
 * A slow store: the first call of `records[method]` waits until `release()`;
 * `called` resolves once it is made.
 */
function holdFirstCall(
  records: Records,
  method: "heartbeatClaim" | "startRun" | "appendEvents",
) {
  const called = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  const original = records[method].bind(records) as (...args: unknown[]) => Promise<unknown>;
  let calls = 0;
  Reflect.set(records, method, async (...args: unknown[]) => {
    if (++calls === 1) {
      called.resolve();
      await gate.promise;
    }
    return await original(...args);
  });
  return { called: called.promise, release: () => gate.resolve(), calls: () => calls };
}

/** A claimed run of flow `f` (worker A), its recorder committing as a queue worker's does. */
async function claimedRecorder(
  records: Records,
  clock: ReturnType<typeof fakeClock>,
  options: Parameters<typeof RunRecorder.adopt>[4] = {},
) {
  const runId = await enqueueOne(records);
  const claimed = (await records.claimRun({ worker: "A", leaseMs: 60_000 }))!;
  assert.equal(claimed.id, runId);
  const recorder = RunRecorder.adopt(records, clock, claimed, { ...START, queue: claimed.queue }, {
    commit: claimedRunCommit(records),
    ...options,
  });
  return { runId, recorder };
}

const CHARGED = {
  ...END,
  outputs: { charged: true },
  nodes: { charge: { status: "succeeded" as const, attempts: 1 } },
};

Deno.test("interruptAll while finish() waits for a heartbeat in flight records finish's end: a claimed run that succeeded stays succeeded, not given back to the queue", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  // The store holds the next heartbeat until told.
  const beat = holdFirstCall(records, "heartbeatClaim");
  const { runId, recorder } = await claimedRecorder(records, clock, { timers, heartbeatMs: 250 });
  recorder.event({ at: clock.now(), type: "run.start" });
  recorder.event({
    at: clock.now(),
    type: "node.end",
    node: "charge",
    status: "succeeded",
    attempt: 1,
    durationMs: 5,
  });
  await timers.advance(250);
  assert.equal(beat.calls(), 1, "a heartbeat is in flight");
  // The run's nodes all succeeded: finish() starts (and waits for the heartbeat); the second
  // stop signal comes meanwhile.
  const finishing = recorder.finish(CHARGED);
  const interrupting = RunRecorder.interruptAll("cancelled: exiting at once");
  beat.release();
  assert.deepEqual(await interrupting, { ended: [runId], notEnded: [], elsewhere: [] });
  assert.equal((await finishing).status, "succeeded");
  const stored = await records.getRun(runId);
  assert.equal(stored?.status, "succeeded");
  assert.deepEqual(stored?.outputs, { charged: true });
  assert.deepEqual(stored?.queue?.attempts.map((x) => x.outcome), ["succeeded"]);
  assert.deepEqual((await records.getEvents(runId)).map((e) => e.type), ["run.start", "node.end"]);
  // Not back in the queue: no other worker runs it (and charges) again.
  clock.set(clock.now() + 60_000);
  assert.equal(await records.claimRun({ worker: "B", leaseMs: 60_000 }), null);
  assert.equal(timers.pending, 0, "no timer left");
});

Deno.test("interruptAll reports a claimed run whose end finish() committed first as ended (its own commit is refused), not as left running", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  const commit = claimedRunCommit(records);
  const landed = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  let commits = 0;
  const { runId, recorder } = await claimedRecorder(records, clock, {
    timers,
    // finish()'s commit is stored, then its answer is slow to come back.
    commit: async (record, events, how) => {
      const ok = await commit(record, events, how);
      if (++commits === 1) {
        landed.resolve();
        await gate.promise;
      }
      return ok;
    },
  });
  const finishing = recorder.finish(CHARGED);
  await landed.promise;
  assert.deepEqual(await RunRecorder.interruptAll("cancelled: exiting at once"), {
    ended: [runId],
    notEnded: [],
    elsewhere: [],
  });
  assert.equal(commits, 2, "interruptAll tried to commit, and was refused");
  gate.resolve();
  assert.equal((await finishing).status, "succeeded");
  assert.equal((await records.getRun(runId))?.status, "succeeded");
});

Deno.test("interruptAll reports a claimed run another worker took over as elsewhere, not as left running", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const a = new Records(store, { clock });
  // Worker B's clock is past A's lease (A paused).
  const b = new Records(store, { clock: { now: () => clock.now() + 120_000 } });
  const { runId, recorder } = await claimedRecorder(a, clock, { timers });
  assert.deepEqual(await b.reclaimLost(), [runId]);
  assert.equal((await b.claimRun({ worker: "B", leaseMs: 60_000 }))?.id, runId);
  assert.deepEqual(await RunRecorder.interruptAll("cancelled: exiting at once"), {
    ended: [],
    notEnded: [],
    elsewhere: [runId],
  });
  const stored = await a.getRun(runId);
  assert.equal(stored?.status, "running");
  assert.equal(stored?.queue?.claim?.worker, "B", "B's run, untouched");
  await assert.rejects(() => recorder.finish(END), (err: Error) => err.name === "RunNotOwnedError");
});

Deno.test("interruptAll gives a claimed run back to the queue due only after its exit bound, and stops the run's nodes at once", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  let stopped = 0;
  const { runId, recorder } = await claimedRecorder(records, clock, {
    timers,
    onCancelRequested: () => stopped++,
  });
  recorder.event({ at: clock.now(), type: "node.start", node: "charge" });
  const at = clock.now();
  assert.deepEqual(
    await RunRecorder.interruptAll("cancelled: exiting at once", { timeoutMs: 800 }),
    {
      ended: [runId],
      notEnded: [],
      elsewhere: [],
    },
  );
  assert.equal(stopped, 1, "the run's nodes are told to stop");
  const stored = await records.getRun(runId);
  assert.equal(stored?.status, "queued");
  assert.equal(stored?.queue?.runAt, at + 800 + REQUEUE_MARGIN_MS);
  assert.deepEqual(stored?.queue?.attempts.map((x) => x.outcome), ["lost"]);
  // The run's own code, stopped, reaches its end: it gets the recorded one.
  assert.equal((await recorder.finish({ ...END, status: "cancelled" })).status, "queued");
  // While this process may still be running it, no other worker takes it.
  clock.set(at + 800 + REQUEUE_MARGIN_MS - 1);
  assert.equal(await records.claimRun({ worker: "B", leaseMs: 60_000, promote: true }), null);
  clock.set(at + 800 + REQUEUE_MARGIN_MS);
  assert.equal(
    (await records.claimRun({ worker: "B", leaseMs: 60_000, promote: true }))?.id,
    runId,
  );
});

Deno.test("interruptAll counts a run whose start is still being saved: it is recorded cancelled once saved, and no run starts while the process exits", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  // The first start's save is slow.
  const save = holdFirstCall(records, "startRun");
  let stopped = 0;
  const starting = RunRecorder.start(records, clock, START, {
    timers,
    onCancelRequested: () => stopped++,
  });
  await save.called;
  const interrupting = RunRecorder.interruptAll("cancelled: exiting at once");
  await assert.rejects(
    () => RunRecorder.start(records, clock, START, { timers }),
    /Cannot start a run of f: the process is exiting at once/,
  );
  save.release();
  const recorder = await starting;
  assert.deepEqual(await interrupting, { ended: [recorder.id], notEnded: [], elsewhere: [] });
  assert.equal(stopped, 1, "the run is told to stop");
  const stored = await records.getRun(recorder.id);
  assert.equal(stored?.status, "cancelled");
  assert.equal(stored?.error?.message, "cancelled: exiting at once");
  assert.equal((await recorder.finish(END)).status, "cancelled");
  assert.equal(timers.pending, 0, "no heartbeat was started");
  assert.deepEqual((await records.listRuns()).runs.map((r) => r.status), ["cancelled"]);
  // Once interruptAll has resolved, runs start again (a process that goes on).
  const later = await RunRecorder.start(records, clock, START, { timers });
  await later.finish(END);
});

Deno.test("interruptAll while finish() waits for an event append in flight records finish's end with every event (a plain run)", async () => {
  await using store = await openStore({ plugin: "memory" });
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const timers = manualTimers(clock);
  const records = new Records(store, { clock });
  // The store holds the first append of events until told.
  const append = holdFirstCall(records, "appendEvents");
  const recorder = await RunRecorder.start(records, clock, START, { timers });
  recorder.event({ at: clock.now(), type: "run.start" });
  // Old enough: this event starts an append of the batch.
  recorder.event({ at: clock.now() + EVENT_BATCH_MS, type: "node.start", node: "charge" });
  await append.called;
  recorder.event({
    at: clock.now() + EVENT_BATCH_MS,
    type: "node.end",
    node: "charge",
    status: "succeeded",
    attempt: 1,
    durationMs: 5,
  });
  const finishing = recorder.finish(CHARGED);
  const interrupting = RunRecorder.interruptAll("cancelled: exiting at once");
  append.release();
  assert.deepEqual(await interrupting, { ended: [recorder.id], notEnded: [], elsewhere: [] });
  assert.equal((await finishing).status, "succeeded");
  const stored = await records.getRun(recorder.id);
  assert.equal(stored?.status, "succeeded");
  assert.deepEqual(stored?.outputs, { charged: true });
  assert.deepEqual(
    (await records.getEvents(recorder.id)).map((e) => e.type),
    ["run.start", "node.start", "node.end"],
  );
});

Deno.test("Records.finishClaimedRun refuses a releaseAfterMs that is not a number of ms >= 0, writing nothing", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const runId = await enqueueOne(records);
  const claimed = (await records.claimRun({ worker: "A", leaseMs: 60_000 }))!;
  for (const releaseAfterMs of [-1, Number.NaN, Infinity]) {
    await assert.rejects(
      () => records.finishClaimedRun(claimed, [], { release: true, releaseAfterMs }),
      new RegExp(`releaseAfterMs must be a number of ms >= 0 \\(got ${releaseAfterMs}\\)`),
    );
  }
  assert.equal((await records.getRun(runId))?.queue?.claim?.worker, "A", "still claimed");
});

Deno.test("interruptAll records the same nodes, in the same order, whether the recorder was given the run's nodeIds or not", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const nodeIds = ["a", "b", "c", "d", "e"];
  /** The events of a run cut short: ended, retried, skipped, running, and a node not in nodeIds. */
  const play = (recorder: RunRecorder) => {
    const at = clock.now();
    recorder.event({ at, type: "run.start" });
    recorder.event({ at, type: "node.start", node: "c" });
    recorder.event({ at, type: "node.attempt", node: "c", attempt: 1 });
    recorder.event({ at, type: "node.start", node: "extra" });
    recorder.event({ at, type: "node.attempt", node: "c", attempt: 1, error: "boom" });
    recorder.event({ at, type: "node.attempt", node: "c", attempt: 2 });
    recorder.event({ at, type: "node.start", node: "a" });
    recorder.event({ at, type: "node.attempt", node: "a", attempt: 1 });
    recorder.event({
      at,
      type: "node.end",
      node: "a",
      status: "failed",
      attempt: 1,
      durationMs: 0,
      error: "no",
    });
    // Started again (a node that never ends this way in a flow, but events may say so).
    recorder.event({ at, type: "node.start", node: "a" });
    recorder.event({
      at,
      type: "node.end",
      node: "e",
      status: "skipped",
      attempt: 0,
      durationMs: 0,
    });
    recorder.event({
      at,
      type: "node.end",
      node: "extra",
      status: "succeeded",
      attempt: 1,
      durationMs: 1,
    });
  };
  const runs: string[] = [];
  for (const options of [{}, { nodeIds }]) {
    const recorder = await RunRecorder.start(records, clock, START, options);
    play(recorder);
    runs.push(recorder.id);
    await RunRecorder.interruptAll("cancelled: exiting at once");
  }
  const [without, withIds] = await Promise.all(runs.map((id) => records.getRun(id)));
  const expected = {
    c: { status: "cancelled", attempts: 2 },
    extra: { status: "succeeded", attempts: 1 },
    a: { status: "cancelled", attempts: 0 },
    e: { status: "skipped", attempts: 0 },
  };
  for (const run of [without, withIds]) {
    assert.equal(run?.status, "cancelled");
    assert.deepEqual(run?.nodes, expected);
    assert.deepEqual(Object.keys(run?.nodes ?? {}), Object.keys(expected), "first-event order");
  }
});

Deno.test("RunRecorder keeps retrying the final commit past its waits while retryFinishWhile holds, then gives up saying the claim lapsed", async () => {
  {
    const { store, tries } = await failingEnds(7);
    await using _ = store;
    const records = new Records(store);
    const recorder = await RunRecorder.start(records, { now: Date.now }, START, {
      finishRetryDelaysMs: [0, 0, 0, 0],
      retryFinishWhile: () => true,
    });
    const run = await recorder.finish(END);
    assert.equal(tries(), 8);
    assert.equal((await records.getRun(run.id))?.status, "succeeded");
  }
  const { store, tries } = await failingEnds(-1);
  await using _ = store;
  const records = new Records(store);
  let asked = 0;
  const recorder = await RunRecorder.start(records, { now: Date.now }, START, {
    finishRetryDelaysMs: [0, 0, 0, 0],
    retryFinishWhile: () => ++asked < 3,
  });
  const err = await recorder.finish(END).then(() => null, (e) => e);
  assert.ok(err instanceof RunEndNotRecordedError, String(err));
  assert.equal(tries(), 7);
  assert.match(err.message, /claim lapsed meanwhile, so a worker takes it back/);
});
