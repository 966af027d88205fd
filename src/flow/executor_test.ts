import assert from "node:assert/strict";
import { z } from "zod";
import { defineNode, openStore, type RunEvent, type RunRecord, type Store } from "../../mod.ts";
import { Records } from "../../records.ts";
import { fakeClock } from "../testing/clock.ts";
import type { Timers } from "../clock.ts";
import { type FlowHost, runFlow } from "../run_flow.ts";
import type { ExecuteOptions } from "./executor.ts";
import { AttemptOverError, FlowValidationError } from "../errors.ts";
import { waitUntil } from "../../tests/_deadline.ts";

function hostOn(store: Store, clock = fakeClock()): FlowHost {
  return {
    resolver: { forScope: () => Promise.resolve(store), byName: () => Promise.resolve(store) },
    recordsStore: () => Promise.resolve(store),
    clock,
    cwd: Deno.cwd(),
  };
}

/** Timers that never wait: they record what was asked and resolve at once. */
function instantTimers(): Timers & { waits: number[] } {
  const waits: number[] = [];
  return {
    waits,
    sleep(ms, signal) {
      waits.push(ms);
      return signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve();
    },
  };
}

/** Timers whose sleeps resolve only when the test says so. */
function manualTimers(): Timers & { pending: { ms: number; fire(): void }[] } {
  const pending: { ms: number; fire(): void }[] = [];
  return {
    pending,
    sleep(ms, signal) {
      return new Promise((resolve, reject) => {
        pending.push({ ms, fire: resolve });
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    },
  };
}

const node = (id: string, type: string, extra: Record<string, unknown> = {}) => ({
  id,
  type,
  ...extra,
});

/** Run `flow` with the executor alone (no records), with extra node types by name (and options). */
async function execute(
  store: Store,
  flow: Record<string, unknown>,
  types: Record<string, unknown>,
  options: Partial<ExecuteOptions> = {},
): Promise<RunRecord> {
  const { validateFlow } = await import("./parse.ts");
  const { prepareFlow } = await import("./prepare.ts");
  const { executeFlow } = await import("./executor.ts");
  const prepared = await prepareFlow(validateFlow(flow), {
    nodeTypes: new Map(Object.entries(types)) as Map<string, never>,
  });
  return executeFlow(prepared, {
    runId: "r1",
    flowVersion: "v",
    inputs: {},
    resolver: hostOn(store).resolver,
    clock: fakeClock(),
    ...options,
  });
}

Deno.test("runFlow() runs the counter and keeps flow state between runs", async () => {
  await using store = await openStore({ plugin: "memory" });
  const host = hostOn(store);
  const first = await runFlow(host, "examples/counter.flow.yaml");
  const second = await runFlow(host, "examples/counter.flow.yaml", { input: { by: 5 } });
  assert.equal(first.status, "succeeded");
  assert.deepEqual(first.outputs, { count: 1 });
  assert.deepEqual(second.outputs, { count: 6 });
  assert.equal((await store.get(["flow", "counter", "count"]))?.value, 6);
});

Deno.test("runFlow() runs independent nodes concurrently, bounded by concurrency", async () => {
  await using store = await openStore({ plugin: "memory" });
  let running = 0;
  let peak = 0;
  const gate = Promise.withResolvers<void>();
  const wait = defineNode({
    optionsSchema: z.object({}),
    async run() {
      running++;
      peak = Math.max(peak, running);
      await gate.promise;
      running--;
      return null;
    },
  });
  const nodes = Array.from({ length: 6 }, (_, i) => node(`n${i}`, "wait"));
  const done = execute(store, { id: "wide", concurrency: 3, nodes }, { wait });
  // Until three are running (however slow the machine), then a few more turns of the event
  // loop in which a fourth could start if the limit were not kept.
  await waitUntil("three nodes running", () => running >= 3, {
    every: 1,
    details: () => `running: ${running}`,
  });
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 1));
  assert.equal(peak, 3, "exactly 3 nodes ran at once");
  gate.resolve();
  const run = await done;
  assert.equal(run.status, "succeeded");
  assert.equal(peak, 3);
});

