/**
 * `--log-format json` (and `$FLOWSTATE_LOG_FORMAT`) through the CLI: `run`,
 * `worker` and `daemon` write one JSON object a line on stderr, every line of
 * it (warnings, retries of an unreachable store, the stop on SIGTERM, a fatal
 * error), with its context fields and secrets masked; text mode prints what it
 * always printed; a bad value is a usage error.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, type Result, withSandbox } from "./_cli_sandbox.ts";
import { exitOf, hangGuard } from "./_deadline.ts";

/** With a `"` and a `\`, so that its JSON-escaped form differs from it. */
const SECRET = 'Sup3r"Secret\\Value-42';

/** A log node (a secret, two lines), a debug line, and an exec node that fails twice. */
const FLOW = `id: logs
secrets: [API_TOKEN]
nodes:
  - id: say
    type: log
    with: { message: "token is \${{ secrets.API_TOKEN }}\\nsecond line" }
  - { id: quiet, type: log, with: { message: "debugging", level: debug } }
  - id: bad
    type: exec
    needs: [say]
    permissions: { run: [sh] }
    retry: { attempts: 2, delay: 10ms }
    with:
      command: sh
      args: [-c, 'echo "oops $T" >&2; exit 3']
      env: { T: "\${{ secrets.API_TOKEN }}" }
`;

const QUEUED = `id: queued
nodes:
  - { id: hello, type: log, with: { message: "hello from the queue", level: warn } }
`;

const TICK = `id: tick
schedule: "* * * * * *"
nodes:
  - { id: hello, type: log, with: { message: "tick says hi" } }
`;

const LEVELS = ["debug", "info", "warn", "error"];

/** A JSON log line as parsed. */
type Line = Record<string, unknown> & { time: string; level: string; msg: string };

/** Every line of `stderr` parsed as a JSON log line (fails naming any line that is not one). */
function jsonLines(stderr: string): Line[] {
  return stderr.split("\n").filter((l) => l !== "").map((text) => {
    let line: Line;
    try {
      line = JSON.parse(text);
    } catch {
      throw new assert.AssertionError({ message: `not a JSON line on stderr: ${text}` });
    }
    assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, text);
    assert.ok(LEVELS.includes(line.level), text);
    assert.equal(typeof line.msg, "string", text);
    return line;
  });
}

/** The lines of `event` (and, when given, whose `node` is `node`). */
function events(lines: Line[], event: string, node?: string): Line[] {
  return lines.filter((l) => l.event === event && (node === undefined || l.node === node));
}

Deno.test("cli --log-format json: run writes its events as JSON lines on stderr, with their fields, the secret masked", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(join(sandbox.dir, "logs.flow.yaml"), FLOW);
    const result = await sandbox.runWith(
      { API_TOKEN: SECRET },
      "run",
      "logs.flow.yaml",
      "--log-format",
      "json",
    );
    assert.equal(result.code, 1, result.stderr);
    assert.ok(!result.stderr.includes("Sup3r"), result.stderr);
    assert.ok(!result.stderr.includes(JSON.stringify(SECRET).slice(1, -1)), result.stderr);
    // stdout keeps its summary.
    assert.match(result.stdout, /^run: {6}\w{20}\nflow: {5}logs /);
    const lines = jsonLines(result.stderr);
    const [start] = events(lines, "run.start");
    const runId = start.runId as string;
    assert.match(runId, /^\w{20}$/);
    assert.equal(start.flow, "logs");
    assert.equal(start.level, "info");
    // A multi-line message is one line, its line break escaped.
    const [say] = events(lines, "node.log", "say");
    assert.deepEqual(
      { level: say.level, msg: say.msg, runId: say.runId, flow: say.flow },
      { level: "info", msg: "token is ***\nsecond line", runId, flow: "logs" },
    );
    // Debug lines only with --debug.
    assert.deepEqual(events(lines, "node.log", "quiet"), []);
    // The exec node's stderr lines are its log lines, one per attempt.
    assert.deepEqual(events(lines, "node.log", "bad").map((l) => l.msg), [
      "oops ***",
      "oops ***",
    ]);
    const attempts = events(lines, "node.attempt", "bad");
    assert.deepEqual(attempts.map((l) => [l.level, l.attempt, l.status]), [
      ["warn", 1, "failed"],
      ["warn", 2, "failed"],
    ]);
    assert.match(attempts[0].error as string, /^"sh" exited with code 3 .*\noops \*\*\*$/);
    const [end] = events(lines, "node.end", "bad");
    assert.deepEqual([end.level, end.status, end.attempt], ["error", "failed", 2]);
    const [runEnd] = events(lines, "run.end");
    assert.deepEqual(
      [runEnd.level, runEnd.runId, runEnd.flow, runEnd.status, runEnd.node],
      ["error", runId, "logs", "failed", "bad"],
    );
    assert.equal(typeof runEnd.durationMs, "number");

    // The variable does the same; --debug adds the debug lines; --json keeps stdout the record.
    const viaEnv = await sandbox.runWith(
      { API_TOKEN: SECRET, FLOWSTATE_LOG_FORMAT: "json" },
      "run",
      "logs.flow.yaml",
      "--debug",
      "--json",
    );
    assert.equal(JSON.parse(viaEnv.stdout).status, "failed");
    const debug = jsonLines(viaEnv.stderr);
    assert.deepEqual(events(debug, "node.log", "quiet").map((l) => [l.level, l.msg]), [
      ["debug", "debugging"],
    ]);
    assert.ok(!viaEnv.stderr.includes("Sup3r"), viaEnv.stderr);

    // --quiet: warnings and errors only, here the run's end.
    const quiet = await sandbox.runWith(
      { API_TOKEN: SECRET },
      "run",
      "logs.flow.yaml",
      "--quiet",
      "--log-format",
      "json",
    );
    assert.deepEqual(jsonLines(quiet.stderr).map((l) => [l.level, l.event, l.status]), [
      ["error", "run.end", "failed"],
    ]);
  });
});

