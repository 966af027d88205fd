// The built-in exec node through the CLI, run exactly as `deno task flowstate` runs it plus the
// --allow-run=<programs> a user adds: programs with arguments passed as they are (no shell), a
// clean environment, stdout as text, JSON or lines, exit codes outside okCodes failing so that
// retry: applies, the programs its permissions: run allow (a literal command at validate, a
// templated one at run, a runner without the flag), limits, secrets kept out of everything a run
// records, forEach, and a cancelled or timed-out run leaving no process behind.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { taskFlags } from "./_task_flags.ts";
import { outputOf } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** `flowstate <args>` in `dir` with the task's flags and `--allow-run=<allowRun>` (none: ""). */
function flowstateCommand(
  dir: string,
  allowRun: string,
  args: string[],
  env: Record<string, string> = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--config",
      join(ROOT, "deno.json"),
      ...taskFlags(),
      ...(allowRun === "" ? [] : [`--allow-run=${allowRun}`]),
      join(ROOT, "cli.ts"),
      ...args,
    ],
    cwd: dir,
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

interface Printed {
  code: number;
  stdout: string;
  stderr: string;
}

async function printed(child: Deno.ChildProcess | Deno.Command): Promise<Printed> {
  const { code, stdout, stderr } = await outputOf(child);
  return { code, stdout, stderr };
}

async function withProject(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "flowstate-exec-" }));
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `flowstate run flow.flow.yaml --json` of `yaml`: the run record (whatever the exit code). */
async function runFlow(
  dir: string,
  allowRun: string,
  yaml: string,
  args: string[] = [],
  env: Record<string, string> = {},
) {
  await Deno.writeTextFile(join(dir, "flow.flow.yaml"), yaml);
  const r = await printed(
    flowstateCommand(dir, allowRun, ["run", "flow.flow.yaml", "--json", ...args], env),
  );
  assert.ok(r.stdout.trim() !== "", `no record printed (exit ${r.code}): ${r.stderr}`);
  return { code: r.code, record: JSON.parse(r.stdout), stderr: r.stderr };
}

/** A flow of one exec node `x` (its YAML lines after `type: exec`), its output as `result`. */
function flowOf(node: string, head = ""): string {
  return `id: x\n${head}nodes:\n  - id: x\n    type: exec\n${node}\noutputs:\n  result: "\${{ nodes.x.output }}"\n`;
}

/** The pids of live processes with `marker` as an argument (a zombie shows none). */
async function processesWith(marker: string): Promise<number[]> {
  const out = await new Deno.Command("ps", { args: ["-e", "-o", "pid=,args="] }).output();
  assert.ok(out.success);
  return new TextDecoder().decode(out.stdout).split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((words) => words.slice(1).includes(marker) && words[1] !== "ps")
    .map((words) => Number(words[0]));
}

Deno.test("exec node: runs a program with its arguments as they are (no shell); stdout as text, JSON or lines", async () => {
  await withProject(async (dir) => {
    const evil = "a; touch pwned $(touch pwned2) `touch pwned3` | x";
    const yaml = [
      "id: x",
      "inputs:",
      "  evil: { type: string }",
      "nodes:",
      "  - id: text",
      "    type: exec",
      "    permissions: { run: [printf] }",
      '    with: { command: printf, args: ["%s|%s", "${{ inputs.evil }}", 42] }',
      "  - id: json",
      "    type: exec",
      "    permissions: { run: [sh] }",
      `    with: { command: sh, args: [-c, 'echo "{\\"n\\": 5}"'], stdout: json }`,
      "  - id: lines",
      "    type: exec",
      "    permissions: { run: [sh] }",
      "    with: { command: sh, args: [-c, 'printf \"a\\nb\\n\"; pwd; cat'], stdout: lines, stdin: from stdin }",
      "",
    ].join("\n");
    const { code, record, stderr } = await runFlow(dir, "printf,sh", yaml, [
      "--input",
      `evil=${evil}`,
    ]);
    assert.equal(code, 0, stderr);
    assert.deepEqual(record.nodes.text.output, { code: 0, stdout: `${evil}|42`, stderr: "" });
    for (const file of ["pwned", "pwned2", "pwned3"]) {
      assert.equal(await Deno.stat(join(dir, file)).catch(() => null), null, `${file} exists`);
    }
    assert.deepEqual(record.nodes.json.output.stdout, { n: 5 });
    // Its cwd is the flow file's folder by default; stdin is fed to it.
    assert.deepEqual(record.nodes.lines.output.stdout, ["a", "b", dir, "from stdin"]);
  });
});

