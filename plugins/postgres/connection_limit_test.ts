/**
 * A server at its connection limit (`max_connections`, or a role's or a
 * database's `CONNECTION LIMIT`: SQLSTATE 53300) refuses a store's new
 * connections: opening the store, or a call that needs one more connection,
 * fails with a `StoreUnavailableError` that says which limit and what to
 * change (the store's `max`, how many connections a process opens), having
 * sent nothing; once a connection is free the store works again.
 *
 * The limit is a role's `CONNECTION LIMIT` (superusers are exempt from every
 * limit but max_connections, which the tests cannot lower on a shared server).
 */
import assert from "node:assert/strict";
import { openStore, StoreUnavailableError } from "../../mod.ts";
import type { Store } from "../../src/store/types.ts";
import {
  asRole,
  cliErrors,
  dropTestSchema,
  newTable,
  pgTest,
  SCHEMA,
  withAdmin,
} from "./_test_utils.ts";

/**
 * Run `fn` with the URL of a new login role allowed `limit` connections at
 * once, owning {@linkcode SCHEMA} (so it may create its tables there). The
 * role is dropped afterwards.
 */
async function withLimitedConnections(
  url: string,
  limit: number,
  fn: (limitedUrl: string) => Promise<void>,
): Promise<void> {
  const role = `fs_connlimit_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  await withAdmin(url, async (sql) => {
    await sql.unsafe(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT ${limit}`);
    await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${SCHEMA}"`);
    await sql.unsafe(`GRANT ALL ON SCHEMA "${SCHEMA}" TO ${role}`);
  });
  await asRole(url, role, fn);
}

/** What every refusal for the limit says: which limit, what the store opens, what to change. */
function assertSaysWhatToChange(err: unknown, store: string): void {
  assert.ok(err instanceof StoreUnavailableError, `expected StoreUnavailableError, got ${err}`);
  assert.equal(err.store, store);
  assert.match(err.message, /too many connections for role/);
  assert.match(
    err.message,
    /connection limit is reached \(max_connections, or the CONNECTION LIMIT/,
  );
  assert.match(
    err.message,
    /opens up to 5 connections in each process \(max 4, plus one for LISTEN\)/,
  );
  assert.match(err.message, /give the store a smaller max/);
}

function openLimited(url: string, table: string, name: string): Promise<Store> {
  return openStore({ plugin: "postgres", url, schema: SCHEMA, table } as { plugin: string }, {
    name,
  });
}

pgTest(
  "postgres: a store opened at the server's connection limit says which limit and what to change",
  async (url) => {
    await withLimitedConnections(url, 1, async (limited) => {
      const table = newTable("connlimit_open");
      // The one connection the role may have.
      const first = await openLimited(limited, table, "first");
      try {
        const err = await openLimited(limited, table, "second").catch((e) => e);
        assertSaysWhatToChange(err, "second");
        assert.match(err.message, /^Cannot open store "second": PostgreSQL at .* refused: /);
      } finally {
        await first.close();
      }
      // The limit is free again: the store opens.
      const again = await openLimited(limited, table, "second");
      await again.close();
    });
  },
);

pgTest(
  "postgres: a commit that needs one more connection than the limit allows fails as unavailable, sends nothing, and works once one is free",
  async (url) => {
    await withLimitedConnections(url, 2, async (limited) => {
      const table = newTable("connlimit_commit");
      const store = await openLimited(limited, table, "main");
      try {
        // The store holds one connection (single statements); another session takes the second.
        const other = await openLimited(limited, table, "other");
        let err: unknown;
        try {
          // A checked commit of two keys runs on a connection for transactions: a new one, refused.
          err = await store.atomic().check(["k"], null).set(["k"], 1).set(["j"], 2).commit()
            .catch((e) => e);
        } finally {
          await other.close();
        }
        assertSaysWhatToChange(err, "main");
        assert.match((err as Error).message, /nothing was sent$/);
        assert.equal(await store.get(["k"]), null);
        assert.equal(await store.get(["j"]), null);
        // A connection is free now: the same commit goes through.
        const done = await store.atomic().check(["k"], null).set(["k"], 1).set(["j"], 2).commit();
        assert.equal(done.ok, true);
        assert.equal((await store.get(["k"]))?.value, 1);
        assert.equal((await store.get(["j"]))?.value, 2);
      } finally {
        await store.close();
      }
    });
  },
);

pgTest(
  "postgres: the CLI names the connection limit and the store's max in one line, exit 1",
  async (url) => {
    await withLimitedConnections(url, 1, async (limited) => {
      const table = newTable("connlimit_cli");
      const holder = await openLimited(limited, table, "holder");
      try {
        const { code, lines } = await cliErrors(
          `stores:\n  main: { plugin: postgres, url: "${limited}", schema: ${SCHEMA}, table: ${table} }\n`,
          ["state", "get", "k"],
        );
        assert.equal(code, 1);
        assert.equal(lines.length, 1, lines.join("\n"));
        assert.match(lines[0], /^error: Cannot open store "main": .*too many connections for role/);
        assert.match(lines[0], /max 4, plus one for LISTEN\): give the store a smaller max/);
      } finally {
        await holder.close();
      }
    });
  },
);

dropTestSchema();
