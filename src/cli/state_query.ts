/**
 * `flowstate state query` and `flowstate state search`: queries (using the
 * store's declared indexes) and full-text search from the command line.
 *
 * `--json` output (one JSON document on stdout, stable):
 * - `query`: `[{ "key", "value", "version", "expiresAt" }, ...]` in query order
 * - `query --explain`: `{ "index": string | null, "scan": boolean, "by": "native" | "core", "detail": [...] }`
 * - `search`: `[{ "key", "value", "version", "expiresAt", "score" }, ...]` best first
 *
 * Keys are relative to the scope's prefix with `--scope`/`--flow`/`--node`,
 * as in the other state commands.
 *
 * @module
 */
import type { JsonValue, OrderBy, Query, WhereClause } from "../store/types.ts";
import { didYouMean, editDistance } from "../_suggest.ts";
import { type GlobalOptions, printError } from "./common.ts";
import { formatKey, parseKey, UsageError } from "./input.ts";
import { entryJson, type StateOptions, withStore } from "./state.ts";
import { type SealedPathDetail, SealedPathError } from "../store/sealed.ts";
import { parseJson } from "../_json.ts";

const MAX_VALUE_WIDTH = 120;

/** Options of `state query`. */
export interface StateQueryOptions extends StateOptions {
  /** `--prefix a/b`: only keys under it (relative to the scope). */
  prefix?: string;
  /** `--where` clauses as written (`status=open`, `n>=3`, `tags~red`, `done?`, `!done?`). */
  where?: string[];
  /** `--order-by` paths, `-` first for descending (`-createdAt`), repeatable or comma-separated. */
  orderBy?: string[];
  /** `--limit N`. */
  limit?: number;
  /** `--offset N`. */
  offset?: number;
  /** `--explain`: print the plan instead of running the query. */
  explain?: boolean;
}

/** Options of `state search`. */
export interface StateSearchOptions extends StateOptions {
  /** `--prefix a/b`. */
  prefix?: string;
  /** `--limit N` (default 20). */
  limit?: number;
  /** `--fields a,b`: only these declared fields. */
  fields?: string;
}

/** A `--where` operand: JSON when it parses (`3`, `true`, `"3"`, `null`), else the text itself. */
function operand(text: string): JsonValue {
  try {
    return parseJson(text) as JsonValue;
  } catch {
    return text;
  }
}

const WHERE = /^([^=!<>~?]+?)\s*(==|=|!=|<=|>=|<|>|~)\s*(.*)$/s;
const OPS: Record<string, WhereClause["op"]> = {
  "=": "eq",
  "==": "eq",
  "!=": "ne",
  "<": "lt",
  "<=": "lte",
  ">": "gt",
  ">=": "gte",
  "~": "contains",
};

/**
 * Parse one `--where`: `path=value` (eq), `!=`, `<`, `<=`, `>`, `>=`,
 * `path~value` (contains), `path?` (exists), `!path?` (absent). The value
 * is JSON when it parses, else a string; a string that starts with an
 * operator character (`price>>100`) is refused as a likely typo (a JSON
 * string, `price>'">100"'`, is taken as written).
 */
export function parseWhere(text: string): WhereClause {
  const exists = /^(!?)([^=!<>~?]+)\?$/.exec(text.trim());
  if (exists) return { path: exists[2].trim(), op: "exists", value: exists[1] !== "!" };
  const m = WHERE.exec(text.trim());
  if (!m || m[1].trim() === "") {
    throw new UsageError(
      `Invalid --where "${text}": write path=value, path!=value, path<value, path<=value, ` +
        `path>value, path>=value, path~value (contains), path? (exists) or !path? (absent)`,
    );
  }
  const value = operand(m[3]);
  // `price>>100`, `n<=>3`, `a==!b`: a doubled or mistyped operator, not a text to compare with.
  if (typeof value === "string" && /^[=!<>~]/.test(m[3])) {
    throw new UsageError(
      `Invalid --where "${text}": the value ${
        JSON.stringify(m[3])
      } starts with an operator character (a typo for ${m[1].trim()}${m[2]}${
        m[3].replace(/^[=!<>~]+\s*/, "")
      }?); to compare with that text, write it as a JSON string: ${m[1].trim()}${m[2]}'${
        JSON.stringify(m[3])
      }'`,
    );
  }
  return { path: m[1].trim(), op: OPS[m[2]], value };
}

/**
 * Parse `--order-by` items: `path` or `path:asc` ascending, `-path` or
 * `path:desc` descending, comma-separated too. (Write `--order-by=-path`:
 * after a space, `-path` would read as an option.)
 */
export function parseOrderBy(items: readonly string[]): OrderBy[] {
  return orderByItems(items).map((raw) => {
    const text = raw.trim();
    if (text === "" || text === "-") {
      throw new UsageError(`Invalid --order-by "${raw}": write a path, or -path for descending`);
    }
    const suffix = /^(.+):(asc|desc)$/i.exec(text);
    if (suffix) {
      return { path: suffix[1], direction: suffix[2].toLowerCase() as "asc" | "desc" };
    }
    // `name:dsc` would sort by a field literally named "name:dsc": a misspelt direction.
    const typo = /^(.+):([A-Za-z]{3,5})$/.exec(text);
    if (typo && ["asc", "desc"].some((d) => editDistance(typo[2].toLowerCase(), d) <= 2)) {
      throw new UsageError(
        `Invalid --order-by "${raw}": "${typo[2]}" is not a direction${
          // On a tie ("dsc" is one edit from both), the one with the same first letter.
          didYouMean(
            typo[2].toLowerCase(),
            /^d/i.test(typo[2]) ? ["desc", "asc"] : ["asc", "desc"],
          )}; write ${typo[1]}:asc or ${typo[1]}:desc (to sort by a field named "${text}", ` +
          `write ${text}:asc)`,
      );
    }
    return text.startsWith("-")
      ? { path: text.slice(1), direction: "desc" as const }
      : { path: text, direction: "asc" as const };
  });
}

