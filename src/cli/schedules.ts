/**
 * `flowstate schedules ls`: everything the daemon would run, jobs and flows
 * alike, with its cron expression, time zone, next tick and last run.
 *
 * `--json` prints one array (stable), in the daemon's order (jobs, then
 * flows): `[{ "id": "job:<name>" | "flow:<id>" | "flow:<id>#<entry>", "kind": "job" | "flow",
 * "cron", "timezone", "nextRun": number | null, "lastRun": { "id", "status",
 * "startedAt", "durationMs" } | null }]` (the run that started last: a run
 * still waiting in the queue is not one; `startedAt` is its start, a queued
 * run's claim), a flow's rows also with `"flow"`,
 * `"entry"` (its `schedule:` entry's `id`, or `null`) and `"inputs"` (what each
 * run of it gets; a flow with several entries: each row's last run is its own
 * latest tick's) (times in ms since the epoch; a last run
 * the archive job moved to `<home>/archive/` has `"archived": true` and its `"archive"`), then
 * (a job's row also has `"paths": { "<option>": path }` when options of it in the
 * config name files: absolute, a relative one the config file's folder's), then
 * one row for each flow file under `flows:` that cannot be used:
 * `{ "id": "file:<path>", "kind": "flow", "cron": null, …, "file", "error" }`.
 * A job of the config that cannot be scheduled (its module cannot be loaded,
 * an option is invalid) is a row `{ "id": "job:<name>", "kind": "job",
 * "cron": null, …, "error" }` after the jobs' schedules; two flow files whose
 * schedules declare one flow id are each such a file (neither is scheduled).
 *
 * A job or a flow file that cannot be used does not hide the rest: every
 * schedule is listed, then an `error:` line says which job or file cannot be
 * used, where and why, and the exit code is 2 (the listing lacks what it
 * would schedule, and the daemon would not start).
 *
 * @module
 */
import { type FlowFileProblem, type JobProblem, loadSchedules } from "../scheduler/from_config.ts";
import { type ScheduleListing, scheduleListing } from "../scheduler/listing.ts";
import { lookalikeFlowWarnings } from "../flow_files.ts";
import { dstSkipProblem } from "../cron.ts";
import { formatTime, lastRunText, printable, printTable, RUNNING_GONE_NOTE } from "./format.ts";
import { type GlobalOptions, openForReading, printWarning, unlessMissing } from "./common.ts";
import { goneLastRuns, pathLines, PATHS_HEADING } from "./jobs.ts";

export type { ScheduleListing } from "../scheduler/listing.ts";

/**
 * A string input written as it is in the INPUTS column: no line break or
 * tab (which would break the row), no `,` or `=` (which would read as
 * another input), no `"` or space at an end (which would not be seen); else
 * it is quoted as JSON.
 */
// deno-lint-ignore no-control-regex
const BARE = /^(?![\s"])[^\x00-\x1f\x7f,=]+(?<!\s)$/;

/** A schedule's inputs as the table shows them: `db=a, n=2` (JSON for values other than text, and for text that {@linkcode BARE} refuses); `-` for none. */
function inputsText(inputs: ScheduleListing["inputs"]): string {
  const entries = Object.entries(inputs ?? {});
  if (entries.length === 0) return "-";
  return printable(
    entries.map(([name, value]) =>
      `${name}=${typeof value === "string" && BARE.test(value) ? value : JSON.stringify(value)}`
    ).join(", "),
  );
}

/** `schedules ls [--json]`: exit 2 for a config whose schedules cannot load, or a job or flow file that cannot be used. */
export async function listSchedules(
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  const problems: FlowFileProblem[] = [];
  const jobProblems: JobProblem[] = [];
  const schedules = await loadSchedules(runtime, {
    onFlowProblem: (p) => problems.push(p),
    onJobProblem: (p) => jobProblems.push(p),
  });
  // No records store yet: nothing has run.
  const records = await unlessMissing(() => runtime.records());
  const rows: ScheduleListing[] = await scheduleListing(
    runtime,
    { schedules, problems, jobProblems },
    records,
    printWarning,
  );
  const code = problems.length === 0 && jobProblems.length === 0 ? 0 : 2;
  for (const warning of await lookalikeFlowWarnings(runtime.config)) {
    console.error(`warning: ${warning}`);
  }
  // A schedule (a job's too) that a spring-forward gap empties for a whole day within a year.
  const now = Date.now();
  for (const row of rows) {
    const problem = row.cron === null ? undefined : dstSkipProblem(row.cron, now, row.timezone);
    if (problem !== undefined) console.error(printable(`warning: ${row.id}: ${problem}`));
  }
  const reportProblems = () => {
    // Two files with one flow id are two rows with one message: said once.
    const messages = new Set([...jobProblems, ...problems].map((p) => p.message));
    for (const message of messages) console.error(`error: ${message.split("\n").join("; ")}`);
  };
  if (options.json) {
    console.log(JSON.stringify(rows));
    reportProblems();
    return code;
  }
  const listed = rows.filter((r) => r.cron !== null);
  if (listed.length === 0) {
    // With problems, they say why (a broken job is not "nothing to schedule").
    if (code === 0) {
      console.error("Nothing is scheduled (add jobs or flows with a schedule to the config)");
    }
  } else {
    const tz = runtime.config.timezone;
    // The inputs a flow's schedule gives its runs, when one gives any.
    const inputs = listed.some((r) => Object.keys(r.inputs ?? {}).length > 0);
    const gone = await goneLastRuns(runtime, listed.map((r) => r.lastRun));
    printTable(
      ["ID", "SCHEDULE", "TIMEZONE", "NEXT RUN", "LAST RUN", ...(inputs ? ["INPUTS"] : [])],
      listed.map((r) => [
        r.id,
        r.cron!,
        r.timezone,
        formatTime(r.nextRun, tz),
        lastRunText(r.lastRun, tz, gone),
        ...(inputs ? [inputsText(r.inputs)] : []),
      ]),
    );
    if (gone.size > 0) console.error(RUNNING_GONE_NOTE);
  }
  const paths = pathLines(
    runtime.config,
    rows.filter((r) => r.paths !== undefined).map((r) => ({
      name: r.id.slice("job:".length),
      paths: r.paths,
    })),
  );
  if (paths.length > 0) console.log(`\n${PATHS_HEADING}`);
  for (const line of paths) console.log(line);
  reportProblems();
  return code;
}
