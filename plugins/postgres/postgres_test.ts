import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, StoreCorruptError } from "../../src/errors.ts";
import { openStore, type StoreSpec } from "../../src/plugin.ts";
import { testStore } from "../../testing.ts";
import type postgres from "postgres";
import { openClient } from "./client.ts";
import { PostgresDriver, postgresOptions } from "./mod.ts";
import {
  dropTestSchema,
  manualClock,
  NEEDS_SERVER,
  newTable,
  openPg,
  PG_URL,
  pgTest,
  ROOT,
  SCHEMA,
  TESTDATA,
  whileLockHeld,
  withAdmin,
  withLimitedRole,
} from "./_test_utils.ts";

// The postgres plugin: the conformance suite, options, connecting, loading
// the driver lazily, and the table format. Reads and writes are in
// driver_test.ts, processes and locks in concurrency_test.ts, query pushdown
// in query_test.ts; tests that need a server are ignored without
// FLOWSTATE_TEST_POSTGRES_URL (see _test_utils.ts).

// --- The conformance suite -------------------------------------------------

if (PG_URL === undefined) {
  Deno.test({
    name: `postgres: Store conformance (ignored: ${NEEDS_SERVER})`,
    ignore: true,
    fn: () => {},
  });
} else {
  const url = PG_URL;
  // Each case id gets its own table; the same id reopens the same table, and
  // a second process opens it from the same spec. Each case drops its tables.
  const spec = (id: string) => ({
    plugin: "postgres",
    url,
    schema: SCHEMA,
    table: `t_${id.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`,
  });
  let admin: postgres.Sql | undefined;
  testStore(
    "postgres",
    ({ id, clock, indexes, search, changes }) =>
      openStore({ ...spec(id), indexes, search, changes }, { clock }),
    {
      multiProcess: { spec: ({ id }) => spec(id) },
      async cleanup({ id }) {
        admin ??= openClient(url, { max: 1 });
        const { table } = spec(id);
        await admin.unsafe(
          `DROP TABLE IF EXISTS "${SCHEMA}"."${table}", "${SCHEMA}"."${table}_meta", ` +
            `"${SCHEMA}"."${table}_feed"`,
        );
      },
      async afterAll() {
        if (admin === undefined) return;
        // The suite left no table behind.
        const left = await admin`SELECT tablename FROM pg_tables WHERE schemaname = ${SCHEMA}
        AND tablename LIKE 't\_fs\_%'`;
        await admin.end({ timeout: 5 });
        assert.deepEqual(left.map((r) => r.tablename), [], "tables left by the conformance suite");
      },
    },
  );
}

// --- Options, connection, lazy loading (no server needed) --------------------

