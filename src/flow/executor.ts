/**
 * The executor: runs a prepared flow's DAG with bounded concurrency, `if`,
 * `when:` (see `_when.ts`), retries with backoff, per-attempt timeouts,
 * `continueOnError`, a flow-level timeout and cancellation; injects scoped
 * state into every node.
 *
 * @module
 */
import { withNodeActor } from "../store/actor.ts";
import { boundView, createStateView, type StateView, type StoreResolver } from "../state/scopes.ts";
import { MAX_VALUE_BYTES, serializeValue, utf8Length } from "../store/values.ts";
import type { JsonValue } from "../store/types.ts";
import { type Clock, realTimers, systemClock, type Timers } from "../clock.ts";
import type { LogLevel, NodeContext, NodeType } from "./node.ts";
import {
  errorMessage,
  LOG_LINE_BYTES,
  logLevel,
  logLine,
  maskProblem,
  sleepProblem,
} from "./_context_args.ts";
// _mask_paths.ts is loaded by the first run of a flow with a node with `mask:` (see `run`):
// a run without one does not parse it.
let maskPaths: typeof import("./_mask_paths.ts") | undefined;
// _for_each.ts likewise, by the first run of a flow with a `forEach` node, and _when.ts by the
// first run of a flow with a `when:` other than `on_success`.
let forEachCode: typeof import("./_for_each.ts") | undefined;
let whenCode: typeof import("./_when.ts") | undefined;
import { SECRET_MIN_LENGTH } from "./secrets.ts";
import {
  type CompiledTemplate,
  type CompiledValue,
  type SecretTracker,
  TemplateError,
  type TemplateScope,
  truthy,
} from "./template/mod.ts";
import type { FlowDefinition, NodeSpec } from "./types.ts";
import type {
  NodeAttemptEvent,
  NodeItems,
  NodeLogEvent,
  NodeStatus,
  NodeSubRunEvent,
  RunEvent,
  RunEventInit,
  RunRecord,
  RunStatus,
  ScheduledTick,
} from "../records/types.ts";
import { periodicYield } from "../_yield.ts";
import { type AttemptOverError, messageOf } from "../errors.ts";
import { AttemptFence } from "./_attempt.ts";
import { NodeAccess } from "./_access.ts";
import { releaseSandbox } from "./sandbox.ts";
import type { SchemaResult } from "../plugin.ts";
import { copyContainers } from "./template/values.ts";
import { builtinNodes } from "./nodes.ts";
import { parseJson } from "../_json.ts";
import type { WhenPlan, WhenRun } from "./_when.ts";
import { describeValue } from "./_shapes.ts";
import type { NodeMock, NodeMockCall } from "./mocks.ts";
import { placedError, placedMessage, placedOptionsError } from "./_eval_place.ts";
import { OptionsError, optionsIssues } from "./_options_error.ts";

/**
 * The largest output a node may return, in bytes of its JSON text: it is kept
 * in the run record beside every other node's output, and a record is at most
 * {@linkcode MAX_VALUE_BYTES}.
 */
export const MAX_NODE_OUTPUT_BYTES: number = MAX_VALUE_BYTES / 4;

function assertOutputSize(text: string, id: string): void {
  if (text.length * 3 <= MAX_NODE_OUTPUT_BYTES) return;
  const size = utf8Length(text);
  if (size <= MAX_NODE_OUTPUT_BYTES) return;
  throw new RangeError(
    `node ${id} returned ${
      size.toLocaleString("en-US")
    } bytes of JSON; a node's output is at most ` +
      `${
        MAX_NODE_OUTPUT_BYTES.toLocaleString("en-US")
      } bytes (4 MiB), since it is kept in the run's record: ` +
      `put large data in state (or outside the store) and return a reference to it`,
  );
}

/**
 * How much a node attempt may write with `ctx.log`: lines, bytes (UTF-8) of
 * one line, and bytes of all its lines. A longer line is cut; lines past the
 * limits are dropped, and one `warn` line at the attempt's end says how many.
 * Each line is kept in the run's events, in the store: without a limit a node
 * (even one without any permission) could fill the disk.
 */
export const NODE_LOG_LIMITS: {
  readonly lines: number;
  readonly lineBytes: number;
  readonly totalBytes: number;
} = Object.freeze({ lines: 10_000, lineBytes: LOG_LINE_BYTES, totalBytes: 4 * 1024 * 1024 });

/**
 * The most items a node's `forEach:` list may hold: each item is a run of the
 * node, kept in the run's events, and its output in the node's (one value).
 */
export const MAX_FOR_EACH_ITEMS = 10_000;

/** How long a node attempt that is over may take to stop, by default (ms). */
export const DEFAULT_ABORT_GRACE = 5000;

/**
 * A node ready to run: its type resolved and templates compiled.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadFlow, type PreparedNode } from "@flowstate/core/flow";
 *
 * const { prepared } = await loadFlow({
 *   id: "f",
 *   nodes: [
 *     { id: "a", type: "log", with: { message: "hi" }, retry: { attempts: 2, delay: "1s" } },
 *     { id: "b", type: "log", needs: ["a"], with: { message: "bye" } },
 *   ],
 * });
 * const b: PreparedNode = prepared.nodes[1];
 * assert.deepEqual(b.needs, [0]); // indices of the nodes it needs
 * assert.equal(prepared.nodes[0].retry.delay, 1_000);
 * ```
 */
export interface PreparedNode {
  /** The node as written. */
  spec: NodeSpec;
  /** Its implementation. */
  type: NodeType<unknown>;
  /** Compiled `with`. */
  with: CompiledValue;
  /** Compiled `if`. */
  if?: CompiledTemplate;
  /** Indices of the nodes it needs. */
  needs: number[];
  /** Indices of the nodes that need it. */
  dependents: number[];
  /** Retry policy with durations in ms. */
  retry: { attempts: number; delay: number; backoff: "constant" | "exponential"; maxDelay: number };
  /** Per-attempt timeout in ms. */
  timeout?: number;
  /** Its `forEach:`: the list compiled, and how many items run at once. */
  forEach?: { items: CompiledValue; concurrency: number };
  /**
   * Where it runs: `builtin` and `trusted` in-process, `worker` in a Worker
   * with {@linkcode PreparedNode.permissions}.
   */
  runs?: "builtin" | "trusted" | "worker";
  /** A `worker` node's permissions (paths resolved), every Deno name present. */
  permissions?: Record<string, boolean | string[]>;
}

/**
 * A flow ready to run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadFlow, type PreparedFlow } from "@flowstate/core/flow";
 *
 * const { prepared }: { prepared: PreparedFlow } = await loadFlow({
 *   id: "f",
 *   timeout: "1m",
 *   nodes: [{ id: "a", type: "log", with: { message: "hi" } }],
 * });
 * assert.equal(prepared.timeout, 60_000);
 * assert.equal(prepared.definition.id, "f");
 * ```
 */
export interface PreparedFlow {
  /** The definition. */
  definition: FlowDefinition;
  /** The file it came from, if any. */
  file?: string;
  /** The YAML text it was parsed from, if any (to place errors raised while it runs). */
  source?: string;
  /**
   * The position of the value at a path in {@linkcode PreparedFlow.source}
   * (see `ParsedFlow.locate`), to place errors raised while it runs.
   */
  locate?(path: (string | number)[]): { line: number; column: number } | undefined;
  /** Directory sub-flow paths and module node types resolve against. */
  baseDir: string;
  /** Nodes in definition order. */
  nodes: PreparedNode[];
  /** Compiled `outputs`. */
  outputs?: CompiledValue;
  /** Flow-level timeout in ms. */
  timeout?: number;
}

