import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../src/errors.ts";
import type { RunStatus } from "../src/flow/types.ts";
import type { JobContext } from "../src/jobs/job.ts";
import { createProgress, type Progress } from "../src/jobs/progress.ts";
import { resolveJobOptions, runJob } from "../src/jobs/run.ts";
import type { Records } from "../src/records/records.ts";
import { openRuntime, type Runtime } from "../src/runtime.ts";
import type { Entry, Key, Store } from "../src/store/types.ts";
import { type FakeClock, fakeClock } from "../src/testing/clock.ts";
import retention, { defaults, type RetentionOptions, type RetentionResult } from "./retention.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);
const BACKENDS = ["memory", "sqlite"] as const;
type Backend = typeof BACKENDS[number];

interface Env {
  rt: Runtime;
  clock: FakeClock;
  records: Records;
  store: Store;
}

async function withEnv(backend: Backend, fn: (env: Env) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-retention-" });
  const clock = fakeClock(NOW);
  const spec = backend === "memory"
    ? { plugin: "memory" }
    : { plugin: "sqlite", path: join(dir, "state.db"), durability: "relaxed" };
  const rt = await openRuntime({
    config: { stores: { default: spec } },
    home: dir,
    cwd: dir,
    clock,
  });
  try {
    await fn({ rt, clock, records: await rt.records(), store: await rt.store() });
  } finally {
    await rt.close();
    await Deno.remove(dir, { recursive: true });
  }
}

interface SeededRun {
  id: string;
  flowId: string;
  status: RunStatus;
  startedAt: number;
  chunks: number;
}

/** Record a run through the Records API, `ageDays` before NOW, with `chunks` appendEvents calls. */
async function addRun(
  env: Env,
  flowId: string,
  status: RunStatus,
  ageDays: number,
  chunks = 1,
): Promise<SeededRun> {
  const startedAt = NOW - ageDays * DAY;
  env.clock.set(startedAt);
  const id = env.records.newRunId();
  const base = {
    id,
    flowId,
    flowVersion: "v1",
    inputs: { n: 1 },
    outputs: null,
    startedAt,
    nodes: {},
    error: null,
  };
  await env.records.startRun({ ...base, status: "running", endedAt: null, durationMs: null });
  for (let c = 0; c < chunks; c++) {
    await env.records.appendEvents(id, [
      { at: startedAt, type: "node.log", node: "a", message: `chunk ${c}` },
      { at: startedAt + 1, type: "node.log", node: "a", message: "second" },
    ]);
  }
  if (status !== "running") {
    await env.records.finishRun({
      ...base,
      status,
      endedAt: startedAt + 10,
      durationMs: 10,
      error: status === "failed" || status === "timed-out" ? { message: "boom" } : null,
    });
  }
  env.clock.set(NOW);
  return { id, flowId, status, startedAt, chunks };
}

function jobContext(
  rt: Runtime,
  options: {
    dryRun?: boolean;
    signal?: AbortSignal;
    progress?: Progress;
    store?: (name?: string) => Promise<Store>;
    logs?: string[];
  } = {},
): JobContext {
  return {
    jobName: "retention",
    runId: "test",
    runtime: rt,
    store: options.store ?? ((name) => rt.store(name)),
    records: () => rt.records(),
    home: rt.home,
    log: (message) => options.logs?.push(message),
    progress: options.progress ?? createProgress({ mode: "quiet" }),
    signal: options.signal ?? new AbortController().signal,
    clock: rt.clock,
    dryRun: options.dryRun ?? false,
  };
}

async function retain(
  rt: Runtime,
  options: Partial<RetentionOptions> = {},
  context: Parameters<typeof jobContext>[1] = {},
): Promise<RetentionResult> {
  const resolved = await resolveJobOptions(retention, {}, options as Record<string, unknown>);
  return await retention.run(jobContext(rt, context), resolved) as RetentionResult;
}

async function dump(store: Store): Promise<Entry[]> {
  return await Array.fromAsync(store.list());
}