Deno.test("postgresOptions fills in defaults and rejects unknown or bad options", async () => {
  assert.deepEqual(postgresOptions.parse({ url: "postgres://u@h/db" }), {
    url: "postgres://u@h/db",
    table: "flowstate_entries",
    schema: "public",
    max: 4,
    connectTimeout: 10,
    lockTimeout: 5000,
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
    [{ url: "postgres://u@h/db", lockTimeout: -1 }, /option "lockTimeout"/],
    [{ url: "postgres://u@h/db", lockTimeout: 1.5 }, /option "lockTimeout"/],
    [{ url: "postgres://u@h/db", tabel: "x" }, /unknown option "tabel" \(did you mean "table"\?\)/],
  ];
  for (const [options, pattern] of bad) {
    await assert.rejects(
      // Not a typed spec: these are the mistakes the options schema refuses at run time.
      openStore({ plugin: "postgres", ...options } as StoreSpec, { name: "main" }),
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
  await assert.rejects(
    PostgresDriver.open("postgres://u@h/db", { lockTimeout: -1 }),
    (err) => err instanceof RangeError && /lockTimeout must be a whole number/.test(err.message),
  );
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
    assert.match(result.error, /^StoreUnavailableError: Cannot open store "lazy": .*stub driver/);
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
      assert.deepEqual(indexes.map((i) => i.indexname), [
        `${table}_expires_at`,
        `${table}_expiring`,
        `${table}_pkey`,
      ]);
      assert.match(indexes[0].indexdef, /\(expires_at\) WHERE \(expires_at IS NOT NULL\)/);
      assert.match(indexes[1].indexdef, /\(key, expires_at\) WHERE \(expires_at IS NOT NULL\)/);
    });
  },
);

/** Whether the table has its expiring entries' index. */
async function hasExpiringIndex(url: string, table: string): Promise<boolean> {
  let found = false;
  await withAdmin(url, async (sql) => {
    const [row] = await sql.unsafe(`SELECT to_regclass($1) IS NOT NULL AS found`, [
      `"${SCHEMA}"."${table}_expiring"`,
    ]);
    found = row.found;
  });
  return found;
}

/**
 * count() of prefixes whose entries expire (or not) in a store where many
 * entries of another prefix have expired: only the live entries of each.
 */
async function countsAmongExpired(spec: StoreSpec): Promise<void> {
  const clock = manualClock();
  const store = await openStore(spec, { clock });
  try {
    const op = store.atomic();
    for (let i = 0; i < 300; i++) {
      const k = String(i).padStart(3, "0");
      op.set(["gone", k], i, { expireIn: 10 }); // all expired below
      op.set(["mixed", k], i, i % 3 === 0 ? undefined : { expireIn: i % 3 === 1 ? 10 : 1000 });
    }
    op.set(["plain", "a"], 1).set(["plain", "b"], 2);
    await op.commit();
    assert.equal(await store.count(["mixed"]), 300);
    clock.t += 500;
    assert.equal(await store.count(["gone"]), 0);
    assert.equal(await store.count(["mixed"]), 200);
    assert.equal(await store.count(["plain"]), 2);
    assert.equal(await store.count(), 202);
    assert.equal(await store.count(["mixed"], { start: ["mixed", "150"] }), 100);
    clock.t += 1000;
    assert.equal(await store.count(["mixed"]), 100);
  } finally {
    await store.close();
  }
}

pgTest(
  "PostgresDriver.open() adds the expiring entries' index to a table made without it, and count() counts only live entries",
  async (url) => {
    const table = newTable("addexp");
    const spec = { plugin: "postgres", url, schema: SCHEMA, table };
    await (await openStore(spec)).close();
    await withAdmin(url, (sql) => sql.unsafe(`DROP INDEX "${SCHEMA}"."${table}_expiring"`).then());
    assert.equal(await hasExpiringIndex(url, table), false);
    await countsAmongExpired(spec);
    assert.equal(await hasExpiringIndex(url, table), true);
  },
);

pgTest(
  "postgres: an old table whose writers hold it open is opened without waiting for them (no expiring index then)",
  async (url) => {
    const table = newTable("busyexp");
    const spec = { plugin: "postgres", url, schema: SCHEMA, table };
    await (await openStore(spec)).close();
    await withAdmin(url, (sql) => sql.unsafe(`DROP INDEX "${SCHEMA}"."${table}_expiring"`).then());
    // A writer's transaction in progress: its lock conflicts with building an index.
    await whileLockHeld(
      url,
      `LOCK TABLE "${SCHEMA}"."${table}" IN ROW EXCLUSIVE MODE`,
      [],
      "the open waited for the writer to finish",
      async () => await (await openStore(spec)).close(),
    );
    assert.equal(await hasExpiringIndex(url, table), false);
    // Counts stay right without it; the next open, with nobody in the way, adds it.
    await countsAmongExpired(spec);
    assert.equal(await hasExpiringIndex(url, table), true);
  },
);

pgTest(
  "postgres: a role that may not add the expiring entries' index opens the store and counts only live entries",
  async (url) => {
    const table = newTable("noexp");
    const spec = { plugin: "postgres", url, schema: SCHEMA, table };
    await (await openStore(spec)).close(); // the tables, made by the owner
    await withAdmin(url, (sql) => sql.unsafe(`DROP INDEX "${SCHEMA}"."${table}_expiring"`).then());
    await withLimitedRole(
      url,
      table,
      (limitedUrl) => countsAmongExpired({ ...spec, url: limitedUrl }),
    );
    assert.equal(await hasExpiringIndex(url, table), false, "the limited role added no index");
  },
);

pgTest("PostgresDriver.open() refuses a newer schema version and changes nothing", async (url) => {
  const table = newTable("newer");
  const store = await openPg(url, table);
  await store.set(["kept"], "yes");
  await store.close();
  await withAdmin(url, async (sql) => {
    await sql.unsafe(
      `UPDATE "${SCHEMA}"."${table}_meta" SET value = '3' WHERE key = 'schema_version'`,
    );
  });
  await assert.rejects(
    openPg(url, table, { name: "main" }),
    (err) =>
      err instanceof StoreCorruptError && err.movedTo === null &&
      /^Cannot open store "main": postgres:\/\/.* has schema version 3, .* reads schema versions up to 2 only; upgrade Flowstate/
        .test(err.message),
  );
  await withAdmin(url, async (sql) => {
    const [meta] = await sql.unsafe(
      `SELECT value FROM "${SCHEMA}"."${table}_meta" WHERE key = 'schema_version'`,
    );
    assert.equal(meta.value, "3");
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

// --- Cleanup -------------------------------------------------------------------

dropTestSchema();