/** What the executor needs from its surroundings. */
export interface ExecuteOptions {
  /** The run's id. */
  runId: string;
  /** Content hash of the flow version. */
  flowVersion: string;
  /** Validated inputs. */
  inputs: Record<string, JsonValue>;
  /** Stores behind the scopes. */
  resolver: StoreResolver;
  /** The clock. */
  clock: Clock;
  /** Timers (default: real ones). */
  timers?: Timers;
  /** Cancels the run. */
  signal?: AbortSignal;
  /** Environment values templates may read (already filtered to the flow's `env:`). */
  env?: Record<string, string>;
  /**
   * Secret values templates may read as `secrets.NAME` (the flow's `secrets:`). The executor
   * passes them to nodes as they are; masking what is recorded is the caller's (`runFlow`'s).
   */
  secrets?: Record<string, string>;
  /**
   * The run's secret masker: template functions add to it what they derive from a secret
   * (`base64(secrets.X)`), so that the caller masks that too (see `TemplateScope.masker`).
   */
  masker?: SecretTracker;
  /**
   * Receives every event as it happens; a `node.end` of a node that returned
   * an output comes with that output (the event does not hold it: the caller
   * may keep it, as `runFlow` keeps it for a run whose process dies before
   * its end is recorded). The output is the run's own: not to be changed.
   */
  onEvent?: (event: RunEvent, output?: JsonValue) => void;
  /**
   * Runs a sub-flow: `signal` is the calling node's; `onStart` is told the
   * sub-run's id once it is recorded; `node` is the node that asks (what it
   * may start depends on where it runs: see `sub_flows.ts`); `place` names
   * the call within the run: the node's id, its `forEach` item (`id[2]`) and,
   * from the attempt's second sub-flow on, their count (`id#2`), the same in
   * each attempt of the node (what a `wait` node of the sub-run is known by,
   * see `takeSignal`).
   */
  runFlow?: (
    flow: string | Record<string, unknown>,
    input: Record<string, unknown> | undefined,
    call: {
      signal: AbortSignal;
      onStart(runId: string): void;
      node: PreparedNode;
      place: string;
      /** Which of the attempt's calls of `ctx.runFlow` this is, from 1. */
      call: number;
    },
  ) => Promise<RunRecord>;
  /**
   * How long (ms) a node attempt that timed out or was cancelled may take to
   * stop, and its sub-runs to record their end, before the node is given up
   * on (default {@linkcode DEFAULT_ABORT_GRACE}).
   */
  abortGrace?: number;
  /** How long (ms) the run may take when the flow sets no `timeout:` (see `RunFlowOptions`). */
  defaultTimeout?: number;
  /** Overrides the flow's `concurrency` (default 16). */
  concurrency?: number;
  /** Enqueues a run of another flow (the `queue` node type); absent where there is no queue. */
  enqueue?: NodeContext<unknown>["enqueue"];
  /**
   * Takes a signal sent to the run (the `wait` node type) for node `place` (its id, and
   * `[item]` in a `forEach` node; `+n` for an attempt's (n+1)th signal of that name):
   * each attempt of one node gets the signals the first took, in the same order (see
   * `Records.takeSignal`). Absent where runs are not recorded.
   */
  takeSignal?: (name: string, place: string) => Promise<{ data: JsonValue } | null>;
  /** Parent run, for sub-flows. */
  parentRunId?: string;
  /** The schedule's tick that started the run (templates read `run.scheduledAt`, `run.schedule`). */
  scheduled?: ScheduledTick;
  /**
   * Whether the run may still act (a queued run's claim on it is still held):
   * asked before each node starts and by every state call of its attempts. Once it
   * refuses, no node starts and every call of a running attempt fails with an
   * `AttemptOverError` giving its reason. Asked on the hot path: it must be cheap.
   */
  guard?: RunGuard;
  /**
   * Mocks of the flow's nodes, by id (`RunFlowOptions.mocks`, this flow's own):
   * a mocked node's checked options go to its mock instead of its type's
   * `run`, and its outcome and events say `mocked: true`.
   */
  mocks?: ReadonlyMap<string, NodeMock>;
  /**
   * Nodes a resumed run does not run, by id: each ends at once `succeeded`
   * with the outcome recorded by the run it resumes (`from`), its `node.end`
   * and outcome marked `reused: from` (no `node.start`, no attempt, no state
   * read or written). Which nodes may be: see `resume.ts`.
   */
  reused?: ReadonlyMap<string, ReusedNode>;
}

/** A node a resumed run takes from the run it resumes (see {@linkcode ExecuteOptions.reused}). */
export interface ReusedNode {
  /** The id of the run whose outcome it takes. */
  from: string;
  /** The attempts that run made. */
  attempts: number;
  /** Its recorded output. */
  output: JsonValue;
  /** A `forEach` node's items, as recorded. */
  items?: NodeItems;
  /** The sub-runs it started, as recorded (see `NodeOutcome.subRuns`). */
  subRuns?: (string | null)[];
}

/**
 * What says whether a run may still act (see {@linkcode ExecuteOptions.guard}):
 * `undefined` while it may, else why not. Once it answers a reason it keeps
 * answering one.
 */
export interface RunGuard {
  /** `undefined` while the run may act; else why it may not (stays so). */
  refusal(): string | undefined;
}

interface AttemptSuccess {
  ok: true;
  output: JsonValue;
  /** The length of the output's JSON text (for `node.end`'s `outputBytes`). */
  bytes: number;
}

interface AttemptFailure {
  ok: false;
  error: string;
  timedOut: boolean;
  /** Set when the attempt did not stop within the grace period: what is still running. */
  stuck?: string;
}

type AttemptOutcome = AttemptSuccess | AttemptFailure;

/** `result`, with `subRuns` when there are any (see `NodeOutcome.subRuns`). */
function withSubRuns(result: NodeResult, subRuns: (string | null)[] | undefined): NodeResult {
  if (subRuns !== undefined && subRuns.length > 0) result.subRuns = subRuns;
  return result;
}

interface NodeResult {
  status: NodeStatus;
  attempts: number;
  output?: JsonValue;
  error?: string;
  items?: NodeItems;
  /** A mock stood in for it (it made an attempt, and `ExecuteOptions.mocks` has it). */
  mocked?: true;
  /** Not run: the outcome of this run's (see `ExecuteOptions.reused`). */
  reused?: string;
  /** The sub-runs its last attempt started (see `NodeOutcome.subRuns`). */
  subRuns?: (string | null)[];
}

/** One item of a node with `forEach:` while it runs (see `Execution.#runItems`). */
interface ItemRun {
  /** Its index in the list. */
  index: number;
  /** What its templates read: the run's, with `item` and `index`. */
  scope: TemplateScope;
  /** Where it puts its result (at `index`): every item's of the node. */
  results: NodeResult[];
}

class AttemptTimeout extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = "TimeoutError";
  }
}

/**
 * Built-in node types that run without an actor context (setting one costs
 * every `await` inside it a context switch): those that never touch a store
 * nor emit an event, and the `state.*` ones, which touch stores only through
 * their state views and emit no event: their views write as the node instead
 * (`StateObserver.actor`), and only on stores that may keep a change feed.
 */
const ACTOR_FREE_BUILTINS: ReadonlySet<string> = new Set([
  "transform",
  "fail",
  "delay",
  ...[...builtinNodes.keys()].filter((type) => type.startsWith("state.")),
]);

/**
 * Built-in node types whose `run` never changes its options nor hands them
 * (or anything in them) to code that could: their options are read, passed
 * to a store (which copies them as JSON text), or returned as the output
 * (which the executor copies as JSON text). Their checked constant options
 * are passed as they are, without a fresh copy per attempt.
 */
const UNCHANGED_OPTIONS_BUILTINS: ReadonlySet<string> = new Set([
  "transform",
  "log",
  "delay",
  "fail",
  "state.get",
  "state.set",
  "state.delete",
  "state.increment",
]);

/** What the executor works out once per node of a prepared flow, kept across its runs. */
interface NodeFacts {
  /** Its type is the built-in of its name (not a module's type of the same name). */
  readonly builtin: boolean;
  /** It is one of {@linkcode ACTOR_FREE_BUILTINS}. */
  readonly actorFree: boolean;
  /** It is one of {@linkcode UNCHANGED_OPTIONS_BUILTINS}. */
  readonly uncopied: boolean;
  /** Its checked options, once checked, for a built-in whose `with` is constant (see `#input`). */
  checked: { value: unknown } | undefined;
}

/** What the executor works out once per prepared flow, kept across its runs. */
interface FlowFacts {
  /** Each node's facts, by position. */
  readonly nodes: NodeFacts[];
  /**
   * Whether a template of the flow may read the nodes' outcomes (`nodes.…`):
   * some node has an `if`, or a `with` or `forEach` that is not constant, or the flow has
   * `outputs`. When none does, a run does not keep them in its template
   * scope (an object a node and a key in a dictionary of every node, read by
   * nothing).
   */
  readonly templates: boolean;
  /** Whether some node has a `when:` other than `on_success`. */
  readonly whens: boolean;
  /** What the nodes' `when:` asks, when {@linkcode whens} (worked out by the flow's first run). */
  when: WhenPlan | undefined;
  /** Whether some node has `mask:`. */
  readonly masks: boolean;
  /** Whether some node has `forEach:`. */
  readonly items: boolean;
}

