/**
 * Query pushdown for the sqlite plugin: a `NormalizedQuery` becomes one
 * `SELECT` with bound parameters, or `undefined` when some part of it cannot
 * be written in SQL with exactly the core's semantics (the core then
 * evaluates the query itself).
 *
 * @module
 */
import type { SQLInputValue } from "node:sqlite";
import type { NormalizedQuery } from "../../src/store/query.ts";
import type { JsonValue } from "../../src/store/types.ts";
import { boundsWhere, prefixBounds } from "../_sql/bounds.ts";
import { chooseIndex, type IndexSpec } from "../../src/store/indexes.ts";
import { ident, prefixTerms, rankExpr, valueExpr } from "./indexes.ts";
import { shapeKey } from "../_sql/query_shape.ts";

/** Numeric path segments (array index or object key) that a pushed-down query may have. */
const MAX_INDEX_SEGMENTS = 2;
/** `in` operands with more items than this are evaluated by the core. */
const MAX_IN_ITEMS = 500;

// ---------------------------------------------------------------------------
// Query pushdown: NormalizedQuery → one SELECT with bound parameters.
//
// For a field at a path, T is its json_type (NULL when missing; 'null', 'true',
// 'false', 'integer', 'real', 'text', 'array', 'object') and V its
// json_extract. Numbers are compared as CAST(V AS REAL): SQLite parses an
// integer literal like 1152921504606847000 exactly as int64, while JSON.parse
// rounds it to the nearest double; casting rounds the same way.

const ARRAY_INDEX = /^(0|[1-9]\d*)$/;
const NUMBER_TYPES = "('integer', 'real')";

class SqlParams {
  readonly values: SQLInputValue[] = [];
  /** Bind a value and return its numbered placeholder (reusable in the SQL text). */
  bind(value: SQLInputValue): string {
    this.values.push(value);
    return `?${this.values.length}`;
  }
}

interface Field {
  /** json_type(...) */
  type: string;
  /** json_extract(...) */
  value: string;
  /** json_each(...) */
  each: string;
}

/**
 * Locate a path in `e.value`. Object keys are quoted path labels (`$."seg"`).
 * A segment like `"0"` reads an array index on an array but an object key on
 * an object (as readPath does); SQLite's path syntax has to pick one, so the
 * field is the `coalesce` of both lookups (only one can exist). `undefined`
 * when a segment cannot be written safely as a quoted label.
 */
function locate(path: readonly string[], params: SqlParams): Field | undefined {
  let doc = "e.value";
  let jsonPath = "$";
  let indexSegments = 0;
  for (const seg of path) {
    if (seg.includes('"') || seg.includes("\\") || !seg.isWellFormed()) return undefined;
    if (ARRAY_INDEX.test(seg)) {
      if (seg.length > 9 || ++indexSegments > MAX_INDEX_SEGMENTS) return undefined;
      const asIndex = params.bind(`${jsonPath}[${seg}]`);
      const asLabel = params.bind(`${jsonPath}."${seg}"`);
      doc = `coalesce(${doc} -> ${asIndex}, ${doc} -> ${asLabel})`;
      jsonPath = "$";
    } else {
      jsonPath += `."${seg}"`;
    }
  }
  const p = params.bind(jsonPath);
  return {
    type: `coalesce(json_type(${doc}, ${p}), '')`,
    value: `json_extract(${doc}, ${p})`,
    each: `json_each(${doc}, ${p})`,
  };
}

/** An SQL boolean (never NULL) for "the field deep-equals `operand`", or `undefined`. */
function equals(field: Field, operand: JsonValue, params: SqlParams): string | undefined {
  if (operand === null) return `(${field.type} = 'null')`;
  if (operand === true) return `(${field.type} = 'true')`;
  if (operand === false) return `(${field.type} = 'false')`;
  if (typeof operand === "number") {
    return `(${field.type} IN ${NUMBER_TYPES} AND CAST(${field.value} AS REAL) = ${
      params.bind(operand)
    })`;
  }
  if (typeof operand === "string") {
    if (!operand.isWellFormed()) return undefined;
    return `(${field.type} = 'text' AND ${field.value} = ${params.bind(operand)})`;
  }
  return undefined;
}

