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
 * - Keys are stored as memcmp-ordered bytes (see `encodeKey`), so prefix and
 *   range scans are index range scans. Queries are translated to SQL with
 *   `json_type`/`json_extract`/`json_each` when that can be done with the exact
 *   semantics of the core; otherwise the core evaluates them.
 *
 * @module
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { StoreClosedError, StoreCorruptError } from "../../src/errors.ts";
import { definePlugin, type ParsingSchema, type Plugin } from "../../src/plugin.ts";
import type {
  ClearRange,
  CommitRequest,
  DriverCommitResult,
  KeyRange,
  Mutation,
  RawEntry,
  StoreDriver,
} from "../../src/store/driver.ts";
import { byteBounds, encodeKey } from "../../src/store/keys.ts";
import type { NormalizedQuery } from "../../src/store/query.ts";
import type { Capabilities, JsonValue, Key } from "../../src/store/types.ts";
import { boundsWhere, isEmptyBounds } from "../_sql/bounds.ts";
import { entryOf, type EntryRow, KeysetPages } from "../_sql/keyset.ts";

/** Default option values of the sqlite plugin. */
export const sqliteDefaults = {
  /** `PRAGMA synchronous=FULL`: every commit is fsynced before it resolves. */
  durability: "full",
  /** How long a write waits for another connection's lock, in milliseconds. */
  busyTimeout: 5000,
} as const satisfies { durability: "full" | "relaxed"; busyTimeout: number };

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

/** Options for {@linkcode SqliteDriver.open}. */
export interface SqliteDriverOptions {
  /** `"full"` (default) or `"relaxed"`; see {@linkcode sqliteOptions}. */
  durability?: "full" | "relaxed";
  /** Milliseconds to wait for another connection's lock (default 5000). */
  busyTimeout?: number;
  /** Page cache in KiB (default: SQLite's). */
  cacheSize?: number;
  /** The store's name, for error messages. */
  storeName?: string;
}

/** The schema version this code reads and writes. */
const SCHEMA_VERSION = 1;
const FORMAT = "flowstate.sqlite";
const SQLITE_MAGIC = "SQLite format 3\0";
/** Keep the WAL file at most this big after a checkpoint. */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;
const STATEMENT_CACHE_SIZE = 64;
const PURGE_BATCH_SIZE = 1000;
/** Numeric path segments (array index or object key) that a pushed-down query may have. */
const MAX_INDEX_SEGMENTS = 2;
/** `in` operands with more items than this are evaluated by the core. */
const MAX_IN_ITEMS = 500;

/*
 * The schema. Choices:
 * - An ordinary rowid table with `key` as a separate PRIMARY KEY index, not
 *   WITHOUT ROWID: with 2 KB values WITHOUT ROWID made 10k-row batches ~3x and
 *   point reads ~2.5x slower (whole rows live in the index b-tree), and it was
 *   no faster with 50-byte values.
 * - `key` holds encodeKey() bytes, whose memcmp order is the key order, so
 *   prefixes and ranges are index range scans. Keys are decoded from those
 *   bytes (no second JSON key column: it would double key storage for a
 *   decode that costs well under a microsecond).
 * - `expires_at` is REAL, not INTEGER: it holds a JS number (ms), which may be
 *   fractional (a fake clock, a fractional expireIn) or above 2^53; INTEGER
 *   affinity would turn an integral double above 2^53 into an int64 that
 *   node:sqlite refuses to read back. REAL round-trips every JS number.
 * - A partial index on expires_at serves purgeExpired() (gc).
 */
const SCHEMA_SQL = `
CREATE TABLE flowstate_meta (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
);
CREATE TABLE flowstate_entries (
  key BLOB PRIMARY KEY NOT NULL,
  value TEXT NOT NULL,
  version TEXT NOT NULL,
  expires_at REAL
);
CREATE INDEX flowstate_entries_expires_at ON flowstate_entries (expires_at)
  WHERE expires_at IS NOT NULL;
`;

const LIVE = "(expires_at IS NULL OR expires_at > ?)";

// ignoreBOM: a key element may start with U+FEFF, which must survive decoding.

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isBusy(err: unknown): boolean {
  return /database is locked|SQLITE_BUSY/i.test(messageOf(err));
}

