/**
 * The runtime-wide event stream: every run started through one runtime (by
 * `runFlow`, `runJob`, the scheduler), its node events, its end, job
 * progress and committed state writes, to any number of consumers, each with
 * its own bounded buffer.
 *
 * @module
 */
import type { RunEvent, RunRecord, RunStatus } from "./records/types.ts";
import type { Key } from "./store/types.ts";
import { messageOf } from "./errors.ts";

/**
 * What every {@linkcode RuntimeEvent} carries.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type RuntimeEventBase } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const events = rt.events();
 * await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * const seen: RuntimeEventBase[] = [];
 * for await (const event of events) {
 *   seen.push(event);
 *   if (event.type === "run.ended") break;
 * }
 * assert.deepEqual(seen.map((e) => e.seq), seen.map((_, i) => i + 1)); // from 1, no gaps
 * ```
 */
export interface RuntimeEventBase {
  /**
   * Position in this runtime's stream, from 1, with no gaps: a consumer sees
   * events in this order, and a gap only where it is told `dropped`.
   */
  readonly seq: number;
  /** When it happened (ms since the epoch, by the runtime's clock). */
  readonly at: number;
}

/**
 * A run was recorded as `running` (a flow, a sub-flow or a job).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type RunStartedEvent } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const events = rt.events();
 * const run = await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * let started: RunStartedEvent | undefined;
 * for await (const event of events) {
 *   if (event.type === "run.started") started = event;
 *   if (event.type === "run.ended") break;
 * }
 * assert.equal(started?.runId, run.id);
 * assert.equal(started?.flowId, "hi");
 * ```
 */
export interface RunStartedEvent extends RuntimeEventBase {
  /** The type. */
  readonly type: "run.started";
  /** The run's id. */
  readonly runId: string;
  /** The flow's id (`job:<name>` for a job). */
  readonly flowId: string;
  /** The parent run of a sub-flow. */
  readonly parentRunId?: string;
}

/**
 * A node of a run started, made an attempt, logged or ended (a job logs as its one node).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type RunNodeEvent } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const events = rt.events();
 * await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hello" } }] });
 * const logs: string[] = [];
 * for await (const event of events) {
 *   if (event.type === "node") {
 *     const { event: recorded }: RunNodeEvent = event;
 *     if (recorded.type === "node.log") logs.push(recorded.message);
 *   }
 *   if (event.type === "run.ended") break;
 * }
 * assert.deepEqual(logs, ["hello"]);
 * ```
 */
export interface RunNodeEvent extends RuntimeEventBase {
  /** The type. */
  readonly type: "node";
  /** The run's id. */
  readonly runId: string;
  /** The flow's id. */
  readonly flowId: string;
  /** The event, as recorded in the run's events. */
  readonly event: RunEvent;
}

/**
 * A run ended.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type RunEndedEvent } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const events = rt.events();
 * await rt.runFlow({ id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * let ended: RunEndedEvent | undefined;
 * for await (const event of events) {
 *   if (event.type === "run.ended") {
 *     ended = event;
 *     break;
 *   }
 * }
 * assert.equal(ended?.status, "succeeded");
 * assert.equal(ended?.record?.nodes.a.status, "succeeded");
 * ```
 */
export interface RunEndedEvent extends RuntimeEventBase {
  /** The type. */
  readonly type: "run.ended";
  /** The run's id. */
  readonly runId: string;
  /** The flow's id. */
  readonly flowId: string;
  /** Its final status. */
  readonly status: RunStatus;
  /**
   * The final record; `null` when the end could not be recorded (the store
   * failed): the run is then found abandoned later, and `error` says why.
   */
  readonly record: RunRecord | null;
  /** Why the end was not recorded (with `record: null`). */
  readonly error?: string;
}

/**
 * A job reported progress (`ctx.progress`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineJob, type JobProgressEvent, openRuntime, runJob } from "@flowstate/core";
 * import { z } from "zod";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const count = defineJob({
 *   name: "count",
 *   description: "counts to three",
 *   optionsSchema: z.strictObject({}),
 *   run(ctx) {
 *     ctx.progress.start("counting", 3);
 *     for (let i = 0; i < 3; i++) ctx.progress.advance();
 *     ctx.progress.finish();
 *     return {};
 *   },
 * });
 * const events = rt.events();
 * await runJob(rt, count);
 * const progress: JobProgressEvent[] = [];
 * for await (const event of events) {
 *   if (event.type === "job.progress") progress.push(event);
 *   if (event.type === "run.ended") break;
 * }
 * const last = progress.at(-1);
 * assert.equal(last?.label, "counting");
 * assert.equal(last?.finished, true);
 * assert.equal(last?.flowId, "job:count");
 * ```
 */
