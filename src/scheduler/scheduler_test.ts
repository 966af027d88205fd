import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { join } from "node:path";
import { defineJob } from "../jobs/job.ts";
import { runJob } from "../jobs/run.ts";
import { openRuntime, type Runtime } from "../runtime.ts";
import type { ConfigObject } from "../config.ts";
import { type FakeClock, fakeClock } from "../testing/clock.ts";
import { type ManualTimers, manualTimers } from "../testing/timers.ts";
import { TickLeases } from "./lease.ts";
import { RunRecorder } from "../records/recorder.ts";
import type { Records } from "../records/records.ts";
import {
  type Schedule,
  Scheduler,
  type SchedulerEvent,
  type SchedulerOptions,
} from "./scheduler.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

// ---------------------------------------------------------------------------
// Waiting

/**
 * Wait, a turn of the event loop at a time, until `ready()` holds; fail after
 * 60 s of wall time. (A count of turns was the bound before: the flow ticks
 * read their files through real I/O, which a loaded machine can make last
 * longer than 20,000 idle turns.)
 */
async function until(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (ready()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (ready()) return;
  assert.fail(`timed out waiting for ${what}`);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

// ---------------------------------------------------------------------------
// Setup

async function memoryRuntime(clock: FakeClock, config: ConfigObject = {}): Promise<Runtime> {
  return await openRuntime({
    config: {
      stores: { main: { plugin: "memory" } },
      jobs: { retention: { enabled: false }, gc: { enabled: false } },
      ...config,
    },
    clock,
    env: {},
  });
}

interface Harness {
  clock: FakeClock;
  timers: ManualTimers;
  runtime: Runtime;
  events: SchedulerEvent[];
  scheduler(options?: SchedulerOptions): Scheduler;
  ends(scheduleId?: string): Extract<SchedulerEvent, { type: "tick.end" }>[];
  skips(scheduleId?: string): Extract<SchedulerEvent, { type: "tick.skip" }>[];
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts 1 ms after T0, so that T0 itself is not a tick that is due at start. */
async function harness(start = T0 + 1, config: ConfigObject = {}): Promise<Harness> {
  const clock = fakeClock(start);
  const timers = manualTimers(clock);
  const runtime = await memoryRuntime(clock, config);
  const events: SchedulerEvent[] = [];
  const schedulers: Scheduler[] = [];
  return {
    clock,
    timers,
    runtime,
    events,
    scheduler(options = {}) {
      const scheduler = new Scheduler(runtime, {
        clock,
        timers,
        runnerId: `runner-${schedulers.length + 1}`,
        onEvent: (e) => events.push(e),
        ...options,
      });
      schedulers.push(scheduler);
      return scheduler;
    },
    ends: (id) =>
      events.filter((e): e is Extract<SchedulerEvent, { type: "tick.end" }> =>
        e.type === "tick.end" && (id === undefined || e.scheduleId === id)
      ),
    skips: (id) =>
      events.filter((e): e is Extract<SchedulerEvent, { type: "tick.skip" }> =>
        e.type === "tick.skip" && (id === undefined || e.scheduleId === id)
      ),
    async [Symbol.asyncDispose]() {
      const stopping = Promise.all(schedulers.map((s) => s.stop({ graceMs: 0 })));
      await timers.advance(0);
      await stopping;
      await runtime.close();
    },
  };
}

/** A schedule whose runs are recorded as [tick, clock time at start, runner]. */
function recording(
  id: string,
  cron: string,
  runs: { tick: number; at: number; runner: string }[],
  clock: FakeClock,
  extra: Partial<Schedule> = {},
): Schedule {
  return {
    id,
    cron,
    run: ({ tick, runnerId }) => {
      runs.push({ tick, at: clock.now(), runner: runnerId });
    },
    ...extra,
  };
}

// ---------------------------------------------------------------------------
// Tick times

Deno.test("Scheduler: a per-second schedule keeps its done markers bounded, each tick still run once by two runners", async () => {
  await using h = await harness(T0 + 500);
  const runs: { tick: number; at: number; runner: string }[] = [];
  const options = { leaseMs: 5 * SECOND, historyCount: 20 };
  const a = h.scheduler({
    ...options,
    schedules: [recording("fast", "* * * * * *", runs, h.clock)],
  });
  const b = h.scheduler({
    ...options,
    schedules: [recording("fast", "* * * * * *", runs, h.clock)],
  });
  await Promise.all([a.start(), b.start()]);
  await h.timers.advanceTo(T0 + 5 * MINUTE + 500);
  const ticks = runs.map((r) => r.tick).sort((x, y) => x - y);
  assert.deepEqual(ticks, Array.from({ length: 300 }, (_, i) => T0 + (i + 1) * SECOND));
  // Ten lease lifetimes (50 one-second ticks) before the latest, and 20 more: not 300.
  const kept = await new TickLeases(await h.runtime.store("main"), { runnerId: "x" }).history(
    "fast",
  );
  assert.ok(kept.length >= 70 && kept.length <= 72, `kept ${kept.length}`);
  assert.equal(kept.at(-1)?.tick, T0 + 300 * SECOND);
  // A tick before what is kept counts as done: neither runner runs it again.
  const older = T0 + 10 * SECOND;
  const leases = new TickLeases(await h.runtime.store("main"), { runnerId: "late" });
  assert.equal(await leases.state("fast", older), "done");
  const late = await leases.acquire("fast", older);
  assert.deepEqual(late, { ok: false, reason: "done", done: null });
});

Deno.test("Scheduler runs a 6-field schedule at each tick, on time", async () => {
  await using h = await harness(T0 + 5 * SECOND);
  const runs: { tick: number; at: number; runner: string }[] = [];
  const scheduler = h.scheduler({ schedules: [recording("s", "*/10 * * * * *", runs, h.clock)] });
  await scheduler.start();
  await h.timers.advanceTo(T0 + MINUTE + 5 * SECOND);
  const expected = [10, 20, 30, 40, 50, 60].map((s) => T0 + s * SECOND);
  assert.deepEqual(runs.map((r) => r.tick), expected);
  assert.deepEqual(runs.map((r) => r.at), expected, "each run starts at its tick");
  assert.deepEqual(h.ends("s").map((e) => e.status), Array(6).fill("succeeded"));
  assert.equal(scheduler.schedules[0].next, T0 + 70 * SECOND);
});

Deno.test("Scheduler: an async onEvent that rejects neither stops it nor goes unhandled", async () => {
  await using h = await harness(T0 + 5 * SECOND);
  const runs: { tick: number; at: number; runner: string }[] = [];
  let told = 0;
  const scheduler = h.scheduler({
    schedules: [recording("s", "*/10 * * * * *", runs, h.clock)],
    // deno-lint-ignore require-await
    onEvent: async () => {
      told++;
      throw new Error("printer bug");
    },
  });
  await scheduler.start();
  await h.timers.advanceTo(T0 + 30 * SECOND);
  assert.deepEqual(runs.map((r) => r.tick), [10, 20, 30].map((s) => T0 + s * SECOND));
  assert.ok(told >= 6, `told ${told} events`);
});

Deno.test("Scheduler runs 5-field and @daily schedules at their ticks", async () => {
  await using h = await harness(T0 + 30 * SECOND);
  const runs: { tick: number; at: number; runner: string }[] = [];
  const scheduler = h.scheduler({
    schedules: [
      recording("quarter", "*/15 * * * *", runs, h.clock),
      recording("daily", "@daily", runs, h.clock),
    ],
    maxSleepMs: DAY,
  });
  await scheduler.start();
  await h.timers.advanceTo(T0 + 2 * DAY + HOUR);
  const daily = runs.filter((_, i) => h.ends()[i].scheduleId === "daily").map((r) => iso(r.tick));
  assert.deepEqual(daily, ["2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"]);
  const quarters = h.ends("quarter").map((e) => e.tick);
  assert.equal(quarters.length, 4 * 49);
  assert.equal(iso(quarters[0]), "2026-01-01T00:15:00.000Z");
  assert.ok(quarters.every((t, i) => i === 0 || t - quarters[i - 1] === 15 * MINUTE));
});

Deno.test("Scheduler follows a time zone across the DST change of Europe/Paris", async () => {
  await using h = await harness(Date.parse("2026-03-27T12:00:00Z"));
  const runs: { tick: number; at: number; runner: string }[] = [];
  const scheduler = h.scheduler({
    schedules: [
      recording("paris", "0 3 * * *", runs, h.clock, { timezone: "Europe/Paris" }),
    ],
    maxSleepMs: DAY,
  });
  await scheduler.start();
  assert.equal(iso(scheduler.schedules[0].next!), "2026-03-28T02:00:00.000Z");
  await h.timers.advanceTo(Date.parse("2026-03-31T00:00:00Z"));
  assert.deepEqual(runs.map((r) => iso(r.at)), [
    "2026-03-28T02:00:00.000Z", // 03:00 CET
    "2026-03-29T01:00:00.000Z", // 03:00 CEST, the day the clocks go forward
    "2026-03-30T01:00:00.000Z",
  ]);
});

/** The ticks a schedule ran from `from` to `to` (ISO), with a fake clock. */
async function ticksBetween(cron: string, timezone: string, from: string, to: string) {
  await using h = await harness(Date.parse(from));
  const runs: { tick: number; at: number; runner: string }[] = [];
  await h.scheduler({
    schedules: [recording("s", cron, runs, h.clock, { timezone })],
    maxSleepMs: DAY,
  }).start();
  await h.timers.advanceTo(Date.parse(to));
  return runs.map((r) => iso(r.tick));
}

Deno.test("Scheduler runs each wall-clock time of a twice-daily schedule once across both DST changes", async () => {
  // Fall back in New York on 2026-11-01 (02:00 EDT -> 01:00 EST): 01:00 happens twice. A billing
  // run at 01:00 and 13:00 ran twice that night (once at 01:00 EDT, again at 01:00 EST).
  const ny = "America/New_York";
  assert.deepEqual(
    await ticksBetween("0 1,13 * * *", ny, "2026-10-31T12:00:00Z", "2026-11-02T00:00:00Z"),
    [
      "2026-10-31T17:00:00.000Z", // 13:00 EDT
      "2026-11-01T05:00:00.000Z", // 01:00 EDT, the first of the two
      "2026-11-01T18:00:00.000Z", // 13:00 EST
    ],
  );
  // Spring forward in Paris on 2026-03-29 (02:00 CET -> 03:00 CEST): 02:30 does not exist. The
  // 02:30 run of a schedule at 02:30 and 14:30 silently never ran that night.
  const paris = "Europe/Paris";
  assert.deepEqual(
    await ticksBetween("30 2,14 * * *", paris, "2026-03-28T12:00:00Z", "2026-03-30T00:00:00Z"),
    [
      "2026-03-28T13:30:00.000Z", // 14:30 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST, the first time after the gap, for 02:30
      "2026-03-29T12:30:00.000Z", // 14:30 CEST
    ],
  );
});

Deno.test("Scheduler warns at start of a schedule a spring-forward gap leaves without a tick for a whole day", async () => {
  await using h = await harness(Date.parse("2026-01-01T00:00:00Z"));
  const runs: { tick: number; at: number; runner: string }[] = [];
  await h.scheduler({
    schedules: [
      recording("quarters", "*/15 2 * * *", runs, h.clock, { timezone: "Europe/Paris" }),
      recording("listed", "0,15,30,45 2 * * *", runs, h.clock, { timezone: "Europe/Paris" }),
      recording("utc", "*/15 2 * * *", runs, h.clock),
    ],
  }).start();
  const warnings = h.events.filter((e) => e.type === "warning") as {
    scheduleId: string;
    message: string;
  }[];
  assert.deepEqual(warnings.map((w) => w.scheduleId), ["quarters"]);
  assert.match(
    warnings[0].message,
    /^cron expression "\*\/15 2 \* \* \*" does not run at all on 2026-03-29 in Europe\/Paris: the clocks skip from 02:00 to 03:00 that night/,
  );
});

// ---------------------------------------------------------------------------
// Overlap

function blockingSchedule(
  overlap: "skip" | "queue",
  started: { tick: number; at: number; done: ReturnType<typeof deferred> }[],
  clock: FakeClock,
): Schedule {
  return {
    id: "slow",
    cron: "*/10 * * * * *",
    overlap,
    run: ({ tick }) => {
      const done = deferred();
      started.push({ tick, at: clock.now(), done });
      return done.promise;
    },
  };
}

Deno.test("Scheduler overlap skip: a tick that comes while the previous run runs is skipped", async () => {
  await using h = await harness();
  const started: { tick: number; at: number; done: ReturnType<typeof deferred> }[] = [];
  await h.scheduler({ schedules: [blockingSchedule("skip", started, h.clock)] }).start();
  await h.timers.advanceTo(T0 + 35 * SECOND);
  assert.deepEqual(started.map((s) => s.tick), [T0 + 10 * SECOND]);
  assert.deepEqual(h.skips("slow").map((s) => [s.tick, s.reason]), [
    [T0 + 20 * SECOND, "overlap"],
    [T0 + 30 * SECOND, "overlap"],
  ]);
  started[0].done.resolve();
  await h.timers.advanceTo(T0 + 40 * SECOND);
  assert.deepEqual(started.map((s) => s.tick), [T0 + 10 * SECOND, T0 + 40 * SECOND]);
  started[1].done.resolve();
  await h.timers.settle();
  // The skipped ticks were never leased nor marked done.
  const leases = new TickLeases(await h.runtime.store("main"), { runnerId: "x" });
  assert.deepEqual((await leases.history("slow")).map((d) => d.tick), [
    T0 + 10 * SECOND,
    T0 + 40 * SECOND,
  ]);
});

Deno.test("Scheduler overlap queue: one tick waits for the current run, later ones are skipped", async () => {
  await using h = await harness();
  const started: { tick: number; at: number; done: ReturnType<typeof deferred> }[] = [];
  await h.scheduler({ schedules: [blockingSchedule("queue", started, h.clock)] }).start();
  await h.timers.advanceTo(T0 + 35 * SECOND);
  assert.deepEqual(started.map((s) => s.tick), [T0 + 10 * SECOND]);
  assert.deepEqual(
    h.events.filter((e) => e.type === "tick.queue").map((e) => (e as { tick: number }).tick),
    [T0 + 20 * SECOND],
  );
  assert.deepEqual(h.skips("slow").map((s) => [s.tick, s.reason]), [
    [T0 + 30 * SECOND, "overlap"],
  ]);
  started[0].done.resolve();
  await h.timers.settle();
  // The queued tick starts as soon as the first run ends, under its own tick's lease.
  assert.deepEqual(started.map((s) => [s.tick, s.at]), [
    [T0 + 10 * SECOND, T0 + 10 * SECOND],
    [T0 + 20 * SECOND, T0 + 35 * SECOND],
  ]);
  started[1].done.resolve();
  await h.timers.advanceTo(T0 + 40 * SECOND);
  assert.equal(started.length, 3);
  assert.equal(started[2].tick, T0 + 40 * SECOND);
  started[2].done.resolve();
  await h.timers.settle();
  assert.deepEqual(h.ends("slow").map((e) => e.tick), [10, 20, 40].map((s) => T0 + s * SECOND));
});

// ---------------------------------------------------------------------------
// Missed ticks

async function restartScenario(missed: "skip" | "run-once") {
  const h = await harness(Date.parse("2026-01-01T00:30:00Z"));
  const runs: { tick: number; at: number; runner: string }[] = [];
  const schedule = () => recording("hourly", "0 * * * *", runs, h.clock, { missed });
  const first = h.scheduler({ schedules: [schedule()], maxSleepMs: DAY });
  await first.start();
  await h.timers.advanceTo(Date.parse("2026-01-01T01:30:00Z"));
  await first.stop();
  assert.deepEqual(runs.map((r) => iso(r.tick)), ["2026-01-01T01:00:00.000Z"]);
  // Down from 01:30 to 04:30: the ticks at 02:00, 03:00 and 04:00 were missed.
  h.clock.set(Date.parse("2026-01-01T04:30:00Z"));
  const restarted = [
    h.scheduler({ schedules: [schedule()], maxSleepMs: DAY }),
    h.scheduler({ schedules: [schedule()], maxSleepMs: DAY }),
  ];
  await Promise.all(restarted.map((s) => s.start()));
  await h.timers.settle();
  return { h, runs };
}

Deno.test("Scheduler missed run-once: after a restart, one catch-up tick runs (once across runners)", async () => {
  const { h, runs } = await restartScenario("run-once");
  await using _ = h;
  assert.deepEqual(runs.map((r) => [iso(r.tick), iso(r.at)]), [
    ["2026-01-01T01:00:00.000Z", "2026-01-01T01:00:00.000Z"],
    ["2026-01-01T04:00:00.000Z", "2026-01-01T04:30:00.000Z"],
  ]);
  const catchUp = h.ends("hourly").at(-1)!;
  assert.equal(catchUp.catchUp, true);
  await h.timers.advanceTo(Date.parse("2026-01-01T05:00:00Z"));
  assert.deepEqual(runs.map((r) => iso(r.tick)).slice(2), ["2026-01-01T05:00:00.000Z"]);
});

Deno.test("Scheduler missed skip: after a restart, missed ticks are reported and not run", async () => {
  const { h, runs } = await restartScenario("skip");
  await using _ = h;
  assert.deepEqual(runs.map((r) => iso(r.tick)), ["2026-01-01T01:00:00.000Z"]);
  const missed = h.skips("hourly").filter((s) => s.reason === "missed");
  assert.deepEqual(missed.map((s) => iso(s.tick)), [
    "2026-01-01T04:00:00.000Z",
    "2026-01-01T04:00:00.000Z",
  ]);
  await h.timers.advanceTo(Date.parse("2026-01-01T05:00:00Z"));
  assert.deepEqual(runs.map((r) => iso(r.tick)), [
    "2026-01-01T01:00:00.000Z",
    "2026-01-01T05:00:00.000Z",
  ]);
});

Deno.test("Scheduler missed skip: a tick another runner is running is not reported as missed", async () => {
  await using h = await harness(Date.parse("2026-01-01T00:30:00Z"));
  const done = deferred();
  const runs: string[] = [];
  const schedule = (): Schedule => ({
    id: "hourly",
    cron: "0 * * * *",
    run: ({ runnerId }) => {
      runs.push(runnerId);
      return done.promise;
    },
  });
  await h.scheduler({ schedules: [schedule()], maxSleepMs: DAY }).start();
  await h.timers.advanceTo(Date.parse("2026-01-01T01:10:00Z"));
  await h.scheduler({ schedules: [schedule()], maxSleepMs: DAY }).start();
  await h.timers.settle();
  assert.deepEqual(runs, ["runner-1"]);
  assert.deepEqual(h.skips("hourly"), []);
  done.resolve();
});

Deno.test("Scheduler records a baseline the first time, so nothing counts as missed before it", async () => {
  await using h = await harness(Date.parse("2026-01-01T10:30:00Z"));
  const runs: { tick: number; at: number; runner: string }[] = [];
  await h.scheduler({
    schedules: [recording("hourly", "0 * * * *", runs, h.clock, { missed: "run-once" })],
  }).start();
  await h.timers.settle();
  assert.deepEqual(runs, []);
  const leases = new TickLeases(await h.runtime.store("main"), { runnerId: "x" });
  assert.deepEqual(await leases.last("hourly"), {
    tick: Date.parse("2026-01-01T10:30:00Z"),
    status: "baseline",
    runner: "runner-1",
    runId: null,
    at: Date.parse("2026-01-01T10:30:00Z"),
  });
});

Deno.test("Scheduler wakes late: it runs the latest due tick and reports the older ones as late", async () => {
  await using h = await harness();
  const runs: { tick: number; at: number; runner: string }[] = [];
  const scheduler = h.scheduler({ schedules: [recording("s", "* * * * * *", runs, h.clock)] });
  await scheduler.start();
  await h.timers.advanceTo(T0 + 1 * SECOND);
  // The event loop was blocked for 3.5 s: no sleeper woke in between.
  h.clock.set(T0 + 4500);
  await h.timers.advanceTo(T0 + 4500);
  assert.deepEqual(runs.map((r) => r.tick), [T0 + 1000, T0 + 4000]);
  assert.deepEqual(h.skips("s").map((s) => [s.tick, s.reason]), [[T0 + 2000, "late"]]);
});

// ---------------------------------------------------------------------------
// Jitter

Deno.test("Scheduler jitter delays each run by random * jitter, within [0, jitter)", async () => {
  await using h = await harness();
  const runs: { tick: number; at: number; runner: string }[] = [];
  const randoms = [0, 0.5, 0.9999];
  await h.scheduler({
    schedules: [recording("j", "* * * * *", runs, h.clock, { jitterMs: 30 * SECOND })],
    random: () => randoms.shift()!,
  }).start();
  await h.timers.advanceTo(T0 + 3 * MINUTE + 59 * SECOND);
  assert.deepEqual(runs.map((r) => [r.tick, r.at - r.tick]), [
    [T0 + 1 * MINUTE, 0],
    [T0 + 2 * MINUTE, 15_000],
    [T0 + 3 * MINUTE, 29_997],
  ]);
  for (const run of runs) assert.ok(run.at - run.tick >= 0 && run.at - run.tick < 30 * SECOND);
});

Deno.test("Scheduler stop() during a jitter wait skips the tick without taking its lease", async () => {
  await using h = await harness();
  const runs: { tick: number; at: number; runner: string }[] = [];
  const scheduler = h.scheduler({
    schedules: [recording("j", "* * * * *", runs, h.clock, { jitterMs: 30 * SECOND })],
    random: () => 0.5,
  });
  await scheduler.start();
  await h.timers.advanceTo(T0 + MINUTE + SECOND);
  assert.equal(scheduler.running, 1);
  await scheduler.stop();
  assert.deepEqual(runs, []);
  assert.deepEqual(h.skips("j").map((s) => s.reason), ["stopping"]);
  const store = await h.runtime.store("main");
  assert.equal(await store.count(["flowstate", "scheduler", "lease"]), 0);
});

// ---------------------------------------------------------------------------
// Failures

Deno.test("Scheduler: work that throws is recorded as failed and the next tick still runs", async () => {
  await using h = await harness();
  let n = 0;
  await h.scheduler({
    schedules: [{
      id: "flaky",
      cron: "*/10 * * * * *",
      run: () => {
        if (++n === 1) throw new Error("disk on fire");
      },
    }],
  }).start();
  await h.timers.advanceTo(T0 + 20 * SECOND);
  assert.deepEqual(h.ends("flaky").map((e) => [e.status, e.error]), [
    ["failed", "disk on fire"],
    ["succeeded", null],
  ]);
  const leases = new TickLeases(await h.runtime.store("main"), { runnerId: "x" });
  assert.deepEqual((await leases.history("flaky")).map((d) => d.done.status), [
    "failed",
    "succeeded",
  ]);
});

Deno.test("Scheduler: a job that fails is recorded as a failed run, and the scheduler goes on", async () => {
  await using h = await harness();
  let calls = 0;
  const job = defineJob({
    name: "boom",
    description: "fails the first time",
    optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (v) => ({ value: v }) } },
    run: () => {
      if (++calls === 1) throw new Error("no space left");
      return { ok: true };
    },
  });
  await h.scheduler({
    schedules: [{
      id: "job:boom",
      cron: "*/10 * * * * *",
      run: ({ signal }) => runJob(h.runtime, job, { signal, progress: "quiet" }),
    }],
  }).start();
  await h.timers.advanceTo(T0 + 10 * SECOND);
  await until(() => h.ends().length === 1, "the first tick");
  await h.timers.advanceTo(T0 + 20 * SECOND);
  await until(() => h.ends().length === 2, "the second tick");
  assert.deepEqual(h.ends().map((e) => e.status), ["failed", "succeeded"]);
  const records = await h.runtime.records();
  const { runs } = await records.listRunSummaries({ flowId: "job:boom" });
  assert.deepEqual(runs.map((r) => r.status).sort(), ["failed", "succeeded"]);
  assert.equal(h.ends()[0].runId, runs.find((r) => r.status === "failed")!.id);
  assert.equal(h.ends()[0].error, "no space left");
});

// ---------------------------------------------------------------------------
// Several runners

Deno.test("Scheduler: two runners on one store and one clock run each tick exactly once", async () => {
  await using h = await harness();
  const runs: { tick: number; at: number; runner: string }[] = [];
  let slowTick = -1;
  // Runner 1's run of the 30 s tick is slow, so runner 2 must take the 40 s tick.
  const slow = deferred();
  const schedule = (): Schedule => ({
    id: "shared",
    cron: "*/10 * * * * *",
    run: async ({ tick, runnerId }) => {
      runs.push({ tick, at: h.clock.now(), runner: runnerId });
      if (tick === T0 + 30 * SECOND && runnerId === "runner-1") {
        slowTick = tick;
        await slow.promise;
      }
    },
  });
  const a = h.scheduler({ schedules: [schedule()] });
  const b = h.scheduler({ schedules: [schedule()] });
  await Promise.all([a.start(), b.start()]);
  await h.timers.advanceTo(T0 + 2 * MINUTE);
  slow.resolve();
  await h.timers.settle();
  const ticks = runs.map((r) => r.tick).sort((x, y) => x - y);
  assert.deepEqual(ticks, Array.from({ length: 12 }, (_, i) => T0 + (i + 1) * 10 * SECOND));
  assert.equal(new Set(ticks).size, ticks.length, "no tick ran twice");
  assert.equal(slowTick, T0 + 30 * SECOND, "runner 1 won the 30 s tick and was slow");
  assert.deepEqual([...new Set(runs.map((r) => r.runner))].sort(), ["runner-1", "runner-2"]);
  // For every tick, the runner that did not run it reported why.
  for (const tick of ticks) {
    const skips = h.skips("shared").filter((s) => s.tick === tick);
    assert.equal(skips.length, 1, `one skip at ${iso(tick)}`);
    assert.ok(["leased", "done", "overlap"].includes(skips[0].reason));
  }
  assert.ok(runs.filter((r) => r.tick > slowTick).every((r) => r.runner === "runner-2"));
});

Deno.test("Scheduler: a crashed runner's tick is taken over after its lease lapses, only if never completed", async () => {
  await using h = await harness(Date.parse("2026-01-01T00:30:00Z"));
  const runs: { tick: number; runner: string }[] = [];
  const hang = deferred();
  const schedule = (): Schedule => ({
    id: "hourly",
    cron: "0 * * * *",
    missed: "run-once",
    run: async ({ tick, runnerId }) => {
      runs.push({ tick, runner: runnerId });
      // Runner 1 completes 01:00 and hangs forever in 02:00 (it "crashed").
      if (runnerId === "runner-1" && iso(tick) === "2026-01-01T02:00:00.000Z") await hang.promise;
    },
  });
  // Runner 1 renews its lease with timers of its own, frozen after the crash.
  const frozenClockTimers = manualTimers(h.clock);
  const crashed = h.scheduler({
    schedules: [schedule()],
    leaseMs: 5 * MINUTE,
    timers: frozenClockTimers,
    maxSleepMs: DAY,
  });
  await crashed.start();
  await frozenClockTimers.advanceTo(Date.parse("2026-01-01T02:00:00Z"));
  assert.deepEqual(runs.map((r) => iso(r.tick)), [
    "2026-01-01T01:00:00.000Z",
    "2026-01-01T02:00:00.000Z",
  ]);
  // A restart while the crashed runner's lease still holds: the tick is leased, not run.
  h.clock.set(Date.parse("2026-01-01T02:03:00Z"));
  const tooEarly = h.scheduler({ schedules: [schedule()], leaseMs: 5 * MINUTE });
  await tooEarly.start();
  await h.timers.settle();
  await tooEarly.stop();
  assert.equal(runs.length, 2);
  assert.deepEqual(h.skips("hourly").map((s) => [iso(s.tick), s.reason, s.holder]), [
    ["2026-01-01T02:00:00.000Z", "leased", "runner-1"],
  ]);
  // After the lease lapsed: the never-completed 02:00 tick runs again; 01:00 (done) never does.
  h.clock.set(Date.parse("2026-01-01T02:06:00Z"));
  const takeover = h.scheduler({ schedules: [schedule()], leaseMs: 5 * MINUTE });
  await takeover.start();
  await h.timers.settle();
  assert.deepEqual(runs.map((r) => [iso(r.tick), r.runner]), [
    ["2026-01-01T01:00:00.000Z", "runner-1"],
    ["2026-01-01T02:00:00.000Z", "runner-1"],
    ["2026-01-01T02:00:00.000Z", "runner-3"],
  ]);
  const leases = new TickLeases(await h.runtime.store("main"), { runnerId: "x" });
  assert.deepEqual((await leases.history("hourly")).map((d) => [iso(d.tick), d.done.runner]), [
    ["2026-01-01T01:00:00.000Z", "runner-1"],
    ["2026-01-01T02:00:00.000Z", "runner-3"],
  ]);
  hang.resolve();
  await frozenClockTimers.advance(0);
});

// ---------------------------------------------------------------------------
// Stopping

Deno.test("Scheduler stop() waits for running work within the grace period", async () => {
  await using h = await harness();
  const done = deferred();
  const scheduler = h.scheduler({
    schedules: [{ id: "s", cron: "*/10 * * * * *", run: () => done.promise }],
  });
  await scheduler.start();
  await h.timers.advanceTo(T0 + 10 * SECOND);
  let stopped = false;
  const stopping = scheduler.stop({ graceMs: 30 * SECOND }).then((r) => {
    stopped = true;
    return r;
  });
  await h.timers.advance(5 * SECOND);
  assert.equal(stopped, false);
  done.resolve();
  assert.deepEqual(await stopping, { cancelled: 0 });
  assert.deepEqual(h.ends("s").map((e) => e.status), ["succeeded"]);
  // No tick is taken after stop().
  await h.timers.advanceTo(T0 + MINUTE);
  assert.equal(h.ends("s").length, 1);
});

Deno.test("Scheduler stop() cancels work still running after the grace period; it records itself as cancelled", async () => {
  await using h = await harness();
  const job = defineJob({
    name: "endless",
    description: "runs until cancelled",
    optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (v) => ({ value: v }) } },
    run: (ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => reject(new Error("stopped at a safe point")))
      ),
  });
  const scheduler = h.scheduler({
    schedules: [{
      id: "job:endless",
      cron: "*/10 * * * * *",
      run: ({ signal }) => runJob(h.runtime, job, { signal, progress: "quiet" }),
    }],
  });
  await scheduler.start();
  await h.timers.advanceTo(T0 + 10 * SECOND);
  await until(() => h.events.some((e) => e.type === "tick.start"), "the tick to start");
  const stopping = scheduler.stop({ graceMs: 5 * SECOND });
  await h.timers.advance(5 * SECOND);
  assert.deepEqual(await stopping, { cancelled: 1 });
  assert.deepEqual(h.ends().map((e) => e.status), ["cancelled"]);
  const { runs } = await (await h.runtime.records()).listRunSummaries({ flowId: "job:endless" });
  assert.deepEqual(runs.map((r) => r.status), ["cancelled"]);
  // A cancelled tick is released, not marked done: a run-once restart may run it again.
  const leases = new TickLeases(await h.runtime.store("main"), { runnerId: "x" });
  assert.equal(await leases.isDone("job:endless", T0 + 10 * SECOND), false);
  const store = await h.runtime.store("main");
  assert.equal(await store.count(["flowstate", "scheduler", "lease"]), 0);
});

