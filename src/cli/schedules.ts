/**
 * `flowstate schedules ls`: everything the daemon would run, jobs and flows
 * alike, with its cron expression, time zone, next tick and last run.
 *
 * `--json` prints one array (stable), in the daemon's order (jobs, then
 * flows): `[{ "id": "job:<name>" | "flow:<id>", "kind": "job" | "flow",
 * "cron", "timezone", "nextRun": number | null, "lastRun": { "id", "status",
 * "startedAt", "durationMs" } | null }]` (times in ms since the epoch).
 *
 * @module
 */
import { DEFAULT_TIMEZONE, nextTick } from "../cron.ts";
import { loadSchedules } from "../scheduler/from_config.ts";
import { formatTime, printTable } from "./format.ts";
import { type GlobalOptions, openForReading, unlessMissing } from "./common.ts";

/** One row of `schedules ls --json`. */
export interface ScheduleListing {
  /** The schedule's id, as in leases and daemon output: `job:retention`, `flow:counter`. */
  id: string;
  /** A job or a flow. */
  kind: "job" | "flow";
  /** Its cron expression. */
  cron: string;
  /** Its IANA time zone. */
  timezone: string;
  /** The next tick (ms since the epoch), or `null` if it never ticks again. */
  nextRun: number | null;
  /** The newest recorded run, or `null`. */
  lastRun: { id: string; status: string; startedAt: number; durationMs: number | null } | null;
}

/** `schedules ls [--json]`: exit 2 for a config whose schedules cannot load. */
export async function listSchedules(
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  const schedules = await loadSchedules(runtime);
  // No records store yet: nothing has run.
  const records = await unlessMissing(() => runtime.records());
  const now = runtime.clock.now();
  const rows: ScheduleListing[] = [];
  for (const s of schedules) {
    const kind = s.id.startsWith("job:") ? "job" : "flow";
    const timezone = s.timezone ?? DEFAULT_TIMEZONE;
    // A job's runs are recorded as flow "job:<name>"; a flow's under its own id.
    const flowId = kind === "job" ? s.id : s.id.slice("flow:".length);
    const last = records === null
      ? undefined
      : (await records.listRunSummaries({ flowId, limit: 1 })).runs[0];
    rows.push({
      id: s.id,
      kind,
      cron: s.cron,
      timezone,
      nextRun: nextTick(s.cron, now, timezone),
      lastRun: last === undefined ? null : {
        id: last.id,
        status: last.status,
        startedAt: last.startedAt,
        durationMs: last.durationMs,
      },
    });
  }
  if (options.json) {
    console.log(JSON.stringify(rows));
    return 0;
  }
  if (rows.length === 0) {
    console.error("Nothing is scheduled (add jobs or flows with a schedule to the config)");
    return 0;
  }
  const tz = runtime.config.timezone;
  printTable(
    ["ID", "SCHEDULE", "TIMEZONE", "NEXT RUN", "LAST RUN"],
    rows.map((r) => [
      r.id,
      r.cron,
      r.timezone,
      formatTime(r.nextRun, tz),
      r.lastRun === null ? "-" : `${r.lastRun.status} ${formatTime(r.lastRun.startedAt, tz)}`,
    ]),
  );
  return 0;
}
