/**
 * The one run recorder: how a flow run and a job run alike are recorded while
 * they happen. {@linkcode RunRecorder.start} reads the clock once for the run
 * id and `startedAt` and writes the `running` record; {@linkcode
 * RunRecorder.event} buffers events and appends them in batches (every
 * {@linkcode EVENT_BATCH_SIZE} events or {@linkcode EVENT_BATCH_MS} ms, at the
 * next event or by a timer when none follows, so a
 * crash loses at most the last batch and a log line reaches the store within
 * a fraction of a second); {@linkcode RunRecorder.finish} writes the last
 * batch with the final status in one commit (see `Records.finishRun`).
 *
 * A node's output is recorded in the run's end; an event batch keeps beside
 * it the outputs of the nodes whose `node.end` it holds too (each of at most
 * {@linkcode KEPT_OUTPUT_BYTES}, a batch's together at most
 * {@linkcode KEPT_BATCH_OUTPUT_BYTES}), so that a run whose process dies
 * before its end (kill -9, a lost machine) keeps the outputs of the nodes
 * that ended: recorded when the run is found abandoned, reused by a run
 * resuming it (see `resume.ts`). A run that finishes inlines its events and
 * drops those chunks (see `Records.finishRun`); a longer run's chunks keep
 * them until its events are deleted.
 *
 * While the run lives, the recorder writes its heartbeat (`heartbeatAt`)
 * every {@linkcode HEARTBEAT_MS} (see `heartbeat.ts`), so that a run whose
 * process died is told from a long live one. The final commit is retried
 * with backoff ({@linkcode FINISH_RETRY_DELAYS_MS}: 5 tries over 7.5 s)
 * when the store fails (a lock timeout, a full disk, a server gone); if it
 * never succeeds, `finish` throws a {@linkcode RunEndNotRecordedError}, the
 * heartbeat has stopped, and the run is later found abandoned.
 *
 * Every recorder is known to its process from its start (or adoption) to the
 * end of `finish` (or `close`): {@linkcode RunRecorder.interruptAll} records
 * the end of every run still in flight, at once, without waiting for its
 * nodes: what a process told to exit at once (a second Ctrl-C or SIGTERM)
 * does before it exits, so that it leaves no run `running`.
 *
 * @module
 */
import { type Clock, realTimers, type Timers } from "../clock.ts";
import { FlowstateError, messageOf } from "../errors.ts";
import type { JsonValue } from "../store/types.ts";
import type { Records } from "./records.ts";
import { HEARTBEAT_MS } from "./heartbeat.ts";
import { currentOwner, runGivenUp, setRunsInFlightHere } from "./owner.ts";
import { newRunId } from "./run_id.ts";
import { NodeOutcomes } from "./_node_outcomes.ts";
import type { KeptOutputsMasker, QueueInfo, RunEvent, RunRecord } from "./types.ts";

/**
 * Events appended per batch at most.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EVENT_BATCH_MS, EVENT_BATCH_SIZE } from "@flowstate/core/records";
 *
 * // a run's node events reach the store at least every 200 ms or 200 events
 * assert.equal(EVENT_BATCH_SIZE, 200);
 * assert.equal(EVENT_BATCH_MS, 200);
 * ```
 */
export const EVENT_BATCH_SIZE = 200;
/**
 * A batch is appended once its oldest event is this old (ms), at the next event.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EVENT_BATCH_MS, HEARTBEAT_MS } from "@flowstate/core/records";
 *
 * assert.ok(EVENT_BATCH_MS < HEARTBEAT_MS); // events are never staler than a heartbeat
 * ```
 */
export const EVENT_BATCH_MS = 200;

/**
 * The largest output (bytes of its JSON text, as `NodeEndEvent.outputBytes`)
 * an event batch keeps beside a node's `node.end` (see the module's
 * documentation): a larger one is recorded only in the run's end, and is
 * lost with a process that dies first.
 */
const KEPT_OUTPUT_BYTES = 256 * 1024;
/** The outputs one event batch keeps at most, together (bytes of their JSON text). */
const KEPT_BATCH_OUTPUT_BYTES = 2 * 1024 * 1024;

/**
 * Waits before each retry of a run's final commit, in ms: five tries in all,
 * over 7.5 s, long enough to ride out a lock held by a slow writer or a
 * restarting server, short enough that a process does not hang on a store
 * that is gone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FINISH_RETRY_DELAYS_MS } from "@flowstate/core/records";
 *
 * assert.equal(FINISH_RETRY_DELAYS_MS.length + 1, 5); // tries in all
 * assert.equal(FINISH_RETRY_DELAYS_MS.reduce((a, b) => a + b, 0), 7_500);
 * ```
 */
export const FINISH_RETRY_DELAYS_MS: readonly number[] = [500, 1_000, 2_000, 4_000];

/**
 * How a {@linkcode RunRecorder} works (tests shorten its waits).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, Records, RunRecorder, type RunRecorderOptions } from "@flowstate/core/records";
 * import { fakeClock, manualTimers } from "@flowstate/core/testing";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * const clock = fakeClock(Date.UTC(2026, 0, 1));
 * const timers = manualTimers(clock); // heartbeats fire only when the test moves the clock
 * const options: RunRecorderOptions = { timers, heartbeatMs: 1_000 };
 * const recorder = await RunRecorder.start(records, clock, {
 *   flowId: "hello",
 *   flowVersion: "job",
 *   inputs: {},
 * }, options);
 * await timers.advance(1_000);
 * assert.equal((await records.getRun(recorder.id))?.heartbeatAt, Date.UTC(2026, 0, 1, 0, 0, 1));
 * await recorder.finish({ status: "succeeded", outputs: {}, nodes: {}, error: null });
 * ```
 */
