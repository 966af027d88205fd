import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeKey } from "../../src/store/keys.ts";
import type { Key } from "../../src/store/types.ts";
import { escapedKeys, type EscapedRow, unescapeBytes } from "./rows.ts";
import { dropTestSchema, newTable, openPg, pgTest, withAdmin } from "./_test_utils.ts";

/** PostgreSQL's `encode(bytes, 'escape')` (esc_encode in encode.c), for the tests. */
function escapeText(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    if (b === 0 || b >= 0x80) out += "\\" + b.toString(8).padStart(3, "0");
    else if (b === 0x5c) out += "\\\\";
    else out += String.fromCharCode(b);
  }
  return out;
}

/** The row a listing under `prefix` reads for `key`. */
function rowOf(key: Key, prefix: Key): EscapedRow {
  const tail = encodeKey(key).subarray(encodeKey(prefix).length);
  return [escapeText(tail), "1", "v", null];
}

const odd = [
  ["a", "b"],
  ["a", ""],
  ["a", "x\\000y"],
  ["a", "\\"],
  ["a", "\\\\000"],
  ["a", "é", "z"],
  ["a", "nul\u0000inside"],
  ["a", "\u0000"],
  ["a", "😀"],
  ["a", "\u0001\u007f"],
  ["a", "x".repeat(100)],
] satisfies Key[];

Deno.test("escapedKeys() reads every key back exactly, under a prefix and without one", () => {
  for (const key of odd) {
    for (const prefix of [[], ["a"]] as Key[]) {
      const reader = escapedKeys(prefix);
      const row = rowOf(key, prefix);
      assert.deepEqual(reader.entry(row).key, key, JSON.stringify({ key, prefix }));
      assert.deepEqual(reader.key(row), encodeKey(key), JSON.stringify({ key, prefix }));
    }
  }
});

Deno.test("escapedKeys() reads arbitrary keys back exactly (property)", () => {
  const element = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.string({ unit: "binary", maxLength: 6 }),
    fc.constantFrom("\\", "\\000", "\u0000", "\\377", "é"),
  );
  fc.assert(
    fc.property(
      fc.array(element, { maxLength: 3 }),
      fc.array(element, { maxLength: 3 }),
      (p, rest) => {
        const key = [...p, ...rest];
        if (key.length === 0) return;
        const reader = escapedKeys(p);
        const row = rowOf(key, p);
        assert.deepEqual(reader.entry(row).key, key);
        assert.deepEqual(reader.key(row), encodeKey(key));
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("escapedKeys() selects the bytes after the prefix, aliased away from the key column", () => {
  const rest = "value, version, expires_at";
  assert.equal(escapedKeys([]).columns, `encode(key, 'escape') AS k, ${rest}`);
  assert.equal(escapedKeys(undefined).columns, `encode(key, 'escape') AS k, ${rest}`);
  assert.equal(
    escapedKeys(["ab"]).columns,
    `encode(substring(key from ${encodeKey(["ab"]).length + 1}), 'escape') AS k, ${rest}`,
  );
});

Deno.test("unescapeBytes() rejects text that is not escape output", () => {
  assert.throws(() => unescapeBytes("\\9"), /not PostgreSQL escape text/);
  assert.throws(() => unescapeBytes("é"), /not PostgreSQL escape text/);
  assert.deepEqual(unescapeBytes("a\\\\\\000\\377"), new Uint8Array([0x61, 0x5c, 0, 0xff]));
});

pgTest(
  "the server's escape text of every odd key matches the reader's, and lists list them",
  async (url) => {
    const table = newTable("rows");
    await using store = await openPg(url, table);
    for (const [i, key] of odd.entries()) await store.set(key, { i });
    await store.set(["b"], "outside");
    // The server's own encoding, compared with the reference the unit tests use.
    await withAdmin(url, async (sql) => {
      for (const key of odd) {
        const bytes = encodeKey(key);
        const [row] = await sql`SELECT encode(${bytes}::bytea, 'escape') AS t`;
        assert.equal(row.t, escapeText(bytes), JSON.stringify(key));
      }
    });
    const listed: Key[] = [];
    for await (const e of store.list({ prefix: ["a"] })) listed.push(e.key);
    const expected = [...odd].sort((x, y) => {
      const a = encodeKey(x), b = encodeKey(y);
      for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
      return a.length - b.length;
    });
    assert.deepEqual(listed, expected);
    // Pages of 2 (keyset bounds from the escaped keys), forward and reverse, and with no prefix.
    const paged: Key[] = [];
    for await (const e of store.list({ prefix: ["a"], batchSize: 2 })) paged.push(e.key);
    assert.deepEqual(paged, expected);
    const reversed: Key[] = [];
    for await (const e of store.list({ prefix: ["a"], batchSize: 3, reverse: true })) {
      reversed.push(e.key);
    }
    assert.deepEqual(reversed, [...expected].reverse());
    const all: Key[] = [];
    for await (const e of store.list({ batchSize: 4 })) all.push(e.key);
    assert.deepEqual(all, [...expected, ["b"]]);
    // Queries read their rows the same way: natively, with a clause that casts values, and with
    // an empty prefix.
    assert.deepEqual((await store.query({ prefix: ["a"] })).map((e) => e.key), expected);
    assert.deepEqual(
      (await store.query({ prefix: ["a"], where: [{ path: "i", op: "gte", value: 0 }] }))
        .map((e) => e.key),
      expected,
    );
    assert.deepEqual((await store.query({})).map((e) => e.key), [...expected, ["b"]]);
    const from: Key[] = [];
    for await (const e of store.list({ start: ["a", "é"], batchSize: 2 })) from.push(e.key);
    assert.deepEqual(from, [...expected.slice(expected.findIndex((k) => k[1] === "é")), ["b"]]);
  },
);

dropTestSchema();
