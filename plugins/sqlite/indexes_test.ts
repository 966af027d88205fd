import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../../src/plugin.ts";
import type { Warning } from "../../src/log.ts";
import { fakeClock } from "../../src/testing/clock.ts";
import { oldSearchFormat, rawDb, withDir } from "./_test_utils.ts";
import { format1Meta, format1Words, NFKC_SEARCHES, NFKC_TEXTS } from "../_sql/_test_utils.ts";
import { exitOf, hangGuard } from "../../tests/_deadline.ts";

// Declared indexes, search and the slow paths of the sqlite plugin; the
// conformance suite checks their answers against a scan.

const ORDERS = [{ prefix: ["orders"], path: "status" }, { prefix: ["orders"], path: "n" }];

Deno.test("sqlite builds a declared index once, reports a long build, and queries through it", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    {
      await using store = await openStore({ plugin: "sqlite", path });
      for (let i = 0; i < 12_000; i += 1000) {
        const op = store.atomic();
        for (let j = i; j < i + 1000; j++) {
          op.set(["orders", String(j).padStart(6, "0")], {
            status: j === 777 ? "lost" : "ok",
            n: j,
          });
        }
        assert.ok((await op.commit()).ok);
      }
    }
    const warnings: Warning[] = [];
    const open = () =>
      openStore({ plugin: "sqlite", path, indexes: ORDERS }, {
        onWarning: (w) => warnings.push(w),
      });
    {
      await using store = await open();
      assert.deepEqual(
        warnings.map((w) => w.code),
        ["INDEX_BUILD", "INDEX_BUILD"].concat([
          "INDEX_BUILD",
          "INDEX_BUILD",
        ]),
      );
      assert.match(
        warnings[0].message,
        /^building index fs_ix_\w+ on status under \["orders"\]: 12000 entries/,
      );
      assert.match(warnings[1].message, /^built index fs_ix_\w+ .* in \d+ ms$/);
      const q = {
        prefix: ["orders"],
        where: [{ path: "status", op: "eq" as const, value: "lost" }],
      };
      const plan = await store.explain(q);
      assert.equal(plan.index, store.indexes[0].name);
      assert.equal(plan.scan, false);
      assert.ok(
        plan.detail.some((d) => /SEARCH e USING INDEX fs_ix_/.test(d)),
        plan.detail.join("\n"),
      );
      assert.deepEqual((await store.query(q)).map((e) => e.key), [["orders", "000777"]]);
      const top = await store.query({
        prefix: ["orders"],
        orderBy: { path: "n", direction: "asc" },
        limit: 2,
      });
      assert.deepEqual(top.map((e) => e.value), [{ status: "ok", n: 0 }, { status: "ok", n: 1 }]);
      const sorted = await store.explain({ prefix: ["orders"], orderBy: { path: "n" }, limit: 2 });
      assert.equal(sorted.index, store.indexes[1].name);
      assert.ok(!sorted.detail.some((d) => /TEMP B-TREE/.test(d)), sorted.detail.join("\n"));
    }
    warnings.length = 0;
    await using again = await open();
    assert.deepEqual(warnings, [], "an index already built is not rebuilt");
    assert.ok(again.indexes.every((i) => i.native));
    const names = (rawDb(path).prepare(
      "SELECT name FROM sqlite_schema WHERE type = 'index' AND name LIKE 'fs_ix_%' ORDER BY name",
    ).all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(names, again.indexes.map((i) => i.name).sort());
  });
});

Deno.test("sqlite search follows writes from another connection and rebuilds when the declaration changes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    const search = { prefix: ["notes"], fields: ["title"] };
    await using a = await openStore({ plugin: "sqlite", path, search });
    await using b = await openStore({ plugin: "sqlite", path });
    await b.set(["notes", "1"], { title: "Quarterly report", body: "numbers" });
    await b.set(["notes", "2"], { title: "report draft", body: "quarterly" });
    assert.deepEqual((await a.search("report")).map((h) => h.key[1]).sort(), ["1", "2"]);
    assert.deepEqual((await a.search("quarterly")).map((h) => h.key[1]), ["1"]);
    await b.delete(["notes", "1"]);
    assert.deepEqual((await a.search("report")).map((h) => h.key[1]), ["2"]);
    await a.close();
    await using c = await openStore({
      plugin: "sqlite",
      path,
      search: { prefix: ["notes"], fields: ["title", "body"] },
    });
    assert.deepEqual((await c.search("quarterly", { fields: ["body"] })).map((h) => h.key[1]), [
      "2",
    ]);
  });
});

