import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { ConfigError, StoreClosedError, StoreCorruptError } from "../../src/errors.ts";
import { openStore } from "../../src/plugin.ts";
import { wrapDriver } from "../../src/store/store.ts";
import type { Clock, JsonValue, Key, Query, Store, WhereClause } from "../../src/store/types.ts";
import { randomQueryWorkload, writeEntries } from "../../src/testing/conformance/_random.ts";
import { testStore } from "../../testing.ts";
import { PostgresDriver, postgresOptions } from "./mod.ts";

// Tests that need a server read its URL from FLOWSTATE_TEST_POSTGRES_URL (CI:
// postgres://postgres@127.0.0.1:5432/test). Without it they are registered as
// ignored, with the reason in their name. Every table lives in a schema of
// this run's own, dropped by the last test.

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL") || undefined;
const NEEDS_SERVER = "set FLOWSTATE_TEST_POSTGRES_URL to run";
const SCHEMA = `flowstate_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
/** The advisory lock class every Flowstate table lock uses (see plugins/postgres.ts). */
const LOCK_CLASS = 0x464c5354;

function pgTest(name: string, fn: (url: string) => Promise<void>): void {
  if (PG_URL === undefined) {
    Deno.test({ name: `${name} (ignored: ${NEEDS_SERVER})`, ignore: true, fn: () => {} });
  } else {
    Deno.test(name, () => fn(PG_URL));
  }
}

let tableCount = 0;
/** A new table name for one test. */
function newTable(label: string): string {
  return `t${++tableCount}_${label}`;
}

function openPg(
  url: string,
  table: string,
  options: { clock?: Clock; name?: string; max?: number } = {},
): Promise<Store> {
  const spec: Record<string, unknown> = { plugin: "postgres", url, schema: SCHEMA, table };
  if (options.max !== undefined) spec.max = options.max;
  return openStore(spec as { plugin: string }, { clock: options.clock, name: options.name });
}

/** A direct connection for inspecting and tampering with tables. */
async function withAdmin(url: string, fn: (sql: postgres.Sql) => Promise<void>): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
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

/** Poll `condition` every 10 ms until it holds (at most `ms`); no fixed sleeps. */
async function waitFor(what: string, condition: () => Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const ROOT = new URL("../../", import.meta.url).pathname;
const TESTDATA = new URL("./testdata/", import.meta.url).pathname;

// --- The conformance suite -------------------------------------------------

if (PG_URL === undefined) {
  Deno.test({
    name: `postgres: Store conformance (ignored: ${NEEDS_SERVER})`,
    ignore: true,
    fn: () => {},
  });
} else {
  const url = PG_URL;
  // Each case id gets its own table; the same id reopens the same table.
  testStore("postgres", ({ id, clock }) =>
    openStore({
      plugin: "postgres",
      url,
      schema: SCHEMA,
      table: `t_${id.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`,
    }, { clock }));
}

// --- Options, connection, lazy loading (no server needed) --------------------

Deno.test("postgresOptions fills in defaults and rejects unknown or bad options", async () => {
  assert.deepEqual(postgresOptions.parse({ url: "postgres://u@h/db" }), {
    url: "postgres://u@h/db",
    table: "flowstate_entries",
    schema: "public",
    max: 4,
    connectTimeout: 10,
  });
  const bad: [Record<string, unknown>, RegExp][] = [
    [{}, /url/],
    [{ url: "mysql://u@h/db" }, /option "url": must be a postgres:\/\/ URL/],
    [{ url: "not a url" }, /option "url"/],
    [{ url: "postgres://u@h/db", table: "Entries" }, /option "table": must be lowercase/],
    [{ url: "postgres://u@h/db", table: "x; DROP TABLE y" }, /option "table"/],
    [{ url: "postgres://u@h/db", table: "state_meta" }, /not ending in _meta/],
    [{ url: "postgres://u@h/db", table: "a".repeat(49) }, /at most 48/],
    [{ url: "postgres://u@h/db", schema: "my-schema" }, /option "schema"/],
    [{ url: "postgres://u@h/db", max: 0 }, /option "max"/],
    [{ url: "postgres://u@h/db", connectTimeout: -1 }, /option "connectTimeout"/],
    [{ url: "postgres://u@h/db", tabel: "x" }, /unknown option "tabel" \(did you mean "table"\?\)/],
  ];
  for (const [options, pattern] of bad) {
    await assert.rejects(
      openStore({ plugin: "postgres", ...options }, { name: "main" }),
      (err) => {
        assert.ok(err instanceof ConfigError, `${JSON.stringify(options)}: ${err}`);
        assert.match(err.message, /^Cannot open store "main" \(plugin "postgres"\)/);
        assert.match(err.message, pattern);
        return true;
      },
    );
  }
});

Deno.test("PostgresDriver.open() validates its arguments before connecting", async () => {
  await assert.rejects(PostgresDriver.open("http://h/db"), TypeError);
  await assert.rejects(
    PostgresDriver.open("postgres://u@h/db", { table: "Bad" }),
    (err) => err instanceof RangeError && /table "Bad" must be lowercase/.test(err.message),
  );
  await assert.rejects(PostgresDriver.open("postgres://u@h/db", { max: 0 }), RangeError);
});

Deno.test("postgres plugin reports an unreachable server with the store, host:port and cause, never the password", async () => {
  // Nothing listens on port 1: the connection is refused at once.
  const url = "postgres://flow:s3cret-pw@127.0.0.1:1/test";
  await assert.rejects(
    openStore({ plugin: "postgres", url }, { name: "main" }),
    (err) => {
      assert.ok(err instanceof Error);
      assert.match(
        err.message,
        /^Cannot open store "main": cannot reach PostgreSQL at 127\.0\.0\.1:1 \(database "test"\): .*ECONNREFUSED/,
      );
      assert.ok(!err.message.includes("s3cret"), err.message);
      assert.ok(!String(err.stack).includes("s3cret"), "the stack holds the password");
      return true;
    },
  );
});

Deno.test("postgres plugin gives up after connectTimeout on a server that never answers", async () => {
  // Accepts TCP connections and never says a word.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  const { port } = listener.addr as Deno.NetAddr;
  try {
    const started = performance.now();
    await assert.rejects(
      openStore(
        { plugin: "postgres", url: `postgres://u:pw@127.0.0.1:${port}/db`, connectTimeout: 0.3 },
        { name: "slow" },
      ),
      (err) => {
        assert.ok(err instanceof Error);
        assert.equal(
          err.message,
          `Cannot open store "slow": cannot reach PostgreSQL at 127.0.0.1:${port} ` +
            `(database "db"): no connection within connectTimeout (0.3 s)`,
        );
        return true;
      },
    );
    assert.ok(performance.now() - started < 5000, "connectTimeout was not applied");
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of accepted) {
      try {
        conn.close();
      } catch {
        // Already closed by the driver.
      }
    }
  }
});

