/**
 * `flowstate jobs ls` and `flowstate jobs run <name>`: list the maintenance
 * jobs with their schedules and last runs, and run one now (for OS cron or
 * systemd timers, or by hand).
 *
 * `jobs run` exit codes: 0 the job succeeded; 1 it failed or was cancelled;
 * 2 unknown job or invalid option (nothing runs); 130, 143 or 129 cancelled
 * by Ctrl-C (SIGINT), SIGTERM or SIGHUP (a second one exits at once, the
 * job's run recorded as cancelled).
 *
 * `--json` output (one JSON document on stdout, stable):
 * - `jobs ls`: `[{ "name", "description", "builtin", "module", "enabled", "scheduled",
 *   "schedule", "timezone", "lastRun": { "id", "status", "startedAt", "durationMs" } | null
 *   (the run that started last, `startedAt` its start; with `"archived": true` and its
 *   `"archive"` file when it is one the archive job moved to `<home>/archive/`),
 *   "nextRun": number | null, "error": string | null, "paths": { "<option>": path } }]`
 *   (`module` is `null` for a built-in; times are ms since the epoch; `schedule` is `null` for a
 *   job without one; `paths`: the config's options naming files, absolute)
 * - `jobs run`: the run record `{ "id", "flowId": "job:<name>", "status", "inputs" (the
 *   options), "outputs" (the job's result), "startedAt", "endedAt", "durationMs", "nodes",
 *   "error" }`
 *
 * @module
 */
import { didYouMean } from "../_suggest.ts";
import type { RunRecord } from "../records/types.ts";
import { builtinJobNames, knownJobNames } from "../jobs/builtin.ts";
import { resolvePathOptions, runJob, unitlessDurationOptions } from "../jobs/run.ts";
import type { Job } from "../jobs/job.ts";
import { openRuntime, type Runtime, setRunSource } from "../runtime.ts";
import { nextTick } from "../cron.ts";
import { loadConfiguredJob, locateJobOptionsError } from "../scheduler/from_config.ts";
import {
  formatDuration,
  formatTime,
  lastRunText,
  printTable,
  RUNNING_GONE_NOTE,
} from "./format.ts";
import { abandonedRun, MIN_ABANDONED_MS } from "../records/heartbeat.ts";
import { type LastRunBrief, lastRunBrief, lastRunFinder } from "../../jobs/_last_runs.ts";
import { UsageError } from "./input.ts";
import {
  type GlobalOptions,
  interruptible,
  openForReading,
  printPermissionHint,
  printWarning,
  progressMode,
  unlessMissing,
} from "./common.ts";
import { ConfigError, messageOf } from "../errors.ts";
import { createProgress, type ProgressMode } from "../jobs/progress.ts";
import type { IndexBuildEvent } from "../store/driver.ts";
import { parseJson } from "../_json.ts";
import type { WarningHandler } from "../log.ts";

/** One row of `jobs ls --json`. */
export interface JobListing {
  /** The job's name (in the config, and in run records as `job:<name>`). */
  name: string;
  /** One line about it, or `null` if it could not be loaded. */
  description: string | null;
  /** Whether it is a built-in job. */
  builtin: boolean;
  /** The module from the config, or `null` for a built-in. */
  module: string | null;
  /** `false` when the config disables it (it can still be run by hand). */
  enabled: boolean;
  /** Whether the daemon runs it. */
  scheduled: boolean;
  /** Its cron expression (config, else the job's default), or `null`. */
  schedule: string | null;
  /** The schedule's time zone. */
  timezone: string;
  /**
   * The run that started last, or `null`: recorded, or one the archive job
   * moved to `<home>/archive/` when that is newer (then marked `archived`).
   */
  lastRun: LastRunBrief | null;
  /** The next tick (ms since the epoch) if scheduled, else `null`. */
  nextRun: number | null;
  /** Why the job could not be loaded, or `null`. */
  error: string | null;
  /**
   * The config's options that name files or folders (the job's
   * `pathOptions`), absolute: a relative one is the config file's folder's.
   */
  paths: Record<string, string | string[]>;
}

