// Node mocks in runFlow (RunFlowOptions.mocks), through mod.ts: a mocked node does not run, its
// output is the mock's value or what its function returns (given the node's checked `with`, the
// item under forEach and the attempt); a throw fails the attempt (retry, continueOnError,
// when: on_failure); sub-flows' nodes by "flowNode/child"; unknown ids before anything runs; the
// run record and events mark mocked nodes. And a user's `deno test` without --allow-net,
// --allow-run or --unstable-worker-options runs a flow whose http and exec nodes are mocked.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  FlowValidationError,
  type NodeMockCall,
  openRuntime,
  openStore,
  type RunEvent,
  type Runtime,
} from "../mod.ts";
import { recordCalls } from "../testing.ts";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";
import { encodeNodes } from "../src/records/_node_outcomes.ts";
import { RunRecorder } from "../src/records/recorder.ts";
import { Records } from "../src/records/records.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

function memoryRuntime(): Promise<Runtime> {
  return openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
}

/** A flow that posts to a webhook, then reports what it answered. */
const ALERT = {
  id: "alert",
  inputs: { text: { type: "string", default: "disk full" } },
  nodes: [
    {
      id: "notify",
      type: "http",
      permissions: { net: ["hooks.slack.com"] },
      with: {
        url: "https://hooks.slack.com/services/T0",
        method: "POST",
        body: { text: "${{ inputs.text }}" },
      },
    },
    {
      id: "report",
      type: "transform",
      needs: ["notify"],
      with: { value: "sent: ${{ nodes.notify.output.body }}" },
    },
  ],
};

Deno.test("a mocked node does not run: its output is the mock's value, and the record says mocked", async () => {
  await using rt = await memoryRuntime();
  const events: RunEvent[] = [];
  const run = await rt.runFlow(ALERT, {
    mocks: { notify: { status: 200, body: "ok" } },
    onEvent: (event) => events.push(event),
  });
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  assert.deepEqual(run.nodes.notify, {
    status: "succeeded",
    attempts: 1,
    output: { status: 200, body: "ok" },
    mocked: true,
  });
  assert.deepEqual(run.nodes.report, { status: "succeeded", attempts: 1, output: "sent: ok" });
  // The events say so too, as they happen and as stored.
  const stored = await (await rt.records()).getEvents(run.id);
  for (const list of [events, stored]) {
    const of = (type: string, node: string) =>
      list.find((e) => e.type === type && "node" in e && e.node === node) as
        | Record<string, unknown>
        | undefined;
    assert.equal(of("node.start", "notify")?.mocked, true);
    assert.equal(of("node.end", "notify")?.mocked, true);
    assert.equal(of("node.start", "report")?.mocked, undefined);
    assert.equal(of("node.end", "report")?.mocked, undefined);
  }
  // The record as stored keeps the mark (and is stored in the form older readers read as it is).
  const record = await (await rt.records()).getRun(run.id);
  assert.equal(record?.nodes.notify.mocked, true);
  assert.equal(record?.nodes.report.mocked, undefined);
  assert.equal(encodeNodes(run.nodes), undefined);
});

Deno.test("a mock function gets the node's evaluated with, the item and index under forEach, and the attempt", async () => {
  await using rt = await memoryRuntime();
  const calls: NodeMockCall[] = [];
  const run = await rt.runFlow({
    id: "users",
    inputs: { ids: { type: "array" } },
    nodes: [{
      id: "fetch",
      type: "http",
      permissions: { net: ["api.example.com"] },
      forEach: { items: "${{ inputs.ids }}", concurrency: 2 },
      with: {
        url: "https://api.example.com/users/${{ item }}",
        headers: { "x-index": "n${{ index }}" },
      },
    }],
    outputs: { names: "${{ nodes.fetch.output }}" },
  }, {
    input: { ids: ["ada", "alan"] },
    mocks: {
      // A promise works as the node's own would.
      fetch: async (call) => {
        calls.push(call);
        await Promise.resolve();
        return { name: String(call.item).toUpperCase() };
      },
    },
  });
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  assert.deepEqual(run.outputs, { names: [{ name: "ADA" }, { name: "ALAN" }] });
  assert.equal(run.nodes.fetch.mocked, true);
  calls.sort((a, b) => a.index! - b.index!);
  assert.deepEqual(
    calls.map((c) => ({ node: c.node, item: c.item, index: c.index, attempt: c.attempt })),
    [
      { node: "fetch", item: "ada", index: 0, attempt: 1 },
      { node: "fetch", item: "alan", index: 1, attempt: 1 },
    ],
  );
  // `with` as checked by the http node's schema (its defaults filled in).
  const checked = calls[1].with as { url: string; method: string; headers: Record<string, string> };
  assert.equal(checked.url, "https://api.example.com/users/alan");
  assert.equal(checked.method, "GET");
  assert.deepEqual(checked.headers, { "x-index": "n1" });
  assert.equal(calls[0].runId, run.id);
  assert.equal(calls[0].flowId, "users");
  // The signal of a finished attempt is aborted: nothing waits on it.
  assert.equal(calls[0].signal.aborted, true);
});

