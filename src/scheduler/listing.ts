/**
 * What `flowstate schedules ls --json` prints and `GET /api/schedules`
 * answers: one row a schedule (jobs, then flows), with its next tick and
 * last run, one row a job of the config that cannot be scheduled, and one
 * row a flow file under `flows:` that cannot be used.
 *
 * @module
 */
import { relative } from "node:path";
import { DEFAULT_TIMEZONE, nextTick } from "../cron.ts";
import type { Runtime } from "../runtime.ts";
import type { WarningHandler } from "../log.ts";
import { lastRunBrief, lastRunFinder } from "../../jobs/_last_runs.ts";
import { type FlowFileProblem, type JobProblem, loadConfiguredJob } from "./from_config.ts";
import type { FlowScheduleTarget } from "./schedule.ts";
import type { JsonValue } from "../store/types.ts";
import { TickLeases } from "./lease.ts";

/**
 * One row of `schedules ls --json` (and of `GET /api/schedules`).
 *
 * @example
 * ```ts
 * import type { ScheduleListing } from "@flowstate/core/scheduler";
 *
 * const row: ScheduleListing = {
 *   id: "file:flows/tick.flow.yaml",
 *   kind: "flow",
 *   cron: null, // no schedule in effect: the file cannot be used
 *   timezone: "UTC",
 *   nextRun: null,
 *   lastRun: null,
 *   file: "flows/tick.flow.yaml",
 *   error: 'Cannot schedule flow tick.flow.yaml: …: unknown node type "x"',
 * };
 * console.log(row.error ?? row.cron);
 * ```
 */
export interface ScheduleListing {
  /**
   * The schedule's id, as in leases and daemon output: `job:retention`,
   * `flow:counter`; `file:<path>` for a flow file that cannot be used and
   * has no schedule in effect.
   */
  id: string;
  /** A job or a flow. */
  kind: "job" | "flow";
  /**
   * Its cron expression; `null` for a job or flow file that cannot be used
   * and has no schedule in effect.
   */
  cron: string | null;
  /** Its IANA time zone. */
  timezone: string;
  /** The next tick (ms since the epoch), or `null` if it never ticks again. */
  nextRun: number | null;
  /**
   * The run that started last, or `null` (a run still waiting in the queue
   * has not: `startedAt` is a run's start, a queued run's claim): recorded,
   * or one the archive job moved to `<home>/archive/` when that is newer
   * (then `archived: true`, with its `archive` file).
   */
  lastRun: {
    id: string;
    status: string;
    startedAt: number;
    durationMs: number | null;
    archived?: true;
    archive?: string;
  } | null;
  /**
   * For a flow's schedule: the flow's id (its runs are recorded under it),
   * the entry of its `schedule:` (its `id:`, or `null` for the flow's own
   * schedule) and the inputs each run of it gets.
   */
  flow?: string;
  /** See {@linkcode ScheduleListing.flow}. */
  entry?: string | null;
  /** See {@linkcode ScheduleListing.flow}. */
  inputs?: Record<string, JsonValue>;
  /** A flow's file (relative to the config's folder), when it cannot be used. */
  file?: string;
  /**
   * A job's options from the config that name files or folders (its
   * `pathOptions`), absolute (a relative one is the config file's folder's):
   * where the daemon's runs of it read and write. Absent when it has none.
   */
  paths?: Record<string, string | string[]>;
  /**
   * Why the job or the flow's file cannot be used now (where, and how to
   * fix it): a flow's schedule (when it shows one) is the one it had before
   * it broke, which a running daemon keeps.
   */
  error?: string;
}

/**
 * The schedules to list, and the flow files that cannot be used (what
 * `ServeOptions.schedules` gives `GET /api/schedules`).
 *
 * @example
 * ```ts
 * import type { ScheduleSource } from "@flowstate/core/scheduler";
 *
 * const source: ScheduleSource = {
 *   schedules: [{ id: "job:gc", cron: "0 4 * * *", timezone: "UTC" }],
 *   problems: [],
 * };
 * console.log(source.schedules.length);
 * ```
 */
export interface ScheduleSource {
  /** The schedules, jobs then flows. */
  schedules: readonly {
    id: string;
    cron: string;
    timezone?: string;
    flow?: FlowScheduleTarget;
  }[];
  /** The flow files under `flows:` that cannot be used now. */
  problems: readonly FlowFileProblem[];
  /** The jobs of the config that cannot be scheduled (none when left out). */
  jobProblems?: readonly JobProblem[];
}

type Records = Awaited<ReturnType<Runtime["records"]>>;

