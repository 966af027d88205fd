/**
 * What a read served from the encryption wrapper's plaintext cache requires,
 * on every backend: the same entry key and exactly the envelope kept for it.
 * A read by key (`get`, `getMany`) compares the whole stored text of the
 * envelope with the one kept; anything else (another writer's value, an
 * envelope copied from another key, one changed byte, a changed plaintext
 * field, an expired entry) is read as without the cache.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DecryptionError, openStore, type Store } from "../../mod.ts";
import { encrypted, SEALED_FIELD } from "../../encrypt.ts";
import { withHooks } from "../../hooks.ts";
import { openRuntime } from "../../mod.ts";
import { definePlugin } from "../../plugin.ts";
import { MemoryDriver } from "../../plugins/memory/mod.ts";
import type { StoreDriver } from "../store/driver.ts";
import { z } from "zod";
import { DatabaseSync } from "node:sqlite";
import { type FakeClock, fakeClock } from "../../testing.ts";
import type { Key } from "../store/types.ts";
import {
  dropSchemaTest,
  newTable,
  openPg,
  PG_URL,
  SCHEMA,
} from "../../plugins/postgres/_test_utils.ts";

const KEY = "kZ8b3YqB6h4n0aY0m6E2c1rG9d5Vq7sJ2uT4wX8yZ0A=";

const dir = await Deno.makeTempDir({ prefix: "flowstate-encrypt-cache-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

/**
 * Two handles on the same data (`one`, `two`: the store beneath, each
 * encrypted with its own cache), on one fake clock. For memory, both are the
 * same store (it cannot be opened twice); the two wrappers still keep their
 * own plaintext.
 */
interface Pair {
  one: Store;
  two: Store;
  clock: FakeClock;
  close(): Promise<void>;
}

type Backend = { name: string; open: () => Promise<{ a: Store; b: Store; clock: FakeClock }> };

let files = 0;
const backends: Backend[] = [
  {
    name: "memory",
    open: async () => {
      const clock = fakeClock();
      const a = await openStore({ plugin: "memory" }, { clock });
      return { a, b: a, clock };
    },
  },
  {
    name: "sqlite",
    open: async () => {
      const clock = fakeClock();
      const path = join(dir, `state-${++files}.db`);
      const a = await openStore({ plugin: "sqlite", path }, { clock });
      const b = await openStore({ plugin: "sqlite", path }, { clock });
      return { a, b, clock };
    },
  },
];
const pgUrl = PG_URL;
if (pgUrl !== undefined) {
  backends.push({
    name: "postgres",
    open: async () => {
      const clock = fakeClock();
      const table = newTable("enc_cache");
      const a = await openPg(pgUrl, table, { clock });
      const b = await openPg(pgUrl, table, { clock });
      return { a, b, clock };
    },
  });
}

async function pair(
  backend: Backend,
  plaintext: string[] = [],
): Promise<Pair & { baseOne: Store; baseTwo: Store }> {
  const { a, b, clock } = await backend.open();
  const one = await encrypted(a, { key: KEY, plaintext });
  const two = await encrypted(b, { key: KEY, plaintext });
  return {
    one,
    two,
    baseOne: a,
    baseTwo: b,
    clock,
    close: async () => {
      await one.close();
      if (b !== a) await two.close();
    },
  };
}

/** The envelope as the store beneath holds it. */
async function envelope(base: Store, key: Key): Promise<Record<string, string>> {
  return (await base.get<Record<string, string>>(key))!.value;
}

/** Read `key` both ways (get, getMany): each must give `expected`. */
async function readsAs(store: Store, key: Key, expected: unknown): Promise<void> {
  assert.deepEqual((await store.get(key))?.value ?? null, expected);
  assert.deepEqual((await store.getMany([key]))[0]?.value ?? null, expected);
}

/** Both ways of reading `key` reject as `error` says. */
async function refuses(store: Store, key: Key, error: RegExp | typeof DecryptionError) {
  await assert.rejects(() => store.get(key), error);
  await assert.rejects(() => store.getMany([key]), error);
}