Deno.test("exec node: the program gets a clean environment: PATH, HOME, LANG, LC_ALL, TZ and with.env only", async () => {
  await withProject(async (dir) => {
    const { code, record, stderr } = await runFlow(
      dir,
      "env",
      flowOf(
        "    permissions: { run: [env] }\n    with: { command: env, stdout: lines, env: { PGHOST: db.internal, PGPORT: 5432 } }",
      ),
      [],
      { RUNNER_ONLY: "not for the program", HOME: "/home/op", TZ: "Europe/Paris" },
    );
    assert.equal(code, 0, stderr);
    const env = Object.fromEntries(
      (record.outputs.result.stdout as string[]).map((l) => [l.split("=")[0], l]),
    );
    // Those the runner has of HOME, LANG, LC_ALL and TZ (HOME and TZ given here), and PATH.
    const inherited = ["LANG", "LC_ALL"].filter((name) => Deno.env.get(name) !== undefined);
    assert.deepEqual(
      Object.keys(env).sort(),
      ["HOME", "PATH", "PGHOST", "PGPORT", "TZ", ...inherited].sort(),
    );
    assert.equal(env.HOME, "HOME=/home/op");
    assert.equal(env.PGPORT, "PGPORT=5432");
    assert.equal(env.TZ, "TZ=Europe/Paris");
  });
});

Deno.test("exec node: an exit code outside okCodes fails the attempt naming the program, the code and its last stderr lines; retry: applies", async () => {
  await withProject(async (dir) => {
    const script = "echo progress >&2; echo 'FATAL: role missing' >&2; exit 3";
    const failed = await runFlow(
      dir,
      "sh",
      flowOf(
        `    permissions: { run: [sh] }\n    retry: { attempts: 2, delay: 1ms }\n    with: { command: sh, args: [-c, "${script}"] }`,
      ),
    );
    assert.equal(failed.code, 1);
    assert.equal(failed.record.nodes.x.status, "failed");
    assert.equal(failed.record.nodes.x.attempts, 2);
    assert.equal(
      failed.record.nodes.x.error,
      '"sh" exited with code 3 (okCodes: 0); the last lines of its stderr:\nprogress\nFATAL: role missing',
    );
    // Its stderr lines are the node's log lines, as they came.
    const show = await printed(flowstateCommand(dir, "", ["runs", "show", failed.record.id]));
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /FATAL: role missing/);
    const ok = await runFlow(
      dir,
      "sh",
      flowOf(
        `    permissions: { run: [sh] }\n    with: { command: sh, args: [-c, "${script}"], okCodes: [0, 3] }`,
      ),
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(ok.record.outputs.result, {
      code: 3,
      stdout: "",
      stderr: "progress\nFATAL: role missing\n",
    });
  });
});

Deno.test("exec node: a program that is not there fails clearly; so does a missing cwd", async () => {
  await withProject(async (dir) => {
    const missing = join(dir, "bin", "backup.sh");
    const gone = await runFlow(
      dir,
      missing,
      flowOf(`    permissions: { run: ["${missing}"] }\n    with: { command: "${missing}" }`),
    );
    assert.equal(gone.code, 1);
    assert.equal(gone.record.nodes.x.error, `program "${missing}" was not found`);
    const cwd = await runFlow(
      dir,
      "date",
      flowOf("    permissions: { run: [date] }\n    with: { command: date, cwd: nowhere }"),
    );
    assert.equal(
      cwd.record.nodes.x.error,
      `"date": its cwd ${join(dir, "nowhere")} does not exist`,
    );
    await Deno.writeTextFile(
      join(dir, "flow.flow.yaml"),
      flowOf(
        "    permissions: { run: [no-such-program-here] }\n    with: { command: no-such-program-here }",
      ),
    );
    const validated = await printed(
      flowstateCommand(dir, "no-such-program-here", ["validate", "flow.flow.yaml"]),
    );
    assert.equal(validated.code, 2);
    assert.match(
      validated.stderr,
      /^error: flow\.flow\.yaml:5:26: nodes\[0\]\.permissions\.run\[0\]: program "no-such-program-here" is not found on the runner's PATH \(.*\); install it, or name it by its path/m,
    );
  });
});

