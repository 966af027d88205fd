/**
 * `GET /api/runs/{id}/changes` at scale: a run that wrote 100,000 keys of a
 * sqlite store with a change feed, among 20,000 other changes made meanwhile
 * and 50,000 an hour before and after. Reads every page (1000 changes each,
 * with the value before each change) through `runChangesPage`, beside the
 * baseline in the same run: one plain scan of the whole feed keeping the
 * run's changes (what `flowstate changes --run` does; no values before).
 * Interleaved rounds; the summary prints the medians and their ratio.
 *
 * Run: deno run -A bench/run_changes_bench.ts [rounds=3]
 */
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import { fakeClock } from "../src/testing/clock.ts";
import { withActor } from "../src/store/actor.ts";
import { runChangesPage } from "../src/serve/run_changes.ts";
import type { RunRecord } from "../src/records/types.ts";
import type { Change } from "../src/store/types.ts";

const N = 100_000;
const OTHERS = 20_000;
const AROUND = 50_000;
const ROUNDS = Number(Deno.args[0] ?? 3);
const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-runchanges-" });
const clock = fakeClock(Date.now());
const runtime = await openRuntime({
  cwd: dir,
  home: join(dir, "home"),
  clock,
  config: {
    stores: {
      main: {
        plugin: "sqlite",
        path: join(dir, "state.db"),
        durability: "relaxed",
        changes: { keep: "30d" },
      },
    },
  },
});
const store = await runtime.store("main");
const value = (n: number) => ({ n, name: `entry ${n}`, tags: ["a", "b"] });

async function others(count: number, tag: string): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const op = store.atomic();
    for (let j = i; j < i + 500; j++) op.set(["other", tag, String(j % 5000)], value(j));
    await withActor({ actor: "someone-else" }, () => op.commit());
    clock.advance(1);
  }
}

await others(AROUND, "before");
clock.advance(3_600_000);
const run = { id: "bench-run", flowId: "bench", startedAt: clock.now() } as RunRecord;
let other = 0;
for (let i = 0; i < N; i += 500) {
  const op = store.atomic();
  // Half the keys are written a second time: their value before is the run's own.
  for (let j = i; j < i + 500; j++) op.set(["flow", "bench", `k${j % (N / 2)}`], value(j));
  await withActor({ runId: run.id, flowId: "bench", nodeId: `n${i % 3}` }, () => op.commit());
  if (other < OTHERS && i % 2500 === 0) {
    await others(500, "during");
    other += 500;
  }
  clock.advance(1);
}
run.endedAt = clock.now();
clock.advance(3_600_000);
await others(AROUND, "after");
console.log(`feed: ${(await store.feedInfo()).lastSeq} changes; the run's: ${N}`);

async function paged(): Promise<{ ms: number; n: number; pages: number }> {
  const t0 = performance.now();
  let cursor: string | undefined;
  let n = 0;
  let pages = 0;
  do {
    const page = await runChangesPage(runtime, run, { limit: 1000, cursor });
    n += page.changes.length;
    pages++;
    cursor = page.cursor;
  } while (cursor !== undefined);
  return { ms: performance.now() - t0, n, pages };
}

async function scan(): Promise<{ ms: number; n: number }> {
  const t0 = performance.now();
  const out: Change[] = [];
  for await (const change of store.changes()) if (change.by.runId === run.id) out.push(change);
  return { ms: performance.now() - t0, n: out.length };
}

const a: number[] = [];
const b: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const p = await paged();
  const s = await scan();
  if (p.n !== N || s.n !== N) throw new Error(`found ${p.n} / ${s.n}, expected ${N}`);
  a.push(p.ms);
  b.push(s.ms);
  console.log(
    `round ${r + 1}: paged ${p.ms.toFixed(0)} ms (${p.pages} pages), scan ${s.ms.toFixed(0)} ms`,
  );
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const ratios = a.map((x, i) => x / b[i]);
console.log(
  `median: paged ${median(a).toFixed(0)} ms = ${(N / median(a) * 1000).toFixed(0)} changes/s; ` +
    `scan ${median(b).toFixed(0)} ms; ratio ${median(ratios).toFixed(2)}x ` +
    `(${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
);
await runtime.close();
await Deno.remove(dir, { recursive: true });