function isCorrupt(err: unknown): boolean {
  return /file is not a database|database disk image is malformed|SQLITE_(NOTADB|CORRUPT)/i
    .test(messageOf(err));
}

/** What the first bytes of `path` say it is. */
async function probeFile(path: string): Promise<"absent" | "empty" | "sqlite" | "other"> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "absent";
    throw err;
  }
  try {
    const header = new Uint8Array(SQLITE_MAGIC.length);
    let got = 0;
    while (got < header.length) {
      const n = await file.read(header.subarray(got));
      if (n === null) break;
      got += n;
    }
    if (got === 0) return "empty";
    const text = String.fromCharCode(...header.subarray(0, got));
    return text === SQLITE_MAGIC ? "sqlite" : "other";
  } finally {
    file.close();
  }
}

/**
 * The sqlite driver: one `node:sqlite` connection with cached prepared
 * statements. Every method is synchronous under the hood; writes are single
 * `BEGIN IMMEDIATE` transactions.
 *
 * Most code opens it through the plugin (`openStore({ plugin: "sqlite", path })`);
 * use {@linkcode SqliteDriver.open} to get the driver itself.
 */
export class SqliteDriver implements StoreDriver {
  /** The absolute path of the database file. */
  readonly location: string;
  /** Everything is native: persistence, expiry, count, clear, query, multi-process. */
  readonly capabilities: Readonly<Capabilities> = Object.freeze({
    persistent: true,
    expiry: true,
    query: true,
    count: true,
    clear: true,
    atomicClear: true,
    multiProcess: true,
  });
  #db: DatabaseSync;
  #storeName: string;
  #busyTimeout: number;
  #closed = false;
  #statements = new Map<string, StatementSync>();
  #get: StatementSync;
  #check: StatementSync;
  #upsert: StatementSync;
  #delete: StatementSync;
  #begin: StatementSync;
  #beginRead: StatementSync;
  #commit: StatementSync;
  #rollback: StatementSync;
  #purgeBatch: StatementSync;

