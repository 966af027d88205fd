/**
 * The `jsonfile` plugin: one human-readable JSON document per store, written
 * durably and shared safely between processes.
 *
 * ```yaml
 * stores:
 *   main: { plugin: jsonfile, path: state.json, durability: full }
 * ```
 *
 * The document holds one entry per line, sorted by key, so a person can read
 * and diff it:
 *
 * ```json
 * {"format": "flowstate.jsonfile", "version": 1, "entries": [
 * {"key": ["flow","counter","count"], "value": 3, "version": "…", "expiresAt": null},
 * {"key": ["flow","counter","last"], "value": "2026-01-02", "version": "…", "expiresAt": null}
 * ]}
 * ```
 *
 * How it works:
 * - Every acknowledged write is on disk: the whole document is written to a
 *   temp file, fsynced, renamed over the store file and the directory is
 *   fsynced (`durability: "relaxed"` skips both fsyncs: it survives a killed
 *   process, not a power loss). A commit resolves only after that.
 * - Commits that arrive while a write is in flight are queued and written
 *   together by the next write (group commit); each resolves after the write
 *   that contains it. A failed write leaves the in-memory view unchanged.
 * - Each write holds an OS advisory lock on `<path>.lock` (`flock` on Unix,
 *   `LockFileEx` on Windows) only for its read-modify-write: it re-reads the
 *   file if another process replaced it, evaluates the version checks against
 *   that fresh content, writes, and releases. Another process (or another
 *   store on the same file in this process) waits, then fails naming the
 *   holder: each holder writes its pid, host name, time and its measured
 *   average hold time into the lock file when it takes the lock. The wait
 *   is `lockTimeout` at least, raised to 8 × the measured time a commit holds
 *   the lock × the processes seen taking turns, so a big store shared by
 *   many processes queues instead of failing (see `lockWaitBudget` in `lock.ts`).
 * - A commit's outcome is always known: it fails, and nothing was written,
 *   until the rename that puts the new file in place; after the rename it
 *   stands (a failing directory fsync then only warns that it may not
 *   survive a power loss).
 * - A store whose directory is on a read-only file system, or cannot be
 *   written by this process, opens read-only: reads work, and every write
 *   throws a `StoreReadOnlyError` naming the place.
 * - A store file past 4 MiB is better off in sqlite: opening one says so,
 *   once per process, naming `flowstate migrate store`.
 * - The OS releases the lock of a process that dies, however it dies, so a
 *   crash never leaves the store locked and no lock is ever judged stale. A
 *   waiting process tries again every few milliseconds (a blocking wait could
 *   not be cancelled at `lockTimeout`, and would keep the process alive).
 * - The lock file is opened once per store and kept open. A store that closes
 *   deletes it if no one holds the lock, taking the lock to do so; whoever
 *   takes the lock then checks that its lock file is still the one at
 *   `<path>.lock`, and if not (deleted, or replaced) reopens the path and tries
 *   again. So deleting the lock file never lets two writers in, unless it is
 *   deleted by something that does not take the lock first, while a write
 *   holds it.
 * - Reads see other processes' writes: each read costs one `stat` of the
 *   file, and the file is re-read only when it was replaced.
 * - Expired entries are hidden by the core and stay in the file until
 *   `purgeExpired()` deletes them; `compact()` rewrites the file.
 * - A file that is not valid JSON (an empty one, or one of NUL bytes, is a
 *   store that lost its content: the file is always written whole), or has an
 *   unknown format or version, is never overwritten. With `onCorrupt: "refuse"` (the default) it is left
 *   where it is and every open refuses it with a `StoreCorruptError`, until a
 *   person acts (`flowstate stores repair <store>` moves it aside as
 *   `<path>.corrupt-<timestamp>`); with `onCorrupt: "start-empty"` a damaged
 *   file is moved aside at once and the store starts empty. A file written by
 *   a newer Flowstate, or a JSON document that is not a store, is never moved:
 *   every open refuses it (`StoreCorruptError.reason` `"newer"`, `"foreign"`).
 *
 * Reading order: this file (options and the plugin), `driver.ts` (the
 * driver), `format.ts` (the document), `lock.ts` (the lock protocol),
 * `files.ts` (the files beside a store: names and identity).
 *
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import {
  definePlugin,
  type ParsingSchema,
  type Plugin,
  requireStoreFile,
} from "../../src/plugin_define.ts";
import { JsonFileDriver } from "./driver.ts";

export { JsonFileDriver, type JsonFileDriverOptions } from "./driver.ts";

/**
 * Validated options of the jsonfile plugin (see {@linkcode jsonFileOptions}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type JsonFileOptions, jsonFileOptions } from "@flowstate/core/plugins/jsonfile";
 *
 * const options: JsonFileOptions = jsonFileOptions.parse({ path: "state.json", durability: "relaxed" });
 * assert.equal(options.onCorrupt, "refuse");
 * assert.equal(options.durability, "relaxed");
 * ```
 */
