/**
 * The sqlite driver: one `node:sqlite` connection to a WAL-mode file, with
 * cached prepared statements; every write is one `BEGIN IMMEDIATE`
 * transaction, so compare-and-set is exact across processes.
 *
 * @module
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { dirname, join, resolve } from "../../src/_path.ts";
import { StoreClosedError, StoreCorruptError, StoreReadOnlyError } from "../../src/errors.ts";
import { explainFsError, notWritableReason } from "../../src/store/fs_errors.ts";
import { deniedReading } from "../../src/_fs.ts";
import type {
  ClearRange,
  CommitRequest,
  DriverCommitResult,
  FeedTable,
  FeedTableRange,
  FeedTrimRequest,
  FeedValue,
  KeyRange,
  Mutation,
  RawEntry,
  StoreDriver,
} from "../../src/store/driver.ts";
import { byteBounds, decodeKey, encodeKey, keysEqual } from "../../src/store/keys.ts";
import type { NormalizedQuery } from "../../src/store/query.ts";
import type { AtomicCheck, Capabilities, Change, Key } from "../../src/store/types.ts";
import { FEED_BY_KEY, FEED_ENTRIES, FEED_HEAD } from "../../src/store/feed.ts";
import {
  changeOf,
  createFeedTable,
  FEED_COLUMNS,
  FEED_KEYS_EVERY,
  type FeedRow,
  hasFeedTable,
  moveKeySpaceFeed,
} from "./feed.ts";
import { boundsWhere, isEmptyBounds, prefixBounds } from "../_sql/bounds.ts";
import {
  entryOf,
  type EntryRow,
  type EntryTuple,
  type KeysetPages,
  pagedEntries,
} from "../_sql/keyset.ts";
import { isBusy, isCorrupt, messageOf } from "./errors.ts";
import { CompiledQueries, type CompiledQuery, compileQuery, LONE_SURROGATE_GLOB } from "./query.ts";
import type {
  IndexSpec,
  PreparedIndexes,
  PrepareIndexesRequest,
  RawSearchHit,
  SearchRequest,
  SearchSpec,
} from "../../src/store/driver.ts";
import type { QueryPlan } from "../../src/store/types.ts";
import {
  createIndexSql,
  createSearchSql,
  DROP_SEARCH_SQL,
  ident,
  matchExpression,
  SEARCH_WORDS_FUNCTION,
  searchColumns,
} from "./indexes.ts";
import {
  loadSearchWordsFormat,
  searchMetaValue,
  searchWordsFormatLoaded,
  valueWords,
} from "../_sql/words.ts";

/**
 * Whether a value's JSON text may hold a lone surrogate: JSON.stringify
 * writes those (only those) as `\udXXX` escapes. A `\\ud800` in a string
 * matches too, which only makes queries more careful.
 */
function mayHoldLoneSurrogate(text: string): boolean {
  return text.includes("\\u") && /\\u[dD][89a-fA-F]/.test(text);
}

/** A key the feed records: its bytes, its version before the commit, its last write. */
interface FeedWrite {
  bytes: Uint8Array;
  previous: string | null;
  m: Mutation & { type: "set" | "delete" };
}

/** A feed row as an array, whether the runtime returned it as one or as an object. */
function feedRow(row: FeedRow | Record<string, unknown>): FeedRow {
  return Array.isArray(row) ? row : Object.values(row) as FeedRow;
}

/** Above this many entries under its prefix, building an index reports progress. */
const BUILD_NOTICE_ENTRIES = 10_000;
import { checkSchema, createFile, lostContentError, probeFile, setUp } from "./schema.ts";
import { parseJson } from "../../src/_json.ts";

/**
 * Default option values of the sqlite plugin.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sqliteDefaults, sqliteOptions } from "@flowstate/core/plugins/sqlite";
 *
 * assert.equal(sqliteDefaults.durability, "full");
 * assert.equal(sqliteOptions.parse({}).busyTimeout, sqliteDefaults.busyTimeout);
 * ```
 */
export const sqliteDefaults = {
  /** `PRAGMA synchronous=FULL`: every commit is fsynced before it resolves. */
  durability: "full",
  /** How long a write waits for another connection's lock, in milliseconds. */
  busyTimeout: 5000,
} as const satisfies { durability: "full" | "relaxed"; busyTimeout: number };

/**
 * Options for {@linkcode SqliteDriver.open}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SqliteDriver, type SqliteDriverOptions } from "@flowstate/core/plugins/sqlite";
 *
 * const dir = await Deno.makeTempDir();
 * const options: SqliteDriverOptions = { durability: "relaxed", busyTimeout: 1_000, storeName: "main" };
 * const driver = await SqliteDriver.open(`${dir}/state.db`, options);
 * assert.equal(driver.location, `${dir}/state.db`);
 * await driver.close();
 * await assert.rejects(() => SqliteDriver.open(`${dir}/x.db`, { busyTimeout: -1 }), RangeError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface SqliteDriverOptions {
  /** `"full"` (default) or `"relaxed"`; see {@linkcode sqliteOptions}. */
  durability?: "full" | "relaxed";
  /** Milliseconds to wait for another connection's lock (default 5000). */
  busyTimeout?: number;
  /** Page cache in KiB (default: SQLite's). */
  cacheSize?: number;
  /** The store's name, for error messages. */
  storeName?: string;
  /**
   * Run SQLite's `PRAGMA quick_check` after opening, and throw a
   * `StoreCorruptError` when it finds damage (reads the whole file: slow on a
   * large store; `flowstate stores repair` asks for it).
   */
  verify?: boolean;
  /**
   * The caller only reads (`PluginContext.mustExist`): on a full disk, where
   * SQLite cannot make its `-shm` file, the store opens read-only instead of
   * failing. A writer fails at once, saying the disk is full (a long-lived
   * one, a worker, would otherwise keep a read-only store after space is freed).
   */
  onlyReads?: boolean;
}

/** Keep the WAL file at most this big after a checkpoint. */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;
const STATEMENT_CACHE_SIZE = 64;
const PURGE_BATCH_SIZE = 1000;
/** Feed entries a trim deletes per transaction. */
const TRIM_BATCH_SIZE = 1000;
/** The feed's head: the newest entry, or the floor a trim of every entry left. */
const FEED_HEAD_SQL = "SELECT max(coalesce((SELECT max(seq) FROM flowstate_feed), 0), " +
  "coalesce((SELECT CAST(value AS INTEGER) FROM flowstate_meta WHERE key = 'feed_floor'), 0)) " +
  "AS seq";

const LIVE = "(expires_at IS NULL OR expires_at > ?)";

/**
 * Rows of a statement made to return arrays: as they are, or (on a runtime
 * without `setReturnArrays`, whose rows are objects) converted.
 */
function tuplesOf(rows: unknown[]): EntryTuple[] {
  if (rows.length === 0 || Array.isArray(rows[0])) return rows as EntryTuple[];
  return (rows as EntryRow[]).map((r) => [r.key, r.value, r.version, r.expires_at]);
}

/** The entry a row of `ENTRY_COLUMNS` (as an array) holds. */
function tupleEntry(row: EntryTuple): RawEntry {
  return { key: decodeKey(row[0]), value: row[1], version: row[2], expiresAt: row[3] };
}

/** Why a store is opened read-only: the place that cannot be written, and why. */
interface ReadOnlyReason {
  path: string;
  reason: string;
  cause: unknown;
  /** What to do about it, when not "remount it read-write or fix its permissions". */
  fix?: string;
}

/** Whether SQLite's error says it could not open (or create) a file: SQLITE_CANTOPEN or a read-only one. */
function cannotOpen(err: unknown): boolean {
  return /unable to open database file|readonly database|SQLITE_(CANTOPEN|READONLY)/i.test(
    messageOf(err),
  );
}

/** Whether SQLite's error is an I/O error or a full disk (SQLITE_IOERR, SQLITE_FULL). */
function isDiskError(err: unknown): boolean {
  return /disk I\/O error|disk is full|SQLITE_(IOERR|FULL)/i.test(messageOf(err));
}

/** Whether this process may write the existing file `path`; resolves why not, if not. */
async function fileNotWritable(path: string): Promise<ReadOnlyReason | undefined> {
  try {
    (await Deno.open(path, { read: true, write: true })).close();
    return undefined;
  } catch (err) {
    const reason = notWritableReason(err);
    return reason === undefined ? undefined : { path, reason, cause: err };
  }
}

/** Whether this process may create files in `dir` (SQLite puts `-wal` and `-shm` there); why not, if not. */
async function dirNotWritable(dir: string): Promise<ReadOnlyReason | undefined> {
  try {
    await Deno.remove(await Deno.makeTempFile({ dir, prefix: ".flowstate-probe-" }));
    return undefined;
  } catch (err) {
    const reason = notWritableReason(err);
    return reason === undefined ? undefined : { path: dir, reason, cause: err };
  }
}

/**
 * Whether the file system of `dir` is full: a probe file of 64 KiB cannot be
 * written there (out of space or quota). SQLite says only "disk I/O error"
 * when it cannot make its `-shm` file on a full disk.
 */
