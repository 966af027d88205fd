/**
 * The reference semantics of queries, used by the core's fallback and by
 * backends that evaluate part of a query in memory.
 *
 * @module
 */
import { compareKeys, compareStrings } from "./keys.ts";
import type { JsonValue, Key, OrderBy, Query, WhereClause, WhereOp } from "./types.ts";

/**
 * A query with paths split into segments and defaults filled in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { definePlugin, openStore } from "@flowstate/core";
 * import type { NormalizedQuery } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 * import { z } from "zod";
 *
 * let received: NormalizedQuery | undefined;
 * class Spy extends MemoryDriver {
 *   override query(query: NormalizedQuery) {
 *     received = query;
 *     return super.query(query);
 *   }
 * }
 * const plugin = definePlugin({ name: "spy", optionsSchema: z.strictObject({}), open: () => new Spy() });
 * await using store = await openStore({ plugin });
 * await store.query({ prefix: ["orders"], where: [{ path: "customer.id", op: "eq", value: "ada" }] });
 * assert.deepEqual(received?.where, [{ path: ["customer", "id"], op: "eq", value: "ada" }]);
 * assert.equal(received?.limit, Infinity); // defaults filled in
 * assert.deepEqual(received?.orderBy, []);
 * ```
 */
export interface NormalizedQuery {
  /** Keys under this prefix (`[]` means every key). */
  prefix: Key;
  /** Clauses, all of which must match. */
  where: { path: string[]; op: WhereOp; value: JsonValue | undefined }[];
  /** Sort keys (empty: key order). */
  orderBy: { path: string[]; direction: "asc" | "desc" }[];
  /** At most this many (Infinity when absent or above 2^53 - 1). */
  limit: number;
  /** Skip this many (at most 2^53 - 1: a larger offset skips every entry all the same). */
  offset: number;
}

const OPS: readonly WhereOp[] = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "exists"];

/** Split a dot path into segments; `""` is the value itself. */
export function parsePath(
  path: string | readonly string[],
  what: string | (() => string),
): string[] {
  if (Array.isArray(path)) {
    if (!path.every((p) => typeof p === "string")) {
      throw new TypeError(
        `${whatOf(what)}: path segments must be strings (got ${JSON.stringify(path)})`,
      );
    }
    return [...path];
  }
  if (typeof path !== "string") {
    throw new TypeError(
      `${whatOf(what)}: path must be a string like "a.b" or an array of segments`,
    );
  }
  return path === "" ? [] : path.split(".");
}

/** The context of an error message, built only when there is an error. */
function whatOf(what: string | (() => string)): string {
  return typeof what === "string" ? what : what();
}

/** Validate a query and fill in defaults; a `TypeError` for anything malformed. */
export function normalizeQuery(query: Query = {}): NormalizedQuery {
  const what = "Cannot query";
  if (typeof query !== "object" || query === null) {
    throw new TypeError(`${what}: the query must be an object`);
  }
  const where = (query.where ?? []).map((clause: WhereClause, i) => {
    if (!OPS.includes(clause?.op)) {
      throw new TypeError(
        `${what}: where[${i}].op is ${JSON.stringify(clause?.op)}; use one of ${OPS.join(", ")}`,
      );
    }
    if (clause.op === "in" && !Array.isArray(clause.value)) {
      throw new TypeError(`${what}: where[${i}] uses "in", so value must be an array`);
    }
    if (clause.op !== "exists" && clause.value === undefined) {
      throw new TypeError(`${what}: where[${i}] (${clause.op}) needs a value`);
    }
    if (clause.op === "exists" && clause.value !== undefined && typeof clause.value !== "boolean") {
      throw new TypeError(`${what}: where[${i}] uses "exists", so value must be true or false`);
    }
    return {
      path: parsePath(clause.path, () => `${what}: where[${i}]`),
      op: clause.op,
      value: clause.value,
    };
  });
  const orders = query.orderBy === undefined
    ? []
    : Array.isArray(query.orderBy)
    ? query.orderBy as readonly OrderBy[]
    : [query.orderBy as OrderBy];
  const orderBy = orders.map((o, i) => {
    const direction = o.direction ?? "asc";
    if (direction !== "asc" && direction !== "desc") {
      throw new TypeError(`${what}: orderBy[${i}].direction must be "asc" or "desc"`);
    }
    return { path: parsePath(o.path, () => `${what}: orderBy[${i}]`), direction };
  });
  const limit = query.limit ?? Infinity;
  const offset = query.offset ?? 0;
  if (typeof limit !== "number" || limit < 0 || (limit !== Infinity && !Number.isInteger(limit))) {
    throw new RangeError(`${what}: limit must be a non-negative integer (got ${limit})`);
  }
  if (!Number.isInteger(offset) || offset < 0) {
    throw new RangeError(`${what}: offset must be a non-negative integer (got ${offset})`);
  }
  return {
    prefix: query.prefix === undefined ? [] : query.prefix,
    where,
    orderBy,
    limit: limit > MAX_COUNT ? Infinity : limit,
    offset: Math.min(offset, MAX_COUNT),
  };
}

