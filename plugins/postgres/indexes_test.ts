import assert from "node:assert/strict";
import { openStore } from "../../src/plugin.ts";
import type { JsonValue, Query, Store, WhereClause } from "../../src/store/types.ts";
import { openClient } from "./client.ts";
import { dropTestSchema, newTable, pgTest, SCHEMA, withAdmin } from "./_test_utils.ts";
import { format1Meta, format1Words, NFKC_SEARCHES, NFKC_TEXTS } from "../_sql/_test_utils.ts";
import { searchWords } from "../../src/store/indexes.ts";
import { searchServerProblem } from "./search.ts";
import { encodeKey } from "../../src/store/keys.ts";
import { toHex } from "./statements.ts";

/** Rows of one statement on a connection of its own. */
async function rows<T>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const sql = openClient(url, { max: 1 });
  try {
    return [...await sql.unsafe(text, params as never[])] as T[];
  } finally {
    await sql.end({ timeout: 5 });
  }
}

// Declared indexes and full-text search on postgres, through openStore():
// ranges and sorts from the index, the guard for values jsonb cannot hold,
// lifecycle (a removed declaration is dropped), and search through the GIN
// index of the tsvector column (needs a server: see _test_utils.ts).

function open(
  url: string,
  table: string,
  extra: Record<string, unknown> = {},
  warnings: string[] = [],
): Promise<Store> {
  return openStore(
    { plugin: "postgres", url, schema: SCHEMA, table, ...extra },
    { onWarning: (w) => warnings.push(w.message) },
  );
}

const ORDERS = { indexes: [{ prefix: ["o"], path: "total" }, { prefix: ["o"], path: "st" }] };

async function fill(store: Store): Promise<void> {
  const op = store.atomic();
  for (let i = 0; i < 40; i++) {
    const total = i % 3 === 0 ? `t${i}` : i % 5 === 0 ? null : i * 1.5;
    op.set(["o", `k${String(i).padStart(2, "0")}`], { total, st: i % 2 ? "open" : "done" });
  }
  op.set(["o", "missing"], { st: "open" });
  op.set(["p", "other"], { total: 3 });
  await op.commit();
}

pgTest(
  "postgres indexes answer eq, ranges and orderBy from the index, as a scan does",
  async (url) => {
    const table = newTable("ix");
    await using store = await open(url, table, ORDERS);
    await using reference = await openStore({ plugin: "memory" });
    await fill(store);
    await fill(reference);
    const queries = [
      { prefix: ["o"], where: [{ path: "total", op: "gt" as const, value: 30 }] },
      { prefix: ["o"], where: [{ path: "total", op: "lte" as const, value: "t2" }] },
      { prefix: ["o"], where: [{ path: "total", op: "eq" as const, value: null }] },
      { prefix: ["o"], where: [{ path: "st", op: "eq" as const, value: "open" }], limit: 3 },
      { prefix: ["o"], orderBy: { path: "total" }, limit: 10 },
      { prefix: ["o"], orderBy: { path: "total", direction: "desc" as const }, limit: 10 },
      {
        prefix: ["o"],
        where: [{ path: "total", op: "gte" as const, value: 10 }],
        orderBy: { path: "total", direction: "desc" as const },
        offset: 2,
        limit: 4,
      },
    ];
    for (const q of queries) {
      assert.deepEqual(
        (await store.query(q)).map((e) => [e.key, e.value]),
        (await reference.query(q)).map((e) => [e.key, e.value]),
        JSON.stringify(q),
      );
    }
    for (const q of queries.slice(0, 3)) {
      const plan = await store.explain(q);
      assert.equal(plan.by, "native");
      assert.equal(plan.index, store.indexes[0].name, JSON.stringify(plan));
      assert.equal(plan.scan, false);
    }
    // A sort alone: PostgreSQL reads the order from the index (no Sort node).
    await rows(url, `ANALYZE "${SCHEMA}"."${table}"`);
    const sorted = await store.explain(queries[4]);
    assert.equal(sorted.index, store.indexes[0].name, sorted.detail.join("\n"));
    assert.ok(!sorted.detail.some((d) => / Sort /.test(d)), sorted.detail.join("\n"));
    // An eq in key order: read from the index in order too (no Sort of every match by key).
    const eq = await store.explain(queries[3]);
    assert.equal(eq.index, store.indexes[1].name, eq.detail.join("\n"));
    assert.ok(!eq.detail.some((d) => /Sort/.test(d)), eq.detail.join("\n"));
    // Without a limit every match is read anyway: sorted by key, with no sort key computed
    // per row from the value (PL/pgSQL calls in the plan's output).
    const all = await store.explain({ ...queries[3], limit: undefined });
    assert.equal(all.index, store.indexes[1].name, all.detail.join("\n"));
    assert.ok(all.detail.some((d) => /Sort Key: (e\.)?key\b/.test(d)), all.detail.join("\n"));
  },
);

