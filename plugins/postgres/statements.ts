/**
 * The SQL of the postgres driver's reads and writes on one table, and the
 * write plan a commit's mutations become (several entries travel as
 * `unnest` arrays of hex keys, so a batch is one statement).
 *
 * @module
 */
import type { ClearRange, Mutation } from "../../src/store/driver.ts";
import { byteBounds, encodeKey } from "../../src/store/keys.ts";
import { boundsWhere } from "../_sql/bounds.ts";
import { LOCK_CLASS } from "./schema.ts";

/** Rows one purge statement deletes at most. */
export const PURGE_BATCH_SIZE = 1000;

/** The condition of a live entry; `$NOW` stands for the placeholder of `now`. */
export const LIVE = "(expires_at IS NULL OR expires_at > $NOW::float8)";

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Hex text of bytes: keys travel in arrays as hex text and are `decode(…, 'hex')`d in SQL. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]];
  return out;
}

/** Mutations reduced to the last write per key, as sorted arrays for `unnest`. */
export interface WritePlan {
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
export function rangeWhere(
  range: ClearRange,
  first: number,
): { where: string; params: Uint8Array[] } {
  const params: Uint8Array[] = [];
  const where = boundsWhere(
    byteBounds(range),
    (bytes) => `$${first + params.push(bytes) - 1}::bytea`,
  );
  return { where: where.length === 0 ? "true" : where.join(" AND "), params };
}

/** The write plan of mutations (none of them a range delete). */
export function planWrites(mutations: readonly Exclude<Mutation, { type: "clear" }>[]): WritePlan {
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
export interface Statements {
  get: string;
  getMany: string;
  /** Takes its key's lock itself. */
  setOne: string;
  /** After `keyLocks`, in the same transaction. */
  deleteOne: string;
  /** $1 delete keys, $2 set keys, $3 values, $4 expiries, $5 version (after `keyLocks`). */
  write: string;
  /** As `write` with no deletes, taking its keys' locks itself (one statement). */
  upsertMany: string;
  /** $1 check keys, $2 check versions, $3 now, then as `write` shifted by 3. */
  checkedWrite: string;
  /**
   * As `checkedWrite`, plus the change feed's writes (after `keyLocks` of the
   * head and the written keys): $9 the head's key, $10 the entries' prefix
   * (hex), $11 `since` for a new head, $12 written keys, $13 whether each
   * is a delete (`t`/`f`), $14 their by-key prefixes (hex), $15 and $16 the text of
   * their entries around the sequence number and the previous version (see
   * `FeedTemplate`). Reads the head and the previous versions and writes the
   * entries, the by-key entries and the head only if every check holds.
   */
  feedWrite: string;
  /** `pg_notify($1)` if the row $2 (hex) holds version $3 (the head, after a feed write). */
  notifyIfVersion: string;
  /**
   * The body of the store's feed-commit function (see {@linkcode feedFunctionDdl}):
   * `feedWrite`'s parameters as $1 … $16, $17 the keys to lock (hex), $18
   * the NOTIFY channel. Takes the locks, then (a later statement, so a
   * fresh snapshot that sees every commit that held them before) writes as
   * `feedWrite` and puts the failed checks' numbers in `failed`, then
   * notifies if the head holds this commit's version.
   */
  feedBody: string;
  /** $1 check keys, $2 check versions, $3 now. */
  check: string;
  /** The store's lock, exclusive (for commits with range deletes). */
  lock: string;
  /**
   * The store's lock shared, then every key's lock (exclusive, in hash
   * order); $1 the keys (hex). What a commit takes before its statement.
   * Also turns sequential scans off for the rest of the transaction (see
   * {@linkcode INDEX_PLANS}).
   */
  keyLocks: string;
  /**
   * As `keyLocks`, but never waiting for a key's lock: each is tried
   * (`pg_try_advisory_xact_lock`), and the transaction-local setting
   * {@linkcode CLAIM_LOCKS_SETTING} says whether every one was had (`t`) or
   * not (`f`); $1 the keys (hex). What a claim's commit takes before
   * `claimWrite`: a claim holds its candidates' rows, so waiting for a key's
   * lock while another commit holding it waits for one of those rows would
   * be a deadlock. Turns sequential scans off as `keyLocks` does.
   */
  tryKeyLocks: string;
  /**
   * As `checkedWrite`, after `tryKeyLocks` in the same transaction: writes
   * nothing, and answers a row with `i` = 0 (before the failed checks), when
   * a lock was not had.
   */
  claimWrite: string;
  /** A condition that takes the store's shared lock (for unchecked writes). */
  sharedLock: string;
  /** Lone compare-and-set, set over a live version: $1 key, $2 value, $3 version, $4 expiry, $5 checked version, $6 now. */
  casUpdate: string;
  /** Lone compare-and-set, set where no live entry is: $1 key, $2 value, $3 version, $4 expiry, $5 now. */
  casInsert: string;
  /** Lone compare-and-set, delete of a live version: $1 key, $2 checked version, $3 now. */
  casDelete: string;
  purge: string;
}

/**
 * The advisory lock of one key of a table: the two-`int4` space (class,
 * object) holds the table locks, the one-`bigint` space these, so they
 * never collide with a table lock. `hex` is an SQL expression of the key's
 * hex text.
 */
export function keyLockId(hex: string, lockId: number): string {
  return `hashtextextended(${hex}, ${lockId})`;
}

/**
 * The transaction-local setting in which `tryKeyLocks` leaves whether it
 * had every lock (`t`) or not (`f`), for the `claimWrite` after it.
 */
export const CLAIM_LOCKS_SETTING = "flowstate.claim_locks";

/** The version of the feed-commit function's body, part of its name (a new body, a new name). */
const FEED_FUNCTION_VERSION = 1;

/**
 * The (unquoted) name of the feed-commit function of `table`: at most 48 +
 * 15 characters, within PostgreSQL's 63.
 */
export function feedFunctionName(table: string): string {
  return `${table}_feed_commit_v${FEED_FUNCTION_VERSION}`;
}

/**
 * `CREATE OR REPLACE FUNCTION fn(…) RETURNS int[]`: the store's feed commit
 * (see `Statements.feedBody`) as one PL/pgSQL function, so a commit that
 * writes the feed is one autocommit statement (one round trip, no explicit
 * transaction), whose inner statements each take a fresh snapshot after the
 * locks. `fn` is the qualified, quoted name.
 */
export function feedFunctionDdl(fn: string, body: string): string {
  return `CREATE OR REPLACE FUNCTION ${fn}(text[], text[], float8, text[], text[], text[], ` +
    `float8[], text, text, text, text, text[], text[], text[], text[], text[], text[], text) ` +
    // Generic plans from the first call: a custom plan of the feed statement costs more to
    // make (every call, as the planner keeps choosing one) than the statement costs to run.
    `RETURNS int[] LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan ` +
    `AS $fs$\n${body}\n$fs$`;
}

/**
 * One statement that calls the feed-commit function `fn` (qualified, quoted)
 * `n` times, one after the other in one transaction: call `j` (from 0) takes
 * parameters `18j + 1` … `18j + 18` and answers as column `r<j>`.
 */
export function feedFunctionCalls(fn: string, n: number): string {
  const types = [
    "text[]",
    "text[]",
    "float8",
    "text[]",
    "text[]",
    "text[]",
    "float8[]",
    "text",
    "text",
    "text",
    "text",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text",
  ];
  const calls = Array.from(
    { length: n },
    (_, j) =>
      `${fn}(${types.map((t, k) => `$${j * types.length + k + 1}::${t}`).join(", ")}) AS r${j}`,
  );
  return `SELECT ${calls.join(", ")}`;
}

/**
 * An SQL expression that turns sequential scans off for the rest of the
 * transaction (`SET LOCAL enable_seqscan = off`), evaluated by the first
 * statement of a commit's or a claim's transaction. Their later statements
 * address a few keys each (joins of `unnest`ed keys with the table): an
 * index lookup per key is always the plan to have. A plan made while the
 * table is small (a hash join over a sequential scan: cheaper by the
 * planner's estimate at a few pages) is cached by the connection and kept
 * as the table grows (until autovacuum's next analyze), and then reads the
 * whole table, dead rows too, for every commit. Only the planner's choice
 * changes, never a result; other statements (queries, reads) are not
 * affected.
 */
export const INDEX_PLANS = "set_config('enable_seqscan', 'off', true)";

/** The statements of the table `t` (quoted), whose advisory lock id is `lockId`. */
export function statements(t: string, lockId: number): Statements {
  const shared = `(SELECT true FROM pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId}))`;
  // The table lock shared first (its function scan runs before the sort
  // returns a row), then each key's lock in hash order: two commits never
  // wait for each other in a cycle.
  const keyLocks = (keys: string) =>
    `SELECT count(pg_advisory_xact_lock(h))::int AS n FROM (SELECT DISTINCT ` +
    `${keyLockId("k", lockId)} AS h FROM unnest(${keys}) AS k ` +
    `CROSS JOIN pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId}) ORDER BY h) AS s`;
  // Tried, not waited for: whether all were had goes into a transaction-local setting (a
  // failed try leaves the others held until the transaction ends, which is harmless).
  const tryKeyLocks = `SELECT set_config('${CLAIM_LOCKS_SETTING}', CASE WHEN ` +
    `COALESCE(bool_and(pg_try_advisory_xact_lock(h)), true) THEN 't' ELSE 'f' END, true) AS ok, ` +
    `${INDEX_PLANS} AS plans ` +
    `FROM (SELECT DISTINCT ${keyLockId("k", lockId)} AS h FROM unnest($1::text[]) AS k ` +
    `CROSS JOIN pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId}) ORDER BY h) AS s`;
  // One key (a bytea parameter): the shared table lock, then the key's.
  const oneKeyLock = (key: string) =>
    `(SELECT count(pg_advisory_xact_lock(${keyLockId(`encode(${key}, 'hex')`, lockId)})) >= 0 ` +
    `FROM pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId}))`;
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
  const feedWrite = `WITH bad AS MATERIALIZED (${failedChecks}), ` +
    `h AS MATERIALIZED (SELECT COALESCE(max((value::json->>'seq')::bigint), 0) AS seq, ` +
    `COALESCE(max(value::json->>'since'), $11::text) AS since FROM ${t} ` +
    `WHERE key = decode($9::text, 'hex')), ` +
    `w AS MATERIALIZED (SELECT u.i, u.del = 't' AS del, u.bk, u.mid, u.tl, (SELECT e.version FROM ${t} AS e ` +
    `WHERE e.key = decode(u.k, 'hex') AND ${live(3).replaceAll("expires_at", "e.expires_at")}) ` +
    `AS prev FROM unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::text[]) ` +
    `WITH ORDINALITY AS u(k, del, bk, mid, tl, i)), ` +
    `c AS MATERIALIZED (SELECT w.*, (SELECT seq FROM h) + row_number() OVER (ORDER BY w.i) ` +
    `AS seq FROM w WHERE NOT (w.del AND w.prev IS NULL) AND NOT EXISTS (SELECT 1 FROM bad)), ` +
    `d AS (${deleteMany(4, "NOT EXISTS (SELECT 1 FROM bad)")}), ` +
    `i AS (${insertMany(5, "NOT EXISTS (SELECT 1 FROM bad)")}), ` +
    `f AS (INSERT INTO ${t} (key, value, version, expires_at) ` +
    `SELECT decode(x.k, 'hex'), x.v, $8::text, NULL FROM (` +
    `SELECT $10::text || encode(convert_to(lpad(c.seq::text, 16, '0'), 'UTF8'), 'hex') || '00' ` +
    `AS k, '{"seq":' || c.seq || c.mid || COALESCE(to_json(c.prev)::text, 'null') || c.tl AS v ` +
    `FROM c UNION ALL ` +
    `SELECT c.bk || encode(convert_to(lpad(c.seq::text, 16, '0'), 'UTF8'), 'hex') || '00', ` +
    `'null' FROM c UNION ALL ` +
    `SELECT $9::text, '{"seq":' || max(c.seq) || ',"since":' || (SELECT since FROM h) || '}' ` +
    `FROM c HAVING count(*) > 0) AS x ORDER BY x.k ${upsert}) ` +
    `SELECT i FROM bad ORDER BY i`;
  const seqHex = (seq: string) => `encode(convert_to(lpad(${seq}::text, 16, '0'), 'UTF8'), 'hex')`;
  const feedBody =
    `DECLARE failed int[]; v_prev text; v_prev_x float8; v_seq bigint; v_key bytea;\nBEGIN\n` +
    `${keyLocks("$17::text[]").replace(/^SELECT /, "PERFORM ")};\n` +
    // One set, no checks, no deletes (a plain set: the common case): simple statements, each
    // with a fresh snapshot after the locks, which cost less than the general statement.
    `IF cardinality($1) = 0 AND cardinality($4) = 0 AND cardinality($5) = 1 AND ` +
    `cardinality($12) = 1 AND $13[1] = 'f' THEN\n` +
    `v_key := decode($5[1], 'hex');\n` +
    `SELECT version, expires_at INTO v_prev, v_prev_x FROM ${t} WHERE key = v_key;\n` +
    `IF v_prev_x IS NOT NULL AND v_prev_x <= $3 THEN v_prev := NULL; END IF;\n` +
    `INSERT INTO ${t} AS e (key, value, version, expires_at) VALUES (decode($9, 'hex'), ` +
    `'{"seq":1,"since":' || $11 || '}', $8, NULL) ON CONFLICT (key) DO UPDATE SET value = ` +
    `'{"seq":' || ((e.value::json->>'seq')::bigint + 1) || ',"since":' || ` +
    `COALESCE(e.value::json->>'since', $11) || '}', version = excluded.version, ` +
    `expires_at = NULL RETURNING (value::json->>'seq')::bigint INTO v_seq;\n` +
    `INSERT INTO ${t} (key, value, version, expires_at) VALUES (v_key, $6[1], $8, $7[1]), ` +
    `(decode($10 || ${seqHex("v_seq")} || '00', 'hex'), '{"seq":' || v_seq || $15[1] || ` +
    `COALESCE(to_json(v_prev)::text, 'null') || $16[1], $8, NULL), ` +
    `(decode($14[1] || ${seqHex("v_seq")} || '00', 'hex'), 'null', $8, NULL) ${upsert};\n` +
    `PERFORM pg_notify($18, '');\n` +
    `RETURN NULL;\nEND IF;\n` +
    `${
      feedWrite.replace(
        /SELECT i FROM bad ORDER BY i$/,
        "SELECT array_agg(i ORDER BY i) INTO failed FROM bad",
      )
    };\n` +
    `IF failed IS NULL THEN PERFORM pg_notify($18, '') FROM ${t} ` +
    `WHERE key = decode($9, 'hex') AND version = $8; END IF;\n` +
    `RETURN failed;\nEND`;
  return {
    get: `SELECT value, version, expires_at FROM ${t} WHERE key = $1 AND ${live(2)}`,
    // `= ANY(ARRAY(…))`, not `IN (SELECT …)`: the planner looks the keys up in the index
    // whatever the table's size, where a semi join over a small table is a sequential scan,
    // a plan that a connection keeps (cached) as the table grows.
    getMany: `SELECT key, value, version, expires_at FROM ${t} WHERE key = ANY(ARRAY(` +
      `SELECT decode(k, 'hex') FROM unnest($1::text[]) AS k)) AND ${live(2)}`,
    // An insert or upsert sees the latest committed row whenever it takes
    // its locks (ON CONFLICT), so it may lock inside its own statement.
    setOne: `INSERT INTO ${t} (key, value, version, expires_at) ` +
      `SELECT $1::bytea, $2::text, $3::text, $4::float8 WHERE ${oneKeyLock("$1::bytea")} ${upsert}`,
    // A delete must lock in an earlier statement of its transaction: a row
    // committed while it waited is not in its snapshot.
    deleteOne: `DELETE FROM ${t} WHERE key = $1`,
    write: `WITH d AS (${deleteMany(1, "true")}), i AS (${insertMany(2, "true")}) SELECT 1`,
    // Only sets ($1 unused): upserts that lock their own keys first.
    upsertMany: `WITH l AS MATERIALIZED (${keyLocks("$2::text[]")}), ` +
      `i AS (${insertMany(2, "(SELECT n FROM l) >= 0")}) SELECT cardinality($1::text[])`,
    checkedWrite: `WITH bad AS MATERIALIZED (${failedChecks}), ` +
      `d AS (${deleteMany(4, "NOT EXISTS (SELECT 1 FROM bad)")}), ` +
      `i AS (${insertMany(5, "NOT EXISTS (SELECT 1 FROM bad)")}) SELECT i FROM bad ORDER BY i`,
    tryKeyLocks,
    claimWrite: `WITH bad AS MATERIALIZED (${failedChecks} UNION ALL SELECT 0 WHERE ` +
      `current_setting('${CLAIM_LOCKS_SETTING}', true) IS DISTINCT FROM 't'), ` +
      `d AS (${deleteMany(4, "NOT EXISTS (SELECT 1 FROM bad)")}), ` +
      `i AS (${insertMany(5, "NOT EXISTS (SELECT 1 FROM bad)")}) SELECT i FROM bad ORDER BY i`,
    feedWrite,
    notifyIfVersion: `SELECT pg_notify($1::text, '') FROM ${t} ` +
      `WHERE key = decode($2::text, 'hex') AND version = $3::text`,
    feedBody,
    check: `${failedChecks} ORDER BY c.i`,
    lock: `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${lockId})`,
    keyLocks: keyLocks("$1::text[]").replace(
      / AS n FROM /,
      ` AS n, ${INDEX_PLANS} AS plans FROM `,
    ),
    sharedLock: shared,
    // A lone compare-and-set is one statement: an UPDATE or DELETE that
    // waited for the key's lock re-reads the row's latest version (and
    // re-checks it) before it writes; an INSERT meets a row committed
    // meanwhile as a conflict.
    casUpdate: `UPDATE ${t} SET value = $2::text, version = $3::text, expires_at = $4::float8 ` +
      `WHERE key = $1::bytea AND version = $5::text AND ${live(6)} AND ${
        oneKeyLock("$1::bytea")
      } RETURNING 1 AS ok`,
    casInsert: `INSERT INTO ${t} AS e (key, value, version, expires_at) ` +
      `SELECT $1::bytea, $2::text, $3::text, $4::float8 WHERE ${oneKeyLock("$1::bytea")} ` +
      `ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, ` +
      `expires_at = excluded.expires_at WHERE NOT (e.expires_at IS NULL OR ` +
      `e.expires_at > $5::float8) RETURNING 1 AS ok`,
    casDelete: `DELETE FROM ${t} WHERE key = $1::bytea AND version = $2::text AND ${live(3)} AND ${
      oneKeyLock("$1::bytea")
    } RETURNING 1 AS ok`,
    purge: `DELETE FROM ${t} WHERE key IN (SELECT key FROM ${t} WHERE expires_at <= $1::float8 ` +
      `LIMIT ${PURGE_BATCH_SIZE}) AND expires_at <= $1::float8 AND ${shared}`,
  };
}
