/**
 * The postgres plugin's tables: `<table>` holds the entries and
 * `<table>_meta` the format and schema version. `setUp()` checks them
 * (read-only first, so a table it refuses is never modified) and creates
 * them under the table's advisory lock (and a new schema under the schema's).
 *
 * @module
 */
import type { Sql } from "postgres";
import { StoreCorruptError, StoreMissingError } from "../../src/errors.ts";
import { codeOf } from "./errors.ts";

/** The schema version of a new store. */
const SCHEMA_VERSION = 1;
/**
 * The newest schema version this code reads: 2 is 1 plus the change feed's
 * table (`<table>_feed`), set when the store's feed first moves there (see
 * `feed.ts`), so that older code, which keeps the feed in the key space,
 * refuses the store instead of starting a second feed.
 */
export const NEWEST_SCHEMA_VERSION = 2;
const FORMAT = "flowstate.postgres";
/**
 * Advisory lock class of every Flowstate table lock (the object id is the
 * hash of `schema.table`) and schema lock (the hash of the schema's name).
 */
export const LOCK_CLASS = 0x464c5354; // "FLST"

/**
 * The first statement of a transaction that sets a store up (creates its tables, functions or
 * indexes, moves its feed) under an advisory lock: processes opening at once wait for each other
 * there however long the first one takes (an index build can take minutes), not the store's
 * `lockTimeout`, which applies to reads and writes.
 */
export const SETUP_WAITS = "SET LOCAL lock_timeout = 0";

/** A quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

interface SetUpTarget {
  schema: string;
  table: string;
  qualified: string;
  location: string;
  what: string;
  /** The store's name, for a missing table. */
  storeName?: string;
  /** Create nothing: a missing table throws StoreMissingError. */
  mustExist?: boolean;
}

/** Sql or a transaction: what setUp's helpers need. */
type Queryable = Pick<Sql, "unsafe">;

/** What {@linkcode setUp} found or made. */
export interface SetUpResult {
  /** The table's advisory lock id. */
  lockId: number;
  /**
   * Whether the table has the index of its expiring entries' keys
   * (`<table>_expiring`, see {@linkcode expiringIndexSql}): `false` only on a
   * table made before it existed that this role may not add it to.
   */
  expiringIndex: boolean;
  /** The store's schema version (2: the change feed has its table, see `feed.ts`). */
  version: number;
}

/**
 * The partial index of the keys (and expiry) of the entries that expire:
 * `count` subtracts the expired entries of a key range with an index-only
 * scan of the range in it, as long as the store's expiring entries in that
 * range, not the whole table's.
 */
