import assert from "node:assert/strict";
import { join } from "node:path";
import type { RunEvent, RunRecord, RunStatus } from "../src/records/types.ts";
import { runJob } from "../src/jobs/run.ts";
import type { Records } from "../src/records/records.ts";
import { openRuntime, type Runtime } from "../src/runtime.ts";
import type { Store } from "../src/store/types.ts";
import { type FakeClock, fakeClock } from "../src/testing/clock.ts";
import { findArchivedRun, listArchivedRuns as listArchivedCommand } from "../src/cli/archive.ts";
import { _internals, readGzipLines, sha256File } from "../src/archive_format.ts";
import { type ArchiveIndex, listArchivedRuns, periodOf, readArchivedRun } from "./archive.ts";
import { newRunId } from "../src/records/run_id.ts";

const DAY = 86_400_000;
/** 2026-06-01T00:00Z: 40 and 45 days before is April, 70 days is March, 10 days is May. */
const NOW = Date.UTC(2026, 5, 1);
const BACKENDS = ["memory", "sqlite"] as const;

interface Env {
  dir: string;
  rt: Runtime;
  clock: FakeClock;
  records: Records;
  store: Store;
}

async function withEnv(
  backend: typeof BACKENDS[number],
  fn: (env: Env) => Promise<void>,
): Promise<void> {
  // A space in the home, as in "/home/me/My Flows": a command a message suggests must quote it.
  const dir = await Deno.makeTempDir({ prefix: "flowstate archive " });
  const clock = fakeClock(NOW);
  const spec = backend === "memory"
    ? { plugin: "memory" }
    : { plugin: "sqlite", path: join(dir, "state.db"), durability: "relaxed" };
  const rt = await openRuntime({
    config: { stores: { default: spec } },
    home: dir,
    cwd: dir,
    clock,
  });
  try {
    await fn({ dir, rt, clock, records: await rt.records(), store: await rt.store() });
  } finally {
    await rt.close();
    await Deno.remove(dir, { recursive: true });
  }
}

interface Seeded {
  run: RunRecord;
  events: RunEvent[];
}

/** Record a run `ageDays` before NOW, with two event chunks. */
async function addRun(
  env: Env,
  flowId: string,
  status: RunStatus,
  ageDays: number,
): Promise<Seeded> {
  const startedAt = NOW - ageDays * DAY;
  env.clock.set(startedAt);
  const id = newRunId(startedAt);
  const base = {
    id,
    flowId,
    flowVersion: "v1",
    inputs: { n: ageDays },
    outputs: null,
    startedAt,
    nodes: {},
    error: null,
  };
  await env.records.startRun({ ...base, status: "running", endedAt: null, durationMs: null });
  const events: RunEvent[] = [
    { at: startedAt, type: "run.start" },
    { at: startedAt + 1, type: "node.log", node: "a", message: `age ${ageDays}`, level: "info" },
  ];
  await env.records.appendEvents(id, events.slice(0, 1));
  await env.records.appendEvents(id, events.slice(1));
  if (status !== "running") {
    await env.records.finishRun({
      ...base,
      status,
      outputs: status === "succeeded" ? { ok: true } : null,
      endedAt: startedAt + 10,
      durationMs: 10,
      error: status === "failed" ? { node: "a", message: "boom" } : null,
    });
  }
  env.clock.set(NOW);
  return { run: (await env.records.getRun(id))!, events };
}

async function archive(env: Env, options: Record<string, unknown> = {}, dryRun = false) {
  return await runJob(env.rt, "archive", { options, progress: "quiet", dryRun });
}

async function readIndex(env: Env, period: string): Promise<ArchiveIndex> {
  return JSON.parse(await Deno.readTextFile(join(env.dir, "archive", `runs-${period}.index.json`)));
}

