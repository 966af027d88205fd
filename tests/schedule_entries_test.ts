/**
 * A flow's `schedule:` as a list of entries, each with its own inputs and
 * `id`: `flowstate validate` refuses what would fail at every tick (a
 * required input no schedule gives, a bad input value, two entries with one
 * id), `schedules ls` lists each entry with its inputs, and the daemon's
 * scheduler runs each entry with its inputs, the run reading its tick's time
 * as `run.scheduledAt` (a late or catch-up run too), each tick of each entry
 * once however many runners share the store, following edits of the file.
 * Time is a fake clock moved by hand.
 */
import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { join } from "node:path";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";
import { withDaemonProject, within } from "./fixtures/daemon_process.ts";
import { openRuntime, type Runtime } from "../mod.ts";
import { Scheduler, type SchedulerEvent } from "../scheduler.ts";
import { type FakeClock, fakeClock } from "../src/testing/clock.ts";
import { type ManualTimers, manualTimers } from "../src/testing/timers.ts";
import type { RunRecord } from "../src/records/types.ts";
import { exitOf, hangSignal } from "./_deadline.ts";

const CONFIG = "stores:\n  default: { plugin: sqlite, path: state.db }\nflows: [./flows]\n" +
  "jobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n";

/** A flow `backup` with a required input `db`, whose outputs say what its run saw. */
function backupFlow(schedule: string): string {
  return [
    "id: backup",
    "inputs:",
    "  db: { type: string, enum: [a, b, c] }",
    "  keep: { type: number, default: 7 }",
    schedule,
    "nodes:",
    "  - id: day",
    "    type: transform",
    "    with: { value: \"${{ formatDate(run.scheduledAt, 'yyyy-MM-dd HH:mm', 'Europe/Paris') }}\" }",
    "outputs:",
    '  db: "${{ inputs.db }}"',
    '  keep: "${{ inputs.keep }}"',
    '  at: "${{ run.scheduledAt }}"',
    '  schedule: "${{ run.schedule }}"',
    '  day: "${{ nodes.day.output }}"',
    "",
  ].join("\n");
}

const TWO_ENTRIES = [
  "schedule:",
  '  - { id: a, cron: "0 2 * * *", timezone: Europe/Paris, inputs: { db: a } }',
  '  - { id: b, cron: "0 3 * * *", timezone: Europe/Paris, inputs: { db: b, keep: 30 } }',
].join("\n");

// ---------------------------------------------------------------------------
// flowstate validate

Deno.test("validate: a required input that the schedule does not give is an error at the schedule, saying what to add", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flows", "backup.flow.yaml"),
      backupFlow('schedule: "0 2 * * *"'),
    );
    const result = await run("validate", "flows/backup.flow.yaml");
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(
      result.stderr,
      /flows\/backup\.flow\.yaml:5:11: schedule: the flow's input db is required \(no default\) but this schedule gives no value, so each of its runs would fail; add inputs: \{ db: … \} to the schedule \(written as \{ cron: "0 2 \* \* \*", inputs: \{ db: … \} \}\), or a default: under inputs\.db/,
    );

    // Given by the schedule: valid.
    await Deno.writeTextFile(
      join(dir, "flows", "backup.flow.yaml"),
      backupFlow('schedule: { cron: "0 2 * * *", inputs: { db: a } }'),
    );
    assert.match(await cliOk(run, "validate", "flows/backup.flow.yaml"), /^ok /);
    // A list whose every entry gives it: valid too.
    await Deno.writeTextFile(join(dir, "flows", "backup.flow.yaml"), backupFlow(TWO_ENTRIES));
    assert.match(await cliOk(run, "validate", "flows/backup.flow.yaml"), /^ok /);

    // The input the scheduler gives the tick's time must take it.
    await Deno.writeTextFile(
      join(dir, "flows", "tick.flow.yaml"),
      'id: tick\ninputs: { scheduledAt: { type: boolean } }\nschedule: "@daily"\n' +
        "nodes: [{ id: a, type: log, with: { message: hi } }]\n",
    );
    const tick = await run("validate", "flows/tick.flow.yaml");
    assert.equal(tick.code, 2, tick.stdout + tick.stderr);
    assert.match(
      tick.stderr,
      /flows\/tick\.flow\.yaml:2:32: inputs\.scheduledAt\.type: a scheduled flow's input scheduledAt is given the tick's time: declare it type: string \(ISO 8601\) or number/,
    );
    // Nor an enum: no tick's time is one of its values, so every tick would fail.
    await Deno.writeTextFile(
      join(dir, "flows", "tick.flow.yaml"),
      'id: tick\ninputs: { scheduledAt: { type: string, enum: [today] } }\nschedule: "@daily"\n' +
        "nodes: [{ id: a, type: log, with: { message: hi } }]\n",
    );
    const listed = await run("validate", "flows/tick.flow.yaml");
    assert.equal(listed.code, 2, listed.stdout + listed.stderr);
    assert.match(
      listed.stderr,
      /flows\/tick\.flow\.yaml:2:46: inputs\.scheduledAt\.enum: a scheduled flow's input scheduledAt is given the tick's time, which no enum: can list; remove the enum, or read run\.scheduledAt instead/,
    );
  });
});

