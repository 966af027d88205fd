/**
 * Retention ages a run from its end, not from the time its id encodes (its
 * enqueue time, for a queued run): a run delayed or queued past `maxAge` is
 * not deleted the moment it finishes. `runs show` says when a queued run
 * started (its attempt), and when it was enqueued. Through the CLI (a short
 * delay: the runs of the last minute are read one by one) and `mod.ts` (a
 * clock moved by weeks: the index of runs that ended late).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, runJob, startWorker } from "../mod.ts";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { streamLines } from "./fixtures/daemon_process.ts";
import { exitOf } from "./_deadline.ts";

const DAY = 86_400_000;

Deno.test("cli: a run delayed past maxAge is kept by retention once it ran; runs show says when it started and when it was enqueued", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-retention-end-" });
  try {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flows", "q.flow.yaml"),
      "id: q\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default: { plugin: sqlite, path: ./data.db }\nflows: [./flows]\n",
    );
    const run = (...args: string[]) => runCli(dir, args);
    const enqueued = await run("enqueue", "q", "--delay", "3s");
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const id = enqueued.stdout.trim();
    const worker = cliCommand(dir, ["worker", "--json", "--poll", "50ms"]).spawn();
    const lines = streamLines(worker.stdout);
    const end = JSON.parse(await lines.next(/"type":"end"/));
    assert.equal(end.status, "succeeded");
    worker.kill("SIGTERM");
    await exitOf(worker);
    await lines.done;
    await worker.stderr.cancel();

    // Its id is more than 2 s old (it was enqueued 3 s before it ran); it ended just now.
    const kept = await run("jobs", "run", "retention", "--option", "maxAge=2s");
    assert.equal(kept.code, 0, kept.stderr);
    const shown = await run("runs", "show", id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^status: {3}succeeded$/m);
    const started = /^started: {2}(.+)$/m.exec(shown.stdout)?.[1];
    const enqueuedAt = /^enqueued: (.+)$/m.exec(shown.stdout)?.[1];
    assert.ok(started !== undefined && enqueuedAt !== undefined, shown.stdout);
    assert.ok(started > enqueuedAt, `started ${started} after enqueued ${enqueuedAt}`);
    const record = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    assert.ok(record.queue.attempts[0].startedAt > record.queue.enqueuedAt);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("retention keeps a run queued for weeks until maxAge after it ended (mod.ts)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-retention-late-" });
  try {
    const flow = join(dir, "q.flow.yaml");
    await Deno.writeTextFile(
      flow,
      "id: q\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    let now = Date.UTC(2026, 0, 1);
    await using rt = await openRuntime({
      config: { stores: { main: { plugin: "memory" } } },
      cwd: dir,
      home: dir,
      clock: { now: () => now },
    });
    // Both enqueued on January 1st: one runs at once, the other 40 days later.
    const early = await rt.enqueue(flow);
    const late = await rt.enqueue(flow, { delay: "40d" });
    const records = await rt.records();
    const ran = async (runId: string) => {
      const ended = Promise.withResolvers<void>();
      const worker = startWorker(rt, {
        onEvent: (e) => e.type === "end" && e.runId === runId && ended.resolve(),
      });
      await ended.promise;
      await worker.stop();
    };
    await ran(early.runId);
    now += 40 * DAY;
    await ran(late.runId);
    now += 1_000;

    const job = await runJob(rt, "retention", { options: { maxAge: "30d", maxRuns: null } });
    assert.equal(job.status, "succeeded", job.error?.message);
    assert.equal(await records.getRun(early.runId), null, "the run that ended 40 days ago goes");
    assert.equal((await records.getRun(late.runId))?.status, "succeeded", "the late one stays");

    // 31 days after it ended, it goes too.
    now += 31 * DAY;
    await runJob(rt, "retention", { options: { maxAge: "30d", maxRuns: null } });
    assert.equal(await records.getRun(late.runId), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
