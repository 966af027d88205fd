import assert from "node:assert/strict";
import { compileTemplate, compileValue } from "./mod.ts";
import {
  assertErrorAt,
  assertEvalError,
  assertParseError,
  evaluate,
  makeScope,
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

// ---------------------------------------------------------------------------
// The standard library: text

Deno.test("startsWith() and endsWith() compare case-sensitively", () => {
  assert.equal(evaluate("${{ startsWith('backup-2026.tar', 'backup-') }}"), true);
  assert.equal(evaluate("${{ startsWith('Backup', 'backup') }}"), false);
  assert.equal(evaluate("${{ endsWith(inputs.name, 'da') }}"), true);
  assert.equal(evaluate("${{ endsWith('', '') }}"), true);
  assertEvalError(
    "${{ startsWith(inputs.by, 'x') }}",
    "startsWith",
    /startsWith\(\) takes a string as text, got number/,
  );
  assertEvalError("${{ endsWith('x', inputs.nothing) }}", "endsWith", /as suffix, got null/);
  assertParseError("${{ startsWith(1, 'x') }}", "1", /takes a string as text, got number/);
});

Deno.test("trim(), split() and join() work on text and lists of text", () => {
  assert.equal(evaluate("${{ trim('  a b \\n') }}"), "a b");
  assert.equal(evaluate("${{ trim('') }}"), "");
  assert.deepEqual(evaluate("${{ split('a,b,,c', ',') }}"), ["a", "b", "", "c"]);
  assert.deepEqual(evaluate("${{ split('', ',') }}"), [], "an empty text has no parts");
  assert.deepEqual(evaluate("${{ split('a::b', '::') }}"), ["a", "b"]);
  assert.equal(evaluate("${{ join(split('a b c', ' '), '+') }}"), "a+b+c");
  assert.equal(evaluate("${{ join(inputs.obj.b) }}"), "1,2", "the default separator is ,");
  assert.equal(evaluate("${{ join([]) }}"), "");
  assert.equal(evaluate("${{ join(['a', 1, true, null]) }}"), "a,1,true,null");
  assertParseError("${{ split('a', '') }}", "''", /separator of at least one character/);
  assertEvalError("${{ split('a', inputs.empty) }}", "split", /separator of at least one/);
  assertEvalError("${{ join(inputs.list) }}", "join", /joins strings.*got object at \[2\]/);
  assertParseError("${{ join('abc') }}", "'abc'", /join\(\) takes an array as list, got string/);
  assertEvalError("${{ join(inputs.name) }}", "join", /takes an array as list, got string/);
  assertEvalError("${{ trim(inputs.list) }}", "trim", /trim\(\) takes a string, got array/);
});

Deno.test("replace() replaces every literal occurrence", () => {
  assert.equal(evaluate("${{ replace('a.b.c', '.', '/') }}"), "a/b/c");
  assert.equal(evaluate("${{ replace('a+b', '+', '$&') }}"), "a$&b", "no special patterns");
  assert.equal(evaluate("${{ replace('aaa', 'aa', 'b') }}"), "ba");
  assert.equal(evaluate("${{ replace('', 'x', 'y') }}"), "");
  assertParseError("${{ replace('a', '', 'b') }}", "''", /search text of at least one/);
  assertEvalError("${{ replace('a', 'a', 1 + 1) }}", "replace", /as replacement, got number/);
});

Deno.test("slice() cuts strings by UTF-16 unit and arrays by element, as length() counts", () => {
  assert.equal(evaluate("${{ slice('héllo', 1, 3) }}"), "él");
  assert.equal(evaluate("${{ slice('hello', -3) }}"), "llo");
  assert.equal(evaluate("${{ slice('hello', 2, 99) }}"), "llo");
  assert.equal(evaluate("${{ slice('hello', 3, 1) }}"), "");
  assert.equal(evaluate("${{ length(slice('😀x', 0, 1)) }}"), 1, "half of a surrogate pair");
  assert.deepEqual(evaluate("${{ slice(inputs.list, 1) }}"), ["two", { three: 3 }]);
  assert.deepEqual(evaluate("${{ slice(inputs.list, 0, -1) }}"), [1, "two"]);
  assert.deepEqual(evaluate("${{ slice([], 0, 5) }}"), []);
  assertParseError("${{ slice(1, 2) }}", "1", /takes a string or an array as value, got number/);
  assertParseError("${{ slice('a', 1.5) }}", "1.5", /takes an integer as start, got 1.5/);
  assertEvalError("${{ slice('a', 0, inputs.name) }}", "slice", /as end, got string/);
  assertEvalError("${{ slice(inputs.obj, 0) }}", "slice", /got object/);
});

Deno.test("format() fills {N} with its values as interpolation writes them", () => {
  assert.equal(evaluate("${{ format('{0} of {1}', 1, 'two') }}"), "1 of two");
  assert.equal(evaluate("${{ format('{1}{0}{1}', 'a', 'b') }}"), "bab");
  assert.equal(evaluate("${{ format('{{0}} }}{0}{{', 'x') }}"), "{0} }x{");
  assert.equal(evaluate("${{ format('{0}|{1}', null, inputs.obj.b) }}"), "null|[1,2]");
  assert.equal(evaluate("${{ format('no values') }}"), "no values");
  assertParseError("${{ format('{2}', 1) }}", "'{2}'", /\{2\} refers to value 2, but 1 value is/);
  assertParseError("${{ format('a { b', 1) }}", "'a { b'", /"\{" at position 2 is not part of/);
  assertParseError("${{ format('}', 1) }}", "'}'", /write }} for a brace/);
  assertEvalError("${{ format(inputs.name + ' {1}', 1) }}", "format", /\{1\} refers to value 1/);
  assertParseError("${{ format() }}", "format()", /takes 1 to 32 arguments, got 0/);
});

