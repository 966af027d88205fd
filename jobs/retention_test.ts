import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import type { RunStatus } from "../src/records/types.ts";
import { resolveJobOptions, runJob } from "../src/jobs/run.ts";
import { Records } from "../src/records/records.ts";
import retention, { defaults, type RetentionResult } from "./retention.ts";
import {
  addRun,
  assertRemaining,
  BACKENDS,
  DAY,
  dump,
  jobContext,
  model,
  retain,
  type SeededRun,
  withEnv,
} from "./testdata/retention.ts";

// The retention job: which runs it deletes and which it keeps, its options
// and its recorded run. How it walks the store in windows is in
// retention_windows_test.ts; random runs against the model in
// retention_model_test.ts.

for (const backend of BACKENDS) {
  Deno.test(`retention deletes runs past their age, keeps failed runs until failedMaxAge and never deletes running runs [${backend}]`, async () => {
    await withEnv(backend, async (env) => {
      const old = await addRun(env, "report", "succeeded", 40, 3); // 3 event chunks
      const oldCancelled = await addRun(env, "report", "cancelled", 35, 0); // no events
      const oldFailed = await addRun(env, "report", "failed", 60);
      const oldTimedOut = await addRun(env, "report", "timed-out", 45, 2);
      const ancientFailed = await addRun(env, "report", "failed", 100);
      const ancientRunning = await addRun(env, "report", "running", 400, 2);
      const recent = await addRun(env, "report", "succeeded", 5);
      const otherOld = await addRun(env, "sync", "succeeded", 31);
      const otherRecent = await addRun(env, "sync", "failed", 1);
      const before = await dump(env.store);

      const result = await retain(env.rt, { maxRuns: null });

      const gone = [old, oldCancelled, ancientFailed, otherOld].map((r) => r.id);
      await assertRemaining(env.store, before, gone);
      assert.equal(result.deleted, 4);
      assert.equal(result.deletedByAge, 4);
      assert.equal(result.deletedByCount, 0);
      assert.equal(result.keptFailed, 2); // oldFailed (60 d) and oldTimedOut (45 d)
      assert.equal(result.keptRunning, 1);
      // Read: only the status index entries older than 30 days (the cancelled, failed,
      // timed-out and running runs); the succeeded runs are deleted without being read.
      assert.equal(result.scanned, 5);
      assert.equal(result.batches, 1);
      assert.equal(result.skipped, 0);
      assert.equal(result.cancelled, false);
      for (const kept of [oldFailed, oldTimedOut, ancientRunning, recent, otherRecent]) {
        assert.notEqual(await env.records.getRun(kept.id), null);
        assert.equal((await env.records.getEvents(kept.id)).length, kept.chunks * 2);
      }
      for (const id of gone) {
        assert.equal(await env.records.getRun(id), null);
        assert.deepEqual(await env.records.getEvents(id), []);
      }
      // Listing by status no longer returns deleted runs.
      const succeeded = await env.records.listRunSummaries({ status: "succeeded" });
      assert.deepEqual(succeeded.runs.map((r) => r.id), [recent.id]);
    });
  });

  Deno.test(`retention keeps the newest maxRuns per flow, job runs counting as their own flow [${backend}]`, async () => {
    await withEnv(backend, async (env) => {
      const runs: SeededRun[] = [];
      const statuses: RunStatus[] = ["succeeded", "failed", "cancelled", "timed-out"];
      for (let i = 0; i < 12; i++) {
        runs.push(await addRun(env, "etl", statuses[i % 4], 12 - i, i % 3));
        runs.push(await addRun(env, "job:gc", "succeeded", 12 - i + 0.5));
      }
      runs.push(await addRun(env, "etl", "running", 20)); // beyond the count, but running
      runs.push(await addRun(env, "solo", "succeeded", 2));
      const before = await dump(env.store);

      const result = await retain(env.rt, { maxRuns: 5, maxAge: "10d", failedMaxAge: null });

      const expected = model(runs, { maxAge: 10 * DAY, failedMaxAge: null, maxRuns: 5 });
      await assertRemaining(env.store, before, [...expected.byAge, ...expected.byCount]);
      assert.equal(result.deletedByAge, expected.byAge.size);
      assert.equal(result.deletedByCount, expected.byCount.size);
      assert.equal(result.deleted, expected.byAge.size + expected.byCount.size);
      // Each flow keeps its own newest five (the running etl run is kept on top).
      assert.equal((await env.records.listRunSummaries({ flowId: "etl" })).runs.length, 6);
      assert.equal((await env.records.listRunSummaries({ flowId: "job:gc" })).runs.length, 5);
      assert.equal((await env.records.listRunSummaries({ flowId: "solo" })).runs.length, 1);
      assert.equal(result.keptRunning, 1);
    });
  });
}

