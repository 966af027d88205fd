import assert from "node:assert/strict";
import { openClient } from "./client.ts";
import { openStore } from "../../src/plugin.ts";
import type { Store } from "../../src/store/types.ts";
import {
  dropTestSchema,
  newTable,
  openPg,
  PG_URL,
  pgTest,
  SCHEMA,
  whileLockHeld,
  withAdmin,
  withLimitedRole,
  withOwnDatabase,
} from "./_test_utils.ts";
import { encodeKey } from "../../src/store/keys.ts";

// The store's PL/pgSQL functions (`<table>_commit_v1`, `<table>_claim_read_v1`, the feed's) are
// called only when they are exactly the ones this code creates: found by name alone, a function
// would run whatever its body, owner or parameters say (needs a server: see _test_utils.ts).

/** Run `fn` with a store on a new table of the test schema (`label` in its name), then close it. */
async function withPg(
  url: string,
  label: string,
  fn: (store: Store, table: string) => Promise<void>,
  options: { max?: number } = {},
): Promise<void> {
  const table = newTable(label);
  const store = await openPg(url, table, options);
  try {
    await fn(store, table);
  } finally {
    await store.close();
  }
}

/** Take the first entry under `prefix` by deleting it; resolves the key taken. */
async function claimDelete(store: Store, prefix: string[]): Promise<unknown> {
  const claimed = await store.claimFirst!(prefix, (entry, op) => {
    op.check(entry.key, entry.version).delete(entry.key);
    return Promise.resolve(true);
  });
  assert.ok(claimed === null || claimed.result.ok);
  return claimed?.key;
}

/** A checked commit (the commit function's path): `key` set to `value` over its version. */
async function checkedSet(store: Store, key: string[], value: unknown): Promise<void> {
  const e = await store.get(key);
  // With a delete (of a key of its own): not a lone compare-and-set, which is no function call.
  const r = await store.atomic().check(key, e?.version ?? null).set(key, value)
    .delete(["x", ...key]).commit();
  assert.ok(r.ok);
}

for (const feed of [false, true]) {
  pgTest(
    `postgres functions: a schema renamed keeps no function that writes the old name's table${
      feed ? " (change feed)" : ""
    }`,
    async (url) => {
      const live = `${SCHEMA}_live${feed ? "f" : ""}`;
      const archived = `${SCHEMA}_arch${feed ? "f" : ""}`;
      const open = (schema: string) =>
        openStore(
          {
            plugin: "postgres",
            url,
            schema,
            table: "jobs",
            changes: feed ? { keep: "1d" } : undefined,
          } as {
            plugin: string;
          },
        );
      try {
        const first = await open(live);
        await first.set(["n"], 1);
        await checkedSet(first, ["n"], 2);
        await first.set(["q", "old"], 1);
        assert.deepEqual(await claimDelete(first, ["q"]), ["q", "old"]);
        await first.close();
        await withAdmin(url, async (sql) => {
          await sql.unsafe(`ALTER SCHEMA "${live}" RENAME TO "${archived}"`);
        });
        const fresh = await open(live);
        const archive = await open(archived);
        try {
          await checkedSet(archive, ["n"], 3);
          await checkedSet(archive, ["only_archive"], true);
          assert.equal((await archive.get(["n"]))?.value, 3);
          assert.equal((await archive.get(["only_archive"]))?.value, true);
          assert.equal(await fresh.get(["n"]), null);
          assert.equal(await fresh.get(["only_archive"]), null);
          await archive.set(["q", "a"], 1);
          if (feed) assert.equal((await fresh.feedInfo()).lastSeq, 0);
          await fresh.set(["q", "b"], 1);
          assert.deepEqual(await claimDelete(archive, ["q"]), ["q", "a"]);
          assert.equal(await archive.get(["q", "a"]), null);
          assert.notEqual(await fresh.get(["q", "b"]), null);
        } finally {
          await archive.close();
          await fresh.close();
        }
      } finally {
        await withAdmin(url, async (sql) => {
          await sql.unsafe(`DROP SCHEMA IF EXISTS "${live}" CASCADE`);
          await sql.unsafe(`DROP SCHEMA IF EXISTS "${archived}" CASCADE`);
        });
      }
    },
  );
}

