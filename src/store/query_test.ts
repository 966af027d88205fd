import assert from "node:assert/strict";
import {
  applyQuery,
  compareForOrder,
  jsonEqual,
  matchClause,
  normalizeQuery,
  parsePath,
  readPath,
  typeRank,
} from "./query.ts";
import type { JsonValue, Key, Query, WhereOp } from "./types.ts";

function clause(path: string, op: WhereOp, value?: JsonValue) {
  return { path: parsePath(path, "test"), op, value };
}

Deno.test('parsePath() splits dots; an array is taken as segments; "" is the value', () => {
  assert.deepEqual(parsePath("a.b.0", "x"), ["a", "b", "0"]);
  assert.deepEqual(parsePath("", "x"), []);
  assert.deepEqual(parsePath(["a.b", ""], "x"), ["a.b", ""]);
  const segments = ["a"];
  assert.notEqual(parsePath(segments, "x"), segments, "a copy");
  assert.throws(() => parsePath(["a", 1] as unknown as string[], "Cannot q"), {
    name: "TypeError",
    message: 'Cannot q: path segments must be strings (got ["a",1])',
  });
  assert.throws(() => parsePath(5 as unknown as string, "Cannot q"), TypeError);
});

Deno.test("normalizeQuery() fills defaults", () => {
  assert.deepEqual(normalizeQuery(), {
    prefix: [],
    where: [],
    orderBy: [],
    limit: Infinity,
    offset: 0,
  });
  assert.deepEqual(
    normalizeQuery({
      prefix: ["p"],
      orderBy: { path: "a.b" },
      where: [{ path: "x", op: "exists" }],
    }),
    {
      prefix: ["p"],
      where: [{ path: ["x"], op: "exists", value: undefined }],
      orderBy: [{ path: ["a", "b"], direction: "asc" }],
      limit: Infinity,
      offset: 0,
    },
  );
});

Deno.test("normalizeQuery() explains each malformed part", () => {
  const bad: [Query, ErrorConstructor, RegExp][] = [
    [
      { where: [{ path: "a", op: "like" as WhereOp, value: 1 }] },
      TypeError,
      /^Cannot query: where\[0\]\.op is "like"; use one of eq, ne, lt, lte, gt, gte, in, contains, exists$/,
    ],
    [
      { where: [{ path: "a", op: "in", value: "x" }] },
      TypeError,
      /where\[0\] uses "in", so value must be an array/,
    ],
    [
      { where: [{ path: "a", op: "eq" }] },
      TypeError,
      /^Cannot query: where\[0\] \(eq\) needs a value$/,
    ],
    [
      { where: [{ path: "a", op: "exists", value: 1 }] },
      TypeError,
      /uses "exists", so value must be true or false/,
    ],
    [
      { orderBy: { path: "a", direction: "up" as "asc" } },
      TypeError,
      /orderBy\[0\]\.direction must be "asc" or "desc"/,
    ],
    [{ limit: -1 }, RangeError, /^Cannot query: limit must be a non-negative integer \(got -1\)$/],
    [{ limit: 1.5 }, RangeError, /limit must be a non-negative integer/],
    [
      { offset: -1 },
      RangeError,
      /^Cannot query: offset must be a non-negative integer \(got -1\)$/,
    ],
    [null as unknown as Query, TypeError, /^Cannot query: the query must be an object$/],
  ];
  for (const [query, type, message] of bad) {
    assert.throws(() => normalizeQuery(query), (err: Error) => {
      assert.ok(err instanceof type, `${JSON.stringify(query)}: ${err}`);
      assert.match(err.message, message);
      return true;
    });
  }
});

Deno.test("readPath() follows own properties and canonical array indices only", () => {
  const value = { a: { b: [10, { c: "x" }] }, "": 1 };
  assert.equal(readPath(value, ["a", "b", "1", "c"]), "x");
  assert.equal(readPath(value, ["a", "b", "0"]), 10);
  assert.equal(readPath(value, []), value);
  assert.equal(readPath(value, [""]), 1);
  assert.equal(readPath(value, ["a", "b", "01"]), undefined);
  assert.equal(readPath(value, ["a", "b", "-1"]), undefined);
  assert.equal(readPath(value, ["a", "b", "length"]), undefined);
  assert.equal(readPath(value, ["a", "b", "5"]), undefined);
  assert.equal(readPath(value, ["constructor"]), undefined, "inherited properties are missing");
  assert.equal(readPath(value, ["toString"]), undefined);
  assert.equal(readPath("text", ["length"]), undefined);
  assert.equal(readPath(null, ["a"]), undefined);
  assert.equal(readPath({ n: null }, ["n"]), null);
});

Deno.test("jsonEqual() is deep JSON equality that ignores object key order", () => {
  assert.ok(jsonEqual({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 }));
  assert.ok(!jsonEqual({ a: 1 }, { a: 1, b: 2 }));
  assert.ok(!jsonEqual([1, 2], [2, 1]));
  assert.ok(!jsonEqual([], {}));
  assert.ok(!jsonEqual({ 0: 1 }, [1]));
  assert.ok(!jsonEqual(1, "1"));
  assert.ok(!jsonEqual(null, {}));
  assert.ok(jsonEqual(null, null));
});

