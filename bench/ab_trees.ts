// deno-lint-ignore-file no-explicit-any
/**
 * Same-process A/B of two source trees (before / after a refactor), doing the
 * work of bench/*.ts with the trees' own code, alternating the trees in every
 * round (order flipped each round) so machine noise hits both alike.
 * Prints per operation: median time of each tree, and after/before.
 *
 *   git worktree add /tmp/before 86a41a9
 *   deno run -A --config deno.json bench/ab_trees.ts /tmp/before . [rounds]
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [beforeRoot, afterRoot, roundsArg] = Deno.args;
const ROUNDS = Number(roundsArg ?? 9);

async function load(root: string) {
  const imp = (p: string) => import(pathToFileURL(join(root, p)).href);
  const mod = await imp("mod.ts");
  return {
    root,
    openStore: mod.openStore,
    defineNode: mod.defineNode,
    openRuntime: mod.openRuntime,
    executeFlow: (await imp("src/flow/executor.ts")).executeFlow,
    validateFlow: (await imp("src/flow/parse.ts")).validateFlow,
    prepareFlow: (await imp("src/flow/prepare.ts")).prepareFlow,
    backupStore: (await imp("jobs/backup.ts")).backupStore,
    restoreBackup: (await imp("jobs/restore.ts")).restoreBackup,
    moveStore: (await imp("jobs/migrate_store.ts")).moveStore,
  };
}

const dir = await Deno.makeTempDir({ prefix: "flowstate-ab-" });
const value = (n: number) => ({ n, name: "counter", tags: ["a", "b"], at: 1700000000000 + n });
let counter = 0;

type Op = () => Promise<void>;
async function setup(t: Awaited<ReturnType<typeof load>>, tag: string) {
  const { z } = await import("zod");
  const ops: Record<string, Op> = {};
  // sqlite plugin (as bench/sqlite_bench.ts)
  for (const durability of ["full", "relaxed"] as const) {
    const store = await t.openStore({
      plugin: "sqlite",
      path: join(dir, `${tag}-sqlite-${durability}.db`),
      durability,
    });
    const seed = store.atomic();
    for (let i = 0; i < 1000; i++) {
      seed.set(["list", `item${String(i).padStart(5, "0")}`], value(i));
    }
    await seed.commit();
    await store.set(["bench", "hot"], value(0));
    const sets = durability === "full" ? 100 : 1000;
    ops[`sqlite set ×${sets} (${durability})`] = async () => {
      for (let i = 0; i < sets; i++) await store.set(["bench", "hot"], value(++counter));
    };
    ops[`sqlite get ×2000 (${durability})`] = async () => {
      for (let i = 0; i < 2000; i++) {
        const e = await store.get(["bench", "hot"]);
        if (e === null || e.value.n < 0) throw new Error("unreachable");
      }
    };
    ops[`sqlite atomic 10k sets (${durability})`] = async () => {
      const round = ++counter;
      const op = store.atomic();
      for (let i = 0; i < 10_000; i++) op.set(["batch", `k${i}`], value(round + i));
      if (!(await op.commit()).ok) throw new Error("conflict");
    };
    ops[`sqlite list 1000 ×10 (${durability})`] = async () => {
      for (let r = 0; r < 10; r++) {
        let n = 0;
        for await (const _ of store.list({ prefix: ["list"] })) n++;
        if (n !== 1000) throw new Error(`listed ${n}`);
      }
    };
  }
  // memory plugin (as bench/memory_bench.ts)
  const mem = await t.openStore({ plugin: "memory" });
  const mv = { name: "counter", count: 0, tags: ["a", "b"], nested: { ok: true } };
  ops["memory set ×1000 ×5"] = async () => {
    for (let r = 0; r < 5; r++) {
      for (let j = 0; j < 1000; j++) {
        await mem.set(["flow", "bench", `k${j}`], { ...mv, count: counter++ });
      }
    }
  };
  ops["memory get ×1000 ×5"] = async () => {
    for (let r = 0; r < 5; r++) {
      for (let j = 0; j < 1000; j++) {
        const e = await mem.get(["flow", "bench", `k${j}`]);
        if (e === null || e.value.count < 0) throw new Error("missing");
      }
    }
  };
  // jsonfile plugin (as bench/jsonfile_bench.ts)
  for (const durability of ["full", "relaxed"] as const) {
    const store = await t.openStore({
      plugin: "jsonfile",
      path: join(dir, `${tag}-store-${durability}.json`),
      durability,
    });
    const payload = "x".repeat(150);
    const op = store.atomic();
    for (let i = 0; i < 500; i++) op.set(["item", String(i).padStart(4, "0")], { i, payload });
    await op.commit();
    let n = 0;
    ops[`jsonfile set ×50 (${durability})`] = async () => {
      for (let i = 0; i < 50; i++) {
        await store.set(["item", String(n++ % 500).padStart(4, "0")], { i: n, payload });
      }
    };
  }
  // executor (as bench/flow_bench.ts)
  const add = t.defineNode({
    optionsSchema: z.object({ n: z.number() }),
    run: (_c: any, { n }: any) => n + 1,
  });
  const nodeTypes = new Map([["add", add]]);
  const chain = await t.prepareFlow(
    t.validateFlow({
      id: "chain",
      nodes: Array.from({ length: 10_000 }, (_, i) => ({
        id: `n${i}`,
        type: "add",
        needs: i === 0 ? [] : [`n${i - 1}`],
        with: { n: i === 0 ? 0 : `\${{ nodes.n${i - 1}.output }}` },
      })),
    }),
    { nodeTypes },
  );
  const wide = await t.prepareFlow(
    t.validateFlow({
      id: "wide",
      concurrency: 1000,
      nodes: Array.from({ length: 1000 }, (_, i) => ({ id: `n${i}`, type: "add", with: { n: i } })),
    }),
    { nodeTypes },
  );
  const resolver = { forScope: () => Promise.resolve(mem), byName: () => Promise.resolve(mem) };
  const options = {
    runId: "bench",
    flowVersion: "v",
    inputs: {},
    resolver,
    clock: { now: () => Date.now() },
    onEvent: () => {},
  };
  ops["executor 10k chain"] = async () => {
    const run = await t.executeFlow(chain, options);
    if (run.status !== "succeeded") throw new Error(run.status);
  };
  ops["executor 1000-wide ×3"] = async () => {
    for (let r = 0; r < 3; r++) {
      const run = await t.executeFlow(wide, options);
      if (run.status !== "succeeded") throw new Error(run.status);
    }
  };
  // runFlow of 2,000 state.increment nodes on sqlite (full), recorded
  const rtDir = join(dir, `${tag}-rt`);
  await Deno.mkdir(rtDir);
  const rt = await t.openRuntime({
    config: { stores: { main: { plugin: "sqlite", path: join(rtDir, "flow.db") } } },
    cwd: rtDir,
  });
  const incr = {
    id: "increments",
    nodes: Array.from({ length: 2000 }, (_, i) => ({
      id: `n${i}`,
      type: "state.increment",
      needs: i === 0 ? [] : [`n${i - 1}`],
      with: { scope: "flow", key: "count" },
    })),
  };
  ops["runFlow 2000 increments (sqlite full)"] = async () => {
    const run = await rt.runFlow(incr);
    if (run.status !== "succeeded") throw new Error(run.status);
  };
  // backup / restore / move (as bench/backup_bench.ts, migrate_bench.ts; 10k entries)
  const src = await t.openStore({
    plugin: "sqlite",
    path: join(dir, `${tag}-src.db`),
    durability: "relaxed",
  });
  for (let i = 0; i < 10_000; i += 5000) {
    const op = src.atomic();
    for (let j = i; j < i + 5000; j++) {
      op.set(["bench", `g${j % 10}`, `k${String(j).padStart(6, "0")}`], {
        ...value(j),
        nested: { ok: j % 2 === 0 },
      });
    }
    await op.commit();
  }
  let fileNo = 0;
  const fixture = join(dir, `${tag}-fixture.fsbackup`);
  await t.backupStore(src, fixture);
  ops["backup 10k snapshot"] = async () => {
    await t.backupStore(src, join(dir, `${tag}-b-${fileNo++}.fsbackup`));
  };
  ops["backup 10k per-key"] = async () => {
    await t.backupStore(src, join(dir, `${tag}-b-${fileNo++}.fsbackup`), {
      consistency: "per-key",
    });
  };
  ops["restore 10k into sqlite (full)"] = async () => {
    const p = join(dir, `${tag}-t-${fileNo++}.db`);
    const target = await t.openStore({ plugin: "sqlite", path: p, durability: "full" });
    const r = await t.restoreBackup(target, fixture, { batchSize: 500 });
    if (r.restored !== 10_000) throw new Error("restore");
    await target.close();
    await Deno.remove(p);
  };
  ops["moveStore 10k sqlite→sqlite"] = async () => {
    const p = join(dir, `${tag}-m-${fileNo++}.db`);
    const target = await t.openStore({ plugin: "sqlite", path: p }, { name: "target" });
    const r = await t.moveStore(src, target);
    if (!r.verified) throw new Error("move");
    await target.close();
    await Deno.remove(p);
  };
  return ops;
}

const before = await setup(await load(beforeRoot), "before");
const after = await setup(await load(afterRoot), "after");
const times: Record<string, { before: number[]; after: number[] }> = {};
for (const name of Object.keys(after)) times[name] = { before: [], after: [] };

// one warm-up round
for (const name of Object.keys(after)) {
  await before[name]();
  await after[name]();
}
for (let r = 0; r < ROUNDS; r++) {
  for (const name of Object.keys(after)) {
    const order = (r + name.length) % 2 === 0
      ? ["before", "after"] as const
      : ["after", "before"] as const;
    for (const which of order) {
      const fn = which === "before" ? before[name] : after[name];
      const t0 = performance.now();
      await fn();
      times[name][which].push(performance.now() - t0);
    }
  }
  console.error(`round ${r + 1}/${ROUNDS} done`);
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const rows = Object.entries(times).map(([name, t]) => {
  const b = median(t.before);
  const a = median(t.after);
  // per-round paired ratios (after/before within the same round)
  const paired = t.after.map((x, i) => x / t.before[i]);
  return {
    name,
    beforeMs: +b.toFixed(2),
    afterMs: +a.toFixed(2),
    ratio: +(a / b).toFixed(3),
    pairedMedian: +median(paired).toFixed(3),
    pairedMin: +Math.min(...paired).toFixed(2),
    pairedMax: +Math.max(...paired).toFixed(2),
  };
});
console.log(JSON.stringify({ rounds: ROUNDS, rows }, null, 1));
await Deno.remove(dir, { recursive: true });
Deno.exit(0);
