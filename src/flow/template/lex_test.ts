import assert from "node:assert/strict";
import { evaluate } from "./_test_utils.ts";

// ---------------------------------------------------------------------------
// The end of a template

Deno.test("compileTemplate() finds the closing }} past braces and strings", () => {
  assert.deepEqual(evaluate("${{ {a: {b: 1}} }}"), { a: { b: 1 } });
  assert.deepEqual(evaluate("${{ {a: {b: 1}}}}"), { a: { b: 1 } });
  assert.deepEqual(evaluate("${{{}}}"), {});
  assert.equal(evaluate("${{ '}}' }}"), "}}");
  assert.equal(evaluate('${{ "a}}b" + "{{" }}'), "a}}b{{");
  assert.equal(evaluate("a }} b ${{ 1 }} }}"), "a }} b 1 }}");
});

// ---------------------------------------------------------------------------
// Literals

Deno.test("compileTemplate() reads number, string, boolean and null literals", () => {
  assert.equal(evaluate("${{ 0 }}"), 0);
  assert.equal(evaluate("${{ 42 }}"), 42);
  assert.equal(evaluate("${{ 3.25 }}"), 3.25);
  assert.equal(evaluate("${{ 1e3 }}"), 1000);
  assert.equal(evaluate("${{ 2.5E-1 }}"), 0.25);
  assert.equal(evaluate("${{ -7 }}"), -7);
  assert.equal(evaluate("${{ 'single' }}"), "single");
  assert.equal(evaluate('${{ "double" }}'), "double");
  assert.equal(evaluate("${{ '' }}"), "");
  assert.equal(evaluate("${{ true }}"), true);
  assert.equal(evaluate("${{ false }}"), false);
  assert.equal(evaluate("${{ null }}"), null);
});

Deno.test("compileTemplate() decodes string escapes", () => {
  assert.equal(evaluate("${{ 'it\\'s' }}"), "it's");
  assert.equal(evaluate('${{ "say \\"hi\\"" }}'), 'say "hi"');
  assert.equal(evaluate("${{ \"'\" + '\"' }}"), "'\"");
  assert.equal(
    evaluate('${{ "a\\nb\\tc\\rd\\\\e\\/f\\bg\\fh\\vi\\0j" }}'),
    "a\nb\tc\rd\\e/f\bg\fh\vi\0j",
  );
  assert.equal(evaluate('${{ "\\u0041\\u00e9" }}'), "Aé");
  assert.equal(evaluate('${{ "\\u{1F600}\\u{41}" }}'), "😀A");
  assert.equal(evaluate("${{ 'é😀 raw' }}"), "é😀 raw");
  assert.equal(evaluate("${{ 'two\nlines' }}"), "two\nlines", "raw newlines are allowed");
});
