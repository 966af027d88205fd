/**
 * Running a flow end to end: load and check it (nothing is written until it
 * is valid), store its version, record the run and its events, execute, and
 * record the outcome and metrics.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import type { StoreResolver } from "../context/scopes.ts";
import { Records } from "../records/records.ts";
import type { Clock, JsonValue, Store } from "../store/types.ts";
import { executeFlow, type PreparedFlow } from "./executor.ts";
import type { Timers } from "../clock.ts";
import { coerceInputs, loadFlowFile, type ParsedFlow, validateFlow } from "./parse.ts";
import { builtinNodes } from "./nodes.ts";
import { prepareFlow } from "./prepare.ts";
import type { FlowDefinition, RunEvent, RunRecord } from "./types.ts";

/** What running a flow needs from the runtime. */
export interface FlowHost {
  /** Stores behind the scopes. */
  resolver: StoreResolver;
  /** The store runs, versions and metrics are recorded in. */
  recordsStore(): Promise<Store>;
  /** The clock. */
  clock: Clock;
  /** Directory relative flow paths resolve against. */
  cwd: string;
}

/** Options for running a flow. */
export interface RunFlowOptions {
  /** Input values (checked against the flow's `inputs`). */
  input?: Record<string, unknown>;
  /** Inputs are strings from a command line: convert them per declared type. */
  inputFromStrings?: boolean;
  /** Cancels the run; it is then recorded as `cancelled`. */
  signal?: AbortSignal;
  /** Timers (tests pass fake ones). */
  timers?: Timers;
  /** Called with every event as it happens (the CLI prints logs from here). */
  onEvent?: (event: RunEvent, run: { id: string; flowId: string }) => void;
  /** Maximum nodes running at once (overrides the flow's `concurrency`). */
  concurrency?: number;
  /** Environment (default: the process's), filtered to the names the flow lists under `env:`. */
  env?: Record<string, string | undefined>;
  /** The parent run, for sub-flows. */
  parentRunId?: string;
  /** Sub-flow nesting depth (internal). */
  depth?: number;
}

/** A flow given as a path, a definition object, or already parsed. */
export type FlowSource = string | FlowDefinition | Record<string, unknown> | ParsedFlow;

const MAX_DEPTH = 16;

/** Load, validate and prepare a flow without running it or writing anything. */
export async function loadFlow(
  flow: FlowSource,
  options: { cwd?: string } = {},
): Promise<{ parsed: ParsedFlow; prepared: PreparedFlow }> {
  const cwd = options.cwd ?? Deno.cwd();
  let parsed: ParsedFlow;
  if (typeof flow === "string") {
    parsed = await loadFlowFile(resolve(cwd, flow), { displayPath: flow });
  } else if (isParsed(flow)) parsed = flow;
  else parsed = validateFlow(flow, { nodeTypes: new Set(builtinNodes.keys()) });
  const prepared = await prepareFlow(parsed, {
    baseDir: parsed.file ? dirname(resolve(cwd, parsed.file)) : cwd,
  });
  return { parsed, prepared };
}

function isParsed(flow: unknown): flow is ParsedFlow {
  return typeof flow === "object" && flow !== null && "definition" in flow &&
    typeof (flow as ParsedFlow).locate === "function";
}

/** Run a flow and return its record. Invalid flows and inputs throw before anything is written. */
export async function runFlow(
  host: FlowHost,
  flow: FlowSource,
  options: RunFlowOptions = {},
): Promise<RunRecord> {
  const depth = options.depth ?? 0;
  if (depth > MAX_DEPTH) {
    throw new RangeError(
      `Cannot run sub-flow: nesting is deeper than ${MAX_DEPTH} (a flow calling itself?)`,
    );
  }
  const { parsed, prepared } = await loadFlow(flow, { cwd: host.cwd });
  const def = prepared.definition;
  const inputs = coerceInputs(def, options.input ?? {}, { fromStrings: options.inputFromStrings });
  const envSource = options.env ?? Deno.env.toObject();
  const env: Record<string, string> = {};
  for (const name of def.env ?? []) {
    const value = envSource[name];
    if (value !== undefined) env[name] = value;
  }

  const records = new Records(await host.recordsStore(), { clock: host.clock });
  const { hash } = await records.saveVersion(def, parsed.source);
  const runId = records.newRunId();
  const startedAt = host.clock.now();
  await records.startRun({
    id: runId,
    flowId: def.id,
    flowVersion: hash,
    status: "running",
    inputs,
    outputs: null,
    startedAt,
    endedAt: null,
    durationMs: null,
    nodes: {},
    error: null,
    ...(options.parentRunId ? { parentRunId: options.parentRunId } : {}),
  });

  let buffer: RunEvent[] = [];
  let lastFlush = host.clock.now();
  let flushing: Promise<void> = Promise.resolve();
  let flushError: unknown;
  const flush = () => {
    if (buffer.length === 0) return flushing;
    const batch = buffer;
    buffer = [];
    lastFlush = host.clock.now();
    flushing = flushing.then(() => records.appendEvents(runId, batch)).catch((err) => {
      flushError ??= err;
    });
    return flushing;
  };
  const runInfo = { id: runId, flowId: def.id };
  const record = await executeFlow(prepared, {
    runId,
    flowVersion: hash,
    inputs: inputs as Record<string, JsonValue>,
    resolver: host.resolver,
    clock: host.clock,
    timers: options.timers,
    signal: options.signal,
    env,
    concurrency: options.concurrency,
    parentRunId: options.parentRunId,
    onEvent(event) {
      buffer.push(event);
      options.onEvent?.(event, runInfo);
      if (buffer.length >= 200 || event.at - lastFlush >= 200) flush();
    },
    runFlow(sub, input, signal) {
      const target = typeof sub === "string" ? resolve(prepared.baseDir, sub) : sub;
      return runFlow({ ...host }, target, {
        ...options,
        input,
        signal,
        inputFromStrings: false,
        parentRunId: runId,
        depth: depth + 1,
      });
    },
  });
  record.startedAt = startedAt;
  record.durationMs = (record.endedAt ?? startedAt) - startedAt;
  // The last events go with the final status, in one commit (and inline in
  // the record for a short run: see Records.finishRun).
  await flushing;
  const last = buffer;
  buffer = [];
  await records.finishRun(record, last);
  if (flushError !== undefined) {
    throw new Error(`Run ${runId} finished ${record.status} but its events could not be recorded`, {
      cause: flushError,
    });
  }
  return record;
}