Deno.test("validate: bad schedule inputs and entry ids are errors at file:line:column", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flows", "backup.flow.yaml"),
      backupFlow([
        "schedule:",
        '  - { id: a, cron: "0 2 * * *", inputs: { db: a } }',
        '  - { id: a, cron: "0 3 * * *", inputs: { db: d, keep: "7", dbs: b } }',
        '  - { cron: "0 4 * * *", inputs: { db: "${{ now() }}" } }',
        '  - "0 5 * * *"',
      ].join("\n")),
    );
    const result = await run("validate", "flows/backup.flow.yaml");
    assert.equal(result.code, 2, result.stdout + result.stderr);
    const lines = result.stderr.trim().split("\n");
    const expected = [
      /^error: flows\/backup\.flow\.yaml:7:11: schedule\[1\]\.id: duplicate schedule id "a" \(first at schedule\[0\]\); each entry of schedule: needs its own id$/,
      /^error: flows\/backup\.flow\.yaml:7:47: schedule\[1\]\.inputs\.db: expected one of "a", "b", "c", got "d"$/,
      /^error: flows\/backup\.flow\.yaml:7:56: schedule\[1\]\.inputs\.keep: expected a number, got "7"$/,
      /^error: flows\/backup\.flow\.yaml:7:61: schedule\[1\]\.inputs\.dbs: unknown input \(did you mean "db"\?\)$/,
      /^error: flows\/backup\.flow\.yaml:8:40: schedule\[2\]\.inputs\.db: a schedule's inputs are literal values, not templates; read the tick's time in the flow as run\.scheduledAt/,
      /^error: flows\/backup\.flow\.yaml:9:5: schedule\[3\]: a second schedule entry without id: \(the first is schedule\[2\]\); give every entry but one an id/,
      /^error: flows\/backup\.flow\.yaml:9:5: schedule\[3\]: the flow's input db is required \(no default\) but this schedule gives no value/,
    ];
    assert.equal(lines.length, expected.length, result.stderr);
    expected.forEach((pattern, i) => assert.match(lines[i], pattern));
  });
});

// ---------------------------------------------------------------------------
// flowstate schedules ls

Deno.test("schedules ls: an input holding a line break, a comma or an = is quoted, one row per entry", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flows", "notes.flow.yaml"),
      [
        "id: notes",
        "inputs:",
        "  text: { type: string }",
        "schedule:",
        '  - { id: a, cron: "0 2 * * *", inputs: { text: "two\\nlines" } }',
        '  - { id: b, cron: "0 3 * * *", inputs: { text: "x, y=1" } }',
        '  - { id: c, cron: "0 4 * * *", inputs: { text: "tab\\there" } }',
        '  - { id: d, cron: "0 5 * * *", inputs: { text: "plain words" } }',
        "nodes:",
        "  - { id: say, type: log, with: { message: hi } }",
        "",
      ].join("\n"),
    );
    const table = (await cliOk(run, "schedules", "ls")).trimEnd().split("\n");
    assert.equal(table.length, 5, table.join("\n"));
    assert.match(table[1], /^flow:notes#a\s.*\stext="two\\nlines"$/);
    assert.match(table[2], /^flow:notes#b\s.*\stext="x, y=1"$/);
    assert.match(table[3], /^flow:notes#c\s.*\stext="tab\\there"$/);
    assert.match(table[4], /^flow:notes#d\s.*\stext=plain words$/);
  });
});

