import assert from "node:assert/strict";
import { openStore } from "../../src/plugin.ts";
import { wrapDriver } from "../../src/store/store.ts";
import type { JsonValue, Key, Query, WhereClause } from "../../src/store/types.ts";
import {
  randomQueryWorkload,
  SAMPLE_NUMBERS,
  SAMPLE_STRINGS,
  writeEntries,
} from "../../src/testing/conformance/_random.ts";
import { PostgresDriver } from "./mod.ts";
import { compileQuery, PgCompiledQueries } from "./query.ts";
import { normalizeQuery } from "../../src/store/query.ts";
import { normalizeIndexes } from "../../src/store/indexes.ts";
import { dropTestSchema, manualClock, newTable, openPg, pgTest, SCHEMA } from "./_test_utils.ts";

// PostgresDriver.query(): what runs in SQL, what falls back to the core, and
// that both answer as the memory plugin does (needs a server: see
// _test_utils.ts).

// --- Query pushdown ----------------------------------------------------------

const NORMAL = { prefix: [], where: [], orderBy: [], limit: Infinity, offset: 0 };

function normalClauses(where: WhereClause[]) {
  return where.map((w) => ({
    path: typeof w.path === "string" ? (w.path === "" ? [] : w.path.split(".")) : [...w.path],
    op: w.op,
    value: w.value,
  }));
}

Deno.test("PgCompiledQueries compiles every query as compileQuery does, from a shape's template", () => {
  const indexed = {
    schema: "s",
    indexes: normalizeIndexes([
      { prefix: [], path: "a" },
      { prefix: ["x"], path: "b.c" },
      { prefix: ["x"], path: "n" },
    ], "test"),
  };
  for (const ix of [undefined, indexed]) {
    const cache = new PgCompiledQueries(`"s"."t"`, ix);
    const queries = randomQueryWorkload({ seed: 77, queries: 3000 }).operations;
    const more: Query[] = [
      { prefix: ["x"], where: [{ path: "b.c", op: "eq", value: "needle" }] },
      { prefix: ["x"], where: [{ path: "b.c", op: "eq", value: "other" }] },
      // The same shape but for the class of the operand, which decides the check for values
      // jsonb cannot hold (see exactForOddValues): each compiled as compileQuery does.
      { prefix: ["x"], where: [{ path: "b.c", op: "eq", value: "x\ufffd" }] },
      { prefix: ["x"], where: [{ path: "b.c", op: "eq", value: "😀" }] },
      { prefix: ["x"], where: [{ path: "b.c", op: "eq", value: "again" }] },
      {
        prefix: ["x"],
        where: [{ path: "n", op: "gte", value: 3 }],
        orderBy: { path: "n" },
        limit: 2,
      },
      {
        prefix: ["x"],
        where: [{ path: "n", op: "gte", value: -7.5 }],
        orderBy: { path: "n" },
        limit: 2,
      },
      { prefix: ["x", "y"], where: [{ path: "n", op: "in", value: [1, "a", null] }] },
      { prefix: ["x", "y"], where: [{ path: "n", op: "in", value: [2, "b", null] }] },
      { prefix: ["x"], where: [{ path: "n", op: "contains", value: "ab" }] },
      { prefix: ["x"], where: [{ path: "n", op: "contains", value: "cd" }] },
      { where: [{ path: "a", op: "eq", value: "a\u0000" }] },
      { where: [{ path: "a", op: "eq", value: "a\ud800" }] },
    ];
    for (const [i, query] of [...queries, ...more, ...queries].entries()) {
      const q = normalizeQuery(query);
      const now = 1000 + i;
      // The key reader is made for the query's prefix (its functions are the template's).
      const shown = (c: ReturnType<typeof compileQuery>) =>
        c === undefined ? undefined : { ...c, keys: c.keys.columns };
      assert.deepEqual(
        shown(cache.compile(q, now)),
        shown(compileQuery(`"s"."t"`, q, now, ix)),
        JSON.stringify(query),
      );
    }
  }
});

