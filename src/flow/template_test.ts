import assert from "node:assert/strict";
import {
  compileTemplate,
  compileValue,
  TemplateError,
  type TemplateScope,
  truthy,
} from "./template/mod.ts";

function makeScope(): TemplateScope {
  return {
    inputs: {
      by: 2,
      n: 10,
      name: "Ada",
      flag: true,
      nothing: null,
      list: [1, "two", { three: 3 }],
      obj: { a: 1, b: [1, 2], "with space": "yes", "x-y": "hyphen" },
      empty: "",
      when: new Date(0),
    },
    nodes: {
      bump: { output: 5, status: "succeeded" },
      read: { output: { count: 3, items: ["a", "b"], deep: { deeper: { deepest: "!" } } } },
      "read-count": { output: 7, status: "succeeded" },
      failed: { status: "failed" },
    },
    env: { HOME: "/home/ada", "MY-VAR": "dash" },
    run: { id: "run-1", flowId: "counter" },
  };
}

const scope = makeScope();

function evaluate(text: string, s: TemplateScope = scope, clock?: { now(): number }): unknown {
  return compileTemplate(text).evaluate(s, clock);
}

/** Assert that `fn` throws a TemplateError whose offset and length mark `token` in `text`. */
function assertErrorAt(
  fn: () => unknown,
  text: string,
  token: string,
  message?: RegExp,
  occurrence = 0,
): TemplateError {
  let offset = -1;
  for (let k = 0; k <= occurrence; k++) offset = text.indexOf(token, offset + 1);
  assert.ok(offset >= 0, `test bug: ${JSON.stringify(token)} is not in ${JSON.stringify(text)}`);
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof TemplateError, `expected a TemplateError, got ${caught}`);
  assert.equal(caught.name, "TemplateError");
  assert.equal(
    caught.offset,
    offset,
    `offset of ${JSON.stringify(token)} in ${JSON.stringify(text)} (${caught.message})`,
  );
  assert.equal(caught.length, token.length, `length for ${JSON.stringify(token)}`);
  assert.equal(caught.source, text);
  if (message) assert.match(caught.message, message);
  return caught;
}

