/**
 * One cold `flowstate run examples/counter.flow.yaml --quiet` inside this
 * process, then what importing `node:path` costs afterwards: ~0 ms when the run
 * initialised Deno's Node compatibility (some `node:` built-in was loaded),
 * 13–30 ms when it did not. Also says whether `zod` was loaded (it registers
 * `globalThis.__zod_globalConfig`). Prints one JSON line on stderr.
 *
 * Run (from the repository root; bench/cold_start.ts runs it several times):
 *   deno run -A bench/cold_probe.ts
 */
const t0 = performance.now();
const { main } = await import("../src/cli/main.ts");
const t1 = performance.now();
const code = await main(["run", "examples/counter.flow.yaml", "--quiet"]);
const t2 = performance.now();
const zodLoaded = "__zod_globalConfig" in globalThis;
await import("node:path");
const t3 = performance.now();
console.error(JSON.stringify({
  code,
  importMs: +(t1 - t0).toFixed(1),
  runMs: +(t2 - t1).toFixed(1),
  nodePathAfterMs: +(t3 - t2).toFixed(1),
  zodLoaded,
}));