Deno.test("postgres plugin says which Deno permission the client lacks", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-net=127.0.0.1",
      join(TESTDATA, "postgres_open.ts"),
      "postgres://flow:s3cret-pw@127.0.0.1:1/test",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const message = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.match(
    message,
    /^Cannot open store "main": the PostgreSQL client cannot start: .*--allow-env/,
  );
  assert.ok(!message.includes("s3cret"), message);
});

Deno.test("postgres plugin imports the postgres package only when a store opens", async () => {
  // Map "postgres" to a stub that flags its own evaluation, then import the
  // plugin in a fresh process: the flag must stay down until open().
  const dir = await Deno.makeTempDir({ prefix: "flowstate-pg-lazy-" });
  try {
    const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
    const imports = {
      ...config.imports,
      postgres: new URL("./testdata/postgres_stub.ts", import.meta.url).href,
    };
    const mapPath = join(dir, "import_map.json");
    await Deno.writeTextFile(mapPath, JSON.stringify({ imports }));
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        `--import-map=${mapPath}`,
        "--allow-read",
        "--allow-env",
        join(TESTDATA, "postgres_lazy.ts"),
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.ok(output.success, stderr);
    const result = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.equal(result.afterImport, false, "importing the plugin loaded the driver package");
    assert.equal(result.afterOpen, true, "open() did not load the driver package");
    assert.match(result.error, /^Error: Cannot open store "lazy": .*stub driver/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- Opening and the table format ----------------------------------------------

pgTest("postgres plugin's location shows the URL without the password", async (url) => {
  const parsed = new URL(url);
  parsed.password = "pa55word";
  parsed.searchParams.set("application_name", "flowtest");
  const table = newTable("location");
  // Trust authentication (CI) ignores the password; a real one checks it.
  const store = await openStore(
    { plugin: "postgres", url: parsed.href, schema: SCHEMA, table },
    { name: "main" },
  );
  try {
    assert.equal(store.plugin, "postgres");
    assert.ok(!store.location.includes("pa55word"), store.location);
    assert.ok(!store.location.includes(":pa55"), store.location);
    const port = parsed.port || "5432";
    assert.equal(
      store.location,
      `postgres://${parsed.username ? `${parsed.username}@` : ""}${parsed.hostname}:${port}` +
        `${parsed.pathname}?application_name=flowtest (table ${SCHEMA}.${table})`,
    );
  } finally {
    await store.close();
  }
});

pgTest("postgres plugin reports a missing database clearly, without the password", async (url) => {
  const parsed = new URL(url);
  parsed.password = "s3cret-pw";
  parsed.pathname = "/flowstate_no_such_database";
  await assert.rejects(
    openStore({ plugin: "postgres", url: parsed.href }, { name: "main" }),
    (err) => {
      assert.ok(err instanceof Error);
      assert.match(
        err.message,
        /^Cannot open store "main": PostgreSQL at .* \(database "flowstate_no_such_database"\) refused: .*does not exist/,
      );
      assert.ok(!err.message.includes("s3cret"), err.message);
      return true;
    },
  );
});

pgTest(
  "PostgresDriver.open() creates the schema, table, index and schema version 1",
  async (url) => {
    const table = newTable("format");
    await (await PostgresDriver.open(url, { schema: SCHEMA, table })).close();
    await withAdmin(url, async (sql) => {
      const meta = await sql.unsafe(
        `SELECT key, value FROM "${SCHEMA}"."${table}_meta" ORDER BY key`,
      );
      assert.deepEqual(meta.map((r) => [r.key, r.value]), [
        ["format", "flowstate.postgres"],
        ["schema_version", "1"],
      ]);
      const columns = await sql`
      SELECT column_name, data_type, is_nullable FROM information_schema.columns
      WHERE table_schema = ${SCHEMA} AND table_name = ${table} ORDER BY ordinal_position`;
      assert.deepEqual(columns.map((c) => [c.column_name, c.data_type, c.is_nullable]), [
        ["key", "bytea", "NO"],
        ["value", "text", "NO"],
        ["version", "text", "NO"],
        ["expires_at", "double precision", "YES"],
      ]);
      const indexes = await sql`
      SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = ${SCHEMA} AND tablename = ${table}
      ORDER BY indexname`;
      assert.deepEqual(indexes.map((i) => i.indexname), [`${table}_expires_at`, `${table}_pkey`]);
      assert.match(indexes[0].indexdef, /WHERE \(expires_at IS NOT NULL\)/);
    });
  },
);

pgTest("PostgresDriver.open() refuses a newer schema version and changes nothing", async (url) => {
  const table = newTable("newer");
  const store = await openPg(url, table);
  await store.set(["kept"], "yes");
  await store.close();
  await withAdmin(url, async (sql) => {
    await sql.unsafe(
      `UPDATE "${SCHEMA}"."${table}_meta" SET value = '2' WHERE key = 'schema_version'`,
    );
  });
  await assert.rejects(
    openPg(url, table, { name: "main" }),
    (err) =>
      err instanceof StoreCorruptError && err.movedTo === null &&
      /^Cannot open store "main": postgres:\/\/.* has schema version 2, .* reads schema version 1 only; upgrade Flowstate/
        .test(err.message),
  );
  await withAdmin(url, async (sql) => {
    const [meta] = await sql.unsafe(
      `SELECT value FROM "${SCHEMA}"."${table}_meta" WHERE key = 'schema_version'`,
    );
    assert.equal(meta.value, "2");
    const [rows] = await sql.unsafe(`SELECT count(*)::int AS n FROM "${SCHEMA}"."${table}"`);
    assert.equal(rows.n, 1);
  });
});

pgTest("PostgresDriver.open() refuses a table that is not a Flowstate table", async (url) => {
  const table = newTable("foreign");
  await withAdmin(url, async (sql) => {
    await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${SCHEMA}"`);
    await sql.unsafe(`CREATE TABLE "${SCHEMA}"."${table}" (id int PRIMARY KEY, name text)`);
  });
  await assert.rejects(
    openPg(url, table, { name: "main" }),
    (err) =>
      err instanceof StoreCorruptError &&
      new RegExp(`table ${SCHEMA}\\.${table} exists but is not a Flowstate table`).test(
        err.message,
      ),
  );
  await withAdmin(url, async (sql) => {
    const [meta] = await sql`SELECT to_regclass(${`${SCHEMA}.${table}_meta`}) AS t`;
    assert.equal(meta.t, null, "a meta table was created");
  });
});

pgTest("PostgresDriver.open() lets several stores create one table at once", async (url) => {
  const table = newTable("race");
  const stores = await Promise.all(
    Array.from({ length: 6 }, () => openPg(url, table, { max: 1 })),
  );
  try {
    await Promise.all(stores.map((s, i) => s.set(["k", String(i)], i)));
    assert.equal(await stores[0].count(["k"]), 6);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
  await withAdmin(url, async (sql) => {
    const [row] = await sql.unsafe(
      `SELECT count(*)::int AS n FROM "${SCHEMA}"."${table}_meta"`,
    );
    assert.equal(row.n, 2);
  });
});

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

pgTest("PostgresDriver.compact() vacuums the table and reports its size", async (url) => {
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
});

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
    const store = await openPg(url, newTable("pages"));
    try {
      for (let i = 0; i < 10; i++) await store.set(["k", String(i)], i);
      const it = store.list({ prefix: ["k"], batchSize: 3 });
      assert.deepEqual((await it.next()).value?.key, ["k", "0"]);
      await withAdmin(url, async (sql) => {
        const open = await sql`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = 'flowstate' AND xact_start IS NOT NULL AND pid <> pg_backend_pid()`;
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

// --- Concurrency -----------------------------------------------------------------

/**
 * Counts the statements a client sends to the server: Execute ("E", the
 * extended protocol) and Query ("Q", the simple protocol) messages.
 */
async function withCountingProxy(
  url: string,
  fn: (proxyUrl: string, statements: () => number) => Promise<void>,
): Promise<void> {
  const target = new URL(url);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let executes = 0;
  const pipes: Promise<unknown>[] = [];
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({
        hostname: target.hostname,
        port: Number(target.port || 5432),
      });
      conns.push(client, server);
      pipes.push(server.readable.pipeTo(client.writable).catch(() => {}));
      let buffer = new Uint8Array(0);
      let started = false;
      const counter = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          const joined = new Uint8Array(buffer.length + chunk.length);
          joined.set(buffer);
          joined.set(chunk, buffer.length);
          let at = 0;
          for (;;) {
            const header = started ? 5 : 4;
            if (joined.length - at < header) break;
            const view = new DataView(joined.buffer, joined.byteOffset + at);
            const length = started ? view.getInt32(1) + 1 : view.getInt32(0);
            if (joined.length - at < length) break;
            if (started && (joined[at] === 0x45 || joined[at] === 0x51)) executes++;
            started = true;
            at += length;
          }
          buffer = joined.slice(at);
          controller.enqueue(chunk);
        },
      });
      pipes.push(
        client.readable.pipeThrough(counter).pipeTo(server.writable).catch(() => {}),
      );
    }
  })();
  const proxied = new URL(url);
  proxied.hostname = "127.0.0.1";
  proxied.port = String((listener.addr as Deno.NetAddr).port);
  try {
    await fn(proxied.href, () => executes);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // The pipe closed it already.
      }
    }
    await Promise.all(pipes);
  }
}

