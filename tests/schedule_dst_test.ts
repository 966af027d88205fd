/**
 * Schedules across daylight-saving changes, as `flowstate validate` tells
 * them: a schedule that would not run at all on a spring-forward day is
 * warned about (with the day, the gap and what to write instead), and a
 * time zone typo in a flow's `schedule:` names the zone it is near. (How the
 * ticks fall across the changes: src/cron_test.ts and the scheduler's test.)
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ProjectCli, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = "stores:\n  default: { plugin: sqlite, path: state.db }\nflows: [./flows]\n";

function flow(schedule: string[]): string {
  return [
    "id: nightly",
    "schedule:",
    ...schedule.map((entry) => `  - ${entry}`),
    "nodes:",
    "  - { id: x, type: log, with: { message: hi } }",
    "",
  ].join("\n");
}

/** A project with `config` and flows/nightly.flow.yaml scheduled on `schedule`'s entries. */
async function withNightly(
  config: string,
  schedule: string[],
  fn: (run: ProjectCli) => Promise<void>,
): Promise<void> {
  await withCliProject(config, async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "nightly.flow.yaml"), flow(schedule));
    await fn(run);
  });
}

Deno.test("validate: a schedule the spring-forward gap empties for a whole day is warned about, saying the day and what to write instead", async () => {
  await withNightly(CONFIG + "timezone: America/New_York\n", [
    '{ id: every-quarter, cron: "*/15 2 * * *", timezone: Europe/Paris }',
    '{ id: listed, cron: "0,15,30,45 2 * * *", timezone: Europe/Paris }',
    '{ id: fixed, cron: "30 2 * * *", timezone: Europe/Paris }',
    '{ id: hourly, cron: "0 * * * *", timezone: Europe/Paris }',
    '{ id: half-hour-gap, cron: "0-20/10 2 * * *", timezone: Australia/Lord_Howe }',
    '{ id: after-half-hour-gap, cron: "*/10 2 * * *", timezone: Australia/Lord_Howe }',
    '{ id: utc, cron: "*/15 2 * * *", timezone: UTC }',
    '{ id: config-zone, cron: "*/5 2 * * *" }',
  ], async (run) => {
    const result = await run("validate", "flows/nightly.flow.yaml");
    assert.equal(result.code, 0, result.stderr);
    const warnings = result.stderr.trim().split("\n");
    const expected = [
      /^warning: flows\/nightly\.flow\.yaml: schedule\[0\]: cron expression "\*\/15 2 \* \* \*" does not run at all on \d{4}-03-\d\d in Europe\/Paris: the clocks skip from 02:00 to 03:00 that night, and a schedule with \* or a step in its second, minute or hour field skips the times that do not exist; list its times without \* or a step instead \(as "0,30 2 \* \* \*"\): a time the clocks skip then runs once just after the gap; or choose times the clocks do not skip$/,
      /^warning: flows\/nightly\.flow\.yaml: schedule\[4\]: cron expression "0-20\/10 2 \* \* \*" does not run at all on \d{4}-10-\d\d in Australia\/Lord_Howe: the clocks skip from 02:00 to 02:30 that night/,
      // Without its own timezone: the config's.
      /^warning: flows\/nightly\.flow\.yaml: schedule\[7\]: cron expression "\*\/5 2 \* \* \*" does not run at all on \d{4}-03-\d\d in America\/New_York/,
    ];
    assert.equal(warnings.length, expected.length, result.stderr);
    expected.forEach((pattern, i) => assert.match(warnings[i], pattern));
  });
});

Deno.test("validate: a time zone typo in a flow's schedule names the zone it is near, as in flowstate.yaml", async () => {
  await withNightly(CONFIG, ['{ cron: "0 2 * * *", timezone: Europe/Pari }'], async (run) => {
    const result = await run("validate", "flows/nightly.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    assert.equal(
      result.stderr.trim(),
      'error: flows/nightly.flow.yaml:3:36: schedule[0].timezone: unknown time zone "Europe/Pari" (did you mean "Europe/Paris"?); use an IANA name like "Europe/Paris", "America/New_York" or "UTC"',
    );
  });
});

Deno.test("schedules ls: a job or flow schedule the spring-forward gap empties for a whole day is a warning line; the listing is unchanged, exit 0", async () => {
  const config = CONFIG +
    'timezone: Europe/Paris\njobs:\n  retention: { schedule: "*/10 2 * * *" }\n' +
    "  gc: { enabled: false }\n";
  await withNightly(config, [
    '{ id: quarter, cron: "*/15 2 * * *", timezone: America/New_York }',
    '{ id: fixed, cron: "30 2 * * *" }',
  ], async (run) => {
    const result = await run("schedules", "ls");
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      result.stdout.trim().split("\n").map((line) => line.split(/\s+/)[0]),
      ["ID", "job:retention", "flow:nightly#quarter", "flow:nightly#fixed"],
    );
    // (The first line says that nothing has run yet: no store.)
    const warnings = result.stderr.trim().split("\n").filter((l) => l.startsWith("warning:"));
    assert.equal(warnings.length, 2, result.stderr);
    assert.match(
      warnings[0],
      /^warning: job:retention: cron expression "\*\/10 2 \* \* \*" does not run at all on \d{4}-03-\d\d in Europe\/Paris: the clocks skip from 02:00 to 03:00 that night/,
    );
    assert.match(
      warnings[1],
      /^warning: flow:nightly#quarter: cron expression "\*\/15 2 \* \* \*" does not run at all on \d{4}-03-\d\d in America\/New_York/,
    );
  });
});
