/**
 * The sqlite plugin's options without zod: the fast check of the usual
 * options (the zod schema in `options.ts` is imported for anything else).
 *
 * @module
 */
import { isFiniteNumber, lazySchema, plainWith } from "../../src/_lazy_schema.ts";
import type { OptionsSchema } from "../../src/plugin_define.ts";
import { sqliteDefaults } from "./driver.ts";
import type { SqliteOptions } from "./options.ts";

const OPTION_NAMES: ReadonlySet<string> = new Set([
  "path",
  "durability",
  "busyTimeout",
  "cacheSize",
]);

/** The options as `sqliteOptions` parses them, when they are plainly valid; else `undefined`. */
export function fastSqliteOptions(value: unknown): { value: SqliteOptions } | undefined {
  if (!plainWith(value, OPTION_NAMES)) return undefined;
  const out: SqliteOptions = {
    durability: sqliteDefaults.durability as SqliteOptions["durability"],
    busyTimeout: sqliteDefaults.busyTimeout,
  };
  if ("path" in value) {
    if (typeof value.path !== "string" || value.path === "") return undefined;
    out.path = value.path;
  }
  if ("durability" in value) {
    if (value.durability !== "full" && value.durability !== "relaxed") return undefined;
    out.durability = value.durability;
  }
  if ("busyTimeout" in value) {
    const ms = value.busyTimeout;
    if (!Number.isSafeInteger(ms) || (ms as number) < 0 || (ms as number) > 2_147_483_647) {
      return undefined;
    }
    out.busyTimeout = ms as number;
  }
  if ("cacheSize" in value) {
    const kib = value.cacheSize;
    if (!isFiniteNumber(kib) || !Number.isSafeInteger(kib) || kib <= 0) return undefined;
    out.cacheSize = kib;
  }
  return { value: out };
}

/** The plugin's `optionsSchema`: the fast check, else `sqliteOptions` (zod) imported then. */
export const lazySqliteOptions: OptionsSchema<SqliteOptions> = lazySchema(
  async () => (await import("./options.ts")).sqliteOptions,
  fastSqliteOptions,
);