Deno.test("runFlow() retries a failing node, waiting delay then exponential backoff", async () => {
  await using store = await openStore({ plugin: "memory" });
  const timers = instantTimers();
  // Trusted: with instant timers, a Worker's start would lose the race with the attempt timeout.
  const host = { ...hostOn(store), trustedNodes: ["./examples/nodes/flaky.ts"] };
  const run = await runFlow(host, "examples/retry.flow.yaml", { timers });
  assert.equal(run.status, "succeeded");
  assert.equal(run.nodes.flaky.attempts, 3);
  assert.deepEqual(run.outputs, { attempts: 3 });
  // Two retry waits (50, 100), plus the 5 s attempt timeouts that never fired first.
  assert.deepEqual(timers.waits.filter((ms) => ms !== 5000), [50, 100]);
});

Deno.test("runFlow() fails after the last attempt with the node id and error", async () => {
  await using store = await openStore({ plugin: "memory" });
  const run = await runFlow(hostOn(store), {
    id: "always-fails",
    nodes: [
      node("write", "state.set", { with: { key: "before", value: 1 } }),
      node("boom", "fail", {
        needs: ["write"],
        with: { message: "disk on fire" },
        retry: { attempts: 3, delay: 10, backoff: "constant" },
      }),
      node("after", "state.set", { needs: ["boom"], with: { key: "after", value: 1 } }),
    ],
  }, { timers: instantTimers() });
  assert.equal(run.status, "failed");
  assert.deepEqual(run.error, { node: "boom", message: "disk on fire" });
  assert.equal(run.nodes.boom.attempts, 3);
  assert.equal(run.nodes.after.status, "skipped");
  assert.equal(
    (await store.get(["flow", "always-fails", "before"]))?.value,
    1,
    "earlier state kept",
  );
  assert.equal(await store.get(["flow", "always-fails", "after"]), null);
});

Deno.test("runFlow() times out an attempt and records the node as timed-out", async () => {
  await using store = await openStore({ plugin: "memory" });
  const timers = manualTimers();
  const promise = runFlow(hostOn(store), {
    id: "slow",
    nodes: [node("wait", "delay", { with: { for: "1h" }, timeout: "2s" })],
  }, { timers });
  await waitUntil("two timers pending", () => timers.pending.length >= 2, { every: 1 });
  const timeout = timers.pending.find((p) => p.ms === 2000);
  assert.ok(timeout, "a 2 s timeout timer was set");
  timeout.fire();
  const run = await promise;
  assert.equal(run.status, "failed");
  assert.equal(run.nodes.wait.status, "timed-out");
  assert.match(run.error?.message ?? "", /timed out after 2000 ms/);
  const stored = await new Records(store).getRun(run.id);
  assert.equal(stored?.status, "failed");
  assert.equal(stored?.nodes.wait.status, "timed-out");
});

Deno.test("runFlow() records a cancelled run when the signal aborts", async () => {
  await using store = await openStore({ plugin: "memory" });
  const timers = manualTimers();
  const controller = new AbortController();
  const promise = runFlow(hostOn(store), {
    id: "cancel-me",
    nodes: [
      node("wait", "delay", { with: { for: "1h" } }),
      node("never", "state.set", { needs: ["wait"], with: { key: "x", value: 1 } }),
    ],
  }, { timers, signal: controller.signal });
  await waitUntil("a timer pending", () => timers.pending.length >= 1, { every: 1 });
  controller.abort();
  const run = await promise;
  assert.equal(run.status, "cancelled");
  assert.equal(run.nodes.wait.status, "cancelled");
  assert.equal(run.nodes.never.status, "cancelled");
  assert.equal((await new Records(store).getRun(run.id))?.status, "cancelled");
  assert.equal(await store.get(["flow", "cancel-me", "x"]), null);
});

