// Tests of `Records`: pages of runs by flow, status, time range and cursor, and what each reads.
import assert from "node:assert/strict";
import { backendTest, counting, finished, manyRuns, newRun, setup, T0 } from "./_test_utils.ts";
import { Records } from "./records.ts";
import type { RunStatus } from "./types.ts";

backendTest("Records.listRuns() returns newest first and pages with a cursor", async (backend) => {
  const { store, clock, records } = await setup(backend);
  const ids: string[] = [];
  for (let i = 0; i < 25; i++) {
    const run = newRun(clock);
    await records.startRun(run);
    ids.push(run.id);
    clock.t += 1000;
  }
  const newestFirst = [...ids].reverse();
  const page1 = await records.listRuns({ limit: 10 });
  assert.deepEqual(page1.runs.map((r) => r.id), newestFirst.slice(0, 10));
  assert.equal(page1.runs[0].inputs.n, 1, "full records");
  const page2 = await records.listRuns({ limit: 10, cursor: page1.cursor });
  assert.deepEqual(page2.runs.map((r) => r.id), newestFirst.slice(10, 20));
  const page3 = await records.listRuns({ limit: 10, cursor: page2.cursor });
  assert.deepEqual(page3.runs.map((r) => r.id), newestFirst.slice(20));
  assert.equal(page3.cursor, undefined);
  const byFlow = await records.listRuns({ flowId: "f", limit: 10, cursor: page1.cursor });
  assert.deepEqual(byFlow.runs.map((r) => r.id), newestFirst.slice(10, 20));
  assert.deepEqual((await records.listRuns({ limit: 25 })).cursor, undefined);
  await assert.rejects(() => records.listRuns({ limit: 0 }), RangeError);
  await assert.rejects(() => records.listRuns({ cursor: "bad" }), TypeError);
  await assert.rejects(
    () => records.listRuns({ status: "done" as RunStatus }),
    TypeError,
  );
  await store.close();
});

backendTest(
  "Records.listRuns() by status reads only that status's index range",
  async (backend) => {
    const { store: inner, clock } = await setup(backend);
    const { store, counts } = counting(inner);
    const records = new Records(store, { clock });
    const runs = await manyRuns(records, clock);
    const failed = runs.filter((r) => r.status === "failed").reverse();
    counts.listed = 0;
    counts.read = 0;
    const page = await records.listRuns({ status: "failed" });
    assert.deepEqual(page.runs.map((r) => r.id), failed.map((r) => r.id));
    assert.ok(page.runs.every((r) => r.status === "failed" && r.error?.message === "boom"));
    assert.equal(counts.listed, failed.length, "only the failed index entries were listed");
    assert.equal(counts.read, failed.length, "and only those runs were read");

    // Succeeded runs have no status index: the flow's index is filtered.
    counts.listed = 0;
    const summaries = await records.listRunSummaries({ flowId: "b", status: "succeeded" });
    const expected = runs.filter((r) => r.flowId === "b" && r.status === "succeeded").reverse();
    assert.deepEqual(summaries.runs.map((r) => r.id), expected.map((r) => r.id));
    assert.equal(counts.listed, runs.filter((r) => r.flowId === "b").length);

    // ...or the list of all runs, read until the page is full.
    counts.listed = 0;
    const succeeded = runs.filter((r) => r.status === "succeeded").reverse();
    const first = await records.listRunSummaries({ status: "succeeded", limit: 3 });
    assert.deepEqual(first.runs.map((r) => r.id), succeeded.slice(0, 3).map((r) => r.id));
    const newest = runs.slice().reverse();
    const read = newest.findIndex((r) => r.id === succeeded[3].id) + 1;
    assert.equal(counts.listed, read, "read up to the lookahead run, no further");
    const next = await records.listRunSummaries({
      status: "succeeded",
      limit: 100,
      cursor: first.cursor,
    });
    assert.deepEqual(next.runs.map((r) => r.id), succeeded.slice(3).map((r) => r.id));
    assert.equal(next.cursor, undefined);

    counts.listed = 0;
    const running = await records.listRunSummaries({ status: "running", limit: 5 });
    assert.equal(running.runs.length, 5);
    assert.equal(counts.listed, 6, "one lookahead entry to know there is a next page");
    assert.ok(running.cursor);
    await inner.close();
  },
);

