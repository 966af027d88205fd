/**
 * Per-flow run metrics: counts by final status, duration totals and
 * percentiles from a bounded, log-bucketed histogram.
 *
 * The histogram has one bucket for durations below 1 ms and then buckets
 * that grow by {@linkcode HISTOGRAM_GROWTH} (10 %): bucket `i >= 1` holds
 * `[g^(i-1), g^i)` ms. Durations of a year or more share the last bucket, so
 * a histogram never has more than {@linkcode histogramBucketLimit} buckets
 * (256 with the default growth) however many runs it counts, and it is
 * stored sparsely (only non-empty buckets).
 *
 * A percentile is read as the geometric middle of the bucket that holds the
 * nearest-rank value, clamped to the observed minimum and maximum. For a
 * true nearest-rank percentile `x` with 1 ms <= x < 1 year, the estimate is
 * within {@linkcode HISTOGRAM_RELATIVE_ERROR} (`sqrt(1.1) - 1`, about 4.9 %)
 * of `x`; below 1 ms the absolute error is under 1 ms (zero for whole
 * milliseconds); at a year or more the estimate is at most the maximum seen.
 *
 * All functions here are pure: they return new objects and never mutate
 * their arguments.
 *
 * @module
 */
import type { RunRecord, RunStatus } from "./types.ts";

/**
 * The factor by which each histogram bucket is wider than the one before.
 * Bucket `i >= 1` holds durations in `[HISTOGRAM_GROWTH ** (i - 1), HISTOGRAM_GROWTH ** i)` ms.
 *
 * @example
 * ```ts
 * import { HISTOGRAM_GROWTH } from "./metrics.ts";
 * import { quantile } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const durationMs = 100;
 * const index = Math.floor(Math.log(durationMs) / Math.log(HISTOGRAM_GROWTH)) + 1; // 49
 * const histogram = { growth: HISTOGRAM_GROWTH, buckets: { [index]: 1 } };
 * const estimate = quantile(histogram, 0.5) ?? NaN;
 * assert.ok(estimate >= HISTOGRAM_GROWTH ** (index - 1) && estimate < HISTOGRAM_GROWTH ** index);
 * ```
 */
export const HISTOGRAM_GROWTH = 1.1;

/** Durations at or above this (one year, in ms) all fall into the last bucket. */
export const HISTOGRAM_MAX_MS = 365 * 24 * 60 * 60 * 1000;

/**
 * The bound on the relative error of a percentile read from a histogram with
 * the default growth, for durations between 1 ms and one year:
 * `sqrt(HISTOGRAM_GROWTH) - 1` (about 0.0488).
 *
 * @example
 * ```ts
 * import { HISTOGRAM_GROWTH, HISTOGRAM_RELATIVE_ERROR } from "./metrics.ts";
 * import { quantile } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * // One run of 100 ms, counted in bucket 49: [1.1 ** 48, 1.1 ** 49) ms, about [97, 106.7).
 * const estimate = quantile({ growth: HISTOGRAM_GROWTH, buckets: { "49": 1 } }, 0.5) ?? NaN;
 * assert.ok(Math.abs(estimate - 100) / 100 <= HISTOGRAM_RELATIVE_ERROR);
 * ```
 */
export const HISTOGRAM_RELATIVE_ERROR: number = Math.sqrt(HISTOGRAM_GROWTH) - 1;

/**
 * A sparse log-bucketed histogram of durations in milliseconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { DurationHistogram } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * const metrics = await (await rt.records()).getMetrics("hi");
 * const histogram: DurationHistogram | undefined = metrics?.histogram;
 * const counted = Object.values(histogram?.buckets ?? {}).reduce((a, b) => a + b, 0);
 * assert.equal(counted, 1); // one run, in one bucket
 * ```
 */
export interface DurationHistogram {
  /** Bucket growth factor (kept so a stored histogram stays readable if the default changes). */
  growth: number;
  /** Count per non-empty bucket, keyed by bucket index (`"0"` holds durations below 1 ms). */
  buckets: Record<string, number>;
}

/**
 * Metrics of one flow version, of all its versions (`version: "*"`), or of
 * the versions the retention job deleted (`version: "*pruned"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { FlowMetrics } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "fail", with: { message: "no" } }] });
 * const all: FlowMetrics | null = await (await rt.records()).getMetrics("hi"); // every version: "*"
 * assert.equal(all?.count, 2);
 * assert.deepEqual([all?.succeeded, all?.failed], [1, 1]);
 * ```
 */
