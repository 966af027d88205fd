/**
 * A queue worker, and the server's, when its records store cannot be reached
 * (its server down or starting), through mod.ts and the HTTP API, over a
 * plugin whose opening and calls fail with a `StoreUnavailableError` while
 * the test says it is down (no service needed; the same through the CLI on
 * PostgreSQL behind a proxy: tests/store_wait_pg_test.ts).
 *
 * - Unreachable at start: the worker waits (`waiting` events, 0.5 s doubling,
 *   status `waiting-for-store`), tells `start` only once the store answers,
 *   then works the queue; a stop while it waits ends it at once;
 *   `waitForStoreMs` bounds the wait. It used to fail for good at once.
 * - A refusal that waiting does not fix (`transient: false`), or another
 *   error, is fatal at once.
 * - A running worker whose store goes away backs off and goes on once it
 *   answers. It used to report an error every poll (twice a second).
 * - The server: `/health` says 503 with `worker.status` while its worker
 *   waits, and a route whose store cannot be reached answers 503
 *   `store_unavailable` naming it (it was a 500 `internal`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import {
  definePlugin,
  openRuntime,
  type Runtime,
  startWorker,
  StoreUnavailableError,
  type WorkerEvent,
} from "../mod.ts";
import { MemoryDriver } from "../plugins/memory/mod.ts";
import type { CommitRequest } from "../plugin.ts";
import { serve } from "../src/serve/server.ts";
import { hangSignal } from "./_deadline.ts";

/** How the test's store is down: its opening, its calls (and how an opening fails). */
interface Down {
  open: boolean;
  calls: boolean;
  /** The opening's error while `open` (default: a transient StoreUnavailableError). */
  openError?: () => Error;
  opens: number;
}

const unreachable = (what: string) =>
  new StoreUnavailableError(
    `${what}: cannot reach the test's server at 127.0.0.1:1: connection refused`,
    { store: "main", address: "127.0.0.1:1" },
  );

/** A plugin over one shared memory driver that fails as `down` says. */
function flakyPlugin(inner: MemoryDriver, down: Down) {
  const check = (what: string) => {
    if (down.calls) throw unreachable(what);
  };
  return definePlugin({
    name: "flaky-test",
    optionsSchema: z.strictObject({}),
    open: () => {
      down.opens++;
      if (down.open) throw down.openError?.() ?? unreachable('Cannot open store "main"');
      return {
        location: "flaky",
        capabilities: { atomicClear: true },
        get: (k: never) => (check("get"), inner.get(k)),
        list: (r: never) => (check("list"), inner.list(r)),
        commit: (req: CommitRequest) => (check("commit"), inner.commit(req)),
        close: () => {},
      };
    },
  });
}

const FLOW = "id: hi\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n";

