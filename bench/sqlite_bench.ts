/**
 * sqlite plugin vs bare node:sqlite doing the same statements, with the same
 * `synchronous` setting. Every write changes the stored bytes.
 * Run: deno task bench
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { openStore, type Store } from "../mod.ts";

const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-sqlite-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const BATCH = 10_000;
const LIST = 1_000;
const value = (n: number) => ({ n, name: "counter", tags: ["a", "b"], at: 1700000000000 + n });

interface Pair {
  store: Store;
  db: DatabaseSync;
  upsert: ReturnType<DatabaseSync["prepare"]>;
  get: ReturnType<DatabaseSync["prepare"]>;
  range: ReturnType<DatabaseSync["prepare"]>;
}

async function pair(durability: "full" | "relaxed"): Promise<Pair> {
  const store = await openStore({
    plugin: "sqlite",
    path: join(dir, `plugin-${durability}.db`),
    durability,
  });
  const db = new DatabaseSync(join(dir, `bare-${durability}.db`));
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA synchronous = ${durability === "full" ? "FULL" : "NORMAL"}`);
  db.exec(
    "CREATE TABLE kv (key BLOB PRIMARY KEY NOT NULL, value TEXT NOT NULL, version TEXT NOT NULL, expires_at REAL)",
  );
  const upsert = db.prepare(
    "INSERT INTO kv (key, value, version, expires_at) VALUES (?, ?, ?, NULL) " +
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, expires_at = excluded.expires_at",
  );
  const get = db.prepare("SELECT value, version, expires_at FROM kv WHERE key = ?");
  const range = db.prepare(
    "SELECT key, value, version, expires_at FROM kv WHERE key > ? AND key < ? ORDER BY key",
  );
  // Seed both with the same 1000-entry prefix for the list benchmark.
  const op = store.atomic();
  db.exec("BEGIN");
  for (let i = 0; i < LIST; i++) {
    const k = `item${String(i).padStart(5, "0")}`;
    op.set(["list", k], value(i));
    upsert.run(bareKey("list", k), JSON.stringify(value(i)), `v${i}`);
  }
  db.exec("COMMIT");
  await op.commit();
  return { store, db, upsert, get, range };
}

const enc = new TextEncoder();
function bareKey(...parts: string[]): Uint8Array {
  return enc.encode(parts.join("\0") + "\0");
}

let counter = 0;
for (const durability of ["full", "relaxed"] as const) {
  const p = await pair(durability);
  const hot = bareKey("bench", "hot");
  p.upsert.run(hot, JSON.stringify(value(0)), "v0");
  await p.store.set(["bench", "hot"], value(0));

  Deno.bench({
    name: `bare node:sqlite: one durable upsert (${durability})`,
    group: `sqlite set (${durability})`,
    baseline: true,
    fn() {
      counter++;
      p.upsert.run(hot, JSON.stringify(value(counter)), `v${counter}`);
    },
  });
  Deno.bench({
    name: `sqlite plugin: store.set (${durability})`,
    group: `sqlite set (${durability})`,
    async fn() {
      await p.store.set(["bench", "hot"], value(++counter));
    },
  });
  Deno.bench({
    name: `bare node:sqlite: point select + JSON.parse (${durability})`,
    group: `sqlite get (${durability})`,
    baseline: true,
    fn() {
      const row = p.get.get(hot) as { value: string };
      if (JSON.parse(row.value).n < 0) throw new Error("unreachable");
    },
  });
  Deno.bench({
    name: `sqlite plugin: store.get (${durability})`,
    group: `sqlite get (${durability})`,
    async fn() {
      const e = await p.store.get<{ n: number }>(["bench", "hot"]);
      if (e === null || e.value.n < 0) throw new Error("unreachable");
    },
  });
  Deno.bench({
    name: `bare node:sqlite: ${BATCH} upserts in one transaction (${durability})`,
    group: `sqlite batch (${durability})`,
    baseline: true,
    n: 20,
    fn() {
      const round = ++counter;
      p.db.exec("BEGIN IMMEDIATE");
      for (let i = 0; i < BATCH; i++) {
        p.upsert.run(bareKey("batch", `k${i}`), JSON.stringify(value(round + i)), `v${round}`);
      }
      p.db.exec("COMMIT");
    },
  });
  Deno.bench({
    name: `sqlite plugin: atomic() with ${BATCH} sets (${durability})`,
    group: `sqlite batch (${durability})`,
    n: 20,
    async fn() {
      const round = ++counter;
      const op = p.store.atomic();
      for (let i = 0; i < BATCH; i++) op.set(["batch", `k${i}`], value(round + i));
      const r = await op.commit();
      if (!r.ok) throw new Error("conflict");
    },
  });
  Deno.bench({
    name: `bare node:sqlite: range select of ${LIST} + JSON.parse (${durability})`,
    group: `sqlite list (${durability})`,
    baseline: true,
    fn() {
      const prefix = bareKey("list");
      const upper = new Uint8Array([...prefix, 0xff]);
      const rows = p.range.all(prefix, upper) as { value: string }[];
      let n = 0;
      for (const r of rows) n += JSON.parse(r.value).n >= 0 ? 1 : 0;
      if (n !== LIST) throw new Error(`listed ${n}`);
    },
  });
  Deno.bench({
    name: `sqlite plugin: list({ prefix }) of ${LIST} (${durability})`,
    group: `sqlite list (${durability})`,
    async fn() {
      let n = 0;
      for await (const _ of p.store.list({ prefix: ["list"] })) n++;
      if (n !== LIST) throw new Error(`listed ${n}`);
    },
  });
}
