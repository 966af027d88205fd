/**
 * The queue through the CLI (subprocesses): `enqueue` (ids, `--key`,
 * `--delay`, bad input), `runs ls --status queued`, `worker` (runs them,
 * stops on SIGTERM with exit 0), `runs show` (attempts), `runs cancel` of a
 * queued run, `runs retry`, and `validate` of a flow's `queue:` field.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliCommand, type Sandbox, withSandbox } from "./_cli_sandbox.ts";
import { SIGNAL_REPEAT_MS } from "../src/cli/common.ts";
import { exitOf, hangGuard } from "./_deadline.ts";

const FLOWS = {
  "mark.flow.yaml": `id: mark
inputs:
  n: { type: number, default: 1 }
queue: { concurrency: 2, by: "\${{ inputs.n }}" }
nodes:
  - id: w
    type: state.set
    with: { scope: global, key: "done-\${{ run.id }}", value: "\${{ inputs.n }}" }
`,
  "boom.flow.yaml": `id: boom
nodes:
  - id: f
    type: fail
    with: { message: boom }
`,
};

/** The flows (with `slow`: also a flow whose one node waits a minute) and the config. */
async function setUp(dir: string, { slow = false } = {}): Promise<void> {
  await Deno.mkdir(join(dir, "flows"));
  for (const [name, text] of Object.entries(FLOWS)) {
    await Deno.writeTextFile(join(dir, "flows", name), text);
  }
  if (slow) {
    await Deno.writeTextFile(
      join(dir, "flows", "slow.flow.yaml"),
      "id: slow\nnodes:\n  - { id: w, type: delay, with: { for: 60s } }\n",
    );
  }
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), "flows: [./flows]\n");
}

/** Run a worker until `runs` have ended (its --json lines), then SIGTERM it; its exit code. */
async function workUntil(dir: string, home: string, ends: number): Promise<number> {
  const child = cliCommand(dir, ["worker", "--json", "--poll", "50ms"], { home }).spawn();
  let seen = 0;
  let rest = "";
  using _hang = hangGuard(child, () => `${seen} end lines seen; then: ${rest}`);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  while (seen < ends) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += value;
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const line of lines) if (JSON.parse(line).type === "end") seen++;
  }
  child.kill("SIGTERM");
  while (!(await reader.read()).done) { /* drain */ }
  await child.stderr.cancel();
  const status = await exitOf(child);
  assert.equal(seen, ends, "the worker ran the runs");
  return status.code;
}

Deno.test("cli queue: enqueue, runs ls --status queued, worker, runs show, dedupe keys", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await setUp(dir);
    const a = await run("enqueue", "mark", "--input", "n=5");
    assert.equal(a.code, 0, a.stderr);
    const id = a.stdout.trim();
    assert.match(id, /^[0-9a-z]{20}$/);
    const k1 = JSON.parse((await run("enqueue", "mark", "--key", "k", "--json")).stdout);
    const k2 = JSON.parse(
      (await run("enqueue", "./flows/mark.flow.yaml", "--key", "k", "--json")).stdout,
    );
    assert.deepEqual(k2, { runId: k1.runId, existing: true });
    const later = (await run("enqueue", "mark", "--delay", "1h")).stdout.trim();
    const queued = JSON.parse((await run("runs", "ls", "--status", "queued", "--json")).stdout);
    assert.deepEqual(queued.map((r: { id: string }) => r.id).sort(), [id, k1.runId, later].sort());

    assert.equal(await workUntil(dir, home, 2), 0);
    const shown = JSON.parse((await run("runs", "show", id, "--json")).stdout);
    assert.equal(shown.run.status, "succeeded");
    assert.equal(shown.run.queue.attempts[0].outcome, "succeeded");
    const text = (await run("runs", "show", id)).stdout;
    assert.match(text, /queue: {4}run at .*priority 0, attempt 1 of 1/);
    assert.match(text, /attempt 1: succeeded on /);
    // The delayed run did not start.
    const stillQueued = JSON.parse(
      (await run("runs", "ls", "--status", "queued", "--json")).stdout,
    );
    assert.deepEqual(stillQueued.map((r: { id: string }) => r.id), [later]);
    // The table does not show it started (its recorded startedAt is the time it was enqueued).
    const table = (await run("runs", "ls", "--status", "queued")).stdout;
    assert.match(table, new RegExp(`^${later} +mark +queued +- +- *$`, "m"), table);
    // Cancelled while queued: it never starts.
    const cancel = await run("runs", "cancel", later);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, /before it started/);
    const cancelled = JSON.parse((await run("runs", "show", later, "--json")).stdout);
    assert.equal(cancelled.run.status, "cancelled");
    assert.deepEqual(cancelled.run.queue.attempts, []);
  });
});