/**
 * Make the store's atomic commits never answer while `hung()` holds (a store
 * call stuck after a connection loss, as postgres's was).
 */
async function hangCommits(runtime: Runtime, hung: () => boolean): Promise<void> {
  const store = await runtime.store("main");
  const atomic = store.atomic.bind(store);
  store.atomic = () => {
    const op = atomic();
    if (hung()) op.commit = () => new Promise(() => {});
    return op;
  };
}

Deno.test("Scheduler: a tick whose lease the store never answers is given up after the lease's lifetime; the schedule runs again", async () => {
  await using h = await harness();
  let hung = true;
  await hangCommits(h.runtime, () => hung);
  const runs: { tick: number; at: number; runner: string }[] = [];
  const scheduler = h.scheduler({ schedules: [recording("s", "*/10 * * * * *", runs, h.clock)] });
  await scheduler.start();
  await h.timers.advanceTo(T0 + 10 * SECOND);
  // The tick at 10 s waits for its lease: the next ones are skipped (overlap)…
  await h.timers.advanceTo(T0 + 30 * SECOND);
  assert.ok(h.skips("s").some((e) => e.reason === "overlap"));
  hung = false;
  // …until the lease's lifetime (60 s) has passed: then it is given up, and the next tick runs.
  await h.timers.advanceTo(T0 + 80 * SECOND);
  await until(() => runs.length > 0, "a tick after the one whose lease never came");
  assert.ok(runs[0].tick >= T0 + 80 * SECOND, `ran ${iso(runs[0].tick)}`);
  const error = h.events.find((e) => e.type === "error");
  assert.match(
    error?.type === "error" ? error.message : "",
    /^Cannot take the lease of s at 2026-01-01T00:00:10\.000Z: the store did not answer within the lease's lifetime \(60000 ms\)/,
  );
});

