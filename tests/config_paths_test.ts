/**
 * Every relative path in flowstate.yaml means the same folder wherever
 * Flowstate runs: the config file's. A project whose config is read with
 * `-c` from another working directory (systemd starts daemons in `/`) has
 * its home, its default store files and its jobs' files (the backup job's
 * `out`) beside the config, not in that directory; paths given as flags stay
 * the working directory's. Through the CLI, the daemon and the library.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, openStore, runJob } from "@flowstate/core";
import { cliCommand, cliOk, runCli, withCliProject } from "./_cli_sandbox.ts";
import { streamLines, within } from "./fixtures/daemon_process.ts";
import { exitOf } from "./_deadline.ts";

/** A project (`project/flowstate.yaml`) and a working directory elsewhere, removed afterwards. */
async function withProjectElsewhere(
  config: string,
  fn: (dirs: { project: string; elsewhere: string; file: string }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-paths-" });
  const project = join(dir, "project");
  const elsewhere = join(dir, "elsewhere");
  await Deno.mkdir(project);
  await Deno.mkdir(elsewhere);
  const file = join(project, "flowstate.yaml");
  await Deno.writeTextFile(file, config);
  try {
    await fn({ project, elsewhere, file });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `flowstate -c <file> …` in `cwd`, with no `$FLOWSTATE_HOME` (the config decides the home). */
function runFrom(cwd: string, file: string, ...args: string[]) {
  return runCli(cwd, ["-c", file, ...args], { env: { FLOWSTATE_HOME: "" } });
}

/** The backup files (not their .sha256) in `dir`, sorted; none when it does not exist. */
async function backupsIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".fsbackup")) names.push(e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return names.sort();
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

const CONFIG = `stores:
  main: { plugin: sqlite }
jobs:
  backup:
    schedule: "0 4 * * *"
    options: { all: true, out: nightly, keep: 1 }
`;

Deno.test("cli: -c from another folder: the home, default store files and jobs.backup.options.out are the config's folder's; flags the working directory's", async () => {
  await withProjectElsewhere(CONFIG, async ({ project, elsewhere, file }) => {
    const nightly = join(project, "nightly");
    const set = await runFrom(elsewhere, file, "state", "set", "k", '"v"');
    assert.equal(set.code, 0, set.stderr);
    // The default home (and the store without a path in it) is beside the config.
    assert.ok(await exists(join(project, ".flowstate", "main.db")));

    const backup = await runFrom(elsewhere, file, "backup", "--json");
    assert.equal(backup.code, 0, backup.stderr);
    const result = JSON.parse(backup.stdout);
    assert.equal(result.files.length, 1);
    assert.ok(result.files[0].file.startsWith(`${nightly}/main-`), result.files[0].file);
    assert.equal(result.policy.out.value, nightly, "the policy shows the path it wrote to");
    assert.equal((await backupsIn(nightly)).length, 1);

    // The job run by name reads the same options the same way.
    const job = await runFrom(elsewhere, file, "jobs", "run", "backup");
    assert.equal(job.code, 0, job.stderr);
    assert.equal((await backupsIn(nightly)).length, 1, "keep: 1 pruned the first one there");
    const prune = JSON.parse(
      (await runFrom(elsewhere, file, "backup", "prune", "--dry-run", "--json")).stdout,
    );
    assert.equal(prune.dir, nightly);

    // Listings show where the files go, absolute.
    const jobs = JSON.parse((await runFrom(elsewhere, file, "jobs", "ls", "--json")).stdout);
    assert.deepEqual(jobs.find((j: { name: string }) => j.name === "backup").paths, {
      out: nightly,
    });
    const table = await runFrom(elsewhere, file, "jobs", "ls");
    assert.match(
      table.stdout,
      new RegExp(`^job backup: out ${nightly} \\(jobs\\.backup\\.options\\.out, ${file}:6:`, "m"),
    );
    const schedules = JSON.parse(
      (await runFrom(elsewhere, file, "schedules", "ls", "--json")).stdout,
    );
    const row = schedules.find((r: { id: string }) => r.id === "job:backup");
    assert.deepEqual(row.paths, { out: nightly });
    const listed = await runFrom(elsewhere, file, "schedules", "ls");
    assert.match(listed.stdout, new RegExp(`^job backup: out ${nightly} `, "m"));

    // A path typed on the command line is the working directory's.
    const flagged = await runFrom(elsewhere, file, "backup", "--out", "mine", "--json");
    assert.equal(flagged.code, 0, flagged.stderr);
    assert.equal(JSON.parse(flagged.stdout).policy.out.value, join(elsewhere, "mine"));
    assert.equal((await backupsIn(join(elsewhere, "mine"))).length, 1);
    const option = await runFrom(elsewhere, file, "jobs", "run", "backup", "-o", "out=theirs");
    assert.equal(option.code, 0, option.stderr);
    assert.equal((await backupsIn(join(elsewhere, "theirs"))).length, 1);

    // Nothing else was written in the working directory.
    const written: string[] = [];
    for await (const e of Deno.readDir(elsewhere)) written.push(e.name);
    assert.deepEqual(written.sort(), ["mine", "theirs"]);
  });
});

Deno.test("cli: the first run after the upgrade whose home moved says where the old one is, and how to keep it", async () => {
  await withProjectElsewhere(CONFIG, async ({ project, elsewhere, file }) => {
    // What 0.5 left when run from here: its home in the working directory.
    // (A store, not an empty file: an empty store file is one that lost its content, refused.)
    await Deno.mkdir(join(elsewhere, ".flowstate"));
    await (await openStore({ plugin: "sqlite", path: join(elsewhere, ".flowstate", "main.db") }))
      .close();
    const first = await runFrom(elsewhere, file, "state", "set", "k", '"v"');
    assert.equal(first.code, 0, first.stderr);
    assert.equal(
      first.stderr.trim(),
      `warning: Flowstate's home is now ${join(project, ".flowstate")}, beside the config file ` +
        `${file}; ${join(elsewhere, ".flowstate")}, the home versions up to 0.5 used when run ` +
        `from this folder, holds files this run does not use (default stores, backups, ` +
        `archives): to keep using it, write "home: ${join(elsewhere, ".flowstate")}" in the ` +
        `config, or move it to ${join(project, ".flowstate")}`,
    );
    // Once the new home exists, nothing more is said.
    const second = await runFrom(elsewhere, file, "state", "get", "k");
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stderr, "");
    // `home:` in the config keeps the old place, and no warning.
    await Deno.writeTextFile(file, `home: ${join(elsewhere, ".flowstate")}\n${CONFIG}`);
    const kept = await runFrom(elsewhere, file, "stores", "--json");
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(kept.stderr, "");
  });
});

Deno.test("cli: a working folder whose .flowstate is a config-less run's (state.db, cache) is no former home of a config with stores of its own", async () => {
  await withProjectElsewhere(CONFIG, async ({ project, elsewhere, file }) => {
    // What `deno task run examples/counter.flow.yaml` leaves in a clone without a config.
    const counter = await runCli(elsewhere, ["state", "set", "flow/counter/count", "1"], {
      env: { FLOWSTATE_HOME: "" },
    });
    assert.equal(counter.code, 0, counter.stderr);
    await Deno.mkdir(join(elsewhere, ".flowstate", "cache"), { recursive: true });
    const first = await runFrom(elsewhere, file, "state", "set", "k", '"v"');
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stderr, "");
    // A config without stores uses the default store, state.db in its home: that one was its.
    await Deno.remove(join(project, ".flowstate"), { recursive: true });
    await Deno.writeTextFile(file, "flows: []\n");
    const defaults = await runFrom(elsewhere, file, "state", "get", "flow/counter/count");
    assert.equal(defaults.code, 1, defaults.stderr);
    assert.match(defaults.stderr, /^warning: Flowstate's home is now /);
  });
});

Deno.test("cli: a relative out of the config that 0.5 read in the working directory, where backups are: the first run says where they go now", async () => {
  await withProjectElsewhere(CONFIG, async ({ project, elsewhere, file }) => {
    // What 0.5 wrote when run from here: ./nightly of the working directory.
    await Deno.mkdir(join(elsewhere, "nightly"));
    const warning = `jobs.backup.options.out "nightly" is now ${join(project, "nightly")}, in ` +
      `the config file's folder; Flowstate up to 0.5 read it in the working directory, ` +
      `${join(elsewhere, "nightly")}, which exists and is no longer used: write out: ` +
      `${join(elsewhere, "nightly")} in the config to keep that place, or move it`;
    const job = await runFrom(elsewhere, file, "jobs", "run", "backup");
    assert.equal(job.code, 0, job.stderr);
    assert.ok(job.stderr.includes(`[backup] ${warning}\n`), job.stderr);
    // Once the new place exists, nothing more is said; backup and backup prune say it too.
    await Deno.remove(join(project, "nightly"), { recursive: true });
    const backup = await runFrom(elsewhere, file, "backup");
    assert.equal(backup.code, 0, backup.stderr);
    assert.ok(backup.stderr.includes(`warning: ${warning}\n`), backup.stderr);
    const again = await runFrom(elsewhere, file, "backup");
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /warning/);
    await Deno.remove(join(project, "nightly"), { recursive: true });
    const prune = await runFrom(elsewhere, file, "backup", "prune", "--dry-run");
    assert.equal(prune.code, 0, prune.stderr);
    assert.ok(prune.stderr.includes(`warning: ${warning}\n`), prune.stderr);
  });
});

