// Tests of `Records`: starting and finishing runs, metrics, events, and deleting runs.
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConflictError } from "../errors.ts";
import { openStore } from "../plugin.ts";
import {
  allKeys,
  backendTest,
  counting,
  FakeClock,
  finished,
  flow,
  newRun,
  setup,
  T0,
} from "./_test_utils.ts";
import { HISTOGRAM_RELATIVE_ERROR } from "./metrics.ts";
import { Records } from "./records.ts";
import { RunRecorder } from "./recorder.ts";
import { newRunId } from "./run_id.ts";
import type { RunEvent, RunRecord } from "./types.ts";

backendTest(
  "Records.startRun() records a running run and refuses a duplicate id",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const run = newRun(clock);
    await records.startRun(run);
    assert.deepEqual(await records.getRun(run.id), run);
    await assert.rejects(() => records.startRun(run), ConflictError);
    await assert.rejects(
      () => records.startRun({ ...newRun(clock), status: "succeeded" }),
      TypeError,
    );
    await assert.rejects(() => records.startRun({ ...run, id: "not-a-run-id" }), TypeError);
    assert.equal((await records.listRuns({ status: "running" })).runs.length, 1);
    await store.close();
  },
);

backendTest(
  "Records.finishRun() moves the run from the running index to its final status",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const run = newRun(clock);
    await records.startRun(run);
    clock.t += 1234;
    await records.finishRun({ ...run, status: "failed", error: { message: "x" } });
    const stored = await records.getRun(run.id);
    assert.equal(stored?.status, "failed");
    assert.equal(stored?.endedAt, T0 + 1234, "endedAt defaults to the clock");
    assert.equal(stored?.durationMs, 1234);
    assert.deepEqual((await records.listRuns({ status: "running" })).runs, []);
    assert.deepEqual((await records.listRuns({ flowId: "f", status: "running" })).runs, []);
    const failed = await records.listRunSummaries({ flowId: "f", status: "failed" });
    assert.deepEqual(failed.runs.map((r) => [r.id, r.durationMs, r.error]), [
      [run.id, 1234, { message: "x" }],
    ]);
    const [summary] = (await records.listRunSummaries({ flowId: "f" })).runs;
    assert.equal(summary.status, "failed");
    await store.close();
  },
);

backendTest(
  "Records.finishRun() is idempotent, and refuses a different final status",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const run = newRun(clock);
    await records.startRun(run);
    const done = finished(run, "succeeded", 50);
    await records.finishRun(done);
    await records.finishRun(done);
    assert.equal((await records.getMetrics("f"))?.count, 1);
    await assert.rejects(() => records.finishRun(finished(run, "cancelled", 60)), ConflictError);
    assert.equal((await records.getRun(run.id))?.status, "succeeded");
    await assert.rejects(() => records.finishRun(run), TypeError, "running is not final");
    await store.close();
  },
);

backendTest(
  "Records.finishRun() from 20 concurrent runs counts every one exactly once",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const other = new Records(store, { clock }); // like a second process on the same store
    const runs: RunRecord[] = [];
    for (let i = 0; i < 20; i++) {
      const run = newRun(clock, "f", i % 2 ? "v1" : "v2");
      await records.startRun(run);
      runs.push(run);
    }
    await Promise.all(
      runs.map((run, i) =>
        (i % 2 ? other : records).finishRun(
          finished(run, i % 4 === 0 ? "failed" : "succeeded", i + 1),
        )
      ),
    );
    const all = await records.getMetrics("f");
    assert.equal(all?.count, 20);
    assert.equal(all?.failed, 5);
    assert.equal(all?.succeeded, 15);
    assert.equal(all?.totalDurationMs, 210);
    assert.equal(all?.minDurationMs, 1);
    assert.equal(all?.maxDurationMs, 20);
    assert.equal((await records.getMetrics("f", "v1"))?.count, 10);
    assert.equal((await records.getMetrics("f", "v2"))?.count, 10);
    assert.equal((await records.listRuns({ status: "running" })).runs.length, 0);
    assert.equal((await records.listMetrics()).length, 3);
    assert.equal((await records.listMetrics("f")).length, 3);
    assert.deepEqual(await records.listMetrics("g"), []);
    await store.close();
  },
);

