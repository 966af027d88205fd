/**
 * The `retention` job: deletes old run records and their events, by age and
 * by count per flow, keeping failed runs longer and never touching a run that
 * is still `running`.
 *
 * ```yaml
 * jobs:
 *   retention:
 *     schedule: "0 3 * * *"
 *     options: { maxAge: 30d, failedMaxAge: 90d, maxRuns: 1000 }
 * ```
 *
 * Which runs go (each flow id separately; the runs of a job are the flow
 * `job:<name>`, so they are counted on their own):
 * - A run that is `running` is never deleted, whatever its age or rank.
 * - A run that started more than `maxAge` ago is deleted; a *failed* run
 *   (status `failed` or `timed-out`) only once it started more than
 *   `failedMaxAge` ago. A `cancelled` run counts as an ordinary run: it was
 *   stopped on purpose (Ctrl-C, a shutdown), so there is no error to keep for
 *   debugging. A run's start time is the one its id encodes
 *   (`runIdTime()`), as for `Records.listRuns({ since, until })`.
 * - Only the newest `maxRuns` runs of each flow are kept (every run counts
 *   towards the rank, running ones too); older ones are deleted whatever their
 *   status, `running` aside. The count limit is what bounds storage, so failed
 *   runs are not exempt from it.
 * - `null` switches a limit off; `flows` limits the job to some flow ids.
 *
 * How, so that a store of millions of runs is pruned quickly in bounded
 * memory:
 * 1. With `maxRuns`, each flow's `runs-by-flow` index is read newest first
 *    for its `maxRuns + 1` newest entries, which gives the newest run beyond
 *    the count (one id per flow is kept in memory).
 * 2. The `runs-by-status` index of each final status (or, with `flows`,
 *    `runs-by-flow-status`) is read oldest first, one page at a time, and
 *    only up to the newest run any limit can delete: runs that are kept by
 *    every limit are not read at all.
 * 3. The runs to delete are removed in batches of `batchSize` runs, one
 *    atomic commit per batch (the run record, its three index entries and
 *    its event chunks), in run id order, which is time order: a batch touches
 *    a few contiguous key ranges, not pages all over the store. A batch does
 *    not read a run's events first: chunk `0` is deleted and chunk `1` is
 *    checked to be absent in the same commit; a run with more chunks fails
 *    that check, and the commit is retried with that run's chunks listed.
 *
 * Metrics are aggregates kept apart from the runs, so they are not changed.
 * Cancelling (`ctx.signal`) stops between batches: every run is either fully
 * deleted or untouched. A dry run reads the same entries and reports what it
 * would delete, without writing.
 *
 * @module
 */
import { z } from "zod";
import { durationProblem, parseDuration } from "../src/flow/duration.ts";
import type { Duration, RunStatus } from "../src/flow/types.ts";
import { defineJob, type Job, type JobContext } from "../src/jobs/job.ts";
import type { RunSummary } from "../src/records/records.ts";
import type { AtomicOperation, Key, Store } from "../src/store/types.ts";

/** Options of the retention job. */
export interface RetentionOptions {
  /** Delete finished runs that started longer ago than this; `null`: no age limit. */
  maxAge: Duration | null;
  /** The age limit of failed runs (`failed`, `timed-out`); `null`: failed runs never age out. */
  failedMaxAge: Duration | null;
  /** Keep at most this many runs per flow id (the newest); `null`: no count limit. */
  maxRuns: number | null;
  /** Only prune runs of these flow ids (default: every flow, jobs included). */
  flows?: string[];
  /** Runs deleted per atomic commit (1 to 10,000). */
  batchSize: number;
}

/** Default options of the retention job. */
export const defaults = {
  maxAge: "30d",
  failedMaxAge: "90d",
  maxRuns: 1000,
  batchSize: 500,
} satisfies Partial<RetentionOptions>;

