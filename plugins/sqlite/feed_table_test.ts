import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../../src/plugin.ts";
import { FEED_BY_KEY, FEED_ENTRIES, FEED_HEAD } from "../../src/store/feed.ts";
import { internalAccess } from "../../src/store/internal_keys.ts";
import { keyHistory, trimChanges } from "../../src/store/store.ts";
import type { Change, Key, Store } from "../../src/store/types.ts";
import { manualClock, rawDb, withDir } from "./_test_utils.ts";

// The change feed's table (schema version 2): a store written by Flowstate
// 0.3, whose feed lives in the reserved key space, moves it into the table on
// open and keeps its history; trims never move the head back; clears in a
// commit record what the core's feed records.

const FIXTURE = new URL("./testdata/feed_kv_store.db", import.meta.url).pathname;
const EXPECTED = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/feed_kv_store.json", import.meta.url)),
) as {
  info: { firstSeq: number; lastSeq: number };
  changes: Change[];
  history: Change[];
  atSeq4: unknown;
};

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function meta(path: string, key: string): string | undefined {
  const db = rawDb(path);
  try {
    return (db.prepare("SELECT value FROM flowstate_meta WHERE key = ?").get(key) as
      | { value: string }
      | undefined)?.value;
  } finally {
    db.close();
  }
}

async function keySpaceFeedRows(store: Store): Promise<number> {
  const driver = internalAccess(store)!.driver;
  let n = (await driver.get(FEED_HEAD, 0)) === null ? 0 : 1;
  for (const prefix of [FEED_ENTRIES, FEED_BY_KEY]) {
    for await (const _ of driver.list({ prefix }, 0)) n++;
  }
  return n;
}

Deno.test("feed table: a store written by 0.3 (feed in the key space) moves its history into the table on open", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "old.db");
    await Deno.copyFile(FIXTURE, path);
    assert.equal(meta(path, "schema_version"), "1");
    const store = await openStore({ plugin: "sqlite", path, changes: { keep: { count: 7 } } });
    try {
      assert.equal(meta(path, "schema_version"), "2");
      assert.equal(await keySpaceFeedRows(store), 0, "the old rows are gone");
      const info = await store.feedInfo();
      assert.deepEqual(
        { firstSeq: info.firstSeq, lastSeq: info.lastSeq },
        { firstSeq: EXPECTED.info.firstSeq, lastSeq: EXPECTED.info.lastSeq },
      );
      assert.deepEqual(await all(store.changes()), EXPECTED.changes);
      assert.deepEqual(
        await all(store.changes({ reverse: true })),
        [...EXPECTED.changes].reverse(),
      );
      assert.deepEqual(await all(keyHistory(store, ["a"])), EXPECTED.history);
      assert.deepEqual(await store.getAt(["a"], { seq: 4 }), EXPECTED.atSeq4);
      const long: Key = ["long", "x".repeat(600)];
      assert.deepEqual((await all(keyHistory(store, long))).map((c) => c.seq), [8]);

      // The feed goes on from the old head, with the previous version of the key.
      const before = await store.get(["a"]);
      await store.set(["a"], 4);
      const [next] = await all(store.changes({ since: EXPECTED.info.lastSeq }));
      assert.equal(next.seq, EXPECTED.info.lastSeq + 1);
      assert.equal(next.previousVersion, before!.version);
      assert.deepEqual(next.value, 4);
    } finally {
      await store.close();
    }
    // Opening it again changes nothing.
    const again = await openStore({ plugin: "sqlite", path, changes: { keep: { count: 7 } } });
    try {
      assert.equal((await again.feedInfo()).lastSeq, EXPECTED.info.lastSeq + 1);
      assert.equal((await all(again.changes())).length, EXPECTED.changes.length + 1);
    } finally {
      await again.close();
    }
  });
});

Deno.test("feed table: a store without a feed is left at schema version 1, and gets the table with its first entry", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    const plain = await openStore({ plugin: "sqlite", path });
    await plain.set(["x"], 1);
    await plain.close();
    assert.equal(meta(path, "schema_version"), "1");
    const feed = await openStore({ plugin: "sqlite", path, changes: { keep: "1d" } });
    try {
      assert.equal((await feed.feedInfo()).lastSeq, 0);
      assert.deepEqual(await all(feed.changes()), []);
      await feed.delete(["absent"]); // no change: no entry, no table
      assert.equal(meta(path, "schema_version"), "1");
      await feed.set(["x"], 2);
      assert.equal(meta(path, "schema_version"), "2");
      const [c] = await all(feed.changes());
      assert.equal(c.seq, 1);
      assert.notEqual(c.previousVersion, null);
    } finally {
      await feed.close();
    }
  });
});

