/**
 * The listings of the CLI count archived runs: once the archive job moved a
 * flow's or a job's runs to `<home>/archive/`, `flows ls`, `jobs ls` and
 * `schedules ls` still show its last run, marked archived (rather than no
 * run at all), and `metrics` still counts them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = "home: home\nflows: [./flows]\nstores:\n" +
  "  main: { plugin: sqlite, path: data/main.db }\n";

const TICK = 'id: tick\nschedule: "0 * * * *"\nnodes:\n' +
  "  - { id: say, type: log, with: { message: tick } }\n";

Deno.test("flowstate flows ls, jobs ls and schedules ls show a last run that was archived; metrics count it", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "tick.flow.yaml"), TICK);
    const tick = JSON.parse(await cliOk(run, "run", "flows/tick.flow.yaml", "--json"));
    const gc = JSON.parse(await cliOk(run, "jobs", "run", "gc", "--json", "--quiet"));
    const archive = JSON.parse(
      await cliOk(run, "jobs", "run", "archive", "--option", "olderThan=0", "--json", "--quiet"),
    );
    assert.equal(archive.outputs.archived, 2, JSON.stringify(archive.outputs));
    assert.deepEqual(
      JSON.parse(await cliOk(run, "runs", "ls", "--json")).map((r: { flowId: string }) => r.flowId),
      ["job:archive"],
      "nothing recorded but the archive job's run",
    );

    type Flow = {
      id: string;
      lastRunAt: number | null;
      lastStatus: string | null;
      lastRunArchive: string | null;
    };
    const flows: Flow[] = JSON.parse(await cliOk(run, "flows", "ls", "--json"));
    const flow = flows.find((f) => f.id === "tick");
    assert.equal(flow?.lastRunAt, tick.startedAt);
    assert.equal(flow?.lastStatus, "succeeded");
    assert.match(flow?.lastRunArchive ?? "", /^runs-\d{4}-\d{2}\.ndjson\.gz$/);
    assert.match(await cliOk(run, "flows", "ls"), /^tick .* succeeded \(archived\)\s*$/m);

    type Last = { id: string; status: string; archived?: true; archive?: string } | null;
    const jobs: { name: string; lastRun: Last }[] = JSON.parse(
      await cliOk(run, "jobs", "ls", "--json"),
    );
    const gcLast = jobs.find((j) => j.name === "gc")?.lastRun;
    assert.equal(gcLast?.id, gc.id);
    assert.equal(gcLast?.archived, true);
    assert.equal(gcLast?.archive, flow?.lastRunArchive);
    assert.equal(jobs.find((j) => j.name === "archive")?.lastRun?.archived, undefined);
    assert.match(
      await cliOk(run, "jobs", "ls"),
      /^gc .* succeeded \d{4}-\d\d-\d\d [\d:]+ UTC \(archived\)/m,
    );

    const schedules: { id: string; lastRun: Last }[] = JSON.parse(
      await cliOk(run, "schedules", "ls", "--json"),
    );
    const tickLast = schedules.find((s) => s.id === "flow:tick")?.lastRun;
    assert.equal(tickLast?.id, tick.id);
    assert.equal(tickLast?.archived, true);
    assert.match(
      await cliOk(run, "schedules", "ls"),
      /^flow:tick .* succeeded .* UTC \(archived\)$/m,
    );

    // Metrics count every finished run, archived ones too.
    const metrics = JSON.parse(await cliOk(run, "metrics", "tick", "--json"));
    assert.equal(metrics[0].count, 1);

    // A run recorded after is the last run again, not marked.
    const again = JSON.parse(await cliOk(run, "run", "flows/tick.flow.yaml", "--json"));
    const now: Flow[] = JSON.parse(await cliOk(run, "flows", "ls", "--json"));
    assert.deepEqual(
      now.filter((f) => f.id === "tick").map((f) => [f.lastRunAt, f.lastRunArchive]),
      [[again.startedAt, null]],
    );

    // A damaged archive file fails no listing: its runs are left out, and a warning says so.
    const file = join(dir, "home", "archive", flow!.lastRunArchive!);
    const bytes = await Deno.readFile(file);
    await Deno.writeFile(file, bytes.slice(0, bytes.length >> 1));
    for (const args of [["jobs", "ls"], ["flows", "ls"], ["schedules", "ls"]]) {
      const listed = await run(...args, "--json");
      assert.equal(listed.code, 0, `${args.join(" ")}: ${listed.stderr}`);
      assert.match(
        listed.stderr,
        /^warning: Cannot read archived runs: the archive file .*\.ndjson\.gz is damaged: .* \(the (flows and )?last runs listed leave its runs out\)$/m,
        args.join(" "),
      );
    }
    const damaged: { name: string; lastRun: Last }[] = JSON.parse(
      await cliOk(run, "jobs", "ls", "--json"),
    );
    assert.equal(damaged.find((j) => j.name === "gc")?.lastRun, null);
  });
});
