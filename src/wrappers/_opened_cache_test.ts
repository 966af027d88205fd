import assert from "node:assert/strict";
import { cacheId, OpenedCache } from "./_opened_cache.ts";

Deno.test("OpenedCache keeps the least recently used out first, within its bytes", () => {
  const json = "x".repeat(100);
  const one = 2 * (cacheId(["k", "00"]).length + "s00".length + json.length);
  const cache = new OpenedCache(16 * one); // a value may be a sixteenth of it
  const at = (i: number) =>
    [`s${String(i).padStart(2, "0")}`, ["k", String(i).padStart(2, "0")]] as const;
  for (let i = 0; i < 16; i++) cache.put(...at(i), json);
  assert.equal(cache.size, 16);
  assert.equal(cache.bytes, 16 * one);
  assert.equal(cache.get(...at(0)), json); // 0 used: 1 is now the oldest
  cache.put(...at(16), json);
  assert.equal(cache.size, 16);
  assert.equal(cache.get(...at(1)), undefined, "the least recently used went");
  for (const i of [0, 2, 15, 16]) assert.equal(cache.get(...at(i)), json);
  assert.equal(cache.bytes, 16 * one);
});

Deno.test("OpenedCache: a key's new value replaces the old one and its bytes", () => {
  const cache = new OpenedCache(1024 * 1024);
  cache.put("old", ["a"], "1".repeat(50));
  cache.put("new", ["a"], "2");
  assert.equal(cache.size, 1);
  assert.equal(cache.bytes, 2 * (cacheId(["a"]).length + "new".length + 1));
  assert.equal(cache.get("old", ["a"]), undefined, "the old sealed text is not the value now");
  assert.equal(cache.get("new", ["a"]), "2");
  // A new value too large to keep still drops the old one.
  const small = new OpenedCache(1600);
  small.put("v1", ["b"], "1");
  small.put("v2", ["b"], "y".repeat(200));
  assert.equal(small.get("v1", ["b"]), undefined);
  assert.equal(small.get("v2", ["b"]), undefined);
  assert.equal(small.size, 0);
  assert.equal(small.bytes, 0);
});

Deno.test("OpenedCache: a hit needs the same key and the same sealed text; keys do not collide", () => {
  const cache = new OpenedCache(1024 * 1024);
  cache.put("sealed", ["", "x"], "a");
  assert.equal(cache.get("sealed", ["0:1:x"]), undefined);
  assert.equal(cache.get("sealed", ["x"]), undefined);
  assert.equal(cache.get("sealed", ["", "x"]), "a");
  cache.put("sealed", ["a:b"], "one part");
  cache.put("sealed", ["a", "b"], "two parts");
  assert.equal(cache.get("sealed", ["a:b"]), "one part");
  assert.equal(cache.get("sealed", ["a", "b"]), "two parts");
});

Deno.test("OpenedCache of 0 bytes keeps nothing; clear() empties it", () => {
  const none = new OpenedCache(0);
  none.put("s", ["a"], "1");
  assert.equal(none.get("s", ["a"]), undefined);
  assert.equal(none.size, 0);
  const cache = new OpenedCache(1024);
  cache.put("s", ["a"], "1");
  cache.clear();
  assert.equal(cache.get("s", ["a"]), undefined);
  assert.equal(cache.bytes, 0);
});
