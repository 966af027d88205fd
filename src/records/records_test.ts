import assert from "node:assert/strict";
import { join } from "node:path";
import { ConflictError } from "../errors.ts";
import type { FlowDefinition } from "../flow/types.ts";
import type { RunEvent, RunRecord, RunStatus } from "./types.ts";
import { openStore } from "../plugin.ts";
import type { Key, ListOptions, Store } from "../store/types.ts";
import { HISTOGRAM_RELATIVE_ERROR } from "./metrics.ts";
import { canonicalJson, hashFlowDefinition } from "./flow_version.ts";
import { Records } from "./records.ts";
import { newRunId, runIdTime } from "./run_id.ts";

const T0 = Date.UTC(2026, 0, 1);

class FakeClock {
  t = T0;
  now(): number {
    return this.t;
  }
}

interface Counts {
  listed: number;
  read: number;
  commits: number;
  ranges: ListOptions[];
}

/**
 * Wrap a store so tests can see how much it reads: entries yielded by
 * `list`, keys read by `get`/`getMany`, and atomic commits.
 */
function counting(store: Store): { store: Store; counts: Counts } {
  const counts: Counts = { listed: 0, read: 0, commits: 0, ranges: [] };
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === "list") {
        return (options: ListOptions) => {
          counts.ranges.push(options);
          const inner = target.list(options);
          return (async function* () {
            for await (const e of inner) {
              counts.listed++;
              yield e;
            }
          })();
        };
      }
      if (prop === "get") {
        return (key: Key) => {
          counts.read++;
          return target.get(key);
        };
      }
      if (prop === "getMany") {
        return (keys: Key[]) => {
          counts.read += keys.length;
          return target.getMany(keys);
        };
      }
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = () => {
            counts.commits++;
            return commit();
          };
          return op;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store: proxy, counts };
}

function flow(id: string, extra: Partial<FlowDefinition> = {}): FlowDefinition {
  return { id, nodes: [{ id: "a", type: "log", with: { message: "hi" } }], ...extra };
}

function newRun(
  clock: FakeClock,
  flowId = "f",
  flowVersion = "v1",
): RunRecord {
  const startedAt = clock.now();
  return {
    id: newRunId(startedAt),
    flowId,
    flowVersion,
    status: "running",
    inputs: { n: 1 },
    outputs: null,
    startedAt,
    endedAt: null,
    durationMs: null,
    nodes: {},
    error: null,
  };
}

function finished(run: RunRecord, status: RunStatus, durationMs: number): RunRecord {
  return {
    ...run,
    status,
    endedAt: run.startedAt + durationMs,
    durationMs,
    outputs: status === "succeeded" ? { ok: true } : null,
    error: status === "failed" ? { node: "a", message: "boom" } : null,
  };
}

type Backend = "memory" | "sqlite";
const BACKENDS: Backend[] = ["memory", "sqlite"];

/** Register one test per backend, named with the backend. */
function backendTest(name: string, fn: (backend: Backend) => Promise<void>): void {
  for (const backend of BACKENDS) Deno.test(`${name} [${backend}]`, () => fn(backend));
}

