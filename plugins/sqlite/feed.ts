/**
 * The change feed's table in a sqlite store (schema version 2): one row per
 * change, written in the commit's own transaction, and an index by key for
 * history and `getAt`. It replaces the core's feed rows in the reserved key
 * space (an entry, a by-key row and the head per change: three more rows,
 * and as many more b-tree pages written per commit); a file whose feed
 * lives there is moved into the table, in one transaction, when a writable
 * store first opens it.
 *
 * A commit that writes the feed dirties two more pages than one that does
 * not (the table's last leaf, and the data's own), not three: the index by
 * key is filled in batches.
 *
 * Choices:
 * - `seq INTEGER PRIMARY KEY`: the entry is the rowid, appended at the end
 *   of the table's b-tree; the next one is `max(seq) + 1`, read under the
 *   commit's write lock (SQLite's one per file), so sequence numbers are
 *   gap-free and in commit order across processes, with no counter row to
 *   rewrite per commit. When a trim deletes every entry, the last deleted
 *   number stays in `flowstate_meta` (`feed_floor`) and the head never
 *   moves back.
 * - `key` holds `encodeKey()` bytes, like `flowstate_entries.key`.
 * - The index by key is a table of its own, `flowstate_feed_keys (key, seq)`,
 *   filled `FEED_KEYS_EVERY` entries at a time: the commit whose entries
 *   reach a multiple of it indexes every entry up to that multiple, in its
 *   own transaction. So every entry up to `head - head % FEED_KEYS_EVERY` is
 *   indexed, and a key's history is the index plus a scan of the few newer
 *   entries (fewer than `FEED_KEYS_EVERY`). An SQL index on the table would
 *   put one more b-tree page into every commit's WAL write: measured, it
 *   cost ≈ 20 µs of CPU per set, half of what the feed costs without it.
 * - `value` is the JSON text as stored, `by` the actor as JSON (read back as
 *   written, so a new actor field needs no new column).
 * - `at` and `expires_at` are REAL, like `flowstate_entries.expires_at`: a
 *   fake clock may give fractional times.
 * - `feed_since` in `flowstate_meta`: when the first entry was written.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { type KeySpaceFeed, rowOf } from "../_sql/feed_row.ts";
export { changeOf, type FeedRow, type KeySpaceFeed } from "../_sql/feed_row.ts";

/** Entries indexed by key at a time (see the module's notes). */
export const FEED_KEYS_EVERY = 256;

/** The table and its index by key. */
export const FEED_TABLE_SQL = `
CREATE TABLE flowstate_feed (
  seq INTEGER PRIMARY KEY,
  at REAL NOT NULL,
  key BLOB NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('set', 'delete')),
  value TEXT,
  version TEXT,
  previous_version TEXT,
  expires_at REAL,
  by TEXT NOT NULL
);
CREATE TABLE flowstate_feed_keys (
  key BLOB NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (key, seq)
) WITHOUT ROWID;
`;

/** The columns of an entry, in the order {@linkcode changeOf} reads them. */
export const FEED_COLUMNS = "seq, at, key, op, value, version, previous_version, expires_at, by";

/** Whether the file has the feed's table. */
export function hasFeedTable(db: DatabaseSync): boolean {
  return db.prepare(
    "SELECT 1 AS yes FROM sqlite_schema WHERE type = 'table' AND name = 'flowstate_feed'",
  ).get() !== undefined;
}

/**
 * Create the table (inside the caller's write transaction) and mark the file
 * schema version 2; `since` is when the feed's first entry was written.
 */
export function createFeedTable(db: DatabaseSync, since: number): void {
  db.exec(FEED_TABLE_SQL);
  db.prepare("INSERT OR REPLACE INTO flowstate_meta (key, value) VALUES ('feed_since', ?)")
    .run(String(since));
  db.prepare("UPDATE flowstate_meta SET value = '2' WHERE key = 'schema_version'").run();
}

/**
 * Move a feed kept in the key space into the table (inside the caller's
 * write transaction, the table not there yet): every kept entry becomes a
 * row with the same fields (all indexed by key), the head's number stays the
 * floor, and the caller deletes the old rows. Resolves how many entries were moved.
 */
export function moveKeySpaceFeed(db: DatabaseSync, old: KeySpaceFeed): number {
  let since = old.head.since;
  const insert = () =>
    db.prepare(
      `INSERT INTO flowstate_feed (${FEED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  let statement: ReturnType<typeof insert> | undefined;
  let n = 0;
  for (const c of old.entries) {
    since ??= c.at;
    if (statement === undefined) {
      createFeedTable(db, since);
      statement = insert();
    }
    statement.run(...rowOf(c));
    n++;
  }
  if (statement === undefined) createFeedTable(db, since ?? Date.now());
  db.exec("INSERT INTO flowstate_feed_keys (key, seq) SELECT key, seq FROM flowstate_feed");
  db.prepare("INSERT OR REPLACE INTO flowstate_meta (key, value) VALUES ('feed_floor', ?)")
    .run(String(old.head.seq));
  return n;
}