Deno.test("runFlow() skips a node whose if is falsy and runs its dependents", async () => {
  await using store = await openStore({ plugin: "memory" });
  const run = await runFlow(hostOn(store), {
    id: "branch",
    inputs: { go: { type: "boolean", default: false } },
    nodes: [
      node("maybe", "transform", { if: "${{ inputs.go }}", with: { value: 1 } }),
      node("after", "transform", {
        needs: ["maybe"],
        with: { value: "${{ default(nodes.maybe.output, 'none') }}" },
      }),
    ],
    outputs: { after: "${{ nodes.after.output }}" },
  });
  assert.equal(run.nodes.maybe.status, "skipped");
  assert.deepEqual(run.outputs, { after: "none" });
});

Deno.test("runFlow() continues past a continueOnError node", async () => {
  await using store = await openStore({ plugin: "memory" });
  const run = await runFlow(hostOn(store), {
    id: "tolerant",
    nodes: [
      node("boom", "fail", { continueOnError: true }),
      node("after", "transform", { needs: ["boom"], with: { value: "${{ nodes.boom.status }}" } }),
    ],
    outputs: { seen: "${{ nodes.after.output }}" },
  });
  assert.equal(run.status, "succeeded");
  assert.equal(run.nodes.boom.status, "failed");
  assert.deepEqual(run.outputs, { seen: "failed" });
});

Deno.test("20 concurrent runs incrementing one flow counter end at exactly 20", async () => {
  await using store = await openStore({ plugin: "memory" });
  const host = hostOn(store, { now: () => Date.now() } as ReturnType<typeof fakeClock>);
  const runs = await Promise.all(
    Array.from({ length: 20 }, () => runFlow(host, "examples/counter.flow.yaml")),
  );
  assert.ok(runs.every((r) => r.status === "succeeded"));
  assert.equal((await store.get(["flow", "counter", "count"]))?.value, 20);
  const counts = runs.map((r) => r.outputs?.count).sort((a, b) => Number(a) - Number(b));
  assert.deepEqual(counts, Array.from({ length: 20 }, (_, i) => i + 1));
});

Deno.test("scopes never leak: flow and node scopes are isolated, global is shared", async () => {
  await using store = await openStore({ plugin: "memory" });
  const host = hostOn(store);
  const writer = (id: string) => ({
    id,
    nodes: [
      node("a", "state.set", { with: { scope: "flow", key: "k", value: `${id}-flow` } }),
      node("b", "state.set", { with: { scope: "node", key: "k", value: `${id}-node-b` } }),
      node("c", "state.set", { with: { scope: "node", key: "k", value: `${id}-node-c` } }),
      node("g", "state.set", { with: { scope: "global", key: "k", value: `${id}-global` } }),
    ],
  });
  await runFlow(host, writer("one"));
  await runFlow(host, writer("two"));
  const reader = (id: string) =>
    runFlow(host, {
      id,
      nodes: [
        node("flow", "state.get", { with: { scope: "flow", key: "k" } }),
        node("b", "state.get", { with: { scope: "node", key: "k" } }),
        node("global", "state.get", { with: { scope: "global", key: "k" } }),
      ],
      outputs: {
        flow: "${{ nodes.flow.output }}",
        b: "${{ nodes.b.output }}",
        global: "${{ nodes.global.output }}",
      },
    });
  assert.deepEqual((await reader("one")).outputs, {
    flow: "one-flow",
    b: "one-node-b",
    global: "two-global",
  });
  assert.deepEqual((await reader("two")).outputs, {
    flow: "two-flow",
    b: "two-node-b",
    global: "two-global",
  });
  assert.deepEqual((await reader("three")).outputs, { flow: null, b: null, global: "two-global" });
  assert.equal((await store.get(["node", "one", "c", "k"]))?.value, "one-node-c");
});

