/**
 * The queue on every built-in backend (memory, jsonfile, sqlite, and
 * postgres when FLOWSTATE_TEST_POSTGRES_URL is set): the same cases through
 * `Records` over each store, with a controllable clock: the order runs are
 * claimed in (priority, then time, then age; never before `runAt`), claims
 * by several store handles at once (each run claimed exactly once), every
 * transition (finish, retry with backoff, lost claim, cancel, requeue) with
 * the status indexes agreeing, and per-flow limits (concurrency and rate).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, type Store } from "../mod.ts";
import { enqueuedByRun, newRunId, Records, type RunRecord, runStartTime } from "../records.ts";
import { PG_URL, withAdmin } from "../plugins/postgres/_test_utils.ts";
import { MAX_LOST_ATTEMPTS } from "../src/records/_queue.ts";
import redis from "../packages/redis/mod.ts";
import {
  NEEDS_SERVER,
  newPrefix,
  REDIS_URL,
  removeTestKeys,
} from "../packages/redis/_test_utils.ts";
import { within } from "./_deadline.ts";

const T0 = Date.UTC(2026, 0, 1);

interface Backend {
  name: string;
  /** Open a handle on the case's store (every call: the same data). */
  open(id: string, clock: { now(): number }): Promise<Store>;
  cleanup(id: string): Promise<void>;
  ignore?: string;
}

