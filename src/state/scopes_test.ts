import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, openStore } from "../../mod.ts";
import { createStateView } from "./scopes.ts";

Deno.test("StateView.get() and Store.get() both say absent with null", async () => {
  await using store = await openStore({ plugin: "memory" });
  const view = createStateView(
    {
      forScope: () => Promise.resolve(store),
      byName: () => Promise.resolve(store),
    },
    "flow",
    "f",
  );
  assert.equal(await store.get(["flow", "f", "missing"]), null);
  assert.equal(await view.get("missing"), null);
  await view.set("stored-null", null);
  assert.equal(await view.get("stored-null"), null);
  assert.equal((await view.entry("stored-null"))?.value, null, "entry() tells a stored null");
  assert.equal(await view.entry("missing"), null);
});

Deno.test("ctx.flow.get() in a node resolves null for an absent key; state.get still takes its default only when absent", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    join(dir, "probe.ts"),
    `import { defineNode } from ${JSON.stringify(new URL("../../mod.ts", import.meta.url).href)};
import { z } from "zod";
export default defineNode({
  optionsSchema: z.object({}),
  async run(ctx) {
    const absent = await ctx.flow.get("nothing");
    await ctx.flow.set("nil", null);
    return { absentIsNull: absent === null };
  },
});
`,
  );
  await using rt = await openRuntime({
    config: { stores: { main: { plugin: "memory" } } },
    cwd: dir,
  });
  const run = await rt.runFlow({
    id: "absent",
    nodes: [
      { id: "probe", type: "./probe.ts" },
      { id: "nil", type: "state.get", needs: ["probe"], with: { key: "nil", default: 7 } },
      { id: "none", type: "state.get", needs: ["probe"], with: { key: "none", default: 7 } },
    ],
    outputs: {
      probe: "${{ nodes.probe.output }}",
      nil: "${{ nodes.nil.output }}",
      none: "${{ nodes.none.output }}",
    },
  });
  await Deno.remove(dir, { recursive: true });
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  assert.deepEqual(run.outputs, { probe: { absentIsNull: true }, nil: null, none: 7 });
});

Deno.test("increment() after its own increment is one compare-and-set, and still sees other writers", async () => {
  const { z } = await import("zod");
  const { definePlugin } = await import("../plugin.ts");
  const { MemoryDriver } = await import("../../plugins/memory/mod.ts");
  const { increment } = await import("./scopes.ts");
  let reads = 0;
  const plugin = definePlugin({
    name: "counting",
    optionsSchema: z.strictObject({}),
    open() {
      const driver = new MemoryDriver();
      return {
        location: "counting",
        get: (key) => (reads++, driver.get(key)),
        list: (range) => driver.list(range),
        commit: (request) => driver.commit(request),
        close: () => {},
      };
    },
  });
  await using store = await openStore({ plugin });
  reads = 0; // the open's own reads (the core reads which indexes the store records) do not count
  const key = ["flow", "f", "n"];
  assert.equal(await increment(store, key), 1);
  assert.equal(reads, 1, "the first increment reads the entry");
  assert.equal(await increment(store, key, 2), 3);
  assert.equal(await increment(store, key, 3), 6);
  assert.equal(reads, 1, "later ones compare-and-set against the version they wrote");

  // Someone else wrote: the compare-and-set fails, the increment reads and carries on from there.
  await store.set(key, 100);
  assert.equal(await increment(store, key), 101);
  assert.equal(reads, 2);
  await store.delete(key);
  assert.equal(await increment(store, key, 5), 5);
  await store.set(key, "text");
  await assert.rejects(increment(store, key), /it holds "text", not a number/);
  assert.equal((await store.get(key))?.value, "text");
});

Deno.test("increment() on two sqlite Stores over one file: neither loses the other's increments", async () => {
  const { increment } = await import("./scopes.ts");
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "s.db");
    await using a = await openStore({ plugin: "sqlite", path });
    await using b = await openStore({ plugin: "sqlite", path });
    const key = ["global", "n"];
    for (let i = 0; i < 20; i++) {
      await increment(a, key);
      await increment(b, key, 10);
    }
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => increment(i % 2 ? a : b, key, i % 2 ? 1 : 10)),
    );
    assert.equal((await a.get(key))?.value, 20 * 11 + 10 * 11);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