/** The {@linkcode FlowFacts} of each prepared flow. */
const factsByFlow = new WeakMap<PreparedFlow, FlowFacts>();

/** The facts of `flow` and its nodes, worked out on its first run (not once per node and run). */
function flowFacts(flow: PreparedFlow): FlowFacts {
  let facts = factsByFlow.get(flow);
  if (facts === undefined) {
    facts = {
      nodes: flow.nodes.map((node) => {
        const builtin = builtinNodes.get(node.spec.type) === node.type;
        return {
          builtin,
          actorFree: builtin && ACTOR_FREE_BUILTINS.has(node.spec.type),
          uncopied: builtin && UNCHANGED_OPTIONS_BUILTINS.has(node.spec.type),
          checked: undefined,
        };
      }),
      templates: flow.outputs !== undefined ||
        flow.nodes.some((node) =>
          node.if !== undefined || !node.with.isStatic ||
          (node.forEach !== undefined && !node.forEach.items.isStatic)
        ),
      whens: flow.nodes.some((node) => (node.spec.when ?? "on_success") !== "on_success"),
      when: undefined,
      masks: flow.nodes.some((node) => node.spec.mask !== undefined),
      items: flow.nodes.some((node) => node.forEach !== undefined),
    };
    factsByFlow.set(flow, facts);
  }
  return facts;
}

/** The value of a schema's check, or an {@linkcode OptionsError} (a `TypeError`) listing its issues. */
function optionsOf(node: PreparedNode, result: SchemaResult<unknown>): unknown {
  if (result.issues) throw new OptionsError(node.spec.type, optionsIssues(result.issues));
  return result.value;
}

/** Where node `i`'s `forEach:` list is written: the value, or its `items:`. */
function forEachPath(node: PreparedNode, i: number): (string | number)[] {
  const written = node.spec.forEach;
  return typeof written === "object" && written !== null && !Array.isArray(written)
    ? ["nodes", i, "forEach", "items"]
    : ["nodes", i, "forEach"];
}

/** The reason an attempt's signal aborts with when it ends without being stopped. */
const ATTEMPT_FINISHED = "attempt finished";

/** What an attempt needs from its run's execution. */
interface AttemptHost {
  readonly options: ExecuteOptions;
  readonly timers: Timers;
  readonly flowId: string;
  /** Send an event (with its time) to the run's listener. */
  emit(event: RunEventInit): void;
  /** The reads and writes of node `i`, made on first use. */
  accessOf(i: number): NodeAccess;
  /** What is known of each node of the flow, by position. */
  readonly facts: readonly NodeFacts[];
}

/**
 * One attempt of one node while it runs: its fence (it is one: the fence's
 * calls are its own, and an attempt costs one object, not two), its signal
 * (made when asked for), and how it ends (the first of its work settling and
 * its being stopped: one promise, where a race would take several). A
 * class, so that an attempt costs one object and not a dozen closures.
 */
class Attempt extends AttemptFence {
  readonly host: AttemptHost;
  readonly index: number;
  readonly node: PreparedNode;
  readonly number: number;
  /** The item it runs for, in a node with `forEach:`. */
  item: number | undefined = undefined;
  #controller: AbortController | undefined;
  /** Aborted only when the attempt is stopped (see {@linkcode Attempt.stopSignal}), made on first use. */
  #stopper: AbortController | undefined;
  /** Why the attempt was stopped (the run's abort reason, its timeout, or its end). */
  stopped: { reason: unknown } | undefined;
  decided = false;
  threw = false;
  result: unknown;
  /** Whether its work settled (returned or threw). */
  settled = false;
  #wake: (() => void) | undefined;
  /** Sub-runs started and not yet ended. */
  subRuns: Set<string> | undefined;
  /** Every sub-run it started, in the order of its calls (see `NodeOutcome.subRuns`). */
  subRunIds: string[] | undefined;
  /** How many sub-flows it has asked for (see {@linkcode ExecuteOptions.runFlow}'s `place`). */
  subFlowCalls = 0;
  /** The promise its node's `run` returned, if it returned one. */
  work: PromiseLike<unknown> | undefined;
  /** Its timeout's timer, while it runs (only a node with a timeout has one). */
  timer: AbortController | undefined;
  /** Its position among the run's attempts running now (`Execution.#live`), or -1. */
  live = -1;
  /** Its `ctx.log` lines kept, their bytes, and lines dropped (see {@linkcode NODE_LOG_LIMITS}). */
  logLines = 0;
  logBytes = 0;
  logDropped = 0;

  constructor(host: AttemptHost, index: number, node: PreparedNode, number: number) {
    // Its views, sub-flows and logs: refused once the attempt is over.
    super(host.options.runId, node.spec.id, number);
    this.host = host;
    this.index = index;
    this.node = node;
    this.number = number;
  }

  /**
   * The error a call made now fails with: the attempt's own end, or the run's guard refusing
   * (the attempt is then closed with its reason). Without a guard, the fence's answer alone.
   */
  override refusal(): AttemptOverError | undefined {
    const own = super.refusal();
    return own !== undefined ? own : this.commitRefusal();
  }

  /**
   * The run's guard refusing (the attempt is then closed with its reason): asked again just
   * before a write that began commits. A call that began before the attempt ended on its own
   * (it returned, timed out) still lands, as before; one whose run may no longer act does not.
   */
  commitRefusal(): AttemptOverError | undefined {
    const guard = this.host.options.guard;
    if (guard === undefined) return undefined;
    const reason = guard.refusal();
    if (reason === undefined) return undefined;
    this.close(reason);
    return this.overError(reason);
  }

  /** Resolves once the attempt is decided. */
  decision(): Promise<void> {
    if (this.decided) return Promise.resolve();
    return new Promise<void>((resolve) => this.#wake = resolve);
  }

  /** Its work settled (returned or threw): that decides how it ended, unless it was stopped first. */
  settle(failed: boolean, value: unknown): void {
    this.settled = true;
    this.decide(failed, value);
  }

  /** The first call decides how the attempt ended. */
  decide(failed: boolean, value: unknown): void {
    if (this.decided) return;
    this.decided = true;
    this.threw = failed;
    this.result = value;
    this.#wake?.();
  }

  /** The attempt's signal (`ctx.signal`), made on first use: most nodes never look at it. */
  signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.stopped !== undefined) this.#controller.abort(this.stopped.reason);
    }
    return this.#controller.signal;
  }

  /**
   * Aborted when the attempt is stopped (it timed out, or its run was
   * cancelled or timed out), not when it returns: its state calls still in
   * flight then give up on a store that can end a call that waits (a
   * PostgreSQL statement waiting for another session's lock is cancelled),
   * where a call begun before a plain end runs to its end as always.
   */
  stopSignal(): AbortSignal {
    if (this.#stopper === undefined) {
      this.#stopper = new AbortController();
      // Stopped already: born aborted. (Ended without a stop: no call can begin any more.)
      if (this.stopped !== undefined && this.stopped.reason !== ATTEMPT_FINISHED) {
        this.#stopper.abort(this.stopped.reason);
      }
    }
    return this.#stopper.signal;
  }

  /** Stop it: closed the moment it times out or the run is cancelled, not a tick later. */
  stop(reason: unknown): void {
    if (this.stopped !== undefined) return;
    this.stopped = { reason };
    this.close(
      reason instanceof AttemptTimeout ||
        (forEachCode !== undefined && reason instanceof forEachCode.ItemFailed)
        ? reason.message
        : reason === "timed-out"
        ? "the flow timed out"
        : "the run was cancelled",
    );
    this.decide(true, reason);
    this.#controller?.abort(reason);
    this.#stopper?.abort(reason);
  }

  /** It is over: a signal asked for from now on is born aborted. */
  end(): void {
    this.stopped ??= { reason: ATTEMPT_FINISHED };
    if (this.#controller !== undefined && !this.#controller.signal.aborted) {
      this.#controller.abort(ATTEMPT_FINISHED);
    }
  }

  /** A state view of the attempt: fenced, and recording what it reads and writes for `node.end`. */
  view(scope: "node" | "flow" | "global"): StateView {
    const view = createStateView(
      this.host.options.resolver,
      scope,
      this.host.flowId,
      scope === "node" ? this.node.spec.id : undefined,
      this.host.accessOf(this.index),
      this,
    );
    // A node's code may take a method out of its view (`const { get } = ctx.flow`): it gets
    // functions of their own. A built-in node does not, and uses the view's methods as they are.
    return this.host.facts[this.index].builtin ? view : boundView(view);
  }
}

