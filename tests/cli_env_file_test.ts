/**
 * `NAME_FILE` through the CLI (Docker and Kubernetes secrets mounted as
 * files): a flow's `secrets:` and `env:` names and the config's `${env.X}`
 * read from the file a `NAME_FILE` variable names when `NAME` is unset; a
 * secret read so is masked like one from the environment; both set, or a
 * file that cannot be read as a value, stops before anything is written.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resultOf, type Sandbox, withSandbox } from "./_cli_sandbox.ts";
import { taskCommand } from "./_task_flags.ts";

const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));
/** With a `"` and a `/`, so that its JSON-escaped form differs from it. */
const SECRET = 'File"Secret/Value-77';
/** A part of the value no record may hold. */
const PART = 'File"Secret';

const SECRET_FLOW = `id: from-file
secrets: [API_TOKEN]
nodes:
  - id: say
    type: log
    with: { message: "token is \${{ secrets.API_TOKEN }}" }
  - id: keep
    type: transform
    with: { value: "\${{ base64(secrets.API_TOKEN) }}" }
  - id: len
    type: transform
    with: { value: "\${{ length(secrets.API_TOKEN) }}" }
outputs:
  length: "\${{ nodes.len.output }}"
  encoded: "\${{ nodes.keep.output }}"
`;

const ENV_FLOW = `id: env-file
env: [REGION]
nodes:
  - id: say
    type: log
    with: { message: "region \${{ env.REGION }}" }
outputs:
  region: "\${{ env.REGION }}"
`;

/** Every file under `dir`, as text. */
async function textsUnder(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) { for (const [p, t] of await textsUnder(path)) out.set(p, t); }
    else if (entry.isFile) {
      out.set(path, new TextDecoder("latin1").decode(await Deno.readFile(path)));
    }
  }
  return out;
}

async function write(sandbox: Sandbox, name: string, text: string | Uint8Array): Promise<string> {
  const path = join(sandbox.dir, name);
  if (typeof text === "string") await Deno.writeTextFile(path, text);
  else await Deno.writeFile(path, text);
  return path;
}

/** No run recorded, nothing written to the home but what opening it wrote. */
async function assertNothingRan(sandbox: Sandbox): Promise<void> {
  const ls = await sandbox.run("runs", "ls", "--json");
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(JSON.parse(ls.stdout), []);
}

Deno.test("cli: a secret read from NAME_FILE reaches its nodes and is masked everywhere", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, "flow.yaml", SECRET_FLOW);
    // Outside the project, as /run/secrets is; one trailing newline is not part of the value.
    const secrets = await Deno.makeTempDir({ prefix: "flowstate-secrets-" });
    try {
      const file = join(secrets, "api_token");
      await Deno.writeTextFile(file, `${SECRET}\n`);
      // Exactly as `deno task run` runs: its flags let the runner read the file.
      const output = await taskCommand(sandbox.dir, CLI, ["run", "flow.yaml", "--json"], {
        env: {
          NO_COLOR: "1",
          RUST_BACKTRACE: "0",
          // The task may write .flowstate only: the home is there.
          FLOWSTATE_HOME: ".flowstate",
          API_TOKEN_FILE: file,
        },
      }).output();
      const result = resultOf(output);
      assert.equal(result.code, 0, result.stderr);
      const record = JSON.parse(result.stdout);
      assert.equal(record.status, "succeeded");
      // The node got the value without its newline: its length, and its base64 masked.
      assert.equal(record.outputs.length, SECRET.length);
      assert.equal(record.outputs.encoded, "***");
      assert.ok(!result.stdout.includes(PART), result.stdout);
      assert.ok(!result.stderr.includes(PART), result.stderr);
      assert.ok(!result.stdout.includes(btoa(SECRET)), result.stdout);
      const home = join(sandbox.dir, ".flowstate");
      const shown = await sandbox.runWith(
        { FLOWSTATE_HOME: home },
        "runs",
        "show",
        record.id,
        "--json",
      );
      assert.equal(shown.code, 0, shown.stderr);
      assert.ok(!shown.stdout.includes(PART), shown.stdout);
      for (const [path, text] of await textsUnder(home)) {
        assert.ok(!text.includes(PART), `${path} holds the secret`);
        assert.ok(!text.includes(btoa(SECRET)), `${path} holds the secret's base64`);
      }
    } finally {
      await Deno.remove(secrets, { recursive: true });
    }
  });
});

Deno.test("cli: an env: variable read from NAME_FILE (CRLF ending) counts as set", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, "flow.yaml", ENV_FLOW);
    const file = await write(sandbox, "region.txt", "eu-west\r\n");
    // REGION is read bare (no default): unset, the run would not start.
    const unset = await sandbox.run("run", "flow.yaml");
    assert.equal(unset.code, 2, unset.stderr);
    const result = await sandbox.runWith({ REGION_FILE: file }, "run", "flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout).outputs, { region: "eu-west" });
  });
});

Deno.test("cli: a NAME_FILE written with a byte order mark (Notepad's UTF-8 with BOM) gives the value without it", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, "flow.yaml", ENV_FLOW);
    const file = await write(sandbox, "region.txt", "\uFEFFeu-west\r\n");
    const result = await sandbox.runWith({ REGION_FILE: file }, "run", "flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout).outputs, { region: "eu-west" });
  });
});

