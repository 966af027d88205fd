/**
 * Concurrent durable sets on one postgres store, with the change feed off
 * (the baseline) and on: `FEED_CONCURRENT_WRITERS` writers (default 8) in one
 * process, each doing `FEED_CONCURRENT_WRITES` sets (default 100) of its own
 * keys; interleaved rounds (`FEED_CONCURRENT_ROUNDS`, default 5), alternating
 * which goes first; median time per write and the ratio. Needs
 * FLOWSTATE_TEST_POSTGRES_URL.
 *
 * ```sh
 * FLOWSTATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test deno run -A bench/feed_concurrent_bench.ts
 * ```
 *
 * @module
 */
import { openStore, type StoreSpec } from "../mod.ts";

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");
if (PG_URL === undefined) {
  console.error("set FLOWSTATE_TEST_POSTGRES_URL to run");
  Deno.exit(2);
}
const ROUNDS = Number(Deno.env.get("FEED_CONCURRENT_ROUNDS") ?? 5);
const WRITERS = Number(Deno.env.get("FEED_CONCURRENT_WRITERS") ?? 8);
const WRITES = Number(Deno.env.get("FEED_CONCURRENT_WRITES") ?? 100);
const schema = `feed_conc_${crypto.randomUUID().slice(0, 8)}`;
const spec = (table: string, changes: boolean): StoreSpec => ({
  plugin: "postgres",
  url: PG_URL,
  schema,
  table,
  ...(changes ? { changes: { keep: "30d" } } : {}),
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function round(spec: StoreSpec, round: number): Promise<number> {
  await using store = await openStore(spec);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; i < WRITES; i++) {
        await store.set(["w", String(round), String(w), String(i)], i);
      }
    }),
  );
  return ((performance.now() - start) * 1000) / (WRITERS * WRITES);
}

try {
  const off: number[] = [];
  const on: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      off.push(await round(spec("off", false), r));
      on.push(await round(spec("on", true), r));
    } else {
      on.push(await round(spec("on", true), r));
      off.push(await round(spec("off", false), r));
    }
  }
  console.log(
    "| concurrent durable sets (postgres) | feed off (baseline) | feed on | ratio | writers×writes×rounds |",
  );
  console.log("|---|---|---|---|---|");
  console.log(
    `| µs per write (wall / writes) | ${median(off).toFixed(0)} µs | ${
      median(on).toFixed(0)
    } µs | ${(median(on) / median(off)).toFixed(2)}× | ${WRITERS}×${WRITES}×${ROUNDS} |`,
  );
} finally {
  const { openClient } = await import("../plugins/postgres/client.ts");
  const sql = openClient(PG_URL);
  await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await sql.end();
}
