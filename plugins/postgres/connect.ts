/**
 * Reaching the server: the connection URL (checked, and shown without its
 * password), the driver's options, and `connect()`, which opens a pool on
 * the store's table. The `postgres` npm package is imported by `connect()`
 * (with `client.ts`, which makes its clients), so a program that never opens
 * a postgres store never loads it.
 *
 * @module
 */
import type { Sql } from "postgres";
import {
  StoreClosedError,
  StoreCorruptError,
  StoreMissingError,
  StoreUnavailableError,
} from "../../src/errors.ts";
import { redactUrl } from "../../src/plugin_define.ts";
import {
  codeOf,
  connectionLimitHint,
  isPostgresError,
  isTransientOpenError,
  messageOf,
  TOO_MANY_CONNECTIONS,
} from "./errors.ts";
import { quoteIdent, setUp } from "./schema.ts";
import { PINNED_SEARCH_PATH } from "./statements.ts";
import { TxPool } from "./reserve.ts";

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
  /**
   * Milliseconds a statement waits for a lock another session holds (a row, the table, the
   * store's advisory lock) before it fails (PostgreSQL's `lock_timeout`); `0` waits without limit.
   */
  lockTimeout: 5000,
} as const satisfies {
  table: string;
  schema: string;
  max: number;
  connectTimeout: number;
  lockTimeout: number;
};

/**
 * The longest pause, in seconds, between two attempts of the client to connect again after
 * a connection was lost (its own default grows to 20 s).
 */
export const MAX_RECONNECT_DELAY = 4;

/**
 * Milliseconds a transaction waits, beyond `connectTimeout`, for a connection of its pool once
 * one is free (see `TxPool`): a pause between attempts to connect again
 * ({@linkcode MAX_RECONNECT_DELAY}), and the login after the connect.
 */
export const RESERVE_MARGIN_MS = 2 * MAX_RECONNECT_DELAY * 1000;

/** The client's pause before its `retries`-th attempt to connect again (seconds). */
function reconnectDelay(retries: number): number {
  return (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, MAX_RECONNECT_DELAY);
}

/** The largest `lockTimeout` PostgreSQL accepts (milliseconds, a 32-bit integer). */
export const MAX_LOCK_TIMEOUT = 2_147_483_647;

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
  /** Seconds to wait for a connection (default 10): the server's address, TLS, login. */
  connectTimeout?: number;
  /**
   * Milliseconds a statement waits for a lock held by another session before it fails
   * (default 5000; `0`: no limit). Set on every session as `lock_timeout`; opening (creating
   * the tables, building indexes) waits for other openers without this limit.
   */
  lockTimeout?: number;
  /** The store's name, for error messages. */
  storeName?: string;
  /** Create nothing: a missing table is a `StoreMissingError` (see `PluginContext.mustExist`). */
  mustExist?: boolean;
  /** Give up opening when it aborts (see `PluginContext.signal`): a `StoreClosedError`. */
  signal?: AbortSignal;
}

/**
 * The connections a store of `max` opens in one process at most: single
 * statements get half (rounded up), transactions the rest (at least one
 * each), plus one for LISTEN.
 */
export function poolSizes(max: number): { single: number; tx: number; total: number } {
  const single = Math.max(1, Math.ceil(max / 2));
  const tx = Math.max(1, Math.floor(max / 2));
  return { single, tx, total: single + tx + 1 };
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
): Required<Omit<PostgresDriverOptions, "storeName" | "mustExist" | "signal">> {
  const table = options.table ?? postgresDefaults.table;
  const schema = options.schema ?? postgresDefaults.schema;
  const max = options.max ?? postgresDefaults.max;
  const connectTimeout = options.connectTimeout ?? postgresDefaults.connectTimeout;
  const lockTimeout = options.lockTimeout ?? postgresDefaults.lockTimeout;
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
  if (!Number.isInteger(lockTimeout) || lockTimeout < 0 || lockTimeout > MAX_LOCK_TIMEOUT) {
    throw new RangeError(
      `${what}: lockTimeout must be a whole number of milliseconds in [0, ${MAX_LOCK_TIMEOUT}] ` +
        `(got ${lockTimeout})`,
    );
  }
  return { table, schema, max, connectTimeout, lockTimeout };
}

/** The pools on a store's table, set up and checked. */
export interface Connection {
  /** The pool for single statements (never reserved, see {@linkcode Connection.tx}). */
  sql: Sql;
  /**
   * The pool for transactions: connections reserved one transaction at a time
   * (see `TxPool`). postgres@3.4.9 can hand a connection to a waiting
   * `reserve()` while statements of the pool are still queued onto it; a
   * statement sent before the one ahead of it was described then never gets
   * its answer. Keeping reservations and pooled statements on separate pools
   * rules that out.
   */
  tx: TxPool;
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
  /** Milliseconds a statement waits for another session's lock (`lock_timeout`; 0: no limit). */
  lockTimeout: number;
  /** Seconds to wait for a connection (see {@linkcode PostgresDriverOptions.connectTimeout}). */
  connectTimeout: number;
  /** The server, as `host:port`. */
  address: string;
  /** The `max` option (see {@linkcode PostgresDriverOptions.max}). */
  max: number;
  /** Whether the table has the expiring entries' index (see `setUp`). */
  expiringIndex: boolean;
}