pgTest(
  "postgres functions: one of the name with other parameters is not called",
  async (url) => {
    await withPg(url, "fn_sig", async (store, table) => {
      await withAdmin(url, async (sql) => {
        await sql.unsafe(
          `CREATE FUNCTION "${SCHEMA}"."${table}_claim_read_v1"(bytea) RETURNS int ` +
            `LANGUAGE sql AS 'SELECT 1'`,
        );
      });
      await store.set(["q", "a"], 1);
      assert.deepEqual(await claimDelete(store, ["q"]), ["q", "a"]);
      assert.equal(await store.get(["q", "a"]), null);
      await checkedSet(store, ["n"], 1);
      assert.equal((await store.get(["n"]))?.value, 1);
    });
  },
);

pgTest(
  "postgres functions: a checked commit waiting for a row lock holds up no commit on other keys",
  async (url) => {
    const others = ["b", "c", "d", "e", "f", "g", "h", "i"];
    await withPg(url, "fn_hol", async (store, table) => {
      for (const k of ["a", ...others]) await store.set([k], 0);
      await checkedSet(store, ["warm"], 1);
      let waiting: Promise<void> | undefined;
      await whileLockHeld(
        url,
        `SELECT 1 FROM "${SCHEMA}"."${table}" WHERE key = $1 FOR UPDATE`,
        [encodeKey(["a"])],
        "a commit on another key waited for the commit that waits for the row lock",
        async () => {
          waiting = checkedSet(store, ["a"], 1);
          // Until the commit of `a` waits for the row (its statement, blocked on a lock).
          await withAdmin(url, async (sql) => {
            for (;;) {
              const [row] = await sql.unsafe(
                `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' ` +
                  `AND query LIKE $1`,
                [`%${table}_commit_v1%`],
              );
              if (row.n > 0) return;
              await new Promise((r) => setTimeout(r, 10));
            }
          });
          // Every commit on another key completes while `a`'s still waits.
          let done = 0;
          await Promise.all(others.map((k) => checkedSet(store, [k], 1).then(() => done++)));
          assert.equal(done, others.length);
          for (const k of others) assert.equal((await store.get([k]))?.value, 1);
          assert.equal((await store.get(["a"]))?.value, 0);
        },
      );
      await waiting;
      assert.equal((await store.get(["a"]))?.value, 1);
    }, { max: 4 });
  },
);

pgTest(
  "postgres functions: the claim-read function leaves index plans on for the rest of the claim's transaction",
  async (url) => {
    await withPg(url, "fn_plans", async (store, table) => {
      await store.set(["q", "a"], 1);
      assert.deepEqual(await claimDelete(store, ["q"]), ["q", "a"]);
      await withAdmin(url, async (sql) => {
        await sql.begin(async (tx) => {
          // As a claim calls it (`decide`'s reads then run in the same transaction).
          await tx.unsafe(
            `SELECT * FROM "${SCHEMA}"."${table}_claim_read_v1"($1, $2, 0, 1, NULL, NULL)`,
            [encodeKey(["q"]), new Uint8Array([0xff])],
          );
          const [row] = await tx.unsafe(`SELECT current_setting('enable_seqscan') AS s`);
          assert.equal(row.s, "off");
        });
        const [after] = await sql.unsafe(`SELECT current_setting('enable_seqscan') AS s`);
        assert.equal(after.s, "on", "transaction-local only");
      });
    });
  },
);

/**
 * Claims with a companion over candidates whose values hold a \u0000 (in the companion field,
 * elsewhere) or a lone surrogate (which JSON.stringify writes as an escape, as for an emoji cut
 * in half; PostgreSQL's `json` refuses it): each is claimed, and `get` of its companion answers
 * the companion entry.
 */
