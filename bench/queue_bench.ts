/**
 * The queue on PostgreSQL: throughput of a trivial flow with 1, 2, 4 and 8
 * worker processes, beside a bare `FOR UPDATE SKIP LOCKED` claim loop (npm:postgres,
 * a table of the same shape: id, priority, run_at, state, worker) with the same
 * number of processes and the same concurrency per process, in the same run;
 * then enqueue-to-start latency (p50/p95) on PostgreSQL (LISTEN/NOTIFY) and on
 * SQLite (polling).
 *
 *   FLOWSTATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
 *     deno run -A --unstable-worker-options bench/queue_bench.ts [runs=400] [concurrency=4] [rounds=3]
 *
 * Throughput is runs (or bare jobs) per second from a common start time
 * (every process has started, connected and waits for it) to the last end,
 * as the worker processes report it, and the CPU time (user + system) the worker
 * processes spent from the start time to the last end, per run. Latency is from `enqueue()` returning to the claim, per run,
 * with runs enqueued one at a time (50 ms apart) while 4 workers wait.
 *
 * `QUEUE_BENCH_WARMUP=k` (default 0): before the start time, each process
 * works k runs (or bare jobs) of its own first, on the same store (or
 * table) and the same code path, so that the race measures processes past
 * their start-up (V8 compiling the run path, each connection's first
 * prepare and plans), as a long-running worker is. Flowstate's warm-up runs
 * are of a flow of their own (`warm-<process>`, enqueued at a higher
 * priority than the race's runs, worked by a worker limited to that flow and
 * stopped before the start); the bare loop's are rows of state `warm`.
 */
import { join } from "node:path";
import type postgres from "postgres";
import { openClient } from "../plugins/postgres/client.ts";
import { openRuntime, startWorker } from "../mod.ts";

const SELF = new URL(import.meta.url).pathname;
/**
 * V8 flags for every worker process (Flowstate's and the bare loop's), from
 * `QUEUE_BENCH_V8_FLAGS` (default none; `--no-lazy` is what `deno task
 * flowstate` starts a worker with).
 */
const V8_FLAGS = (() => {
  const flags = Deno.env.get("QUEUE_BENCH_V8_FLAGS") ?? "";
  return flags === "" ? [] : [`--v8-flags=${flags}`];
})();
/** Runs (or bare jobs) each process works before the start time (see the module doc). */
const WARMUP = Number(Deno.env.get("QUEUE_BENCH_WARMUP") ?? 0);
const FLOW = "id: trivial\nnodes:\n  - id: a\n    type: transform\n    with: { value: 1 }\n";

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Wait until `at` (ms since the epoch): every process starts work at once. */
async function startAt(at: number): Promise<void> {
  await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
}

/**
 * A child process: `--flowstate <start> <dir> <name> <concurrency>` or
 * `--bare <start> <url> <schema> <name> <concurrency>`; it sets up, waits for
 * `start`, then works until killed.
 */
