/**
 * Where the time of a queued run goes on PostgreSQL: one worker process,
 * one run at a time, a trivial flow; every `Records` step and every driver
 * call (each one a round trip, or a pipelined batch of statements in one)
 * timed and counted, per run.
 *
 *   FLOWSTATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
 *     deno run -A --unstable-worker-options bench/queue_profile.ts [runs=200]
 */
import { join } from "node:path";
import { openClient } from "../plugins/postgres/client.ts";
import { openRuntime, startWorker } from "../mod.ts";
import { Records } from "../records.ts";
import { PostgresDriver } from "../plugins/postgres/mod.ts";

const FLOW = "id: trivial\nnodes:\n  - id: a\n    type: transform\n    with: { value: 1 }\n";

const spent = new Map<string, { ms: number; calls: number }>();
function timeMethods(proto: object, names: string[], label: string): void {
  for (const name of names) {
    const original = (proto as Record<string, unknown>)[name];
    if (typeof original !== "function") continue;
    (proto as Record<string, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
      const t0 = performance.now();
      const add = () => {
        const s = spent.get(`${label}.${name}`) ?? { ms: 0, calls: 0 };
        s.ms += performance.now() - t0;
        s.calls++;
        spent.set(`${label}.${name}`, s);
      };
      const result = original.apply(this, args);
      if (result instanceof Promise) return result.finally(add);
      if (result && typeof result === "object" && Symbol.asyncIterator in result) {
        // list(): count the iteration as one call (its pages are round trips).
        add();
        return result;
      }
      add();
      return result;
    };
  }
}

timeMethods(Records.prototype, [
  "claimRun",
  "claimRuns",
  "saveVersion",
  "startRun",
  "appendEvents",
  "finishClaimedRun",
  "finishRun",
  "heartbeatClaim",
  "reclaimLost",
  "getRun",
], "records");
timeMethods(PostgresDriver.prototype, [
  "get",
  "getMany",
  "commit",
  "claim",
  "list",
  "signal",
], "driver");

/** This process's CPU time (user + system), in ms, from /proc. */
function cpuMs(): number {
  const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  // utime and stime are fields 14 and 15 of the line (11 and 12 after the command name).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * CPU time of this benchmark's PostgreSQL server processes (its connections carry
 * `application_name` = `tag`), in ms, from /proc (a local server only).
 */
async function serverCpuMs(url: string, tag: string): Promise<number> {
  const admin = openClient(url, { max: 1 });
  try {
    const rows = await admin`SELECT pid FROM pg_stat_activity WHERE application_name = ${tag}`;
    let total = 0;
    for (const { pid } of rows) {
      try {
        const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
        total += (Number(fields[11]) + Number(fields[12])) * 10;
      } catch {
        // Gone meanwhile.
      }
    }
    return total;
  } finally {
    await admin.end();
  }
}

const url = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
if (!url) throw new Error("set FLOWSTATE_TEST_POSTGRES_URL");
const runs = Number(Deno.args[0] ?? 200);
const schema = `fs_qprof_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
const dir = await Deno.makeTempDir({ prefix: "flowstate-queue-profile-" });
const taggedUrl = new URL(url);
taggedUrl.searchParams.set("application_name", schema);
const tagged = taggedUrl.toString();
await Deno.writeTextFile(join(dir, "trivial.flow.yaml"), FLOW);
await Deno.writeTextFile(
  join(dir, "flowstate.yaml"),
  `stores:\n  main: { plugin: postgres, url: "${tagged}", schema: ${schema} }\nflows: [./trivial.flow.yaml]\n`,
);
try {
  await using rt = await openRuntime({ cwd: dir, config: join(dir, "flowstate.yaml") });
  for (let i = 0; i < runs; i++) await rt.enqueue("trivial");
  spent.clear();
  const cpu0 = cpuMs();
  const pg0 = await serverCpuMs(url, schema);
  let ended = 0;
  const done = Promise.withResolvers<void>();
  const t0 = performance.now();
  const worker = startWorker(rt, {
    workerId: "p",
    concurrency: 1,
    pollMs: 50,
    onEvent(e) {
      if (e.type === "end" && ++ended === runs) done.resolve();
    },
  });
  await done.promise;
  const total = performance.now() - t0;
  const cpu = cpuMs() - cpu0;
  const pg = (await serverCpuMs(url, schema)) - pg0;
  await worker.stop();
  console.log(`${runs} runs, one at a time: ${(total / runs).toFixed(1)} ms per run`);
  console.log(
    `CPU per run: this process ${(cpu / runs).toFixed(1)} ms, PostgreSQL server ${
      (pg / runs).toFixed(1)
    } ms (its own connections)\n`,
  );
  console.log("| step | calls per run | ms per run |");
  console.log("|---|---|---|");
  for (const [name, s] of [...spent].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(`| ${name} | ${(s.calls / runs).toFixed(2)} | ${(s.ms / runs).toFixed(2)} |`);
  }
} finally {
  const admin = openClient(url, { max: 1 });
  await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
  await Deno.remove(dir, { recursive: true });
}
