import assert from "node:assert/strict";
import { compileTemplate, TemplateError } from "./mod.ts";
import { assertErrorAt, assertParseError, evaluate, scope } from "./_test_utils.ts";

// ---------------------------------------------------------------------------
// Precedence

Deno.test("compileTemplate() applies precedence and associativity", () => {
  const cases: [string, unknown][] = [
    ["1 + 2 * 3", 7],
    ["(1 + 2) * 3", 9],
    ["10 - 4 - 3", 3],
    ["2 * 3 % 4", 2],
    ["24 / 4 / 2", 3],
    ["-2 * 3", -6],
    ["-(2 + 3)", -5],
    ["1 + 2 < 4", true],
    ["1 < 2 == 3 < 4", true],
    ["1 + 1 == 2 && 'a' < 'b'", true],
    ["true || false && false", true],
    ["(true || false) && false", false],
    ["!false && false", false],
    ["!(false && false)", true],
    ["false == false && true", true],
    ["1 == 1 || 1 < 'a'", true],
    ["false ? 1 : true ? 2 : 3", 2],
    ["true ? false ? 1 : 2 : 3", 2],
    ["true ? 1 : 2 + 10", 1],
    ["false || true ? 'y' : 'n'", "y"],
    ["0 && 1 ? 'y' : 'n'", "n"],
    ["'a' + 'b' == 'ab'", true],
    ["!inputs.missing == true", true],
    ["[1, 2][0] + { a: 5 }.a * 2", 11],
    ["((((1))))", 1],
  ];
  for (const [expression, want] of cases) {
    assert.deepEqual(evaluate(`\${{ ${expression} }}`), want, expression);
  }
});

Deno.test("compileTemplate() rejects chained comparisons as ambiguous", () => {
  assertParseError("${{ 1 < 2 < 3 }}", "<", /chained < is ambiguous/, 1);
  assertParseError("${{ 1 == 1 != true }}", "!=", /chained != is ambiguous/);
  assert.equal(evaluate("${{ (1 < 2) == true }}"), true, "parentheses make it clear");
});

// ---------------------------------------------------------------------------
// Safety: names and roots

Deno.test("compileTemplate() rejects globals and unknown roots, naming the allowed roots", () => {
  for (
    const name of [
      "globalThis",
      "Deno",
      "window",
      "self",
      "process",
      "eval",
      "Function",
      "this",
      "undefined",
      "x",
    ]
  ) {
    const text = `\${{ ${name} }}`;
    assertParseError(
      text,
      name,
      /an expression starts from inputs, nodes, env, secrets, run, item or index/,
    );
  }
  assertParseError("${{ Deno.env }}", "Deno");
  assertParseError("${{ input.by }}", "input", /did you mean "inputs"/);
  assertParseError("${{ 1 + globalThis.x }}", "globalThis");
  assertParseError("${{ $x }}", "$x", /unknown name "\$x"/);
});

Deno.test("compileTemplate() rejects __proto__, constructor and prototype as names", () => {
  for (const name of ["__proto__", "constructor", "prototype"]) {
    assertParseError(`\${{ inputs.${name} }}`, name, /cannot be used as a property name/);
    assertParseError(`\${{ inputs.obj.${name}.x }}`, name, /cannot be used as a property name/);
    assertParseError(`\${{ inputs['${name}'] }}`, `'${name}'`, /cannot be used as a property name/);
    assertParseError(`\${{ inputs["${name}"] }}`, `"${name}"`);
    assertParseError(`\${{ { ${name}: 1 } }}`, name, /cannot be used as a key/);
    assertParseError(`\${{ { '${name}': 1 } }}`, `'${name}'`, /cannot be used as a key/);
    assertParseError(`\${{ ${name} }}`, name, /is not allowed as a name/);
    assertParseError(`\${{ nodes.${name}.output }}`, name);
  }
  assertParseError("${{ inputs.x.constructor.constructor('return 1')() }}", "constructor");
});

Deno.test("compileTemplate() needs a literal node id and a real node field", () => {
  assertParseError("${{ nodes }}", "nodes", /nodes must be followed by a node id/);
  assertParseError("${{ length(nodes) }}", "nodes", /nodes must be followed by a node id/);
  assertParseError("${{ nodes[inputs.id].output }}", "inputs", /a node must be named literally/);
  assertParseError("${{ nodes['a' + 'b'] }}", "'a'", /a node must be named literally/);
  assertParseError(
    "${{ nodes.a.outputs }}",
    "outputs",
    /a node has no "outputs".*did you mean "output"/,
  );
  assertParseError("${{ nodes.a['result'] }}", "'result'", /a node has no "result"/);
  assertParseError(
    "${{ run.ID }}",
    "ID",
    /run has no "ID"; it has id, flowId, failed, scheduledAt and schedule/,
  );
  assert.deepEqual(evaluate("${{ nodes.bump }}"), { output: 5, status: "succeeded" });
  assert.equal(evaluate("${{ nodes.bump[inputs.key] }}"), undefined, "computed field: no check");
  assert.equal(evaluate("${{ nodes['read-count'].output }}"), 7);
  assert.equal(evaluate("${{ nodes[0].output }}"), undefined, "a numeric id is fine");
});

// ---------------------------------------------------------------------------
// Syntax errors and their offsets

