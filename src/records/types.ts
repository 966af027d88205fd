/**
 * The vocabulary of runs: a run's record, its events and statuses, the
 * summary the indexes hold, and how runs are asked for a page at a time.
 * Everything that makes, stores or shows a run uses these types (the
 * executor fills in a {@linkcode RunRecord}; it never stores one). This module holds types and one pure function, and imports only the
 * ground floor.
 *
 * @module
 */
import type { LogLevel } from "../log.ts";
import type { JsonValue } from "../store/types.ts";
import type { RunOwner } from "./owner.ts";

/**
 * The schedule's tick that started a run: the tick's nominal time and the
 * schedule's id (as `flowstate schedules ls` lists it). A run records them
 * as `scheduledAt` and `schedule`; its templates read them as
 * `run.scheduledAt` and `run.schedule`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type ScheduledTick } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const scheduled: ScheduledTick = { at: Date.UTC(2026, 0, 1, 2), schedule: "flow:backup#a" };
 * const run = await rt.runFlow({
 *   id: "backup",
 *   nodes: [{ id: "day", type: "transform", with: { value: "${{ formatDate(run.scheduledAt, 'yyyy-MM-dd') }}" } }],
 * }, { scheduled });
 * assert.equal(run.nodes.day.output, "2026-01-01");
 * assert.equal(run.scheduledAt, scheduled.at);
 * assert.equal(run.schedule, "flow:backup#a");
 * ```
 */
export interface ScheduledTick {
  /** The tick's nominal time (ms since the epoch): a late or catch-up run still gets its tick's. */
  at: number;
  /** The schedule's id: `flow:<flow>`, or `flow:<flow>#<entry>` for an entry with an `id:`. */
  schedule: string;
}

/**
 * Final status of a run. `queued` and `running` runs have not finished.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type RunStatus } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({ id: "f", nodes: [{ id: "x", type: "fail", with: { message: "no" } }] });
 * const status: RunStatus = run.status;
 * assert.equal(status, "failed");
 * const finished = (s: RunStatus) => s !== "queued" && s !== "running";
 * assert.ok(finished(status));
 * ```
 */
export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled" | "timed-out";

/**
 * How one attempt of a queued run ended: `lost` when its worker's lease lapsed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { QueueAttempt, QueueAttemptOutcome } from "@flowstate/core/records";
 *
 * const attempts: QueueAttempt[] = [
 *   { attempt: 1, worker: "w1", startedAt: 0, endedAt: 30_000, outcome: "lost", error: "lease lapsed" },
 *   { attempt: 2, worker: "w2", startedAt: 31_000, endedAt: 32_000, outcome: "succeeded" },
 * ];
 * const outcomes: QueueAttemptOutcome[] = attempts.map((a) => a.outcome);
 * assert.deepEqual(outcomes, ["lost", "succeeded"]);
 * ```
 */
export type QueueAttemptOutcome = "succeeded" | "failed" | "cancelled" | "timed-out" | "lost";

/**
 * One attempt of a queued run: which worker claimed it, when, and how it ended.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { QueueAttempt } from "@flowstate/core/records";
 *
 * const attempt: QueueAttempt = {
 *   attempt: 1,
 *   worker: "host:123:ab12cd34",
 *   startedAt: 1_000,
 *   endedAt: 1_250,
 *   outcome: "failed",
 *   error: "node send: timeout",
 * };
 * assert.equal(attempt.endedAt - attempt.startedAt, 250);
 * ```
 */
export interface QueueAttempt {
  /** Attempt number (1-based). */
  attempt: number;
  /** The worker that claimed it. */
  worker: string;
  /** When it was claimed (ms since the epoch). */
  startedAt: number;
  /** When it ended, or was found lost. */
  endedAt: number;
  /** How it ended. */
  outcome: QueueAttemptOutcome;
  /** Why it failed or was lost. */
  error?: string;
}

/**
 * Retry waits of a queued run: `delay × factor^(attempt-1)`, at most `max` (ms).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { QueueBackoff } from "@flowstate/core/records";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hi.flow.yaml`, "id: hi\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n");
 * {
 *   await using rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } } } });
 *   const { runId } = await rt.enqueue("./hi.flow.yaml", {
 *     maxAttempts: 4,
 *     backoff: { delay: "1s", factor: 3, max: "1m" },
 *   });
 *   const backoff: QueueBackoff | undefined = (await (await rt.records()).getRun(runId))?.queue?.backoff;
 *   assert.deepEqual(backoff, { delay: 1_000, factor: 3, max: 60_000 });
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface QueueBackoff {
  /** The first wait, in ms. */
  delay: number;
  /** What each wait is multiplied by for the next (default 2). */
  factor: number;
  /** The longest wait, in ms (default: none). */
  max?: number;
}

