/**
 * Sessions ended by the server (`pg_terminate_backend`, as an administrator,
 * a failover or a pooler restart does) while transactional calls are on
 * their way, again and again, some while the pool logs in again: every call
 * settles (resolves, or rejects with `StoreUnavailableError`), none is
 * applied in part or twice, an acknowledged one is there, and the store
 * works again after.
 */
import assert from "node:assert/strict";
import { openStore, StoreUnavailableError } from "../../mod.ts";
import type { Key, Store } from "../../src/store/types.ts";
import {
  dropTestSchema,
  newTable,
  pgTest,
  SCHEMA,
  settlesWithin,
  withAdmin,
  withOwnDatabase,
} from "./_test_utils.ts";

/** Seconds to connect (the store's option): small, so that a lost connection is told soon. */
const CONNECT_TIMEOUT = 1;
/** The test's own bound on every call (generous: it is no timing assertion, only "no hang"). */
const DEADLINE_MS = 60_000;
/** Rounds of calls with sessions ended among them. */
const ROUNDS = 10;
/** Milliseconds of calls in each round. */
const ROUND_MS = 1_000;
/** Milliseconds sessions are ended for, back to back, in each round. */
const STORM_MS = 150;

/** What the calls that were acknowledged wrote (checked against the table at the end). */
interface Acknowledged {
  increments: number;
  /** Increments that failed: each may or may not have been applied (never twice). */
  failedIncrements: number;
  pairs: string[];
  claimed: Key[];
}

/** A counter incremented by compare-and-set, as the `state.increment` node does. */
async function increment(store: Store, key: Key): Promise<void> {
  for (;;) {
    const entry = await store.get<number>(key);
    const result = await store.atomic()
      .check(key, entry?.version ?? null)
      .set(key, (entry?.value ?? 0) + 1)
      .commit();
    if (result.ok) return;
  }
}

/** Transactional calls of every kind, the `i`-th time. */
function calls(store: Store, i: number, acked: Acknowledged): [string, () => Promise<unknown>][] {
  const id = String(i).padStart(6, "0");
  return [
    ["increment", () =>
      increment(store, ["n"]).then(
        () => void acked.increments++,
        (err) => {
          acked.failedIncrements++;
          throw err;
        },
      )],
    // A commit of two keys with a check of a third: both or neither.
    [
      "atomic",
      () =>
        store.atomic().check(["c", id], null).set(["a", id], i).set(["b", id], i).commit().then(
          (result) => {
            assert.ok(result.ok);
            acked.pairs.push(id);
          },
        ),
    ],
    // Queue claims: an entry taken is deleted and marked done in the claim's transaction.
    ["claim", async () => {
      await store.set(["q", id], { i });
      const claimed = await store.claimFirst!(["q"], (entry, op) => {
        op.check(entry.key, entry.version).delete(entry.key).set(["done", entry.key[1]], 1);
        return Promise.resolve(true);
      });
      if (claimed?.result.ok) acked.claimed.push(claimed.key);
    }],
    ["clear", () => store.clear(["z", id])],
  ];
}

pgTest(
  "sessions ended by pg_terminate_backend during transactional calls: every call settles, none applied in part or twice, the store works again",
  (url) =>
    withOwnDatabase(url, "terminate", async (own) => {
      const store = await openStore({
        plugin: "postgres",
        url: own,
        schema: SCHEMA,
        table: newTable("terminate"),
        connectTimeout: CONNECT_TIMEOUT,
      } as { plugin: string }, { name: "main" });
      const acked: Acknowledged = { increments: 0, failedIncrements: 0, pairs: [], claimed: [] };
      try {
        await withAdmin(own, async (admin) => {
          // Every session of this test's own database but the admin's.
          const terminate = () =>
            admin.unsafe(
              `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity ` +
                `WHERE datname = current_database() AND pid <> pg_backend_pid()`,
            );
          let i = 0;
          let failures = 0;
          for (let round = 0; round < ROUNDS; round++) {
            const settled: Promise<{ what: string; error?: unknown }>[] = [];
            const storm = (async () => {
              // At another moment of each round: sessions busy, idle, or logging in again.
              await new Promise((resolve) => setTimeout(resolve, 100 + (round * 137) % 600));
              for (const until = Date.now() + STORM_MS; Date.now() < until;) await terminate();
            })();
            for (const until = Date.now() + ROUND_MS; Date.now() < until;) {
              for (let k = 0; k < 3; k++) {
                for (const [what, call] of calls(store, i++, acked)) {
                  settled.push(call().then(() => ({ what }), (error) => ({ what, error })));
                }
              }
              await new Promise((resolve) => setTimeout(resolve, 25));
            }
            await storm;
            const outcomes = await settlesWithin(
              Promise.all(settled),
              DEADLINE_MS,
              `round ${round}: a transactional call while sessions were ended`,
            );
            for (const { what, error } of outcomes) {
              if (error === undefined) continue;
              failures++;
              assert.ok(error instanceof StoreUnavailableError, `${what}: got ${error}`);
              assert.equal(error.store, "main");
            }
          }
          assert.ok(failures > 0, "calls on their way when sessions ended failed");

          // Back: every kind of call works again.
          for (const [what, call] of calls(store, i++, acked)) {
            await settlesWithin(call(), DEADLINE_MS, `${what} once sessions are no longer ended`);
          }

          // An acknowledged increment is there; a failed one was applied once or not at all.
          const n = (await store.get<number>(["n"]))?.value ?? 0;
          assert.ok(
            n >= acked.increments && n <= acked.increments + acked.failedIncrements,
            `counter ${n}: ${acked.increments} increments acknowledged, ` +
              `${acked.failedIncrements} failed`,
          );
          // Both keys of a commit or neither; an acknowledged commit's are there.
          const a = new Set(
            (await Array.fromAsync(store.list({ prefix: ["a"] }))).map((e) => e.key[1]),
          );
          const b = new Set(
            (await Array.fromAsync(store.list({ prefix: ["b"] }))).map((e) => e.key[1]),
          );
          assert.deepEqual([...a].sort(), [...b].sort(), "a commit was applied in part");
          for (const id of acked.pairs) assert.ok(a.has(id), `acknowledged commit ${id} is lost`);
          // A claimed entry is gone from the queue and done, in one commit.
          const queued = new Set(
            (await Array.fromAsync(store.list({ prefix: ["q"] }))).map((e) => e.key[1]),
          );
          const done = new Set(
            (await Array.fromAsync(store.list({ prefix: ["done"] }))).map((e) => e.key[1]),
          );
          for (const id of done) assert.ok(!queued.has(id), `${id} is done and still queued`);
          for (const key of acked.claimed) {
            assert.ok(done.has(key[1]), `acknowledged claim of ${key[1]} is lost`);
          }
        });
      } catch (err) {
        // Reported as it is: the store closes once its calls have settled, if ever.
        await settlesWithin(store.close(), DEADLINE_MS, "closing the store").catch(() => {});
        throw err;
      }
      await store.close();
    }),
);

dropTestSchema();
