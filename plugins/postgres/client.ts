/**
 * Every client of the `postgres` npm package (postgres.js) that Flowstate
 * opens (the stores' pools, the bench and test scripts' own) is made here,
 * by {@linkcode openClient} or {@linkcode sameClient}: with the array types
 * built in rather than fetched.
 *
 * By default postgres@3.4.9 fetches the server's array types after each
 * login (its `fetch_types` option) with a query of its own whose promise
 * nobody handles: a session killed or cut while that query is on its way (a
 * `pg_terminate_backend`, a failover, a network cut) makes the client fail
 * it (at once, or at its next login), and the unhandled rejection ends the
 * process. So a client here never fetches them: it gets, before it
 * connects, the parsers and serializers that fetch would have made for
 * every built-in type ({@linkcode ARRAY_TYPES}), made the way the client
 * makes them ({@linkcode arrayParser}, {@linkcode arraySerializer}), so
 * array parameters and columns read and write as they did. The arrays of
 * types a database defines itself (its tables' row types, enums, domains,
 * extensions' types) are not among them: Flowstate sends and reads none, and
 * such a column reads as its text (`{a,b}`).
 *
 * This module imports the package: the plugin imports it only when a store
 * opens (see `connect()`).
 *
 * @module
 */
import postgres from "postgres";
import type { Options, ParsedOptions, Sql } from "postgres";

/**
 * `[type, array type]`: the object ids of the built-in types (PostgreSQL
 * assigns them once and for all, in `pg_type.dat`: below 10 000) that have
 * an array type, but the catalogs' row types: what postgres.js's fetch after
 * a login finds of them (`SELECT b.oid, b.typarray FROM pg_type a JOIN
 * pg_type b ON b.oid = a.typelem WHERE a.typcategory = 'A'`; the rest it
 * finds are the database's own types). As of PostgreSQL 15.
 */
export const ARRAY_TYPES: readonly (readonly [type: number, array: number])[] = [
  [16, 1000], // bool
  [17, 1001], // bytea
  [18, 1002], // char
  [19, 1003], // name
  [20, 1016], // int8
  [21, 1005], // int2
  [22, 1006], // int2vector
  [23, 1007], // int4
  [24, 1008], // regproc
  [25, 1009], // text
  [26, 1028], // oid
  [27, 1010], // tid
  [28, 1011], // xid
  [29, 1012], // cid
  [30, 1013], // oidvector
  [114, 199], // json
  [142, 143], // xml
  [600, 1017], // point
  [601, 1018], // lseg
  [602, 1019], // path
  [603, 1020], // box (its arrays' delimiter is ";")
  [604, 1027], // polygon
  [628, 629], // line
  [650, 651], // cidr
  [700, 1021], // float4
  [701, 1022], // float8
  [718, 719], // circle
  [774, 775], // macaddr8
  [790, 791], // money
  [829, 1040], // macaddr
  [869, 1041], // inet
  [1033, 1034], // aclitem
  [1042, 1014], // bpchar
  [1043, 1015], // varchar
  [1082, 1182], // date
  [1083, 1183], // time
  [1114, 1115], // timestamp
  [1184, 1185], // timestamptz
  [1186, 1187], // interval
  [1266, 1270], // timetz
  [1560, 1561], // bit
  [1562, 1563], // varbit
  [1700, 1231], // numeric
  [1790, 2201], // refcursor
  [2202, 2207], // regprocedure
  [2203, 2208], // regoper
  [2204, 2209], // regoperator
  [2205, 2210], // regclass
  [2206, 2211], // regtype
  [2275, 1263], // cstring
  [2950, 2951], // uuid
  [2970, 2949], // txid_snapshot
  [3220, 3221], // pg_lsn
  [3614, 3643], // tsvector
  [3615, 3645], // tsquery
  [3642, 3644], // gtsvector
  [3734, 3735], // regconfig
  [3769, 3770], // regdictionary
  [3802, 3807], // jsonb
  [3904, 3905], // int4range
  [3906, 3907], // numrange
  [3908, 3909], // tsrange
  [3910, 3911], // tstzrange
  [3912, 3913], // daterange
  [3926, 3927], // int8range
  [4072, 4073], // jsonpath
  [4089, 4090], // regnamespace
  [4096, 4097], // regrole
  [4191, 4192], // regcollation
  [4451, 6150], // int4multirange
  [4532, 6151], // nummultirange
  [4533, 6152], // tsmultirange
  [4534, 6153], // tstzmultirange
  [4535, 6155], // datemultirange
  [4536, 6157], // int8multirange
  [5038, 5039], // pg_snapshot
  [5069, 271], // xid8
];

