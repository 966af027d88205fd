import assert from "node:assert/strict";
import { byteBounds, encodeKey, prefixUpperBound } from "../../src/store/keys.ts";
import { boundsWhere, isEmptyBounds } from "./bounds.ts";

Deno.test("boundsWhere() writes a prefix as key > lower AND key < upper, binding in that order", () => {
  const params: Uint8Array[] = [];
  const where = boundsWhere(byteBounds({ prefix: ["a"] }), (b) => `$${params.push(b)}`);
  assert.deepEqual(where, ["key > $1", "key < $2"]);
  assert.deepEqual(params, [encodeKey(["a"]), prefixUpperBound(["a"])]);
});

Deno.test("boundsWhere() writes an inclusive start as >= on the column it is given", () => {
  const params: Uint8Array[] = [];
  const where = boundsWhere(byteBounds({ start: ["b"] }), (b) => (params.push(b), "?"), "e.key");
  assert.deepEqual(where, ["e.key >= ?"]);
  assert.deepEqual(params, [encodeKey(["b"])]);
});

Deno.test("boundsWhere() writes no condition for an unbounded range", () => {
  assert.deepEqual(boundsWhere(byteBounds({}), () => "?"), []);
});

Deno.test("isEmptyBounds() is true only when the lower bound is at or above the upper one", () => {
  assert.equal(isEmptyBounds(byteBounds({ prefix: ["a"] })), false);
  assert.equal(isEmptyBounds(byteBounds({ start: ["b"], end: ["b"] })), true);
  assert.equal(isEmptyBounds(byteBounds({ start: ["c"], end: ["b"] })), true);
  assert.equal(isEmptyBounds(byteBounds({ start: ["c"] })), false);
});
