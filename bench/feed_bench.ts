/**
 * The change feed's cost and speed (issue 15):
 * 1. durable `set` with the feed on vs off (the raw baseline: the same store
 *    without a feed), sqlite (`durability: "full"`) and postgres; interleaved
 *    rounds, reported as the median per-write time and the ratio;
 * 2. `watch()` latency across processes: another process writes (stamping
 *    the wall-clock time it called `set`), this one watches; p50 and p95 of
 *    delivery minus stamp, sqlite (polling) and postgres (LISTEN/NOTIFY);
 *    beside it, on postgres, the raw `listen`/`signal` round trip of the same
 *    store, the floor any watch there can reach.
 *
 * Run: deno run -A bench/feed_bench.ts   (FLOWSTATE_TEST_POSTGRES_URL for postgres)
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { openStore, type Store, type StoreSpec } from "../mod.ts";
import { now, watchLatencies } from "./_watch.ts";

if (Deno.args[0] === "writer") {
  // The other process: write `count` stamped values, `gapMs` apart.
  const [, specJson, count, gapMs] = Deno.args;
  const store = await openStore(JSON.parse(specJson) as StoreSpec);
  await new Promise((r) => setTimeout(r, 300)); // let the watcher start
  for (let i = 0; i < Number(count); i++) {
    await store.set(["watched", String(i)], { sentAt: now() });
    await new Promise((r) => setTimeout(r, Number(gapMs)));
  }
  await store.close();
  Deno.exit(0);
}

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
/** `FEED_BENCH_WATCH=0`: the set costs only (no watch latency). */
const WATCH = Deno.env.get("FEED_BENCH_WATCH") !== "0";
const ROUNDS = Number(Deno.env.get("FEED_BENCH_ROUNDS") ?? 5);
const WRITES = Number(Deno.env.get("FEED_BENCH_WRITES") ?? 200);
const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-feed-" });
const schema = `feed_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

/** Wall and CPU time (this process: user + system) per set, in ms. */
async function timeSets(store: Store, round: number): Promise<{ wall: number; cpu: number }> {
  const value = { n: 0, name: "counter", tags: ["a", "b"], pad: "x".repeat(100) };
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < WRITES; i++) {
    await store.set(["k", String(i % 50)], { ...value, n: round * WRITES + i });
  }
  const wall = (performance.now() - start) / WRITES;
  const cpu1 = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu1.user + cpu1.system) / 1000 / WRITES };
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

async function setCost(label: string, off: StoreSpec, on: StoreSpec): Promise<string> {
  const plain = await openStore(off);
  const feed = await openStore(on);
  const a: { wall: number; cpu: number }[] = [];
  const b: { wall: number; cpu: number }[] = [];
  try {
    await timeSets(plain, -1); // warm up both
    await timeSets(feed, -1);
    for (let r = 0; r < ROUNDS; r++) {
      // Interleaved, alternating which goes first.
      if (r % 2 === 0) {
        a.push(await timeSets(plain, r));
        b.push(await timeSets(feed, r));
      } else {
        b.push(await timeSets(feed, r));
        a.push(await timeSets(plain, r));
      }
    }
  } finally {
    await plain.close();
    await feed.close();
  }
  const wa = median(a.map((x) => x.wall));
  const wb = median(b.map((x) => x.wall));
  const ca = median(a.map((x) => x.cpu));
  const cb = median(b.map((x) => x.cpu));
  // The ratio of each round's pair too (the rounds share the minute's load).
  const pairs = a.map((x, i) => b[i].wall / x.wall);
  return `| ${label} | ${(wa * 1000).toFixed(0)} µs | ${(wb * 1000).toFixed(0)} µs | ${
    (wb / wa).toFixed(2)
  }× | ${median(pairs).toFixed(2)}× | ${(ca * 1000).toFixed(0)} → ${
    (cb * 1000).toFixed(0)
  } µs | ${loadAverage()} | ${ROUNDS}×${WRITES} |`;
}

async function watchLatency(label: string, spec: StoreSpec): Promise<string> {
  const COUNT = 60;
  const store = await openStore(spec);
  const watching = await watchLatencies(store, COUNT);
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, "writer", JSON.stringify(spec), String(COUNT), "30"],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!child.success) throw new Error("writer failed");
  const lat = await watching.done;
  await store.close();
  return `| ${label} | ${median(lat).toFixed(1)} ms | ${pct(lat, 0.95).toFixed(1)} ms | ${COUNT} |`;
}

async function signalRoundTrip(spec: StoreSpec): Promise<string> {
  const a = await openStore(spec);
  const b = await openStore(spec);
  const lat: number[] = [];
  try {
    for (let i = 0; i < 60; i++) {
      let sent = 0;
      const got = Promise.withResolvers<void>();
      // Listening before signalling (a signal sent before LISTEN took effect is lost).
      const stop = await a.listen!("bench", () => {
        lat.push(now() - sent);
        got.resolve();
      });
      await new Promise((r) => setTimeout(r, 20));
      sent = now();
      await b.signal!("bench");
      await got.promise;
      await stop();
    }
  } finally {
    await a.close();
    await b.close();
  }
  return `| postgres: raw listen/signal (baseline) | ${median(lat).toFixed(1)} ms | ${
    pct(lat, 0.95).toFixed(1)
  } ms | 60 |`;
}

try {
  const sqlite = (name: string, changes: boolean): StoreSpec => ({
    plugin: "sqlite",
    path: join(dir, `${name}.db`),
    durability: "full",
    ...(changes ? { changes: { keep: "30d" } } : {}),
  });
  const pg = (table: string, changes: boolean): StoreSpec => ({
    plugin: "postgres",
    url: PG_URL!,
    schema,
    table,
    ...(changes ? { changes: { keep: "30d" } } : {}),
  });
  console.log(
    "| durable set | feed off (baseline) | feed on | ratio | median of round ratios | " +
      "CPU per set (this process) | load after | rounds×writes |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  console.log(await setCost("sqlite (durability full)", sqlite("off", false), sqlite("on", true)));
  console.log(
    await setCost(
      "sqlite (durability relaxed)",
      { ...sqlite("roff", false), durability: "relaxed" },
      { ...sqlite("ron", true), durability: "relaxed" },
    ),
  );
  if (PG_URL) console.log(await setCost("postgres", pg("off", false), pg("on", true)));
  if (WATCH) {
    console.log();
    console.log("| watch across processes | p50 | p95 | changes |");
    console.log("|---|---|---|---|");
    console.log(await watchLatency("sqlite (polling the head, 20 ms)", sqlite("watch", true)));
  }
  if (WATCH && PG_URL) {
    console.log(await watchLatency("postgres (LISTEN/NOTIFY)", pg("watch", true)));
    console.log(await signalRoundTrip(pg("signal", false)));
  }
} finally {
  await Deno.remove(dir, { recursive: true });
  if (PG_URL) {
    const { openClient } = await import("../plugins/postgres/client.ts");
    const sql = openClient(PG_URL);
    await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await sql.end();
  }
}
