import assert from "node:assert/strict";
import { join } from "node:path";
import { openClient } from "./client.ts";
import { openStore } from "../../src/plugin.ts";
import { encodeKey } from "../../src/store/keys.ts";
import { PostgresDriver } from "./mod.ts";
import { fakeClock } from "../../src/testing/clock.ts";
import { feedSetV2Ddl } from "./testdata/feed_set_v2.ts";
import {
  dropTestSchema,
  LOCK_CLASS,
  newTable,
  openPg,
  pgTest,
  ROOT,
  SCHEMA,
  TESTDATA,
  untilWaitingOnLock,
  whileLockHeld,
  withAdmin,
  withLimitedRole,
} from "./_test_utils.ts";
import { exitOf, killQuietly, within } from "../../tests/_deadline.ts";

// PostgresDriver under concurrency: statements per commit, the table lock,
// and compare-and-set across two OS processes (needs a server: see
// _test_utils.ts).

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
        // The pool for transactions opens its connection (and reads the types) on first use.
        assert.ok((await store.atomic().set(["warm2"], 0).delete(["absent"]).commit()).ok);
        let before = statements();
        await store.set(["one"], 1);
        assert.equal(statements() - before, 1, "a plain set is one statement");

        const op = store.atomic();
        for (let i = 0; i < 10_000; i++) op.set(["big", String(i).padStart(5, "0")], { i });
        before = statements();
        assert.ok((await op.commit()).ok);
        assert.equal(statements() - before, 1, "an unchecked batch of sets is one statement");
        assert.equal(await store.count(["big"]), 10_000);

        // A delete locks in a statement of its own first (a row committed while a statement
        // waits is not in its snapshot): the table's commit function does both, one statement.
        const withDelete = store.atomic().set(["big", "00000"], { i: 0 }).delete(["warm"]);
        before = statements();
        assert.ok((await withDelete.commit()).ok);
        assert.equal(statements() - before, 1, "one call of the commit function");
        assert.equal(await store.get(["warm"]), null);

        // A lone compare-and-set is one statement, whichever its check.
        const one = (await store.get(["one"]))!;
        before = statements();
        assert.ok((await store.set(["one"], 2, { ifVersion: one.version })).ok);
        assert.ok((await store.set(["new"], 1, { ifVersion: null })).ok);
        assert.equal((await store.set(["new"], 2, { ifVersion: null })).ok, false);
        assert.equal((await store.set(["one"], 3, { ifVersion: one.version })).ok, false);
        const del = store.atomic().check(["new"], (await store.get(["new"]))!.version);
        const afterRead = statements();
        assert.ok((await del.delete(["new"]).commit()).ok);
        assert.equal(statements() - afterRead, 1, "a checked delete is one statement");
        assert.equal(afterRead - 1 - before, 4, "each lone compare-and-set is one statement");
        assert.equal((await store.get(["one"]))?.value, 2);
        assert.equal(await store.get(["new"]), null);

        const checked = store.atomic().check(["one"], (await store.get(["one"]))!.version);
        for (let i = 0; i < 10_000; i++) {
          checked.set(["big", String(i).padStart(5, "0")], { i: -i });
        }
        before = statements();
        assert.ok((await checked.commit()).ok);
        assert.equal(
          statements() - before,
          1,
          "a checked batch is one call of the commit function",
        );
        assert.deepEqual((await store.get(["big", "09999"]))?.value, { i: -9999 });

        // A claim: BEGIN and the claim-read function (the table's lock and the candidates),
        // then the commit function and COMMIT, each pair pipelined: two round trips.
        await store.set(["q", "a"], { k: "a" });
        before = statements();
        const claimed = await store.claimFirst!(["q"], (entry, op) => {
          op.check(entry.key, entry.version).delete(entry.key).set(["done", "a"], 1);
          return Promise.resolve(true);
        });
        assert.ok(claimed?.result.ok);
        assert.equal(
          statements() - before,
          4,
          "BEGIN, the read function, the commit function, COMMIT",
        );
        assert.equal((await store.get(["done", "a"]))?.value, 1);
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
      const sql = openClient(url, { max: 2 });
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
          WHERE locktype = 'advisory' AND NOT granted AND classid = ${LOCK_CLASS}
            AND objid::bigint = (hashtext(${`${SCHEMA}.${table}`})::bigint & 4294967295)`;
          // Only this table's lock: other test files run beside this one (--parallel).
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
  "PostgresDriver: checked commits on different keys proceed while one on a locked key waits",
  async (url) => {
    const table = newTable("keylock");
    const store = await openPg(url, table);
    try {
      for (const k of ["a", "b", "k"]) await store.set([k], 0);
      const sql = openClient(url, { max: 2 });
      try {
        const lockId = `hashtext('${SCHEMA}.${table}')`;
        const keyLock = `hashtextextended($1, ${lockId})`;
        const hexOf = (key: string[]) =>
          Array.from(encodeKey(key), (b) => b.toString(16).padStart(2, "0")).join("");
        const holder = await sql.reserve();
        await holder.unsafe("BEGIN");
        // What a commit on ["k"] takes before reading its checks.
        await holder.unsafe(`SELECT pg_advisory_xact_lock_shared(${LOCK_CLASS}, ${lockId})`);
        await holder.unsafe(`SELECT pg_advisory_xact_lock(${keyLock})`, [hexOf(["k"])]);
        const cas = async (key: string[], value: number) => {
          const e = (await store.get(key))!;
          // Two keys checked and written: the general path (BEGIN, locks, statement, COMMIT).
          return await store.atomic().check(key, e.version).set(key, value)
            .set([...key, "side"], value).commit();
        };
        let settled = false;
        const blocked = cas(["k"], 1).finally(() => settled = true);
        const waiting = async () => {
          const [row] = await sql.unsafe(
            `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
               AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) =
                 ${keyLock}`,
            [hexOf(["k"])],
          );
          return row.n === 1;
        };
        await waitFor("the commit on the locked key to wait for its lock", waiting);
        // Commits on other keys, both paths (general and lone compare-and-set), go through.
        assert.ok((await cas(["a"], 1)).ok);
        assert.ok((await cas(["b"], 1)).ok);
        const a = (await store.get(["a"]))!;
        assert.ok((await store.set(["a"], 2, { ifVersion: a.version })).ok);
        assert.ok((await store.set(["c"], 1)).ok);
        // A lone compare-and-set on the locked key waits too.
        const k = (await store.get(["k"]))!;
        let loneSettled = false;
        const lone = store.set(["k"], 5, { ifVersion: k.version }).finally(() =>
          loneSettled = true
        );
        await waitFor("both commits on the locked key to wait", async () => {
          const [row] = await sql.unsafe(
            `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
               AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) =
                 ${keyLock}`,
            [hexOf(["k"])],
          );
          return row.n === 2;
        });
        assert.equal(settled, false);
        assert.equal(loneSettled, false);
        await holder.unsafe("COMMIT");
        holder.release();
        // Exactly one of the two compare-and-sets of ["k"] (same version read) wins.
        const results = [await blocked, await lone];
        assert.equal(results.filter((r) => r.ok).length, 1, JSON.stringify(results));
        assert.deepEqual((await store.get(["a"]))?.value, 2);
        assert.deepEqual((await store.get(["b", "side"]))?.value, 1);
      } finally {
        await sql.end({ timeout: 5 });
      }
    } finally {
      await store.close();
    }
  },
);

pgTest(
  "Store.claimFirst() on postgres: concurrent claims get distinct entries, never wait for one",
  async (url) => {
    const table = newTable("claim");
    const store = await openPg(url, table);
    try {
      for (const k of ["a", "b", "c"]) await store.set(["q", k], { k });
      await store.set(["other"], 1);
      assert.ok(typeof store.claimFirst === "function");
      // The first claim holds "a" (its take() has not resolved yet)...
      const holding = Promise.withResolvers<void>();
      const offeredFirst = Promise.withResolvers<void>();
      const first = store.claimFirst<{ k: string }>(["q"], async (entry, op) => {
        offeredFirst.resolve();
        await holding.promise;
        op.check(entry.key, entry.version).delete(entry.key).set(["done", entry.value.k], 1);
        return true;
      });
      await offeredFirst.promise;
      // ... so a second claim is offered "b" at once; it passes over it and takes "c".
      const offered: string[] = [];
      const second = await store.claimFirst<{ k: string }>(["q"], (entry, op) => {
        offered.push(entry.value.k);
        if (entry.value.k === "b") return Promise.resolve(false);
        op.check(entry.key, entry.version).delete(entry.key).set(["done", entry.value.k], 1);
        return Promise.resolve(true);
      });
      assert.deepEqual(offered, ["b", "c"]);
      assert.deepEqual(second?.key, ["q", "c"]);
      assert.ok(second?.result.ok);
      holding.resolve();
      const firstResult = await first;
      assert.deepEqual(firstResult?.key, ["q", "a"]);
      assert.ok(firstResult?.result.ok);
      assert.deepEqual(
        (await store.getMany([["q", "a"], ["q", "b"], ["q", "c"]])).map((e) => e?.key ?? null),
        [
          null,
          ["q", "b"],
          null,
        ],
      );
      assert.equal((await store.get(["done", "a"]))?.value, 1);
      // A failed check writes nothing and reports the conflict.
      const b = (await store.get(["q", "b"]))!;
      const lost = await store.claimFirst(["q"], (entry, op) => {
        op.check(["other"], b.version).delete(entry.key);
        return Promise.resolve(true);
      });
      assert.equal(lost?.result.ok, false);
      assert.deepEqual(lost?.result.ok === false ? lost.result.conflicts : [], [["other"]]);
      assert.ok(await store.get(["q", "b"]));
      // Nothing to offer (or all passed over): null.
      assert.equal(await store.claimFirst(["nothing"], () => Promise.resolve(true)), null);
      assert.equal(await store.claimFirst(["q"], () => Promise.resolve(false)), null);
      // take() must not commit the operation, nor clear a range.
      await assert.rejects(
        store.claimFirst(["q"], async (_e, op) => {
          await op.set(["x"], 1).commit();
          return true;
        }),
        /the claim commits the operation/,
      );
      await assert.rejects(
        store.claimFirst(["q"], (_e, op) => {
          op.clear(["done"]);
          return Promise.resolve(true);
        }),
        /cannot clear a range/,
      );
      assert.equal(await store.get(["x"]), null);
      assert.equal(await store.count(["done"]), 2);
    } finally {
      await store.close();
    }
  },
);

pgTest(
  "Store.claimFirst() on postgres never waits for a key lock: a cancel waiting for the claimed row goes first",
  async (url) => {
    // The interleaving of a cancel and a claim of the same queued run: the claim holds the
    // entry's row (FOR UPDATE) while the cancel holds the run's and the entry's key locks and
    // waits for that row. A claim that then waited for the run's key lock would deadlock
    // until PostgreSQL's deadlock check (deadlock_timeout, 1 s) aborted one of them; it
    // tries the locks instead, writes nothing, and lets the cancel through.
    const table = newTable("claimlock");
    const store = await openPg(url, table);
    try {
      await store.set(["q", "a"], { id: "a" });
      await store.set(["run", "a"], "queued");
      const run = (await store.get(["run", "a"]))!;
      assert.ok(typeof store.claimFirst === "function");
      const offered = Promise.withResolvers<void>();
      const go = Promise.withResolvers<void>();
      const claim = store.claimFirst<{ id: string }>(["q"], async (entry, op) => {
        offered.resolve();
        await go.promise;
        op.check(entry.key, entry.version).delete(entry.key)
          .check(["run", "a"], run.version).set(["run", "a"], "running");
        return true;
      });
      await offered.promise; // the claim holds the entry's row
      const cancel = store.atomic().check(["run", "a"], run.version).set(["run", "a"], "cancelled")
        .delete(["q", "a"]).commit();
      // The cancel has its key locks and waits for the entry's row (held by the claim).
      await withAdmin(url, (sql) =>
        waitFor("the cancel to wait for the claimed row", async () => {
          const [row] = await sql`SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple')
            AND query LIKE ${`%${table}%`}`;
          return row.n > 0;
        }));
      go.resolve();
      const claimed = await claim;
      assert.deepEqual(claimed?.key, ["q", "a"]);
      assert.equal(claimed?.result.ok, false, "the claim wrote nothing: a key's lock was busy");
      assert.deepEqual(claimed?.result.ok === false ? claimed.result.conflicts : null, []);
      const cancelled = await cancel;
      assert.ok(
        cancelled.ok,
        "the cancel was not aborted as a deadlock victim, nor lost its check",
      );
      assert.equal((await store.get(["run", "a"]))?.value, "cancelled");
      assert.equal(await store.get(["q", "a"]), null);
      assert.equal(await store.claimFirst(["q"], () => Promise.resolve(true)), null);
    } finally {
      await store.close();
    }
  },
);

/** The signature of the commit function of `table` in {@linkcode SCHEMA}, for `to_regprocedure`. */
function commitFunction(table: string): string {
  return `"${SCHEMA}"."${table}_commit_v1"(text[], text[], float8, text[], text[], text[], ` +
    `float8[], text, text[], boolean)`;
}

/** The signature of the claim-read function of `table` in {@linkcode SCHEMA}. */
function claimReadFunction(table: string): string {
  return `"${SCHEMA}"."${table}_claim_read_v1"(bytea, bytea, float8, int, bytea, bytea)`;
}

/** Whether the function of `signature` is there. */
async function functionExists(url: string, signature: string): Promise<boolean> {
  let found = false;
  await withAdmin(url, async (sql) => {
    const [row] = await sql.unsafe(`SELECT to_regprocedure($1) IS NOT NULL AS found`, [
      signature,
    ]);
    found = row.found;
  });
  return found;
}

/** Whether the commit function of `table` is there. */
function commitFunctionExists(url: string, table: string): Promise<boolean> {
  return functionExists(url, commitFunction(table));
}

/** Add 1 to the number at `key` with a checked commit (a general one: it deletes too). */
async function increment(store: Awaited<ReturnType<typeof openPg>>, key: string[]) {
  for (;;) {
    const entry = await store.get<number>(key);
    const result = await store.atomic().check(key, entry?.version ?? null)
      .set(key, (entry?.value ?? 0) + 1).delete(["absent"]).commit();
    if (result.ok) return;
  }
}

pgTest(
  "postgres commit and claim-read functions: a dropped one is made again, and commits and claims meanwhile write exactly what they did",
  async (url) => {
    const table = newTable("commitfn");
    const store = await openPg(url, table);
    const drop = () =>
      withAdmin(url, async (sql) => {
        await sql.unsafe(`DROP FUNCTION ${commitFunction(table)}`);
      });
    try {
      assert.equal(await commitFunctionExists(url, table), false, "none before a checked commit");
      await increment(store, ["n"]);
      assert.ok(await commitFunctionExists(url, table), "the first checked commit made it");
      await drop();
      await increment(store, ["n"]); // the pipelined transaction, then made again
      const n = (await store.get<number>(["n"]))!;
      const lost = await store.atomic().check(["n"], "0000").set(["n"], 100).delete(["absent"])
        .commit();
      assert.deepEqual(lost.ok === false ? lost.conflicts : null, [["n"]]);
      assert.ok(await commitFunctionExists(url, table), "made again");
      // A claim whose commit meets the function gone claims again, and makes it again.
      await store.set(["q", "a"], { k: "a" });
      await drop();
      let offers = 0;
      const claimed = await store.claimFirst!(["q"], (entry, op) => {
        offers++;
        op.check(entry.key, entry.version).delete(entry.key).check(["n"], n.version)
          .set(["n"], n.value + 1);
        return Promise.resolve(true);
      });
      assert.ok(claimed?.result.ok);
      assert.equal(offers, 2, "offered again after the first commit met no function");
      assert.ok(await commitFunctionExists(url, table), "made again by the claim");
      assert.equal(await store.get(["q", "a"]), null);
      assert.equal((await store.get(["n"]))?.value, 3);
      // The same when the claim's read meets its function gone.
      await store.set(["q", "b"], { k: "b" });
      await withAdmin(url, async (sql) => {
        await sql.unsafe(`DROP FUNCTION ${claimReadFunction(table)}`);
      });
      const second = await store.claimFirst!(["q"], (entry, op) => {
        op.check(entry.key, entry.version).delete(entry.key);
        return Promise.resolve(true);
      });
      assert.deepEqual(second?.key, ["q", "b"]);
      assert.ok(second?.result.ok);
      assert.equal(await store.get(["q", "b"]), null);
      assert.ok(
        await functionExists(url, claimReadFunction(table)),
        "the claim-read function made again",
      );
    } finally {
      await store.close();
    }
  },
);

pgTest(
  "postgres commit function: a role that may not create it commits and claims with the pipelined transaction, beside a process that calls the function, and no increment is lost",
  async (url) => {
    // What a fleet being upgraded does too: a process on older code (the pipelined
    // transaction) and one calling the function, on the same keys. Both take the same locks.
    const table = newTable("commitrole");
    const owner = await openPg(url, table);
    try {
      await owner.set(["n"], 0); // the table, and no function yet
      await withLimitedRole(url, table, async (limitedUrl) => {
        const limited = await openStore({
          plugin: "postgres",
          url: limitedUrl,
          schema: SCHEMA,
          table,
        });
        try {
          await increment(limited, ["n"]);
          assert.equal(await commitFunctionExists(url, table), false, "the role made none");
          await increment(owner, ["n"]);
          assert.ok(await commitFunctionExists(url, table), "the owner's process made it");
          const each = 40;
          await Promise.all([
            ...[limited, owner].map(async (store) => {
              for (let i = 0; i < each; i++) await increment(store, ["n"]);
            }),
          ]);
          assert.equal((await owner.get(["n"]))?.value, 2 + 2 * each);
          // A claim of the limited role: its commit as before the function.
          await owner.set(["q", "a"], { k: "a" });
          const claimed = await limited.claimFirst!(["q"], (entry, op) => {
            op.check(entry.key, entry.version).delete(entry.key).set(["done", "a"], 1);
            return Promise.resolve(true);
          });
          assert.ok(claimed?.result.ok);
          assert.equal(await owner.get(["q", "a"]), null);
          assert.equal((await owner.get(["done", "a"]))?.value, 1);
          // The functions there, but not for this role to call: another process of the role
          // commits and claims all the same.
          await withAdmin(url, async (sql) => {
            await sql.unsafe(
              `REVOKE EXECUTE ON FUNCTION ${commitFunction(table)}, ` +
                `${claimReadFunction(table)} FROM PUBLIC`,
            );
          });
          const revoked = await openStore({
            plugin: "postgres",
            url: limitedUrl,
            schema: SCHEMA,
            table,
          });
          try {
            await increment(revoked, ["n"]);
            assert.equal((await owner.get(["n"]))?.value, 3 + 2 * each);
            await owner.set(["q", "b"], { k: "b" });
            const again = await revoked.claimFirst!(["q"], (entry, op) => {
              op.check(entry.key, entry.version).delete(entry.key);
              return Promise.resolve(true);
            });
            assert.deepEqual(again?.key, ["q", "b"]);
            assert.ok(again?.result.ok);
            assert.equal(await owner.get(["q", "b"]), null);
          } finally {
            await revoked.close();
          }
        } finally {
          await limited.close();
        }
      });
    } finally {
      await owner.close();
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
      within(Promise.all(outputs.map((o) => o.isReady)), "both children ready", {
        onHang: () => children.forEach(killQuietly),
      }),
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
    const statuses = await Promise.all(children.map((c) => exitOf(c)));
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

pgTest(
  "stores on different tables of a schema that does not exist yet can be opened at once (found by the kill tests)",
  async (url) => {
    // Each open created the schema under its own table's lock, so two first opens raced on
    // CREATE SCHEMA IF NOT EXISTS and one failed: 'duplicate key value violates unique
    // constraint "pg_namespace_nspname_index"'.
    for (let round = 0; round < 10; round++) {
      const schema = `${SCHEMA}_new${round}`;
      try {
        const opened = await Promise.allSettled(
          [0, 1, 2, 3].map((i) =>
            openStore({ plugin: "postgres", url, schema, table: `t${i}` }, { name: `s${i}` })
          ),
        );
        for (const result of opened) if (result.status === "fulfilled") await result.value.close();
        const failed = opened.flatMap((r) => r.status === "rejected" ? [String(r.reason)] : []);
        assert.deepEqual(failed, [], `round ${round}`);
      } finally {
        const admin = openClient(url, { max: 1 });
        await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.end({ timeout: 5 });
      }
    }
  },
);

pgTest(
  "postgres with a change feed: native claims and writes at once record every change, gap-free",
  async (url) => {
    const table = newTable("claimfeed");
    const spec = { plugin: "postgres", url, schema: SCHEMA, table, changes: { keep: "30d" } };
    const a = await openStore(spec);
    const b = await openStore(spec);
    try {
      assert.equal(typeof a.claimFirst, "function", "a store with a feed claims natively");
      for (let i = 0; i < 20; i++) await a.set(["q", String(i).padStart(2, "0")], { i });
      const claimer = (store: typeof a) => async () => {
        const taken: number[] = [];
        for (;;) {
          const got = await store.claimFirst!<{ i: number }>(["q"], (entry, op) => {
            op.check(entry.key, entry.version).delete(entry.key).set([
              "done",
              String(entry.value.i),
            ], 1);
            return Promise.resolve(true);
          });
          if (got === null) return taken;
          if (got.result.ok) taken.push(Number(got.key[1]));
        }
      };
      const writer = (store: typeof a, name: string) => async () => {
        for (let i = 0; i < 15; i++) await store.set(["w", name, String(i)], i);
      };
      const [ta, tb] = await Promise.all([
        claimer(a)(),
        claimer(b)(),
        writer(a, "a")(),
        writer(b, "b")(),
      ]);
      assert.deepEqual([...ta, ...tb].sort((x, y) => x - y), [...Array(20).keys()]);
      const changes = await Array.fromAsync(a.changes({}));
      // 20 queued sets, 20 claims (a delete and a set each), 30 writes.
      assert.equal(changes.length, 20 + 40 + 30);
      assert.deepEqual(changes.map((c) => c.seq), changes.map((_, i) => i + 1));
      assert.deepEqual(await a.feedInfo(), {
        enabled: true,
        firstSeq: 1,
        lastSeq: 90,
        keep: "30d",
      });
      // Each key's entries chain: every change's previousVersion is the version before it.
      const last = new Map<string, string | null>();
      for (const c of changes) {
        const id = JSON.stringify(c.key);
        assert.equal(c.previousVersion, last.get(id) ?? null, `previous version of #${c.seq}`);
        last.set(id, c.version);
      }
      assert.equal(await a.count(["q"]), 0);
      assert.equal(await a.count(["done"]), 20);
    } finally {
      await a.close();
      await b.close();
    }
  },
);

