/**
 * The shape of a query, as far as a SQL plugin's compiled text depends on it:
 * the key under which both SQL plugins remember a compiled query (their
 * operands are bound parameters, filled in per call).
 *
 * @module
 */
import type { NormalizedQuery } from "../../src/store/query.ts";

/**
 * A signature of an operand's type, as far as the SQL text depends on it;
 * `bindable(s)` says whether a string can be bound as it is (else the text
 * takes another path).
 */
function signature(v: unknown, bindable: (s: string) => boolean): string {
  if (v === undefined) return "u";
  if (v === null || typeof v === "boolean") return String(v);
  if (typeof v === "number") return "n";
  if (typeof v === "string") return bindable(v) ? "s" : "S";
  if (Array.isArray(v)) return `[${v.map((x) => signature(x, bindable)).join(",")}]`;
  return `o${JSON.stringify(v)}`;
}

/** Strings, unambiguously: each one's length, then it (no JSON text to build). */
function listed(strings: readonly string[]): string {
  let out = `${strings.length}`;
  for (const s of strings) out += `|${s.length}:${s}`;
  return out;
}

/** The key of `q`'s shape: equal for queries whose compiled SQL text is the same. */
export function shapeKey(q: NormalizedQuery, bindable: (s: string) => boolean): string {
  let key = listed(q.prefix);
  for (const c of q.where) {
    key += `\u0001${c.op}\u0001${listed(c.path)}\u0001${signature(c.value, bindable)}`;
  }
  key += `\u0002${q.orderBy.length}`;
  for (const o of q.orderBy) key += `\u0001${o.direction}\u0001${listed(o.path)}`;
  return `${key}\u0002${q.limit}\u0002${q.offset}`;
}
