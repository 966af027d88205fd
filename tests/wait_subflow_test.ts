/**
 * A `wait` node inside a sub-flow takes the signals sent to its own sub-run
 * and those sent to its ancestors (the root run's id is the one a user
 * sees), oldest first across them; none is left behind after the run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { defineNode, openRuntime, type Runtime } from "../mod.ts";
import { cliCommand, withSandbox } from "./_cli_sandbox.ts";
import { Watched } from "./_watched.ts";

/** The keys left under the records' `signals` prefix. */
async function signalKeys(rt: Runtime): Promise<string[][]> {
  const store = await rt.store("main");
  const keys: string[][] = [];
  for await (const e of store.list({ prefix: ["flowstate", "signals"] })) keys.push([...e.key]);
  return keys;
}

/** A folder holding `files`, removed after `fn`. */
async function withFiles(
  files: Record<string, string>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  await withSandbox(async ({ dir }) => {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    await fn(dir);
  });
}

const SUB_WAIT = `id: sub
nodes:
  - id: approve
    type: wait
    with: { signal: approve, timeout: 10m }
outputs:
  by: "\${{ nodes.approve.output.by }}"
`;

const PARENT = `id: parent
nodes:
  - id: child
    type: flow
    with: { flow: ./sub.yaml }
outputs:
  by: "\${{ nodes.child.output.by }}"
`;

Deno.test("wait in a sub-flow: a signal sent to the root run's id reaches it", async () => {
  await withFiles({ "parent.yaml": PARENT, "sub.yaml": SUB_WAIT }, async (dir) => {
    await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
    let root: string | undefined;
    let resolveWaiting!: (sub: string) => void;
    const waiting = new Promise<string>((r) => resolveWaiting = r);
    const running = rt.runFlow(join(dir, "parent.yaml"), {
      onStart: (id) => root ??= id,
      onEvent: (e, run) => {
        if (e.type === "node.log" && e.message.startsWith("waiting for signal")) {
          resolveWaiting(run.id);
        }
      },
    });
    const sub = await waiting;
    assert.notEqual(sub, root);
    assert.equal((await rt.signalRun(root!, "approve", { by: "ada" })).kind, "stored");
    const run = await running;
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.equal(run.id, root);
    assert.deepEqual(run.outputs, { by: "ada" });
    assert.deepEqual(await signalKeys(rt), []);
  });
});

Deno.test("wait in a sub-flow: its own signals and its ancestors' are taken in the order sent", async () => {
  let rt!: Runtime;
  let root: string | undefined;
  // Sends, before any wait node waits: to the root, to the sub-run itself, to the root again
  // (so the wait nodes' timeouts are never reached: each finds its signal there).
  const send = defineNode({
    optionsSchema: z.object({}),
    async run(ctx) {
      assert.equal((await rt.signalRun(root!, "go", { n: 1 })).kind, "stored");
      assert.equal((await rt.signalRun(ctx.runId, "go", { n: 2 })).kind, "stored");
      assert.equal((await rt.signalRun(root!, "go", { n: 3 })).kind, "stored");
      assert.equal((await rt.signalRun(root!, "go", { n: 4 })).kind, "stored");
      return null;
    },
  });
  const files = {
    // Two levels deep: the root's signals reach a grandchild's wait nodes.
    "outer.yaml": `id: outer
nodes:
  - { id: mid, type: flow, with: { flow: ./mid.yaml } }
outputs:
  n: "\${{ nodes.mid.output.n }}"
`,
    "mid.yaml": `id: mid
nodes:
  - { id: inner, type: flow, with: { flow: ./inner.yaml } }
outputs:
  n: "\${{ nodes.inner.output }}"
`,
    "inner.yaml": `id: inner
nodes:
  - { id: send, type: signals.send }
  - { id: a, type: wait, needs: [send], with: { signal: go, timeout: 5s } }
  - { id: b, type: wait, needs: [a], with: { signal: go, timeout: 5s } }
  - { id: c, type: wait, needs: [b], with: { signal: go, timeout: 5s } }
outputs:
  a: "\${{ nodes.a.output.n }}"
  b: "\${{ nodes.b.output.n }}"
  c: "\${{ nodes.c.output.n }}"
`,
  };
  await withFiles(files, async (dir) => {
    await using opened = await openRuntime({
      config: { stores: { main: { plugin: "memory" } } },
      nodeTypes: { "signals.send": send },
    });
    rt = opened;
    const run = await rt.runFlow(join(dir, "outer.yaml"), { onStart: (id) => root ??= id });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.deepEqual(run.outputs, { n: { a: 1, b: 2, c: 3 } });
    // The fourth was never taken: it ended with the root run.
    assert.deepEqual(await signalKeys(rt), []);
  });
});

