/**
 * Loading and running jobs. A run is recorded like a flow run, under the flow
 * id `job:<name>`: status, timings, options (as inputs) and what the job did
 * (as outputs), with its log lines as events.
 *
 * @module
 */
import { withActor } from "../store/actor.ts";
import {
  importDefault,
  importFailure,
  importFoundModule,
  mappingHint,
  moduleUrl,
} from "../loader.ts";
import { builtinJobNames, builtinJobUrl } from "./builtin.ts";
import { assertKnownFields, didYouMean, fieldNames } from "../_suggest.ts";
import { ConfigError, messageOf } from "../errors.ts";
import { callGuarded } from "../_callback.ts";
import { describeValue } from "../flow/_shapes.ts";
import { validateOptions } from "../plugin.ts";
import { checkScheduledOption, notifyRunEnded, type Runtime } from "../runtime.ts";
import type { JsonValue } from "../store/types.ts";
import { serializeValue } from "../store/values.ts";
import { RunRecorder } from "../records/recorder.ts";
import type { RunRecord, ScheduledTick } from "../records/types.ts";
import { isJob, type Job, type JobContext, type JobResult } from "./job.ts";
import type { LogLevel } from "../log.ts";
import { createProgress, type Progress, type ProgressMode } from "./progress.ts";
import type { BuiltinJobName, JobOptionsFor, JobRef } from "./options.ts";
import { type EventBus, eventBusOf, unrecorded } from "../runtime_events.ts";
import type { Clock } from "../store/types.ts";
import { parseJson } from "../_json.ts";
import { isAbsolute, resolve, resolveAsWritten } from "../_path.ts";

/**
 * The built-in jobs, each by a literal `import()`: part of the module graph,
 * so loading one needs no `--allow-read` of this package's files (nor
 * `--allow-net` when the package comes from `jsr:`). The same modules as
 * {@linkcode builtinJobUrl} names.
 */
const IN_GRAPH: Readonly<Record<BuiltinJobName, () => Promise<{ default: unknown }>>> = {
  retention: () => import("../../jobs/retention.ts"),
  gc: () => import("../../jobs/gc.ts"),
  archive: () => import("../../jobs/archive.ts"),
  backup: () => import("../../jobs/backup.ts"),
  restore: () => import("../../jobs/restore.ts"),
  migrate: () => import("../../jobs/migrate.ts"),
  "migrate-store": () => import("../../jobs/migrate_store.ts"),
  rekey: () => import("../../jobs/rekey.ts"),
  "build-indexes": () => import("../../jobs/build_indexes.ts"),
};

/**
 * Load a job by built-in name, file path (relative to `baseDir`) or any
 * specifier Deno can import.
 *
 * @example
 * ```ts
 * import { ConfigError } from "@flowstate/core";
 * import { loadJob } from "@flowstate/core/jobs";
 * import assert from "node:assert/strict";
 *
 * const backup = await loadJob("backup");
 * assert.equal(backup.name, "backup");
 * assert.equal(backup.kind, "flowstate.job");
 * const unknown = await loadJob("bakup").catch((err) => err);
 * assert.ok(unknown instanceof ConfigError);
 * ```
 */
export async function loadJob(specifier: string | Job, baseDir: string = Deno.cwd()): Promise<Job> {
  if (typeof specifier !== "string") {
    if (isJob(specifier)) return specifier;
    throw new TypeError("Cannot load job: expected a name, a module specifier or a job object");
  }
  const url = builtinJobUrl(specifier) ?? moduleUrl(specifier, baseDir);
  if (url === undefined) {
    const suggestion = didYouMean(specifier, builtinJobNames());
    throw new ConfigError(
      `Unknown job "${specifier}"${suggestion}: use a built-in (${
        builtinJobNames().join(", ")
      }), a module path starting with ./${
        suggestion === "" ? `, or a package name (${mappingHint(specifier, baseDir)})` : ""
      }`,
    );
  }
  let exported: unknown;
  try {
    exported = Object.hasOwn(IN_GRAPH, specifier)
      ? (await IN_GRAPH[specifier as BuiltinJobName]()).default
      : await importDefault(url);
  } catch (err) {
    throw new ConfigError(
      `Cannot load job "${specifier}": ${importFailure(err)}${
        importFoundModule(err) ? "" : ` (resolved to ${url})`
      }`,
      { cause: err },
    );
  }
  if (!isJob(exported)) {
    throw new ConfigError(
      `Cannot load job "${specifier}": its default export is not a job; export default defineJob({ name, description, optionsSchema, run })`,
    );
  }
  return exported;
}