/** The heading of {@linkcode pathLines} in tables' output. */
export const PATHS_HEADING =
  "Files the jobs write and read (paths in the config are relative to its folder):";

/**
 * One line a path option of the config's jobs, for people:
 * `job backup: out /srv/app/backups/ (jobs.backup.options.out, flowstate.yaml:9:20)`.
 */
export function pathLines(
  config: Runtime["config"],
  jobs: readonly { name: string; paths?: Record<string, string | string[]> }[],
): string[] {
  const lines: string[] = [];
  for (const { name, paths } of jobs) {
    for (const [option, value] of Object.entries(paths ?? {})) {
      const at = config.where(["jobs", name, "options", option]);
      lines.push(
        `job ${name}: ${option} ${Array.isArray(value) ? value.join(", ") : value} ` +
          `(jobs.${name}.options.${option}${at === undefined ? "" : `, ${at}`})`,
      );
    }
  }
  return lines;
}

/** The job names `jobs ls` shows and `jobs run` accepts: the built-ins, then the configured ones. */
function jobNames(runtime: Runtime): string[] {
  return knownJobNames(runtime.config.jobs);
}

/**
 * Describe every job: built-in and configured, with schedule, last and next
 * run (`onWarning`: a damaged archive file, whose runs are left out).
 */
export async function describeJobs(
  runtime: Runtime,
  onWarning?: WarningHandler,
): Promise<JobListing[]> {
  const config = runtime.config;
  // No records store yet (a read-only runtime): no job has run.
  const records = await unlessMissing(() => runtime.records());
  const now = runtime.clock.now();
  const findLast = await lastRunFinder(runtime, records, onWarning, { started: true });
  const builtins = builtinJobNames();
  const out: JobListing[] = [];
  for (const name of jobNames(runtime)) {
    const settings = config.jobs[name];
    const configured = settings !== undefined;
    const listing: JobListing = {
      name,
      description: null,
      builtin: builtins.includes(name) && settings?.module === undefined,
      module: settings?.module ?? null,
      enabled: settings?.enabled ?? true,
      scheduled: false,
      schedule: settings?.schedule ?? null,
      timezone: settings?.timezone ?? config.timezone,
      lastRun: null,
      nextRun: null,
      error: null,
      paths: {},
    };
    try {
      const loaded = await loadConfiguredJob(config, name);
      listing.description = loaded.job.description;
      listing.schedule = loaded.schedule;
      listing.paths = loaded.paths;
    } catch (err) {
      listing.error = messageOf(err);
    }
    listing.scheduled = configured && listing.enabled && listing.schedule !== null &&
      listing.error === null;
    if (listing.scheduled) listing.nextRun = nextTick(listing.schedule!, now, listing.timezone);
    listing.lastRun = lastRunBrief(await findLast(`job:${name}`));
    out.push(listing);
  }
  return out;
}

/**
 * The ids of the last runs listed that are recorded running but whose
 * process is gone (no heartbeat for over `MIN_ABANDONED_MS`): the tables
 * show them `running?`, as `runs ls` does, and say what it means once
 * (`RUNNING_GONE_NOTE`). A run held by a queue worker's claim is its lease's
 * business, never this.
 */
export async function goneLastRuns(
  runtime: Runtime,
  lastRuns: readonly ({ id: string; status: string; archived?: true } | null)[],
): Promise<Set<string>> {
  const gone = new Set<string>();
  const running = lastRuns.filter((last) => last?.status === "running" && !last.archived);
  if (running.length === 0) return gone;
  const records = await runtime.records();
  const now = runtime.clock.now();
  for (const last of running) {
    const run = await records.getRun(last!.id);
    if (run !== null && abandonedRun(run, now, MIN_ABANDONED_MS) !== null) gone.add(run.id);
  }
  return gone;
}

