/**
 * Kill tests: a child doing acknowledged writes, flow runs or a maintenance
 * job is killed with SIGKILL at seeded random points (a delay after its start,
 * or a delay after its Nth acknowledgement or progress line), and then:
 *
 * - every file it left parses (a jsonfile document is JSON; a SQLite database
 *   passes `integrity_check`), and the store opens at once;
 * - writes: the store holds exactly what the first n or n + 1 writes make of
 *   it, where n writes were acknowledged: every acknowledged write is there
 *   with its value, and the one in flight (an atomic group of five writes, a
 *   set, a delete) is all there or not at all;
 * - flows (`cli.ts run`): the killed run is recorded `running` or
 *   `succeeded`, never anything half-way; the state agrees with the succeeded
 *   runs; the flow runs again;
 * - jobs (`cli.ts jobs run retention`): every run is wholly kept or wholly
 *   deleted, the killed job's record is `running` or `succeeded`, and the job
 *   run again completes.
 *
 * The seed is printed; `FAULTS_SEED` replays it and `FAULTS_KILLS` sets the
 * number of kill points per backend (`deno task faults` runs thousands).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, openStore, runJob, type Runtime } from "../../mod.ts";
import { newRunId } from "../../src/records/run_id.ts";
import type { RunRecord } from "../../src/records/types.ts";
import { dropTestSchema, PG_URL, SCHEMA, withAdmin } from "../../plugins/postgres/_test_utils.ts";
import { model, ops } from "./_ops.ts";
import {
  assertFilesParse,
  type Backend,
  BACKENDS,
  backendTest,
  CHILD,
  CLI,
  CONCURRENCY,
  type KillPlan,
  killPlan,
  killPoints,
  KILLS,
  runAndKill,
  SEED,
  storeSpec,
  Tally,
  type Watched,
  withFaultDir,
} from "./_harness.ts";

/** How the kill points of a backend are shared out. */
const WRITE_KILLS = Math.round(KILLS * 5 / 9);
const FLOW_KILLS = Math.round(KILLS * 2 / 9);
const JOB_KILLS = KILLS - WRITE_KILLS - FLOW_KILLS;
/** Kill points of writers with a change feed (in addition to the others). */
const FEED_KILLS = Math.max(3, Math.round(KILLS / 6));
/** Writes in a child's sequence: more than it gets through before its kill. */
const OPS = 3000;

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function diff(actual: Map<string, string>, expected: Map<string, string>): string {
  const out: string[] = [];
  for (const [k, v] of expected) {
    if (!actual.has(k)) out.push(`missing ${k}`);
    else if (actual.get(k) !== v) {
      out.push(`${k}: ${actual.get(k)?.slice(0, 60)} ≠ ${v.slice(0, 60)}`);
    }
  }
  for (const k of actual.keys()) if (!expected.has(k)) out.push(`unexpected ${k}`);
  return out.slice(0, 8).join("; ");
}

/** Open a store for checking: a killed writer's lock must not make it wait. */
function openForCheck(spec: Record<string, unknown> & { plugin: string }) {
  return openStore(spec.plugin === "jsonfile" ? { ...spec, lockTimeout: 0 } : spec, {
    name: "check",
  });
}