Deno.test("schedules ls: each entry of a flow's schedule is a row with its id and inputs (text and --json)", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "backup.flow.yaml"), backupFlow(TWO_ENTRIES));
    await Deno.writeTextFile(
      join(dir, "flows", "one.flow.yaml"),
      'id: one\nschedule: "@daily"\nnodes:\n  - { id: say, type: log, with: { message: hi } }\n',
    );
    const table = (await cliOk(run, "schedules", "ls")).split("\n");
    assert.match(table[0], /^ID\s+SCHEDULE\s+TIMEZONE\s+NEXT RUN\s+LAST RUN\s+INPUTS$/);
    assert.match(table[1], /^flow:backup#a\s+0 2 \* \* \*\s+Europe\/Paris\s+.*\s+-\s+db=a$/);
    assert.match(table[2], /^flow:backup#b\s+0 3 \* \* \*\s+Europe\/Paris\s+.*\s+db=b, keep=30$/);
    // A single schedule keeps the id it always had.
    assert.match(table[3], /^flow:one\s+@daily\s+UTC\s+.*\s+-$/);

    const rows = JSON.parse(await cliOk(run, "schedules", "ls", "--json")) as Record<
      string,
      unknown
    >[];
    assert.deepEqual(
      rows.map(({ id, cron, timezone, flow, entry, inputs }) => ({
        id,
        cron,
        timezone,
        flow,
        entry,
        inputs,
      })),
      [
        {
          id: "flow:backup#a",
          cron: "0 2 * * *",
          timezone: "Europe/Paris",
          flow: "backup",
          entry: "a",
          inputs: { db: "a" },
        },
        {
          id: "flow:backup#b",
          cron: "0 3 * * *",
          timezone: "Europe/Paris",
          flow: "backup",
          entry: "b",
          inputs: { db: "b", keep: 30 },
        },
        { id: "flow:one", cron: "@daily", timezone: "UTC", flow: "one", entry: null, inputs: {} },
      ],
    );
  });
});

// ---------------------------------------------------------------------------
// The daemon's scheduler, on a fake clock

/** Wait, a turn of the event loop at a time, until `ready()` holds (60 s of wall time at most). */
async function until(ready: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await ready()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  assert.fail(`timed out waiting for ${what}`);
}

interface Project {
  dir: string;
  clock: FakeClock;
  timers: ManualTimers;
  runtime: Runtime;
  events: SchedulerEvent[];
  scheduler(runnerId: string): Scheduler;
  runs(): Promise<RunRecord[]>;
}

/** Paris 2026-03-10 at `hh:mm` (UTC+1 then). */
const paris = (hh: number, mm = 0, day = 10) => Date.UTC(2026, 2, day, hh - 1, mm);