pgTest(
  "PostgresDriver.commit() writes a 10 000-entry atomic operation with one statement",
  async (url) => {
    await withCountingProxy(url, async (proxyUrl, statements) => {
      const store = await openStore({
        plugin: "postgres",
        url: proxyUrl,
        schema: SCHEMA,
        table: newTable("batch"),
        max: 1,
      });
      try {
        await store.set(["warm"], 0);
        let before = statements();
        await store.set(["one"], 1);
        assert.equal(statements() - before, 1, "a plain set is one statement");

        const op = store.atomic();
        for (let i = 0; i < 10_000; i++) op.set(["big", String(i).padStart(5, "0")], { i });
        op.delete(["warm"]);
        before = statements();
        assert.ok((await op.commit()).ok);
        assert.equal(statements() - before, 1, "an unchecked batch is one statement");
        assert.equal(await store.count(["big"]), 10_000);
        assert.equal(await store.get(["warm"]), null);

        const checked = store.atomic().check(["one"], (await store.get(["one"]))!.version);
        for (let i = 0; i < 10_000; i++) {
          checked.set(["big", String(i).padStart(5, "0")], { i: -i });
        }
        before = statements();
        assert.ok((await checked.commit()).ok);
        assert.equal(
          statements() - before,
          4,
          "a checked batch is BEGIN, lock, one statement, COMMIT",
        );
        assert.deepEqual((await store.get(["big", "09999"]))?.value, { i: -9999 });
      } finally {
        await store.close();
      }
    });
  },
);

