/**
 * Running a flow end to end: load and check it (nothing is written until it
 * is valid), store its version, record the run and its events (through the
 * one {@linkcode RunRecorder}), execute, and record the outcome and metrics.
 * This sits above both the storage-free executor (`flow/`) and the records.
 *
 * @module
 */
import { resolve } from "./_path.ts";
import { callGuarded } from "./_callback.ts";
import type { Clock, Timers } from "./clock.ts";
import type { StoreResolver } from "./state/scopes.ts";
import { executeFlow, type PreparedFlow, type ReusedNode, type RunGuard } from "./flow/executor.ts";
import { type FlowSource, isFlowPath, type LoadedFlow, loadFlowIn } from "./flow/load.ts";
import type { ParsedFlow } from "./flow/parse.ts";
import { SandboxPool } from "./flow/sandbox.ts";
// sub_flows.ts (what a node may start as a sub-run) is loaded by a run that starts a sub-run, and
// by the sub-run: a run without one does not parse it.
import type { SubRunRule } from "./flow/sub_flows.ts";
let subFlowsImport: Promise<typeof import("./flow/sub_flows.ts")> | undefined;
const subFlowsModule = () => subFlowsImport ??= import("./flow/sub_flows.ts");
import type { FlowCache } from "./flow_cache.ts";
import type { ProgramNodeTypes } from "./flow/program_nodes.ts";
import { coerceInputs } from "./flow/inputs.ts";
import { readEnvValues } from "./flow/_env_values.ts";
import { FlowValidationError } from "./errors.ts";
import { claimedRunCommit, RunNotOwnedError, RunRecorder } from "./records/recorder.ts";
import { Records } from "./records/records.ts";
import { hashFlowDefinition, knownFlowHash } from "./records/flow_version.ts";
import { FlowVersionGoneError } from "./records/_versions.ts";
import type { FlowDefinition } from "./flow/types.ts";
import type { RunEvent, RunRecord, ScheduledTick } from "./records/types.ts";
import type { JsonValue, Store } from "./store/types.ts";
import { outsideRunActor } from "./store/actor.ts";
import { type EventBus, unrecorded } from "./runtime_events.ts";
import type { EnqueueOptions, EnqueueResult } from "./queue/enqueue.ts";
import { readSecrets, SecretMasker } from "./flow/secrets.ts";
// resume.ts is loaded when a run resumes another (a cold run that does not pays nothing for it).
import type { ResumeDecision } from "./resume.ts";
import type { MockLevel, NodeMocks } from "./flow/mocks.ts";

/** What running a flow needs from the runtime. */
export interface FlowHost {
  /** Stores behind the scopes. */
  resolver: StoreResolver;
  /** The store runs, versions and metrics are recorded in. */
  recordsStore(): Promise<Store>;
  /** The form run events are written in (the config's `runs.eventFormat`; default 2). */
  eventFormat?: 1 | 2;
  /** The form run records' node outcomes are written in (the config's `runs.nodesFormat`). */
  nodesFormat?: 1 | 2;
  /** The clock. */
  clock: Clock;
  /** Directory relative flow paths resolve against. */
  cwd: string;
  /** The runtime's event stream (runs started and ended, node events). */
  events?: EventBus;
  /** Node modules that run in-process (the config's `nodes.trusted`). */
  trustedNodes?: readonly string[];
  /** Directory `trustedNodes` paths resolve against (the config's directory). */
  trustedBaseDir?: string;
  /** Node types the program defines, by name (`nodeTypes` of `openRuntime`): in-process. */
  nodeTypes?: ProgramNodeTypes;
  /** Where sandboxed nodes take their Workers (default: one pool per run, kept for none). */
  sandboxes?: SandboxPool;
  /** Prepared flows kept across runs, by content (default: every run prepares its flow). */
  flows?: FlowCache;
  /**
   * The config's `flows:` entries (absolute files or folders): besides the
   * calling flow's folder, where a sandboxed node's (or a computed) sub-flow
   * path may point.
   */
  flowRoots?: readonly string[];
  /** Enqueues a run (the `queue` node type): a flow id, or an absolute path. */
  enqueue?: (flow: string, options: EnqueueOptions) => Promise<EnqueueResult>;
  /**
   * Called with the record of every root run (not a sub-run) once its end is
   * recorded and told, and awaited before the run's promise settles: where
   * the runtime runs its `runs.onFailure` flow, stopped by the run's own
   * `signal` too (Ctrl-C while `flowstate run` waits for it). It must not throw.
   */
  afterRun?: (record: RunRecord, signal?: AbortSignal) => Promise<void>;
}

/**
 * Options for running a flow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type RunFlowOptions } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const logs: string[] = [];
 * const options: RunFlowOptions = {
 *   input: { name: "Ada" },
 *   onEvent: (event) => {
 *     if (event.type === "node.log") logs.push(event.message);
 *   },
 * };
 * const run = await rt.runFlow({
 *   id: "greet",
 *   inputs: { name: { type: "string" } },
 *   nodes: [{ id: "say", type: "log", with: { message: "hello ${{ inputs.name }}" } }],
 * }, options);
 * assert.equal(run.status, "succeeded");
 * assert.deepEqual(logs, ["hello Ada"]);
 * ```
 */
