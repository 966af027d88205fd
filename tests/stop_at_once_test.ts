/**
 * A second stop signal exits at once, and still leaves no run `running`: the
 * process records the end of every run it was running (cancelled; a run
 * claimed from the queue goes back to the queue) without waiting for their
 * nodes, then exits with the signal's code. Through the CLI as a subprocess:
 * `flowstate run` of a flow whose node ignores its cancel signal (so the
 * first SIGTERM cannot end the run within the 60 s abort grace), and
 * `flowstate worker` with a queued run and a 60 s `--grace` (the run's flow
 * running, or still loading: claimed, not yet started); the `run` case
 * again on PostgreSQL when FLOWSTATE_TEST_POSTGRES_URL is set; `flowstate jobs
 * run` of a job deaf to its cancel signal; `flowstate serve` whose worker runs
 * a run started over HTTP (the daemon's worker is the same `startWorker`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { SIGNAL_REPEAT_MS } from "../src/cli/common.ts";
import { INTERRUPT_TIMEOUT_MS, REQUEUE_MARGIN_MS } from "../src/records/recorder.ts";
import { exitOf, hangSignal, waitUntil } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
/** Logs "waiting for <path>", then waits for that file, deaf to its cancel signal. */
const DEAF_NODE = join(ROOT, "tests", "fixtures", "nodes", "wait_for_file.ts");
/** A node module that takes a minute to load: its run stays claimed, not yet started. */
const SLOW_TO_LOAD = join(ROOT, "tests", "fixtures", "nodes", "slow_to_load.ts");
const PG_URL = Deno.env.get("FLOWSTATE_TEST_POSTGRES_URL");

interface ShownRun {
  id: string;
  status: string;
  error: { message: string } | null;
  nodes: Record<string, { status: string }>;
  queue?: { claim?: unknown; runAt: number; attempts: { outcome: string; endedAt: number }[] };
}

async function withProject(config: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-stop-at-once-" });
  try {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), config);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Start `flowstate <args>` in `dir`; once its stderr or stdout matches
 * `ready` (and `whenReady`, given the match, has resolved), send SIGTERM,
 * wait for `stopping` (the first signal was taken) and past the repeat window, send SIGTERM
 * again. Resolves the exit code and what it printed.
 */