Deno.test("flowstate validate: an exec node may start only the programs its permissions: run lists, and the runner must allow them", async () => {
  await withProject(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flow.flow.yaml"),
      [
        "id: x",
        "nodes:",
        "  - id: undeclared",
        "    type: exec",
        "    permissions: { run: [date] }",
        "    with: { command: uname, args: [-s] }",
        "  - id: none",
        "    type: exec",
        "    with: { command: date }",
        "  - id: all",
        "    type: exec",
        "    permissions: { run: true }",
        "    with: { command: date }",
        "  - id: other",
        "    type: exec",
        "    permissions: { run: [date], net: [example.com] }",
        "    with: { command: date }",
        "",
      ].join("\n"),
    );
    const r = await printed(flowstateCommand(dir, "date", ["validate", "flow.flow.yaml"]));
    assert.equal(r.code, 2);
    assert.deepEqual(r.stderr.trim().split("\n"), [
      'error: flow.flow.yaml:6:22: nodes[0].with.command: exec: program "uname" is not in the node\'s permissions: run (date); an exec node may start only the programs it declares: add to the node in its flow file: permissions: { run: ["date", "uname"] }',
      'error: flow.flow.yaml:8:11: nodes[1].type: an exec node may start only the programs listed under its permissions: run:, and it lists none; add the programs its command may name, like permissions: { run: ["date"] }',
      'error: flow.flow.yaml:12:25: nodes[2].permissions.run: an exec node starts only the programs it lists, not any program; list them, like permissions: { run: ["date"] }',
      "error: flow.flow.yaml:16:38: nodes[3].permissions.net: an exec node takes only run: under permissions: (the programs it may start); remove net:",
    ]);
    // Valid, it lists where each node runs.
    await Deno.writeTextFile(
      join(dir, "flow.flow.yaml"),
      flowOf("    permissions: { run: [date] }\n    with: { command: date }"),
    );
    const ok = await printed(flowstateCommand(dir, "date", ["validate", "flow.flow.yaml"]));
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /^ {2}x \(exec\): starts programs from a Worker, permissions: run=date$/m,
    );
  });
});

Deno.test("exec node: a runner without --allow-run=<program> refuses it at validate and run, naming the flag", async () => {
  await withProject(async (dir) => {
    const yaml = flowOf("    permissions: { run: [date] }\n    with: { command: date }");
    await Deno.writeTextFile(join(dir, "flow.flow.yaml"), yaml);
    const expected =
      "error: flow.flow.yaml:5:18: nodes[0].permissions: node x asks for permissions this runner lacks; add `--allow-run=date` to the flags flowstate runs with, or narrow the node's `permissions:`";
    for (const args of [["validate", "flow.flow.yaml"], ["run", "flow.flow.yaml"]]) {
      for (const allowRun of ["", "uname"]) {
        const r = await printed(flowstateCommand(dir, allowRun, args));
        assert.equal(r.code, 2, r.stderr);
        assert.equal(r.stderr.trim(), expected);
      }
    }
    assert.equal(await Deno.stat(join(dir, ".flowstate")).catch(() => null), null);
  });
});

