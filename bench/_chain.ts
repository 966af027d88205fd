/**
 * What the benchmarks of the 10k `state.increment` flow share: the flow, and
 * for the before/after ones the two checkouts and a scratch directory.
 *
 * @module
 */
import process from "node:process";

/**
 * Run each of `runs` `rounds` times, interleaved (the order alternating per
 * round): the CPU time (user + system of this process) of each call, in ms,
 * by name.
 */
export async function interleaved(
  runs: Record<string, () => unknown>,
  rounds: number,
): Promise<Record<string, number[]>> {
  const cpu: Record<string, number[]> = {};
  const names = Object.keys(runs);
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 ? [...names].reverse() : names) {
      const start = process.cpuUsage();
      await runs[name]();
      const used = process.cpuUsage(start);
      (cpu[name] ??= []).push((used.user + used.system) / 1000);
    }
  }
  return cpu;
}

/**
 * The checkout to compare against (`BEFORE`, default `/work/main`), this one,
 * and a new temporary directory (`prefix`); prints the load average first.
 */
export async function abTrees(
  prefix: string,
): Promise<{ before: string; after: string; dir: string }> {
  const before = (Deno.env.get("BEFORE") ?? "/work/main").replace(/\/$/, "");
  const after = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const dir = await Deno.makeTempDir({ prefix });
  console.log(`load average at the start: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
  return { before, after, dir };
}

/** A chain of `nodes` `state.increment` nodes, each needing the one before, on one flow key. */
export function incrementChain(nodes: number): Record<string, unknown> {
  return {
    id: "increments",
    nodes: Array.from({ length: nodes }, (_, i) => ({
      id: `n${i}`,
      type: "state.increment",
      needs: i === 0 ? [] : [`n${i - 1}`],
      with: { scope: "flow", key: "count" },
    })),
  };
}
