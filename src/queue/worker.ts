/**
 * A queue worker: claims due runs from the records store and runs them, up
 * to `concurrency` at once, until stopped. What `flowstate worker` and the
 * daemon run; any number of workers, in any number of processes, may share
 * one store (see "The queue" in `records/records.ts` for the protocol).
 *
 * Each claim is a lease kept alive by the run's heartbeat (every quarter of
 * `leaseMs`); every worker, on each poll, takes back the runs whose lease
 * lapsed (their worker died), so a run is delivered at least once. Wake-ups
 * are by polling every `pollMs` (with ±25% jitter so that workers do not
 * poll in step), and at once when one of this worker's runs ends; a store
 * that announces new runs (PostgreSQL's LISTEN/NOTIFY, see
 * {@linkcode QueueNotifier}) wakes it as soon as a run is enqueued. A
 * delayed run it knows of (a poll's list of the delayed index reads one poll
 * interval ahead; a run it put off for its rate limit) wakes it when it comes
 * due, not at the poll after.
 *
 * Its records store unreachable (a transient `StoreUnavailableError`: the
 * server is down, starting, restarting): at start, the worker tries again
 * to open it, 0.5 s after the first failure and doubling up to 30 s
 * (`waiting` events), for as long as `waitForStoreMs` allows (default: no
 * limit), and tells `start` only once it answers; any other error at start
 * is fatal at once. While it runs, a poll that fails so backs off the same
 * way, and the worker goes on once the store answers again (`reachable`).
 *
 * Stopping: no new claims; runs in flight get `graceMs` to end, then are
 * cancelled and released back to `queued` (attempt recorded `lost`), so a
 * stopped worker never leaves a run `running`.
 *
 * Each worker keeps an entry in the worker registry of its records store
 * (`P, "workers", id`, see `records/workers.ts`): written as it starts, then
 * by its poll loop every heartbeat interval (the claims' `heartbeatMs`) and at
 * most every second while its claims change (the loop's sleep is cut short
 * for it: no second timer), and during a stop's grace period; deleted by a
 * clean stop. A killed worker's entry goes stale after three missed
 * heartbeats, and the gc job deletes it later.
 *
 * @module
 */
import { assertKnownFields, fieldNames } from "../_suggest.ts";
import { callGuarded } from "../_callback.ts";
import {
  messageOf,
  StoreClosedError,
  StoreUnavailableError,
  transientUnavailable,
} from "../errors.ts";
import { storeRetryDelay, unavailableReason, untilReachable } from "./store_wait.ts";
import { flowHostOf, notifyRunEnded, type Runtime } from "../runtime.ts";
import { runClaimed } from "../run_flow.ts";
import type { Records } from "../records/records.ts";
import { staleAfterMs, type WorkerInfo, workerStatus } from "../records/workers.ts";
import type { RunEvent, RunRecord, RunStatus } from "../records/types.ts";
import { HEARTBEAT_MS, MIN_ABANDONED_MS } from "../records/heartbeat.ts";
import {
  RunEndNotRecordedError,
  RunEventsNotRecordedError,
  RunNotOwnedError,
  trackRunInFlight,
} from "../records/recorder.ts";
import { QUEUE_TOPIC } from "../records/_queue.ts";
import type { Store } from "../store/types.ts";
import { uniqueRandomHex } from "../_random.ts";
import denoJson from "../../deno.json" with { type: "json" };
import type { Clock, Timers } from "../clock.ts";
import type { RunGuard } from "../flow/executor.ts";

/**
 * Default lease of a claim without a heartbeat, in ms: a worker that dies
 * holding a run gives it back to the queue this long after its last heartbeat.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_LEASE_MS } from "@flowstate/core";
 * import { HEARTBEAT_MS } from "@flowstate/core/records";
 *
 * assert.equal(DEFAULT_LEASE_MS, 30_000);
 * assert.ok(DEFAULT_LEASE_MS >= 6 * HEARTBEAT_MS); // several heartbeats may be missed
 * ```
 */
export const DEFAULT_LEASE_MS = 30_000;
/**
 * Default poll interval, in ms: how long an idle worker waits before it
 * looks at the queue again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_LEASE_MS, DEFAULT_POLL_MS } from "@flowstate/core";
 *
 * assert.equal(DEFAULT_POLL_MS, 500);
 * assert.ok(DEFAULT_POLL_MS < DEFAULT_LEASE_MS);
 * ```
 */
export const DEFAULT_POLL_MS = 500;
/** How long a worker looks for the sub-runs a lost attempt left running, in ms. */
const LOST_SUB_RUNS_WATCH_MS = 10 * 60_000;
/**
 * A claimed run that could not start because a store did not answer goes back to the queue, due
 * this long after (ms): soon, but not in a tight loop while the server is down.
 */
const UNAVAILABLE_RETRY_MS = 2_000;
/** A busy worker makes due delayed runs ready at most this often, in ms. */
const PROMOTE_MS = 100;
/** While its claims change, a worker rewrites its registry entry at most this often, in ms. */
const CLAIMS_WRITE_MS = 1_000;

