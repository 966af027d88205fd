/**
 * Query pushdown for the postgres plugin: a `NormalizedQuery` becomes one
 * `SELECT` with bound parameters, or `undefined` when some part of it cannot
 * be sent with exactly the core's semantics (the core then evaluates it).
 *
 * @module
 */
import type { NormalizedQuery } from "../../src/store/query.ts";
import type { JsonValue } from "../../src/store/types.ts";
import { boundsWhere, prefixBounds } from "../_sql/bounds.ts";
import { chooseIndex, type IndexSpec } from "../../src/store/indexes.ts";
import { type EscapedKeys, escapedKeys } from "./rows.ts";
import { noOddUnder, numberExpr, oddExists, prefixTerms, rankExpr, stringExpr } from "./indexes.ts";
import { shapeKey } from "../_sql/query_shape.ts";

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

/** Declared indexes as the postgres driver built them. */
export interface PgIndexes {
  /** The schema of the index functions. */
  schema: string;
  /** The indexes. */
  indexes: readonly IndexSpec[];
}

/** A compiled query. */
export interface PgCompiledQuery {
  /** The SELECT. */
  sql: string;
  /** Its parameters. */
  params: unknown[];
  /** How its rows (arrays: the key's escape text after the prefix, value, version, expiry) read. */
  keys: EscapedKeys;
  /** Whether it casts values to jsonb (a cast failure sends the query to the core). */
  castsValues: boolean;
  /** The declared index it uses, if any. */
  index?: IndexSpec;
  /** Whether the index narrows the rows (a where clause), not only orders them. */
  narrows?: boolean;
  /**
   * With an index that may misplace a value jsonb cannot hold (a sort, a
   * string range, an `eq` on a string that may read as U+FFFD: see
   * `exactForOddValues`): a SELECT of one boolean, whether a value under the
   * index's prefix is one (then the query, which returned no rows, must be
   * answered by the core). The query itself returns no rows in that case.
   */
  oddCheck?: string;
}

const RANK_OF: Record<string, number> = { null: 1, false: 2, true: 3 };

/** The index terms that say exactly what `clause` says, or `undefined`. */
function indexTerms(
  schema: string,
  index: IndexSpec,
  clause: NormalizedQuery["where"][number],
  params: SqlParams,
): string[] | undefined {
  const r = rankExpr(schema, "e.value", index.path);
  const operand = clause.value;
  if (clause.op === "eq" && typeof operand !== "string" && String(operand) in RANK_OF) {
    return [`${r} = ${RANK_OF[String(operand)]}`];
  }
  const cmp = clause.op === "eq" ? "=" : COMPARATORS[clause.op as keyof typeof COMPARATORS];
  if (cmp === undefined) return undefined;
  if (typeof operand === "number") {
    return [
      `${r} = 4`,
      `${numberExpr(schema, "e.value", index.path)} ${cmp} ${
        params.bind(JSON.stringify(operand))
      }::numeric`,
    ];
  }
  if (typeof operand === "string" && safeText(operand)) {
    return [
      `${r} = 5`,
      `${numberExpr(schema, "e.value", index.path)} IS NULL`,
      `${stringExpr(schema, "e.value", index.path)} ${cmp} ${params.bind(operand)}::text`,
    ];
  }
  return undefined;
}

/**
 * What a value jsonb cannot hold changes where the index functions read it:
 * `flowstate_jsonb` replaces each `\u0000` and surrogate escape of its text
 * (a lone one, and with it any escaped pair) by `\ufffd`, and nothing else.
 * So every string and object key of the value reads as it is, or with some
 * code units turned into U+FFFD where it held a NUL or a surrogate; types,
 * numbers and the shape never change. A string (operand or path segment)
 * holding none of NUL, surrogates and U+FFFD is then equal to a field as
 * read by the index exactly when it is equal to the field as stored. (No
 * NUL here: an operand holding one is never bound, see `safeText`, and a
 * path segment cannot hold one.)
 */
const REPLACED = /[\ud800-\udfff\ufffd]/;