/** `jobs ls [--json]`: exit 1 when a job cannot be loaded (it is listed with its error). */
export async function jobsList(
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  const jobs = await describeJobs(runtime, printWarning);
  const tz = runtime.config.timezone;
  if (options.json) {
    console.log(JSON.stringify(jobs));
  } else {
    const gone = await goneLastRuns(runtime, jobs.map((j) => j.lastRun));
    printTable(
      ["NAME", "SCHEDULE", "TIMEZONE", "ENABLED", "LAST RUN", "NEXT RUN", "DESCRIPTION"],
      jobs.map((j) => [
        j.name,
        j.schedule === null ? "-" : j.scheduled ? j.schedule : `(${j.schedule})`,
        j.scheduled ? j.timezone : "-",
        j.enabled ? "yes" : "no",
        lastRunText(j.lastRun, tz, gone),
        formatTime(j.nextRun, tz),
        j.description ?? "(cannot be loaded)",
      ]),
    );
    if (gone.size > 0) console.error(RUNNING_GONE_NOTE);
    if (jobs.some((j) => j.schedule !== null && !j.scheduled)) {
      console.log(
        '\nA schedule in parentheses is not in effect: the daemon runs a job on it once the job is under "jobs:" ' +
          "in the config, enabled, and loads",
      );
    }
    const paths = pathLines(runtime.config, jobs);
    if (paths.length > 0) console.log(`\n${PATHS_HEADING}`);
    for (const line of paths) console.log(line);
  }
  for (const job of jobs) {
    if (job.error !== null) console.error(`error: job "${job.name}": ${job.error.split("\n")[0]}`);
  }
  return jobs.some((j) => j.error !== null) ? 1 : 0;
}

/**
 * Parse `--option name=value` pairs. A value is taken as JSON when it parses
 * (`3`, `true`, `["a"]`, `{"x":1}`), otherwise as a string (`30d`). A pair
 * without `=`, with an empty name, or a name given twice is a
 * {@linkcode UsageError}.
 */
export function parseOptionPairs(pairs: readonly string[]): Record<string, unknown> {
  const options = new Map<string, unknown>();
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq === -1) {
      throw new UsageError(
        `Invalid --option "${pair}": expected name=value, for example --option maxAge=30d`,
      );
    }
    const name = pair.slice(0, eq).trim();
    if (name === "") {
      throw new UsageError(
        `Invalid --option "${pair}": the name before "=" is empty; expected name=value`,
      );
    }
    if (options.has(name)) {
      throw new UsageError(`Invalid --option "${pair}": option "${name}" is given twice`);
    }
    const text = pair.slice(eq + 1);
    let value: unknown = text;
    try {
      value = parseJson(text);
    } catch {
      // Not JSON: a plain string.
    }
    options.set(name, value);
  }
  return Object.fromEntries(options);
}

/**
 * Refuse `--option maxAge=30`: a bare number is a duration in milliseconds to
 * the job (as in the library), so `maxAge=30` would delete every run older than
 * 30 ms. The CLI's own duration flags refuse a number without a unit; an
 * option the job's schema reads as a duration is refused the same way. The
 * schema is the judge: an option is a duration when its text, given as text,
 * is refused for having no unit.
 */
async function refuseUnitlessDurations(job: Job, pairs: readonly string[]): Promise<void> {
  const entries = pairs.map((pair) => {
    const eq = pair.indexOf("=");
    return [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim(), pair] as const;
  });
  const [name] = await unitlessDurationOptions(job, entries);
  if (name === undefined) return;
  const [, text, pair] = entries.find((entry) => entry[0] === name)!;
  throw new UsageError(
    `Invalid --option "${pair}": ${name} is a duration: add a unit (${name}=${text}d for days, ` +
      `${name}=${text}h, ${name}=${text}m, ${name}=${text}s, or ${name}=${text}ms)`,
  );
}

/** Options of `flowstate jobs run`. */
export interface JobsRunOptions {
  /** `--option name=value`, repeatable; merged over the config's `jobs.<name>.options`. */
  option?: string[];
  /** `--dry-run`: report what would be done without changing anything. */
  dryRun?: boolean;
  /** `--json`: print the run record. */
  json?: boolean;
  /** `--quiet`: no progress and no log lines. */
  quiet?: boolean;
}

