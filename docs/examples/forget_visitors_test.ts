// The custom job of docs/writing-a-job.md, tested the way a project tests its own.
import assert from "node:assert/strict";
import { openRuntime, runJob } from "@flowstate/core";
import { fakeClock } from "@flowstate/core/testing";
import forgetVisitors from "./jobs/forget_visitors.ts";

const DAY = 24 * 60 * 60 * 1000;

async function withVisitors(clock = fakeClock(100 * DAY)) {
  const rt = await openRuntime({
    config: new URL("./flowstate.yaml", import.meta.url).pathname,
    clock,
  });
  const store = await rt.store("main");
  await store.set(["global", "visitors", "old"], { lastSeen: clock.now() - 10 * DAY });
  await store.set(["global", "visitors", "new"], { lastSeen: clock.now() - 1 * DAY });
  return { rt, store };
}

Deno.test("forget-visitors deletes only visitors older than maxAgeDays", async () => {
  const { rt, store } = await withVisitors();
  await using _ = rt;
  const run = await runJob(rt, forgetVisitors, { options: { maxAgeDays: 7 }, progress: "quiet" });
  assert.equal(run.status, "succeeded", run.error?.message);
  assert.deepEqual(run.outputs, { forgotten: 1, dryRun: false });
  assert.equal(await store.get(["global", "visitors", "old"]), null);
  assert.ok(await store.get(["global", "visitors", "new"]));
});

Deno.test("forget-visitors with dryRun changes nothing", async () => {
  const { rt, store } = await withVisitors();
  await using _ = rt;
  const run = await runJob(rt, forgetVisitors, { dryRun: true, progress: "quiet" });
  assert.deepEqual(run.outputs, { forgotten: 0, dryRun: true }, "30 days by default");
  const week = await runJob(rt, forgetVisitors, {
    dryRun: true,
    options: { maxAgeDays: 7 },
    progress: "quiet",
  });
  assert.deepEqual(week.outputs, { forgotten: 1, dryRun: true });
  assert.equal(await store.count(["global", "visitors"]), 2);
});

Deno.test("forget-visitors runs from the config by its module path, with the config's options", async () => {
  const { rt, store } = await withVisitors();
  await using _ = rt;
  const job = rt.config.jobs["forget-visitors"];
  const run = await runJob(rt, job.module!, {
    configOptions: job.options,
    progress: "quiet",
  });
  assert.equal(run.flowId, "job:forget-visitors");
  assert.deepEqual(run.outputs, { forgotten: 1, dryRun: false }, "maxAgeDays: 7 from the config");
  assert.equal(await store.count(["global", "visitors"]), 1);
});

Deno.test("forget-visitors refuses a bad option before it runs", async () => {
  const { rt } = await withVisitors();
  await using _ = rt;
  await assert.rejects(
    () => runJob(rt, forgetVisitors, { options: { maxAgeDays: -1 }, progress: "quiet" }),
    /Cannot run job "forget-visitors": option "maxAgeDays"/,
  );
});
