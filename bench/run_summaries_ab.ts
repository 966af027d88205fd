/**
 * The library side of `runs ls`: `Records.listRunSummaries()` paging through
 * 10,000 runs (half through the queue: enqueued, claimed, finished; half run
 * directly), before and after a change, in one process: each checkout's
 * `Records` over its own memory store, seeded by its own code (the summaries
 * it writes). Lists all runs (summaries made from the records) and one
 * flow's (summaries read from its index), pages of 1,000 as `runs ls` reads
 * them. Rounds interleaved (the order flips every round); medians and
 * after/before ratios.
 *
 *   BEFORE=<another checkout> deno run -A bench/run_summaries_ab.ts [runs=10000] [rounds=21]
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const N = Number(Deno.args[0] ?? 10_000);
const ROUNDS = Number(Deno.args[1] ?? 21);
const before = Deno.env.get("BEFORE")?.replace(/\/$/, "");
if (before === undefined) throw new Error("BEFORE=<another checkout> is required");
const after = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

// deno-lint-ignore no-explicit-any
type Any = any;

async function seeded(checkout: string): Promise<Any> {
  const mod = await import(pathToFileURL(join(checkout, "records.ts")).href);
  const store = await mod.openStore({ plugin: "memory" });
  const records = new mod.Records(store);
  const flow = (id: string) => ({ id, nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
  const direct = (await records.saveVersion(flow("direct"))).hash;
  const queued = (await records.saveVersion(flow("queued"))).hash;
  for (let i = 0; i < N / 2; i++) {
    const t = Date.now();
    const run = {
      id: mod.newRunId(t),
      flowId: "direct",
      flowVersion: direct,
      status: "running",
      inputs: { i },
      outputs: null,
      startedAt: t,
      endedAt: null,
      durationMs: null,
      nodes: {},
      error: null,
    };
    await records.startRun(run);
    await records.finishRun({ ...run, status: "succeeded", outputs: {}, endedAt: t + 5 });
    await records.enqueueRun({
      flowId: "queued",
      flowVersion: queued,
      inputs: { i },
      flowPath: "/q",
    });
    const claimed = await records.claimRun({ worker: "w", leaseMs: 60_000 });
    await records.finishClaimedRun({ ...claimed, status: "succeeded", outputs: {} });
  }
  return records;
}

async function listAll(records: Any, flowId?: string): Promise<number> {
  let n = 0;
  let cursor: string | undefined;
  do {
    const page = await records.listRunSummaries({ flowId, limit: 1000, cursor });
    n += page.runs.length;
    cursor = page.cursor;
  } while (cursor !== undefined);
  return n;
}

const sides: Record<string, Any> = { before: await seeded(before), after: await seeded(after) };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(
  `| listRunSummaries of ${N} runs, memory (${ROUNDS} rounds) | before ms | after ms | after/before |`,
);
console.log("|---|---|---|---|");
for (const [what, flowId] of [["all runs", undefined], ["flow queued (its index)", "queued"]]) {
  const times: Record<string, number[]> = { before: [], after: [] };
  for (const name of ["before", "after"]) await listAll(sides[name], flowId); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of r % 2 ? ["after", "before"] : ["before", "after"]) {
      const t0 = performance.now();
      await listAll(sides[name], flowId);
      times[name].push(performance.now() - t0);
    }
  }
  const [b, a] = [median(times.before), median(times.after)];
  console.log(`| ${what} | ${b.toFixed(1)} | ${a.toFixed(1)} | ${(a / b).toFixed(2)} |`);
}
