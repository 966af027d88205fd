import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ConfigError, StoreClosedError, StoreCorruptError } from "../../src/errors.ts";
import { openStore } from "../../src/plugin.ts";
import { wrapDriver } from "../../src/store/store.ts";
import type { Clock, JsonValue, Key, Query, WhereClause } from "../../src/store/types.ts";
import { randomQueryWorkload, writeEntries } from "../../src/testing/conformance/_random.ts";
import { testStore } from "../../testing.ts";
import { SqliteDriver, sqliteOptions } from "./mod.ts";

// --- The conformance suite -------------------------------------------------

const conformanceDir = await Deno.makeTempDir({ prefix: "flowstate-sqlite-conformance-" });
globalThis.addEventListener("unload", () => {
  Deno.removeSync(conformanceDir, { recursive: true });
});
testStore(
  "sqlite",
  ({ id, clock }) =>
    openStore({ plugin: "sqlite", path: join(conformanceDir, `${id}.db`) }, { clock }),
);

// --- Helpers ---------------------------------------------------------------

const ROOT = new URL("../", import.meta.url).pathname;
const TESTDATA = new URL("./testdata/", import.meta.url).pathname;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-sqlite-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function manualClock(start = 1_000_000): Clock & { t: number } {
  return {
    t: start,
    now() {
      return this.t;
    },
  };
}

function rawDb(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA busy_timeout = 5000");
  return db;
}

async function lines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      onLine(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  }
}

function denoRun(script: string, args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", join(TESTDATA, script), ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
}

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
      openStore({ plugin: "sqlite", path: "x.db", durability: "fast" }, { baseDir: dir }),
      (err) => err instanceof ConfigError && /durability/.test(err.message),
    );
    await assert.rejects(
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
    db.exec("UPDATE flowstate_meta SET value = '2' WHERE key = 'schema_version'");
    db.close();
    await assert.rejects(
      openStore({ plugin: "sqlite", path }, { name: "main" }),
      (err) =>
        err instanceof StoreCorruptError && err.movedTo === null &&
        /^Cannot open store "main": .* has schema version 2, .* reads schema version 1 only; upgrade Flowstate/
          .test(err.message),
    );
    // Nothing was rewritten: the old data and the newer version number are still there.
    const check = rawDb(path);
    try {
      assert.equal(
        (check.prepare("SELECT value FROM flowstate_meta WHERE key = 'schema_version'").get())
          ?.value,
        "2",
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

// --- Reads and writes ------------------------------------------------------

Deno.test("SqliteDriver persists entries across reopen, with keys stored as ordered bytes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "state.db");
    const keys: Key[] = [["b"], ["a", "z"], ["a"], ["a", "\u0000"], ["a", ""], ["😀"], ["\uffff"]];
    const first = await openStore({ plugin: "sqlite", path });
    for (const [i, key] of keys.entries()) await first.set(key, { i });
    await first.close();
    const second = await openStore({ plugin: "sqlite", path });
    try {
      const listed = await Array.fromAsync(second.list());
      assert.deepEqual(listed.map((e) => e.key), [
        ["a"],
        ["a", ""],
        ["a", "\u0000"],
        ["a", "z"],
        ["b"],
        ["\uffff"],
        ["😀"],
      ]);
      assert.deepEqual((await second.get(["a", "\u0000"]))?.value, { i: 3 });
    } finally {
      await second.close();
    }
  });
});

