/**
 * Conformance cases: clear() and count() over prefixes and ranges,
 * atomic().clear(), purgeExpired() and compact().
 *
 * @module
 */
import type { Key, KeyBounds } from "../../store/types.ts";
import {
  check,
  collect,
  expectValue,
  fails,
  LETTERS,
  listKeys,
  same,
  scramble,
  seed,
  show,
  TEN,
} from "./_assert.ts";
import type { DefineCase } from "./_case.ts";

/** Keys for the range cases: a time-like id under several prefixes, and neighbours. */
/** How to fix a clear() count that includes expired entries. */
const LIVE_ONLY =
  ": a driver's native clear(range, now) deletes every entry in the range, expired " +
  "ones too, but returns how many were live at `now` (expiresAt null or > now); count them in " +
  "the same transaction before deleting";

const RANGE_SEED: [Key, number][] = [
  [["r"], 0],
  [["r", "a"], 1],
  [["r", "b"], 2],
  [["r", "b", "1"], 3],
  [["r", "b", "2"], 4],
  [["r", "c"], 5],
  [["r", "d"], 6],
  [["r", "d", "x"], 7],
  [["r", "e"], 8],
  [["ra"], 9],
  [["s", "b"], 10],
];

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineClearCases(define: DefineCase): void {
  define(
    "clear(prefix) deletes keys under the prefix, returns how many, leaves the rest",
    async (c) => {
      const store = await c.open();
      await seed(store, [
        [["a"], 0],
        [["a", "1"], 1],
        [["a", "2", "x"], 2],
        [["ab"], 3],
        [["b", "1"], 4],
      ]);
      same(await store.clear(["a"]), 2, 'clear(["a"]) returns the number deleted');
      same(
        await listKeys(store),
        [["a"], ["ab"], ["b", "1"]],
        'keys after clear(["a"]): ["a"] itself and siblings stay',
      );
      same(await store.clear(["nothing"]), 0, "clear() of an unused prefix");
    },
  );

  define("clear([]) empties the store", async (c) => {
    const store = await c.open();
    await seed(store, scramble([...LETTERS, ["c", "1"], [""], ["\u0001"]]).map((k) => [k, 1]));
    same(await store.clear([]), 8, "clear([]) returns the number deleted");
    same(await store.count(), 0, "count() after clear([])");
    same(await listKeys(store), [], "list() after clear([])");
    const again = await store.set(["a"], 1, { ifVersion: null });
    check(again.ok, "a cleared key is absent for ifVersion: null");
  });

  define("clear() counts only live entries", async (c) => {
    const store = await c.open();
    await store.atomic().set(["c", "1"], 1).set(["c", "2"], 2, { expireIn: 5 }).set(["c", "3"], 3)
      .commit();
    c.clock.advance(5);
    same(await store.clear(["c"]), 2, `clear() skips the expired entry in its count${LIVE_ONLY}`);
    same(await store.count(["c"]), 0, "count() after clear()");
  });

  define("count(prefix, { start, end }) counts the keys of a range under the prefix", async (c) => {
    const store = await c.open();
    await seed(store, scramble(RANGE_SEED));
    same(await store.count(["r"], { start: ["r", "b"], end: ["r", "d"] }), 4, "b, b/1, b/2, c");
    same(await store.count(["r"], { start: ["r", "b", "2"] }), 5, "from b/2 to the end of r");
    same(await store.count(["r"], { end: ["r", "b"] }), 1, "up to b (exclusive): only a");
    same(await store.count(["r"], {}), 8, "empty bounds: the whole prefix");
    same(await store.count([], { start: ["r", "e"], end: ["s"] }), 2, "r/e and ra, no prefix");
    same(await store.count(["r"], { start: ["a"], end: ["z"] }), 8, "bounds wider than the prefix");
    same(await store.count(["r"], { start: ["r", "d"], end: ["r", "b"] }), 0, "start after end");
    same(await store.count(["r"], { start: ["s"] }), 0, "bounds outside the prefix");
  });

  define("count() with bounds skips expired entries", async (c) => {
    const store = await c.open();
    await store.atomic().set(["t", "1"], 1).set(["t", "2"], 2, { expireIn: 5 }).set(["t", "3"], 3)
      .commit();
    c.clock.advance(5);
    same(await store.count(["t"], { start: ["t", "1"], end: ["t", "3"] }), 1, "t/2 expired");
  });

  define("clear(prefix, { start, end }) deletes a range only and returns how many", async (c) => {
    const store = await c.open();
    await seed(store, scramble(RANGE_SEED));
    same(
      await store.clear(["r"], { start: ["r", "b"], end: ["r", "d"] }),
      4,
      "clear() of b..d returns how many it deleted",
    );
    same(
      await listKeys(store),
      [["r"], ["r", "a"], ["r", "d"], ["r", "d", "x"], ["r", "e"], ["ra"], ["s", "b"]],
      "keys after clearing b..d: everything outside the range stays",
    );
    same(await store.clear(["r"], { start: ["r", "d", "x"] }), 2, "clear() from d/x to the end");
    same(await store.clear(["r"], { end: ["r", "a"] }), 0, "clear() of an empty range");
    same(
      await listKeys(store),
      [["r"], ["r", "a"], ["r", "d"], ["ra"], ["s", "b"]],
      "keys after clearing from d/x",
    );
  });

  define("clear() with bounds counts only live entries and removes expired ones", async (c) => {
    const store = await c.open();
    const start = c.clock.now();
    await store.atomic().set(["t", "1"], 1).set(["t", "2"], 2, { expireIn: 5 }).set(["t", "3"], 3)
      .commit();
    c.clock.advance(5);
    same(await store.clear(["t"], { start: ["t", "2"] }), 1, `t/2 expired, t/3 live${LIVE_ONLY}`);
    same(await listKeys(store), [["t", "1"]], "keys after clear()");
    // Back in time, the expired entry stays gone: clear() deleted it, not just hid it.
    c.clock.set(start);
    same(
      await listKeys(store),
      [["t", "1"]],
      "keys after clear(), seen from before t/2 expired (clear() must delete expired entries too)",
    );
    c.clock.set(start + 5);
    const again = await store.set(["t", "2"], 2, { ifVersion: null });
    check(again.ok, "the expired, cleared key is absent");
  });

  define("clear() and count() refuse bounds that are not keys", async (c) => {
    const store = await c.open();
    for (
      const bounds of [
        { start: "a" },
        { end: [1] },
        { start: [], end: ["x"] },
        null,
      ] as unknown as KeyBounds[]
    ) {
      await fails(() => store.clear(["r"], bounds), TypeError, `clear() with ${show(bounds)}`);
      await fails(() => store.count(["r"], bounds), TypeError, `count() with ${show(bounds)}`);
    }
    let threw = false;
    try {
      store.atomic().clear(["r"], { start: "a" } as unknown as KeyBounds);
    } catch (err) {
      threw = err instanceof TypeError;
    }
    check(threw, "atomic().clear() with a bad start throws a TypeError");
  });

  define("atomic().clear() deletes a range together with the other writes", async (c) => {
    const store = await c.open();
    await seed(store, scramble(RANGE_SEED));
    const result = await store.atomic()
      .clear(["r"], { start: ["r", "b"], end: ["r", "d"] })
      .set(["s", "c"], 11)
      .delete(["r", "a"])
      .commit();
    check(result.ok, "the commit succeeds");
    same(
      await listKeys(store),
      [["r"], ["r", "d"], ["r", "d", "x"], ["r", "e"], ["ra"], ["s", "b"], ["s", "c"]],
      "keys after the commit",
    );
    same(
      (await store.get(["s", "c"]))?.version,
      result.version,
      "the set has the commit's version",
    );
  });

  define("atomic().clear() with a failing check deletes nothing", async (c) => {
    const store = await c.open();
    await seed(store, scramble(RANGE_SEED));
    const before = await listKeys(store);
    const result = await store.atomic()
      .check(["r", "a"], null)
      .clear(["r"])
      .commit();
    check(!result.ok, "the check of an existing key as absent fails");
    same(result.ok ? [] : result.conflicts, [["r", "a"]], "the conflicting key");
    same(await listKeys(store), before, "every key is still there");
  });

  define(
    "atomic().clear() applies in order: a set before it in the range is deleted",
    async (c) => {
      const store = await c.open();
      await seed(store, scramble(RANGE_SEED));
      const result = await store.atomic()
        .set(["r", "b", "3"], "before")
        .set(["r", "z"], "outside")
        .clear(["r", "b"])
        .set(["r", "b", "4"], "after")
        .commit();
      check(result.ok, "the commit succeeds");
      same(
        await listKeys(store, { prefix: ["r", "b"] }),
        [["r", "b", "4"]],
        "under r/b only the set after the clear stays",
      );
      same((await store.get(["r", "z"]))?.value, "outside", "a set outside the range stays");
      same((await store.get(["r", "b"]))?.value, 2, "the prefix key itself is not cleared");
    },
  );

  define("atomic().clear([]) empties the store in one commit", async (c) => {
    const store = await c.open();
    await seed(store, scramble(RANGE_SEED));
    check((await store.atomic().clear([]).set(["new"], 1).commit()).ok, "the commit succeeds");
    same(await listKeys(store), [["new"]], "only the key set after the clear");
  });

  define("purgeExpired() deletes expired entries, returns how many, keeps live ones", async (c) => {
    const store = await c.open();
    const start = c.clock.now();
    await store.atomic()
      .set(["a"], 1, { expireIn: 10 })
      .set(["b"], 2, { expireIn: 20 })
      .set(["c"], 3)
      .set(["d", "1"], 4, { expireIn: 10 })
      .set(["d", "2"], 5, { expireIn: 10 })
      .commit();
    same(await store.purgeExpired(), 0, "purgeExpired() before anything expired");
    c.clock.advance(9);
    same(
      await store.purgeExpired(),
      0,
      "purgeExpired() 1 ms before three entries expire (an entry is live while expiresAt > now)",
    );
    c.clock.advance(1);
    same(await store.purgeExpired(), 3, "purgeExpired() after three entries expired");
    same(await store.purgeExpired(), 0, "purgeExpired() again");
    // Back in time, a purged entry stays gone (it was deleted, not just hidden).
    c.clock.set(start);
    same(await listKeys(store), [["b"], ["c"]], "keys after purging, seen from before the expiry");
    c.clock.set(start + 20);
    same(await store.purgeExpired(), 1, "purgeExpired() once the last expiring entry expired");
    same(await listKeys(store), [["c"]], "keys after the second purge");
  });

  define("purgeExpired() leaves a key rewritten after it expired", async (c) => {
    const store = await c.open();
    const start = c.clock.now();
    await store.set(["x"], "old", { expireIn: 10 });
    await store.set(["y"], "old", { expireIn: 10 });
    c.clock.advance(10);
    await store.set(["x"], "new");
    const purged = await store.purgeExpired();
    // y may already be gone if the backend drops expired entries as it writes.
    check(purged === 0 || purged === 1, `purgeExpired() may count only y, got ${purged}`);
    await expectValue(store, ["x"], "new", "the rewritten key");
    c.clock.set(start);
    same(await listKeys(store), [["x"]], "keys seen from before the expiry: y is deleted, x kept");
  });

  define("compact() keeps every entry and reports sizes", async (c) => {
    const store = await c.open();
    await seed(store, scramble(TEN).map((k, i) => [k, { i, pad: "x".repeat(100) }]));
    await store.clear(["k"]);
    await seed(store, [[["kept", "1"], 1], [["kept", "2"], { nested: [true] }]]);
    const before = await collect(store.list());
    const result = await store.compact();
    same(typeof result.supported, "boolean", "compact().supported");
    for (const field of ["bytesBefore", "bytesAfter"] as const) {
      check(
        Number.isFinite(result[field]) && result[field] >= 0,
        `compact().${field} must be a number >= 0, got ${show(result[field])}`,
      );
    }
    same(await collect(store.list()), before, "entries (keys, values, versions) after compact()");
    const after = await store.set(["kept", "1"], 2, { ifVersion: before[0].version });
    check(after.ok, "a version read before compact() still works for ifVersion");
  });
}
