import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, StoreCorruptError } from "../../src/errors.ts";
import { openStore } from "../../src/plugin.ts";
import { testStore } from "../../testing.ts";
import { SqliteDriver, sqliteOptions } from "./mod.ts";
import { rawDb, withDir } from "./_test_utils.ts";

// The sqlite plugin: the conformance suite, options and the file format.
// Reads and writes are in driver_test.ts, several OS processes in
// processes_test.ts, query pushdown in query_test.ts.

// --- The conformance suite -------------------------------------------------

const conformanceDir = await Deno.makeTempDir({ prefix: "flowstate-sqlite-conformance-" });
globalThis.addEventListener("unload", () => {
  Deno.removeSync(conformanceDir, { recursive: true });
});
testStore(
  "sqlite",
  ({ id, clock, indexes, search, changes }) =>
    openStore({
      plugin: "sqlite",
      path: join(conformanceDir, `${id}.db`),
      indexes,
      search,
      changes,
    }, {
      clock,
    }),
  // A second process opens the same file to check the multiProcess claim.
  {
    multiProcess: {
      spec: ({ id }) => ({ plugin: "sqlite", path: join(conformanceDir, `${id}.db`) }),
    },
  },
);

// --- Opening, options, file format -----------------------------------------

Deno.test("sqlite plugin defaults to <home>/<store name>.db and creates parent directories", async () => {
  await withDir(async (dir) => {
    const home = join(dir, "nested", "home");
    const store = await openStore({ plugin: "sqlite" }, { home, name: "main" });
    try {
      assert.equal(store.location, join(home, "main.db"));
      assert.equal(store.plugin, "sqlite");
      await store.set(["a"], 1);
      assert.ok((await Deno.stat(join(home, "main.db"))).isFile);
    } finally {
      await store.close();
    }
  });
});

Deno.test("sqlite plugin resolves a relative path against baseDir", async () => {
  await withDir(async (dir) => {
    const store = await openStore({ plugin: "sqlite", path: "sub/state.db" }, { baseDir: dir });
    try {
      assert.equal(store.location, join(dir, "sub", "state.db"));
    } finally {
      await store.close();
    }
  });
});

Deno.test("sqliteOptions fills in defaults and rejects unknown or bad options", async () => {
  assert.deepEqual(sqliteOptions.parse({}), { durability: "full", busyTimeout: 5000 });
  assert.deepEqual(sqliteOptions.parse({ durability: "relaxed", cacheSize: 4096 }), {
    durability: "relaxed",
    busyTimeout: 5000,
    cacheSize: 4096,
  });
  await withDir(async (dir) => {
    await assert.rejects(
      // @ts-expect-error: a bad value of a built-in plugin's option does not compile either
      openStore({ plugin: "sqlite", path: "x.db", durability: "fast" }, { baseDir: dir }),
      (err) => err instanceof ConfigError && /durability/.test(err.message),
    );
    await assert.rejects(
      // @ts-expect-error: a misspelt option of a built-in plugin does not compile either
      openStore({ plugin: "sqlite", path: "x.db", busyTimeot: 10 }, { baseDir: dir }),
      (err) => err instanceof ConfigError && /unknown option "busyTimeot"/.test(err.message),
    );
  });
});

Deno.test("SqliteDriver.open() creates a WAL database with schema version 1", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "state.db");
    (await SqliteDriver.open(path)).close();
    const db = rawDb(path);
    try {
      assert.equal(
        (db.prepare("PRAGMA journal_mode").get() as { journal_mode: string })
          .journal_mode,
        "wal",
      );
      const meta = db.prepare("SELECT key, value FROM flowstate_meta ORDER BY key").all();
      assert.deepEqual(meta.map((r) => [r.key, r.value]), [
        ["format", "flowstate.sqlite"],
        ["schema_version", "1"],
        // Checked for lone surrogates (none): queries trust the flag from now on.
        ["surrogates_flagged", "1"],
      ]);
      const columns = db.prepare("PRAGMA table_info(flowstate_entries)").all();
      assert.deepEqual(columns.map((c) => [c.name, c.type, c.pk]), [
        ["key", "BLOB", 1],
        ["value", "TEXT", 0],
        ["version", "TEXT", 0],
        ["expires_at", "REAL", 0],
      ]);
      const indexes = db.prepare("PRAGMA index_list(flowstate_entries)").all();
      assert.ok(indexes.some((i) => i.name === "flowstate_entries_expires_at"));
    } finally {
      db.close();
    }
  });
});

Deno.test("SqliteDriver.open() throws StoreCorruptError for a file that is not SQLite and leaves it untouched", async () => {
  await withDir(async (dir) => {
    const cases: [string, Uint8Array][] = [
      ["text.db", new TextEncoder().encode("this is not a database\n".repeat(40))],
      ["short.db", new TextEncoder().encode("abc")],
      [
        "bad-header.db",
        Uint8Array.from([
          ...new TextEncoder().encode("SQLite format 3\0"),
          ...new Array(4080).fill(7),
        ]),
      ],
    ];
    for (const [name, bytes] of cases) {
      const path = join(dir, name);
      await Deno.writeFile(path, bytes);
      await assert.rejects(
        openStore({ plugin: "sqlite", path }, { name: "main" }),
        (err) => {
          assert.ok(err instanceof StoreCorruptError, `${name}: ${err}`);
          assert.match(err.message, /^Cannot open store "main": /);
          assert.match(err.message, /not a (readable )?SQLite database/);
          assert.match(err.message, /left untouched/);
          assert.equal(err.path, path);
          assert.equal(err.movedTo, null);
          return true;
        },
      );
      assert.deepEqual(await Deno.readFile(path), bytes, `${name} was modified`);
    }
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), cases.map(([n]) => n).sort(), "no -wal/-shm files were left");
  });
});

Deno.test("SqliteDriver.open() refuses a SQLite database that is not a Flowstate store", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "app.db");
    const db = rawDb(path);
    db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)");
    db.close();
    const before = await Deno.readFile(path);
    await assert.rejects(
      SqliteDriver.open(path, { storeName: "main" }),
      (err) =>
        err instanceof StoreCorruptError && /not a Flowstate store/.test(err.message) &&
        /users/.test(err.message),
    );
    assert.deepEqual(await Deno.readFile(path), before);
  });
});

Deno.test("SqliteDriver.open() refuses a newer schema version", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "state.db");
    const store = await openStore({ plugin: "sqlite", path });
    await store.set(["kept"], "yes");
    await store.close();
    const db = rawDb(path);
    db.exec("UPDATE flowstate_meta SET value = '3' WHERE key = 'schema_version'");
    db.close();
    await assert.rejects(
      openStore({ plugin: "sqlite", path }, { name: "main" }),
      (err) =>
        err instanceof StoreCorruptError && err.movedTo === null &&
        /^Cannot open store "main": .* has schema version 3, .* reads schema versions up to 2 only; upgrade Flowstate/
          .test(err.message),
    );
    // Nothing was rewritten: the old data and the newer version number are still there.
    const check = rawDb(path);
    try {
      assert.equal(
        (check.prepare("SELECT value FROM flowstate_meta WHERE key = 'schema_version'").get())
          ?.value,
        "3",
      );
      assert.equal(
        (check.prepare("SELECT count(*) AS n FROM flowstate_entries").get())?.n,
        1,
      );
    } finally {
      check.close();
    }
  });
});
