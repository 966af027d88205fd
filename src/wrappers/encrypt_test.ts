import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, DecryptionError, openRuntime, openStore, type Store } from "../../mod.ts";
import { encrypted, SEALED_FIELD } from "../../encrypt.ts";
import { testStore } from "../../testing.ts";
import type { JsonValue } from "../store/types.ts";
import { encodeKey } from "../store/keys.ts";
import { keyHistory } from "../store/store.ts";
import { cached } from "../../cache.ts";
import { dropSchemaTest } from "../../plugins/postgres/_test_utils.ts";

const KEY = "kZ8b3YqB6h4n0aY0m6E2c1rG9d5Vq7sJ2uT4wX8yZ0A=";
const OLD_KEY = "11".repeat(32);
const OTHER_KEY = "22".repeat(32);
const MARKER = "PLAINTEXT-MARKER-7f3a9c";

const dir = await Deno.makeTempDir({ prefix: "flowstate-encrypt-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

// The conformance suite through the wrapper. The cases that query, index or
// search sealed fields are refused by design (a TypeError saying which path
// to declare plaintext): they are skipped, each with that reason.
const SEALED_QUERY = "queries on sealed values are refused by design (declare paths plaintext)";
const QUERY_CASES = [
  "unicode values round-trip exactly",
  "expired entries are absent from query()",
  "query() eq and ne on nested paths and array indices",
  "query() missing fields and null follow the documented semantics",
  "query() lt lte gt gte compare numbers and strings, never across types",
  "query() in and contains",
  "query() paths: dot strings, segment arrays and the value itself",
  "query() orderBy asc and desc break ties by key",
  "query() orderBy ranks types: missing < null < false < true < number < string < array < object",
  "query() orderBy compares strings by code point, not by locale",
  "query() orderBy with several keys",
  "query() limit and offset",
  "query({ prefix }) scopes to keys strictly under the prefix",
  "query() matches the memory plugin on random data and queries (differential)",
  "indexes: indexed queries answer like a scan after random writes, deletes and expiries (differential)",
  "indexes: store.indexes and explain() name the index a query uses",
  "indexes: an index on an escaped object key matches the key as written, after a poisoning parse",
  "search: finds exactly the entries holding every word, after writes, deletes and expiry (differential)",
  "search: refuses text without words and fields that are not declared",
  "query() and search(): a limit past what SQL takes means all, such an offset none",
  "search: words of every script are cut as the reference cuts them, on every backend (an entry is found by its own text)",
  "search: text equal in Unicode NFKC finds each other (NFD and NFC, full-width and ASCII, ligatures), both ways",
  "indexes: writes by a program that opens the store without the declaration keep the indexes exact",
];

const skip: Record<string, string> = {
  ...Object.fromEntries(QUERY_CASES.map((name) => [name, SEALED_QUERY])),
  "a value of exactly 16 MiB of JSON (the limit) round-trips":
    "a sealed value is base64 ciphertext, a third larger than its JSON: an encrypted store " +
    "holds values up to about 12 MiB of JSON",
};

testStore(
  "memory (encrypted)",
  async ({ clock, indexes, search, changes }) =>
    await encrypted(await openStore({ plugin: "memory", indexes, search, changes }, { clock }), {
      key: KEY,
    }),
  { skip },
);

testStore(
  "sqlite (encrypted)",
  ({ id, clock, indexes, search, changes }) =>
    openStore({
      plugin: "sqlite",
      path: join(dir, `${id}.db`),
      indexes,
      search,
      changes,
    }, { clock }).then((store) => encrypted(store, { key: KEY })),
  {
    skip,
    multiProcess: {
      spec: ({ id }) => ({ plugin: "sqlite", path: join(dir, `${id}.db`), encrypt: { key: KEY } }),
    },
  },
);

// --- Round trip on every built-in backend, through openStore's `encrypt` ----

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") || undefined;
const PG_SCHEMA = `flowstate_test_enc_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;

const VALUES: Record<string, unknown> = {
  string: `secret ${MARKER} é😀\u0000`,
  number: 42.5,
  boolean: true,
  nothing: null,
  list: [1, "two", { three: MARKER }],
  nested: { secret: MARKER, deep: { er: ["visible"], hidden: MARKER }, status: "open" },
};

interface Backend {
  name: string;
  spec: (id: string) => Record<string, unknown> & { plugin: string };
  /** The files holding the data (scanned for the marker). */
  files?: (id: string) => string[];
  ignore?: boolean;
}

const BACKENDS: Backend[] = [
  {
    name: "memory",
    spec: (id) => ({ plugin: "memory", snapshot: join(dir, `${id}.snap.json`) }),
    files: (id) => [join(dir, `${id}.snap.json`)],
  },
  {
    name: "jsonfile",
    spec: (id) => ({ plugin: "jsonfile", path: join(dir, `${id}.json`) }),
    files: (id) => [join(dir, `${id}.json`)],
  },
  {
    name: "sqlite",
    spec: (id) => ({ plugin: "sqlite", path: join(dir, `${id}.db`) }),
    files: (id) => [join(dir, `${id}.db`), join(dir, `${id}.db-wal`)],
  },
  {
    name: "postgres",
    spec: (id) => ({ plugin: "postgres", url: PG_URL!, schema: PG_SCHEMA, table: id }),
    ignore: PG_URL === undefined,
  },
];

async function fileBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return new Uint8Array();
    throw err;
  }
}

function includesBytes(haystack: Uint8Array, needle: string): boolean {
  return new TextDecoder("latin1").decode(haystack).includes(needle);
}

async function rawValues(store: Store): Promise<string> {
  const out: unknown[] = [];
  for await (const e of store.list()) out.push(e.value);
  return JSON.stringify(out);
}

for (const backend of BACKENDS) {
  Deno.test({
    name: `encrypt: round trip on ${backend.name}, reopened, and no plaintext value stored${
      backend.ignore ? " (ignored: set FLOWSTATE_TEST_POSTGRES_URL to run)" : ""
    }`,
    ignore: backend.ignore,
    fn: async () => {
      const id = `rt_${backend.name}`;
      const spec = {
        ...backend.spec(id),
        encrypt: { key: KEY, plaintext: ["status", "deep.er", "card"] },
      };
      {
        await using store = await openStore(spec as { plugin: string }, { name: "main" });
        for (const [k, v] of Object.entries(VALUES)) await store.set(["v", k], v);
        await store.atomic().set(["a", "1"], { secret: MARKER }).set(["a", "2"], MARKER).commit();
        await store.set(["exp"], MARKER, { expireIn: 60_000 });
        assert.deepEqual((await store.get(["v", "nested"]))?.value, VALUES.nested);
        const many = await store.getMany([["v", "list"], ["missing"], ["a", "2"]]);
        assert.deepEqual(many.map((e) => e?.value ?? null), [VALUES.list, null, MARKER]);
        const listed = [];
        for await (const e of store.list({ prefix: ["v"] })) listed.push([e.key[1], e.value]);
        assert.deepEqual(Object.fromEntries(listed), VALUES);
        // plaintext: a query on the declared path works, on any other is refused
        const open = await store.query({ where: [{ path: "status", op: "eq", value: "open" }] });
        assert.deepEqual(open.map((e) => e.key), [["v", "nested"]]);
        const deep = await store.query({
          where: [{ path: "deep.er", op: "contains", value: "visible" }],
        });
        assert.deepEqual(deep.map((e) => e.key), [["v", "nested"]]);
        await assert.rejects(
          () => store.query({ where: [{ path: "secret", op: "exists" }] }),
          (err: Error) => err instanceof TypeError && /"secret", which is sealed/.test(err.message),
        );
        assert.equal((await store.query({ prefix: ["a"] })).length, 2);
        // the store under the wrapper holds no plaintext but the declared field
        const raw = await rawValues(encryptionOfStore(store));
        assert.ok(!raw.includes(MARKER), "a sealed value holds the marker in the clear");
        assert.ok(raw.includes(`"status":"open"`));
      }
      await using reopened = await openStore(spec as { plugin: string }, { name: "main" });
      assert.deepEqual((await reopened.get(["v", "string"]))?.value, VALUES.string);
      assert.equal((await reopened.get(["exp"]))?.value, MARKER);
      assert.equal(await reopened.count(), Object.keys(VALUES).length + 3);
      for (const file of backend.files?.(id) ?? []) {
        const bytes = await fileBytes(file);
        assert.ok(!includesBytes(bytes, MARKER), `${file} holds the marker in the clear`);
      }
      if (backend.files) {
        // The scan can fail: the same data without encryption shows the marker.
        const plainId = `${id}_plain`;
        {
          await using plain = await openStore(backend.spec(plainId), { name: "plain" });
          await plain.set(["v"], MARKER);
        }
        const all = await Promise.all(backend.files(plainId).map(fileBytes));
        assert.ok(all.some((b) => includesBytes(b, MARKER)), "the scan never sees a marker");
      }
    },
  });
}

if (PG_URL === undefined) {
  Deno.test({
    name:
      "postgres (encrypted): Store conformance (ignored: set FLOWSTATE_TEST_POSTGRES_URL to run)",
    ignore: true,
    fn: () => {},
  });
} else {
  // Each case id gets its own table; the same id reopens the same table, and
  // a second process opens it from the same spec (with encrypt:). The schema
  // is dropped by the last test of this file.
  const spec = (id: string) => ({
    plugin: "postgres",
    url: PG_URL,
    schema: PG_SCHEMA,
    table: `c_${id.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`,
  });
  testStore(
    "postgres (encrypted)",
    async ({ id, clock, indexes, search, changes }) =>
      await encrypted(await openStore({ ...spec(id), indexes, search, changes }, { clock }), {
        key: KEY,
      }),
    { skip, multiProcess: { spec: ({ id }) => ({ ...spec(id), encrypt: { key: KEY } }) } },
  );
}

function encryptionOfStore(store: Store): Store {
  const handle = (store as unknown as Record<symbol, { sealed: Store }>)[
    Symbol.for("flowstate.encryption")
  ];
  assert.ok(handle, "not an encrypted store");
  return handle.sealed;
}

// --- Search on plaintext fields ---------------------------------------------

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `encrypt: search without fields reads the declared plaintext search fields on ${backend.name}${
        backend.ignore ? " (ignored: set FLOWSTATE_TEST_POSTGRES_URL to run)" : ""
      }`,
    ignore: backend.ignore,
    fn: async () => {
      const id = `search_${backend.name}`;
      const encrypt = { key: KEY, plaintext: ["title", "meta.tag"] };
      const note = { title: "Quarterly report", body: `secret ${MARKER}`, meta: { tag: "q3" } };
      {
        await using store = await openStore({
          ...backend.spec(id),
          search: { prefix: ["notes"], fields: ["title", "meta.tag"] },
          encrypt,
        });
        await store.set(["notes", "a"], note);
        await store.set(["notes", "b"], { title: "Minutes", body: "report", meta: { tag: "x" } });
        const keys = async (text: string, options?: { fields: string[] }) =>
          (await store.search(text, options)).map((h) => h.key);
        assert.deepEqual(await keys("REPORT"), [["notes", "a"]]);
        assert.deepEqual(await keys("q3"), [["notes", "a"]]);
        assert.deepEqual(await keys("report", { fields: ["title"] }), [["notes", "a"]]);
        assert.deepEqual(await keys("q3", { fields: ["title"] }), []);
        await assert.rejects(
          () => store.search("report", { fields: ["title", "body"] }),
          (err: Error) => {
            assert.ok(err instanceof TypeError);
            assert.equal(
              err.message,
              `Cannot search: fields[1] names "body", which is sealed in encrypted store ` +
                `"${store.name}" (search cannot read sealed values); search plaintext fields only ` +
                `(search(text, { fields: ["title", "meta.tag"] }), or fields: [title, meta.tag] in ` +
                `a state.search node), or declare it plaintext (encrypt: { plaintext: ` +
                `[title, meta.tag, body] }) and run the rekey job`,
            );
            return true;
          },
        );
      }
      // without a search declaration, a search without fields would read every field
      await using undeclared = await openStore({ ...backend.spec(id), encrypt });
      await assert.rejects(
        () => undeclared.search("report"),
        (err: Error) =>
          err instanceof TypeError &&
          err.message.startsWith(
            "Cannot search: without fields a search reads every field (the store declares no " +
              `search fields) in encrypted store "${undeclared.name}"`,
          ) &&
          err.message.endsWith(
            `search plaintext fields only (search(text, { fields: ["title", "meta.tag"] }), ` +
              `or fields: [title, meta.tag] in a state.search node)`,
          ),
      );
      assert.deepEqual(
        (await undeclared.search("report", { fields: ["title"] })).map((h) => h.key),
        [["notes", "a"]],
      );
    },
  });
}

Deno.test("encrypt: a search without fields on a store whose declared search fields include a sealed one is refused, naming it", async () => {
  // openStore refuses such a declaration; encrypted() over a store opened without encrypt: takes it.
  await using base = await openStore({
    plugin: "memory",
    search: { prefix: ["notes"], fields: ["title", "body"] },
  });
  await using store = await encrypted(base, { key: KEY, plaintext: ["title"] });
  await store.set(["notes", "a"], { title: "Quarterly report", body: "secret" });
  await assert.rejects(
    () => store.search("report"),
    new TypeError(
      `Cannot search: without fields a search reads the store's search fields, and "body" among ` +
        `them is sealed in encrypted store "memory" (search cannot read sealed values); search ` +
        `plaintext fields only (search(text, { fields: ["title"] }), or fields: [title] in a ` +
        `state.search node), or declare it plaintext (encrypt: { plaintext: [title, body] }) and ` +
        `run the rekey job`,
    ),
  );
  assert.deepEqual((await store.search("report", { fields: ["title"] })).map((h) => h.key), [[
    "notes",
    "a",
  ]]);
});