/**
 * Options for {@linkcode runJob}. `O` is the job's own options type: for a
 * built-in job, its options (see {@linkcode JobOptionsFor}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineJob, openRuntime, runJob, type RunJobOptions } from "@flowstate/core";
 * import { z } from "zod";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const greet = defineJob({
 *   name: "greet",
 *   description: "says hello",
 *   optionsSchema: z.strictObject({ who: z.string() }),
 *   run: (ctx, { who }) => {
 *     ctx.log(`hello ${who}`);
 *     return { dryRun: ctx.dryRun };
 *   },
 * });
 * const lines: string[] = [];
 * const options: RunJobOptions<{ who: string }> = {
 *   options: { who: "Ada" },
 *   dryRun: true,
 *   onLog: (message) => lines.push(message),
 * };
 * const run = await runJob(rt, greet, options);
 * assert.deepEqual(lines, ["hello Ada"]);
 * assert.equal(run.outputs?.dryRun, true);
 * ```
 */
export interface RunJobOptions<O extends object = Record<string, unknown>> {
  /** Options for the job, merged over its defaults (and over `configOptions`). */
  options?: O;
  /**
   * Options from the config file (`jobs.<name>.options`), merged between
   * defaults and `options`; a relative path among the job's `pathOptions`
   * resolves against the config file's folder (`runtime.config.baseDir`).
   */
  configOptions?: Record<string, unknown>;
  /** Report what would be done without changing anything. */
  dryRun?: boolean;
  /** Cancels the job (it is then recorded as `cancelled`). */
  signal?: AbortSignal;
  /**
   * How progress is shown: a {@linkcode Progress} (from `createProgress`), or
   * a mode for one that writes to stderr (`"tty"`, `"plain"`). Default
   * `"quiet"`: the library never prints unless asked to. A `Progress` whose
   * method throws is treated as `onLog` is: the job goes on.
   */
  progress?: ProgressMode | Progress;
  /**
   * Receives each log line (they are kept in the run's events either way).
   * Default: none; nothing is printed. If it (or `onStart`, or a method of a
   * `progress` object) throws, the job goes on all the same, and `runJob`
   * rejects with that error once the job's end is recorded. An `async` one is
   * not awaited; its rejection counts as a throw if it comes before the end
   * is recorded, and is ignored (never an unhandled rejection) after.
   */
  onLog?: (message: string, level: LogLevel) => void;
  /** Directory a job module path resolves against (default: the config's). */
  baseDir?: string;
  /** Called with the run's id once the run is recorded as `running`, before the job starts. */
  onStart?: (runId: string) => void;
  /**
   * The schedule's tick that started the run: recorded as its
   * `scheduledAt` and `schedule` (the daemon's schedule `job:<name>` gives it).
   */
  scheduled?: ScheduledTick;
}

/**
 * Validate a job's options: defaults, then config options, then `options`.
 * A bad option is a {@linkcode ConfigError} naming the job and the field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError } from "@flowstate/core";
 * import { defineJob, resolveJobOptions } from "@flowstate/core/jobs";
 * import { z } from "zod";
 *
 * const greet = defineJob({
 *   name: "greet",
 *   description: "says hello",
 *   optionsSchema: z.strictObject({ who: z.string(), loud: z.boolean() }),
 *   defaults: { who: "world", loud: false },
 *   run: (_ctx, { who }) => ({ greeting: `hello ${who}` }),
 * });
 * // defaults, then the config's options, then the caller's
 * const options = await resolveJobOptions(greet, { loud: true }, { who: "Ada" });
 * assert.deepEqual(options, { who: "Ada", loud: true });
 * await assert.rejects(() => resolveJobOptions(greet, {}, { who: 1 }), ConfigError);
 * ```
 */
export async function resolveJobOptions<O>(
  job: Job<O>,
  configOptions: Record<string, unknown> = {},
  options: Record<string, unknown> = {},
): Promise<O> {
  const merged = { ...(job.defaults ?? {}), ...configOptions, ...options };
  return await validateOptions(
    { name: job.name, optionsSchema: job.optionsSchema },
    merged,
    `Cannot run job "${job.name}"`,
  );
}

/**
 * The options among `entries` that `job` reads as a duration and that are
 * given as a bare number other than 0 (milliseconds to the job). A number
 * typed by a person on a command line or in `flowstate.yaml` (`maxAge: 30`)
 * almost never means milliseconds, and for a job that deletes by age it
 * deletes everything: the CLI and the config refuse it. The job's schema
 * judges: an option is a duration when its text, given as text, is refused
 * for having no unit.
 */
