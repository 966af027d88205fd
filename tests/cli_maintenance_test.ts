/**
 * End-to-end tests of the maintenance commands of the `flowstate` CLI
 * (`backup`, `restore`, `migrate store`, `migrate data`), each run as a
 * subprocess in a temporary working directory with its own config.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  cliCommand,
  cliDump,
  cliOk,
  type ProjectCli,
  runCli,
  withCliProject,
} from "./_cli_sandbox.ts";
import { exitOf, hangGuard } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

const CONFIG = `
stores:
  main: { plugin: sqlite, path: data/main.db }
  copy: { plugin: jsonfile, path: data/copy.json }
  scratch: { plugin: memory, snapshot: data/scratch.snapshot.json }
scopes: { global: main, flow: main, node: main }
`;

const withProject = (fn: (run: ProjectCli, dir: string) => Promise<void>) =>
  withCliProject(CONFIG, fn, { prefix: "flowstate-maint-" });
const ok = cliOk;
const dump = cliDump;

Deno.test("flowstate backup + restore moves a sqlite store into jsonfile with identical content", async () => {
  await withProject(async (run, dir) => {
    await ok(run, "state", "set", "--store", "main", "flow/counter/count", "41");
    await ok(run, "state", "set", "--store", "main", "global/greeting", '"héllo 😀"');
    await ok(run, "state", "set", "--store", "main", '["a","b\\u0000c"]', '{"n":[1,2,{"x":null}]}');
    const backup = JSON.parse(
      await ok(run, "backup", "--store", "main", "--out", "main.fsbackup", "--json"),
    );
    assert.equal(backup.entries, 3);
    const restored = JSON.parse(
      await ok(run, "restore", join(dir, "main.fsbackup"), "--store", "copy", "--json"),
    );
    assert.equal(restored.restored, 3, JSON.stringify(restored));
    // The backup left its own run record out; "main" holds the records of both runs too.
    const user = (entries: { key: string[] }[]) => entries.filter((e) => e.key[0] !== "flowstate");
    assert.deepEqual(await dump(run, "copy"), user(await dump(run, "main")));
    // Each standalone command is recorded as a job run, as `jobs run` is.
    for (const [job, runId] of [["backup", backup.runId], ["restore", restored.runId]]) {
      const runs = JSON.parse(await ok(run, "runs", "ls", "--flow", `job:${job}`, "--json"));
      assert.deepEqual(runs.map((r: { id: string; status: string }) => [r.id, r.status]), [
        [runId, "succeeded"],
      ]);
    }
    // A second restore into the now non-empty store is refused without --force.
    const again = await run("restore", join(dir, "main.fsbackup"), "--store", "copy");
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /not empty|--force/);
  });
});

Deno.test("flowstate backup's progress ends at 100 %, though the backup leaves its own run record out", async () => {
  await withProject(async (run) => {
    await ok(run, "state", "set", "--store", "main", "global/greeting", '"hello"');
    const backup = await run("backup", "--store", "main", "--out", "main.fsbackup");
    assert.equal(backup.code, 0, backup.stderr);
    // Plain progress lines (stderr is no terminal): the last one of the copy is its end.
    const lines = backup.stderr.split("\n").filter((l) => l.startsWith("backup main "));
    assert.match(lines.at(-1) ?? "", /^backup main 100% (\d+)\/\1 /, backup.stderr);
  });
});

Deno.test("flowstate restore refuses a damaged backup and writes nothing", async () => {
  await withProject(async (run, dir) => {
    await ok(run, "state", "set", "--store", "main", "k", "1");
    await ok(run, "backup", "--store", "main", "--out", "good.fsbackup");
    const bytes = await Deno.readFile(join(dir, "good.fsbackup"));
    await Deno.writeFile(join(dir, "bad.fsbackup"), bytes.subarray(0, bytes.length - 9));
    const r = await run("restore", join(dir, "bad.fsbackup"), "--store", "scratch");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /bad\.fsbackup|damaged|truncated|checksum|gzip/i);
    assert.deepEqual(await dump(run, "scratch"), []);
  });
});

Deno.test("flowstate migrate store copies sqlite into memory, verified, source untouched", async () => {
  await withProject(async (run, dir) => {
    for (let i = 0; i < 25; i++) {
      await ok(
        run,
        "state",
        "set",
        "--store",
        "main",
        `item/${String(i).padStart(2, "0")}`,
        `${i}`,
      );
    }
    const before = await Deno.readFile(join(dir, "data/main.db"));
    const result = JSON.parse(
      await ok(
        run,
        "migrate",
        "store",
        "--from",
        "main",
        "--to",
        "scratch",
        "--batch",
        "7",
        "--json",
      ),
    );
    assert.equal(result.count, 25, JSON.stringify(result));
    assert.deepEqual(await dump(run, "scratch"), await dump(run, "main"));
    assert.deepEqual(await Deno.readFile(join(dir, "data/main.db")), before, "source unchanged");
    await ok(run, "state", "set", "--store", "scratch", "extra", "1");
    const refused = await run("migrate", "store", "--from", "main", "--to", "scratch");
    assert.notEqual(refused.code, 0, "a non-empty target that differs is refused");
  });
});

Deno.test("flowstate migrate store --resume after a finished move says there is nothing to do", async () => {
  await withProject(async (run) => {
    for (let i = 0; i < 5; i++) {
      await ok(run, "state", "set", "--store", "main", `item/${i}`, `${i}`);
    }
    await ok(run, "migrate", "store", "--from", "main", "--to", "scratch");
    // A script retrying the finished move is told it is done, not to wipe the target.
    const again = await run("migrate", "store", "--from", "main", "--to", "scratch", "--resume");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already moved: nothing to do/i);
    assert.match(again.stdout, /5 entries/);
    assert.doesNotMatch(again.stderr, /--force/);
    const json = JSON.parse(
      await ok(run, "migrate", "store", "--from", "main", "--to", "scratch", "--resume", "--json"),
    );
    assert.equal(json.alreadyMoved, true, JSON.stringify(json));
    assert.equal(json.copied, 0);
    assert.equal(json.count, 5);
    assert.deepEqual(await dump(run, "scratch"), await dump(run, "main"));
    // A target that differs is still refused, and --force is offered last, as the way to
    // throw its entries away.
    await ok(run, "state", "set", "--store", "scratch", "item/0", "99");
    const differs = await run("migrate", "store", "--from", "main", "--to", "scratch", "--resume");
    assert.equal(differs.code, 1, differs.stderr);
    assert.match(differs.stderr, /differs from "main"/);
    assert.match(differs.stderr, /\["item","0"\] has a different value/);
    assert.ok(
      differs.stderr.indexOf("--force") > differs.stderr.indexOf("another store"),
      differs.stderr,
    );
    assert.equal((await dump(run, "scratch")).find((e) => e.key[1] === "0")?.value, 99);
  });
});

Deno.test("flowstate migrate data applies and reverts migrations in order", async () => {
  await withProject(async (run, dir) => {
    await Deno.mkdir(join(dir, "migrations"));
    const mod = (n: number) =>
      `export async function up(ctx) { await ctx.store.set(["m", "${n}"], ${n}); }\n` +
      `export async function down(ctx) { await ctx.store.delete(["m", "${n}"]); }\n`;
    await Deno.writeTextFile(join(dir, "migrations/0001_first.js"), mod(1));
    await Deno.writeTextFile(join(dir, "migrations/0002_second.js"), mod(2));
    const pending = JSON.parse(await ok(run, "migrate", "data", "pending", "--json"));
    assert.deepEqual(
      pending.pending.map((p: { id: string } | string) => typeof p === "string" ? p : p.id),
      ["0001_first", "0002_second"],
    );
    await ok(run, "migrate", "data", "up");
    assert.deepEqual((await dump(run, "main")).filter((e) => e.key[0] === "m"), [
      { key: ["m", "1"], value: 1 },
      { key: ["m", "2"], value: 2 },
    ]);
    await ok(run, "migrate", "data", "down");
    assert.deepEqual((await dump(run, "main")).filter((e) => e.key[0] === "m"), [
      { key: ["m", "1"], value: 1 },
    ]);
  });
});

Deno.test("flowstate jobs: ls, run retention, run archive and read archived runs back", async () => {
  await withProject(async (run, dir) => {
    await Deno.copyFile(join(ROOT, "examples/counter.flow.yaml"), join(dir, "counter.flow.yaml"));
    for (let i = 0; i < 3; i++) await ok(run, "run", "counter.flow.yaml", "--quiet");

    const jobs = JSON.parse(await ok(run, "jobs", "ls", "--json")) as { name: string }[];
    const names = jobs.map((j) => j.name);
    assert.ok(names.includes("retention") && names.includes("gc"), names.join(", "));

    const bad = await run("jobs", "run", "retention", "--option", "maxRuns=-3");
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /retention/);
    assert.match(bad.stderr, /maxRuns/);
    const unknown = await run("jobs", "run", "retentoin");
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /did you mean "retention"/);

    const retention = JSON.parse(
      await ok(run, "jobs", "run", "retention", "--option", "maxRuns=1", "--json", "--quiet"),
    );
    assert.equal(retention.status, "succeeded", JSON.stringify(retention.error));
    assert.equal(retention.outputs.deleted, 2, JSON.stringify(retention.outputs));
    const left = JSON.parse(await ok(run, "runs", "ls", "--flow", "counter", "--json")) as {
      id: string;
    }[];
    assert.equal(left.length, 1);

    const archive = JSON.parse(
      await ok(run, "jobs", "run", "archive", "--option", "olderThan=0", "--json", "--quiet"),
    );
    assert.equal(archive.status, "succeeded", JSON.stringify(archive.error));
    assert.ok(archive.outputs.archived >= 1, JSON.stringify(archive.outputs));
    const live = JSON.parse(await ok(run, "runs", "ls", "--flow", "counter", "--json"));
    assert.equal(live.length, 0, "the counter run left the live store");
    const archived = JSON.parse(
      await ok(run, "runs", "ls", "--archived", "--flow", "counter", "--json"),
    ) as { id: string }[];
    assert.deepEqual(archived.map((r) => r.id), [left[0].id]);
    const shown = JSON.parse(await ok(run, "runs", "show", left[0].id, "--json"));
    assert.equal(shown.run.id, left[0].id);
    assert.equal(shown.run.status, "succeeded");
  });
});

Deno.test("flowstate jobs run: SIGTERM cancels a running job, records it cancelled and exits 143", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-maint-signal-" });
  try {
    const mod = new URL("../jobs.ts", import.meta.url).href;
    await Deno.writeTextFile(
      join(dir, "slow_job.ts"),
      `import { defineJob } from ${JSON.stringify(mod)};
import { z } from "zod";
export default defineJob({
  name: "slow",
  description: "waits until it is cancelled",
  optionsSchema: z.strictObject({}),
  async run(ctx) {
    ctx.log("started");
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
    return { stopped: true };
  },
});
`,
    );
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: data/main.db }\njobs:\n  slow: { module: ./slow_job.ts }\n",
    );
    const command = (...args: string[]) => cliCommand(dir, args);
    const child = command("jobs", "run", "slow").spawn();
    const stdout = new Response(child.stdout).text();
    let stderr = "";
    using _hang = hangGuard(child, () => stderr);
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    while (!stderr.includes("started")) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += value;
    }
    child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += value;
    }
    assert.equal((await exitOf(child)).code, 143, stderr);
    assert.match(stderr, /Cancelling job "slow" \(SIGTERM/);
    await stdout;
    const listed = await command("runs", "ls", "--json").output();
    const runs = JSON.parse(new TextDecoder().decode(listed.stdout));
    assert.equal(runs.length, 1);
    assert.equal(runs[0].flowId, "job:slow");
    assert.equal(runs[0].status, "cancelled", "no run is left running");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backup --out naming a directory says so and how to write into it, writing nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-backup-dir-" });
  try {
    await Deno.mkdir(join(dir, "backups"));
    const result = await runCli(dir, ["backup", "--out", "backups"]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /Cannot back up store "default" to \S*backups: it is a directory; give a file in it \(\S*backups\/default\.fsbackup\), end it with "\/" \(\S*backups\/\) to write a backup named by Flowstate into it, or all \(--all\) to write one file per store into it/,
    );
    assert.deepEqual([...Deno.readDirSync(join(dir, "backups"))], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a job's required option left out is named as missing, a store's empty path as empty (not zod's words)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-job-options-" });
  try {
    const result = await runCli(dir, ["jobs", "run", "restore"]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^error: Cannot run job "restore": option "file": missing \(it is required\); option "store": missing \(it is required\)\. Expected options: /,
    );
    assert.doesNotMatch(result.stderr, /received undefined/);
    // An empty one (an unset ${env.X}, say) is named as empty.
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      'stores:\n  default: { plugin: sqlite, path: "" }\n',
    );
    const empty = await runCli(dir, ["state", "ls"]);
    assert.equal(empty.code, 2, empty.stderr);
    assert.match(empty.stderr, /stores\.default\.path: .*option "path": must not be empty\./);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
