/**
 * What running custom nodes in Workers costs: the same trivial node module
 * run sandboxed (a Worker with no permissions) and trusted (in-process), in
 * one process, rounds interleaved, medians.
 *
 *   deno run --unstable-worker-options -A bench/sandbox_bench.ts [rounds]
 *
 * Per row: a 1-node run (one Worker start for the module, plus the run), a
 * 100-node run, and the warm cost per extra node ((100-node − 1-node) / 99).
 * "increment" nodes do one `ctx.flow.increment` (a message round trip to the
 * host when sandboxed). "reused" rows run on a runtime with
 * `nodes.workerIdle: 1m` (the daemon's default): the module's Worker from the
 * previous run serves the next, so no Worker starts.
 */
import { join } from "node:path";
import { openRuntime } from "../mod.ts";

const rounds = Number(Deno.args[0] ?? 7);
const dir = await Deno.makeTempDir({ prefix: "flowstate-sandbox-bench-" });
await Deno.mkdir(join(dir, "nodes"));
const schema = `{ "~standard": { version: 1, vendor: "bench", validate: (value) => ({ value }) } }`;
const modules = {
  noop: `run: () => 1`,
  increment: `run: (ctx) => ctx.flow.increment("n")`,
};
for (const [name, run] of Object.entries(modules)) {
  const source = `export default { kind: "flowstate.node", optionsSchema: ${schema}, ${run} };\n`;
  await Deno.writeTextFile(join(dir, "nodes", `${name}.ts`), source);
  await Deno.writeTextFile(join(dir, "nodes", `${name}_trusted.ts`), source);
}
const config = {
  stores: { default: { plugin: "memory" as const } },
  nodes: { trusted: ["./nodes/noop_trusted.ts", "./nodes/increment_trusted.ts"] },
};
const flowFile = async (type: string, n: number) => {
  const file = join(dir, `${type.replaceAll(/\W/g, "_")}_${n}.flow.yaml`);
  const nodes = Array.from({ length: n }, (_, i) => `  - { id: n${i}, type: ${type} }`);
  await Deno.writeTextFile(file, `id: bench\nconcurrency: 1\nnodes:\n${nodes.join("\n")}\n`);
  return file;
};

const cwd = Deno.cwd();
Deno.chdir(dir);
try {
  await using rt = await openRuntime({ config, home: join(dir, ".flowstate") });
  await using kept = await openRuntime({
    config: { ...config, nodes: { ...config.nodes, workerIdle: "1m" } },
    home: join(dir, ".flowstate"),
  });
  const cases = [
    ["noop, Worker", "./nodes/noop.ts", rt],
    ["noop, Worker reused", "./nodes/noop.ts", kept],
    ["noop, trusted", "./nodes/noop_trusted.ts", rt],
    ["increment, Worker", "./nodes/increment.ts", rt],
    ["increment, Worker reused", "./nodes/increment.ts", kept],
    ["increment, trusted", "./nodes/increment_trusted.ts", rt],
  ] as const;
  const files = new Map<string, [string, string]>();
  for (const [, type] of cases) {
    files.set(type, [await flowFile(type, 1), await flowFile(type, 100)]);
  }
  const times = new Map<string, [number[], number[]]>(cases.map(([l]) => [l, [[], []]]));
  const once = async (runtime: typeof rt, file: string) => {
    const t0 = performance.now();
    const run = await runtime.runFlow(file);
    if (run.status !== "succeeded") throw new Error(JSON.stringify(run.error));
    return performance.now() - t0;
  };
  for (let r = 0; r <= rounds; r++) {
    const order = r % 2 === 0 ? cases : [...cases].reverse();
    for (const [label, type, runtime] of order) {
      const [one, hundred] = files.get(type)!;
      const a = await once(runtime, one);
      const b = await once(runtime, hundred);
      if (r > 0) { // round 0 warms up
        times.get(label)![0].push(a);
        times.get(label)![1].push(b);
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  console.log(`custom nodes in Workers vs trusted, ${rounds} rounds, Deno ${Deno.version.deno}`);
  console.log("| node | 1-node run (ms) | 100-node run (ms) | per extra node (ms) |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const [label] of cases) {
    const [one, hundred] = times.get(label)!;
    const a = median(one), b = median(hundred);
    console.log(`| ${label} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${((b - a) / 99).toFixed(3)} |`);
  }
} finally {
  Deno.chdir(cwd);
  await Deno.remove(dir, { recursive: true });
}
