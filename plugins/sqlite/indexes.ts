/**
 * Declared indexes and full-text search in the sqlite plugin.
 *
 * An index on `path` under `prefix` is one expression index on
 * `flowstate_entries`:
 *
 * ```sql
 * CREATE INDEX "fs_ix_…" ON flowstate_entries (R, V, key)
 *   WHERE key >= X'<prefix>' AND key < X'<prefix end>'
 * ```
 *
 * where R is the rank of the field's JSON type in the core's sort order
 * (missing 0, null 1, false 2, true 3, number 4, string 5, array 6, object 7)
 * and V its sort value (numbers as REAL, strings as text, NULL otherwise).
 * Ordered by (R, V, key), the index is exactly the order of `orderBy` on the
 * path with ties by key; an `eq` is `R = t AND V = x`, a range `R = t AND V > x`.
 * Query text repeats the expressions and the partial-index terms literally
 * (SQLite matches them by structure, and a bound parameter never matches a
 * literal), and names the index with `INDEXED BY`.
 *
 * Search is an FTS5 table (`flowstate_search`, one column per declared field
 * or one `body` column) whose rowid is the entry's rowid, kept exact by
 * triggers on `flowstate_entries`, so every writer — another process, an
 * older connection — maintains it inside its own transaction. The triggers
 * write the words the core's tokenizer cuts (a JavaScript function the driver
 * registers on its connection), joined by spaces, and the table's `ascii`
 * tokenizer only splits them at the spaces: the words indexed and searched are
 * the reference search's (see `_sql/words.ts`). A connection without that
 * function (an older version's, the `sqlite3` shell) cannot write entries
 * under the search prefix ("no such function"); an older version that opens
 * the store rebuilds the table its own way, and this one rebuilds it back.
 *
 * @module
 */
import { literalPrefixTerms } from "../_sql/bounds.ts";
import type { IndexSpec, SearchSpec } from "../../src/store/indexes.ts";
import type { Key } from "../../src/store/types.ts";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A JSON path literal for json_type/json_extract: `'$."a"."b"'` (segments are validated). */
export function jsonPathLiteral(path: readonly string[]): string {
  return `'${`$${path.map((s) => `."${s}"`).join("")}`.replaceAll("'", "''")}'`;
}

const memo = new Map<string, string>();
/** `make()`, remembered by `key` (expressions are rebuilt for every query otherwise). */
function memoized(key: string, make: () => string): string {
  let text = memo.get(key);
  if (text === undefined) {
    if (memo.size > 1000) memo.clear();
    memo.set(key, text = make());
  }
  return text;
}

/** The rank expression R of `path` on column `col`. */
export function rankExpr(col: string, path: readonly string[]): string {
  return memoized(`r\0${col}\0${path.join("\0")}`, () => makeRankExpr(col, path));
}

function makeRankExpr(col: string, path: readonly string[]): string {
  const p = jsonPathLiteral(path);
  return `CASE json_type(${col}, ${p}) WHEN 'null' THEN 1 WHEN 'false' THEN 2 ` +
    `WHEN 'true' THEN 3 WHEN 'integer' THEN 4 WHEN 'real' THEN 4 WHEN 'text' THEN 5 ` +
    `WHEN 'array' THEN 6 WHEN 'object' THEN 7 ELSE 0 END`;
}

/** The sort value expression V of `path` on column `col`. */
export function valueExpr(col: string, path: readonly string[]): string {
  return memoized(`v\0${col}\0${path.join("\0")}`, () => makeValueExpr(col, path));
}

function makeValueExpr(col: string, path: readonly string[]): string {
  const p = jsonPathLiteral(path);
  return `CASE json_type(${col}, ${p}) WHEN 'integer' THEN CAST(json_extract(${col}, ${p}) AS REAL) ` +
    `WHEN 'real' THEN json_extract(${col}, ${p}) WHEN 'text' THEN json_extract(${col}, ${p}) END`;
}

/** The literal key-range terms of a prefix, on column `col` (empty for `[]`). */
export function prefixTerms(col: string, prefix: Key): string[] {
  return literalPrefixTerms(prefix, col, "sqlite", (bytes) => `X'${hex(bytes)}'`);
}

