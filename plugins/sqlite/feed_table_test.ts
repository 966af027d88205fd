import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../../src/plugin.ts";
import { keyHistory } from "../../src/store/store.ts";
import {
  all,
  assertMovedFeed,
  clearsLikeTheCore,
  keySpaceFeedRows,
  longTrim,
  OLD_STORE_EXPECTED,
  OLD_STORE_FIXTURE,
  trimEverything,
} from "../_sql/feed_table_cases.ts";
import { rawDb, withDir } from "./_test_utils.ts";

// The change feed's table (schema version 2): a store written by Flowstate
// 0.3, whose feed lives in the reserved key space, moves it into the table on
// open and keeps its history; trims never move the head back; clears in a
// commit record what the core's feed records.

const FIXTURE = OLD_STORE_FIXTURE;
const EXPECTED = OLD_STORE_EXPECTED;

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

Deno.test("feed table: a store written by 0.3 (feed in the key space) moves its history into the table on open", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "old.db");
    await Deno.copyFile(FIXTURE, path);
    assert.equal(meta(path, "schema_version"), "1");
    const store = await openStore({ plugin: "sqlite", path, changes: { keep: { count: 7 } } });
    try {
      assert.equal(meta(path, "schema_version"), "2");
      await assertMovedFeed(store);
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
    await trimEverything((clock) =>
      openStore({ plugin: "sqlite", path, changes: { keep: "1m" } }, { clock })
    );
  });
});

Deno.test("feed table: a commit with a clear records the same entries as the core's feed (memory)", async () => {
  await withDir(async (dir) => {
    await clearsLikeTheCore(() =>
      openStore({ plugin: "sqlite", path: join(dir, "c.db"), changes: { keep: "1d" } })
    );
  });
});

Deno.test("feed table: a trim longer than one batch removes every old entry and keeps the rest in order", async () => {
  await withDir(async (dir) => {
    await longTrim(() =>
      openStore({ plugin: "sqlite", path: join(dir, "long.db"), changes: { keep: { count: 10 } } })
    );
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