Deno.test("feed table: trimming every entry keeps the head, and the next entry follows it (also after reopening)", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "t.db");
    const clock = manualClock(1_000_000);
    const spec = { plugin: "sqlite", path, changes: { keep: "1m" } } as const;
    let store = await openStore(spec, { clock });
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
      store = await openStore(spec, { clock });
      assert.equal((await store.feedInfo()).lastSeq, 3);
      await store.set(["k", "0"], "again");
      assert.deepEqual((await all(store.changes())).map((c) => c.seq), [4]);
      await assert.rejects(() => store.getAt(["k", "0"], { seq: 1 }), RangeError);
    } finally {
      await store.close();
    }
  });
});

Deno.test("feed table: a commit with a clear records the same entries as the core's feed (memory)", async () => {
  await withDir(async (dir) => {
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
    const changes = { keep: "1d" } as const;
    const sqlite = await run(
      await openStore({ plugin: "sqlite", path: join(dir, "c.db"), changes }),
    );
    const memory = await run(await openStore({ plugin: "memory", changes }));
    assert.deepEqual(sqlite, memory);
    assert.deepEqual(sqlite.slice(3).map((c) => [c.op, c.key]), [
      ["delete", ["p", "a"]],
      ["set", ["p", "b"]],
      ["set", ["q"]],
    ]);
  });
});

Deno.test("feed table: a trim longer than one batch removes every old entry and keeps the rest in order", async () => {
  await withDir(async (dir) => {
    const store = await openStore({
      plugin: "sqlite",
      path: join(dir, "long.db"),
      changes: { keep: { count: 10 } },
    });
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
  });
});

Deno.test("feed table: three processes opening a 0.3 store at once move its feed once and number on without a gap", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "old.db");
    await Deno.copyFile(FIXTURE, path);
    const spec = { plugin: "sqlite", path, changes: { keep: "30d" } };
    const writer = new URL("../../src/store/testdata/feed_writer.ts", import.meta.url).pathname;
    const N = 20; // each process: 20 sets, every fifth an atomic pair (24 entries)
    const runs = await Promise.all(
      ["p1", "p2", "p3"].map((name) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", writer, JSON.stringify(spec), name, String(N)],
          stdout: "piped",
          stderr: "piped",
        }).output()
      ),
    );
    for (const r of runs) assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    const store = await openStore(spec);
    try {
      assert.equal(await keySpaceFeedRows(store), 0);
      const changes = await all(store.changes());
      assert.deepEqual(changes.slice(0, EXPECTED.changes.length), EXPECTED.changes);
      const seqs = changes.map((c) => c.seq);
      const first = EXPECTED.info.firstSeq;
      assert.deepEqual(seqs, seqs.map((_, i) => first + i), "gap-free from the old entries on");
      assert.equal(changes.length, EXPECTED.changes.length + 3 * (N + N / 5));
    } finally {
      await store.close();
    }
  });
});

Deno.test("feed table: history and getAt agree with the core's feed (memory) past several index batches", async () => {
  await withDir(async (dir) => {
    const changes = { keep: "1d" } as const;
    const sqlite = await openStore({ plugin: "sqlite", path: join(dir, "h.db"), changes });
    const memory = await openStore({ plugin: "memory", changes });
    try {
      // 700 changes over 7 keys: single writes, deletes and atomic pairs, so that batches of
      // the index by key (every 256 entries) are crossed inside commits and between them.
      for (let i = 0; i < 600; i++) {
        const key = ["h", String(i % 7)];
        for (const store of [sqlite, memory]) {
          if (i % 11 === 10) await store.delete(key);
          else if (i % 6 === 5) {
            await store.atomic().set(key, i).set(["h", String((i + 3) % 7)], -i).commit();
          } else await store.set(key, i);
        }
      }
      const last = (await memory.feedInfo()).lastSeq;
      assert.equal((await sqlite.feedInfo()).lastSeq, last);
      assert.ok(last > 600);
      for (let k = 0; k < 7; k++) {
        const key = ["h", String(k)];
        const want = (await all(keyHistory(memory, key))).map((c) => c.seq);
        assert.deepEqual((await all(keyHistory(sqlite, key))).map((c) => c.seq), want);
        assert.deepEqual(
          (await all(keyHistory(sqlite, key, { reverse: true }))).map((c) => c.seq),
          [...want].reverse(),
        );
        for (const seq of [1, 100, 255, 256, 257, 511, 512, 600, last - 1, last]) {
          assert.deepEqual(
            (await sqlite.getAt(key, { seq }))?.value,
            (await memory.getAt(key, { seq }))?.value,
            `${JSON.stringify(key)} at #${seq}`,
          );
        }
      }
    } finally {
      await sqlite.close();
      await memory.close();
    }
  });
});