Deno.test("Scheduler stop(): the grace period's cancel ends a tick stuck in a store call", async () => {
  await using h = await harness();
  let hung = false;
  await hangCommits(h.runtime, () => hung);
  const runs: { tick: number; at: number; runner: string }[] = [];
  const scheduler = h.scheduler({ schedules: [recording("s", "*/10 * * * * *", runs, h.clock)] });
  await scheduler.start();
  hung = true;
  await h.timers.advanceTo(T0 + 10 * SECOND);
  assert.equal(scheduler.running, 1);
  let stopped = false;
  const stopping = scheduler.stop({ graceMs: 5 * SECOND }).then((r) => {
    stopped = true;
    return r;
  });
  await h.timers.advance(5 * SECOND);
  await until(() => stopped, "stop() to end the stuck tick");
  assert.deepEqual(await stopping, { cancelled: 1 });
  assert.equal(runs.length, 0);
  assert.ok(
    h.events.some((e) =>
      e.type === "error" &&
      e.message.endsWith(
        "the store did not answer before the grace period ended; " +
          "given up (a lease left behind lapses by itself)",
      )
    ),
  );
});

Deno.test("Scheduler renews the lease of a long run so no other runner takes the tick", async () => {
  await using h = await harness();
  const done = deferred();
  const runs: string[] = [];
  const schedule = (): Schedule => ({
    id: "long",
    cron: "0 * * * *",
    missed: "run-once",
    run: ({ runnerId }) => {
      runs.push(runnerId);
      return runnerId === "runner-1" ? done.promise : undefined;
    },
  });
  await h.scheduler({ schedules: [schedule()], leaseMs: MINUTE, maxSleepMs: DAY }).start();
  await h.timers.advanceTo(T0 + HOUR + 10 * MINUTE);
  // Ten minutes into the run, a restarting runner tries to catch the tick up: still leased.
  await h.scheduler({ schedules: [schedule()], leaseMs: MINUTE, maxSleepMs: DAY }).start();
  await h.timers.settle();
  assert.deepEqual(runs, ["runner-1"]);
  assert.equal(h.skips("long").at(-1)?.reason, "leased");
  done.resolve();
  await h.timers.settle();
  assert.deepEqual(h.ends("long").map((e) => e.status), ["succeeded"]);
});

