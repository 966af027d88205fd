/**
 * Every run ends recorded: cancelling or timing out a flow waits (within a
 * grace period) for its sub-runs to record their end; a node attempt that
 * timed out cannot write afterwards and no retry runs alongside it; a root
 * run starts at most `maxSubRuns` sub-runs. Through the public surface
 * (`openRuntime().runFlow`), with timers the test fires itself.
 */
import assert from "node:assert/strict";
import { type FlowDefinition, openRuntime, type RunRecord, type Timers } from "../mod.ts";
import { nextHeld, reset, stats } from "./fixtures/nodes/stubborn.ts";

const STUBBORN = new URL("./fixtures/nodes/stubborn.ts", import.meta.url).pathname;

interface Sleep {
  ms: number;
  fire(): void;
}

/** Timers whose sleeps end only when the test fires them; `next(ms)` awaits a sleep of `ms`. */
function manualTimers(): Timers & { next(ms: number): Promise<Sleep> } {
  const asked: Sleep[] = [];
  const waiters: { ms: number; resolve(sleep: Sleep): void }[] = [];
  return {
    sleep(ms, signal) {
      return new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const sleep: Sleep = { ms, fire: () => resolve() };
        signal?.addEventListener("abort", () => {
          const i = asked.indexOf(sleep);
          if (i >= 0) asked.splice(i, 1);
          reject(signal.reason);
        }, { once: true });
        const w = waiters.findIndex((w) => w.ms === ms);
        if (w >= 0) waiters.splice(w, 1)[0].resolve(sleep);
        else asked.push(sleep);
      });
    },
    next(ms) {
      const i = asked.findIndex((s) => s.ms === ms);
      if (i >= 0) return Promise.resolve(asked.splice(i, 1)[0]);
      return new Promise((resolve) => waiters.push({ ms, resolve }));
    },
  };
}

const HOUR = 3_600_000;

/** A flow with three parallel `flow` nodes, each running a sub-flow that waits an hour. */
function fanOut(extra: Partial<FlowDefinition> = {}): Record<string, unknown> {
  const slow = { id: "slow", nodes: [{ id: "wait", type: "delay", with: { for: "1h" } }] };
  return {
    id: "parent",
    ...extra,
    nodes: ["a", "b", "c"].map((id) => ({ id, type: "flow", with: { flow: slow } })),
  };
}

async function allRuns(
  rt: { records(): Promise<{ listRuns(o: object): Promise<{ runs: RunRecord[] }> }> },
) {
  return (await (await rt.records()).listRuns({ limit: 100 })).runs;
}

Deno.test("cancelling a flow with parallel flow nodes records every sub-run's end before it returns", async () => {
  await using rt = await openRuntime({
    // The stubborn node shares state with this test: it runs in-process.
    config: { stores: { default: { plugin: "memory" } }, nodes: { trusted: [STUBBORN] } },
  });
  const timers = manualTimers();
  const controller = new AbortController();
  const done = rt.runFlow(fanOut(), { timers, signal: controller.signal });
  for (let i = 0; i < 3; i++) await timers.next(HOUR);
  controller.abort();
  const run = await done;
  assert.equal(run.status, "cancelled");
  const runs = await allRuns(rt);
  assert.equal(runs.length, 4);
  const subs = runs.filter((r) => r.parentRunId === run.id);
  assert.equal(subs.length, 3);
  for (const sub of subs) assert.equal(sub.status, "cancelled", `sub-run ${sub.id} ended`);
});

Deno.test("a flow that times out with parallel flow nodes records every sub-run's end before it returns", async () => {
  await using rt = await openRuntime({
    // The stubborn node shares state with this test: it runs in-process.
    config: { stores: { default: { plugin: "memory" } }, nodes: { trusted: [STUBBORN] } },
  });
  const timers = manualTimers();
  const done = rt.runFlow(fanOut({ timeout: "2h" }), { timers });
  const flowTimeout = await timers.next(2 * HOUR);
  for (let i = 0; i < 3; i++) await timers.next(HOUR);
  flowTimeout.fire();
  const run = await done;
  assert.equal(run.status, "timed-out");
  const subs = (await allRuns(rt)).filter((r) => r.parentRunId === run.id);
  assert.equal(subs.length, 3);
  for (const sub of subs) assert.equal(sub.status, "cancelled", `sub-run ${sub.id} ended`);
});

function stubbornFlow(hold: number): Record<string, unknown> {
  return {
    id: "stubborn",
    nodes: [{
      id: "write",
      type: STUBBORN,
      with: { key: "k", hold },
      timeout: "1s",
      retry: { attempts: 3, delay: "10ms", backoff: "constant" },
    }],
  };
}