Deno.test("sqlite compare-and-set is one statement with the semantics of a checked commit", async () => {
  await withDir(async (dir) => {
    const clock = fakeClock();
    await using store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") }, { clock });
    const first = await store.set(["k"], 1, { ifVersion: null });
    assert.ok(first.ok);
    assert.equal((await store.set(["k"], 2, { ifVersion: null })).ok, false);
    assert.equal((await store.set(["k"], 2, { ifVersion: "nope" })).ok, false);
    const second = await store.set(["k"], 2, { ifVersion: first.version!, expireIn: 10 });
    assert.ok(second.ok);
    assert.equal((await store.get(["k"]))?.value, 2);
    clock.advance(10);
    // Expired: absent for a check, so a "must be absent" write succeeds and an old version fails.
    assert.equal((await store.set(["k"], 3, { ifVersion: second.version! })).ok, false);
    assert.ok((await store.set(["k"], 4, { ifVersion: null })).ok);
    const live = await store.get(["k"]);
    assert.deepEqual([live?.value, live?.expiresAt], [4, null]);
    assert.equal(await store.delete(["k"], { ifVersion: "nope" }), false);
    assert.equal(await store.delete(["k"], { ifVersion: live!.version }), true);
    assert.equal(await store.get(["k"]), null);
  });
});

Deno.test("sqlite compare-and-set without expireIn clears the entry's expiry, with one sets it", async () => {
  await withDir(async (dir) => {
    const clock = fakeClock();
    await using store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") }, { clock });
    const expiring = await store.set(["k"], 1, { expireIn: 10 });
    const kept = await store.set(["k"], 2, { ifVersion: expiring.version! });
    assert.ok(kept.ok);
    assert.equal((await store.get(["k"]))?.expiresAt, null);
    clock.advance(20);
    assert.equal((await store.get(["k"]))?.value, 2);
    const again = await store.set(["k"], 3, { ifVersion: kept.version!, expireIn: 5 });
    assert.ok(again.ok);
    assert.equal((await store.get(["k"]))?.expiresAt, clock.now() + 5);
    clock.advance(5);
    assert.equal(await store.get(["k"]), null);
    // An expired entry's version no longer matches, with or without expireIn.
    assert.equal((await store.set(["k"], 4, { ifVersion: again.version! })).ok, false);
  });
});

Deno.test("sqlite compare-and-sets of different keys in turn each write their own key", async () => {
  await withDir(async (dir) => {
    await using store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") });
    const versions = new Map<string, string | null>([["a", null], ["b", null], ["a\u0000", null]]);
    for (let round = 1; round <= 3; round++) {
      for (const [name, version] of versions) {
        const result = await store.set([name, "n"], `${name}${round}`, { ifVersion: version });
        assert.ok(result.ok, `${name} round ${round}`);
        versions.set(name, result.version);
      }
    }
    for (const name of versions.keys()) {
      assert.equal((await store.get([name, "n"]))?.value, `${name}3`);
    }
    // A version of one key never passes for another.
    assert.equal((await store.set(["b", "n"], "x", { ifVersion: versions.get("a")! })).ok, false);
  });
});

Deno.test("sqlite reads a range sorted by its own index in index order, in SQL even with lone surrogates under the prefix, as the memory plugin answers it", async () => {
  await withDir(async (dir) => {
    await using store = await openStore({
      plugin: "sqlite",
      path: join(dir, "s.db"),
      indexes: ORDERS,
    });
    await using memory = await openStore({ plugin: "memory" });
    const values: unknown[] = [
      { n: 5 },
      { n: 3 },
      { n: 5 },
      { n: 7.5 },
      { n: -1 },
      { n: "a\ud800" },
      { n: "b" },
      { n: null },
      { n: true },
      { status: "x" },
      { n: 5, status: "\udc00" },
      { n: 12 },
    ];
    for (const [i, value] of values.entries()) {
      const key = ["orders", String(values.length - i).padStart(3, "0")];
      await store.set(key, value as never);
      await memory.set(key, value as never);
    }
    const queries = [
      { where: [{ path: "n", op: "gte", value: 3 }], orderBy: { path: "n" }, limit: 3 },
      { where: [{ path: "n", op: "gte", value: 3 }], orderBy: { path: "n" }, offset: 2 },
      { where: [{ path: "n", op: "lt", value: 8 }], orderBy: { path: "n", direction: "desc" } },
      { where: [{ path: "n", op: "eq", value: 5 }], orderBy: { path: "n", direction: "desc" } },
      { where: [{ path: "n", op: "eq", value: null }], orderBy: { path: "n" } },
      { where: [{ path: "n", op: "gt", value: 3 }], orderBy: [{ path: "n" }, { path: "status" }] },
      { where: [{ path: "n", op: "gt", value: "a" }], orderBy: { path: "n" } },
    ] as const;
    for (const query of queries) {
      const q = { prefix: ["orders"], ...query } as Parameters<typeof store.query>[0];
      assert.deepEqual(
        (await store.query(q)).map((e) => [e.key, e.value]),
        (await memory.query(q)).map((e) => [e.key, e.value]),
        JSON.stringify(query),
      );
    }
    const plan = await store.explain({ prefix: ["orders"], ...queries[0] });
    assert.equal(plan.index, store.indexes[1].name);
    // Read in the index's order (no sort of every match), and in SQL: numbers only are ordered.
    assert.ok(!plan.detail.some((d) => /TEMP B-TREE|surrogate/.test(d)), plan.detail.join("\n"));
  });
});
Deno.test("sqlite queries that order strings trust the surrogate flag, and a value with a lone surrogate sets it", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    await using store = await openStore({ plugin: "sqlite", path });
    await store.set(["s", "a"], { t: "\uffff" });
    await store.set(["s", "b"], { t: "\ud83d\ude00" });
    const ordered = async () =>
      (await store.query({ prefix: ["s"], orderBy: { path: "t" } })).map((e) => e.key[1]);
    // Code-point order: U+1F600 sorts after U+FFFF.
    assert.deepEqual(await ordered(), ["a", "b"]);
    const flag = () =>
      (rawDb(path).prepare("SELECT value FROM flowstate_meta WHERE key = 'lone_surrogates'")
        .get() as
          | { value: string }
          | undefined)?.value;
    assert.equal(flag(), undefined);
    await store.set(["s", "c"], { t: "\ud800" });
    assert.equal(flag(), "1");
    // The core's order (SQLite's WTF-8 bytes would put "c" first): the query fell back.
    assert.deepEqual(await ordered(), ["a", "c", "b"]);
  });
});