/** A store's connections' lifetime in seconds: 30 to 60 minutes, in steps of 5 (see `connect`). */
function connectionLifetime(): number {
  return 60 * (30 + 5 * Math.floor(Math.random() * 7));
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
  const { table, schema, max, connectTimeout, lockTimeout } = validateDriverOptions(
    options,
    what,
  );
  const parsed = new URL(url);
  const redacted = redactUrl(url, { defaultPort: 5432 });
  const location = `${redacted} (table ${schema}.${table})`;
  const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const sizes = poolSizes(max);
  // The client package, only now (see client.ts).
  const { openClient, sameClient } = await import("./client.ts");
  // Set once the server sent its parameters: the login went through (see the deadline below).
  let loggedIn = false;
  let sql: Sql;
  let tx: TxPool;
  try {
    const settings = {
      connect_timeout: connectTimeout,
      backoff: reconnectDelay,
      // postgres.js gives each connection a random lifetime (30 to 60 min), and Deno's
      // node:timers keeps a list per distinct duration until that time, even once its timer is
      // cleared: a program opening and closing stores kept ~2.6 KB per open for up to an hour.
      // One of seven lifetimes per store instead (stores still spread); a `max_lifetime` in
      // the URL still wins.
      ...(parsed.searchParams.has("max_lifetime") ? {} : { max_lifetime: connectionLifetime() }),
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
        // A statement blocked by another session's lock fails after this (see lockTimeout).
        lock_timeout: lockTimeout,
      },
    };
    // `max` counts both pools (each backend costs the server CPU and memory): half each, at
    // least one.
    // Neither client fetches the array types on a login (see client.ts).
    sql = openClient(url, {
      ...settings,
      max: sizes.single,
      onparameter: () => void (loggedIn = true),
    });
    const pooled = sql;
    // One client of one connection per slot (see TxPool), with the pooled client's settings.
    tx = new TxPool(
      (onclose) => sameClient(pooled, { max: 1, onclose }),
      sizes.tx,
      connectTimeout * 1000 + RESERVE_MARGIN_MS,
    );
  } catch (err) {
    // Deno permissions: the client reads PG* environment variables (--allow-env).
    throw new Error(
      `${what}: the PostgreSQL client cannot start: ${messageOf(err).replaceAll(url, redacted)}`,
      { cause: err },
    );
  }
  // The client's connect_timeout covers the TCP connect only: a peer that answers and closes
  // (not PostgreSQL, or a proxy with nothing behind it) makes it reconnect, without end. So a
  // deadline of our own on the login; what comes after it (setUp) is not bounded by it.
  const deadline = Promise.withResolvers<never>();
  const timer = setTimeout(() => {
    if (!loggedIn) deadline.reject(new ConnectDeadlineError());
  }, connectTimeout * 1000);
  // Given up (the runtime closes): the clients are ended at once, whatever they wait for.
  const givenUp = () =>
    deadline.reject(
      new StoreClosedError(
        `${what}: given up while it opened (PostgreSQL at ${hostPort(parsed)}): the caller closed`,
      ),
    );
  if (options.signal?.aborted) givenUp();
  options.signal?.addEventListener("abort", givenUp, { once: true });
  try {
    const { lockId, expiringIndex, version } = await Promise.race([
      setUp(sql, {
        schema,
        table,
        qualified,
        location,
        what,
        storeName,
        mustExist: options.mustExist ?? false,
      }),
      deadline.promise,
    ]);
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
      lockTimeout,
      connectTimeout,
      address: hostPort(parsed),
      max,
    };
  } catch (err) {
    await Promise.all([sql.end({ timeout: 0 }), tx.end(0)]).catch(() => {});
    if (
      err instanceof StoreCorruptError || err instanceof StoreMissingError ||
      err instanceof RangeError || err instanceof StoreClosedError
    ) throw err;
    const where = `PostgreSQL at ${hostPort(parsed)} (database ${
      JSON.stringify(databaseOf(parsed))
    })`;
    let cause = messageOf(err).replaceAll(url, redacted);
    if (err instanceof ConnectDeadlineError || codeOf(err) === "CONNECT_TIMEOUT") {
      cause = `no connection within connectTimeout (${connectTimeout} s)`;
      if (await answersOtherProtocol(parsed)) {
        cause = `${hostPort(parsed)} answered, but not as PostgreSQL (check the port)`;
      }
    }
    if (codeOf(err) === TOO_MANY_CONNECTIONS) cause += `: ${connectionLimitHint(max, sizes.total)}`;
    const reach = isPostgresError(err) ? `${where} refused` : `cannot reach ${where}`;
    throw new StoreUnavailableError(`${what}: ${reach}: ${cause}`, {
      store: storeName,
      address: hostPort(parsed),
      transient: isTransientOpenError(err),
    }, { cause: err });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", givenUp);
  }
}

/** No login within `connectTimeout` (the client may still be trying: it is ended). */
class ConnectDeadlineError extends Error {
  override name = "ConnectDeadlineError";
}

/** How long {@linkcode answersOtherProtocol} waits for the peer, in milliseconds. */
const PROBE_MS = 1000;

/**
 * Whether the server at `url` answers a PostgreSQL SSLRequest with something
 * else than PostgreSQL's one-byte answer (`S`, `N`, or an error `E`): an HTTP
 * server, a proxy's page. `false` when it cannot be reached, says nothing
 * within {@linkcode PROBE_MS}, or closes without a byte.
 */
async function answersOtherProtocol(url: URL): Promise<boolean> {
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(url.port || "5432");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), PROBE_MS));
  const connecting = Deno.connect({ hostname, port }).catch(() => null);
  let conn: Deno.Conn | null = null;
  try {
    conn = await Promise.race([connecting, expired]);
    if (conn === null) return false;
    // SSLRequest: length 8, code 80877103.
    await conn.write(new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47]));
    const buffer = new Uint8Array(1);
    const n = await Promise.race([conn.read(buffer), expired]);
    if (n === null || n === 0) return false;
    return !["S", "N", "E"].includes(String.fromCharCode(buffer[0]));
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    // Closed once it connects, if it connects after the probe gave up.
    if (conn === null) void connecting.then((c) => c?.close());
    else conn.close();
  }
}