export interface JobProgressEvent extends RuntimeEventBase {
  /** The type. */
  readonly type: "job.progress";
  /** The job run's id. */
  readonly runId: string;
  /** `job:<name>`. */
  readonly flowId: string;
  /** The phase (`"deleting runs"`…). */
  readonly label: string;
  /** Done so far in this phase. */
  readonly done: number;
  /** The phase's total, when known. */
  readonly total: number | undefined;
  /** Whether the phase just finished. */
  readonly finished: boolean;
}

/**
 * A write committed through the runtime: by a flow node through its state
 * views (`ctx.flow.set`, `state.increment`…, with the run, flow and node), or
 * on a store from {@linkcode Runtime.store} (`set`, `delete`, an atomic
 * commit, `clear`). Flowstate's own records (keys under `["flowstate"]` in
 * the records store) are not reported. Emitted only while someone listens.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type StateChangedEvent } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const stop = new AbortController();
 * const events = rt.events({ signal: stop.signal });
 * await (await rt.store("main")).set(["settings", "theme"], "dark");
 * for await (const event of events) {
 *   if (event.type !== "state.changed") continue;
 *   const change: StateChangedEvent = event;
 *   assert.deepEqual([change.store, change.op, change.key], ["main", "set", ["settings", "theme"]]);
 *   stop.abort();
 * }
 * ```
 */
export interface StateChangedEvent extends RuntimeEventBase {
  /** The type. */
  readonly type: "state.changed";
  /** The store's configured name. */
  readonly store: string;
  /** The whole key in the store (a node's `ctx.flow` key `n` is `["flow", flowId, "n"]`). */
  readonly key: Key;
  /** A set, or a delete (of an entry that existed, for a node; any key, for a store). */
  readonly op: "set" | "delete";
  /** The entry's new version, after a set. */
  readonly version?: string;
  /** Set for a `clear`: every key under `key` was deleted. */
  readonly prefix?: true;
  /** The run whose node wrote it. */
  readonly runId?: string;
  /** That run's flow. */
  readonly flowId?: string;
  /** The node. */
  readonly nodeId?: string;
}

/**
 * This consumer's buffer was full, and `count` events were dropped here: the
 * events before and after it are in order; only these are missing. Its `seq`
 * and `at` are those of the first missing event, so the next event's `seq` is
 * `seq + count`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EventsDroppedEvent, openRuntime } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const events = rt.events({ bufferSize: 1 }); // a consumer that cannot keep up
 * const main = await rt.store("main");
 * for (let i = 0; i < 5; i++) await main.set(["n"], i);
 * let dropped: EventsDroppedEvent | undefined;
 * for await (const event of events) {
 *   if (event.type === "dropped") {
 *     dropped = event;
 *     break;
 *   }
 * }
 * assert.ok(dropped !== undefined && dropped.count > 0);
 * ```
 */
export interface EventsDroppedEvent extends RuntimeEventBase {
  /** The type. */
  readonly type: "dropped";
  /** How many events this consumer missed. */
  readonly count: number;
}

/**
 * One event of {@linkcode Runtime.events}, told apart by `type`.
 *
 * @example
 * ```ts
 * import type { RuntimeEvent } from "@flowstate/core";
 * function describe(e: RuntimeEvent): string {
 *   switch (e.type) {
 *     case "run.started": return `${e.flowId} started (${e.runId})`;
 *     case "node": return `${e.flowId}: ${e.event.type}`;
 *     case "run.ended": return `${e.flowId} ${e.status}`;
 *     case "job.progress": return `${e.label} ${e.done}/${e.total ?? "?"}`;
 *     case "state.changed": return `${e.op} ${e.store}:${e.key.join("/")}`;
 *     case "dropped": return `missed ${e.count} events`;
 *   }
 * }
 * ```
 */
export type RuntimeEvent =
  | RunStartedEvent
  | RunNodeEvent
  | RunEndedEvent
  | JobProgressEvent
  | StateChangedEvent
  | EventsDroppedEvent;

/**
 * Options for {@linkcode Runtime.events}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EventsOptions, openRuntime } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const stop = new AbortController();
 * const options: EventsOptions = { bufferSize: 100, signal: stop.signal };
 * const events = rt.events(options);
 * stop.abort();
 * const seen = [];
 * for await (const event of events) seen.push(event);
 * assert.equal(seen.length, 0); // aborted: the iteration ends
 * ```
 */
export interface EventsOptions {
  /**
   * Events held for this consumer while it is not reading (default 10,000).
   * Past it, new events are dropped (never the runs: emitting never waits for
   * a consumer), and the consumer gets one `dropped` event with their count
   * where they are missing.
   */
  bufferSize?: number;
  /** Ends the iteration (what is still buffered is discarded). */
  signal?: AbortSignal;
}