Deno.test("a mock that throws fails the attempt: retry tries again, with the same checks", async () => {
  await using rt = await memoryRuntime();
  const notify = recordCalls((call) => {
    if (call.attempt === 1) throw new Error("503 Service Unavailable");
    return { status: 200, body: "ok" };
  });
  const events: RunEvent[] = [];
  const run = await rt.runFlow({
    ...ALERT,
    nodes: [{ ...ALERT.nodes[0], retry: { attempts: 3, delay: "1ms" } }, ALERT.nodes[1]],
  }, { mocks: { notify }, onEvent: (event) => events.push(event) });
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  assert.deepEqual(notify.calls.map((c) => c.attempt), [1, 2]);
  assert.equal(run.nodes.notify.attempts, 2);
  assert.equal(run.nodes.notify.mocked, true);
  const failed = events.find((e) => e.type === "node.attempt" && e.error !== undefined);
  assert.equal(failed?.type === "node.attempt" && failed.error, "503 Service Unavailable");
});

Deno.test("a mock that always throws fails the node: when: on_failure runs, continueOnError goes on", async () => {
  await using rt = await memoryRuntime();
  const down = () => Promise.reject(new Error("connection refused"));
  const run = await rt.runFlow({
    ...ALERT,
    nodes: [
      ...ALERT.nodes,
      {
        id: "page",
        type: "exec",
        permissions: { run: ["restic"] },
        when: "on_failure",
        with: { command: "restic", args: ["--failed", "${{ run.failed[0].node }}"] },
      },
    ],
  }, { mocks: { notify: down, page: recordCalls("paged") } });
  assert.equal(run.status, "failed");
  assert.deepEqual(run.error, { node: "notify", message: "connection refused" });
  assert.deepEqual(run.nodes.notify, {
    status: "failed",
    attempts: 1,
    error: "connection refused",
    mocked: true,
  });
  assert.equal(run.nodes.report.status, "skipped");
  assert.deepEqual(run.nodes.page, {
    status: "succeeded",
    attempts: 1,
    output: "paged",
    when: "on_failure",
    mocked: true,
  });

  const goesOn = await rt.runFlow({
    ...ALERT,
    nodes: [{ ...ALERT.nodes[0], continueOnError: true }, ALERT.nodes[1]],
  }, { mocks: { notify: down } });
  assert.equal(goesOn.status, "succeeded", JSON.stringify(goesOn.error));
  assert.equal(goesOn.nodes.notify.status, "failed");
  assert.equal(goesOn.nodes.report.output, "sent: ");
});

Deno.test("a mock's signal aborts when the node's timeout stops the attempt", async () => {
  await using rt = await memoryRuntime();
  let aborted: unknown;
  const run = await rt.runFlow({
    ...ALERT,
    nodes: [{ ...ALERT.nodes[0], timeout: "20ms" }, ALERT.nodes[1]],
  }, {
    mocks: {
      notify: ({ signal }) =>
        new Promise((_, reject) =>
          signal.addEventListener("abort", () => reject(aborted = signal.reason), { once: true })
        ),
    },
  });
  assert.equal(run.status, "failed");
  assert.equal(run.nodes.notify.status, "timed-out");
  assert.equal(run.nodes.notify.mocked, true);
  assert.match(String(aborted), /timed out after 20 ms/);
});

Deno.test("a mocked node's with is still checked against its type's schema", async () => {
  await using rt = await memoryRuntime();
  // Static: the flow is refused before anything runs.
  const notify = recordCalls();
  await assert.rejects(
    rt.runFlow({
      ...ALERT,
      nodes: [{ ...ALERT.nodes[0], with: { ...ALERT.nodes[0].with, method: 42 } }],
    }, { mocks: { notify } }),
    (err: unknown) => err instanceof FlowValidationError && /method/.test(err.message),
  );
  // A host its permissions do not list is the flow's mistake, mocked or not.
  await assert.rejects(
    rt.runFlow({
      ...ALERT,
      nodes: [{ ...ALERT.nodes[0], with: { url: "https://evil.example.com/" } }],
    }, { mocks: { notify } }),
    (err: unknown) => err instanceof FlowValidationError && /evil\.example\.com/.test(err.message),
  );
  // Templated: evaluated at run time, and the node fails without its mock being called.
  const run = await rt.runFlow({
    ...ALERT,
    nodes: [{ ...ALERT.nodes[0], with: { url: "${{ inputs.text }}" } }],
  }, { input: { text: "not a url" }, mocks: { notify } });
  assert.equal(run.status, "failed");
  assert.match(run.nodes.notify.error ?? "", /url/);
  assert.deepEqual(notify.calls, []);
  assert.equal((await (await rt.records()).listRuns()).runs.length, 1);
});

