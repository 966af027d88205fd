/**
 * `flowstate schedules ls`: everything the daemon would run, jobs and flows
 * alike, with its cron expression, time zone, next tick and last run.
 *
 * `--json` prints one array (stable), in the daemon's order (jobs, then
 * flows): `[{ "id": "job:<name>" | "flow:<id>", "kind": "job" | "flow",
 * "cron", "timezone", "nextRun": number | null, "lastRun": { "id", "status",
 * "startedAt", "durationMs" } | null }]` (times in ms since the epoch), then
 * one row for each flow file under `flows:` that cannot be used:
 * `{ "id": "file:<path>", "kind": "flow", "cron": null, …, "file", "error" }`.
 *
 * A flow file that cannot be used does not hide the rest: every schedule is
 * listed, then an `error:` line says which file cannot be used and why, and
 * the exit code is 2 (the listing lacks what that file would schedule).
 *
 * @module
 */
import { type FlowFileProblem, loadSchedules } from "../scheduler/from_config.ts";
import { type ScheduleListing, scheduleListing } from "../scheduler/listing.ts";
import { lookalikeFlowWarnings } from "../flow_files.ts";
import { formatTime, printTable } from "./format.ts";
import { type GlobalOptions, openForReading, unlessMissing } from "./common.ts";

export type { ScheduleListing } from "../scheduler/listing.ts";

/** `schedules ls [--json]`: exit 2 for a config whose schedules cannot load, or a flow file that cannot be used. */
export async function listSchedules(
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  const problems: FlowFileProblem[] = [];
  const schedules = await loadSchedules(runtime, { onFlowProblem: (p) => problems.push(p) });
  // No records store yet: nothing has run.
  const records = await unlessMissing(() => runtime.records());
  const rows: ScheduleListing[] = await scheduleListing(runtime, { schedules, problems }, records);
  const code = problems.length === 0 ? 0 : 2;
  for (const warning of await lookalikeFlowWarnings(runtime.config)) {
    console.error(`warning: ${warning}`);
  }
  const reportProblems = () => {
    for (const problem of problems) {
      console.error(`error: ${problem.message.split("\n").join("; ")}`);
    }
  };
  if (options.json) {
    console.log(JSON.stringify(rows));
    reportProblems();
    return code;
  }
  const listed = rows.filter((r) => r.cron !== null);
  if (listed.length === 0) {
    console.error("Nothing is scheduled (add jobs or flows with a schedule to the config)");
  } else {
    const tz = runtime.config.timezone;
    printTable(
      ["ID", "SCHEDULE", "TIMEZONE", "NEXT RUN", "LAST RUN"],
      listed.map((r) => [
        r.id,
        r.cron!,
        r.timezone,
        formatTime(r.nextRun, tz),
        r.lastRun === null ? "-" : `${r.lastRun.status} ${formatTime(r.lastRun.startedAt, tz)}`,
      ]),
    );
  }
  reportProblems();
  return code;
}