/** "One of `items`", grouped by type so large lists stay one IN (...) per type. */
function oneOf(field: Field, items: readonly JsonValue[], params: SqlParams): string | undefined {
  if (items.length > MAX_IN_ITEMS) return undefined;
  const literalTypes = new Set<string>();
  const numbers: string[] = [];
  const strings: string[] = [];
  for (const item of items) {
    if (item === null) literalTypes.add("'null'");
    else if (item === true) literalTypes.add("'true'");
    else if (item === false) literalTypes.add("'false'");
    else if (typeof item === "number") numbers.push(params.bind(item));
    else if (typeof item === "string") {
      if (!item.isWellFormed()) return undefined;
      strings.push(params.bind(item));
    } else return undefined;
  }
  const alternatives: string[] = [];
  if (literalTypes.size > 0) {
    alternatives.push(`${field.type} IN (${[...literalTypes].join(", ")})`);
  }
  if (numbers.length > 0) {
    alternatives.push(
      `(${field.type} IN ${NUMBER_TYPES} AND CAST(${field.value} AS REAL) IN (${
        numbers.join(", ")
      }))`,
    );
  }
  if (strings.length > 0) {
    alternatives.push(`(${field.type} = 'text' AND ${field.value} IN (${strings.join(", ")}))`);
  }
  return alternatives.length === 0 ? "0" : `(${alternatives.join(" OR ")})`;
}

/** "The field is an array with an item equal to `operand`, or a string containing it." */
function contains(field: Field, operand: JsonValue, params: SqlParams): string | undefined {
  let item: string;
  if (operand === null) item = "j.type = 'null'";
  else if (operand === true) item = "j.type = 'true'";
  else if (operand === false) item = "j.type = 'false'";
  else if (typeof operand === "number") {
    item = `j.type IN ${NUMBER_TYPES} AND CAST(j.atom AS REAL) = ${params.bind(operand)}`;
  } else if (typeof operand === "string") {
    if (!operand.isWellFormed()) return undefined;
    const s = params.bind(operand);
    return `(CASE ${field.type} WHEN 'text' THEN instr(${field.value}, ${s}) > 0 ` +
      `WHEN 'array' THEN EXISTS (SELECT 1 FROM ${field.each} AS j WHERE j.type = 'text' AND j.atom = ${s}) ` +
      `ELSE 0 END)`;
  } else return undefined;
  return `(${field.type} = 'array' AND EXISTS (SELECT 1 FROM ${field.each} AS j WHERE ${item}))`;
}

const COMPARATORS = { lt: "<", lte: "<=", gt: ">", gte: ">=" } as const;
/** Matches JSON text that may hold a lone surrogate escape (`\ud800`..`\udfff`). */
export const LONE_SURROGATE_GLOB = "*\\u[dD][89a-fA-F]*";

function clauseSql(
  clause: NormalizedQuery["where"][number],
  params: SqlParams,
): string | undefined {
  const field = locate(clause.path, params);
  if (field === undefined) return undefined;
  const operand = clause.value;
  switch (clause.op) {
    case "exists":
      return (operand ?? true) ? `(${field.type} <> '')` : `(${field.type} = '')`;
    case "eq":
      return equals(field, operand!, params);
    case "ne": {
      const eq = equals(field, operand!, params);
      return eq === undefined ? undefined : `(NOT ${eq})`;
    }
    case "in":
      return oneOf(field, operand as JsonValue[], params);
    case "contains":
      return contains(field, operand!, params);
    case "lt":
    case "lte":
    case "gt":
    case "gte": {
      const op = COMPARATORS[clause.op];
      if (typeof operand === "number") {
        return `(${field.type} IN ${NUMBER_TYPES} AND CAST(${field.value} AS REAL) ${op} ${
          params.bind(operand)
        })`;
      }
      if (typeof operand === "string") {
        if (!operand.isWellFormed()) return undefined;
        return `(${field.type} = 'text' AND ${field.value} ${op} ${params.bind(operand)})`;
      }
      return "0";
    }
    default:
      return undefined;
  }
}

/** A compiled query: one SELECT with its parameters, and the index it uses. */
export interface CompiledQuery {
  /** The SELECT. */
  sql: string;
  /** Its parameters. */
  params: SQLInputValue[];
  /** Whether it orders or compares strings (lone surrogates order differently in SQLite). */
  ordersStrings: boolean;
  /** The declared index it uses, if any. */
  index?: IndexSpec;
  /** Whether the index narrows the rows (a where clause), not only orders them. */
  narrows?: boolean;
}

const RANK_OF: Record<string, number> = { null: 1, false: 2, true: 3 };

/** The index terms for `clause` (R = t AND V op ?), or `undefined` when it cannot narrow. */
function indexTerms(
  index: IndexSpec,
  clause: NormalizedQuery["where"][number],
  params: SqlParams,
): string[] | undefined {
  const r = rankExpr("e.value", index.path);
  const v = valueExpr("e.value", index.path);
  const operand = clause.value;
  if (clause.op === "eq" && String(operand) in RANK_OF && typeof operand !== "string") {
    return [`${r} = ${RANK_OF[String(operand)]}`];
  }
  const cmp = clause.op === "eq" ? "=" : COMPARATORS[clause.op as keyof typeof COMPARATORS];
  if (cmp === undefined) return undefined;
  if (typeof operand === "number") return [`${r} = 4`, `${v} ${cmp} ${params.bind(operand)}`];
  if (typeof operand === "string" && operand.isWellFormed()) {
    return [`${r} = 5`, `${v} ${cmp} ${params.bind(operand)}`];
  }
  return undefined;
}

