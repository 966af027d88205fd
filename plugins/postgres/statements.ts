/**
 * The SQL of the postgres driver's reads and writes on one table, and the
 * write plan a commit's mutations become (several entries travel as
 * `unnest` arrays of hex keys, so a batch is one statement).
 *
 * @module
 */
import type { ClearRange, Mutation } from "../../src/store/driver.ts";
import { byteBounds, encodeKey } from "../../src/store/keys.ts";
import { boundsWhere } from "../_sql/bounds.ts";
import { LOCK_CLASS } from "./schema.ts";
import { FEED_TABLE_COLUMNS, feedHeadSql } from "./feed.ts";
import { FEED_HEAD } from "../../src/store/feed.ts";
import type { Key } from "../../src/store/types.ts";

/** Rows one purge statement deletes at most. */
export const PURGE_BATCH_SIZE = 1000;

/** The condition of a live entry; `$NOW` stands for the placeholder of `now`. */
export const LIVE = "(expires_at IS NULL OR expires_at > $NOW::float8)";

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Hex text of bytes: keys travel in arrays as hex text and are `decode(…, 'hex')`d in SQL. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]];
  return out;
}

/** Mutations reduced to the last write per key, as sorted arrays for `unnest`. */
export interface WritePlan {
  setKeys: string[];
  setValues: string[];
  setExpires: (number | null)[];
  deleteKeys: string[];
  /** The single mutation, when there is exactly one (a cheaper statement). */
  single?: { mutation: Exclude<Mutation, { type: "clear" }>; key: Uint8Array };
  /** Without `single`: every key written (hex), in the order of its last write. */
  order?: string[];
}

/**
 * The SQL condition of a key range, with its parameters numbered from
 * `first`: `key >= $n` / `key > $n` / `key < $n`, or `true` for every key.
 */
export function rangeWhere(
  range: ClearRange,
  first: number,
): { where: string; params: Uint8Array[] } {
  const params: Uint8Array[] = [];
  const where = boundsWhere(
    byteBounds(range),
    (bytes) => `$${first + params.push(bytes) - 1}::bytea`,
  );
  return { where: where.length === 0 ? "true" : where.join(" AND "), params };
}

/** The write plan of mutations (none of them a range delete). */
export function planWrites(mutations: readonly Exclude<Mutation, { type: "clear" }>[]): WritePlan {
  const plan: WritePlan = { setKeys: [], setValues: [], setExpires: [], deleteKeys: [] };
  if (mutations.length === 1) {
    plan.single = { mutation: mutations[0], key: encodeKey(mutations[0].key) };
    return plan;
  }
  // A later write to the same key wins; one row per key also keeps
  // INSERT … ON CONFLICT from touching a row twice.
  const last = new Map<string, Mutation>();
  for (const m of mutations) {
    const hex = toHex(encodeKey(m.key));
    last.delete(hex);
    last.set(hex, m);
  }
  plan.order = [...last.keys()];
  // Sorted, so concurrent batches lock rows in the same order (no deadlocks).
  for (const hex of [...plan.order].sort()) {
    const m = last.get(hex)!;
    if (m.type === "set") {
      plan.setKeys.push(hex);
      plan.setValues.push(m.value);
      plan.setExpires.push(m.expiresAt);
    } else {
      plan.deleteKeys.push(hex);
    }
  }
  return plan;
}

