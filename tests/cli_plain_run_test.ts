/**
 * `flowstate run` without commander (src/cli/plain_run.ts): every command line
 * it reads, it reads as commander does; every other one goes to commander, so
 * that messages and exit codes stay the same.
 */
import assert from "node:assert/strict";
import { plainRun } from "../src/cli/plain_run.ts";
import { buildProgram } from "../src/cli/program.ts";
import { configPath } from "../src/cli/common.ts";
import { withSandbox } from "./_cli_sandbox.ts";

/** What commander hands the `run` action for `args` (the action replaced by a probe). */
async function viaCommander(args: string[]) {
  const program = buildProgram(() => {});
  let seen: unknown;
  const run = program.commands.find((c) => c.name() === "run")!;
  run.action((...args: unknown[]) => {
    const [file, options, command] = args as [
      string,
      Record<string, unknown>,
      { optsWithGlobals(): object },
    ];
    const { config, debug, quiet } = command.optsWithGlobals() as {
      config?: string;
      debug?: boolean;
      quiet?: boolean;
    };
    seen = {
      file,
      options: { ...options, quiet: quiet === true },
      globals: { config: configPath(config, {}), debug, quiet },
    };
  });
  await program.parseAsync(args, { from: "user" });
  return seen;
}

/** The same shape from plainRun (absent and `undefined` fields compare equal). */
function viaPlain(args: string[]) {
  const run = plainRun(args, {});
  if (run === undefined) return undefined;
  return {
    file: run.file,
    options: { ...run.options },
    globals: { config: run.globals.config, debug: run.globals.debug, quiet: run.globals.quiet },
  };
}

Deno.test("plainRun() reads every command line it takes as commander does", async () => {
  const lines = [
    ["run", "f.yaml"],
    ["run", "f.yaml", "--json"],
    ["run", "f.yaml", "-i", "by=2", "--input", "x=y", "--input=z=1=2"],
    ["--quiet", "run", "f.yaml"],
    ["run", "f.yaml", "-q"],
    ["run", "--json", "f.yaml", "-i", "by=2"],
    ["-c", "cfg.yaml", "run", "f.yaml"],
    ["run", "f.yaml", "--config", "cfg.yaml", "--debug"],
    ["--config=cfg.yaml", "--debug", "run", "dir/f.yaml", "-i", "a="],
    ["run", "f.yaml", "-i", "=x"], // runCommand says what is wrong with it
    ["run", "f.yaml", "--log-format", "json"], // main.ts reads it; plainRun steps over it
    ["--log-format=text", "run", "f.yaml", "--json"],
  ];
  for (const args of lines) {
    const plain = viaPlain(args);
    assert.notEqual(plain, undefined, `plainRun should take ${args.join(" ")}`);
    assert.deepEqual(
      JSON.parse(JSON.stringify(plain)),
      JSON.parse(JSON.stringify(await viaCommander(args))),
      args.join(" "),
    );
  }
});

Deno.test("plainRun() leaves every other command line to commander", () => {
  const lines = [
    [],
    ["run"],
    ["run", "a.yaml", "b.yaml"],
    ["run", "f.yaml", "--bogus"],
    ["run", "f.yaml", "-i"],
    ["run", "f.yaml", "-i", "-x"],
    ["run", "f.yaml", "--help"],
    ["run", "-h"],
    ["run", "f.yaml", "-qi", "by=2"],
    ["run", "f.yaml", "--", "x"],
    ["run", ""],
    ["-c", "a.yaml", "-c", "b.yaml", "run", "f.yaml"],
    ["--config"],
    ["validate", "f.yaml"],
    ["state", "get", "run"],
    ["--version"],
  ];
  for (const args of lines) assert.equal(plainRun(args), undefined, args.join(" "));
});

Deno.test("flowstate run: the plain path runs the flow; the others keep commander's messages and exit codes", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      `${dir}/count.flow.yaml`,
      "id: count\ninputs:\n  by: { type: number, default: 1 }\nnodes:\n" +
        '  - id: bump\n    type: state.increment\n    with: { scope: flow, key: n, by: "${{ inputs.by }}" }\n' +
        'outputs:\n  n: "${{ nodes.bump.output }}"\n',
    );
    const first = await run("--quiet", "run", "count.flow.yaml", "--input=by=2", "--json");
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout).outputs.n, 2);
    const second = await run("run", "count.flow.yaml", "-i", "by=3");
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^ {2}n: 5$/m);
    assert.match(second.stderr, /^Running flow "count"/m);

    const missing = await run("run");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: missing required argument 'flow'$/m);
    const unknown = await run("run", "count.flow.yaml", "--bogus");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^error: unknown option '--bogus'$/m);
    const extra = await run("run", "count.flow.yaml", "other.yaml");
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /too many arguments for 'run'/);
    const help = await run("run", "--help");
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: flowstate run \[options\] <flow>/m);
    const badPair = await run("run", "count.flow.yaml", "-i", "by");
    assert.equal(badPair.code, 2);
    assert.match(badPair.stderr, /^error: Invalid --input "by": expected name=value/m);
  });
});