Deno.test("cli --log-format text (the default, and over the variable): run prints what it always printed", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(join(sandbox.dir, "logs.flow.yaml"), FLOW);
    const results: Result[] = [
      await sandbox.runWith({ API_TOKEN: SECRET }, "run", "logs.flow.yaml"),
      await sandbox.runWith(
        { API_TOKEN: SECRET, FLOWSTATE_LOG_FORMAT: "json" },
        "run",
        "logs.flow.yaml",
        "--log-format=text",
      ),
    ];
    for (const result of results) {
      assert.equal(result.code, 1, result.stderr);
      const lines = result.stderr.replace(/run \w{20}/, "run <id>").split("\n");
      const failed = '"sh" exited with code 3 (okCodes: 0); the last lines of its stderr:';
      assert.deepEqual(lines, [
        'Running flow "logs" (run <id>)',
        "[say] token is ***",
        "[say] second line",
        "[quiet] debug: debugging",
        "[bad] oops ***",
        `[bad] attempt 1 failed: ${failed}`,
        "oops ***",
        "[bad] oops ***",
        `[bad] attempt 2 failed: ${failed}`,
        "oops ***",
        "[bad] failed after 2 attempts",
        "",
      ]);
    }
  });
});

Deno.test("cli --log-format: a value it does not know is a usage error saying what is allowed", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(join(sandbox.dir, "q.flow.yaml"), QUEUED);
    const allowed =
      "expected one of text, json (text: lines for people, the default; json: one JSON object a line on stderr)";
    for (
      const args of [
        ["run", "q.flow.yaml", "--log-format", "yaml"],
        ["--log-format=yaml", "worker"],
        ["daemon", "--log-format", "YAML"],
      ]
    ) {
      const result = await sandbox.run(...args);
      assert.equal(result.code, 2, args.join(" "));
      const given = args.includes("--log-format=yaml") ? "yaml" : args.at(-1);
      assert.equal(result.stderr, `error: Invalid --log-format "${given}": ${allowed}\n`);
    }
    const missing = await sandbox.run("run", "q.flow.yaml", "--log-format");
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, `error: --log-format needs a value: ${allowed}\n`);
    const env = await sandbox.runWith({ FLOWSTATE_LOG_FORMAT: "yaml" }, "run", "q.flow.yaml");
    assert.equal(env.code, 2);
    assert.equal(
      env.stderr,
      `error: Invalid FLOWSTATE_LOG_FORMAT="yaml": ${allowed}, or unset it for text\n`,
    );
    assert.equal(env.stdout, "", "nothing ran");
  });
});

