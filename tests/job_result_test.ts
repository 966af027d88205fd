// A job's result is recorded as its run's outputs, so it must be JSON, as a node's output must:
// what JSON.stringify would turn into something else (a Map into {}, NaN into null, a Date into
// a string) or cannot write (a bigint) fails the run, naming the job and where the value is.
import assert from "node:assert/strict";
import { z } from "zod";
import { defineJob, type JobResult, openRuntime, runJob } from "../mod.ts";

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