/**
 * A per-second schedule "s" that runner-1 runs (leaseMs 1 s, historyCount 5: a prune window of
 * about 15 ticks) while a runner "dead" holds its tick at T0 + 1 s, renewing it for 20 s; then
 * "dead" stops renewing (it died) and runner-1 stops if `stopAfter`.
 */
async function heldPastPruneWindow(
  h: Harness,
  policy: "skip" | "rerun",
  stopAfter: boolean,
) {
  const store = await h.runtime.store("main");
  const t0 = T0 + SECOND;
  const dead = new TickLeases(store, { runnerId: "dead", leaseMs: SECOND, clock: h.clock });
  const held = await dead.acquire("s", t0);
  assert.ok(held.ok);
  if (stopAfter) assert.ok(await held.lease.recordRun("deadrun0000000000000"));
  const ran: number[] = [];
  const schedules: Schedule[] = [{
    id: "s",
    cron: "* * * * * *",
    abandoned: policy,
    run: ({ tick }) => void ran.push(tick),
  }];
  const options = { leaseMs: SECOND, historyCount: 5, schedules };
  const b = h.scheduler(options);
  await b.start();
  for (let i = 0; i < 80; i++) {
    assert.ok(await held.lease.renew());
    await h.timers.advance(SECOND / 4);
  }
  const leases = new TickLeases(store, { runnerId: "x" });
  // 20 ticks after it completed (past the prune window): it is still not "done".
  assert.equal(await leases.state("s", t0), "leased");
  assert.ok((await leases.history("s")).length >= 20, "markers after it are kept");
  if (stopAfter) {
    const stopping = b.stop();
    await h.timers.advance(0);
    await stopping;
  }
  return { t0, ran, leases, options };
}