/** The box type's array (the only built-in array whose elements are separated by `;`). */
const BOX_ARRAY = 1020;

/** A client's options, as {@linkcode openClient} takes them (its array types are its own). */
export type ClientOptions = Omit<Options<Record<string, never>>, "fetch_types" | "types">;

/**
 * A client of `url` that fetches no array types (see the module): its
 * options are `options`, notices are dropped unless `options.onnotice` says
 * otherwise. It connects when its first statement is sent.
 *
 * Its `reserve()` sends `SELECT 1` first: postgres@3.4.9 hands a connection
 * it opened for a `reserve()` over only once it fetched the types on it, so
 * without the fetch a `reserve()` that opens a connection would wait for
 * good. The statement opens one (or takes an open one), which is open when it
 * answers: the `reserve()` right after takes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openClient } from "./client.ts";
 *
 * const sql = openClient("postgres://app@localhost:5432/app", { max: 1 });
 * assert.equal(sql.options.fetch_types, false);
 * assert.deepEqual(sql.options.parsers[1009]("a,\"b c\"}"), ["a", "b c"]); // text[]
 * assert.equal(sql.options.serializers[1007]([1, null]), '{"1",null}'); // int4[]
 * await sql.end(); // never connected
 * ```
 */
export function openClient(url: string, options: ClientOptions = {}): Sql {
  const sql = postgres(url, { onnotice: () => {}, ...options, fetch_types: false });
  addArrayTypes(sql.options as ParsedOptions & ArrayTypeOptions);
  const reserve = sql.reserve;
  sql.reserve = async () => {
    await sql.unsafe("SELECT 1");
    return await reserve();
  };
  return sql;
}

/**
 * Another client with `client`'s settings and array types (it shares them:
 * the pools of one store), but `changes`. Fetches no array types either; its
 * `reserve()` is the client's own: call it only when the connection is open
 * (see {@linkcode openClient}, and `TxPool`, which does so).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openClient, sameClient } from "./client.ts";
 *
 * const pooled = openClient("postgres://app@localhost:5432/app", { max: 4 });
 * const single = sameClient(pooled, { max: 1 });
 * assert.equal(single.options.max, 1);
 * assert.equal(single.options.parsers, pooled.options.parsers);
 * await Promise.all([pooled.end(), single.end()]); // never connected
 * ```
 */
export function sameClient(
  client: Sql,
  changes: { max: number; onclose?: (connectionId: number) => void },
): Sql {
  // An object of options with `shared` is taken as the client's own options, unparsed.
  return postgres({ ...client.options, ...changes, fetch_types: false } as never);
}

/** What {@linkcode addArrayTypes} reads and fills in a client's options. */
type ArrayTypeOptions = Pick<ParsedOptions, "parsers" | "serializers" | "transform"> & {
  shared: { typeArrayMap: Record<number, number> };
};

/** A parser of an array type (the client hands it the text after the opening `{`). */
type ArrayParser = ((text: string) => unknown[]) & { array: true };

/**
 * Give a client's options (before it connects) the parsers and serializers
 * of {@linkcode ARRAY_TYPES}, as postgres@3.4.9's fetch after a login does
 * (its `addArrayType`): an array type's parser parses each element with its
 * type's parser as it is now; its serializer serializes each element with
 * its type's serializer as it is when called. Types that have both already
 * are left as they are.
 */
