/**
 * Declared indexes in the postgres plugin. Values are `TEXT` (jsonb cannot
 * hold `\u0000` or lone surrogates), so an index reads them through
 * `<schema>.flowstate_jsonb(text)`, an immutable cast that yields NULL for a
 * value jsonb cannot hold. An index on `path` under `prefix` is two partial
 * b-tree indexes, one for string fields and one for numbers:
 *
 * ```sql
 * CREATE INDEX "<table>_<name>_s" ON t (S, key) WHERE key > '\x…' AND key < '\x…'
 * CREATE INDEX "<table>_<name>_n" ON t (N, key) WHERE …
 * ```
 *
 * S is the field's text when it is a string (`COLLATE "C"`: code-point
 * order), N its value when it is a number. An `eq` or range clause on a
 * string or number adds `S op $x` (or `N op $x`) to the query, with the
 * prefix bounds written literally (PostgreSQL proves a partial index from
 * constants). A value jsonb cannot hold (`\u0000`, a lone surrogate) is
 * indexed with those escapes replaced, and the query keeps its exact
 * clauses, whose cast of such a row fails the query over to the core.
 * Only `eq` on a string or number uses the indexes on postgres.
 *
 * @module
 */
import { byteBounds } from "../../src/store/keys.ts";
import type { IndexSpec } from "../../src/store/indexes.ts";
import type { Key } from "../../src/store/types.ts";
import { boundsWhere } from "../_sql/bounds.ts";
import { quoteIdent } from "./schema.ts";
import { toHex } from "./statements.ts";

/** The cast function, schema-qualified. */
export function castFunction(schema: string): string {
  return `${quoteIdent(schema)}.flowstate_jsonb`;
}

/**
 * Create (or replace) the cast function: the value as jsonb; for a value
 * jsonb cannot hold, the same value with each `\u0000` and lone surrogate
 * escape replaced by `\ufffd` (so the fields without one still read as
 * they are), or NULL if even that fails. Queries keep their exact clauses,
 * which cast the real value: a row the index finds that jsonb cannot hold
 * makes the query fail over to the core. PARALLEL UNSAFE: its exception
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

function pathLiteral(path: readonly string[]): string {
  // Segments hold no quote, backslash or NUL (normalizeIndexes): quoted array elements.
  return `'${`{${path.map((s) => `"${s}"`).join(",")}}`.replaceAll("'", "''")}'`;
}

/** The field expression of `path` on column `col`. */
function fieldExpr(schema: string, col: string, path: readonly string[]): string {
  return `(${castFunction(schema)}(${col}) #> ${pathLiteral(path)}::text[])`;
}

/** S: the field's text when it is a string. */
export function stringExpr(schema: string, col: string, path: readonly string[]): string {
  const f = fieldExpr(schema, col, path);
  return `(CASE WHEN jsonb_typeof(${f}) = 'string' THEN ${f} #>> '{}' END) COLLATE "C"`;
}

/** N: the field's value when it is a number. */
export function numberExpr(schema: string, col: string, path: readonly string[]): string {
  const f = fieldExpr(schema, col, path);
  return `(CASE WHEN jsonb_typeof(${f}) = 'number' THEN (${f})::numeric END)`;
}

/** The literal key bounds of a prefix, on column `col`. */
export function prefixTerms(col: string, prefix: Key): string[] {
  return boundsWhere(byteBounds({ prefix }), (b) => `'\\x${toHex(b)}'::bytea`, col);
}

/** The names of the two indexes of a declaration on `table`. */
export function indexNames(table: string, index: IndexSpec): { s: string; n: string } {
  return { s: `${table}_${index.name}_s`, n: `${table}_${index.name}_n` };
}

/** The CREATE INDEX statements of a declaration. */
export function createIndexSql(
  schema: string,
  table: string,
  qualified: string,
  index: IndexSpec,
): string[] {
  const names = indexNames(table, index);
  const where = prefixTerms("key", index.prefix);
  const partial = where.length === 0 ? "" : ` WHERE ${where.join(" AND ")}`;
  return [
    `CREATE INDEX IF NOT EXISTS ${quoteIdent(names.s)} ON ${qualified} ((${
      stringExpr(schema, "value", index.path)
    }), key)${partial}`,
    `CREATE INDEX IF NOT EXISTS ${quoteIdent(names.n)} ON ${qualified} ((${
      numberExpr(schema, "value", index.path)
    }), key)${partial}`,
  ];
}
