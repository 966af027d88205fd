/**
 * `flowstate worker`, `serve` and `daemon` as subprocesses on PostgreSQL
 * behind a TCP proxy the test cuts and restores (the server down at start, or
 * lost for a while): they wait for the records store and work the queue once
 * it answers; SIGTERM while they wait stops them (exit 0); a database that
 * does not exist still fails at once (exit 1); `serve` answers `/health` 503
 * with `worker.status` and the API 503 `store_unavailable` meanwhile; a
 * running worker survives a cut and works the next run. Needs
 * FLOWSTATE_TEST_POSTGRES_URL. No timing assertions: every wait is for a
 * condition, bounded only by a generous deadline.
 *
 * They used to stop at start (`worker`, `daemon`: "the worker cannot start:
 * Cannot open store …", exit 1; `serve`: its worker dead for good, `/health`
 * 200 once the database came up, the API 500 `internal`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { cuttableProxy, dropSchemaTest, pgTest, SCHEMA } from "../plugins/postgres/_test_utils.ts";
import { hangSignal } from "./_deadline.ts";

/** The test's own bound on each wait (generous: it only says "it does not hang"). */
const DEADLINE_MS = 120_000;

const FLOW = "id: hi\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n";

/** A CLI subprocess whose output is collected as it comes. */
class Cli {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  exited: Deno.CommandStatus | undefined;
  readonly #done: Promise<unknown>;

