/**
 * The safe template language of flows: `${{ expression }}` inside the strings
 * of a node's `with`, its `if`, and the flow's `outputs`.
 *
 * A string is compiled once ({@linkcode compileTemplate}, or
 * {@linkcode compileValue} for every string inside a JSON-like value) by our
 * own lexer and recursive-descent parser into a tree of small closures, and
 * evaluated against a {@linkcode TemplateScope}. Nothing is ever handed to
 * `eval`, `new Function` or `with`: an expression starts from `inputs`,
 * `nodes`, `env` or `run`, a literal, or a built-in function, and reads only
 * own properties of plain objects and elements of arrays. A string that is one
 * template keeps its value's type; a string that mixes text and templates is a
 * string. Errors are {@linkcode TemplateError}s that point into the original
 * string.
 *
 * The language reference (strings, expressions, operators, functions, errors)
 * is the page [docs/templates.md](../../../docs/templates.md).
 *
 * @example
 * ```ts
 * import { compileTemplate } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const scope = { inputs: { by: 2 }, nodes: { bump: { output: 5 } }, env: {} };
 * assert.equal(compileTemplate("${{ inputs.by }}").evaluate(scope), 2);
 * assert.equal(compileTemplate("count is ${{ nodes.bump.output }}").evaluate(scope), "count is 5");
 * ```
 *
 * @module
 */
export type { Clock } from "../../clock.ts";
export {
  checkTemplates,
  type CompiledTemplate,
  type CompiledValue,
  compileTemplate,
  compileValue,
} from "./compile.ts";
export type { SecretTracker, TemplateScope } from "./ast.ts";
export { TemplateError } from "./error.ts";
export type { TemplateRefs } from "./parse.ts";
export { truthy } from "./values.ts";
