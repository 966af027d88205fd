/**
 * The change feed's retention (`changes.keep`) trims changes a change
 * trigger has not delivered while no daemon ran it: the daemon says which
 * changes it can no longer deliver and goes on from the oldest kept.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, openStore, runJob } from "../mod.ts";
import { spawnDaemon, streamLines } from "./fixtures/daemon_process.ts";
import { exitOf } from "./_deadline.ts";

const FLOW = `
id: on-order
trigger:
  changes: { store: data, prefix: [orders] }
inputs:
  seq: { type: number }
nodes:
  - id: count
    type: state.increment
    with: { store: data, key: ["seen", "seq-\${{ inputs.seq }}"] }
`;

const CONFIG = `
stores:
  main: { plugin: sqlite, path: main.db }
  data: { plugin: sqlite, path: data.db, changes: { keep: { count: 3 } } }
scopes: { global: main, flow: main, node: main }
flows: [./on-order.flow.yaml]
jobs:
  retention: { enabled: false }
  gc: { enabled: false }
`;

/** Where the daemon keeps the trigger's position (docs/maintenance.md). */
const POSITION_KEY = ["flowstate", "triggers", "on-order", "store", "data", "position"];

Deno.test("flowstate daemon: a change trigger whose position the feed's retention trimmed says so and delivers the changes kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-trigger-trimmed-" });
  try {
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), CONFIG);
    await Deno.writeTextFile(join(dir, "on-order.flow.yaml"), FLOW);
    {
      await using main = await openStore({ plugin: "sqlite", path: join(dir, "main.db") });
      await using data = await openStore({
        plugin: "sqlite",
        path: join(dir, "data.db"),
        changes: { keep: { count: 3 } },
      });
      await data.set(["orders", "1"], 1); // change 1: the trigger delivered it
      await main.set(POSITION_KEY, { seq: 1, store: "data" });
      // While no daemon runs: changes 2 to 10, and gc trims the feed to the last 3.
      for (let i = 2; i <= 10; i++) await data.set(["orders", String(i)], i);
    }
    {
      await using rt = await openRuntime({ config: join(dir, "flowstate.yaml") });
      const gc = await runJob(rt, "gc", { progress: "quiet", onLog: () => {} });
      assert.equal(gc.status, "succeeded", JSON.stringify(gc.error));
      const info = await (await rt.store("data")).feedInfo();
      assert.deepEqual([info.firstSeq, info.lastSeq], [8, 10]);
    }
    const child = spawnDaemon(dir, "a", { leaseMs: 1000 });
    const out = streamLines(child.stdout);
    const err = streamLines(child.stderr);
    try {
      await err.next(/no longer holds changes 2 to 7 .*going on from change 8/);
      // Delivered: the changes kept, each once.
      await using data = await openStore({ plugin: "sqlite", path: join(dir, "data.db") });
      const deadline = Date.now() + 120_000; // a hang guard, not a timing assertion
      let seen: string[] = [];
      while (Date.now() < deadline) {
        seen = (await Array.fromAsync(data.list({ prefix: ["flow", "on-order", "seen"] })))
          .map((e) => e.key[3]);
        if (seen.length >= 3 || err.lines.some((line) => /Cannot watch/.test(line))) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(seen, ["seq-10", "seq-8", "seq-9"], err.lines.join("\n"));
      assert.ok(
        !err.lines.some((line) => /Cannot watch/.test(line)),
        `the trigger did not fail:\n${err.lines.join("\n")}`,
      );
    } finally {
      child.kill("SIGTERM");
      assert.equal((await exitOf(child, () => err.lines.join("\n"))).code, 0, err.lines.join("\n"));
      await Promise.all([out.done, err.done]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