const tmp = await Deno.makeTempDir({ prefix: "flowstate-queue-conf-" });
const pgSchema = `flowstate_qconf_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
const memories = new Map<string, Store>();
/** The Redis key prefix of each case's store (its handles share it). */
const redisPrefixes = new Map<string, string>();

const BACKENDS: Backend[] = [
  {
    name: "memory",
    async open(id, clock) {
      // One memory store shared by the handles of a case (a memory store is one process's).
      let store = memories.get(id);
      if (store === undefined) {
        store = await openStore({ plugin: "memory" }, { clock });
        memories.set(id, store);
      }
      return store;
    },
    cleanup(id) {
      memories.delete(id);
      return Promise.resolve();
    },
  },
  {
    name: "jsonfile",
    open: (id, clock) =>
      openStore({ plugin: "jsonfile", path: join(tmp, `${id}.json`) }, { clock }),
    cleanup: async () => {},
  },
  {
    name: "sqlite",
    open: (id, clock) => openStore({ plugin: "sqlite", path: join(tmp, `${id}.db`) }, { clock }),
    cleanup: async () => {},
  },
  {
    // Native claims: Store.claimFirst (FOR UPDATE SKIP LOCKED).
    name: "postgres",
    ...(PG_URL === undefined ? { ignore: "set FLOWSTATE_TEST_POSTGRES_URL to run" } : {}),
    open: async (id, clock) => {
      const store = await openStore(
        { plugin: "postgres", url: PG_URL!, schema: pgSchema, table: id },
        { clock },
      );
      assert.equal(typeof store.claimFirst, "function", "postgres claims natively");
      return store;
    },
    cleanup: async () => {},
  },
  {
    // A store that keeps a change feed still claims natively: the driver writes the feed in
    // the claim's transaction (StoreDriver.commitFeed).
    name: "postgres (with a change feed)",
    ...(PG_URL === undefined ? { ignore: "set FLOWSTATE_TEST_POSTGRES_URL to run" } : {}),
    open: async (id, clock) => {
      const store = await openStore(
        {
          plugin: "postgres",
          url: PG_URL!,
          schema: pgSchema,
          table: `${id}_feed`,
          changes: { keep: "30d" },
        },
        { clock },
      );
      assert.equal(typeof store.claimFirst, "function", "postgres claims natively with a feed");
      return store;
    },
    cleanup: async () => {},
  },
  {
    // The same store without the capability: claims by compare-and-set.
    name: "postgres (compare-and-set claims)",
    ...(PG_URL === undefined ? { ignore: "set FLOWSTATE_TEST_POSTGRES_URL to run" } : {}),
    open: async (id, clock) =>
      withoutNativeClaims(
        await openStore({ plugin: "postgres", url: PG_URL!, schema: pgSchema, table: id }, {
          clock,
        }),
      ),
    cleanup: async () => {},
  },
  {
    // Claims by compare-and-set (Lua scripts), each handle its own connection.
    name: "redis",
    ...(REDIS_URL === undefined ? { ignore: NEEDS_SERVER } : {}),
    open: (id, clock) => {
      const prefix = redisPrefixes.get(id) ?? newPrefix(id);
      redisPrefixes.set(id, prefix);
      return openStore({ plugin: redis, url: REDIS_URL!, prefix }, { clock });
    },
    cleanup(id) {
      redisPrefixes.delete(id);
      return Promise.resolve();
    },
  },
];

/** `store` as a store without `claimFirst` (as a plugin without `claim` would be). */
function withoutNativeClaims(store: Store): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "claimFirst") return undefined;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * `store` whose first list of a partition's parked runs reads them, then runs `meanwhile(prefix)`,
 * then yields what it read: a write between a commit's reads and that commit.
 */
function withWriteWhileListingParked(
  store: Store,
  meanwhile: (prefix: readonly unknown[]) => Promise<void>,
): Store {
  let fired = false;
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "list") return typeof value === "function" ? value.bind(target) : value;
      return (selector: { prefix?: unknown[] }, ...rest: unknown[]) => {
        const listing = value.call(target, selector, ...rest);
        if (fired || !selector.prefix?.includes("parked")) return listing;
        fired = true;
        return (async function* () {
          const read = [];
          for await (const e of listing) read.push(e);
          await meanwhile(selector.prefix!);
          yield* read;
        })();
      };
    },
  });
}

let caseNo = 0;

/** Run `fn` with `handles` Records over one fresh store of `backend`, and a clock at T0. */
async function withQueue(
  backend: Backend,
  handles: number,
  fn: (
    records: Records[],
    clock: { t: number; now(): number },
    stores: Store[],
  ) => Promise<void>,
): Promise<void> {
  const id = `q${++caseNo}_${backend.name.replace(/\W+/g, "_")}`;
  const clock = {
    t: T0,
    now() {
      return this.t;
    },
  };
  const stores: Store[] = [];
  try {
    for (let i = 0; i < handles; i++) stores.push(await backend.open(id, clock));
    await fn(stores.map((s) => new Records(s, { clock })), clock, stores);
  } finally {
    for (const s of new Set(stores)) await s.close();
    await backend.cleanup(id);
  }
}

function init(n: number, extra: Partial<Parameters<Records["enqueueRun"]>[0]> = {}) {
  return { flowId: "f", flowVersion: "v1", inputs: { n }, flowPath: "/f.flow.yaml", ...extra };
}

async function statuses(records: Records, status: "queued" | "running"): Promise<string[]> {
  return (await records.listRunSummaries({ status, limit: 1000 })).runs.map((r) => r.id).sort();
}

async function finish(records: Records, run: RunRecord, status: RunRecord["status"]) {
  return await records.finishClaimedRun({
    ...run,
    status,
    outputs: status === "succeeded" ? {} : null,
    error: status === "succeeded" ? null : { message: status },
  });
}

for (const backend of BACKENDS) {
  const name = (what: string) =>
    `queue on ${backend.name}: ${what}${backend.ignore ? ` (ignored: ${backend.ignore})` : ""}`;
  const test = (what: string, fn: () => Promise<void>) =>
    Deno.test({ name: name(what), ignore: backend.ignore !== undefined, fn });

  test("claims in priority order, then runAt, then age; never before runAt", () =>
    withQueue(backend, 1, async ([records], clock) => {
      const a = await records.enqueueRun(init(1));
      const b = await records.enqueueRun(init(2, { priority: 7 }));
      clock.t += 1;
      const c = await records.enqueueRun(init(3, { priority: 7 }));
      const d = await records.enqueueRun(init(4, { priority: -3 }));
      const later = await records.enqueueRun(init(5, { priority: 1_000_000, runAt: T0 + 60_000 }));
      const order: string[] = [];
      for (;;) {
        const run = await records.claimRun({ worker: "w", leaseMs: 30_000 });
        if (run === null) break;
        order.push(run.id);
      }
      assert.deepEqual(order, [b.runId, c.runId, a.runId, d.runId]);
      clock.t = T0 + 59_999;
      assert.equal(await records.claimRun({ worker: "w", leaseMs: 30_000 }), null);
      clock.t = T0 + 60_000;
      assert.equal((await records.claimRun({ worker: "w", leaseMs: 30_000 }))?.id, later.runId);
      assert.deepEqual(await statuses(records, "queued"), []);
      assert.equal((await statuses(records, "running")).length, 5);
    }));

  test("several handles claiming at once take each run exactly once", () =>
    withQueue(backend, 3, async (handles) => {
      const ids = new Set<string>();
      for (let i = 0; i < 60; i++) ids.add((await handles[0].enqueueRun(init(i))).runId);
      const taken = await Promise.all(handles.map(async (records, w) => {
        const mine: string[] = [];
        for (;;) {
          const run = await records.claimRun({ worker: `w${w}`, leaseMs: 30_000 });
          if (run === null) break;
          mine.push(run.id);
          assert.ok(await finish(records, run, "succeeded"));
        }
        return mine;
      }));
      const all = taken.flat();
      assert.equal(all.length, ids.size, "no run claimed twice");
      assert.deepEqual(new Set(all), ids);
      for (const id of ids) {
        const run = await handles[1].getRun(id);
        assert.equal(run?.status, "succeeded");
        assert.equal(run?.queue?.attempts.length, 1);
      }
      assert.deepEqual(await statuses(handles[2], "running"), []);
    }));

  test("dedupe keys: a queued or running run is returned; an ended one frees the key", () =>
    withQueue(backend, 2, async ([a, b]) => {
      const first = await a.enqueueRun(init(1, { key: "k" }));
      const again = await b.enqueueRun(init(2, { key: "k" }));
      assert.deepEqual([again.runId, again.existing], [first.runId, true]);
      const run = await a.claimRun({ worker: "w", leaseMs: 30_000 });
      assert.equal((await b.enqueueRun(init(3, { key: "k" }))).existing, true, "running");
      await finish(a, run!, "succeeded");
      const fresh = await b.enqueueRun(init(4, { key: "k" }));
      assert.equal(fresh.existing, false);
    }));

  test("dedupe keys go with their run's end, whichever end; gc's sweep takes leftovers", () =>
    withQueue(backend, 2, async ([a, b], clock, [store]) => {
      const KEYS = ["flowstate", "queue", "key"];
      const keys = async () => {
        const found: string[] = [];
        for await (const e of store.list({ prefix: KEYS })) found.push(e.key[3]);
        return found.sort();
      };
      const lease = { worker: "w", leaseMs: 5_000 };
      // Succeeded, and failed with no attempt left.
      const ok = await a.enqueueRun(init(1, { key: "ok" }));
      const bad = await a.enqueueRun(init(2, { key: "bad", maxAttempts: 2 }));
      // Cancelled while queued.
      const gone = await a.enqueueRun(init(3, { key: "cancelled", runAt: T0 + 60_000 }));
      assert.deepEqual(await keys(), ["bad", "cancelled", "ok"]);
      assert.equal((await b.enqueueRun(init(9, { key: "ok" }))).runId, ok.runId, "still dedupes");
      const first = await a.claimRun(lease);
      assert.equal(first?.id, ok.runId);
      assert.ok(await finish(a, first!, "succeeded"));
      const second = await a.claimRun(lease);
      assert.ok(await finish(a, second!, "failed"));
      // A failure with an attempt left waits in the queue again: it keeps its key.
      assert.equal((await a.getRun(bad.runId))?.status, "queued");
      assert.deepEqual(await keys(), ["bad", "cancelled"]);
      assert.equal((await b.enqueueRun(init(9, { key: "bad" }))).runId, bad.runId);
      const retried = await a.claimRun(lease);
      assert.ok(await finish(a, retried!, "failed"));
      assert.equal((await a.cancelQueuedRun(gone.runId))?.status, "cancelled");
      assert.deepEqual(await keys(), []);
      // Requeued by hand, the run holds its key again; its end frees it again.
      await a.requeueRun(bad.runId);
      assert.deepEqual(await keys(), ["bad"]);
      assert.equal((await b.enqueueRun(init(9, { key: "bad" }))).runId, bad.runId);
      const again = await a.claimRun(lease);
      assert.ok(await finish(a, again!, "succeeded"));
      assert.deepEqual(await keys(), []);
      // Lost by its worker too often (abandoned): failed, and its key goes.
      const lost = await a.enqueueRun(init(4, { key: "lost" }));
      for (let i = 0; i < MAX_LOST_ATTEMPTS; i++) {
        assert.equal((await a.claimRun(lease))?.id, lost.runId);
        clock.t += 5_001;
        assert.deepEqual(await b.reclaimLost(), [lost.runId]);
      }
      assert.equal((await a.getRun(lost.runId))?.status, "failed");
      assert.deepEqual(await keys(), []);
      // After an end, the key makes a new run.
      const fresh = await b.enqueueRun(init(5, { key: "ok" }));
      assert.notEqual(fresh.runId, ok.runId);
      assert.equal(fresh.existing, false);
      // A queued run deleted (deleteRun) takes its key with it.
      assert.ok(await a.deleteRun(fresh.runId));
      assert.deepEqual(await keys(), []);
      // What an older version left: keys of ended runs and of runs deleted since. The sweep
      // takes those, and keeps the key of a queued run.
      const live = await a.enqueueRun(init(6, { key: "live" }));
      await store.set([...KEYS, "old-ended"], { runId: ok.runId });
      await store.set([...KEYS, "old-deleted"], { runId: "0mjuw3ms0abcdefghijk" });
      assert.equal(await b.sweepDedupeKeys({ dryRun: true }), 2);
      assert.deepEqual(await keys(), ["live", "old-deleted", "old-ended"]);
      assert.equal(await b.sweepDedupeKeys(), 2);
      assert.deepEqual(await keys(), ["live"]);
      assert.equal((await b.enqueueRun(init(9, { key: "live" }))).runId, live.runId);
    }));

  test("a failure with attempts left is queued again after its backoff; then kept failed", () =>
    withQueue(backend, 1, async ([records], clock) => {
      const { runId } = await records.enqueueRun(
        init(1, { maxAttempts: 2, backoff: { delay: 10_000, factor: 2 } }),
      );
      const first = await records.claimRun({ worker: "w", leaseMs: 30_000 });
      assert.ok(await finish(records, first!, "failed"));
      const waiting = await records.getRun(runId);
      assert.equal(waiting?.status, "queued");
      assert.equal(waiting?.queue?.runAt, T0 + 10_000);
      assert.deepEqual(await statuses(records, "queued"), [runId]);
      assert.equal(await records.claimRun({ worker: "w", leaseMs: 30_000 }), null);
      clock.t = T0 + 10_000;
      const second = await records.claimRun({ worker: "w", leaseMs: 30_000 });
      assert.equal(second?.queue?.attempt, 2);
      assert.ok(await finish(records, second!, "failed"));
      const failed = await records.getRun(runId);
      assert.equal(failed?.status, "failed");
      assert.deepEqual(failed?.queue?.attempts.map((a) => a.outcome), ["failed", "failed"]);
      assert.deepEqual(await statuses(records, "queued"), []);
      // Requeued by hand: one more attempt.
      await records.requeueRun(runId);
      const third = await records.claimRun({ worker: "w", leaseMs: 30_000 });
      assert.equal(third?.queue?.attempt, 3);
      assert.ok(await finish(records, third!, "succeeded"));
      assert.equal((await records.getRun(runId))?.status, "succeeded");
    }));

  test("run summaries (every listing: all runs, by flow, by status) carry enqueuedAt and the current or last attempt's claim time, and mark a run another run enqueued", () =>
    withQueue(backend, 1, async ([records], clock) => {
      /** The run's summary as each listing gives it: they must agree. */
      const summaries = async (id: string, status: RunRecord["status"]) => {
        const pages = await Promise.all([
          records.listRunSummaries({}),
          records.listRunSummaries({ flowId: "f" }),
          records.listRunSummaries({ status }),
          records.listRunSummaries({ flowId: "f", status }),
        ]);
        const found = pages.map((p) => p.runs.find((r) => r.id === id));
        for (const f of found) assert.deepEqual(f, found[0]);
        return found[0]!;
      };
      const parent = newRunId(T0 - 1);
      const { runId } = await records.enqueueRun(
        init(1, {
          runAt: T0 + 600_000,
          parentRunId: parent,
          maxAttempts: 2,
          backoff: { delay: 1_000, factor: 1 },
        }),
      );
      const queued = await summaries(runId, "queued");
      assert.equal(queued.startedAt, T0);
      assert.equal(queued.enqueuedAt, T0);
      assert.equal(queued.claimedAt, undefined, "not claimed yet");
      assert.equal(runStartTime(queued), undefined);
      assert.equal(enqueuedByRun(queued), true, "a queue node's run, not a sub-flow's");
      clock.t = T0 + 600_000;
      const first = await records.claimRun({ worker: "w", leaseMs: 30_000 });
      assert.equal((await summaries(runId, "running")).claimedAt, T0 + 600_000);
      clock.t += 500;
      assert.ok(await finish(records, first!, "failed"));
      // Waiting for its second attempt: its last attempt's start.
      assert.equal((await summaries(runId, "queued")).claimedAt, T0 + 600_000);
      clock.t += 5_000;
      const second = await records.claimRun({ worker: "w", leaseMs: 30_000 });
      clock.t += 250;
      assert.ok(await finish(records, second!, "succeeded"));
      const done = await summaries(runId, "succeeded");
      assert.equal(done.startedAt, T0, "still its id's time");
      assert.equal(done.claimedAt, T0 + 605_500, "the last attempt's");
      assert.equal(runStartTime(done), T0 + 605_500);
      assert.equal(done.durationMs, 250, "the last attempt's");
      // A run enqueued without a parent, cancelled before it started: it never did.
      const { runId: other } = await records.enqueueRun(init(2));
      await records.cancelQueuedRun(other);
      const cancelled = await summaries(other, "cancelled");
      assert.equal(cancelled.enqueuedAt, clock.t);
      assert.equal(runStartTime(cancelled), undefined);
      assert.equal(enqueuedByRun(cancelled), false);
    }));

  test("a lapsed claim is taken back (attempt lost) and its old holder cannot finish it", () =>
    withQueue(backend, 2, async ([a, b], clock) => {
      const { runId } = await a.enqueueRun(init(1));
      const held = await a.claimRun({ worker: "a", leaseMs: 5_000 });
      clock.t += 4_000;
      assert.ok(await a.heartbeatClaim(held!));
      clock.t += 5_000;
      assert.deepEqual(await b.reclaimLost(), [], "the heartbeat extended the lease");
      clock.t += 5_001;
      assert.deepEqual(await b.reclaimLost(), [runId]);
      const retaken = await b.claimRun({ worker: "b", leaseMs: 5_000 });
      assert.equal(retaken?.id, runId);
      assert.equal(await a.heartbeatClaim(held!), false, "not a's any more");
      assert.equal(await finish(a, held!, "succeeded"), false);
      assert.ok(await finish(b, retaken!, "succeeded"));
      const done = await a.getRun(runId);
      assert.deepEqual(done?.queue?.attempts.map((x) => [x.worker, x.outcome]), [
        ["a", "lost"],
        ["b", "succeeded"],
      ]);
    }));

  test("a run claimed through one handle is finished through another, exactly once, whatever the other wrote of it before; a claim of another attempt is still refused", () =>
    withQueue(backend, 2, async ([a, b], clock) => {
      const x = await a.enqueueRun(
        init(1, { maxAttempts: 2, backoff: { delay: 1_000, factor: 1 } }),
      );
      const y = await a.enqueueRun(init(2));
      const lease = (worker: string) => ({ worker, leaseMs: 60_000 });
      // b takes x's first attempt, which fails and is queued again (b wrote x's claim last),
      // then ends y (b remembers what it wrote: the flow's metrics).
      const first = await b.claimRun(lease("b"));
      assert.equal(first?.id, x.runId);
      assert.ok(await finish(b, first!, "failed"));
      const ranY = await b.claimRun(lease("b"));
      assert.equal(ranY?.id, y.runId);
      assert.ok(await finish(b, ranY!, "succeeded"));
      // a takes x's second attempt; b records its end (a worker's end written by another handle).
      clock.t += 1_000;
      const second = await a.claimRun(lease("a"));
      assert.equal(second?.id, x.runId);
      assert.equal(second?.queue?.attempt, 2);
      // A claim of another attempt is refused, whichever handle it comes through.
      assert.equal(await finish(a, first!, "failed"), false, "attempt 1's claim is over");
      assert.equal((await b.getRun(x.runId))?.status, "running");
      assert.ok(await finish(b, second!, "succeeded"), "attempt 2's claim, through b");
      // Not b's own old claim: refused, nothing written.
      assert.equal(await finish(b, first!, "failed"), false, "attempt 1's claim is over");
      const done = await a.getRun(x.runId);
      assert.equal(done?.status, "succeeded");
      assert.deepEqual(done?.queue?.attempts.map((t) => [t.worker, t.outcome]), [
        ["b", "failed"],
        ["a", "succeeded"],
      ]);
      // Once: a's own finish of the same attempt now finds it ended (or refuses it).
      await finish(a, second!, "succeeded").then(
        (ok) => assert.equal(ok, false),
        (err) => assert.match(String(err), /already finished/),
      );
      const metrics = await a.getMetrics("f");
      assert.deepEqual([metrics?.count, metrics?.succeeded], [2, 2], "x counted once, y once");
    }));

  test("claimRuns tells nextDue when the next delayed run comes due, within its look-ahead, with no read of its own", () =>
    withQueue(backend, 1, async ([records], clock, stores) => {
      let reads = 0;
      const counted = new Records(
        new Proxy(stores[0], {
          get(target, prop) {
            const value = Reflect.get(target, prop, target);
            if (typeof value !== "function") return value;
            if (["get", "getMany", "list", "count"].includes(String(prop))) {
              return (...args: unknown[]) => {
                reads++;
                return value.apply(target, args);
              };
            }
            return value.bind(target);
          },
        }),
        { clock },
      );
      await records.enqueueRun(init(1, { runAt: T0 + 5_000 }));
      await records.enqueueRun(init(2, { runAt: T0 + 2_000 }));
      const lease = { worker: "w", leaseMs: 60_000 };
      const told: number[] = [];
      const nextDue = (withinMs: number) => ({ withinMs, onDue: (at: number) => told.push(at) });
      assert.deepEqual(await counted.claimRuns(lease, 4), []);
      const plain = reads;
      reads = 0;
      assert.deepEqual(await counted.claimRuns({ ...lease, nextDue: nextDue(1_000) }, 4), []);
      assert.deepEqual(told, [], "none within a second");
      assert.equal(reads, plain, "no read of its own");
      reads = 0;
      assert.deepEqual(await counted.claimRuns({ ...lease, nextDue: nextDue(2_000) }, 4), []);
      assert.deepEqual(told, [T0 + 2_000], "the first of them");
      assert.equal(reads, plain);
      // Runs put off for their rate: when the window has room.
      const rate = { limit: { rate: { limit: 1, perMs: 60_000 }, partition: "*" } };
      await records.enqueueRun(init(3, rate));
      await records.enqueueRun(init(4, rate));
      told.length = 0;
      const taken = await records.claimRuns({ ...lease, nextDue: nextDue(0) }, 1);
      assert.equal(taken.length, 1);
      assert.deepEqual(await records.claimRuns({ ...lease, nextDue: nextDue(0) }, 1), []);
      assert.deepEqual(told, [T0 + 60_000]);
    }));

  test("a queued run is cancelled without starting; only ended runs are requeued", () =>
    withQueue(backend, 1, async ([records], clock) => {
      const { runId } = await records.enqueueRun(init(1, { runAt: T0 + 1_000 }));
      await assert.rejects(records.requeueRun(runId), /it is queued/);
      assert.equal((await records.cancelQueuedRun(runId))?.status, "cancelled");
      clock.t += 2_000;
      assert.equal(await records.claimRun({ worker: "w", leaseMs: 30_000 }), null);
      assert.deepEqual(await statuses(records, "queued"), []);
      const cancelled = (await records.listRunSummaries({ status: "cancelled" })).runs;
      assert.deepEqual(cancelled.map((r) => r.id), [runId]);
    }));

  test("claimRuns: several at once in claim order, a partition's limit counted within them", () =>
    withQueue(backend, 1, async ([records], clock) => {
      const limit = (partition: string) => ({ limit: { concurrency: 1, partition } });
      const a = await records.enqueueRun(init(1, limit("x")));
      clock.t += 1;
      const b = await records.enqueueRun(init(2, limit("x")));
      clock.t += 1;
      const c = await records.enqueueRun(init(3, limit("y")));
      clock.t += 1;
      const d = await records.enqueueRun(init(4));
      const batches: string[][] = [];
      for (;;) {
        const batch = await records.claimRuns({ worker: "w", leaseMs: 30_000 }, 4);
        if (batch.length === 0) break;
        batches.push(batch.map((r) => r.id));
      }
      // b waits for a: x allows one at a time, in a batch as across claims.
      assert.deepEqual(batches.flat(), [a.runId, c.runId, d.runId]);
      // A native claim takes them in one transaction; compare-and-set one per call.
      const native = backend.name === "postgres" ||
        backend.name === "postgres (with a change feed)";
      assert.equal(batches.length, native ? 1 : 3);
      const running = await Promise.all(batches.flat().map((id) => records.getRun(id)));
      assert.ok(await finish(records, running[0]!, "succeeded"));
      const next = await records.claimRuns({ worker: "w", leaseMs: 30_000 }, 4);
      assert.deepEqual(next.map((r) => r.id), [b.runId]);
      for (const run of [...running.slice(1), ...next]) {
        assert.ok(await finish(records, run!, "succeeded"));
      }
      assert.deepEqual(await statuses(records, "running"), []);
      assert.equal((await records.getMetrics("f"))?.succeeded, 4);
    }));

  test("several handles claiming batches at once take each run exactly once", () =>
    withQueue(backend, 3, async (handles) => {
      const ids = new Set<string>();
      for (let i = 0; i < 60; i++) ids.add((await handles[0].enqueueRun(init(i))).runId);
      const taken = await Promise.all(handles.map(async (records, w) => {
        const mine: string[] = [];
        for (;;) {
          const batch = await records.claimRuns({ worker: `w${w}`, leaseMs: 30_000 }, 3);
          if (batch.length === 0) break;
          for (const run of batch) {
            mine.push(run.id);
            assert.ok(await finish(records, run, "succeeded"));
          }
        }
        return mine;
      }));
      const all = taken.flat();
      assert.equal(all.length, ids.size, "no run claimed twice");
      assert.deepEqual(new Set(all), ids);
      assert.deepEqual(await statuses(handles[2], "running"), []);
      assert.equal((await handles[1].getMetrics("f"))?.succeeded, 60, "metrics exact");
    }));

  test("rate limits: at most `limit` claims in any window per partition, across handles; retries count; a full window puts its runs off until it has room", () =>
    withQueue(backend, 2, async ([a, b], clock) => {
      const rate = (partition: string, extra = {}) => ({
        limit: { rate: { limit: 2, perMs: 60_000 }, partition },
        ...extra,
      });
      const x: string[] = [];
      for (let i = 0; i < 5; i++) x.push((await a.enqueueRun(init(i, rate("x")))).runId);
      const y = (await a.enqueueRun(init(9, rate("y")))).runId;
      const lease = (worker: string) => ({ worker, leaseMs: 600_000 });
      const claimedAt = new Map<string, number>();
      const claim = async (records: Records, worker: string) => {
        const run = await records.claimRun(lease(worker));
        if (run !== null) {
          claimedAt.set(run.id, run.queue!.claim!.at);
          assert.ok(await finish(records, run, "succeeded"));
        }
        return run?.id ?? null;
      };
      assert.equal(await claim(a, "a"), x[0]);
      assert.equal(await claim(b, "b"), x[1]);
      // x's window is full: its runs wait, y's go (another partition).
      assert.equal(await claim(a, "a"), y);
      assert.equal(await claim(b, "b"), null);
      for (const [i, at] of [[2, T0 + 60_000], [3, T0 + 60_000], [4, T0 + 120_000]] as const) {
        const waiting = await a.getRun(x[i]);
        assert.equal(waiting?.status, "queued");
        assert.equal(waiting?.queue?.waiting, "rate");
        assert.equal(waiting?.queue?.runAt, at, `x${i} is due when the window has room`);
      }
      assert.deepEqual(await a.queueCounts(), { due: 0, scheduled: 3, claimed: 0 });
      clock.t = T0 + 59_999;
      assert.equal(await claim(a, "a"), null);
      clock.t = T0 + 60_000;
      assert.deepEqual([await claim(b, "b"), await claim(a, "a"), await claim(b, "b")], [
        x[2],
        x[3],
        null,
      ]);
      assert.equal((await a.getRun(x[2]))?.queue?.waiting, undefined, "claimed: waits no more");
      clock.t = T0 + 120_000;
      assert.equal(await claim(a, "a"), x[4]);
      // No window of 60 s holds more than 2 of x's claims.
      const times = x.map((id) => claimedAt.get(id)!).sort((p, q) => p - q);
      for (let i = 0; i + 2 < times.length; i++) assert.ok(times[i + 2] - times[i] >= 60_000);
      // Long after, the window is empty again (its entry expired); a retry counts as a claim.
      clock.t = T0 + 10 * 3_600_000;
      const r = await a.enqueueRun(init(20, rate("x", { maxAttempts: 3 })));
      const other = await a.enqueueRun(init(21, rate("x")));
      const first = await a.claimRun(lease("a"));
      assert.equal(first?.id, r.runId);
      assert.ok(await finish(a, first!, "failed"));
      assert.equal((await a.getRun(r.runId))?.status, "queued", "failed, with attempts left");
      const second = await b.claimRun(lease("b"));
      assert.equal(second?.id, r.runId, "its retry is due at once: the window's second claim");
      assert.ok(await finish(b, second!, "failed"));
      assert.equal(await a.claimRun(lease("a")), null);
      for (const id of [r.runId, other.runId]) {
        const waiting = await b.getRun(id);
        assert.equal(waiting?.queue?.waiting, "rate");
        assert.ok(waiting!.queue!.runAt >= clock.t + 60_000);
      }
      // Cancelled while it waits: it waits for nothing any more.
      assert.equal((await a.cancelQueuedRun(other.runId))?.queue?.waiting, undefined);
    }));

  test("rate limits: runs waiting for their window do not hold up the runs behind them (more than one claim looks at)", () =>
    withQueue(backend, 1, async ([records], clock) => {
      const rate = (partition: string) => ({
        limit: { rate: { limit: 1, perMs: 3_600_000 }, partition },
      });
      const x: string[] = [];
      for (let i = 0; i < 105; i++) x.push((await records.enqueueRun(init(i, rate("x")))).runId);
      clock.t += 1;
      const y = await records.enqueueRun(init(200, rate("y")));
      const lease = { worker: "w", leaseMs: 600_000 };
      assert.equal((await records.claimRun(lease))?.id, x[0]);
      // 104 of x wait behind a full window, ahead of y in the ready index: one claim takes y.
      assert.equal((await records.claimRun(lease))?.id, y.runId);
      assert.equal(await records.claimRun(lease), null);
      assert.deepEqual(await records.queueCounts(), { due: 0, scheduled: 104, claimed: 2 });
      // Those met in one look are due one window after the other, not all at once.
      const runAts = await Promise.all(
        x.slice(1, 4).map(async (id) => {
          const run = await records.getRun(id);
          assert.equal(run?.queue?.waiting, "rate");
          return run!.queue!.runAt;
        }),
      );
      const t = clock.t; // x[0]'s claim
      assert.deepEqual(runAts, [t + 3_600_000, t + 7_200_000, t + 10_800_000]);
    }));

  test("rate and concurrency together, within a batch of claims: each counted", () =>
    withQueue(backend, 1, async ([records], clock) => {
      const limit = { concurrency: 2, rate: { limit: 3, perMs: 60_000 }, partition: "x" };
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await records.enqueueRun(init(i, { limit }))).runId);
      const claimAll = async () => {
        const out: RunRecord[] = [];
        for (;;) {
          const batch = await records.claimRuns({ worker: "w", leaseMs: 600_000 }, 4);
          if (batch.length === 0) return out;
          out.push(...batch);
        }
      };
      const first = await claimAll();
      assert.deepEqual(first.map((r) => r.id), ids.slice(0, 2), "two at once");
      for (const run of first) assert.ok(await finish(records, run, "succeeded"));
      const second = await claimAll();
      assert.deepEqual(second.map((r) => r.id), [ids[2]], "the window's third");
      assert.ok(await finish(records, second[0], "succeeded"));
      assert.deepEqual(await claimAll(), [], "no slot taken, but the window is full");
      assert.equal((await records.getRun(ids[3]))?.queue?.runAt, T0 + 60_000);
      clock.t = T0 + 60_000;
      assert.deepEqual((await claimAll()).map((r) => r.id), ids.slice(3));
    }));

  test("per-flow limits: 149 runs of a full partition do not hold up a run of another partition; each freed slot lets the oldest go", () =>
    withQueue(backend, 2, async ([records, other], clock) => {
      const limit = (partition: string, extra = {}) => ({
        limit: { concurrency: 1, partition },
        ...extra,
      });
      const a: string[] = [];
      for (let i = 0; i < 150; i++) {
        a.push((await records.enqueueRun(init(i, limit("a", { maxAttempts: 2 })))).runId);
      }
      clock.t += 1;
      const b = await records.enqueueRun(init(500, limit("b")));
      const lease = (worker: string) => ({ worker, leaseMs: 60_000 });
      const first = await records.claimRun(lease("w"));
      assert.equal(first?.id, a[0]);
      // 149 of a wait for a's slot, ahead of b in the ready index: one claim takes b.
      const bRun = await other.claimRun(lease("v"));
      assert.equal(bRun?.id, b.runId);
      assert.equal(await records.claimRun(lease("w")), null, "a is at its limit");
      // Still queued and counted as due (waiting for a worker's slot, not for a time).
      assert.deepEqual(await records.queueCounts(), { due: 149, scheduled: 0, claimed: 2 });
      assert.equal((await statuses(records, "queued")).length, 149);
      assert.equal((await other.getRun(a[5]))?.status, "queued");
      // A waiting run can be cancelled, and is never claimed.
      assert.equal((await other.cancelQueuedRun(a[5]))?.status, "cancelled");
      assert.deepEqual(await records.queueCounts(), { due: 148, scheduled: 0, claimed: 2 });
      // b ends: a's runs still wait.
      assert.ok(await finish(other, bRun!, "succeeded"));
      assert.equal(await records.claimRun(lease("w")), null);
      // Every way a slot frees lets the next run of a go, in order, one at a time.
      assert.ok(await finish(records, first!, "succeeded")); // it ends
      const second = await other.claimRun(lease("v"));
      assert.equal(second?.id, a[1]);
      assert.equal(await records.claimRun(lease("w")), null);
      assert.ok(await finish(other, second!, "failed")); // it fails, with an attempt left
      const third = await records.claimRun(lease("w"));
      assert.equal(third?.id, a[2], "the oldest waiting run goes before a[1]'s retry");
      assert.equal(await other.claimRun(lease("v")), null);
      clock.t += 60_001; // its worker stops answering: taken back
      assert.deepEqual(await other.reclaimLost(), [a[2]]);
      const fourth = await records.claimRun(lease("w"));
      assert.equal(fourth?.id, a[3]);
      assert.equal(await other.claimRun(lease("v")), null);
      // Given back by a stopping worker.
      assert.ok(await records.finishClaimedRun(fourth!, [], { release: true }));
      const fifth = await other.claimRun(lease("v"));
      assert.equal(fifth?.id, a[4]);
      assert.equal(await records.claimRun(lease("w")), null);
      // Cancelled while it runs.
      await records.requestCancel(a[4]);
      assert.ok(await finish(other, fifth!, "cancelled"));
      // The rest run one at a time, each exactly once (a[1..4] again, after those before them).
      const ran: string[] = [];
      for (;;) {
        const handle = ran.length % 2 === 0 ? records : other;
        const run = await handle.claimRun(lease("w"));
        if (run === null) break;
        assert.equal(await other.claimRun(lease("v")), null, "never two of a at once");
        ran.push(run.id);
        assert.ok(await finish(handle, run, "succeeded"));
      }
      assert.deepEqual(ran.slice(0, 144), a.slice(6));
      assert.deepEqual(ran.slice(144).sort(), [a[1], a[2], a[3]].sort());
      assert.deepEqual(await records.queueCounts(), { due: 0, scheduled: 0, claimed: 0 });
      assert.deepEqual(await statuses(records, "queued"), []);
    }));

  test("per-flow limits: a cancelled run that was to take a freed slot lets the next waiting one go", () =>
    withQueue(backend, 1, async ([records]) => {
      const limit = { limit: { concurrency: 1, partition: "a" } };
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await records.enqueueRun(init(i, limit))).runId);
      const lease = { worker: "w", leaseMs: 60_000 };
      const first = await records.claimRun(lease);
      assert.equal(first?.id, ids[0]);
      assert.equal(await records.claimRun(lease), null, "the others wait for the slot");
      assert.ok(await finish(records, first!, "succeeded"));
      // ids[1] was next for the freed slot: cancelled, ids[2] goes instead.
      assert.equal((await records.cancelQueuedRun(ids[1]))?.status, "cancelled");
      const second = await records.claimRun(lease);
      assert.equal(second?.id, ids[2]);
      assert.equal(await records.claimRun(lease), null);
      assert.ok(await finish(records, second!, "succeeded"));
      assert.equal((await records.claimRun(lease))?.id, ids[3]);
      assert.deepEqual(await records.queueCounts(), { due: 0, scheduled: 0, claimed: 1 });
    }));

  test("per-flow limits: a run parked between the reads and the commit that frees its partition's slot is not left waiting", () =>
    withQueue(backend, 2, async ([records, other], clock, stores) => {
      const limit = { limit: { concurrency: 1, partition: "a" } };
      const x = await records.enqueueRun(init(1, limit));
      const y = await records.enqueueRun(init(2, limit));
      const first = await records.claimRun({ worker: "w", leaseMs: 60_000 });
      assert.equal(first?.id, x.runId);
      let parkedMeanwhile = false;
      const racing = new Records(
        withWriteWhileListingParked(stores[0], async (prefix) => {
          // Another worker's claim finds a's slot taken (x still running) and parks y.
          assert.equal(await other.claimRun({ worker: "v", leaseMs: 60_000 }), null);
          parkedMeanwhile = await stores[1].count(prefix as string[]) === 1;
        }),
        { clock },
      );
      assert.ok(await finish(racing, first!, "succeeded"));
      assert.ok(parkedMeanwhile, "y was parked while x's end was being written");
      assert.equal((await other.claimRun({ worker: "v", leaseMs: 60_000 }))?.id, y.runId);
    }));

  test("per-flow limits: a run set aside for its partition's slot says so in its record until it is claimed", () =>
    withQueue(backend, 2, async ([records, other]) => {
      const limit = { limit: { concurrency: 1, partition: "acme" } };
      const x = await records.enqueueRun(init(1, limit));
      const y = await records.enqueueRun(init(2, limit));
      const lease = (worker: string) => ({ worker, leaseMs: 60_000 });
      const first = await records.claimRun(lease("w"));
      assert.equal(first?.id, x.runId);
      assert.equal((await other.getRun(y.runId))?.queue?.waiting, undefined, "not looked at yet");
      assert.equal(await other.claimRun(lease("v")), null, "acme is at its limit");
      const parked = await records.getRun(y.runId);
      assert.equal(parked?.status, "queued");
      assert.equal(parked?.queue?.waiting, "slot");
      // Met again while still parked (a second claim does not list it): unchanged.
      assert.equal(await records.claimRun(lease("w")), null);
      assert.equal((await other.getRun(y.runId))?.queue?.waiting, "slot");
      // Its record was rewritten: the claim's handle still ends the running run.
      assert.ok(await finish(records, first!, "succeeded"));
      const second = await other.claimRun(lease("v"));
      assert.equal(second?.id, y.runId);
      assert.equal(second?.queue?.waiting, undefined, "claimed: it waits for nothing");
      assert.equal((await records.getRun(y.runId))?.queue?.waiting, undefined);
      assert.ok(await finish(other, second!, "succeeded"));
    }));

  test("per-flow limits: a cancelled run that waited for a slot waits for nothing", () =>
    withQueue(backend, 1, async ([records]) => {
      const limit = { limit: { concurrency: 1, partition: "*" } };
      await records.enqueueRun(init(1, limit));
      const y = await records.enqueueRun(init(2, limit));
      assert.ok(await records.claimRun({ worker: "w", leaseMs: 60_000 }));
      assert.equal(await records.claimRun({ worker: "w", leaseMs: 60_000 }), null);
      assert.equal((await records.getRun(y.runId))?.queue?.waiting, "slot");
      const cancelled = await records.cancelQueuedRun(y.runId);
      assert.equal(cancelled?.status, "cancelled");
      assert.equal((await records.getRun(y.runId))?.queue?.waiting, undefined);
    }));

  test("per-flow limits: at most `concurrency` running per partition, across handles", () =>
    withQueue(backend, 2, async ([a, b]) => {
      const limit = (partition: string) => ({ limit: { concurrency: 1, partition } });
      await a.enqueueRun(init(1, limit("x")));
      await a.enqueueRun(init(2, limit("x")));
      await a.enqueueRun(init(3, limit("y")));
      const first = await a.claimRun({ worker: "a", leaseMs: 30_000 });
      const second = await b.claimRun({ worker: "b", leaseMs: 30_000 });
      assert.deepEqual([first?.inputs.n, second?.inputs.n], [1, 3]);
      assert.equal(await b.claimRun({ worker: "b", leaseMs: 30_000 }), null, "x is at its limit");
      await finish(a, first!, "succeeded");
      assert.equal((await b.claimRun({ worker: "b", leaseMs: 30_000 }))?.inputs.n, 2);
    }));
}

Deno.test({
  name: `queue on postgres: LISTEN/NOTIFY wakes an idle worker when a run is enqueued${
    PG_URL === undefined ? " (ignored: set FLOWSTATE_TEST_POSTGRES_URL to run)" : ""
  }`,
  ignore: PG_URL === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-queue-notify-" });
    await Deno.writeTextFile(
      join(dir, "hi.flow.yaml"),
      "id: hi\nnodes:\n  - id: a\n    type: log\n    with: { message: hi }\n",
    );
    const config = {
      stores: {
        main: { plugin: "postgres" as const, url: PG_URL!, schema: pgSchema, table: "notify" },
      },
    };
    const { openRuntime, startWorker } = await import("../mod.ts");
    await using workerRt = await openRuntime({ cwd: dir, config });
    await using client = await openRuntime({ cwd: dir, config });
    const started = Promise.withResolvers<void>();
    const ended = Promise.withResolvers<string>();
    // It polls once at start, then only every 10 minutes: only a wake-up can start the run in time.
    const worker = startWorker(workerRt, {
      pollMs: 600_000,
      onEvent: (e) => {
        if (e.type === "start") started.resolve();
        if (e.type === "end") ended.resolve(e.status);
      },
    });
    await within(started.promise, "the started event");
    // Let its first poll pass (it finds nothing), then enqueue from another runtime.
    await (await workerRt.records()).listRunSummaries();
    await new Promise((r) => setTimeout(r, 200));
    const { runId } = await client.enqueue("./hi.flow.yaml");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      ended.promise,
      new Promise<string>((r) => timer = setTimeout(() => r("not woken within 30 s"), 30_000)),
    ]);
    clearTimeout(timer);
    await worker.stop();
    assert.equal(status, "succeeded");
    assert.equal((await (await client.records()).getRun(runId))?.status, "succeeded");
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: `queue conformance: test data removed${
    PG_URL === undefined ? "" : " (and the postgres schema)"
  }`,
  async fn() {
    if (PG_URL !== undefined) {
      await withAdmin(
        PG_URL,
        (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`).then(),
      );
    }
    await Deno.remove(tmp, { recursive: true });
  },
});

// Last: the Redis keys of every case go.
removeTestKeys();