Deno.test("exec node: a templated command outside permissions: run is refused before anything starts", async () => {
  await withProject(async (dir) => {
    const { code, record } = await runFlow(
      dir,
      "date,touch",
      flowOf(
        '    permissions: { run: [date] }\n    with: { command: "${{ inputs.tool }}", args: [made-it] }',
        "inputs:\n  tool: { type: string }\n",
      ),
      ["--input", "tool=touch"],
    );
    assert.equal(code, 1);
    assert.equal(
      record.nodes.x.error,
      'flow.flow.yaml:8:22: nodes[0].with.command: invalid options for exec: program "touch" is not in the node\'s permissions: run (date); an exec node may start only the programs it declares: add to the node in its flow file: permissions: { run: ["date", "touch"] }',
    );
    assert.equal(await Deno.stat(join(dir, "made-it")).catch(() => null), null);
  });
});

Deno.test("exec node: stdout over maxBytes fails and stops the program; stderr keeps its end, marked", async () => {
  await withProject(async (dir) => {
    const big = await runFlow(
      dir,
      "sh",
      flowOf(
        "    permissions: { run: [sh] }\n    with: { command: sh, args: [-c, 'while :; do echo yyyyyyyy; done'], maxBytes: 1000 }",
      ),
    );
    assert.equal(big.code, 1);
    assert.equal(
      big.record.nodes.x.error,
      '"sh" wrote more than maxBytes (1,000 bytes) to stdout, so it was stopped; raise maxBytes, or have it write to a file',
    );
    const chatty = await runFlow(
      dir,
      "sh",
      flowOf(
        "    permissions: { run: [sh] }\n    with: { command: sh, args: [-c, 'for i in $(seq 1 200); do echo line-$i >&2; done'], maxBytes: 100 }",
      ),
    );
    assert.equal(chatty.code, 0, chatty.stderr);
    const stderr: string = chatty.record.outputs.result.stderr;
    assert.match(
      stderr,
      /^\[stderr cut: its first [\d,]+ bytes are not kept \(maxBytes 100 bytes\)\]\n/,
    );
    assert.ok(stderr.endsWith("line-199\nline-200\n"), stderr);
    assert.ok(!stderr.includes("line-1\n"), stderr);
  });
});

Deno.test("exec node: secrets passed through with.env never reach the records or the CLI's output", async () => {
  const secret = "pw-3c1f9e0b77a24d51";
  await withProject(async (dir) => {
    const yaml = [
      "id: x",
      "secrets: [DB_PASSWORD]",
      "nodes:",
      "  - id: ok",
      "    type: exec",
      "    permissions: { run: [sh] }",
      "    with:",
      "      command: sh",
      `      args: [-c, 'echo "out $PGPASSWORD"; echo "err $PGPASSWORD" >&2']`,
      '      env: { PGPASSWORD: "${{ secrets.DB_PASSWORD }}" }',
      "  - id: bad",
      "    type: exec",
      "    needs: [ok]",
      "    permissions: { run: [sh] }",
      "    with:",
      "      command: sh",
      `      args: [-c, 'echo "denied for $PGPASSWORD" >&2; exit 2']`,
      '      env: { PGPASSWORD: "${{ secrets.DB_PASSWORD }}" }',
      "",
    ].join("\n");
    const env = { DB_PASSWORD: secret };
    const out: string[] = [];
    const ran = await runFlow(dir, "sh", yaml, [], env);
    out.push(JSON.stringify(ran.record), ran.stderr);
    assert.equal(ran.code, 1);
    assert.equal(ran.record.nodes.ok.output.stdout, "out ***\n");
    assert.equal(ran.record.nodes.ok.output.stderr, "err ***\n");
    assert.match(ran.record.nodes.bad.error, /exited with code 2 .*\ndenied for \*\*\*$/);
    for (
      const args of [["runs", "show", ran.record.id], ["runs", "show", ran.record.id, "--json"]]
    ) {
      const r = await printed(flowstateCommand(dir, "", args, env));
      out.push(r.stdout, r.stderr);
    }
    assert.match(out.join("\n"), /err \*\*\*/); // its stderr line was logged, masked
    const human = await printed(flowstateCommand(dir, "sh", ["run", "flow.flow.yaml"], env));
    out.push(human.stdout, human.stderr);
    const files: string[] = [];
    for await (const entry of Deno.readDir(join(dir, ".flowstate"))) {
      if (entry.isFile) files.push(join(dir, ".flowstate", entry.name));
    }
    assert.ok(files.some((f) => f.endsWith("state.db")), files.join(", "));
    for (const file of files) {
      const text = new TextDecoder("latin1").decode(await Deno.readFile(file));
      assert.ok(!text.includes(secret), `the secret is in ${file}`);
    }
    for (const text of out) assert.ok(!text.includes(secret), `the secret was printed: ${text}`);
  });
});