Deno.test("cli --log-format json: usage and fatal errors are JSON lines too", async () => {
  await withSandbox(async (sandbox) => {
    const usage = await sandbox.run("--log-format", "json", "stores", "--bogus");
    assert.equal(usage.code, 2);
    const lines = jsonLines(usage.stderr);
    assert.deepEqual(lines[0].level, "error");
    assert.deepEqual(lines.map((l) => l.msg), ["unknown option '--bogus'"]);
    // A records store that cannot be reached: each retry a line, then the fatal error.
    await Deno.writeTextFile(
      join(sandbox.dir, "flowstate.yaml"),
      'stores:\n  default: { plugin: postgres, url: "postgres://postgres@127.0.0.1:1/x", connectTimeout: 1 }\n',
    );
    const worker = await sandbox.run("worker", "--log-format", "json", "--wait-for-store", "1s");
    assert.equal(worker.code, 1, worker.stderr);
    const workerLines = jsonLines(worker.stderr);
    const waits = events(workerLines, "store.unreachable");
    assert.ok(waits.length > 0, worker.stderr);
    assert.deepEqual([waits[0].level, waits[0].store, waits[0].attempt], ["warn", "default", 1]);
    assert.match(waits[0].error as string, /ECONNREFUSED/);
    const [fatal] = events(workerLines, "worker.error");
    assert.deepEqual([fatal.level, fatal.fatal], ["error", true]);
    const daemon = await sandbox.run("daemon", "--log-format", "json", "--wait-for-store", "1s");
    assert.equal(daemon.code, 1, daemon.stderr);
    const daemonLines = jsonLines(daemon.stderr);
    assert.ok(events(daemonLines, "store.unreachable").length > 0, daemon.stderr);
    // The error it exits with: one line, with its exit code.
    const last = daemonLines.at(-1)!;
    assert.deepEqual([last.level, last.event, last.exitCode], ["error", "command.error", 1]);
    assert.match(last.msg, /^Cannot open store "default": .*still unreachable after waiting/);
  });
});

/**
 * Start `flowstate <args>` in `dir`, read its stderr until a JSON line `until` accepts, send
 * SIGTERM; its exit code, stdout and every stderr line parsed.
 */
async function untilThenTerm(
  dir: string,
  args: string[],
  until: (line: Line) => boolean,
): Promise<{ code: number; stdout: string; lines: Line[] }> {
  const child = cliCommand(dir, args).spawn();
  const stdout = new Response(child.stdout).text();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  using _hang = hangGuard(child, () => text);
  let signalled = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    if (!signalled && jsonLines(text.slice(0, text.lastIndexOf("\n") + 1)).some(until)) {
      signalled = true;
      child.kill("SIGTERM");
    }
  }
  const { code } = await exitOf(child);
  assert.ok(signalled, `it ended before the line looked for:\n${text}`);
  return { code, stdout: await stdout, lines: jsonLines(text) };
}

Deno.test("cli --log-format json: a worker's start, the run it works (its node logs) and its stop on SIGTERM", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(join(sandbox.dir, "queued.flow.yaml"), QUEUED);
    const enqueued = await sandbox.run("enqueue", "queued.flow.yaml");
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const runId = enqueued.stdout.trim();
    const { code, stdout, lines } = await untilThenTerm(
      sandbox.dir,
      ["worker", "--log-format", "json", "--poll", "50ms", "--worker-id", "w-1"],
      (line) => line.event === "run.end",
    );
    assert.equal(code, 0);
    // Its lines are all on stderr: stdout holds only what --json asks for.
    assert.equal(stdout, "");
    const [start] = events(lines, "worker.start");
    assert.deepEqual([start.level, start.worker, start.concurrency], ["info", "w-1", 4]);
    const [log] = events(lines, "node.log", "hello");
    assert.deepEqual(
      [log.level, log.msg, log.runId, log.flow, log.worker],
      ["warn", "hello from the queue", runId, "queued", "w-1"],
    );
    const [end] = events(lines, "run.end");
    assert.deepEqual(
      [end.level, end.runId, end.flow, end.status, end.attempt, end.worker],
      ["info", runId, "queued", "succeeded", 1, "w-1"],
    );
    assert.equal(typeof end.durationMs, "number");
    const [signal] = events(lines, "signal");
    assert.deepEqual([signal.level, signal.signal], ["info", "SIGTERM"]);
    assert.equal(events(lines, "worker.stop")[0].worker, "w-1");
    assert.equal(lines.at(-1)!.event, "worker.stop");
  });
});

