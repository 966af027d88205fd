import assert from "node:assert/strict";
import { SecretMasker } from "../secrets.ts";
import { compileTemplate, type TemplateScope } from "./mod.ts";

const USER = "grace-hopper";
const PASS = "hunter2-long";

/** A scope with two secrets and the run's masker, as the executor makes it. */
function secretScope(): { scope: TemplateScope; masker: SecretMasker } {
  const masker = new SecretMasker([USER, PASS]);
  const scope: TemplateScope = {
    inputs: { csv: `a,${PASS},b`, plain: "not secret" },
    nodes: { read: { output: { token: PASS } } },
    env: {},
    secrets: { USER, PASS },
    masker,
  };
  return { scope, masker };
}

function run(text: string, s: TemplateScope): unknown {
  return compileTemplate(text).evaluate(s);
}

Deno.test("a secret encoded or hashed by a function is masked like the secret", () => {
  const { scope, masker } = secretScope();
  const basic = run("${{ base64(secrets.USER + ':' + secrets.PASS) }}", scope) as string;
  assert.equal(basic, btoa(`${USER}:${PASS}`));
  assert.equal(masker.maskText(`Authorization: Basic ${basic}`), "Authorization: Basic ***");
  const hash = run("${{ sha256(secrets.PASS) }}", scope) as string;
  assert.equal(masker.maskText(`h=${hash}`), "h=***");
  for (
    const text of [
      "${{ upper(secrets.PASS) }}",
      "${{ urlEncode('x y' + secrets.PASS) }}",
      "${{ replace(secrets.PASS, '-', '_') }}",
      "${{ fromBase64(base64(upper(secrets.USER))) }}",
      "${{ sha256(upper(nodes.read.output.token)) }}", // a node's output holds it in memory
      "${{ padStart('x', 40, secrets.PASS) }}",
    ]
  ) {
    const value = run(text, scope) as string;
    assert.equal(masker.maskText(value), "***", text);
  }
});

Deno.test("a function that cuts a secret registers the pieces; whole secrets and plain text are left alone", () => {
  const { scope, masker } = secretScope();
  const parts = run("${{ split(secrets.USER, '-') }}", scope) as string[];
  assert.deepEqual(parts, ["grace", "hopper"]);
  assert.equal(masker.maskText("grace and hopper"), "*** and ***");
  const half = run("${{ slice(secrets.PASS, 0, 7) }}", scope);
  assert.equal(masker.maskText(`${half}`), "***");
  // Pieces that do not cut a secret are not registered (no over-masking).
  assert.deepEqual(run("${{ split(inputs.csv, ',') }}", scope), ["a", PASS, "b"]);
  assert.equal(run("${{ trim('  ' + secrets.PASS) }}", scope), PASS);
  assert.equal(masker.maskText("a b not secret"), "a b not secret");
  assert.equal(run("${{ upper(inputs.plain) }}", scope), "NOT SECRET");
  assert.equal(masker.maskText("NOT SECRET"), "NOT SECRET");
  // A secret read from JSON: its strings are registered, the wrapper's are not.
  const wrapped = run(
    `\${{ fromJson(format('{{"k": "{0}", "kind": "plain"}}', split(secrets.USER, '-')[1])) }}`,
    scope,
  );
  assert.deepEqual(wrapped, { k: "hopper", kind: "plain" });
  assert.equal(masker.maskText("plain"), "plain");
});

Deno.test("a function may not return fewer than 4 characters cut from a secret", () => {
  const { scope } = secretScope();
  for (
    const text of [
      "${{ slice(secrets.PASS, 0, 3) }}",
      "${{ slice(secrets.PASS, -2) }}",
      "${{ split(secrets.USER, 'ace-') }}",
    ]
  ) {
    assert.throws(
      () => run(text, scope),
      /would return \d character\(s\) of a secret, too few to be masked in the records \(under 4\)/,
      text,
    );
  }
  // Without a masker (a template evaluated outside a run), nothing is tracked.
  const { masker: _, ...bare } = secretScope().scope;
  assert.equal(run("${{ slice(secrets.PASS, 0, 3) }}", bare), "hun");
});