/**
 * Whether the index's answer to `clause` (the clause it narrows by) is exact
 * even for values jsonb cannot hold, so that the query needs no check for
 * them under the index's prefix (see {@linkcode REPLACED}), on a path
 * without surrogates and U+FFFD: a number operand (`R = 4` and N: numbers
 * and types read as they are), an `eq` on `null` or a boolean (R alone), or
 * an `eq` on a string without NUL, surrogates and U+FFFD. The index then
 * places every such value by the field the core reads: no match is missed or
 * made up, and the matches are in the order the index's columns say (one
 * (R, N, S) for an `eq`; R = 4, N exact and S null for numbers). Not a
 * string range: a replaced string may sort on the other side of its bound.
 */
function exactForOddValues(index: IndexSpec, clause: NormalizedQuery["where"][number]): boolean {
  if (index.path.some((seg) => REPLACED.test(seg))) return false;
  const operand = clause.value;
  if (typeof operand === "number") return true;
  return clause.op === "eq" && (typeof operand !== "string" || !REPLACED.test(operand));
}

/** The class of a string operand in a shape key (see `shapeKey`). */
function stringClass(s: string): string {
  if (!safeText(s)) return "S"; // not bound: the clause goes to the core
  return REPLACED.test(s) ? "r" : "s"; // U+FFFD or a surrogate pair: the index's eq is checked
}

