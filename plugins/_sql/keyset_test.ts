import assert from "node:assert/strict";
import { compareBytes, encodeKey } from "../../src/store/keys.ts";
import {
  asyncPagedEntries,
  DEFAULT_PAGE_SIZE,
  entryOf,
  type EntryRow,
  type EntryTuple,
  KeysetPages,
  pagedEntries,
} from "./keyset.ts";
import { prefixBounds } from "./bounds.ts";
import { StoreClosedError } from "../../src/errors.ts";
import type { KeyRange, PagedListing, StoreDriver } from "../../src/store/driver.ts";
import { wrapDriver } from "../../src/store/store.ts";
import { fakeClock } from "../../src/testing/clock.ts";
import { MemoryDriver } from "../memory/mod.ts";

const row = (key: string) => ({ key: encodeKey([key]) });

Deno.test("KeysetPages starts each forward page after the last key of the one before", () => {
  const pages = new KeysetPages({ prefix: [], batchSize: 2 });
  assert.equal(pages.nextSize(), 2);
  assert.equal(pages.advance([row("a"), row("b")], 2), true);
  assert.deepEqual(pages.bounds.lower, encodeKey(["b"]));
  assert.equal(pages.bounds.lowerExclusive, true);
  assert.equal(pages.advance([row("c")], 2), false, "a short page is the last one");
});

Deno.test("KeysetPages ends each reverse page before the last key of the one before", () => {
  const pages = new KeysetPages({ prefix: [], reverse: true, batchSize: 1 });
  assert.equal(pages.advance([row("z")], 1), true);
  assert.deepEqual(pages.bounds.upper, encodeKey(["z"]));
  assert.equal(pages.bounds.lower, undefined);
});

Deno.test("KeysetPages asks for no more rows than the limit leaves", () => {
  const pages = new KeysetPages({ prefix: [], limit: 3, batchSize: 2 });
  assert.equal(pages.nextSize(), 2);
  pages.advance([row("a"), row("b")], 2);
  assert.equal(pages.nextSize(), 1);
  pages.advance([row("c")], 1);
  assert.equal(pages.nextSize(), 0);
});

Deno.test("KeysetPages is complete at once when the range holds no key", () => {
  assert.equal(new KeysetPages({ start: ["b"], end: ["a"] }).nextSize(), 0);
  assert.equal(new KeysetPages({}).nextSize(), DEFAULT_PAGE_SIZE);
});

Deno.test("KeysetPages.select() orders by key in the listing's direction", () => {
  assert.equal(
    new KeysetPages({ reverse: true }).select("t", ["key < ?", "live"], "?"),
    "SELECT key, value, version, expires_at FROM t WHERE key < ? AND live ORDER BY key DESC LIMIT ?",
  );
});

Deno.test("entryOf() decodes a row's key", () => {
  assert.deepEqual(
    entryOf({ key: encodeKey(["a", "b"]), value: "1", version: "v1", expires_at: null }),
    { key: ["a", "b"], value: "1", version: "v1", expiresAt: null },
  );
});

Deno.test("KeysetPages of a prefix does not change the shared prefix bounds as it advances", () => {
  const shared = prefixBounds(["p"]);
  const lower = shared.lower;
  const pages = new KeysetPages({ prefix: ["p"], batchSize: 1 });
  assert.deepEqual(pages.bounds, shared);
  pages.advance([{ key: encodeKey(["p", "a"]) }], 1);
  assert.equal(prefixBounds(["p"]).lower, lower);
  assert.equal(prefixBounds(["p"]).lowerExclusive, true);
  assert.deepEqual(pages.bounds.lower, encodeKey(["p", "a"]));
});

/** A table of `n` rows under ["t"], served a page at a time like a SELECT would. */
function table(n: number) {
  const rows: EntryRow[] = Array.from({ length: n }, (_, i) => ({
    key: encodeKey(["t", String(i).padStart(3, "0")]),
    value: String(i),
    version: "v",
    expires_at: null,
  }));
  const sizes: number[] = [];
  const fetch = (pages: KeysetPages, size: number): Promise<EntryRow[]> => {
    sizes.push(size);
    const { lower } = pages.bounds;
    const after = lower === undefined ? rows : rows.filter((r) => compareBytes(r.key, lower) > 0);
    return Promise.resolve(after.slice(0, size));
  };
  return { rows, sizes, fetch };
}