// --- Tampering, wrong keys, bad keys ----------------------------------------

for (const cache of [undefined, 0]) {
  const kept = cache === undefined ? "the plaintext cache on (the default)" : "cache: 0";
  Deno.test(`encrypt: tampered ciphertext, a value copied to another key, tampered plaintext fields: each a DecryptionError naming the key (${kept})`, async () => {
    const base = await openStore({ plugin: "memory" }, { name: "main" });
    const store = await encrypted(base, { key: KEY, plaintext: ["status"], cache });
    await store.set(["orders", "1"], { status: "open", card: "4242" });
    await store.set(["orders", "2"], { status: "paid", card: "1111" });
    const stored = (await base.get(["orders", "1"]))!.value as Record<string, string>;

    // one flipped character of the ciphertext
    const text = stored[SEALED_FIELD];
    const i = text.length - 10;
    const flipped = text.slice(0, i) + (text[i] === "A" ? "B" : "A") + text.slice(i + 1);
    await base.set(["orders", "1"], { ...stored, [SEALED_FIELD]: flipped });
    await assert.rejects(() => store.get(["orders", "1"]), (err: unknown) => {
      assert.ok(err instanceof DecryptionError);
      assert.deepEqual(err.key, ["orders", "1"]);
      assert.equal(err.keyId, store.keyId);
      assert.match(err.message, /\["orders","1"\].*fails authentication.*tampered/);
      return true;
    });

    // the intact value of 1, copied to 2: bound to its key, it does not open
    await base.set(["orders", "2"], stored);
    await assert.rejects(() => store.get(["orders", "2"]), DecryptionError);
    // listing stops at the first bad value, with the same error
    await assert.rejects(async () => {
      for await (const _ of store.list()) { /* read all */ }
    }, DecryptionError);

    // a plaintext field changed beside an intact sealed value
    await base.set(["orders", "1"], { ...stored, status: "refunded" });
    await assert.rejects(() => store.get(["orders", "1"]), /plaintext fields do not match/);
    // back to the original: it opens again
    await base.set(["orders", "1"], stored);
    assert.deepEqual((await store.get(["orders", "1"]))?.value, { status: "open", card: "4242" });

    // a value written without the wrapper
    await base.set(["plain"], "not sealed");
    await assert.rejects(() => store.get(["plain"]), /is not sealed.*rekey/);
    await store.close();
  });
}

