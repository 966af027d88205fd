import assert from "node:assert/strict";
import { join } from "node:path";
import { ConflictError, openRuntime, runJob } from "../mod.ts";
import type { RunRecord } from "../src/records/types.ts";
import { createProgress } from "../src/jobs/progress.ts";
import type { AtomicOperation, Key, Store } from "../src/store/types.ts";
import { type FakeClock, fakeClock } from "../src/testing/clock.ts";
import type { FlowDefinition } from "../src/flow/types.ts";
import type { Env } from "./testdata/retention.ts";
import type { RetentionResult } from "./retention.ts";
import {
  type Backend,
  DAY,
  NOW,
  PG_SCHEMA,
  PG_URL,
  REDIS_URL,
  retain,
  withEnv,
} from "./testdata/retention.ts";

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
if (REDIS_URL !== undefined) BACKENDS.push("redis");

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
        const phases: (string | number | undefined)[] = [];
        const progress = createProgress({ mode: "quiet" });
        const start = progress.start.bind(progress);
        progress.start = (label, total) => {
          phases.push(label, total);
          start(label, total);
        };
        const result: RetentionResult = await retain(env.rt, { maxAge: "30d" }, { progress });
        assert.deepEqual(phases.slice(-2), ["retention: flows' versions checked", 1]);
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
  const { openClient } = await import("../plugins/postgres/client.ts");
  const sql = openClient(PG_URL!);
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

// A run starting on a version while retention prunes it. Two runtimes on one SQLite file stand
// for two processes: `worker` ran version V a moment ago (so it starts V again without saving it:
// it remembers V as saved), `admin` moves the head away and runs the retention job. A store
// wrapper stops the job at the commit named, to start a run of V on the worker right there.

/** When to step in: right after the job marked versions, or right before it deletes them. */
type Moment = "after-mark" | "before-delete" | "never";

/** `store` whose commits call `hook` once, at `moment`. */
function pausing(store: Store, moment: Moment, hook: () => Promise<void>): Store {
  let fired = moment === "never";
  const wrapOp = (op: AtomicOperation): AtomicOperation => {
    let marks = false;
    let deletes = false;
    const proxy: AtomicOperation = new Proxy(op, {
      get(target, name) {
        const value = Reflect.get(target, name, target);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (name === "set" && Object.hasOwn(args[1] as object, "@pruning")) marks = true;
          if (name === "delete" && (args[0] as Key)[1] === "versions") deletes = true;
          if (name === "commit") return commit(target);
          const out = value.apply(target, args);
          return out === target ? proxy : out;
        };
      },
    });
    const commit = async (target: AtomicOperation) => {
      if (!fired && moment === "before-delete" && deletes) {
        fired = true;
        await hook();
      }
      const result = await target.commit();
      if (!fired && moment === "after-mark" && marks && result.ok) {
        fired = true;
        await hook();
      }
      return result;
    };
    return proxy;
  };
  return new Proxy(store, {
    get(target, name) {
      const value = Reflect.get(target, name, target);
      if (name === "atomic") return () => wrapOp(target.atomic());
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function raceOn(moment: Moment): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "versions-race-" });
  const open = (clock: FakeClock) =>
    openRuntime({
      config: { stores: { default: { plugin: "sqlite", path: join(dir, "state.db") } } },
      home: dir,
      cwd: dir,
      clock,
    });
  const workerClock = fakeClock(NOW - 60 * DAY);
  const adminClock = fakeClock(NOW);
  await using worker = await open(workerClock);
  await using admin = await open(adminClock);
  try {
    const v = generated(1);
    const first = await worker.runFlow(v); // V, 60 days ago: its run ages out
    workerClock.set(NOW);
    await admin.runFlow(generated(2)); // W: the head now
    const records = await admin.records();
    let during: RunRecord | undefined;
    const store = pausing(await admin.store(), moment, async () => {
      during = await worker.runFlow(v); // the worker takes V as saved: its start checks it
    });
    const result = await retain(admin, { maxAge: "30d" }, { store: () => Promise.resolve(store) });
    assert.equal(result.deleted, 1); // V's old run
    assert.equal(during === undefined, moment === "never", "the run in between started");
    const after = await worker.runFlow(v);
    for (const run of [during, after]) {
      if (run === undefined) continue;
      assert.equal(run.status, "succeeded");
      assert.equal(run.flowVersion, first.flowVersion); // same content, same hash
      const version = await records.getVersion("gen", run.flowVersion);
      assert.notEqual(version, null, `run ${run.id} refers to a deleted version`);
      assert.equal((await records.getRun(run.id))?.flowVersion, run.flowVersion);
    }
    if (moment === "never") {
      // Deleted, then saved again by the worker's run: a new version, the next seq.
      assert.equal(result.versionsDeleted, 1);
      assert.equal((await records.getVersion("gen", first.flowVersion))?.seq, 3);
    } else {
      // The run came in while V was being pruned: V is kept, as it was.
      assert.equal(result.versionsDeleted, 0);
      assert.equal((await records.getVersion("gen", first.flowVersion))?.seq, 1);
    }
    assert.equal((await records.getHead("gen"))?.hash, first.flowVersion);
  } finally {
    await worker.close();
    await admin.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a run of a version retention deleted since its process saved it saves it again [sqlite]", async () => {
  await raceOn("never");
});

