// deno-lint-ignore-file no-explicit-any
/**
 * The fixed cost of an indexed query on sqlite: an `eq` with one match and a
 * range with `orderBy` and `limit: 10`, on two source trees (before / after a
 * change) beside the bare statement using the same index, in one process on
 * one file. The file is built once and kept (pass the same path again to
 * reuse it; 1,000,000 entries take minutes to load). Rounds interleaved, the
 * order rotated every round; medians, ratios bare / it, p25–p75 of the
 * per-round ratios, and CPU per op (`process.cpuUsage`).
 *
 *   git worktree add --detach /tmp/before main
 *   deno run -A bench/eq_fixed_ab.ts /tmp/before /tmp/s100k.db 100000 15
 *   deno run -A bench/eq_fixed_ab.ts /tmp/before /tmp/s1m.db 1000000 5
 *
 * A before tree of `-` runs this tree alone. `ONLY=indexed eq` (or `ONLY=indexed range`)
 * runs one workload; `RANGE_OPS` sets the range's operations per round (default ops / 16).
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { openStore as openAfter } from "../mod.ts";
import { fillOrders } from "./_orders.ts";
import { prefixTerms, rankExpr, valueExpr } from "../plugins/sqlite/indexes.ts";

const [beforeRoot, path, sizeArg, roundsArg, opsArg] = Deno.args;
if (path === undefined) {
  console.error("usage: deno run -A bench/eq_fixed_ab.ts <before-tree|-> <db> [entries] [rounds]");
  Deno.exit(2);
}
const N = Number(sizeArg ?? 100_000);
const ROUNDS = Number(roundsArg ?? 15);
const OPS = Number(opsArg ?? 2000);
const openBefore = beforeRoot === "-"
  ? undefined
  : (await import(pathToFileURL(join(beforeRoot, "mod.ts")).href)).openStore;

const exists = await Deno.stat(path).then(() => true, () => false);
if (!exists) {
  await using s = await openAfter({ plugin: "sqlite", path, durability: "relaxed" });
  await fillOrders(s, N, false);
}
const options = {
  plugin: "sqlite",
  path,
  indexes: [{ prefix: ["orders"], path: "status" }, { prefix: ["orders"], path: "n" }],
} as const;
await using after = await openAfter(options);
await using before = openBefore ? await openBefore(options) : undefined;
const db = new DatabaseSync(path);
const [ixStatus, ixN] = after.indexes;
const pre = prefixTerms("key", ["orders"]).join(" AND ");
const eq = db.prepare(
  `SELECT key, value, version, expires_at FROM flowstate_entries INDEXED BY "${ixStatus.name}" ` +
    `WHERE ${rankExpr("value", ixStatus.path)} = 5 AND ${
      valueExpr("value", ixStatus.path)
    } = ? AND ${pre}`,
);
const range = db.prepare(
  `SELECT key, value, version, expires_at FROM flowstate_entries INDEXED BY "${ixN.name}" ` +
    `WHERE ${rankExpr("value", ixN.path)} = 4 AND ${
      valueExpr("value", ixN.path)
    } >= ? AND ${pre} ` +
    // The rank is pinned (= 4): ordering by the value and the key reads the index in order.
    `ORDER BY ${valueExpr("value", ixN.path)}, key LIMIT 10`,
);
const eqQuery = {
  prefix: ["orders"],
  where: [{ path: "status", op: "eq" as const, value: "needle" }],
};
const rangeQuery = (i: number) => ({
  prefix: ["orders"],
  where: [{ path: "n", op: "gte" as const, value: (i * 7919) % N }],
  orderBy: { path: "n" },
  limit: 10,
});
const workloads: Record<string, Record<string, (i: number) => unknown>> = {
  // (the ops per round: the range before this change sorted every match, milliseconds a query)
  "indexed eq, 1 match": {
    ...(before ? { before: () => before.query(eqQuery) } : {}),
    after: () => after.query(eqQuery),
    bare: () => (eq.all("needle") as any[]).map((r) => JSON.parse(r.value)),
  },
  "indexed range + orderBy, limit 10": {
    ...(before ? { before: (i: number) => before.query(rangeQuery(i)) } : {}),
    after: (i: number) => after.query(rangeQuery(i)),
    bare: (i: number) => (range.all((i * 7919) % N) as any[]).map((r) => JSON.parse(r.value)),
  },
};
const only = Deno.env.get("ONLY");
console.log(`load average at start: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const [label, fns] of Object.entries(workloads)) {
  if (only && !label.startsWith(only)) continue;
  const names = Object.keys(fns);
  for (const n of names) {
    const got = await fns[n](1) as unknown[];
    if (got.length !== (label.startsWith("indexed eq") ? 1 : 10)) {
      throw new Error(`${label} ${n}: got ${got.length}`);
    }
  }
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const ops = label.startsWith("indexed eq")
    ? OPS
    : Number(Deno.env.get("RANGE_OPS") ?? Math.max(1, OPS >> 4));
  for (const n of names) for (let i = 0; i < ops; i++) await fns[n](i); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const order = names.slice(r % names.length).concat(names.slice(0, r % names.length));
    for (const n of r % 2 ? order.reverse() : order) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < ops; i++) await fns[n](i);
      times[n].push((performance.now() - t0) / ops * 1000);
      const c = process.cpuUsage(c0);
      cpu[n].push((c.user + c.system) / ops);
    }
  }
  const spread = (n: string) => {
    const r = times[n].map((t, i) => times.bare[i] / t).sort((a, b) => a - b);
    const at = (p: number) => r[Math.floor((r.length - 1) * p)].toFixed(2);
    return `${at(0.25)}–${at(0.75)}`;
  };
  const bare = median(times.bare);
  const bareCpu = median(cpu.bare);
  console.log(
    `| ${label}, ${N} entries | ` +
      names.map((n) =>
        `${n} ${median(times[n]).toFixed(1)} µs (${(bare / median(times[n])).toFixed(2)}×, ` +
        `p25–p75 ${spread(n)}; CPU ${median(cpu[n]).toFixed(1)} µs, ${
          (bareCpu / median(cpu[n])).toFixed(2)
        }×)`
      ).join(" | ") + " |",
  );
}
console.log(`load average at end: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
db.close();
