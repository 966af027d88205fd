/**
 * Pruning runs: the records' own operation behind the `retention` job
 * (`Records.prune()`). It knows the records' key layout and prefix
 * (`layout.ts`) and the run-id format (`run_id.ts`); the job only parses its
 * options and calls it.
 *
 * Which runs go (each flow id separately; the runs of a job are the flow
 * `job:<name>`, so they are counted on their own):
 * - A run that is `running` is never deleted, whatever its age or rank.
 * - A run that ended more than `maxAge` ago is deleted; a *failed* run
 *   (status `failed` or `timed-out`) only once it ended more than
 *   `failedMaxAge` ago. A `cancelled` run counts as an ordinary run: it was
 *   stopped on purpose (Ctrl-C, a shutdown), so there is no error to keep for
 *   debugging. A run is aged from its end, not from the time its id encodes
 *   (its enqueue time, for a queued run): a run delayed or queued for longer
 *   than `maxAge` is kept for `maxAge` after it ran. (Runs that ended within a
 *   minute of their id's time may be kept up to a minute longer.)
 * - Only the newest `maxRuns` runs of each flow are kept (every run counts
 *   towards the rank, running ones too); older ones are deleted whatever their
 *   status, `running` aside. The count limit is what bounds storage, so failed
 *   runs are not exempt from it.
 * - `null` switches a limit off; `flows` limits the job to some flow ids.
 *
 * How, so that a store of a million runs is pruned in seconds and in bounded
 * memory (see src/records/layout.ts for the keys):
 * 1. With `maxRuns`, each flow's index is read newest first for its
 *    `maxRuns + 1` newest entries, which gives the newest run beyond the
 *    count (one id per flow is kept in memory).
 * 2. **Every flow: range deletes in time windows.** Run ids start with their
 *    start (or enqueue) time, which is never after their end, so the runs a
 *    limit can doom all lie below one id: the newer of maxAge's cut and the
 *    newest run beyond any flow's count. Below the *safe cut* (maxAge and a
 *    minute, `LATE_END_MS`), every run ended more than maxAge ago except those
 *    the `runs-ended-late` index lists (written by `finishRun` for a run that
 *    ended over a minute after its id's time: a run queued for long, a long
 *    run); those that ended less than maxAge ago are kept. Between the two
 *    cuts (a minute of runs) the flows' indexes are read and each run is aged
 *    by its end. The
 *    job walks the run records up to it, oldest first, in time windows of
 *    about `batchSize` runs (with more than 100 flows, 50 runs per flow, up to
 *    100,000: each flow costs a seek per window; counted with `store.count()`; a window shrinks
 *    or grows to keep that size, skips empty stretches, and never straddles
 *    maxAge's cut), and deletes each window with one atomic commit of range
 *    deletes (`atomic().clear()`) over the run records, the events and each
 *    flow's index, cut around the runs the window keeps. Those are found
 *    without reading the doomed runs: the status indexes hold every run that
 *    is not `succeeded` (so the running ones, and the failed ones younger
 *    than `failedMaxAge`, are listed), and above maxAge's cut the runs a
 *    flow keeps are its index entries newer than its count cut, at most
 *    `maxRuns` per flow in all. A running run's index entry is checked in
 *    the commit, so a run that finishes meanwhile makes the window start
 *    over. Succeeded runs that go are never read.
 * 3. When failed runs age out sooner than the others (`failedMaxAge` below
 *    `maxAge`), those above the windows are listed by the status indexes and
 *    deleted one by one.
 * 4. With `flows`, other flows' runs share the ranges, so each listed flow's
 *    index is read oldest first and its runs are deleted one by one, in
 *    atomic batches (`batchSize` runs, at most 1,000: the record, its index
 *    entries and a range delete of its events).
 *
 * 5. With `maxAge`, flow versions go too: those created more than `maxAge`
 *    ago that are not their flow's current version and that no run left
 *    refers to. Their per-version metrics are folded into the flow's
 *    `"*pruned"` metrics; the flow's `"*"` totals are kept apart and never
 *    change. How a run starting on such a version meanwhile is kept safe is
 *    in `_prune_versions.ts`.
 *
 * Metrics are aggregates kept apart from the runs, so pruning runs does not change them.
 * Cancelling (`ctx.signal`) stops between commits: every run is either fully
 * deleted or untouched. A dry run reads the same entries and reports what it
 * would delete, without writing.
 *
 * @module
 */