/**
 * What a worker tells as it works.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, startWorker, type WorkerEvent } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hi.flow.yaml`, "id: hi\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n");
 * {
 *   await using rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } } } });
 *   await rt.enqueue("./hi.flow.yaml");
 *   const events: WorkerEvent["type"][] = [];
 *   const ended = Promise.withResolvers<void>();
 *   const worker = startWorker(rt, {
 *     onEvent: (event) => {
 *       events.push(event.type);
 *       if (event.type === "end") ended.resolve();
 *     },
 *   });
 *   await ended.promise;
 *   await worker.stop();
 *   assert.deepEqual(events.filter((t) => t === "start" || t === "claim" || t === "end"), [
 *     "start",
 *     "claim",
 *     "end",
 *   ]);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export type WorkerEvent =
  | { type: "start"; worker: string; concurrency: number; flows: string[] | null }
  | { type: "claim"; runId: string; flowId: string; attempt: number }
  | {
    type: "end";
    runId: string;
    flowId: string;
    attempt: number;
    status: RunStatus;
    durationMs: number;
    /**
     * The run went back to the queue: `retry` after a failure, `released` at stop, `lost`: this
     * attempt's claim lapsed (its heartbeats or its end could not be recorded within its lease),
     * so its end was not recorded and another worker takes the run back (`status` then says
     * nothing of the run, which goes on elsewhere).
     */
    requeued?: "retry" | "released" | "lost";
    error?: string;
  }
  /**
   * Runs taken back from workers whose lease lapsed; `ended` lists those of them recorded ended
   * instead of queued again (`cancelled`: a cancel was requested; `failed`: lost too many times).
   */
  | { type: "lost"; runIds: string[]; ended?: { runId: string; status: RunStatus }[] }
  /** Sub-runs a lost attempt left running, recorded abandoned once their heartbeat was stale. */
  | { type: "abandoned"; runIds: string[] }
  /**
   * Its records store cannot be reached (the server is down, starting, restarting, out of
   * connections): the worker tries again in `retryInMs` (0.5 s, doubling up to 30 s).
   * `starting`: it has not started yet (its `start` event comes once the store answers); else
   * a poll of a running worker failed (the heartbeats of its runs fail too: a run whose lease
   * lapses meanwhile is lost here and taken back, once the store answers, by any worker).
   * `error` is why, without the `Cannot open store "<name>": ` of the message.
   */
  | {
    type: "waiting";
    store: string;
    error: string;
    attempt: number;
    retryInMs: number;
    starting: boolean;
  }
  /** Its records store answers again, after `attempts` failed ones over `waitedMs`. */
  | { type: "reachable"; store: string; attempts: number; waitedMs: number; starting: boolean }
  /**
   * Something failed. `fatal`: the worker cannot work at all (its records
   * store did not open: an error that waiting does not fix, or still
   * unreachable after `waitForStoreMs`) and has stopped claiming; `stop()` it.
   * Also when its runtime is closed under it (stop a worker first): it
   * stops claiming, and stops (a `stop` event follows) without `stop()`.
   */
  | { type: "error"; message: string; fatal?: true }
  | { type: "stopping"; running: number; graceMs: number }
  | { type: "stop"; released: number };

/**
 * Something that wakes workers when runs are enqueued (a plugin capability).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type QueueNotifier, startWorker } from "@flowstate/core";
 *
 * // A notifier that another part of the program pokes when it enqueues.
 * const wakers = new Set<() => void>();
 * const listening = Promise.withResolvers<void>();
 * const notifier: QueueNotifier = {
 *   listen(wake) {
 *     wakers.add(wake);
 *     listening.resolve();
 *     return Promise.resolve(async () => {
 *       wakers.delete(wake);
 *     });
 *   },
 * };
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hi.flow.yaml`, "id: hi\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n");
 * {
 *   await using rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } } } });
 *   const ended = Promise.withResolvers<void>();
 *   const worker = startWorker(rt, {
 *     notifier,
 *     pollMs: 3_600_000, // it would not look again for an hour: the wake-up starts the run
 *     onEvent: (e) => e.type === "end" && ended.resolve(),
 *   });
 *   await listening.promise;
 *   await rt.enqueue("./hi.flow.yaml");
 *   for (const wake of wakers) wake();
 *   await ended.promise;
 *   await worker.stop();
 *   assert.equal(wakers.size, 0); // stopping the worker stopped listening
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface QueueNotifier {
  /** Call `wake` whenever a run may have become due; resolves a function that stops it. */
  listen(wake: () => void): Promise<() => Promise<void>>;
}

/**
 * Options of {@linkcode startWorker}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, startWorker, type WorkerOptions } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const options: WorkerOptions = { workerId: "mailer-1", concurrency: 2, flows: ["mail"] };
 * const worker = startWorker(rt, options);
 * assert.equal(worker.id, "mailer-1");
 * await worker.stop();
 * ```
 */
export interface WorkerOptions {
  /** This worker's id (default `<hostname>:<pid>:<random>`). */
  workerId?: string;
  /** Runs at once (default 4). */
  concurrency?: number;
  /** Only runs of these flow ids (default: any). */
  flows?: readonly string[];
  /** How long a claim lives without a heartbeat, in ms (default 30 s). */
  leaseMs?: number;
  /** Poll interval, in ms (default 500). */
  pollMs?: number;
  /**
   * Told of claims, ends, lost runs and errors. What it throws (or, for an `async` one, its
   * promise rejects with: it is not awaited) never stops the worker nor leaves a claimed run
   * unstarted: it is told once as an `error` event (naming the event it threw on), and ignored
   * if it throws on that too.
   */
  onEvent?: (event: WorkerEvent) => void;
  /**
   * Told of the events of the runs it runs (and their sub-runs), as `runFlow`'s `onEvent`
   * is: node logs, attempts, ends, secrets masked. What it throws is handled as `runFlow`
   * handles its `onEvent`'s throw.
   */
  onRunEvent?: (event: RunEvent, run: { id: string; flowId: string }) => void;
  /** Wakes the worker early (default: the records store's, when it has one). */
  notifier?: QueueNotifier;
  /**
   * Stops the worker when it aborts, as `stop()` with the default grace
   * does (a `SIGTERM` handler's `AbortController`, say).
   */
  signal?: AbortSignal;
  /**
   * How long to wait, in ms, for a records store that cannot be reached at
   * start (its server down or starting: a transient `StoreUnavailableError`)
   * before giving up with a fatal `error` event (default: `Infinity`, wait
   * until it answers or the worker is stopped; `0`: give up at the first
   * failure). Any other error opening the store is fatal at once.
   */
  waitForStoreMs?: number;
  /**
   * What the worker sleeps on between polls (default: real timers). Tests
   * inject fake ones, with the runtime's `clock`, to move time instead of
   * waiting: the worker wakes when a sleep ends or is cut short, and reads
   * the due times of delayed runs on the runtime's clock.
   */
  timers?: Timers;
}

/**
 * Where a {@linkcode Worker} is: `starting` (opening its records store),
 * `waiting-for-store` (its records store cannot be reached: at start, or a
 * running worker whose polls fail), `running` (claiming runs), `stopping`,
 * `stopped` (also after a fatal error: see {@linkcode Worker.error}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, startWorker, type WorkerState } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const started = Promise.withResolvers<void>();
 * const worker = startWorker(rt, { onEvent: (e) => e.type === "start" && started.resolve() });
 * await started.promise;
 * const status: WorkerState = worker.status;
 * assert.equal(status, "running");
 * await worker.stop();
 * assert.equal(worker.status, "stopped");
 * ```
 */