Deno.test("padStart() and padEnd() pad text or a number to a length", () => {
  assert.equal(evaluate("${{ padStart(index, 3, '0') }}", { ...scope, index: 7 }), "007");
  assert.equal(evaluate("${{ padStart('abc', 2) }}"), "abc", "never cuts");
  assert.equal(evaluate("${{ padEnd('ab', 5, 'xy') }}"), "abxyx");
  assert.equal(evaluate("${{ padEnd('ab', 4) }}"), "ab  ");
  assertEvalError("${{ padStart('a', 10001) }}", "padStart", /at most 10000 characters/);
  assertEvalError("${{ padStart('a', 3, inputs.empty) }}", "padStart", /fill of at least one/);
  assertParseError("${{ padEnd(null, 3) }}", "null", /a string or a number as value, got null/);
});

// ---------------------------------------------------------------------------
// The standard library: numbers

Deno.test("min(), max() and sum() take numbers or a list of numbers", () => {
  assert.equal(evaluate("${{ min(3, 1, 2) }}"), 1);
  assert.equal(evaluate("${{ max([3, 1, 2]) }}"), 3);
  assert.equal(evaluate("${{ max(-1) }}"), -1);
  assert.equal(evaluate("${{ min([]) }}"), null, "an empty list has no minimum");
  assert.equal(evaluate("${{ default(max([]), 0) }}"), 0);
  assert.equal(evaluate("${{ sum([1, 2.5, -1]) }}"), 2.5);
  assert.equal(evaluate("${{ sum([]) }}"), 0);
  assertEvalError("${{ max(inputs.list) }}", "max", /a list of numbers, got string at \[1\]/);
  assertEvalError("${{ min(1, inputs.name) }}", "min", /takes numbers, got string as argument 2/);
  assertEvalError("${{ sum([1e308, 1e308]) }}", "sum", /Infinity, which is not a finite/);
  assertParseError("${{ min('a') }}", "'a'", /a number or an array as numbers, got string/);
});