Deno.test("retention with flows only prunes those flows", async () => {
  await withEnv("memory", async (env) => {
    const a = await addRun(env, "a", "succeeded", 50);
    await addRun(env, "b", "succeeded", 50);
    const c = await addRun(env, "c", "succeeded", 50);
    await addRun(env, "d", "succeeded", 50);
    const before = await dump(env.store);
    const result = await retain(env.rt, { flows: ["c", "a", "a", "missing"] });
    await assertRemaining(env.store, before, [a.id, c.id]);
    assert.equal(result.deleted, 2);
  });
});

Deno.test("retention dry run writes nothing and reports what a real run deletes", async () => {
  await withEnv("sqlite", async (env) => {
    for (let i = 0; i < 30; i++) {
      await addRun(env, `f${i % 3}`, i % 5 === 0 ? "failed" : "succeeded", i * 3, i % 4);
    }
    await addRun(env, "f0", "running", 90);
    const before = await dump(env.store);
    const dry = await retain(env.rt, { maxRuns: 6 }, { dryRun: true });
    assert.deepEqual(await dump(env.store), before, "a dry run changes nothing");
    assert.equal(dry.dryRun, true);
    assert.equal(dry.batches, 0);
    assert.ok(dry.deleted > 0);
    const real = await retain(env.rt, { maxRuns: 6 });
    // (A real run reads fewer index entries: what it deleted by age is gone when it counts.)
    const { durationMs: _a, dryRun: _b, batches: _c, scanned: _g, ...dryCounts } = dry;
    const { durationMs: _d, dryRun: _e, batches: _f, scanned: _h, ...realCounts } = real;
    assert.deepEqual(realCounts, dryCounts);
  });
});

Deno.test("retention leaves metrics unchanged", async () => {
  await withEnv("sqlite", async (env) => {
    for (let i = 0; i < 20; i++) {
      await addRun(env, i % 2 ? "a" : "b", i % 3 ? "succeeded" : "failed", i * 10);
    }
    const before = await env.records.listMetrics();
    const metricsA = await env.records.getMetrics("a");
    const metricsAv1 = await env.records.getMetrics("a", "v1");
    assert.equal(metricsA?.count, 10);
    const result = await retain(env.rt, { maxRuns: 2, failedMaxAge: "30d" });
    assert.ok(result.deleted >= 10);
    assert.equal((await env.records.listRunSummaries({ flowId: "a" })).runs.length, 2);
    assert.deepEqual(await env.records.listMetrics(), before);
    assert.deepEqual(await env.records.getMetrics("a"), metricsA);
    assert.deepEqual(await env.records.getMetrics("a", "v1"), metricsAv1);
  });
});