Deno.test("compileQuery checks for values jsonb cannot hold unless the index's eq is exact for them", () => {
  const indexed = {
    schema: "s",
    indexes: normalizeIndexes([
      { prefix: ["x"], path: "a" },
      { prefix: ["x"], path: "b.😀" },
    ], "test"),
  };
  const checks = (query: Query) => {
    const c = compileQuery(`"s"."t"`, normalizeQuery(query), 0, indexed)!;
    assert.ok(c.index !== undefined, JSON.stringify(query));
    assert.equal(c.sql.includes("flowstate_odd"), c.oddCheck !== undefined);
    return c.oddCheck !== undefined;
  };
  const eq = (value: JsonValue, path = "a") => ({
    prefix: ["x"],
    where: [{ path, op: "eq" as const, value }],
  });
  // Exact: an operand without NUL, surrogates or U+FFFD, on a path without them.
  for (const value of ["needle", "", "é\uffff\ue000", 1.5, null, true, false]) {
    assert.equal(checks(eq(value)), false, JSON.stringify(value));
    assert.equal(checks({ ...eq(value), orderBy: { path: "a" }, limit: 2 }), false);
  }
  assert.equal(checks({ ...eq("needle"), where: [...eq("n").where, ...eq(1, "c").where] }), false);
  const range = (op: "lt" | "gte", value: JsonValue) => ({
    prefix: ["x"],
    where: [{ path: "a", op, value: value as number }],
  });
  assert.equal(checks(range("gte", 3)), false);
  assert.equal(checks({ ...range("lt", -1.5), orderBy: { path: "a", direction: "desc" } }), false);
  // Checked: what the index may read as U+FFFD, string ranges and sorts alone.
  for (const value of ["x\ufffd", "😀", "a😀b"]) assert.equal(checks(eq(value)), true, value);
  assert.equal(checks(eq("k", "b.😀")), true);
  assert.equal(checks(eq(1, "b.😀")), true);
  assert.equal(checks(range("gte", "a")), true);
  assert.equal(checks({ ...range("lt", "b"), orderBy: { path: "a" } }), true);
  assert.equal(checks({ prefix: ["x"], orderBy: { path: "a" } }), true);
});

pgTest("PostgresDriver.query() leaves what PostgreSQL cannot hold to the core", async (url) => {
  const driver = await PostgresDriver.open(url, { schema: SCHEMA, table: newTable("fallback") });
  try {
    const q = (where: WhereClause[], prefix: Key = []) =>
      driver.query({ ...NORMAL, prefix, where: normalClauses(where) }, 0);
    // Operands and path segments PostgreSQL text cannot hold.
    assert.equal(await q([{ path: "a", op: "eq", value: "\ud800" }]), undefined);
    assert.equal(await q([{ path: "a", op: "eq", value: "a\u0000" }]), undefined);
    assert.equal(await q([{ path: "a", op: "in", value: [1, { b: "\u0000" }] }]), undefined);
    assert.equal(await q([{ path: "a", op: "contains", value: ["\udc00"] }]), undefined);
    assert.equal(await q([{ path: "a", op: "lt", value: "\ud800" }]), undefined);
    assert.equal(await q([{ path: ["a\u0000"], op: "exists" }]), undefined);
    // Everything else runs in SQL, objects and arrays included.
    assert.deepEqual(await q([{ path: "a", op: "eq", value: { b: [1] } }]), []);
    assert.deepEqual(await q([{ path: ['we"ird', "back\\slash"], op: "exists" }]), []);
    assert.deepEqual(await q([{ path: "a.0.1.2.3", op: "contains", value: [1] }]), []);

    // A value that cannot be cast to jsonb sends the queries that read it to the core.
    await driver.commit({
      checks: [],
      mutations: [
        { type: "set", key: ["s", "1"], value: JSON.stringify({ a: "x\u0000" }), expiresAt: null },
        { type: "set", key: ["t", "1"], value: JSON.stringify({ a: "😀" }), expiresAt: null },
        { type: "set", key: ["u", "1"], value: JSON.stringify({ a: "\udfff" }), expiresAt: null },
      ],
      version: "v1",
      now: 0,
    });
    const exists = [{ path: "a", op: "exists" as const }];
    assert.equal(await q(exists, ["s"]), undefined);
    assert.equal(await q(exists, ["u"]), undefined);
    assert.equal(await q(exists), undefined);
    assert.equal((await q(exists, ["t"]))?.length, 1);
    assert.equal((await q([{ path: "a", op: "eq", value: "😀" }], ["t"]))?.length, 1);
    // Without clauses or sort keys nothing is cast: key order straight from the index.
    assert.deepEqual(
      (await driver.query({ ...NORMAL, limit: 2 }, 0))?.map((e) => e.key),
      [["s", "1"], ["t", "1"]],
    );
  } finally {
    await driver.close();
  }
});

pgTest(
  "PostgresDriver.query() falls back cleanly when a value fails to cast midway",
  async (url) => {
    // One connection, so the statements after the failed one run where it ran;
    // no sequential scan, so rows stream out in key order from the index
    // (a sort would read them all, failing before the first row is sent).
    const noSeqScan = new URL(url);
    noSeqScan.searchParams.set("enable_seqscan", "off");
    const driver = await PostgresDriver.open(noSeqScan.href, {
      schema: SCHEMA,
      table: newTable("midway"),
      max: 1,
    });
    const store = wrapDriver(driver, { name: "postgres", plugin: "postgres" });
    try {
      for (const [i, k] of ["a", "b", "c", "d", "e"].entries()) await store.set([k], { n: i });
      // Sorts last: the rows before it are sent before its cast fails.
      await store.set(["zz"], { n: "x\u0000" });
      const exists = { ...NORMAL, where: normalClauses([{ path: "n", op: "exists" }]) };
      assert.equal(await driver.query(exists, 0), undefined);
      assert.deepEqual((await store.get(["a"]))?.value, { n: 0 });
      assert.deepEqual((await Array.fromAsync(store.list())).map((e) => e.key[0]), [
        "a",
        "b",
        "c",
        "d",
        "e",
        "zz",
      ]);
      const gte = await store.query({ prefix: [], where: [{ path: "n", op: "gte", value: 3 }] });
      assert.deepEqual(gte.map((e) => e.key[0]), ["d", "e"]);
      assert.equal(await store.count(), 6);
    } finally {
      await store.close();
    }
  },
);

