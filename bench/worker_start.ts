/**
 * What a custom node's Worker start costs a run: `rt.runFlow` of a one-node
 * flow whose node runs in a Worker (no reuse: `nodes.workerIdle` 0, so every
 * run starts one), beside a bare baseline doing the least the same work
 * needs: `new Worker()` of a module importing the same node module, from the
 * main thread, until it posts a message. Rounds interleaved; medians.
 *
 *   deno run --unstable-worker-options -A bench/worker_start.ts [rounds]
 *
 * Also times, once per round, a bare Worker started from inside a Worker
 * (what a node's Worker paid when a loader Worker started it): Deno 2.9
 * holds such a Worker ~500 ms.
 */
import { join, toFileUrl } from "../src/_path.ts";
import { openRuntime } from "../mod.ts";

const rounds = Number(Deno.args[0] ?? 15);
const dir = await Deno.makeTempDir({ prefix: "flowstate-worker-start-" });
const schema = `{ "~standard": { version: 1, vendor: "bench", validate: (value) => ({ value }) } }`;
await Deno.mkdir(join(dir, "project", "nodes"), { recursive: true });
const nodeFile = join(dir, "project", "nodes", "noop.ts");
await Deno.writeTextFile(
  nodeFile,
  `export default { kind: "flowstate.node", optionsSchema: ${schema}, run: () => 1 };\n`,
);
const flowFile = join(dir, "project", "one.flow.yaml");
await Deno.writeTextFile(flowFile, "id: one\nnodes:\n  - { id: n, type: ./nodes/noop.ts }\n");
const nodeUrl = toFileUrl(nodeFile).href;
const bareEntry = "data:application/javascript," +
  encodeURIComponent(`await import(${JSON.stringify(nodeUrl)});\npostMessage("up");\n`);
const loaderEntry = "data:application/javascript," + encodeURIComponent(
  `const w = new Worker(${JSON.stringify(bareEntry)}, { type: "module" });\n` +
    `w.onmessage = () => { w.terminate(); postMessage("up"); };\n`,
);

async function workerUp(entry: string): Promise<number> {
  const t0 = performance.now();
  const w = new Worker(
    entry,
    { type: "module", deno: { permissions: "inherit" } } as WorkerOptions,
  );
  await new Promise((resolve) => w.onmessage = resolve);
  const ms = performance.now() - t0;
  w.terminate();
  return ms;
}

await using rt = await openRuntime({
  cwd: join(dir, "project"),
  home: join(dir, "home"),
  config: { stores: { default: { plugin: "memory" } }, nodes: { workerIdle: 0 } },
});
const ours: number[] = [];
const bare: number[] = [];
const nested: number[] = [];
await rt.runFlow(flowFile); // warm: Deno's caches, the flow cache
await workerUp(bareEntry);
for (let i = 0; i < rounds; i++) {
  const t0 = performance.now();
  const run = await rt.runFlow(flowFile);
  if (run.status !== "succeeded") throw new Error(JSON.stringify(run.error));
  ours.push(performance.now() - t0);
  bare.push(await workerUp(bareEntry));
  if (i % 5 === 0) nested.push(await workerUp(loaderEntry));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ratios = ours.map((o, i) => o / bare[i]).sort((a, b) => a - b);
console.log(`custom node Worker start, ${rounds} rounds, Deno ${Deno.version.deno}`);
console.log(`| what | median (ms) |\n| --- | ---: |`);
console.log(`| runFlow of a 1-node custom flow (a Worker each run) | ${median(ours).toFixed(1)} |`);
console.log(
  `| bare: new Worker() importing the node module, to its first message | ${
    median(bare).toFixed(1)
  } |`,
);
console.log(
  `| bare, started from inside a Worker (${nested.length} times) | ${median(nested).toFixed(1)} |`,
);
console.log(
  `ours / bare per round: median ${median(ratios).toFixed(2)} (p25 ${
    ratios[Math.floor(ratios.length / 4)].toFixed(2)
  }, p75 ${ratios[Math.floor((3 * ratios.length) / 4)].toFixed(2)})`,
);
await Deno.remove(dir, { recursive: true });
