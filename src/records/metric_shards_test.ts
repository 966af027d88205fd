import assert from "node:assert/strict";
import { openStore } from "../plugin.ts";
import type { Store } from "../store/types.ts";
import { Records } from "./records.ts";
import { addRunToMetrics, emptyMetrics, type FlowMetrics } from "./metrics.ts";
import { allKeys, backendTest, FakeClock, finished, newRun, openBackend } from "./_test_utils.ts";
import type { RunRecord, RunStatus } from "./types.ts";

// Sharded metrics: runs of one flow ending at once (several Records on one
// store, as in a worker) never conflict on metrics after the first conflict,
// and every reader sees exact totals, before and after compaction, and
// during it.

const STATUSES: RunStatus[] = ["succeeded", "failed", "succeeded", "cancelled", "timed-out"];

/** What the metrics must be: every run counted one after the other. */
function expected(runs: RunRecord[], version: string): FlowMetrics {
  let m = emptyMetrics("f", version, 0);
  for (const run of runs) m = addRunToMetrics(m, run, 0);
  return m;
}

function withoutTime(m: FlowMetrics | null | undefined) {
  assert.ok(m);
  const { updatedAt: _u, ...rest } = m;
  return rest;
}

/** `writers` Records on `store`, each ending `perWriter` runs of flow "f" all at once. */
async function endAtOnce(
  store: Store,
  clock: FakeClock,
  writers: Records[],
  perWriter: number,
): Promise<RunRecord[]> {
  const ended: RunRecord[] = [];
  for (const [w, records] of writers.entries()) {
    for (let i = 0; i < perWriter; i++) {
      clock.t += 1;
      const run = newRun(clock);
      await records.startRun(run);
      ended.push(finished(run, STATUSES[(w + i) % STATUSES.length], 1 + ((w * 37 + i * 11) % 500)));
    }
  }
  await Promise.all(
    ended.map((run, i) => writers[Math.floor(i / perWriter)].finishRun(run, [])),
  );
  assert.ok(store);
  return ended;
}

async function checkTotals(readers: Records[], runs: RunRecord[]): Promise<void> {
  for (const records of readers) {
    assert.deepEqual(withoutTime(await records.getMetrics("f")), withoutTime(expected(runs, "*")));
    assert.deepEqual(
      withoutTime(await records.getMetrics("f", "v1")),
      withoutTime(expected(runs, "v1")),
    );
    const listed = await records.listMetrics();
    assert.deepEqual(listed.map((m) => [m.flowId, m.version]), [["f", "*"], ["f", "v1"]]);
    assert.deepEqual(withoutTime(listed[0]), withoutTime(expected(runs, "*")));
    assert.deepEqual((await records.listMetrics("f")).map(withoutTime), listed.map(withoutTime));
    assert.deepEqual(await records.listMetrics("other"), []);
    assert.equal(await records.getMetrics("other"), null);
  }
}

async function exactUnderConcurrency(store: Store, clock: FakeClock): Promise<void> {
  // One try only: a single conflict on metrics would throw a ConflictError.
  const writers = [0, 1, 2].map(() =>
    new Records(store, { clock, retry: { attempts: 1, maxDelayMs: 0 } })
  );
  const runs = await endAtOnce(store, clock, writers, 40);
  await checkTotals([...writers, new Records(store, { clock })], runs);
  // The first conflict on the metrics entries sent this process's counts to shards.
  const shardKeys = (await allKeys(store)).filter((k) => k[1] === "metrics-shards");
  assert.ok(shardKeys.length > 0, "runs ending at once count in shards");

  // Compaction folds them all; the totals do not move.
  const compactor = new Records(store, { clock });
  assert.equal(await compactor.compactMetrics(), shardKeys.length);
  assert.deepEqual((await allKeys(store)).filter((k) => k[1] === "metrics-shards"), []);
  await checkTotals([compactor], runs);
  assert.equal(await compactor.compactMetrics(), 0);

  // Compaction while runs end (writers retry against it) and readers read.
  const retrying = [0, 1].map(() => new Records(store, { clock }));
  const more = endAtOnce(store, clock, retrying, 30);
  const compacting = (async () => {
    for (let i = 0; i < 5; i++) await compactor.compactMetrics();
  })();
  const reading = (async () => {
    for (let i = 0; i < 5; i++) {
      const m = await compactor.getMetrics("f");
      assert.ok(m !== null && m.count >= runs.length && m.count <= runs.length + 60);
    }
  })();
  const all = [...runs, ...(await more)];
  await Promise.all([compacting, reading]);
  await checkTotals([compactor], all);
  await compactor.compactMetrics();
  assert.deepEqual((await allKeys(store)).filter((k) => k[1] === "metrics-shards"), []);
  await checkTotals([compactor], all);
}

backendTest(
  "Records: runs of one flow ending at once never conflict on metrics; totals stay exact",
  async (backend) => {
    const clock = new FakeClock();
    const store = await openBackend(backend, clock);
    try {
      await exactUnderConcurrency(store, clock);
    } finally {
      await store.close();
    }
  },
);

const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");

Deno.test({
  name: "Records: runs of one flow ending at once never conflict on metrics [postgres]",
  ignore: !PG_URL,
  async fn() {
    const clock = new FakeClock();
    const schema = `fs_mshard_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
    const store = await openStore({ plugin: "postgres", url: PG_URL!, schema }, { clock });
    try {
      await exactUnderConcurrency(store, clock);
    } finally {
      const sql = (await import("../../plugins/postgres/client.ts")).openClient(PG_URL!, {
        max: 1,
      });
      await store.close();
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.end();
    }
  },
});
