/**
 * A run whose process died while its `wait` node waited (killed -9: recorded
 * `running`, its heartbeat stale): `runs show` does not tell to signal it,
 * and `runs signal` records it abandoned (as `runs cancel` does) instead of
 * saying it goes on; nothing is kept for it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import { RunRecorder } from "../records.ts";
import { withCliProject } from "./_cli_sandbox.ts";

Deno.test("wait: runs signal to a run whose process is gone records it abandoned, exit 1; runs show does not say it waits", async () => {
  const config = "stores:\n  main: { plugin: sqlite, path: main.db }\n";
  await withCliProject(config, async (cli, dir) => {
    let id: string;
    {
      // Its process died ten minutes ago, as its wait node waited.
      await using rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
      const clock = { now: () => Date.now() - 10 * 60_000 };
      const recorder = await RunRecorder.start(await rt.records(), clock, {
        flowId: "deploy",
        flowVersion: "job",
        inputs: {},
      });
      id = recorder.id;
      recorder.event({
        at: clock.now(),
        type: "node.log",
        node: "approve",
        level: "info",
        message: `waiting for signal "approve" (flowstate runs signal ${id} approve)`,
      });
      await recorder.close();
    }
    const shown = await cli("runs", "show", id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /its process is gone/);
    assert.doesNotMatch(shown.stdout, /waiting: /);

    const sent = await cli("runs", "signal", id, "approve", "--data", '"ok"');
    assert.equal(sent.code, 1, sent.stdout);
    assert.match(
      sent.stderr,
      new RegExp(
        `run ${id} already ended \\(failed, abandoned: no heartbeat .*; recorded now\\): signal approve not sent`,
      ),
    );
    await using rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
    const run = await (await rt.records()).getRun(id);
    assert.equal(run?.status, "failed");
    const store = await rt.store("main");
    const left = [];
    for await (const e of store.list({ prefix: ["flowstate", "signals"] })) left.push(e.key);
    assert.deepEqual(left, []);
  });
});
