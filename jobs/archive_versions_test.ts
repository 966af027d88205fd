import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type FlowDefinition,
  openRuntime,
  runJob,
  type Runtime,
  StoreCorruptError,
} from "../mod.ts";
import { readArchivedRun } from "../jobs.ts";
import { fakeClock } from "../src/testing/clock.ts";
import { _internals, readGzipLines } from "../src/archive_format.ts";

// The archive keeps the flow versions its runs ran, so that a run's definition outlives the
// retention job deleting that version from the records store.

const DAY = 86_400_000;
/** 2026-06-01T00:00Z. */
const NOW = Date.UTC(2026, 5, 1);

/** Version `n` of flow "gen". */
function generated(n: number): FlowDefinition {
  return { id: "gen", nodes: [{ id: "a", type: "log", with: { message: `generated ${n}` } }] };
}

interface Env {
  home: string;
  rt: Runtime;
  clock: ReturnType<typeof fakeClock>;
  archive: string;
}

async function withEnv(fn: (env: Env) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "archver-" });
  const clock = fakeClock(NOW);
  const rt = await openRuntime({
    config: { stores: { default: { plugin: "sqlite", path: join(home, "state.db") } } },
    home,
    cwd: home,
    clock,
  });
  try {
    await fn({ home, rt, clock, archive: join(home, "archive") });
  } finally {
    await rt.close();
    await Deno.remove(home, { recursive: true });
  }
}

/** Run version `n` of "gen" `ageDays` before NOW. */
async function runAt(env: Env, ageDays: number, n: number) {
  env.clock.set(NOW - ageDays * DAY);
  const run = await env.rt.runFlow(generated(n));
  env.clock.set(NOW);
  return run;
}

async function job(env: Env, name: string, options: Record<string, unknown>) {
  const result = await runJob(env.rt, name, { options, progress: "quiet" });
  assert.equal(result.status, "succeeded", result.error?.message);
  return result.outputs as Record<string, unknown>;
}

/** The definition `readArchivedRun` gives with an archived run. */
async function definitionOf(env: Env, runId: string): Promise<FlowDefinition | undefined> {
  return (await readArchivedRun(env.home, runId))?.version?.definition;
}

async function gunzipLines(path: string): Promise<string[]> {
  return await Array.fromAsync(readGzipLines(path));
}

/** Make the April archive look as one written before archives kept flow versions. */
async function asBeforeVersions(env: Env): Promise<void> {
  await Deno.remove(join(env.archive, "runs-2026-04.versions.ndjson.gz"));
  const indexPath = join(env.archive, "runs-2026-04.index.json");
  const { versions: _, ...index } = JSON.parse(await Deno.readTextFile(indexPath));
  await Deno.writeTextFile(indexPath, JSON.stringify(index));
}

Deno.test("an archived run keeps its definition after retention deletes its version", async () => {
  await withEnv(async (env) => {
    const old = await runAt(env, 60, 1);
    const again = await runAt(env, 59, 1); // the same version: kept once
    const next = await runAt(env, 50, 2);
    const head = await runAt(env, 1, 3);
    const records = await env.rt.records();

    const archived = await job(env, "archive", { olderThan: "30d" });
    assert.equal(archived.archived, 3);
    assert.equal(archived.versionsArchived, 2);
    assert.equal(archived.versionsMissing, 0);
    const retention = await job(env, "retention", { maxAge: "30d" });
    assert.equal(retention.versionsDeleted, 2);
    assert.equal(await records.getVersion("gen", old.flowVersion), null);
    assert.equal(await records.getVersion("gen", next.flowVersion), null);

    for (const [run, n] of [[old, 1], [again, 1], [next, 2]] as const) {
      const found = await readArchivedRun(env.home, run.id);
      assert.equal(found?.run.flowVersion, run.flowVersion);
      assert.equal(found?.version?.hash, run.flowVersion);
      assert.deepEqual(found?.version?.definition, generated(n));
    }
    assert.notEqual(await records.getVersion("gen", head.flowVersion), null);

    // The flow versions file is its own file, in the index with its size and checksum; the
    // runs file holds runs only (as Flowstate 0.5 reads it).
    const index = JSON.parse(
      await Deno.readTextFile(join(env.archive, "runs-2026-04.index.json")),
    );
    const versionsPath = join(env.archive, "runs-2026-04.versions.ndjson.gz");
    const stat = await Deno.stat(versionsPath);
    assert.deepEqual(
      { ...index.versions, sha256: undefined },
      { file: "runs-2026-04.versions.ndjson.gz", count: 2, bytes: stat.size, sha256: undefined },
    );
    assert.match(index.versions.sha256, /^[0-9a-f]{64}$/);
    assert.equal(index.version, 1);
    for (const line of await gunzipLines(join(env.archive, "runs-2026-04.ndjson.gz"))) {
      assert.equal(typeof JSON.parse(line).run?.id, "string");
    }
  });
});

Deno.test("an archive written before archives kept flow versions still reads, and the next archive run keeps them", async () => {
  await withEnv(async (env) => {
    const first = await runAt(env, 60, 1);
    const second = await runAt(env, 58, 2);
    await job(env, "archive", { olderThan: "30d" });
    await asBeforeVersions(env);
    const runsFile = join(env.archive, "runs-2026-04.ndjson.gz");
    const runsBytes = await Deno.readFile(runsFile);
    const found = await readArchivedRun(env.home, first.id);
    assert.equal(found?.run.id, first.id);
    assert.equal(found?.version, null); // not in the archive: said, not thrown

    // The next archive run, with nothing new to archive, writes April's flow versions file from
    // the versions the records store still holds, before retention deletes them.
    await runAt(env, 1, 3);
    const outputs = await job(env, "archive", { olderThan: "30d" });
    assert.equal(outputs.archived, 0);
    assert.equal(outputs.versionsArchived, 2);
    assert.deepEqual(await Deno.readFile(runsFile), runsBytes, "the runs file is left as it is");
    await job(env, "retention", { maxAge: "30d" });
    assert.equal(await (await env.rt.records()).getVersion("gen", first.flowVersion), null);
    assert.deepEqual(await definitionOf(env, first.id), generated(1));
    assert.deepEqual(await definitionOf(env, second.id), generated(2));
    // Done once: the index now names the file.
    assert.equal((await job(env, "archive", { olderThan: "30d" })).versionsArchived, 0);
  });
});