Deno.test("wait in a sub-flow: sending to the root run's id says which node waits for it", async () => {
  await withFiles({ "parent.yaml": PARENT, "sub.yaml": SUB_WAIT }, async (dir) => {
    await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
    let root: string | undefined;
    let resolveWaiting!: () => void;
    const waiting = new Promise<void>((r) => resolveWaiting = r);
    const running = rt.runFlow(join(dir, "parent.yaml"), {
      onStart: (id) => root ??= id,
      onEvent: (e) => {
        if (e.type === "node.log" && e.message.startsWith("waiting for signal")) resolveWaiting();
      },
    });
    await waiting;
    // The waiting line is recorded with the sub-run's events before the answer is read.
    const records = await rt.records();
    for (;;) {
      const subs = (await records.listRunSummaries({ status: "running" })).runs.filter((r) =>
        r.parentRunId === root
      );
      if (
        subs.length === 1 &&
        (await records.getEvents(subs[0].id)).some((e) => e.type === "node.log")
      ) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const sent = await rt.signalRun(root!, "approve", { by: "ada" });
    assert.equal(sent.kind === "stored" && sent.waiting.join(), "approve");
    assert.equal((await running).status, "succeeded");
  });
});

Deno.test("wait in a sub-flow (CLI): runs show of the root run says the sub-run's node waits; runs signal to the root run reaches it", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "parent.yaml"), PARENT);
    await Deno.writeTextFile(join(dir, "sub.yaml"), SUB_WAIT);
    await using runner = new Watched(
      cliCommand(dir, ["run", "parent.yaml"], { home: join(dir, "home") }),
    );
    const waitingLine = /waiting for signal "approve" \(flowstate runs signal (\w+) approve\)/;
    await runner.until(waitingLine, "stderr");
    const sub = waitingLine.exec(runner.stderr)![1];
    const root = /^parent: +(\w+)$/m.exec((await run("runs", "show", sub)).stdout)?.[1];
    assert.ok(root !== undefined);
    // Once the sub-run's events are recorded, runs show of the root says what waits.
    await using follower = new Watched(
      cliCommand(dir, ["runs", "show", sub, "--follow"], { home: join(dir, "home") }),
    );
    await follower.until(/log: waiting for signal "approve"/);
    const shown = await run("runs", "show", root);
    assert.equal(shown.code, 0, shown.stderr);
    assert.ok(
      shown.stdout.includes(
        `waiting:  node approve of sub-run ${sub} waits for signal approve: flowstate runs signal ${root} approve [--data JSON]`,
      ),
      shown.stdout,
    );
    const sent = await run("runs", "signal", root, "approve", "--data", '{"by":"ada"}', "--json");
    assert.equal(sent.code, 0, sent.stderr);
    assert.deepEqual(JSON.parse(sent.stdout), {
      runId: root,
      flowId: "parent",
      signal: "approve",
      waiting: ["approve"],
      // The sub-run (of a file) runs: its wait node counts.
      expected: true,
      waitSignals: ["approve"],
    });
    assert.equal(await runner.code(), 0, runner.stderr);
    assert.equal(await follower.code(), 0, follower.stderr);
    const ended = JSON.parse((await run("runs", "show", root, "--json")).stdout);
    assert.equal(ended.run.status, "succeeded");
    assert.deepEqual(ended.run.outputs, { by: "ada" });
  });
});
