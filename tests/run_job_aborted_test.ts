// runJob given a signal that has already aborted: the job used to run all the same (its writes
// made) and be recorded "cancelled" with its outputs; it is now not run, as runFlow runs no node.
import assert from "node:assert/strict";
import { z } from "zod";
import { defineJob, openRuntime, runJob } from "../mod.ts";

Deno.test("runJob with an aborted signal records the run cancelled without running the job", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  let calls = 0;
  const job = defineJob({
    name: "count",
    description: "counts its runs",
    optionsSchema: z.object({}),
    run: async (ctx) => {
      calls++;
      await (await ctx.store("main")).set(["counted"], calls);
      return { summary: "counted" };
    },
  });
  const run = await runJob(rt, job, { signal: AbortSignal.abort() });
  assert.equal(calls, 0);
  assert.equal(run.status, "cancelled");
  assert.equal(run.outputs, null);
  assert.equal(run.error?.message, "the job was cancelled");
  assert.equal(await (await rt.store("main")).get(["counted"]), null);
  assert.equal((await (await rt.records()).getRun(run.id))?.status, "cancelled");
});
