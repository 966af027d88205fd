import assert from "node:assert/strict";
import { compileTemplate, compileValue, TemplateError } from "./mod.ts";
import { scope, TEMPLATE_PIECES } from "./_test_utils.ts";
import { FUNCTIONS } from "./functions.ts";

/** A call of every function added to the first eleven, with its fewest and its most arguments. */
const STANDARD_LIBRARY: readonly string[] = [...FUNCTIONS].slice(11).flatMap(([name, spec]) =>
  [...new Set([spec.min, Math.min(spec.max, spec.min + 2)])].map((n) =>
    `${name}(${Array.from({ length: n }, () => "%").join(", ")})`
  )
);

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
  const pieces = TEMPLATE_PIECES;
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
    "'yyyy-MM-dd'",
    "'2026-12-07T10:00:00Z'",
    "'Europe/Paris'",
    "'{0}-{1}'",
    "','",
    "'YQ=='",
    "'1h'",
    "[2, 1]",
    "['b', 'a']",
    "[{ n: 1 }]",
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
    const shape = next() < 0.35 ? pick(STANDARD_LIBRARY) : pick(unary);
    return shape.replace(/%/g, () => generate(depth - 1));
  };
  let ok = 0;
  let failed = 0;
  let compileErrors = 0;
  for (let round = 0; round < 20_000; round++) {
    const text = `\${{ ${generate(4)} }}`;
    let template;
    try {
      template = compileTemplate(text);
    } catch (e) {
      // Only chained comparisons, and a function's argument written as a literal of the wrong
      // type or value, are rejected by this grammar.
      assert.ok(
        e instanceof TemplateError && /chained|: [a-zA-Z0-9]+\(\) /.test(e.message),
        `${text}: ${e}`,
      );
      compileErrors++;
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
  assert.ok(
    compileErrors < 7000,
    `${compileErrors} of 20000 did not compile: too many to mean much`,
  );
});
