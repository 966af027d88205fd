/**
 * A node's `when:` (`on_success`, `on_failure`, `always`) through the
 * library (`openRuntime().runFlow`): which nodes run when a node failed the
 * run, when none did, after a `continueOnError` failure, on cancel and on the
 * run's timeout, what their templates read, inside sub-flows; the HTTP API's
 * run detail.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineNode, type NodeStatus, openRuntime, type RunEvent, type RunRecord } from "../mod.ts";
import type { NodeSpec } from "../flow.ts";
import type { Timers } from "../src/clock.ts";
import { withServed } from "./_serve.ts";

const config = { stores: { main: { plugin: "memory" as const } } };

/** A node that waits until the test opens its gate (`gate(id)`), or its attempt is stopped. */
function gates() {
  const waiting = new Map<string, PromiseWithResolvers<void>>();
  const opened = new Map<string, () => void>();
  const started = (id: string) => {
    let w = waiting.get(id);
    if (w === undefined) waiting.set(id, w = Promise.withResolvers<void>());
    return w;
  };
  const type = defineNode({
    optionsSchema: z.object({}),
    run(ctx) {
      started(ctx.nodeId).resolve();
      return new Promise<string>((resolve, reject) => {
        opened.set(ctx.nodeId, () => resolve("opened"));
        ctx.signal.addEventListener("abort", () => reject(new Error("stopped")), { once: true });
      });
    },
  });
  return {
    type,
    /** Resolves once node `id` started. */
    started: (id: string) => started(id).promise,
    /** Let node `id` return. */
    open: (id: string) => opened.get(id)!(),
  };
}

function statuses(run: RunRecord): Record<string, NodeStatus> {
  return Object.fromEntries(Object.entries(run.nodes).map(([id, n]) => [id, n.status]));
}

async function run(nodes: NodeSpec[], options: { events?: RunEvent[] } = {}): Promise<RunRecord> {
  await using rt = await openRuntime({ config });
  return await rt.runFlow({ id: "w", nodes }, {
    onEvent: (event) => options.events?.push(event),
  });
}

const fails = (id: string, extra: Partial<NodeSpec> = {}): NodeSpec => ({
  id,
  type: "fail",
  with: { message: `${id} broke` },
  ...extra,
});
const logs = (id: string, extra: Partial<NodeSpec> = {}): NodeSpec => ({
  id,
  type: "log",
  with: { message: id },
  ...extra,
});

Deno.test("when: on_failure runs once a node it needs failed, and is skipped (with its node.end) when none did", async () => {
  const failed = await run([
    fails("work"),
    logs("next", { needs: ["work"] }),
    logs("alert", { needs: ["work"], when: "on_failure" }),
  ]);
  assert.equal(failed.status, "failed");
  assert.deepEqual(failed.error, { node: "work", message: "work broke" });
  assert.deepEqual(statuses(failed), { work: "failed", next: "skipped", alert: "succeeded" });

  const events: RunEvent[] = [];
  const ok = await run([
    logs("work"),
    logs("next", { needs: ["work"] }),
    logs("alert", { needs: ["work"], when: "on_failure" }),
  ], { events });
  assert.equal(ok.status, "succeeded");
  assert.deepEqual(statuses(ok), { work: "succeeded", next: "succeeded", alert: "skipped" });
  const ends = events.filter((e) => e.type === "node.end" && e.node === "alert");
  assert.deepEqual(ends.map((e) => e.type === "node.end" && e.status), ["skipped"]);
  assert.ok(!events.some((e) => e.type === "node.start" && e.node === "alert"));
});

Deno.test("when: on_failure with needs runs only for a failure before it (directly or indirectly), not elsewhere in the run", async () => {
  const indirect = await run([
    fails("fetch"),
    logs("parse", { needs: ["fetch"] }),
    logs("alert", { needs: ["parse"], when: "on_failure" }),
  ]);
  assert.deepEqual(statuses(indirect), {
    fetch: "failed",
    parse: "skipped",
    alert: "succeeded",
  });
  const elsewhere = await run([
    fails("other"),
    logs("fine"),
    logs("alert", { needs: ["fine"], when: "on_failure" }),
  ]);
  assert.equal(elsewhere.status, "failed");
  assert.equal(elsewhere.nodes.alert.status, "skipped");
});

