/**
 * Which nodes are shown waiting for a signal: only the `wait` nodes of the
 * flow version a run ran. A `log` node printing the very text of a waiting
 * line, or an `exec` node's program printing it to stderr and running on, is
 * not one: through mod.ts (`Records.waitingNodes`, `signalRun`'s answer), the
 * HTTP API (`GET /api/runs/{id}`'s `waiting`, with the waiting nodes of its
 * running sub-runs) and the CLI (`runs show`, `runs signal`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { RunEvent } from "../mod.ts";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { Watched } from "./_watched.ts";
import { documented, eventually, withServed } from "./_serve.ts";

/** A message that is, to the letter, a `wait` node's waiting line. */
const FAKE = 'waiting for signal "fake" (flowstate runs signal 0mxd1s7k7wtv6pq24v8y fake): no';

/** The script of an `exec` node that prints `$1` to stderr, then runs until file `$2` exists. */
const HOLD = 'echo "$1" >&2; while [ ! -e "$2" ]; do sleep 0.05; done';

/** An `exec` node that prints {@linkcode FAKE} to stderr and runs on until file `go` exists. */
function liar(go: string) {
  return {
    id: "liar",
    type: "exec",
    permissions: { run: ["sh"] },
    with: { command: "sh", args: ["-c", HOLD, "sh", FAKE, go] },
  };
}

type Waiting = { runId: string; node: string; signal: string; message?: string; since: number };
type Detail = { run: { status: string }; waiting?: Waiting[] };

/** Resolves the id of the run whose node `node` logs a line. */
function onLog(node: string): {
  onEvent: (e: RunEvent, run: { id: string }) => void;
  logged: Promise<string>;
} {
  let resolve!: (id: string) => void;
  const logged = new Promise<string>((r) => resolve = r);
  return {
    logged,
    onEvent: (e, run) => {
      if (e.type === "node.log" && e.node === node) resolve(run.id);
    },
  };
}

/** Whether the records hold a waiting line (real or not) of each of `nodes` in run `id`. */
async function linesRecorded(
  records: { getEvents(id: string): Promise<RunEvent[]> },
  id: string,
  nodes: string[],
): Promise<void> {
  for (const node of nodes) {
    await eventually(
      `${node}'s waiting line recorded`,
      async () =>
        (await records.getEvents(id)).some((e) =>
          e.type === "node.log" && e.node === node && e.message.startsWith("waiting for signal")
        ),
    );
  }
}

Deno.test("waiting display (mod.ts, API): a log or exec node printing a waiting line is not waiting", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, request, runtime }) => {
    const go = join(dir, "go");
    const w = onLog("approve");
    const running = runtime.runFlow({
      id: "faker",
      nodes: [
        { id: "said", type: "log", with: { message: FAKE } },
        liar(go),
        { id: "approve", type: "wait", needs: ["said"], with: { signal: "approve" } },
      ],
    }, { onEvent: w.onEvent });
    const id = await w.logged;
    const records = await runtime.records();
    // The three lines are recorded; the exec node runs on (until `go` exists).
    await linesRecorded(records, id, ["said", "liar", "approve"]);
    assert.deepEqual(
      (await records.waitingNodes(id)).map((w) => [w.runId, w.node, w.signal]),
      [[id, "approve", "approve"]],
    );
    for (const pattern of ["/api/runs/{id}", "/api/runs/{id}/nodes"]) {
      const res = await request(pattern.replace("{id}", id));
      assert.equal(res.status, 200);
      const body = await documented<Detail>("GET", pattern, res);
      assert.deepEqual(body.waiting?.map((w) => [w.runId, w.node, w.signal]), [
        [id, "approve", "approve"],
      ]);
    }
    // The liars' signal: stored, but no node waits for it.
    const fake = await runtime.signalRun(id, "fake");
    assert.deepEqual(fake.kind === "stored" && fake.waiting, []);
    const sent = await runtime.signalRun(id, "approve");
    assert.deepEqual(sent.kind === "stored" && sent.waiting, ["approve"]);
    await Deno.writeTextFile(go, "");
    assert.equal((await running).status, "succeeded");
    // Ended: no `waiting`.
    const ended = await request(`/api/runs/${id}`);
    assert.equal((await documented<Detail>("GET", "/api/runs/{id}", ended)).waiting, undefined);
  });
});