backendTest(
  "Records.listRuns() by time range reads only runs started in the range",
  async (backend) => {
    const { store: inner, clock } = await setup(backend);
    const { store, counts } = counting(inner);
    const records = new Records(store, { clock });
    const runs = await manyRuns(records, clock);
    const since = T0 + 10_000;
    const until = T0 + 20_000;
    const expected = runs.filter((r) => r.startedAt >= since && r.startedAt < until).reverse();
    assert.equal(expected.length, 10);
    counts.listed = 0;
    counts.read = 0;
    const page = await records.listRuns({ since, until });
    assert.deepEqual(page.runs.map((r) => r.id), expected.map((r) => r.id));
    assert.equal(counts.listed, 10);
    assert.equal(counts.read, 0, "the unfiltered listing reads run records directly");

    counts.listed = 0;
    const forA = await records.listRunSummaries({ flowId: "a", since, until });
    const expectedA = expected.filter((r) => r.flowId === "a");
    assert.deepEqual(forA.runs.map((r) => r.id), expectedA.map((r) => r.id));
    assert.equal(counts.listed, expectedA.length);

    counts.listed = 0;
    const sinceOnly = await records.listRunSummaries({ since: T0 + 55_000 });
    assert.equal(sinceOnly.runs.length, 5);
    assert.equal(counts.listed, 5);
    assert.deepEqual((await records.listRuns({ until: T0 })).runs, []);
    assert.deepEqual((await records.listRuns({ since: T0 + 60_000 })).runs, []);
    await inner.close();
  },
);

backendTest(
  "Records.listRunSummaries() of succeeded runs reads a bounded amount per page",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    // 2,500 failed runs, and one succeeded run older than all of them.
    const first = newRun(clock);
    await records.startRun(first);
    await records.finishRun(finished(first, "succeeded", 1));
    const op = store.atomic();
    for (let i = 0; i < 2500; i++) {
      clock.t += 10;
      const run = finished(newRun(clock), "failed", 1);
      op.set(["flowstate", "runs", run.id], run);
    }
    await op.commit();
    const { store: counted, counts } = counting(store);
    const reader = new Records(counted, { clock });
    const page = await reader.listRunSummaries({ status: "succeeded", limit: 10 });
    assert.deepEqual(page.runs, [], "the first 2,000 runs read are all failed");
    assert.ok(page.cursor, "a cursor to go on");
    assert.equal(counts.listed, 2000);
    const next = await reader.listRunSummaries({
      status: "succeeded",
      limit: 10,
      cursor: page.cursor,
    });
    assert.deepEqual(next.runs.map((r) => r.id), [first.id]);
    assert.equal(next.cursor, undefined);
    await store.close();
  },
);

backendTest(
  "Records listings skip and name malformed run entries, and page on past them",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const run = finished(newRun(clock), "succeeded", 5);
      await records.startRun({ ...run, status: "running", endedAt: null, durationMs: null });
      await records.finishRun(run);
      ids.push(run.id);
      clock.t += 1000;
    }
    // Something else wrote over one record and one index entry (a damaged store, a stray write).
    await store.set(["flowstate", "runs", ids[2]], { bogus: true });
    await store.set(["flowstate", "runs-by-flow", "f", ids[4]], "not a summary");
    const newestFirst = [...ids].reverse();

    const all = await records.listRunSummaries({ limit: 100 });
    assert.deepEqual(all.runs.map((r) => r.id), newestFirst.filter((id) => id !== ids[2]));
    assert.deepEqual(all.malformed, [ids[2]]);
    const full = await records.listRuns({ limit: 100 });
    assert.deepEqual(full.malformed, [ids[2]]);

    const byFlow = await records.listRunSummaries({ flowId: "f", limit: 100 });
    assert.deepEqual(byFlow.malformed, [ids[4]]);
    assert.equal(byFlow.runs.length, 5);
    const byFlowFull = await records.listRuns({ flowId: "f", limit: 100 });
    assert.deepEqual(byFlowFull.malformed, [ids[2]], "the index entry is fine, the record is not");

    // Pages of 2 step over the damaged entries with their cursors.
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await records.listRunSummaries({ limit: 2, cursor });
      seen.push(...page.runs.map((r) => r.id), ...(page.malformed ?? []));
      cursor = page.cursor;
    } while (cursor !== undefined);
    assert.deepEqual(seen.sort(), [...ids].sort());
  },
);