/** Open a store of this backend; closing it also removes its temporary directory. */
async function openBackend(backend: Backend, clock: FakeClock): Promise<Store> {
  if (backend === "memory") return await openStore({ plugin: "memory" }, { clock });
  const dir = await Deno.makeTempDir({ prefix: "flowstate-records-" });
  const store = await openStore({ plugin: "sqlite", path: join(dir, "records.db") }, {
    clock,
    home: dir,
  });
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "close") {
        return async () => {
          await target.close();
          await Deno.remove(dir, { recursive: true });
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function setup(
  backend: Backend,
): Promise<{ store: Store; clock: FakeClock; records: Records }> {
  const clock = new FakeClock();
  const store = await openBackend(backend, clock);
  return { store, clock, records: new Records(store, { clock }) };
}

async function allKeys(store: Store): Promise<Key[]> {
  const keys: Key[] = [];
  for await (const e of store.list()) keys.push(e.key);
  return keys;
}

// ---------------------------------------------------------------- versions

backendTest(
  "Records.saveVersion() stores content once: same content, same hash, created false",
  async (backend) => {
    const { store, records } = await setup(backend);
    const first = await records.saveVersion(flow("f"), "id: f\n");
    assert.equal(first.created, true);
    assert.equal(first.parent, null);
    assert.match(first.hash, /^[0-9a-f]{64}$/);
    const reordered = { nodes: [{ with: { message: "hi" }, type: "log", id: "a" }], id: "f" };
    const second = await records.saveVersion(reordered as FlowDefinition, "# other source\n");
    assert.deepEqual(second, { hash: first.hash, parent: null, created: false });
    const versions = await records.listVersions("f");
    assert.equal(versions.length, 1);
    assert.equal(versions[0].source, "id: f\n", "the first source is kept");
    assert.equal((await records.listFlows())[0].versions, 1);
    await store.close();
  },
);

Deno.test("hashFlowDefinition() ignores key order and undefined properties, not values", async () => {
  const a = await hashFlowDefinition(flow("f", { description: "x" }));
  const b = await hashFlowDefinition({
    description: "x",
    schedule: undefined,
    nodes: [{ type: "log", id: "a", with: { message: "hi" } }],
    id: "f",
  });
  assert.equal(a, b);
  assert.notEqual(a, await hashFlowDefinition(flow("f", { description: "y" })));
  assert.equal(
    canonicalJson({ b: [2, { d: 1, c: null }], a: "x" }),
    '{"a":"x","b":[2,{"c":null,"d":1}]}',
  );
  assert.throws(() => canonicalJson({ when: new Date(0) }), TypeError);
  assert.throws(() => canonicalJson({ n: Infinity }), TypeError);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => canonicalJson(cyclic), TypeError);
});

backendTest(
  "Records.saveVersion() keeps lineage v1 <- v2 <- v3; old content moves the head back",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const v1 = await records.saveVersion(flow("f", { description: "one" }));
    clock.t += 1000;
    const v2 = await records.saveVersion(flow("f", { description: "two" }));
    clock.t += 1000;
    const v3 = await records.saveVersion(flow("f", { description: "three" }));
    assert.equal(v2.parent, v1.hash);
    assert.equal(v3.parent, v2.hash);
    assert.deepEqual(
      (await records.listVersions("f")).map((v) => [v.hash, v.parent, v.seq, v.createdAt]),
      [[v3.hash, v2.hash, 3, T0 + 2000], [v2.hash, v1.hash, 2, T0 + 1000], [v1.hash, null, 1, T0]],
    );
    assert.equal((await records.getHead("f"))?.hash, v3.hash);

    // Going back to v1's content: no new version, the head moves back to v1.
    const back = await records.saveVersion(flow("f", { description: "one" }));
    assert.deepEqual(back, { hash: v1.hash, parent: null, created: false });
    assert.equal((await records.getHead("f"))?.hash, v1.hash);
    assert.equal((await records.listVersions("f")).length, 3);
    const [summary] = await records.listFlows();
    assert.equal(summary.head, v1.hash);
    assert.equal(summary.versions, 3);
    assert.equal(summary.description, "one");

    // The next new content descends from the head, v1.
    const v4 = await records.saveVersion(flow("f", { description: "four" }));
    assert.equal(v4.created, true);
    assert.equal(v4.parent, v1.hash);
    assert.equal((await records.getVersion("f", v4.hash))?.seq, 4);
    assert.equal(await records.getVersion("f", "0".repeat(64)), null);
    await store.close();
  },
);

backendTest(
  "Records.saveVersion() called concurrently with the same content creates one version",
  async (backend) => {
    const { store, records } = await setup(backend);
    const other = new Records(store); // like a second process
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? other : records).saveVersion(flow("f"))),
    );
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal(new Set(results.map((r) => r.hash)).size, 1);
    assert.equal((await records.listVersions("f")).length, 1);
    assert.equal((await records.listFlows())[0].versions, 1);
    await store.close();
  },
);

