// A job's result is recorded as its run's outputs, so it must be JSON, as a node's output must:
// what JSON.stringify would turn into something else (a Map into {}, NaN into null, a Date into
// a string) or cannot write (a bigint) fails the run, naming the job and where the value is.
import assert from "node:assert/strict";
import { z } from "zod";
import { defineJob, type JobContext, type JobResult, openRuntime, runJob } from "../mod.ts";

const config = { stores: { main: { plugin: "memory" } } };

/** A job (written in JavaScript, or typed loosely) that returns `value`. */
const returning = (value: unknown) =>
  defineJob({
    name: "returns",
    description: "returns what the test gives",
    optionsSchema: z.strictObject({}),
    run: () => value as JobResult,
  });

Deno.test("runJob(): a result that is not JSON fails the run, naming the job and the path", async () => {
  await using rt = await openRuntime({ config });
  const cases: [unknown, RegExp][] = [
    [{ seen: new Map([["a", 1]]) }, /\.seen is a Map, not a plain object/],
    [{ counts: [1, NaN] }, /\.counts\[1\] is NaN/],
    [{ total: 10n }, /\.total /],
    [{ at: new Date(0) }, /\.at is a Date/],
  ];
  for (const [value, where] of cases) {
    const run = await runJob(rt, returning(value), { progress: "quiet", onLog: () => {} });
    assert.equal(run.status, "failed", `${String(Object.keys(value as object))}: ${run.status}`);
    assert.equal(run.outputs, null);
    assert.match(run.error!.message, /^job "returns" returned a value that is not JSON: /);
    assert.match(run.error!.message, where);
    assert.equal((await (await rt.records()).getRun(run.id))?.status, "failed");
  }
});

Deno.test("runJob(): a JSON result, and no result, are recorded as they are", async () => {
  await using rt = await openRuntime({ config });
  const plain = { n: 1, list: ["a", null, true], nested: { x: -0.5 } };
  const run = await runJob(rt, returning(plain), { progress: "quiet", onLog: () => {} });
  assert.equal(run.status, "succeeded", run.error?.message);
  assert.deepEqual(run.outputs, plain);
  const none = await runJob(rt, returning(undefined), { progress: "quiet", onLog: () => {} });
  assert.equal(none.status, "succeeded", none.error?.message);
  assert.deepEqual(none.outputs, {});
});

Deno.test("runJob(): a progress count that is not a finite number fails the run, naming the call", async () => {
  await using rt = await openRuntime({ config });
  const cases: [(p: JobContext["progress"]) => void, RegExp][] = [
    [
      (p) => (p.start("items", 3), p.advance(NaN)),
      /^progress\.advance\(n\): n must be a finite number, got NaN$/,
    ],
    [
      (p) => (p.start("items", 3), p.advance("2" as never)),
      /^progress\.advance\(n\): n must be a number, got /,
    ],
    [
      (p) => p.start("items", -1),
      /^progress\.start\(label, total\): total must be a finite number >= 0, got -1$/,
    ],
    [
      (p) => (p.start("items"), p.update(Infinity)),
      /^progress\.update\(done\): done must be a finite number >= 0, got Infinity$/,
    ],
  ];
  for (const [use, message] of cases) {
    const job = defineJob({
      name: "counts",
      description: "reports progress",
      optionsSchema: z.strictObject({}),
      run: (ctx) => (use(ctx.progress), {}),
    });
    const run = await runJob(rt, job, { progress: "quiet", onLog: () => {} });
    assert.equal(run.status, "failed", String(use));
    assert.match(run.error!.message, message);
  }
  // Whole counts, with and without a total, work as before.
  const fine = defineJob({
    name: "fine",
    description: "reports progress",
    optionsSchema: z.strictObject({}),
    run: (ctx) => {
      ctx.progress.start("items", 2);
      ctx.progress.advance();
      ctx.progress.update(2);
      ctx.progress.start("more");
      ctx.progress.advance(0.5);
      ctx.progress.finish();
      return { done: ctx.progress.state.done };
    },
  });
  const run = await runJob(rt, fine, { progress: "quiet", onLog: () => {} });
  assert.equal(run.status, "succeeded", run.error?.message);
});