import type { AtomicOperation, Key, Store } from "../store/types.ts";
import { type EndedLate, INDEXED_STATUSES, LATE_END_MS, type RecordsLayout } from "./layout.ts";
import { runIdBoundTime, runIdTime, runIdTimeBound } from "./run_id.ts";
import type { RunStatus, RunSummary } from "./types.ts";
import { childNames } from "../store/children.ts";

/**
 * What {@linkcode pruneRuns} deletes, and how it reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { PruneOptions } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * for (let i = 0; i < 3; i++) {
 *   await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * }
 * const keepNewest: PruneOptions = {
 *   maxAge: null,
 *   failedMaxAge: null,
 *   maxRuns: 1, // per flow
 *   batchSize: 1_000,
 *   now: Date.now(),
 * };
 * const records = await rt.records();
 * assert.equal((await records.prune(keepNewest)).deletedByCount, 2);
 * assert.equal((await records.listRuns({ flowId: "hi" })).runs.length, 1);
 * ```
 */
export interface PruneOptions {
  /** Delete finished runs that started longer ago than this (ms); `null`: no age limit. */
  maxAge: number | null;
  /** The age limit of failed runs (`failed`, `timed-out`), in ms; `null`: they never age out. */
  failedMaxAge: number | null;
  /** Keep at most this many runs per flow id (the newest); `null`: no count limit. */
  maxRuns: number | null;
  /** Only prune runs of these flow ids (default: every flow, jobs included). */
  flows?: string[];
  /**
   * Runs deleted per atomic commit (1 to 100,000): the size of an age window;
   * runs deleted one by one (by count, or with `flows`) go at most 1,000 per commit.
   */
  batchSize: number;
  /** The time ages are measured from (ms since the epoch). */
  now: number;
  /** Report what would be deleted without writing. */
  dryRun?: boolean;
  /** Stops between commits: every run is either fully deleted or untouched. */
  signal?: AbortSignal;
  /** Progress in phases (a job passes its terminal progress). */
  progress?: PruneProgress;
  /** The first word of progress labels (default `"prune"`). */
  label?: string;
  /** Receives warnings (runs left for the next time). */
  onWarning?: (message: string) => void;
}

/**
 * Where {@linkcode pruneRuns} reports progress: phases with a count and an optional total.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type PruneProgress, Records } from "@flowstate/core/records";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const phases: string[] = [];
 * const progress: PruneProgress = {
 *   start: (label) => phases.push(label),
 *   update: () => {},
 *   finish: () => phases.push("finished"),
 * };
 * await new Records(store).prune({
 *   maxAge: 86_400_000,
 *   failedMaxAge: null,
 *   maxRuns: null,
 *   batchSize: 100,
 *   now: Date.now(),
 *   progress,
 * });
 * assert.equal(phases.at(-1), "finished");
 * ```
 */
export interface PruneProgress {
  /** A new phase begins (its count starts at zero). */
  start(label: string, total?: number): void;
  /** The phase's count so far. */
  update(done: number): void;
  /** Pruning ended. */
  finish(message?: string): void;
}

const SILENT: PruneProgress = { start() {}, update() {}, finish() {} };