/** What the retention job reports. In a dry run, the counts are what it would delete. */
export type RetentionResult = {
  /** Runs deleted (`deletedByAge + deletedByCount`). */
  deleted: number;
  /** Runs deleted because they were older than their age limit. */
  deletedByAge: number;
  /** Runs deleted only because they were beyond the newest `maxRuns` of their flow. */
  deletedByCount: number;
  /** Failed runs older than `maxAge` kept because `failedMaxAge` had not passed. */
  keptFailed: number;
  /** Runs still `running` (never deleted), in the flows looked at. */
  keptRunning: number;
  /** Runs skipped because they changed while the job ran (deleted elsewhere, for example). */
  skipped: number;
  /** Index entries read. */
  scanned: number;
  /** Atomic commits that deleted runs. */
  batches: number;
  /** Wall-clock time the job took. */
  durationMs: number;
  /** Whether nothing was written. */
  dryRun: boolean;
  /** Whether the job stopped early because it was cancelled. */
  cancelled: boolean;
};

/** The statuses a run can end with (a `running` run is never deleted). */
const FINAL_STATUSES: readonly RunStatus[] = ["succeeded", "cancelled", "failed", "timed-out"];
/** Statuses kept until `failedMaxAge` rather than `maxAge`. */
const FAILED_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>(["failed", "timed-out"]);
/** The records' key prefix, as the runtime's `Records` uses it. */
const RECORDS_PREFIX: Key = ["flowstate"];
/** Width of an event chunk number in its key (see src/records/records.ts). */
const CHUNK_DIGITS = 8;
/** Index entries read per page. */
const PAGE_SIZE = 500;
/** Run ids start with this many base-36 digits of their creation time in ms. */
const TIME_DIGITS = 9;
const MAX_ID_TIME = 36 ** TIME_DIGITS;

const duration = z.union([z.number(), z.string()]).superRefine((value, ctx) => {
  const problem = durationProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.message });
});

const optionsSchema = z.strictObject({
  maxAge: duration.nullable().default(defaults.maxAge),
  failedMaxAge: duration.nullable().default(defaults.failedMaxAge),
  maxRuns: z.number().int().min(0).nullable().default(defaults.maxRuns),
  flows: z.array(z.string().min(1)).optional(),
  batchSize: z.number().int().min(1).max(10_000).default(defaults.batchSize),
});

/** A run chosen for deletion. */
interface Doomed {
  id: string;
  flowId: string;
  status: RunStatus;
  reason: "age" | "count";
}

/** Keys of the records layout (see the table in src/records/records.ts). */
class Layout {
  readonly prefix: Key;
  constructor(prefix: Key) {
    this.prefix = prefix;
  }
  key(...parts: string[]): Key {
    return [...this.prefix, ...parts];
  }
  chunk(runId: string, n: number): Key {
    return this.key("events", runId, String(n).padStart(CHUNK_DIGITS, "0"));
  }
  /** The run record and its three index entries. */
  runKeys(run: Doomed): Key[] {
    return [
      this.key("runs", run.id),
      this.key("runs-by-flow", run.flowId, run.id),
      this.key("runs-by-status", run.status, run.id),
      this.key("runs-by-flow-status", run.flowId, run.status, run.id),
    ];
  }
}

/**
 * Flow ids with at least one run, in key order, found by skipping from one
 * flow's index entries to the next (one one-entry listing per flow).
 */
async function* flowIdsWithRuns(store: Store, layout: Layout): AsyncGenerator<string> {
  const base = layout.key("runs-by-flow");
  let start: Key | undefined;
  for (;;) {
    let next: string | undefined;
    for await (const e of store.list({ prefix: base, start, limit: 1 })) {
      next = e.key[base.length];
    }
    if (next === undefined) return;
    yield next;
    // The smallest id after `next` in code-point order is `next + "\0"`.
    start = [...base, `${next}\0`];
  }
}

/**
 * Delete a batch of runs in one atomic commit. Each run's chunk 0 is deleted
 * blind with chunk 1 checked absent; runs whose check fails get their chunks
 * listed and the commit is retried. A run that keeps conflicting is skipped.
 * Resolves the runs actually deleted.
 */
