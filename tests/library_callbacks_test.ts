// A library user's callbacks (runFlow's onEvent and onStart) that throw: the run still ends and
// is recorded, and runFlow rejects with the callback's own error (it used to hang, the run
// left `running`, the error an unhandled rejection).
import assert from "node:assert/strict";
import { join } from "node:path";
import { withQueueFlow } from "./_queue_flow.ts";
import { z } from "zod";
import { defineJob, openRuntime, openStore, runJob, startWorker } from "../mod.ts";
import { outputOf } from "./_deadline.ts";

const twoNodes = {
  id: "two",
  nodes: [
    { id: "a", type: "log", with: { message: "a" } },
    { id: "b", type: "log", needs: ["a"], with: { message: "b" } },
  ],
} as const;

/**
 * A callback that fails with `bug` when `fails()`: by throwing, or (`async`) by returning a
 * rejected promise, as an `async (e) => { await post(e) }` callback does.
 */
function failing<A extends unknown[]>(
  kind: "throws" | "rejects",
  bug: Error,
  fails: (...args: A) => boolean,
): (...args: A) => void {
  return kind === "throws"
    ? (...args) => {
      if (fails(...args)) throw bug;
    }
    // deno-lint-ignore require-await
    : async (...args) => {
      if (fails(...args)) throw bug;
    };
}

for (const kind of ["throws", "rejects"] as const) {
  for (const at of ["run.start", "node.start", "node.end", "run.end"]) {
    Deno.test(`runFlow: an onEvent that ${kind} at ${at} rejects runFlow once the run is recorded`, async () => {
      await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
      const seen: string[] = [];
      const bug = new Error("consumer bug");
      const error = await rt.runFlow(twoNodes, {
        onEvent: failing(kind, bug, (event) => {
          seen.push(event.type);
          return event.type === at;
        }),
      }).then(() => null, (err) => err as Error);
      assert.equal(error, bug, "runFlow rejects with the callback's own error");
      // The run went on: every node ran, the end was recorded, later events still came.
      assert.equal(seen.at(-1), "run.end");
      const { runs } = await (await rt.records()).listRuns({ flowId: "two", limit: 10 });
      assert.equal(runs.length, 1);
      assert.equal(runs[0].status, "succeeded");
    });
  }
}

Deno.test("runFlow: an async onEvent that rejects after the run ended neither fails it nor goes unhandled", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const pending: PromiseWithResolvers<void>[] = [];
  const run = await rt.runFlow(twoNodes, {
    onEvent: () => {
      const later = Promise.withResolvers<void>();
      pending.push(later);
      return later.promise;
    },
  });
  assert.equal(run.status, "succeeded");
  // The callbacks' promises fail only now, after runFlow resolved: too late to reject it, and
  // caught all the same (an unhandled rejection would fail this test, as it ends a process).
  for (const later of pending) later.reject(new Error("post failed"));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.ok(pending.length > 0);
});

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

for (const kind of ["throws", "rejects"] as const) {
  for (const at of ["start", "claim", "end", "error", "every event"]) {
    Deno.test(`startWorker: an onEvent that ${kind} at ${at} neither strands a run nor stops the worker`, async () => {
      await withQueueFlow(async (rt, flow) => {
        // A damaged claim entry in the records store: the worker's claim loop fails on it once
        // (an `error` event), then claims and runs the runs all the same.
        const store = await rt.store();
        await store.set(["flowstate", "queue", "claimed", "damaged"], null);
        const seen: string[] = [];
        const ended = Promise.withResolvers<void>();
        let ends = 0;
        const worker = startWorker(rt, {
          pollMs: 20,
          onEvent: failing(kind, new Error("printer bug"), (event) => {
            seen.push(event.type === "error" ? `error: ${event.message}` : event.type);
            if (event.type === "end" && ++ends === 2) ended.resolve();
            return at === "every event" || event.type === at;
          }),
        });
        await rt.enqueue(flow);
        await rt.enqueue(flow);
        await ended.promise;
        await worker.stop();
        const { runs } = await (await rt.records()).listRuns({ flowId: "q", limit: 10 });
        assert.deepEqual(runs.map((r) => r.status), ["succeeded", "succeeded"]);
        assert.ok(
          seen.some((e) => e.startsWith("error: ") && !e.includes("onEvent")),
          seen.join(", "),
        );
        if (at !== "error" && at !== "every event") {
          assert.ok(
            seen.includes(`error: onEvent threw on a "${at}" event: printer bug`),
            seen.join(", "),
          );
        }
        assert.equal(seen.filter((e) => e === "end").length, 2, seen.join(", "));
        assert.ok(seen.includes("stop"), seen.join(", "));
      });
    });
  }
}