export interface RunFlowOptions {
  /** Input values (checked against the flow's `inputs`). */
  input?: Record<string, unknown>;
  /**
   * Inputs are strings from a command line: convert them per declared type
   * (a list of names: only those inputs).
   */
  inputFromStrings?: boolean | readonly string[];
  /** Cancels the run; it is then recorded as `cancelled`. */
  signal?: AbortSignal;
  /** Timers (tests pass fake ones). */
  timers?: Timers;
  /**
   * Called with every event as it happens (the CLI prints logs from here). If it throws, the
   * run goes on all the same (sub-runs too), and `runFlow` rejects with the first error it threw
   * once the run's end is recorded (find the record with `records().listRuns()`). An `async`
   * callback is not awaited; its rejection counts as a throw if it comes before the run's end is
   * recorded, and is ignored (never an unhandled rejection) if it comes later.
   */
  onEvent?: (event: RunEvent, run: { id: string; flowId: string }) => void;
  /** Maximum nodes running at once (overrides the flow's `concurrency`); `Infinity` for no limit. */
  concurrency?: number;
  /** Environment (default: the process's), filtered to the names the flow lists under `env:`. */
  env?: Record<string, string | undefined>;
  /** The parent run, for sub-flows. */
  parentRunId?: string;
  /**
   * How long (ms) a cancelled or timed-out run waits for a node attempt to
   * stop and for its sub-runs to record their end, and a timed-out attempt
   * for the same before any retry (default: the config's `runs.abortGrace`,
   * 5000). What has not ended by then is named in the run's record.
   */
  abortGrace?: number;
  /**
   * The most sub-runs one root run may start, counting every level (default:
   * the config's `runs.maxSubRuns`, 1000). Starting one more fails the `flow`
   * node that asked.
   */
  maxSubRuns?: number;
  /**
   * How long (ms) the run may take when its flow sets no `timeout:` of its
   * own (default: the config's `runs.timeout`, else no limit); past it the
   * run is recorded `timed-out`, as with a flow's `timeout:`.
   */
  defaultTimeout?: number;
  /**
   * Called with the run's id as soon as the run is recorded as `running`,
   * before its first node starts: how a caller that does not wait for the
   * end (an HTTP API answering at once) learns the id. Sub-runs do not call it. If it throws,
   * the run goes on and `runFlow` rejects once its end is recorded, as for `onEvent`.
   *
   * @example
   * ```ts
   * import { openRuntime } from "@flowstate/core";
   * import assert from "node:assert/strict";
   * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * let started: string | undefined;
   * const run = await rt.runFlow(
   *   { id: "hello", nodes: [{ id: "n", type: "transform", with: { value: 1 } }] },
   *   { onStart: (runId) => started = runId },
   * );
   * assert.equal(started, run.id);
   * ```
   */
  onStart?: (runId: string) => void;
  /**
   * The schedule's tick that starts this run (what the daemon's scheduler
   * gives): recorded on the run (`RunRecord.scheduledAt`, `schedule`) and
   * read by its templates as `run.scheduledAt` and `run.schedule` (`null`
   * without it). Not passed on to sub-runs.
   */
  scheduled?: ScheduledTick;
  /**
   * Nodes a test replaces, by id: such a node does not run; its output is
   * the value given, or what the function given returns (see
   * `NodeMock`). Its `with:` is still evaluated and checked against
   * its type's options schema, but nothing only running it needs is checked
   * (a Worker, the runner's `--allow-net`/`--allow-run`, an `exec` program on
   * PATH), and its outcome and events say `mocked: true`. `"a/b"` mocks node
   * `b` of the sub-flow node `a` runs. A key naming no node is a `TypeError`
   * before anything runs (for a sub-flow's node: when the sub-run starts;
   * `runFlow` then rejects with it once the run's end is recorded). A run with
   * mocks is a test's: when it fails, the config's `runs.onFailure` flow is not run.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openRuntime } from "@flowstate/core";
   *
   * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
   * const flow = {
   *   id: "alert",
   *   inputs: { text: { type: "string" } },
   *   nodes: [{
   *     id: "notify",
   *     type: "http",
   *     permissions: { net: ["hooks.slack.com"] },
   *     with: { url: "https://hooks.slack.com/services/T0", method: "POST", body: { text: "${{ inputs.text }}" } },
   *   }],
   * };
   * const sent: unknown[] = [];
   * const run = await rt.runFlow(flow, {
   *   input: { text: "disk full" },
   *   mocks: { notify: (call) => (sent.push(call.with), { status: 200, body: "ok" }) },
   * });
   * assert.equal(run.status, "succeeded");
   * assert.deepEqual(run.nodes.notify, { status: "succeeded", attempts: 1, output: { status: 200, body: "ok" }, mocked: true });
   * assert.deepEqual((sent[0] as { body: unknown }).body, { text: "disk full" });
   * ```
   */
  mocks?: NodeMocks;
  /** Sub-flow nesting depth (internal). */
  depth?: number;
}

/**
 * Options for resuming a run (`Runtime.resumeRun`): those of
 * {@linkcode RunFlowOptions} a new run of a flow takes (the inputs are the
 * resumed run's), and which node to run from, and the flow's file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type ResumeRunOptions } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const flow = {
 *   id: "two",
 *   nodes: [
 *     { id: "a", type: "state.increment", with: { key: "a" } },
 *     { id: "b", type: "transform", needs: ["a"], with: { value: "${{ nodes.a.output }}" } },
 *   ],
 * };
 * const first = await rt.runFlow(flow);
 * const options: ResumeRunOptions = { flow, from: "b" };
 * const again = await rt.resumeRun(first.id, options);
 * assert.equal(again.resumeOf, first.id);
 * assert.equal(again.nodes.a.reused, first.id); // not run again: the counter is still 1
 * assert.equal(again.nodes.b.output, 1);
 * ```
 */
