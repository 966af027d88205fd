/**
 * Declared indexes in the postgres plugin. Values are `TEXT` (jsonb cannot
 * hold `\u0000` or lone surrogates), so an index reads a field through
 * three immutable functions of the value's text and the path:
 *
 * ```sql
 * CREATE INDEX "<table>_<name>_o" ON t (   -- see indexNamePrefix for tables of 47-48 characters
 *   <schema>.flowstate_ix_r(value, '{a,b}'),            -- R: the rank of the field's type
 *   <schema>.flowstate_ix_n(value, '{a,b}'),            -- N: its value when a number
 *   (<schema>.flowstate_ix_s(value, '{a,b}') COLLATE "C"), -- S: its text when a string
 *   key) WHERE key >= '\x…' AND key < '\x…'
 * ```
 *
 * R is the rank of the field's JSON type in the core's sort order (missing 0,
 * null 1, false 2, true 3, number 4, string 5, array 6, object 7). Ordered by
 * (R, N, S, key) the index is exactly the order of `orderBy` on the path
 * with ties by key; an `eq` on a number is `R = 4 AND N = x`, on a string
 * `R = 5 AND N IS NULL AND S = x`, a range `R = 4 AND N > x`, and so on.
 * Each function parses the value once (`t::jsonb`; only a value holding a
 * `\u` escape goes through `flowstate_jsonb`, whose exception block costs a
 * subtransaction).
 *
 * A value jsonb cannot hold (a `\u0000` or lone surrogate escape) is indexed
 * with those escapes (and any escaped surrogate pair beside them) replaced by
 * `\ufffd`, so its place in the index may be wrong. Such values are rare: a
 * partial index `<table>_fs_odd` lists their keys, and a query that uses a
 * declared index first checks (one probe of that, nearly always empty,
 * index) that none lies under the index's prefix; if one does, the core
 * answers the query with its scan. Not a query that the index narrows by a
 * number, or by an `eq` whose operand holds no NUL, surrogate or U+FFFD (on
 * a path without them): the replacement only ever turns such code units of
 * strings into U+FFFD, so the index places every value exactly for those
 * (see `exactForOddValues` in query.ts). One kind of row is outside this:
 * a text that jsonb refuses even after the replacement (a number beyond
 * `numeric`'s range, nesting deeper than the server's stack), which only
 * another client can write, reads as missing in every index; with a `\u0000`
 * or surrogate escape in it as well, such a row was caught by the probe before
 * and is now missed by those queries, as it already was without one.
 *
 * An index that is no longer declared (and the two per-type indexes
 * `_s`/`_n` of earlier versions) is dropped when the store opens with its
 * `indexes` option.
 *
 * @module
 */
import type { Transactions } from "./reserve.ts";
import type { Sql } from "postgres";
import type { IndexSpec, PreparedIndexes, PrepareIndexesRequest } from "../../src/store/driver.ts";
import type { Key } from "../../src/store/types.ts";
import { nameHash } from "../../src/store/indexes.ts";
import { literalPrefixTerms } from "../_sql/bounds.ts";
import { LOCK_CLASS, quoteIdent, SETUP_WAITS } from "./schema.ts";
import { rangeWhere, toHex } from "./statements.ts";

/** Above this many entries under its prefix, building an index reports progress. */
export const BUILD_NOTICE_ENTRIES = 10_000;

/** The cast function, schema-qualified. */
export function castFunction(schema: string): string {
  return `${quoteIdent(schema)}.flowstate_jsonb`;
}

/**
 * Create (or replace) the cast function: the value as jsonb; for a value
 * jsonb cannot hold, the same value with each `\u0000` and lone surrogate
 * escape replaced by `\ufffd` (so the fields without one still read as
 * they are), or NULL if even that fails. PARALLEL UNSAFE: its exception
 * blocks are subtransactions, which parallel workers (an index build on a
 * large table) cannot start.
 */
export function createCastFunctionSql(schema: string): string {
  // An escape of \u0000 or a surrogate, after an even run of backslashes (so not "\\u0000").
  const escape = String.raw`((^|[^\\])(\\\\)*)\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})`;
  const replacement = String.raw`\1\\ufffd`;
  return `CREATE OR REPLACE FUNCTION ${castFunction(schema)}(t text) RETURNS jsonb ` +
    `LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL UNSAFE AS $fs$
DECLARE
  s text := t;
  prev text;
BEGIN
  RETURN t::jsonb;
EXCEPTION WHEN others THEN
  BEGIN
    LOOP
      prev := s;
      s := regexp_replace(s, '${escape}', '${replacement}', 'g');
      EXIT WHEN s = prev;
    END LOOP;
    RETURN s::jsonb;
  EXCEPTION WHEN others THEN
    RETURN NULL;
  END;
END
$fs$`;
}

