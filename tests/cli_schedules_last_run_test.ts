/**
 * The LAST RUN of `schedules ls` and `jobs ls` (and `--json`'s `lastRun`)
 * tells the truth: a run still waiting in the queue has not run (the one
 * that did is shown, not hidden behind it); a queued run that a worker ran
 * started when the worker claimed it, not when it was enqueued; a run
 * recorded running whose process is gone reads `running?`, as in `runs ls`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import { newRunId } from "../records.ts";
import { cliOk, withCliProject, withSandbox, workOneRun } from "./_cli_sandbox.ts";

const TICK = 'id: tick\nschedule: "0 * * * *"\nnodes:\n' +
  "  - { id: say, type: log, with: { message: tick } }\n";

type Last = { id: string; status: string; startedAt: number } | null;

Deno.test("schedules ls: LAST RUN is the run that started last: not one waiting in the queue, and a queued run's start is its claim", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "tick.flow.yaml"), TICK);
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "flows: [./flows]\n");
    const lastOf = async (): Promise<Last> => {
      const listed = await run("schedules", "ls", "--json");
      assert.equal(listed.code, 0, listed.stderr);
      return JSON.parse(listed.stdout).find((r: { id: string }) => r.id === "flow:tick").lastRun;
    };
    const ran = await run("run", "flows/tick.flow.yaml", "--json");
    assert.equal(ran.code, 0, ran.stderr);
    const direct = JSON.parse(ran.stdout);

    // Queued for later: it has not run; the run that did stays the last one.
    const later = await run("enqueue", "tick", "--delay", "1h");
    assert.equal(later.code, 0, later.stderr);
    assert.equal((await lastOf())?.id, direct.id);
    assert.equal((await lastOf())?.status, "succeeded");
    const table = await run("schedules", "ls");
    assert.match(table.stdout, /^flow:tick .* succeeded \d{4}-\d\d-\d\d [\d:]+ UTC\s*$/m);

    // Queued now and run by a worker: the last run, started when the worker claimed it.
    const now = await run("enqueue", "tick");
    assert.equal(now.code, 0, now.stderr);
    const queuedId = now.stdout.trim();
    await workOneRun(dir, home);
    const runs = JSON.parse((await run("runs", "ls", "--flow", "tick", "--json")).stdout);
    const worked = runs.find((r: { id: string }) => r.id === queuedId);
    assert.equal(worked.status, "succeeded");
    assert.ok(worked.claimedAt > worked.enqueuedAt, JSON.stringify(worked));
    const last = await lastOf();
    assert.equal(last?.id, queuedId);
    assert.equal(last?.startedAt, worked.claimedAt, "its start, not its enqueue");
  });
});

Deno.test("jobs ls and schedules ls: a last run recorded running whose process is gone (no heartbeat) reads running?, as in runs ls", async () => {
  const config = "home: home\nflows: [./flows]\njobs:\n  gc: { schedule: '0 4 * * *' }\n" +
    "stores:\n  main: { plugin: sqlite, path: data/main.db }\n";
  await withCliProject(config, async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "tick.flow.yaml"), TICK);
    // What a process killed (kill -9) in the middle of a run leaves: the run recorded running,
    // its last heartbeat two minutes old.
    const at = Date.now() - 120_000;
    {
      await using rt = await openRuntime({ cwd: dir, config: join(dir, "flowstate.yaml") });
      const records = await rt.records();
      for (const flowId of ["job:gc", "tick"]) {
        await records.startRun({
          id: newRunId(at),
          flowId,
          flowVersion: "v1",
          status: "running",
          inputs: {},
          outputs: null,
          error: null,
          startedAt: at,
          endedAt: null,
          durationMs: null,
          nodes: {},
          heartbeatAt: at,
        });
      }
    }
    assert.match(await cliOk(run, "runs", "ls"), /^\w+ +tick +running\? /m);
    for (const [args, row] of [[["jobs", "ls"], "gc"], [["schedules", "ls"], "flow:tick"]]) {
      const listed = await run(...args);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, new RegExp(`^${row} .* running\\? \\d{4}-`, "m"), listed.stdout);
      assert.match(
        listed.stderr,
        /^running\?: recorded running, but its process has written no heartbeat/m,
      );
    }
    // The JSON keeps the status as recorded.
    const jobs = JSON.parse(await cliOk(run, "jobs", "ls", "--json"));
    assert.equal(jobs.find((j: { name: string }) => j.name === "gc").lastRun.status, "running");
  });
});