/** The SQL text of one store's statements (its table name is part of the text). */
export interface Statements {
  get: string;
  getMany: string;
  /** Takes its key's lock itself. */
  setOne: string;
  /** After `keyLocks`, in the same transaction. */
  deleteOne: string;
  /** $1 delete keys, $2 set keys, $3 values, $4 expiries, $5 version (after `keyLocks`). */
  write: string;
  /** As `write` with no deletes, taking its keys' locks itself (one statement). */
  upsertMany: string;
  /** $1 check keys, $2 check versions, $3 now, then as `write` shifted by 3. */
  checkedWrite: string;
  /**
   * As `checkedWrite`, plus the change feed's entries in its table (after
   * `keyLocks` of the written keys and of {@linkcode FEED_HEAD_LOCK}): $9
   * the written keys (hex) in the order of their last write, $10 the actor
   * (JSON), $11 the NOTIFY channel. Reads each written key's live version
   * and the feed's head, and writes the data, one entry per changed key
   * (numbered on from the head), the feed's `since` (first entry) and the
   * NOTIFY only if every check holds. One row: `failed` (the failed
   * checks' numbers, `null`: none) and `notified` (1 when entries were
   * written).
   */
  feedWrite: string;
  /**
   * The body of the store's feed-commit function (see {@linkcode feedFunctionDdl}):
   * `feedWrite`'s parameters as $1 … $11, $12 the keys to lock (hex). Takes
   * the locks, then (a later statement, so a fresh snapshot that sees every
   * commit that held them before) runs `feedWrite` and returns `failed`.
   */
  feedBody: string;
  /**
   * The body of the store's plain-set feed-commit function (see
   * {@linkcode feedSetFunctionDdl}): one set with no checks (the common
   * commit), as `feedBody` would write it, from scalar parameters (cheaper
   * to send and to read than `feedBody`'s arrays): $1 the key, $2 the value,
   * $3 the version, $4 the expiry, $5 now, $6 the actor (JSON), $7 the NOTIFY
   * channel. Takes the key's lock and the head's, then (a fresh snapshot)
   * writes the value and its entry in one statement.
   */
  feedSetBody: string;
  /** As `feedWrite` after `tryKeyLocks`: a lock not had fails it with check number 0. */
  claimFeedWrite: string;
  /**
   * The body of the store's commit function (see {@linkcode commitFunctionDdl}):
   * `checkedWrite`'s parameters as $1 … $8, $9 the keys to lock (hex), $10
   * whether to try the locks (`tryKeyLocks`, inside a claim's transaction)
   * rather than wait for them (`keyLocks`). Takes the locks, then (a later
   * statement, so a fresh snapshot that sees every commit that held them
   * before) checks and writes as `checkedWrite` (`claimWrite` when tried) and
   * returns the failed checks' numbers, 0 first when a tried lock was not
   * had, or `NULL` when none failed.
   */
  commitBody: string;
  /**
   * The body of the store's claim-read function (see
   * {@linkcode CLAIM_READ_FUNCTION}): $1 the key the candidates come after
   * (the prefix's, then the last one held), $2 the prefix's upper bound, $3
   * now, $4 how many at most, $5 the companions' prefix (encoded; `NULL`:
   * none) and $6 the field naming a candidate's companion (UTF-8). Takes the
   * table's lock (shared) and sets {@linkcode INDEX_PLANS} for the rest of
   * the transaction, then holds and answers the live candidates in key order
   * (`FOR UPDATE SKIP LOCKED`) with their companion entries, as the claim's
   * statement with the lock before it does.
   */
  claimReadBody: string;
  /** $1 check keys, $2 check versions, $3 now. */
  check: string;
  /** The store's lock, exclusive (for commits with range deletes). */
  lock: string;
  /**
   * The store's lock shared, then every key's lock (exclusive, in hash
   * order); $1 the keys (hex). What a commit takes before its statement.
   * Also turns sequential scans off for the rest of the transaction (see
   * {@linkcode INDEX_PLANS}).
   */
  keyLocks: string;
  /**
   * As `keyLocks`, but never waiting for a key's lock: each is tried
   * (`pg_try_advisory_xact_lock`), and the transaction-local setting
   * {@linkcode CLAIM_LOCKS_SETTING} says whether every one was had (`t`) or
   * not (`f`); $1 the keys (hex). What a claim's commit takes before
   * `claimWrite`: a claim holds its candidates' rows, so waiting for a key's
   * lock while another commit holding it waits for one of those rows would
   * be a deadlock. Turns sequential scans off as `keyLocks` does.
   */
  tryKeyLocks: string;
  /**
   * As `checkedWrite`, after `tryKeyLocks` in the same transaction: writes
   * nothing, and answers a row with `i` = 0 (before the failed checks), when
   * a lock was not had.
   */
  claimWrite: string;
  /** A condition that takes the store's shared lock (for unchecked writes). */
  sharedLock: string;
  /** Lone compare-and-set, set over a live version: $1 key, $2 value, $3 version, $4 expiry, $5 checked version, $6 now. */
  casUpdate: string;
  /** Lone compare-and-set, set where no live entry is: $1 key, $2 value, $3 version, $4 expiry, $5 now. */
  casInsert: string;
  /** Lone compare-and-set, delete of a live version: $1 key, $2 checked version, $3 now. */
  casDelete: string;
  purge: string;
}

/**
 * The advisory lock of one key of a table: the two-`int4` space (class,
 * object) holds the table locks, the one-`bigint` space these, so they
 * never collide with a table lock. `hex` is an SQL expression of the key's
 * hex text.
 */
export function keyLockId(hex: string, lockId: number): string {
  return `hashtextextended(${hex}, ${lockId})`;
}

/**
 * The transaction-local setting in which `tryKeyLocks` leaves whether it
 * had every lock (`t`) or not (`f`), for the `claimWrite` after it.
 */
export const CLAIM_LOCKS_SETTING = "flowstate.claim_locks";

/**
 * The version of the feed-commit function's body, part of its name (a new body, a new name):
 * 2 writes the feed's table (`<table>_feed`), 1 wrote the feed in the key space.
 */
const FEED_FUNCTION_VERSION = 2;

/** The SQL types of `checkedWrite`'s parameters (see `checkedWriteParams` in driver.ts), in order. */
const CHECKED_WRITE_TYPES = [
  "text[]",
  "text[]",
  "float8",
  "text[]",
  "text[]",
  "text[]",
  "float8[]",
  "text",
];

/** The version of the commit and claim-read functions' bodies, part of their names (a new body, a new name). */
const STORE_FUNCTION_VERSION = 1;

/**
 * The `search_path` of the store's connections and functions: the built-ins
 * first, then temporary objects, and no schema anyone else may create in.
 * Every name the store's statements use is schema-qualified or a built-in,
 * so a function or operator planted in a schema on a role's or database's
 * `search_path` (`public`, say: an overload of a built-in that takes the
 * arguments more exactly, CVE-2018-1058) never runs with the store role's
 * privileges.
 */
