/**
 * The `wait` node type and signals, through mod.ts, the CLI (subprocesses,
 * on SQLite, and on PostgreSQL when FLOWSTATE_TEST_POSTGRES_URL is set) and
 * the HTTP API: a run waits until another process sends its signal, with
 * data a later node reads; a signal sent before the node waits is kept for
 * it (oldest first, one a waiting); the node's `timeout`; a cancel while it
 * waits; the refusals (an ended or unknown run, a bad name, data that is not
 * JSON or too big); `validate`'s errors at their place; no signal outlives
 * its run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { defineNode, openRuntime, type RunEvent, type Runtime } from "../mod.ts";
import { cliCommand, type ProjectCli, runCli } from "./_cli_sandbox.ts";
import { Watched } from "./_watched.ts";
import { documented, withServed } from "./_serve.ts";

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") || undefined;

const DEPLOY = `id: deploy
inputs:
  version: { type: string }
nodes:
  - id: approve
    type: wait
    with:
      signal: approve
      timeout: 10m
      message: "Deploy \${{ inputs.version }}?"
  - id: after
    type: log
    needs: [approve]
    with: { message: "approved by \${{ nodes.approve.output.by }}" }
outputs:
  by: "\${{ nodes.approve.output.by }}"
`;

/** A runtime on a memory store, closed after `fn`. */
async function withRuntime(
  fn: (rt: Runtime) => Promise<void>,
  nodeTypes?: Parameters<typeof openRuntime>[0] extends infer O
    ? O extends { nodeTypes?: infer N } ? N : never
    : never,
): Promise<void> {
  const rt = await openRuntime({
    config: { stores: { main: { plugin: "memory" } } },
    ...(nodeTypes === undefined ? {} : { nodeTypes }),
  });
  try {
    await fn(rt);
  } finally {
    await rt.close();
  }
}

/** Resolves the run's id once one of its `wait` nodes logs that it waits. */
function onWaiting(): {
  onEvent: (e: RunEvent, run: { id: string }) => void;
  waiting: Promise<string>;
} {
  let resolve!: (id: string) => void;
  const waiting = new Promise<string>((r) => resolve = r);
  return {
    waiting,
    onEvent: (e, run) => {
      if (e.type === "node.log" && e.message.startsWith("waiting for signal")) resolve(run.id);
    },
  };
}

/** The keys left under the records' `signals` prefix. */
async function signalKeys(rt: Runtime): Promise<string[][]> {
  const store = await rt.store("main");
  const keys: string[][] = [];
  for await (const e of store.list({ prefix: ["flowstate", "signals"] })) keys.push([...e.key]);
  return keys;
}

Deno.test("wait (mod.ts): a run waits for its signal; the data is the node's output, read downstream", async () => {
  await withRuntime(async (rt) => {
    const flow = {
      id: "deploy",
      nodes: [
        { id: "approve", type: "wait", with: { signal: "approve", message: "ok?" } },
        {
          id: "after",
          type: "transform",
          needs: ["approve"],
          with: { value: "${{ nodes.approve.output.by }}" },
        },
      ],
    };
    const w = onWaiting();
    const running = rt.runFlow(flow, { onEvent: w.onEvent });
    const id = await w.waiting;
    assert.equal((await (await rt.records()).getRun(id))?.status, "running");
    const sent = await rt.signalRun(id, "approve", { by: "ada" });
    assert.equal(sent.kind, "stored");
    const run = await running;
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.deepEqual(run.nodes.approve.output, { by: "ada" });
    assert.equal(run.nodes.after.output, "ada");
    const events = await (await rt.records()).getEvents(run.id);
    const line = events.find((e) => e.type === "node.log" && e.node === "approve");
    assert.equal(
      line?.type === "node.log" && line.message,
      `waiting for signal "approve" (flowstate runs signal ${run.id} approve): ok?`,
    );
    // Ended: refused, nothing kept.
    assert.equal((await rt.signalRun(run.id, "approve")).kind, "ended");
    assert.deepEqual(await signalKeys(rt), []);
  });
});