/** Compile a query to one SELECT, or `undefined` when some part must be left to the core. */
export function compileQuery(
  q: NormalizedQuery,
  now: number,
  indexes: readonly IndexSpec[] = [],
): CompiledQuery | undefined {
  const params = new SqlParams();
  const where = boundsWhere(prefixBounds(q.prefix), (b) => params.bind(b), "e.key");
  const boundTerms = where.length;
  where.push(`(e.expires_at IS NULL OR e.expires_at > ${params.bind(now)})`);
  const clauseAt: number[] = [];
  for (const clause of q.where) {
    const sql = clauseSql(clause, params);
    if (sql === undefined) return undefined;
    clauseAt.push(where.length);
    where.push(sql);
  }
  // A clause that is constantly false matches nothing: no index to name (INDEXED BY would fail).
  let choice = where.includes("0") ? undefined : chooseIndex(indexes, q);
  let narrows = false;
  if (choice !== undefined) {
    const terms = choice.clause === undefined
      ? undefined
      : indexTerms(choice.index, q.where[choice.clause], params);
    if (terms === undefined && !choice.orders) choice = undefined;
    else {
      const literal = prefixTerms("e.key", choice.index.prefix);
      if (q.prefix.length === choice.index.prefix.length) {
        // The same prefix: the literal bounds (needed to match the partial index) say it all.
        where.splice(0, boundTerms, ...literal);
        clauseAt.forEach((_, i) => clauseAt[i] += literal.length - boundTerms);
      } else where.push(...literal);
      if (terms !== undefined) {
        // The index terms say exactly what the clause says (type and value): they replace it.
        where[clauseAt[choice.clause!]] = terms.join(" AND ");
        narrows = true;
      }
    }
  }
  const order: string[] = [];
  for (const [i, o] of q.orderBy.entries()) {
    const dir = o.direction === "desc" ? "DESC" : "ASC";
    if (i === 0 && choice?.orders) {
      // The index's own expressions: the same order, and SQLite can read it from the index.
      // When the index's clause narrows, its terms pin the rank (R = t): a sort key that is
      // constant, and one SQLite does not see through (it would sort every match in a
      // temporary B-tree instead of reading the first `limit` in index order).
      if (!narrows) order.push(`${rankExpr("e.value", choice.index.path)} ${dir}`);
      order.push(`${valueExpr("e.value", choice.index.path)} ${dir}`);
      continue;
    }
    const field = locate(o.path, params);
    if (field === undefined) return undefined;
    // Rank: missing < null < false < true < number < string < array < object.
    order.push(
      `CASE ${field.type} WHEN '' THEN 0 WHEN 'null' THEN 1 WHEN 'false' THEN 2 ` +
        `WHEN 'true' THEN 3 WHEN 'integer' THEN 4 WHEN 'real' THEN 4 WHEN 'text' THEN 5 ` +
        `WHEN 'array' THEN 6 ELSE 7 END ${dir}`,
      `CASE ${field.type} WHEN 'integer' THEN CAST(${field.value} AS REAL) ` +
        `WHEN 'real' THEN ${field.value} WHEN 'text' THEN ${field.value} END ${dir}`,
    );
  }
  order.push("e.key ASC");
  // Literal integers (validated by normalizeQuery): a bound LIMIT costs SQLite ~20 µs a query.
  const limit = q.limit === Infinity ? "" : ` LIMIT ${q.limit}`;
  const offset = q.offset === 0 ? "" : `${limit === "" ? " LIMIT -1" : ""} OFFSET ${q.offset}`;
  const from = choice === undefined
    ? "flowstate_entries AS e"
    : `flowstate_entries AS e INDEXED BY ${ident(choice.index.name)}`;
  const sql = `SELECT e.key, e.value, e.version, e.expires_at FROM ${from} WHERE ${
    where.join(" AND ")
  } ORDER BY ${order.join(", ")}${limit}${offset}`;
  // Parameters no placeholder reads (bound by a clause that turned out
  // constant, or replaced by an index's terms) are dropped and the rest
  // renumbered ?1…?n in order: each query binds only what its text reads.
  const used = [...new Set(Array.from(sql.matchAll(/\?(\d+)/g), (m) => Number(m[1])))]
    .sort((a, b) => a - b);
  const renumbered = new Map(used.map((n, i) => [n, i + 1]));
  return {
    sql: used.every((n, i) => n === i + 1)
      ? sql
      : sql.replace(/\?(\d+)/g, (_, n) => `?${renumbered.get(Number(n))}`),
    params: used.map((n) => params.values[n - 1]),
    // A first sort key read from an index its clause narrows orders nothing but equal strings
    // (an eq) or numbers and literals (a string range is a comparator below).
    ordersStrings: q.orderBy.length > (narrows && choice!.orders ? 1 : 0) ||
      q.where.some((c) => c.op in COMPARATORS && typeof c.value === "string"),
    index: choice?.index,
    narrows,
  };
}

