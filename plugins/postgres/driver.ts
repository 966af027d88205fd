/**
 * The postgres driver: a pool (see `connect.ts`) and one entries table.
 * Every write takes the table's advisory lock (shared, or exclusive for a
 * range delete) and an advisory lock per key it checks or writes, so
 * compare-and-set is exact across processes and commits on different keys
 * never wait for each other.
 *
 * @module
 */
import type { Row, RowList, Sql } from "postgres";
import { StoreClosedError } from "../../src/errors.ts";
import type {
  ClaimRequest,
  ClearRange,
  CommitRequest,
  DriverClaimResult,
  DriverCommitResult,
  FeedCommit,
  KeyRange,
  Mutation,
  RawEntry,
  StoreDriver,
} from "../../src/store/driver.ts";
import { encodeKey } from "../../src/store/keys.ts";
import type { NormalizedQuery } from "../../src/store/query.ts";
import type { AtomicCheck, Capabilities, Key } from "../../src/store/types.ts";
import { boundsWhere } from "../_sql/bounds.ts";
import { asyncPagedEntries, entryOf, type EntryRow } from "../_sql/keyset.ts";
import { connect, type PostgresDriverOptions } from "./connect.ts";
import { codeOf, isCastFailure, isPostgresError, isRetryable, messageOf } from "./errors.ts";
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
import { LOCK_CLASS, quoteIdent } from "./schema.ts";
import {
  feedFunctionCalls,
  feedFunctionDdl,
  feedFunctionName,
  INDEX_PLANS,
  LIVE,
  planWrites,
  PURGE_BATCH_SIZE,
  rangeWhere,
  type Statements,
  statements,
  toHex,
  type WritePlan,
} from "./statements.ts";

/** Wake listeners of a channel ($1) when the transaction commits. */
const NOTIFY = "SELECT pg_notify($1::text, '')";

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

/** A feed commit waiting to be sent: its checks, its 18 parameters, its result. */
interface FeedCall {
  checks: readonly AtomicCheck[];
  params: unknown[];
  done: PromiseWithResolvers<DriverCommitResult | undefined>;
}