export interface RunRecorderOptions {
  /** Timers for heartbeats and retry waits (default: real ones). */
  timers?: Timers;
  /** How often the heartbeat is written, in ms (default {@linkcode HEARTBEAT_MS}). */
  heartbeatMs?: number;
  /** Waits before each retry of the final commit (default {@linkcode FINISH_RETRY_DELAYS_MS}). */
  finishRetryDelaysMs?: readonly number[];
  /**
   * Called once when a cancel request for the run is found in the records
   * (`Records.requestCancel`, from another process); the recorder then
   * stops looking. Without it the recorder does not look.
   */
  onCancelRequested?: () => void;
  /** How often the cancel request is looked for, in ms (default {@linkcode CANCEL_POLL_MS}). */
  cancelPollMs?: number;
  /**
   * How the end is committed (default `Records.finishRun`); a claimed queued
   * run's is `Records.finishClaimedRun`. Resolving `false` means the run is
   * no longer this process's to finish: `finish` then throws a
   * {@linkcode RunNotOwnedError}. `how.interrupted` is set when the end is
   * the one {@linkcode RunRecorder.interruptAll} records (the process is
   * exiting at once: a claimed run then goes back to the queue, due only
   * `how.requeueAfterMs` from now, since the process still runs its nodes
   * until it exits).
   */
  commit?: (
    record: RunRecord,
    events: RunEvent[],
    how?: { interrupted: boolean; requeueAfterMs?: number },
  ) => Promise<boolean | void>;
  /**
   * The run's node ids, when they are known in advance (a flow's): what the
   * recorder keeps of each node (for an end {@linkcode RunRecorder.interruptAll}
   * records) is then kept by position, more cheaply. Pass the same array for
   * every run of the same flow. Events of other nodes are kept all the same.
   */
  nodeIds?: readonly string[];
  /**
   * For a claimed run: aborted by whoever else keeps the claim's lease (a
   * queue worker) when it finds the claim gone. The recorder then acts as
   * when its own heartbeat finds it gone (see {@linkcode RunRecorder.adopt}):
   * no more events are written, `onCancelRequested` is called, and `finish`
   * throws a {@linkcode RunNotOwnedError}.
   */
  lost?: AbortSignal;
  /**
   * For a claimed run: once the waits of `finishRetryDelaysMs` are used up,
   * the final commit keeps being retried (after the last wait each time) for
   * as long as this returns `true`: while the claim's lease holds, the run is
   * still this process's to finish, and giving up would have it recorded
   * failed, or taken back and run again, though it ended. A queue worker
   * passes its lease's check.
   */
  retryFinishWhile?: () => boolean;
}

/** The default wait of {@linkcode RunRecorder.interruptAll}, in ms: what a process waits before it exits anyway. */
export const INTERRUPT_TIMEOUT_MS = 1_500;

/**
 * How much later than the exit bound of {@linkcode RunRecorder.interruptAll}
 * a claimed run it gives back to the queue comes due, in ms: time for the
 * process to exit (its nodes stopped) and for clocks that differ a little
 * between hosts, so that no other worker runs it while this one still does.
 */
export const REQUEUE_MARGIN_MS = 1_000;

/** What the recorder's `commit` is told of an end {@linkcode RunRecorder.interruptAll} records. */
type InterruptedEnd = NonNullable<Parameters<NonNullable<RunRecorderOptions["commit"]>>[2]>;

/**
 * What {@linkcode RunInFlight.interrupt} found: `true`, the run is recorded
 * ended (by it or meanwhile); `false`, its end could not be recorded (it stays
 * `running`, found abandoned later); `"elsewhere"`, the run is not this
 * process's any more (its claim lapsed and another worker holds it now).
 */
export type InterruptOutcome = boolean | "elsewhere";

/**
 * A run this process is in charge of, that it would leave `running` if it
 * exited now: what {@linkcode RunRecorder.interruptAll} ends.
 */
export interface RunInFlight {
  /** The run's id. */
  readonly id: string;
  /**
   * Record its end now, once, without waiting for its nodes (and stop them);
   * a claimed run given back to the queue is due only after
   * `requeueAfterMs`. Resolves what it found (see {@linkcode InterruptOutcome}).
   */
  interrupt(reason: string, options: { requeueAfterMs: number }): Promise<InterruptOutcome>;
}

/**
 * The `commit` of a claimed run's recorder: `Records.finishClaimedRun`. A
 * run cancelled because its worker stops (`released()`) or because the
 * process exits at once goes back to the queue; in the latter case it is due
 * only after `requeueAfterMs`, since this process still runs it until it
 * exits.
 */
export function claimedRunCommit(
  records: Records,
  released?: () => boolean,
): NonNullable<RunRecorderOptions["commit"]> {
  return (record, events, how) =>
    records.finishClaimedRun(record, events, {
      release: record.status === "cancelled" &&
        (how?.interrupted === true || released?.() === true),
      ...(how?.requeueAfterMs === undefined ? {} : { releaseAfterMs: how.requeueAfterMs }),
    });
}

/** The runs of this process that have not ended yet: every recorder's, and claims not yet started. */
const inFlight = new Set<RunInFlight>();
setRunsInFlightHere((id) => {
  for (const run of inFlight) if (run.id === id) return true;
  return false;
});
/** How many {@linkcode RunRecorder.interruptAll} calls are under way: no run starts meanwhile. */
let exiting = 0;

/**
 * Count `run` among this process's runs in flight (see
 * {@linkcode RunRecorder.interruptAll}) until the function returned is
 * called. Every recorder counts its own; a queue worker counts a run it
 * claimed until the run's recorder takes over.
 */
export function trackRunInFlight(run: RunInFlight): () => void {
  inFlight.add(run);
  return () => inFlight.delete(run);
}

/**
 * A run's end was not recorded because the run is no longer this process's:
 * it was claimed from the queue and its lease lapsed meanwhile, so another
 * worker took it back; or its record is gone (`gone`: deleted meanwhile, by
 * `restore --force` into its store, say).
 *
 * @example
 * ```ts
 * import { RunNotOwnedError } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const err = new RunNotOwnedError("0mjuw3ms0abcdefghijk");
 * assert.equal(err.code, "RUN_NOT_OWNED");
 * ```
 */
