/**
 * Seeded random workloads for the differential cases: entries to write, then
 * listings or queries to run against the store under test and against the
 * memory plugin. The same seed gives the same workload, so a failure names
 * its seed and index and can be replayed.
 *
 * The plugin tests of the SQL backends use the query workload too, to check
 * that their backend runs most of it natively (the suite sees only results).
 *
 * @module
 */
import { readPath } from "../../store/query.ts";
import type {
  JsonValue,
  Key,
  ListOptions,
  OrderBy,
  Query,
  Store,
  WhereClause,
  WhereOp,
} from "../../store/types.ts";

/** A seeded PRNG (mulberry32): numbers in [0, 1). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One entry of a workload; some expire `expireIn` ms after they are written. */
export interface RandomEntry {
  key: Key;
  value: JsonValue;
  expireIn?: number;
}

/** Entries, then the operations to compare once `elapse` ms have passed. */
export interface RandomWorkload<Operation> {
  /** The seed the workload was made from (failures report it). */
  seed: number;
  /** Written in order, in one atomic commit (a key may repeat: the last write wins). */
  entries: RandomEntry[];
  /** How far to move the clock after writing, so that the entries with `expireIn` have expired. */
  elapse: number;
  /** What to compare, in order. */
  operations: Operation[];
}

const EXPIRE_IN = 5;
const ELAPSE = 10;

/** Write every entry of a workload in one atomic commit; throws if it does not commit. */
export async function writeEntries(store: Store, entries: readonly RandomEntry[]): Promise<void> {
  const op = store.atomic();
  for (const { key, value, expireIn } of entries) op.set(key, value, { expireIn });
  const result = await op.commit();
  if (!result.ok) throw new Error(`Cannot write ${entries.length} random entries: commit failed`);
}

// ---------------------------------------------------------------------------
// Listings

/** Key elements chosen to sit next to each other in code-point order. */
const KEY_PARTS = ["", "a", "a\u0000", "ab", "b", "é", "\uffff", "😀", "z"];

/** 300 entries under keys of 1 to 3 elements, then 300 listings with random bounds. */
export function randomListWorkload(seed = 20260101): RandomWorkload<ListOptions> {
  const rand = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const randomKey = (min = 1): Key =>
    Array.from({ length: min + Math.floor(rand() * (4 - min)) }, () => pick(KEY_PARTS));
  const entries: RandomEntry[] = [];
  for (let i = 0; i < 300; i++) {
    const key = randomKey();
    entries.push({ key, value: i, expireIn: rand() < 0.15 ? EXPIRE_IN : undefined });
  }
  const operations: ListOptions[] = [];
  for (let n = 0; n < 300; n++) {
    const options: ListOptions = {};
    if (rand() < 0.5) options.prefix = randomKey(0).slice(0, Math.floor(rand() * 3));
    if (rand() < 0.4) options.start = randomKey();
    if (rand() < 0.4) options.end = randomKey();
    if (rand() < 0.4) options.reverse = true;
    if (rand() < 0.4) options.limit = Math.floor(rand() * 20);
    if (rand() < 0.6) options.batchSize = 1 + Math.floor(rand() * 5);
    operations.push(options);
  }
  return { seed, entries, elapse: ELAPSE, operations };
}

// ---------------------------------------------------------------------------
// Queries

/** Strings every backend should hold natively: they sit under every prefix. */
export const SAMPLE_STRINGS: readonly string[] = [
  "",
  " ",
  "a",
  "ab",
  "abc",
  "b",
  "B",
  "é",
  "été",
  "\ue000",
  "\uffff",
  "😀",
  "😀x",
  "x.y",
  'quote"d',
  "back\\slash",
  "\\u0000",
  "10",
  "2",
  "null",
  "true",
  "\u0001ctl",
  "{a,b}",
];
/**
 * Strings some databases cannot hold in their JSON type (NUL) or order
 * differently (lone surrogates): stored under ["z"] only, so a backend that
 * falls back to the core for them still runs queries under ["p"] natively.
 */
const AWKWARD_STRINGS = ["a\u0000b", "a\u0000", "\ud800", "a\udc00b", "\udfff", "\ud83d"];
/** Numbers whose order and equality every backend must get exactly right. */
export const SAMPLE_NUMBERS: readonly number[] = [
  0,
  1,
  -1,
  2,
  10,
  1.5,
  -2.5,
  0.1 + 0.2,
  0.3,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 60,
  -(2 ** 63),
  1e19,
  1e20,
  1e21,
  -1e21,
  1.5e-7,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  -Number.MIN_VALUE,
  123456789.125,
];
const FIELD_NAMES = ["a", "b", "c", "0", "1", "", "x.y", 'we"ird', "é", "01", "-1"];
const PATHS: string[][] = [
  [],
  ["a"],
  ["b"],
  ["c"],
  ["0"],
  ["1"],
  [""],
  ["x.y"],
  ["é"],
  ['we"ird'],
  ["missing"],
  ["a", "b"],
  ["a", "0"],
  ["a", "1"],
  ["b", "c"],
  ["a", ""],
  ["0", "0"],
  ["a", "b", "c"],
  ["a", "0", "b"],
  ["0", "1", "a"],
  ["a", "0", "1", "0"],
  ["01"],
  ["-1"],
  ["a", "00"],
  ["a", "01"],
  ["a", "-1"],
  ["a", " 1"],
  ["a", "+1"],
  ["a", "1e0"],
  ["a", "12345678901"],
];
const OPS: WhereOp[] = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "exists"];

