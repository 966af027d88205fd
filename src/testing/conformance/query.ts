/**
 * Conformance cases: query() where clauses, paths, orderBy, limit and offset.
 *
 * @module
 */
import type { JsonValue, Key, Query, Store } from "../../store/types.ts";
import { queryKeys, same, scramble, seed } from "./_assert.ts";
import type { CaseRun, DefineCase } from "./_case.ts";

const QUERY_DATA: [Key, JsonValue][] = [
  [["q", "a"], {
    n: 1,
    s: "apple",
    tags: ["red", "fruit"],
    nested: { x: 10, arr: [1, 2, 3] },
    flag: true,
    nul: null,
  }],
  [["q", "b"], { n: 2, s: "banana", tags: ["yellow", "fruit"], nested: { arr: [4], x: 20 } }],
  [["q", "c"], { n: "3", s: "cherry", tags: [], nested: { x: 10 }, flag: false }],
  [["q", "d"], { n: 2.5, tags: ["red"], nested: {}, nul: 0 }],
  [["q", "e"], "just a string"],
  [["q", "f"], ["x", { k: 1 }]],
  [["r", "z"], { n: 1, s: "apple" }],
];

async function queryStore(c: CaseRun): Promise<Store> {
  const store = await c.open();
  await seed(store, scramble(QUERY_DATA));
  return store;
}