Deno.test("encrypt: set() writes under the key as it was given, whatever the caller does with its array meanwhile", async () => {
  for (const cache of [undefined, 0]) {
    const base = await openStore({ plugin: "memory" });
    const store = await encrypted(base, { key: KEY, cache });
    const key = ["orders", "1"];
    const writing = store.set(key, { card: "4242" });
    key[1] = "2"; // changed while the value is being sealed
    assert.equal((await writing).ok, true);
    assert.deepEqual((await store.get(["orders", "1"]))?.value, { card: "4242" });
    assert.equal(await store.get(["orders", "2"]), null);
    // Another wrapper (no cache of this one's) reads it the same.
    const fresh = await encrypted(base, { key: KEY });
    assert.deepEqual((await fresh.get(["orders", "1"]))?.value, { card: "4242" });
    await fresh.close();
  }
});

Deno.test("encrypt: a value read again is the one stored now: another writer's value, a fresh object each time, a small cache, cache: 0", async () => {
  const path = join(await Deno.makeTempDir({ dir, prefix: "cache-" }), "state.db");
  for (const cache of [undefined, 0, "0", "64KiB", 0.0625, "0.0625"] as const) {
    const one = await encrypted(await openStore({ plugin: "sqlite", path }), { key: KEY, cache });
    const two = await encrypted(await openStore({ plugin: "sqlite", path }), { key: KEY, cache });
    try {
      await one.set(["doc"], { n: 1, tags: ["a"] });
      assert.deepEqual((await one.get(["doc"]))?.value, { n: 1, tags: ["a"] });
      // Another process's write (here another connection): read as it is now, not as kept.
      await two.set(["doc"], { n: 2, tags: ["b"] });
      assert.deepEqual((await one.get(["doc"]))?.value, { n: 2, tags: ["b"] });
      await two.delete(["doc"]);
      assert.equal(await one.get(["doc"]), null);
      // A value handed out is the caller's: changing it changes nothing read later.
      await one.set(["doc"], { n: 3, tags: ["c"] });
      const got = (await one.get<{ n: number; tags: string[] }>(["doc"]))!.value;
      got.n = 99;
      got.tags.push("changed");
      assert.deepEqual((await one.get(["doc"]))?.value, { n: 3, tags: ["c"] });
      // Far more values than a small cache keeps (1,000 of ~1 KB): every read is right, twice
      // over, in every order, by get, getMany and list.
      const value = (i: number) => ({ i, note: "x".repeat(1000) });
      const keys = Array.from({ length: 1000 }, (_, i) => ["many", String(i).padStart(4, "0")]);
      for (let i = 0; i < keys.length; i++) await one.set(keys[i], value(i));
      for (const i of [0, 999, 500, 0, 1, 998]) {
        assert.deepEqual((await two.get(keys[i]))?.value, value(i));
        assert.deepEqual((await one.get(keys[i]))?.value, value(i));
      }
      const many = await two.getMany(keys.slice(0, 300));
      assert.deepEqual(many.map((e) => e?.value), keys.slice(0, 300).map((_, i) => value(i)));
      let i = 0;
      for await (const entry of one.list({ prefix: ["many"] })) {
        assert.deepEqual(entry.value, value(i++));
      }
      assert.equal(i, 1000);
      await one.clear([]);
    } finally {
      await one.close();
      await two.close();
    }
  }
});

