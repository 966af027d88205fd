/**
 * A queue attempt whose claim lapsed while its process was stopped (SIGSTOP
 * past its lease: a suspended VM, a stopped container) writes nothing once
 * it resumes: another worker took the run back and ran it meanwhile, and the
 * first attempt's next node is fenced by the lease end its worker knows.
 * Through the CLI, on SQLite and (with FLOWSTATE_TEST_POSTGRES_URL) PostgreSQL.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DatabaseSync } from "node:sqlite";
import { z } from "zod";
import { definePlugin, openRuntime, startWorker, type WorkerEvent } from "../mod.ts";
import { MemoryDriver } from "../plugins/memory/mod.ts";
import type { CommitRequest } from "../plugin.ts";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { exitOf, hangGuard } from "./_deadline.ts";

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");

/** How long any one wait of these tests may take before it fails (not a timing assertion). */
const WAIT_MS = 90_000;

const FLOW = `id: slow
nodes:
  - id: start
    type: state.increment
    with: { scope: flow, key: started }
  - id: wait
    type: delay
    needs: [start]
    with: { for: 5s }
  - id: done
    type: state.increment
    needs: [wait]
    with: { scope: flow, key: finished }
`;

const WAIT_FOR_FILE = fileURLToPath(new URL("./fixtures/nodes/wait_for_file.ts", import.meta.url));

/**
 * {@linkcode FLOW} with a gate instead of the delay: `wait` ends once the file
 * `release` exists (in `dir`), which the test writes once the first attempt is
 * stopped inside it. A 5 s delay ended before the test stopped the attempt
 * when the CLI calls that tell it started took longer than that (under load):
 * the first attempt then ran to its end and no attempt was lost.
 */
function gatedFlow(dir: string): string {
  return FLOW.replace(
    "    type: delay\n    needs: [start]\n    with: { for: 5s }\n",
    `    type: ${WAIT_FOR_FILE}
    needs: [start]
    with: { path: ${JSON.stringify(join(dir, "release"))} }
    permissions: { read: [${JSON.stringify(dir)}] }
`,
  );
}

/** A worker's `--json` lines, read as they come. */
class WorkerLines {
  readonly child: Deno.ChildProcess;
  readonly #reader: ReadableStreamDefaultReader<string>;
  #rest = "";
  readonly seen: Record<string, unknown>[] = [];

  constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.#reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Resolves the first line (seen before or coming) that `match` accepts; fails after WAIT_MS. */
  async until(what: string, match: (line: Record<string, unknown>) => boolean) {
    const found = this.seen.find(match);
    if (found !== undefined) return found;
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const next = await Promise.race([
        this.#reader.read(),
        new Promise<null>((r) => timer = setTimeout(() => r(null), deadline - Date.now())),
      ]);
      clearTimeout(timer);
      if (next === null || next.done) break;
      this.#rest += next.value;
      const lines = this.#rest.split("\n");
      this.#rest = lines.pop()!;
      for (const text of lines) {
        if (!text.startsWith("{")) continue;
        const line = JSON.parse(text);
        this.seen.push(line);
        if (match(line)) return line;
      }
    }
    throw new Error(`the worker did not tell ${what}; it told: ${JSON.stringify(this.seen)}`);
  }

  /** SIGTERM it and wait for its exit; its stderr. */
  async stop(): Promise<string> {
    using _hang = hangGuard(this.child, () => JSON.stringify(this.seen));
    try {
      this.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    while (!(await this.#reader.read()).done) { /* drain */ }
    const stderr = await new Response(this.child.stderr).text();
    await exitOf(this.child);
    return stderr;
  }
}

async function lapsedAttemptWritesNothing(storeYaml: string, sqliteFile?: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-lease-fence-" });
  const workers: WorkerLines[] = [];
  try {
    await Deno.mkdir(join(dir, "flows"));
    const flow = gatedFlow(dir);
    assert.notEqual(flow, FLOW);
    await Deno.writeTextFile(join(dir, "flows", "slow.flow.yaml"), flow);
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `stores:\n  default: ${storeYaml}\nflows: [./flows]\n`,
    );
    const run = (...args: string[]) => runCli(dir, args);
    const count = async (key: string) => {
      const r = await run("state", "get", "--flow", "slow", key, "--json");
      if (r.code === 1 && /not found/.test(r.stderr)) return null;
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout).value;
    };
    const enqueued = await run("enqueue", "slow");
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const id = enqueued.stdout.trim();
    const worker = (name: string, lease: string) => {
      const w = new WorkerLines(
        cliCommand(dir, [
          "worker",
          "--json",
          "--concurrency",
          "1",
          "--lease",
          lease,
          "--poll",
          "100ms",
          "--worker-id",
          name,
        ]).spawn(),
      );
      workers.push(w);
      return w;
    };

    // A claims the run and starts it; it is stopped inside the gate.
    // A's lease is short: B may take the run back soon after A is stopped.
    const a = worker("A", "2s");
    await a.until("its claim", (l) => l.type === "claim");
    const deadline = Date.now() + WAIT_MS;
    while ((await count("started")) !== 1) {
      assert.ok(Date.now() < deadline, "the first attempt did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    a.child.kill("SIGSTOP");
    // A process stopped inside a commit holds SQLite's write lock until it resumes, and then no
    // one can write (what a paused VM holding a lock does to any SQLite file). The case here is a
    // process paused between its commits, inside the gate: if the lock is held, let A finish
    // that commit and stop it again.
    if (sqliteFile !== undefined) {
      for (let held = true; held;) {
        const db = new DatabaseSync(join(dir, sqliteFile));
        try {
          db.exec("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE; ROLLBACK");
          held = false;
        } catch {
          a.child.kill("SIGCONT");
          await new Promise((r) => setTimeout(r, 20));
          a.child.kill("SIGSTOP");
        } finally {
          db.close();
        }
      }
    }

    // The gate opens for B; A sees it once it resumes.
    await Deno.writeTextFile(join(dir, "release"), "go");
    // B takes the run back once A's lease lapsed, and runs it to its end.
    // B's is long: a starved B (a loaded machine) must not lose its own claim and take the run
    // back from itself (attempt 3).
    const b = worker("B", "60s");
    const ended = await b.until("the run's end", (l) => l.type === "end");
    assert.equal(ended.status, "succeeded", JSON.stringify(ended));
    // Attempt 2, or later: A itself may have lost its 2 s claim while starved (a loaded machine)
    // before it was stopped, taken the run back and claimed it again (attempt 2); B's is then 3.
    assert.ok(ended.attempt >= 2, JSON.stringify({ a: a.seen, b: b.seen }));
    await b.stop();
    assert.equal(await count("finished"), 1);

    // A resumes: its gate is open, but its next node writes nothing.
    a.child.kill("SIGCONT");
    const lost = await a.until("the lost attempt's end", (l) => l.type === "end");
    assert.match(String(lost.error), /claim lapsed/);
    assert.equal(lost.requeued, "lost");
    await a.stop();

    assert.equal(await count("finished"), 1, "the lapsed attempt's write did not land");
    const shown = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    assert.equal(shown.status, "succeeded");
    // Every attempt before B's was lost (A's), B's succeeded.
    assert.deepEqual(
      shown.queue.attempts.map((x: { outcome: string }) => x.outcome),
      [...Array(ended.attempt - 1).fill("lost"), "succeeded"],
    );
  } finally {
    for (const w of workers) {
      try {
        w.child.kill("SIGCONT");
      } catch {
        // gone
      }
      await w.stop().catch(() => {});
    }
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("worker: an attempt stopped (SIGSTOP) past its lease writes nothing once resumed; the run ends once (sqlite)", async () => {
  await lapsedAttemptWritesNothing("{ plugin: sqlite, path: ./data.db }", "data.db");
});

Deno.test({
  name:
    "worker: an attempt stopped (SIGSTOP) past its lease writes nothing once resumed; the run ends once (postgres)",
  ignore: PG_URL === undefined,
  fn: async () => {
    const table = `fence_${crypto.randomUUID().slice(0, 8)}`;
    try {
      await lapsedAttemptWritesNothing(`{ plugin: postgres, url: "${PG_URL}", table: ${table} }`);
    } finally {
      const { openClient } = await import("../plugins/postgres/client.ts");
      const sql = openClient(PG_URL!);
      await sql.unsafe(`DROP TABLE IF EXISTS ${table} CASCADE`);
      await sql.unsafe(`DROP TABLE IF EXISTS ${table}_meta CASCADE`).catch(() => {});
      await sql.end();
    }
  },
});

/** A plugin over one shared memory driver whose commits to run records fail while `down.on`. */
function sharedPlugin(inner: MemoryDriver, down: { on: boolean }) {
  return definePlugin({
    name: "shared-test",
    optionsSchema: z.strictObject({}),
    open: () => ({
      location: "shared",
      capabilities: { atomicClear: true },
      get: (k: never) => inner.get(k),
      list: (r: never) => inner.list(r),
      commit: (req: CommitRequest) => {
        if (
          down.on &&
          req.mutations.some((m) => "key" in m && m.key[0] === "flowstate" && m.key[1] === "runs")
        ) {
          throw new Error("the store cannot be reached");
        }
        return inner.commit(req);
      },
      close: () => {},
    }),
  });
}

Deno.test("worker: an attempt whose heartbeats keep failing stops writing once its lease ran out; the run is run again, its effect once (mod.ts)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-lease-fence-" });
  try {
    await Deno.writeTextFile(join(dir, "slow.flow.yaml"), FLOW.replace("5s", "2s"));
    const shared = new MemoryDriver();
    const down = { on: false };
    const open = (plugin: ReturnType<typeof sharedPlugin>) =>
      openRuntime({ cwd: dir, home: dir, config: { stores: { main: { plugin } } } });
    await using a = await open(sharedPlugin(shared, down));
    await using b = await open(sharedPlugin(shared, { on: false }));
    const { runId } = await a.enqueue("./slow.flow.yaml");
    const state = await b.store("main");
    const count = async (key: string) =>
      (await state.get<number>(["flow", "slow", key]))?.value ?? null;
    const ends = (rt: typeof a, leaseMs: number) => {
      const ended = Promise.withResolvers<WorkerEvent & { type: "end" }>();
      const worker = startWorker(rt, {
        leaseMs,
        pollMs: 50,
        onEvent: (e) => e.type === "end" && e.runId === runId && ended.resolve(e),
      });
      return { worker, ended: ended.promise };
    };
    // A starts the run; then its store stops answering its heartbeats (and any run record).
    const first = ends(a, 400);
    const deadline = Date.now() + WAIT_MS;
    while ((await count("started")) !== 1) {
      assert.ok(Date.now() < deadline, "the first attempt did not start");
      await new Promise((r) => setTimeout(r, 10));
    }
    down.on = true;
    const lost = await first.ended;
    assert.match(String(lost.error), /claim lapsed/);
    // Its end says the attempt was lost (the run goes on elsewhere), not that the run failed,
    // nor that another worker has it: none does yet (B starts below).
    assert.equal(lost.requeued, "lost");
    assert.doesNotMatch(String(lost.error), /another worker/);
    await first.worker.stop();
    // B takes the run back once its lease lapsed, and runs it.
    const second = ends(b, 400);
    const ended = await second.ended;
    await second.worker.stop();
    assert.equal(ended.status, "succeeded");
    assert.equal(await count("finished"), 1, "the first attempt's write did not land");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
