/**
 * A scheduler that watches `flowstate.yaml` (the daemon's): a job removed and
 * added back while its tick runs keeps `overlap` (that tick is still its own),
 * an empty file is not applied, and an edit the 2 s look catches halfway is
 * applied only once the file stayed the same from one look to the next.
 * Through `mod.ts` and `scheduler.ts`, with a fake clock and manual timers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadConfig, openRuntime, type Runtime } from "../mod.ts";
import { Scheduler, type SchedulerEvent } from "../scheduler.ts";
import { fakeClock, manualTimers } from "../testing.ts";

const T0 = Date.UTC(2026, 0, 1);
const GATE = Symbol.for("flowstate.test.scheduler_config_edit.gate");
const gates = globalThis as unknown as Record<symbol, Promise<void> | undefined>;

/** A project dir with `flowstate.yaml`, a runtime and a scheduler watching the file. */
async function project(yaml: string, files: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-sched-edit-" });
  const file = join(dir, "flowstate.yaml");
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
  await Deno.writeTextFile(file, yaml);
  const clock = fakeClock(T0 + 500);
  const timers = manualTimers(clock);
  const runtime: Runtime = await openRuntime({ config: file, home: join(dir, "home"), clock });
  const events: SchedulerEvent[] = [];
  const scheduler = new Scheduler(runtime, {
    clock,
    timers,
    loadConfig: () => loadConfig({ config: file }),
    onEvent: (e) => void events.push(e),
  });
  return {
    dir,
    file,
    timers,
    events,
    scheduler,
    ids: () => scheduler.schedules.map((s) => s.id).sort(),
    async [Symbol.asyncDispose]() {
      const stopping = scheduler.stop({ graceMs: 0 });
      await timers.advance(0);
      await stopping;
      await runtime.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Wait (bounded, in real time) until `ready()` holds. */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 3_000; i++) {
    if (ready()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const BASE = "stores: { main: { plugin: memory } }\njobs:\n" +
  "  gc: { enabled: false }\n  retention: { enabled: false }\n";

Deno.test({
  name:
    "Scheduler: a job removed from flowstate.yaml and added back while its tick runs still skips the next ticks (overlap: skip)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const mod = pathToFileURL(join(Deno.cwd(), "mod.ts")).href;
    let open!: () => void;
    gates[GATE] = new Promise<void>((r) => (open = r));
    const slow = `import { defineJob } from ${JSON.stringify(mod)};
import { z } from "zod";
export default defineJob({
  name: "slow",
  description: "waits for the test",
  optionsSchema: z.strictObject({}),
  async run() {
    await globalThis[Symbol.for("flowstate.test.scheduler_config_edit.gate")];
    return {};
  },
});
`;
    const withSlow = BASE + `  slow: { module: ./slow.ts, schedule: "* * * * * *" }\n`;
    await using p = await project(withSlow, { "slow.ts": slow });
    const starts = () => p.events.filter((e) => e.type === "tick.start");
    try {
      await p.scheduler.start();
      await p.timers.advanceTo(T0 + 1000);
      await until(() => starts().length === 1, "the first tick to start");
      await Deno.writeTextFile(p.file, BASE);
      await p.scheduler.reload();
      assert.deepEqual(p.ids(), []);
      await Deno.writeTextFile(p.file, withSlow);
      await p.scheduler.reload();
      assert.deepEqual(p.ids(), ["job:slow"]);
      assert.equal(p.scheduler.schedules[0].running, true, "its tick still runs");
      const overlaps = () =>
        p.events.flatMap((e) => e.type === "tick.skip" && e.reason === "overlap" ? [e.tick] : []);
      await p.timers.advanceTo(T0 + 2000);
      assert.deepEqual(overlaps(), [T0 + 2000]);
      // The scheduler looks at the files (real I/O) before this one: waited for, bounded.
      await p.timers.advanceTo(T0 + 3000);
      await until(() => overlaps().length === 2, "the tick at T0 + 3 s");
      assert.deepEqual(overlaps(), [T0 + 2000, T0 + 3000]);
      assert.equal(starts().length, 1, "a second tick of job:slow started while the first ran");
    } finally {
      open();
    }
    await until(() => p.events.some((e) => e.type === "tick.end"), "the first tick to end");
    delete gates[GATE];
  },
});

const WITH_BACKUP = BASE + `  backup: { schedule: "0 4 * * *", options: { all: true, keep: 7 } }\n`;

Deno.test({
  name:
    "Scheduler.reload(): an empty flowstate.yaml is refused with a clear error; the jobs stay as they were",
  sanitizeResources: false,
  async fn() {
    await using p = await project(WITH_BACKUP);
    await p.scheduler.start();
    assert.deepEqual(p.ids(), ["job:backup"]);
    await Deno.writeTextFile(p.file, "");
    await p.scheduler.reload();
    assert.deepEqual(p.ids(), ["job:backup"], "the backup schedule was dropped");
    const errors = p.events.filter((e) => e.type === "error").map((e) =>
      "message" in e && e.message
    );
    assert.equal(errors.length, 1);
    assert.match(
      String(errors[0]),
      /Cannot apply the edit of .*flowstate\.yaml: the file is empty/,
    );
    assert.ok(!p.events.some((e) => e.type === "config.reload"));
    // Written again as it was: nothing changed.
    await Deno.writeTextFile(p.file, WITH_BACKUP);
    await p.scheduler.reload();
    assert.deepEqual(p.ids(), ["job:backup"]);
  },
});

Deno.test({
  name:
    "Scheduler: an edit of flowstate.yaml caught halfway by the 2 s look is not applied; it applies once the file stayed the same for a look",
  sanitizeResources: false,
  async fn() {
    await using p = await project(WITH_BACKUP);
    await p.scheduler.start();
    const looks = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await p.timers.advance(2_000);
        // The look reads files (real I/O); the scheduler sleeps again once it is done.
        await until(() => p.timers.pending === 1, "the look to end");
      }
    };
    await looks(1);
    // Halfway through a save: the backup job is not written yet (a valid, shorter file).
    await Deno.writeTextFile(p.file, BASE);
    await looks(1);
    assert.deepEqual(p.ids(), ["job:backup"], "a file caught mid-save was applied");
    // The save ends: the file is as it was, and stays so.
    await Deno.writeTextFile(p.file, WITH_BACKUP);
    await looks(3);
    assert.deepEqual(p.ids(), ["job:backup"]);
    assert.ok(!p.events.some((e) => e.type === "log" && /schedule removed/.test(e.message)));
    // A real edit still applies, one look after it was seen.
    await Deno.writeTextFile(p.file, WITH_BACKUP.replace("0 4 * * *", "0 5 * * *"));
    await looks(2);
    assert.equal(p.scheduler.schedules[0].cron, "0 5 * * *");
    assert.ok(p.events.some((e) => e.type === "config.reload" && e.applied.includes("jobs")));
  },
});

Deno.test("Scheduler.reload(): a job edited onto a schedule a spring-forward gap leaves without a tick for a day is a warning; edited back, none", async () => {
  const job = (schedule: string) =>
    BASE +
    `  backup: { schedule: "${schedule}", timezone: Europe/Paris, options: { all: true } }\n`;
  await using p = await project(job("0 4 * * *"));
  const warnings = () =>
    p.events.flatMap((e) => e.type === "warning" ? [`${e.scheduleId}: ${e.message}`] : []);
  await p.scheduler.start();
  assert.deepEqual(warnings(), []);
  await Deno.writeTextFile(p.file, job("*/20 2 * * *"));
  await p.scheduler.reload();
  assert.equal(warnings().length, 1, warnings().join("\n"));
  assert.match(
    warnings()[0],
    /^job:backup: cron expression "\*\/20 2 \* \* \*" does not run at all on 2026-03-29 in Europe\/Paris: the clocks skip from 02:00 to 03:00 that night/,
  );
  await Deno.writeTextFile(p.file, job("0,20,40 2 * * *"));
  await p.scheduler.reload();
  assert.equal(warnings().length, 1, "a list of times runs at 03:00 that night: no warning");
});
