/**
 * A flow's `secrets:` through the CLI: the value reaches the nodes that use
 * it and is found nowhere the run is recorded or shown (stdout, stderr, the
 * sqlite store's files, `runs show --json`, an archive), and bad uses are
 * refused with their place.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Result, type Sandbox, withSandbox } from "./_cli_sandbox.ts";

const MOD = JSON.stringify(new URL("../mod.ts", import.meta.url).href);
/** With a `"` and a `/`, so that its JSON-escaped form differs from it. */
const SECRET = 'Sup3r"Secret/Value-42';
/** A part of the value no record may hold either. */
const PART = "Sup3r";

/** A custom node (a sandboxed Worker): echoes `token`, logs it and, with `fail`, throws it. */
const NODE = `import { defineNode } from ${MOD};
import { z } from "zod";
export default defineNode({
  optionsSchema: z.strictObject({ token: z.string(), fail: z.boolean().default(false) }),
  run(ctx, { token, fail }) {
    ctx.log("custom node got " + token);
    if (fail) throw new Error("rejected " + JSON.stringify({ token }));
    // What the node got: its length proves the real value reached it.
    return { token, length: token.length };
  },
});
`;

const SUB_FLOW = `id: sub
inputs:
  auth: { type: string }
nodes:
  - { id: show, type: log, with: { message: "sub got \${{ inputs.auth }}" } }
  - { id: keep, type: transform, with: { value: "\${{ inputs.auth }}" } }
outputs:
  kept: "\${{ nodes.keep.output }}"
`;

const MAIN_FLOW = `id: main
secrets: [API_TOKEN]
nodes:
  - id: say
    type: log
    with: { message: "token is \${{ secrets.API_TOKEN }}" }
  - id: header
    type: transform
    with: { value: { authorization: "Bearer \${{ secrets.API_TOKEN }}" } }
  - id: custom
    type: ./node.ts
    needs: [header]
    with: { token: "\${{ nodes.header.output.authorization }}" }
  - id: sub
    type: flow
    with: { flow: ./sub.flow.yaml, input: { auth: "\${{ secrets.API_TOKEN }}" } }
outputs:
  header: "\${{ nodes.header.output }}"
  length: "\${{ nodes.custom.output.length }}"
  sub: "\${{ nodes.sub.output }}"
`;

const FAILING_FLOW = `id: failing
secrets: [API_TOKEN]
nodes:
  - id: custom
    type: ./node.ts
    with: { token: "\${{ secrets.API_TOKEN }}", fail: true }
`;

/** Write the flow file `name` and run it with the secret set; nothing it prints holds the secret. */
async function runWritten(sandbox: Sandbox, name: string, yaml: string): Promise<Result> {
  await Deno.writeTextFile(join(sandbox.dir, name), yaml);
  const result = await sandbox.runWith({ API_TOKEN: SECRET }, "run", name, "--json");
  assertNoSecretIn(result, `run ${name}`);
  return result;
}

async function setUp(sandbox: Sandbox): Promise<void> {
  const files = {
    "node.ts": NODE,
    "sub.flow.yaml": SUB_FLOW,
    "main.flow.yaml": MAIN_FLOW,
    "failing.flow.yaml": FAILING_FLOW,
  };
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(join(sandbox.dir, name), text);
  }
}

function assertNoSecret(text: string, where: string): void {
  assert.ok(!text.includes(PART), `${where} holds the secret:\n${text}`);
}

function assertNoSecretIn(result: Result, where: string): void {
  assertNoSecret(result.stdout, `${where}: stdout`);
  assertNoSecret(result.stderr, `${where}: stderr`);
}

/** Every file under `dir` (gzip'd ones decompressed), as text. */
async function filesUnder(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      for (const [p, text] of await filesUnder(path)) out.set(p, text);
    } else if (entry.isFile) {
      let bytes = await Deno.readFile(path);
      if (entry.name.endsWith(".gz")) {
        const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
        bytes = new Uint8Array(await new Response(stream).arrayBuffer());
      }
      out.set(path, new TextDecoder("latin1").decode(bytes));
    }
  }
  return out;
}