Deno.test("round() rounds halves away from zero, to digits; floor(), ceil() and abs()", () => {
  assert.equal(evaluate("${{ round(2.5) }}"), 3);
  assert.equal(evaluate("${{ round(-2.5) }}"), -3);
  assert.equal(evaluate("${{ round(1.005, 2) }}"), 1.01, "no binary noise");
  assert.equal(evaluate("${{ round(1234.5678, 1) }}"), 1234.6);
  assert.equal(evaluate("${{ round(1250, -2) }}"), 1300);
  assert.ok(Object.is(evaluate("${{ round(-0.4) }}"), 0), "never -0");
  assert.equal(evaluate("${{ floor(-1.5) }}"), -2);
  assert.equal(evaluate("${{ ceil(1.2) }}"), 2);
  assert.equal(evaluate("${{ abs(-3) }}"), 3);
  assertEvalError("${{ round(1, 16) }}", "round", /digits from -15 to 15, got 16/);
  assertParseError("${{ round(1, 0.5) }}", "0.5", /takes an integer as digits, got 0.5/);
  assertEvalError("${{ floor(inputs.name) }}", "floor", /floor\(\) takes a number, got string/);
});

// ---------------------------------------------------------------------------
// The standard library: lists and objects

Deno.test("values(), entries() and pluck() read objects", () => {
  assert.deepEqual(evaluate("${{ values({ b: 1, a: [2] }) }}"), [1, [2]]);
  assert.deepEqual(evaluate("${{ entries({ b: 1 }) }}"), [{ key: "b", value: 1 }]);
  assert.deepEqual(evaluate("${{ entries({}) }}"), []);
  assert.deepEqual(
    evaluate("${{ pluck([{ n: 1 }, { m: 2 }, 3, null], 'n') }}"),
    [1, null, null, null],
  );
  assert.deepEqual(evaluate("${{ pluck([{}, []], 'toString') }}"), [null, null], "own keys only");
  assertEvalError("${{ values(inputs.list) }}", "values", /takes an object, got array/);
  assertParseError("${{ pluck({}, 'a') }}", "{}", /takes an array as list, got object/);
});

Deno.test("sort() sorts numbers or strings, stably, by a field if given", () => {
  assert.deepEqual(evaluate("${{ sort([3, 1, 2, 1]) }}"), [1, 1, 2, 3]);
  assert.deepEqual(evaluate("${{ sort([10, 9]) }}"), [9, 10], "numbers as numbers");
  assert.deepEqual(evaluate("${{ sort(['b', 'B', 'a', 'é']) }}"), ["B", "a", "b", "é"]);
  assert.deepEqual(evaluate("${{ sort([]) }}"), []);
  assert.deepEqual(
    evaluate("${{ sort([{ n: 2, i: 0 }, { n: 1, i: 1 }, { n: 2, i: 2 }], 'n') }}"),
    [{ n: 1, i: 1 }, { n: 2, i: 0 }, { n: 2, i: 2 }],
  );
  const list = (makeScope().inputs.list as unknown[]).slice();
  const s = { ...scope, inputs: { ...scope.inputs, mine: [2, 1] } };
  assert.deepEqual(evaluate("${{ sort(inputs.mine) }}", s), [1, 2]);
  assert.deepEqual(s.inputs.mine, [2, 1], "the list is not changed");
  assert.equal(list.length, 3);
  assertEvalError(
    "${{ sort([1, 'a']) }}",
    "sort",
    /not both: got number at \[0\] and string at \[1\]/,
  );
  assertEvalError("${{ sort([{ n: 1 }, {}], 'n') }}", "sort", /got undefined at \[1\]\.n/);
  assertEvalError("${{ sort([null]) }}", "sort", /got null at \[0\]/);
});

Deno.test("unique(), reverse() and flatten() make new lists", () => {
  assert.deepEqual(evaluate("${{ unique([1, '1', 1, { a: 1, b: 2 }, { b: 2, a: 1 }]) }}"), [
    1,
    "1",
    { a: 1, b: 2 },
  ]);
  assert.deepEqual(evaluate("${{ unique([null, inputs.missing, [1], [1]]) }}"), [null, [1]]);
  assert.deepEqual(evaluate("${{ reverse([1, 2, 3]) }}"), [3, 2, 1]);
  assert.deepEqual(evaluate("${{ flatten([[1, [2]], 3, []]) }}"), [1, [2], 3], "one level");
  assertParseError("${{ reverse('abc') }}", "'abc'", /takes an array, got string/);
  assertEvalError("${{ flatten(inputs.obj) }}", "flatten", /takes an array, got object/);
});