Deno.test("wait (mod.ts): signals sent before the node waits are kept, taken oldest first, one a waiting; the rest go with the run", async () => {
  let rt!: Runtime;
  // A node of the program that sends the run's signals before any wait node waits.
  const send = defineNode({
    optionsSchema: z.object({}),
    async run(ctx) {
      for (const n of [1, 2, 3]) {
        assert.equal((await rt.signalRun(ctx.runId, "go", { n })).kind, "stored");
      }
      // Without data: null.
      await rt.signalRun(ctx.runId, "bare");
      return null;
    },
  });
  await withRuntime(async (opened) => {
    rt = opened;
    const run = await rt.runFlow({
      id: "early",
      nodes: [
        { id: "send", type: "signals.send" },
        { id: "a", type: "wait", needs: ["send"], with: { signal: "go" } },
        { id: "b", type: "wait", needs: ["a"], with: { signal: "go" } },
        { id: "c", type: "wait", needs: ["send"], with: { signal: "bare" } },
      ],
    });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.deepEqual(run.nodes.a.output, { n: 1 });
    assert.deepEqual(run.nodes.b.output, { n: 2 });
    assert.equal(run.nodes.c.output, null);
    // The third "go" was never taken: it ended with the run.
    assert.deepEqual(await signalKeys(rt), []);
  }, { "signals.send": send });
});

Deno.test("wait (mod.ts): no signal within timeout fails the node with a clear error; on_failure and continueOnError apply", async () => {
  await withRuntime(async (rt) => {
    const run = await rt.runFlow({
      id: "late",
      nodes: [
        { id: "approve", type: "wait", with: { signal: "approve", timeout: "20ms" } },
        { id: "tell", type: "log", when: "on_failure", with: { message: "nobody approved" } },
      ],
    });
    assert.equal(run.status, "failed");
    assert.equal(run.nodes.approve.status, "failed");
    assert.match(
      run.nodes.approve.error ?? "",
      new RegExp(
        `^no signal "approve" within 20ms; send it with: flowstate runs signal ${run.id} approve$`,
      ),
    );
    assert.equal(run.nodes.tell.status, "succeeded");
    const goesOn = await rt.runFlow({
      id: "goes-on",
      nodes: [
        { id: "approve", type: "wait", continueOnError: true, with: { signal: "ok", timeout: 1 } },
        { id: "next", type: "transform", needs: ["approve"], with: { value: 1 } },
      ],
    });
    assert.equal(goesOn.status, "succeeded");
    assert.equal(goesOn.nodes.approve.status, "failed");
    assert.match(goesOn.nodes.approve.error ?? "", /^no signal "ok" within 1ms/);
  });
});

Deno.test("wait (mod.ts): a cancel stops a waiting node at once, as does the run's timeout", async () => {
  await withRuntime(async (rt) => {
    const controller = new AbortController();
    const w = onWaiting();
    const running = rt.runFlow(
      { id: "c", nodes: [{ id: "approve", type: "wait", with: { signal: "approve" } }] },
      { signal: controller.signal, onEvent: w.onEvent },
    );
    await w.waiting;
    controller.abort();
    const run = await running;
    assert.equal(run.status, "cancelled");
    assert.equal(run.nodes.approve.status, "cancelled");
    const timed = await rt.runFlow({
      id: "t",
      timeout: "30ms",
      nodes: [{ id: "approve", type: "wait", with: { signal: "approve" } }],
    });
    assert.equal(timed.status, "timed-out");
  });
});