Deno.test("Scheduler abandoned rerun: a watched tick held longer than the prune window is taken over when its runner dies", async () => {
  await using h = await harness(T0 + 1500);
  const { t0, ran, leases } = await heldPastPruneWindow(h, "rerun", false);
  await h.timers.advance(3 * SECOND); // its lease lapses
  await until(() => ran.includes(t0), "the held tick to run again");
  assert.deepEqual(
    h.events.flatMap((e) => e.type === "tick.abandoned" ? [[e.tick, e.runner, e.action]] : []),
    [[t0, "dead", "rerun"]],
  );
  await h.timers.advance(3 * SECOND);
  assert.equal(ran.filter((t) => t === t0).length, 1);
  assert.deepEqual(
    h.ends("s").filter((e) => e.tick === t0).map((e) => [e.status, e.catchUp]),
    [["succeeded", true]],
  );
  // Once it is done, pruning goes on past it.
  await h.timers.advance(20 * SECOND);
  assert.ok((await leases.history("s")).length < 20);
  assert.equal(await leases.state("s", t0), "done");
});

Deno.test("Scheduler abandoned: a runner started after a tick held past the prune window lapsed takes it over from its running marker", async () => {
  await using h = await harness(T0 + 1500);
  const { t0, leases, options } = await heldPastPruneWindow(h, "skip", true);
  await h.timers.advance(3 * SECOND); // nobody watches: its lease lapses
  assert.equal(await leases.state("s", t0), "free");
  await h.scheduler(options).start();
  await h.timers.settle();
  assert.deepEqual(
    h.events.flatMap((e) => e.type === "tick.abandoned" ? [[e.tick, e.runner, e.action]] : []),
    [[t0, "dead", "skip"]],
  );
  assert.deepEqual(await leases.running("s"), [], "the running marker is gone with the tick done");
  assert.equal((await leases.history("s")).find((d) => d.tick === t0)?.done.status, "failed");
});

