/**
 * `flowstate run <flow.yaml>`: run a flow once, print its node logs as they
 * happen (on stderr) and a summary of the outcome (on stdout).
 *
 * Exit codes: 0 the run succeeded; 1 it failed, was cancelled or timed out;
 * 2 the flow or an input is invalid (nothing is written); 130, 143 or 129 it
 * was cancelled by Ctrl-C (SIGINT), SIGTERM or SIGHUP, and recorded as
 * cancelled. A second such signal exits at once, the run recorded as
 * cancelled all the same (without waiting for its nodes).
 *
 * `--json` prints the {@linkcode RunRecord} as one JSON document on stdout:
 * `{ "id", "flowId", "flowVersion", "status", "inputs", "outputs", "startedAt",
 * "endedAt", "durationMs", "nodes": { "<id>": { "status", "attempts", "output"?, "error"? } },
 * "error": { "node"?, "message" } | null }`.
 *
 * @module
 */
import {
  FlowValidationError,
  NotFoundError,
  type Problem as FlowProblem,
  ResumeRefusedError,
} from "../errors.ts";
import { isRunId } from "../records/run_id.ts";
import { loadConfig } from "../config.ts";
import { coerceInputs } from "../flow/inputs.ts";
import type { ParsedFlow } from "../flow/parse.ts";
import { loadFlowFileCached } from "../flow_disk_cache.ts";
import { rethrowWithFlowIdHint } from "../flow_files.ts";
import { join, resolve } from "../_path.ts";
import { type LoadedFlow, loadFlowIn } from "../flow/load.ts";
import type { RunEvent, RunRecord } from "../records/types.ts";
import { openRuntimeWith, type Runtime, sandboxPoolOf, setRunSource } from "../runtime.ts";
import type { ResumePreview } from "../resume.ts";
import { loadConfigCached } from "../config_disk_cache.ts";
import {
  formatDuration,
  itemsText,
  printable,
  progressText,
  runErrorText,
  shortHash,
} from "./format.ts";
import { readInputsDocument, UsageError } from "./input.ts";
import { projectElsewhereWarning, withTaskCwdHint } from "./paths.ts";
import {
  type GlobalOptions,
  interruptedExitCode,
  type Interruptible,
  interruptible,
  printWarning,
} from "./common.ts";
import { jsonLogs, logEvent } from "./log_format.ts";
import { runEventLogger } from "./run_logs.ts";

/** Options of `flowstate run`. */
export interface RunOptions {
  /** `--input name=value`, repeatable. */
  input?: string[];
  /** `--inputs <file>`: a JSON object of inputs (`-`: stdin); `--input` overrides its keys. */
  inputs?: string;
  /** `--json`: print the run record. */
  json?: boolean;
  /** `--quiet`: do not print node logs. */
  quiet?: boolean;
}

/**
 * Parse `--input name=value` pairs. A pair without `=`, with an empty name,
 * or a name given twice is a {@linkcode UsageError}.
 */
export function parseInputPairs(pairs: readonly string[]): Record<string, string> {
  const inputs = new Map<string, string>();
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq === -1) {
      throw new UsageError(
        `Invalid --input "${pair}": expected name=value, for example --input by=3`,
      );
    }
    const name = pair.slice(0, eq);
    if (name === "") {
      throw new UsageError(
        `Invalid --input "${pair}": the name before "=" is empty; expected name=value`,
      );
    }
    if (inputs.has(name)) {
      throw new UsageError(`Invalid --input "${pair}": input "${name}" is given twice`);
    }
    inputs.set(name, pair.slice(eq + 1));
  }
  return Object.fromEntries(inputs);
}

/** The inputs of `run` and `enqueue`, as the runtime takes them. */
export interface CommandInputs {
  /** Every input given: the `--inputs` document's, with `--input` values over them. */
  input: Record<string, unknown>;
  /** The names given with `--input` (text, converted per declared type). */
  fromStrings: string[];
  /** The `--inputs` file (`-` for stdin), when given. */
  file?: string;
}

/**
 * The inputs of `--inputs <file>` and `--input name=value` flags: the flags
 * override single keys of the document. Bad flags or a bad document are a
 * {@linkcode UsageError}.
 */
