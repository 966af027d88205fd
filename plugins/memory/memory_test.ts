import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, StoreCorruptError } from "@flowstate/core";
import { fakeClock, testStore } from "@flowstate/core/testing";
import memory from "./mod.ts";

const dir = await Deno.makeTempDir({ prefix: "flowstate-memory-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

testStore(
  "memory",
  (ctx) =>
    openStore({ plugin: memory, indexes: ctx.indexes, search: ctx.search, changes: ctx.changes }, {
      clock: ctx.clock,
    }),
);

// With a snapshot file the memory plugin survives close and reopen, so the
// persistence cases apply too.
testStore(
  "memory (snapshot)",
  (ctx) =>
    openStore({
      plugin: memory,
      snapshot: join(dir, `${ctx.id}.json`),
      indexes: ctx.indexes,
      search: ctx.search,
      changes: ctx.changes,
    }, { clock: ctx.clock }),
  { persistent: true },
);

Deno.test("memory plugin restores entries, versions and expiry from its snapshot", async () => {
  const snapshot = join(dir, "round-trip.json");
  const clock = fakeClock();
  const first = await openStore({ plugin: memory, snapshot }, { clock });
  await first.set(["a"], { n: 1, s: "é😀\u0000" });
  await first.set(["b", "c"], [1, 2], { expireIn: 60_000 });
  await first.atomic().set(["d"], null).set(["e"], "e").commit();
  const before = [];
  for await (const entry of first.list()) before.push(entry);
  await first.close();

  const text = await Deno.readTextFile(snapshot);
  assert.equal(JSON.parse(text).format, "flowstate.memory-snapshot", "snapshot format tag");

  const second = await openStore({ plugin: memory, snapshot }, { clock });
  try {
    assert.ok(
      await second.get(["b", "c"]),
      "an entry that has not expired by the store's clock must be restored from the snapshot",
    );
    const after = [];
    for await (const entry of second.list()) after.push(entry);
    assert.deepEqual(after, before, "entries after restoring the snapshot");
    clock.advance(60_000);
    assert.equal(await second.get(["b", "c"]), null, "the expiring entry expires after restore");
  } finally {
    await second.close();
  }
});

Deno.test("memory plugin starts empty when its snapshot file does not exist", async () => {
  const store = await openStore({ plugin: memory, snapshot: join(dir, "missing", "x.json") });
  try {
    assert.equal(await store.count(), 0);
    assert.match(store.location, /missing/);
  } finally {
    await store.close().catch(() => {});
  }
});

Deno.test("memory plugin refuses a corrupt snapshot on every open and leaves it in place", async () => {
  for (
    const [label, content] of [
      ["invalid JSON", '{"format": "flowstate.memory-snapshot", "entries": [tru'],
      ["an unknown format", '{"format": "something-else", "version": 1, "entries": []}'],
      ["a newer version", '{"format": "flowstate.memory-snapshot", "version": 99, "entries": []}'],
      ["entries that are not an array", '{"format": "flowstate.memory-snapshot", "version": 1}'],
    ]
  ) {
    const snapshot = join(dir, `corrupt-${label.replaceAll(" ", "-")}.json`);
    await Deno.writeTextFile(snapshot, content);
    // Once the snapshot was moved aside and the next open started empty.
    for (const attempt of [1, 2]) {
      let caught: unknown;
      try {
        await openStore({ plugin: memory, snapshot });
      } catch (e) {
        caught = e;
      }
      const what = `${label}, attempt ${attempt}`;
      assert.ok(caught instanceof StoreCorruptError, `${what}: expected StoreCorruptError`);
      assert.equal(caught.path, snapshot, `${what}: error.path`);
      assert.equal(caught.movedTo, null, `${what}: error.movedTo`);
      assert.match(caught.message, /Cannot restore memory snapshot/, `${what}: message`);
      assert.match(caught.message, /left in place/, `${what}: message`);
      assert.equal(await Deno.readTextFile(snapshot), content, `${what}: content kept in place`);
    }
  }
});

Deno.test("memory plugin indexes the entries it restores from its snapshot, and answers eq from the index", async () => {
  const snapshot = join(dir, "indexed.json");
  {
    await using store = await openStore({ plugin: memory, snapshot });
    await store.set(["o", "1"], { status: "open" });
    await store.set(["o", "2"], { status: "done" });
    await store.set(["p", "3"], { status: "open" });
  }
  await using store = await openStore({
    plugin: memory,
    snapshot,
    indexes: [{ prefix: ["o"], path: "status" }],
  });
  const q = { prefix: ["o"], where: [{ path: "status", op: "eq" as const, value: "open" }] };
  assert.deepEqual((await store.query(q)).map((e) => e.key), [["o", "1"]]);
  const plan = await store.explain(q);
  assert.deepEqual([plan.index, plan.scan, plan.by], [store.indexes[0].name, false, "native"]);
  await store.set(["o", "2"], { status: "open" });
  await store.delete(["o", "1"]);
  assert.deepEqual((await store.query(q)).map((e) => e.key), [["o", "2"]]);
  const range = await store.explain({
    prefix: ["o"],
    where: [{ path: "status", op: "gt", value: "a" }],
  });
  assert.deepEqual([range.index, range.scan, range.by], [null, true, "core"]);
});

Deno.test("memory driver: a few keys added among many go to their places, and a list already iterating keeps what it had", async () => {
  const { MemoryDriver } = await import("./mod.ts");
  const driver = new MemoryDriver();
  const set = (key: string[]) =>
    driver.commit({
      checks: [],
      mutations: [{ type: "set", key, value: "1", expiresAt: null }],
      version: "v",
      now: 0,
    });
  const id = (n: number) => String(n).padStart(4, "0");
  for (let n = 0; n < 200; n += 2) await set(["k", id(n)]);
  const keys = (range: { prefix: string[] }) => [...driver.list(range)].map((e) => e.key[1]);
  assert.equal(keys({ prefix: ["k"] }).length, 100);
  // An iteration under way, then three new keys (few among many: each put at its place).
  const iterating = driver.list({ prefix: ["k"] })[Symbol.iterator]();
  const seen: string[] = [];
  for (let i = 0; i < 10; i++) seen.push(iterating.next().value!.key[1] as string);
  for (const n of [1, 51, 199]) await set(["k", id(n)]);
  const now = keys({ prefix: ["k"] });
  assert.equal(now.length, 103);
  assert.deepEqual(now, [...now].sort());
  assert.deepEqual(now.slice(0, 3), ["0000", "0001", "0002"]);
  assert.equal(now.at(-1), "0199");
  // The iteration goes on over the keys it started with: none skipped, none twice.
  for (let r = iterating.next(); !r.done; r = iterating.next()) seen.push(r.value.key[1] as string);
  assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => id(2 * i)));
  await driver.close();
});

Deno.test("memory plugin: a snapshot that cannot be written on close names the store, the file and what is lost", async () => {
  const sub = join(dir, "unwritable");
  const snapshot = join(sub, "snap.json");
  const store = await openStore({ plugin: memory, snapshot }, { name: "scratch" });
  await store.set(["a"], 1);
  // The snapshot's folder turns into a file: the write fails as on a full or broken disk.
  await Deno.remove(sub, { recursive: true });
  await Deno.writeTextFile(sub, "not a folder");
  const err = await store.close().then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Error, "close rejects");
  assert.match(
    err.message,
    /^Cannot write the snapshot of store "scratch" to .*unwritable[/\\]snap\.json: .*; the changes made to "scratch" since this process opened it are lost \(the snapshot file holds what it held before\)$/,
  );
  await Deno.remove(sub);
});
