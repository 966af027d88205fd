/**
 * `runs.onFailure` through the public surface: `flowstate run` of a failing
 * flow runs the alert flow (which writes state the test reads back), a failed
 * job does too, a queue worker fires only after a run's last attempt, the
 * alert flow's own failure (and its sub-runs') fires nothing, two processes
 * racing over one abandoned run fire it once, and a bad `onFailure` is an
 * error at its file:line:column from `validate` and the daemon.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type RunRecord, startWorker } from "../mod.ts";
import { type OnFailureMarker, RunRecorder } from "../records.ts";
import { serve } from "../serve.ts";
import { documented } from "./_serve.ts";
import { cliCommand, withCliProject, withSandbox } from "./_cli_sandbox.ts";
import { streamLines, withDaemonProject, within } from "./fixtures/daemon_process.ts";
import { exitOf, hangSignal, outputOf } from "./_deadline.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;

/** The onFailure flow's start: it counts its runs in flow state (`count`). */
const ALERT_HEAD = `
id: alert
inputs:
  run: { type: object }
nodes:
  - id: count
    type: state.increment
    with: { key: count }
`;

/** Keeps what it is told in flow state: `last` (the input) and `count` (how many runs). */
const ALERT = `${ALERT_HEAD}  - id: keep
    type: state.set
    with: { key: last, value: "\${{ inputs.run }}" }
`;

const BOOM = `
id: boom
nodes:
  - id: explode
    type: fail
    with: { message: kaboom }
`;

const FINE = `
id: fine
nodes:
  - id: ok
    type: transform
    with: { value: 1 }
`;

const CONFIG = `
stores:
  default: { plugin: sqlite, path: state.db }
flows: [./flows]
jobs:
  retention: { enabled: false }
  gc: { enabled: false }
  flaky: { module: ./flaky_job.ts }
runs:
  onFailure:
    flow: alert
`;

const FLAKY_JOB = `
import { defineJob } from "${MOD}";
export default defineJob({
  name: "flaky",
  description: "always fails",
  // A Standard Schema that takes any options (zod does not resolve from a temporary folder).
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  run() {
    throw new Error("the disk is full");
  },
});
`;

async function writeProject(dir: string, alert = ALERT, config = CONFIG): Promise<void> {
  await Deno.mkdir(join(dir, "flows"), { recursive: true });
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), config);
  await Deno.writeTextFile(join(dir, "flows", "alert.flow.yaml"), alert);
  await Deno.writeTextFile(join(dir, "flows", "boom.flow.yaml"), BOOM);
  await Deno.writeTextFile(join(dir, "flows", "fine.flow.yaml"), FINE);
  await Deno.writeTextFile(join(dir, "flaky_job.ts"), FLAKY_JOB);
}