function assertParseError(text: string, token: string, message?: RegExp, occurrence = 0): void {
  const error = assertErrorAt(() => compileTemplate(text), text, token, message, occurrence);
  assert.match(error.message, /^Cannot parse \$\{\{/);
}

function assertEvalError(text: string, token: string, message?: RegExp): void {
  const compiled = compileTemplate(text); // compiles fine
  const error = assertErrorAt(() => compiled.evaluate(scope), text, token, message);
  assert.match(error.message, /^Cannot evaluate \$\{\{/);
}

// ---------------------------------------------------------------------------
// Strings, type preservation, interpolation, escapes

Deno.test("compileTemplate() keeps the type of the value when the string is one template", () => {
  assert.equal(evaluate("${{ inputs.by }}"), 2);
  assert.equal(evaluate("${{inputs.by}}"), 2);
  assert.equal(evaluate("${{ \n\t inputs.by \r\n }}"), 2);
  assert.equal(evaluate("${{ inputs.flag }}"), true);
  assert.equal(evaluate("${{ inputs.nothing }}"), null);
  assert.equal(evaluate("${{ inputs.missing }}"), undefined);
  assert.equal(evaluate("${{ inputs.name }}"), "Ada");
  assert.deepEqual(evaluate("${{ nodes.read.output }}"), {
    count: 3,
    items: ["a", "b"],
    deep: { deeper: { deepest: "!" } },
  });
  assert.deepEqual(evaluate("${{ inputs.list }}"), [1, "two", { three: 3 }]);
  const compiled = compileTemplate("${{ inputs.by }}");
  assert.equal(compiled.isTemplate, true);
  assert.equal(compiled.source, "${{ inputs.by }}");
});

Deno.test("compileTemplate() interpolates when text surrounds a template", () => {
  assert.equal(evaluate("count is now ${{ nodes.bump.output }}"), "count is now 5");
  assert.equal(evaluate(" ${{ inputs.by }}"), " 2", "even whitespace outside makes a string");
  assert.equal(evaluate("${{ inputs.flag }}!"), "true!");
  assert.equal(evaluate("[${{ inputs.nothing }}]"), "[null]");
  assert.equal(evaluate("[${{ inputs.missing }}]"), "[]", "undefined interpolates as nothing");
  assert.equal(evaluate("<${{ inputs.name }}>"), "<Ada>");
  assert.equal(evaluate("list=${{ inputs.list }}"), 'list=[1,"two",{"three":3}]');
  assert.equal(evaluate("o=${{ { a: 1, b: 'x' } }}"), 'o={"a":1,"b":"x"}');
  assert.equal(evaluate("${{ 1 }}${{ 2 }}"), "12", "two templates side by side");
  assert.equal(evaluate("${{ 1.5 }} ${{ -0.25 }} ${{ 1e21 }}"), "1.5 -0.25 1e+21");
  assert.equal(
    evaluate("${{ run.flowId }}/${{ run.id }}: ${{ env.HOME }}"),
    "counter/run-1: /home/ada",
  );
  assert.equal(evaluate("line one\n${{ inputs.by }}\nline three"), "line one\n2\nline three");
});

Deno.test("compileTemplate() treats a string without templates as a constant", () => {
  const plain = compileTemplate("just text with $ and {{ braces }} and }}");
  assert.equal(plain.isTemplate, false);
  assert.equal(plain.evaluate(scope), "just text with $ and {{ braces }} and }}");
  assert.equal(compileTemplate("").evaluate(scope), "");
  assert.equal(compileTemplate("${ not a template }").isTemplate, false);
});

Deno.test("compileTemplate() reads $${{ as a literal ${{", () => {
  const escaped = compileTemplate("use $${{ inputs.by }} to read by");
  assert.equal(escaped.isTemplate, false);
  assert.equal(escaped.evaluate(scope), "use ${{ inputs.by }} to read by");
  assert.equal(escaped.refs.inputs.size, 0);
  assert.equal(evaluate("$${{ x }} is ${{ inputs.by }}"), "${{ x }} is 2");
  assert.equal(evaluate("$$${{ x }}"), "$${{ x }}", "only $${{ is an escape; the first $ stays");
  assert.equal(evaluate("$${{${{ inputs.by }}"), "${{2");
  assert.equal(evaluate("$ ${{ inputs.by }}"), "$ 2");
  assert.equal(evaluate("${{ '$${{' }}"), "$${{", "no escapes inside an expression's strings");
});

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

Deno.test("compileTemplate() builds fresh arrays and objects from literals", () => {
  const compiled = compileTemplate("${{ [1, 'a', [inputs.by], { k: inputs.name, 'q k': null }] }}");
  const first = compiled.evaluate(scope);
  assert.deepEqual(first, [1, "a", [2], { k: "Ada", "q k": null }]);
  const second = compiled.evaluate(scope);
  assert.deepEqual(second, first);
  assert.notEqual(second, first, "a new array on each evaluation");
  assert.deepEqual(evaluate("${{ [] }}"), []);
  assert.deepEqual(evaluate("${{ [1, 2,] }}"), [1, 2], "a trailing comma is fine");
  assert.deepEqual(evaluate("${{ { a: 1, } }}"), { a: 1 });
  assert.deepEqual(evaluate("${{ { true: 1, null: 2 } }}"), { true: 1, null: 2 });
  const object = evaluate("${{ { a: 1 } }}") as object;
  assert.equal(Object.getPrototypeOf(object), Object.prototype, "a plain object");
});

// ---------------------------------------------------------------------------
// Roots and property access

Deno.test("compileTemplate() reads inputs, nodes, env and run", () => {
  assert.equal(evaluate("${{ inputs.name }}"), "Ada");
  assert.equal(evaluate("${{ nodes.bump.output }}"), 5);
  assert.equal(evaluate("${{ nodes.bump.status }}"), "succeeded");
  assert.equal(evaluate("${{ nodes.failed.output }}"), undefined);
  assert.equal(evaluate("${{ nodes.nope.output }}"), undefined, "an unknown node reads undefined");
  assert.equal(evaluate("${{ env.HOME }}"), "/home/ada");
  assert.equal(evaluate("${{ env.PATH }}"), undefined, "only the env the caller passes");
  assert.equal(evaluate("${{ run.id }}"), "run-1");
  assert.equal(evaluate("${{ run.flowId }}"), "counter");
  assert.deepEqual(evaluate("${{ run }}"), { id: "run-1", flowId: "counter" });
  assert.equal(evaluate("${{ inputs }}"), scope.inputs, "scope values are not copied");
  assert.equal(evaluate("${{ env }}"), scope.env);
  const noRun: TemplateScope = { inputs: {}, nodes: {}, env: {} };
  assert.equal(evaluate("${{ run.id }}", noRun), undefined);
});

Deno.test("compileTemplate() reads .name, [string], [number] and computed keys", () => {
  assert.equal(evaluate("${{ nodes.read.output.count }}"), 3);
  assert.equal(evaluate("${{ nodes.read.output['count'] }}"), 3);
  assert.equal(evaluate('${{ nodes["read"].output["items"][1] }}'), "b");
  assert.equal(evaluate("${{ nodes.read.output.items.0 }}"), "a", "a digit name indexes arrays");
  assert.equal(evaluate("${{ nodes.read.output.items['1'] }}"), "b");
  assert.equal(evaluate("${{ inputs.list[inputs.by] }}"), evaluate("${{ inputs.list[2] }}"));
  assert.deepEqual(evaluate("${{ inputs.list[2] }}"), { three: 3 });
  assert.equal(evaluate("${{ inputs.list[2].three }}"), 3);
  assert.equal(evaluate("${{ inputs.list[inputs.by - 1] }}"), "two");
  assert.equal(evaluate("${{ inputs.obj['with space'] }}"), "yes");
  assert.equal(evaluate("${{ inputs.obj[inputs.name == 'Ada' ? 'a' : 'b'] }}"), 1);
  assert.equal(evaluate("${{ inputs.obj.x-y }}"), "hyphen", "hyphens belong to names after a dot");
  assert.equal(evaluate("${{ nodes.read-count.output }}"), 7);
  assert.equal(evaluate("${{ nodes.read-count.output - 1 }}"), 6, "spaces make a minus");
  assert.equal(evaluate("${{ env['MY-VAR'] }}"), "dash");
  assert.equal(evaluate("${{ nodes . read . output . count }}"), 3, "spaces around dots");
  assert.equal(evaluate("${{ fromJson('{\"a\":[10,20]}').a[1] }}"), 20);
  assert.equal(evaluate("${{ [10, 20, 30][2] }}"), 30);
  assert.equal(evaluate("${{ { a: { b: 'c' } }.a.b }}"), "c");
  assert.equal(evaluate("${{ inputs.obj[1] }}"), undefined, "a number key on an object");
  assert.equal(evaluate('${{ fromJson(\'{"1": "one"}\')[1] }}'), "one");
});

Deno.test("compileTemplate() reads undefined for missing properties and properties of nothing", () => {
  assert.equal(evaluate("${{ inputs.nope }}"), undefined);
  assert.equal(evaluate("${{ inputs.nope.deeper.still }}"), undefined, "safe navigation");
  assert.equal(evaluate("${{ inputs.nothing.x }}"), undefined, "a property of null");
  assert.equal(evaluate("${{ inputs.nope[inputs.nope] }}"), undefined);
  assert.equal(evaluate("${{ nodes.failed.output.x.y }}"), undefined);
  assert.equal(evaluate("${{ inputs.name.length }}"), undefined, "strings have no properties");
  assert.equal(evaluate("${{ inputs.name[0] }}"), undefined);
  assert.equal(evaluate("${{ inputs.by.x }}"), undefined);
  assert.equal(evaluate("${{ inputs.list.length }}"), undefined, "use length(x)");
  assert.equal(evaluate("${{ inputs.list[-1] }}"), undefined);
  assert.equal(evaluate("${{ inputs.list[0.5] }}"), undefined);
  assert.equal(evaluate("${{ inputs.list[99] }}"), undefined);
  assert.equal(evaluate("${{ inputs.list['01'] }}"), undefined, "only canonical indexes");
  assert.equal(evaluate("${{ default(nodes.read.output.x, 0) }}"), 0);
});

Deno.test("compileTemplate() never reads inherited properties or non-plain objects", () => {
  for (
    const name of ["toString", "hasOwnProperty", "valueOf", "isPrototypeOf", "__defineGetter__"]
  ) {
    assert.equal(evaluate(`\${{ inputs.${name} }}`), undefined, name);
    assert.equal(evaluate(`\${{ inputs.obj['${name}'] }}`), undefined, name);
    assert.equal(evaluate(`\${{ inputs.list.${name} }}`), undefined, name);
  }
  assert.equal(evaluate("${{ inputs.when.getTime }}"), undefined, "a Date has no properties");
  assert.equal(evaluate("${{ inputs.when.x }}"), undefined);
  // Computed keys cannot reach prototypes either.
  const computed = compileTemplate("${{ inputs.obj[inputs.key] }}");
  for (const key of ["constructor", "__proto__", "prototype", "toString"]) {
    const s = { ...makeScope(), inputs: { ...makeScope().inputs, key } };
    assert.equal(computed.evaluate(s), undefined, key);
  }
  // …but they do read data that happens to use such a name as its own key.
  const data: TemplateScope = {
    ...makeScope(),
    inputs: { obj: JSON.parse('{"__proto__": "own", "constructor": "mine"}'), key: "__proto__" },
  };
  assert.equal(computed.evaluate(data), "own");
  // A scope object with a null prototype reads like a plain one.
  const bare = Object.assign(Object.create(null), { a: 1 });
  assert.equal(evaluate("${{ inputs.bare.a }}", { inputs: { bare }, nodes: {}, env: {} }), 1);
});

// ---------------------------------------------------------------------------
// Operators

Deno.test("compileTemplate() compares with == and != as deep JSON equality", () => {
  const yes = [
    "1 == 1",
    "'a' == 'a'",
    "null == null",
    "inputs.missing == null",
    "null == inputs.missing",
    "[1, [2, {a: 3}]] == [1, [2, {a: 3}]]",
    "{ a: 1, b: 2 } == { b: 2, a: 1 }",
    "nodes.read.output == { count: 3, items: ['a', 'b'], deep: { deeper: { deepest: '!' } } }",
    "{ a: inputs.missing } == {}",
    "[inputs.missing] == [null]",
    "0 == -0",
    "1 != '1'",
    "0 != false",
    "'' != false",
    "null != false",
    "null != 0",
    "[] != {}",
    "[1, 2] != [2, 1]",
    "{ a: null } != {}",
    "{} != { a: null }",
    "{ a: 1 } != { a: 1, b: 2 }",
    "[1] != [1, 1]",
    "'1' != 1",
    "true != 'true'",
    "[1] != 1",
  ];
  for (const expression of yes) assert.equal(evaluate(`\${{ ${expression} }}`), true, expression);
  const no = ["1 == '1'", "0 == false", "[1] == [1, 2]", "{a: 1} == {a: 2}", "1 != 1"];
  for (const expression of no) assert.equal(evaluate(`\${{ ${expression} }}`), false, expression);
});

Deno.test("compileTemplate() orders two numbers or two strings with < <= > >=", () => {
  const cases: [string, boolean][] = [
    ["1 < 2", true],
    ["2 < 1", false],
    ["2 <= 2", true],
    ["3 <= 2", false],
    ["3 > 2", true],
    ["2 > 2", false],
    ["2 >= 2", true],
    ["1 >= 2", false],
    ["'a' < 'b'", true],
    ["'b' < 'a'", false],
    ["'Z' < 'a'", true],
    ["'10' < '9'", true],
    ["'abc' <= 'abc'", true],
    ["'b' > 'abc'", true],
    ["inputs.n >= 10", true],
  ];
  for (const [expression, want] of cases) {
    assert.equal(evaluate(`\${{ ${expression} }}`), want, expression);
  }
});

Deno.test("compileTemplate() refuses to order values of other types, naming them", () => {
  assertEvalError(
    '${{ inputs.n < "a" }}',
    "<",
    /^Cannot evaluate \$\{\{ inputs\.n < "a" \}\}: < compares two numbers or two strings, got number and string$/,
  );
  assertEvalError("${{ inputs.missing >= 1 }}", ">=", /got undefined and number/);
  assertEvalError("${{ null <= null }}", "<=", /got null and null/);
  assertEvalError("${{ [1] > [0] }}", ">", /got array and array/);
  assertEvalError("${{ true > false }}", ">", /got boolean and boolean/);
  assertEvalError("${{ 'x' < {} }}", "<", /got string and object/);
});

Deno.test("compileTemplate() short-circuits && and || and returns an operand", () => {
  assert.equal(evaluate("${{ 1 && 'x' }}"), "x");
  assert.equal(evaluate("${{ 0 && 'x' }}"), 0);
  assert.equal(evaluate("${{ '' && 'x' }}"), "");
  assert.equal(evaluate("${{ null || 'fallback' }}"), "fallback");
  assert.equal(evaluate("${{ inputs.empty || 'fallback' }}"), "fallback");
  assert.equal(evaluate("${{ inputs.name || 'fallback' }}"), "Ada");
  assert.deepEqual(evaluate("${{ [] || 'x' }}"), [], "an empty array is truthy");
  assert.equal(evaluate("${{ false || 0 }}"), 0);
  // The right side is not evaluated (it would throw).
  assert.equal(evaluate("${{ false && 1 < 'a' }}"), false);
  assert.equal(evaluate("${{ true || 1 < 'a' }}"), true);
  assert.equal(evaluate("${{ !true }}"), false);
  assert.equal(evaluate("${{ !0 }}"), true);
  assert.equal(evaluate("${{ !'' }}"), true);
  assert.equal(evaluate("${{ !{} }}"), false);
  assert.equal(evaluate("${{ !inputs.missing }}"), true);
  assert.equal(evaluate("${{ !!inputs.name }}"), true);
});

Deno.test("compileTemplate() does arithmetic on numbers and joins strings with +", () => {
  assert.equal(evaluate("${{ 1 + 2 }}"), 3);
  assert.equal(evaluate("${{ 5 - 7 }}"), -2);
  assert.equal(evaluate("${{ 6 * 7 }}"), 42);
  assert.equal(evaluate("${{ 7 / 2 }}"), 3.5);
  assert.equal(evaluate("${{ 7 % 3 }}"), 1);
  assert.equal(evaluate("${{ -7 % 3 }}"), -1);
  assert.equal(evaluate("${{ 0.1 + 0.2 }}"), 0.1 + 0.2);
  assert.equal(evaluate("${{ -inputs.n }}"), -10);
  assert.equal(evaluate("${{ - -1 }}"), 1);
  assert.equal(evaluate("${{ 'a' + 'b' }}"), "ab");
  assert.equal(evaluate("${{ inputs.name + '!' }}"), "Ada!");
  assert.equal(evaluate("${{ nodes.bump.output + inputs.by }}"), 7);
});

Deno.test("compileTemplate() refuses arithmetic on other types and non-finite results", () => {
  assertEvalError(
    "${{ 1 + 'a' }}",
    "+",
    /: \+ adds two numbers or joins two strings, got number and string$/,
  );
  assertEvalError("${{ 'a' + null }}", "+", /got string and null/);
  assertEvalError("${{ [1] + [2] }}", "+", /got array and array/);
  assertEvalError("${{ 'a' - 1 }}", "-", /: - takes two numbers, got string and number$/);
  assertEvalError("${{ 2 * true }}", "*", /got number and boolean/);
  assertEvalError("${{ 2 / inputs.missing }}", "/", /got number and undefined/);
  assertEvalError("${{ 2 % {} }}", "%", /got number and object/);
  assertEvalError("${{ 1 / 0 }}", "/", /1 \/ 0 is Infinity, which is not a finite number/);
  assertEvalError("${{ 1 % 0 }}", "%", /is NaN/);
  assertEvalError("${{ 1e308 * 10 }}", "*", /Infinity/);
  assertEvalError("${{ 1e308 + 1e308 }}", "+", /Infinity/);
  assertEvalError("${{ -'a' }}", "-'a'", /- takes a number, got string/);
});

Deno.test("compileTemplate() applies the ternary operator lazily", () => {
  assert.equal(evaluate("${{ inputs.flag ? 'yes' : 'no' }}"), "yes");
  assert.equal(evaluate("${{ inputs.empty ? 'yes' : 'no' }}"), "no");
  assert.equal(evaluate("${{ true ? 1 : 1 < 'a' }}"), 1, "the other branch is not evaluated");
  assert.deepEqual(evaluate("${{ inputs.missing ? 1 : { a: 2 } }}"), { a: 2 });
});

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
// Functions

Deno.test("default() falls back only for null and undefined, evaluating the fallback lazily", () => {
  assert.equal(evaluate("${{ default(inputs.missing, 5) }}"), 5);
  assert.equal(evaluate("${{ default(inputs.nothing, 'n') }}"), "n");
  assert.equal(evaluate("${{ default(0, 5) }}"), 0);
  assert.equal(evaluate("${{ default(false, 5) }}"), false);
  assert.equal(evaluate("${{ default('', 5) }}"), "");
  assert.equal(evaluate("${{ default(inputs.by, 1 < 'a') }}"), 2, "fallback not evaluated");
  assert.equal(evaluate("${{ default(inputs.a, default(inputs.b, 'c')) }}"), "c");
});

Deno.test("length() counts a string, an array or an object's keys", () => {
  assert.equal(evaluate("${{ length('héllo') }}"), 5);
  assert.equal(evaluate("${{ length('') }}"), 0);
  assert.equal(evaluate("${{ length(inputs.list) }}"), 3);
  assert.equal(evaluate("${{ length(inputs.obj) }}"), 4);
  assert.equal(evaluate("${{ length({}) }}"), 0);
  assertEvalError(
    "${{ length(5) }}",
    "length",
    /length\(\) takes a string, an array or an object, got number/,
  );
  assertEvalError("${{ length(inputs.missing) }}", "length", /got undefined/);
});

Deno.test("json() and fromJson() write and read JSON text", () => {
  assert.equal(evaluate("${{ json(inputs.list) }}"), '[1,"two",{"three":3}]');
  assert.equal(evaluate("${{ json('a') }}"), '"a"');
  assert.equal(evaluate("${{ json(1) }}"), "1");
  assert.equal(evaluate("${{ json(null) }}"), "null");
  assert.equal(evaluate("${{ json(inputs.missing) }}"), "null");
  assert.deepEqual(evaluate(`\${{ fromJson('{"a": [1, true, null]}') }}`), { a: [1, true, null] });
  assert.equal(evaluate("${{ fromJson('3') + 1 }}"), 4);
  assert.deepEqual(evaluate("${{ fromJson(json(nodes.read.output)) }}"), scope.nodes.read.output);
  assertEvalError("${{ fromJson('{oops') }}", "fromJson", /fromJson\(\) got text that is not JSON/);
  assertEvalError("${{ fromJson(3) }}", "fromJson", /takes a string, got number/);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const error = assertErrorAt(
    () =>
      compileTemplate("${{ json(inputs.c) }}").evaluate({
        inputs: { c: cyclic },
        nodes: {},
        env: {},
      }),
    "${{ json(inputs.c) }}",
    "json",
    /json\(\) cannot write the value as JSON/,
  );
  assert.ok(error.cause instanceof TypeError);
});

Deno.test("now() reads the clock given to evaluate(), else the system clock", () => {
  assert.equal(evaluate("${{ now() }}", scope, { now: () => 1234 }), 1234);
  assert.equal(evaluate("${{ now() - 1000 }}", scope, { now: () => 5000 }), 4000);
  const before = Date.now();
  const value = evaluate("${{ now() }}") as number;
  assert.ok(value >= before && value <= Date.now());
  const compiled = compileValue({ at: "${{ now() }}", nested: ["${{ now() }}"] });
  assert.deepEqual(compiled.evaluate(scope, { now: () => 7 }), { at: 7, nested: [7] });
});

Deno.test("string() converts as interpolation does", () => {
  assert.equal(evaluate("${{ string(1.5) }}"), "1.5");
  assert.equal(evaluate("${{ string(true) }}"), "true");
  assert.equal(evaluate("${{ string(null) }}"), "null");
  assert.equal(evaluate("${{ string(inputs.missing) }}"), "");
  assert.equal(evaluate("${{ string('s') }}"), "s");
  assert.equal(evaluate("${{ string({ a: [1] }) }}"), '{"a":[1]}');
  assert.equal(evaluate("${{ string(inputs.by) + '!' }}"), "2!");
});

Deno.test("number() converts numbers, numeric strings and booleans", () => {
  assert.equal(evaluate("${{ number('42') }}"), 42);
  assert.equal(evaluate("${{ number(' -1.5e2 ') }}"), -150);
  assert.equal(evaluate("${{ number(7) }}"), 7);
  assert.equal(evaluate("${{ number(true) }}"), 1);
  assert.equal(evaluate("${{ number(false) }}"), 0);
  assert.equal(evaluate("${{ number('3') + 1 }}"), 4);
  assertEvalError("${{ number('abc') }}", "number", /number\(\) cannot read "abc" as a number/);
  assertEvalError("${{ number('') }}", "number", /cannot read "" as a number/);
  assertEvalError("${{ number('1e999') }}", "number", /cannot read/);
  assertEvalError("${{ number(null) }}", "number", /got null/);
  assertEvalError("${{ number([1]) }}", "number", /got array/);
});

Deno.test("keys() lists an object's own keys", () => {
  assert.deepEqual(evaluate("${{ keys({ b: 1, a: 2 }) }}"), ["b", "a"]);
  assert.deepEqual(evaluate("${{ keys(nodes.read.output) }}"), ["count", "items", "deep"]);
  assertEvalError("${{ keys([1]) }}", "keys", /keys\(\) takes an object, got array/);
  assertEvalError("${{ keys('s') }}", "keys", /got string/);
});

Deno.test("contains() looks in strings, arrays and object keys", () => {
  assert.equal(evaluate("${{ contains('hello', 'ell') }}"), true);
  assert.equal(evaluate("${{ contains('hello', 'xyz') }}"), false);
  assert.equal(evaluate("${{ contains(inputs.list, 'two') }}"), true);
  assert.equal(evaluate("${{ contains(inputs.list, { three: 3 }) }}"), true, "deep equality");
  assert.equal(evaluate("${{ contains(inputs.list, '1') }}"), false, "no coercion");
  assert.equal(evaluate("${{ contains(inputs.obj, 'a') }}"), true);
  assert.equal(evaluate("${{ contains(inputs.obj, 'toString') }}"), false, "own keys only");
  assertEvalError(
    "${{ contains('abc', 1) }}",
    "contains",
    /looks for a string in a string, got number/,
  );
  assertEvalError("${{ contains({}, 1) }}", "contains", /looks for a key \(a string\)/);
  assertEvalError("${{ contains(5, 1) }}", "contains", /got number/);
});

Deno.test("upper() and lower() change the case of a string", () => {
  assert.equal(evaluate("${{ upper('Straße') }}"), "STRASSE");
  assert.equal(evaluate("${{ lower(inputs.name) }}"), "ada");
  assertEvalError("${{ upper(1) }}", "upper", /upper\(\) takes a string, got number/);
  assertEvalError("${{ lower(null) }}", "lower", /got null/);
});

Deno.test("compileTemplate() checks function names and argument counts when compiling", () => {
  assertParseError(
    "${{ foo(1) }}",
    "foo",
    /unknown function "foo".*the functions are default, length/,
  );
  assertParseError("${{ Default(1, 2) }}", "Default", /did you mean "default"/);
  assertParseError("${{ toString() }}", "toString", /unknown function/);
  assertParseError("${{ constructor() }}", "constructor", /not allowed/);
  assertParseError("${{ default(1) }}", "default(1)", /default\(\) takes 2 arguments, got 1/);
  assertParseError("${{ now(1) }}", "now(1)", /now\(\) takes 0 arguments, got 1/);
  assertParseError("${{ upper('a', 'b') }}", "upper('a', 'b')", /takes 1 argument, got 2/);
  assertParseError("${{ length }}", "length", /length is a function: call it as length\(value\)/);
  assertParseError("${{ inputs.name.upper() }}", "(", /only the built-in functions can be called/);
  assertParseError("${{ (upper)('a') }}", "upper", /is a function/);
  assertParseError("${{ default(1, 2)(3) }}", "(", /only the built-in functions/, 1);
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
    assertParseError(text, name, /an expression starts from inputs, nodes, env or run/);
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
  assertParseError("${{ run.ID }}", "ID", /run has no "ID"; it has id and flowId/);
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

Deno.test("compileTemplate() turns unexpected failures during evaluation into TemplateError", () => {
  const inputs = {};
  Object.defineProperty(inputs, "boom", {
    enumerable: true,
    get() {
      throw new RangeError("exploded");
    },
  });
  const text = "value: ${{ inputs.boom }}";
  const error = assertErrorAt(
    () => compileTemplate(text).evaluate({ inputs, nodes: {}, env: {} }),
    text,
    "${{ inputs.boom }}",
    /^Cannot evaluate \$\{\{ inputs\.boom \}\}: exploded$/,
  );
  assert.ok(error.cause instanceof RangeError);
});

Deno.test("compileTemplate() throws TypeError for a non-string", () => {
  assert.throws(() => compileTemplate(5 as unknown as string), TypeError);
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

// ---------------------------------------------------------------------------
// compileValue

Deno.test("compileValue() evaluates every string inside a value", () => {
  const compiled = compileValue({
    scope: "flow",
    key: "count",
    by: "${{ inputs.by }}",
    message: "count is now ${{ nodes.bump.output }}",
    list: [1, "${{ inputs.name }}", { deep: "${{ env.HOME }}", n: null }],
    flag: true,
  });
  assert.equal(compiled.isStatic, false);
  assert.deepEqual(compiled.evaluate(scope), {
    scope: "flow",
    key: "count",
    by: 2,
    message: "count is now 5",
    list: [1, "Ada", { deep: "/home/ada", n: null }],
    flag: true,
  });
  assert.deepEqual([...compiled.refs.inputs].sort(), ["by", "name"]);
  assert.deepEqual([...compiled.refs.nodes], ["bump"]);
  assert.deepEqual([...compiled.refs.env], ["HOME"]);
});

Deno.test("compileValue() returns fresh copies of the static parts on each evaluation", () => {
  const compiled = compileValue({ a: [1, { b: 2 }], s: "$${{ literal }}", t: "${{ inputs.by }}" });
  const first = compiled.evaluate(scope) as { a: [number, { b: number }]; s: string };
  assert.equal(first.s, "${{ literal }}");
  first.a[1].b = 99;
  first.a.push(3);
  const second = compiled.evaluate(scope);
  assert.deepEqual(second, { a: [1, { b: 2 }], s: "${{ literal }}", t: 2 });

  const constant = compileValue({ scope: "flow", key: ["a", { b: "$${{ x }}" }] });
  assert.equal(constant.isStatic, true);
  const one = constant.evaluate(scope) as { key: unknown[] };
  assert.deepEqual(one, { scope: "flow", key: ["a", { b: "${{ x }}" }] });
  one.key.length = 0;
  assert.deepEqual(constant.evaluate(scope), { scope: "flow", key: ["a", { b: "${{ x }}" }] });
  assert.notEqual(constant.evaluate(scope), constant.evaluate(scope));
});

Deno.test("compileValue() passes non-strings through", () => {
  for (const value of [1, true, null, undefined, 0, "plain"]) {
    const compiled = compileValue(value);
    assert.equal(compiled.isStatic, true);
    assert.equal(compiled.evaluate(scope), value);
  }
  const date = new Date(5);
  assert.equal(compileValue(date).evaluate(scope), date, "non-plain objects are kept as they are");
  assert.equal(compileValue("${{ inputs.n }}").evaluate(scope), 10);
  assert.deepEqual(compileValue(["${{ 1 }}", "${{ 'a' }}"]).evaluate(scope), [1, "a"]);
});

Deno.test("compileValue() keeps a __proto__ key as an own property", () => {
  const value = JSON.parse('{"__proto__": {"polluted": "${{ inputs.by }}"}, "x": 1}');
  for (const compiled of [compileValue(value), compileValue({ ...value, x: "${{ 1 }}" })]) {
    const out = compiled.evaluate(scope) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.ok(Object.hasOwn(out, "__proto__"));
    assert.deepEqual(Object.getOwnPropertyDescriptor(out, "__proto__")?.value, { polluted: 2 });
    assert.equal((out as { polluted?: unknown }).polluted, undefined);
  }
  const constant = compileValue(JSON.parse('{"__proto__": {"a": 1}}'));
  const out = constant.evaluate(scope) as Record<string, unknown>;
  assert.ok(Object.hasOwn(out, "__proto__"));
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
});

Deno.test("compileValue() reports the path of a string that does not compile", () => {
  const value = { with: { items: ["ok", "fine ${{ inputs.a }}", "bad ${{ nope }}"] } };
  let caught: unknown;
  try {
    compileValue(value);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof TemplateError);
  assert.deepEqual(caught.path, ["with", "items", "2"]);
  assert.equal(caught.offset, "bad ${{ ".length);
  assert.equal(caught.length, "nope".length);
  assert.equal(caught.source, "bad ${{ nope }}");
});

Deno.test("compileValue() reports the path of a string that fails to evaluate", () => {
  const compiled = compileValue({ ok: "${{ 1 }}", list: [{ bad: "x ${{ inputs.name - 1 }}" }] });
  let caught: unknown;
  try {
    compiled.evaluate(scope);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof TemplateError);
  assert.deepEqual(caught.path, ["list", "0", "bad"]);
  assert.equal(caught.offset, "x ${{ inputs.name ".length);
  assert.match(caught.message, /- takes two numbers, got string and number/);
  assert.deepEqual(compileTemplate("${{ 1 }}").evaluate(scope), 1);
  assert.throws(
    () => compileTemplate("${{ nope }}"),
    (e) => e instanceof TemplateError && e.path.length === 0,
    "compileTemplate errors have an empty path",
  );
});

Deno.test("compileValue() throws TypeError for a value that refers back to itself", () => {
  const value: Record<string, unknown> = { a: 1 };
  value.self = { again: value };
  assert.throws(
    () => compileValue(value),
    (e) => e instanceof TypeError && /self\.again/.test(e.message),
  );
});

// ---------------------------------------------------------------------------
// truthy

Deno.test("truthy() follows JavaScript", () => {
  for (const value of [false, 0, -0, NaN, "", null, undefined]) assert.equal(truthy(value), false);
  for (const value of [true, 1, -1, "0", "false", " ", [], {}, [0]]) {
    assert.equal(truthy(value), true);
  }
});

// ---------------------------------------------------------------------------
// Fuzz

/** A small seeded PRNG (mulberry32), so failures reproduce. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("compileTemplate() throws nothing but TemplateError for random strings", () => {
  const pieces = [
    "${{",
    "${{ ",
    "}}",
    " }}",
    "$${{",
    "$",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    " ",
    "\n",
    ".",
    ",",
    ":",
    "?",
    "!",
    "+",
    "-",
    "*",
    "/",
    "%",
    "<",
    ">",
    "=",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "&",
    "|",
    "'",
    '"',
    "\\",
    "\\u",
    "\\u{",
    "0",
    "1",
    "2.5",
    "1e3",
    "9e999",
    "a",
    "x",
    "-y",
    "inputs",
    "nodes",
    "env",
    "run",
    "output",
    "status",
    "id",
    "by",
    "list",
    "obj",
    "name",
    "default",
    "length",
    "json",
    "fromJson",
    "now",
    "string",
    "number",
    "keys",
    "contains",
    "upper",
    "lower",
    "true",
    "false",
    "null",
    "__proto__",
    "constructor",
    "prototype",
    "globalThis",
    "é",
    "😀",
    "\ud800",
    "#",
    "@",
  ];
  const next = random(20260101);
  let compiled = 0;
  let evaluated = 0;
  for (let round = 0; round < 30_000; round++) {
    let text = next() < 0.7 ? "${{ " : "";
    const count = 1 + Math.floor(next() * 24);
    for (let k = 0; k < count; k++) text += pieces[Math.floor(next() * pieces.length)];
    if (next() < 0.6) text += " }}";
    try {
      const template = compileTemplate(text);
      compiled++;
      template.evaluate(scope, { now: () => 0 });
      evaluated++;
      compileValue({ v: [text] }).evaluate(scope);
    } catch (e) {
      if (!(e instanceof TemplateError)) {
        throw new Error(`${JSON.stringify(text)} threw ${e}`, { cause: e });
      }
      assert.ok(
        e.offset >= 0 && e.length >= 1 && e.offset + e.length <= text.length,
        `offset ${e.offset}+${e.length} is inside ${JSON.stringify(text)}`,
      );
    }
  }
  // The generator must reach the evaluator often enough to mean something.
  assert.ok(compiled > 1000, `only ${compiled} random strings compiled`);
  assert.ok(evaluated > 500, `only ${evaluated} random strings evaluated`);
});

Deno.test("compileTemplate() throws nothing but TemplateError for random valid expressions", () => {
  const next = random(7);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
  const leaves = [
    "0",
    "1",
    "-1",
    "2.5",
    "1e300",
    "''",
    "'a'",
    '"b"',
    "true",
    "false",
    "null",
    "[]",
    "{}",
    "inputs.by",
    "inputs.name",
    "inputs.list",
    "inputs.obj",
    "inputs.missing",
    "inputs.nothing",
    "inputs.when",
    "nodes.read.output",
    "nodes.read.output.items",
    "nodes.failed.output",
    "nodes.bump.status",
    "env.HOME",
    "run.id",
    "now()",
    "'{\"a\":1}'",
    "'12'",
  ];
  const binary = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||"];
  const unary = [
    "default(%, %)",
    "length(%)",
    "json(%)",
    "fromJson(%)",
    "string(%)",
    "number(%)",
    "keys(%)",
    "contains(%, %)",
    "upper(%)",
    "lower(%)",
    "!%",
    "-%",
    "(%)",
    "[%, %]",
    "{ k: %, j: % }",
    "%[%]",
    "%.a",
    "%[0]",
    "% ? % : %",
  ];
  const generate = (depth: number): string => {
    if (depth === 0 || next() < 0.3) return pick(leaves);
    if (next() < 0.5) return `${generate(depth - 1)} ${pick(binary)} ${generate(depth - 1)}`;
    return pick(unary).replace(/%/g, () => generate(depth - 1));
  };
  let ok = 0;
  let failed = 0;
  for (let round = 0; round < 20_000; round++) {
    const text = `\${{ ${generate(4)} }}`;
    let template;
    try {
      template = compileTemplate(text);
    } catch (e) {
      // Only chained comparisons are rejected by this grammar.
      assert.ok(e instanceof TemplateError && /chained/.test(e.message), `${text}: ${e}`);
      continue;
    }
    try {
      template.evaluate(scope, { now: () => 1 });
      ok++;
    } catch (e) {
      if (!(e instanceof TemplateError)) throw new Error(`${text} threw ${e}`, { cause: e });
      assert.ok(e.offset >= 4 && e.offset + e.length <= text.length, text);
      failed++;
    }
  }
  assert.ok(ok > 2000 && failed > 2000, `evaluated ${ok}, failed ${failed}: both must be common`);
});
