/**
 * Keyset pagination of a listing, for the SQL drivers: a listing reads pages
 * of at most `batchSize` rows in key order, each page starting after the last
 * key of the one before. No transaction or cursor stays open between pages
 * (a long listing never blocks a checkpoint or a vacuum), and each page sees
 * the latest commits.
 *
 * The driver runs each page's `SELECT` (synchronously or not);
 * {@linkcode KeysetPages} keeps where the listing stands:
 *
 * ```ts ignore
 * const pages = new KeysetPages(range);
 * for (let size = pages.nextSize(); size > 0; size = pages.nextSize()) {
 *   const params: unknown[] = [];
 *   const where = boundsWhere(pages.bounds, (bytes) => `$${params.push(bytes)}`);
 *   const rows = run(pages.select(table, [...where, live], limit), [...params, now, size]);
 *   for (const row of rows) yield entryOf(row);
 *   if (!pages.advance(rows, size)) return;
 * }
 * ```
 *
 * @module
 */
import type { KeyRange, PagedListing, RawEntry } from "../../src/store/driver.ts";
import {
  type ByteBounds,
  byteBounds,
  decodeKey,
  decodeKeyUnder,
  encodeKey,
} from "../../src/store/keys.ts";
import { isEmptyBounds, prefixBounds } from "./bounds.ts";

/** Rows in a page when the listing does not say (`KeyRange.batchSize`). */
export const DEFAULT_PAGE_SIZE = 256;

/**
 * A row of an entries table: `key` holds `encodeKey()` bytes, `value` JSON
 * text. (A type, not an interface, so that SQLite's untyped rows convert to it.)
 */
export type EntryRow = {
  /** The encoded key. */
  key: Uint8Array;
  /** The value's JSON text. */
  value: string;
  /** The version of the commit that wrote it. */
  version: string;
  /** Milliseconds since the epoch, or `null` when it never expires. */
  expires_at: number | null;
};

/**
 * An entries-table row as an array (SQLite's `setReturnArrays`): reading an
 * array's elements is cheaper than a row object's named properties.
 */
export type EntryTuple = [
  key: Uint8Array,
  value: string,
  version: string,
  expiresAt: number | null,
];

/** The column list of a `SELECT` whose rows are {@linkcode EntryRow}s or {@linkcode EntryTuple}s. */
export const ENTRY_COLUMNS = "key, value, version, expires_at";

/** The entry a row holds. */
export function entryOf(row: EntryRow): RawEntry {
  return {
    key: decodeKey(row.key),
    value: row.value,
    version: row.version,
    expiresAt: row.expires_at,
  };
}

/**
 * The entries of a listing's rows: under a prefix, each key decodes only the
 * elements after it (the prefix's strings are shared, see `decodeKeyUnder`).
 */
function entryMaker(range: KeyRange): (row: EntryRow) => RawEntry {
  if (range.prefix === undefined || range.prefix.length === 0) return entryOf;
  const prefix = [...range.prefix]; // the caller's array may change while the listing runs
  const prefixBytes = encodeKey(prefix);
  return (row) => ({
    key: decodeKeyUnder(row.key, prefix, prefixBytes),
    value: row.value,
    version: row.version,
    expiresAt: row.expires_at,
  });
}

/** Where a keyset-paginated listing of one key range stands. */
export class KeysetPages {
  /** The bounds of the next page: the range's, narrowed past every page read. */
  readonly bounds: ByteBounds;
  /** Whether the listing runs in descending key order. */
  readonly reverse: boolean;
  #remaining: number;
  #pageSize: number;

  /** The pages of `range` (its bounds, order, `limit` and `batchSize`). */
  constructor(range: KeyRange) {
    // A prefix alone (the common listing) takes its bounds from the shared memo.
    this.bounds = range.start === undefined && range.end === undefined && range.prefix !== undefined
      ? { ...prefixBounds(range.prefix) }
      : byteBounds(range);
    this.reverse = range.reverse === true;
    this.#remaining = range.limit ?? Infinity;
    this.#pageSize = range.batchSize ?? DEFAULT_PAGE_SIZE;
  }