Deno.test("cli queue: bad input, unknown flows and bad options exit 2 and write nothing", async () => {
  await withSandbox(async ({ dir, run }) => {
    await setUp(dir);
    const bad = await run("enqueue", "mark", "--input", "n=x");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /n/);
    const unknown = await run("enqueue", "nope");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Cannot find flow "nope".*found: boom, mark/);
    const both = await run("enqueue", "mark", "--delay", "1m", "--at", "2030-01-01T00:00:00Z");
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--delay or --at/);
    const priority = await run("enqueue", "mark", "--priority", "high");
    assert.equal(priority.code, 2);
    assert.match(priority.stderr, /--priority "high"/);
    // A --key over the dedupe key's limit is a bad option too, said without a stack-trace hint.
    const long = await run("enqueue", "mark", "--key", "k".repeat(3000));
    assert.equal(long.code, 2, long.stderr);
    assert.match(long.stderr, /^error: .*key is 3,000 bytes .*use a hash of a longer one$/m);
    assert.doesNotMatch(long.stderr, /--debug/);
    // An --at before the epoch: said in the option's terms.
    const early = await run("enqueue", "mark", "--at", "1960-01-01T00:00:00Z");
    assert.equal(early.code, 2, early.stderr);
    assert.match(early.stderr, /^error: Invalid --at "1960-01-01T00:00:00Z": it is before 1970/m);
    const none = JSON.parse((await run("runs", "ls", "--json")).stdout);
    assert.deepEqual(none, []);
  });
});

Deno.test("cli queue: a failed run stays failed with its attempts; runs retry queues it again", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await setUp(dir);
    const id = (await run("enqueue", "boom", "--max-attempts", "2")).stdout.trim();
    assert.equal(await workUntil(dir, home, 2), 0);
    const failed = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    assert.equal(failed.status, "failed");
    assert.deepEqual(failed.queue.attempts.map((a: { outcome: string }) => a.outcome), [
      "failed",
      "failed",
    ]);
    const retry = await run("runs", "retry", id);
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(JSON.parse((await run("runs", "show", id, "--json")).stdout).run.status, "queued");
    const twice = await run("runs", "retry", id);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /it is queued/);
    assert.equal(await workUntil(dir, home, 1), 0);
    const again = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    assert.equal(again.queue.attempts.length, 3);
  });
});

Deno.test("cli queue: runs retry of a run started directly counts its first attempt (attempt 2 of 2)", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await setUp(dir);
    assert.equal((await run("run", "flows/boom.flow.yaml")).code, 1);
    const [{ id }] = JSON.parse((await run("runs", "ls", "--json")).stdout);
    const retry = await run("runs", "retry", id);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, /queued again: next attempt 2 of 2$/m);
    const queued = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    assert.equal(queued.queue.maxAttempts, 2);
    assert.deepEqual(
      queued.queue.attempts.map((
        a: { attempt: number; outcome: string },
      ) => [a.attempt, a.outcome]),
      [[1, "failed"]],
    );
    assert.equal(await workUntil(dir, home, 1), 0);
    const shown = await run("runs", "show", id);
    assert.match(shown.stdout, /attempt 2 of 2/);
    assert.match(shown.stdout, /attempt 1: failed on a direct run \(not queued\)/);
    assert.match(shown.stdout, /attempt 2: failed on /);
  });
});

