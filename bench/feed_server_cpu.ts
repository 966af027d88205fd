/**
 * The change feed's cost on PostgreSQL, server side (issue 15): durable sets
 * on a store without a feed, a store with one, and (with `BEFORE=<a
 * checkout>`) a store with one made by that checkout's code, in rotated
 * rounds in one process. Per set: wall time, CPU of this process, and CPU
 * of the store's server backends (user + system from `/proc/<pid>/stat`,
 * which the server must be on this machine to read; far less sensitive to
 * the load than wall time), and WAL written per set (the server's insert
 * position before and after each round: exact on a server of its own).
 *
 * Run: FLOWSTATE_TEST_POSTGRES_URL=… deno run -A bench/feed_server_cpu.ts [rounds] [sets]
 *
 * @module
 */
import process from "node:process";
import { openClient } from "../plugins/postgres/client.ts";
import { openStore, type Store, type StoreSpec } from "../mod.ts";

const url = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
if (url === undefined) {
  console.log("FLOWSTATE_TEST_POSTGRES_URL is not set: nothing to measure");
  Deno.exit(0);
}
const rounds = Number(Deno.args[0] ?? 7);
const sets = Number(Deno.args[1] ?? 500);
const before = Deno.env.get("BEFORE");
const schema = `feed_cpu_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
const admin = openClient(url, { max: 1 });
const ticks = 100; // USER_HZ

/** The server processes of the store opened by `open` (those that appeared meanwhile). */
async function withBackends(open: () => Promise<Store>): Promise<{ store: Store; pids: number[] }> {
  const pidsNow = async () =>
    new Set(
      (await admin`SELECT pid FROM pg_stat_activity WHERE application_name = 'flowstate'`).map(
        (r) => r.pid as number,
      ),
    );
  const known = await pidsNow();
  const store = await open();
  // Warm up: every connection of both pools is made and every statement prepared.
  for (let i = 0; i < 50; i++) await store.set(["warm", String(i % 5)], i);
  const pids = [...await pidsNow()].filter((p) => !known.has(p));
  return { store, pids };
}

/**
 * The server's WAL insert position, in bytes: WAL per set is the difference over a round
 * (exact on a server of its own; other clients' writes add to it on a shared one).
 */
async function walLsn(): Promise<bigint> {
  const [row] = await admin`SELECT pg_current_wal_insert_lsn()::text AS lsn`;
  const [hi, lo] = (row.lsn as string).split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

function serverCpuMs(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // gone
    }
  }
  return total * 1000 / ticks;
}

async function timeSets(
  target: { store: Store; pids: number[] },
  round: number,
): Promise<{ wall: number; cpu: number; server: number; wal: number }> {
  const value = { n: 0, name: "counter", tags: ["a", "b"], pad: "x".repeat(100) };
  const wal0 = await walLsn();
  const s0 = serverCpuMs(target.pids);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < sets; i++) {
    await target.store.set(["k", String(i % 50)], { ...value, n: round * sets + i });
  }
  const wall = (performance.now() - t0) / sets;
  const c = process.cpuUsage(c0);
  // The backends' counters move at the next tick: give them one.
  await new Promise((r) => setTimeout(r, 20));
  const server = (serverCpuMs(target.pids) - s0) * 1000 / sets;
  return {
    wall: wall * 1000,
    cpu: (c.user + c.system) / sets,
    server,
    wal: Number(await walLsn() - wal0) / sets,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;

const spec = (table: string, feed: boolean): StoreSpec =>
  ({
    plugin: "postgres",
    url,
    schema,
    table,
    max: 2,
    ...(feed ? { changes: { keep: "30d" } } : {}),
  }) as StoreSpec;

const targets: { label: string; store: Store; pids: number[] }[] = [];
targets.push({ label: "feed off", ...await withBackends(() => openStore(spec("plain", false))) });
targets.push({
  label: "feed on (this tree)",
  ...await withBackends(() => openStore(spec("feed", true))),
});
if (before !== undefined) {
  const mod = await import(`${before}/mod.ts`) as { openStore: typeof openStore };
  targets.push({
    label: `feed on (${before})`,
    ...await withBackends(() => mod.openStore(spec("feedold", true))),
  });
}
const results = targets.map(() => ({
  wall: [] as number[],
  cpu: [] as number[],
  server: [] as number[],
  wal: [] as number[],
}));
const load0 = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
for (let round = 0; round < rounds; round++) {
  for (let j = 0; j < targets.length; j++) {
    const i = (j + round) % targets.length;
    const r = await timeSets(targets[i], round);
    results[i].wall.push(r.wall);
    results[i].cpu.push(r.cpu);
    results[i].server.push(r.server);
    results[i].wal.push(r.wal);
  }
}
const load1 = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
console.log(
  `| postgres, one writer, ${rounds}×${sets} sets | wall per set (median, spread) | CPU here | server CPU (backends) | WAL per set | ratio of wall medians |`,
);
console.log("|---|---|---|---|---|---|");
const base = median(results[0].wall);
targets.forEach((t, i) => {
  const r = results[i];
  console.log(
    `| ${t.label} | ${median(r.wall).toFixed(0)} µs (${spread(r.wall)}) | ${
      median(r.cpu).toFixed(0)
    } µs | ${median(r.server).toFixed(0)} µs (${spread(r.server)}) | ${
      median(r.wal).toFixed(0)
    } B | ${(median(r.wall) / base).toFixed(2)}× |`,
  );
});
console.log(
  `\nload average ${load0} → ${load1}; backends per store: ${
    targets.map((t) => t.pids.length).join(", ")
  }`,
);
for (const t of targets) await t.store.close();
await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
await admin.end({ timeout: 5 });