Deno.test("when: always runs after its needs whatever their outcome, in a failed run and a successful one", async () => {
  for (const failing of [true, false]) {
    const record = await run([
      { id: "lock", type: "state.set", with: { key: "lock", value: "held" } },
      failing ? fails("work", { needs: ["lock"] }) : logs("work", { needs: ["lock"] }),
      {
        id: "unlock",
        type: "state.delete",
        needs: ["work"],
        when: "always",
        with: { key: "lock" },
      },
    ]);
    assert.equal(record.status, failing ? "failed" : "succeeded");
    assert.equal(record.nodes.unlock.status, "succeeded");
    assert.equal(record.nodes.unlock.output, true, "the lock key was there and is deleted");
  }
});

Deno.test("when: on_failure without needs waits for the whole run (every other branch) and runs if a node failed", async () => {
  const gate = gates();
  await using rt = await openRuntime({ config, nodeTypes: { gate: gate.type } });
  const events: RunEvent[] = [];
  const promise = rt.runFlow({
    id: "watch",
    nodes: [
      fails("quick"),
      { id: "slow", type: "gate" },
      logs("watcher", { when: "on_failure", with: { message: "${{ run.failed[0].node }}" } }),
    ],
  }, { onEvent: (event) => events.push(event) });
  await gate.started("slow");
  // quick failed already; the watcher waits for slow to end.
  assert.ok(!events.some((e) => e.type === "node.start" && e.node === "watcher"));
  gate.open("slow");
  const record = await promise;
  assert.deepEqual(statuses(record), { quick: "failed", slow: "succeeded", watcher: "succeeded" });
  assert.equal(record.nodes.watcher.output, "quick");
  const order = events.filter((e) => e.type === "node.end").map((e) =>
    e.type === "node.end" && e.node
  );
  assert.deepEqual(order, ["quick", "slow", "watcher"]);

  const fine = await rt.runFlow({
    id: "watch-ok",
    nodes: [logs("a"), logs("b", { needs: ["a"] }), logs("watcher", { when: "on_failure" })],
  });
  assert.equal(fine.status, "succeeded");
  assert.equal(fine.nodes.watcher.status, "skipped");
  const always = await rt.runFlow({
    id: "always-ok",
    nodes: [logs("a"), logs("b", { needs: ["a"] }), logs("last", { when: "always" })],
  }, { onEvent: (event) => events.push(event) });
  assert.equal(always.nodes.last.status, "succeeded");
});

Deno.test("a watcher (no needs) waits for the nodes after an always node with needs too, and may read them", async () => {
  const record = await run([
    logs("a"),
    logs("cleanup", { needs: ["a"], when: "always" }),
    fails("report", { needs: ["cleanup"] }),
    {
      id: "watcher",
      type: "transform",
      when: "on_failure",
      with: { value: "${{ nodes.report.error }}" },
    },
  ]);
  assert.deepEqual(statuses(record), {
    a: "succeeded",
    cleanup: "succeeded",
    report: "failed",
    watcher: "succeeded",
  });
  assert.equal(record.nodes.watcher.output, "report broke");
});

Deno.test("a when: node's templates read run.failed, nodes.<id>.status and nodes.<id>.error", async () => {
  const record = await run([
    logs("fine"),
    fails("sync", { needs: ["fine"], retry: { attempts: 2, delay: 0 } }),
    {
      id: "report",
      type: "transform",
      needs: ["sync"],
      when: "always",
      with: {
        value: {
          failed: "${{ run.failed }}",
          status: "${{ nodes.sync.status }}",
          error: "${{ nodes.sync.error }}",
          fine: "${{ nodes.fine.status }}",
        },
      },
    },
    {
      id: "alert",
      type: "transform",
      when: "on_failure",
      with: { value: "${{ run.failed[0].node }}: ${{ run.failed[0].error }}" },
    },
  ]);
  assert.deepEqual(record.nodes.report.output, {
    failed: [{ node: "sync", error: "sync broke" }],
    status: "failed",
    error: "sync broke",
    fine: "succeeded",
  });
  assert.equal(record.nodes.alert.output, "sync: sync broke");
});

