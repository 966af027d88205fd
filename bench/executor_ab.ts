/**
 * The executor's own cost per node, before and after, in one process
 * (issue 14): this checkout and another (`BEFORE=<path>`, default
 * `/work/main`) each run the prepared 10k-node chain of `state.increment`
 * nodes with `executeFlow` alone (no records; events to a no-op listener),
 * and the store's own increment in a loop, on a store of their own
 * (`memory` by default, where the store's share is small and the executor's
 * shows; `sqlite` with relaxed durability as the second argument),
 * interleaved, the order alternating per round.
 *
 * Prints the CPU time (user + system of this process) per node: medians,
 * the executor minus the loop, and the per-round after/before ratio and
 * difference of the executor (median and p25–p75).
 *
 * Run: BEFORE=/work/main deno run -A bench/executor_ab.ts [rounds=21] [memory|sqlite]
 */
import { join } from "node:path";
import { abTrees, incrementChain, interleaved } from "./_chain.ts";

const rounds = Number(Deno.args[0] ?? 21);
const plugin = Deno.args[1] ?? "memory";
const NODES = 10_000;
const { before, after, dir } = await abTrees("flowstate-bench-executor-");

const flow = incrementChain(NODES);

const runs: Record<string, () => unknown> = {};
const closing: (() => Promise<void>)[] = [];
for (const [name, root] of [["before", before], ["after", after]] as const) {
  const url = (path: string) => new URL(`file://${root}/${path}`).href;
  const { openStore } = await import(url("mod.ts")) as typeof import("../mod.ts");
  const { loadFlowIn } = await import(
    url("src/flow/load.ts")
  ) as typeof import("../src/flow/load.ts");
  const { executeFlow } = await import(
    url("src/flow/executor.ts")
  ) as typeof import("../src/flow/executor.ts");
  const { increment } = await import(
    url("src/state/scopes.ts")
  ) as typeof import("../src/state/scopes.ts");
  const { systemClock } = await import(url("src/clock.ts")) as typeof import("../src/clock.ts");
  const store = await openStore(
    plugin === "sqlite"
      ? { plugin, path: join(dir, `${name}.db`), durability: "relaxed" }
      : { plugin: "memory" },
  );
  closing.push(() => store.close());
  const { prepared } = await loadFlowIn(flow, { cwd: dir });
  const resolver = { forScope: () => Promise.resolve(store), byName: () => Promise.resolve(store) };
  const key = ["flow", "increments", "count"];
  runs[`${name} loop`] = async () => {
    for (let i = 0; i < NODES; i++) await increment(store, key, 1);
  };
  runs[`${name} executor`] = () =>
    executeFlow(prepared, {
      runId: "0mjuw3ms0abcdefghijk",
      flowVersion: "bench",
      inputs: {},
      resolver,
      clock: systemClock,
      onEvent: () => {},
    });
}

for (const run of Object.values(runs)) await run(), await run(); // warm-up
// CPU µs per node, from ms per run.
const cpu = Object.fromEntries(
  Object.entries(await interleaved(runs, rounds)).map(([name, ms]) => [
    name,
    ms.map((x) => x * 1000 / NODES),
  ]),
);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const at = (xs: number[], q: number) => sorted(xs)[Math.round((xs.length - 1) * q)];
const us = (x: number) => `${x.toFixed(2)} µs`;
console.log(`\n${NODES} state.increment nodes, ${plugin}; CPU per node, ${rounds} rounds\n`);
console.log("| | before | after |\n| --- | --- | --- |");
for (const piece of ["loop", "executor"]) {
  console.log(
    `| ${piece} | ${us(at(cpu[`before ${piece}`], 0.5))} | ${us(at(cpu[`after ${piece}`], 0.5))} |`,
  );
}
const over = (w: string) => cpu[`${w} executor`].map((x, i) => x - cpu[`${w} loop`][i]);
console.log(`| executor − loop | ${us(at(over("before"), 0.5))} | ${us(at(over("after"), 0.5))} |`);
const b = cpu["before executor"];
const a = cpu["after executor"];
const ratio = a.map((x, i) => x / b[i]);
const diff = a.map((x, i) => x - b[i]);
console.log(
  `\nexecutor after/before per round: median ${at(ratio, 0.5).toFixed(3)} (p25–p75 ${
    at(ratio, 0.25).toFixed(3)
  }–${at(ratio, 0.75).toFixed(3)}); after − before: median ${us(at(diff, 0.5))} (p25–p75 ${
    us(at(diff, 0.25))
  } – ${us(at(diff, 0.75))})`,
);
for (const close of closing) await close();
console.log(`load average at the end: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
await Deno.remove(dir, { recursive: true });
