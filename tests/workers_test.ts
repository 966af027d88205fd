/**
 * The worker registry through the public surface: real `flowstate worker`
 * processes on one store (SQLite; PostgreSQL too when
 * FLOWSTATE_TEST_POSTGRES_URL is set), a `flowstate serve --no-worker` beside
 * them, and `flowstate workers`.
 *
 * - `GET /api/workers` and `flowstate workers [--json]` list the three
 *   workers `live`, with what they serve and the run each holds;
 * - a worker killed with SIGKILL turns `stale` (its heartbeat interval is
 *   driven short with `--lease`: no long sleep), and is still listed;
 * - a worker stopped with SIGTERM is gone from the list as soon as it exited;
 * - the gc job deletes the stale worker's entry, never a live one's (its
 *   `staleWorkersAfter` is never shorter than a worker's stale threshold).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { documented, eventually } from "./_serve.ts";
import { dropSchemaTest, PG_URL } from "../plugins/postgres/_test_utils.ts";
import type { WorkerListing } from "../mod.ts";
import { exitOf, hangSignal } from "./_deadline.ts";

const SLOW = "id: slow\nnodes:\n  - { id: wait, type: delay, with: { for: 60s } }\n";
const MARK = "id: mark\nnodes:\n  - { id: n, type: transform, with: { value: 1 } }\n";

/** A CLI process started in the background, with its output lines as they come. */
interface Background {
  child: Deno.ChildProcess;
  /** Resolves the first line (of stdout or stderr) that `match` accepts. */
  line(match: (line: string) => boolean): Promise<string>;
  /** Everything it printed on stderr, once it exited. */
  stderr: Promise<string>;
  /** Everything it printed on stdout, once it exited. */
  stdout: Promise<string>;
}