Deno.test("encrypt: changes() opens values read ahead in order; a value it cannot open fails at its turn", async () => {
  const base = await openStore({ plugin: "memory", changes: { keep: "1d" } });
  const store = await encrypted(base, { key: KEY });
  const other = await encrypted(base, { key: OTHER_KEY }); // opened while the store is empty
  for (let i = 0; i < 40; i++) {
    if (i === 25) await other.set(["k", "foreign"], "sealed with another key");
    await store.set(["k", String(i).padStart(2, "0")], { i });
  }
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const change of store.changes()) seen.push((change.value as { i: number }).i);
  }, (err: unknown) => err instanceof DecryptionError && /\["k","foreign"\]/.test(err.message));
  assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i));
  // after it, from its sequence number on, the rest reads in order
  const after: number[] = [];
  for await (const change of store.changes({ since: 26 })) {
    after.push((change.value as { i: number }).i);
  }
  assert.deepEqual(after, Array.from({ length: 15 }, (_, i) => 25 + i));
  await base.close();
});

Deno.test("encrypt: a key's history opens its values as changes() does (through a cache too); the store beneath gives them sealed", async () => {
  await using store = await openStore(
    { plugin: "memory", changes: { keep: "1d" }, encrypt: { key: KEY, plaintext: ["status"] } },
    { name: "main" },
  );
  await store.set(["s", "1"], { card: "SECRET4242", status: "open" });
  await store.set(["s", "2"], "another key");
  await store.set(["s", "1"], { card: "SECRET4242", status: "paid" });
  await store.delete(["s", "1"]);
  const history = async (of: Store, options?: { reverse?: boolean; limit?: number }) => {
    const out: [number, string, unknown][] = [];
    for await (const c of keyHistory(of, ["s", "1"], options)) out.push([c.seq, c.op, c.value]);
    return out;
  };
  const opened: [number, string, unknown][] = [
    [1, "set", { card: "SECRET4242", status: "open" }],
    [3, "set", { card: "SECRET4242", status: "paid" }],
    [4, "delete", undefined],
  ];
  assert.deepEqual(await history(store), opened);
  const fromChanges: [number, string, unknown][] = [];
  for await (const c of store.changes()) {
    if (c.key.join("/") === "s/1") fromChanges.push([c.seq, c.op, c.value]);
  }
  assert.deepEqual(fromChanges, opened, "as changes() gives them");
  assert.deepEqual(await history(store, { reverse: true, limit: 2 }), opened.slice(1).reverse());
  await using viaCache = cached(store, { max: 10 });
  assert.deepEqual(await history(viaCache), opened);
  // The store under the wrapper: its feed holds the sealed envelopes (what backups copy).
  const sealed = await history(encryptionOfStore(store));
  assert.deepEqual(sealed.map(([seq, op]) => [seq, op]), opened.map(([seq, op]) => [seq, op]));
  assert.ok(!JSON.stringify(sealed).includes("SECRET4242"), JSON.stringify(sealed));
  assert.match(JSON.stringify(sealed[0][2]), /"\$sealed":"fs1:/);
});

Deno.test("encrypt: a wrong key fails at open and writes nothing; the right keys open it", async () => {
  const path = join(dir, "wrong-key.db");
  {
    await using store = await openStore({ plugin: "sqlite", path, encrypt: { key: KEY } }, {
      name: "main",
    });
    await store.set(["a"], "sealed");
  }
  const before = await Deno.readFile(path);
  await assert.rejects(
    () => openStore({ plugin: "sqlite", path, encrypt: { key: OTHER_KEY } }, { name: "main" }),
    (err: unknown) => {
      assert.ok(err instanceof DecryptionError);
      assert.match(
        err.message,
        /store "main": it holds values sealed with key id [0-9a-f]{16}.*the key is wrong/,
      );
      assert.ok(!err.message.includes(OTHER_KEY) && !err.message.includes(KEY));
      return true;
    },
  );
  assert.deepEqual(await Deno.readFile(path), before);
  // a wrong key among several opens the store, reading with the right one
  await using store = await openStore({
    plugin: "sqlite",
    path,
    encrypt: { keys: [OTHER_KEY, KEY] },
  });
  assert.equal((await store.get(["a"]))?.value, "sealed");
});

Deno.test("encrypt: a read under a key that is not configured is a DecryptionError, and rotation reads old keys", async () => {
  const base = await openStore({ plugin: "memory" }, { name: "main" });
  const old = await encrypted(base, { key: OLD_KEY });
  await old.set(["old"], 1);
  const rotated = await encrypted(base, { keys: [KEY, OLD_KEY] });
  await rotated.set(["new"], 2);
  assert.equal((await rotated.get(["old"]))?.value, 1);
  assert.equal((await rotated.get(["new"]))?.value, 2);
  assert.deepEqual(rotated.keyIds, [rotated.keyId, old.keyId]);
  await assert.rejects(
    () => old.get(["new"]),
    (err: unknown) =>
      err instanceof DecryptionError && err.keyId === rotated.keyId &&
      /not a configured key/.test(err.message),
  );
  await rotated.close();
});

Deno.test("encrypt: bad key material and options are ConfigErrors that say what and where, never the key", async () => {
  const base = await openStore({ plugin: "memory" });
  for (
    const [options, pattern] of [
      [{ key: "short-key" }, /encrypt\.key: the key is not 32 bytes as 64 hex digits or base64/],
      [{ key: "" }, /encrypt\.key: the key is empty/],
      [{}, /encrypt\.key: the key is missing/],
      [{ key: KEY, keys: [KEY] }, /both given/],
      [{ keys: [KEY, "ab".repeat(31)] }, /encrypt\.keys\.1: the key is not 32 bytes/],
      [
        { key: KEY, plaintext: ["$sealed"] },
        /encrypt\.plaintext\.0: a plaintext path must not start with \$sealed/,
      ],
      [{ key: KEY, plain: [] }, /encrypt\.plain: unknown option "plain"/],
      [
        { key: KEY, cache: "8 apples" },
        /encrypt\.cache: cache must be MiB as a number \(8\), a size such as "16MiB"/,
      ],
      [{ key: KEY, cache: -1 }, /encrypt\.cache: cache must be MiB/],
      [{ key: KEY, cache: true }, /encrypt\.cache: cache must be MiB.*got true/],
    ] as const
  ) {
    await assert.rejects(() => encrypted(base, options as never), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes("short-key"));
      return true;
    });
  }
  // through openStore: an index on a sealed path is refused before anything opens
  await assert.rejects(
    () =>
      openStore({
        plugin: "memory",
        indexes: [{ prefix: ["o"], path: "card" }],
        encrypt: { key: KEY, plaintext: ["status"] },
      }),
    /indexes\.0: the index is on "card", which is sealed/,
  );
  // a plaintext path through an array is refused at write
  const store = await encrypted(base, { key: KEY, plaintext: ["items.0.id"] });
  await assert.rejects(
    () => store.set(["x"], { items: [{ id: 1 }] }),
    /goes through an array at "items"/,
  );
  await store.close();
});

