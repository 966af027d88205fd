import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../../src/plugin.ts";
import { wrapDriver } from "../../src/store/store.ts";
import type { JsonValue, Key, Query, WhereClause } from "../../src/store/types.ts";
import {
  randomQueryWorkload,
  SAMPLE_NUMBERS,
  SAMPLE_STRINGS,
  writeEntries,
} from "../../src/testing/conformance/_random.ts";
import { SqliteDriver } from "./mod.ts";
import { CompiledQueries, compileQuery } from "./query.ts";
import { normalizeIndexes } from "../../src/store/indexes.ts";
import { normalizeQuery } from "../../src/store/query.ts";
import { manualClock, withDir } from "./_test_utils.ts";

// SqliteDriver.query(): what runs in SQL, what falls back to the core, and
// that both answer as the memory plugin does.

// --- Query pushdown ----------------------------------------------------------

Deno.test("SqliteDriver.query() leaves clauses it cannot express exactly to the core", async () => {
  await withDir(async (dir) => {
    const driver = await SqliteDriver.open(join(dir, "s.db"));
    try {
      const base = { prefix: [], orderBy: [], limit: Infinity, offset: 0 };
      const q = (where: WhereClause[]) =>
        driver.query({
          ...base,
          where: where.map((w) => ({
            path: typeof w.path === "string" ? w.path.split(".") : [...w.path],
            op: w.op,
            value: w.value,
          })),
        }, 0);
      assert.equal(await q([{ path: "a", op: "eq", value: { b: 1 } }]), undefined);
      assert.equal(await q([{ path: "a", op: "ne", value: [1] }]), undefined);
      assert.equal(await q([{ path: "a", op: "in", value: [1, [2]] }]), undefined);
      assert.equal(await q([{ path: "a", op: "contains", value: { b: 1 } }]), undefined);
      assert.equal(await q([{ path: ['we"ird'], op: "exists" }]), undefined);
      assert.equal(await q([{ path: ["back\\slash"], op: "exists" }]), undefined);
      assert.equal(await q([{ path: "a.0.1.2", op: "exists" }]), undefined);
      assert.equal(await q([{ path: "a", op: "eq", value: "\ud800" }]), undefined);
      assert.deepEqual(await q([{ path: "a.0.1", op: "eq", value: "x" }]), []);
      assert.deepEqual(await q([{ path: "a", op: "lt", value: { b: 1 } }]), []);

      // Values with a lone surrogate make string ordering fall back, under their prefix only.
      driver.commit({
        checks: [],
        mutations: [
          { type: "set", key: ["s", "1"], value: JSON.stringify({ a: "\ud800" }), expiresAt: null },
          { type: "set", key: ["t", "1"], value: JSON.stringify({ a: "😀" }), expiresAt: null },
        ],
        version: "v1",
        now: 0,
      });
      const ordered = (prefix: Key) =>
        driver.query(
          { ...base, prefix, where: [], orderBy: [{ path: ["a"], direction: "asc" }] },
          0,
        );
      assert.equal(await ordered(["s"]), undefined);
      assert.equal(await ordered([]), undefined);
      assert.equal((await ordered(["t"]))?.length, 1);
      assert.equal(await q([{ path: "a", op: "gt", value: "a" }]), undefined);
      assert.equal((await q([{ path: "a", op: "eq", value: "😀" }]))?.length, 1);
      assert.equal((await q([{ path: "a", op: "gt", value: 1 }]))?.length, 0);
    } finally {
      driver.close();
    }
  });
});

/** Strings with lone surrogates: stored only under ["z"] so other prefixes still push down. */
const LONE_SURROGATES = ["\ud800", "a\udc00b", "\udfff", "\ud83d"];
Deno.test("SqliteDriver.query() runs most of 2,000 random queries in SQL, with the memory plugin's results (differential)", async () => {
  // The conformance suite compares a smaller workload on every store; this one
  // is the full size, and counts what the driver itself answers.
  await withDir(async (dir) => {
    const { seed, entries, elapse, operations } = randomQueryWorkload();
    const clock = manualClock();
    const driver = await SqliteDriver.open(join(dir, "q.db"));
    let pushed = 0;
    let fellBack = 0;
    const native = driver.query.bind(driver);
    driver.query = (q, now) => {
      const result = native(q, now);
      if (result === undefined) fellBack++;
      else pushed++;
      return result;
    };
    const sq = wrapDriver(driver, { name: "sqlite", plugin: "sqlite", clock });
    const mem = await openStore({ plugin: "memory" }, { clock });
    try {
      await writeEntries(sq, entries);
      await writeEntries(mem, entries);
      clock.t += elapse;
      for (const [n, query] of operations.entries()) {
        const expected = (await mem.query(query)).map((e) => [e.key, e.value]);
        const actual = (await sq.query(query)).map((e) => [e.key, e.value]);
        assert.deepEqual(actual, expected, `seed ${seed}, query ${n}: ${JSON.stringify(query)}`);
      }
      // The comparison means something only if most queries really ran in SQL.
      const total = operations.length;
      assert.ok(pushed >= total / 2, `only ${pushed} of ${total} queries were pushed down`);
      assert.ok(fellBack > 0, "no query exercised the fallback");
    } finally {
      await sq.close();
      await mem.close();
    }
  });
});