export class RunNotOwnedError extends FlowstateError {
  /** Always `"RUN_NOT_OWNED"`. */
  readonly code = "RUN_NOT_OWNED" as const;
  /** The run. */
  readonly runId: string;
  /** Whether the run's record was gone, rather than taken by another worker. */
  readonly gone: boolean;
  /** The run `runId` was taken back by the queue (or, with `gone`, its record was deleted). */
  constructor(runId: string, options: { gone?: boolean } = {}) {
    super(
      options.gone
        ? `Cannot record the end of run ${runId}: its record is gone (deleted while it ran: a ` +
          `restore --force into its store, or a person); this attempt's end is not recorded`
        : `Cannot record the end of run ${runId}: its claim lapsed (no heartbeat recorded within its lease); a worker takes the run back and runs it again (this attempt is recorded as lost)`,
    );
    this.name = "RunNotOwnedError";
    this.runId = runId;
    this.gone = options.gone ?? false;
  }
}

/**
 * A run's end was recorded (`record`, as stored), but an earlier batch of its
 * events could not be appended (`cause`): the run is over, only its event log
 * has a gap. Not exported: callers see an `Error` with this message; a worker
 * reports the run's stored status, and does not record it again.
 */
export class RunEventsNotRecordedError extends Error {
  override name = "RunEventsNotRecordedError";
  /** The run's end, as stored. */
  readonly record: RunRecord;
  /** The end `record` was stored; appending events failed earlier with `cause`. */
  constructor(record: RunRecord, cause: unknown) {
    super(
      `Run ${record.id} finished ${record.status} but some of its events could not be recorded`,
      { cause },
    );
    this.record = record;
  }
}

/** How often a running run's process looks for a cancel request from another process, in ms. */
export const CANCEL_POLL_MS = 1_000;

/**
 * A run's end could not be recorded: its final commit failed on every try.
 * The run stays recorded as `running`; its heartbeat has stopped, so it is
 * found abandoned later (`gc`, or a surviving daemon for a scheduled tick).
 *
 * @example
 * ```ts
 * import { RunEndNotRecordedError } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const err = new RunEndNotRecordedError("0mjuw3ms0abcdefghijk", "succeeded", 5, new Error("disk full"));
 * assert.match(err.message, /disk full/);
 * assert.match(err.message, /found abandoned/);
 * ```
 */
export class RunEndNotRecordedError extends FlowstateError {
  /** Always `"RUN_END_NOT_RECORDED"`. */
  readonly code = "RUN_END_NOT_RECORDED" as const;
  /** The run. */
  readonly runId: string;
  /** The status it should have been recorded with. */
  readonly status: RunRecord["status"];
  /** Tries made. */
  readonly attempts: number;

  /**
   * The run `runId` ended `status`, and `attempts` tries to record it failed,
   * the last with `cause`; `claimed` when it is a queued run whose claim
   * lapsed meanwhile.
   */
  constructor(
    runId: string,
    status: RunRecord["status"],
    attempts: number,
    cause: unknown,
    claimed = false,
  ) {
    super(
      `Cannot record the end of run ${runId} (${status}): ${attempts} tries failed, the last with: ${
        messageOf(cause)
      }. ${
        claimed
          ? "Its claim lapsed meanwhile, so a worker takes it back (its attempt recorded lost) and it runs again"
          : "The run stays recorded as running with no heartbeat, so it will be found abandoned (gc records it failed)"
      }; check the records store`,
      { cause },
    );
    this.name = "RunEndNotRecordedError";
    this.runId = runId;
    this.status = status;
    this.attempts = attempts;
  }
}

/**
 * What a new run is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, Records, RunRecorder, type RunStart } from "@flowstate/core/records";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * const start: RunStart = { flowId: "import", flowVersion: "job", inputs: { file: "a.csv" } };
 * const recorder = await RunRecorder.start(records, { now: () => Date.now() }, start);
 * assert.equal((await records.getRun(recorder.id))?.status, "running");
 * await recorder.finish({ status: "cancelled", outputs: null, nodes: {}, error: null });
 * ```
 */
export interface RunStart {
  /** The flow's id (`job:<name>` for a job). */
  flowId: string;
  /** The flow version's hash (`"job"` for a job). */
  flowVersion: string;
  /** Inputs after defaults and type checks. */
  inputs: Record<string, JsonValue>;
  /** The parent run, for sub-flows. */
  parentRunId?: string;
  /** The run this run reports on, for a run of the config's `runs.onFailure` flow. */
  onFailureOf?: string;
  /** The run this run resumes (see `RunRecord.resumeOf`). */
  resumeOf?: string;
  /** Whether `inputs` had a secret's value masked (see `RunRecord.inputsMasked`). */
  inputsMasked?: true;
  /** Whether a test's mocks stood in for nodes of the run (see `RunRecord.mocked`). */
  mocked?: true;
  /** The tick's time, for a run a schedule started (see `RunRecord.scheduledAt`). */
  scheduledAt?: number;
  /** The schedule's id, for a run a schedule started (see `RunRecord.schedule`). */
  schedule?: string;
  /** The queue's part of the record, for a run claimed from the queue. */
  queue?: QueueInfo;
}

/**
 * Records one run while it happens.
 *
 * @example
 * ```ts
 * import { openStore, Records, RunRecorder } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * const clock = { now: () => Date.UTC(2026, 0, 1) };
 * const recorder = await RunRecorder.start(records, clock, {
 *   flowId: "hello",
 *   flowVersion: "job",
 *   inputs: {},
 * });
 * recorder.event({ at: clock.now(), type: "run.start" });
 * const run = await recorder.finish({ status: "succeeded", outputs: {}, nodes: {}, error: null });
 * assert.equal(run.startedAt, Date.UTC(2026, 0, 1));
 * assert.equal((await records.getRun(run.id))?.status, "succeeded");
 * assert.equal((await records.getEvents(run.id)).length, 1);
 * ```
 */
