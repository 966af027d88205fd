/**
 * Heartbeats of running runs, and when a run counts as abandoned.
 *
 * While a run is `running`, the process running it writes `heartbeatAt`
 * into its record every {@linkcode HEARTBEAT_MS} (5 s; see `RunRecorder`).
 * A run is *abandoned* when its heartbeat is older than the threshold asked
 * for, which is never less than {@linkcode MIN_ABANDONED_MS} (four missed
 * beats): a slow commit or a blocked event loop delays a beat or two, not
 * four. A run's age alone never makes it abandoned, except for records
 * written before heartbeats existed (no `heartbeatAt`): those are abandoned
 * only when they started longer ago than {@linkcode LEGACY_ABANDONED_MS}
 * (one day) or the threshold, whichever is longer, since nothing tells a
 * long live run of an older version from a dead one.
 *
 * A run's record names its owner process (`RunRecord.owner`, see
 * `owner.ts`). When that process is verifiably on this machine, it decides
 * before the heartbeat: dead, the run is abandoned at once, whatever its
 * heartbeat's age; alive (stopped, stalled, in a debugger), the run is
 * never abandoned for a late heartbeat: it is *stalled*
 * ({@linkcode judgeRun}), and only `runs cancel` ends it. Otherwise
 * (another machine, an unverifiable owner, no owner) the heartbeat rule
 * above applies.
 *
 * @module
 */
import { ownerLiveness, type ProcReader, runInFlightHere } from "./owner.ts";
import type { RunRecord } from "./types.ts";

/**
 * How often a running run's heartbeat is written, in ms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HEARTBEAT_MS, MIN_ABANDONED_MS } from "@flowstate/core/records";
 *
 * assert.equal(HEARTBEAT_MS, 5_000);
 * assert.equal(MIN_ABANDONED_MS / HEARTBEAT_MS, 4); // four missed beats at the least
 * ```
 */
export const HEARTBEAT_MS = 5_000;

/**
 * The shortest threshold a run is judged abandoned by: four missed heartbeats, in ms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { abandonedRun, MIN_ABANDONED_MS, type RunRecord } from "@flowstate/core/records";
 *
 * const run: RunRecord = {
 *   id: "0mjuw3ms0abcdefghijk", flowId: "f", flowVersion: "v", status: "running",
 *   inputs: {}, outputs: null, startedAt: 0, endedAt: null, durationMs: null, nodes: {},
 *   error: null, heartbeatAt: 0,
 * };
 * // a threshold below the minimum is raised to it
 * assert.equal(abandonedRun(run, MIN_ABANDONED_MS, 1), null);
 * assert.equal(abandonedRun(run, MIN_ABANDONED_MS + 1, 1)?.thresholdMs, MIN_ABANDONED_MS);
 * ```
 */
export const MIN_ABANDONED_MS = 4 * HEARTBEAT_MS;

/**
 * The threshold `gc` uses by default: one minute without a heartbeat (twelve missed beats).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { abandonedRun, DEFAULT_ABANDONED_MS, type RunRecord } from "@flowstate/core/records";
 *
 * const run: RunRecord = {
 *   id: "0mjuw3ms0abcdefghijk", flowId: "f", flowVersion: "v", status: "running",
 *   inputs: {}, outputs: null, startedAt: 0, endedAt: null, durationMs: null, nodes: {},
 *   error: null, heartbeatAt: 1_000,
 * };
 * assert.equal(abandonedRun(run, 1_000 + DEFAULT_ABANDONED_MS, DEFAULT_ABANDONED_MS), null);
 * assert.equal(abandonedRun(run, 2_000 + DEFAULT_ABANDONED_MS, DEFAULT_ABANDONED_MS)?.by, "heartbeat");
 * ```
 */
export const DEFAULT_ABANDONED_MS = 60_000;

/**
 * How old a running run without any heartbeat (an older version's) must be to be abandoned: one day.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { abandonedRun, LEGACY_ABANDONED_MS, type RunRecord } from "@flowstate/core/records";
 *
 * const run: RunRecord = {
 *   id: "0mjuw3ms0abcdefghijk", flowId: "f", flowVersion: "v", status: "running",
 *   inputs: {}, outputs: null, startedAt: 0, endedAt: null, durationMs: null, nodes: {},
 *   error: null, // no heartbeatAt: recorded by a version before heartbeats
 * };
 * assert.equal(abandonedRun(run, LEGACY_ABANDONED_MS, 60_000), null);
 * assert.equal(abandonedRun(run, LEGACY_ABANDONED_MS + 1, 60_000)?.by, "age");
 * ```
 */