pgTest(
  "postgres with a change feed: expired values, deletes of absent keys and the head's since, as the core's fallback writes them",
  async (url) => {
    const clock = fakeClock();
    const t0 = clock.now();
    const store = await openStore(
      {
        plugin: "postgres",
        url,
        schema: SCHEMA,
        table: newTable("feedexp"),
        changes: { keep: "30d" },
      },
      { clock },
    );
    try {
      await store.set(["k"], "a", { expireIn: 1000 });
      const first = (await store.get(["k"]))!;
      clock.advance(2000);
      await store.delete(["k"]); // expired: no change
      await store.delete(["never"]); // absent: no change
      await store.set(["k"], "b");
      const second = (await store.get(["k"]))!;
      await store.atomic().set(["x"], 1).delete(["k"]).set(["x"], 2).commit();
      const changes = await Array.fromAsync(store.changes({}));
      assert.deepEqual(
        changes.map((c) => [c.seq, c.op, c.key, c.value ?? null, c.previousVersion, c.at - t0]),
        [
          [1, "set", ["k"], "a", null, 0],
          [2, "set", ["k"], "b", null, 2000],
          [3, "delete", ["k"], null, second.version, 2000],
          [4, "set", ["x"], 2, null, 2000],
        ],
      );
      assert.equal(changes[0].expiresAt, t0 + 1000);
      assert.equal(changes[0].version, first.version);
      assert.equal(changes[1].version, second.version);
      assert.deepEqual(await store.feedInfo(), {
        enabled: true,
        firstSeq: 1,
        lastSeq: 4,
        keep: "30d",
      });
      // The head kept the time of the first entry: getAt refuses earlier times.
      await assert.rejects(store.getAt(["k"], { time: t0 - 1 }), RangeError);
      assert.equal((await store.getAt(["k"], { seq: 1 }))?.value, "a");
      assert.equal(await store.getAt(["k"], { seq: 3 }), null);
    } finally {
      await store.close();
    }
  },
);

