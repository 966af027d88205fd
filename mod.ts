/**
 * Flowstate: a headless job runner for Deno with storage plugins.
 *
 * Open a store from any plugin and use the one {@linkcode Store} interface:
 *
 * ```ts
 * import { openStore } from "@flowstate/core";
 *
 * await using store = await openStore({ plugin: "memory" });
 * await store.set(["flow", "counter", "count"], 1);
 * const entry = await store.get<number>(["flow", "counter", "count"]);
 * if (!(entry?.value === 1)) throw new Error("unexpected result");
 * ```
 *
 * @module
 */
export type {
  AtomicCheck,
  AtomicOperation,
  Capabilities,
  Clock,
  CommitResult,
  CompactResult,
  DeleteOptions,
  Entry,
  JsonValue,
  Key,
  KeyBounds,
  KeyPart,
  ListIterator,
  ListOptions,
  OrderBy,
  Query,
  SetOptions,
  Store,
  WhereClause,
  WhereOp,
} from "./src/store/types.ts";
export type {
  ClearRange,
  CommitRequest,
  DriverCommitResult,
  KeyRange,
  Mutation,
  RawEntry,
  StoreDriver,
} from "./src/store/driver.ts";
export type { NormalizedQuery } from "./src/store/query.ts";
export { compareKeys } from "./src/store/keys.ts";
export { ConfigError, ConflictError, StoreClosedError, StoreCorruptError } from "./src/errors.ts";
export {
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
export {
  defineNode,
  type LogLevel,
  type NodeContext,
  type NodeDefinition,
  type NodeType,
} from "./src/flow/node.ts";
export type {
  Duration,
  FlowDefinition,
  FlowSchedule,
  InputSpec,
  InputType,
  NodeSpec,
  RetrySpec,
} from "./src/flow/types.ts";
export type {
  NodeStatus,
  RunEvent,
  RunRecord,
  RunStatus,
  RunSummary,
} from "./src/records/types.ts";
export { newRunId, runIdTime } from "./src/records/run_id.ts";
export { RunRecorder } from "./src/records/recorder.ts";
export type { ScopeCallOptions, ScopeKey, ScopeName, StateView } from "./src/state/scopes.ts";
export {
  canonicalJson,
  type FlowSummary,
  type FlowVersion,
  hashFlowDefinition,
  type ListRunsOptions,
  Records,
  type RecordsOptions,
  type RunPage,
} from "./src/records/records.ts";
export {
  type DurationHistogram,
  type FlowMetrics,
  HISTOGRAM_GROWTH,
  HISTOGRAM_RELATIVE_ERROR,
  quantile,
} from "./src/records/metrics.ts";
export {
  type ConfigObject,
  loadConfig,
  type LoadConfigOptions,
  type ResolvedConfig,
} from "./src/config.ts";
export { openRuntime, type Runtime, type RuntimeOptions } from "./src/runtime.ts";
export {
  cached,
  type CachedStore,
  type CacheOptions,
  type CacheStats,
} from "./src/wrappers/cached.ts";
export {
  type HookMutation,
  type HookOperation,
  type StoreHooks,
  withHooks,
} from "./src/wrappers/hooks.ts";
export {
  coerceInputs,
  type CoerceInputsOptions,
  type FlowPath,
  type FlowProblem,
  FlowValidationError,
  loadFlowFile,
  type ParsedFlow,
  parseFlow,
  type ParseFlowOptions,
  validateFlow,
  type ValidateFlowOptions,
} from "./src/flow/parse.ts";
export { flowJsonSchema, type FlowJsonSchemaOptions, flowSchema } from "./src/flow/schema.ts";
export { parseDuration } from "./src/duration.ts";
export {
  defineJob,
  type Job,
  type JobContext,
  type JobDefinition,
  type JobLogLevel,
  type JobResult,
} from "./src/jobs/job.ts";
export {
  createProgress,
  type Progress,
  type ProgressMode,
  type ProgressOptions,
} from "./src/jobs/progress.ts";
export { loadJob, runJob, type RunJobOptions } from "./src/jobs/run.ts";
export {
  defineMigration,
  migrateDown,
  type MigrateOptions,
  type MigrateResult,
  migrateUp,
  type Migration,
  type MigrationContext,
  type MigrationDefinition,
  MigrationError,
  type MigrationLockInfo,
  type MigrationRecord,
  type MigrationState,
  type MigrationStatus,
  migrationStatus,
} from "./jobs/migrate.ts";
export { moveStore, type MoveStoreOptions, type MoveStoreResult } from "./jobs/migrate_store.ts";
export {
  type BackupConsistency,
  type BackupHeader,
  type BackupInfo,
  type BackupOptions,
  type BackupResult,
  backupStore,
  type BackupStoreOptions,
  backupStores,
  type BackupStoresOptions,
  type BackupTrailer,
} from "./jobs/backup.ts";
export {
  restoreBackup,
  type RestoreBackupOptions,
  type RestoreResult,
  type VerifiedBackup,
  verifyBackup,
  type VerifyBackupOptions,
} from "./jobs/restore.ts";
export {
  type ArchivedRun,
  type ArchivedRunSummary,
  listArchivedRuns,
  type ListArchivedRunsOptions,
  readArchivedRun,
} from "./jobs/archive.ts";
export { loadSchedules, type LoadSchedulesOptions } from "./src/scheduler/from_config.ts";
export {
  type Schedule,
  type ScheduleInfo,
  Scheduler,
  type SchedulerEvent,
  type SchedulerOptions,
  type SkipReason,
  type StopResult,
  type TickContext,
} from "./src/scheduler/scheduler.ts";
export { cronProblem, nextTick, previousTick, validateCron } from "./src/cron.ts";
export {
  type AcquireFailure,
  type AcquireResult,
  type DoneMarker,
  type LastTick,
  type LeaseHolder,
  tickKey,
  TickLease,
  TickLeases,
  type TickLeasesOptions,
} from "./src/scheduler/lease.ts";
export type { JobConfig, JobConfigObject, MissedPolicy, OverlapPolicy } from "./src/config.ts";
export type { Timers } from "./src/clock.ts";
export type { FlowSource } from "./src/flow/load.ts";
export type { RunFlowOptions } from "./src/run_flow.ts";