export class RunRecorder {
  /** The run's id. */
  readonly id: string;
  /** When it started (the time its id encodes). */
  readonly startedAt: number;
  readonly #records: Records;
  readonly #clock: Clock;
  readonly #start: RunStart;
  #buffer: RunEvent[] = [];
  /**
   * The outputs kept beside `#buffer`'s `node.end` events and their nodes,
   * in two lists (made on the first): JSON text of arrays is made on V8's
   * fast path, that of an object keyed by node id (a dictionary) is not.
   */
  #outputs: { nodes: string[]; outputs: JsonValue[]; masked?: string[] } | undefined;
  /** The bytes of `#outputs`' JSON texts. */
  #outputBytes = 0;
  /** The run's secret masker (`secretsAdded`), and its size when the outputs were last masked. */
  #masker: (KeptOutputsMasker & { readonly size: number }) | undefined;
  #maskedSize = 0;
  #lastFlush: number;
  #flushing: Promise<void> = Promise.resolve();
  #flushError: unknown;
  #flushTimer = false;
  readonly #timers: Timers;
  readonly #retryDelays: readonly number[];
  readonly #retryWhile: (() => boolean) | undefined;
  readonly #stopBeating = new AbortController();
  #beating: Promise<void> = Promise.resolve();
  #watching: Promise<void> = Promise.resolve();
  readonly #commit: NonNullable<RunRecorderOptions["commit"]>;
  /** The nodes seen so far (from their events), for an end recorded by `interruptAll`. */
  readonly #nodes: NodeOutcomes;
  /** The end `finish` is committing, once it has made it. */
  #ending: { record: RunRecord; events: RunEvent[] } | undefined;
  #interrupted: Promise<InterruptOutcome> | undefined;
  /** The save of the `running` record (`start`): an interrupt waits for it before it records the end. */
  #started: Promise<void> = Promise.resolve();
  /** Stops the run (its `onCancelRequested`), once, whoever asks first. */
  readonly #stopRun: (() => void) | undefined;
  /** This run, as {@linkcode RunRecorder.interruptAll} sees it. */
  readonly #tracked: RunInFlight;
  /** The claim this recorder's heartbeat extends (a run claimed from the queue). */
  #claim: RunRecord | undefined;
  /** The claim is no longer this attempt's: nothing more is written for the run. */
  #lost = false;

