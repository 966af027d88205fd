/**
 * Schedules from the config: what turns a resolved config into the
 * {@linkcode Schedule}s a {@linkcode Scheduler} runs. Every enabled job with
 * a schedule (its own or the job's `defaultSchedule`) and every flow under
 * `flows:` with a `schedule:`; also how a job named in the config is loaded
 * ({@linkcode loadConfiguredJob}), which `flowstate jobs` uses too.
 *
 * @module
 */
import { basename } from "node:path";
import { flowFiles, sharedFlowIdMessage } from "../flow_files.ts";
import { fileStamp, isStable } from "../flow_cache.ts";
import type {
  AbandonedPolicy,
  JobConfig,
  MissedPolicy,
  OverlapPolicy,
  ResolvedConfig,
} from "../config.ts";
import { ConfigError } from "../errors.ts";
import { formatDurationExactly, parseDuration } from "../duration.ts";
import type { Timers } from "../clock.ts";
import { FlowValidationError, loadFlowFile, type ParsedFlow } from "../flow/parse.ts";
import { loadFlowIn } from "../flow/load.ts";
import { unsetEnvHere } from "../flow/reach.ts";
import type { Job } from "../jobs/job.ts";
import { RunRecorder } from "../records/recorder.ts";
import type { RunRecord, ScheduledTick } from "../records/types.ts";
import type { LogLevel } from "../log.ts";
import {
  loadJob,
  resolveJobOptions,
  resolvePathOptions,
  runJob,
  unitlessDurationOptions,
} from "../jobs/run.ts";
import { flowCacheOf, programNodesOf, type Runtime, sandboxPoolOf } from "../runtime.ts";
import type { ProgramNodeTypes } from "../flow/program_nodes.ts";
import { builtinNodes } from "../flow/nodes.ts";
import { validateCron } from "../cron.ts";
import { tickKey } from "./lease.ts";
import type { Schedule } from "./schedule.ts";
import { flowScheduleId, SCHEDULED_AT_INPUT, scheduleEntries } from "../flow/_schedule_entries.ts";
import { isRecord } from "../flow/_values.ts";
import { formatPath } from "../errors.ts";
import type { JsonValue } from "../store/types.ts";

/** A job named in the config (or a built-in), loaded. */
export interface ConfiguredJob {
  /** The name it has in the config (and in run records: `job:<name>`). */
  name: string;
  /** Its settings. */
  config: JobConfig;
  /** The loaded job, renamed to `name`. */
  job: Job;
  /** The cron expression it runs at (config, else the job's default), or `null` if none. */
  schedule: string | null;
  /**
   * The config's options among the job's `pathOptions`, absolute (a relative
   * one is the config file's folder's): where the job reads and writes files.
   */
  paths: Record<string, string | string[]>;
}

/** Where a config field is written, as a message prefix (`flowstate.yaml:4:3: jobs.x: `). */
function locate(config: ResolvedConfig, path: (string | number)[]): string {
  const at = config.where(path);
  const field = path.map((p, i) => typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)
    .join("");
  return `${at === undefined ? "" : `${at}: `}${field}: `;
}

/**
 * A job's options refused by its schema (`err`, from `resolveJobOptions`),
 * each problem at the place of its option in the config when it is written
 * there (`flowstate.yaml:9:22: jobs.backup.options.keep: must be …`), else
 * at `jobs.<name>.options`. Problems of options given elsewhere
 * (`fromConfig` says which are the config's) keep the message they had.
 */
export function locateJobOptionsError(
  config: ResolvedConfig,
  name: string,
  err: ConfigError,
  fromConfig: (option: string) => boolean = () => true,
): ConfigError {
  const options = ["jobs", name, "options"];
  const issues = err.issues;
  if (issues.length === 0 || issues.some((i) => i.path.length === 0)) {
    return new ConfigError(`${locate(config, options)}${err.message}`, { cause: err });
  }
  if (!issues.some((i) => fromConfig(String(i.path[0])))) return err;
  const lines = issues.map((issue) =>
    fromConfig(String(issue.path[0]))
      ? `${locate(config, [...options, ...issue.path])}${issue.message}`
      : `Cannot run job "${name}": option "${issue.path.join(".")}": ${issue.message}`
  );
  return new ConfigError(lines.join("\n"), {
    cause: err,
    issues: issues.map((i) => ({ ...i, path: [...options, ...i.path] })),
    file: err.file,
  });
}

/**
 * Load a job by its config name: its module (`jobs.<name>.module`) or the
 * built-in of that name, renamed to `name`, with the schedule it runs at.
 * A job that cannot be loaded is a {@linkcode ConfigError} pointing at the
 * config.
 */
