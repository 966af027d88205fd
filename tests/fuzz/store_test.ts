/**
 * Property-based fuzzing of keys and values on every backend (memory,
 * jsonfile, sqlite, and postgres with FLOWSTATE_TEST_POSTGRES_URL set):
 *
 * - the key encoding: `decodeKey(encodeKey(k))` is `k`, byte order of the
 *   encoding is `compareKeys` order, cursors round-trip;
 * - on each store, random keys list in `compareKeys` order (forwards, in
 *   reverse, within random bounds, and paged with cursors), and each reads
 *   back with its own key and value;
 * - random JSON values read back as their JSON round trip (`__proto__` keys
 *   kept as data, `-0` as `0`, key order aside);
 * - any JavaScript value (Dates, Maps, BigInts, holes, null prototypes…) is
 *   either stored as its JSON round trip or refused with a TypeError.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { type JsonValue, type Key, openStore, type Store } from "../../mod.ts";
import {
  compareBytes,
  compareKeys,
  decodeCursor,
  decodeKey,
  encodeCursor,
  encodeKey,
} from "../../src/store/keys.ts";
import {
  dropTestSchema,
  NEEDS_SERVER,
  PG_URL,
  SCHEMA,
} from "../../plugins/postgres/_test_utils.ts";
import { anyValue, fuzz, fuzzAsync, trickyString } from "./_fuzz.ts";

const keyArb: fc.Arbitrary<string[]> = fc.array(trickyString, { minLength: 1, maxLength: 4 });

Deno.test("fuzz: encodeKey is invertible and its byte order is compareKeys order", () => {
  fuzz("key encoding", 1901, 3000, fc.tuple(keyArb, keyArb), ([a, b]) => {
    assert.deepEqual(decodeKey(encodeKey(a)), a);
    assert.deepEqual(decodeCursor(encodeCursor(a)), a);
    const bytes = Math.sign(compareBytes(encodeKey(a), encodeKey(b)));
    assert.equal(bytes, Math.sign(compareKeys(a, b)), `${JSON.stringify([a, b])}`);
    assert.equal(Math.sign(compareKeys(b, a)), -bytes || 0, "antisymmetric");
  });
});

/** The backends, each with a way to open a fresh store. */
const BACKENDS: { name: string; ignore?: string; open: (dir: string) => Promise<Store> }[] = [
  { name: "memory", open: () => openStore({ plugin: "memory" }, { name: "fuzz" }) },
  {
    name: "jsonfile",
    open: (dir) =>
      openStore({ plugin: "jsonfile", path: join(dir, "s.json"), durability: "relaxed" }, {
        name: "fuzz",
      }),
  },
  {
    name: "sqlite",
    open: (dir) =>
      openStore({ plugin: "sqlite", path: join(dir, "s.db"), durability: "relaxed" }, {
        name: "fuzz",
      }),
  },
  {
    name: "postgres",
    ignore: PG_URL === undefined ? NEEDS_SERVER : undefined,
    open: () =>
      openStore({ plugin: "postgres", url: PG_URL!, schema: SCHEMA, table: "fuzz" }, {
        name: "fuzz",
      }),
  },
];

/** A user's key: a first element starting with U+0000 is reserved for the core's internal keys. */
const userKeyArb: fc.Arbitrary<string[]> = keyArb.filter((k) => k[0].charCodeAt(0) !== 0);

/** A case of the key-order property: distinct keys, and bounds and a page size to list with. */
const keysCase = fc.record({
  keys: fc.uniqueArray(userKeyArb, { maxLength: 24, selector: (k) => JSON.stringify(k) }),
  start: fc.option(userKeyArb, { nil: undefined }),
  end: fc.option(userKeyArb, { nil: undefined }),
  page: fc.integer({ min: 1, max: 7 }),
});

const keys = (entries: { key: Key }[], prefix: Key) =>
  entries.map((e) => e.key.slice(prefix.length));

async function collect(store: Store, options: Parameters<Store["list"]>[0]) {
  const out: { key: Key; value: JsonValue }[] = [];
  for await (const e of store.list(options)) out.push({ key: e.key, value: e.value });
  return out;
}