Deno.test("runFlow() records events, the version and metrics", async () => {
  await using store = await openStore({ plugin: "memory" });
  const run = await runFlow(hostOn(store), "examples/fan-out.flow.yaml");
  const records = new Records(store);
  const events = await records.getEvents(run.id);
  assert.equal(events[0].type, "run.start");
  assert.equal(events.at(-1)?.type, "run.end");
  const ends = events.filter((e) => e.type === "node.end").map((e) => e.node).sort();
  assert.deepEqual(ends, ["double", "report", "square", "total", "visits"]);
  assert.ok(events.some((e) => e.type === "node.log" && /sum 120/.test(e.message ?? "")));
  const versions = await records.listVersions("fan-out");
  assert.equal(versions.length, 1);
  assert.equal(versions[0].hash, run.flowVersion);
  const metrics = await records.getMetrics("fan-out");
  assert.equal(metrics?.count, 1);
  assert.equal(metrics?.succeeded, 1);
});

Deno.test("runFlow() rejects bad inputs before writing anything", async () => {
  await using store = await openStore({ plugin: "memory" });
  await assert.rejects(
    runFlow(hostOn(store), "examples/counter.flow.yaml", { input: { by: "three" } }),
    (err) =>
      err instanceof FlowValidationError &&
      JSON.stringify(err.problems[0].path) === '["inputs","by"]' &&
      err.problems[0].line === 7 &&
      /counter\.flow\.yaml:7:7: inputs\.by: expected a number/.test(err.message),
  );
  await assert.rejects(
    runFlow(hostOn(store), { id: "bad", nodes: [node("x", "nope")] }),
    /unknown node type "nope"/,
  );
  assert.equal(await store.count(), 0);
});

Deno.test("runFlow() fails a node whose output is not JSON", async () => {
  await using store = await openStore({ plugin: "memory" });
  // The run's check, for a node defined without the type check (a JavaScript module).
  const bad = defineNode({ optionsSchema: z.object({}), run: (): unknown => new Map() });
  const direct = await execute(store, { id: "badout", nodes: [node("x", "bad")] }, { bad });
  assert.equal(direct.status, "failed");
  assert.match(direct.error?.message ?? "", /not JSON|Map/);
});

Deno.test("a node's context is fenced once it returned: later writes and logs throw AttemptOverError", async () => {
  await using store = await openStore({ plugin: "memory" });
  const late = Promise.withResolvers<unknown[]>();
  const returnsEarly = defineNode({
    optionsSchema: z.object({}),
    run(ctx) {
      // Work left behind after returning: it must not land once the run is recorded.
      setTimeout(() => {
        Promise.allSettled([
          ctx.flow.set("late", 1),
          ctx.node.get("x"),
          Promise.resolve().then(() => ctx.log("late")),
        ]).then((results) => late.resolve(results.map((r) => r.status === "rejected" && r.reason)));
      }, 0);
      return "done";
    },
  });
  const run = await execute(store, { id: "early", nodes: [node("n", "early")] }, {
    early: returnsEarly,
  });
  assert.equal(run.status, "succeeded");
  const errors = await late.promise;
  assert.equal(errors.length, 3);
  for (const err of errors) {
    assert.ok(err instanceof AttemptOverError, `${err}`);
    assert.equal(err.code, "ATTEMPT_OVER");
    assert.match(err.message, /^attempt 1 of node n in run r1 is over \(it returned\)/);
  }
  assert.equal(await store.get(["flow", "early", "late"]), null);
});