Deno.test("cli queue: runs retry of a job's run, or of a direct run whose flow is not under flows:, says what to do instead (no impossible 'pass a path')", async () => {
  await withSandbox(async ({ dir, run }) => {
    await setUp(dir);
    // A backup into a folder that cannot be made (a file is in its way) fails.
    await Deno.writeTextFile(join(dir, "blocker"), "");
    const failedJob = await run(
      "jobs",
      "run",
      "backup",
      "--quiet",
      "--option",
      `out=${join(dir, "blocker", "x")}`,
    );
    assert.equal(failedJob.code, 1, failedJob.stderr);
    const [job] = JSON.parse((await run("runs", "ls", "--flow", "job:backup", "--json")).stdout);
    assert.equal(job.status, "failed");
    const retryJob = await run("runs", "retry", job.id);
    assert.equal(retryJob.code, 1);
    assert.match(
      retryJob.stderr,
      /^error: Cannot retry run \w+: it is a run of the job "backup", and jobs do not go through the queue: run it again with flowstate jobs run backup$/m,
    );
    await Deno.mkdir(join(dir, "elsewhere"));
    await Deno.writeTextFile(
      join(dir, "elsewhere", "other.flow.yaml"),
      "id: other\nnodes: [{ id: f, type: fail, with: { message: no } }]\n",
    );
    assert.equal((await run("run", "elsewhere/other.flow.yaml")).code, 1);
    const [other] = JSON.parse((await run("runs", "ls", "--flow", "other", "--json")).stdout);
    const retryOther = await run("runs", "retry", other.id);
    assert.equal(retryOther.code, 1);
    assert.match(
      retryOther.stderr,
      /no file there has flow id "other": add the file's folder to flows: in .*flowstate\.yaml, or run it again with flowstate run <file>$/m,
    );
    assert.doesNotMatch(retryOther.stderr, /pass a path/);
    // A run that succeeded cannot be retried at all: said first, whatever its flow file.
    await Deno.writeTextFile(
      join(dir, "elsewhere", "fine.flow.yaml"),
      "id: fine\nnodes: [{ id: l, type: log, with: { message: ok } }]\n",
    );
    assert.equal((await run("run", "elsewhere/fine.flow.yaml")).code, 0);
    const [fine] = JSON.parse((await run("runs", "ls", "--flow", "fine", "--json")).stdout);
    const retryFine = await run("runs", "retry", fine.id);
    assert.equal(retryFine.code, 1);
    assert.equal(
      retryFine.stderr,
      `error: Cannot retry run "${fine.id}": it succeeded; only a failed, cancelled or timed-out run can be retried\n`,
    );
    // Nothing was queued.
    assert.deepEqual(
      JSON.parse((await run("runs", "ls", "--status", "queued", "--json")).stdout),
      [],
    );
  });
});

Deno.test("cli queue: daemon --no-queue --concurrency is refused (exit 2, nothing started), not accepted for a worker it does not start", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await setUp(dir);
    const both = await run("daemon", "--no-queue", "--concurrency", "8");
    assert.equal(both.code, 2, both.stderr);
    assert.match(
      both.stderr,
      /^error: --concurrency is how many queued runs .*--no-queue starts no worker: drop one of them$/m,
    );
    assert.equal(both.stdout, "");
    // Nothing was opened or created.
    assert.equal(await Deno.stat(home).then(() => true, () => false), false);
  });
});

Deno.test("cli queue: validate reports a bad queue: field at its file:line:column", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "bad.flow.yaml"),
      `id: bad
queue:
  concurrency: 0
  by: "\${{ nodes.x.output }}"
nodes:
  - id: x
    type: log
`,
    );
    const result = await run("validate", "bad.flow.yaml");
    assert.equal(result.code, 2);
    assert.match(result.stderr, /bad\.flow\.yaml:3:16: queue\.concurrency: must be at least 1/);
  });
});

