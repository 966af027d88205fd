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
 * @module
 */
import type { PostgresError, Row, RowList, Sql } from "postgres";
import { z } from "zod";
import { StoreClosedError, StoreCorruptError } from "../../src/errors.ts";
import { definePlugin, type ParsingSchema, type Plugin } from "../../src/plugin.ts";
import type {
  ClearRange,
  CommitRequest,
  DriverCommitResult,
  KeyRange,
  Mutation,
  RawEntry,
  StoreDriver,
} from "../../src/store/driver.ts";
import { byteBounds, encodeKey } from "../../src/store/keys.ts";
import type { NormalizedQuery } from "../../src/store/query.ts";
import type { AtomicCheck, Capabilities, JsonValue, Key } from "../../src/store/types.ts";
import { boundsWhere } from "../_sql/bounds.ts";
import { entryOf, type EntryRow, KeysetPages } from "../_sql/keyset.ts";

/** Default option values of the postgres plugin. */
export const postgresDefaults = {
  /** The table that holds the entries (its metadata lives in `<table>_meta`). */
  table: "flowstate_entries",
  /** The schema (namespace) of the tables; created if missing. */
  schema: "public",
  /** Connections in the pool. */
  max: 4,
  /** Seconds to wait for a connection to be ready before failing. */
  connectTimeout: 10,
} as const satisfies { table: string; schema: string; max: number; connectTimeout: number };

/** Lowercase SQL identifiers: quoting then never changes their meaning or case. */
const TABLE_NAME = /^[a-z_][a-z0-9_]{0,47}$/;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const TABLE_RULE =
  "lowercase letters, digits and _, starting with a letter or _, at most 48 characters, not ending in _meta";
const SCHEMA_RULE =
  "lowercase letters, digits and _, starting with a letter or _, at most 63 characters";

function isPostgresUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === "postgres:" || parsed.protocol === "postgresql:") &&
      parsed.hostname !== "";
  } catch {
    return false;
  }
}

function isTableName(name: string): boolean {
  return TABLE_NAME.test(name) && !name.endsWith("_meta");
}

/** Validated options of the postgres plugin (see {@linkcode postgresOptions}). */
export interface PostgresOptions {
  /** A `postgres://` URL. */
  url: string;
  /** The entries table (default `flowstate_entries`). */
  table: string;
  /** The schema the tables live in (default `public`). */
  schema: string;
  /** Connections in the pool (default 4). */
  max: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeout: number;
}

/** The schema of the postgres plugin's options (a zod schema). */
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
  /** Connections in the pool. */
  max: z.number().int().min(1).max(1000).default(postgresDefaults.max),
  /** Seconds to wait for a connection (TCP connect, TLS, authentication) before failing. */
  connectTimeout: z.number().positive().max(3600).default(postgresDefaults.connectTimeout),
});

/** Options for {@linkcode PostgresDriver.open}. */
export interface PostgresDriverOptions {
  /** The entries table (default `flowstate_entries`). */
  table?: string;
  /** The schema (default `public`). */
  schema?: string;
  /** Pool size (default 4). */
  max?: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeout?: number;
  /** The store's name, for error messages. */
  storeName?: string;
}

/** The schema version this code reads and writes. */
const SCHEMA_VERSION = 1;
const FORMAT = "flowstate.postgres";
const PURGE_BATCH_SIZE = 1000;
/** How many times a commit is retried after PostgreSQL aborted it for a deadlock. */
const MAX_COMMIT_ATTEMPTS = 5;
/** Seconds `close()` lets running queries finish before it drops the connections. */
const CLOSE_TIMEOUT = 5;
/** Advisory lock class of every Flowstate table lock (the object id is the table's hash). */
const LOCK_CLASS = 0x464c5354; // "FLST"

const LIVE = "(expires_at IS NULL OR expires_at > $NOW::float8)";
/**
 * `unsafe()` defaults to unnamed statements, parsed and planned on every call
 * after an extra round trip to learn parameter types; the store's statements
 * are a fixed set, so each connection prepares them once.
 */
const PREPARED = { prepare: true } as const;

// ignoreBOM: a key element may start with U+FEFF, which must survive decoding.

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Hex text of bytes: keys travel in arrays as hex text and are `decode(…, 'hex')`d in SQL. */
function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]];
  return out;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The SQLSTATE of a PostgreSQL error, or the driver's code of a connection error. */
function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function isPostgresError(err: unknown): err is PostgresError {
  return err instanceof Error && err.name === "PostgresError";
}

/** Deadlock detected / serialization failure: the whole transaction was rolled back. */
function isRetryable(err: unknown): boolean {
  const code = codeOf(err);
  return isPostgresError(err) && (code === "40P01" || code === "40001");
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

/** The URL without the password (nor any query parameter whose name mentions one). */
function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "postgres://(unparsable URL)";
  }
  const user = parsed.username === "" ? "" : `${parsed.username}@`;
  const params = [...parsed.searchParams].filter(([name]) => !/pass|secret|key/i.test(name));
  const query = params.length === 0 ? "" : `?${new URLSearchParams(params)}`;
  return `${parsed.protocol}//${user}${hostPort(parsed)}${parsed.pathname}${query}`;
}

