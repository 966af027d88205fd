import assert from "node:assert/strict";
import type { RunStatus } from "../src/records/types.ts";
import {
  addRun,
  assertRemaining,
  type Backend,
  BACKENDS,
  DAY,
  dump,
  model,
  PG_SCHEMA,
  PG_URL,
  retain,
  type SeededRun,
  withEnv,
} from "./testdata/retention.ts";

// The retention job against an independent model of which runs go, on random
// runs, statuses, ages and options, on every backend (postgres only with
// FLOWSTATE_TEST_POSTGRES_URL).

async function modelRounds(backends: readonly Backend[], rounds: number): Promise<void> {
  let seed = Number(Deno.env.get("RETENTION_SEED") ?? 42);
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const statuses: RunStatus[] = [
    "succeeded",
    "succeeded",
    "succeeded",
    "failed",
    "cancelled",
    "timed-out",
    "running",
  ];
  for (let round = 0; round < rounds; round++) {
    for (const backend of backends) {
      await withEnv(backend, async (env) => {
        const runs: SeededRun[] = [];
        const legacyRound = round % 3 === 2;
        const n = 20 + Math.floor(random() * 60);
        for (let i = 0; i < n; i++) {
          const status = pick(statuses);
          const flowId = pick(["a", "b", "c"]);
          const run = await addRun(env, flowId, status, random() * 120, Math.floor(random() * 3));
          runs.push(run);
          if (legacyRound && status === "succeeded") {
            // As Flowstate 0.1 wrote it: succeeded runs in the status indexes too.
            const summary = (await env.records.listRunSummaries({ flowId, limit: 1000 })).runs
              .find((r) => r.id === run.id);
            await env.store.atomic()
              .set(["flowstate", "runs-by-status", "succeeded", run.id], summary!)
              .set(["flowstate", "runs-by-flow-status", flowId, "succeeded", run.id], summary!)
              .commit();
          }
        }
        const maxAge = pick([null, 10, 30, 60]);
        const failedMaxAge = pick([null, 20, 90]);
        const maxRuns = pick([null, 0, 3, 10, 1000]);
        const flows = pick([undefined, undefined, ["a"], ["b", "c"]]);
        const batchSize = pick([1, 3, 7, 5000]);
        const before = await dump(env.store);
        const what = JSON.stringify({ round, backend, maxAge, failedMaxAge, maxRuns, flows });
        const result = await retain(env.rt, {
          maxAge: maxAge === null ? null : `${maxAge}d`,
          failedMaxAge: failedMaxAge === null ? null : `${failedMaxAge}d`,
          maxRuns,
          flows,
          batchSize,
        });
        const considered = flows === undefined
          ? runs
          : runs.filter((r) => flows.includes(r.flowId));
        const expected = model(considered, {
          maxAge: maxAge === null ? null : maxAge * DAY,
          failedMaxAge: failedMaxAge === null ? null : failedMaxAge * DAY,
          maxRuns,
        });
        await assertRemaining(env.store, before, [...expected.byAge, ...expected.byCount]);
        assert.equal(result.deletedByAge, expected.byAge.size, what);
        assert.equal(result.deletedByCount, expected.byCount.size, what);
        assert.equal(result.keptFailed, expected.keptFailed, what);
        assert.equal(
          result.keptRunning,
          considered.filter((r) => r.status === "running").length,
          what,
        );
      });
    }
  }
}

Deno.test("retention matches the model on random runs, statuses, ages and options", async () => {
  await modelRounds(BACKENDS, Number(Deno.env.get("RETENTION_ROUNDS") ?? 12));
});

Deno.test("retention matches the model on jsonfile and on a plugin without native range deletes", async () => {
  await modelRounds(["jsonfile", "mapfile"], 4);
});

Deno.test({
  name: `retention matches the model on postgres${
    PG_URL ? "" : " (ignored: set FLOWSTATE_TEST_POSTGRES_URL to run)"
  }`,
  ignore: PG_URL === undefined,
  async fn() {
    try {
      await modelRounds(["postgres"], 4);
    } finally {
      const { openClient } = await import("../plugins/postgres/client.ts");
      const sql = openClient(PG_URL!, { max: 1 });
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${PG_SCHEMA}" CASCADE`);
      await sql.end();
    }
  },
});
