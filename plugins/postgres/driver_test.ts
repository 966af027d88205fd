import assert from "node:assert/strict";
import { StoreClosedError } from "../../src/errors.ts";
import type { Key } from "../../src/store/types.ts";
import {
  dropTestSchema,
  manualClock,
  newTable,
  openPg,
  pgTest,
  SCHEMA,
  withAdmin,
  withOwnDatabase,
} from "./_test_utils.ts";

// PostgresDriver reads, writes and lists (needs a server: see _test_utils.ts).

// --- Reads and writes ------------------------------------------------------

pgTest(
  "PostgresDriver persists entries across reopen, with keys stored as ordered bytes",
  async (url) => {
    const table = newTable("persist");
    const keys: Key[] = [["b"], ["a", "z"], ["a"], ["a", "\u0000"], ["a", ""], ["😀"], ["\uffff"], [
      "\ufeffbom",
    ]];
    const first = await openPg(url, table);
    for (const [i, key] of keys.entries()) await first.set(key, { i });
    await first.close();
    const second = await openPg(url, table);
    try {
      const listed = await Array.fromAsync(second.list());
      assert.deepEqual(listed.map((e) => e.key), [
        ["a"],
        ["a", ""],
        ["a", "\u0000"],
        ["a", "z"],
        ["b"],
        ["\ufeffbom"],
        ["\uffff"],
        ["😀"],
      ]);
      assert.deepEqual((await second.get(["a", "\u0000"]))?.value, { i: 3 });
    } finally {
      await second.close();
    }
    await withAdmin(url, async (sql) => {
      const [row] = await sql.unsafe(
        `SELECT encode(key, 'hex') AS key FROM "${SCHEMA}"."${table}" ORDER BY key LIMIT 1`,
      );
      assert.equal(row.key, "6100", "the key is stored as encodeKey() bytes");
    });
  },
);

pgTest(
  "PostgresDriver stores values as the exact JSON text, NUL and lone surrogates included",
  async (url) => {
    const table = newTable("text");
    const store = await openPg(url, table);
    try {
      const value = { s: "a\u0000b", lone: "x\ud800y", emoji: "😀", n: 2 ** 60 };
      await store.set(["v"], value);
      assert.deepEqual((await store.get(["v"]))?.value, value);
      await withAdmin(url, async (sql) => {
        const [row] = await sql.unsafe(`SELECT value FROM "${SCHEMA}"."${table}"`);
        assert.equal(row.value, JSON.stringify(value));
      });
    } finally {
      await store.close();
    }
  },
);

pgTest("PostgresDriver.commit() writes nothing when a check fails", async (url) => {
  const store = await openPg(url, newTable("checks"));
  try {
    const x = await store.set(["x"], 1);
    assert.ok(x.ok);
    const result = await store.atomic()
      .check(["x"], x.version)
      .check(["y"], "not-the-version")
      .check(["x"], "stale")
      .set(["x"], 2)
      .set(["z"], 3)
      .delete(["w"])
      .commit();
    assert.deepEqual(result, { ok: false, version: null, conflicts: [["y"], ["x"]] });
    assert.equal((await store.get(["x"]))?.value, 1);
    assert.equal(await store.get(["z"]), null);
    const ok = await store.atomic().check(["x"], x.version).check(["y"], null).set(["x"], 2)
      .delete(["x"]).set(["z"], 3).set(["z"], 4).commit();
    assert.ok(ok.ok);
    assert.equal(await store.get(["x"]), null, "a later delete of the same key wins");
    assert.equal((await store.get(["z"]))?.value, 4, "a later set of the same key wins");
    assert.equal((await store.get(["z"]))?.version, ok.version);
    // Checks alone: nothing to write, still all-or-nothing answers.
    assert.ok((await store.atomic().check(["z"], ok.version).commit()).ok);
    assert.deepEqual((await store.atomic().check(["z"], null).commit()).ok, false);
  } finally {
    await store.close();
  }
});

pgTest(
  "PostgresDriver.commit() changes the stored version on an identical rewrite",
  async (url) => {
    const store = await openPg(url, newTable("rewrite"));
    try {
      const a = await store.set(["k"], { same: true });
      const b = await store.set(["k"], { same: true });
      assert.ok(a.ok && b.ok);
      assert.notEqual(a.version, b.version);
      assert.equal((await store.get(["k"]))?.version, b.version);
      assert.equal((await store.set(["k"], 1, { ifVersion: a.version })).ok, false);
    } finally {
      await store.close();
    }
  },
);