pgTest(
  "postgres with a change feed: a commit is one statement, and concurrent ones of a process go together, each with its own checks",
  async (url) => {
    await withCountingProxy(url, async (proxyUrl, statements) => {
      const store = await openStore({
        plugin: "postgres",
        url: proxyUrl,
        schema: SCHEMA,
        table: newTable("feedbatch"),
        changes: { keep: "30d" },
      });
      try {
        await store.set(["warm"], 0); // creates the feed-commit function
        let before = statements();
        await store.set(["one"], 1);
        assert.equal(statements() - before, 1, "a set with the feed is one statement");

        const stale = (await store.get(["one"]))!.version;
        await store.set(["one"], 2);
        // A first wave of writers: its batches tell the store that its writers come together.
        await Promise.all(Array.from({ length: 4 }, (_, i) => store.set(["wave", String(i)], i)));
        before = statements();
        const results = await Promise.all([
          ...Array.from({ length: 15 }, (_, i) => store.set(["many", String(i)], i)),
          // A compare-and-set against a version that is gone, among them: it alone fails.
          store.atomic().check(["one"], stale).set(["one"], 3).set(["lost"], 1).commit(),
        ]);
        const sent = statements() - before;
        assert.equal(sent, 1, "16 feed commits issued at once (after a wave) go in one statement");
        assert.ok(results.slice(0, 15).every((r) => r.ok));
        const failed = results[15];
        assert.equal(failed.ok, false);
        assert.deepEqual(!failed.ok && failed.conflicts, [["one"]]);
        assert.equal((await store.get(["one"]))?.value, 2);
        assert.equal(await store.get(["lost"]), null);

        const changes = await Array.fromAsync(store.changes({}));
        assert.deepEqual(changes.map((c) => c.seq), changes.map((_, i) => i + 1));
        assert.equal(changes.length, 7 + 15, "nothing recorded for the failed compare-and-set");
        assert.deepEqual(
          changes.slice(7).map((c) => c.key[1]).sort((a, b) => Number(a) - Number(b)),
          Array.from({ length: 15 }, (_, i) => String(i)),
        );
        for (const c of changes.slice(7)) {
          const entry = (await store.get(c.key))!;
          assert.equal(c.version, entry.version, `#${c.seq} carries its own commit's version`);
        }
      } finally {
        await store.close();
      }
    });
  },
);

