/**
 * `Records.takeSignal` with a receiver, on every records backend (memory,
 * jsonfile, sqlite; postgres with FLOWSTATE_TEST_POSTGRES_URL, redis with
 * FLOWSTATE_TEST_REDIS_URL): the signal taken is the receiver's from then on
 * (its next takes get it again, no other), two takes at once for one
 * receiver take one signal, a sub-run's take is recorded under the root run,
 * and the run's end and its deletion clear the record.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore, type Store } from "../mod.ts";
import { Records, type RunRecord } from "../records.ts";
import { FakeClock, newRun } from "../src/records/_test_utils.ts";
import { dropSchemaTest, PG_URL } from "../plugins/postgres/_test_utils.ts";
import redis from "../packages/redis/mod.ts";
import {
  NEEDS_SERVER,
  newPrefix,
  REDIS_URL,
  removeTestKeys,
} from "../packages/redis/_test_utils.ts";

const tmp = await Deno.makeTempDir({ prefix: "flowstate-signal-received-" });
const pgSchema = `flowstate_sigrecv_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;

const BACKENDS: { name: string; open: (id: string) => Promise<Store>; ignore?: string }[] = [
  { name: "memory", open: () => openStore({ plugin: "memory" }) },
  {
    name: "jsonfile",
    open: (id) => openStore({ plugin: "jsonfile", path: join(tmp, `${id}.json`) }),
  },
  { name: "sqlite", open: (id) => openStore({ plugin: "sqlite", path: join(tmp, `${id}.db`) }) },
  {
    name: "postgres",
    ...(PG_URL === undefined ? { ignore: "set FLOWSTATE_TEST_POSTGRES_URL to run" } : {}),
    open: (id) => openStore({ plugin: "postgres", url: PG_URL!, schema: pgSchema, table: id }),
  },
  {
    name: "redis",
    ...(REDIS_URL === undefined ? { ignore: NEEDS_SERVER } : {}),
    open: (id) => openStore({ plugin: redis, url: REDIS_URL!, prefix: newPrefix(id) }),
  },
];

let cases = 0;

/** A running run (a sub-run of `parent` if given), started in `records`. */
async function started(records: Records, parent?: string): Promise<RunRecord> {
  const clock = new FakeClock();
  clock.t = Date.now();
  const run: RunRecord = {
    ...newRun(clock, parent === undefined ? "f" : "g", "job"),
    ...(parent === undefined ? {} : { parentRunId: parent }),
  };
  await records.startRun(run);
  return run;
}

/** The keys under the records' `signals` prefix. */
async function signalKeys(store: Store): Promise<string[][]> {
  const keys: string[][] = [];
  for await (const e of store.list({ prefix: ["flowstate", "signals"] })) {
    keys.push(e.key.map(String));
  }
  return keys;
}

function ended(run: RunRecord): RunRecord {
  const endedAt = Date.now();
  return { ...run, status: "succeeded", endedAt, durationMs: endedAt - run.startedAt };
}

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `signals (${backend.name}): a receiver's take is its own from then on; one take for two at once; cleared with the run`,
    ...(backend.ignore === undefined ? {} : { ignore: true }),
    async fn() {
      const store = await backend.open(`recv${++cases}`);
      try {
        const records = new Records(store);
        const run = await started(records);
        for (const n of [1, 2, 3]) {
          assert.equal((await records.sendSignal(run.id, "go", { n })).kind, "stored");
        }
        const approve = { receiver: "approve" };
        // Two takes at once for one receiver (an attempt left running and its retry): one signal.
        const [x, y] = await Promise.all([
          records.takeSignal(run.id, "go", approve),
          records.takeSignal(run.id, "go", approve),
        ]);
        assert.deepEqual(x?.data, { n: 1 });
        assert.deepEqual(y?.data, { n: 1 });
        assert.deepEqual((await records.takeSignal(run.id, "go", approve))?.data, { n: 1 });
        // Another receiver, and a take without one, get the next ones.
        assert.deepEqual((await records.takeSignal(run.id, "go", { receiver: "b" }))?.data, {
          n: 2,
        });
        assert.deepEqual((await records.takeSignal(run.id, "go"))?.data, { n: 3 });
        assert.equal(await records.takeSignal(run.id, "go", { receiver: "c" }), null);
        assert.deepEqual(await signalKeys(store), [
          ["flowstate", "signals", run.id, "@received", "approve", "go"],
          ["flowstate", "signals", run.id, "@received", "b", "go"],
        ]);

        // A sub-run's node: taken from the sub-run or the root, recorded under the root; the
        // sub-run's end keeps it (the node's next attempt may be a new sub-run).
        const sub = await started(records, run.id);
        await records.sendSignal(run.id, "ok", "root's");
        const place = { receiver: "review/approve" };
        assert.equal((await records.takeSignal([sub.id, run.id], "ok", place))?.data, "root's");
        await records.finishRun(ended(sub), []);
        const again = await started(records, run.id);
        assert.equal((await records.takeSignal([again.id, run.id], "ok", place))?.data, "root's");
        await records.finishRun(ended(again), []);

        await records.finishRun(ended(run), []);
        assert.deepEqual(await signalKeys(store), [], "the run's end clears what its nodes took");

        // Deleting a run clears them too.
        const deleted = await started(records);
        await records.sendSignal(deleted.id, "go");
        assert.equal((await records.takeSignal(deleted.id, "go", approve))?.data, null);
        assert.equal((await signalKeys(store)).length, 1);
        await records.deleteRuns([deleted.id]);
        assert.deepEqual(await signalKeys(store), []);
      } finally {
        await store.close();
      }
    },
  });
}

dropSchemaTest("signals: the postgres schema of these tests is dropped", pgSchema);
removeTestKeys();
Deno.test("signals: the temporary folder is removed", () => Deno.remove(tmp, { recursive: true }));