Deno.test("SqliteDriver.commit() changes the stored version on an identical rewrite", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "state.db");
    const store = await openStore({ plugin: "sqlite", path });
    try {
      const a = await store.set(["k"], { same: true });
      const rowA = rawDb(path);
      const before = rowA.prepare("SELECT value, version FROM flowstate_entries").get();
      rowA.close();
      const b = await store.set(["k"], { same: true });
      assert.ok(a.ok && b.ok);
      assert.notEqual(a.version, b.version);
      const rowB = rawDb(path);
      const after = rowB.prepare("SELECT value, version FROM flowstate_entries").get();
      rowB.close();
      assert.equal(after?.value, before?.value);
      assert.equal(before?.version, a.version);
      assert.equal(after?.version, b.version);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteDriver.commit() writes nothing when a check fails", async () => {
  await withDir(async (dir) => {
    const store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") });
    try {
      const x = await store.set(["x"], 1);
      assert.ok(x.ok);
      const result = await store.atomic()
        .check(["x"], x.version)
        .check(["y"], "not-the-version")
        .set(["x"], 2)
        .set(["z"], 3)
        .commit();
      assert.deepEqual(result, { ok: false, version: null, conflicts: [["y"]] });
      assert.equal((await store.get(["x"]))?.value, 1);
      assert.equal(await store.get(["z"]), null);
      const ok = await store.atomic().check(["x"], x.version).check(["y"], null).set(["x"], 2)
        .delete(["x"]).set(["z"], 3).commit();
      assert.ok(ok.ok);
      assert.equal(await store.get(["x"]), null, "a later delete of the same key wins");
      assert.equal((await store.get(["z"]))?.version, ok.version);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteDriver filters expired entries in SQL with the injected clock", async () => {
  await withDir(async (dir) => {
    const clock = manualClock();
    const store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") }, { clock });
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
        [
          undefined,
          2,
        ],
      );
      assert.equal(await store.count(["p"]), 2);
      assert.equal(await store.count(), 2);
      assert.deepEqual((await Array.fromAsync(store.list({ prefix: ["p"] }))).map((e) => e.key), [
        ["p", "long"],
        ["p", "never"],
      ]);
      assert.deepEqual((await store.query({ prefix: ["p"] })).map((e) => e.value), [2, 3]);
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
});

Deno.test("SqliteDriver stores an expiry beyond 2^53 ms and reads it back exactly", async () => {
  await withDir(async (dir) => {
    const clock = manualClock(0);
    const store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") }, { clock });
    try {
      await store.set(["far"], 1, { expireIn: 2 ** 60 });
      await store.set(["fraction"], 2, { expireIn: 0.5 });
      assert.equal((await store.get(["far"]))?.expiresAt, 2 ** 60);
      assert.equal((await store.get(["fraction"]))?.expiresAt, 0.5);
      clock.t = 0.5;
      assert.equal(await store.get(["fraction"]), null);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteDriver.clear() and count() work on a prefix only", async () => {
  await withDir(async (dir) => {
    const store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") });
    try {
      for (const key of [["a"], ["a", "1"], ["a", "2", "x"], ["ab"], ["b"]]) {
        await store.set(key, key.join("/"));
      }
      assert.equal(await store.count(["a"]), 2);
      assert.equal(await store.clear(["a"]), 2);
      assert.deepEqual((await Array.fromAsync(store.list())).map((e) => e.key), [
        ["a"],
        ["ab"],
        ["b"],
      ]);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteDriver.purgeExpired() deletes expired rows in several batches", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    const clock = manualClock();
    const store = await openStore({ plugin: "sqlite", path }, { clock });
    try {
      const op = store.atomic();
      for (let i = 0; i < 2500; i++) op.set(["tmp", String(i)], i, { expireIn: 10 });
      for (let i = 0; i < 10; i++) op.set(["keep", String(i)], i);
      op.set(["later"], 0, { expireIn: 100 });
      assert.ok((await op.commit()).ok);
      assert.equal(await store.purgeExpired(), 0);
      clock.t += 10;
      assert.equal(await store.purgeExpired(), 2500);
      const db = rawDb(path);
      try {
        assert.equal(db.prepare("SELECT count(*) AS n FROM flowstate_entries").get()?.n, 11);
      } finally {
        db.close();
      }
    } finally {
      await store.close();
    }
  });
});

for (const autoVacuum of ["incremental", "none"] as const) {
  Deno.test(`SqliteDriver.compact() returns freed space to the file system (auto_vacuum ${autoVacuum})`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, "s.db");
      if (autoVacuum === "none") {
        // A Flowstate file made without incremental vacuum (as another tool might).
        const db = rawDb(path);
        db.exec(`
          CREATE TABLE flowstate_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
          CREATE TABLE flowstate_entries (key BLOB PRIMARY KEY NOT NULL, value TEXT NOT NULL,
            version TEXT NOT NULL, expires_at REAL);
          INSERT INTO flowstate_meta VALUES ('format', 'flowstate.sqlite'), ('schema_version', '1');
        `);
        assert.equal(db.prepare("PRAGMA auto_vacuum").get()?.auto_vacuum, 0);
        db.close();
      }
      const store = await openStore({ plugin: "sqlite", path });
      try {
        const op = store.atomic();
        for (let i = 0; i < 3000; i++) op.set(["big", String(i)], "x".repeat(1000));
        op.set(["small"], "kept");
        assert.ok((await op.commit()).ok);
        assert.equal(await store.clear(["big"]), 3000);
        let result;
        try {
          result = await store.compact();
        } catch (err) {
          // Without -A, Deno forbids the ATTACH that VACUUM needs: a clear error instead.
          assert.equal(autoVacuum, "none", String(err));
          assert.match(
            String(err),
            /does not use incremental vacuum, .* compact it once from a process run with -A/,
          );
          return;
        }
        assert.equal(result.supported, true);
        assert.ok(result.bytesBefore > 3_000_000, `before: ${result.bytesBefore}`);
        assert.ok(result.bytesAfter < 200_000, `after: ${result.bytesAfter}`);
        assert.equal((await store.get(["small"]))?.value, "kept");
      } finally {
        await store.close();
      }
    });
  });
}

Deno.test("SqliteDriver.list() does not hold a read transaction between pages", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    const store = await openStore({ plugin: "sqlite", path });
    const other = rawDb(path);
    try {
      for (let i = 0; i < 10; i++) await store.set(["k", String(i)], i);
      const it = store.list({ prefix: ["k"], batchSize: 3 });
      assert.deepEqual((await it.next()).value?.key, ["k", "0"]);
      // A full checkpoint cannot finish while any connection holds a read snapshot.
      const checkpoint = other.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get();
      assert.equal(checkpoint?.busy, 0);
      // Later pages see writes made after the listing started.
      await store.set(["k", "8a"], "new");
      const rest = [];
      for await (const e of { [Symbol.asyncIterator]: () => it }) rest.push(e.key[1]);
      assert.deepEqual(rest, ["1", "2", "3", "4", "5", "6", "7", "8", "8a", "9"]);
    } finally {
      other.close();
      await store.close();
    }
  });
});

