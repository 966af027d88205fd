/**
 * End-to-end tests of backup retention through the `flowstate` CLI:
 * `backup --keep/--keep-for`, `backup prune`, the `backup` job's
 * `keep`/`keepFor` options in a config, and what a backup says it does not
 * cover. Each command runs as a subprocess in a temporary project.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, openStore } from "../mod.ts";
import { backupStore, backupStores } from "../jobs.ts";
import {
  cliArgv,
  cliCommand,
  cliOk,
  type ProjectCli,
  type Result,
  runCli,
  withCliProject,
} from "./_cli_sandbox.ts";
import { killQuietly, outputOf, waitUntil } from "./_deadline.ts";

const CONFIG = `
stores:
  main: { plugin: sqlite, path: data/main.db }
  data: { plugin: sqlite, path: data/data.db, changes: { keep: 30d } }
  scratch: { plugin: memory }
scopes: { global: main, flow: main, node: main }
`;

const withProject = (fn: (run: ProjectCli, dir: string) => Promise<void>) =>
  withCliProject(CONFIG, fn, { prefix: "flowstate-keepbak-" });
const ok = cliOk;

/** The names in a directory, sorted. */
async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

/** A backup of an empty store named `store`, taken at `at`, written to `path`. */
async function oldBackup(store: string, path: string, at: number): Promise<void> {
  await using s = await openStore({ plugin: "memory" }, { name: store });
  await s.set(["old"], at);
  await backupStore(s, path, { clock: { now: () => at } });
}

interface Pruned {
  removed: { store: string; file: string; name: string; kind: string; bytes: number }[];
  kept: { name: string; reason: string }[];
  skipped: { file: string; reason: string }[];
  failed: { file: string; error: string }[];
  bytes: number;
  dryRun: boolean;
}

Deno.test("backup --all --keep 2 keeps each store's 2 newest, never touches other files, and says what it deleted", async () => {
  await withProject(async (run, dir) => {
    const backups = join(dir, "home", "backups");
    await Deno.mkdir(backups, { recursive: true });
    // Files that are not the job's to delete: a note, a hand-named backup of main, a file named
    // like a backup of main that is not one, and scratch's backup under main's name pattern.
    await Deno.writeTextFile(join(backups, "notes.txt"), "mine");
    await Deno.writeTextFile(join(backups, "main-20200101T000000000Z.fsbackup"), "not a backup");
    await ok(run, "backup", "--store", "main", "--out", join(backups, "main-manual.fsbackup"));
    await oldBackup("scratch", join(backups, "main-20200102T000000000Z.fsbackup"), Date.UTC(2020));
    const foreign = await names(backups);

    const first = JSON.parse(await ok(run, "backup", "--all", "--keep", "2", "--json"));
    const firstFiles: string[] = first.files.map((f: { file: string }) => f.file);
    assert.deepEqual(first.pruned.removed, [], "nothing to prune yet");
    assert.deepEqual(
      first.pruned.skipped.map((s: { file: string }) => s.file),
      [join(backups, "main-20200101T000000000Z.fsbackup")],
      "named like a backup, not one: reported and left",
    );
    const second = JSON.parse(await ok(run, "backup", "--all", "--keep", "2", "--json"));
    // What deleting them frees: each file and its .sha256.
    const sizes: Record<string, number> = {};
    for (const { file } of second.files) {
      sizes[file] = (await Deno.stat(file)).size + (await Deno.stat(`${file}.sha256`)).size;
    }
    const third = await run("backup", "--all", "--keep", "2");
    assert.equal(third.code, 0, third.stderr);
    // The file named like a backup that is not one is said, not kept quietly.
    assert.match(
      third.stderr,
      /^warning: left alone: \S+main-20200101T000000000Z\.fsbackup is named like a backup but /m,
    );
    // The first run's backups are gone (each with its .sha256), said on stdout.
    for (const file of firstFiles) {
      assert.match(
        third.stdout,
        new RegExp(`deleted ${file.replaceAll(".", "\\.")} \\(full backup`),
      );
      await assert.rejects(() => Deno.stat(file), Deno.errors.NotFound);
      await assert.rejects(() => Deno.stat(`${file}.sha256`), Deno.errors.NotFound);
    }
    assert.match(
      third.stdout,
      /store "main": 1 backup deleted \([\d.]+ K?B freed\), 2 kept in \S+ \(and 1 not named by Flowstate, never pruned\)\n/,
    );
    assert.match(
      third.stdout,
      /store "data": 1 backup deleted \([\d.]+ K?B freed\), 2 kept in \S+\n/,
    );
    assert.match(third.stdout, /store "scratch": 1 backup deleted/);

    const fourth = JSON.parse(await ok(run, "backup", "--all", "--keep", "2", "--json"));
    const pruned = fourth.pruned as Pruned;
    assert.equal(pruned.removed.length, 3, "one per store");
    assert.deepEqual(fourth.warnings, []);
    // The backups just written are kept, and the one before them: 2 per store.
    const left = await names(backups);
    for (const store of ["main", "data", "scratch"]) {
      const own = left.filter((n) =>
        !foreign.includes(n) && new RegExp(`^${store}-\\d{8}T\\d{9}Z\\.fsbackup$`).test(n)
      );
      assert.equal(own.length, 2, `${store}: ${own}`);
      for (const f of fourth.files.filter((f: { store: string }) => f.store === store)) {
        assert.ok(left.includes(f.file.slice(backups.length + 1)), "the backup just written");
      }
    }
    for (const name of foreign) assert.ok(left.includes(name), `${name} left alone`);
    assert.deepEqual(
      pruned.kept.filter((k) => k.reason === "foreign").map((k) => k.name).sort(),
      ["main-20200102T000000000Z.fsbackup", "main-manual.fsbackup"],
    );
    // The second run's backups, and the bytes they took.
    assert.deepEqual(Object.fromEntries(pruned.removed.map((r) => [r.file, r.bytes])), sizes);
    assert.equal(pruned.bytes, Object.values(sizes).reduce((a, b) => a + b, 0));
  });
});

