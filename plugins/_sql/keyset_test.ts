import assert from "node:assert/strict";
import { encodeKey } from "../../src/store/keys.ts";
import { DEFAULT_PAGE_SIZE, entryOf, KeysetPages } from "./keyset.ts";

const row = (key: string) => ({ key: encodeKey([key]) });

Deno.test("KeysetPages starts each forward page after the last key of the one before", () => {
  const pages = new KeysetPages({ prefix: [], batchSize: 2 });
  assert.equal(pages.nextSize(), 2);
  assert.equal(pages.advance([row("a"), row("b")], 2), true);
  assert.deepEqual(pages.bounds.lower, encodeKey(["b"]));
  assert.equal(pages.bounds.lowerExclusive, true);
  assert.equal(pages.advance([row("c")], 2), false, "a short page is the last one");
});

Deno.test("KeysetPages ends each reverse page before the last key of the one before", () => {
  const pages = new KeysetPages({ prefix: [], reverse: true, batchSize: 1 });
  assert.equal(pages.advance([row("z")], 1), true);
  assert.deepEqual(pages.bounds.upper, encodeKey(["z"]));
  assert.equal(pages.bounds.lower, undefined);
});

Deno.test("KeysetPages asks for no more rows than the limit leaves", () => {
  const pages = new KeysetPages({ prefix: [], limit: 3, batchSize: 2 });
  assert.equal(pages.nextSize(), 2);
  pages.advance([row("a"), row("b")], 2);
  assert.equal(pages.nextSize(), 1);
  pages.advance([row("c")], 1);
  assert.equal(pages.nextSize(), 0);
});

Deno.test("KeysetPages is complete at once when the range holds no key", () => {
  assert.equal(new KeysetPages({ start: ["b"], end: ["a"] }).nextSize(), 0);
  assert.equal(new KeysetPages({}).nextSize(), DEFAULT_PAGE_SIZE);
});

Deno.test("KeysetPages.select() orders by key in the listing's direction", () => {
  assert.equal(
    new KeysetPages({ reverse: true }).select("t", ["key < ?", "live"], "?"),
    "SELECT key, value, version, expires_at FROM t WHERE key < ? AND live ORDER BY key DESC LIMIT ?",
  );
});

Deno.test("entryOf() decodes a row's key", () => {
  assert.deepEqual(
    entryOf({ key: encodeKey(["a", "b"]), value: "1", version: "v1", expires_at: null }),
    { key: ["a", "b"], value: "1", version: "v1", expiresAt: null },
  );
});
