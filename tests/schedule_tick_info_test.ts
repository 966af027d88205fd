/**
 * The tick that started a run reaches where runs are reported: the
 * `runs.onFailure` flow's input `run` carries the failed run's `scheduledAt`
 * (ISO 8601) and `schedule` (`null` for a run no schedule started), and a
 * maintenance job the daemon's schedule runs records its tick as a scheduled
 * flow's run does (`runs show`, text and `--json`). The daemon's scheduler
 * runs on a fake clock moved by hand; each tick's end is awaited as the
 * scheduler's `tick.end` event.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";
import { openRuntime, runJob, type RunRecord } from "../mod.ts";
import { Scheduler, type SchedulerEvent } from "../scheduler.ts";
import { fakeClock } from "../src/testing/clock.ts";
import { manualTimers } from "../src/testing/timers.ts";
import { within } from "./_deadline.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;

const CONFIG = `
stores:
  default: { plugin: sqlite, path: state.db }
flows: [./flows]
jobs:
  retention: { enabled: false }
  gc: { schedule: "0 4 * * *", timezone: UTC }
  flaky: { module: ./flaky_job.ts, schedule: "0 3 * * *", timezone: UTC }
runs:
  onFailure:
    flow: alert
`;

/** Keeps the input it is told in flow state, under the failed run's id. */
const ALERT = `
id: alert
inputs:
  run: { type: object }
nodes:
  - id: keep
    type: state.set
    with: { key: "\${{ inputs.run.id }}", value: "\${{ inputs.run }}" }
`;

/** Fails at 02:00 UTC each day, as its schedule entry `nightly`. */
const BOOM = `
id: boom
schedule:
  - { id: nightly, cron: "0 2 * * *", timezone: UTC }
nodes:
  - id: explode
    type: fail
    with: { message: kaboom }
`;

const FLAKY_JOB = `
import { defineJob } from "${MOD}";
export default defineJob({
  name: "flaky",
  description: "always fails",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  run() {
    throw new Error("the disk is full");
  },
});
`;

type TickEnd = Extract<SchedulerEvent, { type: "tick.end" }>;

const at = (hh: number, mm = 0) => Date.UTC(2026, 11, 7, hh, mm);

/**
 * The project's runtime and the daemon's scheduler on a fake clock at 01:30,
 * moved to `until`; resolves with the `tick.end` events once `ticks` ticks
 * have ended.
 */
async function runSchedules(dir: string, until: number, ticks: number): Promise<TickEnd[]> {
  const clock = fakeClock(at(1, 30));
  const timers = manualTimers(clock);
  await using runtime = await openRuntime({ config: join(dir, "flowstate.yaml"), clock, env: {} });
  const ended: TickEnd[] = [];
  const all = Promise.withResolvers<void>();
  const scheduler = new Scheduler(runtime, {
    clock,
    timers,
    runnerId: "runner-1",
    onEvent: (event) => {
      if (event.type !== "tick.end") return;
      ended.push(event);
      if (ended.length === ticks) all.resolve();
    },
  });
  await scheduler.start();
  await timers.advanceTo(until);
  await within(all.promise, "the all event");
  const stopping = scheduler.stop({ graceMs: 0 });
  await timers.advance(0);
  await stopping;
  return ended;
}

async function writeProject(dir: string): Promise<void> {
  await Deno.mkdir(join(dir, "flows"), { recursive: true });
  await Deno.writeTextFile(join(dir, "flows", "alert.flow.yaml"), ALERT);
  await Deno.writeTextFile(join(dir, "flows", "boom.flow.yaml"), BOOM);
  await Deno.writeTextFile(join(dir, "flaky_job.ts"), FLAKY_JOB);
}