async function stopTwice(
  dir: string,
  args: string[],
  ready: { stream: "stdout" | "stderr"; pattern: RegExp },
  stopping: { stream: "stdout" | "stderr"; pattern: RegExp },
  whenReady?: (match: RegExpExecArray) => Promise<void>,
): Promise<{ code: number; stderr: string; stdout: string }> {
  const child = cliCommand(dir, args).spawn();
  const text = { stdout: "", stderr: "" };
  const waiters: { stream: "stdout" | "stderr"; pattern: RegExp; resolve(): void }[] = [];
  const pump = (stream: "stdout" | "stderr") =>
    (async () => {
      for await (const chunk of child[stream].pipeThrough(new TextDecoderStream())) {
        text[stream] += chunk;
        for (const w of [...waiters]) {
          if (w.stream === stream && w.pattern.test(text[stream])) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      }
      for (const w of waiters.filter((w) => w.stream === stream)) w.resolve();
    })();
  const until = (stream: "stdout" | "stderr", pattern: RegExp) => {
    const { promise, resolve } = Promise.withResolvers<void>();
    if (pattern.test(text[stream])) resolve();
    else waiters.push({ stream, pattern, resolve });
    return promise;
  };
  const pumped = Promise.all([pump("stdout"), pump("stderr")]);
  await until(ready.stream, ready.pattern);
  assert.match(text[ready.stream], ready.pattern, `never ready:\n${text.stderr}`);
  await whenReady?.(ready.pattern.exec(text[ready.stream])!);
  child.kill("SIGTERM");
  await until(stopping.stream, stopping.pattern);
  assert.match(text[stopping.stream], stopping.pattern, "the first SIGTERM was taken");
  // A repeat within SIGNAL_REPEAT_MS of the first is the same stop (tests/repeat_signal_test.ts).
  await new Promise((resolve) => setTimeout(resolve, SIGNAL_REPEAT_MS + 100));
  child.kill("SIGTERM");
  const { code } = await exitOf(child);
  await pumped;
  return { code, ...text };
}

async function shown(dir: string, id: string): Promise<ShownRun> {
  const result = await runCli(dir, ["runs", "show", id, "--json"]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout).run;
}

/** `flowstate run` of a flow whose node never heeds the cancel: SIGTERM twice. */
async function runStoppedTwice(config: string): Promise<void> {
  await withProject(config, async (dir) => {
    const never = join(dir, "never-created");
    await Deno.writeTextFile(
      join(dir, "flows", "deaf.flow.yaml"),
      `id: deaf
nodes:
  - { id: hello, type: log, with: { message: hi } }
  - id: wait
    needs: [hello]
    type: ${JSON.stringify(DEAF_NODE)}
    with: { path: ${JSON.stringify(never)} }
`,
    );
    const stopped = await stopTwice(
      dir,
      ["run", "flows/deaf.flow.yaml"],
      { stream: "stderr", pattern: /\[wait\] waiting for/ },
      { stream: "stderr", pattern: /Cancelling the run \(SIGTERM/ },
    );
    assert.equal(stopped.code, 143, stopped.stderr);
    assert.doesNotMatch(stopped.stderr, /could not be recorded/, stopped.stderr);

    const listed = await runCli(dir, ["runs", "ls", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const runs: { id: string; status: string }[] = JSON.parse(listed.stdout);
    assert.equal(runs.length, 1, listed.stdout);
    assert.equal(runs[0].status, "cancelled", "the run is not left running");
    const run = await shown(dir, runs[0].id);
    assert.equal(run.status, "cancelled");
    assert.match(run.error?.message ?? "", /stopped \(SIGTERM twice\)/);
    assert.equal(run.nodes.hello.status, "succeeded");
    assert.equal(run.nodes.wait.status, "cancelled");
  });
}

const DEAF_CONFIG = `flows: [./flows]
nodes: { trusted: [${JSON.stringify(DEAF_NODE)}] }
runs: { abortGrace: 60s }
`;

Deno.test("flowstate run: a second SIGTERM exits 143 at once and records the run cancelled, not running", async () => {
  await runStoppedTwice(DEAF_CONFIG);
});

Deno.test({
  name:
    "flowstate run on postgres: a second SIGTERM exits 143 at once and records the run cancelled, not running",
  ignore: PG_URL === undefined,
  async fn() {
    const table = `stop_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    await runStoppedTwice(
      `${DEAF_CONFIG}stores: { default: { plugin: postgres, url: ${
        JSON.stringify(PG_URL)
      }, table: ${table} } }\n`,
    );
  },
});

for (const when of ["while its flow runs", "while its flow still loads"] as const) {
  Deno.test(`flowstate worker: a second SIGTERM ${when} exits 143 at once and puts the run back in the queue, not running`, async () => {
    await withProject("flows: [./flows]\n", async (dir) => {
      // The node module (a copy in the project): quick to load while the run is enqueued
      // (enqueue checks it), then slow when the worker loads it.
      const module = join(dir, "slow_node.ts");
      const slow = (await Deno.readTextFile(SLOW_TO_LOAD))
        .replaceAll("../../../mod.ts", join(ROOT, "mod.ts"));
      await Deno.writeTextFile(module, slow.replace(/^await new Promise.*$/m, ""));
      await Deno.writeTextFile(
        join(dir, "flows", "slow.flow.yaml"),
        when === "while its flow runs"
          ? "id: slow\nnodes:\n  - { id: w, type: delay, with: { for: 60s } }\n"
          : `id: slow\nnodes:\n  - { id: w, type: ../slow_node.ts }\n`,
      );
      const enqueued = await runCli(dir, ["enqueue", "slow"]);
      assert.equal(enqueued.code, 0, enqueued.stderr);
      const id = enqueued.stdout.trim();
      await Deno.writeTextFile(module, slow);
      const stopped = await stopTwice(
        dir,
        ["worker", "--json", "--poll", "50ms", "--grace", "60s"],
        { stream: "stdout", pattern: /"type":"claim"/ },
        { stream: "stdout", pattern: /"type":"stopping"/ },
      );
      assert.equal(stopped.code, 143, stopped.stderr);
      assert.match(stopped.stderr, /Received SIGTERM again: exiting without waiting/);
      const run = await shown(dir, id);
      assert.equal(run.status, "queued", "back in the queue, not left running");
      assert.equal(run.queue?.claim, undefined);
      assert.deepEqual(run.queue?.attempts.map((a) => a.outcome), ["lost"]);
      // Due only once the process (that ran it until it exited) is gone: no other worker ran
      // it meanwhile.
      assert.ok(
        run.queue!.runAt >=
          run.queue!.attempts[0].endedAt + INTERRUPT_TIMEOUT_MS + REQUEUE_MARGIN_MS,
        JSON.stringify(run.queue),
      );
    });
  });
}

Deno.test("flowstate jobs run: a second SIGTERM exits 143 at once and records the job's run cancelled, not running", async () => {
  const jobs = new URL("../jobs.ts", import.meta.url).href;
  await withProject("jobs:\n  deaf: { module: ./deaf_job.ts }\n", async (dir) => {
    await Deno.writeTextFile(
      join(dir, "deaf_job.ts"),
      `import { defineJob } from ${JSON.stringify(jobs)};
import { z } from "zod";
export default defineJob({
  name: "deaf",
  description: "waits a minute, deaf to its cancel signal",
  optionsSchema: z.strictObject({}),
  async run(ctx) {
    ctx.log("started");
    await new Promise((resolve) => setTimeout(resolve, 60_000));
    return {};
  },
});
`,
    );
    const stopped = await stopTwice(
      dir,
      ["jobs", "run", "deaf"],
      { stream: "stderr", pattern: /started/ },
      { stream: "stderr", pattern: /Cancelling job "deaf" \(SIGTERM/ },
    );
    assert.equal(stopped.code, 143, stopped.stderr);
    const listed = await runCli(dir, ["runs", "ls", "--json"]);
    const runs: { id: string; flowId: string; status: string }[] = JSON.parse(listed.stdout);
    assert.deepEqual(runs.map((r) => [r.flowId, r.status]), [["job:deaf", "cancelled"]]);
    assert.match((await shown(dir, runs[0].id)).error?.message ?? "", /stopped \(SIGTERM twice\)/);
  });
});

Deno.test("flowstate serve: a second SIGTERM exits 143 at once and puts the run its worker runs back in the queue", async () => {
  await withProject("flows: [./flows]\nruns: { abortGrace: 60s }\n", async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flows", "slow.flow.yaml"),
      "id: slow\nnodes:\n  - { id: w, type: delay, with: { for: 60s } }\n",
    );
    let id = "";
    const stopped = await stopTwice(
      dir,
      ["serve", "--port", "0"],
      { stream: "stderr", pattern: /^Serving (http:\/\/127\.0\.0\.1:\d+\/)$/m },
      { stream: "stderr", pattern: /Stopping the server \(SIGTERM/ },
      async ([, url]) => {
        const started = await fetch(new URL("api/flows/slow/runs", url), {
          signal: hangSignal(),
          method: "POST",
          headers: { origin: url.slice(0, -1), "content-type": "application/json" },
          body: "{}",
        });
        assert.equal(started.status, 202, await started.clone().text());
        id = (await started.json()).runId;
        // Until the server's worker has it running.
        let last = "";
        await waitUntil(`run ${id} running`, async () => {
          const shown = await fetch(new URL(`api/runs/${id}`, url), { signal: hangSignal() });
          last = (await shown.json()).run.status;
          return last === "running";
        }, { details: () => `last status: ${last}` });
      },
    );
    assert.equal(stopped.code, 143, stopped.stderr);
    const run = await shown(dir, id);
    assert.equal(run.status, "queued", "back in the queue, not left running");
    assert.deepEqual(run.queue?.attempts.map((a) => a.outcome), ["lost"]);
  });
});