/**
 * What a node attempt's `run` receives. A class, not an object literal: a
 * literal with getters is built on V8's slow path (~2 µs each, once per
 * node). The state views, the signal and the `log`, `sleep` and `runFlow`
 * functions are made on first use (each function once per attempt, so a
 * node may take it out of the context: `const { log } = ctx`).
 */
class AttemptContext implements NodeContext<unknown> {
  readonly #a: Attempt;
  #node: StateView | undefined;
  #flow: StateView | undefined;
  #global: StateView | undefined;
  #log: NodeContext<unknown>["log"] | undefined;
  #sleep: NodeContext<unknown>["sleep"] | undefined;
  #mask: NodeContext<unknown>["mask"] | undefined;
  #runFlow: NodeContext<unknown>["runFlow"] | undefined;
  input: unknown;
  inputs: Readonly<Record<string, JsonValue>>;
  runId: string;
  flowId: string;
  nodeId: string;
  attempt: number;
  clock: Clock;

  constructor(a: Attempt, input: unknown) {
    const o = a.host.options;
    this.#a = a;
    this.input = input;
    this.inputs = o.inputs;
    this.runId = o.runId;
    this.flowId = a.host.flowId;
    this.nodeId = a.node.spec.id;
    this.attempt = a.number;
    this.clock = o.clock;
  }

  /** This node's own state. */
  get node(): StateView {
    return this.#node ??= this.#a.view("node");
  }

  /** The flow's state. */
  get flow(): StateView {
    return this.#flow ??= this.#a.view("flow");
  }

  /** State shared by every flow. */
  get global(): StateView {
    return this.#global ??= this.#a.view("global");
  }

  /** Aborted when the attempt is stopped or over. */
  get signal(): AbortSignal {
    return this.#a.signal();
  }

  /** Write a log line into the run's events. */
  get log(): NodeContext<unknown>["log"] {
    const a = this.#a;
    return this.#log ??= (message: string, level?: LogLevel) => {
      a.check();
      const checked = logLevel(level);
      const text = logLine(message);
      const limits = NODE_LOG_LIMITS;
      const size = text.length * 3 <= limits.lineBytes ? text.length : utf8Length(text);
      if (a.logLines >= limits.lines || a.logBytes + size > limits.totalBytes) {
        a.logDropped++;
        return;
      }
      a.logLines++;
      a.logBytes += size;
      a.host.emit(withItem<Omit<NodeLogEvent, "at">>(
        { type: "node.log", node: a.node.spec.id, message: text, level: checked },
        a.item,
      ));
    };
  }

  /** Make a value a secret of the run: masked from now on in everything it records. */
  get mask(): NodeContext<unknown>["mask"] {
    const a = this.#a;
    return this.#mask ??= (value: string) => {
      a.check();
      const problem = maskProblem(value);
      if (problem !== undefined) throw problem;
      if (value !== "") a.host.options.masker?.add([value]);
    };
  }

  /** Wait, resolving early with an AbortError if the signal aborts. */
  get sleep(): NodeContext<unknown>["sleep"] {
    const a = this.#a;
    return this.#sleep ??= (ms: number) => {
      const problem = sleepProblem(ms);
      return problem === undefined ? a.host.timers.sleep(ms, a.signal()) : Promise.reject(problem);
    };
  }

  /** Run another flow as a sub-flow of this run. */
  get runFlow(): NodeContext<unknown>["runFlow"] {
    const a = this.#a;
    return this.#runFlow ??= (sub, subInput) =>
      a.guard(() => {
        let subRun: string | undefined;
        const calls = ++a.subFlowCalls;
        const onStart = (runId: string) => {
          (a.subRuns ??= new Set()).add(subRun = runId);
          // By call: a run resuming this one finds the sub-run of each call (a later call's
          // sub-run may start first).
          (a.subRunIds ??= [])[calls - 1] = runId;
          // Recorded now too, not only at the node's end: a run whose process dies while the
          // sub-run runs keeps it (see `NodeSubRunEvent`).
          a.host.emit(withItem<Omit<NodeSubRunEvent, "at">>(
            { type: "node.subrun", node: a.node.spec.id, run: runId, call: calls },
            a.item,
          ));
        };
        const run = (a.host.options.runFlow ?? noRunFlow)(sub, subInput, {
          signal: a.signal(),
          onStart,
          node: a.node,
          place: calls === 1 ? place(a) : `${place(a)}#${calls}`,
          call: calls,
        });
        const done = () => subRun !== undefined && a.subRuns!.delete(subRun);
        run.then(done, done);
        return run;
      });
  }
}

/**
 * The context of an attempt of a run that can enqueue runs or take signals
 * (`ExecuteOptions.enqueue`, `takeSignal`): its `enqueue` and `takeSignal` are
 * made on first use, as `log` is (most nodes never enqueue; a closure made per
 * attempt cost each node two objects).
 */
class QueueAttemptContext extends AttemptContext {
  readonly #attempt: Attempt;
  #enqueue: NodeContext<unknown>["enqueue"];
  #takeSignal: NodeContext<unknown>["takeSignal"];
  /** How many signals of each name the attempt took (see `#take`). */
  #taken: Map<string, number> | undefined;
  /** The attempt's last take, settled: the next begins after it. */
  #lastTake: Promise<unknown> | undefined;

  constructor(a: Attempt, input: unknown) {
    super(a, input);
    this.#attempt = a;
  }

  /** Enqueue a run of another flow. */
  get enqueue(): NodeContext<unknown>["enqueue"] {
    const a = this.#attempt;
    const enqueue = a.host.options.enqueue;
    if (enqueue === undefined) return undefined;
    return this.#enqueue ??= (flow, options) => a.guard(() => enqueue(flow, options));
  }

  /** Take a signal sent to the run. */
  get takeSignal(): NodeContext<unknown>["takeSignal"] {
    const a = this.#attempt;
    const take = a.host.options.takeSignal;
    if (take === undefined) return undefined;
    return this.#takeSignal ??= (name) => a.guard(() => this.#take(take, name));
  }

  /**
   * The attempt's takes, one at a time: its (n+1)th signal `name` is taken as
   * node place `+n` (the first as the place itself), so each take of a node that
   * takes several gets its own signal, and the node's next attempt the same ones
   * in the same order (see `Records.takeSignal`).
   */
  #take(
    take: NonNullable<ExecuteOptions["takeSignal"]>,
    name: string,
  ): Promise<{ data: JsonValue } | null> {
    const taking = (this.#lastTake ?? Promise.resolve()).then(async () => {
      const taken = (this.#taken ??= new Map()).get(name) ?? 0;
      const at = place(this.#attempt);
      const signal = await take(name, taken === 0 ? at : `${at}+${taken}`);
      if (signal !== null) this.#taken.set(name, taken + 1);
      return signal;
    });
    this.#lastTake = taking.catch(() => {});
    return taking;
  }
}

/** Attempt `a`'s node's place in its run: its id, and `[item]` in a `forEach` node. */
function place(a: Attempt): string {
  const id = a.node.spec.id;
  return a.item === undefined ? id : `${id}[${a.item}]`;
}

/** `event` with the item it is about, in a node with `forEach:` (the event itself, changed). */
function withItem<E extends { item?: number }>(event: E, item: number | undefined): E {
  if (item !== undefined) event.item = item;
  return event;
}

/** Whether `value` is a promise or another thenable (what `await` would wait for). */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value instanceof Promise ||
    (typeof value === "object" || typeof value === "function") && value !== null &&
      typeof (value as { then?: unknown }).then === "function";
}

/**
 * Attempt `a` of a mocked node, given its checked options `input`: the
 * mock's value (a function's, called with what the node would have run
 * with; it may throw or return a promise).
 */
function callMock(
  mock: NodeMock,
  a: Attempt,
  input: unknown,
  each: ItemRun | undefined,
): unknown {
  if (typeof mock !== "function") return mock;
  const o = a.host.options;
  const call: NodeMockCall = {
    node: a.node.spec.id,
    with: input,
    attempt: a.number,
    signal: a.signal(),
    runId: o.runId,
    flowId: a.host.flowId,
  };
  if (each !== undefined) {
    call.item = each.scope.item as JsonValue;
    call.index = each.index;
  }
  return mock(call);
}

const noRunFlow: NonNullable<ExecuteOptions["runFlow"]> = () =>
  Promise.reject(new Error("sub-flows are not available here"));

/** Run a prepared flow and return its record (the caller stores it). */
export function executeFlow(flow: PreparedFlow, options: ExecuteOptions): Promise<RunRecord> {
  return new Execution(flow, options).run();
}

