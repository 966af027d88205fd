/**
 * The built-in jobs by name: a leaf module, so the config can check job
 * names without importing the job runner.
 *
 * @module
 */

/** The built-in jobs, by name, as module specifiers relative to this file. */
export const BUILTIN_JOBS: Readonly<Record<string, string>> = {
  retention: "../../jobs/retention.ts",
  gc: "../../jobs/gc.ts",
  archive: "../../jobs/archive.ts",
  backup: "../../jobs/backup.ts",
  restore: "../../jobs/restore.ts",
  migrate: "../../jobs/migrate.ts",
  "migrate-store": "../../jobs/migrate_store.ts",
  rekey: "../../jobs/rekey.ts",
  "build-indexes": "../../jobs/build_indexes.ts",
};

/** Names of the built-in jobs. */
export function builtinJobNames(): string[] {
  return Object.keys(BUILTIN_JOBS);
}

/**
 * The job names `jobs ls` shows and `jobs run` accepts: the built-ins, then
 * those of the config's `jobs:` (`configured`), each once.
 */
export function knownJobNames(configured: Record<string, unknown>): string[] {
  return [...new Set([...builtinJobNames(), ...Object.keys(configured)])];
}

/** The module URL of a built-in job, or `undefined` for another name. */
export function builtinJobUrl(name: string): string | undefined {
  return Object.hasOwn(BUILTIN_JOBS, name)
    ? new URL(BUILTIN_JOBS[name], import.meta.url).href
    : undefined;
}
