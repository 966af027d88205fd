/**
 * Where in its flow an error raised while running is: a template that
 * failed as it was evaluated (a `with`, `if`, `forEach` or `outputs`
 * string), or a value that is not what it must be (a `forEach` that is not a
 * list). The message is the one a validation error would have,
 * `file:line:column: path: message` (see `formatProblem`): the column is the
 * offending part of the template, found in the YAML text, when it can be;
 * else the value's own position. A flow given as a definition (no YAML) gets
 * `path: message`.
 *
 * Nothing here runs unless an error happened, and it does not load the YAML
 * library: a flow read from the flow disk cache has its text and the
 * position of every value, which is all it needs, so a cached run says the
 * same as an uncached one.
 *
 * @module
 */
import { formatProblem, messageOf, type ProblemPath } from "../errors.ts";
import { TemplateError } from "./template/error.ts";
import { issueText, type OptionsError } from "./_options_error.ts";

/** What opens a template. */
const OPEN = "${{";

/** What of a prepared flow places an error (see `PreparedFlow`). */
export interface FlowPlace {
  /** The flow as validated (to tell list indexes from keys). */
  definition: unknown;
  /** The file, as shown to the user. */
  file?: string;
  /** The YAML text. */
  source?: string;
  /** The position of the value at a path (its nearest ancestor's, for a path not there). */
  locate?(path: (string | number)[]): { line: number; column: number } | undefined;
}

/**
 * `err`, raised evaluating the value at `base` of `flow` (for a
 * `TemplateError`, at the string its `path` leads to), as a message that
 * says where it is.
 */
export function placedError(flow: FlowPlace, base: ProblemPath, err: unknown): string {
  if (!(err instanceof TemplateError)) return placedMessage(flow, base, messageOf(err));
  const path = pathIn(flow.definition, base, err.path);
  return formatProblem(
    { message: err.message, path, ...positionOf(flow, path, err) },
    flow.file,
  );
}

/** `message` about the value at `path` of `flow`, placed as {@linkcode placedError} places it. */
export function placedMessage(flow: FlowPlace, path: ProblemPath, message: string): string {
  return formatProblem({ message, path, ...positionOf(flow, path) }, flow.file);
}

/**
 * `err`, node `i`'s options its type's schema refused, placed at the first
 * offending field of its `with` (the nearest part of it the flow writes; the
 * node's `with` for a problem with `with` itself):
 * `file:line:column: nodes[0].with.level: invalid options for log: expected
 * one of …`, the other issues after it as `with.x: …`.
 */
export function placedOptionsError(flow: FlowPlace, i: number, err: OptionsError): string {
  const [first, ...rest] = err.issues;
  const path = pathIn(flow.definition, ["nodes", i, "with"], first?.path ?? []);
  const problems = [first?.message ?? "", ...rest.map(issueText)].join("; ");
  return placedMessage(flow, path, `invalid options for ${err.nodeType}: ${problems}`);
}

/**
 * Where the value at `path` is (the offending part of `err`'s template in
 * it, when found); `undefined` without a position, or should finding it
 * fail: the error is then told without one, never lost to another.
 */
function positionOf(
  flow: FlowPlace,
  path: ProblemPath,
  err?: TemplateError,
): { line: number; column: number } | undefined {
  try {
    const at = flow.locate?.(path);
    if (at === undefined || err === undefined || flow.source === undefined) return at;
    return inText(flow.source, at, err.source, err.offset) ?? at;
  } catch {
    return undefined;
  }
}

/** `base` and then `keys` (a `TemplateError`'s path, indexes as text), list indexes as numbers. */
function pathIn(definition: unknown, base: ProblemPath, keys: readonly string[]): ProblemPath {
  const path = [...base];
  let value: unknown = definition;
  for (const step of base) value = childOf(value, step);
  for (const key of keys) {
    const step = Array.isArray(value) && /^(?:0|[1-9]\d*)$/.test(key) ? Number(key) : key;
    path.push(step);
    value = childOf(value, step);
  }
  return path;
}

function childOf(value: unknown, step: string | number): unknown {
  if (typeof value !== "object" || value === null || !Object.hasOwn(value, step)) return undefined;
  return (value as Record<string | number, unknown>)[step];
}

/** The offset of `at` in `text`; `undefined` past its end. */
function offsetOf(text: string, at: { line: number; column: number }): number | undefined {
  let lineStart = 0;
  for (let line = 1; line < at.line; line++) {
    lineStart = text.indexOf("\n", lineStart) + 1;
    if (lineStart === 0) return undefined;
  }
  return lineStart + at.column - 1;
}

/**
 * The position of character `offset` of the string `value`, written in
 * `text` at `at` (where its scalar starts: a quote, `|`, `>` or its first
 * character): the template around `offset` is the n-th `${{` of the string,
 * so it is the n-th `${{` written from `at` on, whatever the scalar's style
 * (the only way to write one is as it is). Then the offending part inside
 * it, when the text up to it is written as it reads (no escape, no line
 * break); else the `${{`. `undefined` when the text does not hold it.
 */
function inText(
  text: string,
  at: { line: number; column: number },
  value: string,
  offset: number,
): { line: number; column: number } | undefined {
  const open = value.lastIndexOf(OPEN, offset);
  if (open < 0) return undefined;
  let nth = 0;
  for (let i = value.indexOf(OPEN); i >= 0 && i < open; i = value.indexOf(OPEN, i + 1)) nth++;
  const from = offsetOf(text, at);
  // An `*alias` holds no template: the next one written is another value's.
  if (from === undefined || text[from] === "*") return undefined;
  let found = text.indexOf(OPEN, from);
  for (; nth > 0 && found >= 0; nth--) found = text.indexOf(OPEN, found + 1);
  if (found < 0) return undefined;
  const inside = offset - open;
  const point = text.slice(found, found + inside) === value.slice(open, offset)
    ? found + inside
    : found;
  const start = text.lastIndexOf("\n", point - 1) + 1;
  let line = 1;
  for (let i = text.indexOf("\n"); i >= 0 && i < point; i = text.indexOf("\n", i + 1)) line++;
  return { line, column: point - start + 1 };
}