Deno.test("asyncPagedEntries hands out every row of every page in order", async () => {
  const { sizes, fetch } = table(5);
  const keys: string[] = [];
  for await (const e of asyncPagedEntries({ prefix: ["t"], batchSize: 2 }, fetch)) {
    keys.push(e.key[1]);
  }
  assert.deepEqual(keys, ["000", "001", "002", "003", "004"]);
  assert.deepEqual(sizes, [2, 2, 2], "the short third page is the last");
});

Deno.test("asyncPagedEntries.nextPage() fills each page across fetches, mixed with next()", async () => {
  const { sizes, fetch } = table(7);
  const listing = asyncPagedEntries({ prefix: ["t"], batchSize: 3 }, fetch);
  const keys = (entries: { key: readonly string[] }[]) => entries.map((e) => e.key[1]);
  assert.deepEqual((await listing.next()).value?.key, ["t", "000"]);
  assert.deepEqual(keys(await listing.nextPage(4)), ["001", "002", "003", "004"]);
  assert.deepEqual(keys(await listing.nextPage(4)), ["005", "006"]);
  assert.deepEqual(await listing.nextPage(4), []);
  assert.deepEqual(sizes, [3, 3, 3], "no fetch past the short page");
});

Deno.test("asyncPagedEntries stops at the limit without reading another page", async () => {
  const { sizes, fetch } = table(10);
  const keys: string[] = [];
  for await (const e of asyncPagedEntries({ prefix: ["t"], limit: 3, batchSize: 2 }, fetch)) {
    keys.push(e.key[1]);
  }
  assert.deepEqual(keys, ["000", "001", "002"]);
  assert.deepEqual(sizes, [2, 1]);
});

Deno.test("asyncPagedEntries reads nothing after return() and ends after an error", async () => {
  const { sizes, fetch } = table(10);
  const it = asyncPagedEntries({ prefix: ["t"], batchSize: 2 }, fetch);
  assert.deepEqual((await it.next()).value?.key, ["t", "000"]);
  assert.deepEqual(await it.return!(), { done: true, value: undefined });
  assert.deepEqual(await it.next(), { done: true, value: undefined });
  assert.deepEqual(sizes, [2]);

  let calls = 0;
  const failing = asyncPagedEntries({ prefix: ["t"] }, () => {
    calls++;
    throw new Error("closed");
  });
  await assert.rejects(failing.next(), /closed/);
  assert.deepEqual(await failing.next(), { done: true, value: undefined });
  assert.equal(calls, 1);
});

Deno.test("pagedEntries hands out every row of every page in order, up to the limit", () => {
  const all = (range: Parameters<typeof pagedEntries>[0]) => {
    const t = table(5);
    const seen: string[] = [];
    const rowsOf = (pages: KeysetPages, size: number): EntryTuple[] => {
      t.sizes.push(size);
      const { lower } = pages.bounds;
      return t.rows.filter((r) => lower === undefined || compareBytes(r.key, lower) > 0)
        .slice(0, size).map((r) => [r.key, r.value, r.version, r.expires_at]);
    };
    for (const e of pagedEntries(range, rowsOf)) seen.push(e.key[1]);
    return { seen, sizes: t.sizes };
  };
  assert.deepEqual(all({ prefix: ["t"], batchSize: 2 }), {
    seen: ["000", "001", "002", "003", "004"],
    sizes: [2, 2, 2],
  });
  assert.deepEqual(all({ prefix: ["t"], limit: 3, batchSize: 2 }), {
    seen: ["000", "001", "002"],
    sizes: [2, 1],
  });
});

Deno.test("pagedEntries reads nothing after return() and ends after an error", () => {
  let calls = 0;
  const it = pagedEntries({ prefix: ["t"], batchSize: 1 }, () => {
    calls++;
    return [[encodeKey(["t", "a"]), "1", "v", null]];
  });
  assert.deepEqual(it.next().value?.key, ["t", "a"]);
  it.return!();
  assert.deepEqual(it.next(), { done: true, value: undefined });
  assert.equal(calls, 1);

  const failing = pagedEntries({ prefix: ["t"] }, () => {
    calls++;
    throw new Error("closed");
  });
  assert.throws(() => failing.next(), /closed/);
  assert.deepEqual(failing.next(), { done: true, value: undefined });
  assert.equal(calls, 2);
});