async function deleteBatch(store: Store, layout: Layout, batch: Doomed[]): Promise<{
  deleted: Doomed[];
  skipped: Doomed[];
}> {
  let pending = batch;
  const skipped: Doomed[] = [];
  const listed = new Map<string, { keys: Key[]; guard: Key }>();
  for (;;) {
    const op: AtomicOperation = store.atomic();
    for (const run of pending) {
      for (const key of layout.runKeys(run)) op.delete(key);
      const chunks = listed.get(run.id);
      if (chunks === undefined) {
        op.delete(layout.chunk(run.id, 0)).check(layout.chunk(run.id, 1), null);
      } else {
        for (const key of chunks.keys) op.delete(key);
        op.check(chunks.guard, null);
      }
    }
    const result = await op.commit();
    if (result.ok) return { deleted: pending, skipped };
    const runIdAt = layout.prefix.length + 1;
    const conflicting = new Set(result.conflicts.map((key) => key[runIdAt]));
    if (conflicting.size === 0) {
      // A driver that reports no conflicting key: list every run's chunks, then give up.
      for (const run of pending) conflicting.add(run.id);
    }
    const remaining: Doomed[] = [];
    for (const run of pending) {
      if (!conflicting.has(run.id)) {
        remaining.push(run);
      } else if (listed.has(run.id)) {
        skipped.push(run); // its events changed under us twice: leave it for the next run
      } else {
        listed.set(run.id, await listChunks(store, layout, run.id));
        remaining.push(run);
      }
    }
    pending = remaining;
    if (pending.length === 0) return { deleted: [], skipped };
  }
}

/** A run's event chunk keys, and the key after the last one (which must stay absent). */
async function listChunks(
  store: Store,
  layout: Layout,
  runId: string,
): Promise<{ keys: Key[]; guard: Key }> {
  const keys: Key[] = [];
  for await (const e of store.list({ prefix: layout.key("events", runId) })) keys.push(e.key);
  const last = keys.length === 0 ? -1 : parseInt(keys[keys.length - 1].at(-1)!, 10);
  const next = Number.isInteger(last) && last >= keys.length - 1 ? last + 1 : keys.length;
  return { keys, guard: layout.chunk(runId, next) };
}

/** Run ids made at or after `ms` sort at or after this; ids before it sort before. */
function idTimeBound(ms: number): string {
  const t = Math.ceil(ms);
  if (t <= 0) return "";
  return t >= MAX_ID_TIME ? "~" : t.toString(36).padStart(TIME_DIGITS, "0");
}

/** The larger of some string bounds (`null`s ignored). */
function maxBound(...bounds: (string | null)[]): string | null {
  let max: string | null = null;
  for (const b of bounds) if (b !== null && (max === null || b > max)) max = b;
  return max;
}

