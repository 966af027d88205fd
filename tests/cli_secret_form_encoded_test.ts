/**
 * A secret in the form a URL's query or an HTML form encodes it
 * (`application/x-www-form-urlencoded`: a space as `+`, `!'()~` as `%21`…),
 * which is not `encodeURIComponent`'s: the `http` node appends its `query:`
 * that way, and its error quotes the URL.
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