pgTest(
  "postgres: a value jsonb cannot hold under an index's prefix sends its queries to the core",
  async (url) => {
    await using store = await open(url, newTable("odd"), ORDERS);
    await using reference = await openStore({ plugin: "memory" });
    for (const s of [store, reference]) {
      await s.set(["o", "a"], { total: "\ud800" });
      await s.set(["o", "b"], { total: "\ufffd" });
      await s.set(["o", "c"], { total: "zz" });
    }
    for (
      const q of [
        { prefix: ["o"], orderBy: { path: "total" } },
        { prefix: ["o"], orderBy: { path: "total", direction: "desc" as const }, limit: 1 },
        { prefix: ["o"], where: [{ path: "total", op: "lt" as const, value: "\ue000" }] },
        { prefix: ["o"], where: [{ path: "total", op: "gt" as const, value: "\ue000" }] },
      ]
    ) {
      const ours = (await store.query(q)).map((e) => e.key[1]);
      assert.deepEqual(ours, (await reference.query(q)).map((e) => e.key[1]), JSON.stringify(q));
    }
    const none = await store.query({
      prefix: ["o"],
      where: [{ path: "total", op: "eq", value: 5 }],
    });
    assert.deepEqual(none, []);
  },
);

pgTest(
  "postgres: an indexed eq or number range answers exactly beside values jsonb cannot hold, raw SQL rows too",
  async (url) => {
    // The index functions read such a value with its NUL and surrogate escapes (an escaped
    // pair too) turned into U+FFFD: a number eq or range, and an eq whose operand holds none
    // of those (on a path without them), read the index without the check for such values;
    // anything else is checked, and the core answers.
    const table = newTable("oddeq");
    const indexes = [{ prefix: ["o"], path: "st" }, { prefix: ["o"], path: "😀" }];
    await using store = await open(url, table, { indexes });
    await using reference = await openStore({ plugin: "memory" });
    const values: [string, unknown][] = [
      ["a", { st: "needle", n: 1 }],
      ["b", { st: "x\u0000", z: "\ud800" }],
      ["c", { st: "x\ufffd" }],
      ["d", { st: "needle", note: "\udfff" }],
      ["g", { st: 7, z: "a\u0000" }],
      ["h", { st: null, z: "\ud800" }],
    ];
    for (const [k, v] of values) {
      await store.set(["o", k], v as never);
      await reference.set(["o", k], v as never);
    }
    // Written by another client, past Flowstate: escaped surrogate pairs (which JSON.stringify
    // never writes) beside a lone surrogate, so the index reads "😀" as "\ufffd\ufffd".
    const raw: [string, string, unknown][] = [
      ["e", String.raw`{"st":"\ud83d\ude00","z":"\ud800"}`, { st: "😀", z: "\ud800" }],
      ["f", String.raw`{"\ud83d\ude00":"k","st":"\u0000"}`, { "😀": "k", st: "\u0000" }],
    ];
    for (const [k, text, v] of raw) {
      await rows(
        url,
        `INSERT INTO "${SCHEMA}"."${table}" (key, value, version, expires_at) ` +
          `VALUES (decode($1, 'hex'), $2, 'raw', NULL)`,
        [toHex(encodeKey(["o", k])), text],
      );
      assert.deepEqual((await store.get(["o", k]))?.value, v);
      await reference.set(["o", k], v as never);
    }
    const on = (path: string, op: WhereClause["op"], value: unknown, more = {}): Query => ({
      prefix: ["o"],
      where: [{ path, op, value: value as JsonValue }],
      ...more,
    });
    const cases: [Query, string[], boolean][] = [
      [on("st", "eq", "needle"), ["a", "d"], false],
      [on("st", "eq", 7), ["g"], false],
      [on("st", "eq", null), ["h"], false],
      [on("st", "eq", "x"), [], false],
      [on("st", "gte", 1), ["g"], false],
      [on("st", "lt", 9, { orderBy: { path: "st", direction: "desc" }, limit: 1 }), ["g"], false],
      [on("st", "eq", "x\ufffd"), ["c"], true], // the index also holds "b" there
      [on("st", "eq", "😀"), ["e"], true], // the index holds "e" under "\ufffd\ufffd"
      [on("😀", "eq", "k"), ["f"], true], // … and the key of "f"
      // "x\u0000" and "x\ufffd" (which the index both reads as "x\ufffd"), and "😀".
      [on("st", "gt", "x"), ["b", "c", "e"], true],
      [on("st", "lt", "x\u0001"), ["a", "b", "d", "f"], true], // the index holds "b" after it
    ];
    for (const [q, keys, checked] of cases) {
      const ours = (await store.query(q)).map((e) => e.key[1]);
      assert.deepEqual(ours, keys, JSON.stringify(q));
      assert.deepEqual((await reference.query(q)).map((e) => e.key[1]), keys);
      const plan = await store.explain(q);
      assert.equal(plan.index, store.indexes[q.where![0].path === "st" ? 0 : 1].name);
      const fallback = plan.detail.some((d) => d.includes("falls back to the core's scan"));
      assert.equal(fallback, checked, `${JSON.stringify(q)}\n${plan.detail.join("\n")}`);
    }
  },
);

