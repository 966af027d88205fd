/**
 * Conformance cases: expiry, driven by the case's fake clock (nothing sleeps).
 *
 * @module
 */
import {
  check,
  expectAbsent,
  expectValue,
  listKeys,
  pages,
  queryKeys,
  same,
  seed,
  show,
} from "./_assert.ts";
import type { DefineCase } from "./_case.ts";

/** Registers the cases of this file with `define`, in the order of the report. */
export function defineExpiryCases(define: DefineCase): void {
  define("expireIn: get() returns the entry until its expiry time, then null", async (c) => {
    const store = await c.open();
    const start = c.clock.now();
    const result = await store.set(["ttl"], "soon gone", { expireIn: 1000 });
    await store.set(["keep"], "stays");
    same(await store.get(["ttl"]), {
      key: ["ttl"],
      value: "soon gone",
      version: result.version,
      expiresAt: start + 1000,
    }, "get() before expiry: expiresAt is now + expireIn");
    c.clock.advance(999);
    check(
      (await store.get(["ttl"])) !== null,
      "1 ms before its expiry time the entry is still live",
    );
    c.clock.advance(1);
    await expectAbsent(store, ["ttl"], "at its expiry time");
    c.clock.advance(1_000_000);
    await expectAbsent(store, ["ttl"], "long after its expiry time");
    await expectValue(store, ["keep"], "stays", "an entry without expiry");
  });

  define("expired entries are absent from getMany()", async (c) => {
    const store = await c.open();
    await store.set(["a"], 1, { expireIn: 100 });
    await store.set(["b"], 2);
    await store.set(["c"], 3, { expireIn: 10_000 });
    c.clock.advance(100);
    same(
      (await store.getMany([["a"], ["b"], ["c"]])).map((e) => e?.value ?? null),
      [null, 2, 3],
      "getMany() after the first entry expired",
    );
  });

  define("expired entries are absent from list(), also with limit and cursor", async (c) => {
    const store = await c.open();
    const keys = ["0", "1", "2", "3", "4", "5", "6", "7"].map((s) => ["e", s]);
    const op = store.atomic();
    keys.forEach((k, i) => op.set(k, i, i % 2 === 0 ? { expireIn: 50 } : undefined));
    await op.commit();
    same((await listKeys(store, { prefix: ["e"] })).length, 8, "list() before expiry");
    c.clock.advance(50);
    const live = keys.filter((_, i) => i % 2 === 1);
    same(await listKeys(store, { prefix: ["e"] }), live, "list() after expiry");
    same(
      await listKeys(store, { prefix: ["e"], limit: 2 }),
      live.slice(0, 2),
      "list({ limit: 2 })",
    );
    same(
      await listKeys(store, { prefix: ["e"], limit: 2, reverse: true }),
      [live[3], live[2]],
      "list({ limit: 2, reverse })",
    );
    same(await pages(store, { prefix: ["e"] }, 3), [live.slice(0, 3), live.slice(3)], "pages");
    const listing = store.list({ prefix: ["e"] });
    same((await listing.nextPage(3)).map((e) => e.key), live.slice(0, 3), "nextPage(3)");
    same((await listing.nextPage(3)).map((e) => e.key), live.slice(3), "the next nextPage(3)");
  });

  define("expired entries are not counted", async (c) => {
    const store = await c.open();
    await seed(store, [[["x", "1"], 1], [["y", "1"], 1]]);
    await store.atomic().set(["x", "2"], 2, { expireIn: 10 }).set(["y", "2"], 2, { expireIn: 20 })
      .commit();
    same(await store.count(), 4, "count() before expiry");
    c.clock.advance(10);
    same(await store.count(), 3, "count() after one expiry");
    same(await store.count(["x"]), 1, 'count(["x"]) after expiry');
    c.clock.advance(10);
    same(await store.count(), 2, "count() after both expired");
  });

  define("expired entries are absent from query()", async (c) => {
    const store = await c.open();
    await store.atomic()
      .set(["q", "1"], { n: 1 })
      .set(["q", "2"], { n: 2 }, { expireIn: 10 })
      .set(["q", "3"], { n: 3 })
      .set(["q", "4"], { n: 4 }, { expireIn: 10 })
      .commit();
    c.clock.advance(10);
    same(await queryKeys(store, {}), [["q", "1"], ["q", "3"]], "query() after expiry");
    same(
      await queryKeys(store, { where: [{ path: "n", op: "gte", value: 2 }] }),
      [["q", "3"]],
      "query(where) after expiry",
    );
    same(
      await queryKeys(store, { orderBy: { path: "n", direction: "desc" }, limit: 1 }),
      [["q", "3"]],
      "query(orderBy desc, limit 1) after expiry",
    );
  });

  define("expiresAt is now + expireIn; a rewrite without expireIn clears it", async (c) => {
    const store = await c.open();
    const start = c.clock.now();
    await store.set(["x"], 1, { expireIn: 60_000 });
    same((await store.get(["x"]))?.expiresAt, start + 60_000, "expiresAt after set(expireIn)");
    c.clock.advance(30_000);
    await store.set(["x"], 2, { expireIn: 60_000 });
    same(
      (await store.get(["x"]))?.expiresAt,
      start + 90_000,
      "a rewrite with expireIn moves the expiry",
    );
    await store.set(["x"], 3);
    same((await store.get(["x"]))?.expiresAt, null, "a rewrite without expireIn clears the expiry");
    c.clock.advance(1_000_000);
    await expectValue(store, ["x"], 3, "after the old expiry time passed");
  });

  define("an expired key can be written again", async (c) => {
    const store = await c.open();
    await store.set(["x"], "old", { expireIn: 10 });
    c.clock.advance(10);
    const result = await store.set(["x"], "new");
    check(result.ok, "set() over an expired entry must succeed");
    same(await store.get(["x"]), {
      key: ["x"],
      value: "new",
      version: result.version,
      expiresAt: null,
    }, "the rewritten entry");
    same(await store.count(), 1, "count() after rewriting an expired key");
  });

  define("set() with ifVersion null succeeds on an expired key", async (c) => {
    const store = await c.open();
    await store.set(["lease"], "old holder", { expireIn: 1000 });
    const early = await store.set(["lease"], "new holder", { ifVersion: null });
    check(!early.ok, "ifVersion: null must conflict while the entry is live");
    c.clock.advance(1000);
    const late = await store.set(["lease"], "new holder", { ifVersion: null, expireIn: 1000 });
    check(late.ok, `ifVersion: null must succeed once the entry expired, got ${show(late)}`);
    await expectValue(store, ["lease"], "new holder", "after taking an expired lease");
  });

  define("an expired entry's version no longer matches ifVersion", async (c) => {
    const store = await c.open();
    const { version } = await store.set(["x"], 1, { expireIn: 10 });
    c.clock.advance(10);
    same(
      await store.set(["x"], 2, { ifVersion: version! }),
      { ok: false, version: null, conflicts: [["x"]] },
      "set(ifVersion) with the version of an expired entry",
    );
    same(
      await store.delete(["x"], { ifVersion: version! }),
      false,
      "delete(ifVersion) of an expired entry",
    );
    const atomic = await store.atomic().check(["x"], version!).set(["y"], 1).commit();
    same(
      atomic,
      { ok: false, version: null, conflicts: [["x"]] },
      "atomic check of an expired entry",
    );
    await expectAbsent(store, ["y"], "nothing written by the failed atomic commit");
  });

  define("atomic().set() with expireIn expires", async (c) => {
    const store = await c.open();
    const start = c.clock.now();
    await store.atomic().set(["a"], 1, { expireIn: 500 }).set(["b"], 2).commit();
    same((await store.get(["a"]))?.expiresAt, start + 500, "expiresAt of an atomic set");
    c.clock.advance(500);
    await expectAbsent(store, ["a"], "after expiry");
    await expectValue(store, ["b"], 2, "its sibling without expiry");
  });
}
