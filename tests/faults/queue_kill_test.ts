/**
 * The queue's crash test: runs are enqueued, several `flowstate worker`
 * processes share one store (3 on SQLite; 4 on PostgreSQL when
 * FLOWSTATE_TEST_POSTGRES_URL is set), and one worker is killed with
 * SIGKILL while it holds claims. Then:
 *
 * - every run ends exactly once, as `succeeded` (one `succeeded` attempt in
 *   its record; the killed worker's runs after a re-claim, their attempt
 *   recorded `lost`);
 * - each run's effect (the flow writes a key named by its run id) is there
 *   once per run id;
 * - nothing is left `queued` or `running`, and no claim is left behind.
 *
 * `FLOWSTATE_QUEUE_CRASH_RUNS` sets the number of runs (default 1,000, the
 * issue's figure: about 6 s on SQLite and 7 s on PostgreSQL here).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type Runtime } from "../../mod.ts";
import type { RunRecord } from "../../records.ts";
import { cliCommand } from "../_cli_sandbox.ts";
import { PG_URL, withAdmin } from "../../plugins/postgres/_test_utils.ts";
import { exitOf } from "../_deadline.ts";

const RUNS = Number(Deno.env.get("FLOWSTATE_QUEUE_CRASH_RUNS") ?? 1_000);

const FLOW = `id: effect
nodes:
  - id: work
    type: ../nodes/hold.ts
  - id: effect
    needs: [work]
    type: state.set
    with: { scope: global, key: "effect/\${{ run.id }}", value: "\${{ run.id }}" }
  - id: count
    needs: [effect]
    type: state.increment
    with: { scope: global, key: "executions/\${{ run.id }}" }
`;

/**
 * The `work` node (trusted: in-process): while the file `hold` exists in the
 * project, it marks its run as held (`held/<run id>.<pid>`) and waits until
 * the file is gone. So the test can kill a worker while one of its runs is
 * certainly mid-way, not in the moment it ends.
 */
function holdNode(dir: string): string {
  const core = new URL("../../mod.ts", import.meta.url).href;
  return `import { defineNode } from ${JSON.stringify(core)};
const dir = ${JSON.stringify(dir)};
const exists = (path) => Deno.stat(path).then(() => true, () => false);
export default defineNode({
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  async run(ctx) {
    if (!(await exists(dir + "/hold"))) return null;
    await Deno.writeTextFile(dir + "/held/" + ctx.runId + "." + Deno.pid, "");
    while (await exists(dir + "/hold")) await ctx.sleep(20);
    return null;
  },
});
`;
}

/** A worker process and what its `--json` lines say. */
class WorkerProcess {
  readonly child: Deno.ChildProcess;
  readonly inFlight = new Set<string>();
  ended = 0;
  readonly output: string[] = [];
  readonly done: Promise<void>;
  #stderr = "";

  constructor(dir: string, home: string, name: string) {
    this.child = cliCommand(dir, [
      "worker",
      "--json",
      "--concurrency",
      "4",
      "--lease",
      "2s",
      "--poll",
      "100ms",
      "--worker-id",
      name,
    ], { home }).spawn();
    this.done = Promise.all([this.#read(), this.#readErr()]).then(() => {});
  }

  async #read(): Promise<void> {
    const lines = this.child.stdout.pipeThrough(new TextDecoderStream());
    let rest = "";
    for await (const chunk of lines) {
      rest += chunk;
      let nl: number;
      while ((nl = rest.indexOf("\n")) !== -1) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (this.output.length < 2000) this.output.push(line);
        try {
          const event = JSON.parse(line);
          if (event.type === "claim") this.inFlight.add(event.runId);
          if (event.type === "end") {
            this.inFlight.delete(event.runId);
            this.ended++;
          }
        } catch {
          // Not an event line.
        }
      }
    }
  }

  async #readErr(): Promise<void> {
    for await (const chunk of this.child.stderr.pipeThrough(new TextDecoderStream())) {
      if (this.#stderr.length < 20_000) this.#stderr += chunk;
    }
  }

