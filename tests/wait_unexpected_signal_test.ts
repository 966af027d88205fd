/**
 * A signal whose name no `wait` node of the run's flow waits for (a typo,
 * most often) is kept, as a custom node may take any name, and said: a
 * warning line from `flowstate runs signal` naming the names the flow's wait
 * nodes wait for (and a close one), `expected`, `waitSignals` and `warning`
 * in its `--json` and in the answer of `POST /api/runs/{id}/signals/{name}`,
 * and `expectation` in `runtime.signalRun()`'s outcome. Sub-flows written in
 * the flow, and sub-runs running now, count.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type RunEvent, type SignalOutcome } from "../mod.ts";
import { cliCommand, runCli, withSandbox } from "./_cli_sandbox.ts";
import { Watched } from "./_watched.ts";
import { documented, withServed } from "./_serve.ts";

const DEPLOY = `id: deploy
nodes:
  - id: approve
    type: wait
    with: { signal: approve, timeout: 10m, message: "ship?" }
  - id: done
    type: wait
    needs: [approve]
    with: { signal: build-done, timeout: 10m }
`;

const WAITING = /waiting for signal "approve" \(flowstate runs signal (\w+) approve\)/;

/** The expectation of a stored outcome. */
function expectationOf(outcome: SignalOutcome) {
  assert.equal(outcome.kind, "stored");
  return outcome.kind === "stored" ? outcome.expectation : undefined;
}

Deno.test("runs signal (CLI): a name no wait node waits for is kept, with a warning naming the flow's signals", async () => {
  await withSandbox(async ({ dir }) => {
    await Deno.writeTextFile(join(dir, "deploy.flow.yaml"), DEPLOY);
    await using runner = new Watched(cliCommand(dir, ["run", "deploy.flow.yaml"]));
    await runner.until(WAITING, "stderr");
    const id = WAITING.exec(runner.stderr)![1];

    const typo = await runCli(dir, ["runs", "signal", id, "aprove"]);
    assert.equal(typo.code, 0, typo.stderr);
    assert.equal(typo.stdout.trim(), `Sent signal aprove to run ${id} (deploy): kept for the run`);
    assert.equal(
      typo.stderr.trim(),
      'warning: no wait node of flow deploy waits for "aprove"; its wait nodes wait for: ' +
        'approve, build-done (did you mean "approve"?). The signal is kept for the run all the ' +
        "same (a custom node may take it with ctx.takeSignal) and is dropped when the run ends",
    );
    const json = await runCli(dir, ["runs", "signal", id, "nothing-like-it", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.stderr, "");
    const answer = JSON.parse(json.stdout);
    assert.equal(answer.expected, false);
    assert.deepEqual(answer.waitSignals, ["approve", "build-done"]);
    assert.match(answer.warning, /its wait nodes wait for: approve, build-done\. The signal/);

    // A name a wait node waits for, even one not waiting yet: no warning.
    const later = await runCli(dir, ["runs", "signal", id, "build-done", "--json"]);
    assert.equal(later.code, 0, later.stderr);
    assert.deepEqual(JSON.parse(later.stdout), {
      runId: id,
      flowId: "deploy",
      signal: "build-done",
      waiting: [],
      expected: true,
      waitSignals: ["approve", "build-done"],
    });
    const right = await runCli(dir, ["runs", "signal", id, "approve"]);
    assert.equal(right.code, 0, right.stderr);
    assert.equal(right.stderr, "");
    assert.equal(await runner.code(), 0, runner.stderr);
  });
});

Deno.test("POST /api/runs/{id}/signals/{name}: expected, waitSignals and a warning for a name no wait node waits for", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, runtime }) => {
    let resolve!: (id: string) => void;
    const waiting = new Promise<string>((r) => resolve = r);
    const running = runtime.runFlow({
      id: "deploy",
      nodes: [{ id: "approve", type: "wait", with: { signal: "approve" } }],
    }, {
      onEvent: (e: RunEvent, run) => {
        if (e.type === "node.log" && e.message.startsWith("waiting for signal")) resolve(run.id);
      },
    });
    const id = await waiting;
    const post = (name: string) =>
      request(`/api/runs/${id}/signals/${name}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
    const pattern = "/api/runs/{id}/signals/{name}";
    const typo = await post("aprove");
    assert.equal(typo.status, 202);
    const body = await documented<
      { expected: boolean; waitSignals: string[]; warning?: string }
    >("POST", pattern, typo);
    assert.equal(body.expected, false);
    assert.deepEqual(body.waitSignals, ["approve"]);
    assert.match(
      body.warning ?? "",
      /^no wait node of flow deploy waits for "aprove"; its wait nodes wait for: approve \(did you mean "approve"\?\)/,
    );
    const right = await post("approve");
    assert.equal(right.status, 202);
    const ok = await documented<{ expected: boolean; warning?: string }>("POST", pattern, right);
    assert.equal(ok.expected, true);
    assert.equal(ok.warning, undefined);
    assert.equal((await running).status, "succeeded");
  });
});

Deno.test("signalRun(): wait nodes of a sub-flow written in the flow, and of a sub-run running now, count", async () => {
  await withSandbox(async ({ dir }) => {
    await Deno.writeTextFile(
      join(dir, "sub.yaml"),
      "id: sub\nnodes:\n  - id: ok\n    type: wait\n    with: { signal: sub-ok, timeout: 10m }\n",
    );
    await Deno.writeTextFile(
      join(dir, "parent.yaml"),
      `id: parent
nodes:
  - id: inline
    type: flow
    with:
      flow:
        id: inner
        nodes: [{ id: w, type: wait, with: { signal: inner-ok, timeout: 10m } }]
  - id: byPath
    type: flow
    needs: [inline]
    with: { flow: ./sub.yaml }
`,
    );
    await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
    let root: string | undefined;
    const waits: string[] = [];
    let wake!: () => void;
    let next = new Promise<void>((r) => wake = r);
    const running = rt.runFlow(join(dir, "parent.yaml"), {
      onStart: (id) => root ??= id,
      onEvent: (e) => {
        if (e.type === "node.log" && e.message.startsWith("waiting for signal")) {
          waits.push(e.message);
          wake();
        }
      },
    });
    await next;
    next = new Promise<void>((r) => wake = r);
    // The inline sub-flow's wait node waits; the file's sub-flow has not started.
    const before = expectationOf(await rt.signalRun(root!, "sub-okk"));
    assert.equal(before?.expected, false);
    assert.deepEqual(before?.waitSignals, ["inner-ok"]);
    assert.deepEqual(before?.unread, ["./sub.yaml (node byPath)"]);
    assert.equal(expectationOf(await rt.signalRun(root!, "inner-ok"))?.expected, true);
    await next;
    // Its sub-run runs now: its wait node counts.
    const during = expectationOf(await rt.signalRun(root!, "sub-ok"));
    assert.equal(during?.expected, true);
    assert.deepEqual(during?.unread, []);
    const run = await running;
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  });
});

Deno.test("signalRun(): a queued run's flow says which names its wait nodes wait for", async () => {
  await withSandbox(async ({ dir }) => {
    await Deno.writeTextFile(
      join(dir, "later.yaml"),
      "id: later\nnodes:\n  - id: w\n    type: wait\n    with: { signal: go }\n",
    );
    await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
    const { runId } = await rt.enqueue(join(dir, "later.yaml"));
    const typo = expectationOf(await rt.signalRun(runId, "og"));
    assert.deepEqual(typo, { expected: false, waitSignals: ["go"], unread: [] });
    assert.equal(expectationOf(await rt.signalRun(runId, "go"))?.expected, true);
  });
});