function checkPruneOptions(options: PruneOptions): void {
  const what = "Cannot prune runs";
  for (const name of ["maxAge", "failedMaxAge"] as const) {
    const v = options[name];
    if (v !== null && !(typeof v === "number" && v >= 0 && Number.isFinite(v))) {
      throw new RangeError(`${what}: ${name} must be null or a number of ms >= 0 (got ${v})`);
    }
  }
  const { maxRuns, batchSize, now } = options;
  if (maxRuns !== null && !(Number.isInteger(maxRuns) && maxRuns >= 0)) {
    throw new RangeError(`${what}: maxRuns must be null or an integer >= 0 (got ${maxRuns})`);
  }
  if (!(Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= 100_000)) {
    throw new RangeError(
      `${what}: batchSize must be an integer from 1 to 100,000 (got ${batchSize})`,
    );
  }
  if (!Number.isFinite(now)) throw new RangeError(`${what}: now must be a time in ms (got ${now})`);
}

/**
 * What pruning did. In a dry run, the counts are what it would delete.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, type PruneResult, Records } from "@flowstate/core/records";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const result: PruneResult = await new Records(store).prune({
 *   maxAge: 86_400_000,
 *   failedMaxAge: null,
 *   maxRuns: 100,
 *   batchSize: 1_000,
 *   now: Date.now(),
 *   dryRun: true,
 * });
 * assert.equal(result.deleted, result.deletedByAge + result.deletedByCount);
 * assert.equal(result.dryRun, true);
 * ```
 */
export type PruneResult = {
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
  /** Runs left for the next run because a window kept changing while it was deleted. */
  skipped: number;
  /** Index entries read (succeeded runs deleted by age are counted, never read). */
  scanned: number;
  /** Atomic commits that deleted runs. */
  batches: number;
  /** Wall-clock time pruning took. */
  durationMs: number;
  /** Whether nothing was written. */
  dryRun: boolean;
  /** Whether pruning stopped early because it was cancelled. */
  cancelled: boolean;
  /**
   * Flow versions deleted: created more than `maxAge` ago, not their flow's
   * current version, and referred to by no run left (see `_prune_versions.ts`).
   * Their metrics are folded into their flow's `"*pruned"` metrics. A dry
   * run counts those that only the runs it would delete refer to too (as the
   * real run deletes them, once those runs are gone).
   */
  versionsDeleted: number;
  /** Flow versions left for the next run: saved again, or changed, while being deleted. */
  versionsSkipped: number;
};

/** Statuses kept until `failedMaxAge` rather than `maxAge`. */
const FAILED_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>(["failed", "timed-out"]);
/** Index entries read per page. */
const PAGE_SIZE = 1000;

/** A run chosen for deletion, one by one (steps 2 and 3). */
interface Doomed {
  id: string;
  flowId: string;
  status: RunStatus;
  reason: "age" | "count";
}

/** Flow ids with at least one run, in key order (a skip scan of the flow index). */
function flowIdsWithRuns(store: Store, layout: RecordsLayout): Promise<string[]> {
  return Array.fromAsync(childNames(store, layout.key("runs-by-flow")));
}

/** The first run id in a flow's index at or after `from`, if it is before `before`. */
async function firstRunOf(
  store: Store,
  layout: RecordsLayout,
  flowId: string,
  from: string | undefined,
  before: string,
): Promise<string | undefined> {
  const prefix = layout.byFlow(flowId);
  const start = from === undefined ? undefined : [...prefix, from];
  for await (const e of store.list({ prefix, start, end: [...prefix, before], limit: 1 })) {
    return e.key[prefix.length];
  }
  return undefined;
}

/** The larger of some string bounds (`null`s ignored). */
function maxBound(...bounds: (string | null)[]): string | null {
  let max: string | null = null;
  for (const b of bounds) if (b !== null && (max === null || b > max)) max = b;
  return max;
}

