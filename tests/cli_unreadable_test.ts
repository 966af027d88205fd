/**
 * Files the file system will not let the process read (their mode or owner,
 * not Deno's --allow-read): a flow file, a node module, the config and a
 * store's file each give what, where and how to fix through the CLI, with the
 * exit code of their kind, and nothing stored is lost; init into a folder it
 * may not write says so once. As root the CLI runs
 * without the capabilities that bypass file modes (setpriv).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliArgv, type Result, withSandbox } from "./_cli_sandbox.ts";
import { outputOf } from "./_deadline.ts";

function lines(stderr: string): string[] {
  return stderr.trim().split("\n");
}

/** setpriv, which lets root drop the capabilities that bypass file modes. */
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});
/** Root without setpriv reads every file: a read the file system refuses cannot be arranged. */
const CANNOT_BE_REFUSED = Deno.uid() === 0 && SETPRIV === undefined;

/**
 * `flowstate <args>` in `dir` as a process the file system may refuse a read:
 * root keeps its files but loses the capabilities that bypass their modes.
 */
async function runUnprivileged(dir: string, args: string[]): Promise<Result> {
  let command = cliArgv(args);
  if (Deno.uid() === 0) {
    const caps = "-dac_override,-dac_read_search";
    command = [SETPRIV!, `--inh-caps=${caps}`, `--bounding-set=${caps}`, ...command];
  }
  const child = new Deno.Command(command[0], {
    args: command.slice(1),
    cwd: dir,
    env: { FLOWSTATE_HOME: join(dir, "home"), NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { code, stdout, stderr } = await outputOf(child);
  return { code, stdout, stderr };
}

Deno.test({
  name:
    "a flow file the file system will not let the process read: what, where and how to fix, and validate goes on with the other files",
  ignore: CANNOT_BE_REFUSED,
  fn: async () => {
    await withSandbox(async ({ dir, home }) => {
      await Deno.mkdir(join(dir, "flows"));
      const flow = (id: string) =>
        `id: ${id}\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n`;
      await Deno.writeTextFile(join(dir, "flows", "a.flow.yaml"), flow("a"));
      await Deno.writeTextFile(join(dir, "flows", "b.flow.yaml"), flow("b"));
      await Deno.writeTextFile(join(dir, "flows", "c.flow.yaml"), flow("c"));
      await Deno.chmod(join(dir, "flows", "b.flow.yaml"), 0o000);
      const message = `Cannot load flow: the file system denies this process reading ${
        join(dir, "flows", "b.flow.yaml")
      }; make it readable by the user Flowstate runs as (chmod a+r, or chown), or run as one who may read it`;
      const run = await runUnprivileged(dir, ["run", "flows/b.flow.yaml"]);
      assert.equal(run.code, 2, run.stderr);
      assert.equal(run.stderr.trim(), `error: flows/b.flow.yaml: ${message}`);
      const validate = await runUnprivileged(dir, ["validate", "flows"]);
      assert.equal(validate.code, 2, validate.stderr);
      assert.equal(
        validate.stderr.trim(),
        `error: flows/b.flow.yaml: ${message}`,
      );
      assert.match(validate.stdout, /^ok .*a\.flow\.yaml$/m);
      assert.match(validate.stdout, /^ok .*c\.flow\.yaml$/m, "the file after it is checked too");
      await assert.rejects(Deno.stat(home), Deno.errors.NotFound, "nothing was written");
      await Deno.chmod(join(dir, "flows", "b.flow.yaml"), 0o644);
    });
  },
});

Deno.test({
  name:
    "a node module the file system will not let the process read: what, where and how to fix, in a Worker or trusted",
  ignore: CANNOT_BE_REFUSED,
  fn: async () => {
    await withSandbox(async ({ dir, home }) => {
      await Deno.mkdir(join(dir, "nodes"));
      for (const name of ["sandboxed", "trusted"]) {
        await Deno.writeTextFile(join(dir, "nodes", `${name}.ts`), "export default 1;\n");
        await Deno.chmod(join(dir, "nodes", `${name}.ts`), 0o000);
      }
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        "stores:\n  main: { plugin: memory }\nnodes:\n  trusted: [./nodes/trusted.ts]\n",
      );
      await Deno.writeTextFile(
        join(dir, "m.flow.yaml"),
        "id: m\nnodes:\n  - id: a\n    type: ./nodes/sandboxed.ts\n  - id: b\n    type: ./nodes/trusted.ts\n",
      );
      const denied = (name: string) =>
        `cannot load node module ./nodes/${name}.ts: the file system denies this process reading ${
          join(dir, "nodes", `${name}.ts`)
        }; make it readable by the user Flowstate runs as (chmod a+r, or chown), or run as one who may read it`;
      for (const command of ["validate", "run"]) {
        const result = await runUnprivileged(dir, [command, "m.flow.yaml"]);
        assert.equal(result.code, 2, result.stderr);
        assert.deepEqual(lines(result.stderr), [
          `error: m.flow.yaml:4:11: nodes[0].type: ${denied("sandboxed")}`,
          `error: m.flow.yaml:6:11: nodes[1].type: ${denied("trusted")}`,
        ]);
      }
      await assert.rejects(Deno.stat(home), Deno.errors.NotFound, "nothing was written");
      for (const name of ["sandboxed", "trusted"]) {
        await Deno.chmod(join(dir, "nodes", `${name}.ts`), 0o644);
      }
    });
  },
});

Deno.test({
  name: "a config file the file system will not let the process read: the path and how to fix",
  ignore: CANNOT_BE_REFUSED,
  fn: async () => {
    await withSandbox(async ({ dir, home }) => {
      await Deno.writeTextFile(
        join(dir, "flowstate.yaml"),
        "stores:\n  main: { plugin: memory }\n",
      );
      await Deno.chmod(join(dir, "flowstate.yaml"), 0o000);
      const result = await runUnprivileged(dir, ["runs", "ls"]);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr.trim(),
        `error: Cannot read config file flowstate.yaml: the file system denies this process reading ${
          join(dir, "flowstate.yaml")
        }; make it readable by the user Flowstate runs as (chmod a+r, or chown), or run as one who may read it`,
      );
      await assert.rejects(Deno.stat(home), Deno.errors.NotFound, "nothing was written");
      await Deno.chmod(join(dir, "flowstate.yaml"), 0o644);
    });
  },
});

Deno.test({
  name:
    "a store file the file system will not let the process read (sqlite, jsonfile): the path and how to fix, and the file is kept",
  ignore: CANNOT_BE_REFUSED,
  fn: async () => {
    await withSandbox(async ({ dir, run }) => {
      for (const [plugin, file] of [["sqlite", "state.db"], ["jsonfile", "state.json"]]) {
        await Deno.writeTextFile(
          join(dir, "flowstate.yaml"),
          `stores:\n  main: { plugin: ${plugin}, path: ${file} }\n`,
        );
        const set = await run("state", "set", "kept", "1");
        assert.equal(set.code, 0, set.stderr);
        const before = await Deno.readFile(join(dir, file));
        await Deno.chmod(join(dir, file), 0o000);
        for (const args of [["state", "ls"], ["state", "set", "other", "2"]]) {
          const result = await runUnprivileged(dir, args);
          assert.equal(result.code, 1, result.stderr);
          assert.match(
            result.stderr,
            new RegExp(
              `^error: .*Cannot open store "main".*: the file system denies this process reading ${
                join(dir, file).replaceAll(".", "\\.")
              }; make it readable by the user Flowstate runs as \\(chmod a\\+r, or chown\\)`,
            ),
            `${plugin} ${args.join(" ")}`,
          );
        }
        await Deno.chmod(join(dir, file), 0o644);
        assert.deepEqual(await Deno.readFile(join(dir, file)), before, `${plugin}: untouched`);
        const get = await run("state", "get", "kept");
        assert.equal(get.stdout.trim(), "1");
      }
    });
  },
});

Deno.test({
  name:
    "init into a folder the file system will not let the process write: one error, how to fix, exit 1",
  ignore: CANNOT_BE_REFUSED,
  fn: async () => {
    await withSandbox(async ({ dir }) => {
      await Deno.mkdir(join(dir, "locked"));
      await Deno.chmod(join(dir, "locked"), 0o555);
      const result = await runUnprivileged(dir, ["init", "locked/proj"]);
      assert.equal(result.code, 1, result.stderr);
      assert.deepEqual(lines(result.stderr).length, 1, result.stderr);
      assert.match(
        result.stderr,
        /^error: cannot write the project into locked\/proj, nothing was written: .*[Pp]ermission denied.*; give init a folder this process may write\n$/,
      );
      assert.equal(result.stdout, "");
      await Deno.chmod(join(dir, "locked"), 0o755);
      assert.deepEqual([...Deno.readDirSync(join(dir, "locked"))], []);
    });
  },
});