Deno.test("backup prune keeps a full backup and its increments together; a hand-named increment keeps its full backup", async () => {
  await withProject(async (run, dir) => {
    const backups = join(dir, "home", "backups");
    await ok(run, "state", "set", "--store", "data", "a", "1");
    const take = async (...args: string[]) =>
      JSON.parse(await ok(run, "backup", "--store", "data", ...args, "--json")).files[0]
        .file as string;
    const full1 = await take();
    const inc1 = await take("--since", full1);
    const inc2 = await take("--since", inc1);
    const full2 = await take();
    const handmade = await take("--since", full2, "--out", join(backups, "handmade.fsbackup"));
    const full3 = await take();
    assert.match(inc1, /data-\d{8}T\d{9}Z-inc\.fsbackup$/);

    // keep 3: full3, full2, inc2, and inc2 needs inc1 and full1: nothing goes.
    const dry = JSON.parse(
      await ok(run, "backup", "prune", "--store", "data", "--keep", "3", "--dry-run", "--json"),
    ) as Pruned;
    assert.deepEqual(dry.removed, []);
    const reasons = Object.fromEntries(dry.kept.map((k) => [k.name, k.reason]));
    const name = (f: string) => f.slice(backups.length + 1);
    assert.deepEqual(reasons, {
      [name(full3)]: "newest",
      [name(handmade)]: "foreign",
      [name(full2)]: "newest",
      [name(inc2)]: "newest",
      [name(inc1)]: "chain",
      [name(full1)]: "chain",
    });
    // keep 1: full3; full2 stays for the hand-named increment; full1's chain goes, increments first.
    const before = await names(backups);
    const plan = JSON.parse(
      await ok(run, "backup", "prune", "--store", "data", "--keep", "1", "--dry-run", "--json"),
    ) as Pruned;
    assert.deepEqual(plan.removed.map((r) => r.file), [inc2, inc1, full1]);
    assert.equal(plan.dryRun, true);
    assert.deepEqual(await names(backups), before, "a dry run deletes nothing");
    const done = await run("backup", "prune", "--store", "data", "--keep", "1");
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /deleted \S+-inc\.fsbackup \(increment of store "data"/);
    assert.match(done.stdout, /store "data": 3 backups deleted/);
    assert.deepEqual(
      await names(backups),
      [full2, full3, handmade].flatMap((f) => [name(f), `${name(f)}.sha256`]).sort(),
    );
    // What is left restores: the hand-named increment after its full backup.
    await ok(run, "restore", full2, handmade, "--store", "scratch");
  });
});