Deno.test("a built-in node with constant options is checked once per prepared flow and gets a fresh copy on every run", async () => {
  const { validateFlow } = await import("./parse.ts");
  const { prepareFlow } = await import("./prepare.ts");
  const { executeFlow } = await import("./executor.ts");
  const { builtinNodes } = await import("./nodes.ts");
  await using store = await openStore({ plugin: "memory" });
  let checks = 0;
  const seen: unknown[] = [];
  // Registered as a built-in for this test: it counts its checks and changes what it is given.
  const mutator = defineNode({
    optionsSchema: z.object({ list: z.array(z.number()) }).refine(() => ++checks > 0),
    run(_ctx, input) {
      seen.push(structuredClone(input));
      input.list.push(99);
      return input.list;
    },
  });
  const builtins = builtinNodes as Map<string, unknown>;
  builtins.set("test.mutator", mutator);
  try {
    const flow = async (types?: Map<string, never>) =>
      await prepareFlow(
        validateFlow({
          id: "constant",
          nodes: [
            node("a", "test.mutator", { with: { list: [1] } }),
            node("b", "test.mutator", { needs: ["a"], with: { list: "${{ nodes.a.output }}" } }),
          ],
        }),
        { nodeTypes: types },
      );
    const prepared = await flow();
    const options = {
      runId: "r1",
      flowVersion: "v",
      inputs: {},
      resolver: hostOn(store).resolver,
      clock: fakeClock(),
    };
    const first = await executeFlow(prepared, options);
    const second = await executeFlow(prepared, { ...options, runId: "r2" });
    for (const record of [first, second]) {
      assert.equal(record.status, "succeeded");
      assert.deepEqual(record.nodes.a.output, [1, 99]);
      assert.deepEqual(record.nodes.b.output, [1, 99, 99]);
    }
    // Node a got [1] both times; b's `with` is a template, evaluated per run.
    assert.deepEqual(seen, [{ list: [1] }, { list: [1, 99] }, { list: [1] }, { list: [1, 99] }]);
    // a's options were checked when the flow was prepared and on the first run only; b's on both.
    assert.equal(checks, 4);

    // The same type given as a custom type (not the built-in itself) is checked every run.
    checks = 0;
    const custom = await flow(new Map([["test.mutator", { ...mutator }]]) as Map<string, never>);
    await executeFlow(custom, options);
    await executeFlow(custom, { ...options, runId: "r2" });
    assert.equal(checks, 5); // prepared, then a and b on both runs
  } finally {
    builtins.delete("test.mutator");
  }
});

Deno.test("ctx.log() with an unknown level fails the node, naming the levels and the closest one", async () => {
  await using store = await openStore({ plugin: "memory" });
  const logger = defineNode({
    optionsSchema: z.object({ level: z.unknown().optional() }),
    run(ctx, input) {
      ctx.log("hello", input.level as never);
      return "logged";
    },
  });
  const ran = async (level: unknown) => {
    const run = await execute(store, {
      id: "logs",
      nodes: [node("n", "logger", { with: level === undefined ? {} : { level } })],
    }, { logger });
    return run.nodes.n.error ?? run.nodes.n.output;
  };
  assert.equal(
    await ran("warning"),
    'ctx.log(): unknown level "warning" (did you mean "warn"?); the levels are "debug", "info", "warn", "error"',
  );
  assert.equal(
    await ran(3),
    'ctx.log(): unknown level 3; the levels are "debug", "info", "warn", "error"',
  );
  assert.equal(await ran("warn"), "logged");
  assert.equal(await ran(undefined), "logged");
});

Deno.test("ctx.sleep() refuses NaN and negative waits, and sleeps through Infinity until the node's timeout", async () => {
  await using store = await openStore({ plugin: "memory" });
  const sleeper = defineNode({
    optionsSchema: z.object({ ms: z.string() }),
    async run(ctx, input) {
      await ctx.sleep(Number(input.ms));
      return "woke";
    },
  });
  const ran = (ms: number) =>
    execute(store, {
      id: "sleeps",
      nodes: [node("n", "sleeper", { with: { ms: String(ms) }, timeout: "200ms" })],
    }, { sleeper });
  for (const ms of [NaN, -1]) {
    const run = await ran(ms);
    assert.equal(run.status, "failed");
    assert.match(
      run.nodes.n.error ?? "",
      new RegExp(
        `^ctx\\.sleep\\(${ms}\\): give milliseconds >= 0, or Infinity to wait until the node is stopped`,
      ),
    );
  }
  assert.equal((await ran(0.5)).nodes.n.output, "woke");
  // Infinity is "until stopped": here the node's own timeout (setTimeout read it as 0).
  const forever = await ran(Infinity);
  assert.equal(forever.nodes.n.status, "timed-out");
  assert.match(forever.error?.message ?? "", /timed out after 200 ms/);
});