/** A directory with the flow, a runtime over `down`'s store, and one enqueued run (while up). */
async function withQueued(
  down: Down,
  fn: (rt: Runtime, runId: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-store-wait-" });
  const inner = new MemoryDriver();
  try {
    await Deno.writeTextFile(join(dir, "hi.flow.yaml"), FLOW);
    let runId: string;
    {
      // Enqueued while the store answers, by a runtime of its own (another process, say).
      await using up = await openRuntime({
        cwd: dir,
        config: {
          stores: { main: { plugin: flakyPlugin(inner, { ...down, open: false, calls: false }) } },
        },
      });
      runId = (await up.enqueue("./hi.flow.yaml")).runId;
    }
    await using rt = await openRuntime({
      cwd: dir,
      config: { stores: { main: { plugin: flakyPlugin(inner, down) } } },
    });
    await fn(rt, runId, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Resolves once `check` holds, looked at every 20 ms; fails after a generous 60 s (a hang). */
async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${check}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("startWorker waits for a records store that cannot be reached at start, starts once it answers and works the queue", async () => {
  const down: Down = { open: true, calls: false, opens: 0 };
  await withQueued(down, async (rt, runId) => {
    const events: WorkerEvent[] = [];
    const worker = startWorker(rt, { onEvent: (e) => events.push(e) });
    await until(() => events.filter((e) => e.type === "waiting").length >= 3);
    assert.equal(worker.status, "waiting-for-store");
    assert.match(worker.error ?? "", /^cannot reach the test's server/);
    const waits = events.filter((e) => e.type === "waiting");
    assert.deepEqual(waits.slice(0, 3).map((e) => [e.attempt, e.retryInMs, e.starting]), [
      [1, 500, true],
      [2, 1000, true],
      [3, 2000, true],
    ]);
    assert.equal(waits[0].store, "main");
    assert.ok(!events.some((e) => e.type === "start"), "no start before the store answers");
    down.open = false;
    await until(() => events.some((e) => e.type === "end"));
    const types = events.map((e) => e.type).filter((t) => t !== "waiting");
    assert.deepEqual(types.slice(0, 4), ["reachable", "start", "claim", "end"]);
    assert.equal(worker.status, "running");
    assert.equal(worker.error, undefined);
    const end = events.find((e) => e.type === "end");
    assert.equal(end?.type === "end" && end.runId, runId);
    assert.equal(end?.type === "end" && end.status, "succeeded");
    await worker.stop();
    assert.equal(worker.status, "stopped");
  });
});

Deno.test("startWorker: a stop while it waits for its store ends it at once; waitForStoreMs bounds the wait", async () => {
  const down: Down = { open: true, calls: false, opens: 0 };
  await withQueued(down, async (rt) => {
    const events: WorkerEvent[] = [];
    const worker = startWorker(rt, { onEvent: (e) => events.push(e) });
    await until(() => events.some((e) => e.type === "waiting"));
    await worker.stop();
    assert.equal(worker.status, "stopped");
    assert.equal(worker.error, undefined);
    assert.deepEqual([...new Set(events.map((e) => e.type))], ["waiting", "stop"]);

    // waitForStoreMs: 0: the first failure is fatal, and says it waited.
    const bounded: WorkerEvent[] = [];
    const once = startWorker(rt, { waitForStoreMs: 0, onEvent: (e) => bounded.push(e) });
    await until(() => bounded.some((e) => e.type === "error"));
    assert.equal(once.status, "stopped");
    const fatal = bounded.find((e) => e.type === "error");
    assert.equal(fatal?.type === "error" && fatal.fatal, true);
    assert.match(
      fatal?.type === "error" ? fatal.message : "",
      /^the worker cannot start: Cannot open store "main": cannot reach .* \(still unreachable after waiting [\d.]+ s for it\)$/,
    );
    assert.ok(!bounded.some((e) => e.type === "waiting" || e.type === "start"));
    await once.stop();
    assert.throws(() => startWorker(rt, { waitForStoreMs: -1 }), /waitForStoreMs must be >= 0/);
  });
});

Deno.test("startWorker: an error that waiting does not fix (a refusal, a bad option) is fatal at once", async () => {
  for (
    const openError of [
      () =>
        new StoreUnavailableError(
          'Cannot open store "main": the server refused: database "nope" does not exist',
          { store: "main", transient: false },
        ),
      () => new Error("the option path is not a directory"),
    ]
  ) {
    const down: Down = { open: true, calls: false, opens: 0, openError };
    await withQueued(down, async (rt) => {
      const events: WorkerEvent[] = [];
      const worker = startWorker(rt, { onEvent: (e) => events.push(e) });
      await until(() => events.some((e) => e.type === "error"));
      assert.deepEqual(events.map((e) => e.type), ["error"]);
      assert.equal(down.opens, 1, "opened once, not again");
      assert.equal(worker.status, "stopped");
      assert.match(worker.error ?? "", /does not exist|not a directory/);
      await worker.stop();
      assert.match(worker.error ?? "", /does not exist|not a directory/, "kept after the stop");
    });
  }
});

Deno.test("a running worker whose records store goes away backs off, and works the queue again once it answers", async () => {
  const down: Down = { open: false, calls: false, opens: 0 };
  await withQueued(down, async (rt, first, dir) => {
    const events: WorkerEvent[] = [];
    const worker = startWorker(rt, { pollMs: 50, onEvent: (e) => events.push(e) });
    await until(() => events.some((e) => e.type === "end"));
    down.calls = true;
    await until(() => events.filter((e) => e.type === "waiting").length >= 3);
    assert.equal(worker.status, "waiting-for-store");
    const waits = events.filter((e) => e.type === "waiting");
    // Backing off (0.5 s doubling), not an error every poll (50 ms).
    assert.deepEqual(waits.slice(0, 3).map((e) => [e.attempt, e.retryInMs, e.starting]), [
      [1, 500, false],
      [2, 1000, false],
      [3, 2000, false],
    ]);
    assert.ok(!events.some((e) => e.type === "error"), JSON.stringify(events));
    down.calls = false;
    await until(() => events.some((e) => e.type === "reachable"));
    const back = events.find((e) => e.type === "reachable");
    assert.equal(back?.type === "reachable" && back.starting, false);
    assert.equal(back?.type === "reachable" && back.attempts >= 3, true);
    assert.equal(worker.status, "running");
    const second = (await rt.enqueue(join(dir, "hi.flow.yaml"))).runId;
    await until(() => events.some((e) => e.type === "end" && e.runId === second));
    const ends = events.flatMap((e) => e.type === "end" ? [[e.runId, e.status]] : []);
    assert.deepEqual(ends, [[first, "succeeded"], [second, "succeeded"]]);
    await worker.stop();
  });
});

Deno.test("serve: /health is 503 with the worker waiting for its store, a route whose store cannot be reached is 503 store_unavailable; both recover", async () => {
  const down: Down = { open: true, calls: false, opens: 0 };
  await withQueued(down, async (rt, runId) => {
    const events: WorkerEvent[] = [];
    await using server = await serve(rt, { port: 0, worker: { onEvent: (e) => events.push(e) } });
    await until(() => events.some((e) => e.type === "waiting"));
    const health = await fetch(new URL("/health", server.url), { signal: hangSignal() });
    assert.equal(health.status, 503);
    const body = await health.json();
    assert.equal(body.status, "unavailable");
    assert.equal(body.worker.status, "waiting-for-store");
    assert.match(body.worker.error, /^cannot reach the test's server/);
    assert.equal(body.stores.main.ok, false);

    const runs = await fetch(new URL(`/api/runs/${runId}`, server.url), { signal: hangSignal() });
    assert.equal(runs.status, 503);
    assert.equal(runs.headers.get("retry-after"), "5");
    const error = await runs.json();
    assert.equal(error.error.code, "store_unavailable");
    assert.equal(error.store, "main");
    assert.match(error.error.message, /^Store "main" is unavailable, try again later: /);

    down.open = false;
    await until(() => events.some((e) => e.type === "end"));
    const healthy = await fetch(new URL("/health", server.url), { signal: hangSignal() });
    assert.equal(healthy.status, 200);
    assert.deepEqual((await healthy.json()).worker, { status: "running" });
    const run = await fetch(new URL(`/api/runs/${runId}`, server.url), { signal: hangSignal() });
    assert.equal(run.status, 200);
    assert.equal((await run.json()).run.status, "succeeded");
  });
});