// ---------------------------------------------------------------------------
// Schedules from the config

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-scheduler-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("Scheduler runs a scheduled flow from the config and records its runs", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "count.flow.yaml"),
      [
        "id: count",
        'schedule: "*/10 * * * * *"',
        "nodes:",
        "  - { id: inc, type: state.increment, with: { scope: global, key: n } }",
      ].join("\n"),
    );
    await using h = await harness(T0 + 1, { flows: [join(dir, "count.flow.yaml")] });
    await h.scheduler().start();
    for (const s of [10, 20, 30]) {
      await h.timers.advanceTo(T0 + s * SECOND);
      await until(() => h.ends("flow:count").length === s / 10, `the tick at ${s}s`);
    }
    assert.deepEqual(h.ends("flow:count").map((e) => e.status), Array(3).fill("succeeded"));
    assert.equal((await (await h.runtime.store("main")).get(["global", "n"]))?.value, 3);
    const { runs } = await (await h.runtime.records()).listRunSummaries({ flowId: "count" });
    assert.equal(runs.length, 3);
  });
});

Deno.test("Scheduler rejects duplicate schedule ids and bad expressions", async () => {
  await using h = await harness();
  const run = () => {};
  await assert.rejects(
    () =>
      h.scheduler({
        schedules: [{ id: "a", cron: "* * * * *", run }, { id: "a", cron: "* * * * *", run }],
      }).start(),
    /two schedules have the id "a"/,
  );
  await assert.rejects(
    () => h.scheduler({ schedules: [{ id: "b", cron: "* * *", run }] }).start(),
    /schedule "b": Cannot use cron expression/,
  );
});

