/**
 * The baseline of bench/cold_start.ts: a bare Deno start that does the
 * counter flow's write with node:sqlite: open `.flowstate/bare.db` (WAL,
 * synchronous=FULL, as the sqlite plugin's default durability), read the
 * count and write it plus one in one `BEGIN IMMEDIATE` transaction, print it.
 *
 * Run: deno run --allow-read --allow-write=.flowstate bench/cold_bare.ts
 */
import { DatabaseSync } from "node:sqlite";

Deno.mkdirSync(".flowstate", { recursive: true });
const db = new DatabaseSync(".flowstate/bare.db");
db.exec("PRAGMA journal_mode = WAL");
db.exec("PRAGMA synchronous = FULL");
db.exec(
  "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value TEXT NOT NULL, version TEXT NOT NULL) WITHOUT ROWID",
);
const key = new TextEncoder().encode("flow\0counter\0count");
db.exec("BEGIN IMMEDIATE");
const row = db.prepare("SELECT value FROM kv WHERE key = ?").get(key) as
  | { value: string }
  | undefined;
const next = (row ? JSON.parse(row.value) : 0) + 1;
db.prepare(
  "INSERT INTO kv (key, value, version) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version",
).run(key, JSON.stringify(next), String(Date.now()));
db.exec("COMMIT");
db.close();
console.log(`count: ${next}`);