Deno.test("run: a failing flow runs the runs.onFailure flow before exiting 1; it gets the run, and runs show links both ways", async () => {
  await withSandbox(async ({ dir, run }) => {
    await writeProject(dir);
    const fine = await run("run", "flows/fine.flow.yaml");
    assert.equal(fine.code, 0, fine.stderr);
    assert.notEqual((await run("state", "get", "count", "--flow", "alert")).code, 0, "not fired");

    const failed = await run("run", "flows/boom.flow.yaml");
    assert.equal(failed.code, 1, failed.stderr);
    const id = /^run: +(\S+)$/m.exec(failed.stdout)?.[1];
    assert.ok(id, failed.stdout);
    const handlerId = /^onFailure: alert ran as run (\S+)$/m.exec(failed.stdout)?.[1];
    assert.ok(handlerId, failed.stdout);

    const last = JSON.parse((await run("state", "get", "last", "--flow", "alert")).stdout);
    assert.equal(last.id, id);
    assert.equal(last.flow, "boom");
    assert.equal(last.job, null);
    assert.equal(last.status, "failed");
    assert.equal(last.kind, "failed");
    assert.equal(last.error, "kaboom");
    assert.deepEqual(last.failed, [{ node: "explode", error: "kaboom" }]);
    assert.equal(last.source, "cli");
    assert.equal(last.attempt, 1);
    assert.equal(typeof last.host, "string");
    assert.ok(Date.parse(last.endedAt) >= Date.parse(last.startedAt));
    assert.equal((await run("state", "get", "count", "--flow", "alert")).stdout.trim(), "1");

    const shown = JSON.parse((await run("runs", "show", id, "--json")).stdout);
    assert.equal(shown.onFailure.runId, handlerId);
    assert.equal(shown.onFailure.flow, "alert");
    const handler = JSON.parse((await run("runs", "show", handlerId, "--json")).stdout);
    assert.equal(handler.run.onFailureOf, id);
    assert.equal(handler.run.status, "succeeded");
    assert.match(
      (await run("runs", "show", id)).stdout,
      new RegExp(`^onFailure: alert ran as run ${handlerId} `, "m"),
    );
    assert.match(
      (await run("runs", "show", handlerId)).stdout,
      new RegExp(`^reports: +on run ${id} `, "m"),
    );

    // A job's failure too, with job: instead of flow:.
    const job = await run("jobs", "run", "flaky");
    assert.equal(job.code, 1, job.stderr);
    const jobLast = JSON.parse((await run("state", "get", "last", "--flow", "alert")).stdout);
    assert.equal(jobLast.job, "flaky");
    assert.equal(jobLast.flow, null);
    assert.equal(jobLast.version, "job");
    assert.equal(jobLast.error, "the disk is full");
    assert.equal((await run("state", "get", "count", "--flow", "alert")).stdout.trim(), "2");
  });
});

Deno.test("run: the onFailure flow's own failure, and its failing sub-run, fire nothing; except: and on: leave runs out", async () => {
  const failingAlert = `${ALERT_HEAD}  - id: sub
    needs: [count]
    type: flow
    with: { flow: ./boom.flow.yaml }
`;
  await withSandbox(async ({ dir, run }) => {
    await writeProject(dir, failingAlert);
    const failed = await run("run", "flows/boom.flow.yaml");
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(
      failed.stderr,
      /runs\.onFailure: the flow alert \(run \S+\) about run \S+ ended failed/,
    );
    assert.equal((await run("state", "get", "count", "--flow", "alert")).stdout.trim(), "1");
    const runs = JSON.parse((await run("runs", "ls", "--json")).stdout) as RunRecord[];
    // boom, alert (failed), alert's sub-run of boom (failed): nothing more.
    assert.deepEqual(runs.map((r) => [r.flowId, r.status]).sort(), [
      ["alert", "failed"],
      ["boom", "failed"],
      ["boom", "failed"],
    ]);

    // except: and on: are honoured.
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      CONFIG.replace("flow: alert", "flow: alert\n    except: [boom]"),
    );
    assert.equal((await run("run", "flows/boom.flow.yaml")).code, 1);
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      CONFIG.replace("flow: alert", "flow: alert\n    on: [timed-out]"),
    );
    assert.equal((await run("run", "flows/boom.flow.yaml")).code, 1);
    assert.equal((await run("state", "get", "count", "--flow", "alert")).stdout.trim(), "1");
  });
});

