/**
 * The cost of a whole small run, before and after, in one process: this
 * checkout's runtime and another checkout's (`BEFORE=<path>`, default
 * `/work/main`) each run a 2-node flow (`state.increment`, then `log`) `RUNS`
 * times per round on a store of their own (`sqlite`, durable, in a
 * temporary folder: the state and the run records in it, as `flowstate run`
 * keeps them), interleaved, the order alternating per round. What a run pays
 * once (recording its start and end, its version, its markers) shows here,
 * where a 1,000-node chain (`runpath_ab.ts`) shows the cost per node.
 *
 * Prints medians per run of wall and CPU time (user + system of this
 * process) and the ratios after/before.
 *
 * Run: BEFORE=/work/main deno run -A --unstable-worker-options bench/small_runs_ab.ts [rounds=15]
 */
import process from "node:process";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";

const rounds = Number(Deno.args[0] ?? 15);
const RUNS = 200;
const before = Deno.env.get("BEFORE") ?? "/work/main";
const { openRuntime: openBefore } = await import(
  new URL(`file://${before.replace(/\/$/, "")}/mod.ts`).href
) as { openRuntime: typeof openRuntime };

const flow = {
  id: "small",
  nodes: [
    { id: "bump", type: "state.increment", with: { scope: "flow", key: "count" } },
    { id: "say", type: "log", needs: ["bump"], with: { message: "n=${{ nodes.bump.output }}" } },
  ],
};
const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-small-runs-" });
const config = (name: string) => ({
  stores: { main: { plugin: "sqlite" as const, path: join(dir, `${name}.db`) } },
});
const runtimes = {
  before: await openBefore({ config: config("before") }),
  after: await openRuntime({ config: config("after") }),
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const samples = {
  before: { wall: [] as number[], cpu: [] as number[] },
  after: { wall: [] as number[], cpu: [] as number[] },
};
const round = async (which: "before" | "after") => {
  const c = process.cpuUsage();
  const t = performance.now();
  for (let i = 0; i < RUNS; i++) {
    const run = await runtimes[which].runFlow(flow);
    if (run.status !== "succeeded") throw new Error(`${which}: run ${run.status}`);
  }
  const wall = performance.now() - t;
  const used = process.cpuUsage(c);
  samples[which].wall.push(wall * 1000 / RUNS);
  samples[which].cpu.push((used.user + used.system) / RUNS);
};
console.log(`before: ${before}; load average ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
await round("before"), await round("after"); // warm-up
for (const s of Object.values(samples)) s.wall.length = s.cpu.length = 0;
for (let r = 0; r < rounds; r++) {
  for (const which of r % 2 ? ["after", "before"] as const : ["before", "after"] as const) {
    await round(which);
  }
}
const [bw, aw, bc, ac] = [
  median(samples.before.wall),
  median(samples.after.wall),
  median(samples.before.cpu),
  median(samples.after.cpu),
];
console.log(`(${rounds} interleaved rounds of ${RUNS} runs, medians per run)\n`);
console.log(
  "| run | before wall | after wall | before CPU | after CPU | after/before (wall, CPU) |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
console.log(
  `| 2 nodes, sqlite | ${bw.toFixed(0)} µs | ${aw.toFixed(0)} µs | ${bc.toFixed(0)} µs | ${
    ac.toFixed(0)
  } µs | ${(aw / bw).toFixed(2)}, ${(ac / bc).toFixed(2)} |`,
);
console.log(`\nload average at the end: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
await runtimes.before.close();
await runtimes.after.close();
await Deno.remove(dir, { recursive: true });