pgTest(
  "postgres: an index removed from the declaration is dropped, with a line saying so",
  async (url) => {
    const table = newTable("drop");
    const names = () =>
      rows<{ n: string }>(
        url,
        `SELECT indexname AS n FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ` +
          `AND indexname LIKE '%fs\\_%' ORDER BY 1`,
        [SCHEMA, table],
      ).then((r) => r.map((x) => x.n));
    {
      await using _ = await open(url, table, ORDERS);
    }
    assert.equal((await names()).length, 3); // two declared and the guard
    const warnings: string[] = [];
    {
      await using s = await open(url, table, { indexes: [ORDERS.indexes[0]] }, warnings);
      assert.equal(s.indexes.length, 1);
    }
    assert.equal((await names()).length, 2);
    assert.ok(
      warnings.some((w) => /dropped index fs_ix_\w+: no longer declared/.test(w)),
      warnings.join(),
    );
  },
);

pgTest(
  "postgres search: tsvector + GIN finds what the reference rule finds, kept exact on every write",
  async (url) => {
    const table = newTable("fts");
    const search = { prefix: ["n"], fields: ["title", "body"] };
    await using store = await open(url, table, { search });
    await using reference = await openStore({ plugin: "memory" });
    const docs: [string, unknown][] = [
      ["a", { title: "Red apples", body: "Apples grow on trees; the red-apple harvest." }],
      ["b", { title: "Green pears", body: "Pears, not apples." }],
      ["c", { title: "Été à Paris", body: "日本語 text and naïve café" }],
      ["d", { title: "nothing", body: 42 }],
    ];
    for (const [k, v] of docs) {
      await store.set(["n", k], v as never);
      await reference.set(["n", k], v as never);
    }
    await store.set(["x", "a"], { title: "apples outside the prefix" });
    const same = async (text: string, options?: { fields?: string[] }) => {
      const ours = (await store.search(text, options)).map((h) => h.key[1]).sort();
      const ref = (await reference.search(text, { prefix: ["n"], ...options }))
        .map((h) => h.key[1]).sort();
      assert.deepEqual(ours, ref, text);
      return ours;
    };
    assert.deepEqual(await same("apples"), ["a", "b"]);
    assert.deepEqual(await same("APPLE"), ["a"]);
    assert.deepEqual(await same("red apples"), ["a"]);
    assert.deepEqual(await same("été"), ["c"]);
    assert.deepEqual(await same("日本語 CAFÉ"), ["c"]);
    assert.deepEqual(await same("apples", { fields: ["title"] }), ["a"]);
    assert.deepEqual(await same("42"), []);
    // Ranked: two mentions in a short text first.
    assert.deepEqual((await store.search("apples")).map((h) => h.key[1]), ["a", "b"]);
    // Overwrites and deletes are seen at once.
    await store.set(["n", "b"], { title: "plums" });
    await store.delete(["n", "a"]);
    assert.deepEqual((await store.search("apples")).map((h) => h.key[1]), []);
    assert.deepEqual((await store.search("plums")).map((h) => h.key[1]), ["b"]);
    // Native: the GIN index is there.
    const gin = await rows<{ n: number }>(
      url,
      `SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ` +
        `AND indexdef LIKE '%USING gin (fs_search)%'`,
      [SCHEMA, table],
    );
    assert.equal(gin[0].n, 1);
    // Removing the declaration (indexes still declared) drops the column.
    const warnings: string[] = [];
    {
      await using _ = await open(
        url,
        table,
        { indexes: [{ prefix: ["n"], path: "title" }] },
        warnings,
      );
    }
    assert.ok(warnings.some((w) => /dropped the search index/.test(w)), warnings.join());
    const cols = await rows<{ n: number }>(
      url,
      `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = $1 ` +
        `AND table_name = $2 AND column_name = 'fs_search'`,
      [SCHEMA, table],
    );
    assert.equal(cols[0].n, 0);
  },
);

