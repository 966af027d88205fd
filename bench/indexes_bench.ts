/**
 * Declared indexes, count, list and full-text search on the sqlite plugin,
 * each beside a bare `node:sqlite` baseline doing the same work on the same
 * file (a second connection) in the same run: rounds interleaved, the order
 * flipped every round, medians, and the ratio bare time / Flowstate time
 * (1.0 = parity, higher is better for Flowstate), with the spread of the
 * per-round ratios (p25–p75) and each side's CPU time per operation
 * (`process.cpuUsage`, this process only: the server's CPU is not in it).
 * The load average is printed at the start and the end.
 *
 *   deno run -A bench/indexes_bench.ts [sizes=1000,100000] [rounds=15]
 *   deno run -A bench/indexes_bench.ts 1000,100000,1000000 15
 *   deno run -A bench/indexes_bench.ts 100000 9 postgres   # one backend (sqlite|postgres)
 *
 * Per size: an indexed `eq` query with one match, the same query without
 * the index (today's scan; skipped above 100k), `count(prefix)`, a list of
 * 100. At 100,000 entries (when among the sizes) also FTS p50 over 100,000
 * values. With FLOWSTATE_TEST_POSTGRES_URL, the same for postgres (indexed
 * eq, an indexed range with orderBy, count, list of 100, and at 100,000
 * search) beside the bare `postgres` client running the same SQL on the same
 * index as a prepared statement (as the driver does), the two sides
 * alternating operation by operation (see `pair`), in a schema of its own
 * that is dropped at the end.
 */
import { DatabaseSync } from "node:sqlite";
import process from "node:process";
import { join } from "node:path";
import { openStore } from "../mod.ts";
import type { Store } from "../src/store/types.ts";
import { fillOrders as fill, WORDS } from "./_orders.ts";
import { byteBounds } from "../src/store/keys.ts";
import { prefixTerms, rankExpr, valueExpr } from "../plugins/sqlite/indexes.ts";
import {
  numberExpr,
  prefixTerms as pgPrefixTerms,
  rankExpr as pgRankExpr,
  stringExpr,
} from "../plugins/postgres/indexes.ts";
import { spread } from "./_cpu.ts";

const SIZES = (Deno.args[0] ?? "1000,100000").split(",").map(Number);
const ROUNDS = Number(Deno.args[1] ?? 15);
/** `sqlite` or `postgres` to run one backend only. */
const ONLY = Deno.args[2];
const dir = await Deno.makeTempDir({ prefix: "flowstate-indexes-bench-" });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Interleaved rounds of `ops` repetitions each (the order flipped every round): per-op
 * medians of both, the ratio of the medians, the p25–p75 of the per-round ratios, and the
 * process's CPU time per op (user + system, `process.cpuUsage`) of each, with the p25–p75
 * of the per-round CPU ratios. With `opwise` (the postgres rows: operations of 50 µs and
 * more, where timing each one costs under 1%), the two sides alternate operation by
 * operation within a round, so that a burst of load elsewhere falls on both alike; the
 * process's CPU time then bills one side's garbage collection to the other side's next
 * operation too, which pulls the CPU ratio towards 1.0 (the sqlite rows keep whole rounds).
 */