pgTest("PostgresDriver filters expired entries in SQL with the injected clock", async (url) => {
  const clock = manualClock();
  const store = await openPg(url, newTable("expiry"), { clock });
  try {
    await store.set(["p", "short"], 1, { expireIn: 10 });
    await store.set(["p", "long"], 2, { expireIn: 1000 });
    await store.set(["p", "never"], 3);
    await store.set(["q"], 4, { expireIn: 10 });
    assert.equal(await store.count(["p"]), 3);
    clock.t += 10;
    assert.equal(await store.get(["p", "short"]), null);
    assert.deepEqual(
      (await store.getMany([["p", "short"], ["p", "long"]])).map((e) => e?.value),
      [undefined, 2],
    );
    assert.equal(await store.count(["p"]), 2);
    assert.equal(await store.count(), 2);
    assert.deepEqual((await Array.fromAsync(store.list({ prefix: ["p"] }))).map((e) => e.key), [
      ["p", "long"],
      ["p", "never"],
    ]);
    assert.deepEqual((await store.query({ prefix: ["p"] })).map((e) => e.value), [2, 3]);
    assert.deepEqual(
      (await store.query({ prefix: ["p"], orderBy: { path: "", direction: "desc" } })).map((e) =>
        e.value
      ),
      [3, 2],
    );
    assert.equal((await store.get(["p", "long"]))?.expiresAt, 1_000_000 + 1000);
    // An expired entry counts as absent for compare-and-set.
    assert.ok((await store.set(["p", "short"], 5, { ifVersion: null })).ok);
    // clear() deletes expired rows too but reports only the live ones.
    assert.equal(await store.clear(["q"]), 0);
    assert.equal(await store.clear([]), 3);
    assert.equal(await store.count(), 0);
  } finally {
    await store.close();
  }
});

pgTest(
  "PostgresDriver stores an expiry beyond 2^53 ms and a fractional one exactly",
  async (url) => {
    const clock = manualClock(0);
    const store = await openPg(url, newTable("far"), { clock });
    try {
      await store.set(["far"], 1, { expireIn: 2 ** 60 });
      await store.set(["fraction"], 2, { expireIn: 0.5 });
      await store.atomic().set(["batch", "a"], 3, { expireIn: 0.1 + 0.2 }).set(["batch", "b"], 4)
        .commit();
      assert.equal((await store.get(["far"]))?.expiresAt, 2 ** 60);
      assert.equal((await store.get(["fraction"]))?.expiresAt, 0.5);
      assert.equal((await store.get(["batch", "a"]))?.expiresAt, 0.1 + 0.2);
      assert.equal((await store.get(["batch", "b"]))?.expiresAt, null);
      clock.t = 0.5;
      assert.equal(await store.get(["fraction"]), null);
    } finally {
      await store.close();
    }
  },
);

pgTest("PostgresDriver.clear() and count() work on a prefix only", async (url) => {
  const store = await openPg(url, newTable("prefix"));
  try {
    for (const key of [["a"], ["a", "1"], ["a", "2", "x"], ["ab"], ["b"], ["a\u0000"]]) {
      await store.set(key, key.join("/"));
    }
    assert.equal(await store.count(["a"]), 2);
    assert.equal(await store.clear(["a"]), 2);
    assert.deepEqual((await Array.fromAsync(store.list())).map((e) => e.key), [
      ["a"],
      ["a\u0000"],
      ["ab"],
      ["b"],
    ]);
  } finally {
    await store.close();
  }
});

pgTest("PostgresDriver.getMany() reads entries in the order asked", async (url) => {
  const store = await openPg(url, newTable("getmany"));
  try {
    await store.set(["a"], 1);
    await store.set(["b"], 2);
    const got = await store.getMany([["b"], ["missing"], ["a"], ["b"]]);
    assert.deepEqual(got.map((e) => e?.value ?? null), [2, null, 1, 2]);
    assert.deepEqual(got[0]?.key, ["b"]);
  } finally {
    await store.close();
  }
});