  private constructor(db: DatabaseSync, path: string, storeName: string, busyTimeout: number) {
    this.#db = db;
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
    this.#purgeBatch = db.prepare(
      "DELETE FROM flowstate_entries WHERE key IN " +
        "(SELECT key FROM flowstate_entries WHERE expires_at <= ? LIMIT ?)",
    );
  }

  /**
   * Open (creating if needed) the database at `path`: WAL mode, the chosen
   * durability, and the Flowstate schema. Throws a {@linkcode StoreCorruptError}
   * (leaving the file untouched) when the file is not a SQLite database, is a
   * SQLite database that is not a Flowstate store, or has a newer schema version.
   */
  static async open(path: string, options: SqliteDriverOptions = {}): Promise<SqliteDriver> {
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
    await Deno.mkdir(dirname(path), { recursive: true });
    if (await probeFile(path) === "other") {
      throw new StoreCorruptError(
        `${what}: ${path} is not a SQLite database (its first bytes are not "SQLite format 3"); ` +
          `the file was left untouched: move it away or point the store's "path" option elsewhere`,
        { path },
      );
    }
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
      if (options.cacheSize !== undefined) {
        db.exec(`PRAGMA cache_size = ${-options.cacheSize}`);
      }
      return new SqliteDriver(db, path, storeName, busyTimeout);
    } catch (err) {
      db.close();
      if (err instanceof StoreCorruptError) throw err;
      if (isCorrupt(err)) {
        throw new StoreCorruptError(
          `${what}: ${path} is not a readable SQLite database (${messageOf(err)}); ` +
            `the file was left untouched: restore it from a backup or point "path" elsewhere`,
          { path },
          { cause: err },
        );
      }
      if (isBusy(err)) {
        throw new Error(
          `${what}: ${path} stayed locked by another connection for more than ${busyTimeout} ms ` +
            `(busyTimeout); retry, or raise the store's busyTimeout option`,
          { cause: err },
        );
      }
      throw new Error(`${what}: ${path}: ${messageOf(err)}`, { cause: err });
    }
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
    return err instanceof Error ? err : new Error(String(err));
  }

  #statement(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (stmt) {
      // Refresh its place in the LRU order.
      this.#statements.delete(sql);
    } else {
      stmt = this.#db.prepare(sql);
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) {
        this.#statements.delete(this.#statements.keys().next().value!);
      }
    }
    this.#statements.set(sql, stmt);
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
  *list(range: KeyRange, now: number): Generator<RawEntry> {
    const what = "Cannot list";
    this.#assertOpen(what);
    const pages = new KeysetPages(range);
    for (let size = pages.nextSize(); size > 0; size = pages.nextSize()) {
      const params: SQLInputValue[] = [];
      const where = boundsWhere(pages.bounds, (bytes) => (params.push(bytes), "?"));
      let rows: EntryRow[];
      try {
        rows = this.#statement(pages.select("flowstate_entries", [...where, LIVE], "?"))
          .all(...params, now, size) as EntryRow[];
      } catch (err) {
        throw this.#error(what, err);
      }
      for (const row of rows) yield entryOf(row);
      if (!pages.advance(rows, size)) return;
      this.#assertOpen(what);
    }
  }

  #apply(m: Mutation, bytesOf: (key: Key) => Uint8Array, version: string): void {
    if (m.type === "set") this.#upsert.run(bytesOf(m.key), m.value, version, m.expiresAt);
    else if (m.type === "delete") this.#delete.run(bytesOf(m.key));
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
  ): { run(...p: SQLInputValue[]): unknown; get(...p: SQLInputValue[]): unknown } {
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

  /** Count the live entries of a range with one SQL `count(*)`. */
  count(range: ClearRange, now: number): Promise<number> {
    const what = "Cannot count";
    this.#assertOpen(what);
    try {
      const row = this.#inRange("SELECT count(*) AS n FROM flowstate_entries WHERE", range, LIVE)
        .get(now) as { n: number };
      return Promise.resolve(row.n);
    } catch (err) {
      throw this.#error(what, err);
    }
  }

  /** Delete every entry of a range in one transaction; resolves how many were live. */
  clear(range: ClearRange, now: number): Promise<number> {
    const what = "Cannot clear";
    this.#assertOpen(what);
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
  query(query: NormalizedQuery, now: number): Promise<RawEntry[] | undefined> {
    const what = "Cannot query";
    this.#assertOpen(what);
    const compiled = compileQuery(query, now);
    if (compiled === undefined) return Promise.resolve(undefined);
    let rows: EntryRow[];
    try {
      if (!compiled.ordersStrings) {
        rows = this.#statement(compiled.sql).all(...compiled.params) as typeof rows;
      } else {
        // SQLite orders a lone surrogate (JSON `\udXXX`) differently from the
        // core; if any value under the prefix may hold one, let the core sort.
        // One read transaction, so no writer slips one in between the two.
        this.#beginRead.run();
        const params: SQLInputValue[] = [];
        const where = boundsWhere(
          byteBounds({ prefix: query.prefix }),
          (bytes) => (params.push(bytes), "?"),
        );
        const risky = this.#statement(
          `SELECT 1 FROM flowstate_entries WHERE ${
            [...where, "value GLOB ?"].join(" AND ")
          } LIMIT 1`,
        ).get(...params, LONE_SURROGATE_GLOB);
        rows = risky === undefined
          ? this.#statement(compiled.sql).all(...compiled.params) as typeof rows
          : [];
        this.#commit.run();
        if (risky !== undefined) return Promise.resolve(undefined);
      }
    } catch (err) {
      this.#rollbackQuietly();
      throw this.#error(what, err);
    }
    return Promise.resolve(rows.map(entryOf));
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
    this.#db.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Check (read-only first) that the file is a Flowstate store we can read; create the schema if new. */
async function setUp(
  db: DatabaseSync,
  path: string,
  what: string,
  busyTimeout: number,
): Promise<void> {
  const tables = (): string[] =>
    (db.prepare(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    ).all() as { name: string }[]).map((r) => r.name);
  const readVersion = (): void => {
    const rows = db.prepare("SELECT key, value FROM flowstate_meta").all() as {
      key: string;
      value: string;
    }[];
    const meta = new Map(rows.map((r) => [r.key, r.value]));
    const raw = meta.get("schema_version");
    const version = raw !== undefined && /^[1-9]\d{0,8}$/.test(raw) ? Number(raw) : NaN;
    if (meta.get("format") !== FORMAT || Number.isNaN(version)) {
      throw new StoreCorruptError(
        `${what}: ${path} has a flowstate_meta table without a valid format and schema_version ` +
          `(format ${JSON.stringify(meta.get("format") ?? null)}, schema_version ${
            JSON.stringify(raw ?? null)
          }); the file was left untouched`,
        { path },
      );
    }
    if (version > SCHEMA_VERSION) {
      throw new StoreCorruptError(
        `${what}: ${path} has schema version ${version}, but this version of Flowstate reads ` +
          `schema version ${SCHEMA_VERSION} only; upgrade Flowstate to open it (the file was left untouched)`,
        { path },
      );
    }
  };
  const foreign = (names: string[]): StoreCorruptError =>
    new StoreCorruptError(
      `${what}: ${path} is a SQLite database but not a Flowstate store (it has tables ${
        names.slice(0, 5).join(", ")
      } and no flowstate_meta); the file was left untouched: point "path" at a new file`,
      { path },
    );
  // Read-only inspection first, so a file we refuse is never modified.
  let names = tables();
  if (names.includes("flowstate_meta")) readVersion();
  else if (names.length > 0) throw foreign(names);

  // Only possible before the first table exists (and outside a transaction):
  // lets compact() hand free pages back with an incremental vacuum.
  if (names.length === 0) db.exec("PRAGMA auto_vacuum = INCREMENTAL");

  // WAL needs a moment of exclusive access; SQLite does not always call the
  // busy handler for it, so retry while another process is setting it up.
  const deadline = Date.now() + busyTimeout;
  for (;;) {
    try {
      const mode = (db.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string })
        .journal_mode;
      if (mode.toLowerCase() !== "wal") {
        throw new Error(
          `${what}: ${path} cannot use WAL mode (journal_mode stays "${mode}"); ` +
            `put the file on a local file system`,
        );
      }
      break;
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw err;
      await sleep(10);
    }
  }

  if (names.includes("flowstate_meta")) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    names = tables();
    if (names.includes("flowstate_meta")) {
      readVersion();
    } else if (names.length > 0) {
      throw foreign(names);
    } else {
      db.exec(SCHEMA_SQL);
      db.prepare("INSERT INTO flowstate_meta (key, value) VALUES (?, ?), (?, ?)").run(
        "format",
        FORMAT,
        "schema_version",
        String(SCHEMA_VERSION),
      );
    }
    db.exec("COMMIT");
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Query pushdown: NormalizedQuery → one SELECT with bound parameters.
//
// For a field at a path, T is its json_type (NULL when missing; 'null', 'true',
// 'false', 'integer', 'real', 'text', 'array', 'object') and V its
// json_extract. Numbers are compared as CAST(V AS REAL): SQLite parses an
// integer literal like 1152921504606847000 exactly as int64, while JSON.parse
// rounds it to the nearest double; casting rounds the same way.

const ARRAY_INDEX = /^(0|[1-9]\d*)$/;
const NUMBER_TYPES = "('integer', 'real')";

class SqlParams {
  readonly values: SQLInputValue[] = [];
  /** Bind a value and return its numbered placeholder (reusable in the SQL text). */
  bind(value: SQLInputValue): string {
    this.values.push(value);
    return `?${this.values.length}`;
  }
}

interface Field {
  /** json_type(...) */
  type: string;
  /** json_extract(...) */
  value: string;
  /** json_each(...) */
  each: string;
}

/**
 * Locate a path in `e.value`. Object keys are quoted path labels (`$."seg"`).
 * A segment like `"0"` reads an array index on an array but an object key on
 * an object (as readPath does); SQLite's path syntax has to pick one, so the
 * field is the `coalesce` of both lookups (only one can exist). `undefined`
 * when a segment cannot be written safely as a quoted label.
 */
function locate(path: readonly string[], params: SqlParams): Field | undefined {
  let doc = "e.value";
  let jsonPath = "$";
  let indexSegments = 0;
  for (const seg of path) {
    if (seg.includes('"') || seg.includes("\\") || !seg.isWellFormed()) return undefined;
    if (ARRAY_INDEX.test(seg)) {
      if (seg.length > 9 || ++indexSegments > MAX_INDEX_SEGMENTS) return undefined;
      const asIndex = params.bind(`${jsonPath}[${seg}]`);
      const asLabel = params.bind(`${jsonPath}."${seg}"`);
      doc = `coalesce(${doc} -> ${asIndex}, ${doc} -> ${asLabel})`;
      jsonPath = "$";
    } else {
      jsonPath += `."${seg}"`;
    }
  }
  const p = params.bind(jsonPath);
  return {
    type: `coalesce(json_type(${doc}, ${p}), '')`,
    value: `json_extract(${doc}, ${p})`,
    each: `json_each(${doc}, ${p})`,
  };
}

/** An SQL boolean (never NULL) for "the field deep-equals `operand`", or `undefined`. */
function equals(field: Field, operand: JsonValue, params: SqlParams): string | undefined {
  if (operand === null) return `(${field.type} = 'null')`;
  if (operand === true) return `(${field.type} = 'true')`;
  if (operand === false) return `(${field.type} = 'false')`;
  if (typeof operand === "number") {
    return `(${field.type} IN ${NUMBER_TYPES} AND CAST(${field.value} AS REAL) = ${
      params.bind(operand)
    })`;
  }
  if (typeof operand === "string") {
    if (!operand.isWellFormed()) return undefined;
    return `(${field.type} = 'text' AND ${field.value} = ${params.bind(operand)})`;
  }
  return undefined;
}

/** "One of `items`", grouped by type so large lists stay one IN (...) per type. */
function oneOf(field: Field, items: readonly JsonValue[], params: SqlParams): string | undefined {
  if (items.length > MAX_IN_ITEMS) return undefined;
  const literalTypes = new Set<string>();
  const numbers: string[] = [];
  const strings: string[] = [];
  for (const item of items) {
    if (item === null) literalTypes.add("'null'");
    else if (item === true) literalTypes.add("'true'");
    else if (item === false) literalTypes.add("'false'");
    else if (typeof item === "number") numbers.push(params.bind(item));
    else if (typeof item === "string") {
      if (!item.isWellFormed()) return undefined;
      strings.push(params.bind(item));
    } else return undefined;
  }
  const alternatives: string[] = [];
  if (literalTypes.size > 0) {
    alternatives.push(`${field.type} IN (${[...literalTypes].join(", ")})`);
  }
  if (numbers.length > 0) {
    alternatives.push(
      `(${field.type} IN ${NUMBER_TYPES} AND CAST(${field.value} AS REAL) IN (${
        numbers.join(", ")
      }))`,
    );
  }
  if (strings.length > 0) {
    alternatives.push(`(${field.type} = 'text' AND ${field.value} IN (${strings.join(", ")}))`);
  }
  return alternatives.length === 0 ? "0" : `(${alternatives.join(" OR ")})`;
}

/** "The field is an array with an item equal to `operand`, or a string containing it." */
function contains(field: Field, operand: JsonValue, params: SqlParams): string | undefined {
  let item: string;
  if (operand === null) item = "j.type = 'null'";
  else if (operand === true) item = "j.type = 'true'";
  else if (operand === false) item = "j.type = 'false'";
  else if (typeof operand === "number") {
    item = `j.type IN ${NUMBER_TYPES} AND CAST(j.atom AS REAL) = ${params.bind(operand)}`;
  } else if (typeof operand === "string") {
    if (!operand.isWellFormed()) return undefined;
    const s = params.bind(operand);
    return `(CASE ${field.type} WHEN 'text' THEN instr(${field.value}, ${s}) > 0 ` +
      `WHEN 'array' THEN EXISTS (SELECT 1 FROM ${field.each} AS j WHERE j.type = 'text' AND j.atom = ${s}) ` +
      `ELSE 0 END)`;
  } else return undefined;
  return `(${field.type} = 'array' AND EXISTS (SELECT 1 FROM ${field.each} AS j WHERE ${item}))`;
}

const COMPARATORS = { lt: "<", lte: "<=", gt: ">", gte: ">=" } as const;
/** Matches JSON text that may hold a lone surrogate escape (`\ud800`..`\udfff`). */
const LONE_SURROGATE_GLOB = "*\\u[dD][89a-fA-F]*";

function clauseSql(
  clause: NormalizedQuery["where"][number],
  params: SqlParams,
): string | undefined {
  const field = locate(clause.path, params);
  if (field === undefined) return undefined;
  const operand = clause.value;
  switch (clause.op) {
    case "exists":
      return (operand ?? true) ? `(${field.type} <> '')` : `(${field.type} = '')`;
    case "eq":
      return equals(field, operand!, params);
    case "ne": {
      const eq = equals(field, operand!, params);
      return eq === undefined ? undefined : `(NOT ${eq})`;
    }
    case "in":
      return oneOf(field, operand as JsonValue[], params);
    case "contains":
      return contains(field, operand!, params);
    case "lt":
    case "lte":
    case "gt":
    case "gte": {
      const op = COMPARATORS[clause.op];
      if (typeof operand === "number") {
        return `(${field.type} IN ${NUMBER_TYPES} AND CAST(${field.value} AS REAL) ${op} ${
          params.bind(operand)
        })`;
      }
      if (typeof operand === "string") {
        if (!operand.isWellFormed()) return undefined;
        return `(${field.type} = 'text' AND ${field.value} ${op} ${params.bind(operand)})`;
      }
      return "0";
    }
    default:
      return undefined;
  }
}

/** Compile a query to one SELECT, or `undefined` when some part must be left to the core. */
function compileQuery(
  q: NormalizedQuery,
  now: number,
): { sql: string; params: SQLInputValue[]; ordersStrings: boolean } | undefined {
  const params = new SqlParams();
  const where = boundsWhere(byteBounds({ prefix: q.prefix }), (b) => params.bind(b), "e.key");
  where.push(`(e.expires_at IS NULL OR e.expires_at > ${params.bind(now)})`);
  for (const clause of q.where) {
    const sql = clauseSql(clause, params);
    if (sql === undefined) return undefined;
    where.push(sql);
  }
  const order: string[] = [];
  for (const o of q.orderBy) {
    const field = locate(o.path, params);
    if (field === undefined) return undefined;
    const dir = o.direction === "desc" ? "DESC" : "ASC";
    // Rank: missing < null < false < true < number < string < array < object.
    order.push(
      `CASE ${field.type} WHEN '' THEN 0 WHEN 'null' THEN 1 WHEN 'false' THEN 2 ` +
        `WHEN 'true' THEN 3 WHEN 'integer' THEN 4 WHEN 'real' THEN 4 WHEN 'text' THEN 5 ` +
        `WHEN 'array' THEN 6 ELSE 7 END ${dir}`,
      `CASE ${field.type} WHEN 'integer' THEN CAST(${field.value} AS REAL) ` +
        `WHEN 'real' THEN ${field.value} WHEN 'text' THEN ${field.value} END ${dir}`,
    );
  }
  order.push("e.key ASC");
  const limit = params.bind(q.limit === Infinity ? -1 : q.limit);
  const offset = params.bind(q.offset);
  return {
    sql: `SELECT e.key, e.value, e.version, e.expires_at FROM flowstate_entries AS e WHERE ${
      where.join(" AND ")
    } ORDER BY ${order.join(", ")} LIMIT ${limit} OFFSET ${offset}`,
    params: params.values,
    ordersStrings: q.orderBy.length > 0 ||
      q.where.some((c) => c.op in COMPARATORS && typeof c.value === "string"),
  };
}

/**
 * The sqlite plugin: `openStore({ plugin: "sqlite", path })`.
 *
 * @example
 * ```ts
 * import { openStore } from "@flowstate/core";
 *
 * const dir = await Deno.makeTempDir();
 * const store = await openStore({ plugin: "sqlite", path: `${dir}/state.db` });
 * await store.set(["flow", "counter", "count"], 1);
 * const entry = await store.get<number>(["flow", "counter", "count"]);
 * if (!(entry?.value === 1)) throw new Error("unexpected result");
 * if (!(store.capabilities.multiProcess)) throw new Error("unexpected result");
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
const sqlite: Plugin<SqliteOptions> = definePlugin({
  name: "sqlite",
  description: "one SQLite file (node:sqlite, WAL); durable, multi-process, native queries",
  optionsSchema: sqliteOptions,
  open(options, context) {
    const path = options.path !== undefined
      ? resolve(context.baseDir, options.path)
      : join(context.home, `${context.storeName}.db`);
    return SqliteDriver.open(path, {
      durability: options.durability,
      busyTimeout: options.busyTimeout,
      cacheSize: options.cacheSize,
      storeName: context.storeName,
    });
  },
});
export default sqlite;
