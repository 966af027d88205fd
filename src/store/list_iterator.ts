/**
 * The one adapter from an async iterator of entries to a
 * {@linkcode ListIterator}: the store, its wrappers (cache, hooks) and the
 * store a migration sees all build theirs with {@linkcode listIterator}.
 *
 * @module
 */
import type { Entry, JsonValue, ListIterator } from "./types.ts";

/** Entries in a page when neither `nextPage(max)` nor the listing's `batchSize` says. */
export const DEFAULT_LIST_PAGE = 256;

/** How {@linkcode listIterator} steps. */
export interface ListIteratorOptions<T> {
  /** Where the listing stands: `""` before the first entry. */
  cursor: () => string;
  /** Wraps every step (to check the store is open, to yield, to hold a lock…). */
  next?: (step: () => Promise<IteratorResult<Entry<T>>>) => Promise<IteratorResult<Entry<T>>>;
  /**
   * The next at most `max` entries in one step (`max` already checked), for
   * a source that can hand out a page at once. Without it, `nextPage` steps
   * through `next` (wrapped, one entry at a time).
   */
  page?: (max: number) => Promise<Entry<T>[]>;
  /** `nextPage()`'s default `max` (the listing's `batchSize`); {@linkcode DEFAULT_LIST_PAGE} without it. */
  pageSize?: number;
}

/** Check `nextPage(max)`'s argument: `undefined` (the default) or a positive integer. */
export function pageMax(max: number | undefined, pageSize: number | undefined): number {
  if (max === undefined) return pageSize ?? DEFAULT_LIST_PAGE;
  if (!Number.isInteger(max) || max < 1) {
    throw new RangeError(`Cannot list a page: max must be a positive integer (got ${max})`);
  }
  return max;
}

/** A {@linkcode ListIterator} over `source`. */
export function listIterator<T = JsonValue>(
  source: AsyncIterator<Entry<T>>,
  options: ListIteratorOptions<T>,
): ListIterator<T> {
  const step = () => source.next();
  const wrap = options.next;
  const next = wrap ? () => wrap(step) : step;
  const page = options.page;
  /** The fallback: one entry at a time through `next`. */
  const stepPage = async (max: number): Promise<Entry<T>[]> => {
    const out: Entry<T>[] = [];
    while (out.length < max) {
      const r = await next();
      if (r.done) break;
      out.push(r.value);
    }
    return out;
  };
  const iterator = {
    get cursor() {
      return options.cursor();
    },
    next,
    nextPage(max?: number): Promise<Entry<T>[]> {
      let n: number;
      try {
        n = pageMax(max, options.pageSize);
      } catch (err) {
        return Promise.reject(err);
      }
      return page ? page(n) : stepPage(n);
    },
    return: (value?: unknown) =>
      source.return?.(value as undefined) ??
        Promise.resolve({ done: true as const, value: undefined }),
    throw: (err?: unknown) => source.throw?.(err) ?? Promise.reject(err),
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator as unknown as ListIterator<T>;
}
