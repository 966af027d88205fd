/**
 * Key bounds as SQL, for backends whose `key` column holds `encodeKey()`
 * bytes (SQLite `BLOB`, PostgreSQL `bytea`): both compare them byte-wise,
 * which is key order, so a key range is at most two comparisons on the
 * primary key. The bounds themselves come from `byteBounds()` in
 * src/store/keys.ts.
 *
 * @module
 */
import { type ByteBounds, compareBytes } from "../../src/store/keys.ts";

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