export async function commandInputs(
  options: { input?: string[]; inputs?: string },
): Promise<CommandInputs> {
  const pairs = parseInputPairs(options.input ?? []);
  const fromStrings = Object.keys(pairs);
  if (options.inputs === undefined) return { input: pairs, fromStrings };
  const document = await readInputsDocument(options.inputs);
  return { input: { ...document, ...pairs }, fromStrings, file: options.inputs };
}

/**
 * How a caller other than the command line's one run steers {@linkcode runCommand}
 * (`run --watch`): its own signal instead of the stop signals, and word of the
 * flow once it is parsed.
 *
 * @example
 * ```ts ignore
 * const stop = new AbortController();
 * const code = await runCommand("flow.yaml", {}, {}, {
 *   signal: stop.signal,
 *   onParsed: (parsed) => console.error(`parsed ${parsed.file}`),
 * });
 * ```
 */
export interface RunControl {
  /** Cancels the run (recorded `cancelled`); the caller listens for the stop signals itself. */
  signal: AbortSignal;
  /** Told of the flow once parsed (before its modules load), with the config's file. */
  onParsed?: (parsed: ParsedFlow, configFile: string | null) => void;
}

/** `run <flow> [--inputs <file>] [--input name=value]… [--json] [--quiet]`. */
export async function runCommand(
  file: string,
  options: RunOptions,
  global: GlobalOptions,
  control?: RunControl,
): Promise<number> {
  const given = await commandInputs(options);
  const { input } = given;
  // Loaded here, once (runFlow takes the loaded flow as it is), so that
  // messages name the file as it was given.
  // Stores open on first use: here the config is read, for its store names.
  // A config file run with before (same bytes, same Flowstate) is read from
  // the home's cache: neither the YAML parser nor zod is loaded.
  let saveConfigToCache = () => Promise.resolve();
  await using runtime = await openRuntimeWith(
    { config: global.config, onWarning: printWarning },
    async (options) => {
      const { config, save } = await loadConfigCached(options);
      saveConfigToCache = save;
      return config;
    },
  );
  setRunSource(runtime, "cli");
  // Outside its project, a flow runs on the default store here: said before anything is written.
  const elsewhere = await projectElsewhereWarning(file, runtime.config);
  if (elsewhere !== undefined) console.error(printable(`warning: ${elsewhere}`));
  // A file run before (same bytes, same Flowstate) is read from the home's
  // cache: neither the YAML parser nor the flow schema is loaded.
  const { parsed, save: saveToCache } = await withTaskCwdHint(file, () =>
    loadFlowFileCached(file, {
      stores: runtime.storeNames,
      cacheDir: join(runtime.config.home, "cache"),
    }).catch((err) => rethrowWithFlowIdHint(err, file, runtime.config, Deno.cwd())));
  control?.onParsed?.(parsed, runtime.config.file);
  // Held until the run ends: the Worker that checks a custom node module runs it.
  const pool = sandboxPoolOf(runtime);
  using _held = pool?.hold();
  let flow: LoadedFlow;
  try {
    flow = await loadFlowIn(parsed, {
      ...(pool === undefined ? {} : { pool }),
      stores: runtime.storeNames,
      trusted: runtime.config.nodes.trusted,
      trustedBaseDir: runtime.config.baseDir,
    });
  } catch (err) {
    if (!(err instanceof FlowValidationError)) throw err;
    // An invalid flow never runs: report what is wrong with the inputs too, at once.
    throw new FlowValidationError([...err.problems, ...inputProblems(parsed, given)], parsed.file);
  }

  return await runInline(runtime, options, (signal, onEvent) =>
    runtime.runFlow(flow, {
      input,
      inputFromStrings: given.fromStrings,
      signal,
      onEvent,
    }).catch((err) => {
      // runFlow checks the inputs (once) before it writes anything.
      if (err instanceof FlowValidationError) {
        throw new FlowValidationError(withInputHints(err.problems, given), err.file, {
          cause: err,
        });
      }
      throw err;
    }), async () => {
    // Only now: a flow or inputs refused above write nothing to the home.
    await saveToCache();
    await saveConfigToCache();
  }, control);
}

