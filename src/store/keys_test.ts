import assert from "node:assert/strict";
import {
  assertKey,
  compareKeys,
  compareStrings,
  decodeCursor,
  decodeKey,
  decodeKeyUnder,
  encodeCursor,
  encodeKey,
  encodeKeyInto,
  hasPrefix,
  keysEqual,
  prefixUpperBound,
} from "./keys.ts";
import type { Key } from "./types.ts";

/** Keys in the one order every backend shares. */
const SORTED: Key[] = [
  [""],
  ["", ""],
  ["", "\u0000"],
  ["\u0000"],
  ["\u0000", ""],
  ["\u0000\u0000"],
  ["\u0001"],
  ["a"],
  ["a", ""],
  ["a", "\u0000"],
  ["a", "\u0000b"],
  ["a", "b"],
  ["a", "b", ""],
  ["a", "b", "c"],
  ["a", "\u00ff"],
  ["a", "\uffff"],
  ["a", "😀"],
  ["a\u0000"],
  ["a\u0000", "x"],
  ["a\u0000b"],
  ["a\u0001"],
  ["aa"],
  ["b"],
  ["\u00e9"],
  ["\ue000"],
  ["\ufffd"],
  ["\u{10000}"],
  ["😀"],
  ["\u{10FFFF}"],
];

