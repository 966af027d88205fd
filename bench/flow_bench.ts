/**
 * Executor overhead per node, beside calling the same node function directly.
 * Run: deno task bench
 */
import { z } from "zod";
import { defineNode, openStore, type Store } from "../mod.ts";
import { executeFlow } from "../src/flow/executor.ts";
import { validateFlow } from "../src/flow/parse.ts";
import { prepareFlow } from "../src/flow/prepare.ts";
import type { NodeContext } from "../src/flow/node.ts";

const add = defineNode({
  optionsSchema: z.object({ n: z.number() }),
  run: (_ctx, { n }) => n + 1,
});
const nodeTypes = new Map([["add", add as never]]);

const CHAIN = 10_000;
const WIDE = 1_000;
const chain = await prepareFlow(
  validateFlow({
    id: "chain",
    nodes: Array.from({ length: CHAIN }, (_, i) => ({
      id: `n${i}`,
      type: "add",
      needs: i === 0 ? [] : [`n${i - 1}`],
      with: { n: i === 0 ? 0 : `\${{ nodes.n${i - 1}.output }}` },
    })),
  }),
  { nodeTypes },
);
const wide = await prepareFlow(
  validateFlow({
    id: "wide",
    concurrency: WIDE,
    nodes: [
      ...Array.from({ length: WIDE }, (_, i) => ({ id: `n${i}`, type: "add", with: { n: i } })),
    ],
  }),
  { nodeTypes },
);

const store: Store = await openStore({ plugin: "memory" });
const resolver = { forScope: () => Promise.resolve(store), byName: () => Promise.resolve(store) };
const clock = { now: () => Date.now() };
let events = 0;
const options = {
  runId: "bench",
  flowVersion: "v",
  inputs: {},
  resolver,
  clock,
  onEvent: () => void events++,
};

Deno.bench({
  name: `direct: ${CHAIN} node calls in a loop`,
  group: "chain",
  baseline: true,
  async fn() {
    let n = 0;
    for (let i = 0; i < CHAIN; i++) {
      n = await add.run({} as NodeContext<{ n: number }>, { n }) as number;
    }
    if (n !== CHAIN) throw new Error("wrong result");
  },
});
Deno.bench({
  name: `executor: ${CHAIN}-node chain (memory store)`,
  group: "chain",
  async fn() {
    const run = await executeFlow(chain, options);
    if (run.status !== "succeeded" || run.nodes[`n${CHAIN - 1}`].output !== CHAIN) {
      throw new Error(`run ${run.status}`);
    }
  },
});
Deno.bench({
  name: `direct: ${WIDE} node calls at once`,
  group: "wide",
  baseline: true,
  async fn() {
    await Promise.all(
      Array.from({ length: WIDE }, (_, i) => add.run({} as NodeContext<{ n: number }>, { n: i })),
    );
  },
});
Deno.bench({
  name: `executor: ${WIDE}-wide fan-out (memory store)`,
  group: "wide",
  async fn() {
    const run = await executeFlow(wide, options);
    if (run.status !== "succeeded") throw new Error(`run ${run.status}`);
  },
});

// ---------------------------------------------------------------------------
// 10,000 state.increment nodes on the sqlite store (recorded like any run),
// beside the same 10,000 compare-and-set increments done directly on the Store.
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import { incrementChain } from "./_chain.ts";

const INCREMENTS = 10_000;
const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-flow-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const runtime = await openRuntime({
  config: { stores: { main: { plugin: "sqlite", path: join(dir, "flow.db") } } },
  cwd: dir,
});
const sqlite = await runtime.store("main");
const increments = incrementChain(INCREMENTS);

Deno.bench({
  name: `direct: ${INCREMENTS} compare-and-set increments on the sqlite Store`,
  group: "sqlite increments",
  baseline: true,
  n: 3,
  warmup: 1,
  async fn() {
    const key = ["bench", "direct-count"];
    for (let i = 0; i < INCREMENTS; i++) {
      const current = await sqlite.get<number>(key);
      const r = await sqlite.set(key, (current?.value ?? 0) + 1, {
        ifVersion: current?.version ?? null,
      });
      if (!r.ok) throw new Error("conflict");
    }
  },
});
Deno.bench({
  name: `executor: flow of ${INCREMENTS} state.increment nodes on sqlite (runFlow, recorded)`,
  group: "sqlite increments",
  n: 3,
  warmup: 1,
  async fn() {
    const run = await runtime.runFlow(increments);
    if (run.status !== "succeeded") throw new Error(`run ${run.status}: ${run.error?.message}`);
  },
});