export interface ResumeRunOptions extends
  Omit<
    RunFlowOptions,
    "input" | "inputFromStrings" | "mocks" | "parentRunId" | "depth" | "scheduled"
  > {
  /**
   * Run this node and every node that needs it (directly or indirectly) again,
   * even if they succeeded; required to resume a run that succeeded.
   */
  from?: string;
  /**
   * The flow (a file, or a definition) when neither the config's `flows:`
   * (by the run's flow id) nor the run's record (a queued run's file) finds it.
   */
  flow?: FlowSource;
  /**
   * Resume the run although a resume of it already ran and ended (failed,
   * cancelled, timed out, or even succeeded): by default that is refused
   * (`ResumeRefusedError` reason `"resumed"`), as the run that resumed it holds
   * the newer outputs. A resume still queued or running is refused all the same.
   */
  again?: boolean;
}

/**
 * Options of `Runtime.previewResume`: those of {@linkcode ResumeRunOptions}
 * that decide what a resume would do (the node to run again from, the flow,
 * whether an earlier resume may be resumed again, the environment its `env:`
 * and secrets are read from, as the resume would).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type PreviewResumeOptions } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const flow = {
 *   id: "two",
 *   nodes: [
 *     { id: "a", type: "state.increment", with: { key: "a" } },
 *     { id: "b", type: "log", needs: ["a"], with: { message: "${{ nodes.a.output }}" } },
 *   ],
 * };
 * const run = await rt.runFlow(flow);
 * const options: PreviewResumeOptions = { flow, from: "a" };
 * const preview = await rt.previewResume(run.id, options);
 * assert.deepEqual(preview.nodes.map((n) => n.message), [
 *   "the node the resume starts from",
 *   "needs a, which runs again",
 * ]);
 * ```
 */
export type PreviewResumeOptions = Pick<ResumeRunOptions, "from" | "flow" | "again" | "env">;

/** What a run resuming another needs (see `resume.ts`). */
export interface ResumePlan {
  /** The record of the run resumed. */
  run: RunRecord;
  /** The definition it ran, when its flow version is still kept. */
  before: FlowDefinition | null;
  /** The node to run again from, if given. */
  from?: string;
  /** Aborted when the resume's claim was lost while its flow loaded: its run does not start. */
  lost?: AbortSignal;
  /** Renews the resume's claim just before its run starts (aborting `lost` if it was taken over). */
  confirm?: () => Promise<void>;
  /**
   * Set for a sub-run resuming the sub-run of the same call in the run the
   * root resumes (see `NodeOutcome.subRuns`): taken only when the sub-flow is
   * the same flow and gets the same inputs, else the sub-run starts anew.
   */
  sub?: true;
}

/** {@linkcode RunFlowOptions} with what only the runtime sets. */
interface InternalRunOptions extends RunFlowOptions {
  /** The run this one reports on (a run of the `runs.onFailure` flow). */
  onFailureOf?: string;
  /** The run this one resumes, and how. */
  resume?: ResumePlan;
  /**
   * A sub-run's ancestors in its tree, its parent first: its `wait` nodes also take the
   * signals sent to them (the root run's id is the one a user sees).
   */
  ancestorRunIds?: readonly string[];
  /**
   * A sub-run's place in its root run: the calling nodes' places, each with a
   * `/` (`review/` for the sub-run of node `review`): the receiver its `wait`
   * nodes take signals as (see `Records.takeSignal`).
   */
  placeInRoot?: string;
}

const MAX_DEPTH = 16;

/** The most sub-runs a root run starts unless `maxSubRuns` says otherwise. */
export const DEFAULT_MAX_SUB_RUNS = 1000;

/** What every run under one root run shares. */
interface RunTree {
  /** The root run's id, once recorded. */
  root?: string;
  /** Sub-runs started so far. */
  subRuns: number;
  /** The limit. */
  maxSubRuns: number;
  /**
   * The first error a caller's `onEvent` or `onStart` threw, in any run of the tree: the runs go
   * on (a callback's bug must not leave a run `running` forever), and the root run's `runFlow`
   * rejects with it once its end is recorded.
   */
  callbackError?: { error: unknown };
  /** A claimed root run's guard (its claim still held): every run of the tree is fenced by it. */
  guard?: RunGuard;
  /**
   * The secret values of every run of the tree so far: a sub-run masks its caller's secrets
   * too (its inputs may hold them).
   */
  masker?: SecretMasker;
  /**
   * The recorders of the tree's runs that are running, and the masker's size they were last
   * told of: a secret made known in one run (`mask:`, `ctx.mask`) may be in the outputs the
   * others kept already (see `RunRecorder.secretsAdded`).
   */
  recorders?: { live: Set<RunRecorder>; maskerSize: number };
}

/** Tell the recorders of `tree`'s running runs of the secrets its masker learnt since they were. */
function tellSecretsAdded(tree: RunTree, masker: SecretMasker): void {
  const recorders = tree.recorders;
  if (recorders === undefined || recorders.maskerSize === masker.size) return;
  recorders.maskerSize = masker.size;
  for (const recorder of recorders.live) recorder.secretsAdded(masker);
}

/**
 * Call a caller's callback; what it throws (or its promise rejects with) is kept in `tree`
 * instead of breaking the run.
 */
function callBack(tree: RunTree, call: () => unknown): void {
  callGuarded(call, (error) => {
    tree.callbackError ??= { error };
  });
}

/** The version each flow last saved by this process has, per records store, and when. */
const savedVersions = new WeakMap<Store, Map<string, { hash: string; at: number }>>();
/** How long a saved version is taken as stored and as its flow's head without a look. */
const VERSION_RECHECK_MS = 5_000;

/**
 * `Records.saveVersion`, skipped for a cached (unchanging) definition whose
 * version this process saved in the same store less than
 * {@linkcode VERSION_RECHECK_MS} ago and that is still the last one it saved
 * of that flow: a worker running one flow over and over looks once in a while,
 * not per run. Another process that moves the head is followed within that
 * time; a version retention deleted meanwhile fails the run's start, which
 * saves it again ({@linkcode withVersionSaved}).
 */