function background(dir: string, args: string[]): Background {
  const child = cliCommand(dir, args, { home: join(dir, "home") }).spawn();
  const lines: string[] = [];
  const waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  const read = async (stream: ReadableStream<Uint8Array>): Promise<string> => {
    let all = "";
    let rest = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      all += text;
      rest += text;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        for (const w of [...waiters]) {
          if (!w.match(line)) continue;
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
    return all;
  };
  const stdout = read(child.stdout);
  const stderr = read(child.stderr);
  return {
    child,
    stderr: stdout.then(() => stderr),
    stdout,
    line(match) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

/** The JSON event line of `type` a `worker --json` printed. */
function event(type: string): (line: string) => boolean {
  return (line) => line.startsWith("{") && JSON.parse(line).type === type;
}

async function workersTest(storeYaml: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-workers-" });
  const processes: Background[] = [];
  const start = (args: string[]) => {
    const p = background(dir, args);
    processes.push(p);
    return p;
  };
  const cli = (...args: string[]) => runCli(dir, args, { home: join(dir, "home") });
  try {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "slow.flow.yaml"), SLOW);
    await Deno.writeTextFile(join(dir, "flows", "mark.flow.yaml"), MARK);
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `stores:\n  main: ${storeYaml}\nflows: [./flows]\n`,
    );
    const runIds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const enqueued = await cli("enqueue", "slow");
      assert.equal(enqueued.code, 0, enqueued.stderr);
      runIds.push(enqueued.stdout.trim());
    }

    // The server works no runs itself: the registry holds only the three workers.
    const server = background(dir, ["serve", "--port", "0", "--no-worker"]);
    processes.push(server);
    // Worker a: the default lease (a 5 s heartbeat, stale after 15 s). Worker b: a 4 s lease (a
    // 1 s heartbeat, stale after 3 s), to be killed. Worker c serves another flow: it holds nothing.
    const a = start([
      "worker",
      "--json",
      "--worker-id",
      "a",
      "--flows",
      "slow",
      "--concurrency",
      "1",
      "--grace",
      "100ms",
    ]);
    const b = start([
      "worker",
      "--json",
      "--worker-id",
      "b",
      "--flows",
      "slow",
      "--concurrency",
      "1",
      "--lease",
      "4s",
    ]);
    const c = start([
      "worker",
      "--json",
      "--worker-id",
      "c",
      "--flows",
      "mark,other",
      "--concurrency",
      "3",
    ]);
    const claimOf = async (w: Background) => JSON.parse(await w.line(event("claim"))).runId;
    const held = { a: await claimOf(a), b: await claimOf(b) };
    assert.deepEqual([held.a, held.b].sort(), [...runIds].sort());

    // `serve` prints its URL on stderr.
    const url = (await server.line((l) => l.startsWith("Serving http"))).slice("Serving ".length);
    const list = async () =>
      await documented<WorkerListing[]>(
        "GET",
        "/api/workers",
        await fetch(new URL("/api/workers", url), { signal: hangSignal() }),
      );
    const byId = (workers: WorkerListing[]) => new Map(workers.map((w) => [w.id, w]));
    await eventually("the three workers are listed live, a and b with their runs", async () => {
      const w = byId(await list());
      return w.get("a")?.claims.length === 1 && w.get("b")?.claims.length === 1 &&
        w.get("c") !== undefined && [...w.values()].every((x) => x.status === "live");
    });
    const live = byId(await list());
    assert.deepEqual([...live.keys()], ["a", "b", "c"]);
    for (const id of ["a", "b"] as const) {
      const w = live.get(id)!;
      assert.deepEqual(w.claims.map((claim) => [claim.runId, claim.flowId, claim.attempt]), [
        [held[id], "slow", 1],
      ]);
      assert.deepEqual(w.flows, ["slow"]);
      assert.equal(w.concurrency, 1);
      assert.equal(w.pid, id === "a" ? a.child.pid : b.child.pid);
      assert.equal(w.stopping, false);
    }
    assert.equal(live.get("a")!.leaseMs, 30_000);
    assert.equal(live.get("a")!.staleAfterMs, 15_000); // three 5 s heartbeats
    assert.equal(live.get("b")!.leaseMs, 4_000);
    assert.equal(live.get("b")!.staleAfterMs, 3_000); // three 1 s heartbeats
    const idle = live.get("c")!;
    assert.deepEqual([idle.flows, idle.concurrency, idle.claims], [["mark", "other"], 3, []]);
    assert.equal(idle.pid, c.child.pid);
    assert.match(idle.version, /^\d+\.\d+\.\d+/);

    // The CLI tells the same.
    const listed = await cli("workers", "--json");
    assert.equal(listed.code, 0, listed.stderr);
    const fromCli = byId(JSON.parse(listed.stdout));
    assert.deepEqual([...fromCli.keys()], ["a", "b", "c"]);
    assert.deepEqual(fromCli.get("a")!.claims.map((claim) => claim.runId), [held.a]);
    assert.deepEqual(fromCli.get("b")!.claims.map((claim) => claim.runId), [held.b]);
    const table = await cli("workers");
    assert.equal(table.code, 0, table.stderr);
    assert.match(
      table.stdout,
      /^ID +STATUS +HOST +PID +VERSION +STARTED +HEARTBEAT +SERVES +RUNS$/m,
    );
    assert.match(
      table.stdout,
      new RegExp(`^a +live +\\S+ +${a.child.pid} .* slow x1 +${held.a} \\(slow\\)$`, "m"),
    );
    assert.match(
      table.stdout,
      new RegExp(`^c +live +\\S+ +${c.child.pid} .* mark,other x3 +-$`, "m"),
    );
    const ls = await cli("workers", "ls", "--json"); // `workers` is `workers ls`
    assert.deepEqual(JSON.parse(ls.stdout).map((w: WorkerListing) => w.id), ["a", "b", "c"]);

    // kill -9 b: it never removes its entry; once three of its heartbeats are missed, it is stale.
    b.child.kill("SIGKILL");
    assert.equal((await exitOf(b.child)).code, 137);
    await eventually(
      "b is listed stale",
      async () => byId(await list()).get("b")?.status === "stale",
    );
    const afterKill = byId(await list());
    assert.deepEqual(afterKill.get("b")!.claims.map((claim) => claim.runId), [held.b]);
    assert.equal(afterKill.get("a")!.status, "live");
    const staleTable = await cli("workers");
    assert.match(staleTable.stdout, new RegExp(`^b +stale +\\S+ +${b.child.pid} `, "m"));
    // And Prometheus sees them: two live, one stale.
    const metrics = await (await fetch(new URL("/metrics", url), { signal: hangSignal() })).text();
    assert.match(metrics, /^flowstate_workers\{status="live"\} 2$/m);
    assert.match(metrics, /^flowstate_workers\{status="stale"\} 1$/m);

    // SIGTERM c: a clean stop removes its entry before the process exits.
    c.child.kill("SIGTERM");
    assert.equal((await exitOf(c.child)).code, 0, await c.stderr);
    assert.deepEqual((await list()).map((w) => w.id), ["a", "b"]);

    // gc deletes the stale entry; the live worker's stays, however short the option.
    const gc = await cli("jobs", "run", "gc", "-o", "staleWorkersAfter=1ms", "--json");
    assert.equal(gc.code, 0, gc.stderr);
    assert.equal(JSON.parse(gc.stdout).outputs.staleWorkersRemoved, 1, gc.stdout);
    assert.deepEqual((await list()).map((w) => [w.id, w.status]), [["a", "live"]]);

    // SIGTERM a, which holds a run: it releases it (after its grace) and removes its entry.
    a.child.kill("SIGTERM");
    assert.equal((await exitOf(a.child)).code, 0, await a.stderr);
    assert.deepEqual(await list(), []);
    const empty = await cli("workers", "--json");
    assert.equal(empty.stdout.trim(), "[]");
  } finally {
    // Those still running (a failed assertion) are killed; kill() throws for one that exited.
    await Promise.all(processes.map(async (p) => {
      await Promise.resolve().then(() => p.child.kill("SIGKILL")).catch(() => {});
      await Promise.all([p.child.status, p.stderr]);
    }));
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "workers: live with their claims in GET /api/workers and flowstate workers; kill -9 → stale; SIGTERM → removed; gc deletes the stale one (sqlite)",
  sanitizeResources: false,
  fn: () => workersTest("{ plugin: sqlite, path: ./state.db }"),
});

