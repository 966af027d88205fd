/**
 * Conformance cases: every JSON type round-trips through set() and get(); set() and
 * delete() results; values and keys are copies; getMany().
 *
 * @module
 */
import type { Entry, JsonValue, Key } from "../../store/types.ts";
import {
  check,
  collect,
  expectAbsent,
  expectValue,
  listKeys,
  same,
  seed,
  show,
} from "./_assert.ts";
import type { CaseRun, DefineCase } from "./_case.ts";

const NUMBERS: number[] = [
  0,
  1,
  -1,
  42,
  0.1,
  -2.75,
  1e21,
  1.5e-7,
  123456789.123456,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  2 ** 64,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
];

const STRINGS: string[] = [
  "",
  " ",
  "null",
  "true",
  "0",
  '"quoted"',
  "back\\slash",
  "line\nbreak\ttab\rreturn",
  "nul\u0000inside",
  "control \u0001\u001f\u007f",
  "separators \u2028\u2029",
  "</script><!--",
  "café and cafe\u0301",
  "😀 emoji, 𝄞 clef, \u{10FFFF} last",
  "\ufeffbom",
  "x".repeat(1000),
];

const ARRAYS: JsonValue[] = [
  [],
  [[]],
  [null],
  [1, "a", true, false, null, {}, []],
  [[[[["deep"]]]]],
  [{ a: [1, { b: [2] }] }],
];

const OBJECTS: JsonValue[] = [
  {},
  { "": "empty key" },
  { "a.b": 1, "a": { "b": 2 } },
  { "😀": "emoji key", "é": "e-acute" },
  { "0": "zero", "1": "one" },
  { nested: { deeper: { deepest: { list: [1, 2, 3], flag: false, none: null } } } },
  { "with space": 1, 'with"quote': 2, "with\\backslash": 3, "with\u0000nul": 4 },
];

