import assert from "node:assert/strict";
import postgres from "postgres";
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
 * elsewhere): each is claimed, and `get` of its companion answers the companion entry.
 */
async function claimsOverNul(store: Store): Promise<void> {
  await store.set(["q", "a"], { who: "x\u0000y", v: 1 });
  await store.set(["q", "b"], { who: "w1", v: 2, note: "\u0000" });
  await store.set(["q", "c"], { who: "w1", v: 3 });
  await store.set(["who", "w1"], { n: 1 });
  await store.set(["who", "x\u0000y"], { n: 0 });
  const seen: unknown[] = [];
  for (let i = 0; i < 3; i++) {
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
  ]);
}

pgTest(
  "postgres functions: a claim with a companion over a value holding \\u0000 claims it (function and statement)",
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
  const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
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

const PLANTED = "postgres functions: one planted by a role that may create in the schema is " +
  "never called (as the table's owner, or as a role that may not create)";
if (PG_URL !== undefined && !canCreateRoles) {
  Deno.test({
    name: `${PLANTED} (ignored: the test login may not create roles)`,
    ignore: true,
    fn: () => {},
  });
} else {
  pgTest(PLANTED, async (url) => {
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
        const planter = postgres(planterUrl.href, { max: 1, onnotice: () => {} });
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
}

dropTestSchema();