/** The default buffer of one consumer. */
export const DEFAULT_EVENT_BUFFER = 10_000;

/** An event as emitted, before the bus numbers it. */
export type RuntimeEventInit = RuntimeEvent extends infer E
  ? E extends RuntimeEvent ? Omit<E, "seq"> : never
  : never;

interface Consumer {
  push(event: RuntimeEvent): void;
  end(): void;
}

/**
 * Where a runtime's events go: numbered in emission order and handed to every
 * consumer's buffer at once; emitting never waits.
 */
export class EventBus {
  #seq = 0;
  #consumers = new Set<Consumer>();
  #closed = false;

  /** Whether anyone listens (emitters may skip building events otherwise). */
  get listening(): boolean {
    return this.#consumers.size > 0;
  }

  /** Number `event` and give it to every consumer. */
  emit(event: RuntimeEventInit): void {
    if (this.#consumers.size === 0) return;
    const numbered = Object.freeze({ ...event, seq: ++this.#seq }) as RuntimeEvent;
    for (const consumer of this.#consumers) consumer.push(numbered);
  }

  /** End every consumer (once each has read what it holds). */
  close(): void {
    this.#closed = true;
    for (const consumer of this.#consumers) consumer.end();
    this.#consumers.clear();
  }

  /** A new consumer, buffering from now on. */
  subscribe(options: EventsOptions = {}): AsyncIterableIterator<RuntimeEvent> {
    const size = options.bufferSize ?? DEFAULT_EVENT_BUFFER;
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(
        `Cannot listen to runtime events: bufferSize must be a whole number of at least 1 (got ${size})`,
      );
    }
    const queue: RuntimeEvent[] = [];
    let head = 0;
    let buffered = 0; // events in queue[head..], dropped markers not counted
    let dropped = 0;
    let droppedAt = 0;
    let droppedSeq = 0;
    let ended = this.#closed;
    let waiting: ((result: IteratorResult<RuntimeEvent>) => void) | undefined;
    const marker = (): RuntimeEvent =>
      Object.freeze({ type: "dropped", count: dropped, seq: droppedSeq, at: droppedAt });
    const consumer: Consumer = {
      push(event) {
        if (waiting) {
          const resolve = waiting;
          waiting = undefined;
          resolve({ value: event, done: false });
          return;
        }
        if (buffered >= size) {
          if (dropped === 0) [droppedAt, droppedSeq] = [event.at, event.seq];
          dropped++;
          return;
        }
        if (dropped > 0) {
          queue.push(marker());
          dropped = 0;
        }
        queue.push(event);
        buffered++;
      },
      end() {
        ended = true;
        if (waiting && head === queue.length && dropped === 0) {
          const resolve = waiting;
          waiting = undefined;
          resolve({ value: undefined, done: true });
        }
      },
    };
    const stop = () => {
      ended = true;
      queue.length =
        head =
        buffered =
        dropped =
          0;
      this.#consumers.delete(consumer);
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve({ value: undefined, done: true });
      }
    };
    if (options.signal?.aborted) stop();
    else if (!ended) {
      this.#consumers.add(consumer);
      options.signal?.addEventListener("abort", stop, { once: true });
    }
    const iterator: AsyncIterableIterator<RuntimeEvent> = {
      next(): Promise<IteratorResult<RuntimeEvent>> {
        if (head < queue.length) {
          const value = queue[head];
          queue[head++] = undefined as unknown as RuntimeEvent;
          if (value.type !== "dropped") buffered--;
          if (head === queue.length) queue.length = head = 0;
          return Promise.resolve({ value, done: false });
        }
        if (dropped > 0) {
          const value = marker();
          dropped = 0;
          return Promise.resolve({ value, done: false });
        }
        if (ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (waiting = resolve));
      },
      return(): Promise<IteratorResult<RuntimeEvent>> {
        options.signal?.removeEventListener("abort", stop);
        stop();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
}

const buses = new WeakMap<object, EventBus>();

/** Give `runtime` its bus (done once, by the runtime). */
export function attachEventBus(runtime: object, bus: EventBus): void {
  buses.set(runtime, bus);
}

/** The bus of `runtime`, for what runs work through it (`runJob`); none for a stand-in runtime. */
export function eventBusOf(runtime: object): EventBus | undefined {
  return buses.get(runtime);
}

/** Tell the event stream a run ended without its end recorded (it is found abandoned later). */
export function unrecorded(
  bus: EventBus | undefined,
  runId: string,
  flowId: string,
  at: number,
  err: unknown,
): void {
  bus?.emit({
    type: "run.ended",
    at,
    runId,
    flowId,
    status: "failed",
    record: null,
    error: messageOf(err),
  });
}