/** A project with `flows/backup.flow.yaml` holding `flow`, a runtime on a fake clock at `start`. */
async function withProject(
  flow: string,
  start: number,
  body: (p: Project) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-schedule-entries-" });
  await Deno.mkdir(join(dir, "flows"));
  await Deno.writeTextFile(join(dir, "flows", "backup.flow.yaml"), flow);
  const clock = fakeClock(start);
  const timers = manualTimers(clock);
  const runtime = await openRuntime({
    cwd: dir,
    config: {
      stores: { main: { plugin: "memory" } },
      flows: ["./flows"],
      jobs: { retention: { enabled: false }, gc: { enabled: false } },
    },
    clock,
    env: {},
  });
  const events: SchedulerEvent[] = [];
  const schedulers: Scheduler[] = [];
  try {
    await body({
      dir,
      clock,
      timers,
      runtime,
      events,
      scheduler(runnerId) {
        const scheduler = new Scheduler(runtime, {
          clock,
          timers,
          runnerId,
          onEvent: (event) => events.push(event),
        });
        schedulers.push(scheduler);
        return scheduler;
      },
      async runs() {
        const page = await (await runtime.records()).listRuns({ flowId: "backup" });
        return page.runs.toSorted((x, y) =>
          (x.scheduledAt ?? 0) - (y.scheduledAt ?? 0) || x.id.localeCompare(y.id)
        );
      },
    });
  } finally {
    const stopping = Promise.all(schedulers.map((s) => s.stop({ graceMs: 0 })));
    await timers.advance(0);
    await stopping;
    await runtime.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The ticks ended so far, by schedule id, each `<iso tick> <runner>`. */
function ended(events: SchedulerEvent[]): string[] {
  return events.flatMap((e) =>
    e.type === "tick.end" ? [`${e.scheduleId} ${new Date(e.tick).toISOString()} ${e.status}`] : []
  ).sort();
}

Deno.test("daemon scheduler: two entries run with their inputs; run.scheduledAt and run.schedule are the tick's", async () => {
  await withProject(backupFlow(TWO_ENTRIES), paris(1, 30), async (p) => {
    await p.scheduler("runner-1").start();
    await p.timers.advanceTo(paris(3, 30));
    await until(async () => (await p.runs()).length === 2, "the two ticks' runs");
    const runs = await p.runs();
    assert.deepEqual(runs.map((r) => r.status), ["succeeded", "succeeded"]);
    assert.deepEqual(runs.map((r) => r.inputs), [{ db: "a", keep: 7 }, { db: "b", keep: 30 }]);
    assert.deepEqual(runs.map((r) => [r.scheduledAt, r.schedule]), [
      [paris(2), "flow:backup#a"],
      [paris(3), "flow:backup#b"],
    ]);
    assert.deepEqual(runs.map((r) => r.outputs), [
      { db: "a", keep: 7, at: paris(2), schedule: "flow:backup#a", day: "2026-03-10 02:00" },
      { db: "b", keep: 30, at: paris(3), schedule: "flow:backup#b", day: "2026-03-10 03:00" },
    ]);
  });
});

Deno.test("daemon scheduler: a catch-up run (missed: run-once) reads its tick's time, not the clock's", async () => {
  const flow = backupFlow([
    "schedule:",
    '  - { id: a, cron: "0 2 * * *", timezone: Europe/Paris, missed: run-once, inputs: { db: a } }',
  ].join("\n"));
  await withProject(flow, paris(1), async (p) => {
    // A first start records when the schedule was first seen; then no daemon runs for two days.
    const first = p.scheduler("runner-1");
    await first.start();
    await first.stop({ graceMs: 0 });
    p.clock.set(paris(9, 15, 12));
    await p.scheduler("runner-2").start();
    await until(async () => (await p.runs()).length === 1, "the catch-up run");
    const [run] = await p.runs();
    // The latest tick missed: the 12th at 02:00, though it runs at 09:15.
    assert.equal(run.scheduledAt, paris(2, 0, 12));
    assert.equal(run.startedAt, paris(9, 15, 12));
    assert.equal((run.outputs as { day: string }).day, "2026-03-12 02:00");
  });
});

Deno.test("daemon scheduler: two runners on one store run each tick of each entry once", async () => {
  const flow = backupFlow([
    "schedule:",
    '  - { id: a, cron: "*/10 * * * *", inputs: { db: a } }',
    '  - { id: b, cron: "*/10 * * * *", inputs: { db: b } }',
    '  - { cron: "*/15 * * * *", inputs: { db: c } }',
  ].join("\n"));
  const start = Date.UTC(2026, 2, 10, 0, 0, 1);
  await withProject(flow, start, async (p) => {
    await Promise.all([p.scheduler("runner-1").start(), p.scheduler("runner-2").start()]);
    // Each tick in turn (a runner woken late would run only the latest due tick).
    let expected = 0;
    for (let minute = 5; minute <= 60; minute += 5) {
      expected += (minute % 10 === 0 ? 2 : 0) + (minute % 15 === 0 ? 1 : 0);
      await p.timers.advanceTo(Date.UTC(2026, 2, 10, 0, minute, 0));
      await until(async () => (await p.runs()).length === expected, `${expected} runs`);
      await until(() => ended(p.events).length === expected, `${expected} ticks ended`);
    }
    // In an hour: 6 ticks of a, 6 of b, 4 of the entry without id.
    assert.equal(expected, 16);
    const runs = await p.runs();
    const seen = runs.map((r) => `${r.schedule} ${new Date(r.scheduledAt!).toISOString()}`);
    assert.equal(new Set(seen).size, 16, `each tick once: ${seen.join(", ")}`);
    const count = (schedule: string) => runs.filter((r) => r.schedule === schedule).length;
    assert.deepEqual(
      [count("flow:backup#a"), count("flow:backup#b"), count("flow:backup")],
      [6, 6, 4],
    );
    assert.ok(
      runs.every((r) =>
        r.inputs.db ===
          { "flow:backup#a": "a", "flow:backup#b": "b", "flow:backup": "c" }[r.schedule!]
      ),
    );
    // Every tick ended once (on one runner), and the other runner skipped it.
    assert.equal(ended(p.events).length, 16);
  });
});

Deno.test("daemon scheduler: entries added, changed and removed by an edit apply at once; the entry without id keeps the single schedule's id and done ticks", async () => {
  const single = backupFlow('schedule: { cron: "0 * * * *", inputs: { db: a } }');
  const start = Date.UTC(2026, 2, 10, 0, 30);
  await withProject(single, start, async (p) => {
    const scheduler = p.scheduler("runner-1");
    await scheduler.start();
    await p.timers.advanceTo(Date.UTC(2026, 2, 10, 1, 0, 30));
    await until(async () => (await p.runs()).length === 1, "the 01:00 run");
    assert.deepEqual(scheduler.schedules.map((s) => s.id), ["flow:backup"]);

    // The single schedule becomes the list's entry without id, and an entry b is added.
    const file = join(p.dir, "flows", "backup.flow.yaml");
    await Deno.writeTextFile(
      file,
      backupFlow([
        "schedule:",
        '  - { cron: "0 * * * *", inputs: { db: a } }',
        '  - { id: b, cron: "30 * * * *", inputs: { db: b } }',
      ].join("\n")),
    );
    await scheduler.reload();
    assert.deepEqual(scheduler.schedules.map((s) => [s.id, s.flow?.inputs]), [
      ["flow:backup", { db: "a" }],
      ["flow:backup#b", { db: "b" }],
    ]);
    // The 01:00 tick, done under the single schedule, is not run again by a second runner.
    const second = p.scheduler("runner-2");
    await second.start();
    await p.timers.advanceTo(Date.UTC(2026, 2, 10, 2, 0, 30));
    await until(async () => (await p.runs()).length === 3, "01:30 of b and 02:00");
    assert.deepEqual(
      (await p.runs()).map((r) =>
        `${r.schedule} ${r.inputs.db} ${new Date(r.scheduledAt!).toISOString()}`
      ),
      [
        "flow:backup a 2026-03-10T01:00:00.000Z",
        "flow:backup#b b 2026-03-10T01:30:00.000Z",
        "flow:backup a 2026-03-10T02:00:00.000Z",
      ],
    );
    await second.stop({ graceMs: 0 });

    // b changes its inputs, the entry without id is removed.
    await Deno.writeTextFile(
      file,
      backupFlow('schedule:\n  - { id: b, cron: "30 * * * *", inputs: { db: c } }'),
    );
    await scheduler.reload();
    assert.deepEqual(scheduler.schedules.map((s) => [s.id, s.flow?.inputs]), [
      ["flow:backup#b", { db: "c" }],
    ]);
    const logs = p.events.flatMap((e) => e.type === "log" ? [`${e.scheduleId}: ${e.message}`] : []);
    assert.ok(
      logs.some((l) => /^flow:backup#b: schedule added: 30 \* \* \* \*/.test(l)),
      logs.join("\n"),
    );
    assert.ok(logs.some((l) => /^flow:backup: schedule removed/.test(l)), logs.join("\n"));
    assert.ok(logs.some((l) => /^flow:backup#b: flow file changed/.test(l)), logs.join("\n"));
    await p.timers.advanceTo(Date.UTC(2026, 2, 10, 3, 0, 30));
    await until(async () => (await p.runs()).length === 4, "02:30 of b");
    const last = (await p.runs()).at(-1)!;
    assert.deepEqual([last.schedule, last.inputs.db, last.scheduledAt], [
      "flow:backup#b",
      "c",
      Date.UTC(2026, 2, 10, 2, 30),
    ]);
  });
});

Deno.test("runs show: a scheduled run says its schedule and tick (--json: scheduledAt, schedule); a run by hand has none", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "backup.flow.yaml"), backupFlow(TWO_ENTRIES));
    // The daemon's scheduler on the project's store, on a fake clock.
    const clock = fakeClock(paris(1, 30));
    const timers = manualTimers(clock);
    let runId: string;
    {
      await using runtime = await openRuntime({
        config: join(dir, "flowstate.yaml"),
        clock,
        env: {},
      });
      const scheduler = new Scheduler(runtime, { clock, timers, runnerId: "runner-1" });
      await scheduler.start();
      await timers.advanceTo(paris(2, 1));
      const records = await runtime.records();
      await until(
        async () => (await records.listRuns({ flowId: "backup" })).runs[0]?.status === "succeeded",
        "the 02:00 run",
      );
      runId = (await records.listRuns({ flowId: "backup" })).runs[0].id;
      const stopping = scheduler.stop({ graceMs: 0 });
      await timers.advance(0);
      await stopping;
    }
    const shown = await cliOk(run, "runs", "show", runId);
    assert.match(shown, /^schedule: flow:backup#a, tick of 2026-03-10 01:00:00/m);
    const record = JSON.parse(await cliOk(run, "runs", "show", runId, "--json")) as {
      run?: RunRecord;
    } & RunRecord;
    const scheduled = record.run ?? record;
    assert.deepEqual([scheduled.scheduledAt, scheduled.schedule], [paris(2), "flow:backup#a"]);

    // A run started by hand: no tick (run.scheduledAt is null; the flow's formatDate fails on it).
    const byHand = await run("run", "flows/backup.flow.yaml", "--input", "db=a", "--json");
    const manual = JSON.parse(byHand.stdout) as RunRecord;
    assert.equal(manual.scheduledAt, undefined);
    assert.equal(manual.schedule, undefined);
    assert.match(
      manual.error?.message ?? "",
      /formatDate\(\) takes a number or a string as time, got null/,
    );
    assert.doesNotMatch(await cliOk(run, "runs", "show", manual.id), /^schedule:/m);
  });
});

Deno.test({
  name:
    "flowstate daemon --serve: two entries of one flow each run with their inputs and tick; GET /api/schedules lists them; one removed by an edit stops",
  sanitizeResources: false,
  async fn() {
    const flow = (entries: string[]) =>
      [
        "id: tk",
        "inputs: { db: { type: string } }",
        "schedule:",
        ...entries,
        "nodes:",
        '  - { id: say, type: log, with: { message: "${{ inputs.db }} ${{ run.scheduledAt }} ${{ run.schedule }}" } }',
        "",
      ].join("\n");
    const a = '  - { id: a, cron: "* * * * * *", inputs: { db: a } }';
    const b = '  - { id: b, cron: "* * * * * *", inputs: { db: b } }';
    await withDaemonProject(
      "flowstate-daemon-schedule-entries-",
      {
        "flowstate.yaml": "stores:\n  default: { plugin: memory }\nserve: { port: 0 }\n" +
          "flows: [./flows]\njobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
        "flows/tk.flow.yaml": flow([a, b]),
      },
      ["--serve"],
      async ({ dir, child, err }) => {
        const serving = await within(err.next(/^Serving http:\/\/127\.0\.0\.1:\d+\/$/), "serving");
        // Each entry's run logs its input, its tick (a whole second) and its schedule.
        for (const [entry, db] of [["a", "a"], ["b", "b"]]) {
          const pattern = new RegExp(`^\\[flow:tk#${entry}\\] say: ${db} (\\d+) flow:tk#${entry}$`);
          const line = await within(err.next(pattern), `a run of entry ${entry}`);
          const tick = Number(line.match(pattern)![1]);
          assert.equal(tick % 1000, 0, `a tick's time: ${line}`);
        }
        const response = await fetch(new URL("api/schedules", serving.slice("Serving ".length)), {
          signal: hangSignal(),
        });
        assert.equal(response.status, 200);
        const rows = (await response.json()) as Record<string, unknown>[];
        assert.deepEqual(rows.map((r) => [r.id, r.flow, r.entry, r.inputs]), [
          ["flow:tk#a", "tk", "a", { db: "a" }],
          ["flow:tk#b", "tk", "b", { db: "b" }],
        ]);

        await Deno.writeTextFile(join(dir, "flows", "tk.flow.yaml"), flow([a]));
        await within(err.next(/^\[flow:tk#b\] schedule removed/), "entry b removed");
        await within(err.next(/^\[flow:tk#a\] say: a \d+ flow:tk#a$/), "entry a still runs");
        child.kill("SIGTERM");
        assert.equal(
          (await exitOf(child, () => err.lines.join("\n"))).code,
          0,
          err.lines.join("\n"),
        );
      },
    );
  },
});
