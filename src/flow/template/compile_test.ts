import assert from "node:assert/strict";
import {
  checkTemplates,
  compileTemplate,
  compileValue,
  TemplateError,
  type TemplateScope,
} from "./mod.ts";
import { assertErrorAt, assertEvalError, evaluate, makeScope, scope } from "./_test_utils.ts";

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

// ---------------------------------------------------------------------------
// Literals that build values

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

// ---------------------------------------------------------------------------
// Failures during evaluation

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

Deno.test("compileTemplate() reports a value that cannot become text as a TemplateError, never a TypeError", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const scope: TemplateScope = { inputs: { c: cyclic, big: { n: 10n } }, nodes: {}, env: {} };
  for (const text of ["x ${{ inputs.c }}", "x ${{ inputs.big }}"]) {
    assert.throws(
      () => compileTemplate(text).evaluate(scope),
      (err) => err instanceof TemplateError && /cannot turn the value into text/.test(err.message),
      text,
    );
  }
  // A whole-string template keeps the value as it is: nothing to turn into text.
  assert.equal(compileTemplate("${{ inputs.c }}").evaluate(scope), cyclic);
});

Deno.test("checkTemplates() reports every bad template of a string and what the good ones read", () => {
  const text = "${{ nope }} $${{ escaped }} ${{ nodes.a.output }} ${{ 'unclosed";
  const { errors, refs } = checkTemplates(text);
  assert.deepEqual(errors.map((e) => text.slice(e.offset, e.offset + e.length)), ["nope", "'"]);
  assert.deepEqual([...refs.nodes], ["a"]);
  // A bad template's half-read references are not reported as references.
  assert.deepEqual([...checkTemplates("${{ inputs.x + }}").refs.inputs], []);
  assert.deepEqual(checkTemplates("no templates").errors, []);
});

Deno.test("item and index read the scope's item; refs.loop says where each is first read", () => {
  const compiled = compileTemplate("${{ item.name }} is #${{ index + 1 }}, ${{ item['name'] }}");
  assert.equal(
    compiled.evaluate({ inputs: {}, nodes: {}, env: {}, item: { name: "Ada" }, index: 0 }),
    "Ada is #1, Ada",
  );
  assert.deepEqual([...compiled.refs.loop], [["item", 4], ["index", 25]]);
  assert.deepEqual([...compileTemplate("${{ inputs.a }}").refs.loop], []);
  const checked = checkTemplates("${{ index }} ${{ oops( }}");
  assert.deepEqual([...checked.refs.loop], [["index", 4]]);
});