Deno.test("backup prune --dir <shared>: another project's backups and an older version's are left alone", async () => {
  await withProject(async (run, dir) => {
    const shared = join(dir, "shared");
    // Another project writing its store "main" into the same directory.
    const at = Date.UTC(2026, 0, 1);
    await using other = await openRuntime({
      home: join(dir, "other"),
      clock: { now: () => at },
      config: { stores: { main: { plugin: "memory" } } },
    });
    const [theirs] = (await backupStores(other, { all: true, out: shared })).files;
    // One an older version wrote (no project identity in its header).
    const legacy = join(shared, "main-20250101T000000000Z.fsbackup");
    await oldBackup("main", legacy, Date.UTC(2025, 0, 1));
    const take = async () =>
      JSON.parse(await ok(run, "backup", "--all", "--out", shared, "--json"))
        .files.find((f: { store: string }) => f.store === "main").file as string;
    const mine1 = await take();
    const mine2 = await take();
    const done = await run(
      "backup",
      "prune",
      "--store",
      "main",
      "--dir",
      shared,
      "--keep",
      "1",
      "--json",
    );
    assert.equal(done.code, 0, done.stderr);
    const pruned = JSON.parse(done.stdout) as Pruned;
    assert.deepEqual(pruned.removed.map((r) => r.file), [mine1]);
    assert.deepEqual(pruned.kept.map((k) => k.name), [mine2.slice(shared.length + 1)]);
    assert.deepEqual(pruned.skipped.map((s) => s.file), [legacy]);
    assert.match(done.stderr, /left alone: .*written by an older version, no project identity/);
    for (const f of [theirs.file, legacy, mine2]) await Deno.stat(f);
  });
});

Deno.test("backup prune --keep-for: by the time in the header; the newest backup always stays; bad values are refused", async () => {
  await withProject(async (run, dir) => {
    const backups = join(dir, "home", "backups");
    await Deno.mkdir(backups, { recursive: true });
    const jan = join(backups, "main-20250101T000000000Z.fsbackup");
    const feb = join(backups, "main-20250201T000000000Z.fsbackup");
    await oldBackup("main", jan, Date.UTC(2025, 0, 1));
    await oldBackup("main", feb, Date.UTC(2025, 1, 1));

    const dry = JSON.parse(
      await ok(run, "backup", "prune", "--keep-for", "30d", "--dry-run", "--json"),
    ) as Pruned;
    assert.deepEqual(dry.removed.map((r) => r.file), [jan]);
    assert.deepEqual(dry.kept.map((k) => [k.name, k.reason]), [[
      "main-20250201T000000000Z.fsbackup",
      "newest",
    ]]);
    assert.ok((await Deno.stat(jan)).isFile, "a dry run deletes nothing");
    const gone = JSON.parse(await ok(run, "backup", "prune", "--keep-for", "30d", "--json"));
    assert.deepEqual(gone.removed.map((r: { file: string }) => r.file), [jan]);
    // A new backup: February's is then older than 30 days and not the newest.
    await ok(run, "backup", "--store", "main", "--keep-for", "30d");
    await assert.rejects(() => Deno.stat(feb), Deno.errors.NotFound);

    for (
      const [args, message] of [
        [["--keep-for", "30"], /--keep-for 30 has no unit: add one, like --keep-for 30d/],
        [["--keep", "0"], /--keep must be an integer >= 1 \(got "0"\)/],
        [["--keep", "-1"], /--keep must be an integer >= 1|argument missing|unknown option/],
        [[], /say what to keep: --keep N .*--keep-for AGE/],
        [["--keep", "1", "--out", "x"], /--out is not an option of backup prune/],
      ] as const
    ) {
      const r = await run("backup", "prune", ...args);
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const r = await run("backup", "--keep-for", "7");
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /Cannot back up: --keep-for 7 has no unit/);
  });
});

