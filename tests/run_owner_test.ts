/**
 * A run knows its process (`RunRecord.owner`), end to end, with the CLI run
 * as `deno task flowstate` runs it (its permissions, no more), on real
 * processes:
 * - `kill -9` of `flowstate run`: at once (no wait for the heartbeat to
 *   age), `runs ls` lists the run `abandoned`, not running, and
 *   `runs resume` resumes it;
 * - a `flowstate run` stopped (SIGSTOP) past gc's threshold (a clock ten
 *   minutes ahead): gc leaves its run running and says why; once continued
 *   (SIGCONT), the run succeeds.
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { openRuntime } from "../mod.ts";
import { openStore } from "../records.ts";
import { runJob } from "../jobs.ts";
import { fakeClock } from "../testing.ts";
import { exitOf, hangGuard, outputOf } from "./_deadline.ts";
import { taskCommand } from "./_task_flags.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CLI = join(ROOT, "cli.ts");
const WAIT_NODE = join(ROOT, "tests", "fixtures", "nodes", "wait_for_file.ts");

async function withProject(fn: (dir: string, release: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-owner-" });
  try {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: .flowstate/main.db }\nflows: [flows]\n",
    );
    await Deno.mkdir(join(dir, "flows"));
    const release = join(dir, "release");
    await Deno.writeTextFile(
      join(dir, "flows", "wait.flow.yaml"),
      `id: wait\nnodes:\n  - { id: hi, type: log, with: { message: hi } }\n  - id: wait\n    needs: [hi]\n    type: ${WAIT_NODE}\n    with: { path: ${
        JSON.stringify(release)
      } }\n    permissions: { read: [${JSON.stringify(release)}] }\n`,
    );
    await fn(dir, release);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function cli(dir: string, ...args: string[]) {
  return outputOf(taskCommand(dir, CLI, args));
}

/** Make run `id`'s heartbeat a minute old in `dir`'s store (its process stopped meanwhile). */
async function staleHeartbeat(dir: string, id: string): Promise<void> {
  await using store = await openStore({ plugin: "sqlite", path: join(dir, ".flowstate/main.db") });
  const key = ["flowstate", "runs", id];
  const record = await store.get<Record<string, unknown>>(key);
  assert.equal(record?.value.status, "running");
  await store.set(key, { ...record!.value, heartbeatAt: Date.now() - 60_000 });
}

/** Start `flowstate run wait` and resolve once its wait node waits: the child and its run's id. */
async function startWaiting(dir: string) {
  const child = taskCommand(dir, CLI, ["run", "flows/wait.flow.yaml"]).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/waiting for /.test(seen)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the run ended before its wait node waited:\n${seen}`);
    seen += value;
  }
  const rest = (async () => {
    for (;;) if ((await reader.read()).done) return;
  })();
  const runId = /\(run ([0-9a-z]+)\)/.exec(seen)?.[1];
  assert.ok(runId, seen);
  return { child, runId, rest };
}

Deno.test("kill -9 of flowstate run: at once, runs ls lists its run abandoned and runs resume resumes it", async () => {
  await withProject(async (dir, release) => {
    const { child, runId, rest } = await startWaiting(dir);
    using _hang = hangGuard(child);
    child.kill("SIGKILL");
    await exitOf(child);
    await rest;
    child.stdout.cancel();

    // Its heartbeat is seconds old at most: by it alone, the run would read running for 20 s more.
    const listed = await cli(dir, "runs", "ls");
    assert.equal(listed.code, 0, listed.stderr);
    const row = listed.stdout.split("\n").find((line) => line.startsWith(runId));
    assert.match(row ?? "", /\babandoned\b/, listed.stdout);
    assert.doesNotMatch(row ?? "", /running/, listed.stdout);
    assert.match(listed.stderr, /its process is gone from this machine/);

    await Deno.writeTextFile(release, "");
    const resumed = await cli(dir, "runs", "resume", runId, "--json");
    assert.equal(resumed.code, 0, resumed.stderr);
    const run = JSON.parse(resumed.stdout);
    assert.equal(run.status, "succeeded");
    assert.equal(run.resumeOf, runId);

    const shown = await cli(dir, "runs", "show", runId, "--json");
    const old = JSON.parse(shown.stdout).run;
    assert.equal(old.status, "failed");
    assert.match(old.error.message, /^abandoned: its process \d+ is gone/);
    assert.equal(typeof old.owner?.lock, "string", "the record names its owner's lock");

    // The killed process's owner lock is left (free); the resume's own went with its clean exit.
    const owners = join(dir, ".flowstate", "owners");
    const left = () => Array.from(Deno.readDirSync(owners), (e) => e.name);
    assert.deepEqual(left(), [basename(old.owner.lock)]);
    // gc removes it (a day later: past tempMaxAge); this process's own, held, stays.
    await using rt = await openRuntime({
      config: join(dir, "flowstate.yaml"),
      clock: fakeClock(Date.now() + 86_400_000),
    });
    const gc = await runJob(rt, "gc", { options: { abandonedAfter: null } });
    assert.equal(gc.status, "succeeded", JSON.stringify(gc.error));
    assert.deepEqual(gc.outputs?.tempFiles, [join("owners", basename(old.owner.lock))]);
    for (const name of left()) {
      assert.match(name, new RegExp(`\\.${Deno.pid}\\.\\d+\\.lock$`), "only this process's");
    }
  });
});

Deno.test("a flowstate run stopped (SIGSTOP) past gc's threshold is left running, gc says why; continued, it succeeds", async () => {
  await withProject(async (dir, release) => {
    const { child, runId, rest } = await startWaiting(dir);
    using _hang = hangGuard(child);
    const stdout = new Response(child.stdout).text();
    child.kill("SIGSTOP");
    let continued = false;
    try {
      // gc with a clock ten minutes ahead: the run's heartbeat is ten minutes old.
      await using rt = await openRuntime({
        config: join(dir, "flowstate.yaml"),
        clock: fakeClock(Date.now() + 10 * 60_000),
      });
      const logs: string[] = [];
      const gc = await runJob(rt, "gc", {
        options: { abandonedAfter: "1m", tempFiles: false },
        onLog: (message) => logs.push(message),
      });
      assert.equal(gc.status, "succeeded", JSON.stringify(gc.error));
      assert.equal(gc.outputs?.abandonedRuns, 0, "the stopped process's run is not abandoned");
      assert.equal(gc.outputs?.stalledRuns, 1);
      assert.ok(
        logs.some((line) =>
          new RegExp(
            `^run ${runId} of wait: no heartbeat for 10m\\d*s? but its process ${child.pid} is alive on this host: left running; \`flowstate runs cancel ${runId}\` to end it$`,
          ).test(line)
        ),
        logs.join("\n"),
      );
      assert.equal((await (await rt.records()).getRun(runId))?.status, "running");
    } finally {
      child.kill("SIGCONT");
      continued = true;
    }
    assert.ok(continued);
    await Deno.writeTextFile(release, "");
    const { code } = await exitOf(child);
    await rest;
    assert.equal(code, 0, await stdout);
    const shown = await cli(dir, "runs", "show", runId, "--json");
    assert.equal(JSON.parse(shown.stdout).run.status, "succeeded");
  });
});

