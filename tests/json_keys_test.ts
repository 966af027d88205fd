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
import { withServed } from "./_serve.ts";
import { openRuntime } from "../mod.ts";

const VALUES: [Key, JsonValue][] = [
  [["o", "a"], { st: 1, "a\\": "cherry", w: "apple" }],
  [["o", "b"], { st: 1, "a\n": "banana", w: "apple" }],
  [["o", "c"], { st: 1, "\\": 3, inner: [{ st: 1, "\n": 4 }], w: "apple" }],
  [["o", "d"], { st: 1, "\n": 5, '"': 6, "\u0000": 7, "\ud800": 8, w: "apple" }],
];
const EXPECTED = VALUES.map(([, v]) => JSON.stringify(v));

/** Natively parse the values' texts: V8 learns the keys "a\\" and "\\" after `st`. */
function poison(): void {
  for (const [, value] of VALUES) JSON.parse(JSON.stringify(value));
}

/** Every read of `store` returns the values with their keys as written (key order included). */
async function checkReads(
  store: Store,
  what: string,
  feed: boolean,
  indexed = true,
): Promise<void> {
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
  if (indexed) {
    poison();
    const eq = await store.query({ prefix: ["o"], where: [{ path: "st", op: "eq", value: 1 }] });
    assert.deepEqual(eq.map((e) => JSON.stringify(e.value)), EXPECTED, `${what} indexed eq query`);
    // Filters and indexes on an escaped key see the key as written.
    for (const op of ["eq", "exists"] as const) {
      poison();
      const where = [{ path: ["a\n"], op, value: op === "eq" ? "banana" : true }];
      const found = await store.query({ prefix: ["o"], where });
      assert.deepEqual(found.map((e) => e.key), [["o", "b"]], `${what} query ${op} on "a\\n"`);
    }
    poison();
    const banana = await store.search("banana", { fields: [["a\n"]] });
    assert.deepEqual(banana.map((e) => e.key), [["o", "b"]], `${what} search in "a\\n"`);
    poison();
    const hits = await store.search("apple", { limit: 10 });
    assert.deepEqual(
      hits.map((e) => JSON.stringify(e.value)).sort(),
      [...EXPECTED].sort(),
      `${what} search`,
    );
  }
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
    await checkReads(store, `${name} encrypted`, false, false);
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

/** A feed, an index on `st` and a search index: every read path of the store. */
const OPTIONS = {
  changes: { keep: "1d" },
  indexes: [{ prefix: ["o"], path: "st" }, { prefix: ["o"], path: ["a\n"] }],
  search: { prefix: ["o"], fields: ["w", ["a\n"]] },
};

Deno.test("escaped object keys read back as written: memory", async () => {
  await checkBackend("memory", () => openStore({ plugin: "memory", ...OPTIONS }));
});

Deno.test("escaped object keys read back as written: jsonfile, sqlite, memory with a snapshot", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate_json_keys_" });
  // The file option of each plugin, and the file's extension.
  const files: [plugin: string, option: string, ext: string][] = [
    ["jsonfile", "path", "json"],
    ["sqlite", "path", "db"],
    ["memory", "snapshot", "json"],
  ];
  try {
    for (const [plugin, option, ext] of files) {
      const spec = (label: string) =>
        ({ plugin, [option]: join(dir, `${plugin}_${label}.${ext}`), ...OPTIONS }) as {
          plugin: string;
        };
      await checkBackend(plugin, (label) => openStore(spec(label)));
      // Reopened: the values come from the file, parsed afresh.
      await using store = await openStore(spec("plain"));
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
      { plugin: "postgres", url, schema: SCHEMA, table: newTable(label), ...OPTIONS } as {
        plugin: string;
      },
    ));
});

Deno.test("escaped object keys: a write-behind cache's conditional set behind queued writes", async () => {
  // The conditional set waits for the queued writes, then hands the store a copy of its value.
  const base = await openStore({ plugin: "memory" });
  await using store = cached(base, { mode: "write-behind", flushInterval: 0 });
  await store.set(["queued"], 1);
  for (const [key, value] of VALUES) {
    await store.set(["queued"], 2);
    poison();
    assert.equal((await store.set(key, value, { ifVersion: null })).ok, true);
    assert.equal(JSON.stringify((await base.get(key))?.value), JSON.stringify(value), "stored");
  }
});

Deno.test("escaped object keys in an HTTP body are stored as written", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, runtime }) => {
    const store = await runtime.store("main");
    for (const [key, value] of VALUES) {
      poison();
      const res = await request(`/api/stores/main/entry?${key.map((k) => `key=${k}`).join("&")}`, {
        method: "PUT",
        body: JSON.stringify({ value }),
        headers: { "content-type": "application/json", "if-none-match": "*" },
      });
      assert.equal(res.status, 200, await res.text());
      poison();
      const stored = await store.get(key);
      assert.equal(JSON.stringify(stored?.value), JSON.stringify(value), `PUT ${key.join("/")}`);
    }
  });
});

Deno.test("escaped object keys in a flow's input come out of its nodes and outputs as written", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  for (const [, value] of VALUES) {
    poison();
    const run = await rt.runFlow({
      id: "echo",
      inputs: { obj: { type: "object" } },
      nodes: [{ id: "copy", type: "transform", with: { value: "${{ inputs.obj }}" } }],
      outputs: { out: "${{ nodes.copy.output }}" },
    }, { input: { obj: value } });
    assert.equal(run.status, "succeeded");
    assert.equal(JSON.stringify(run.outputs?.out), JSON.stringify(value), "the run's outputs");
    poison();
    const recorded = await (await rt.records()).getRun(run.id);
    assert.equal(JSON.stringify(recorded?.outputs?.out), JSON.stringify(value), "recorded");
  }
});

dropTestSchema();
