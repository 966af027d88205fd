/**
 * Declared indexes and full-text search: validating declarations, the
 * reference semantics of search (what matches), and the choice of an index
 * for a query, shared by the core's fallback and the SQL plugins.
 *
 * @module
 */
import { assertKey, compareKeys } from "./keys.ts";
import { MAX_COUNT, parsePath, readPath } from "./query.ts";
import type { NormalizedQuery } from "./query.ts";
import type { IndexDeclaration, Key, SearchDeclaration, SearchOptions } from "./types.ts";

/**
 * A validated index declaration, as drivers receive it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { definePlugin, openStore } from "@flowstate/core";
 * import type { IndexSpec, PrepareIndexesRequest } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 * import { z } from "zod";
 *
 * let received: IndexSpec[] = [];
 * class Spy extends MemoryDriver {
 *   override prepareIndexes(request: PrepareIndexesRequest) {
 *     received = request.indexes;
 *     return super.prepareIndexes(request);
 *   }
 * }
 * const plugin = definePlugin({ name: "spy", optionsSchema: z.strictObject({}), open: () => new Spy() });
 * await using store = await openStore({ plugin, indexes: [{ prefix: ["orders"], path: "customer.id" }] });
 * assert.deepEqual(received[0].path, ["customer", "id"]); // split into segments
 * assert.equal(received[0].name, store.indexes[0].name);
 * ```
 */
export interface IndexSpec {
  /** `fs_ix_` and a hash of the prefix and path: stable across processes and versions. */
  name: string;
  /** Entries strictly under this prefix. */
  prefix: Key;
  /** The field's path, in segments (none of them an array index). */
  path: string[];
}

/**
 * A validated search declaration, as drivers receive it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { definePlugin, openStore } from "@flowstate/core";
 * import type { PrepareIndexesRequest, SearchSpec } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 * import { z } from "zod";
 *
 * let received: SearchSpec | undefined;
 * class Spy extends MemoryDriver {
 *   override readonly capabilities = { ...new MemoryDriver().capabilities, search: true };
 *   override prepareIndexes(request: PrepareIndexesRequest) {
 *     received = request.search;
 *     return super.prepareIndexes(request);
 *   }
 * }
 * const plugin = definePlugin({ name: "spy", optionsSchema: z.strictObject({}), open: () => new Spy() });
 * await using _store = await openStore({ plugin, search: { prefix: ["notes"], fields: ["title", "meta.tags"] } });
 * assert.deepEqual(received, { prefix: ["notes"], fields: [["title"], ["meta", "tags"]] });
 * ```
 */
export interface SearchSpec {
  /** Entries strictly under this prefix (`[]`: every entry). */
  prefix: Key;
  /** The fields' paths, or `null` for every string in the value. */
  fields: string[][] | null;
}

/**
 * A validated search call, as drivers receive it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { definePlugin, openStore } from "@flowstate/core";
 * import type { PrepareIndexesRequest, SearchRequest } from "@flowstate/core/plugin";
 * import { MemoryDriver } from "@flowstate/core/plugins/memory";
 * import { z } from "zod";
 *
 * let received: SearchRequest | undefined;
 * class Spy extends MemoryDriver {
 *   override readonly capabilities = { ...new MemoryDriver().capabilities, search: true };
 *   override prepareIndexes(request: PrepareIndexesRequest) {
 *     return { ...super.prepareIndexes(request), search: true }; // "I search natively"
 *   }
 *   search(request: SearchRequest) {
 *     received = request;
 *     return Promise.resolve(undefined); // not native here: the core scans
 *   }
 * }
 * const plugin = definePlugin({ name: "spy", optionsSchema: z.strictObject({}), open: () => new Spy() });
 * await using store = await openStore({ plugin, search: { prefix: ["notes"] } });
 * await store.set(["notes", "1"], { title: "Quarterly Report" });
 * const hits = await store.search("report QUARTERLY report", { prefix: ["notes"], limit: 5 });
 * assert.equal(hits.length, 1);
 * assert.deepEqual(received?.terms.toSorted(), ["quarterly", "report"]); // lower-cased, once each
 * ```
 */
export interface SearchRequest {
  /** The words to find, cut by the search rule (NFKC, lower-cased), without duplicates (at least one). */
  terms: string[];
  /** Entries strictly under this prefix. */
  prefix: Key;
  /** At most this many hits (at most 2^53 - 1: a larger limit is the same, "all"). */
  limit: number;
  /** Match only in these fields (`null`: every indexed string). */
  fields: string[][] | null;
}

/** Default number of search hits. */
export const DEFAULT_SEARCH_LIMIT = 20;

/** FNV-1a over UTF-16 code units, as 8 hex digits (stable: index names are made of it). */
export function nameHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** The stable name of the index on `path` under `prefix`. */
export function indexName(prefix: Key, path: readonly string[]): string {
  return `fs_ix_${nameHash(JSON.stringify([prefix, path]))}`;
}