for (const backend of BACKENDS) {
  backendTest(
    backend,
    `${backend}: ${WRITE_KILLS} writers killed (SIGKILL) keep every acknowledged write and no half of an atomic one`,
    () =>
      withFaultDir(`${backend}-writes`, async (dir) => {
        const tally = new Tally();
        await killPoints(WRITE_KILLS, tally, async (i) => {
          const seed = SEED + i;
          const plan = killPlan(seed, { lines: 80, ms: 500, thenMs: 10 });
          const spec = storeSpec(backend, dir, `w${i}`, plan.durability);
          const context = `${backend} writes, kill point ${i} (seed ${seed}, ${
            JSON.stringify(plan)
          })`;
          const watched = await runAndKillChild(spec, seed, plan);
          const acked = watched.stdout.filter((l) => /^\d+$/.test(l));
          assert.deepEqual(acked, acked.map((_, n) => String(n)), `${context}: acks in order`);
          if (!watched.killed) {
            assert.equal(watched.status.code, 0, `${context}: ${watched.stderr.join("\n")}`);
            assert.equal(watched.stdout.at(-1), "done", context);
          }
          assertFilesParse(spec, context);
          const sequence = ops(seed, OPS);
          const store = await openForCheck(spec);
          try {
            const actual = new Map<string, string>();
            for await (const e of store.list()) {
              actual.set(JSON.stringify(e.key), JSON.stringify(e.value));
            }
            const n = acked.length;
            const before = model(sequence, n);
            const after = model(sequence, n + 1);
            assert.ok(
              sameMap(actual, before) || (n < OPS && sameMap(actual, after)),
              `${context}: after ${n} acknowledged writes the store is neither the state after ` +
                `${n} (${diff(actual, before)}) nor after ${n + 1} (${diff(actual, after)})`,
            );
            // The store takes writes again.
            assert.ok((await store.set(["after"], true)).ok, context);
          } finally {
            await store.close();
          }
          if (backend === "postgres") {
            // Thousands of tables would be too many locks for one DROP SCHEMA … CASCADE.
            await withAdmin(PG_URL!, async (sql) => {
              await sql.unsafe(`DROP TABLE "${SCHEMA}"."w${i}", "${SCHEMA}"."w${i}_meta"`);
            });
          }
          tally.add(watched, acked.length > 0, context);
        });
        console.log(tally.line(`${backend} writes`));
        assert.ok(tally.killed >= WRITE_KILLS, tally.line(`${backend} writes`));
      }),
  );

  backendTest(
    backend,
    `${backend}: ${FEED_KILLS} writers with a change feed killed (SIGKILL): the feed and the data agree`,
    () =>
      withFaultDir(`${backend}-feed`, async (dir) => {
        const tally = new Tally();
        await killPoints(FEED_KILLS, tally, async (i) => {
          const seed = SEED + 20_000 + i;
          const plan = killPlan(seed, { lines: 80, ms: 500, thenMs: 10 });
          const spec = {
            ...storeSpec(backend, dir, `f${i}`, plan.durability),
            changes: { keep: "30d" },
          };
          const context = `${backend} feed, kill point ${i} (seed ${seed}, ${
            JSON.stringify(plan)
          })`;
          const watched = await runAndKillChild(spec, seed, plan);
          const acked = watched.stdout.filter((l) => /^\d+$/.test(l));
          if (!watched.killed) {
            assert.equal(watched.status.code, 0, `${context}: ${watched.stderr.join("\n")}`);
          }
          assertFilesParse(spec, context);
          const sequence = ops(seed, OPS);
          const store = await openForCheck(spec);
          try {
            const actual = new Map<string, string>();
            for await (const e of store.list()) {
              actual.set(JSON.stringify(e.key), JSON.stringify(e.value));
            }
            const n = acked.length;
            assert.ok(
              sameMap(actual, model(sequence, n)) ||
                (n < OPS && sameMap(actual, model(sequence, n + 1))),
              `${context}: after ${n} acknowledged writes the data is neither state n nor n + 1`,
            );
            // Replaying the feed from nothing gives the data, and its numbers have no gap.
            const replayed = new Map<string, string>();
            let expected = 1;
            for await (const change of store.changes()) {
              assert.equal(change.seq, expected++, `${context}: gap-free sequence numbers`);
              const k = JSON.stringify(change.key);
              if (change.op === "set") replayed.set(k, JSON.stringify(change.value));
              else replayed.delete(k);
            }
            assert.ok(
              sameMap(replayed, actual),
              `${context}: the feed replayed is not the data (${diff(replayed, actual)})`,
            );
            const info = await store.feedInfo();
            assert.equal(info.lastSeq, expected - 1, `${context}: feedInfo().lastSeq`);
            // The store takes writes again, numbered on.
            assert.ok((await store.set(["after"], true)).ok, context);
            assert.equal((await store.feedInfo()).lastSeq, expected, context);
          } finally {
            await store.close();
          }
          if (backend === "postgres") {
            await withAdmin(PG_URL!, async (sql) => {
              await sql.unsafe(`DROP TABLE "${SCHEMA}"."f${i}", "${SCHEMA}"."f${i}_meta"`);
            });
          }
          tally.add(watched, acked.length > 0, context);
        });
        console.log(tally.line(`${backend} feed`));
        assert.ok(tally.killed >= FEED_KILLS, tally.line(`${backend} feed`));
      }),
  );

  backendTest(
    backend,
    `${backend}: ${FLOW_KILLS} flow runs killed (SIGKILL) are left running or succeeded, with state that agrees`,
    () =>
      withFaultDir(`${backend}-flows`, async (dir) => {
        const tally = new Tally();
        const projects = await projectsFor(backend, dir);
        await killPoints(FLOW_KILLS, tally, async (i, worker) => {
          const seed = SEED + 10_000 + i;
          const { cwd, spec, home } = projects[worker];
          const plan = killPlan(seed, { lines: 1, ms: 400, thenMs: 20 });
          const context = `${backend} flow, kill point ${i} (seed ${seed}, ${
            JSON.stringify(plan)
          })`;
          const watched = await runAndKill(
            [CLI, "run", "faults.flow.yaml"],
            plan,
            (line, stream) => stream === "stderr" && line.startsWith("Running flow"),
            { cwd, env: { FLOWSTATE_HOME: home } },
          );
          const started = watched.stderr.join("\n").match(/\(run (\w+)\)/)?.[1];
          if (!watched.killed) {
            assert.equal(watched.status.code, 0, `${context}: ${watched.stderr.join("\n")}`);
          }
          assertFilesParse(spec, context);
          await using rt = await openProject(projects[worker]);
          const runs = await checkFlowRuns(rt, context);
          if (started !== undefined) {
            const run = runs.find((r) => r.id === started);
            assert.ok(run, `${context}: the run ${started} it announced is not recorded`);
            if (watched.stdout.some((l) => /^status:\s+succeeded/.test(l))) {
              assert.equal(run.status, "succeeded", context);
            }
          }
          tally.add(watched, started !== undefined, context);
        });
        // Each project runs its flow once more, to the end, and is consistent after.
        for (const p of projects) {
          const done = await runAndKill([CLI, "run", "faults.flow.yaml"], NEVER, () => false, {
            cwd: p.cwd,
            env: { FLOWSTATE_HOME: p.home },
          });
          assert.equal(done.status.code, 0, done.stderr.join("\n"));
          assertFilesParse(p.spec, "after the kills");
          await using rt = await openProject(p);
          const runs = await checkFlowRuns(rt, "after the kills");
          assert.ok(runs.some((r) => r.status === "succeeded"));
        }
        console.log(tally.line(`${backend} flows`));
        assert.ok(tally.killed >= FLOW_KILLS, tally.line(`${backend} flows`));
      }),
  );

  backendTest(
    backend,
    `${backend}: ${JOB_KILLS} retention jobs killed (SIGKILL) delete whole runs only, and complete when run again`,
    () =>
      withFaultDir(`${backend}-jobs`, async (dir) => {
        const tally = new Tally();
        const projects = await projectsFor(backend, dir);
        await killPoints(JOB_KILLS, tally, async (i, worker) => {
          const seed = SEED + 20_000 + i;
          const p = projects[worker];
          const plan = killPlan(seed, { lines: 1, ms: 400, thenMs: 30 });
          const context = `${backend} retention, kill point ${i} (seed ${seed}, ${
            JSON.stringify(plan)
          })`;
          const seeded = await seedRuns(p, 60);
          const watched = await runAndKill(
            [CLI, "jobs", "run", "retention", ...RETENTION_ARGS],
            plan,
            (line, stream) => stream === "stderr" && line.startsWith("retention:"),
            { cwd: p.cwd, env: { FLOWSTATE_HOME: p.home } },
          );
          if (!watched.killed) {
            assert.equal(watched.status.code, 0, `${context}: ${watched.stderr.join("\n")}`);
          }
          assertFilesParse(p.spec, context);
          await using rt = await openProject(p);
          const left = await keysByRun(rt, seeded);
          let deleted = 0;
          for (const [id, keys] of seeded) {
            const now = left.get(id) ?? [];
            if (now.length === 0) deleted++;
            else assert.deepEqual(now, keys, `${context}: run ${id} is half deleted`);
          }
          await endedOrRunning(rt, "job:retention", context);
          // Run again, the job completes and every seeded (old) run is gone.
          const again = await runJob(rt, "retention", {
            options: RETENTION_OPTIONS,
            progress: "quiet",
            onLog: () => {},
          });
          assert.equal(again.status, "succeeded", `${context}: ${JSON.stringify(again.error)}`);
          const after = await keysByRun(rt, seeded);
          assert.deepEqual([...after.keys()], [], `${context}: runs left after the rerun`);
          tally.add(watched, deleted > 0 && deleted < seeded.size, context);
        });
        console.log(tally.line(`${backend} retention`));
        assert.ok(tally.killed >= JOB_KILLS, tally.line(`${backend} retention`));
      }),
  );
}