/** Does `key` belong to one of the runs in `ids` (record, index entries or events)? */
function belongsTo(key: Key, ids: ReadonlySet<string>): boolean {
  if (key[0] !== "flowstate") return false;
  switch (key[1]) {
    case "runs":
    case "events":
      return ids.has(key[2]);
    case "runs-by-flow":
    case "runs-by-status":
      return ids.has(key[3]);
    case "runs-by-flow-status":
      return ids.has(key[4]);
    default:
      return false;
  }
}

/** The store after deleting `deleted` runs must hold exactly the other keys, unchanged. */
async function assertRemaining(store: Store, before: Entry[], deleted: Iterable<string>) {
  const ids = new Set(deleted);
  const expected = before.filter((e) => !belongsTo(e.key, ids));
  assert.deepEqual(await dump(store), expected);
}

/** The spec of which runs go, written independently of the job. */
function model(
  runs: SeededRun[],
  options: { maxAge: number | null; failedMaxAge: number | null; maxRuns: number | null },
): { byAge: Set<string>; byCount: Set<string> } {
  const byAge = new Set<string>();
  const byCount = new Set<string>();
  const flows = Map.groupBy(runs, (r) => r.flowId);
  for (const list of flows.values()) {
    list.sort((a, b) => (a.id < b.id ? 1 : -1)); // newest first
    list.forEach((run, rank) => {
      if (run.status === "running") return;
      const failed = run.status === "failed" || run.status === "timed-out";
      const limit = failed ? options.failedMaxAge : options.maxAge;
      if (limit !== null && NOW - run.startedAt > limit) byAge.add(run.id);
      else if (options.maxRuns !== null && rank >= options.maxRuns) byCount.add(run.id);
    });
  }
  return { byAge, byCount };
}

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
      // Read: every finished run older than 30 days (maxRuns is off), nothing newer.
      assert.equal(result.scanned, 6);
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
    const { durationMs: _a, dryRun: _b, batches: _c, ...dryCounts } = dry;
    const { durationMs: _d, dryRun: _e, batches: _f, ...realCounts } = real;
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

/** Wrap a store to see its commits (mutation counts) and listings. */
function observed(
  store: Store,
  onCommit?: (n: number) => void,
  beforeCommit?: () => Promise<void>,
) {
  const seen = { commits: [] as number[], lists: [] as { limit?: number; prefix?: Key }[] };
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          let n = 0;
          const wrapped = {
            check: (key: Key, version: string | null) => (op.check(key, version), wrapped),
            set: (key: Key, value: unknown, o?: { expireIn?: number }) => (
              n++, op.set(key, value, o), wrapped
            ),
            delete: (key: Key) => (n++, op.delete(key), wrapped),
            commit: async () => {
              await beforeCommit?.();
              const result = await op.commit();
              if (result.ok) {
                seen.commits.push(n);
                onCommit?.(seen.commits.length);
              }
              return result;
            },
          };
          return wrapped;
        };
      }
      if (prop === "list") {
        return (options: { limit?: number; prefix?: Key } = {}) => {
          seen.lists.push({ limit: options.limit, prefix: options.prefix });
          return target.list(options);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store: proxy, seen };
}

Deno.test("retention deletes in atomic batches of batchSize runs and reads the index in bounded pages", async () => {
  await withEnv("memory", async (env) => {
    for (let i = 0; i < 1200; i++) await addRun(env, `f${i % 2}`, "succeeded", 40);
    for (let i = 0; i < 30; i++) await addRun(env, "f0", "succeeded", 1);
    const { store, seen } = observed(env.store);
    const result = await retain(env.rt, { batchSize: 500 }, {
      store: () => Promise.resolve(store),
    });
    assert.equal(result.deleted, 1200);
    assert.equal(result.batches, 3);
    // Each deleted run is 4 keys + chunk 0: 500 runs per commit at most.
    assert.deepEqual(seen.commits, [2500, 2500, 1000]);
    for (const list of seen.lists) {
      assert.ok(
        list.limit !== undefined && list.limit <= 500,
        `unbounded listing ${JSON.stringify(list)}`,
      );
    }
    assert.equal(await env.store.count(["flowstate", "runs"]), 30);
    assert.equal(await env.store.count(["flowstate", "events"]), 30);
  });
});