/** Start `args` (a worker or a daemon, --json), wait for the first line with `type`, send `signals`. */
async function stopWith(
  dir: string,
  home: string,
  args: string[],
  type: string,
  signals: Deno.Signal[],
): Promise<{ code: number; stderr: string }> {
  const child = cliCommand(dir, args, { home }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  using _hang = hangGuard(child, () => rest);
  for (let found = false; !found;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += value;
    const lines = rest.split("\n");
    rest = lines.pop()!;
    found = lines.some((line) => line.startsWith("{") && JSON.parse(line).type === type);
  }
  for (const signal of signals) {
    child.kill(signal);
    // Past the window in which a repeat of the same signal is the same stop.
    await new Promise((r) => setTimeout(r, SIGNAL_REPEAT_MS + 100));
  }
  while (!(await reader.read()).done) { /* drain */ }
  const stderr = await new Response(child.stderr).text();
  return { code: (await exitOf(child)).code, stderr };
}

/** Enqueue `slow` and SIGKILL the worker that claimed it (lease 1 s): its id, and a time after its last heartbeat. */
async function runOfKilledWorker(
  { dir, home, run }: Sandbox,
  lease = "1s",
): Promise<{ id: string; deadAt: number }> {
  await setUp(dir, { slow: true });
  const id = (await run("enqueue", "slow")).stdout.trim();
  const killed = await stopWith(dir, home, ["worker", "--json", "--lease", lease], "claim", [
    "SIGKILL",
  ]);
  assert.equal(killed.code, 137, killed.stderr);
  return { id, deadAt: Date.now() };
}

Deno.test("cli queue: SIGHUP stops a worker cleanly (its run back in the queue, not left running); a second signal exits with that signal's code", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await setUp(dir, { slow: true });
    const id = (await run("enqueue", "slow")).stdout.trim();
    const worker = ["worker", "--json", "--poll", "50ms", "--grace", "100ms"];
    const hup = await stopWith(dir, home, worker, "claim", ["SIGHUP"]);
    assert.equal(hup.code, 0, hup.stderr);
    const after = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    assert.equal(after.status, "queued", "released to the queue, not left running");

    const twice = await stopWith(dir, home, [...worker, "--grace", "60s"], "claim", [
      "SIGTERM",
      "SIGTERM",
    ]);
    assert.equal(twice.code, 143, twice.stderr);
    assert.match(twice.stderr, /Received SIGTERM again: exiting without waiting/);
  });
});

Deno.test("cli queue: a lost attempt, cancelled then retried: one attempt numbering in retry and show, no stale error, the lost attempt ends at its last heartbeat", async () => {
  await withSandbox(async (sandbox) => {
    const { dir, home, run } = sandbox;
    // Its worker dies (kill -9) while the attempt runs; another worker takes it back (its
    // lease lapsed) without running it (that one runs only "mark").
    const { id, deadAt } = await runOfKilledWorker(sandbox);
    const other = ["worker", "--json", "--poll", "50ms", "--flows", "mark"];
    assert.equal((await stopWith(dir, home, other, "lost", ["SIGTERM"])).code, 0);

    const cancel = await run("runs", "cancel", id);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, /Cancelled run \w+ \(slow\) while queued: it does not start again/);
    const retry = await run("runs", "retry", id);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, /queued again: next attempt 2 of 2 \(1 lost, not counted\)$/m);
    const shown = await run("runs", "show", id);
    assert.match(shown.stdout, /^status: {3}queued$/m);
    assert.match(shown.stdout, /priority 0, next attempt 2 of 2 \(1 lost, not counted\)$/m);
    assert.match(shown.stdout, /^ {2}attempt 1: lost on .*no heartbeat from worker/m);
    assert.doesNotMatch(shown.stdout, /^error:/m, "no error on a queued run");
    const record = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    assert.equal(record.error, null);
    assert.equal(record.queue.attempts.length, 1);
    const lost = record.queue.attempts[0];
    assert.ok(
      lost.endedAt <= deadAt,
      `the lost attempt ends at its last heartbeat (${lost.endedAt}), before its worker died (${deadAt})`,
    );
  });
});

Deno.test('cli queue: runs cancel of a run whose worker stopped answering but whose lease has not lapsed says so and when it ends, not "within a second"', async () => {
  await withSandbox(async (sandbox) => {
    const { run } = sandbox;
    const { id, deadAt } = await runOfKilledWorker(sandbox, "1h");
    // Two heartbeats (5 s each) missed: the worker may be gone; its lease runs for an hour.
    while (Date.now() - deadAt < 11_000) await new Promise((r) => setTimeout(r, 250));
    const cancel = await run("runs", "cancel", id);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.doesNotMatch(cancel.stdout, /: it stops within a second/);
    assert.match(
      cancel.stdout,
      /^Cancel requested for run \w+ \(slow\), but the worker running it has not answered since .* \(\d+ s ago\): if it is alive, the run stops within a second; if it is gone, it is recorded cancelled when its worker's lease lapses, at .*, and a worker takes it back/m,
    );
    const record = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    assert.equal(record.status, "running", "the lease is the authority: not taken back early");
  });
});