export function addArrayTypes(options: ArrayTypeOptions): void {
  for (const [type, array] of ARRAY_TYPES) {
    if (options.parsers[array] && options.serializers[array]) continue;
    const parser = options.parsers[type];
    options.shared.typeArrayMap[type] = array;
    const parse = ((text: string) => arrayParser(text, parser, array)) as ArrayParser;
    parse.array = true;
    options.parsers[array] = parse;
    options.serializers[array] = (xs) =>
      arraySerializer(xs, options.serializers[type], options, array);
  }
}

/** An element that carries its own type (the client's `Parameter`): its value is serialized. */
interface Typed {
  type: number;
  value: unknown;
}

/**
 * An array parameter as PostgreSQL's array text, as postgres@3.4.9 writes it
 * (its `arraySerializer`): every element quoted and escaped, `null` unquoted,
 * nested arrays as nested braces; anything but an array as it is.
 */
export function arraySerializer(
  xs: unknown,
  serializer: ((value: unknown) => unknown) | undefined,
  options: { transform: { undefined: unknown } },
  array: number,
): unknown {
  if (!Array.isArray(xs)) return xs;
  if (!xs.length) return "{}";
  const first = xs[0];
  const delimiter = array === BOX_ARRAY ? ";" : ",";
  if (Array.isArray(first) && !(first as unknown as Partial<Typed>).type) {
    return "{" + xs.map((x) => arraySerializer(x, serializer, options, array)).join(delimiter) +
      "}";
  }
  return "{" + xs.map((x) => {
    if (x === undefined) {
      x = options.transform.undefined;
      if (x === undefined) {
        throw Object.assign(new Error("UNDEFINED_VALUE: Undefined values are not allowed"), {
          code: "UNDEFINED_VALUE",
        });
      }
    }
    if (x === null) return "null";
    const text = serializer
      ? serializer((x as Partial<Typed>).type ? (x as Typed).value : x)
      : "" + x;
    return '"' + arrayEscape(text as string) + '"';
  }).join(delimiter) + "}";
}

function arrayEscape(x: string): string {
  return x.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

/** The array parser's position, kept between calls as the client's own is. */
interface ParserState {
  i: number;
  char: string | null;
  str: string;
  quoted: boolean;
  last: number;
  p?: string | null;
}

const parserState: ParserState = { i: 0, char: null, str: "", quoted: false, last: 0 };

/**
 * An array column's text (after its opening `{`) as nested arrays of its
 * elements, each parsed by `parser`, as postgres@3.4.9 reads it (its
 * `arrayParser`, quirks included: an element `NULL` is handed to `parser`).
 */
export function arrayParser(
  x: string,
  parser: ((text: string) => unknown) | undefined,
  array: number,
): unknown[] {
  parserState.i = parserState.last = 0;
  return arrayParserLoop(parserState, x, parser, array);
}

function arrayParserLoop(
  s: ParserState,
  x: string,
  parser: ((text: string) => unknown) | undefined,
  array: number,
): unknown[] {
  const xs: unknown[] = [];
  const delimiter = array === BOX_ARRAY ? ";" : ",";
  for (; s.i < x.length; s.i++) {
    s.char = x[s.i];
    if (s.quoted) {
      if (s.char === "\\") {
        s.str += x[++s.i];
      } else if (s.char === '"') {
        xs.push(parser ? parser(s.str) : s.str);
        s.str = "";
        s.quoted = x[s.i + 1] === '"';
        s.last = s.i + 2;
      } else {
        s.str += s.char;
      }
    } else if (s.char === '"') {
      s.quoted = true;
    } else if (s.char === "{") {
      s.last = ++s.i;
      xs.push(arrayParserLoop(s, x, parser, array));
    } else if (s.char === "}") {
      s.quoted = false;
      if (s.last < s.i) xs.push(parser ? parser(x.slice(s.last, s.i)) : x.slice(s.last, s.i));
      s.last = s.i + 1;
      break;
    } else if (s.char === delimiter && s.p !== "}" && s.p !== '"') {
      xs.push(parser ? parser(x.slice(s.last, s.i)) : x.slice(s.last, s.i));
      s.last = s.i + 1;
    }
    s.p = s.char;
  }
  if (s.last < s.i) xs.push(parser ? parser(x.slice(s.last, s.i + 1)) : x.slice(s.last, s.i + 1));
  return xs;
}