/** The field reader and the three index functions (R, N, S), schema-qualified. */
function fn(schema: string, name: "field" | "ix_r" | "ix_n" | "ix_s" | "odd"): string {
  return `${quoteIdent(schema)}.flowstate_${name}`;
}

/** CREATE OR REPLACE statements of the field reader and the index functions. */
export function createIndexFunctionsSql(schema: string): string[] {
  const field = fn(schema, "field");
  const body = (returns: string, expr: string) =>
    `RETURNS ${returns} LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL UNSAFE AS $fs$
DECLARE f jsonb := ${field}(t, p);
BEGIN
  RETURN ${expr};
END
$fs$`;
  return [
    // PL/pgSQL, so that the planner does not inline it and run the regular expression over the
    // column's statistics while planning every query that proves the partial index.
    `CREATE OR REPLACE FUNCTION ${fn(schema, "odd")}(t text) RETURNS boolean LANGUAGE plpgsql ` +
    `IMMUTABLE STRICT PARALLEL SAFE AS $fs$ BEGIN RETURN strpos(t, '\\u') > 0 AND ` +
    `t ~ '\\\\u(0000|[dD][89a-fA-F])'; END $fs$`,
    // Only text holding a \u escape can fail the plain cast (the core writes JSON.stringify text).
    `CREATE OR REPLACE FUNCTION ${field}(t text, p text[]) RETURNS jsonb LANGUAGE sql ` +
    `IMMUTABLE STRICT PARALLEL UNSAFE AS $fs$ SELECT (CASE WHEN strpos(t, '\\u') = 0 ` +
    `THEN t::jsonb ELSE ${castFunction(schema)}(t) END) #> p $fs$`,
    `CREATE OR REPLACE FUNCTION ${fn(schema, "ix_r")}(t text, p text[]) ${
      body(
        "integer",
        `CASE jsonb_typeof(f) WHEN 'null' THEN 1 WHEN 'boolean' THEN ` +
          `CASE WHEN f = 'true'::jsonb THEN 3 ELSE 2 END WHEN 'number' THEN 4 ` +
          `WHEN 'string' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 7 ELSE 0 END`,
      )
    }`,
    `CREATE OR REPLACE FUNCTION ${fn(schema, "ix_n")}(t text, p text[]) ${
      body("numeric", `CASE WHEN jsonb_typeof(f) = 'number' THEN f::numeric END`)
    }`,
    `CREATE OR REPLACE FUNCTION ${fn(schema, "ix_s")}(t text, p text[]) ${
      body("text", `CASE WHEN jsonb_typeof(f) = 'string' THEN f #>> '{}' END`)
    }`,
  ];
}

function pathLiteral(path: readonly string[]): string {
  // Segments hold no quote, backslash or NUL (normalizeIndexes): quoted array elements.
  return `'${`{${path.map((s) => `"${s}"`).join(",")}}`.replaceAll("'", "''")}'::text[]`;
}

/** R: the rank of the field's JSON type, on column `col`. */
export function rankExpr(schema: string, col: string, path: readonly string[]): string {
  return `${fn(schema, "ix_r")}(${col}, ${pathLiteral(path)})`;
}

/** N: the field's value when it is a number. */
export function numberExpr(schema: string, col: string, path: readonly string[]): string {
  return `${fn(schema, "ix_n")}(${col}, ${pathLiteral(path)})`;
}

/** S: the field's text when it is a string, in code-point order. */
export function stringExpr(schema: string, col: string, path: readonly string[]): string {
  return `(${fn(schema, "ix_s")}(${col}, ${pathLiteral(path)}) COLLATE "C")`;
}

/** The literal key bounds of a prefix, on column `col`. */
export function prefixTerms(col: string, prefix: Key): string[] {
  return literalPrefixTerms(prefix, col, "postgres", (b) => `'\\x${toHex(b)}'::bytea`);
}

/** PostgreSQL's longest identifier, in bytes (longer ones are truncated silently). */
const MAX_IDENTIFIER = 63;
/** What a declared index's name has after its prefix: `fs_ix_<8 hex digits>_o`. */
const INDEX_NAME_TAIL = "fs_ix_00000000_o".length;
/** Characters of the table's name kept in the prefix of a table too long for `<table>_`. */
const LONG_TABLE_KEPT = MAX_IDENTIFIER - INDEX_NAME_TAIL - 8 - 1;

/**
 * What the names of the declared indexes on `table` start with: `<table>_`,
 * or, for a table whose name leaves no room for the rest within 63 bytes
 * (47 or 48 characters), its first 38 characters and a hash of the whole
 * name, `_`.
 */
