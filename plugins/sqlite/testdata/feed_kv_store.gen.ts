/**
 * Writes `feed_kv_store.db` (and `feed_kv_store.json`, what that code read
 * back from it) with Flowstate 0.3's code, whose change feed lives in the
 * reserved key space: `deno run -A --config <checkout>/deno.json
 * feed_kv_store.gen.ts <checkout>` (a checkout of main before the feed
 * table). `feed_table_test.ts` opens a copy with this code and checks that
 * the history survived the move into the feed table.
 *
 * @module
 */
const root = Deno.args[0];
const here = new URL(".", import.meta.url).pathname;
const { openStore, withActor } = await import(`${root}/mod.ts`);
const { trimChanges, keyHistory } = await import(`${root}/src/store/store.ts`);
const path = `${here}feed_kv_store.db`;
await Deno.remove(path).catch(() => {});
const store = await openStore({
  plugin: "sqlite",
  path,
  changes: { keep: { count: 7 } },
});
const long = ["long", "x".repeat(600)];
await withActor({ actor: "alice" }, () => store.set(["a"], 1));
await store.set(["b"], { x: 1 });
await withActor({ runId: "r1", flowId: "f1", nodeId: "n1" }, () => store.set(["a"], 2));
await store.delete(["b"]);
await store.set(["c"], "soon", { expireIn: 3_600_000 });
await store.atomic().set(["d"], [1, 2]).set(["e"], null).commit();
await store.delete(["absent"]);
await store.set(long, "long key");
await withActor({ job: "gc" }, () => store.set(["a"], 3));
const removed = await trimChanges(store);
const changes = [];
for await (const c of store.changes()) changes.push(c);
const history = [];
for await (const c of keyHistory(store, ["a"])) history.push(c);
const info = await store.feedInfo();
const atSeq4 = await store.getAt(["a"], { seq: 4 });
await store.close();
await Deno.writeTextFile(
  `${here}feed_kv_store.json`,
  JSON.stringify({ removed, info, changes, history, atSeq4 }, null, 2) + "\n",
);