for (const backend of backends) {
  const on = `(${backend.name})`;

  Deno.test(`encrypt cache: a value another handle wrote since is read as it is now, not as kept ${on}`, async () => {
    const { one, two, close } = await pair(backend);
    try {
      await one.set(["doc"], { n: 1 });
      await readsAs(one, ["doc"], { n: 1 }); // kept: written and read by this handle
      await two.set(["doc"], { n: 2 });
      await readsAs(one, ["doc"], { n: 2 });
      await readsAs(one, ["doc"], { n: 2 }); // and again, now kept as this text
      await two.delete(["doc"]);
      await readsAs(one, ["doc"], null);
    } finally {
      await close();
    }
  });

  Deno.test(`encrypt cache: an envelope copied from another key fails authentication, though both keys' values are kept ${on}`, async () => {
    const { one, baseTwo, close } = await pair(backend);
    try {
      await one.set(["a"], { card: "4242" });
      await one.set(["b"], { card: "1111" });
      await readsAs(one, ["b"], { card: "1111" });
      await readsAs(one, ["a"], { card: "4242" });
      await baseTwo.set(["b"], await envelope(baseTwo, ["a"]));
      await refuses(one, ["b"], DecryptionError);
      await readsAs(one, ["a"], { card: "4242" });
    } finally {
      await close();
    }
  });

  Deno.test(`encrypt cache: one changed byte of the envelope, anywhere in its text, is not served from the cache ${on}`, async () => {
    const { one, baseTwo, close } = await pair(backend);
    try {
      await one.set(["doc"], { card: "4242" });
      await readsAs(one, ["doc"], { card: "4242" });
      const stored = await envelope(baseTwo, ["doc"]);
      const sealed = stored[SEALED_FIELD];
      // A character of the ciphertext, of the IV (just after the key id), of the tag (near the
      // end: the last character or two of base64 may carry only padding bits).
      const header = sealed.lastIndexOf(":") + 1;
      for (const i of [sealed.length - 30, header + 2, sealed.length - 5]) {
        const flipped = sealed.slice(0, i) + (sealed[i] === "A" ? "B" : "A") + sealed.slice(i + 1);
        await baseTwo.set(["doc"], { [SEALED_FIELD]: flipped });
        await refuses(one, ["doc"], /fails authentication/);
      }
      // A field beside the sealed one that no plaintext path declares.
      await baseTwo.set(["doc"], { ...stored, extra: 1 });
      await refuses(one, ["doc"], /plaintext fields do not match/);
      await baseTwo.set(["doc"], stored); // the very envelope again: it opens
      await readsAs(one, ["doc"], { card: "4242" });
    } finally {
      await close();
    }
  });

  Deno.test(`encrypt cache: a plaintext field changed beside an intact sealed value is refused, kept or not ${on}`, async () => {
    const { one, baseTwo, close } = await pair(backend, ["status"]);
    try {
      await one.set(["order"], { status: "open", card: "4242" });
      await readsAs(one, ["order"], { status: "open", card: "4242" });
      const stored = await envelope(baseTwo, ["order"]);
      await baseTwo.set(["order"], { ...stored, status: "refunded" });
      await refuses(one, ["order"], /plaintext fields do not match/);
      await baseTwo.set(["order"], { ...stored, status: "open", more: "x" });
      await refuses(one, ["order"], /plaintext fields do not match/);
      await baseTwo.set(["order"], { [SEALED_FIELD]: stored[SEALED_FIELD] }); // the field removed
      await refuses(one, ["order"], /plaintext fields do not match/);
      // The same envelope with its fields in another order (as another backend may write
      // it): read through every check, and right.
      await baseTwo.set(["order"], { status: "open", [SEALED_FIELD]: stored[SEALED_FIELD] });
      await readsAs(one, ["order"], { status: "open", card: "4242" });
      await readsAs(one, ["order"], { status: "open", card: "4242" });
      await baseTwo.set(["order"], { status: "paid", [SEALED_FIELD]: stored[SEALED_FIELD] });
      await refuses(one, ["order"], /plaintext fields do not match/);
    } finally {
      await close();
    }
  });

  Deno.test(`encrypt cache: an expired value is absent, though its plaintext is kept ${on}`, async () => {
    const { one, clock, close } = await pair(backend);
    try {
      await one.set(["session"], { user: "ada" }, { expireIn: 1_000 });
      await one.set(["other"], { user: "bob" });
      await readsAs(one, ["session"], { user: "ada" });
      clock.advance(1_000);
      await readsAs(one, ["session"], null);
      assert.deepEqual(
        (await one.getMany([["other"], ["session"]])).map((e) => e?.value ?? null),
        [{ user: "bob" }, null],
      );
    } finally {
      await close();
    }
  });
}

