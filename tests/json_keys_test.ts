/**
 * Values with escaped object keys read back as written on every built-in
 * backend, through every read (get, getMany, list, query, the change feed)
 * and through the encrypt and cache wrappers, despite V8's JSON.parse bug
 * (nodejs/node#63785): after a native parse of `{"st":1,"a\\":1}`, the text
 * `{"st":1,"a\n":2}` parsed as `{ st: 1, "a\\": 2 }`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../src/plugin.ts";
import type { JsonValue, Key, Store } from "../src/store/types.ts";
import { encrypted } from "../src/wrappers/encrypt.ts";
import { cached } from "../src/wrappers/cached.ts";
import { dropTestSchema, newTable, pgTest, SCHEMA } from "../plugins/postgres/_test_utils.ts";

const VALUES: [Key, JsonValue][] = [
  [["o", "a"], { st: 1, "a\\": 1 }],
  [["o", "b"], { st: 1, "a\n": 2 }],
  [["o", "c"], { st: 1, "\\": 3, inner: [{ st: 1, "\n": 4 }] }],
  [["o", "d"], { st: 1, "\n": 5, '"': 6, "\u0000": 7, "\ud800": 8, __proto__x: 9 }],
];
const EXPECTED = VALUES.map(([, v]) => JSON.stringify(v));

/** Natively parse the values' texts: V8 learns the keys "a\\" and "\\" after `st`. */
function poison(): void {
  for (const [, value] of VALUES) JSON.parse(JSON.stringify(value));
}

/** Every read of `store` returns the values with their keys as written (key order included). */
async function checkReads(store: Store, what: string, feed: boolean): Promise<void> {
  for (const [key, value] of VALUES) await store.set(key, value);
  for (const [key, value] of VALUES) {
    poison();
    assert.equal(
      JSON.stringify((await store.get(key))?.value),
      JSON.stringify(value),
      `${what} get`,
    );
  }
  poison();
  const many = await store.getMany(VALUES.map(([k]) => k));
  assert.deepEqual(many.map((e) => JSON.stringify(e?.value)), EXPECTED, `${what} getMany`);
  poison();
  const listed = [];
  for await (const entry of store.list({ prefix: ["o"] })) listed.push(JSON.stringify(entry.value));
  assert.deepEqual(listed, EXPECTED, `${what} list`);
  poison();
  const queried = await store.query({ prefix: ["o"] });
  assert.deepEqual(queried.map((e) => JSON.stringify(e.value)), EXPECTED, `${what} query`);
  if (feed) {
    poison();
    const changes = [];
    for await (const change of store.changes({ prefix: ["o"] })) {
      changes.push(JSON.stringify(change.value));
    }
    assert.deepEqual(changes.slice(-VALUES.length), EXPECTED, `${what} changes`);
  }
}

/** The reads of `open`'s store, then of it encrypted, then of it cached. */
async function checkBackend(name: string, open: (label: string) => Promise<Store>): Promise<void> {
  {
    await using store = await open("plain");
    await checkReads(store, name, true);
  }
  {
    await using store = await encrypted(await open("enc"), { key: "11".repeat(32) });
    await checkReads(store, `${name} encrypted`, false);
  }
  {
    await using store = cached(await open("cached"), { max: 100 });
    await checkReads(store, `${name} cached`, false);
  }
  {
    await using store = cached(await open("behind"), { mode: "write-behind", flushInterval: 0 });
    await checkReads(store, `${name} write-behind`, false);
  }
}

const CHANGES = { keep: "1d" };

Deno.test("escaped object keys read back as written: memory", async () => {
  await checkBackend("memory", () => openStore({ plugin: "memory", changes: CHANGES }));
});

Deno.test("escaped object keys read back as written: jsonfile and sqlite", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate_json_keys_" });
  try {
    for (const plugin of ["jsonfile", "sqlite"]) {
      await checkBackend(plugin, (label) =>
        openStore({
          plugin,
          path: join(dir, `${plugin}_${label}.${plugin === "sqlite" ? "db" : "json"}`),
          changes: CHANGES,
        } as { plugin: string }));
      // Reopened: the values come from the file, parsed afresh.
      const path = join(dir, `${plugin}_plain.${plugin === "sqlite" ? "db" : "json"}`);
      await using store = await openStore({ plugin, path, changes: CHANGES } as { plugin: string });
      poison();
      const listed = await store.query({ prefix: ["o"] });
      assert.deepEqual(listed.map((e) => JSON.stringify(e.value)), EXPECTED, `${plugin} reopened`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

pgTest("escaped object keys read back as written: postgres", async (url) => {
  await checkBackend("postgres", (label) =>
    openStore(
      { plugin: "postgres", url, schema: SCHEMA, table: newTable(label), changes: CHANGES } as {
        plugin: string;
      },
    ));
});

dropTestSchema();
