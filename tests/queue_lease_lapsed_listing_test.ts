/**
 * A queued run whose worker was killed (SIGKILL) while it ran, with no other worker to take it
 * back: once its claim's lease lapsed, `runs ls` lists it `running? (lease lapsed)` with a note
 * saying what that means, and `runs show` says when the lease lapsed and what happens next. Both
 * used to say `running` for as long as no worker polled (for good, with no worker left).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, runCli } from "./_cli_sandbox.ts";
import { exitOf, waitUntil } from "./_deadline.ts";

Deno.test("runs ls and runs show: a queued run whose killed worker's lease lapsed is not listed plain running", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-lease-lapsed-" });
  const cli = (...args: string[]) => runCli(dir, args);
  let worker: Deno.ChildProcess | undefined;
  try {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: ./state.db }\n",
    );
    await Deno.writeTextFile(
      join(dir, "slow.flow.yaml"),
      "id: slow\nnodes:\n  - { id: wait, type: delay, with: { for: 120s } }\n",
    );
    const enqueued = await cli("enqueue", "./slow.flow.yaml");
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const id = enqueued.stdout.trim();
    worker = cliCommand(dir, ["worker", "--json", "--lease", "2s", "--worker-id", "doomed"])
      .spawn();
    const show = async () => JSON.parse((await cli("runs", "show", id, "--json")).stdout).run;
    await waitUntil("the worker's claim", async () => (await show()).status === "running");
    worker.kill("SIGKILL");
    await exitOf(worker);
    worker = undefined;
    // Its last heartbeat is the one written: the lease lapses that long after it.
    const run = await show();
    const lapsesAt = (run.heartbeatAt ?? run.queue.claim.at) + run.queue.claim.leaseMs;
    await waitUntil("the lease's end", () => Promise.resolve(Date.now() > lapsesAt + 50));

    const listed = await cli("runs", "ls");
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^${id} +slow +running\\? \\(lease lapsed\\) `, "m"));
    assert.match(
      listed.stderr,
      /^running\? \(lease lapsed\): a queued run whose worker wrote no heartbeat/m,
    );
    const shown = await cli("runs", "show", id);
    assert.match(
      shown.stdout,
      /claimed by doomed, its lease lapsed at .* the next worker that polls the queue takes it back/,
    );
    // Still recorded running: the listing says what it is, it changes nothing.
    assert.equal((await show()).status, "running");
  } finally {
    worker?.kill("SIGKILL");
    if (worker !== undefined) await exitOf(worker);
    await Deno.remove(dir, { recursive: true });
  }
});
