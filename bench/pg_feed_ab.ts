// deno-lint-ignore-file no-explicit-any
/**
 * The postgres change feed's reads on two source trees (before / after a
 * change), in one process on the same feed table of 1,000,000 changes
 * (small values; 100,000 keys, and one key, `["hot"]`, with every 20th
 * change): `store.changes({ since, limit: 100 })` and
 * `store.changes({ since, limit: 10000 })` (ten pages of 1000) from a
 * random `since`, and `keyHistory(store, ["hot"], { limit: 100 })`. The
 * sides alternate operation by operation, in an order that rotates step by
 * step, the same `since` for both. Per operation, the median over the
 * rounds of the wall time, of this process's CPU time (`process.cpuUsage`)
 * with the p25–p75 of the per-round ratios before / after (higher: after
 * is faster), and the server's CPU time per operation over all the rounds
 * (user + system of the store's one backend, from `/proc/<pid>/stat`: the
 * server must run on this machine; it counts in 10 ms ticks). The load
 * average is printed before and after.
 *
 *   git worktree add --detach /tmp/before main
 *   FLOWSTATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
 *     deno run -A bench/pg_feed_ab.ts /tmp/before [rounds=11] [ops=10] [only=<regexp>]
 *
 * `only` keeps the workloads whose label it matches (all by default).
 *
 * The feed is written by SQL (`generate_series`) into the table a store
 * made, in a schema of its own, dropped at the end.
 */
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { openClient } from "../plugins/postgres/client.ts";
import { openStore as openAfter } from "../mod.ts";
import { keyHistory as keyHistoryAfter } from "../src/store/store.ts";
import { median, spread } from "./_cpu.ts";

const [beforeRoot, roundsArg, opsArg, onlyArg] = Deno.args;
const url = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
if (beforeRoot === undefined || !url) {
  console.error(
    "usage: FLOWSTATE_TEST_POSTGRES_URL=… deno run -A bench/pg_feed_ab.ts <before-tree> " +
      "[rounds] [ops] [only]",
  );
  Deno.exit(2);
}
const ROUNDS = Number(roundsArg ?? 11);
const OPS = Number(opsArg ?? 10);
const ONLY = new RegExp(onlyArg ?? "");
const N = 1_000_000;
const { openStore: openBefore } = await import(pathToFileURL(join(beforeRoot, "mod.ts")).href);
const { keyHistory: keyHistoryBefore } = await import(
  pathToFileURL(join(beforeRoot, "src/store/store.ts")).href
);
const load = () => Deno.readTextFileSync("/proc/loadavg").trim();

/** The CPU time (user + system) of server process `pid` so far, in µs. */
function serverCpuUs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000; // utime, stime in 10 ms ticks
}

interface Side {
  store: any;
  pid: number;
  keyHistory: (store: any, key: unknown[], options: unknown) => AsyncIterable<unknown>;
}

/** Rounds of `OPS` steps, each running `op` on both sides (rotating order) with one argument. */
async function race(label: string, sides: Record<string, Side>, op: (s: Side, x: number) => any) {
  if (!ONLY.test(label)) return;
  const names = Object.keys(sides);
  const m = Object.fromEntries(names.map((n) => [n, { wall: [], cpu: [], server: [] }])) as Record<
    string,
    Record<"wall" | "cpu" | "server", number[]>
  >;
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % (N - 10_000);
  for (const n of names) await op(sides[n], next()); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const w = names.map(() => 0);
    const c = names.map(() => 0);
    const s0 = names.map((n) => serverCpuUs(sides[n].pid));
    for (let i = 0; i < OPS; i++) {
      const x = next();
      for (let k = 0; k < names.length; k++) {
        const j = (i + k + r) % names.length;
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await op(sides[names[j]], x);
        w[j] += performance.now() - t0;
        const d = process.cpuUsage(c0);
        c[j] += d.user + d.system;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20)); // the backends' counters: a tick
    names.forEach((n, j) => {
      m[n].wall.push(w[j] / OPS * 1000);
      m[n].cpu.push(c[j] / OPS);
      m[n].server.push((serverCpuUs(sides[n].pid) - s0[j]) / OPS);
    });
  }
  const us = (x: number) => x >= 10_000 ? `${(x / 1000).toFixed(1)} ms` : `${x.toFixed(0)} µs`;
  const [a, b] = names;
  const cell = (k: "wall" | "cpu", n: string) => {
    const ratios = m[n][k].map((t, i) => m[a][k][i] / t);
    return `${us(median(m[n][k]))} | ${(median(m[a][k]) / median(m[n][k])).toFixed(2)} | ${
      spread(ratios)
    }`;
  };
  // The server's: over all the rounds (a round of cheap operations may not last one tick).
  const server = (n: string) => m[n].server.reduce((x, y) => x + y, 0) / ROUNDS;
  for (const n of [a, b]) {
    console.log(
      `| ${label} | ${n} | ${cell("wall", n)} | ${cell("cpu", n)} | ${us(server(n))} | ` +
        `${(server(a) / server(n)).toFixed(2)} |`,
    );
  }
}

