/**
 * The shape of a flow, as parsed from YAML (or given as an object). What a run
 * of it records is in `src/records/types.ts`.
 *
 * @module
 */
import type { JsonValue } from "../store/types.ts";

import type { Duration } from "../duration.ts";
export type { Duration };

/**
 * The type of a flow input.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { coerceInputs, type InputType } from "@flowstate/core/flow";
 *
 * const type: InputType = "number";
 * const flow = { id: "f", inputs: { by: { type } }, nodes: [] };
 * assert.deepEqual(coerceInputs(flow, { by: "5" }, { fromStrings: true }), { by: 5 });
 * ```
 */
export type InputType = "string" | "number" | "boolean" | "object" | "array" | "any";

/**
 * One declared input of a flow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { coerceInputs, type InputSpec } from "@flowstate/core/flow";
 *
 * const size: InputSpec = { type: "string", enum: ["s", "m", "l"], default: "m" };
 * const flow = { id: "shirts", inputs: { size }, nodes: [] };
 * assert.deepEqual(coerceInputs(flow, {}), { size: "m" });
 * assert.throws(() => coerceInputs(flow, { size: "xl" }));
 * ```
 */
export interface InputSpec {
  /** The expected type (default `"any"`). */
  type?: InputType;
  /** Used when the caller gives no value. An input without a default is required. */
  default?: JsonValue;
  /** Allowed values. */
  enum?: JsonValue[];
  /** For `--help`-like listings. */
  description?: string;
}

/**
 * How a failing node is retried.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { RetrySpec } from "@flowstate/core/flow";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const retry: RetrySpec = { attempts: 3, delay: 1, backoff: "exponential" };
 * const run = await rt.runFlow({
 *   id: "flaky",
 *   nodes: [{ id: "boom", type: "fail", with: { message: "down" }, retry }],
 * });
 * assert.equal(run.status, "failed");
 * assert.equal(run.nodes.boom.attempts, 3);
 * ```
 */
export interface RetrySpec {
  /** Total attempts including the first (>= 1). */
  attempts: number;
  /** Wait before the first retry (default 1s); later retries wait per `backoff`. */
  delay?: Duration;
  /** `constant` (default) or `exponential` (delay doubles each retry). */
  backoff?: "constant" | "exponential";
  /** Upper bound on one wait. */
  maxDelay?: Duration;
}

/**
 * The name of a built-in node type. A node's `type` offers these and takes any
 * other string (a module path or specifier).
 *
 * @example
 * ```ts
 * import type { BuiltinNodeType } from "@flowstate/core";
 * const type: BuiltinNodeType = "state.increment";
 * ```
 */
export type BuiltinNodeType =
  | "state.get"
  | "state.set"
  | "state.delete"
  | "state.increment"
  | "state.list"
  | "state.query"
  | "state.search"
  | "log"
  | "transform"
  | "delay"
  | "fail"
  | "flow"
  | "queue"
  | "http"
  | "exec"
  | "wait";

/**
 * When a node runs, by how the nodes before it ended (GitLab CI's words):
 *
 * - `on_success` (the default): while the run has not failed (a failure,
 *   after retries and without `continueOnError`, stops the run: the nodes not
 *   started are `skipped`).
 * - `on_failure`: only when a node it needs, directly or indirectly, failed
 *   the run; once its needs have ended. Without `needs`, it watches the whole
 *   run: it waits for every node that is not `on_failure`/`always` itself
 *   (nor after such a node without needs) and runs if one of them failed the
 *   run.
 * - `always`: once its needs have ended, whatever their outcome (without
 *   `needs`: at the end of the rest of the run).
 *
 * When the run times out, the nodes running are stopped and these nodes
 * still to come run (a node stopped or not started counts as failed), for
 * at most `runs.abortGrace`; a cancelled run starts none. Their templates may
 * read `run.failed` (`[{ node, error }]`, the failures that failed the run)
 * and `nodes.<id>.error`. The run stays `failed` when an `on_failure` node
 * succeeds. An `on_success` node after an `on_failure` node runs when that
 * node ran and succeeded (and every other node it needs ended well).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { NodeWhen } from "@flowstate/core/flow";
 *
 * const when: NodeWhen = "on_failure";
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({
 *   id: "nightly",
 *   nodes: [
 *     { id: "sync", type: "fail", with: { message: "upstream down" } },
 *     { id: "alert", type: "log", when, with: { message: "${{ run.failed[0].error }}" } },
 *   ],
 * });
 * assert.equal(run.status, "failed");
 * assert.equal(run.nodes.alert.status, "succeeded");
 * ```
 */
