/**
 * What a dead process left `running` is recorded abandoned by the process
 * that takes its work over, once its heartbeat is stale (four missed beats,
 * 20 s: these tests take about half a minute each), not only by the nightly
 * `gc`:
 *
 * - a queue worker that takes back a run whose worker was killed (SIGKILL)
 *   records the sub-runs that attempt left running abandoned;
 * - a daemon that takes over a change trigger from a daemon killed during a
 *   run records that run abandoned.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openRuntime, openStore } from "../mod.ts";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import {
  killDaemonsAndRemove,
  spawnDaemon,
  streamLines,
  within,
} from "./fixtures/daemon_process.ts";
import { exitOf } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const WAIT_NODE = join(ROOT, "tests", "fixtures", "nodes", "wait_for_file.ts");

/** How long any one wait of these tests may take before it fails (not a timing assertion). */
const WAIT_MS = 120_000;

/** A flow whose one node waits for the file named by $HOLD (`head`: its first lines). */
const waiting = (head: string) =>
  `${head}
env: [HOLD]
nodes:
  - id: wait
    type: ${WAIT_NODE}
    with: { path: "\${{ env.HOLD }}" }
    permissions: { read: true }
`;

Deno.test({
  name:
    "worker: the sub-runs of an attempt lost with its worker (SIGKILL) are recorded abandoned by the worker that takes the run back",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-lost-sub-runs-" });
    const hold = join(dir, "release");
    const children: Deno.ChildProcess[] = [];
    try {
      await Deno.mkdir(join(dir, "flows", "sub"), { recursive: true });
      await Deno.writeTextFile(
        join(dir, "flows", "parent.flow.yaml"),
        "id: parent\nnodes:\n  - { id: sub, type: flow, with: { flow: ./sub/child.flow.yaml } }\n",
      );
      await Deno.writeTextFile(join(dir, "flows", "sub", "child.flow.yaml"), waiting("id: child"));
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        "stores:\n  default: { plugin: sqlite, path: ./data.db }\nflows: [./flows/parent.flow.yaml]\n",
      );
      const run = (...args: string[]) => runCli(dir, args);
      const running = async () => {
        const r = await run("runs", "ls", "--status", "running", "--json");
        assert.equal(r.code, 0, r.stderr);
        return JSON.parse(r.stdout) as { id: string; flowId: string }[];
      };
      const id = (await run("enqueue", "parent")).stdout.trim();
      const worker = () => {
        const child = cliCommand(
          dir,
          ["worker", "--json", "--lease", "2s", "--poll", "100ms"],
          { env: { HOLD: hold } },
        ).spawn();
        children.push(child);
        return child;
      };

      // The first worker runs the parent and its sub-run, and is killed.
      const a = worker();
      const deadline = Date.now() + WAIT_MS;
      let lost: { id: string; flowId: string } | undefined;
      while ((lost = (await running()).find((r) => r.flowId === "child")) === undefined) {
        assert.ok(Date.now() < deadline, "the sub-run did not start");
        await new Promise((r) => setTimeout(r, 100));
      }
      a.kill("SIGKILL");
      await exitOf(a);
      await a.stdout.cancel();
      await a.stderr.cancel();
      await Deno.writeTextFile(hold, ""); // the next attempt's sub-run ends at once

      // The second takes the run back, runs it, and records the lost sub-run abandoned.
      const b = worker();
      const lines = streamLines(b.stdout);
      const ended = JSON.parse(await within(lines.next(/"type":"end"/), "the run's end"));
      assert.equal(ended.status, "succeeded", JSON.stringify(ended));
      assert.equal(ended.runId, id);
      const abandoned = JSON.parse(
        await within(lines.next(/"type":"abandoned"/), "the lost sub-run recorded abandoned"),
      );
      assert.deepEqual(abandoned.runIds, [lost.id]);
      b.kill("SIGTERM");
      assert.equal((await exitOf(b)).code, 0);
      await lines.done;
      await b.stderr.cancel();

      assert.deepEqual(await running(), [], "no run is left running");
      const shown = JSON.parse((await run("runs", "show", lost.id, "--json")).stdout).run;
      assert.equal(shown.status, "failed");
      assert.match(shown.error.message, /^abandoned: (no heartbeat|its process \d+ is gone)/);
    } finally {
      for (const child of children) {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "daemon: a change trigger's run whose daemon was killed (SIGKILL) is recorded abandoned by the daemon that takes the trigger over",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-trigger-abandoned-" });
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `stores:
  default: { plugin: sqlite, path: main.db }
  data: { plugin: sqlite, path: data.db, changes: { keep: 30d } }
flows: [./on.flow.yaml]
jobs:
  retention: { enabled: false }
  gc: { enabled: false }
`,
    );
    await Deno.writeTextFile(
      join(dir, "on.flow.yaml"),
      waiting("id: on\ntrigger:\n  changes: { store: data, prefix: [orders] }"),
    );
    const daemon = (id: string, hold: string) => {
      const child = spawnDaemon(dir, id, { env: { HOLD: hold }, leaseMs: 2000 });
      return { child, stdout: streamLines(child.stdout), stderr: streamLines(child.stderr) };
    };
    const a = daemon("runner-a", join(dir, "never"));
    let b: ReturnType<typeof daemon> | undefined;
    try {
      await within(a.stdout.next(/^Change trigger flow:on watching/), "daemon a's trigger");
      b = daemon("runner-b", join(dir, "flowstate.yaml"));
      await within(b.stdout.next(/^Change trigger flow:on is run by/), "daemon b standing by");
      {
        await using data = await openStore({
          plugin: "sqlite",
          path: join(dir, "data.db"),
          changes: { keep: "30d" },
        }, { name: "data" });
        await data.set(["orders", "1"], 1);
      }
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const r = await runCli(dir, ["runs", "ls", "--status", "running", "--json"]);
        assert.equal(r.code, 0, r.stderr);
        if (JSON.parse(r.stdout).length === 1) break;
        assert.ok(Date.now() < deadline, `daemon a's run did not start: ${a.stderr.lines}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      a.child.kill("SIGKILL");
      await exitOf(a.child);
      const line = await within(
        b.stderr.next(/recorded run \w+ abandoned/),
        "daemon b recording daemon a's run abandoned",
      );
      const runId = /recorded run (\w+) abandoned/.exec(line)![1];
      b.child.kill("SIGTERM");
      assert.equal((await exitOf(b.child)).code, 0, b.stderr.lines.join("\n"));
      assert.deepEqual(b.stderr.lines.filter((l) => l.startsWith("error")), []);

      await using rt = await openRuntime({
        config: { stores: { default: { plugin: "sqlite", path: join(dir, "main.db") } } },
      });
      const records = await rt.records();
      const run = await records.getRun(runId);
      assert.equal(run?.flowId, "on");
      assert.equal(run?.status, "failed");
      assert.match(run?.error?.message ?? "", /^abandoned: (no heartbeat|its process \d+ is gone)/);
      const left = await records.listRunSummaries({ status: "running" });
      assert.deepEqual(left.runs.map((r) => r.id), [], "no run is left running");
    } finally {
      await killDaemonsAndRemove([a, b], dir);
    }
  },
});