Deno.test("exec node: forEach runs the program once per item", async () => {
  await withProject(async (dir) => {
    const { code, record, stderr } = await runFlow(
      dir,
      "printf",
      flowOf(
        '    forEach: [alpha, beta, gamma]\n    permissions: { run: [printf] }\n    with: { command: printf, args: ["%s-%s", "${{ item }}", "${{ index }}"] }',
      ),
    );
    assert.equal(code, 0, stderr);
    assert.deepEqual(
      record.outputs.result.map((o: { stdout: string }) => o.stdout),
      ["alpha-0", "beta-1", "gamma-2"],
    );
  });
});

/**
 * A flow whose program writes a line to the FIFO `started` once it runs, then waits in a
 * `sleep` whose argument is `marker` (a process it started: the shell does not exec it).
 */
async function waitingFlow(dir: string, marker: string, extra = ""): Promise<string> {
  const fifo = join(dir, "started");
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert.ok(made.success);
  return flowOf(
    `${extra}    permissions: { run: [sh] }\n    with: { command: sh, args: [-c, 'echo up > started; sleep ${marker}; echo never'] }`,
  );
}

/** Wait for the waiting flow's program to say it runs. */
async function started(dir: string): Promise<void> {
  const line = await Deno.readTextFile(join(dir, "started"));
  assert.equal(line, "up\n");
}

Deno.test("exec node: flowstate runs cancel stops the program and what it started (with kill on --allow-run): no process is left", async () => {
  await withProject(async (dir) => {
    const marker = `300.${Date.now() % 100000}1`;
    await Deno.writeTextFile(join(dir, "flow.flow.yaml"), await waitingFlow(dir, marker));
    const child = flowstateCommand(dir, "sh,kill", ["run", "flow.flow.yaml", "--json"]).spawn();
    try {
      await started(dir);
      const sleeping = await processesWith(marker);
      assert.equal(sleeping.length, 1, "the program's sleep runs");
      const ls = await printed(
        flowstateCommand(dir, "", ["runs", "ls", "--status", "running", "--json"]),
      );
      const running = JSON.parse(ls.stdout);
      assert.equal(running.length, 1, ls.stderr);
      const cancel = await printed(flowstateCommand(dir, "", ["runs", "cancel", running[0].id]));
      assert.equal(cancel.code, 0, cancel.stderr);
      const result = await printed(child);
      assert.equal(result.code, 1, result.stderr);
      const record = JSON.parse(result.stdout);
      assert.equal(record.status, "cancelled");
      assert.equal(record.nodes.x.status, "cancelled");
      assert.deepEqual(await processesWith(marker), [], "the sleep it started is gone");
    } finally {
      for (const pid of await processesWith(marker)) Deno.kill(pid, "SIGKILL");
    }
  });
});

Deno.test("exec node: a node timeout stops the program and what it started: no process is left", async () => {
  await withProject(async (dir) => {
    const marker = `300.${Date.now() % 100000}2`;
    await Deno.writeTextFile(
      join(dir, "flow.flow.yaml"),
      await waitingFlow(dir, marker, "    timeout: 1s\n"),
    );
    const child = flowstateCommand(dir, "sh,kill", ["run", "flow.flow.yaml", "--json"]).spawn();
    try {
      await started(dir);
      const result = await printed(child);
      assert.equal(result.code, 1, result.stderr);
      const record = JSON.parse(result.stdout);
      assert.equal(record.nodes.x.status, "timed-out");
      assert.deepEqual(await processesWith(marker), [], "the sleep it started is gone");
    } finally {
      for (const pid of await processesWith(marker)) Deno.kill(pid, "SIGKILL");
    }
  });
});

