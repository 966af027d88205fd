/**
 * The retention job on a sqlite store full of runs, beside the raw baseline:
 * a bare node:sqlite range delete (`DELETE … WHERE key > ? AND key < ?`) of
 * exactly the same rows, on a copy of the same file.
 *
 * The store holds N runs of 10 flows spread evenly over 300 days (all
 * `succeeded`, with four events each, stored as `Records` stores a finished
 * run: the record with its events inline, and its flow index entry; 2 entries
 * per run); retention runs with `maxAge: "30d", maxRuns: null`, so the oldest
 * 90% go, and those rows are one key range per prefix, which the baseline
 * deletes in one transaction. Both use `durability: "full"` (the default).
 *
 * Run the full measurement (default 1,000,000 runs; seeding takes a while).
 * Retention and the raw delete each run in a fresh child process, so the
 * reported memory is the job's own (peak RSS and heap during the run, minus
 * the process's figures once the store is open):
 *
 *   deno run --allow-read --allow-write --allow-env --allow-run --allow-sys bench/retention_bench.ts [runs] [--live-heap] [--mixed]
 *
 * `--mixed` makes 2% of the runs failed and 0.1% cancelled and runs the job
 * with its defaults (`maxAge: 30d, failedMaxAge: 90d, maxRuns: 1000`): the
 * age windows then cut around the failed runs kept longer, and the newest
 * 100,000 runs go by count, run by run. Its baseline deletes exactly the rows
 * of the runs the rules doom (computed independently) with one keyed
 * `DELETE` each, in one transaction.
 *
 * `--live-heap` runs retention once more with `--expose-gc`, collecting garbage
 * at every progress report, and reports the largest heap left after a
 * collection: what the job really keeps alive (peak RSS also counts garbage
 * V8 has not collected yet).
 *
 * `RETENTION_BENCH_FLOWS=1000` spreads the runs over that many flows instead of 10.
 *
 * `deno task bench` runs the same comparison with 20,000 runs.
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { openStore } from "../src/plugin.ts";
import { runJob } from "../src/jobs/run.ts";
import { createProgress, type Progress } from "../src/jobs/progress.ts";
import { openRuntime } from "../src/runtime.ts";
import { EVENTS_FIELD } from "../src/records/layout.ts";
import { Records } from "../src/records/records.ts";
import { encodeKey } from "../src/store/keys.ts";
import type { Key } from "../src/store/types.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);
const SPAN = 300 * DAY;
const MAX_AGE = 30 * DAY;
const FAILED_MAX_AGE = 90 * DAY;
const MAX_RUNS = 1000;
const FLOWS = Array.from(
  { length: Number(Deno.env.get("RETENTION_BENCH_FLOWS") ?? 10) },
  (_, i) => `flow-${i}`,
);
const P = "flowstate";

function runId(startedAt: number, i: number): string {
  return startedAt.toString(36).padStart(9, "0") + i.toString(36).padStart(11, "0");
}

function startOf(i: number, n: number): number {
  return NOW - SPAN + Math.floor((i * SPAN) / n);
}

/** Run i's status: all succeeded, or (`mixed`) 2% failed and 0.1% cancelled. */
function statusOf(i: number, mixed: boolean): "succeeded" | "failed" | "cancelled" {
  if (!mixed) return "succeeded";
  return i % 1000 === 7 ? "cancelled" : i % 50 === 3 ? "failed" : "succeeded";
}

/** The job options of a scenario: age only, or the job's defaults (30d, failed 90d, 1000 per flow). */
function optionsOf(mixed: boolean): Record<string, unknown> {
  return mixed ? {} : { maxAge: "30d", maxRuns: null };
}

/** The runs the job must delete, by the rules written out independently of it. */
function doomedRuns(n: number, mixed: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const age = NOW - startOf(i, n);
    if (!mixed) {
      if (age > MAX_AGE) out.push(i);
      continue;
    }
    const limit = statusOf(i, mixed) === "failed" ? FAILED_MAX_AGE : MAX_AGE;
    const rank = Math.floor((n - 1 - i) / FLOWS.length); // newer runs of the same flow
    if (age > limit || rank >= MAX_RUNS) out.push(i);
  }
  return out;
}