  /** How many rows the next page asks for; 0 when the listing is complete. */
  nextSize(): number {
    if (this.#remaining <= 0 || isEmptyBounds(this.bounds)) return 0;
    return Math.min(this.#pageSize, this.#remaining);
  }

  /**
   * The `SELECT` of a page: the entries of `table` that satisfy every
   * condition of `where`, in the listing's key order, at most `limit` (a
   * placeholder or literal) of them; the select list is `columns`
   * ({@linkcode ENTRY_COLUMNS} by default).
   */
  select(table: string, where: readonly string[], limit: string, columns = ENTRY_COLUMNS): string {
    return `SELECT ${columns} FROM ${table} WHERE ${where.join(" AND ")} ORDER BY key ${
      this.reverse ? "DESC" : "ASC"
    } LIMIT ${limit}`;
  }

  /**
   * Move past a page that asked for `size` rows and got `rows`. Returns
   * `false` when that page was the last (it came back short).
   */
  advance(rows: readonly { key: Uint8Array }[], size: number): boolean {
    return this.advancePast(rows.length, rows[rows.length - 1]?.key, size);
  }

  /**
   * {@linkcode KeysetPages.advance} given the page's row count and its last
   * key (`undefined` for an empty page).
   */
  advancePast(count: number, last: Uint8Array | undefined, size: number): boolean {
    if (count < size || last === undefined) return false;
    this.#remaining -= count;
    if (this.reverse) {
      this.bounds.upper = last;
    } else {
      this.bounds.lower = last;
      this.bounds.lowerExclusive = true;
    }
    return true;
  }
}

/**
 * How {@linkcode asyncPagedEntries} reads rows of another shape than
 * {@linkcode EntryRow}: the entry of a row, and its encoded key (the next
 * page's bound, asked of a page's last row only).
 */
export interface RowReader<R> {
  /** The entry a row holds. */
  entry(row: R): RawEntry;
  /** The row's key, as `encodeKey()` bytes. */
  key(row: R): Uint8Array;
}

/**
 * The entries of an async driver's keyset-paginated listing of `range`:
 * `fetch(pages, size)` runs one page's `SELECT` (rows of `reader`'s shape,
 * {@linkcode EntryRow}s by default). Within a page each entry is
 * handed out as an already resolved promise (no async generator's promise
 * jobs per entry), or many at once by `nextPage`; the next page is read when
 * the last one is used up.
 */
export function asyncPagedEntries<R = EntryRow>(
  range: KeyRange,
  fetch: (pages: KeysetPages, size: number) => Promise<R[]>,
  reader?: RowReader<R>,
): PagedListing {
  const pages = new KeysetPages(range);
  const entryOf = reader?.entry ?? (entryMaker(range) as unknown as (row: R) => RawEntry);
  const keyOf = reader?.key ?? ((row: R) => (row as unknown as EntryRow).key);
  let rows: R[] = [];
  let i = 0;
  let more = true;
  let finished = false;
  const done = (): IteratorResult<RawEntry> => ({ done: true, value: undefined });
  /** Read the next page with rows in it; its first entry. */
  const readPage = async (): Promise<IteratorResult<RawEntry>> => {
    while (!finished) {
      const size = more ? pages.nextSize() : 0;
      if (size === 0) break;
      try {
        rows = await fetch(pages, size);
      } catch (err) {
        finished = true;
        throw err;
      }
      i = 0;
      more = pages.advancePast(
        rows.length,
        rows.length === 0 ? undefined : keyOf(rows[rows.length - 1]),
        size,
      );
      if (finished) break;
      if (rows.length > 0) return { done: false, value: entryOf(rows[i++]) };
    }
    finished = true;
    return done();
  };
  const iterator: PagedListing = {
    next() {
      if (i < rows.length && !finished) {
        return Promise.resolve({ done: false, value: entryOf(rows[i++]) });
      }
      try {
        return readPage();
      } catch (err) {
        return Promise.reject(err);
      }
    },
    async nextPage(max: number): Promise<RawEntry[]> {
      const out: RawEntry[] = [];
      while (out.length < max && !finished) {
        if (i < rows.length) {
          out.push(entryOf(rows[i++]));
          continue;
        }
        const r = await readPage();
        if (r.done) break;
        out.push(r.value);
      }
      return out;
    },
    takeBuffered(): RawEntry[] {
      if (finished || i >= rows.length) return [];
      const out = new Array<RawEntry>(rows.length - i);
      for (let j = 0; i < rows.length; j++) out[j] = entryOf(rows[i++]);
      return out;
    },
    return() {
      finished = true;
      rows = [];
      return Promise.resolve(done());
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/**
 * The entries of a synchronous driver's keyset-paginated listing of `range`:
 * `fetch(pages, size)` runs one page's `SELECT` and returns its rows as
 * {@linkcode EntryTuple}s. A plain iterator over each page's rows (no
 * generator to resume per entry); the next page is read when the last one is
 * used up.
 */
export function pagedEntries(
  range: KeyRange,
  fetch: (pages: KeysetPages, size: number) => EntryTuple[],
): IterableIterator<RawEntry> {
  const pages = new KeysetPages(range);
  const prefix = range.prefix === undefined || range.prefix.length === 0
    ? undefined
    : [...range.prefix]; // the caller's array may change while the listing runs
  const prefixBytes = prefix === undefined ? undefined : encodeKey(prefix);
  let rows: EntryTuple[] = [];
  let i = 0;
  let more = true;
  let finished = false;
  const done = (): IteratorResult<RawEntry> => ({ done: true, value: undefined });
  const iterator: IterableIterator<RawEntry> = {
    next() {
      while (!finished) {
        if (i < rows.length) {
          const row = rows[i++];
          return {
            done: false,
            value: {
              key: prefix === undefined
                ? decodeKey(row[0])
                : decodeKeyUnder(row[0], prefix, prefixBytes!),
              value: row[1],
              version: row[2],
              expiresAt: row[3],
            },
          };
        }
        const size = more ? pages.nextSize() : 0;
        if (size === 0) break;
        try {
          rows = fetch(pages, size);
        } catch (err) {
          finished = true;
          throw err;
        }
        i = 0;
        more = pages.advancePast(rows.length, rows[rows.length - 1]?.[0], size);
      }
      finished = true;
      return done();
    },
    return() {
      finished = true;
      rows = [];
      return done();
    },
    [Symbol.iterator]() {
      return iterator;
    },
  };
  return iterator;
}
