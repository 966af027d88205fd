/**
 * The run path (issue 14), each measurement beside its baseline in the same
 * process, interleaved and repeated; prints markdown tables of medians and
 * ratios.
 *
 * 1. A recorded `rt.runFlow` of a 1,000-node chain of `transform` nodes on a
 *    memory store, its prepared flow cached by the runtime, in µs per node;
 *    beside the same 1,000 node functions called directly in a loop.
 * 2. A recorded `rt.runFlow` of 10,000 chained `state.increment` nodes on a
 *    sqlite store, beside two baselines, in both durabilities:
 *    - bare node:sqlite: 10,000 increments, one
 *      `INSERT … ON CONFLICT DO UPDATE SET value = value + 1` each, the same
 *      journal mode and synchronous setting (the stricter baseline);
 *    - the store's own increment: 10,000 calls of the increment that
 *      `state.increment` makes (`increment(store, key)`: one compare-and-set)
 *      on a Flowstate sqlite store opened with the same durability, in a
 *      loop, without a flow or a run record (what issue 14 called "direct
 *      increments").
 *
 * Wall time and this process's CPU time (user + system) are both reported:
 * on a machine shared with other work the CPU time is the steadier one
 * (it leaves out waiting for fsync and for a core).
 *
 * Run: deno run -A --unstable-worker-options bench/runpath.ts [rounds=10] [increments=10000]
 */
import { DatabaseSync } from "node:sqlite";
import process from "node:process";
import { join } from "node:path";
import { openRuntime, openStore } from "../mod.ts";
import { builtinNodes } from "../src/flow/nodes.ts";
import { increment } from "../src/state/scopes.ts";
import type { NodeContext } from "../src/flow/node.ts";
import { incrementChain } from "./_chain.ts";