export async function unitlessDurationOptions(
  job: Job,
  entries: Iterable<readonly [string, unknown, ...unknown[]]>,
): Promise<string[]> {
  const names: string[] = [];
  for (const [name, value] of entries) {
    const text = typeof value === "number" ? String(value) : typeof value === "string" ? value : "";
    // 0 is 0 in any unit.
    if (!/^\d+(?:\.\d+)?$/.test(text.trim()) || Number(text) === 0) continue;
    let result = job.optionsSchema["~standard"].validate({ [name]: text.trim() });
    if (result instanceof Promise) result = await result;
    const unitless = result.issues?.some((issue) =>
      (issue.path ?? []).map((p) => typeof p === "object" ? p.key : p).join(".") === name &&
      issue.message.includes("add a unit")
    );
    if (unitless) names.push(name);
  }
  return names;
}

/**
 * `options` with each of the job's {@linkcode JobDefinition.pathOptions} that
 * is relative (a string, or the strings of an array) resolved against
 * `baseDir` (a trailing `/` kept): the config file's folder for the config's options, the working
 * directory for the command line's. Other options, and values of other
 * types (the schema judges them), are kept as they are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolvePathOptions } from "./run.ts";
 * import backup from "../../jobs/backup.ts";
 *
 * const options = resolvePathOptions(backup, { out: "backups", all: true }, "/srv/app");
 * assert.deepEqual(options, { out: "/srv/app/backups", all: true });
 * ```
 */
export function resolvePathOptions(
  job: Pick<Job, "pathOptions">,
  options: Readonly<Record<string, unknown>>,
  baseDir: string,
): Record<string, unknown> {
  const out = { ...options };
  for (const name of job.pathOptions ?? []) {
    const value = out[name];
    if (typeof value === "string" && value !== "") out[name] = resolveAsWritten(baseDir, value);
    else if (Array.isArray(value)) {
      out[name] = value.map((v) =>
        typeof v === "string" && v !== "" ? resolveAsWritten(baseDir, v) : v
      );
    }
  }
  return out;
}

/**
 * What to say about each relative path among `configOptions` (the config's
 * `jobs.<name>.options`) that Flowstate up to 0.5 read against the working
 * directory, where something is, while its place now (against `baseDir`, the
 * config file's folder) does not exist yet: the first run after the upgrade
 * would write elsewhere without a word. One line each, naming both places and
 * how to keep the old one.
 */
export async function movedPathNotes(
  job: Pick<Job, "name" | "pathOptions">,
  configOptions: Readonly<Record<string, unknown>>,
  baseDir: string,
): Promise<string[]> {
  const cwd = Deno.cwd();
  if (resolve(cwd) === resolve(baseDir)) return [];
  const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);
  const notes: string[] = [];
  for (const option of job.pathOptions ?? []) {
    const value = configOptions[option];
    const written = typeof value === "string" ? [value] : Array.isArray(value) ? value : [];
    for (const path of written) {
      if (typeof path !== "string" || path === "" || isAbsolute(path)) continue;
      const now = resolveAsWritten(baseDir, path);
      const before = resolveAsWritten(cwd, path);
      if (await exists(now) || !await exists(before)) continue;
      notes.push(
        `jobs.${job.name}.options.${option} "${path}" is now ${now}, in the config file's ` +
          `folder; Flowstate up to 0.5 read it in the working directory, ${before}, which ` +
          `exists and is no longer used: write ${option}: ${before} in the config to keep that ` +
          `place, or move it`,
      );
    }
  }
  return notes;
}

/** The options of {@linkcode runJob}. */
const RUN_JOB_OPTIONS: readonly string[] = fieldNames<RunJobOptions<object>>()(
  ["options", "configOptions", "dryRun", "signal", "progress", "onLog", "baseDir"],
  ["onStart", "scheduled"],
);

/**
 * Run a job now and record the run. Invalid options throw a
 * {@linkcode ConfigError} before anything runs; a job that throws is recorded
 * as `failed` and returned (not thrown).
 *
 * @example
 * ```ts
 * import { defineJob, openRuntime, runJob } from "@flowstate/core";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const greet = defineJob({
 *   name: "greet",
 *   description: "says hello",
 *   optionsSchema: z.strictObject({ who: z.string() }),
 *   run: (_ctx, { who }) => ({ greeting: `hello ${who}` }),
 * });
 * const run = await runJob(rt, greet, { options: { who: "Ada" }, progress: "quiet" });
 * assert.equal(run.outputs?.greeting, "hello Ada");
 * ```
 */