Deno.test("runJob(retention) uses the defaults, records the run as job:retention and never deletes itself", async () => {
  await withEnv("sqlite", async (env) => {
    const old = await addRun(env, "a", "succeeded", 31);
    const failed = await addRun(env, "a", "failed", 31);
    const run = await runJob(env.rt, "retention", { progress: "quiet" });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.equal(run.flowId, "job:retention");
    assert.deepEqual(run.inputs, { ...defaults });
    assert.equal(run.outputs?.deleted, 1);
    assert.equal(run.outputs?.keptRunning, 1, "its own run is running while it works");
    assert.equal(await env.records.getRun(old.id), null);
    assert.notEqual(await env.records.getRun(failed.id), null);
    assert.notEqual(await env.records.getRun(run.id), null);
    assert.equal(retention.defaultSchedule, "0 3 * * *");
  });
});

Deno.test("retention refuses invalid options with a ConfigError naming the option", async () => {
  await assert.rejects(
    resolveJobOptions(retention, {}, { maxAge: "30 days" }),
    (err: Error) => err instanceof ConfigError && /maxAge/.test(err.message),
  );
  await assert.rejects(
    resolveJobOptions(retention, {}, { maxRuns: -1 }),
    (err: Error) => err instanceof ConfigError && /maxRuns/.test(err.message),
  );
  await assert.rejects(
    resolveJobOptions(retention, {}, { keep: 3 }),
    (err: Error) => err instanceof ConfigError && /unknown option "keep"/.test(err.message),
  );
  const resolved = await resolveJobOptions(retention, {}, { maxAge: null, maxRuns: 10 });
  assert.deepEqual(resolved, { ...defaults, maxAge: null, maxRuns: 10 });
});

Deno.test("retention finds the count limit across several index pages (maxRuns above a page)", async () => {
  await withEnv("memory", async (env) => {
    const runs: SeededRun[] = [];
    for (let i = 0; i < 1234; i++) runs.push(await addRun(env, "busy", "succeeded", 20 - i / 100));
    const before = await dump(env.store);
    const result = await retain(env.rt, { maxRuns: 1100 });
    const expected = model(runs, { maxAge: 30 * DAY, failedMaxAge: 90 * DAY, maxRuns: 1100 });
    assert.equal(expected.byCount.size, 134);
    assert.equal(result.deletedByCount, 134);
    await assertRemaining(env.store, before, expected.byCount);
  });
});

Deno.test("retention prunes the records under their own prefix and nothing under another", async () => {
  await withEnv("sqlite", async (env) => {
    // The same store holds the default records and a second set under another prefix.
    const tenant = new Records(env.store, { prefix: ["tenant", "a"], clock: env.clock });
    const old = [];
    for (let i = 0; i < 30; i++) {
      old.push(await addRun({ ...env, records: tenant }, `f${i % 3}`, "succeeded", 40 + i));
    }
    const young = await addRun({ ...env, records: tenant }, "f0", "succeeded", 1);
    const failed = await addRun({ ...env, records: tenant }, "f1", "failed", 40);
    for (let i = 0; i < 10; i++) await addRun(env, "f0", "succeeded", 40 + i);
    const outside = await dump(env.store).then((all) => all.filter((e) => e.key[0] !== "tenant"));

    const ctx = jobContext(env.rt);
    const resolved = await resolveJobOptions(retention, {}, {});
    const result = await retention.run(
      { ...ctx, records: () => Promise.resolve(tenant) },
      resolved,
    ) as RetentionResult;

    assert.equal(result.deleted, 30);
    assert.equal(result.keptFailed, 1);
    for (const run of old) assert.equal(await tenant.getRun(run.id), null);
    assert.equal((await tenant.getRun(young.id))?.status, "succeeded");
    assert.equal((await tenant.getRun(failed.id))?.status, "failed");
    assert.equal((await tenant.getEvents(young.id)).length, 2, "a kept run keeps its events");
    const after = await dump(env.store).then((all) => all.filter((e) => e.key[0] !== "tenant"));
    assert.deepEqual(after, outside, "the default records are untouched");
    assert.equal(await env.store.count(["flowstate", "runs"]), 10);
  });
});
