/**
 * Conformance cases: list() bounds, order, limits and cursors; count().
 *
 * @module
 */
import type { Key } from "../../store/types.ts";
import {
  check,
  collect,
  fails,
  LETTERS,
  listKeys,
  pages,
  same,
  scramble,
  seed,
  show,
  TEN,
} from "./_assert.ts";
import type { DefineCase } from "./_case.ts";

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineListCases(define: DefineCase): void {
  // list()

  define("list() without options returns every entry in key order", async (c) => {
    const store = await c.open();
    same(await listKeys(store), [], "list() of an empty store");
    await seed(
      store,
      scramble([...LETTERS, ["c", "1"], ["c", "1", "2"]]).map((k) => [k, k.join()]),
    );
    const entries = await collect(store.list());
    same(
      entries.map((e) => e.key),
      [["a"], ["b"], ["c"], ["c", "1"], ["c", "1", "2"], ["d"], ["e"]],
      "list() keys",
    );
    same(entries.map((e) => e.value), ["a", "b", "c", "c,1", "c,1,2", "d", "e"], "list() values");
  });

  define("list({ prefix }) returns keys strictly under the prefix", async (c) => {
    const store = await c.open();
    await seed(store, [
      [["user"], 0],
      [["user", "1"], 1],
      [["user", "2"], 2],
      [["user", "2", "posts"], 3],
      [["users"], 4],
      [["usa"], 5],
    ]);
    same(
      await listKeys(store, { prefix: ["user"] }),
      [["user", "1"], ["user", "2"], ["user", "2", "posts"]],
      'list({ prefix: ["user"] }) excludes ["user"] itself and ["users"]',
    );
    same(
      await listKeys(store, { prefix: ["user", "2"] }),
      [["user", "2", "posts"]],
      "nested prefix",
    );
    same(await listKeys(store, { prefix: ["nobody"] }), [], "a prefix with no keys");
    same(
      (await listKeys(store, { prefix: [] })).length,
      6,
      "list({ prefix: [] }) lists everything",
    );
  });

  define("list({ start, end }) is start-inclusive and end-exclusive", async (c) => {
    const store = await c.open();
    await seed(store, scramble(LETTERS).map((k) => [k, 1]));
    same(await listKeys(store, { start: ["b"], end: ["d"] }), [["b"], ["c"]], "start b, end d");
    same(await listKeys(store, { start: ["b"] }), [["b"], ["c"], ["d"], ["e"]], "start b");
    same(await listKeys(store, { end: ["b"] }), [["a"]], "end b");
    same(
      await listKeys(store, { start: ["bb"], end: ["dd"] }),
      [["c"], ["d"]],
      "bounds between keys",
    );
    same(await listKeys(store, { start: ["b"], end: ["b"] }), [], "start equal to end");
    same(await listKeys(store, { start: ["d"], end: ["b"] }), [], "start after end");
    same(
      await listKeys(store, { start: ["b"], end: ["b", ""] }),
      [["b"]],
      'end ["b",""] keeps ["b"]',
    );
    same(
      await listKeys(store, { start: ["b"], end: ["d"], reverse: true }),
      [["c"], ["b"]],
      "start b, end d, reversed",
    );
  });

  define("list({ prefix, start, end }) applies all bounds together", async (c) => {
    const store = await c.open();
    const inside = ["1", "2", "3", "4", "5", "6"].map((s) => ["p", s]);
    await seed(store, scramble([...inside, ["o", "9"], ["p"], ["q", "0"]]).map((k) => [k, 1]));
    same(
      await listKeys(store, { prefix: ["p"], start: ["p", "2"], end: ["p", "5"] }),
      [["p", "2"], ["p", "3"], ["p", "4"]],
      "prefix p, start p/2, end p/5",
    );
    same(
      await listKeys(store, { prefix: ["p"], start: ["a"], end: ["z"] }),
      inside,
      "bounds wider than the prefix",
    );
    same(await listKeys(store, { prefix: ["p"], start: ["q"] }), [], "start after the prefix");
    same(await listKeys(store, { prefix: ["p"], end: ["p"] }), [], "end at the prefix key");
    same(
      await listKeys(store, { prefix: ["p"], start: ["p", "2"], end: ["p", "5"], reverse: true }),
      [["p", "4"], ["p", "3"], ["p", "2"]],
      "prefix + start + end, reversed",
    );
  });

  define("list({ reverse }) returns descending key order", async (c) => {
    const store = await c.open();
    await seed(store, scramble([...LETTERS, ["c", "1"]]).map((k) => [k, 1]));
    same(
      await listKeys(store, { reverse: true }),
      [["e"], ["d"], ["c", "1"], ["c"], ["b"], ["a"]],
      "list({ reverse: true })",
    );
    same(
      await listKeys(store, { prefix: ["c"], reverse: true }),
      [["c", "1"]],
      "reverse with a prefix",
    );
  });

  define("list({ limit }) stops after limit entries, forward and reverse", async (c) => {
    const store = await c.open();
    await seed(store, scramble(LETTERS).map((k) => [k, 1]));
    same(await listKeys(store, { limit: 2 }), [["a"], ["b"]], "limit 2");
    same(await listKeys(store, { limit: 2, reverse: true }), [["e"], ["d"]], "limit 2, reversed");
    same(await listKeys(store, { limit: 1, start: ["c"] }), [["c"]], "limit 1 from c");
    same((await listKeys(store, { limit: 50 })).length, 5, "a limit above the count");
  });

  define("list({ limit: 0 }) returns nothing", async (c) => {
    const store = await c.open();
    await seed(store, LETTERS.map((k) => [k, 1]));
    same(await listKeys(store, { limit: 0 }), [], "limit 0");
    same(await listKeys(store, { limit: 0, reverse: true }), [], "limit 0, reversed");
  });

  define("list() cursor resumes forward with exactly the remaining entries", async (c) => {
    const store = await c.open();
    await seed(store, scramble(TEN).map((k) => [k, 1]));
    const got = await pages(store, { prefix: ["k"] }, 3);
    same(got.map((p) => p.length), [3, 3, 3, 1], "page sizes");
    same(got.flat(), TEN, "all pages together: every key once, in order");
  });

  define("list() cursor resumes in reverse with exactly the remaining entries", async (c) => {
    const store = await c.open();
    await seed(store, scramble(TEN).map((k) => [k, 1]));
    const got = await pages(store, { prefix: ["k"], reverse: true }, 4);
    same(got.map((p) => p.length), [4, 4, 2], "page sizes");
    same(got.flat(), [...TEN].reverse(), "all reverse pages together: every key once, in order");
  });

  define("list() cursor resumes correctly after entries are added and removed", async (c) => {
    const store = await c.open();
    const k = (s: string): Key => ["k", s];
    await seed(store, scramble(TEN).map((key) => [key, 1]));
    const first = store.list({ prefix: ["k"], limit: 3 });
    same((await collect(first)).map((e) => e.key), [k("k00"), k("k01"), k("k02")], "first page");
    // Remove the cursor's own key and a later one; add keys before and after the cursor.
    await store.atomic().delete(k("k02")).delete(k("k05")).set(k("k015"), 1).set(k("k035"), 1)
      .set(k("k10"), 1).commit();
    same(
      await listKeys(store, { prefix: ["k"], cursor: first.cursor }),
      ["k03", "k035", "k04", "k06", "k07", "k08", "k09", "k10"].map(k),
      "forward resume after changes: later keys only, none twice, none missed",
    );
  });

  define(
    "list() reverse cursor resumes correctly after entries are added and removed",
    async (c) => {
      const store = await c.open();
      const k = (s: string): Key => ["k", s];
      await seed(store, scramble(TEN).map((key) => [key, 1]));
      const first = store.list({ prefix: ["k"], limit: 3, reverse: true });
      same((await collect(first)).map((e) => e.key), [k("k09"), k("k08"), k("k07")], "first page");
      await store.atomic().delete(k("k07")).delete(k("k04")).set(k("k075"), 1).set(k("k065"), 1)
        .set(k("k005"), 1).commit();
      same(
        await listKeys(store, { prefix: ["k"], reverse: true, cursor: first.cursor }),
        ["k065", "k06", "k05", "k03", "k02", "k01", "k005", "k00"].map(k),
        "reverse resume after changes: earlier keys only, none twice, none missed",
      );
    },
  );

  define("list() cursor is empty before the first entry and follows an early break", async (c) => {
    const store = await c.open();
    await seed(store, scramble(LETTERS).map((k) => [k, 1]));
    const iterator = store.list();
    same(iterator.cursor, "", "cursor before the first entry");
    const seen: Key[] = [];
    for await (const entry of iterator) {
      seen.push(entry.key);
      if (seen.length === 2) break;
    }
    same(seen, [["a"], ["b"]], "entries before the break");
    check(iterator.cursor !== "", "cursor after two entries must not be empty");
    same(
      await listKeys(store, { cursor: iterator.cursor }),
      [["c"], ["d"], ["e"]],
      "resume after an early break",
    );
    same(await listKeys(store, { cursor: "" }), LETTERS, 'cursor "" starts from the beginning');
  });

  define("list() cursor keeps the listing's own bounds", async (c) => {
    const store = await c.open();
    const inside = ["1", "2", "3", "4", "5", "6"].map((s) => ["p", s]);
    await seed(store, scramble([...inside, ["o"], ["p"], ["q"]]).map((k) => [k, 1]));
    same(await pages(store, { prefix: ["p"] }, 2), [
      inside.slice(0, 2),
      inside.slice(2, 4),
      inside.slice(4),
    ], "prefix pages");
    same(
      await pages(store, { prefix: ["p"], end: ["p", "5"] }, 2),
      [inside.slice(0, 2), inside.slice(2, 4)],
      "prefix + end pages",
    );
    same(
      await pages(store, { prefix: ["p"], start: ["p", "2"], reverse: true }, 2),
      [[inside[5], inside[4]], [inside[3], inside[2]], [inside[1]]],
      "prefix + start, reversed pages",
    );
  });

  define("list() with an invalid cursor throws TypeError", async (c) => {
    const store = await c.open();
    await store.set(["a"], 1);
    for (const cursor of ["not a cursor!", "%%%", btoa('"a string"'), btoa("[]"), btoa("[1]")]) {
      await fails(
        () => collect(store.list({ cursor })),
        TypeError,
        `list({ cursor: ${show(cursor)} })`,
      );
    }
  });

  // nextPage()

  define("list().nextPage(max) hands out max entries a call, then the rest, then []", async (c) => {
    const store = await c.open();
    const inside = ["1", "2", "3", "4", "5", "6", "7"].map((s) => ["p", s]);
    await seed(store, scramble([...inside, ["o"], ["p"], ["q"]]).map((k) => [k, k.join()]));
    const listing = store.list({ prefix: ["p"] });
    same(listing.cursor, "", "cursor before the first page");
    const first = await listing.nextPage(3);
    same(first.map((e) => e.key), inside.slice(0, 3), "first page keys");
    same(first.map((e) => e.value), ["p,1", "p,2", "p,3"], "first page values");
    check(first.every((e) => typeof e.version === "string"), "every entry has its version");
    same(
      await listKeys(store, { prefix: ["p"], cursor: listing.cursor }),
      inside.slice(3),
      "the cursor after a page resumes after its last entry",
    );
    same((await listing.nextPage(3)).map((e) => e.key), inside.slice(3, 6), "second page");
    same((await listing.nextPage(3)).map((e) => e.key), inside.slice(6), "last, short page");
    same(await listing.nextPage(3), [], "a complete listing's page");
    same(await listing.nextPage(), [], "and again");
  });

  define("list().nextPage() keeps limit, reverse, cursor and the default page size", async (c) => {
    const store = await c.open();
    const keys = ["1", "2", "3", "4", "5", "6"].map((s) => ["k", s]);
    await seed(store, scramble(keys).map((k) => [k, 1]));
    const limited = store.list({ prefix: ["k"], limit: 4 });
    same((await limited.nextPage(3)).map((e) => e.key), keys.slice(0, 3), "limit 4, page of 3");
    same((await limited.nextPage(3)).map((e) => e.key), [keys[3]], "the limit ends the page");
    same(await limited.nextPage(3), [], "nothing past the limit");
    same(
      (await store.list({ prefix: ["k"], limit: 5 }).nextPage()).map((e) => e.key),
      keys.slice(0, 5),
      "nextPage() without max hands out a whole limit of 5",
    );
    same(
      (await store.list({ prefix: ["k"], batchSize: 2 }).nextPage()).map((e) => e.key),
      keys.slice(0, 2),
      "nextPage() without max takes the listing's batchSize",
    );
    const reversed = store.list({ prefix: ["k"], reverse: true });
    same(
      (await reversed.nextPage(4)).map((e) => e.key),
      [keys[5], keys[4], keys[3], keys[2]],
      "reverse page",
    );
    same(
      await listKeys(store, { prefix: ["k"], reverse: true, cursor: reversed.cursor }),
      [keys[1], keys[0]],
      "the reverse cursor after a page",
    );
    const resumed = store.list({ prefix: ["k"], cursor: limited.cursor });
    same((await resumed.nextPage(10)).map((e) => e.key), keys.slice(4), "a page after a cursor");
  });

  define("list().nextPage() and next() continue where the other stopped", async (c) => {
    const store = await c.open();
    await seed(store, scramble(LETTERS).map((k) => [k, 1]));
    const listing = store.list();
    same((await listing.next()).value?.key, ["a"], "next() first");
    same((await listing.nextPage(2)).map((e) => e.key), [["b"], ["c"]], "then a page");
    same((await listing.next()).value?.key, ["d"], "then next()");
    const rest: Key[] = [];
    for await (const entry of listing) rest.push(entry.key);
    same(rest, [["e"]], "then for await");
    same(await listing.nextPage(), [], "then an empty page");
  });

  define(
    "list().nextPage() with a max that is not a positive integer throws RangeError",
    async (c) => {
      const store = await c.open();
      await store.set(["a"], 1);
      for (const max of [0, -1, 1.5, Number.NaN, Infinity]) {
        await fails(() => store.list().nextPage(max), RangeError, `nextPage(${max})`);
      }
      same((await store.list().nextPage(1)).map((e) => e.key), [["a"]], "nextPage(1) still works");
    },
  );

  // count()

  define("count() counts every entry", async (c) => {
    const store = await c.open();
    same(await store.count(), 0, "count() of an empty store");
    await seed(store, [[["a"], 1], [["a", "b"], 2], [["c"], 3]]);
    same(await store.count(), 3, "count()");
    same(await store.count([]), 3, "count([])");
    await store.delete(["a"]);
    same(await store.count(), 2, "count() after a delete");
  });

  define("count(prefix) counts keys strictly under the prefix", async (c) => {
    const store = await c.open();
    await seed(store, [
      [["n"], 0],
      [["n", "1"], 1],
      [["n", "2"], 2],
      [["n", "2", "x"], 3],
      [["nn"], 4],
    ]);
    same(await store.count(["n"]), 3, 'count(["n"]) excludes ["n"] and ["nn"]');
    same(await store.count(["n", "2"]), 1, 'count(["n","2"])');
    same(await store.count(["zzz"]), 0, "count() of an unused prefix");
  });
}
