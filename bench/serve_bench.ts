/**
 * What the HTTP API adds over the library: an entry read
 * (`GET /api/stores/{store}/entry` vs `store.get`) and a page of 50 runs
 * (`GET /api/runs?limit=50` vs `records.listRunSummaries({ limit: 50 })`),
 * on one runtime served on 127.0.0.1 in the same process, calls
 * interleaved (library, HTTP, library, HTTP…) and repeated; p50 and p95
 * per row, printed as a markdown table.
 *
 *   deno run -A --unstable-worker-options bench/serve_bench.ts [iterations] [sqlite|memory]
 *
 * The HTTP client is `fetch` with keep-alive (one connection reused), so
 * the difference is one loopback request: routing, the token-free checks,
 * JSON serialization and parsing.
 */
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import { serve } from "../src/serve/server.ts";

const iterations = Number(Deno.args[0] ?? 2000);
const backend = Deno.args[1] ?? "sqlite";
const dir = await Deno.makeTempDir({ prefix: "flowstate-serve-bench-" });
try {
  await using rt = await openRuntime({
    cwd: dir,
    home: dir,
    config: {
      stores: {
        default: backend === "memory"
          ? { plugin: "memory" }
          : { plugin: "sqlite", path: join(dir, "state.db") },
      },
    },
  });
  const store = await rt.store();
  await store.set(["flow", "bench", "value"], {
    count: 42,
    tags: ["a", "b"],
    note: "x".repeat(200),
  });
  for (let i = 0; i < 200; i++) {
    await rt.runFlow({ id: "bench", nodes: [{ id: "n", type: "transform", with: { value: i } }] });
  }
  const records = await rt.records();
  const server = await serve(rt, { port: 0 });
  const entryUrl = new URL("/api/stores/default/entry?key=flow&key=bench&key=value", server.url);
  const runsUrl = new URL("/api/runs?limit=50", server.url);

  const cases: [string, () => Promise<unknown>][] = [
    ["state get, library (store.get)", () => store.get(["flow", "bench", "value"])],
    ["state get, HTTP (GET /api/stores/default/entry)", async () => (await fetch(entryUrl)).json()],
    [
      "run list page of 50, library (records.listRunSummaries)",
      () => records.listRunSummaries({ limit: 50 }),
    ],
    [
      "run list page of 50, HTTP (GET /api/runs?limit=50)",
      async () => (await fetch(runsUrl)).json(),
    ],
  ];
  const samples = cases.map(() => [] as number[]);
  for (let i = 0; i < Math.min(200, iterations); i++) for (const [, call] of cases) await call(); // warm-up
  for (let i = 0; i < iterations; i++) {
    for (const [c, [, call]] of cases.entries()) {
      const start = performance.now();
      await call();
      samples[c].push(performance.now() - start);
    }
  }
  await server.shutdown();
  const pct = (values: number[], p: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  };
  const ms = (n: number) => `${n.toFixed(3)} ms`;
  console.log(
    `Backend: ${backend}; ${iterations} interleaved calls per row; Deno ${Deno.version.deno}\n`,
  );
  console.log("| call | p50 | p95 |");
  console.log("|---|---:|---:|");
  for (const [c, [name]] of cases.entries()) {
    console.log(`| ${name} | ${ms(pct(samples[c], 0.5))} | ${ms(pct(samples[c], 0.95))} |`);
  }
  const added = (lib: number, http: number) =>
    `${ms(pct(samples[http], 0.5) - pct(samples[lib], 0.5))} at p50, ${
      ms(pct(samples[http], 0.95) - pct(samples[lib], 0.95))
    } at p95`;
  console.log(`\nHTTP adds: state get ${added(0, 1)}; run list ${added(2, 3)}.`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
