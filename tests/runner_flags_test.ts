/**
 * The `flowstate` task's own flags (issue 11): writes only under `.flowstate`,
 * the host name only of the system information, no `--allow-run`. Everything
 * a default project does works with exactly those flags, and a write the
 * config asks for elsewhere fails naming the flag to add.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };
import { streamLines } from "./fixtures/daemon_process.ts";
import { initProject } from "../src/cli/init.ts";
import { taskCommand, taskFlags } from "./_task_flags.ts";
import { exitOf, outputOf } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

function flowstateCommand(dir: string, ...args: string[]): Deno.Command {
  return taskCommand(dir, join(ROOT, "cli.ts"), args);
}

async function flowstate(dir: string, ...args: string[]) {
  const { code, stdout, stderr } = await outputOf(flowstateCommand(dir, ...args));
  return { code, stdout, stderr };
}

Deno.test("the flowstate task's flags grant no --allow-run, write only .flowstate and sys only hostname", () => {
  const flags = taskFlags();
  assert.ok(!flags.some((f) => f.startsWith("--allow-run")), flags.join(" "));
  assert.ok(!flags.includes("-A") && !flags.includes("--allow-all"));
  assert.ok(flags.includes("--allow-write=.flowstate"), flags.join(" "));
  assert.ok(flags.includes("--allow-sys=hostname"), flags.join(" "));
  assert.equal(denoJson.tasks.run, denoJson.tasks.flowstate + " run");
});

Deno.test("the tasks never prompt: a missing permission fails instead of asking on the operator's terminal", () => {
  // A node's Deno.permissions.request() (or anything reaching Deno's prompt) would otherwise ask
  // the operator, not naming the node, and answering y would grant it.
  assert.ok(taskFlags().includes("--no-prompt"), taskFlags().join(" "));
});

Deno.test("the tasks keep compiled functions in the code cache (cold start)", () => {
  // Without it, every start compiles again each function the run calls (BENCHMARKS.md,
  // coldstart3). The next test runs a default project with it, custom node included.
  assert.ok(taskFlags().includes("--v8-flags=--no-lazy"), taskFlags().join(" "));
  // Not --unstable-lazy-dynamic-imports: a sandboxed node's Worker could not load its module.
  assert.ok(!taskFlags().includes("--unstable-lazy-dynamic-imports"), taskFlags().join(" "));
});

Deno.test("the consumer tasks and deno install line of docs/project.md carry the task's flags", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "docs", "project.md"));
  const flags = taskFlags().join(" ");
  const lines = readme.split("\n").filter((l) =>
    /("(run|flowstate)": "deno run|deno install) .*jsr:@flowstate\/core/.test(l)
  );
  assert.ok(lines.length >= 3, `docs/project.md lines running the CLI from JSR: ${lines.length}`);
  for (const line of lines) assert.ok(line.includes(flags), `docs/project.md: ${line.trim()}`);
});

Deno.test("the starter deno.json and deno install line of docs/project.md turn on the unstable features init writes", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "docs", "project.md"));
  const own = (denoJson as { unstable?: string[] }).unstable ?? [];
  // no-legacy-abort: serve's ?wait=true watches request.signal without Deno.serve's warning.
  assert.ok(own.includes("no-legacy-abort"), JSON.stringify(own));
  const dir = await Deno.makeTempDir({ prefix: "flowstate-flags-" });
  let unstable: string[];
  try {
    await initProject(dir);
    unstable = JSON.parse(await Deno.readTextFile(join(dir, "deno.json"))).unstable;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // worker-options: custom nodes' Workers, for every deno run/test of the project.
  assert.deepEqual(unstable, [...own, "worker-options"]);
  const block = /The tasks it writes[^`]*```json\n([^`]*)```/.exec(readme);
  assert.ok(block, "docs/project.md shows the starter's deno.json");
  assert.deepEqual(JSON.parse(block[1]).unstable, unstable);
  const install = readme.split("\n").find((l) => l.startsWith("deno install --global"));
  assert.ok(install, "the deno install line of docs/project.md");
  for (const feature of unstable) assert.ok(install.includes(`--unstable-${feature}`), install);
});

Deno.test("a default project runs, records, backs up and runs its daemon with exactly the task's flags", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-flags-" });
  try {
    await Deno.copyFile(
      join(ROOT, "examples", "counter.flow.yaml"),
      join(dir, "counter.flow.yaml"),
    );
    for (let i = 0; i < 2; i++) {
      const run = await flowstate(dir, "run", "counter.flow.yaml", "--json");
      assert.equal(run.code, 0, run.stderr);
      assert.equal(JSON.parse(run.stdout).status, "succeeded");
    }
    // A custom node runs in a Worker without any permission: it can still load its module.
    await Deno.mkdir(join(dir, "nodes"));
    await Deno.copyFile(
      join(ROOT, "examples", "nodes", "flaky.ts"),
      join(dir, "nodes", "flaky.ts"),
    );
    await Deno.writeTextFile(
      join(dir, "custom.flow.yaml"),
      "id: custom\nnodes:\n  - { id: once, type: ./nodes/flaky.ts, with: { failures: 0 } }\n",
    );
    const custom = await flowstate(dir, "run", "custom.flow.yaml", "--json");
    assert.equal(custom.code, 0, custom.stderr);
    assert.equal(JSON.parse(custom.stdout).nodes.once.output, 1);

    const state = await flowstate(dir, "state", "get", "count", "--flow", "counter");
    assert.equal(state.code, 0, state.stderr);
    assert.equal(state.stdout.trim(), "2");
    const backup = await flowstate(dir, "backup", "--store", "default", "--quiet");
    assert.equal(backup.code, 0, backup.stderr);
    const backups = [...Deno.readDirSync(join(dir, ".flowstate", "backups"))];
    assert.ok(backups.some((b) => b.name.endsWith(".fsbackup")), JSON.stringify(backups));
    const gc = await flowstate(dir, "jobs", "run", "gc", "--quiet");
    assert.equal(gc.code, 0, gc.stderr);

    // The daemon names itself by the host name (--allow-sys=hostname) in its leases.
    await Deno.writeTextFile(
      join(dir, "tick.flow.yaml"),
      'id: tick\nschedule: "* * * * * *"\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n',
    );
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "flows: [./tick.flow.yaml]\n");
    const daemon = flowstateCommand(dir, "daemon", "--json").spawn();
    const stdout = streamLines(daemon.stdout);
    const stderr = new Response(daemon.stderr).text();
    const end = JSON.parse(await stdout.next(/"type":"tick\.end"/));
    daemon.kill("SIGTERM");
    assert.equal((await exitOf(daemon)).code, 0, await stderr);
    await stdout.done;
    assert.equal(end.status, "succeeded");
    const start = JSON.parse(stdout.lines[0]);
    assert.equal(start.type, "start");
    assert.ok(String(start.runnerId).startsWith(`${Deno.hostname()}:`), stdout.lines[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a store the task's flags do not cover fails naming the flag to add, writing nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-flags-" });
  const outside = await Deno.makeTempDir({ prefix: "flowstate-outside-" });
  try {
    await Deno.copyFile(
      join(ROOT, "examples", "counter.flow.yaml"),
      join(dir, "counter.flow.yaml"),
    );
    const db = join(outside, "data", "state.db");
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      `stores:\n  default: { plugin: sqlite, path: ${JSON.stringify(db)} }\n`,
    );
    const run = await flowstate(dir, "run", "counter.flow.yaml");
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^error: flowstate\.yaml:2:3: stores\.default: Cannot open store "default" \(plugin "sqlite"\): Requires write access to /m,
    );
    assert.ok(
      run.stderr.includes(`e.g. --allow-write=.flowstate,${join(outside, "data")}`),
      run.stderr,
    );
    assert.doesNotMatch(run.stderr, /--debug/);
    assert.deepEqual([...Deno.readDirSync(outside)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("a backup out of the task's --allow-write fails naming the flag to add (backup and jobs run backup)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-flags-" });
  const outside = await Deno.makeTempDir({ prefix: "flowstate-outside-" });
  try {
    assert.equal((await flowstate(dir, "state", "set", "a", "1")).code, 0);
    const file = join(outside, "b", "x.fsbackup");
    for (
      const args of [
        ["backup", "--store", "default", "--out", file],
        ["jobs", "run", "backup", "--option", `out=${file}`],
      ]
    ) {
      const out = await flowstate(dir, ...args);
      assert.equal(out.code, 1, args.join(" "));
      // `jobs run` prints its summary (the error among it) on stdout, the hint on stderr.
      assert.match(out.stdout + out.stderr, /Requires write access to /, args.join(" "));
      assert.ok(
        out.stderr.includes(
          `hint: Flowstate was started without --allow-write for ${
            join(outside, "b")
          }; add it to the flags`,
        ),
        `${args.join(" ")}: ${out.stderr}`,
      );
    }
    assert.deepEqual([...Deno.readDirSync(outside)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("a command started without read access to the CLI's own modules says what to grant (a plain run needs none)", async () => {
  // main.ts imports the command definitions by a computed specifier (so a cold start does not
  // read them), which Deno permission-checks: read narrowed to the project refuses it.
  const dir = await Deno.makeTempDir({ prefix: "flowstate-flags-" });
  const root = ROOT.replace(/\/$/, "");
  const withRead = (read: string, ...args: string[]) => {
    const flags = taskFlags().map((f) => f === "--allow-read" ? `--allow-read=${read}` : f);
    return outputOf(
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "--config",
          join(ROOT, "deno.json"),
          ...flags,
          join(ROOT, "cli.ts"),
          ...args,
        ],
        cwd: dir,
        env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }),
    );
  };
  try {
    await Deno.writeTextFile(
      join(dir, "one.flow.yaml"),
      "id: one\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    const run = await withRead(dir, "run", "one.flow.yaml", "--json");
    assert.equal(run.code, 0, run.stderr);
    const refused = await withRead(dir, "flows", "ls");
    assert.equal(refused.code, 1, refused.stderr);
    assert.ok(
      refused.stderr.includes(
        `error: Flowstate could not load its command definitions (${
          join(root, "src", "cli", "program.ts")
        }): ` +
          `it reads its own modules from ${root}, and was started without read access to them; ` +
          `add --allow-read=${root} (or --allow-read) to the command or task that runs flowstate`,
      ),
      refused.stderr,
    );
    const granted = await withRead(`${dir},${root}`, "flows", "ls");
    assert.equal(granted.code, 0, granted.stderr);
    assert.match(granted.stdout, /\bone\b/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