export const LEGACY_ABANDONED_MS = 86_400_000;

/**
 * Why {@linkcode abandonedRun} judged a run abandoned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Abandonment, abandonedRun, type RunRecord } from "@flowstate/core/records";
 *
 * const run: RunRecord = {
 *   id: "0mjuw3ms0abcdefghijk", flowId: "f", flowVersion: "v", status: "running",
 *   inputs: {}, outputs: null, startedAt: 0, endedAt: null, durationMs: null, nodes: {},
 *   error: null, heartbeatAt: 10_000,
 * };
 * const why: Abandonment | null = abandonedRun(run, 100_000, 60_000);
 * assert.deepEqual(why, { by: "heartbeat", lastSeenAt: 10_000, thresholdMs: 60_000 });
 * ```
 */
export interface Abandonment {
  /**
   * `heartbeat`: its last heartbeat is too old; `age`: it has none and
   * started too long ago; `process`: its process, on this machine, is dead.
   */
  by: "heartbeat" | "age" | "process";
  /** The last sign of life: its heartbeat, or its start. */
  lastSeenAt: number;
  /** The threshold applied, in ms (at least {@linkcode MIN_ABANDONED_MS}). */
  thresholdMs: number;
  /** For `process`: what was found (`its process 1234 is gone`). */
  process?: string;
}

/**
 * What {@linkcode judgeRun} found of a run: `live` (ended, or with a fresh
 * heartbeat, or claimed from the queue), `abandoned` (why), or `stalled`:
 * its heartbeat is older than the threshold but its process is alive on
 * this machine (stopped, stalled, in a debugger), so it is left running.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { judgeRun, type RunJudgement } from "@flowstate/core/records";
 *
 * const run = {
 *   id: "0mjuw3ms0abcdefghijk", flowId: "f", flowVersion: "v", status: "running" as const,
 *   inputs: {}, outputs: null, startedAt: 0, endedAt: null, durationMs: null, nodes: {},
 *   error: null, heartbeatAt: 0,
 * };
 * const judged: RunJudgement = judgeRun(run, 1_000, 60_000);
 * assert.deepEqual(judged, { state: "live" });
 * ```
 */
export type RunJudgement =
  | { state: "live" }
  | { state: "abandoned"; why: Abandonment }
  | {
    state: "stalled";
    /** Its last heartbeat. */
    lastSeenAt: number;
    /** The threshold it is past, in ms. */
    thresholdMs: number;
    /** Its process's pid. */
    pid: number;
  };

/**
 * Judge `run` at `now` with a heartbeat threshold of `afterMs` (raised to
 * {@linkcode MIN_ABANDONED_MS}), its owner process read through `reader`
 * (the default reads `/proc` where it may: see `ownerLiveness`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { judgeRun, type ProcReader } from "@flowstate/core/records";
 *
 * // A machine where process 9 started at tick 5, and pid 9 now is another process (tick 6).
 * const files: Record<string, string> = {
 *   "/proc/sys/kernel/hostname": "box",
 *   "/proc/sys/kernel/random/boot_id": "b1",
 *   "/proc/self/stat": "7 (deno) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0",
 *   "/proc/self/mountinfo": "22 27 0:21 / /proc rw - proc proc rw",
 *   "/proc/9/stat": "9 (deno) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 6 0 0",
 * };
 * const reader: ProcReader = {
 *   pid: 7,
 *   readText: (path) => files[path] ?? null,
 *   readLink: () => "pid:[1]",
 * };
 * const run = {
 *   id: "0mjuw3ms0abcdefghijk", flowId: "f", flowVersion: "v", status: "running" as const,
 *   inputs: {}, outputs: null, startedAt: 0, endedAt: null, durationMs: null, nodes: {},
 *   error: null, heartbeatAt: 0,
 *   owner: { pid: 9, host: "box", boot: "b1", pidNs: "pid:[1]", startTicks: 5 },
 * };
 * const judged = judgeRun(run, 1_000, 60_000, reader); // a fresh heartbeat, yet
 * assert.equal(judged.state, "abandoned");
 * ```
 */