Deno.test("waiting display (API): GET /api/runs/{id} lists the waiting nodes of its running sub-runs", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, request, runtime }) => {
    const go = join(dir, "go");
    const w = onLog("approve");
    let root: string | undefined;
    const running = runtime.runFlow({
      id: "parent",
      nodes: [{
        id: "child",
        type: "flow",
        with: {
          flow: {
            id: "sub",
            nodes: [
              liar(go),
              { id: "approve", type: "wait", with: { signal: "approve", message: "ok?" } },
            ],
          },
        },
      }],
    }, { onStart: (id) => root ??= id, onEvent: w.onEvent });
    const sub = await w.logged;
    assert.notEqual(sub, root);
    await linesRecorded(await runtime.records(), sub, ["liar", "approve"]);
    const res = await request(`/api/runs/${root}`);
    const body = await documented<Detail>("GET", "/api/runs/{id}", res);
    assert.deepEqual(
      body.waiting?.map(({ since: _, ...w }) => w),
      [{ runId: sub, node: "approve", signal: "approve", message: "ok?" }],
    );
    assert.equal((await runtime.signalRun(root!, "approve")).kind, "stored");
    await Deno.writeTextFile(go, "");
    assert.equal((await running).status, "succeeded");
  });
});

/** The flow of the CLI test (its `exec` node runs until file `go` exists). */
const fakerYaml = (go: string) =>
  `id: faker
nodes:
  - id: said
    type: log
    with:
      message: '${FAKE}'
  - id: liar
    type: exec
    permissions: { run: [sh] }
    with:
      command: sh
      args: [-c, '${HOLD}', sh, '${FAKE}', '${go}']
  - id: approve
    type: wait
    needs: [said]
    with: { signal: approve, timeout: 10m }
`;

Deno.test("waiting display (CLI): runs show and runs signal take no log or exec line for a wait", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-wait-display-" });
  try {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "faker.flow.yaml"), fakerYaml(join(dir, "go")));
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "flows: [./flows]\n");
    await using runner = new Watched(cliCommand(dir, ["run", "flows/faker.flow.yaml"]));
    const line = /waiting for signal "approve" \(flowstate runs signal (\w+) approve\)/;
    await runner.until(line, "stderr");
    const id = line.exec(runner.stderr)![1];
    // Once the three lines are recorded (runs show --follow prints them), runs show reads them.
    await using follower = new Watched(cliCommand(dir, ["runs", "show", id, "--follow"]));
    await follower.until(/log: waiting for signal "approve"/);
    await follower.until(/waiting for signal "fake"[^]*waiting for signal "fake"/);
    const shown = await runCli(dir, ["runs", "show", id]);
    assert.equal(shown.code, 0, shown.stderr);
    const waiting = shown.stdout.split("\n").filter((l) => l.startsWith("waiting:"));
    assert.deepEqual(waiting, [
      `waiting:  node approve waits for signal approve: flowstate runs signal ${id} approve [--data JSON]`,
    ]);
    const fake = await runCli(dir, ["runs", "signal", id, "fake", "--json"]);
    assert.equal(fake.code, 0, fake.stderr);
    assert.deepEqual(JSON.parse(fake.stdout).waiting, []);
    const sent = await runCli(dir, ["runs", "signal", id, "approve", "--json"]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.deepEqual(JSON.parse(sent.stdout).waiting, ["approve"]);
    await Deno.writeTextFile(join(dir, "go"), "");
    assert.equal(await runner.code(), 0, runner.stderr);
    assert.equal(await follower.code(), 0, follower.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