Deno.test("range() counts up to, not including, its end, at most 10,000 numbers", () => {
  assert.deepEqual(evaluate("${{ range(3) }}"), [0, 1, 2]);
  assert.deepEqual(evaluate("${{ range(-2, 1) }}"), [-2, -1, 0]);
  assert.deepEqual(evaluate("${{ range(0) }}"), []);
  assert.deepEqual(evaluate("${{ range(5, 2) }}"), []);
  assert.equal((evaluate("${{ range(10000) }}") as number[]).length, 10_000);
  assertEvalError("${{ range(10001) }}", "range", /at most 10000 numbers/);
  assertEvalError("${{ range(inputs.name) }}", "range", /takes an integer as end, got string/);
  assertParseError("${{ range(1, 2.5) }}", "2.5", /an integer as end, got 2.5/);
  assertParseError("${{ range(9007199254740992, 1) }}", "9007199254740992", /an integer as start/);
});

// ---------------------------------------------------------------------------
// The standard library: time

Deno.test("formatDate() writes a time with a small token set, in UTC or a time zone", () => {
  const t = Date.UTC(2026, 2, 7, 21, 5, 9, 42); // a Saturday
  const at = { ...scope, inputs: { t } };
  assert.equal(
    evaluate("${{ formatDate(inputs.t, 'yyyy-MM-dd HH:mm:ss.SSS XXX') }}", at),
    "2026-03-07 21:05:09.042 Z",
  );
  assert.equal(
    evaluate("${{ formatDate(inputs.t, 'EEE d MMM yy, h:mm a') }}", at),
    "Sat 7 Mar 26, 9:05 PM",
  );
  assert.equal(
    evaluate(`\${{ formatDate(inputs.t, "yyyy-MM-dd'T'HH:mmXXX", 'Asia/Kolkata') }}`, at),
    "2026-03-08T02:35+05:30",
  );
  assert.equal(
    evaluate(`\${{ formatDate(inputs.t, "'it''s' H", 'america/new_york') }}`, at),
    "it's 16",
  );
  assert.equal(evaluate("${{ formatDate('2026-03-07', 'dd/MM/yyyy') }}"), "07/03/2026");
  assert.equal(
    evaluate("${{ formatDate(now() - duration('1d'), 'yyyy-MM-dd') }}", scope, {
      now: () => Date.UTC(2026, 0, 1),
    }),
    "2025-12-31",
  );
  assertParseError("${{ formatDate(0, 'yyyy-mm-DD') }}", "'yyyy-mm-DD'", /"D" is not a date token/);
  assertParseError(
    "${{ formatDate(0, 'yyy') }}",
    "'yyy'",
    /"yyy" is not a date token: write yy or yyyy/,
  );
  assertParseError("${{ formatDate(0, 'x', 'Europe/Pari') }}", "'x'", /"x" is not a date token/);
  assertParseError(
    "${{ formatDate(0, 'yy', 'Europe/Pari') }}",
    "'Europe/Pari'",
    /did you mean "Europe\/Paris"/,
  );
  assertParseError(
    '${{ formatDate(0, "\'open") }}',
    '"\'open"',
    /quote at position 0 is not closed/,
  );
  assertEvalError(
    "${{ formatDate(1e20, 'yy') }}",
    "formatDate",
    /from year 1 to 9999, -62135596800000 to 253402300799999, got 100000000000000000000/,
  );
  assertEvalError("${{ formatDate('soon', 'yy') }}", "formatDate", /cannot read "soon" as a date/);
  assertEvalError("${{ formatDate(0, inputs.name) }}", "formatDate", /"A" is not a date token/);
  assertEvalError("${{ formatDate(0, 'yy', env.HOME) }}", "formatDate", /unknown time zone/);
  assertEvalError(
    "${{ formatDate(inputs.list, 'yy') }}",
    "formatDate",
    /a number or a string as time, got array/,
  );
});