/**
 * `flowstate run flow.flow.yaml` (its program says "up" on the fifo `started`) times out its node,
 * and no process with `marker` in its arguments is left.
 */
async function assertTimesOutLeavingNothing(
  dir: string,
  allowRun: string,
  marker: string,
): Promise<void> {
  const child = flowstateCommand(dir, allowRun, ["run", "flow.flow.yaml", "--json"]).spawn();
  try {
    await started(dir);
    const result = await printed(child);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(JSON.parse(result.stdout).nodes.x.status, "timed-out");
    assert.deepEqual(await processesWith(marker), [], "the sleep it started is gone");
  } finally {
    for (const pid of await processesWith(marker)) Deno.kill(pid, "SIGKILL");
  }
}

Deno.test("exec node: with.env setting PATH does not keep a stop from stopping what the program started", async () => {
  await withProject(async (dir) => {
    const marker = `300.${Date.now() % 100000}3`;
    const made = await new Deno.Command("mkfifo", { args: [join(dir, "started")] }).output();
    assert.ok(made.success);
    // The program's PATH holds no kill: the group is signalled with the runner's.
    await Deno.writeTextFile(
      join(dir, "flow.flow.yaml"),
      flowOf(
        `    timeout: 1s\n    permissions: { run: [/bin/sh] }\n    with: { command: /bin/sh, args: [-c, 'echo up > started; /bin/sleep ${marker}; echo never'], env: { PATH: /opt/no-such-tools/bin } }`,
      ),
    );
    await assertTimesOutLeavingNothing(dir, "/bin/sh,kill", marker);
  });
});

Deno.test("exec node: a declared program found elsewhere (with.env PATH, a relative path from another folder) is refused, saying why", async () => {
  await withProject(async (dir) => {
    const tools = join(dir, "tools");
    await Deno.mkdir(tools);
    await Deno.writeTextFile(join(tools, "date"), "#!/bin/sh\necho not-date\n", { mode: 0o755 });
    const onPath = await runFlow(
      dir,
      "date",
      flowOf(
        `    permissions: { run: [date] }\n    with: { command: date, env: { PATH: ${tools} } }`,
      ),
    );
    assert.equal(onPath.code, 1, onPath.stderr);
    assert.match(
      onPath.record.nodes.x.error,
      new RegExp(
        `^program "date" could not be started: with\\.env sets PATH \\(${tools}\\), on which "date" is not the program the runner's --allow-run granted .*; write its full path as command and in permissions: run \\(and in --allow-run\\), or leave PATH out of with\\.env`,
      ),
    );
    assert.doesNotMatch(onPath.record.nodes.x.error, /hint: add/);
    // A flow in a folder of its own, run from the project: ./tool.sh is the flow folder's.
    const flows = join(dir, "flows");
    await Deno.mkdir(flows);
    await Deno.writeTextFile(join(flows, "tool.sh"), "#!/bin/sh\necho tool\n", { mode: 0o755 });
    await Deno.writeTextFile(
      join(flows, "rel.flow.yaml"),
      flowOf(`    permissions: { run: [./tool.sh] }\n    with: { command: ./tool.sh }`),
    );
    const here = await printed(
      flowstateCommand(flows, "./tool.sh", ["run", "rel.flow.yaml", "--json"]),
    );
    assert.equal(here.code, 0, here.stderr);
    const elsewhere = await printed(
      flowstateCommand(dir, "./tool.sh", ["run", "flows/rel.flow.yaml", "--json"]),
    );
    assert.equal(elsewhere.code, 1, elsewhere.stderr);
    assert.match(
      JSON.parse(elsewhere.stdout).nodes.x.error,
      new RegExp(
        `^program "\\./tool\\.sh" could not be started: a relative command is found from the node's cwd \\(${flows}\\), but the runner's --allow-run=\\./tool\\.sh granted the one found from the runner's working directory; write its full path`,
      ),
    );
  });
});

