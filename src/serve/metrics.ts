/**
 * `GET /metrics`: Prometheus text format 0.0.4, read from the records (the
 * per-flow metrics every finished run updates) and the stores.
 *
 * - `flowstate_runs_total{flow,status}`: finished runs of flows (counter).
 * - `flowstate_run_duration_seconds{flow}`: a histogram with the buckets of
 *   {@linkcode DURATION_BUCKETS_SECONDS}, derived from the records' finer
 *   log-scale histogram (a run counts in `le` when its bucket's upper bound
 *   is at most `le`, so a count may land one bucket late, never early).
 * - `flowstate_job_runs_total{job,status}`: finished job runs (flow `job:<name>`).
 * - `flowstate_queue_runs{state}`: queued runs `due` now, `scheduled` for later,
 *   `claimed` by a worker (gauge; `Records.queueCounts`).
 * - `flowstate_workers{status}`: queue workers `live` or `stale` (gauge; `listWorkers`).
 * - `flowstate_store_entries{store}`, `flowstate_store_size_bytes{store}` (file stores).
 * - `flowstate_scheduler_lag_seconds` (with a scheduler beside the server).
 * - `flowstate_up 1`.
 *
 * @module
 */
import { isAbsolute } from "node:path";
import type { Runtime } from "../runtime.ts";
import { listWorkers } from "../queue/workers.ts";
import { bucketBounds } from "../records/metrics.ts";
import type { FlowMetrics } from "../records/metrics.ts";

/**
 * What the scheduler beside the server reports (`flowstate daemon --serve`),
 * for `/health` and `/metrics`: pass `serve()` a function answering it.
 *
 * @example
 * ```ts
 * import { openRuntime } from "@flowstate/core";
 * import { type SchedulerStatus, serve } from "@flowstate/core/serve";
 * import assert from "node:assert/strict";
 *
 * const status: SchedulerStatus = { ticking: true, lastTickAt: Date.now(), lagSeconds: 0.01 };
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * await using server = await serve(rt, { port: 0, worker: false, scheduler: () => status });
 * const metrics = await (await fetch(new URL("/metrics", server.url))).text();
 * assert.match(metrics, /flowstate_scheduler_/);
 * ```
 */
export interface SchedulerStatus {
  /** Whether it is running. */
  ticking: boolean;
  /** When it last started a tick (ms since the epoch), or `null`. */
  lastTickAt: number | null;
  /** How late (s) its last tick started after its nominal time, or `null`. */
  lagSeconds: number | null;
}

/** The `le` bounds of `flowstate_run_duration_seconds`, in seconds. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];

/** A label value escaped for the text format. */
function label(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

const STATUSES: [keyof FlowMetrics, string][] = [
  ["succeeded", "succeeded"],
  ["failed", "failed"],
  ["cancelled", "cancelled"],
  ["timedOut", "timed-out"],
];

/** The metrics text. */
export async function prometheusText(
  runtime: Runtime,
  scheduler?: SchedulerStatus,
): Promise<string> {
  const lines: string[] = [];
  const records = await runtime.records();
  const all = (await records.listMetrics()).filter((m) => m.version === "*");
  const flows = all.filter((m) => !m.flowId.startsWith("job:"));
  const jobs = all.filter((m) => m.flowId.startsWith("job:"));

  lines.push("# HELP flowstate_runs_total Finished flow runs by flow and status.");
  lines.push("# TYPE flowstate_runs_total counter");
  for (const m of flows) {
    for (const [field, status] of STATUSES) {
      lines.push(`flowstate_runs_total{flow="${label(m.flowId)}",status="${status}"} ${m[field]}`);
    }
  }
  lines.push("# HELP flowstate_run_duration_seconds Durations of finished flow runs.");
  lines.push("# TYPE flowstate_run_duration_seconds histogram");
  for (const m of flows) {
    const flow = label(m.flowId);
    const counts = DURATION_BUCKETS_SECONDS.map(() => 0);
    for (const [index, count] of Object.entries(m.histogram.buckets)) {
      const { upper: upperMs } = bucketBounds(Number(index), m.histogram.growth);
      const upper = upperMs / 1000;
      for (let i = 0; i < DURATION_BUCKETS_SECONDS.length; i++) {
        if (upper <= DURATION_BUCKETS_SECONDS[i]) counts[i] += count;
      }
    }
    DURATION_BUCKETS_SECONDS.forEach((le, i) => {
      lines.push(`flowstate_run_duration_seconds_bucket{flow="${flow}",le="${le}"} ${counts[i]}`);
    });
    lines.push(`flowstate_run_duration_seconds_bucket{flow="${flow}",le="+Inf"} ${m.count}`);
    lines.push(`flowstate_run_duration_seconds_sum{flow="${flow}"} ${m.totalDurationMs / 1000}`);
    lines.push(`flowstate_run_duration_seconds_count{flow="${flow}"} ${m.count}`);
  }
  lines.push("# HELP flowstate_job_runs_total Finished job runs by job and status.");
  lines.push("# TYPE flowstate_job_runs_total counter");
  for (const m of jobs) {
    const job = label(m.flowId.slice("job:".length));
    for (const [field, status] of STATUSES) {
      lines.push(`flowstate_job_runs_total{job="${job}",status="${status}"} ${m[field]}`);
    }
  }
  const queue = await records.queueCounts();
  lines.push(
    "# HELP flowstate_queue_runs Queued runs: due (waiting, due now), scheduled (due later), " +
      "claimed (held by a worker).",
  );
  lines.push("# TYPE flowstate_queue_runs gauge");
  for (const state of ["due", "scheduled", "claimed"] as const) {
    lines.push(`flowstate_queue_runs{state="${state}"} ${queue[state]}`);
  }
  const workers = { live: 0, stale: 0 };
  for (const worker of await listWorkers(runtime)) workers[worker.status]++;
  lines.push(
    "# HELP flowstate_workers Queue workers registered in the records store: live, or stale " +
      "(no heartbeat for three heartbeat intervals: killed, paused or cut off).",
  );
  lines.push("# TYPE flowstate_workers gauge");
  for (const status of ["live", "stale"] as const) {
    lines.push(`flowstate_workers{status="${status}"} ${workers[status]}`);
  }
  const entries: string[] = [];
  const sizes: string[] = [];
  for (const name of runtime.storeNames) {
    try {
      const store = await runtime.store(name);
      entries.push(`flowstate_store_entries{store="${label(name)}"} ${await store.count()}`);
      if (isAbsolute(store.location)) {
        const size = (await Deno.stat(store.location)).size;
        sizes.push(`flowstate_store_size_bytes{store="${label(name)}"} ${size}`);
      }
    } catch {
      // A store that does not answer has no sample (see /health).
    }
  }
  lines.push("# HELP flowstate_store_entries Live entries per store.");
  lines.push("# TYPE flowstate_store_entries gauge");
  lines.push(...entries);
  lines.push("# HELP flowstate_store_size_bytes Size of a file store's main file.");
  lines.push("# TYPE flowstate_store_size_bytes gauge");
  lines.push(...sizes);
  if (scheduler) {
    lines.push("# HELP flowstate_scheduler_lag_seconds How late the last tick started.");
    lines.push("# TYPE flowstate_scheduler_lag_seconds gauge");
    lines.push(`flowstate_scheduler_lag_seconds ${scheduler.lagSeconds ?? 0}`);
  }
  lines.push("# HELP flowstate_up Whether the server is up.");
  lines.push("# TYPE flowstate_up gauge");
  lines.push("flowstate_up 1");
  return lines.join("\n") + "\n";
}
