// Run events as a real flow records them: the executor's events all fit the compact rows (no event
// kept raw, so a field added to an event later cannot fall back to the raw form unnoticed), and the
// config's `runs: { eventFormat: 1 }` makes every writer of the runtime store the first form.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { openRuntime } from "../mod.ts";
import { newRunId, Records } from "../records.ts";
import type { RunEvent } from "../records.ts";
import { encodeChunk } from "../src/records/_event_chunks.ts";
import { MIXED_FLOW } from "./_mixed_flow.ts";

const EXAMPLES = fileURLToPath(new URL("../examples", import.meta.url));

Deno.test("a real flow's events (retries, a failure, logs, state, a skip) are stored with no raw row", async () => {
  // A home of its own: node modules may not sit inside the home (the sandbox refuses them).
  const home = await Deno.makeTempDir();
  await using _home = { [Symbol.asyncDispose]: () => Deno.remove(home, { recursive: true }) };
  await using rt = await openRuntime({
    config: { stores: { main: { plugin: "memory" } } },
    cwd: EXAMPLES,
    home,
  });
  // The events as the recorder hands them to the records, before any JSON.
  const seen: RunEvent[] = [];
  const proto = Records.prototype;
  const { appendEvents, finishRun } = proto;
  proto.appendEvents = function (runId, events) {
    seen.push(...events);
    return appendEvents.call(this, runId, events);
  };
  proto.finishRun = function (run, events = []) {
    seen.push(...events);
    return finishRun.call(this, run, events);
  };
  try {
    const record = await rt.runFlow(MIXED_FLOW as never).catch((err) => err);
    assert.equal(record?.status ?? "threw", "failed", String(record));
  } finally {
    proto.appendEvents = appendEvents;
    proto.finishRun = finishRun;
  }
  const kinds = new Set(seen.map((e) => {
    if (e.type === "node.end") {
      return `end:${e.status}${e.error ? "+error" : ""}${e.writes ? "+writes" : ""}`;
    }
    if (e.type === "node.attempt") return `attempt${e.error ? "+error" : ""}`;
    return e.type;
  }));
  for (
    const kind of [
      "run.start",
      "run.end",
      "node.start",
      "attempt",
      "node.log",
      "end:succeeded+writes",
      "end:failed+error",
      "end:skipped",
    ]
  ) assert.ok(kinds.has(kind), `the flow recorded ${kind} (it recorded ${[...kinds].join(", ")})`);
  const chunk = encodeChunk(0, seen, "test");
  const raw = chunk.rows.filter((item) => typeof item === "object" && item !== null);
  assert.deepEqual(raw, [], "every event of the executor fits the compact rows");
});

for (const eventFormat of [1, 2] as const) {
  Deno.test(`the config's runs: { eventFormat: ${eventFormat} } is how a runtime's runs store their events`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-event-format-" });
    try {
      await using rt = await openRuntime({
        config: { stores: { main: { plugin: "memory" } }, runs: { eventFormat } },
        cwd: dir,
        home: dir,
      });
      // 400 nodes: more than 1,000 events, so they stay in their chunks.
      const nodes = Array.from({ length: 400 }, (_, i) => ({
        id: `n${i}`,
        type: "transform",
        with: { value: i },
      }));
      const run = await rt.runFlow({ id: "many", nodes } as never);
      assert.equal(run.status, "succeeded");
      const records = await rt.records();
      // runtime.records() (the CLI, the jobs, the queue) writes the same form.
      const open = { ...run, id: newRunId(run.startedAt) };
      await records.startRun({ ...open, status: "running", endedAt: null, durationMs: null });
      await records.appendEvents(open.id, [{ at: 1, type: "run.start" }]);
      const store = await rt.store("main");
      for (const id of [run.id, open.id]) {
        const chunks = await Array.fromAsync(
          store.list<Record<string, unknown>>({ prefix: ["flowstate", "events", id] }),
        );
        assert.ok(chunks.length > 0);
        for (const { value } of chunks) {
          if (eventFormat === 1) {
            // The outputs kept beside the events (a reader of the first form passes them by).
            assert.deepEqual(
              Object.keys(value).filter((k) => k !== "outputs" && k !== "outputNodes"),
              [
                "first",
                "events",
              ],
            );
            assert.ok(Array.isArray(value.events));
          } else assert.equal(value.format, 2);
        }
      }
      assert.ok((await records.getEvents(run.id)).length > 1_000);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("runs: { eventFormat: 1 }: the queue's chunk of a failed attempt is in the first form", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-event-format-" });
  try {
    await Deno.writeTextFile(
      `${dir}/q.flow.yaml`,
      "id: q\nnodes:\n  - id: n\n    type: transform\n    with: { value: 1 }\n",
    );
    await using rt = await openRuntime({
      config: { stores: { main: { plugin: "memory" } }, flows: [dir], runs: { eventFormat: 1 } },
      cwd: dir,
      home: dir,
    });
    const records = await rt.records();
    const { runId } = await rt.enqueue("q", { maxAttempts: 2 });
    const claimed = await records.claimRun({ worker: "w", leaseMs: 10_000 });
    const first: RunEvent[] = [{ at: 1, type: "run.start" }, {
      at: 2,
      type: "node.start",
      node: "n",
    }];
    assert.ok(
      await records.finishClaimedRun({ ...claimed!, status: "failed", endedAt: 3 }, first),
    );
    assert.equal((await records.getRun(runId))?.status, "queued");
    const store = await rt.store("main");
    const chunks = await Array.fromAsync(store.list({ prefix: ["flowstate", "events", runId] }));
    assert.equal(
      JSON.stringify(chunks.map((e) => e.value)),
      JSON.stringify([{ first: 0, events: first }]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