export type NodeWhen = "on_success" | "on_failure" | "always";

/**
 * One node of a flow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { NodeSpec } from "@flowstate/core/flow";
 * import { openRuntime } from "@flowstate/core";
 *
 * const nodes: NodeSpec[] = [
 *   { id: "count", type: "state.increment", with: { key: "runs" } },
 *   { id: "say", type: "log", needs: ["count"], with: { message: "run ${{ nodes.count.output }}" } },
 *   { id: "rare", type: "log", needs: ["count"], if: "${{ nodes.count.output > 100 }}", with: { message: "!" } },
 * ];
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({ id: "counter", nodes });
 * assert.equal(run.nodes.say.status, "succeeded");
 * assert.equal(run.nodes.rare.status, "skipped");
 * ```
 */
export interface NodeSpec {
  /** Unique within the flow: `[A-Za-z0-9_-]+`. */
  id: string;
  /** A built-in type (`state.set`, `log`…) or a module path (`./nodes/thing.ts`). */
  // deno-lint-ignore ban-types
  type: BuiltinNodeType | (string & {});
  /** Options for the node; strings may hold `${{ … }}` templates. */
  with?: Record<string, unknown>;
  /** Nodes that must finish first. */
  needs?: string[];
  /** A template; the node runs only if it is truthy (else it is `skipped`). */
  if?: string;
  /** Retry policy. */
  retry?: RetrySpec;
  /** Fail an attempt that takes longer than this. */
  timeout?: Duration;
  /**
   * With `continueOnError`, a failure of this node does not fail the run (dependents still run);
   * in a node with `forEach`, every item runs and a failed item's output is `null`.
   */
  continueOnError?: boolean;
  /**
   * When it runs (see {@linkcode NodeWhen}): `on_success` (default),
   * `on_failure` or `always`.
   */
  when?: NodeWhen;
  /**
   * Run the node once per element of a list: a template (`${{ nodes.list.output }}`), a
   * literal list, or `{ items, concurrency }`. Its templates read the element as `item` and
   * its position as `index`; its output is the list of the items' outputs, in order.
   */
  forEach?: string | JsonValue[] | ForEachSpec;
  /**
   * The parts of the node's output that are secrets the run obtained (a token an `http` node
   * got): paths into the output (`body.access_token`, `headers.set-cookie`, `items[0]`), or
   * `true` for the whole output. From the end of the attempt that returned them, their values
   * are masked as `***` in everything the run records or shows, as `secrets:` are; the nodes
   * after it get the real values. With `forEach`, each item's output.
   */
  mask?: true | string[];
  /** Free text. */
  description?: string;
  /**
   * What a custom node's Worker may do (Deno's permission names). Without it
   * a custom node gets no permission at all. Of the built-in nodes, only
   * `http` takes it (`net:` only: the hosts it may call); on another it is
   * a validation error.
   */
  permissions?: NodePermissions;
}

/**
 * The object form of a node's `forEach:`: the list, and how many items run at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { ForEachSpec } from "@flowstate/core/flow";
 *
 * const forEach: ForEachSpec = { items: ["a", "b", "c"], concurrency: 2 };
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({
 *   id: "shout",
 *   nodes: [{ id: "up", type: "transform", forEach, with: { value: "${{ upper(item) }}" } }],
 * });
 * assert.deepEqual(run.nodes.up.output, ["A", "B", "C"]);
 * assert.deepEqual(run.nodes.up.items, { count: 3, succeeded: 3, failed: 0 });
 * ```
 */
export interface ForEachSpec {
  /** The list: a template (`${{ nodes.list.output }}`) or a literal list. */
  items: string | JsonValue[];
  /**
   * Items running at once (default 1: one after the other, in order); never more than
   * the flow's `concurrency`.
   */
  concurrency?: number;
}

/**
 * A node's declared permissions: Deno's names, each `true`, `false` or a list
 * (paths relative to the flow file, hosts, variable names, commands).
 *
 * @example
 * ```ts
 * import type { NodePermissions } from "@flowstate/core/flow";
 * const p: NodePermissions = { read: ["./data"], env: ["API_TOKEN"] };
 * ```
 */