/** `jobs run <name> [--option k=v]… [--dry-run] [--json] [--quiet]`. */
export async function jobsRun(
  name: string,
  options: JobsRunOptions,
  global: GlobalOptions,
): Promise<number> {
  const cliOptions = parseOptionPairs(options.option ?? []);
  await using runtime = await openRuntime({
    config: global.config,
    // An index built as a store opens (the records' store among them) shows as a progress bar.
    onWarning: (warning) => {
      if (warning.code !== "INDEX_BUILD" || !BUILD_LINE.test(warning.message)) {
        printWarning(warning);
      }
    },
    onIndexBuild: indexBuildProgress(progressMode(options.quiet)),
  });
  setRunSource(runtime, "cli");
  const names = jobNames(runtime);
  if (!names.includes(name)) {
    throw new UsageError(
      `Unknown job "${name}"${didYouMean(name, names)}: the jobs are ${names.join(", ")}` +
        ` (add others under "jobs:" in the config, with a module)`,
    );
  }
  const { job, config } = await loadConfiguredJob(runtime.config, name);
  await refuseUnitlessDurations(job, options.option ?? []);

  const { value: record, interrupted, exitCode } = await interruptible(
    `Cancelling job "${name}"`,
    (signal) =>
      runJob(runtime, job, {
        configOptions: { ...config.options },
        // A path typed on the command line is the working directory's (the config's, its folder's).
        options: resolvePathOptions(job, cliOptions, Deno.cwd()),
        dryRun: options.dryRun ?? false,
        signal,
        // The library prints nothing: the CLI asks for a progress bar and log lines on stderr.
        progress: progressMode(options.quiet),
        ...(options.quiet ? {} : { onLog: (message) => console.error(`[${job.name}] ${message}`) }),
      }).catch((err) => {
        // An option from the config is shown where it is written.
        if (!(err instanceof ConfigError) || !Object.hasOwn(runtime.config.jobs, name)) throw err;
        throw locateJobOptionsError(runtime.config, name, err, (option) => !(option in cliOptions));
      }),
  );

  if (options.json) console.log(JSON.stringify(record));
  else printSummary(name, record, options.dryRun ?? false);
  if (record.status === "succeeded") return 0;
  return interrupted && record.status === "cancelled" ? exitCode : 1;
}

function printSummary(name: string, record: RunRecord, dryRun: boolean): void {
  const lines = [
    `job:      ${name}${dryRun ? " (dry run: nothing was changed)" : ""}`,
    `run:      ${record.id}`,
    `status:   ${record.status}`,
    `duration: ${formatDuration(record.durationMs)}`,
  ];
  if (record.error) lines.push(`error:    ${record.error.message}`);
  const result = record.outputs ?? {};
  const keys = Object.keys(result);
  if (keys.length > 0) {
    lines.push("result:");
    for (const key of keys) lines.push(`  ${key}: ${JSON.stringify(result[key])}`);
  }
  console.log(lines.join("\n"));
  if (record.error) printPermissionHint(record.error.message);
}

/** The `INDEX_BUILD` lines a progress bar replaces (a drop is still printed). */
const BUILD_LINE = /^(building|built|resuming the build of) /;

/**
 * Show index builds as a progress bar (or plain lines, or nothing when
 * quiet): one phase per index, with its count where the backend tells it.
 */
export function indexBuildProgress(
  mode: ProgressMode,
): (event: IndexBuildEvent & { store: string }) => void {
  const progress = createProgress({ mode });
  let started = 0;
  return (event) => {
    const label = `store "${event.store}": ${event.label}`;
    if (event.phase === "start") {
      started = performance.now();
      progress.start(`building ${label}`, event.total);
      if (event.done) progress.update(event.done);
    } else if (event.phase === "progress") {
      if (event.done !== undefined) progress.update(event.done);
    } else {
      if (event.done !== undefined) progress.update(event.done);
      progress.finish(`built ${label} in ${Math.round(performance.now() - started)} ms`);
    }
  };
}