Deno.test("a timed-out attempt cannot write, and its retry starts only after it settled", async () => {
  reset();
  await using rt = await openRuntime({
    // The stubborn node shares state with this test: it runs in-process.
    config: { stores: { default: { plugin: "memory" } }, nodes: { trusted: [STUBBORN] } },
  });
  const timers = manualTimers();
  const done = rt.runFlow(stubbornFlow(1), { timers });
  const first = await nextHeld();
  (await timers.next(1000)).fire(); // attempt 1 times out; it ignores its signal
  await timers.next(5000); // the executor waits for it to stop
  first.release();
  assert.match(
    await first.outcome,
    /attempt 1 of node write in run \S+ is over \(timed out after 1000 ms\); writes after its end are refused/,
  );
  (await timers.next(10)).fire(); // the retry's delay
  const run = await done;
  assert.equal(run.status, "succeeded");
  assert.equal(run.nodes.write.attempts, 2);
  assert.equal(stats.peak, 1, "never two attempts at once");
  const store = await rt.store("default");
  assert.equal((await store.get(["flow", "stubborn", "k"]))?.value, 2, "only attempt 2 wrote");
});

Deno.test("an attempt that does not stop within the grace period fails the node without a retry, and stays fenced", async () => {
  reset();
  await using rt = await openRuntime({
    // The stubborn node shares state with this test: it runs in-process.
    config: { stores: { default: { plugin: "memory" } }, nodes: { trusted: [STUBBORN] } },
  });
  const timers = manualTimers();
  const done = rt.runFlow(stubbornFlow(3), { timers, abortGrace: 750 });
  const first = await nextHeld();
  (await timers.next(1000)).fire();
  (await timers.next(750)).fire(); // the grace period passes
  const run = await done;
  assert.equal(run.status, "failed");
  assert.equal(run.nodes.write.status, "timed-out");
  assert.equal(run.nodes.write.attempts, 1);
  assert.match(
    run.error?.message ?? "",
    /attempt 1 did not stop within the 750 ms grace period; no retry was started while it may still run/,
  );
  assert.equal((await (await rt.records()).getRun(run.id))?.status, "failed");
  first.release();
  assert.match(await first.outcome, /is over \(timed out after 1000 ms\)/);
  assert.equal(stats.peak, 1);
  const store = await rt.store("default");
  assert.equal(await store.get(["flow", "stubborn", "k"]), null, "nothing written after the end");
});

Deno.test("a cancelled run waits for a node ignoring its signal, within the grace period, and fences it", async () => {
  reset();
  await using rt = await openRuntime({
    // The stubborn node shares state with this test: it runs in-process.
    config: { stores: { default: { plugin: "memory" } }, nodes: { trusted: [STUBBORN] } },
  });
  const timers = manualTimers();
  const controller = new AbortController();
  const done = rt.runFlow(stubbornFlow(1), { timers, signal: controller.signal });
  const first = await nextHeld();
  controller.abort();
  first.release();
  assert.match(
    await first.outcome,
    /attempt 1 of node write in run \S+ is over \(the run was cancelled\)/,
  );
  const run = await done;
  assert.equal(run.status, "cancelled");
  assert.equal(run.nodes.write.status, "cancelled");
  const store = await rt.store("default");
  assert.equal(await store.get(["flow", "stubborn", "k"]), null);
});

Deno.test("a run whose sub-runs do not end within the grace period names them in its record", async () => {
  reset();
  await using rt = await openRuntime({
    // The stubborn node shares state with this test: it runs in-process.
    config: { stores: { default: { plugin: "memory" } }, nodes: { trusted: [STUBBORN] } },
  });
  const timers = manualTimers();
  const controller = new AbortController();
  const stuck = { id: "stuck", nodes: [{ id: "write", type: STUBBORN, with: { key: "k" } }] };
  const done = rt.runFlow(
    { id: "parent", nodes: [{ id: "sub", type: "flow", with: { flow: stuck } }] },
    { timers, signal: controller.signal, abortGrace: 750 },
  );
  const held = await nextHeld();
  controller.abort();
  // The parent's flow node and the sub-run's node each wait 750 ms; the parent
  // is aborted first, so its grace sleep is asked for first: end only that one.
  const graces = [await timers.next(750), await timers.next(750)];
  graces[0].fire();
  const run = await done;
  assert.equal(run.status, "cancelled");
  const sub = (await allRuns(rt)).find((r) => r.parentRunId === run.id);
  assert.ok(sub);
  assert.match(
    run.error?.message ?? "",
    new RegExp(`sub-run ${sub.id} had not recorded its end after the 750 ms grace period`),
  );
  assert.match(run.nodes.sub.error ?? "", new RegExp(sub.id));
  graces[1].fire();
  held.release();
  await held.outcome;
});