pgTest(
  "postgres: a table of 47 or 48 characters keeps its index names within 63 bytes: found again on the next open, used by queries",
  async (url) => {
    for (const length of [46, 47, 48]) {
      const base = newTable("long_");
      const table = base + "x".repeat(length - base.length);
      assert.equal(table.length, length);
      const spec = {
        indexes: [{ prefix: ["o"], path: "s" }],
        search: { prefix: ["n"], fields: ["title"] },
        changes: { keep: 100 },
      };
      const names = () =>
        rows<{ n: string }>(
          url,
          `SELECT c.relname AS n FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid ` +
            `WHERE i.indrelid = $1::regclass ORDER BY 1`,
          [`${SCHEMA}.${table}`],
        ).then((r) => r.map((x) => x.n));
      const eq = { prefix: ["o"], where: [{ path: "s", op: "eq" as const, value: "b" }] };
      let before: string[] = [];
      for (let round = 1; round <= 3; round++) {
        const warnings: string[] = [];
        const builds: string[] = [];
        await using store = await openStore(
          { plugin: "postgres", url, schema: SCHEMA, table, ...spec },
          {
            onWarning: (w) => warnings.push(w.message),
            onIndexBuild: (e) => builds.push(`${e.phase} ${e.index}`),
          },
        );
        if (round === 1) {
          for (let i = 0; i < 30; i++) await store.set(["o", `k${i}`], { s: i % 3 ? "a" : "b" });
          await store.set(["n", "1"], { title: "quarterly report" });
          before = await names();
        } else {
          // Found again: nothing dropped, nothing built, the same indexes.
          assert.deepEqual(builds, [], `${length} characters, open #${round}: ${builds}`);
          assert.deepEqual(
            warnings.filter((w) => /dropped|building|built/.test(w)),
            [],
            `${length} characters, open #${round}`,
          );
          assert.deepEqual(await names(), before);
        }
        const plan = await store.explain(eq);
        assert.equal(plan.index, store.indexes[0].name, JSON.stringify(plan));
        assert.equal(plan.scan, false);
        assert.equal((await store.query(eq)).length, 10);
        assert.deepEqual((await store.search("report")).map((h) => h.key), [["n", "1"]]);
        assert.ok((await Array.fromAsync(store.changes())).length >= 31);
      }
      assert.ok(before.every((n) => new TextEncoder().encode(n).length <= 63), `${before}`);
      const declared = before.filter((n) => n.includes("fs_ix_"));
      assert.equal(declared.length, 1, `${before}`);
      if (length === 46) {
        // Where `<table>_` leaves room, the name is the one older versions gave.
        assert.equal(declared[0], `${table}_fs_ix_${declared[0].slice(-10, -2)}_o`);
      } else {
        assert.ok(!declared[0].startsWith(table), declared[0]);
        // An index an older version made (its name truncated to 63 bytes) is replaced once.
        const truncated = `${table}_${declared[0].slice(-16)}`.slice(0, 63);
        await rows(
          url,
          `ALTER INDEX ${SCHEMA}."${declared[0]}" RENAME TO "${truncated}"`,
        );
        const warnings: string[] = [];
        {
          await using _ = await open(url, table, spec, warnings);
        }
        assert.ok(warnings.some((w) => /dropped index fs_ix_\w+: no longer declared/.test(w)));
        assert.deepEqual(await names(), before);
        const again: string[] = [];
        {
          await using _ = await open(url, table, spec, again);
        }
        assert.deepEqual(again.filter((w) => /dropped|building|built/.test(w)), []);
      }
    }
  },
);

