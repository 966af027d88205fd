/**
 * The postgres driver: a pool (see `connect.ts`) and one entries table.
 * Every write takes the table's advisory lock (shared, or exclusive for a
 * range delete) and an advisory lock per key it checks or writes, so
 * compare-and-set is exact across processes and commits on different keys
 * never wait for each other.
 *
 * @module
 */
import type { PendingQuery, Row, RowList, Sql } from "postgres";
import { StoreClosedError, StoreCorruptError, StoreUnavailableError } from "../../src/errors.ts";
import { givenUpError } from "../../src/store/given_up.ts";
import type {
  ClaimRequest,
  ClearRange,
  CommitRequest,
  DriverClaimResult,
  DriverCommitResult,
  FeedTable,
  FeedTableRange,
  FeedTrimRequest,
  FeedValue,
  KeyRange,
  Mutation,
  RawEntry,
  StoreDriver,
} from "../../src/store/driver.ts";
import { clearEarlierSets, decodeKey, encodeKey, prefixUpperBound } from "../../src/store/keys.ts";
import { FEED_BY_KEY, FEED_ENTRIES, FEED_HEAD } from "../../src/store/feed.ts";
import { changeOf, type FeedRow, rowOf } from "../_sql/feed_row.ts";
import { FEED_TABLE_COLUMNS, feedReads, feedTableDdl, feedTableName } from "./feed.ts";
import type { NormalizedQuery } from "../../src/store/query.ts";
import type { AtomicCheck, Capabilities, Change, Key } from "../../src/store/types.ts";
import { boundsWhere } from "../_sql/bounds.ts";
import { asyncPagedEntries, entryOf, type EntryRow } from "../_sql/keyset.ts";
import { connect, poolSizes, type PostgresDriverOptions, RESERVE_MARGIN_MS } from "./connect.ts";
import {
  isConnectionError,
  type Reservation,
  ReserveTimeoutError,
  type TxPool,
  type TxSql,
} from "./reserve.ts";
import {
  codeOf,
  connectionLimitHint,
  isCastFailure,
  isPostgresError,
  isRetryable,
  isStrayCancel,
  messageOf,
  TOO_MANY_CONNECTIONS,
} from "./errors.ts";
import { compileQuery, PgCompiledQueries } from "./query.ts";
import type {
  IndexSpec,
  PreparedIndexes,
  PrepareIndexesRequest,
  RawSearchHit,
  SearchRequest,
  SearchSpec,
} from "../../src/store/driver.ts";
import type { QueryPlan } from "../../src/store/types.ts";
import { indexName, type PgIndexTarget, preparePgIndexes } from "./indexes.ts";
import { escapedKeys, type EscapedRow } from "./rows.ts";
import { pgSearch, preparePgSearch } from "./search.ts";
import { LOCK_CLASS, NEWEST_SCHEMA_VERSION, quoteIdent, SETUP_WAITS } from "./schema.ts";
import {
  CLAIM_READ_FUNCTION,
  COMMIT_FUNCTION,
  FEED_HEAD_LOCK,
  feedBatchCall,
  feedFunctionName,
  feedFunctionSpec,
  feedSetFunctionName,
  feedSetFunctionSpec,
  functionDdl,
  functionShape,
  functionSignature,
  functionSource,
  type FunctionSpec,
  INDEX_PLANS,
  jsonReadable,
  LIVE,
  planWrites,
  PURGE_BATCH_SIZE,
  rangeWhere,
  type Statements,
  statements,
  toHex,
  type WritePlan,
} from "./statements.ts";
import { parseJson } from "../../src/_json.ts";

/** `plan.single` also as the arrays, which the batched statements take. */
function expandSingle(plan: WritePlan): WritePlan {
  if (plan.single === undefined) return plan;
  const { mutation: m, key } = plan.single;
  const hex = toHex(key);
  return m.type === "set"
    ? { ...plan, setKeys: [hex], setValues: [m.value], setExpires: [m.expiresAt] }
    : { ...plan, deleteKeys: [hex] };
}

/**
 * The parameters of the `checkedWrite` statement (and the first eight of
 * `feedWrite`): the checked keys (hex) and versions, the time, then the plan's
 * writes and the version they store.
 */
function checkedWriteParams(
  checkKeys: string[],
  checkVersions: (string | null)[],
  now: number,
  plan: WritePlan,
  version: string,
): unknown[] {
  return [
    checkKeys,
    checkVersions,
    now,
    plan.deleteKeys,
    plan.setKeys,
    plan.setValues,
    plan.setExpires,
    version,
  ];
}

/** A claim candidate's row, with its companion's columns when the claim asked for one. */
type CandidateRow = EntryRow & {
  c_part?: string | null;
  c_value?: string | null;
  c_version?: string | null;
  c_expires_at?: number | null;
};

/**
 * The keys (hex) a commit locks: its checked and written keys, each once (a
 * checked key is most often written too). Fewer bytes: the locks, `BEGIN` and
 * a small write then go to the server in one packet (the client sends what it
 * has as soon as 1 KiB is waiting).
 */
function lockList(checkKeys: readonly string[], plan: WritePlan): string[] {
  return [...new Set([...checkKeys, ...plan.deleteKeys, ...plan.setKeys])];
}

/** A feed commit waiting to be sent: its checks, its parameters, its result. */
interface FeedCall {
  request: CommitRequest;
  feed: { by: string; topic: string };
  done: PromiseWithResolvers<DriverCommitResult | undefined>;
}

/** Microtask turns a feed batch waits for commits issued in the same turn to join it. */
const FEED_BATCH_TICKS = 12;
/**
 * Errors creating the store's functions (the feed's, the commit function)
 * that will not go away by trying again: insufficient privilege, a syntax
 * error or an unknown setting (a server too old for the functions), a
 * feature not supported, a function of the name and parameters that returns
 * another type (42P13: `CREATE OR REPLACE` cannot change it), another role's
 * function that something depends on (2BP01: never dropped `CASCADE`).
 */
const FUNCTION_REFUSED = new Set(["42501", "42601", "42704", "0A000", "42P13", "2BP01"]);
/** SQLSTATE undefined_function: a store function was dropped (nothing of the call ran). */
const UNDEFINED_FUNCTION = "42883";
/**
 * SQLSTATE ambiguous_function: another function of the name (an overload
 * whose extra parameters have defaults, made after the trust check) makes
 * every call by name fail; nothing of the call ran.
 */
const AMBIGUOUS_FUNCTION = "42725";
/** SQLSTATE insufficient_privilege. */
const INSUFFICIENT_PRIVILEGE = "42501";
/** Whether a store function is there to call: no, for good. */
const NEVER: Promise<boolean> = Promise.resolve(false);

/**
 * What `err`, from a statement that called one of the store's functions
 * (nothing of it ran), says of the function: `gone` (dropped: made again on
 * the next use), `never` (not allowed to this role, or ambiguous: another
 * role added an overload of the name), or `undefined` (another error).
 */
function unusableFunction(err: unknown): "gone" | "never" | undefined {
  const code = codeOf(err);
  if (code === UNDEFINED_FUNCTION) return "gone";
  if (code === INSUFFICIENT_PRIVILEGE || code === AMBIGUOUS_FUNCTION) return "never";
  return undefined;
}

/** SQLSTATE lock_not_available: `lock_timeout` ran out (the store takes no lock with NOWAIT). */
const LOCK_NOT_AVAILABLE = "55P03";

/** Feed commits sent together at most (up to 12 parameters each). */
const MAX_FEED_BATCH = 16;

/** How many times a commit is retried after PostgreSQL aborted it for a deadlock. */
const MAX_COMMIT_ATTEMPTS = 5;
/** Seconds `close()` lets running queries finish before it drops the connections. */
const CLOSE_TIMEOUT = 5;

/**
 * `unsafe()` defaults to unnamed statements, parsed and planned on every call
 * after an extra round trip to learn parameter types; the store's statements
 * are a fixed set, so each connection prepares them once.
 */
const PREPARED = { prepare: true } as const;

/**
 * `query`'s answer; when `signal` aborts first, the statement is cancelled
 * (postgres.js sends PostgreSQL's CancelRequest, or drops it unsent) and
 * this rejects with `query_canceled` (57014): a statement waiting for a lock
 * another session holds ends at once, having written nothing. A signal
 * aborted already: the statement is not sent.
 */
async function until<R>(
  query: Promise<R> & { cancel(): void },
  signal: AbortSignal | undefined,
): Promise<R> {
  if (signal === undefined) return await query;
  const cancel = () => query.cancel();
  if (signal.aborted) cancel();
  else signal.addEventListener("abort", cancel, { once: true });
  try {
    return await query;
  } finally {
    signal.removeEventListener("abort", cancel);
  }
}