/**
 * The queue's part of a run that was enqueued (`RunRecord.queue`): when it may
 * start, its priority and dedupe key, its attempts, and the worker holding it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { QueueInfo } from "@flowstate/core/records";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hi.flow.yaml`, "id: hi\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n");
 * {
 *   await using rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } } } });
 *   const { runId } = await rt.enqueue("./hi.flow.yaml", { priority: 5, key: "hi-once" });
 *   const queue: QueueInfo | undefined = (await (await rt.records()).getRun(runId))?.queue;
 *   assert.equal(queue?.priority, 5);
 *   assert.equal(queue?.key, "hi-once");
 *   assert.equal(queue?.attempt, 0); // not claimed yet
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface QueueInfo {
  /** The flow file the run executes (absolute path). */
  flowPath: string;
  /** When it was enqueued (ms since the epoch). */
  enqueuedAt: number;
  /** It does not start before this time (ms since the epoch). */
  runAt: number;
  /** Higher starts first among due runs. */
  priority: number;
  /** Dedupe key: another enqueue with it, while this run is queued or running, returns this run. */
  key?: string;
  /** The current (or last) attempt's number; 0 before the first claim. */
  attempt: number;
  /** Attempts allowed in all. */
  maxAttempts: number;
  /** Waits between attempts after a failure. */
  backoff?: QueueBackoff;
  /** Every finished attempt, oldest first. */
  attempts: QueueAttempt[];
  /** The claim while the run is `running`: the worker, when, and its lease in ms. */
  claim?: { worker: string; at: number; leaseMs: number };
  /**
   * The flow's `queue:` limits for this run, per `partition` (the value of its
   * `by`, or `"*"`): at most `concurrency` running at once, and at most
   * `rate.limit` claims in any window of `rate.perMs` ms (every claim counts:
   * first attempts, retries, a run taken back from a lost worker).
   */
  limit?: {
    concurrency?: number;
    rate?: { limit: number; perMs: number };
    partition: string;
  };
  /**
   * Why a queued run is not starting: `"rate"` when a worker found its
   * partition's rate window full and put it off (not due before `runAt`)
   * until the window has room; `"slot"` when a worker found its partition at
   * its `concurrency` limit and set it aside until one of the partition's
   * runs frees a slot. Absent once claimed.
   */
  waiting?: "rate" | "slot";
}

/**
 * Final status of one node in a run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type NodeStatus, openRuntime } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({
 *   id: "f",
 *   nodes: [
 *     { id: "a", type: "log", with: { message: "hi" } },
 *     { id: "b", type: "log", if: "${{ false }}", with: { message: "never" } },
 *   ],
 * });
 * const statuses: Record<string, NodeStatus> = Object.fromEntries(
 *   Object.entries(run.nodes).map(([id, node]) => [id, node.status]),
 * );
 * assert.deepEqual(statuses, { a: "succeeded", b: "skipped" });
 * ```
 */
export type NodeStatus = "succeeded" | "failed" | "skipped" | "cancelled" | "timed-out";

/**
 * A run began.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { RunStartEvent } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({ id: "f", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * const [first] = await (await rt.records()).getEvents(run.id);
 * const start = first as RunStartEvent;
 * assert.equal(start.type, "run.start");
 * assert.ok(start.at >= run.startedAt && start.at <= run.endedAt!);
 * ```
 */
export interface RunStartEvent {
  /** Milliseconds since the epoch. */
  at: number;
  /** What happened. */
  type: "run.start";
}

/**
 * A run ended (its final status is in the record).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { RunEndEvent } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({ id: "f", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * const last = (await (await rt.records()).getEvents(run.id)).at(-1) as RunEndEvent;
 * assert.equal(last.type, "run.end");
 * ```
 */
export interface RunEndEvent {
  /** Milliseconds since the epoch. */
  at: number;
  /** What happened. */
  type: "run.end";
}

/**
 * A node began (before its first attempt, or before its `if` is checked).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { NodeStartEvent } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({ id: "f", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * const events = await (await rt.records()).getEvents(run.id);
 * const starts = events.filter((e): e is NodeStartEvent => e.type === "node.start");
 * assert.deepEqual(starts.map((e) => e.node), ["a"]);
 * ```
 */
export interface NodeStartEvent {
  /** Milliseconds since the epoch. */
  at: number;
  /** What happened. */
  type: "node.start";
  /** The node. */
  node: string;
  /** For a node with `forEach:`: how many items its list holds. */
  items?: number;
  /** Set when a test's mock stands in for the node (`RunFlowOptions.mocks`): it does not run. */
  mocked?: true;
}

/**
 * A node attempt began (no `error`) or failed (`error`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { NodeAttemptEvent } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({
 *   id: "f",
 *   nodes: [{ id: "x", type: "fail", with: { message: "down" }, retry: { attempts: 2, delay: 1 } }],
 * });
 * const events = await (await rt.records()).getEvents(run.id);
 * const failed = events.filter((e): e is NodeAttemptEvent => e.type === "node.attempt" && e.error !== undefined);
 * assert.deepEqual(failed.map((e) => e.attempt), [1, 2]);
 * ```
 */
