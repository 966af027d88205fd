/**
 * Flowstate scripted from a program through `mod.ts` and its sub-exports: the
 * scheduler started over broken flow files, a flow's tick due at `start()`,
 * `await using` on schedulers and workers, and the errors a program tells
 * apart by class and code.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ConfigError,
  ConflictError,
  FlowstateError,
  NotFoundError,
  openRuntime,
  type Runtime,
  startWorker,
  StoreClosedError,
} from "../mod.ts";
import { newRunId } from "../records.ts";
import { Scheduler, type SchedulerEvent } from "../scheduler.ts";
// Not exported (yet): what `flowstate serve` runs.
import { serve } from "../src/serve/server.ts";
import { hangSignal, within } from "./_deadline.ts";

const T3 = Date.UTC(2026, 0, 1, 3);
const COUNT_FLOW = [
  "id: count",
  'schedule: "0 3 * * *"',
  "nodes:",
  "  - { id: inc, type: state.increment, with: { scope: global, key: n } }",
  "",
].join("\n");

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-library-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A runtime on a memory store whose config schedules the flow files of `dir`, jobs off. */
function runtimeOver(dir: string) {
  return openRuntime({
    cwd: dir,
    config: {
      stores: { main: { plugin: "memory" } },
      flows: ["./flows"],
      jobs: { retention: { enabled: false }, gc: { enabled: false } },
    },
  });
}

Deno.test("Scheduler: a flow's tick due exactly at start() runs when stop() follows at once", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows/count.flow.yaml"), COUNT_FLOW);
    await using rt = await runtimeOver(dir);
    const events: SchedulerEvent[] = [];
    const scheduler = new Scheduler(rt, {
      clock: { now: () => T3 },
      onEvent: (event) => void events.push(event),
    });
    await scheduler.start();
    await scheduler.stop();
    const skips = events.filter((e) => e.type === "tick.skip");
    assert.deepEqual(skips, []);
    const ends = events.filter((e) => e.type === "tick.end");
    assert.deepEqual(ends.map((e) => e.type === "tick.end" && e.status), ["succeeded"]);
    assert.equal((await (await rt.store()).get(["global", "n"]))?.value, 1);
  });
});

Deno.test("Scheduler startProblems: report starts with the good flow files and jobs, and tells the broken ones", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows/count.flow.yaml"), COUNT_FLOW);
    await Deno.writeTextFile(
      join(dir, "flows/broken.flow.yaml"),
      'id: broken\nschedule: "@hourly"\nnodes:\n  - { id: a, type: no.such.type }\n',
    );
    await using rt = await openRuntime({
      cwd: dir,
      config: {
        stores: { main: { plugin: "memory" } },
        flows: ["./flows"],
        jobs: {
          retention: { enabled: false },
          gc: { enabled: false },
          report: { module: "./no-such-job.ts", schedule: "@daily" },
        },
      },
    });
    // The default is unchanged: one broken file, or job, and nothing starts.
    await assert.rejects(new Scheduler(rt, { clock: { now: () => T3 } }).start(), /no-such-job/);
    const events: SchedulerEvent[] = [];
    const scheduler = new Scheduler(rt, {
      clock: { now: () => T3 },
      startProblems: "report",
      onEvent: (event) => void events.push(event),
    });
    await scheduler.start();
    await scheduler.stop();
    assert.deepEqual(scheduler.schedules.map((s) => s.id), ["flow:count"]);
    const errors = events.flatMap((e) => e.type === "error" ? [e] : []);
    assert.deepEqual(errors.map((e) => e.scheduleId), ["job:report", undefined]);
    assert.match(errors[0].message, /Cannot schedule job "report"/);
    assert.match(errors[1].message, /broken\.flow\.yaml cannot be used .*no\.such\.type/);
    assert.deepEqual(
      scheduler.flowProblems.map((p) => [p.file, p.flowId]),
      [[join(dir, "flows/broken.flow.yaml"), null]],
    );
    // The good flow's tick ran.
    assert.equal((await (await rt.store()).get(["global", "n"]))?.value, 1);
    assert.throws(
      () => new Scheduler(rt, { startProblems: "skip" as "report" }),
      (err) =>
        err instanceof TypeError && /startProblems must be "throw" or "report"/.test(err.message),
    );
  });
});