/**
 * The postgres driver: a connection pool (the `postgres` npm package, imported
 * when the first store opens) and one entries table.
 *
 * Most code opens it through the plugin (`openStore({ plugin: "postgres", url })`);
 * use {@linkcode PostgresDriver.open} to get the driver itself.
 *
 * @example Needs a PostgreSQL server
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { PostgresDriver } from "@flowstate/core/plugins/postgres";
 *
 * const driver = await PostgresDriver.open(Deno.env.get("DATABASE_URL")!, {
 *   table: "flowstate_entries",
 * });
 * await driver.commit({
 *   checks: [],
 *   mutations: [{ type: "set", key: ["a"], value: "1", expiresAt: null }],
 *   version: "v1",
 *   now: Date.now(),
 * });
 * assert.equal((await driver.get(["a"], Date.now()))?.value, "1");
 * await driver.close();
 * ```
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
    indexes: true,
    search: true,
    // A get or plain commit given a signal cancels its statement when it aborts (see `#until`).
    abort: true,
  });
  /** Single statements (never reserved). */
  #sql: Sql;
  /** Transactions, on connections reserved one at a time (see `TxPool`). */
  #tx: TxPool;
  /** Seconds to wait for a connection (the `connectTimeout` option). */
  #connectTimeout: number;
  /** The server, as `host:port`. */
  #address: string;
  /** The `max` option (connections, both pools). */
  #max: number;
  #storeName: string;
  #table: string;
  #sqlText: Statements;
  #closed = false;
  #schema: string;
  #bareTable: string;
  #lockId: number;
  /** Milliseconds a statement waits for another session's lock (see `PostgresDriverOptions`). */
  #lockTimeout: number;
  /** Whether the table has the expiring entries' index (`count` reads it; see `setUp`). */
  #expiringIndex: boolean;
  /** The declared indexes built in the database. */
  #indexes: IndexSpec[] = [];
  /** Compiled queries by shape, over `#indexes` (the array they were made for). */
  #queries: { indexes: IndexSpec[]; cache: PgCompiledQueries } | undefined;
  /** The search declaration the database's search column was built for. */
  #search: SearchSpec | undefined;
  #listeners = new Set<{ unlisten(): Promise<void> }>();
  /**
   * The feed's table made ready, and whether the feed-commit function is
   * there to call: done on the first feed commit (see `#prepareFeed`).
   */
  #feedPrepared: Promise<boolean> | undefined;
  /** Whether the feed's table is there (once seen, it stays). */
  #feedExists = false;
  /** The feed's reads and trim. */
  #feedReads: ReturnType<typeof feedReads>;
  /** The hex of `FEED_HEAD_LOCK`'s key. */
  #headLockHex = toHex(encodeKey(FEED_HEAD_LOCK));
  /**
   * The change feed, kept in `<table>_feed` (see `feed.ts`). Absent only when
   * the store keeps its feed in the key space and this role may not move it
   * into a table: the core then keeps it there, as before.
   */
  readonly feedTable?: FeedTable;
  /** Feed commits waiting for the statement on its way (see `#callFeedFunction`). */
  #feedQueue: FeedCall[] = [];
  /** The last feed batch held several commits (see `#sendFeedCalls`). */
  #feedBatchShared = false;
  /** A feed-commit statement is on its way. */
  #feedSending = false;
  /** The text of the statement of a batch, by its plain sets and other commits (`"3/1"`). */
  #feedCallTexts = new Map<string, string>();
  /** The NOTIFY channel of each topic (see `#channel`). */
  #channels = new Map<string, string>();
  /** The text of the statement that calls the plain-set feed-commit function. */
  #feedSetCall: string | undefined;
  /**
   * Whether the commit and claim-read functions are there to call (see
   * `#storeFunctionsReady`), once this driver looked.
   */
  #storeFunctions: Promise<boolean> | undefined;
  /** The text of the statement that calls the commit function. */
  #commitCall: string;
  /** The text of the statement that calls the claim-read function. */
  #claimReadCall: string;

  private constructor(
    sql: Sql,
    tx: TxPool,
    location: string,
    storeName: string,
    table: string,
    lockId: number,
    schema: string,
    bareTable: string,
    expiringIndex: boolean,
    lockTimeout: number,
    connectTimeout: number,
    address: string,
    max: number,
  ) {
    this.#max = max;
    this.#connectTimeout = connectTimeout;
    this.#address = address;
    this.#lockId = lockId;
    this.#lockTimeout = lockTimeout;
    this.#expiringIndex = expiringIndex;
    this.#sql = sql;
    this.#tx = tx;
    this.location = location;
    this.#storeName = storeName;
    this.#table = table;
    this.#schema = schema;
    this.#bareTable = bareTable;
    const names = { feed: this.#sibling("_feed"), meta: this.#sibling("_meta") };
    this.#sqlText = statements(table, lockId, names);
    this.#commitCall = COMMIT_FUNCTION.call(this.#functionName(COMMIT_FUNCTION.name));
    this.#claimReadCall = CLAIM_READ_FUNCTION.call(this.#functionName(CLAIM_READ_FUNCTION.name));
    this.#feedReads = feedReads(names.feed, names.meta);
    this.feedTable = {
      commit: (request, feed) => this.#feedCommit(request, feed),
      head: this.#feedHead,
      first: this.#feedFirst,
      changes: (range) => this.#feedChanges(range),
      entry: this.#feedEntry,
      keySeqs: (key, range) => this.#feedKeySeqs(key, range),
      trim: (request) => this.#feedTrim(request),
      setValues: (values) => this.#feedSetValues(values),
    };
  }

  /**
   * Connect to `url` and open (creating if needed) the store's table. Throws
   * a clear error naming the store, the server (`host:port`, never the
   * password) and the cause when the server cannot be reached or refuses the
   * login, and a {@linkcode StoreCorruptError} (changing nothing) when the
   * table is not a Flowstate table or has a newer schema version.
   */
  static async open(url: string, options: PostgresDriverOptions = {}): Promise<PostgresDriver> {
    const c = await connect(url, options);
    const driver = new PostgresDriver(
      c.sql,
      c.tx,
      c.location,
      c.storeName,
      c.qualified,
      c.lockId,
      c.schema,
      c.table,
      c.expiringIndex,
      c.lockTimeout,
      c.connectTimeout,
      c.address,
      c.max,
    );
    if (c.version >= NEWEST_SCHEMA_VERSION) driver.#feedExists = true;
    else if (await driver.get(FEED_HEAD, 0) !== null) {
      // A feed in the key space (Flowstate 0.3): moved into its table now, once.
      try {
        await driver.#prepareFeed();
      } catch (err) {
        if (codeOf(err) === "42501" || codeOf((err as Error).cause) === "42501") {
          // This role may not make the table: the core keeps the feed where it is.
          (driver as { feedTable?: FeedTable }).feedTable = undefined;
        } else {
          await driver.close();
          throw err;
        }
      }
    }
    return driver;
  }

  /**
   * A connection for one transaction (see `TxPool`): a `StoreUnavailableError` when none
   * comes within the bound after a connection loss.
   */
  async #reserve(what: string): Promise<Reservation> {
    this.#assertOpen(what);
    try {
      return await this.#tx.reserve();
    } catch (err) {
      throw this.#error(what, err);
    }
  }

  /** Transactions for index and search builds (see `TxPool.transaction`). */
  #transactions = { begin: <T>(fn: (tx: TxSql) => Promise<T>) => this.#tx.transaction(fn) };

  #assertOpen(what: string): void {
    if (this.#closed) {
      throw new StoreClosedError(
        `${what}: store "${this.#storeName}" (${this.location}) is closed`,
      );
    }
  }

  /**
   * An error that says what failed, on which store, and why (the driver's
   * error as cause); a call whose `signal` aborted was given up (its
   * statement cancelled, or never sent).
   */
  #error(what: string, err: unknown, signal?: AbortSignal, undone?: string): Error {
    if (err instanceof StoreClosedError) return err;
    if (signal?.aborted) {
      return givenUpError(what, `store "${this.#storeName}" (${this.location})`, signal, undone);
    }
    if (this.#closed) {
      return new StoreClosedError(
        `${what}: store "${this.#storeName}" (${this.location}) was closed`,
        { cause: err },
      );
    }
    if (err instanceof StoreUnavailableError) return err;
    const where = `store "${this.#storeName}" (${this.location})`;
    const details = { store: this.#storeName, address: this.#address };
    if (err instanceof ReserveTimeoutError) {
      // The client's pool did not hand over a connection (see TxPool): the server was lost.
      return new StoreUnavailableError(
        `${what}: ${where}: no connection to PostgreSQL at ${this.#address} within ` +
          `${err.ms / 1000} s (connectTimeout ${this.#connectTimeout} s plus ` +
          `${RESERVE_MARGIN_MS / 1000} s to connect again): the connection was lost and not ` +
          `made again; nothing was sent`,
        details,
        { cause: err },
      );
    }
    if (isConnectionError(err)) {
      return new StoreUnavailableError(
        `${what}: ${where}: the connection to PostgreSQL at ${this.#address} failed: ` +
          messageOf(err),
        details,
        { cause: err },
      );
    }
    const code = codeOf(err);
    if (code === TOO_MANY_CONNECTIONS && isPostgresError(err)) {
      // Refused at login (a pool opening one more connection): the call was not sent.
      return new StoreUnavailableError(
        `${what}: ${where}: PostgreSQL at ${this.#address} refused a new connection ` +
          `(${err.message}): ${connectionLimitHint(this.#max, poolSizes(this.#max).total)}; ` +
          `nothing was sent`,
        details,
        { cause: err },
      );
    }
    if (code === LOCK_NOT_AVAILABLE && isPostgresError(err)) {
      // lock_timeout: another session held a lock the statement needed (a row, the table).
      return new Error(
        `${what}: store "${this.#storeName}" (${this.location}): a lock was held by another ` +
          `session for longer than lockTimeout (${this.#lockTimeout} ms); find that session in ` +
          `pg_stat_activity (an "idle in transaction" one, or one running LOCK TABLE; ` +
          `pg_blocking_pids() names it) and end it, or raise the store's lockTimeout option`,
        { cause: err },
      );
    }
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
    signal?: AbortSignal,
  ): Promise<RowList<T>> {
    this.#assertOpen(what);
    const send = () => until(this.#sql.unsafe<T>(text, params as never[], PREPARED), signal);
    try {
      return await send().catch((err) => {
        // Another call's cancel request landed on this statement: it wrote nothing; once more.
        if (isStrayCancel(err, signal)) return send();
        throw err;
      });
    } catch (err) {
      throw this.#error(what, err, signal);
    }
  }

  /** As `#run`, each row an array of its columns (no row object). */
  async #values<T extends unknown[]>(
    what: string,
    text: string,
    params: unknown[],
    signal?: AbortSignal,
  ): Promise<T[]> {
    this.#assertOpen(what);
    const send = () => until(this.#sql.unsafe(text, params as never[], PREPARED).values(), signal);
    try {
      return await send().catch((err) => {
        // Another call's cancel request landed on this statement: it wrote nothing; once more.
        if (isStrayCancel(err, signal)) return send();
        throw err;
      }) as unknown as T[];
    } catch (err) {
      throw this.#error(what, err, signal);
    }
  }

  /** One live entry, or `null`; given up (its statement cancelled) when `signal` aborts. */
  async get(key: Key, now: number, signal?: AbortSignal): Promise<RawEntry | null> {
    const rows = await this.#run<Omit<EntryRow, "key">[]>("Cannot get", this.#sqlText.get, [
      encodeKey(key),
      now,
    ], signal);
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
   * page sees the latest commits. A page still waiting when `signal` aborts
   * is given up (its statement cancelled).
   */
  list(range: KeyRange, now: number, signal?: AbortSignal): AsyncIterableIterator<RawEntry> {
    const what = "Cannot list";
    // Keys come back as the escape text of their bytes after the prefix, rows as arrays
    // (see rows.ts): far cheaper for the client than a bytea and a row object.
    const keys = escapedKeys(range.prefix);
    return asyncPagedEntries(range, (pages, size) => {
      this.#assertOpen(what);
      const params: unknown[] = [];
      const where = boundsWhere(pages.bounds, (bytes) => `$${params.push(bytes)}`);
      where.push(LIVE.replace("$NOW", `$${params.push(now)}`));
      // LIMIT stays bound. A literal was tried (and reverted): it spares the re-planning of every
      // page that a bound LIMIT costs on a large analysed table of small values (~0.2 ms a list
      // of 100 at 1,000,000 entries), but PostgreSQL then re-plans the literal at other sizes
      // (~200 times the limit, e.g. 20,000 rows for a list of 100), reads and sorts the whole
      // range on a table not yet analysed (5.8 vs 0.7 ms at 20,000 rows), and keeps a statement
      // a page size for the connection's life (~20 KB of server memory each).
      return this.#values<EscapedRow>(
        what,
        pages.select(this.#table, where, `$${params.push(size)}`, keys.columns),
        params,
        signal,
      );
    }, keys);
  }

  /**
   * Apply the checks and mutations atomically.
   *
   * Every commit without a range delete takes the table's advisory lock
   * *shared* and then an exclusive advisory lock per key it checks or writes
   * (in hash order, so that commits never wait for each other in a cycle),
   * before the statement that reads the checked versions: commits on
   * different keys run at once, commits on a common key one after the other,
   * and the checks always read the latest committed versions.
   *
   * - Sets only, no checks: one statement that takes its keys' locks first
   *   (an upsert sees the latest committed row whatever its snapshot).
   * - A lone compare-and-set (one check, one write of the same key): one
   *   statement (`UPDATE`/`DELETE … WHERE version = $v`, or an `INSERT` that
   *   meets a live row as a conflict), which re-reads the row's latest
   *   version after waiting for the key's lock.
   * - Anything else: `BEGIN`, the locks, one statement that reads the
   *   checked versions and writes only if all match, `COMMIT`, pipelined in
   *   one round trip.
   * - A commit with a range delete (`clear`) takes the table's lock
   *   exclusive, so it waits for every other commit and they for it.
   *
   * A commit PostgreSQL aborts for a deadlock is retried (it wrote nothing).
   *
   * A commit without a range delete given a `signal` is given up when it
   * aborts: its statement is cancelled wherever it waits (a row or the table
   * another session locked, a key's advisory lock), its transaction rolls
   * back, and it rejects having written nothing.
   */
  async commit(request: CommitRequest): Promise<DriverCommitResult> {
    const what = "Cannot commit";
    this.#assertOpen(what);
    const { checks, mutations, version, now, signal } = request;
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
        if (
          checks.length === 0 && plan.deleteKeys.length === 0 &&
          plan.single?.mutation.type !== "delete"
        ) {
          await this.#upsert(plan, version, signal);
          return { ok: true };
        }
        const lone = await this.#loneCompareAndSet(checks, plan, version, now, signal);
        if (lone !== undefined) return lone;
        return await this.#checkedWrite(checks, plan, version, now, signal);
      } catch (err) {
        if (
          attempt >= MAX_COMMIT_ATTEMPTS || !(isRetryable(err) || isStrayCancel(err, signal)) ||
          this.#closed || signal?.aborted
        ) {
          throw this.#error(what, err, signal, "nothing was written");
        }
      }
    }
  }

  /** Sets without checks or deletes: one statement that locks its keys, then upserts. */
  async #upsert(plan: WritePlan, version: string, signal?: AbortSignal): Promise<void> {
    this.#assertOpen("Cannot commit");
    const s = this.#sqlText;
    if (plan.single) {
      const { mutation: m, key } = plan.single;
      if (m.type !== "set") throw new TypeError("unreachable: a delete is not an upsert");
      await until(
        this.#sql.unsafe(s.setOne, [key, m.value, version, m.expiresAt], PREPARED),
        signal,
      );
      return;
    }
    await until(
      this.#sql.unsafe(s.upsertMany, [
        plan.deleteKeys,
        plan.setKeys,
        plan.setValues,
        plan.setExpires as never,
        version,
      ], PREPARED),
      signal,
    );
  }

  /**
   * One check and one write of the same key, as one statement; `undefined`
   * for any other commit (and for a delete checked absent, which the
   * general path does).
   */
  async #loneCompareAndSet(
    checks: readonly AtomicCheck[],
    plan: WritePlan,
    version: string,
    now: number,
    signal: AbortSignal | undefined,
  ): Promise<DriverCommitResult | undefined> {
    if (checks.length !== 1 || plan.single === undefined) return undefined;
    const { mutation: m, key } = plan.single;
    const check = checks[0];
    if (toHex(encodeKey(check.key)) !== toHex(key)) return undefined;
    const s = this.#sqlText;
    let rows: Row[];
    if (m.type === "set") {
      rows = await until(
        check.version === null
          ? this.#sql.unsafe(s.casInsert, [key, m.value, version, m.expiresAt, now], PREPARED)
          : this.#sql.unsafe(s.casUpdate, [
            key,
            m.value,
            version,
            m.expiresAt,
            check.version,
            now,
          ] as never[], PREPARED),
        signal,
      );
    } else {
      if (check.version === null) return undefined;
      rows = await until(
        this.#sql.unsafe(s.casDelete, [key, check.version, now], PREPARED),
        signal,
      );
    }
    return rows.length === 1 ? { ok: true } : { ok: false, conflicts: [check.key] };
  }

  async #checkedWrite(
    checks: readonly AtomicCheck[],
    plan: WritePlan,
    version: string,
    now: number,
    signal: AbortSignal | undefined,
  ): Promise<DriverCommitResult> {
    this.#assertOpen("Cannot commit");
    const s = this.#sqlText;
    const checkKeys = checks.map((c) => toHex(encodeKey(c.key)));
    const checkVersions = checks.map((c) => c.version);
    /** The result from the failed checks' numbers (from 1). */
    const conflictsOf = (failed: readonly number[]): DriverCommitResult =>
      failed.length === 0
        ? { ok: true }
        : { ok: false, conflicts: failed.map((i) => checks[i - 1].key) };
    const numbers = (rows: readonly Row[]) => rows.map((r) => r.i as number);
    if (plan.single === undefined && plan.setKeys.length === 0 && plan.deleteKeys.length === 0) {
      // Only checks: one statement reads one consistent snapshot; nothing to lock.
      return conflictsOf(
        numbers(await this.#sql.unsafe(s.check, [checkKeys, checkVersions, now], PREPARED)),
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
    const params = checkedWriteParams(checkKeys, checkVersions, now, plan, version) as never[];
    const locked = lockList(checkKeys, plan);
    if (await this.#storeFunctionsReady()) {
      // One autocommit statement: the function takes the locks, checks and writes. On a
      // connection of its own, reserved from the pool for transactions, as the pipelined one:
      // reads never queue behind a commit, and a commit that waits for a lock (a key's, a row
      // another transaction holds) holds up no other (a plain query of the pool may be
      // pipelined behind it on its connection).
      const c = await this.#reserve("Cannot commit");
      try {
        const [row] = await until(
          c.unsafe<{ failed: number[] | null }[]>(
            this.#commitCall,
            [...params, locked, false] as never[],
            PREPARED,
          ),
          signal,
        );
        return conflictsOf(row.failed ?? []);
      } catch (err) {
        // Gone or not allowed (nothing ran): this one as below.
        if (!this.#functionUnusable(err)) throw err;
      } finally {
        c.release();
      }
    }
    const tx = await this.#reserve("Cannot commit");
    // Given up: the locks' and the write's statements are cancelled (where they wait), and the
    // transaction rolls back.
    let waits: PendingQuery<Row[]>[] = [];
    const giveUp = () => waits.forEach((q) => q.cancel());
    signal?.addEventListener("abort", giveUp, { once: true });
    try {
      if (signal?.aborted) throw signal.reason;
      waits = [
        tx.unsafe(s.keyLocks, [locked] as never[], PREPARED),
        checks.length === 0
          ? tx.unsafe(s.write, params.slice(3) as never[], PREPARED)
          : tx.unsafe(s.checkedWrite, params, PREPARED),
      ];
      // Pipelined: the server runs them in order, we wait for all four answers once.
      const results = await Promise.allSettled([
        tx.unsafe("BEGIN"),
        ...waits,
        tx.unsafe("COMMIT"),
      ]);
      const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
      if (failures.length > 0) {
        // A failed statement makes COMMIT roll back; make sure nothing stays open.
        await tx.unsafe("ROLLBACK").catch(() => {});
        throw failures.find((e) => codeOf(e) !== "25P02") ?? failures[0];
      }
      if (checks.length === 0) return { ok: true };
      const written = results[2] as PromiseFulfilledResult<Row[]>;
      return conflictsOf(numbers(written.value));
    } finally {
      signal?.removeEventListener("abort", giveUp);
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
    const tx = await this.#reserve("Cannot commit");
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
    // Every key in the range (the key index alone, an index-only scan), less the expired ones
    // of the range: one statement, one snapshot.
    const expired = this.#expiringIndex
      // An index-only scan of the range in the expiring entries' index: as long as the
      // range's expiring entries (none in most stores), whatever the rest of the table holds.
      // `now` stays out of WHERE: as an index condition with a parameter, the generic plan
      // (the one a prepared count runs) walks the key index and reads every row instead.
      ? `SELECT count(*) FILTER (WHERE expires_at <= $1::float8) FROM ${this.#table} ` +
        `WHERE ${where} AND expires_at IS NOT NULL`
      // A table without it (made before it, by a role that may not add it): the partial index
      // on expires_at, every expired entry of the table. OFFSET 0 fences that scan off the key
      // range (else a generic plan may walk the key index over the range and read every row);
      // the lower bound makes the planner guess few expired rows for an unknown `now`.
      : `SELECT count(*) FROM (SELECT key FROM ${this.#table} WHERE expires_at IS NOT NULL ` +
        `AND expires_at > '-Infinity'::float8 AND expires_at <= $1::float8 OFFSET 0) AS x ` +
        `WHERE ${where}`;
    const rows = await this.#run<{ n: number }[]>(
      "Cannot count",
      `SELECT ((SELECT count(*) FROM ${this.#table} WHERE ${where}) - (${expired}))::float8 AS n`,
      [now, ...params],
    );
    return rows[0].n;
  }

  /** Delete every entry of a range in one statement; resolves how many were live. */
  async clear(range: ClearRange, now: number): Promise<number> {
    const what = "Cannot clear";
    this.#assertOpen(what);
    const { where, params } = rangeWhere(range, 2);
    const text = `WITH d AS (DELETE FROM ${this.#table} WHERE ${where} RETURNING expires_at) ` +
      `SELECT (count(*) FILTER (WHERE expires_at IS NULL OR ` +
      `expires_at > $1::float8))::float8 AS n FROM d`;
    // The table's lock exclusive, taken before the DELETE's snapshot: it sees
    // every commit that held the lock before it.
    for (let attempt = 1;; attempt++) {
      let tx;
      try {
        tx = await this.#reserve(what);
        const results = await Promise.allSettled([
          tx.unsafe("BEGIN"),
          tx.unsafe(this.#sqlText.lock),
          tx.unsafe<{ n: number }[]>(text, [now, ...params] as never[]),
          tx.unsafe("COMMIT"),
        ]);
        const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
        if (failures.length > 0) {
          await tx.unsafe("ROLLBACK").catch(() => {});
          throw failures.find((e) => codeOf(e) !== "25P02") ?? failures[0];
        }
        return (results[2] as PromiseFulfilledResult<{ n: number }[]>).value[0].n;
      } catch (err) {
        if (attempt >= MAX_COMMIT_ATTEMPTS || !isRetryable(err) || this.#closed) {
          throw this.#error(what, err);
        }
      } finally {
        tx?.release();
      }
    }
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
  async query(
    query: NormalizedQuery,
    now: number,
    signal?: AbortSignal,
  ): Promise<RawEntry[] | undefined> {
    const what = "Cannot query";
    this.#assertOpen(what);
    const compiled = this.#compiledQueries().compile(query, now);
    if (compiled === undefined) return undefined;
    let rows: EscapedRow[];
    if (!compiled.castsValues) {
      // Nothing to cast, so nothing that fails midway: any connection of the pool (as list).
      rows = await this.#values<EscapedRow>(what, compiled.sql, compiled.params, signal);
    } else {
      const cast = await this.#castingQuery(what, compiled.sql, compiled.params);
      if (cast === undefined) return undefined;
      rows = cast;
    }
    if (rows.length === 0 && compiled.oddCheck !== undefined) {
      // No rows: maybe because a value the index misplaces is under its prefix.
      const [{ odd }] = await this.#run<{ odd: boolean }[]>(
        what,
        compiled.oddCheck,
        [],
        signal,
      );
      if (odd) return undefined;
    }
    return rows.map(compiled.keys.entry);
  }

  /** The shape cache of compiled queries over the indexes built now. */
  #compiledQueries(): PgCompiledQueries {
    if (this.#queries === undefined || this.#queries.indexes !== this.#indexes) {
      this.#queries = {
        indexes: this.#indexes,
        cache: new PgCompiledQueries(this.#table, {
          schema: this.#schema,
          indexes: this.#indexes,
        }),
      };
    }
    return this.#queries.cache;
  }

  /**
   * A query that casts values to jsonb, on a connection of its own; `undefined`
   * when a cast failed (the core answers).
   */
  async #castingQuery(
    what: string,
    sql: string,
    params: unknown[],
  ): Promise<EscapedRow[] | undefined> {
    let rows: EscapedRow[];
    let connection;
    try {
      connection = await this.#reserve(what);
      // Prepared: a query's text depends on its shape only (operands are bound), so each
      // connection plans a shape once, as the bare client does with a prepared statement.
      rows = await connection.unsafe(sql, params as never[], PREPARED)
        .values() as unknown as EscapedRow[];
    } catch (err) {
      if (connection !== undefined && isPostgresError(err)) {
        // postgres@3.4.9 keeps counting rows across a statement that failed
        // after sending some, so the connection's next result would start
        // with holes; a statement that completes without rows resets it.
        await connection.unsafe("SELECT 1 WHERE false").catch(() => {});
      }
      if (isCastFailure(err)) return undefined;
      throw this.#error(what, err);
    } finally {
      connection?.release();
    }
    return rows;
  }

  /**
   * Build the declared indexes missing from the database (one partial b-tree
   * expression index each, see `indexes.ts`) and drop those no longer
   * declared; build, rebuild or drop the search column (see `search.ts`).
   * Under the table's advisory lock, so that processes opening at once do the
   * work once. A build blocks writes to the table while it runs.
   */
  async prepareIndexes(request: PrepareIndexesRequest): Promise<PreparedIndexes> {
    const what = "Cannot build indexes";
    this.#assertOpen(what);
    const target: PgIndexTarget = {
      schema: this.#schema,
      table: this.#bareTable,
      qualified: this.#table,
      lockId: this.#lockId,
    };
    let search: boolean;
    try {
      this.#indexes = [];
      const built = await preparePgIndexes(this.#sql, target, request, this.#transactions);
      this.#indexes = request.indexes.filter((i) => built.includes(i.name));
      search = await preparePgSearch(
        this.#sql,
        target,
        request.search,
        request.progress,
        request.onBuild,
        this.#transactions,
      );
    } catch (err) {
      throw this.#error(what, err);
    }
    this.#search = search ? request.search : undefined;
    return { indexes: this.#indexes.map((i) => i.name), search };
  }

  /** Full-text search through the GIN index of the search column; given up when `signal` aborts. */
  search(
    request: SearchRequest,
    now: number,
    signal?: AbortSignal,
  ): Promise<RawSearchHit[] | undefined> {
    const what = "Cannot search";
    this.#assertOpen(what);
    if (this.#search === undefined) return Promise.resolve(undefined);
    return pgSearch(
      (text, params) => this.#run<(EntryRow & { score: number })[]>(what, text, params, signal),
      this.#table,
      this.#search,
      request,
      now,
    );
  }

  /** Describe how `query` runs: the index chosen and PostgreSQL's own plan. */
  async explain(query: NormalizedQuery, now: number): Promise<QueryPlan | undefined> {
    const compiled = compileQuery(this.#table, query, now, {
      schema: this.#schema,
      indexes: this.#indexes,
    });
    if (compiled === undefined) return undefined;
    const rows = await this.#run<{ "QUERY PLAN": string }[]>(
      "Cannot explain",
      `EXPLAIN ${compiled.sql}`,
      compiled.params,
    );
    const detail = rows.map((r) => `postgres: ${r["QUERY PLAN"]}`);
    const used = compiled.index !== undefined &&
      detail.some((d) => d.includes(indexName(this.#bareTable, compiled.index!)));
    if (used && compiled.oddCheck !== undefined) {
      detail.push(
        "falls back to the core's scan if a value under the index's prefix holds a \\u0000 " +
          "or lone surrogate escape (listed by the partial index _fs_odd)",
      );
    }
    return {
      index: used ? compiled.index!.name : null,
      scan: !(used && compiled.narrows),
      by: "native",
      detail,
    };
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
  /** The NOTIFY channel of `topic` for this table: short, and the same in every process. */
  #channel(topic: string): string {
    let channel = this.#channels.get(topic);
    if (channel === undefined) {
      const safe = topic.replace(/[^a-z0-9_]/gi, "_").slice(0, 30);
      channel = `flowstate_${(this.#lockId >>> 0).toString(36)}_${safe}`;
      // A handful of topics per store (the feed's, the queue's): worth keeping.
      if (this.#channels.size < 64) this.#channels.set(topic, channel);
    }
    return channel;
  }

  /**
   * `LISTEN` on this table's channel for `topic` (on a connection of its own,
   * which the client keeps and reconnects): `onSignal` runs for every
   * {@linkcode PostgresDriver.signal} of the same topic, from any process.
   */
  async listen(topic: string, onSignal: () => void): Promise<() => Promise<void>> {
    const sub = await this.#sql.listen(this.#channel(topic), () => onSignal());
    const handle = { unlisten: () => sub.unlisten() };
    this.#listeners.add(handle);
    return async () => {
      if (!this.#listeners.delete(handle)) return;
      await handle.unlisten().catch(() => {});
    };
  }

  /** `NOTIFY` this table's channel for `topic`. */
  async signal(topic: string): Promise<void> {
    await this.#sql.notify(this.#channel(topic), "");
  }

  /**
   * Native claims: in one transaction, the store's lock shared, then the
   * first live entry under the prefix that no other transaction holds
   * (`SELECT … ORDER BY key LIMIT 1 FOR UPDATE SKIP LOCKED`), offered to
   * `decide` (whose reads run in the same transaction: a claim needs one
   * connection, never a second); passed over, the next one after it (the passed-over ones stay
   * held until the end, so no other claim is offered them twice); taken,
   * the commit it made runs in the same transaction (the keys' locks, one
   * statement for checks and writes, `COMMIT`: one round trip), while the
   * entry is still held. Concurrent claims thus get distinct entries. With
   * `request.max` > 1, up to that many candidates are held and offered, and
   * the commits of those taken run as one.
   */
  async claim(request: ClaimRequest): Promise<DriverClaimResult> {
    const what = "Cannot claim";
    this.#assertOpen(what);
    const { prefix, limit, now, decide, companion } = request;
    const max = request.max ?? 1;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`${what}: max must be a whole number >= 1 (got ${max})`);
    }
    // A claim that writes the feed writes its table: make it first (a store whose feed was
    // turned on and whose first write here is a claim has none yet).
    if (request.feedTable !== undefined) await this.#prepareFeed();
    const s = this.#sqlText;
    const { where, params } = rangeWhere({ prefix }, 3);
    let next = `SELECT key, value, version, expires_at FROM ${this.#table} ` +
      `WHERE ${where} AND key > $1::bytea AND ${LIVE.replace("$NOW", "$2")} ` +
      `ORDER BY key LIMIT ${max} FOR UPDATE SKIP LOCKED`;
    if (companion !== undefined) {
      // The companion's key is the prefix's bytes, then the field's text and the part's end
      // (a NUL): the key encoding of a string part without NUL (JSON spells one \u0000).
      const p = params.length + 3;
      params.push(encodeKey(companion.prefix), new TextEncoder().encode(companion.field));
      // None for a value `->>` cannot read (see jsonReadable): the core reads that
      // candidate's companion itself.
      const part = `(CASE WHEN ${jsonReadable("e.value")} THEN ` +
        `e.value::json ->> convert_from($${p + 1}::bytea, 'UTF8') END)`;
      next = `WITH e AS (${next}) SELECT e.key, e.value, e.version, e.expires_at, ` +
        `${part} AS c_part, c.value AS c_value, c.version AS c_version, ` +
        `c.expires_at AS c_expires_at FROM e LEFT JOIN ${this.#table} AS c ` +
        `ON c.key = $${p}::bytea || convert_to(${part}, 'UTF8') || '\\x00'::bytea AND ` +
        `${LIVE.replace("$NOW", "$2").replaceAll("expires_at", "c.expires_at")}`;
    }
    /** The companion of the candidate `row`, read with it: its key's hex and entry. */
    const companionOf = (row: CandidateRow): [string, RawEntry | null] | undefined => {
      if (companion === undefined || typeof row.c_part !== "string") return undefined;
      const key = [...companion.prefix, row.c_part];
      return [
        toHex(encodeKey(key)),
        row.c_version === null || row.c_version === undefined ? null : {
          key,
          value: row.c_value!,
          version: row.c_version,
          expiresAt: row.c_expires_at ?? null,
        },
      ];
    };
    const companionParams = companion === undefined
      ? [null, null]
      : [encodeKey(companion.prefix), new TextEncoder().encode(companion.field)];
    for (let attempt = 1;; attempt++) {
      // The store's functions, for the claim's read (it takes a prefix's bounds) and commit
      // (a claim that writes the feed has a statement of its own for that).
      const functions = await this.#storeFunctionsReady();
      const callFunction = functions && request.feedTable === undefined;
      const readFunction = functions && prefix.length > 0;
      const tx = await this.#reserve(what);
      /** The candidates after `after` (the prefix's own key: from the first). */
      const read = (after?: Uint8Array) =>
        // Prepared (once per connection): an unnamed statement with parameters costs
        // a round trip of its own to describe them first.
        readFunction
          ? tx.unsafe<CandidateRow[]>(this.#claimReadCall, [
            after ?? encodeKey(prefix),
            prefixUpperBound(prefix),
            now,
            max,
            ...companionParams,
          ] as never[], PREPARED)
          : tx.unsafe<CandidateRow[]>(
            next,
            [after ?? new Uint8Array(0), now, ...params] as never[],
            PREPARED,
          );
      let open = false;
      try {
        const [, , first] = await Promise.all([
          tx.unsafe("BEGIN").then(() => (open = true)),
          // The table's lock and index plans for the claim's reads and writes (see
          // INDEX_PLANS): the read function takes both itself, the plans transaction-local
          // (`set_config(…, true)`, not a SET clause of the function, which would end with the
          // call), so `decide`'s reads and the commit after it have them too.
          readFunction ? undefined : tx.unsafe(
            `SELECT pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${this.#lockId}), ${INDEX_PLANS}`,
            [],
            PREPARED,
          ),
          read(),
        ]);
        let rows = first;
        let at = 0;
        const taken: { key: Key; commit: CommitRequest }[] = [];
        for (let offered = 0; offered < limit && taken.length < max; offered++) {
          if (at === rows.length) {
            // Every row held so far was offered: the next ones after them, if there were more.
            if (rows.length < max) break;
            rows = await read(rows[rows.length - 1].key);
            at = 0;
            if (rows.length === 0) break;
          }
          const row = rows[at++];
          const entry = entryOf(row);
          const prefetched = companionOf(row);
          const commit = await decide(entry, async (keys) => {
            const hex = keys.map((k) => toHex(encodeKey(k)));
            if (prefetched !== undefined && hex.every((h) => h === prefetched[0])) {
              return keys.map(() => prefetched[1]);
            }
            const found = new Map<string, EntryRow>();
            const read = await tx.unsafe<EntryRow[]>(s.getMany, [hex, now] as never[], PREPARED);
            for (const row of read) found.set(toHex(row.key), row);
            return keys.map((key, i) => {
              const row = found.get(hex[i]);
              return row === undefined
                ? null
                : { key, value: row.value, version: row.version, expiresAt: row.expires_at };
            });
          });
          if (commit !== null) taken.push({ key: entry.key, commit });
        }
        if (taken.length === 0) return null;
        // Several taken: their commits as one (the last one's version, as the store reports).
        const commit: CommitRequest = taken.length === 1 ? taken[0].commit : {
          checks: taken.flatMap((t) => t.commit.checks),
          mutations: taken.flatMap((t) => t.commit.mutations),
          version: taken[taken.length - 1].commit.version,
          now: taken[taken.length - 1].commit.now,
        };
        const result = await this.#commitIn(tx, commit, request.feedTable, callFunction);
        open = false;
        return { key: taken[0].key, keys: taken.map((t) => t.key), result };
      } catch (err) {
        // The core's own errors (from decide) pass through as they are.
        if (!isPostgresError(err) && !isConnectionError(err) && !this.#closed) throw err;
        // A function gone or not allowed: nothing was written (the transaction rolls back);
        // the claim again.
        if (functions && attempt < MAX_COMMIT_ATTEMPTS && this.#functionUnusable(err)) continue;
        if (attempt >= MAX_COMMIT_ATTEMPTS || !isRetryable(err) || this.#closed) {
          throw this.#error(what, err);
        }
      } finally {
        if (open) await tx.unsafe("ROLLBACK").catch(() => {});
        tx.release();
      }
    }
  }

  /** The qualified, quoted name of one of this table's functions (`name` gives it unquoted). */
  #functionName(name: (table: string) => string): string {
    return `${quoteIdent(this.#schema)}.${quoteIdent(name(this.#bareTable))}`;
  }

  /** The feed table, or the meta table, qualified and quoted. */
  #sibling(suffix: "_feed" | "_meta"): string {
    return `${quoteIdent(this.#schema)}.${quoteIdent(`${this.#bareTable}${suffix}`)}`;
  }

  /**
   * Make the feed's table ready (once per driver, see `feed.ts`), under the
   * table's lock (exclusive: no commit runs meanwhile, and every other
   * process doing the same waits): at schema version 1, create the table and
   * move a feed the core kept in the key space into it, in the same
   * transaction (schema version 2 from then on); then create this table's
   * feed-commit function if it is missing. Resolves whether the function is
   * there to call (`false`: the role may not create it; the pipelined
   * transaction does the same work). Throws a clear error when the table
   * cannot be had.
   */
  #prepareFeed(): Promise<boolean> {
    return this.#feedPrepared ??= (async () => {
      const what = "Cannot write the change feed";
      try {
        // The table's lock (exclusive: it waits for every commit in flight, and holds off the
        // next ones) only when the feed still has to be made or moved: once per store.
        if (!(await this.#feedReady())) {
          await this.#tx.transaction(async (tx) => {
            await tx.unsafe(SETUP_WAITS);
            await tx.unsafe(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${this.#lockId})`);
            await this.#moveKeySpaceFeed(tx);
          });
        }
      } catch (err) {
        this.#feedPrepared = undefined;
        throw this.#error(what, err);
      }
      this.#feedExists = true;
      try {
        await this.#createFunctions({
          [feedFunctionName(this.#bareTable)]: feedFunctionSpec(this.#sqlText.feedBody),
          [feedSetFunctionName(this.#bareTable)]: feedSetFunctionSpec(this.#sqlText.feedSetBody),
        });
        return true;
      } catch (err) {
        // The server refused for good (no CREATE privilege on the schema; a server too old for
        // the function's syntax or settings): the pipelined transaction from now on. Anything
        // else (the connection, a timeout, a standby during a failover): try again next time.
        if (!FUNCTION_REFUSED.has(codeOf(err) ?? "")) this.#feedPrepared = undefined;
        return false;
      }
    })();
  }

  /**
   * Make sure this table's functions (`specs`, by unquoted name) are the ones
   * this code would create, before any is called: a function is trusted only
   * if it has exactly the spec's signature (`to_regprocedure`), language,
   * body and settings, is not `SECURITY DEFINER`, and is owned by this role
   * or by the table's owner. A name alone proves nothing: a schema renamed
   * keeps functions whose bodies name its old name (and lock id); a role
   * that may create in the schema can plant one of the name first; one of
   * the name may take other parameters, and any other routine of the name
   * (an overload with defaulted parameters) makes calls by name ambiguous:
   * it is dropped (never `CASCADE`). Any other is created (or replaced:
   * `CREATE OR REPLACE`) under a lock of its own (not the table's: commits
   * go on meanwhile), so that processes doing it at once do not race; one
   * owned by another role is dropped first. Throws what the server
   * answered: only its owner may drop another role's function (42501, as
   * when this role may not create in the schema), and then the caller
   * never calls it.
   */
  async #createFunctions(specs: Record<string, FunctionSpec>): Promise<void> {
    const names = Object.keys(specs);
    const fns = names.map((name) => `${quoteIdent(this.#schema)}.${quoteIdent(name)}`);
    const params = [
      names,
      names.map((_, i) => functionSignature(fns[i], specs[names[i]])),
      names.map((name) => functionSource(specs[name])),
      names.map((name) =>
        specs[name].settings.length === 0 ? null : specs[name].settings.join("\n")
      ),
      this.#table,
      this.#schema,
      names.map((name) => functionShape(specs[name]).args),
      names.map((name) => functionShape(specs[name]).result),
    ];
    /**
     * The functions to make: whether one of the signature has an owner not
     * trusted, and the identity arguments of every other routine of the name
     * in the schema (an overload makes calls by name ambiguous, 42725).
     */
    const untrusted = async (q: { unsafe: Sql["unsafe"] }) =>
      await q.unsafe<{ name: string; must_drop: boolean; overloads: string[] }[]>(
        `WITH o AS (SELECT oid FROM pg_roles WHERE rolname = current_user UNION ALL ` +
          `SELECT relowner FROM pg_class WHERE oid = to_regclass($5)), ` +
          `f AS (SELECT f.*, p.oid, p.proowner, p.prosecdef, p.prolang, p.prosrc, p.proconfig, ` +
          `p.proisstrict, p.provolatile, p.prokind, ` +
          `pg_get_function_arguments(p.oid) AS p_args, pg_get_function_result(p.oid) AS p_result, ` +
          `ARRAY(SELECT pg_get_function_identity_arguments(q.oid) FROM pg_proc AS q ` +
          `WHERE q.proname = f.name AND q.oid IS DISTINCT FROM p.oid ` +
          `AND q.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = $6)) AS overloads ` +
          `FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $7::text[], $8::text[]) ` +
          `AS f(name, sig, src, config, args, result) ` +
          `LEFT JOIN pg_proc AS p ON p.oid = to_regprocedure(f.sig)) ` +
          // Dropped first: another role's (only then is the one made this role's), or one that
          // `CREATE OR REPLACE` cannot make this one (42P13, 42809: its kind, parameter names
          // or defaults, result).
          `SELECT name, oid IS NOT NULL AND (proowner NOT IN (SELECT oid FROM o) ` +
          `OR prokind <> 'f' OR p_args <> args OR p_result <> result) AS must_drop, overloads FROM f ` +
          `WHERE oid IS NULL OR proowner NOT IN (SELECT oid FROM o) OR prosecdef ` +
          `OR proisstrict OR provolatile <> 'v' OR prokind <> 'f' ` +
          `OR p_args <> args OR p_result <> result ` +
          `OR prolang <> (SELECT oid FROM pg_language WHERE lanname = 'plpgsql') ` +
          `OR prosrc <> src ` +
          `OR array_to_string(proconfig, E'\\n') IS DISTINCT FROM config ` +
          `OR cardinality(overloads) > 0`,
        params as never[],
      );
    if ((await untrusted(this.#sql)).length === 0) return;
    await this.#tx.transaction(async (tx) => {
      await tx.unsafe(SETUP_WAITS);
      await tx.unsafe(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext($1))`, [
        `${this.#schema}.${names[0]}`,
      ]);
      for (const { name, must_drop, overloads } of await untrusted(tx)) {
        const at = names.indexOf(name);
        // Any other routine of the name: dropped (never CASCADE) if this role may, else the
        // server's refusal (42501 not its owner, 2BP01 something depends on it) stands.
        for (const args of overloads) await tx.unsafe(`DROP ROUTINE ${fns[at]}(${args})`);
        // Another role's (planted, or left by another store role): dropped first, so that the
        // one made is this role's; only its owner (or a superuser) may, else 42501. So is one
        // `CREATE OR REPLACE` cannot turn into this one (kind, parameter names, result).
        if (must_drop) await tx.unsafe(`DROP ROUTINE ${functionSignature(fns[at], specs[name])}`);
        await tx.unsafe(functionDdl(fns[at], specs[name]));
      }
    });
  }

  /**
   * Whether `err`, from a statement that called one of the store's functions
   * (which then wrote nothing), says it cannot be called: dropped (made
   * again on the next use) or not allowed to this role (`EXECUTE` revoked, or
   * the table itself) or ambiguous (another role added an overload of the
   * name since the check, 42725): the statements without the functions from
   * now on, which then answer for themselves.
   */
  #functionUnusable(err: unknown): boolean {
    const how = unusableFunction(err);
    if (how !== undefined) this.#storeFunctions = how === "gone" ? undefined : NEVER;
    return how !== undefined;
  }

  /** As {@linkcode #functionUnusable}, for the feed's functions. */
  #feedFunctionUnusable(err: unknown): boolean {
    const how = unusableFunction(err);
    if (how !== undefined) this.#feedPrepared = how === "gone" ? undefined : NEVER;
    return how !== undefined;
  }

  /**
   * Whether this table's commit and claim-read functions (see
   * `Statements.commitBody`, `Statements.claimReadBody`) are there to call:
   * created on the first checked commit or claim of this driver if missing,
   * as the feed's functions are (see `#prepareFeed`). `false` when the role
   * may not create them (for good: the pipelined statements do the same
   * work) or the attempt failed (tried again on the next commit or claim).
   */
  #storeFunctionsReady(): Promise<boolean> {
    return this.#storeFunctions ??= (async () => {
      try {
        const { commitBody, claimReadBody } = this.#sqlText;
        await this.#createFunctions({
          [COMMIT_FUNCTION.name(this.#bareTable)]: COMMIT_FUNCTION.spec(commitBody),
          [CLAIM_READ_FUNCTION.name(this.#bareTable)]: CLAIM_READ_FUNCTION.spec(claimReadBody),
        });
        return true;
      } catch (err) {
        if (!FUNCTION_REFUSED.has(codeOf(err) ?? "")) this.#storeFunctions = undefined;
        return false;
      }
    })();
  }

  /**
   * Inside `tx`, which holds the table's lock: unless the store is at schema
   * version 2 already, create the feed table, move the key space's feed (a
   * store written by Flowstate 0.3: its head, entries and by-key rows) into
   * it with the same numbers and fields, the head's number as the floor, and
   * delete the old rows; set schema version 2. A table of the feed table's
   * name that is not this store's is refused (nothing changed).
   */
  async #moveKeySpaceFeed(tx: { unsafe: Sql["unsafe"] }): Promise<void> {
    const meta = this.#sibling("_meta");
    const ft = this.#sibling("_feed");
    const [version] = await tx.unsafe<{ value: string }[]>(
      `SELECT value FROM ${meta} WHERE key = 'schema_version'`,
    );
    if (version !== undefined && Number(version.value) >= NEWEST_SCHEMA_VERSION) return;
    const [clash] = await tx.unsafe<{ taken: boolean }[]>(
      `SELECT to_regclass($1) IS NOT NULL AS taken`,
      [ft],
    );
    if (clash.taken) {
      throw new StoreCorruptError(
        `Cannot keep the change feed of store "${this.#storeName}": table ${this.#schema}.` +
          `${feedTableName(this.#bareTable)} exists but is not this store's change feed ` +
          `(${this.#schema}.${this.#bareTable}_meta is at schema version 1); nothing was ` +
          `changed: rename that table or choose another "table" option`,
        { path: this.location, reason: "foreign" },
      );
    }
    for (const ddl of feedTableDdl(this.#schema, this.#bareTable)) await tx.unsafe(ddl);
    const [headRow] = await tx.unsafe<{ value: string }[]>(
      `SELECT value FROM ${this.#table} WHERE key = $1`,
      [encodeKey(FEED_HEAD)],
    );
    if (headRow !== undefined) {
      const head = JSON.parse(headRow.value) as { seq: number; since?: number };
      let since = head.since;
      const { where, params } = rangeWhere({ prefix: FEED_ENTRIES }, 1);
      let after = new Uint8Array(0);
      for (;;) {
        const rows = await tx.unsafe<{ key: Uint8Array; value: string }[]>(
          `SELECT key, value FROM ${this.#table} WHERE ${where} AND key > $${
            params.length + 1
          }::bytea ORDER BY key LIMIT 5000`,
          [...params, after] as never[],
        );
        if (rows.length === 0) break;
        after = new Uint8Array(rows[rows.length - 1].key);
        const cols: unknown[][] = Array.from({ length: 9 }, () => []);
        for (const row of rows) {
          const change = parseJson(row.value) as Change;
          since ??= change.at;
          rowOf(change).forEach((v, i) => cols[i].push(v instanceof Uint8Array ? toHex(v) : v));
        }
        await tx.unsafe(
          `INSERT INTO ${ft} (${FEED_TABLE_COLUMNS}) SELECT s, a, decode(k, 'hex'), o, v, ` +
            `ver, p, x, b FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], ` +
            `$5::text[], $6::text[], $7::text[], $8::float8[], $9::text[]) ` +
            `AS u(s, a, k, o, v, ver, p, x, b)`,
          cols as never[],
        );
      }
      for (const prefix of [FEED_ENTRIES, FEED_BY_KEY]) {
        const range = rangeWhere({ prefix }, 1);
        await tx.unsafe(
          `DELETE FROM ${this.#table} WHERE ${range.where}`,
          range.params as never[],
        );
      }
      // The old head stays as a tombstone that no 0.3 process can number from: one still
      // running (an upgrade in progress) fails its next feed write with this message instead of
      // appending to the key space, where nobody would read it (`(value::json->>'seq')::bigint`).
      await tx.unsafe(`UPDATE ${this.#table} SET value = $2 WHERE key = $1`, [
        encodeKey(FEED_HEAD),
        JSON.stringify({ seq: movedFeedTombstone(this.#schema, feedTableName(this.#bareTable)) }),
      ]);
      await tx.unsafe(
        `INSERT INTO ${meta} (key, value) VALUES ('feed_floor', $1), ('feed_since', $2) ` +
          `ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [String(head.seq), String(since ?? Date.now())],
      );
    }
    await tx.unsafe(`UPDATE ${meta} SET value = $1 WHERE key = 'schema_version'`, [
      String(NEWEST_SCHEMA_VERSION),
    ]);
  }

  /** Whether the feed's table is there (another process may have made it since the last look). */
  async #feedReady(): Promise<boolean> {
    if (!this.#feedExists) {
      const [row] = await this.#run<{ value: string }[]>(
        "Cannot read the change feed",
        `SELECT value FROM ${this.#sibling("_meta")} WHERE key = 'schema_version'`,
        [],
      );
      this.#feedExists = row !== undefined && Number(row.value) >= NEWEST_SCHEMA_VERSION;
    }
    return this.#feedExists;
  }

  /**
   * A commit and its change feed entries (see {@linkcode FeedTable.commit}),
   * in one transaction and one round trip: one autocommit call of the table's
   * feed-commit function (PL/pgSQL, created on the first feed commit, see
   * `feedFunctionDdl`), which takes the commit's keys' locks with that of
   * `FEED_HEAD_LOCK` (commits that write the feed go one at a time, in the
   * order they get it, and hold it until their commit, so sequence numbers
   * follow commit order); then, in a later statement and so a fresh snapshot
   * that sees the commit before it, reads the head and the previous
   * versions and writes the commit's rows and the feed's entries only if
   * every check holds, and a `pg_notify` if entries were written. A role
   * that may not create the function gets the same statements as a
   * pipelined transaction on a reserved connection. A commit with a range
   * delete takes the table's lock exclusive, lists the range's keys and
   * deletes each (with its entry) in the same transaction.
   */
  async #feedCommit(
    request: CommitRequest,
    feed: { by: string; topic: string },
  ): Promise<DriverCommitResult> {
    const what = "Cannot commit";
    this.#assertOpen(what);
    if (request.checks.length === 0 && request.mutations.length === 0) return { ok: true };
    const hasFunction = await this.#prepareFeed();
    if (request.mutations.some((m) => m.type === "clear")) {
      return await this.#clearingFeedCommit(request, feed);
    }
    if (hasFunction) {
      const result = await this.#callFeedFunction(request, feed);
      if (result !== undefined) return result;
    }
    return await this.#pipelinedFeedCommit(request, feed);
  }

  /**
   * A feed commit as one call of the feed-commit function: one autocommit
   * statement. Feed commits of this store go one at a time anyway (the
   * head's lock), so while one is on its way the next ones wait here and
   * then go together: one statement that calls the function once for each,
   * one after the other, in one transaction (one WAL flush for all, as
   * PostgreSQL's group commit does for commits that do not wait for each
   * other). Each keeps its own checks: one that fails writes nothing and
   * the others go on, exactly as if they had committed one by one.
   * `undefined` when the function is gone (dropped meanwhile): the caller
   * takes the pipelined transaction, and the next commit creates the
   * function again.
   */
  #callFeedFunction(
    request: CommitRequest,
    feed: { by: string; topic: string },
  ): Promise<DriverCommitResult | undefined> {
    const call: FeedCall = { request, feed, done: Promise.withResolvers() };
    const signal = request.signal;
    if (signal?.aborted) {
      return Promise.reject(
        this.#error("Cannot commit", signal.reason, signal, "nothing was written"),
      );
    }
    this.#feedQueue.push(call);
    if (signal !== undefined) {
      // Given up while it still waits for its turn (behind a feed commit on its way, which may
      // wait for a lock): taken out of the queue, never sent. Once sent, its statement carries
      // other callers' commits too, so it is not cancelled: it lands or fails with them.
      const giveUp = () => {
        const at = this.#feedQueue.indexOf(call);
        if (at < 0) return;
        this.#feedQueue.splice(at, 1);
        call.done.reject(
          this.#error("Cannot commit", signal.reason, signal, "nothing was written"),
        );
      };
      signal.addEventListener("abort", giveUp, { once: true });
      const forget = () => signal.removeEventListener("abort", giveUp);
      call.done.promise.then(forget, forget);
    }
    if (!this.#feedSending) void this.#sendFeedCalls();
    return call.done.promise;
  }

  /** Send the waiting feed commits, in batches of at most `MAX_FEED_BATCH`, until none waits. */
  async #sendFeedCalls(): Promise<void> {
    this.#feedSending = true;
    try {
      while (this.#feedQueue.length > 0) {
        // Commits issued in the same turn of the event loop (writers that a batch's answer just
        // woke) reach the queue a few microtasks apart: when the last batch had company, let
        // them in first, so they go together rather than one alone and then the rest. (A lone
        // writer's batches are single: it does not wait.)
        if (this.#feedBatchShared) {
          for (let tick = 0; tick < FEED_BATCH_TICKS; tick++) await null;
        }
        const batch = this.#feedQueue.splice(0, MAX_FEED_BATCH);
        this.#feedBatchShared = batch.length > 1;
        await this.#runFeedCalls(batch);
      }
    } finally {
      this.#feedSending = false;
    }
  }

  /**
   * One statement for `batch` (see `feedBatchCall`; a lone plain set: its function alone); settles
   * every call's promise, never throws. A deadlock is retried; any other
   * error the server answers for a batch of several runs each call alone, so
   * that each gets its own result or error.
   */
  async #runFeedCalls(batch: FeedCall[]): Promise<void> {
    const what = "Cannot commit";
    // Plain sets call the plain-set function, the others the general one, in the order they were
    // issued (a delete then a set of one key must end with the set). `column` answers for each.
    let kinds = "";
    const locks: string[] = [];
    const callParams: unknown[] = [];
    const column = new Map<FeedCall, string>();
    let single: unknown[] | undefined;
    let sets = 0;
    let others = 0;
    for (const call of batch) {
      const setParams = this.#plainSetParams(call);
      if (setParams !== undefined) {
        kinds += "s";
        column.set(call, `s${sets++}`);
        locks.push(toHex(setParams[0] as Uint8Array), this.#headLockHex);
        callParams.push(...setParams);
        single = setParams;
      } else {
        const { params: feedParams, locked } = this.#feedParams(call.request, call.feed);
        kinds += "g";
        column.set(call, `g${others++}`);
        locks.push(...locked);
        callParams.push(...feedParams, []);
      }
    }
    let text: string;
    let params: unknown[];
    if (kinds === "s") {
      text = this.#feedSetCall ??= `SELECT ${this.#functionName(feedSetFunctionName)}(` +
        `$1::bytea, $2::text, $3::text, $4::float8, $5::float8, $6::text, $7::text) AS s0`;
      params = single!;
    } else {
      let cached = this.#feedCallTexts.get(kinds);
      if (cached === undefined) {
        cached = feedBatchCall(
          this.#sqlText.keyLocks,
          this.#functionName(feedSetFunctionName),
          this.#functionName(feedFunctionName),
          kinds,
        );
        this.#feedCallTexts.set(kinds, cached);
      }
      text = cached;
      params = [locks, ...callParams];
    }
    for (let attempt = 1;; attempt++) {
      if (this.#closed) {
        for (const c of batch) c.done.reject(this.#error(what, new Error("closed")));
        return;
      }
      try {
        const [row] = await this.#sql.unsafe<Record<string, number[] | null>[]>(
          text,
          params as never[],
          PREPARED,
        );
        for (const call of batch) {
          const name = column.get(call)!;
          // A plain set has no check to fail (its function returns nothing).
          call.done.resolve(
            name.startsWith("s") ? { ok: true } : this.#feedResult(call.request.checks, row[name]),
          );
        }
        return;
      } catch (err) {
        if (this.#feedFunctionUnusable(err)) {
          // Gone, not allowed or ambiguous: nothing ran; each call through the statements.
          for (const c of batch) c.done.resolve(undefined);
          return;
        }
        if (attempt < MAX_COMMIT_ATTEMPTS && isRetryable(err) && !this.#closed) continue;
        if (batch.length > 1 && isPostgresError(err) && !this.#closed) {
          // The server refused the statement, so nothing of it was written: each call alone.
          // (A lost connection leaves the outcome unknown: no call may be sent again.)
          for (const c of batch) await this.#runFeedCalls([c]);
          return;
        }
        for (const c of batch) c.done.reject(this.#error(what, err));
        return;
      }
    }
  }

  /** The plain-set function's parameters for `call`, when it is one set with no checks. */
  #plainSetParams(call: FeedCall): unknown[] | undefined {
    const { checks, mutations, version, now } = call.request;
    if (checks.length !== 0 || mutations.length !== 1) return undefined;
    const m = mutations[0];
    if (m.type !== "set") return undefined;
    return [
      encodeKey(m.key),
      m.value,
      version,
      m.expiresAt,
      now,
      call.feed.by,
      this.#channel(call.feed.topic),
    ];
  }

  /** A feed commit's result from its failed checks' numbers (0: a key's lock was busy). */
  #feedResult(checks: readonly AtomicCheck[], failed: number[] | null): DriverCommitResult {
    return failed === null || failed.length === 0
      ? { ok: true }
      : { ok: false, conflicts: failed.filter((i) => i !== 0).map((i) => checks[i - 1].key) };
  }

  /** The `feedWrite` parameters of a feed commit, and the keys it locks (hex). */
  #feedParams(
    request: CommitRequest,
    feed: { by: string; topic: string },
  ): { params: unknown[]; locked: string[] } {
    const { checks, mutations, version, now } = request;
    const planned = planWrites(mutations as Exclude<Mutation, { type: "clear" }>[]);
    const order = planned.order ?? [toHex(planned.single!.key)];
    const plan = expandSingle(planned);
    const checkKeys = checks.map((c) => toHex(encodeKey(c.key)));
    const locked = [...lockList(checkKeys, plan), this.#headLockHex];
    const params = [
      ...checkedWriteParams(checkKeys, checks.map((c) => c.version), now, plan, version),
      order,
      feed.by,
      this.#channel(feed.topic),
    ];
    return { params, locked };
  }

  /**
   * The feed commit as a pipelined transaction on a reserved connection
   * (where the feed-commit function cannot be had): `BEGIN`, the locks,
   * `feedWrite`, `COMMIT`.
   */
  async #pipelinedFeedCommit(
    request: CommitRequest,
    feed: { by: string; topic: string },
  ): Promise<DriverCommitResult> {
    const s = this.#sqlText;
    const { params, locked } = this.#feedParams(request, feed);
    return await this.#feedTransaction((tx) => [
      tx.unsafe(s.keyLocks, [locked] as never[], PREPARED),
      tx.unsafe(s.feedWrite, params as never[], PREPARED),
    ], request.checks);
  }

  /**
   * A feed commit with range deletes: the table's lock exclusive (every
   * other commit waits, and it for them), then each `clear` becomes a delete
   * of every key in its range as listed now (an earlier set in the range, a
   * delete too), and `feedWrite` applies them with their entries, in one
   * pipelined transaction.
   */
  async #clearingFeedCommit(
    request: CommitRequest,
    feed: { by: string; topic: string },
  ): Promise<DriverCommitResult> {
    const s = this.#sqlText;
    return await this.#feedTransaction(async (tx) => {
      await tx.unsafe(`${s.lock}, ${INDEX_PLANS}`);
      const mutations: Mutation[] = [];
      for (const m of request.mutations) {
        if (m.type !== "clear") {
          mutations.push(m);
          continue;
        }
        clearEarlierSets(mutations, m.range);
        const { where, params } = rangeWhere(m.range, 1);
        const rows = await tx.unsafe<{ key: Uint8Array }[]>(
          `SELECT key FROM ${this.#table} WHERE ${where} ORDER BY key`,
          params as never[],
        );
        for (const row of rows) mutations.push({ type: "delete", key: decodeKey(row.key) });
      }
      const { params } = this.#feedParams({ ...request, mutations }, feed);
      return [tx.unsafe(s.feedWrite, params as never[], PREPARED)];
    }, request.checks);
  }

  /**
   * `BEGIN`, the statements `steps` sends (the last one `feedWrite`'s), and
   * `COMMIT` on a reserved connection, pipelined; retried on a deadlock.
   */
  async #feedTransaction(
    steps: (
      tx: { unsafe: Sql["unsafe"] },
    ) => Promise<Promise<Row[]>[]> | Promise<Row[]>[],
    checks: readonly AtomicCheck[],
  ): Promise<DriverCommitResult> {
    const what = "Cannot commit";
    for (let attempt = 1;; attempt++) {
      const tx = await this.#reserve(what);
      try {
        const begin = tx.unsafe("BEGIN");
        begin.catch(() => {}); // sent now (a query goes out when awaited); its outcome is read below
        let sent: Promise<Row[]>[] = [];
        let early: unknown;
        try {
          sent = await steps(tx);
        } catch (err) {
          early = err;
        }
        const results = await Promise.allSettled([begin, ...sent, tx.unsafe("COMMIT")]);
        const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
        if (early !== undefined) failures.unshift(early);
        if (failures.length > 0) {
          // A failed statement makes COMMIT roll back; make sure nothing stays open.
          await tx.unsafe("ROLLBACK").catch(() => {});
          throw failures.find((e) => codeOf(e) !== "25P02") ?? failures[0];
        }
        const [row] = (results[results.length - 2] as PromiseFulfilledResult<Row[]>).value;
        return this.#feedResult(checks, row.failed as number[] | null);
      } catch (err) {
        if (attempt >= MAX_COMMIT_ATTEMPTS || !isRetryable(err) || this.#closed) {
          throw this.#error(what, err);
        }
      } finally {
        tx.release();
      }
    }
  }

  #feedHead = async (): Promise<{ seq: number; since?: number }> => {
    if (!(await this.#feedReady())) return { seq: 0 };
    const [row] = await this.#run<{ seq: number; since: number | null }[]>(
      "Cannot read the change feed",
      this.#feedReads.head,
      [],
    );
    return row.since === null ? { seq: row.seq } : { seq: row.seq, since: row.since };
  };

  #feedFirst = async (): Promise<number | undefined> => {
    if (!(await this.#feedReady())) return undefined;
    const [row] = await this.#run<{ seq: number | null }[]>(
      "Cannot read the change feed",
      this.#feedReads.first,
      [],
    );
    return row.seq ?? undefined;
  };

  #feedEntry = async (seq: number): Promise<Change | null> => {
    if (!(await this.#feedReady())) return null;
    const [row] = await this.#values<FeedRow>(
      "Cannot read the change feed",
      this.#feedReads.entry,
      [seq],
    );
    return row === undefined ? null : changeOf(row);
  };

  /** Pages of `size` by `seq` (keyset: no transaction stays open between pages). */
  async *#feedPages<T>(
    range: FeedTableRange,
    read: (after: number, before: number, size: number) => Promise<T[]>,
    seqOf: (row: T) => number,
  ): AsyncGenerator<T> {
    if (!(await this.#feedReady())) return;
    const size = Math.max(1, Math.min(range.batchSize, 10_000));
    let after = range.after ?? 0;
    let before = range.before ?? Number.MAX_SAFE_INTEGER;
    for (;;) {
      const rows = await read(after, before, size);
      yield* rows;
      if (rows.length < size) return;
      const last = seqOf(rows[rows.length - 1]);
      if (range.reverse) before = last;
      else after = last;
    }
  }

  async *#feedChanges(range: FeedTableRange): AsyncGenerator<Change> {
    const text = range.reverse ? this.#feedReads.changesReverse : this.#feedReads.changes;
    const pages = this.#feedPages(
      range,
      (after, before, size) =>
        this.#values<FeedRow>("Cannot read the change feed", text, [after, before, size]),
      (row) => row[0],
    );
    for await (const row of pages) yield changeOf(row);
  }

  async *#feedKeySeqs(key: Key, range: FeedTableRange): AsyncGenerator<number> {
    const text = range.reverse ? this.#feedReads.keySeqsReverse : this.#feedReads.keySeqs;
    const bytes = encodeKey(key);
    const pages = this.#feedPages(
      range,
      (after, before, size) =>
        this.#values<[number]>("Cannot read the change feed", text, [bytes, after, before, size]),
      (row) => row[0],
    );
    for await (const [seq] of pages) yield seq;
  }

  /**
   * Delete the old entries from the oldest on, up to the first that is
   * neither old by count nor by age (or above `lastSeq`), at most
   * `PURGE_BATCH_SIZE` per statement; the last number deleted stays as the
   * floor, in the same statement.
   */
  /** Replace the values of kept `set` entries in one statement (see `FeedTable.setValues`). */
  async #feedSetValues(values: readonly FeedValue[]): Promise<number> {
    if (values.length === 0 || !(await this.#feedReady())) return 0;
    const [row] = await this.#run<{ n: number }[]>(
      "Cannot rewrite the change feed's values",
      this.#feedReads.setValues,
      [values.map((v) => v.seq), values.map((v) => v.value)],
    );
    return row.n;
  }

  async #feedTrim(request: FeedTrimRequest): Promise<number> {
    const { keepFrom, cutoff, lastSeq } = request;
    if (!(await this.#feedReady())) return 0;
    let removed = 0;
    for (;;) {
      const [row] = await this.#run<{ n: number }[]>(
        "Cannot trim the change feed",
        this.#feedReads.trim,
        [keepFrom, cutoff ?? -Number.MAX_VALUE, lastSeq, PURGE_BATCH_SIZE],
      );
      removed += row.n;
      if (row.n < PURGE_BATCH_SIZE) return removed;
    }
  }

  /**
   * A claim's commit (no range deletes) inside its open transaction, which it
   * ends: the keys' locks *tried* (`tryKeyLocks`), the checked write (which
   * writes nothing when a lock was busy or a check failed), then `COMMIT`,
   * pipelined; with `callFunction`, the commit function does the first two
   * in one statement (with its `$10`, try, set). The claim holds its
   * candidates' rows (`FOR UPDATE`), so it never waits for a key's lock: a
   * commit holding one (a cancel, say) may be waiting for one of those rows,
   * and each would wait for the other
   * until PostgreSQL's deadlock check (1 s by default) broke the cycle. A
   * busy lock makes the commit fail with no conflicting key (the queue
   * claims again, and the other commit goes first). With `feed` (the store
   * keeps a change feed), the locks include the feed head's, and
   * `claimFeedWrite` appends the commit's entries to the feed's table and
   * notifies `feed.topic` at `COMMIT`.
   */
  async #commitIn(
    tx: { unsafe: Sql["unsafe"] },
    request: CommitRequest,
    feed: { by: string; topic: string } | undefined,
    callFunction: boolean,
  ): Promise<DriverCommitResult> {
    const { checks, version, now, mutations } = request;
    if (mutations.some((m) => m.type === "clear")) {
      throw new TypeError("Cannot claim: a claim's commit cannot clear a range");
    }
    const s = this.#sqlText;
    if (feed !== undefined) {
      const { params, locked } = this.#feedParams(request, feed);
      const [, [row]] = await Promise.all([
        tx.unsafe(s.tryKeyLocks, [locked] as never[], PREPARED),
        tx.unsafe<Row[]>(s.claimFeedWrite, params as never[], PREPARED),
        // A failed check wrote nothing: COMMIT ends the transaction all the same.
        tx.unsafe("COMMIT"),
      ]);
      return this.#feedResult(checks, row.failed as number[] | null);
    }
    const checkKeys = checks.map((c) => toHex(encodeKey(c.key)));
    const plan = expandSingle(planWrites(mutations as Exclude<Mutation, { type: "clear" }>[]));
    const params = checkedWriteParams(checkKeys, checks.map((c) => c.version), now, plan, version);
    const locked = lockList(checkKeys, plan);
    let failed: readonly { i: number }[];
    if (callFunction) {
      // The function tries the locks, checks and writes: one statement, then COMMIT.
      const [[row]] = await Promise.all([
        tx.unsafe<{ failed: number[] | null }[]>(
          this.#commitCall,
          [...params, locked, true] as never[],
          PREPARED,
        ),
        // A failed check wrote nothing: COMMIT ends the transaction all the same.
        tx.unsafe("COMMIT"),
      ]);
      failed = (row.failed ?? []).map((i) => ({ i }));
    } else {
      [, failed] = await Promise.all([
        tx.unsafe(s.tryKeyLocks, [locked] as never[], PREPARED),
        tx.unsafe<{ i: number }[]>(s.claimWrite, params as never[], PREPARED),
        tx.unsafe("COMMIT"),
      ]);
    }
    if (failed.length === 0) return { ok: true };
    // i = 0: a key's lock was held by another commit (nothing written; no check to blame).
    return {
      ok: false,
      conflicts: failed.filter((r) => r.i !== 0).map((r) => checks[r.i - 1].key),
    };
  }

  async close(): Promise<void> {
    for (const handle of this.#listeners) await handle.unlisten().catch(() => {});
    this.#listeners.clear();
    if (this.#closed) return;
    this.#closed = true;
    this.#tx.close(
      new StoreClosedError(
        `Cannot commit: store "${this.#storeName}" (${this.location}) is closed`,
      ),
    );
    await Promise.all([
      this.#sql.end({ timeout: CLOSE_TIMEOUT }),
      this.#tx.end(CLOSE_TIMEOUT),
    ]);
  }
}

/**
 * What the key space's feed head holds once its feed moved into the feed
 * table: the message a 0.3 process still running meets on its next feed
 * write (PostgreSQL: "invalid input syntax for type bigint: <this>").
 */
export function movedFeedTombstone(schema: string, feedTable: string): string {
  return `the change feed moved to table ${schema}.${feedTable} (schema version 2): ` +
    `this process runs an older Flowstate; restart it with the new version`;
}
