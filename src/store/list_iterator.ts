/**
 * The one adapter from an async iterator of entries to a
 * {@linkcode ListIterator}: the store, its wrappers (cache, hooks) and the
 * store a migration sees all build theirs with {@linkcode listIterator}.
 *
 * @module
 */
import type { Entry, JsonValue, ListIterator } from "./types.ts";

/** How {@linkcode listIterator} steps. */
export interface ListIteratorOptions<T> {
  /** Where the listing stands: `""` before the first entry. */
  cursor: () => string;
  /** Wraps every step (to check the store is open, to yield, to hold a lock…). */
  next?: (step: () => Promise<IteratorResult<Entry<T>>>) => Promise<IteratorResult<Entry<T>>>;
}

/** A {@linkcode ListIterator} over `source`. */
export function listIterator<T = JsonValue>(
  source: AsyncIterator<Entry<T>>,
  options: ListIteratorOptions<T>,
): ListIterator<T> {
  const step = () => source.next();
  const wrap = options.next;
  const iterator = {
    get cursor() {
      return options.cursor();
    },
    next: wrap ? () => wrap(step) : step,
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
