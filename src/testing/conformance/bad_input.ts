/**
 * Conformance cases: bad keys, values and options are refused and write nothing.
 *
 * @module
 */
import type { Key } from "../../store/types.ts";
import { MAX_KEY_BYTES } from "../../store/keys.ts";
import { MAX_VALUE_BYTES } from "../../store/values.ts";
import { check, collect, expectValue, fails, listKeys, same } from "./_assert.ts";
import type { DefineCase } from "./_case.ts";

const BAD_KEYS: [string, unknown][] = [
  ["a string", "a"],
  ["null", null],
  ["undefined", undefined],
  ["an object", { 0: "a" }],
  ["an empty array", []],
  ["a number element", ["a", 1]],
  ["a null element", [null]],
  ["a nested array", [["a"]]],
  ["a lone high surrogate", ["\ud800"]],
  ["a lone low surrogate", ["a\udc00b"]],
];

function badValues(): [string, unknown][] {
  const cycle: Record<string, unknown> = { a: 1 };
  cycle.self = cycle;
  const arrayCycle: unknown[] = [1];
  arrayCycle.push({ back: arrayCycle });
  let deep: unknown = 1;
  for (let i = 0; i < 300; i++) deep = i % 2 ? [deep] : { a: deep };
  return [
    ["arrays and objects nested 300 deep", deep],
    ["a function", () => 1],
    ["a symbol", Symbol("s")],
    ["a BigInt", 10n],
    ["undefined", undefined],
    ["undefined in an array", [1, undefined, 3]],
    // deno-lint-ignore no-sparse-arrays
    ["a hole in an array", [1, , 3]],
    ["a nested BigInt", { a: { b: [1, 2n] } }],
    ["a nested function", { a: { f() {} } }],
    ["an object cycle", cycle],
    ["an array cycle", arrayCycle],
    ["NaN", NaN],
    ["Infinity", Infinity],
    ["-Infinity", { n: -Infinity }],
    ["a Date", new Date(0)],
    ["a Map", new Map([["a", 1]])],
    [
      "a class instance",
      new (class Point {
        x = 1;
      })(),
    ],
    ["a Uint8Array", new Uint8Array([1])],
  ];
}

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineBadInputCases(define: DefineCase): void {
  define("bad keys throw TypeError and write nothing", async (c) => {
    const store = await c.open();
    await store.set(["sentinel"], 1);
    for (const [label, bad] of BAD_KEYS) {
      const key = bad as Key;
      await fails(() => store.set(key, 1), TypeError, `set() with ${label} as key`);
      await fails(() => store.get(key), TypeError, `get() with ${label} as key`);
      await fails(() => store.delete(key), TypeError, `delete() with ${label} as key`);
      await fails(() => store.getMany([key]), TypeError, `getMany() with ${label} as key`);
      await fails(
        () => store.atomic().set(key, 1).commit(),
        TypeError,
        `atomic().set() with ${label} as key`,
      );
      await fails(
        () => store.atomic().check(key, null).commit(),
        TypeError,
        `atomic().check() with ${label} as key`,
      );
      await fails(
        () => store.atomic().delete(key).commit(),
        TypeError,
        `atomic().delete() with ${label} as key`,
      );
    }
    // As options, undefined means "not given" and [] means "every key".
    const badOptionKeys = BAD_KEYS.filter(([l]) => l !== "an empty array" && l !== "undefined");
    for (const [label, bad] of badOptionKeys) {
      const prefix = bad as Key;
      await fails(
        () => collect(store.list({ prefix })),
        TypeError,
        `list({ prefix }) with ${label}`,
      );
      await fails(
        () => collect(store.list({ start: prefix })),
        TypeError,
        `list({ start }) with ${label}`,
      );
      await fails(
        () => collect(store.list({ end: prefix })),
        TypeError,
        `list({ end }) with ${label}`,
      );
      await fails(() => store.count(prefix), TypeError, `count() with ${label} as prefix`);
      await fails(() => store.clear(prefix), TypeError, `clear() with ${label} as prefix`);
      await fails(() => store.query({ prefix }), TypeError, `query() with ${label} as prefix`);
    }
    await fails(() => store.getMany("a" as unknown as Key[]), TypeError, "getMany() with a string");
    same(await listKeys(store), [["sentinel"]], "keys after all the bad calls");
  });

  define("clear() without a prefix throws TypeError instead of clearing everything", async (c) => {
    const store = await c.open();
    await store.set(["keep"], 1);
    await fails(() => (store.clear as (p?: Key) => Promise<number>)(), TypeError, "clear()");
    same(await store.count(), 1, "count() after clear() without a prefix");
  });

  define("bad values throw TypeError and write nothing", async (c) => {
    const store = await c.open();
    await store.set(["sentinel"], "unchanged");
    for (const [label, value] of badValues()) {
      await fails(() => store.set(["sentinel"], value), TypeError, `set() of ${label}`);
      await fails(() => store.set(["new"], value), TypeError, `set() of ${label} at a new key`);
      await fails(
        () => store.atomic().set(["new"], 1).set(["new2"], value).commit(),
        TypeError,
        `atomic().set() of ${label}`,
      );
    }
    same(await listKeys(store), [["sentinel"]], "keys after all the bad values");
    await expectValue(store, ["sentinel"], "unchanged", "the sentinel after bad overwrites");
  });

  define(
    "keys over 2,048 encoded bytes throw RangeError and write nothing; keys at the limit work",
    async (c) => {
      const store = await c.open();
      // Encoded, an element is its UTF-8 bytes and a terminator: ["k", x] is 2 + x + 1 bytes.
      const atLimit: Key = ["k", "a".repeat(MAX_KEY_BYTES - 3)];
      const overLimit: Key = ["k", "a".repeat(MAX_KEY_BYTES - 2)];
      const overInUtf8: Key = ["k", "é".repeat(1024)]; // 1,024 characters, 2,048 bytes
      await store.set(atLimit, "fits");
      await expectValue(store, atLimit, "fits", "a key of exactly 2,048 bytes");
      for (
        const [label, key] of [["2,049 bytes", overLimit], ["2,051 bytes of UTF-8", overInUtf8]]
      ) {
        const err = await fails(() => store.set(key as Key, 1), RangeError, `set() of ${label}`);
        check(
          /keys are at most 2,048 bytes/.test(err.message),
          `the message names the limit: ${err.message}`,
        );
        check(err.message.length < 400, "the message shortens the key");
        await fails(
          () => store.atomic().set(["ok"], 1).set(key as Key, 1).commit(),
          RangeError,
          `atomic().set() of ${label}`,
        );
      }
      same(await listKeys(store), [atLimit], "keys after the refused writes");
    },
  );

  define("values over 16 MiB of JSON throw RangeError and write nothing", async (c) => {
    const store = await c.open();
    await store.set(["v"], "unchanged");
    const huge = "x".repeat(MAX_VALUE_BYTES); // with its quotes, 2 bytes over
    const err = await fails(() => store.set(["v"], huge), RangeError, "set() of 16 MiB + 2");
    check(/values are at most 16,777,216 bytes/.test(err.message), `the limit: ${err.message}`);
    await fails(
      () => store.atomic().set(["w"], 1).set(["v"], huge).commit(),
      RangeError,
      "atomic().set() of 16 MiB + 2",
    );
    same(await listKeys(store), [["v"]], "keys after the refused writes");
    await expectValue(store, ["v"], "unchanged", "the value after the refused overwrite");
  });

  define("expireIn <= 0 throws RangeError and writes nothing", async (c) => {
    const store = await c.open();
    for (const expireIn of [0, -1, -Infinity, NaN]) {
      await fails(
        () => store.set(["x"], 1, { expireIn }),
        RangeError,
        `set() with expireIn ${expireIn}`,
      );
      await fails(
        () => store.atomic().set(["x"], 1, { expireIn }).commit(),
        RangeError,
        `atomic().set() with expireIn ${expireIn}`,
      );
    }
    same(await store.count(), 0, "count() after the rejected writes");
  });

  define("bad options throw TypeError or RangeError", async (c) => {
    const store = await c.open();
    await store.set(["a"], 1);
    await fails(() => collect(store.list({ limit: -1 })), RangeError, "list({ limit: -1 })");
    await fails(() => collect(store.list({ limit: 1.5 })), RangeError, "list({ limit: 1.5 })");
    await fails(() => store.query({ limit: -1 }), RangeError, "query({ limit: -1 })");
    await fails(() => store.query({ offset: -1 }), RangeError, "query({ offset: -1 })");
    await fails(
      () => store.query({ where: [{ path: "a", op: "like" as "eq", value: 1 }] }),
      TypeError,
      'query() with op "like"',
    );
    await fails(
      () => store.query({ where: [{ path: "a", op: "in", value: 1 }] }),
      TypeError,
      "query() with in and a non-array value",
    );
    await fails(
      () => store.set(["a"], 2, { ifVersion: 42 as unknown as string }),
      TypeError,
      "set() with a numeric ifVersion",
    );
    await fails(
      () => store.delete(["a"], { ifVersion: null as unknown as string }),
      TypeError,
      "delete() with ifVersion null",
    );
    await expectValue(store, ["a"], 1, "after the bad calls");
  });
}
