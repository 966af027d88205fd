// A Scheduler whose runtime a program closes before stopping it: every tick used to fail with
// "store is closed", for ever; it now stops at the first such tick, saying why.
import assert from "node:assert/strict";
import { openRuntime } from "../mod.ts";
import { Scheduler, type SchedulerEvent } from "../scheduler.ts";
import { fakeClock, manualTimers } from "../testing.ts";
import { within } from "./_deadline.ts";

Deno.test("a scheduler whose runtime is closed under it stops at its next tick", async () => {
  const clock = fakeClock(Date.UTC(2026, 0, 1, 3, 0, 0, 500));
  const timers = manualTimers(clock);
  const rt = await openRuntime({ clock, config: { stores: { main: { plugin: "memory" } } } });
  const events: SchedulerEvent[] = [];
  const stopped = Promise.withResolvers<void>();
  let ran = 0;
  const scheduler = new Scheduler(rt, {
    clock,
    timers,
    schedules: [{ id: "every", cron: "* * * * * *", run: () => void ran++ }],
    onEvent: (event) => {
      events.push(event);
      if (event.type === "stop") stopped.resolve();
    },
  });
  await scheduler.start();
  await timers.advance(1_000);
  await timers.settle();
  assert.equal(ran, 1);
  await rt.close();
  for (let i = 0; i < 3; i++) {
    await timers.advance(1_000);
    await timers.settle();
  }
  await within(stopped.promise, "the scheduler's stop", {
    details: () => JSON.stringify(events.map((e) => e.type)),
  });
  const errors = events.filter((e) => e.type === "error");
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(
    (errors[0] as { message: string }).message,
    /^Cannot run every at .*store "main" is closed; the scheduler stops \(stop a scheduler before closing its runtime\)$/,
  );
  assert.equal(ran, 1);
  assert.deepEqual(await scheduler.stop(), { cancelled: 0 });
});

Deno.test("a tick that fails on a closed store of its own does not stop the scheduler", async () => {
  const clock = fakeClock(Date.UTC(2026, 0, 1, 3, 0, 0, 500));
  const timers = manualTimers(clock);
  await using rt = await openRuntime({ clock, config: { stores: { main: { plugin: "memory" } } } });
  const { openStore } = await import("../mod.ts");
  const own = await openStore({ plugin: "memory" });
  await own.close();
  const events: SchedulerEvent[] = [];
  await using scheduler = new Scheduler(rt, {
    clock,
    timers,
    schedules: [{ id: "every", cron: "* * * * * *", run: () => own.get(["k"]).then(() => {}) }],
    onEvent: (event) => void events.push(event),
  });
  await scheduler.start();
  for (let i = 0; i < 2; i++) {
    await timers.advance(1_000);
    await timers.settle();
  }
  const types = events.map((e) => e.type);
  assert.ok(!types.includes("stop"), JSON.stringify(types));
  assert.equal(types.filter((t) => t === "tick.start").length, 2, JSON.stringify(types));
});