Deno.test("a period archived before archives kept flow versions gets the versions of its earlier runs when runs are added", async () => {
  await withEnv(async (env) => {
    const first = await runAt(env, 60, 1);
    await job(env, "archive", { olderThan: "30d" });
    await asBeforeVersions(env);
    const second = await runAt(env, 55, 2);
    const outputs = await job(env, "archive", { olderThan: "30d" });
    assert.equal(outputs.archived, 1);
    assert.equal(outputs.versionsArchived, 2);
    await runAt(env, 1, 3);
    await job(env, "retention", { maxAge: "30d" });
    assert.deepEqual(await definitionOf(env, first.id), generated(1));
    assert.deepEqual(await definitionOf(env, second.id), generated(2));
  });
});

Deno.test("an index that does not name the flow versions file (0.5's archive job rewrote it) is rebuilt, the file's versions kept", async () => {
  await withEnv(async (env) => {
    const first = await runAt(env, 60, 1);
    await job(env, "archive", { olderThan: "30d" });
    await runAt(env, 1, 9);
    await job(env, "retention", { maxAge: "30d" }); // version 1 is now only in the archive
    assert.equal(await (await env.rt.records()).getVersion("gen", first.flowVersion), null);
    const indexPath = join(env.archive, "runs-2026-04.index.json");
    const { versions: _, ...older } = JSON.parse(await Deno.readTextFile(indexPath));
    await Deno.writeTextFile(indexPath, JSON.stringify(older));

    const later = await runAt(env, 45, 2);
    await job(env, "archive", { olderThan: "30d" });
    const rebuilt = JSON.parse(await Deno.readTextFile(indexPath));
    assert.equal(rebuilt.versions.count, 2);
    assert.deepEqual(await definitionOf(env, first.id), generated(1));
    assert.deepEqual(await definitionOf(env, later.id), generated(2));
  });
});

Deno.test("a damaged flow versions file: nothing of its period is archived or deleted, and reading says which file", async () => {
  await withEnv(async (env) => {
    const first = await runAt(env, 60, 1);
    await job(env, "archive", { olderThan: "30d" });
    const path = join(env.archive, "runs-2026-04.versions.ndjson.gz");
    const bytes = (await Deno.readFile(path)).subarray(0, 20); // truncated
    await Deno.writeFile(path, bytes);

    const later = await runAt(env, 45, 2);
    const result = await runJob(env.rt, "archive", {
      options: { olderThan: "30d" },
      progress: "quiet",
    });
    assert.equal(result.status, "failed");
    assert.match(result.error?.message ?? "", /runs-2026-04\.versions\.ndjson\.gz is damaged/);
    assert.match(result.error?.message ?? "", /mv .*versions\.ndjson\.gz/);
    assert.notEqual(await (await env.rt.records()).getRun(later.id), null, "not deleted");
    assert.deepEqual(await Deno.readFile(path), bytes, "left as it is");

    await assert.rejects(
      () => readArchivedRun(env.home, first.id),
      (err: Error) =>
        err instanceof StoreCorruptError && /runs-2026-04\.versions\.ndjson\.gz/.test(err.message),
    );

    // Moved aside, as the message says: the next run writes a new one, from the store.
    await Deno.rename(path, `${path}.damaged`);
    assert.equal((await readArchivedRun(env.home, first.id))?.version, null);
    await job(env, "archive", { olderThan: "30d" });
    assert.deepEqual(await definitionOf(env, later.id), generated(2));
  });
});

Deno.test("archive deletes nothing when the flow versions file written does not verify", async () => {
  await withEnv(async (env) => {
    const run = await runAt(env, 60, 1);
    const verify = _internals.verifyArchiveVersions;
    _internals.verifyArchiveVersions = () =>
      Promise.reject(
        new StoreCorruptError("simulated bad read-back", { path: "x", movedTo: null }),
      );
    try {
      const result = await runJob(env.rt, "archive", {
        options: { olderThan: "30d" },
        progress: "quiet",
      });
      assert.equal(result.status, "failed");
    } finally {
      _internals.verifyArchiveVersions = verify;
    }
    assert.notEqual(await (await env.rt.records()).getRun(run.id), null);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(env.archive)), []);
  });
});

Deno.test("keeping the flow versions of an earlier period skips a damaged runs file, leaving it as it is", async () => {
  await withEnv(async (env) => {
    await runAt(env, 60, 1);
    await job(env, "archive", { olderThan: "30d" });
    await asBeforeVersions(env);
    const runsFile = join(env.archive, "runs-2026-04.ndjson.gz");
    const truncated = (await Deno.readFile(runsFile)).subarray(0, 30);
    await Deno.writeFile(runsFile, truncated);
    await Deno.remove(join(env.archive, "runs-2026-04.index.json"));
    const outputs = await job(env, "archive", { olderThan: "30d" });
    assert.equal(outputs.versionsArchived, 0);
    assert.deepEqual(await Deno.readFile(runsFile), truncated);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(env.archive))).map((e) => e.name), [
      "runs-2026-04.ndjson.gz",
    ]);
  });
});