Deno.test("cli: NAME and NAME_FILE both set is an error naming both (exit 2, nothing run)", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, "flow.yaml", SECRET_FLOW);
    const file = await write(sandbox, "token", SECRET);
    const result = await sandbox.runWith(
      { API_TOKEN: "another-value", API_TOKEN_FILE: file },
      "run",
      "flow.yaml",
    );
    assert.equal(result.code, 2, result.stderr);
    assert.equal(
      result.stderr.trim(),
      "error: flow.yaml:2:11: secrets[0]: secret API_TOKEN: both API_TOKEN and API_TOKEN_FILE are set: unset one (API_TOKEN_FILE names a file whose content is the value of API_TOKEN)",
    );
    await write(sandbox, "env.yaml", ENV_FLOW);
    const env = await sandbox.runWith({ REGION: "eu", REGION_FILE: file }, "run", "env.yaml");
    assert.equal(env.code, 2, env.stderr);
    assert.match(
      env.stderr,
      /^error: env\.yaml:2:7: env\[0\]: env REGION: both REGION and REGION_FILE are set/,
    );
    // Said once: not "not set" as well.
    const gone = join(sandbox.dir, "gone");
    const missing = await sandbox.runWith({ REGION_FILE: gone }, "run", "env.yaml");
    assert.equal(missing.code, 2, missing.stderr);
    assert.equal(
      missing.stderr.trim(),
      `error: env.yaml:2:7: env[0]: env REGION: REGION_FILE=${gone}: the file does not exist (the value of REGION is read from it)`,
    );
    await assertNothingRan(sandbox);
  });
});

Deno.test("cli: a NAME_FILE that cannot be read says the variable, the path and what is wrong (exit 2)", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, "flow.yaml", SECRET_FLOW);
    const missing = join(sandbox.dir, "no-such-file");
    const big = await write(sandbox, "big", "x".repeat(64 * 1024 + 1));
    const latin1 = await write(sandbox, "latin1", new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x21]));
    const cases: [string, string][] = [
      [missing, "the file does not exist"],
      [sandbox.dir, "not a regular file (a folder)"],
      [big, "the file is 65537 bytes, over the limit of 65536 (64 KiB)"],
      [latin1, "the file is not UTF-8 text"],
    ];
    for (const [path, what] of cases) {
      const result = await sandbox.runWith({ API_TOKEN_FILE: path }, "run", "flow.yaml");
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr.trim(),
        `error: flow.yaml:2:11: secrets[0]: secret API_TOKEN: API_TOKEN_FILE=${path}: ${what} (the value of API_TOKEN is read from it)`,
      );
    }
    await assertNothingRan(sandbox);
  });
});

Deno.test("cli: the config's ${env.X} is read from X_FILE when X is unset", async () => {
  await withSandbox(async (sandbox) => {
    await write(
      sandbox,
      "flow.yaml",
      ENV_FLOW.replace("env: [REGION]\n", "").replaceAll("env.REGION", "'x'"),
    );
    await write(
      sandbox,
      "flowstate.yaml",
      'stores:\n  default: { plugin: sqlite, path: "${env.STATE_PATH}" }\n',
    );
    const db = join(sandbox.dir, "from-file.db");
    const pathFile = await write(sandbox, "state_path", `${db}\n`);
    const result = await sandbox.runWith({ STATE_PATH_FILE: pathFile }, "run", "flow.yaml");
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      new RegExp(`^store: +default \\(sqlite\\) ${RegExp.escape(db)}$`, "m"),
    );
    await Deno.stat(db);
    // Both set: an error at the value's place, nothing run.
    const both = await sandbox.runWith(
      { STATE_PATH: db, STATE_PATH_FILE: pathFile },
      "run",
      "flow.yaml",
    );
    assert.equal(both.code, 2, both.stderr);
    assert.match(
      both.stderr,
      /^error: flowstate\.yaml:2:36: stores\.default\.path: cannot substitute \$\{env\.STATE_PATH\}: both STATE_PATH and STATE_PATH_FILE are set/,
    );
    const gone = await sandbox.runWith(
      { STATE_PATH_FILE: join(sandbox.dir, "gone") },
      "run",
      "flow.yaml",
    );
    assert.equal(gone.code, 2, gone.stderr);
    assert.ok(
      gone.stderr.includes(`STATE_PATH_FILE=${join(sandbox.dir, "gone")}: the file does not exist`),
      gone.stderr,
    );
  });
});

Deno.test("cli: a secret file's trailing spaces do not unmask it where a program trims them (an unquoted echo)", async () => {
  await withSandbox(async (sandbox) => {
    await write(
      sandbox,
      "flow.yaml",
      `id: spaced
secrets: [API_TOKEN]
nodes:
  - id: say
    type: exec
    permissions: { run: [sh] }
    with: { command: sh, args: ["-c", "echo \${{ secrets.API_TOKEN }}"] }
`,
    );
    // Written with a space before its newline, as \`echo "token " > file\` does.
    const file = await write(sandbox, "token", "Spaced-Secret-99 \n");
    const result = await sandbox.runWith({ API_TOKEN_FILE: file }, "run", "flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout);
    assert.equal(record.nodes.say.output.stdout, "***\n");
    assert.ok(!result.stdout.includes("Spaced-Secret"), result.stdout);
    assert.ok(!result.stderr.includes("Spaced-Secret"), result.stderr);
    for (const [path, text] of await textsUnder(sandbox.home)) {
      assert.ok(!text.includes("Spaced-Secret"), `${path} holds the secret`);
    }
  });
});
