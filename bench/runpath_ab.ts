/**
 * The run path before and after, in one process (issue 14): this checkout's
 * runtime and another checkout's (`BEFORE=<path>`, default `/work/main`) run
 * the same flows, interleaved (the order alternates per round), each on its
 * own memory store; prints medians per node of wall and CPU time (user +
 * system of this process) and the ratios after/before.
 *
 * Flows: the 1,000-node chain of `transform` nodes of `bench/runpath.ts`, and
 * a 1,000-node chain of `state.increment` nodes (the same key).
 *
 * Run: BEFORE=/work/main deno run -A --unstable-worker-options bench/runpath_ab.ts [rounds=21]
 */
import process from "node:process";
import { openRuntime } from "../mod.ts";

const rounds = Number(Deno.args[0] ?? 21);
const before = Deno.env.get("BEFORE") ?? "/work/main";
const CHAIN = 1_000;
const { openRuntime: openBefore } = await import(
  new URL(`file://${before.replace(/\/$/, "")}/mod.ts`).href
) as { openRuntime: typeof openRuntime };

const chainOf = (id: string, type: string, w: () => Record<string, unknown>) => ({
  id,
  nodes: Array.from({ length: CHAIN }, (_, i) => ({
    id: `n${i}`,
    type,
    needs: i === 0 ? [] : [`n${i - 1}`],
    with: w(),
  })),
});
let v = 0;
const flows = {
  transform: chainOf("chain", "transform", () => ({ value: v++ })),
  "state.increment": chainOf("increments", "state.increment", () => ({
    scope: "flow",
    key: "count",
  })),
};
const config = { stores: { main: { plugin: "memory" as const } } };
const runtimes = { before: await openBefore({ config }), after: await openRuntime({ config }) };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`before: ${before}; load average ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
console.log(`(${rounds} interleaved rounds, medians per node)\n`);
console.log(
  "| flow | before wall | after wall | before CPU | after CPU | after/before (wall, CPU) |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const [name, flow] of Object.entries(flows)) {
  const samples = {
    before: { wall: [] as number[], cpu: [] as number[] },
    after: { wall: [] as number[], cpu: [] as number[] },
  };
  const once = async (which: "before" | "after") => {
    const c = process.cpuUsage();
    const t = performance.now();
    const run = await runtimes[which].runFlow(flow);
    const wall = performance.now() - t;
    const used = process.cpuUsage(c);
    if (run.status !== "succeeded") throw new Error(`${which}: run ${run.status}`);
    samples[which].wall.push(wall * 1000 / CHAIN);
    samples[which].cpu.push((used.user + used.system) / CHAIN);
  };
  for (let i = 0; i < 3; i++) await once("before"), await once("after"); // warm-up (and the caches)
  for (const s of Object.values(samples)) s.wall.length = s.cpu.length = 0;
  for (let r = 0; r < rounds; r++) {
    for (const which of r % 2 ? ["after", "before"] as const : ["before", "after"] as const) {
      await once(which);
    }
  }
  const [bw, aw, bc, ac] = [
    median(samples.before.wall),
    median(samples.after.wall),
    median(samples.before.cpu),
    median(samples.after.cpu),
  ];
  console.log(
    `| ${name} | ${bw.toFixed(1)} µs | ${aw.toFixed(1)} µs | ${bc.toFixed(1)} µs | ${
      ac.toFixed(1)
    } µs | ${(aw / bw).toFixed(2)}, ${(ac / bc).toFixed(2)} |`,
  );
}
console.log(`\nload average at the end: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
await runtimes.before.close();
await runtimes.after.close();
