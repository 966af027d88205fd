import assert from "node:assert/strict";
import { cacheId, ENTRY_OVERHEAD_BYTES, OpenedCache } from "./_opened_cache.ts";

Deno.test("OpenedCache keeps what was used recently and lets the least recently used go, within its bytes", () => {
  const json = "x".repeat(100);
  const at = (i: number) =>
    [`s${String(i).padStart(2, "0")}`, ["k", String(i).padStart(2, "0")]] as const;
  const one = ENTRY_OVERHEAD_BYTES + 2 * (cacheId(at(0)[1]).length + at(0)[0].length + json.length);
  const cache = new OpenedCache(16 * one); // two generations of 8 values each
  for (let i = 0; i < 9; i++) cache.put(...at(i), json); // 0-7 fill the young one; 8 makes them old
  assert.equal(cache.size, 9);
  assert.equal(cache.get(...at(0)), json); // used again: young, beside 8
  // 9-14 fill the young generation again (8, 0, 9-14); 15 makes it old: 1-7, used least
  // recently, go with the generation before.
  for (let i = 9; i < 16; i++) cache.put(...at(i), json);
  for (let i = 1; i < 8; i++) assert.equal(cache.get(...at(i)), undefined, `${i} went`);
  for (const i of [0, 8, 9, 14, 15]) assert.equal(cache.get(...at(i)), json, `${i} is kept`);
  assert.equal(cache.size, 9);
  assert.ok(cache.bytes <= 16 * one);
  // However many values go through it, it holds at most its bytes.
  for (let i = 17; i < 1000; i++) {
    cache.put(`s${i}`, ["k", String(i)], json);
    assert.ok(cache.bytes <= 16 * one);
  }
});

Deno.test("OpenedCache: a key's new value replaces the old one and its bytes", () => {
  const cache = new OpenedCache(1024 * 1024);
  cache.put("old", ["a"], "1".repeat(50));
  cache.put("new", ["a"], "2");
  assert.equal(cache.size, 1);
  assert.equal(cache.bytes, ENTRY_OVERHEAD_BYTES + 2 * (cacheId(["a"]).length + "new".length + 1));
  assert.equal(cache.get("old", ["a"]), undefined, "the old sealed text is not the value now");
  assert.equal(cache.get("new", ["a"]), "2");
  // A new value too large to keep (over a sixteenth of the bytes) still drops the old one.
  const small = new OpenedCache(16 * (ENTRY_OVERHEAD_BYTES + 100));
  small.put("v1", ["b"], "1");
  small.put("v2", ["b"], "y".repeat(100));
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