Deno.test("SqliteDriver.list() stops with StoreClosedError when the store closes mid-listing", async () => {
  await withDir(async (dir) => {
    const store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") });
    for (let i = 0; i < 5; i++) await store.set(["k", String(i)], i);
    const it = store.list({ batchSize: 2 });
    await it.next();
    await store.close();
    await assert.rejects(async () => {
      for await (const _ of { [Symbol.asyncIterator]: () => it }) { /* drain */ }
    }, StoreClosedError);
  });
});

Deno.test("SqliteDriver.getMany() reads entries in the order asked", async () => {
  await withDir(async (dir) => {
    const store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") });
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
});

Deno.test("SqliteDriver reports a lock held longer than busyTimeout as a clear error", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    const store = await openStore({ plugin: "sqlite", path, busyTimeout: 50 }, { name: "main" });
    const blocker = rawDb(path);
    try {
      await store.set(["a"], 1);
      blocker.exec("BEGIN IMMEDIATE");
      const locked = (err: unknown) =>
        err instanceof Error && /^Cannot commit: .*s\.db stayed locked/.test(err.message) &&
        /50 ms \(busyTimeout\)/.test(err.message);
      await assert.rejects(store.set(["a"], 2), locked);
      await assert.rejects(store.atomic().check(["a"], null).set(["b"], 1).commit(), locked);
      // Reads are not blocked by a writer under WAL.
      assert.equal((await store.get(["a"]))?.value, 1);
      blocker.exec("ROLLBACK");
      assert.ok((await store.set(["a"], 3)).ok);
      assert.equal((await store.get(["a"]))?.value, 3);
    } finally {
      blocker.close();
      await store.close();
    }
  });
});