Deno.test("compileTemplate() reports syntax errors at the offending token", () => {
  assertParseError("${{ }}", "${{ }}", /the expression is empty/);
  assertParseError("${{}}", "${{}}", /the expression is empty/);
  assertParseError("${{ inputs.n < }}", "}}", /expected a value after "<", found "}}"/);
  assertParseError("${{ 1 2 }}", "2", /unexpected "2": expected an operator or "}}"/);
  assertParseError("${{ inputs. }}", "}", /expected a property name after "."/);
  assertParseError("${{ inputs.by", "${{", /"\$\{\{" is not closed by "}}"/);
  assertParseError("text ${{ 1 } tail", "}", /unexpected "}"/);
  assertParseError("${{ (1 + 2 }}", "}}", /expected "\)" to close \(/);
  assertParseError("${{ [1, 2 }}", "}}", /expected "]" to close the array/);
  assertParseError("${{ inputs.list[0 }}", "}}", /expected "]" to close \[/);
  assertParseError("${{ { a 1 } }}", "1", /expected ":" after the key "a"/);
  assertParseError("${{ { 1: 2 } }}", "1", /expected a key/);
  assertParseError("${{ { a: 1, a: 2 } }}", "a", /duplicate key "a"/, 1);
  assertParseError("${{ true ? 1 }}", "}}", /expected ":"/);
  assertParseError("${{ 'abc }}", "'", /string is not closed by '/);
  assertParseError('${{ "abc }}', '"', /string is not closed by "/);
  assertParseError("${{ 'a\\qb' }}", "\\q", /unknown escape "\\q"/);
  assertParseError("${{ '\\u12' }}", "\\u", /bad escape/);
  assertParseError("${{ '\\u{110000}' }}", "\\u{110000}", /bad escape/);
  assertParseError("${{ a = 1 }}", "=", /"=" is not an operator: compare with ==/);
  assertParseError("${{ 1 === 1 }}", "=", /there is no === or !==/, 2);
  assertParseError("${{ true & false }}", "&", /use &&/);
  assertParseError("${{ true | false }}", "|", /use \|\|/);
  assertParseError("${{ 12abc }}", "12abc", /"12abc" is not a number/);
  assertParseError("${{ 1e999 }}", "1e999", /too large/);
  assertParseError("${{ 1 # 2 }}", "#", /unexpected character "#"/);
  assertParseError("${{ 1 + 😀 }}", "😀", /unexpected character "😀"/);
  assertParseError("${{ ) }}", ")", /expected a value, found "\)"/);
  assertParseError("${{ inputs.by ?? 1 }}", "?", /expected a value/, 1);
});

Deno.test("compileTemplate() points into the original string, past earlier text and templates", () => {
  const text = "first ${{ inputs.by }}\nsecond line ${{ inputs.n + }} and ${{ 3 }}";
  assertParseError(text, "}}", /expected a value after "\+"/, 1);
  assertParseError("a ${{ 1 }} b ${{ nope }}", "nope", /unknown name "nope"/);
  const later = 'ok ${{ "}}" }} then ${{ inputs.n < "a" }}';
  assertErrorAt(() => compileTemplate(later).evaluate(scope), later, "<", /got number and string/);
});

Deno.test("compileTemplate() rejects expressions nested too deeply, with a TemplateError", () => {
  const deep = "${{ " + "(".repeat(5000) + "1" + ")".repeat(5000) + " }}";
  assertErrorAt(() => compileTemplate(deep), deep, "(", /nested too deeply/, 200);
  const nots = "${{ " + "!".repeat(5000) + "true }}";
  assertErrorAt(() => compileTemplate(nots), nots, "!", /nested too deeply/, 199);
  const sum = "${{ " + Array(5000).fill("1").join(" + ") + " }}";
  assert.throws(
    () => compileTemplate(sum),
    (e) => e instanceof TemplateError && /nested too deeply/.test(e.message),
  );
  const path = "${{ inputs" + ".a".repeat(5000) + " }}";
  assert.throws(() => compileTemplate(path), TemplateError);
  const arrays = "${{ " + "[".repeat(5000) + "]".repeat(5000) + " }}";
  assert.throws(() => compileTemplate(arrays), TemplateError);
  assert.equal(evaluate("${{ " + Array(150).fill("1").join(" + ") + " }}"), 150);
});

// ---------------------------------------------------------------------------
// References

Deno.test("compileTemplate() lists the nodes, inputs and env it references", () => {
  const compiled = compileTemplate(
    "${{ nodes.a.output }} ${{ nodes['b-c'].status }} ${{ inputs.x + inputs['y'] }} " +
      "${{ env.HOME }} ${{ default(nodes.d.output.z, inputs.w) }} ${{ run.id }} " +
      "${{ inputs[inputs.k] }} ${{ inputs }} ${{ env }} ${{ nodes.a.output.nodes }}",
  );
  assert.deepEqual([...compiled.refs.nodes].sort(), ["a", "b-c", "d"]);
  assert.deepEqual([...compiled.refs.inputs].sort(), ["k", "w", "x", "y"]);
  assert.deepEqual([...compiled.refs.env], ["HOME"]);
  assert.equal(compileTemplate("no templates").refs.nodes.size, 0);
  assert.deepEqual([...compileTemplate("${{ inputs.n-1 }}").refs.inputs], ["n-1"]);
});