export type WorkerState = "starting" | "waiting-for-store" | "running" | "stopping" | "stopped";

/**
 * A running worker.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, startWorker, type Worker } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const worker: Worker = startWorker(rt, { concurrency: 1 });
 * assert.equal(worker.running, 0); // the queue is empty
 * await worker.stop({ graceMs: 1_000 });
 * ```
 */
export interface Worker extends AsyncDisposable {
  /** Its id. */
  readonly id: string;
  /** Runs in flight. */
  readonly running: number;
  /** Where it is (see {@linkcode WorkerState}). */
  readonly status: WorkerState;
  /**
   * Why its records store cannot be reached (while `waiting-for-store`), or
   * why it stopped on a fatal error (it could not start, or its runtime was
   * closed under it); else `undefined`.
   */
  readonly error: string | undefined;
  /**
   * Stop claiming; wait up to `graceMs` (default: the config's
   * `runs.abortGrace`) for runs in flight, then cancel them and release them
   * back to the queue. Resolves when every run has ended or been released.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
  /**
   * `stop()` with the default grace: leaving an `await using` block stops
   * the worker (before the runtime declared ahead of it closes).
   */
  [Symbol.asyncDispose](): Promise<void>;
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    // No --allow-sys=hostname: the pid and random part still tell workers apart.
    return "host";
  }
}

function defaultWorkerId(): string {
  return `${hostName()}:${Deno.pid}:${uniqueRandomHex(4)}`;
}

/** The names of {@linkcode WorkerOptions}: a misspelt one is refused, not ignored. */
const WORKER_OPTIONS: readonly string[] = fieldNames<WorkerOptions>()(
  [
    "workerId",
    "concurrency",
    "flows",
    "leaseMs",
    "pollMs",
    "onEvent",
    "onRunEvent",
    "notifier",
    "signal",
    "waitForStoreMs",
    "timers",
  ],
);

/**
 * Start a worker on `runtime`'s records store.
 *
 * @example
 * ```ts
 * import { openRuntime, startWorker } from "@flowstate/core";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hi.flow.yaml`, "id: hi\nnodes:\n  - id: a\n    type: log\n    with: { message: hi }\n");
 * await using rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } } } });
 * const { runId } = await rt.enqueue("./hi.flow.yaml");
 * const ended = Promise.withResolvers<string>();
 * const worker = startWorker(rt, { onEvent: (e) => e.type === "end" && ended.resolve(e.status) });
 * assert.equal(await ended.promise, "succeeded");
 * await worker.stop();
 * assert.equal((await (await rt.records()).getRun(runId))?.status, "succeeded");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function startWorker(runtime: Runtime, options: WorkerOptions = {}): Worker {
  assertKnownFields(options, WORKER_OPTIONS, "Cannot start a worker", "option");
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(
      `Cannot start a worker: concurrency must be a whole number >= 1 (got ${concurrency})`,
    );
  }
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  if (!(leaseMs >= 100) || !Number.isFinite(leaseMs)) {
    throw new RangeError(`Cannot start a worker: leaseMs must be at least 100 (got ${leaseMs})`);
  }
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  if (!(pollMs > 0) || !Number.isFinite(pollMs)) {
    throw new RangeError(`Cannot start a worker: pollMs must be > 0 (got ${pollMs})`);
  }
  const waitForStoreMs = options.waitForStoreMs ?? Infinity;
  if (!(waitForStoreMs >= 0)) {
    throw new RangeError(
      `Cannot start a worker: waitForStoreMs must be >= 0 (got ${waitForStoreMs})`,
    );
  }
  const w = new QueueWorker(runtime, {
    id: options.workerId ?? defaultWorkerId(),
    concurrency,
    flows: options.flows === undefined ? undefined : new Set(options.flows),
    leaseMs,
    pollMs,
    heartbeatMs: Math.min(HEARTBEAT_MS, leaseMs / 4),
    onEvent: options.onEvent === undefined ? () => {} : guarded(options.onEvent),
    onRunEvent: options.onRunEvent,
    notifier: options.notifier,
    waitForStoreMs,
    timers: options.timers ?? TIMEOUT_TIMERS,
  });
  w.start();
  w.stopOn(options.signal);
  return w;
}

/**
 * The caller's `onEvent`, made safe to call anywhere in the worker: a throw (a bug in the
 * caller's printer, say), or the rejection of the promise an `async` one returns, must not
 * abandon a claimed run (thrown at its `claim`), end the claim loop, reject a run's bookkeeping
 * or end the process (an unhandled rejection). It is reported to the listener as an `error`
 * event; the promise is never awaited.
 */
function guarded(onEvent: (event: WorkerEvent) => void): (event: WorkerEvent) => void {
  let reporting = false;
  return (event) => {
    callGuarded(() => onEvent(event), (err) => {
      if (reporting) return; // it threw on the report too: nothing more to tell it
      reporting = true;
      try {
        callGuarded(() =>
          onEvent({
            type: "error",
            message: `onEvent threw on a "${event.type}" event: ${messageOf(err)}`,
          }), () => {
          // ignored, as above
        });
      } finally {
        reporting = false;
      }
    });
  };
}

interface Settings {
  id: string;
  concurrency: number;
  flows: ReadonlySet<string> | undefined;
  leaseMs: number;
  pollMs: number;
  heartbeatMs: number;
  onEvent: (event: WorkerEvent) => void;
  onRunEvent: WorkerOptions["onRunEvent"];
  notifier: QueueNotifier | undefined;
  waitForStoreMs: number;
  timers: Timers;
}

/** The worker's sleeps by default: `setTimeout`, cut short by the signal. */
const TIMEOUT_TIMERS: Timers = {
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, ms));
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

interface InFlight {
  run: RunRecord;
  cancel: AbortController;
  done: Promise<void>;
}

