/**
 * The options of each built-in job, as types: what `runJob(rt, "retention",
 * { options })` and a typed config accept. Types only, so nothing here loads a
 * job.
 *
 * @module
 */
import type { ArchiveOptions } from "../../jobs/archive.ts";
import type { BackupOptions } from "../../jobs/backup.ts";
import type { GcOptions } from "../../jobs/gc.ts";
import type { MigrateJobOptions } from "../../jobs/migrate.ts";
import type { MigrateStoreOptions } from "../../jobs/migrate_store.ts";
import type { BuildIndexesOptions } from "../../jobs/build_indexes.ts";
import type { RekeyOptions } from "../../jobs/rekey.ts";
import type { RestoreOptions } from "../../jobs/restore.ts";
import type { RetentionOptions } from "../../jobs/retention.ts";
import type { Job } from "./job.ts";

/**
 * The options of each built-in job by name, after defaults are applied.
 * {@linkcode BuiltinJobName} is its keys.
 *
 * @example
 * ```ts
 * import type { BuiltinJobOptions } from "@flowstate/core/jobs";
 * const retention: Partial<BuiltinJobOptions["retention"]> = { maxAge: "7d", maxRuns: 100 };
 * ```
 */
export interface BuiltinJobOptions {
  /** `retention`: delete old runs by age and count. */
  retention: RetentionOptions;
  /** `gc`: expired entries, orphaned state, temp files, abandoned runs, compaction. */
  gc: GcOptions;
  /** `archive`: move old runs into compressed archive files. */
  archive: ArchiveOptions;
  /** `backup`: write a store (or all) to a backup file. */
  backup: BackupOptions;
  /** `restore`: read a backup file into a store. */
  restore: RestoreOptions;
  /** `migrate`: data migrations up and down. */
  migrate: MigrateJobOptions;
  /** `migrate-store`: move a whole store to another backend. */
  "migrate-store": MigrateStoreOptions;
  /** `rekey`: seal every value of the encrypted stores with their current key. */
  rekey: RekeyOptions;
  /** `build-indexes`: build the indexes the stores declare but lack, with progress. */
  "build-indexes": BuildIndexesOptions;
}

/**
 * The name of a built-in job.
 *
 * @example
 * ```ts
 * import type { BuiltinJobName } from "@flowstate/core/jobs";
 * const name: BuiltinJobName = "retention";
 * ```
 */
export type BuiltinJobName = keyof BuiltinJobOptions;

/**
 * What names a job for `runJob`: a built-in name (checked, with its own
 * options type), any other string (a module path or specifier, with untyped
 * options), or a job object (its own options type).
 *
 * @example
 * ```ts
 * import type { JobRef } from "@flowstate/core/jobs";
 * const builtin: JobRef = "gc";
 * const module: JobRef = "./jobs/report.ts";
 * ```
 */
// deno-lint-ignore no-explicit-any ban-types
export type JobRef = BuiltinJobName | (string & {}) | Job<any>;

/**
 * The options a caller may pass for job `J`: a built-in's own options (each
 * optional, as defaults and the config fill them in), a job object's own
 * options likewise, and `Record<string, unknown>` for a module named by a
 * string, whose options are only known once it is loaded.
 *
 * @example
 * ```ts
 * import type { JobOptionsFor } from "@flowstate/core/jobs";
 * const ok: JobOptionsFor<"retention"> = { maxAge: "1d" }; // { maxAgee: "1d" } does not compile
 * const any: JobOptionsFor<"./jobs/report.ts"> = { whatever: 1 };
 * ```
 */
export type JobOptionsFor<J> = J extends BuiltinJobName ? Partial<BuiltinJobOptions[J]>
  : J extends Job<infer O> ? unknown extends O ? Record<string, unknown> : Partial<O>
  : Record<string, unknown>;
