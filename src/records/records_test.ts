// Tests of `Records`: the key layout as stored (inline events, chunks, the 0.1 layout) and the prefix.
import assert from "node:assert/strict";
import type { Key } from "../store/types.ts";
import {
  allKeys,
  backendTest,
  FakeClock,
  finished,
  flow,
  newRun,
  openBackend,
  setup,
} from "./_test_utils.ts";
import { Records } from "./records.ts";
import type { RunEvent } from "./types.ts";

// ---------------------------------------------------------------- layout

backendTest(
  "Records: a finished succeeded run is two entries, with its events inline",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const run = newRun(clock);
    await records.startRun(run);
    const id = run.id;
    assert.deepEqual(await allKeys(store), [
      ["flowstate", "runs", id],
      ["flowstate", "runs-by-flow", "f", id],
      ["flowstate", "runs-by-flow-status", "f", "running", id],
      ["flowstate", "runs-by-status", "running", id],
    ]);
    await records.appendEvents(id, [{ at: 1, type: "run.start" }]);
    await records.finishRun(finished(run, "succeeded", 5), [{ at: 6, type: "run.end" }]);
    assert.deepEqual(await allKeys(store), [
      ["flowstate", "metrics", "f", "*"],
      ["flowstate", "metrics", "f", "v1"],
      ["flowstate", "runs", id],
      ["flowstate", "runs-by-flow", "f", id],
    ]);
    assert.deepEqual(await records.getEvents(id), [
      { at: 1, type: "run.start" },
      { at: 6, type: "run.end" },
    ]);
    const record = await records.getRun(id);
    assert.deepEqual(record, { ...finished(run, "succeeded", 5) });
    assert.ok(!("@events" in record!), "readers never see the inline events");
    const [listed] = (await records.listRuns()).runs;
    assert.ok(!("@events" in listed), "nor do listings");
    await store.close();
  },
);

backendTest(
  "Records: a run with more than 1,000 events keeps them in chunks, in order",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const run = newRun(clock);
    await records.startRun(run);
    const events: RunEvent[] = Array.from(
      { length: 1200 },
      (_, i) => ({ at: i, type: "node.start", node: "a" }),
    );
    for (let i = 0; i < 1000; i += 250) {
      await records.appendEvents(run.id, events.slice(i, i + 250));
    }
    await records.finishRun(finished(run, "failed", 5), events.slice(1000));
    assert.equal(await store.count(["flowstate", "events", run.id]), 5);
    assert.deepEqual(await records.getEvents(run.id), events);
    // A second Records (another process) sees the same.
    assert.deepEqual(await new Records(store, { clock }).getEvents(run.id), events);
    assert.equal(await records.deleteRun(run.id), true);
    assert.equal(await store.count(["flowstate", "events"]), 0);
    assert.equal(await store.count(["flowstate", "runs"]), 0);
    await store.close();
  },
);

backendTest(
  "Records: finishing a run another process started folds the chunks it wrote",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const run = newRun(clock);
    await records.startRun(run);
    await records.appendEvents(run.id, [{ at: 1, type: "run.start" }]);
    await records.appendEvents(run.id, [{ at: 2, type: "node.start", node: "a" }]);
    const other = new Records(store, { clock }); // no cached tail
    await other.finishRun(finished(run, "succeeded", 5), [{ at: 3, type: "run.end" }]);
    assert.equal(await store.count(["flowstate", "events"]), 0);
    assert.deepEqual((await records.getEvents(run.id)).map((e) => e.at), [1, 2, 3]);
    await store.close();
  },
);

backendTest(
  "Records: runs written by Flowstate 0.1 (every status indexed, events in chunks) are read and deleted",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const run = finished(newRun(clock), "succeeded", 5);
    const summary = {
      id: run.id,
      flowId: "f",
      flowVersion: "v1",
      status: "succeeded",
      startedAt: run.startedAt,
      endedAt: run.endedAt,
      durationMs: 5,
      error: null,
    };
    // The 0.1 layout, written by hand.
    await store.atomic()
      .set(["flowstate", "runs", run.id], run)
      .set(["flowstate", "runs-by-flow", "f", run.id], summary)
      .set(["flowstate", "runs-by-status", "succeeded", run.id], summary)
      .set(["flowstate", "runs-by-flow-status", "f", "succeeded", run.id], summary)
      .set(["flowstate", "events", run.id, "00000000"], {
        first: 0,
        events: [{ at: 1, type: "run.start" }],
      })
      .commit();
    assert.deepEqual(await records.getRun(run.id), run);
    assert.deepEqual(await records.getEvents(run.id), [{ at: 1, type: "run.start" }]);
    assert.deepEqual(
      (await records.listRunSummaries({ status: "succeeded" })).runs.map((r) => r.id),
      [run.id],
    );
    assert.deepEqual(
      (await records.listRunSummaries({ flowId: "f", status: "succeeded" })).runs,
      [summary],
    );
    assert.equal(await records.deleteRun(run.id), true);
    assert.deepEqual(await allKeys(store), [], "every key of the old layout is gone");
    await store.close();
  },
);

backendTest("Records keeps every key under its prefix", async (backend) => {
  const clock = new FakeClock();
  const store = await openBackend(backend, clock);
  const records = new Records(store, { clock, prefix: ["tenant", "x"] });
  await records.saveVersion(flow("f"));
  const run = newRun(clock);
  await records.startRun(run);
  await records.appendEvents(run.id, [{ at: 1, type: "run.start" }]);
  await records.finishRun(finished(run, "succeeded", 1));
  const keys = await allKeys(store);
  assert.ok(keys.length > 0);
  assert.ok(keys.every((k) => k[0] === "tenant" && k[1] === "x"), JSON.stringify(keys));
  assert.equal(await store.count(["flowstate"]), 0);
  assert.throws(() => new Records(store, { prefix: [1] as unknown as Key }), TypeError);
  assert.throws(() => new Records(store, { retry: { attempts: 0 } }), RangeError);
  await store.close();
});
