/**
 * A worker's runs when its records store fails for a moment, through mod.ts
 * (the store's methods made to fail, as an outage would).
 *
 * A queued run whose end was recorded, but a batch of whose events could not
 * be appended earlier (the store failed for a moment while the run went on):
 * the worker tells the run's stored status, with the gap in its error, and
 * records nothing over it. It used to take that error for a flow that could
 * not start: it told `failed` for a run recorded `succeeded`, and tried to
 * record it failed.
 *
 * A claimed run whose start could not be recorded because the store did not
 * answer (a connection lost, a server at its connection limit) goes back to
 * the queue, not counted, and runs once the store answers. It used to be
 * recorded failed for good, though none of it ran.
 *
 * A claimed run whose end cannot be recorded for longer than the recorder's
 * waits (5 tries over 7.5 s), but less than its claim's lease, is recorded
 * with its own end once the store answers. It used to be recorded failed by
 * the worker's fallback though it succeeded.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  openRuntime,
  type Runtime,
  startWorker,
  StoreUnavailableError,
  type WorkerEvent,
} from "../mod.ts";
import { Records } from "../records.ts";
import { within } from "./_deadline.ts";

Deno.test("a worker tells a run's stored status when its end was recorded but some of its events were not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-events-lost-" });
  let restore = () => {};
  try {
    // The log node's events are appended during the delay (EVENT_BATCH_MS), before the end.
    await Deno.writeTextFile(
      join(dir, "gap.flow.yaml"),
      "id: gap\nnodes:\n  - { id: say, type: log, with: { message: hi } }\n" +
        "  - { id: wait, type: delay, with: { for: 1s }, needs: [say] }\n",
    );
    await using rt = await openRuntime({
      cwd: dir,
      config: { stores: { main: { plugin: "memory" } }, flows: [dir] },
    });
    // Every Records the runtime makes (one per call) fails to append events, and counts ends.
    let appends = 0;
    let finishes = 0;
    const { appendEvents, finishClaimedRun } = Records.prototype;
    Records.prototype.appendEvents = () => {
      appends++;
      return Promise.reject(new Error("the store is unavailable"));
    };
    Records.prototype.finishClaimedRun = function (this: Records, ...args) {
      finishes++;
      return finishClaimedRun.apply(this, args);
    };
    restore = () => {
      Records.prototype.appendEvents = appendEvents;
      Records.prototype.finishClaimedRun = finishClaimedRun;
    };
    const records = await rt.records();
    const { runId } = await rt.enqueue("./gap.flow.yaml");
    const ended = Promise.withResolvers<Extract<WorkerEvent, { type: "end" }>>();
    const worker = startWorker(rt, {
      onEvent: (e) => e.type === "end" && ended.resolve(e),
    });
    const end = await within(ended.promise, "the ended event");
    await worker.stop();
    assert.ok(appends > 0, "no batch of events was appended before the end");
    const stored = await records.getRun(runId);
    assert.equal(stored?.status, "succeeded");
    assert.equal(end.status, "succeeded");
    assert.equal(end.requeued, undefined);
    assert.match(
      end.error ?? "",
      /finished succeeded but some of its events could not be recorded/,
    );
    // The end, once: no second record of the run as failed.
    assert.equal(finishes, 1);
  } finally {
    restore();
    await Deno.remove(dir, { recursive: true });
  }
});

/** The error a store gives when its server does not answer. */
function unavailable(call: string): StoreUnavailableError {
  return new StoreUnavailableError(`Cannot ${call}: store "main": the connection failed`, {
    store: "main",
  });
}

/**
 * A runtime on a memory store, in a temp folder, with one run of
 * `once.flow.yaml` (one log node) queued; what `fn` hands `onEnd` (putting a
 * patched method back) runs after it, whatever happens.
 */