async function pair(
  label: string,
  ops: number,
  ours: (i: number) => unknown | Promise<unknown>,
  bare: (i: number) => unknown | Promise<unknown>,
  rounds = ROUNDS,
  opwise = false,
): Promise<void> {
  const a: number[] = [];
  const b: number[] = [];
  const ca: number[] = [];
  const cb: number[] = [];
  const time = async (fn: (i: number) => unknown | Promise<unknown>, cpu?: number[]) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) await fn(i);
    const wall = (performance.now() - t0) / ops;
    const c = process.cpuUsage(c0);
    cpu?.push((c.user + c.system) / 1000 / ops);
    return wall;
  };
  /** Both sides, one operation each in turn: the wall times per op (ms), CPU pushed. */
  const alternate = async (r: number) => {
    const wall = [0, 0];
    const cpu = [0, 0];
    const fns = [ours, bare];
    for (let i = 0; i < ops; i++) {
      for (let k = 0; k < 2; k++) {
        const j = (i + k + r) % 2;
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await fns[j](i);
        wall[j] += performance.now() - t0;
        const c = process.cpuUsage(c0);
        cpu[j] += c.user + c.system;
      }
    }
    ca.push(cpu[0] / 1000 / ops);
    cb.push(cpu[1] / 1000 / ops);
    a.push(wall[0] / ops);
    b.push(wall[1] / ops);
  };
  await time(ours); // warm-up
  await time(bare);
  for (let r = 0; r < rounds; r++) {
    if (opwise) {
      await alternate(r);
    } else if (r % 2 === 0) {
      a.push(await time(ours, ca));
      b.push(await time(bare, cb));
    } else {
      b.push(await time(bare, cb));
      a.push(await time(ours, ca));
    }
  }
  const ma = median(a);
  const mb = median(b);
  console.log(
    `| ${label} | ${fmt(ma)} | ${fmt(mb)} | ${(mb / ma).toFixed(2)} | ${
      spread(a.map((t, i) => b[i] / t))
    } | ${fmt(median(ca))} / ${fmt(median(cb))} (${(median(cb) / median(ca)).toFixed(2)}, ${
      spread(ca.map((t, i) => cb[i] / t))
    }) |`,
  );
}

/** A list of 100 by prefix through `for await`, as a user reads one. */
async function listOf100(store: Store): Promise<unknown[]> {
  const out = [];
  for await (const e of store.list({ prefix: ["orders"], limit: 100 })) out.push(e);
  return out;
}

function fmt(ms: number): string {
  return ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(1)} µs`;
}

console.log(`Deno ${Deno.version.deno}, ${ROUNDS} rounds, medians per operation`);
console.log("");
console.log(`load average at start: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
console.log("");
console.log(
  "| workload (sqlite) | Flowstate | bare node:sqlite | bare / Flowstate | rounds p25–p75 | " +
    "CPU per op, Flowstate / bare (ratio, rounds p25–p75) |",
);
console.log("| --- | --- | --- | --- | --- | --- |");

