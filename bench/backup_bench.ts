/**
 * backup and restore throughput (entries/s) on a 50,000-entry sqlite store,
 * beside raw baselines in the same run:
 * - backup baseline: bare node:sqlite reads every row (key decoded, value
 *   text as stored) and gzip-writes the same JSON lines to a file;
 * - restore baseline: gunzip + JSON.parse those lines and INSERT them with
 *   bare node:sqlite, 500 rows per transaction, same `synchronous` setting.
 * A summary in entries/s is printed at the end.
 *
 * Run: deno bench --allow-read --allow-write --allow-env --allow-sys bench/backup_bench.ts
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { openStore, type Store } from "../mod.ts";
import { decodeKey, encodeKey } from "../src/store/keys.ts";
import { backupStore } from "../jobs/backup.ts";
import { restoreBackup } from "../jobs/restore.ts";
import { GzipFileWriter, readGzipLines } from "../src/archive_format.ts";

const N = 50_000;
const BATCH = 500;
const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-backup-" });
const value = (n: number) => ({
  n,
  name: `entry ${n}`,
  tags: ["a", "b", "c"],
  at: 1_700_000_000_000 + n,
  nested: { ok: n % 2 === 0, score: n / 7 },
});

// The source: a sqlite store of N entries (relaxed durability: we measure reads).
const sourcePath = join(dir, "source.db");
const source: Store = await openStore({
  plugin: "sqlite",
  path: sourcePath,
  durability: "relaxed",
});
for (let i = 0; i < N; i += 5000) {
  const op = source.atomic();
  for (let j = i; j < i + 5000; j++) {
    op.set(["bench", `g${j % 10}`, `k${String(j).padStart(6, "0")}`], value(j));
  }
  await op.commit();
}
const backupFile = join(dir, "fixture.fsbackup");
await backupStore(source, backupFile);

const rates = new Map<string, number[]>();
function record(name: string, ms: number): void {
  rates.set(name, [...(rates.get(name) ?? []), (N / ms) * 1000]);
}
let fileNo = 0;

Deno.bench({
  name: "backup: raw baseline (node:sqlite rows → gzip JSON lines)",
  group: "backup 50k sqlite",
  baseline: true,
  n: 5,
  warmup: 1,
  async fn() {
    const t = performance.now();
    const db = new DatabaseSync(sourcePath, { readOnly: true });
    const writer = await GzipFileWriter.create(join(dir, `raw-${fileNo++}.gz`));
    const rows = db.prepare(
      "SELECT key, value, expires_at FROM flowstate_entries ORDER BY key",
    ).iterate() as Iterable<{ key: Uint8Array; value: string; expires_at: number | null }>;
    for (const row of rows) {
      await writer.writeLine(
        `{"key":${
          JSON.stringify(decodeKey(row.key))
        },"value":${row.value},"expiresAt":${row.expires_at}}`,
      );
    }
    await writer.commit();
    db.close();
    record("backup: raw baseline", performance.now() - t);
  },
});

Deno.bench({
  name: "backup: backupStore, consistency per-key (one pass)",
  group: "backup 50k sqlite",
  n: 5,
  warmup: 1,
  async fn() {
    const t = performance.now();
    await backupStore(source, join(dir, `b-${fileNo++}.fsbackup`), { consistency: "per-key" });
    record("backup: per-key (1 pass)", performance.now() - t);
  },
});

Deno.bench({
  name: "backup: backupStore, consistency snapshot (two passes, default)",
  group: "backup 50k sqlite",
  n: 5,
  warmup: 1,
  async fn() {
    const t = performance.now();
    await backupStore(source, join(dir, `b-${fileNo++}.fsbackup`));
    record("backup: snapshot (default, 2 passes)", performance.now() - t);
  },
});

function bareTarget(path: string, synchronous: "FULL" | "NORMAL"): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA synchronous = ${synchronous}`);
  db.exec(
    "CREATE TABLE kv (key BLOB PRIMARY KEY NOT NULL, value TEXT NOT NULL, version TEXT NOT NULL, expires_at REAL)",
  );
  return db;
}

for (const durability of ["relaxed", "full"] as const) {
  const synchronous = durability === "full" ? "FULL" : "NORMAL";
  const group = `restore 50k into sqlite (${durability})`;
  Deno.bench({
    name: `restore: raw baseline (gunzip + parse + INSERT, ${BATCH}/tx, ${synchronous})`,
    group,
    baseline: true,
    n: 3,
    warmup: 1,
    async fn() {
      const t = performance.now();
      const db = bareTarget(join(dir, `raw-${fileNo++}.db`), synchronous);
      const insert = db.prepare(
        "INSERT INTO kv (key, value, version, expires_at) VALUES (?, ?, ?, ?)",
      );
      let inBatch = 0;
      let first = true;
      db.exec("BEGIN");
      for await (const line of readGzipLines(backupFile)) {
        if (first) {
          first = false;
          continue;
        }
        const e = JSON.parse(line);
        if (e.end !== undefined) break;
        insert.run(encodeKey(e.key), JSON.stringify(e.value), "v", e.expiresAt);
        if (++inBatch === BATCH) {
          db.exec("COMMIT");
          db.exec("BEGIN");
          inBatch = 0;
        }
      }
      db.exec("COMMIT");
      db.close();
      record(`restore (${durability}): raw baseline`, performance.now() - t);
    },
  });
  Deno.bench({
    name: `restore: restoreBackup (verify pass + write pass, ${BATCH}/commit)`,
    group,
    n: 3,
    warmup: 1,
    async fn() {
      const t = performance.now();
      const target = await openStore({
        plugin: "sqlite",
        path: join(dir, `t-${fileNo++}.db`),
        durability,
      });
      const result = await restoreBackup(target, backupFile, { batchSize: BATCH });
      if (result.restored !== N) throw new Error(`restored ${result.restored}`);
      await target.close();
      record(`restore (${durability}): restoreBackup`, performance.now() - t);
    },
  });
}

Deno.bench({
  name: "restore: restoreBackup into memory",
  group: "restore 50k into memory",
  n: 3,
  warmup: 1,
  async fn() {
    const t = performance.now();
    await using target = await openStore({ plugin: "memory" });
    await restoreBackup(target, backupFile, { batchSize: BATCH });
    record("restore (memory): restoreBackup", performance.now() - t);
  },
});

globalThis.addEventListener("unload", () => {
  console.log(`\nentries/s (${N.toLocaleString("en-US")} entries; median of measured runs):`);
  for (const [name, list] of rates) {
    const sorted = [...list].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    console.log(`  ${name.padEnd(42)} ${Math.round(median).toLocaleString("en-US")}`);
  }
  source.close();
  Deno.removeSync(dir, { recursive: true });
});
