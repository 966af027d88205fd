/**
 * The `sqlite` plugin: a durable, multi-process store in one SQLite file,
 * built on `node:sqlite` (no FFI, no npm package).
 *
 * ```yaml
 * stores:
 *   main: { plugin: sqlite, path: state.db, durability: full }
 * ```
 *
 * - WAL mode: readers never block the writer, and several processes may share
 *   the file. Every write runs in one `BEGIN IMMEDIATE` transaction, so
 *   compare-and-set is exact across processes (no lost updates).
 * - `durability: "full"` (the default) fsyncs the WAL on every commit;
 *   `"relaxed"` (`synchronous=NORMAL`) still survives a killed process but may
 *   lose the last commits on power loss or an OS crash.
 * - A file on a read-only file system (or in a directory this process may
 *   not write) opens read-only: reads work, every write throws a
 *   `StoreReadOnlyError` naming the place. Where SQLite cannot create the
 *   WAL's `-shm` file there, it reads a snapshot copy made in a temp
 *   directory (removed on close), commits still in the `-wal` included.
 * - Keys are stored as memcmp-ordered bytes (see `encodeKey`), so prefix and
 *   range scans are index range scans. Queries are translated to SQL with
 *   `json_type`/`json_extract`/`json_each` when that can be done with the exact
 *   semantics of the core; otherwise the core evaluates them.
 *
 * - A store with a change feed keeps it in a table of its own
 *   (`flowstate_feed`, schema version 2), appended in the commit's
 *   transaction; a feed written by Flowstate 0.3 in the reserved key space is
 *   moved there when a writable store first opens the file.
 *
 * Reading order: this file (options and the plugin), `driver.ts` (the
 * driver), `schema.ts` (the file's tables, and how a file is checked and
 * set up), `feed.ts` (the change feed's table), `query.ts` (queries in SQL),
 * `errors.ts` (what SQLite's errors mean). Listing pages and key bounds are shared with the postgres plugin
 * in `../_sql/`.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { z } from "zod";
import {
  definePlugin,
  type ParsingSchema,
  type Plugin,
  requireStoreFile,
} from "../../src/plugin_define.ts";
import { sqliteDefaults, SqliteDriver } from "./driver.ts";

export { sqliteDefaults, SqliteDriver, type SqliteDriverOptions } from "./driver.ts";

/** Validated options of the sqlite plugin (see {@linkcode sqliteOptions}). */
export interface SqliteOptions {
  /** The database file (default: `<home>/<store name>.db`). */
  path?: string;
  /** `"full"` (default) or `"relaxed"`. */
  durability: "full" | "relaxed";
  /** Milliseconds a write waits for another process's lock (default 5000). */
  busyTimeout: number;
  /** SQLite's page cache per connection, in KiB. */
  cacheSize?: number;
}

/** The schema of the sqlite plugin's options (a zod schema). */
export const sqliteOptions: ParsingSchema<SqliteOptions> = z.strictObject({
  /**
   * The database file, relative to the config's directory
   * (default: `<home>/<store name>.db`). Missing parent directories are created.
   */
  path: z.string().min(1).optional(),
  /**
   * `"full"` (`PRAGMA synchronous=FULL`): a resolved write survives power loss.
   * `"relaxed"` (`synchronous=NORMAL` under WAL): survives a killed process,
   * but the last moments of writes may be lost on power loss or an OS crash.
   */
  durability: z.enum(["full", "relaxed"]).default(sqliteDefaults.durability),
  /** Milliseconds a write waits for another process's lock before failing. */
  busyTimeout: z.number().int().min(0).max(2_147_483_647).default(sqliteDefaults.busyTimeout),
  /** SQLite's page cache per connection, in KiB (default: SQLite's own, about 2 MiB). */
  cacheSize: z.number().int().positive().optional(),
});

/**
 * The sqlite plugin: `openStore({ plugin: "sqlite", path })`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * const store = await openStore({ plugin: "sqlite", path: `${dir}/state.db` });
 * await store.set(["flow", "counter", "count"], 1);
 * const entry = await store.get<number>(["flow", "counter", "count"]);
 * assert.equal(entry?.value, 1);
 * assert.equal(store.capabilities.multiProcess, true);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
const sqlite: Plugin<SqliteOptions> = definePlugin({
  name: "sqlite",
  description: "one SQLite file (node:sqlite, WAL); durable, multi-process, native queries",
  optionsSchema: sqliteOptions,
  async open(options, context) {
    const path = options.path !== undefined
      ? resolve(context.baseDir, options.path)
      : join(context.home, `${context.storeName}.db`);
    await requireStoreFile(path, context);
    return await SqliteDriver.open(path, {
      durability: options.durability,
      busyTimeout: options.busyTimeout,
      cacheSize: options.cacheSize,
      storeName: context.storeName,
    });
  },
});
export default sqlite;
