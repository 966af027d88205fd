import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError } from "../errors.ts";
import type { RunRecord } from "../records/types.ts";
import { openRuntime } from "../runtime.ts";
import { fakeClock } from "../testing/clock.ts";
import { loadSchedules } from "./from_config.ts";
import { tickKey } from "./lease.ts";
import { Scheduler } from "./scheduler.ts";

const T0 = Date.UTC(2026, 0, 1);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-scheduler-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const JOB_MODULE = (name: string, body: string) => `
import { defineJob } from "${pathToFileURL(join(import.meta.dirname!, "../jobs/job.ts")).href}";
export default defineJob({
  name: ${JSON.stringify(name)},
  description: "a test job",
  defaultSchedule: "30 3 * * *",
  optionsSchema: {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: (v) => typeof v.count === "number"
        ? { value: v }
        : { issues: [{ message: "expected a number", path: ["count"] }] },
    },
  },
  run: ${body},
});
`;

Deno.test("loadSchedules() schedules configured jobs and scheduled flows, with their settings", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "count.ts"),
      JOB_MODULE("count", "(ctx, o) => { ctx.log('counting'); return { count: o.count }; }"),
    );
    await Deno.writeTextFile(
      join(dir, "flows", "tick.flow.yaml"),
      [
        "id: tick",
        'schedule: { cron: "*/5 * * * * *", abandoned: rerun }',
        "inputs:",
        "  scheduledAt: { type: string }",
        "nodes:",
        "  - id: remember",
        "    type: state.set",
        '    with: { scope: global, key: last, value: "${{ inputs.scheduledAt }}" }',
      ].join("\n"),
    );
    await Deno.writeTextFile(
      join(dir, "flows", "manual.flow.yaml"),
      "id: manual\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    const clock = fakeClock(T0);
    await using runtime = await openRuntime({
      config: {
        stores: { main: { plugin: "memory" } },
        flows: ["./flows"],
        timezone: "Europe/Paris",
        jobs: {
          retention: { enabled: false },
          gc: { enabled: false },
          counter: {
            module: "./count.ts",
            options: { count: 3 },
            overlap: "queue",
            jitter: "2s",
          },
          disabled: { module: "./count.ts", enabled: false },
        },
      },
      cwd: dir,
      clock,
      env: {},
    });
    const logs: string[] = [];
    const schedules = await loadSchedules(runtime, {
      onLog: (id, message) => logs.push(`${id}: ${message}`),
    });
    assert.deepEqual(
      schedules.map((
        s,
      ) => [s.id, s.cron, s.timezone, s.overlap, s.missed, s.abandoned, s.jitterMs]),
      [
        ["job:counter", "30 3 * * *", "Europe/Paris", "queue", "skip", "skip", 2000],
        ["flow:tick", "*/5 * * * * *", "Europe/Paris", "skip", "skip", "rerun", 0],
      ],
    );
    const signal = new AbortController().signal;
    const started: string[] = [];
    const job = await schedules[0].run({
      scheduleId: "job:counter",
      tick: T0,
      signal,
      runnerId: "r",
      started: (id) => started.push(id),
    });
    assert.deepEqual(started, [(job as RunRecord).id], "the job's run id is reported as it starts");
    assert.equal((job as RunRecord).flowId, "job:counter");
    assert.deepEqual((job as RunRecord).outputs, { count: 3 });
    assert.deepEqual(logs, ["job:counter: counting"]);
    const flow = await schedules[1].run({
      scheduleId: "flow:tick",
      tick: T0,
      signal,
      runnerId: "r",
      started: (id) => started.push(id),
    });
    assert.equal((flow as RunRecord).status, "succeeded");
    assert.deepEqual(started[1], (flow as RunRecord).id, "the flow's run id is reported");
    assert.equal((await (await runtime.store("main")).get(["global", "last"]))?.value, tickKey(T0));
  });
});

Deno.test("loadSchedules() rejects a bad job option as a ConfigError naming the job and field", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "count.ts"), JOB_MODULE("count", "() => ({})"));
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      [
        "stores: { main: { plugin: memory } }",
        "jobs:",
        "  retention: { enabled: false }",
        "  gc: { enabled: false }",
        "  counter:",
        "    module: ./count.ts",
        "    options: { count: three }",
      ].join("\n"),
    );
    await using runtime = await openRuntime({ cwd: dir, env: {} });
    await assert.rejects(() => loadSchedules(runtime), (err) => {
      assert.ok(err instanceof ConfigError);
      // At the option's own place, as every other config problem is.
      assert.match(
        err.message,
        /^flowstate\.yaml:7:16: jobs\.counter\.options\.count: expected a number/,
      );
      assert.deepEqual(err.path, ["jobs", "counter", "options", "count"]);
      return true;
    });
    // The scheduler refuses to start on it, before anything runs.
    await assert.rejects(() => new Scheduler(runtime, { runnerId: "r" }).start(), ConfigError);
  });
});

Deno.test("loadSchedules() rejects a missing flows path and a job module that cannot load", async () => {
  await withTempDir(async (dir) => {
    await using a = await openRuntime({
      config: { stores: { m: { plugin: "memory" } }, flows: ["./nope"] },
      cwd: dir,
      env: {},
    });
    await assert.rejects(() => loadSchedules(a), /flows\[0\]: cannot read .*nope: no such file/);
    await using b = await openRuntime({
      config: {
        stores: { m: { plugin: "memory" } },
        jobs: { gc: { enabled: false }, retention: { enabled: false }, x: { module: "./x.ts" } },
      },
      cwd: dir,
      env: {},
    });
    await assert.rejects(() => loadSchedules(b), (err) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^jobs\.x\.module: Cannot load job "\.\/x\.ts"/);
      return true;
    });
  });
});
