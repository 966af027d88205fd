/**
 * Key bounds as SQL, for backends whose `key` column holds `encodeKey()`
 * bytes (SQLite `BLOB`, PostgreSQL `bytea`): both compare them byte-wise,
 * which is key order, so a key range is at most two comparisons on the
 * primary key. The bounds themselves come from `byteBounds()` in
 * src/store/keys.ts.
 *
 * @module
 */
import { type ByteBounds, byteBounds, compareBytes } from "../../src/store/keys.ts";
import type { Key } from "../../src/store/types.ts";

/** Whether no key lies within `bounds`: the lower bound is at or above the upper one. */
export function isEmptyBounds(bounds: ByteBounds): boolean {
  return bounds.lower !== undefined && bounds.upper !== undefined &&
    compareBytes(bounds.lower, bounds.upper) >= 0;
}

/**
 * The conditions on `column` (default `key`) of `bounds`: `column >= p` or
 * `column > p`, then `column < p`; none for an absent bound. `bind(value)`
 * takes each bound's bytes, in that order, and returns the placeholder that
 * stands for it in the SQL text (the caller keeps the parameters):
 *
 * ```ts ignore
 * const params: Uint8Array[] = [];
 * boundsWhere(bounds, (bytes) => `$${params.push(bytes)}`); // PostgreSQL
 * boundsWhere(bounds, (bytes) => (params.push(bytes), "?")); // SQLite
 * ```
 */
export function boundsWhere(
  bounds: ByteBounds,
  bind: (bytes: Uint8Array) => string,
  column = "key",
): string[] {
  const where: string[] = [];
  if (bounds.lower !== undefined) {
    where.push(`${column} ${bounds.lowerExclusive ? ">" : ">="} ${bind(bounds.lower)}`);
  }
  if (bounds.upper !== undefined) where.push(`${column} < ${bind(bounds.upper)}`);
  return where;
}

/** Remembered bounds of recent prefixes (queries repeat a few prefixes many times). */
const prefixMemo = new Map<string, ByteBounds>();
/** Remembered literal terms of recent prefixes, by column and literal style. */
const termsMemo = new Map<string, string[]>();

/**
 * `byteBounds({ prefix })`, remembered: a query's prefix costs its encoding
 * once, not on every query. The result is shared: do not change it.
 */
export function prefixBounds(prefix: Key): ByteBounds {
  const id = JSON.stringify(prefix);
  let bounds = prefixMemo.get(id);
  if (bounds === undefined) {
    if (prefixMemo.size >= 1000) prefixMemo.clear();
    prefixMemo.set(id, bounds = byteBounds({ prefix }));
  }
  return bounds;
}

/**
 * The conditions on `column` of a prefix's bounds written as literals by
 * `literal` (named by `style`, part of the memo's key), remembered.
 */
export function literalPrefixTerms(
  prefix: Key,
  column: string,
  style: string,
  literal: (bytes: Uint8Array) => string,
): string[] {
  const id = `${style}\u0000${column}\u0000${JSON.stringify(prefix)}`;
  let terms = termsMemo.get(id);
  if (terms === undefined) {
    if (termsMemo.size >= 1000) termsMemo.clear();
    termsMemo.set(id, terms = boundsWhere(prefixBounds(prefix), literal, column));
  }
  return terms.slice();
}