export async function runJob<const J extends JobRef>(
  runtime: Runtime,
  jobRef: J,
  options: RunJobOptions<JobOptionsFor<J>> = {},
): Promise<RunRecord> {
  assertKnownFields(options, RUN_JOB_OPTIONS, "Cannot run job", "option");
  // Checked before the run is recorded: nothing after that may throw and leave it `running`.
  checkRunJobOptions(options);
  const job = await loadJob(jobRef, options.baseDir ?? runtime.config.baseDir);
  // The config's paths are the config file's folder's, wherever this process runs.
  const configOptions = options.configOptions &&
    resolvePathOptions(job, options.configOptions, runtime.config.baseDir);
  const moved = options.configOptions === undefined
    ? []
    : await movedPathNotes(job, options.configOptions, runtime.config.baseDir);
  const resolved = await resolveJobOptions(
    job,
    configOptions,
    options.options as Record<string, unknown> | undefined,
  );
  const { onStart, onLog, signal, scheduled } = options;
  const records = await runtime.records();
  const clock = runtime.clock;
  const flowId = `job:${job.name}`;
  const inputs = parseJson(JSON.stringify(resolved ?? {})) as Record<string, JsonValue>;
  // What the caller's onStart, onLog or progress throws (or, async, rejects with) neither
  // strands the run nor fails the job: the job goes on, its end is recorded, and then runJob
  // rejects with it.
  let callbackError: { error: unknown } | undefined;
  const callBack = (call: () => unknown) =>
    callGuarded(call, (error) => {
      callbackError ??= { error };
    });
  const shown = typeof options.progress === "object"
    ? guardedProgress(options.progress, callBack)
    : createProgress({ mode: options.progress ?? "quiet" });
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason ?? "cancelled");
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  let recorder: RunRecorder;
  try {
    recorder = await RunRecorder.start(
      records,
      clock,
      {
        flowId,
        flowVersion: "job",
        inputs,
        ...(scheduled === undefined
          ? {}
          : { scheduledAt: scheduled.at, schedule: scheduled.schedule }),
      },
      // A cancel request from another process (`flowstate runs cancel`, the HTTP API).
      { onCancelRequested: () => controller.abort("cancel requested") },
    );
  } catch (err) {
    signal?.removeEventListener("abort", onAbort);
    throw err;
  }
  const runId = recorder.id;
  let status: RunRecord["status"] = "succeeded";
  let outputs: JobResult | null = null;
  let error: RunRecord["error"] = null;
  let bus: EventBus | undefined;
  // From here to the end is recorded, whatever throws is the run's failure, never a run left
  // `running`.
  try {
    bus = eventBusOf(runtime);
    bus?.emit({ type: "run.started", at: recorder.startedAt, runId, flowId });
    if (onStart !== undefined) callBack(() => onStart(runId));
    const progress = bus ? withProgressEvents(shown, bus, runId, flowId, clock) : shown;
    recorder.event({ at: recorder.startedAt, type: "run.start" });
    const events = bus;
    const ctx: JobContext = {
      jobName: job.name,
      runId,
      runtime,
      store: (name) => runtime.store(name),
      records: () => runtime.records(),
      home: runtime.home,
      log(message, level = "info") {
        const event = {
          at: clock.now(),
          type: "node.log",
          node: job.name,
          message,
          level,
        } as const;
        recorder.event(event);
        events?.emit({ type: "node", at: event.at, runId, flowId, event });
        if (onLog !== undefined) callBack(() => onLog(message, level));
      },
      progress,
      signal: controller.signal,
      clock,
      dryRun: options.dryRun ?? false,
    };
    for (const note of moved) ctx.log(note, "warn");
    // Cancelled before it started (a signal given aborted): recorded so, the job not run, as
    // a flow's nodes are not.
    controller.signal.throwIfAborted();
    // Every store write the job makes is recorded in change feeds as the job's.
    const result = await withActor({ job: job.name }, () => job.run(ctx, resolved));
    // Recorded as the run's outputs: JSON, as a node's output is, never what JSON.stringify
    // would quietly make of it (a Map as {}, NaN as null) or a bare "cannot serialize a BigInt".
    outputs = parseJson(
      serializeValue(result ?? {}, `job "${job.name}" returned a value that is not JSON`),
    );
    // A job that returns after its signal aborted stopped early, unless it says it did not
    // (`cancelled: false`: the signal came after its last step, and its work is whole).
    if (controller.signal.aborted && (outputs as { cancelled?: unknown }).cancelled !== false) {
      status = "cancelled";
      error = { message: "the job was cancelled" };
    }
  } catch (err) {
    status = controller.signal.aborted ? "cancelled" : "failed";
    // The abort itself (signal.throwIfAborted()) says nothing more than "cancelled".
    const abort = controller.signal.aborted &&
      (err === controller.signal.reason || (err instanceof Error && err.name === "AbortError"));
    error = { node: job.name, message: abort ? "the job was cancelled" : messageOf(err) };
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  const endedAt = clock.now();
  recorder.event({ at: endedAt, type: "run.end" });
  let record: RunRecord;
  try {
    record = await recorder.finish({
      status,
      outputs,
      endedAt,
      nodes: {
        [job.name]: {
          status: status === "succeeded"
            ? "succeeded"
            : status === "failed"
            ? "failed"
            : "cancelled",
          attempts: 1,
          ...(outputs ? { output: outputs } : {}),
          ...(error ? { error: error.message } : {}),
        },
      },
      error,
    });
  } catch (err) {
    unrecorded(bus, runId, flowId, clock.now(), err);
    throw err;
  }
  bus?.emit({ type: "run.ended", at: endedAt, runId, flowId, status: record.status, record });
  // The config's `runs.onFailure` flow, about a job that failed (waited for, never throws).
  await notifyRunEnded(runtime, record);
  if (callbackError !== undefined) throw callbackError.error;
  return record;
}