Deno.test("cli: a secret reaches its nodes and is masked in everything recorded and shown", async () => {
  await withSandbox(async (sandbox) => {
    await setUp(sandbox);
    const env = { API_TOKEN: SECRET };
    const ok = await sandbox.runWith(env, "run", "main.flow.yaml");
    assert.equal(ok.code, 0, ok.stderr);
    assertNoSecretIn(ok, "run main");
    const json = await sandbox.runWith(env, "run", "main.flow.yaml", "--json");
    assert.equal(json.code, 0, json.stderr);
    assertNoSecretIn(json, "run main --json");
    const record = JSON.parse(json.stdout);
    assert.equal(record.status, "succeeded");
    // The custom node got the real value (its length), the records say ***.
    assert.equal(record.outputs.length, `Bearer ${SECRET}`.length);
    assert.deepEqual(record.outputs.header, { authorization: "Bearer ***" });
    assert.deepEqual(record.outputs.sub, { kept: "***" });
    assert.match(ok.stderr, /\[say\] token is \*\*\*$/m);
    assert.match(ok.stderr, /\[custom\] custom node got Bearer \*\*\*$/m);
    assert.match(ok.stderr, /\[sub\/show\] sub got \*\*\*$/m);

    const failed = await sandbox.runWith(env, "run", "failing.flow.yaml", "--json");
    assert.equal(failed.code, 1, failed.stderr);
    assertNoSecretIn(failed, "run failing");
    const failedRecord = JSON.parse(failed.stdout);
    assert.equal(failedRecord.error.message, 'rejected {"token":"***"}');

    for (const id of [record.id, failedRecord.id]) {
      const shown = await sandbox.run("runs", "show", id, "--json");
      assert.equal(shown.code, 0, shown.stderr);
      assertNoSecretIn(shown, `runs show ${id}`);
      const text = await sandbox.run("runs", "show", id);
      assertNoSecretIn(text, `runs show ${id} (text)`);
    }
    const shown = JSON.parse((await sandbox.run("runs", "show", record.id, "--json")).stdout);
    assert.ok(JSON.stringify(shown).includes("token is ***"), "the log line, masked, is kept");

    // The sub-run's record: its input held the secret.
    const runs = await sandbox.run("runs", "ls", "--json");
    assertNoSecretIn(runs, "runs ls");
    const sub = (JSON.parse(runs.stdout) as { id: string; flowId: string }[])
      .find((r) => r.flowId === "sub")!;
    const subShown = await sandbox.run("runs", "show", sub.id, "--json");
    assert.equal(subShown.code, 0, subShown.stderr);
    assertNoSecretIn(subShown, "runs show of the sub-run");
    assert.deepEqual(JSON.parse(subShown.stdout).run.inputs, { auth: "***" });

    // The store's files (the sqlite database and its journal), then the archive.
    for (const [path, text] of await filesUnder(sandbox.home)) assertNoSecret(text, path);
    assert.ok(
      [...(await filesUnder(sandbox.home)).values()].some((t) => t.includes("token is ***")),
      "the store is readable as text (else the search above proves nothing)",
    );
    const archive = await sandbox.run(
      "jobs",
      "run",
      "archive",
      "--option",
      "olderThan=0",
      "--json",
      "--quiet",
    );
    assert.equal(archive.code, 0, archive.stderr);
    assert.ok(JSON.parse(archive.stdout).outputs.archived >= 5, archive.stdout);
    const archived = [...(await filesUnder(join(sandbox.home, "archive"))).entries()];
    assert.ok(archived.some(([, text]) => text.includes("token is ***")), "archived runs");
    for (const [path, text] of archived) assertNoSecret(text, path);
  });
});

Deno.test("cli: a queue node may not pass a secret's value to the queue", async () => {
  await withSandbox(async (sandbox) => {
    await setUp(sandbox);
    const result = await runWritten(
      sandbox,
      "enqueue.flow.yaml",
      `id: enqueue
secrets: [API_TOKEN]
nodes:
  - id: later
    type: queue
    with: { flow: ./sub.flow.yaml, input: { auth: "x-\${{ secrets.API_TOKEN }}" } }
`,
    );
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      JSON.parse(result.stdout).error.message,
      /^Cannot queue a run of \.\/sub\.flow\.yaml: its input or key holds a secret's value, which the queue would store in the clear; declare the secret under secrets: of the queued flow/,
    );
    for (const [path, text] of await filesUnder(sandbox.home)) assertNoSecret(text, path);
  });
});

Deno.test("cli: a secret not set, or too short, stops the run before it starts (exit 2)", async () => {
  await withSandbox(async (sandbox) => {
    await setUp(sandbox);
    const unset = await sandbox.run("run", "main.flow.yaml");
    assert.equal(unset.code, 2, unset.stderr);
    assert.equal(
      unset.stderr.trim(),
      "error: main.flow.yaml:2:11: secrets[0]: secret API_TOKEN is not set: export it (export API_TOKEN=…), or name a file holding it with API_TOKEN_FILE, before running; a secret has no fallback",
    );
    const short = await sandbox.runWith({ API_TOKEN: "abc" }, "run", "main.flow.yaml");
    assert.equal(short.code, 2, short.stderr);
    assert.match(
      short.stderr,
      /^error: main\.flow\.yaml:2:11: secrets\[0\]: secret API_TOKEN is 3 character\(s\) long, under 4: .*use a longer secret/,
    );
    assert.equal((await sandbox.run("runs", "ls", "--json")).stdout.trim(), "[]");
  });
});

