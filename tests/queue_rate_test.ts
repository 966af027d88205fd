/**
 * A flow's `queue: { rate }` through the public surface: real workers of
 * mod.ts (`startWorker`) on a store whose clock the test moves, two
 * `flowstate worker` processes sharing a PostgreSQL database (when
 * FLOWSTATE_TEST_POSTGRES_URL is set), and the CLI (`validate`'s errors at
 * file:line:column and its summary, `runs show` of a run waiting for its
 * rate). Claim times are the ones the store's clock recorded; waits are on
 * recorded state, never on elapsed time.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type Runtime, startWorker } from "../mod.ts";
import type { RunRecord } from "../records.ts";
import { cliCommand, withSandbox } from "./_cli_sandbox.ts";
import { PG_URL, withAdmin } from "../plugins/postgres/_test_utils.ts";
import { exitOf, killQuietly, within } from "./_deadline.ts";

const T0 = Date.UTC(2026, 0, 1);

const API = `id: api
inputs:
  customer: { type: string }
queue:
  rate: "3/1m"
  by: "\${{ inputs.customer }}"
nodes:
  - id: call
    type: state.set
    with: { scope: global, key: "called-\${{ run.id }}", value: "\${{ inputs.customer }}" }
`;

/** Wait until `check` returns a value (polling every 10 ms; fails after 60 s with `what`). */
async function until<T>(
  what: string,
  check: () => Promise<T | undefined | null | false>,
): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function runsOf(rt: Runtime, ids: readonly string[]): Promise<RunRecord[]> {
  const records = await rt.records();
  return await Promise.all(ids.map(async (id) => (await records.getRun(id))!));
}

/** Claim times of `runs` (each attempt's start, as the store's clock recorded it), in order. */
function claimTimes(runs: readonly RunRecord[]): number[] {
  return runs.flatMap((r) => r.queue!.attempts.map((a) => a.startedAt)).sort((a, b) => a - b);
}

/** No window of `perMs` holds more than `limit` of `times` (sorted). */
function assertWithinRate(times: readonly number[], limit: number, perMs: number): void {
  for (let i = 0; i + limit < times.length; i++) {
    assert.ok(
      times[i + limit] - times[i] >= perMs,
      `${limit + 1} claims within ${perMs} ms: ${times.slice(i, i + limit + 1).join(", ")}`,
    );
  }
}

