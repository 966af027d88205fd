/**
 * What a node read and wrote (the `reads`/`writes` of its `node.end` event),
 * and the `state.changed` events of the runtime's event stream, through the
 * public surface: `openRuntime().runFlow`, `rt.store()`, `rt.events()` and the
 * CLI (`flowstate run`, `flowstate runs show`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type RunEvent, type RuntimeEvent } from "../mod.ts";
import { MAX_STATE_ACCESS, type NodeEndEvent } from "../records.ts";
import { withSandbox } from "./_cli_sandbox.ts";

const MOD = JSON.stringify(new URL("../mod.ts", import.meta.url).href);

function ends(events: readonly RunEvent[]): Map<string, NodeEndEvent> {
  const out = new Map<string, NodeEndEvent>();
  for (const e of events) if (e.type === "node.end") out.set(e.node, e);
  return out;
}

/** A node module that works on state through `ctx`, in `dir`. */
async function writeModule(dir: string, name: string, body: string): Promise<void> {
  await Deno.writeTextFile(
    join(dir, name),
    `import { defineNode } from ${MOD};
import { z } from "zod";
export default defineNode({
  optionsSchema: z.object({}).passthrough(),
  async run(ctx) {
${body}
  },
});
`,
  );
}

const STATE_WORK = `
    await ctx.global.get("g");
    await ctx.node.set(["items", "a"], 1);
    await ctx.node.set(["items", "b"], 2);
    await ctx.node.set(["items", "a"], 3);
    await ctx.node.keys({ prefix: "items" });
    await ctx.flow.entries();
    await ctx.flow.delete("absent");
    await ctx.flow.set("seen", true, { store: "other" });
    return null;`;