const schema = `bench_feed_${crypto.randomUUID().slice(0, 8)}`;
const table = "t";
const admin = openClient(url, { max: 1 });
try {
  const spec = { plugin: "postgres", url, schema, table, max: 1, changes: { keep: "30d" } };
  {
    await using s = await openAfter(spec);
    await s.set(["k", "000001"], 1);
  }
  const ft = `"${schema}"."${table}_feed"`;
  await admin.unsafe(
    `INSERT INTO ${ft} (seq, at, key, op, value, version, previous_version, expires_at, by) ` +
      `SELECT g, 1796531816128 + g, CASE WHEN g % 20 = 0 THEN '\\x686f7400'::bytea ` +
      `ELSE '\\x6b00'::bytea || convert_to(lpad((g % 100000)::text, 6, '0'), 'UTF8') || ` +
      `'\\x00'::bytea END, 'set', (g % 1000)::text, 'v' || g, NULL, NULL, ` +
      `'{"actor":"unknown"}' FROM generate_series(2, ${N}) g`,
  );
  await admin.unsafe(`VACUUM ANALYZE ${ft}`);
  const pids = async () =>
    new Set(
      (await admin`
        SELECT pid FROM pg_stat_activity WHERE application_name = 'flowstate'
          AND datname = current_database() AND query LIKE ${`%${schema}%_feed%`}`)
        .map((r) => r.pid as number),
    );
  /** A side: its store, opened by `open`, and the backend that read its feed. */
  const side = async (open: typeof openAfter, keyHistory: Side["keyHistory"]) => {
    const known = await pids();
    const store = await open(spec as never);
    for await (const _ of store.changes({ since: N - 5 })) { /* connect */ }
    const pid = [...await pids()].find((p) => !known.has(p))!;
    return { store, pid, keyHistory };
  };
  const sides = {
    before: await side(openBefore, keyHistoryBefore),
    after: await side(openAfter, keyHistoryAfter as Side["keyHistory"]),
  };
  console.log(`Deno ${Deno.version.deno}, ${N} changes, ${ROUNDS} rounds of ${OPS} ops`);
  console.log(`load average before: ${load()}`);
  console.log("");
  console.log(
    "| workload | who | wall | before / it | rounds p25–p75 | client CPU | before / it | " +
      "rounds p25–p75 | server CPU | before / it |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  const drain = async (changes: AsyncIterable<unknown>) => {
    let n = 0;
    for await (const _ of changes) n++;
    return n;
  };
  await race(
    "changes, limit 100",
    sides,
    (s, since) => drain(s.store.changes({ since, limit: 100 })),
  );
  await race(
    "changes, limit 10000 (pages of 1000)",
    sides,
    (s, since) => drain(s.store.changes({ since, limit: 10_000 })),
  );
  await race(
    "keyHistory of a key with 50,000 changes, limit 100",
    sides,
    (s) => drain(s.keyHistory(s.store, ["hot"], { limit: 100 })),
  );
  console.log("");
  console.log(`load average after: ${load()}`);
  await sides.before.store.close();
  await sides.after.store.close();
} finally {
  await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}