Deno.test("encrypt: the config takes encrypt: with ${env.NAME}; a bad key is a located config error", async () => {
  const cwd = await Deno.makeTempDir({ dir, prefix: "config-" });
  await Deno.writeTextFile(
    join(cwd, "flowstate.yaml"),
    "stores:\n  main:\n    plugin: sqlite\n    path: ./state.db\n    encrypt:\n      key: ${env.TEST_KEY}\n      plaintext: [status]\n      cache: 16MiB\n",
  );
  {
    await using rt = await openRuntime({ cwd, env: { TEST_KEY: KEY } });
    const store = await rt.store("main");
    await store.set(["o"], { status: "open", card: MARKER });
    assert.deepEqual((await store.get(["o"]))?.value, { status: "open", card: MARKER });
  }
  const bytes = await Deno.readFile(join(cwd, "state.db"));
  assert.ok(!includesBytes(bytes, MARKER));
  await assert.rejects(
    () => openRuntime({ cwd, env: { TEST_KEY: "not-a-key" } }),
    (err: unknown) =>
      err instanceof ConfigError && /flowstate\.yaml:6/.test(err.message) &&
      /stores\.main\.encrypt\.key/.test(err.message) && !err.message.includes("not-a-key"),
  );
  // The variable unset: one problem, that one (not also "the key is not 32 bytes").
  await assert.rejects(
    () => openRuntime({ cwd, env: {} }),
    (err: unknown) =>
      err instanceof ConfigError && err.issues.length === 1 &&
      /environment variable TEST_KEY is not set/.test(err.message),
  );
  // A list under key: says to write keys:.
  await Deno.writeTextFile(
    join(cwd, "flowstate.yaml"),
    "stores:\n  main:\n    plugin: memory\n    encrypt:\n      key: [a, b]\n",
  );
  await assert.rejects(
    () => openRuntime({ cwd, env: {} }),
    (err: unknown) =>
      err instanceof ConfigError &&
      /flowstate\.yaml:5:7: stores\.main\.encrypt\.key/.test(err.message) &&
      /keys: \[new, old\]/.test(err.message),
  );
  // A cache that is not a size (a word, or not a string at all): located, with the forms it takes.
  for (const bad of ["lots", "true", "[1]"]) {
    await Deno.writeTextFile(
      join(cwd, "flowstate.yaml"),
      `stores:\n  main:\n    plugin: memory\n    encrypt:\n      key: \${env.TEST_KEY}\n      cache: ${bad}\n`,
    );
    await assert.rejects(
      () => openRuntime({ cwd, env: { TEST_KEY: KEY } }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(
          err.message,
          /flowstate\.yaml:6:7: stores\.main\.encrypt\.cache: cache must be MiB as a number \(8\), a size such as "16MiB"/,
        );
        return true;
      },
    );
  }
  // A number in a string (as \${env.…} gives) is MiB.
  await Deno.writeTextFile(
    join(cwd, "flowstate.yaml"),
    "stores:\n  main:\n    plugin: memory\n    encrypt:\n      key: ${env.TEST_KEY}\n      cache: ${env.CACHE}\n",
  );
  {
    await using rt = await openRuntime({ cwd, env: { TEST_KEY: KEY, CACHE: "0" } });
    await (await rt.store("main")).set(["a"], 1);
    assert.equal((await (await rt.store("main")).get(["a"]))?.value, 1);
  }
});

// --- Backups, restores and moves -------------------------------------------

