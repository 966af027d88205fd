import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openStore } from "../../src/plugin.ts";
import { keyHistory } from "../../src/store/store.ts";
import type { FeedKeep } from "../../src/store/types.ts";
import { FEED_HEAD } from "../../src/store/feed.ts";
import { encodeKey } from "../../src/store/keys.ts";
import { movedFeedTombstone } from "./driver.ts";
import { feedReads } from "./feed.ts";
import * as cases from "../_sql/feed_table_cases.ts";
import {
  dropTestSchema,
  LOCK_CLASS,
  newTable,
  openPg,
  pgTest,
  SCHEMA,
  whileLockHeld,
  withAdmin,
  withOwnDatabase,
} from "./_test_utils.ts";

// The change feed's table of a postgres store (schema version 2): a store
// written by Flowstate 0.3, whose feed lives in the reserved key space, moves
// it into the table on open and keeps its history; trims never move the head
// back; clears in a commit record what the core's feed records.

// The 0.3 store of the sqlite fixture: its rows, keys encoded as postgres keys are, copied into
// a postgres table make the same store there (0.3's postgres driver wrote the same key-space rows
// as the core's feed, in one statement).
const FIXTURE = cases.OLD_STORE_FIXTURE;
const EXPECTED = cases.OLD_STORE_EXPECTED;
const { all, keySpaceFeedRows } = cases;

/** A postgres store `table` of the test schema that keeps a change feed for `keep`. */
function feedSpec(url: string, table: string, keep: FeedKeep = "30d") {
  return { plugin: "postgres", url, schema: SCHEMA, table, changes: { keep } };
}