Deno.test("a node's reads and writes are in its node.end event, per scope, once each, in first-use order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeModule(dir, "work.ts", STATE_WORK);
    await using rt = await openRuntime({
      config: {
        stores: { main: { plugin: "memory" }, other: { plugin: "memory" } },
        nodes: { trusted: ["./work.ts"] },
      },
      cwd: dir,
    });
    const run = await rt.runFlow({
      id: "access",
      nodes: [
        { id: "setter", type: "state.set", with: { key: ["user", "ada"], value: 1 } },
        { id: "counter", type: "state.increment", with: { scope: "global", key: "runs" } },
        { id: "reader", type: "state.get", needs: ["setter"], with: { key: ["user", "ada"] } },
        { id: "lister", type: "state.list", with: { scope: "global" } },
        { id: "deleter", type: "state.delete", needs: ["reader"], with: { key: ["user", "ada"] } },
        { id: "quiet", type: "transform", with: { value: 1 } },
        { id: "work", type: "./work.ts" },
      ],
    });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const byNode = ends(await (await rt.records()).getEvents(run.id));
    const pick = (id: string) => {
      const e = byNode.get(id)!;
      return {
        reads: e.reads,
        writes: e.writes,
        readsTruncated: e.readsTruncated,
        writesTruncated: e.writesTruncated,
      };
    };
    const none = { readsTruncated: undefined, writesTruncated: undefined };
    assert.deepEqual(pick("setter"), {
      ...none,
      reads: undefined,
      writes: [{ scope: "flow", key: ["user", "ada"] }],
    });
    assert.deepEqual(pick("counter"), {
      ...none,
      reads: [{ scope: "global", key: ["runs"] }],
      writes: [{ scope: "global", key: ["runs"] }],
    });
    assert.deepEqual(pick("reader"), {
      ...none,
      reads: [{ scope: "flow", key: ["user", "ada"] }],
      writes: undefined,
    });
    assert.deepEqual(pick("lister"), {
      ...none,
      reads: [{ scope: "global", key: [], prefix: true }],
      writes: undefined,
    });
    assert.deepEqual(pick("deleter").writes, [{ scope: "flow", key: ["user", "ada"] }]);
    assert.deepEqual(pick("quiet"), { ...none, reads: undefined, writes: undefined });
    assert.ok(!("reads" in byNode.get("quiet")!), "no empty lists in the record");
    assert.deepEqual(pick("work"), {
      ...none,
      reads: [
        { scope: "global", key: ["g"] },
        { scope: "node", key: ["items"], prefix: true },
        { scope: "flow", key: [], prefix: true },
      ],
      // The delete of an absent key wrote nothing; the write to "other" names its store.
      writes: [
        { scope: "node", key: ["items", "a"] },
        { scope: "node", key: ["items", "b"] },
        { scope: "flow", key: ["seen"], store: "other" },
      ],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reads and writes stop at MAX_STATE_ACCESS distinct keys each, with a truncated flag; retries add up", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeModule(
      dir,
      "loop.ts",
      `
    for (let i = 0; i < 250; i++) await ctx.flow.set(["k", String(i)], i);
    for (let i = 0; i < 250; i++) await ctx.flow.get(["k", String(i % 50)]);
    if (ctx.attempt === 1) {
      await ctx.flow.set("first-attempt", true);
      throw new Error("again");
    }
    return null;`,
    );
    await using rt = await openRuntime({
      config: { stores: { main: { plugin: "memory" } }, nodes: { trusted: ["./loop.ts"] } },
      cwd: dir,
    });
    const run = await rt.runFlow({
      id: "loop",
      nodes: [{ id: "loop", type: "./loop.ts", retry: { attempts: 2, delay: "1ms" } }],
    });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const end = ends(await (await rt.records()).getEvents(run.id)).get("loop")!;
    assert.equal(end.writes?.length, MAX_STATE_ACCESS);
    assert.equal(end.writesTruncated, true);
    assert.deepEqual(end.writes?.slice(0, 2), [
      { scope: "flow", key: ["k", "0"] },
      { scope: "flow", key: ["k", "1"] },
    ]);
    // 50 distinct keys read, many times each, over two attempts: no cut.
    assert.equal(end.reads?.length, 50);
    assert.equal(end.readsTruncated, undefined);
    // The first attempt's write is not among the first 100 (the cut came first).
    assert.ok(!end.writes!.some((w) => w.key[0] === "first-attempt"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a node's keys are each listed once, whether it touched a few or many before repeating one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeModule(
      dir,
      "repeat.ts",
      `
    for (const n of [1, 2, 3, 6]) {
      for (let i = 0; i < n; i++) await ctx.flow.set(["r" + n, String(i)], i);
      await ctx.flow.set(["r" + n, "0"], -1);
      await ctx.flow.set(["r" + n, String(n - 1)], -1);
    }
    // The same key with another store, or as a listing, is another access.
    await ctx.flow.get(["r1", "0"]);
    await ctx.flow.get(["r1", "0"], { store: "other" });
    await ctx.flow.keys({ prefix: ["r1", "0"] });
    await ctx.flow.get(["r1", "0"]);
    await ctx.flow.keys({ prefix: ["r1", "0"] });
    return null;`,
    );
    await using rt = await openRuntime({
      config: {
        stores: { main: { plugin: "memory" }, other: { plugin: "memory" } },
        nodes: { trusted: ["./repeat.ts"] },
      },
      cwd: dir,
    });
    const run = await rt.runFlow({ id: "repeat", nodes: [{ id: "r", type: "./repeat.ts" }] });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const end = ends(await (await rt.records()).getEvents(run.id)).get("r")!;
    const written = [1, 2, 3, 6].flatMap((n) =>
      Array.from({ length: n }, (_, i) => ({ scope: "flow", key: [`r${n}`, String(i)] }))
    );
    assert.deepEqual(end.writes, written);
    assert.deepEqual(end.reads, [
      { scope: "flow", key: ["r1", "0"] },
      { scope: "flow", key: ["r1", "0"], store: "other" },
      { scope: "flow", key: ["r1", "0"], prefix: true },
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sandboxed (Worker) node's reads and writes are recorded and reported like a trusted one's", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeModule(dir, "work.ts", STATE_WORK);
    await using rt = await openRuntime({
      config: { stores: { main: { plugin: "memory" }, other: { plugin: "memory" } } },
      cwd: dir,
    });
    const changes: RuntimeEvent[] = [];
    const ac = new AbortController();
    const watching = (async () => {
      for await (const e of rt.events({ signal: ac.signal })) {
        if (e.type === "state.changed") changes.push(e);
      }
    })();
    const run = await rt.runFlow({ id: "sandboxed", nodes: [{ id: "work", type: "./work.ts" }] });
    ac.abort();
    await watching;
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const end = ends(await (await rt.records()).getEvents(run.id)).get("work")!;
    assert.deepEqual(end.writes, [
      { scope: "node", key: ["items", "a"] },
      { scope: "node", key: ["items", "b"] },
      { scope: "flow", key: ["seen"], store: "other" },
    ]);
    assert.equal(end.reads?.length, 3);
    assert.deepEqual(
      changes.map((c) => c.type === "state.changed" && [c.store, c.key.join("/"), c.nodeId]),
      [
        ["main", "node/sandboxed/work/items/a", "work"],
        ["main", "node/sandboxed/work/items/b", "work"],
        ["main", "node/sandboxed/work/items/a", "work"],
        ["other", "flow/sandboxed/seen", "work"],
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("state.changed: flow nodes' writes with run, flow and node; rt.store() writes; not Flowstate's own records", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const store = await rt.store();
  // Nobody listens: nothing is emitted (the stream's numbering does not move).
  await store.set(["before"], 1);
  await rt.runFlow({
    id: "warmup",
    nodes: [{ id: "n", type: "state.set", with: { key: "k", value: 0 } }],
  });

  const events: RuntimeEvent[] = [];
  const ac = new AbortController();
  const watching = (async () => {
    for await (const e of rt.events({ signal: ac.signal })) events.push(e);
  })();
  await store.set(["direct", "a"], 1);
  const run = await rt.runFlow({
    id: "writes",
    nodes: [
      { id: "inc", type: "state.increment", with: { key: "count", by: 2 } },
      { id: "del", type: "state.delete", needs: ["inc"], with: { key: "count" } },
      { id: "del-absent", type: "state.delete", needs: ["del"], with: { key: "count" } },
    ],
  });
  assert.equal(run.status, "succeeded");
  assert.equal(await store.delete(["direct", "a"]), true);
  const commit = await store.atomic().set(["atomic", "x"], 1).delete(["atomic", "y"]).commit();
  assert.ok(commit.ok);
  const conflict = await store.atomic().check(["atomic", "x"], null).set(["atomic", "z"], 1)
    .commit();
  assert.equal(conflict.ok, false);
  await store.clear(["atomic"]);
  ac.abort();
  await watching;

  const changed = events.filter((e) => e.type === "state.changed");
  assert.equal(events[0].seq, 1, "nothing was numbered while nobody listened");
  assert.deepEqual(
    changed.map(({ seq: _s, at, ...rest }) => (assert.equal(typeof at, "number"), rest)),
    [
      {
        type: "state.changed",
        store: "main",
        key: ["direct", "a"],
        op: "set",
        version: (changed[0] as { version: string }).version,
      },
      {
        type: "state.changed",
        store: "main",
        key: ["flow", "writes", "count"],
        op: "set",
        version: (changed[1] as { version: string }).version,
        runId: run.id,
        flowId: "writes",
        nodeId: "inc",
      },
      {
        type: "state.changed",
        store: "main",
        key: ["flow", "writes", "count"],
        op: "delete",
        runId: run.id,
        flowId: "writes",
        nodeId: "del",
      },
      { type: "state.changed", store: "main", key: ["direct", "a"], op: "delete" },
      {
        type: "state.changed",
        store: "main",
        key: ["atomic", "x"],
        op: "set",
        version: commit.ok ? commit.version : "",
      },
      { type: "state.changed", store: "main", key: ["atomic", "y"], op: "delete" },
      { type: "state.changed", store: "main", key: ["atomic"], op: "delete", prefix: true },
    ],
  );
  assert.equal(typeof (changed[0] as { version?: string }).version, "string");
  // The run itself was recorded (records writes) without a state.changed for them.
  assert.ok(!changed.some((e) => e.type === "state.changed" && e.key[0] === "flowstate"));
  // The events of the run are in order around its writes.
  const types = events.map((e) => e.type === "node" ? `node:${e.event.type}` : e.type);
  assert.ok(types.indexOf("run.started") < types.indexOf("run.ended"));
});

Deno.test("flowstate runs show prints reads and writes per node; --json has them in the events", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flow.yaml"),
      `id: visits
nodes:
  - id: count
    type: state.increment
    with: { key: [visits, home] }
  - id: remember
    type: state.set
    needs: [count]
    with: { scope: global, key: last, value: "\${{ nodes.count.output }}" }
  - id: list
    type: state.list
    needs: [remember]
    with: { prefix: visits }
`,
    );
    const ran = await run("run", "flow.yaml", "--json");
    assert.equal(ran.code, 0, ran.stderr);
    const id = JSON.parse(ran.stdout).id as string;
    const shown = await run("runs", "show", id);
    assert.equal(shown.code, 0, shown.stderr);
    const block = (node: string) => {
      const start = shown.stdout.indexOf(`\n  ${node}:`);
      assert.notEqual(start, -1, shown.stdout);
      const next = shown.stdout.slice(start + 1).search(/\n {2}\S/);
      return shown.stdout.slice(start + 1, next === -1 ? undefined : start + 1 + next);
    };
    assert.match(block("count"), /^ {4}reads: {2}flow:visits\/home$/m);
    assert.match(block("count"), /^ {4}writes: flow:visits\/home$/m);
    assert.doesNotMatch(block("remember"), /reads:/);
    assert.match(block("remember"), /^ {4}writes: global:last$/m);
    assert.match(block("list"), /^ {4}reads: {2}flow:visits\/\*$/m);

    const full = await run("runs", "show", id, "--json");
    assert.equal(full.code, 0, full.stderr);
    const events = JSON.parse(full.stdout).events as RunEvent[];
    assert.deepEqual(ends(events).get("count")?.writes, [{
      scope: "flow",
      key: ["visits", "home"],
    }]);
  });
});