Deno.test("parseDate() reads ISO 8601 into ms, and refuses anything else", () => {
  assert.equal(evaluate("${{ parseDate('2026-12-07T10:00:00Z') }}"), Date.UTC(2026, 11, 7, 10));
  assert.equal(evaluate("${{ parseDate('2026-12-07T10:00:00+01:00') }}"), Date.UTC(2026, 11, 7, 9));
  assert.equal(evaluate("${{ parseDate('2026-12-07') }}"), Date.UTC(2026, 11, 7));
  assert.equal(
    evaluate("${{ parseDate('2026-12-07 10:00', 'Europe/Paris') }}"),
    Date.UTC(2026, 11, 7, 9),
  );
  assert.equal(
    evaluate("${{ formatDate(parseDate('2026-01-31') + duration('1d'), 'yyyy-MM-dd') }}"),
    "2026-02-01",
  );
  assertEvalError(
    "${{ parseDate('2026-02-30') }}",
    "parseDate",
    /cannot read "2026-02-30" as a date/,
  );
  assertEvalError("${{ parseDate('Dec 7, 2026') }}", "parseDate", /write it in ISO 8601/);
  assertEvalError("${{ parseDate(inputs.by) }}", "parseDate", /takes a string as text, got number/);
});

Deno.test("duration() reads a duration as flows write one, into ms", () => {
  assert.equal(evaluate("${{ duration('1h30m') }}"), 5_400_000);
  assert.equal(evaluate("${{ duration(250) }}"), 250);
  assert.equal(evaluate("${{ now() - duration('7d') }}", scope, { now: () => 7 * 86_400_000 }), 0);
  assertParseError("${{ duration('10') }}", "'10'", /add a unit/);
  assertEvalError("${{ duration(inputs.name) }}", "duration", /cannot use "Ada" as a duration/);
});

// ---------------------------------------------------------------------------
// The standard library: encoding

Deno.test("base64(), fromBase64(), urlEncode() and sha256() encode text as UTF-8", () => {
  assert.equal(evaluate("${{ base64('ada:hunter22') }}"), "YWRhOmh1bnRlcjIy");
  assert.equal(evaluate("${{ base64('é😀') }}"), "w6nwn5iA");
  assert.equal(evaluate("${{ base64('') }}"), "");
  assert.equal(evaluate("${{ fromBase64('w6nwn5iA') }}"), "é😀");
  assert.equal(evaluate("${{ fromBase64('YQ') }}"), "a", "padding optional");
  assert.equal(evaluate("${{ fromBase64('YT4_') }}"), "a>?", "base64url too");
  assert.equal(evaluate("${{ urlEncode('a b&c/é') }}"), "a%20b%26c%2F%C3%A9");
  assert.equal(
    evaluate("${{ sha256('abc') }}"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    evaluate("${{ sha256('') }}"),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assertEvalError("${{ fromBase64('a$b') }}", "fromBase64", /got text that is not base64/);
  assertEvalError("${{ fromBase64('a') }}", "fromBase64", /not base64/);
  assertEvalError("${{ fromBase64('/w==') }}", "fromBase64", /bytes that are not UTF-8/);
  assertEvalError("${{ sha256('\\ud800') }}", "sha256", /lone surrogates/);
  assertEvalError("${{ urlEncode('\\udc00') }}", "urlEncode", /lone surrogates/);
  assertEvalError("${{ base64(inputs.list) }}", "base64", /base64\(\) takes a string, got array/);
});

Deno.test("every function's arity is checked when compiling", () => {
  assertParseError(
    "${{ join() }}",
    "join()",
    /join\(\) takes 1 to 2 arguments, got 0: join\(list, separator\?\)/,
  );
  assertParseError("${{ sha256('a', 'b') }}", "sha256('a', 'b')", /takes 1 argument, got 2/);
  assertParseError("${{ range() }}", "range()", /range\(end\) or range\(start, end\)/);
  assertParseError("${{ formatDate(0) }}", "formatDate(0)", /takes 2 to 3 arguments, got 1/);
  assertParseError("${{ trim }}", "trim", /trim is a function: call it as trim\(text\)/);
  assertParseError("${{ startswith('a', 'b') }}", "startswith", /did you mean "startsWith"/);
});
