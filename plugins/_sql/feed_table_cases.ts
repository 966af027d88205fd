/**
 * Test cases shared by the SQL backends' change feed tables (sqlite's
 * `flowstate_feed`, postgres's `<table>_feed`): a store written by Flowstate
 * 0.3 (feed in the key space) keeps its history once moved; trims never move
 * the head back; clears record what the core's feed records. Each backend's
 * `feed_table_test.ts` runs them on its own stores.
 *
 * @module
 */
import assert from "node:assert/strict";
import { openStore } from "../../src/plugin.ts";
import { FEED_BY_KEY, FEED_ENTRIES, FEED_HEAD } from "../../src/store/feed.ts";
import { internalAccess } from "../../src/store/internal_keys.ts";
import { keyHistory, trimChanges } from "../../src/store/store.ts";
import type { Clock } from "../../src/clock.ts";
import type { Change, Key, Store } from "../../src/store/types.ts";

/** The 0.3 store of `plugins/sqlite/testdata/feed_kv_store.db` (its generator: `feed_kv_store.gen.ts`). */
export const OLD_STORE_FIXTURE: string =
  new URL("../sqlite/testdata/feed_kv_store.db", import.meta.url).pathname;

/** What the 0.3 store's feed holds (see {@linkcode OLD_STORE_FIXTURE}). */
export const OLD_STORE_EXPECTED = JSON.parse(
  await Deno.readTextFile(new URL("../sqlite/testdata/feed_kv_store.json", import.meta.url)),
) as {
  info: { firstSeq: number; lastSeq: number };
  changes: Change[];
  history: Change[];
  atSeq4: unknown;
};

/** Every item of an async iterable. */
export async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/**
 * How many rows of a live feed in the key space (head, entries, by-key) the
 * store's driver holds: a head that numbers nothing (postgres leaves a
 * tombstone for 0.3 processes, see `movedFeedTombstone`) is not counted.
 */
export async function keySpaceFeedRows(store: Store): Promise<number> {
  const driver = internalAccess(store)!.driver;
  const head = await driver.get(FEED_HEAD, 0);
  let n = head !== null && typeof JSON.parse(head.value).seq === "number" ? 1 : 0;
  for (const prefix of [FEED_ENTRIES, FEED_BY_KEY]) {
    for await (const _ of driver.list({ prefix }, 0)) n++;
  }
  return n;
}

/**
 * `store` (opened with `changes: { keep: { count: 7 } }` on the 0.3 store)
 * reads the old feed from its table: the same entries, history and `getAt`;
 * and the feed goes on from the old head.
 */
export async function assertMovedFeed(store: Store): Promise<void> {
  const expected = OLD_STORE_EXPECTED;
  assert.equal(await keySpaceFeedRows(store), 0, "the old rows are gone");
  const info = await store.feedInfo();
  assert.deepEqual(
    { firstSeq: info.firstSeq, lastSeq: info.lastSeq },
    { firstSeq: expected.info.firstSeq, lastSeq: expected.info.lastSeq },
  );
  assert.deepEqual(await all(store.changes()), expected.changes);
  assert.deepEqual(await all(store.changes({ reverse: true })), [...expected.changes].reverse());
  assert.deepEqual(await all(keyHistory(store, ["a"])), expected.history);
  assert.deepEqual(await store.getAt(["a"], { seq: 4 }), expected.atSeq4);
  const long: Key = ["long", "x".repeat(600)];
  assert.deepEqual((await all(keyHistory(store, long))).map((c) => c.seq), [8]);

  // The feed goes on from the old head, with the previous version of the key.
  const before = await store.get(["a"]);
  await store.set(["a"], 4);
  const [next] = await all(store.changes({ since: expected.info.lastSeq }));
  assert.equal(next.seq, expected.info.lastSeq + 1);
  assert.equal(next.previousVersion, before!.version);
  assert.deepEqual(next.value, 4);
}

/**
 * Trimming every entry keeps the head, and the next entry follows it (also
 * after reopening); `open` opens the same store each time, with
 * `changes: { keep: "1m" }` and the clock given.
 */
export async function trimEverything(open: (clock: Clock) => Promise<Store>): Promise<void> {
  const clock = { t: 1_000_000, now: () => clock.t };
  let store = await open(clock);
  try {
    for (let i = 0; i < 3; i++) await store.set(["k", String(i)], i);
    clock.t += 120_000;
    assert.equal(await trimChanges(store), 3);
    assert.deepEqual(await all(store.changes()), []);
    const info = await store.feedInfo();
    assert.deepEqual({ firstSeq: info.firstSeq, lastSeq: info.lastSeq }, {
      firstSeq: 4,
      lastSeq: 3,
    });
    await store.close();
    store = await open(clock);
    assert.equal((await store.feedInfo()).lastSeq, 3);
    await store.set(["k", "0"], "again");
    assert.deepEqual((await all(store.changes())).map((c) => c.seq), [4]);
    await assert.rejects(() => store.getAt(["k", "0"], { seq: 1 }), RangeError);
  } finally {
    await store.close();
  }
}

/**
 * Commits with a clear record the same entries as the core's feed (on a
 * memory store); `open` opens a new store with `changes: { keep: "1d" }`.
 */
export async function clearsLikeTheCore(open: () => Promise<Store>): Promise<void> {
  const run = async (store: Store) => {
    try {
      await store.set(["p", "a"], 1);
      await store.set(["p", "b"], 2);
      await store.set(["q"], 3, { expireIn: 1 });
      await new Promise((r) => setTimeout(r, 5));
      await store.atomic().set(["p", "c"], 3).clear(["p"]).set(["p", "b"], 4).set(["q"], 5)
        .commit();
      await store.atomic().delete(["absent"]).set(["r"], 6).delete(["r"]).commit();
      await store.atomic().clear(["nothing"]).commit();
      return (await all(store.changes())).map((c) => ({
        seq: c.seq,
        key: c.key,
        op: c.op,
        value: c.value,
        previous: c.previousVersion === null ? null : "some",
      }));
    } finally {
      await store.close();
    }
  };
  const table = await run(await open());
  const memory = await run(await openStore({ plugin: "memory", changes: { keep: "1d" } }));
  assert.deepEqual(table, memory);
  assert.deepEqual(table.slice(3).map((c) => [c.op, c.key]), [
    ["delete", ["p", "a"]],
    ["set", ["p", "b"]],
    ["set", ["q"]],
  ]);
}

/**
 * A trim longer than one batch removes every old entry and keeps the rest in
 * order; `open` opens a new store with `changes: { keep: { count: 10 } }`.
 */
export async function longTrim(open: () => Promise<Store>): Promise<void> {
  const store = await open();
  try {
    for (let b = 0; b < 5; b++) {
      const op = store.atomic();
      for (let i = 0; i < 500; i++) op.set(["k", String(b * 500 + i)], i);
      await op.commit();
    }
    assert.equal(await trimChanges(store), 2490);
    const info = await store.feedInfo();
    assert.deepEqual({ firstSeq: info.firstSeq, lastSeq: info.lastSeq }, {
      firstSeq: 2491,
      lastSeq: 2500,
    });
    assert.deepEqual(
      (await all(store.changes())).map((c) => c.seq),
      Array.from({ length: 10 }, (_, i) => 2491 + i),
    );
    assert.deepEqual(await all(keyHistory(store, ["k", "0"])), []);
    assert.deepEqual((await all(keyHistory(store, ["k", "2499"]))).map((c) => c.seq), [2500]);
  } finally {
    await store.close();
  }
}