Deno.test("mocks of a sub-flow's nodes: flowNode/child, for a flow file and a definition", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-mocks-" });
  try {
    await Deno.writeTextFile(
      join(dir, "post.flow.yaml"),
      `id: post
inputs:
  text: { type: string }
nodes:
  - id: send
    type: http
    permissions: { net: [hooks.slack.com] }
    with: { url: "https://hooks.slack.com/x", method: POST, body: { text: "\${{ inputs.text }}" } }
outputs:
  answer: "\${{ nodes.send.output }}"
`,
    );
    await Deno.writeTextFile(
      join(dir, "main.flow.yaml"),
      `id: main
nodes:
  - id: alert
    type: flow
    with: { flow: ./post.flow.yaml, input: { text: hello } }
  - id: inline
    type: flow
    with:
      flow:
        id: inner
        nodes:
          - id: run
            type: exec
            permissions: { run: [restic] }
            with: { command: restic, args: [backup] }
outputs:
  answer: "\${{ nodes.alert.output.answer }}"
`,
    );
    await using rt = await memoryRuntime();
    const send = recordCalls("sent");
    const run = await rt.runFlow(join(dir, "main.flow.yaml"), {
      mocks: { "alert/send": send, "inline/run": { code: 0, stdout: "saved", stderr: "" } },
    });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.deepEqual(run.outputs, { answer: "sent" });
    assert.deepEqual((send.calls[0].with as { body: unknown }).body, { text: "hello" });
    assert.equal(send.calls[0].flowId, "post");
    // The flow nodes ran; their sub-runs' nodes were mocked, and their records say so.
    assert.equal(run.nodes.alert.mocked, undefined);
    const { runs } = await (await rt.records()).listRuns();
    const sub = runs.find((r) => r.flowId === "post")!;
    assert.equal(sub.parentRunId, run.id);
    assert.equal((await (await rt.records()).getRun(sub.id))?.nodes.send.mocked, true);
    const inner = runs.find((r) => r.flowId === "inner")!;
    assert.deepEqual((await (await rt.records()).getRun(inner.id))?.nodes.run, {
      status: "succeeded",
      attempts: 1,
      output: { code: 0, stdout: "saved", stderr: "" },
      mocked: true,
    });

    // An unknown node of the sub-flow: before anything runs, with the closest id.
    const before = (await (await rt.records()).listRuns()).runs.length;
    await assert.rejects(
      rt.runFlow(join(dir, "main.flow.yaml"), { mocks: { "alert/sned": "x" } }),
      (err: unknown) =>
        err instanceof TypeError && /"sned"/.test(err.message) &&
        /key "alert\/sned"/.test(err.message) && /did you mean "send"\?/.test(err.message),
    );
    // A node that runs no sub-flow, and a mocked flow node whose sub-flow would not run.
    await assert.rejects(
      rt.runFlow(ALERT, { mocks: { notify: {}, "report/x": 1 } }),
      /node report, which is a transform node and runs no sub-flow/,
    );
    await assert.rejects(
      rt.runFlow(join(dir, "main.flow.yaml"), { mocks: { alert: {}, "alert/send": "x" } }),
      /node alert is mocked, so the sub-flow it would run does not run/,
    );
    assert.equal((await (await rt.records()).listRuns()).runs.length, before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sub-flow known only at run time: an unknown key fails its node and runFlow rejects", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-mocks-" });
  try {
    await Deno.writeTextFile(
      join(dir, "child.flow.yaml"),
      "id: child\nnodes:\n  - { id: step, type: transform, with: { value: 1 } }\n",
    );
    await Deno.writeTextFile(
      join(dir, "parent.flow.yaml"),
      `id: parent
inputs:
  which: { type: string }
nodes:
  - { id: sub, type: flow, with: { flow: "\${{ inputs.which }}" } }
`,
    );
    await using rt = await memoryRuntime();
    const flow = join(dir, "parent.flow.yaml");
    const options = { input: { which: "./child.flow.yaml" } };
    const ok = await rt.runFlow(flow, { ...options, mocks: { "sub/step": 2 } });
    assert.equal(ok.status, "succeeded", JSON.stringify(ok.error));
    const runs = (await (await rt.records()).listRuns()).runs;
    const child = runs.find((r) => r.flowId === "child")!;
    assert.deepEqual((await (await rt.records()).getRun(child.id))?.nodes.step, {
      status: "succeeded",
      attempts: 1,
      output: 2,
      mocked: true,
    });
    await assert.rejects(
      rt.runFlow(flow, { ...options, mocks: { "sub/stpe": 2 } }),
      (err: unknown) =>
        err instanceof TypeError && /key "sub\/stpe"/.test(err.message) &&
        /did you mean "step"\?/.test(err.message),
    );
    // The parent run is recorded failed, its flow node saying why.
    const failed = (await (await rt.records()).listRuns()).runs.find((r) =>
      r.flowId === "parent" && r.status === "failed"
    );
    assert.ok(failed);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mocks naming no node, or giving no JSON, are TypeErrors before anything runs", async () => {
  await using rt = await memoryRuntime();
  await assert.rejects(
    rt.runFlow(ALERT, { mocks: { notfy: { status: 200 } } }),
    (err: unknown) =>
      err instanceof TypeError && /mocks names node "notfy"/.test(err.message) &&
      /did you mean "notify"\?/.test(err.message) &&
      /its nodes are notify, report/.test(err.message),
  );
  await assert.rejects(
    rt.runFlow(ALERT, { mocks: { notify: new Map() as never } }),
    (err: unknown) => err instanceof TypeError && /mocks\.notify is not JSON/.test(err.message),
  );
  await assert.rejects(
    rt.runFlow(ALERT, { mocks: { notify: undefined as never } }),
    /mocks\.notify is undefined/,
  );
  await assert.rejects(rt.runFlow(ALERT, { mocks: [] as never }), /option mocks must be an object/);
  assert.equal((await (await rt.records()).listRuns()).runs.length, 0);
  // What a mock function returns must be JSON, as a node's output must.
  const run = await rt.runFlow(ALERT, { mocks: { notify: () => ({ at: 1n }) } });
  assert.equal(run.status, "failed");
  assert.match(run.nodes.notify.error ?? "", /node notify returned a value that is not JSON/);
});