pgTest(
  "postgres with a change feed: a dropped feed-commit function is made again, and the feed goes on without a gap",
  async (url) => {
    const table = newTable("feedfn");
    const spec = { plugin: "postgres", url, schema: SCHEMA, table, changes: { keep: "30d" } };
    const store = await openStore(spec);
    const fn = `"${SCHEMA}"."${table}_feed_commit_v2"`;
    const setFn = `"${SCHEMA}"."${table}_feed_set_v3"`;
    const signatures = [
      `${fn}(text[], text[], float8, text[], text[], text[], float8[], text, text[], text, ` +
      `text, text[])`,
      `${setFn}(bytea, text, text, float8, float8, text, text)`,
    ];
    const exists = async () => {
      let found = false;
      await withAdmin(url, async (sql) => {
        const [row] = await sql.unsafe(
          `SELECT to_regprocedure($1) IS NOT NULL AND to_regprocedure($2) IS NOT NULL AS found`,
          signatures,
        );
        found = row.found;
      });
      return found;
    };
    try {
      await store.set(["a"], 1);
      assert.ok(await exists(), "the first feed commit created the functions");
      await withAdmin(url, async (sql) => {
        await sql.unsafe(`DROP FUNCTION ${signatures.join(", ")}`);
      });
      await store.set(["a"], 2); // the pipelined transaction, as before the function existed
      await store.set(["b"], 3);
      assert.ok(await exists(), "made again");
      const changes = await Array.fromAsync(store.changes({}));
      assert.deepEqual(changes.map((c) => [c.seq, c.key, c.value]), [
        [1, ["a"], 1],
        [2, ["a"], 2],
        [3, ["b"], 3],
      ]);
      assert.equal(changes[1].previousVersion, changes[0].version);
      // Another process (a second store on the table) continues the same feed.
      const other = await openStore(spec);
      try {
        await other.delete(["a"]);
        assert.deepEqual((await other.feedInfo()).lastSeq, 4);
        const [last] = await Array.fromAsync(store.changes({ since: 3 }));
        assert.deepEqual([last.op, last.previousVersion], ["delete", changes[1].version]);
      } finally {
        await other.close();
      }
    } finally {
      await store.close();
    }
  },
);