Deno.test("onFailure: a scheduled flow's failure tells the handler its tick (scheduledAt ISO 8601, schedule); a run by hand tells null", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await writeProject(dir);
    const ended = await runSchedules(dir, at(2, 1), 1);
    assert.deepEqual(ended.map((e) => [e.scheduleId, e.status]), [
      ["flow:boom#nightly", "failed"],
    ]);
    const last = JSON.parse(
      await cliOk(run, "state", "get", ended[0].runId!, "--flow", "alert"),
    );
    assert.equal(last.flow, "boom");
    assert.equal(last.source, "schedule");
    assert.equal(last.scheduledAt, "2026-12-07T02:00:00.000Z");
    assert.equal(last.schedule, "flow:boom#nightly");

    // Not started by a schedule: both are there, null.
    const byHand = await run("run", "flows/boom.flow.yaml", "--json");
    assert.equal(byHand.code, 1, byHand.stderr);
    const { id } = JSON.parse(byHand.stdout) as RunRecord;
    const manual = JSON.parse(await cliOk(run, "state", "get", id, "--flow", "alert"));
    assert.equal(manual.source, "cli");
    assert.equal(manual.scheduledAt, null);
    assert.equal(manual.schedule, null);
  });
});

Deno.test("daemon scheduler: a scheduled job's run records its tick (runs show, --json); a failing one tells onFailure its schedule job:<name>", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await writeProject(dir);
    const ended = await runSchedules(dir, at(4, 1), 3);
    const byId = new Map(ended.map((e) => [e.scheduleId, e]));
    const gc = byId.get("job:gc");
    assert.ok(gc !== undefined && gc.runId !== null, JSON.stringify(ended));
    assert.equal(gc.status, "succeeded", gc.error ?? "");

    const shown = await cliOk(run, "runs", "show", gc.runId);
    assert.match(shown, /^schedule: job:gc, tick of 2026-12-07 04:00:00/m);
    const json = JSON.parse(await cliOk(run, "runs", "show", gc.runId, "--json")) as {
      run: RunRecord;
    };
    assert.equal(json.run.flowId, "job:gc");
    assert.deepEqual([json.run.scheduledAt, json.run.schedule], [at(4), "job:gc"]);

    // The failing job's report carries its tick, as a flow's does.
    const flaky = byId.get("job:flaky");
    assert.ok(flaky !== undefined && flaky.runId !== null, JSON.stringify(ended));
    assert.equal(flaky.status, "failed");
    const last = JSON.parse(await cliOk(run, "state", "get", flaky.runId, "--flow", "alert"));
    assert.equal(last.id, flaky.runId);
    assert.equal(last.job, "flaky");
    assert.equal(last.scheduledAt, "2026-12-07T03:00:00.000Z");
    assert.equal(last.schedule, "job:flaky");

    // A job run by hand records no tick.
    const byHand = await run("jobs", "run", "gc", "--json");
    assert.equal(byHand.code, 0, byHand.stderr);
    const manual = JSON.parse(byHand.stdout) as RunRecord;
    assert.equal(manual.scheduledAt, undefined);
    assert.doesNotMatch(await cliOk(run, "runs", "show", manual.id), /^schedule:/m);
  });
});

Deno.test("runJob: option scheduled is recorded as the run's tick; a malformed one is a TypeError and nothing is recorded", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const run = await runJob(rt, "gc", { scheduled: { at: at(4), schedule: "job:gc" } });
  assert.deepEqual([run.status, run.scheduledAt, run.schedule], ["succeeded", at(4), "job:gc"]);
  await assert.rejects(
    () => runJob(rt, "gc", { scheduled: { at: Number.NaN, schedule: "job:gc" } }),
    (err: Error) =>
      err instanceof TypeError &&
      /^Cannot run job: option scheduled must be \{ at: <ms since the epoch>, schedule: "<schedule id>" \}/
        .test(err.message),
  );
  const records = await rt.records();
  assert.deepEqual((await records.listRuns({ flowId: "job:gc" })).runs.map((r) => r.id), [run.id]);
});