Deno.test("a run that starts on a version right after retention marked it keeps it [sqlite]", async () => {
  await raceOn("after-mark");
});

Deno.test("a run that starts on a version right before retention deletes it keeps it [sqlite]", async () => {
  await raceOn("before-delete");
});

for (const backend of ["memory", "sqlite"] as const) {
  Deno.test(`retention deletes thousands of unused versions in pages and batches [${backend}]`, async () => {
    await withEnv(backend, async (env) => {
      env.clock.set(NOW - 40 * DAY);
      for (let i = 0; i < 2_345; i++) await env.records.saveVersion(generated(i));
      env.clock.set(NOW);
      const head = await env.records.saveVersion(generated(-1));
      const result = await retain(env.rt, { maxAge: "30d" });
      assert.equal(result.versionsDeleted, 2_345);
      assert.ok(result.batches >= 24, `${result.batches} commits`); // at most 100 versions each
      const left = await env.records.listVersions("gen");
      assert.deepEqual(left.map((v) => [v.hash, v.seq]), [[head.hash, 2_346]]);
      assert.deepEqual((await env.records.listFlows())[0].prunedVersions, 2_345);
      // No run ever finished: nothing to fold.
      assert.equal(await env.records.getMetrics("gen", "*pruned"), null);
    });
  });
}

Deno.test("retention cancelled while pruning versions stops between flows and leaves no version marked", async () => {
  await withEnv("sqlite", async (env) => {
    env.clock.set(NOW - 40 * DAY);
    for (const id of ["a", "b"]) {
      for (let i = 0; i < 3; i++) await env.records.saveVersion({ ...generated(i), id });
    }
    env.clock.set(NOW);
    const stop = new AbortController();
    const progress = createProgress({ mode: "quiet" });
    const update = progress.update.bind(progress);
    let phase = "";
    const start = progress.start.bind(progress);
    progress.start = (label, total) => {
      phase = label;
      start(label, total);
    };
    progress.update = (done) => {
      if (phase.endsWith("versions checked")) stop.abort(); // after the first flow
      update(done);
    };
    const result = await retain(env.rt, {}, { progress, signal: stop.signal });
    assert.equal(result.cancelled, true);
    assert.equal(result.versionsDeleted, 2, "flow a's two old versions");
    assert.equal((await env.records.listVersions("a")).length, 1);
    assert.equal((await env.records.listVersions("b")).length, 3);
    const marked = (await Array.fromAsync(env.store.list({ prefix: ["flowstate", "versions"] })))
      .filter((e) => Object.hasOwn(e.value as object, "@pruning"));
    assert.deepEqual(marked, []);
  });
});

Deno.test("a claimed run whose flow changed while queued cannot end on a version retention deleted meanwhile", async () => {
  await withEnv("sqlite", async (env) => {
    const records = env.records;
    env.clock.set(NOW - 40 * DAY);
    const a = await records.saveVersion(generated(1));
    const b = await records.saveVersion(generated(2)); // what the file holds when a worker takes it
    env.clock.set(NOW);
    const queued = await records.enqueueRun({
      flowId: "gen",
      flowVersion: a.hash,
      inputs: {},
      flowPath: "/gen.flow.yaml",
    });
    const claimed = (await records.claimRun({ worker: "w1", leaseMs: 60_000 }))!;
    assert.equal(claimed.id, queued.runId);
    // The worker loaded the changed file (version b, saved by this process); then another
    // process saves a newer version, and retention runs while the run runs: nothing refers to
    // b yet (the running record says a), so b goes.
    await records.saveVersion(generated(3));
    const result = await retain(env.rt, { maxAge: "30d" });
    assert.equal(result.versionsDeleted, 1);
    assert.equal(await records.getVersion("gen", b.hash), null);
    assert.notEqual(await records.getVersion("gen", a.hash), null, "the running run's");
    const end = { ...claimed, flowVersion: b.hash, status: "succeeded" as const, endedAt: NOW };
    await assert.rejects(() => records.finishClaimedRun(end), ConflictError);
    // Nor be put back in the queue (a worker stopping) referring to it.
    await assert.rejects(() => records.finishClaimedRun(end, [], { release: true }), ConflictError);
    assert.equal((await records.getRun(claimed.id))?.status, "running", "nothing written");
    // Saved again (what the runtime does), the end is recorded and refers to it.
    await records.saveVersion(generated(2));
    assert.equal(await records.finishClaimedRun(end), true);
    assert.equal((await records.getRun(claimed.id))?.flowVersion, b.hash);
    assert.notEqual(await records.getVersion("gen", b.hash), null);
  });
});