Deno.test("encrypt: a backup of an encrypted store stays sealed; restore needs an encrypted target with the key", async () => {
  const { backupStore, restoreBackup, moveStore } = await import("../../jobs.ts");
  const { gunzipSync } = await import("node:zlib");
  const file = join(dir, "enc.fsbackup");
  await using source = await openStore({
    plugin: "sqlite",
    path: join(dir, "backup-source.db"),
    encrypt: { key: KEY, plaintext: ["status"] },
  }, { name: "main" });
  for (let i = 0; i < 20; i++) {
    await source.set(["o", String(i)], { status: i % 2 ? "open" : "paid", card: `${MARKER}-${i}` });
  }
  const info = await backupStore(source, file);
  assert.equal(info.entries, 20);
  const text = new TextDecoder().decode(gunzipSync(await Deno.readFile(file)));
  assert.ok(!text.includes(MARKER), "the backup holds a value in the clear");
  assert.ok(text.includes(SEALED_FIELD));
  const header = JSON.parse(text.split("\n")[0]);
  // The key ids, and the plaintext paths the values carry beside their sealed text.
  assert.deepEqual(header.encrypted, {
    keyIds: [(source as { keyId?: string }).keyId],
    plaintext: [["status"]],
  });

  // into a plain store: refused, nothing written
  await using plain = await openStore({ plugin: "memory" }, { name: "plain" });
  await assert.rejects(() => restoreBackup(plain, file), /holds sealed values.*not encrypted/);
  assert.equal(await plain.count(), 0);
  // into a store with another key: refused
  await using other = await openStore({ plugin: "memory", encrypt: { key: OTHER_KEY } }, {
    name: "other",
  });
  await assert.rejects(() => restoreBackup(other, file), /add the key they were sealed with/);
  assert.equal(await other.count(), 0);
  // into a store with the key (and another backend): readable, plaintext paths queryable
  await using target = await openStore({
    plugin: "jsonfile",
    path: join(dir, "restored.json"),
    encrypt: { keys: [OTHER_KEY, KEY], plaintext: ["status"] },
  }, { name: "target" });
  const restored = await restoreBackup(target, file);
  assert.equal(restored.restored, 20);
  assert.deepEqual((await target.get(["o", "3"]))?.value, {
    status: "open",
    card: `${MARKER}-3`,
  });
  assert.equal(
    (await target.query({ where: [{ path: "status", op: "eq", value: "open" }] })).length,
    10,
  );
  assert.ok(!includesBytes(await Deno.readFile(join(dir, "restored.json")), MARKER));

  // a move: never from an encrypted store into a plain one; into another key, re-sealed
  await using plainTarget = await openStore({ plugin: "memory" }, { name: "plain-target" });
  await assert.rejects(() => moveStore(source, plainTarget), /would be written in the clear/);
  assert.equal(await plainTarget.count(), 0);
  await using moved = await openStore({
    plugin: "sqlite",
    path: join(dir, "moved.db"),
    encrypt: { key: OTHER_KEY },
  }, { name: "moved" });
  const move = await moveStore(source, moved);
  assert.equal(move.status, "completed");
  assert.deepEqual((await moved.get(["o", "4"]))?.value, { status: "paid", card: `${MARKER}-4` });
});

Deno.test("encrypt: the backup job through the runtime writes sealed values", async () => {
  const cwd = await Deno.makeTempDir({ dir, prefix: "backup-job-" });
  await using rt = await openRuntime({
    cwd,
    config: {
      stores: {
        main: { plugin: "sqlite", path: join(cwd, "s.db"), encrypt: { key: KEY } },
        runs: { plugin: "memory" },
      },
      records: "runs",
    },
  });
  await (await rt.store("main")).set(["secret"], MARKER);
  const { runJob } = await import("../../mod.ts");
  const run = await runJob(rt, "backup", {
    options: { store: "main", out: join(cwd, "b.fsbackup") },
    progress: "quiet",
    onLog: () => {},
  });
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  const { gunzipSync } = await import("node:zlib");
  const text = new TextDecoder().decode(gunzipSync(await Deno.readFile(join(cwd, "b.fsbackup"))));
  assert.ok(!text.includes(MARKER) && text.includes(SEALED_FIELD));
});

Deno.test("encrypt: one tampered value does not keep the store from opening; reading it names its key", async () => {
  const base = await openStore({ plugin: "memory" }, { name: "main" });
  const first = await encrypted(base, { key: KEY });
  await first.set(["a"], "first");
  await first.set(["b"], "second");
  const stored = (await base.get(["a"]))!.value as Record<string, string>;
  await base.set(["a"], { [SEALED_FIELD]: stored[SEALED_FIELD].slice(0, -8) + "AAAAAAA=" });
  const again = await encrypted(base, { key: KEY });
  assert.equal((await again.get(["b"]))?.value, "second");
  await assert.rejects(() => again.get(["a"]), /\["a"\].*fails authentication/);
  await again.close();
});

Deno.test("encrypt: a backup of a hooked encrypted store still holds sealed values", async () => {
  const { backupStore } = await import("../../jobs.ts");
  const { withHooks } = await import("../../hooks.ts");
  const { gunzipSync } = await import("node:zlib");
  const store = withHooks(await encrypted(await openStore({ plugin: "memory" }), { key: KEY }), {});
  await store.set(["a"], MARKER);
  const file = join(dir, "hooked.fsbackup");
  await backupStore(store, file);
  const text = new TextDecoder().decode(gunzipSync(await Deno.readFile(file)));
  assert.ok(!text.includes(MARKER) && text.includes(SEALED_FIELD));
  await store.close();
});

// --- The stored format: node:crypto (small values) and WebCrypto (large) ----

