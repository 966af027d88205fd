// ctx.sleep() in a sandboxed custom node reads a negative, NaN or fractional wait as the
// in-process node does (at once, or the whole milliseconds), and prints nothing: the library never
// prints, and Node's setTimeout in the Worker wrote a TimeoutNegativeWarning to stderr.
import assert from "node:assert/strict";
import { join } from "node:path";

const NODE = `
export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  async run(ctx) {
    for (const ms of [-1, NaN, 0.5, 0]) await ctx.sleep(ms);
    return "slept";
  },
};
`;

Deno.test("a sandboxed node's ctx.sleep(-1) or sleep(NaN) prints nothing and returns", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-node-sleep-" });
  try {
    const node = join(dir, "sleepy.js");
    await Deno.writeTextFile(node, NODE);
    const main = join(dir, "main.ts");
    const mod = new URL("../mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      main,
      `import { openRuntime } from ${JSON.stringify(mod)};
await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } }, home: ${
        JSON.stringify(dir)
      } });
const run = await rt.runFlow({ id: "sleepy", nodes: [{ id: "n", type: ${JSON.stringify(node)} }] });
console.log(JSON.stringify([run.status, run.nodes.n.output ?? run.nodes.n.error]));
`,
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        "--no-check",
        "--unstable-worker-options",
        "--allow-read",
        "--allow-env",
        main,
      ],
      env: { NO_COLOR: "1" },
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, err);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(stdout)), ["succeeded", "slept"]);
    assert.equal(err, "", "nothing printed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