// ---------------------------------------------------------------------------
// Helpers of this file

/** A plan that never kills. */
const NEVER: KillPlan = { afterMs: 600_000, thenMs: 0, durability: "full" };

function runAndKillChild(
  spec: Record<string, unknown>,
  seed: number,
  plan: KillPlan,
): Promise<Watched> {
  return runAndKill(
    [CHILD, JSON.stringify(spec), String(seed), String(OPS)],
    plan,
    (line, stream) => stream === "stdout" && /^\d+$/.test(line),
  );
}

const FLOW = `id: faults
nodes:
  - id: bump
    type: state.increment
    with: { scope: flow, key: count }
  - id: pause
    type: delay
    needs: [bump]
    with: { for: 20ms }
  - id: mark
    type: state.set
    needs: [pause]
    with: { scope: flow, key: "seen-\${{ nodes.bump.output }}", value: "\${{ nodes.bump.output }}" }
outputs:
  count: "\${{ nodes.bump.output }}"
`;

interface Project {
  cwd: string;
  home: string;
  spec: Record<string, unknown> & { plugin: string };
}

/** A project directory with a config on one store of `backend`, and the flow. */
async function project(backend: Backend, dir: string, worker: number): Promise<Project> {
  const cwd = join(dir, `p${worker}`);
  await Deno.mkdir(cwd, { recursive: true });
  const spec = storeSpec(backend, cwd, `p${worker}_${Math.floor(Math.random() * 1e9)}`);
  await Deno.writeTextFile(
    join(cwd, "flowstate.yaml"),
    `stores:\n  main: ${JSON.stringify(spec)}\nscopes: { global: main, flow: main, node: main }\n`,
  );
  await Deno.writeTextFile(join(cwd, "faults.flow.yaml"), FLOW);
  return { cwd, home: join(cwd, "home"), spec };
}