class Execution implements AttemptHost {
  #flow: PreparedFlow;
  #o: ExecuteOptions;
  readonly options: ExecuteOptions;
  readonly timers: Timers;
  readonly flowId: string;
  readonly facts: NodeFacts[];
  readonly #flowFacts: FlowFacts;
  #controller = new AbortController();
  #results: (NodeResult | undefined)[];
  #scope: TemplateScope;
  /** Whether a template may read `#scope.nodes` (see {@linkcode FlowFacts.templates}). */
  readonly #templates: boolean;
  #failure: { node?: string; message: string } | null = null;
  #stopping = false;
  /** The run's `when:` bookkeeping, when a node of the flow has one (see `_when.ts`). */
  #when: WhenRun | undefined;
  /**
   * Set once the run timed out with `when:` nodes still to decide: they may run until this
   * timer (of the abort grace) ends. `#controller` is then the grace's own.
   */
  #grace: AbortController | undefined;
  /** The run's timeout (ms), if it has one. */
  #timeout: number | undefined;
  /** What did not stop within the grace period, by node. */
  #stuck: string[] = [];
  /** How to stop each attempt running now (when the run is cancelled or times out). */
  // An array, each attempt knowing its position (`Attempt.live`), not a `Set`: a set that
  // grows to one attempt and shrinks to none again reallocates its table each time (~230 bytes
  // a node of a chain).
  #live: Attempt[] = [];
  /** Each node's mock, by position, when the run has mocks (see `ExecuteOptions.mocks`). */
  #mocks: ({ mock: NodeMock } | undefined)[] | undefined;