/** Mutations reduced to the last write per key, as sorted arrays for `unnest`. */
interface WritePlan {
  setKeys: string[];
  setValues: string[];
  setExpires: (number | null)[];
  deleteKeys: string[];
  /** The single mutation, when there is exactly one (a cheaper statement). */
  single?: { mutation: Exclude<Mutation, { type: "clear" }>; key: Uint8Array };
}

/**
 * The SQL condition of a key range, with its parameters numbered from
 * `first`: `key >= $n` / `key > $n` / `key < $n`, or `true` for every key.
 */
function rangeWhere(range: ClearRange, first: number): { where: string; params: Uint8Array[] } {
  const params: Uint8Array[] = [];
  const where = boundsWhere(
    byteBounds(range),
    (bytes) => `$${first + params.push(bytes) - 1}::bytea`,
  );
  return { where: where.length === 0 ? "true" : where.join(" AND "), params };
}

function planWrites(mutations: readonly Exclude<Mutation, { type: "clear" }>[]): WritePlan {
  const plan: WritePlan = { setKeys: [], setValues: [], setExpires: [], deleteKeys: [] };
  if (mutations.length === 1) {
    plan.single = { mutation: mutations[0], key: encodeKey(mutations[0].key) };
    return plan;
  }
  // A later write to the same key wins; one row per key also keeps
  // INSERT … ON CONFLICT from touching a row twice.
  const last = new Map<string, Mutation>();
  for (const m of mutations) {
    const hex = toHex(encodeKey(m.key));
    last.delete(hex);
    last.set(hex, m);
  }
  // Sorted, so concurrent batches lock rows in the same order (no deadlocks).
  for (const hex of [...last.keys()].sort()) {
    const m = last.get(hex)!;
    if (m.type === "set") {
      plan.setKeys.push(hex);
      plan.setValues.push(m.value);
      plan.setExpires.push(m.expiresAt);
    } else {
      plan.deleteKeys.push(hex);
    }
  }
  return plan;
}

/** The SQL text of one store's statements (its table name is part of the text). */
interface Statements {
  get: string;
  getMany: string;
  setOne: string;
  deleteOne: string;
  /** $1 delete keys, $2 set keys, $3 values, $4 expiries, $5 version. */
  write: string;
  /** $1 check keys, $2 check versions, $3 now, then as `write` shifted by 3. */
  checkedWrite: string;
  /** $1 check keys, $2 check versions, $3 now. */
  check: string;
  lock: string;
  /** A condition that takes the store's shared lock (for unchecked writes). */
  sharedLock: string;
  purge: string;
}

