/**
 * A `forEach` node's run path before and after (the running node's
 * `node.progress` events): this checkout's runtime and another checkout's
 * (`BEFORE=<path>`, default `/work/main`) run the same flows, interleaved (the
 * order alternates per round), each on its own SQLite store (`STORE=memory`:
 * a memory store); prints medians
 * per item of wall and CPU time (user + system of this process), the ratios
 * after/before, and the events each run recorded (count and JSON bytes).
 *
 * Flows: one node of 10,000 `transform` items, one of 2,000 `state.increment`
 * items (one key, ~5 s on SQLite), each `concurrency: 16`: long enough to record progress.
 *
 * Run: BEFORE=/work/main deno run -A --unstable-worker-options bench/for_each_ab.ts [rounds=11]
 */
import process from "node:process";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";

const rounds = Number(Deno.args[0] ?? 11);
const before = Deno.env.get("BEFORE") ?? "/work/main";
const { openRuntime: openBefore } = await import(
  new URL(`file://${before.replace(/\/$/, "")}/mod.ts`).href
) as { openRuntime: typeof openRuntime };

const eachOf = (id: string, n: number, type: string, w: Record<string, unknown>) => ({
  id,
  nodes: [{
    id: "each",
    type,
    forEach: { items: Array.from({ length: n }, (_, i) => i), concurrency: 16 },
    with: w,
  }],
});
const flows = {
  "10,000 transform items": {
    flow: eachOf("transforms", 10_000, "transform", { value: "${{ item }}" }),
    items: 10_000,
  },
  "2,000 state.increment items": {
    flow: eachOf("increments", 2_000, "state.increment", { scope: "flow", key: "n" }),
    items: 2_000,
  },
};
const dir = await Deno.makeTempDir({ prefix: "flowstate-foreach-ab-" });
const memory = Deno.env.get("STORE") === "memory";
const configOf = (name: string) => ({
  stores: {
    main: memory
      ? { plugin: "memory" as const }
      : { plugin: "sqlite" as const, path: join(dir, `${name}.db`) },
  },
});
const runtimes = {
  before: await openBefore({ config: configOf("before") }),
  after: await openRuntime({ config: configOf("after") }),
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`before: ${before}; load average ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
console.log(
  `(${rounds} interleaved rounds, ${memory ? "memory" : "SQLite"}, medians per item)\n`,
);
console.log(
  "| flow | before wall | after wall | before CPU | after CPU | after/before (wall, CPU) | events before → after (progress) | event bytes before → after |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const [name, { flow, items }] of Object.entries(flows)) {
  const samples = {
    before: { wall: [] as number[], cpu: [] as number[], events: 0, bytes: 0, progress: 0 },
    after: { wall: [] as number[], cpu: [] as number[], events: 0, bytes: 0, progress: 0 },
  };
  const once = async (which: "before" | "after") => {
    const c = process.cpuUsage();
    const t = performance.now();
    const run = await runtimes[which].runFlow(flow);
    const wall = performance.now() - t;
    const used = process.cpuUsage(c);
    if (run.status !== "succeeded") throw new Error(`${which}: run ${run.status}`);
    samples[which].wall.push(wall * 1000 / items);
    samples[which].cpu.push((used.user + used.system) / items);
    const events = await (await runtimes[which].records()).getEvents(run.id);
    samples[which].events = Math.max(samples[which].events, events.length);
    samples[which].bytes = Math.max(samples[which].bytes, JSON.stringify(events).length);
    samples[which].progress = Math.max(
      samples[which].progress,
      events.filter((e) => e.type === ("node.progress" as string)).length,
    );
  };
  for (let i = 0; i < 2; i++) await once("before"), await once("after"); // warm-up
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
  const { before: b, after: a } = samples;
  console.log(
    `| ${name} | ${bw.toFixed(1)} µs | ${aw.toFixed(1)} µs | ${bc.toFixed(1)} µs | ${
      ac.toFixed(1)
    } µs | ${(aw / bw).toFixed(2)}, ${
      (ac / bc).toFixed(2)
    } | ${b.events} → ${a.events} (${a.progress}) | ${b.bytes} → ${a.bytes} |`,
  );
}
console.log(`\nload average at the end: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
await runtimes.before.close();
await runtimes.after.close();
await Deno.remove(dir, { recursive: true });