pgTest(
  "postgres rebuilds a search column of the old format (lower() and [[:alnum:]]) at open, and then finds every entry by its own text",
  async (url) => {
    const table = newTable("fts_old");
    const search = { prefix: ["n"] };
    const texts = { upper: "ΟΔΟΣ", lower: "οδος", dotted: "İstanbul", nfd: "cafe\u0301 noir" };
    {
      await using store = await open(url, table, { search });
      for (const [k, t] of Object.entries(texts)) await store.set(["n", k], { t });
    }
    // What earlier versions wrote: the database's lower() and [[:alnum:]] words.
    const qualified = `"${SCHEMA}"."${table}"`;
    await rows(
      url,
      `UPDATE ${qualified} SET fs_search = to_tsvector('simple', (SELECT string_agg(m[1], ' ') ` +
        `FROM jsonb_path_query(value::jsonb, 'strict $.**') AS s(v), ` +
        `regexp_matches(lower(s.v #>> '{}'), '([[:alnum:]]+)', 'g') AS m ` +
        `WHERE jsonb_typeof(s.v) = 'string'))`,
    );
    await rows(url, `UPDATE "${SCHEMA}"."${table}_meta" SET value = $1 WHERE key = 'search'`, [
      JSON.stringify({ prefix: ["n"], fields: null }),
    ]);
    const events: string[] = [];
    await using store = await openStore(
      { plugin: "postgres", url, schema: SCHEMA, table, search },
      { onIndexBuild: (e) => events.push(`${e.index} ${e.phase}`) },
    );
    assert.deepEqual(events, ["search start", "search done"]);
    const keys = async (text: string) => (await store.search(text)).map((h) => h.key[1]).sort();
    assert.deepEqual(await keys("ΟΔΟΣ"), ["lower", "upper"]);
    assert.deepEqual(await keys("οδος"), ["lower", "upper"]);
    assert.deepEqual(await keys("İstanbul"), ["dotted"]);
    assert.deepEqual(await keys("cafe\u0301"), ["nfd"]);
    const meta = await rows<{ value: string }>(
      url,
      `SELECT value FROM "${SCHEMA}"."${table}_meta" WHERE key = 'search'`,
    );
    assert.match(meta[0].value, /words 2, unicode /);
  },
);

pgTest(
  "postgres rebuilds a search column of words format 1 (before NFKC) at open, and then NFD and NFC, full-width and ASCII, ligatures and letters find each other",
  async (url) => {
    const table = newTable("fts_f1");
    const search = { prefix: ["n"] };
    {
      await using store = await open(url, table, { search });
      for (const [k, t] of Object.entries(NFKC_TEXTS)) await store.set(["n", k], { t });
    }
    // What the previous version wrote: the words of format 1, and its format in the metadata.
    const qualified = `"${SCHEMA}"."${table}"`;
    await withAdmin(url, async (sql) => {
      const entries = await sql.unsafe<{ key: Uint8Array; value: string }[]>(
        `SELECT key, value FROM ${qualified}`,
      );
      for (const e of entries) {
        const vector = format1Words(JSON.parse(e.value)).map((w, i) =>
          `'${w.replaceAll("ς", "σ")}':${i + 1}`
        ).join(" ");
        await sql.unsafe(`UPDATE ${qualified} SET fs_search = $1::tsvector WHERE key = $2`, [
          vector,
          e.key,
        ]);
      }
      const [meta] = await sql.unsafe<{ value: string }[]>(
        `SELECT value FROM "${SCHEMA}"."${table}_meta" WHERE key = 'search'`,
      );
      await sql.unsafe(`UPDATE "${SCHEMA}"."${table}_meta" SET value = $1 WHERE key = 'search'`, [
        format1Meta(meta.value),
      ]);
    });
    const events: string[] = [];
    await using store = await openStore(
      { plugin: "postgres", url, schema: SCHEMA, table, search },
      { onIndexBuild: (e) => events.push(`${e.index} ${e.phase}`) },
    );
    assert.deepEqual(events, ["search start", "search done"], "the old column is rebuilt once");
    for (const [text, keys] of NFKC_SEARCHES) {
      assert.deepEqual((await store.search(text)).map((h) => h.key[1]).sort(), keys, text);
    }
  },
);

