/**
 * Point-in-time restore throughput (changes/s): 100,000 changes of a sqlite
 * store with a change feed replayed over its full backup into a new sqlite
 * store (restoreBackup with `at` and `from`: verify the file, find the point
 * in the live feed, read the feed and write in atomic batches of 500), beside
 * a bare baseline in the same run: the same 100,000 changes, read beforehand
 * into memory, applied with bare node:sqlite (INSERT OR REPLACE / DELETE, one
 * transaction per 500, WAL, synchronous NORMAL). Interleaved rounds, repeated;
 * the summary prints the median rates and their ratio, and the same per
 * CPU-second of this process (what each would reach with a core of its own:
 * on a machine shared with other work the wall-clock rates move with the
 * load, the CPU time much less).
 *
 * Run: deno run -A bench/pitr_bench.ts [rounds=5]
 */
import { DatabaseSync } from "node:sqlite";
import process from "node:process";
import { join } from "node:path";
import { openStore, type Store } from "../mod.ts";
import { encodeKey } from "../src/store/keys.ts";
import { backupStore } from "../jobs/backup.ts";
import { restoreBackup } from "../jobs/restore.ts";

const N = 100_000;
const KEYS = 20_000;
const BATCH = 500;
const ROUNDS = Number(Deno.args[0] ?? 5);
const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-pitr-" });
const value = (n: number) => ({ n, name: `entry ${n}`, tags: ["a", "b"], score: n / 7 });

// The source: a few entries, a full backup, then N changes (sets, 1 in 10 a delete).
const source: Store = await openStore({
  plugin: "sqlite",
  path: join(dir, "source.db"),
  durability: "relaxed",
  changes: { keep: "30d" },
}, { name: "source" });
for (let i = 0; i < 1000; i++) await source.set(["bench", `k${i}`], value(i));
const full = join(dir, "full.fsbackup");
await backupStore(source, full);
const from = (await source.feedInfo()).lastSeq;
// Until the feed holds at least N changes after the backup (a delete of an absent key is no change).
for (let i = 0; (await source.feedInfo()).lastSeq - from < N; i += 100) {
  const op = source.atomic();
  for (let j = i; j < i + 100; j++) {
    const key = ["bench", `k${(j * 7919) % KEYS}`];
    if (j % 10 === 9) op.delete(key);
    else op.set(key, value(j));
  }
  await op.commit();
}
const last = from + N;
const changes = N;
// The bare baseline applies the same changes, read once beforehand (it measures the writes only).
const feed: { op: string; key: Uint8Array; value: string }[] = [];
for await (const c of source.changes({ since: from })) {
  if (c.seq > last) break;
  feed.push({ op: c.op, key: encodeKey(c.key), value: JSON.stringify(c.value ?? null) });
}
console.log(`${changes} changes after the full backup (seq ${from} to ${last})`);

let fileNo = 0;

/** This process's CPU time (all threads), in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
/** Changes per CPU-second of the last run of each. */
const cpuRates: Record<string, number[]> = { flowstate: [], bare: [] };

/** Flowstate: restoreBackup at the last change, from the live feed, into a new sqlite store. */
async function flowstate(): Promise<number> {
  const target = await openStore({
    plugin: "sqlite",
    path: join(dir, `t${fileNo++}.db`),
    durability: "relaxed",
  }, { name: "target" });
  const c0 = cpuMs();
  const t0 = performance.now();
  const result = await restoreBackup(target, full, { at: { seq: last }, from: source });
  const ms = performance.now() - t0;
  cpuRates.flowstate.push((changes / (cpuMs() - c0)) * 1000);
  if (result.changes !== changes) throw new Error(`replayed ${result.changes}, not ${changes}`);
  await target.close();
  return (changes / ms) * 1000;
}

/** Bare: read the same changes from the feed, apply them with node:sqlite. */
function bare(): number {
  const db = new DatabaseSync(join(dir, `b${fileNo++}.db`));
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
  db.exec("CREATE TABLE kv (key BLOB PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID");
  const put = db.prepare("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)");
  const del = db.prepare("DELETE FROM kv WHERE key = ?");
  const c0 = cpuMs();
  const t0 = performance.now();
  let n = 0;
  db.exec("BEGIN");
  for (const c of feed) {
    if (c.op === "set") put.run(c.key, c.value);
    else del.run(c.key);
    if (++n % BATCH === 0) {
      db.exec("COMMIT");
      db.exec("BEGIN");
    }
  }
  db.exec("COMMIT");
  const ms = performance.now() - t0;
  cpuRates.bare.push((changes / (cpuMs() - c0)) * 1000);
  db.close();
  if (n !== changes) throw new Error(`applied ${n}, not ${changes}`);
  return (changes / ms) * 1000;
}

const rates: Record<string, number[]> = { flowstate: [], bare: [] };
for (let round = 0; round < ROUNDS; round++) {
  // Interleaved, alternating which goes first.
  const order = round % 2 === 0 ? ["bare", "flowstate"] : ["flowstate", "bare"];
  for (const name of order) {
    rates[name].push(name === "bare" ? bare() : await flowstate());
  }
  console.log(
    `round ${round + 1}: bare ${Math.round(rates.bare.at(-1)!)} changes/s, ` +
      `flowstate ${Math.round(rates.flowstate.at(-1)!)} changes/s; per CPU-second: bare ${
        Math.round(cpuRates.bare.at(-1)!)
      }, flowstate ${Math.round(cpuRates.flowstate.at(-1)!)}`,
  );
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Each round's time ratio (the two ran back to back: the fairest comparison on a busy machine).
const ratios = rates.bare.map((b, i) => b / rates.flowstate[i]);
console.log(`time ratio flowstate/bare per round: ${ratios.map((r) => r.toFixed(2)).join(", ")}`);
console.log(`median of the per-round ratios: ${median(ratios).toFixed(2)}x`);
const f = median(rates.flowstate);
const b = median(rates.bare);
console.log(
  `\npoint-in-time restore of ${changes} changes (sqlite → sqlite, relaxed), median of ${ROUNDS}:\n` +
    `  bare node:sqlite   ${Math.round(b)} changes/s\n` +
    `  flowstate          ${Math.round(f)} changes/s (${
      (b / f).toFixed(2)
    }x the bare time; target >= 50000/s: ${f >= 50_000 ? "met" : "NOT met"})\n` +
    `  per CPU-second: bare ${Math.round(median(cpuRates.bare))}, flowstate ${
      Math.round(median(cpuRates.flowstate))
    } changes (load average ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")})`,
);
await source.close();
await Deno.remove(dir, { recursive: true });