Deno.test("cli queue: runs cancel of a run whose worker was killed (its lease lapsed) records it cancelled at once; it never runs again", async () => {
  await withSandbox(async (sandbox) => {
    const { run } = sandbox;
    const { id, deadAt } = await runOfKilledWorker(sandbox);
    // Its last heartbeat was before the kill: 1.5 s on, its 1 s lease has lapsed.
    while (Date.now() - deadAt < 1_500) await new Promise((r) => setTimeout(r, 100));
    const cancel = await run("runs", "cancel", id);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(
      cancel.stdout,
      /^Run \w+ \(slow\) has had no heartbeat since .*: its worker is gone \(its lease lapsed\); recorded it cancelled$/m,
    );
    const record = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    assert.equal(record.status, "cancelled", "not left running with a request nobody acts on");
    assert.deepEqual(record.queue.attempts.map((a: { outcome: string }) => a.outcome), ["lost"]);
    assert.equal(
      JSON.parse((await run("runs", "ls", "--status", "queued", "--json")).stdout).length,
      0,
    );
  });
});

Deno.test("cli queue: a worker whose node ends the process (Deno.exit in a trusted node) says which runs it leaves running, not a word before", async () => {
  await withSandbox(async ({ dir, run }) => {
    await setUp(dir);
    const node = fileURLToPath(import.meta.resolve("./fixtures/nodes/exit_process.ts"));
    await Deno.writeTextFile(
      join(dir, "flows", "crash.flow.yaml"),
      `id: crash\nnodes:\n  - { id: die, type: ${JSON.stringify(node)}, with: {} }\n`,
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `flows: [./flows]\nnodes:\n  trusted: [${JSON.stringify(node)}]\n`,
    );
    const said = (id: string, lease: string) =>
      new RegExp(
        `^error: exiting \\(code 3\\) with 1 run still running here: ${id} \\(crash\\); a node ended the process \\(Deno\\.exit in a trusted node\\?\\)\\. A worker takes it back once the lease \\(${lease}\\) lapses$`,
        "m",
      );
    const id = (await run("enqueue", "crash")).stdout.trim();
    const worker = await run("worker", "--lease", "2s", "--poll", "50ms");
    assert.equal(worker.code, 3, worker.stderr);
    assert.match(worker.stderr, said(id, "2s"));
    // `serve` works the queue too.
    assert.equal((await run("runs", "cancel", id)).code, 0, "not run a third time");
    const next = (await run("enqueue", "crash")).stdout.trim();
    const served = await run("serve", "--port", "0");
    assert.equal(served.code, 3, served.stderr);
    assert.match(served.stderr, said(next, "30s"));
  });
});

// The daemon off a terminal reloads on SIGHUP (tests/daemon_config_reload_test.ts); on a
// terminal that hangs up it stops (tests/hangup_test.ts).

Deno.test("cli queue: enqueue by the id of an invalid flow file reports that file's problems at their place (not 'Cannot find flow')", async () => {
  await withSandbox(async ({ dir, run }) => {
    await setUp(dir);
    await Deno.writeTextFile(
      join(dir, "flows", "typo.flow.yaml"),
      "id: typo\nnodes:\n  - { id: go, type: lgo }\n",
    );
    const result = await run("enqueue", "typo");
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /typo\.flow\.yaml:3:21: nodes\[0\]\.type: unknown node type "lgo" \(did you mean "log"\?\)/,
    );
    assert.doesNotMatch(result.stderr, /Cannot find flow/);
    assert.deepEqual(JSON.parse((await run("runs", "ls", "--json")).stdout), []);
  });
});

