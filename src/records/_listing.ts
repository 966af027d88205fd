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
  runShapeProblem,
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
  /** The index's prefix: an entry's run id is its key's element at `base.length`. */
  base?: Key;
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
    // The id from the key: a malformed value must not break the paging.
    lastScanned = e.key[base.length];
    if (!filtered || (e.value as { status?: unknown } | null)?.status === status) {
      entries.push(e);
      if (entries.length > limit) break;
    }
    if (scanned >= maxScan) break;
  }
  const more = entries.length > limit;
  if (more) entries.pop();
  const next = more
    ? entries[entries.length - 1].key[base.length]
    : scanned >= maxScan
    ? lastScanned // a short page: the next one continues after the last entry read
    : undefined;
  return { entries, cursor: next, full: base.length === layout.prefix.length + 1, base };
}

/** The page's runs that have a run's shape, and the ids (from their keys) of those that do not. */
function wellFormed<T>(
  entries: Entry<unknown>[],
  idAt: number,
  value: (e: Entry<unknown>) => unknown,
): { ok: [Entry<unknown>, T][]; malformed: string[] } {
  const ok: [Entry<unknown>, T][] = [];
  const malformed: string[] = [];
  for (const e of entries) {
    const v = value(e);
    if (runShapeProblem(v) === undefined) ok.push([e, v as T]);
    else malformed.push(String(e.key[idAt]));
  }
  return { ok, malformed };
}

function page<T>(runs: T[], cursor: string | undefined, malformed: string[]): RunPage<T> {
  const out: RunPage<T> = { runs };
  if (cursor !== undefined) out.cursor = cursor;
  if (malformed.length > 0) out.malformed = malformed;
  return out;
}

/** `Records.listRunSummaries()`: a page of summaries, read from the index alone. */
export async function listRunSummaries(
  ctx: RecordsContext,
  options: ListRunsOptions,
): Promise<RunPage<RunSummary>> {
  const { entries, cursor, full, base } = await listIndex(ctx, options);
  const { ok, malformed } = wellFormed<RunSummary | StoredRun>(
    entries,
    base?.length ?? 0,
    (e) => e.value,
  );
  const runs = ok.map(([, v]) => full ? summarizeRun(v as StoredRun) : v as RunSummary);
  return page(runs, cursor, malformed);
}

/** `Records.listRuns()`: a page of full records, with one `getMany` for an index page. */
export async function listRuns(
  ctx: RecordsContext,
  options: ListRunsOptions,
): Promise<RunPage<RunRecord>> {
  const { entries, cursor, full, base } = await listIndex(ctx, options);
  const idAt = base?.length ?? 0;
  if (full) {
    const { ok, malformed } = wellFormed<StoredRun>(entries, idAt, (e) => e.value);
    return page(readable(ok, idAt, malformed), cursor, malformed);
  }
  const records = await ctx.store.getMany<StoredRun>(
    entries.map((e) => ctx.layout.run(String(e.key[idAt]))),
  );
  const found = records.filter((r) => r !== null) as Entry<StoredRun>[];
  const idAtRun = ctx.layout.run().length;
  const { ok, malformed } = wellFormed<StoredRun>(found, idAtRun, (e) => e.value);
  return page(readable(ok, idAtRun, malformed), cursor, malformed);
}

/** The records of `ok` as the API gives them; one this version cannot read is `malformed`. */
function readable(
  ok: [Entry<unknown>, StoredRun][],
  idAt: number,
  malformed: string[],
): RunRecord[] {
  const runs: RunRecord[] = [];
  for (const [e, v] of ok) {
    try {
      runs.push(withoutEvents(v));
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      malformed.push(String(e.key[idAt]));
    }
  }
  return runs;
}
