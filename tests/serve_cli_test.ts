/**
 * `flowstate serve` and `flowstate runs cancel` as subprocesses: the port
 * printed (with --port 0), /health, SIGTERM → exit 0; a generated token on
 * a non-loopback host; a run of another process cancelled from the CLI and
 * over HTTP (the `flowstate run` process then exits 1: its run was cancelled
 * by someone else, which is a failure of the run, not an interruption of
 * the process — 130 is only for its own Ctrl-C).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { drain, waitFor } from "./_stderr_lines.ts";
import { openRuntime } from "../mod.ts";
import { RunRecorder } from "../records.ts";
import { serve } from "../src/serve/server.ts";
import { exitOf, hangSignal } from "./_deadline.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-serve-cli-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("flowstate serve --port 0 prints its URL, answers /health and exits 0 on SIGTERM, saying what stopped", async () => {
  await withDir(async (dir) => {
    const child = cliCommand(dir, ["serve", "--port", "0"]).spawn();
    const stdout = new Response(child.stdout).text();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    const seen = { text: "" };
    const [, port] = await waitFor(reader, /^Serving http:\/\/127\.0\.0\.1:(\d+)\/$/m, seen);
    assert.notEqual(port, "0");
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: hangSignal() });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).status, "ok");
    child.kill("SIGTERM");
    await drain(reader, seen);
    const status = await exitOf(child);
    assert.equal(status.code, 0, seen.text);
    // Its worker (stdout) and its server (stderr) each say so once, not "Stopped" twice.
    assert.match(seen.text, /^Server stopped$/m);
    assert.match(await stdout, /^Worker stopped$/m);
    assert.doesNotMatch(`${seen.text}\n${await stdout}`, /^Stopped$/m);
  });
});

Deno.test("flowstate serve --host 0.0.0.0 without a token generates one, prints it once and requires it", async () => {
  await withDir(async (dir) => {
    const child = cliCommand(dir, ["serve", "--host", "0.0.0.0", "--port", "0"], { stdout: "null" })
      .spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    const seen = { text: "" };
    const [, port] = await waitFor(reader, /^Serving http:\/\/0\.0\.0\.0:(\d+)\/$/m, seen);
    const [, token] = await waitFor(reader, /#token=([A-Za-z0-9_-]{43})$/m, seen);
    const anonymous = await fetch(`http://127.0.0.1:${port}/api/stores`, { signal: hangSignal() });
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
    const allowed = await fetch(`http://127.0.0.1:${port}/api/stores`, {
      signal: hangSignal(),
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(allowed.status, 200);
    await allowed.body?.cancel();
    child.kill("SIGTERM");
    await drain(reader, seen);
    assert.equal((await exitOf(child, () => seen.text)).code, 0, seen.text);
    assert.equal(
      seen.text.split(token).length - 1,
      2,
      "the token is printed once (URL and header line)",
    );
  });
});

Deno.test("flowstate serve: an invalid serve: section is exit 2 with file:line:column", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: memory }\nserve:\n  port: 99999\n",
    );
    const result = await runCli(dir, ["serve"]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /flowstate\.yaml:4:\d+: serve\.port: expected a port number from 0 to 65535/,
    );
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "serve:\n  prot: 1\n");
    const typo = await runCli(dir, ["serve"]);
    assert.equal(typo.code, 2);
    assert.match(
      typo.stderr,
      /flowstate\.yaml:2:\d+: serve\.prot: unknown field \(did you mean "port"\?\)/,
    );
    // A flows: entry that does not exist is refused at start, as the daemon refuses it
    // (the server answered every flow route 500 "Internal error: …" instead).
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: memory }\nflows: [./nope]\n",
    );
    const child = cliCommand(dir, ["serve", "--port", "0"], { stdout: "null" }).spawn();
    const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    const seen = { text: "" };
    await waitFor(stderr, /error: |Serving/, seen);
    if (seen.text.includes("Serving")) child.kill("SIGTERM"); // it started: the test fails below
    await drain(stderr, seen);
    const code = (await exitOf(child)).code;
    assert.doesNotMatch(seen.text, /Serving/);
    assert.equal(code, 2, seen.text);
    assert.match(
      seen.text,
      /^error: flowstate\.yaml:3:9: flows\[0\]: cannot read \S*nope: no such file or directory/m,
    );
    // The flag is checked the same way, before anything starts.
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "stores:\n  main: { plugin: memory }\n");
    const flag = await runCli(dir, ["serve", "--port", "99999"]);
    assert.equal(flag.code, 2, flag.stderr);
    assert.match(flag.stderr, /--port must be an integer from 0 to 65535 \(got "99999"\)/);
  });
});

const SLOW = `id: slow
nodes:
  - { id: hello, type: log, with: { message: waiting } }
  - { id: wait, type: delay, needs: [hello], with: { for: 60s } }
`;

/** Start `flowstate run slow.flow.yaml` in `dir` and wait until its first node logged. */
async function startSlowRun(dir: string) {
  await Deno.writeTextFile(join(dir, "slow.flow.yaml"), SLOW);
  const child = cliCommand(dir, ["run", "slow.flow.yaml"]).spawn();
  const stdout = new Response(child.stdout).text();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const seen = { text: "" };
  await waitFor(reader, /\[hello\] waiting\n/, seen);
  const listed = await runCli(dir, ["runs", "ls", "--json", "--status", "running"]);
  const [run] = JSON.parse(listed.stdout) as { id: string }[];
  assert.ok(run, `a running run: ${listed.stdout} ${listed.stderr}`);
  return {
    id: run.id,
    async end() {
      await drain(reader, seen);
      return { code: (await exitOf(child)).code, stdout: await stdout, stderr: seen.text };
    },
  };
}