/** Make `table` the 0.3 store of the fixture: the table made by a plain open, then its rows. */
async function oldStore(url: string, table: string): Promise<void> {
  await (await openPg(url, table)).close();
  // A copy: opening the fixture itself, even read-only, leaves -wal and -shm files beside it.
  const dir = await Deno.makeTempDir({ prefix: "flowstate-pgfeed-" });
  let rows;
  try {
    await Deno.copyFile(FIXTURE, `${dir}/old.db`);
    const db = new DatabaseSync(`${dir}/old.db`, { readOnly: true });
    rows = db.prepare("SELECT key, value, version, expires_at FROM flowstate_entries")
      .all() as {
        key: Uint8Array;
        value: string;
        version: string;
        expires_at: number | null;
      }[];
    db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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

pgTest(
  "postgres feed table: a store written by 0.3 (feed in the key space) moves its history into the table on open",
  async (url) => {
    const table = newTable("oldfeed");
    await oldStore(url, table);
    assert.equal(await schemaVersion(url, table), "1");
    const spec = feedSpec(url, table, { count: 7 });
    const store = await openStore(spec);
    try {
      assert.equal(await schemaVersion(url, table), "2");
      await cases.assertMovedFeed(store);
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
  "postgres feed table: a 0.3 process still running after the move fails its next feed write, told to upgrade",
  async (url) => {
    const table = newTable("oldproc");
    await oldStore(url, table);
    const spec = feedSpec(url, table);
    await (await openStore(spec)).close(); // the move
    await withAdmin(url, async (sql) => {
      // How 0.3's feed writes (its function and its pipelined statements) read the head.
      await assert.rejects(
        sql.unsafe(
          `SELECT (value::json->>'seq')::bigint + 1 AS seq FROM "${SCHEMA}"."${table}" WHERE key = $1`,
          [encodeKey(FEED_HEAD)] as never[],
        ),
        (err: Error) => {
          assert.ok(err.message.includes(movedFeedTombstone(SCHEMA, `${table}_feed`)), err.message);
          return true;
        },
      );
    });
  },
);

pgTest(
  "postgres feed table: several stores opening a 0.3 store at once move its feed once and number on without a gap",
  async (url) => {
    const table = newTable("oldrace");
    await oldStore(url, table);
    const spec = feedSpec(url, table);
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
      const store = await openStore(feedSpec(limited.href, table, { count: 7 }));
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
    const store = await openStore(feedSpec(url, table, "1d"));
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
    const table = newTable("trimall");
    await cases.trimEverything((clock) =>
      openStore(feedSpec(url, table, "1m"), {
        clock,
      })
    );
  },
);

pgTest(
  "postgres feed table: a commit with a clear records the same entries as the core's feed (memory)",
  async (url) => {
    const table = newTable("clear");
    await cases.clearsLikeTheCore(() => openStore(feedSpec(url, table, "1d")));
  },
);

pgTest(
  "postgres feed table: a trim longer than one batch removes every old entry and keeps the rest in order",
  async (url) => {
    const table = newTable("longtrim");
    await cases.longTrim(() => openStore(feedSpec(url, table, { count: 10 })));
  },
);

pgTest(
  "postgres feed table: its pages follow the index of seq (no sort of the entries after the bound)",
  async (url) => {
    // A bare `ORDER BY seq` named the output column `seq::float8`, which no index orders: every
    // page read and sorted all the entries after its bound (0.1-1.4 s a page at 1M entries).
    const table = newTable("feedorder");
    const store = await openStore(feedSpec(url, table));
    try {
      await store.set(["k"], 0);
    } finally {
      await store.close();
    }
    const reads = feedReads(`"${SCHEMA}"."${table}_feed"`, `"${SCHEMA}"."${table}_meta"`);
    /** The plan of `text` with `params`, a scan and a sort the planner's last resorts. */
    const plan = async (text: string, params: string) => {
      let lines = "";
      await withAdmin(url, async (sql) => {
        await sql.begin(async (tx) => {
          for (const setting of ["enable_seqscan", "enable_bitmapscan", "enable_sort"]) {
            await tx.unsafe(`SET LOCAL ${setting} = off`);
          }
          await tx.unsafe(`PREPARE feed_page AS ${text}`);
          const rows = await tx.unsafe(`EXPLAIN EXECUTE feed_page(${params})`);
          lines = rows.map((r) => r["QUERY PLAN"]).join("\n");
          await tx.unsafe("DEALLOCATE feed_page");
        });
      });
      return lines;
    };
    const max = Number.MAX_SAFE_INTEGER;
    for (
      const [text, params] of [
        [reads.changes, `0, ${max}, 100`],
        [reads.changesReverse, `0, ${max}, 100`],
        [reads.keySeqs, `'\\x6b'::bytea, 0, ${max}, 100`],
        [reads.keySeqsReverse, `'\\x6b'::bytea, 0, ${max}, 100`],
      ]
    ) {
      const lines = await plan(text, params);
      assert.match(lines, /Index (Only )?Scan/, lines);
      assert.doesNotMatch(lines, /Sort/, lines);
    }
  },
);

pgTest(
  "postgres feed table: commits issued together keep their order (a delete then a set of one key ends with the set)",
  async (url) => {
    const table = newTable("order");
    const store = await openStore(feedSpec(url, table));
    try {
      await store.set(["k"], 1);
      for (let round = 0; round < 5; round++) {
        // The first goes alone; the next ones queue behind it and go together in one statement.
        const first = store.set(["other"], round);
        const gone = store.delete(["k"]);
        const back = store.set(["k"], round + 10);
        await Promise.all([first, gone, back]);
        assert.equal((await store.get(["k"]))?.value, round + 10, `round ${round}`);
      }
      // The feed agrees: the last change of k is the set.
      const changes = (await all(store.changes())).filter((c) => c.key[0] === "k");
      assert.equal(changes.at(-1)?.op, "set");
    } finally {
      await store.close();
    }
  },
);

pgTest(
  "postgres feed table: a claim is the first write of a store whose feed was just turned on",
  async (url) => {
    const table = newTable("claimfirst");
    const plain = await openStore({ plugin: "postgres", url, schema: SCHEMA, table });
    await plain.set(["q", "a"], 1);
    await plain.close();
    const store = await openStore(feedSpec(url, table));
    try {
      const claimed = await store.claimFirst!(["q"], (entry, op) => {
        op.delete(entry.key).set(["done", "a"], entry.value);
        return Promise.resolve(true);
      });
      assert.deepEqual(claimed?.result.ok, true);
      assert.equal((await store.get(["done", "a"]))?.value, 1);
      const ops = (await all(store.changes())).map((c) => `${c.op} ${c.key.join("/")}`);
      assert.deepEqual(ops.sort(), ["delete q/a", "set done/a"]);
    } finally {
      await store.close();
    }
  },
);

pgTest(
  "postgres feed table: a process's first feed write does not wait for the commits in flight",
  async (url) => {
    const table = newTable("nowait");
    const spec = feedSpec(url, table);
    const first = await openStore(spec);
    await first.set(["a"], 1); // the feed's table and functions exist from here
    await first.close();
    // A commit in flight holds the table's lock shared until it ends.
    await whileLockHeld(
      url,
      `SELECT pg_advisory_xact_lock_shared(${LOCK_CLASS}, hashtext($1))`,
      [`${SCHEMA}.${table}`],
      "the first feed write waited for the commit in flight",
      async () => {
        const store = await openStore(spec);
        await store.set(["b"], 2);
        await store.close();
      },
    );
  },
);

pgTest(
  "postgres feed table: an entry whose op is neither set nor delete (written by hand) fails reads clearly, not as a delete",
  async (url) => {
    const table = newTable("badop");
    const store = await openStore(feedSpec(url, table));
    try {
      await store.set(["a"], 1);
      await store.delete(["a"]);
      assert.deepEqual(
        (await Array.fromAsync(store.changes({}))).map((c) => c.op),
        ["set", "delete"],
      );
      await withAdmin(url, async (sql) => {
        await sql.unsafe(`UPDATE "${SCHEMA}"."${table}_feed" SET op = 'upsert' WHERE seq = 2`);
      });
      await assert.rejects(
        () => Array.fromAsync(store.changes({})),
        /Cannot read change #2: its op is "upsert", not "set" or "delete"/,
      );
      const [first] = await Array.fromAsync(store.changes({ limit: 1 }));
      assert.equal(first.op, "set", "the other entries still read");
    } finally {
      await store.close();
    }
  },
);

for (const warm of [false, true]) {
  pgTest(
    `postgres feed table: a database whose default isolation is repeatable read takes concurrent ` +
      `feed writes from two stores${warm ? " (each written once before)" : " (their first)"}`,
    async (url) => {
      await withOwnDatabase(url, "rr", async (own) => {
        const spec = { plugin: "postgres", url: own, table: "jobs", changes: { keep: "1d" } };
        await (await openStore(spec)).close();
        await withAdmin(own, async (sql) => {
          await sql.unsafe(
            `ALTER DATABASE "${new URL(own).pathname.slice(1)}" ` +
              `SET default_transaction_isolation = 'repeatable read'`,
          );
        });
        const a = await openStore(spec);
        const b = await openStore(spec);
        try {
          if (warm) {
            await a.set(["warm", "a"], 0);
            await b.set(["warm", "b"], 0);
          }
          const n = 120;
          await Promise.all(
            Array.from({ length: n }, (_, i) => (i % 2 ? a : b).set(["k", String(i % 7)], i)),
          );
          const info = await a.feedInfo();
          assert.equal(info.lastSeq, n + (warm ? 2 : 0));
        } finally {
          await a.close();
          await b.close();
        }
      });
    },
  );
}

dropTestSchema();
