import assert from "node:assert/strict";
import { runJob } from "../mod.ts";
import type { FlowDefinition } from "../src/flow/types.ts";
import type { Env } from "./testdata/retention.ts";
import type { RetentionResult } from "./retention.ts";
import { type Backend, DAY, NOW, PG_SCHEMA, PG_URL, retain, withEnv } from "./testdata/retention.ts";

// The retention job deletes flow versions that no run refers to any more, older than maxAge,
// never the current one; their metrics fold into the flow's "*pruned" metrics.

/** A definition generated from `n`: every `n` is a new version of flow `gen`. */
function generated(n: number, fail = false): FlowDefinition {
  return {
    id: "gen",
    nodes: [{ id: "a", type: fail ? "fail" : "log", with: { message: `generated ${n}` } }],
  };
}

/** Run `generated(n)` at `NOW - ageDays`, then put the clock back at NOW. */
async function runAt(env: Env, ageDays: number, n: number, fail = false) {
  env.clock.set(NOW - ageDays * DAY);
  const run = await env.rt.runFlow(generated(n, fail));
  env.clock.set(NOW);
  return run;
}

const BACKENDS: Backend[] = ["memory", "sqlite", "jsonfile", "mapfile"];
if (PG_URL !== undefined) BACKENDS.push("postgres");

for (const backend of BACKENDS) {
  Deno.test(`retention deletes unused flow versions older than maxAge and folds their metrics [${backend}]`, async () => {
    try {
      await withEnv(backend, async (env) => {
        // 20 generated versions, 60 to 41 days ago, one run each (the odd ones fail), then
        // one recent version with a run 5 days ago, then the head: the newest, 2 days ago.
        for (let i = 0; i < 20; i++) await runAt(env, 60 - i, i, i % 2 === 1);
        const recent = await runAt(env, 5, 100);
        const latest = await runAt(env, 2, 101);
        const records = env.records;
        assert.equal((await records.listVersions("gen")).length, 22);
        const totalBefore = await records.getMetrics("gen");
        assert.equal(totalBefore?.count, 22);

        // The failed runs are kept 90 days: their 10 versions stay, the others' runs go.
        const result: RetentionResult = await retain(env.rt, { maxAge: "30d" });
        assert.equal(result.deleted, 10);
        assert.equal(result.versionsDeleted, 10);
        assert.equal(result.versionsSkipped, 0);
        const left = await records.listVersions("gen");
        assert.equal(left.length, 12);
        // Every run left still finds its version.
        const { runs } = await records.listRuns({ flowId: "gen", limit: 100 });
        assert.equal(runs.length, 12);
        for (const run of runs) {
          assert.notEqual(await records.getVersion("gen", run.flowVersion), null, run.id);
        }
        assert.equal((await records.getHead("gen"))?.hash, latest.flowVersion);
        assert.notEqual(await records.getVersion("gen", recent.flowVersion), null);

        // Totals: "*" unchanged; the versions left and "*pruned" add up to it.
        assert.deepEqual(await records.getMetrics("gen"), totalBefore);
        const all = await records.listMetrics("gen");
        const pruned = all.find((m) => m.version === "*pruned");
        assert.equal(pruned?.count, 10);
        assert.equal(pruned?.succeeded, 10);
        const perVersion = all.filter((m) => m.version !== "*");
        assert.equal(perVersion.length, 13); // 12 versions and "*pruned"
        assert.equal(perVersion.reduce((n, m) => n + m.count, 0), totalBefore?.count);
        assert.equal(
          perVersion.reduce((n, m) => n + m.totalDurationMs, 0),
          totalBefore?.totalDurationMs,
        );

        const [flow] = await records.listFlows();
        assert.deepEqual([flow.versions, flow.prunedVersions], [22, 10]);

        // Once the failed runs age out, their versions go too; the head never does.
        env.clock.set(NOW + 60 * DAY);
        const later = await retain(env.rt, { maxAge: "30d" });
        assert.equal(later.versionsDeleted, 11);
        const [only] = await records.listVersions("gen");
        assert.equal((await records.listVersions("gen")).length, 1);
        assert.equal(only.hash, latest.flowVersion);
        assert.deepEqual(await records.getMetrics("gen"), totalBefore);
        assert.equal((await records.getMetrics("gen", "*pruned"))?.count, 21);
        assert.equal((await records.listFlows())[0].prunedVersions, 21);

        // A pruned definition run again is saved anew, with the next seq.
        env.clock.set(NOW + 61 * DAY);
        const again = await env.rt.runFlow(generated(0));
        const version = await records.getVersion("gen", again.flowVersion);
        assert.equal(version?.seq, 23);
        assert.equal((await records.getHead("gen"))?.hash, again.flowVersion);
      });
    } finally {
      if (backend === "postgres") await dropSchema();
    }
  });
}

async function dropSchema(): Promise<void> {
  const { default: postgres } = await import("postgres");
  const sql = postgres(PG_URL!, { onnotice: () => {} });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${PG_SCHEMA}" CASCADE`);
  } finally {
    await sql.end();
  }
}

Deno.test("retention without maxAge keeps every flow version; a dry run only counts them", async () => {
  await withEnv("memory", async (env) => {
    for (let i = 0; i < 5; i++) await runAt(env, 60 - i, i);
    await runAt(env, 1, 99);
    const kept = await retain(env.rt, { maxAge: null, maxRuns: 1 });
    assert.equal(kept.deletedByCount, 5);
    assert.equal(kept.versionsDeleted, 0);
    assert.equal((await env.records.listVersions("gen")).length, 6);
    const dry = await retain(env.rt, { maxAge: "30d" }, { dryRun: true });
    assert.equal(dry.versionsDeleted, 5);
    assert.equal((await env.records.listVersions("gen")).length, 6);
    const real = await runJob(env.rt, "retention", { options: { maxAge: "30d" } });
    assert.equal(real.status, "succeeded");
    assert.equal(real.outputs?.versionsDeleted, 5);
    assert.equal((await env.records.listVersions("gen")).length, 1);
  });
});