export const PINNED_SEARCH_PATH = "pg_catalog, pg_temp";
/** The `SET` clause of {@linkcode PINNED_SEARCH_PATH}, first of every store function's. */
const SEARCH_PATH_SETTING = `search_path=${PINNED_SEARCH_PATH}`;

/**
 * One of a table's PL/pgSQL functions, as the store creates it: what its
 * `CREATE OR REPLACE FUNCTION` says and what `pg_proc` then holds, so that a
 * function found in the database is called only if it is exactly this one
 * (see `#createFunctions` in driver.ts).
 */
export interface FunctionSpec {
  /** The SQL types of its parameters, in order: its signature. */
  types: readonly string[];
  /** What it returns. */
  returns: string;
  /** Its `SET` clauses as `pg_proc.proconfig` lists them (`name=value`), in order. */
  settings: readonly string[];
  /** Its body (PL/pgSQL). */
  body: string;
}

/**
 * `CREATE OR REPLACE FUNCTION fn(…)` of `spec`; `fn` is the qualified,
 * quoted name.
 *
 * @example
 * ```ts
 * import { functionDdl } from "./statements.ts";
 * import assert from "node:assert/strict";
 * const ddl = functionDdl("fn", { types: ["int"], returns: "int", settings: [], body: "BEGIN RETURN $1; END" });
 * assert.match(ddl, /^CREATE OR REPLACE FUNCTION fn\(int\) RETURNS int LANGUAGE plpgsql/);
 * ```
 */
export function functionDdl(fn: string, spec: FunctionSpec): string {
  if (spec.body.includes("$fn$")) throw new TypeError("unreachable: a body holds $fn$");
  const settings = spec.settings.map((s) => {
    const at = s.indexOf("=");
    return ` SET ${s.slice(0, at)} = ${s.slice(at + 1)}`;
  }).join("");
  return `CREATE OR REPLACE FUNCTION ${fn}(${spec.types.join(", ")}) RETURNS ${spec.returns} ` +
    `LANGUAGE plpgsql VOLATILE${settings} AS $fn$${functionSource(spec)}$fn$`;
}

/** The text `pg_proc.prosrc` holds for a function made by {@linkcode functionDdl} from `spec`. */
export function functionSource(spec: FunctionSpec): string {
  return `\n${spec.body}\n`;
}

/**
 * A condition, true when the JSON text `value` (a column) can be cast to
 * `json` and read with `->>`: it holds no `\u0000` (22P05 on `->>`) and no
 * escaped UTF-16 surrogate (`\ud800`…`\udfff`, any case: a lone one, as
 * `JSON.stringify` writes for an emoji cut in half, fails the cast, 22P02).
 * Never false for a value that would fail; true can be missed for one that
 * would not (an escaped backslash before `ud`, a surrogate pair): the core
 * then reads what the statement left out. Most values hold no `\u` at all
 * (JSON writes other characters as they are) and are decided by one search.
 * Only in a `CASE WHEN`, the one guard PostgreSQL evaluates first.
 *
 * @example
 * ```ts
 * import { jsonReadable } from "./statements.ts";
 * import assert from "node:assert/strict";
 * assert.match(jsonReadable("e.value"), /^\(position\('\\u' in e\.value\) = 0 OR /);
 * ```
 */
export function jsonReadable(value: string): string {
  return `(position('\\u' in ${value}) = 0 OR position('\\u0000' in ${value}) = 0 AND ` +
    `position('\\ud' in lower(${value})) = 0)`;
}

/** The names `format_type` gives the SQL types the specs use by another name. */
const TYPE_NAMES: Record<string, string> = { float8: "double precision", int: "integer" };

/** `type` (a spec's spelling, as `int[]`) as PostgreSQL's `format_type` writes it. */
function formatType(type: string): string {
  const base = type.replace(/(\[\])+$/, "");
  return `${TYPE_NAMES[base] ?? base}${type.slice(base.length)}`;
}

/**
 * What `pg_get_function_arguments` and `pg_get_function_result` answer for
 * a function made by {@linkcode functionDdl} from `spec`: its parameters
 * (no names, no defaults) and its result, which the trust check compares.
 *
 * @example
 * ```ts
 * import { functionShape } from "./statements.ts";
 * import assert from "node:assert/strict";
 * const shape = functionShape({
 *   types: ["bytea", "float8"],
 *   returns: "TABLE(key bytea, n int[])",
 *   settings: [],
 *   body: "BEGIN END",
 * });
 * assert.deepEqual(shape, {
 *   args: "bytea, double precision",
 *   result: "TABLE(key bytea, n integer[])",
 * });
 * ```
 */
export function functionShape(spec: FunctionSpec): { args: string; result: string } {
  const table = /^TABLE\((.*)\)$/.exec(spec.returns);
  const result = table === null
    ? formatType(spec.returns)
    : `TABLE(${
      table[1].split(", ").map((column) => {
        const at = column.indexOf(" ");
        return `${column.slice(0, at)} ${formatType(column.slice(at + 1))}`;
      }).join(", ")
    })`;
  return { args: spec.types.map(formatType).join(", "), result };
}

/**
 * `to_regprocedure`'s argument for the function `fn` (qualified, quoted) of
 * `spec`: its name and parameter types, which no other function of the
 * schema can have.
 */