/** Key bounds for the run ids `[lo, hi)` under `prefix` (`lo` absent: from the first). */
function idRange(prefix: Key, lo: string | undefined, hi: string): { start?: Key; end: Key } {
  return lo === undefined
    ? { end: [...prefix, hi] }
    : { start: [...prefix, lo], end: [...prefix, hi] };
}

/**
 * Delete the entries of run ids `[lo, hi)` under `prefix`, except those of
 * the `keep` ids (sorted, within the range) and anything under them.
 */
function clearAround(
  op: AtomicOperation,
  prefix: Key,
  lo: string | undefined,
  hi: string,
  keep: readonly string[],
): void {
  let start: Key | undefined = lo === undefined ? undefined : [...prefix, lo];
  for (const id of keep) {
    op.clear(prefix, { start, end: [...prefix, id] });
    start = [...prefix, `${id}\0`]; // after the id and every key under it
  }
  op.clear(prefix, { start, end: [...prefix, hi] });
}

/**
 * Delete runs one by one in one atomic commit: record, index entries (with
 * `legacy`, those a 0.1 store may have too), events.
 */
async function deleteBatch(
  store: Store,
  layout: RecordsLayout,
  batch: Doomed[],
  legacy: boolean,
): Promise<void> {
  const op = store.atomic();
  for (const run of batch) {
    op.delete(layout.run(run.id));
    for (const key of legacy ? layout.allIndexKeys(run) : layout.indexKeys(run)) op.delete(key);
    op.clear(layout.events(run.id));
    op.delete(layout.endedLate(run.id));
    op.delete(layout.onFailure(run.id));
  }
  const result = await op.commit();
  if (!result.ok) throw new Error("Cannot prune runs: a commit without checks reported a conflict");
}

/** With more flows than this having runs in the range, windows grow with the number of flows. */
const MANY_FLOWS = 100;
/** How many runs per flow a window aims at when there are many flows. */
const RUNS_PER_FLOW_WINDOW = 50;
/** The largest window that growth aims at. */
const MAX_WINDOW_RUNS = 100_000;

/** The most runs deleted one by one in one commit. */
const MAX_KEYED_BATCH = 1000;

/** Tries of one age window whose running runs keep finishing before it is left for the next run. */
const WINDOW_ATTEMPTS = 10;

/**
 * Prune runs from the records under `layout` in `store`: what
 * `Records.prune()` does (see the module doc).
 */
