// deno-lint-ignore-file no-explicit-any
/**
 * The postgres plugin's read paths on two source trees (before / after a
 * change) beside the bare `postgres` client, in one process on the same
 * table: a list of 100 by prefix (`for await` and `nextPage()`), an indexed
 * `eq` with one match, an indexed range with `orderBy` and a limit of 10,
 * `count(prefix)`. The sides alternate operation by operation (see
 * `race`), each side given the same input: a burst of load then falls on
 * every side alike, at a price: `process.cpuUsage` is the whole process's,
 * so one side's garbage collection is billed to whichever side runs next,
 * which pulls the CPU ratios towards 1.0 (whole rounds per side would not);
 * per operation the median over the rounds of the wall time and
 * its ratio to bare (bare time / its time: 1.0 = parity, higher is better)
 * with the p25–p75 of the per-round ratios, and the same for the CPU time of
 * this process per operation (`process.cpuUsage`: the client's work; the
 * server's CPU is not in it).
 * The load average is printed before and after.
 *
 *   git archive main | tar -x -C /tmp/before
 *   FLOWSTATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
 *     deno run -A bench/pg_reads_ab.ts /tmp/before [entries=100000] [rounds=21]
 *
 * Data and bare queries are bench/indexes_bench.ts's: values with a status,
 * a number and (up to 100,000 entries) a title and a body, under `["orders", <8 digits>]`, indexes on
 * `status` and `n` and a search index declared; all bare statements are
 * prepared, as the driver's are. The bare list is `SELECT key, value,
 * version, expires_at … ORDER BY key LIMIT 100` with `JSON.parse` of each
 * value, the bare eq the index's own expressions, the bare range the index's
 * expressions in its order, the bare count a `count(*)` over the key range.
 * The bare side does less than a store must: no expiry filter, keys left as
 * the client's `Buffer` (not decoded to arrays), no copy per entry, and the
 * bare eq no `ORDER BY key` (a store returns matches in key order). The
 * table lives in a schema of its own, dropped at the end.
 */
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { openClient } from "../plugins/postgres/client.ts";
import { openStore as openAfter } from "../mod.ts";
import { fillOrders } from "./_orders.ts";
import { byteBounds } from "../src/store/keys.ts";
import { numberExpr, prefixTerms, rankExpr, stringExpr } from "../plugins/postgres/indexes.ts";
import { spread } from "./_cpu.ts";

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
const ROUNDS = Number(roundsArg ?? 21);
const { openStore: openBefore } = await import(pathToFileURL(join(beforeRoot, "mod.ts")).href);
const load = () => Deno.readTextFileSync("/proc/loadavg").trim();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/**
 * Rounds of `ops` steps; each step runs every side once, in an order that
 * rotates step by step, so that a burst of load elsewhere falls on every
 * side alike. Per round and side: the wall and CPU time per operation.
 */
async function race(label: string, ops: number, fns: Record<string, (i: number) => unknown>) {
  const names = Object.keys(fns);
  const wall: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) for (let i = 0; i < Math.max(ops, 10); i++) await fns[n](i); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const w = new Array<number>(names.length).fill(0);
    const c = new Array<number>(names.length).fill(0);
    for (let i = 0; i < ops; i++) {
      for (let k = 0; k < names.length; k++) {
        const j = (i + k + r) % names.length;
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await fns[names[j]](i); // the same input for every side
        w[j] += performance.now() - t0;
        const d = process.cpuUsage(c0);
        c[j] += d.user + d.system;
      }
    }
    names.forEach((n, j) => {
      wall[n].push(w[j] / ops * 1000);
      cpu[n].push(c[j] / ops);
    });
  }
  const us = (x: number) => x >= 10_000 ? `${(x / 1000).toFixed(1)} ms` : `${x.toFixed(0)} µs`;
  for (const n of names) {
    const w = median(wall[n]);
    const c = median(cpu[n]);
    console.log(
      `| ${label} | ${n} | ${us(w)} | ${(median(wall.bare) / w).toFixed(2)} | ` +
        `${spread(wall[n].map((t, i) => wall.bare[i] / t))} | ${us(c)} | ` +
        `${(median(cpu.bare) / c).toFixed(2)} | ${spread(cpu[n].map((t, i) => cpu.bare[i] / t))} |`,
    );
  }
}

const schema = `bench_reads_${crypto.randomUUID().slice(0, 8)}`; // not pg_: reserved
const table = "t";
const admin = openClient(url, { max: 1 });
try {
  const spec = { plugin: "postgres", url, schema, table } as const;
  {
    await using s = await openAfter(spec);
    await fillOrders(s, N, N <= 100_000);
  }
  const options = {
    ...spec,
    indexes: [{ prefix: ["orders"], path: "status" }, { prefix: ["orders"], path: "n" }],
    search: { prefix: ["orders"], fields: ["title", "body"] },
  };
  await using after = await openAfter(options);
  await using before = await openBefore(options);
  await admin.unsafe(`VACUUM ANALYZE "${schema}"."${table}"`);
  const bare = openClient(url, { max: 1 });
  const q = `"${schema}"."${table}"`;
  const b = byteBounds({ prefix: ["orders"] });
  const P = { prepare: true } as const;
  console.log(`Deno ${Deno.version.deno}, ${N} entries, ${ROUNDS} rounds`);
  console.log(`load average before: ${load()}`);
  console.log("");
  console.log(
    "| workload | who | wall | bare / it | rounds p25–p75 | CPU per op | bare / it (CPU) | " +
      "rounds p25–p75 |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  const listOf = (store: any) => async () => {
    const out = [];
    for await (const e of store.list({ prefix: ["orders"], limit: 100 })) out.push(e);
    return out;
  };
  const pageOf = (store: any) => () => store.list({ prefix: ["orders"], limit: 100 }).nextPage();
  await race("list of 100", 100, {
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
  await race("indexed eq, 1 match", 300, {
    before: () => before.query(query),
    after: () => after.query(query),
    bare: async () =>
      (await bare.unsafe(eqSql, ["needle"], P)).map((r: any) => JSON.parse(r.value)),
  });
  const rangeSql = `SELECT key, value, version, expires_at FROM ${q} WHERE ${
    rankExpr(schema, "value", ["n"])
  } = 4 AND ${numberExpr(schema, "value", ["n"])} >= $1::numeric AND ${
    prefixTerms("key", ["orders"]).join(" AND ")
  } ORDER BY ${rankExpr(schema, "value", ["n"])}, ${numberExpr(schema, "value", ["n"])}, ${
    stringExpr(schema, "value", ["n"])
  }, key LIMIT 10`;
  const from = (i: number) => ((i + 1) * 7919) % N;
  const rangeQuery = (i: number) => ({
    prefix: ["orders"],
    where: [{ path: "n", op: "gte" as const, value: from(i) }],
    orderBy: { path: "n" },
    limit: 10,
  });
  await race("indexed range + orderBy, limit 10", 200, {
    before: (i) => before.query(rangeQuery(i)),
    after: (i) => after.query(rangeQuery(i)),
    bare: async (i) =>
      (await bare.unsafe(rangeSql, [String(from(i))], P)).map((r: any) => JSON.parse(r.value)),
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