Deno.test("sqlite count() skips expired entries without reading every row", async () => {
  await withDir(async (dir) => {
    const clock = fakeClock();
    const path = join(dir, "s.db");
    await using store = await openStore({ plugin: "sqlite", path }, { clock });
    for (let i = 0; i < 10; i++) {
      await store.set(["c", String(i)], i, i % 3 === 0 ? { expireIn: 5 } : undefined);
    }
    await store.set(["d", "x"], 1, { expireIn: 5 });
    assert.equal(await store.count(["c"]), 10);
    clock.advance(5);
    assert.equal(await store.count(["c"]), 6);
    assert.equal(await store.count(["c"], { start: ["c", "5"] }), 3);
    assert.equal(await store.count(), 6);
    const plan = (rawDb(path).prepare(
      "EXPLAIN QUERY PLAN SELECT (SELECT count(*) FROM flowstate_entries WHERE key > ? AND key < ?)",
    ).all(new Uint8Array([1]), new Uint8Array([2])) as { detail: string }[]).map((r) => r.detail);
    assert.ok(plan.some((d) => /COVERING INDEX/.test(d)), plan.join("\n"));
  });
});

Deno.test("sqlite drops an index and the search index no longer declared, saying so; a store opened without the option keeps them", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "d.db");
    const names = () => {
      const db = rawDb(path);
      try {
        return (db.prepare(
          "SELECT name FROM sqlite_schema WHERE name LIKE 'fs_ix_%' OR name = 'flowstate_search' " +
            "ORDER BY name",
        ).all() as { name: string }[]).map((r) => r.name);
      } finally {
        db.close();
      }
    };
    {
      await using store = await openStore({
        plugin: "sqlite",
        path,
        indexes: ORDERS,
        search: { prefix: ["notes"] },
      });
      await store.set(["notes", "a"], "hello world");
    }
    assert.equal(names().length, 3);
    {
      // No indexes option: nothing is touched.
      await using _ = await openStore({ plugin: "sqlite", path });
    }
    assert.equal(names().length, 3);
    const warnings: Warning[] = [];
    {
      await using store = await openStore({ plugin: "sqlite", path, indexes: ORDERS.slice(1) }, {
        onWarning: (w) => warnings.push(w),
      });
      assert.equal(store.indexes.length, 1);
      await store.set(["notes", "b"], "still writable");
    }
    assert.equal(names().length, 1);
    assert.ok(names()[0].startsWith("fs_ix_"));
    const lines = warnings.map((w) => w.message);
    assert.ok(
      lines.some((l) => /dropped index fs_ix_\w+: no longer declared/.test(l)),
      lines.join(),
    );
    assert.ok(
      lines.some((l) => /dropped the search index: no longer declared/.test(l)),
      lines.join(),
    );
  });
});

