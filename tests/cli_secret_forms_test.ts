/**
 * Secrets in forms the records used to show through the CLI: a secret of
 * several lines (a PEM key) that a program prints line by line (its stderr log
 * lines, `stdout: lines`), a secret that is a number read by `number()` or
 * `fromJson()`, and a long secret quoted, cut, by a function's error. None of
 * it reaches the run's output, its record, its events or the log lines.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Result, type Sandbox, withSandbox } from "./_cli_sandbox.ts";

const PEM_LINES = [
  "-----BEGIN TEST KEY-----",
  "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
  "c2VjcmV0LWxpbmUtdHdv",
];
const PEM = PEM_LINES.join("\n");
const PIN = "83746251";
const LONG = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ";

const HEAD = `id: forms
secrets: [PEM, PIN, LONG]
nodes:
`;

const PEM_NODE = `  - id: said
    type: exec
    permissions: { run: [sh] }
    with:
      command: sh
      args: [-c, 'printf "%s\\n" "$KEY" >&2; printf "%s\\n" "$KEY"']
      env: { KEY: "\${{ secrets.PEM }}" }
      stdout: lines
`;

const NUMBER_NODE = `  - id: numbers
    type: transform
    with: { value: { n: "\${{ number(secrets.PIN) }}", j: "\${{ fromJson(secrets.PIN) }}", in: "\${{ [fromJson(secrets.PIN) + 1] }}" } }
`;

const QUOTE_NODES = `  - id: bad
    type: log
    continueOnError: true
    with: { message: "\${{ number(secrets.LONG) }}" }
  - id: date
    type: log
    continueOnError: true
    with: { message: "\${{ parseDate(secrets.LONG) }}" }
`;

function assertNoSecret(text: string, where: string): void {
  for (const piece of [...PEM_LINES, PIN, LONG.slice(0, 10)]) {
    assert.ok(!text.includes(piece), `${where} holds ${JSON.stringify(piece)}:\n${text}`);
  }
}

async function run(sandbox: Sandbox, ...args: string[]): Promise<Result> {
  return await sandbox.runWith({ PEM, PIN, LONG }, ...args);
}

/** Runs `HEAD` + `nodes`, checks that no secret is shown anywhere; returns the run's record. */
async function runMasked(nodes: string): Promise<Record<string, Record<string, unknown>>> {
  let record: Record<string, Record<string, unknown>> = {};
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(join(sandbox.dir, "forms.flow.yaml"), HEAD + nodes);
    const result = await run(sandbox, "run", "forms.flow.yaml", "--json", "--log-format", "json");
    assert.equal(result.code, 0, result.stderr);
    record = JSON.parse(result.stdout);
    assertNoSecret(result.stdout, "run --json");
    assertNoSecret(result.stderr, "run's log lines");
    const shown = await run(sandbox, "runs", "show", String(record.id), "--json");
    assert.equal(shown.code, 0, shown.stderr);
    assertNoSecret(shown.stdout, "runs show --json");
    const text = await run(sandbox, "runs", "show", String(record.id));
    assertNoSecret(text.stdout, "runs show");
  });
  return record;
}

Deno.test("cli: a secret of several lines a program prints line by line is masked in its log lines and stdout: lines", async () => {
  const record = await runMasked(PEM_NODE);
  // The program got the key: only the records mask it.
  assert.deepEqual((record.nodes.said as { output: unknown }).output, {
    code: 0,
    stdout: ["***", "***", "***"],
    stderr: "***\n",
  });
});

Deno.test("cli: a secret read as a number by number() or fromJson() is masked where it is a value", async () => {
  const record = await runMasked(NUMBER_NODE);
  // The node got the number (one more than it is 83746252, not the secret).
  assert.deepEqual((record.nodes.numbers as { output: unknown }).output, {
    n: "***",
    j: "***",
    in: [83746252],
  });
});

Deno.test("cli: number() and parseDate() of a long secret quote it masked, not cut", async () => {
  const record = await runMasked(QUOTE_NODES);
  const nodes = record.nodes as Record<string, { error: string }>;
  assert.match(nodes.bad.error, /number\(\) cannot read "\*\*\*" as a number/);
  assert.match(nodes.date.error, /parseDate\(\) cannot read "\*\*\*" as a date/);
});

Deno.test("cli: an error that quotes a program's output cut in the middle of a secret shows none of it", async () => {
  // stdout: json of text that is not JSON quotes its first 300 characters: the secret starts at 290.
  const record = await runMasked(`  - id: cut
    type: exec
    permissions: { run: [sh] }
    continueOnError: true
    with:
      command: sh
      args: [-c, 'printf "%0290d%s" 0 "$LONG"']
      env: { LONG: "\${{ secrets.LONG }}" }
      stdout: json
`);
  const nodes = record.nodes as Record<string, { error: string }>;
  assert.match(nodes.cut.error, /stdout is not JSON .*"0{290}\*\*\*…"$/);
});

Deno.test("cli: a long value derived from a secret is masked, and the run goes on", async () => {
  // upper() of 200,000 characters holding a secret: a form too long for a regular expression.
  const record = await runMasked(`  - id: long
    type: transform
    with: { value: "\${{ upper(join(range(20), padStart('', 10000, 'a')) + secrets.LONG) }}" }
  - id: after
    type: log
    needs: [long]
    with: { message: "after the long value..." }
`);
  assert.equal(record.status, "succeeded");
  const nodes = record.nodes as Record<string, { output: unknown }>;
  assert.equal(nodes.long.output, "***");
  assert.equal(nodes.after.output, "after the long value...");
});

Deno.test("cli: a slice of a secret that cuts a character in two is masked, not a 'URI malformed' error", async () => {
  let record: Record<string, unknown> = {};
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(
      join(sandbox.dir, "cut.flow.yaml"),
      `id: cut\nsecrets: [EMO]\nnodes:\n  - id: a\n    type: transform\n    with: { value: "\${{ slice(secrets.EMO, 0, 6) }}" }\n`,
    );
    const result = await sandbox.runWith({ EMO: "abcde😀fghij" }, "run", "cut.flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    record = JSON.parse(result.stdout);
  });
  assert.equal((record.nodes as Record<string, { output: unknown }>).a.output, "***");
});
