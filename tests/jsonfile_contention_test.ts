/**
 * Contention on one jsonfile store through the CLI: several processes run a
 * counter flow at once against a store of a couple of MB. Every run either
 * succeeds or fails cleanly, and exit codes, run records and the counter
 * agree: as many runs exited 0 as are recorded succeeded, none is left
 * `running`, and the counter counts exactly the succeeded runs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../mod.ts";
import { cliCommand } from "./_cli_sandbox.ts";
import { type Output, outputOf } from "./_deadline.ts";

const PROCESSES = 4;
const RUNS_EACH = 3;
const FILLER_ENTRIES = 1500; // about 1.5 MB of 1 KB values

const FLOW = `id: counter
nodes:
  - id: bump
    type: state.increment
    with: { scope: flow, key: count }
`;

function cli(dir: string, ...args: string[]): Promise<Output> {
  return outputOf(cliCommand(dir, args));
}

Deno.test("jsonfile under contention: 4 processes x 3 counter runs; exit codes, run records and the counter agree", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-contention-" });
  try {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default: { plugin: jsonfile, path: state.json }\n",
    );
    await Deno.writeTextFile(join(dir, "counter.flow.yaml"), FLOW);
    {
      await using store = await openStore({ plugin: "jsonfile", path: join(dir, "state.json") });
      const atomic = store.atomic();
      for (let i = 0; i < FILLER_ENTRIES; i++) {
        atomic.set(["filler", String(i).padStart(6, "0")], "x".repeat(1000));
      }
      assert.equal((await atomic.commit()).ok, true);
    }
    const codes: number[] = [];
    const failures: string[] = [];
    await Promise.all(Array.from({ length: PROCESSES }, async () => {
      for (let i = 0; i < RUNS_EACH; i++) {
        const out = await cli(dir, "run", "counter.flow.yaml");
        codes.push(out.code);
        if (out.code !== 0) failures.push(out.stderr);
        else assert.equal(out.stderr.includes("migrate store"), false);
      }
    }));
    const runs = await cli(dir, "runs", "ls", "--flow", "counter", "--limit", "100", "--json");
    assert.equal(runs.code, 0, runs.stderr);
    const records = JSON.parse(runs.stdout) as { status: string }[];
    const count = await cli(dir, "state", "get", "--flow", "counter", "count");
    assert.equal(count.code, 0, count.stderr);
    const counter = Number(count.stdout.trim());

    const exitedOk = codes.filter((c) => c === 0).length;
    const succeeded = records.filter((r) => r.status === "succeeded").length;
    assert.deepEqual(records.filter((r) => r.status === "running"), [], "no run is left running");
    assert.equal(succeeded, exitedOk, "as many runs are recorded succeeded as exited 0");
    assert.equal(counter, succeeded, "the counter counts exactly the succeeded runs");
    // Every run that exited non-zero says why, and none of them was recorded succeeded.
    assert.equal(codes.length, PROCESSES * RUNS_EACH);
    for (const failure of failures) assert.match(failure, /Cannot|failed/);
    // At this size no run has any reason to fail: the lock waits scale with commit times.
    assert.deepEqual(failures, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