pgTest(
  "PostgresDriver writes without checks wait while a checked commit holds the table lock",
  async (url) => {
    const table = newTable("lock");
    const store = await openPg(url, table);
    try {
      await store.set(["k"], 0);
      // Two connections: one holds the lock, the other watches pg_locks.
      const sql = postgres(url, { max: 2, onnotice: () => {} });
      try {
        const holder = await sql.reserve();
        await holder.unsafe("BEGIN");
        // What a checked commit takes before reading its checks.
        await holder.unsafe(
          `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext($1))`,
          [`${SCHEMA}.${table}`],
        );
        let settled = false;
        const write = store.set(["k"], 1).finally(() => settled = true);
        const cleared = store.clear(["nothing"]);
        await waitFor("the writes to wait for the advisory lock", async () => {
          const [row] = await sql`
          SELECT count(*)::int AS n FROM pg_locks
          WHERE locktype = 'advisory' AND NOT granted AND classid = ${LOCK_CLASS}`;
          return row.n === 2;
        });
        assert.equal(settled, false);
        // Reads never wait.
        assert.equal((await store.get(["k"]))?.value, 0);
        await holder.unsafe("COMMIT");
        holder.release();
        assert.ok((await write).ok);
        assert.equal(await cleared, 0);
        assert.equal((await store.get(["k"]))?.value, 1);
      } finally {
        await sql.end({ timeout: 5 });
      }
    } finally {
      await store.close();
    }
  },
);