Deno.test("two stores on one file in one process see each other's writes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "s.db");
    const a = await openStore({ plugin: "sqlite", path });
    const b = await openStore({ plugin: "sqlite", path });
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
});

// --- Several OS processes ----------------------------------------------------

Deno.test("SqliteDriver.commit() loses no compare-and-set increment across two processes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "counter.db");
    // Create the file first so both processes race on writes, not on setup.
    (await SqliteDriver.open(path)).close();
    const children = [0, 1].map(() => denoRun("sqlite_counter.ts", [path, "500"]).spawn());
    const outputs = children.map((child) => {
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => ready = resolve);
      const out: string[] = [];
      const done = lines(child.stdout, (line) => {
        if (line === "ready") ready();
        else out.push(line);
      });
      const stderr = new Response(child.stderr).text();
      return { isReady, out, done, stderr };
    });
    await Promise.all(outputs.map((o) => o.isReady));
    for (const child of children) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("go\n"));
      await writer.close();
    }
    const statuses = await Promise.all(children.map((c) => c.status));
    for (const [i, status] of statuses.entries()) {
      await outputs[i].done;
      assert.ok(status.success, `child ${i} failed: ${await outputs[i].stderr}`);
    }
    const store = await openStore({ plugin: "sqlite", path });
    try {
      assert.equal((await store.get(["counter"]))?.value, 1000);
    } finally {
      await store.close();
    }
    // The processes really raced: some of their compare-and-sets lost and were retried.
    const conflicts = outputs.map((o) => JSON.parse(o.out[0]).conflicts as number);
    assert.ok(
      conflicts[0] + conflicts[1] > 0,
      `no conflicts (${conflicts}): the processes did not race`,
    );
  });
});

for (const durability of ["full", "relaxed"] as const) {
  Deno.test(`SqliteDriver keeps every acknowledged write after kill -9 (durability ${durability})`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, "killed.db");
      const child = denoRun("sqlite_writer.ts", [path, durability]).spawn();
      await child.stdin.close();
      const stderr = new Response(child.stderr).text();
      const acknowledged: string[] = [];
      const target = 300 + Math.floor(Math.random() * 400);
      let killed = false;
      await lines(child.stdout, (line) => {
        acknowledged.push(line);
        if (!killed && acknowledged.length >= target) {
          killed = true;
          child.kill("SIGKILL");
        }
      });
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL", `writer ended on its own: ${await stderr}`);
      assert.ok(acknowledged.length >= target);

      const db = rawDb(path);
      try {
        const check = db.prepare("PRAGMA integrity_check").all();
        assert.deepEqual(check.map((r) => r.integrity_check), ["ok"]);
      } finally {
        db.close();
      }
      const store = await openStore({ plugin: "sqlite", path });
      try {
        const expected: Key[] = [];
        for (const key of acknowledged) {
          expected.push(["w", key]);
          if (Number(key) % 10 === 9) expected.push(["w", `${key}-a`], ["w", `${key}-b`]);
        }
        const found = await store.getMany(expected);
        const missing = expected.filter((_, i) => found[i] === null);
        assert.deepEqual(missing, [], `${missing.length} acknowledged writes were lost`);
        // Atomic batches are all-or-nothing even when the kill lands inside one.
        for await (const e of store.list({ prefix: ["w"] })) {
          const base = e.key[1].slice(0, 7);
          if (Number(base) % 10 === 9) {
            const batch = await store.getMany([["w", base], ["w", `${base}-a`], [
              "w",
              `${base}-b`,
            ]]);
            assert.ok(batch.every((x) => x !== null), `batch ${base} is partial`);
          }
        }
      } finally {
        await store.close();
      }
    });
  });
}

