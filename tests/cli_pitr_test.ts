/**
 * End-to-end tests of incremental backups and point-in-time restore through
 * the `flowstate` CLI: `backup --since`, `restore <full> <increments...>`,
 * `restore --at <time> --into <store>`, each run as a subprocess.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliDump, cliOk, type ProjectCli, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = `
stores:
  main: { plugin: sqlite, path: data/main.db }
  data: { plugin: sqlite, path: data/data.db, changes: { keep: 30d } }
  copy: { plugin: jsonfile, path: data/copy.json }
  pit: { plugin: sqlite, path: data/pit.db }
  plain: { plugin: memory, snapshot: data/plain.snapshot.json }
  scratch: { plugin: memory }
scopes: { global: main, flow: main, node: main }
`;

/** Wait until the wall clock moved past `ms` (commit times are ms). */
async function after(ms: number) {
  while (Date.now() <= ms) await new Promise((r) => setTimeout(r, 2));
}

const withProject = (fn: (run: ProjectCli, dir: string) => Promise<void>) =>
  withCliProject(CONFIG, fn, { prefix: "flowstate-pitr-cli-" });
const ok = cliOk;
const dump = cliDump;

Deno.test("flowstate backup --since, restore <full> <increments>, restore --at --into", async () => {
  await withProject(async (run, dir) => {
    await ok(run, "state", "set", "--store", "data", "a", "1");
    await ok(run, "state", "set", "--store", "data", "b", "2");
    const full = JSON.parse(
      await ok(run, "backup", "--store", "data", "--out", "full.fsbackup", "--json"),
    );
    assert.equal(full.files[0].feedSeq, 2);
    await ok(run, "state", "set", "--store", "data", "a", "10");
    await ok(run, "state", "rm", "--store", "data", "b");
    const atMid = Date.now();
    const stateMid = await dump(run, "data");
    await after(atMid);
    const inc1 = JSON.parse(
      await ok(
        run,
        "backup",
        "--store",
        "data",
        "--since",
        "full.fsbackup",
        "--out",
        "inc1.fsbackup",
        "--json",
      ),
    );
    assert.deepEqual([inc1.files[0].fromSeq, inc1.files[0].toSeq, inc1.entries], [2, 4, 2]);
    const dry = JSON.parse(
      await ok(run, "backup", "--store", "data", "--since", "inc1.fsbackup", "--dry-run", "--json"),
    );
    assert.deepEqual([dry.files[0].fromSeq, dry.files[0].toSeq, dry.dryRun], [4, 4, true]);
    await ok(run, "state", "set", "--store", "data", "c", "3");
    const inc2 = await ok(
      run,
      "backup",
      "--store",
      "data",
      "--since",
      "inc1.fsbackup",
      "--out",
      "inc2.fsbackup",
    );
    // An increment holds changes, not the store's entries.
    assert.match(inc2, /^data: 1 change \(after #4, up to #5\) → .*inc2\.fsbackup/m);
    const end = await dump(run, "data");
    await ok(run, "state", "set", "--store", "data", "d", "4");

    // Full + increments equals the source when the last increment was taken.
    const chain = ["full", "inc1", "inc2"].map((name) => join(dir, `${name}.fsbackup`));
    const restored = JSON.parse(await ok(run, "restore", ...chain, "--store", "copy", "--json"));
    assert.equal(restored.changes, 3, JSON.stringify(restored));
    assert.deepEqual(await dump(run, "copy"), end);
    // What the store holds, not the writes: a, c (b was deleted by a change).
    assert.deepEqual([restored.holds, restored.deleted], [end.length, 1]);
    assert.equal(end.length, 2);
    // The same said in words (restored again, into a store that lives for one command).
    const said = await ok(run, "restore", ...chain, "--store", "scratch");
    assert.match(
      said,
      /^Restored store "scratch" from .*full\.fsbackup and 2 increment\(s\): it holds 2 entries \(3 changes replayed, 1 of them deletes\)/,
    );

    // A gap is refused, naming the files and the sequence numbers; nothing written.
    const gap = await run(
      "restore",
      join(dir, "full.fsbackup"),
      join(dir, "inc2.fsbackup"),
      "--store",
      "plain",
    );
    assert.equal(gap.code, 1, gap.stderr);
    assert.match(
      gap.stderr,
      /a gap: .*full\.fsbackup ends at change 2, and .*inc2\.fsbackup holds the changes after 4/,
    );
    assert.deepEqual(await dump(run, "plain"), []);

    // Point in time: the full backup and the live feed of "data" (found from the header).
    const pit = JSON.parse(
      await ok(
        run,
        "restore",
        "full.fsbackup",
        "--at",
        new Date(atMid).toISOString(),
        "--into",
        "pit",
        "--json",
      ),
    );
    assert.equal(pit.feedSeq, 4, JSON.stringify(pit));
    assert.deepEqual(await dump(run, "pit"), stateMid);
    // --at takes what state get --at takes: '#4' is --at-seq 4.
    await ok(run, "restore", "full.fsbackup", "--at", "#4", "--into", "plain");
    assert.deepEqual(await dump(run, "plain"), stateMid);
    const both = await run(
      "restore",
      "full.fsbackup",
      "--at",
      "#4",
      "--at-seq",
      "4",
      "--into",
      "x",
    );
    assert.equal(both.code, 2, both.stderr);
    // Never over a store that holds data, even with --force.
    const over = await run("restore", "full.fsbackup", "--at-seq", "4", "--into", "pit");
    assert.equal(over.code, 1);
    assert.match(over.stderr, /new, empty store only/);
    const forced = await run("restore", "full.fsbackup", "--at", "1m", "--into", "pit", "--force");
    assert.equal(forced.code, 2);
    assert.match(forced.stderr, /--force is refused/);
    const same = await run("restore", "full.fsbackup", "--at-seq", "3", "--into", "data");
    assert.notEqual(same.code, 0);
    assert.match(same.stderr, /restore into a new, empty store/);
  });
});

Deno.test("restore refuses an increment given alone (it holds only the changes after its full backup) and a time in the future, writing nothing", async () => {
  await withProject(async (run) => {
    await ok(run, "state", "set", "--store", "data", "kept", "1"); // only in the full backup
    await ok(run, "backup", "--store", "data", "--out", "full.fsbackup");
    await ok(run, "state", "set", "--store", "data", "changed", "2");
    await ok(run, "backup", "--store", "data", "--since", "full.fsbackup", "--out", "inc.fsbackup");
    const future = await run(
      "restore",
      "full.fsbackup",
      "--at",
      "2099-01-01T00:00:00Z",
      "--into",
      "pit",
    );
    assert.equal(future.code, 2, future.stderr);
    assert.match(
      future.stderr,
      /--at 2099-01-01T00:00:00Z is in the future \(now is .*\); give a past time/,
    );
    for (const extra of [[], ["--dry-run"]]) {
      const alone = await run("restore", "inc.fsbackup", "--store", "pit", ...extra);
      assert.equal(alone.code, 1, alone.stderr);
      assert.match(
        alone.stderr,
        /inc\.fsbackup is an increment \(changes 1 < seq <= 2\); give the full backup first, then its increments in order/,
      );
    }
    assert.deepEqual(await dump(run, "pit"), [], "nothing was restored");
  });
});

Deno.test("backup --since a damaged backup says the increment could not be taken, not 'cannot restore'", async () => {
  await withProject(async (run, dir) => {
    await ok(run, "state", "set", "--store", "data", "a", "1");
    await ok(run, "backup", "--store", "data", "--out", "full.fsbackup");
    await Deno.writeFile(join(dir, "full.fsbackup"), new Uint8Array()); // emptied
    await Deno.remove(join(dir, "full.fsbackup.sha256")).catch(() => {});
    for (const extra of [[], ["--dry-run"]]) {
      const out = await run("backup", "--store", "data", "--since", "full.fsbackup", ...extra);
      assert.notEqual(out.code, 0, out.stderr);
      assert.match(
        out.stderr,
        /^error: Cannot back up the changes of store "data" since .*full\.fsbackup: the backup it follows: /m,
      );
      assert.doesNotMatch(out.stderr, /Cannot restore/);
    }
  });
});

Deno.test("restore --at-seq past the end of the live store's feed is refused, as a time in the future is, writing nothing", async () => {
  await withProject(async (run) => {
    await ok(run, "state", "set", "--store", "data", "a", "1"); // change 1
    await ok(run, "backup", "--store", "data", "--out", "full.fsbackup");
    await ok(run, "state", "set", "--store", "data", "a", "2"); // change 2, only in the feed
    for (const point of [["--at-seq", "99"], ["--at", "#3"]]) {
      const past = await run("restore", "full.fsbackup", ...point, "--into", "pit");
      assert.equal(past.code, 1, past.stdout + past.stderr);
      assert.match(
        past.stderr,
        new RegExp(
          `change ${
            point[1].replace("#", "")
          } has not been made yet: the feed of store "data" ends at change 2; give a point up to it, or leave --at out for the latest state`,
        ),
      );
      assert.deepEqual(await dump(run, "pit"), [], "nothing was restored");
    }
    // The feed's last change itself is a point in time like any other.
    await ok(run, "restore", "full.fsbackup", "--at-seq", "2", "--into", "pit");
    assert.equal(await ok(run, "state", "get", "--store", "pit", "a"), "2\n");
  });
});
