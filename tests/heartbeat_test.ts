/**
 * End-to-end tests of run heartbeats and of recording a run's end (issue 9,
 * "No run is ever left running"), each with the CLI as a subprocess in a
 * temporary project:
 * - `gc` with a tiny `abandonedAfter` leaves a live run alone (today's
 *   regression: it recorded a live run failed, and the run then exited 1);
 * - a run whose final commit fails a few times is retried and recorded;
 * - a run whose final commit always fails says so and exits 1, and stays
 *   `running` until gc finds it abandoned.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openRuntime } from "../mod.ts";
import { cliCommand, type Result, runCli } from "./_cli_sandbox.ts";
import { exitOf, hangGuard } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const FIXTURES = join(ROOT, "tests", "fixtures");

function command(dir: string, args: string[], piped = true): Deno.Command {
  return cliCommand(dir, args, { stdout: piped ? "piped" : "null" });
}

function cli(dir: string, ...args: string[]): Promise<Result> {
  return runCli(dir, args);
}

async function withProject(config: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-heartbeat-" });
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), config);
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Read `stream` until a line matches `pattern`; resolves the text so far. The rest is drained. */
async function readUntil(
  stream: ReadableStream<Uint8Array>,
  pattern: RegExp,
): Promise<{ seen: string; rest: Promise<string> }> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!pattern.test(seen)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before ${pattern}:\n${seen}`);
    seen += value;
  }
  const rest = (async () => {
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += value;
    }
  })();
  return { seen, rest };
}

Deno.test("gc with a tiny abandonedAfter leaves a live run alone, and the run succeeds", async () => {
  const config = "stores:\n  main: { plugin: sqlite, path: data/main.db }\n";
  await withProject(config, async (dir) => {
    const release = join(dir, "release");
    await Deno.writeTextFile(
      join(dir, "wait.flow.yaml"),
      `id: wait\nnodes:\n  - id: wait\n    type: ${
        join(FIXTURES, "nodes", "wait_for_file.ts")
      }\n    with: { path: ${JSON.stringify(release)} }\n    permissions: { read: [${
        JSON.stringify(release)
      }] }\n`,
    );
    const child = command(dir, ["run", "wait.flow.yaml"]).spawn();
    using _hang = hangGuard(child);
    const stdout = new Response(child.stdout).text();
    const { seen, rest } = await readUntil(child.stderr, /waiting for /);
    const runId = /\(run ([0-9a-z]+)\)/.exec(seen)?.[1];
    assert.ok(runId, seen);

    // 1 ms: before heartbeats, any running run older than that was recorded failed.
    const gc = await cli(
      dir,
      "jobs",
      "run",
      "gc",
      "--option",
      "abandonedAfter=1ms",
      "--json",
      "--quiet",
    );
    assert.equal(gc.code, 0, gc.stderr);
    assert.equal(JSON.parse(gc.stdout).outputs.abandonedRuns, 0, "the live run is not abandoned");

    await Deno.writeTextFile(release, "");
    const { code } = await exitOf(child);
    const out = await stdout;
    const err = await rest;
    assert.equal(code, 0, `the run exited ${code}:\n${err}`);
    assert.match(out, /status:\s+succeeded/);
    const shown = await cli(dir, "runs", "show", runId, "--json");
    assert.equal(JSON.parse(shown.stdout).run.status, "succeeded");
  });
});

function failingConfig(failures: number): string {
  return `stores:\n  main: { plugin: ${
    join(FIXTURES, "failing_finish_store.ts")
  }, path: data/main.db, failures: ${failures} }\n`;
}

Deno.test("a run whose final commit fails twice is retried and recorded", async () => {
  await withProject(failingConfig(2), async (dir) => {
    await Deno.writeTextFile(
      join(dir, "hello.flow.yaml"),
      "id: hello\nnodes:\n  - { id: say, type: log, with: { message: hi } }\n",
    );
    const run = await cli(dir, "run", "hello.flow.yaml", "--json");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).status, "succeeded");
    const job = await cli(dir, "jobs", "run", "gc", "--json", "--quiet");
    assert.equal(job.code, 0, job.stderr);
  });
});

Deno.test("a run whose final commit always fails says so, exits 1, and is found abandoned later", async () => {
  await withProject(failingConfig(-1), async (dir) => {
    await Deno.writeTextFile(
      join(dir, "hello.flow.yaml"),
      "id: hello\nnodes:\n  - { id: say, type: log, with: { message: hi } }\n",
    );
    const run = await cli(dir, "run", "hello.flow.yaml");
    assert.equal(run.code, 1, run.stderr);
    const runId = /\(run ([0-9a-z]+)\)/.exec(run.stderr)?.[1];
    assert.ok(runId, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        `error: Cannot record the end of run ${runId} \\(succeeded\\): 5 tries failed, the last with: No space left on device.*found abandoned`,
      ),
    );

    const job = await cli(dir, "jobs", "run", "gc");
    assert.equal(job.code, 1, job.stderr);
    assert.match(job.stderr, /error: Cannot record the end of run \w+ \(\w+\): 5 tries failed/);

    // Read with the plain plugin: both runs stay recorded as running, with a heartbeat.
    await using rt = await openRuntime({
      config: { stores: { main: { plugin: "sqlite", path: join(dir, "data/main.db") } } },
    });
    const records = await rt.records();
    const stored = await records.getRun(runId);
    assert.equal(stored?.status, "running");
    assert.equal(typeof stored?.heartbeatAt, "number");
    const later = (stored?.heartbeatAt ?? 0) + 61_000;
    const marked = await records.abandonRun(runId, { afterMs: 60_000, now: later });
    assert.equal(marked?.status, "failed");
    assert.match(marked?.error?.message ?? "", /^abandoned: no heartbeat/);
  });
});
