/**
 * Helpers for the retention job's tests (not published): a runtime on any
 * backend with a fake clock, runs seeded through the Records API, a way to
 * run the job with a test context, and the model of which runs go.
 *
 * Each test file runs in its own isolate, so each gets its own
 * {@linkcode PG_SCHEMA}; the file that uses the postgres backend drops it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { RunStatus } from "../../src/records/types.ts";
import type { JobContext } from "../../src/jobs/job.ts";
import { createProgress, type Progress } from "../../src/jobs/progress.ts";
import { resolveJobOptions } from "../../src/jobs/run.ts";
import { Records } from "../../src/records/records.ts";
import { openRuntime, type Runtime } from "../../src/runtime.ts";
import type { Entry, Key, Store } from "../../src/store/types.ts";
import { type FakeClock, fakeClock } from "../../src/testing/clock.ts";
import { newRunId } from "../../src/records/run_id.ts";
import retention, { type RetentionOptions, type RetentionResult } from "../retention.ts";

/** One day in ms. */
export const DAY = 86_400_000;
/** Where the fake clock stands while the job runs; runs are seeded before it. */
export const NOW = Date.UTC(2026, 5, 1);
/** The backends most tests run on. */
export const BACKENDS = ["memory", "sqlite"] as const;
/** A backend {@linkcode withEnv} can open. */
export type Backend = typeof BACKENDS[number] | "postgres" | "jsonfile" | "mapfile" | "redis";
/** The package `@flowstate/redis`, loaded as a third party's plugin is. */
const REDIS = new URL("../../packages/redis/mod.ts", import.meta.url).href;
/** The redis server, or `undefined` to ignore the redis tests. */
export const REDIS_URL = Deno.env.get("FLOWSTATE_TEST_REDIS_URL") || undefined;
/** A third-party style plugin without native range deletes: the core's fallback. */
const MAPFILE = new URL("../../examples/plugins/mapfile.ts", import.meta.url).href;
/** The postgres server, or `undefined` to ignore the postgres tests. */
export const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") || undefined;
/** This test file's own postgres schema; the test that uses it drops it. */
export const PG_SCHEMA = `flowstate_retention_${
  crypto.randomUUID().replaceAll("-", "").slice(0, 12)
}`;
let pgTables = 0;

/** A runtime on one backend, with its fake clock, records and default store. */
export interface Env {
  rt: Runtime;
  clock: FakeClock;
  records: Records;
  store: Store;
}

/** Run `fn` with a fresh runtime on `backend`, closed and removed afterwards. */
export async function withEnv(backend: Backend, fn: (env: Env) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-retention-" });
  const clock = fakeClock(NOW);
  const redisPrefix = `flowstate_test:retention_${crypto.randomUUID().slice(0, 8)}:`;
  const spec = backend === "memory"
    ? { plugin: "memory" }
    : backend === "postgres"
    ? { plugin: "postgres", url: PG_URL!, schema: PG_SCHEMA, table: `t${++pgTables}` }
    : backend === "jsonfile"
    ? { plugin: "jsonfile", path: join(dir, "state.json"), durability: "relaxed" }
    : backend === "mapfile"
    ? { plugin: MAPFILE, path: join(dir, "state.map.json") }
    : backend === "redis"
    ? { plugin: REDIS, url: REDIS_URL!, prefix: redisPrefix }
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
    if (backend === "redis") {
      // The server outlives the test: its keys go.
      const { keysUnder, withAdmin } = await import("../../packages/redis/_test_utils.ts");
      await withAdmin(REDIS_URL!, async (redis) => {
        const keys = await keysUnder(redis, redisPrefix);
        if (keys.length > 0) await redis.unlink(...keys);
      });
    }
    await Deno.remove(dir, { recursive: true });
  }
}

/** A run {@linkcode addRun} recorded. */
export interface SeededRun {
  id: string;
  flowId: string;
  status: RunStatus;
  startedAt: number;
  chunks: number;
}

/** Record a run through the Records API, `ageDays` before NOW, with `chunks` appendEvents calls. */
export async function addRun(
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

/** A job context over `rt`, quiet unless told otherwise. */
export function jobContext(
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

/** Run the retention job with `options` over its defaults. */
export async function retain(
  rt: Runtime,
  options: Partial<RetentionOptions> = {},
  context: Parameters<typeof jobContext>[1] = {},
): Promise<RetentionResult> {
  const resolved = await resolveJobOptions(retention, {}, options as Record<string, unknown>);
  return await retention.run(jobContext(rt, context), resolved) as RetentionResult;
}

/** Every entry of `store`, in key order. */
export async function dump(store: Store): Promise<Entry[]> {
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
export async function assertRemaining(store: Store, before: Entry[], deleted: Iterable<string>) {
  const ids = new Set(deleted);
  const expected = before.filter((e) => !belongsTo(e.key, ids));
  assert.deepEqual(await dump(store), expected);
}

/** The spec of which runs go, written independently of the job. */
export function model(
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
      // A run is aged from its end (seeded runs end 10 ms after they start).
      const endedAt = run.startedAt + 10;
      if (limit !== null && NOW - endedAt > limit) byAge.add(run.id);
      else if (options.maxRuns !== null && rank >= options.maxRuns) byCount.add(run.id);
      else if (failed && options.maxAge !== null && NOW - endedAt > options.maxAge) {
        keptFailed++;
      }
    });
  }
  return { byAge, byCount, keptFailed };
}