Deno.test("retention stops between batches when cancelled and leaves every run whole", async () => {
  await withEnv("memory", async (env) => {
    for (let i = 0; i < 50; i++) await addRun(env, "f", "succeeded", 40, i % 3);
    const controller = new AbortController();
    const { store } = observed(env.store, (n) => {
      if (n === 2) controller.abort();
    });
    const result = await retain(env.rt, { batchSize: 10 }, {
      store: () => Promise.resolve(store),
      signal: controller.signal,
    });
    assert.equal(result.cancelled, true);
    assert.equal(result.batches, 2);
    assert.equal(result.deleted, 20);
    // Every remaining run is whole: record, three index entries, all its events.
    const runs = await Array.fromAsync(env.store.list({ prefix: ["flowstate", "runs"] }));
    assert.equal(runs.length, 30);
    const ids = new Set(runs.map((e) => e.key[2]));
    for (const index of ["runs-by-flow", "runs-by-status", "runs-by-flow-status"]) {
      const entries = await Array.fromAsync(env.store.list({ prefix: ["flowstate", index] }));
      assert.deepEqual(new Set(entries.map((e) => e.key.at(-1))), ids, index);
    }
    for await (const e of env.store.list({ prefix: ["flowstate", "events"] })) {
      assert.ok(ids.has(e.key[2]), `events of a deleted run remain: ${e.key}`);
    }
  });
});

Deno.test("retention reports progress as runs are scanned", async () => {
  await withEnv("sqlite", async (env) => {
    for (let i = 0; i < 12; i++) await addRun(env, `f${i % 3}`, "succeeded", i * 5);
    const updates: number[] = [];
    const labels: (string | number | undefined)[] = [];
    const inner = createProgress({ mode: "quiet" });
    const progress: Progress = {
      ...inner,
      get state() {
        return inner.state;
      },
      start(label, total) {
        labels.push(label, total);
        inner.start(label, total);
      },
      update(done) {
        updates.push(done);
        inner.update(done);
      },
    };
    const result = await retain(env.rt, {}, { progress });
    assert.deepEqual(labels, ["retention: runs scanned", undefined]);
    // The newest maxRuns + 1 of each flow (all 4), then the 5 runs older than 30 days.
    assert.equal(result.scanned, 12 + 5);
    assert.deepEqual(updates.slice(0, 4), [4, 8, 12, 17]);
    assert.equal(updates.at(-1), 17);
    assert.equal(result.deleted, 5);
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

Deno.test("retention skips a run whose events keep changing while it deletes, and deletes the rest", async () => {
  await withEnv("sqlite", async (env) => {
    const runs: SeededRun[] = [];
    for (let i = 0; i < 5; i++) runs.push(await addRun(env, "f", "succeeded", 40));
    const victim = runs[2];
    let next = 1;
    // Another process appends a chunk to the victim before every commit.
    const { store } = observed(env.store, undefined, async () => {
      const key = ["flowstate", "events", victim.id, String(next++).padStart(8, "0")];
      await env.store.set(key, { first: next * 2, events: [{ at: NOW, type: "node.log" }] });
    });
    const logs: string[] = [];
    const result = await retain(env.rt, {}, { store: () => Promise.resolve(store), logs });
    assert.equal(result.deleted, 4);
    assert.equal(result.skipped, 1);
    assert.match(logs.join("\n"), /1 runs changed while being deleted/);
    assert.notEqual(await env.records.getRun(victim.id), null);
    // Two conflicting commits, then the one that deleted the others: three chunks appended.
    assert.equal((await env.records.getEvents(victim.id)).length, 2 + 3);
    assert.equal(await env.store.count(["flowstate", "runs"]), 1);
    assert.equal(await env.store.count(["flowstate", "events"]), 4);
  });
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