async function dirFull(dir: string): Promise<ReadOnlyReason | undefined> {
  let probe: string | undefined;
  try {
    probe = await Deno.makeTempFile({ dir, prefix: ".flowstate-probe-" });
    await Deno.writeFile(probe, new Uint8Array(64 * 1024));
    return undefined;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const quota = code === "EDQUOT" || /os error 122\b/.test(messageOf(err));
    if (!quota && code !== "ENOSPC" && !/os error 28\b/.test(messageOf(err))) return undefined;
    return {
      path: dir,
      reason: quota ? "is on a disk whose quota is used up" : "is on a full disk (no space left)",
      fix: "Free some space on it and run again",
      cause: err,
    };
  } finally {
    if (probe !== undefined) await Deno.remove(probe).catch(() => {});
  }
}

/** The largest file read into memory when it cannot be opened in place (larger ones are copied). */
const IN_MEMORY_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Open `path` read-only. SQLite reads a WAL database only through its
 * `-shm` file, which it must create when it is missing (with the `-wal`, as
 * a writer leaves them, it reads in place and sees each new commit). Where it
 * cannot (the usual case on a read-only file system, or a file another user
 * owns), and there is no `-wal`, the file itself holds every commit: its bytes
 * are read into memory (up to {@linkcode IN_MEMORY_MAX_BYTES}) and opened
 * there, which needs no permission beyond reading it. Otherwise the file and
 * its `-wal` are copied into a temp directory and the copy is opened. Either
 * is a snapshot, which is all there is to read where nothing can write.
 * (SQLite's `immutable` URI would avoid both, but Deno takes a URI for a
 * relative path unless run with `-A`, it would not read the commits in a
 * `-wal`, and it is wrong once another process writes the file.) Resolves the
 * connection, and the temp directory to remove when it closes.
 */
