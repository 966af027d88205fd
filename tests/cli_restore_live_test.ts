/**
 * `restore --force` refuses while a run another process runs is recorded
 * (into the records store its records would be deleted under it; into another
 * store, what it reads and writes would be replaced), naming the runs; once
 * that process has stopped it goes ahead.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, withSandbox } from "./_cli_sandbox.ts";
import { exitOf } from "./_deadline.ts";

Deno.test("restore --force refuses while runs recorded in the target store are running, then restores once they stopped", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default: { plugin: sqlite, path: state.db }\n  data: { plugin: sqlite, path: data.db }\n",
    );
    await Deno.writeTextFile(
      join(dir, "slow.flow.yaml"),
      "id: slow\nnodes:\n  - { id: wait, type: delay, with: { for: 60s } }\n",
    );
    assert.equal((await run("state", "set", "a", "1")).code, 0);
    const backup = await run("backup", "--store", "default", "--out", "b.fsbackup");
    assert.equal(backup.code, 0, backup.stderr);
    assert.equal((await run("state", "set", "--store", "data", "d", "1")).code, 0);
    const data = await run("backup", "--store", "data", "--out", "d.fsbackup");
    assert.equal(data.code, 0, data.stderr);

    const child = cliCommand(dir, ["run", "slow.flow.yaml"], { home }).spawn();
    try {
      // Wait until the run is recorded running.
      for (let i = 0;; i++) {
        const ls = await run("runs", "ls", "--status", "running", "--json");
        if (ls.code === 0 && JSON.parse(ls.stdout).length === 1) break;
        if (i > 600) assert.fail("the run never started");
        await new Promise((r) => setTimeout(r, 100));
      }
      const refused = await run("restore", "b.fsbackup", "--store", "default", "--force");
      assert.equal(refused.code, 2, refused.stdout);
      assert.match(
        refused.stderr,
        /with --force: 1 run is running and recorded there: \w+ \(slow, heartbeat \d+ s ago\)\. --force would delete their records under them; stop the workers, daemons and runs using this store first/,
      );
      assert.equal((await run("state", "get", "a")).code, 0, "nothing was cleared");
      // Another store: the running flows of the project may read and write it.
      const other = await run("restore", "d.fsbackup", "--store", "data", "--force");
      assert.equal(other.code, 2, other.stdout);
      assert.match(
        other.stderr,
        /with --force: 1 run is running in this project: \w+ \(slow, heartbeat \d+ s ago\)\. --force would replace what they read and write there as they run/,
      );
    } finally {
      child.kill("SIGTERM");
      await exitOf(child);
    }
    // The run stopped (recorded cancelled): the restore goes ahead.
    const restored = await run("restore", "b.fsbackup", "--store", "default", "--force");
    assert.equal(restored.code, 0, restored.stderr);
    const restoredData = await run("restore", "d.fsbackup", "--store", "data", "--force");
    assert.equal(restoredData.code, 0, restoredData.stderr);
  });
});
