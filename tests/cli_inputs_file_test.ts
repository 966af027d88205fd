/**
 * `--inputs <file>` on `run` and `enqueue` through the CLI (subprocesses): a
 * JSON object of inputs from a file or stdin, `--input` over single keys of
 * it, the same input checks as `--input`, and the bad documents (no file, not
 * JSON, not an object, empty stdin) refused with exit 2 and nothing written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliArgv, type Result, resultOf, type Sandbox, withSandbox } from "./_cli_sandbox.ts";
import { outputOf } from "./_deadline.ts";

const FLOW = `id: add
inputs:
  by: { type: number }
  mode: { type: string, enum: [fast, slow], default: fast }
  tags: { type: array, default: [] }
  extra: { type: any, default: null }
nodes:
  - { id: say, type: log, with: { message: "by \${{ inputs.by }}" } }
`;

async function setUp(dir: string): Promise<void> {
  await Deno.writeTextFile(join(dir, "add.flow.yaml"), FLOW);
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), "flows: [./add.flow.yaml]\n");
}

/** `flowstate <args>` in the sandbox with `stdin` written to its standard input. */
async function runWithStdin(sandbox: Sandbox, stdin: string, ...args: string[]): Promise<Result> {
  const [program, ...argv] = cliArgv(args);
  const child = new Deno.Command(program, {
    args: argv,
    cwd: sandbox.dir,
    env: { FLOWSTATE_HOME: sandbox.home, NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  return await outputOf(child);
}

/** The runs recorded (queued ones too). */
async function runCount(sandbox: Sandbox): Promise<number> {
  const ls = await sandbox.run("runs", "ls", "--json");
  assert.equal(ls.code, 0, ls.stderr);
  return JSON.parse(ls.stdout).length;
}

Deno.test("cli --inputs: run takes a JSON file of inputs, --input overrides a key", async () => {
  await withSandbox(async (sandbox) => {
    const { dir, run } = sandbox;
    await setUp(dir);
    await Deno.writeTextFile(
      join(dir, "in.json"),
      JSON.stringify({ by: 3, mode: "slow", tags: ["a", "b"], extra: "[1]" }),
    );
    const plain = await run("run", "add.flow.yaml", "--inputs", "in.json", "--json");
    assert.equal(plain.code, 0, plain.stderr);
    // JSON values are taken as they are: the string "[1]" stays a string.
    assert.deepEqual(JSON.parse(plain.stdout).inputs, {
      by: 3,
      mode: "slow",
      tags: ["a", "b"],
      extra: "[1]",
    });
    const over = await run(
      "run",
      "add.flow.yaml",
      "--inputs",
      "in.json",
      "--input",
      "by=7",
      "--input",
      "extra=[2]",
      "--json",
    );
    assert.equal(over.code, 0, over.stderr);
    const inputs = JSON.parse(over.stdout).inputs;
    assert.deepEqual([inputs.by, inputs.mode, inputs.tags, inputs.extra], [7, "slow", ["a", "b"], [
      2,
    ]]);
  });
});

Deno.test("cli --inputs -: run and enqueue read the JSON object from stdin", async () => {
  await withSandbox(async (sandbox) => {
    await setUp(sandbox.dir);
    const ran = await runWithStdin(
      sandbox,
      '{"by": 2, "tags": ["x"]}',
      "run",
      "add.flow.yaml",
      "--inputs",
      "-",
      "--json",
    );
    assert.equal(ran.code, 0, ran.stderr);
    assert.deepEqual(JSON.parse(ran.stdout).inputs, {
      by: 2,
      mode: "fast",
      tags: ["x"],
      extra: null,
    });
    const queued = await runWithStdin(
      sandbox,
      '{"by": 5, "mode": "slow"}\n',
      "enqueue",
      "add",
      "--inputs",
      "-",
      "--input",
      "mode=fast",
      "--json",
    );
    assert.equal(queued.code, 0, queued.stderr);
    const { runId } = JSON.parse(queued.stdout);
    const shown = await sandbox.run("runs", "show", runId, "--json");
    assert.equal(shown.code, 0, shown.stderr);
    assert.deepEqual(JSON.parse(shown.stdout).run.inputs, {
      by: 5,
      mode: "fast",
      tags: [],
      extra: null,
    });
  });
});

Deno.test("cli --inputs: enqueue takes a JSON file of inputs", async () => {
  await withSandbox(async (sandbox) => {
    await setUp(sandbox.dir);
    await Deno.writeTextFile(join(sandbox.dir, "in.json"), '{"by": 4}');
    const queued = await sandbox.run("enqueue", "add", "--inputs", "in.json", "--json");
    assert.equal(queued.code, 0, queued.stderr);
    const shown = await sandbox.run("runs", "show", JSON.parse(queued.stdout).runId, "--json");
    assert.equal(JSON.parse(shown.stdout).run.inputs.by, 4);
  });
});

Deno.test("cli --inputs: bad documents and bad values exit 2 and record no run", async () => {
  await withSandbox(async (sandbox) => {
    const { dir, run } = sandbox;
    await setUp(dir);
    const files: Record<string, string> = {
      "broken.json": '{\n  "by": 3,\n  mode: "x"\n}',
      "array.json": "[1, 2]",
      "typed.json": '{"by": "3"}',
      "enum.json": '{"by": 3, "mode": "slwo"}',
      "unknown.json": '{"by": 3, "bye": 1}',
      "missing.json": '{"mode": "slow"}',
    };
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    const cases: [string[], RegExp][] = [
      [["--inputs", "nope.json"], /--inputs nope\.json: no such file/],
      [["--inputs", "broken.json"], /--inputs broken\.json is not valid JSON: .*line 3 column 3/],
      [["--inputs", "array.json"], /expected a JSON object of inputs.*got an array/],
      [["--inputs", "typed.json"], /inputs\.by: expected a number.*\(from --inputs typed\.json\)/],
      [["--inputs", "enum.json"], /inputs\.mode: expected one of "fast", "slow"/],
      [["--inputs", "unknown.json"], /inputs\.bye: unknown input/],
      [["--inputs", "missing.json"], /inputs\.by: required.*pass --input by=VALUE/],
      [["--inputs", "missing.json", "--input", "by=x"], /\(from --input by=x\)/],
    ];
    for (const [args, message] of cases) {
      for (const command of [["run", "add.flow.yaml"], ["enqueue", "add"]]) {
        const result = await run(...command, ...args);
        assert.equal(result.code, 2, `${command[0]} ${args.join(" ")}: ${result.stderr}`);
        if (command[0] === "run" || !/from --input|pass --input/.test(message.source)) {
          assert.match(result.stderr, message, `${command[0]} ${args.join(" ")}`);
        }
      }
    }
    for (const command of [["run", "add.flow.yaml"], ["enqueue", "add"]]) {
      const empty = await runWithStdin(sandbox, "", ...command, "--inputs", "-");
      assert.equal(empty.code, 2, empty.stderr);
      assert.match(empty.stderr, /--inputs - \(stdin\) is empty; expected a JSON object/);
    }
    assert.equal(await runCount(sandbox), 0, "no run was recorded");
  });
});

Deno.test("cli --inputs: inputs too large for a run's record exit 2, name the input and record nothing", async () => {
  await withSandbox(async (sandbox) => {
    const { dir, run } = sandbox;
    await setUp(dir);
    // 17 MB of JSON: over what a run's record (at most 16 MiB) can keep.
    await Deno.writeTextFile(
      join(dir, "big.json"),
      JSON.stringify({ by: 1, extra: "x".repeat(17_000_000) }),
    );
    for (const command of [["run", "add.flow.yaml"], ["enqueue", "add"]]) {
      const result = await run(...command, "--inputs", "big.json");
      assert.equal(result.code, 2, `${command[0]}: ${result.stderr}`);
      assert.match(
        result.stderr,
        /inputs: the inputs are 17,000,\d{3} bytes as JSON \(extra: 17,000,002\), over the 15,728,640 bytes \(15 MiB\) a run's inputs may take.*pass large data by reference/,
        command[0],
      );
      assert.doesNotMatch(result.stderr, /Cannot commit/);
    }
    assert.equal(await runCount(sandbox), 0, "no run was recorded");
  });
});

// `script` (util-linux) gives the CLI a terminal as its stdin.
const SCRIPT = ["/usr/bin/script", "/bin/script"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

Deno.test({
  name: "cli --inputs -: stdin a terminal exits 2 and says how to pipe it",
  ignore: SCRIPT === undefined,
  fn: async () => {
    await withSandbox(async (sandbox) => {
      await setUp(sandbox.dir);
      const command = cliArgv(["run", "add.flow.yaml", "--inputs", "-"])
        .map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(" ");
      const output = await new Deno.Command(SCRIPT!, {
        args: ["-qec", command, "/dev/null"],
        cwd: sandbox.dir,
        env: { FLOWSTATE_HOME: sandbox.home, NO_COLOR: "1", RUST_BACKTRACE: "0" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const result = resultOf(output);
      assert.equal(result.code, 2, result.stdout + result.stderr);
      // Through the terminal, the CLI's stderr reaches script's stdout.
      assert.match(result.stdout + result.stderr, /stdin is a terminal; pipe the JSON object/);
      assert.equal(await runCount(sandbox), 0);
    });
  },
});
