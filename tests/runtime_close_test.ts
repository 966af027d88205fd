/**
 * `Runtime.close()` with runs in progress: they are cancelled and their ends
 * recorded before the stores close (not left `running`, their promises not
 * rejected later with the stores closed under them).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type RuntimeEvent, StoreClosedError } from "../mod.ts";
import { within } from "./_deadline.ts";

const SLOW = {
  id: "slow",
  nodes: [
    { id: "wait", type: "delay", with: { for: "1h" } },
    { id: "write", type: "state.set", needs: ["wait"], with: { key: "k", value: 1 } },
  ],
};

Deno.test("Runtime.close() cancels the runs in progress and records their ends before closing the stores", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-close-" });
  try {
    const config = { stores: { main: { plugin: "sqlite" as const, path: join(dir, "s.db") } } };
    const rt = await openRuntime({ config, home: dir });
    const ended: RuntimeEvent[] = [];
    const watching = (async () => {
      for await (const event of rt.events()) if (event.type === "run.ended") ended.push(event);
    })();
    const started = Promise.withResolvers<string>();
    const run = rt.runFlow(SLOW, { onStart: (id) => started.resolve(id) });
    let settled = "pending";
    run.then((r) => settled = r.status, (err) => settled = String(err));
    const runId = await within(started.promise, "the started event");
    await rt.close();
    assert.equal(settled, "cancelled", "close() resolved before the run's end was recorded");
    await watching;
    assert.deepEqual(ended.map((e) => e.type === "run.ended" && e.status), ["cancelled"]);
    await assert.rejects(
      rt.runFlow(SLOW),
      (err) =>
        err instanceof StoreClosedError &&
        err.message === 'Cannot run flow "slow": the runtime is closed',
    );

    await using again = await openRuntime({ config, home: dir });
    const record = await (await again.records()).getRun(runId);
    assert.equal(record?.status, "cancelled");
    assert.equal(record?.nodes.wait.status, "cancelled");
    assert.equal(await (await again.store()).get(["flow", "slow", "k"]), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("leaving await using cancels a run still going: its promise resolves cancelled", async () => {
  let settled = "pending";
  {
    await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
    const started = Promise.withResolvers<void>();
    const run = rt.runFlow(SLOW, { onStart: () => started.resolve() });
    run.then((r) => settled = r.status, (err) => settled = String(err));
    await within(started.promise, "the started event");
  }
  assert.equal(settled, "cancelled", "the block was left before the run's end was recorded");
});
