// ctx.sleep() and ctx.log() in a sandboxed custom node are checked as in-process: a negative or
// NaN wait and an unknown log level are errors the node's own call throws; a fractional or zero
// wait returns; Infinity sleeps until the node is stopped (here its timeout); and nothing is
// printed (the library never prints, and Node's setTimeout in the Worker wrote a
// TimeoutNegativeWarning or TimeoutOverflowWarning to stderr).
import assert from "node:assert/strict";
import { join } from "node:path";

const NODE = `
export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  async run(ctx) {
    const refused = [];
    for (const ms of [-1, NaN]) {
      try {
        await ctx.sleep(ms);
      } catch (err) {
        refused.push(err.name + ": " + err.message);
      }
    }
    try {
      ctx.log("hello", "warning");
    } catch (err) {
      refused.push(err.name + ": " + err.message);
    }
    for (const ms of [0.5, 0]) await ctx.sleep(ms);
    ctx.log("slept", "warn");
    if (ctx.input.forever) await ctx.sleep(Infinity);
    return refused;
  },
};
`;

Deno.test("a sandboxed node's ctx.sleep(-1), sleep(NaN) and log(_, 'warning') throw; sleep(Infinity) lasts until its timeout; nothing printed", async () => {
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
        JSON.stringify(join(dir, "home"))
      } });
const type = ${JSON.stringify(node)};
const run = await rt.runFlow({ id: "sleepy", nodes: [{ id: "n", type }] });
const forever = await rt.runFlow({
  id: "forever",
  nodes: [{ id: "n", type, with: { forever: true }, timeout: "300ms" }],
});
console.log(JSON.stringify({
  status: run.status,
  refused: run.nodes.n.output,
  forever: [forever.status, forever.nodes.n.status, forever.error?.message],
}));
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
    const hint = "give milliseconds >= 0, or Infinity to wait until the node is stopped " +
      "(its timeout, the run's, or a cancel)";
    assert.deepEqual(JSON.parse(new TextDecoder().decode(stdout)), {
      status: "succeeded",
      refused: [
        `RangeError: ctx.sleep(-1): ${hint}`,
        `RangeError: ctx.sleep(NaN): ${hint}`,
        'TypeError: ctx.log(): unknown level "warning" (did you mean "warn"?); the levels are "debug", "info", "warn", "error"',
      ],
      forever: ["failed", "timed-out", "timed out after 300 ms"],
    });
    assert.equal(err, "", "nothing printed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