Deno.test("jobs.backup.options keep: -1 and keepFor: 30 are refused at their place in flowstate.yaml (daemon, schedules ls, jobs run, backup, backup prune)", async () => {
  const config = (options: string) =>
    `${CONFIG}jobs:\n  backup:\n    schedule: "0 4 * * *"\n    options: { all: true, ${options} }\n`;
  for (
    const [options, expected] of [
      [
        "keep: -1, keepFor: 30d",
        "error: flowstate.yaml:10:27: jobs.backup.options.keep: must be a whole number of " +
        "backups, 1 or more (the newest backup of a store is always kept), got -1; leave keep " +
        "out to keep every backup",
      ],
      [
        "keep: 7, keepFor: 30",
        "error: flowstate.yaml:10:36: jobs.backup.options.keepFor: 30 is a number without a " +
        "unit, which the job would read as 30 milliseconds: write 30ms to keep that, or 30d, " +
        "30h, 30m or 30s if you meant another unit",
      ],
      [
        'keep: 1.5, keepFor: "30"',
        "error: flowstate.yaml:10:27: jobs.backup.options.keep: must be a whole number of " +
        "backups, 1 or more (the newest backup of a store is always kept), got 1.5; leave keep " +
        "out to keep every backup",
      ],
    ] as const
  ) {
    await withCliProject(config(options), async (run) => {
      for (
        const args of [["daemon"], ["jobs", "run", "backup"], ["backup"], ["backup", "prune"]]
      ) {
        const r = await run(...args);
        assert.equal(r.code, 2, `${args}: ${r.stderr}`);
        assert.equal(r.stderr.split("\n")[0], expected, `${options}: ${args.join(" ")}`);
      }
      // The listing shows the rest: the job is a row saying the same.
      const listed = await run("schedules", "ls");
      assert.equal(listed.code, 2, listed.stderr);
      // (After the line saying no store exists yet: nothing has run.)
      const said = `error: Cannot schedule job "backup": ${expected.slice("error: ".length)}`;
      assert.ok(listed.stderr.split("\n").some((l) => l.startsWith(said)), listed.stderr);
    });
  }
});