async function saveVersionOnce(
  records: Records,
  store: Store,
  def: FlowDefinition,
  source: string | undefined,
): Promise<string> {
  const known = knownFlowHash(def);
  let saved = savedVersions.get(store);
  const last = saved?.get(def.id);
  if (
    known !== undefined && last?.hash === known && performance.now() - last.at < VERSION_RECHECK_MS
  ) {
    return known;
  }
  const { hash } = await records.saveVersion(def, source);
  if (known === undefined) return hash;
  if (saved === undefined) savedVersions.set(store, saved = new Map());
  saved.set(def.id, { hash, at: performance.now() });
  return hash;
}

/** Tries of a run's start whose version retention keeps deleting before it gives up. */
const VERSION_GONE_TRIES = 5;

/**
 * `write()` a run's start (or a claimed run's end); if its flow version was
 * pruned by retention since it was saved (a `FlowVersionGoneError`), save it
 * again and write again: a run never refers to a deleted version (see
 * `_prune_versions.ts`).
 */
async function withVersionSaved<T>(
  records: Records,
  store: Store,
  def: FlowDefinition,
  source: string | undefined,
  write: () => Promise<T>,
): Promise<T> {
  for (let n = 1;; n++) {
    try {
      return await write();
    } catch (err) {
      if (!(err instanceof FlowVersionGoneError) || n >= VERSION_GONE_TRIES) throw err;
      savedVersions.get(store)?.delete(def.id);
      await records.saveVersion(def, source);
    }
  }
}

/** The node ids of each prepared flow, one array per flow (its recorder's `nodeIds`). */
const nodeIdArrays = new WeakMap<PreparedFlow, readonly string[]>();

function nodeIdsOf(prepared: PreparedFlow): readonly string[] {
  let ids = nodeIdArrays.get(prepared);
  if (ids === undefined) nodeIdArrays.set(prepared, ids = prepared.nodes.map((n) => n.spec.id));
  return ids;
}

/** Run a flow and return its record. Invalid flows and inputs throw before anything is written. */
export function runFlow(
  host: FlowHost,
  flow: FlowSource,
  options: RunFlowOptions = {},
): Promise<RunRecord> {
  const maxSubRuns = options.maxSubRuns ?? DEFAULT_MAX_SUB_RUNS;
  if (!Number.isInteger(maxSubRuns) || maxSubRuns < 0) {
    throw new RangeError(
      `Cannot run flow: maxSubRuns must be a whole number of at least 0 (got ${maxSubRuns})`,
    );
  }
  const { onStart, ...rest } = options;
  const run = () => runInTree(host, flow, rest, { subRuns: 0, maxSubRuns }, onStart);
  const given = options.mocks;
  if (given === undefined) return run();
  // Loaded for a run given mocks (a test's) only: a cold `flowstate run` never loads it.
  return import("./flow/mocks.ts").then(({ checkMocks }) => {
    checkMocks(given);
    return run();
  });
}

/**
 * Run the config's `runs.onFailure` flow about the run `reportsOn`: as
 * {@linkcode runFlow}, its record linked to that run (`onFailureOf`), so that
 * its own end fires nothing.
 */
export function runOnFailureFlow(
  host: FlowHost,
  flow: FlowSource,
  reportsOn: string,
  options: RunFlowOptions = {},
): Promise<RunRecord> {
  const { onStart, ...rest } = options;
  const internal: InternalRunOptions = { ...rest, onFailureOf: reportsOn };
  return runInTree(
    host,
    flow,
    internal,
    { subRuns: 0, maxSubRuns: options.maxSubRuns ?? DEFAULT_MAX_SUB_RUNS },
    onStart,
  );
}

/**
 * Run `flow` again as a new run resuming `plan.run`: with its inputs, its
 * record linked to it (`resumeOf`), the nodes `resume.ts` finds reusable
 * not run but taken as recorded. Refused (nothing written) when `flow` is
 * another flow, or `plan.from` names no node of it.
 */
export function resumeFlow(
  host: FlowHost,
  flow: FlowSource,
  plan: ResumePlan,
  options: RunFlowOptions = {},
): Promise<RunRecord> {
  const { onStart, ...rest } = options;
  return runInTree(
    host,
    flow,
    { ...rest, input: plan.run.inputs, inputFromStrings: false, resume: plan },
    { subRuns: 0, maxSubRuns: options.maxSubRuns ?? DEFAULT_MAX_SUB_RUNS },
    onStart,
  );
}

/** How a run of `host` loads its flow, its custom nodes checked in `pool`'s Workers. */
function hostLoadOptions(host: FlowHost, pool: SandboxPool, signal: AbortSignal | undefined) {
  return {
    pool,
    cwd: host.cwd,
    ...(host.trustedNodes === undefined ? {} : { trusted: host.trustedNodes }),
    ...(host.trustedBaseDir === undefined ? {} : { trustedBaseDir: host.trustedBaseDir }),
    ...(host.nodeTypes === undefined ? {} : { nodeTypes: host.nodeTypes }),
    ...(signal === undefined ? {} : { signal }),
  };
}

/**
 * What {@linkcode resumeFlow} would do with each node of `flow` for `plan`
 * (reuse it or run it again, and why), found as it finds it, without running
 * or writing anything. Refused as it is refused: another flow, a `plan.from`
 * naming no node, the run's inputs not fitting the flow now, a variable or
 * secret it lists unset.
 */