// --- Query pushdown ----------------------------------------------------------

Deno.test("SqliteDriver.query() leaves clauses it cannot express exactly to the core", async () => {
  await withDir(async (dir) => {
    const driver = await SqliteDriver.open(join(dir, "s.db"));
    try {
      const base = { prefix: [], orderBy: [], limit: Infinity, offset: 0 };
      const q = (where: WhereClause[]) =>
        driver.query({
          ...base,
          where: where.map((w) => ({
            path: typeof w.path === "string" ? w.path.split(".") : [...w.path],
            op: w.op,
            value: w.value,
          })),
        }, 0);
      assert.equal(await q([{ path: "a", op: "eq", value: { b: 1 } }]), undefined);
      assert.equal(await q([{ path: "a", op: "ne", value: [1] }]), undefined);
      assert.equal(await q([{ path: "a", op: "in", value: [1, [2]] }]), undefined);
      assert.equal(await q([{ path: "a", op: "contains", value: { b: 1 } }]), undefined);
      assert.equal(await q([{ path: ['we"ird'], op: "exists" }]), undefined);
      assert.equal(await q([{ path: ["back\\slash"], op: "exists" }]), undefined);
      assert.equal(await q([{ path: "a.0.1.2", op: "exists" }]), undefined);
      assert.equal(await q([{ path: "a", op: "eq", value: "\ud800" }]), undefined);
      assert.deepEqual(await q([{ path: "a.0.1", op: "eq", value: "x" }]), []);
      assert.deepEqual(await q([{ path: "a", op: "lt", value: { b: 1 } }]), []);

      // Values with a lone surrogate make string ordering fall back, under their prefix only.
      driver.commit({
        checks: [],
        mutations: [
          { type: "set", key: ["s", "1"], value: JSON.stringify({ a: "\ud800" }), expiresAt: null },
          { type: "set", key: ["t", "1"], value: JSON.stringify({ a: "😀" }), expiresAt: null },
        ],
        version: "v1",
        now: 0,
      });
      const ordered = (prefix: Key) =>
        driver.query(
          { ...base, prefix, where: [], orderBy: [{ path: ["a"], direction: "asc" }] },
          0,
        );
      assert.equal(await ordered(["s"]), undefined);
      assert.equal(await ordered([]), undefined);
      assert.equal((await ordered(["t"]))?.length, 1);
      assert.equal(await q([{ path: "a", op: "gt", value: "a" }]), undefined);
      assert.equal((await q([{ path: "a", op: "eq", value: "😀" }]))?.length, 1);
      assert.equal((await q([{ path: "a", op: "gt", value: 1 }]))?.length, 0);
    } finally {
      driver.close();
    }
  });
});