pgTest(
  "PostgresDriver.commit() loses no compare-and-set increment across two processes",
  async (url) => {
    const table = newTable("counter");
    // Create the table first so both processes race on writes, not on setup.
    await (await PostgresDriver.open(url, { schema: SCHEMA, table })).close();
    const children = [0, 1].map(() =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          "--allow-net=127.0.0.1",
          "--allow-sys",
          join(TESTDATA, "postgres_counter.ts"),
          url,
          SCHEMA,
          table,
          "500",
        ],
        cwd: ROOT,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn()
    );
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
    await Promise.race([
      Promise.all(outputs.map((o) => o.isReady)),
      Promise.all(children.map((c) => c.status)).then(async () => {
        throw new Error(
          `a child exited early: ${await outputs[0].stderr} ${await outputs[1].stderr}`,
        );
      }),
    ]);
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
    const store = await openPg(url, table);
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
  },
);

// --- Query pushdown ----------------------------------------------------------

const NORMAL = { prefix: [], where: [], orderBy: [], limit: Infinity, offset: 0 };

function normalClauses(where: WhereClause[]) {
  return where.map((w) => ({
    path: typeof w.path === "string" ? (w.path === "" ? [] : w.path.split(".")) : [...w.path],
    op: w.op,
    value: w.value,
  }));
}