/** Sealed by the 0.3 wrapper (WebCrypto for every value) under KEY, `plaintext: ["status"]`. */
const FIXTURE_KEY_ID = "6ead1e48e01d4265";
const FIXTURES: { key: string[]; value: JsonValue; stored: Record<string, string> }[] = [
  {
    key: ["orders", "ü 1", "a\u0000b"],
    value: { status: "open", card: "4242 4242", note: "é😀" },
    stored: {
      $sealed: "fs1:6ead1e48e01d4265:NwHBEHLo8XdghGyUDO0UyoXmre/CFZXf7Z8p7wDdEeUm83NDyIG3X+wfc" +
        "IfOjSWx/8sjFZX5QRha3DL5KV4B96gNRLnmPrhYSR93MQJIy74=",
      status: "open",
    },
  },
  {
    key: ["small"],
    value: 7,
    stored: { $sealed: "fs1:6ead1e48e01d4265:UTxnLyfLM9k/T8SlE6Mv6vdmAxXU/HRXXDIhx8U=" },
  },
];

/** The authenticated data of the format: prefix, key id and the encoded entry key. */
function formatAad(keyId: string, key: string[]): Uint8Array<ArrayBuffer> {
  const head = new TextEncoder().encode(`flowstate.encrypt.v1\u0000${keyId}\u0000`);
  const keyBytes = encodeKey(key);
  const aad = new Uint8Array(head.length + keyBytes.length);
  aad.set(head);
  aad.set(keyBytes, head.length);
  return aad;
}

async function subtleKey(): Promise<CryptoKey> {
  return await crypto.subtle.importKey("raw", Uint8Array.fromBase64(KEY), "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

/** The 0.3 way to seal (WebCrypto, written out here independently of the wrapper). */
async function subtleSeal(keyId: string, key: string[], text: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: formatAad(keyId, key) },
      await subtleKey(),
      new TextEncoder().encode(text),
    ),
  );
  return `fs1:${keyId}:${iv.toBase64()}${ct.toBase64()}`;
}

/** The 0.3 way to open: the value's JSON text. */
async function subtleOpen(keyId: string, key: string[], sealed: string): Promise<string> {
  const prefix = `fs1:${keyId}:`;
  assert.ok(sealed.startsWith(prefix), sealed.slice(0, 40));
  const packed = Uint8Array.fromBase64(sealed.slice(prefix.length));
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: packed.subarray(0, 12), additionalData: formatAad(keyId, key) },
    await subtleKey(),
    packed.subarray(12),
  );
  return new TextDecoder().decode(plain);
}

/**
 * Values on both sides of the 4 KiB line between node:crypto and WebCrypto
 * (in characters of JSON to seal, in bytes of UTF-8 to open).
 */
const SIZED_VALUES: JsonValue[] = [
  "",
  0,
  { note: "x".repeat(1000) },
  "é".repeat(4094), // 4,096 characters, 8 KB of UTF-8: sealed with node:crypto, opened with WebCrypto
  "😀".repeat(2047), // 4,096 characters (surrogate pairs), 8 KB of UTF-8: the same
  "y".repeat(4094), // 4,096 characters and bytes: node:crypto both ways
  "y".repeat(4095), // 4,097: WebCrypto both ways
  { note: "z😀".repeat(20_000) },
];

Deno.test("encrypt: values sealed by 0.3 (WebCrypto) open, and values sealed now open with WebCrypto, byte for byte the same format", async () => {
  const base = await openStore({ plugin: "memory" });
  const store = await encrypted(base, { key: KEY, plaintext: ["status"] });
  assert.equal(store.keyId, FIXTURE_KEY_ID);
  for (const fixture of FIXTURES) {
    // the fixture opens with the WebCrypto reference, so the reference is the 0.3 format
    assert.deepEqual(
      JSON.parse(await subtleOpen(FIXTURE_KEY_ID, fixture.key, fixture.stored.$sealed)),
      fixture.value,
    );
    await base.set(fixture.key, fixture.stored);
    assert.deepEqual((await store.get(fixture.key))?.value, fixture.value);
  }
  const key = ["orders", "ü 2", "a\u0000b"];
  for (const value of SIZED_VALUES) {
    const what = JSON.stringify(value).slice(0, 20);
    // sealed by the wrapper: opens with WebCrypto
    await store.set(key, value);
    const stored = (await base.get(key))!.value as Record<string, string>;
    assert.deepEqual(Object.keys(stored), [SEALED_FIELD], what);
    const sealed = stored[SEALED_FIELD];
    assert.equal(await subtleOpen(store.keyId, key, sealed), JSON.stringify(value), what);
    // IV (12) + ciphertext (the UTF-8 of the JSON) + tag (16), in base64
    const utf8 = new TextEncoder().encode(JSON.stringify(value)).length;
    assert.equal(Uint8Array.fromBase64(sealed.split(":")[2]).length, 12 + utf8 + 16, what);
    // sealed by WebCrypto: opens with the wrapper
    await base.set(key, {
      [SEALED_FIELD]: await subtleSeal(store.keyId, key, JSON.stringify(value)),
    });
    assert.deepEqual((await store.get(key))?.value, value, what);
    assert.deepEqual((await store.getMany([key]))[0]?.value, value, what);
    // bound to its key, whichever way it was sealed
    await base.set(["other"], (await base.get(key))!.value);
    await assert.rejects(() => store.get(["other"]), DecryptionError, what);
  }
  await store.close();
});

Deno.test("encrypt: a flipped bit of the IV, the ciphertext or the tag, or a cut value, fails authentication, small or large", async () => {
  const base = await openStore({ plugin: "memory" });
  const store = await encrypted(base, { key: KEY });
  for (const value of [{ note: "x".repeat(1000) }, { note: "x".repeat(20_000) }]) {
    await store.set(["a"], value);
    const sealed = ((await base.get(["a"]))!.value as Record<string, string>)[SEALED_FIELD];
    const header = sealed.slice(0, sealed.lastIndexOf(":") + 1);
    const packed = Uint8Array.fromBase64(sealed.slice(header.length));
    const damaged = [0, 11, 12, packed.length - 17, packed.length - 16, packed.length - 1].map(
      (at) => {
        const copy = new Uint8Array(packed);
        copy[at] ^= 0x01;
        return header + copy.toBase64();
      },
    );
    damaged.push(header + packed.subarray(0, 27).toBase64(), header + "!!!!", header);
    for (const text of damaged) {
      await base.set(["a"], { [SEALED_FIELD]: text });
      await assert.rejects(() => store.get(["a"]), (err: unknown) => {
        assert.ok(err instanceof DecryptionError, String(err));
        assert.match(err.message, /\["a"\].*fails authentication/);
        return true;
      });
    }
    // the intact value still opens (a failed open leaves nothing behind)
    await base.set(["a"], { [SEALED_FIELD]: sealed });
    assert.deepEqual((await store.get(["a"]))?.value, value);
  }
  await store.close();
});

