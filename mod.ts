/**
 * Flowstate: a headless job runner for Deno with storage plugins.
 *
 * This entry point is what an application uses: open a runtime (config,
 * stores, records) and run flows, or open one store from any plugin and use
 * the one {@linkcode Store} interface; define nodes, jobs and plugins; catch
 * Flowstate's errors. The rest is in parts:
 *
 * | import | for |
 * |---|---|
 * | `@flowstate/core` | applications: runtime, stores, define*, errors |
 * | `@flowstate/core/plugin` | plugin authors: the driver contract and key helpers |
 * | `@flowstate/core/testing` | the conformance suite and fake time |
 * | `@flowstate/core/flow` | parsing, validating and loading flows |
 * | `@flowstate/core/records` | runs, versions, metrics, run ids, pruning |
 * | `@flowstate/core/scheduler` | the scheduler and cron |
 * | `@flowstate/core/jobs` | running jobs; migrations, backup, restore, archive |
 * | `@flowstate/core/cache`, `/hooks` | wrappers over any store |
 * | `@flowstate/core/plugins/<name>` | one built-in plugin |
 *
 * @example
 * ```ts
 * import { openStore } from "@flowstate/core";
 * import assert from "node:assert/strict";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["flow", "counter", "count"], 1);
 * const entry = await store.get<number>(["flow", "counter", "count"]);
 * assert.equal(entry?.value, 1);
 * ```
 *
 * @module
 */
export type {
  AtomicCheck,
  AtomicOperation,
  Capabilities,
  Change,
  ChangeActor,
  ChangesOptions,
  ClaimCompanion,
  CommitResult,
  CompactResult,
  DeleteOptions,
  Entry,
  FeedInfo,
  FeedKeep,
  GetOptions,
  IndexDeclaration,
  IndexInfo,
  JsonValue,
  Key,
  KeyBounds,
  KeyPart,
  ListIterator,
  ListOptions,
  OrderBy,
  Query,
  QueryPlan,
  SearchDeclaration,
  SearchHit,
  SearchOptions,
  SetOptions,
  Store,
  WatchOptions,
  WhereClause,
  WhereOp,
} from "./src/store/types.ts";
// The actor's AsyncLocalStorage, installed at once for applications (the CLI loads it lazily).
import "./src/store/actor_context.ts";
export { withActor } from "./src/store/actor.ts";
export type { Clock, Timers } from "./src/clock.ts";
export { type Duration, parseDuration } from "./src/duration.ts";
export type { LogLevel, Warning, WarningCode, WarningHandler } from "./src/log.ts";
export {
  AttemptOverError,
  BackupError,
  ConfigError,
  type ConfigErrorOptions,
  ConflictError,
  DecryptionError,
  type ErrorCode,
  FeedDisabledError,
  FlowstateError,
  FlowValidationError,
  formatPath,
  formatProblem,
  messageOf,
  MigrationError,
  NotFoundError,
  type Problem,
  type ProblemPath,
  type ResumeRefusal,
  ResumeRefusedError,
  StoreClosedError,
  StoreCorruptError,
  type StoreCorruptReason,
  StoreMissingError,
  StoreOpenError,
  StoreReadOnlyError,
  StoreUnavailableError,
  transientUnavailable,
  UnknownStoreError,
} from "./src/errors.ts";
export {
  type BuiltinPluginName,
  type BuiltinPluginOptions,
  type ChangesConfig,
  type CheckedStoreSpec,
  type CoreStoreOptions,
  definePlugin,
  loadPlugin,
  openStore,
  type OpenStoreOptions,
  type OptionsSchema,
  type ParsingSchema,
  type Plugin,
  type PluginContext,
  type PluginDefinition,
  type SchemaIssue,
  type SchemaResult,
  type StoreSpec,
} from "./src/plugin.ts";
export type { IndexBuildEvent } from "./src/store/driver.ts";
export {
  defineNode,
  type JsonOutput,
  type NodeContext,
  type NodeDefinition,
  type NodeType,
} from "./src/flow/node.ts";
export type { BuiltinNodeType, FlowDefinition } from "./src/flow/types.ts";
export type { FlowSource } from "./src/flow/load.ts";
export type {
  NodeStatus,
  RunEvent,
  RunRecord,
  RunStatus,
  ScheduledTick,
} from "./src/records/types.ts";
export type {
  ScopeCallOptions,
  ScopeKey,
  ScopeName,
  ScopeQueryOptions,
  ScopeSearchOptions,
  StateView,
} from "./src/state/scopes.ts";
export {
  type AbandonedPolicy,
  type ConfigObject,
  type FailureKind,
  type JobConfig,
  type JobConfigObject,
  loadConfig,
  type LoadConfigOptions,
  type MissedPolicy,
  type NodesConfigObject,
  type OnFailureConfig,
  type OnFailureConfigObject,
  type OverlapPolicy,
  type ResolvedConfig,
  type RunsConfig,
  type RunsConfigObject,
  type ServeConfigObject,
} from "./src/config.ts";
export {
  type CheckedConfig,
  openRuntime,
  type Runtime,
  type RuntimeOptions,
} from "./src/runtime.ts";
export { type EnqueueOptions, type EnqueueResult } from "./src/queue/enqueue.ts";
export type { SignalExpectation, SignalOutcome } from "./src/records/_signals.ts";
export type { FailedRunInput, RunSource } from "./src/on_failure.ts";
export {
  DEFAULT_LEASE_MS,
  DEFAULT_POLL_MS,
  type QueueNotifier,
  startWorker,
  type Worker,
  type WorkerEvent,
  type WorkerOptions,
  type WorkerState,
} from "./src/queue/worker.ts";
export { listWorkers, type WorkerListing } from "./src/queue/workers.ts";
export type { WorkerClaim, WorkerInfo, WorkerStatus } from "./src/records/workers.ts";
export type { PreviewResumeOptions, ResumeRunOptions, RunFlowOptions } from "./src/run_flow.ts";
export type { ResumeDecision, ResumePreview, ResumeReason } from "./src/resume.ts";
export type { NodeMock, NodeMockCall, NodeMocks } from "./src/flow/mocks.ts";
export type {
  EventsDroppedEvent,
  EventsOptions,
  JobProgressEvent,
  RunEndedEvent,
  RunNodeEvent,
  RunStartedEvent,
  RuntimeEvent,
  RuntimeEventBase,
  StateChangedEvent,
} from "./src/runtime_events.ts";
export {
  defineJob,
  type Job,
  type JobContext,
  type JobDefinition,
  type JobResult,
} from "./src/jobs/job.ts";
export { runJob, type RunJobOptions } from "./src/jobs/run.ts";