export async function previewResumeFlow(
  host: FlowHost,
  flow: FlowSource,
  plan: ResumePlan,
  env?: RunFlowOptions["env"],
): Promise<{ sameVersion: boolean; nodes: ResumeDecision[] }> {
  const pool = host.sandboxes ?? new SandboxPool();
  try {
    using _held = pool.hold();
    const loadOptions = hostLoadOptions(host, pool, undefined);
    const { parsed, prepared } = host.flows === undefined
      ? await loadFlowIn(flow, loadOptions)
      : await host.flows.load(flow, loadOptions);
    const def = prepared.definition;
    const { assertFromNode, assertSameFlow, resumeDecisions } = await import("./resume.ts");
    assertSameFlow(def, plan.run);
    assertFromNode(def, plan.from, plan.run.id);
    // The run's inputs fit the flow now, its variables and secrets are set: else refused as
    // the resume is.
    runValues(parsed, def, { input: plan.run.inputs, inputFromStrings: false, env });
    const sameVersion = (knownFlowHash(def) ?? await hashFlowDefinition(def)) ===
      plan.run.flowVersion;
    const { nodeFilesChangedSince } = await import("./flow/_node_files.ts");
    const nodes = resumeDecisions(
      plan.run,
      def,
      plan.before,
      sameVersion,
      plan.from,
      (spec) => nodeFilesChangedSince(spec, prepared.baseDir, plan.run.startedAt),
    );
    return { sameVersion, nodes };
  } finally {
    if (host.sandboxes === undefined) pool.close();
  }
}

/**
 * A run's inputs (coerced to the flow's), and the variables and secrets the
 * flow lists, read; thrown when one is missing or wrong, as a run (and a
 * resume, and its preview) is refused before it starts.
 */
function runValues(
  parsed: ParsedFlow,
  def: FlowDefinition,
  options: Pick<InternalRunOptions, "input" | "inputFromStrings" | "env">,
) {
  const inputs = coerceInputs(def, options.input ?? {}, {
    fromStrings: options.inputFromStrings,
    locate: parsed.locate,
    file: parsed.file,
  });
  // Only the names the flow lists are read, so a flow without `env:` needs no --allow-env.
  // NAME unset, NAME_FILE set: NAME is the content of that file (Docker and Kubernetes secrets).
  const read = readEnvValues(
    def,
    options.env ? (name) => options.env![name] : (name) => Deno.env.get(name),
    parsed.locate,
  );
  const unset = read.problems;
  const secrets = readSecrets(def, options.env, parsed.locate);
  unset.push(...secrets.problems);
  if (unset.length > 0) throw new FlowValidationError(unset, parsed.file);
  return { inputs, env: read.values, secrets };
}

/** A run a worker claimed from the queue, for {@linkcode runClaimed}. */
export interface ClaimedRun {
  /** The run's record as claimed (`running`, with `queue.claim`). */
  record: RunRecord;
  /**
   * The flow file to run, when not the one its record names (`queue.flowPath`, the file as
   * the enqueuing process found it): see the worker's `flowFileHere`.
   */
  flowPath?: string;
  /** How often its heartbeat (which extends the claim's lease) is written, in ms. */
  heartbeatMs: number;
  /** Whether a cancelled end means "give the run back to the queue" (the worker is stopping). */
  released?: () => boolean;
  /** Aborted when the worker finds the claim gone: the attempt stops and writes nothing more. */
  lost?: AbortSignal;
  /**
   * Whether the claim is still held, asked before each node starts and by each state call of
   * the run and its sub-runs (see `ExecuteOptions.guard`): cheap, from the lease end known
   * locally.
   */
  guard?: RunGuard;
}

/**
 * Run a run claimed from the queue: its flow file, with its recorded
 * inputs, on its run id. The end is committed with
 * `Records.finishClaimedRun` (a failure with attempts left goes back to
 * the queue); a `RunNotOwnedError` is thrown when the claim lapsed meanwhile.
 */
export function runClaimed(
  host: FlowHost,
  claimed: ClaimedRun,
  options: RunFlowOptions = {},
): Promise<RunRecord> {
  const maxSubRuns = options.maxSubRuns ?? DEFAULT_MAX_SUB_RUNS;
  const { onStart, ...rest } = options;
  const path = claimed.flowPath ?? claimed.record.queue?.flowPath;
  if (path === undefined) {
    return Promise.reject(new TypeError(`Cannot run ${claimed.record.id}: it has no queue info`));
  }
  return runInTree(
    host,
    path,
    { ...rest, input: claimed.record.inputs, inputFromStrings: false },
    { subRuns: 0, maxSubRuns, ...(claimed.guard === undefined ? {} : { guard: claimed.guard }) },
    onStart,
    claimed,
  );
}

