/**
 * A running `forEach` node's `node.progress` events (through the library,
 * `openRuntime().runFlow`): once an item ended, at most one every
 * `FOR_EACH_PROGRESS_MS` of the run's clock and never sooner than that after
 * the node started, with the counts so far and the failed items named; none
 * once the node ended (its `node.end` says it all), none for a node that ends
 * within that time; recorded (read back from the records). Time is a fake
 * clock the test moves (`manualTimers`); items are gates the test releases.
 *
 * @module
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineNode, type FlowDefinition, openRuntime, type RunEvent } from "../mod.ts";
import { FOR_EACH_PROGRESS_MS, type NodeProgressEvent } from "../records.ts";
import { fakeClock, manualTimers } from "../testing.ts";

/** Items that wait for the test: `started(n)` once item n began; `release(n, fail?)` ends it. */
function gates() {
  const started = new Map<number, PromiseWithResolvers<void>>();
  const released = new Map<number, PromiseWithResolvers<boolean>>();
  const of = <T>(map: Map<number, PromiseWithResolvers<T>>, n: number) => {
    let d = map.get(n);
    if (d === undefined) map.set(n, d = Promise.withResolvers<T>());
    return d;
  };
  return {
    started: (n: number) => of(started, n).promise,
    release: (n: number, fail = false) => of(released, n).resolve(fail),
    node: defineNode({
      description: "waits for the test",
      optionsSchema: z.strictObject({ n: z.number() }),
      async run(_ctx, { n }) {
        of(started, n).resolve();
        if (await of(released, n).promise) throw new Error(`item ${n} broke`);
        return n;
      },
    }),
  };
}

const flow = (items: number, concurrency: number): FlowDefinition => ({
  id: "each",
  nodes: [{
    id: "each",
    type: "test.gate",
    forEach: { items: Array.from({ length: items }, (_, i) => i), concurrency },
    continueOnError: true,
    with: { n: "${{ item }}" },
  }],
});

/** The progress events' counts, without their times. */
const counts = (events: RunEvent[]) =>
  events.filter((e): e is NodeProgressEvent => e.type === "node.progress").map(
    ({ at: _, ...rest }) => rest,
  );

Deno.test("a running forEach node records its items' counts at most once per FOR_EACH_PROGRESS_MS, the failed items named, none after its end", async () => {
  const g = gates();
  const clock = fakeClock(1_000_000);
  const timers = manualTimers(clock);
  await using rt = await openRuntime({
    clock,
    config: { stores: { main: { plugin: "memory" } } },
    nodeTypes: { "test.gate": g.node },
  });
  const seen: RunEvent[] = [];
  const running = rt.runFlow(flow(5, 2), { timers, onEvent: (e) => seen.push(e) });
  await g.started(0);
  await g.started(1);
  g.release(0); // ended before the node ran FOR_EACH_PROGRESS_MS: not yet
  await g.started(2);
  await timers.settle();
  assert.deepEqual(counts(seen), []);
  await timers.advance(FOR_EACH_PROGRESS_MS);
  await timers.settle();
  assert.deepEqual(counts(seen), [
    { type: "node.progress", node: "each", count: 5, succeeded: 1, failed: 0, running: 2 },
  ]);
  // Nothing ended since: nothing more however long it runs.
  await timers.advance(FOR_EACH_PROGRESS_MS * 3);
  await timers.settle();
  assert.equal(counts(seen).length, 1);
  // Two items end within one interval: one event, when it passed.
  g.release(1, true);
  await g.started(3);
  await timers.settle();
  assert.equal(counts(seen).length, 2, "the interval since the last one had passed: at once");
  g.release(2);
  await g.started(4);
  await timers.settle();
  assert.equal(counts(seen).length, 2);
  await timers.advance(FOR_EACH_PROGRESS_MS);
  await timers.settle();
  assert.deepEqual(counts(seen).slice(1), [
    {
      type: "node.progress",
      node: "each",
      count: 5,
      succeeded: 1,
      failed: 1,
      running: 2,
      failedItems: [1],
    },
    {
      type: "node.progress",
      node: "each",
      count: 5,
      succeeded: 2,
      failed: 1,
      running: 2,
      failedItems: [1],
    },
  ]);
  // The last items end before the next interval: the node's end says it, no progress after it.
  g.release(3);
  g.release(4, true);
  const run = await running;
  assert.deepEqual(run.nodes.each.items, { count: 5, succeeded: 3, failed: 2, failedIndex: 1 });
  assert.equal(counts(seen).length, 3);
  const end = seen.findIndex((e) => e.type === "node.end");
  assert.ok(seen.findLastIndex((e) => e.type === "node.progress") < end);
  // Recorded: the records give them back as they were emitted.
  const recorded = await (await rt.records()).getEvents(run.id);
  assert.deepEqual(
    recorded.filter((e) => e.type === "node.progress"),
    seen.filter((e) => e.type === "node.progress"),
  );
  assert.equal(timers.pending, 0, "no progress timer left behind");
});

Deno.test("a forEach node that ends within FOR_EACH_PROGRESS_MS records no progress event", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const clock = fakeClock(0);
  const timers = manualTimers(clock);
  const run = await rt.runFlow({
    id: "quick",
    nodes: [{
      id: "each",
      type: "transform",
      forEach: Array.from({ length: 1_000 }, (_, i) => i),
      with: { value: "${{ item }}" },
    }],
  }, { timers });
  assert.equal(run.status, "succeeded");
  const events = await (await rt.records()).getEvents(run.id);
  assert.deepEqual(events.filter((e) => e.type === "node.progress"), []);
  assert.equal(timers.pending, 0);
});