pgTest("PostgresDriver.query() leaves what PostgreSQL cannot hold to the core", async (url) => {
  const driver = await PostgresDriver.open(url, { schema: SCHEMA, table: newTable("fallback") });
  try {
    const q = (where: WhereClause[], prefix: Key = []) =>
      driver.query({ ...NORMAL, prefix, where: normalClauses(where) }, 0);
    // Operands and path segments PostgreSQL text cannot hold.
    assert.equal(await q([{ path: "a", op: "eq", value: "\ud800" }]), undefined);
    assert.equal(await q([{ path: "a", op: "eq", value: "a\u0000" }]), undefined);
    assert.equal(await q([{ path: "a", op: "in", value: [1, { b: "\u0000" }] }]), undefined);
    assert.equal(await q([{ path: "a", op: "contains", value: ["\udc00"] }]), undefined);
    assert.equal(await q([{ path: "a", op: "lt", value: "\ud800" }]), undefined);
    assert.equal(await q([{ path: ["a\u0000"], op: "exists" }]), undefined);
    // Everything else runs in SQL, objects and arrays included.
    assert.deepEqual(await q([{ path: "a", op: "eq", value: { b: [1] } }]), []);
    assert.deepEqual(await q([{ path: ['we"ird', "back\\slash"], op: "exists" }]), []);
    assert.deepEqual(await q([{ path: "a.0.1.2.3", op: "contains", value: [1] }]), []);

    // A value that cannot be cast to jsonb sends the queries that read it to the core.
    await driver.commit({
      checks: [],
      mutations: [
        { type: "set", key: ["s", "1"], value: JSON.stringify({ a: "x\u0000" }), expiresAt: null },
        { type: "set", key: ["t", "1"], value: JSON.stringify({ a: "😀" }), expiresAt: null },
        { type: "set", key: ["u", "1"], value: JSON.stringify({ a: "\udfff" }), expiresAt: null },
      ],
      version: "v1",
      now: 0,
    });
    const exists = [{ path: "a", op: "exists" as const }];
    assert.equal(await q(exists, ["s"]), undefined);
    assert.equal(await q(exists, ["u"]), undefined);
    assert.equal(await q(exists), undefined);
    assert.equal((await q(exists, ["t"]))?.length, 1);
    assert.equal((await q([{ path: "a", op: "eq", value: "😀" }], ["t"]))?.length, 1);
    // Without clauses or sort keys nothing is cast: key order straight from the index.
    assert.deepEqual(
      (await driver.query({ ...NORMAL, limit: 2 }, 0))?.map((e) => e.key),
      [["s", "1"], ["t", "1"]],
    );
  } finally {
    await driver.close();
  }
});

pgTest(
  "PostgresDriver.query() falls back cleanly when a value fails to cast midway",
  async (url) => {
    // One connection, so the statements after the failed one run where it ran;
    // no sequential scan, so rows stream out in key order from the index
    // (a sort would read them all, failing before the first row is sent).
    const noSeqScan = new URL(url);
    noSeqScan.searchParams.set("enable_seqscan", "off");
    const driver = await PostgresDriver.open(noSeqScan.href, {
      schema: SCHEMA,
      table: newTable("midway"),
      max: 1,
    });
    const store = wrapDriver(driver, { name: "postgres", plugin: "postgres" });
    try {
      for (const [i, k] of ["a", "b", "c", "d", "e"].entries()) await store.set([k], { n: i });
      // Sorts last: the rows before it are sent before its cast fails.
      await store.set(["zz"], { n: "x\u0000" });
      const exists = { ...NORMAL, where: normalClauses([{ path: "n", op: "exists" }]) };
      assert.equal(await driver.query(exists, 0), undefined);
      assert.deepEqual((await store.get(["a"]))?.value, { n: 0 });
      assert.deepEqual((await Array.fromAsync(store.list())).map((e) => e.key[0]), [
        "a",
        "b",
        "c",
        "d",
        "e",
        "zz",
      ]);
      const gte = await store.query({ prefix: [], where: [{ path: "n", op: "gte", value: 3 }] });
      assert.deepEqual(gte.map((e) => e.key[0]), ["d", "e"]);
      assert.equal(await store.count(), 6);
    } finally {
      await store.close();
    }
  },
);