backendTest(
  "Records.saveVersion() called concurrently with different content keeps one linear lineage",
  async (backend) => {
    const { store, records } = await setup(backend);
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => records.saveVersion(flow("f", { description: `d${i}` }))),
    );
    const versions = await records.listVersions("f");
    assert.deepEqual(versions.map((v) => v.seq), [8, 7, 6, 5, 4, 3, 2, 1]);
    for (let i = 0; i < versions.length - 1; i++) {
      assert.equal(versions[i].parent, versions[i + 1].hash);
    }
    assert.equal(versions[7].parent, null);
    assert.equal((await records.getHead("f"))?.hash, versions[0].hash);
    await store.close();
  },
);

backendTest("Records.saveVersion() rejects a definition without an id", async (backend) => {
  const { store, records } = await setup(backend);
  await assert.rejects(
    () => records.saveVersion({ nodes: [] } as unknown as FlowDefinition),
    TypeError,
  );
  await assert.rejects(() => records.saveVersion(null as unknown as FlowDefinition), TypeError);
  await store.close();
});

// ---------------------------------------------------------------- run ids

Deno.test("newRunId() sorts in time order and encodes the start time", () => {
  const clock = new FakeClock();
  const ids: string[] = [];
  for (let i = 0; i < 50; i++) {
    ids.push(newRunId(clock.now()));
    if (i % 10 === 9) clock.t += 1;
  }
  assert.deepEqual([...ids].sort(), ids, "same-millisecond ids still increase");
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) assert.match(id, /^[0-9a-z]{20}$/);
  assert.equal(runIdTime(ids[0]), T0);
  assert.equal(runIdTime(ids[49]), T0 + 4);
  clock.t = T0 + 86_400_000;
  assert.ok(newRunId(clock.now()) > ids[49]);
  assert.throws(() => runIdTime("nope"), TypeError);
  assert.throws(() => newRunId(-1), RangeError);
});

// ---------------------------------------------------------------- runs

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

/** 60 runs: flows a/b/c, statuses cycling, one run per second from T0. */
async function manyRuns(records: Records, clock: FakeClock): Promise<RunRecord[]> {
  const statuses: RunStatus[] = ["succeeded", "failed", "succeeded", "cancelled", "running"];
  const runs: RunRecord[] = [];
  for (let i = 0; i < 60; i++) {
    const run = newRun(clock, ["a", "b", "c"][i % 3], "v1");
    await records.startRun(run);
    const status = statuses[i % 5];
    const final = status === "running" ? run : finished(run, status, 100 + i);
    if (status !== "running") await records.finishRun(final);
    runs.push(final);
    clock.t += 1000;
  }
  return runs;
}

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
    const metrics = (await allKeys(store)).filter((k) => k[1] === "metrics");
    assert.deepEqual(
      (await allKeys(store)).filter((k) => k[1] !== "metrics"),
      before.filter((k) => k[1] !== "metrics"),
      "only the first run is left (metrics aside)",
    );
    assert.ok(metrics.length > 0);
    assert.equal(await records.deleteRuns([]), 0);
    assert.equal(await records.deleteRuns(ids), 0, "deleting again finds none");
    await assert.rejects(records.deleteRuns(["nope"]), TypeError);
    await store.close();
  },
);

// ---------------------------------------------------------------- flows, prefix

backendTest(
  "Records.listFlows() reports head, version count, newest run and description",
  async (backend) => {
    const { store, clock, records } = await setup(backend);
    const a1 = await records.saveVersion(flow("a", { description: "first a" }));
    const a2 = await records.saveVersion(flow("a", { description: "second a" }));
    const b1 = await records.saveVersion(flow("b"));
    const run = newRun(clock, "a", a1.hash);
    await records.startRun(run);
    await records.finishRun(finished(run, "succeeded", 5));
    clock.t += 10;
    const later = newRun(clock, "a", a2.hash);
    await records.startRun(later);
    assert.deepEqual(await records.listFlows(), [
      {
        id: "a",
        head: a2.hash,
        versions: 2,
        lastRunAt: T0 + 10,
        lastStatus: "running",
        description: "second a",
      },
      { id: "b", head: b1.hash, versions: 1, lastRunAt: null, lastStatus: null, description: null },
    ]);
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
