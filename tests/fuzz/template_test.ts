/**
 * Property-based fuzzing of the template language (`${{ … }}`):
 *
 * - random strings (template pieces, prototype names, random text) compile and
 *   evaluate, or throw a `TemplateError` that points inside the string: never
 *   a TypeError, RangeError or stack overflow;
 * - whatever evaluates is plain data: no function, no prototype object, no
 *   object of a class other than Object, Array and Date (the scope's own);
 * - random accessor chains made of `constructor`, `__proto__`, `prototype`…
 *   from every root reach nothing but the scope's own data, and nothing a
 *   template does changes `Object.prototype`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { compileTemplate, compileValue, TemplateError } from "../../flow.ts";
import { makeScope, TEMPLATE_PIECES } from "../../src/flow/template/_test_utils.ts";
import { fuzz } from "./_fuzz.ts";

const scope = makeScope();
const clock = { now: () => 0 };

const DANGEROUS = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "__defineGetter__",
  "__lookupGetter__",
  "globalThis",
  "Deno",
  "this",
  "eval",
  "Function",
  "call",
  "apply",
  "bind",
];

const PIECES = [...TEMPLATE_PIECES, "1e999", "-0", ...DANGEROUS];

const PROTOTYPES = new Set<unknown>([
  Object.prototype,
  Array.prototype,
  Function.prototype,
  String.prototype,
  Number.prototype,
  Boolean.prototype,
  Date.prototype,
  Symbol.prototype,
  globalThis,
]);
const ALLOWED_PROTOS = new Set<unknown>([Object.prototype, Array.prototype, Date.prototype, null]);

/** Throw unless `value` is plain data: JSON-like values, Dates, and nothing else. */
function assertPlain(value: unknown, text: string, depth = 0): void {
  if (value === null || value === undefined) return;
  const type = typeof value;
  if (type === "string" || type === "number" || type === "boolean") return;
  assert.equal(type, "object", `${JSON.stringify(text)} gave a ${type}`);
  assert.ok(!PROTOTYPES.has(value), `${JSON.stringify(text)} reached a prototype or the global`);
  assert.ok(
    ALLOWED_PROTOS.has(Object.getPrototypeOf(value)),
    `${JSON.stringify(text)} gave an object of class ${(value as object).constructor?.name}`,
  );
  if (depth > 50) return;
  for (const v of Object.values(value as object)) assertPlain(v, text, depth + 1);
}

const before = Object.getOwnPropertyNames(Object.prototype).sort();

function assertNoPollution(text: string): void {
  assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), before, text);
  assert.equal(({} as Record<string, unknown>).polluted, undefined, text);
}

/** How many cases evaluated to a value (so a property that only ever meets errors shows). */
const counts = { evaluated: 0, errors: 0 };

/** Compile and evaluate `text`: it succeeds with plain data or throws a TemplateError inside it. */
function check(text: string): void {
  try {
    const template = compileTemplate(text);
    assertPlain(template.evaluate(scope, clock), text);
    counts.evaluated++;
    assertPlain(compileValue({ v: [text] }).evaluate(scope, clock), text);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    if (!(e instanceof TemplateError)) {
      throw new Error(`${JSON.stringify(text)} threw ${e}`, { cause: e });
    }
    counts.errors++;
    assert.ok(
      e.offset >= 0 && e.length >= 1 && e.offset + e.length <= text.length,
      `offset ${e.offset}+${e.length} is inside ${JSON.stringify(text)}`,
    );
  }
  assertNoPollution(text);
}

Deno.test("fuzz: templates from random pieces throw only TemplateError and give plain data", () => {
  const text = fc.tuple(
    fc.boolean(),
    fc.array(fc.oneof(fc.constantFrom(...PIECES), fc.string({ maxLength: 3 })), {
      minLength: 1,
      maxLength: 24,
    }),
    fc.boolean(),
  ).map(([open, parts, close]) => `${open ? "${{ " : ""}${parts.join("")}${close ? " }}" : ""}`);
  fuzz("template pieces", 1904, 5000, text, check);
  assertBothCommon("template pieces");
});

/** Both outcomes are common, or the generator tests less than it seems; then reset the counts. */
function assertBothCommon(name: string): void {
  const { evaluated, errors } = counts;
  console.log(`fuzz: ${name}: ${evaluated} evaluated, ${errors} TemplateErrors`);
  assert.ok(evaluated * 20 > errors && errors * 20 > evaluated, `${name}: ${evaluated}/${errors}`);
  counts.evaluated = counts.errors = 0;
}

Deno.test("fuzz: random strings throw only TemplateError", () => {
  fuzz("template strings", 1905, 3000, fc.string({ maxLength: 40, unit: "binary" }), check);
  fuzz(
    "template strings in ${{ }}",
    1906,
    3000,
    fc.string({ maxLength: 40, unit: "binary" }).map((s) => "${{ " + s + " }}"),
    check,
  );
});

Deno.test("fuzz: accessor chains with prototype names reach only the scope's own data", () => {
  const root = fc.constantFrom(
    "inputs",
    "nodes",
    "env",
    "run",
    "inputs.obj",
    "inputs.list",
    "inputs.name",
    "inputs.when",
    "nodes.read.output",
    "keys(inputs)",
    'fromJson(\'{"__proto__": {"polluted": 1}}\')',
    'entries(fromJson(\'{"__proto__": {"polluted": 1}}\'))[0]',
    "values(inputs.obj)",
    "pluck([inputs.obj, inputs.list], 'constructor')",
    "sort(keys(inputs))",
    "unique([inputs.obj, inputs.obj])[0]",
    "split('a,b', ',')",
    "{ a: 1 }",
    "[1]",
    "'text'",
    "1",
    "now()",
  );
  const step = fc.oneof(
    fc.constantFrom(...DANGEROUS).map((name) => `.${name}`),
    fc.constantFrom(...DANGEROUS).map((name) => `['${name}']`),
    fc.constantFrom(".a", "[0]", ".length", ".output", ".polluted"),
  );
  const chain = fc.tuple(root, fc.array(step, { minLength: 1, maxLength: 4 }), fc.boolean()).map(
    ([r, steps, call]) => `\${{ ${r}${steps.join("")}${call ? "()" : ""} }}`,
  );
  counts.evaluated = counts.errors = 0;
  fuzz("template prototype chains", 1907, 4000, chain, check);
  assertBothCommon("template prototype chains");
});

Deno.test("fuzz: fixed prototype probes evaluate to nothing or a TemplateError", () => {
  for (
    const text of [
      "${{ constructor }}",
      "${{ __proto__ }}",
      "${{ inputs.constructor }}",
      "${{ inputs.__proto__ }}",
      "${{ inputs['__proto__'] }}",
      "${{ inputs.obj.constructor.constructor }}",
      "${{ inputs.list.constructor }}",
      "${{ inputs.name.constructor }}",
      "${{ inputs.when.constructor }}",
      '${{ fromJson(\'{"__proto__": {"polluted": 1}}\').__proto__ }}',
      '${{ fromJson(\'{"__proto__": {"polluted": 1}}\') }}',
      "${{ { __proto__: { polluted: 1 } } }}",
      "${{ { constructor: 1 }.constructor }}",
    ]
  ) check(text);
});
