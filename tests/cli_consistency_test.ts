/**
 * The CLI, consistently (issue 10): the same options, output rules and
 * records across commands, each checked through a `flowstate` subprocess.
 *
 * - `--quiet` is global: accepted by every command, before or after it;
 * - `--json` on `validate`, on lookups that find nothing (`null`, exit 1) and
 *   on `daemon` (one JSON object a line);
 * - failures on stderr start with `error:`;
 * - `FLOWSTATE_CONFIG` names the config when `--config` does not;
 * - times in tables carry their zone (the config's `timezone`, default UTC);
 * - metrics durations are rounded;
 * - `backup`, `restore`, `migrate` print their result once and are recorded
 *   as job runs;
 * - `schedules ls` lists jobs and flows with their next tick.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openStore } from "../src/plugin.ts";
import { cliCommand, type Result, withSandbox } from "./_cli_sandbox.ts";
import { streamLines } from "./fixtures/daemon_process.ts";
import { exitOf } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const COUNTER = join(ROOT, "examples", "counter.flow.yaml");

function ok(r: Result, what: string): Result {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${r.stderr}`);
  return r;
}

Deno.test("--quiet is global: backup, restore and migrate take it before or after the command, and print no progress", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: main.db }\n  copy: { plugin: sqlite, path: copy.db }\n" +
        "  runs: { plugin: sqlite, path: runs.db }\nrecords: runs\n" +
        "scopes: { global: main, flow: main, node: main }\n",
    );
    await Deno.mkdir(join(dir, "migrations"));
    await Deno.writeTextFile(
      join(dir, "migrations", "0001_one.js"),
      'export async function up(ctx) { await ctx.store.set(["m"], 1); }\n',
    );
    ok(await run("state", "set", "k", "1"), "state set");
    const cases: string[][] = [
      ["--quiet", "backup", "--out", "a.fsbackup"],
      ["backup", "--out", "b.fsbackup", "-q"],
      ["restore", "a.fsbackup", "--store", "copy", "--quiet"],
      ["-q", "migrate", "store", "--from", "main", "--to", "copy", "--force"],
      ["migrate", "data", "up", "--quiet"],
      ["run", COUNTER, "-q"],
      ["-q", "run", COUNTER],
    ];
    for (const args of cases) {
      const r = ok(await run(...args), args.join(" "));
      assert.equal(r.stderr, "", `${args.join(" ")} printed on stderr:\n${r.stderr}`);
      assert.notEqual(r.stdout, "", `${args.join(" ")} still prints its result`);
    }
    const help = await run("backup", "--help");
    assert.match(help.stdout, /-q, --quiet/);
  });
});

Deno.test("backup, restore, migrate store and migrate data print their summary once and are recorded as job runs", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: main.db }\n  copy: { plugin: sqlite, path: copy.db }\n" +
        "  runs: { plugin: sqlite, path: runs.db }\nrecords: runs\n" +
        "scopes: { global: main, flow: main, node: main }\n",
    );
    await Deno.mkdir(join(dir, "migrations"));
    await Deno.writeTextFile(
      join(dir, "migrations", "0001_one.js"),
      'export async function up(ctx) { await ctx.store.set(["m"], 1); }\n',
    );
    ok(await run("state", "set", "k", "1"), "state set");

    const backup = ok(await run("backup", "--out", "main.fsbackup"), "backup");
    assert.match(backup.stdout, /^main: 1 entry → .*main\.fsbackup/);
    assert.equal(backup.stdout.trim().split("\n").length, 1);
    assert.doesNotMatch(backup.stderr, /backed up/, "the summary is printed once, on stdout");

    const move = ok(await run("migrate", "store", "--from", "main", "--to", "copy"), "move");
    assert.match(move.stdout, /^Moved 1 entries from "main"/);
    assert.doesNotMatch(move.stderr, /Moved|verified them/, "the summary is printed once");

    const restore = ok(
      await run("restore", "main.fsbackup", "--store", "copy", "--force", "--json"),
      "restore",
    );
    const migrate = ok(await run("migrate", "data", "up", "--json"), "migrate data up");

    const ids = {
      backup: JSON.parse(
        ok(await run("backup", "--out", "again.fsbackup", "--json"), "backup --json").stdout,
      ).runId,
      restore: JSON.parse(restore.stdout).runId,
      "migrate": JSON.parse(migrate.stdout).runId,
    };
    for (const [job, runId] of Object.entries(ids)) {
      assert.match(runId, /^[0-9a-z]{20}$/, job);
      const runs = JSON.parse(
        ok(await run("runs", "ls", "--flow", `job:${job}`, "--json"), "runs ls").stdout,
      ) as { id: string; status: string }[];
      assert.ok(runs.some((r) => r.id === runId && r.status === "succeeded"), job);
    }
    const moves = JSON.parse(
      ok(await run("runs", "ls", "--flow", "job:migrate-store", "--json"), "runs ls").stdout,
    );
    assert.equal(moves.length, 1);
    assert.equal(moves[0].status, "succeeded");
    assert.equal(
      (await run("runs", "ls", "--flow", "job:backup", "--json")).stdout.match(
        /"id"/g,
      )?.length,
      2,
    );

    // A failure is a failed run and an `error:` line.
    const exists = await run("backup", "--out", "main.fsbackup");
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /^error: Cannot back up store "main" to .*: the file exists/m);
    const failed = JSON.parse(
      (await run("runs", "ls", "--flow", "job:backup", "--status", "failed", "--json")).stdout,
    );
    assert.equal(failed.length, 1);
  });
});

Deno.test("FLOWSTATE_CONFIG names the config: --config wins over it, and it over ./flowstate.yaml", async () => {
  await withSandbox(async ({ dir, run, runWith }) => {
    const config = (store: string) => `stores:\n  ${store}: { plugin: memory }\n`;
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), config("fromcwd"));
    await Deno.writeTextFile(join(dir, "env.yaml"), config("fromenv"));
    await Deno.writeTextFile(join(dir, "flag.yaml"), config("fromflag"));
    const names = async (r: Promise<Result>) =>
      (JSON.parse(ok(await r, "stores").stdout) as { name: string }[]).map((s) => s.name);
    const env = { FLOWSTATE_CONFIG: "env.yaml" };
    assert.deepEqual(await names(run("stores", "--json")), ["fromcwd"]);
    assert.deepEqual(await names(runWith(env, "stores", "--json")), ["fromenv"]);
    assert.deepEqual(await names(runWith(env, "stores", "--json", "-c", "flag.yaml")), [
      "fromflag",
    ]);
    assert.deepEqual(await names(runWith({ FLOWSTATE_CONFIG: "" }, "stores", "--json")), [
      "fromcwd",
    ]);
    const missing = await runWith({ FLOWSTATE_CONFIG: "nope.yaml" }, "stores");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: Cannot read config file nope\.yaml/);
    assert.match((await run("--help")).stdout, /\$FLOWSTATE_CONFIG/);
  });
});

Deno.test("validate --json lists every file with ok and its problems (file, line, column, path, message)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "bad.flow.yaml"),
      "id: bad\nnodes:\n  - id: a\n    type: nope\n",
    );
    // A copy in the sandbox: the repository's own folder may hold a flowstate.yaml of the
    // reader's (docs/serving.md's example writes one), which a flow there would warn about.
    await Deno.copyFile(COUNTER, join(dir, "counter.flow.yaml"));
    const r = await run("validate", "counter.flow.yaml", "bad.flow.yaml", "--json");
    assert.equal(r.code, 2);
    assert.equal(r.stderr, "");
    const results = JSON.parse(r.stdout);
    assert.deepEqual(results[0], {
      file: "counter.flow.yaml",
      ok: true,
      problems: [],
      nodes: [
        {
          id: "bump",
          type: "state.increment",
          runs: "builtin",
          permissions: null,
          withEnv: [],
          stateEnv: [],
          stateEnvWriters: [],
          subFlows: null,
        },
        {
          id: "report",
          type: "log",
          runs: "builtin",
          permissions: null,
          withEnv: [],
          stateEnv: [],
          stateEnvWriters: [],
          subFlows: null,
        },
      ],
      env: [],
      warnings: [],
    });
    assert.equal(results[1].file, "bad.flow.yaml");
    assert.equal(results[1].ok, false);
    assert.equal(results[1].problems.length, 1);
    const { message, ...where } = results[1].problems[0];
    assert.deepEqual(where, { file: "bad.flow.yaml", line: 4, column: 11, path: "nodes[0].type" });
    assert.match(message, /unknown node type "nope"/);
    // Without --json: the same problem as an `error:` line.
    const text = await run("validate", "bad.flow.yaml");
    assert.match(text.stderr, /^error: bad\.flow\.yaml:4:11: nodes\[0\]\.type: unknown node type/);
  });
});

Deno.test("a lookup that finds nothing prints null with --json, an error: line, and exits 1", async () => {
  await withSandbox(async ({ run }) => {
    ok(await run("run", COUNTER, "--quiet"), "run"); // a records store exists
    const lookups = [
      ["state", "get", "nope"],
      ["runs", "show", "0000000000zzzzzzzzzz"],
      ["runs", "show", "latest"],
      ["flows", "versions", "nope"],
      ["metrics", "nope"],
    ];
    for (const args of lookups) {
      const json = await run(...args, "--json");
      assert.equal(json.code, 1, args.join(" "));
      assert.equal(json.stdout, "null\n", args.join(" "));
      assert.match(json.stderr, /^error: /, args.join(" "));
      const text = await run(...args);
      assert.equal(text.code, 1, args.join(" "));
      assert.equal(text.stdout, "", args.join(" "));
      assert.match(text.stderr, /^error: /, args.join(" "));
    }
    const rm = await run("state", "rm", "nope");
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /^error: Key nope not found/);
  });
});

Deno.test("runs ls --flow with an id no flow file or run has says so, with a did-you-mean", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.copyFile(
      join(ROOT, "examples", "greet.flow.yaml"),
      join(dir, "flows", "greet.flow.yaml"),
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "flows: [./flows]\njobs:\n  nightly: { module: ./nightly_job.ts }\n",
    );
    // Before anything is recorded (no records store yet), the flow files and jobs are known.
    const fresh = await run("runs", "ls", "--flow", "gret");
    assert.equal(fresh.code, 1, fresh.stderr);
    assert.match(
      fresh.stderr,
      /^error: Flow "gret" has no recorded runs \(did you mean "greet"\?\)/m,
    );
    const freshJob = await run("runs", "ls", "--flow", "job:retenton", "--json");
    assert.equal(freshJob.code, 1, freshJob.stderr);
    assert.equal(freshJob.stdout, "[]\n");
    assert.match(
      freshJob.stderr,
      /^error: Job "retenton" has no recorded runs \(did you mean "job:retention"\?\)/m,
    );
    for (const known of ["greet", "job:retention", "job:nightly"]) {
      const none = await run("runs", "ls", "--flow", known);
      assert.equal(none.code, 0, `${known}: ${none.stderr}`);
      assert.match(none.stderr, /^No store yet at /, known);
    }
    ok(await run("run", COUNTER, "--quiet"), "run");
    const typo = await run("runs", "ls", "--flow", "countr");
    assert.equal(typo.code, 1, typo.stderr);
    assert.equal(typo.stdout, "");
    assert.equal(
      typo.stderr,
      'error: Flow "countr" has no recorded runs (did you mean "counter"?); no flow file or ' +
        "recorded run has that id; the known flows are counter, greet\n",
    );
    const json = await run("runs", "ls", "--flow", "gret", "--json");
    assert.equal(json.code, 1);
    assert.equal(json.stdout, "[]\n", "still a list");
    assert.match(
      json.stderr,
      /^error: Flow "gret" has no recorded runs \(did you mean "greet"\?\)/,
    );
    // A flow that a flow file declares but that has not run yet: no runs, no error.
    const declared = await run("runs", "ls", "--flow", "greet");
    assert.equal(declared.code, 0, declared.stderr);
    assert.equal(declared.stderr, "No runs match\n");
    // A recorded flow whose runs the other filters leave out: no error either.
    const filtered = await run("runs", "ls", "--flow", "counter", "--status", "failed");
    assert.equal(filtered.code, 0, filtered.stderr);
    assert.equal(filtered.stderr, "No runs match\n");
    // A job's runs (flow id job:<name>) before the job has run: no error, built-in or configured.
    for (const name of ["retention", "nightly"]) {
      const job = await run("runs", "ls", "--flow", `job:${name}`);
      assert.equal(job.code, 0, job.stderr);
      assert.equal(job.stderr, "No runs match\n");
    }
    // A misspelt job is named as a misspelt flow is.
    const jobTypo = await run("runs", "ls", "--flow", "job:nigthly");
    assert.equal(jobTypo.code, 1, jobTypo.stderr);
    assert.equal(
      jobTypo.stderr,
      'error: Job "nigthly" has no recorded runs (did you mean "job:nightly"?): no built-in or ' +
        "configured job has that name; give --flow job:<name> with one of job:retention, job:gc, " +
        "job:archive, job:backup, job:restore, job:migrate, job:migrate-store, job:rekey, " +
        "job:build-indexes, job:nightly\n",
    );
  });
});

Deno.test("metrics are no lookup before any run, and round durations to 0.1 ms", async () => {
  await withSandbox(async ({ run }) => {
    const before = await run("metrics", "counter", "--json");
    assert.equal(before.code, 1);
    assert.equal(before.stdout, "null\n");
    for (let i = 0; i < 3; i++) ok(await run("run", COUNTER, "--quiet"), "run");
    const [row] = JSON.parse(ok(await run("metrics", "--json"), "metrics").stdout);
    for (const field of ["p50DurationMs", "p95DurationMs", "meanDurationMs"]) {
      const value = row[field];
      assert.equal(typeof value, "number", field);
      assert.equal(Math.round(value * 10) / 10, value, `${field} is rounded: ${value}`);
    }
  });
});

Deno.test("times in tables carry their zone: the config's timezone, else UTC, the same in every command", async () => {
  await withSandbox(async ({ dir, run }) => {
    ok(await run("run", COUNTER, "--quiet"), "run");
    const [summary] = JSON.parse(ok(await run("runs", "ls", "--json"), "runs ls").stdout);
    const utc = ok(await run("runs", "ls"), "runs ls").stdout;
    assert.match(utc, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    const shown = new Date(summary.startedAt).toISOString().slice(0, 19).replace("T", " ");
    assert.ok(utc.includes(`${shown} UTC`), utc);

    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "timezone: Asia/Kolkata\n");
    // +05:30, all year round.
    const local = new Date(summary.startedAt + 5.5 * 3600_000).toISOString().slice(0, 19)
      .replace("T", " ") + " +05:30";
    assert.ok(ok(await run("runs", "ls"), "runs ls").stdout.includes(local));
    assert.ok(ok(await run("runs", "show", summary.id), "runs show").stdout.includes(local));
    assert.ok(ok(await run("flows", "ls"), "flows ls").stdout.includes(local));
    assert.match(ok(await run("jobs", "ls"), "jobs ls").stdout, / \+05:30/);
  });
});

Deno.test("schedules ls lists scheduled jobs and flows with their next tick in their zone and last run", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flows", "tick.flow.yaml"),
      'id: tick\nschedule: { cron: "0 9 * * *", timezone: America/New_York }\n' +
        "nodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      'timezone: Asia/Kolkata\nflows: [./flows]\njobs:\n  backup: { schedule: "0 3 * * *" }\n' +
        "  gc: { enabled: false }\n",
    );
    ok(await run("run", "flows/tick.flow.yaml", "--quiet"), "run");
    const rows = JSON.parse(ok(await run("schedules", "ls", "--json"), "schedules ls").stdout);
    const ids = rows.map((r: { id: string }) => r.id);
    assert.deepEqual([...ids].sort(), ["flow:tick", "job:backup", "job:retention"]);
    assert.equal(ids.at(-1), "flow:tick", "jobs first, then flows, as the daemon starts them");
    const tick = rows.find((r: { id: string }) => r.id === "flow:tick");
    assert.equal(tick.kind, "flow");
    assert.equal(tick.timezone, "America/New_York");
    assert.equal(tick.lastRun.status, "succeeded");
    const next = new Date(tick.nextRun);
    assert.ok(tick.nextRun > Date.now() - 60_000 && tick.nextRun <= Date.now() + 86_400_000);
    // 09:00 in New York is 13:00 or 14:00 UTC.
    assert.ok(
      [13, 14].includes(next.getUTCHours()) && next.getUTCMinutes() === 0,
      next.toISOString(),
    );
    const backup = rows.find((r: { id: string }) => r.id === "job:backup");
    assert.equal(backup.kind, "job");
    assert.equal(backup.lastRun, null);
    // 03:00 in Kolkata is 21:30 UTC.
    assert.equal(new Date(backup.nextRun).toISOString().slice(11, 16), "21:30");
    const table = ok(await run("schedules", "ls"), "schedules ls").stdout;
    assert.match(table, /^ID\s+SCHEDULE\s+TIMEZONE\s+NEXT RUN\s+LAST RUN$/m);
    assert.match(
      table,
      /^job:backup\s+0 3 \* \* \*\s+Asia\/(Kolkata|Calcutta)\s+\d{4}-\d\d-\d\d 03:00:00 \+05:30\s+-$/m,
    );
    assert.match(table, /^flow:tick\s+0 9 \* \* \*\s+America\/New_York\s+.*\+05:30\s+succeeded /m);
  });
});

Deno.test("daemon --json prints one JSON object a line, from start to stop", async () => {
  await withSandbox(async ({ dir, home }) => {
    await Deno.writeTextFile(
      join(dir, "tick.flow.yaml"),
      'id: tick\nschedule: "* * * * * *"\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n',
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "flows: [./tick.flow.yaml]\njobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
    );
    const child = cliCommand(dir, ["daemon", "--json"], { home }).spawn();
    const stdout = streamLines(child.stdout);
    const stderr = new Response(child.stderr).text();
    await stdout.next(/"type":"tick\.end"/);
    child.kill("SIGTERM");
    const status = await exitOf(child);
    await stdout.done;
    assert.equal(status.code, 0, await stderr);
    const events = stdout.lines.map((line) => JSON.parse(line));
    for (const e of events) {
      assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(Object.keys(e)[0], "time");
    }
    const types = events.map((e) => e.type);
    assert.equal(types[0], "start");
    assert.deepEqual(events[0].schedules.map((s: { id: string }) => s.id), ["flow:tick"]);
    const end = events.find((e) => e.type === "tick.end");
    assert.equal(end.scheduleId, "flow:tick");
    assert.equal(end.status, "succeeded");
    assert.equal(end.tickAt, new Date(end.tick).toISOString());
    assert.ok(types.includes("signal") && types.at(-1) === "stop", types.join(", "));
  });
});

Deno.test("state ls --json writes all of a large store to a pipe", async () => {
  await withSandbox(async ({ home, run }) => {
    await Deno.mkdir(home, { recursive: true });
    {
      await using store = await openStore({ plugin: "sqlite", path: join(home, "state.db") }, {
        name: "default",
      });
      const value = "x".repeat(2000);
      for (let i = 0; i < 300; i += 50) {
        let op = store.atomic();
        for (let j = i; j < i + 50; j++) op = op.set(["big", String(j).padStart(3, "0")], value);
        assert.ok((await op.commit()).ok);
      }
    }
    const r = ok(await run("state", "ls", "--json"), "state ls --json");
    const entries = JSON.parse(r.stdout);
    assert.equal(entries.length, 300);
    assert.deepEqual(entries.at(-1).key, ["big", "299"]);
  });
});
