/**
 * The records: runs with their events, hash-addressed flow versions, per-flow
 * metrics, the run-id format, the one run recorder, and pruning.
 *
 * @example
 * ```ts
 * import { openStore, Records } from "@flowstate/core/records";
 * import assert from "node:assert/strict";
 * await using store = await openStore({ plugin: "memory" });
 * const records = new Records(store);
 * assert.deepEqual(await records.listFlows(), []);
 * ```
 *
 * @module
 */
export {
  type ClaimOptions,
  type EnqueueInit,
  type OnFailureMarker,
  type QueueCounts,
  Records,
  type RecordsOptions,
  type ResumeMarker,
  type SignalExpectation,
  type SignalOutcome,
  type StoredSignal,
} from "./src/records/records.ts";
export {
  STALE_HEARTBEATS,
  type WorkerClaim,
  type WorkerInfo,
  type WorkerStatus,
  workerStatus,
} from "./src/records/workers.ts";
export {
  canonicalJson,
  type FlowSummary,
  type FlowVersion,
  hashFlowDefinition,
} from "./src/records/flow_version.ts";
export {
  enqueuedByRun,
  FOR_EACH_PROGRESS_MS,
  type KeptOutputsMasker,
  type ListRunsOptions,
  MAX_FAILED_ITEMS,
  MAX_STATE_ACCESS,
  type NodeAttemptEvent,
  type NodeEndEvent,
  type NodeItems,
  type NodeLogEvent,
  type NodeOutcome,
  type NodeProgressEvent,
  type NodeStartEvent,
  type NodeStatus,
  type NodeSubRunEvent,
  type QueueAttempt,
  type QueueAttemptOutcome,
  type QueueBackoff,
  type QueueInfo,
  type RunEndEvent,
  type RunEvent,
  type RunEventInit,
  type RunPage,
  type RunRecord,
  runShapeProblem,
  type RunStartEvent,
  runStartTime,
  type RunStatus,
  type RunSummary,
  type StateAccess,
  summarizeRun,
} from "./src/records/types.ts";
export {
  assertRunId,
  isRunId,
  newRunId,
  RUN_ID_HINT,
  runIdBoundTime,
  runIdTime,
  runIdTimeBound,
} from "./src/records/run_id.ts";
export {
  EVENT_BATCH_MS,
  EVENT_BATCH_SIZE,
  FINISH_RETRY_DELAYS_MS,
  type RunEnd,
  RunEndNotRecordedError,
  RunNotOwnedError,
  RunRecorder,
  type RunRecorderOptions,
  type RunStart,
} from "./src/records/recorder.ts";
export {
  abandonedMessage,
  abandonedRun,
  type Abandonment,
  DEFAULT_ABANDONED_MS,
  HEARTBEAT_MS,
  judgeRun,
  LEGACY_ABANDONED_MS,
  MIN_ABANDONED_MS,
  type RunJudgement,
} from "./src/records/heartbeat.ts";
export {
  currentOwner,
  type OwnerLiveness,
  ownerLiveness,
  type ProcReader,
  type RunOwner,
} from "./src/records/owner.ts";
export type { PruneOptions, PruneProgress, PruneResult } from "./src/records/prune.ts";
export { type DurationHistogram, type FlowMetrics, quantile } from "./src/records/metrics.ts";
export { openStore } from "./src/plugin.ts";