for (const size of ONLY === "postgres" ? [] : SIZES) {
  const path = join(dir, `s${size}.db`);
  const indexes = [{ prefix: ["orders"], path: "status" }];
  const withText = size === 100_000;
  const t0 = performance.now();
  {
    await using plain = await openStore({ plugin: "sqlite", path, durability: "relaxed" });
    await fill(plain, size, withText);
  }
  const loaded = performance.now() - t0;
  const t1 = performance.now();
  await using store = await openStore({
    plugin: "sqlite",
    path,
    indexes,
    ...(withText ? { search: { prefix: ["orders"], fields: ["title", "body"] } } : {}),
  });
  const built = performance.now() - t1;
  console.error(
    `size ${size}: loaded in ${(loaded / 1000).toFixed(1)} s, index build ${
      (built / 1000).toFixed(1)
    } s`,
  );
  const db = new DatabaseSync(path);
  const ix = store.indexes[0];
  const bounds = byteBounds({ prefix: ["orders"] });
  const eqSql =
    `SELECT key, value, version, expires_at FROM flowstate_entries INDEXED BY "${ix.name}" ` +
    `WHERE ${rankExpr("value", ix.path)} = 5 AND ${valueExpr("value", ix.path)} = ? AND ${
      prefixTerms("key", ["orders"]).join(" AND ")
    }`;
  const eqStmt = db.prepare(eqSql);
  const query = {
    prefix: ["orders"],
    where: [{ path: "status", op: "eq" as const, value: "needle" }],
  };
  if ((await store.query(query)).length !== 1) throw new Error("expected one match");
  await pair(`indexed eq, 1 match, ${size} entries`, 200, () => store.query(query), () => {
    return (eqStmt.all("needle") as { value: string }[]).map((r) => JSON.parse(r.value));
  });
  if (size <= 100_000) {
    await using unindexed = await openStore({ plugin: "sqlite", path });
    const scanStmt = db.prepare(
      `SELECT key, value FROM flowstate_entries WHERE key > ? AND key < ? AND ` +
        `json_extract(value, '$.status') = ?`,
    );
    await pair(
      `unindexed eq (scan), ${size} entries`,
      size >= 100_000 ? 1 : 20,
      () => unindexed.query(query),
      () =>
        (scanStmt.all(bounds.lower!, bounds.upper!, "needle") as { value: string }[]).map((r) =>
          JSON.parse(r.value)
        ),
      size >= 100_000 ? 5 : ROUNDS,
    );
  }
  const countStmt = db.prepare(
    "SELECT count(*) AS n FROM flowstate_entries WHERE key > ? AND key < ?",
  );
  await pair(
    `count(prefix), ${size} entries`,
    size >= 100_000 ? 3 : 200,
    () => store.count(["orders"]),
    () => (countStmt.get(bounds.lower!, bounds.upper!) as { n: number }).n,
  );
  const listStmt = db.prepare(
    "SELECT key, value, version, expires_at FROM flowstate_entries WHERE key > ? AND key < ? " +
      "ORDER BY key LIMIT 100",
  );
  await pair(
    `list of 100, ${size} entries`,
    100,
    () => listOf100(store),
    () =>
      (listStmt.all(bounds.lower!, bounds.upper!) as { value: string }[]).map((r) =>
        JSON.parse(r.value)
      ),
  );
  if (withText) {
    const ftsStmt = db.prepare(
      "SELECT e.key, e.value, e.version, e.expires_at, bm25(flowstate_search) AS s FROM " +
        "flowstate_search JOIN flowstate_entries AS e ON e.rowid = flowstate_search.rowid " +
        "WHERE flowstate_search MATCH ? ORDER BY s LIMIT 20",
    );
    let hits = 0;
    await pair(
      `search, 2 words, limit 20, ${size} values`,
      50,
      async (i) => {
        hits += (await store.search(`${WORDS[i * 17 % 2000]} ${WORDS[i * 29 % 2000]}`)).length;
      },
      (i) =>
        (ftsStmt.all(`"${WORDS[i * 17 % 2000]}" AND "${WORDS[i * 29 % 2000]}"`) as {
          value: string;
        }[]).map((r) => JSON.parse(r.value)),
    );
    await pair(
      `search, 1 word, limit 20, ${size} values`,
      50,
      (i) => store.search(WORDS[i * 17 % 2000]),
      (i) =>
        (ftsStmt.all(`"${WORDS[i * 17 % 2000]}"`) as { value: string }[]).map((r) =>
          JSON.parse(r.value)
        ),
    );
    if (hits === 0) console.error("(the 2-word searches found nothing)");
  }
  db.close();
}
const pgUrl = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
if (pgUrl && ONLY !== "sqlite") {
  const { openClient } = await import("../plugins/postgres/client.ts");
  const admin = openClient(pgUrl, { max: 1 });
  const schema = `bench_${crypto.randomUUID().slice(0, 8)}`;
  console.log("");
  console.log(
    "| workload (postgres) | Flowstate | bare postgres client | bare / Flowstate | " +
      "rounds p25–p75 | CPU per op, Flowstate / bare (ratio, rounds p25–p75) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  try {
    for (const size of SIZES) {
      const table = `t${size}`;
      const spec = { plugin: "postgres", url: pgUrl, schema, table } as const;
      const t0 = performance.now();
      {
        await using plain = await openStore(spec);
        await fill(plain, size, size === 100_000);
      }
      const withText = size === 100_000;
      await using store = await openStore({
        ...spec,
        indexes: [{ prefix: ["orders"], path: "status" }, { prefix: ["orders"], path: "n" }],
        ...(withText ? { search: { prefix: ["orders"], fields: ["title", "body"] } } : {}),
      });
      await admin.unsafe(`ANALYZE "${schema}"."${table}"`);
      console.error(
        `postgres size ${size}: ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      const bare = openClient(pgUrl, { max: 1 });
      const qualified = `"${schema}"."${table}"`;
      const prefix = pgPrefixTerms("key", ["orders"]).join(" AND ");
      // The bare queries use the same index with the same expressions, unprepared like ours.
      const eqSql = `SELECT key, value, version, expires_at FROM ${qualified} WHERE ${
        pgRankExpr(schema, "value", ["status"])
      } = 5 AND ${numberExpr(schema, "value", ["status"])} IS NULL AND ${
        stringExpr(schema, "value", ["status"])
      } = $1::text AND ${prefix}`;
      const query = {
        prefix: ["orders"],
        where: [{ path: "status", op: "eq" as const, value: "needle" }],
      };
      if ((await store.query(query)).length !== 1) throw new Error("expected one match");
      const plan = await store.explain(query);
      console.error(`postgres plan: ${plan.index} ${plan.detail.join(" / ")}`);
      await pair(
        `indexed eq, 1 match, ${size} entries`,
        100,
        () => store.query(query),
        async () =>
          (await bare.unsafe(eqSql, ["needle"], { prepare: true })).map((r) =>
            JSON.parse(r.value as string)
          ),
        ROUNDS,
        true,
      );
      const rangeSql = `SELECT key, value, version, expires_at FROM ${qualified} WHERE ${
        pgRankExpr(schema, "value", ["n"])
      } = 4 AND ${numberExpr(schema, "value", ["n"])} >= $1::numeric AND ${prefix} ORDER BY ${
        pgRankExpr(schema, "value", ["n"])
      }, ${numberExpr(schema, "value", ["n"])}, ${
        stringExpr(schema, "value", ["n"])
      }, key LIMIT 10`;
      const rangeQuery = (i: number) => ({
        prefix: ["orders"],
        where: [{ path: "n", op: "gte" as const, value: (i * 7919) % size }],
        orderBy: { path: "n" },
        limit: 10,
      });
      console.error(
        `postgres range plan: ${(await store.explain(rangeQuery(1))).detail.join(" / ")}`,
      );
      await pair(
        `indexed range + orderBy, limit 10, ${size} entries`,
        100,
        (i) => store.query(rangeQuery(i)),
        async (i) =>
          (await bare.unsafe(rangeSql, [String((i * 7919) % size)], { prepare: true })).map((r) =>
            JSON.parse(r.value as string)
          ),
        ROUNDS,
        true,
      );
      if (withText) {
        const ftsSql = `SELECT key, value, version, expires_at, ` +
          `ts_rank(fs_search, $1::tsquery, 1) AS s FROM ${qualified} WHERE fs_search @@ ` +
          `$1::tsquery ORDER BY s DESC, key LIMIT 20`;
        const two = (i: number) => `${WORDS[i * 17 % 2000]} ${WORDS[i * 29 % 2000]}`;
        await pair(
          `search, 2 words, limit 20, ${size} values`,
          50,
          (i) => store.search(two(i)),
          async (i) =>
            (await bare.unsafe(ftsSql, [`'${WORDS[i * 17 % 2000]}' & '${WORDS[i * 29 % 2000]}'`], {
              prepare: true,
            }))
              .map((r) => JSON.parse(r.value as string)),
          ROUNDS,
          true,
        );
        await pair(
          `search, 1 word, limit 20, ${size} values`,
          50,
          (i) => store.search(WORDS[i * 17 % 2000]),
          async (i) =>
            (await bare.unsafe(ftsSql, [`'${WORDS[i * 17 % 2000]}'`], { prepare: true })).map((r) =>
              JSON.parse(r.value as string)
            ),
          ROUNDS,
          true,
        );
      }
      const b = byteBounds({ prefix: ["orders"] });
      await pair(
        `count(prefix), ${size} entries`,
        size >= 100_000 ? 2 : 50,
        () => store.count(["orders"]),
        async () =>
          (await bare.unsafe(
            `SELECT count(*) AS n FROM ${qualified} WHERE key > $1 AND key < $2`,
            [b.lower!, b.upper!] as never[],
            { prepare: true },
          ))[0].n,
        ROUNDS,
        true,
      );
      await pair(
        `list of 100, ${size} entries`,
        50,
        () => listOf100(store),
        async () =>
          (await bare.unsafe(
            `SELECT key, value, version, expires_at FROM ${qualified} WHERE key > $1 AND key < $2 ` +
              `ORDER BY key LIMIT 100`,
            [b.lower!, b.upper!] as never[],
            { prepare: true },
          )).map((r) => JSON.parse(r.value as string)),
        ROUNDS,
        true,
      );
      await bare.end();
    }
  } finally {
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}
console.log("");
console.log(`load average at end: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
await Deno.remove(dir, { recursive: true });