/** `flowstate …` in `dir` with `--deny-write=<path>` (a file whose deletion then fails). */
async function runDenying(dir: string, path: string, ...args: string[]): Promise<Result> {
  const [program, ...argv] = cliArgv(args);
  const at = argv.indexOf("--allow-write") + 1;
  const output = await new Deno.Command(program, {
    args: [...argv.slice(0, at), `--deny-write=${path}`, ...argv.slice(at)],
    cwd: dir,
    env: { FLOWSTATE_HOME: join(dir, "home"), NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return {
    code: output.code,
    stdout: text.decode(output.stdout),
    stderr: text.decode(output.stderr),
  };
}

Deno.test("a backup whose pruning fails still succeeds, is recorded succeeded, and says why", async () => {
  await withProject(async (run, dir) => {
    const backups = join(dir, "home", "backups");
    await Deno.mkdir(backups, { recursive: true });
    const old = join(backups, "main-20250101T000000000Z.fsbackup");
    await oldBackup("main", old, Date.UTC(2025, 0, 1));
    const r = await runDenying(dir, old, "backup", "--store", "main", "--keep", "1", "--json");
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.files.length, 1);
    assert.ok((await Deno.stat(result.files[0].file)).isFile, "the backup is written");
    assert.deepEqual(result.pruned.failed.map((f: { file: string }) => f.file), [old]);
    assert.match(
      result.warnings[0],
      /^Cannot delete old backup \S+main-20250101T000000000Z\.fsbackup: /,
    );
    assert.match(r.stderr, /warning: could not delete backup/);
    assert.ok((await Deno.stat(old)).isFile && (await Deno.stat(`${old}.sha256`)).isFile);
    const runs = JSON.parse(await ok(run, "runs", "ls", "--flow", "job:backup", "--json"));
    assert.deepEqual(runs.map((x: { id: string; status: string }) => [x.id, x.status]), [
      [result.runId, "succeeded"],
    ]);
    // By hand, the same failure is exit 1, naming the file.
    const prune = await runDenying(dir, old, "backup", "prune", "--keep", "1");
    assert.equal(prune.code, 1, prune.stderr);
    assert.match(prune.stderr, /error: Cannot delete \S+main-20250101T000000000Z\.fsbackup: /);
  });
});

Deno.test("backup --all says that the archived runs under <home>/archive are not in the backup", async () => {
  await withProject(async (run, dir) => {
    await ok(run, "backup", "--store", "scratch"); // a finished run to archive
    const none = JSON.parse(await ok(run, "backup", "--all", "--json"));
    assert.deepEqual(none.notCovered, [], "no archive yet: nothing to say");
    await ok(run, "jobs", "run", "archive", "--option", "olderThan=0");
    const archive = join(dir, "home", "archive");
    const files = (await names(archive)).length;
    assert.ok(files >= 2, "an archive file and its index");
    const text = await runCli(dir, ["backup", "--all"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      new RegExp(
        `not in the backup: ${archive} \\(${files} files, [\\d.]+ [KB]+\\): runs the archive job ` +
          `moved out of store "main" .*; copy that directory with your other file backups`,
      ),
    );
    const json = JSON.parse(await ok(run, "backup", "--store", "main", "--json"));
    assert.deepEqual(json.notCovered.map((n: { path: string }) => n.path), [archive]);
    // A store that is not where runs are recorded has nothing archived.
    const other = JSON.parse(await ok(run, "backup", "--store", "data", "--json"));
    assert.deepEqual(other.notCovered, []);
  });
});

Deno.test("backup prune stops between two files on SIGTERM: oldest first, each with its .sha256, the newest kept", async () => {
  await withProject(async (_run, dir) => {
    const backups = join(dir, "home", "backups");
    await Deno.mkdir(backups, { recursive: true });
    const files: string[] = [];
    for (let i = 0; i < 150; i++) {
      const at = Date.UTC(2025, 0, 1) + i * 3_600_000;
      const stamp = new Date(at).toISOString().replace(/[-:]/g, "").replace(".", "");
      files.push(join(backups, `main-${stamp}.fsbackup`));
      await oldBackup("main", files[i], at);
    }
    const child = cliCommand(dir, ["backup", "prune", "--keep", "1"]).spawn();
    let exited = false;
    child.status.then(() => (exited = true));
    // Once the first file is gone, the prune is under way: stop it.
    await waitUntil(
      "the prune to delete the oldest backup (or to exit)",
      async () => exited || !await Deno.stat(files[0]).then(() => true, () => false),
      { every: 5, onHang: () => killQuietly(child) },
    );
    child.kill("SIGTERM");
    const out = await outputOf(child);
    const stdout = out.stdout;
    const left = await names(backups);
    const kept = files.filter((f) => left.includes(f.slice(backups.length + 1)));
    // Whether the signal came before the end or not, what is left is the newest ones, whole.
    assert.ok(kept.length >= 1 && kept.at(-1) === files.at(-1), "the newest is kept");
    assert.deepEqual(kept, files.slice(files.length - kept.length), "deleted oldest first");
    assert.deepEqual(
      left,
      kept.flatMap((f) => [f.slice(backups.length + 1), `${f.slice(backups.length + 1)}.sha256`])
        .sort(),
      "no .sha256 left without its backup",
    );
    if (out.code === 143) {
      assert.match(stdout, /\(stopped before the end\)/);
    } else {
      assert.equal(out.code, 0, out.stderr);
      assert.equal(kept.length, 1);
    }
  });
});
