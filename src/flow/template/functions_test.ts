import assert from "node:assert/strict";
import { compileTemplate, compileValue } from "./mod.ts";
import {
  assertErrorAt,
  assertEvalError,
  assertParseError,
  evaluate,
  scope,
} from "./_test_utils.ts";

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