// ---------------------------------------------------------------------------
// A runner that dies while running a tick

/** A run this test's schedules recorded. */
interface RecordedRun {
  tick: string;
  runner: string;
  runId: string;
  recorder: RunRecorder;
}

/**
 * An hourly schedule whose work records a run (heartbeats on `timers`),
 * reports it, and, on runner-1, never ends until `hang` resolves.
 */
function hourlyRecorded(
  h: Harness,
  records: Records,
  timers: ManualTimers,
  hang: Promise<void>,
  runs: RecordedRun[],
  extra: Partial<Schedule>,
): Schedule {
  return {
    id: "hourly",
    cron: "0 * * * *",
    ...extra,
    run: async ({ tick, runnerId, started }) => {
      const recorder = await RunRecorder.start(records, h.clock, {
        flowId: "hourly",
        flowVersion: "job",
        inputs: {},
      }, { timers });
      started?.(recorder.id);
      runs.push({ tick: iso(tick), runner: runnerId, runId: recorder.id, recorder });
      if (runnerId === "runner-1") await hang; // "killed": never returns
      return await recorder.finish({ status: "succeeded", outputs: {}, nodes: {}, error: null });
    },
  };
}

/**
 * Runner 1 takes the 01:00 tick, records a run, writes it into the lease, and
 * "dies" (its timers freeze: no lease renewal, no heartbeat); runner 2 saw
 * the tick leased and watches it. Returns what runner 2 did.
 */
async function deadRunnerTick(policy: "skip" | "rerun", options: { beating?: boolean } = {}) {
  const h = await harness(Date.parse("2026-01-01T00:30:00Z"));
  const records = await h.runtime.records();
  const hang = deferred();
  const deadTimers = manualTimers(h.clock);
  const runs: RecordedRun[] = [];
  const schedule = (timers: ManualTimers) =>
    hourlyRecorded(h, records, timers, hang.promise, runs, { abandoned: policy });
  const dead = h.scheduler({
    // With `beating`, its run's heartbeat goes on (its process lives, its lease lapses).
    schedules: [schedule(options.beating ? h.timers : deadTimers)],
    leaseMs: 5 * MINUTE,
    timers: deadTimers,
    maxSleepMs: DAY,
  });
  const survivor = h.scheduler({ schedules: [schedule(h.timers)], leaseMs: 5 * MINUTE });
  await Promise.all([dead.start(), survivor.start()]);
  await deadTimers.advanceTo(Date.parse("2026-01-01T01:00:00Z"));
  await until(() => runs.length === 1, "runner 1 to start its run");
  const deadRunId = runs[0].runId;
  // Its process "dies": a run this process still runs is never abandoned here (its process is
  // alive), so runner 1 gives it up, as a dead process would.
  if (!options.beating) await runs[0].recorder.close();
  await h.timers.advanceTo(Date.parse("2026-01-01T01:00:00Z"));
  assert.deepEqual(h.skips("hourly").map((s) => [iso(s.tick), s.reason, s.holder]), [
    ["2026-01-01T01:00:00.000Z", "leased", "runner-1"],
  ]);
  // Before the lease lapses nothing happens: the run is left alone.
  await h.timers.advanceTo(Date.parse("2026-01-01T01:04:59Z"));
  assert.equal((await records.getRun(deadRunId))?.status, "running");
  assert.deepEqual(h.events.filter((e) => e.type === "tick.abandoned"), []);
  // After it lapsed (5 min after runner 1's last renewal at 01:00).
  await h.timers.advanceTo(Date.parse("2026-01-01T01:06:00Z"));
  const abandoned = h.events.filter((e) => e.type === "tick.abandoned");
  const leases = new TickLeases(await h.runtime.store("main"), { runnerId: "x" });
  const history = await leases.history("hourly");
  const result = { h, records, runs, deadRunId, abandoned, history };
  return {
    ...result,
    async [Symbol.asyncDispose]() {
      hang.resolve();
      await deadTimers.advance(0);
      await h[Symbol.asyncDispose]();
    },
  };
}