async function runInTree(
  host: FlowHost,
  flow: FlowSource,
  options: InternalRunOptions,
  tree: RunTree,
  onStart?: (runId: string) => void,
  claimed?: ClaimedRun,
  rule: SubRunRule = {},
  mockPath = "",
): Promise<RunRecord> {
  const depth = options.depth ?? 0;
  if (depth > MAX_DEPTH) {
    throw new RangeError(
      `Cannot run sub-flow: nesting is deeper than ${MAX_DEPTH} (a flow calling itself?)`,
    );
  }
  if (host.sandboxes === undefined) {
    // Sub-runs share the root run's pool; it stops its Workers when the root run ends.
    const pool = new SandboxPool();
    try {
      return await runInTree(
        { ...host, sandboxes: pool },
        flow,
        options,
        tree,
        onStart,
        claimed,
        rule,
        mockPath,
      );
    } finally {
      pool.close();
    }
  }
  // Loaded for a run given mocks (a test's) only, as in runFlow().
  const mocking = options.mocks === undefined ? undefined : await import("./flow/mocks.ts");
  const mocks = mocking?.mockLevel(options.mocks);
  // A sub-run with a ceiling or started for a sandboxed node or a computed flow: its checks.
  const subFlows = rule.ceiling === undefined && rule.untrusted === undefined
    ? undefined
    : await subFlowsModule();
  // Held from the check to the end of the run: the Worker that checked a module runs it.
  using _held = host.sandboxes.hold();
  // A run cancelled while it waits for a turn to check its custom nodes gives up waiting.
  const loadOptions = hostLoadOptions(host, host.sandboxes, options.signal);
  const ceiling = rule.ceiling;
  if (ceiling !== undefined || mocks !== undefined) {
    // Checked on the parsed flow, before any of its modules is loaded.
    Object.assign(loadOptions, {
      beforePrepare: (parsed: ParsedFlow, baseDir: string) => {
        if (mocks !== undefined) mocksExist(mocks, parsed.definition);
        if (ceiling !== undefined) {
          subFlows!.checkCeiling(parsed, ceiling, { ...loadOptions, baseDir });
        }
      },
    });
  }
  if (mocks !== undefined) Object.assign(loadOptions, { mocked: new Set(mocks.own.keys()) });
  /** A mock naming no node: thrown, and (in a sub-run) what the root `runFlow` rejects with. */
  function mocksExist(level: MockLevel, def: FlowDefinition): void {
    try {
      mocking!.assertMockedNodesExist(level, def.id, def.nodes.map((n) => n.id), mockPath);
    } catch (err) {
      if (depth > 0) tree.callbackError ??= { error: err };
      throw err;
    }
  }
  let loaded: LoadedFlow;
  try {
    // A run with mocks prepares its flow of its own: its mocked nodes are checked less.
    loaded = host.flows === undefined || mocks !== undefined
      ? await loadFlowIn(flow, loadOptions)
      : await host.flows.load(flow, loadOptions);
    // A flow given loaded already was not prepared here: its ids are checked now.
    if (mocks !== undefined) mocksExist(mocks, loaded.prepared.definition);
  } catch (err) {
    if (err instanceof TypeError && mocks !== undefined && tree.callbackError?.error === err) {
      throw err;
    }
    if (rule.untrusted === undefined || err instanceof subFlows!.SubFlowRefusedError) throw err;
    // Its problems may quote the file (any YAML file of those folders): not for the node's eyes.
    const file = typeof flow === "string" ? flow : "(definition)";
    throw new subFlows!.SubFlowRefusedError(
      `Cannot start sub-flow ${file} for ${rule.untrusted}: it is not a valid flow; its problems are not shown to a sandboxed node or a computed flow: (run flowstate validate ${file} to see them)`,
    );
  }
  const { parsed, prepared } = loaded;
  const def = prepared.definition;
  let resume = options.resume;
  const resuming = resume === undefined ? undefined : await import("./resume.ts");
  if (resume !== undefined && resume.sub !== true) {
    resuming!.assertSameFlow(def, resume.run);
    resuming!.assertFromNode(def, resume.from, resume.run.id);
  }
  if (mocks !== undefined && mocks.nested.size > 0) {
    try {
      await mocking!.assertSubFlowMocks(
        mocks,
        def,
        prepared.baseDir,
        new Set(host.nodeTypes?.keys() ?? []),
        mockPath,
      );
    } catch (err) {
      if (depth > 0) tree.callbackError ??= { error: err };
      throw err;
    }
  }
  const { inputs, env, secrets } = runValues(parsed, def, options);
  // Every value this run records, emits or returns goes through it; nodes get the real values.
  const masker = tree.masker ??= new SecretMasker();
  masker.add(Object.values(secrets.values));
  // A sub-run resumes its earlier one only when it is that one again: the same flow, the same
  // inputs (a node before it that ran again may have given it others; inputs recorded `***`
  // are compared masked as they were).
  if (
    resume?.sub === true &&
    !resuming!.sameSubRun(resume.run, def, inputs, (value) => masker.mask(value))
  ) resume = undefined;

  // A claimed run whose claim was lost while its flow loaded (the worker's heartbeat found it
  // taken back, or its lease ran out) does not start: it may be running under another worker.
  if (claimed !== undefined && (claimed.lost?.aborted || tree.guard?.refusal() !== undefined)) {
    throw new RunNotOwnedError(claimed.record.id);
  }
  // The same for a resume whose claim on the run it resumes was taken over.
  if (resume?.lost?.aborted) throw resume.lost.reason;
  const recordsStore = await untilAborted(
    host.recordsStore(),
    options.signal,
    "Cancelled before the run started: its records store was still opening",
  );
  const records = new Records(recordsStore, {
    clock: host.clock,
    ...(host.eventFormat === undefined ? {} : { eventFormat: host.eventFormat }),
    ...(host.nodesFormat === undefined ? {} : { nodesFormat: host.nodesFormat }),
  });
  const hash = await saveVersionOnce(records, recordsStore, def, parsed.source);
  let reused: Map<string, ReusedNode> | undefined;
  if (resume !== undefined) {
    // A node whose module (or a file it imports, or its sub-flow's files) was edited since the
    // run started runs again: the fix a resume is usually for may be there.
    const { nodeFilesChangedSince } = await import("./flow/_node_files.ts");
    reused = resuming!.reusableNodes(
      resume.run,
      def,
      resume.before,
      hash === resume.run.flowVersion,
      resume.from,
      (spec) => nodeFilesChangedSince(spec, prepared.baseDir, resume.run.startedAt),
    );
  }
  // Its claim, renewed now: a resume stalled past it (its process suspended) may have gone on
  // before its renewal's timer fired, while another resume took the run over.
  if (resume?.confirm !== undefined) {
    await resume.confirm();
    if (resume.lost?.aborted) throw resume.lost.reason;
  }
  // Aborted by the caller's signal, or by a cancel request from another process.
  const cancel = new AbortController();
  const onAbort = () => cancel.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });
  let recorder: RunRecorder;
  try {
    const start = {
      flowId: def.id,
      flowVersion: hash,
      // A queued run's next attempt (after a failure, a dead worker, a retry by hand) runs with
      // its record's inputs: they stay as enqueued (stored in the clear from the start), not
      // `***`. Any other run's are masked, and its record says so (a resume cannot use them).
      ...(claimed !== undefined
        ? { inputs: inputs as Record<string, JsonValue> }
        : masker.contains(inputs)
        ? { inputs: masker.mask(inputs) as Record<string, JsonValue>, inputsMasked: true as const }
        : { inputs: inputs as Record<string, JsonValue> }),
      ...(options.parentRunId ? { parentRunId: options.parentRunId } : {}),
      ...(options.onFailureOf === undefined ? {} : { onFailureOf: options.onFailureOf }),
      ...(resume === undefined ? {} : { resumeOf: resume.run.id }),
      // A test's mocks (its own nodes', or its sub-flows' nodes'): its outputs are not real.
      ...(mocks === undefined ? {} : { mocked: true as const }),
      ...(options.scheduled === undefined
        ? {}
        : { scheduledAt: options.scheduled.at, schedule: options.scheduled.schedule }),
    };
    const onCancelRequested = () => cancel.abort("cancel requested");
    const nodeIds = nodeIdsOf(prepared);
    recorder = claimed === undefined
      ? await withVersionSaved(
        records,
        recordsStore,
        def,
        parsed.source,
        () => RunRecorder.start(records, host.clock, start, { onCancelRequested, nodeIds }),
      )
      : RunRecorder.adopt(records, host.clock, claimed.record, {
        ...start,
        ...(claimed.record.parentRunId ? { parentRunId: claimed.record.parentRunId } : {}),
        queue: claimed.record.queue,
      }, {
        onCancelRequested,
        nodeIds,
        heartbeatMs: claimed.heartbeatMs,
        ...(claimed.lost === undefined ? {} : { lost: claimed.lost }),
        // The end is retried for as long as the claim's lease holds (a store outage shorter
        // than the lease): giving up earlier would fail, or run again, a run that ended.
        ...(tree.guard === undefined ? {} : {
          retryFinishWhile: () => !claimed.lost?.aborted && tree.guard?.refusal() === undefined,
        }),
        // Cancelled because the worker stops (or its process exits at once): back to the queue.
        // Its version, if the flow changed while it was queued, saved again if pruned meanwhile.
        commit: (...args) =>
          withVersionSaved(
            records,
            recordsStore,
            def,
            parsed.source,
            () => claimedRunCommit(records, claimed.released)(...args),
          ),
      });
  } catch (err) {
    options.signal?.removeEventListener("abort", onAbort);
    throw err;
  }
  const recorders = tree.recorders ??= { live: new Set(), maskerSize: masker.size };
  recorders.live.add(recorder);
  // Outputs kept beside its events before a secret is made known are masked when it is.
  recorder.secretsAdded(masker);
  try {
    return await recordRun(recorder, cancel.signal);
  } finally {
    recorders.live.delete(recorder);
    options.signal?.removeEventListener("abort", onAbort);
  }

  async function recordRun(recorder: RunRecorder, signal: AbortSignal): Promise<RunRecord> {
    const runId = recorder.id;
    tree.root ??= runId;
    if (onStart !== undefined) callBack(tree, () => onStart(runId));
    const runInfo = { id: runId, flowId: def.id };
    const bus = host.events;
    bus?.emit({
      type: "run.started",
      at: recorder.startedAt,
      runId,
      flowId: def.id,
      ...(options.parentRunId ? { parentRunId: options.parentRunId } : {}),
    });
    let outcome: Awaited<ReturnType<typeof executeFlow>>;
    try {
      outcome = await executeFlow(prepared, {
        runId,
        flowVersion: hash,
        inputs: inputs as Record<string, JsonValue>,
        resolver: host.resolver,
        clock: host.clock,
        timers: options.timers,
        signal,
        env,
        ...(def.secrets === undefined ? {} : { secrets: secrets.values }),
        masker,
        concurrency: options.concurrency,
        parentRunId: options.parentRunId,
        ...(options.scheduled === undefined ? {} : { scheduled: options.scheduled }),
        abortGrace: options.abortGrace,
        defaultTimeout: options.defaultTimeout,
        ...(tree.guard === undefined ? {} : { guard: tree.guard }),
        ...(mocks === undefined ? {} : { mocks: mocks.own }),
        ...(reused === undefined ? {} : { reused }),
        ...(host.enqueue === undefined ? {} : {
          enqueue: (flow: string, opts: EnqueueOptions) => {
            if (masker.contains(opts)) {
              // Stored `***` would run the queued flow with the wrong value: refused instead.
              throw new Error(
                `Cannot queue a run of ${flow}: its input or key holds a secret's value, which the queue would store in the clear; declare the secret under secrets: of the queued flow and read it there as secrets.NAME`,
              );
            }
            return host.enqueue!(isFlowPath(flow) ? resolve(prepared.baseDir, flow) : flow, {
              ...opts,
              parentRunId: runId,
            });
          },
        }),
        // A signal for this run's `wait` nodes (`Records.sendSignal`, from any process): sent
        // to this run or to one of its ancestors (a sub-run's, to the root run), oldest first.
        // The signal is the node's once taken: its next attempt in this run tree gets it again.
        async takeSignal(name: string, place: string) {
          const signal = await records.takeSignal(
            [runId, ...options.ancestorRunIds ?? []],
            name,
            { receiver: `${options.placeInRoot ?? ""}${place}` },
          );
          return signal === null ? null : { data: signal.data };
        },
        onEvent(unmasked, output) {
          tellSecretsAdded(tree, masker);
          const event = masker.mask(unmasked);
          // A node's output is kept beside its end event (see recorder.ts), masked as its end
          // would record it: a run whose process dies before its end keeps it.
          if (output === undefined) recorder.event(event);
          else if (masker.empty || !masker.contains(output)) recorder.event(event, output);
          else recorder.event(event, masker.mask(output) as JsonValue, true);
          if (bus?.listening && event.type.startsWith("node.")) {
            bus.emit({ type: "node", at: event.at, runId, flowId: def.id, event });
          }
          const onEvent = options.onEvent;
          if (onEvent !== undefined) callBack(tree, () => onEvent(event, runInfo));
        },
        async runFlow(sub, input, { signal, onStart, node, place, call }) {
          if (tree.subRuns >= tree.maxSubRuns) {
            const name = typeof sub === "string" ? sub : String(sub.id ?? "(inline)");
            throw new RangeError(
              `Cannot run sub-flow ${name}: it would start sub-run ${
                tree.subRuns + 1
              } under root run ${tree.root}, over the limit of ${tree.maxSubRuns} sub-runs per root run (a flow fanning out without end?); if intended, raise it with "runs: { maxSubRuns: N }" in the config (or the maxSubRuns option of runFlow())`,
            );
          }
          tree.subRuns++;
          // What the node may start: see sub_flows.ts.
          const { subRunTarget } = await subFlowsModule();
          const { target, rule: subRule } = await subRunTarget(node, def.id, sub, {
            baseDir: prepared.baseDir,
            flowRoots: host.flowRoots ?? [],
            flow: prepared,
            ...(rule.ceiling === undefined ? {} : { inherited: rule.ceiling }),
          });
          // The sub-run's records are its own writes, not the parent node's (its nodes' state
          // writes name the sub-run and its nodes, as any run's do). A definition's relative
          // paths (its nodes' `type:`, its sub-flows) are relative to the calling flow's folder.
          // A resumed run's node that failed resumes its sub-run rather than start it anew.
          const subPlan = resume === undefined
            ? undefined
            : await resuming!.subRunPlan(records, resume, node.spec, call);
          return await outsideRunActor(() =>
            runInTree(
              { ...host, cwd: prepared.baseDir },
              target,
              {
                ...options,
                input,
                signal,
                inputFromStrings: false,
                parentRunId: runId,
                ancestorRunIds: [runId, ...options.ancestorRunIds ?? []],
                placeInRoot: `${options.placeInRoot ?? ""}${place}/`,
                depth: depth + 1,
                mocks: mocks?.nested.get(node.spec.id),
                onFailureOf: undefined,
                resume: subPlan,
                scheduled: undefined,
              },
              tree,
              onStart,
              undefined,
              subRule,
              `${mockPath}${node.spec.id}/`,
            )
          );
        },
      });
    } catch (err) {
      await recorder.close(); // no end to record: the run is found abandoned later
      unrecorded(bus, runId, def.id, host.clock.now(), masker.mask(err));
      throw err;
    }
    // The last events go with the final status, in one commit (and inline in
    // the record for a short run: see Records.finishRun).
    // A node whose output holds a secret's value is recorded masked: not what it returned, so
    // a run resuming this one runs it again (see resume.ts).
    if (!masker.empty) {
      for (const node of Object.values(outcome.nodes)) {
        if (node.output !== undefined && masker.contains(node.output)) node.masked = true;
      }
    }
    // A value the run made a secret since it started (`mask:`, `ctx.mask`) may be one of its
    // inputs: they are recorded masked at its end, and say so (a resume cannot use them). Not
    // a claimed run's: its next attempt runs with its record's inputs (see `start`).
    const maskedInputs = claimed === undefined && !masker.empty && masker.contains(inputs)
      ? masker.mask(inputs) as Record<string, JsonValue>
      : undefined;
    // A secret made known since the last event: the outputs kept beside the events (a long
    // run's chunks stay) are masked as the end is.
    tellSecretsAdded(tree, masker);
    let record: RunRecord;
    try {
      record = await recorder.finish({
        ...masker.mask({ ...outcome, endedAt: outcome.endedAt ?? undefined }),
        ...(maskedInputs === undefined ? {} : { maskedInputs }),
      });
    } catch (err) {
      unrecorded(bus, runId, def.id, host.clock.now(), masker.mask(err));
      throw err;
    }
    bus?.emit({
      type: "run.ended",
      at: record.endedAt ?? host.clock.now(),
      runId,
      flowId: def.id,
      status: record.status,
      record,
    });
    // A run with mocks is a test's: its failure is not reported (`runs.onFailure` would post it
    // for real, from the test).
    if (depth === 0 && host.afterRun !== undefined && mocks === undefined) {
      await host.afterRun(record, options.signal);
    }
    // The caller's own error, unchanged (so `instanceof` checks on it hold); the run is recorded.
    if (tree.callbackError !== undefined && depth === 0) throw tree.callbackError.error;
    return record;
  }
}

/**
 * `promise`, or an error saying `message` as soon as `signal` aborts while it
 * waits: a store that cannot open (a server that does not answer) must not
 * keep a cancelled run waiting. Nothing is recorded for a run cancelled here:
 * it had not started. A signal aborted already is left to the run (recorded
 * cancelled at once, as before).
 */
async function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  message: string,
): Promise<T> {
  if (signal === undefined || signal.aborted) return await promise;
  const aborted = Promise.withResolvers<never>();
  const onAbort = () => aborted.reject(new Error(message, { cause: signal.reason }));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([promise, aborted.promise]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
