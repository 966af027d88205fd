/**
 * `flowstate backup` and `flowstate backup prune` follow the backup job's
 * options in flowstate.yaml (`jobs.backup.options`, what the daemon's backup
 * runs with) for every flag left out, a flag overrides them, and both say
 * which policy applied and where it came from. Through the CLI.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";

const CONFIG = `stores:
  main: { plugin: sqlite, path: data/main.db }
  scratch: { plugin: memory }
scopes: { global: main, flow: main, node: main }
jobs:
  backup:
    schedule: "0 4 * * *"
    options: { all: true, out: ./nightly, keep: 1 }
`;

/** The backup files (not their .sha256) in `dir`, sorted. */
async function backupsIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".fsbackup")) names.push(entry.name);
  }
  return names.sort();
}

interface Policy {
  [option: string]: { value: unknown; from: string; at?: string };
}

Deno.test("backup without flags backs up and prunes as jobs.backup.options says (all, out, keep), says so; a flag overrides", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    const nightly = join(dir, "nightly");
    const first = JSON.parse(await cliOk(run, "backup", "--json"));
    // all: true and out: ./nightly from the config: one file a store, in ./nightly.
    assert.deepEqual(
      first.files.map((
        f: { store: string; file: string },
      ) => [f.store, f.file.startsWith(nightly)]),
      [["main", true], ["scratch", true]],
    );
    const policy = first.policy as Policy;
    assert.deepEqual(policy.keep, {
      value: 1,
      from: "jobs.backup.options",
      at: "flowstate.yaml:8:43",
    });
    assert.deepEqual(policy.all, {
      value: true,
      from: "jobs.backup.options",
      at: "flowstate.yaml:8:16",
    });
    assert.equal(policy.out.at, "flowstate.yaml:8:27");

    // keep: 1 from the config: the second backup deletes the first, and says which policy did.
    const second = await run("backup");
    assert.equal(second.code, 0, second.stderr);
    assert.match(
      second.stdout,
      /^policy: all \(jobs\.backup\.options, flowstate\.yaml:8:16\), out \/\S+\/nightly \(jobs\.backup\.options, flowstate\.yaml:8:27\), keep 1 \(jobs\.backup\.options, flowstate\.yaml:8:43\); a flag overrides jobs\.backup\.options$/m,
    );
    for (const f of first.files as { file: string }[]) {
      assert.match(second.stdout, new RegExp(`deleted ${f.file.replaceAll(".", "\\.")} `));
      await assert.rejects(() => Deno.stat(f.file), Deno.errors.NotFound);
    }
    assert.equal((await backupsIn(nightly)).length, 2, "one a store");

    // --keep overrides the config's keep (and keepFor): nothing deleted with --keep 3.
    const kept = JSON.parse(await cliOk(run, "backup", "--keep", "3", "--json"));
    assert.deepEqual(kept.policy.keep, { value: 3, from: "--keep" });
    assert.deepEqual(kept.pruned.removed, []);
    assert.equal((await backupsIn(nightly)).length, 4);

    // --store main overrides all: true; the backup still goes into the config's out (the
    // directory of all the stores' backups, where its keep prunes), and the output says so.
    const one = await run("backup", "--store", "main");
    assert.equal(one.code, 0, one.stderr);
    assert.match(
      one.stdout,
      new RegExp(
        `^policy: store main \\(--store\\), out ${nightly}/ \\(jobs\\.backup\\.options, ` +
          `flowstate\\.yaml:8:27\\), keep 1 \\(jobs\\.backup\\.options, flowstate\\.yaml:8:43\\); ` +
          `a flag overrides jobs\\.backup\\.options$`,
        "m",
      ),
    );
    assert.match(
      one.stdout,
      new RegExp(`^main: \\d+ entries → ${nightly}/main-\\S+\\.fsbackup `, "m"),
    );
    // keep: 1 pruned main's older backups there; scratch's two stay.
    const left = await backupsIn(nightly);
    assert.deepEqual(left.map((n) => n.split("-")[0]), ["main", "scratch", "scratch"]);
    await assert.rejects(() => Deno.stat(join(dir, "home", "backups")), Deno.errors.NotFound);
  });
});

Deno.test("backup prune without --keep/--keep-for prunes by jobs.backup.options, in the directory it writes to, and says so", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    const nightly = join(dir, "nightly");
    // Three backups of each store, none pruned (--keep 5 overrides keep: 1).
    for (let i = 0; i < 3; i++) await cliOk(run, "backup", "--keep", "5");
    assert.equal((await backupsIn(nightly)).length, 6);

    const dry = await run("backup", "prune", "--dry-run");
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      /^policy: all \(jobs\.backup\.options, flowstate\.yaml:8:16\), keep 1 \(jobs\.backup\.options, flowstate\.yaml:8:43\), dir \S+nightly \(jobs\.backup\.options, flowstate\.yaml:8:27\); a flag overrides jobs\.backup\.options$/m,
    );
    assert.match(dry.stdout, /store "main": 2 backups would be deleted .* kept in \S+nightly$/m);
    assert.equal((await backupsIn(nightly)).length, 6, "a dry run deletes nothing");

    // Flags override: --keep 2 --store scratch prunes scratch's down to 2, main's stay.
    const flagged = JSON.parse(
      await cliOk(run, "backup", "prune", "--keep", "2", "--store", "scratch", "--json"),
    );
    assert.deepEqual(flagged.stores, ["scratch"]);
    assert.equal(flagged.dir, nightly);
    assert.deepEqual(flagged.policy.keep, { value: 2, from: "--keep" });
    assert.equal(flagged.removed.length, 1);

    const pruned = JSON.parse(await cliOk(run, "backup", "prune", "--json"));
    assert.deepEqual(pruned.stores, ["main", "scratch"]);
    assert.deepEqual(pruned.policy.keep, {
      value: 1,
      from: "jobs.backup.options",
      at: "flowstate.yaml:8:43",
    });
    const left = await backupsIn(nightly);
    assert.deepEqual(left.map((n) => n.split("-")[0]), ["main", "scratch"], "the newest of each");
  });
});

Deno.test("backup prune with no policy anywhere says how to give one (flags or the config), exit 2", async () => {
  await withCliProject(CONFIG.replace(", keep: 1", ""), async (run) => {
    const r = await run("backup", "prune");
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /say what to keep: --keep N .*--keep-for AGE .*or give the backup job a policy in the config \(jobs\.backup\.options: \{ keep: 7, keepFor: 30d \}\)/,
    );
  });
});