pgTest(
  "postgres with a change feed: processes of the previous version (plain-set function v2) and of this one (v3) write one feed side by side, gap-free, in commit order",
  async (url) => {
    const table = newTable("feedv2");
    const spec = { plugin: "postgres", url, schema: SCHEMA, table, changes: { keep: "30d" } };
    const store = await openStore(spec);
    // A process of the previous version: its own connections, calling the function its
    // driver created and called for a plain set.
    const old = openClient(url, { max: 4 });
    try {
      await store.set(["k", "0"], "first"); // the tables, and this version's functions
      await withAdmin(url, async (sql) => {
        const [{ id }] = await sql.unsafe(`SELECT hashtext($1) AS id`, [`${SCHEMA}.${table}`]);
        await sql.unsafe(feedSetV2Ddl(SCHEMA, table, id));
      });
      const oldSet = (key: string[], value: unknown, version: string) =>
        old.unsafe(
          `SELECT "${SCHEMA}"."${table}_feed_set_v2"($1::bytea, $2::text, $3::text, ` +
            `$4::float8, $5::float8, $6::text, $7::text)`,
          [
            encodeKey(key),
            JSON.stringify(value),
            version,
            null,
            Date.now(),
            JSON.stringify({ actor: "v2" }),
            "flowstate_old",
          ] as never[],
        );
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 24; i++) {
        const key = ["k", String(i % 4)];
        writes.push(i % 2 === 0 ? oldSet(key, i, `v2-${i}`) : store.set(key, i));
      }
      await Promise.all(writes);
      const changes = await Array.fromAsync(store.changes({}));
      assert.deepEqual(
        changes.map((c) => c.seq),
        Array.from({ length: 25 }, (_, i) => i + 1),
        "one gap-free sequence",
      );
      assert.equal(changes.filter((c) => c.by.actor === "v2").length, 12);
      // Each key's entries chain: an entry's previous version is the one before it (the
      // numbering follows the order in which the commits took the head's lock).
      const last = new Map<string, string | null>();
      for (const c of changes) {
        const k = JSON.stringify(c.key);
        assert.equal(c.previousVersion, last.get(k) ?? null, `#${c.seq}: previous version`);
        last.set(k, c.version);
      }
      for (const [k, version] of last) {
        assert.equal((await store.get(JSON.parse(k)))?.version, version, `${k}: the last entry`);
      }
      let functions: string[] = [];
      await withAdmin(url, async (sql) => {
        const rows = await sql.unsafe(
          `SELECT p.proname FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace ` +
            `WHERE n.nspname = $1 AND p.proname LIKE $2 ORDER BY 1`,
          [SCHEMA, `${table}_feed_%`],
        );
        functions = rows.map((r) => r.proname);
      });
      assert.deepEqual(functions, [
        `${table}_feed_commit_v2`,
        `${table}_feed_set_v2`,
        `${table}_feed_set_v3`,
      ]);
    } finally {
      await old.end();
      await store.close();
    }
  },
);