Deno.test({
  name:
    "daemon: a scheduled flow that fails runs the onFailure flow, which posts it with a secret token (the Slack case)",
  sanitizeResources: false,
  async fn() {
    const posted = Promise.withResolvers<{ auth: string | null; body: Record<string, unknown> }>();
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (req) => {
        posted.resolve({ auth: req.headers.get("authorization"), body: await req.json() });
        return new Response("ok");
      },
    );
    const slack = `
id: slack
secrets: [SLACK_TOKEN]
inputs:
  run: { type: object }
nodes:
  - id: post
    type: http
    permissions: { net: ["127.0.0.1"] }
    with:
      method: POST
      url: http://127.0.0.1:${server.addr.port}/hook
      headers: { Authorization: "Bearer \${{ secrets.SLACK_TOKEN }}" }
      body: { text: "\${{ inputs.run.flow }} \${{ inputs.run.status }}", run: "\${{ inputs.run }}" }
`;
    const scheduled = BOOM.replace("id: boom", 'id: boom\nschedule: "* * * * * *"');
    const config = "stores:\n  default: { plugin: memory }\nflows: [./flows]\njobs:\n" +
      "  retention: { enabled: false }\n  gc: { enabled: false }\n" +
      "runs:\n  onFailure: { flow: slack }\n";
    await withDaemonProject(
      "flowstate-onfailure-daemon-",
      {
        "flowstate.yaml": config,
        "flows/slack.flow.yaml": slack,
        "flows/boom.flow.yaml": scheduled,
      },
      [],
      async ({ child }) => {
        const { auth, body } = await within(posted.promise, "the onFailure flow's post");
        child.kill("SIGTERM");
        await exitOf(child);
        assert.equal(auth, "Bearer xoxb-test");
        assert.equal(body.text, "boom failed");
        const run = body.run as Record<string, unknown>;
        assert.equal(run.source, "schedule");
        assert.equal(run.error, "kaboom");
      },
      { SLACK_TOKEN: "xoxb-test" },
    );
  },
});

