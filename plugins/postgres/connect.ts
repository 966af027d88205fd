/**
 * Reaching the server: the connection URL (checked, and shown without its
 * password), the driver's options, and `connect()`, which opens a pool on
 * the store's table. The `postgres` npm package is imported by `connect()`,
 * so a program that never opens a postgres store never loads it.
 *
 * @module
 */
import type { Sql } from "postgres";
import { StoreCorruptError, StoreMissingError, StoreUnavailableError } from "../../src/errors.ts";
import { redactUrl } from "../../src/plugin_define.ts";
import { codeOf, isPostgresError, messageOf } from "./errors.ts";
import { quoteIdent, setUp } from "./schema.ts";
import { PINNED_SEARCH_PATH } from "./statements.ts";

/**
 * Default option values of the postgres plugin.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { postgresDefaults, postgresOptions } from "@flowstate/core/plugins/postgres";
 *
 * assert.equal(postgresDefaults.table, "flowstate_entries");
 * const options = postgresOptions.parse({ url: "postgres://app@localhost/app" });
 * assert.equal(options.max, postgresDefaults.max);
 * ```
 */
export const postgresDefaults = {
  /** The table that holds the entries (its metadata lives in `<table>_meta`). */
  table: "flowstate_entries",
  /** The schema (namespace) of the tables; created if missing. */
  schema: "public",
  /** Connections in all, split between single statements and transactions. */
  max: 4,
  /** Seconds to wait for a connection to be ready before failing. */
  connectTimeout: 10,
} as const satisfies { table: string; schema: string; max: number; connectTimeout: number };

/** Lowercase SQL identifiers: quoting then never changes their meaning or case. */
export const TABLE_NAME = /^[a-z_][a-z0-9_]{0,47}$/;
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** What a table name may be, for messages. */
export const TABLE_RULE =
  "lowercase letters, digits and _, starting with a letter or _, at most 48 characters, not ending in _meta";
/** What a schema name may be, for messages. */
export const SCHEMA_RULE =
  "lowercase letters, digits and _, starting with a letter or _, at most 63 characters";

/** A `postgres://` or `postgresql://` URL with a host. */
export function isPostgresUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === "postgres:" || parsed.protocol === "postgresql:") &&
      parsed.hostname !== "";
  } catch {
    return false;
  }
}

/** A table name Flowstate accepts (its `_meta` table's name must be one too). */
export function isTableName(name: string): boolean {
  return TABLE_NAME.test(name) && !name.endsWith("_meta");
}

/**
 * Options for {@linkcode PostgresDriver.open}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PostgresDriver, type PostgresDriverOptions } from "@flowstate/core/plugins/postgres";
 *
 * const options: PostgresDriverOptions = { table: "bad name", storeName: "main" };
 * // options are checked before any connection is made
 * await assert.rejects(() => PostgresDriver.open("postgres://app@localhost/app", options), /table/);
 * ```
 */
export interface PostgresDriverOptions {
  /** The entries table (default `flowstate_entries`). */
  table?: string;
  /** The schema (default `public`). */
  schema?: string;
  /**
   * Connections in all (default 4), split between two pools: single
   * statements get half (rounded up), transactions the rest (at least one
   * each, so `max: 1` opens two); plus one connection for LISTEN while
   * something watches or waits for a signal.
   */
  max?: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeout?: number;
  /** The store's name, for error messages. */
  storeName?: string;
  /** Create nothing: a missing table is a `StoreMissingError` (see `PluginContext.mustExist`). */
  mustExist?: boolean;
}

/** Where the server is, without the password, as `host:port`. */
function hostPort(url: URL): string {
  return `${url.hostname}:${url.port || "5432"}`;
}

/** The database a URL names (the client defaults it to the user name). */
function databaseOf(url: URL): string {
  const path = url.pathname.slice(1);
  try {
    return decodeURIComponent(path) || decodeURIComponent(url.username);
  } catch {
    return path;
  }
}

function validateDriverOptions(
  options: PostgresDriverOptions,
  what: string,
): Required<Omit<PostgresDriverOptions, "storeName" | "mustExist">> {
  const table = options.table ?? postgresDefaults.table;
  const schema = options.schema ?? postgresDefaults.schema;
  const max = options.max ?? postgresDefaults.max;
  const connectTimeout = options.connectTimeout ?? postgresDefaults.connectTimeout;
  if (typeof table !== "string" || !isTableName(table)) {
    throw new RangeError(`${what}: table ${JSON.stringify(table)} must be ${TABLE_RULE}`);
  }
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
    throw new RangeError(`${what}: schema ${JSON.stringify(schema)} must be ${SCHEMA_RULE}`);
  }
  if (!Number.isInteger(max) || max < 1) {
    throw new RangeError(`${what}: max must be a positive integer (got ${max})`);
  }
  if (typeof connectTimeout !== "number" || !(connectTimeout > 0) || connectTimeout > 3600) {
    throw new RangeError(
      `${what}: connectTimeout must be a number of seconds in (0, 3600] (got ${connectTimeout})`,
    );
  }
  return { table, schema, max, connectTimeout };
}