Deno.test("await using stops a worker and a scheduler, then closes the runtime, in reverse order", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "hi.flow.yaml"),
      "id: hi\nnodes:\n  - { id: a, type: state.increment, with: { scope: global, key: n } }\n",
    );
    const seen: string[] = [];
    let runtime: Runtime | undefined;
    {
      await using rt = await openRuntime({
        cwd: dir,
        config: { stores: { main: { plugin: "memory" } } },
      });
      runtime = rt;
      const ended = Promise.withResolvers<void>();
      await using _worker = startWorker(rt, {
        onEvent: (event) => {
          if (event.type === "end") ended.resolve();
          if (event.type === "stop") seen.push("worker stopped");
        },
      });
      await using scheduler = new Scheduler(rt, {
        schedules: [{ id: "ping", cron: "@yearly", run: () => {} }],
        onEvent: (event) => void (event.type === "stop" && seen.push("scheduler stopped")),
      });
      await scheduler.start();
      await rt.enqueue("./hi.flow.yaml");
      await within(ended.promise, "the ended event");
    }
    assert.deepEqual(seen, ["scheduler stopped", "worker stopped"]);
    await assert.rejects(runtime!.store(), StoreClosedError);
  });
});

Deno.test("await using shuts the HTTP server down (its worker stopped first)", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  let finished: Promise<void>;
  let workerStopped = false;
  {
    await using server = await serve(rt, {
      port: 0,
      worker: { onEvent: (e) => void (e.type === "stop" && (workerStopped = true)) },
    });
    finished = server.finished;
    assert.equal(
      (await fetch(new URL("/health", server.url), { signal: hangSignal() }).then((r) => r.json()))
        .status,
      "ok",
    );
  }
  await finished;
  assert.ok(workerStopped);
});

Deno.test("errors: not found, conflict and invalid input are told apart by class and code", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flows/hi.flow.yaml"),
      "id: hi\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    await using rt = await runtimeOver(dir);
    const codeOf = (err: unknown) => err instanceof FlowstateError ? err.code : undefined;

    const noFlow = await rt.enqueue("report").catch((e) => e);
    assert.ok(noFlow instanceof NotFoundError, String(noFlow));
    assert.deepEqual([codeOf(noFlow), noFlow.kind, noFlow.id], ["NOT_FOUND", "flow", "report"]);
    assert.match(noFlow.message, /Cannot find flow "report": .*found: hi/);

    const records = await rt.records();
    const noRun = await records.requeueRun(newRunId(Date.now())).catch((e) => e);
    assert.ok(noRun instanceof NotFoundError, String(noRun));
    assert.equal(noRun.kind, "run");

    const run = await rt.runFlow("./flows/hi.flow.yaml");
    const conflict = await records.requeueRun(run.id, { flowPath: "./flows/hi.flow.yaml" })
      .catch((e) => e);
    assert.ok(conflict instanceof ConflictError, String(conflict));
    assert.equal(codeOf(conflict), "CONFLICT");

    // Invalid input stays what it was: a TypeError or RangeError for an option.
    const badOption = await rt.enqueue("hi", { priority: 1.5 }).catch((e) => e);
    assert.ok(badOption instanceof RangeError || badOption instanceof TypeError, String(badOption));

    // Two files with one id: the config's problem.
    await Deno.writeTextFile(
      join(dir, "flows/copy.flow.yaml"),
      await Deno.readTextFile(join(dir, "flows/hi.flow.yaml")),
    );
    const twice = await rt.enqueue("hi").catch((e) => e);
    assert.ok(twice instanceof ConfigError, String(twice));
    assert.match(twice.message, /both .* define it; flow ids must be unique/);
  });
});