Deno.test("queue rate: two workers start at most 3 runs per minute per customer (the store's clock); the rest wait queued, other customers go", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-qrate-" });
  await Deno.writeTextFile(join(dir, "api.flow.yaml"), API);
  const clock = {
    t: T0,
    now() {
      return this.t;
    },
  };
  await using rt = await openRuntime({
    cwd: dir,
    clock,
    config: { stores: { main: { plugin: "memory" } }, flows: [dir] },
  });
  const acme: string[] = [];
  const beta: string[] = [];
  for (let i = 0; i < 5; i++) {
    acme.push((await rt.enqueue("api", { input: { customer: "acme" } })).runId);
  }
  for (let i = 0; i < 2; i++) {
    beta.push((await rt.enqueue("api", { input: { customer: "beta" } })).runId);
  }
  const workers = [
    startWorker(rt, { concurrency: 4, pollMs: 10 }),
    startWorker(rt, { concurrency: 4, pollMs: 10 }),
  ];
  try {
    // Three of acme's and both of beta's run; acme's other two wait for the window.
    await until("3 of acme's and beta's runs to end, acme's others to wait", async () => {
      const [a, b] = [await runsOf(rt, acme), await runsOf(rt, beta)];
      const done = a.filter((r) => r.status === "succeeded").length;
      const waiting = a.filter((r) => r.status === "queued" && r.queue?.waiting === "rate");
      return done === 3 && waiting.length === 2 && b.every((r) => r.status === "succeeded");
    });
    for (const r of await runsOf(rt, acme)) {
      if (r.status !== "queued") continue;
      assert.equal(r.queue?.runAt, T0 + 60_000, "due when the window has room");
      assert.equal(r.queue?.attempts.length, 0, "never started");
    }
    assert.deepEqual(claimTimes(await runsOf(rt, beta)), [T0, T0], "beta was not held up");
    // The window frees a minute after the first claims (the store's clock).
    clock.t = T0 + 60_000;
    await until(
      "acme's other runs",
      async () => (await runsOf(rt, acme)).every((r) => r.status === "succeeded"),
    );
  } finally {
    for (const w of workers) await w.stop();
  }
  const runs = await runsOf(rt, acme);
  const times = claimTimes(runs);
  assert.deepEqual(times, [T0, T0, T0, T0 + 60_000, T0 + 60_000]);
  assertWithinRate(times, 3, 60_000);
  for (const r of runs) assert.equal(r.queue?.waiting, undefined);
  // Each ran once, by one of the two workers.
  const store = await rt.store();
  for (const id of acme) assert.equal((await store.get(["global", `called-${id}`]))?.value, "acme");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("queue rate: flowstate validate reports a bad rate at its file:line:column, and shows a good one", async () => {
  await withSandbox(async ({ dir, run }) => {
    const flow = (queue: string) =>
      `id: f\ninputs:\n  c: { type: string }\n${queue}\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n`;
    const cases: [string, RegExp][] = [
      [
        `queue:\n  rate: "10 per minute"`,
        /bad\.flow\.yaml:5:9: queue\.rate: expected a rate like "10\/1m" \(at most 10 starts in any 1 minute\).*got "10 per minute"/,
      ],
      [
        `queue: { rate: 10 }`,
        /bad\.flow\.yaml:4:16: queue\.rate: .*got the number 10 \(write "10\/1m"/,
      ],
      [
        `queue: { rate: "0/1m" }`,
        /bad\.flow\.yaml:4:16: queue\.rate: .*from 1 to 1000, got "0\/1m"/,
      ],
      [
        `queue: { rate: "10/0s" }`,
        /bad\.flow\.yaml:4:16: queue\.rate: the window must be at least 1ms/,
      ],
      [
        `queue: { rate: "5000/1h" }`,
        /bad\.flow\.yaml:4:16: queue\.rate: .*use a shorter window, like "1000\/12m"/,
      ],
      [
        `queue:\n  by: "\${{ inputs.c }}"`,
        /bad\.flow\.yaml:5:3: queue: needs concurrency, rate or both/,
      ],
      [`queue: { rate: "1/1s", rte: 2 }`, /bad\.flow\.yaml:4:.*rte/],
    ];
    for (const [queue, message] of cases) {
      await Deno.writeTextFile(join(dir, "bad.flow.yaml"), flow(queue));
      const result = await run("validate", "bad.flow.yaml");
      assert.equal(result.code, 2, `${queue}: ${result.stdout}`);
      assert.match(result.stderr, message, queue);
    }
    await Deno.writeTextFile(
      join(dir, "good.flow.yaml"),
      flow(`queue: { rate: "10/1m", concurrency: 2, by: "\${{ inputs.c }}" }`),
    );
    const ok = await run("validate", "good.flow.yaml");
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /^ {2}queue: at most 10 started per 1m, at most 2 running at once, per value of \$\{\{ inputs\.c \}\}, across every worker \(retries count against the rate\)$/m,
    );
  });
});

Deno.test("queue rate: runs show says a queued run waits for its rate limit", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flows", "api.flow.yaml"),
      API.replace('rate: "3/1m"', 'rate: "1/1h"'),
    );
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "flows: [./flows]\n");
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const enqueued = await run("enqueue", "api", "--input", "customer=acme");
      assert.equal(enqueued.code, 0, enqueued.stderr);
      ids.push(enqueued.stdout.trim());
    }
    const worker = cliCommand(dir, ["worker", "--poll", "50ms"], { home, stdout: "null" }).spawn();
    try {
      // Either may go first (a worker of several slots picks among the oldest at random).
      const [shown, other] = await until("one run to wait for its rate limit", async () => {
        for (const [i, id] of ids.entries()) {
          const result = await run("runs", "show", id);
          if (/waiting for its rate limit/.test(result.stdout)) return [result.stdout, ids[1 - i]];
        }
        return undefined;
      });
      assert.match(shown, /^status: {3}queued$/m);
      assert.match(
        shown,
        /^queue: {4}run at .*, priority 0, next attempt 1 of 1, waiting for its rate limit \(1\/1h, partition "acme"\)$/m,
      );
      const first = await run("runs", "show", other);
      assert.match(first.stdout, /^status: {3}succeeded$/m);
      assert.doesNotMatch(first.stdout, /waiting for/);
    } finally {
      worker.kill("SIGTERM");
      await worker.stderr.cancel();
      await exitOf(worker);
    }
  });
});