pgTest(
  "postgres words function cuts as the core's rule: a capital and a combining mark lower-case and compose (H + U+0331, Υ + U+0342), İ, σ/ς, ß, NFKC forms",
  async (url) => {
    const table = newTable("fts_words");
    await using _store = await open(url, table, { search: { prefix: [] } });
    // Every capital whose lower case composes with a following combining diacritical mark (a scan
    // of Unicode: 71 pairs, each in a string of its own, with and without marks elsewhere), and
    // the texts the conformance suite and the README name.
    const pairs: string[] = [];
    for (let c = 0; c <= 0x10ffff; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue;
      const capital = String.fromCodePoint(c);
      if (!/\p{Changes_When_Lowercased}/u.test(capital)) continue;
      for (let m = 0x300; m <= 0x36f; m++) {
        const text = capital + String.fromCodePoint(m);
        const once = text.normalize("NFKC").toLowerCase();
        if (once.normalize("NFKC") !== once) pairs.push(`${text}x ${text}`);
      }
    }
    assert.ok(pairs.length > 50, `pairs: ${pairs.length}`);
    const texts = [
      ...pairs,
      "\u0130\u0316x \u0130\u0301 x\u0130 \u0130 I\u0307\u0323",
      "\u041c\u043e\u0441\u043a\u0432\u0430 \u039c\u039f\u03a3\u039a\u0391 x\u0301",
      "\u041c\u043e\u0441\u043a\u0432\u0430 \u039c\u039f\u03a3\u039a\u0391 \u00c9T\u00c9",
      "H\u0331 J\u030c T\u0308 W\u030a Y\u030a \u0132\u030c \u01c7\u030c",
      "\u0386\u0345 \u0391\u0342 \u0397\u0342 \u0399\u0344 \u03a1\u0313 \u039d\u03a5\u0342\u039d",
      "\u0130stanbul \u0130ZM\u0130R \u0131spanak I\u015eIK",
      "\u039f\u0394\u039f\u03a3 \u03bf\u03b4\u03bf\u03c2 \u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3",
      "Stra\u00dfe STRASSE \u1e9e",
      "cafe\u0301 caf\u00e9 \uff21\uff22\uff23 \ufb01le \u216b \u00bd \u338f \u01c5emal \u24b6",
      "x\u0301\u0301 \u0301lead A\u0300\u0316b",
    ];
    await withAdmin(url, async (sql) => {
      const [{ words }] = await sql.unsafe<{ words: string[] }[]>(
        `SELECT "${SCHEMA}"."${table}_fs_words"($1::jsonb) AS words`,
        [JSON.stringify(texts)],
      );
      assert.deepEqual(
        words,
        texts.flatMap((t) => searchWords(t)).map((w) => w.replaceAll("ς", "σ")),
      );
    });
  },
);

pgTest(
  "postgres search by a word of 2,048 bytes or more, thousands of words or a megabyte of them finds what a scan finds (no tsquery error)",
  async (url) => {
    const table = newTable("fsw");
    await using store = await open(url, table, { search: { prefix: ["n"] } });
    const long = "語".repeat(700); // 2,100 bytes: too long for a lexeme, found by the core's scan
    await store.set(["n", "long"], { body: `before ${long} after` });
    await store.set(["n", "short"], { body: "before after" });
    assert.deepEqual((await store.search(long)).map((h) => h.key), [["n", "long"]]);
    assert.deepEqual((await store.search(`after ${long}`)).map((h) => h.key), [["n", "long"]]);
    assert.deepEqual((await store.search("after")).map((h) => h.key).sort(), [
      ["n", "long"],
      ["n", "short"],
    ]);
    // Too many words for one tsquery (PostgreSQL: "stack depth limit exceeded"), and too many
    // bytes ("value is too big in tsquery"): answered as the core's scan answers them.
    const many = Array.from({ length: 40_000 }, (_, i) => `w${i}`).join(" ");
    assert.deepEqual(await store.search(`before ${many}`), []);
    await store.set(["n", "many"], { body: many });
    assert.deepEqual((await store.search(many)).map((h) => h.key), [["n", "many"]]);
    const big = Array.from({ length: 600 }, (_, i) => `${i}${"語".repeat(599)}`).join(" ");
    assert.deepEqual(await store.search(big), []);
  },
);

Deno.test("postgres search needs normalize(): a server older than 13 gets an error that says so and what to do", () => {
  assert.equal(searchServerProblem(130000, "13.0"), undefined);
  assert.equal(searchServerProblem(150020, "15.20"), undefined);
  const problem = searchServerProblem(120022, "12.22");
  assert.match(problem!, /PostgreSQL 12\.22 has no normalize\(text, NFKC\)/);
  assert.match(
    problem!,
    /PostgreSQL 13 or newer: upgrade the server, or open the store without "search"/,
  );
  assert.match(problem!, /nothing was changed/);
});

dropTestSchema();