/** A quoted identifier (index names are `fs_ix_` and hex). */
export function ident(name: string): string {
  return `"${name}"`;
}

/** The CREATE INDEX statement of a declared index. */
export function createIndexSql(index: IndexSpec): string {
  const where = prefixTerms("key", index.prefix);
  return `CREATE INDEX IF NOT EXISTS ${ident(index.name)} ON flowstate_entries (${
    rankExpr("value", index.path)
  }, ${valueExpr("value", index.path)}, key)${
    where.length === 0 ? "" : ` WHERE ${where.join(" AND ")}`
  }`;
}

/** The FTS5 columns of a search declaration. */
export function searchColumns(search: SearchSpec): string[] {
  return search.fields === null ? ["body"] : search.fields.map((_, i) => `f${i}`);
}

/**
 * The text of one search column for the row `row` (`new`/`old`/`e`): the
 * words of its strings (of every string, or of those at `path`), cut by the
 * core's tokenizer (the function the driver registers, see `_sql/words.ts`).
 */
function columnText(row: string, path: readonly string[] | null): string {
  const at = path === null ? "NULL" : `'${JSON.stringify(path).replaceAll("'", "''")}'`;
  return `${SEARCH_WORDS_FUNCTION}(${row}.value, ${at})`;
}

/** The SQL function that cuts a value's words (`valueWords`), registered on every connection. */
export const SEARCH_WORDS_FUNCTION = "flowstate_search_words";

/** Every statement that (re)creates the search table and its triggers; the caller fills it. */
export function createSearchSql(search: SearchSpec): string[] {
  const cols = searchColumns(search);
  const texts = (row: string) =>
    (search.fields === null ? [null] : search.fields).map((f) => columnText(row, f));
  const range = (row: string) => {
    const t = prefixTerms(`${row}.key`, search.prefix);
    return t.length === 0 ? "" : ` WHEN ${t.join(" AND ")}`;
  };
  const insert = (row: string) =>
    `INSERT INTO flowstate_search (rowid, ${cols.join(", ")}) VALUES (${row}.rowid, ${
      texts(row).join(", ")
    });`;
  const remove = (row: string) => `DELETE FROM flowstate_search WHERE rowid = ${row}.rowid;`;
  return [
    `CREATE VIRTUAL TABLE flowstate_search USING fts5(${cols.join(", ")}, tokenize = 'ascii')`,
    `CREATE TRIGGER flowstate_search_insert AFTER INSERT ON flowstate_entries${
      range("new")
    } BEGIN ${insert("new")} END`,
    `CREATE TRIGGER flowstate_search_delete AFTER DELETE ON flowstate_entries${
      range("old")
    } BEGIN ${remove("old")} END`,
    // An update keeps the key (and rowid): delete the old text, insert the new.
    `CREATE TRIGGER flowstate_search_update AFTER UPDATE ON flowstate_entries${
      range("new")
    } BEGIN ${remove("old")} ${insert("new")} END`,
    `INSERT INTO flowstate_search (rowid, ${cols.join(", ")}) SELECT e.rowid, ${
      texts("e").join(", ")
    } FROM flowstate_entries AS e${
      prefixTerms("e.key", search.prefix).length === 0
        ? ""
        : ` WHERE ${prefixTerms("e.key", search.prefix).join(" AND ")}`
    }`,
  ];
}

/** Statements that drop the search table and its triggers. */
export const DROP_SEARCH_SQL = [
  "DROP TRIGGER IF EXISTS flowstate_search_insert",
  "DROP TRIGGER IF EXISTS flowstate_search_delete",
  "DROP TRIGGER IF EXISTS flowstate_search_update",
  "DROP TABLE IF EXISTS flowstate_search",
];

/** An FTS5 MATCH expression: every term (terms are letters and digits only), optionally in some columns. */
export function matchExpression(terms: readonly string[], columns?: readonly string[]): string {
  const all = terms.map((t) => `"${t}"`).join(" AND ");
  return columns === undefined ? all : `{${columns.join(" ")}} : (${all})`;
}
