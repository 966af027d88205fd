// deno-lint-ignore-file no-explicit-any
/**
 * An indexed `eq` query with one match on sqlite, on two source trees
 * (before / after a change) and the bare query using the same index, in the
 * same process on the same file: rounds interleaved, the order flipped every
 * round, medians, each one's ratio to bare (bare time / its time: 1.0 =
 * parity, higher is better) and the p25–p75 of the per-round ratios.
 *
 *   git archive main | tar -x -C /tmp/before
 *   deno run -A bench/eq_ab.ts /tmp/before [entries=100000] [rounds=15]
 *
 * The data is bench/indexes_bench.ts's (values with a status, a number, a
 * title and a body; a search index declared), and so is the bare query: the
 * index's own expressions with `INDEXED BY`, then `JSON.parse` of each value.
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openStore as openAfter } from "../mod.ts";
import { fillOrders } from "./_orders.ts";
import { prefixTerms, rankExpr, valueExpr } from "../plugins/sqlite/indexes.ts";

const [beforeRoot, sizeArg, roundsArg] = Deno.args;
if (beforeRoot === undefined) {
  console.error("usage: deno run -A bench/eq_ab.ts <before-tree> [entries] [rounds]");
  Deno.exit(2);
}
const N = Number(sizeArg ?? 100_000);
const ROUNDS = Number(roundsArg ?? 15);
const OPS = 200;
const { openStore: openBefore } = await import(pathToFileURL(join(beforeRoot, "mod.ts")).href);

const dir = await Deno.makeTempDir({ prefix: "flowstate-eq-ab-" });
const path = join(dir, "s.db");
{
  await using s = await openAfter({ plugin: "sqlite", path, durability: "relaxed" });
  await fillOrders(s, N, true);
}
const options = {
  plugin: "sqlite",
  path,
  indexes: [{ prefix: ["orders"], path: "status" }],
  search: { prefix: ["orders"], fields: ["title", "body"] },
} as const;
await using after = await openAfter(options);
await using before = await openBefore(options);
const db = new DatabaseSync(path);
const ix = after.indexes[0];
const eq = db.prepare(
  `SELECT key, value, version, expires_at FROM flowstate_entries INDEXED BY "${ix.name}" ` +
    `WHERE ${rankExpr("value", ix.path)} = 5 AND ${valueExpr("value", ix.path)} = ? AND ${
      prefixTerms("key", ["orders"]).join(" AND ")
    }`,
);
const query = {
  prefix: ["orders"],
  where: [{ path: "status", op: "eq" as const, value: "needle" }],
};
const fns: Record<string, () => unknown> = {
  before: () => before.query(query),
  after: () => after.query(query),
  bare: () => (eq.all("needle") as any[]).map((r) => JSON.parse(r.value)),
};
for (const [name, fn] of Object.entries(fns)) {
  if ((await fn() as unknown[]).length !== 1) throw new Error(`${name}: expected one match`);
}
const names = Object.keys(fns);
const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
for (const n of names) for (let i = 0; i < OPS; i++) await fns[n](); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const n of r % 2 ? [...names].reverse() : names) {
    const t0 = performance.now();
    for (let i = 0; i < OPS; i++) await fns[n]();
    times[n].push((performance.now() - t0) / OPS * 1000);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const spread = (n: string) => {
  const r = times[n].map((t, i) => times.bare[i] / t).sort((a, b) => a - b);
  const at = (p: number) => r[Math.floor((r.length - 1) * p)].toFixed(2);
  return `${at(0.25)}–${at(0.75)}`;
};
const bare = median(times.bare);
console.log(
  `| sqlite indexed eq, 1 match, ${N} entries | ` +
    names.map((n) =>
      `${n} ${median(times[n]).toFixed(1)} µs (${(bare / median(times[n])).toFixed(2)}×, ` +
      `rounds ${spread(n)})`
    ).join(" | ") + " |",
);
db.close();
await Deno.remove(dir, { recursive: true });
