/**
 * Conformance cases: key order by code point, prefixes that match whole
 * elements, unicode keys and values, 1 MB values and one at the 16 MiB limit.
 *
 * @module
 */
import { AssertionError } from "node:assert/strict";
import type { Key } from "../../store/types.ts";
import {
  check,
  errorText,
  expectValue,
  listKeys,
  queryKeys,
  same,
  scramble,
  seed,
  show,
} from "./_assert.ts";
import { MAX_VALUE_BYTES } from "../../store/values.ts";
import type { DefineCase } from "./_case.ts";

/** Sorted in the one key order every backend shares. */
const ORDERED_KEYS: Key[] = [
  ["a"],
  ["a", ""],
  ["a", "\u0000"],
  ["a", "b"],
  ["a", "b", ""],
  ["a", "b", "c"],
  ["a", "\uffff"],
  ["a", "😀"],
  ["a\u0000"],
  ["a\u0000", "x"],
  ["a\u0001"],
  ["aa"],
  ["b"],
];

const CODE_POINT_ORDER = [
  "\u007f",
  "\u00e9",
  "\u0800",
  "\ud7ff",
  "\ue000",
  "\ufb01",
  "\ufffd",
  "\uffff",
  "\u{10000}",
  "😀", // U+1F600: UTF-16 order would put it before U+E000
  "\u{10FFFF}",
];

const NUL_AND_EMPTY_KEYS: Key[] = [
  [""],
  ["", ""],
  ["", "\u0000"],
  ["", "a"],
  ["\u0001"],
  ["\u0001", ""],
  ["\u0001", "\u0000"],
  ["\u0001\u0000"],
  ["a"],
  ["a", "\u0000b"],
  ["a", "b"],
  ["a\u0000", "b"],
  ["a\u0000b"],
];