async function child(args: string[]): Promise<void> {
  if (args[0] === "--flowstate") {
    const [, start, dir, name, concurrency, root] = args;
    // Another checkout's code (QUEUE_BENCH_BEFORE), or this one's.
    const lib: typeof import("../mod.ts") = root ? await import(`file://${root}/mod.ts`) : {
      openRuntime,
      startWorker,
    } as never;
    const rt = await lib.openRuntime({ cwd: dir, config: join(dir, "flowstate.yaml") });
    if (WARMUP > 0) {
      // Runs of this process's own flow, first in the queue, worked to the end before the start.
      const flow = `warm-${name}`;
      for (let i = 0; i < WARMUP; i++) await rt.enqueue(flow, { priority: 1 });
      let ended = 0;
      const warmed = Promise.withResolvers<void>();
      const warm = lib.startWorker(rt, {
        workerId: `${name}-warm`,
        concurrency: Number(concurrency),
        pollMs: 50,
        flows: [flow],
        onEvent(e) {
          if (e.type === "end" && ++ended === WARMUP) warmed.resolve();
        },
      });
      await warmed.promise;
      await warm.stop();
    }
    const counts: Record<string, number> = {};
    if (Deno.env.get("QUEUE_BENCH_STATS") === "1") {
      // Calls and their outcomes, per process, written to a file after every end.
      const records = await rt.records();
      const proto = Object.getPrototypeOf(records);
      const original = proto.claimRuns;
      proto.claimRuns = async function (this: unknown, ...args: unknown[]) {
        const got = await original.apply(this, args);
        counts.claimCalls = (counts.claimCalls ?? 0) + 1;
        if (got.length === 0) counts.emptyClaims = (counts.emptyClaims ?? 0) + 1;
        return got;
      };
    }
    // Connected before the start, as the bare loop is: as many reads at once as runs at once.
    const records = await rt.records();
    const warm = Deno.env.get("QUEUE_BENCH_PRECONNECT") === "0" ? 1 : Number(concurrency);
    await Promise.all(Array.from({ length: warm }, () => records.listRunSummaries({ limit: 1 })));
    await startAt(Number(start));
    lib.startWorker(rt, {
      workerId: name,
      concurrency: Number(concurrency),
      pollMs: 50,
      onEvent(e) {
        if (e.type === "claim") console.log(JSON.stringify({ t: Date.now(), claim: e.runId }));
        if (e.type === "end") {
          console.log(JSON.stringify({ t: Date.now(), end: e.runId }));
          if (Deno.env.get("QUEUE_BENCH_STATS") === "1") {
            Deno.writeTextFileSync(join(dir, `stats-${name}.json`), JSON.stringify(counts));
          }
        }
      },
    });
    return; // Runs until killed.
  }
  const [, start, url, schema, name, concurrency] = args;
  const sql = openClient(url, { max: Number(concurrency) });
  const table = `"${schema}".bench_jobs`;
  await Promise.all(Array.from({ length: Number(concurrency) }, () => sql`SELECT 1`));
  /** Claim and finish jobs of `state` until none is left (`untilEmpty`) or forever. */
  const work = (state: string, untilEmpty: boolean) =>
    Promise.all(Array.from({ length: Number(concurrency) }, async () => {
      for (;;) {
        const now = Date.now();
        const rows = await sql.begin(async (tx) => {
          const [job] = await tx.unsafe(
            `SELECT id FROM ${table} WHERE state = $2 AND run_at <= $1
             ORDER BY priority DESC, run_at, id FOR UPDATE SKIP LOCKED LIMIT 1`,
            [now, state],
          );
          if (job === undefined) return [];
          await tx.unsafe(`UPDATE ${table} SET state = 'running', worker = $1 WHERE id = $2`, [
            name,
            job.id,
          ]);
          return [job];
        });
        if (rows.length === 0) {
          if (untilEmpty) return;
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        if (!untilEmpty) console.log(JSON.stringify({ t: now, claim: String(rows[0].id) }));
        await sql.unsafe(`UPDATE ${table} SET state = 'done' WHERE id = $1`, [rows[0].id]);
        if (!untilEmpty) console.log(JSON.stringify({ t: Date.now(), end: String(rows[0].id) }));
      }
    }));
  if (WARMUP > 0) await work("warm", true);
  await startAt(Number(start));
  await work("queued", false);
}

/**
 * Spawn `n` children with `args(start, i)`, all starting work at `start`;
 * resolve the throughput from `start` to the last end once `total` ended.
 */
async function race(
  n: number,
  args: (start: string, i: number) => string[],
  total: number,
  /** Server processes of the race's connections (`application_name` = tag): their CPU too. */
  server?: { admin: postgres.Sql; tag: string },
) {
  const start = Date.now() + 3_000 + 500 * n + (WARMUP > 0 ? 2_000 + 50 * WARMUP * n : 0);
  const backends = async (): Promise<Map<number, number>> => {
    const cpu = new Map<number, number>();
    if (server === undefined) return cpu;
    const rows = await server.admin`SELECT pid FROM pg_stat_activity
      WHERE application_name = ${server.tag}`;
    for (const r of rows) cpu.set(r.pid, cpuMsOf(r.pid));
    return cpu;
  };
  const procs = Array.from({ length: n }, (_, i) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-worker-options",
        ...V8_FLAGS,
        SELF,
        ...args(String(start), i),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn());
  // Their CPU at the start time: what they spent starting up is left out.
  const cpuAtStart = new Promise<number>((resolve) =>
    setTimeout(
      () => resolve(procs.reduce((sum, p) => sum + cpuMsOf(p.pid), 0)),
      Math.max(0, start - Date.now()),
    )
  );
  const serverAtStart = new Promise<Map<number, number>>((resolve) =>
    setTimeout(() => resolve(backends()), Math.max(0, start - Date.now()))
  );
  let first = Infinity;
  let last = 0;
  let ended = 0;
  const done = Promise.withResolvers<void>();
  const readers = procs.map(async (p) => {
    let rest = "";
    for await (const chunk of p.stdout.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const lines = rest.split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        const e = JSON.parse(line);
        if (e.claim) first = Math.min(first, e.t);
        if (e.end) {
          last = Math.max(last, e.t);
          if (++ended === total) done.resolve();
        }
      }
    }
  });
  await done.promise;
  // CPU the children spent (user + system), read before they go: a measure that a busy
  // machine bends less than the throughput.
  const cpu = procs.reduce((sum, p) => sum + cpuMsOf(p.pid), 0) - await cpuAtStart;
  // A backend that connected after the start counts from 0.
  const before = await serverAtStart;
  let serverCpu = 0;
  for (const [pid, ms] of await backends()) serverCpu += ms - (before.get(pid) ?? 0);
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.status));
  await Promise.all(readers);
  if (first < start) throw new Error("a child started before the start time");
  return {
    perSecond: total / ((last - start) / 1000),
    seconds: (last - start) / 1000,
    cpuPerRun: cpu / total,
    serverCpuPerRun: serverCpu / total,
  };
}

