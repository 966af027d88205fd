/**
 * Archived runs on the command line: `flowstate runs ls --archived` lists
 * the runs the archive job moved into `<home>/archive/`, and `runs show`
 * falls back to {@linkcode findArchivedRun} when a run is not in the records
 * store.
 *
 * `--json` output of `runs ls --archived` (one JSON document on stdout,
 * stable): the same array as `runs ls --json`, newest first, each run with
 * one more field, `"archive"`: the archive file's name. `runs show` of an
 * archived run prints the same `{ "run", "events" }` as for a live run, with
 * `"archive"` and `"version"` (the flow version it ran, with its definition,
 * as the archive keeps it; `null` when the archive does not hold it).
 *
 * @module
 */
import {
  type ArchivedRun,
  type ArchivedRunSummary,
  listArchivedRuns as listFromArchive,
  readArchivedRun,
} from "../../jobs/archive.ts";
import { openRuntime } from "../runtime.ts";
import { formatDuration, printTable, runFlowCell, runStartedCell } from "./format.ts";
import { type GlobalOptions, printWarning } from "./common.ts";
import { DEFAULT_RUNS_LIMIT, type ListRunsCommandOptions, parseTimeRange } from "./run_filters.ts";
import { isRunId } from "../records/run_id.ts";

export { archivedCannot } from "../records/_archive_read.ts";

/**
 * `runs ls --archived [--flow ID] [--status S] [--since T] [--until T]
 * [--limit N] [--json]`: archived runs, newest first, read from the archive
 * indexes only. Exit 0 (also when none match).
 */
export async function listArchivedRuns(
  options: ListRunsCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  const now = Date.now();
  parseTimeRange(options, now); // bad input is refused before anything opens
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  const { since, until } = parseTimeRange(options, now, runtime.config.timezone);
  const runs: ArchivedRunSummary[] = await listFromArchive(runtime.home, {
    flowId: options.flow,
    status: options.status,
    since,
    until,
    limit: options.limit ?? DEFAULT_RUNS_LIMIT,
  });
  if (options.json) {
    console.log(JSON.stringify(runs));
  } else if (runs.length === 0) {
    console.error(`No archived runs match (archives are kept in ${runtime.home}/archive)`);
  } else {
    printTable(
      ["ID", "FLOW", "STATUS", "STARTED", "DURATION", "ARCHIVE"],
      runs.map((r) => [
        r.id,
        runFlowCell(r),
        r.status,
        runStartedCell(r, runtime.config.timezone),
        formatDuration(r.durationMs),
        r.archive,
      ]),
    );
  }
  return 0;
}

/**
 * Find a run in the archives under `home` (pass `runtime.home`): its record,
 * its events and the archive file's name, or `null` when no archive holds it
 * (or `runId` is not a run id). For `runs show` to call when the records
 * store has no such run.
 */
export async function findArchivedRun(runId: string, home: string): Promise<ArchivedRun | null> {
  if (!isRunId(runId)) return null;
  return await readArchivedRun(home, runId);
}
