/**
 * What the case files share: assertions whose failures say what was checked,
 * ways to read a store back, and small fixtures.
 *
 * @module
 */
import assert, { AssertionError } from "node:assert/strict";
import type { Entry, JsonValue, Key, ListOptions, Query, Store } from "../../store/types.ts";
import { keysEqual } from "../../store/keys.ts";

// ---------------------------------------------------------------------------
// Assertions: every failure says what was checked, then the diff

export function show(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? `${v}n` : v) ?? String(value);
  } catch {
    return String(value);
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Deep strict equality; the message leads with `what`, followed by node's diff. */
export function same(actual: unknown, expected: unknown, what: string): void {
  try {
    assert.deepStrictEqual(actual, expected);
  } catch (err) {
    if (!(err instanceof AssertionError)) throw err;
    throw new AssertionError({ message: `${what}\n${err.message}` });
  }
}

export function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new AssertionError({ message: what });
}

export function differentVersions(
  versions: readonly (string | null | undefined)[],
  what: string,
): void {
  for (const v of versions) {
    check(typeof v === "string" && v !== "", `${what}: ${show(v)} is not a version string`);
  }
  same(
    new Set(versions).size,
    versions.length,
    `${what}: versions must all differ, got ${show(versions)}`,
  );
}

export type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * `fn` must fail with `expected` (thrown synchronously or as a rejection;
 * matched by class or by `name`, so a copy of the class from another module
 * instance still counts).
 */
export async function fails(fn: () => unknown, expected: ErrorClass, what: string): Promise<Error> {
  let error: unknown;
  let threw = false;
  try {
    await fn();
  } catch (err) {
    threw = true;
    error = err;
  }
  if (!threw) {
    throw new AssertionError({ message: `${what}: expected a ${expected.name}, but it succeeded` });
  }
  if (!(error instanceof expected) && (error as Error | null)?.name !== expected.name) {
    throw new AssertionError({
      message: `${what}: expected a ${expected.name}, got ${errorText(error)}`,
    });
  }
  return error as Error;
}

export async function expectValue(
  store: Store,
  key: Key,
  expected: unknown,
  what: string,
): Promise<void> {
  const entry = await store.get(key);
  check(entry !== null, `${what}: get(${show(key)}) returned null, expected ${show(expected)}`);
  same(entry.value, expected, `${what}: get(${show(key)}).value`);
}

export async function expectAbsent(store: Store, key: Key, what: string): Promise<void> {
  const entry = await store.get(key);
  check(entry === null, `${what}: get(${show(key)}) should be null, got ${show(entry)}`);
}

// ---------------------------------------------------------------------------
// Reading a store back

export async function collect<T = JsonValue>(
  iterable: AsyncIterable<Entry<T>>,
): Promise<Entry<T>[]> {
  const out: Entry<T>[] = [];
  for await (const entry of iterable) out.push(entry);
  return out;
}

export async function listKeys(store: Store, options?: ListOptions): Promise<Key[]> {
  return (await collect(store.list(options))).map((e) => e.key);
}

export async function queryKeys(store: Store, query: Query): Promise<Key[]> {
  return (await store.query(query)).map((e) => e.key);
}

/** List in pages of `size`, resuming from each page's cursor, until a page is empty. */
export async function pages(store: Store, options: ListOptions, size: number): Promise<Key[][]> {
  const out: Key[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 100; i++) {
    const iterator = store.list({ ...options, limit: size, cursor });
    const keys = (await collect(iterator)).map((e) => e.key);
    if (keys.length === 0) return out;
    const last = out.at(-1)?.at(-1);
    if (last !== undefined && keysEqual(keys[0], last)) {
      throw new AssertionError({
        message: `list() resumed from a cursor gave again the entry it stopped after ` +
          `(${JSON.stringify(last)}): a driver's list(range) must leave out ` +
          (options.reverse
            ? `range.end (keys are < end, also in reverse order)`
            : `range.start when range.startExclusive is true`) +
          ` (that is how a listing resumes after its cursor)`,
      });
    }
    out.push(keys);
    cursor = iterator.cursor;
  }
  throw new AssertionError({ message: "list() paging did not end after 100 pages" });
}

// ---------------------------------------------------------------------------
// Fixtures

/** Write all entries in one atomic commit (one round trip even on slow backends). */
export async function seed(
  store: Store,
  entries: readonly (readonly [Key, unknown])[],
): Promise<string> {
  const op = store.atomic();
  for (const [key, value] of entries) op.set(key, value);
  const result = await op.commit();
  check(result.ok, `seeding ${entries.length} entries with one atomic commit must succeed`);
  return result.version;
}

/** A fixed, non-sorted permutation, so writes never arrive in key order. */
export function scramble<T>(items: readonly T[]): T[] {
  const odd = items.filter((_, i) => i % 2 === 1).reverse();
  const even = items.filter((_, i) => i % 2 === 0);
  return [...odd, ...even];
}

/** Five one-element keys, "a" to "e". */
export const LETTERS: Key[] = ["a", "b", "c", "d", "e"].map((s) => [s]);

/** Ten keys under ["k"], "k00" to "k09". */
export const TEN: Key[] = Array.from(
  { length: 10 },
  (_, i) => ["k", `k${String(i).padStart(2, "0")}`],
);