Deno.test("flowstate runs cancel: a run of another process ends cancelled; ended and unknown runs exit 1", async () => {
  await withDir(async (dir) => {
    const run = await startSlowRun(dir);
    const cancel = await runCli(dir, ["runs", "cancel", run.id]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, new RegExp(`Cancel requested for run ${run.id}`));
    const ended = await run.end();
    assert.equal(ended.code, 1, ended.stderr);
    assert.match(ended.stdout, /^status: +cancelled$/m);
    const shown = JSON.parse((await runCli(dir, ["runs", "show", run.id, "--json"])).stdout);
    assert.equal(shown.run.status, "cancelled");
    assert.equal(shown.run.nodes.wait.status, "cancelled");

    const again = await runCli(dir, ["runs", "cancel", run.id]);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      new RegExp(`^error: run ${run.id} already ended \\(cancelled\\)$`, "m"),
    );
    const unknown = await runCli(dir, ["runs", "cancel", "0mjuw3ms0abcdefghijk"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: unknown run 0mjuw3ms0abcdefghijk$/m);
  });
});

Deno.test("POST /api/runs/{id}/cancel cancels a run of another process (flowstate run)", async () => {
  await withDir(async (dir) => {
    const run = await startSlowRun(dir);
    // The server shares the CLI's default store (home/state.db) from this process.
    await using runtime = await openRuntime({ cwd: dir, home: join(dir, "home") });
    const server = await serve(runtime, { port: 0 });
    try {
      const res = await fetch(new URL(`/api/runs/${run.id}/cancel`, server.url), {
        signal: hangSignal(),
        method: "POST",
        headers: { origin: server.url.slice(0, -1) },
      });
      assert.equal(res.status, 202, await res.clone().text());
      assert.deepEqual(await res.json(), { runId: run.id, status: "running" });
      const ended = await run.end();
      assert.equal(ended.code, 1, ended.stderr);
      const detail =
        await (await fetch(new URL(`/api/runs/${run.id}`, server.url), { signal: hangSignal() }))
          .json();
      assert.equal(detail.run.status, "cancelled");
    } finally {
      await server.shutdown();
    }
  });
});

Deno.test("flowstate daemon --serve serves beside the scheduler (serve: from the config) and stops on SIGTERM", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "serve:\n  port: 0\n");
    const child = cliCommand(dir, ["daemon", "--serve"], { stdout: "null" }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    const seen = { text: "" };
    const [, port] = await waitFor(reader, /^Serving http:\/\/127\.0\.0\.1:(\d+)\/$/m, seen);
    const health = await (await fetch(`http://127.0.0.1:${port}/health`, { signal: hangSignal() }))
      .json();
    assert.equal(health.status, "ok");
    assert.equal(health.daemon.ticking, true);
    const metrics =
      await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: hangSignal() })).text();
    assert.match(metrics, /^flowstate_scheduler_lag_seconds \d/m);
    child.kill("SIGTERM");
    await drain(reader, seen);
    assert.equal((await exitOf(child, () => seen.text)).code, 0, seen.text);
  });
});

