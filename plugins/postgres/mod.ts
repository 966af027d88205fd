/**
 * The `postgres` plugin: a durable, multi-process store in one PostgreSQL
 * table, built on the `postgres` npm package (loaded only when a store opens).
 *
 * ```yaml
 * stores:
 *   main: { plugin: postgres, url: "${env.DATABASE_URL}", table: flowstate_entries }
 * ```
 *
 * - Keys are stored as `BYTEA` holding memcmp-ordered bytes (see `encodeKey`):
 *   PostgreSQL compares `bytea` byte-wise, so prefix and range scans are
 *   primary-key range scans in Flowstate key order.
 * - Values are stored as `TEXT`, exactly the JSON text the core hands over, not
 *   `jsonb`: `jsonb` rejects `\u0000` and lone UTF-16 surrogates in strings,
 *   which a Store must hold. Queries cast to `jsonb` on the fly and fall back
 *   to the core when a row cannot be cast.
 * - Compare-and-set is exact across processes: a commit with checks takes a
 *   per-table transaction-level advisory lock (exclusive), and every other
 *   write takes the same lock shared, so no write can land between a commit's
 *   checks and its writes, including writes that create a checked-absent key
 *   (`SELECT … FOR UPDATE` cannot lock a row that does not exist yet).
 * - A commit is one round trip once a connection has prepared its statements:
 *   a write without checks is one statement (several entries travel as
 *   `unnest` arrays, so a 10 000-entry atomic operation is one statement); a
 *   checked commit pipelines `BEGIN`, the lock, one statement that checks and
 *   writes, and `COMMIT`.
 * - Deno permissions: `--allow-net` for the server, `--allow-env` (the client
 *   reads the `PG*` variables, such as `PGPASSWORD`), and `--allow-sys` only
 *   when the URL has no user name (the client then asks the OS for one).
 *
 * Reading order: this file (options and the plugin), `driver.ts` (the
 * driver), `connect.ts` (the URL, the driver's options, opening a pool),
 * `schema.ts` (the tables, and how they are checked and created),
 * `statements.ts` (the SQL of reads and writes), `query.ts` (queries in SQL),
 * `errors.ts` (what PostgreSQL's errors mean). Listing pages and key bounds
 * are shared with the sqlite plugin in `../_sql/`.
 *
 * @module
 */
import { z } from "zod";
import { definePlugin, type ParsingSchema, type Plugin } from "../../src/plugin_define.ts";
import {
  isPostgresUrl,
  isTableName,
  MAX_LOCK_TIMEOUT,
  postgresDefaults,
  SCHEMA_NAME,
  SCHEMA_RULE,
  TABLE_RULE,
} from "./connect.ts";
import { PostgresDriver } from "./driver.ts";
import type { PostgresOptions } from "./options.ts";

export { postgresDefaults, type PostgresDriverOptions } from "./connect.ts";
export { PostgresDriver } from "./driver.ts";

export type { PostgresOptions } from "./options.ts";

/**
 * The schema of the postgres plugin's options (a zod schema).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { postgresOptions } from "@flowstate/core/plugins/postgres";
 *
 * const options = postgresOptions.parse({ url: "postgres://app@db.internal:5432/app", max: 8 });
 * assert.equal(options.max, 8);
 * assert.equal(options.table, "flowstate_entries");
 * assert.equal(postgresOptions.safeParse({ url: "mysql://db/app" }).success, false);
 * ```
 */
export const postgresOptions: ParsingSchema<PostgresOptions> = z.strictObject({
  /**
   * A `postgres://user:password@host:port/database` URL (`postgresql://` works
   * too). Put the password in an environment variable: `"${env.DATABASE_URL}"`.
   */
  url: z.string().refine(isPostgresUrl, {
    message: 'must be a postgres:// URL with a host, like "postgres://user@localhost:5432/app"',
  }),
  /** The entries table; `<table>_meta` holds its schema version. */
  table: z.string().refine(isTableName, { message: `must be ${TABLE_RULE}` }).default(
    postgresDefaults.table,
  ),
  /** The schema the tables live in; created if it does not exist. */
  schema: z.string().regex(SCHEMA_NAME, { message: `must be ${SCHEMA_RULE}` }).default(
    postgresDefaults.schema,
  ),
  /** Connections, split between single statements and transactions (at least one each). */
  max: z.number().int().min(1).max(1000).default(postgresDefaults.max),
  /** Seconds to wait for a connection (TCP connect, TLS, authentication) before failing. */
  connectTimeout: z.number().positive().max(3600).default(postgresDefaults.connectTimeout),
  /**
   * Milliseconds a read or write waits for a lock another session holds (a row in an open
   * transaction, `LOCK TABLE`) before it fails with an error naming the store and table
   * (PostgreSQL's `lock_timeout`, set on every session; `0` waits without limit). Like the
   * sqlite plugin's busyTimeout. Opening the store waits for other processes setting it up
   * (creating tables, building indexes) without this limit.
   */
  lockTimeout: z.number().int().min(0).max(MAX_LOCK_TIMEOUT).default(postgresDefaults.lockTimeout),
});

/**
 * The postgres plugin: `openStore({ plugin: "postgres", url })`. The
 * `postgres` npm package is imported by `open()`, so a program that never
 * opens a postgres store never loads it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import postgres, { postgresOptions } from "@flowstate/core/plugins/postgres";
 *
 * // What a config's `{ plugin: postgres, url: … }` becomes, defaults filled in.
 * // (Opening a store needs a server: `await openStore({ plugin: "postgres", url })`.)
 * const options = postgresOptions.parse({ url: "postgres://app@db.internal:5432/app" });
 * assert.equal(postgres.name, "postgres"); // the default export: `openStore({ plugin: postgres, url })`
 * assert.equal(options.table, "flowstate_entries");
 * assert.equal(options.schema, "public");
 * ```
 */
const postgresPlugin: Plugin<PostgresOptions> = definePlugin({
  name: "postgres",
  description: "one PostgreSQL table (npm:postgres); durable, multi-process, native queries",
  optionsSchema: postgresOptions,
  open(options, context) {
    return PostgresDriver.open(options.url, {
      table: options.table,
      schema: options.schema,
      max: options.max,
      connectTimeout: options.connectTimeout,
      lockTimeout: options.lockTimeout,
      storeName: context.storeName,
      mustExist: context.mustExist ?? false,
      ...(context.signal ? { signal: context.signal } : {}),
    });
  },
});
export default postgresPlugin;
