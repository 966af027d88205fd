/**
 * A run whose process was killed (kill -9) and that gc then recorded
 * abandoned keeps what its nodes' events said: `runs show` prints the node
 * that succeeded as succeeded (not "no result recorded"), and a resume's
 * `--dry-run` says it runs again because its output was lost with its
 * process (its side effects happen again), not that it "did not run".
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliOk, withCliProject } from "./_cli_sandbox.ts";
import { killQuietly, waitUntil } from "./_deadline.ts";
import { openRuntime } from "../mod.ts";

const FLOW = `id: k
nodes:
  - { id: a, type: state.increment, with: { key: n } }
  - { id: b, type: delay, needs: [a], with: { for: 10m } }
`;

Deno.test("an abandoned run (kill -9) keeps its nodes' outcomes from their events; its resume says the node that succeeded runs again, and why", async () => {
  await withCliProject("", async (run, dir) => {
    await Deno.writeTextFile(join(dir, "k.flow.yaml"), FLOW);
    const home = join(dir, "home"); // where the project's CLI runs keep it (withCliProject)
    const child = cliCommand(dir, ["run", "k.flow.yaml"], { home, stdout: "null" }).spawn();
    let runId: string | undefined;
    try {
      await using rt = await openRuntime({ cwd: dir, home });
      await waitUntil("node a's end and b's attempt recorded", async () => {
        const records = await rt.records().catch(() => undefined);
        const runs = await records?.listRuns({ flowId: "k" }).catch(() => undefined);
        runId = runs?.runs[0]?.id;
        if (runId === undefined) return false;
        const events = await records!.getEvents(runId);
        return events.some((e) => e.type === "node.end" && e.node === "a") &&
          events.some((e) => e.type === "node.attempt" && e.node === "b");
      });
    } finally {
      killQuietly(child);
      await child.status;
      await child.stderr.cancel();
    }
    {
      await using rt = await openRuntime({ cwd: dir, home });
      const records = await rt.records();
      const marked = await records.abandonRun(runId!, {
        afterMs: 20_000,
        now: Date.now() + 120_000,
      });
      assert.equal(marked?.status, "failed");
      assert.deepEqual(marked?.nodes.a, { status: "succeeded", attempts: 1 });
      // b was running when its process died: stopped (as a run interrupted by SIGTERM records
      // it), not "did not run".
      assert.deepEqual(marked?.nodes.b, { status: "cancelled", attempts: 1 });
    }
    const shown = await cliOk(run, "runs", "show", runId!);
    assert.match(shown, /^ {2}a: succeeded, 1 attempt/m);
    assert.match(shown, /^ {2}b: cancelled, 1 attempt/m);
    const plan = await cliOk(run, "runs", "resume", runId!, "--dry-run", "--flow", "k.flow.yaml");
    assert.match(
      plan,
      new RegExp(
        `run +a +succeeded in run ${runId}, whose process was lost before it recorded its outputs \\(abandoned\\): it runs again, and its side effects happen again`,
      ),
    );
  });
});