Deno.test("the run stays failed when an on_failure node succeeds; when it fails too, both errors are recorded", async () => {
  const handled = await run([fails("work"), logs("alert", { when: "on_failure" })]);
  assert.equal(handled.status, "failed");
  assert.deepEqual(handled.error, { node: "work", message: "work broke" });

  const both = await run([
    fails("work"),
    fails("alert", { needs: ["work"], when: "on_failure" }),
    {
      id: "last",
      type: "transform",
      when: "always",
      needs: ["alert"],
      with: { value: "${{ run.failed }}" },
    },
  ]);
  assert.equal(both.status, "failed");
  assert.deepEqual(both.error, { node: "work", message: "work broke" });
  assert.equal(both.nodes.work.error, "work broke");
  assert.equal(both.nodes.alert.status, "failed");
  assert.equal(both.nodes.alert.error, "alert broke");
  assert.deepEqual(both.nodes.last.output, [
    { node: "work", error: "work broke" },
    { node: "alert", error: "alert broke" },
  ]);
});

Deno.test("a continueOnError failure does not trigger on_failure: the run did not fail", async () => {
  const record = await run([
    fails("optional", { continueOnError: true }),
    logs("next", { needs: ["optional"] }),
    logs("alert", { needs: ["optional"], when: "on_failure" }),
    logs("watcher", { when: "on_failure" }),
    {
      id: "seen",
      type: "transform",
      needs: ["optional"],
      when: "always",
      with: { value: "${{ nodes.optional.error }}" },
    },
  ]);
  assert.equal(record.status, "succeeded");
  assert.deepEqual(statuses(record), {
    optional: "failed",
    next: "succeeded",
    alert: "skipped",
    watcher: "skipped",
    seen: "succeeded",
  });
  assert.equal(record.nodes.seen.output, "optional broke");
});

Deno.test("an on_success node after an on_failure node runs only when that node ran and succeeded", async () => {
  const chain = (work: NodeSpec, alert: NodeSpec) => [
    work,
    alert,
    logs("after-alert", { needs: ["alert"] }),
    logs("after-that", { needs: ["after-alert"] }),
  ];
  const failed = await run(
    chain(fails("work"), logs("alert", { needs: ["work"], when: "on_failure" })),
  );
  assert.deepEqual(statuses(failed), {
    work: "failed",
    alert: "succeeded",
    "after-alert": "succeeded",
    "after-that": "succeeded",
  });
  assert.equal(failed.status, "failed");

  const ok = await run(chain(logs("work"), logs("alert", { needs: ["work"], when: "on_failure" })));
  assert.equal(ok.status, "succeeded");
  assert.deepEqual(statuses(ok), {
    work: "succeeded",
    alert: "skipped",
    "after-alert": "skipped",
    "after-that": "skipped",
  });

  const alertFailed = await run(
    chain(fails("work"), fails("alert", { needs: ["work"], when: "on_failure" })),
  );
  assert.deepEqual(statuses(alertFailed), {
    work: "failed",
    alert: "failed",
    "after-alert": "skipped",
    "after-that": "skipped",
  });
});

Deno.test("an on_success node that needs a failed node besides an on_failure node does not run", async () => {
  const record = await run([
    fails("work"),
    logs("alert", { needs: ["work"], when: "on_failure" }),
    logs("both", { needs: ["work", "alert"] }),
  ]);
  assert.deepEqual(statuses(record), { work: "failed", alert: "succeeded", both: "skipped" });
});

