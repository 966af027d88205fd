// serializeValue: the text of a value with objects of many keys (made key by key) is JSON.stringify's.
import assert from "node:assert/strict";
import { serializeValue } from "./values.ts";

/** An object with `n` keys, its values made by `valueOf`. */
function manyKeys(n: number, valueOf: (i: number) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) out[`n${i}`] = valueOf(i);
  return out;
}

Deno.test("serializeValue() gives JSON.stringify's text for values holding objects of more than 1,020 keys", () => {
  const outcomes = manyKeys(3_000, (i) => ({ status: "succeeded", attempts: 1, output: i }));
  // Integer-like keys come first, a key needing escapes, a lone surrogate, skipped undefined values.
  Object.assign(outcomes, { "7": "seven", 'q"\\\n': "\ud800", gone: undefined, "-0": -0 });
  const values: unknown[] = [
    outcomes, // large at depth 0
    { id: "r", nodes: outcomes, error: null, skipped: undefined }, // large at depth 1 (a run record)
    [outcomes, 1, "two", { nodes: outcomes }], // in an array, and at depth 2
    { a: { b: { c: manyKeys(2_000, (i) => [i, { deep: String(i) }]) } } }, // large deeper down
    manyKeys(2_000, (i) => (i % 2 ? undefined : manyKeys(3, (j) => j))),
    Object.assign(Object.create(null), manyKeys(1_500, (i) => i % 3 === 0)),
  ];
  for (const value of values) assert.equal(serializeValue(value, "x"), JSON.stringify(value));
});

Deno.test("serializeValue() still refuses what is not JSON inside an object of many keys", () => {
  const bad = manyKeys(2_000, (i) => i);
  bad.n1500 = NaN;
  assert.throws(
    () => serializeValue({ nodes: bad }, "Cannot set"),
    /Cannot set: value\.nodes\.n1500/,
  );
  const fn = manyKeys(2_000, (i) => i);
  fn.n3 = () => 1;
  assert.throws(() => serializeValue(fn, "Cannot set"), /value\.n3/);
});