export interface FlowMetrics {
  /** The flow's id. */
  flowId: string;
  /**
   * The flow version's content hash, `"*"` for all versions together, or
   * `"*pruned"` for the versions the retention job deleted (their metrics
   * folded together: the per-version metrics and these add up to `"*"`).
   */
  version: string;
  /** Finished runs counted. */
  count: number;
  /** Runs that ended `succeeded`. */
  succeeded: number;
  /** Runs that ended `failed`. */
  failed: number;
  /** Runs that ended `cancelled`. */
  cancelled: number;
  /** Runs that ended `timed-out`. */
  timedOut: number;
  /** Sum of the durations of every counted run. */
  totalDurationMs: number;
  /** Shortest duration, or `null` before the first run. */
  minDurationMs: number | null;
  /** Longest duration, or `null` before the first run. */
  maxDurationMs: number | null;
  /** Median duration (estimate, see the module doc), or `null` before the first run. */
  p50DurationMs: number | null;
  /** 95th percentile duration (estimate), or `null` before the first run. */
  p95DurationMs: number | null;
  /** Start time of the latest-started counted run, or `null`. */
  lastRunAt: number | null;
  /** Id of that run, or `null`. */
  lastRunId: string | null;
  /** Final status of that run, or `null`. */
  lastStatus: RunStatus | null;
  /** When these metrics last changed (ms since the epoch). */
  updatedAt: number;
  /** Durations of every counted run (all statuses). */
  histogram: DurationHistogram;
}

/** The number of buckets a histogram with this growth can use at most. */
export function histogramBucketLimit(growth: number = HISTOGRAM_GROWTH): number {
  checkGrowth(growth);
  return Math.ceil(Math.log(HISTOGRAM_MAX_MS) / Math.log(growth)) + 1;
}

function checkGrowth(growth: number): void {
  if (typeof growth !== "number" || !(growth > 1) || !Number.isFinite(growth)) {
    throw new RangeError(`Cannot use histogram: growth must be a number above 1 (got ${growth})`);
  }
}

function checkDuration(durationMs: number): void {
  if (typeof durationMs !== "number" || !Number.isFinite(durationMs) || durationMs < 0) {
    throw new RangeError(
      `Cannot record duration: it must be a finite number of ms >= 0 (got ${durationMs})`,
    );
  }
}

/** An empty histogram. */
export function emptyHistogram(growth: number = HISTOGRAM_GROWTH): DurationHistogram {
  checkGrowth(growth);
  return { growth, buckets: {} };
}

/** The index of the bucket that holds `durationMs`. */
export function bucketIndex(durationMs: number, growth: number = HISTOGRAM_GROWTH): number {
  checkDuration(durationMs);
  checkGrowth(growth);
  if (durationMs < 1) return 0;
  const limit = histogramBucketLimit(growth);
  const i = Math.floor(Math.log(durationMs) / Math.log(growth)) + 1;
  return Math.min(Math.max(i, 1), limit - 1);
}

/** The range `[lower, upper)` of durations bucket `index` holds (the last bucket is open-ended). */
export function bucketBounds(
  index: number,
  growth: number = HISTOGRAM_GROWTH,
): { lower: number; upper: number } {
  checkGrowth(growth);
  const limit = histogramBucketLimit(growth);
  if (!Number.isInteger(index) || index < 0 || index >= limit) {
    throw new RangeError(
      `Cannot read histogram bucket: index must be an integer from 0 to ${
        limit - 1
      } (got ${index})`,
    );
  }
  if (index === 0) return { lower: 0, upper: 1 };
  return {
    lower: growth ** (index - 1),
    upper: index === limit - 1 ? Infinity : growth ** index,
  };
}

/** The value a bucket stands for: 0 for the first, else the geometric middle of its range. */
function representative(index: number, growth: number): number {
  return index === 0 ? 0 : growth ** (index - 1) * Math.sqrt(growth);
}

/** A copy of `histogram` with `durationMs` counted once more. */
export function recordDuration(
  histogram: DurationHistogram,
  durationMs: number,
): DurationHistogram {
  const i = String(bucketIndex(durationMs, histogram.growth));
  return {
    growth: histogram.growth,
    buckets: { ...histogram.buckets, [i]: (histogram.buckets[i] ?? 0) + 1 },
  };
}

/** A histogram counting everything both count. Both must have the same growth. */
export function mergeHistograms(a: DurationHistogram, b: DurationHistogram): DurationHistogram {
  if (a.growth !== b.growth) {
    throw new RangeError(
      `Cannot merge histograms: their growth differs (${a.growth} and ${b.growth})`,
    );
  }
  const buckets = { ...a.buckets };
  for (const [i, n] of Object.entries(b.buckets)) buckets[i] = (buckets[i] ?? 0) + n;
  return { growth: a.growth, buckets };
}