Deno.test("cli --log-format json: a daemon's start, a scheduled flow's node logs and tick, and its stop on SIGTERM", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(join(sandbox.dir, "tick.flow.yaml"), TICK);
    await Deno.writeTextFile(
      join(sandbox.dir, "flowstate.yaml"),
      "flows: [./tick.flow.yaml]\njobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
    );
    const { code, stdout, lines } = await untilThenTerm(
      sandbox.dir,
      ["daemon", "--log-format", "json", "--runner-id", "d-1"],
      (line) => line.event === "run.end" && line.schedule === "flow:tick",
    );
    assert.equal(code, 0);
    assert.equal(stdout, "");
    const [start] = events(lines, "scheduler.start");
    assert.equal(start.runner, "d-1");
    assert.deepEqual((start.schedules as { schedule: string }[]).map((s) => s.schedule), [
      "flow:tick",
    ]);
    const [end] = events(lines, "run.end");
    assert.deepEqual(
      [end.level, end.schedule, end.flow, end.status],
      ["info", "flow:tick", "tick", "succeeded"],
    );
    assert.match(end.runId as string, /^\w{20}$/);
    const log = events(lines, "node.log", "hello").find((l) => l.runId === end.runId);
    assert.deepEqual(
      [log?.level, log?.msg, log?.schedule, log?.flow],
      ["info", "tick says hi", "flow:tick", "tick"],
    );
    assert.equal(events(lines, "signal")[0].signal, "SIGTERM");
    assert.equal(lines.at(-1)!.event, "scheduler.stop");
  });
});

Deno.test('cli --log-format json: a daemon\'s stop (scheduler.stop, "Stopped") is its last line, after its worker released the queued run it held', async () => {
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(
      join(sandbox.dir, "slow.flow.yaml"),
      "id: slow\nnodes:\n  - { id: hello, type: log, with: { message: started } }\n" +
        "  - { id: wait, type: delay, needs: [hello], with: { for: 60s } }\n",
    );
    await Deno.writeTextFile(
      join(sandbox.dir, "flowstate.yaml"),
      "jobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
    );
    const enqueued = await sandbox.run("enqueue", "slow.flow.yaml");
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const runId = enqueued.stdout.trim();
    const { code, lines } = await untilThenTerm(
      sandbox.dir,
      ["daemon", "--log-format", "json", "--grace", "1s"],
      (line) => line.event === "node.log" && line.runId === runId,
    );
    assert.equal(code, 0);
    const released = lines.findIndex((l) => l.event === "run.end" && l.runId === runId);
    assert.ok(released !== -1, JSON.stringify(lines));
    assert.equal(lines.at(-1)!.event, "scheduler.stop", JSON.stringify(lines.slice(released)));
    const shown = JSON.parse((await sandbox.run("runs", "show", runId, "--json")).stdout);
    assert.equal(shown.run.status, "queued");
  });
});

Deno.test("cli --log-format json: a tick of a schedule entry names the flow's id as flow, and the entry", async () => {
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(
      join(sandbox.dir, "tick.flow.yaml"),
      TICK.replace('schedule: "* * * * * *"', 'schedule:\n  - { id: often, cron: "* * * * * *" }'),
    );
    await Deno.writeTextFile(
      join(sandbox.dir, "flowstate.yaml"),
      "flows: [./tick.flow.yaml]\njobs:\n  retention: { enabled: false }\n  gc: { enabled: false }\n",
    );
    const { code, lines } = await untilThenTerm(
      sandbox.dir,
      ["daemon", "--log-format", "json"],
      (line) => line.event === "run.end" && line.schedule === "flow:tick#often",
    );
    assert.equal(code, 0);
    const [end] = events(lines, "run.end");
    assert.deepEqual([end.schedule, end.flow, end.entry], ["flow:tick#often", "tick", "often"]);
    const log = events(lines, "node.log", "hello").find((l) => l.runId === end.runId);
    assert.deepEqual([log?.schedule, log?.flow, log?.entry], ["flow:tick#often", "tick", "often"]);
  });
});

Deno.test("cli --log-format json: serve says where it listens and that it stopped on SIGTERM, as JSON lines", async () => {
  await withSandbox(async (sandbox) => {
    const { code, stdout, lines } = await untilThenTerm(
      sandbox.dir,
      ["serve", "--port", "0", "--no-worker", "--log-format", "json"],
      (line) => line.event === "server.start",
    );
    assert.equal(code, 0);
    assert.equal(stdout, "");
    const [start] = events(lines, "server.start");
    assert.match(start.url as string, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(start.msg, `Serving ${start.url}`);
    const [signal] = events(lines, "signal");
    assert.deepEqual([signal.signal, signal.action], ["SIGTERM", "stop"]);
    assert.equal(lines.at(-1)!.event, "server.stop");
  });
});