class QueueWorker implements Worker {
  readonly id: string;
  readonly #rt: Runtime;
  readonly #s: Settings;
  /**
   * The attempts in flight, one entry each (not one per run: a worker may take back a run whose
   * lease it let lapse, a starved process, and claim it again while the lapsed attempt stops).
   */
  readonly #inFlight = new Set<InFlight>();
  #stopping = false;
  /** Aborted at stop: ends a wait for the records store. */
  readonly #halt = new AbortController();
  #status: WorkerState = "starting";
  #error: string | undefined;
  /** It stopped on a fatal error (kept in `#error`). */
  #fatal = false;
  #releasing = false;
  #released = 0;
  #wake: (() => void) | undefined;
  #woken = false;
  /**
   * When the next delayed run the claims met comes due (the runtime's clock), or `Infinity`:
   * the loop wakes for it rather than sleep to its next poll.
   */
  #nextDue = Infinity;
  /** A run was enqueued, or one this worker knows of came due: the next claim promotes. */
  #promoteNext = false;
  #loop: Promise<void> = Promise.resolve();
  #stopped: Promise<void> | undefined;
  /** Forgets `WorkerOptions.signal` (at stop). */
  #unlisten: (() => void) | undefined;
  #records: Records | undefined;
  /**
   * Runs this worker took back (their attempt lost), by id: when, and until when to look for
   * the sub-runs their lost attempt left running (see {@linkcode QueueWorker.#abandonSubRuns}).
   */
  #lostParents = new Map<string, { at: number; until: number }>();
  #lastSubRunCheck = 0;
  /** The registry entry: when this worker started, its entry's version, when it last wrote it. */
  readonly #startedAt: number;
  #entryVersion: string | undefined;
  /**
   * An entry of this id that another process wrote and that was live when this worker started:
   * its heartbeat then, and when it turns stale unless that process writes again. Watched at
   * each heartbeat until it writes again (told: two live workers share the id) or turns stale
   * (it was gone: a killed worker restarted with its id by a service manager).
   */
  #sameId: { heartbeatAt: number; staleAt: number } | undefined;
  #lastBeat = 0;
  /** The claims changed since the entry was last written. */
  #claimsChanged = false;
  /** Writing the entry failed (told once, until a write succeeds again). */
  #beatFailing = false;

  constructor(rt: Runtime, settings: Settings) {
    this.#rt = rt;
    this.#s = settings;
    this.id = settings.id;
    this.#startedAt = rt.clock.now();
  }

  get running(): number {
    return this.#inFlight.size;
  }

  get status(): WorkerState {
    return this.#status;
  }

  get error(): string | undefined {
    return this.#error;
  }

  /** `WorkerOptions.signal`: stop when it aborts; forgotten once stopped. */
  stopOn(signal: AbortSignal | undefined): void {
    if (signal === undefined) return;
    const onAbort = () => void this.stop().catch(() => {});
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    this.#unlisten = () => signal.removeEventListener("abort", onAbort);
  }

  start(): void {
    this.#loop = this.#work();
  }