Deno.test("cli: backup --store X under all: true, out: DIR writes into DIR, where the config's keep prunes", async () => {
  const config = `stores:
  main: { plugin: sqlite, path: main.db }
  other: { plugin: sqlite, path: other.db }
scopes: { global: main }
jobs:
  backup:
    options: { all: true, out: nightly, keep: 1 }
`;
  await withCliProject(config, async (run, dir) => {
    const nightly = join(dir, "nightly");
    await cliOk(run, "backup");
    assert.deepEqual((await backupsIn(nightly)).map((n) => n.split("-")[0]), ["main", "other"]);
    const one = JSON.parse(await cliOk(run, "backup", "--store", "other", "--json"));
    assert.ok(one.files[0].file.startsWith(`${nightly}/other-`), one.files[0].file);
    assert.deepEqual(one.notes, undefined);
    assert.equal(one.pruned.removed.length, 1, "the older backup of other in DIR");
    assert.deepEqual((await backupsIn(nightly)).map((n) => n.split("-")[0]), ["main", "other"]);
    assert.deepEqual(await backupsIn(join(dir, "home", "backups")), []);
  });
});

Deno.test("cli: backup --no-config-options backs up with the flags only; backup prune --no-config-options needs its own policy", async () => {
  await withCliProject(CONFIG, async (run, dir) => {
    const home = join(dir, "home");
    const backup = JSON.parse(await cliOk(run, "backup", "--no-config-options", "--json"));
    // Not all: true, not out, not keep: the global scope's store, into <home>/backups.
    assert.deepEqual(backup.files.map((f: { store: string }) => f.store), ["main"]);
    assert.ok(backup.files[0].file.startsWith(join(home, "backups", "main-")));
    assert.equal(backup.pruned, null);
    assert.deepEqual(backup.policy, {});
    assert.deepEqual(backup.notes, ["jobs.backup.options not used (--no-config-options)"]);
    const said = await run("backup", "--no-config-options");
    assert.match(
      said.stdout,
      /^policy: the job's defaults; jobs\.backup\.options not used \(--no-config-options\)$/m,
    );
    assert.deepEqual(await backupsIn(join(dir, "nightly")), []);

    const refused = await run("backup", "prune", "--no-config-options");
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /say what to keep: --keep N/);
    // Written before the subcommand too (backup parses it there).
    for (const args of [["prune", "--no-config-options"], ["--no-config-options", "prune"]]) {
      const pruned = JSON.parse(await cliOk(run, "backup", ...args, "--keep", "1", "--json"));
      assert.equal(pruned.dir, join(home, "backups"));
      assert.deepEqual(pruned.stores, ["main"]);
    }
  });
});

