/**
 * `runs.onFailure`: one flow run whenever any run ends badly, whoever saw it
 * end. The runtime calls {@linkcode FailureNotifier.notify} with the record
 * of every root run it ended (`runFlow`, a queue worker's claimed run, a
 * job), and of every run its records found ended for a process that is gone
 * (abandoned, lost too often).
 *
 * ## Protocol (exactly once, no loops)
 *
 * 1. Only a root run is reported (a sub-run's failure fails its root, which
 *    is) or a run a flow's `queue` node enqueued (nobody waits for it), never
 *    a run of the `onFailure` flow itself (`onFailureOf` set), nor a run under
 *    one (its sub-runs, the runs it enqueued, at any depth), nor a flow listed
 *    under `except:`, nor an end `on:` does not list.
 * 2. A queued run is reported only once its end is final: its stored record
 *    is read again and must still have that end (an attempt that goes back
 *    to the queue for a retry, or a run a stopping worker released, is
 *    `queued` there).
 * 3. The process claims the run with `Records.claimOnFailure`: one write of
 *    `P, "on-failure", runId` if absent (the store's compare-and-set). Only
 *    the process whose write landed goes on, in any number of processes
 *    sharing the store.
 * 4. It runs the flow inline (awaited by whoever ended the run: `flowstate
 *    run` exits after it) with the input `run` (see {@linkcode FailedRunInput}),
 *    its record's `onFailureOf` the reported run's id, and adds that run's id
 *    to the marker as it starts. A process killed in between leaves a marker
 *    without `runId` (or an `onFailure` run found abandoned): the report is
 *    lost, never doubled.
 *
 * @module
 */
import type { OnFailureConfig, ResolvedConfig } from "./config.ts";
import type { FailureKind } from "./config_schema.ts";
import { ConfigError, FlowValidationError, messageOf } from "./errors.ts";
import { didYouMean } from "./_suggest.ts";
import { flowIdsByFile } from "./flow_files.ts";
import { knownJobNames } from "./jobs/builtin.ts";
import type { LoadedFlow } from "./flow/load.ts";
import type { FlowDefinition } from "./flow/types.ts";
import type { Records } from "./records/records.ts";
import type { RunRecord } from "./records/types.ts";
import type { JsonValue } from "./store/types.ts";
import { type FlowHost, type RunFlowOptions, runOnFailureFlow } from "./run_flow.ts";
import { relative } from "./_path.ts";

/**
 * How a run came to run, as the `onFailure` flow is told (`run.source`):
 * from `flowstate run` or `jobs run` (`cli`), a daemon's schedule or change
 * trigger (`schedule`), the queue (`queue`), `flowstate serve` (`api`), or a
 * program's own runtime (`program`); `null` for a run found abandoned whose
 * start is not recorded.
 *
 * @example
 * ```ts
 * import type { RunSource } from "@flowstate/core";
 * const source: RunSource = "schedule";
 * ```
 */
export type RunSource = "cli" | "schedule" | "queue" | "api" | "program";

/**
 * The one input the `runs.onFailure` flow gets, `run`: what ended badly.
 *
 * @example
 * ```ts
 * import type { FailedRunInput } from "@flowstate/core";
 * const run: FailedRunInput = {
 *   id: "0mjuw3ms0abcdefghijk",
 *   flow: "nightly-import",
 *   job: null,
 *   version: "3f2a…",
 *   status: "failed",
 *   kind: "failed",
 *   error: "fetch: HTTP 503",
 *   failed: [{ node: "fetch", error: "HTTP 503" }],
 *   startedAt: "2026-12-07T03:00:00.000Z",
 *   endedAt: "2026-12-07T03:00:04.120Z",
 *   durationMs: 4120,
 *   scheduledAt: "2026-12-07T03:00:00.000Z",
 *   schedule: "flow:nightly-import",
 *   source: "schedule",
 *   attempt: 1,
 *   host: "nas",
 * };
 * ```
 */