export function functionSignature(fn: string, spec: FunctionSpec): string {
  return `${fn}(${spec.types.join(", ")})`;
}

/**
 * One of a table's functions besides the feed's (see `Statements.commitBody`
 * and `Statements.claimReadBody`): its (unquoted) name from the table's,
 * what it is from its body, and the statement that calls it.
 */
export interface StoreFunction {
  /** The unquoted name for `table`: at most 48 + 13 characters, within PostgreSQL's 63. */
  name(table: string): string;
  /** The function with `body` (PL/pgSQL). */
  spec(body: string): FunctionSpec;
  /** The statement that calls `fn` with every parameter ($1 …). */
  call(fn: string): string;
}

/**
 * A {@linkcode StoreFunction} named `<table>_<suffix>_v1`, with parameters
 * of `types`, returning `returns`; `settings` are its `SET` clauses (as
 * `proconfig` lists them); `call` makes the calling statement from the call
 * expression.
 */
function storeFunction(
  suffix: string,
  types: readonly string[],
  returns: string,
  settings: readonly string[],
  call: (expr: string) => string,
): StoreFunction {
  return {
    name: (table) => `${table}_${suffix}_v${STORE_FUNCTION_VERSION}`,
    spec: (body) => ({ types, returns, settings, body }),
    call: (fn) => call(`${fn}(${types.map((t, i) => `$${i + 1}::${t}`).join(", ")})`),
  };
}

/**
 * The commit function (see `Statements.commitBody`): a checked commit as one
 * statement, autocommit (one round trip, no explicit transaction), or one
 * statement before a claim's `COMMIT`. Its calling statement answers the
 * failed checks' numbers as `failed`.
 *
 * @example
 * ```ts
 * import { COMMIT_FUNCTION } from "./statements.ts";
 * import assert from "node:assert/strict";
 * assert.equal(COMMIT_FUNCTION.name("jobs"), "jobs_commit_v1");
 * assert.match(COMMIT_FUNCTION.call("fn"), /\$10::boolean\) AS failed$/);
 * ```
 */
export const COMMIT_FUNCTION: StoreFunction = storeFunction(
  "commit",
  [...CHECKED_WRITE_TYPES, "text[]", "boolean"],
  "int[]",
  // Index plans (see INDEX_PLANS) and generic plans from the first call, as the feed-commit
  // function has them (its statement is the same join of `unnest`ed keys with the table).
  [SEARCH_PATH_SETTING, "enable_seqscan=off", "plan_cache_mode=force_generic_plan"],
  (expr) => `SELECT ${expr} AS failed`,
);

/**
 * The claim-read function (see `Statements.claimReadBody`): a claim's
 * table lock and candidate rows (with their companions) as one statement.
 *
 * @example
 * ```ts
 * import { CLAIM_READ_FUNCTION } from "./statements.ts";
 * import assert from "node:assert/strict";
 * assert.equal(CLAIM_READ_FUNCTION.name("jobs"), "jobs_claim_read_v1");
 * assert.match(CLAIM_READ_FUNCTION.call("fn"), /^SELECT \* FROM fn\(\$1::bytea/);
 * ```
 */
export const CLAIM_READ_FUNCTION: StoreFunction = storeFunction(
  "claim_read",
  ["bytea", "bytea", "float8", "int", "bytea", "bytea"],
  "TABLE(key bytea, value text, version text, expires_at float8, c_part text, c_value text, " +
    "c_version text, c_expires_at float8)",
  // Index plans (see INDEX_PLANS) are set by its body, for the rest of the claim's transaction
  // (`decide`'s reads too): a SET clause here would end with the call (a SET clause ends only
  // its own setting's changes).
  [SEARCH_PATH_SETTING],
  (expr) => `SELECT * FROM ${expr}`,
);

/**
 * The version of the plain-set feed-commit function's body, part of its name: 3 takes its locks
 * and queues its NOTIFY in one expression and writes with one `INSERT … VALUES` (less server
 * work per set than 2, same locks, head and rows); 2 is what Flowstate 0.4's first postgres
 * feed created, left in place for its processes (both number the feed the same way).
 */
const FEED_SET_FUNCTION_VERSION = 3;

/**
 * The key whose advisory lock (see {@linkcode keyLockId}) every commit that
 * writes the feed takes with its own keys' locks: they go one at a time, in
 * the order they got it, and hold it until their commit, so sequence numbers
 * are gap-free and follow commit order across processes. (The key-space
 * feed's head key: a key no user can write, and the lock the version-1
 * function took.)
 */
export const FEED_HEAD_LOCK: Key = FEED_HEAD;

/**
 * The (unquoted) name of the feed-commit function of `table`: at most 48 +
 * 15 characters, within PostgreSQL's 63.
 */
export function feedFunctionName(table: string): string {
  return `${table}_feed_commit_v${FEED_FUNCTION_VERSION}`;
}

/**
 * The (unquoted) name of the plain-set feed-commit function of `table` (see
 * `Statements.feedSetBody`): at most 48 + 12 characters.
 */
export function feedSetFunctionName(table: string): string {
  return `${table}_feed_set_v${FEED_SET_FUNCTION_VERSION}`;
}

