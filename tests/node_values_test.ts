// A custom node's output and its state writes are JSON, checked the same way whether the node runs
// sandboxed (in a Worker, the default) or trusted (in-process): a value JSON cannot hold fails the
// attempt with the same problem named; it is never turned silently into something else ({} for
// a Map, null for NaN or a function) on the way out of the Worker.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";

/** A node module needing no imports: returns, or writes to its node state, `with.kind`'s value. */
const NODE = `
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
const values = {
  map: () => new Map([["a", 1]]),
  set: () => new Set([1]),
  nan: () => NaN,
  inf: () => Infinity,
  infinity: () => ({ deep: [1, -Infinity] }),
  fn: () => ({ f: () => 1 }),
  date: () => ({ at: new Date(0) }),
  bigint: () => 1n,
  plain: () => ({ a: [1, "two", null, true] }),
};
export default {
  kind: "flowstate.node",
  optionsSchema: schema,
  async run(ctx, { kind, via }) {
    const value = values[kind]();
    if (via === "state") {
      await ctx.node.set("v", value);
      return await ctx.node.get("v");
    }
    if (via === "caught") {
      // A refused write is a rejected promise, in a Worker as in-process: .then(ok, fail) sees it.
      const handled = await ctx.node.set("v", value).then(() => "written", (e) => "caught: " + e.message);
      await ctx.node.set("after", 1);
      return { handled, after: await ctx.node.get("after") };
    }
    if (via === "expireIn") {
      try {
        await ctx.node.set("e", 1, { expireIn: value });
        return "written";
      } catch (e) {
        return { refused: e.message };
      }
    }
    return value;
  },
};
`;

const dir = await Deno.makeTempDir({ prefix: "flowstate-node-values-" });
const nodePath = join(dir, "values.js");
await Deno.writeTextFile(nodePath, NODE);

async function outcome(trusted: boolean, kind: string, via: string) {
  await using rt = await openRuntime({
    config: {
      stores: { main: { plugin: "memory" } },
      nodes: { trusted: trusted ? [nodePath] : [] },
    },
    cwd: dir,
  });
  const run = await rt.runFlow({
    id: "values",
    nodes: [{ id: "n", type: nodePath, with: { kind, via } }],
  });
  const node = run.nodes.n;
  return { status: node.status, output: node.output ?? null, error: node.error ?? null };
}

for (const via of ["output", "state"]) {
  for (const kind of ["map", "set", "nan", "infinity", "fn", "date", "bigint"]) {
    Deno.test(`a sandboxed node's ${via} that is a ${kind} fails as it does in-process`, async () => {
      const inProcess = await outcome(true, kind, via);
      const sandboxed = await outcome(false, kind, via);
      assert.equal(inProcess.status, "failed", JSON.stringify(inProcess));
      assert.match(inProcess.error!, /JSON|plain object|finite/);
      if (via === "output") assert.deepEqual(sandboxed, inProcess);
      else {
        // A state write names the call in a Worker (`ctx.node.set(): …`), the store in-process
        // (`Cannot set: …`); the problem itself is worded the same.
        const problem = (error: string | null) => error?.replace(/^[^:]*: /, "");
        assert.deepEqual(
          { ...sandboxed, error: problem(sandboxed.error) },
          { ...inProcess, error: problem(inProcess.error) },
        );
        assert.match(sandboxed.error!, /^ctx\.node\.set\(\): /);
      }
    });
  }
  Deno.test(`a sandboxed node's plain JSON ${via} comes out unchanged`, async () => {
    const sandboxed = await outcome(false, "plain", via);
    assert.deepEqual(sandboxed, {
      status: "succeeded",
      output: { a: [1, "two", null, true] },
      error: null,
    });
    assert.deepEqual(await outcome(true, "plain", via), sandboxed);
  });
}

Deno.test("a sandboxed node's refused state write is a rejected promise, handled as it is in-process", async () => {
  for (const kind of ["map", "nan", "fn"]) {
    const inProcess = await outcome(true, kind, "caught");
    const sandboxed = await outcome(false, kind, "caught");
    assert.equal(sandboxed.status, "succeeded", JSON.stringify(sandboxed));
    const handled = (o: typeof sandboxed) => {
      const out = o.output as { handled: string; after: number };
      return { ...out, handled: out.handled.replace(/^caught: [^:]*: /, "caught: ") };
    };
    assert.deepEqual(handled(sandboxed), handled(inProcess));
    assert.match(handled(sandboxed).handled, /^caught: value\S* is /);
    assert.equal(handled(sandboxed).after, 1);
  }
});

Deno.test("a sandboxed node's refused expireIn names the value it was given, as in-process", async () => {
  for (const [kind, shown] of [["nan", "NaN"], ["inf", "Infinity"]]) {
    const inProcess = await outcome(true, kind, "expireIn");
    const sandboxed = await outcome(false, kind, "expireIn");
    assert.deepEqual(sandboxed, inProcess);
    assert.equal(
      (sandboxed.output as { refused: string }).refused,
      `Cannot set: expireIn must be a positive number of milliseconds (got ${shown})`,
    );
  }
});