Deno.test("wait (mod.ts): refusals: an unknown run, a bad name, data that is not JSON or over 64 KiB; nothing stored", async () => {
  await withRuntime(async (rt) => {
    const w = onWaiting();
    const controller = new AbortController();
    const running = rt.runFlow(
      { id: "r", nodes: [{ id: "approve", type: "wait", with: { signal: "approve" } }] },
      { signal: controller.signal, onEvent: w.onEvent },
    );
    const id = await w.waiting;
    assert.deepEqual(await rt.signalRun("0mxd1s7k7wtv6pq24v8y", "approve"), { kind: "unknown" });
    await assert.rejects(
      () => rt.signalRun(id, "no way"),
      (e: Error) =>
        e instanceof TypeError &&
        /"no way" is not a signal name: use 1 to 64 letters, digits, _ and -/.test(e.message),
    );
    await assert.rejects(
      () => rt.signalRun(id, "approve", { n: 1n }),
      (e: Error) => e instanceof TypeError && /the signal's data is not JSON/.test(e.message),
    );
    await assert.rejects(
      () => rt.signalRun(id, "approve", () => 1),
      (e: Error) => e instanceof TypeError && /the signal's data is not JSON/.test(e.message),
    );
    await assert.rejects(
      () => rt.signalRun(id, "approve", "x".repeat(70_000)),
      (e: Error) =>
        e instanceof TypeError &&
        /takes 70002 bytes as JSON, over the limit of 65536 \(64 KiB\)/.test(e.message),
    );
    assert.deepEqual(await signalKeys(rt), []);
    controller.abort();
    assert.equal((await running).status, "cancelled");
  });
});