async function withQueuedOnce(
  fn: (rt: Runtime, runId: string, onEnd: (restore: () => void) => void) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-worker-store-faults-" });
  let restore = () => {};
  try {
    await Deno.writeTextFile(
      join(dir, "once.flow.yaml"),
      "id: once\nnodes:\n  - { id: say, type: log, with: { message: hi } }\n",
    );
    await using rt = await openRuntime({
      cwd: dir,
      config: { stores: { main: { plugin: "memory" } }, flows: [dir] },
    });
    const { runId } = await rt.enqueue("./once.flow.yaml");
    await fn(rt, runId, (r) => restore = r);
  } finally {
    restore();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a worker puts back in the queue a run whose start its store did not answer, and runs it once it does", async () => {
  await withQueuedOnce(async (rt, runId, onEnd) => {
    // The first start of the run finds the store unavailable (saving its flow's version).
    const { saveVersion } = Records.prototype;
    let failures = 0;
    Records.prototype.saveVersion = function (this: Records, ...args) {
      if (failures++ === 0) {
        return Promise.reject(
          unavailable("getMany"),
        );
      }
      return saveVersion.apply(this, args);
    };
    onEnd(() => void (Records.prototype.saveVersion = saveVersion));
    const ends: Extract<WorkerEvent, { type: "end" }>[] = [];
    const succeeded = Promise.withResolvers<void>();
    const worker = startWorker(rt, {
      onEvent: (e) => {
        if (e.type !== "end") return;
        ends.push(e);
        if (e.status === "succeeded") succeeded.resolve();
        else if (e.requeued === undefined) succeeded.reject(new Error(`ended ${e.status}`));
      },
    });
    await within(succeeded.promise, "the succeeded event");
    await worker.stop();
    assert.deepEqual(ends.map((e) => [e.attempt, e.status, e.requeued]), [
      [1, "cancelled", "released"],
      [2, "succeeded", undefined],
    ]);
    const run = await (await rt.records()).getRun(runId);
    assert.equal(run?.status, "succeeded");
    assert.deepEqual(run?.queue?.attempts.map((a) => a.outcome), ["lost", "succeeded"]);
    assert.match(run?.queue?.attempts[0].error ?? "", /^released: its store did not answer: /);
  });
});

Deno.test("a worker records a run's own end when its store fails past the recorder's waits but within the claim's lease", async () => {
  await withQueuedOnce(async (rt, runId, onEnd) => {
    // The end's first 5 commits (the recorder's waits, 7.5 s) find the store unavailable;
    // heartbeats still land, so the claim's lease (30 s) holds.
    const { finishClaimedRun } = Records.prototype;
    const statuses: string[] = [];
    Records.prototype.finishClaimedRun = function (this: Records, ...args) {
      statuses.push(args[0].status);
      if (statuses.length <= 5) {
        return Promise.reject(
          unavailable("commit"),
        );
      }
      return finishClaimedRun.apply(this, args);
    };
    onEnd(() => void (Records.prototype.finishClaimedRun = finishClaimedRun));
    const ended = Promise.withResolvers<Extract<WorkerEvent, { type: "end" }>>();
    const worker = startWorker(rt, { onEvent: (e) => e.type === "end" && ended.resolve(e) });
    const end = await within(ended.promise, "the ended event");
    await worker.stop();
    assert.equal(end.status, "succeeded");
    assert.deepEqual(statuses, Array(6).fill("succeeded"), "no fallback recorded it failed");
    const run = await (await rt.records()).getRun(runId);
    assert.equal(run?.status, "succeeded");
    assert.deepEqual(run?.queue?.attempts.map((a) => a.outcome), ["succeeded"]);
  });
});

Deno.test("a stopping worker whose registry writes are slow (a store struggling) waits out its grace without a negative timer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-slow-beat-" });
  const { default: process } = await import("node:process");
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on("warning", onWarning);
  const { putWorker } = Records.prototype;
  try {
    await Deno.writeTextFile(
      join(dir, "slow.flow.yaml"),
      "id: slow\nnodes:\n  - { id: wait, type: delay, with: { for: 30s } }\n",
    );
    await using rt = await openRuntime({
      cwd: dir,
      config: { stores: { main: { plugin: "memory" } }, flows: [dir] },
    });
    const { runId } = await rt.enqueue("slow");
    const claimed = Promise.withResolvers<void>();
    // A 400 ms lease: the registry entry is due every 100 ms.
    const worker = startWorker(rt, {
      leaseMs: 400,
      pollMs: 50,
      onEvent: (e) => e.type === "claim" && claimed.resolve(),
    });
    await within(claimed.promise, "the claim");
    // Each registry write now takes longer than the interval between two of them.
    Records.prototype.putWorker = async function (this: Records, ...args) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      return await putWorker.apply(this, args);
    };
    await worker.stop({ graceMs: 600 });
    Records.prototype.putWorker = putWorker;
    // Released to the queue once its grace ran out.
    assert.equal((await (await rt.records()).getRun(runId))?.status, "queued");
    assert.deepEqual(warnings, []);
  } finally {
    Records.prototype.putWorker = putWorker;
    process.off("warning", onWarning);
    await Deno.remove(dir, { recursive: true });
  }
});
