// deno-lint-ignore-file no-explicit-any
/**
 * The postgres plugin's read paths on two source trees (before / after a
 * change) beside the bare `postgres` client, in one process on the same
 * table: a list of 100 by prefix (`for await` and `nextPage()`), an indexed
 * `eq` with one match, `count(prefix)`. Rounds interleaved, the order
 * flipped every round; per operation the median wall time, its ratio to
 * bare (bare time / its time: 1.0 = parity, higher is better), the p25–p75
 * of the per-round ratios, and the median CPU time of this process per
 * operation (`process.cpuUsage`; the server's CPU is not in it). The load
 * average is printed before and after.
 *
 *   git archive main | tar -x -C /tmp/before
 *   FLOWSTATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
 *     deno run -A bench/pg_reads_ab.ts /tmp/before [entries=100000] [rounds=15]
 *
 * Data and bare queries are bench/indexes_bench.ts's: values with a status,
 * a number, a title and a body, under `["orders", <8 digits>]`, indexes on
 * `status` and `n` and a search index declared; the bare list is the same
 * `SELECT key, value, version, expires_at … ORDER BY key LIMIT 100` with
 * `JSON.parse` of each value, the bare eq the index's own expressions, the
 * bare count a `count(*)` over the key range, all prepared. The table lives
 * in a schema of its own, dropped at the end.
 */
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import postgres from "postgres";
import { openStore as openAfter } from "../mod.ts";
import { fillOrders } from "./_orders.ts";
import { byteBounds } from "../src/store/keys.ts";
import { numberExpr, prefixTerms, rankExpr, stringExpr } from "../plugins/postgres/indexes.ts";

const [beforeRoot, sizeArg, roundsArg] = Deno.args;
const url = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
if (beforeRoot === undefined || !url) {
  console.error(
    "usage: FLOWSTATE_TEST_POSTGRES_URL=… deno run -A bench/pg_reads_ab.ts <before-tree> " +
      "[entries] [rounds]",
  );
  Deno.exit(2);
}
const N = Number(sizeArg ?? 100_000);
const ROUNDS = Number(roundsArg ?? 15);
const { openStore: openBefore } = await import(pathToFileURL(join(beforeRoot, "mod.ts")).href);
const load = () => Deno.readTextFileSync("/proc/loadavg").trim();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function race(label: string, ops: number, fns: Record<string, () => unknown>) {
  const names = Object.keys(fns);
  const wall: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) for (let i = 0; i < Math.max(ops, 10); i++) await fns[n](); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const n of r % 2 ? [...names].reverse() : names) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < ops; i++) await fns[n]();
      wall[n].push((performance.now() - t0) / ops * 1000);
      const c = process.cpuUsage(c0);
      cpu[n].push((c.user + c.system) / ops);
    }
  }
  const bare = median(wall.bare);
  for (const n of names) {
    const r = wall[n].map((t, i) => wall.bare[i] / t).sort((a, b) => a - b);
    const at = (p: number) => r[Math.floor((r.length - 1) * p)].toFixed(2);
    const us = (x: number) => x >= 10_000 ? `${(x / 1000).toFixed(1)} ms` : `${x.toFixed(0)} µs`;
    console.log(
      `| ${label} | ${n} | ${us(median(wall[n]))} | ${(bare / median(wall[n])).toFixed(2)} | ` +
        `${at(0.25)}–${at(0.75)} | ${us(median(cpu[n]))} |`,
    );
  }
}

const schema = `bench_reads_${crypto.randomUUID().slice(0, 8)}`; // not pg_: reserved
const table = "t";
const admin = postgres(url, { max: 1, onnotice: () => {} });
try {
  const spec = { plugin: "postgres", url, schema, table } as const;
  {
    await using s = await openAfter(spec);
    await fillOrders(s, N, true);
  }
  const options = {
    ...spec,
    indexes: [{ prefix: ["orders"], path: "status" }, { prefix: ["orders"], path: "n" }],
    search: { prefix: ["orders"], fields: ["title", "body"] },
  };
  await using after = await openAfter(options);
  await using before = await openBefore(options);
  await admin.unsafe(`VACUUM ANALYZE "${schema}"."${table}"`);
  const bare = postgres(url, { max: 1, onnotice: () => {} });
  const q = `"${schema}"."${table}"`;
  const b = byteBounds({ prefix: ["orders"] });
  const P = { prepare: true } as const;
  console.log(`Deno ${Deno.version.deno}, ${N} entries, ${ROUNDS} rounds`);
  console.log(`load average before: ${load()}`);
  console.log("");
  console.log("| workload | who | median | bare / it | rounds p25–p75 | CPU per op |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  const listOf = (store: any) => async () => {
    const out = [];
    for await (const e of store.list({ prefix: ["orders"], limit: 100 })) out.push(e);
    return out;
  };
  const pageOf = (store: any) => () => store.list({ prefix: ["orders"], limit: 100 }).nextPage();
  await race("list of 100", 50, {
    before: listOf(before),
    after: listOf(after),
    "before page": pageOf(before),
    "after page": pageOf(after),
    bare: async () =>
      (await bare.unsafe(
        `SELECT key, value, version, expires_at FROM ${q} WHERE key > $1 AND key < $2 ` +
          `ORDER BY key LIMIT 100`,
        [b.lower!, b.upper!] as never[],
        P,
      )).map((r: any) => JSON.parse(r.value)),
  });
  const eqSql = `SELECT key, value, version, expires_at FROM ${q} WHERE ${
    rankExpr(schema, "value", ["status"])
  } = 5 AND ${numberExpr(schema, "value", ["status"])} IS NULL AND ${
    stringExpr(schema, "value", ["status"])
  } = $1::text AND ${prefixTerms("key", ["orders"]).join(" AND ")}`;
  const query = {
    prefix: ["orders"],
    where: [{ path: "status", op: "eq" as const, value: "needle" }],
  };
  if ((await after.query(query)).length !== 1) throw new Error("expected one match");
  await race("indexed eq, 1 match", 200, {
    before: () => before.query(query),
    after: () => after.query(query),
    bare: async () =>
      (await bare.unsafe(eqSql, ["needle"], P)).map((r: any) => JSON.parse(r.value)),
  });
  await race("count(prefix)", N >= 100_000 ? 3 : 50, {
    before: () => before.count(["orders"]),
    after: () => after.count(["orders"]),
    bare: async () =>
      (await bare.unsafe(
        `SELECT count(*) AS n FROM ${q} WHERE key > $1 AND key < $2`,
        [b.lower!, b.upper!] as never[],
        P,
      ))[0].n,
  });
  console.log("");
  console.log(`load average after: ${load()}`);
  await bare.end();
} finally {
  await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}