  constructor(flow: PreparedFlow, options: ExecuteOptions) {
    this.#flow = flow;
    this.#o = this.options = options;
    this.timers = options.timers ?? realTimers;
    this.flowId = flow.definition.id;
    const facts = this.#flowFacts = flowFacts(flow);
    this.facts = facts.nodes;
    this.#templates = facts.templates;
    this.#results = new Array(flow.nodes.length);
    const mocks = options.mocks;
    if (mocks !== undefined && mocks.size > 0) {
      this.#mocks = flow.nodes.map((n) =>
        mocks.has(n.spec.id) ? { mock: mocks.get(n.spec.id) as NodeMock } : undefined
      );
    }
    this.#scope = {
      inputs: options.inputs,
      nodes: {},
      env: options.env ?? {},
      ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
      ...(options.masker === undefined ? {} : { masker: options.masker }),
      run: {
        id: options.runId,
        flowId: flow.definition.id,
        scheduledAt: options.scheduled?.at ?? null,
        schedule: options.scheduled?.schedule ?? null,
      },
    };
  }

  emit(event: RunEventInit): void {
    const on = this.#o.onEvent;
    if (on !== undefined) on({ at: this.#o.clock.now(), ...event } as RunEvent);
  }

  async run(): Promise<RunRecord> {
    const flow = this.#flow;
    const facts = this.#flowFacts;
    if (maskPaths === undefined && facts.masks) maskPaths = await import("./_mask_paths.ts");
    if (forEachCode === undefined && facts.items) forEachCode = await import("./_for_each.ts");
    if (facts.whens) {
      const { WhenRun, whenPlan } = whenCode ??= await import("./_when.ts");
      this.#when = new WhenRun(facts.when ??= whenPlan(flow.nodes)!, flow.nodes);
      this.#scope.run!.failed = [];
    }
    const startedAt = this.#o.clock.now();
    const signal = this.#controller.signal;
    signal.addEventListener("abort", () => {
      for (const attempt of [...this.#live]) {
        // On a timeout, a node handling a failure already goes on, within the grace (#graceful).
        if (signal.reason === "timed-out" && this.#when?.handles(attempt.index)) continue;
        attempt.stop(signal.reason);
      }
    }, { once: true });
    const onOuterAbort = () => this.#controller.abort("cancelled");
    if (this.#o.signal?.aborted) onOuterAbort();
    this.#o.signal?.addEventListener("abort", onOuterAbort, { once: true });
    const flowTimer = new AbortController();
    const timeout = this.#timeout = flow.timeout ?? this.#o.defaultTimeout;
    if (timeout !== undefined) {
      this.timers.sleep(timeout, flowTimer.signal).then(
        () => this.#controller.abort("timed-out"),
        () => {},
      );
    }
    this.emit({ type: "run.start" });
    try {
      await this.#schedule(signal);
    } finally {
      flowTimer.abort("run finished");
      this.#grace?.abort("run finished");
      this.#o.signal?.removeEventListener("abort", onOuterAbort);
      for (const node of flow.nodes) releaseSandbox(node.type, this.#o.runId);
    }
    let status: RunStatus = "succeeded";
    if (signal.aborted) {
      status = signal.reason === "timed-out" ? "timed-out" : "cancelled";
      this.#failure ??= {
        message: [
          status === "timed-out"
            ? `the flow timed out after ${timeout} ms${
              flow.timeout === undefined ? " (runs.timeout in the config)" : ""
            }`
            : "the run was cancelled",
          ...this.#stuck,
        ].join("; "),
      };
    } else if (this.#failure) {
      status = "failed";
    }
    let outputs: Record<string, JsonValue> | null = null;
    if (status === "succeeded" && flow.outputs) {
      try {
        const value = flow.outputs.evaluate(this.#scope, this.#o.clock);
        serializeValue(value, "Cannot record outputs");
        outputs = value as Record<string, JsonValue>;
      } catch (err) {
        status = "failed";
        this.#failure = { message: placedError(flow, ["outputs"], err) };
      }
    } else if (status === "succeeded") {
      outputs = {};
    }
    const endedAt = this.#o.clock.now();
    const nodes: RunRecord["nodes"] = {};
    flow.nodes.forEach((n, i) => {
      const r = this.#results[i] ??
        {
          status: status === "cancelled" || status === "timed-out" ? "cancelled" : "skipped",
          attempts: 0,
        };
      const when = n.spec.when;
      nodes[n.spec.id] = when === "on_failure" || when === "always" ? { ...r, when } : r;
    });
    this.emit({ type: "run.end" });
    const record: RunRecord = {
      id: this.#o.runId,
      flowId: flow.definition.id,
      flowVersion: this.#o.flowVersion,
      status,
      inputs: this.#o.inputs,
      outputs,
      startedAt,
      endedAt,
      durationMs: endedAt - startedAt,
      nodes,
      error: status === "succeeded" ? null : this.#failure,
    };
    if (this.#o.parentRunId) record.parentRunId = this.#o.parentRunId;
    return record;
  }

  #schedule(signal: AbortSignal): Promise<void> {
    const nodes = this.#flow.nodes;
    const when = this.#when;
    const waiting = when === undefined ? nodes.map((n) => n.needs.length) : [...when.plan.waiting];
    const queue: number[] = [];
    let head = 0;
    waiting.forEach((w, i) => {
      if (w === 0) queue.push(i);
    });
    const limit = Math.max(1, this.#o.concurrency ?? this.#flow.definition.concurrency ?? 16);
    let running = 0;
    return new Promise<void>((resolve) => {
      const onAbort = () => {
        if (when !== undefined && signal.reason === "timed-out") {
          // The nodes of `when: on_failure`/`always` still to come may run within the grace.
          this.#graceful(() => {
            if (running === 0) resolve();
          });
          pump();
          if (running === 0 && head >= queue.length) resolve();
          return;
        }
        this.#stopping = true;
        if (running === 0) resolve();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      /** Node `i` ended or will not start: the nodes that wait for it may be ready. */
      const release = (i: number) => {
        for (const d of nodes[i].dependents) if (--waiting[d] === 0) queue.push(d);
        if (when !== undefined && when.plan.main[i] === 1) {
          for (const w of when.plan.watchers) if (--waiting[w] === 0) queue.push(w);
        }
      };
      const pump = () => {
        while (!this.#stopping && running < limit && head < queue.length) {
          const i = queue[head++];
          if (when !== undefined && !this.#whenStarts(i, when)) {
            release(i);
            continue;
          }
          running++;
          // After a timeout, the grace's signal (see #graceful); before, the run's.
          const stop = this.#grace === undefined ? signal : this.#controller.signal;
          this.#runNode(i, stop).then(ended);
        }
      };
      /** Node `i` ended (its result is in `#results`): one function for every node, not one each. */
      const ended = (i: number) => {
        running--;
        const result = this.#results[i]!;
        const id = nodes[i].spec.id;
        if (this.#templates) {
          const entry: TemplateScope["nodes"][string] = {
            output: result.output,
            status: result.status,
          };
          if (result.error !== undefined) entry.error = result.error;
          this.#scope.nodes[id] = entry;
        }
        if (this.#grace !== undefined && result.status === "cancelled" && when !== undefined) {
          this.#stoppedByTimeout(i, id, when);
        } else if (result.status === "failed" || result.status === "timed-out") {
          if (!nodes[i].spec.continueOnError && !this.#stopping) {
            const message = result.error ?? result.status;
            if (when === undefined) {
              this.#failure = { node: id, message };
              this.#stopping = true;
            } else this.#failedRun(i, id, message, when);
          }
        }
        release(i);
        pump();
        if (running === 0 && (this.#stopping || head >= queue.length)) {
          signal.removeEventListener("abort", onAbort);
          resolve();
        }
      };
      pump();
      if (running === 0) resolve();
    });
  }

  /**
   * Node `i`, every node it waits for ended: whether it starts (by its
   * `when:`). One that does not is recorded `skipped`: with its `node.end`
   * when its `when:` is not met, without (as before `when:`) when the run
   * failed.
   */
  #whenStarts(i: number, when: WhenRun): boolean {
    const decision = when.decide(
      i,
      this.#failure !== null || this.#grace !== undefined,
      (n) => this.#results[n]?.status,
    );
    if (decision === "start") return true;
    const id = this.#flow.nodes[i].spec.id;
    // Not started because the run timed out: it did not run, as one stopped midway.
    if (decision === "drop" && this.#grace !== undefined) when.failed(i);
    if (this.#templates) this.#scope.nodes[id] = { status: "skipped" };
    if (decision === "skip") this.#end(i, this.#o.clock.now(), { status: "skipped", attempts: 0 });
    return false;
  }

  /**
   * Node `i` failed a run whose flow has `when:` nodes: the run fails (its
   * error is the first failure) and goes on with the nodes that run on failure.
   */
  #failedRun(i: number, id: string, message: string, when: WhenRun): void {
    // After a timeout, the run's error is the timeout's.
    if (this.#grace === undefined) this.#failure ??= { node: id, message };
    when.failed(i);
    const run = this.#scope.run!;
    run.failed = [...run.failed ?? [], { node: id, error: message }];
  }

  /**
   * Node `i` was stopped by the run's timeout (its status `cancelled`): for
   * the `when:` nodes still to come, it failed the run.
   */
  #stoppedByTimeout(i: number, id: string, when: WhenRun): void {
    when.failed(i);
    const run = this.#scope.run!;
    run.failed = [...run.failed ?? [], {
      node: id,
      error: `stopped: the flow timed out after ${this.#timeout} ms`,
    }];
  }

  /**
   * The run timed out: the nodes running are being stopped, and the nodes of
   * `when: on_failure` and `always` (and the nodes after an `on_failure` one)
   * not started yet may run, for at most the abort grace; then they are
   * stopped as well (`stopped` is called once they are told to). The grace's
   * controller becomes the run's: a cancel or a guard's refusal ends it.
   */
  #graceful(stopped: () => void): void {
    const grace = this.#controller = new AbortController();
    const timer = this.#grace = new AbortController();
    const ms = this.options.abortGrace ?? DEFAULT_ABORT_GRACE;
    this.timers.sleep(ms, timer.signal).then(() => grace.abort("timed-out"), () => {});
    grace.signal.addEventListener("abort", () => {
      timer.abort("grace over");
      this.#stopping = true;
      for (const attempt of [...this.#live]) attempt.stop(grace.signal.reason);
      stopped();
    }, { once: true });
  }

  #breathe = periodicYield(50);

  /** The reads and writes of the nodes that used a state view, by node index (made on first use). */
  // By position in an array, not a Map: four hash operations less per node.
  #access: (NodeAccess | undefined)[] = [];

  accessOf(i: number): NodeAccess {
    let access = this.#access[i];
    if (access === undefined) {
      access = new NodeAccess(
        this.#o.runId,
        this.flowId,
        this.#flow.nodes[i].spec.id,
        this.#o.resolver.stateChanges,
        this.facts[i].actorFree,
      );
      this.#access[i] = access;
    }
    return access;
  }

  /** Emit node `i`'s `node.end` event and keep its result (in `#results`); returns `i`. */
  #end(i: number, started: number, result: NodeResult, bytes?: number): number {
    const mocked = this.#mocks?.[i] !== undefined && result.attempts > 0;
    if (mocked) result.mocked = true;
    this.#results[i] = result;
    const on = this.#o.onEvent;
    const access = this.#access[i];
    if (access !== undefined) this.#access[i] = undefined;
    if (on === undefined) {
      access?.close(); // closes its lists all the same
      return i;
    }
    let outputBytes: number | undefined;
    if (result.output !== undefined) outputBytes = bytes ?? JSON.stringify(result.output).length;
    const at = this.#o.clock.now();
    const event: RunEvent = {
      at,
      type: "node.end",
      node: this.#flow.nodes[i].spec.id,
      status: result.status,
      attempt: result.attempts,
      durationMs: at - started,
      outputBytes,
      error: result.error,
    };
    if (access !== undefined) access.addFields(event);
    if (result.items !== undefined) event.items = result.items;
    if (mocked) event.mocked = true;
    if (result.reused !== undefined) event.reused = result.reused;
    on(event, result.output);
    return i;
  }

  /**
   * Run node `i`; resolves `i` once it ended, its result in `#results`. With
   * `each`, run its attempts (with their retries) for one item of its
   * `forEach:` list (its `if` and list are the caller's, `#runItems`):
   * resolves the item's index once it ended, its result in `each.results`.
   * `runSignal` stops it: the run's, or the node's items'.
   */
  async #runNode(i: number, runSignal: AbortSignal, each?: ItemRun): Promise<number> {
    // Store calls on embedded backends resolve without giving the event loop a
    // turn; yield now and then so timers and Ctrl-C are seen during long runs.
    // The system clock's reading of the node's start is the yield's time too (one clock
    // reading less per node); another clock's time is not real time, the yield reads its own.
    const clock = this.#o.clock;
    let started = clock.now();
    const breath = this.#breathe(clock === systemClock ? started : undefined);
    if (breath !== undefined) {
      await breath;
      if (runSignal.aborted) {
        if (each !== undefined) {
          return this.#ended(i, started, each, { status: "cancelled", attempts: 0 });
        }
        this.#results[i] = { status: "cancelled", attempts: 0 };
        return i;
      }
      started = clock.now();
    }
    const node = this.#flow.nodes[i];
    const id = node.spec.id;
    // One reading of the clock for the node's start and its first attempt too, when
    // nothing runs in between (no `if` to evaluate).
    let now = started;
    const on = this.#o.onEvent;
    if (each === undefined) {
      const reused = this.#o.reused?.get(id);
      if (reused !== undefined) {
        const result: NodeResult = {
          status: "succeeded",
          attempts: reused.attempts,
          output: reused.output,
        };
        if (reused.items !== undefined) result.items = reused.items;
        result.reused = reused.from;
        if (reused.subRuns !== undefined) result.subRuns = reused.subRuns;
        return this.#end(i, started, result);
      }
      if (node.if) {
        let go: boolean;
        try {
          go = truthy(node.if.evaluate(this.#scope, this.#o.clock));
        } catch (err) {
          return this.#end(i, started, {
            status: "failed",
            attempts: 0,
            error: placedError(this.#flow, ["nodes", i, "if"], err),
          });
        }
        if (!go) return this.#end(i, started, { status: "skipped", attempts: 0 });
        now = this.#o.clock.now();
      }
      if (node.forEach !== undefined) return this.#runItems(i, node, started, runSignal);
      if (on !== undefined) {
        on(
          this.#mocks?.[i] === undefined
            ? { at: now, type: "node.start", node: id }
            : { at: now, type: "node.start", node: id, mocked: true },
        );
      }
    }
    const item = each?.index;
    const { attempts, delay, backoff, maxDelay } = node.retry;
    let lastError = "";
    let timedOut = false;
    let subRuns: (string | null)[] | undefined;
    const guard = this.#o.guard;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      // A run its guard refuses (its claim lapsed while the process was paused) starts no
      // node: the run is stopped as if cancelled (its end is not this process's to record).
      const refused = guard?.refusal();
      if (refused !== undefined) this.#controller.abort(refused);
      if (runSignal.aborted) {
        return this.#ended(i, started, each, { status: "cancelled", attempts: attempt - 1 });
      }
      if (on !== undefined) {
        on(withItem<NodeAttemptEvent>({
          at: attempt === 1 ? now : this.#o.clock.now(),
          type: "node.attempt",
          node: id,
          attempt,
        }, item));
      }
      let input: unknown;
      try {
        input = this.#input(i, node, each === undefined ? this.#scope : each.scope);
        if (input instanceof Promise) input = await input;
      } catch (err) {
        // Bad options never get better on retry.
        return this.#ended(i, started, each, {
          status: "failed",
          attempts: attempt,
          error: err instanceof TemplateError
            ? placedError(this.#flow, ["nodes", i, "with"], err)
            : err instanceof OptionsError
            ? placedOptionsError(this.#flow, i, err)
            : (err as Error).message,
        });
      }
      const begun = this.#attempt(i, node, input, attempt, runSignal, each);
      let outcome: AttemptOutcome;
      if (begun instanceof Attempt) {
        await begun.decision();
        const decided = this.#decided(begun);
        outcome = decided instanceof Promise ? await decided : decided;
        // A node's (not an item's): its outcome names the sub-runs of its last attempt.
        // A call whose sub-run did not start (refused) is null in its place.
        if (each === undefined && begun.subRunIds !== undefined) {
          subRuns = Array.from(begun.subRunIds, (id) => id ?? null);
        }
      } else {
        // Awaited even when it is no promise: the nodes started with this one begin before its
        // end, as they always did (the order of a run's events does not change).
        outcome = await begun;
      }
      if (outcome.ok) {
        return this.#ended(
          i,
          started,
          each,
          withSubRuns({ status: "succeeded", attempts: attempt, output: outcome.output }, subRuns),
          outcome.bytes,
        );
      }
      if (outcome.stuck !== undefined) {
        this.#stuck.push(
          `node ${id}${item === undefined ? "" : ` item ${item}`}: ${outcome.stuck}`,
        );
      }
      if (runSignal.aborted) {
        const error = outcome.stuck ? `${outcome.error}; ${outcome.stuck}` : outcome.error;
        return this.#ended(
          i,
          started,
          each,
          withSubRuns({ status: "cancelled", attempts: attempt, error }, subRuns),
        );
      }
      lastError = outcome.error;
      timedOut = outcome.timedOut;
      if (outcome.stuck !== undefined) {
        // It may still run: another attempt now would run alongside it.
        const error = `${lastError}; ${outcome.stuck}${
          attempt < attempts ? "; no retry was started while it may still run" : ""
        }`;
        return this.#ended(
          i,
          started,
          each,
          withSubRuns(
            { status: timedOut ? "timed-out" : "failed", attempts: attempt, error },
            subRuns,
          ),
        );
      }
      this.emit(withItem<Omit<NodeAttemptEvent, "at">>(
        { type: "node.attempt", node: id, attempt, error: lastError },
        item,
      ));
      if (attempt < attempts) {
        const wait = backoff === "exponential"
          ? Math.min(maxDelay, delay * 2 ** (attempt - 1))
          : Math.min(maxDelay, delay);
        try {
          await this.timers.sleep(wait, runSignal);
        } catch {
          return this.#ended(
            i,
            started,
            each,
            withSubRuns({ status: "cancelled", attempts: attempt, error: lastError }, subRuns),
          );
        }
      }
    }
    return this.#ended(
      i,
      started,
      each,
      withSubRuns(
        { status: timedOut ? "timed-out" : "failed", attempts, error: lastError },
        subRuns,
      ),
    );
  }

  /** Node `i` (or its item `each`) ended with `result`: `#end` for a node, else kept in `each`. */
  #ended(
    i: number,
    started: number,
    each: ItemRun | undefined,
    result: NodeResult,
    bytes?: number,
  ): number {
    if (each === undefined) return this.#end(i, started, result, bytes);
    each.results[each.index] = result;
    return each.index;
  }

  /**
   * Run node `i`, which has `forEach:`, once per element of its list (at
   * most `forEach.concurrency` at once, within the flow's `concurrency`): the
   * first item that fails stops the others (those running are stopped, the
   * rest do not start), unless the node has `continueOnError` (then every
   * item runs, and a failed one's output is `null`). Resolves `i` once it
   * ended, its result in `#results`.
   */
  async #runItems(
    i: number,
    node: PreparedNode,
    started: number,
    runSignal: AbortSignal,
  ): Promise<number> {
    const id = node.spec.id;
    let list: unknown;
    try {
      list = node.forEach!.items.evaluate(this.#scope, this.#o.clock);
    } catch (err) {
      return this.#end(i, started, {
        status: "failed",
        attempts: 0,
        error: placedError(this.#flow, forEachPath(node, i), err),
      });
    }
    if (!Array.isArray(list)) {
      return this.#end(i, started, {
        status: "failed",
        attempts: 0,
        error: placedMessage(
          this.#flow,
          forEachPath(node, i),
          `expected a list, got ${describeValue(list)}`,
        ),
      });
    }
    const count = list.length;
    if (count > MAX_FOR_EACH_ITEMS) {
      return this.#end(i, started, {
        status: "failed",
        attempts: 0,
        error: placedMessage(
          this.#flow,
          forEachPath(node, i),
          `the list holds ${count.toLocaleString("en-US")} items; a node runs for at most ${
            MAX_FOR_EACH_ITEMS.toLocaleString("en-US")
          } (split the list, or hand it to a sub-flow per part)`,
        ),
      });
    }
    this.emit(
      this.#mocks?.[i] === undefined
        ? { type: "node.start", node: id, items: count }
        : { type: "node.start", node: id, items: count, mocked: true },
    );
    const results: NodeResult[] = new Array(count);
    const keepGoing = node.spec.continueOnError === true;
    // Stops the items: the run's end, or (without continueOnError) an item's failure.
    const stop = new AbortController();
    const onRunAbort = () => stop.abort(runSignal.reason);
    if (runSignal.aborted) onRunAbort();
    else runSignal.addEventListener("abort", onRunAbort, { once: true });
    const flowLimit = this.#o.concurrency ?? this.#flow.definition.concurrency ?? 16;
    const limit = Math.max(1, Math.min(node.forEach!.concurrency, flowLimit));
    const { ItemFailed, ItemsProgress, itemsResult } = forEachCode!; // loaded by `run`
    const progress = new ItemsProgress(
      { timers: this.timers, clock: this.#o.clock, emit: (e) => this.emit(e) },
      id,
      count,
    );
    await new Promise<void>((resolve) => {
      let next = 0;
      let running = 0;
      const pump = () => {
        while (!stop.signal.aborted && running < limit && next < count) {
          const k = next++;
          running++;
          progress.running++;
          const scope: TemplateScope = { ...this.#scope, item: list[k], index: k };
          this.#runNode(i, stop.signal, { index: k, scope, results }).then(done);
        }
        if (running === 0) resolve();
      };
      const done = (k: number) => {
        running--;
        const result = results[k];
        const failed = result.status === "failed" || result.status === "timed-out";
        if (failed && !keepGoing && !stop.signal.aborted) {
          const reason = new ItemFailed(k);
          stop.abort(reason);
          for (const a of [...this.#live]) if (a.index === i) a.stop(reason);
        }
        pump();
        // After pump: `running` counts the items that started in its place.
        if (stop.signal.aborted) progress.stop(); // the node ends now: its end says it all
        else progress.ended(k, result.status);
      };
      pump();
    });
    progress.stop();
    runSignal.removeEventListener("abort", onRunAbort);
    const ended = itemsResult(node.spec, results, runSignal.aborted, assertOutputSize);
    return this.#end(i, started, ended.result, ended.bytes);
  }

  /**
   * The node's options, checked: the value checked before (a fresh copy of
   * it, unless the type is one of {@linkcode UNCHANGED_OPTIONS_BUILTINS})
   * for a built-in node whose `with` holds no template (the same value and
   * schema give the same result: the built-in schemas' defaults are
   * constants; a custom type's schema may not be pure), else `with`
   * evaluated and checked now. A promise only when
   * the schema's check is asynchronous.
   */
  #input(i: number, node: PreparedNode, scope: TemplateScope): unknown {
    const facts = this.facts[i];
    const known = facts.checked;
    if (known !== undefined) return facts.uncopied ? known.value : copyContainers(known.value);
    const raw = node.with.evaluate(scope, this.#o.clock);
    const result = node.type.optionsSchema["~standard"].validate(raw);
    if (result instanceof Promise) return result.then((r) => optionsOf(node, r));
    const value = optionsOf(node, result);
    if (node.with.isStatic && facts.builtin) {
      facts.checked = { value: copyContainers(value) };
    }
    return value;
  }

  /**
   * Run one attempt: its outcome, at once (not a promise) when the node
   * returned or threw without a promise and nothing it began is in flight;
   * else the attempt itself, still running: its outcome is
   * `#decided(a)` once `a.decision()` resolves (the caller awaits that
   * promise itself, where one more promise for the outcome would cost a
   * promise and a turn of the microtask queue per node).
   */
  #attempt(
    i: number,
    node: PreparedNode,
    input: unknown,
    attempt: number,
    runSignal: AbortSignal,
    each: ItemRun | undefined,
  ): AttemptOutcome | Promise<AttemptOutcome> | Attempt {
    const id = node.spec.id;
    const a = new Attempt(this, i, node, attempt);
    a.item = each?.index;
    const ctx = this.options.enqueue === undefined && this.options.takeSignal === undefined
      ? new AttemptContext(a, input)
      : new QueueAttemptContext(a, input);
    // The run's abort reaches the attempts running then through one listener of the run.
    a.live = this.#live.push(a) - 1;
    if (runSignal.aborted) a.stop(runSignal.reason);
    // Every store write the node makes is recorded in change feeds as this run's node
    // (built-ins that touch no store and emit no event run without that context, and
    // the state built-ins' views write as the node: see accessOf).
    // A node that returns (or throws) without a promise is decided at once: no promise, no
    // callbacks and no wait for it (a `transform` is). `a.work` is its promise, if it made one.
    try {
      const mock = this.#mocks?.[i];
      const value = mock !== undefined
        ? callMock(mock.mock, a, input, each)
        : this.facts[i].actorFree
        ? node.type.run(ctx, input)
        : withNodeActor(this.options.runId, this.flowId, id, () => node.type.run(ctx, input));
      if (isThenable(value)) a.work = value;
      else a.settle(false, value);
    } catch (err) {
      a.settle(true, err);
    }
    const work = a.work;
    if (work !== undefined) {
      // Promise.resolve: a thenable that is not a promise is followed as `await` would.
      Promise.resolve(work).then((value) => a.settle(false, value), (err) => a.settle(true, err));
    }
    // Only a node with a timeout has a timer (started after the work: the work wins a tie).
    if (node.timeout !== undefined && !a.decided) {
      const ms = node.timeout;
      const timer = a.timer = new AbortController();
      this.timers.sleep(ms, timer.signal).then(() => a.stop(new AttemptTimeout(ms)), () => {});
    }
    return a.decided ? this.#decided(a) : a;
  }

  /** Attempt `a` is no longer running: the last of `#live` takes its place. */
  #notLive(a: Attempt): void {
    const at = a.live;
    if (at < 0) return;
    a.live = -1;
    const last = this.#live.pop()!;
    if (last !== a) {
      this.#live[at] = last;
      last.live = at;
    }
  }

  /** The outcome of attempt `a`, once decided; a promise only when something it began may still run. */
  #decided(a: Attempt): AttemptOutcome | Promise<AttemptOutcome> {
    const id = a.node.spec.id;
    if (a.logDropped > 0) {
      const { lines, totalBytes } = NODE_LOG_LIMITS;
      this.emit(withItem<Omit<NodeLogEvent, "at">>({
        type: "node.log",
        node: id,
        level: "warn",
        message: `${a.logDropped.toLocaleString("en-US")} log ${
          a.logDropped === 1 ? "line" : "lines"
        } of attempt ${a.number} dropped: an attempt logs at most ${
          lines.toLocaleString("en-US")
        } lines and ${totalBytes / 1024 / 1024} MiB`,
      }, a.item));
      a.logDropped = 0;
    }
    let outcome: AttemptOutcome;
    const result = a.result;
    if (a.threw) {
      outcome = {
        ok: false,
        // Options a sandboxed node's Worker refused: placed as the in-process check places them.
        error: errorMessage(
          result instanceof OptionsError
            ? placedOptionsError(this.#flow, a.index, result)
            : messageOf(result),
        ),
        timedOut: result instanceof AttemptTimeout,
      };
    } else {
      try {
        // A copy, so later nodes cannot change this node's recorded output.
        let output: unknown = null;
        let bytes = 4; // "null"
        if (typeof result === "number" && Number.isFinite(result)) {
          // A finite number (a counter's value) is its own copy, and its JSON text is its
          // `String` (the same digits, without the serializer's checks).
          output = result;
          bytes = String(result).length;
        } else if (result !== undefined && result !== null) {
          const text = serializeValue(result, `node ${id} returned a value that is not JSON`);
          assertOutputSize(text, id);
          output = typeof result === "object" ? parseJson(text) : result;
          bytes = text.length;
        }
        outcome = { ok: true, output: output as JsonValue, bytes };
        if (a.node.spec.mask !== undefined) outcome = this.#maskOutput(a, outcome);
      } catch (err) {
        outcome = { ok: false, error: errorMessage(messageOf(err)), timedOut: false };
      }
    }
    a.timer?.abort("attempt finished");
    this.#notLive(a);
    // The attempt is over: nothing it does from now on reaches state or the run.
    a.close(a.settled ? (outcome.ok ? "it returned" : "it failed") : "it ended");
    a.end();
    if (a.settled && !a.busy) return outcome;
    return this.#untilStopped(a, a.work, outcome);
  }

  /**
   * The values the node's `mask:` finds in the output of attempt `a` are the run's secrets from
   * now on (its `node.end` event, its output as recorded, everything later). A path that is not
   * in the output logs a warning; a value too short to mask fails the attempt (its output, which
   * would be recorded in the clear, is not kept).
   */
  #maskOutput(a: Attempt, outcome: AttemptSuccess): AttemptOutcome {
    const paths = a.node.spec.mask!;
    const found = maskPaths!.maskedValues(paths, outcome.output); // loaded by `run`
    this.options.masker?.add(found.values);
    const id = a.node.spec.id;
    for (const path of found.missing) {
      this.emit(withItem<Omit<NodeLogEvent, "at">>({
        type: "node.log",
        node: id,
        level: "warn",
        message:
          `mask: ${path} is not in the node's output, so nothing was masked for it (a typo, or a response without it?)`,
      }, a.item));
    }
    if (found.short.length === 0) return outcome;
    const [first] = found.short;
    const where = first.path === "" ? "the output" : `${first.path} of the output`;
    const more = found.short.length > 1 ? ` (and ${found.short.length - 1} more)` : "";
    return {
      ok: false,
      error: placedMessage(
        this.#flow,
        first.index === undefined
          ? ["nodes", a.index, "mask"]
          : ["nodes", a.index, "mask", first.index],
        `${where} is ${first.length} character(s) long${more}, under ${SECRET_MIN_LENGTH}: too short to be masked in the records (masking it would hide those characters wherever they appear, and give it away), so the attempt fails rather than record it; mask only secrets, each of ${SECRET_MIN_LENGTH} characters or more`,
      ),
      timedOut: false,
    };
  }

  /** Wait for attempt `a` to stop (and its sub-runs to record their end), within the grace period. */
  async #untilStopped(
    a: Attempt,
    work: PromiseLike<unknown> | undefined,
    outcome: AttemptOutcome,
  ): Promise<AttemptOutcome> {
    const grace = this.options.abortGrace ?? DEFAULT_ABORT_GRACE;
    const graceTimer = new AbortController();
    const ended = await Promise.race([
      Promise.all([Promise.resolve(work).then(() => {}, () => {}), a.drained()]).then(() => true),
      this.timers.sleep(grace, graceTimer.signal).then(() => false, () => false),
    ]);
    graceTimer.abort("attempt stopped");
    if (ended) return outcome;
    const notes = [`attempt ${a.number} did not stop within the ${grace} ms grace period`];
    const subRuns = a.subRuns;
    if (subRuns !== undefined && subRuns.size > 0) {
      const ids = [...subRuns];
      notes.push(
        `${ids.length === 1 ? "sub-run" : "sub-runs"} ${ids.join(", ")} had not recorded ${
          ids.length === 1 ? "its" : "their"
        } end after the ${grace} ms grace period and may stay running until found abandoned`,
      );
    }
    const stuck = notes.join("; ");
    this.emit(
      withItem<Omit<NodeLogEvent, "at">>({
        type: "node.log",
        node: a.node.spec.id,
        message: stuck,
        level: "warn",
      }, a.item),
    );
    if (outcome.ok) return outcome;
    return { ...outcome, stuck };
  }
}