Deno.test("SqliteDriver.query() orders across types and breaks ties by key", async () => {
  await withDir(async (dir) => {
    const store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") });
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
});

Deno.test("SqliteDriver.query() compares every sample number and string exactly as the core does", async () => {
  await withDir(async (dir) => {
    const sq = await openStore({ plugin: "sqlite", path: join(dir, "s.db") });
    const mem = await openStore({ plugin: "memory" });
    try {
      const scalars: JsonValue[] = [
        ...SAMPLE_NUMBERS,
        ...SAMPLE_STRINGS,
        ...LONE_SURROGATES,
        null,
        true,
        false,
      ];
      for (const [i, v] of scalars.entries()) {
        const key = [String(i).padStart(3, "0")];
        for (const s of [sq, mem]) {
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
        const actual = (await sq.query(query)).map((e) => e.key);
        assert.deepEqual(actual, expected, JSON.stringify(query));
      }
    } finally {
      await sq.close();
      await mem.close();
    }
  });
});

Deno.test("CompiledQueries compiles each shape once and fills in the operands exactly as compileQuery", () => {
  const indexes = normalizeIndexes([
    { prefix: [], path: "a" },
    { prefix: [], path: "b" },
    { prefix: ["p"], path: "c" },
  ], "test");
  const queries = randomQueryWorkload({ seed: 7, queries: 3000 }).operations;
  const cache = new CompiledQueries(indexes);
  let now = 1_000;
  // Twice over: the second pass meets every shape again (with other operands in between).
  for (const pass of [0, 1]) {
    for (const query of queries) {
      const q = normalizeQuery(query);
      now += 7;
      const expected = compileQuery(q, now, indexes);
      const got = cache.compile(q, now);
      assert.deepEqual(got, expected, `pass ${pass}: ${JSON.stringify(query)}`);
    }
  }
});

Deno.test("sqlite: one query object changed in place between calls is answered as it reads at each call (the caches are by shape, not by object)", async () => {
  await withDir(async (dir) => {
    await using store = await openStore({
      plugin: "sqlite",
      path: join(dir, "q.db"),
      indexes: [{ prefix: ["o"], path: "st" }, { prefix: ["o"], path: "n" }],
    });
    await using memory = await openStore({ plugin: "memory" });
    for (let i = 0; i < 30; i++) {
      const value = { st: i === 7 ? "needle" : `s${i % 4}`, n: i % 9, tag: i % 2 === 0 };
      await store.set(["o", String(i).padStart(2, "0")], value);
      await memory.set(["o", String(i).padStart(2, "0")], value);
      await store.set(["p", String(i)], value);
      await memory.set(["p", String(i)], value);
    }
    const query: Query & { where: WhereClause[] } = {
      prefix: ["o"],
      where: [{ path: "st", op: "eq", value: "needle" }],
    };
    const steps: ((q: typeof query) => void)[] = [
      () => {},
      (q) => (q.where[0].value = "s1"),
      (q) => (q.where[0] = { ...q.where[0], op: "gte", value: "s2" }),
      (q) => (q.where[0].path = "n"),
      (q) => (q.where[0].value = 4),
      (q) => (q.orderBy = { path: "n", direction: "desc" }),
      (q) => (q.limit = 3),
      (q) => (q.offset = 2),
      (q) => (q.where[0].op = "lt"),
      (q) => q.where.push({ path: "tag", op: "eq", value: true }),
      (q) => (q.prefix = ["p"]),
      (q) => ((q.prefix as string[])[0] = "o"),
      (q) => (q.where.length = 0),
    ];
    for (const [i, step] of steps.entries()) {
      step(query);
      // Twice each: the second call is served from the caches the first one filled.
      for (let twice = 0; twice < 2; twice++) {
        assert.deepEqual(
          (await store.query(query)).map((e) => e.key),
          (await memory.query(query)).map((e) => e.key),
          `step ${i}: ${JSON.stringify(query)}`,
        );
      }
    }
  });
});
