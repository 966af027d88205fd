/**
 * Odd inputs through the CLI, found by a hostile review: flow and config
 * files that are pipes, empty arguments, and stores that cannot be what a
 * store is. Each gets a clear answer and the right exit code.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, withSandbox } from "./_cli_sandbox.ts";

const FLOW = `id: piped
inputs:
  n: { type: number, default: 1 }
nodes:
  - id: bump
    type: state.increment
    with: { scope: flow, key: count, by: "\${{ inputs.n }}" }
outputs:
  count: "\${{ nodes.bump.output }}"
`;

/** A FIFO at `path` (mkfifo). */
async function mkfifo(path: string): Promise<void> {
  const made = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
}

/** Run `flowstate <args>` in `dir` while `text` is written into the FIFO `fifo`. */
async function runFeeding(dir: string, fifo: string, text: string, args: string[]) {
  const child = cliCommand(dir, args).spawn();
  await Deno.writeTextFile(fifo, text); // opens when the CLI opens it for reading
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("a flow or config read from a pipe (run <(…), a FIFO) is read whole", async () => {
  await withSandbox(async ({ dir }) => {
    const fifo = join(dir, "flow.pipe");
    await mkfifo(fifo);
    const run = await runFeeding(dir, fifo, FLOW, ["run", "--json", fifo, "--input", "n=5"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).outputs.count, 5);

    // A flow of more than one read's worth (64 KiB) of bytes, through the same pipe.
    const long = FLOW + `# ${"padding ".repeat(20_000)}\n`;
    const again = await runFeeding(dir, fifo, long, ["run", "--json", fifo]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).outputs.count, 6);

    const config = await runFeeding(
      dir,
      fifo,
      `stores:\n  piped: { plugin: memory }\n`,
      ["--config", fifo, "stores", "--json"],
    );
    assert.equal(config.code, 0, config.stderr);
    assert.deepEqual(
      (JSON.parse(config.stdout) as { name: string }[]).map((s) => s.name),
      ["piped"],
    );
  });
});

Deno.test("an empty argument or option value (an unset shell variable) is a usage error naming it, not the working directory", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  default: { plugin: sqlite, path: state.db }\n",
    );
    for (
      const [args, name] of [
        [["--config", "", "stores"], "-c, --config <path>"],
        [["run", ""], "flow"],
        [["validate", ""], "flow"],
        [["runs", "show", ""], "run-id"],
        [["runs", "ls", "--flow", ""], "--flow <id>"],
        [["backup", "--since", ""], "--since <file>"],
        [["migrate", "data", "up", "--dir", ""], "--dir <dir>"],
      ] as const
    ) {
      const r = await run(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`'${name}'`), `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /It is empty; give a value/);
    }
    // Nothing ran: no job (migrate, backup) was recorded.
    const runs = await run("runs", "ls", "--json");
    assert.equal(runs.code, 0, runs.stderr);
    assert.deepEqual(JSON.parse(runs.stdout), []);
  });
});

Deno.test("a store path that is a FIFO is refused at its place in the config (exit 2), not waited on forever", async () => {
  for (const [plugin, file] of [["sqlite", "state.db"], ["jsonfile", "state.json"]]) {
    await withSandbox(async ({ dir, run }) => {
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        `stores:\n  default: { plugin: ${plugin}, path: ${file} }\n`,
      );
      await mkfifo(join(dir, file));
      const r = await run("state", "ls");
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`flowstate.yaml:2:\\d+: .*${file} is a FIFO \\(named pipe\\), not a store file`),
      );
      assert.ok((await Deno.lstat(join(dir, file))).isFifo, "left as it is");
    });
  }
});
