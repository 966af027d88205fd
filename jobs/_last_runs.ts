/**
 * The last run of a flow or job as the listings show it (`GET /api/flows`,
 * `GET /api/jobs`, `GET /api/schedules`, `flows ls`, `jobs ls`,
 * `schedules ls`, the inspector): the newest run in the records store, or
 * the newest one the archive job moved to `<home>/archive/` when that is
 * newer (or the only one), marked `archived` with its archive file. So a
 * flow whose runs were all archived still shows its last run rather than
 * "never ran". The archive's side comes from one {@linkcode ArchiveReader}
 * per runtime, which keeps what it read of the archive indexes: a listing
 * costs one `stat` per archive file, not a read.
 *
 * @module
 */
import type { Records } from "../src/records/records.ts";
import { runStartTime, type RunSummary } from "../src/records/types.ts";
import type { Runtime } from "../src/runtime.ts";
import type { WarningHandler } from "../src/log.ts";
import { type ArchivedRunSummary, archiveReaderOf } from "../src/records/_archive_read.ts";

export { archiveReaderOf };

/** A last run: a run summary, with `archived` and `archive` when it is read from the archive. */
export type LastRun = RunSummary & { archived?: true; archive?: string };

/**
 * When a listed run started: its current or last attempt's claim for a run
 * that went through the queue (see `runStartTime`), else its `startedAt`
 * (a queued run's enqueue time, when it has not started).
 */
function startOf(run: RunSummary): number {
  return runStartTime(run) ?? run.startedAt;
}

/**
 * The newer of a flow's newest recorded run and its newest archived run
 * (by start time, then id; the recorded one when they are the same run), or
 * `undefined` when it has neither.
 */
export function newerRun(
  recorded: RunSummary | undefined,
  archived: ArchivedRunSummary | undefined,
): LastRun | undefined {
  if (archived === undefined) return recorded;
  if (
    recorded !== undefined &&
    (startOf(recorded) > startOf(archived) ||
      (startOf(recorded) === startOf(archived) && recorded.id >= archived.id))
  ) return recorded;
  return { ...archived, archived: true };
}

/**
 * The run of `flowId` that started last (by its real start, then id), or
 * `undefined` when none has: a queued run that no worker claimed yet (or
 * that was cancelled before one did) has not run, and a run enqueued earlier
 * than another may start after it. Reads the flow's runs newest first, page
 * after page until one holds a run that started (past a backlog of queued
 * runs; the first page is short, as a listing reads one a flow): the latest
 * start among the pages read wins, so a run enqueued long before it started
 * (behind a page of newer runs) may be missed.
 */
async function lastStartedRun(records: Records, flowId: string): Promise<RunSummary | undefined> {
  let best: RunSummary | undefined;
  let cursor: string | undefined;
  do {
    const limit = cursor === undefined ? FIRST_PAGE : STARTED_PAGE;
    const page = await records.listRunSummaries({ flowId, limit, cursor });
    for (const run of page.runs) {
      const at = runStartTime(run);
      if (at === undefined) continue;
      const bestAt = best === undefined ? -Infinity : startOf(best);
      if (at > bestAt || (at === bestAt && run.id > best!.id)) best = run;
    }
    cursor = page.cursor;
  } while (best === undefined && cursor !== undefined);
  return best;
}

/** How many runs {@linkcode lastStartedRun} reads first, then a page after that. */
const FIRST_PAGE = 10;
const STARTED_PAGE = 100;

/**
 * The newest archived run of each flow and job, from `runtime`'s archive
 * reader (see {@linkcode ArchiveReader.lastRuns}). A damaged archive file
 * does not fail it: its runs are left out, and `onDamaged` (when given) gets
 * a warning (`ARCHIVE_DAMAGED`) saying which file, what to do, and that its
 * runs are left out.
 */
export async function archivedLastRuns(
  runtime: Runtime,
  onDamaged?: WarningHandler,
): Promise<Map<string, ArchivedRunSummary>> {
  return await archiveReaderOf(runtime).lastRuns((err) =>
    onDamaged?.({
      code: "ARCHIVE_DAMAGED",
      message: `${err.message} (the last runs listed leave its runs out)`,
    })
  );
}

/**
 * A lookup of last runs (see the module doc): the archive's newest runs are
 * read once, when it is made; each call reads the flow's newest recorded run.
 * `records` is `null` when the records store does not exist yet. A flow (a
 * job's: `job:<name>`) that never ran gives `undefined`. A damaged archive
 * file does not fail the listing: see {@linkcode archivedLastRuns}.
 *
 * With `started: true` (the job and schedule listings' LAST RUN), the run
 * that started last (see {@linkcode lastStartedRun}): a run still waiting in
 * the queue is not a last run, and does not hide the one that ran.
 */
export async function lastRunFinder(
  runtime: Runtime,
  records: Records | null,
  onDamaged?: WarningHandler,
  options: { started?: boolean } = {},
): Promise<(flowId: string) => Promise<LastRun | undefined>> {
  const archived = await archivedLastRuns(runtime, onDamaged);
  return async (flowId) => {
    const recorded = records === null
      ? undefined
      : options.started
      ? await lastStartedRun(records, flowId)
      : (await records.listRunSummaries({ flowId, limit: 1 })).runs[0];
    return newerRun(recorded, archived.get(flowId));
  };
}

/** A last run in the job and schedule listings: see {@linkcode lastRunBrief}. */
export interface LastRunBrief {
  /** The run's id. */
  id: string;
  /** Its status. */
  status: RunSummary["status"];
  /**
   * When it started (ms since the epoch): for a run that went through the
   * queue, when its current or last attempt was claimed, not when it was
   * enqueued.
   */
  startedAt: number;
  /** Its duration (ms), or `null` while it runs. */
  durationMs: number | null;
  /** Present when it was read from the archive. */
  archived?: true;
  /** Its archive file (under `<home>/archive/`), when archived. */
  archive?: string;
}

/**
 * The four fields of a last run that the job and schedule listings give
 * (`{ id, status, startedAt, durationMs }`), with `archived: true` and its
 * `archive` file when it was read from the archive; `null` when there is none.
 */
export function lastRunBrief(last: LastRun | undefined): LastRunBrief | null {
  if (last === undefined) return null;
  return {
    id: last.id,
    status: last.status,
    startedAt: startOf(last),
    durationMs: last.durationMs,
    ...(last.archived ? { archived: true as const, archive: last.archive } : {}),
  };
}