const pgSchema = `flowstate_workers_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
Deno.test({
  name: `workers: the same on postgres${
    PG_URL === undefined ? " (ignored: set FLOWSTATE_TEST_POSTGRES_URL to run)" : ""
  }`,
  ignore: PG_URL === undefined,
  sanitizeResources: false,
  fn: () => workersTest(`{ plugin: postgres, url: "${PG_URL}", schema: ${pgSchema} }`),
});
dropSchemaTest("workers: the postgres test's schema is dropped", pgSchema);

Deno.test({
  name:
    "workers: a worker restarted with the id of its killed process (a service manager's restart) is not told another live worker has it; a second live one is",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-worker-id-" });
    const processes: Background[] = [];
    // A 4 s lease: a heartbeat a second.
    const start = (id: string) => {
      const p = background(dir, ["worker", "--json", "--worker-id", id, "--lease", "4s"]);
      processes.push(p);
      return p;
    };
    const cli = (...args: string[]) => runCli(dir, args, { home: join(dir, "home") });
    const entry = async (id: string) => {
      const listed = await cli("workers", "--json");
      return (JSON.parse(listed.stdout) as WorkerListing[]).find((w) => w.id === id);
    };
    /** Its output (stdout, then stderr) once stopped with SIGTERM. */
    const stopped = async (p: Background) => {
      p.child.kill("SIGTERM");
      assert.equal((await exitOf(p.child)).code, 0);
      return `${await p.stdout}${await p.stderr}`;
    };
    try {
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        "stores:\n  main: { plugin: sqlite, path: ./state.db }\n",
      );
      // Killed with SIGKILL: its entry stays, live for three heartbeats.
      const killed = start("fixed");
      await eventually(
        "the first worker is registered",
        async () => (await entry("fixed"))?.pid === killed.child.pid,
      );
      killed.child.kill("SIGKILL");
      await exitOf(killed.child);
      // Its restart, at once: it writes its entry a few times (each write looks at the entry).
      const restarted = start("fixed");
      let first: number | undefined;
      await eventually("the restarted worker wrote its entry three times", async () => {
        const w = await entry("fixed");
        if (w?.pid !== restarted.child.pid) return false;
        first ??= w.heartbeatAt;
        return w.heartbeatAt >= first + 2_000;
      });
      const output = await stopped(restarted);
      assert.match(output, /"type":"start"/);
      assert.doesNotMatch(output, /another live worker/);

      // Two live workers of one id: the second is told.
      const one = start("twin");
      await eventually(
        "the first twin is registered",
        async () => (await entry("twin"))?.pid === one.child.pid,
      );
      const two = start("twin");
      const told = JSON.parse(await two.line(event("error")));
      assert.match(told.message, /another live worker has the id "twin" \(pid \d+ on /);
      await stopped(two);
      await stopped(one);
    } finally {
      await Promise.all(processes.map(async (p) => {
        await Promise.resolve().then(() => p.child.kill("SIGKILL")).catch(() => {});
        await Promise.all([p.child.status, p.stderr]);
      }));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
