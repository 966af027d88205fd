/**
 * The change feed's table of a postgres store (schema version 2):
 * `<table>_feed`, one row per change, written by the commit's own statement
 * (the feed-commit function, see `statements.ts`) in the commit's
 * transaction. It replaces the core's rows in the key space (an entry, a
 * by-key row and the head per change, each a row and an index entry of the
 * store's table, and the head rewritten on every commit); a store whose
 * feed lives there is moved into the table, in one transaction under the
 * table's lock, when a store first opens it (or first writes its feed).
 *
 * Choices:
 * - `seq BIGINT PRIMARY KEY`: the next number is `max(seq) + 1`, read after
 *   taking the advisory lock of `FEED_HEAD_LOCK`, which every commit that
 *   writes the feed takes with its keys' locks and holds until its commit:
 *   gap-free and in commit order across processes, with no counter row to
 *   rewrite per commit (never a `SEQUENCE`: a rolled-back transaction leaves
 *   a gap). When a trim deletes every entry, the last deleted number stays
 *   in `<table>_meta` (`feed_floor`) and the head never moves back.
 * - An index on `(key, seq)`: a key's history and `getAt` read only its own
 *   entries.
 * - `op` is `'set'` or `'delete'`, written as literals by the statements
 *   that append (`statements.ts`) and checked when read (`changeOf`), not by
 *   a `CHECK` constraint: PostgreSQL rebuilds a table's check constraints
 *   from their stored text for every statement that inserts (about 7% of the
 *   server's work for a set with the feed, measured). Tables made before keep
 *   theirs.
 * - `key` holds `encodeKey()` bytes, like the store's table; `value` the
 *   JSON text as stored; `by` the actor as JSON (read back as written).
 * - `feed_since` in `<table>_meta`: when the first entry was written.
 * - `schema_version` 2 in `<table>_meta` says the table is there and is the
 *   store's (a table of that name that is not refuses the feed clearly), and
 *   makes older code, which keeps the feed in the key space, refuse the store
 *   instead of starting a second feed.
 *
 * @module
 */
import { quoteIdent } from "./schema.ts";

/** The feed table's columns, in the order of a `FeedRow` (see `plugins/_sql/feed_row.ts`). */
export const FEED_TABLE_COLUMNS =
  "seq, at, key, op, value, version, previous_version, expires_at, by";

/** The columns as read: `seq` as a number (the client reads a `bigint` as a string). */
export const FEED_READ_COLUMNS =
  "seq::float8, at, key, op, value, version, previous_version, expires_at, by";

/** The (unquoted) name of the feed table of `table`. */
export function feedTableName(table: string): string {
  return `${table}_feed`;
}

/** The statements that create the feed table of `table` in `schema`. */
export function feedTableDdl(schema: string, table: string): string[] {
  const ft = `${quoteIdent(schema)}.${quoteIdent(feedTableName(table))}`;
  return [
    `CREATE TABLE ${ft} (seq BIGINT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, ` +
    `key BYTEA NOT NULL, op TEXT NOT NULL, value TEXT, ` +
    `version TEXT, previous_version TEXT, expires_at DOUBLE PRECISION, by TEXT NOT NULL)`,
    `CREATE INDEX ${quoteIdent(`${feedTableName(table)}_key`)} ON ${ft} (key, seq)`,
  ];
}

/**
 * The feed's head as an SQL expression (`ft`, `meta`: the quoted, qualified
 * tables): the newest entry's number, or, when a trim left none, the floor
 * it kept (every kept entry is newer than every trimmed one, so the floor
 * is read only then), or 0.
 */
export function feedHeadSql(ft: string, meta: string): string {
  return `COALESCE((SELECT max(seq) FROM ${ft}), ` +
    `(SELECT value::bigint FROM ${meta} WHERE key = 'feed_floor'), 0)`;
}

/** The feed's read and trim statements (`ft`, `meta`: the quoted, qualified tables). */
export function feedReads(ft: string, meta: string): {
  /** The head (`seq`) and `since`. */
  head: string;
  /** The oldest kept entry's number (`seq`, null when none). */
  first: string;
  /** Entry $1. */
  entry: string;
  /** Entries with $1 < seq < $2, oldest first, at most $3. */
  changes: string;
  /** As `changes`, newest first. */
  changesReverse: string;
  /** The numbers of key $1's entries with $2 < seq < $3, oldest first, at most $4. */
  keySeqs: string;
  /** As `keySeqs`, newest first. */
  keySeqsReverse: string;
  /**
   * Delete, from the oldest on, at most $4 entries below the first kept one
   * (seq ≥ $1 and at ≥ $2) and at most $3; the last number deleted becomes
   * the floor. Answers `n`, how many.
   */
  trim: string;
  /** Set the value of the `set` entries numbered $1 (an array) to $2 (an array of JSON texts). Answers `n`, how many. */
  setValues: string;
} {
  const headSeq = feedHeadSql(ft, meta);
  // The ORDER BY names the table's column: a bare `seq` is the output column `seq::float8`,
  // which no index orders, so every page read and sorted all the entries after its bound
  // (0.1-1.4 s for a page at 1,000,000 entries).
  const page = (order: string) =>
    `SELECT ${FEED_READ_COLUMNS} FROM ${ft} WHERE seq > $1::bigint AND seq < $2::bigint ` +
    `ORDER BY ${ft}.seq ${order} LIMIT $3::int`;
  const keyPage = (order: string) =>
    `SELECT seq::float8 AS seq FROM ${ft} WHERE key = $1::bytea AND seq > $2::bigint ` +
    `AND seq < $3::bigint ORDER BY ${ft}.key ${order}, ${ft}.seq ${order} LIMIT $4::int`;
  return {
    head: `SELECT ${headSeq}::float8 AS seq, ` +
      `(SELECT value::float8 FROM ${meta} WHERE key = 'feed_since') AS since`,
    first: `SELECT min(seq)::float8 AS seq FROM ${ft}`,
    entry: `SELECT ${FEED_READ_COLUMNS} FROM ${ft} WHERE seq = $1::bigint`,
    changes: page("ASC"),
    changesReverse: page("DESC"),
    keySeqs: keyPage("ASC"),
    keySeqsReverse: keyPage("DESC"),
    trim: `WITH k AS (SELECT seq FROM ${ft} WHERE seq < least((SELECT min(seq) FROM ${ft} ` +
      `WHERE seq >= $1::bigint AND at >= $2::float8), $3::bigint + 1) ORDER BY seq ` +
      `LIMIT $4::int), d AS (DELETE FROM ${ft} WHERE seq IN (SELECT seq FROM k) RETURNING seq), ` +
      `fl AS (INSERT INTO ${meta} (key, value) SELECT 'feed_floor', max(seq)::text FROM d ` +
      `HAVING count(*) > 0 ON CONFLICT (key) DO UPDATE SET value = ` +
      `greatest(${meta}.value::bigint, excluded.value::bigint)::text) ` +
      `SELECT count(*)::int AS n FROM d`,
    setValues: `WITH u AS (UPDATE ${ft} AS f SET value = v.value FROM ` +
      `unnest($1::bigint[], $2::text[]) AS v(seq, value) WHERE f.seq = v.seq AND f.op = 'set' ` +
      `RETURNING 1) SELECT count(*)::int AS n FROM u`,
  };
}