Deno.test("worker: a queued run fires the onFailure flow once, after its last attempt only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-onfailure-" });
  try {
    await writeProject(dir);
    await using rt = await openRuntime({
      config: {
        stores: { default: { plugin: "memory" } },
        runs: { onFailure: { flow: join(dir, "flows", "alert.flow.yaml") } },
      },
    });
    const events = rt.events();
    const { runId } = await rt.enqueue(join(dir, "flows", "boom.flow.yaml"), {
      maxAttempts: 2,
      backoff: { delay: 0 },
    });
    const worker = startWorker(rt, { pollMs: 10 });
    try {
      for await (const event of events) {
        if (event.type === "run.ended" && event.flowId === "alert") break;
      }
    } finally {
      await worker.stop();
    }
    const records = await rt.records();
    const failed = await records.getRun(runId);
    assert.equal(failed?.status, "failed");
    assert.equal(failed?.queue?.attempts.length, 2);
    const handlers = (await records.listRuns({ flowId: "alert" })).runs;
    assert.equal(handlers.length, 1);
    assert.equal(handlers[0].onFailureOf, runId);
    const input = handlers[0].inputs.run as Record<string, unknown>;
    assert.equal(input.source, "queue");
    assert.equal(input.attempt, 2);
    assert.equal((await records.onFailureMarker(runId))?.runId, handlers[0].id);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("worker: a run a flow enqueued fires the onFailure flow; one the onFailure flow enqueued does not (no loop through the queue)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-onfailure-" });
  const enqueuing = (id: string) => `
id: ${id}
inputs:
  run: { type: object, default: {} }
nodes:
  - id: later
    type: queue
    with: { flow: ./boom.flow.yaml }
`;
  try {
    await writeProject(dir, enqueuing("alert"));
    await Deno.writeTextFile(join(dir, "flows", "parent.flow.yaml"), enqueuing("parent"));
    await using rt = await openRuntime({
      config: {
        stores: { default: { plugin: "memory" } },
        runs: { onFailure: { flow: join(dir, "flows", "alert.flow.yaml") } },
      },
    });
    const events = rt.events();
    // parent enqueues boom (1), which fails: alert runs and enqueues boom (2), which fails too.
    const parent = await rt.runFlow(join(dir, "flows", "parent.flow.yaml"));
    assert.equal(parent.status, "succeeded");
    const worker = startWorker(rt, { pollMs: 10 });
    let boomEnds = 0;
    try {
      for await (const event of events) {
        if (event.type === "run.ended" && event.flowId === "boom" && ++boomEnds === 2) break;
      }
    } finally {
      await worker.stop();
    }
    const records = await rt.records();
    const booms = (await records.listRuns({ flowId: "boom" })).runs;
    assert.deepEqual(booms.map((r) => r.status), ["failed", "failed"]);
    const alerts = (await records.listRuns({ flowId: "alert" })).runs;
    assert.equal(alerts.length, 1, "the second boom, enqueued by alert, fires nothing");
    const first = booms.find((r) => r.parentRunId === parent.id);
    assert.equal(alerts[0].onFailureOf, first?.id);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "gc: two processes racing over one abandoned run fire the onFailure flow exactly once, with kind abandoned",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-onfailure-race-" });
    try {
      await writeProject(dir);
      // A run whose process died ten minutes ago: recorded running, its heartbeat stale.
      let abandoned: string;
      {
        await using rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
        const clock = { now: () => Date.now() - 10 * 60_000 };
        const recorder = await RunRecorder.start(await rt.records(), clock, {
          flowId: "boom",
          flowVersion: "job",
          inputs: {},
        });
        await recorder.close();
        abandoned = recorder.id;
      }
      const home = join(dir, "home");
      const racers = [1, 2].map(() =>
        cliCommand(dir, ["jobs", "run", "gc", "--quiet"], { home }).spawn()
      );
      const results = await Promise.all(racers.map((p) => outputOf(p)));
      for (const r of results) assert.equal(r.code, 0, r.stderr);

      await using rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
      const records = await rt.records();
      assert.equal((await records.getRun(abandoned))?.status, "failed");
      const handlers = (await records.listRuns({ flowId: "alert" })).runs;
      assert.equal(handlers.length, 1, JSON.stringify(handlers.map((h) => h.id)));
      assert.equal(handlers[0].onFailureOf, abandoned);
      const input = handlers[0].inputs.run as Record<string, unknown>;
      assert.equal(input.kind, "abandoned");
      assert.equal(input.source, null);
      const count = await (await rt.store("default")).get(["flow", "alert", "count"]);
      assert.equal(count?.value, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("two runtimes on one store told of the same failed run: one claims it, the flow runs once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-onfailure-claim-" });
  try {
    await writeProject(dir);
    const config = join(dir, "flowstate.yaml");
    await using a = await openRuntime({ config });
    await using b = await openRuntime({ config });
    const failed = await b.runFlow(join(dir, "flows", "boom.flow.yaml"));
    // b ran the alert flow already; a hearing of the same end (a second reporter) adds nothing.
    const { notifyRunEnded } = await import("../src/runtime.ts");
    await Promise.all([notifyRunEnded(a, failed), notifyRunEnded(b, failed)]);
    const handlers = (await (await a.records()).listRuns({ flowId: "alert" })).runs;
    assert.equal(handlers.length, 1);
    // A fresh failure told to both at once: exactly one of them runs it.
    const second = await a.records().then((r) =>
      RunRecorder.start(r, { now: () => Date.now() }, {
        flowId: "boom",
        flowVersion: "job",
        inputs: {},
      })
    );
    const record = await second.finish({
      status: "failed",
      outputs: null,
      nodes: {},
      error: { message: "no" },
    });
    await Promise.all([notifyRunEnded(a, record), notifyRunEnded(b, record)]);
    const after = (await (await a.records()).listRuns({ flowId: "alert" })).runs;
    assert.equal(after.filter((h) => h.onFailureOf === record.id).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate and daemon: a bad runs.onFailure is an error at its file:line:column (exit 2)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await writeProject(dir);
    const cases: [string, RegExp][] = [
      [
        CONFIG.replace("flow: alert", "flow: alrt"),
        /^error: flowstate\.yaml:11:5: runs\.onFailure\.flow: no flow under flows: has the id "alrt" \(did you mean "alert"\?\)/m,
      ],
      [
        CONFIG.replace("flow: alert", "flow: ./missing.flow.yaml"),
        /^error: flowstate\.yaml:11:5: runs\.onFailure\.flow: cannot read .*missing\.flow\.yaml: no such file/m,
      ],
      [
        CONFIG.replace("flow: alert", "flow: boom"),
        /^error: flowstate\.yaml:11:5: runs\.onFailure\.flow: flows\/boom\.flow\.yaml: flow "boom" does not declare the input run/m,
      ],
      [
        CONFIG.replace("flow: alert", "flow: ./bad.flow.yaml"),
        /^error: flowstate\.yaml:11:5: runs\.onFailure\.flow: the flow bad\.flow\.yaml is not valid: .*bad\.flow\.yaml:4:11: nodes\[0\]\.type: unknown node type "nope"/m,
      ],
    ];
    await Deno.writeTextFile(
      join(dir, "bad.flow.yaml"),
      "id: bad\nnodes:\n  - id: x\n    type: nope\n",
    );
    for (const [config, expected] of cases) {
      await Deno.writeTextFile(join(dir, "flowstate.yaml"), config);
      const validated = await run("validate");
      assert.equal(validated.code, 2, validated.stdout + validated.stderr);
      assert.match(validated.stderr, expected);
      const daemon = await run("daemon");
      assert.equal(daemon.code, 2, daemon.stderr);
      assert.match(daemon.stderr, expected);
    }
  });
  // Its shape: checked with the rest of the file, every mistake at once.
  await withCliProject(
    "runs:\n  onFailure:\n    flw: alert\n    on: [failed, oops]\n",
    async (run) => {
      const result = await run("validate");
      assert.equal(result.code, 2);
      assert.match(
        result.stderr,
        /^error: flowstate\.yaml:3:5: runs\.onFailure\.flw: unknown field \(did you mean "flow"\?\); onFailure allows flow, on, except$/m,
      );
      assert.match(
        result.stderr,
        /^error: flowstate\.yaml:4:18: runs\.onFailure\.on\[1\]: expected one of "failed", "timed-out", "abandoned", "cancelled", got the string "oops"$/m,
      );
    },
  );
});

