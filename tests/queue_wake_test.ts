/**
 * A worker wakes when a delayed run it knows of comes due (a run put off
 * for its rate limit, a run enqueued with a delay), not at its next poll: a
 * worker of mod.ts (`startWorker`) whose poll is an hour, on a runtime whose
 * clock the test moves, sleeping on fake timers the test ends. Nothing
 * waits on elapsed time: each step awaits the worker's next sleep.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type Runtime, startWorker, type Timers } from "../mod.ts";
import { type FakeClock, fakeClock } from "../testing.ts";
import { within } from "./_deadline.ts";

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

interface Sleep {
  /** Its number: the sleeps the worker asked for, counted from 1. */
  n: number;
  /** End it (the time it was for has passed). */
  resolve: () => void;
}

/** Sleeps that end only when the test ends them (or the worker cuts them short). */
class FakeTimers implements Timers {
  #pending: Sleep[] = [];
  #waiters: (() => void)[] = [];
  /** Sleeps asked for so far. */
  count = 0;
  sleep(_ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const sleep = { n: ++this.count, resolve };
      signal?.addEventListener("abort", () => {
        this.#pending = this.#pending.filter((s) => s !== sleep);
        reject(signal.reason);
      }, { once: true });
      this.#pending.push(sleep);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }
  /**
   * The first sleep the worker asks for after sleep number `after`; the ones before it that
   * are still pending are ended on the way (the worker only goes round again: no poll is due).
   */
  async next(after: number): Promise<Sleep> {
    for (;;) {
      const found = this.#pending.find((s) => s.n > after);
      if (found !== undefined) return found;
      for (const s of this.#pending.splice(0)) s.resolve();
      await new Promise<void>((wake) => this.#waiters.push(wake));
    }
  }
}

/** What a test gets: the runtime, its clock, the worker's timers, and its runs' ends. */
interface OnFakeTime {
  rt: Runtime;
  clock: FakeClock;
  timers: FakeTimers;
  /** Resolves when run `runId` ended, with the number of sleeps asked for by then. */
  ended(runId: string): Promise<number>;
}

async function withWorkerOnFakeTime(
  flow: string,
  concurrency: number,
  fn: (t: OnFakeTime) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-qwake-" });
  try {
    await Deno.writeTextFile(join(dir, "f.flow.yaml"), flow);
    const clock = fakeClock(T0);
    const config = { stores: { main: { plugin: "memory" as const } }, flows: [dir] };
    await using rt = await openRuntime({ cwd: dir, clock, config });
    const timers = new FakeTimers();
    const ends = new Map<string, PromiseWithResolvers<number>>();
    const endOf = (id: string) => {
      if (!ends.has(id)) ends.set(id, Promise.withResolvers());
      return ends.get(id)!;
    };
    const started = Promise.withResolvers<void>();
    const worker = startWorker(rt, {
      concurrency,
      pollMs: HOUR, // no poll while the test runs: only wake-ups
      timers,
      onEvent: (e) => {
        if (e.type === "start") started.resolve();
        // Told just before the end wakes the worker: its next sleep follows a poll.
        if (e.type === "end") endOf(e.runId).resolve(timers.count);
      },
    });
    try {
      await within(started.promise, "the started event");
      await fn({ rt, clock, timers, ended: (id) => endOf(id).promise });
    } finally {
      await worker.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const PLAIN = "id: f\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n";

const RATED = `id: f
queue: { rate: "1/1m" }
nodes:
  - { id: a, type: log, with: { message: hi } }
`;

for (const concurrency of [1, 2]) {
  Deno.test(`queue wake: a run put off for its rate limit starts when its window has room, not at the next poll (concurrency ${concurrency})`, async () => {
    await withWorkerOnFakeTime(RATED, concurrency, async ({ rt, clock, timers, ended }) => {
      const records = await rt.records();
      const first = (await rt.enqueue("f")).runId;
      const second = (await rt.enqueue("f")).runId;
      // The first runs and ends; the second is put off until the window has room.
      const sleep = await timers.next(await ended(first));
      const put = await records.getRun(second);
      assert.equal(put?.status, "queued");
      assert.equal(put?.queue?.waiting, "rate");
      assert.equal(put?.queue?.runAt, T0 + 60_000);
      // The window has room: the worker's sleep ends (no poll is due for an hour).
      clock.set(T0 + 60_000);
      sleep.resolve();
      await timers.next(sleep.n);
      assert.notEqual((await records.getRun(second))?.status, "queued", "claimed when due");
    });
  });
}

/**
 * Enqueue a run due in 30 s on an idle worker (the enqueue wakes it: it finds the run not yet
 * due and sleeps), then move the clock to `at` and end that sleep: the run as the worker's next
 * sleep finds it.
 */
async function delayedRunAfterWake({ rt, clock, timers }: OnFakeTime, at: number) {
  const records = await rt.records();
  const idle = await timers.next(0);
  const { runId } = await rt.enqueue("f", { delay: "30s" });
  const sleep = await timers.next(idle.n);
  assert.equal((await records.getRun(runId))?.status, "queued");
  clock.set(at);
  sleep.resolve();
  await timers.next(sleep.n);
  return await records.getRun(runId);
}

Deno.test("queue wake: a run enqueued with a delay starts at its time, not at the next poll", async () => {
  await withWorkerOnFakeTime(PLAIN, 1, async (t) => {
    const run = await delayedRunAfterWake(t, T0 + 30_000);
    assert.notEqual(run?.status, "queued", "claimed when due");
  });
});

Deno.test("queue wake: a sleep that ends before a delayed run is due starts nothing", async () => {
  await withWorkerOnFakeTime(PLAIN, 1, async (t) => {
    const run = await delayedRunAfterWake(t, T0 + 29_999);
    assert.equal(run?.status, "queued");
    assert.equal(run?.queue?.attempt, 0, "never early");
  });
});