const PREFIXES: Key[] = [["p"], ["p", "q"], ["z"]];
const QUERY_PREFIXES: (Key | undefined)[] = [
  undefined,
  [],
  ["p"],
  ["p"],
  ["p"],
  ["p", "q"],
  ["p", "q"],
  ["z"],
  ["nothing"],
];

/** The seed and size of a random query workload. */
export interface QueryWorkloadSize {
  /** The seed (default 4242). */
  seed?: number;
  /** How many entries to write (default 300). */
  entries?: number;
  /** How many queries to run (default 2,000). */
  queries?: number;
}

/**
 * 300 JSON documents (nested objects and arrays of every type, some reused
 * for ties) under a few prefixes, then 2,000 queries of up to two where
 * clauses, up to two orderBy keys, a prefix, a limit and an offset, with
 * operands often taken from the documents.
 */
export function randomQueryWorkload(
  { seed = 4242, entries: entryCount = 300, queries: queryCount = 2000 }: QueryWorkloadSize = {},
): RandomWorkload<Query> {
  const rand = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  let awkward = false;
  const scalar = (): JsonValue => {
    const r = rand();
    if (r < 0.08) return null;
    if (r < 0.16) return rand() < 0.5;
    if (r < 0.55) return pick(SAMPLE_NUMBERS);
    return awkward && rand() < 0.3 ? pick(AWKWARD_STRINGS) : pick(SAMPLE_STRINGS);
  };
  const value = (depth: number): JsonValue => {
    const r = rand();
    if (depth <= 0 || r < 0.45) return scalar();
    if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth - 1));
    const obj: Record<string, JsonValue> = {};
    for (let i = Math.floor(rand() * 5); i > 0; i--) obj[pick(FIELD_NAMES)] = value(depth - 1);
    return obj;
  };
  const document = (): JsonValue => {
    if (rand() < 0.1) return value(2);
    const obj: Record<string, JsonValue> = {};
    for (const name of FIELD_NAMES) if (rand() < 0.6) obj[name] = value(3);
    return obj;
  };

  const entries: RandomEntry[] = [];
  const docs: JsonValue[] = [];
  const plainDocs: JsonValue[] = [];
  for (let i = 0; i < entryCount; i++) {
    const prefix = pick(PREFIXES);
    const key = [...prefix, `k${Math.floor(rand() * 200)}`];
    awkward = prefix[0] === "z";
    // Reuse documents (for ties), but keep awkward strings under ["z"].
    const pool = awkward ? docs : plainDocs;
    const doc = rand() < 0.15 && pool.length > 0 ? pick(pool) : document();
    docs.push(doc);
    if (!awkward) plainDocs.push(doc);
    entries.push({ key, value: doc, expireIn: rand() < 0.1 ? EXPIRE_IN : undefined });
  }

  awkward = false;
  const operand = (path: string[]): JsonValue => {
    if (rand() < 0.03) return pick(AWKWARD_STRINGS);
    if (rand() < 0.5) {
      const found = readPath(pick(docs), path);
      if (found !== undefined) return found as JsonValue;
    }
    return rand() < 0.8 ? scalar() : value(2);
  };
  const operations: Query[] = [];
  for (let n = 0; n < queryCount; n++) {
    const where: WhereClause[] = [];
    for (let c = Math.floor(rand() * 3); c > 0; c--) {
      const path = pick(PATHS);
      const op = pick(OPS);
      const clause: WhereClause = { path, op };
      if (op === "in") {
        clause.value = Array.from({ length: Math.floor(rand() * 4) }, () => operand(path));
      } else if (op === "exists") {
        if (rand() < 0.7) clause.value = rand() < 0.5;
      } else {
        clause.value = operand(path);
      }
      where.push(clause);
    }
    const orderBy: OrderBy[] = Array.from(
      { length: Math.floor(rand() * 3) },
      () => ({ path: pick(PATHS), direction: rand() < 0.5 ? "asc" : "desc" }),
    );
    const query: Query = { where, orderBy };
    const prefix = pick(QUERY_PREFIXES);
    if (prefix) query.prefix = prefix;
    if (rand() < 0.3) query.limit = Math.floor(rand() * 10);
    if (rand() < 0.3) query.offset = Math.floor(rand() * 10);
    operations.push(query);
  }
  return { seed, entries, elapse: ELAPSE, operations };
}