Deno.test("encrypt: every value gets its own IV, across refills of the IV pool and both ciphers", async () => {
  const base = await openStore({ plugin: "memory" });
  const store = await encrypted(base, { key: KEY });
  const ivs = new Set<string>();
  const count = 2600; // more than two pools of 1,024 IVs
  for (let i = 0; i < count; i++) {
    const key = ["k", String(i)];
    await store.set(key, i % 100 === 0 ? "x".repeat(9000) : "same value");
    const sealed = ((await base.get(key))!.value as Record<string, string>)[SEALED_FIELD];
    ivs.add(sealed.split(":")[2].slice(0, 16)); // 12 bytes = 16 base64 digits
  }
  assert.equal(ivs.size, count);
  // the same value under the same key twice: two different sealed texts
  await store.set(["k", "0"], "same value");
  const first = JSON.stringify((await base.get(["k", "0"]))!.value);
  await store.set(["k", "0"], "same value");
  assert.notEqual(JSON.stringify((await base.get(["k", "0"]))!.value), first);
  await store.close();
});

Deno.test("encrypt: IVs do not repeat across processes started with the same deno run --seed", async () => {
  // --seed makes crypto.getRandomValues repeat its bytes; GCM must never see a nonce twice.
  const script = join(dir, "seeded_iv.ts");
  await Deno.writeTextFile(
    script,
    `import { openStore } from ${JSON.stringify(new URL("../../mod.ts", import.meta.url).href)};
import { encrypted, SEALED_FIELD } from ${
      JSON.stringify(new URL("../../encrypt.ts", import.meta.url).href)
    };
const base = await openStore({ plugin: "memory" });
const store = await encrypted(base, { key: ${JSON.stringify(KEY)} });
await store.set(["k"], "v");
console.log((await base.get(["k"])).value[SEALED_FIELD]);
`,
  );
  const sealedOnce = async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--seed",
        "7",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        "--allow-read",
        "--allow-env",
        script,
      ],
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).trim();
  };
  const [first, second] = [await sealedOnce(), await sealedOnce()];
  assert.match(first, /^fs1:/);
  assert.notEqual(first.split(":")[2].slice(0, 16), second.split(":")[2].slice(0, 16));
});

Deno.test("encrypt: list, changes and getMany open small and large values in order; a bad one fails at its turn", async () => {
  const base = await openStore({ plugin: "memory", changes: { keep: "1d" } });
  const store = await encrypted(base, { key: KEY });
  const other = await encrypted(base, { key: OTHER_KEY }); // opened while the store is empty
  const valueOf = (i: number) => ({ i, pad: "p".repeat(i % 3 === 0 ? 5000 : 10) }); // large, small, small…
  const keys = Array.from({ length: 40 }, (_, i) => ["k", String(i).padStart(2, "0")]);
  for (let i = 0; i < keys.length; i++) {
    // one small (25) and one large (33) value under a key the store does not have
    await (i === 25 || i === 33 ? other : store).set(keys[i], valueOf(i));
  }
  // and a large one (36) tampered with: it fails only once WebCrypto has looked at it
  const stored = (await base.get(keys[36]))!.value as Record<string, string>;
  const at = stored[SEALED_FIELD].length - 100;
  const flip = stored[SEALED_FIELD][at] === "A" ? "B" : "A";
  await base.set(keys[36], {
    [SEALED_FIELD]: stored[SEALED_FIELD].slice(0, at) + flip + stored[SEALED_FIELD].slice(at + 1),
  });
  const good = keys.filter((_, i) => i !== 25 && i !== 33 && i !== 36);
  assert.deepEqual(
    (await store.getMany(good)).map((e) => e?.value),
    good.map((k) => valueOf(Number(k[1]))),
  );
  assert.deepEqual((await store.getMany([["k", "none"], keys[3], keys[4]])).map((e) => e?.value), [
    undefined,
    valueOf(3),
    valueOf(4),
  ]);
  // a bad small value after large ones being opened, a bad large one after small ones
  // (and a large one failing while a small one fails: no rejection is left unobserved)
  // The error names the first bad key of the batch, in order, whichever cipher fails first.
  for (
    const [batch, bad] of [
      [[keys[0], keys[3], keys[25], keys[6]], keys[25]],
      [[keys[1], keys[33], keys[2]], keys[33]],
      [[keys[36], keys[25]], keys[36]],
      [[keys[36], keys[1]], keys[36]],
    ] as const
  ) {
    await assert.rejects(
      () => store.getMany(batch),
      (err: unknown) => err instanceof DecryptionError && err.message.includes(JSON.stringify(bad)),
    );
  }
  for (const read of [() => store.list({ prefix: ["k"] }), () => store.changes()]) {
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const e of read()) seen.push((e.value as { i: number }).i);
    }, (err: unknown) => err instanceof DecryptionError && /\["k","25"\]/.test(err.message));
    assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i));
  }
  // from 26 on: 33 (large) fails at its turn, after 26–32
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const e of store.list({ start: keys[26], prefix: ["k"] })) {
      seen.push((e.value as { i: number }).i);
    }
  }, (err: unknown) => err instanceof DecryptionError && /\["k","33"\]/.test(err.message));
  assert.deepEqual(seen, [26, 27, 28, 29, 30, 31, 32]);
  await base.close();
});

// Last: the tests above keep their postgres tables in PG_SCHEMA.
dropSchemaTest("encrypt: drop the postgres test schema", PG_SCHEMA);