/** A job that logs and advances its progress twice; `work()` counts what it got done. */
function loggingJob() {
  let work = 0;
  const job = defineJob({
    name: "logs",
    description: "logs twice",
    optionsSchema: z.strictObject({}),
    run(ctx) {
      ctx.progress.start("logging", 2);
      ctx.log("one");
      work++;
      ctx.progress.advance();
      ctx.log("two");
      work++;
      ctx.progress.update(2);
      ctx.progress.finish("logged");
      return Promise.resolve({ summary: "done", state: ctx.progress.state.done });
    },
  });
  return { job, work: () => work };
}

const quietProgress = () => ({
  state: { label: "", done: 0, total: undefined as number | undefined },
  start() {},
  advance() {},
  update() {},
  finish() {},
});

for (const kind of ["throws", "rejects"] as const) {
  for (
    const callback of [
      "onStart",
      "onLog",
      "progress.start",
      "progress.advance",
      "progress.update",
      "progress.finish",
    ]
  ) {
    Deno.test(`runJob: ${callback.startsWith("on") ? "an" : "a"} ${callback} that ${kind} neither strands nor fails the job`, async () => {
      await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
      const { job, work } = loggingJob();
      const bug = new Error(`${callback} bug`);
      const bad = failing(kind, bug, () => true);
      const options = callback.startsWith("progress.")
        ? { progress: { ...quietProgress(), [callback.slice("progress.".length)]: bad } }
        : { [callback]: bad };
      const error = await runJob(rt, job, options).then(() => null, (err) => err);
      assert.equal(error, bug, "runJob rejects with the callback's own error");
      assert.equal(work(), 2, "the job did all its work");
      const { runs } = await (await rt.records()).listRuns({ flowId: "job:logs", limit: 10 });
      assert.deepEqual(runs.map((r) => [r.status, r.error, r.outputs?.summary]), [
        ["succeeded", null, "done"],
      ]);
    });
  }
}

Deno.test("runJob: a signal, progress or callback of the wrong kind is refused before anything is recorded", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const { job, work } = loggingJob();
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { signal: {} },
      /^TypeError: Cannot run job: signal must be an AbortSignal \(from new AbortController\(\)\.signal\), got a mapping$/,
    ],
    [{ signal: "stop" }, /signal must be an AbortSignal .*got "stop"$/],
    [{ onLog: "console" }, /^TypeError: Cannot run job: onLog must be a function, got "console"$/],
    [{ onStart: {} }, /onStart must be a function, got a mapping$/],
    [
      { progress: "fancy" },
      /^TypeError: Cannot run job: progress must be one of tty, plain, quiet or a Progress object, got "fancy"$/,
    ],
    [
      { progress: { start() {}, finish() {} } },
      /^TypeError: Cannot run job: progress must have the methods start, advance, update, finish \(a Progress from createProgress\(\)\); advance, update are missing$/,
    ],
    [{ progress: 3 }, /progress must be one of .* got 3$/],
  ];
  for (const [options, message] of cases) {
    await assert.rejects(() => runJob(rt, job, options as never), (err: Error) => {
      assert.match(String(err), message);
      return true;
    });
  }
  assert.equal(work(), 0);
  const { runs } = await (await rt.records()).listRuns({ limit: 10 });
  assert.deepEqual(runs, [], "nothing was recorded, so nothing is left running");
  // A real signal, progress and callbacks still work.
  const run = await runJob(rt, job, {
    signal: new AbortController().signal,
    progress: quietProgress(),
    onLog: () => {},
    onStart: () => {},
  });
  assert.equal(run.status, "succeeded");
});

