import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openStore } from "../../src/plugin.ts";
import { FEED_BY_KEY, FEED_ENTRIES, FEED_HEAD } from "../../src/store/feed.ts";
import { internalAccess } from "../../src/store/internal_keys.ts";
import { keyHistory, trimChanges } from "../../src/store/store.ts";
import type { Change, Key, Store } from "../../src/store/types.ts";
import {
  dropTestSchema,
  manualClock,
  newTable,
  openPg,
  pgTest,
  SCHEMA,
  withAdmin,
} from "./_test_utils.ts";

// The change feed's table of a postgres store (schema version 2): a store
// written by Flowstate 0.3, whose feed lives in the reserved key space, moves
// it into the table on open and keeps its history; trims never move the head
// back; clears in a commit record what the core's feed records.

// A store written by 0.3 (see plugins/sqlite/testdata/feed_kv_store.gen.ts): its rows, keys
// encoded as postgres keys are, copied into a postgres table make the same store there (0.3's
// postgres driver wrote the same key-space rows as the core's feed, in one statement).
const FIXTURE = new URL("../sqlite/testdata/feed_kv_store.db", import.meta.url).pathname;
const EXPECTED = JSON.parse(
  await Deno.readTextFile(new URL("../sqlite/testdata/feed_kv_store.json", import.meta.url)),
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

/** Make `table` the 0.3 store of the fixture: the table made by a plain open, then its rows. */
async function oldStore(url: string, table: string): Promise<void> {
  await (await openPg(url, table)).close();
  const db = new DatabaseSync(FIXTURE, { readOnly: true });
  const rows = db.prepare("SELECT key, value, version, expires_at FROM flowstate_entries")
    .all() as {
      key: Uint8Array;
      value: string;
      version: string;
      expires_at: number | null;
    }[];
  db.close();
  await withAdmin(url, async (sql) => {
    for (const r of rows) {
      await sql.unsafe(
        `INSERT INTO "${SCHEMA}"."${table}" (key, value, version, expires_at) ` +
          `VALUES ($1, $2, $3, $4)`,
        [r.key, r.value, r.version, r.expires_at] as never[],
      );
    }
  });
}

async function schemaVersion(url: string, table: string): Promise<string> {
  let version = "";
  await withAdmin(url, async (sql) => {
    const [row] = await sql.unsafe(
      `SELECT value FROM "${SCHEMA}"."${table}_meta" WHERE key = 'schema_version'`,
    );
    version = row.value;
  });
  return version;
}

async function keySpaceFeedRows(store: Store): Promise<number> {
  const driver = internalAccess(store)!.driver;
  let n = (await driver.get(FEED_HEAD, 0)) === null ? 0 : 1;
  for (const prefix of [FEED_ENTRIES, FEED_BY_KEY]) {
    for await (const _ of driver.list({ prefix }, 0)) n++;
  }
  return n;
}

pgTest(
  "postgres feed table: a store written by 0.3 (feed in the key space) moves its history into the table on open",
  async (url) => {
    const table = newTable("oldfeed");
    await oldStore(url, table);
    assert.equal(await schemaVersion(url, table), "1");
    const spec = {
      plugin: "postgres",
      url,
      schema: SCHEMA,
      table,
      changes: { keep: { count: 7 } },
    };
    const store = await openStore(spec);
    try {
      assert.equal(await schemaVersion(url, table), "2");
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
    const again = await openStore(spec);
    try {
      assert.equal((await again.feedInfo()).lastSeq, EXPECTED.info.lastSeq + 1);
      assert.equal((await all(again.changes())).length, EXPECTED.changes.length + 1);
    } finally {
      await again.close();
    }
  },
);

pgTest(
  "postgres feed table: several stores opening a 0.3 store at once move its feed once and number on without a gap",
  async (url) => {
    const table = newTable("oldrace");
    await oldStore(url, table);
    const spec = { plugin: "postgres", url, schema: SCHEMA, table, changes: { keep: "30d" } };
    const stores = await Promise.all([1, 2, 3].map(() => openStore(spec)));
    try {
      await Promise.all(stores.map(async (store, s) => {
        for (let i = 0; i < 10; i++) await store.set(["w", String(s), String(i)], i);
      }));
      assert.equal(await keySpaceFeedRows(stores[0]), 0);
      const changes = await all(stores[0].changes());
      assert.deepEqual(changes.slice(0, EXPECTED.changes.length), EXPECTED.changes);
      const seqs = changes.map((c) => c.seq);
      const first = EXPECTED.info.firstSeq;
      assert.deepEqual(seqs, seqs.map((_, i) => first + i), "gap-free from the old entries on");
      assert.equal(changes.length, EXPECTED.changes.length + 30);
    } finally {
      for (const store of stores) await store.close();
    }
  },
);

pgTest(
  "postgres feed table: a role that may only read a 0.3 store reads its feed where it is, and changes nothing",
  async (url) => {
    const table = newTable("oldread");
    await oldStore(url, table);
    const role = `fs_ro_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
    await withAdmin(url, async (sql) => {
      await sql.unsafe(`CREATE ROLE ${role} LOGIN`);
      await sql.unsafe(`GRANT USAGE ON SCHEMA "${SCHEMA}" TO ${role}`);
      await sql.unsafe(
        `GRANT SELECT ON "${SCHEMA}"."${table}", "${SCHEMA}"."${table}_meta" TO ${role}`,
      );
    });
    try {
      const limited = new URL(url);
      limited.username = role;
      limited.password = "";
      const store = await openStore({
        plugin: "postgres",
        url: limited.href,
        schema: SCHEMA,
        table,
        changes: { keep: { count: 7 } },
      });
      try {
        assert.deepEqual(await all(store.changes()), EXPECTED.changes);
        assert.deepEqual(await all(keyHistory(store, ["a"])), EXPECTED.history);
        assert.deepEqual(await store.getAt(["a"], { seq: 4 }), EXPECTED.atSeq4);
        await assert.rejects(store.set(["a"], 5), /permission denied/);
      } finally {
        await store.close();
      }
      assert.equal(await schemaVersion(url, table), "1");
    } finally {
      await withAdmin(url, async (sql) => {
        await sql.unsafe(`DROP OWNED BY ${role}`);
        await sql.unsafe(`DROP ROLE ${role}`);
      });
    }
  },
);

pgTest(
  "postgres feed table: a table of the feed table's name that is not the store's is refused clearly, and nothing is written",
  async (url) => {
    const table = newTable("clash");
    await withAdmin(url, async (sql) => {
      await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${SCHEMA}"`);
      await sql.unsafe(`CREATE TABLE "${SCHEMA}"."${table}_feed" (x int)`);
    });
    const store = await openStore({
      plugin: "postgres",
      url,
      schema: SCHEMA,
      table,
      changes: { keep: "1d" },
    });
    try {
      await assert.rejects(
        store.set(["a"], 1),
        new RegExp(`table ${SCHEMA}\\.${table}_feed exists but is not this store's change feed`),
      );
      assert.equal(await store.get(["a"]), null);
    } finally {
      await store.close();
    }
    assert.equal(await schemaVersion(url, table), "1");
  },
);

pgTest(
  "postgres feed table: trimming every entry keeps the head, and the next entry follows it (also after reopening)",
  async (url) => {
    const clock = manualClock(1_000_000);
    const spec = {
      plugin: "postgres",
      url,
      schema: SCHEMA,
      table: newTable("trimall"),
      changes: { keep: "1m" },
    };
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
  },
);

pgTest(
  "postgres feed table: a commit with a clear records the same entries as the core's feed (memory)",
  async (url) => {
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
    const pg = await run(
      await openStore({
        plugin: "postgres",
        url,
        schema: SCHEMA,
        table: newTable("clear"),
        changes,
      }),
    );
    const memory = await run(await openStore({ plugin: "memory", changes }));
    assert.deepEqual(pg, memory);
    assert.deepEqual(pg.slice(3).map((c) => [c.op, c.key]), [
      ["delete", ["p", "a"]],
      ["set", ["p", "b"]],
      ["set", ["q"]],
    ]);
  },
);

pgTest(
  "postgres feed table: a trim longer than one batch removes every old entry and keeps the rest in order",
  async (url) => {
    const store = await openStore({
      plugin: "postgres",
      url,
      schema: SCHEMA,
      table: newTable("longtrim"),
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
  },
);

dropTestSchema();