pgTest(
  "postgres with a change feed: a role that may not create the feed-commit function writes the feed all the same, and the function continues that feed",
  async (url) => {
    const table = newTable("feednorole");
    const spec = { plugin: "postgres", url, schema: SCHEMA, table, changes: { keep: "30d" } };
    const fn = `${table}_feed_commit_v2`;
    // The tables (the feed's too), made by the owner with a first change; then the functions
    // go, and the limited role may not make them again.
    const made = await openStore(spec);
    await made.set(["init"], 0);
    await made.close();
    await withAdmin(url, async (sql) => {
      await sql.unsafe(
        `DROP FUNCTION "${SCHEMA}"."${fn}", "${SCHEMA}"."${table}_feed_set_v3"`,
      );
    });
    await withLimitedRole(url, table, async (limitedUrl) => {
      await withAdmin(url, async (sql) => {
        const role = new URL(limitedUrl).username;
        await sql.unsafe(
          `GRANT SELECT, INSERT, UPDATE, DELETE ON "${SCHEMA}"."${table}_feed" TO ${role}`,
        );
      });
      const store = await openStore({ ...spec, url: limitedUrl });
      try {
        await store.set(["a"], 1);
        await store.set(["a"], 2);
        await store.atomic().set(["b"], 1).delete(["a"]).commit();
      } finally {
        await store.close();
      }
    });
    let found = true;
    await withAdmin(url, async (sql) => {
      const [row] = await sql.unsafe(
        `SELECT count(*)::int AS n FROM pg_proc AS p JOIN pg_namespace AS n ` +
          `ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2`,
        [SCHEMA, fn],
      );
      found = row.n > 0;
    });
    assert.equal(found, false, "the limited role made no function");
    // The owner's process goes on with the function, from the same head.
    const owner = await openStore(spec);
    try {
      await owner.set(["a"], 3);
      const changes = await Array.fromAsync(owner.changes({ since: 1 }));
      assert.deepEqual(changes.map((c) => [c.seq, c.op, c.key]), [
        [2, "set", ["a"]],
        [3, "set", ["a"]],
        [4, "set", ["b"]],
        [5, "delete", ["a"]],
        [6, "set", ["a"]],
      ]);
      assert.equal(changes[1].previousVersion, changes[0].version);
      assert.equal(changes[3].previousVersion, changes[1].version);
      assert.equal(changes[4].previousVersion, null);
    } finally {
      await owner.close();
    }
  },
);