Deno.test("nodes ready together start before any of them ends, synchronous ones too: the order of a run's events", async () => {
  const { openRuntime } = await import("../../mod.ts");
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const seen: string[] = [];
  const run = await rt.runFlow({
    id: "par",
    nodes: [
      { id: "a", type: "transform", with: { value: 1 } },
      { id: "b", type: "transform", with: { value: 2 } },
      { id: "c", type: "fail", with: { message: "no" }, continueOnError: true },
      { id: "d", type: "transform", needs: ["a"], with: { value: 3 } },
    ],
  }, {
    onEvent: (e) => {
      if (e.type.startsWith("node.")) {
        seen.push(`${e.type.slice(5)}:${(e as { node: string }).node}`);
      }
    },
  });
  assert.equal(run.status, "succeeded");
  assert.deepEqual(seen, [
    "start:a",
    "attempt:a",
    "start:b",
    "attempt:b",
    "start:c",
    "attempt:c",
    "end:a",
    "end:b",
    "attempt:c", // c's failed attempt
    "end:c",
    "start:d",
    "attempt:d",
    "end:d",
  ]);
});

/**
 * Run 100 chained nodes that each hold the thread for 2 ms of real time and return without a
 * promise, with the system clock and a fake one: the run never waits on I/O, so only the
 * executor's own yields (every 50 ms) let a timer fire. The first node sets the timer that
 * cancels the run; it must end `cancelled` midway. With `freezeDate`, the global `Date.now()`
 * stands still meanwhile (what fake-time libraries do until a test ticks them).
 */
async function assertCancelledMidway(freezeDate: boolean): Promise<void> {
  const { systemClock } = await import("../clock.ts");
  await using store = await openStore({ plugin: "memory" });
  let stop = new AbortController();
  let armed = false;
  const busy = defineNode({
    optionsSchema: z.object({}),
    run() {
      if (!armed) {
        armed = true;
        setTimeout(() => stop.abort(), 0);
      }
      const until = performance.now() + 2;
      while (performance.now() < until) { /* busy */ }
      return 1;
    },
  });
  const nodes = Array.from(
    { length: 100 },
    (_, i) => node(`n${i}`, "test.busy", i === 0 ? {} : { needs: [`n${i - 1}`] }),
  );
  const realNow = Date.now;
  for (const clock of [systemClock, fakeClock()]) {
    stop = new AbortController();
    armed = false;
    const frozen = realNow();
    if (freezeDate) Date.now = () => frozen;
    let record;
    try {
      record = await execute(store, { id: "busy", nodes }, { "test.busy": busy }, {
        clock,
        signal: stop.signal,
      });
    } finally {
      Date.now = realNow;
    }
    const ran = Object.values(record.nodes).filter((n) => n.status === "succeeded").length;
    assert.equal(record.status, "cancelled", `${record.status}: ${ran} of 100 nodes ran`);
    // 100 nodes take at least 200 ms: the timer fired at a yield after 50 ms, well before the end.
    assert.ok(ran > 0 && ran < 100, `${ran} nodes ran`);
  }
}

Deno.test("a long synchronous flow yields to the event loop now and then: a timer cancels it midway, with the system clock or a fake one", async () => {
  await assertCancelledMidway(false);
});

Deno.test("a long synchronous flow yields even while Date.now() stands still (a test faking Date)", async () => {
  await assertCancelledMidway(true);
});