/** The pools on a store's table, set up and checked. */
export interface Connection {
  /** The pool for single statements (never reserved, see {@linkcode Connection.tx}). */
  sql: Sql;
  /**
   * The pool for transactions: only `reserve()` and `begin()` are used on it.
   * postgres@3.4.9 can hand a connection to a waiting `reserve()` while
   * statements of the pool are still queued onto it; a statement sent before
   * the one ahead of it was described then never gets its answer. Keeping
   * reservations and pooled statements on separate pools rules that out.
   */
  tx: Sql;
  /** The store's name, for messages. */
  storeName: string;
  /** The server URL without the password, and the table. */
  location: string;
  /** The table's name, schema-qualified and quoted. */
  qualified: string;
  /** The table's advisory lock id (its lock class is `LOCK_CLASS`). */
  lockId: number;
  /** The schema, unquoted. */
  schema: string;
  /** The table, unquoted. */
  table: string;
  /** The store's schema version, as read at open (2: the change feed has its table). */
  version: number;
  /** Whether the table has the expiring entries' index (see `setUp`). */
  expiringIndex: boolean;
}

/**
 * Connect to `url` and open (creating if needed) the store's table. Throws
 * a `StoreUnavailableError` naming the store, the server (`host:port`, never
 * the password) and the cause when the server cannot be reached or refuses
 * the login, and a `StoreCorruptError` (changing nothing) when the table is not
 * a Flowstate table or has a newer schema version.
 */
export async function connect(url: string, options: PostgresDriverOptions): Promise<Connection> {
  const storeName = options.storeName ?? "postgres";
  const what = `Cannot open store "${storeName}"`;
  if (typeof url !== "string" || !isPostgresUrl(url)) {
    throw new TypeError(
      `${what}: url must be a postgres:// URL with a host, like "postgres://user@localhost:5432/app"`,
    );
  }
  const { table, schema, max, connectTimeout } = validateDriverOptions(options, what);
  const parsed = new URL(url);
  const redacted = redactUrl(url, { defaultPort: 5432 });
  const location = `${redacted} (table ${schema}.${table})`;
  const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const { default: postgres } = await import("postgres");
  let sql: Sql;
  let tx: Sql;
  try {
    const settings = {
      connect_timeout: connectTimeout,
      onnotice: () => {},
      connection: {
        application_name: "flowstate",
        // Every statement and function of the store is written for read committed: a feed
        // write reads the head after waiting for its lock, in a snapshot taken then. A database
        // or role default of repeatable read (or serializable) would read it from before the
        // wait: duplicate feed numbers. Pinned here, at connection start (a statement's own
        // `BEGIN ISOLATION LEVEL` could still ask for another).
        default_transaction_isolation: "read committed" as const,
        // Only the built-ins and what the store names with its schema (see PINNED_SEARCH_PATH).
        search_path: PINNED_SEARCH_PATH,
      },
    };
    // `max` counts both pools (each backend costs the server CPU and memory): half each, at
    // least one.
    sql = postgres(url, { ...settings, max: Math.max(1, Math.ceil(max / 2)) });
    tx = postgres(url, { ...settings, max: Math.max(1, Math.floor(max / 2)) });
  } catch (err) {
    // Deno permissions: the client reads PG* environment variables (--allow-env).
    throw new Error(
      `${what}: the PostgreSQL client cannot start: ${messageOf(err).replaceAll(url, redacted)}`,
      { cause: err },
    );
  }
  try {
    const { lockId, expiringIndex, version } = await setUp(sql, {
      schema,
      table,
      qualified,
      location,
      what,
      storeName,
      mustExist: options.mustExist ?? false,
    });
    return {
      sql,
      tx,
      storeName,
      location,
      qualified,
      lockId,
      schema,
      table,
      expiringIndex,
      version,
    };
  } catch (err) {
    await Promise.all([sql.end({ timeout: 0 }), tx.end({ timeout: 0 })]).catch(() => {});
    if (
      err instanceof StoreCorruptError || err instanceof StoreMissingError ||
      err instanceof RangeError
    ) throw err;
    const where = `PostgreSQL at ${hostPort(parsed)} (database ${
      JSON.stringify(databaseOf(parsed))
    })`;
    let cause = messageOf(err).replaceAll(url, redacted);
    if (codeOf(err) === "CONNECT_TIMEOUT") {
      cause = `no connection within connectTimeout (${connectTimeout} s)`;
    }
    const reach = isPostgresError(err) ? `${where} refused` : `cannot reach ${where}`;
    throw new StoreUnavailableError(`${what}: ${reach}: ${cause}`, {
      store: storeName,
      address: hostPort(parsed),
    }, { cause: err });
  }
}