const PROGRESS_MODES: readonly string[] = ["tty", "plain", "quiet"] satisfies ProgressMode[];
const PROGRESS_METHODS = ["start", "advance", "update", "finish"] as const;

/**
 * The options {@linkcode runJob} uses after it records the run, checked before: a value of the
 * wrong kind is a `TypeError` saying which and what is expected, and nothing is recorded.
 */
function checkRunJobOptions(options: RunJobOptions<object>): void {
  const what = "Cannot run job";
  const { signal, progress } = options;
  checkScheduledOption(options.scheduled, what);
  if (
    signal !== undefined &&
    (typeof signal !== "object" || signal === null ||
      typeof signal.addEventListener !== "function" ||
      typeof signal.removeEventListener !== "function")
  ) {
    throw new TypeError(
      `${what}: signal must be an AbortSignal (from new AbortController().signal), got ${
        describeValue(signal)
      }`,
    );
  }
  for (const name of ["onLog", "onStart"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw new TypeError(
        `${what}: ${name} must be a function, got ${describeValue(options[name])}`,
      );
    }
  }
  if (progress === undefined) return;
  if (typeof progress === "string") {
    if (PROGRESS_MODES.includes(progress)) return;
    throw new TypeError(
      `${what}: progress must be one of ${PROGRESS_MODES.join(", ")} or a Progress object, got ${
        JSON.stringify(progress)
      }`,
    );
  }
  if (typeof progress !== "object" || progress === null) {
    throw new TypeError(
      `${what}: progress must be one of ${
        PROGRESS_MODES.join(", ")
      } or a Progress object (from createProgress()), got ${describeValue(progress)}`,
    );
  }
  const missing = PROGRESS_METHODS.filter((m) => typeof progress[m] !== "function");
  if (missing.length > 0) {
    throw new TypeError(
      `${what}: progress must have the methods ${
        PROGRESS_METHODS.join(", ")
      } (a Progress from createProgress()); ${missing.join(", ")} ${
        missing.length === 1 ? "is" : "are"
      } missing`,
    );
  }
}

/**
 * A caller's `progress`, each call guarded like `onLog`: what it throws goes to `callBack`'s
 * record, the job goes on.
 */
function guardedProgress(progress: Progress, callBack: (call: () => unknown) => void): Progress {
  let last: Progress["state"] = { label: "", done: 0, total: undefined };
  return {
    get state() {
      callBack(() => last = progress.state);
      return last;
    },
    start: (label, total) => callBack(() => progress.start(label, total)),
    advance: (n) => callBack(() => progress.advance(n)),
    update: (done) => callBack(() => progress.update(done)),
    finish: (message) => callBack(() => progress.finish(message)),
  };
}

/** `progress`, also telling the runtime's event stream (when anyone listens). */
function withProgressEvents(
  progress: Progress,
  bus: EventBus,
  runId: string,
  flowId: string,
  clock: Clock,
): Progress {
  const tell = (finished: boolean) => {
    if (!bus.listening) return;
    const { label, done, total } = progress.state;
    bus.emit({
      type: "job.progress",
      at: clock.now(),
      runId,
      flowId,
      label,
      done,
      total,
      finished,
    });
  };
  return {
    get state() {
      return progress.state;
    },
    start(label, total) {
      progress.start(label, total);
      tell(false);
    },
    advance(n) {
      progress.advance(n);
      tell(false);
    },
    update(done) {
      progress.update(done);
      tell(false);
    },
    finish(message) {
      progress.finish(message);
      tell(true);
    },
  };
}
