/**
 * The sqlite plugin's file: its tables, and how a file is checked and set up
 * when a store opens it. Nothing here writes to a file that it refuses.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { StoreCorruptError } from "../../src/errors.ts";
import { syncDir, tempPathFor } from "../../src/_fs.ts";
import { dirname } from "../../src/_path.ts";
import { isBusy } from "./errors.ts";

/** The schema version of a new file. */
const SCHEMA_VERSION = 1;
/**
 * The newest schema version this code reads: 2 is 1 plus the change feed's
 * table (`flowstate_feed`), set when a file's feed first moves there (see
 * `feed.ts`), so that older code, which keeps the feed in the key space,
 * refuses the file instead of starting a second feed.
 */
export const NEWEST_SCHEMA_VERSION = 2;
const FORMAT = "flowstate.sqlite";
const SQLITE_MAGIC = "SQLite format 3\0";

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

/**
 * What the first bytes of `path` say it is: `"absent"`, `"empty"` (0 bytes),
 * `"zeros"` (its first bytes, where SQLite's header goes, are all NUL: what a
 * crash leaves on some file systems), `"sqlite"` (SQLite's header) or
 * `"other"`.
 */
export async function probeFile(
  path: string,
): Promise<"absent" | "empty" | "zeros" | "sqlite" | "other"> {
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
    if (header.subarray(0, got).every((byte) => byte === 0)) return "zeros";
    const text = String.fromCharCode(...header.subarray(0, got));
    return text === SQLITE_MAGIC ? "sqlite" : "other";
  } finally {
    file.close();
  }
}

/**
 * The error for a store file that lost its content: 0 bytes, or NUL bytes
 * where SQLite's header goes. Flowstate never leaves a store file so (see
 * {@linkcode createFile}), so such a file is a store whose data is gone, not
 * one being created: it is refused and left untouched, never used as a new
 * store (new writes on top would hide the loss).
 */
export function lostContentError(
  path: string,
  kind: "empty" | "zeros",
  what: string,
  storeName: string,
): StoreCorruptError {
  const found = kind === "empty"
    ? "is empty (0 bytes)"
    : `holds only NUL bytes where SQLite's header should be (what a crash leaves on some file ` +
      `systems)`;
  return new StoreCorruptError(
    `${what}: ${path} ${found}: a store file that lost its content (Flowstate never leaves one ` +
      `so), not a new store; the file was left untouched. Restore a backup into the store ` +
      `(\`flowstate stores repair ${storeName}\` sets the file aside, then \`flowstate restore ` +
      `--store ${storeName} <file>\`), or remove ${path} to start an empty store`,
    { path },
  );
}

/**
 * Create a new store file at `path`, complete: the database and its schema
 * are written to a temp file beside it (`.<name>.tmp-<pid>-<hex>`, which gc
 * removes if a crash leaves it), which is then hard-linked into place. So
 * `path` never exists empty or half set up, whatever kills the process, and
 * an empty file there is a store that lost its content. Resolves `false`
 * (and creates nothing) where the file system has no hard links: the caller
 * then creates the file in place, as SQLite does. If another process created
 * `path` meanwhile, its file is kept and this one discarded.
 */
export async function createFile(
  path: string,
  what: string,
  busyTimeout: number,
): Promise<boolean> {
  const temp = tempPathFor(path);
  try {
    const db = new DatabaseSync(temp);
    try {
      db.exec(`PRAGMA busy_timeout = ${busyTimeout}`);
      db.exec("PRAGMA synchronous = FULL");
      await setUp(db, path, what, busyTimeout);
    } finally {
      // The last connection's close checkpoints the WAL into the file (fsynced) and removes it.
      db.close();
    }
    try {
      await Deno.link(temp, path);
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) return true;
      if (err instanceof Deno.errors.NotSupported || err instanceof Deno.errors.PermissionDenied) {
        return false;
      }
      throw err;
    }
    await syncDir(dirname(path));
    return true;
  } finally {
    for (const suffix of ["", "-wal", "-shm", "-journal"]) {
      await Deno.remove(temp + suffix).catch(() => {});
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Read-only inspection of an open database: `"flowstate"` when it is a
 * Flowstate store this code reads, `"empty"` when it has no tables; throws a
 * {@linkcode StoreCorruptError} for anything else (another application's
 * database, a newer schema). Writes nothing.
 */
export function checkSchema(db: DatabaseSync, path: string, what: string): "flowstate" | "empty" {
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
    if (version > NEWEST_SCHEMA_VERSION) {
      throw new StoreCorruptError(
        `${what}: ${path} has schema version ${version}, but this version of Flowstate reads ` +
          `schema versions up to ${NEWEST_SCHEMA_VERSION} only; upgrade Flowstate to open it ` +
          `(the file was left untouched)`,
        { path, reason: "newer" },
      );
    }
  };
  const foreign = (names: string[]): StoreCorruptError =>
    new StoreCorruptError(
      `${what}: ${path} is a SQLite database but not a Flowstate store (it has tables ${
        names.slice(0, 5).join(", ")
      } and no flowstate_meta); the file was left untouched: point "path" at a new file`,
      { path, reason: "foreign" },
    );
  const names = tables();
  if (names.includes("flowstate_meta")) {
    readVersion();
    return "flowstate";
  }
  if (names.length > 0) throw foreign(names);
  return "empty";
}

/** Check (read-only first) that the file is a Flowstate store we can read; create the schema if new. */
export async function setUp(
  db: DatabaseSync,
  path: string,
  what: string,
  busyTimeout: number,
): Promise<void> {
  // Read-only inspection first, so a file we refuse is never modified.
  const found = checkSchema(db, path, what);

  // Only possible before the first table exists (and outside a transaction):
  // lets compact() hand free pages back with an incremental vacuum.
  if (found === "empty") db.exec("PRAGMA auto_vacuum = INCREMENTAL");

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

  if (found === "flowstate") return;
  db.exec("BEGIN IMMEDIATE");
  try {
    // Another process may have set it up meanwhile: check again, under the write lock.
    if (checkSchema(db, path, what) === "empty") {
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