async function roundTrip(c: CaseRun, label: string, values: readonly JsonValue[]): Promise<void> {
  const store = await c.open();
  const keys = values.map((_, i) => [label, String(i).padStart(2, "0")]);
  for (let i = 0; i < values.length; i++) {
    const result = await store.set(keys[i], values[i]);
    check(result.ok, `set(${show(keys[i])}, ${show(values[i])}) must succeed`);
  }
  for (let i = 0; i < values.length; i++) {
    await expectValue(store, keys[i], values[i], `${label} #${i} round trip`);
  }
  for (let i = 0; i < values.length; i++) {
    check(await store.delete(keys[i]), `delete(${show(keys[i])}) must resolve true`);
    await expectAbsent(store, keys[i], `${label} #${i} after delete`);
  }
  same(await store.count(), 0, `count() after deleting every ${label} value`);
}

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineValueCases(define: DefineCase): void {
  // Round trips of every JSON type

  define("get() returns null for a key never written", async (c) => {
    const store = await c.open();
    same(await store.get(["never", "written"]), null, "get() of a missing key");
  });

  define("set() and get() round-trip null and booleans", async (c) => {
    await roundTrip(c, "scalars", [null, true, false]);
  });

  define("set() and get() round-trip numbers exactly", async (c) => {
    await roundTrip(c, "numbers", NUMBERS);
  });

  define("set() and get() round-trip strings exactly", async (c) => {
    await roundTrip(c, "strings", STRINGS);
  });

  define("set() and get() round-trip arrays", async (c) => {
    await roundTrip(c, "arrays", ARRAYS);
  });

  define("set() and get() round-trip objects", async (c) => {
    await roundTrip(c, "objects", OBJECTS);
  });

  define('falsy values (null, false, 0, "") are entries, not absence', async (c) => {
    const store = await c.open();
    const falsy: [Key, JsonValue][] = [
      [["f", "null"], null],
      [["f", "false"], false],
      [["f", "zero"], 0],
      [["f", "empty"], ""],
    ];
    await seed(store, falsy);
    for (const [key, value] of falsy) {
      const entry = await store.get(key);
      check(entry !== null, `get(${show(key)}) of a stored ${show(value)} must not be null`);
      same(entry.value, value, `get(${show(key)}).value`);
    }
    same(
      (await store.getMany(falsy.map(([k]) => k))).map((e) => e?.value),
      falsy.map(([, v]) => v),
      "getMany() of falsy values",
    );
    same(await store.count(["f"]), 4, "count() includes falsy values");
    const cas = await store.set(["f", "null"], "x", { ifVersion: null });
    check(!cas.ok, "set(ifVersion: null) must conflict on a key holding null");
  });

  define("values keep their object key order", async (c) => {
    const store = await c.open();
    const value = { zebra: 1, apple: { b: 2, a: [{ y: 1, x: 2 }] }, mango: null };
    await store.set(["ordered"], value);
    const entry = await store.get(["ordered"]);
    same(
      JSON.stringify(entry?.value),
      JSON.stringify(value),
      "the stored value's JSON text (key order included) must come back unchanged",
    );
    const [listed] = await collect(store.list({ prefix: [] }));
    same(JSON.stringify(listed?.value), JSON.stringify(value), "list() must keep key order too");
  });

  define(
    "values with escaped object keys read back as written, after a poisoning parse",
    async (c) => {
      // V8's JSON.parse (nodejs/node#63785, in Deno 2.9.6) may decode an escaped key as the key of
      // an earlier parsed object of the same shape whose raw source matched a prefix: after
      // `{"st":1,"a\\":1}`, `{"st":1,"a\n":2}` came back as `{ st: 1, "a\\": 2 }`.
      const store = await c.open();
      const values: [Key, JsonValue][] = [
        [["esc", "a"], { st: 1, "a\\": 1 }],
        [["esc", "b"], { st: 1, "a\n": 2 }],
        [["esc", "c"], { st: 1, "\\": 3, inner: [{ st: 1, "\n": 4 }] }],
        [["esc", "d"], { st: 1, "\n": 5, '"': 6, "\u0000": 7, "\ud800": 8 }],
      ];
      await seed(store, values);
      // The native parse of the values' own texts teaches V8 the keys "a\\" and "\\" after `st`.
      const poison = (): void => {
        for (const [, value] of values) JSON.parse(JSON.stringify(value));
      };
      const expected = values.map(([, v]) => JSON.stringify(v));
      poison();
      for (const [key, value] of values) {
        poison();
        same(
          JSON.stringify((await store.get(key))?.value),
          JSON.stringify(value),
          `get(${show(key)})`,
        );
      }
      poison();
      const many = await store.getMany(values.map(([k]) => k));
      same(many.map((e) => JSON.stringify(e?.value)), expected, "getMany() values");
      poison();
      const listed = await collect(store.list({ prefix: ["esc"] }));
      same(listed.map((e) => JSON.stringify(e.value)), expected, "list() values");
      poison();
      const queried = await store.query({ prefix: ["esc"] });
      same(queried.map((e) => JSON.stringify(e.value)), expected, "query() values");
    },
  );

  define("undefined object properties are dropped, as JSON.stringify does", async (c) => {
    const store = await c.open();
    await store.set(["u"], { a: 1, b: undefined, c: { d: undefined, e: 2 } });
    await expectValue(store, ["u"], { a: 1, c: { e: 2 } }, "undefined properties");
  });

  define("every JSON type round-trips through getMany(), list() and query() too", async (c) => {
    const store = await c.open();
    const values: JsonValue[] = [null, true, 0, -2.75, "", "😀\u0000", ...ARRAYS, ...OBJECTS];
    const entries = values.map((v, i): [Key, JsonValue] => [["t", String(i).padStart(2, "0")], v]);
    await seed(store, entries);
    same(
      (await store.getMany(entries.map(([k]) => k))).map((e) => e?.value),
      values,
      "getMany() values",
    );
    same(
      (await collect(store.list({ prefix: ["t"] }))).map((e) => e.value),
      values,
      "list() values",
    );
    same((await store.query({ prefix: ["t"] })).map((e) => e.value), values, "query() values");
  });

  define("set() returns { ok: true, version } and reads report that version", async (c) => {
    const store = await c.open();
    const result = await store.set(["v"], "value");
    check(result.ok, `set() must succeed, got ${show(result)}`);
    check(
      typeof result.version === "string" && result.version !== "",
      "set() must return a version",
    );
    const entry = await store.get(["v"]);
    same(entry, { key: ["v"], value: "value", version: result.version, expiresAt: null }, "get()");
    const [listed] = await collect(store.list());
    same(listed, entry, "list() must return the same entry as get()");
    const [many] = await store.getMany([["v"]]);
    same(many, entry, "getMany() must return the same entry as get()");
  });

  define("set() overwrites the previous value", async (c) => {
    const store = await c.open();
    await store.set(["o"], { n: 1 });
    await store.set(["o"], [2]);
    await expectValue(store, ["o"], [2], "after overwrite");
    same(await store.count(), 1, "an overwrite must not add an entry");
  });

  define("delete() removes the entry and resolves true", async (c) => {
    const store = await c.open();
    await seed(store, [[["d", "1"], 1], [["d", "2"], 2]]);
    same(await store.delete(["d", "1"]), true, "delete() of a present key");
    await expectAbsent(store, ["d", "1"], "deleted key");
    await expectValue(store, ["d", "2"], 2, "sibling of a deleted key");
    same(await listKeys(store), [["d", "2"]], "list() after delete");
  });

  define("delete() of an absent key resolves true", async (c) => {
    const store = await c.open();
    same(await store.delete(["absent"]), true, "delete() without ifVersion of an absent key");
    same(await store.count(), 0, "count() after deleting an absent key");
  });

  // Copies

  define("values are copies: mutating the value passed to set() changes nothing", async (c) => {
    const store = await c.open();
    const value: { list: number[]; inner: { flag: boolean }; extra?: string } = {
      list: [1, 2],
      inner: { flag: true },
    };
    await store.set(["copy"], value);
    value.list.push(3);
    value.inner.flag = false;
    value.extra = "added";
    const op = store.atomic();
    const atomicValue = { n: [1] };
    op.set(["copy", "atomic"], atomicValue);
    atomicValue.n.push(2);
    await op.commit();
    await expectValue(store, ["copy"], { list: [1, 2], inner: { flag: true } }, "after mutating");
    await expectValue(
      store,
      ["copy", "atomic"],
      { n: [1] },
      "after mutating an atomic set() value",
    );
  });

  define("values are copies: mutating a value returned by a read changes nothing", async (c) => {
    const store = await c.open();
    await seed(store, [[["r"], { list: [1], inner: { n: 1 } }]]);
    const expected = { list: [1], inner: { n: 1 } };
    const mutate = (entry: Entry | null | undefined): void => {
      const v = entry?.value as { list: number[]; inner: { n: number } };
      v.list.push(99);
      v.inner.n = 99;
    };
    mutate(await store.get(["r"]));
    await expectValue(store, ["r"], expected, "after mutating get()'s value");
    mutate((await store.getMany([["r"]]))[0]);
    await expectValue(store, ["r"], expected, "after mutating getMany()'s value");
    mutate((await collect(store.list()))[0]);
    await expectValue(store, ["r"], expected, "after mutating list()'s value");
    mutate((await store.query())[0]);
    await expectValue(store, ["r"], expected, "after mutating query()'s value");
    const entry = await store.get(["r"]);
    (entry!.key as string[]).push("mutated");
    same(await listKeys(store), [["r"]], "after mutating a returned key");
  });

  define("keys are copies: mutating a key array after passing it changes nothing", async (c) => {
    const store = await c.open();
    const key = ["k", "1"];
    await store.set(key, "one");
    key[1] = "9";
    key.push("x");
    same(
      await listKeys(store),
      [["k", "1"]],
      "list() after mutating the key array passed to set()",
    );
    same(
      (await store.get(["k", "1"]))?.value,
      "one",
      'get(["k","1"]) after mutating the key array',
    );
    const atomicKey = ["k", "2"];
    const op = store.atomic().set(atomicKey, "two");
    atomicKey[1] = "8";
    await op.commit();
    same(
      await listKeys(store),
      [["k", "1"], ["k", "2"]],
      "list() after mutating the key array passed to atomic().set() before commit()",
    );
  });

  // getMany

  define("getMany() returns entries in the order of the keys, null for missing ones", async (c) => {
    const store = await c.open();
    await seed(store, [[["m", "a"], "A"], [["m", "b"], "B"], [["m", "c"], "C"]]);
    const got = await store.getMany([["m", "c"], ["m", "missing"], ["m", "a"], ["m", "c"], ["m"]]);
    same(
      got.map((e) => e === null ? null : [e.key, e.value]),
      [[["m", "c"], "C"], null, [["m", "a"], "A"], [["m", "c"], "C"], null],
      "getMany() results, in request order, with a duplicate and missing keys",
    );
  });

  define("getMany([]) returns []", async (c) => {
    const store = await c.open();
    await store.set(["x"], 1);
    same(await store.getMany([]), [], "getMany([])");
  });
}