Deno.test("flowstate validate: with.env may not hold LD_… or DYLD_… variables, nor a bad name, each said at its place", async () => {
  await withProject(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flow.flow.yaml"),
      flowOf(
        `    permissions: { run: [date] }\n    with: { command: date, env: { LD_PRELOAD: /tmp/x.so, 1X: a, DYLD_INSERT_LIBRARIES: /tmp/y } }`,
      ),
    );
    const r = await printed(flowstateCommand(dir, "date", ["validate", "flow.flow.yaml"]));
    assert.equal(r.code, 2, r.stderr);
    const refused =
      "exec: an exec node's program may not be given a variable named LD_… or DYLD_… (it would load other code into the program";
    assert.match(
      r.stderr,
      new RegExp(
        `^error: flow\\.flow\\.yaml:6:47: nodes\\[0\\]\\.with\\.env\\.LD_PRELOAD: ${
          escape(refused)
        }`,
        "m",
      ),
    );
    assert.match(
      r.stderr,
      new RegExp(
        `^error: flow\\.flow\\.yaml:6:\\d+: nodes\\[0\\]\\.with\\.env\\.DYLD_INSERT_LIBRARIES: ${
          escape(refused)
        }`,
        "m",
      ),
    );
    assert.match(
      r.stderr,
      /^error: flow\.flow\.yaml:6:\d+: nodes\[0\]\.with\.env\["1X"\]: exec: an environment variable's name is letters, digits and _, not starting with a digit$/m,
    );
    assert.doesNotMatch(r.stderr, /Invalid key in record/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("exec node: a program that ignores SIGTERM is killed with what it started even when the run's abort grace ends first", async () => {
  await withProject(async (dir) => {
    const marker = `300.${Date.now() % 100000}4`;
    const made = await new Deno.Command("mkfifo", { args: [join(dir, "started")] }).output();
    assert.ok(made.success);
    // The run gives up on the node after 1 s, before the SIGKILL that follows SIGTERM by 3 s.
    await Deno.writeTextFile(join(dir, "flowstate.yaml"), "runs:\n  abortGrace: 1s\n");
    await Deno.writeTextFile(
      join(dir, "flow.flow.yaml"),
      flowOf(
        `    timeout: 1s\n    permissions: { run: [sh] }\n    with: { command: sh, args: [-c, 'trap "" TERM; echo up > started; sleep ${marker} & wait'] }`,
      ),
    );
    await assertTimesOutLeavingNothing(dir, "sh,kill", marker);
  });
});

Deno.test("examples/exec/exec.flow.yaml runs with its programs on --allow-run; its greeting is never code", async () => {
  await withProject(async (dir) => {
    await Deno.copyFile(
      join(ROOT, "examples", "exec", "exec.flow.yaml"),
      join(dir, "exec.flow.yaml"),
    );
    const r = await printed(
      flowstateCommand(dir, "uname,date,sh", ["run", "exec.flow.yaml", "--json"]),
    );
    assert.equal(r.code, 0, r.stderr);
    const record = JSON.parse(r.stdout);
    assert.match(record.outputs.kernel, /^Linux /);
    assert.match(record.outputs.today, /^\d{4}-\d{2}-\d{2}\n$/);
    assert.deepEqual(record.outputs.said, ["hello; $(this is not run)"]);
  });
});

Deno.test("flowstate validate warns that a shell's children outlive a stop unless the runner may run kill", async () => {
  await withProject(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flow.flow.yaml"),
      flowOf("    permissions: { run: [sh] }\n    with: { command: sh, args: [-c, 'a; b'] }"),
    );
    const without = await printed(flowstateCommand(dir, "sh", ["validate", "flow.flow.yaml"]));
    assert.equal(without.code, 0, without.stderr);
    assert.equal(
      without.stderr.trim(),
      "warning: flow.flow.yaml: node x (exec) runs sh: stopping it (a cancel, a timeout) stops the shell only, and a process its script starts would run on; add kill to the runner's --allow-run (--allow-run=sh,kill) to stop its whole process group",
    );
    const withKill = await printed(
      flowstateCommand(dir, "sh,kill", ["validate", "flow.flow.yaml"]),
    );
    assert.equal(withKill.code, 0, withKill.stderr);
    assert.equal(withKill.stderr, "");
  });
});