Deno.test({
  name:
    "validate and worker: an except: entry naming no known flow or job is a warning at its file:line:column",
  sanitizeResources: false,
  async fn() {
    await withSandbox(async ({ dir, home, run }) => {
      await writeProject(
        dir,
        ALERT,
        `${CONFIG}    except: [fine, boomm, job:flaky, job:backpu, gc, job:retention]\n`,
      );
      const expected = [
        /^warning: flowstate\.yaml:12:20: runs\.onFailure\.except\[1\]: no flow under flows: has the id "boomm" \(did you mean "boom"\?\); this entry leaves out only a flow run by path whose id is "boomm"; the flows are /m,
        /^warning: flowstate\.yaml:12:38: runs\.onFailure\.except\[3\]: no job is named "backpu" \(did you mean "job:backup"\?\); the jobs are job:retention, /m,
        /^warning: flowstate\.yaml:12:50: runs\.onFailure\.except\[4\]: no flow under flows: has the id "gc" \(did you mean "job:gc"\? a job is written job:<name>\)/m,
      ];
      const validated = await run("validate");
      assert.equal(validated.code, 0, validated.stderr);
      for (const pattern of expected) assert.match(validated.stderr, pattern);
      assert.equal(validated.stderr.match(/^warning: .*runs\.onFailure\.except/gm)?.length, 3);
      const json = JSON.parse((await run("validate", "--json")).stdout) as {
        file: string;
        warnings: string[];
      }[];
      const config = json.find((r) => r.file.endsWith("flowstate.yaml"))!;
      assert.equal(config.warnings.length, 3, JSON.stringify(json));
      assert.match(config.warnings[0], /^flowstate\.yaml:12:20: runs\.onFailure\.except\[1\]: /);

      // The worker says so as it starts (then works the queue until stopped).
      const worker = cliCommand(dir, ["worker"], { home }).spawn();
      const stderr = streamLines(worker.stderr);
      try {
        for (const pattern of expected) {
          await within(stderr.next(new RegExp(pattern.source.slice(1))), `${pattern}`);
        }
      } finally {
        worker.kill("SIGTERM");
        await exitOf(worker);
        await worker.stdout.cancel();
      }
    });
  },
});