Deno.test("matchClause() eq/ne: a missing field equals nothing, so ne matches it", () => {
  const v = { a: 1, n: null, o: { x: [1, 2] } };
  assert.ok(matchClause(v, clause("a", "eq", 1)));
  assert.ok(!matchClause(v, clause("a", "eq", "1")));
  assert.ok(matchClause(v, clause("n", "eq", null)));
  assert.ok(!matchClause(v, clause("missing", "eq", null)));
  assert.ok(matchClause(v, clause("o", "eq", { x: [1, 2] })));
  assert.ok(matchClause(v, clause("missing", "ne", null)));
  assert.ok(matchClause(v, clause("missing", "ne", 1)));
  assert.ok(!matchClause(v, clause("a", "ne", 1)));
  assert.ok(matchClause(v, clause("o.x.1", "eq", 2)));
});

Deno.test("matchClause() ordering operators compare only number-number or string-string", () => {
  const v = { n: 5, s: "b", astral: "😀", t: true, z: null };
  assert.ok(matchClause(v, clause("n", "lt", 6)));
  assert.ok(matchClause(v, clause("n", "lte", 5)));
  assert.ok(!matchClause(v, clause("n", "gt", 5)));
  assert.ok(matchClause(v, clause("n", "gte", 5)));
  assert.ok(!matchClause(v, clause("n", "lt", "6")), "number vs string is false");
  assert.ok(!matchClause(v, clause("n", "gte", "0")));
  assert.ok(matchClause(v, clause("s", "gt", "a")));
  assert.ok(matchClause(v, clause("astral", "gt", "\uffff")), "code-point order");
  assert.ok(!matchClause(v, clause("t", "gte", false)), "booleans never compare");
  assert.ok(!matchClause(v, clause("z", "lte", null)), "null never compares");
  assert.ok(!matchClause(v, clause("missing", "lt", 100)));
});

Deno.test("matchClause() in, contains and exists", () => {
  const v = { tags: ["a", { k: 1 }], s: "hello", n: null, o: {} };
  assert.ok(matchClause(v, clause("s", "in", ["x", "hello"])));
  assert.ok(!matchClause(v, clause("missing", "in", [null])));
  assert.ok(matchClause(v, clause("n", "in", [null])));
  assert.ok(matchClause(v, clause("tags", "contains", { k: 1 })));
  assert.ok(!matchClause(v, clause("tags", "contains", "b")));
  assert.ok(matchClause(v, clause("s", "contains", "ell")));
  assert.ok(!matchClause(v, clause("s", "contains", 1)));
  assert.ok(!matchClause(v, clause("o", "contains", "k")), "objects do not contain");
  assert.ok(matchClause(v, clause("n", "exists")), "null is present");
  assert.ok(matchClause(v, clause("n", "exists", true)));
  assert.ok(matchClause(v, clause("missing", "exists", false)));
  assert.ok(!matchClause(v, clause("tags.2", "exists")));
});

Deno.test("typeRank() orders missing < null < false < true < number < string < array < object", () => {
  const ordered = [undefined, null, false, true, -1, "", [], {}];
  assert.deepEqual(ordered.map(typeRank), [0, 1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("compareForOrder() compares within numbers and strings; arrays and objects tie", () => {
  assert.ok(compareForOrder(2, 10) < 0);
  assert.ok(compareForOrder("10", "2") < 0);
  assert.ok(compareForOrder("😀", "\ufffd") > 0);
  assert.ok(compareForOrder(1, "0") < 0, "numbers before strings");
  assert.ok(compareForOrder(undefined, null) < 0);
  assert.equal(compareForOrder([1], [0, 5]), 0);
  assert.equal(compareForOrder({ a: 1 }, { b: 0 }), 0);
  assert.equal(compareForOrder(3, 3), 0);
});

Deno.test("applyQuery() filters, sorts with key tie-break, then offsets and limits", () => {
  const entries: { key: Key; value: JsonValue }[] = [
    { key: ["e"], value: { n: 2 } },
    { key: ["a"], value: { n: 2 } },
    { key: ["c"], value: { n: 1 } },
    { key: ["b"], value: { s: "no n" } },
    { key: ["d"], value: { n: 3 } },
  ];
  const keysOf = (query: Query): string[] =>
    applyQuery(entries, normalizeQuery(query)).map((e) => e.key[0]);
  assert.deepEqual(keysOf({}), ["a", "b", "c", "d", "e"], "default: key order");
  assert.deepEqual(keysOf({ orderBy: { path: "n" } }), ["b", "c", "a", "e", "d"]);
  assert.deepEqual(keysOf({ orderBy: { path: "n", direction: "desc" } }), [
    "d",
    "a",
    "e",
    "c",
    "b",
  ]);
  assert.deepEqual(keysOf({ where: [{ path: "n", op: "exists" }], offset: 1, limit: 2 }), [
    "c",
    "d",
  ]);
  assert.deepEqual(keysOf({ orderBy: { path: "n" }, offset: 10 }), []);
  assert.deepEqual(keysOf({ limit: 0 }), []);
});