export interface NodeAttemptEvent {
  /** Milliseconds since the epoch. */
  at: number;
  /** What happened. */
  type: "node.attempt";
  /** The node. */
  node: string;
  /** Attempt number (1-based; per item for a node with `forEach:`). */
  attempt: number;
  /** Why the attempt failed, on the event that ends a failed attempt. */
  error?: string;
  /** For a node with `forEach:`: the item's index in the list (from 0). */
  item?: number;
}

/**
 * One state key a node read or wrote (in {@linkcode NodeEndEvent.reads} and
 * {@linkcode NodeEndEvent.writes}).
 *
 * @example
 * ```ts
 * import type { StateAccess } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const access: StateAccess = { scope: "flow", key: ["users", "ada"] };
 * assert.equal(`${access.scope}:${access.key.join("/")}`, "flow:users/ada");
 * ```
 */
export interface StateAccess {
  /** The scope the key is in. */
  scope: "node" | "flow" | "global";
  /** The key within the scope (without the scope's prefix); `[]` with `prefix` for the whole scope. */
  key: string[];
  /** The store, when the call named one (`{ store }`) rather than the scope's own. */
  store?: string;
  /** Set for a listing (`keys()`, `entries()`): every key under `key` was read. */
  prefix?: true;
}

/**
 * The most distinct keys kept in {@linkcode NodeEndEvent.reads} (and in
 * `writes`): a node looping over a million keys records the first 100 and
 * `readsTruncated: true`.
 *
 * @example
 * ```ts
 * import { MAX_STATE_ACCESS } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * assert.equal(MAX_STATE_ACCESS, 100);
 * ```
 */
export const MAX_STATE_ACCESS = 100;

/**
 * A node ended.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { NodeEndEvent } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({
 *   id: "f",
 *   nodes: [{ id: "n", type: "state.increment", with: { scope: "flow", key: "count" } }],
 * });
 * const events = await (await rt.records()).getEvents(run.id);
 * const end = events.find((e): e is NodeEndEvent => e.type === "node.end");
 * assert.equal(end?.status, "succeeded");
 * assert.deepEqual(end?.writes, [{ scope: "flow", key: ["count"] }]);
 * ```
 */
export interface NodeEndEvent {
  /** Milliseconds since the epoch. */
  at: number;
  /** What happened. */
  type: "node.end";
  /** The node. */
  node: string;
  /** Its final status. */
  status: NodeStatus;
  /** Attempts made. */
  attempt: number;
  /** From `node.start` to the end, in ms. */
  durationMs: number;
  /** Size of the node's output as JSON, in bytes, when it has one. */
  outputBytes?: number;
  /** Why it failed, when it did. */
  error?: string;
  /**
   * The state keys its attempts read (every attempt together), each once, in
   * the order first read; absent when it read none. At most
   * {@linkcode MAX_STATE_ACCESS}: see `readsTruncated`. Reads through
   * `ctx.node`, `ctx.flow` and `ctx.global` count (from a sandboxed node
   * too), not those a node makes on a store it opened itself.
   */
  reads?: StateAccess[];
  /** Set when it read more distinct keys than `reads` holds. */
  readsTruncated?: true;
  /** The state keys its attempts wrote (committed sets, increments and deletes), as `reads`. */
  writes?: StateAccess[];
  /** Set when it wrote more distinct keys than `writes` holds. */
  writesTruncated?: true;
  /** For a node with `forEach:`: how its items ended. */
  items?: NodeItems;
  /**
   * Set when a test's mock stood in for the node (`RunFlowOptions.mocks`):
   * its output is the mock's, and nothing it would have done happened.
   */
  mocked?: true;
  /**
   * Set on a node a resumed run did not run (`Runtime.resumeRun`): the id of
   * the run whose recorded output it reuses. It has no `node.start`.
   */
  reused?: string;
}

/**
 * A node (or a job) logged a line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { NodeLogEvent } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({ id: "f", nodes: [{ id: "say", type: "log", with: { message: "hi" } }] });
 * const events = await (await rt.records()).getEvents(run.id);
 * const logs = events.filter((e): e is NodeLogEvent => e.type === "node.log");
 * assert.deepEqual(logs.map((e) => `${e.node} ${e.level}: ${e.message}`), ["say info: hi"]);
 * ```
 */
export interface NodeLogEvent {
  /** Milliseconds since the epoch. */
  at: number;
  /** What happened. */
  type: "node.log";
  /** The node (for a job, the job's name). */
  node: string;
  /** The line. */
  message: string;
  /** Its level. */
  level: LogLevel;
  /** For a node with `forEach:`: the index of the item whose attempt logged it. */
  item?: number;
}