Deno.test("sqlite rebuilds a search table of the old format (FTS5's unicode61 words) at open, and then finds every entry by its own text", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    const search = { prefix: ["notes"] };
    const texts = { dotted: "İstanbul", nfd: "cafe\u0301 noir", greek: "ΟΔΟΣ" };
    {
      await using store = await openStore({ plugin: "sqlite", path });
      for (const [k, t] of Object.entries(texts)) await store.set(["notes", k], { t });
    }
    oldSearchFormat(path);
    const events: string[] = [];
    await using store = await openStore({ plugin: "sqlite", path, search }, {
      onIndexBuild: (e) => events.push(`${e.index} ${e.phase}`),
    });
    assert.deepEqual(events, ["search start", "search done"]);
    for (const [k, t] of Object.entries(texts)) {
      assert.deepEqual((await store.search(t)).map((h) => h.key), [["notes", k]], t);
    }
    await store.set(["notes", "later"], { t: "İzmir" });
    assert.deepEqual((await store.search("İzmir")).map((h) => h.key), [["notes", "later"]]);
    const check = rawDb(path);
    const table = check.prepare("SELECT sql FROM sqlite_schema WHERE name = 'flowstate_search'")
      .get() as { sql: string };
    check.close();
    assert.match(table.sql, /tokenize = 'ascii'/);
  });
});

Deno.test("sqlite rebuilds a search table of words format 1 (before NFKC) at open, and then NFD and NFC, full-width and ASCII, ligatures and letters find each other", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    const search = { prefix: ["notes"] };
    {
      await using store = await openStore({ plugin: "sqlite", path, search });
      for (const [k, t] of Object.entries(NFKC_TEXTS)) await store.set(["notes", k], { t });
    }
    // What the previous version wrote: the words of format 1, and its format in the metadata.
    const db = rawDb(path);
    db.exec("DELETE FROM flowstate_search");
    const rows = db.prepare("SELECT rowid, value FROM flowstate_entries").all() as {
      rowid: number;
      value: string;
    }[];
    for (const row of rows) {
      db.prepare("INSERT INTO flowstate_search (rowid, body) VALUES (?, ?)").run(
        row.rowid,
        format1Words(JSON.parse(row.value)).join(" "),
      );
    }
    const meta = db.prepare("SELECT value FROM flowstate_meta WHERE key = 'search'").get() as {
      value: string;
    };
    db.prepare("UPDATE flowstate_meta SET value = ? WHERE key = 'search'").run(
      format1Meta(meta.value),
    );
    db.close();
    const events: string[] = [];
    await using store = await openStore({ plugin: "sqlite", path, search }, {
      onIndexBuild: (e) => events.push(`${e.index} ${e.phase}`),
    });
    assert.deepEqual(events, ["search start", "search done"], "the old index is rebuilt once");
    for (const [text, keys] of NFKC_SEARCHES) {
      assert.deepEqual((await store.search(text)).map((h) => h.key[1]).sort(), keys, text);
    }
  });
});

Deno.test("sqlite: a search index another process builds while this one waits for the lock: its start is followed by its done", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    const search = { prefix: ["n"] };
    {
      await using store = await openStore({ plugin: "sqlite", path, search });
      await store.set(["n", "1"], { body: "hello" });
    }
    // This version's declaration, as "the other process" will write it; an older one for now.
    const db = rawDb(path);
    const wanted = (db.prepare("SELECT value FROM flowstate_meta WHERE key = 'search'").get() as {
      value: string;
    }).value;
    db.prepare("UPDATE flowstate_meta SET value = ? WHERE key = 'search'").run(format1Meta(wanted));
    db.close();
    // The other process: takes the write lock, says so, and once this test's store has said
    // "start" (it then waits for the lock), writes this version's declaration and commits (it
    // "built" the index).
    const marker = join(dir, "started");
    const other = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { DatabaseSync } from "node:sqlite";
         const db = new DatabaseSync(${JSON.stringify(path)});
         db.exec("BEGIN IMMEDIATE");
         console.log("locked");
         // Until this test's store has said "start" (then it waits for this lock).
         for (let i = 0; i < 6000; i++) {
           try { Deno.statSync(${
          JSON.stringify(marker)
        }); break; } catch { await new Promise((r) => setTimeout(r, 10)); }
         }
         db.prepare("UPDATE flowstate_meta SET value = ? WHERE key = 'search'").run(${
          JSON.stringify(wanted)
        });
         db.exec("COMMIT");`,
      ],
      stdout: "piped",
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    }).spawn();
    const reader = other.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let said = "";
    using _hang = hangGuard(other, () => said);
    while (!said.includes("locked")) {
      const { value, done } = await reader.read();
      if (done) break;
      said += value;
    }
    assert.match(said, /locked/);
    const events: string[] = [];
    // A minute of busyTimeout: however slow the machine, the other process commits within it.
    await using _store = await openStore({ plugin: "sqlite", path, search, busyTimeout: 60_000 }, {
      onIndexBuild: (e) => {
        events.push(`${e.index} ${e.phase}`);
        // Synchronous: the lock's wait that follows blocks this thread.
        if (e.phase === "start") Deno.writeTextFileSync(marker, "");
      },
    });
    assert.equal((await exitOf(other)).code, 0);
    await reader.cancel();
    assert.deepEqual(events, ["search start", "search done"]);
  });
});