const STRINGS = [
  "",
  " ",
  "a",
  "ab",
  "abc",
  "b",
  "B",
  "é",
  "été",
  "\ue000",
  "\uffff",
  "😀",
  "😀x",
  "a\u0000b",
  "a\u0000",
  "x.y",
  'quote"d',
  "back\\slash",
  "10",
  "2",
  "null",
  "true",
  "\u0001ctl",
];
/** Strings with lone surrogates: stored only under ["z"] so other prefixes still push down. */
const LONE_SURROGATES = ["\ud800", "a\udc00b", "\udfff", "\ud83d"];
const NUMBERS = [
  0,
  1,
  -1,
  2,
  10,
  1.5,
  -2.5,
  0.1 + 0.2,
  0.3,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 60,
  -(2 ** 63),
  1e19,
  1e20,
  1e21,
  -1e21,
  1.5e-7,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  123456789.125,
];
Deno.test("SqliteDriver.query() runs most of 2,000 random queries in SQL, with the memory plugin's results (differential)", async () => {
  // The conformance suite compares a smaller workload on every store; this one
  // is the full size, and counts what the driver itself answers.
  await withDir(async (dir) => {
    const { seed, entries, elapse, operations } = randomQueryWorkload();
    const clock = manualClock();
    const driver = await SqliteDriver.open(join(dir, "q.db"));
    let pushed = 0;
    let fellBack = 0;
    const native = driver.query.bind(driver);
    driver.query = async (q, now) => {
      const result = await native(q, now);
      if (result === undefined) fellBack++;
      else pushed++;
      return result;
    };
    const sq = wrapDriver(driver, { name: "sqlite", plugin: "sqlite", clock });
    const mem = await openStore({ plugin: "memory" }, { clock });
    try {
      await writeEntries(sq, entries);
      await writeEntries(mem, entries);
      clock.t += elapse;
      for (const [n, query] of operations.entries()) {
        const expected = (await mem.query(query)).map((e) => [e.key, e.value]);
        const actual = (await sq.query(query)).map((e) => [e.key, e.value]);
        assert.deepEqual(actual, expected, `seed ${seed}, query ${n}: ${JSON.stringify(query)}`);
      }
      // The comparison means something only if most queries really ran in SQL.
      const total = operations.length;
      assert.ok(pushed >= total / 2, `only ${pushed} of ${total} queries were pushed down`);
      assert.ok(fellBack > 0, "no query exercised the fallback");
    } finally {
      await sq.close();
      await mem.close();
    }
  });
});

Deno.test("SqliteDriver.query() orders across types and breaks ties by key", async () => {
  await withDir(async (dir) => {
    const store = await openStore({ plugin: "sqlite", path: join(dir, "s.db") });
    try {
      const values: [string, JsonValue][] = [
        ["obj", { v: { x: 1 } }],
        ["arr", { v: [1] }],
        ["str", { v: "a" }],
        ["num", { v: 2 ** 60 }],
        ["num2", { v: -1 }],
        ["true", { v: true }],
        ["false", { v: false }],
        ["null", { v: null }],
        ["missing", {}],
        ["arr2", { v: [0] }],
      ];
      for (const [k, v] of values) await store.set([k], v);
      const asc = await store.query({ orderBy: { path: "v" } });
      assert.deepEqual(asc.map((e) => e.key[0]), [
        "missing",
        "null",
        "false",
        "true",
        "num2",
        "num",
        "str",
        "arr",
        "arr2",
        "obj",
      ]);
      const desc = await store.query({ orderBy: { path: "v", direction: "desc" }, limit: 4 });
      assert.deepEqual(desc.map((e) => e.key[0]), ["obj", "arr", "arr2", "str"]);
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteDriver.query() compares every sample number and string exactly as the core does", async () => {
  await withDir(async (dir) => {
    const sq = await openStore({ plugin: "sqlite", path: join(dir, "s.db") });
    const mem = await openStore({ plugin: "memory" });
    try {
      const scalars: JsonValue[] = [...NUMBERS, ...STRINGS, ...LONE_SURROGATES, null, true, false];
      for (const [i, v] of scalars.entries()) {
        const key = [String(i).padStart(3, "0")];
        for (const s of [sq, mem]) {
          await s.set([...key, "plain"], { v });
          await s.set([...key, "list"], { v: [v, "other"] });
        }
      }
      const queries: Query[] = [
        { orderBy: { path: "v" } },
        { orderBy: { path: "v", direction: "desc" } },
      ];
      for (const operand of scalars) {
        for (const op of ["eq", "ne", "lt", "lte", "gt", "gte", "contains"] as const) {
          queries.push({ where: [{ path: "v", op, value: operand }] });
        }
        queries.push({ where: [{ path: "v", op: "in", value: [operand, "x"] }] });
      }
      for (const query of queries) {
        const expected = (await mem.query(query)).map((e) => e.key);
        const actual = (await sq.query(query)).map((e) => e.key);
        assert.deepEqual(actual, expected, JSON.stringify(query));
      }
    } finally {
      await sq.close();
      await mem.close();
    }
  });
});