export function indexNamePrefix(table: string): string {
  if (table.length + 1 + INDEX_NAME_TAIL <= MAX_IDENTIFIER) return `${table}_`;
  return `${table.slice(0, LONG_TABLE_KEPT)}${nameHash(table)}_`;
}

/** The name of a declaration's index on `table` (at most 63 bytes). */
export function indexName(table: string, index: IndexSpec): string {
  return `${indexNamePrefix(table)}${index.name}_o`;
}

/** The name of the partial index of values jsonb cannot hold. */
export function oddIndexName(table: string): string {
  return `${table}_fs_odd`;
}

/**
 * The predicate of values jsonb cannot hold exactly, on column `col` (a
 * `\u0000` or surrogate escape; an escaped backslash before `u0000` also
 * matches, which only sends that query to the core).
 */
export function oddPredicate(schema: string, col: string): string {
  return `${fn(schema, "odd")}(${col})`;
}

/**
 * `NOT EXISTS` a value jsonb cannot hold under `prefix` (an uncorrelated
 * sub-select: PostgreSQL runs it once, as a gate, from the odd index).
 */
export function noOddUnder(schema: string, table: string, prefix: Key): string {
  return `NOT ${oddExists(schema, table, prefix)}`;
}

/** `EXISTS` a value jsonb cannot hold under `prefix`. */
export function oddExists(schema: string, table: string, prefix: Key): string {
  const where = [oddPredicate(schema, "o.value"), ...prefixTerms("o.key", prefix)];
  return `EXISTS (SELECT 1 FROM ${table} AS o WHERE ${where.join(" AND ")})`;
}

/** The CREATE INDEX statement of a declaration. */
export function createIndexSql(
  schema: string,
  table: string,
  qualified: string,
  index: IndexSpec,
): string {
  const where = prefixTerms("key", index.prefix);
  const partial = where.length === 0 ? "" : ` WHERE ${where.join(" AND ")}`;
  return `CREATE INDEX IF NOT EXISTS ${quoteIdent(indexName(table, index))} ON ${qualified} (${
    rankExpr(schema, "value", index.path)
  }, ${numberExpr(schema, "value", index.path)}, ${
    stringExpr(schema, "value", index.path)
  }, key)${partial}`;
}

/** Where the driver's indexes live. */
export interface PgIndexTarget {
  /** The schema. */
  schema: string;
  /** The table's bare name. */
  table: string;
  /** The table, schema-qualified and quoted. */
  qualified: string;
  /** The table's advisory lock id. */
  lockId: number;
}

/** The names of Flowstate index objects on the table: declared indexes and the odd index. */
async function existingIndexes(sql: Pick<Sql, "unsafe">, t: PgIndexTarget): Promise<string[]> {
  const rows = await sql.unsafe<{ name: string }[]>(
    `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid ` +
      `WHERE i.indrelid = $1::regclass AND (starts_with(c.relname, $2) OR ` +
      `starts_with(c.relname, $3) OR c.relname = $4)`,
    // (`<table>_fs_ix_`: also the names an older version truncated, on a table of 47-48 characters.)
    [
      t.qualified,
      `${indexNamePrefix(t.table)}fs_ix_`,
      `${t.table}_fs_ix_`,
      oddIndexName(t.table),
    ] as never[],
  );
  return rows.map((r) => r.name);
}

/**
 * Build the declared indexes missing from the database and drop the ones no
 * longer declared, under the table's advisory lock so that processes opening
 * at once do the work once. A build reports progress when the prefix holds
 * many entries; it blocks writes to the table while it runs (`CREATE INDEX`,
 * not `CONCURRENTLY`). Resolves the indexes now maintained.
 */
