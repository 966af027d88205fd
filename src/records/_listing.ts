/**
 * Listing runs, for `Records`: a page of one index (by flow, by status, both,
 * or all runs), newest first, bounded by start time and a cursor, and the
 * summaries or full records of that page. Succeeded runs have no status
 * index: their pages filter a time-ordered list and read a bounded amount.
 * Internal to `src/records/`.
 *
 * @module
 */
import { compareKeys } from "../store/keys.ts";
import type { Entry, Key } from "../store/types.ts";
import { checkFlowId, checkStatus, checkTime } from "./_checks.ts";
import { type RecordsContext, type StoredRun, withoutEvents } from "./_context.ts";
import { assertRunId, runIdTimeBound } from "./run_id.ts";
import {
  type ListRunsOptions,
  type RunPage,
  type RunRecord,
  type RunSummary,
  summarizeRun,
} from "./types.ts";

/** A page that filters (succeeded runs) reads at least this many entries before ending early. */
const MIN_FILTER_SCAN = 2000;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** One page of index entries; `full` when they are run records (the list of all runs). */
interface IndexPage {
  entries: Entry<RunSummary | StoredRun>[];
  cursor?: string;
  full: boolean;
}

async function listIndex(ctx: RecordsContext, options: ListRunsOptions): Promise<IndexPage> {
  const what = "Cannot list runs";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${what}: options must be an object`);
  }
  const { flowId, status, since, until, cursor } = options;
  const limit = options.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new RangeError(
      `${what}: limit must be an integer from 1 to ${MAX_LIMIT} (got ${limit})`,
    );
  }
  if (flowId !== undefined) checkFlowId(flowId, what);
  if (status !== undefined) checkStatus(status, what);
  if (since !== undefined) checkTime(since, "since", what);
  if (until !== undefined) checkTime(until, "until", what);
  if (cursor !== undefined) assertRunId(cursor, `${what}: cursor`);
  // Succeeded runs have no status index: filter the flow's index or the list of all runs.
  const layout = ctx.layout;
  const filtered = status === "succeeded";
  const base = status !== undefined && !filtered
    ? (flowId !== undefined ? layout.byFlowStatus(flowId, status) : layout.byStatus(status))
    : flowId !== undefined
    ? layout.byFlow(flowId)
    : layout.run();
  let start: Key | undefined;
  let end: Key | undefined;
  if (since !== undefined) {
    const bound = runIdTimeBound(since);
    if (bound === "~") return { entries: [], full: false };
    if (bound !== "") start = [...base, bound];
  }
  if (until !== undefined) {
    const bound = runIdTimeBound(until);
    if (bound === "") return { entries: [], full: false };
    if (bound !== "~") end = [...base, bound];
  }
  if (cursor !== undefined) {
    const after: Key = [...base, cursor];
    if (end === undefined || compareKeys(after, end) < 0) end = after;
  }
  const entries: Entry<RunSummary | StoredRun>[] = [];
  // A filtering page reads at most this many entries, then ends early with a cursor.
  const maxScan = filtered ? Math.max(MIN_FILTER_SCAN, 20 * limit) : Infinity;
  let scanned = 0;
  let lastScanned: string | undefined;
  for await (
    const e of ctx.store.list<RunSummary | StoredRun>({
      prefix: base,
      start,
      end,
      reverse: true,
      ...(filtered ? { batchSize: Math.max(limit + 1, 256) } : {
        limit: limit + 1,
        batchSize: limit + 1,
      }),
    })
  ) {
    scanned++;
    lastScanned = e.value.id;
    if (!filtered || e.value.status === status) {
      entries.push(e);
      if (entries.length > limit) break;
    }
    if (scanned >= maxScan) break;
  }
  const more = entries.length > limit;
  if (more) entries.pop();
  const next = more ? entries[entries.length - 1].value.id : scanned >= maxScan
    ? lastScanned // a short page: the next one continues after the last entry read
    : undefined;
  return { entries, cursor: next, full: base.length === layout.prefix.length + 1 };
}

/** `Records.listRunSummaries()`: a page of summaries, read from the index alone. */
export async function listRunSummaries(
  ctx: RecordsContext,
  options: ListRunsOptions,
): Promise<RunPage<RunSummary>> {
  const { entries, cursor, full } = await listIndex(ctx, options);
  const runs = entries.map((e) =>
    full ? summarizeRun(e.value as StoredRun) : e.value as RunSummary
  );
  return cursor === undefined ? { runs } : { runs, cursor };
}

/** `Records.listRuns()`: a page of full records, with one `getMany` for an index page. */
export async function listRuns(
  ctx: RecordsContext,
  options: ListRunsOptions,
): Promise<RunPage<RunRecord>> {
  const { entries, cursor, full } = await listIndex(ctx, options);
  let runs: RunRecord[];
  if (full) {
    runs = entries.map((e) => withoutEvents(e.value as StoredRun));
  } else {
    const records = await ctx.store.getMany<StoredRun>(
      entries.map((e) => ctx.layout.run((e.value as RunSummary).id)),
    );
    runs = records.filter((r) => r !== null).map((r) => withoutEvents(r.value));
  }
  return cursor === undefined ? { runs } : { runs, cursor };
}