function memcmp(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

const sign = (n: number): number => Math.sign(n) + 0;

Deno.test("compareStrings() orders by code point, astral characters after U+FFFF", () => {
  const ordered = [
    "",
    "\u0000",
    "A",
    "a",
    "ab",
    "\u00e9",
    "\ud7ff",
    "\ue000",
    "\ufffd",
    "\uffff",
    "\u{10000}",
    "😀",
    "\u{10FFFF}",
  ];
  for (let i = 0; i < ordered.length; i++) {
    for (let j = 0; j < ordered.length; j++) {
      assert.equal(
        sign(compareStrings(ordered[i], ordered[j])),
        sign(i - j),
        `compareStrings(${JSON.stringify(ordered[i])}, ${JSON.stringify(ordered[j])})`,
      );
    }
  }
  // Plain `<` compares UTF-16 code units and gets this pair wrong.
  assert.ok("😀" < "\ue000");
  assert.ok(compareStrings("😀", "\ue000") > 0);
  assert.ok(compareStrings("x😀", "x\ufffd") > 0);
});

Deno.test("compareKeys() compares element-wise and puts a key before its extensions", () => {
  for (let i = 0; i < SORTED.length; i++) {
    for (let j = 0; j < SORTED.length; j++) {
      assert.equal(
        sign(compareKeys(SORTED[i], SORTED[j])),
        sign(i - j),
        `compareKeys(${JSON.stringify(SORTED[i])}, ${JSON.stringify(SORTED[j])})`,
      );
    }
  }
  assert.equal(compareKeys([], []), 0);
  assert.ok(compareKeys([], ["a"]) < 0);
});

Deno.test("encodeKey() bytes sort (memcmp) exactly like compareKeys()", () => {
  for (const a of SORTED) {
    for (const b of SORTED) {
      assert.equal(
        sign(memcmp(encodeKey(a), encodeKey(b))),
        sign(compareKeys(a, b)),
        `encoded ${JSON.stringify(a)} vs ${JSON.stringify(b)}`,
      );
    }
  }
});

Deno.test("encodeKey() escapes NUL as 00 FF and ends each element with 00", () => {
  assert.deepEqual([...encodeKey(["a"])], [0x61, 0x00]);
  assert.deepEqual([...encodeKey(["a", ""])], [0x61, 0x00, 0x00]);
  assert.deepEqual([...encodeKey(["a\u0000b"])], [0x61, 0x00, 0xff, 0x62, 0x00]);
  assert.deepEqual([...encodeKey(["é"])], [0xc3, 0xa9, 0x00]);
  assert.deepEqual([...encodeKey([])], []);
});

Deno.test("decodeKey() inverts encodeKey()", () => {
  for (const key of SORTED) assert.deepEqual(decodeKey(encodeKey(key)), key);
});

Deno.test("decodeKey() inverts encodeKey() for internal keys and escaped NULs in long or non-ASCII elements", () => {
  const keys: Key[] = [
    ["\u0000", "feed", "e", "0000000000000042"],
    ["\u0000", "ix", "orders", "status", "open"],
    ["\u0000", "x".repeat(40)],
    ["\u0000".repeat(40)],
    ["a".repeat(31) + "\u0000" + "b"],
    ["a".repeat(32) + "\u0000"],
    ["\u0000", "é\u0000😀"],
    ["\u0000é", "\u0000"],
    ["\ufeff\u0000"],
  ];
  for (const key of keys) assert.deepEqual(decodeKey(encodeKey(key)), key);
});

Deno.test("prefixUpperBound() bounds exactly the keys strictly under a prefix", () => {
  for (const prefix of SORTED) {
    const low = encodeKey(prefix);
    const high = prefixUpperBound(prefix);
    for (const key of SORTED) {
      const enc = encodeKey(key);
      const inside = memcmp(enc, low) > 0 && memcmp(enc, high) < 0;
      assert.equal(
        inside,
        hasPrefix(key, prefix),
        `${JSON.stringify(key)} under ${JSON.stringify(prefix)}`,
      );
    }
  }
});

Deno.test("hasPrefix() is true only for strictly longer keys that start with the prefix", () => {
  assert.equal(hasPrefix(["a", "b"], ["a"]), true);
  assert.equal(hasPrefix(["a", "b"], []), true);
  assert.equal(hasPrefix(["a"], ["a"]), false);
  assert.equal(hasPrefix(["ab"], ["a"]), false);
  assert.equal(hasPrefix(["a\u0000"], ["a"]), false);
  assert.equal(hasPrefix(["a"], ["a", "b"]), false);
});

Deno.test("keysEqual() compares elements, not identity", () => {
  assert.equal(keysEqual(["a", "b"], ["a", "b"]), true);
  assert.equal(keysEqual(["a", "b"], ["a"]), false);
  assert.equal(keysEqual(["a", "b"], ["a", "c"]), false);
  assert.equal(keysEqual(["caf\u00e9"], ["cafe\u0301"]), false);
});

Deno.test("assertKey() rejects what is not a non-empty array of well-formed strings", () => {
  const bad: [unknown, RegExp][] = [
    [
      "a",
      /^Cannot x: key must be an array of strings, like \["flow", "counter"\] \(got the string "a"\)$/,
    ],
    [undefined, /\(got undefined\)$/],
    [{ length: 1, 0: "a" }, /\(got object\)$/],
    [[], /^Cannot x: key must have at least one element \(got \[\]\)$/],
    [["a", 1], /^Cannot x: key element 1 must be a string \(got number in \["a",1\]\)$/],
    [[["a"]], /^Cannot x: key element 0 must be a string \(got an array in \[\["a"\]\]\)$/],
    [
      ["\udc00"],
      /^Cannot x: key element 0 contains a lone UTF-16 surrogate; use well-formed Unicode$/,
    ],
  ];
  for (const [key, message] of bad) {
    assert.throws(() => assertKey(key, "Cannot x"), (err: Error) => {
      assert.ok(err instanceof TypeError);
      assert.match(err.message, message);
      return true;
    });
  }
  assert.doesNotThrow(() => assertKey([], "Cannot x", true));
  assert.doesNotThrow(() => assertKey(["", "\u0000", "😀"], "Cannot x"));
});

Deno.test("encodeCursor() makes URL-safe cursors that decodeCursor() reads back", () => {
  for (const key of SORTED) {
    const cursor = encodeCursor(key);
    assert.match(cursor, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeCursor(cursor), key);
  }
});

Deno.test("decodeCursor() throws TypeError for anything encodeCursor() did not make", () => {
  for (
    const cursor of [
      "",
      "!!",
      "%%%",
      btoa("not json"),
      btoa("{}"),
      btoa("[]"),
      btoa("[1]"),
      btoa('["\\ud800"]'),
    ]
  ) {
    assert.throws(() => decodeCursor(cursor), (err: Error) => {
      assert.ok(err instanceof TypeError, `${JSON.stringify(cursor)}: ${err}`);
      assert.match(err.message, /is not a cursor returned by list\(\)/);
      return true;
    });
  }
});

Deno.test("decodeKeyUnder() decodes every key as decodeKey() does, under any prefix", () => {
  const prefixes: Key[] = [[], [""], ["a"], ["a", "b"], ["\u0000"], ["a\u0000"], ["é"]];
  const keys: Key[] = [
    ...SORTED,
    ["a", "x".repeat(40)],
    ["a", "b", "é", "z"],
    ["a", "b", "\u0000x"],
    ["a\u0000", "b"],
    ["é", "ü"],
  ];
  for (const prefix of prefixes) {
    const prefixBytes = encodeKey(prefix);
    for (const key of keys) {
      const decoded = decodeKeyUnder(encodeKey(key), prefix, prefixBytes);
      assert.deepEqual(decoded, key, `${JSON.stringify(key)} under ${JSON.stringify(prefix)}`);
    }
  }
  const prefix = ["a"];
  const decoded = decodeKeyUnder(encodeKey(["a", "b"]), prefix, encodeKey(prefix));
  decoded.push("c");
  assert.deepEqual(prefix, ["a"], "the key is a fresh array, not the prefix");
});

Deno.test("encodeKeyInto() writes encodeKey()'s bytes at an offset, or -1 without room", () => {
  const keys: Key[] = [...SORTED, ["a\u0000b", "é😀"], [], ["x".repeat(40)]];
  for (const key of keys) {
    const bytes = encodeKey(key);
    const out = new Uint8Array(bytes.length + 3).fill(7);
    assert.equal(encodeKeyInto(key, out, 3), bytes.length + 3, JSON.stringify(key));
    assert.deepEqual(out.subarray(3), bytes, JSON.stringify(key));
    assert.deepEqual([...out.subarray(0, 3)], [7, 7, 7]); // before the offset: untouched
    if (bytes.length > 0) {
      const short = new Uint8Array(bytes.length + 2).fill(7);
      assert.equal(encodeKeyInto(key, short, 3), -1, JSON.stringify(key));
      assert.ok(short.every((b) => b === 7), "nothing written without room");
    }
  }
});
