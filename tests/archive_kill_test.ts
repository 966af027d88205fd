/**
 * The archive job killed with SIGKILL mid-scan and mid-delete loses nothing: after a
 * rerun, every run is in the archive exactly once and gone from the live store.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { listArchivedRuns } from "../jobs.ts";
import { openRuntime, runJob } from "../mod.ts";
import { Records } from "../records.ts";
import { fakeClock } from "../src/testing/clock.ts";
import { newRunId } from "../src/records/run_id.ts";
import { killAtLine } from "./_kill_at.ts";
import { exitOf } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CHILD = join(ROOT, "tests/fixtures/archive_child.ts");
const RUNS = 1200;

Deno.test("archive killed with kill -9 mid-scan and mid-delete, then rerun, loses and duplicates nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-archive-kill-" });
  try {
    const config = {
      stores: { main: { plugin: "sqlite", path: join(dir, "s.db"), durability: "relaxed" } },
    };
    const ids: string[] = [];
    {
      // Seed runs spread over ~5 months, so several archive files are written.
      const clock = fakeClock(Date.UTC(2025, 0, 1));
      await using rt = await openRuntime({ config, home: join(dir, "home"), cwd: dir, clock });
      const records = new Records(await rt.store("main"), { clock });
      for (let i = 0; i < RUNS; i++) {
        clock.advance(3 * 3600_000);
        const id = newRunId(clock.now());
        const run = {
          id,
          flowId: "demo",
          flowVersion: "v1",
          status: "running" as const,
          inputs: { i },
          outputs: null,
          startedAt: clock.now(),
          endedAt: null,
          durationMs: null,
          nodes: {},
          error: null,
        };
        await records.startRun(run);
        await records.appendEvents(id, [{ at: clock.now(), type: "run.start" }]);
        await records.finishRun({ ...run, status: i % 7 ? "succeeded" : "failed", outputs: {} });
        ids.push(id);
      }
    }
    const minutes = (n: number) => n * 60_000;
    const liveAfterKill: number[] = [];
    // Where each attempt is killed: mid-scan (the period's file not yet renamed into place),
    // mid-delete (the file written, some of its runs deleted), and mid-delete again.
    const killAt: { phase: "scan" | "delete"; done: number }[] = [
      { phase: "scan", done: 150 },
      { phase: "delete", done: 60 },
      { phase: "delete", done: 20 },
    ];
    for (const [attempt, at] of killAt.entries()) {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--unstable-worker-options",
          "--config",
          join(ROOT, "deno.json"),
          CHILD,
          dir,
          String(minutes(5 * attempt)),
        ],
        stdout: "piped",
        stderr: "null",
        env: { RUST_BACKTRACE: "0" },
      }).spawn();
      const killed = await killAtLine(child, (line) => {
        const match = /^progress (scan|delete) (\d+)$/.exec(line);
        return match !== null && match[1] === at.phase && Number(match[2]) >= at.done;
      });
      const status = await exitOf(child);
      // A child that finished before its kill point leaves nothing to do, which the rerun checks.
      if (killed) assert.equal(status.signal, "SIGKILL");
      await using peek = await openRuntime({ config, home: join(dir, "home"), cwd: dir });
      liveAfterKill.push(
        await (await peek.store("main")).count(["flowstate", "runs-by-flow", "demo"]),
      );
    }
    // Killed mid-scan: no archive file was renamed into place, so nothing was deleted.
    assert.equal(liveAfterKill[0], RUNS, `live runs after each kill: ${liveAfterKill.join(", ")}`);
    assert.ok(
      liveAfterKill.some((n) => n > 0 && n < RUNS),
      `a kill landed mid-way (live runs after each kill: ${liveAfterKill.join(", ")})`,
    );
    // The rerun comes after the last killed job's lease has lapsed.
    const later = { now: () => Date.now() + minutes(20) };
    await using rt = await openRuntime({ config, home: join(dir, "home"), cwd: dir, clock: later });
    const finish = await runJob(rt, "archive", {
      options: { olderThan: 0, period: "month" },
      progress: "quiet",
      onLog: () => {},
    });
    assert.equal(finish.status, "succeeded", JSON.stringify(finish.error));
    const archived = await listArchivedRuns(rt.home, { flowId: "demo", limit: 100_000 });
    const archivedIds = archived.map((r) => r.id).sort();
    assert.equal(new Set(archivedIds).size, archivedIds.length, "no run archived twice");
    assert.deepEqual(archivedIds, [...ids].sort(), "every run is in the archive");
    const live = (await (await rt.records()).listRuns({ flowId: "demo", limit: 1000 })).runs;
    assert.deepEqual(live, [], "no archived run is left in the live store");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