/** How many durations a histogram counts. */
export function histogramCount(histogram: DurationHistogram): number {
  let n = 0;
  for (const c of Object.values(histogram.buckets)) n += c;
  return n;
}

/**
 * Estimate the nearest-rank `q`-quantile (`0 <= q <= 1`; 0.95 for p95) of the
 * counted durations, or `null` if there are none. Pass the exact `min` and
 * `max` seen to clamp the estimate (this only ever makes it closer).
 *
 * @example
 * ```ts
 * import { openRuntime } from "@flowstate/core";
 * import { quantile } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * await rt.runFlow({ id: "hello", nodes: [{ id: "say", type: "log", with: { message: "hi" } }] });
 * const metrics = await (await rt.records()).getMetrics("hello");
 * assert.ok(metrics !== null);
 * const { histogram, minDurationMs: min, maxDurationMs: max } = metrics;
 * const p99 = quantile(histogram, 0.99, { min, max });
 * assert.equal(p99, max);
 * ```
 */
export function quantile(
  histogram: DurationHistogram,
  q: number,
  bounds: { min?: number | null; max?: number | null } = {},
): number | null {
  if (typeof q !== "number" || !(q >= 0 && q <= 1)) {
    throw new RangeError(`Cannot compute quantile: q must be between 0 and 1 (got ${q})`);
  }
  const indexes = Object.keys(histogram.buckets).map(Number).sort((a, b) => a - b);
  const count = histogramCount(histogram);
  if (count === 0) return null;
  const rank = Math.max(1, Math.ceil(q * count));
  let seen = 0;
  let index = indexes[indexes.length - 1];
  for (const i of indexes) {
    seen += histogram.buckets[String(i)];
    if (seen >= rank) {
      index = i;
      break;
    }
  }
  let estimate = representative(index, histogram.growth);
  if (bounds.min != null && estimate < bounds.min) estimate = bounds.min;
  if (bounds.max != null && estimate > bounds.max) estimate = bounds.max;
  return estimate;
}

/** Metrics with nothing counted yet. */
export function emptyMetrics(flowId: string, version: string, now: number): FlowMetrics {
  return {
    flowId,
    version,
    count: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
    timedOut: 0,
    totalDurationMs: 0,
    minDurationMs: null,
    maxDurationMs: null,
    p50DurationMs: null,
    p95DurationMs: null,
    lastRunAt: null,
    lastRunId: null,
    lastStatus: null,
    updatedAt: now,
    histogram: emptyHistogram(),
  };
}

const STATUS_FIELD = {
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "cancelled",
  "timed-out": "timedOut",
} as const;

/**
 * A copy of `metrics` with one finished run counted. The run's status must
 * be final and its `durationMs` a number >= 0.
 */
export function addRunToMetrics(
  metrics: FlowMetrics,
  run: Pick<RunRecord, "id" | "status" | "startedAt" | "durationMs">,
  now: number,
): FlowMetrics {
  if (run.status === "running" || !Object.hasOwn(STATUS_FIELD, run.status)) {
    throw new RangeError(
      `Cannot count run ${run.id} in metrics: its status must be final (got ${
        JSON.stringify(run.status)
      })`,
    );
  }
  const duration = run.durationMs;
  if (duration === null) {
    throw new RangeError(`Cannot count run ${run.id} in metrics: its durationMs is null`);
  }
  checkDuration(duration);
  const field = STATUS_FIELD[run.status as keyof typeof STATUS_FIELD];
  const histogram = recordDuration(metrics.histogram, duration);
  const min = metrics.minDurationMs === null ? duration : Math.min(metrics.minDurationMs, duration);
  const max = metrics.maxDurationMs === null ? duration : Math.max(metrics.maxDurationMs, duration);
  const latest = metrics.lastRunAt === null || run.startedAt > metrics.lastRunAt ||
    (run.startedAt === metrics.lastRunAt && run.id > (metrics.lastRunId ?? ""));
  return {
    ...metrics,
    count: metrics.count + 1,
    [field]: metrics[field] + 1,
    totalDurationMs: metrics.totalDurationMs + duration,
    minDurationMs: min,
    maxDurationMs: max,
    p50DurationMs: quantile(histogram, 0.5, { min, max }),
    p95DurationMs: quantile(histogram, 0.95, { min, max }),
    lastRunAt: latest ? run.startedAt : metrics.lastRunAt,
    lastRunId: latest ? run.id : metrics.lastRunId,
    lastStatus: latest ? run.status : metrics.lastStatus,
    updatedAt: now,
    histogram,
  };
}