Deno.test("a state view's call still in flight when its node returns is waited for: its write lands and is in node.end", async () => {
  await using store = await openStore({ plugin: "memory" });
  const events: RunEvent[] = [];
  const leavesWrites = defineNode({
    optionsSchema: z.object({}),
    run(ctx) {
      // Not awaited: the calls are in flight when the node returns.
      void ctx.flow.set("a", 1);
      void ctx.node.increment("b");
      return "returned";
    },
  });
  const run = await execute(
    store,
    {
      id: "inflight",
      nodes: [node("n", "leaves"), node("m", "transform", { needs: ["n"], with: { value: 2 } })],
    },
    { leaves: leavesWrites },
    { onEvent: (e) => events.push(e) },
  );
  assert.equal(run.status, "succeeded");
  // Not left behind: no note that the attempt did not stop within the grace period.
  assert.deepEqual(events.filter((e) => e.type === "node.log"), []);
  assert.equal((await store.get(["flow", "inflight", "a"]))?.value, 1);
  assert.equal((await store.get(["node", "inflight", "n", "b"]))?.value, 1);
  const end = events.find((e) => e.type === "node.end" && e.node === "n");
  assert.deepEqual(end?.type === "node.end" && end.writes, [
    { scope: "flow", key: ["a"] },
    { scope: "node", key: ["b"] },
  ]);
  // The node ended after its calls did: its dependent started after its end.
  const order = events.filter((e) => e.type !== "node.attempt").map((e) =>
    `${e.type}${"node" in e ? ` ${e.node}` : ""}`
  );
  assert.deepEqual(order, [
    "run.start",
    "node.start n",
    "node.end n",
    "node.start m",
    "node.end m",
    "run.end",
  ]);
});

Deno.test("a cancelled run stops every attempt running then, after others ended in any order", async () => {
  await using store = await openStore({ plugin: "memory" });
  const controller = new AbortController();
  const started = new Set<string>();
  const release = new Map<string, () => void>();
  const waits = defineNode({
    optionsSchema: z.object({}),
    run(ctx) {
      started.add(ctx.nodeId);
      return new Promise((resolve, reject) => {
        release.set(ctx.nodeId, () => resolve(ctx.nodeId));
        ctx.signal.addEventListener("abort", () => reject(new Error("stopped")), { once: true });
      });
    },
  });
  const ids = ["a", "b", "c", "d", "e"];
  const promise = execute(
    store,
    {
      id: "many",
      nodes: ids.map((id) => node(id, "waits")),
    },
    { waits },
    { signal: controller.signal },
  );
  await waitUntil("every node started", () => started.size >= ids.length, {
    every: 1,
    details: () => `started: ${[...started]}`,
  });
  // The first, a middle one and the last of the attempts running end before the cancel.
  for (const id of ["a", "c", "e"]) release.get(id)!();
  await new Promise((r) => setTimeout(r, 1));
  controller.abort();
  const run = await promise;
  assert.equal(run.status, "cancelled");
  assert.deepEqual(
    Object.fromEntries(ids.map((id) => [id, run.nodes[id].status])),
    { a: "succeeded", b: "cancelled", c: "succeeded", d: "cancelled", e: "succeeded" },
  );
});

Deno.test("templates read the outcomes of nodes in with, if and outputs (a run keeps them only for templates)", async () => {
  await using store = await openStore({ plugin: "memory" });
  const flow = (last: Record<string, unknown>, outputs?: Record<string, unknown>) => ({
    id: "reads",
    nodes: [
      node("one", "transform", { with: { value: 1 } }),
      node("two", "transform", { needs: ["one"], with: { value: 2 } }),
      node("last", "transform", { needs: ["two"], ...last }),
    ],
    ...(outputs === undefined ? {} : { outputs }),
  });
  const withRun = await execute(
    store,
    flow({ with: { value: "${{ nodes.two.output + 1 }}" } }),
    {},
  );
  assert.equal(withRun.nodes.last.output, 3);
  const ifRun = await execute(
    store,
    flow({ if: "${{ nodes.one.status == 'succeeded' }}", with: { value: 4 } }),
    {},
  );
  assert.equal(ifRun.nodes.last.output, 4);
  const outputsRun = await execute(
    store,
    flow({ with: { value: 5 } }, { sum: "${{ nodes.one.output + nodes.last.output }}" }),
    {},
  );
  assert.deepEqual(outputsRun.outputs, { sum: 6 });
  // No template at all: the outcomes are in the record all the same.
  const plain = await execute(store, flow({ with: { value: 7 } }), {});
  assert.deepEqual(
    Object.fromEntries(Object.entries(plain.nodes).map(([id, n]) => [id, n.output])),
    { one: 1, two: 2, last: 7 },
  );
});