const rounds = Number(Deno.args[0] ?? 10);
const INCREMENTS = Number(Deno.args[1] ?? 10_000);
const CHAIN = 1_000;
const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-runpath-" });
console.log(`load average at the start: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** CPU time of this process (user + system) in ms, and the wall time, of `fn`. */
const cpu = { samples: new Map<string, number[]>() };
async function timed(fn: () => Promise<unknown> | unknown, name?: string): Promise<number> {
  const c = process.cpuUsage();
  const t = performance.now();
  await fn();
  const wall = performance.now() - t;
  const used = process.cpuUsage(c);
  if (name !== undefined) {
    const list = cpu.samples.get(name) ?? [];
    list.push((used.user + used.system) / 1000);
    cpu.samples.set(name, list);
  }
  return wall;
}

// --- 1. runFlow per node on a cached flow --------------------------------
const transform = builtinNodes.get("transform")!;
const chain = {
  id: "chain",
  nodes: Array.from({ length: CHAIN }, (_, i) => ({
    id: `n${i}`,
    type: "transform",
    needs: i === 0 ? [] : [`n${i - 1}`],
    with: { value: i },
  })),
};
const memory = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
const direct = async () => {
  for (let i = 0; i < CHAIN; i++) {
    await transform.run({} as NodeContext<never>, { value: i } as never);
  }
};
const recorded = async () => {
  const run = await memory.runFlow(chain);
  if (run.status !== "succeeded") throw new Error(`run ${run.status}`);
};
// Warm-up (and the cache): the steady state of a runtime running a cached flow over and over.
// Ten runs, not three: on a loaded machine V8's optimised code arrived after the third run
// (CPU per node 16–20 µs after 3 warm-up runs vs 10–16 µs after 10, back to back at load 13).
for (let i = 0; i < 10; i++) await recorded(), await direct();
const perNode = { direct: [] as number[], runFlow: [] as number[] };
for (let r = 0; r < rounds * 3; r++) {
  if (r % 2) {
    perNode.runFlow.push(await timed(recorded, "runFlow"));
    perNode.direct.push(await timed(direct, "direct"));
  } else {
    perNode.direct.push(await timed(direct, "direct"));
    perNode.runFlow.push(await timed(recorded, "runFlow"));
  }
}
await memory.close();
const us = (ms: number) => (ms * 1000 / CHAIN).toFixed(1);
console.log(
  `\n1. Recorded runFlow, ${CHAIN}-node chain of transform nodes, memory store, cached flow`,
);
console.log(`(${rounds * 3} interleaved rounds, medians)\n`);
console.log("| what | wall per node | CPU per node |");
console.log("| --- | --- | --- |");
console.log(
  `| direct: the node function called in a loop | ${us(median(perNode.direct))} µs | ${
    us(median(cpu.samples.get("direct")!))
  } µs |`,
);
console.log(
  `| rt.runFlow (recorded, memory store) | ${us(median(perNode.runFlow))} µs | ${
    us(median(cpu.samples.get("runFlow")!))
  } µs |`,
);

// --- 2. 10k state.increment nodes vs bare node:sqlite -----------------------
const increments = incrementChain(INCREMENTS);
console.log(
  `\n2. ${INCREMENTS} increments: a recorded flow of state.increment nodes vs bare node:sqlite ` +
    `and vs the store's own increment in a loop`,
);
console.log(
  `(${rounds} interleaved rounds, medians; ratio = baseline time / flow time, per round; ` +
    `CPU = this process's user + system time)\n`,
);
console.log(
  "| durability | bare node:sqlite | store increment loop | runFlow (recorded) | " +
    "ratio bare/flow | ratio store loop/flow | CPU: bare / store loop / flow | " +
    "CPU ratio bare/flow | CPU ratio store loop/flow |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const durability of ["relaxed", "full"] as const) {
  const rt = await openRuntime({
    config: {
      stores: { main: { plugin: "sqlite", path: join(dir, `${durability}.db`), durability } },
    },
    cwd: dir,
  });
  const db = new DatabaseSync(join(dir, `bare-${durability}.db`));
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA synchronous = ${durability === "full" ? "FULL" : "NORMAL"}`);
  db.exec(
    "CREATE TABLE kv (key BLOB PRIMARY KEY, value TEXT NOT NULL, version TEXT NOT NULL) WITHOUT ROWID",
  );
  const add = db.prepare(
    "INSERT INTO kv (key, value, version) VALUES (?, 1, ?) ON CONFLICT (key) DO UPDATE " +
      "SET value = value + 1, version = excluded.version RETURNING value",
  );
  const key = new TextEncoder().encode("flow\0increments\0count");
  let seq = 0;
  const bare = () => {
    let last = 0;
    for (let i = 0; i < INCREMENTS; i++) {
      last = (add.get(key, `v${seq++}`) as { value: number }).value;
    }
    return last;
  };
  const flow = async () => {
    const run = await rt.runFlow(increments);
    if (run.status !== "succeeded") throw new Error(`run ${run.status}: ${run.error?.message}`);
  };
  const store = await openStore({
    plugin: "sqlite",
    path: join(dir, `store-${durability}.db`),
    durability,
  });
  const storeKey = ["flow", "increments", "count"];
  const storeLoop = async () => {
    let last = 0;
    for (let i = 0; i < INCREMENTS; i++) last = await increment(store, storeKey, 1);
    return last;
  };
  await flow(), bare(), await storeLoop(); // warm-up (and the cache)
  const times = {
    bare: [] as number[],
    store: [] as number[],
    flow: [] as number[],
    ratio: [] as number[],
    storeRatio: [] as number[],
  };
  // Three orders in turn, so none of the three always runs first.
  const orders = [["bare", "store", "flow"], ["flow", "bare", "store"], ["store", "flow", "bare"]];
  const run = { bare, store: storeLoop, flow } as Record<string, () => unknown>;
  for (let r = 0; r < rounds; r++) {
    const t: Record<string, number> = {};
    for (const what of orders[r % 3]) t[what] = await timed(run[what], `${what} ${durability}`);
    times.bare.push(t.bare), times.store.push(t.store), times.flow.push(t.flow);
    times.ratio.push(t.bare / t.flow), times.storeRatio.push(t.store / t.flow);
  }
  const cpuBare = cpu.samples.get(`bare ${durability}`)!;
  const cpuStore = cpu.samples.get(`store ${durability}`)!;
  const cpuFlow = cpu.samples.get(`flow ${durability}`)!;
  const cpuRatio = median(cpuBare.map((b, k) => b / cpuFlow[k]));
  const cpuStoreRatio = median(cpuStore.map((b, k) => b / cpuFlow[k]));
  const ms = (xs: number[]) => `${median(xs).toFixed(0)} ms`;
  console.log(
    `| ${durability} | ${ms(times.bare)} | ${ms(times.store)} | ${ms(times.flow)} | ${
      median(times.ratio).toFixed(2)
    } | ${median(times.storeRatio).toFixed(2)} | ${ms(cpuBare)} / ${ms(cpuStore)} / ${
      ms(cpuFlow)
    } | ${cpuRatio.toFixed(2)} | ${cpuStoreRatio.toFixed(2)} |`,
  );
  db.close();
  await store.close();
  await rt.close();
}
console.log(`\nload average at the end: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
await Deno.remove(dir, { recursive: true });
