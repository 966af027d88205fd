/**
 * The sqlite plugin's options: their zod schema ({@linkcode sqliteOptions}),
 * and a fast check of the usual ones that the plugin uses first, so that
 * opening a store does not load zod (see `src/_lazy_schema.ts`).
 *
 * @module
 */
import { z } from "zod";
import type { ParsingSchema } from "../../src/plugin_define.ts";
import { sqliteDefaults } from "./driver.ts";

/**
 * Validated options of the sqlite plugin (see {@linkcode sqliteOptions}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type SqliteOptions, sqliteOptions } from "@flowstate/core/plugins/sqlite";
 *
 * const options: SqliteOptions = sqliteOptions.parse({ path: "state.db", cacheSize: 8_192 });
 * assert.deepEqual(options, { path: "state.db", durability: "full", busyTimeout: 5000, cacheSize: 8_192 });
 * ```
 */
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

/**
 * The schema of the sqlite plugin's options (a zod schema).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sqliteOptions } from "@flowstate/core/plugins/sqlite";
 *
 * const options = sqliteOptions.parse({ path: "state.db", durability: "relaxed" });
 * assert.equal(options.busyTimeout, 5000);
 * assert.equal(sqliteOptions.safeParse({ durability: "fast" }).success, false);
 * ```
 */
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
