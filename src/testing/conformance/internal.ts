/**
 * Conformance cases: the reserved internal key space. Users' keys whose
 * first element starts with `"\u0000"` are refused; keys the core writes
 * under `["\u0000", …]` (through the driver) never show in list, count,
 * query, search, clear or purgeExpired.
 *
 * @module
 */
import type { Key, Store } from "../../store/types.ts";
import { internalAccess, internalKey } from "../../store/internal_keys.ts";
import { newVersion } from "../../store/store.ts";
import { check, collect, fails, listKeys, pages, same, scramble, seed, show } from "./_assert.ts";
import type { DefineCase } from "./_case.ts";

/** Users' keys around the internal space, in key order. */
const AROUND: Key[] = [[""], ["", "a"], ["\u0001"], ["\u0001", "x"], ["a"], ["z"]];

const INTERNAL: Key[] = [
  internalKey("test", "1"),
  internalKey("test", "2", "x"),
  internalKey("feed", "counter"),
];

async function plant(store: Store, now: number): Promise<boolean> {
  const access = internalAccess(store);
  if (access === undefined) return false;
  const result = await access.driver.commit({
    checks: [],
    mutations: INTERNAL.map((key) => ({
      type: "set",
      key,
      value: JSON.stringify("hello internal"),
      expiresAt: null,
    })),
    version: newVersion(),
    now,
  });
  check(result.ok, "the driver commits internal keys");
  return true;
}

async function internalLeft(store: Store): Promise<number> {
  const access = internalAccess(store)!;
  let n = 0;
  for (const key of INTERNAL) if (await access.driver.get(key, 0) !== null) n++;
  return n;
}

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineInternalCases(define: DefineCase): void {
  define("keys starting with U+0000 are refused: they are reserved for the core", async (c) => {
    const store = await c.open();
    for (const key of [["\u0000"], ["\u0000", "x"], ["\u0000abc", "y"]]) {
      const err = await fails(() => store.set(key, 1), TypeError, `set(${show(key)})`);
      check(/reserved/.test(err.message), `the error says the key is reserved: ${err.message}`);
      await fails(() => store.get(key), TypeError, `get(${show(key)})`);
      await fails(() => store.delete(key), TypeError, `delete(${show(key)})`);
      await fails(() => store.list({ prefix: key }), TypeError, `list({ prefix: ${show(key)} })`);
      await fails(() => store.count(key), TypeError, `count(${show(key)})`);
      await fails(() => store.clear(key), TypeError, `clear(${show(key)})`);
      await fails(() => store.atomic().set(key, 1), TypeError, `atomic().set(${show(key)})`);
    }
    same(await store.count(), 0, "nothing was written");
  });

  define("internal keys never show in list, count, query, search or clear", async (c) => {
    const store = await c.open();
    await seed(store, scramble(AROUND).map((k) => [k, "hello user"]));
    if (!(await plant(store, c.clock.now()))) return; // not a store the core wrapped
    same(await listKeys(store), AROUND, "list() of every key");
    same(await listKeys(store, { reverse: true }), [...AROUND].reverse(), "list({ reverse })");
    same(await listKeys(store, { prefix: [] }), AROUND, "list({ prefix: [] })");
    same(
      await listKeys(store, { start: ["", "a"], end: ["\u0001", "x"] }),
      [["", "a"], ["\u0001"]],
      "list({ start, end }) across the internal space",
    );
    same(await listKeys(store, { end: ["a"] }), AROUND.slice(0, 4), "list({ end })");
    same(await listKeys(store, { limit: 3 }), AROUND.slice(0, 3), "list({ limit })");
    same(
      (await pages(store, {}, 1)).flat(),
      AROUND,
      "list() page by page with cursors (limit 1)",
    );
    same(
      (await pages(store, { reverse: true }, 2)).flat(),
      [...AROUND].reverse(),
      "reverse list() page by page with cursors",
    );
    same(await store.count(), AROUND.length, "count()");
    same(await store.count([], { start: ["", "a"] }), AROUND.length - 1, "count([], { start })");
    same(await store.count([], { end: ["z"] }), AROUND.length - 1, "count([], { end })");
    same(
      (await store.query()).map((e) => e.key),
      AROUND,
      "query() of every key",
    );
    // A store that cannot read values (an encrypted one) refuses queries and
    // search on them, saying so: then only the listing cases above apply.
    const readsValues = await store.search("user").then(() => true, (err) => {
      if (!(err instanceof TypeError) || !/seal|encrypt/i.test(err.message)) throw err;
      return false;
    });
    if (readsValues) {
      same(
        (await store.query({ where: [{ path: "", op: "eq", value: "hello internal" }] })).length,
        0,
        "query() by value finds no internal entry",
      );
      same(
        (await store.query({ orderBy: { path: "", direction: "desc" }, limit: 2 })).length,
        2,
        "query() with orderBy and limit",
      );
      same((await store.search("internal")).length, 0, "search() finds no internal entry");
      same(
        (await store.search("user")).length,
        AROUND.length,
        "search() finds the users' entries",
      );
    }
    same(await store.purgeExpired(), 0, "purgeExpired()");
    same(await internalLeft(store), INTERNAL.length, "internal keys survive purgeExpired()");
    const ok = await store.atomic().clear([], { end: ["a"] }).commit();
    check(ok.ok, "atomic().clear([]) commits");
    same(await listKeys(store), AROUND.slice(4), "atomic().clear([], { end }) cleared users' keys");
    same(await internalLeft(store), INTERNAL.length, "internal keys survive atomic().clear([])");
    await store.atomic().set(["n"], 1).clear([]).commit();
    same(await listKeys(store), [], "atomic().clear([]) empties the users' keys");
    same(await internalLeft(store), INTERNAL.length, "internal keys survive atomic().clear([])");
    await seed(store, AROUND.map((k) => [k, 1]));
    same(await store.clear([]), AROUND.length, "clear([]) counts only users' keys");
    same(await internalLeft(store), INTERNAL.length, "internal keys survive clear([])");
    same(await collect(store.list()), [], "list() after clear([])");
  });
}
