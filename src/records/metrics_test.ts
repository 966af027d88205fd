import assert from "node:assert/strict";
import {
  addRunToMetrics,
  bucketBounds,
  bucketIndex,
  emptyHistogram,
  emptyMetrics,
  HISTOGRAM_GROWTH,
  HISTOGRAM_MAX_MS,
  HISTOGRAM_RELATIVE_ERROR,
  histogramBucketLimit,
  histogramCount,
  mergeHistograms,
  quantile,
  recordDuration,
} from "./metrics.ts";
import type { DurationHistogram } from "./metrics.ts";

/** A seeded PRNG (mulberry32), so the distributions are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function histogramOf(values: number[]): DurationHistogram {
  let h = emptyHistogram();
  for (const v of values) h = recordDuration(h, v);
  return h;
}

/** The exact nearest-rank quantile. */
function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

const QS = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1];

function assertWithinError(values: number[], label: string): void {
  const sorted = [...values].sort((a, b) => a - b);
  const h = histogramOf(values);
  const bounds = { min: sorted[0], max: sorted[sorted.length - 1] };
  for (const q of QS) {
    const exact = exactQuantile(sorted, q);
    const estimate = quantile(h, q, bounds)!;
    const error = Math.abs(estimate - exact) / exact;
    assert.ok(
      error <= HISTOGRAM_RELATIVE_ERROR + 1e-12,
      `${label} q=${q}: estimate ${estimate} vs exact ${exact} (error ${error})`,
    );
  }
}

Deno.test("HISTOGRAM_RELATIVE_ERROR is sqrt(growth) - 1, under 5 %", () => {
  assert.equal(HISTOGRAM_RELATIVE_ERROR, Math.sqrt(HISTOGRAM_GROWTH) - 1);
  assert.ok(HISTOGRAM_RELATIVE_ERROR < 0.05);
});

Deno.test("bucketIndex() puts sub-millisecond durations in bucket 0 and grows by 10 %", () => {
  assert.equal(bucketIndex(0), 0);
  assert.equal(bucketIndex(0.999), 0);
  assert.equal(bucketIndex(1), 1);
  assert.equal(bucketIndex(1.05), 1);
  assert.equal(bucketIndex(1.2), 2);
  for (const v of [3, 17, 250, 1234.5, 60_000, 3_600_000, 86_400_000]) {
    const { lower, upper } = bucketBounds(bucketIndex(v));
    assert.ok(lower <= v && v < upper, `${v} not in [${lower}, ${upper})`);
    assert.ok(upper / lower <= HISTOGRAM_GROWTH + 1e-9);
  }
});

Deno.test("bucketIndex() keeps the bucket count bounded however long a duration is", () => {
  const limit = histogramBucketLimit();
  assert.ok(limit <= 256, `limit ${limit}`);
  assert.equal(bucketIndex(HISTOGRAM_MAX_MS * 1000), limit - 1);
  assert.equal(bucketBounds(limit - 1).upper, Infinity);
  const random = prng(7);
  let h = emptyHistogram();
  for (let i = 0; i < 20_000; i++) h = recordDuration(h, Math.exp(random() * 40));
  assert.ok(Object.keys(h.buckets).length <= limit);
  assert.equal(histogramCount(h), 20_000);
});

Deno.test("bucketIndex() and bucketBounds() reject bad arguments", () => {
  assert.throws(() => bucketIndex(-1), RangeError);
  assert.throws(() => bucketIndex(NaN), RangeError);
  assert.throws(() => bucketIndex(5, 1), RangeError);
  assert.throws(() => bucketBounds(-1), RangeError);
  assert.throws(() => bucketBounds(histogramBucketLimit()), RangeError);
});

Deno.test("quantile() is null for an empty histogram and rejects q outside [0, 1]", () => {
  assert.equal(quantile(emptyHistogram(), 0.5), null);
  const h = histogramOf([1, 2, 3]);
  assert.throws(() => quantile(h, 1.5), RangeError);
  assert.throws(() => quantile(h, -0.1), RangeError);
  assert.throws(() => quantile(h, NaN), RangeError);
});

Deno.test("quantile() is within the stated error on a uniform distribution", () => {
  const values = Array.from({ length: 10_000 }, (_, i) => i + 1);
  assertWithinError(values, "uniform 1..10000");
  const h = histogramOf(values);
  const p50 = quantile(h, 0.5)!;
  const p95 = quantile(h, 0.95)!;
  assert.ok(Math.abs(p50 - 5000) / 5000 <= HISTOGRAM_RELATIVE_ERROR, `p50 ${p50}`);
  assert.ok(Math.abs(p95 - 9500) / 9500 <= HISTOGRAM_RELATIVE_ERROR, `p95 ${p95}`);
});