Deno.test("cli: validate places each misuse of secrets with a hint", async () => {
  await withSandbox(async (sandbox) => {
    const flow = `id: bad
env: [REGION, API_TOKEN]
secrets: [API_TOKEN, DB_PASSWORD]
inputs:
  k: { type: string }
queue:
  concurrency: 1
  by: "\${{ secrets.API_TOKEN }}"
nodes:
  - id: a
    type: log
    with: { message: "\${{ secrets.API_TOKNE }} \${{ secrets.NOPE }}" }
  - id: b
    type: log
    with: { message: "\${{ secrets[inputs.k] }}" }
outputs:
  leak: "\${{ secrets.DB_PASSWORD }}"
`;
    await Deno.writeTextFile(join(sandbox.dir, "bad.flow.yaml"), flow);
    const result = await sandbox.run("validate", "bad.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    const errors = result.stdout.concat(result.stderr).split("\n").filter((l) =>
      l.startsWith("error:")
    );
    assert.deepEqual(errors, [
      "error: bad.flow.yaml:3:11: secrets[0]: API_TOKEN is listed under both env: and secrets:; a secret read as env.API_TOKEN would not be masked: remove it from env: and read it as secrets.API_TOKEN",
      "error: bad.flow.yaml:8:7: queue.by: queue.by reads secrets.API_TOKEN, which it may not: it is computed at enqueue and stored with the queued run, in the clear; read secrets only in a node's with: or if:",
      'error: bad.flow.yaml:12:22: nodes[0].with.message: node "a" reads secrets.API_TOKNE, which is not listed under secrets (did you mean "API_TOKEN"?)',
      'error: bad.flow.yaml:12:22: nodes[0].with.message: node "a" reads secrets.NOPE, which is not listed under secrets; add NOPE to secrets',
      "error: bad.flow.yaml:15:35: nodes[1].with.message: Cannot parse ${{ secrets[inputs.k] }}: a secret must be named literally, as in secrets.NAME or secrets['NAME']",
      "error: bad.flow.yaml:17:9: outputs.leak: output \"leak\" reads secrets.DB_PASSWORD, which it may not: a run's outputs leave it (recorded, returned to its caller) and would only ever hold ***; read secrets only in a node's with: or if:",
    ]);
  });
});

Deno.test("cli: flowstate schema knows secrets:", async () => {
  await withSandbox(async (sandbox) => {
    const result = await sandbox.run("schema");
    assert.equal(result.code, 0, result.stderr);
    const schema = JSON.parse(result.stdout);
    assert.equal(schema.properties.secrets.type, "array");
    assert.match(schema.properties.secrets.description, /secrets\.NAME/);
  });
});

Deno.test("cli: an http node's Authorization header built from a secret is masked in its recorded error", async () => {
  // Answers 401 quoting the header it got, JSON-escaped (a form the http node's own scrub
  // of its request's secrets does not look for).
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req) =>
      Response.json({ error: `bad credentials: ${req.headers.get("authorization")}` }, {
        status: 401,
      }),
  );
  try {
    await withSandbox(async (sandbox) => {
      const result = await runWritten(
        sandbox,
        "call.flow.yaml",
        `id: call
secrets: [API_TOKEN]
nodes:
  - id: call
    type: http
    permissions: { net: ["127.0.0.1"] }
    with:
      url: http://127.0.0.1:${server.addr.port}/api
      headers: { Authorization: "Bearer \${{ secrets.API_TOKEN }}" }
`,
      );
      assert.equal(result.code, 1, result.stderr);
      const record = JSON.parse(result.stdout);
      assert.match(record.error.message, /401/);
      assert.match(record.error.message, /bad credentials: Bearer \*\*\*/);
      const shown = await sandbox.run("runs", "show", record.id, "--json");
      assertNoSecretIn(shown, "runs show");
      for (const [path, text] of await filesUnder(sandbox.home)) assertNoSecret(text, path);
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("cli: validate lists a flow's secrets and the nodes they reach through with:", async () => {
  await withSandbox(async (sandbox) => {
    await setUp(sandbox);
    const result = await sandbox.run("validate", "main.flow.yaml");
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^ {2}secrets: API_TOKEN \(read from the runner's environment; their values are masked as \*\*\* in everything runs record\)$/m,
    );
    // The custom node reads the header node's output, which holds the secret.
    assert.match(
      result.stdout,
      /^ {2}custom \(\.\/node\.ts\): .*receives env through with: API_TOKEN/m,
    );
    const json = JSON.parse((await sandbox.run("validate", "main.flow.yaml", "--json")).stdout);
    const custom = json[0].nodes.find((n: { id: string }) => n.id === "custom");
    assert.deepEqual(custom.withEnv, ["API_TOKEN"]);
  });
});