/** `url` with `application_name=tag`: the server processes of a race are found by it. */
function tagged(url: string, tag: string): string {
  const u = new URL(url);
  u.searchParams.set("application_name", tag);
  return u.toString();
}

/** CPU time (user + system) of process `pid` so far, in ms, from /proc (0 where there is none). */
function cpuMsOf(pid: number): number {
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const url = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
  if (!url) throw new Error("set FLOWSTATE_TEST_POSTGRES_URL");
  const runs = Number(Deno.args[0] ?? 400);
  const concurrency = Number(Deno.args[1] ?? 4);
  const rounds = Number(Deno.args[2] ?? 3);
  // QUEUE_BENCH_POOL: the connections of each worker process's pool (default concurrency + 2).
  const pool = Number(Deno.env.get("QUEUE_BENCH_POOL") ?? concurrency + 2);
  const admin = openClient(url, { max: 1 });
  const dirs: string[] = [];
  const schemas: string[] = [];
  // QUEUE_BENCH_WORKERS=4 (or 1,4): only these worker counts (default 1, 2, 4, 8).
  const WORKERS = (Deno.env.get("QUEUE_BENCH_WORKERS") ?? "1,2,4,8").split(",").map(Number);
  // QUEUE_BENCH_BEFORE=<a checkout of another commit>: its Flowstate measured too, in the
  // same rounds (what a change did, under the same load).
  const before = Deno.env.get("QUEUE_BENCH_BEFORE") ?? "";
  const measured = new Map<
    number,
    {
      fs: number[];
      bare: number[];
      before: number[];
      fsCpu: number[];
      beforeCpu: number[];
      /** Server CPU per run (ms): Flowstate's, bare's, before's. */
      fsPg: number[];
      /** The bare loop's processes' CPU per job (ms). */
      bareCpu: number[];
      barePg: number[];
      beforePg: number[];
    }
  >();
  for (const w of WORKERS) {
    measured.set(w, {
      fs: [],
      bare: [],
      before: [],
      fsCpu: [],
      beforeCpu: [],
      fsPg: [],
      bareCpu: [],
      barePg: [],
      beforePg: [],
    });
  }
  try {
    const flowstate = async (workers: number, root = "") => {
      // Flowstate: a fresh table, `runs` enqueued, then the workers start.
      const schema = `fs_qbench_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
      schemas.push(schema);
      const dir = await Deno.makeTempDir({ prefix: "flowstate-queue-bench-" });
      dirs.push(dir);
      await Deno.writeTextFile(join(dir, "trivial.flow.yaml"), FLOW);
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  main: { plugin: postgres, url: "${
          tagged(url, schema)
        }", schema: ${schema}, max: ${pool} }\nflows: [./trivial.flow.yaml${
          Array.from({ length: workers }, (_, i) => `, ./warm-w${i}.flow.yaml`).join("")
        }]\n`,
      );
      for (let i = 0; i < workers; i++) {
        await Deno.writeTextFile(
          join(dir, `warm-w${i}.flow.yaml`),
          FLOW.replace("id: trivial", `id: warm-w${i}`),
        );
      }
      {
        await using rt = await openRuntime({ cwd: dir, config: join(dir, "flowstate.yaml") });
        for (let i = 0; i < runs; i++) await rt.enqueue("trivial");
      }
      const result = await race(
        workers,
        (start, i) => ["--flowstate", start, dir, `w${i}`, String(concurrency), root],
        runs,
        { admin, tag: schema },
      );
      if (Deno.env.get("QUEUE_BENCH_STATS") === "1") {
        // The table's row operations and scans per run (enqueue included), as PostgreSQL counts.
        await new Promise((r) => setTimeout(r, 600)); // the statistics are sent every 500 ms
        const [t] = await admin.unsafe(
          `SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, seq_scan, idx_scan,
           idx_tup_fetch, n_dead_tup FROM pg_stat_user_tables WHERE schemaname = $1`,
          [schema],
        );
        const per = Object.entries(t ?? {}).map(([k, v]) =>
          `${k} ${(Number(v) / runs).toFixed(1)}`
        );
        const calls: Record<string, number> = {};
        for (let i = 0; i < workers; i++) {
          try {
            const c = JSON.parse(await Deno.readTextFile(join(dir, `stats-w${i}.json`)));
            for (const [k, v] of Object.entries(c)) calls[k] = (calls[k] ?? 0) + Number(v);
          } catch {
            // That worker ran nothing.
          }
        }
        for (const [k, v] of Object.entries(calls)) per.push(`${k} ${(v / runs).toFixed(2)}`);
        console.error(`${root ? "before" : "flowstate"} table stats per run: ${per.join(", ")}`);
      }
      return result;
    };
    const bare = async (workers: number) => {
      // Bare: the same number of jobs, processes and concurrency.
      const schema = `fs_qbare_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
      await admin.unsafe(`CREATE SCHEMA "${schema}"`);
      schemas.push(schema);
      await admin.unsafe(
        `CREATE TABLE "${schema}".bench_jobs (id bigserial PRIMARY KEY, priority int NOT NULL,
         run_at bigint NOT NULL, state text NOT NULL, worker text)`,
      );
      await admin.unsafe(
        `CREATE INDEX ON "${schema}".bench_jobs (state, priority DESC, run_at, id)`,
      );
      await admin.unsafe(
        `INSERT INTO "${schema}".bench_jobs (priority, run_at, state)
         SELECT 0, ${Date.now()}, 'queued' FROM generate_series(1, ${runs})`,
      );
      if (WARMUP > 0) {
        await admin.unsafe(
          `INSERT INTO "${schema}".bench_jobs (priority, run_at, state)
           SELECT 0, ${Date.now()}, 'warm' FROM generate_series(1, ${WARMUP * workers})`,
        );
      }
      return await race(
        workers,
        (start, i) => ["--bare", start, tagged(url, schema), schema, `b${i}`, String(concurrency)],
        runs,
        { admin, tag: schema },
      );
    };
    // Interleaved: every round measures each worker count, Flowstate and bare back to back
    // (which goes first alternates), so that a busier moment of the machine hits both.
    for (let round = 1; round <= rounds; round++) {
      for (const workers of WORKERS) {
        const m = measured.get(workers)!;
        const steps = [
          async () => {
            const r = await flowstate(workers);
            m.fs.push(r.perSecond);
            m.fsCpu.push(r.cpuPerRun);
            m.fsPg.push(r.serverCpuPerRun);
          },
          async () => {
            const r = await bare(workers);
            m.bare.push(r.perSecond);
            m.bareCpu.push(r.cpuPerRun);
            m.barePg.push(r.serverCpuPerRun);
          },
          ...(before
            ? [async () => {
              const r = await flowstate(workers, before);
              m.before.push(r.perSecond);
              m.beforeCpu.push(r.cpuPerRun);
              m.beforePg.push(r.serverCpuPerRun);
            }]
            : []),
        ];
        if (round % 2 === 0) steps.reverse();
        for (const step of steps) await step();
        console.error(
          `round ${round}, workers=${workers}: flowstate ${m.fs.at(-1)!.toFixed(0)}/s, bare ${
            m.bare.at(-1)!.toFixed(0)
          }/s${before ? `, before ${m.before.at(-1)!.toFixed(0)}/s` : ""}; CPU per run: workers ${
            m.fsCpu.at(-1)!.toFixed(1)
          } + server ${m.fsPg.at(-1)!.toFixed(1)} ms (bare ${m.bareCpu.at(-1)!.toFixed(1)} + ${
            m.barePg.at(-1)!.toFixed(1)
          } ms)${
            before
              ? `, before ${m.beforeCpu.at(-1)!.toFixed(1)} + ${m.beforePg.at(-1)!.toFixed(1)} ms`
              : ""
          }`,
        );
      }
    }
    const median = (xs: number[]) =>
      xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(
      `Throughput, ${runs} runs, ${concurrency} at once per process, ${rounds} rounds ` +
        `(median; each round's ratio in brackets):\n`,
    );
    console.log(
      "| worker processes | Flowstate runs/s | bare SKIP LOCKED jobs/s | ratio (median) | ratio per round | CPU ms per run: workers + server | bare CPU ms per job: workers + server |",
    );
    console.log("|---|---|---|---|---|---|---|");
    for (const workers of WORKERS) {
      const m = measured.get(workers)!;
      const ratios = m.fs.map((f, i) => f / m.bare[i]);
      console.log(
        `| ${workers} | ${median(m.fs).toFixed(0)} | ${median(m.bare).toFixed(0)} | ${
          median(ratios).toFixed(2)
        } | ${ratios.map((r) => r.toFixed(2)).join(", ")} | ${median(m.fsCpu).toFixed(1)} + ${
          median(m.fsPg).toFixed(1)
        } | ${median(m.bareCpu).toFixed(1)} + ${median(m.barePg).toFixed(1)} |`,
      );
    }
    if (before) {
      console.log(`\nBefore (${before}), the same rounds:\n`);
      console.log(
        "| worker processes | before runs/s | ratio to bare (median) | per round | CPU ms per run: workers + server |",
      );
      console.log("|---|---|---|---|---|");
      for (const workers of WORKERS) {
        const m = measured.get(workers)!;
        const ratios = m.before.map((f, i) => f / m.bare[i]);
        console.log(
          `| ${workers} | ${median(m.before).toFixed(0)} | ${median(ratios).toFixed(2)} | ${
            ratios.map((r) => r.toFixed(2)).join(", ")
          } | ${median(m.beforeCpu).toFixed(1)} + ${median(m.beforePg).toFixed(1)} |`,
        );
      }
      console.log("");
    }

    // Latency: enqueue → claim, 4 idle workers, on postgres (NOTIFY) and sqlite (polling).
    // QUEUE_BENCH_LATENCY=0 leaves it out.
    const latency = Deno.env.get("QUEUE_BENCH_LATENCY") === "0"
      ? []
      : ["postgres", "sqlite"] as const;
    for (const backend of latency) {
      const dir = await Deno.makeTempDir({ prefix: "flowstate-queue-latency-" });
      dirs.push(dir);
      const schema = `fs_qlat_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
      schemas.push(schema);
      await Deno.writeTextFile(join(dir, "trivial.flow.yaml"), FLOW);
      const store = backend === "postgres"
        ? `{ plugin: postgres, url: "${url}", schema: ${schema} }`
        : `{ plugin: sqlite, path: ./state.db }`;
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  main: ${store}\nflows: [./trivial.flow.yaml]\n`,
      );
      await using rt = await openRuntime({ cwd: dir, config: join(dir, "flowstate.yaml") });
      const workers = Array.from({ length: 4 }, (_, i) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--unstable-worker-options", SELF, "--flowstate-poll", dir, `l${i}`],
          stdout: "null",
          stderr: "inherit",
        }).spawn());
      await new Promise((r) => setTimeout(r, 3000)); // let them start and go idle
      const records = await rt.records();
      const ids: string[] = [];
      const enqueuedAt = new Map<string, number>();
      for (let i = 0; i < 100; i++) {
        const { runId } = await rt.enqueue("trivial");
        enqueuedAt.set(runId, Date.now());
        ids.push(runId);
        await new Promise((r) => setTimeout(r, 50));
      }
      const latencies: number[] = [];
      for (const id of ids) {
        for (;;) {
          const run = await records.getRun(id);
          if (run?.status === "succeeded") {
            latencies.push(Math.max(0, run.queue!.attempts[0].startedAt - enqueuedAt.get(id)!));
            break;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      for (const w of workers) w.kill("SIGKILL");
      await Promise.all(workers.map((w) => w.status));
      latencies.sort((a, b) => a - b);
      console.log(
        `\nEnqueue-to-start latency on ${backend}${
          backend === "postgres" ? " (LISTEN/NOTIFY)" : " (poll 500 ms ± 25%)"
        }, 100 runs, 4 idle workers: p50 ${quantile(latencies, 0.5)} ms, p95 ${
          quantile(latencies, 0.95)
        } ms`,
      );
    }
  } finally {
    for (const schema of schemas) await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--flowstate" || Deno.args[0] === "--bare") await child(Deno.args);
  else if (Deno.args[0] === "--flowstate-poll") {
    const [, dir, name] = Deno.args;
    const rt = await openRuntime({ cwd: dir, config: join(dir, "flowstate.yaml") });
    startWorker(rt, { workerId: name, concurrency: 4 });
  } else await main();
}