Deno.test("wait (mod.ts): a queued run takes signals; deleting it (retention) deletes them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-wait-" });
  try {
    await Deno.writeTextFile(
      join(dir, "w.flow.yaml"),
      "id: w\nnodes:\n  - { id: a, type: wait, with: { signal: go } }\n",
    );
    const rt = await openRuntime({ cwd: dir, config: { stores: { main: { plugin: "memory" } } } });
    try {
      const { runId } = await rt.enqueue("./w.flow.yaml", { delay: "1h" });
      const sent = await rt.signalRun(runId, "go", { early: true });
      assert.equal(sent.kind, "stored");
      assert.deepEqual(sent.kind === "stored" && sent.waiting, []);
      assert.equal((await signalKeys(rt)).length, 1);
      assert.equal(await (await rt.records()).deleteRun(runId), true);
      assert.deepEqual(await signalKeys(rt), []);
    } finally {
      await rt.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("wait: validate refuses a templated or bad signal, forEach, permissions, a bad timeout, at their place", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-wait-" });
  try {
    await Deno.writeTextFile(
      join(dir, "bad.flow.yaml"),
      `id: bad
inputs:
  x: { type: string }
nodes:
  - id: a
    type: wait
    with:
      signal: "\${{ inputs.x }}"
  - id: b
    type: wait
    forEach: [1, 2]
    with: { signal: ok }
  - id: c
    type: wait
    permissions: { net: [example.com] }
    with: { signal: ok }
  - id: d
    type: wait
    with: { signal: "no way", timeout: 5 parsecs, mesage: hi }
`,
    );
    const r = await runCli(dir, ["validate", "bad.flow.yaml"]);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split("\n");
    const expected = [
      /^error: bad\.flow\.yaml:8:15: nodes\[0\]\.with\.signal: wait: signal must be a literal name \(like approve\), not a template/,
      /^error: bad\.flow\.yaml:11:14: nodes\[1\]\.forEach: a wait node cannot have forEach: .*remove forEach/,
      /^error: bad\.flow\.yaml:15:18: nodes\[2\]\.permissions: built-in node type "wait" runs in-process/,
      /^error: bad\.flow\.yaml:19:21: nodes\[3\]\.with\.signal: wait: signal must be a literal name of 1 to 64 letters, digits, _ and -/,
      /^error: bad\.flow\.yaml:19:40: nodes\[3\]\.with\.timeout: wait: expected a duration/,
      /^error: bad\.flow\.yaml:19:51: nodes\[3\]\.with\.mesage: unknown option "mesage" for wait \(did you mean "message"\?\)/,
    ];
    for (const pattern of expected) {
      assert.ok(lines.some((l) => pattern.test(l)), `no line matches ${pattern}:\n${r.stderr}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const BACKENDS: { name: string; stores: () => string; ignore: boolean }[] = [
  { name: "sqlite", stores: () => "", ignore: false },
  {
    name: "postgres",
    stores: () =>
      `stores:\n  main: { plugin: postgres, url: "${PG_URL}", table: wait_${
        crypto.randomUUID().replaceAll("-", "").slice(0, 12)
      } }\n`,
    ignore: PG_URL === undefined,
  },
];

/** A project with flows/deploy.flow.yaml: `run` runs the CLI there, `spawn` watches one. */
async function withProject(
  stores: string,
  fn: (p: { run: ProjectCli; spawn: (...args: string[]) => Watched }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-wait-" });
  try {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "deploy.flow.yaml"), DEPLOY);
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), `${stores}flows: [./flows]\n`);
    await fn({
      run: (...args) => runCli(dir, args),
      spawn: (...args) => new Watched(cliCommand(dir, args)),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const WAITING =
  /waiting for signal "approve" \(flowstate runs signal (\w+) approve\): Deploy 1\.2\?/;

/** The id of the run `runner` (`flowstate run`) runs, once it says its node waits. */
async function waitingRun(runner: Watched): Promise<string> {
  await runner.until(WAITING, "stderr");
  return WAITING.exec(runner.stderr)![1];
}

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `wait (CLI, ${backend.name}): flowstate run waits; runs signal from another process sends data; refusals exit 1 or 2`,
    ignore: backend.ignore,
    async fn() {
      await withProject(backend.stores(), async (p) => {
        await using runner = p.spawn("run", "flows/deploy.flow.yaml", "-i", "version=1.2");
        const id = await waitingRun(runner);
        // Once its events are recorded (runs show --follow prints them), the sender sees it waits.
        await using follower = p.spawn("runs", "show", id, "--follow");
        await follower.until(/log: waiting for signal "approve"/);
        // runs show says what it waits for, and how to send it.
        const waitingShow = await p.run("runs", "show", id);
        assert.equal(waitingShow.code, 0, waitingShow.stderr);
        assert.ok(
          waitingShow.stdout.includes(
            `waiting:  node approve waits for signal approve (Deploy 1.2?): flowstate runs signal ${id} approve [--data JSON]`,
          ),
          waitingShow.stdout,
        );
        // Bad input: exit 2, nothing sent (the run still waits).
        const badName = await p.run("runs", "signal", id, "no way");
        assert.equal(badName.code, 2);
        assert.match(badName.stderr, /"no way" is not a signal name/);
        const badJson = await p.run("runs", "signal", id, "approve", "--data", '{"by":');
        assert.equal(badJson.code, 2);
        assert.match(badJson.stderr, /--data is not valid JSON: .*position 6/);
        const big = await p.run(
          "runs",
          "signal",
          id,
          "approve",
          "--data",
          `"${"x".repeat(70_000)}"`,
        );
        assert.equal(big.code, 2);
        assert.match(big.stderr, /over the limit of 65536 \(64 KiB\)/);
        const sent = await p.run(
          "runs",
          "signal",
          id,
          "approve",
          "--data",
          '{"by":"ada"}',
          "--json",
        );
        assert.equal(sent.code, 0, sent.stderr);
        assert.deepEqual(JSON.parse(sent.stdout), {
          runId: id,
          flowId: "deploy",
          signal: "approve",
          waiting: ["approve"],
          expected: true,
          waitSignals: ["approve"],
        });
        assert.equal(await runner.code(), 0, runner.stderr);
        assert.match(runner.stderr, /\[after\] approved by ada/);
        assert.equal(await follower.code(), 0, follower.stderr);
        const shown = JSON.parse((await p.run("runs", "show", id, "--json")).stdout);
        assert.equal(shown.run.status, "succeeded");
        assert.deepEqual(shown.run.outputs, { by: "ada" });
        assert.deepEqual(shown.run.nodes.approve.output, { by: "ada" });
        // Ended, unknown: exit 1.
        const ended = await p.run("runs", "signal", id, "approve");
        assert.equal(ended.code, 1);
        assert.match(ended.stderr, /already ended \(succeeded\): signal approve not sent/);
        const unknown = await p.run("runs", "signal", "0mxd1s7k7wtv6pq24v8y", "approve");
        assert.equal(unknown.code, 1);
        assert.match(unknown.stderr, /unknown run 0mxd1s7k7wtv6pq24v8y: nothing sent/);
      });
    },
  });

  Deno.test({
    name: `wait (CLI, ${backend.name}): runs cancel from another process stops a waiting run`,
    ignore: backend.ignore,
    async fn() {
      await withProject(backend.stores(), async (p) => {
        await using runner = p.spawn("run", "flows/deploy.flow.yaml", "-i", "version=1.2");
        const id = await waitingRun(runner);
        const cancel = await p.run("runs", "cancel", id);
        assert.equal(cancel.code, 0, cancel.stderr);
        assert.equal(await runner.code(), 1);
        const shown = JSON.parse((await p.run("runs", "show", id, "--json")).stdout);
        assert.equal(shown.run.status, "cancelled");
        assert.equal(shown.run.nodes.approve.status, "cancelled");
      });
    },
  });
}

type Refused = { error: { code: string; message: string } };

Deno.test("wait (API): POST /api/runs/{id}/signals/{name} sends the signal; 400, 404, 409 refusals", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, runtime }) => {
    const w = onWaiting();
    const running = runtime.runFlow({
      id: "deploy",
      nodes: [{ id: "approve", type: "wait", with: { signal: "approve" } }],
    }, { onEvent: w.onEvent });
    const id = await w.waiting;
    const post = (path: string, body?: unknown) =>
      request(path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const pattern = "/api/runs/{id}/signals/{name}";
    const badName = await post(`/api/runs/${id}/signals/no%20way`, {});
    assert.equal(badName.status, 400);
    assert.match(
      (await documented<Refused>("POST", pattern, badName)).error.message,
      /is not a signal name/,
    );
    const unknownField = await post(`/api/runs/${id}/signals/approve`, { date: 1 });
    assert.equal(unknownField.status, 400);
    assert.match(
      (await documented<Refused>("POST", pattern, unknownField)).error.message,
      /date: unknown field \(did you mean "data"\?\)/,
    );
    const big = await post(`/api/runs/${id}/signals/approve`, { data: "x".repeat(70_000) });
    assert.equal(big.status, 400);
    assert.match(
      (await documented<Refused>("POST", pattern, big)).error.message,
      /over the limit of 65536/,
    );
    const sent = await post(`/api/runs/${id}/signals/approve`, { data: { ok: true } });
    assert.equal(sent.status, 202);
    const body = await documented<{ runId: string; waiting: string[] }>("POST", pattern, sent);
    assert.equal(body.runId, id);
    const run = await running;
    assert.equal(run.status, "succeeded");
    assert.deepEqual(run.nodes.approve.output, { ok: true });
    const ended = await post(`/api/runs/${id}/signals/approve`);
    assert.equal(ended.status, 409);
    assert.match(
      (await documented<Refused>("POST", pattern, ended)).error.message,
      /already ended \(succeeded\)/,
    );
    const unknown = await post("/api/runs/0mxd1s7k7wtv6pq24v8y/signals/approve", {});
    assert.equal(unknown.status, 404);
    await documented("POST", pattern, unknown);
  });
});