Deno.test("quantile() is within the stated error on exponential and log-normal distributions", () => {
  const random = prng(42);
  const exponential = Array.from({ length: 5000 }, () => 1 - 200 * Math.log(1 - random()));
  assertWithinError(exponential, "exponential mean 200ms");
  const logNormal = Array.from({ length: 5000 }, () => {
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    return Math.exp(7 + 1.5 * z); // median ~1.1s, long tail
  }).filter((v) => v >= 1);
  assertWithinError(logNormal, "log-normal");
});

Deno.test("quantile() is within the stated error on a bimodal distribution", () => {
  const random = prng(3);
  const values = Array.from(
    { length: 4000 },
    (_, i) => i % 4 === 0 ? 30_000 + random() * 5000 : 40 + random() * 20,
  );
  assertWithinError(values, "bimodal");
});

Deno.test("quantile() is exact when every duration is the same (clamped to min and max)", () => {
  const h = histogramOf(Array(100).fill(250));
  assert.equal(quantile(h, 0.5, { min: 250, max: 250 }), 250);
  assert.equal(quantile(h, 0.95, { min: 250, max: 250 }), 250);
  const zeros = histogramOf([0, 0, 0]);
  assert.equal(quantile(zeros, 0.5, { min: 0, max: 0 }), 0);
});

Deno.test("quantile() does not count the unclamped estimate as exact", () => {
  // Without bounds the estimate is the bucket's geometric middle, not the value.
  const h = histogramOf(Array(10).fill(250));
  const estimate = quantile(h, 0.5)!;
  assert.notEqual(estimate, 250);
  assert.ok(Math.abs(estimate - 250) / 250 <= HISTOGRAM_RELATIVE_ERROR);
});

Deno.test("recordDuration() returns a new histogram and leaves the old one alone", () => {
  const a = emptyHistogram();
  const b = recordDuration(a, 10);
  assert.deepEqual(a.buckets, {});
  assert.equal(histogramCount(b), 1);
});

Deno.test("mergeHistograms() equals recording both sets", () => {
  const x = [1, 5, 9, 100, 2000];
  const y = [3, 5, 70, 70_000];
  assert.deepEqual(mergeHistograms(histogramOf(x), histogramOf(y)), histogramOf([...x, ...y]));
  assert.throws(
    () => mergeHistograms(emptyHistogram(1.1), emptyHistogram(1.2)),
    RangeError,
  );
});

Deno.test("addRunToMetrics() counts statuses, durations and the latest-started run", () => {
  let m = emptyMetrics("f", "*", 0);
  const runs = [
    { id: "b", status: "failed", startedAt: 2000, durationMs: 30 },
    { id: "a", status: "succeeded", startedAt: 1000, durationMs: 10 },
    { id: "d", status: "timed-out", startedAt: 1500, durationMs: 500 },
    { id: "c", status: "cancelled", startedAt: 1200, durationMs: 0 },
    { id: "e", status: "succeeded", startedAt: 1800, durationMs: 20 },
  ] as const;
  for (const run of runs) m = addRunToMetrics(m, run, 99);
  assert.equal(m.count, 5);
  assert.equal(m.succeeded, 2);
  assert.equal(m.failed, 1);
  assert.equal(m.cancelled, 1);
  assert.equal(m.timedOut, 1);
  assert.equal(m.totalDurationMs, 560);
  assert.equal(m.minDurationMs, 0);
  assert.equal(m.maxDurationMs, 500);
  assert.equal(m.lastRunAt, 2000);
  assert.equal(m.lastRunId, "b");
  assert.equal(m.lastStatus, "failed");
  assert.equal(m.updatedAt, 99);
  assert.equal(histogramCount(m.histogram), 5);
  assert.ok(Math.abs(m.p50DurationMs! - 20) / 20 <= HISTOGRAM_RELATIVE_ERROR);
  assert.equal(m.p95DurationMs, 500);
});

Deno.test("addRunToMetrics() rejects a running run and a missing duration", () => {
  const m = emptyMetrics("f", "*", 0);
  assert.throws(
    () => addRunToMetrics(m, { id: "a", status: "running", startedAt: 0, durationMs: 1 }, 0),
    RangeError,
  );
  assert.throws(
    () => addRunToMetrics(m, { id: "a", status: "failed", startedAt: 0, durationMs: null }, 0),
    RangeError,
  );
});