Deno.test("Scheduler abandoned skip: a dead runner's tick is recorded abandoned and done, not run again", async () => {
  await using t = await deadRunnerTick("skip");
  const run = await t.records.getRun(t.deadRunId);
  assert.equal(run?.status, "failed");
  assert.match(run?.error?.message ?? "", /^abandoned: no heartbeat/);
  assert.deepEqual(t.abandoned, [{
    type: "tick.abandoned",
    scheduleId: "hourly",
    tick: Date.parse("2026-01-01T01:00:00Z"),
    runner: "runner-1",
    runId: t.deadRunId,
    action: "skip",
  }]);
  assert.equal(t.runs.length, 1, "not run again");
  assert.deepEqual(
    t.history.map((d) => [iso(d.tick), d.done.runner, d.done.status, d.done.runId]),
    [
      ["2026-01-01T01:00:00.000Z", "runner-2", "failed", t.deadRunId],
    ],
  );
  // The next tick runs as usual.
  await t.h.timers.advanceTo(Date.parse("2026-01-01T02:00:00Z"));
  await until(() => t.runs.length === 2, "the 02:00 tick");
  assert.deepEqual(t.runs[1].tick, "2026-01-01T02:00:00.000Z");
});

Deno.test("Scheduler abandoned rerun: a dead runner's tick is recorded abandoned and run again", async () => {
  await using t = await deadRunnerTick("rerun");
  await until(() => t.h.ends("hourly").length === 1, "the re-run to end");
  assert.equal((await t.records.getRun(t.deadRunId))?.status, "failed");
  assert.deepEqual(t.abandoned.map((e) => e.type === "tick.abandoned" && e.action), ["rerun"]);
  assert.deepEqual(t.runs.map((r) => [r.tick, r.runner]), [
    ["2026-01-01T01:00:00.000Z", "runner-1"],
    ["2026-01-01T01:00:00.000Z", "runner-2"],
  ]);
  const end = t.h.ends("hourly")[0];
  assert.equal(end.status, "succeeded");
  assert.equal(end.catchUp, true);
  assert.equal((await t.records.getRun(end.runId!))?.status, "succeeded");
  const leases = new TickLeases(await t.h.runtime.store("main"), { runnerId: "x" });
  assert.deepEqual(
    (await leases.history("hourly")).map((d) => [iso(d.tick), d.done.runner, d.done.status]),
    [["2026-01-01T01:00:00.000Z", "runner-2", "succeeded"]],
  );
});

Deno.test("Scheduler abandoned: a run that still beats after its runner's lease lapsed is left alone until it stops", async () => {
  await using t = await deadRunnerTick("skip", { beating: true });
  assert.deepEqual(t.abandoned, [], "its heartbeat is fresh");
  assert.equal((await t.records.getRun(t.deadRunId))?.status, "running");
  await t.h.timers.advanceTo(Date.parse("2026-01-01T01:30:00Z"));
  assert.equal((await t.records.getRun(t.deadRunId))?.status, "running", "still beating");
  await t.runs[0].recorder.close(); // now its process dies
  await t.h.timers.advanceTo(Date.parse("2026-01-01T01:31:00Z"));
  assert.equal((await t.records.getRun(t.deadRunId))?.status, "failed");
  assert.deepEqual(
    t.h.events.flatMap((e) => e.type === "tick.abandoned" ? [[e.action, e.runId]] : []),
    [["skip", t.deadRunId]],
  );
});

Deno.test("Scheduler abandoned: a runner started after a dead runner's lease lapsed takes its tick over from the running marker", async () => {
  for (const policy of ["skip", "rerun"] as const) {
    await using h = await harness(Date.parse("2026-01-01T00:30:00Z"));
    const records = await h.runtime.records();
    const hang = deferred();
    const deadTimers = manualTimers(h.clock);
    const runs: RecordedRun[] = [];
    const schedule = (timers: ManualTimers) =>
      hourlyRecorded(h, records, timers, hang.promise, runs, {
        missed: "run-once",
        abandoned: policy,
      });
    const dead = h.scheduler({
      schedules: [schedule(deadTimers)],
      leaseMs: 5 * MINUTE,
      timers: deadTimers,
      maxSleepMs: DAY,
    });
    await dead.start();
    await deadTimers.advanceTo(Date.parse("2026-01-01T01:00:00Z"));
    await until(() => runs.length === 1, "runner 1 to start its run");
    await runs[0].recorder.close(); // its process "dies" (see deadRunnerTick)
    const leases = new TickLeases(await h.runtime.store("main"), { runnerId: "x" });
    // Nobody watched; the lease lapsed and is gone. A runner starts at 01:10.
    h.clock.set(Date.parse("2026-01-01T01:10:00Z"));
    assert.equal(await leases.state("hourly", Date.parse("2026-01-01T01:00:00Z")), "free");
    const restarted = h.scheduler({ schedules: [schedule(h.timers)], leaseMs: 5 * MINUTE });
    await restarted.start();
    await h.timers.settle();
    const dead1 = await records.getRun(runs[0].runId);
    assert.equal(dead1?.status, "failed", policy);
    assert.match(dead1?.error?.message ?? "", /^abandoned: no heartbeat/);
    assert.deepEqual(
      h.events.flatMap((e) => e.type === "tick.abandoned" ? [[e.action, e.runId]] : []),
      [[policy, runs[0].runId]],
    );
    if (policy === "rerun") await until(() => h.ends("hourly").length === 1, "the re-run");
    assert.deepEqual(
      runs.map((r) => r.runner),
      policy === "skip" ? ["runner-1"] : ["runner-1", "runner-2"],
    );
    assert.deepEqual(
      (await leases.history("hourly")).map((d) => [iso(d.tick), d.done.runner, d.done.status]),
      [["2026-01-01T01:00:00.000Z", "runner-2", policy === "skip" ? "failed" : "succeeded"]],
    );
    assert.deepEqual(await leases.running("hourly"), [], "the marker is gone with the tick done");
    hang.resolve();
    await deadTimers.advance(0);
  }
});