function expiringIndexSql(table: string, qualified: string): string {
  return `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${table}_expiring`)} ON ${qualified} ` +
    `(key, expires_at) WHERE expires_at IS NOT NULL`;
}

/**
 * Check (read-only first) that the table is a Flowstate table we can read;
 * create the schema, tables and indexes if they do not exist, under the
 * table's advisory lock so processes opening at once do not race (and add the
 * expiring entries' index to a table made before it existed, where this role
 * may). Resolves the table's advisory lock id, its schema version and whether that index is
 * there.
 */
export async function setUp(sql: Sql, target: SetUpTarget): Promise<SetUpResult> {
  const { schema, table, qualified, location, what } = target;
  const metaTable = `${quoteIdent(schema)}.${quoteIdent(`${table}_meta`)}`;
  const expiringIndex = `${quoteIdent(schema)}.${quoteIdent(`${table}_expiring`)}`;
  const inspect = async (q: Queryable) => {
    const [row] = await q.unsafe<{
      encoding: string;
      entries: boolean;
      meta: boolean;
      lock_id: number;
      schema: boolean;
      expiring: boolean;
    }[]>(
      `SELECT current_setting('server_encoding') AS encoding,
         to_regclass($1) IS NOT NULL AS entries, to_regclass($2) IS NOT NULL AS meta,
         hashtext($3) AS lock_id, EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $4) AS schema,
         EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = to_regclass($5) AND i.indrelid = to_regclass($1)) AS expiring`,
      [qualified, metaTable, `${schema}.${table}`, schema, expiringIndex],
    );
    return row;
  };
  let found = SCHEMA_VERSION;
  const readVersion = async (q: Queryable): Promise<void> => {
    const rows = await q.unsafe<{ key: string; value: string }[]>(
      `SELECT key, value FROM ${metaTable}`,
    );
    const meta = new Map(rows.map((r) => [r.key, r.value]));
    const raw = meta.get("schema_version");
    const version = raw !== undefined && /^[1-9]\d{0,8}$/.test(raw) ? Number(raw) : NaN;
    if (meta.get("format") !== FORMAT || Number.isNaN(version)) {
      throw new StoreCorruptError(
        `${what}: ${schema}.${table}_meta has no valid format and schema_version (format ${
          JSON.stringify(meta.get("format") ?? null)
        }, schema_version ${JSON.stringify(raw ?? null)}); nothing was changed`,
        { path: location },
      );
    }
    if (version > NEWEST_SCHEMA_VERSION) {
      throw new StoreCorruptError(
        `${what}: ${location} has schema version ${version}, but this version of Flowstate ` +
          `reads schema versions up to ${NEWEST_SCHEMA_VERSION} only; upgrade Flowstate to open it ` +
          `(nothing was changed)`,
        { path: location, reason: "newer" },
      );
    }
    found = version;
  };
  const refuse = (state: { entries: boolean; meta: boolean }): StoreCorruptError =>
    new StoreCorruptError(
      state.entries
        ? `${what}: table ${schema}.${table} exists but is not a Flowstate table (there is no ` +
          `${schema}.${table}_meta); nothing was changed: choose another "table" option`
        : `${what}: ${schema}.${table}_meta exists but table ${schema}.${table} does not; ` +
          `nothing was changed: restore the table or drop ${schema}.${table}_meta`,
      { path: location, reason: state.entries ? "foreign" : "damaged" },
    );
  const check = async (q: Queryable, state: { entries: boolean; meta: boolean }) => {
    if (state.entries !== state.meta) throw refuse(state);
    if (state.meta) await readVersion(q);
  };

  // Read-only inspection first, so a table we refuse is never modified.
  let state = await inspect(sql);
  if (state.entries !== state.meta) {
    // The two catalog lookups of one statement may each see a different catalog: a store that
    // another process is creating at this moment can look half-made. Look again under the
    // table's lock (taken by the creator for the whole creation): still read-only.
    state = await sql.begin(async (tx) => {
      await tx.unsafe(SETUP_WAITS);
      await tx.unsafe(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${state.lock_id})`);
      return await inspect(tx);
    });
  }
  if (state.encoding !== "UTF8") {
    throw new RangeError(
      `${what}: the database uses encoding ${state.encoding}; Flowstate needs a UTF8 database`,
    );
  }
  await check(sql, state);
  const lockId = state.lock_id;
  if (state.meta) {
    if (state.expiring) return { lockId, expiringIndex: true, version: found };
    return {
      lockId,
      expiringIndex: await addExpiringIndex(sql, target, lockId),
      version: found,
    };
  }
  if (target.mustExist) {
    const store = target.storeName ?? "postgres";
    throw new StoreMissingError(
      `Store "${store}" does not exist yet: there is no table ${schema}.${table} at ${location}`,
      { store, address: location },
    );
  }
  await sql.begin(async (tx) => {
    await tx.unsafe(SETUP_WAITS);
    await tx.unsafe(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${state.lock_id})`);
    const now = await inspect(tx);
    // Another process made it meanwhile: its version, as read.
    await check(tx, now);
    if (now.meta) return;
    if (!now.schema) {
      // Stores on other tables of the same new schema may be opening at this moment, each
      // under its own table's lock: creating the schema under a lock of the schema's own keeps
      // two CREATE SCHEMA IF NOT EXISTS from racing (the loser fails on a unique index).
      await tx.unsafe(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext($1))`, [schema]);
      await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    }
    await tx.unsafe(
      `CREATE TABLE ${metaTable} (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
    );
    /*
     * key: encodeKey() bytes; bytea compares with memcmp, which is key order.
     * value: JSON text as the core gives it (jsonb cannot hold \u0000 or lone
     * surrogates). expires_at: a JS number of ms (float8 round-trips every one).
     */
    await tx.unsafe(
      `CREATE TABLE ${qualified} (key BYTEA PRIMARY KEY, value TEXT NOT NULL, ` +
        `version TEXT NOT NULL, expires_at DOUBLE PRECISION)`,
    );
    await tx.unsafe(
      `CREATE INDEX ${quoteIdent(`${table}_expires_at`)} ON ${qualified} (expires_at) ` +
        `WHERE expires_at IS NOT NULL`,
    );
    await tx.unsafe(expiringIndexSql(table, qualified));
    await tx.unsafe(`INSERT INTO ${metaTable} (key, value) VALUES ($1, $2), ($3, $4)`, [
      "format",
      FORMAT,
      "schema_version",
      String(SCHEMA_VERSION),
    ]);
  });
  return { lockId, expiringIndex: true, version: found };
}

/**
 * Old tables up to this size get the expiring entries' index at open (a build
 * of a few tens of milliseconds); larger ones count without it until an
 * operator creates it (`CREATE INDEX CONCURRENTLY`, see docs/store.md).
 */
const EXPIRING_INDEX_AT_OPEN_MAX_BYTES = 32 * 1024 * 1024;
/** How long adding the index at open waits for the table's lock before giving up. */
const EXPIRING_INDEX_LOCK_TIMEOUT = "100ms";
/**
 * Errors that make adding the index at open give up (the store opens, and
 * counts without it): insufficient privilege, read-only transaction, lock
 * not available (`lock_timeout`), deadlock, statement timeout or cancel.
 */
const EXPIRING_INDEX_GIVE_UP = new Set(["42501", "25006", "55P03", "40P01", "57014"]);

/**
 * Add the expiring entries' index to a table made before it existed, when it
 * can be done at once without holding anyone up: only where this role owns
 * the table on a writable server, only for a small table, only if no other
 * opener holds the table's lock (tried, never waited for), and waiting at
 * most `EXPIRING_INDEX_LOCK_TIMEOUT` for writers to let go of the table.
 * Otherwise, or on any of `EXPIRING_INDEX_GIVE_UP`, `false`: `count` is
 * correct without it, only slower where many entries have expired.
 */
async function addExpiringIndex(sql: Sql, target: SetUpTarget, lockId: number): Promise<boolean> {
  const [can] = await sql.unsafe<{ ok: boolean }[]>(
    `SELECT pg_has_role(c.relowner, 'USAGE') AND NOT pg_is_in_recovery() ` +
      `AND current_setting('transaction_read_only') = 'off' ` +
      `AND pg_relation_size(c.oid) <= $2 AS ok FROM pg_class c WHERE c.oid = to_regclass($1)`,
    [target.qualified, EXPIRING_INDEX_AT_OPEN_MAX_BYTES],
  );
  if (can?.ok !== true) return false;
  try {
    return await sql.begin(async (tx) => {
      await tx.unsafe(`SET LOCAL lock_timeout = '${EXPIRING_INDEX_LOCK_TIMEOUT}'`);
      const [lock] = await tx.unsafe<{ got: boolean }[]>(
        `SELECT pg_try_advisory_xact_lock(${LOCK_CLASS}, ${lockId}) AS got`,
      );
      if (!lock.got) return false;
      await tx.unsafe(expiringIndexSql(target.table, target.qualified));
      return true;
    });
  } catch (err) {
    if (EXPIRING_INDEX_GIVE_UP.has(codeOf(err) ?? "")) return false;
    throw err;
  }
}