  private constructor(
    records: Records,
    clock: Clock,
    start: RunStart,
    startedAt: number,
    options: RunRecorderOptions,
    id?: string,
  ) {
    this.#records = records;
    this.#clock = clock;
    this.#start = start;
    this.startedAt = startedAt;
    this.id = id ?? newRunId(startedAt);
    this.#tracked = {
      id: this.id,
      interrupt: (reason, how) => this.#interrupt(reason, how.requeueAfterMs),
    };
    const notify = options.onCancelRequested;
    let told = false;
    // Once, whichever finds it first: the cancel poll, a heartbeat, or `interruptAll`.
    this.#stopRun = notify === undefined ? undefined : () => {
      if (told) return;
      told = true;
      notify();
    };
    this.#commit = options.commit ?? ((record, events) => records.finishRun(record, events));
    // From now, not from `startedAt`: a claimed run's `startedAt` is when it
    // was enqueued, and its first event would otherwise be appended at once
    // (a commit of its own) instead of with the others.
    this.#lastFlush = Math.max(startedAt, clock.now());
    this.#timers = options.timers ?? realTimers;
    this.#nodes = new NodeOutcomes(options.nodeIds);
    this.#retryDelays = options.finishRetryDelaysMs ?? FINISH_RETRY_DELAYS_MS;
    this.#retryWhile = options.retryFinishWhile;
  }

  /**
   * Read the clock once, make the run's id, record the run as `running`
   * (with its first heartbeat), and start writing its heartbeat.
   */
  static async start(
    records: Records,
    clock: Clock,
    start: RunStart,
    options: RunRecorderOptions = {},
  ): Promise<RunRecorder> {
    const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
    if (!(heartbeatMs > 0) || !Number.isFinite(heartbeatMs)) {
      throw new RangeError(`Cannot start a run: heartbeatMs must be > 0 (got ${heartbeatMs})`);
    }
    if (exiting > 0) {
      throw new Error(
        `Cannot start a run of ${start.flowId}: the process is exiting at once (a second stop signal); no run starts now`,
      );
    }
    const recorder = new RunRecorder(records, clock, start, clock.now(), options);
    // In flight from before its save: an `interruptAll` that comes meanwhile waits for the save,
    // then records the run cancelled, rather than leave it `running` once the save lands.
    inFlight.add(recorder.#tracked);
    recorder.#started = records.startRun({
      ...recorder.#record({ status: "running", outputs: null, nodes: {}, error: null }, null),
      heartbeatAt: recorder.startedAt,
      // Who runs it, in the same write: a reader on this machine can tell a dead process at once.
      owner: currentOwner(),
    });
    try {
      await recorder.#started;
    } catch (err) {
      inFlight.delete(recorder.#tracked);
      throw err;
    }
    recorder.#watch(heartbeatMs, options);
    return recorder;
  }

  /**
   * Record a run that is already recorded `running` (a run a worker claimed
   * from the queue): same id and start, no new record; heartbeats and the
   * cancel watch start as for {@linkcode RunRecorder.start}. For a claimed
   * `run` (`run.queue.claim`), each heartbeat is `Records.heartbeatClaim`:
   * once it finds the claim no longer this attempt's (its lease lapsed and
   * another worker took the run back, the attempt recorded `lost`), the
   * recorder stops: `onCancelRequested` is called so the run stops, no more
   * of its events are written, and `finish` throws a
   * {@linkcode RunNotOwnedError} without writing anything.
   */
  static adopt(
    records: Records,
    clock: Clock,
    run: RunRecord,
    start: RunStart,
    options: RunRecorderOptions = {},
  ): RunRecorder {
    const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
    if (!(heartbeatMs > 0) || !Number.isFinite(heartbeatMs)) {
      throw new RangeError(`Cannot adopt a run: heartbeatMs must be > 0 (got ${heartbeatMs})`);
    }
    const recorder = new RunRecorder(records, clock, start, run.startedAt, options, run.id);
    if (run.queue?.claim !== undefined) recorder.#claim = run;
    recorder.#watch(heartbeatMs, options);
    return recorder;
  }

  #watch(heartbeatMs: number, options: RunRecorderOptions): void {
    // Interrupted while its start was being saved: nothing to watch (its end is being recorded).
    if (this.#interrupted !== undefined) return;
    inFlight.add(this.#tracked);
    const stopRun = this.#stopRun;
    const lost = options.lost;
    if (lost?.aborted) this.#lose(stopRun);
    else {
      lost?.addEventListener("abort", () => this.#lose(stopRun), {
        once: true,
        signal: this.#stopBeating.signal,
      });
    }
    this.#beating = this.#beat(heartbeatMs, stopRun);
    if (stopRun !== undefined) {
      const pollMs = options.cancelPollMs ?? CANCEL_POLL_MS;
      if (!(pollMs > 0) || !Number.isFinite(pollMs)) {
        throw new RangeError(`Cannot start a run: cancelPollMs must be > 0 (got ${pollMs})`);
      }
      this.#watching = this.#watchCancel(pollMs, stopRun);
    }
  }

  /**
   * Write the heartbeat every `ms` until stopped; a beat that fails is left to
   * the next. A beat that finds the run ended by someone else (recorded
   * abandoned by a cancel that took this process for gone: a paused process,
   * a clock ahead of this one) calls `endedElsewhere`, so the run stops
   * instead of going on with nobody to record it. So does a claimed run's
   * beat that finds the claim gone (a paused process whose lease lapsed: the
   * run may be running again under another worker, and must not run twice).
   * Once the attempt is lost (that, or its worker saw its lease run out), no
   * more beats: renewing a claim this process gave up would keep every other
   * worker from taking the run back for as long as the attempt takes to stop.
   */
  async #beat(ms: number, endedElsewhere?: () => void): Promise<void> {
    const stop = this.#stopBeating.signal;
    while (!stop.aborted) {
      try {
        await this.#timers.sleep(ms, stop);
      } catch {
        return; // Stopped.
      }
      if (this.#lost) return;
      // A secret made known while no event came (a node's `ctx.mask`, then a long wait).
      this.#remask();
      try {
        const claim = this.#claim;
        if (claim !== undefined) {
          // `false` means the claim is not this attempt's any more (see heartbeatClaim).
          if (await this.#records.heartbeatClaim(claim, this.#clock.now())) continue;
          if (!stop.aborted) this.#lose(endedElsewhere);
          return;
        }
        if (await this.#records.heartbeat(this.id, this.#clock.now())) continue;
        // Not written: the record changed meanwhile, or the run is no longer running.
        const run = await this.#records.getRun(this.id);
        if (!stop.aborted && (run === null || run.status !== "running")) {
          endedElsewhere?.();
          return;
        }
      } catch {
        // The store is busy or failing: the next beat tries again. Four missed
        // beats are needed before anyone calls the run abandoned.
      }
    }
  }

  /**
   * The claim is not this attempt's any more: write nothing more for the run (its events would
   * mix with the other attempt's) and stop it.
   */
  #lose(stopRun?: () => void): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#buffer = [];
    this.#dropOutputs();
    // Not this process's run any more: `interruptAll` has no end to record for it.
    inFlight.delete(this.#tracked);
    stopRun?.();
  }

  /** Look for a cancel request every `ms` until one is found or the run ends. */
  async #watchCancel(ms: number, found: () => void): Promise<void> {
    const stop = this.#stopBeating.signal;
    while (!stop.aborted) {
      try {
        await this.#timers.sleep(ms, stop);
      } catch {
        return; // The run ended.
      }
      let requested = false;
      try {
        requested = await this.#records.cancelRequested(this.id);
      } catch {
        // The store is busy or failing: look again at the next poll.
      }
      if (requested && !stop.aborted) {
        found();
        return;
      }
    }
  }

  /**
   * Stop the heartbeat without recording an end (the run stays `running`
   * and is found abandoned later). `finish` does this itself; call it when
   * a run is given up without `finish`.
   */
  async close(): Promise<void> {
    // Given up while this process lives on: readers judge it by its heartbeat, not by this process.
    if (inFlight.delete(this.#tracked)) runGivenUp(this.id);
    await this.#stopWatching();
  }

  async #stopWatching(): Promise<void> {
    // A reason of its own: the default one is a DOMException, costly to make once per run.
    this.#stopBeating.abort("the run ended");
    await this.#beating;
    await this.#watching;
  }

  /**
   * Record the end of every run this process is recording, at once, without
   * waiting for its nodes: what a process told to exit at once (a second
   * Ctrl-C or SIGTERM) does before it exits, so that no run is left
   * `running`. A run whose end `finish` was already committing is recorded
   * with that end; any other is recorded `cancelled` with `reason` as its
   * error (the nodes seen so far with their status, the ones still going as
   * `cancelled`), and a run claimed from the queue goes back to the queue,
   * due only once this call's bound is past (plus {@linkcode
   * REQUEUE_MARGIN_MS}), so that no other worker runs it while this process
   * still does. Each run is told to stop (its `onCancelRequested`), and its
   * heartbeat stops. A run whose start is still being saved is waited for,
   * then recorded `cancelled`; no run starts until this call resolves
   * (`start` throws). One try per run, all at once, for at most `timeoutMs`
   * ({@linkcode INTERRUPT_TIMEOUT_MS} by default). Resolves the ids of the
   * runs whose end is recorded (or that had ended meanwhile), of those whose
   * end is not (they stay `running` with no heartbeat, and are found
   * abandoned later), and of those that another worker holds now (their
   * claim lapsed: not this process's to record).
   *
   * @example
   * ```ts
   * import { openStore, Records, RunRecorder } from "@flowstate/core/records";
   * import assert from "node:assert/strict";
   * await using store = await openStore({ plugin: "memory" });
   * const records = new Records(store);
   * const clock = { now: () => Date.now() };
   * const run = await RunRecorder.start(records, clock, { flowId: "f", flowVersion: "job", inputs: {} });
   * run.event({ at: clock.now(), type: "node.start", node: "wait" });
   * // The process is told to exit at once: its run is not left running.
   * const { ended, notEnded } = await RunRecorder.interruptAll("cancelled: exiting at once");
   * assert.deepEqual([ended, notEnded], [[run.id], []]);
   * const stored = await records.getRun(run.id);
   * assert.equal(stored?.status, "cancelled");
   * assert.equal(stored?.error?.message, "cancelled: exiting at once");
   * assert.equal(stored?.nodes.wait.status, "cancelled");
   * ```
   */
  static async interruptAll(
    reason: string,
    options: { timeoutMs?: number } = {},
  ): Promise<{ ended: string[]; notEnded: string[]; elsewhere: string[] }> {
    const timeoutMs = options.timeoutMs ?? INTERRUPT_TIMEOUT_MS;
    exiting++;
    try {
      const runs = [...inFlight];
      const ended: string[] = [];
      const elsewhere: string[] = [];
      const how = { requeueAfterMs: timeoutMs + REQUEUE_MARGIN_MS };
      const all = Promise.all(runs.map(async (run) => {
        const outcome = await run.interrupt(reason, how).catch(() => false);
        if (outcome === "elsewhere") elsewhere.push(run.id);
        else if (outcome) ended.push(run.id);
      }));
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        all,
        new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
      ]);
      clearTimeout(timer);
      return {
        ended: [...ended],
        notEnded: runs.map((r) => r.id).filter((id) =>
          !ended.includes(id) && !elsewhere.includes(id)
        ),
        elsewhere: [...elsewhere],
      };
    } finally {
      exiting--;
    }
  }

  /** Commit this run's end now, once: the one `finish` made, else cancelled with `reason`. */
  #interrupt(reason: string, requeueAfterMs: number): Promise<InterruptOutcome> {
    this.#interrupted ??= (async () => {
      this.#stopBeating.abort("the process is exiting");
      // Its nodes stop now, not when the process exits (a claimed run may go back to the queue).
      this.#stopRun?.();
      try {
        await this.#started;
      } catch {
        return true; // Never stored: nothing is left running.
      }
      // The events already on their way are stored before the end (the end's come after them).
      this.#remask();
      await this.#flushing;
      const endedAt = this.#clock.now();
      let ending = this.#ending;
      let how: InterruptedEnd | undefined;
      if (ending !== undefined && ending.events.length === 0 && this.#buffer.length > 0) {
        // `finish` made its end before it took the last events (it waits for writes in flight).
        ending = { record: ending.record, events: this.#buffer };
      }
      let withoutOutputs: { record: RunRecord; events: RunEvent[] } | undefined;
      if (ending === undefined) {
        const nodes = this.#nodes.record();
        const events = this.#buffer;
        this.#buffer = [];
        this.#dropOutputs();
        events.push({ at: endedAt, type: "run.end" });
        ending = {
          record: this.#record(
            { status: "cancelled", outputs: null, nodes, error: { message: reason } },
            endedAt,
          ),
          events,
        };
        // The outputs of the nodes that ended may make the record larger (or deeper) than a
        // store takes: it is then recorded without them, as `finish` does.
        withoutOutputs = {
          record: { ...ending.record, nodes: this.#nodes.record(false) },
          events: events.filter((e) => e.type !== "node.log"),
        };
        how = { interrupted: true, requeueAfterMs };
      }
      try {
        let committed: boolean | void;
        try {
          committed = await this.#commit(ending.record, ending.events, how);
        } catch (err) {
          // Too large (a RangeError) or too deep (a TypeError) with the outputs.
          if (!(err instanceof RangeError || err instanceof TypeError) || !withoutOutputs) {
            throw err;
          }
          committed = await this.#commit(withoutOutputs.record, withoutOutputs.events, how);
        }
        if (committed !== false) return true;
        // Refused: `finish` recorded the end first, or the claim is another worker's now.
        return await this.#storedOutcome();
      } catch {
        // Ended meanwhile (by `finish`, or by someone else), or the store failed.
        return await this.#storedOutcome();
      } finally {
        inFlight.delete(this.#tracked);
      }
    })();
    return this.#interrupted;
  }

  /** What the stored record says of a run whose end this process could not commit. */
  async #storedOutcome(): Promise<InterruptOutcome> {
    const stored = await this.#records.getRun(this.id).catch(() => null);
    if (stored === null) return false;
    if (stored.status !== "running") return true;
    // Running under a claim that is not this attempt's: another worker holds the run now.
    const mine = this.#start.queue;
    const theirs = stored.queue;
    if (
      mine?.claim !== undefined && theirs?.claim !== undefined &&
      (theirs.attempt !== mine.attempt || theirs.claim.worker !== mine.claim.worker)
    ) return "elsewhere";
    return false;
  }

  #record(end: RunEnd, endedAt: number | null): RunRecord {
    const record: RunRecord = {
      id: this.id,
      flowId: this.#start.flowId,
      flowVersion: this.#start.flowVersion,
      status: end.status,
      inputs: end.maskedInputs ?? this.#start.inputs,
      outputs: end.outputs,
      startedAt: this.startedAt,
      endedAt,
      durationMs: endedAt === null ? null : endedAt - this.startedAt,
      nodes: end.nodes,
      error: end.error,
    };
    if (this.#start.parentRunId !== undefined) record.parentRunId = this.#start.parentRunId;
    if (this.#start.onFailureOf !== undefined) record.onFailureOf = this.#start.onFailureOf;
    if (this.#start.resumeOf !== undefined) record.resumeOf = this.#start.resumeOf;
    if (this.#start.inputsMasked === true || end.maskedInputs !== undefined) {
      record.inputsMasked = true;
    }
    if (this.#start.mocked === true) record.mocked = true;
    if (this.#start.scheduledAt !== undefined) record.scheduledAt = this.#start.scheduledAt;
    if (this.#start.schedule !== undefined) record.schedule = this.#start.schedule;
    if (this.#start.queue !== undefined) record.queue = this.#start.queue;
    return record;
  }

  /**
   * Buffer one event; append the buffer when it is full or old enough. A
   * `node.end` may come with the node's `output` (`masked` when a secret's
   * value in it was masked): the recorder keeps it beside the event (see the
   * module's documentation). It must not change afterwards.
   */
  event(event: RunEvent, output?: JsonValue, masked?: boolean): void {
    // The run is another attempt's now: its events are not mixed with this one's.
    if (this.#lost) return;
    this.#buffer.push(event);
    switch (event.type) {
      case "node.start":
        this.#nodes.set(event.node, "cancelled", 0);
        if (event.mocked === true) this.#nodes.mocked(event.node);
        break;
      case "node.attempt":
        if (event.error === undefined) {
          this.#nodes.set(event.node, "cancelled", event.attempt);
          if (event.item === undefined) this.#nodes.newAttempt(event.node);
        }
        break;
      case "node.subrun":
        if (event.item === undefined) this.#nodes.subRun(event.node, event.call, event.run);
        break;
      case "node.end":
        this.#nodes.set(event.node, event.status, event.attempt, event.error, output, masked);
        if (output !== undefined) this.#keepOutput(event.node, output, event.outputBytes, masked);
        break;
    }
    if (this.#buffer.length >= EVENT_BATCH_SIZE || event.at - this.#lastFlush >= EVENT_BATCH_MS) {
      this.#flush();
    } else {
      // No next event may come for long (a node that waits): append within
      // EVENT_BATCH_MS all the same, so readers of the records see it.
      this.#flushSoon();
    }
  }

  /**
   * The run's secret masker (Flowstate's runs give theirs when they start,
   * and again whenever it grows: it may grow while the run runs, by a later
   * node's `mask:`, `ctx.mask`, a sub-run's secrets). When it masks more than
   * when the outputs given to `event` were, within {@linkcode EVENT_BATCH_MS}
   * (and before any end) those that hold a secret added since are masked as
   * the run's end records them: the ones kept beside the events not yet
   * appended, the ones kept beside the events appended already (rewritten
   * where they are stored: see `Records.maskKeptOutputs`), and those an end
   * recorded by `interruptAll` holds. Otherwise a run whose process dies would
   * record them in the clear.
   */
  secretsAdded(masker: KeptOutputsMasker & { readonly size: number }): void {
    if (this.#lost) return;
    // Given before any output (as a run starts): those to come are masked with it already.
    if (this.#masker === undefined && this.#nodes.unmaskedOutputs().next().done === true) {
      this.#maskedSize = masker.size;
    }
    this.#masker = masker;
    if (masker.size !== this.#maskedSize) this.#flushSoon();
  }

  /** Mask the outputs given so far that hold a secret added to `#masker` since they were. */
  #remask(): void {
    const masker = this.#masker;
    if (masker === undefined || masker.size === this.#maskedSize || this.#lost) return;
    this.#maskedSize = masker.size;
    const found = new Map<string, JsonValue>();
    for (const [node, output] of this.#nodes.unmaskedOutputs()) {
      if (masker.contains(output)) found.set(node, masker.mask(output));
    }
    if (found.size === 0) return;
    for (const [node, output] of found) this.#nodes.maskOutput(node, output);
    const kept = this.#outputs;
    if (kept !== undefined) {
      for (let i = 0; i < kept.nodes.length; i++) {
        const node = kept.nodes[i];
        if (!found.has(node) || kept.masked?.includes(node)) continue;
        if (!masker.contains(kept.outputs[i])) continue;
        kept.outputs[i] = masker.mask(kept.outputs[i]);
        (kept.masked ??= []).push(node);
      }
    }
    // Those kept beside events appended already, or on their way (this comes after them).
    this.#flushing = this.#flushing
      .then(() => this.#records.maskKeptOutputs(this.id, masker))
      .then(() => {}, (err) => {
        this.#flushError ??= err;
      });
  }

  /** Append the buffer within {@linkcode EVENT_BATCH_MS}, unless a timer to do so is set. */
  #flushSoon(): void {
    if (!this.#flushTimer && !this.#stopBeating.signal.aborted) {
      this.#flushTimer = true;
      this.#timers.sleep(EVENT_BATCH_MS, this.#stopBeating.signal).then(
        () => {
          this.#flushTimer = false;
          this.#flush();
        },
        () => {
          this.#flushTimer = false;
        },
      );
    }
  }

  /** Keep `output` beside the buffer's `node.end` of `node`, when it fits (see the module's documentation). */
  #keepOutput(node: string, output: JsonValue, bytes: number | undefined, masked?: boolean): void {
    if (bytes === undefined) bytes = JSON.stringify(output).length;
    if (bytes > KEPT_OUTPUT_BYTES || this.#outputBytes + bytes > KEPT_BATCH_OUTPUT_BYTES) return;
    this.#outputBytes += bytes;
    const kept = this.#outputs ??= { nodes: [], outputs: [] };
    kept.nodes.push(node);
    kept.outputs.push(output);
    if (masked === true) (kept.masked ??= []).push(node);
  }

  /** Forget the outputs kept beside the buffer (its events are gone, or go with the end). */
  #dropOutputs(): void {
    this.#outputs = undefined;
    this.#outputBytes = 0;
  }

  #flush(): void {
    this.#remask();
    if (this.#buffer.length === 0 || this.#lost) return;
    const batch = this.#buffer;
    this.#buffer = [];
    const outputs = this.#outputs;
    this.#dropOutputs();
    this.#lastFlush = this.#clock.now();
    this.#flushing = this.#flushing
      .then(() => this.#records.appendEvents(this.id, batch, outputs))
      .catch((err) => {
        this.#flushError ??= err;
      });
  }

  /**
   * Record the end: the final status with the events not yet appended, in one
   * commit. Returns the record as stored. Throws (after recording the
   * end) if an earlier batch of events could not be appended; throws a
   * {@linkcode RunNotOwnedError}, recording nothing, for a claimed run whose
   * claim is no longer this attempt's.
   */
  async finish(end: RunEnd): Promise<RunRecord> {
    try {
      return await this.#finish(end);
    } catch (err) {
      // Its end may not be recorded: readers judge it by its heartbeat, not by this process.
      runGivenUp(this.id);
      throw err;
    } finally {
      inFlight.delete(this.#tracked);
    }
  }

  async #finish(end: RunEnd): Promise<RunRecord> {
    // The end is decided now, before any wait: an `interruptAll` from here on records this end
    // (with the events not yet appended), never a cancelled one, and does not give a claimed
    // run back to the queue.
    const endedAt = end.endedAt ?? this.#clock.now();
    this.#ending ??= { record: this.#record(end, endedAt), events: [] };
    await this.#stopWatching();
    if (this.#interrupted !== undefined && (await this.#interrupted) === true) {
      // Already recorded ended by `interruptAll` (the process is exiting): that end stands.
      const stored = await this.#records.getRun(this.id);
      if (stored !== null && stored.status !== "running") return stored;
    }
    this.#remask(); // the end is masked: a long run's chunks, kept, are masked too
    await this.#flushing;
    if (this.#lost) throw new RunNotOwnedError(this.id);
    const last = this.#buffer;
    this.#buffer = [];
    this.#dropOutputs(); // the end records every output
    let record = this.#record(end, endedAt);
    this.#ending = { record, events: last };
    try {
      await this.#commitEnd(record, last);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      // Too large to store (the outputs of many nodes together, say): the end
      // is recorded all the same, as failed, without the outputs.
      const nodes: RunRecord["nodes"] = {};
      for (const [id, outcome] of Object.entries(end.nodes)) {
        const { output: _dropped, ...rest } = outcome;
        nodes[id] = rest;
      }
      record = this.#record({
        status: "failed",
        outputs: null,
        nodes,
        error: {
          message: `the run's record could not be stored with its outputs (${err.message}); ` +
            `it is recorded without them: return smaller outputs and keep large data in state`,
        },
        ...(end.maskedInputs === undefined ? {} : { maskedInputs: end.maskedInputs }),
      }, endedAt);
      const events = last.filter((e) => e.type !== "node.log");
      this.#ending = { record, events };
      await this.#commitEnd(record, events);
    }
    if (this.#flushError !== undefined) {
      throw new RunEventsNotRecordedError(record, this.#flushError);
    }
    return record;
  }

  /**
   * `Records.finishRun`, retried after the waits of `finishRetryDelaysMs`
   * while the store fails. Not retried: a bad record (a `TypeError` or
   * `RangeError`), or a run that someone else finished meanwhile.
   */
  async #commitEnd(record: RunRecord, events: RunEvent[]): Promise<void> {
    const delays = this.#retryDelays;
    for (let attempt = 1;; attempt++) {
      try {
        if ((await this.#commit(record, events)) === false) {
          const gone = (await this.#records.getRun(this.id).catch(() => undefined)) === null;
          throw new RunNotOwnedError(this.id, { gone });
        }
        return;
      } catch (err) {
        if (
          err instanceof TypeError || err instanceof RangeError || err instanceof RunNotOwnedError
        ) throw err;
        const stored = await this.#records.getRun(this.id).catch(() => undefined);
        if (stored !== undefined && stored !== null && stored.status !== "running") {
          // Finished by someone else (or by this commit, if it landed after all).
          if (stored.status === record.status && stored.endedAt === record.endedAt) return;
          throw err;
        }
        if (attempt > delays.length && !(this.#retryWhile?.() ?? false)) {
          throw new RunEndNotRecordedError(
            this.id,
            record.status,
            attempt,
            err,
            this.#retryWhile !== undefined,
          );
        }
        await this.#timers.sleep(delays[Math.min(attempt, delays.length) - 1] ?? 0);
      }
    }
  }
}

/**
 * How a run ended: what {@linkcode RunRecorder.finish} records.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, Records, RunRecorder, type RunEnd } from "@flowstate/core/records";
 *
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * const recorder = await RunRecorder.start(records, { now: () => Date.now() }, {
 *   flowId: "import",
 *   flowVersion: "job",
 *   inputs: {},
 * });
 * const end: RunEnd = {
 *   status: "failed",
 *   outputs: null,
 *   nodes: { read: { status: "failed", attempts: 1, error: "no such file" } },
 *   error: { node: "read", message: "no such file" },
 * };
 * const run = await recorder.finish(end);
 * assert.equal(run.error?.node, "read");
 * ```
 */
export interface RunEnd {
  /** The final status. */
  status: RunRecord["status"];
  /** Outputs, when it succeeded. */
  outputs: RunRecord["outputs"];
  /** Per-node outcomes. */
  nodes: RunRecord["nodes"];
  /** The error that failed it. */
  error: RunRecord["error"];
  /** When it ended (default: now, by the recorder's clock). */
  endedAt?: number;
  /**
   * The inputs masked at the end, when a value the run made a secret after it
   * started (a node's `mask:`, `ctx.mask`) is in them: recorded instead of
   * the start's, with `inputsMasked`.
   */
  maskedInputs?: Record<string, JsonValue>;
}
