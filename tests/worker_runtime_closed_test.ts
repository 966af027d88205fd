// A queue worker whose runtime a program closes before stopping the worker: it used to poll the
// closed records store for ever (an error event every poll, the process kept alive); it now
// stops, with one fatal error naming the cause, as a worker that cannot start does.
import assert from "node:assert/strict";
import { openRuntime, startWorker, type WorkerEvent } from "../mod.ts";
import { within } from "./_deadline.ts";

Deno.test("a worker whose runtime is closed under it stops, with one fatal error", async () => {
  const rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const events: WorkerEvent[] = [];
  const started = Promise.withResolvers<void>();
  const stopped = Promise.withResolvers<void>();
  const worker = startWorker(rt, {
    pollMs: 10,
    onEvent: (event) => {
      events.push(event);
      if (event.type === "start") started.resolve();
      if (event.type === "stop") stopped.resolve();
    },
  });
  await within(started.promise, "the worker's start");
  await rt.close();
  await within(stopped.promise, "the worker's stop after its runtime closed", {
    details: () => JSON.stringify(events.slice(0, 5)),
  });
  assert.equal(worker.status, "stopped");
  assert.match(worker.error ?? "", /store "main" is closed/);
  const errors = events.filter((e) => e.type === "error");
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.deepEqual(errors[0], {
    type: "error",
    message: `the worker stops: ${worker.error} (stop a worker before closing its runtime)`,
    fatal: true,
  });
  await worker.stop(); // the stop it made
  assert.equal(events.filter((e) => e.type === "stop").length, 1);
});
