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