/**
 * The plain-set feed-commit function (`fn(bytea, text, text, float8, float8, text, text) RETURNS
 * void`, see `Statements.feedSetBody`) with `body`.
 *
 * @example
 * ```ts
 * import { feedSetFunctionSpec } from "./statements.ts";
 * import assert from "node:assert/strict";
 * assert.equal(feedSetFunctionSpec("BEGIN END").returns, "void");
 * ```
 */
export function feedSetFunctionSpec(body: string): FunctionSpec {
  // Index plans (see INDEX_PLANS) as a setting of the function: made once per call with the
  // function's other state, cheaper than a set_config() in its body. Its statements are
  // simple: the planner's own choice between custom and generic plans is fine.
  return {
    types: FEED_SET_TYPES,
    returns: "void",
    settings: [SEARCH_PATH_SETTING, "enable_seqscan=off"],
    body,
  };
}

/** The SQL types of the feed-commit function's parameters, in order. */
const FEED_FUNCTION_TYPES = [
  ...CHECKED_WRITE_TYPES,
  "text[]",
  "text",
  "text",
  "text[]",
];

/**
 * The store's feed commit (`fn(…) RETURNS int[]`, see `Statements.feedBody`)
 * as one PL/pgSQL function with `body`, so a commit that writes the feed is
 * one autocommit statement (one round trip, no explicit transaction), whose
 * inner statements each take a fresh snapshot after the locks.
 *
 * @example
 * ```ts
 * import { feedFunctionSpec } from "./statements.ts";
 * import assert from "node:assert/strict";
 * assert.equal(feedFunctionSpec("BEGIN END").returns, "int[]");
 * ```
 */
export function feedFunctionSpec(body: string): FunctionSpec {
  return {
    types: FEED_FUNCTION_TYPES,
    returns: "int[]",
    // Generic plans from the first call: a custom plan of the feed statement costs more to
    // make (every call, as the planner keeps choosing one) than the statement costs to run.
    settings: [SEARCH_PATH_SETTING, "plan_cache_mode=force_generic_plan"],
    body,
  };
}

/** The SQL types of the plain-set feed-commit function's parameters, in order. */
const FEED_SET_TYPES = ["bytea", "text", "text", "float8", "float8", "text", "text"];

/**
 * One statement for several feed commits, one after the other in one
 * transaction, in the order they were issued: `keyLocks` (`locks`, with $1
 * every commit's keys) first, in the `FROM` clause, so every lock of the
 * batch is taken in one sorted pass before any commit runs (two batches never
 * wait for each other in a cycle); then, for each letter of `kinds` in turn,
 * a call of the plain-set function `setFn` (`s`: 7 parameters, column
 * `s<j>` for the j-th `s`) or of the feed-commit function `fn` (`g`: 12
 * parameters, the last one an empty lock list, column `g<j>`). The select
 * list is evaluated left to right, so a commit sees every commit issued
 * before it. Functions qualified and quoted.
 *
 * @example
 * ```ts
 * import { feedBatchCall } from "./statements.ts";
 * import assert from "node:assert/strict";
 * const text = feedBatchCall("SELECT 1", "set_fn", "fn", "gs");
 * assert.ok(text.indexOf("fn($2::text") < text.indexOf("set_fn($14::bytea"));
 * ```
 */
export function feedBatchCall(
  locks: string,
  setFn: string,
  fn: string,
  kinds: string,
): string {
  let n = 1;
  const counts = { s: 0, g: 0 };
  const calls = [...kinds].map((kind) => {
    const [name, types] = kind === "s" ? [setFn, FEED_SET_TYPES] : [fn, FEED_FUNCTION_TYPES];
    const column = kind === "s" ? `s${counts.s++}` : `g${counts.g++}`;
    return `${name}(${types.map((t) => `$${++n}::${t}`).join(", ")}) AS ${column}`;
  });
  return `SELECT ${calls.join(", ")} FROM (${locks}) AS l`;
}

/**
 * An SQL expression that turns sequential scans off for the rest of the
 * transaction (`SET LOCAL enable_seqscan = off`), evaluated by the first
 * statement of a commit's or a claim's transaction. Their later statements
 * address a few keys each (joins of `unnest`ed keys with the table): an
 * index lookup per key is always the plan to have. A plan made while the
 * table is small (a hash join over a sequential scan: cheaper by the
 * planner's estimate at a few pages) is cached by the connection and kept
 * as the table grows (until autovacuum's next analyze), and then reads the
 * whole table, dead rows too, for every commit. Only the planner's choice
 * changes, never a result; other statements (queries, reads) are not
 * affected.
 */
export const INDEX_PLANS = "set_config('enable_seqscan', 'off', true)";

/**
 * The statements of the table `t` (quoted), whose advisory lock id is
 * `lockId`; `names` are its feed's and meta tables (quoted).
 */