export interface NodePermissions {
  /** File reads. */
  read?: boolean | string[];
  /** File writes. */
  write?: boolean | string[];
  /** Network (`host:port`). */
  net?: boolean | string[];
  /** Environment variables. */
  env?: boolean | string[];
  /** Subprocesses. */
  run?: boolean | string[];
  /** System information. */
  sys?: boolean | string[];
  /** Native libraries. */
  ffi?: boolean | string[];
  /** Module imports from the network (hosts). */
  import?: boolean | string[];
}

/**
 * A flow's schedule with its policies.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FlowSchedule, validateFlow } from "@flowstate/core/flow";
 *
 * const schedule: FlowSchedule = { cron: "0 9 * * 1-5", timezone: "Europe/Paris", missed: "run-once" };
 * const parsed = validateFlow({ id: "standup", schedule, nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * assert.deepEqual(parsed.definition.schedule, schedule);
 * ```
 */
export interface FlowSchedule {
  /** Cron expression (5 or 6 fields) or nickname (`@daily`). */
  cron: string;
  /** IANA time zone (default: the config's `timezone`, else UTC). */
  timezone?: string;
  /** While a run of this schedule is still going: `skip` (default) or `queue`. */
  overlap?: "skip" | "queue";
  /** Ticks missed while no daemon ran: `skip` (default) or `run-once`. */
  missed?: "skip" | "run-once";
  /** A tick whose daemon died while running it: recorded as abandoned, then `skip` (default) or `rerun`. */
  abandoned?: "skip" | "rerun";
  /** Wait a random time up to this long before each tick. */
  jitter?: Duration;
  /**
   * Tells this entry of a `schedule:` list apart from the others (lowercase
   * letters, digits, `_` and `-`): its schedule id is `flow:<flow>#<id>`.
   * Without it the entry is the flow's own schedule, `flow:<flow>` (at most
   * one entry of a list goes without).
   */
  id?: string;
  /** The inputs each run of this entry gets (literal values, checked against the flow's `inputs:`). */
  inputs?: Record<string, JsonValue>;
}

/**
 * Limits on a flow's runs taken from the queue, across every worker:
 * `concurrency`, at most that many running at once; `rate` (`"10/1m"`), at
 * most that many started in any window of that length (every claim counts:
 * first attempts, retries, runs taken back from a lost worker). With `by` (a
 * template over `inputs`, like `${{ inputs.customer }}`), each applies per
 * value of it. At least one of `concurrency` and `rate`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FlowQueueLimits, validateFlow } from "@flowstate/core/flow";
 *
 * // at most one queued run per customer at a time, and 10 starts a minute per customer
 * const queue: FlowQueueLimits = { concurrency: 1, rate: "10/1m", by: "${{ inputs.customer }}" };
 * const parsed = validateFlow({
 *   id: "invoice",
 *   inputs: { customer: { type: "string" } },
 *   queue,
 *   nodes: [{ id: "a", type: "log", with: { message: "${{ inputs.customer }}" } }],
 * });
 * assert.equal(parsed.definition.queue?.concurrency, 1);
 * assert.equal(parsed.definition.queue?.rate, "10/1m");
 * ```
 */
export interface FlowQueueLimits {
  /** Runs at once (per value of `by`). */
  concurrency?: number;
  /** Starts per window (per value of `by`): `"<count>/<duration>"`, like `"10/1m"`. */
  rate?: string;
  /** A template over the run's inputs: runs with the same value share the limits. */
  by?: string;
}

/**
 * An HTTP trigger: `flowstate serve` (and `daemon --serve`) runs the flow when
 * a request comes to `path`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type HttpTrigger, validateFlow } from "@flowstate/core/flow";
 *
 * const http: HttpTrigger = {
 *   path: "/hooks/deploy",
 *   secret: { env: "DEPLOY_SECRET" },
 *   inputs: { ref: "body.ref" },
 * };
 * const parsed = validateFlow({
 *   id: "deploy",
 *   trigger: { http },
 *   inputs: { ref: { type: "string" } },
 *   nodes: [{ id: "a", type: "log", with: { message: "${{ inputs.ref }}" } }],
 * });
 * assert.equal(parsed.definition.trigger?.http?.path, "/hooks/deploy");
 * ```
 */