Deno.test("a node's own timeout is a failure: its on_failure node runs", async () => {
  const timers: Timers = {
    // The node's 1 s timeout ends at once; every other wait (its 1 h delay) only when stopped.
    sleep: (ms, signal) =>
      ms === 1000
        ? Promise.resolve()
        : new Promise((_, reject) =>
          signal?.addEventListener("abort", () => reject(signal.reason), { once: true })
        ),
  };
  await using rt = await openRuntime({ config });
  const record = await rt.runFlow({
    id: "hang",
    nodes: [
      { id: "hangs", type: "delay", with: { for: "1h" }, timeout: "1s" },
      logs("alert", { needs: ["hangs"], when: "on_failure" }),
    ],
  }, { timers });
  assert.equal(record.nodes.hangs.status, "timed-out");
  assert.equal(record.nodes.alert.status, "succeeded");
  assert.equal(record.status, "failed");
});

Deno.test("a cancelled run starts no when: node: they are recorded cancelled", async () => {
  const gate = gates();
  await using rt = await openRuntime({ config, nodeTypes: { gate: gate.type } });
  const controller = new AbortController();
  const cancelled = rt.runFlow({
    id: "stop",
    nodes: [
      { id: "slow", type: "gate" },
      logs("alert", { needs: ["slow"], when: "on_failure" }),
      logs("cleanup", { needs: ["slow"], when: "always" }),
      logs("watcher", { when: "always" }),
    ],
  }, { signal: controller.signal });
  await gate.started("slow");
  controller.abort();
  const record = await cancelled;
  assert.equal(record.status, "cancelled");
  assert.deepEqual(statuses(record), {
    slow: "cancelled",
    alert: "cancelled",
    cleanup: "cancelled",
    watcher: "cancelled",
  });
});

/** Timers whose waits end only when the test fires them (or their signal aborts). */
function heldTimers(): Timers & { fire(ms: number): number } {
  const pending: { ms: number; resolve(): void }[] = [];
  return {
    sleep: (ms, signal) =>
      new Promise((resolve, reject) => {
        pending.push({ ms, resolve });
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      }),
    /** End every wait of `ms` asked for so far; how many. */
    fire(ms) {
      const due = pending.filter((p) => p.ms === ms);
      for (const p of due) {
        pending.splice(pending.indexOf(p), 1);
        p.resolve();
      }
      return due.length;
    },
  };
}

/** A runtime with gate nodes and a 7 s abort grace, and timers the test fires. */
async function timingOut() {
  const gate = gates();
  const runtime = await openRuntime({
    config: { ...config, runs: { abortGrace: "7s" } },
    nodeTypes: { gate: gate.type },
  });
  return { gate, runtime, timers: heldTimers() };
}

Deno.test("a run that timed out runs its when: nodes within runs.abortGrace, then stops them; it stays timed-out", async () => {
  const { gate, runtime, timers } = await timingOut();
  await using rt = runtime;
  const promise = rt.runFlow({
    id: "late",
    timeout: "1m",
    nodes: [
      logs("first"),
      { id: "slow", type: "gate", needs: ["first"] },
      logs("after", { needs: ["slow"] }),
      {
        id: "alert",
        type: "transform",
        needs: ["after"],
        when: "on_failure",
        with: { value: "${{ run.failed }}" },
      },
      logs("untouched", { needs: ["first"], when: "on_failure" }),
      logs("cleanup", { needs: ["slow"], when: "always" }),
      { id: "hang", type: "gate", when: "always" },
    ],
  }, { timers });
  await gate.started("slow");
  assert.equal(timers.fire(60_000), 1, "the run's timeout");
  // The watcher (no needs) starts once slow was stopped and after was not started.
  await gate.started("hang");
  assert.ok(timers.fire(7_000) >= 1, "the grace ends");
  const record = await promise;
  assert.equal(record.status, "timed-out");
  assert.equal(record.error?.message, "the flow timed out after 60000 ms");
  assert.deepEqual(statuses(record), {
    first: "succeeded",
    slow: "cancelled",
    after: "cancelled",
    alert: "succeeded",
    untouched: "skipped",
    cleanup: "succeeded",
    hang: "cancelled",
  });
  assert.deepEqual(record.nodes.alert.output, [
    { node: "slow", error: "stopped: the flow timed out after 60000 ms" },
  ]);
});

