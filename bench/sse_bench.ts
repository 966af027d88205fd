/**
 * Latency of `GET /api/events`: from a node event emitted in-process (a
 * trusted node's `ctx.log`, carrying `performance.now()` at emission) to its
 * arrival at an SSE reader over HTTP on loopback (`Deno.serve` +
 * `eventsRoute`, read with `fetch`), p50/p95/max over 200 events.
 *
 * Run: deno run -A --unstable-worker-options bench/sse_bench.ts
 * (`deno task bench` loads this file without running it.)
 */
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import { eventsRoute } from "../src/serve/events.ts";

const EVENTS = 200;

interface Scenario {
  name: string;
  /** ms between two events (0: all at once, in one synchronous burst). */
  gapMs: number;
  /** Other SSE clients connected (reading) at the same time. */
  otherClients: number;
}

const SCENARIOS: Scenario[] = [
  { name: "paced, 5 ms apart, 1 client", gapMs: 5, otherClients: 0 },
  { name: "paced, 5 ms apart, 10 clients", gapMs: 5, otherClients: 9 },
  { name: "burst of 200 at once, 1 client", gapMs: 0, otherClients: 0 },
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Read SSE messages from `url`, calling `onLog` with the arrival delay of each node.log. */
async function listen(
  url: string,
  signal: AbortSignal,
  onLog: (delayMs: number) => void,
  ready: () => void,
): Promise<void> {
  const response = await fetch(url, { signal });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let first = true;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const now = performance.now();
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (first) {
          first = false;
          ready(); // the retry: line: connected
        }
        if (!block.includes("event: node\n")) continue;
        const data = JSON.parse(block.slice(block.indexOf("data: ") + 6));
        if (data.event.type === "node.log") onLog(now - Number(data.event.message));
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}

async function measure(scenario: Scenario, dir: string): Promise<number[]> {
  await using rt = await openRuntime({
    config: { stores: { main: { plugin: "memory" } }, nodes: { trusted: ["./emit.ts"] } },
    cwd: dir,
  });
  const shutdown = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: shutdown.signal, onListen() {} },
    (request) => eventsRoute(rt, request, { signal: shutdown.signal }),
  );
  const url = `http://127.0.0.1:${server.addr.port}/api/events`;
  const delays: number[] = [];
  const connected: Promise<void>[] = [];
  const readers: Promise<void>[] = [];
  for (let i = 0; i <= scenario.otherClients; i++) {
    const { promise, resolve } = Promise.withResolvers<void>();
    connected.push(promise);
    readers.push(listen(url, shutdown.signal, i === 0 ? (d) => delays.push(d) : () => {}, resolve));
  }
  await Promise.all(connected);
  const run = await rt.runFlow({
    id: "emit",
    nodes: [{ id: "emit", type: "./emit.ts", with: { count: EVENTS, gapMs: scenario.gapMs } }],
  });
  if (run.status !== "succeeded") throw new Error(`run ${run.status}: ${run.error?.message}`);
  while (delays.length < EVENTS) await new Promise((r) => setTimeout(r, 10));
  shutdown.abort();
  await Promise.all(readers);
  await server.finished;
  return delays;
}

if (import.meta.main) {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-sse-bench-" });
  try {
    await Deno.writeTextFile(
      join(dir, "emit.ts"),
      `import { defineNode } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
import { z } from "zod";
export default defineNode({
  optionsSchema: z.object({ count: z.number(), gapMs: z.number() }),
  async run(ctx, { count, gapMs }) {
    for (let i = 0; i < count; i++) {
      ctx.log(String(performance.now()));
      if (gapMs > 0) await ctx.sleep(gapMs);
    }
    return null;
  },
});
`,
    );
    await measure(SCENARIOS[0], dir); // warm-up
    console.log(`| scenario (${EVENTS} node events) | p50 | p95 | max |`);
    console.log("|---|---:|---:|---:|");
    for (const scenario of SCENARIOS) {
      const delays = (await measure(scenario, dir)).sort((a, b) => a - b);
      const ms = (x: number) => `${x.toFixed(2)} ms`;
      console.log(
        `| ${scenario.name} | ${ms(percentile(delays, 50))} | ${ms(percentile(delays, 95))} | ${
          ms(delays.at(-1)!)
        } |`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