async function openReadOnly(
  path: string,
  what: string,
): Promise<{ db: DatabaseSync; copy?: string }> {
  try {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      db.prepare("SELECT count(*) FROM sqlite_schema").get();
      return { db };
    } catch (err) {
      db.close();
      throw err;
    }
  } catch (err) {
    // On a full disk SQLite cannot make the -shm file either: "disk I/O error".
    if (!cannotOpen(err) && !isDiskError(err)) throw err;
  }
  const image = await openInMemory(path);
  if (image !== undefined) return { db: image };
  let copy: string;
  try {
    copy = await Deno.makeTempDir({ prefix: "flowstate-readonly-" });
  } catch (err) {
    // Deno's permission error names the temp directory "<TMP>": say which it is.
    const tmp = tempDirectory();
    const denied = err instanceof Deno.errors.NotCapable;
    const cause = denied
      ? new Deno.errors.NotCapable(messageOf(err).replaceAll("<TMP>", `"${tmp}"`), { cause: err })
      : err;
    throw new Error(
      `${what}: ${path} is read-only, and reading it (its commits in ${path}-wal) needs a copy in ` +
        `a temp directory, ${tmp}, which could not be made: ${explainFsError(cause)}` +
        (denied ? "" : ". Set TMPDIR to a writable directory"),
      { cause },
    );
  }
  try {
    const target = join(copy, "store.db");
    await Deno.copyFile(path, target);
    try {
      await Deno.copyFile(`${path}-wal`, `${target}-wal`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    // Opened writable so that SQLite may fold the copied -wal in; the store refuses writes.
    return { db: new DatabaseSync(target), copy };
  } catch (err) {
    await Deno.remove(copy, { recursive: true }).catch(() => {});
    throw new Error(
      `${what}: ${path} is read-only, and copying it to read it failed: ${explainFsError(err)}`,
      { cause: err },
    );
  }
}

/**
 * `path` read into an in-memory database, when every commit is in it (no
 * `-wal`, or an empty one) and it is not larger than
 * {@linkcode IN_MEMORY_MAX_BYTES}; `undefined` otherwise. Its header is made
 * to say "rollback journal", not WAL: an in-memory database has no `-shm`.
 */
async function openInMemory(path: string): Promise<DatabaseSync | undefined> {
  try {
    if ((await Deno.stat(`${path}-wal`)).size > 0) return undefined;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) return undefined;
  }
  if ((await Deno.stat(path)).size > IN_MEMORY_MAX_BYTES) return undefined;
  const db = new DatabaseSync(":memory:");
  if (typeof db.deserialize !== "function") {
    db.close();
    return undefined;
  }
  const bytes = await Deno.readFile(path);
  // Bytes 18 and 19: the file format's write and read versions, 2 for WAL.
  if (bytes.length >= 20 && bytes[18] === 2 && bytes[19] === 2) bytes[18] = bytes[19] = 1;
  try {
    db.deserialize(bytes);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** The directory Deno makes temp directories in: TMPDIR, else /tmp (TMP or TEMP on Windows). */
function tempDirectory(): string {
  const windows = Deno.build.os === "windows";
  try {
    const set = windows ? Deno.env.get("TMP") || Deno.env.get("TEMP") : Deno.env.get("TMPDIR");
    if (set) return set;
  } catch { /* no --allow-env */ }
  return windows ? "the temp directory (TMP)" : "/tmp";
}

/**
 * The sqlite driver: one `node:sqlite` connection with cached prepared
 * statements. Every method is synchronous under the hood; writes are single
 * `BEGIN IMMEDIATE` transactions.
 *
 * Most code opens it through the plugin (`openStore({ plugin: "sqlite", path })`);
 * use {@linkcode SqliteDriver.open} to get the driver itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SqliteDriver } from "@flowstate/core/plugins/sqlite";
 *
 * const dir = await Deno.makeTempDir();
 * const driver = await SqliteDriver.open(`${dir}/state.db`, { durability: "relaxed" });
 * const now = Date.now();
 * await driver.commit({
 *   checks: [],
 *   mutations: [
 *     { type: "set", key: ["orders", "1"], value: '"open"', expiresAt: null },
 *     { type: "set", key: ["orders", "2"], value: '"paid"', expiresAt: null },
 *   ],
 *   version: "v1",
 *   now,
 * });
 * const keys = [];
 * for await (const e of driver.list({ prefix: ["orders"] }, now)) keys.push(e.key);
 * assert.deepEqual(keys, [["orders", "1"], ["orders", "2"]]);
 * await driver.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class SqliteDriver implements StoreDriver {
  /** The absolute path of the database file. */
  readonly location: string;
  /** Everything is native: persistence, expiry, count, clear, query, indexes, search, multi-process. */
  readonly capabilities: Readonly<Capabilities> = Object.freeze({
    persistent: true,
    expiry: true,
    query: true,
    count: true,
    clear: true,
    atomicClear: true,
    multiProcess: true,
    indexes: true,
    search: true,
  });
  #db: DatabaseSync;
  /** The declared indexes that exist in the file. */
  #indexes: IndexSpec[] = [];
  /** Compiled queries by shape, over `#indexes`. */
  #queries = new CompiledQueries([]);
  /** Search statements' text by the shape of their key bounds. */
  #searchSql = new Map<string, string>();
  /** The search declaration the file's FTS table was built for, if any. */
  #search: SearchSpec | undefined;
  #storeName: string;
  #busyTimeout: number;
  #closed = false;
  /** Why the store was opened read-only, or `undefined`. */
  #readOnly: ReadOnlyReason | undefined;
  /** The temp directory holding the copy a read-only store reads, removed on close. */
  #copy: string | undefined;
  #statements = new Map<string, StatementSync>();
  /** List pages' statements by shape (see `#pageStatement`), returning arrays. */
  #pageStatements = new Map<string, StatementSync>();
  /** Statements by SQL text that return rows as arrays (see `#tupleStatement`). */
  #tupleStatements = new Map<string, StatementSync>();
  /** The statement `#cached` returned last (its cache and text): already the most recent. */
  #lastCache: Map<string, StatementSync> | undefined;
  #lastCached = "";
  #get: StatementSync;
  #check: StatementSync;
  #upsert: StatementSync;
  #delete: StatementSync;
  #begin: StatementSync;
  #beginRead: StatementSync;
  #commit: StatementSync;
  #rollback: StatementSync;
  #purgeBatch: StatementSync;
  #casUpdate: StatementSync;
  /**
   * `#casUpdate` for an entry written without an expiry (the common
   * case: an increment): `expires_at = NULL` written in the statement, one
   * parameter fewer, ~10% cheaper per statement than binding the null.
   */
  #casUpdatePersistent: StatementSync;
  #casInsert: StatementSync;
  #casDelete: StatementSync;
  #markSurrogates: StatementSync;
  #hasSurrogates: StatementSync;
  /**
   * Whether the file's flag of lone surrogates can be trusted: every value
   * with one that this code writes sets it, and a file written before the
   * flag existed was checked once (writable stores). Otherwise each query
   * that orders strings probes the values.
   */
  #surrogateFlag = false;
  /** `PRAGMA data_version`, prepared on first use (see `changeToken`). */
  #dataVersion: StatementSync | undefined;
  /** Whether the file has the feed's table (once seen, it stays). */
  #feedExists = false;
  /** Whether the feed's table is there (a statement; see `#feedReady`). */
  #feedProbe: StatementSync | undefined;
  /** The feed's statements, prepared once the table exists. */
  #feedStatements = new Map<string, StatementSync>();
  /**
   * The change feed, kept in `flowstate_feed` (see `feed.ts`). Absent only on
   * a read-only store whose file still keeps its feed in the key space (it
   * cannot be moved there): the core then reads those rows.
   */
  readonly feedTable?: FeedTable;

  private constructor(
    db: DatabaseSync,
    path: string,
    storeName: string,
    busyTimeout: number,
    readOnly?: ReadOnlyReason,
  ) {
    this.#db = db;
    this.#readOnly = readOnly;
    // The search triggers call it: registered before any statement that may fire them.
    db.function(SEARCH_WORDS_FUNCTION, { deterministic: true }, valueWords);
    this.location = path;
    this.#storeName = storeName;
    this.#busyTimeout = busyTimeout;
    this.#get = db.prepare(
      `SELECT value, version, expires_at FROM flowstate_entries WHERE key = ? AND ${LIVE}`,
    );
    this.#check = db.prepare("SELECT version, expires_at FROM flowstate_entries WHERE key = ?");
    this.#upsert = db.prepare(
      "INSERT INTO flowstate_entries (key, value, version, expires_at) VALUES (?, ?, ?, ?) " +
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, " +
        "expires_at = excluded.expires_at",
    );
    this.#delete = db.prepare("DELETE FROM flowstate_entries WHERE key = ?");
    this.#begin = db.prepare("BEGIN IMMEDIATE");
    this.#beginRead = db.prepare("BEGIN");
    this.#commit = db.prepare("COMMIT");
    this.#rollback = db.prepare("ROLLBACK");
    this.#casUpdate = db.prepare(
      "UPDATE flowstate_entries SET value = ?, version = ?, expires_at = ? " +
        "WHERE key = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)",
    );
    this.#casUpdatePersistent = db.prepare(
      "UPDATE flowstate_entries SET value = ?, version = ?, expires_at = NULL " +
        "WHERE key = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)",
    );
    this.#casInsert = db.prepare(
      "INSERT INTO flowstate_entries (key, value, version, expires_at) VALUES (?, ?, ?, ?) " +
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, " +
        "expires_at = excluded.expires_at WHERE flowstate_entries.expires_at IS NOT NULL " +
        "AND flowstate_entries.expires_at <= ?",
    );
    this.#casDelete = db.prepare(
      "DELETE FROM flowstate_entries WHERE key = ? AND version = ? " +
        "AND (expires_at IS NULL OR expires_at > ?)",
    );
    this.#markSurrogates = db.prepare(
      "INSERT OR IGNORE INTO flowstate_meta (key, value) VALUES ('lone_surrogates', '1')",
    );
    this.#hasSurrogates = db.prepare(
      "SELECT 1 AS yes FROM flowstate_meta WHERE key = 'lone_surrogates'",
    );
    this.feedTable = {
      commit: (request, feed) => this.#feedCommit(request, feed.by),
      head: () => this.#feedHead(),
      first: () => this.#feedFirst(),
      changes: (range) => this.#feedChanges(range),
      entry: (seq) => this.#feedEntry(seq),
      keySeqs: (key, range) => this.#feedKeySeqs(key, range),
      trim: (request) => this.#feedTrim(request),
      setValues: (values) => this.#feedSetValues(values),
    };
    this.#purgeBatch = db.prepare(
      "DELETE FROM flowstate_entries WHERE key IN " +
        "(SELECT key FROM flowstate_entries WHERE expires_at <= ? LIMIT ?)",
    );
  }

  /**
   * Open (creating if needed) the database at `path`: WAL mode, the chosen
   * durability, and the Flowstate schema. Throws a {@linkcode StoreCorruptError}
   * (leaving the file untouched) when the file is not a SQLite database, is a
   * SQLite database that is not a Flowstate store, or has a newer schema version,
   * and when it lost its content (0 bytes, or NUL bytes where the header goes):
   * a new file is made complete beside `path` and linked into place, so an
   * empty one there is never a store being created.
   */
  static async open(path: string, options: SqliteDriverOptions = {}): Promise<SqliteDriver> {
    const driver = await SqliteDriver.#open(path, options);
    if (options.verify) {
      try {
        driver.#verify(`Store "${options.storeName ?? "sqlite"}"`);
      } catch (err) {
        driver.close();
        throw err;
      }
    }
    return driver;
  }

  /** SQLite's own check of the whole file (`PRAGMA quick_check`): throws a `StoreCorruptError` when it fails. */
  #verify(what: string): void {
    let problems: string[];
    try {
      problems = (this.#db.prepare("PRAGMA quick_check(5)").all() as { quick_check: string }[])
        .map((row) => String(row.quick_check));
    } catch (err) {
      if (!isCorrupt(err)) throw err;
      problems = [messageOf(err)];
    }
    if (problems.length === 1 && problems[0] === "ok") return;
    const path = this.location;
    throw new StoreCorruptError(
      `${what}: ${path} opens, but SQLite's integrity check finds it damaged (${
        problems.join("; ").replaceAll("\n", "; ")
      }). What it still reads can be saved: \`flowstate backup --store ${this.#storeName} --out ` +
        `<file>\`, then move ${path} (and its -wal and -shm) aside and \`flowstate restore ` +
        `--store ${this.#storeName} <file>\` into the new, empty store`,
      { path },
    );
  }

  static async #open(path: string, options: SqliteDriverOptions): Promise<SqliteDriver> {
    const storeName = options.storeName ?? "sqlite";
    const busyTimeout = options.busyTimeout ?? sqliteDefaults.busyTimeout;
    const durability = options.durability ?? sqliteDefaults.durability;
    const what = `Cannot open store "${storeName}"`;
    if (!Number.isInteger(busyTimeout) || busyTimeout < 0) {
      throw new RangeError(`${what}: busyTimeout must be a non-negative integer (ms)`);
    }
    if (durability !== "full" && durability !== "relaxed") {
      throw new RangeError(`${what}: durability must be "full" or "relaxed"`);
    }
    if (
      options.cacheSize !== undefined &&
      (!Number.isInteger(options.cacheSize) || options.cacheSize <= 0)
    ) {
      throw new RangeError(`${what}: cacheSize must be a positive integer (KiB)`);
    }
    path = resolve(path);
    let readOnly: ReadOnlyReason | undefined;
    try {
      await Deno.mkdir(dirname(path), { recursive: true });
    } catch (err) {
      const reason = notWritableReason(err);
      if (reason === undefined) throw err;
      readOnly = { path: dirname(path), reason, cause: err };
    }
    const kind = await probeFile(path).catch((err) => {
      if (!(err instanceof Deno.errors.PermissionDenied)) throw err;
      throw new Error(`${what}: ${deniedReading(path)}`, { cause: err });
    });
    if (kind === "other") {
      throw new StoreCorruptError(
        `${what}: ${path} is not a SQLite database (its first bytes are not "SQLite format 3"); ` +
          `the file was left untouched: move it away or point the store's "path" option elsewhere`,
        { path },
      );
    }
    if (kind === "empty" || kind === "zeros") throw lostContentError(path, kind, what, storeName);
    if (readOnly === undefined && kind !== "absent") readOnly = await fileNotWritable(path);
    if (readOnly === undefined) {
      try {
        // A new file is made complete beside the path, then linked into place: never empty there.
        if (kind === "absent") await createFile(path, what, busyTimeout);
        return await SqliteDriver.#openWritable(path, storeName, what, {
          busyTimeout,
          durability,
          cacheSize: options.cacheSize,
        });
      } catch (err) {
        // SQLite creates -wal and -shm beside the file: a directory it may not write is
        // read-only, and one on a full disk is read-only until space is freed.
        if (cannotOpen(err)) readOnly = await dirNotWritable(dirname(path));
        else if (isDiskError(err)) {
          const full = await dirFull(dirname(path));
          if (full !== undefined && !options.onlyReads) {
            throw new Error(
              `${what}: ${path}: ${full.path} ${full.reason}, so SQLite cannot open it for ` +
                `writing. ${full.fix}`,
              { cause: err },
            );
          }
          readOnly = full;
        }
        if (readOnly === undefined) throw err;
      }
    }
    if (kind === "absent") {
      throw new StoreReadOnlyError(
        `${what}: ${path} does not exist yet, and ${readOnly.path} ${readOnly.reason}, so it ` +
          `cannot be created. ${
            readOnly.fix ?? "Remount it read-write or fix its permissions"
          }, or point the store's "path" option somewhere writable`,
        { store: storeName, path: readOnly.path },
        { cause: readOnly.cause },
      );
    }
    const { db, copy } = await openReadOnly(path, what);
    try {
      db.exec(`PRAGMA busy_timeout = ${busyTimeout}`);
      if (checkSchema(db, path, what) === "empty") {
        throw new StoreReadOnlyError(
          `${what}: ${path} has no Flowstate tables yet, and ${readOnly.path} ${readOnly.reason}, ` +
            `so they cannot be created`,
          { store: storeName, path: readOnly.path },
          { cause: readOnly.cause },
        );
      }
      if (options.cacheSize !== undefined) db.exec(`PRAGMA cache_size = ${-options.cacheSize}`);
      const driver = new SqliteDriver(db, path, storeName, busyTimeout, readOnly);
      if (!hasFeedTable(db) && driver.#read(FEED_HEAD, 0) !== null) {
        (driver as { feedTable?: FeedTable }).feedTable = undefined;
      }
      driver.#copy = copy;
      return driver;
    } catch (err) {
      db.close();
      if (copy !== undefined) await Deno.remove(copy, { recursive: true }).catch(() => {});
      throw SqliteDriver.#openError(err, path, what, busyTimeout, storeName);
    }
  }

  /** Open `path` for reading and writing: WAL, the durability, the schema. */
  static async #openWritable(
    path: string,
    storeName: string,
    what: string,
    options: { busyTimeout: number; durability: "full" | "relaxed"; cacheSize?: number },
  ): Promise<SqliteDriver> {
    const { busyTimeout, durability } = options;
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path);
    } catch (err) {
      throw new Error(`${what}: SQLite cannot open ${path}: ${messageOf(err)}`, { cause: err });
    }
    try {
      db.exec(`PRAGMA busy_timeout = ${busyTimeout}`);
      await setUp(db, path, what, busyTimeout);
      db.exec(`PRAGMA synchronous = ${durability === "full" ? "FULL" : "NORMAL"}`);
      db.exec(`PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
      // Deleted or overwritten content is zeroed where that costs no more I/O (the freed part
      // of a page being written anyway): a value rewritten in place (the rekey job sealing
      // values, in the entries and in the feed) leaves no copy in the clear in the file.
      db.exec("PRAGMA secure_delete = FAST");
      if (options.cacheSize !== undefined) {
        db.exec(`PRAGMA cache_size = ${-options.cacheSize}`);
      }
      const driver = new SqliteDriver(db, path, storeName, busyTimeout);
      driver.#checkSurrogateFlag();
      driver.#moveKeySpaceFeed();
      return driver;
    } catch (err) {
      db.close();
      throw SqliteDriver.#openError(err, path, what, busyTimeout, storeName);
    }
  }

  /** The error to throw for `err`, met while opening `path`. */
  static #openError(
    err: unknown,
    path: string,
    what: string,
    busyTimeout: number,
    storeName: string,
  ): Error {
    if (err instanceof StoreCorruptError || err instanceof StoreReadOnlyError) return err;
    if (isCorrupt(err)) {
      return new StoreCorruptError(
        `${what}: ${path} is not a readable SQLite database (${messageOf(err)}); ` +
          `the file was left untouched. Restore a backup over it, or run \`flowstate stores repair ` +
          `${storeName}\` to set it aside and start an empty store (or point "path" elsewhere)`,
        { path },
        { cause: err },
      );
    }
    if (isBusy(err)) {
      return new Error(
        `${what}: ${path} stayed locked by another connection for more than ${busyTimeout} ms ` +
          `(busyTimeout); retry, or raise the store's busyTimeout option`,
        { cause: err },
      );
    }
    if (cannotOpen(err)) {
      // SQLite's own words, kept: the caller may still find the place read-only.
      return new Error(`${what}: ${path}: ${messageOf(err)}`, { cause: err });
    }
    return new Error(`${what}: ${path}: ${explainFsError(err)}`, { cause: err });
  }

  /** Whether this store was opened read-only (its file system or directory cannot be written). */
  get readOnly(): boolean {
    return this.#readOnly !== undefined;
  }

  /** Throw a {@linkcode StoreReadOnlyError} if this store was opened read-only. */
  #assertWritable(what: string): void {
    const ro = this.#readOnly;
    if (ro === undefined) return;
    throw new StoreReadOnlyError(
      `${what}: store "${this.#storeName}" was opened read-only, because ${ro.path} ` +
        `${ro.reason}: reads work, writes do not. ${
          ro.fix ?? "Remount the file system read-write (or fix the permissions)"
        }, or copy the store somewhere writable`,
      { store: this.#storeName, path: ro.path },
      { cause: ro.cause },
    );
  }

  #assertOpen(what: string): void {
    if (this.#closed) {
      throw new StoreClosedError(
        `${what}: store "${this.#storeName}" (${this.location}) is closed`,
      );
    }
  }

  /** Turn a SQLite error into one that says what failed and what to do. */
  #error(what: string, err: unknown): Error {
    if (isBusy(err)) {
      return new Error(
        `${what}: ${this.location} stayed locked by another connection for more than ` +
          `${this.#busyTimeout} ms (busyTimeout); retry, or raise the store's busyTimeout option`,
        { cause: err },
      );
    }
    if (isCorrupt(err)) {
      return new StoreCorruptError(
        `${what}: ${this.location} is damaged (${messageOf(err)}); restore it from a backup`,
        { path: this.location },
        { cause: err },
      );
    }
    const message = messageOf(err);
    if (/readonly database|SQLITE_READONLY/i.test(message)) {
      return new StoreReadOnlyError(
        `${what}: store "${this.#storeName}" (${this.location}) cannot be written (${message}): ` +
          `its file system may have become read-only; nothing was written`,
        { store: this.#storeName, path: this.location },
        { cause: err },
      );
    }
    if (/database or disk is full|disk I\/O error|SQLITE_(FULL|IOERR)/i.test(message)) {
      return new Error(
        `${what}: store "${this.#storeName}" (${this.location}): ${
          explainFsError(err)
        }; the transaction was rolled back, nothing of it was written`,
        { cause: err },
      );
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  #statement(sql: string): StatementSync {
    return this.#cached(this.#statements, sql, false);
  }

  /**
   * `#statement` for a `SELECT` of `ENTRY_COLUMNS` whose rows come back as
   * {@linkcode EntryTuple}s (read them through {@linkcode tuplesOf}).
   */
  #tupleStatement(sql: string): StatementSync {
    return this.#cached(this.#tupleStatements, sql, true);
  }

  #cached(cache: Map<string, StatementSync>, sql: string, arrays: boolean): StatementSync {
    let stmt = cache.get(sql);
    if (stmt) {
      // The one used last (a loop of the same query) is already where a refresh would put it.
      if (sql === this.#lastCached && cache === this.#lastCache) return stmt;
      // Refresh its place in the LRU order.
      cache.delete(sql);
    } else {
      stmt = this.#db.prepare(sql);
      // An older runtime without row arrays returns row objects (see tuplesOf).
      if (arrays) (stmt as { setReturnArrays?(on: boolean): void }).setReturnArrays?.(true);
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
    }
    cache.set(sql, stmt);
    this.#lastCached = sql;
    this.#lastCache = cache;
    return stmt;
  }

  #read(key: Key, now: number): RawEntry | null {
    const row = this.#get.get(encodeKey(key), now) as
      | { value: string; version: string; expires_at: number | null }
      | undefined;
    return row === undefined
      ? null
      : { key, value: row.value, version: row.version, expiresAt: row.expires_at };
  }

  /**
   * `PRAGMA data_version` of this connection: it moves whenever another
   * connection (in this process or another) commits, and not for this
   * connection's own commits. One cheap statement, no table read.
   */
  changeToken(): number {
    this.#assertOpen("Cannot watch");
    try {
      this.#dataVersion ??= this.#db.prepare("PRAGMA data_version");
      return (this.#dataVersion.get() as { data_version: number }).data_version;
    } catch (err) {
      throw this.#error("Cannot watch", err);
    }
  }

  /** One live entry, or `null`. */
  get(key: Key, now: number): RawEntry | null {
    this.#assertOpen("Cannot get");
    try {
      return this.#read(key, now);
    } catch (err) {
      throw this.#error("Cannot get", err);
    }
  }

  /** Several live entries from one snapshot, in the order of `keys`. */
  getMany(keys: readonly Key[], now: number): Promise<(RawEntry | null)[]> {
    const what = "Cannot getMany";
    this.#assertOpen(what);
    if (keys.length <= 1) return Promise.resolve(keys.map((k) => this.get(k, now)));
    try {
      this.#beginRead.run();
      const out = keys.map((k) => this.#read(k, now));
      this.#commit.run();
      return Promise.resolve(out);
    } catch (err) {
      this.#rollbackQuietly();
      throw this.#error(what, err);
    }
  }

  /**
   * Live entries in key order, fetched in pages (keyset pagination): no read
   * transaction stays open between pages, so a long listing never blocks
   * checkpoints, and each page sees the latest commits.
   */
  list(range: KeyRange, now: number): IterableIterator<RawEntry> {
    const what = "Cannot list";
    return pagedEntries(range, (pages, size) => {
      this.#assertOpen(what);
      const { lower, upper } = pages.bounds;
      try {
        const statement = this.#pageStatement(pages, size);
        const rows = (lower === undefined
          ? upper === undefined ? statement.all(now) : statement.all(upper, now)
          : upper === undefined
          ? statement.all(lower, now)
          : statement.all(lower, upper, now)) as unknown[];
        return tuplesOf(rows);
      } catch (err) {
        throw this.#error(what, err);
      }
    });
  }

  /**
   * A page's `SELECT` by its shape (which bounds, their kind, the order, the
   * size), compiled once and returning rows as arrays ({@linkcode EntryTuple}).
   * The page size is a literal: a bound LIMIT costs SQLite ~20 µs a statement.
   */
  #pageStatement(pages: KeysetPages, size: number): StatementSync {
    const { lower, lowerExclusive, upper } = pages.bounds;
    const shape = `${lower === undefined ? "" : lowerExclusive ? ">" : ">="}` +
      `${upper === undefined ? "" : "<"}${pages.reverse ? "d" : "a"}${size}`;
    let statement = this.#pageStatements.get(shape);
    if (statement === undefined) {
      const where = boundsWhere(pages.bounds, () => "?");
      statement = this.#db.prepare(pages.select("flowstate_entries", [...where, LIVE], `${size}`));
      // An older runtime without row arrays returns row objects (see tuplesOf).
      (statement as { setReturnArrays?(on: boolean): void }).setReturnArrays?.(true);
      if (this.#pageStatements.size >= STATEMENT_CACHE_SIZE) this.#pageStatements.clear();
      this.#pageStatements.set(shape, statement);
    }
    return statement;
  }

  #apply(m: Mutation, bytesOf: (key: Key) => Uint8Array, version: string): void {
    if (m.type === "set") {
      // Flagged first: without a transaction, a crash in between leaves only a harmless flag.
      if (mayHoldLoneSurrogate(m.value)) this.#markSurrogates.run();
      this.#upsert.run(bytesOf(m.key), m.value, version, m.expiresAt);
    } else if (m.type === "delete") this.#delete.run(bytesOf(m.key));
    else this.#inRange("DELETE FROM flowstate_entries WHERE", m.range).run();
  }

  /**
   * A statement over the rows of a key range: `sql` followed by the range's
   * `key` bounds (and `AND extra`), from the statement cache.
   * Run it with the extra parameters only; the bounds are bound here.
   */
  #inRange(
    sql: string,
    range: ClearRange,
    extra?: string,
  ): {
    run(...p: SQLInputValue[]): unknown;
    get(...p: SQLInputValue[]): unknown;
    all(...p: SQLInputValue[]): unknown[];
  } {
    const bounds = byteBounds(range);
    const params: SQLInputValue[] = [];
    const where = boundsWhere(bounds, (bytes) => (params.push(bytes), "?"));
    if (extra !== undefined) where.push(extra);
    const text = `${sql} ${where.length === 0 ? "1" : where.join(" AND ")}`;
    const statement = this.#statement(text);
    const empty = isEmptyBounds(bounds);
    const s = statement;
    return {
      run: (...p) => empty ? undefined : s.run(...params, ...p),
      get: (...p) => empty ? { n: 0 } : s.get(...params, ...p),
      all: (...p) => empty ? [] : s.all(...params, ...p),
    };
  }

  #rollbackQuietly(): void {
    try {
      if (this.#db.isTransaction) this.#rollback.run();
    } catch {
      // The connection already ended the transaction; nothing to undo.
    }
  }

  /**
   * Apply the checks and mutations in one `BEGIN IMMEDIATE` transaction: the
   * write lock is taken before the checks are read, so another process cannot
   * change a checked entry between the check and the write.
   */
  commit(request: CommitRequest): DriverCommitResult {
    const what = "Cannot commit";
    this.#assertOpen(what);
    this.#assertWritable(what);
    const { checks, mutations, version, now } = request;
    if (checks.length === 0 && mutations.length <= 1) {
      // A single statement is its own transaction: no BEGIN/COMMIT round trip.
      if (mutations.length === 1) {
        try {
          this.#apply(mutations[0], encodeKey, version);
        } catch (err) {
          throw this.#error(what, err);
        }
      }
      return { ok: true };
    }
    if (checks.length === 1 && mutations.length === 1) {
      const cas = this.#compareAndSet(checks[0], mutations[0], version, now);
      if (cas !== undefined) return cas;
    }
    try {
      this.#begin.run();
    } catch (err) {
      throw this.#error(what, err);
    }
    try {
      let lastKey: Key | undefined;
      let lastBytes: Uint8Array | undefined;
      const bytesOf = (key: Key): Uint8Array => {
        if (key !== lastKey) {
          lastKey = key;
          lastBytes = encodeKey(key);
        }
        return lastBytes!;
      };
      const conflicts = this.#failedChecks(checks, now, bytesOf);
      if (conflicts.length > 0) {
        this.#rollback.run();
        return { ok: false, conflicts };
      }
      for (const m of mutations) this.#apply(m, bytesOf, version);
      this.#commit.run();
      return { ok: true };
    } catch (err) {
      this.#rollbackQuietly();
      throw this.#error(what, err);
    }
  }

  /** The feed statement of `sql` (prepared once; the table must exist). */
  #feedStatement(sql: string, arrays = false): StatementSync {
    let statement = this.#feedStatements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      if (arrays) (statement as { setReturnArrays?(on: boolean): void }).setReturnArrays?.(true);
      this.#feedStatements.set(sql, statement);
    }
    return statement;
  }

  /** Whether the feed's table exists (another process may have created it since the last look). */
  #feedReady(): boolean {
    if (!this.#feedExists) {
      this.#feedProbe ??= this.#db.prepare(
        "SELECT 1 AS yes FROM sqlite_schema WHERE type = 'table' AND name = 'flowstate_feed'",
      );
      this.#feedExists = this.#feedProbe.get() !== undefined;
    }
    return this.#feedExists;
  }

  /** The version `bytes` holds, live at `now` (`null`: absent or expired). */
  #liveVersion(bytes: Uint8Array, now: number): string | null {
    const row = this.#check.get(bytes) as
      | { version: string; expires_at: number | null }
      | undefined;
    return row !== undefined && (row.expires_at === null || row.expires_at > now)
      ? row.version
      : null;
  }

  /**
   * A commit and its change feed entries in one `BEGIN IMMEDIATE`
   * transaction: the write lock (SQLite's one per file) comes first, so
   * commits that write the feed go one at a time across processes; then the
   * checks, each written key's version before (one indexed read), the data,
   * and one row per changed key numbered on from the head. One fsync, no
   * retry.
   */
  #feedCommit(request: CommitRequest, by: string): DriverCommitResult {
    const what = "Cannot commit";
    this.#assertOpen(what);
    this.#assertWritable(what);
    const { checks, mutations, version, now } = request;
    try {
      this.#begin.run();
    } catch (err) {
      throw this.#error(what, err);
    }
    try {
      const conflicts = this.#failedChecks(checks, now);
      if (conflicts.length > 0) {
        this.#rollback.run();
        return { ok: false, conflicts };
      }
      const written: FeedWrite[] = [];
      if (mutations.length === 1 && mutations[0].type !== "clear") {
        const m = mutations[0];
        const bytes = encodeKey(m.key);
        const previous = this.#liveVersion(bytes, now);
        this.#apply(m, () => bytes, version);
        if (m.type === "set" || previous !== null) written.push({ bytes, previous, m });
      } else {
        this.#applyTracked(mutations, version, now, written);
      }
      if (written.length > 0) {
        let seq: number;
        if (this.#feedReady()) {
          seq = (this.#feedStatement(FEED_HEAD_SQL).get() as { seq: number }).seq;
        } else {
          createFeedTable(this.#db, now);
          seq = 0;
        }
        const insert = this.#feedStatement(
          `INSERT INTO flowstate_feed (${FEED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        const from = seq;
        for (const { bytes, previous, m } of written) {
          if (m.type === "set") {
            insert.run(++seq, now, bytes, "set", m.value, version, previous, m.expiresAt, by);
          } else {
            insert.run(++seq, now, bytes, "delete", null, null, previous, null, by);
          }
        }
        const indexed = from - from % FEED_KEYS_EVERY;
        const upTo = seq - seq % FEED_KEYS_EVERY;
        if (upTo > indexed) {
          // This commit reached a multiple: index every entry up to it by key.
          this.#feedStatement(
            "INSERT OR IGNORE INTO flowstate_feed_keys (key, seq) " +
              "SELECT key, seq FROM flowstate_feed WHERE seq > ? AND seq <= ?",
          ).run(indexed, upTo);
        }
      }
      this.#commit.run();
      return { ok: true };
    } catch (err) {
      this.#rollbackQuietly();
      throw this.#error(what, err);
    }
  }

  /**
   * Apply `mutations` (inside the transaction) and put in `written` each
   * changed key's last write and its version before the commit, in the order
   * of the last writes (a clear is a delete of every key in its range).
   */
  #applyTracked(
    mutations: readonly Mutation[],
    version: string,
    now: number,
    written: FeedWrite[],
  ): void {
    const touched = new Map<string, FeedWrite>();
    const write = (
      key: Key,
      bytes: Uint8Array,
      previous: () => string | null,
      m: FeedWrite["m"],
    ) => {
      const id = JSON.stringify(key);
      const before = touched.get(id);
      touched.delete(id);
      touched.set(id, { bytes, previous: before === undefined ? previous() : before.previous, m });
    };
    for (const m of mutations) {
      if (m.type === "clear") {
        const rows = this.#inRange(
          "SELECT key, version, expires_at FROM flowstate_entries WHERE",
          m.range,
        ).all() as { key: Uint8Array; version: string; expires_at: number | null }[];
        for (const row of rows) {
          const key = decodeKey(row.key);
          const live = row.expires_at === null || row.expires_at > now ? row.version : null;
          write(key, row.key, () => live, { type: "delete", key });
        }
        this.#apply(m, encodeKey, version);
      } else {
        const bytes = encodeKey(m.key);
        write(m.key, bytes, () => this.#liveVersion(bytes, now), m);
        this.#apply(m, () => bytes, version);
      }
    }
    for (const w of touched.values()) {
      if (w.m.type === "set" || w.previous !== null) written.push(w);
    }
  }

  #feedHead(): { seq: number; since?: number } {
    const what = "Cannot read the change feed";
    this.#assertOpen(what);
    if (!this.#feedReady()) return { seq: 0 };
    try {
      const row = this.#feedStatement(
        `SELECT (${FEED_HEAD_SQL}) AS seq, ` +
          "(SELECT CAST(value AS REAL) FROM flowstate_meta WHERE key = 'feed_since') AS since",
      ).get() as { seq: number; since: number | null };
      return row.since === null ? { seq: row.seq } : { seq: row.seq, since: row.since };
    } catch (err) {
      throw this.#error(what, err);
    }
  }

  #feedFirst(): number | undefined {
    const what = "Cannot read the change feed";
    this.#assertOpen(what);
    if (!this.#feedReady()) return undefined;
    try {
      const row = this.#feedStatement("SELECT min(seq) AS seq FROM flowstate_feed").get() as {
        seq: number | null;
      };
      return row.seq ?? undefined;
    } catch (err) {
      throw this.#error(what, err);
    }
  }

  #feedEntry(seq: number): Change | null {
    const what = "Cannot read the change feed";
    this.#assertOpen(what);
    if (!this.#feedReady()) return null;
    try {
      const row = this.#feedStatement(
        `SELECT ${FEED_COLUMNS} FROM flowstate_feed WHERE seq = ?`,
        true,
      ).get(seq) as FeedRow | Record<string, unknown> | undefined;
      return row === undefined ? null : changeOf(feedRow(row));
    } catch (err) {
      throw this.#error(what, err);
    }
  }

  /**
   * The entries of a range, a page at a time (keyset pagination on `seq`):
   * no read transaction stays open between pages.
   */
  *#feedChanges(range: FeedTableRange): Generator<Change> {
    const what = "Cannot read the change feed";
    this.#assertOpen(what);
    if (!this.#feedReady()) return;
    const size = Math.max(1, Math.min(range.batchSize, 10_000));
    const sql = `SELECT ${FEED_COLUMNS} FROM flowstate_feed WHERE seq > ? AND seq < ? ` +
      `ORDER BY seq ${range.reverse ? "DESC" : "ASC"} LIMIT ${size}`;
    let after = range.after ?? 0;
    let before = range.before ?? Number.MAX_SAFE_INTEGER;
    for (;;) {
      this.#assertOpen(what);
      let rows: (FeedRow | Record<string, unknown>)[];
      try {
        rows = this.#feedStatement(sql, true).all(after, before) as typeof rows;
      } catch (err) {
        throw this.#error(what, err);
      }
      for (const row of rows) yield changeOf(feedRow(row));
      if (rows.length < size) return;
      const last = feedRow(rows[rows.length - 1])[0];
      if (range.reverse) before = last;
      else after = last;
    }
  }

  /** The sequence numbers of `key`'s changes in a range, a page at a time, through the index by key. */
  *#feedKeySeqs(key: Key, range: FeedTableRange): Generator<number> {
    const what = "Cannot read the change feed";
    this.#assertOpen(what);
    if (!this.#feedReady()) return;
    const size = Math.max(1, Math.min(range.batchSize, 10_000));
    // The index by key, and the entries newer than its last multiple (see feed.ts), read in
    // one statement: one snapshot.
    const sql = "SELECT seq FROM flowstate_feed_keys WHERE key = ?1 AND seq > ?2 AND seq < ?3 " +
      "UNION SELECT seq FROM flowstate_feed WHERE seq > max(?2, " +
      `(${FEED_HEAD_SQL.replace(/ AS seq$/, "")}) / ${FEED_KEYS_EVERY} * ${FEED_KEYS_EVERY}) ` +
      `AND seq < ?3 AND key = ?1 ORDER BY seq ${range.reverse ? "DESC" : "ASC"} LIMIT ${size}`;
    const bytes = encodeKey(key);
    let after = range.after ?? 0;
    let before = range.before ?? Number.MAX_SAFE_INTEGER;
    for (;;) {
      this.#assertOpen(what);
      let rows: { seq: number }[];
      try {
        rows = this.#feedStatement(sql).all(bytes, after, before) as typeof rows;
      } catch (err) {
        throw this.#error(what, err);
      }
      for (const row of rows) yield row.seq;
      if (rows.length < size) return;
      const last = rows[rows.length - 1].seq;
      if (range.reverse) before = last;
      else after = last;
    }
  }

  /**
   * Delete the old entries from the oldest on, up to the first that is
   * neither old by count nor by age (or above `lastSeq`), at most
   * `TRIM_BATCH_SIZE` per transaction. When none is left, the head's number
   * stays as the floor, in the same transaction.
   */
  async #feedTrim(request: FeedTrimRequest): Promise<number> {
    const what = "Cannot trim the change feed";
    const { keepFrom, cutoff, lastSeq } = request;
    let removed = 0;
    for (;;) {
      this.#assertOpen(what);
      this.#assertWritable(what);
      if (!this.#feedReady()) return removed;
      let deleted: number;
      try {
        this.#begin.run();
      } catch (err) {
        throw this.#error(what, err);
      }
      try {
        const head = (this.#feedStatement(FEED_HEAD_SQL).get() as { seq: number }).seq;
        const kept = (this.#feedStatement(
          "SELECT min(seq) AS seq FROM flowstate_feed WHERE seq >= ? AND at >= ?",
        ).get(keepFrom, cutoff ?? -Number.MAX_VALUE) as { seq: number | null }).seq;
        const upper = Math.min(kept ?? Infinity, lastSeq + 1);
        const batchEnd = this.#feedStatement(
          `SELECT seq FROM flowstate_feed WHERE seq < ? ORDER BY seq LIMIT 1 OFFSET ${
            TRIM_BATCH_SIZE - 1
          }`,
        ).get(upper) as { seq: number } | undefined;
        const end = batchEnd === undefined ? upper : batchEnd.seq + 1;
        this.#feedStatement(
          "DELETE FROM flowstate_feed_keys WHERE (key, seq) IN " +
            "(SELECT key, seq FROM flowstate_feed WHERE seq < ?)",
        ).run(end);
        deleted = Number(
          this.#feedStatement("DELETE FROM flowstate_feed WHERE seq < ?").run(end).changes,
        );
        if (deleted > 0 && this.#feedFirst() === undefined) {
          this.#feedStatement(
            "INSERT OR REPLACE INTO flowstate_meta (key, value) VALUES ('feed_floor', ?)",
          ).run(String(head));
        }
        this.#commit.run();
      } catch (err) {
        this.#rollbackQuietly();
        throw this.#error(what, err);
      }
      removed += deleted;
      if (deleted < TRIM_BATCH_SIZE) return removed;
      // Let writers (and the rest of this process) in between batches.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /** Replace the values of kept `set` entries in one transaction (see `FeedTable.setValues`). */
  #feedSetValues(values: readonly FeedValue[]): number {
    const what = "Cannot rewrite the change feed's values";
    this.#assertOpen(what);
    this.#assertWritable(what);
    if (values.length === 0 || !this.#feedReady()) return 0;
    try {
      this.#begin.run();
    } catch (err) {
      throw this.#error(what, err);
    }
    let n = 0;
    try {
      const update = this.#feedStatement(
        "UPDATE flowstate_feed SET value = ? WHERE seq = ? AND op = 'set'",
      );
      for (const { seq, value } of values) n += Number(update.run(value, seq).changes);
      this.#commit.run();
    } catch (err) {
      this.#rollbackQuietly();
      throw this.#error(what, err);
    }
    return n;
  }

  /**
   * Move a feed the core kept in the key space (a file written by Flowstate
   * 0.3) into the feed's table, in one transaction: the entries keep their
   * numbers and fields, the head its number; the old rows are deleted. A
   * file with the table, or without such a feed, is left as it is.
   */
  #moveKeySpaceFeed(): void {
    if (this.#readOnly !== undefined || this.#feedReady()) return;
    if (this.#read(FEED_HEAD, 0) === null) return;
    const what = "Cannot move the change feed into its table";
    try {
      this.#begin.run();
    } catch (err) {
      throw this.#error(what, err);
    }
    try {
      // Another process may have moved it meanwhile: check again under the write lock.
      const head = this.#read(FEED_HEAD, 0);
      if (!hasFeedTable(this.#db) && head !== null) {
        const { seq, since } = JSON.parse(head.value) as { seq: number; since?: number };
        const entries = [...this.list({ prefix: FEED_ENTRIES, batchSize: 1000 }, 0)];
        moveKeySpaceFeed(this.#db, {
          head: since === undefined ? { seq } : { seq, since },
          entries: entries.map((raw) => parseJson(raw.value) as Change),
        });
        for (const prefix of [FEED_ENTRIES, FEED_BY_KEY]) {
          this.#inRange("DELETE FROM flowstate_entries WHERE", { prefix }).run();
        }
        this.#delete.run(encodeKey(FEED_HEAD));
      }
      this.#commit.run();
    } catch (err) {
      this.#rollbackQuietly();
      throw this.#error(what, err);
    }
    this.#feedReady();
  }

  /**
   * The keys of the checks that do not hold at `now` (inside a transaction);
   * `bytesOf` encodes a key (a caller may remember the last one).
   */
  #failedChecks(
    checks: readonly AtomicCheck[],
    now: number,
    bytesOf: (key: Key) => Uint8Array = encodeKey,
  ): Key[] {
    const conflicts: Key[] = [];
    for (const check of checks) {
      const row = this.#check.get(bytesOf(check.key)) as
        | { version: string; expires_at: number | null }
        | undefined;
      const current = row !== undefined && (row.expires_at === null || row.expires_at > now)
        ? row.version
        : null;
      if (current !== check.version) conflicts.push(check.key);
    }
    return conflicts;
  }

  /** Whether some value under `prefix` may hold a lone surrogate (a scan of the prefix). */
  #probeSurrogates(prefix: Key): unknown {
    const params: SQLInputValue[] = [];
    const where = boundsWhere(byteBounds({ prefix }), (bytes) => (params.push(bytes), "?"));
    return this.#statement(
      `SELECT 1 FROM flowstate_entries WHERE ${[...where, "value GLOB ?"].join(" AND ")} LIMIT 1`,
    ).get(...params, LONE_SURROGATE_GLOB);
  }

  /**
   * Trust the flag of lone surrogates from now on: a file that predates it
   * is probed once (a scan), and the result recorded. Writable stores only.
   */
  #checkSurrogateFlag(): void {
    if (this.#readOnly !== undefined) return;
    const checked = this.#db.prepare(
      "SELECT 1 AS yes FROM flowstate_meta WHERE key = 'surrogates_flagged'",
    ).get();
    if (checked === undefined) {
      this.#begin.run();
      try {
        if (this.#probeSurrogates([]) !== undefined) this.#markSurrogates.run();
        this.#db.prepare(
          "INSERT OR IGNORE INTO flowstate_meta (key, value) VALUES ('surrogates_flagged', '1')",
        ).run();
        this.#commit.run();
      } catch (err) {
        this.#rollbackQuietly();
        throw err;
      }
    }
    this.#surrogateFlag = true;
  }

  /** The last key `#casKey` encoded (a copy), and its bytes. */
  #lastCasKey: { key: Key; bytes: Uint8Array } | undefined;

  /**
   * `key` encoded, the bytes of the last compare-and-set's key again when it
   * is the same key (a counter incremented over and over): encoding a key
   * allocates a typed array, ~0.5 µs, ~5% of the statement. The bytes are
   * only bound to statements (which copy them), never changed.
   */
  #casKey(key: Key): Uint8Array {
    const last = this.#lastCasKey;
    if (last !== undefined && keysEqual(last.key, key)) return last.bytes;
    const bytes = encodeKey(key);
    this.#lastCasKey = { key: [...key], bytes };
    return bytes;
  }

  /**
   * One check and one write of the same key as a single conditional
   * statement (its own transaction): `UPDATE … WHERE version = ?`,
   * `INSERT … ON CONFLICT DO UPDATE … WHERE expired`, or `DELETE … WHERE
   * version = ?`; one row changed means the check held. `undefined` for
   * the shapes it does not cover (the caller runs the general path).
   */
  #compareAndSet(
    check: AtomicCheck,
    m: Mutation,
    version: string,
    now: number,
  ): DriverCommitResult | undefined {
    if (m.type === "clear" || !keysEqual(check.key, m.key)) return undefined;
    if (m.type === "delete" && check.version === null) return undefined;
    const key = this.#casKey(m.key);
    let changes: number;
    try {
      if (m.type === "delete") {
        changes = Number(this.#casDelete.run(key, check.version, now).changes);
      } else {
        if (mayHoldLoneSurrogate(m.value)) this.#markSurrogates.run();
        changes = Number(
          check.version === null
            ? this.#casInsert.run(key, m.value, version, m.expiresAt, now).changes
            : m.expiresAt === null
            ? this.#casUpdatePersistent.run(m.value, version, key, check.version, now).changes
            : this.#casUpdate.run(m.value, version, m.expiresAt, key, check.version, now).changes,
        );
      }
    } catch (err) {
      throw this.#error("Cannot commit", err);
    }
    return changes === 1 ? { ok: true } : { ok: false, conflicts: [check.key] };
  }

  /**
   * Count the live entries of a range: every key of the range (read from
   * the key index alone) minus the expired ones (read from the index on
   * `expires_at`, which holds only entries that expire), in one statement.
   */
  count(range: ClearRange, now: number): Promise<number> {
    const what = "Cannot count";
    this.#assertOpen(what);
    const bounds = byteBounds(range);
    if (isEmptyBounds(bounds)) return Promise.resolve(0);
    const params: SQLInputValue[] = [];
    const where = boundsWhere(bounds, (bytes) => (params.push(bytes), "?"));
    const keys = where.length === 0 ? "1" : where.join(" AND ");
    const sql = `SELECT (SELECT count(*) FROM flowstate_entries WHERE ${keys}) - ` +
      `(SELECT count(*) FROM flowstate_entries INDEXED BY flowstate_entries_expires_at ` +
      `WHERE expires_at <= ? AND ${keys}) AS n`;
    try {
      const row = this.#statement(sql).get(...params, now, ...params) as { n: number };
      return Promise.resolve(row.n);
    } catch (err) {
      throw this.#error(what, err);
    }
  }

  /** Delete every entry of a range in one transaction; resolves how many were live. */
  clear(range: ClearRange, now: number): Promise<number> {
    const what = "Cannot clear";
    this.#assertOpen(what);
    this.#assertWritable(what);
    try {
      this.#begin.run();
    } catch (err) {
      throw this.#error(what, err);
    }
    try {
      const live = (this.#inRange("SELECT count(*) AS n FROM flowstate_entries WHERE", range, LIVE)
        .get(now) as { n: number }).n;
      this.#inRange("DELETE FROM flowstate_entries WHERE", range).run();
      this.#commit.run();
      return Promise.resolve(live);
    } catch (err) {
      this.#rollbackQuietly();
      throw this.#error(what, err);
    }
  }

  /**
   * Run a query in SQL. Resolves `undefined` (the core evaluates it instead)
   * when a clause cannot be expressed with exactly the core's semantics:
   * `eq`/`ne`/`in`/`contains` with an array or object operand, a path segment
   * containing `"` or `\`, more than two numeric path segments, an `in` with
   * more than 500 items, or an operand string with a lone UTF-16 surrogate.
   *
   * Queries that order strings (`orderBy`, or `lt`/`lte`/`gt`/`gte` with a
   * string) also fall back when a value under the prefix may contain a lone
   * UTF-16 surrogate (JSON `\udXXX`): SQLite orders those as WTF-8 bytes, the
   * core by UTF-16 code units with its surrogate rule. A cheap `GLOB` probe in
   * the same read transaction decides.
   */
  query(query: NormalizedQuery, now: number): RawEntry[] | undefined {
    const what = "Cannot query";
    this.#assertOpen(what);
    const compiled = this.#queries.compile(query, now);
    if (compiled === undefined) return undefined;
    let rows: unknown[];
    try {
      if (!compiled.ordersStrings) {
        rows = this.#tupleStatement(compiled.sql).all(...compiled.params);
      } else {
        // SQLite orders a lone surrogate (JSON `\udXXX`) differently from the
        // core; if any value under the prefix may hold one, let the core sort.
        // One read transaction, so no writer slips one in between the two.
        this.#beginRead.run();
        const risky = this.#surrogateFlag && this.#hasSurrogates.get() === undefined
          ? undefined
          : this.#probeSurrogates(query.prefix);
        rows = risky === undefined
          ? this.#tupleStatement(compiled.sql).all(...compiled.params)
          : [];
        this.#commit.run();
        if (risky !== undefined) return undefined;
      }
    } catch (err) {
      this.#rollbackQuietly();
      throw this.#error(what, err);
    }
    return tuplesOf(rows).map(tupleEntry);
  }

  /**
   * Build the declared indexes missing from the file (each one
   * `CREATE INDEX`, reported through `progress` when its prefix holds many
   * entries) and the FTS5 search table with its triggers (rebuilt when the
   * declaration changed). A read-only store uses what the file has.
   */
  prepareIndexes(request: PrepareIndexesRequest): PreparedIndexes | Promise<PreparedIndexes> {
    if (request.search !== undefined && !searchWordsFormatLoaded()) {
      // Once per process, and only for a store that declares a search.
      return loadSearchWordsFormat().then(() => this.prepareIndexes(request));
    }
    const what = "Cannot build indexes";
    this.#assertOpen(what);
    const existing = new Set(
      (this.#db.prepare("SELECT name FROM sqlite_schema WHERE type IN ('index', 'table')")
        .all() as { name: string }[]).map((r) => r.name),
    );
    const built: IndexSpec[] = [];
    for (const index of request.indexes) {
      if (existing.has(index.name)) {
        built.push(index);
        continue;
      }
      if (this.#readOnly !== undefined) continue;
      const n = this.#countUnder(index.prefix);
      const started = performance.now();
      const label = `index ${index.name} on ${index.path.join(".")} under ${
        JSON.stringify(index.prefix)
      }`;
      if (n > BUILD_NOTICE_ENTRIES) request.progress(`building ${label}: ${n} entries…`);
      // One CREATE INDEX: SQLite cannot tell how far it has got, so start and done only.
      request.onBuild?.({ index: index.name, label, phase: "start", total: n });
      try {
        this.#db.exec(createIndexSql(index));
      } catch (err) {
        throw this.#error(what, err);
      }
      if (n > BUILD_NOTICE_ENTRIES) {
        request.progress(`built ${label} in ${Math.round(performance.now() - started)} ms`);
      }
      request.onBuild?.({ index: index.name, label, phase: "done", done: n, total: n });
      built.push(index);
    }
    this.#indexes = built;
    this.#queries = new CompiledQueries(built);
    if (this.#readOnly === undefined) {
      // The declaration is the whole one: drop declared indexes (and search) no longer in it.
      const wanted = new Set(request.indexes.map((i) => i.name));
      for (const name of existing) {
        if (!/^fs_ix_[0-9a-f]{8}$/.test(name) || wanted.has(name)) continue;
        try {
          this.#db.exec(`DROP INDEX IF EXISTS ${ident(name)}`);
        } catch (err) {
          throw this.#error(what, err);
        }
        request.progress(`dropped index ${name}: no longer declared`);
      }
    }
    let search = false;
    if (request.search !== undefined) {
      search = this.#prepareSearch(request.search, request.progress, request.onBuild);
    } else if (this.#readOnly === undefined && existing.has("flowstate_search")) {
      try {
        this.#begin.run();
        for (const sql of DROP_SEARCH_SQL) this.#db.exec(sql);
        this.#db.prepare("DELETE FROM flowstate_meta WHERE key = 'search'").run();
        this.#commit.run();
      } catch (err) {
        this.#rollbackQuietly();
        throw this.#error("Cannot drop the search index", err);
      }
      request.progress("dropped the search index: no longer declared");
    }
    return { indexes: built.map((i) => i.name), search };
  }

  #countUnder(prefix: Key): number {
    return (this.#inRange("SELECT count(*) AS n FROM flowstate_entries WHERE", { prefix })
      .get() as { n: number }).n;
  }

  #prepareSearch(
    spec: SearchSpec,
    progress: (message: string) => void,
    onBuild: PrepareIndexesRequest["onBuild"],
  ): boolean {
    // The declaration and the words' format: a table built another way (an older version's
    // tokenizer) is rebuilt; a read-only store leaves it, and the core scans.
    const wanted = searchMetaValue(spec);
    const row = this.#db.prepare("SELECT value FROM flowstate_meta WHERE key = 'search'").get() as
      | { value: string }
      | undefined;
    if (row?.value === wanted) {
      this.#search = spec;
      return true;
    }
    if (this.#readOnly !== undefined) return false;
    const n = this.#countUnder(spec.prefix);
    const started = performance.now();
    if (n > BUILD_NOTICE_ENTRIES) progress(`building the search index: ${n} entries…`);
    const label = `the search index under ${JSON.stringify(spec.prefix)}`;
    onBuild?.({ index: "search", label, phase: "start", total: n });
    try {
      this.#begin.run();
      // Another process may have built it meanwhile: check again under the write lock.
      const again = this.#db.prepare("SELECT value FROM flowstate_meta WHERE key = 'search'")
        .get() as { value: string } | undefined;
      if (again?.value === wanted) {
        this.#commit.run();
        if (n > BUILD_NOTICE_ENTRIES) progress(`the search index was built by another process`);
        // Built (by the other process): a "start" is always followed by its "done".
        onBuild?.({ index: "search", label, phase: "done", done: n, total: n });
        this.#search = spec;
        return true;
      }
      for (const sql of DROP_SEARCH_SQL) this.#db.exec(sql);
      for (const sql of createSearchSql(spec)) this.#db.exec(sql);
      this.#db.prepare("INSERT OR REPLACE INTO flowstate_meta (key, value) VALUES ('search', ?)")
        .run(wanted);
      this.#commit.run();
    } catch (err) {
      this.#rollbackQuietly();
      throw this.#error("Cannot build the search index", err);
    }
    if (n > BUILD_NOTICE_ENTRIES) {
      progress(`built the search index in ${Math.round(performance.now() - started)} ms`);
    }
    onBuild?.({ index: "search", label, phase: "done", done: n, total: n });
    this.#search = spec;
    return true;
  }

  /** Describe how `query` runs: the index chosen and SQLite's own plan. */
  explain(query: NormalizedQuery, now: number): Promise<QueryPlan | undefined> {
    const what = "Cannot explain";
    this.#assertOpen(what);
    const compiled: CompiledQuery | undefined = compileQuery(query, now, this.#indexes);
    if (compiled === undefined) return Promise.resolve(undefined);
    let rows: { detail: string }[];
    try {
      rows = this.#db.prepare(`EXPLAIN QUERY PLAN ${compiled.sql}`)
        .all(...compiled.params) as { detail: string }[];
    } catch (err) {
      throw this.#error(what, err);
    }
    const detail = rows.map((r) => `sqlite: ${r.detail}`);
    if (compiled.ordersStrings) {
      detail.push(
        "falls back to the core's scan if a value under the prefix holds a lone surrogate",
      );
    }
    return Promise.resolve({
      index: compiled.index?.name ?? null,
      scan: !compiled.narrows,
      by: "native",
      detail,
    });
  }

  /** Full-text search with FTS5 (ranked by bm25), or `undefined` when the request does not fit the declaration. */
  search(request: SearchRequest, now: number): Promise<RawSearchHit[] | undefined> {
    const what = "Cannot search";
    this.#assertOpen(what);
    const spec = this.#search;
    if (spec === undefined) return Promise.resolve(undefined);
    const within = request.prefix.length >= spec.prefix.length &&
      spec.prefix.every((p, i) => request.prefix[i] === p);
    if (!within) return Promise.resolve(undefined);
    let columns: string[] | undefined;
    if (request.fields !== null) {
      if (spec.fields === null) return Promise.resolve(undefined);
      const names = spec.fields.map((f) => f.join("\0"));
      const all = searchColumns(spec);
      columns = request.fields.map((f) => all[names.indexOf(f.join("\0"))]);
      if (columns.includes(undefined as unknown as string)) return Promise.resolve(undefined);
    }
    const params: SQLInputValue[] = [matchExpression(request.terms, columns)];
    const where = boundsWhere(
      prefixBounds(request.prefix),
      (bytes) => (params.push(bytes), "?"),
      "e.key",
    );
    // The same string for the same bounds: the statement cache finds it without hashing anew.
    const shape = where.join(" AND ");
    let sql = this.#searchSql.get(shape);
    if (sql === undefined) {
      sql = `SELECT e.key, e.value, e.version, e.expires_at, -bm25(flowstate_search) AS score ` +
        `FROM flowstate_search JOIN flowstate_entries AS e ON e.rowid = flowstate_search.rowid ` +
        `WHERE flowstate_search MATCH ? AND ${
          [...where, "(e.expires_at IS NULL OR e.expires_at > ?)"].join(" AND ")
        } ORDER BY bm25(flowstate_search), e.key LIMIT ?`;
      if (this.#searchSql.size >= 100) this.#searchSql.clear();
      this.#searchSql.set(shape, sql);
    }
    try {
      const rows = this.#statement(sql).all(
        ...params,
        now,
        request.limit,
      ) as (EntryRow & { score: number })[];
      return Promise.resolve(rows.map((r) => ({ ...entryOf(r), score: r.score })));
    } catch (err) {
      throw this.#error(what, err);
    }
  }

  /**
   * Delete every entry expired at `now` (using the index on `expires_at`), in
   * transactions of at most 1000 rows so other writers get the lock in
   * between; resolves how many were deleted.
   */
  async purgeExpired(now: number): Promise<number> {
    const what = "Cannot purge expired entries";
    let total = 0;
    for (;;) {
      this.#assertOpen(what);
      this.#assertWritable(what);
      let deleted: number;
      try {
        deleted = Number(this.#purgeBatch.run(now, PURGE_BATCH_SIZE).changes);
      } catch (err) {
        throw this.#error(what, err);
      }
      total += deleted;
      if (deleted < PURGE_BATCH_SIZE) return total;
      // Let the rest of this process run between batches.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /**
   * Hand free pages back to the file system: an incremental vacuum (files
   * this plugin creates use `auto_vacuum = INCREMENTAL`), then a WAL
   * checkpoint that truncates the WAL. Resolves the size of the database plus
   * its WAL before and after, in bytes. A file without incremental vacuum is
   * converted by one full `VACUUM`, which Deno permits only with `-A` (it
   * attaches a temporary database); without it this throws and says so.
   */
  async compact(): Promise<{ bytesBefore: number; bytesAfter: number }> {
    const what = "Cannot compact";
    this.#assertOpen(what);
    this.#assertWritable(what);
    const bytesBefore = await this.#sizeOnDisk();
    try {
      const { auto_vacuum } = this.#db.prepare("PRAGMA auto_vacuum").get() as {
        auto_vacuum: number;
      };
      if (auto_vacuum === 2) {
        this.#db.prepare("PRAGMA incremental_vacuum").all();
      } else {
        // Rewrites the file once and switches it to incremental vacuum.
        this.#db.exec("PRAGMA auto_vacuum = INCREMENTAL");
        try {
          this.#db.exec("VACUUM");
        } catch (err) {
          if (!/attached databases/i.test(messageOf(err))) throw err;
          throw new Error(
            `${what}: ${this.location} does not use incremental vacuum, and converting it ` +
              `needs VACUUM, which Deno's node:sqlite allows only with all permissions; ` +
              `compact it once from a process run with -A (--allow-all)`,
            { cause: err },
          );
        }
      }
      this.#db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").all();
    } catch (err) {
      throw this.#error(what, err);
    }
    return { bytesBefore, bytesAfter: await this.#sizeOnDisk() };
  }

  async #sizeOnDisk(): Promise<number> {
    let bytes = 0;
    for (const file of [this.location, `${this.location}-wal`]) {
      try {
        bytes += (await Deno.stat(file)).size;
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    return bytes;
  }

  /** Close the connection (SQLite checkpoints the WAL when the last one closes). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#statements.clear();
    this.#pageStatements.clear();
    this.#tupleStatements.clear();
    this.#db.close();
    if (this.#copy !== undefined) {
      try {
        Deno.removeSync(this.#copy, { recursive: true });
      } catch { /* a temp directory: the OS cleans it up in the end */ }
    }
  }
}