pgTest("PostgresDriver.query() orders across types and breaks ties by key", async (url) => {
  const store = await openPg(url, newTable("order"));
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
  "x.y",
  'quote"d',
  "back\\slash",
  "\\u0000",
  "10",
  "2",
  "null",
  "true",
  "\u0001ctl",
  "{a,b}",
];
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
  -Number.MIN_VALUE,
  123456789.125,
];
pgTest(
  "PostgresDriver.query() runs most of 2,000 random queries in SQL, with the memory plugin's results (differential)",
  async (url) => {
    // The conformance suite compares a smaller workload on every store; this
    // one is the full size, and counts what the driver itself answers.
    const { seed, entries, elapse, operations } = randomQueryWorkload();
    const clock = manualClock();
    const driver = await PostgresDriver.open(url, {
      schema: SCHEMA,
      table: newTable("differential"),
    });
    let pushed = 0;
    let fellBack = 0;
    const native = driver.query.bind(driver);
    driver.query = async (q, now) => {
      const result = await native(q, now);
      if (result === undefined) fellBack++;
      else pushed++;
      return result;
    };
    const pg = wrapDriver(driver, { name: "postgres", plugin: "postgres", clock });
    const mem = await openStore({ plugin: "memory" }, { clock });
    try {
      await writeEntries(pg, entries);
      await writeEntries(mem, entries);
      clock.t += elapse;
      for (const [n, query] of operations.entries()) {
        const expected = (await mem.query(query)).map((e) => [e.key, e.value]);
        const actual = (await pg.query(query)).map((e) => [e.key, e.value]);
        assert.deepEqual(actual, expected, `seed ${seed}, query ${n}: ${JSON.stringify(query)}`);
      }
      // The comparison means something only if most queries really ran in SQL.
      const total = operations.length;
      assert.ok(pushed >= total / 2, `only ${pushed} of ${total} queries were pushed down`);
      assert.ok(fellBack > 0, "no query exercised the fallback");
    } finally {
      await pg.close();
      await mem.close();
    }
  },
);

pgTest(
  "PostgresDriver.query() compares every sample number and string exactly as the core does",
  async (url) => {
    const driver = await PostgresDriver.open(url, { schema: SCHEMA, table: newTable("scalars") });
    let fellBack = 0;
    const native = driver.query.bind(driver);
    driver.query = async (q, now) => {
      const result = await native(q, now);
      if (result === undefined) fellBack++;
      return result;
    };
    const pg = wrapDriver(driver, { name: "postgres", plugin: "postgres" });
    const mem = await openStore({ plugin: "memory" });
    try {
      const scalars: JsonValue[] = [...NUMBERS, ...STRINGS, null, true, false];
      for (const [i, v] of scalars.entries()) {
        const key = [String(i).padStart(3, "0")];
        for (const s of [pg, mem]) {
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
        const actual = (await pg.query(query)).map((e) => e.key);
        assert.deepEqual(actual, expected, JSON.stringify(query));
      }
      assert.equal(fellBack, 0, "every one of these queries can run in SQL");
    } finally {
      await pg.close();
      await mem.close();
    }
  },
);

// --- Cleanup -------------------------------------------------------------------

pgTest("postgres test tables are dropped", async (url) => {
  await withAdmin(url, async (sql) => {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    const [row] = await sql`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${SCHEMA}`;
    assert.equal(row.n, 0);
  });
});