Deno.test("a node handling a failure when the run times out goes on within the grace, where the others are stopped", async () => {
  const { gate, runtime, timers } = await timingOut();
  await using rt = runtime;
  const promise = rt.runFlow({
    id: "late-handler",
    timeout: "1m",
    nodes: [
      logs("first"),
      { id: "slow", type: "gate", needs: ["first"] },
      fails("broke", { needs: ["first"] }),
      { id: "report", type: "gate", needs: ["broke"], when: "on_failure" },
    ],
  }, { timers });
  await gate.started("slow");
  await gate.started("report");
  assert.equal(timers.fire(60_000), 1, "the run's timeout");
  gate.open("report");
  const record = await promise;
  assert.equal(record.status, "timed-out");
  assert.deepEqual(statuses(record), {
    first: "succeeded",
    slow: "cancelled",
    broke: "failed",
    report: "succeeded",
  });
  assert.equal(record.nodes.report.output, "opened");
});

Deno.test("when: nodes inside a sub-flow run within the sub-flow; the parent sees the sub-run fail", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/child.flow.yaml`,
      `id: child
nodes:
  - { id: work, type: fail, with: { message: child broke } }
  - id: mark
    type: state.set
    when: on_failure
    with: { key: failed, value: "\${{ run.failed[0].error }}" }
`,
    );
    await Deno.writeTextFile(
      `${dir}/parent.flow.yaml`,
      `id: parent
nodes:
  - { id: call, type: flow, with: { flow: ./child.flow.yaml } }
  - { id: after, type: log, needs: [call], with: { message: never } }
  - { id: alert, type: log, needs: [call], when: on_failure, with: { message: "\${{ nodes.call.error }}" } }
`,
    );
    await using rt = await openRuntime({ cwd: dir, config });
    const record = await rt.runFlow("parent.flow.yaml");
    assert.equal(record.status, "failed");
    assert.deepEqual(statuses(record), { call: "failed", after: "skipped", alert: "succeeded" });
    assert.match(String(record.nodes.alert.output), /child broke/);
    const records = await rt.records();
    const { runs: [child] } = await records.listRuns({ flowId: "child" });
    assert.equal(child.status, "failed");
    assert.equal(child.parentRunId, record.id);
    assert.equal(child.nodes.mark.status, "succeeded");
    const store = await rt.storeFor("flow");
    assert.equal((await store.get(["flow", "child", "failed"]))?.value, "child broke");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a forEach node whose item fails triggers on_failure; run.failed holds the item's error", async () => {
  const record = await run([
    { id: "each", type: "fail", forEach: [1, 2], with: { message: "no ${{ item }}" } },
    {
      id: "alert",
      type: "transform",
      needs: ["each"],
      when: "on_failure",
      with: { value: "${{ run.failed }}" },
    },
  ]);
  assert.equal(record.status, "failed");
  assert.equal(record.nodes.each.status, "failed");
  assert.deepEqual(record.nodes.alert.output, [{ node: "each", error: "item 0: no 1" }]);
});

Deno.test("the HTTP API's run detail gives each when: node's status and its when:", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ request, runtime }) => {
    const record = await runtime.runFlow({
      id: "api-when",
      nodes: [
        fails("work"),
        logs("alert", { when: "on_failure" }),
        logs("next", { needs: ["work"] }),
      ],
    });
    const res = await request(`/api/runs/${record.id}`);
    assert.equal(res.status, 200);
    const { run: detail } = await res.json();
    assert.equal(detail.status, "failed");
    assert.deepEqual(detail.nodes.alert, {
      status: "succeeded",
      attempts: 1,
      output: "alert",
      when: "on_failure",
    });
    assert.deepEqual(detail.nodes.next, { status: "skipped", attempts: 0 });
  });
});
