// A library user's callbacks (runFlow's onEvent and onStart) that throw: the run still ends and
// is recorded, and runFlow rejects with the callback's own error (it used to hang, the run
// left `running`, the error an unhandled rejection).
import assert from "node:assert/strict";
import { withQueueFlow } from "./_queue_flow.ts";
import { z } from "zod";
import { defineJob, openRuntime, openStore, runJob, startWorker } from "../mod.ts";

const twoNodes = {
  id: "two",
  nodes: [
    { id: "a", type: "log", with: { message: "a" } },
    { id: "b", type: "log", needs: ["a"], with: { message: "b" } },
  ],
} as const;

for (const at of ["run.start", "node.start", "node.end", "run.end"]) {
  Deno.test(`runFlow: an onEvent that throws at ${at} rejects runFlow once the run is recorded`, async () => {
    await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
    const seen: string[] = [];
    const bug = new Error("consumer bug");
    const error = await rt.runFlow(twoNodes, {
      onEvent: (event) => {
        seen.push(event.type);
        if (event.type === at) throw bug;
      },
    }).then(() => null, (err) => err as Error);
    assert.equal(error, bug, "runFlow rejects with the callback's own error");
    // The run went on: every node ran, the end was recorded, later events still came.
    assert.equal(seen.at(-1), "run.end");
    const { runs } = await (await rt.records()).listRuns({ flowId: "two", limit: 10 });
    assert.equal(runs.length, 1);
    assert.equal(runs[0].status, "succeeded");
  });
}

Deno.test("runFlow: an onStart that throws rejects runFlow once the run is recorded", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const error = await rt.runFlow(twoNodes, {
    onStart: () => {
      throw new Error("onStart bug");
    },
  }).then(() => null, (err) => err as Error);
  assert.ok(error instanceof Error);
  assert.equal(error?.message, "onStart bug");
  const { runs } = await (await rt.records()).listRuns({ flowId: "two", limit: 10 });
  assert.deepEqual(runs.map((r) => r.status), ["succeeded"]);
});

Deno.test("runFlow: an onEvent that throws in a sub-run's events fails neither run", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const parent = {
    id: "parent",
    nodes: [{ id: "sub", type: "flow", with: { flow: twoNodes } }],
  };
  let thrown = 0;
  const error = await rt.runFlow(parent as never, {
    onEvent: (event, run) => {
      if (run.flowId === "two" && event.type === "node.end") {
        thrown++;
        throw new Error("sub bug");
      }
    },
  }).then(() => null, (err) => err as Error);
  assert.ok(error instanceof Error);
  assert.equal(error?.message, "sub bug");
  assert.equal(thrown, 2);
  const records = await rt.records();
  assert.deepEqual(
    (await records.listRuns({ flowId: "two", limit: 10 })).runs.map((r) => r.status),
    [
      "succeeded",
    ],
  );
  assert.deepEqual(
    (await records.listRuns({ flowId: "parent", limit: 10 })).runs.map((r) => r.status),
    ["succeeded"],
  );
});

for (const at of ["start", "claim", "end", "error", "every event"]) {
  Deno.test(`startWorker: an onEvent that throws at ${at} neither strands a run nor stops the worker`, async () => {
    await withQueueFlow(async (rt, flow) => {
      const seen: string[] = [];
      const ended = Promise.withResolvers<void>();
      let ends = 0;
      const worker = startWorker(rt, {
        pollMs: 20,
        onEvent: (event) => {
          seen.push(event.type === "error" ? `error: ${event.message}` : event.type);
          if (event.type === "end" && ++ends === 2) ended.resolve();
          if (at === "every event" || event.type === at) throw new Error("printer bug");
        },
      });
      await rt.enqueue(flow);
      await rt.enqueue(flow);
      await ended.promise;
      await worker.stop();
      const { runs } = await (await rt.records()).listRuns({ flowId: "q", limit: 10 });
      assert.deepEqual(runs.map((r) => r.status), ["succeeded", "succeeded"]);
      if (at !== "error" && at !== "every event") {
        assert.ok(
          seen.includes(`error: onEvent threw on a "${at}" event: printer bug`),
          seen.join(", "),
        );
      }
      assert.ok(seen.includes("stop"), seen.join(", "));
    });
  });
}

for (const callback of ["onStart", "onLog"]) {
  Deno.test(`runJob: an ${callback} that throws neither strands nor fails the job`, async () => {
    await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
    let ran = 0;
    const job = defineJob({
      name: "logs",
      description: "logs twice",
      optionsSchema: z.strictObject({}),
      run(ctx) {
        ran++;
        ctx.log("one");
        ctx.log("two");
        return Promise.resolve({ summary: "done" });
      },
    });
    const bug = new Error(`${callback} bug`);
    const error = await runJob(rt, job, {
      [callback]: () => {
        throw bug;
      },
    }).then(() => null, (err) => err);
    assert.equal(error, bug, "runJob rejects with the callback's own error");
    assert.equal(ran, 1);
    const { runs } = await (await rt.records()).listRuns({ flowId: "job:logs", limit: 10 });
    assert.deepEqual(runs.map((r) => [r.status, r.error]), [["succeeded", null]]);
  });
}

Deno.test("openStore, openRuntime, runFlow, enqueue and runJob refuse a misspelt option instead of ignoring it", async () => {
  await assert.rejects(
    () => openRuntime({ confg: "x.yaml" } as never),
    /^TypeError: Cannot open runtime: unknown option "confg" \(did you mean "config"\?\); the options are actor, config,/,
  );
  await assert.rejects(
    () => openStore({ plugin: "memory" }, { naem: "x" } as never),
    /^TypeError: Cannot open store: unknown option "naem" \(did you mean "name"\?\); the options are name, home,/,
  );
  await assert.rejects(
    () => openStore({ plugin: "memory" }, { name: "main", clock: {} } as never),
    /^TypeError: Cannot open store "main": clock must be an object with a now\(\) method$/,
  );
  await withQueueFlow(async (rt, flow) => {
    // `inputs` for `input`: the run would have used its defaults.
    await assert.rejects(
      () => rt.runFlow(flow, { inputs: { name: "x" } } as never),
      /^TypeError: Cannot run flow: unknown option "inputs" \(did you mean "input"\?\)/,
    );
    await assert.rejects(
      () => rt.enqueue(flow, { attempts: 3 } as never),
      /unknown option "attempts" \(did you mean "maxAttempts"\?\)|unknown option "attempts"/,
    );
    await assert.rejects(
      () => runJob(rt, "gc", { option: {} } as never),
      /^TypeError: Cannot run job: unknown option "option" \(did you mean "options"\?\)/,
    );
    const { runs } = await (await rt.records()).listRuns({ limit: 10 });
    assert.deepEqual(runs, [], "nothing ran or was queued");
    // Spelt right, they work as before.
    assert.equal((await rt.runFlow(flow, { input: {}, signal: undefined })).status, "succeeded");
    assert.equal((await rt.enqueue(flow, { maxAttempts: 2 })).existing, false);
  });
});