/** Register a test of `backend` that gets a fresh store of it (closed and removed after). */
function storeTest(
  backend: typeof BACKENDS[number],
  name: string,
  fn: (store: Store) => Promise<void>,
): void {
  Deno.test({
    name: `fuzz: ${backend.name}: ${name}` +
      (backend.ignore ? ` (ignored: ${backend.ignore})` : ""),
    ignore: backend.ignore !== undefined,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "flowstate-fuzz-" });
      const store = await backend.open(dir);
      try {
        await fn(store);
      } finally {
        await store.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

for (const backend of BACKENDS) {
  storeTest(backend, "random keys list in compareKeys order and read back", async (store) => {
    let n = 0;
    await fuzzAsync(
      `${backend.name} key order`,
      1902,
      backend.name === "memory" ? 600 : 250,
      keysCase,
      async ({ keys: cased, start, end, page }) => {
        const prefix = ["case", String(n++)];
        const atomic = store.atomic();
        cased.forEach((k, i) => atomic.set([...prefix, ...k], i));
        assert.ok((await atomic.commit()).ok);
        const sorted = [...cased].sort(compareKeys);
        const listed = await collect(store, { prefix });
        assert.deepEqual(keys(listed, prefix), sorted, "list order");
        for (const e of listed) {
          assert.equal(e.value, cased.findIndex((k) => compareKeys(k, e.key.slice(2)) === 0));
        }
        const reversed = await collect(store, { prefix, reverse: true });
        assert.deepEqual(keys(reversed, prefix), [...sorted].reverse(), "reverse order");
        // Bounds: start inclusive, end exclusive, both within the prefix.
        const bounded = await collect(store, {
          prefix,
          ...(start === undefined ? {} : { start: [...prefix, ...start] }),
          ...(end === undefined ? {} : { end: [...prefix, ...end] }),
        });
        const inBounds = sorted.filter((k) =>
          (start === undefined || compareKeys(k, start) >= 0) &&
          (end === undefined || compareKeys(k, end) < 0)
        );
        assert.deepEqual(keys(bounded, prefix), inBounds, "bounded listing");
        // Paging with cursors gives the same keys.
        const paged: Key[] = [];
        let cursor: string | undefined;
        for (let guard = 0; guard <= sorted.length; guard++) {
          const it = store.list({ prefix, limit: page, ...(cursor ? { cursor } : {}) });
          let got = 0;
          for await (const e of it) {
            paged.push(e.key.slice(prefix.length));
            got++;
          }
          if (got < page) break;
          cursor = it.cursor;
        }
        assert.deepEqual(paged, sorted, "paged listing");
        // Each key reads back as itself.
        const read = await store.getMany(cased.map((k) => [...prefix, ...k]));
        read.forEach((e, i) => {
          assert.deepEqual(e?.key, [...prefix, ...cased[i]]);
          assert.equal(e?.value, i);
        });
        assert.equal(await store.clear(prefix), cased.length);
      },
      0.1,
    );
  });

  storeTest(backend, "random JSON values read back as their JSON round trip", async (store) => {
    let n = 0;
    await fuzzAsync(
      `${backend.name} JSON values`,
      1903,
      backend.name === "memory" ? 1000 : 400,
      fc.jsonValue({ maxDepth: 4, stringUnit: "binary" }),
      async (value) => {
        const key = ["json", String(n++)];
        assert.ok((await store.set(key, value)).ok);
        const expected = JSON.parse(JSON.stringify(value));
        assert.deepStrictEqual((await store.get(key))?.value, expected);
        const [listed] = await collect(store, { prefix: ["json"], start: key, limit: 1 });
        assert.deepStrictEqual(listed.value, expected);
        // Keep the store small: a jsonfile store rewrites its whole document on each write.
        assert.ok(await store.delete(key));
      },
      0.25,
    );
  });
}

Deno.test("fuzz: any JavaScript value is stored as its JSON round trip or refused with a TypeError naming it", async () => {
  // Values are checked by the core, the same for every backend: memory is enough.
  const store = await openStore({ plugin: "memory" }, { name: "fuzz" });
  let n = 0;
  try {
    await fuzzAsync(
      "any value",
      1913,
      2000,
      anyValue,
      async (value) => {
        const key = ["any", String(n++)];
        try {
          await store.set(key, value);
        } catch (e) {
          if (!(e instanceof TypeError) || !e.message.startsWith("Cannot set")) throw e;
          return;
        }
        assert.deepStrictEqual((await store.get(key))?.value, JSON.parse(JSON.stringify(value)));
      },
    );
  } finally {
    await store.close();
  }
});

dropTestSchema();
