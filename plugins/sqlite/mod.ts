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
 * - A new store file is made complete (the schema written, the WAL folded in)
 *   in a temp file beside its path, then hard-linked into place: the path
 *   never holds an empty or half set-up file, whatever kills the process. So a
 *   file there that is empty (0 bytes), or NUL bytes where SQLite's header
 *   goes, is a store that lost its content: every open refuses it
 *   (`StoreCorruptError`, reason `"damaged"`) and leaves it untouched, never
 *   uses it as a new store; `flowstate stores repair` sets it aside.
 * - Keys are stored as memcmp-ordered bytes (see `encodeKey`), so prefix and
 *   range scans are index range scans. Queries are translated to SQL with
 *   `json_type`/`json_extract`/`json_each` when that can be done with the exact
 *   semantics of the core; otherwise the core evaluates them.
 * - A store with a change feed keeps it in a table of its own
 *   (`flowstate_feed`, schema version 2), appended in the commit's
 *   transaction; a feed written by Flowstate 0.3 in the reserved key space is
 *   moved there when a writable store first opens the file.
 *
 * Reading order: this file (what the plugin exports), `plugin.ts` (the
 * plugin), `options.ts` (its options; `options_fast.ts` checks the usual ones
 * without zod), `driver.ts` (the driver), `schema.ts` (the file's tables, and how a file is checked and
 * set up), `feed.ts` (the change feed's table), `query.ts` (queries in SQL),
 * `errors.ts` (what SQLite's errors mean). Listing pages and key bounds are shared with the postgres plugin
 * in `../_sql/`.
 *
 * @module
 */
import sqlite from "./plugin.ts";

export { sqliteDefaults, SqliteDriver, type SqliteDriverOptions } from "./driver.ts";
export { type SqliteOptions, sqliteOptions } from "./options.ts";

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
export default sqlite;