export interface FailedRunInput {
  /** The run's id (`flowstate runs show <id>`). */
  id: string;
  /** The flow's id, or `null` for a job's run. */
  flow: string | null;
  /** The job's name, or `null` for a flow's run. */
  job: string | null;
  /** The flow version's hash (`"job"` for a job). */
  version: string;
  /** Its recorded status: `failed`, `timed-out` or `cancelled`. */
  status: string;
  /** Why it fires: the status, or `abandoned` for a run whose process died. */
  kind: FailureKind;
  /** The run's error message, or `null`. */
  error: string | null;
  /** The nodes that failed or timed out, with their errors. */
  failed: { node: string; error: string | null }[];
  /** When it started (ISO 8601). */
  startedAt: string;
  /** When it ended (ISO 8601). */
  endedAt: string | null;
  /** Its duration in ms. */
  durationMs: number | null;
  /**
   * For a run a schedule started: the tick's nominal time (ISO 8601), late
   * or catch-up ticks included; `null` for a run no schedule started.
   */
  scheduledAt: string | null;
  /**
   * For a run a schedule started: the schedule's id, as `flowstate schedules
   * ls` lists it (`flow:backup`, `flow:backup#nightly`, `job:gc`); `null` for
   * a run no schedule started.
   */
  schedule: string | null;
  /** How it came to run, or `null` when not known (see {@linkcode RunSource}). */
  source: RunSource | null;
  /** Its attempt (a queued run's last; 1 otherwise). */
  attempt: number;
  /** The host of the process that saw it end (and runs the `onFailure` flow). */
  host: string;
}

/** What the notifier needs of its runtime. */
export interface FailureNotifierHost {
  /** The resolved config (its `runs.onFailure`). */
  readonly config: ResolvedConfig;
  /** The runtime's records (those that tell ends they find). */
  records(): Promise<Records>;
  /** How the runtime runs flows. */
  flowHost(): FlowHost;
  /** The runtime's run defaults (and its stop signal). */
  runOptions(): RunFlowOptions;
  /** Loads and checks a flow file as a run of it would. */
  loadFlow(file: string): Promise<LoadedFlow>;
  /** Told of an `onFailure` flow that could not run or failed. */
  warn(message: string): void;
  /** How runs of this runtime come to run (other than queued ones). */
  source(): RunSource;
}

/** The config's `runs.onFailure` flow, checked: its file and definition. */
export interface OnFailureFlow {
  /** The flow file (absolute). */
  file: string;
  /** Its definition. */
  definition: FlowDefinition;
}

/** Which {@linkcode FailureKind} an ended run is, or `null` for a run that ended well (or not yet). */
export function failureKind(record: RunRecord): FailureKind | null {
  switch (record.status) {
    case "timed-out":
      return "timed-out";
    case "cancelled":
      return "cancelled";
    case "failed": {
      const message = record.error?.message ?? "";
      // Recorded by whoever found its process gone: `abandonRun`, or `reclaimLost` after
      // its worker stopped answering too often.
      return message.startsWith("abandoned: ") || /^lost \d+ times /.test(message)
        ? "abandoned"
        : "failed";
    }
    default:
      return null;
  }
}

/**
 * Why `def` cannot take the input `run` alone, or `undefined` when it can:
 * it must declare `run` (of type `object` or `any`, without `enum`), and
 * every other input it declares needs a default.
 */
export function onFailureInputsProblem(def: FlowDefinition): string | undefined {
  const inputs = def.inputs ?? {};
  const run = inputs.run;
  const example = "inputs: { run: { type: object } }";
  if (run === undefined) {
    return `flow "${def.id}" does not declare the input run it is given; add "${example}"`;
  }
  if (run.type !== undefined && run.type !== "object" && run.type !== "any") {
    return `flow "${def.id}" declares its input run as ${run.type}, but it is given an object; write "${example}"`;
  }
  if (run.enum !== undefined) {
    return `flow "${def.id}" limits its input run to an enum; remove it`;
  }
  const required = Object.entries(inputs).filter(([name, spec]) =>
    name !== "run" && spec.default === undefined
  ).map(([name]) => name);
  if (required.length > 0) {
    return `flow "${def.id}" requires the input${required.length > 1 ? "s" : ""} ${
      required.join(", ")
    }, but it is given run alone; give ${required.length > 1 ? "them" : "it"} a default`;
  }
  return undefined;
}

/** Runs the config's `runs.onFailure` flow about failed runs; see the module documentation. */
export class FailureNotifier {
  readonly #host: FailureNotifierHost;
  readonly #settings: OnFailureConfig;
  #checked: Promise<OnFailureFlow> | undefined;

  /** A notifier for `host`, whose config must have `runs.onFailure`. */
  constructor(host: FailureNotifierHost) {
    const settings = host.config.runs.onFailure;
    if (settings === undefined) throw new TypeError("Cannot notify: no runs.onFailure in config");
    this.#host = host;
    this.#settings = settings;
  }