/** Options of `flowstate runs resume`. */
export interface ResumeOptions {
  /** `--from <node>`: run this node and what needs it again. */
  from?: string;
  /** `--flow <file>`: the flow file, when the config's `flows:` does not have the run's flow. */
  flow?: string;
  /** `--again`: resume although an earlier resume of the run ended. */
  again?: boolean;
  /** `--json`: print the run record (with `--dry-run`, the preview). */
  json?: boolean;
  /** `--quiet`: do not print node logs. */
  quiet?: boolean;
  /** `--dry-run`: print what the resume would reuse and run again; run and write nothing. */
  dryRun?: boolean;
}

/**
 * `runs resume <run-id> [--from <node>] [--flow <file>] [--again] [--dry-run] [--json] [--quiet]`:
 * a new run of the run's flow, with its inputs, reusing the outputs of the
 * nodes that succeeded (see `Runtime.resumeRun`); printed and ended as
 * `flowstate run` (same exit codes). Refused with exit 1 (an unknown,
 * archived, running, queued, succeeded without --from, mocked, job, sub-run, or
 * already resumed by another run without --again)
 * or 2 (--from naming no node, a --flow of another flow), nothing written.
 * With `--dry-run`, prints what the resume would reuse and run again (exit
 * 0), refused alike, and runs and writes nothing.
 */
export async function resumeCommand(
  runId: string,
  options: ResumeOptions,
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openRuntimeWith(
    { config: global.config, onWarning: printWarning },
    (options) => loadConfig(options),
  );
  setRunSource(runtime, "cli");
  const flow = options.flow === undefined ? undefined : resolve(Deno.cwd(), options.flow);
  const asked = {
    ...(options.from === undefined ? {} : { from: options.from }),
    ...(flow === undefined ? {} : { flow }),
    ...(options.again === true ? { again: true } : {}),
  };
  if (options.dryRun === true) {
    const preview = await runtime.previewResume(runId, asked)
      .catch((err) => resumeRefusal(err, runId, runtime));
    if (options.json) console.log(JSON.stringify(preview));
    else printResumePreview(preview);
    return 0;
  }
  return await runInline(runtime, options, async (signal, onEvent) => {
    try {
      return await runtime.resumeRun(runId, { signal, onEvent, ...asked });
    } catch (err) {
      return await resumeRefusal(err, runId, runtime);
    }
  });
}

/**
 * `err` of a resume (or its preview) as the CLI says it: a `--from` naming no
 * node or a `--flow` of another flow is a usage error (exit 2); a run not in
 * the records store but archived says so.
 */
async function resumeRefusal(err: unknown, runId: string, runtime: Runtime): Promise<never> {
  if (err instanceof ResumeRefusedError) {
    throw err.reason === "from" || err.reason === "flow" ? new UsageError(err.message) : err;
  }
  if (!(err instanceof NotFoundError) || err.kind !== "run" || !isRunId(runId)) throw err;
  // Not in the records store: an archived run's outputs are not there to reuse.
  const { findArchivedRun } = await import("./archive.ts");
  const archived = await findArchivedRun(runId, runtime.home);
  if (archived === null) throw err;
  throw new NotFoundError(
    `Cannot resume run ${runId}: it is archived (in ${archived.archive}), and a resumed ` +
      "run reuses outputs from the records store only; run the flow again instead",
    { kind: "run", id: runId },
  );
}

/** `runs resume --dry-run`: a line per node, reused or run again and why, then the counts. */
function printResumePreview(preview: ResumePreview): void {
  const from = preview.from === undefined ? "" : ` from node ${printable(preview.from)}`;
  console.log(`Resuming run ${preview.runId} (flow "${printable(preview.flowId)}")${from} would:`);
  const width = Math.max(...preview.nodes.map((n) => printable(n.node).length));
  for (const n of preview.nodes) {
    console.log(
      `  ${n.reused ? "reuse" : "run  "}  ${printable(n.node).padEnd(width)}  ${
        printable(n.message)
      }`,
    );
  }
  const reused = preview.nodes.filter((n) => n.reused).length;
  const again = preview.nodes.length - reused;
  console.log(
    `${reused} ${reused === 1 ? "node" : "nodes"} reused, ${again} run again. ` +
      "Nothing was run or written (--dry-run).",
  );
}

