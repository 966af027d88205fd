import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, openStore } from "../../mod.ts";
import { testStore } from "../../testing.ts";
import { notifyingStore, type StoreChange } from "./_notify.ts";

// The store Runtime.store() hands out keeps the Store contract, while it reports.
const changes: StoreChange[] = [];
testStore(
  "notifyingStore(memory), listening",
  ({ clock, indexes, search, changes: feed }) =>
    openStore({ plugin: "memory", indexes, search, changes: feed }, { clock }).then((s) =>
      notifyingStore(s, { listening: true, changed: (c) => void changes.push(c) })
    ),
);

const dir = await Deno.makeTempDir({ prefix: "flowstate-notify-conformance-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
testStore(
  "Runtime.store() (sqlite) with a listener on rt.events()",
  async ({ id, clock, indexes, search, changes }) => {
    const rt = await openRuntime({
      config: {
        stores: {
          main: { plugin: "sqlite", path: join(dir, `${id}.db`), indexes, search, changes },
        },
      },
      clock,
      cwd: dir,
    });
    rt.events({ bufferSize: 1 }); // listening, never read: runs and writes never wait for it
    return await rt.store("main");
  },
  {
    persistent: true,
    multiProcess: { spec: ({ id }) => ({ plugin: "sqlite", path: join(dir, `${id}.db`) }) },
  },
);

Deno.test("notifyingStore() reports committed writes only, and nothing while nobody listens", async () => {
  const seen: StoreChange[] = [];
  const listener = {
    listening: false,
    changed: (c: StoreChange) => void seen.push(c),
    ignore: (key: readonly string[]) => key[0] === "internal",
  };
  await using store = notifyingStore(await openStore({ plugin: "memory" }), listener);
  await store.set(["quiet"], 1);
  listener.listening = true;
  const key = ["a", "b"];
  const set = await store.set(key, 1);
  key[1] = "changed by the caller after the call";
  assert.equal((await store.set(["a", "b"], 2, { ifVersion: null })).ok, false);
  await store.set(["internal", "x"], 1);
  assert.equal(await store.delete(["a", "b"], { ifVersion: "0" }), false);
  assert.equal(await store.delete(["nothing"]), true);
  assert.equal(await store.clear(["none"]), 0);
  assert.equal(await store.clear(["internal"]), 1);
  assert.deepEqual(seen, [
    { key: ["a", "b"], op: "set", version: set.ok ? set.version : "" },
    { key: ["nothing"], op: "delete" },
  ]);
});