/**
 * A segment that reads as an array index somewhere: the core's own (`0`,
 * `12`), and what PostgreSQL's `#>` takes as a subscript on an array (a sign,
 * leading zeros, spaces: `-1` is the last item there). The core reads such a
 * segment as an object's key only, so an index on it would answer differently
 * on postgres.
 */
const SUBSCRIPT_LIKE = /^\s*[+-]?\d+\s*$/;

function checkPath(path: unknown, what: string): string[] {
  const segments = parsePath(path as string | string[], what);
  for (const seg of segments) {
    if (
      seg === "" || SUBSCRIPT_LIKE.test(seg) || /["\\]/.test(seg) || seg.includes("\u0000") ||
      !seg.isWellFormed()
    ) {
      throw new TypeError(
        `${what}: path segment ${
          JSON.stringify(seg)
        } cannot be indexed (empty, an array index or a number read as one, like "-1" or "01", ` +
          `or holding a quote, backslash or NUL); ` +
          `index a named field like "status" or "customer.id"`,
      );
    }
  }
  return segments;
}

/**
 * Validate index declarations: a `TypeError` that names the offending item
 * (`indexes[1].path: ...`). Duplicates are dropped.
 */
export function normalizeIndexes(indexes: unknown, what: string): IndexSpec[] {
  if (indexes === undefined) return [];
  if (!Array.isArray(indexes)) {
    throw new TypeError(
      `${what}: indexes must be a list like [{ prefix: [orders], path: status }]`,
    );
  }
  const out = new Map<string, IndexSpec>();
  indexes.forEach((decl: IndexDeclaration, i) => {
    const at = `${what}: indexes[${i}]`;
    if (typeof decl !== "object" || decl === null || Array.isArray(decl)) {
      throw new TypeError(`${at} must be an object like { prefix: [orders], path: status }`);
    }
    const extra = Object.keys(decl).filter((k) => k !== "prefix" && k !== "path");
    if (extra.length > 0) {
      throw new TypeError(`${at} has unknown option "${extra[0]}"; an index has prefix and path`);
    }
    if (decl.prefix === undefined) {
      throw new TypeError(`${at}.prefix is missing: the key prefix of the entries to index`);
    }
    assertKey(decl.prefix, `${at}.prefix`, true);
    if (decl.path === undefined) {
      throw new TypeError(`${at}.path is missing: the field to index, like "status"`);
    }
    const path = checkPath(decl.path, `${at}.path`);
    const prefix = [...decl.prefix];
    const name = indexName(prefix, path);
    out.set(name, { name, prefix, path });
  });
  return [...out.values()];
}

/** Validate a search declaration (`undefined` when there is none). */
export function normalizeSearch(search: unknown, what: string): SearchSpec | undefined {
  if (search === undefined) return undefined;
  const at = `${what}: search`;
  if (typeof search !== "object" || search === null || Array.isArray(search)) {
    throw new TypeError(`${at} must be an object like { prefix: [notes], fields: [title, body] }`);
  }
  const decl = search as SearchDeclaration;
  const extra = Object.keys(decl).filter((k) => k !== "prefix" && k !== "fields");
  if (extra.length > 0) {
    throw new TypeError(`${at} has unknown option "${extra[0]}"; search has prefix and fields`);
  }
  const prefix = decl.prefix === undefined ? [] : decl.prefix;
  assertKey(prefix, `${at}.prefix`, true);
  return { prefix: [...prefix], fields: checkFields(decl.fields, `${at}.fields`) };
}

function checkFields(fields: unknown, what: string): string[][] | null {
  if (fields === undefined) return null;
  if (!Array.isArray(fields) || fields.length === 0) {
    throw new TypeError(`${what} must be a non-empty list of paths like [title, body]`);
  }
  return fields.map((f, i) => checkPath(f, `${what}[${i}]`));
}

/** Validate a search call against the declaration. */
export function normalizeSearchRequest(
  text: unknown,
  options: SearchOptions | undefined,
  declared: SearchSpec | undefined,
  what: string,
): SearchRequest {
  if (typeof text !== "string") throw new TypeError(`${what}: the search text must be a string`);
  const terms = searchTerms(text);
  if (terms.length === 0) {
    throw new TypeError(
      `${what}: ${JSON.stringify(text)} has no words to search for (letters or digits)`,
    );
  }
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError(`${what}: options must be an object`);
  }
  const prefix = options?.prefix ?? declared?.prefix ?? [];
  assertKey(prefix, `${what}: prefix`, true);
  const limit = options?.limit ?? DEFAULT_SEARCH_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`${what}: limit must be a positive integer (got ${limit})`);
  }
  let fields = declared?.fields ?? null;
  if (options?.fields !== undefined) {
    const asked = checkFields(options.fields, `${what}: fields`)!;
    if (fields !== null) {
      const known = new Set(fields.map((f) => f.join(".")));
      const unknown = asked.find((f) => !known.has(f.join(".")));
      if (unknown !== undefined) {
        throw new TypeError(
          `${what}: field "${unknown.join(".")}" is not indexed for search; the store's search ` +
            `fields are ${fields.map((f) => `"${f.join(".")}"`).join(", ")}`,
        );
      }
    }
    fields = asked;
  }
  return { terms, prefix: [...prefix], limit: Math.min(limit, MAX_COUNT), fields };
}

