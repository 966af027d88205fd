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
