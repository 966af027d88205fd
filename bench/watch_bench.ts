/**
 * A watcher without LISTEN (sqlite, jsonfile), this tree against another
 * (`BEFORE`, e.g. main unpacked with `git archive main | tar -x -C /tmp/before`),
 * in interleaved rounds, each watcher in a process of its own:
 *
 * 1. idle CPU: the watcher's process CPU time (user + system,
 *    `process.cpuUsage`) over `idleMs` while nobody writes, per second;
 * 2. latency across processes: this process then writes 30 entries (30 ms
 *    apart, each stamped with the wall-clock time it called `set`); the
 *    watcher reports when each arrived. p50 and p95 over every round;
 * 3. the floor: a process that only wakes every 20 ms, and an idle one.
 *
 *   BEFORE=/tmp/before deno run -A bench/watch_bench.ts [rounds=5] [idleMs=3000]
 *
 * Without `BEFORE`, this tree alone. The load average is printed at the start and the end.
 *
 * @module
 */
import process from "node:process";
import { join, resolve } from "node:path";
import { openStore, type StoreSpec } from "../mod.ts";
import { now, watchLatencies } from "./_watch.ts";

const WRITES = 30;
const spec = (plugin: string, path: string): StoreSpec => ({
  plugin,
  path,
  changes: { keep: "30d" },
});

if (Deno.args[0] === "floor") {
  // deno run -A watch_bench.ts floor <pollMs> <idleMs>: the same process doing nothing but
  // waking every pollMs (0: not at all), for the floor of a watcher's idle CPU.
  const [, pollMs, idleMs] = Deno.args.map(Number);
  await new Promise((r) => setTimeout(r, 300));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  if (pollMs === 0) await new Promise((r) => setTimeout(r, idleMs));
  else while (performance.now() - t0 < idleMs) await new Promise((r) => setTimeout(r, pollMs));
  const c = process.cpuUsage(c0);
  console.log(
    JSON.stringify({ cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 }),
  );
  Deno.exit(0);
}

if (Deno.args[0] === "child") {
  // deno run -A watch_bench.ts child <tree> <plugin> <path> <idleMs>
  const [, tree, plugin, path, idleMs] = Deno.args;
  const mod = await import(join(resolve(tree), "mod.ts")) as typeof import("../mod.ts");
  const store = await mod.openStore(spec(plugin, path));
  const watching = await watchLatencies(store, WRITES);
  await new Promise((r) => setTimeout(r, 300));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, Number(idleMs)));
  const c = process.cpuUsage(c0);
  const idle = { cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 };
  console.log("ready");
  const lat = await watching.done;
  await store.close();
  console.log(JSON.stringify({ idle, lat }));
  Deno.exit(0);
}

const ROUNDS = Number(Deno.args[0] ?? 5);
const IDLE_MS = Number(Deno.args[1] ?? 3000);
const BEFORE = Deno.env.get("BEFORE");
const trees: [string, string][] = [["after", new URL("..", import.meta.url).pathname]];
if (BEFORE) trees.push(["before", BEFORE]);
const dir = await Deno.makeTempDir({ prefix: "flowstate-watch-bench-" });
const loadAverage = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

/** One watcher process of `tree` on a fresh store: its idle CPU per second and its latencies. */
async function round(tree: string, plugin: string, path: string) {
  const config = join(new URL("..", import.meta.url).pathname, "deno.json");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      config,
      import.meta.filename!,
      "child",
      tree,
      plugin,
      path,
      String(IDLE_MS),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error("the watcher exited early");
    text += value;
  }
  await using store = await openStore(spec(plugin, path));
  for (let i = 0; i < WRITES; i++) {
    await store.set(["watched", String(i)], { sentAt: now() });
    await new Promise((r) => setTimeout(r, 30));
  }
  for (;;) {
    const { value, done } = await lines.read();
    if (done) break;
    text += value;
  }
  if (!(await child.status).success) throw new Error("the watcher failed");
  const result = JSON.parse(text.trim().split("\n").at(-1)!) as {
    idle: { cpuMs: number; wallMs: number };
    lat: number[];
  };
  return { cpuPerSecond: result.idle.cpuMs / result.idle.wallMs * 1000, lat: result.lat };
}

/** A process that only wakes every `pollMs` (0: never) for `IDLE_MS`: its CPU per second. */
async function floor(pollMs: number): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, "floor", String(pollMs), String(IDLE_MS)],
    stderr: "inherit",
  }).output();
  const { cpuMs, wallMs } = JSON.parse(new TextDecoder().decode(out.stdout));
  return cpuMs / wallMs * 1000;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) * p)];
};

console.log(`Deno ${Deno.version.deno}, ${ROUNDS} rounds, ${IDLE_MS} ms idle per round`);
console.log(`load average at start: ${loadAverage()}`);
console.log("");
console.log(
  "| plugin | tree | idle CPU per second, median (min–max) | latency p50 | p95 | changes |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
try {
  for (const plugin of ["sqlite", "jsonfile"]) {
    const cpu = new Map<string, number[]>(trees.map(([name]) => [name, []]));
    const lat = new Map<string, number[]>(trees.map(([name]) => [name, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? trees : [...trees].reverse();
      for (const [name, tree] of order) {
        const path = join(dir, `${plugin}-${name}-${r}.${plugin === "sqlite" ? "db" : "json"}`);
        const out = await round(tree, plugin, path);
        cpu.get(name)!.push(out.cpuPerSecond);
        lat.get(name)!.push(...out.lat);
      }
    }
    for (const [name] of trees) {
      const c = cpu.get(name)!;
      const l = lat.get(name)!;
      console.log(
        `| ${plugin} | ${name} | ${pct(c, 0.5).toFixed(2)} ms (${Math.min(...c).toFixed(2)}–${
          Math.max(...c).toFixed(2)
        }) | ${pct(l, 0.5).toFixed(1)} ms | ${pct(l, 0.95).toFixed(1)} ms | ${l.length} |`,
      );
    }
  }
  for (const pollMs of [20, 0]) {
    const c: number[] = [];
    for (let r = 0; r < ROUNDS; r++) c.push(await floor(pollMs));
    console.log(
      `| (floor) | ${
        pollMs ? `a process waking every ${pollMs} ms, nothing else` : "an idle process"
      } | ${pct(c, 0.5).toFixed(2)} ms (${Math.min(...c).toFixed(2)}–${
        Math.max(...c).toFixed(2)
      }) | — | — | — |`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
console.log("");
console.log(`load average at end: ${loadAverage()}`);