async function claimsOverNul(store: Store): Promise<void> {
  await store.set(["q", "a"], { who: "x\u0000y", v: 1 });
  await store.set(["q", "b"], { who: "w1", v: 2, note: "\u0000" });
  await store.set(["q", "c"], { who: "w1", v: 3 });
  await store.set(["q", "d"], { who: "w1", v: 4, note: "cut emoji \ud83d" });
  await store.set(["q", "e"], { who: "w1", v: 5, note: "\udc00 and \\ud800" });
  await store.set(["who", "w1"], { n: 1 });
  await store.set(["who", "x\u0000y"], { n: 0 });
  const seen: unknown[] = [];
  for (let i = 0; i < 5; i++) {
    const got = await store.claimFirst!<{ who: string }>(["q"], async (entry, op, get) => {
      seen.push([entry.key, (await get(["who", entry.value.who]))?.value]);
      op.check(entry.key, entry.version).delete(entry.key);
      return true;
    }, { companion: { prefix: ["who"], field: "who" } });
    assert.ok(got?.result.ok);
  }
  assert.deepEqual(seen, [
    [["q", "a"], { n: 0 }],
    [["q", "b"], { n: 1 }],
    [["q", "c"], { n: 1 }],
    [["q", "d"], { n: 1 }],
    [["q", "e"], { n: 1 }],
  ]);
}

pgTest(
  "postgres functions: a claim with a companion over a value holding \\u0000 or a lone surrogate claims it (function and statement)",
  async (url) => {
    await withPg(url, "fn_nul", async (store) => {
      await claimsOverNul(store);
    });
    // A role that may not create the claim-read function: the claim's own statement.
    const other = newTable("fn_nul_stmt");
    await (await openPg(url, other)).close();
    await withLimitedRole(url, other, async (limitedUrl) => {
      const limited = await openStore(
        { plugin: "postgres", url: limitedUrl, schema: SCHEMA, table: other } as {
          plugin: string;
        },
      );
      try {
        await claimsOverNul(limited);
      } finally {
        await limited.close();
      }
    });
  },
);

/** Whether the test server lets this login create (and drop) roles. */
const canCreateRoles = PG_URL === undefined ? false : await (async () => {
  const sql = openClient(PG_URL, { max: 1 });
  try {
    const [row] = await sql`SELECT rolsuper OR rolcreaterole AS ok FROM pg_roles
      WHERE rolname = current_user`;
    return row?.ok === true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 5 });
  }
})();

/** Register a test that needs a login that may create roles, or an ignored one saying why. */
function roleTest(name: string, fn: (url: string) => Promise<void>): void {
  if (PG_URL !== undefined && !canCreateRoles) {
    Deno.test({
      name: `${name} (ignored: the test login may not create roles)`,
      ignore: true,
      fn: () => {},
    });
  } else pgTest(name, fn);
}

const PLANTED = "postgres functions: one planted by a role that may create in the schema is " +
  "never called (as the table's owner, or as a role that may not create)";