// ---------------------------------------------------------------------------
// Compiled queries by shape. A query's SQL text depends on its shape only
// (prefix, paths, ops, the operands' types, sort keys, limit, offset): the
// operands and `now` are parameters. The cache compiles a shape once, finds
// which parameter comes from which operand by compiling the same shape with
// unique probe operands, and from then on only fills the parameters in — no
// SQL text built, and the same string for the statement cache every time.

type Source =
  | { kind: "now" }
  | { kind: "operand"; clause: number; item: number }
  | { kind: "const"; value: SQLInputValue };

interface Template {
  compiled: CompiledQuery;
  sources: Source[];
}

/** `q` with every number and string operand (and `in` item) replaced by a unique probe. */
function probeQuery(q: NormalizedQuery): { probe: NormalizedQuery; probes: Map<unknown, Source> } {
  const probes = new Map<unknown, Source>();
  let k = 0;
  const probeOf = (v: JsonValue, clause: number, item: number): JsonValue => {
    if (typeof v === "number") {
      const p = -(++k) * 1.000000123e-250;
      probes.set(p, { kind: "operand", clause, item });
      return p;
    }
    if (typeof v === "string" && v.isWellFormed()) {
      const p = `\u0002probe${++k}\u0002`;
      probes.set(p, { kind: "operand", clause, item });
      return p;
    }
    return v;
  };
  const where = q.where.map((c, i) => ({
    ...c,
    value: c.op === "in" && Array.isArray(c.value)
      ? c.value.map((x, j) => probeOf(x, i, j))
      : c.value === undefined
      ? undefined
      : probeOf(c.value, i, -1),
  }));
  return { probe: { ...q, where }, probes };
}

const PROBE_NOW = 1.2345e-300;

function makeTemplate(
  q: NormalizedQuery,
  now: number,
  indexes: readonly IndexSpec[],
): Template | null | "uncacheable" {
  const real = compileQuery(q, now, indexes);
  if (real === undefined) return null;
  const { probe, probes } = probeQuery(q);
  const pc = compileQuery(probe, PROBE_NOW, indexes);
  if (pc === undefined || pc.sql !== real.sql || pc.params.length !== real.params.length) {
    return "uncacheable";
  }
  const sources: Source[] = [];
  for (let i = 0; i < pc.params.length; i++) {
    const p = pc.params[i];
    if (p === PROBE_NOW) sources.push({ kind: "now" });
    else if (probes.has(p)) sources.push(probes.get(p)!);
    else if (p === real.params[i]) sources.push({ kind: "const", value: p });
    else return "uncacheable";
  }
  return { compiled: real, sources };
}

/** At most this many shapes are remembered (then the cache starts over). */
const MAX_SHAPES = 500;

/** The class of a string operand in a shape key: bound as it is (no lone surrogate), or not. */
const WELL_FORMED = (s: string): string => s.isWellFormed() ? "s" : "S";

/** {@linkcode compileQuery}, remembered by the query's shape, for one set of indexes. */
export class CompiledQueries {
  readonly #indexes: readonly IndexSpec[];
  readonly #shapes = new Map<string, Template | null | "uncacheable">();

  /** A cache for queries over `indexes`. */
  constructor(indexes: readonly IndexSpec[]) {
    this.#indexes = indexes;
  }

  /** The compiled query (as `compileQuery` returns it). */
  compile(q: NormalizedQuery, now: number): CompiledQuery | undefined {
    const key = shapeKey(q, WELL_FORMED);
    let t = this.#shapes.get(key);
    if (t === undefined) {
      if (this.#shapes.size >= MAX_SHAPES) this.#shapes.clear();
      this.#shapes.set(key, t = makeTemplate(q, now, this.#indexes));
      if (t !== "uncacheable") return t?.compiled;
    }
    if (t === null) return undefined;
    if (t === "uncacheable") return compileQuery(q, now, this.#indexes);
    const { sources, compiled } = t;
    const params = new Array<SQLInputValue>(sources.length);
    for (let i = 0; i < sources.length; i++) {
      const s = sources[i];
      if (s.kind === "now") params[i] = now;
      else if (s.kind === "const") params[i] = s.value;
      else {
        const v = q.where[s.clause].value as JsonValue;
        params[i] = (s.item < 0 ? v : (v as JsonValue[])[s.item]) as SQLInputValue;
      }
    }
    return {
      sql: compiled.sql,
      params,
      ordersStrings: compiled.ordersStrings,
      index: compiled.index,
      narrows: compiled.narrows,
    };
  }
}
