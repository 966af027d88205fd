/**
 * A daemon killed (SIGKILL) while it runs a scheduled tick: another daemon on
 * the same SQLite file takes the tick over once its lease lapsed, records the
 * dead daemon's run abandoned once its heartbeat is stale, and records the
 * tick done as failed (`abandoned: skip`, the default).
 *
 * Runner A holds the tick in a node that waits for a file that never comes;
 * runner B's node finds its file at once. Leases last 2 s here (60 s by
 * default), so the test takes about 25 s: the heartbeat must be older than
 * four missed beats (20 s) before the run is called abandoned.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openRuntime } from "../mod.ts";
import { TickLeases } from "../src/scheduler/lease.ts";
import { killDaemonsAndRemove, spawnDaemon, streamLines } from "./fixtures/daemon_process.ts";
import { exitOf } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const WAIT_NODE = join(ROOT, "tests", "fixtures", "nodes", "wait_for_file.ts");

const FLOW = `
id: hold
schedule: "* * * * * *"
env: [HOLD]
nodes:
  - id: wait
    type: ${WAIT_NODE}
    with: { path: "\${{ env.HOLD }}" }
    permissions: { read: true }
`;

const CONFIG = `
stores:
  default: { plugin: sqlite, path: state.db }
flows: [./hold.flow.yaml]
jobs:
  retention: { enabled: false }
  gc: { enabled: false }
`;

function daemon(dir: string, id: string, hold: string) {
  const child = spawnDaemon(dir, id, { env: { HOLD: hold }, leaseMs: 2000 });
  return { child, stdout: streamLines(child.stdout), stderr: streamLines(child.stderr) };
}

Deno.test({
  name:
    "daemon: a daemon killed during a tick; another records its run abandoned and the tick done",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "flowstate-abandoned-" });
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
    await Deno.writeTextFile(join(dir, "hold.flow.yaml"), FLOW);
    const a = daemon(dir, "runner-a", join(dir, "never"));
    let b: ReturnType<typeof daemon> | undefined;
    try {
      // Runner A alone takes a tick and holds it (overlap: skip keeps it from more).
      await a.stderr.next(/waiting for .*never/);
      b = daemon(dir, "runner-b", join(dir, "flowstate.yaml"));
      await b.stdout.next(/^Scheduler started/);
      a.child.kill("SIGKILL");
      await exitOf(a.child);
      const line = await b.stderr.next(/abandoned by runner runner-a/);
      assert.match(line, /run=\w+\): recorded as failed \(abandoned: skip\)$/);
      const runId = /run=(\w+)/.exec(line)![1];
      b.child.kill("SIGTERM");
      const status = await exitOf(b.child);
      assert.equal(status.code, 0, b.stderr.lines.join("\n"));
      assert.deepEqual(b.stderr.lines.filter((l) => l.startsWith("error")), []);

      await using rt = await openRuntime({
        config: { stores: { default: { plugin: "sqlite", path: join(dir, "state.db") } } },
      });
      const records = await rt.records();
      const run = await records.getRun(runId);
      assert.equal(run?.flowId, "hold");
      assert.equal(run?.status, "failed");
      assert.match(run?.error?.message ?? "", /^abandoned: (no heartbeat|its process \d+ is gone)/);
      const leases = new TickLeases(await rt.store("default"), { runnerId: "x" });
      const done = (await leases.history("flow:hold")).filter((d) => d.done.runId === runId);
      assert.deepEqual(done.map((d) => [d.done.runner, d.done.status]), [["runner-b", "failed"]]);
      const running = await records.listRunSummaries({ status: "running" });
      assert.deepEqual(running.runs.map((r) => r.id), [], "no run is left running");
    } finally {
      await killDaemonsAndRemove([a, b], dir);
    }
  },
});