roleTest(PLANTED, async (url) => {
  const table = newTable("fn_planted");
  const store = await openPg(url, table);
  const role = `fs_planter_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  try {
    await store.set(["n"], 1);
    await withAdmin(url, async (sql) => {
      await sql.unsafe(`CREATE ROLE ${role} LOGIN`);
      // What PostgreSQL <= 14 grants every role on `public`.
      await sql.unsafe(`GRANT USAGE, CREATE ON SCHEMA "${SCHEMA}" TO ${role}`);
    });
    const planterUrl = new URL(url);
    planterUrl.username = role;
    planterUrl.password = "";
    const ranTable = `"${SCHEMA}"."${table}_ran"`;
    /** Plant the commit function as the planter: it records who ran it and writes nothing. */
    const plant = async () => {
      const planter = openClient(planterUrl.href, { max: 1 });
      try {
        await planter.unsafe(`CREATE TABLE IF NOT EXISTS ${ranTable} (who text)`);
        await planter.unsafe(`GRANT INSERT ON ${ranTable} TO PUBLIC`);
        await planter.unsafe(
          `CREATE FUNCTION "${SCHEMA}"."${table}_commit_v1"(text[], text[], float8, text[], ` +
            `text[], text[], float8[], text, text[], boolean) RETURNS int[] ` +
            `LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ${ranTable} VALUES (current_user); ` +
            `RETURN NULL; END $$`,
        );
      } finally {
        await planter.end({ timeout: 5 });
      }
    };
    await plant();
    const ranBy = () =>
      withAdmin(url, async (sql) => {
        const rows = await sql.unsafe(`SELECT who FROM ${ranTable}`);
        assert.deepEqual(rows.map((r) => r.who), []);
      });
    // The table's owner (who may create in the schema, but not replace another's function).
    await checkedSet(store, ["n"], 2);
    assert.equal((await store.get(["n"]))?.value, 2);
    await ranBy();
    // Planted again (the store's own dropped first), before a role that may only read and
    // write the table (it may create nothing) commits.
    await withAdmin(url, async (sql) => {
      await sql.unsafe(`DROP FUNCTION "${SCHEMA}"."${table}_commit_v1"`);
    });
    await plant();
    await withLimitedRole(url, table, async (limitedUrl) => {
      const limited = await openStore(
        { plugin: "postgres", url: limitedUrl, schema: SCHEMA, table } as { plugin: string },
      );
      try {
        await checkedSet(limited, ["n"], 3);
        assert.equal((await limited.get(["n"]))?.value, 3);
      } finally {
        await limited.close();
      }
    });
    await ranBy();
  } finally {
    await store.close();
    await withAdmin(url, async (sql) => {
      await sql.unsafe(`DROP OWNED BY ${role}`).catch(() => {});
      await sql.unsafe(`DROP ROLE IF EXISTS ${role}`);
    });
  }
});

/** Run `fn` with the URL of a new login role that may use and create in {@linkcode SCHEMA}. */
async function withCreatorRole(url: string, fn: (roleUrl: string, role: string) => Promise<void>) {
  const role = `fs_creator_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  await withAdmin(url, async (sql) => {
    await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${SCHEMA}"`);
    await sql.unsafe(`CREATE ROLE ${role} LOGIN`);
    // What PostgreSQL <= 14 grants every role on `public`.
    await sql.unsafe(`GRANT USAGE, CREATE ON SCHEMA "${SCHEMA}" TO ${role}`);
  });
  try {
    const roleUrl = new URL(url);
    roleUrl.username = role;
    roleUrl.password = "";
    await fn(roleUrl.href, role);
  } finally {
    await withAdmin(url, async (sql) => {
      await sql.unsafe(`DROP OWNED BY ${role}`).catch(() => {});
      await sql.unsafe(`DROP ROLE IF EXISTS ${role}`);
    });
  }
}

/** As `roleUrl`: an overload of each of `table`'s functions with an extra defaulted parameter. */
async function plantOverloads(roleUrl: string, table: string): Promise<void> {
  const sql = openClient(roleUrl, { max: 1 });
  try {
    const fn = (name: string) => `"${SCHEMA}"."${table}_${name}"`;
    await sql.unsafe(
      `CREATE FUNCTION ${fn("commit_v1")}(text[], text[], float8, text[], text[], text[], ` +
        `float8[], text, text[], boolean, x int DEFAULT 0) RETURNS int[] LANGUAGE sql ` +
        `AS 'SELECT NULL::int[]'`,
    );
    await sql.unsafe(
      `CREATE FUNCTION ${fn("claim_read_v1")}(bytea, bytea, float8, int, bytea, bytea, ` +
        `x int DEFAULT 0) RETURNS int LANGUAGE sql AS 'SELECT 1'`,
    );
    await sql.unsafe(
      `CREATE FUNCTION ${fn("feed_set_v3")}(bytea, text, text, float8, float8, text, text, ` +
        `x int DEFAULT 0) RETURNS void LANGUAGE sql AS ''`,
    );
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Run `fn` with a store that keeps a change feed on `table` of the test schema, then close it. */
async function withFeedStore(
  url: string,
  table: string,
  fn: (store: Store) => Promise<void>,
): Promise<void> {
  const store = await openStore(
    { plugin: "postgres", url, schema: SCHEMA, table, changes: { keep: "1d" } } as {
      plugin: string;
    },
  );
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

/** A checked commit, a claim and a feed write on `store`: each must work. */
async function useAll(store: Store): Promise<void> {
  await checkedSet(store, ["n"], Math.random());
  await store.set(["q", "a"], 1);
  assert.deepEqual(await claimDelete(store, ["q"]), ["q", "a"]);
  await store.set(["plain"], Math.random());
}

const OVERLOAD = "postgres functions: another function of the name (an ambiguous overload) is " +
  "dropped, or the store falls back to its statements";
roleTest(OVERLOAD, async (url) => {
  await withCreatorRole(url, async (planterUrl) => {
    // Planted after this store checked its functions: every call by name is ambiguous.
    const t1 = newTable("fn_amb");
    await withFeedStore(url, t1, async (store) => {
      await useAll(store);
      await plantOverloads(planterUrl, t1);
      await useAll(store);
      await useAll(store);
    });
    // Found by the check (as the table's owner, who may drop them): dropped, never called.
    await withFeedStore(url, t1, useAll);
    await withAdmin(url, async (sql) => {
      const rows = await sql.unsafe(
        `SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args FROM pg_proc p ` +
          `JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 ` +
          `AND p.proname LIKE $2 AND pg_get_function_identity_arguments(p.oid) LIKE '%x %'`,
        [SCHEMA, `${t1}_%`],
      );
      assert.deepEqual([...rows], []);
    });
  });
  // A store role that may create in the schema, but not drop another role's overloads.
  await withCreatorRole(url, async (storeUrl) => {
    await withCreatorRole(url, async (planterUrl) => {
      const t2 = newTable("fn_amb_role");
      await withFeedStore(storeUrl, t2, async (store) => {
        await store.set(["warm"], 1);
        await plantOverloads(planterUrl, t2);
        await useAll(store);
      });
      await withFeedStore(storeUrl, t2, useAll);
    });
  });
});

pgTest(
  "postgres functions: one altered (STRICT, STABLE, a result or parameter name changed) is " +
    "replaced, and Flowstate's own are kept as they are",
  async (url) => {
    const table = newTable("fn_alter");
    const fn = (name: string) => `"${SCHEMA}"."${table}_${name}"`;
    const feedSet = `${fn("feed_set_v3")}(bytea, text, text, float8, float8, text, text)`;
    const commit = `${fn("commit_v1")}(text[], text[], float8, text[], text[], text[], ` +
      `float8[], text, text[], boolean)`;
    const claimRead = `${fn("claim_read_v1")}(bytea, bytea, float8, int, bytea, bytea)`;
    /** The store's functions' oids and row versions: equal when none was made again. */
    const made = async () => {
      let rows: unknown[] = [];
      await withAdmin(url, async (sql) => {
        rows = [
          ...await sql.unsafe(
            `SELECT p.oid::int, p.xmin::text FROM pg_proc p JOIN pg_namespace n ` +
              `ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname LIKE $2 ORDER BY 1`,
            [SCHEMA, `${table}_%`],
          ),
        ];
      });
      return rows;
    };
    await withFeedStore(url, table, useAll);
    const first = await made();
    assert.equal(first.length, 4);
    await withFeedStore(url, table, useAll);
    assert.deepEqual(await made(), first, "Flowstate's own functions are not made again");
    for (
      const alter of [
        `ALTER FUNCTION ${feedSet} STRICT`,
        `ALTER FUNCTION ${commit} STABLE`,
        `ALTER FUNCTION ${claimRead} STRICT`,
        // A result of another type: CREATE OR REPLACE cannot change it (dropped first).
        `DROP FUNCTION ${feedSet}; CREATE FUNCTION ${feedSet} RETURNS int LANGUAGE plpgsql ` +
        `AS $$ BEGIN RETURN 0; END $$`,
        // A parameter name: CREATE OR REPLACE cannot remove it.
        `DROP FUNCTION ${commit}; CREATE FUNCTION ${fn("commit_v1")}(a text[], text[], float8, ` +
        `text[], text[], text[], float8[], text, text[], boolean) RETURNS int[] ` +
        `LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`,
      ]
    ) {
      await withAdmin(url, (sql) => sql.unsafe(alter).simple().then());
      await withFeedStore(url, table, async (store) => {
        // A plain set has no expiry ($4 NULL): a STRICT function would write nothing.
        const value = Math.random();
        const before = (await store.feedInfo()).lastSeq;
        await store.set(["plain"], value);
        assert.equal((await store.get(["plain"]))?.value, value, alter);
        assert.equal((await store.feedInfo()).lastSeq, before + 1, alter);
        await useAll(store);
      });
      await withAdmin(url, async (sql) => {
        const rows = await sql.unsafe(
          `SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace ` +
            `WHERE n.nspname = $1 AND p.proname LIKE $2 AND (p.proisstrict ` +
            `OR p.provolatile <> 'v' OR p.proargnames IS NOT NULL AND p.proname NOT LIKE '%claim%' ` +
            `OR pg_get_function_result(p.oid) = 'integer')`,
          [SCHEMA, `${table}_%`],
        );
        assert.deepEqual([...rows], [], alter);
      });
    }
  },
);

const BLOCKED = "postgres functions: another role's function that cannot be dropped (something " +
  "depends on it) is not tried again on every commit";
roleTest(BLOCKED, async (url) => {
  // A database of its own: the event trigger that counts the drops sees every session of it.
  await withOwnDatabase(url, "dropdep", async (own) => {
    const role = `fs_dep_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
    const store = await openStore({ plugin: "postgres", url: own, table: "jobs" } as {
      plugin: string;
    });
    try {
      await withAdmin(own, async (sql) => {
        await sql.unsafe(`CREATE ROLE ${role}`);
        await sql.unsafe(`GRANT USAGE, CREATE ON SCHEMA public TO ${role}`);
        await sql.unsafe(`SET ROLE ${role}`);
        await sql.unsafe(
          `CREATE FUNCTION public.jobs_commit_v1(text[], text[], float8, text[], text[], ` +
            `text[], float8[], text, text[], boolean) RETURNS int[] LANGUAGE sql ` +
            `AS 'SELECT NULL::int[]'`,
        );
        await sql.unsafe(
          `CREATE VIEW public.uses_it AS SELECT public.jobs_commit_v1('{}', '{}', 0, '{}', ` +
            `'{}', '{}', '{}', '', '{}', false) AS x`,
        );
        await sql.unsafe(`RESET ROLE`);
        await sql.unsafe(`CREATE SEQUENCE public.drops`);
        await sql.unsafe(
          `CREATE FUNCTION public.count_drops() RETURNS event_trigger LANGUAGE plpgsql AS ` +
            `$$BEGIN PERFORM nextval('public.drops'); END$$`,
        );
        await sql.unsafe(
          `CREATE EVENT TRIGGER count_drops ON ddl_command_start ` +
            `WHEN TAG IN ('DROP FUNCTION', 'DROP ROUTINE') EXECUTE FUNCTION public.count_drops()`,
        );
      });
      for (let i = 0; i < 10; i++) await checkedSet(store, ["n"], i);
      assert.equal((await store.get(["n"]))?.value, 9);
      await withAdmin(own, async (sql) => {
        const [row] = await sql.unsafe(
          `SELECT CASE WHEN is_called THEN last_value ELSE 0 END::int AS n FROM public.drops`,
        );
        assert.equal(row.n, 1);
      });
    } finally {
      await store.close();
      await withAdmin(own, async (sql) => {
        await sql.unsafe(`DROP EVENT TRIGGER IF EXISTS count_drops`);
        await sql.unsafe(`DROP OWNED BY ${role}`).catch(() => {});
      });
      await withAdmin(url, (sql) => sql.unsafe(`DROP ROLE IF EXISTS ${role}`).then());
    }
  });
});

const SEARCH_PATH = "postgres functions: a function planted in a schema on the search_path " +
  "(an overload of a built-in) runs in none of the store's statements and functions";
roleTest(SEARCH_PATH, async (url) => {
  // A database of its own, whose default search_path puts the trap's schema after public.
  await withOwnDatabase(url, "searchpath", async (own) => {
    const role = `fs_trap_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
    const db = new URL(own).pathname.slice(1);
    const hits = async () => {
      let n = -1;
      await withAdmin(own, async (sql) => {
        n = (await sql.unsafe(`SELECT count(*)::int AS n FROM trap.hits`))[0].n;
      });
      return n;
    };
    try {
      await withAdmin(own, async (sql) => {
        await sql.unsafe(`CREATE ROLE ${role}`);
        await sql.unsafe(`CREATE SCHEMA trap AUTHORIZATION ${role}`);
        await sql.unsafe(`GRANT USAGE ON SCHEMA trap TO PUBLIC`);
        await sql.unsafe(`SET ROLE ${role}`);
        await sql.unsafe(`CREATE TABLE trap.hits (who name)`);
        await sql.unsafe(`GRANT INSERT ON trap.hits TO PUBLIC`);
        // Takes (text, integer) as the statements pass them: a closer match than the
        // built-in's (text, bigint).
        await sql.unsafe(
          `CREATE FUNCTION trap.hashtextextended(t text, seed integer) RETURNS bigint ` +
            `LANGUAGE plpgsql AS $$BEGIN INSERT INTO trap.hits VALUES (current_user); ` +
            `RETURN pg_catalog.hashtextextended(t, seed::bigint); END$$`,
        );
        await sql.unsafe(`RESET ROLE`);
        await sql.unsafe(
          `ALTER DATABASE "${db}" SET search_path = "$user", public, trap`,
        );
      });
      const open = (table: string, feed: boolean) =>
        openStore(
          {
            plugin: "postgres",
            url: own,
            schema: "app",
            table,
            changes: feed ? { keep: "1d" } : undefined,
          } as { plugin: string },
        );
      const plain = await open("jobs", false);
      const feed = await open("feedy", true);
      try {
        for (const store of [plain, feed]) {
          await store.set(["a"], 1);
          await checkedSet(store, ["a"], 2);
          await store.set(["q", "a"], 1);
          assert.deepEqual(await claimDelete(store, ["q"]), ["q", "a"]);
        }
        assert.equal(await hits(), 0, "the store's statements and functions");
        // The functions pin it themselves: called from a session of the database's default.
        await withAdmin(own, async (sql) => {
          const [row] = await sql.unsafe(`SELECT current_setting('search_path') AS p`);
          assert.match(row.p, /trap/);
          await sql.unsafe(
            `SELECT app.feedy_feed_set_v3($1, '1', 'v1', NULL, 0, 'by', 'topic')`,
            [new Uint8Array([0x02, 0x7a, 0x00])],
          );
        });
        assert.equal(await hits(), 0, "a function called from a session of another search_path");
      } finally {
        await plain.close();
        await feed.close();
      }
    } finally {
      await withAdmin(own, async (sql) => {
        await sql.unsafe(`DROP SCHEMA IF EXISTS trap CASCADE`);
        await sql.unsafe(`DROP OWNED BY ${role}`).catch(() => {});
      });
      await withAdmin(url, (sql) => sql.unsafe(`DROP ROLE IF EXISTS ${role}`).then());
    }
  });
});

dropTestSchema();