Deno.test("flowstate serve runs what it enqueues with its own worker; --no-worker leaves it queued for one", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default: { plugin: sqlite, path: .flowstate/s.db }\nflows: [./flows]\n",
    );
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flows", "hi.flow.yaml"),
      "id: hi\nnodes:\n  - { id: a, type: transform, with: { value: 1 } }\noutputs:\n  one: ${{ nodes.a.output }}\n",
    );
    const start = async (args: string[]) => {
      const child = cliCommand(dir, ["serve", "--port", "0", ...args], { stdout: "piped" }).spawn();
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      const stdout = new Response(child.stdout).text();
      const seen = { text: "" };
      const [, port] = await waitFor(reader, /^Serving http:\/\/127\.0\.0\.1:(\d+)\/$/m, seen);
      const post = (query = "") =>
        fetch(`http://127.0.0.1:${port}/api/flows/hi/runs${query}`, {
          signal: hangSignal(),
          method: "POST",
          headers: { authorization: "Bearer any", "content-type": "application/json" },
          body: "{}",
        });
      const stop = async () => {
        child.kill("SIGTERM");
        await drain(reader, seen);
        const out = await stdout;
        assert.equal((await exitOf(child, () => seen.text)).code, 0, seen.text);
        // ?wait=true watches for the client going away: without the config's
        // no-legacy-abort, Deno.serve warns about request.signal's legacy use.
        assert.doesNotMatch(seen.text, /legacy behavior/);
        return out;
      };
      return { post, stop };
    };

    const plain = await start([]);
    const waited = await plain.post("?wait=true");
    assert.equal(waited.status, 200);
    const { run } = await waited.json();
    assert.equal(run.status, "succeeded");
    assert.deepEqual(run.outputs, { one: 1 });
    const lines = await plain.stop();
    assert.match(lines, new RegExp(`${run.id} hi succeeded`), "the worker's line");

    const idle = await start(["--no-worker"]);
    const queued = await idle.post();
    assert.equal(queued.status, 202);
    const { runId, status } = await queued.json();
    assert.equal(status, "queued");
    await new Promise((r) => setTimeout(r, 1_500));
    await idle.stop();
    const ls = await runCli(dir, ["runs", "ls", "--status", "queued", "--json"]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(JSON.parse(ls.stdout).map((r: { id: string }) => r.id), [runId]);
  });
});

Deno.test("runs cancel (and POST /api/runs/{id}/cancel) of a run whose process died records it abandoned, never leaving it running", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: state.db }\n",
    );
    // Two runs of a process that "died" two minutes ago: no heartbeat since.
    const ids: string[] = [];
    {
      await using runtime = await openRuntime({ cwd: dir, config: join(dir, "flowstate.yaml") });
      const records = await runtime.records();
      const then = { now: () => Date.now() - 120_000 };
      for (let i = 0; i < 2; i++) {
        const run = await RunRecorder.start(records, then, {
          flowId: "gone",
          flowVersion: "v",
          inputs: {},
        });
        await run.close();
        ids.push(run.id);
      }
    }
    const cancel = await runCli(dir, ["runs", "cancel", ids[0]]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(
      cancel.stdout,
      new RegExp(
        `^Run ${
          ids[0]
        } \\(gone\\) has had no heartbeat since .*: the process running it is gone; recorded it failed \\(abandoned\\)`,
      ),
    );
    const shown = JSON.parse((await runCli(dir, ["runs", "show", ids[0], "--json"])).stdout);
    assert.equal(shown.run.status, "failed");
    assert.match(shown.run.error.message, /^abandoned: /);

    await using runtime = await openRuntime({ cwd: dir, config: join(dir, "flowstate.yaml") });
    const server = await serve(runtime, { port: 0, worker: false });
    try {
      const res = await fetch(`${server.url}api/runs/${ids[1]}/cancel`, {
        signal: hangSignal(),
        method: "POST",
        headers: { origin: server.url.slice(0, -1) },
      });
      assert.equal(res.status, 202);
      assert.deepEqual(await res.json(), { runId: ids[1], status: "failed" });
      assert.equal((await (await runtime.records()).getRun(ids[1]))?.status, "failed");
    } finally {
      await server.shutdown();
    }
  });
});

Deno.test("flowstate serve warns at start about a webhook that cannot work: its secret's variable unset, or its flow invalid", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: memory }\nflows: [./flows]\n",
    );
    await Deno.writeTextFile(
      join(dir, "flows", "deploy.flow.yaml"),
      "id: deploy\ntrigger: { http: { path: /hooks/deploy, secret: { env: AUDIT2_UNSET_SECRET } } }\n" +
        "nodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    await Deno.writeTextFile(
      join(dir, "flows", "typo.flow.yaml"),
      "id: typo\ntrigger: { http: { path: /hooks/typo } }\nnodes:\n  - { id: a, type: lgo }\n",
    );
    const child = cliCommand(dir, ["serve", "--port", "0"], { stdout: "null" }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    const seen = { text: "" };
    await waitFor(reader, /^Serving /m, seen);
    child.kill("SIGTERM");
    await drain(reader, seen);
    assert.equal((await exitOf(child, () => seen.text)).code, 0, seen.text);
    assert.match(
      seen.text,
      /^warning: webhook \/hooks\/deploy: its secret's variable AUDIT2_UNSET_SECRET is not set here, so every request to it is refused \(500\) until it is$/m,
    );
    assert.match(
      seen.text,
      /^warning: webhook \/hooks\/typo: its flow typo \(\S*typo\.flow\.yaml\) is invalid, so every request to it is refused \(500\): .*unknown node type "lgo"/m,
    );
  });
});

Deno.test("flowstate serve --host naming no address of this machine is exit 2 saying what --host takes", async () => {
  await withDir(async (dir) => {
    const result = await runCli(dir, ["serve", "--host", "999.1.1.1", "--port", "0"]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error: Cannot serve on 999\.1\.1\.1:0: /m);
    assert.match(result.stderr, /give --host \(or serve\.host in the config\) an address/);
  });
});