backendTest(
  "Records.finishRun() gives up with ConflictError when every commit conflicts",
  async (backend) => {
    const { store, clock } = await setup(backend);
    const records = new Records(store, { clock });
    const run = newRun(clock);
    await records.startRun(run);
    let commits = 0;
    const hostile = new Proxy(store, {
      get(target, prop) {
        if (prop === "atomic") {
          return () => {
            const op = target.atomic();
            op.commit = () => {
              commits++;
              return Promise.resolve({ ok: false, version: null, conflicts: [] });
            };
            return op;
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const stuck = new Records(hostile, { clock, retry: { attempts: 3, maxDelayMs: 0 } });
    await assert.rejects(() => stuck.finishRun(finished(run, "succeeded", 5)), ConflictError);
    assert.equal(commits, 3);
    assert.equal(await records.getMetrics("f"), null);
    assert.equal((await records.getRun(run.id))?.status, "running");
    await store.close();
  },
);

backendTest(
  "Records.getMetrics() keeps per-version and all-version percentiles within the stated error",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    for (let i = 1; i <= 200; i++) {
      const version = i <= 100 ? "v1" : "v2";
      const run = newRun(clock, "f", version);
      await records.startRun(run);
      // v1: 10..1000 ms; v2: 1010..2000 ms
      await records.finishRun(finished(run, "succeeded", i * 10));
      clock.t += 1;
    }
    const within = (actual: number | null, expected: number) =>
      assert.ok(
        actual !== null && Math.abs(actual - expected) / expected <= HISTOGRAM_RELATIVE_ERROR,
        `${actual} vs ${expected}`,
      );
    const v1 = await records.getMetrics("f", "v1");
    within(v1!.p50DurationMs, 500);
    within(v1!.p95DurationMs, 950);
    const v2 = await records.getMetrics("f", "v2");
    within(v2!.p50DurationMs, 1500);
    within(v2!.p95DurationMs, 1950);
    const all = await records.getMetrics("f");
    assert.equal(all!.version, "*");
    assert.equal(all!.count, 200);
    within(all!.p50DurationMs, 1000);
    within(all!.p95DurationMs, 1900);
    assert.equal(all!.lastRunAt, T0 + 199);
    assert.equal(all!.lastStatus, "succeeded");
    assert.equal(await records.getMetrics("nope"), null);
    await store.close();
  },
);

// ---------------------------------------------------------------- events

backendTest(
  "Records.appendEvents() round-trips events in order with one commit per call",
  async (backend) => {
    const { store: inner, clock } = await setup(backend);
    const { store, counts } = counting(inner);
    const records = new Records(store, { clock });
    const run = newRun(clock);
    await records.startRun(run);
    const events: RunEvent[] = [];
    counts.commits = 0;
    for (let batch = 0; batch < 12; batch++) {
      const chunk: RunEvent[] = Array.from({ length: 100 }, (_, i) => ({
        at: T0 + batch * 100 + i,
        type: "node.log",
        node: "a",
        message: `m${batch * 100 + i}`,
        level: "info",
      }));
      await records.appendEvents(run.id, chunk);
      events.push(...chunk);
    }
    await records.appendEvents(run.id, []);
    assert.equal(counts.commits, 12);
    assert.deepEqual(await records.getEvents(run.id), events);

    // A fresh instance (another process, or after a restart) continues the sequence.
    const again = new Records(inner, { clock });
    await again.appendEvents(run.id, [{ at: T0 + 5000, type: "run.end" }]);
    await records.appendEvents(run.id, [{
      at: T0 + 5001,
      type: "node.end",
      node: "z",
      status: "succeeded",
      attempt: 1,
      durationMs: 1,
    }]);
    const all = await records.getEvents(run.id);
    assert.equal(all.length, 1202);
    assert.deepEqual(all.slice(-2).map((e) => e.type), ["run.end", "node.end"]);
    assert.deepEqual(await records.getEvents(newRunId(clock.now())), []);
    await assert.rejects(
      () => records.appendEvents(run.id, [{ type: "run.end" } as RunEvent]),
      TypeError,
    );
    await inner.close();
  },
);

backendTest("Records.appendEvents() called concurrently loses no batch", async (backend) => {
  const { store, clock, records } = await setup(backend);
  const other = new Records(store, { clock });
  const run = newRun(clock);
  await records.startRun(run);
  await Promise.all(
    Array.from({ length: 10 }, (_, b) =>
      (b % 2 ? other : records).appendEvents(
        run.id,
        Array.from({ length: 5 }, (_, i) => ({
          at: b * 5 + i,
          type: "node.log" as const,
          node: "a",
          message: "m",
          level: "info" as const,
        })),
      )),
  );
  const events = await records.getEvents(run.id);
  assert.equal(events.length, 50);
  assert.deepEqual(new Set(events.map((e) => e.at)).size, 50);
  await store.close();
});

// ---------------------------------------------------------------- deletion

backendTest(
  "Records.deleteRun() removes the run, its events and every index entry",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    await records.saveVersion(flow("f"));
    const first = newRun(clock);
    await records.startRun(first);
    await records.finishRun(finished(first, "succeeded", 10));
    const before = await store.count();
    const metricsBefore = await records.getMetrics("f");

    clock.t += 1000;
    const run = newRun(clock);
    await records.startRun(run);
    await records.appendEvents(run.id, [{ at: 1, type: "run.start" }]);
    await records.appendEvents(run.id, [{ at: 2, type: "node.start", node: "a" }]);
    await records.finishRun(finished(run, "failed", 20));
    assert.equal(await store.count(), before + 1 + 3, "the run (events inline) and 3 indexes");
    assert.equal(await store.count(["flowstate", "events"]), 0, "the chunks were folded in");
    assert.deepEqual((await records.getEvents(run.id)).map((e) => e.at), [1, 2]);
    const metricsAfterFinish = await records.getMetrics("f");
    assert.equal(metricsAfterFinish?.count, 2);

    assert.equal(await records.deleteRun(run.id), true);
    assert.equal(await store.count(), before);
    const left = (await allKeys(store)).filter((k) => k.includes(run.id));
    assert.deepEqual(left, []);
    assert.deepEqual(await records.getMetrics("f"), metricsAfterFinish, "metrics are kept");
    assert.notDeepEqual(metricsAfterFinish, metricsBefore);
    assert.equal(await records.getRun(run.id), null);
    assert.deepEqual(await records.getEvents(run.id), []);
    assert.deepEqual((await records.listRuns({ status: "failed" })).runs, []);
    assert.equal(await records.deleteRun(run.id), false);

    // A running run: its running-status index entries go too.
    const running = newRun(clock);
    await records.startRun(running);
    await records.deleteRun(running.id);
    assert.equal(await store.count(), before);

    // Stray events of a run that was never started are removed too.
    const stray = newRunId(clock.now());
    await records.appendEvents(stray, [{ at: 1, type: "run.start" }]);
    assert.equal(await records.deleteRun(stray), false);
    assert.equal(await store.count(), before);
    await store.close();
  },
);

backendTest(
  "Records.deleteRuns() deletes a batch in one commit and says how many existed",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const keep = newRun(clock);
    await records.startRun(keep);
    await records.finishRun(finished(keep, "succeeded", 1));
    const before = await allKeys(store);
    const ids: string[] = [];
    for (const status of ["succeeded", "failed", "cancelled"] as const) {
      clock.t += 1000;
      const run = newRun(clock);
      await records.startRun(run);
      await records.appendEvents(run.id, [{ at: 1, type: "run.start" }]);
      await records.finishRun(finished(run, status, 5));
      ids.push(run.id);
    }
    const running = newRun(clock);
    await records.startRun(running);
    await records.appendEvents(running.id, [{ at: 1, type: "run.start" }]);
    ids.push(running.id);
    const stray = newRunId(clock.now());
    await records.appendEvents(stray, [{ at: 1, type: "run.start" }]);

    const { store: counted, counts } = counting(store);
    const batch = new Records(counted, { clock });
    counts.commits = 0;
    assert.equal(await batch.deleteRuns([...ids, ids[0], stray]), 4, "four runs existed");
    assert.equal(counts.commits, 1, "one commit");
    const isMetrics = (k: readonly string[]) => k[1] === "metrics" || k[1] === "metrics-shards";
    const metrics = (await allKeys(store)).filter(isMetrics);
    assert.deepEqual(
      (await allKeys(store)).filter((k) => !isMetrics(k)),
      before.filter((k) => !isMetrics(k)),
      "only the first run is left (metrics aside)",
    );
    assert.ok(metrics.length > 0);
    assert.equal(await records.deleteRuns([]), 0);
    assert.equal(await records.deleteRuns(ids), 0, "deleting again finds none");
    await assert.rejects(records.deleteRuns(["nope"]), TypeError);
    await store.close();
  },
);

Deno.test("Records.finishRun() from 4 processes finishing 20 runs at once counts each once [sqlite]", async () => {
  const clock = new FakeClock();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-records-mp-" });
  const path = join(dir, "records.db");
  try {
    const store = await openStore({ plugin: "sqlite", path }, { clock, home: dir });
    const records = new Records(store, { clock });
    const finishedRuns: RunRecord[] = [];
    for (let i = 0; i < 20; i++) {
      const run = newRun(clock, "f", i % 2 ? "v1" : "v2");
      await records.startRun(run);
      finishedRuns.push(finished(run, i % 5 === 0 ? "failed" : "succeeded", 10 * (i + 1)));
    }
    // Each child process opens the same file and finishes its 5 runs concurrently.
    const child = `
      import { openStore } from ${JSON.stringify(new URL("../plugin.ts", import.meta.url).href)};
      import { Records } from ${JSON.stringify(new URL("./records.ts", import.meta.url).href)};
      const [path, runs] = [Deno.args[0], JSON.parse(Deno.args[1])];
      const store = await openStore({ plugin: "sqlite", path });
      const records = new Records(store);
      await Promise.all(runs.map((run) => records.finishRun(run)));
      await store.close();
    `;
    const outputs = await Promise.all([0, 1, 2, 3].map((p) =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", child, path, JSON.stringify(finishedRuns.filter((_, i) => i % 4 === p))],
        cwd: new URL("../..", import.meta.url),
        stdout: "piped",
        stderr: "piped",
      }).output()
    ));
    for (const out of outputs) {
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    }
    const all = await records.getMetrics("f");
    assert.equal(all?.count, 20);
    assert.equal(all?.failed, 4);
    assert.equal(all?.succeeded, 16);
    assert.equal(all?.totalDurationMs, 2100);
    assert.equal((await records.getMetrics("f", "v1"))?.count, 10);
    assert.equal((await records.getMetrics("f", "v2"))?.count, 10);
    assert.deepEqual((await records.listRunSummaries({ status: "running" })).runs, []);
    assert.equal(
      (await records.listRunSummaries({ flowId: "f", status: "failed" })).runs.length,
      4,
    );
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Records.abandonRun() ends the run at its last heartbeat, not when it was found", async () => {
  const clock = new FakeClock();
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store, { clock });
  const run = newRun(clock);
  await records.startRun(run);
  const lastBeat = T0 + 5_000;
  assert.equal(await records.heartbeat(run.id, lastBeat), true);
  const foundAt = lastBeat + 15 * 60_000; // a gc a quarter of an hour later
  const marked = await records.abandonRun(run.id, { afterMs: 60_000, now: foundAt });
  assert.equal(marked?.status, "failed");
  assert.deepEqual([marked?.endedAt, marked?.durationMs], [lastBeat, 5_000]);
  const stored = await records.getRun(run.id);
  assert.deepEqual([stored?.endedAt, stored?.durationMs], [lastBeat, 5_000]);
});