pgTest("PostgresDriver.purgeExpired() deletes expired rows in several batches", async (url) => {
  const table = newTable("purge");
  const clock = manualClock();
  const store = await openPg(url, table, { clock });
  try {
    const op = store.atomic();
    for (let i = 0; i < 2500; i++) op.set(["tmp", String(i)], i, { expireIn: 10 });
    for (let i = 0; i < 10; i++) op.set(["keep", String(i)], i);
    op.set(["later"], 0, { expireIn: 100 });
    assert.ok((await op.commit()).ok);
    assert.equal(await store.purgeExpired(), 0);
    clock.t += 10;
    assert.equal(await store.purgeExpired(), 2500);
    assert.equal(await store.purgeExpired(), 0);
    await withAdmin(url, async (sql) => {
      const [row] = await sql.unsafe(`SELECT count(*)::int AS n FROM "${SCHEMA}"."${table}"`);
      assert.equal(row.n, 11);
    });
  } finally {
    await store.close();
  }
});

pgTest("PostgresDriver.compact() vacuums the table and reports its size", (url) =>
  // In a database of its own: a transaction open in another test file's
  // session would keep the deleted rows from being vacuumed away.
  withOwnDatabase(url, "compact", async (url) => {
    const store = await openPg(url, newTable("compact"));
    try {
      // Written first, so it sits in the first page and the rest can be truncated.
      await store.set(["small"], "kept");
      const op = store.atomic();
      for (let i = 0; i < 3000; i++) op.set(["big", String(i)], "x".repeat(1000));
      assert.ok((await op.commit()).ok);
      assert.equal(await store.clear(["big"]), 3000);
      const result = await store.compact();
      assert.equal(result.supported, true);
      assert.ok(result.bytesBefore > 3_000_000, `before: ${result.bytesBefore}`);
      assert.ok(result.bytesAfter < result.bytesBefore / 4, `after: ${result.bytesAfter}`);
      assert.equal((await store.get(["small"]))?.value, "kept");
    } finally {
      await store.close();
    }
  }));

pgTest("two stores on one table see each other's writes", async (url) => {
  const table = newTable("shared");
  const a = await openPg(url, table);
  const b = await openPg(url, table);
  try {
    const written = await a.set(["shared"], "from a");
    assert.ok(written.ok);
    assert.equal((await b.get(["shared"]))?.version, written.version);
    assert.equal((await b.set(["shared"], "stale", { ifVersion: null })).ok, false);
  } finally {
    await a.close();
    await b.close();
  }
});

pgTest("PostgresDriver throws StoreClosedError after close()", async (url) => {
  const store = await openPg(url, newTable("closed"));
  for (let i = 0; i < 5; i++) await store.set(["k", String(i)], i);
  const it = store.list({ batchSize: 2 });
  await it.next();
  await store.close();
  await assert.rejects(async () => {
    for await (const _ of { [Symbol.asyncIterator]: () => it }) { /* drain */ }
  }, StoreClosedError);
  await assert.rejects(store.get(["k", "0"]), StoreClosedError);
});

// --- Listing -------------------------------------------------------------------

pgTest(
  "PostgresDriver.list() holds no transaction between pages and sees later writes",
  async (url) => {
    const table = newTable("pages");
    const store = await openPg(url, table);
    try {
      for (let i = 0; i < 10; i++) await store.set(["k", String(i)], i);
      const it = store.list({ prefix: ["k"], batchSize: 3 });
      assert.deepEqual((await it.next()).value?.key, ["k", "0"]);
      await withAdmin(url, async (sql) => {
        const open = await sql`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = 'flowstate' AND xact_start IS NOT NULL AND pid <> pg_backend_pid()
          AND query LIKE ${`%${SCHEMA}%${table}%`}`;
        // Only this store's connections: their last statement names its table. (Other
        // processes on the same server, tests of other sessions say, may be mid-transaction.)
        assert.equal(open[0].n, 0, "a connection of the store is inside a transaction");
      });
      await store.set(["k", "8a"], "new");
      const rest = [];
      for await (const e of { [Symbol.asyncIterator]: () => it }) rest.push(e.key[1]);
      assert.deepEqual(rest, ["1", "2", "3", "4", "5", "6", "7", "8", "8a", "9"]);
    } finally {
      await store.close();
    }
  },
);

// --- Cleanup -------------------------------------------------------------------

dropTestSchema();