/**
 * What masks the outputs kept beside a run's events when secrets are made
 * known after they were kept (`RunRecorder.secretsAdded`,
 * `Records.maskKeptOutputs`): whether a value holds a secret's value, and
 * the value with every one replaced. Flowstate's runs give their run's
 * secret masker.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KeptOutputsMasker } from "@flowstate/core/records";
 *
 * const secret = "hunter2-hunter2";
 * const masker: KeptOutputsMasker = {
 *   contains: (value) => JSON.stringify(value).includes(secret),
 *   mask: (value) => JSON.parse(JSON.stringify(value).replaceAll(secret, "***")),
 * };
 * assert.deepEqual(masker.mask({ token: secret }), { token: "***" });
 * ```
 */
export interface KeptOutputsMasker {
  /** Whether `value` holds a secret's value. */
  contains(value: unknown): boolean;
  /** `value` with every secret's value replaced (a new value: `value` is left as it is). */
  mask<T>(value: T): T;
}

/**
 * A node started a sub-run (a `flow` node, or a custom node calling
 * `ctx.runFlow`), once the sub-run is recorded: `call` is the call's number
 * within the node's attempt (1 for its first `runFlow`). The node's outcome
 * lists its last attempt's sub-runs when it ends (`NodeOutcome.subRuns`);
 * these events say so while it runs, and for a run whose process died before
 * the node ended: recorded abandoned, it keeps them, so that a resume resumes
 * those sub-runs rather than start them anew.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { NodeSubRunEvent, RunEvent } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const child = { id: "child", nodes: [{ id: "one", type: "transform", with: { value: 1 } }] };
 * const seen: RunEvent[] = [];
 * const run = await rt.runFlow({
 *   id: "parent",
 *   nodes: [{ id: "call", type: "flow", with: { flow: child } }],
 * }, { onEvent: (event) => seen.push(event) });
 * const started = seen.find((e): e is NodeSubRunEvent => e.type === "node.subrun");
 * assert.equal(started?.node, "call");
 * assert.deepEqual(run.nodes.call.subRuns, [started?.run]);
 * ```
 */
export interface NodeSubRunEvent {
  /** Milliseconds since the epoch. */
  at: number;
  /** What happened. */
  type: "node.subrun";
  /** The node. */
  node: string;
  /** The sub-run's id. */
  run: string;
  /** The call's number within the attempt (1 for the attempt's first sub-flow). */
  call: number;
  /** For a node with `forEach:`: the index of the item whose attempt started it. */
  item?: number;
}

/**
 * How a running `forEach` node's items stand: recorded at most once every
 * {@linkcode FOR_EACH_PROGRESS_MS} while the node runs (and only when an item
 * ended since the last one), never for a node that ends within that time. The
 * node's `node.end` carries the final `items`; these events only show a
 * running node's progress (`runs show --follow`, the inspector).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { NodeProgressEvent, RunEvent } from "@flowstate/core/records";
 *
 * const events: RunEvent[] = [
 *   { at: 0, type: "node.start", node: "notify", items: 1000 },
 *   { at: 1000, type: "node.progress", node: "notify", count: 1000, succeeded: 310, failed: 2, running: 4, failedItems: [4, 17] },
 * ];
 * const last = events.findLast((e): e is NodeProgressEvent => e.type === "node.progress");
 * assert.equal(`${last!.succeeded + last!.failed} of ${last!.count} done`, "312 of 1000 done");
 * ```
 */
export interface NodeProgressEvent {
  /** Milliseconds since the epoch. */
  at: number;
  /** What happened. */
  type: "node.progress";
  /** The node (one with `forEach:`). */
  node: string;
  /** How many items its list holds. */
  count: number;
  /** Items that succeeded so far. */
  succeeded: number;
  /** Items that failed or timed out so far (after their retries). */
  failed: number;
  /** Items running now. */
  running: number;
  /**
   * The indexes of the items that failed, in the order they failed: the first
   * {@linkcode MAX_FAILED_ITEMS} (absent when none failed).
   */
  failedItems?: number[];
}

/**
 * How often a running `forEach` node records a {@linkcode NodeProgressEvent}
 * at most (ms), and how long it runs before the first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FOR_EACH_PROGRESS_MS } from "@flowstate/core/records";
 *
 * // a 10,000-item node running 100 s records at most 100 progress events
 * assert.equal(100_000 / FOR_EACH_PROGRESS_MS, 100);
 * ```
 */
export const FOR_EACH_PROGRESS_MS = 1_000;

/**
 * The most failed items a {@linkcode NodeProgressEvent} names (`failedItems`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_FAILED_ITEMS } from "@flowstate/core/records";
 *
 * assert.equal(MAX_FAILED_ITEMS, 20);
 * ```
 */
export const MAX_FAILED_ITEMS = 20;

/**
 * One event of a run, told apart by `type`.
 *
 * @example
 * ```ts
 * import type { RunEvent } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const events: RunEvent[] = [
 *   { at: 0, type: "run.start" },
 *   { at: 1, type: "node.log", node: "hello", message: "hi", level: "info" },
 * ];
 * const lines = events.flatMap((e) => e.type === "node.log" ? [e.message.toUpperCase()] : []);
 * assert.deepEqual(lines, ["HI"]);
 * ```
 */
