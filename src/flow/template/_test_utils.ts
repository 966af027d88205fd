/**
 * Helpers shared by the template language's tests: a scope with some of
 * everything, and assertions that an error points at the right token.
 *
 * @module
 */
import assert from "node:assert/strict";
import { compileTemplate, TemplateError, type TemplateScope } from "./mod.ts";

/** A fresh scope with some of everything: numbers, strings, null, arrays, objects, a Date. */
export function makeScope(): TemplateScope {
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

/** The scope most tests read (do not change it; make a fresh one with `makeScope()`). */
export const scope: TemplateScope = makeScope();

/** Compile `text` and evaluate it in `s` (the shared scope unless given). */
export function evaluate(
  text: string,
  s: TemplateScope = scope,
  clock?: { now(): number },
): unknown {
  return compileTemplate(text).evaluate(s, clock);
}

/** Assert that `fn` throws a TemplateError whose offset and length mark `token` in `text`. */
export function assertErrorAt(
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

/** Assert that compiling `text` fails with a parse error at `token`. */
export function assertParseError(
  text: string,
  token: string,
  message?: RegExp,
  occurrence = 0,
): void {
  const error = assertErrorAt(() => compileTemplate(text), text, token, message, occurrence);
  assert.match(error.message, /^Cannot parse \$\{\{/);
}

/** Assert that `text` compiles but evaluating it fails at `token`. */
export function assertEvalError(text: string, token: string, message?: RegExp): void {
  const compiled = compileTemplate(text); // compiles fine
  const error = assertErrorAt(() => compiled.evaluate(scope), text, token, message);
  assert.match(error.message, /^Cannot evaluate \$\{\{/);
}

/** Pieces of template text (syntax, names, literals, prototype names) that fuzz tests join at random. */
export const TEMPLATE_PIECES: readonly string[] = [
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
  "format",
  "formatDate",
  "slice",
  "split",
  "sort",
  "range",
  "base64",
  "fromBase64",
  "'{0}'",
  "'yyyy'",
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