function statements(t: string, lockId: number): Statements {
  const shared = `(SELECT true FROM pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId}))`;
  const upsert = "ON CONFLICT (key) DO UPDATE SET value = excluded.value, " +
    "version = excluded.version, expires_at = excluded.expires_at";
  const live = (n: number) => LIVE.replace("$NOW", `$${n}`);
  const deleteMany = (keys: number, guard: string) =>
    `DELETE FROM ${t} WHERE key IN (SELECT decode(k, 'hex') FROM unnest($${keys}::text[]) AS k) ` +
    `AND ${guard}`;
  const insertMany = (first: number, guard: string) =>
    `INSERT INTO ${t} (key, value, version, expires_at) ` +
    `SELECT decode(u.k, 'hex'), u.v, $${first + 3}::text, u.x ` +
    `FROM unnest($${first}::text[], $${first + 1}::text[], $${first + 2}::float8[]) ` +
    `WITH ORDINALITY AS u(k, v, x, i) WHERE ${guard} ORDER BY u.i ${upsert}`;
  const failedChecks = `SELECT c.i::int AS i FROM unnest($1::text[], $2::text[]) ` +
    `WITH ORDINALITY AS c(k, v, i) LEFT JOIN ${t} AS e ON e.key = decode(c.k, 'hex') ` +
    `WHERE (CASE WHEN e.expires_at IS NULL OR e.expires_at > $3::float8 THEN e.version END) ` +
    `IS DISTINCT FROM c.v`;
  return {
    get: `SELECT value, version, expires_at FROM ${t} WHERE key = $1 AND ${live(2)}`,
    getMany: `SELECT key, value, version, expires_at FROM ${t} WHERE key IN ` +
      `(SELECT decode(k, 'hex') FROM unnest($1::text[]) AS k) AND ${live(2)}`,
    setOne: `INSERT INTO ${t} (key, value, version, expires_at) ` +
      `SELECT $1::bytea, $2::text, $3::text, $4::float8 WHERE ${shared} ${upsert}`,
    deleteOne: `DELETE FROM ${t} WHERE key = $1 AND ${shared}`,
    write: `WITH d AS (${deleteMany(1, shared)}), i AS (${insertMany(2, shared)}) SELECT 1`,
    checkedWrite: `WITH bad AS MATERIALIZED (${failedChecks}), ` +
      `d AS (${deleteMany(4, "NOT EXISTS (SELECT 1 FROM bad)")}), ` +
      `i AS (${insertMany(5, "NOT EXISTS (SELECT 1 FROM bad)")}) SELECT i FROM bad ORDER BY i`,
    check: `${failedChecks} ORDER BY c.i`,
    lock: `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${lockId})`,
    sharedLock: shared,
    purge: `DELETE FROM ${t} WHERE key IN (SELECT key FROM ${t} WHERE expires_at <= $1::float8 ` +
      `LIMIT ${PURGE_BATCH_SIZE}) AND expires_at <= $1::float8 AND ${shared}`,
  };
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function validateDriverOptions(
  options: PostgresDriverOptions,
  what: string,
): Required<Omit<PostgresDriverOptions, "storeName">> {
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

/**
 * The postgres driver: a connection pool (the `postgres` npm package, imported
 * when the first store opens) and one entries table.
 *
 * Most code opens it through the plugin (`openStore({ plugin: "postgres", url })`);
 * use {@linkcode PostgresDriver.open} to get the driver itself.
 */
export class PostgresDriver implements StoreDriver {
  /** The server URL without the password, and the table. */
  readonly location: string;
  /** Everything is native: persistence, expiry, count, clear, query, multi-process. */
  readonly capabilities: Readonly<Capabilities> = Object.freeze({
    persistent: true,
    expiry: true,
    query: true,
    count: true,
    clear: true,
    atomicClear: true,
    multiProcess: true,
  });
  #sql: Sql;
  #storeName: string;
  #table: string;
  #sqlText: Statements;
  #closed = false;

  private constructor(
    sql: Sql,
    location: string,
    storeName: string,
    table: string,
    lockId: number,
  ) {
    this.#sql = sql;
    this.location = location;
    this.#storeName = storeName;
    this.#table = table;
    this.#sqlText = statements(table, lockId);
  }

  /**
   * Connect to `url` and open (creating if needed) the store's table. Throws
   * a clear error naming the store, the server (`host:port`, never the
   * password) and the cause when the server cannot be reached or refuses the
   * login, and a {@linkcode StoreCorruptError} (changing nothing) when the
   * table is not a Flowstate table or has a newer schema version.
   */
  static async open(url: string, options: PostgresDriverOptions = {}): Promise<PostgresDriver> {
    const storeName = options.storeName ?? "postgres";
    const what = `Cannot open store "${storeName}"`;
    if (typeof url !== "string" || !isPostgresUrl(url)) {
      throw new TypeError(
        `${what}: url must be a postgres:// URL with a host, like "postgres://user@localhost:5432/app"`,
      );
    }
    const { table, schema, max, connectTimeout } = validateDriverOptions(options, what);
    const parsed = new URL(url);
    const redacted = redactUrl(url);
    const location = `${redacted} (table ${schema}.${table})`;
    const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`;
    const { default: postgres } = await import("postgres");
    let sql: Sql;
    try {
      sql = postgres(url, {
        max,
        connect_timeout: connectTimeout,
        onnotice: () => {},
        connection: { application_name: "flowstate" },
      });
    } catch (err) {
      // Deno permissions: the client reads PG* environment variables (--allow-env).
      throw new Error(
        `${what}: the PostgreSQL client cannot start: ${messageOf(err).replaceAll(url, redacted)}`,
        { cause: err },
      );
    }
    try {
      const lockId = await setUp(sql, { schema, table, qualified, location, what });
      return new PostgresDriver(sql, location, storeName, qualified, lockId);
    } catch (err) {
      await sql.end({ timeout: 0 }).catch(() => {});
      if (err instanceof StoreCorruptError || err instanceof RangeError) throw err;
      const where = `PostgreSQL at ${hostPort(parsed)} (database ${
        JSON.stringify(databaseOf(parsed))
      })`;
      let cause = messageOf(err).replaceAll(url, redacted);
      if (codeOf(err) === "CONNECT_TIMEOUT") {
        cause = `no connection within connectTimeout (${connectTimeout} s)`;
      }
      const reach = isPostgresError(err) ? `${where} refused` : `cannot reach ${where}`;
      throw new Error(`${what}: ${reach}: ${cause}`, { cause: err });
    }
  }

  #assertOpen(what: string): void {
    if (this.#closed) {
      throw new StoreClosedError(
        `${what}: store "${this.#storeName}" (${this.location}) is closed`,
      );
    }
  }

  /** An error that says what failed, on which store, and why (the driver's error as cause). */
  #error(what: string, err: unknown): Error {
    if (err instanceof StoreClosedError) return err;
    if (this.#closed) {
      return new StoreClosedError(
        `${what}: store "${this.#storeName}" (${this.location}) was closed`,
        { cause: err },
      );
    }
    const code = codeOf(err);
    const detail = isPostgresError(err)
      ? `PostgreSQL error ${code}: ${err.message}`
      : messageOf(err);
    return new Error(`${what}: store "${this.#storeName}" (${this.location}): ${detail}`, {
      cause: err,
    });
  }

  async #run<T extends Row[]>(
    what: string,
    text: string,
    params: unknown[],
  ): Promise<RowList<T>> {
    this.#assertOpen(what);
    try {
      return await this.#sql.unsafe<T>(text, params as never[], PREPARED);
    } catch (err) {
      throw this.#error(what, err);
    }
  }

  /** One live entry, or `null`. */
  async get(key: Key, now: number): Promise<RawEntry | null> {
    const rows = await this.#run<Omit<EntryRow, "key">[]>("Cannot get", this.#sqlText.get, [
      encodeKey(key),
      now,
    ]);
    if (rows.length === 0) return null;
    const row = rows[0];
    return { key, value: row.value, version: row.version, expiresAt: row.expires_at };
  }

  /** Several live entries from one statement (one snapshot), in the order of `keys`. */
  async getMany(keys: readonly Key[], now: number): Promise<(RawEntry | null)[]> {
    if (keys.length <= 1) return await Promise.all(keys.map((k) => this.get(k, now)));
    const hex = keys.map((k) => toHex(encodeKey(k)));
    const rows = await this.#run<EntryRow[]>("Cannot getMany", this.#sqlText.getMany, [
      [...new Set(hex)],
      now,
    ]);
    const found = new Map<string, EntryRow>();
    for (const row of rows) found.set(toHex(row.key), row);
    return keys.map((key, i) => {
      const row = found.get(hex[i]);
      return row === undefined
        ? null
        : { key, value: row.value, version: row.version, expiresAt: row.expires_at };
    });
  }

  /**
   * Live entries in key order, fetched in pages of `batchSize` (default 256)
   * by keyset pagination: no transaction stays open between pages, and each
   * page sees the latest commits.
   */
  async *list(range: KeyRange, now: number): AsyncGenerator<RawEntry> {
    const what = "Cannot list";
    this.#assertOpen(what);
    const pages = new KeysetPages(range);
    for (let size = pages.nextSize(); size > 0; size = pages.nextSize()) {
      const params: unknown[] = [];
      const where = boundsWhere(pages.bounds, (bytes) => `$${params.push(bytes)}`);
      where.push(LIVE.replace("$NOW", `$${params.push(now)}`));
      const rows = await this.#run<EntryRow[]>(
        what,
        pages.select(this.#table, where, `$${params.push(size)}`),
        params,
      );
      for (const row of rows) yield entryOf(row);
      if (!pages.advance(rows, size)) return;
      this.#assertOpen(what);
    }
  }

  /**
   * Apply the checks and mutations atomically.
   *
   * - No checks: one statement (its own transaction) that takes the table's
   *   advisory lock shared, so it waits while a checked commit is between its
   *   checks and its writes.
   * - Checks: `BEGIN`, the table's advisory lock (exclusive), one statement
   *   that reads the checked versions and writes only if all match, `COMMIT`,
   *   pipelined in one round trip. Checked commits are serialized per table;
   *   the lock is taken before the statement's snapshot, so the checks read
   *   the latest committed versions.
   *
   * A commit PostgreSQL aborts for a deadlock is retried (it wrote nothing).
   */
  async commit(request: CommitRequest): Promise<DriverCommitResult> {
    const what = "Cannot commit";
    this.#assertOpen(what);
    const { checks, mutations, version, now } = request;
    if (checks.length === 0 && mutations.length === 0) return { ok: true };
    if (mutations.some((m) => m.type === "clear")) {
      for (let attempt = 1;; attempt++) {
        try {
          return await this.#orderedWrite(checks, mutations, version, now);
        } catch (err) {
          if (attempt >= MAX_COMMIT_ATTEMPTS || !isRetryable(err) || this.#closed) {
            throw this.#error(what, err);
          }
        }
      }
    }
    const plan = planWrites(mutations as Exclude<Mutation, { type: "clear" }>[]);
    for (let attempt = 1;; attempt++) {
      try {
        if (checks.length === 0) {
          await this.#write(plan, version);
          return { ok: true };
        }
        return await this.#checkedWrite(checks, plan, version, now);
      } catch (err) {
        if (attempt >= MAX_COMMIT_ATTEMPTS || !isRetryable(err) || this.#closed) {
          throw this.#error(what, err);
        }
      }
    }
  }

  async #write(plan: WritePlan, version: string): Promise<void> {
    this.#assertOpen("Cannot commit");
    const s = this.#sqlText;
    if (plan.single) {
      const { mutation: m, key } = plan.single;
      if (m.type === "set") {
        await this.#sql.unsafe(s.setOne, [key, m.value, version, m.expiresAt], PREPARED);
      } else {
        await this.#sql.unsafe(s.deleteOne, [key], PREPARED);
      }
      return;
    }
    await this.#sql.unsafe(s.write, [
      plan.deleteKeys,
      plan.setKeys,
      plan.setValues,
      plan.setExpires as never,
      version,
    ], PREPARED);
  }

  async #checkedWrite(
    checks: readonly AtomicCheck[],
    plan: WritePlan,
    version: string,
    now: number,
  ): Promise<DriverCommitResult> {
    this.#assertOpen("Cannot commit");
    const s = this.#sqlText;
    const checkKeys = checks.map((c) => toHex(encodeKey(c.key)));
    const checkVersions = checks.map((c) => c.version);
    const conflictsOf = (rows: readonly Row[]): DriverCommitResult =>
      rows.length === 0
        ? { ok: true }
        : { ok: false, conflicts: rows.map((r) => checks[(r.i as number) - 1].key) };
    if (plan.single === undefined && plan.setKeys.length === 0 && plan.deleteKeys.length === 0) {
      // Only checks: one statement reads one consistent snapshot; nothing to lock.
      return conflictsOf(
        await this.#sql.unsafe(s.check, [checkKeys, checkVersions, now], PREPARED),
      );
    }
    if (plan.single) {
      const { mutation: m, key } = plan.single;
      const hex = toHex(key);
      if (m.type === "set") {
        plan = { ...plan, setKeys: [hex], setValues: [m.value], setExpires: [m.expiresAt] };
      } else {
        plan = { ...plan, deleteKeys: [hex] };
      }
    }
    const params = [
      checkKeys,
      checkVersions,
      now,
      plan.deleteKeys,
      plan.setKeys,
      plan.setValues,
      plan.setExpires,
      version,
    ] as never[];
    const tx = await this.#sql.reserve();
    try {
      // Pipelined: the server runs them in order, we wait for all four answers once.
      const results = await Promise.allSettled([
        tx.unsafe("BEGIN"),
        tx.unsafe(s.lock),
        tx.unsafe(s.checkedWrite, params, PREPARED),
        tx.unsafe("COMMIT"),
      ]);
      const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
      if (failures.length > 0) {
        // A failed statement makes COMMIT roll back; make sure nothing stays open.
        await tx.unsafe("ROLLBACK").catch(() => {});
        throw failures.find((e) => codeOf(e) !== "25P02") ?? failures[0];
      }
      const written = results[2] as PromiseFulfilledResult<Row[]>;
      return conflictsOf(written.value);
    } finally {
      tx.release();
    }
  }

  /**
   * A commit with range deletes: the writes must apply in order, so each
   * range delete is its own statement, between batched statements for the
   * sets and deletes around it. In one transaction under the exclusive store
   * lock: the checks first, then every statement pipelined (one round trip).
   */
  async #orderedWrite(
    checks: readonly AtomicCheck[],
    mutations: readonly Mutation[],
    version: string,
    now: number,
  ): Promise<DriverCommitResult> {
    this.#assertOpen("Cannot commit");
    const s = this.#sqlText;
    const tx = await this.#sql.reserve();
    let open = false;
    try {
      const [, , failed] = await Promise.all([
        tx.unsafe("BEGIN").then(() => (open = true)),
        tx.unsafe(s.lock),
        checks.length === 0 ? [] : tx.unsafe(s.check, [
          checks.map((c) => toHex(encodeKey(c.key))),
          checks.map((c) => c.version),
          now,
        ] as never[], PREPARED),
      ]);
      if (failed.length > 0) {
        return { ok: false, conflicts: failed.map((r) => checks[(r.i as number) - 1].key) };
      }
      const statements: Promise<unknown>[] = [];
      let pending: Exclude<Mutation, { type: "clear" }>[] = [];
      const flushPending = () => {
        if (pending.length === 0) return;
        const plan = planWrites(pending);
        pending = [];
        if (plan.single) {
          const { mutation: m, key } = plan.single;
          statements.push(
            m.type === "set"
              ? tx.unsafe(s.setOne, [key, m.value, version, m.expiresAt], PREPARED)
              : tx.unsafe(s.deleteOne, [key], PREPARED),
          );
        } else {
          statements.push(tx.unsafe(s.write, [
            plan.deleteKeys,
            plan.setKeys,
            plan.setValues,
            plan.setExpires as never,
            version,
          ], PREPARED));
        }
      };
      for (const m of mutations) {
        if (m.type !== "clear") {
          pending.push(m);
          continue;
        }
        flushPending();
        const { where, params } = rangeWhere(m.range, 1);
        statements.push(tx.unsafe(`DELETE FROM ${this.#table} WHERE ${where}`, params as never[]));
      }
      flushPending();
      statements.push(tx.unsafe("COMMIT"));
      const results = await Promise.allSettled(statements);
      const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
      if (failures.length > 0) throw failures.find((e) => codeOf(e) !== "25P02") ?? failures[0];
      open = false;
      return { ok: true };
    } finally {
      if (open) await tx.unsafe("ROLLBACK").catch(() => {});
      tx.release();
    }
  }

  /** Count the live entries of a range with one SQL `count(*)`. */
  async count(range: ClearRange, now: number): Promise<number> {
    const { where, params } = rangeWhere(range, 2);
    const rows = await this.#run<{ n: number }[]>(
      "Cannot count",
      `SELECT count(*)::float8 AS n FROM ${this.#table} WHERE ${where} AND ${
        LIVE.replace("$NOW", "$1")
      }`,
      [now, ...params],
    );
    return rows[0].n;
  }

  /** Delete every entry of a range in one statement; resolves how many were live. */
  async clear(range: ClearRange, now: number): Promise<number> {
    const { where, params } = rangeWhere(range, 2);
    const rows = await this.#run<{ n: number }[]>(
      "Cannot clear",
      `WITH d AS (DELETE FROM ${this.#table} WHERE ${where} AND ${this.#sqlText.sharedLock} ` +
        `RETURNING expires_at) SELECT (count(*) FILTER (WHERE expires_at IS NULL OR ` +
        `expires_at > $1::float8))::float8 AS n FROM d`,
      [now, ...params],
    );
    return rows[0].n;
  }

  /**
   * Run a query in SQL, casting each value to `jsonb` on the fly (the column
   * stays `TEXT`). Every clause and sort key is translated with exactly the
   * core's semantics (deep equality is `jsonb` equality, numbers compare as
   * `numeric`, strings with `COLLATE "C"`, which is code-point order).
   * Resolves `undefined` (the core evaluates the query instead) when an
   * operand or a path segment holds `\u0000` or a lone UTF-16 surrogate
   * (PostgreSQL text cannot hold them), or when a value the query reads
   * cannot be cast to `jsonb` (it holds one of those in a string).
   */
  async query(query: NormalizedQuery, now: number): Promise<RawEntry[] | undefined> {
    const what = "Cannot query";
    this.#assertOpen(what);
    const compiled = compileQuery(this.#table, query, now);
    if (compiled === undefined) return undefined;
    let rows: EntryRow[];
    let connection;
    try {
      connection = await this.#sql.reserve();
      rows = await connection.unsafe<EntryRow[]>(compiled.sql, compiled.params as never[], {
        prepare: false,
      });
    } catch (err) {
      if (connection !== undefined && isPostgresError(err)) {
        // postgres@3.4.9 keeps counting rows across a statement that failed
        // after sending some, so the connection's next result would start
        // with holes; a statement that completes without rows resets it.
        await connection.unsafe("SELECT 1 WHERE false").catch(() => {});
      }
      if (compiled.castsValues && isCastFailure(err)) return undefined;
      throw this.#error(what, err);
    } finally {
      connection?.release();
    }
    return rows.map(entryOf);
  }

  /**
   * Delete every entry expired at `now` (using the partial index on
   * `expires_at`), in statements of at most 1000 rows so other writers get
   * the lock in between; resolves how many were deleted. A row rewritten
   * meanwhile with a later expiry is left alone.
   */
  async purgeExpired(now: number): Promise<number> {
    const what = "Cannot purge expired entries";
    let total = 0;
    for (;;) {
      const result = await this.#run(what, this.#sqlText.purge, [now]);
      total += result.count;
      if (result.count < PURGE_BATCH_SIZE) return total;
    }
  }

  /**
   * `VACUUM` the entries table: dead rows left by updates and deletes become
   * reusable, and empty pages at the end of the table go back to the file
   * system. Resolves `pg_total_relation_size` (table, indexes and TOAST)
   * before and after. It never takes a lock that blocks readers or writers
   * for long (unlike `VACUUM FULL`, which rewrites the table under an
   * exclusive lock and is left to the database administrator).
   */
  async compact(): Promise<{ bytesBefore: number; bytesAfter: number }> {
    const what = "Cannot compact";
    const size = async () =>
      (await this.#run<{ n: number }[]>(
        what,
        `SELECT pg_total_relation_size(to_regclass($1))::float8 AS n`,
        [this.#table],
      ))[0].n;
    const bytesBefore = await size();
    this.#assertOpen(what);
    try {
      // VACUUM cannot run in a transaction block: the simple protocol sends it alone.
      await this.#sql.unsafe(`VACUUM ${this.#table}`).simple();
    } catch (err) {
      throw this.#error(what, err);
    }
    return { bytesBefore, bytesAfter: await size() };
  }

  /** Close the pool: running queries get up to 5 s to finish. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#sql.end({ timeout: CLOSE_TIMEOUT });
  }
}

/** A `jsonb` cast failed on a row (NUL or lone surrogate in a string, nesting too deep…). */
function isCastFailure(err: unknown): boolean {
  const code = codeOf(err);
  return isPostgresError(err) && code !== undefined &&
    (code.startsWith("22") || code.startsWith("54"));
}

interface SetUpTarget {
  schema: string;
  table: string;
  qualified: string;
  location: string;
  what: string;
}

/**
 * Check (read-only first) that the table is a Flowstate table we can read;
 * create the schema, tables and index if they do not exist, under the
 * table's advisory lock so processes opening at once do not race. Resolves
 * the table's advisory lock id.
 */
/** Sql or a transaction: what setUp's helpers need. */
type Queryable = Pick<Sql, "unsafe">;

async function setUp(sql: Sql, target: SetUpTarget): Promise<number> {
  const { schema, table, qualified, location, what } = target;
  const metaTable = `${quoteIdent(schema)}.${quoteIdent(`${table}_meta`)}`;
  const inspect = async (q: Queryable) => {
    const [row] = await q.unsafe<
      { encoding: string; entries: boolean; meta: boolean; lock_id: number; schema: boolean }[]
    >(
      `SELECT current_setting('server_encoding') AS encoding,
         to_regclass($1) IS NOT NULL AS entries, to_regclass($2) IS NOT NULL AS meta,
         hashtext($3) AS lock_id, EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $4) AS schema`,
      [qualified, metaTable, `${schema}.${table}`, schema],
    );
    return row;
  };
  const readVersion = async (q: Queryable): Promise<void> => {
    const rows = await q.unsafe<{ key: string; value: string }[]>(
      `SELECT key, value FROM ${metaTable}`,
    );
    const meta = new Map(rows.map((r) => [r.key, r.value]));
    const raw = meta.get("schema_version");
    const version = raw !== undefined && /^[1-9]\d{0,8}$/.test(raw) ? Number(raw) : NaN;
    if (meta.get("format") !== FORMAT || Number.isNaN(version)) {
      throw new StoreCorruptError(
        `${what}: ${schema}.${table}_meta has no valid format and schema_version (format ${
          JSON.stringify(meta.get("format") ?? null)
        }, schema_version ${JSON.stringify(raw ?? null)}); nothing was changed`,
        { path: location },
      );
    }
    if (version > SCHEMA_VERSION) {
      throw new StoreCorruptError(
        `${what}: ${location} has schema version ${version}, but this version of Flowstate ` +
          `reads schema version ${SCHEMA_VERSION} only; upgrade Flowstate to open it ` +
          `(nothing was changed)`,
        { path: location },
      );
    }
  };
  const refuse = (state: { entries: boolean; meta: boolean }): StoreCorruptError =>
    new StoreCorruptError(
      state.entries
        ? `${what}: table ${schema}.${table} exists but is not a Flowstate table (there is no ` +
          `${schema}.${table}_meta); nothing was changed: choose another "table" option`
        : `${what}: ${schema}.${table}_meta exists but table ${schema}.${table} does not; ` +
          `nothing was changed: restore the table or drop ${schema}.${table}_meta`,
      { path: location },
    );
  const check = async (q: Queryable, state: { entries: boolean; meta: boolean }) => {
    if (state.entries !== state.meta) throw refuse(state);
    if (state.meta) await readVersion(q);
  };

  // Read-only inspection first, so a table we refuse is never modified.
  const state = await inspect(sql);
  if (state.encoding !== "UTF8") {
    throw new RangeError(
      `${what}: the database uses encoding ${state.encoding}; Flowstate needs a UTF8 database`,
    );
  }
  await check(sql, state);
  if (state.meta) return state.lock_id;
  await sql.begin(async (tx) => {
    await tx.unsafe(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${state.lock_id})`);
    const now = await inspect(tx);
    await check(tx, now);
    if (now.meta) return;
    if (!now.schema) await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await tx.unsafe(
      `CREATE TABLE ${metaTable} (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
    );
    /*
     * key: encodeKey() bytes; bytea compares with memcmp, which is key order.
     * value: JSON text as the core gives it (jsonb cannot hold \u0000 or lone
     * surrogates). expires_at: a JS number of ms (float8 round-trips every one).
     */
    await tx.unsafe(
      `CREATE TABLE ${qualified} (key BYTEA PRIMARY KEY, value TEXT NOT NULL, ` +
        `version TEXT NOT NULL, expires_at DOUBLE PRECISION)`,
    );
    await tx.unsafe(
      `CREATE INDEX ${quoteIdent(`${table}_expires_at`)} ON ${qualified} (expires_at) ` +
        `WHERE expires_at IS NOT NULL`,
    );
    await tx.unsafe(`INSERT INTO ${metaTable} (key, value) VALUES ($1, $2), ($3, $4)`, [
      "format",
      FORMAT,
      "schema_version",
      String(SCHEMA_VERSION),
    ]);
  });
  return state.lock_id;
}

// ---------------------------------------------------------------------------
// Query pushdown: NormalizedQuery → one SELECT with bound parameters.
//
// Each row's value is cast once (`d.doc`, a LATERAL subquery that OFFSET 0
// keeps from being inlined) and a field is a chain of `->` lookups on it. A
// field is SQL NULL when it is missing; its JSON type is jsonb_typeof().

/** A segment `readPath` reads as an array index (on an array) or a key (on an object). */
const ARRAY_INDEX = /^(0|[1-9]\d{0,8})$/;

class SqlParams {
  readonly values: unknown[] = [];
  /** Bind a value and return its placeholder. */
  bind(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

function safeText(s: string): boolean {
  return !s.includes("\u0000") && s.isWellFormed();
}

/**
 * The field at `path`, or `undefined` when a segment cannot be sent. A
 * canonical array index uses `#> '{n}'` (an index on an array, a key on an
 * object, as readPath does); any other segment uses `-> 'text'`, which is
 * NULL on an array (PostgreSQL would read "01" or "-1" as indexes with `#>`).
 */
function field(path: readonly string[], params: SqlParams): string | undefined {
  let expr = "d.doc";
  for (const seg of path) {
    if (!safeText(seg)) return undefined;
    expr = ARRAY_INDEX.test(seg)
      ? `(${expr} #> '{${seg}}')`
      : `(${expr} -> ${params.bind(seg)}::text)`;
  }
  return expr;
}

/** Whether every string in `value` (object keys included) fits in PostgreSQL text. */
function fitsText(value: JsonValue): boolean {
  if (typeof value === "string") return safeText(value);
  if (typeof value !== "object" || value === null) return true;
  if (Array.isArray(value)) return value.every(fitsText);
  return Object.entries(value).every(([k, v]) => safeText(k) && fitsText(v));
}

/** A `jsonb` operand, or `undefined` when it holds a string PostgreSQL cannot. */
function jsonOperand(value: JsonValue, params: SqlParams): string | undefined {
  if (!fitsText(value)) return undefined;
  const text = JSON.stringify(value);
  // Bound as text: the driver would JSON.stringify a parameter it knows is jsonb.
  return `${params.bind(text)}::text::jsonb`;
}

function textOperand(value: string, params: SqlParams): string | undefined {
  return safeText(value) ? `${params.bind(value)}::text` : undefined;
}

const COMPARATORS = { lt: "<", lte: "<=", gt: ">", gte: ">=" } as const;

function clauseSql(
  clause: NormalizedQuery["where"][number],
  params: SqlParams,
): string | undefined {
  const operand = clause.value;
  // Clauses that match nothing bind no parameters (an unused one has no type).
  if (clause.op === "in" && (operand as JsonValue[]).length === 0) return "false";
  if (clause.op in COMPARATORS && typeof operand !== "number" && typeof operand !== "string") {
    return "false";
  }
  const f = field(clause.path, params);
  if (f === undefined) return undefined;
  switch (clause.op) {
    case "exists":
      return (operand ?? true) ? `(${f} IS NOT NULL)` : `(${f} IS NULL)`;
    case "eq":
    case "ne": {
      const op = jsonOperand(operand!, params);
      if (op === undefined) return undefined;
      return clause.op === "eq"
        ? `coalesce(${f} = ${op}, false)`
        : `NOT coalesce(${f} = ${op}, false)`;
    }
    case "in": {
      const list = jsonOperand(operand!, params);
      if (list === undefined) return undefined;
      return `coalesce(${f} IN (SELECT jsonb_array_elements(${list})), false)`;
    }
    case "contains": {
      const op = jsonOperand(operand!, params);
      if (op === undefined) return undefined;
      const inArray = `EXISTS (SELECT 1 FROM jsonb_array_elements(${f}) AS x(v) WHERE x.v = ${op})`;
      if (typeof operand !== "string") {
        return `(CASE WHEN jsonb_typeof(${f}) = 'array' THEN ${inArray} ELSE false END)`;
      }
      const s = textOperand(operand, params);
      if (s === undefined) return undefined;
      return `(CASE jsonb_typeof(${f}) WHEN 'array' THEN ${inArray} ` +
        `WHEN 'string' THEN strpos(${f} #>> '{}', ${s}) > 0 ELSE false END)`;
    }
    case "lt":
    case "lte":
    case "gt":
    case "gte": {
      const cmp = COMPARATORS[clause.op];
      if (typeof operand === "number") {
        return `(CASE WHEN jsonb_typeof(${f}) = 'number' THEN (${f})::numeric ${cmp} ${
          params.bind(JSON.stringify(operand))
        }::numeric ELSE false END)`;
      }
      if (typeof operand === "string") {
        const s = textOperand(operand, params);
        if (s === undefined) return undefined;
        return `(CASE WHEN jsonb_typeof(${f}) = 'string' THEN (${f} #>> '{}') COLLATE "C" ${cmp} ${s} ` +
          `ELSE false END)`;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** Compile a query to one SELECT, or `undefined` when some part must be left to the core. */
function compileQuery(
  table: string,
  q: NormalizedQuery,
  now: number,
): { sql: string; params: unknown[]; castsValues: boolean } | undefined {
  const params = new SqlParams();
  const where = boundsWhere(byteBounds({ prefix: q.prefix }), (b) => params.bind(b), "e.key");
  where.push(`(e.expires_at IS NULL OR e.expires_at > ${params.bind(now)}::float8)`);
  for (const clause of q.where) {
    const sql = clauseSql(clause, params);
    if (sql === undefined) return undefined;
    where.push(sql);
  }
  const order: string[] = [];
  for (const o of q.orderBy) {
    const f = field(o.path, params);
    if (f === undefined) return undefined;
    const dir = o.direction === "desc" ? "DESC" : "ASC";
    // Rank: missing < null < false < true < number < string < array < object.
    order.push(
      `(CASE WHEN ${f} IS NULL THEN 0 ELSE CASE jsonb_typeof(${f}) WHEN 'null' THEN 1 ` +
        `WHEN 'boolean' THEN CASE WHEN ${f} = 'true'::jsonb THEN 3 ELSE 2 END ` +
        `WHEN 'number' THEN 4 WHEN 'string' THEN 5 WHEN 'array' THEN 6 ELSE 7 END END) ${dir}`,
      `(CASE WHEN jsonb_typeof(${f}) = 'number' THEN (${f})::numeric END) ${dir}`,
      `(CASE WHEN jsonb_typeof(${f}) = 'string' THEN (${f} #>> '{}') COLLATE "C" END) ${dir}`,
    );
  }
  order.push("e.key ASC");
  const castsValues = q.where.length > 0 || q.orderBy.length > 0;
  const from = castsValues
    ? `${table} AS e CROSS JOIN LATERAL (SELECT e.value::jsonb AS doc OFFSET 0) AS d`
    : `${table} AS e`;
  const limit = q.limit === Infinity ? "" : ` LIMIT ${params.bind(q.limit)}`;
  const offset = q.offset === 0 ? "" : ` OFFSET ${params.bind(q.offset)}`;
  return {
    sql: `SELECT e.key, e.value, e.version, e.expires_at FROM ${from} WHERE ${
      where.join(" AND ")
    } ORDER BY ${order.join(", ")}${limit}${offset}`,
    params: params.values,
    castsValues,
  };
}

/**
 * The postgres plugin: `openStore({ plugin: "postgres", url })`. The
 * `postgres` npm package is imported by `open()`, so a program that never
 * opens a postgres store never loads it.
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
      storeName: context.storeName,
    });
  },
});
export default postgresPlugin;
