/**
 * Jobs: define and run them, show their progress, and the built-in
 * maintenance jobs' library functions: data migrations, moving a store to
 * another backend, backup and restore, and reading archived runs.
 *
 * @example
 * ```ts
 * import { defineJob, runJob } from "@flowstate/core/jobs";
 * import { openRuntime } from "@flowstate/core";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const hello = defineJob({
 *   name: "hello",
 *   description: "says hello",
 *   optionsSchema: z.strictObject({}),
 *   run: () => ({ said: "hello" }),
 * });
 * const run = await runJob(rt, hello, { progress: "quiet" });
 * assert.equal(run.outputs?.said, "hello");
 * ```
 *
 * @module
 */
export {
  defineJob,
  type Job,
  type JobContext,
  type JobDefinition,
  type JobResult,
} from "./src/jobs/job.ts";
export { loadJob, resolveJobOptions, runJob, type RunJobOptions } from "./src/jobs/run.ts";
export { builtinJobNames } from "./src/jobs/builtin.ts";
export type { RetentionOptions } from "./jobs/retention.ts";
export type { GcOptions } from "./jobs/gc.ts";
export type { ArchiveOptions, ArchivePeriod } from "./jobs/archive.ts";
export type { RestoreOptions } from "./jobs/restore.ts";
export type { MigrateJobOptions } from "./jobs/migrate.ts";
export type { MigrateStoreOptions } from "./jobs/migrate_store.ts";
export type {
  BuiltinJobName,
  BuiltinJobOptions,
  JobOptionsFor,
  JobRef,
} from "./src/jobs/options.ts";
export {
  createProgress,
  type Progress,
  type ProgressMode,
  type ProgressOptions,
} from "./src/jobs/progress.ts";
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
  type BuildIndexesOptions,
  type BuildIndexesReport,
  type BuiltIndex,
} from "./jobs/build_indexes.ts";
export {
  type RekeyOptions,
  type RekeyReport,
  rekeyStore,
  type RekeyStoreOptions,
} from "./jobs/rekey.ts";
export {
  type BackupConsistency,
  type BackupHeader,
  backupIncrement,
  type BackupInfo,
  type BackupOptions,
  type BackupResult,
  backupStore,
  type BackupStoreOptions,
  backupStores,
  type BackupStoresOptions,
  type BackupTrailer,
  type ChangeLine,
  type NotCovered,
  pruneBackups,
  type PruneBackupsOptions,
  type PruneBackupsResult,
  type PrunedBackup,
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