Deno.test("Records.abandonRun() ends a run killed before its first heartbeat at its last recorded event, not at its start", async () => {
  await using store = await openStore({ plugin: "memory" });
  let now = Date.UTC(2026, 0, 1);
  const clock = { now: () => now };
  const records = new Records(store, { clock });
  const run = await RunRecorder.start(records, clock, {
    flowId: "f",
    flowVersion: "v",
    inputs: {},
  });
  const startedAt = now;
  await records.appendEvents(run.id, [{ at: startedAt + 3_500, type: "node.start", node: "a" }]);
  await run.close(); // killed 3.5 s in, before its first heartbeat (every 5 s)
  now += 120_000;
  const marked = await records.abandonRun(run.id, { afterMs: 60_000 });
  assert.equal(marked?.status, "failed");
  assert.equal(marked?.durationMs, 3_500);
  assert.equal((await records.getRun(run.id))?.endedAt, startedAt + 3_500);
});

backendTest(
  "Records.getEventsFrom() gives the events after a count, reads only the chunks holding them, and reads a run that finished inline or chunked whole",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const log = (i: number): RunEvent => ({
      at: T0 + i,
      type: "node.log",
      node: `n${i % 7}`,
      level: "info",
      message: `line ${i}`,
    });
    for (const [eventFormat, total] of [[1, 30], [2, 30], [2, 1_200]] as const) {
      const own = new Records(store, { clock, eventFormat });
      const run = newRun(clock);
      await own.startRun(run);
      const all: RunEvent[] = [];
      for (let i = 0; i < total; i += 10) {
        const batch = Array.from({ length: 10 }, (_, j) => log(i + j));
        await own.appendEvents(run.id, batch);
        all.push(...batch);
      }
      assert.deepEqual(await own.getEventsFrom(run.id, 0), { events: all, count: total });
      // From a count: only the chunks from the one holding that event on are read.
      const { store: counted, counts } = counting(store);
      const reader = new Records(counted, { clock });
      assert.deepEqual(await reader.getEventsFrom(run.id, total - 5), {
        events: all.slice(total - 5),
        count: total,
      });
      assert.equal(counts.listed, 1, "one chunk listed");
      assert.deepEqual(await own.getEventsFrom(run.id, 15), {
        events: all.slice(15),
        count: total,
      });
      assert.deepEqual(await own.getEventsFrom(run.id, total), { events: [], count: total });
      assert.deepEqual(await own.getEventsFrom(run.id, total + 3), { events: [], count: total });
      // Finished: inline (at most 1,000 events) or chunked, the same indexes.
      const last: RunEvent = { at: T0 + total, type: "run.end" };
      await own.finishRun(finished(run, "succeeded", 10), [last]);
      assert.deepEqual(await own.getEventsFrom(run.id, total - 2), {
        events: [...all.slice(total - 2), last],
        count: total + 1,
      });
      assert.deepEqual(await own.getEvents(run.id), [...all, last]);
    }
    await assert.rejects(() => records.getEventsFrom(newRunId(T0), -1), RangeError);
    await assert.rejects(() => records.getEventsFrom(newRunId(T0), 1.5), /from must be/);
    assert.deepEqual(await records.getEventsFrom(newRunId(T0), 0), { events: [], count: 0 });
    await store.close();
  },
);

backendTest(
  "Records.getEvents() of a run that finishes while it reads finds its events (the chunks are read before the record)",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const run = newRun(clock);
    await records.startRun(run);
    const events: RunEvent[] = [{ at: T0, type: "run.start" }, {
      at: T0 + 1,
      type: "node.start",
      node: "a",
    }];
    await records.appendEvents(run.id, events);
    // The run finishes (its events move into its record, its chunks go) right after a
    // reader reads its record.
    let finishing: Promise<void> | undefined;
    const racing = new Proxy(store, {
      get(target, prop) {
        if (prop === "get") {
          return async (key: unknown[]) => {
            const value = await target.get(key as string[]);
            if (key.includes("runs") && finishing === undefined) {
              finishing = records.finishRun(finished(run, "succeeded", 5));
              await finishing;
            }
            return value;
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const reader = new Records(racing, { clock });
    assert.deepEqual(await reader.getEvents(run.id), events);
    assert.ok(finishing !== undefined, "the run finished while it was read");
    assert.deepEqual((await records.getEventsFrom(run.id, 1)).events, events.slice(1));
    await store.close();
  },
);
