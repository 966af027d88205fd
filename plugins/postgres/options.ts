/**
 * The postgres plugin's options as a type, in a module of their own that
 * imports nothing: the core names them (to check a config object at compile
 * time) without bringing the `postgres` driver into a program's module graph.
 *
 * @module
 */

/**
 * Validated options of the postgres plugin (checked by the plugin's `postgresOptions` schema).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type PostgresOptions, postgresOptions } from "@flowstate/core/plugins/postgres";
 *
 * const options: PostgresOptions = postgresOptions.parse({ url: "postgres://app@db.internal/app" });
 * assert.deepEqual(
 *   [options.table, options.schema, options.max, options.connectTimeout, options.lockTimeout],
 *   ["flowstate_entries", "public", 4, 10, 5000],
 * );
 * ```
 */
export interface PostgresOptions {
  /** A `postgres://` URL. */
  url: string;
  /** The entries table (default `flowstate_entries`). */
  table: string;
  /** The schema the tables live in (default `public`). */
  schema: string;
  /** Connections (default 4), split between single statements and transactions (one each at least). */
  max: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeout: number;
  /** Milliseconds to wait for a lock another session holds (default 5000; `0`: no limit). */
  lockTimeout: number;
}