/** Compile a query to one SELECT, or `undefined` when some part must be left to the core. */
export function compileQuery(
  table: string,
  q: NormalizedQuery,
  now: number,
  indexed?: PgIndexes,
): PgCompiledQuery | undefined {
  const params = new SqlParams();
  // An index narrows by one clause (its terms replace the clause: they say the same) and/or
  // gives the order of the first sort key. A clause that is constantly false needs none.
  const constantFalse = q.where.some((c) =>
    (c.op === "in" && (c.value as JsonValue[]).length === 0) ||
    (c.op in COMPARATORS && typeof c.value !== "number" && typeof c.value !== "string")
  );
  let choice = indexed && !constantFalse ? chooseIndex(indexed.indexes, q) : undefined;
  let terms: string[] | undefined;
  if (choice !== undefined) {
    terms = choice.clause === undefined
      ? undefined
      : indexTerms(indexed!.schema, choice.index, q.where[choice.clause], params);
    if (terms === undefined && !choice.orders) choice = undefined;
  }
  // With the index's own prefix, its literal bounds (which prove the partial index) say it all.
  const where = choice !== undefined && choice.index.prefix.length === q.prefix.length
    ? []
    : boundsWhere(prefixBounds(q.prefix), (b) => params.bind(b), "e.key");
  where.push(`(e.expires_at IS NULL OR e.expires_at > ${params.bind(now)}::float8)`);
  const narrows = terms !== undefined;
  // The check for values the index may misplace (a probe of a second index: about a fifth of
  // an indexed eq's time on the server), unless the index's answer is exact for them too.
  const checksOdd = choice !== undefined &&
    !(narrows && exactForOddValues(choice.index, q.where[choice.clause!]));
  if (choice !== undefined) where.push(...prefixTerms("e.key", choice.index.prefix));
  if (checksOdd) where.push(noOddUnder(indexed!.schema, table, choice!.index.prefix));
  const clauses: string[] = [];
  let readsDoc = q.orderBy.length > (choice?.orders ? 1 : 0);
  for (const [i, clause] of q.where.entries()) {
    if (narrows && i === choice!.clause) {
      clauses.push(terms!.join(" AND "));
      continue;
    }
    const sql = clauseSql(clause, params);
    if (sql === undefined) return undefined;
    clauses.push(sql);
    readsDoc = true;
  }
  where.push(...clauses);
  const order: string[] = [];
  for (const [i, o] of q.orderBy.entries()) {
    const dir = o.direction === "desc" ? "DESC" : "ASC";
    if (i === 0 && choice?.orders) {
      // The index's own expressions: the same order, read from the index.
      const s = indexed!.schema;
      const p = choice.index.path;
      order.push(
        `${rankExpr(s, "e.value", p)} ${dir}`,
        `${numberExpr(s, "e.value", p)} ${dir}`,
        `${stringExpr(s, "e.value", p)} ${dir}`,
      );
      continue;
    }
    const f = field(o.path, params);
    if (f === undefined) return undefined;
    // Rank: missing < null < false < true < number < string < array < object.
    order.push(
      `(CASE WHEN ${f} IS NULL THEN 0 ELSE CASE jsonb_typeof(${f}) WHEN 'null' THEN 1 ` +
        `WHEN 'boolean' THEN CASE WHEN ${f} = 'true'::jsonb THEN 3 ELSE 2 END ` +
        `WHEN 'number' THEN 4 WHEN 'string' THEN 5 WHEN 'array' THEN 6 ELSE 7 END END) ${dir}`,
      `(CASE WHEN jsonb_typeof(${f}) = 'number' THEN (${f})::numeric END) ${dir}`,
      `(CASE WHEN jsonb_typeof(${f}) = 'string' THEN (${f} #>> '{}') COLLATE "C" END) ${dir}`,
    );
  }
  if (
    narrows && order.length === 0 && q.where[choice!.clause!].op === "eq" &&
    (q.limit !== Infinity || q.offset > 0)
  ) {
    // Key order of an index's eq with a limit: every entry it reads has the same (R, N, S),
    // so ordering by them too changes nothing, and PostgreSQL reads (R, N, S, key) from the
    // index in order and stops at the limit instead of sorting every match by key (N IS NULL
    // is no constant to its planner). Not without a limit: every match is read either way,
    // and a sort key is computed for each row read (three PL/pgSQL calls: ~70 µs more for
    // a one-match eq than sorting the matches by key).
    const s = indexed!.schema;
    const p = choice!.index.path;
    order.push(
      `${rankExpr(s, "e.value", p)} ASC`,
      `${numberExpr(s, "e.value", p)} ASC`,
      `${stringExpr(s, "e.value", p)} ASC`,
    );
  }
  order.push("e.key ASC");
  const from = readsDoc
    ? `${table} AS e CROSS JOIN LATERAL (SELECT e.value::jsonb AS doc OFFSET 0) AS d`
    : `${table} AS e`;
  // Literal integers (validated by normalizeQuery): a generic plan of a bound LIMIT assumes a
  // tenth of the rows and may sort them all instead of reading the index in order.
  const limit = q.limit === Infinity ? "" : ` LIMIT ${q.limit}`;
  const offset = q.offset === 0 ? "" : ` OFFSET ${q.offset}`;
  // Every key selected is under q.prefix: its escape text after the prefix (see rows.ts).
  const keys = escapedKeys(q.prefix, "e.");
  return {
    sql: `SELECT ${keys.columns} FROM ${from} WHERE ${where.join(" AND ")} ORDER BY ${
      order.join(", ")
    }${limit}${offset}`,
    params: params.values,
    keys,
    castsValues: readsDoc,
    index: choice?.index,
    narrows,
    oddCheck: checksOdd
      ? `SELECT ${oddExists(indexed!.schema, table, choice!.index.prefix)} AS odd`
      : undefined,
  };
}

// ---------------------------------------------------------------------------
// Compiled queries by shape. A query's SQL text depends on its shape only
// (prefix, paths, ops, the operands' types, sort keys, limit, offset): the
// operands and `now` are parameters. The cache compiles a shape once, finds
// which parameter comes from which operand (as is, or as its JSON text) by
// compiling the same shape with unique probe operands, and from then on only
// fills the parameters in: no SQL text built per query (that cost as much as
// a tenth of an indexed lookup's round trip), and the same text for the
// client's prepared statements every time.

type Source =
  | { kind: "now" }
  | { kind: "operand"; clause: number; item: number; json: boolean }
  | { kind: "const"; value: unknown };

interface Template {
  compiled: PgCompiledQuery;
  sources: Source[];
}