Deno.test({
  name:
    "daemon: -c from another folder, a scheduled backup with a relative out writes beside the config",
  sanitizeResources: false,
  async fn() {
    const config = CONFIG.replace(`"0 4 * * *"`, `"* * * * * *"`) +
      "  retention: { enabled: false }\n  gc: { enabled: false }\n";
    await withProjectElsewhere(config, async ({ project, elsewhere, file }) => {
      const child = cliCommand(elsewhere, ["-c", file, "daemon", "--grace", "1s"], {
        env: { FLOWSTATE_HOME: "" },
      }).spawn();
      const out = streamLines(child.stdout);
      const err = streamLines(child.stderr);
      try {
        // The start says where the scheduled job writes.
        await within(out.next(new RegExp(`^ {4}out ${project}/nightly$`)), "the start");
        await within(out.next(/ job:backup succeeded /), "a scheduled backup");
      } finally {
        child.kill("SIGTERM");
        await exitOf(child);
        await Promise.all([out.done, err.done]);
      }
      assert.match(
        err.lines.join("\n"),
        new RegExp(`backed up store "main": \\d+ entries to ${project}/nightly/main-`),
      );
      assert.ok((await backupsIn(join(project, "nightly"))).length >= 1);
      assert.ok(await exists(join(project, ".flowstate", "main.db")));
      const written: string[] = [];
      for await (const e of Deno.readDir(elsewhere)) written.push(e.name);
      assert.deepEqual(written, [], "nothing in the daemon's working directory");
    });
  },
});

Deno.test("library: openRuntime with a config file from another cwd: home beside it, runJob's configOptions paths its folder's", async () => {
  await withProjectElsewhere(CONFIG, async ({ project, elsewhere, file }) => {
    await using rt = await openRuntime({ config: file, cwd: elsewhere, env: {} });
    assert.equal(rt.home, join(project, ".flowstate"));
    assert.equal(rt.config.baseDir, project);
    await (await rt.store("main")).set(["k"], 1);
    const run = await runJob(rt, "backup", { configOptions: { ...rt.config.jobs.backup.options } });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    const files = (run.outputs as { files: { file: string }[] }).files;
    assert.ok(files[0].file.startsWith(join(project, "nightly", "main-")), files[0].file);
    assert.equal((await backupsIn(join(project, "nightly"))).length, 1);
  });
});
