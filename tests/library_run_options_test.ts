// The options a program gives runFlow and resumeRun, checked before anything runs (beside the
// kinds library_callbacks_test.ts checks): a timers without sleep() failed the run, recorded, with
// "a.host.timers.sleep is not a function"; an env that is not an object of strings was taken.
import assert from "node:assert/strict";
import { openRuntime, type RunFlowOptions } from "../mod.ts";

const flow = {
  id: "two",
  nodes: [
    { id: "a", type: "transform", with: { value: 1 } },
    { id: "b", type: "transform", needs: ["a"], with: { value: 2 } },
  ],
};

const bad: [string, Record<string, unknown>, RegExp][] = [
  [
    "timers {}",
    { timers: {} },
    /option timers must be an object with a sleep\(ms, signal\) method, such as manualTimers\(\) \(got \{\}\)/,
  ],
  ["env 5", { env: 5 }, /option env must be an object of strings by name.*\(got 5\)/],
  [
    "env with a number",
    { env: { HOME: 1 } },
    /option env must be an object of strings .*\(got HOME: 1\)/,
  ],
];

for (const [name, options, message] of bad) {
  Deno.test(`runFlow and resumeRun refuse ${name}, before anything is written`, async () => {
    await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
    const records = await rt.records();
    const err = await rt.runFlow(flow, options as RunFlowOptions).then(
      (run) => assert.fail(`ran: ${run.status} ${JSON.stringify(run.nodes)}`),
      (e) => e,
    );
    assert.match(err.message, /^Cannot run flow: /);
    assert.match(err.message, message);
    assert.ok(err instanceof TypeError, String(err));
    assert.equal((await records.listRuns()).runs.length, 0);

    const failed = await rt.runFlow({ id: "f", nodes: [{ id: "x", type: "fail" }] });
    await assert.rejects(rt.resumeRun(failed.id, options as RunFlowOptions), message);
    assert.equal((await records.listRuns()).runs.length, 1);
  });
}

Deno.test("runFlow takes the good values of the checked options", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const run = await rt.runFlow(flow, {
    concurrency: 1,
    defaultTimeout: 60_000,
    abortGrace: 0,
    signal: new AbortController().signal,
    onEvent: () => {},
    onStart: () => {},
    env: { HOME: "/home/ada", GONE: undefined },
    timers: { sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
  });
  assert.equal(run.status, "succeeded");
  assert.deepEqual([run.nodes.a.output, run.nodes.b.output], [1, 2]);
});

// openRuntime's own options: an env of numbers failed
// later with "The path must be a string" (FLOWSTATE_HOME) or was ignored, a clock without now()
// failed when the first store opened.
const badOpen: [string, Record<string, unknown>, RegExp][] = [
  [
    "env 5",
    { env: 5 },
    /^Cannot open runtime: option env must be an object of strings .*\(got 5\)$/,
  ],
  [
    "env FLOWSTATE_HOME: 5",
    { env: { FLOWSTATE_HOME: 5 } },
    /^Cannot open runtime: option env must be .*\(got FLOWSTATE_HOME: 5\)$/,
  ],
  [
    "clock {}",
    { clock: {} },
    /^Cannot open runtime: option clock must be an object with a now\(\) method/,
  ],
];

for (const [name, options, message] of badOpen) {
  Deno.test(`openRuntime refuses ${name}`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const opened = openRuntime({
        cwd: dir,
        config: { stores: { main: { plugin: "memory" } } },
        ...options as object,
      });
      const err = await opened.then(
        async (rt) => (await rt.close(), assert.fail("opened")),
        (e) => e,
      );
      assert.ok(err instanceof TypeError, String(err));
      assert.match(err.message, message);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
