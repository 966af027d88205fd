/**
 * The sqlite plugin object (re-exported by `mod.ts` as its default export):
 * the core imports this module for `plugin: sqlite`, which does not load zod
 * (`mod.ts` exports the zod schema `sqliteOptions` too).
 *
 * @module
 */
import { join, resolve } from "../../src/_path.ts";
import { definePlugin, type Plugin, requireStoreFile } from "../../src/plugin_define.ts";
import { SqliteDriver } from "./driver.ts";
import { lazySqliteOptions } from "./options_fast.ts";
import type { SqliteOptions } from "./options.ts";

/**
 * The sqlite plugin (documented with `mod.ts`, its public home):
 * `openStore({ plugin: "sqlite", path })` names it; the default export is the
 * plugin object itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import sqlite from "@flowstate/core/plugins/sqlite";
 *
 * assert.equal(sqlite.name, "sqlite");
 * const dir = await Deno.makeTempDir();
 * const store = await openStore({ plugin: sqlite, path: `${dir}/state.db` });
 * await store.set(["a"], 1);
 * assert.equal((await store.get(["a"]))?.value, 1);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
const sqlite: Plugin<SqliteOptions> = definePlugin({
  name: "sqlite",
  description: "one SQLite file (node:sqlite, WAL); durable, multi-process, native queries",
  optionsSchema: lazySqliteOptions,
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
      verify: context.verify,
      onlyReads: context.mustExist,
    });
  },
});
export default sqlite;