const pgSchema = `flowstate_qrate_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;

Deno.test({
  name:
    `queue rate: two flowstate worker processes on one PostgreSQL never start more than the rate together${
      PG_URL === undefined ? " (ignored: set FLOWSTATE_TEST_POSTGRES_URL to run)" : ""
    }`,
  ignore: PG_URL === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-qrate-pg-" });
    await Deno.mkdir(join(dir, "flows"));
    // An hour's window: nothing frees it while the test runs, whatever the machine's speed.
    await Deno.writeTextFile(
      join(dir, "flows", "api.flow.yaml"),
      API.replace('rate: "3/1m"', 'rate: "3/1h"'),
    );
    const store = `{ plugin: postgres, url: "${PG_URL}", schema: ${pgSchema}, table: qrate }`;
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `stores:\n  main: ${store}\nflows: [./flows]\n`,
    );
    const workers = ["a", "b"].map((id) =>
      cliCommand(dir, ["worker", "--json", "--worker-id", id, "--concurrency", "4"], {
        home: join(dir, "home"),
      }).spawn()
    );
    const started = workers.map(async (child) => {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!/"type":"start"/.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`a worker exited before it started: ${text}`);
        text += value;
      }
      // Drain the rest, so that the worker never blocks on a full pipe.
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
    });
    try {
      await within(Promise.all(started), "both workers started", {
        onHang: () => workers.forEach(killQuietly),
      });
      await using rt = await openRuntime({
        cwd: dir,
        config: {
          stores: {
            main: { plugin: "postgres", url: PG_URL!, schema: pgSchema, table: "qrate" },
          },
          flows: [join(dir, "flows")],
        },
      });
      const byCustomer: Record<string, string[]> = { acme: [], beta: [] };
      for (let i = 0; i < 10; i++) {
        for (const customer of ["acme", "beta"]) {
          byCustomer[customer].push((await rt.enqueue("api", { input: { customer } })).runId);
        }
      }
      for (const [customer, ids] of Object.entries(byCustomer)) {
        await until(`3 of ${customer}'s runs to end and 7 to wait for the window`, async () => {
          const runs = await runsOf(rt, ids);
          const done = runs.filter((r) => r.status === "succeeded").length;
          const waiting = runs.filter((r) => r.status === "queued" && r.queue?.waiting === "rate");
          return done === 3 && waiting.length === 7;
        });
      }
      for (const child of workers) child.kill("SIGTERM");
      for (const child of workers) assert.equal((await exitOf(child)).code, 0);
      for (const [customer, ids] of Object.entries(byCustomer)) {
        const runs = await runsOf(rt, ids);
        const ran = runs.filter((r) => r.queue!.attempts.length > 0);
        assert.equal(ran.length, 3, `${customer}: 3 started, no more`);
        const times = claimTimes(runs);
        assertWithinRate(times, 3, 3_600_000);
        for (const r of runs.filter((r) => r.status === "queued")) {
          assert.ok(r.queue!.runAt >= times[0] + 3_600_000, "due when the window has room");
        }
      }
    } finally {
      for (const child of workers) {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
        await child.stderr.cancel().catch(() => {});
        await exitOf(child);
      }
      await withAdmin(
        PG_URL!,
        (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`).then(),
      );
      await Deno.remove(dir, { recursive: true });
    }
  },
});
