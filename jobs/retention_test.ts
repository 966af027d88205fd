import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../src/errors.ts";
import type { RunStatus } from "../src/records/types.ts";
import type { JobContext } from "../src/jobs/job.ts";
import { createProgress, type Progress } from "../src/jobs/progress.ts";
import { resolveJobOptions, runJob } from "../src/jobs/run.ts";
import { Records } from "../src/records/records.ts";
import { openRuntime, type Runtime } from "../src/runtime.ts";
import type { Entry, Key, KeyBounds, Store } from "../src/store/types.ts";
import { type FakeClock, fakeClock } from "../src/testing/clock.ts";
import retention, { defaults, type RetentionOptions, type RetentionResult } from "./retention.ts";
import { newRunId } from "../src/records/run_id.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);
const BACKENDS = ["memory", "sqlite"] as const;
type Backend = typeof BACKENDS[number] | "postgres" | "jsonfile" | "mapfile";
/** A third-party style plugin without native range deletes: the core's fallback. */
const MAPFILE = new URL("../examples/plugins/mapfile.ts", import.meta.url).href;
const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") || undefined;
const PG_SCHEMA = `flowstate_retention_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
let pgTables = 0;

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
    : backend === "postgres"
    ? { plugin: "postgres", url: PG_URL!, schema: PG_SCHEMA, table: `t${++pgTables}` }
    : backend === "jsonfile"
    ? { plugin: "jsonfile", path: join(dir, "state.json"), durability: "relaxed" }
    : backend === "mapfile"
    ? { plugin: MAPFILE, path: join(dir, "state.map.json") }
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
  const id = newRunId(startedAt);
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
      { at: startedAt, type: "node.log", node: "a", message: `chunk ${c}`, level: "info" },
      { at: startedAt + 1, type: "node.log", node: "a", message: "second", level: "info" },
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
    // A test that observes the store sees the records' reads and writes through it.
    records: options.store
      ? async () => new Records(await options.store!(rt.config.records), { clock: rt.clock })
      : () => rt.records(),
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
): { byAge: Set<string>; byCount: Set<string>; keptFailed: number } {
  const byAge = new Set<string>();
  const byCount = new Set<string>();
  let keptFailed = 0;
  const flows = Map.groupBy(runs, (r) => r.flowId);
  for (const list of flows.values()) {
    list.sort((a, b) => (a.id < b.id ? 1 : -1)); // newest first
    list.forEach((run, rank) => {
      if (run.status === "running") return;
      const failed = run.status === "failed" || run.status === "timed-out";
      const limit = failed ? options.failedMaxAge : options.maxAge;
      if (limit !== null && NOW - run.startedAt > limit) byAge.add(run.id);
      else if (options.maxRuns !== null && rank >= options.maxRuns) byCount.add(run.id);
      else if (failed && options.maxAge !== null && NOW - run.startedAt > options.maxAge) {
        keptFailed++;
      }
    });
  }
  return { byAge, byCount, keptFailed };
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

/** Wrap a store to see its commits (mutation counts) and listings. */
function observed(
  store: Store,
  onCommit?: (n: number) => void,
  beforeCommit?: () => Promise<void>,
  afterCommit?: () => Promise<void>,
) {
  const seen = {
    commits: [] as number[],
    clears: 0,
    lists: [] as { limit?: number; prefix?: Key; end?: Key }[],
  };
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
            clear: (prefix: Key, bounds?: KeyBounds) => (
              seen.clears++, op.clear(prefix, bounds), wrapped
            ),
            commit: async () => {
              await beforeCommit?.();
              const result = await op.commit();
              await afterCommit?.();
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
        return (options: { limit?: number; prefix?: Key; end?: Key } = {}) => {
          seen.lists.push({ limit: options.limit, prefix: options.prefix, end: options.end });
          return target.list(options);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store: proxy, seen };
}

Deno.test("retention deletes by age in windows of about batchSize runs, never reading succeeded runs", async () => {
  await withEnv("memory", async (env) => {
    // 1200 runs spread over 12 days, all older than 30 days, and 30 recent ones.
    for (let i = 0; i < 1200; i++) await addRun(env, `f${i % 2}`, "succeeded", 40 + i / 100);
    for (let i = 0; i < 30; i++) await addRun(env, "f0", "succeeded", 1);
    const { store, seen } = observed(env.store);
    const result = await retain(env.rt, { batchSize: 500, maxRuns: null }, {
      store: () => Promise.resolve(store),
    });
    assert.equal(result.deleted, 1200);
    assert.equal(result.deletedByAge, 1200);
    assert.equal(result.scanned, 0, "no index entry was read");
    assert.ok(result.batches >= 2 && result.batches <= 5, `${result.batches} commits`);
    assert.equal(seen.commits.length, result.batches);
    for (const list of seen.lists) {
      assert.ok(
        (list.limit !== undefined && list.limit <= 1000) || list.end !== undefined,
        `unbounded listing ${JSON.stringify(list)}`,
      );
      if (JSON.stringify(list.prefix) === '["flowstate","runs"]') {
        assert.equal(list.limit, 1, "run records are only probed for where the next run is");
      }
    }
    assert.equal(await env.store.count(["flowstate", "runs"]), 30);
    assert.equal(await env.store.count(["flowstate", "runs-by-flow"]), 30);
    assert.equal(await env.store.count(["flowstate", "events"]), 0);
  });
});

Deno.test("retention by age keeps each window near batchSize runs when the rate of runs changes", async () => {
  await withEnv("memory", async (env) => {
    // A quiet stretch (one run a day), then a burst (100 runs within an hour), then one more.
    for (let d = 0; d < 20; d++) await addRun(env, "f", "succeeded", 100 - d);
    for (let i = 0; i < 100; i++) await addRun(env, "f", "succeeded", 60 - i / 2400);
    await addRun(env, "f", "succeeded", 31);
    const sizes: number[] = [];
    let last = await env.store.count(["flowstate", "runs"]);
    const { store } = observed(env.store, undefined, undefined, async () => {
      const now = await env.store.count(["flowstate", "runs"]);
      sizes.push(last - now);
      last = now;
    });
    const result = await retain(env.rt, { batchSize: 10, maxRuns: null }, {
      store: () => Promise.resolve(store),
    });
    assert.equal(result.deleted, 121);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 121);
    assert.ok(sizes.every((n) => n <= 20), `window sizes ${sizes}`);
  });
});

Deno.test("retention with many flows deletes in bigger windows, each touching every flow's index once", async () => {
  await withEnv("sqlite", async (env) => {
    const runs: SeededRun[] = [];
    for (let i = 0; i < 600; i++) {
      const status: RunStatus = i % 9 === 0 ? "failed" : i % 13 === 0 ? "running" : "succeeded";
      runs.push(await addRun(env, `flow-${i % 150}`, status, 31 + i / 20, i % 2));
    }
    for (let i = 0; i < 150; i++) runs.push(await addRun(env, `flow-${i}`, "succeeded", 1));
    const before = await dump(env.store);
    const result = await retain(env.rt, { batchSize: 10, maxRuns: null, failedMaxAge: "40d" });
    const expected = model(runs, { maxAge: 30 * DAY, failedMaxAge: 40 * DAY, maxRuns: null });
    await assertRemaining(env.store, before, expected.byAge);
    assert.equal(result.deletedByAge, expected.byAge.size);
    assert.equal(result.keptFailed, expected.keptFailed);
    // 150 flows: windows aim at 50 runs per flow (7,500), not at batchSize (10).
    assert.equal(result.batches, 1);
  });
});

Deno.test("retention stops between windows when cancelled and leaves every run whole", async () => {
  await withEnv("memory", async (env) => {
    for (let i = 0; i < 50; i++) {
      await addRun(env, `f${i % 2}`, i % 7 ? "succeeded" : "cancelled", 40 + i / 10, i % 3);
    }
    const controller = new AbortController();
    const { store } = observed(env.store, (n) => {
      if (n === 2) controller.abort();
    });
    const result = await retain(env.rt, { batchSize: 10, maxRuns: null }, {
      store: () => Promise.resolve(store),
      signal: controller.signal,
    });
    assert.equal(result.cancelled, true);
    assert.equal(result.batches, 2);
    const runs = await Array.fromAsync(
      env.store.list<{ status: string }>({ prefix: ["flowstate", "runs"] }),
    );
    assert.equal(result.deleted, 50 - runs.length);
    assert.ok(result.deleted >= 10 && result.deleted < 50, `${result.deleted} deleted`);
    // Every remaining run is whole: record, its index entries, all its events; nothing else.
    const ids = new Set(runs.map((e) => e.key[2]));
    const byFlow = await Array.fromAsync(env.store.list({ prefix: ["flowstate", "runs-by-flow"] }));
    assert.deepEqual(new Set(byFlow.map((e) => e.key.at(-1))), ids);
    const cancelled = new Set(
      runs.filter((e) => e.value.status === "cancelled").map((e) => e.key[2]),
    );
    for (const index of ["runs-by-status", "runs-by-flow-status"]) {
      const entries = await Array.fromAsync(env.store.list({ prefix: ["flowstate", index] }));
      assert.deepEqual(new Set(entries.map((e) => e.key.at(-1))), cancelled, index);
    }
    for (const id of ids) {
      const run = await env.records.getRun(id);
      assert.notEqual(run, null);
    }
    for await (const e of env.store.list({ prefix: ["flowstate", "events"] })) {
      assert.ok(ids.has(e.key[2]), `events of a deleted run remain: ${e.key}`);
    }
  });
});

Deno.test("retention reports progress in phases with totals", async () => {
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
    // First each flow is ranked (3 flows), then the runs below the newest doomed one are
    // counted in time windows: here the 5 runs older than 30 days, in one window.
    assert.deepEqual(labels, [
      "retention: flows ranked by their newest runs",
      3,
      "retention: runs checked",
      5,
    ]);
    assert.deepEqual(updates, [1, 2, 3, 5]);
    assert.equal(result.scanned, 12, "the 4 runs of each flow, to rank them");
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

Deno.test("retention reads a window again when one of its running runs finishes meanwhile", async () => {
  await withEnv("sqlite", async (env) => {
    for (let i = 0; i < 5; i++) await addRun(env, "f", "succeeded", 40 + i);
    const running = await addRun(env, "f", "running", 42.5);
    const record = (await env.records.getRun(running.id))!;
    let finished = false;
    // Another process finishes the running run just before the first commit.
    const { store, seen } = observed(env.store, undefined, async () => {
      if (finished) return;
      finished = true;
      await env.records.finishRun({ ...record, status: "succeeded" });
    });
    const result = await retain(env.rt, { maxRuns: null }, {
      store: () => Promise.resolve(store),
    });
    assert.equal(result.deleted, 6, "the run that finished is deleted with the others");
    assert.equal(result.skipped, 0);
    assert.equal(seen.commits.length, 1, "one commit went through (the first was refused)");
    assert.equal(result.keptRunning, 0);
    const left = (await dump(env.store)).map((e) => e.key[1]);
    assert.deepEqual([...new Set(left)], ["metrics"], "only the metrics are left");
  });
});

async function modelRounds(backends: readonly Backend[], rounds: number): Promise<void> {
  let seed = Number(Deno.env.get("RETENTION_SEED") ?? 42);
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const statuses: RunStatus[] = [
    "succeeded",
    "succeeded",
    "succeeded",
    "failed",
    "cancelled",
    "timed-out",
    "running",
  ];
  for (let round = 0; round < rounds; round++) {
    for (const backend of backends) {
      await withEnv(backend, async (env) => {
        const runs: SeededRun[] = [];
        const legacyRound = round % 3 === 2;
        const n = 20 + Math.floor(random() * 60);
        for (let i = 0; i < n; i++) {
          const status = pick(statuses);
          const flowId = pick(["a", "b", "c"]);
          const run = await addRun(env, flowId, status, random() * 120, Math.floor(random() * 3));
          runs.push(run);
          if (legacyRound && status === "succeeded") {
            // As Flowstate 0.1 wrote it: succeeded runs in the status indexes too.
            const summary = (await env.records.listRunSummaries({ flowId, limit: 1000 })).runs
              .find((r) => r.id === run.id);
            await env.store.atomic()
              .set(["flowstate", "runs-by-status", "succeeded", run.id], summary!)
              .set(["flowstate", "runs-by-flow-status", flowId, "succeeded", run.id], summary!)
              .commit();
          }
        }
        const maxAge = pick([null, 10, 30, 60]);
        const failedMaxAge = pick([null, 20, 90]);
        const maxRuns = pick([null, 0, 3, 10, 1000]);
        const flows = pick([undefined, undefined, ["a"], ["b", "c"]]);
        const batchSize = pick([1, 3, 7, 5000]);
        const before = await dump(env.store);
        const what = JSON.stringify({ round, backend, maxAge, failedMaxAge, maxRuns, flows });
        const result = await retain(env.rt, {
          maxAge: maxAge === null ? null : `${maxAge}d`,
          failedMaxAge: failedMaxAge === null ? null : `${failedMaxAge}d`,
          maxRuns,
          flows,
          batchSize,
        });
        const considered = flows === undefined
          ? runs
          : runs.filter((r) => flows.includes(r.flowId));
        const expected = model(considered, {
          maxAge: maxAge === null ? null : maxAge * DAY,
          failedMaxAge: failedMaxAge === null ? null : failedMaxAge * DAY,
          maxRuns,
        });
        await assertRemaining(env.store, before, [...expected.byAge, ...expected.byCount]);
        assert.equal(result.deletedByAge, expected.byAge.size, what);
        assert.equal(result.deletedByCount, expected.byCount.size, what);
        assert.equal(result.keptFailed, expected.keptFailed, what);
        assert.equal(
          result.keptRunning,
          considered.filter((r) => r.status === "running").length,
          what,
        );
      });
    }
  }
}

Deno.test("retention matches the model on random runs, statuses, ages and options", async () => {
  await modelRounds(BACKENDS, Number(Deno.env.get("RETENTION_ROUNDS") ?? 12));
});

Deno.test("retention matches the model on jsonfile and on a plugin without native range deletes", async () => {
  await modelRounds(["jsonfile", "mapfile"], 4);
});

Deno.test({
  name: `retention matches the model on postgres${
    PG_URL ? "" : " (ignored: set FLOWSTATE_TEST_POSTGRES_URL to run)"
  }`,
  ignore: PG_URL === undefined,
  async fn() {
    try {
      await modelRounds(["postgres"], 4);
    } finally {
      const { default: postgres } = await import("postgres");
      const sql = postgres(PG_URL!, { max: 1, onnotice: () => {} });
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${PG_SCHEMA}" CASCADE`);
      await sql.end();
    }
  },
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