Deno.test("encrypt cache: over hooks, every read still goes through the hooks' get, kept or not", async () => {
  const base = await openStore({ plugin: "memory" });
  const seen: string[] = [];
  const hooked = withHooks(base, {
    afterGet: (key, entry) => {
      seen.push(`${key.join("/")}:${entry === null ? "none" : "value"}`);
    },
  });
  await using store = await encrypted(hooked, { key: KEY });
  await store.set(["doc"], { n: 1 });
  assert.deepEqual((await store.get(["doc"]))?.value, { n: 1 });
  assert.deepEqual((await store.get(["doc"]))?.value, { n: 1 });
  assert.deepEqual((await store.getMany([["doc"], ["none"]])).map((e) => e?.value ?? null), [
    { n: 1 },
    null,
  ]);
  assert.deepEqual(seen, ["doc:value", "doc:value", "doc:value", "none:none"]);
});

/** `store` seen through a `Proxy` that answers `overrides` itself (the pattern of a spy or a scoping layer). */
function proxyWith(store: Store, overrides: Partial<Record<keyof Store, unknown>>): Store {
  return new Proxy(store, {
    get(target, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof Store];
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("encrypt cache: over a Proxy that intercepts get and getMany, every read goes through them", async () => {
  const base = await openStore({ plugin: "memory" });
  const calls: string[] = [];
  const spied = proxyWith(base, {
    get: (key: Key) => (calls.push(`get ${key}`), base.get(key)),
    getMany: (keys: Key[]) => (calls.push(`getMany ${keys.length}`), base.getMany(keys)),
  });
  await using store = await encrypted(spied, { key: KEY });
  await store.set(["doc"], { n: 1 });
  await readsAs(store, ["doc"], { n: 1 });
  await readsAs(store, ["doc"], { n: 1 }); // kept now
  assert.deepEqual(calls, ["get doc", "getMany 1", "get doc", "getMany 1"]);
});

Deno.test("encrypt cache: a Proxy that scopes keys (a tenant's prefix) is what the encrypted store reads", async () => {
  const base = await openStore({ plugin: "memory" });
  await using unscoped = await encrypted(base, { key: KEY });
  await unscoped.set(["doc"], { secret: "tenant-B" });
  await unscoped.set(["tenantA", "doc"], { secret: "tenant-A" });
  const scope = (key: Key): Key => ["tenantA", ...key];
  const unscope = <E extends { key: Key } | null>(entry: E): E =>
    entry === null ? entry : { ...entry, key: entry.key.slice(1) };
  const scoped: Store = proxyWith(base, {
    get: async (key: Key) => unscope(await base.get(scope(key))),
    getMany: async (keys: Key[]) => (await base.getMany(keys.map(scope))).map(unscope),
  });
  await using tenantA = await encrypted(scoped, { key: KEY });
  // The scoped entry is sealed for ["tenantA","doc"]: read as ["doc"] it fails authentication
  // (as without the cache); never the unscoped ["doc"]'s value.
  await refuses(tenantA, ["doc"], DecryptionError);
  await readsAs(tenantA, ["other"], null);
});

Deno.test("encrypt cache: a get or getMany replaced on the store itself is called, also when replaced after encrypted()", async () => {
  const base = await openStore({ plugin: "memory" });
  const calls: string[] = [];
  const { get, getMany } = base;
  const spy = () => {
    Object.assign(base, {
      get: (key: Key) => (calls.push("get"), get.call(base, key)),
      getMany: (keys: Key[]) => (calls.push("getMany"), getMany.call(base, keys)),
    });
  };
  spy();
  await using store = await encrypted(base, { key: KEY });
  await store.set(["doc"], { n: 1 });
  await readsAs(store, ["doc"], { n: 1 });
  assert.deepEqual(calls, ["get", "getMany"]);
  // Put back: read as stored again (nothing to call); replaced again: called again.
  delete (base as Partial<Store>).get;
  delete (base as Partial<Store>).getMany;
  await readsAs(store, ["doc"], { n: 1 });
  spy();
  await readsAs(store, ["doc"], { n: 1 });
  assert.deepEqual(calls, ["get", "getMany", "get", "getMany"]);
});

/** The texts given to `JSON.parse` while `fn` runs. */
async function parsedDuring(fn: () => Promise<void>): Promise<string[]> {
  const parse = JSON.parse;
  const texts: string[] = [];
  JSON.parse = (text: string, reviver?: Parameters<typeof parse>[1]) => {
    texts.push(text);
    return parse(text, reviver);
  };
  try {
    await fn();
  } finally {
    JSON.parse = parse;
  }
  return texts;
}

/** Of `texts`, the envelopes. */
const envelopes = (texts: string[]) => texts.filter((t) => t.includes(SEALED_FIELD));

for (const plaintext of [[], ["status"]]) {
  const paths = plaintext.length === 0 ? "no plaintext paths" : "a plaintext path";
  Deno.test(`encrypt cache: a kept value read by key is served without parsing its envelope, on the store and on a runtime's store (${paths})`, async () => {
    const value = { status: "open", card: "4242" };
    await using runtime = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
    // The runtime's store wraps the core's (it reports writes); a Proxy of the core intercepts
    // (so its reads parse the envelope: what this test would see without the stored reads).
    const bases: [string, () => Promise<Store>, boolean][] = [
      ["the core's store", () => openStore({ plugin: "memory" }), true],
      ["the runtime's store", () => runtime.store("main"), true],
      ["a Proxy", async () => proxyWith(await openStore({ plugin: "memory" }), {}), false],
    ];
    for (const [name, open, asStored] of bases) {
      const store = await encrypted(await open(), { key: KEY, plaintext });
      await store.set(["order"], value);
      const texts = await parsedDuring(async () => {
        await readsAs(store, ["order"], value); // kept by the write
        await readsAs(store, ["order"], value); // kept as read
      });
      assert.equal(envelopes(texts).length, asStored ? 0 : 4, `${name}: ${texts.join("\n")}`);
      if (asStored) assert.equal(texts.length, 4, name); // each value's own JSON only
      await store.close(); // the runtime's store too (the runtime then has nothing to close)
    }
  });
}

/** An sqlite file's rows as stored (its envelopes' texts), to write texts no store would. */
function rawRows(path: string) {
  const db = new DatabaseSync(path);
  const select = db.prepare(
    `SELECT key, value FROM flowstate_entries WHERE value LIKE '%$sealed%'`,
  );
  const update = db.prepare(`UPDATE flowstate_entries SET value = ? WHERE key = ?`);
  return {
    rows: () => select.all() as { key: Uint8Array; value: string }[],
    write: (key: Uint8Array, text: string) => update.run(text, key),
    [Symbol.dispose]: () => db.close(),
  };
}

/** What a read gives: the value as JSON, or the class of its error. */
async function outcome(read: Promise<unknown>): Promise<string> {
  try {
    return "value " + JSON.stringify(await read);
  } catch (err) {
    return "error " + (err as Error).constructor.name;
  }
}

Deno.test("encrypt cache: a stored text that is not JSON is refused as the core refuses it, though its sealed text (with an escaped line feed) opened and is kept", async () => {
  const path = join(dir, `state-${++files}.db`);
  await using enc = await encrypted(await openStore({ plugin: "sqlite", path }), { key: KEY });
  await enc.set(["a"], { n: 1 });
  using raw = rawRows(path);
  const [{ key, value: text }] = raw.rows();
  const sealed = (JSON.parse(text) as Record<string, string>)[SEALED_FIELD];
  // A line feed within the base64 still opens (base64 decoding skips it): as JSON, escaped.
  const at = sealed.lastIndexOf(":") + 8;
  const withLf = sealed.slice(0, at) + "\n" + sealed.slice(at);
  raw.write(key, JSON.stringify({ [SEALED_FIELD]: withLf }));
  await readsAs(enc, ["a"], { n: 1 }); // opened, and kept with that sealed text
  // The same characters with the line feed raw: not JSON.
  raw.write(key, `{"${SEALED_FIELD}":"${withLf}"}`);
  await assert.rejects(() => enc.get(["a"]), SyntaxError);
  await assert.rejects(() => enc.getMany([["a"]]), SyntaxError);
});

for (const plaintext of [[], ["status"]]) {
  Deno.test(`encrypt cache: hand-made stored texts, each read after each other, read as without the cache (plaintext [${plaintext}])`, async () => {
    const path = join(dir, `state-${++files}.db`);
    await using cached = await encrypted(await openStore({ plugin: "sqlite", path }), {
      key: KEY,
      plaintext,
    });
    await cached.set(["a"], { status: "open", card: "4242" });
    await cached.set(["b"], { status: "open", card: "1111" });
    await using uncached = await encrypted(await openStore({ plugin: "sqlite", path }), {
      key: KEY,
      plaintext,
      cache: 0,
    });
    using raw = rawRows(path);
    const rows = raw.rows();
    assert.equal(rows.length, 2);
    const [textA, textB] = rows.map((r) => r.value);
    const keyA = rows[0].key;
    const S = (JSON.parse(textA) as Record<string, string>)[SEALED_FIELD];
    const SB = (JSON.parse(textB) as Record<string, string>)[SEALED_FIELD];
    const F = SEALED_FIELD;
    const st = plaintext.length ? `,"status":"open"` : "";
    const cut = S.lastIndexOf(":") + 10;
    const [before, after] = [S.slice(0, cut), S.slice(cut)];
    const variants = [
      textA,
      `{"${F}":"${S}"}`,
      `{"${F}":"${S}"${st}}`,
      `{"\\u0024sealed":"${S}"${st}}`,
      `{"${F}":"${S.replaceAll("/", "\\/")}"${st}}`,
      ` {"${F}":"${S}"${st}} `,
      `{"${F}" : "${S}"${st}}`,
      `{"${F}":"${SB}","${F}":"${S}"${st}}`,
      `{"${F}":"${S}","${F}":"${SB}"${st}}`,
      `{"${F}":"${S}"${st},"status":"paid"}`,
      `{"status":"paid"${st},"${F}":"${S}"}`,
      `{"status":"open","${F}":"${S}"}`,
      `{"${F}":"${S}","x":1}`,
      `{"${F}":"${before}\\n${after}"${st}}`,
      `{"${F}":"${before}\n${after}"${st}}`,
      `{"${F}":"${before}\\t${after}"${st}}`,
      `{"${F}":"${before}\t${after}"${st}}`,
      `{"${F}":"${before} ${after}"${st}}`,
      `{"${F}":"${S}"${st}}x`,
      `{"${F}":"${S}=="${st}}`,
      `{"${F}":"${S.slice(0, -1)}"${st}}`,
      textB,
    ];
    const mismatches = new Set<string>();
    // Each after each other: any of them may be kept when another is read.
    for (const first of variants) {
      for (const second of variants) {
        for (const text of [first, second]) {
          raw.write(keyA, text);
          const want = await outcome(uncached.get(["a"]).then((e) => e?.value));
          for (
            const [how, got] of [
              ["get", await outcome(cached.get(["a"]).then((e) => e?.value))],
              ["getMany", await outcome(cached.getMany([["a"]]).then((e) => e[0]?.value))],
            ]
          ) {
            if (got !== want) mismatches.add(`${how} ${JSON.stringify(text)}: ${got}, not ${want}`);
          }
        }
      }
    }
    assert.deepEqual([...mismatches], []);
  });
}

/** The memory plugin, its driver's `get` answering with a thenable (not a native `Promise`). */
const thenablePlugin = definePlugin({
  name: "thenable-get",
  optionsSchema: z.strictObject({}),
  open(): StoreDriver {
    const driver = new MemoryDriver();
    return new Proxy(driver, {
      get(target, name) {
        const value = Reflect.get(target, name, target);
        if (name !== "get") return typeof value === "function" ? value.bind(target) : value;
        return (key: Key) => {
          const answer = Promise.resolve(target.get(key));
          return { then: (done: never, failed: never) => answer.then(done, failed) };
        };
      },
    });
  },
});

Deno.test("encrypt cache: a driver whose get answers with a thenable is read as the core's get reads it", async () => {
  await using store = await encrypted(await openStore({ plugin: thenablePlugin }), { key: KEY });
  await store.set(["doc"], { n: 1 });
  await readsAs(store, ["doc"], { n: 1 }); // kept by the write
  await readsAs(store, ["doc"], { n: 1 }); // kept as read
  await readsAs(store, ["none"], null);
});

dropSchemaTest("encrypt cache: drop the postgres test schema", SCHEMA);