const WORD = /[\p{L}\p{N}\p{Co}]+/gu;

/**
 * The text search cuts its words from: `text` in Unicode NFKC, lower-cased
 * (JavaScript's `toLowerCase()`), and in NFKC again when lower-casing changed
 * something (a capital and a combining mark can lower-case to a pair that
 * composes: H + U+0331 to ẖ, Greek Υ + U+0342 to ῦ). So canonically and
 * compatibility-equivalent texts (`cafe\u0301` and `café`, `ＡＢＣ` and `ABC`,
 * `ﬁle` and `file`) have the same words, in any case.
 */
export function searchText(text: string): string {
  const nfkc = text.normalize("NFKC");
  const lower = nfkc.toLowerCase();
  return lower === nfkc ? lower : lower.normalize("NFKC");
}

/**
 * Every word of `text`, in order, repeats kept: runs of letters, digits and
 * private-use characters (`\p{L}`, `\p{N}`, `\p{Co}`) of its NFKC,
 * lower-cased form ({@linkcode searchText}). The one tokenizer of search: the
 * backends index what it cuts.
 */
export function searchWords(text: string): string[] {
  return searchText(text).match(WORD) ?? [];
}

/** The words of `text` ({@linkcode searchWords}), each once, in order. */
export function searchTerms(text: string): string[] {
  return [...new Set(searchWords(text))];
}

function collectStrings(value: unknown, out: string[]): void {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) { for (const v of value) collectStrings(v, out); }
  else if (typeof value === "object" && value !== null) {
    for (const v of Object.values(value)) collectStrings(v, out);
  }
}

/** The strings of `value` that search reads: every string, or those at `fields`. */
export function searchableStrings(value: unknown, fields: string[][] | null): string[] {
  const out: string[] = [];
  if (fields === null) collectStrings(value, out);
  else for (const f of fields) collectStrings(readPath(value, f), out);
  return out;
}

/**
 * The reference search: a score when every term occurs among the words of
 * the value's searchable strings, `undefined` otherwise. The score grows with
 * how often the terms occur and shrinks with the text's length.
 */
export function searchScore(
  value: unknown,
  terms: readonly string[],
  fields: string[][] | null,
): number | undefined {
  const counts = new Map<string, number>();
  let total = 0;
  for (const s of searchableStrings(value, fields)) {
    for (const w of searchWords(s)) {
      counts.set(w, (counts.get(w) ?? 0) + 1);
      total++;
    }
  }
  let score = 0;
  for (const t of terms) {
    const n = counts.get(t);
    if (n === undefined) return undefined;
    score += n;
  }
  return score / Math.sqrt(total);
}

/** Sort hits best first, ties by key. */
export function sortHits<E extends { key: Key; score: number }>(hits: E[]): E[] {
  return hits.sort((a, b) => b.score - a.score || compareKeys(a.key, b.key));
}

function samePath(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** What an index can do for a query. */
export interface IndexChoice {
  /** The index. */
  index: IndexSpec;
  /** The where clause it narrows by (its position in `query.where`), if any. */
  clause?: number;
  /** Whether it gives the order of `orderBy[0]` (ascending). */
  orders: boolean;
}

/**
 * Pick the index for a query: one whose prefix covers the query's prefix
 * and whose path has an `eq` clause (best), a range clause, or is the first
 * sort key. Operands an index cannot narrow by (arrays, objects) do not count.
 */
export function chooseIndex(
  indexes: readonly IndexSpec[],
  q: NormalizedQuery,
): IndexChoice | undefined {
  let best: IndexChoice | undefined;
  let bestRank = 0;
  for (const index of indexes) {
    if (!coversPrefix(index.prefix, q.prefix)) continue;
    const orders = q.orderBy.length > 0 && samePath(q.orderBy[0].path, index.path);
    q.where.forEach((c, i) => {
      if (!samePath(c.path, index.path)) return;
      const scalar = c.value === null || ["string", "number", "boolean"].includes(typeof c.value);
      let rank = 0;
      if (c.op === "eq" && scalar) rank = 3;
      else if (
        ["lt", "lte", "gt", "gte"].includes(c.op) &&
        (typeof c.value === "number" || typeof c.value === "string")
      ) rank = 2;
      if (rank > bestRank) {
        bestRank = rank;
        best = { index, clause: i, orders };
      }
    });
    if (orders && bestRank < 1) {
      bestRank = 1;
      best = { index, orders };
    }
  }
  return best;
}

/** Whether every key under `inner` is under `outer` (`inner` equals or extends `outer`). */
export function coversPrefix(outer: Key, inner: Key): boolean {
  return inner.length >= outer.length && outer.every((p, i) => inner[i] === p);
}