export type RunEvent =
  | RunStartEvent
  | RunEndEvent
  | NodeStartEvent
  | NodeAttemptEvent
  | NodeEndEvent
  | NodeLogEvent
  | NodeProgressEvent
  | NodeSubRunEvent;

/**
 * A {@linkcode RunEvent} without its time (the time is added when it is emitted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RunEvent, RunEventInit } from "@flowstate/core/records";
 *
 * const init: RunEventInit = { type: "node.log", node: "say", message: "hi", level: "info" };
 * const event = { ...init, at: 1_000 } as RunEvent; // the time is added when it is emitted
 * assert.equal(event.type, "node.log");
 * ```
 */
export type RunEventInit = {
  [K in RunEvent["type"]]: Omit<Extract<RunEvent, { type: K }>, "at">;
}[RunEvent["type"]];

/**
 * How one node of a run ended.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { NodeOutcome } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({ id: "f", nodes: [{ id: "t", type: "transform", with: { value: 42 } }] });
 * const outcome: NodeOutcome = run.nodes.t;
 * assert.deepEqual(outcome, { status: "succeeded", attempts: 1, output: 42 });
 * ```
 */
export interface NodeOutcome {
  /** Final status. */
  status: NodeStatus;
  /** Attempts made. */
  attempts: number;
  /**
   * Its output, when it succeeded with one (and for a node with `forEach:` and
   * `continueOnError` whose items ran but some failed: their outputs, `null` for those).
   */
  output?: JsonValue;
  /** Why it failed. */
  error?: string;
  /**
   * Its `when:`, when it is `on_failure` or `always`: it ran (or was
   * skipped) because of it.
   */
  when?: "on_failure" | "always";
  /** For a node with `forEach:`: how its items ended (absent in records of other nodes). */
  items?: NodeItems;
  /**
   * Set when a test's mock stood in for the node (`RunFlowOptions.mocks`):
   * its output is the mock's, and nothing it would have done happened.
   */
  mocked?: true;
  /**
   * Set on a node a resumed run did not run (`Runtime.resumeRun`): the id of
   * the run whose recorded output stands for its own.
   */
  reused?: string;
  /**
   * Set when its recorded `output` differs from what the node returned: a
   * secret's value in it was masked (`***`). A resumed run runs such a node again.
   */
  masked?: true;
  /**
   * For a node that ran sub-flows (a `flow` node, or a custom node calling
   * `ctx.runFlow`), not one with `forEach:`: the sub-runs its last attempt
   * started, one a call in the order of its calls (`null` for a call whose
   * sub-run did not start). A run resuming this one resumes the sub-run of a
   * node that failed, rather than starting it anew (see `Runtime.resumeRun`).
   */
  subRuns?: (string | null)[];
}

/**
 * How the items of a node with `forEach:` ended (in {@linkcode NodeOutcome.items}
 * and {@linkcode NodeEndEvent.items}). Items neither succeeded nor failed were
 * not run, or were stopped (another item failed, or the run was cancelled).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { NodeItems } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({
 *   id: "f",
 *   nodes: [{
 *     id: "check",
 *     type: "fail",
 *     forEach: [1, 2, 3],
 *     if: "${{ true }}",
 *     with: { message: "no ${{ item }}" },
 *   }],
 * });
 * const items: NodeItems | undefined = run.nodes.check.items;
 * assert.deepEqual(items, { count: 3, succeeded: 0, failed: 1, failedIndex: 0 });
 * assert.equal(run.nodes.check.error, "item 0: no 1");
 * ```
 */
export interface NodeItems {
  /** How many elements the list held. */
  count: number;
  /** Items that succeeded. */
  succeeded: number;
  /** Items that failed or timed out (after their retries). */
  failed: number;
  /** The index of the first item that failed (from 0), when one did. */
  failedIndex?: number;
}

/**
 * The record of one run, as stored and as returned by `runFlow`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type RunRecord } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run: RunRecord = await rt.runFlow({
 *   id: "hello",
 *   nodes: [{ id: "t", type: "transform", with: { value: "hi" } }],
 *   outputs: { said: "${{ nodes.t.output }}" },
 * });
 * assert.equal(run.status, "succeeded");
 * assert.deepEqual(run.outputs, { said: "hi" });
 * assert.equal(run.durationMs, run.endedAt! - run.startedAt);
 * assert.deepEqual(await (await rt.records()).getRun(run.id), run); // as stored
 * ```
 */