export function statements(
  t: string,
  lockId: number,
  names: { feed: string; meta: string },
): Statements {
  const shared = `(SELECT true FROM pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId}))`;
  // The table lock shared first (its function scan runs before the sort
  // returns a row), then each key's lock in hash order: two commits never
  // wait for each other in a cycle.
  // Each key's lock id once, in hash order, after the table's lock (shared).
  const lockIds = (keys: string) =>
    `(SELECT DISTINCT ${keyLockId("k", lockId)} AS h FROM unnest(${keys}) AS k ` +
    `CROSS JOIN pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId}) ORDER BY h) AS s`;
  const keyLocks = (keys: string) =>
    `SELECT count(pg_advisory_xact_lock(h))::int AS n FROM ${lockIds(keys)}`;
  // Tried, not waited for: whether every one was had (a failed try leaves the others held
  // until the transaction ends, which is harmless).
  const triedLocks = "COALESCE(bool_and(pg_try_advisory_xact_lock(h)), true)";
  // … in a transaction-local setting, for the `claimWrite` after it.
  const tryKeyLocks = `SELECT set_config('${CLAIM_LOCKS_SETTING}', CASE WHEN ` +
    `${triedLocks} THEN 't' ELSE 'f' END, true) AS ok, ${INDEX_PLANS} AS plans ` +
    `FROM ${lockIds("$1::text[]")}`;
  // One key (a bytea parameter): the shared table lock, then the key's.
  const oneKeyLock = (key: string) =>
    `(SELECT count(pg_advisory_xact_lock(${keyLockId(`encode(${key}, 'hex')`, lockId)})) >= 0 ` +
    `FROM pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId}))`;
  const upsert = "ON CONFLICT (key) DO UPDATE SET value = excluded.value, " +
    "version = excluded.version, expires_at = excluded.expires_at";
  const live = (n: number) => LIVE.replace("$NOW", `$${n}`);
  const deleteMany = (keys: number, guard: string) =>
    `DELETE FROM ${t} WHERE key IN (SELECT decode(k, 'hex') FROM unnest($${keys}::text[]) AS k) ` +
    `AND ${guard}`;
  const insertMany = (first: number, guard: string) =>
    `INSERT INTO ${t} (key, value, version, expires_at) ` +
    `SELECT decode(u.k, 'hex'), u.v, $${first + 3}::text, u.x ` +
    `FROM unnest($${first}::text[], $${first + 1}::text[], $${first + 2}::float8[]) ` +
    `WITH ORDINALITY AS u(k, v, x, i) WHERE ${guard} ORDER BY u.i ${upsert}`;
  const failedChecks = `SELECT c.i::int AS i FROM unnest($1::text[], $2::text[]) ` +
    `WITH ORDINALITY AS c(k, v, i) LEFT JOIN ${t} AS e ON e.key = decode(c.k, 'hex') ` +
    `WHERE (CASE WHEN e.expires_at IS NULL OR e.expires_at > $3::float8 THEN e.version END) ` +
    `IS DISTINCT FROM c.v`;
  const { feed: ft, meta } = names;
  const liveAt = (alias: string) => live(3).replaceAll("expires_at", `${alias}.expires_at`);
  // The head: the newest entry, or the floor a trim of every entry left (see feed.ts).
  const head = feedHeadSql(ft, meta);
  const guard = "NOT EXISTS (SELECT 1 FROM bad)";
  // The checks (`bad`: the failed ones' numbers), then the writes only if none failed.
  const checkedWriteWith = (bad: string, answer: string) =>
    `WITH bad AS MATERIALIZED (${bad}), d AS (${deleteMany(4, guard)}), ` +
    `i AS (${insertMany(5, guard)}) ${answer}`;
  const feedWriteWith = (bad: string) =>
    `WITH bad AS MATERIALIZED (${bad}), ` +
    // Each written key's live version before the commit (the same snapshot as the checks).
    `w AS MATERIALIZED (SELECT f.i, f.k, s.v, s.x, s.k IS NOT NULL AS is_set, ` +
    `(SELECT e.version FROM ${t} AS e WHERE e.key = decode(f.k, 'hex') AND ${liveAt("e")}) ` +
    `AS prev FROM unnest($9::text[]) WITH ORDINALITY AS f(k, i) ` +
    `LEFT JOIN unnest($5::text[], $6::text[], $7::float8[]) AS s(k, v, x) ON s.k = f.k ` +
    `WHERE ${guard}), ` +
    `h AS MATERIALIZED (SELECT ${head} AS seq), ` +
    // A delete of a key that was absent or expired is no change.
    `c AS MATERIALIZED (SELECT w.*, (SELECT seq FROM h) + row_number() OVER (ORDER BY w.i) ` +
    `AS seq FROM w WHERE w.is_set OR w.prev IS NOT NULL), ` +
    `d AS (${deleteMany(4, guard)}), ` +
    `i AS (${insertMany(5, guard)}), ` +
    `f AS (INSERT INTO ${ft} (${FEED_TABLE_COLUMNS}) SELECT c.seq, $3::float8, ` +
    `decode(c.k, 'hex'), CASE WHEN c.is_set THEN 'set' ELSE 'delete' END, c.v, ` +
    `CASE WHEN c.is_set THEN $8::text END, c.prev, c.x, $10::text FROM c), ` +
    `fs AS (INSERT INTO ${meta} (key, value) SELECT 'feed_since', $3::float8::text FROM h ` +
    `WHERE h.seq = 0 AND EXISTS (SELECT 1 FROM c) ON CONFLICT (key) DO NOTHING), ` +
    `n AS (SELECT pg_notify($11::text, '') FROM (SELECT 1 FROM c LIMIT 1) AS one) ` +
    `SELECT (SELECT array_agg(i ORDER BY i) FROM bad) AS failed, ` +
    `(SELECT count(*) FROM n)::int AS notified`;
  const feedWrite = feedWriteWith(failedChecks);
  // The feed functions plan their statements as index lookups too (see INDEX_PLANS): the
  // setting is made before their first statement is planned, on every call.
  const feedBody = `DECLARE failed int[]; notified int; v_seq bigint;\nBEGIN\n` +
    `${
      keyLocks("$12::text[]").replace(/^SELECT /, "PERFORM ").replace(
        / AS n FROM /,
        ` AS n, ${INDEX_PLANS} AS plans FROM `,
      )
    };\n` +
    // One set, no checks, no deletes (a plain set: the common case): one statement, with a
    // fresh snapshot after the locks: the key's version before (read in the same snapshot as
    // the head, before the upsert's effect), the upsert, the entry, and the NOTIFY.
    `IF cardinality($1) = 0 AND cardinality($4) = 0 AND cardinality($5) = 1 THEN\n` +
    `WITH p AS MATERIALIZED (SELECT version FROM ${t} AS e WHERE e.key = decode($5[1], 'hex') ` +
    `AND ${liveAt("e")}), ` +
    `u AS (INSERT INTO ${t} (key, value, version, expires_at) VALUES (decode($5[1], 'hex'), ` +
    `$6[1], $8, $7[1]) ${upsert}) ` +
    `INSERT INTO ${ft} (${FEED_TABLE_COLUMNS}) SELECT h.seq + 1, $3, decode($5[1], 'hex'), ` +
    `'set', $6[1], $8, (SELECT version FROM p), $7[1], $10 FROM (SELECT ${head} AS seq, ` +
    `pg_notify($11, '') AS n) AS h RETURNING seq INTO v_seq;\n` +
    `IF v_seq = 1 THEN INSERT INTO ${meta} (key, value) VALUES ('feed_since', $3::text) ` +
    `ON CONFLICT (key) DO NOTHING; END IF;\n` +
    `RETURN NULL;\nEND IF;\n` +
    `${feedWrite} INTO failed, notified;\n` +
    `RETURN failed;\nEND`;
  return {
    get: `SELECT value, version, expires_at FROM ${t} WHERE key = $1 AND ${live(2)}`,
    // `= ANY(ARRAY(…))`, not `IN (SELECT …)`: the planner looks the keys up in the index
    // whatever the table's size, where a semi join over a small table is a sequential scan,
    // a plan that a connection keeps (cached) as the table grows.
    getMany: `SELECT key, value, version, expires_at FROM ${t} WHERE key = ANY(ARRAY(` +
      `SELECT decode(k, 'hex') FROM unnest($1::text[]) AS k)) AND ${live(2)}`,
    // An insert or upsert sees the latest committed row whenever it takes
    // its locks (ON CONFLICT), so it may lock inside its own statement.
    setOne: `INSERT INTO ${t} (key, value, version, expires_at) ` +
      `SELECT $1::bytea, $2::text, $3::text, $4::float8 WHERE ${oneKeyLock("$1::bytea")} ${upsert}`,
    // A delete must lock in an earlier statement of its transaction: a row
    // committed while it waited is not in its snapshot.
    deleteOne: `DELETE FROM ${t} WHERE key = $1`,
    write: `WITH d AS (${deleteMany(1, "true")}), i AS (${insertMany(2, "true")}) SELECT 1`,
    // Only sets ($1 unused): upserts that lock their own keys first.
    upsertMany: `WITH l AS MATERIALIZED (${keyLocks("$2::text[]")}), ` +
      `i AS (${insertMany(2, "(SELECT n FROM l) >= 0")}) SELECT cardinality($1::text[])`,
    checkedWrite: checkedWriteWith(failedChecks, "SELECT i FROM bad ORDER BY i"),
    tryKeyLocks,
    claimWrite: checkedWriteWith(
      `${failedChecks} UNION ALL SELECT 0 WHERE ` +
        `current_setting('${CLAIM_LOCKS_SETTING}', true) IS DISTINCT FROM 't'`,
      "SELECT i FROM bad ORDER BY i",
    ),
    commitBody: `DECLARE v_ok boolean := true; v_failed int[];\nBEGIN\n` +
      `IF $10 THEN\nSELECT ${triedLocks} INTO v_ok FROM ${lockIds("$9")};\n` +
      `ELSE\nPERFORM count(pg_advisory_xact_lock(h)) FROM ${lockIds("$9")};\nEND IF;\n` +
      `${
        checkedWriteWith(
          `${failedChecks} UNION ALL SELECT 0 WHERE NOT v_ok`,
          "SELECT (SELECT array_agg(i ORDER BY i) FROM bad)",
        )
      } INTO v_failed;\nRETURN v_failed;\nEND`,
    // Columns win over the OUT parameters of the same names (key, value…).
    // Index plans for the rest of the claim's transaction (`decide`'s reads, the commit), as
    // the claim's statement before it sets them when there is no function.
    claimReadBody: `#variable_conflict use_column\nBEGIN\n` +
      `PERFORM pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId}), ${INDEX_PLANS};\n` +
      `RETURN QUERY WITH e AS (SELECT e.key, e.value, e.version, e.expires_at FROM ${t} AS e ` +
      `WHERE e.key > $1 AND e.key < $2 AND ${live(3).replaceAll("expires_at", "e.expires_at")} ` +
      `ORDER BY e.key LIMIT $4 FOR UPDATE SKIP LOCKED) ` +
      `SELECT e.key, e.value, e.version, e.expires_at, p.part, c.value, c.version, ` +
      // No part (and no companion) for a value `->>` cannot read (see jsonReadable).
      `c.expires_at FROM e CROSS JOIN LATERAL (SELECT CASE WHEN $5 IS NOT NULL AND ` +
      `${jsonReadable("e.value")} THEN e.value::json ->> convert_from($6, 'UTF8') ` +
      `END AS part) AS p ` +
      `LEFT JOIN ${t} AS c ON ` +
      `c.key = $5 || convert_to(p.part, 'UTF8') || '\\x00'::bytea AND ` +
      `${live(3).replaceAll("expires_at", "c.expires_at")} ORDER BY e.key;\nEND`,
    feedWrite,
    feedBody,
    // The locks of `keyLocks` for the key and the head, without its unnest and sort (two keys:
    // the lower hash first), and the NOTIFY (sent at commit, so only if the set commits), in one
    // expression evaluated left to right: a simple expression to PL/pgSQL, which evaluates it
    // without starting a statement (a PERFORM is one). Then, in a fresh snapshot, one statement:
    // the upsert (a CTE) and the entry, whose previous version (read in the statement's snapshot,
    // before the upsert's effect) and head are scalar subqueries of its VALUES.
    feedSetBody: `DECLARE v_seq bigint; v_locked text;\n` +
      `v_key bigint := ${keyLockId("encode($1, 'hex')", lockId)};\n` +
      `v_head bigint := ${keyLockId(`'${toHex(encodeKey(FEED_HEAD_LOCK))}'`, lockId)};\n` +
      `BEGIN\n` +
      `v_locked := concat(pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId}), ` +
      `pg_advisory_xact_lock(least(v_key, v_head)), ` +
      `pg_advisory_xact_lock(greatest(v_key, v_head)), pg_notify($7, ''));\n` +
      `WITH u AS (INSERT INTO ${t} (key, value, version, expires_at) VALUES ($1, $2, $3, $4) ` +
      `${upsert}) ` +
      `INSERT INTO ${ft} (${FEED_TABLE_COLUMNS}) VALUES (${head} + 1, $5, $1, 'set', $2, $3, ` +
      `(SELECT e.version FROM ${t} AS e WHERE e.key = $1 AND ` +
      `${live(5).replaceAll("expires_at", "e.expires_at")}), $4, $6) RETURNING seq INTO v_seq;\n` +
      `IF v_seq = 1 THEN INSERT INTO ${meta} (key, value) VALUES ('feed_since', $5::text) ` +
      `ON CONFLICT (key) DO NOTHING; END IF;\nEND`,
    claimFeedWrite: feedWriteWith(
      `${failedChecks} UNION ALL SELECT 0 WHERE ` +
        `current_setting('${CLAIM_LOCKS_SETTING}', true) IS DISTINCT FROM 't'`,
    ),
    check: `${failedChecks} ORDER BY c.i`,
    lock: `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${lockId})`,
    keyLocks: keyLocks("$1::text[]").replace(
      / AS n FROM /,
      ` AS n, ${INDEX_PLANS} AS plans FROM `,
    ),
    sharedLock: shared,
    // A lone compare-and-set is one statement: an UPDATE or DELETE that
    // waited for the key's lock re-reads the row's latest version (and
    // re-checks it) before it writes; an INSERT meets a row committed
    // meanwhile as a conflict.
    casUpdate: `UPDATE ${t} SET value = $2::text, version = $3::text, expires_at = $4::float8 ` +
      `WHERE key = $1::bytea AND version = $5::text AND ${live(6)} AND ${
        oneKeyLock("$1::bytea")
      } RETURNING 1 AS ok`,
    casInsert: `INSERT INTO ${t} AS e (key, value, version, expires_at) ` +
      `SELECT $1::bytea, $2::text, $3::text, $4::float8 WHERE ${oneKeyLock("$1::bytea")} ` +
      `ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, ` +
      `expires_at = excluded.expires_at WHERE NOT (e.expires_at IS NULL OR ` +
      `e.expires_at > $5::float8) RETURNING 1 AS ok`,
    casDelete: `DELETE FROM ${t} WHERE key = $1::bytea AND version = $2::text AND ${live(3)} AND ${
      oneKeyLock("$1::bytea")
    } RETURNING 1 AS ok`,
    purge: `DELETE FROM ${t} WHERE key IN (SELECT key FROM ${t} WHERE expires_at <= $1::float8 ` +
      `LIMIT ${PURGE_BATCH_SIZE}) AND expires_at <= $1::float8 AND ${shared}`,
  };
}