Deno.test("a stopped flowstate run with a minute-old heartbeat: runs ls and runs show say stalled, runs cancel says its process is alive; continued, it ends cancelled", async () => {
  await withProject(async (dir) => {
    const { child, runId, rest } = await startWaiting(dir);
    using _hang = hangGuard(child);
    const stdout = new Response(child.stdout).text();
    child.kill("SIGSTOP");
    try {
      await staleHeartbeat(dir, runId);
      const listed = await cli(dir, "runs", "ls");
      const row = listed.stdout.split("\n").find((line) => line.startsWith(runId));
      assert.match(row ?? "", /running \(stalled\?\)/, listed.stdout);
      assert.match(listed.stderr, /its process is alive on this host/);
      const shown = await cli(dir, "runs", "show", runId);
      assert.match(
        shown.stdout,
        new RegExp(
          `status: {3}running \\(stalled\\? .* its process ${child.pid} is alive on this host`,
        ),
      );
      const cancel = await cli(dir, "runs", "cancel", runId);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.match(
        cancel.stdout,
        new RegExp(`its process ${child.pid} is alive on this host but has not answered since`),
      );
    } finally {
      child.kill("SIGCONT");
    }
    await exitOf(child);
    await rest;
    await stdout;
    const shown = await cli(dir, "runs", "show", runId, "--json");
    assert.equal(JSON.parse(shown.stdout).run.status, "cancelled");
  });
});

Deno.test("a copy of a live run's owner lock at its path (the home replaced by a copy) does not make the run abandoned", async () => {
  await withProject(async (dir, release) => {
    const { child, runId, rest } = await startWaiting(dir);
    using _hang = hangGuard(child);
    const stdout = new Response(child.stdout).text();
    const shown = await cli(dir, "runs", "show", runId, "--json");
    const lock: string = JSON.parse(shown.stdout).run.owner.lock;
    // The home is replaced by a copy while the run lives (an rsync of the project, a restore):
    // the file at the lock's path is another one, that nobody holds.
    await Deno.rename(lock, `${lock}.held`);
    await Deno.copyFile(`${lock}.held`, lock);
    const listed = await cli(dir, "runs", "ls");
    assert.equal(listed.code, 0, listed.stderr);
    const row = listed.stdout.split("\n").find((line) => line.startsWith(runId));
    assert.match(row ?? "", /\brunning\b/, `a live run listed dead:\n${listed.stdout}`);
    const resumed = await cli(dir, "runs", "resume", runId);
    assert.notEqual(resumed.code, 0, `a live run resumed:\n${resumed.stdout}`);
    await Deno.writeTextFile(release, "");
    const { code } = await exitOf(child);
    await rest;
    assert.equal(code, 0, await stdout);
    const ended = await cli(dir, "runs", "show", runId, "--json");
    assert.equal(JSON.parse(ended.stdout).run.status, "succeeded");
  });
});