/**
 * Run `start` inline as `flowstate run` does: its logs printed as they
 * happen (unless `--quiet`; JSON lines with `--log-format json`), Ctrl-C
 * and SIGTERM cancelling it, then its record (`--json`) or a summary, and
 * the exit code. `started` is called once the run ended (not when refused).
 * With `control` (`run --watch`), its signal cancels the run instead of the
 * process's signals.
 */
async function runInline(
  runtime: Runtime,
  options: { json?: boolean; quiet?: boolean },
  start: (
    signal: AbortSignal,
    onEvent: ((event: RunEvent, run: { id: string; flowId: string }) => void) | undefined,
  ) => Promise<RunRecord>,
  started: () => Promise<void> = () => Promise.resolve(),
  control?: RunControl,
): Promise<number> {
  let outcome: Interruptible<RunRecord>;
  let runSignal: AbortSignal | undefined;
  try {
    const begin = (signal: AbortSignal) => {
      runSignal = signal;
      // JSON log lines go to stderr with --json too: stdout holds only the record.
      return start(
        signal,
        options.quiet
          ? undefined
          : jsonLogs()
          ? runEventLogger()
          : options.json
          ? undefined
          : progressPrinter(),
      );
    };
    outcome = control === undefined ? await interruptible("Cancelling the run", begin) : {
      value: await begin(control.signal),
      interrupted: control.signal.aborted,
      exitCode: interruptedExitCode(control.signal),
    };
  } catch (err) {
    // Stopped before the run started (a store still opening): nothing ran, nothing recorded.
    if (runSignal?.aborted && err instanceof Error && err.cause === runSignal.reason) {
      console.error(printable(err.message));
      return interruptedExitCode(runSignal);
    }
    throw err;
  }
  const { value: record, interrupted, exitCode } = outcome;
  await started();

  // With --quiet, only the end of a run that did not succeed (an error line).
  if (jsonLogs() && (!options.quiet || record.status !== "succeeded")) logRunEnd(record);
  if (options.json) console.log(JSON.stringify(record));
  else {
    printSummary(record, await recordsStoreLine(runtime));
    // The runs.onFailure flow ran (and ended) before runFlow returned: said with the run.
    const handler = record.status === "succeeded" || runtime.config.runs.onFailure === undefined
      ? null
      : (await (await runtime.records()).onFailureMarker(record.id))?.runId;
    if (handler) {
      console.log(
        `onFailure: ${printable(runtime.config.runs.onFailure!.flow)} ran as run ${handler}`,
      );
    }
  }
  if (record.status === "succeeded") return 0;
  return interrupted && record.status === "cancelled" ? exitCode : 1;
}

/**
 * What is wrong with the inputs of a flow that is itself invalid, each problem
 * pointing at the input's declaration (`counter.flow.yaml:7:3: inputs.by: …`).
 */
function inputProblems(parsed: ParsedFlow, given: CommandInputs): FlowProblem[] {
  try {
    coerceInputs(parsed.definition, given.input, {
      fromStrings: given.fromStrings,
      locate: parsed.locate,
    });
    return [];
  } catch (err) {
    if (!(err instanceof FlowValidationError)) throw err;
    return withInputHints(err.problems, given);
  }
}

/** A given value as quoted in a message: at most 60 characters. */
function excerpt(value: string): string {
  return value.length > 60 ? `${value.slice(0, 57)}…` : value;
}

/** Say which --input (or --inputs file) an input's problem came from, or which one to add. */
function withInputHints(
  problems: readonly FlowProblem[],
  given: CommandInputs,
): FlowProblem[] {
  return problems.map((problem): FlowProblem => {
    const [root, name] = problem.path;
    if (root !== "inputs" || typeof name !== "string") return problem;
    const hint = given.fromStrings.includes(name)
      ? ` (from --input ${name}=${excerpt(String(given.input[name]))})`
      : given.file !== undefined && Object.hasOwn(given.input, name)
      ? ` (from --inputs ${given.file === "-" ? "-, stdin" : given.file})`
      : `; pass --input ${name}=VALUE`;
    return { ...problem, message: `${problem.message}${hint}` };
  });
}

