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
 * `classOf(s)` names the class of a string as far as the text depends on it
 * (whether it can be bound as it is, or the text takes another path).
 */
function signature(v: unknown, classOf: (s: string) => string): string {
  if (v === undefined) return "u";
  if (v === null || typeof v === "boolean") return String(v);
  if (typeof v === "number") return "n";
  if (typeof v === "string") return classOf(v);
  if (Array.isArray(v)) return `[${v.map((x) => signature(x, classOf)).join(",")}]`;
  return `o${JSON.stringify(v)}`;
}

/** Strings, unambiguously: each one's length, then it (no JSON text to build). */
function listed(strings: readonly string[]): string {
  let out = `${strings.length}`;
  for (const s of strings) out += `|${s.length}:${s}`;
  return out;
}

/**
 * The key of `q`'s shape: equal for queries whose compiled SQL text is the
 * same. `classOf` names a string operand's class (a short text without
 * `\u0001`/`\u0002`): strings of one class compile to the same text.
 */
export function shapeKey(q: NormalizedQuery, classOf: (s: string) => string): string {
  let key = listed(q.prefix);
  for (const c of q.where) {
    key += `\u0001${c.op}\u0001${listed(c.path)}\u0001${signature(c.value, classOf)}`;
  }
  key += `\u0002${q.orderBy.length}`;
  for (const o of q.orderBy) key += `\u0001${o.direction}\u0001${listed(o.path)}`;
  return `${key}\u0002${q.limit}\u0002${q.offset}`;
}
