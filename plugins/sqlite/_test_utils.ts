/**
 * Helpers shared by the sqlite plugin's test files (not published).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { Clock } from "../../src/store/types.ts";

/** Run `fn` with a fresh temporary directory, removed afterwards. */
export async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-sqlite-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A clock that stands still until a test moves `t`. */
export function manualClock(start = 1_000_000): Clock & { t: number } {
  return {
    t: start,
    now() {
      return this.t;
    },
  };
}

/** A direct connection to a database file, for inspecting and tampering with it. */
export function rawDb(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA busy_timeout = 5000");
  return db;
}

/**
 * Turn the file's search index into what earlier versions built for a
 * declaration `{ prefix }` without fields: FTS5's `unicode61` folding and
 * cutting the strings itself, and the bare declaration in the metadata.
 */
export function oldSearchFormat(path: string, prefix: string[] = ["notes"]): void {
  const db = rawDb(path);
  const text = (row: string) =>
    `(SELECT group_concat(atom, ' ') FROM json_tree(${row}.value) WHERE type = 'text')`;
  db.exec(
    `DROP TRIGGER IF EXISTS flowstate_search_insert; DROP TRIGGER IF EXISTS flowstate_search_delete;
     DROP TRIGGER IF EXISTS flowstate_search_update; DROP TABLE IF EXISTS flowstate_search;
     CREATE VIRTUAL TABLE flowstate_search USING fts5(body, tokenize = 'unicode61 remove_diacritics 0');
     CREATE TRIGGER flowstate_search_insert AFTER INSERT ON flowstate_entries BEGIN
       INSERT INTO flowstate_search (rowid, body) VALUES (new.rowid, ${text("new")}); END;
     INSERT INTO flowstate_search (rowid, body) SELECT e.rowid, ${
      text("e")
    } FROM flowstate_entries AS e;`,
  );
  db.prepare("INSERT OR REPLACE INTO flowstate_meta (key, value) VALUES ('search', ?)").run(
    JSON.stringify({ prefix, fields: null }),
  );
  db.close();
}