/** `q` with every number and string operand (and `in` item) replaced by a unique probe. */
function probeQuery(q: NormalizedQuery): { probe: NormalizedQuery; probes: Map<unknown, Source> } {
  const probes = new Map<unknown, Source>();
  let k = 0;
  const probeOf = (v: JsonValue, clause: number, item: number): JsonValue => {
    let p: JsonValue;
    if (typeof v === "number") p = -(++k) * 1.000000123e-250;
    // Of the operand's class (see stringClass), which decides the text.
    else if (typeof v === "string" && safeText(v)) {
      p = `\u0002probe${++k}${REPLACED.test(v) ? "\ufffd" : ""}\u0002`;
    } else return v;
    probes.set(p, { kind: "operand", clause, item, json: false });
    probes.set(JSON.stringify(p), { kind: "operand", clause, item, json: true });
    return p;
  };
  const where = q.where.map((c, i) => {
    if (c.op === "in" && Array.isArray(c.value)) {
      const value = c.value.map((x, j) => probeOf(x, i, j));
      // An `in` list is bound whole, as JSON text: its items' types are part of the shape.
      probes.set(JSON.stringify(value), { kind: "operand", clause: i, item: -1, json: true });
      return { ...c, value };
    }
    return { ...c, value: c.value === undefined ? undefined : probeOf(c.value, i, -1) };
  });
  return { probe: { ...q, where }, probes };
}

const PROBE_NOW = 1.2345e-300;

function makeTemplate(
  table: string,
  q: NormalizedQuery,
  now: number,
  indexed: PgIndexes | undefined,
): Template | null | "uncacheable" {
  const real = compileQuery(table, q, now, indexed);
  if (real === undefined) return null;
  const { probe, probes } = probeQuery(q);
  const pc = compileQuery(table, probe, PROBE_NOW, indexed);
  if (
    pc === undefined || pc.sql !== real.sql || pc.params.length !== real.params.length ||
    pc.oddCheck !== real.oddCheck || pc.castsValues !== real.castsValues
  ) {
    return "uncacheable";
  }
  const sources: Source[] = [];
  for (let i = 0; i < pc.params.length; i++) {
    const p = pc.params[i];
    if (p === PROBE_NOW) sources.push({ kind: "now" });
    else if (probes.has(p)) sources.push(probes.get(p)!);
    else if (p === real.params[i]) sources.push({ kind: "const", value: p }); // a path segment, a prefix bound
    else return "uncacheable";
  }
  return { compiled: real, sources };
}

/** At most this many shapes are remembered (then the cache starts over). */
const MAX_SHAPES = 500;

/** {@linkcode compileQuery}, remembered by the query's shape, for one table and set of indexes. */
export class PgCompiledQueries {
  readonly #table: string;
  readonly #indexed: PgIndexes | undefined;
  readonly #shapes = new Map<string, Template | null | "uncacheable">();

  /** A cache for queries on `table` (quoted) over the indexes of `indexed`. */
  constructor(table: string, indexed?: PgIndexes) {
    this.#table = table;
    this.#indexed = indexed;
  }

  /** The compiled query, as {@linkcode compileQuery} returns it. */
  compile(q: NormalizedQuery, now: number): PgCompiledQuery | undefined {
    const key = shapeKey(q, stringClass);
    let t = this.#shapes.get(key);
    if (t === undefined) {
      if (this.#shapes.size >= MAX_SHAPES) this.#shapes.clear();
      this.#shapes.set(key, t = makeTemplate(this.#table, q, now, this.#indexed));
      if (t !== "uncacheable") return t?.compiled;
    }
    if (t === null) return undefined;
    if (t === "uncacheable") return compileQuery(this.#table, q, now, this.#indexed);
    const { sources, compiled } = t;
    const params = new Array<unknown>(sources.length);
    for (let i = 0; i < sources.length; i++) {
      const s = sources[i];
      if (s.kind === "now") params[i] = now;
      else if (s.kind === "const") params[i] = s.value;
      else {
        const v = q.where[s.clause].value as JsonValue;
        const operand = s.item < 0 ? v : (v as JsonValue[])[s.item];
        params[i] = s.json ? JSON.stringify(operand) : operand;
      }
    }
    return { ...compiled, params };
  }
}