export async function loadConfiguredJob(
  config: ResolvedConfig,
  name: string,
): Promise<ConfiguredJob> {
  const settings: JobConfig = config.jobs[name] ?? {
    enabled: true,
    timezone: config.timezone,
    options: {},
    overlap: "skip",
    missed: "skip",
    abandoned: "skip",
    jitterMs: 0,
  };
  let job: Job;
  try {
    job = await loadJob(settings.module ?? name, config.baseDir);
  } catch (err) {
    if (!(err instanceof ConfigError) || !Object.hasOwn(config.jobs, name)) throw err;
    const field = settings.module !== undefined ? ["jobs", name, "module"] : ["jobs", name];
    throw new ConfigError(`${locate(config, field)}${err.message}`, { cause: err });
  }
  if (job.name !== name) job = Object.freeze({ ...job, name });
  await refuseUnitlessDurations(config, name, job, settings.options);
  const schedule = settings.schedule ?? job.defaultSchedule ?? null;
  if (schedule !== null && settings.schedule === undefined) {
    try {
      validateCron(schedule, settings.timezone);
    } catch (err) {
      throw new ConfigError(
        `Cannot schedule job "${name}": its defaultSchedule is invalid: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  const resolved = resolvePathOptions(job, settings.options, config.baseDir);
  const paths: Record<string, string | string[]> = {};
  for (const option of job.pathOptions ?? []) {
    const value = resolved[option];
    if (typeof value === "string" || (Array.isArray(value) && value.every(isString))) {
      paths[option] = value as string | string[];
    }
  }
  return { name, config: settings, job, schedule, paths };
}

function isString(value: unknown): value is string {
  return typeof value === "string";
}

/**
 * `maxAge: 30` written in `flowstate.yaml` is 30 ms to the job: for retention,
 * every run older than 30 ms. A bare number other than 0 for an option the job
 * reads as a duration is refused when the config came from a file (a program
 * passing a number means milliseconds, as documented).
 */
async function refuseUnitlessDurations(
  config: ResolvedConfig,
  name: string,
  job: Job,
  options: Record<string, unknown>,
): Promise<void> {
  const written = Object.entries(options).filter(([option, value]) =>
    typeof value === "number" && config.where(["jobs", name, "options", option]) !== undefined
  );
  if (written.length === 0) return;
  const refused = await unitlessDurationOptions(job, written);
  if (refused.length === 0) return;
  // Every bare number of the job at once, each at its place, with the reading that keeps its
  // meaning first (an 0.5 config's `maxAge: 2592000000` is 30d, not "2592000000d").
  const lines = refused.map((option) => {
    const value = options[option] as number;
    return `${locate(config, ["jobs", name, "options", option])}${value} is a number without ` +
      `a unit, which the job would read as ${value} milliseconds: write ` +
      `${formatDurationExactly(value)} to keep that, or ${value}d, ${value}h, ${value}m or ` +
      `${value}s if you meant another unit`;
  });
  throw new ConfigError(lines.join("\n"), {
    issues: refused.map((option, i) => ({
      path: ["jobs", name, "options", option],
      message: lines[i],
    })),
  });
}

export { flowFiles } from "../flow_files.ts";

/**
 * One entry of a flow's `schedule:` (a string, or `{ cron, timezone,
 * overlap, missed, abandoned, jitter, inputs, id }`), with where it is.
 */
interface FlowScheduleSpec {
  cron: string;
  timezone?: string;
  overlap?: OverlapPolicy;
  missed?: MissedPolicy;
  abandoned?: AbandonedPolicy;
  jitterMs?: number;
  /** Its `id:`, or `null`. */
  entry: string | null;
  inputs: Record<string, JsonValue>;
  path: (string | number)[];
}

/** The entries of a flow's `schedule:` (none without one). */
function flowSchedulesOf(value: unknown): FlowScheduleSpec[] {
  return scheduleEntries(value).map(({ id, cron, raw, path }) => {
    if (typeof raw === "string") return { cron, entry: id, inputs: {}, path };
    const v = raw;
    const jitter = v.jitterMs ?? v.jitter;
    const jitterMs = typeof jitter === "number" || typeof jitter === "string"
      ? parseDuration(jitter, `${formatPath(path)}.jitter`)
      : undefined;
    return {
      cron,
      entry: id,
      inputs: isRecord(v.inputs) ? v.inputs as Record<string, JsonValue> : {},
      path,
      ...(typeof v.timezone === "string" ? { timezone: v.timezone } : {}),
      ...(v.overlap === "queue" || v.overlap === "skip" ? { overlap: v.overlap } : {}),
      ...(v.missed === "run-once" || v.missed === "skip" ? { missed: v.missed } : {}),
      ...(v.abandoned === "rerun" || v.abandoned === "skip" ? { abandoned: v.abandoned } : {}),
      ...(jitterMs !== undefined ? { jitterMs } : {}),
    };
  });
}

/**
 * Where a scheduled flow's node log line comes from: its run, its node and,
 * for a node with `forEach:`, the item (see {@linkcode LoadSchedulesOptions.onLog}).
 *
 * @example
 * ```ts
 * import type { ScheduleLogContext } from "@flowstate/core/scheduler";
 * const context: ScheduleLogContext = { runId: "0mxcxif3nfamltx7ev9m", node: "say" };
 * ```
 */
export interface ScheduleLogContext {
  /** The run (a sub-run's, for a line of a sub-flow's node). */
  runId: string;
  /** The node. */
  node: string;
  /** The item of a `forEach` node. */
  item?: number;
}

/**
 * Options for {@linkcode loadSchedules}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import { loadSchedules, type LoadSchedulesOptions } from "@flowstate/core/scheduler";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const logs: string[] = [];
 * const options: LoadSchedulesOptions = { onLog: (id, message) => logs.push(`${id}: ${message}`) };
 * const schedules = await loadSchedules(rt, options);
 * assert.ok(schedules.some((s) => s.id === "job:gc")); // scheduled by default
 * ```
 */
export interface LoadSchedulesOptions {
  /** Timers passed to flow runs (default: real ones). */
  timers?: Timers;
  /**
   * Receives jobs' log lines and flows' node logs (`<node>: <message>`; for a flow's, `context`
   * names the run, the node and, for a `forEach` node, the item).
   */
  onLog?: (
    scheduleId: string,
    message: string,
    level: LogLevel,
    context?: ScheduleLogContext,
  ) => void;
  /** Whether the flows' schedules are loaded too (default `true`; `false`: the jobs' only). */
  flows?: boolean;
  /**
   * The config to take the schedules from (default: the runtime's). The
   * daemon passes its config file as it is now, read again after an edit;
   * the work still runs in `runtime` (its stores, its limits).
   */
  config?: ResolvedConfig;
  /**
   * Receives each flow file under `flows:` that cannot be used (it cannot be
   * read, or its flow or schedule is invalid), whose schedule is then left
   * out: a listing shows every other schedule and says which files could not
   * be used, and why. Without it (the daemon's start), such a file is a
   * {@linkcode ConfigError}.
   */
  onFlowProblem?: (problem: FlowFileProblem) => void;
  /**
   * Receives each enabled job of the config that cannot be scheduled (its
   * module cannot be loaded, an option or its default schedule is invalid),
   * which is then left out: a listing shows every other schedule and says
   * which jobs cannot run, and why. Without it (the daemon's start, an edit of
   * the config file), such a job is a {@linkcode ConfigError} naming all of
   * them.
   */
  onJobProblem?: (problem: JobProblem) => void;
}

/**
 * A job of the config that cannot be scheduled, and why (`message`: the
 * place in the config file, `flowstate.yaml:7:13: jobs.report.module: …`,
 * and how to fix it).
 *
 * @example
 * ```ts
 * import type { JobProblem } from "@flowstate/core/scheduler";
 *
 * const problem: JobProblem = {
 *   job: "report",
 *   message: 'Cannot schedule job "report": flowstate.yaml:7:13: jobs.report.module: …',
 * };
 * console.log(`job:${problem.job}: ${problem.message}`);
 * ```
 */
export interface JobProblem {
  /** The job's name in the config (its schedule's id is `job:<name>`). */
  job: string;
  /** Why it cannot be scheduled, where, and how to fix it. */
  message: string;
}

/**
 * A flow file under the config's `flows:` that cannot be used now, and why
 * (`message`: its file, line and column when it has them).
 *
 * @example
 * ```ts
 * import type { FlowFileProblem } from "@flowstate/core/scheduler";
 *
 * const problem: FlowFileProblem = {
 *   file: "/app/flows/tick.flow.yaml",
 *   flowId: "tick",
 *   message: 'Cannot schedule flow tick.flow.yaml: …:5:11: nodes[0].type: unknown node type "x"',
 * };
 * console.log(`${problem.file}: ${problem.message}`);
 * ```
 */
export interface FlowFileProblem {
  /** The flow file's path. */
  file: string;
  /**
   * The id of its flow when it last could be used (its schedule, if it had
   * one, is the one a running daemon keeps), else `null`.
   */
  flowId: string | null;
  /** Why it cannot be used. */
  message: string;
}

/**
 * The schedules a config defines: every enabled job with a schedule (its
 * own or the job's `defaultSchedule`; `retention` and `gc` by default), run
 * with {@linkcode runJob}, and every flow under `flows:` with a `schedule:`,
 * run with `runtime.runFlow`. Job options are validated now, so a bad option
 * is a {@linkcode ConfigError} before anything runs. A job's run records its
 * tick (`RunRecord.scheduledAt`, `schedule` `job:<name>`) as a flow's does.
 *
 * Each entry of a flow's `schedule:` (a list, or the one schedule) is a
 * schedule of its own: `flow:<id>` for the entry without `id` (as a single
 * schedule always was), `flow:<id>#<entry>` for one with an `id`. Its runs get
 * the entry's `inputs`, and record the tick (`RunRecord.scheduledAt`,
 * `schedule`; templates read `run.scheduledAt`, `run.schedule`). A scheduled
 * flow that declares an input named `scheduledAt` receives the tick's
 * nominal time too: an ISO string if the input's type is `string`, else
 * milliseconds since the epoch.
 *
 * @example
 * ```ts
 * import { loadSchedules } from "@flowstate/core/scheduler";
 * import { openRuntime } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * await using rt = await openRuntime({
 *   config: {
 *     stores: { main: { plugin: "memory" } },
 *     jobs: { backup: { schedule: "0 3 * * *" } }, // retention and gc are scheduled by default
 *   },
 * });
 * const schedules = await loadSchedules(rt);
 * const ids = schedules.map((s) => `${s.id} ${s.cron}`);
 * assert.ok(ids.includes("job:backup 0 3 * * *"));
 * ```
 */
export async function loadSchedules(
  runtime: Runtime,
  options: LoadSchedulesOptions = {},
): Promise<Schedule[]> {
  const config = options.config ?? runtime.config;
  const schedules: Schedule[] = [];
  // Every job's problems at once (an upgrade may have several to fix), then the first throw.
  const problems: ConfigError[] = [];
  const jobProblem = (name: string, err: ConfigError) => {
    if (options.onJobProblem === undefined) problems.push(err);
    else options.onJobProblem({ job: name, message: jobProblemMessage(name, err) });
  };
  for (const name of Object.keys(config.jobs)) {
    const settings = config.jobs[name];
    if (!settings.enabled) continue;
    let loaded: ConfiguredJob;
    try {
      loaded = await loadConfiguredJob(config, name);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      jobProblem(name, err);
      continue;
    }
    const { job, schedule } = loaded;
    if (schedule === null) continue;
    try {
      await resolveJobOptions(job, { ...settings.options });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      jobProblem(name, locateJobOptionsError(config, name, err));
      continue;
    }
    const id = `job:${name}`;
    schedules.push({
      id,
      cron: schedule,
      timezone: settings.timezone,
      overlap: settings.overlap,
      missed: settings.missed,
      abandoned: settings.abandoned,
      jitterMs: settings.jitterMs,
      run: ({ signal, started, tick }) =>
        runJob(runtime, job, {
          configOptions: { ...settings.options },
          signal,
          onStart: started,
          scheduled: { at: tick, schedule: id },
          progress: "quiet",
          onLog: (message, level) => options.onLog?.(id, message, level),
        }),
    });
  }

  if (problems.length === 1) throw problems[0];
  if (problems.length > 1) {
    throw new ConfigError(problems.map((p) => p.message).join("\n"), {
      issues: problems.flatMap((p) => p.issues),
      cause: problems[0],
    });
  }
  if (options.flows === false) return schedules;
  const files = new FlowScheduleFiles(runtime, options);
  schedules.push(...(await files.read()).schedules);
  if (options.onFlowProblem !== undefined) files.problems().forEach(options.onFlowProblem);
  return schedules;
}

/** What a listing says of job `name` that cannot be scheduled (`err`): what, where, how to fix. */
function jobProblemMessage(name: string, err: ConfigError): string {
  return `Cannot schedule job "${name}": ${err.message.split("\n").join("; ")} (fix it in the ` +
    `config, or set enabled: false under jobs.${name}: until then the daemon does not start, ` +
    `and a running one goes on with the config it had)`;
}

/** A flow file's schedule as last read: its status then, and what it gave. */
interface FlowFileState {
  stamp: string | undefined;
  /** Whether its status may be trusted to show a change (it had not changed for a while). */
  stable: boolean;
  text: string;
  /** Its schedules, one an entry of its `schedule:` (none: it has none). */
  schedules: Schedule[];
  flowId: string;
  /** The config's default time zone it was read with (a schedule without its own takes it). */
  timezone: string;
  /** Why it could not be used at its last read (reported then), if it could not. */
  problem?: string;
  /** What its schedule lacks to run (an `env:` variable unset here), said when it is new. */
  warnings?: string[];
  /** Where its `id:` is written (`file:line:column`), when known. */
  idAt?: string;
  /**
   * The file read fine, but another file's schedule has its flow id: what it
   * read as (its schedule waits until the id is its own); the state itself
   * is what the file had before.
   */
  claim?: FlowFileState;
  /** The flow as last read usable (kept while the file cannot be used; absent: never usable). */
  parsed?: ParsedFlow;
}

/**
 * A flow file under `flows:` and its flow as last read usable (see
 * {@linkcode FlowScheduleFiles.flows}).
 */
export interface ConfiguredFlowFile {
  /** The flow file. */
  file: string;
  /** Its flow, parsed and prepared. */
  flow: ParsedFlow;
}

/** What {@linkcode FlowScheduleFiles.read} found. */
interface FlowScheduleRead {
  /** Every flow schedule now. */
  schedules: Schedule[];
  /**
   * The files that cannot be used, each once per change: `new` when the file
   * could never be used since it appeared (it has no schedule to keep).
   */
  problems: { file: string; error: Error; new: boolean }[];
  /** The files that could not be used at the previous read and can now. */
  recovered: { file: string; flowId: string }[];
  /**
   * Schedules new or changed at this read whose flow lists an `env:`
   * variable this process does not have (every tick would fail): one line
   * each, `file:line:col: env X is listed…`.
   */
  warnings: { scheduleId: string; message: string }[];
}

/**
 * The schedules of the flow files under the config's `flows:`, read again
 * when a file changes: a file whose status (times, size, inode: one `stat`)
 * is what it was at its last read is not read (as the runtime's flow cache
 * does); a changed one is parsed and checked again. Each schedule runs its
 * file as it is when its tick comes (through the runtime's flow cache), so
 * an edit reaches the next run. What the daemon's scheduler looks at on each
 * of its turns.
 */
export class FlowScheduleFiles {
  readonly #runtime: Runtime;
  readonly #options: LoadSchedulesOptions;
  #config: ResolvedConfig;
  #files = new Map<string, FlowFileState>();
  /** Whether a read succeeded: from then on a file that cannot be used is a problem, not a throw. */
  #readBefore = false;

  /** The flow schedules of `runtime`'s config (or of `options.config`). */
  constructor(runtime: Runtime, options: LoadSchedulesOptions = {}) {
    this.#runtime = runtime;
    this.#options = options;
    this.#config = options.config ?? runtime.config;
  }

  /**
   * Take the flow files (`flows:`) and the default time zone from `config`
   * from the next {@linkcode FlowScheduleFiles.read} on (the config file was
   * edited): a file it no longer names has no schedule then, and a schedule
   * without its own zone takes the new default.
   */
  useConfig(config: ResolvedConfig): void {
    this.#config = config;
  }

  /**
   * Every flow schedule now. A file that cannot be read or checked throws a
   * {@linkcode ConfigError} at the first read (unless `onFlowProblem` is
   * given: then it has no schedule, and is a problem); later, it keeps the schedule
   * it had (none for a file new since), and the problem is returned in
   * `problems` (once per change of the file).
   */
  async read(): Promise<FlowScheduleRead> {
    const files = await flowFiles(this.#config);
    const timezone = this.#config.timezone;
    const before = this.#files;
    // Each file as it reads now (or as it read, when it did not change), and the errors of those
    // that cannot be read or checked.
    const now = new Map<string, FlowFileState>();
    const errors = new Map<string, Error>();
    for (const file of files) {
      const known = before.get(file);
      // A file whose id another file has too: what it read as (its schedule waits for the id).
      const read = known?.claim ?? known;
      const stamp = fileStamp(file);
      if (
        known !== undefined && read !== undefined && known.stable && stamp !== undefined &&
        stamp === known.stamp && known.timezone === timezone
      ) {
        now.set(file, read);
        continue;
      }
      try {
        now.set(file, await this.#readFile(file, stamp, read));
      } catch (err) {
        if (known === undefined && !this.#readBefore && !this.#options.onFlowProblem) throw err;
        // Reported once: the same status is not read again once stable, and the same problem
        // is not reported again. A file new since the first read has no schedule until it can
        // be used.
        const stable = stamp !== undefined && isStable(file);
        const problem = (err as Error)?.message;
        errors.set(file, err as Error);
        now.set(
          file,
          known === undefined
            ? { stamp, stable, text: "", schedules: [], flowId: "", timezone, problem }
            : { ...known, claim: undefined, stamp, stable, problem },
        );
      }
    }
    this.#settleFlowIds(now, before, errors);
    const problems: FlowScheduleRead["problems"] = [];
    const recovered: FlowScheduleRead["recovered"] = [];
    const schedules: Schedule[] = [];
    const warnings: FlowScheduleRead["warnings"] = [];
    for (const [file, state] of now) {
      const known = before.get(file);
      if (state.problem === undefined) {
        if (known?.problem !== undefined) recovered.push({ file, flowId: state.flowId });
      } else if (known?.problem !== state.problem) {
        // Never usable since it appeared (its id unknown): it has no schedule to keep.
        const isNew = known === undefined || known.flowId === "";
        const error = errors.get(file) ?? new ConfigError(state.problem);
        problems.push({ file, error, new: isNew });
      }
      if (state.schedules.length === 0) continue;
      // Said once per file, when a schedule of it is new or changed.
      const changed = state.schedules.find((s) => !known?.schedules.includes(s));
      if (changed !== undefined) {
        for (const message of state.warnings ?? []) {
          warnings.push({ scheduleId: changed.id, message });
        }
      }
      schedules.push(...state.schedules);
    }
    this.#files = now;
    this.#readBefore = true;
    return { schedules, problems, recovered, warnings };
  }

  /**
   * Two files under `flows:` whose schedules have one flow id: which file a
   * tick of `flow:<id>` runs would be a guess, so neither gets it by being
   * read first. The file that had the schedule at the last read keeps it (a
   * running daemon goes on as it was); every other file declaring that id is
   * a problem, saying where each declares it, and keeps what it had before
   * (nothing, for a file new since). With no file having it before (a
   * listing, a daemon's start) all of them are problems; at a daemon's start
   * (no `onFlowProblem`) that is a {@linkcode ConfigError}. Changes `now`.
   */
  #settleFlowIds(
    now: Map<string, FlowFileState>,
    before: ReadonlyMap<string, FlowFileState>,
    errors: Map<string, Error>,
  ): void {
    // Each round sets files back to what they had before, which had unique ids: few rounds.
    for (let round = 0; round <= now.size; round++) {
      const byFlowId = new Map<string, string[]>();
      for (const [file, state] of now) {
        if (state.schedules.length === 0) continue;
        byFlowId.set(state.flowId, [...byFlowId.get(state.flowId) ?? [], file]);
      }
      const shared = [...byFlowId].filter(([, same]) => same.length > 1);
      if (shared.length === 0) return;
      const message = (id: string, same: string[], holder?: string) =>
        sharedFlowIdMessage(id, same.map((f) => now.get(f)!.idAt ?? f), holder);
      if (!this.#readBefore && !this.#options.onFlowProblem) {
        throw new ConfigError(shared.map(([id, same]) => message(id, same)).join("\n"));
      }
      for (const [id, same] of shared) {
        const holder = same.find((f) => {
          const had = before.get(f);
          return had !== undefined && had.flowId === id && had.schedules.length > 0;
        });
        const problem = message(id, same, holder);
        for (const file of same) {
          if (file === holder) continue;
          const read = now.get(file)!;
          const known = before.get(file);
          const { stamp, stable } = read;
          now.set(
            file,
            known === undefined
              ? { stamp, stable, text: "", schedules: [], flowId: "", timezone: read.timezone }
              : { ...known, stamp, stable, timezone: read.timezone },
          );
          Object.assign(now.get(file)!, { problem, claim: read });
          errors.delete(file);
        }
      }
    }
  }

  /**
   * The flow files under `flows:` whose flow could be used at a read, each
   * with its flow as last read usable: a file that an edit broke keeps the
   * flow it had (what it triggers stays as it was), a file never usable
   * since it appeared is not here.
   */
  flows(): ConfiguredFlowFile[] {
    return [...this.#files].flatMap(([file, state]) =>
      state.parsed === undefined ? [] : [{ file, flow: state.parsed }]
    );
  }

  /**
   * The flow files that could not be used at the last
   * {@linkcode FlowScheduleFiles.read} (a file that could not be used before
   * keeps the schedule it had then).
   */
  problems(): FlowFileProblem[] {
    return [...this.#files].filter(([, state]) => state.problem !== undefined).map((
      [file, state],
    ) => ({ file, flowId: state.flowId === "" ? null : state.flowId, message: state.problem! }));
  }

  async #readFile(
    file: string,
    stamp: string | undefined,
    known: FlowFileState | undefined,
  ): Promise<FlowFileState> {
    const runtime = this.#runtime;
    const parsed = await asConfigError("schedule", file, () => loadConfiguredFlow(runtime, file));
    const stable = stamp !== undefined && stamp === fileStamp(file) && isStable(file);
    const text = parsed.source ?? "";
    const zone = this.#config.timezone;
    // Touched, not changed: the schedule it gave stands (the same object, so nothing changed).
    if (known !== undefined && known.text === text && known.timezone === zone) {
      return { ...known, stamp, stable, problem: undefined, parsed: known.parsed ?? parsed };
    }
    const definition = parsed.definition;
    const idPosition = parsed.locate(["id"]);
    const idAt = idPosition === undefined
      ? file
      : `${file}:${idPosition.line}:${idPosition.column}`;
    const specs = flowSchedulesOf((definition as { schedule?: unknown }).schedule);
    if (specs.length === 0) {
      return {
        stamp,
        stable,
        text,
        schedules: [],
        flowId: definition.id,
        timezone: zone,
        idAt,
        parsed,
      };
    }
    const zones = specs.map((spec) => spec.timezone ?? zone);
    // Read again for a new default zone that these schedules do not take: they stand as they were.
    if (
      known !== undefined && known.text === text && known.schedules.length === specs.length &&
      known.schedules.every((s, i) => s.timezone === zones[i])
    ) {
      return {
        ...known,
        stamp,
        stable,
        timezone: zone,
        problem: undefined,
        parsed: known.parsed ?? parsed,
      };
    }
    const schedules = specs.map((spec, i) => {
      const timezone = zones[i];
      try {
        validateCron(spec.cron, timezone);
      } catch (err) {
        const at = parsed.locate(spec.path);
        const where = at === undefined ? file : `${file}:${at.line}:${at.column}`;
        throw new ConfigError(`${where}: ${formatPath(spec.path)}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      return this.#flowSchedule(file, definition, spec, timezone);
    });
    const warnings = unsetEnvHere(definition, parsed.locate).map((p) =>
      `${p.line === undefined ? file : `${file}:${p.line}:${p.column}`}: ${p.message} ` +
      `(every tick of this schedule fails until it is set)`
    );
    return {
      stamp,
      stable,
      text,
      schedules,
      flowId: definition.id,
      timezone: zone,
      warnings,
      idAt,
      parsed,
    };
  }

  /**
   * The schedule of one entry of a flow's `schedule:`: each tick runs the
   * file as it is then, with the entry's inputs (and the tick's time as
   * `scheduledAt`, when the flow declares that input), recorded with the
   * tick (`run.scheduledAt`, `run.schedule`).
   */
  #flowSchedule(
    file: string,
    definition: ParsedFlow["definition"],
    spec: FlowScheduleSpec,
    timezone: string,
  ): Schedule {
    const runtime = this.#runtime;
    const id = flowScheduleId(definition.id, spec.entry);
    const scheduledAt = definition.inputs?.[SCHEDULED_AT_INPUT];
    const options = this.#options;
    const entryInputs = spec.inputs;
    return {
      id,
      cron: spec.cron,
      timezone,
      overlap: spec.overlap ?? "skip",
      missed: spec.missed ?? "skip",
      abandoned: spec.abandoned ?? "skip",
      jitterMs: spec.jitterMs ?? 0,
      flow: { id: definition.id, entry: spec.entry, inputs: structuredClone(entryInputs) },
      // The file as it is at the tick (an edit reaches the next run; the runtime's flow cache
      // reads it again only when it changed).
      run: async ({ signal, tick, started }) => {
        let reported = false;
        const scheduled = { at: tick, schedule: id };
        try {
          return await runtime.runFlow(file, {
            signal,
            timers: options.timers,
            input: {
              ...structuredClone(entryInputs),
              ...(scheduledAt === undefined ? {} : {
                [SCHEDULED_AT_INPUT]: scheduledAt.type === "string" ? tickKey(tick) : tick,
              }),
            },
            scheduled,
            onEvent: (event, run) => {
              // The first event is the run's own start (sub-runs start later).
              if (!reported) {
                reported = true;
                started?.(run.id);
              }
              if (event.type === "node.log" && options.onLog) {
                options.onLog(id, `${event.node}: ${event.message ?? ""}`, event.level ?? "info", {
                  runId: run.id,
                  node: event.node,
                  ...(event.item === undefined ? {} : { item: event.item }),
                });
              }
            },
          });
        } catch (err) {
          if (reported || !unloadable(err)) throw err;
          // The file can no longer be run (an edit broke it, or it is gone): no run started. A
          // failed run says so where runs are watched (runs ls, metrics, the inspector), not only
          // on the daemon's log.
          return await recordUnloadable(runtime, definition.id, file, err as Error, started, {
            inputs: entryInputs,
            scheduled,
          });
        }
      },
    };
  }
}

/** Whether `err` says a flow file could not be read or checked (no run started). */
function unloadable(err: unknown): boolean {
  return err instanceof FlowValidationError || err instanceof ConfigError ||
    err instanceof Deno.errors.NotFound;
}

/**
 * Record a scheduled tick of flow `flowId` whose `file` could not be loaded
 * as a failed run (no node ran; its version is `"unloadable"`), so that the
 * failure is seen where runs are: `runs ls --status failed`, metrics,
 * `schedules ls`, the inspector.
 */
async function recordUnloadable(
  runtime: Runtime,
  flowId: string,
  file: string,
  err: Error,
  started: ((runId: string) => void) | undefined,
  tick: { inputs: Record<string, JsonValue>; scheduled: ScheduledTick },
): Promise<RunRecord> {
  const records = await runtime.records();
  const recorder = await RunRecorder.start(records, runtime.clock, {
    flowId,
    flowVersion: UNLOADABLE_VERSION,
    inputs: tick.inputs,
    scheduledAt: tick.scheduled.at,
    schedule: tick.scheduled.schedule,
  });
  started?.(recorder.id);
  const message = err instanceof FlowValidationError
    ? `Cannot run flow ${basename(file)}: ${err.message.split("\n").join("; ")}`
    : err.message;
  return await recorder.finish({
    status: "failed",
    outputs: null,
    nodes: {},
    error: { message },
  });
}

/**
 * The `flowVersion` of a scheduled run whose flow file could not be loaded:
 * no version of the flow ran.
 */
export const UNLOADABLE_VERSION = "unloadable";

/**
 * Run `load` (reading or preparing the config's flow `file`); a
 * `FlowValidationError` becomes a `ConfigError` "Cannot `verb` flow <file>: …"
 * with its problems on one line (file:line:column kept).
 */
export async function asConfigError<T>(
  verb: string,
  file: string,
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (!(err instanceof FlowValidationError)) throw err;
    throw new ConfigError(
      `Cannot ${verb} flow ${basename(file)}: ${err.message.split("\n").join("; ")}`,
      { cause: err },
    );
  }
}

/**
 * A config's flow file parsed and prepared as `runtime` runs it, through the
 * runtime's cache of prepared flows (see `src/flow_cache.ts`): a file whose
 * content did not change since it was last loaded is not parsed or prepared
 * again (`GET /api/schedules` loads every flow file on each request), and an
 * edited one is loaded at once. A flow with problems is loaded again without
 * the cache, for the full report (its sub-flows' and stores' problems too).
 */
async function loadConfiguredFlow(runtime: Runtime, file: string): Promise<ParsedFlow> {
  const cache = flowCacheOf(runtime);
  if (cache !== undefined) {
    const pool = sandboxPoolOf(runtime);
    try {
      const loaded = await cache.load(file, {
        cwd: runtime.config.baseDir,
        ...(pool === undefined ? {} : { pool }),
        stores: runtime.storeNames,
        trusted: runtime.config.nodes.trusted,
        trustedBaseDir: runtime.config.baseDir,
        ...programNodes(runtime),
      });
      return loaded.parsed;
    } catch (err) {
      if (!(err instanceof FlowValidationError)) throw err;
      // Reported below, as a load without the cache reports it.
    }
  }
  const parsed = await loadFlowFile(file, parseOptionsOf(runtime));
  await prepareConfiguredFlow(runtime, parsed);
  return parsed;
}

/** `{ nodeTypes }`: the program's node types of `runtime`, if it has any (else `{}`). */
function programNodes(runtime: Runtime): { nodeTypes?: ProgramNodeTypes } {
  const nodeTypes = programNodesOf(runtime);
  return nodeTypes === undefined ? {} : { nodeTypes };
}

/**
 * How `loadFlowFile` parses a config's flow for `runtime`: its store names,
 * and the program's node types as known names besides the built-ins.
 */
export function parseOptionsOf(
  runtime: Runtime,
): { stores: readonly string[]; nodeTypes?: ReadonlySet<string> } {
  const nodeTypes = programNodesOf(runtime);
  return {
    stores: runtime.storeNames,
    ...(nodeTypes === undefined
      ? {}
      : { nodeTypes: new Set([...builtinNodes.keys(), ...nodeTypes.keys()]) }),
  };
}

/** Prepare a config's flow as `runtime` runs it (its stores, trusted nodes and Workers). */
export async function prepareConfiguredFlow(runtime: Runtime, parsed: ParsedFlow): Promise<void> {
  await loadFlowIn(parsed, {
    ...(sandboxPoolOf(runtime) === undefined ? {} : { pool: sandboxPoolOf(runtime) }),
    stores: runtime.storeNames,
    trusted: runtime.config.nodes.trusted,
    trustedBaseDir: runtime.config.baseDir,
    ...programNodes(runtime),
  });
}
