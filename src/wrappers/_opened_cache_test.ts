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

Deno.test("OpenedCache.getStored() hits on the whole stored text kept for the key, and nothing else", () => {
  const cache = new OpenedCache(1024 * 1024);
  const stored = '{"$sealed":"fs1:k:AAAA","status":"open"}';
  cache.put("fs1:k:AAAA", ["a"], '{"n":1}', stored);
  assert.equal(cache.getStored(stored, ["a"]), '{"n":1}');
  assert.equal(cache.getStored(stored, ["b"]), undefined, "another key");
  assert.equal(cache.getStored('{"status":"open","$sealed":"fs1:k:AAAA"}', ["a"]), undefined);
  assert.equal(cache.getStored('{"$sealed":"fs1:k:AAAA","status":"paid"}', ["a"]), undefined);
  assert.equal(cache.getStored('{"$sealed":"fs1:k:AAAA"}', ["a"]), undefined, "no bare rule given");
  // Kept without a stored text (a write, a read of a parsed value): no stored text hits.
  cache.put("fs1:k:BBBB", ["c"], '{"n":2}');
  assert.equal(cache.getStored('{"$sealed":"fs1:k:BBBB"}', ["c"]), undefined);
  assert.equal(cache.get("fs1:k:BBBB", ["c"]), '{"n":2}');
  // Both texts are counted (the sealed text is not a part of the stored one here).
  const one = new OpenedCache(1024 * 1024);
  one.put("fs1:k:AAAA", ["a"], '{"n":1}', stored);
  assert.equal(
    one.bytes,
    ENTRY_OVERHEAD_BYTES + 2 * (cacheId(["a"]).length + "fs1:k:AAAA".length + stored.length + 7),
  );
});

Deno.test("OpenedCache with a bare envelope: a value kept without its stored text hits on head + sealed + tail only, then keeps that text, counted once", () => {
  const head = '{"$sealed":"';
  const tail = '"}';
  const cache = new OpenedCache(1024 * 1024, { head, tail, bareHits: true });
  const sealed = "fs1:k:" + "A".repeat(40);
  cache.put(sealed, ["a"], '{"n":1}', undefined, true);
  const size = ENTRY_OVERHEAD_BYTES + 2 * (cacheId(["a"]).length + sealed.length + 7);
  assert.equal(cache.bytes, size);
  for (
    const other of [
      `${head}${sealed}"}x`,
      `${head}${sealed.slice(0, -1)}B${tail}`,
      `${head}${sealed}","status":"open"}`,
      `{"$sealed": "${sealed}"}`,
      `{"$Sealed":"${sealed}"}`,
      `${head}${sealed}'}`,
    ]
  ) {
    assert.equal(cache.getStored(other, ["a"]), undefined, other);
  }
  assert.equal(cache.getStored(head + sealed + tail, ["b"]), undefined, "another key");
  // A sealed text not sealed by the cache's owner (read from a store): no bare hit.
  const read = new OpenedCache(1024 * 1024, { head, tail, bareHits: true });
  read.put(sealed, ["a"], '{"n":1}');
  assert.equal(read.getStored(head + sealed + tail, ["a"]), undefined);
  assert.equal(read.get(sealed, ["a"]), '{"n":1}');
  assert.equal(cache.getStored(head + sealed + tail, ["a"]), '{"n":1}');
  // Now kept as its stored text, the sealed text a part of it: counted once, with head and tail.
  assert.equal(cache.bytes, size + 2 * (head.length + tail.length));
  assert.equal(cache.getStored(head + sealed + tail, ["a"]), '{"n":1}');
  assert.equal(cache.get(sealed, ["a"]), '{"n":1}');
  // A stored text given at put() that is the bare envelope is counted once too.
  const put = new OpenedCache(1024 * 1024, { head, tail, bareHits: true });
  put.put(sealed, ["a"], '{"n":1}', head + sealed + tail);
  assert.equal(put.bytes, size + 2 * (head.length + tail.length));
  // So is one with more fields after the sealed text; without bareHits, no bare text hits.
  const fields = new OpenedCache(1024 * 1024, { head, tail, bareHits: false });
  const stored = `${head}${sealed}","status":"open"}`;
  fields.put(sealed, ["a"], '{"n":1}', stored);
  assert.equal(
    fields.bytes,
    ENTRY_OVERHEAD_BYTES + 2 * (cacheId(["a"]).length + stored.length + 7),
  );
  assert.equal(fields.getStored(stored, ["a"]), '{"n":1}');
  fields.put(sealed, ["b"], '{"n":2}', undefined, true);
  assert.equal(fields.getStored(head + sealed + tail, ["b"]), undefined);
  assert.equal(fields.get(sealed, ["b"]), '{"n":2}');
});

Deno.test("OpenedCache: bare hits that keep a stored text keep the cache within its limit", () => {
  const head = '{"$sealed":"';
  const tail = '"}';
  const sealed = (i: number) => "fs1:k:" + "A".repeat(40) + String(i).padStart(4, "0");
  const key = (i: number) => [String(i).padStart(4, "0")];
  const size = ENTRY_OVERHEAD_BYTES + 2 * (cacheId(key(0)).length + sealed(0).length + 2);
  const k = 100;
  const limit = 2 * k * size; // each generation holds exactly k values
  const cache = new OpenedCache(limit, { head, tail, bareHits: true });
  for (let i = 0; i < 2 * k; i++) cache.put(sealed(i), key(i), "{}", undefined, true);
  assert.equal(cache.bytes, limit);
  // Bare hits in the young generation (each value grows by head and tail), then in the old one
  // (values pushed out by the growth since are misses).
  let hits = 0;
  let last = -1;
  for (const i of [...Array(2 * k).keys()].reverse()) {
    const got = cache.getStored(head + sealed(i) + tail, key(i));
    assert.ok(got === "{}" || got === undefined);
    if (got !== undefined) [hits, last] = [hits + 1, i];
    assert.ok(cache.bytes <= limit, `value ${i}: ${cache.bytes} bytes > ${limit}`);
  }
  assert.ok(hits > k / 2, `${hits} hits`);
  // The last value hit is kept, and hits on its stored text.
  assert.equal(cache.getStored(head + sealed(last) + tail, key(last)), "{}");
  // A value that outgrows a sixteenth of the limit by its stored text is let go, as at put().
  const tight = new OpenedCache(16 * size, { head, tail, bareHits: true });
  tight.put(sealed(1), key(1), "{}", undefined, true);
  assert.equal(tight.bytes, size);
  assert.equal(tight.getStored(head + sealed(1) + tail, key(1)), "{}");
  assert.equal(tight.bytes, 0);
  assert.equal(tight.size, 0);
});