Deno.test("runJob: the built-in progress writes to stderr best effort: a closed stderr does not fail the job", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-progress-" });
  try {
    const script = join(dir, "job.ts");
    await Deno.writeTextFile(
      script,
      `import { defineJob, openRuntime, runJob } from ${
        JSON.stringify(new URL("../mod.ts", import.meta.url).href)
      };
import { z } from "zod";
await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
let work = 0;
const job = defineJob({
  name: "draw", description: "draws a bar", optionsSchema: z.strictObject({}),
  run(ctx) {
    ctx.progress.start("drawing", 3);
    for (let i = 0; i < 3; i++) { work++; ctx.progress.advance(); }
    ctx.progress.finish("drawn");
    return { work };
  },
});
// Wait until the parent closed the read end of stderr: every write to it fails from now.
await Deno.stdin.read(new Uint8Array(1));
const run = await runJob(rt, job, { progress: "plain" });
console.log(JSON.stringify({ status: run.status, error: run.error, work: run.outputs?.work }));
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `--config=${new URL("../deno.json", import.meta.url).pathname}`, script],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await child.stderr.cancel();
    const writer = child.stdin.getWriter();
    await writer.write(new Uint8Array([10]));
    await writer.close();
    const { code, stdout: out } = await outputOf(child);
    assert.equal(code, 0, out);
    assert.deepEqual(JSON.parse(out), { status: "succeeded", error: null, work: 3 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

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

Deno.test("openRuntime refuses a config path (or anything) given in place of its options object, and runFlow YAML text in place of a path", async () => {
  // openRuntime("other.yaml") opened ./flowstate.yaml (or none), not other.yaml, without a word.
  await assert.rejects(
    () => openRuntime("other.yaml" as never),
    /^TypeError: Cannot open runtime: expected an object of options, got the config path "other\.yaml": write openRuntime\(\{ config: "other\.yaml" \}\)$/,
  );
  for (const [options, got] of [[null, "null"], [["x"], "a list"]] as const) {
    await assert.rejects(
      () => openRuntime(options as never),
      new RegExp(
        `^TypeError: Cannot open runtime: expected an object of options like \\{ actor: … \\}, got ${got}$`,
      ),
    );
  }
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const text = "id: x\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n";
  await assert.rejects(
    () => rt.runFlow(text),
    (error: Error) => {
      assert.equal(error.name, "FlowValidationError");
      assert.equal((error as { code?: string }).code, "FLOW_INVALID");
      assert.equal(
        error.message,
        "Cannot load flow: a flow given as a string is the path of its file, and this one holds " +
          'a line break (is it the flow\'s YAML text?): pass the path, or parseFlow(text) from "@flowstate/core/flow"',
      );
      return true;
    },
  );
  await assert.rejects(
    () => rt.runFlow("a.flow.yaml", "x" as never),
    /^TypeError: Cannot run flow: expected an object of options like \{ input: … \}, got "x"$/,
  );
});

Deno.test("runFlow refuses an option of the wrong kind before the run starts (nothing recorded), naming it and what it must be", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const flow = { id: "x", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] };
  for (
    const [options, message] of [
      [{ signal: "x" }, 'option signal must be an AbortSignal (got "x")'],
      [{ onEvent: 5 }, "option onEvent must be a function (got 5)"],
      [{ onStart: {} }, "option onStart must be a function (got {})"],
      [{ concurrency: 0 }, "option concurrency must be a whole number of 1 or more (got 0)"],
      [{ concurrency: 1.5 }, "option concurrency must be a whole number of 1 or more (got 1.5)"],
      [
        { abortGrace: -1 },
        "option abortGrace must be a number of milliseconds, 0 or more (got -1)",
      ],
      [
        { defaultTimeout: "1m" },
        'option defaultTimeout must be a number of milliseconds above 0 (got "1m")',
      ],
      // 0 would time the run out at once, blaming the config's runs.timeout (which refuses 0).
      [
        { defaultTimeout: 0 },
        "option defaultTimeout must be a number of milliseconds above 0 (got 0)",
      ],
      [{ maxSubRuns: Number.NaN }, "option maxSubRuns must be a whole number, 0 or more (got NaN)"],
    ] as const
  ) {
    await assert.rejects(
      () => rt.runFlow(flow, options as never),
      (error: Error) => {
        assert.ok(error instanceof TypeError, String(error));
        assert.equal(error.message, `Cannot run flow: ${message}`);
        return true;
      },
    );
  }
  const { runs } = await (await rt.records()).listRuns({ limit: 10 });
  assert.deepEqual(runs, [], "nothing ran");
});