Deno.test("a user's deno test without --allow-net, --allow-run or worker options runs a flow whose http and exec nodes are mocked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-mocks-project-" });
  try {
    await Deno.writeTextFile(
      join(dir, "backup.flow.yaml"),
      `id: backup
nodes:
  - id: dump
    type: exec
    permissions: { run: [restic] }
    with: { command: restic, args: [backup, /data] }
  - id: notify
    type: http
    needs: [dump]
    permissions: { net: [hooks.slack.com] }
    with:
      url: https://hooks.slack.com/services/T0
      method: POST
      body: { text: "backup: \${{ nodes.dump.output.stdout }}" }
`,
    );
    const mod = new URL("mod.ts", `file://${ROOT}`).href;
    const testing = new URL("testing.ts", `file://${ROOT}`).href;
    await Deno.writeTextFile(
      join(dir, "backup_test.ts"),
      `import assert from "node:assert/strict";
import { openRuntime } from "${mod}";
import { recordCalls } from "${testing}";

const flow = new URL("./backup.flow.yaml", import.meta.url).pathname;

Deno.test("backup posts what restic said", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const notify = recordCalls({ status: 200, body: "ok" });
  const run = await rt.runFlow(flow, {
    mocks: { dump: { code: 0, stdout: "snapshot 1a2b saved", stderr: "" }, notify },
  });
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  assert.deepEqual(notify.calls[0].with.body, { text: "backup: snapshot 1a2b saved" });
  assert.equal(run.nodes.dump.mocked, true);
});

Deno.test("without mocks the same flow cannot run here", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  await assert.rejects(rt.runFlow(flow), /unstable-worker-options|--allow-/);
});
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "--config",
        join(ROOT, "deno.json"),
        "--frozen",
        "--cached-only",
        "--no-check",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        join(dir, "backup_test.ts"),
      ],
      cwd: dir,
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0", DENO_NO_UPDATE_CHECK: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    const output = text.decode(out.stdout) + text.decode(out.stderr);
    assert.equal(out.code, 0, output);
    assert.match(output, /ok \| 2 passed \| 0 failed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a mocked custom node starts no Worker and loads no module; a mocked queue node enqueues nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-mocks-" });
  try {
    // Loading it (in a Worker, to check its options) would fail the flow's check.
    await Deno.writeTextFile(
      join(dir, "charge.ts"),
      'throw new Error("the module was loaded");\nexport default {};\n',
    );
    await Deno.writeTextFile(
      join(dir, "pay.flow.yaml"),
      `id: pay
nodes:
  - id: charge
    type: ./charge.ts
    permissions: { net: [api.stripe.com], ffi: true }
    with: { amount: 42 }
  - id: later
    type: queue
    needs: [charge]
    with: { flow: receipt, input: { id: "\${{ nodes.charge.output.id }}" } }
  - id: never
    type: http
    if: "\${{ false }}"
    permissions: { net: [api.example.com] }
    with: { url: https://api.example.com/ }
`,
    );
    await using rt = await memoryRuntime();
    const charge = recordCalls({ id: "ch_1" });
    const later = recordCalls({ runId: "r1", existing: false });
    const run = await rt.runFlow(join(dir, "pay.flow.yaml"), {
      mocks: { charge, later, never: null },
    });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.deepEqual(charge.calls[0].with, { amount: 42 });
    assert.deepEqual((later.calls[0].with as { input: unknown }).input, { id: "ch_1" });
    assert.equal(run.nodes.charge.mocked, true);
    assert.equal(run.nodes.later.mocked, true);
    // A mocked node that did not run (its `if` was false) is not marked: no mock stood in.
    assert.deepEqual(run.nodes.never, { status: "skipped", attempts: 0 });
    // Nothing was queued.
    assert.equal((await (await rt.records()).listRuns()).runs.length, 1);
    // Its module must still exist: a wrong path is the flow's mistake.
    await Deno.remove(join(dir, "charge.ts"));
    await assert.rejects(
      rt.runFlow(join(dir, "pay.flow.yaml"), { mocks: { charge, later, never: null } }),
      (err: unknown) => err instanceof FlowValidationError && /charge\.ts/.test(err.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a run's end recorded from its events alone (interrupted) still marks its mocked nodes", async () => {
  await using store = await openStore({ plugin: "memory" });
  const records = new Records(store);
  const clock = { now: () => Date.now() };
  const recorder = await RunRecorder.start(records, clock, {
    flowId: "alert",
    flowVersion: "v",
    inputs: {},
  }, { nodeIds: ["notify", "report"] });
  recorder.event({ at: clock.now(), type: "node.start", node: "notify", mocked: true });
  recorder.event({ at: clock.now(), type: "node.attempt", node: "notify", attempt: 1 });
  recorder.event({ at: clock.now(), type: "node.start", node: "report" });
  const { ended } = await RunRecorder.interruptAll("cancelled: exiting");
  assert.ok(ended.includes(recorder.id));
  assert.deepEqual((await records.getRun(recorder.id))?.nodes, {
    notify: { status: "cancelled", attempts: 1, mocked: true },
    report: { status: "cancelled", attempts: 0 },
  });
  await recorder.close();
});

Deno.test("flowstate runs show says which nodes were mocked", async () => {
  await withCliProject(
    "home: home\nstores:\n  main: { plugin: sqlite, path: home/main.db }\n",
    async (cli, dir) => {
      let runId: string;
      {
        await using rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
        runId = (await rt.runFlow(ALERT, { mocks: { notify: { status: 200, body: "ok" } } })).id;
      }
      const shown = await cliOk(cli, "runs", "show", runId);
      assert.match(shown, /^ {2}notify: succeeded, 1 attempt, .*\(mocked: it did not run\)$/m);
      assert.match(shown, /^ {2}report: succeeded, 1 attempt, [^(\n]*$/m);
    },
  );
});

Deno.test("a run with mocks that fails does not run the config's runs.onFailure flow", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-mocks-" });
  try {
    await Deno.writeTextFile(
      join(dir, "page.flow.yaml"),
      "id: page\ninputs:\n  run: { type: object }\nnodes:\n  - { id: say, type: log, with: { message: paged } }\n",
    );
    await using rt = await openRuntime({
      config: {
        stores: { main: { plugin: "memory" } },
        runs: { onFailure: { flow: join(dir, "page.flow.yaml") } },
      },
    });
    const records = await rt.records();
    const mocked = await rt.runFlow(ALERT, {
      mocks: { notify: () => Promise.reject(new Error("down")) },
    });
    assert.equal(mocked.status, "failed");
    assert.deepEqual((await records.listRuns({ flowId: "page" })).runs, []);
    // The same failure without mocks is reported.
    const real = await rt.runFlow({
      id: "alert",
      nodes: [{ id: "notify", type: "fail", with: { message: "down" } }],
    });
    assert.equal(real.status, "failed");
    assert.equal((await records.listRuns({ flowId: "page" })).runs.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
