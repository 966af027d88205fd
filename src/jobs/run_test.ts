import assert from "node:assert/strict";
import { z } from "zod";
import { ConfigError, defineJob, type JobResult, openRuntime } from "../../mod.ts";
import { fakeClock } from "../testing/clock.ts";
import { loadJob, runJob } from "./run.ts";

const config = { stores: { main: { plugin: "memory" } } };

const counting = defineJob({
  name: "counting",
  description: "counts keys, or fails, or waits for cancellation",
  optionsSchema: z.strictObject({
    mode: z.enum(["count", "fail", "wait"]).default("count"),
    limit: z.number().int().positive().default(10),
  }),
  defaults: { limit: 5 },
  async run(ctx, { mode, limit }) {
    ctx.log(`mode ${mode}, limit ${limit}`);
    if (mode === "fail") throw new Error("disk on fire");
    if (mode === "wait") {
      await new Promise((_, reject) => {
        if (ctx.signal.aborted) reject(new Error("stopped"));
        ctx.signal.addEventListener("abort", () => reject(new Error("stopped")), { once: true });
      });
    }
    return { keys: await (await ctx.store()).count(), limit };
  },
});

Deno.test("runJob() records a successful run as flow job:<name> with its outputs and logs", async () => {
  await using rt = await openRuntime({ config, clock: fakeClock() });
  const run = await runJob(rt, counting, { progress: "quiet", onLog: () => {} });
  assert.equal(run.status, "succeeded");
  assert.equal(run.flowId, "job:counting");
  assert.equal(run.outputs?.limit, 5, "the job's defaults apply");
  assert.ok(Number(run.outputs?.keys) >= 1, "the run record itself is in the store");
  const records = await rt.records();
  assert.equal((await records.getRun(run.id))?.status, "succeeded");
  const events = await records.getEvents(run.id);
  assert.ok(events.some((e) => e.type === "node.log" && e.message === "mode count, limit 5"));
});

Deno.test("runJob() merges config options under given options", async () => {
  await using rt = await openRuntime({ config });
  const run = await runJob(rt, counting, {
    configOptions: { limit: 7, mode: "count" },
    options: { limit: 9 },
    progress: "quiet",
    onLog: () => {},
  });
  assert.equal(run.outputs?.limit, 9);
  assert.deepEqual(run.inputs, { mode: "count", limit: 9 });
});

Deno.test("runJob() records a job that throws as failed, with the error", async () => {
  await using rt = await openRuntime({ config });
  const run = await runJob(rt, counting, {
    options: { mode: "fail" },
    progress: "quiet",
    onLog: () => {},
  });
  assert.equal(run.status, "failed");
  assert.deepEqual(run.error, { node: "counting", message: "disk on fire" });
  assert.equal((await (await rt.records()).getRun(run.id))?.status, "failed");
});

Deno.test("runJob() records a cancelled job when its signal aborts", async () => {
  await using rt = await openRuntime({ config });
  const controller = new AbortController();
  const started = Promise.withResolvers<void>();
  const pending = runJob(rt, counting, {
    options: { mode: "wait" },
    signal: controller.signal,
    progress: "quiet",
    onLog: () => started.resolve(), // its first line: the job is running
  });
  await started.promise;
  controller.abort();
  const run = await pending;
  assert.equal(run.status, "cancelled");
});

Deno.test("runJob() rejects a bad option naming the job and the field, writing nothing", async () => {
  await using rt = await openRuntime({ config });
  await assert.rejects(
    runJob(rt, counting, { options: { limit: -1 }, progress: "quiet" }),
    (err: unknown) =>
      err instanceof ConfigError && /job "counting"/.test(err.message) &&
      /limit/.test(err.message),
  );
  await assert.rejects(
    // @ts-expect-error: a typo in a typed job's options does not compile; it is refused at run time too
    runJob(rt, counting, { options: { limt: 3 }, progress: "quiet" }),
    /unknown option "limt" \(did you mean "limit"\?\)/,
  );
  assert.equal(await (await rt.store("main")).count(), 0, "no run was recorded");
});

Deno.test("loadJob() suggests the closest built-in for a typo", async () => {
  await assert.rejects(
    loadJob("retentoin"),
    /Unknown job "retentoin" \(did you mean "retention"\?\)/,
  );
  assert.equal((await loadJob("retention")).name, "retention");
});

Deno.test("runJob(): a job that stops by throwing its signal's abort error is recorded cancelled with a plain message", async () => {
  const throwing = defineJob({
    name: "throwing",
    description: "waits, then throws what its aborted signal throws",
    optionsSchema: z.strictObject({}),
    async run(ctx) {
      ctx.log("waiting");
      await new Promise((resolve) => {
        if (ctx.signal.aborted) resolve(undefined);
        ctx.signal.addEventListener("abort", resolve, { once: true });
      });
      ctx.signal.throwIfAborted();
      return {};
    },
  });
  await using rt = await openRuntime({ config });
  const controller = new AbortController();
  const started = Promise.withResolvers<void>();
  const pending = runJob(rt, throwing, {
    signal: controller.signal,
    progress: "quiet",
    onLog: () => started.resolve(),
  });
  await started.promise;
  controller.abort(); // as Ctrl-C does: no reason of its own
  const run = await pending;
  assert.equal(run.status, "cancelled");
  assert.deepEqual(run.error, { node: "throwing", message: "the job was cancelled" });
});

Deno.test("runJob(): a job whose stop signal comes after its last step is succeeded if it says cancelled: false (backup)", async () => {
  await using rt = await openRuntime({ config, clock: fakeClock() });
  for (const [says, status] of [[false, "succeeded"], [undefined, "cancelled"]] as const) {
    const controller = new AbortController();
    const late = defineJob({
      name: "late",
      description: "done, then stopped",
      optionsSchema: z.strictObject({}),
      run: (): JobResult => {
        controller.abort(); // SIGTERM after the work is whole
        return says === undefined ? { done: true } : { done: true, cancelled: says };
      },
    });
    const run = await runJob(rt, late, { progress: "quiet", signal: controller.signal });
    assert.equal(run.status, status, `cancelled: ${says}`);
  }
  // The backup job says so: a returned backup is a whole, verified file.
  const dir = await Deno.makeTempDir();
  try {
    const backup = await runJob(rt, "backup", {
      progress: "quiet",
      options: { store: "main", out: `${dir}/main.fsbackup` },
    });
    assert.equal(backup.status, "succeeded");
    assert.equal(backup.outputs?.cancelled, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