pgTest("PostgresDriver.query() orders across types and breaks ties by key", async (url) => {
  const store = await openPg(url, newTable("order"));
  try {
    const values: [string, JsonValue][] = [
      ["obj", { v: { x: 1 } }],
      ["arr", { v: [1] }],
      ["str", { v: "a" }],
      ["num", { v: 2 ** 60 }],
      ["num2", { v: -1 }],
      ["true", { v: true }],
      ["false", { v: false }],
      ["null", { v: null }],
      ["missing", {}],
      ["arr2", { v: [0] }],
    ];
    for (const [k, v] of values) await store.set([k], v);
    const asc = await store.query({ orderBy: { path: "v" } });
    assert.deepEqual(asc.map((e) => e.key[0]), [
      "missing",
      "null",
      "false",
      "true",
      "num2",
      "num",
      "str",
      "arr",
      "arr2",
      "obj",
    ]);
    const desc = await store.query({ orderBy: { path: "v", direction: "desc" }, limit: 4 });
    assert.deepEqual(desc.map((e) => e.key[0]), ["obj", "arr", "arr2", "str"]);
  } finally {
    await store.close();
  }
});

pgTest(
  "PostgresDriver.query() runs most of 2,000 random queries in SQL, with the memory plugin's results (differential)",
  async (url) => {
    // The conformance suite compares a smaller workload on every store; this
    // one is the full size, and counts what the driver itself answers.
    const { seed, entries, elapse, operations } = randomQueryWorkload();
    const clock = manualClock();
    const driver = await PostgresDriver.open(url, {
      schema: SCHEMA,
      table: newTable("differential"),
    });
    let pushed = 0;
    let fellBack = 0;
    const native = driver.query.bind(driver);
    driver.query = async (q, now) => {
      const result = await native(q, now);
      if (result === undefined) fellBack++;
      else pushed++;
      return result;
    };
    const pg = wrapDriver(driver, { name: "postgres", plugin: "postgres", clock });
    const mem = await openStore({ plugin: "memory" }, { clock });
    try {
      await writeEntries(pg, entries);
      await writeEntries(mem, entries);
      clock.t += elapse;
      for (const [n, query] of operations.entries()) {
        const expected = (await mem.query(query)).map((e) => [e.key, e.value]);
        const actual = (await pg.query(query)).map((e) => [e.key, e.value]);
        assert.deepEqual(actual, expected, `seed ${seed}, query ${n}: ${JSON.stringify(query)}`);
      }
      // The comparison means something only if most queries really ran in SQL.
      const total = operations.length;
      assert.ok(pushed >= total / 2, `only ${pushed} of ${total} queries were pushed down`);
      assert.ok(fellBack > 0, "no query exercised the fallback");
    } finally {
      await pg.close();
      await mem.close();
    }
  },
);

pgTest(
  "PostgresDriver.query() compares every sample number and string exactly as the core does",
  async (url) => {
    const driver = await PostgresDriver.open(url, { schema: SCHEMA, table: newTable("scalars") });
    let fellBack = 0;
    const native = driver.query.bind(driver);
    driver.query = async (q, now) => {
      const result = await native(q, now);
      if (result === undefined) fellBack++;
      return result;
    };
    const pg = wrapDriver(driver, { name: "postgres", plugin: "postgres" });
    const mem = await openStore({ plugin: "memory" });
    try {
      const scalars: JsonValue[] = [...SAMPLE_NUMBERS, ...SAMPLE_STRINGS, null, true, false];
      for (const [i, v] of scalars.entries()) {
        const key = [String(i).padStart(3, "0")];
        for (const s of [pg, mem]) {
          await s.set([...key, "plain"], { v });
          await s.set([...key, "list"], { v: [v, "other"] });
        }
      }
      const queries: Query[] = [
        { orderBy: { path: "v" } },
        { orderBy: { path: "v", direction: "desc" } },
      ];
      for (const operand of scalars) {
        for (const op of ["eq", "ne", "lt", "lte", "gt", "gte", "contains"] as const) {
          queries.push({ where: [{ path: "v", op, value: operand }] });
        }
        queries.push({ where: [{ path: "v", op: "in", value: [operand, "x"] }] });
      }
      for (const query of queries) {
        const expected = (await mem.query(query)).map((e) => e.key);
        const actual = (await pg.query(query)).map((e) => e.key);
        assert.deepEqual(actual, expected, JSON.stringify(query));
      }
      assert.equal(fellBack, 0, "every one of these queries can run in SQL");
    } finally {
      await pg.close();
      await mem.close();
    }
  },
);

// --- Cleanup -------------------------------------------------------------------

dropTestSchema();