/**
 * The largest `limit`/`offset` handed to a driver: more entries than any store
 * holds, so a larger limit means "all" and a larger offset "none" (2^53 - 1,
 * the last integer a number holds exactly; SQL's `LIMIT` takes at most 2^63 - 1).
 * Every backend then answers a query with `limit: 1e19` the same way.
 */
export const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** Read a path; `undefined` when any segment is missing. */
export function readPath(value: unknown, path: readonly string[]): unknown {
  let v = value;
  for (const seg of path) {
    if (Array.isArray(v)) {
      if (!/^(0|[1-9]\d*)$/.test(seg)) return undefined;
      v = v[Number(seg)];
    } else if (typeof v === "object" && v !== null) {
      if (!Object.hasOwn(v, seg)) return undefined;
      v = (v as Record<string, unknown>)[seg];
    } else {
      return undefined;
    }
  }
  return v;
}

/** Deep JSON equality (object key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  if (ak.length !== bk.length) return false;
  return ak.every((k) =>
    Object.hasOwn(b, k) &&
    jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
  );
}

/** Whether a value matches one clause. */
export function matchClause(
  value: unknown,
  clause: { path: readonly string[]; op: WhereOp; value: JsonValue | undefined },
): boolean {
  const field = readPath(value, clause.path);
  const operand = clause.value;
  switch (clause.op) {
    case "exists":
      return (field !== undefined) === (operand ?? true);
    case "eq":
      return field !== undefined && jsonEqual(field, operand);
    case "ne":
      return field === undefined || !jsonEqual(field, operand);
    case "in":
      return field !== undefined && (operand as JsonValue[]).some((x) => jsonEqual(field, x));
    case "contains":
      if (Array.isArray(field)) return field.some((x) => jsonEqual(x, operand));
      if (typeof field === "string" && typeof operand === "string") {
        return field.includes(operand);
      }
      return false;
    default: {
      let c: number;
      if (typeof field === "number" && typeof operand === "number") {
        c = field < operand ? -1 : field > operand ? 1 : 0;
      } else if (typeof field === "string" && typeof operand === "string") {
        c = compareStrings(field, operand);
      } else {
        return false;
      }
      switch (clause.op) {
        case "lt":
          return c < 0;
        case "lte":
          return c <= 0;
        case "gt":
          return c > 0;
        default:
          return c >= 0;
      }
    }
  }
}

/** Rank of a value's type in sort order: missing < null < false < true < number < string < array < object. */
export function typeRank(v: unknown): number {
  if (v === undefined) return 0;
  if (v === null) return 1;
  if (v === false) return 2;
  if (v === true) return 3;
  if (typeof v === "number") return 4;
  if (typeof v === "string") return 5;
  if (Array.isArray(v)) return 6;
  return 7;
}

/** Compare two field values for ordering (arrays and objects tie within their type). */
export function compareForOrder(a: unknown, b: unknown): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 4) return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
  if (ra === 5) return compareStrings(a as string, b as string);
  return 0;
}

/**
 * Apply a query to entries already restricted to its prefix (in any order):
 * filter, sort (ties by key), offset and limit.
 */
export function applyQuery<E extends { key: Key; value: unknown }>(
  entries: Iterable<E>,
  q: NormalizedQuery,
): E[] {
  const matched: E[] = [];
  for (const e of entries) {
    if (q.where.every((c) => matchClause(e.value, c))) matched.push(e);
  }
  matched.sort((x, y) => {
    for (const o of q.orderBy) {
      const c = compareForOrder(readPath(x.value, o.path), readPath(y.value, o.path));
      if (c !== 0) return o.direction === "desc" ? -c : c;
    }
    return compareKeys(x.key, y.key);
  });
  const end = q.limit === Infinity ? undefined : q.offset + q.limit;
  return matched.slice(q.offset, end);
}