export interface JsonFileOptions {
  /** The store file (default: `<home>/<store name>.json`). */
  path?: string;
  /** `"full"` (default) or `"relaxed"`. */
  durability: "full" | "relaxed";
  /** `"refuse"` (default) or `"start-empty"`. */
  onCorrupt: "refuse" | "start-empty";
  /**
   * The least time (ms) to wait for another process's lock (default 5000),
   * raised from measured commit times; 0: one try, no waiting.
   */
  lockTimeout: number;
}

/**
 * The schema of the jsonfile plugin's options (a zod schema).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jsonFileOptions } from "@flowstate/core/plugins/jsonfile";
 *
 * const options = jsonFileOptions.parse({ path: "state.json" });
 * assert.equal(options.durability, "full");
 * assert.equal(options.lockTimeout, 5000);
 * assert.equal(jsonFileOptions.safeParse({ durability: "fast" }).success, false);
 * ```
 */
export const jsonFileOptions: ParsingSchema<JsonFileOptions> = z.strictObject({
  /**
   * The store file, relative to the config's directory (default:
   * `<home>/<store name>.json`). Missing parent directories are created.
   */
  path: z.string().min(1).optional(),
  /**
   * `"full"` (default): fsync the file and its directory on every write, so an
   * acknowledged write survives a power loss. `"relaxed"`: atomic rename
   * without fsync; survives a killed process, not a power loss.
   */
  durability: z.enum(["full", "relaxed"]).default("full"),
  /**
   * What to do with a file that is not a readable store: `"refuse"` (default)
   * leaves it in place and fails every open with a `StoreCorruptError` until
   * it is repaired or set aside (`flowstate stores repair`); `"start-empty"`
   * moves a damaged file aside as `<path>.corrupt-<timestamp>`, warns and
   * starts empty (a newer Flowstate's file, or a document that is not a
   * store, is refused either way).
   */
  onCorrupt: z.enum(["refuse", "start-empty"]).default("refuse"),
  /**
   * The least time (ms) to wait for another process's lock before failing
   * (default 5000). The wait is raised to 8 × the measured time one commit
   * holds the lock × the processes seen taking turns, when that is longer.
   * 0: one try, never wait.
   */
  lockTimeout: z.number().int().min(0).default(5000),
});

/**
 * The jsonfile plugin: one human-readable JSON file per store, durable on
 * every acknowledged write and safe to share between processes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import jsonfile from "@flowstate/core/plugins/jsonfile";
 *
 * const dir = await Deno.makeTempDir();
 * // the same as { plugin: "jsonfile", path }
 * const store = await openStore({ plugin: jsonfile, path: `${dir}/state.json` });
 * await store.set(["flow", "counter", "count"], 1);
 * assert.equal((await store.get(["flow", "counter", "count"]))?.value, 1);
 * await store.close();
 * assert.match(await Deno.readTextFile(`${dir}/state.json`), /"count"/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
const jsonfile: Plugin<JsonFileOptions> = definePlugin({
  name: "jsonfile",
  description: "one human-readable JSON file per store; durable writes, safe across processes",
  optionsSchema: jsonFileOptions,
  async open(options, context) {
    const path = options.path !== undefined
      ? resolve(context.baseDir, options.path)
      : resolve(context.home, `${context.storeName}.json`);
    await requireStoreFile(path, context);
    return await JsonFileDriver.open(path, {
      storeName: context.storeName,
      durability: options.durability,
      onCorrupt: options.onCorrupt,
      lockTimeout: options.lockTimeout,
      onWarning: context.warn,
    });
  },
});
export default jsonfile;