export interface HttpTrigger {
  /** Under `/hooks/`: `/hooks/deploy`. */
  path: string;
  /** `POST` (default) or `PUT`. */
  method?: "POST" | "PUT";
  /**
   * The environment variable holding a shared secret: requests must carry
   * `X-Flowstate-Signature: sha256=<hex HMAC-SHA256 of the body>` (or
   * GitHub's `X-Hub-Signature-256`).
   */
  secret?: { env: string };
  /**
   * Inputs from the request: `body`, `body.a.b`, `headers.x-name`,
   * `query.name`. Without it, a JSON object body is the inputs.
   */
  inputs?: Record<string, string>;
}

/**
 * A change trigger: `flowstate daemon` runs the flow once for each change of
 * a key under `prefix` in `store` (whose config keeps a change feed), with
 * at-least-once delivery from a stored position.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ChangesTrigger, validateFlow } from "@flowstate/core/flow";
 *
 * const changes: ChangesTrigger = { store: "main", prefix: ["orders"] };
 * const parsed = validateFlow({
 *   id: "on-order",
 *   trigger: { changes },
 *   nodes: [{ id: "a", type: "log", with: { message: "changed" } }],
 * });
 * assert.deepEqual(parsed.definition.trigger?.changes?.prefix, ["orders"]);
 * ```
 */
export interface ChangesTrigger {
  /** The store to watch (default: the global scope's store). */
  store?: string;
  /** Only keys under this prefix (default `[]`: every key but Flowstate's own records). */
  prefix?: string[];
}

/**
 * What starts a flow besides a schedule and a person.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FlowTrigger, validateFlow } from "@flowstate/core/flow";
 *
 * const trigger: FlowTrigger = { http: { path: "/hooks/ping" } };
 * const parsed = validateFlow({ id: "ping", trigger, nodes: [{ id: "a", type: "log", with: { message: "pong" } }] });
 * assert.equal(parsed.definition.trigger?.http?.method ?? "POST", "POST");
 * ```
 */
export interface FlowTrigger {
  /** An HTTP request to `flowstate serve`. */
  http?: HttpTrigger;
  /** A change of a key in a store (run by `flowstate daemon`). */
  changes?: ChangesTrigger;
}

/**
 * A whole flow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FlowDefinition, openRuntime } from "@flowstate/core";
 *
 * const hello: FlowDefinition = {
 *   id: "hello",
 *   inputs: { name: { type: "string", default: "world" } },
 *   nodes: [
 *     { id: "count", type: "state.increment", with: { key: "greetings" } },
 *     { id: "say", type: "log", with: { message: "hello ${{ inputs.name }}" } },
 *   ],
 *   outputs: { greetings: "${{ nodes.count.output }}" },
 * };
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow(hello, { input: { name: "Ada" } });
 * assert.equal(run.outputs?.greetings, 1);
 * ```
 */
export interface FlowDefinition {
  /** `[a-z0-9_-]+`, unique per home. */
  id: string;
  /** Free text. */
  description?: string;
  /**
   * A cron expression, or one with its policies and inputs, or a list of
   * those (each entry its own schedule; used by the daemon).
   */
  schedule?: string | FlowSchedule | (string | FlowSchedule)[];
  /**
   * What else starts it: an HTTP request (`trigger: { http: { path: /hooks/x } }`)
   * or changes in a store (`trigger: { changes: { store, prefix } }`).
   */
  trigger?: FlowTrigger;
  /** Names of environment variables templates may read as `env.NAME`. */
  env?: string[];
  /**
   * Names of environment variables holding secrets, read by templates as
   * `secrets.NAME`: each must be set, and its value is masked (`***`) in
   * everything the run records or shows (see `secrets.ts`).
   */
  secrets?: string[];
  /** Declared inputs. */
  inputs?: Record<string, InputSpec>;
  /** Maximum nodes running at once (default 16). */
  concurrency?: number;
  /** Limits on queued runs of this flow (see {@linkcode FlowQueueLimits}). */
  queue?: FlowQueueLimits;
  /** Fail the whole run after this long. */
  timeout?: Duration;
  /** The nodes (a DAG through `needs`). */
  nodes: NodeSpec[];
  /** Values computed from templates when the run succeeds. */
  outputs?: Record<string, unknown>;
}
