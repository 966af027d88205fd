/**
 * The clients of client.ts fetch no array types, yet read and write arrays as a client that
 * fetched them (postgres@3.4.9's default) does: the same table of types as the server's
 * built-ins, the same parsers and serializers, the same results of the same statements.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { ARRAY_TYPES, openClient } from "./client.ts";
import { pgTest, settlesWithin } from "./_test_utils.ts";

/**
 * A client as postgres@3.4.9 makes it by default (it fetches the array types after its
 * login), logged in: what the clients of client.ts must match.
 */
async function withFetchingClient(
  url: string,
  fn: (sql: postgres.Sql) => void | Promise<void>,
): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

pgTest("the built-in array types are the server's", async (url) => {
  const sql = openClient(url, { max: 1 });
  try {
    // What the client's fetch finds, of the types PostgreSQL assigns once and for all.
    const rows = await sql.unsafe<{ oid: number; typarray: number; typname: string }[]>(
      `SELECT b.oid::int, b.typarray::int, b.typname::text FROM pg_catalog.pg_type a
         JOIN pg_catalog.pg_type b ON b.oid = a.typelem
       WHERE a.typcategory = 'A' AND b.oid < 10000 AND b.typtype <> 'c'
       GROUP BY b.oid, b.typarray, b.typname ORDER BY b.oid`,
    );
    const table = new Map(ARRAY_TYPES.map(([type, array]) => [type, array]));
    const missing = rows.filter((r) => table.get(r.oid) !== r.typarray)
      .map((r) => `[${r.oid}, ${r.typarray}] (${r.typname})`);
    assert.deepEqual(missing, [], "add these to ARRAY_TYPES in plugins/postgres/client.ts");
    const found = new Set(rows.map((r) => r.oid));
    const unknown = ARRAY_TYPES.filter(([type]) => !found.has(type));
    assert.deepEqual(unknown, [], "the server has no such built-in array types");
  } finally {
    await sql.end();
  }
});

/** Array texts as the server sends them (without the opening brace, as the client passes). */
const TEXTS = [
  "}",
  "1,2,3}",
  "-1.5,NaN,Infinity,NULL}",
  '"a b","c\\"d","e\\\\f",NULL,"",x}',
  "{1,2},{3,NULL}}",
  '{"a,b"},{"}"}}',
  "t,f,NULL}",
  '"\\\\x00ff","\\\\x"}',
  '"{\\"a\\": 1}","[1, 2]",null,"\\"s\\""}',
  '"2024-01-02 03:04:05.678+00","1970-01-01 00:00:00+00"}',
  "(1,2),(0,0);(3,4),(1,1)}",
];

/** Array parameters as Flowstate and its tests send them. */
const VALUES: unknown[][] = [
  [],
  [1, 2, 3],
  [-1.5, Number.NaN, null],
  ["a b", 'c"d', "e\\f", "", null, "NULL"],
  [[1, 2], [3, null]],
  [true, false, null],
  [new Uint8Array([0, 255]), new Uint8Array(0)],
  [{ a: 1 }, [1, 2], "s", null],
  [new Date(1_704_164_645_678), new Date(0)],
  [10n, -(2n ** 63n)],
];

pgTest(
  "a client of client.ts parses and serializes every array type as a fetching one",
  async (url) => {
    const ours = openClient(url, { max: 1 });
    try {
      await withFetchingClient(url, (theirs) => {
        const shared = (sql: postgres.Sql) =>
          (sql.options as unknown as { shared: { typeArrayMap: Record<number, number> } }).shared
            .typeArrayMap;
        for (const [type, array] of ARRAY_TYPES) {
          const what = `type ${type}, array ${array}`;
          assert.equal(shared(ours)[type], shared(theirs)[type], what);
          const [parse, theirParse] = [ours.options.parsers[array], theirs.options.parsers[array]];
          assert.equal(typeof parse, "function", what);
          assert.equal(
            (parse as { array?: boolean }).array,
            (theirParse as { array?: boolean }).array,
            what,
          );
          for (const text of TEXTS) {
            assert.deepEqual(outcome(() => parse(text)), outcome(() => theirParse(text)), what);
          }
          const [serialize, theirSerialize] = [
            ours.options.serializers[array],
            theirs.options.serializers[array],
          ];
          for (const value of VALUES) {
            assert.deepEqual(
              outcome(() => serialize(value)),
              outcome(() => theirSerialize(value)),
              `${what}: ${Deno.inspect(value)}`,
            );
          }
        }
      });
    } finally {
      await ours.end();
    }
  },
);

/** What `fn` returns, or the message it throws. */
function outcome(fn: () => unknown): unknown {
  try {
    return { value: fn() };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

pgTest(
  "a client of client.ts gets the same arrays back from the server as a fetching one",
  async (url) => {
    // Array parameters whose types the server infers (`$n::type[]`), and array columns.
    const statements: [string, unknown[]][] = [
      [`SELECT $1::text[] AS a, cardinality($1::text[]) AS n`, [["a", 'b"c', null, "", "x,y"]]],
      [`SELECT $1::int8[] AS a, $2::float8[] AS b`, [["1", "-9007199254740993"], [1.5, null]]],
      [`SELECT $1::int4[] AS a, array_agg(x) AS b FROM generate_series(1, 3) x`, [[1, null, 3]]],
      [`SELECT $1::bool[] AS a`, [[true, false]]],
      [`SELECT ARRAY[true, NULL] AS a, ARRAY['\\x01ff'::bytea] AS b`, []],
      [`SELECT $1::jsonb[] AS a, ARRAY['{"k": [1]}'::jsonb] AS b`, [[{ a: 1 }, [2], "s"]]],
      [`SELECT $1::timestamptz[] AS a, ARRAY['2024-01-02'::date, NULL] AS b`, [[new Date(0)]]],
      [`SELECT ARRAY[[1, 2], [3, 4]] AS a, '{}'::text[] AS b, ARRAY[NULL]::int[] AS c`, []],
      [`SELECT ARRAY[box '((1,2),(0,0))', box '((3,4),(1,1))'] AS a`, []],
      [`SELECT x FROM unnest($1::text[], $2::float8[]) AS x(t, f)`, [["a", "b"], [1, 2]]],
    ];
    const ours = openClient(url, { max: 1 });
    try {
      await withFetchingClient(url, async (theirs) => {
        // The same rows, or the same error (the client types a parameter by its first element
        // when it can: `[true]` is sent as a bool, which is no bool[]).
        const run = (sql: postgres.Sql, text: string, params: unknown[]) =>
          sql.unsafe(text, params as never[], { prepare: true }).then(
            (rows) => ({ rows: [...rows] }),
            (err) => ({ error: String(err) }),
          );
        for (const [text, params] of statements) {
          const [mine, expected] = await Promise.all([
            run(ours, text, params),
            run(theirs, text, params),
          ]);
          assert.deepEqual(mine, expected, text);
        }
      });
    } finally {
      await ours.end();
    }
  },
);

pgTest("a client of openClient() reserves a connection as its first request", async (url) => {
  for (const max of [1, 2]) {
    const sql = openClient(url, { max });
    try {
      // The test's own bound: without a connection open, the reserve() used to wait for good.
      const reserved = await settlesWithin(sql.reserve(), 30_000, `reserve() (max ${max})`);
      try {
        const [row] = await reserved.unsafe<{ a: string[] }[]>(`SELECT $1::text[] AS a`, [["x"]]);
        assert.deepEqual(row.a, ["x"]);
      } finally {
        reserved.release();
      }
    } finally {
      await sql.end();
    }
  }
});