  get stderr(): string {
    return this.#stderr;
  }
}

async function until(what: string, ms: number, check: () => Promise<boolean> | boolean) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function countStatus(rt: Runtime, status: "queued" | "running"): Promise<number> {
  const records = await rt.records();
  let n = 0;
  let cursor: string | undefined;
  do {
    const page = await records.listRunSummaries({ status, limit: 1000, cursor });
    n += page.runs.length;
    cursor = page.cursor;
  } while (cursor !== undefined);
  return n;
}

async function crashTest(storeYaml: string, processes: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-queue-kill-" });
  const home = join(dir, "home");
  await Deno.mkdir(join(dir, "flows"));
  await Deno.mkdir(join(dir, "nodes"));
  await Deno.mkdir(join(dir, "held"));
  await Deno.writeTextFile(join(dir, "flows", "effect.flow.yaml"), FLOW);
  await Deno.writeTextFile(join(dir, "nodes", "hold.ts"), holdNode(dir));
  await Deno.writeTextFile(
    join(dir, "flowstate.yaml"),
    `home: ./home\nstores:\n  main: ${storeYaml}\nflows: [./flows]\n` +
      `nodes: { trusted: [./nodes/hold.ts] }\n`,
  );
  const workers: WorkerProcess[] = [];
  try {
    const ids: string[] = [];
    {
      await using rt = await openRuntime({ cwd: dir, config: join(dir, "flowstate.yaml") });
      for (let i = 0; i < RUNS; i++) ids.push((await rt.enqueue("effect")).runId);
    }
    for (let i = 0; i < processes; i++) workers.push(new WorkerProcess(dir, home, `w${i}`));
    const victim = workers[0];
    // Kill the victim mid-work: after some of its runs ended, while one of its runs waits
    // in the `work` node (held there by the file `hold`, so it cannot end meanwhile).
    await until("the victim to end some runs", 120_000, () => victim.ended >= 3);
    await Deno.writeTextFile(join(dir, "hold"), "");
    const heldHere = async () => {
      const names: string[] = [];
      for await (const e of Deno.readDir(join(dir, "held"))) names.push(e.name);
      return names.filter((n) => n.endsWith(`.${victim.child.pid}`)).map((n) => n.split(".")[0]);
    };
    await until(
      "a run of the victim to wait in its work node",
      120_000,
      async () => (await heldHere()).length > 0,
    );
    const blocked = await heldHere();
    const held = [...victim.inFlight];
    victim.child.kill("SIGKILL");
    await exitOf(victim.child);
    await victim.done;
    await Deno.remove(join(dir, "hold"));

    await using rt = await openRuntime({ cwd: dir, config: join(dir, "flowstate.yaml") });
    const records = await rt.records();
    // Every run's own record, not the two listings: a run taken back from the killed worker
    // (running → queued) between a listing of queued runs and one of running runs is in
    // neither. An ended run stays ended, so records read one by one agree once all ended.
    await until("every run to end", 300_000, async () => {
      for (const id of ids) {
        const status = (await records.getRun(id))?.status;
        if (status === "queued" || status === "running") return false;
      }
      return true;
    });
    // And the listings say so too (nothing listed queued or running: no stale claim or entry).
    assert.equal(await countStatus(rt, "queued"), 0);
    assert.equal(await countStatus(rt, "running"), 0);
    for (const w of workers.slice(1)) w.child.kill("SIGTERM");
    for (const w of workers.slice(1)) {
      const status = await exitOf(w.child);
      await w.done;
      assert.equal(status.code, 0, `worker stopped cleanly: ${w.stderr}`);
    }

    const store = await rt.store();
    const runs: RunRecord[] = [];
    for (const id of ids) runs.push((await records.getRun(id))!);
    const notOk = runs.filter((r) => r.status !== "succeeded");
    assert.deepEqual(notOk.map((r) => `${r.id} ${r.status} ${r.error?.message}`), []);
    for (const r of runs) {
      const outcomes = r.queue!.attempts.map((a) => a.outcome);
      assert.equal(outcomes.filter((o) => o === "succeeded").length, 1, `${r.id}: ${outcomes}`);
      assert.equal(outcomes.at(-1), "succeeded");
      const effect = await store.get(["global", `effect/${r.id}`]);
      assert.equal(effect?.value, r.id, `effect of ${r.id}`);
    }
    // The victim's claims were taken back: each run it held when it was killed has a lost
    // attempt by w0. `held` is what it had printed as claimed and not ended just before the
    // kill; a run it finished in the moment between that look and the signal ended there
    // (w0's attempt succeeded) and was not taken back.
    for (const id of held) {
      const r = runs.find((x) => x.id === id)!;
      const mine = r.queue!.attempts.filter((a) => a.worker === "w0");
      assert.ok(
        mine.some((a) => a.outcome === "lost") || mine.at(-1)?.outcome === "succeeded",
        `${id}: ${JSON.stringify(r.queue)}`,
      );
    }
    // A run the victim was killed in the middle of was taken back: its attempt is lost.
    for (const id of blocked) {
      const r = runs.find((x) => x.id === id)!;
      assert.ok(
        r.queue!.attempts.some((a) => a.worker === "w0" && a.outcome === "lost"),
        `${id} was mid-way in the victim when it was killed: ${JSON.stringify(r.queue)}`,
      );
    }
    let claims = 0;
    for await (const _ of store.list({ prefix: ["flowstate", "queue", "claimed"] })) claims++;
    assert.equal(claims, 0, "no claim left behind");
    let ready = 0;
    for await (const _ of store.list({ prefix: ["flowstate", "queue", "ready"] })) ready++;
    assert.equal(ready, 0, "no queue entry left behind");
    // At least once: a run killed mid-way may have run twice; its effect is keyed by run id.
    let executions = 0;
    for await (const e of store.list<unknown>({ prefix: ["global"] })) {
      if (e.key[1].startsWith("executions/")) executions += e.value as number;
    }
    const lostElsewhere = runs.flatMap((r) =>
      r.queue!.attempts.filter((a) => a.outcome === "lost" && !held.includes(r.id))
        .map((a) => `${r.id} ${a.worker} ${a.endedAt - a.startedAt}ms: ${a.error}`)
    );
    // Each execution beyond the first is a recorded lost attempt: the victim's, or (rarely, on a
    // starved machine) a surviving worker whose heartbeat came later than its lease allowed. Its
    // run was then taken back and run again; delivery is at least once, and the late attempt's
    // end was refused (still one `succeeded`, asserted above).
    const lost = runs.reduce(
      (n, r) => n + r.queue!.attempts.filter((a) => a.outcome === "lost").length,
      0,
    );
    assert.ok(
      executions >= RUNS && executions <= RUNS + lost,
      `executions ${executions}, lost attempts ${lost}; lost elsewhere: ${
        lostElsewhere.slice(0, 5).join("\n")
      }`,
    );
    if (lostElsewhere.length > 0) {
      console.warn(`lease lapsed outside the victim (starved worker): ${lostElsewhere.join("; ")}`);
    }
  } finally {
    for (const w of workers) {
      try {
        w.child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await exitOf(w.child);
    }
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: `queue crash: ${RUNS} runs, 3 worker processes on sqlite, one killed with SIGKILL`,
  sanitizeResources: false,
  fn: () => crashTest(`{ plugin: sqlite, path: ./state.db }`, 3),
});

const pgSchema = `flowstate_qkill_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
Deno.test({
  name: `queue crash: ${RUNS} runs, 4 worker processes on postgres, one killed with SIGKILL${
    PG_URL === undefined ? " (ignored: set FLOWSTATE_TEST_POSTGRES_URL to run)" : ""
  }`,
  ignore: PG_URL === undefined,
  sanitizeResources: false,
  async fn() {
    try {
      await crashTest(`{ plugin: postgres, url: "${PG_URL}", schema: ${pgSchema} }`, 4);
    } finally {
      await withAdmin(
        PG_URL!,
        (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`).then(),
      );
    }
  },
});