/**
 * A memory driver whose listing is an `asyncPagedEntries` (as postgres's is),
 * reading pages of `batchSize` rows and counting the pages and returns.
 */
class PagedMemoryDriver extends MemoryDriver {
  fetched: number[] = [];
  returned = 0;
  /** Entries handed over by `takeBuffered()`. */
  taken = 0;
  // @ts-expect-error: an async listing where MemoryDriver's is synchronous
  override list(range: KeyRange): PagedListing {
    const rows: EntryRow[] = [...super.list(range)].map((e) => ({
      key: encodeKey(e.key),
      value: e.value,
      version: e.version,
      expires_at: e.expiresAt,
    }));
    const listing = asyncPagedEntries({ ...range, batchSize: 2 }, (pages, size) => {
      this.fetched.push(size);
      const { lower } = pages.bounds;
      return Promise.resolve(
        rows.filter((r) => lower === undefined || compareBytes(r.key, lower) > 0).slice(0, size),
      );
    });
    const take = listing.takeBuffered!.bind(listing);
    listing.takeBuffered = () => {
      const out = take();
      this.taken += out.length;
      return out;
    };
    const close = listing.return!.bind(listing);
    listing.return = () => {
      this.returned++;
      return close();
    };
    return listing;
  }
}

async function pagedStore(n: number) {
  const clock = fakeClock(1_000);
  const driver = new PagedMemoryDriver(undefined, clock);
  const store = wrapDriver(driver as unknown as StoreDriver, { name: "paged", plugin: "t", clock });
  const op = store.atomic();
  for (let i = 0; i < n; i++) op.set(["t", String(i)], i, i % 3 === 2 ? { expireIn: 50 } : {});
  await op.commit();
  driver.fetched = [];
  return { store, driver, clock };
}

Deno.test("Store.list() takes a paged listing's read entries at once, in order, page by page", async () => {
  const { store, driver } = await pagedStore(7);
  const values: number[] = [];
  for await (const e of store.list<number>({ prefix: ["t"] })) values.push(e.value);
  assert.deepEqual(values, [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(driver.fetched, [2, 2, 2, 2], "one read per page, none ahead");
  assert.equal(driver.taken, 3, "the second entry of each full page comes without a step");
  driver.fetched = [];
  for await (const _ of store.list({ prefix: ["t"] })) break;
  assert.deepEqual(driver.fetched, [2]);
  assert.equal(driver.returned, 1);
});

Deno.test("Store.list() over a paged listing checks expiry when it hands an entry out", async () => {
  const { store, clock } = await pagedStore(7);
  const it = store.list<number>({ prefix: ["t"] });
  assert.equal((await it.next()).value?.value, 0); // page [0, 1] read; 2 and 5 expire at 1050
  clock.advance(100);
  const rest: number[] = [];
  for await (const e of it) rest.push(e.value);
  assert.deepEqual(rest, [1, 3, 4, 6]);
});

Deno.test("Store.list() over a paged listing mixes next(), steps asked at once and nextPage() in order", async () => {
  const { store, driver } = await pagedStore(9);
  const it = store.list<number>({ prefix: ["t"] });
  const v = (r: IteratorResult<{ value: number }>) => r.done ? "done" : r.value.value;
  assert.equal(v(await it.next()), 0);
  const [a, b, c] = await Promise.all([it.next(), it.next(), it.next()]);
  assert.deepEqual([v(a), v(b), v(c)], [1, 2, 3]);
  assert.deepEqual((await it.nextPage(3)).map((e) => e.value), [4, 5, 6]);
  assert.equal(v(await it.next()), 7);
  assert.deepEqual((await it.nextPage(5)).map((e) => e.value), [8]);
  assert.equal(v(await it.next()), "done");
  assert.deepEqual(driver.fetched, [2, 2, 2, 2, 2]);
});

Deno.test("Store.list() over a paged listing stops at the limit and on close()", async () => {
  const { store, driver } = await pagedStore(9);
  const values: number[] = [];
  for await (const e of store.list<number>({ prefix: ["t"], limit: 3 })) values.push(e.value);
  assert.deepEqual(values, [0, 1, 2]);
  assert.equal(driver.returned, 1, "reaching the limit closes the driver's listing");
  const it = store.list<number>({ prefix: ["t"] });
  await it.next(); // its page holds another entry
  await store.close();
  await assert.rejects(it.next(), StoreClosedError);
});