function megabyteString(): string {
  const unit = 'flowstate é ü 😀 \u0000 "quote" \\ \n';
  const out = unit.repeat(Math.ceil(1_048_576 / unit.length));
  return out;
}

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineKeyCases(define: DefineCase): void {
  define("list() orders keys element-wise by code point, shorter keys first", async (c) => {
    const store = await c.open();
    await seed(store, scramble(ORDERED_KEYS).map((k) => [k, k.join("/")]));
    same(
      await listKeys(store),
      ORDERED_KEYS,
      'key order: ["a"] < ["a",""] < ["a","b"] < ["a\\u0000"] < ["a\\u0001"] < ["b"], element by element',
    );
    same(
      await listKeys(store, { reverse: true }),
      [...ORDERED_KEYS].reverse(),
      "reverse key order must be the exact reverse",
    );
  });

  define(
    "list() orders astral characters after U+E000..U+FFFF (code points, not UTF-16)",
    async (c) => {
      const store = await c.open();
      const keys = CODE_POINT_ORDER.map((s) => ["cp", s]);
      const nested = CODE_POINT_ORDER.map((s) => ["cp2", `x${s}y`]);
      await seed(store, scramble([...keys, ...nested]).map((k) => [k, null]));
      same(
        await listKeys(store, { prefix: ["cp"] }),
        keys,
        "code-point order of single characters",
      );
      same(
        await listKeys(store, { prefix: ["cp2"] }),
        nested,
        "code-point order inside longer strings",
      );
      same(
        await listKeys(store, { prefix: ["cp"], reverse: true }),
        [...keys].reverse(),
        "reverse code-point order",
      );
    },
  );

  define("keys with NUL characters and empty strings are distinct and ordered", async (c) => {
    const store = await c.open();
    await seed(store, scramble(NUL_AND_EMPTY_KEYS).map((k) => [k, show(k)]));
    same(await listKeys(store), NUL_AND_EMPTY_KEYS, "order of keys with NUL and empty elements");
    same(await store.count(), NUL_AND_EMPTY_KEYS.length, "each such key is its own entry");
    for (const key of NUL_AND_EMPTY_KEYS) {
      await expectValue(store, key, show(key), "NUL/empty key");
    }
    same(
      await listKeys(store, { prefix: [""] }),
      [["", ""], ["", "\u0000"], ["", "a"]],
      'list({ prefix: [""] })',
    );
    same(
      await listKeys(store, { prefix: ["a"] }),
      [["a", "\u0000b"], ["a", "b"]],
      'list({ prefix: ["a"] })',
    );
  });

  define("list({ prefix }) matches whole elements, never a byte or string prefix", async (c) => {
    const store = await c.open();
    const keys: Key[] = [
      ["a"],
      ["a", ""],
      ["a", "x"],
      ["a", "x", "y"],
      ["a\u0000"],
      ["a\u0000", "x"],
      ["ab"],
      ["ab", "x"],
      ["a\uffff"],
    ];
    await seed(store, scramble(keys).map((k) => [k, 1]));
    const under: Key[] = [["a", ""], ["a", "x"], ["a", "x", "y"]];
    same(await listKeys(store, { prefix: ["a"] }), under, 'list({ prefix: ["a"] })');
    same(
      await listKeys(store, { prefix: ["a"], reverse: true }),
      [...under].reverse(),
      'list({ prefix: ["a"], reverse })',
    );
    same(await store.count(["a"]), 3, 'count(["a"])');
    same(await queryKeys(store, { prefix: ["a"] }), under, 'query({ prefix: ["a"] })');
    same(await store.clear(["a"]), 3, 'clear(["a"]) returns how many it deleted');
    same(
      await listKeys(store),
      keys.filter((k) => !under.some((u) => show(u) === show(k))),
      'what is left after clear(["a"])',
    );
  });

  define("prefixes with LIKE and glob wildcards match literally", async (c) => {
    const store = await c.open();
    const keys: Key[] = [
      ["%", "1"],
      ["%x", "1"],
      ["*", "1"],
      ["[a]", "1"],
      ["_", "1"],
      ["a", "1"],
      ["b", "1"],
      ["x\\", "1"],
      ["x\\%", "1"],
    ];
    await seed(store, scramble(keys).map((k) => [k, 1]));
    for (const element of ["%", "_", "*", "[a]", "x\\"]) {
      same(
        await listKeys(store, { prefix: [element] }),
        [[element, "1"]],
        `list({ prefix: [${show(element)}] })`,
      );
      same(await store.count([element]), 1, `count([${show(element)}])`);
    }
  });

  define("unicode keys round-trip exactly (no normalization)", async (c) => {
    const store = await c.open();
    const keys: Key[] = [
      ["caf\u00e9"],
      ["cafe\u0301"],
      ["\u{1F468}\u200D\u{1F469}\u200D\u{1F467}"],
      ["日本語", "キー"],
      ["مرحبا", "עולם"],
      ["\u2028\u2029"],
      ["\ufeff"],
      ["tab\tnew\nline\r"],
      ["quote'\"back\\slash"],
      ["Ω", "ω"],
      ["ﬁ", "fi"],
    ];
    for (const key of keys) {
      const result = await store.set(key, key.join("|"));
      check(result.ok, `set(${show(key)}) must succeed`);
    }
    same(
      await store.count(),
      keys.length,
      "every unicode key is its own entry (é and e+U+0301 differ)",
    );
    for (const key of keys) {
      const entry = await store.get(key);
      same(entry?.key, key, `get(${show(key)}).key`);
      same(entry?.value, key.join("|"), `get(${show(key)}).value`);
    }
    const listed = await listKeys(store);
    same(
      new Set(listed.map(show)),
      new Set(keys.map(show)),
      "list() returns every unicode key exactly as written",
    );
  });

  define("unicode values round-trip exactly", async (c) => {
    const store = await c.open();
    const value = {
      nfc: "caf\u00e9",
      nfd: "cafe\u0301",
      family: "\u{1F468}\u200D\u{1F469}\u200D\u{1F467}",
      astral: "\u{10000}\u{1F600}\u{10FFFF}",
      bmpEdge: "\ud7ff\ue000\ufffd\uffff",
      rtl: "مرحبا עולם",
      cjk: "日本語のキー",
      nul: "\u0000",
      "ключ 😀": ["ünïcödé", "𝄞"],
    };
    await store.set(["unicode"], value);
    await expectValue(store, ["unicode"], value, "unicode value");
    same(
      (await store.query({ where: [{ path: "nfd", op: "eq", value: "cafe\u0301" }] })).length,
      1,
      "query() on a decomposed string matches it exactly",
    );
    same(
      (await store.query({ where: [{ path: "nfc", op: "eq", value: "cafe\u0301" }] })).length,
      0,
      "query() must not normalize é to e+U+0301",
    );
  });

  define("a 1 MB string value round-trips", async (c) => {
    const store = await c.open();
    const value = megabyteString();
    check(new TextEncoder().encode(value).length >= 1_000_000, "the test value is at least 1 MB");
    const result = await store.set(["big", "string"], value);
    check(result.ok, "set() of a 1 MB string must succeed");
    const got = (await store.get(["big", "string"]))?.value;
    if (got !== value) {
      const s = typeof got === "string" ? got : "";
      let i = 0;
      while (i < s.length && s[i] === value[i]) i++;
      throw new AssertionError({
        message: `1 MB string round trip: got ${
          typeof got === "string" ? `a string of length ${s.length}` : show(got)?.slice(0, 80)
        }, expected length ${value.length}; first difference at index ${i}`,
      });
    }
  });

  define("a value of exactly 16 MiB of JSON (the limit) round-trips", async (c) => {
    const store = await c.open();
    // JSON.stringify adds the two quotes: the value is MAX_VALUE_BYTES of JSON, the most a store holds.
    const value = "x".repeat(MAX_VALUE_BYTES - 2);
    let result;
    try {
      result = await store.set(["big", "limit"], value);
    } catch (err) {
      throw new AssertionError({
        message:
          `set() of a value of exactly ${MAX_VALUE_BYTES} bytes of JSON threw: ${
            errorText(err)
          }. Every backend must hold any value up to that limit (the core refuses larger ones): ` +
          "raise the backend's own limit (a packet or request size), or split a value into " +
          "chunks written in the same transaction",
      });
    }
    check(result.ok, "set() of a value at the size limit must succeed");
    const got = (await store.get(["big", "limit"]))?.value;
    check(
      got === value,
      `the value at the size limit read back ${
        typeof got === "string" ? `as a string of length ${got.length}` : `as ${typeof got}`
      }, expected a string of length ${value.length}`,
    );
  });

  define("a 1 MB nested object value round-trips", async (c) => {
    const store = await c.open();
    const value = {
      items: Array.from({ length: 4000 }, (_, i) => ({
        id: i,
        name: `item-${i}`,
        ratio: i / 7,
        tags: ["alpha", "beta", i % 2 === 0 ? "even" : "odd"],
        nested: { level: { deep: [i, -i - 1, String(i), i % 3 === 0, null] } },
        text: "lorem ipsum dolor sit amet ".repeat(4) + "😀",
      })),
    };
    check(JSON.stringify(value).length >= 1_000_000, "the test value is at least 1 MB of JSON");
    const result = await store.set(["big", "object"], value);
    check(result.ok, "set() of a 1 MB object must succeed");
    const got = (await store.get<typeof value>(["big", "object"]))?.value;
    same(got?.items?.length, value.items.length, "1 MB object: number of items");
    same(got, value, "1 MB object round trip");
  });
}