  /**
   * The `onFailure` flow's file and definition, checked (once; a failed check
   * is tried again next time): throws a `ConfigError` at `runs.onFailure.flow`.
   */
  check(): Promise<OnFailureFlow> {
    const checking = this.#checked ??= this.#check();
    checking.catch(() => {
      if (this.#checked === checking) this.#checked = undefined;
    });
    return checking;
  }

  async #check(): Promise<OnFailureFlow> {
    const config = this.#host.config;
    const path = ["runs", "onFailure", "flow"];
    const at = config.where(path);
    const fail = (message: string, cause?: unknown): never => {
      throw new ConfigError(`${at === undefined ? "" : `${at}: `}${path.join(".")}: ${message}`, {
        ...(cause === undefined ? {} : { cause }),
        issues: [{ path, message }],
        file: config.file,
      });
    };
    let file = this.#settings.file;
    if (file === undefined) {
      const found = await flowIdsByFile(config);
      const matches = found.filter((f) => f.id === this.#settings.flow);
      if (matches.length > 1) {
        fail(
          `two files under flows: have the id "${this.#settings.flow}": ${
            matches.map((m) => m.file).join(", ")
          }; give one of them another id, or name the file (./path.flow.yaml)`,
        );
      }
      if (matches.length === 0) {
        const ids = found.map((f) => f.id);
        fail(
          `no flow under flows: has the id "${this.#settings.flow}"${
            didYouMean(this.#settings.flow, ids)
          }; ${
            ids.length === 0
              ? "no flows are configured: add flows: [./flows], or name the file (./alert.flow.yaml)"
              : `the flows are ${ids.map((id) => `"${id}"`).join(", ")}`
          }`,
        );
      }
      file = matches[0].file;
    }
    const shown = relative(config.baseDir, file);
    let loaded: LoadedFlow;
    try {
      loaded = await this.#host.loadFlow(file);
    } catch (err) {
      if (err instanceof FlowValidationError && err.cause instanceof Deno.errors.NotFound) {
        return fail(`cannot read ${file}: no such file`, err);
      }
      if (err instanceof FlowValidationError) {
        const [first] = err.message.split("\n");
        const more = err.problems.length > 1 ? ` (and ${err.problems.length - 1} more)` : "";
        return fail(
          `the flow ${shown} is not valid: ${first}${more}; run flowstate validate ${shown}`,
          err,
        );
      }
      return fail(`cannot load the flow ${shown}: ${messageOf(err)}`, err);
    }
    const definition = loaded.prepared.definition;
    const problem = onFailureInputsProblem(definition);
    if (problem !== undefined) fail(`${shown}: ${problem}`);
    return { file, definition };
  }

  /**
   * Warn (through the host) of every `except:` entry that names no flow
   * under `flows:` and no job (see {@linkcode exceptWarnings}): said at
   * start, beside {@linkcode FailureNotifier.check}.
   */
  async warnExcept(): Promise<void> {
    for (const warning of await exceptWarnings(this.#host.config)) this.#host.warn(warning);
  }

  /**
   * Run the `onFailure` flow about `record` if it is a root run that ended in
   * a way `on:` lists, its flow is not under `except:`, and this process is
   * the first to claim it. `signal` stops that flow's run too (besides the
   * runtime's close). Never throws: what goes wrong is warned about.
   */
  async notify(record: RunRecord, signal?: AbortSignal): Promise<void> {
    try {
      await this.#notify(record, signal);
    } catch (err) {
      this.#host.warn(
        `runs.onFailure: cannot run ${this.#settings.flow} about run ${record.id} (${record.flowId}, ${record.status}): ${
          messageOf(err)
        }`,
      );
    }
  }

  async #notify(record: RunRecord, signal: AbortSignal | undefined): Promise<void> {
    if (record.onFailureOf !== undefined) return;
    // A sub-run's failure fails its root, which is reported; a run a flow's `queue` node
    // enqueued is on its own (nobody waits for it), unless the onFailure flow enqueued it.
    if (record.parentRunId !== undefined && record.queue === undefined) return;
    const kind = failureKind(record);
    if (kind === null || !this.#settings.on.includes(kind)) return;
    if (this.#settings.except.includes(record.flowId)) return;
    const records = await this.#host.records();
    if (record.parentRunId !== undefined && await underOnFailure(records, record.parentRunId)) {
      return;
    }
    if (record.queue !== undefined) {
      // A failed attempt with attempts left is `queued` again: only the last one is reported.
      const stored = await records.getRun(record.id);
      if (stored === null || stored.status !== record.status) return;
    }
    const handler = await this.check();
    const host = hostName();
    const claimed = await records.claimOnFailure(record.id, {
      at: Date.now(),
      host,
      pid: Deno.pid,
      flow: this.#settings.flow,
    });
    if (!claimed) return;
    const input = { run: failedRunInput(record, kind, this.#source(record), host) };
    let marked: Promise<void> | undefined;
    const options = this.#host.runOptions();
    const stop = options.signal;
    const run = await runOnFailureFlow(this.#host.flowHost(), handler.file, record.id, {
      ...options,
      ...(signal === undefined || signal.aborted
        ? {}
        : { signal: stop === undefined ? signal : AbortSignal.any([stop, signal]) }),
      input: input as unknown as Record<string, JsonValue>,
      onStart: (id) => {
        marked = records.markOnFailureRun(record.id, id);
      },
    });
    await marked;
    if (run.status !== "succeeded") {
      this.#host.warn(
        `runs.onFailure: the flow ${this.#settings.flow} (run ${run.id}) about run ${record.id} ended ${run.status}${
          run.error ? `: ${run.error.message}` : ""
        }`,
      );
    }
  }

  #source(record: RunRecord): RunSource | null {
    if (record.queue !== undefined) return "queue";
    // Found abandoned: how it was started is not recorded.
    if (failureKind(record) === "abandoned") return null;
    // Its tick is recorded: a schedule started it, whichever runtime's scheduler ran it.
    if (record.schedule !== undefined) return "schedule";
    return this.#host.source();
  }
}

/** Whether `runId` or a run above it is a run of the `onFailure` flow (no loop through the queue). */
async function underOnFailure(records: Records, runId: string): Promise<boolean> {
  let id: string | undefined = runId;
  // Bounded: sub-flows nest at most 16 deep, and each enqueue adds one level.
  for (let depth = 0; id !== undefined && depth < 64; depth++) {
    const run: RunRecord | null = await records.getRun(id);
    if (run === null) return false;
    if (run.onFailureOf !== undefined) return true;
    id = run.parentRunId;
  }
  return false;
}

/** The `run` input of the `onFailure` flow about `record`. */
export function failedRunInput(
  record: RunRecord,
  kind: FailureKind,
  source: RunSource | null,
  host: string,
): FailedRunInput {
  const job = record.flowId.startsWith("job:") ? record.flowId.slice(4) : null;
  const failed = Object.entries(record.nodes ?? {})
    .filter(([, node]) => node.status === "failed" || node.status === "timed-out")
    .map(([node, outcome]) => ({ node, error: outcome.error ?? null }));
  return {
    id: record.id,
    flow: job === null ? record.flowId : null,
    job,
    version: record.flowVersion,
    status: record.status,
    kind,
    error: record.error?.message ?? null,
    failed,
    startedAt: new Date(record.startedAt).toISOString(),
    endedAt: record.endedAt === null ? null : new Date(record.endedAt).toISOString(),
    durationMs: record.durationMs,
    scheduledAt: record.scheduledAt === undefined
      ? null
      : new Date(record.scheduledAt).toISOString(),
    schedule: record.schedule ?? null,
    source,
    attempt: Math.max(1, record.queue?.attempt ?? 1),
    host,
  };
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown"; // Without --allow-sys.
  }
}

/**
 * A warning for every `runs.onFailure.except` entry that can match no run
 * the config knows of, at its `file:line:column`: a flow id that no file
 * under `flows:` declares, a `job:<name>` naming no built-in or configured
 * job. Warnings, not errors: a flow run by path outside `flows:` is matched
 * by its id too. Nothing when `flows:` cannot be read (that error comes
 * where the flows are used).
 */
export async function exceptWarnings(config: ResolvedConfig): Promise<string[]> {
  const except = config.runs.onFailure?.except ?? [];
  if (except.length === 0) return [];
  let flowIds: string[];
  try {
    flowIds = [...new Set((await flowIdsByFile(config)).map((f) => f.id))];
  } catch {
    return [];
  }
  const jobs = knownJobNames(config.jobs).map((name) => `job:${name}`);
  const warnings: string[] = [];
  except.forEach((entry, i) => {
    if (flowIds.includes(entry) || jobs.includes(entry)) return;
    const path = `runs.onFailure.except[${i}]`;
    const at = config.where(["runs", "onFailure", "except", i]);
    const place = `${at === undefined ? "" : `${at}: `}${path}`;
    let problem: string;
    if (entry.startsWith("job:")) {
      problem = `no job is named "${entry.slice(4)}"${didYouMean(entry, jobs)}; the jobs are ${
        jobs.join(", ")
      }, so this entry leaves out no run`;
    } else {
      const asJob = jobs.includes(`job:${entry}`)
        ? ` (did you mean "job:${entry}"? a job is written job:<name>)`
        : didYouMean(entry, flowIds);
      problem = `no flow under flows: has the id "${entry}"${asJob}; this entry leaves out ` +
        `only a flow run by path whose id is "${entry}"${
          flowIds.length === 0 ? "" : `; the flows are ${flowIds.map((id) => `"${id}"`).join(", ")}`
        }`;
    }
    warnings.push(`${place}: ${problem}`);
  });
  return warnings;
}