export async function pruneRuns(
  store: Store,
  layout: RecordsLayout,
  options: PruneOptions,
): Promise<PruneResult> {
  const startedAt = performance.now();
  checkPruneOptions(options);
  const now = options.now;
  const ageBound = (limit: number | null) => limit === null ? null : runIdTimeBound(now - limit);
  /**
   * Runs with an id below these started longer ago than the age limits (a run ends after its
   * id's time: none above them has aged out).
   */
  const normalCut = ageBound(options.maxAge);
  const failedCut = ageBound(options.failedMaxAge);
  /**
   * Runs with an id below this ended longer ago than `maxAge`, unless the index of runs that
   * ended late lists them (see `LATE_END_MS`): those are deleted without being read.
   */
  const safeCut = options.maxAge === null
    ? null
    : runIdTimeBound(now - options.maxAge - LATE_END_MS);
  const { maxRuns, batchSize } = options;
  const dryRun = options.dryRun ?? false;
  const signal = options.signal ?? new AbortController().signal;
  const progress = options.progress ?? SILENT;
  const only = options.flows === undefined ? undefined : [...new Set(options.flows)].sort();
  const result: PruneResult = {
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
    versionsDeleted: 0,
    versionsSkipped: 0,
  };
  /** Every flow is pruned: step 1 works with range deletes. */
  const ranged = only === undefined;
  /** Whether a run that ended at `endedAt` did so longer ago than `limit`. */
  const older = (limit: number | null, endedAt: number | null, id: string): boolean =>
    limit !== null && (endedAt ?? runIdTime(id)) < now - limit;
  /** Whether a run with this status, end and id ended longer ago than its age limit. */
  const aged = (status: RunStatus, endedAt: number | null, id: string): boolean =>
    older(FAILED_STATUSES.has(status) ? options.failedMaxAge : options.maxAge, endedAt, id);

  const label = (what: string) =>
    `${options.label ?? "prune"}${dryRun ? " (dry run)" : ""}: ${what}`;
  let checked = 0;
  /** Start a progress phase (its count starts at zero). */
  const phase = (what: string, total?: number) => {
    checked = 0;
    progress.start(label(what), total);
  };
  const report = (n: number) => {
    if (n === 0) return; // an empty window: nothing new to tell
    checked += n;
    progress.update(checked);
  };

  try {
    const flows = only ?? await flowIdsWithRuns(store, layout);
    // Stores written by Flowstate 0.1 also indexed succeeded runs by status.
    let legacy = false;
    for await (const _ of store.list({ prefix: layout.byStatus("succeeded"), limit: 1 })) {
      legacy = true;
    }
    /** Runs per commit when deleting one by one (each is several keys). */
    const perCommit = Math.min(batchSize, MAX_KEYED_BATCH);

    // The newest run beyond the count, per flow: runs up to it go (ranked before any deletion).
    const countCuts = new Map<string, string>();
    if (maxRuns === null) phase("runs checked");
    else phase("flows ranked by their newest runs", flows.length);
    if (maxRuns !== null) {
      for (const flowId of flows) {
        if (signal.aborted) break;
        const prefix = layout.byFlow(flowId);
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
        if (seen > maxRuns && last !== undefined) countCuts.set(flowId, last);
        report(1);
      }
    }

    let batch: Doomed[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const doomed = batch;
      batch = [];
      if (!dryRun) {
        await deleteBatch(store, layout, doomed, legacy);
        result.batches++;
      }
      for (const run of doomed) {
        result.deleted++;
        if (run.reason === "age") result.deletedByAge++;
        else result.deletedByCount++;
      }
    };

    // 1. Every flow: time windows of range deletes, up to the newest run any limit dooms.
    let maxCountCut: string | null = null;
    for (const cut of countCuts.values()) maxCountCut = maxBound(maxCountCut, cut);
    const top = ranged
      ? maxBound(normalCut, maxCountCut === null ? null : `${maxCountCut}\0`)
      : null;
    if (top !== null && top !== "" && !signal.aborted) {
      const runs = layout.run();
      const total = await store.count(runs, { end: [...runs, top] });
      phase("runs checked", total);
      /** Per flow, its oldest run id not yet passed (absent: none left below `top`). */
      const next = new Map<string, string>();
      for (const flowId of flows) {
        const first = await firstRunOf(store, layout, flowId, undefined, top);
        if (first !== undefined) next.set(flowId, first);
      }
      /**
       * Runs per window: `batchSize`, or more when many flows have runs left, so that
       * each window deletes a good many entries from each flow's index (every flow
       * costs a seek and a dirtied page per window, whatever it deletes there).
       */
      const windowRuns = () =>
        next.size <= MANY_FLOWS
          ? batchSize
          : Math.max(batchSize, Math.min(MAX_WINDOW_RUNS, RUNS_PER_FLOW_WINDOW * next.size));
      let lo: string | undefined;
      let loTime = -1;
      for await (const e of store.list({ prefix: runs, end: [...runs, top], limit: 1 })) {
        loTime = runIdBoundTime(e.key[runs.length]);
      }
      let width = 0;
      if (loTime >= 0) {
        const candidates = total;
        const span = Math.max(1, runIdBoundTime(top) - loTime);
        width = Math.max(1, Math.ceil((span * windowRuns()) / Math.max(candidates, 1)));
      }
      let attempts = 0;
      while (loTime >= 0 && (lo === undefined || lo < top)) {
        if (signal.aborted) break;
        let hi = runIdTimeBound(loTime + width);
        // A window lies wholly below the safe cut ("aged"), wholly between it and maxAge's cut
        // (its runs are read: some ended less than maxAge ago), or wholly above.
        for (const cut of [safeCut, normalCut]) {
          if (cut !== null && cut !== "" && (lo ?? "") < cut && hi > cut) hi = cut;
        }
        if (hi > top) hi = top;
        const n = await store.count(runs, idRange(runs, lo, hi));
        const wanted = windowRuns();
        if (n > 2 * wanted && width > 1) {
          width = Math.max(1, Math.floor((width * wanted) / n));
          continue;
        }
        const fresh = safeCut === null || (lo ?? "") >= safeCut;
        /** Between the two cuts: its succeeded runs are read, each aged by its end. */
        const band = fresh && normalCut !== null && (lo ?? "") < normalCut;
        const op = store.atomic();
        /** The runs this window keeps, with their flows. */
        const keep = new Map<string, string>();
        /** Runs deleted that the status indexes listed, by reason. */
        let sparseByAge = 0;
        let sparseByCount = 0;
        let keptFailed = 0;
        let read = 0;
        // The status indexes list every run that is not `succeeded`: decide each.
        for (const status of INDEXED_STATUSES) {
          const prefix = layout.byStatus(status);
          const page = store.list<RunSummary>({
            prefix,
            ...idRange(prefix, lo, hi),
            batchSize: 1000,
          });
          for await (const e of page) {
            read++;
            const id = e.key[prefix.length];
            const { flowId } = e.value;
            const cut = countCuts.get(flowId);
            if (status === "running" || status === "queued") {
              keep.set(id, flowId);
              op.check(e.key, e.version); // it must not finish meanwhile
              continue;
            }
            if (aged(status, e.value.endedAt, id)) sparseByAge++;
            else if (cut !== undefined && id <= cut) sparseByCount++;
            else {
              keep.set(id, flowId);
              if (older(options.maxAge, e.value.endedAt, id)) keptFailed++;
              continue;
            }
            op.delete(layout.byStatus(status, id));
            op.delete(layout.byFlowStatus(flowId, status, id));
          }
        }
        // Above maxAge's cut, the succeeded runs within their flow's newest maxRuns stay.
        const active = [...next].filter(([, id]) => id < hi).map(([flowId]) => flowId);
        if (fresh) {
          for (const flowId of active) {
            const cut = countCuts.get(flowId);
            // Between the cuts, the runs beyond the count are read too: aged, they go by age.
            const from = cut === undefined || band ? lo : maxBound(lo ?? null, `${cut}\0`)!;
            if (from !== undefined && from >= hi) continue;
            const prefix = layout.byFlow(flowId);
            const page = store.list<RunSummary>({
              prefix,
              ...idRange(prefix, from, hi),
              batchSize: 1000,
            });
            for await (const e of page) {
              read++;
              const id = e.key[prefix.length];
              if (INDEXED_STATUSES.has(e.value.status)) continue;
              if (!band) keep.set(id, flowId);
              else if (aged(e.value.status, e.value.endedAt, id)) sparseByAge++;
              else if (cut === undefined || id > cut) keep.set(id, flowId);
            }
          }
        } else {
          // Below the safe cut, the succeeded runs that ended late (a run queued for long) and
          // less than maxAge ago stay: the index of such runs lists them.
          const prefix = layout.endedLate();
          const late: { id: string; flowId: string }[] = [];
          for await (
            const e of store.list<EndedLate>({
              prefix,
              ...idRange(prefix, lo, hi),
              batchSize: 1000,
            })
          ) {
            read++;
            const id = e.key[prefix.length];
            const { flowId, status, endedAt } = e.value;
            if (INDEXED_STATUSES.has(status) || keep.has(id)) continue; // decided above
            const cut = countCuts.get(flowId);
            if (cut !== undefined && id <= cut) sparseByCount++;
            else if (!aged(status, endedAt, id)) late.push({ id, flowId });
          }
          if (late.length > 0) {
            // Only runs that are there (an entry outlived its run: it goes with the window).
            const found = await store.getMany(late.map((r) => layout.run(r.id)));
            late.forEach((r, i) => found[i] !== null && keep.set(r.id, r.flowId));
          }
        }
        const doomed = n - keep.size;
        if (doomed > 0) {
          const kept = [...keep.keys()].sort();
          const keptOf = Map.groupBy(kept, (id) => keep.get(id)!);
          clearAround(op, runs, lo, hi, kept);
          clearAround(op, layout.events(), lo, hi, kept);
          clearAround(op, layout.endedLate(), lo, hi, kept);
          clearAround(op, layout.onFailure(), lo, hi, kept);
          if (legacy) clearAround(op, layout.byStatus("succeeded"), lo, hi, kept);
          for (const flowId of active) {
            const own = keptOf.get(flowId) ?? [];
            clearAround(op, layout.byFlow(flowId), lo, hi, own);
            if (legacy) clearAround(op, layout.byFlowStatus(flowId, "succeeded"), lo, hi, own);
          }
        }
        if (!dryRun && doomed > 0) {
          const committed = await op.commit();
          if (!committed.ok) {
            // A running run of this window finished: read the window again.
            if (++attempts < WINDOW_ATTEMPTS) continue;
            result.skipped += doomed;
          } else {
            result.batches++;
          }
        }
        if (attempts < WINDOW_ATTEMPTS) {
          const byAge = fresh ? sparseByAge : doomed - sparseByCount;
          result.deleted += doomed;
          result.deletedByAge += byAge;
          result.deletedByCount += doomed - byAge;
        }
        attempts = 0;
        result.keptFailed += keptFailed;
        result.scanned += read;
        report(n);
        for (const flowId of active) {
          const first = await firstRunOf(store, layout, flowId, hi, top);
          if (first === undefined) next.delete(flowId);
          else next.set(flowId, first);
        }
        lo = hi;
        loTime = runIdBoundTime(hi);
        if (n === 0) {
          // An empty stretch: jump to the next run.
          loTime = -1;
          for await (
            const e of store.list({
              prefix: runs,
              start: [...runs, hi],
              end: [...runs, top],
              limit: 1,
            })
          ) {
            loTime = runIdBoundTime(e.key[runs.length]);
            lo = runIdTimeBound(loTime);
          }
          width *= 2;
        } else {
          const scale = Math.min(4, Math.max(0.5, windowRuns() / n));
          width = Math.max(1, Math.round(width * scale));
        }
      }
    }

    // 1b. Failed runs older than failedMaxAge above the windows (failedMaxAge < maxAge):
    // the status indexes list them, so the runs between the two limits are not read.
    if (ranged && failedCut !== null && failedCut !== "" && !signal.aborted) {
      const from = top === null || top === "" ? undefined : top;
      if (from === undefined || from < failedCut) phase("failed runs checked");
      for (const status of from === undefined || from < failedCut ? FAILED_STATUSES : []) {
        const prefix = layout.byStatus(status);
        let cursor: string | undefined;
        for (;;) {
          const page = store.list<RunSummary>({
            prefix,
            ...idRange(prefix, from, failedCut),
            cursor,
            limit: PAGE_SIZE,
          });
          let n = 0;
          for await (const { key, value } of page) {
            n++;
            const id = key[prefix.length];
            if (!aged(status, value.endedAt, id)) continue; // it ended later than its id says
            batch.push({ id, flowId: value.flowId, status, reason: "age" });
            if (batch.length >= perCommit && !signal.aborted) await flush();
          }
          cursor = page.cursor;
          result.scanned += n;
          report(n);
          if (n < PAGE_SIZE || signal.aborted) break;
        }
      }
    }

    // 2. With `flows`: run by run (other flows' runs share the ranges).
    if (!ranged) phase("runs checked");
    for (const flowId of ranged ? [] : flows) {
      if (signal.aborted) break;
      const countCut = countCuts.get(flowId);
      const end = maxBound(normalCut, failedCut, countCut === undefined ? null : `${countCut}\0`);
      if (end === null || end === "") continue;
      const prefix = layout.byFlow(flowId);
      let cursor: string | undefined;
      for (;;) {
        const page = store.list<RunSummary>({
          prefix,
          end: [...prefix, end],
          cursor,
          limit: PAGE_SIZE,
          batchSize: PAGE_SIZE,
        });
        let n = 0;
        for await (const { key, value: run } of page) {
          n++;
          const id = key[prefix.length];
          if (run.status === "running" || run.status === "queued") continue;
          let reason: Doomed["reason"] | undefined;
          if (aged(run.status, run.endedAt, id)) reason = "age";
          else if (countCut !== undefined && id <= countCut) reason = "count";
          else if (FAILED_STATUSES.has(run.status) && older(options.maxAge, run.endedAt, id)) {
            result.keptFailed++;
          }
          if (reason !== undefined) batch.push({ id, flowId, status: run.status, reason });
          if (batch.length >= perCommit) {
            if (signal.aborted) break;
            await flush();
          }
        }
        cursor = page.cursor;
        result.scanned += n;
        report(n);
        if (n < PAGE_SIZE || signal.aborted) break;
      }
    }
    if (!signal.aborted) await flush();

    // 3. Flow versions no run refers to any more, older than maxAge (never the current one).
    if (options.maxAge !== null && !signal.aborted) {
      const { flowsWithHeads, pruneVersions } = await import("./_prune_versions.ts");
      const versionFlows = only ?? await flowsWithHeads(store, layout);
      if (versionFlows.length > 0) phase("flows' versions checked", versionFlows.length);
      const pruned = await pruneVersions(store, layout, {
        createdBefore: now - options.maxAge,
        now,
        flows: versionFlows,
        dryRun,
        // The runs a dry run would delete are still there: their versions count as unused.
        wouldDelete: (flowId, id, run) => {
          if (run?.status === "running" || run?.status === "queued") return false;
          if (typeof run?.status !== "string") return false;
          if (aged(run.status, run.endedAt ?? null, id)) return true;
          const cut = countCuts.get(flowId);
          return cut !== undefined && id <= cut;
        },
        signal,
        onFlow: () => report(1),
      });
      result.versionsDeleted = pruned.deleted;
      result.versionsSkipped = pruned.skipped;
      result.scanned += pruned.scanned;
      result.batches += pruned.batches;
    }

    const running = only === undefined
      ? [layout.byStatus("running")]
      : only.map((f) => layout.byFlowStatus(f, "running"));
    for (const prefix of running) result.keptRunning += await store.count(prefix);
  } finally {
    result.cancelled = signal.aborted;
    result.durationMs = Math.round(performance.now() - startedAt);
    progress.finish(
      `${dryRun ? "would delete" : "deleted"} ${result.deleted} runs ` +
        `(${result.deletedByAge} by age, ${result.deletedByCount} by count; ` +
        `${result.keptFailed} failed runs kept longer)` +
        (result.versionsDeleted > 0 ? ` and ${result.versionsDeleted} unused flow versions` : "") +
        (result.cancelled ? "; cancelled" : ""),
    );
  }
  if (result.skipped > 0) {
    options.onWarning?.(
      `${result.skipped} runs were left for the next run: runs that were still running kept finishing while their window was deleted`,
    );
  }
  if (result.versionsSkipped > 0) {
    options.onWarning?.(
      `${result.versionsSkipped} flow versions were left for the next run: they were saved again, or their flow changed, while they were deleted`,
    );
  }
  return result;
}
