/**
 * The one run recorder: how a flow run and a job run alike are recorded while
 * they happen. {@linkcode RunRecorder.start} reads the clock once for the run
 * id and `startedAt` and writes the `running` record; {@linkcode
 * RunRecorder.event} buffers events and appends them in batches (every
 * {@linkcode EVENT_BATCH_SIZE} events or {@linkcode EVENT_BATCH_MS} ms, so a
 * crash loses at most the last batch and a log line reaches the store within
 * a fraction of a second); {@linkcode RunRecorder.finish} writes the last
 * batch with the final status in one commit (see `Records.finishRun`).
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { JsonValue } from "../store/types.ts";
import type { Records } from "./records.ts";
import { newRunId } from "./run_id.ts";
import type { RunEvent, RunRecord } from "./types.ts";

/** Events appended per batch at most. */
export const EVENT_BATCH_SIZE = 200;
/** A batch is appended once its oldest event is this old (ms), at the next event. */
export const EVENT_BATCH_MS = 200;

/** What a new run is. */
export interface RunStart {
  /** The flow's id (`job:<name>` for a job). */
  flowId: string;
  /** The flow version's hash (`"job"` for a job). */
  flowVersion: string;
  /** Inputs after defaults and type checks. */
  inputs: Record<string, JsonValue>;
  /** The parent run, for sub-flows. */
  parentRunId?: string;
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
  #lastFlush: number;
  #flushing: Promise<void> = Promise.resolve();
  #flushError: unknown;

  private constructor(records: Records, clock: Clock, start: RunStart, startedAt: number) {
    this.#records = records;
    this.#clock = clock;
    this.#start = start;
    this.startedAt = startedAt;
    this.id = newRunId(startedAt);
    this.#lastFlush = startedAt;
  }

  /** Read the clock once, make the run's id, and record the run as `running`. */
  static async start(records: Records, clock: Clock, start: RunStart): Promise<RunRecorder> {
    const recorder = new RunRecorder(records, clock, start, clock.now());
    await records.startRun(recorder.#record({
      status: "running",
      outputs: null,
      nodes: {},
      error: null,
    }, null));
    return recorder;
  }

  #record(end: RunEnd, endedAt: number | null): RunRecord {
    const record: RunRecord = {
      id: this.id,
      flowId: this.#start.flowId,
      flowVersion: this.#start.flowVersion,
      status: end.status,
      inputs: this.#start.inputs,
      outputs: end.outputs,
      startedAt: this.startedAt,
      endedAt,
      durationMs: endedAt === null ? null : endedAt - this.startedAt,
      nodes: end.nodes,
      error: end.error,
    };
    if (this.#start.parentRunId !== undefined) record.parentRunId = this.#start.parentRunId;
    return record;
  }

  /** Buffer one event; append the buffer when it is full or old enough. */
  event(event: RunEvent): void {
    this.#buffer.push(event);
    if (this.#buffer.length >= EVENT_BATCH_SIZE || event.at - this.#lastFlush >= EVENT_BATCH_MS) {
      this.#flush();
    }
  }

  #flush(): void {
    if (this.#buffer.length === 0) return;
    const batch = this.#buffer;
    this.#buffer = [];
    this.#lastFlush = this.#clock.now();
    this.#flushing = this.#flushing
      .then(() => this.#records.appendEvents(this.id, batch))
      .catch((err) => {
        this.#flushError ??= err;
      });
  }

  /**
   * Record the end: the final status with the events not yet appended, in one
   * commit. Returns the record as stored. Throws (after recording the
   * end) if an earlier batch of events could not be appended.
   */
  async finish(end: RunEnd): Promise<RunRecord> {
    await this.#flushing;
    const last = this.#buffer;
    this.#buffer = [];
    const record = this.#record(end, end.endedAt ?? this.#clock.now());
    await this.#records.finishRun(record, last);
    if (this.#flushError !== undefined) {
      throw new Error(
        `Run ${this.id} finished ${record.status} but some of its events could not be recorded`,
        { cause: this.#flushError },
      );
    }
    return record;
  }
}

/** How a run ended: what {@linkcode RunRecorder.finish} records. */
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
}