/** One project a worker. */
function projectsFor(backend: Backend, dir: string): Promise<Project[]> {
  return Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => project(backend, dir, w)));
}

function openProject(p: Project): Promise<Runtime> {
  const spec = p.spec.plugin === "jsonfile" ? { ...p.spec, lockTimeout: 0 } : p.spec;
  return openRuntime({
    config: { stores: { main: spec }, scopes: { global: "main", flow: "main", node: "main" } },
    home: p.home,
    cwd: p.cwd,
  });
}

/**
 * Every run of `flowId`, each of which is well-formed and either `succeeded`
 * or (its process killed) still `running`: never failed or half recorded.
 */
async function endedOrRunning(rt: Runtime, flowId: string, context: string) {
  const records = await rt.records();
  const runs: RunRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await records.listRuns({ flowId, limit: 1000, cursor });
    assert.deepEqual(page.malformed ?? [], [], `${context}: malformed run records`);
    runs.push(...page.runs);
    cursor = page.cursor;
  } while (cursor !== undefined);
  for (const run of runs) {
    assert.ok(
      ["running", "succeeded"].includes(run.status),
      `${context}: run ${run.id} of ${flowId} is ${run.status}`,
    );
  }
  return runs;
}

/**
 * The runs of the flow are `running` (a killed process) or `succeeded`, and
 * the state agrees: the counter is at least the succeeded runs and at most
 * all of them; every succeeded run's count is distinct and has its mark.
 */