export interface RunRecord {
  /** Time-sortable unique id (see `run_id.ts`). */
  id: string;
  /** The flow's id (`job:<name>` for a job). */
  flowId: string;
  /** Content hash of the flow version that ran (`"job"` for a job). */
  flowVersion: string;
  /** Current or final status. */
  status: RunStatus;
  /** Inputs after defaults and type checks. */
  inputs: Record<string, JsonValue>;
  /** Outputs, when the run succeeded. */
  outputs: Record<string, JsonValue> | null;
  /** Start time, ms since the epoch (the time its id encodes). */
  startedAt: number;
  /** End time, or `null` while running. */
  endedAt: number | null;
  /** `endedAt - startedAt`, or `null` while running. */
  durationMs: number | null;
  /** Per-node final status and output. */
  nodes: Record<string, NodeOutcome>;
  /** The error that failed the run: node id and message. */
  error: { node?: string; message: string } | null;
  /** Parent run id, for sub-flows. */
  parentRunId?: string;
  /**
   * For a run a schedule started: the tick's nominal time (ms since the
   * epoch; templates read it as `run.scheduledAt`), late or catch-up ticks
   * included. Absent for other runs.
   */
  scheduledAt?: number;
  /**
   * For a run a schedule started: the schedule's id, as `schedules ls` lists
   * it (`flow:backup`, `flow:backup#nightly`, `job:gc`). Absent for other runs.
   */
  schedule?: string;
  /**
   * For a run of the config's `runs.onFailure` flow: the id of the run it
   * reports on (whose failure started it). Its own failure fires nothing.
   */
  onFailureOf?: string;
  /**
   * For a run started by `Runtime.resumeRun` (`flowstate runs resume`): the
   * id of the run it resumes, whose recorded outputs its reused nodes carry.
   */
  resumeOf?: string;
  /**
   * Present when a secret's value in the run's inputs was masked (`***`):
   * `inputs` is not what the run ran with, so the run cannot be resumed
   * (`ResumeRefusedError` reason `"masked"`). A queued run's inputs are kept
   * as enqueued (its next attempt runs with them), never masked.
   */
  inputsMasked?: true;
  /**
   * Present on a run made with a test's mocks (`RunFlowOptions.mocks`), of
   * its own nodes or of its sub-flows' (`"node/child"`): its outputs are not
   * real, so it cannot be resumed (`ResumeRefusedError` reason `"mocked"`).
   * Each mocked node's outcome says `mocked: true` in the run it is in.
   */
  mocked?: true;
  /**
   * When the process running it last said it is alive (ms since the epoch):
   * written at the start and every few seconds while the run is `running`
   * (see `HEARTBEAT_MS` in `recorder.ts`). Absent in records written by
   * versions before heartbeats, and in records of runs made without a
   * `RunRecorder`.
   */
  heartbeatAt?: number;
  /**
   * The process that recorded the run's start (`RunRecorder.start`): its
   * pid and, where `/proc` could be read, what makes it unique on its
   * machine (host, boot id, pid namespace, start time; see
   * {@linkcode RunOwner}). A reader on the same machine tells from it at
   * once whether that process is dead (the run is abandoned, whatever its
   * heartbeat's age) or alive (never abandoned for a late heartbeat).
   * Absent in records of older versions and of runs claimed from the queue
   * (their worker's lease decides).
   */
  owner?: RunOwner;
  /** For a run that was enqueued: its time, priority, key and attempts (see {@linkcode QueueInfo}). */
  queue?: QueueInfo;
}

/**
 * What the run indexes hold: a run without its inputs, outputs and nodes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { RunSummary } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const run = await rt.runFlow({ id: "f", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * const page = await (await rt.records()).listRunSummaries({ flowId: "f" });
 * const summary: RunSummary = page.runs[0];
 * assert.equal(summary.id, run.id);
 * assert.equal(summary.status, "succeeded");
 * ```
 */
export interface RunSummary {
  /** Run id. */
  id: string;
  /** The flow's id. */
  flowId: string;
  /** The flow version's hash. */
  flowVersion: string;
  /** Current or final status. */
  status: RunStatus;
  /**
   * Its id's time (ms since the epoch): when it started, or, for a run that
   * went through the queue, when it was enqueued (its start is `claimedAt`;
   * {@linkcode runStartTime} gives either).
   */
  startedAt: number;
  /** End time, or `null` while running. */
  endedAt: number | null;
  /** Duration (a queued run's: its last attempt's), or `null` while running. */
  durationMs: number | null;
  /** The error that failed the run, or `null`. */
  error: { node?: string; message: string } | null;
  /**
   * Parent run: for a sub-flow (a `flow` node's run, which its parent waits
   * for), or for a run a `queue` node enqueued (it has `enqueuedAt` too, and
   * nothing waits for it).
   */
  parentRunId?: string;
  /** The run it resumes, for a run started by `Runtime.resumeRun`. */
  resumeOf?: string;
  /**
   * Present on a run that went through the queue (`RunRecord.queue`): when
   * it was enqueued (ms since the epoch). Absent in summaries that earlier
   * versions wrote: they read as before (see {@linkcode runStartTime}).
   */
  enqueuedAt?: number;
  /**
   * For a run that went through the queue: when its current or last attempt
   * was claimed (ms since the epoch), that is when it really started; absent
   * until its first claim (and for a run cancelled before one).
   */
  claimedAt?: number;
}