/** Feed commits sent together at most (18 parameters each). */
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
    indexes: true,
    search: true,
  });
  /** Single statements (never reserved). */
  #sql: Sql;
  /** Transactions: only `reserve()` and `begin()` (see `Connection.tx`). */
  #tx: Sql;
  #storeName: string;
  #table: string;
  #sqlText: Statements;
  #closed = false;
  #schema: string;
  #bareTable: string;
  #lockId: number;
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
   * Whether the feed-commit function is there to call: created on the first
   * `commitFeed` (see {@linkcode PostgresDriver.commitFeed}); `false` when this
   * role may not create it (the pipelined transaction does the same work).
   */
  #feedFunction: Promise<boolean> | undefined;
  /** Feed commits waiting for the statement on its way (see `#callFeedFunction`). */
  #feedQueue: FeedCall[] = [];
  /** A feed-commit statement is on its way. */
  #feedSending = false;
  /** The text of the statement that calls the feed-commit function n times, by n. */
  #feedCallTexts: string[] = [];

  private constructor(
    sql: Sql,
    tx: Sql,
    location: string,
    storeName: string,
    table: string,
    lockId: number,
    schema: string,
    bareTable: string,
    expiringIndex: boolean,
  ) {
    this.#lockId = lockId;
    this.#expiringIndex = expiringIndex;
    this.#sql = sql;
    this.#tx = tx;
    this.location = location;
    this.#storeName = storeName;
    this.#table = table;
    this.#sqlText = statements(table, lockId);
    this.#schema = schema;
    this.#bareTable = bareTable;
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
    return new PostgresDriver(
      c.sql,
      c.tx,
      c.location,
      c.storeName,
      c.qualified,
      c.lockId,
      c.schema,
      c.table,
      c.expiringIndex,
    );
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

  /** As `#run`, each row an array of its columns (no row object). */
  async #values<T extends unknown[]>(
    what: string,
    text: string,
    params: unknown[],
  ): Promise<T[]> {
    this.#assertOpen(what);
    try {
      return await this.#sql.unsafe(text, params as never[], PREPARED).values() as unknown as T[];
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
  list(range: KeyRange, now: number): AsyncIterableIterator<RawEntry> {
    const what = "Cannot list";
    // Keys come back as the escape text of their bytes after the prefix, rows as arrays
    // (see rows.ts): far cheaper for the client than a bytea and a row object.
    const keys = escapedKeys(range.prefix);
    return asyncPagedEntries(range, (pages, size) => {
      this.#assertOpen(what);
      const params: unknown[] = [];
      const where = boundsWhere(pages.bounds, (bytes) => `$${params.push(bytes)}`);
      where.push(LIVE.replace("$NOW", `$${params.push(now)}`));
      // LIMIT stays bound: a literal would prepare a statement per page size on every connection.
      return this.#values<EscapedRow>(
        what,
        pages.select(this.#table, where, `$${params.push(size)}`, keys.columns),
        params,
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
        if (
          checks.length === 0 && plan.deleteKeys.length === 0 &&
          plan.single?.mutation.type !== "delete"
        ) {
          await this.#upsert(plan, version);
          return { ok: true };
        }
        const lone = await this.#loneCompareAndSet(checks, plan, version, now);
        if (lone !== undefined) return lone;
        return await this.#checkedWrite(checks, plan, version, now);
      } catch (err) {
        if (attempt >= MAX_COMMIT_ATTEMPTS || !isRetryable(err) || this.#closed) {
          throw this.#error(what, err);
        }
      }
    }
  }

  /** Sets without checks or deletes: one statement that locks its keys, then upserts. */
  async #upsert(plan: WritePlan, version: string): Promise<void> {
    this.#assertOpen("Cannot commit");
    const s = this.#sqlText;
    if (plan.single) {
      const { mutation: m, key } = plan.single;
      if (m.type !== "set") throw new TypeError("unreachable: a delete is not an upsert");
      await this.#sql.unsafe(s.setOne, [key, m.value, version, m.expiresAt], PREPARED);
      return;
    }
    await this.#sql.unsafe(s.upsertMany, [
      plan.deleteKeys,
      plan.setKeys,
      plan.setValues,
      plan.setExpires as never,
      version,
    ], PREPARED);
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
  ): Promise<DriverCommitResult | undefined> {
    if (checks.length !== 1 || plan.single === undefined) return undefined;
    const { mutation: m, key } = plan.single;
    const check = checks[0];
    if (toHex(encodeKey(check.key)) !== toHex(key)) return undefined;
    const s = this.#sqlText;
    let rows: Row[];
    if (m.type === "set") {
      rows = check.version === null
        ? await this.#sql.unsafe(s.casInsert, [key, m.value, version, m.expiresAt, now], PREPARED)
        : await this.#sql.unsafe(s.casUpdate, [
          key,
          m.value,
          version,
          m.expiresAt,
          check.version,
          now,
        ] as never[], PREPARED);
    } else {
      if (check.version === null) return undefined;
      rows = await this.#sql.unsafe(s.casDelete, [key, check.version, now], PREPARED);
    }
    return rows.length === 1 ? { ok: true } : { ok: false, conflicts: [check.key] };
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
    const params = checkedWriteParams(checkKeys, checkVersions, now, plan, version) as never[];
    const locked = lockList(checkKeys, plan);
    const tx = await this.#tx.reserve();
    try {
      // Pipelined: the server runs them in order, we wait for all four answers once.
      const results = await Promise.allSettled([
        tx.unsafe("BEGIN"),
        tx.unsafe(s.keyLocks, [locked] as never[], PREPARED),
        checks.length === 0
          ? tx.unsafe(s.write, params.slice(3) as never[], PREPARED)
          : tx.unsafe(s.checkedWrite, params, PREPARED),
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
    const tx = await this.#tx.reserve();
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
        tx = await this.#tx.reserve();
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
  async query(query: NormalizedQuery, now: number): Promise<RawEntry[] | undefined> {
    const what = "Cannot query";
    this.#assertOpen(what);
    const compiled = this.#compiledQueries().compile(query, now);
    if (compiled === undefined) return undefined;
    let rows: EscapedRow[];
    if (!compiled.castsValues) {
      // Nothing to cast, so nothing that fails midway: any connection of the pool (as list).
      rows = await this.#values<EscapedRow>(what, compiled.sql, compiled.params);
    } else {
      const cast = await this.#castingQuery(what, compiled.sql, compiled.params);
      if (cast === undefined) return undefined;
      rows = cast;
    }
    if (rows.length === 0 && compiled.oddCheck !== undefined) {
      // No rows: maybe because a value the index misplaces is under its prefix.
      const [{ odd }] = await this.#run<{ odd: boolean }[]>(what, compiled.oddCheck, []);
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
      connection = await this.#tx.reserve();
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
      const built = await preparePgIndexes(this.#sql, target, request, this.#tx);
      this.#indexes = request.indexes.filter((i) => built.includes(i.name));
      search = await preparePgSearch(
        this.#sql,
        target,
        request.search,
        request.progress,
        request.onBuild,
        this.#tx,
      );
    } catch (err) {
      throw this.#error(what, err);
    }
    this.#search = search ? request.search : undefined;
    return { indexes: this.#indexes.map((i) => i.name), search };
  }

  /** Full-text search through the GIN index of the search column. */
  search(request: SearchRequest, now: number): Promise<RawSearchHit[] | undefined> {
    const what = "Cannot search";
    this.#assertOpen(what);
    if (this.#search === undefined) return Promise.resolve(undefined);
    return pgSearch(
      (text, params) => this.#run<(EntryRow & { score: number })[]>(what, text, params),
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
    if (used) {
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
    const safe = topic.replace(/[^a-z0-9_]/gi, "_").slice(0, 30);
    return `flowstate_${(this.#lockId >>> 0).toString(36)}_${safe}`;
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
      const part = `(e.value::json ->> convert_from($${p + 1}::bytea, 'UTF8'))`;
      next = `WITH e AS (${next}) SELECT e.key, e.value, e.version, e.expires_at, ` +
        `${part} AS c_part, c.value AS c_value, c.version AS c_version, ` +
        `c.expires_at AS c_expires_at FROM e LEFT JOIN ${this.#table} AS c ` +
        `ON position('\\u0000' in e.value) = 0 AND ` +
        `c.key = $${p}::bytea || convert_to(${part}, 'UTF8') || '\\x00'::bytea AND ` +
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
    for (let attempt = 1;; attempt++) {
      const tx = await this.#tx.reserve();
      let open = false;
      try {
        const [, , first] = await Promise.all([
          tx.unsafe("BEGIN").then(() => (open = true)),
          // Index plans for the claim's reads and writes (see INDEX_PLANS).
          tx.unsafe(
            `SELECT pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${this.#lockId}), ${INDEX_PLANS}`,
          ),
          // Prepared (once per connection): an unnamed statement with parameters costs
          // a round trip of its own to describe them first.
          tx.unsafe<CandidateRow[]>(
            next,
            [new Uint8Array(0), now, ...params] as never[],
            PREPARED,
          ),
        ]);
        let rows = first;
        let at = 0;
        const taken: { key: Key; commit: CommitRequest }[] = [];
        for (let offered = 0; offered < limit && taken.length < max; offered++) {
          if (at === rows.length) {
            // Every row held so far was offered: the next ones after them, if there were more.
            if (rows.length < max) break;
            rows = await tx.unsafe<CandidateRow[]>(
              next,
              [rows[rows.length - 1].key, now, ...params] as never[],
              PREPARED,
            );
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
        const result = await this.#commitIn(tx, commit, request.feed?.(commit));
        open = false;
        return { key: taken[0].key, keys: taken.map((t) => t.key), result };
      } catch (err) {
        // The core's own errors (from decide) pass through as they are.
        if (!isPostgresError(err) && !this.#closed) throw err;
        if (attempt >= MAX_COMMIT_ATTEMPTS || !isRetryable(err) || this.#closed) {
          throw this.#error(what, err);
        }
      } finally {
        if (open) await tx.unsafe("ROLLBACK").catch(() => {});
        tx.release();
      }
    }
  }

  /**
   * A commit and the change feed's part of it, in one transaction and one
   * round trip: one autocommit call of the table's feed-commit function
   * (PL/pgSQL, created on the first feed commit, see `feedFunctionDdl`),
   * whose statements take the commit's keys' locks with those of
   * `feed.reads` (the feed's head among them: commits that write the feed go
   * one at a time, in the order they get the head's lock, and hold it until
   * their commit, so sequence numbers follow commit order); then, in a later
   * statement and so a fresh snapshot that sees the commit before it, read
   * the head and the previous versions and write the commit's and the
   * feed's writes only if every check holds (`feed.template`); then a
   * `pg_notify` if anything was written. A role that may not create the
   * function gets the same statements as a pipelined transaction on a
   * reserved connection (`BEGIN` … `COMMIT`, one round trip too, but more
   * work for the client and the server).
   */
  async commitFeed(request: CommitRequest, feed: FeedCommit): Promise<DriverCommitResult> {
    const what = "Cannot commit";
    this.#assertOpen(what);
    if (request.mutations.some((m) => m.type === "clear")) {
      throw new TypeError(`${what}: a commit that writes the feed natively cannot clear a range`);
    }
    if (await this.#hasFeedFunction()) {
      const result = await this.#callFeedFunction(request, feed);
      if (result !== undefined) return result;
    }
    return await this.#pipelinedFeedCommit(request, feed);
  }

  /** The qualified, quoted name of this table's feed-commit function. */
  get #feedFunctionName(): string {
    return `${quoteIdent(this.#schema)}.${quoteIdent(feedFunctionName(this.#bareTable))}`;
  }

  /**
   * Create this table's feed-commit function if it is missing (once per
   * driver; under an advisory lock of its own, so processes doing it at once
   * do not race). Resolves `false` when it cannot be had: for good when the
   * server refuses it (the role may not create functions in the schema, or
   * the server is older than PostgreSQL 12), for this call only on any other
   * failure (the next commit tries again).
   */
  #hasFeedFunction(): Promise<boolean> {
    return this.#feedFunction ??= (async () => {
      try {
        await this.#tx.begin(async (tx) => {
          const name = feedFunctionName(this.#bareTable);
          await tx.unsafe(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext($1))`, [
            `${this.#schema}.${name}`,
          ]);
          const found = await tx.unsafe(
            `SELECT 1 FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace ` +
              `WHERE n.nspname = $1 AND p.proname = $2`,
            [this.#schema, name],
          );
          if (found.length === 0) {
            await tx.unsafe(feedFunctionDdl(this.#feedFunctionName, this.#sqlText.feedBody));
          }
        });
        return true;
      } catch (err) {
        // The server refused (no CREATE privilege on the schema, a server too old for the
        // function's settings): for good. Anything else (the connection): try again next time.
        if (!isPostgresError(err)) this.#feedFunction = undefined;
        return false;
      }
    })();
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
    feed: FeedCommit,
  ): Promise<DriverCommitResult | undefined> {
    const { params, locked } = this.#feedParams(request, feed);
    const call: FeedCall = {
      checks: request.checks,
      params: [...params, locked, this.#channel(feed.topic)],
      done: Promise.withResolvers(),
    };
    this.#feedQueue.push(call);
    if (!this.#feedSending) void this.#sendFeedCalls();
    return call.done.promise;
  }

  /** Send the waiting feed commits, in batches of at most `MAX_FEED_BATCH`, until none waits. */
  async #sendFeedCalls(): Promise<void> {
    this.#feedSending = true;
    try {
      while (this.#feedQueue.length > 0) {
        await this.#runFeedCalls(this.#feedQueue.splice(0, MAX_FEED_BATCH));
      }
    } finally {
      this.#feedSending = false;
    }
  }

  /**
   * One statement for `batch` (see {@linkcode feedFunctionCalls}); settles
   * every call's promise, never throws. A deadlock is retried; any other
   * error the server answers for a batch of several runs each call alone, so
   * that each gets its own result or error.
   */
  async #runFeedCalls(batch: FeedCall[]): Promise<void> {
    const what = "Cannot commit";
    let text = this.#feedCallTexts[batch.length];
    if (text === undefined) {
      text = this.#feedCallTexts[batch.length] = feedFunctionCalls(
        this.#feedFunctionName,
        batch.length,
      );
    }
    const params = batch.flatMap((c) => c.params) as never[];
    if (batch.length > 1) {
      // The first call takes every call's locks, in one sorted pass: the later calls find
      // theirs held already, so two batches never wait for each other in a cycle.
      params[16] = batch.flatMap((c) => c.params[16] as string[]) as never;
    }
    for (let attempt = 1;; attempt++) {
      if (this.#closed) {
        for (const c of batch) c.done.reject(this.#error(what, new Error("closed")));
        return;
      }
      try {
        const [row] = await this.#sql.unsafe<Record<string, number[] | null>[]>(
          text,
          params,
          PREPARED,
        );
        batch.forEach(({ checks, done }, j) => {
          const failed = row[`r${j}`];
          done.resolve(
            failed === null || failed.length === 0
              ? { ok: true }
              : { ok: false, conflicts: failed.map((i) => checks[i - 1].key) },
          );
        });
        return;
      } catch (err) {
        if (codeOf(err) === "42883") {
          // undefined_function: nothing ran.
          this.#feedFunction = undefined;
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

  /** The `feedWrite` parameters of a feed commit, the keys it locks and the head's key (hex). */
  #feedParams(
    request: CommitRequest,
    feed: FeedCommit,
  ): { params: unknown[]; locked: string[]; headHex: string } {
    const { checks, mutations, version, now } = request;
    const plan = expandSingle(planWrites(mutations as Exclude<Mutation, { type: "clear" }>[]));
    const checkKeys = checks.map((c) => toHex(encodeKey(c.key)));
    const t = feed.template;
    const headHex = toHex(encodeKey(t.head));
    const locked = [
      ...checkKeys,
      ...plan.deleteKeys,
      ...plan.setKeys,
      ...feed.reads.map((k) => toHex(encodeKey(k))),
    ];
    const params = [
      ...checkedWriteParams(checkKeys, checks.map((c) => c.version), now, plan, version),
      headHex,
      toHex(encodeKey(t.entries)),
      String(t.since),
      t.writes.map((w) => toHex(encodeKey(w.key))),
      t.writes.map((w) => (w.delete ? "t" : "f")),
      t.writes.map((w) => toHex(encodeKey(w.byKey))),
      t.writes.map((w) => w.middle),
      t.writes.map((w) => w.tail),
    ];
    return { params, locked, headHex };
  }

  /**
   * The feed commit as a pipelined transaction on a reserved connection
   * (where the feed-commit function cannot be had): `BEGIN`, the locks,
   * `feedWrite`, the conditional `pg_notify`, `COMMIT`.
   */
  async #pipelinedFeedCommit(
    request: CommitRequest,
    feed: FeedCommit,
  ): Promise<DriverCommitResult> {
    const what = "Cannot commit";
    const { checks, version } = request;
    const s = this.#sqlText;
    const feedParams = this.#feedParams(request, feed);
    const { locked, headHex } = feedParams;
    const params = feedParams.params as never[];
    for (let attempt = 1;; attempt++) {
      this.#assertOpen(what);
      const tx = await this.#tx.reserve();
      try {
        const results = await Promise.allSettled([
          tx.unsafe("BEGIN"),
          tx.unsafe(s.keyLocks, [locked] as never[], PREPARED),
          tx.unsafe(s.feedWrite, params, PREPARED),
          tx.unsafe(
            s.notifyIfVersion,
            [this.#channel(feed.topic), headHex, version] as never[],
            PREPARED,
          ),
          tx.unsafe("COMMIT"),
        ]);
        const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
        if (failures.length > 0) {
          // A failed statement makes COMMIT roll back; make sure nothing stays open.
          await tx.unsafe("ROLLBACK").catch(() => {});
          throw failures.find((e) => codeOf(e) !== "25P02") ?? failures[0];
        }
        const failed = (results[2] as PromiseFulfilledResult<Row[]>).value;
        return failed.length === 0
          ? { ok: true }
          : { ok: false, conflicts: failed.map((r) => checks[(r.i as number) - 1].key) };
      } catch (err) {
        if (attempt >= MAX_COMMIT_ATTEMPTS || !isRetryable(err) || this.#closed) {
          throw this.#error(what, err);
        }
      } finally {
        tx.release();
      }
    }
  }

  /**
   * A claim's commit (no range deletes) inside its open transaction, which it
   * ends: the keys' locks *tried* (`tryKeyLocks`), the checked write (which
   * writes nothing when a lock was busy or a check failed), then `COMMIT`,
   * pipelined. The claim holds its candidates' rows (`FOR UPDATE`), so it
   * never waits for a key's lock: a commit holding one (a cancel, say) may
   * be waiting for one of those rows, and each would wait for the other
   * until PostgreSQL's deadlock check (1 s by default) broke the cycle. A
   * busy lock makes the commit fail with no conflicting key (the queue
   * claims again, and the other commit goes first). With `feed`, the locks include `feed.reads`,
   * which are read in the same round trip; the feed's writes join the
   * commit's, and a `pg_notify` of `feed.topic` goes before `COMMIT`.
   */
  async #commitIn(
    tx: { unsafe: Sql["unsafe"] },
    request: CommitRequest,
    feed?: FeedCommit,
  ): Promise<DriverCommitResult> {
    const { checks, version, now } = request;
    let mutations = request.mutations;
    if (mutations.some((m) => m.type === "clear")) {
      throw new TypeError("Cannot claim: a claim's commit cannot clear a range");
    }
    const s = this.#sqlText;
    const checkKeys = checks.map((c) => toHex(encodeKey(c.key)));
    const ownKeys = (plan: WritePlan) => lockList(checkKeys, plan);
    let plan = expandSingle(planWrites(mutations as Exclude<Mutation, { type: "clear" }>[]));
    let notify = false;
    if (feed !== undefined) {
      const readHex = feed.reads.map((k) => toHex(encodeKey(k)));
      const [, rows] = await Promise.all([
        tx.unsafe(s.tryKeyLocks, [[...ownKeys(plan), ...readHex]] as never[], PREPARED),
        tx.unsafe<EntryRow[]>(s.getMany, [readHex, now] as never[], PREPARED),
      ]);
      const found = new Map<string, EntryRow>();
      for (const row of rows) found.set(toHex(row.key), row);
      const read = feed.reads.map((key, i): RawEntry | null => {
        const row = found.get(readHex[i]);
        return row === undefined
          ? null
          : { key, value: row.value, version: row.version, expiresAt: row.expires_at };
      });
      const extra = feed.plan(read);
      if (extra.length > 0) {
        notify = true;
        mutations = [...mutations, ...extra];
        plan = expandSingle(planWrites(mutations as Exclude<Mutation, { type: "clear" }>[]));
      }
    }
    const [, failed] = await Promise.all([
      // With a feed, the locks are tried already (the feed's new keys are under the head's).
      feed === undefined ? tx.unsafe(s.tryKeyLocks, [ownKeys(plan)] as never[], PREPARED) : null,
      tx.unsafe(
        s.claimWrite,
        checkedWriteParams(checkKeys, checks.map((c) => c.version), now, plan, version) as never[],
        PREPARED,
      ),
      // Sent at COMMIT only (and not at all when a check fails and nothing is written).
      notify ? tx.unsafe(NOTIFY, [this.#channel(feed!.topic)] as never[], PREPARED) : null,
      // A failed check wrote nothing: COMMIT ends the transaction all the same.
      tx.unsafe("COMMIT"),
    ]);
    if (failed.length === 0) return { ok: true };
    // i = 0: a key's lock was held by another commit (nothing written; no check to blame).
    return {
      ok: false,
      conflicts: failed.filter((r: Row) => r.i !== 0).map((r: Row) => checks[r.i - 1].key),
    };
  }

  async close(): Promise<void> {
    for (const handle of this.#listeners) await handle.unlisten().catch(() => {});
    this.#listeners.clear();
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([
      this.#sql.end({ timeout: CLOSE_TIMEOUT }),
      this.#tx.end({ timeout: CLOSE_TIMEOUT }),
    ]);
  }
}
