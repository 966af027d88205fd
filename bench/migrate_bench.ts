/**
 * Store-to-store migration throughput (sqlite → sqlite, 50k entries) beside
 * a bare copy with the same backend: node:sqlite SELECTs every row of the
 * source file and INSERTs it into a fresh file (same schema, WAL,
 * synchronous=FULL, as the sqlite plugin's defaults) in one transaction.
 *
 * The migration is `moveStore()` with its defaults: batches of 1000 (one
 * atomic commit each, with its checkpoint) and then the full verification
 * (both stores read again side by side).
 *
 * Run: deno task bench (Deno.bench: time per 50k-entry move)
 *  or: deno run --allow-read --allow-write --allow-env --allow-sys bench/migrate_bench.ts
 *      (prints entries/s, the copy / verify split and the ratio, median of 5 rounds)
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { openStore, type Store } from "../mod.ts";
import { moveStore, type MoveStoreResult } from "../jobs/migrate_store.ts";

const N = 50_000;
const dir = await Deno.makeTempDir({ prefix: "flowstate-migrate-bench-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const sourcePath = join(dir, "source.db");

{
  await using source = await openStore({ plugin: "sqlite", path: sourcePath }, { name: "source" });
  for (let start = 0; start < N; start += 5000) {
    const op = source.atomic();
    for (let i = start; i < start + 5000; i++) {
      op.set(["flow", `f${i % 50}`, "state", String(i).padStart(6, "0")], {
        count: i,
        name: `entry ${i}`,
        tags: ["a", "b", "c"],
        nested: { ok: i % 2 === 0, at: 1_767_225_600_000 + i },
      }, i % 10 === 0 ? { expireIn: 86_400_000 } : undefined);
    }
    await op.commit();
  }
}

let round = 0;
const nextPath = () => join(dir, `target-${round++}.db`);

const SCHEMA = `
CREATE TABLE flowstate_entries (
  key BLOB PRIMARY KEY NOT NULL,
  value TEXT NOT NULL,
  version TEXT NOT NULL,
  expires_at REAL
);`;

/** The baseline: copy every row in one transaction with node:sqlite. Returns ms and rows. */
function bareCopy(targetPath: string): { ms: number; rows: number } {
  const src = new DatabaseSync(sourcePath, { readOnly: true });
  const dst = new DatabaseSync(targetPath);
  dst.exec("PRAGMA journal_mode = WAL");
  dst.exec("PRAGMA synchronous = FULL");
  dst.exec(SCHEMA);
  const select = src.prepare(
    "SELECT key, value, version, expires_at FROM flowstate_entries ORDER BY key",
  );
  const insert = dst.prepare(
    "INSERT INTO flowstate_entries (key, value, version, expires_at) VALUES (?, ?, ?, ?)",
  );
  const t0 = performance.now();
  dst.exec("BEGIN IMMEDIATE");
  let rows = 0;
  const all = select.all() as {
    key: Uint8Array;
    value: string;
    version: string;
    expires_at: number | null;
  }[];
  for (const r of all) {
    insert.run(r.key, r.value, r.version, r.expires_at);
    rows++;
  }
  dst.exec("COMMIT");
  const ms = performance.now() - t0;
  src.close();
  dst.close();
  return { ms, rows };
}

async function openPair(): Promise<[Store, Store]> {
  const source = await openStore({ plugin: "sqlite", path: sourcePath }, { name: "source" });
  const target = await openStore({ plugin: "sqlite", path: nextPath() }, { name: "target" });
  return [source, target];
}

/** The migration: moveStore() with its defaults. Returns ms and its result. */
async function migrate(): Promise<{ ms: number; result: MoveStoreResult }> {
  const [source, target] = await openPair();
  try {
    const t0 = performance.now();
    const result = await moveStore(source, target);
    const ms = performance.now() - t0;
    if (result.total !== N || !result.verified) throw new Error("the move did not complete");
    return { ms, result };
  } finally {
    await source.close();
    await target.close();
  }
}

if (import.meta.main) {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const bare: number[] = [];
  const moved: number[] = [];
  const copy: number[] = [];
  const verify: number[] = [];
  bareCopy(nextPath()); // warm-up
  await migrate();
  for (let i = 0; i < 5; i++) {
    const b = bareCopy(nextPath());
    if (b.rows !== N) throw new Error(`bare copy copied ${b.rows} rows`);
    bare.push(b.ms);
    const m = await migrate();
    moved.push(m.ms);
    copy.push(m.result.copyMs);
    verify.push(m.result.verifyMs);
  }
  const rate = (ms: number) => Math.round(N / (ms / 1000)).toLocaleString("en-US");
  const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
  console.log(`sqlite -> sqlite, ${N.toLocaleString("en-US")} entries, median of 5 rounds`);
  console.log(
    `bare node:sqlite copy (1 txn):   ${fmt(median(bare))}  ${rate(median(bare))} entries/s`,
  );
  console.log(
    `moveStore (copy + verify):       ${fmt(median(moved))}  ${rate(median(moved))} entries/s`,
  );
  console.log(
    `  copy phase (50 batches):       ${fmt(median(copy))}  ${rate(median(copy))} entries/s`,
  );
  console.log(`  verify phase:                  ${fmt(median(verify))}`);
  console.log(`ratio moveStore / bare: ${(median(moved) / median(bare)).toFixed(1)}x`);
  console.log(`ratio copy phase / bare: ${(median(copy) / median(bare)).toFixed(1)}x`);
} else {
  Deno.bench({
    name: `sqlite -> sqlite ${N} entries: bare node:sqlite SELECT + INSERT, one transaction`,
    group: "migrate-store",
    baseline: true,
    n: 5,
    warmup: 1,
    fn(b) {
      const path = nextPath();
      b.start();
      bareCopy(path);
      b.end();
    },
  });
  Deno.bench({
    name: `sqlite -> sqlite ${N} entries: moveStore (batches of 1000, verified)`,
    group: "migrate-store",
    n: 5,
    warmup: 1,
    async fn(b) {
      const [source, target] = await openPair();
      b.start();
      await moveStore(source, target);
      b.end();
      await source.close();
      await target.close();
    },
  });
}
