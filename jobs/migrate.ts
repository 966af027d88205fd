/**
 * The `migrate` job: data migrations. A migration is a module in a folder
 * (default `./migrations`, relative to the config's directory) named like
 * `0001_add_index.ts`, exporting `up(ctx)` and `down(ctx)`, either as named
 * exports or as the default export made by {@linkcode defineMigration}:
 *
 * ```ts ignore
 * // migrations/0002_rename_counter.ts
 * export const description = "rename the counter key";
 *
 * export async function up({ store }) {
 *   const old = await store.get(["flow", "counter", "n"]);
 *   if (old === null) return;
 *   await store.atomic().check(old.key, old.version).delete(old.key)
 *     .set(["flow", "counter", "count"], old.value).commit();
 * }
 *
 * export async function down({ store }) {
 *   // … the reverse
 * }
 * ```
 *
 * (`export default defineMigration({ description, up, down })` is the typed
 * equivalent.)
 *
 * - Order: by the number before the first `_` (numerically), then by name.
 *   The id of a migration is its file name without the extension.
 * - Record: each applied migration is recorded in the target store at
 *   `["flowstate", "migrations", id]` as {@linkcode MigrationRecord}
 *   (`checksum` is the SHA-256 of the module's source when it was applied).
 *   The record is written only after `up` resolves, in a commit that also
 *   checks the lock, so a migration that throws is never recorded.
 * - Lock: `up` and `down` hold a lease at `["flowstate", "locks", "migrate"]`,
 *   taken with compare-and-set (`ifVersion: null`) and an expiry (`lockTtl`,
 *   default 30 s), renewed every third of that while migrations run and
 *   deleted at the end. A second `up` fails at once with a message naming
 *   the holder; a lock left by a killed process expires by itself.
 * - `down` reverts the most recently numbered applied migrations (by id, the
 *   reverse of the order `up` applies them) and deletes their records.
 * - The lease is renewed on a timer: a migration that blocks the event loop
 *   for longer than `lockTtl` (synchronous work) lets it expire, and is then
 *   not recorded ("Lost the migration lock"). Raise `lockTtl` for those.
 * - A migration is not atomic with its record: if the process dies after `up`
 *   changed data but before the record is written, the next `up` runs it
 *   again. Write migrations so that running them twice is harmless.
 *
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import { durationProblem, parseDuration } from "../src/duration.ts";
import { defineJob, type Job, type JobResult } from "../src/jobs/job.ts";
import {
  migrateDown,
  type MigrateOptions,
  migrateUp,
  type MigrationStatus,
  migrationStatus,
} from "./_migrate_run.ts";

// The parts: finding and loading modules (_migrate_discover.ts), the lock and
// the store a migration sees (_migrate_lock.ts), records, status and the
// up/down runner (_migrate_run.ts). This file: the error and the job.
export {
  compareMigrationIds,
  defineMigration,
  findMigrations,
  type Migration,
  type MigrationContext,
  type MigrationDefinition,
  type MigrationFile,
} from "./_migrate_discover.ts";
export { MIGRATION_LOCK_KEY, type MigrationLockInfo } from "./_migrate_lock.ts";
export {
  migrateDown,
  type MigrateOptions,
  type MigrateResult,
  migrateUp,
  type MigrationRecord,
  MIGRATIONS_PREFIX,
  type MigrationState,
  type MigrationStatus,
  migrationStatus,
} from "./_migrate_run.ts";
import { MigrationError } from "../src/errors.ts";
import { parseJson } from "../src/_json.ts";

export { MigrationError };

const durationSchema = z.union([z.number(), z.string()]).superRefine((value, ctx) => {
  const problem = durationProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem.message });
});

/**
 * Options of the `migrate` job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, runJob } from "@flowstate/core";
 * import type { MigrateJobOptions } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/0001_seed.js`, `export const up = ({ store }) => store.set(["seeded"], true);`);
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const options: Partial<MigrateJobOptions> = { action: "up", dir, store: "main" };
 * assert.equal((await runJob(rt, "migrate", { options })).status, "succeeded");
 * assert.equal((await (await rt.store("main")).get(["seeded"]))?.value, true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface MigrateJobOptions {
  /** `status` and `pending` only read; `up` applies; `down` reverts (default `up`). */
  action: "status" | "pending" | "up" | "down";
  /** The migrations folder, relative to the config's directory (default `./migrations`). */
  dir: string;
  /** The store to migrate (default: the global scope's store). */
  store?: string;
  /** `up` only: apply up to and including this migration (an id or its number). */
  to?: string;
  /** `down` only: how many migrations to revert (default 1). */
  step: number;
  /** How long the lock lives unless renewed: `"30s"` or ms (default `"30s"`). */
  lockTtl: string | number;
}

const optionsSchema: z.ZodType<MigrateJobOptions> = z.strictObject({
  action: z.enum(["status", "pending", "up", "down"]),
  dir: z.string().min(1),
  store: z.string().min(1).optional(),
  to: z.string().min(1).optional(),
  step: z.number().int().min(1),
  lockTtl: durationSchema,
}).superRefine((o, ctx) => {
  if (o.to !== undefined && o.action !== "up") {
    ctx.addIssue({ code: "custom", path: ["to"], message: `"to" applies to action "up" only` });
  }
}) as z.ZodType<MigrateJobOptions>;

/** Default options of the `migrate` job. */
export const defaults = {
  action: "up",
  dir: "./migrations",
  step: 1,
  lockTtl: "30s",
} satisfies Partial<MigrateJobOptions>;

function statusJson(status: MigrationStatus): JobResult {
  return parseJson(JSON.stringify(status));
}

/**
 * The `migrate` job: applies (`up`), reverts (`down`) or reports (`status`,
 * `pending`) the data migrations in `dir` for one store.
 */
const migrateJob: Job<MigrateJobOptions> = defineJob<MigrateJobOptions>({
  name: "migrate",
  description:
    "data migrations: apply (up) or revert (down) the modules in ./migrations under a lock, recording each",
  optionsSchema,
  defaults,
  pathOptions: ["dir"],
  async run(ctx, options) {
    const store = await ctx.store(options.store);
    const dir = resolve(ctx.runtime.config.baseDir, options.dir);
    if (options.action === "status" || options.action === "pending") {
      const status = await migrationStatus(store, dir);
      for (const warning of status.warnings) ctx.log(warning, "warn");
      return options.action === "status"
        ? statusJson(status)
        : { store: status.store, dir: status.dir, pending: status.pending };
    }
    const common: MigrateOptions = {
      dryRun: ctx.dryRun,
      signal: ctx.signal,
      log: (message, level) => ctx.log(message, level),
      progress: ctx.progress,
      clock: ctx.clock,
      lockTtl: parseDuration(options.lockTtl, "lockTtl"),
    };
    const result = options.action === "up"
      ? await migrateUp(store, dir, { ...common, to: options.to })
      : await migrateDown(store, dir, { ...common, step: options.step });
    if (result.dryRun) {
      ctx.log(
        result.plan.length === 0
          ? `Nothing to ${options.action === "up" ? "apply" : "revert"}`
          : `Would ${options.action === "up" ? "apply" : "revert"}: ${result.plan.join(", ")}`,
      );
    }
    return parseJson(JSON.stringify(result));
  },
});

export default migrateJob;