Deno.test("signal: aborting stops a worker and a scheduler (a SIGTERM handler's one controller)", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const workerStopped = Promise.withResolvers<void>();
  const schedulerStopped = Promise.withResolvers<void>();
  const controller = new AbortController();
  startWorker(rt, {
    signal: controller.signal,
    onEvent: (e) => void (e.type === "stop" && workerStopped.resolve()),
  });
  const scheduler = new Scheduler(rt, {
    signal: controller.signal,
    schedules: [{ id: "ping", cron: "@yearly", run: () => {} }],
    onEvent: (e) => void (e.type === "stop" && schedulerStopped.resolve()),
  });
  await scheduler.start();
  controller.abort();
  // Nothing but the signal stops them.
  await Promise.all([workerStopped.promise, schedulerStopped.promise]);
  // Aborted before start: nothing starts.
  const late = new Scheduler(rt, {
    signal: controller.signal,
    schedules: [{ id: "ping", cron: "@yearly", run: () => {} }],
  });
  await late.start();
  assert.deepEqual(late.schedules, []);
  // A misspelt option is named, not ignored.
  assert.throws(
    () => new Scheduler(rt, { startProblem: "report" } as never),
    (err) =>
      err instanceof TypeError &&
      /unknown option "startProblem" \(did you mean "startProblems"\?\)/.test(err.message),
  );
});

Deno.test("openRuntime refuses a cwd that does not exist or is a file, naming it; nothing is created there", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = join(dir, "typo", "project");
    const file = join(dir, "notes.txt");
    await Deno.writeTextFile(file, "a file\n");
    for (const config of [undefined, { stores: { main: { plugin: "memory" as const } } }]) {
      await assert.rejects(
        () => openRuntime({ cwd: missing, ...(config ? { config } : {}) }),
        (err) =>
          err instanceof ConfigError &&
          err.message ===
            `Cannot open runtime: the working directory ${
              JSON.stringify(missing)
            } (option cwd) does not exist: create it, or pass the path of an existing directory`,
      );
      await assert.rejects(
        () => openRuntime({ cwd: file, ...(config ? { config } : {}) }),
        (err) =>
          err instanceof ConfigError &&
          err.message ===
            `Cannot open runtime: the working directory ${
              JSON.stringify(file)
            } (option cwd) is a file, not a directory: pass the directory that holds it`,
      );
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["notes.txt"]);
    // An existing directory, relative or not, opens as before.
    await using rt = await openRuntime({ cwd: dir, home: join(dir, "home") });
    assert.equal(rt.config.baseDir, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a program with only memory stores runs without --allow-env=FLOWSTATE_HOME; one that needs the home is told what to grant", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const mod = new URL("../mod.ts", import.meta.url).href;
    const script = join(dir, "program.ts");
    await Deno.writeTextFile(
      script,
      `import { openRuntime } from ${JSON.stringify(mod)};
const config = Deno.args[0] === "memory" ? { stores: { main: { plugin: "memory" } } } : undefined;
await using rt = await openRuntime(config ? { config } : {});
const store = await rt.store();
await store.set(["k"], 1);
const run = await rt.runFlow({ id: "f", nodes: [{ id: "a", type: "transform", with: { value: 1 } }] });
console.log(run.status, (await store.get(["k"]))?.value);
`,
    );
    const run = async (which: string) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-prompt",
          `--config=${new URL("../deno.json", import.meta.url).pathname}`,
          "--allow-read",
          "--allow-write",
          script,
          which,
        ],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
      return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
    };
    const memory = await run("memory");
    assert.equal(memory.code, 0, memory.stderr);
    assert.equal(memory.stdout, "succeeded 1\n");
    // The default store is in the home: the home is needed, and the error says what to grant.
    const sqlite = await run("default");
    assert.notEqual(sqlite.code, 0);
    assert.match(
      sqlite.stderr,
      /Cannot read environment variable FLOWSTATE_HOME: this process has no permission to read it; grant it with --allow-env=FLOWSTATE_HOME/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