/** Write N runs in the records key layout, in big atomic commits. */
async function seed(path: string, n: number, mixed: boolean): Promise<void> {
  const store = await openStore({ plugin: "sqlite", path, durability: "relaxed" });
  try {
    const perCommit = 5000;
    for (let i = 0; i < n;) {
      const op = store.atomic();
      for (let j = 0; j < perCommit && i < n; j++, i++) {
        const startedAt = startOf(i, n);
        const id = runId(startedAt, i);
        const flowId = FLOWS[i % FLOWS.length];
        const status = statusOf(i, mixed);
        const summary = {
          id,
          flowId,
          flowVersion: "3f2a9c0d1e",
          status,
          startedAt,
          endedAt: startedAt + 1200,
          durationMs: 1200,
          error: status === "failed" ? { node: "fetch", message: "timeout" } : null,
        };
        if (status !== "succeeded") {
          op.set([P, "runs-by-status", status, id], summary);
          op.set([P, "runs-by-flow-status", flowId, status, id], summary);
        }
        op.set([P, "runs", id], {
          ...summary,
          inputs: { day: "2026-01-01" },
          outputs: { rows: i },
          nodes: {
            fetch: { status: "succeeded", attempts: 1, output: { rows: i } },
            store: { status: "succeeded", attempts: 1 },
          },
          [EVENTS_FIELD]: [
            { at: startedAt, type: "run.start" },
            { at: startedAt + 1, type: "node.start", node: "fetch" },
            { at: startedAt + 1100, type: "node.end", node: "fetch", status: "succeeded" },
            { at: startedAt + 1200, type: "run.end" },
          ],
        });
        op.set([P, "runs-by-flow", flowId, id], summary);
      }
      const result = await op.commit();
      if (!result.ok) throw new Error("seeding conflicted");
    }
    // The hand-written layout must read back as Records writes it.
    const records = new Records(store);
    const [newest] = (await records.listRunSummaries({ flowId: FLOWS[(n - 1) % FLOWS.length] }))
      .runs;
    const events = await records.getEvents(newest.id);
    if (events.length !== 4 || newest.id !== runId(startOf(n - 1, n), n - 1)) {
      throw new Error(`seeded runs do not read back: ${JSON.stringify(newest)}`);
    }
  } finally {
    await store.close(); // checkpoints the WAL into the file
  }
}

interface RetentionFigures {
  ms: number;
  deleted: number;
  scanned: number;
  batches: number;
  peakRssDeltaBytes: number;
  peakHeapDeltaBytes: number;
  /** Growth of the heap left after a forced GC, at its largest (0 unless run with --expose-gc). */
  liveHeapBytes: number;
}

/** Run the retention job on the file, sampling RSS at every progress report. */
async function timeRetention(
  path: string,
  home: string,
  mixed: boolean,
): Promise<RetentionFigures> {
  const rt = await openRuntime({
    config: { stores: { default: { plugin: "sqlite", path } } },
    home,
    cwd: home,
    clock: { now: () => NOW },
  });
  try {
    await rt.store();
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const before = Deno.memoryUsage();
    let peakRss = before.rss;
    let peakHeap = before.heapUsed;
    let liveHeap = 0;
    const inner = createProgress({ mode: "quiet" });
    // With --v8-flags=--expose-gc: collect at every report to see what is really kept alive.
    const sample = () => {
      if (gc) {
        gc();
        liveHeap = Math.max(liveHeap, Deno.memoryUsage().heapUsed - before.heapUsed);
      }
      const now = Deno.memoryUsage();
      peakRss = Math.max(peakRss, now.rss);
      peakHeap = Math.max(peakHeap, now.heapUsed);
    };
    const progress: Progress = {
      get state() {
        return inner.state;
      },
      start: (label, total) => (sample(), inner.start(label, total)),
      advance: (k) => (sample(), inner.advance(k)),
      update: (done) => (sample(), inner.update(done)),
      finish: (message) => (sample(), inner.finish(message)),
    };
    const started = performance.now();
    const run = await runJob(rt, "retention", {
      options: optionsOf(mixed),
      progress,
    });
    const ms = performance.now() - started;
    sample();
    if (run.status !== "succeeded") {
      throw new Error(`retention ${run.status}: ${run.error?.message}`);
    }
    const out = run.outputs as { deleted: number; scanned: number; batches: number };
    return {
      ms,
      ...out,
      peakRssDeltaBytes: peakRss - before.rss,
      peakHeapDeltaBytes: peakHeap - before.heapUsed,
      liveHeapBytes: liveHeap,
    };
  } finally {
    await rt.close();
  }
}

/**
 * Delete the same rows in one transaction: with bare range deletes (age only),
 * or (mixed) with one keyed `DELETE` per row of the runs the rules doom.
 */
function timeRawDelete(path: string, n: number, mixed: boolean): { ms: number; rows: number } {
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    if (mixed) {
      const keys: Uint8Array[] = [];
      for (const i of doomedRuns(n, mixed)) {
        const id = runId(startOf(i, n), i);
        const flowId = FLOWS[i % FLOWS.length];
        const status = statusOf(i, mixed);
        keys.push(encodeKey([P, "runs", id]), encodeKey([P, "runs-by-flow", flowId, id]));
        if (status !== "succeeded") {
          keys.push(
            encodeKey([P, "runs-by-status", status, id]),
            encodeKey([P, "runs-by-flow-status", flowId, status, id]),
          );
        }
      }
      const del = db.prepare("DELETE FROM flowstate_entries WHERE key = ?");
      const started = performance.now();
      let rows = 0;
      db.exec("BEGIN IMMEDIATE");
      for (const key of keys) rows += Number(del.run(key).changes);
      db.exec("COMMIT");
      return { ms: performance.now() - started, rows };
    }
    const cutoff = (NOW - MAX_AGE).toString(36).padStart(9, "0");
    const prefixes: Key[] = [[P, "runs"], ...FLOWS.map((f) => [P, "runs-by-flow", f])];
    const del = db.prepare("DELETE FROM flowstate_entries WHERE key > ? AND key < ?");
    const started = performance.now();
    let rows = 0;
    db.exec("BEGIN IMMEDIATE");
    for (const prefix of prefixes) {
      rows += Number(del.run(encodeKey(prefix), encodeKey([...prefix, cutoff])).changes);
    }
    db.exec("COMMIT");
    return { ms: performance.now() - started, rows };
  } finally {
    db.close();
  }
}