async function archivedIds(env: Env, period: string): Promise<string[]> {
  const path = join(env.dir, "archive", `runs-${period}.ndjson.gz`);
  return (await Array.fromAsync(readGzipLines(path))).map((l) => JSON.parse(l).run.id);
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

for (const backend of BACKENDS) {
  Deno.test(`archive moves old finished runs into monthly files and reads them back [${backend}]`, async () => {
    await withEnv(backend, async (env) => {
      const a = await addRun(env, "alpha", "succeeded", 40);
      const b = await addRun(env, "beta", "failed", 45);
      const c = await addRun(env, "alpha", "cancelled", 70);
      const recent = await addRun(env, "alpha", "succeeded", 10);
      const running = await addRun(env, "beta", "running", 50);

      const job = await archive(env);
      assert.equal(job.status, "succeeded", job.error?.message);
      assert.deepEqual(
        { ...job.outputs, bytesWritten: undefined },
        {
          archived: 3,
          files: 2,
          bytesWritten: undefined,
          deleted: 3,
          alreadyArchived: 0,
          skippedRunning: 1,
          // These runs' version "v1" was never saved: no definition to keep.
          versionsArchived: 0,
          versionsMissing: 3,
          periods: ["2026-04", "2026-03"],
          cancelled: false,
        },
      );
      // Gone from the records store, with their events; the others stay.
      for (const { run } of [a, b, c]) {
        assert.equal(await env.records.getRun(run.id), null);
        assert.deepEqual(await env.records.getEvents(run.id), []);
      }
      assert.ok(await env.records.getRun(recent.run.id));
      assert.equal((await env.records.getRun(running.run.id))?.status, "running");

      // One file per month, each with an index that matches it.
      assert.deepEqual(await listDir(join(env.dir, "archive")), [
        "runs-2026-03.index.json",
        "runs-2026-03.ndjson.gz",
        "runs-2026-03.versions.ndjson.gz",
        "runs-2026-04.index.json",
        "runs-2026-04.ndjson.gz",
        "runs-2026-04.versions.ndjson.gz",
      ]);
      const april = await readIndex(env, "2026-04");
      const file = await sha256File(join(env.dir, "archive", "runs-2026-04.ndjson.gz"));
      assert.equal(april.sha256, file.sha256);
      assert.equal(april.bytes, file.bytes);
      assert.equal(april.runs, 2);
      assert.deepEqual(april.entries.map((e) => e.id).sort(), [a.run.id, b.run.id].sort());
      assert.equal(
        job.outputs?.bytesWritten as number,
        file.bytes + (await Deno.stat(join(env.dir, "archive", "runs-2026-03.ndjson.gz"))).size,
      );

      // Read back: the same record and events.
      for (const seeded of [a, b, c]) {
        const found = await readArchivedRun(env.dir, seeded.run.id);
        assert.deepEqual(found?.run, seeded.run);
        assert.deepEqual(found?.events, seeded.events);
      }
      assert.equal(await readArchivedRun(env.dir, recent.run.id), null);
      // What `runs show` falls back to.
      const shown = await findArchivedRun(b.run.id, env.rt.home);
      assert.equal(shown?.run.error?.message, "boom");
      assert.equal(shown?.archive, "runs-2026-04.ndjson.gz");
      assert.equal(await findArchivedRun("not-a-run-id", env.rt.home), null);

      // Listing: newest first, with filters, from the indexes.
      const all = await listArchivedRuns(env.dir);
      assert.deepEqual(all.map((r) => r.id), [a.run.id, b.run.id, c.run.id]);
      assert.deepEqual((await listArchivedRuns(env.dir, { flowId: "alpha" })).map((r) => r.id), [
        a.run.id,
        c.run.id,
      ]);
      assert.deepEqual((await listArchivedRuns(env.dir, { status: "failed" })).map((r) => r.id), [
        b.run.id,
      ]);
      assert.deepEqual(
        (await listArchivedRuns(env.dir, { since: NOW - 60 * DAY, until: NOW - 42 * DAY })).map((
          r,
        ) => r.id),
        [b.run.id],
      );
      assert.deepEqual((await listArchivedRuns(env.dir, { limit: 1 })).map((r) => r.id), [
        a.run.id,
      ]);
      assert.equal(all[0].archive, "runs-2026-04.ndjson.gz");
      assert.equal(all[0].durationMs, 10);
    });
  });
}

Deno.test("archive adds to an existing period's file without duplicating runs", async () => {
  await withEnv("sqlite", async (env) => {
    const first = await addRun(env, "alpha", "succeeded", 40);
    assert.equal((await archive(env)).outputs?.archived, 1);
    const second = await addRun(env, "alpha", "succeeded", 41);
    const third = await addRun(env, "beta", "succeeded", 42);
    const job = await archive(env);
    assert.equal(job.outputs?.archived, 2);
    const ids = await archivedIds(env, "2026-04");
    // The old file's lines first, then the new runs (newest first, as they were listed).
    assert.deepEqual(ids, [first.run.id, second.run.id, third.run.id]);
    assert.equal((await readIndex(env, "2026-04")).runs, 3);
    for (const s of [first, second, third]) {
      assert.deepEqual((await readArchivedRun(env.dir, s.run.id))?.run, s.run);
    }
  });
});

Deno.test("archive deletes nothing when the written file does not verify", async () => {
  await withEnv("sqlite", async (env) => {
    const runs = [
      await addRun(env, "alpha", "succeeded", 40),
      await addRun(env, "alpha", "failed", 41),
    ];
    const verify = _internals.verifyArchiveFile;
    _internals.verifyArchiveFile = () =>
      Promise.reject(new Error("simulated: read back a different checksum"));
    try {
      const job = await archive(env);
      assert.equal(job.status, "failed");
      assert.match(job.error?.message ?? "", /simulated: read back a different checksum/);
    } finally {
      _internals.verifyArchiveFile = verify;
    }
    for (const { run } of runs) assert.deepEqual(await env.records.getRun(run.id), run);
    // No archive file, no index, no temp file left behind.
    assert.deepEqual(await listDir(join(env.dir, "archive")), []);

    // A real mismatch is caught by the real check (the file is changed after it is written).
    _internals.verifyArchiveFile = async (path, expected, what) => {
      const bytes = await Deno.readFile(path);
      bytes[bytes.length - 5] ^= 0xff; // the gzip trailer: CRC / size
      await Deno.writeFile(path, bytes);
      return await verify(path, expected, what);
    };
    try {
      const job = await archive(env);
      assert.equal(job.status, "failed");
      assert.match(job.error?.message ?? "", /did not read back intact/);
    } finally {
      _internals.verifyArchiveFile = verify;
    }
    for (const { run } of runs) assert.deepEqual(await env.records.getRun(run.id), run);
    assert.deepEqual(await listDir(join(env.dir, "archive")), []);
  });
});

for (const crashPoint of ["afterArchiveFile", "afterArchiveIndex"] as const) {
  Deno.test(`archive rerun after a crash ${crashPoint === "afterArchiveFile" ? "before the index was written" : "before runs were deleted"} does not duplicate runs`, async () => {
    await withEnv("sqlite", async (env) => {
      const old = await addRun(env, "alpha", "succeeded", 40);
      assert.equal((await archive(env)).outputs?.archived, 1);
      const runs = [
        await addRun(env, "alpha", "succeeded", 41),
        await addRun(env, "beta", "failed", 44),
        await addRun(env, "beta", "succeeded", 75),
      ];
      const hook = _internals[crashPoint];
      _internals[crashPoint] = () => Promise.reject(new Error("simulated crash"));
      try {
        const crashed = await archive(env);
        assert.equal(crashed.status, "failed");
      } finally {
        _internals[crashPoint] = hook;
      }
      // The crash left the April file written, every run still in the store.
      for (const { run } of runs) assert.ok(await env.records.getRun(run.id));
      const april = await archivedIds(env, "2026-04");
      assert.equal(april.length, 3);

      const rerun = await archive(env);
      assert.equal(rerun.status, "succeeded", rerun.error?.message);
      assert.equal(rerun.outputs?.alreadyArchived, 2);
      assert.equal(rerun.outputs?.archived, 1); // the March run: the crash came before it
      assert.equal(rerun.outputs?.deleted, 3);
      assert.deepEqual(await archivedIds(env, "2026-04"), april, "April was not rewritten");
      assert.equal((await readIndex(env, "2026-04")).runs, 3);
      assert.equal(
        (await readIndex(env, "2026-04")).sha256,
        (await sha256File(join(env.dir, "archive", "runs-2026-04.ndjson.gz"))).sha256,
      );
      for (const { run } of [old, ...runs]) {
        assert.equal(await env.records.getRun(run.id), null);
        assert.deepEqual((await readArchivedRun(env.dir, run.id))?.run, run);
      }
      assert.equal((await listArchivedRuns(env.dir)).length, 4);
      assert.equal(
        (await listDir(join(env.dir, "archive"))).filter((n) => n.startsWith(".")).length,
        0,
        "no temp files",
      );
    });
  });
}

Deno.test("archive after a crash does not archive a run again under another period setting", async () => {
  await withEnv("memory", async (env) => {
    const run = await addRun(env, "alpha", "succeeded", 40);
    const hook = _internals.afterArchiveIndex;
    _internals.afterArchiveIndex = () => Promise.reject(new Error("simulated crash"));
    try {
      assert.equal((await archive(env, { period: "month" })).status, "failed");
    } finally {
      _internals.afterArchiveIndex = hook;
    }
    const rerun = await archive(env, { period: "day" });
    assert.equal(rerun.outputs?.alreadyArchived, 1);
    assert.equal(rerun.outputs?.deleted, 1);
    assert.equal(rerun.outputs?.files, 0);
    assert.equal(await env.records.getRun(run.run.id), null);
    assert.deepEqual(await listDir(join(env.dir, "archive")), [
      "runs-2026-04.index.json",
      "runs-2026-04.ndjson.gz",
      "runs-2026-04.versions.ndjson.gz",
    ]);
  });
});

Deno.test("archive with period day writes one file per day", async () => {
  await withEnv("memory", async (env) => {
    const runs = [
      await addRun(env, "alpha", "succeeded", 40),
      await addRun(env, "alpha", "succeeded", 41),
      await addRun(env, "alpha", "succeeded", 42),
    ];
    const job = await archive(env, { period: "day", olderThan: "35d" });
    assert.equal(job.outputs?.files, 3);
    const names = await listDir(join(env.dir, "archive"));
    for (const { run } of runs) {
      assert.ok(names.includes(`runs-${periodOf(run.startedAt, "day")}.ndjson.gz`));
      assert.deepEqual((await readArchivedRun(env.dir, run.id))?.run, run);
    }
  });
});

Deno.test("archive dry run lists what would move and writes nothing", async () => {
  await withEnv("sqlite", async (env) => {
    const runs = [
      await addRun(env, "alpha", "succeeded", 40),
      await addRun(env, "beta", "failed", 70),
    ];
    const before = await Array.fromAsync(env.store.list());
    const job = await archive(env, {}, true);
    assert.equal(job.status, "succeeded", job.error?.message);
    assert.equal(job.outputs?.wouldArchive, 2);
    assert.equal(job.outputs?.archived, 0);
    assert.equal(job.outputs?.deleted, 0);
    assert.deepEqual(
      (job.outputs?.plan as { period: string; ids: string[] }[]).map((p) => [p.period, p.ids]),
      [["2026-04", [runs[0].run.id]], ["2026-03", [runs[1].run.id]]],
    );
    assert.deepEqual(await listDir(join(env.dir, "archive")), []);
    const after = (await Array.fromAsync(env.store.list())).filter((e) =>
      !e.key.includes(job.id) && e.key[2] !== "job:archive"
    );
    assert.deepEqual(after, before);
  });
});

Deno.test("archive stops at a consistent point when cancelled", async () => {
  await withEnv("sqlite", async (env) => {
    const runs = [
      await addRun(env, "alpha", "succeeded", 40),
      await addRun(env, "beta", "failed", 70),
    ];
    const controller = new AbortController();
    controller.abort();
    const job = await runJob(env.rt, "archive", { progress: "quiet", signal: controller.signal });
    assert.equal(job.status, "cancelled");
    for (const { run } of runs) assert.deepEqual(await env.records.getRun(run.id), run);
    assert.deepEqual(await listDir(join(env.dir, "archive")), []);
    // The lease was released: the next run archives.
    assert.equal((await archive(env)).outputs?.archived, 2);
  });
});

Deno.test("archive refuses to run while another archive job holds the lease, until it expires", async () => {
  await withEnv("memory", async (env) => {
    await addRun(env, "alpha", "succeeded", 40);
    await env.store.set(["flowstate", "archive-lease"], { runId: "killed" }, { expireIn: 120_000 });
    const refused = await archive(env);
    assert.equal(refused.status, "failed");
    assert.match(refused.error?.message ?? "", /another archive job \(run killed\) is running/);
    env.clock.advance(120_001);
    assert.equal((await archive(env)).outputs?.archived, 1);
    assert.equal(await env.store.get(["flowstate", "archive-lease"]), null);
  });
});

Deno.test("archive never overwrites a damaged archive file", async () => {
  await withEnv("memory", async (env) => {
    await addRun(env, "alpha", "succeeded", 40);
    await archive(env);
    const path = join(env.dir, "archive", "runs-2026-04.ndjson.gz");
    const damaged = (await Deno.readFile(path)).subarray(0, 30);
    await Deno.writeFile(path, damaged);
    const next = await addRun(env, "alpha", "succeeded", 41);
    const job = await archive(env);
    assert.equal(job.status, "failed");
    assert.ok(
      job.error?.message.includes(`${path} is damaged: it is damaged or truncated (gzip`),
      job.error?.message,
    );
    assert.deepEqual(await Deno.readFile(path), damaged);
    assert.deepEqual(await env.records.getRun(next.run.id), next.run);
  });
});

Deno.test("a damaged archive file: the error says where it is and what to do, and moving it aside works as it says", async () => {
  await withEnv("sqlite", async (env) => {
    const old = await addRun(env, "alpha", "succeeded", 40);
    await archive(env);
    const path = join(env.dir, "archive", "runs-2026-04.ndjson.gz");
    // A file whose second line is not JSON (gzip itself intact).
    const text = (await Array.fromAsync(readGzipLines(path))).join("\n") + "\n{oops\n";
    const gz = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    const damaged = new Uint8Array(await new Response(gz).arrayBuffer());
    await Deno.writeFile(path, damaged);
    const next = await addRun(env, "alpha", "succeeded", 41);
    const job = await archive(env);
    assert.equal(job.status, "failed");
    const message = job.error?.message ?? "";
    assert.ok(message.includes(`${path} is damaged: line 2 is not JSON.`), message);
    assert.match(message, /restore it from a backup/i);
    const mv = `mv '${path}' '${path}.damaged'`;
    assert.ok(message.includes(`(${mv})`), message);
    assert.match(
      message,
      /writes a new runs-2026-04\.ndjson\.gz holding only the runs it archives/,
    );
    assert.deepEqual(await Deno.readFile(path), damaged, "never overwritten");
    assert.deepEqual(await env.records.getRun(next.run.id), next.run, "nothing deleted");
    // The readers of the archive say the same: where the file is, that it is damaged, what to do.
    const readers = {
      listArchivedRuns: () => listArchivedRuns(env.dir),
      readArchivedRun: () => readArchivedRun(env.dir, old.run.id),
    };
    for (const [name, read] of Object.entries(readers)) {
      await assert.rejects(read, (err: Error) => {
        assert.equal(err.name, "StoreCorruptError", name);
        assert.ok(err.message.includes(`${path} is damaged: line 2 is not JSON.`), err.message);
        assert.ok(err.message.includes(`(${mv})`), err.message);
        return true;
      });
    }
    // Do what it says, as it says it (through a shell): move it aside. The next run archives
    // into a new file for the month; the runs only in the moved file are no longer read back.
    const moved = await new Deno.Command("sh", { args: ["-c", mv], stderr: "piped" }).output();
    assert.equal(moved.code, 0, new TextDecoder().decode(moved.stderr));
    const again = await archive(env);
    assert.equal(again.status, "succeeded", again.error?.message);
    assert.deepEqual(await archivedIds(env, "2026-04"), [next.run.id]);
    assert.deepEqual((await readIndex(env, "2026-04")).entries.map((e) => e.id), [next.run.id]);
    assert.equal(await env.records.getRun(next.run.id), null);
    assert.equal(await readArchivedRun(env.dir, old.run.id), null);
    assert.deepEqual((await listArchivedRuns(env.dir)).map((r) => r.id), [next.run.id]);
    assert.deepEqual(await Deno.readFile(`${path}.damaged`), damaged, "the moved file is kept");
  });
});

Deno.test("damaged archive files hold back only their own periods: every other period is archived, then the job fails naming them", async () => {
  await withEnv("sqlite", async (env) => {
    await addRun(env, "alpha", "succeeded", 40); // April
    await addRun(env, "alpha", "succeeded", 110); // February
    assert.equal((await archive(env)).status, "succeeded");
    const april = join(env.dir, "archive", "runs-2026-04.ndjson.gz");
    const february = join(env.dir, "archive", "runs-2026-02.ndjson.gz");
    // April's file truncated (gzip damaged); February's with a line that is not JSON.
    const aprilBytes = (await Deno.readFile(april)).subarray(0, 30);
    await Deno.writeFile(april, aprilBytes);
    const text = (await Array.fromAsync(readGzipLines(february))).join("\n") + "\n{oops\n";
    const gz = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    const februaryBytes = new Uint8Array(await new Response(gz).arrayBuffer());
    await Deno.writeFile(february, februaryBytes);

    const inApril = await addRun(env, "alpha", "succeeded", 41);
    const inMarch = await addRun(env, "beta", "failed", 70);
    const inFebruary = await addRun(env, "alpha", "succeeded", 111);
    const job = await archive(env);
    assert.equal(job.status, "failed");
    const message = job.error?.message ?? "";
    // The first damaged file found (April: runs are read newest first), with what to do.
    assert.ok(message.includes(`${april} is damaged: it is damaged or truncated (gzip`), message);
    assert.ok(message.includes(`(mv '${april}' '${april}.damaged')`), message);
    assert.match(message, /restore it from a backup/i);
    assert.ok(
      message.includes(
        `1 more archive file is damaged and left as it is, the same way: ${february}`,
      ),
      message,
    );
    assert.match(message, /every other period was archived \(1 run into 1 file\)/);
    // March was archived all the same: in its file, out of the records store, read back.
    assert.deepEqual(await archivedIds(env, "2026-03"), [inMarch.run.id]);
    assert.equal(await env.records.getRun(inMarch.run.id), null);
    assert.deepEqual((await readArchivedRun(env.dir, inMarch.run.id))?.run, inMarch.run);
    // The damaged files are untouched, and their periods' runs are still in the records store.
    assert.deepEqual(await Deno.readFile(april), aprilBytes, "never overwritten");
    assert.deepEqual(await Deno.readFile(february), februaryBytes, "never overwritten");
    assert.deepEqual(await env.records.getRun(inApril.run.id), inApril.run, "nothing deleted");
    assert.deepEqual(await env.records.getRun(inFebruary.run.id), inFebruary.run);
  });
});

Deno.test("runs ls --archived prints the archived runs as JSON, newest first", async () => {
  await withEnv("sqlite", async (env) => {
    const a = await addRun(env, "alpha", "succeeded", 40);
    const b = await addRun(env, "beta", "failed", 70);
    await archive(env);
    const config = join(env.dir, "flowstate.yaml");
    await Deno.writeTextFile(
      config,
      `home: .\nstores:\n  default: { plugin: sqlite, path: state.db }\n`,
    );
    const lines: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => lines.push(args.join(" "));
    try {
      assert.equal(await listArchivedCommand({ json: true }, { config }), 0);
      assert.equal(await listArchivedCommand({ json: true, flow: "beta" }, { config }), 0);
    } finally {
      console.log = log;
    }
    const [all, beta] = lines.map((l) => JSON.parse(l));
    assert.deepEqual(all.map((r: { id: string }) => r.id), [a.run.id, b.run.id]);
    assert.deepEqual(Object.keys(all[0]).sort(), [
      "archive",
      "durationMs",
      "endedAt",
      "error",
      "flowId",
      "flowVersion",
      "id",
      "startedAt",
      "status",
    ]);
    assert.deepEqual(beta.map((r: { id: string }) => r.id), [b.run.id]);
  });
});
