import assert from "node:assert/strict";
import { z } from "zod";
import { defineJob, openRuntime, runJob, type RuntimeEvent } from "../mod.ts";
import { Scheduler } from "../scheduler.ts";

const config = { stores: { main: { plugin: "memory" } } } as const;

const working = defineJob({
  name: "working",
  description: "reports progress over three steps",
  optionsSchema: z.strictObject({}),
  run(ctx) {
    ctx.progress.start("steps", 3);
    for (let i = 0; i < 3; i++) ctx.progress.advance();
    ctx.progress.finish();
    ctx.log("done");
    return { steps: 3 };
  },
});

/** Read `it` until the runtime closes. */
async function drain(it: AsyncIterable<RuntimeEvent>): Promise<RuntimeEvent[]> {
  const out: RuntimeEvent[] = [];
  for await (const event of it) out.push(event);
  return out;
}

Deno.test("rt.events() sees runs started from two places (runFlow, runJob, a sub-flow), each in order, numbered without gaps", async () => {
  const rt = await openRuntime({ config });
  const consumer = drain(rt.events());
  const [flowRun, jobRun] = await Promise.all([
    rt.runFlow({
      id: "parent",
      nodes: [
        { id: "one", type: "state.increment", with: { key: "n" } },
        {
          id: "child",
          type: "flow",
          needs: ["one"],
          with: {
            flow: { id: "child", nodes: [{ id: "x", type: "log", with: { message: "hi" } }] },
          },
        },
      ],
    }),
    runJob(rt, working),
  ]);
  await rt.close();
  const events = await consumer;

  assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1), "no gaps, in order");
  const started = events.filter((e) => e.type === "run.started");
  const ended = events.filter((e) => e.type === "run.ended");
  const child = started.find((e) => e.flowId === "child");
  assert.ok(child, "the sub-run is seen");
  assert.equal(child.parentRunId, flowRun.id);
  assert.deepEqual(
    new Set(started.map((e) => e.runId)),
    new Set([flowRun.id, jobRun.id, child.runId]),
  );
  assert.deepEqual(new Set(ended.map((e) => e.runId)), new Set(started.map((e) => e.runId)));
  for (const run of started) {
    const own = events.filter((e) => "runId" in e && e.runId === run.runId);
    assert.equal(own[0].type, "run.started", `${run.flowId} starts first`);
    assert.equal(own.at(-1)!.type, "run.ended", `${run.flowId} ends last`);
  }
  const parentEnd = ended.find((e) => e.runId === flowRun.id)!;
  assert.equal(parentEnd.status, "succeeded");
  assert.deepEqual(parentEnd.record, flowRun);
  const nodes = events.flatMap((e) => e.type === "node" && e.runId === flowRun.id ? [e.event] : []);
  assert.deepEqual(
    nodes.filter((e) => e.type === "node.start").map((e) => e.node),
    ["one", "child"],
  );
  const progress = events.filter((e) => e.type === "job.progress");
  assert.deepEqual(
    progress.map((e) => [e.runId, e.label, e.done, e.total, e.finished]),
    [
      [jobRun.id, "steps", 0, 3, false],
      [jobRun.id, "steps", 1, 3, false],
      [jobRun.id, "steps", 2, 3, false],
      [jobRun.id, "steps", 3, 3, false],
      [jobRun.id, "steps", 3, 3, true],
    ],
  );
  const jobLog = events.find((e) => e.type === "node" && e.runId === jobRun.id);
  assert.equal(
    jobLog?.type === "node" && jobLog.event.type === "node.log" && jobLog.event.message,
    "done",
  );
});

Deno.test("a consumer that does not read never holds up runs: past its buffer it gets one 'dropped' event in place of what it missed", async () => {
  const rt = await openRuntime({ config });
  const slow = rt.events({ bufferSize: 3 });
  const fast = drain(rt.events());
  const nodes = Array.from({ length: 10 }, (_, i) => ({
    id: `n${i}`,
    type: "transform",
    with: { value: i },
  }));
  // Runs complete while `slow` reads nothing.
  const first = await rt.runFlow({ id: "many", nodes });
  assert.equal(first.status, "succeeded");

  const head = [await slow.next(), await slow.next(), await slow.next()].map((r) => r.value!);
  assert.deepEqual(head.map((e) => e.seq), [1, 2, 3]);
  assert.equal(head[0].type, "run.started");
  // Nothing else was kept: the next event says how many were missed, and where.
  const second = await rt.runFlow({ id: "after", nodes: nodes.slice(0, 1) });
  const marker = (await slow.next()).value!;
  assert.equal(marker.type, "dropped");
  assert.equal(marker.seq, 4);
  const rest: RuntimeEvent[] = [];
  for (let r = await slow.next(); !r.done && rest.length < 3; r = await slow.next()) {
    rest.push(r.value);
  }
  assert.equal(rest[0].type, "run.started");
  assert.equal(rest[0].type === "run.started" && rest[0].runId, second.id);
  assert.equal(
    marker.type === "dropped" && marker.seq + marker.count,
    rest[0].seq,
    "no gap beyond it",
  );

  await rt.close();
  const all = await fast;
  assert.ok(all.every((e) => e.type !== "dropped"), "a consumer that keeps up misses nothing");
  assert.deepEqual(all.map((e) => e.seq), all.map((_, i) => i + 1));
});

Deno.test("rt.events() ends on close (after what it holds), on abort, and on break", async () => {
  const rt = await openRuntime({ config });
  const controller = new AbortController();
  const aborted = rt.events({ signal: controller.signal });
  const broken = rt.events();
  const held = rt.events();
  await rt.runFlow({ id: "one", nodes: [{ id: "n", type: "transform", with: { value: 1 } }] });
  controller.abort();
  assert.deepEqual(await aborted.next(), { value: undefined, done: true });
  for await (const _ of broken) break;
  assert.deepEqual(await broken.next(), { value: undefined, done: true });
  await rt.close();
  const kept = await drain(held);
  assert.deepEqual([kept[0].type, kept.at(-1)!.type], ["run.started", "run.ended"]);
  assert.deepEqual(await drain(rt.events()), [], "a consumer after close ends at once");
  assert.throws(() => rt.events({ bufferSize: 0 }), RangeError);
});

Deno.test("rt.events() sees the runs the scheduler starts through the runtime", async () => {
  const at = Date.UTC(2026, 0, 1, 3);
  const rt = await openRuntime({
    config: {
      stores: { main: { plugin: "memory" } },
      jobs: { retention: { schedule: "0 3 * * *" }, gc: { enabled: false } },
    },
  });
  const consumer = drain(rt.events());
  const scheduler = new Scheduler(rt, { clock: { now: () => at } });
  await scheduler.start(); // the tick due now starts at once
  await scheduler.stop();
  await rt.close();
  const events = await consumer;
  const flows = events.flatMap((e) =>
    e.type === "run.started" || e.type === "run.ended" ? [`${e.type} ${e.flowId}`] : []
  );
  assert.deepEqual(flows, ["run.started job:retention", "run.ended job:retention"]);
});