/** Prints node logs, failed attempts and failed nodes to stderr as they happen. */
function progressPrinter(): (event: RunEvent, run: { id: string; flowId: string }) => void {
  let topRunId: string | undefined;
  // The last attempt of each node (run id, node id) that printed its error: when it is the
  // node's last attempt, the node's end need not repeat it.
  const attemptErrors = new Map<string, number | undefined>();
  return (event, run) => {
    topRunId ??= run.id;
    const sub = run.id !== topRunId;
    const item = "item" in event && typeof event.item === "number" ? ` item ${event.item}` : "";
    const label = `[${sub ? `${run.flowId}/` : ""}${"node" in event ? event.node : ""}${item}]`;
    switch (event.type) {
      case "run.start":
        if (!sub) console.error(`Running flow "${run.flowId}" (run ${run.id})`);
        break;
      case "node.log": {
        const level = event.level === undefined || event.level === "info" ? "" : `${event.level}: `;
        for (const line of String(event.message ?? "").split("\n")) {
          console.error(`${label} ${level}${printable(line)}`);
        }
        break;
      }
      case "node.progress": {
        // A running forEach node's counts (recorded at most once a second).
        const text = progressText(event);
        if (text !== undefined) console.error(`${label} ${text}`);
        break;
      }
      case "node.attempt":
        if (event.error !== undefined) {
          attemptErrors.set(`${run.id}\0${event.node}`, event.attempt);
          console.error(`${label} attempt ${event.attempt} failed: ${printable(event.error)}`);
        }
        break;
      case "node.end":
        if (event.items !== undefined) {
          // A forEach node: its items' attempts printed their errors; the end says how many.
          if (event.status !== "succeeded" && event.status !== "skipped") {
            console.error(
              `${label} ${event.status} (${itemsText(event.items) ?? "items"})${
                event.error === undefined ? "" : `: ${printable(event.error)}`
              }`,
            );
          }
        } else if (event.status === "failed" || event.status === "timed-out") {
          // A node that fails as its options are evaluated has an attempt without an error.
          const key = `${run.id}\0${event.node}`;
          const reason = attemptErrors.has(key) && attemptErrors.get(key) === event.attempt
            ? ""
            : `: ${printable(event.error ?? "no error message")}`;
          console.error(
            event.attempt
              ? `${label} ${event.status} after ${plural(event.attempt, "attempt")}${reason}`
              : `${label} ${event.status}${reason}`,
          );
        }
        break;
    }
  };
}

/** With `--log-format json`: the `run.end` line of the run `record`. */
function logRunEnd(record: RunRecord): void {
  const ok = record.status === "succeeded";
  logEvent(
    ok ? "info" : "error",
    `run ${record.id} of flow "${record.flowId}" ${record.status} in ${
      formatDuration(record.durationMs)
    }${record.error ? `: ${runErrorText(record.error)}` : ""}`,
    {
      event: "run.end",
      runId: record.id,
      flow: record.flowId,
      status: record.status,
      durationMs: record.durationMs ?? undefined,
      node: record.error?.node,
      error: record.error?.message,
    },
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The store the run is recorded in: `default (sqlite) /project/.flowstate/state.db`. */
async function recordsStoreLine(runtime: Runtime): Promise<string> {
  const name = runtime.config.records;
  const plugin = runtime.config.stores[name].plugin;
  const store = await runtime.store(name);
  return `${name} (${typeof plugin === "string" ? plugin : plugin.name}) ${store.location}`;
}

function printSummary(record: RunRecord, store: string): void {
  const lines = [
    `run:      ${record.id}`,
    `flow:     ${record.flowId} (version ${shortHash(record.flowVersion)})`,
    `store:    ${printable(store)}`,
    `status:   ${record.status}`,
    `duration: ${formatDuration(record.durationMs)}`,
  ];
  if (record.error) {
    lines.push(`error:    ${runErrorText(record.error)}`);
  }
  if (record.outputs !== null) {
    const names = Object.keys(record.outputs);
    if (names.length === 0) lines.push("outputs:  (none)");
    else {
      lines.push("outputs:");
      for (const name of names) {
        lines.push(`  ${printable(name)}: ${printable(JSON.stringify(record.outputs[name]))}`);
      }
    }
  }
  console.log(lines.join("\n"));
}