/**
 * The rows of `source`: a schedule whose flow file cannot be used carries
 * `file` and `error`; a job that cannot be scheduled is a row `job:<name>`
 * with `cron: null` and `error` after the jobs' schedules; a file that
 * cannot be used and has no schedule in effect is a row of its own (`id:
 * "file:<path>"`, `cron: null`) after the schedules. `records` (`null`: no
 * store yet) gives the last runs (`onWarning`: a damaged archive file, whose
 * runs are left out of them).
 */
export async function scheduleListing(
  runtime: Runtime,
  source: ScheduleSource,
  records: Records | null,
  onWarning?: WarningHandler,
): Promise<ScheduleListing[]> {
  const now = runtime.clock.now();
  const baseDir = runtime.config.baseDir;
  const problems = new Map(source.problems.map((p) => [p.file, p]));
  const byFlowId = new Map(
    source.problems.filter((p) => p.flowId !== null).map((p) => [`flow:${p.flowId}`, p]),
  );
  const findLast = await lastRunFinder(runtime, records, onWarning, { started: true });
  const lastRun = async (flowId: string | null) =>
    flowId === null ? null : lastRunBrief(await findLast(flowId));
  const broken = (problem: FlowFileProblem) => ({
    file: relative(baseDir, problem.file),
    error: problem.message,
  });
  const rows: ScheduleListing[] = [];
  // Only a job with options from the config can have paths: the others are not loaded again.
  const jobPaths = async (name: string) =>
    Object.keys(runtime.config.jobs[name]?.options ?? {}).length === 0
      ? {}
      : await loadConfiguredJob(runtime.config, name).then((job) => job.paths, () => ({}));
  const brokenJobs = async () => {
    for (const problem of source.jobProblems ?? []) {
      const id = `job:${problem.job}`;
      rows.push({
        id,
        kind: "job",
        cron: null,
        timezone: runtime.config.jobs[problem.job]?.timezone ?? runtime.config.timezone,
        nextRun: null,
        lastRun: await lastRun(id),
        error: problem.message,
      });
    }
  };
  // How many schedules each flow has: with several, each row's last run is its own tick's.
  const entriesOf = new Map<string, number>();
  for (const s of source.schedules) {
    if (s.flow !== undefined) entriesOf.set(s.flow.id, (entriesOf.get(s.flow.id) ?? 0) + 1);
  }
  let leases: TickLeases | undefined;
  const entryLastRun = async (scheduleId: string) => {
    if (records === null) return null;
    leases ??= new TickLeases(await runtime.store(runtime.config.records), { runnerId: "listing" });
    // The newest of its ticks: the one running now, else the last completed one.
    const running = (await leases.running(scheduleId)).at(-1);
    const last = await leases.last(scheduleId);
    const runId = running !== undefined && (last === null || running.tick > last.tick)
      ? running.marker.runId
      : last?.runId ?? null;
    if (runId === null) return null;
    const run = await records.getRun(runId);
    return run === null ? null : lastRunBrief(run);
  };
  let jobsListed = false;
  for (const s of source.schedules) {
    const kind = s.id.startsWith("job:") ? "job" : "flow";
    if (kind === "flow" && !jobsListed) {
      jobsListed = true;
      await brokenJobs();
    }
    const timezone = s.timezone ?? DEFAULT_TIMEZONE;
    const problem = kind === "flow" ? byFlowId.get(s.id) : undefined;
    if (problem !== undefined) problems.delete(problem.file);
    const paths = kind === "job" ? await jobPaths(s.id.slice("job:".length)) : {};
    const flowId = s.flow?.id ?? s.id.slice("flow:".length);
    rows.push({
      id: s.id,
      kind,
      cron: s.cron,
      timezone,
      nextRun: nextTick(s.cron, now, timezone),
      // A job's runs are recorded as flow "job:<name>"; a flow's under its own id; one entry of
      // several of a flow's schedule: the run of its own latest tick.
      lastRun: kind === "job"
        ? await lastRun(s.id)
        : (entriesOf.get(flowId) ?? 0) > 1
        ? await entryLastRun(s.id)
        : await lastRun(flowId),
      ...(s.flow === undefined
        ? {}
        : { flow: s.flow.id, entry: s.flow.entry, inputs: s.flow.inputs }),
      ...(problem === undefined ? {} : broken(problem)),
      ...(Object.keys(paths).length === 0 ? {} : { paths }),
    });
  }
  if (!jobsListed) await brokenJobs();
  for (const problem of problems.values()) {
    const { file, error } = broken(problem);
    rows.push({
      id: `file:${file}`,
      kind: "flow",
      cron: null,
      timezone: runtime.config.timezone,
      nextRun: null,
      lastRun: await lastRun(problem.flowId),
      file,
      error,
    });
  }
  return rows;
}
