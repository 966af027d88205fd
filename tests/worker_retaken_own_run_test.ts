/**
 * A worker starved past its lease (SIGSTOP, as a loaded machine or a paused
 * VM would) takes back the run whose claim it let lapse, and claims it again
 * while the lapsed attempt is still stopping (its node ignores its signal).
 * The lapsed attempt's end must not drop the new attempt from the worker's
 * runs in flight: stopped with SIGTERM, the worker waits for it and releases
 * it back to the queue (a stopped worker never leaves a run `running`).
 * Through the CLI (subprocesses), on SQLite.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliOk, runCli } from "./_cli_sandbox.ts";
import { gatedFlow } from "./_gated_flow.ts";
import { Watched } from "./_watched.ts";
import { waitUntil } from "./_deadline.ts";

Deno.test("worker: a run it took back from itself (its lease lapsed while starved) is still its run in flight once the lapsed attempt ends; SIGTERM releases it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-retaken-" });
  try {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "gated.flow.yaml"), gatedFlow(dir, 1));
    // A short abort grace: the gate ignores its signal, and the stop's release waits for it.
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "runs: { abortGrace: 500ms }\nflows: [./flows]\n",
    );
    const home = join(dir, "home");
    const run = (...args: string[]) => runCli(dir, args, { home });
    const shown = async (id: string) =>
      JSON.parse(await cliOk(run, "runs", "show", id, "--json")).run;
    // The gates are never opened: each attempt waits in the first one.
    const id = (await cliOk(
      run,
      "enqueue",
      "gated",
      "-i",
      `first=${join(dir, "closed-1")}`,
      "-i",
      `second=${join(dir, "closed-2")}`,
    )).trim();
    await using w = new Watched(
      cliCommand(dir, ["worker", "--json", "--poll", "50ms", "--lease", "2s", "--worker-id", "w"], {
        home,
      }),
    );
    await w.until(/"type":"claim"[^\n]*"attempt":1/);
    // The attempt waits in its first gate (its log line recorded).
    await using follower = new Watched(cliCommand(dir, ["runs", "show", id, "--follow"], { home }));
    await follower.until(/log: waiting for .*closed-1/);
    // Starved past its lease: stopped until the claim lapsed, then resumed.
    w.kill("SIGSTOP");
    try {
      const { heartbeatAt, queue } = await shown(id);
      const lapsesAt = (heartbeatAt ?? queue.claim.at) + queue.claim.leaseMs;
      await waitUntil("the stopped worker's lease to lapse", () => Date.now() > lapsesAt);
    } finally {
      w.kill("SIGCONT");
    }
    // Resumed, it stops the lapsed attempt, takes the run back and claims it again; then the
    // lapsed attempt ends (its end refused: not its claim any more).
    await w.until(/"type":"claim"[^\n]*"attempt":2/);
    await w.until(/"type":"end"[^\n]*"attempt":1/);
    w.kill("SIGTERM");
    assert.equal(await w.code(), 0, w.stderr);
    const lines = w.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    const stopping = lines.find((l) => l.type === "stopping");
    assert.equal(stopping?.running, 1, w.stdout);
    assert.deepEqual(lines.at(-1).released, 1, w.stdout);
    // Released back to the queue, not left running under a claim nobody renews.
    const after = await shown(id);
    assert.equal(after.status, "queued");
    assert.equal(after.queue.claim, undefined);
    assert.deepEqual(after.queue.attempts.map((a: { outcome: string }) => a.outcome), [
      "lost",
      "lost",
    ]);
    assert.match(after.queue.attempts[1].error, /^released: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