/**
 * Which runs `Records.listRuns()` and `Records.listRunSummaries()` return. Filters combine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 * import type { ListRunsOptions } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * await rt.runFlow({ id: "ok", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * const bad = await rt.runFlow({ id: "bad", nodes: [{ id: "x", type: "fail", with: { message: "no" } }] });
 * const failures: ListRunsOptions = { status: "failed", limit: 10 };
 * const page = await (await rt.records()).listRuns(failures);
 * assert.deepEqual(page.runs.map((r) => r.id), [bad.id]);
 * ```
 */
export interface ListRunsOptions {
  /** Only runs of this flow. */
  flowId?: string;
  /** Only runs with this status. */
  status?: RunStatus;
  /** Only runs started at or after this time (ms since the epoch). */
  since?: number;
  /** Only runs started before this time (ms since the epoch, exclusive). */
  until?: number;
  /** At most this many runs per page (1 to 1000, default 100). */
  limit?: number;
  /** The `cursor` of the previous page, to continue after it. */
  cursor?: string;
}

/**
 * A page of runs, newest first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type RunRecord } from "@flowstate/core";
 * import type { RunPage } from "@flowstate/core/records";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * for (let i = 0; i < 3; i++) {
 *   await rt.runFlow({ id: "f", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * }
 * const records = await rt.records();
 * const seen: string[] = [];
 * let cursor: string | undefined;
 * do {
 *   const page: RunPage<RunRecord> = await records.listRuns({ flowId: "f", limit: 2, cursor });
 *   seen.push(...page.runs.map((r) => r.id));
 *   cursor = page.cursor;
 * } while (cursor !== undefined);
 * assert.equal(seen.length, 3);
 * ```
 */
export interface RunPage<T> {
  /** The runs of this page. */
  runs: T[];
  /**
   * Pass as `cursor` for the next page; absent on the last page. A page with
   * a cursor may hold fewer runs than asked for (see `listRunSummaries`).
   */
  cursor?: string;
  /**
   * Ids of entries on this page that do not have a run's shape (written by
   * something else, or damaged): left out of `runs`, named here.
   */
  malformed?: string[];
}

/**
 * The summary of a run that the indexes and archives hold.
 *
 * @example
 * ```ts
 * import { summarizeRun } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const summary = summarizeRun({
 *   id: "0mjuw3ms0abcdefghijk", flowId: "hello", flowVersion: "abc", status: "succeeded",
 *   inputs: { n: 1 }, outputs: {}, startedAt: 1, endedAt: 3, durationMs: 2, nodes: {}, error: null,
 * });
 * assert.deepEqual(Object.keys(summary).includes("inputs"), false);
 * assert.equal(summary.durationMs, 2);
 * ```
 */
export function summarizeRun(run: RunRecord): RunSummary {
  const summary: RunSummary = {
    id: run.id,
    flowId: run.flowId,
    flowVersion: run.flowVersion,
    status: run.status,
    startedAt: run.startedAt,
    endedAt: run.endedAt ?? null,
    durationMs: run.durationMs ?? null,
    error: run.error ?? null,
  };
  if (run.parentRunId !== undefined) summary.parentRunId = run.parentRunId;
  if (run.resumeOf !== undefined) summary.resumeOf = run.resumeOf;
  const q = run.queue;
  if (q !== undefined) {
    summary.enqueuedAt = q.enqueuedAt;
    const claimedAt = q.claim?.at ?? q.attempts.at(-1)?.startedAt;
    if (claimedAt !== undefined) summary.claimedAt = claimedAt;
  }
  return summary;
}

/**
 * When a run really started (ms since the epoch), or `undefined` when it has
 * not: a run that went through the queue started when its current or last
 * attempt was claimed (the attempt its status and `durationMs` are of),
 * never when it was enqueued (its `startedAt`, its id's time); any other run
 * at its `startedAt`. Takes a {@linkcode RunRecord} or a
 * {@linkcode RunSummary}; a summary written before summaries had
 * `enqueuedAt` gives its `startedAt`, as listings showed it then.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, Records, runStartTime } from "@flowstate/core/records";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * const { runId } = await records.enqueueRun({
 *   flowId: "mail", flowVersion: "v1", inputs: {}, flowPath: "/app/mail.flow.yaml",
 * });
 * const [queued] = (await records.listRunSummaries()).runs;
 * assert.equal(runStartTime(queued), undefined); // not claimed yet
 * const claimed = await records.claimRun({ worker: "w1", leaseMs: 30_000 });
 * const [running] = (await records.listRunSummaries()).runs;
 * assert.equal(running.id, runId);
 * assert.equal(runStartTime(running), claimed?.queue?.claim?.at);
 * ```
 */