  #wakeUp = (): void => {
    this.#woken = true;
    this.#wake?.();
  };

  /**
   * A run was enqueued (here, or announced by the store): wake, and promote on the next poll
   * whatever the time since the last (a delayed run's due time is learnt by that list).
   */
  #wakeForNew = (): void => {
    this.#promoteNext = true;
    this.#wakeUp();
  };

  /** Wait `ms`, or until woken; resolves whether it was woken. */
  async #sleep(ms: number): Promise<boolean> {
    if (this.#woken) {
      this.#woken = false;
      return true;
    }
    const wake = new AbortController();
    this.#wake = () => wake.abort();
    await this.#s.timers.sleep(Math.max(0, ms), wake.signal).catch(() => {});
    this.#wake = undefined;
    const woken = this.#woken;
    this.#woken = false;
    return woken;
  }

  /**
   * How long to sleep: until the next poll (`Date.now()` time), the registry entry's next
   * write, or the next delayed run this worker knows of comes due (the runtime's clock),
   * whichever is first.
   */
  #sleepMs(nextPoll: number): number {
    const now = Date.now();
    return Math.min(nextPoll - now, this.#nextBeatAt() - now, this.#nextDue - this.#rt.clock.now());
  }

  /** When the registry entry is due to be written again (`Date.now()` time). */
  #nextBeatAt(): number {
    return this.#lastBeat +
      (this.#claimsChanged ? Math.min(CLAIMS_WRITE_MS, this.#s.heartbeatMs) : this.#s.heartbeatMs);
  }

  /** Write the registry entry if it is due (see {@linkcode QueueWorker.#nextBeatAt}). */
  async #beatIfDue(records: Records): Promise<void> {
    if (Date.now() >= this.#nextBeatAt()) await this.#beat(records);
  }

  /**
   * Write this worker's registry entry: its heartbeat, settings and claims. A failure is told
   * once (an `error` event) until a write succeeds again; the worker keeps working.
   */
  async #beat(records: Records): Promise<void> {
    this.#lastBeat = Date.now();
    this.#claimsChanged = false;
    if (this.#sameId !== undefined) await this.#checkIdWrittenElsewhere(records);
    const info: WorkerInfo = {
      id: this.id,
      host: hostName(),
      pid: Deno.pid,
      version: denoJson.version,
      startedAt: this.#startedAt,
      heartbeatAt: this.#rt.clock.now(),
      heartbeatMs: this.#s.heartbeatMs,
      concurrency: this.#s.concurrency,
      flows: this.#s.flows === undefined ? null : [...this.#s.flows],
      leaseMs: this.#s.leaseMs,
      pollMs: this.#s.pollMs,
      stopping: this.#stopping,
      claims: [...this.#inFlight.values()].map(({ run }) => ({
        runId: run.id,
        flowId: run.flowId,
        attempt: run.queue?.attempt ?? 1,
        claimedAt: run.queue?.claim?.at ?? run.startedAt,
      })),
    };
    try {
      this.#entryVersion = await records.putWorker(info);
      this.#beatFailing = false;
    } catch (err) {
      // A store that cannot be reached: the poll loop says so (`waiting`), once per attempt.
      if (this.#closedUnder(err)) return;
      if (this.#beatFailing || transientUnavailable(err) !== undefined) return;
      this.#beatFailing = true;
      this.#s.onEvent({
        type: "error",
        message: `cannot write this worker's heartbeat to the worker registry: ${messageOf(err)}`,
      });
    }
  }

  /**
   * Note a live entry of this id written by another process: the next heartbeats tell (an
   * `error` event) whether that process still writes it (see `#checkIdWrittenElsewhere`).
   */
  async #checkIdInUse(records: Records): Promise<void> {
    try {
      const now = this.#rt.clock.now();
      const other = (await records.listWorkers()).find((w) => w.id === this.id);
      if (
        other !== undefined && !this.#isOwnEntry(other) && workerStatus(other, now) === "live"
      ) {
        this.#sameId = {
          heartbeatAt: other.heartbeatAt,
          staleAt: other.heartbeatAt + staleAfterMs(other),
        };
      }
    } catch {
      // The registry is for people: a failed read must not keep the worker from working.
    }
  }

  #isOwnEntry(info: WorkerInfo): boolean {
    return info.pid === Deno.pid && info.host === hostName();
  }

  /**
   * Tell (an `error` event) when the live entry of this id found at start was written again by
   * its process: two live workers have the id, their entries overwrite each other and their
   * claims name the same worker. An entry that stays as it was (a killed process, this worker
   * its restart with the same id) turns stale and is not told.
   */
  async #checkIdWrittenElsewhere(records: Records): Promise<void> {
    const watched = this.#sameId!;
    try {
      const other = (await records.listWorkers()).find((w) => w.id === this.id);
      if (
        other !== undefined && !this.#isOwnEntry(other) &&
        other.heartbeatAt > watched.heartbeatAt
      ) {
        this.#sameId = undefined;
        this.#s.onEvent({
          type: "error",
          message:
            `another live worker has the id "${this.id}" (pid ${other.pid} on ${other.host}): ` +
            `give each worker its own id (--worker-id, WorkerOptions.workerId)`,
        });
      } else if (this.#rt.clock.now() > watched.staleAt) this.#sameId = undefined;
    } catch {
      // The registry is for people: a failed read must not keep the worker from working.
    }
  }

  /** Delete the registry entry on a clean stop, if it is still the one this worker wrote. */
  async #unregister(records: Records): Promise<void> {
    if (this.#entryVersion === undefined) return;
    try {
      await records.removeWorker(this.id, { ifVersion: this.#entryVersion });
    } catch (err) {
      this.#s.onEvent({
        type: "error",
        message: `cannot remove this worker from the worker registry: ${
          messageOf(err)
        } (it shows as stale, and gc deletes it)`,
      });
    }
  }

  /**
   * Open the records store and listen for wake-ups, waiting for a store that cannot be reached
   * yet (see {@linkcode untilReachable}); `undefined` when stopped meanwhile or on a fatal error.
   */
  async #open(): Promise<{ records: Records; unlisten: () => Promise<void> } | undefined> {
    const open = async () => {
      const records = await this.#rt.records();
      // The records store itself (not the runtime's event-reporting wrapper): it carries wake-ups.
      const notifier = this.#s.notifier ??
        notifierOf(await flowHostOf(this.#rt).host.recordsStore());
      const unlistenStore = notifier === undefined
        ? undefined
        : await notifier.listen(this.#wakeForNew);
      // Stopped while this attempt went on (no one waits for it any more): let go of it.
      if (this.#halt.signal.aborted) await unlistenStore?.().catch(() => {});
      return { records, unlistenStore };
    };
    let opened: Awaited<ReturnType<typeof open>>;
    try {
      const reached = await untilReachable(open, {
        signal: this.#halt.signal,
        maxWaitMs: this.#s.waitForStoreMs,
        onWait: (info) => {
          this.#status = "waiting-for-store";
          this.#error = info.reason;
          this.#s.onEvent({
            type: "waiting",
            store: info.store,
            error: info.reason,
            attempt: info.attempt,
            retryInMs: info.retryInMs,
            starting: true,
          });
        },
      });
      if (reached === undefined) return undefined; // stopped while it waited
      opened = reached.value;
      if (reached.failures > 0) {
        this.#s.onEvent({
          type: "reachable",
          store: this.#rt.config.records,
          attempts: reached.failures,
          waitedMs: Math.round(reached.waitedMs),
          starting: true,
        });
      }
    } catch (err) {
      this.#status = "stopped";
      this.#fatal = true;
      this.#error = messageOf(err);
      this.#s.onEvent({
        type: "error",
        message: `the worker cannot start: ${messageOf(err)}`,
        fatal: true,
      });
      return undefined;
    }
    // Stopped as it opened: what it listened to is let go at once.
    if (this.#stopping) {
      await opened.unlistenStore?.().catch(() => {});
      return undefined;
    }
    // Runs enqueued through this runtime (HTTP, webhooks, queue nodes) wake it at once.
    const local = flowHostOf(this.#rt).enqueued;
    local.addEventListener("enqueued", this.#wakeForNew);
    const { records, unlistenStore } = opened;
    return {
      records,
      unlisten: async () => {
        local.removeEventListener("enqueued", this.#wakeForNew);
        await unlistenStore?.();
      },
    };
  }

  async #work(): Promise<void> {
    const opened = await this.#open();
    if (opened === undefined) return;
    const { records, unlisten } = opened;
    this.#status = "running";
    this.#error = undefined;
    this.#s.onEvent({
      type: "start",
      worker: this.id,
      concurrency: this.#s.concurrency,
      flows: this.#s.flows === undefined ? null : [...this.#s.flows],
    });
    this.#records = records;
    await this.#checkIdInUse(records);
    await this.#beat(records);
    // Fold the metrics shards left by workers before this one (killed ones too).
    await this.#compactMetrics(records);
    let lastReclaim = 0;
    let lastPromote = 0;
    let nextPoll = 0;
    let woken = false;
    /** The records store stopped answering: failed polls in a row, since when. */
    let outage: { failures: number; since: number; store: string } | undefined;
    try {
      while (!this.#stopping) {
        // A delayed run this worker knows of came due: a poll now, and it promotes.
        const due = this.#nextDue <= this.#rt.clock.now();
        // Woken only to write the registry entry: no poll before its time.
        if (!woken && !due && Date.now() < nextPoll) {
          await this.#beatIfDue(records);
          woken = await this.#sleep(this.#sleepMs(nextPoll));
          continue;
        }
        if (due) {
          // Told again by the next promoting claim (not before a failed poll's backoff).
          this.#nextDue = Infinity;
          this.#promoteNext = true;
        }
        try {
          const now = Date.now();
          if (now - lastReclaim >= Math.min(1_000, this.#s.leaseMs / 4)) {
            lastReclaim = now;
            const lost = await records.reclaimLost();
            if (lost.length > 0) this.#s.onEvent(await lostEvent(records, lost));
            for (const id of lost) {
              this.#lostParents.set(id, { at: now, until: now + LOST_SUB_RUNS_WATCH_MS });
            }
            await this.#abandonSubRuns(records, now);
          }
          // When the next delayed run comes due, as the claims of this poll see it: the
          // first not yet due that a promoting claim's list reads (it reads as far as the
          // next poll), and runs put off for their rate limit.
          let nextDue = Infinity;
          let promoted = false;
          const onDue = (at: number) => void (nextDue = Math.min(nextDue, at));
          let forced = this.#promoteNext;
          while (!this.#stopping && this.#inFlight.size < this.#s.concurrency) {
            // Delayed runs that came due are made ready at most every PROMOTE_MS (a list
            // of the delayed index), not before every claim of a busy worker; and as soon as
            // one this worker knows of comes due.
            const at = Date.now();
            const promote = forced || at - lastPromote >= PROMOTE_MS;
            forced = false;
            if (promote) {
              lastPromote = at;
              this.#promoteNext = false;
            }
            promoted ||= promote;
            // As many as there are free slots, in one claim (one transaction on PostgreSQL).
            const runs = await records.claimRuns({
              promote,
              worker: this.id,
              leaseMs: this.#s.leaseMs,
              // Several at once: take one of the oldest runs of the top priority at random,
              // so that claimers do not all race for the same run.
              spread: this.#s.concurrency > 1,
              nextDue: { withinMs: this.#s.pollMs * 1.25, onDue },
              ...(this.#s.flows === undefined ? {} : { flows: this.#s.flows }),
            }, this.#s.concurrency - this.#inFlight.size);
            if (runs.length === 0) break;
            if (this.#stopping) {
              // Claimed while stopping: give them straight back.
              for (const run of runs) await this.#release(records, run);
              break;
            }
            for (const run of runs) this.#launch(records, run);
          }
          // A promoting list saw the delayed index afresh: what it did not see is not due soon.
          this.#nextDue = promoted ? nextDue : Math.min(this.#nextDue, nextDue);
          if (outage !== undefined) {
            this.#s.onEvent({
              type: "reachable",
              store: outage.store,
              attempts: outage.failures,
              waitedMs: Math.round(performance.now() - outage.since),
              starting: false,
            });
            outage = undefined;
            this.#status = this.#stopping ? "stopping" : "running";
            this.#error = undefined;
          }
        } catch (err) {
          if (this.#closedUnder(err)) break;
          const unavailable = transientUnavailable(err);
          if (unavailable === undefined) {
            this.#s.onEvent({ type: "error", message: messageOf(err) });
          } else {
            // The store is down: poll again later and later (capped), said once per poll.
            outage ??= { failures: 0, since: performance.now(), store: unavailable.store };
            outage.failures++;
            if (!this.#stopping) this.#status = "waiting-for-store";
            this.#error = unavailableReason(unavailable);
            this.#s.onEvent({
              type: "waiting",
              store: unavailable.store,
              error: this.#error,
              attempt: outage.failures,
              retryInMs: storeRetryDelay(outage.failures),
              starting: false,
            });
          }
        }
        if (this.#stopping) break;
        const jitter = 0.75 + Math.random() * 0.5;
        nextPoll = Date.now() +
          (outage === undefined ? this.#s.pollMs * jitter : storeRetryDelay(outage.failures));
        await this.#beatIfDue(records);
        woken = await this.#sleep(this.#sleepMs(nextPoll));
      }
    } finally {
      await unlisten?.().catch(() => {});
    }
  }

  /**
   * Record abandoned the sub-runs the lost attempts of runs taken back left running (their
   * process is gone: nobody else ends them but the nightly `gc`), once their heartbeat is stale
   * (`Records.abandonSubRuns`, the check `gc` makes). Looked at every heartbeat period while
   * some are still fresh, for at most {@linkcode LOST_SUB_RUNS_WATCH_MS}.
   */
  async #abandonSubRuns(records: Records, now: number): Promise<void> {
    if (this.#lostParents.size === 0 || now - this.#lastSubRunCheck < HEARTBEAT_MS) return;
    this.#lastSubRunCheck = now;
    const parents = new Map<string, number>();
    for (const [id, { at, until }] of this.#lostParents) {
      if (until < now) this.#lostParents.delete(id);
      else parents.set(id, at);
    }
    const { abandoned, waiting } = await records.abandonSubRuns(parents, {
      afterMs: MIN_ABANDONED_MS,
    });
    const still = new Set(waiting);
    for (const id of parents.keys()) if (!still.has(id)) this.#lostParents.delete(id);
    if (abandoned.length > 0) {
      this.#s.onEvent({ type: "abandoned", runIds: abandoned.map((r) => r.id) });
    }
  }

  /** Put a claimed run that never started back in the queue. */
  async #release(records: Records, run: RunRecord): Promise<void> {
    await this.#giveBack(records, run).catch(() => {});
    this.#released++;
  }

  /**
   * Put a claimed run back in the queue (its attempt recorded `lost`), due now or
   * `releaseAfterMs` from now; resolves whether it was.
   */
  #giveBack(
    records: Records,
    run: RunRecord,
    releaseAfterMs = 0,
    releaseReason?: string,
  ): Promise<boolean> {
    const now = Date.now();
    return records.finishClaimedRun(
      { ...run, status: "cancelled", endedAt: now, error: { message: "released" } },
      [],
      { release: true, releaseAfterMs, ...(releaseReason === undefined ? {} : { releaseReason }) },
    );
  }

  #launch(records: Records, run: RunRecord): void {
    const cancel = new AbortController();
    const attempt = run.queue?.attempt ?? 1;
    this.#s.onEvent({ type: "claim", runId: run.id, flowId: run.flowId, attempt });
    const started = performance.now();
    const { host, defaults, findFlow } = flowHostOf(this.#rt);
    // The claim's lease is kept alive from the claim to the end of the attempt, including
    // while the flow loads and while the end is committed (the run's own heartbeat
    // covers only the time between). A beat that finds the claim gone (this process paused
    // past its lease and another worker took the run back), or the clock past the lease end
    // with no heartbeat confirmed (a beat or a state call after a pause, or beats that kept
    // failing), stops the attempt at once: the run may be running again elsewhere, and its
    // effects must not happen twice. That attempt is recorded `lost` (by the worker that
    // takes it back), never `cancelled`: its end is refused (RunNotOwnedError).
    const beating = new AbortController();
    const lost = new AbortController();
    // Not this process's run any more (taken back, or its lease ran out): stop the attempt.
    const loseClaim = () => {
      if (lost.signal.aborted) return;
      // Not this process's run any more: nothing for `interruptAll` to give back.
      untrack();
      lost.abort();
      cancel.abort(new RunNotOwnedError(run.id));
    };
    // The attempt's state views, its nodes' starts and its sub-runs are fenced by the lease
    // end known here: once the clock passes it without a confirmed heartbeat, nothing more of
    // this attempt lands (another worker may be running the run by then).
    const lease = new ClaimLease(run, this.#s.leaseMs, this.#rt.clock, loseClaim);
    // Until the run's recorder takes over (its flow loaded), the worker answers for the run: a
    // process that exits at once (RunRecorder.interruptAll) puts it back in the queue, due once
    // the process is gone, and the run does not start (its flow may still be loading).
    const untrack = trackRunInFlight({
      id: run.id,
      interrupt: (_reason, how) => {
        lost.abort();
        cancel.abort("the process is exiting at once");
        return this.#giveBack(records, run, how.requeueAfterMs);
      },
    });
    const beat = (async () => {
      while (!beating.signal.aborted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#s.heartbeatMs);
          beating.signal.addEventListener("abort", () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
        if (beating.signal.aborted) return;
        // Past the lease end already (the process was paused, or every beat failed): lost.
        if (lease.refusal() !== undefined) return;
        const at = this.#rt.clock.now();
        let held: boolean | undefined;
        try {
          held = await records.heartbeatClaim(run, at);
        } catch {
          // A store that fails says nothing about the claim: the next beat tries again, but
          // the lease is not extended: once it runs out, the attempt is lost.
        }
        if (beating.signal.aborted) return;
        if (held === true) lease.renewed(at);
        else if (held === false) {
          loseClaim();
          return;
        }
      }
    })();
    const flight: InFlight = { run, cancel, done: Promise.resolve() };
    const done = (async () => {
      let status: RunStatus = "failed";
      let error: string | undefined;
      let requeued: "retry" | "released" | "lost" | undefined;
      let eventsLost: string | undefined;
      /** The run's recorder took over (its flow loaded, its start recorded). */
      let recorderStarted = false;
      try {
        const here = await flowFileHere(run, findFlow);
        const record = await runClaimed(host, {
          record: run,
          ...(here === undefined ? {} : { flowPath: here }),
          heartbeatMs: this.#s.heartbeatMs,
          released: () => this.#releasing,
          lost: lost.signal,
          guard: lease,
        }, {
          ...defaults,
          ...(this.#s.onRunEvent === undefined ? {} : { onEvent: this.#s.onRunEvent }),
          signal: cancel.signal,
          onStart: () => {
            recorderStarted = true;
            untrack();
          },
        }).catch((err) => {
          if (!(err instanceof RunEventsNotRecordedError)) throw err;
          // Its end is stored, only some of its events are missing: that end stands.
          eventsLost = err.message;
          return err.record;
        });
        status = record.status;
        if (record.error) error = record.error.message;
        if (eventsLost !== undefined) {
          error = error === undefined ? eventsLost : `${error}; ${eventsLost}`;
        }
        requeued = this.#releasing && status === "cancelled"
          ? "released"
          : willRetry(record)
          ? "retry"
          : undefined;
        if (requeued === "released") this.#released++;
      } catch (err) {
        if (err instanceof RunNotOwnedError || err instanceof RunEndNotRecordedError) {
          // Not recorded within the claim's lease: recording it failed now would say a run
          // that may have succeeded failed. Its claim lapses; a worker takes it back and runs it
          // again (at least once), its attempt recorded lost.
          error = err.message;
          requeued = "lost";
        } else if (err instanceof StoreUnavailableError && !recorderStarted) {
          // The run did not start (its store did not answer: an outage, a connection limit):
          // nothing of it ran, so it goes back to the queue, not counted, due a little later,
          // rather than failing for good. Should that fail too, its lease lapses (taken back).
          error = messageOf(err);
          status = "cancelled";
          try {
            if (
              await this.#giveBack(
                records,
                run,
                UNAVAILABLE_RETRY_MS,
                `its store did not answer: ${error}`,
              )
            ) {
              requeued = "released";
            }
          } catch (e) {
            this.#s.onEvent({ type: "error", message: `run ${run.id}: ${messageOf(e)}` });
          }
        } else {
          // The flow could not even start (its file is gone or invalid): that attempt failed.
          error = messageOf(err);
          const now = Date.now();
          const failed: RunRecord = {
            ...run,
            status: "failed",
            endedAt: now,
            durationMs: Math.max(0, now - run.startedAt),
            error: { message: error },
          };
          try {
            await records.finishClaimedRun(failed);
            if (willRetry(failed)) requeued = "retry";
            // Its last attempt: the config's `runs.onFailure` flow (it checks the stored end).
            else await notifyRunEnded(this.#rt, failed);
          } catch (e) {
            this.#s.onEvent({ type: "error", message: `run ${run.id}: ${messageOf(e)}` });
          }
        }
      } finally {
        untrack();
        beating.abort("the attempt ended"); // not the default reason: a DOMException per run
        await beat;
        this.#inFlight.delete(flight);
        this.#claimsChanged = true;
        this.#s.onEvent({
          type: "end",
          runId: run.id,
          flowId: run.flowId,
          attempt,
          status,
          durationMs: Math.round(performance.now() - started),
          ...(requeued === undefined ? {} : { requeued }),
          ...(error === undefined ? {} : { error }),
        });
        this.#wakeUp(); // a slot is free
      }
    })();
    flight.done = done;
    this.#inFlight.add(flight);
    this.#claimsChanged = true;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.#stopped ??= this.#stop(options.graceMs ?? this.#rt.config.runs.abortGraceMs ?? 5_000);
    return this.#stopped;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#unlisten?.();
    this.#stopping = true;
    if (this.#status !== "stopped") this.#status = "stopping";
    this.#halt.abort();
    this.#wakeUp();
    await this.#loop;
    const records = this.#records;
    if (this.#inFlight.size > 0) {
      this.#s.onEvent({ type: "stopping", running: this.#inFlight.size, graceMs });
      const all = Promise.all([...this.#inFlight.values()].map((f) => f.done));
      let ended = false;
      void all.then(() => ended = true);
      // The registry entry says it is stopping, and keeps its heartbeat through the grace period.
      if (records !== undefined) await this.#beat(records);
      const deadline = Date.now() + graceMs;
      while (!ended && Date.now() < deadline) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const until = records === undefined ? deadline : Math.min(deadline, this.#nextBeatAt());
        await Promise.race([
          all,
          // A registry write that took longer than its interval leaves `until` behind: no wait.
          new Promise<void>((resolve) =>
            timer = setTimeout(resolve, Math.max(0, until - Date.now()))
          ),
        ]);
        clearTimeout(timer);
        if (!ended && records !== undefined) await this.#beatIfDue(records);
      }
      if (!ended) {
        this.#releasing = true;
        for (const f of this.#inFlight.values()) f.cancel.abort("the worker is stopping");
        await all;
      }
    }
    if (records !== undefined) {
      // Fold this worker's metrics shards (and any other's) into the metrics entries.
      await this.#compactMetrics(records);
      await this.#unregister(records);
    }
    this.#status = "stopped";
    if (!this.#fatal) this.#error = undefined;
    this.#s.onEvent({ type: "stop", released: this.#released });
  }

  /**
   * Whether `err` says its records store was closed under it (its runtime closed before the
   * worker stopped): then no later poll or write can work, and the worker stops, told once
   * (a fatal `error`), as one that cannot start does.
   */
  #closedUnder(err: unknown): boolean {
    if (!(err instanceof StoreClosedError)) return false;
    if (this.#fatal) return true;
    this.#fatal = true;
    this.#error = messageOf(err);
    this.#s.onEvent({
      type: "error",
      message: `the worker stops: ${messageOf(err)} (stop a worker before closing its runtime)`,
      fatal: true,
    });
    this.#records = undefined; // nothing more can be written there
    void this.stop().catch(() => {});
    return true;
  }

  /** `Records.compactMetrics()`; a failure is reported, never fatal (readers merge shards). */
  async #compactMetrics(records: Records): Promise<void> {
    try {
      await records.compactMetrics();
    } catch (err) {
      if (this.#closedUnder(err)) return;
      this.#s.onEvent({ type: "error", message: `cannot compact metrics: ${messageOf(err)}` });
    }
  }
}

/**
 * The lease of one claim as this process knows it: it ends `leaseMs` after
 * the claim or its last heartbeat confirmed by the store, by the clock the
 * heartbeats are written with (the one other workers judge the lease by).
 * Past that end, the claim is taken as lost (`onLost`), whatever a later
 * heartbeat says: another worker may have taken the run back meanwhile.
 * Asked by every state call of the attempt: one clock reading, no round trip.
 */
class ClaimLease implements RunGuard {
  readonly #leaseMs: number;
  readonly #clock: Clock;
  readonly #onLost: () => void;
  #endsAt: number;
  #refused: string | undefined;

  constructor(run: RunRecord, leaseMs: number, clock: Clock, onLost: () => void) {
    this.#leaseMs = leaseMs;
    this.#clock = clock;
    this.#onLost = onLost;
    this.#endsAt = (run.queue?.claim?.at ?? clock.now()) + leaseMs;
  }

  /** A heartbeat written at `at` was confirmed: the lease ends `leaseMs` after it. */
  renewed(at: number): void {
    if (this.#refused === undefined) this.#endsAt = Math.max(this.#endsAt, at + this.#leaseMs);
  }

  refusal(): string | undefined {
    if (this.#refused !== undefined || this.#clock.now() < this.#endsAt) return this.#refused;
    this.#refused = `its claim on the run lapsed at ${
      new Date(this.#endsAt).toISOString()
    } (no heartbeat confirmed within the ${this.#leaseMs} ms lease: the process was paused or its store unreachable), and another worker may run it`;
    this.#onLost();
    return this.#refused;
  }
}

/** Whether a run that ended this way goes back to the queue for another attempt. */
function willRetry(record: RunRecord): boolean {
  const q = record.queue;
  if (q === undefined || (record.status !== "failed" && record.status !== "timed-out")) {
    return false;
  }
  const failed = q.attempts.filter((a) => a.outcome !== "lost" && a.outcome !== "succeeded")
    .length + 1;
  return failed < q.maxAttempts;
}

/** The store's wake-ups, when it carries them across processes (`Store.listen`: postgres). */
function notifierOf(store: Store): QueueNotifier | undefined {
  if (typeof store.listen !== "function") return undefined;
  return { listen: (wake) => store.listen!(QUEUE_TOPIC, wake) };
}

/** The `lost` event of runs taken back: which of them ended (cancelled, or lost too often) there. */
async function lostEvent(records: Records, runIds: string[]): Promise<WorkerEvent> {
  const ended: { runId: string; status: RunStatus }[] = [];
  for (const run of await Promise.all(runIds.map((id) => records.getRun(id)))) {
    // Queued again (and maybe claimed again at once, by any worker): not ended here. Ended here:
    // its last attempt is the lost one.
    if (
      run !== null && (run.status === "cancelled" || run.status === "failed") &&
      run.queue?.attempts.at(-1)?.outcome === "lost"
    ) {
      ended.push({ runId: run.id, status: run.status });
    }
  }
  return ended.length === 0 ? { type: "lost", runIds } : { type: "lost", runIds, ended };
}

/**
 * The file to run a claimed run's flow from when the file its record names
 * (`queue.flowPath`: absolute, as the enqueuing process found it) is not on
 * this machine: the file among this worker's `flows:` with the run's flow id.
 * A run enqueued on another machine whose checkout is elsewhere (`enqueue`
 * anywhere, workers anywhere, one store), or before a deploy into a new
 * release folder that removed the old one, runs the worker's file of that
 * flow. `undefined`: run the recorded file (it is there, it cannot be looked
 * at, or no file of the config's has that id: loading it says what is wrong).
 */
async function flowFileHere(
  run: RunRecord,
  findFlow: (flowId: string) => Promise<string>,
): Promise<string | undefined> {
  const recorded = run.queue?.flowPath;
  if (recorded === undefined || recorded === "") return undefined;
  try {
    await Deno.stat(recorded);
    return undefined;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) return undefined;
  }
  return await findFlow(run.flowId).catch(() => undefined);
}