export function judgeRun(
  run: RunRecord,
  now: number,
  afterMs: number,
  reader?: ProcReader,
): RunJudgement {
  if (run.status !== "running") return { state: "live" };
  // A queued run's attempt is held by its worker's lease: when the lease lapses, the run goes
  // back to the queue (`Records.reclaimLost`), it is never recorded failed for a missing heartbeat.
  if (run.queue?.claim !== undefined) return { state: "live" };
  const threshold = Math.max(afterMs, MIN_ABANDONED_MS);
  const beat = run.heartbeatAt;
  const hasBeat = typeof beat === "number" && Number.isFinite(beat);
  const lastSeenAt = hasBeat ? beat : run.startedAt;
  const owner = run.owner === undefined
    ? { state: "unknown" as const, why: "" }
    : ownerLiveness(run.owner, reader, run.id);
  if (owner.state === "dead") {
    return {
      state: "abandoned",
      why: { by: "process", lastSeenAt, thresholdMs: threshold, process: owner.why },
    };
  }
  // This very process: alive while it runs the run; a run it gave up (its recorder closed
  // without an end) is judged by its heartbeat.
  const alive = owner.state === "alive" || (owner.state === "here" && runInFlightHere(run.id));
  if (hasBeat) {
    if (now - beat <= threshold) return { state: "live" };
    return alive
      ? { state: "stalled", lastSeenAt: beat, thresholdMs: threshold, pid: run.owner!.pid }
      : { state: "abandoned", why: { by: "heartbeat", lastSeenAt: beat, thresholdMs: threshold } };
  }
  const legacy = Math.max(threshold, LEGACY_ABANDONED_MS);
  if (alive || now - run.startedAt <= legacy) return { state: "live" };
  return { state: "abandoned", why: { by: "age", lastSeenAt: run.startedAt, thresholdMs: legacy } };
}

/**
 * Whether `run` is abandoned at `now` with a threshold of `afterMs` (raised
 * to {@linkcode MIN_ABANDONED_MS}): `null` if it is not (it finished, its
 * heartbeat is fresh, or its process is alive on this machine), else why
 * (see {@linkcode judgeRun}).
 *
 * @example
 * ```ts
 * import { abandonedRun, HEARTBEAT_MS } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const run = {
 *   id: "0mjuw3ms0abcdefghijk", flowId: "f", flowVersion: "v", status: "running" as const,
 *   inputs: {}, outputs: null, startedAt: 0, endedAt: null, durationMs: null, nodes: {},
 *   error: null, heartbeatAt: 3_600_000,
 * };
 * const now = 3_600_000 + HEARTBEAT_MS;
 * assert.equal(abandonedRun(run, now, 2_000), null); // an hour old, but alive
 * assert.equal(abandonedRun(run, now + 60_000, 60_000)?.by, "heartbeat");
 * ```
 */
export function abandonedRun(
  run: RunRecord,
  now: number,
  afterMs: number,
  reader?: ProcReader,
): Abandonment | null {
  const judged = judgeRun(run, now, afterMs, reader);
  return judged.state === "abandoned" ? judged.why : null;
}

/**
 * The error message an abandoned run is recorded with.
 *
 * @example
 * ```ts
 * import { abandonedMessage } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * const message = abandonedMessage({ by: "heartbeat", lastSeenAt: 0, thresholdMs: 60_000 });
 * assert.match(message, /^abandoned: no heartbeat for more than 60s/);
 * ```
 */
export function abandonedMessage(why: Abandonment): string {
  const seconds = `${Math.round(why.thresholdMs / 1000)}s`;
  if (why.by === "process") {
    return `abandoned: ${
      why.process ?? "its process is gone"
    } (killed or crashed; last heartbeat at ${new Date(why.lastSeenAt).toISOString()})`;
  }
  return why.by === "heartbeat"
    ? `abandoned: no heartbeat for more than ${seconds} since ${
      new Date(why.lastSeenAt).toISOString()
    } (its process was killed, crashed or could not record its end)`
    : `abandoned: still recorded as running more than ${seconds} after it started, with no heartbeat (written by an older version; its process was killed or crashed)`;
}

/**
 * When the claim of a queued run recorded running lapsed (its last heartbeat, or its claim,
 * plus its lease), if it did by `now`; `undefined` for any other run. No worker took it back
 * yet: one that polls does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claimLapsedAt } from "./heartbeat.ts";
 * import type { RunRecord } from "../records/types.ts";
 *
 * const run = {
 *   status: "running",
 *   heartbeatAt: 1_000,
 *   queue: { claim: { worker: "w1", at: 0, leaseMs: 4_000 } },
 * } as unknown as RunRecord;
 * assert.equal(claimLapsedAt(run, 4_000), undefined);
 * assert.equal(claimLapsedAt(run, 6_000), 5_000);
 * ```
 */
export function claimLapsedAt(run: RunRecord, now: number): number | undefined {
  const claim = run.queue?.claim;
  if (run.status !== "running" || claim === undefined) return undefined;
  const lapsedAt = (run.heartbeatAt ?? claim.at) + claim.leaseMs;
  return now > lapsedAt ? lapsedAt : undefined;
}