async function runRetention(ctx: JobContext, options: RetentionOptions): Promise<RetentionResult> {
  const startedAt = performance.now();
  const now = ctx.clock.now();
  const ageBound = (limit: Duration | null, name: string) =>
    limit === null ? null : idTimeBound(now - parseDuration(limit, name));
  /** Runs with an id below these started longer ago than the age limits. */
  const normalCut = ageBound(options.maxAge, "maxAge");
  const failedCut = ageBound(options.failedMaxAge, "failedMaxAge");
  const { maxRuns, batchSize } = options;
  const { dryRun, signal, progress } = ctx;
  const store = await ctx.store(ctx.runtime.config.records);
  const layout = new Layout(RECORDS_PREFIX);
  const flows = options.flows === undefined ? undefined : [...new Set(options.flows)].sort();
  const result: RetentionResult = {
    deleted: 0,
    deletedByAge: 0,
    deletedByCount: 0,
    keptFailed: 0,
    keptRunning: 0,
    skipped: 0,
    scanned: 0,
    batches: 0,
    durationMs: 0,
    dryRun,
    cancelled: false,
  };
  const count = (run: Doomed) => {
    result.deleted++;
    if (run.reason === "age") result.deletedByAge++;
    else result.deletedByCount++;
  };
  let batch: Doomed[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const doomed = batch;
    batch = [];
    const { deleted, skipped } = await deleteBatch(store, layout, doomed);
    for (const run of deleted) count(run);
    result.skipped += skipped.length;
    if (deleted.length > 0) result.batches++;
  };

  progress.start(dryRun ? "retention (dry run): runs scanned" : "retention: runs scanned");
  try {
    // 1. The newest run beyond the count, per flow: runs up to it go.
    const countCuts = new Map<string, string>();
    let newestCountCut: string | null = null;
    if (maxRuns !== null) {
      for await (const flowId of flows ?? flowIdsWithRuns(store, layout)) {
        if (signal.aborted) break;
        const prefix = layout.key("runs-by-flow", flowId);
        let seen = 0;
        let cursor: string | undefined;
        let last: string | undefined;
        while (seen <= maxRuns) {
          const page = store.list<RunSummary>({
            prefix,
            reverse: true,
            cursor,
            limit: Math.min(PAGE_SIZE, maxRuns + 1 - seen),
            batchSize: PAGE_SIZE,
          });
          let n = 0;
          for await (const e of page) {
            n++;
            last = e.key[e.key.length - 1];
          }
          cursor = page.cursor;
          seen += n;
          result.scanned += n;
          if (n === 0) break;
        }
        if (seen > maxRuns && last !== undefined) {
          countCuts.set(flowId, last);
          newestCountCut = maxBound(newestCountCut, last);
        }
        progress.update(result.scanned);
      }
    }

    // 2. Each final status's index, oldest first, up to the newest run a limit can delete.
    const streams: { prefix: Key; status: RunStatus }[] = [];
    for (const status of FINAL_STATUSES) {
      if (flows === undefined) {
        streams.push({ prefix: layout.key("runs-by-status", status), status });
      } else {
        for (const f of flows) {
          streams.push({ prefix: layout.key("runs-by-flow-status", f, status), status });
        }
      }
    }
    streams: for (const { prefix, status } of streams) {
      if (signal.aborted) break;
      const failed = FAILED_STATUSES.has(status);
      const ageCut = failed ? failedCut : normalCut;
      // Failed runs are read up to the normal age limit too, to count those kept longer.
      const bound = maxBound(
        ageCut,
        failed ? normalCut : null,
        newestCountCut === null ? null : `${newestCountCut}\0`,
      );
      if (bound === null || bound === "") continue;
      const end = [...prefix, bound];
      let cursor: string | undefined;
      for (;;) {
        const page = store.list<RunSummary>({
          prefix,
          end,
          cursor,
          limit: PAGE_SIZE,
          batchSize: PAGE_SIZE,
        });
        let n = 0;
        for await (const { key, value: run } of page) {
          n++;
          const id = key[key.length - 1];
          const countCut = countCuts.get(run.flowId);
          let reason: Doomed["reason"] | undefined;
          if (ageCut !== null && id < ageCut) reason = "age";
          else if (countCut !== undefined && id <= countCut) reason = "count";
          if (reason === undefined) {
            if (failed && normalCut !== null && id < normalCut) result.keptFailed++;
            continue;
          }
          const doomed: Doomed = { id, flowId: run.flowId, status, reason };
          if (dryRun) count(doomed);
          else batch.push(doomed);
        }
        cursor = page.cursor;
        result.scanned += n;
        progress.update(result.scanned);
        // Whole batches, in id order; what is left waits for the next page.
        while (batch.length >= batchSize) {
          if (signal.aborted) break streams;
          const rest = batch.slice(batchSize);
          batch = batch.slice(0, batchSize);
          await flush();
          batch = rest;
        }
        if (n < PAGE_SIZE) break;
        if (signal.aborted) break streams;
      }
    }
    if (!signal.aborted) await flush();

    const running = flows === undefined
      ? [layout.key("runs-by-status", "running")]
      : flows.map((f) => layout.key("runs-by-flow-status", f, "running"));
    for (const prefix of running) result.keptRunning += await store.count(prefix);
  } finally {
    result.cancelled = signal.aborted;
    result.durationMs = Math.round(performance.now() - startedAt);
    progress.finish(
      `${dryRun ? "would delete" : "deleted"} ${result.deleted} runs ` +
        `(${result.deletedByAge} by age, ${result.deletedByCount} by count; ` +
        `${result.keptFailed} failed runs kept longer; ${result.scanned} index entries read)` +
        (result.cancelled ? "; cancelled" : ""),
    );
  }
  if (result.skipped > 0) {
    ctx.log(
      `${result.skipped} runs changed while being deleted and were left for the next run`,
      "warn",
    );
  }
  return result;
}

/**
 * The retention job. Run it with `flowstate jobs run retention`, or
 * `runJob(runtime, "retention", { options })`.
 */
const retentionJob: Job<RetentionOptions> = defineJob<RetentionOptions>({
  name: "retention",
  description:
    "deletes old runs and their events: by age, by count per flow, failed runs kept longer",
  optionsSchema,
  defaults,
  defaultSchedule: "0 3 * * *",
  run: runRetention,
});

export default retentionJob;