export function runStartTime(run: RunSummary | RunRecord): number | undefined {
  const q = (run as RunRecord).queue;
  if (q !== undefined) return q.claim?.at ?? q.attempts.at(-1)?.startedAt;
  const summary = run as RunSummary;
  return summary.enqueuedAt === undefined ? run.startedAt : summary.claimedAt;
}

/**
 * Whether a run was enqueued by another run (a `queue` node's, or
 * `Runtime.enqueue` with `parentRunId`): it has a parent but, unlike a
 * sub-flow's run, nothing waits for it. Listings label it `(enqueued)`
 * where a sub-flow's run says `(sub-flow)`. A summary written before
 * summaries had `enqueuedAt` reads as a sub-flow's, as listings showed it then.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { enqueuedByRun, type RunSummary } from "@flowstate/core/records";
 *
 * const base: RunSummary = {
 *   id: "0mjuw3ms0abcdefghijk", flowId: "work", flowVersion: "abc", status: "succeeded",
 *   startedAt: 1, endedAt: 3, durationMs: 2, error: null, parentRunId: "0mjuw3ms0abcdefghijj",
 * };
 * assert.equal(enqueuedByRun(base), false); // a sub-flow's run
 * assert.equal(enqueuedByRun({ ...base, enqueuedAt: 1, claimedAt: 1 }), true);
 * ```
 */
export function enqueuedByRun(run: RunSummary | RunRecord): boolean {
  return run.parentRunId !== undefined &&
    ((run as RunRecord).queue !== undefined || (run as RunSummary).enqueuedAt !== undefined);
}

const STATUSES: readonly string[] = [
  "queued",
  "running",
  "succeeded",
  "failed",
  "cancelled",
  "timed-out",
];

/**
 * What keeps `value` from having the shape of a run (a {@linkcode RunSummary}
 * or a {@linkcode RunRecord}: id, flow, version, status, times, error), or
 * `undefined` when it has it. Listings skip and name the runs that do not.
 *
 * @example
 * ```ts
 * import { runShapeProblem } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * assert.equal(runShapeProblem({ bogus: true }), "id is not a string");
 * ```
 */
export function runShapeProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not an object";
  const v = value as Record<string, unknown>;
  if (typeof v.id !== "string") return "id is not a string";
  if (typeof v.flowId !== "string") return "flowId is not a string";
  if (typeof v.flowVersion !== "string") return "flowVersion is not a string";
  if (!STATUSES.includes(v.status as string)) return "status is not a run status";
  if (typeof v.startedAt !== "number") return "startedAt is not a number";
  for (const name of ["endedAt", "durationMs"]) {
    const t = v[name];
    if (t !== undefined && t !== null && typeof t !== "number") return `${name} is not a number`;
  }
  const error = v.error;
  if (
    error !== undefined && error !== null &&
    (typeof error !== "object" || typeof (error as { message?: unknown }).message !== "string")
  ) return "error has no message";
  // A stored record keeps its node outcomes compact in "@nodes" (`nodes: null` in their place).
  const compact = v.nodes === null && typeof v["@nodes"] === "object" && v["@nodes"] !== null;
  if (v.nodes !== undefined && !compact && (typeof v.nodes !== "object" || v.nodes === null)) {
    return "nodes is not an object";
  }
  return undefined;
}

/**
 * The mark that a run is resumed (`Runtime.resumeRun`): written once, if
 * absent, by the one resume that goes on (a second resume of the run is
 * refused and names `runId`).
 *
 * @example
 * ```ts
 * import type { ResumeMarker } from "@flowstate/core/records";
 * const marker: ResumeMarker = { at: Date.now(), runId: "0mjuw3ms0abcdefghijk" };
 * ```
 */
export interface ResumeMarker {
  /** When the resume claimed the run (ms since the epoch). */
  at: number;
  /** The run resuming it, once started. */
  runId?: string;
  /**
   * Until its run starts, when the claim lapses (ms since the epoch): the
   * resume renews it while it starts its run, so a claim past it is one whose
   * resume was stopped. Absent in marks written before 0.8.
   */
  until?: number;
  /** The process that claimed it, said in a refusal: its host's name. */
  host?: string;
  /** The process that claimed it: its pid. */
  pid?: number;
}

/**
 * The mark that the config's `runs.onFailure` flow was started about a run:
 * written once, if absent, by the one process that starts it.
 *
 * @example
 * ```ts
 * import type { OnFailureMarker } from "@flowstate/core/records";
 * const marker: OnFailureMarker = { at: Date.now(), host: "web-1", pid: 42, flow: "alert" };
 * ```
 */
export interface OnFailureMarker {
  /** When the process claimed it (ms since the epoch). */
  at: number;
  /** The host of the process that runs the flow. */
  host: string;
  /** That process's id. */
  pid: number;
  /** The `runs.onFailure` flow, as the config names it. */
  flow: string;
  /** The run of that flow, once started. */
  runId?: string;
}
