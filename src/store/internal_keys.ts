/**
 * The reserved internal key space: keys whose first element is exactly
 * `"\u0000"` belong to the core (the change feed's fallback, the core's index
 * entries, encryption metadata). Users' keys whose first element starts with
 * `"\u0000"` are refused by every public Store method (see `assertKey`), and
 * everything users see (list, count, query, search, clear, backups, the HTTP
 * API) leaves the internal space out.
 *
 * The core reads and writes internal keys through the driver, never through
 * the public API. In key order the internal space sits between the users'
 * keys whose first element is `""` and those whose first element starts with
 * `"\u0001"`: a range over every key is split in two around it, below
 * (`end: ["\u0000"]`) and above (`start: ["\u0000\u0000"]`).
 *
 * @module
 */
import { compareKeys } from "./keys.ts";
import type { Clock, Key } from "./types.ts";
import type { StoreDriver } from "./driver.ts";
import type { SearchSpec } from "./indexes.ts";

/** The first element of every internal key. */
export const INTERNAL = "\u0000";

/** The exclusive upper bound of the users' keys below the internal space. */
export const BELOW_INTERNAL_END: Key = Object.freeze([INTERNAL]);
/** The inclusive lower bound of the keys above the internal space. */
export const ABOVE_INTERNAL_START: Key = Object.freeze([INTERNAL + INTERNAL]);

/**
 * A key of the core's own: `["\u0000", area, ...parts]`.
 *
 * @example
 * ```ts ignore
 * internalKey("feed", "counter"); // ["\u0000", "feed", "counter"]
 * ```
 */
export function internalKey(area: string, ...parts: string[]): Key {
  return [INTERNAL, area, ...parts];
}

/** True when `key` lies in the internal space (its first element is exactly `"\u0000"`). */
export function isInternalKey(key: Key): boolean {
  return key.length > 0 && key[0] === INTERNAL;
}

/** True when a user's key or bound is refused: its first element starts with `"\u0000"`. */
export function isReservedKey(key: Key): boolean {
  return key.length > 0 && key[0].charCodeAt(0) === 0;
}

/** A range as the core hands it to a driver (a subset of `KeyRange`). */
export interface SplittableRange {
  /** Only keys strictly under this prefix. */
  prefix?: Key;
  /** Lower bound. */
  start?: Key;
  /** Make `start` exclusive. */
  startExclusive?: boolean;
  /** Upper bound, exclusive. */
  end?: Key;
}

/**
 * The parts of `range` outside the internal space, in key order: the range
 * itself when it cannot reach the internal space (a non-empty prefix), else
 * up to two ranges, below and above it (none when both are empty).
 */
export function outsideInternal<R extends SplittableRange>(range: R): R[] {
  if (range.prefix !== undefined && range.prefix.length > 0) {
    return isInternalKey(range.prefix) ? [] : [range];
  }
  const out: R[] = [];
  // Below: [start, min(end, ["\u0000"])).
  if (range.start === undefined || compareKeys(range.start, BELOW_INTERNAL_END) < 0) {
    const end = range.end === undefined || compareKeys(range.end, BELOW_INTERNAL_END) > 0
      ? BELOW_INTERNAL_END
      : range.end;
    if (range.start === undefined || compareKeys(range.start, end) < 0) out.push({ ...range, end });
  }
  // Above: [max(start, ["\u0000\u0000"]), end).
  if (range.end === undefined || compareKeys(range.end, ABOVE_INTERNAL_START) > 0) {
    const above: R = { ...range };
    if (range.start === undefined || compareKeys(range.start, ABOVE_INTERNAL_START) < 0) {
      above.start = ABOVE_INTERNAL_START;
      delete above.startExclusive;
    }
    if (above.end === undefined || compareKeys(above.start!, above.end) < 0) out.push(above);
  }
  return out;
}

/**
 * True when a range over users' keys could reach the internal space (an empty
 * prefix whose bounds do not exclude it): such a range is split with
 * {@linkcode outsideInternal}.
 */
export function reachesInternal(range: SplittableRange): boolean {
  if (range.prefix !== undefined && range.prefix.length > 0) return isInternalKey(range.prefix);
  return (range.start === undefined || compareKeys(range.start, ABOVE_INTERNAL_START) < 0) &&
    (range.end === undefined || compareKeys(range.end, BELOW_INTERNAL_END) > 0);
}

/** The key under which a wrapped store hands the core its driver (see {@linkcode internalAccess}). */
export const INTERNAL_ACCESS: unique symbol = Symbol("flowstate.internalAccess");

/** What core code gets to read and write internal keys: the driver itself, and the store's clock. */
export interface InternalAccess {
  /** The plugin's driver (internal keys go through it, never through the public API). */
  readonly driver: StoreDriver;
  /** The store's clock. */
  readonly clock: Clock;
  /** The declared search index (`undefined`: none declared; search reads every string of every value). */
  readonly search: SearchSpec | undefined;
}

/**
 * The driver behind a store the core wrapped (`openStore`), for core code
 * that reads and writes internal keys; `undefined` for any other Store (a
 * wrapper that does not forward it, a test double).
 */
export function internalAccess(store: unknown): InternalAccess | undefined {
  const core = coreStore(store);
  if (core === undefined) return undefined;
  const get = (core as { [INTERNAL_ACCESS]?: () => InternalAccess })[INTERNAL_ACCESS];
  return typeof get === "function" ? get.call(core) : undefined;
}

/**
 * The key under which a wrapper (cache, hooks, the server's notifying store)
 * hands out the store it wraps, so that core code finds the core's store
 * beneath (see {@linkcode coreStore}).
 */
export const INNER_STORE: unique symbol = Symbol("flowstate.innerStore");

/** The innermost store beneath wrappers that forward {@linkcode INNER_STORE}. */
export function coreStore(store: unknown): object | undefined {
  let current = store;
  for (let depth = 0; depth < 32; depth++) {
    if (typeof current !== "object" || current === null) return undefined;
    const inner = (current as { [INNER_STORE]?: () => unknown })[INNER_STORE];
    if (typeof inner !== "function") return current;
    current = inner.call(current);
  }
  return undefined;
}