  constructor(dir: string, args: string[]) {
    this.child = cliCommand(dir, args).spawn();
    const pump = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) this[into] += text;
    };
    this.#done = Promise.all([
      pump(this.child.stdout, "stdout"),
      pump(this.child.stderr, "stderr"),
      this.child.status.then((s) => this.exited = s),
    ]);
  }

  /** Resolves once `check` holds (looked at every 50 ms); fails if the process ends first. */
  async until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
    const deadline = Date.now() + DEADLINE_MS;
    while (!(await check())) {
      if (this.exited !== undefined && !(await check())) {
        assert.fail(`${what}: the process exited (${this.exited.code}) first\n${this.output}`);
      }
      if (Date.now() > deadline) assert.fail(`gave up waiting: ${what}\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM, then its exit code once it ended and its output was read. */
  async stop(): Promise<number> {
    if (this.exited === undefined) this.child.kill("SIGTERM");
    await this.#done;
    return this.exited!.code;
  }

  get output(): string {
    return `--- stdout\n${this.stdout}--- stderr\n${this.stderr}`;
  }
}

let tables = 0;

/**
 * A project in a temporary directory: `flowstate.yaml` reaches the store's
 * table through `proxy` (cut at first: the server is "down"), `direct.yaml`
 * reaches it directly (to enqueue while the proxy is cut).
 */
async function withProject(
  url: string,
  fn: (
    project: {
      dir: string;
      proxy: ReturnType<typeof cuttableProxy>;
      enqueue(): Promise<string>;
    },
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-store-wait-pg-" });
  const proxy = cuttableProxy(url);
  await proxy.cut();
  const table = `store_wait_${++tables}`;
  const config = (to: string) =>
    `stores:\n  default: { plugin: postgres, url: "${to}", schema: ${SCHEMA}, table: ${table}, ` +
    `connectTimeout: 2 }\nflows: [./flows]\n`;
  try {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "hi.flow.yaml"), FLOW);
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), config(proxy.url));
    await Deno.writeTextFile(join(dir, "direct.yaml"), config(url));
    await fn({
      dir,
      proxy,
      async enqueue() {
        const result = await runCli(dir, ["enqueue", "hi", "--config", "direct.yaml"]);
        assert.equal(result.code, 0, result.stderr);
        return result.stdout.trim();
      },
    });
  } finally {
    await proxy.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const UNREACHABLE =
  /^warning: store "default" unreachable \(cannot reach PostgreSQL at 127\.0\.0\.1:\d+ \(database "[^"]+"\): [^)]*\): retrying in [\d.]+m?s; Ctrl-C to stop$/m;

pgTest(
  "flowstate worker waits for a store that is down at start, says so, starts once it answers and works a queued run",
  async (url) => {
    await withProject(url, async ({ dir, proxy, enqueue }) => {
      const runId = await enqueue();
      const worker = new Cli(dir, ["worker"]);
      try {
        await worker.until("two unreachable lines", () => {
          return worker.stderr.split("\n").filter((l) => UNREACHABLE.test(l)).length >= 2;
        });
        assert.doesNotMatch(worker.stdout, /started/, "no started line before the store answers");
        proxy.restore();
        await worker.until(
          "the run succeeded",
          () => worker.stdout.includes(`${runId} hi succeeded`),
        );
        // On stderr: waited for, the run's line (stdout) may be read first.
        await worker.until(
          "the reachable line",
          () =>
            /^store "default" reachable after [\d.]+m?s \(\d+ failed attempts?\): starting$/m
              .test(worker.stderr),
        );
        assert.match(worker.stdout, /^Worker \S+ started: 4 at once, any flow$/m);
        assert.doesNotMatch(worker.stderr, /^error:/m);
      } finally {
        assert.equal(await worker.stop(), 0, worker.output);
      }
      assert.match(worker.stdout, /^Worker stopped$/m);
    });
  },
);

pgTest(
  "flowstate worker and daemon stop on SIGTERM while they wait for their store (exit 0), and --wait-for-store bounds the wait",
  async (url) => {
    await withProject(url, async ({ dir }) => {
      for (const command of ["worker", "daemon"]) {
        const cli = new Cli(dir, [command]);
        await cli.until(`${command}: an unreachable line`, () => UNREACHABLE.test(cli.stderr));
        assert.equal(await cli.stop(), 0, cli.output);
        assert.match(cli.stdout, /^Received SIGTERM: stopping$/m, cli.output);
        assert.doesNotMatch(cli.stdout, /started/, cli.output);
        assert.doesNotMatch(cli.stderr, /^error:/m, cli.output);
      }
      const bounded = await runCli(dir, ["worker", "--wait-for-store", "1s"]);
      assert.equal(bounded.code, 1, bounded.stderr);
      assert.match(
        bounded.stderr,
        /^error: the worker cannot start: Cannot open store "default": cannot reach PostgreSQL .*\(still unreachable after waiting [\d.]+ s for it\)$/m,
      );
    });
  },
);

pgTest(
  "flowstate worker, daemon and serve: a database that does not exist fails at once (no waiting)",
  async (url) => {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-store-wait-pg-" });
    try {
      const missing = new URL(url);
      missing.pathname = `/flowstate_missing_${crypto.randomUUID().slice(0, 8)}`;
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  default: { plugin: postgres, url: "${missing.href}", schema: ${SCHEMA} }\n`,
      );
      for (const command of ["worker", "daemon"]) {
        const result = await runCli(dir, [command]);
        assert.equal(result.code, 1, `${command}: ${result.stderr}`);
        assert.match(result.stderr, /refused: database "flowstate_missing_\w+" does not exist/);
        assert.doesNotMatch(result.stderr, /unreachable|retrying/);
        assert.doesNotMatch(result.stdout, /started/);
      }
      // serve keeps serving, its worker stopped: /health says so.
      const serve = new Cli(dir, ["serve", "--port", "0"]);
      try {
        await serve.until(
          "the port",
          () => /^Serving http:\/\/127\.0\.0\.1:\d+\/$/m.test(serve.stderr),
        );
        const port = /^Serving http:\/\/127\.0\.0\.1:(\d+)\/$/m.exec(serve.stderr)![1];
        await serve.until("the worker's error", () => serve.stderr.includes("cannot start"));
        const health = await fetch(`http://127.0.0.1:${port}/health`, { signal: hangSignal() });
        assert.equal(health.status, 503);
        const body = await health.json();
        assert.equal(body.worker.status, "stopped");
        assert.match(body.worker.error, /does not exist/);
        assert.doesNotMatch(serve.stderr, /unreachable|retrying/);
      } finally {
        assert.equal(await serve.stop(), 0, serve.output);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

pgTest(
  "flowstate serve with its store down: /health 503 waiting-for-store, the API 503 store_unavailable; once it answers, 200 and its worker works the queue",
  async (url) => {
    await withProject(url, async ({ dir, proxy, enqueue }) => {
      const runId = await enqueue();
      const serve = new Cli(dir, ["serve", "--port", "0"]);
      try {
        await serve.until(
          "the port",
          () => /^Serving http:\/\/127\.0\.0\.1:\d+\/$/m.test(serve.stderr),
        );
        const base = `http://127.0.0.1:${
          /^Serving http:\/\/127\.0\.0\.1:(\d+)\/$/m.exec(serve.stderr)![1]
        }`;
        await serve.until("an unreachable line", () => UNREACHABLE.test(serve.stderr));
        const health = await fetch(`${base}/health`, { signal: hangSignal() });
        assert.equal(health.status, 503);
        const body = await health.json();
        assert.equal(body.status, "unavailable");
        assert.equal(body.worker.status, "waiting-for-store");
        assert.match(body.worker.error, /^cannot reach PostgreSQL at 127\.0\.0\.1:\d+/);

        for (
          const path of [
            `/api/runs/${runId}`,
            "/api/runs",
            "/api/stores/default/entry?key=a",
            "/api/workers",
          ]
        ) {
          const res = await fetch(`${base}${path}`, { signal: hangSignal() });
          const error = await res.json();
          assert.equal(res.status, 503, `${path}: ${JSON.stringify(error)}`);
          assert.equal(error.error.code, "store_unavailable", path);
          assert.equal(error.store, "default", path);
          assert.equal(res.headers.get("retry-after"), "5");
        }

        proxy.restore();
        await serve.until(
          "the run succeeded",
          () => serve.stdout.includes(`${runId} hi succeeded`),
        );
        const healthy = await fetch(`${base}/health`, { signal: hangSignal() });
        assert.equal(healthy.status, 200);
        assert.deepEqual((await healthy.json()).worker, { status: "running" });
        const run = await fetch(`${base}/api/runs/${runId}`, { signal: hangSignal() });
        assert.equal(run.status, 200);
        assert.equal((await run.json()).run.status, "succeeded");
      } finally {
        assert.equal(await serve.stop(), 0, serve.output);
      }
    });
  },
);

pgTest(
  "a running flowstate worker survives a cut of its server: it backs off, goes on once it answers, and works the next run once",
  async (url) => {
    await withProject(url, async ({ dir, proxy, enqueue }) => {
      proxy.restore();
      const first = await enqueue();
      const worker = new Cli(dir, ["worker"]);
      try {
        await worker.until("the first run", () => worker.stdout.includes(`${first} hi succeeded`));
        await proxy.cut();
        await worker.until(
          "an unreachable line",
          () =>
            /^warning: store "default" unreachable \(.*\): polling the queue again in [\d.]+m?s$/m
              .test(worker.stderr),
        );
        const second = await enqueue();
        proxy.restore();
        await worker.until(
          "the second run",
          () => worker.stdout.includes(`${second} hi succeeded`),
        );
        // Waited for, not looked at once: it comes on stderr, the run's line on stdout, two pipes
        // read apart (the run's line was read first once, under load).
        await worker.until(
          "the reachable line",
          () =>
            /^store "default" reachable after [\d.]+m?s \(\d+ failed attempts?\): working the queue again$/m
              .test(worker.stderr),
        );
        assert.equal(worker.exited, undefined, "still running");
        // Each run ran once.
        for (const id of [first, second]) {
          assert.equal(worker.stdout.split("\n").filter((l) => l.startsWith(`${id} `)).length, 1);
        }
      } finally {
        assert.equal(await worker.stop(), 0, worker.output);
      }
    });
  },
);

pgTest(
  "flowstate daemon waits for a store that is down at start, then starts its scheduler and works a queued run",
  async (url) => {
    await withProject(url, async ({ dir, proxy, enqueue }) => {
      const runId = await enqueue();
      const daemon = new Cli(dir, ["daemon"]);
      try {
        await daemon.until("an unreachable line", () => UNREACHABLE.test(daemon.stderr));
        assert.doesNotMatch(daemon.stdout, /Scheduler started/);
        proxy.restore();
        await daemon.until(
          "the run succeeded",
          () => daemon.stdout.includes(`${runId} hi succeeded`),
        );
        // On stderr: waited for, the run's line (stdout) may be read first.
        await daemon.until(
          "the reachable line",
          () => /^store "default" reachable after .*: starting$/m.test(daemon.stderr),
        );
        assert.match(daemon.stdout, /^Scheduler started/m);
      } finally {
        assert.equal(await daemon.stop(), 0, daemon.output);
      }
    });
  },
);

dropSchemaTest("store_wait_pg_test: drop the test schema", SCHEMA);