/** The `--order-by` items, one per sort key (an option may hold several, comma-separated). */
function orderByItems(options: readonly string[]): string[] {
  return options.flatMap((item) => item.split(","));
}

function line(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > MAX_VALUE_WIDTH ? `${text.slice(0, MAX_VALUE_WIDTH - 1)}…` : text;
}

/**
 * A query an encrypted store refused because it reads a sealed field is a
 * usage error: print it naming the option as typed, resolve `undefined`
 * (exit 2). Any other error is thrown.
 */
async function sealedIsUsage<T>(
  pending: Promise<T>,
  typed: (detail: SealedPathDetail) => string | undefined,
): Promise<T | undefined> {
  try {
    return await pending;
  } catch (err) {
    if (!(err instanceof SealedPathError)) throw err;
    printError(err.messageFor({ typed: typed(err.detail) }));
    return undefined;
  }
}

/** The `--where`/`--order-by` item a refused `where[i]`/`orderBy[i]` came from, as typed. */
function typedQueryOption(options: StateQueryOptions, d: SealedPathDetail): string | undefined {
  if (d.index === undefined) return undefined;
  if (d.option === "where") {
    const text = options.where?.[d.index];
    return text === undefined ? undefined : `--where ${text}`;
  }
  const item = orderByItems(options.orderBy ?? [])[d.index]?.trim();
  if (item === undefined) return undefined;
  // `--order-by -body` would read `-body` as an option: write it the way that works.
  return item.startsWith("-") ? `--order-by=${item}` : `--order-by ${item}`;
}

/** `state query [--prefix P] [--where …]… [--order-by …] [--limit N] [--offset N] [--explain]`. */
export function stateQuery(options: StateQueryOptions, global: GlobalOptions): Promise<number> {
  const under = parseKey(options.prefix ?? "", { prefix: true });
  const where = (options.where ?? []).map(parseWhere);
  const orderBy = parseOrderBy(options.orderBy ?? []);
  return withStore(global, options, async ({ store, prefix, label }) => {
    const query: Query = {
      prefix: [...prefix, ...under],
      where,
      orderBy,
      limit: options.limit,
      offset: options.offset,
    };
    if (options.explain) {
      const plan = await sealedIsUsage(store.explain(query), (d) => typedQueryOption(options, d));
      if (plan === undefined) return 2;
      if (options.json) console.log(JSON.stringify(plan));
      else {
        console.log(
          plan.index === null
            ? `no index: ${plan.scan ? "scans every entry under the prefix" : "no scan"}`
            : `index ${plan.index}${plan.scan ? " (read in order, not narrowed)" : ""}`,
        );
        for (const d of plan.detail) console.log(`  ${d}`);
      }
      return 0;
    }
    const entries = await sealedIsUsage(store.query(query), (d) => typedQueryOption(options, d));
    if (entries === undefined) return 2;
    if (options.json) {
      console.log(`[${entries.map((e) => entryJson(e, prefix)).join(",\n")}]`);
      return 0;
    }
    for (const e of entries) {
      console.log(`${formatKey(e.key.slice(prefix.length))}\t${line(e.value)}`);
    }
    if (entries.length === 0) console.error(`No entries match in ${label}`);
    return 0;
  }, (note) => {
    if (options.json) console.log(options.explain ? "null" : "[]");
    console.error(note);
    return options.explain ? 1 : 0;
  });
}

/** `state search <text> [--prefix P] [--limit N] [--fields a,b]`. */
export function stateSearch(
  text: string,
  options: StateSearchOptions,
  global: GlobalOptions,
): Promise<number> {
  const under = options.prefix === undefined
    ? undefined
    : parseKey(options.prefix, { prefix: true });
  const fields = options.fields?.split(",").map((f) => f.trim()).filter((f) => f !== "");
  return withStore(global, options, async ({ store, prefix, label }) => {
    let hits;
    try {
      hits = await store.search(text, {
        prefix: under === undefined && prefix.length === 0
          ? undefined
          : [...prefix, ...(under ?? [])],
        limit: options.limit,
        fields,
      });
    } catch (err) {
      if (!(err instanceof TypeError || err instanceof RangeError)) throw err;
      printError(
        err instanceof SealedPathError
          ? err.messageFor({ typed: `--fields ${options.fields ?? ""}` })
          : err.message,
      );
      return 2;
    }
    if (options.json) {
      console.log(
        `[${
          hits.map((h) =>
            JSON.stringify({
              key: h.key.slice(prefix.length),
              value: h.value,
              version: h.version,
              expiresAt: h.expiresAt,
              score: h.score,
            })
          ).join(",\n")
        }]`,
      );
      return 0;
    }
    for (const h of hits) {
      console.log(
        `${h.score.toPrecision(3)}\t${formatKey(h.key.slice(prefix.length))}\t${line(h.value)}`,
      );
    }
    if (hits.length === 0) console.error(`Nothing matches ${JSON.stringify(text)} in ${label}`);
    return 0;
  }, (note) => {
    if (options.json) console.log("[]");
    console.error(note);
    return 0;
  });
}