Deno.test("api: GET /api/runs/{id} (and …/nodes) of a failed run carries its onFailure marker; the handler's run its onFailureOf", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-onfailure-api-" });
  try {
    await writeProject(dir);
    await using rt = await openRuntime({
      config: join(dir, "flowstate.yaml"),
      cwd: dir,
      home: join(dir, "home"),
    });
    // The onFailure flow runs (and ends) before runFlow returns.
    const failed = await rt.runFlow(join(dir, "flows", "boom.flow.yaml"));
    assert.equal(failed.status, "failed");
    const fine = await rt.runFlow(join(dir, "flows", "fine.flow.yaml"));
    await using server = await serve(rt, { port: 0, worker: false });
    const get = (path: string) => fetch(new URL(path, server.url), { signal: hangSignal() });

    const detail = await documented<{ onFailure?: OnFailureMarker; run: RunRecord }>(
      "GET",
      "/api/runs/{id}",
      await get(`/api/runs/${failed.id}`),
    );
    assert.equal(detail.onFailure?.flow, "alert");
    assert.equal(typeof detail.onFailure?.runId, "string");
    assert.equal(detail.onFailure?.pid, Deno.pid);
    const handlerId = detail.onFailure!.runId!;
    const page = await documented<{ onFailure?: OnFailureMarker }>(
      "GET",
      "/api/runs/{id}/nodes",
      await get(`/api/runs/${failed.id}/nodes`),
    );
    assert.deepEqual(page.onFailure, detail.onFailure);
    // An events-only refresh (?after=) carries it too: a page that polls learns of it.
    const after = await documented<{ onFailure?: OnFailureMarker }>(
      "GET",
      "/api/runs/{id}",
      await get(`/api/runs/${failed.id}?after=1`),
    );
    assert.deepEqual(after.onFailure, detail.onFailure);

    const handler = await documented<{ onFailure?: OnFailureMarker; run: RunRecord }>(
      "GET",
      "/api/runs/{id}",
      await get(`/api/runs/${handlerId}`),
    );
    assert.equal(handler.run.onFailureOf, failed.id);
    assert.equal(handler.run.flowId, "alert");
    assert.equal(handler.onFailure, undefined);
    // A run that ended well has neither.
    const ok = await documented<{ onFailure?: OnFailureMarker; run: RunRecord }>(
      "GET",
      "/api/runs/{id}",
      await get(`/api/runs/${fine.id}`),
    );
    assert.equal(ok.onFailure, undefined);
    assert.equal(ok.run.onFailureOf, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("archive: an archived failed run keeps its onFailure link (runs show, --json, GET /api/runs/{id})", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await writeProject(dir);
    const failed = await run("run", "flows/boom.flow.yaml");
    assert.equal(failed.code, 1, failed.stderr);
    const id = /^run: +(\S+)$/m.exec(failed.stdout)![1];
    const handlerId = /^onFailure: alert ran as run (\S+)$/m.exec(failed.stdout)![1];
    const archived = await run("jobs", "run", "archive", "-o", "olderThan=0s");
    assert.equal(archived.code, 0, archived.stderr);
    assert.equal(
      (await run("runs", "ls")).stdout.includes(id),
      false,
      "archived, not in the store",
    );

    const shown = JSON.parse((await run("runs", "show", id, "--json")).stdout);
    assert.equal(typeof shown.archive, "string");
    assert.equal(shown.onFailure?.runId, handlerId);
    assert.equal(shown.onFailure?.flow, "alert");
    assert.match(
      (await run("runs", "show", id)).stdout,
      new RegExp(`^onFailure: alert ran as run ${handlerId} `, "m"),
    );

    await using rt = await openRuntime({ config: join(dir, "flowstate.yaml"), cwd: dir, home });
    await using server = await serve(rt, { port: 0, worker: false });
    const detail = await documented<{ onFailure?: OnFailureMarker }>(
      "GET",
      "/api/runs/{id}",
      await fetch(new URL(`/api/runs/${id}`, server.url), { signal: hangSignal() }),
    );
    assert.deepEqual(detail.onFailure, shown.onFailure);
  });
});
