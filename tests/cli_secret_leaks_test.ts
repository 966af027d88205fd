/**
 * Secrets in forms the records showed: a secret in the form a URL's query or an HTML form encodes it
 * (`application/x-www-form-urlencoded`: a space as `+`, `!'()~` as `%21`…),
 * which is not `encodeURIComponent`'s: the `http` node appends its `query:`
 * that way, and its error quotes the URL; and a cut of a secret V8 quotes
 * when `fromJson()` cannot parse it; a log line or error cut to its size in
 * the middle of a secret (` … (cut: N bytes…)`, `"... 590 more characters`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";

const TOKEN = "pa ss!w(o)rd~'x";
const FORM = new URLSearchParams({ q: TOKEN }).toString().slice(2);

Deno.test("cli: a secret form-encoded in an http node's query (a space as +, ! as %21) is masked in its error", async () => {
  assert.equal(FORM, "pa+ss%21w%28o%29rd%7E%27x");
  await withSandbox(async (sandbox) => {
    // Port 9 is one Deno's fetch refuses at once: the node fails quoting its URL.
    await Deno.writeTextFile(
      join(sandbox.dir, "form.flow.yaml"),
      `id: form
secrets: [TOKEN]
nodes:
  - id: call
    type: http
    continueOnError: true
    permissions: { net: ["127.0.0.1:9"] }
    with:
      url: http://127.0.0.1:9/x
      query: { q: "\${{ secrets.TOKEN }}" }
`,
    );
    const result = await sandbox.runWith({ TOKEN }, "run", "form.flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout);
    const error = record.nodes.call.error as string;
    assert.match(error, /\?q=\*\*\*/);
    for (const [where, text] of [["run --json", result.stdout], ["stderr", result.stderr]]) {
      assert.ok(!text.includes(FORM), `${where} holds the form-encoded secret:\n${text}`);
    }
    const shown = await sandbox.runWith({ TOKEN }, "runs", "show", record.id, "--json");
    assert.equal(shown.code, 0, shown.stderr);
    assert.ok(!shown.stdout.includes(FORM), shown.stdout);
  });
});

Deno.test("cli: fromJson() of a secret that is not JSON does not quote a cut of it in its error", async () => {
  // V8's message quotes 10 characters around the unexpected token: here the key's first ones.
  const KEY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
  const CRED = `{"client_email":"svc@example.iam","private_key": ${KEY}}`;
  const LONG = "abcdefghijklmnopqrstuvwxyz0123456789";
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(
      join(sandbox.dir, "json.flow.yaml"),
      `id: json
secrets: [CRED, LONG]
nodes:
  - id: cred
    type: transform
    continueOnError: true
    with: { value: "\${{ fromJson(secrets.CRED) }}" }
  - id: long
    type: transform
    continueOnError: true
    with: { value: "\${{ fromJson(secrets.LONG) }}" }
`,
    );
    const result = await sandbox.runWith({ CRED, LONG }, "run", "json.flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    const nodes = JSON.parse(result.stdout).nodes;
    for (const id of ["cred", "long"]) {
      assert.match(
        nodes[id].error,
        /fromJson\(\) got text that is not JSON: Unexpected token in JSON \(not quoted: the text holds a secret\)$/,
      );
    }
    for (const piece of [KEY.slice(0, 6), LONG.slice(0, 6)]) {
      assert.ok(!result.stdout.includes(piece), `run --json holds ${piece}:\n${result.stdout}`);
      assert.ok(!result.stderr.includes(piece), `stderr holds ${piece}:\n${result.stderr}`);
    }
  });
});

Deno.test("cli: a log line or error cut to its size in the middle of a secret shows none of it", async () => {
  // 600 characters, no 12 of them found twice: any piece of it is seen.
  const LONG = Array.from({ length: 300 }, (_, i) => "QWERTYUIOPLKJHGF"[i % 16] + (i % 10)).join(
    "",
  );
  await withSandbox(async (sandbox) => {
    await Deno.mkdir(join(sandbox.dir, "nodes"));
    // The secret starts 16,100 characters in: a line is cut to 16 KiB with its note, in it.
    await Deno.writeTextFile(
      join(sandbox.dir, "nodes", "long.ts"),
      `export default {
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  run(ctx, { s }) {
    ctx.log("a".repeat(16100) + s);
    console.log("b".repeat(16100) + s);
    // Deno's console cuts a string in an object at 10,000 characters: '"... 590 more characters'.
    console.log({ s: "d".repeat(9990) + s });
    throw new Error("c".repeat(16100) + s);
  },
};
`,
    );
    await Deno.writeTextFile(
      join(sandbox.dir, "cut.flow.yaml"),
      `id: cut
secrets: [LONG]
nodes:
  - id: long
    type: ./nodes/long.ts
    with: { s: "\${{ secrets.LONG }}" }
`,
    );
    const result = await sandbox.runWith(
      { LONG },
      "run",
      "cut.flow.yaml",
      "--json",
      "--log-format",
      "json",
    );
    assert.equal(result.code, 1, result.stderr);
    const record = JSON.parse(result.stdout);
    assert.match(record.nodes.long.error, /c\*\*\* … \(cut: /);
    const shown = await sandbox.runWith({ LONG }, "runs", "show", record.id, "--json");
    assert.equal(shown.code, 0, shown.stderr);
    // The log lines, masked where they were cut.
    assert.match(shown.stdout, /a\*\*\* … \(cut: /);
    assert.match(shown.stdout, /b\*\*\* … \(cut: /);
    assert.match(shown.stdout, /d\*\*\*\\"\.\.\. 590 more characters/);
    const texts = { "run --json": result.stdout, "log lines": result.stderr, shown: shown.stdout };
    for (const [where, text] of Object.entries(texts)) {
      for (let i = 0; i + 12 <= LONG.length; i += 8) {
        const piece = LONG.slice(i, i + 12);
        assert.ok(!text.includes(piece), `${where} holds ${piece} (at ${i} of the secret)`);
      }
    }
  });
});