Deno.test("cli queue: enqueue <id> that two flow files declare is refused naming both (it ran the first, silently)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await setUp(dir);
    await Deno.writeTextFile(join(dir, "flows", "zcopy.flow.yaml"), FLOWS["mark.flow.yaml"]);
    const result = await run("enqueue", "mark");
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /Cannot find flow "mark": both \S*mark\.flow\.yaml and \S*zcopy\.flow\.yaml define it; flow ids must be unique/,
    );
    assert.deepEqual(JSON.parse((await run("runs", "ls", "--json")).stdout), []);
  });
});

Deno.test("cli queue: runs ls and flows ls show a queued run's real start (its attempt's claim, as runs show), and label a run a queue node enqueued (enqueued), a sub-flow's (sub-flow)", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await setUp(dir);
    await Deno.writeTextFile(
      join(dir, "flows", "caller.flow.yaml"),
      `id: caller
nodes:
  - { id: q, type: queue, with: { flow: mark, input: { n: 7 } } }
  - id: sub
    type: flow
    with: { flow: { id: inner, nodes: [{ id: a, type: log, with: { message: hi } }] } }
`,
    );
    const called = await run("run", "flows/caller.flow.yaml", "--json");
    assert.equal(called.code, 0, called.stderr);
    assert.equal(await workUntil(dir, home, 1), 0);
    const all = JSON.parse((await run("runs", "ls", "--json")).stdout);
    const mark = all.find((r: { flowId: string }) => r.flowId === "mark");
    const inner = all.find((r: { flowId: string }) => r.flowId === "inner");
    const shown = JSON.parse((await run("runs", "show", mark.id, "--json")).stdout).run;
    const claimedAt = shown.queue.attempts[0].startedAt;
    // The JSON says when it was enqueued (its startedAt, its id's time) and when it started.
    assert.equal(mark.enqueuedAt, shown.queue.enqueuedAt);
    assert.equal(mark.startedAt, shown.startedAt);
    assert.equal(mark.claimedAt, claimedAt);
    assert.equal(inner.enqueuedAt, undefined);
    // From the flow's index (its summaries as stored) as from the list of all runs.
    const byFlow = JSON.parse((await run("runs", "ls", "--flow", "mark", "--json")).stdout);
    assert.deepEqual(byFlow, [mark]);
    const started = (await run("runs", "show", mark.id)).stdout.match(/^started: +(.+)$/m)![1];
    const table = (await run("runs", "ls")).stdout;
    assert.match(
      table,
      new RegExp(`^${mark.id} +mark \\(enqueued\\) +succeeded +${started} `, "m"),
    );
    assert.match(table, new RegExp(`^${inner.id} +inner \\(sub-flow\\) +succeeded `, "m"));
    const flowTable = (await run("runs", "ls", "--flow", "mark")).stdout;
    assert.match(
      flowTable,
      new RegExp(`^${mark.id} +mark \\(enqueued\\) +succeeded +${started} `, "m"),
    );
    const flows = (await run("flows", "ls")).stdout;
    assert.match(flows, new RegExp(`^mark +\\w+ +1 +${started} +succeeded`, "m"), flows);
    const flowsJson = JSON.parse((await run("flows", "ls", "--json")).stdout);
    assert.equal(flowsJson.find((f: { id: string }) => f.id === "mark").lastRunAt, claimedAt);
  });
});

Deno.test("cli queue: a run enqueued past the last time a Date holds shows as such (runs show, ls, its timezone)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await setUp(dir);
    // Stores keep such a time (beyond 8.64e15 ms) by design; the display must not fail on it.
    const id = (await run("enqueue", "mark", "--delay", "100000000000d")).stdout.trim();
    const shown = await run("runs", "show", id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(
      shown.stdout,
      /^queue: {4}run after the year 275760, priority 0, next attempt 1 of 1$/m,
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "flows: [./flows]\ntimezone: Europe/Paris\n",
    );
    const zoned = await run("runs", "show", id);
    assert.equal(zoned.code, 0, zoned.stderr);
    assert.match(zoned.stdout, /run after the year 275760/);
    const json = JSON.parse((await run("runs", "show", id, "--json")).stdout);
    assert.equal(json.run.queue.runAt > 8.64e15, true);
    const ls = await run("runs", "ls");
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`^${id} +mark +queued`, "m"));
  });
});
