/**
 * Error messages a new user hits on the command line: a syntax error in a
 * node, plugin or job module keeps its place.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliCommand, withSandbox } from "./_cli_sandbox.ts";
import { outputOf } from "./_deadline.ts";
import { FlowValidationError, openRuntime } from "../mod.ts";
import denoJson from "../deno.json" with { type: "json" };

const SYNTAX_ERROR = "export default {\n  x: 1 + ,\n};\n";

Deno.test("a syntax error in a node, plugin or job module is reported at its file:line:column with its source line", async () => {
  await withSandbox(async ({ dir, run }) => {
    for (const folder of ["flows", "nodes", "plugins", "jobs"]) await Deno.mkdir(join(dir, folder));
    for (const folder of ["nodes", "plugins", "jobs"]) {
      await Deno.writeTextFile(join(dir, folder, "syn.ts"), SYNTAX_ERROR);
    }
    // A module that is found, whose own import is not: located at the import.
    await Deno.writeTextFile(
      join(dir, "nodes", "graph.ts"),
      'import "./nope.ts";\nexport default 1;\n',
    );
    await Deno.writeTextFile(
      join(dir, "flows", "t-syn.flow.yaml"),
      "id: t-syn\nnodes:\n  - id: a\n    type: ../nodes/syn.ts\n  - id: b\n    type: ../nodes/graph.ts\n",
    );
    const node = await run("validate", "flows/t-syn.flow.yaml");
    assert.equal(node.code, 2, node.stderr);
    assert.deepEqual(node.stderr.trim().split("\n"), [
      "error: flows/t-syn.flow.yaml:4:11: nodes[0].type: cannot load node module ../nodes/syn.ts: SyntaxError: Expression expected at nodes/syn.ts:2:10: `x: 1 + ,`",
      `error: flows/t-syn.flow.yaml:6:11: nodes[1].type: cannot load node module ../nodes/graph.ts: Module not found "file://${
        join(dir, "nodes", "nope.ts")
      }" at nodes/graph.ts:1:8`,
    ]);

    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default:\n    plugin: ./plugins/syn.ts\n",
    );
    const plugin = await run("stores", "--debug");
    assert.equal(plugin.code, 2, plugin.stderr);
    assert.match(
      plugin.stderr,
      /^error: store "default": flowstate\.yaml:3:5: stores\.default\.plugin: Cannot load plugin "\.\/plugins\/syn\.ts" for store "default": SyntaxError: Expression expected at plugins\/syn\.ts:2:10: `x: 1 \+ ,`$/m,
    );
    // The module was found: no advice to check its path.
    assert.doesNotMatch(plugin.stderr, /Check the path/);

    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "jobs:\n  syn: { module: ./jobs/syn.ts }\n",
    );
    const job = await run("jobs", "run", "syn");
    assert.equal(job.code, 2, job.stderr);
    assert.equal(
      job.stderr.trim(),
      'error: flowstate.yaml:2:10: jobs.syn.module: Cannot load job "./jobs/syn.ts": SyntaxError: Expression expected at jobs/syn.ts:2:10: `x: 1 + ,`',
    );
  });
});

Deno.test("a plugin module that is not there still says to check the path", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default:\n    plugin: ./plugins/nope.ts\n",
    );
    const result = await run("stores");
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /Module not found "file:\/\/[^"]+\/plugins\/nope\.ts"\. Check the path or specifier \(resolved to file:/,
    );
  });
});

Deno.test("flowstate run: a node that fails as its options are evaluated prints why, as it happens", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "t3.flow.yaml"),
      'id: t3\ninputs:\n  z: { type: number, default: 0 }\nnodes:\n  - id: b\n    type: log\n    with: { message: "${{ 10 / inputs.z }}" }\n',
    );
    const result = await run("run", "t3.flow.yaml");
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /^\[b\] failed after 1 attempt: t3\.flow\.yaml:7:30: nodes\[0\]\.with\.message: Cannot evaluate \$\{\{ 10 \/ inputs\.z \}\}: 10 \/ 0 is Infinity, which is not a finite number$/m,
    );
  });
});

Deno.test("init given a file (or a path through one) refuses it (exit 2) and writes nothing", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "notes.txt"), "mine\n");
    for (const target of ["notes.txt", "notes.txt/sub"]) {
      const result = await run("init", target);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr.trim(),
        "error: notes.txt is a file, not a folder: give init a folder (new or existing)",
      );
      assert.equal(result.stdout, "", "nothing claimed as kept or created");
    }
    assert.equal(await Deno.readTextFile(join(dir, "notes.txt")), "mine\n");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["notes.txt"]);
  });
});

Deno.test({
  name:
    "init into a place no folder can be made (/proc): the path as given and why in words, not the system call (exit 1)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await withSandbox(async ({ dir, run }) => {
      // The CLI's usual permissions: Deno itself refuses /proc without --allow-all.
      const result = await run("init", "/proc/flowstate-init");
      assert.equal(result.code, 1, result.stderr);
      assert.equal(
        result.stderr.trim(),
        "error: cannot write the project into /proc/flowstate-init, nothing was written: this process may not write there; Deno allows it with --allow-all; give init a folder this process may write",
      );
      assert.equal(result.stdout, "");
      // With every permission, the file system refuses.
      const all = await outputOf(
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            fileURLToPath(new URL("../cli.ts", import.meta.url)),
            "init",
            "/proc/flowstate-init",
          ],
          cwd: dir,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
        }),
      );
      assert.equal(all.code, 1);
      assert.equal(
        all.stderr.trim(),
        "error: cannot write the project into /proc/flowstate-init, nothing was written: the file system does not let a folder be made there; give init a folder this process may write",
      );
    });
  },
});

Deno.test("init given an empty folder name (an unset shell variable) refuses it (exit 2) and writes nothing", async () => {
  await withSandbox(async ({ dir, run }) => {
    for (const target of ["", " "]) {
      const result = await run("init", target);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr.trim(),
        `error: init was given an empty folder name (${
          JSON.stringify(target)
        }): name the project's folder (init my-flows), or leave it out for the working directory`,
      );
      assert.equal(result.stdout, "");
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing written in the working directory");
  });
});

Deno.test("a damaged sqlite file says to run flowstate stores repair, as jsonfile's does, and that command sets it aside", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: state.db }\n",
    );
    const set = await run("state", "set", "a", "1");
    assert.equal(set.code, 0, set.stderr);
    // The header stays "SQLite format 3"; the page after it is garbage.
    const file = await Deno.open(join(dir, "state.db"), { write: true });
    await file.seek(100, Deno.SeekMode.Start);
    await file.write(new Uint8Array(200).fill(0xff));
    file.close();
    const get = await run("state", "get", "a");
    assert.equal(get.code, 1, get.stderr);
    assert.match(
      get.stderr,
      /Restore a backup over it, or run `flowstate stores repair main` to set it aside and start an empty store/,
    );
    const repair = await run("stores", "repair", "main");
    assert.equal(repair.code, 0, repair.stderr);
    assert.match(repair.stdout, /^Moved .*state\.db to /m);
  });
});

Deno.test("jobs ls says what a schedule in parentheses means (not in effect), and only when one is shown", async () => {
  await withSandbox(async ({ dir, run }) => {
    const legend =
      /^A schedule in parentheses is not in effect: the daemon runs a job on it once the job is under "jobs:" in the config, enabled, and loads$/m;
    const listed = await run("jobs", "ls");
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^archive +\(30 2 \* \* \*\) /m);
    assert.match(listed.stdout, legend);
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      'stores:\n  default: { plugin: memory }\njobs:\n  archive: { schedule: "30 2 * * *" }\n',
    );
    const scheduled = await run("jobs", "ls");
    assert.equal(scheduled.code, 0, scheduled.stderr);
    assert.match(scheduled.stdout, /^archive +30 2 \* \* \* /m);
    assert.doesNotMatch(scheduled.stdout, legend);
  });
});

Deno.test("jobs run --option maxAge=30 is refused for having no unit (it meant 30 ms: every run would go)", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: state.db }\n",
    );
    await Deno.writeTextFile(
      join(dir, "one.flow.yaml"),
      "id: one\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    for (let i = 0; i < 2; i++) assert.equal((await run("run", "one.flow.yaml")).code, 0);
    const refused = await run("jobs", "run", "retention", "--option", "maxAge=30");
    assert.equal(refused.code, 2, refused.stdout);
    assert.match(
      refused.stderr,
      /Invalid --option "maxAge=30": maxAge is a duration: add a unit \(maxAge=30d for days,/,
    );
    const listed = await run("runs", "ls", "--json");
    assert.equal(JSON.parse(listed.stdout).length, 2, "no run was deleted");
    // Numbers that are not durations, and durations with their unit, are taken as they are.
    const ok = await run(
      "jobs",
      "run",
      "retention",
      "--option",
      "maxAge=30d",
      "--option",
      "maxRuns=5",
      "--quiet",
    );
    assert.equal(ok.code, 0, ok.stderr);
  });
});

Deno.test("maxAge: 30 in flowstate.yaml is refused at its line for having no unit; changes.keep: 30 too", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    const config = (options: string, extra = "") =>
      Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  main: { plugin: sqlite, path: state.db${extra} }\njobs:\n  retention:\n    options: { ${options} }\n`,
      );
    await config("maxRuns: 5");
    await Deno.writeTextFile(
      join(dir, "one.flow.yaml"),
      "id: one\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    for (let i = 0; i < 2; i++) assert.equal((await run("run", "one.flow.yaml")).code, 0);
    await config("maxAge: 30, maxRuns: 5");
    const refusal =
      /flowstate\.yaml:5:16: jobs\.retention\.options\.maxAge: 30 is a number without a unit, which the job would read as 30 milliseconds: write 30ms to keep that, or 30d, 30h, 30m or 30s if you meant another unit/;
    const refused = await run("jobs", "run", "retention");
    assert.equal(refused.code, 2, refused.stdout);
    assert.match(refused.stderr, refusal);
    // The daemon refuses to start (without the check it would run retention on its schedule).
    const daemon = cliCommand(dir, ["daemon"], { home }).spawn();
    const guard = setTimeout(() => daemon.kill("SIGKILL"), 30_000);
    const ended = await daemon.output();
    clearTimeout(guard);
    assert.equal(ended.code, 2, "the daemon exits with a usage error instead of running");
    assert.match(new TextDecoder().decode(ended.stderr), refusal);
    const listed = await run("runs", "ls", "--json");
    assert.equal(JSON.parse(listed.stdout).length, 2, "no run was deleted");
    // An 0.5 config's milliseconds: the reading that keeps them comes first, and every bare
    // number of every job is said at once.
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: sqlite, path: state.db }\njobs:\n  retention:\n" +
        "    options: { maxAge: 2592000000, failedMaxAge: 5400000 }\n" +
        "  gc:\n    options: { abandonedAfter: 60000 }\n",
    );
    const upgraded = await run("schedules", "ls");
    assert.equal(upgraded.code, 2, upgraded.stdout);
    // One line a job (each a row of the listing), each with every problem of that job.
    const jobLines = upgraded.stderr.trim().split("\n");
    assert.equal(jobLines.length, 2, upgraded.stderr);
    assert.match(
      jobLines[0],
      /^error: Cannot schedule job "retention": flowstate\.yaml:5:16: jobs\.retention\.options\.maxAge: 2592000000 is a number without a unit, which the job would read as 2592000000 milliseconds: write 30d to keep that, .*; flowstate\.yaml:5:36: jobs\.retention\.options\.failedMaxAge: 5400000 is a number without a unit, which the job would read as 5400000 milliseconds: write 1h30m to keep that, /,
    );
    assert.match(
      jobLines[1],
      /^error: Cannot schedule job "gc": flowstate\.yaml:7:16: jobs\.gc\.options\.abandonedAfter: 60000 is a number without a unit, which the job would read as 60000 milliseconds: write 1m to keep that, /,
    );
    // 0 is 0 in any unit; a number that is not a duration is taken as it is.
    await config("maxAge: 0, maxRuns: 5, failedMaxAge: 90d");
    const ok = await run("jobs", "run", "retention", "--quiet", "--dry-run");
    assert.equal(ok.code, 0, ok.stderr);
    // A store's change feed kept for 30 (ms? changes?) is refused the same way.
    await config("maxRuns: 5", ", changes: { keep: 30 }");
    const keep = await run("state", "ls");
    assert.notEqual(keep.code, 0);
    assert.match(keep.stderr, /changes\.keep: 30 is a number without a unit/);
    assert.match(
      keep.stderr,
      /write "30ms" to keep that, "30d" for 30 days, or \{ count: 30 \} to keep the last 30 changes/,
    );
  });
});

Deno.test("state ls without a prefix leaves Flowstate's records out (and says how to list them); --limit counts what is shown", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "one.flow.yaml"),
      "id: one\nnodes:\n  - { id: a, type: state.increment, with: { scope: flow, key: n } }\n" +
        "  - { id: b, type: state.set, needs: [a], with: { scope: global, key: z, value: 1 } }\n",
    );
    for (let i = 0; i < 3; i++) assert.equal((await run("run", "one.flow.yaml")).code, 0);
    const ls = await run("state", "ls", "--json");
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(
      (JSON.parse(ls.stdout) as { key: string[] }[]).map((e) => e.key.join("/")),
      ["flow/one/n", "global/z"],
    );
    assert.match(
      ls.stderr,
      /records under flowstate\/ are not listed: `state ls flowstate` lists them/,
    );
    const limited = await run("state", "ls", "--json", "--limit", "1");
    assert.deepEqual(JSON.parse(limited.stdout).map((e: { key: string[] }) => e.key), [[
      "flow",
      "one",
      "n",
    ]]);
    const records = await run("state", "ls", "flowstate", "--json");
    assert.ok(JSON.parse(records.stdout).length > 3, records.stdout);
  });
});

Deno.test("init adds worker-options to a kept deno.json's own unstable list, and prints only what it lacks", async () => {
  await withSandbox(async ({ dir, run }) => {
    const [major, minor] = String(denoJson.version).split(".");
    const mine = {
      imports: { "@flowstate/core": `jsr:@flowstate/core@^${major}.${minor}`, zod: "npm:zod@^4" },
      tasks: { run: "deno run mine.ts" },
      unstable: ["sloppy-imports"],
    };
    await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify(mine, null, 4) + "\n");
    const init = await run("init");
    assert.equal(init.code, 0, init.stderr);
    const after = JSON.parse(await Deno.readTextFile(join(dir, "deno.json")));
    assert.deepEqual(after.unstable, ["sloppy-imports", "no-legacy-abort", "worker-options"]);
    assert.deepEqual(after.tasks, mine.tasks, "its own tasks are kept");
    assert.match(await Deno.readTextFile(join(dir, "deno.json")), /^{\n {4}"imports"/);
    assert.match(init.stdout, /added to its unstable list: no-legacy-abort, worker-options/);
    const block = init.stdout.slice(init.stdout.indexOf("merge what it lacks"));
    assert.match(block, /^merge what it lacks into it \(links, tasks\):/);
    assert.match(block, /"flowstate": "deno run /);
    assert.match(block, /"check": "deno check"/);
    assert.doesNotMatch(block, /"run":|"@flowstate\/core":|"unstable"/);
  });
});

Deno.test("init on a kept deno.json whose Flowstate tasks lack a flag of the current ones (0.5's, without --no-prompt) says so, with the line to merge", async () => {
  await withSandbox(async ({ dir, run }) => {
    const flags05 =
      "--v8-flags=--no-lazy --unstable-worker-options --allow-read --allow-write=.flowstate --allow-env --allow-net --allow-sys=hostname";
    const mine = {
      imports: { "@flowstate/core": "jsr:@flowstate/core@^0.5", zod: "npm:zod@^4" },
      tasks: {
        flowstate: `deno run ${flags05} jsr:@flowstate/core@^0.5/cli`,
        run: `deno run ${flags05} jsr:@flowstate/core@^0.5/cli run`,
        mine: "deno run mine.ts",
      },
      unstable: ["no-legacy-abort", "worker-options"],
    };
    await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify(mine, null, 2) + "\n");
    const init = await run("init");
    assert.equal(init.code, 0, init.stderr);
    // And without --frozen (0.6's tasks run frozen), which needs the project's deno.lock first.
    assert.match(init.stdout, /its task "flowstate" lacks --frozen --no-prompt \(/);
    assert.match(init.stdout, /its task "run" lacks --frozen --no-prompt \(/);
    assert.match(init.stdout, /--frozen needs the project's deno\.lock: deno install\)/);
    assert.doesNotMatch(init.stdout, /task "mine"/);
    const block = init.stdout.slice(init.stdout.indexOf("merge what it lacks"));
    assert.match(block, /"run": "deno run [^"]*--no-prompt[^"]* run"/);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(join(dir, "deno.json"))).tasks, mine.tasks);
    const json = await run("init", "--json");
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout).tasksLackingFlags, [
      { task: "run", flags: ["--frozen", "--no-prompt"] },
      { task: "flowstate", flags: ["--frozen", "--no-prompt"] },
    ]);
  });
});

Deno.test("init on a kept deno.json naming an older @flowstate/core range says which lines name it and gives the current ones", async () => {
  await withSandbox(async ({ dir, run }) => {
    const [major, minor] = String(denoJson.version).split(".").map(Number);
    const current = `jsr:@flowstate/core@^${major}.${minor}`;
    const old = `jsr:@flowstate/core@^${major}.${minor - 1}`;
    const starter = JSON.parse((await run("init", join(dir, "fresh"), "--json")).stdout);
    assert.deepEqual(starter.olderSpecifiers, []);
    const fresh = JSON.parse(await Deno.readTextFile(join(dir, "fresh", "deno.json")));
    // An older init's deno.json: the current tasks' flags, an older range everywhere but `check`.
    const mine = {
      imports: { "@flowstate/core": old, zod: "npm:zod@^4" },
      tasks: {
        ...fresh.tasks,
        run: fresh.tasks.run.replace(current, old),
        flowstate: fresh.tasks.flowstate.replace(current, old),
      },
      unstable: fresh.unstable,
    };
    await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify(mine, null, 2) + "\n");
    const init = await run("init");
    assert.equal(init.code, 0, init.stderr);
    assert.match(
      init.stdout,
      new RegExp(
        `it names ${
          old.replace(/[\^.]/g, "\\$&")
        } \\(imports\\["@flowstate/core"\\], tasks\\.run, tasks\\.flowstate\\), which leaves out this Flowstate`,
      ),
    );
    assert.doesNotMatch(init.stdout, /lacks --/);
    const block = JSON.parse(
      init.stdout.slice(init.stdout.indexOf("{", init.stdout.indexOf("merge what it lacks")))
        .replace(/\n\nNext:[\s\S]*$/, ""),
    );
    assert.equal(block.imports["@flowstate/core"], current);
    assert.equal(block.tasks.run, fresh.tasks.run);
    assert.equal(block.tasks.flowstate, fresh.tasks.flowstate);
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(join(dir, "deno.json"))),
      mine,
      "kept as it was",
    );
    // The current range, the exact version and a newer range are not flagged.
    for (
      const ok of [
        current,
        `jsr:@flowstate/core@${denoJson.version}`,
        `jsr:@flowstate/core@^${major + 1}.0`,
      ]
    ) {
      await Deno.writeTextFile(
        join(dir, "deno.json"),
        JSON.stringify(
          { ...fresh, imports: { ...fresh.imports, "@flowstate/core": ok } },
          null,
          2,
        ) + "\n",
      );
      const again = await run("init", "--json");
      assert.deepEqual(JSON.parse(again.stdout).olderSpecifiers, [], ok);
    }
  });
});

Deno.test("a flow id given where a flow file is expected: run and runFlow() name the file with that id", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.mkdir(join(dir, "flows"));
    const files = {
      "flowstate.yaml": "stores:\n  default: { plugin: memory }\nflows: [./flows]\n",
      "flows/report.flow.yaml":
        "id: report\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    };
    for (const [path, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, path), text);
    }
    const hint = `"report" is the id of the flow in flows/report.flow.yaml ` +
      `(under the config's flows:): run that file`;
    const byId = await run("run", "report");
    assert.equal(byId.code, 2, byId.stderr);
    assert.ok(byId.stderr.includes(`no such file ${join(dir, "report")}; ${hint}`), byId.stderr);
    // A name that is no flow's id: the error as it was.
    const unknown = await run("run", "reprot");
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.doesNotMatch(unknown.stderr, /is the id of the flow/);
    // The same from a program.
    await using rt = await openRuntime({
      cwd: dir,
      config: { stores: { main: { plugin: "memory" } }, flows: [join(dir, "flows")] },
    });
    await assert.rejects(rt.runFlow("report"), (err: Error) => {
      assert.ok(err instanceof FlowValidationError);
      assert.ok(err.message.endsWith(hint), err.message);
      return true;
    });
    assert.equal((await rt.runFlow("flows/report.flow.yaml")).status, "succeeded");
  });
});