export async function preparePgIndexes(
  sql: Sql,
  t: PgIndexTarget,
  request: PrepareIndexesRequest,
  txPool: Transactions = { begin: (fn) => sql.begin(fn) as never },
): Promise<PreparedIndexes["indexes"]> {
  const wanted = new Set(request.indexes.map((i) => indexName(t.table, i)));
  if (wanted.size > 0) wanted.add(oddIndexName(t.table));
  const settled = (have: string[]) =>
    have.length === wanted.size && have.every((n) => wanted.has(n));
  if (settled(await existingIndexes(sql, t))) return request.indexes.map((i) => i.name);
  // The transaction on `txPool` (the store's pool for transactions), the progress polls on `sql`.
  await txPool.begin(async (tx) => {
    await tx.unsafe(SETUP_WAITS);
    await tx.unsafe(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${t.lockId})`);
    const have = await existingIndexes(tx, t);
    if (settled(have)) return;
    for (const name of have) {
      if (wanted.has(name)) continue;
      await tx.unsafe(`DROP INDEX IF EXISTS ${quoteIdent(t.schema)}.${quoteIdent(name)}`);
      if (name !== oddIndexName(t.table) && !/_[sn]$/.test(name)) {
        const label = name.slice(name.lastIndexOf("fs_ix_")).replace(/_o$/, "");
        request.progress(`dropped index ${label}: no longer declared`);
      }
    }
    if (wanted.size === 0) return;
    await tx.unsafe(createCastFunctionSql(t.schema));
    for (const statement of createIndexFunctionsSql(t.schema)) await tx.unsafe(statement);
    if (!have.includes(oddIndexName(t.table))) {
      await tx.unsafe(
        `CREATE INDEX IF NOT EXISTS ${quoteIdent(oddIndexName(t.table))} ON ${t.qualified} ` +
          `(key) WHERE ${oddPredicate(t.schema, "value")}`,
      );
    }
    for (const index of request.indexes) {
      if (have.includes(indexName(t.table, index))) continue;
      const { where, params } = rangeWhere({ prefix: index.prefix }, 1);
      const [{ n }] = await tx.unsafe<{ n: number }[]>(
        `SELECT count(*)::float8 AS n FROM ${t.qualified} WHERE ${where}`,
        params as never[],
      );
      const label = `index ${index.name} on ${index.path.join(".")} under ${
        JSON.stringify(index.prefix)
      }`;
      const started = performance.now();
      if (n > BUILD_NOTICE_ENTRIES) request.progress(`building ${label}: ${n} entries…`);
      const event = { index: index.name, label, total: n };
      request.onBuild?.({ ...event, phase: "start" });
      await watchBuild(
        sql,
        tx,
        n,
        request.onBuild === undefined
          ? undefined
          : (done) => request.onBuild!({ ...event, phase: "progress", done }),
        () => tx.unsafe(createIndexSql(t.schema, t.table, t.qualified, index)),
      );
      if (n > BUILD_NOTICE_ENTRIES) {
        request.progress(`built ${label} in ${Math.round(performance.now() - started)} ms`);
      }
      request.onBuild?.({ ...event, phase: "done", done: n });
    }
  });
  return request.indexes.map((i) => i.name);
}

/** How often a build's progress is read from `pg_stat_progress_create_index`. */
const BUILD_POLL_MS = 500;

/**
 * Run `build` (a `CREATE INDEX` on `tx`) and, while it runs, read how far
 * it has got from `pg_stat_progress_create_index` over another connection of
 * `sql` every {@linkcode BUILD_POLL_MS}: the share of the table's blocks
 * scanned, then of the tuples loaded into the tree, as a count of the
 * `total` entries (never going back). Without `report`, just runs it.
 */
export async function watchBuild(
  sql: Sql,
  tx: { unsafe: Sql["unsafe"] },
  total: number,
  report: ((done: number) => void) | undefined,
  build: () => Promise<unknown>,
): Promise<void> {
  if (report === undefined || total === 0) {
    await build();
    return;
  }
  // The builder's backend, asked before the build (statements on one connection run in turn).
  const [{ pid }] = await tx.unsafe<{ pid: number }[]>("SELECT pg_backend_pid() AS pid");
  let finished = false;
  let told = 0;
  const poll = async () => {
    while (!finished) {
      await new Promise((resolve) => setTimeout(resolve, BUILD_POLL_MS));
      if (finished) return;
      const rows = await sql.unsafe<BuildProgressRow[]>(
        "SELECT phase, blocks_total::float8 AS blocks_total, blocks_done::float8 AS blocks_done, " +
          "tuples_total::float8 AS tuples_total, tuples_done::float8 AS tuples_done " +
          "FROM pg_stat_progress_create_index WHERE pid = $1",
        [pid],
      ).catch(() => [] as BuildProgressRow[]);
      if (finished || rows.length === 0) continue;
      const done = Math.floor(total * buildShare(rows[0]));
      if (done > told) report(told = done);
    }
  };
  const building = build();
  const polling = poll();
  try {
    await building;
  } finally {
    finished = true;
    await polling;
  }
}

/** A row of `pg_stat_progress_create_index`. */
interface BuildProgressRow {
  phase: string;
  blocks_total: number;
  blocks_done: number;
  tuples_total: number;
  tuples_done: number;
}

/**
 * The share of a build done, from its progress row: scanning the table is
 * counted as the first 90 %, loading the sorted tuples into the tree as the
 * last 10 % (a B-tree build's time goes mostly to the scan and the sort).
 */
function buildShare(row: BuildProgressRow): number {
  if (row.phase.includes("loading tuples") && row.tuples_total > 0) {
    return 0.9 + 0.1 * Math.min(1, row.tuples_done / row.tuples_total);
  }
  if (row.phase.includes("scanning table") && row.blocks_total > 0) {
    return 0.9 * Math.min(1, row.blocks_done / row.blocks_total);
  }
  return row.phase.includes("sorting") ? 0.9 : 0;
}