/** Starts two sub-runs of itself until `left` (default 3) is 0: 2 + 4 + 8 = 14 sub-runs. */
const TREE = new URL("./fixtures/flows/tree.flow.yaml", import.meta.url).pathname;

/** Sub-runs under `root`, at every level. */
function countUnder(runs: RunRecord[], root: string): number {
  return runs.filter((r) => r.parentRunId === root).reduce(
    (n, r) => n + 1 + countUnder(runs, r.id),
    0,
  );
}

Deno.test("a root run starts at most maxSubRuns sub-runs", async () => {
  await using rt = await openRuntime({
    // The stubborn node shares state with this test: it runs in-process.
    config: { stores: { default: { plugin: "memory" } }, nodes: { trusted: [STUBBORN] } },
  });
  const ok = await rt.runFlow(TREE, { maxSubRuns: 14 });
  assert.equal(ok.status, "succeeded");
  const over = await rt.runFlow(TREE, { maxSubRuns: 13 });
  assert.equal(over.status, "failed");
  assert.match(
    over.error?.message ?? "",
    /would start sub-run 14 under root run \S+, over the limit of 13 sub-runs per root run.*raise it with "runs: \{ maxSubRuns: N \}" in the config \(or the maxSubRuns option of runFlow\(\)\)/,
  );
  const runs = await allRuns(rt);
  assert.equal(countUnder(runs, ok.id), 14);
  assert.equal(countUnder(runs, over.id), 13);
  for (const r of runs) assert.notEqual(r.status, "running");
});

Deno.test("the config's runs.maxSubRuns applies to every run; the option overrides it", async () => {
  await using rt = await openRuntime({
    config: { stores: { default: { plugin: "memory" } }, runs: { maxSubRuns: 5 } },
  });
  const limited = await rt.runFlow(TREE);
  assert.equal(limited.status, "failed");
  assert.match(limited.error?.message ?? "", /over the limit of 5 sub-runs per root run/);
  assert.equal(countUnder(await allRuns(rt), limited.id), 5);
  const raised = await rt.runFlow(TREE, { maxSubRuns: 14 });
  assert.equal(raised.status, "succeeded");
});

Deno.test("outputs too large for a run record: a node over 4 MiB fails; outputs over 16 MiB together are dropped and the run is recorded failed, never left running", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-big-" });
  try {
    await Deno.writeTextFile(
      `${dir}/big.js`,
      'export default { kind: "flowstate.node", optionsSchema: { "~standard": { version: 1, vendor: "t", validate: (value) => ({ value }) } }, run: (ctx, input) => "x".repeat(input.mib * 1024 * 1024) };\n',
    );
    for (const trusted of [true, false]) {
      await using rt = await openRuntime({
        config: {
          stores: { main: { plugin: "memory" } },
          nodes: { trusted: trusted ? ["./big.js"] : [] },
        },
        cwd: dir,
        // Not the module's folder: a node module inside the home is refused.
        home: `${dir}/home`,
      });
      const records = await rt.records();
      const one = await rt.runFlow({
        id: "one",
        nodes: [{ id: "huge", type: "./big.js", with: { mib: 5 }, continueOnError: true }],
      });
      assert.equal(one.nodes.huge.status, "failed");
      assert.match(
        one.nodes.huge.error!,
        /node huge returned 5,242,882 bytes of JSON; a node's output is at most 4,194,304 bytes/,
      );
      assert.equal((await records.getRun(one.id))?.status, "succeeded");

      const nodes = Array.from(
        { length: 5 },
        (_, i) => ({ id: `n${i}`, type: "./big.js", with: { mib: 3.9 } }),
      );
      const many = await rt.runFlow({ id: "many", nodes } as FlowDefinition);
      assert.equal(many.status, "failed");
      assert.match(many.error!.message, /could not be stored with its outputs .*16 MiB/);
      const stored = await records.getRun(many.id);
      assert.equal(stored?.status, "failed", "recorded, not left running");
      assert.equal(stored?.outputs, null);
      for (const node of Object.values(stored!.nodes)) {
        assert.equal(node.status, "succeeded");
        assert.equal(node.output, undefined);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