// --- Locks held by another session (lockTimeout) -----------------------------------

/** The error of a statement that waited longer than lockTimeout on `table`, for store "main". */
function lockTimeoutError(table: string, ms: number): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof Error, String(err));
    assert.match(err.message, /store "main"/);
    assert.ok(err.message.includes(`(table ${SCHEMA}.${table})`), err.message);
    assert.ok(
      err.message.includes(
        `a lock was held by another session for longer than lockTimeout (${ms} ms)`,
      ),
      err.message,
    );
    assert.match(err.message, /pg_stat_activity/);
    assert.match(err.message, /raise the store's lockTimeout option/);
    return true;
  };
}

pgTest(
  "postgres: a write blocked by another session's LOCK TABLE fails after lockTimeout, a checked commit too (no retry without end)",
  async (url) => {
    const table = newTable("locktable");
    const spec = { plugin: "postgres", url, schema: SCHEMA, table, lockTimeout: 200 };
    await using store = await openStore(spec, { name: "main" });
    await store.set(["k"], 1);
    await whileLockHeld(
      url,
      `LOCK TABLE "${SCHEMA}"."${table}" IN ACCESS EXCLUSIVE MODE`,
      [],
      "the statements waited for the lock to go",
      async () => {
        await assert.rejects(store.set(["k"], 2), lockTimeoutError(table, 200));
        await assert.rejects(store.get(["k"]), lockTimeoutError(table, 200));
        const checked = store.atomic().check(["k"], null).set(["k"], 3);
        await assert.rejects(checked.commit(), lockTimeoutError(table, 200));
      },
    );
    // Released: the store goes on.
    assert.equal((await store.get(["k"]))?.value, 1);
    await store.set(["k"], 4);
    assert.equal((await store.get(["k"]))?.value, 4);
  },
);

pgTest(
  "postgres: a write to a row another session holds in an open transaction fails after the default lockTimeout (5000 ms)",
  async (url) => {
    const table = newTable("lockrow");
    await using store = await openStore({ plugin: "postgres", url, schema: SCHEMA, table }, {
      name: "main",
    });
    await store.set(["k"], 1);
    // An "idle in transaction" session holding the row's lock.
    await whileLockHeld(
      url,
      `SELECT key FROM "${SCHEMA}"."${table}" FOR UPDATE`,
      [],
      "the write waited for the row's lock to go",
      async () => {
        await assert.rejects(store.set(["k"], 2), lockTimeoutError(table, 5000));
      },
    );
    await store.set(["k"], 3);
    assert.equal((await store.get(["k"]))?.value, 3);
  },
);