/** Run a where-clause query under ["q"] and return the last key elements. */
async function where(store: Store, clauses: Query["where"]): Promise<string[]> {
  return (await queryKeys(store, { prefix: ["q"], where: clauses })).map((k) => k[k.length - 1]);
}

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineQueryCases(define: DefineCase): void {
  define("query() without options returns every entry in key order", async (c) => {
    const store = await queryStore(c);
    const all = await store.query();
    same(all.map((e) => e.key), QUERY_DATA.map(([k]) => k), "query() keys");
    same(all.map((e) => e.value), QUERY_DATA.map(([, v]) => v), "query() values");
    same(
      all[0],
      await store.get(QUERY_DATA[0][0]),
      "query() returns whole entries, like get()",
    );
  });

  define("query() eq and ne on nested paths and array indices", async (c) => {
    const store = await queryStore(c);
    same(await where(store, [{ path: "n", op: "eq", value: 2 }]), ["b"], "n eq 2");
    same(
      await where(store, [{ path: "nested.x", op: "eq", value: 10 }]),
      ["a", "c"],
      "nested.x eq 10",
    );
    same(
      await where(store, [{ path: "tags.0", op: "eq", value: "red" }]),
      ["a", "d"],
      "tags.0 eq red",
    );
    same(
      await where(store, [{ path: "tags.1", op: "eq", value: "fruit" }]),
      ["a", "b"],
      "tags.1 eq fruit",
    );
    same(
      await where(store, [{ path: "1.k", op: "eq", value: 1 }]),
      ["f"],
      "1.k eq 1 (array value)",
    );
    same(
      await where(store, [{ path: "nested.arr", op: "eq", value: [1, 2, 3] }]),
      ["a"],
      "nested.arr eq [1,2,3]",
    );
    same(
      await where(store, [{ path: "nested", op: "eq", value: { x: 20, arr: [4] } }]),
      ["b"],
      "deep equality ignores object key order",
    );
    same(await where(store, [{ path: "nested", op: "eq", value: {} }]), ["d"], "nested eq {}");
    same(
      await where(store, [{ path: "n", op: "ne", value: 2 }]),
      ["a", "c", "d", "e", "f"],
      "n ne 2 (a missing field matches ne)",
    );
    same(
      await where(store, [{ path: "tags", op: "ne", value: [] }]),
      ["a", "b", "d", "e", "f"],
      "tags ne []",
    );
  });

  define("query() missing fields and null follow the documented semantics", async (c) => {
    const store = await queryStore(c);
    same(
      await where(store, [{ path: "nul", op: "exists" }]),
      ["a", "d"],
      "nul exists (null is present)",
    );
    same(
      await where(store, [{ path: "nul", op: "exists", value: true }]),
      ["a", "d"],
      "exists true",
    );
    same(
      await where(store, [{ path: "nul", op: "exists", value: false }]),
      ["b", "c", "e", "f"],
      "nul exists false",
    );
    same(
      await where(store, [{ path: "nul", op: "eq", value: null }]),
      ["a"],
      "nul eq null (missing is not null)",
    );
    same(
      await where(store, [{ path: "nul", op: "ne", value: null }]),
      ["b", "c", "d", "e", "f"],
      "nul ne null (missing fields match ne)",
    );
    same(
      await where(store, [{ path: "nul", op: "lte", value: 0 }]),
      ["d"],
      "nul lte 0 (null is not a number)",
    );
    same(await where(store, [{ path: "missing.deeper", op: "exists" }]), [], "a missing parent");
    same(
      await where(store, [{ path: "s.0", op: "exists" }]),
      [],
      "a path into a string does not exist",
    );
    same(await where(store, [{ path: "tags.5", op: "exists" }]), [], "an index past the end");
    same(await where(store, [{ path: "tags.01", op: "exists" }]), [], 'a non-canonical index "01"');
    same(
      await where(store, [{ path: "missing", op: "in", value: [null] }]),
      [],
      "in never matches a missing field",
    );
    same(
      await where(store, [{ path: "missing", op: "contains", value: "x" }]),
      [],
      "contains on missing",
    );
  });

  define("query() lt lte gt gte compare numbers and strings, never across types", async (c) => {
    const store = await queryStore(c);
    same(await where(store, [{ path: "n", op: "lt", value: 2 }]), ["a"], "n lt 2");
    same(await where(store, [{ path: "n", op: "lte", value: 2 }]), ["a", "b"], "n lte 2");
    same(
      await where(store, [{ path: "n", op: "gt", value: 2 }]),
      ["d"],
      'n gt 2 (the string "3" is not a number)',
    );
    same(await where(store, [{ path: "n", op: "gte", value: 2 }]), ["b", "d"], "n gte 2");
    same(
      await where(store, [{ path: "n", op: "lt", value: "9" }]),
      ["c"],
      'n lt "9" (only strings compare)',
    );
    same(await where(store, [{ path: "n", op: "eq", value: 3 }]), [], 'n eq 3 does not match "3"');
    same(await where(store, [{ path: "s", op: "gt", value: "b" }]), ["b", "c"], 's gt "b"');
    same(
      await where(store, [{ path: "s", op: "lte", value: "banana" }]),
      ["a", "b"],
      's lte "banana"',
    );
    same(
      await where(store, [{ path: "flag", op: "lt", value: true }]),
      [],
      "booleans never compare",
    );
    same(await where(store, [{ path: "flag", op: "eq", value: 1 }]), [], "true is not 1");
    same(await where(store, [{ path: "tags", op: "gt", value: "a" }]), [], "arrays never compare");
    same(
      await where(store, [{ path: "n", op: "gt", value: 0 }, { path: "n", op: "lt", value: 2.5 }]),
      ["a", "b"],
      "two clauses must both match",
    );
  });

  define("query() in and contains", async (c) => {
    const store = await queryStore(c);
    same(
      await where(store, [{ path: "n", op: "in", value: [1, "3", 99] }]),
      ["a", "c"],
      'n in [1, "3", 99]',
    );
    same(await where(store, [{ path: "n", op: "in", value: [] }]), [], "in []");
    same(
      await where(store, [{ path: "nested.arr", op: "in", value: [[4], [1, 2]] }]),
      ["b"],
      "in with array items (deep equality)",
    );
    same(
      await where(store, [{ path: "tags", op: "contains", value: "red" }]),
      ["a", "d"],
      'tags contains "red"',
    );
    same(
      await where(store, [{ path: "s", op: "contains", value: "an" }]),
      ["b"],
      's contains "an" (substring)',
    );
    same(
      await where(store, [{ path: "s", op: "contains", value: "" }]),
      ["a", "b", "c"],
      's contains ""',
    );
    same(
      await where(store, [{ path: "", op: "contains", value: { k: 1 } }]),
      ["f"],
      "array value contains an object",
    );
    same(
      await where(store, [{ path: "", op: "contains", value: "string" }]),
      ["e"],
      "string value contains",
    );
    same(await where(store, [{ path: "n", op: "contains", value: 1 }]), [], "contains on a number");
    same(
      await where(store, [{ path: "tags", op: "contains", value: "RED" }]),
      [],
      "contains is case-sensitive",
    );
  });

  define("query() paths: dot strings, segment arrays and the value itself", async (c) => {
    const store = await c.open();
    await seed(store, [
      [["p", "1"], { "a.b": 1, a: { b: 2 } }],
      [["p", "2"], { a: { b: 1 } }],
      [["p", "3"], 5],
      [["p", "4"], 7],
    ]);
    same(
      await queryKeys(store, { where: [{ path: ["a.b"], op: "eq", value: 1 }] }),
      [["p", "1"]],
      'path ["a.b"]',
    );
    same(
      await queryKeys(store, { where: [{ path: "a.b", op: "eq", value: 1 }] }),
      [["p", "2"]],
      'path "a.b"',
    );
    same(
      await queryKeys(store, { where: [{ path: ["a", "b"], op: "eq", value: 2 }] }),
      [["p", "1"]],
      'path ["a","b"]',
    );
    same(
      await queryKeys(store, { where: [{ path: "", op: "gt", value: 5 }] }),
      [["p", "4"]],
      'path "" (the value)',
    );
    same(
      await queryKeys(store, { where: [{ path: [], op: "gte", value: 5 }] }),
      [["p", "3"], ["p", "4"]],
      "path []",
    );
  });

  define("query() orderBy asc and desc break ties by key", async (c) => {
    const store = await c.open();
    await seed(
      store,
      scramble([
        [["o", "a"], { n: 3 }],
        [["o", "b"], { n: -10 }],
        [["o", "c"], { n: 100 }],
        [["o", "d"], { n: 3 }],
        [["o", "e"], { n: 2.5 }],
        [["o", "f"], { n: 10 }],
      ]),
    );
    const last = (keys: Key[]) => keys.map((k) => k[1]);
    same(
      last(await queryKeys(store, { orderBy: { path: "n" } })),
      ["b", "e", "a", "d", "f", "c"],
      "asc (numeric, not text)",
    );
    same(
      last(await queryKeys(store, { orderBy: { path: "n", direction: "desc" } })),
      ["c", "f", "a", "d", "e", "b"],
      "desc; the tie a/d stays in key order",
    );
    same(
      last(await queryKeys(store, { orderBy: [{ path: "n", direction: "asc" }] })),
      ["b", "e", "a", "d", "f", "c"],
      "orderBy as an array",
    );
  });

  define(
    "query() orderBy ranks types: missing < null < false < true < number < string < array < object",
    async (c) => {
      const store = await c.open();
      const values: [string, unknown][] = [
        ["k01", { v: { z: 1 } }],
        ["k02", { v: [2] }],
        ["k03", { v: "a" }],
        ["k04", { v: 2 }],
        ["k05", { v: true }],
        ["k06", { v: false }],
        ["k07", { v: null }],
        ["k08", {}],
        ["k09", { v: -1 }],
        ["k10", { v: "A" }],
        ["k11", { v: [] }],
        ["k12", { v: {} }],
      ];
      await seed(store, values.map(([k, v]) => [["t", k], v]));
      const asc = [
        "k08",
        "k07",
        "k06",
        "k05",
        "k09",
        "k04",
        "k10",
        "k03",
        "k02",
        "k11",
        "k01",
        "k12",
      ];
      same(
        (await queryKeys(store, { orderBy: { path: "v" } })).map((k) => k[1]),
        asc,
        'asc: missing, null, false, true, -1, 2, "A", "a", arrays (tied: key order), objects (tied: key order)',
      );
      same(
        (await queryKeys(store, { orderBy: { path: "v", direction: "desc" } })).map((k) => k[1]),
        ["k01", "k12", "k02", "k11", "k03", "k10", "k04", "k09", "k05", "k06", "k07", "k08"],
        "desc: the type ranks reversed; ties (arrays, objects) still in ascending key order",
      );
    },
  );

  define("query() orderBy compares strings by code point, not by locale", async (c) => {
    const store = await c.open();
    const sorted = ["B", "Z", "a", "b", "ä", "é", "\ufffd", "😀"];
    await seed(store, scramble(sorted).map((s, i) => [["s", String(i)], { s }]));
    same(
      (await store.query({ orderBy: { path: "s" } })).map((e) => (e.value as { s: string }).s),
      sorted,
      "code-point order: uppercase before lowercase, U+FFFD before U+1F600",
    );
  });

  define("query() orderBy with several keys", async (c) => {
    const store = await c.open();
    await seed(store, [
      [["m", "1"], { g: "b", n: 1 }],
      [["m", "2"], { g: "a", n: 1 }],
      [["m", "3"], { g: "b", n: 2 }],
      [["m", "4"], { g: "a", n: 3 }],
      [["m", "5"], { g: "a", n: 3 }],
      [["m", "6"], { n: 0 }],
    ]);
    same(
      (await queryKeys(store, { orderBy: [{ path: "g" }, { path: "n", direction: "desc" }] })).map((
        k,
      ) => k[1]),
      ["6", "4", "5", "2", "3", "1"],
      "g asc, then n desc, then key",
    );
    same(
      (await queryKeys(store, { orderBy: [{ path: "n" }, { path: "g", direction: "desc" }] })).map((
        k,
      ) => k[1]),
      ["6", "1", "2", "3", "4", "5"],
      "n asc, then g desc, then key",
    );
  });

  define("query() limit and offset", async (c) => {
    const store = await c.open();
    await seed(
      store,
      scramble(
        Array.from({ length: 6 }, (_, i) => [["l", `${i}`], { n: 5 - i }] as [Key, JsonValue]),
      ),
    );
    const byN = { orderBy: { path: "n" } } as const;
    same((await queryKeys(store, { ...byN, limit: 2 })).map((k) => k[1]), ["5", "4"], "limit 2");
    same(
      (await queryKeys(store, { ...byN, offset: 2, limit: 2 })).map((k) => k[1]),
      ["3", "2"],
      "offset 2, limit 2",
    );
    same((await queryKeys(store, { ...byN, offset: 4 })).map((k) => k[1]), ["1", "0"], "offset 4");
    same(await queryKeys(store, { ...byN, offset: 10 }), [], "offset past the end");
    same(await queryKeys(store, { ...byN, limit: 0 }), [], "limit 0");
    same(
      (await queryKeys(store, { where: [{ path: "n", op: "gte", value: 2 }], limit: 2, offset: 1 }))
        .map((k) => k[1]),
      ["1", "2"],
      "offset and limit apply after where (key order)",
    );
  });

  define(
    "query() and search(): a limit past what SQL takes means all, such an offset none",
    async (c) => {
      const store = await c.open({ search: { prefix: ["h"], fields: ["s"] } });
      await seed(store, [[["h", "1"], { s: "one" }], [["h", "2"], { s: "one two" }]]);
      const all = [["h", "1"], ["h", "2"]];
      const clause = [{ path: "s", op: "contains", value: "one" }] as const;
      // 2^63 is one past SQL's largest LIMIT/OFFSET; 1e19 and Number.MAX_VALUE are past it too.
      for (const huge of [2 ** 63, 1e19, Number.MAX_VALUE]) {
        same(await queryKeys(store, { prefix: ["h"], limit: huge }), all, `limit ${huge}`);
        same(
          await queryKeys(store, {
            prefix: ["h"],
            where: clause,
            orderBy: { path: "s" },
            limit: huge,
          }),
          all,
          `where, orderBy and limit ${huge}`,
        );
        same(await queryKeys(store, { prefix: ["h"], offset: huge }), [], `offset ${huge}`);
        same(
          await queryKeys(store, { prefix: ["h"], where: clause, limit: 1, offset: huge }),
          [],
          `where, limit 1 and offset ${huge}`,
        );
        same(
          (await store.search("one", { limit: huge })).map((h) => h.key).sort(),
          all,
          `search limit ${huge}`,
        );
        await store.explain({ prefix: ["h"], limit: huge, offset: huge });
      }
    },
  );

  define("query({ prefix }) scopes to keys strictly under the prefix", async (c) => {
    const store = await c.open();
    await seed(store, [
      [["a"], { n: 1 }],
      [["a", "1"], { n: 1 }],
      [["a", "2", "deep"], { n: 1 }],
      [["ab", "1"], { n: 1 }],
      [["b", "1"], { n: 1 }],
    ]);
    const clause = [{ path: "n", op: "eq", value: 1 }] as const;
    same(
      await queryKeys(store, { prefix: ["a"], where: clause }),
      [["a", "1"], ["a", "2", "deep"]],
      'prefix ["a"]',
    );
    same((await queryKeys(store, { prefix: [], where: clause })).length, 5, "prefix []");
    same(await queryKeys(store, { prefix: ["zz"] }), [], "a prefix with no keys");
  });
}