/** Run one measurement in a fresh process (so its memory is the job's alone); its JSON result. */
async function inChild(args: string[], v8Flags: string[] = []): Promise<Record<string, number>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : []),
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      import.meta.filename!,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`measurement ${args[0]} failed: ${new TextDecoder().decode(stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(stdout));
}

/** Seed a store, copy it, and time retention on one copy and the raw delete on the other. */
async function compare(
  n: number,
  liveHeap: boolean,
  mixed: boolean,
): Promise<Record<string, number | string>> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-retention-bench-" });
  try {
    const path = join(dir, "state.db");
    const rawPath = join(dir, "raw.db");
    const started = performance.now();
    await seed(path, n, mixed);
    const seedMs = performance.now() - started;
    await Deno.copyFile(path, rawPath);
    if (liveHeap) await Deno.copyFile(path, join(dir, "pristine.db"));
    const dbFileBytes = (await Deno.stat(path)).size;
    const mode = mixed ? "mixed" : "age";
    const retention = await inChild(["--measure-retention", path, dir, mode]);
    const raw = await inChild(["--measure-raw", rawPath, String(n), mode]);
    let live: Record<string, number> | undefined;
    if (liveHeap) {
      // Once more on a fresh copy, collecting garbage at every progress report.
      await Deno.rename(join(dir, "pristine.db"), path);
      live = await inChild(["--measure-retention", path, dir, mode], ["--expose-gc"]);
    }
    const doomed = doomedRuns(n, mixed);
    const expected = doomed.length;
    const rows = doomed.reduce((sum, i) => sum + (statusOf(i, mixed) === "succeeded" ? 2 : 4), 0);
    if (retention.deleted !== expected || raw.rows !== rows) {
      throw new Error(
        `different work: retention deleted ${retention.deleted} runs, raw ${raw.rows} rows, expected ${expected} runs`,
      );
    }
    const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
    return {
      scenario: mixed
        ? "job defaults (maxAge 30d, failedMaxAge 90d, maxRuns 1000); 2% failed, 0.1% cancelled"
        : "maxAge 30d, maxRuns null; all succeeded",
      runs: n,
      deleted: retention.deleted,
      seedMs: Math.round(seedMs),
      retentionMs: Math.round(retention.ms),
      retentionRunsDeletedPerSec: Math.round(retention.deleted / (retention.ms / 1000)),
      indexEntriesRead: retention.scanned,
      batches: retention.batches,
      rawDeleteMs: Math.round(raw.ms),
      rawRunsDeletedPerSec: Math.round(expected / (raw.ms / 1000)),
      ratio: Math.round((retention.ms / raw.ms) * 10) / 10,
      peakRssDeltaMB: mb(retention.peakRssDeltaBytes),
      peakHeapUsedDeltaMB: mb(retention.peakHeapDeltaBytes),
      ...(live
        ? {
          liveHeapGrowthMB: mb(live.liveHeapBytes),
          peakRssDeltaWithGcMB: mb(live.peakRssDeltaBytes),
        }
        : {}),
      dbFileMB: mb(dbFileBytes),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main && Deno.args[0] === "--measure-retention") {
  console.log(
    JSON.stringify(await timeRetention(Deno.args[1], Deno.args[2], Deno.args[3] === "mixed")),
  );
} else if (import.meta.main && Deno.args[0] === "--measure-raw") {
  console.log(
    JSON.stringify(timeRawDelete(Deno.args[1], Number(Deno.args[2]), Deno.args[3] === "mixed")),
  );
} else if (import.meta.main) {
  const args = Deno.args.filter((a) => !a.startsWith("--"));
  const n = Number(args[0] ?? 1_000_000);
  if (!Number.isInteger(n) || n < 10) {
    throw new RangeError(`runs must be an integer >= 10 (got ${args[0]})`);
  }
  const result = await compare(n, Deno.args.includes("--live-heap"), Deno.args.includes("--mixed"));
  console.log(JSON.stringify(result, null, 2));
} else {
  const N = 20_000;
  for (const which of ["raw", "retention"] as const) {
    Deno.bench({
      name: which === "raw"
        ? `retention of ${N} runs: raw node:sqlite range delete of the same rows`
        : `retention of ${N} runs: retention job (sqlite)`,
      group: "retention",
      baseline: which === "raw",
      n: 1,
      warmup: 0,
      async fn(b) {
        const dir = await Deno.makeTempDir({ prefix: "flowstate-retention-bench-" });
        try {
          const path = join(dir, "state.db");
          await seed(path, N, false);
          b.start();
          if (which === "raw") timeRawDelete(path, N, false);
          else await timeRetention(path, dir, false);
          b.end();
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    });
  }
}