async function checkFlowRuns(rt: Runtime, context: string): Promise<RunRecord[]> {
  const runs = await endedOrRunning(rt, "faults", context);
  const store = await rt.store("main");
  const count = ((await store.get(["flow", "faults", "count"]))?.value ?? 0) as number;
  const succeeded = runs.filter((r) => r.status === "succeeded");
  assert.ok(
    succeeded.length <= count && count <= runs.length,
    `${context}: count ${count}, ${succeeded.length} succeeded of ${runs.length} runs`,
  );
  const counts = succeeded.map((r) => (r.outputs as { count: number }).count);
  assert.equal(new Set(counts).size, counts.length, `${context}: two runs got one count`);
  const marks = await store.getMany(counts.map((c) => ["flow", "faults", `seen-${c}`]));
  assert.deepEqual(marks.map((m) => m?.value), counts, `${context}: marks of succeeded runs`);
  return runs;
}

const RETENTION_OPTIONS = {
  maxAge: "1d",
  failedMaxAge: "1d",
  maxRuns: null,
  flows: ["demo"],
  batchSize: 2,
};
const RETENTION_ARGS = Object.entries(RETENTION_OPTIONS).flatMap((
  [k, v],
) => ["--option", `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`]);

/** Record `n` finished runs of flow "demo" from ten days ago; the keys of each, by run id. */
async function seedRuns(p: Project, n: number): Promise<Map<string, string[]>> {
  await using rt = await openProject(p);
  const records = await rt.records();
  const ids: string[] = [];
  const base = Date.now() - 10 * 86_400_000;
  for (let i = 0; i < n; i++) {
    const at = base + i * 1000 + Math.floor(Math.random() * 1000);
    const run: RunRecord = {
      id: newRunId(at),
      flowId: "demo",
      flowVersion: "v1",
      status: "running",
      inputs: { i },
      outputs: null,
      startedAt: at,
      endedAt: null,
      durationMs: null,
      nodes: {},
      error: null,
    };
    await records.startRun(run);
    await records.appendEvents(run.id, [{ at, type: "run.start" }]);
    const status = i % 5 === 0 ? "failed" : "succeeded";
    await records.finishRun({ ...run, status, outputs: {}, endedAt: at + 5 });
    ids.push(run.id);
  }
  const keys = await keysByRun(rt, new Map(ids.map((id) => [id, []])));
  assert.equal(keys.size, n);
  return keys;
}

/** The keys (as JSON) that name each of `runs`' ids, for the runs that have any. */
async function keysByRun(
  rt: Runtime,
  runs: Map<string, unknown>,
): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for await (const e of (await rt.store("main")).list()) {
    const id = e.key.find((part) => runs.has(part));
    if (id === undefined) continue;
    const list = found.get(id) ?? [];
    list.push(JSON.stringify(e.key));
    found.set(id, list);
  }
  return found;
}

dropTestSchema();
