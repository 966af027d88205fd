// deno-lint-ignore-file no-explicit-any
/**
 * Same-process A/B of point-in-time restore between two source trees (before
 * / after a change), on bench/pitr_bench.ts's data: a sqlite store (relaxed)
 * with a change feed, a full backup of 1,000 entries, then 100,000 changes
 * over 20,000 keys. Each round, for each tree (order flipped every round),
 * with that tree's own code: read the 100,000 changes through
 * `store.changes()`, then `restoreBackup` at the last change into a new
 * sqlite store. Prints changes/s (wall clock) and changes per CPU-second of
 * the process (which moves much less with the machine's load), per round and
 * the medians, and after/before.
 *
 *   git archive 3ee2127 | tar -x -C /tmp/before   # (or a git worktree)
 *   deno run -A bench/pitr_ab.ts /tmp/before . [rounds=6]
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import process from "node:process";

const [beforeRoot, afterRoot, roundsArg] = Deno.args;
if (beforeRoot === undefined || afterRoot === undefined) {
  console.error("usage: deno run -A bench/pitr_ab.ts <before tree> <after tree> [rounds]");
  Deno.exit(2);
}
const ROUNDS = Number(roundsArg ?? 6);
const N = 100_000;
const KEYS = 20_000;

async function load(root: string) {
  const imp = (p: string) => import(pathToFileURL(join(root, p)).href);
  return {
    openStore: (await imp("mod.ts")).openStore,
    backupStore: (await imp("jobs/backup.ts")).backupStore,
    restoreBackup: (await imp("jobs/restore.ts")).restoreBackup,
  };
}
const trees: Record<string, any> = { before: await load(beforeRoot), after: await load(afterRoot) };

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const value = (n: number) => ({ n, name: `entry ${n}`, tags: ["a", "b"], score: n / 7 });

// The data, written once with the after tree (the stored format is the same).
const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-pitr-ab-" });
const spec = {
  plugin: "sqlite",
  path: join(dir, "source.db"),
  durability: "relaxed",
  changes: { keep: "30d" },
};
const setup = await trees.after.openStore(spec, { name: "source" });
for (let i = 0; i < 1000; i++) await setup.set(["bench", `k${i}`], value(i));
const full = join(dir, "full.fsbackup");
await trees.after.backupStore(setup, full);
const from = (await setup.feedInfo()).lastSeq;
for (let i = 0; (await setup.feedInfo()).lastSeq - from < N; i += 100) {
  const op = setup.atomic();
  for (let j = i; j < i + 100; j++) {
    const key = ["bench", `k${(j * 7919) % KEYS}`];
    if (j % 10 === 9) op.delete(key);
    else op.set(key, value(j));
  }
  await op.commit();
}
await setup.close();
const last = from + N;

type Series = { read: number[]; restore: number[]; readCpu: number[]; restoreCpu: number[] };
const results: Record<string, Series> = {
  before: { read: [], restore: [], readCpu: [], restoreCpu: [] },
  after: { read: [], restore: [], readCpu: [], restoreCpu: [] },
};
let fileNo = 0;
for (let round = 0; round < ROUNDS; round++) {
  for (const name of round % 2 === 0 ? ["before", "after"] : ["after", "before"]) {
    const t = trees[name];
    const r = results[name];
    const source = await t.openStore(spec, { name: "source" });
    let c0 = cpuMs();
    let t0 = performance.now();
    let n = 0;
    for await (const change of source.changes({ since: from })) {
      if (change.seq > last) break;
      n++;
    }
    r.read.push((n / (performance.now() - t0)) * 1000);
    r.readCpu.push((n / (cpuMs() - c0)) * 1000);
    const path = join(dir, `t${fileNo++}.db`);
    const target = await t.openStore({ plugin: "sqlite", path, durability: "relaxed" }, {
      name: "target",
    });
    c0 = cpuMs();
    t0 = performance.now();
    const result = await t.restoreBackup(target, full, { at: { seq: last }, from: source });
    r.restore.push((N / (performance.now() - t0)) * 1000);
    r.restoreCpu.push((N / (cpuMs() - c0)) * 1000);
    if (result.changes !== N) throw new Error(`replayed ${result.changes}, not ${N}`);
    await target.close();
    await source.close();
    for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});
  }
  const f = (x: number) => Math.round(x);
  const { before: b, after: a } = results;
  console.log(
    `round ${round + 1}: restore before ${f(b.restore[round])}/s after ${f(a.restore[round])}/s ` +
      `(per CPU-second ${f(b.restoreCpu[round])} / ${f(a.restoreCpu[round])}); read before ` +
      `${f(b.read[round])}/s after ${f(a.read[round])}/s`,
  );
}
await Deno.remove(dir, { recursive: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `\n${N} changes, ${ROUNDS} rounds, load average ${
    Deno.loadavg().map((x) => x.toFixed(1)).join(" ")
  }`,
);
for (const key of ["restore", "restoreCpu", "read", "readCpu"] as const) {
  const ratios = results.after[key].map((a, i) => a / results.before[key][i]);
  console.log(
    `${key.padEnd(10)} median before ${Math.round(median(results.before[key]))} after ${
      Math.round(median(results.after[key]))
    }; after/before median ${median(ratios).toFixed(2)} (rounds ${Math.min(...ratios).toFixed(2)}–${
      Math.max(...ratios).toFixed(2)
    })`,
  );
}
