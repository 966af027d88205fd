/**
 * What a durable set writes to SQLite's WAL with the change feed off (the
 * baseline) and on, in the same process: WAL bytes and frames (pages) per
 * set, with a reader holding the WAL open so nothing is checkpointed in
 * between. Unlike wall time, this does not depend on the machine's load: a
 * commit's cost beyond its fsync grows with the pages it writes.
 *
 * Run: deno run -A bench/feed_wal_bench.ts [sets=300]
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { openStore } from "../mod.ts";

const SETS = Number(Deno.args[0] ?? 300);
const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-feed-wal-" });
const value = { n: 0, name: "counter", tags: ["a", "b"], pad: "x".repeat(100) };
try {
  console.log("| sqlite durable set | WAL bytes per set | frames (pages) per set |");
  console.log("|---|---|---|");
  for (const feed of [false, true]) {
    const path = join(dir, `${feed ? "on" : "off"}.db`);
    const store = await openStore({
      plugin: "sqlite",
      path,
      ...(feed ? { changes: { keep: "30d" } } : {}),
    });
    try {
      // Warm up (the tables' first pages, the feed's table), then hold the WAL with a reader.
      for (let i = 0; i < 100; i++) await store.set(["k", String(i % 50)], { ...value, n: i });
      const reader = new DatabaseSync(path);
      reader.exec("BEGIN");
      reader.prepare("SELECT count(*) FROM flowstate_entries").get();
      // A WAL frame: a page and its 24-byte header.
      const frame = (reader.prepare("PRAGMA page_size").get() as { page_size: number }).page_size +
        24;
      const before = (await Deno.stat(`${path}-wal`)).size;
      for (let i = 0; i < SETS; i++) await store.set(["k", String(i % 50)], { ...value, n: i });
      const bytes = ((await Deno.stat(`${path}-wal`)).size - before) / SETS;
      reader.exec("COMMIT");
      reader.close();
      console.log(
        `| feed ${feed ? "on" : "off"} | ${bytes.toFixed(0)} | ${(bytes / frame).toFixed(2)} |`,
      );
    } finally {
      await store.close();
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