pgTest(
  "postgres: with lockTimeout 0, a get, list, query, set, compare-and-set and delete waiting for another session's lock end at once when their signal aborts, writing nothing",
  async (url) => {
    const table = newTable("lockabort");
    const spec = { plugin: "postgres", url, schema: SCHEMA, table, lockTimeout: 0 };
    await using store = await openStore(spec, { name: "main" });
    assert.equal(store.capabilities.abort, true);
    const { version } = await store.set(["k"], 1);
    assert.ok(version !== undefined);
    const calls: [string, (signal: AbortSignal) => Promise<unknown>][] = [
      ["set", (signal) => store.set(["k"], 2, { signal })],
      ["compare-and-set", (signal) => store.set(["k"], 3, { ifVersion: version, signal })],
      ["delete", (signal) => store.delete(["k"], { signal })],
      ["set of a new key", (signal) => store.set(["new"], 4, { signal })],
      ["get", (signal) => store.get(["k"], { signal })],
      ["list", (signal) => Array.fromAsync(store.list({ prefix: [], signal }))],
      ["query", (signal) => store.query({ where: [{ path: "n", op: "eq", value: 1 }], signal })],
    ];
    const givenUp = (name: string) => (err: unknown) => {
      assert.ok(err instanceof Error, String(err));
      assert.equal(err.name, "AbortError", `${name}: ${err.message}`);
      assert.match(err.message, /store "main" .*: given up, its signal aborted/);
      assert.equal(err.cause, "stopped");
      return true;
    };
    await withAdmin(url, async (watcher) => {
      // The table locked (reads wait too), then a row only (writes of that key wait).
      for (
        const lock of [
          `LOCK TABLE "${SCHEMA}"."${table}" IN ACCESS EXCLUSIVE MODE`,
          `SELECT key FROM "${SCHEMA}"."${table}" WHERE key = $1 FOR UPDATE`,
        ]
      ) {
        const rowOnly = lock.startsWith("SELECT");
        await whileLockHeld(
          url,
          lock,
          rowOnly ? [encodeKey(["k"])] : [],
          "a call waited for the lock to go",
          async () => {
            for (const [name, call] of calls) {
              // Only the writes of the locked row wait for a row lock.
              if (rowOnly && ["get", "list", "query", "set of a new key"].includes(name)) continue;
              const stop = new AbortController();
              const pending = call(stop.signal);
              await untilWaitingOnLock(watcher, table);
              stop.abort("stopped");
              await assert.rejects(pending, givenUp(name), name);
            }
          },
        );
      }
    });
    // Nothing was written, and the store goes on.
    assert.equal((await store.get(["k"]))?.value, 1);
    assert.equal(await store.get(["new"]), null);
    await store.set(["k"], 5);
    assert.equal((await store.get(["k"]))?.value, 5);
  },
);

pgTest(
  "postgres: a statement cancelled by a cancel request meant for another call (its own signal did not abort) is sent again, not failed",
  async (url) => {
    const table = newTable("straycancel");
    await using store = await openStore({ plugin: "postgres", url, schema: SCHEMA, table }, {
      name: "main",
    });
    await store.set(["k"], 1);
    let get: Promise<unknown> | undefined;
    await withAdmin(url, async (watcher) => {
      await whileLockHeld(
        url,
        `LOCK TABLE "${SCHEMA}"."${table}" IN ACCESS EXCLUSIVE MODE`,
        [],
        "the get waited for the lock to go",
        async () => {
          get = store.get(["k"]);
          get.catch(() => {}); // raced below, and awaited after the lock is gone
          await untilWaitingOnLock(watcher, table);
          // The cancel request postgres.js sends for another statement of the connection lands
          // on this one (as when that statement ended before the request arrived).
          await watcher.unsafe(
            `SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = ` +
              `current_database() AND wait_event_type = 'Lock' AND position($1 in query) > 0`,
            [table],
          );
          // Sent again: it waits for the lock again instead of failing.
          await Promise.race([
            untilWaitingOnLock(watcher, table),
            get.then(() => {
              throw new Error("the get ended while the table was locked");
            }),
          ]);
        },
      );
    });
    assert.equal(((await get) as { value: unknown }).value, 1);
  },
);

pgTest(
  "postgres: stores opening while another process sets the table up wait for it longer than lockTimeout",
  async (url) => {
    const table = newTable("locksetup");
    const spec = { plugin: "postgres", url, schema: SCHEMA, table, lockTimeout: 50 };
    // The admin pool's one connection is reserved for the holder: a second one watches.
    await withAdmin(url, (watcher) =>
      withAdmin(url, async (admin) => {
        // Another opener creating the table (or building its indexes) holds its advisory lock.
        const holder = await admin.reserve();
        try {
          await holder.unsafe("BEGIN");
          await holder.unsafe(
            `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext($1))`,
            [`${SCHEMA}.${table}`],
          );
          let settled = false;
          const opening = Promise.allSettled(
            [1, 2, 3].map(() => openStore(spec, { name: "main" })),
          ).finally(() => settled = true);
          // Let go once an opener waits for the lock (seen from the server), and waited longer
          // than lockTimeout.
          while (!settled) {
            const [row] = await watcher.unsafe<{ n: number }[]>(
              `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted ` +
                `AND classid = ${LOCK_CLASS} AND database = ` +
                `(SELECT oid FROM pg_database WHERE datname = current_database())`,
            );
            if (row.n >= 1) break;
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          await new Promise((resolve) => setTimeout(resolve, 300));
          await holder.unsafe("COMMIT");
          const stores = (await opening).map((result) => {
            if (result.status === "rejected") throw result.reason;
            return result.value;
          });
          await stores[0].set(["k"], 1);
          for (const store of stores) {
            assert.equal((await store.get(["k"]))?.value, 1);
            await store.close();
          }
        } finally {
          holder.release();
        }
      }));
  },
);

// --- Cleanup -------------------------------------------------------------------

dropTestSchema();
