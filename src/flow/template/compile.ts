/**
 * The compiler of the template language: strings and JSON-like values become
 * trees of small closures ({@linkcode CompiledTemplate},
 * {@linkcode CompiledValue}) evaluated against a {@linkcode TemplateScope}.
 *
 * @module
 */
import type { Clock } from "../../clock.ts";
import { OPEN, Segment } from "./_segment.ts";
import { TemplateError } from "./error.ts";
import { compileCall, oversize } from "./functions.ts";
import { lex } from "./lex.ts";
import type { Ast, Evaluator, TemplateScope } from "./ast.ts";
import { Parser, type TemplateRefs } from "./parse.ts";
import {
  arrayIndexOf,
  copyContainers,
  isPlainObject,
  jsonEqual,
  readProperty,
  setOwn,
  toText,
  typeName,
} from "./values.ts";

/**
 * A compiled string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CompiledTemplate, compileTemplate } from "@flowstate/core/flow";
 *
 * const one: CompiledTemplate = compileTemplate("${{ inputs.n * 2 }}");
 * assert.equal(one.isTemplate, true);
 * assert.equal(one.evaluate({ inputs: { n: 21 }, nodes: {}, env: {} }), 42); // a number, not text
 * assert.equal(compileTemplate("plain").isTemplate, false);
 * ```
 */
export interface CompiledTemplate {
  /** The string as given. */
  readonly source: string;
  /** Whether the string holds at least one `${{ … }}`. */
  readonly isTemplate: boolean;
  /** Everything the string references statically. */
  readonly refs: TemplateRefs;
  /**
   * The string's value in `scope`: the value itself for a string that is one
   * template, a string otherwise. Values read from the scope are returned as
   * they are, not copied. Throws {@linkcode TemplateError}, and nothing else.
   */
  evaluate(scope: TemplateScope, clock?: Clock): unknown;
}

/**
 * A compiled JSON-like value (a node's `with`, a flow's `outputs`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CompiledValue, compileValue } from "@flowstate/core/flow";
 *
 * const compiled: CompiledValue = compileValue({ key: "count", by: "${{ inputs.by }}" });
 * assert.equal(compiled.isStatic, false);
 * assert.deepEqual([...compiled.refs.inputs], ["by"]);
 * assert.deepEqual(compiled.evaluate({ inputs: { by: 2 }, nodes: {}, env: {} }), { key: "count", by: 2 });
 * ```
 */
export interface CompiledValue {
  /** Everything the value's strings reference statically. */
  readonly refs: TemplateRefs;
  /** Whether no string in the value holds a template. */
  readonly isStatic: boolean;
  /**
   * The value with every string evaluated: arrays and plain objects are fresh
   * copies on every call (so a node may change what it gets), values read from
   * the scope are not copied. Throws {@linkcode TemplateError} with `path` set.
   */
  evaluate(scope: TemplateScope, clock?: Clock): unknown;
}

/**
 * Compile a string that may hold `${{ expression }}` templates. Throws
 * {@linkcode TemplateError} for a syntax error, an unknown root, function or
 * name, or a forbidden property name, and `TypeError` when `text` is not a
 * string.
 *
 * @example
 * ```ts
 * import { compileTemplate } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const check = compileTemplate("${{ nodes.read.output.count > inputs.min }}");
 * assert.deepEqual([...check.refs.nodes], ["read"]);
 * const scope = { inputs: { min: 2 }, nodes: { read: { output: { count: 3 } } }, env: {} };
 * assert.equal(check.evaluate(scope), true);
 * ```
 */
export function compileTemplate(text: string): CompiledTemplate {
  if (typeof text !== "string") {
    throw new TypeError(`Cannot compile a template: expected a string, got ${typeName(text)}`);
  }
  const refs = emptyRefs();
  const compiled = compileString(text, refs);
  const evaluate: Evaluator = compiled.isTemplate
    ? compiled.evaluate
    : ((value) => () => value)(compiled.value);
  return {
    source: text,
    isTemplate: compiled.isTemplate,
    refs,
    evaluate,
  };
}

/**
 * Compile every string inside a JSON-like value (arrays and plain objects are
 * walked; other values pass through as they are). A {@linkcode TemplateError}
 * carries the `path` of the string it is about. Throws `TypeError` for a value
 * that refers back to itself.
 *
 * @example
 * ```ts
 * import { compileValue } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const compiled = compileValue({ key: "count", by: "${{ inputs.by }}", tags: ["${{ run.id }}"] });
 * const scope = { inputs: { by: 2 }, nodes: {}, env: {}, run: { id: "r1", flowId: "f" } };
 * assert.deepEqual(compiled.evaluate(scope), { key: "count", by: 2, tags: ["r1"] });
 * ```
 */
export function compileValue(value: unknown): CompiledValue {
  const refs = emptyRefs();
  const compiled = compileTree(value, [], refs, []);
  let evaluate: Evaluator;
  if (compiled.isStatic) {
    const constant = compiled.value;
    evaluate = typeof constant === "object" && constant !== null
      ? () => copyContainers(constant)
      : () => constant;
  } else {
    evaluate = compiled.evaluate;
  }
  return {
    refs,
    isStatic: compiled.isStatic,
    evaluate,
  };
}

/**
 * Every problem of the templates in a string, not only the first: each
 * `${{ … }}` is compiled on its own, and a bad one is skipped to its `}}`.
 * `refs` holds what the good ones reference.
 *
 * @example
 * ```ts
 * import { checkTemplates } from "./compile.ts";
 * import assert from "node:assert/strict";
 * const { errors, refs } = checkTemplates("${{ nope }} ${{ inputs.n }} ${{ 1 + }}");
 * assert.equal(errors.length, 2);
 * assert.deepEqual(errors.map((e) => e.offset), [4, 36]);
 * assert.deepEqual([...refs.inputs], ["n"]);
 * ```
 */
export function checkTemplates(text: string): { refs: TemplateRefs; errors: TemplateError[] } {
  const refs = emptyRefs();
  const errors: TemplateError[] = [];
  let i = 0;
  for (;;) {
    const p = text.indexOf(OPEN, i);
    if (p < 0) break;
    i = p + OPEN.length;
    if (p > 0 && text.charCodeAt(p - 1) === 36 /* $ */) continue; // an escaped $${{
    const own = emptyRefs(); // a bad segment's half-read references are not reported
    try {
      i = compileSegment(text, p, own).end;
      for (const kind of ["nodes", "inputs", "env", "secrets"] as const) {
        for (const name of own[kind]) refs[kind].add(name);
      }
      for (const name of own.run) refs.run.add(name);
      for (const [name, at] of own.loop) if (!refs.loop.has(name)) refs.loop.set(name, at);
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      errors.push(e);
      const close = text.indexOf("}}", Math.max(e.offset, i));
      if (close < 0) break;
      i = close + 2;
    }
  }
  return { refs, errors };
}

// ---------------------------------------------------------------------------
// Compiling strings and values

type CompiledString =
  | { isTemplate: false; value: string }
  | { isTemplate: true; evaluate: Evaluator };

function emptyRefs(): TemplateRefs {
  return {
    nodes: new Set(),
    inputs: new Set(),
    env: new Set(),
    secrets: new Set(),
    run: new Set(),
    loop: new Map(),
  };
}

function compileString(text: string, refs: TemplateRefs): CompiledString {
  const parts: (string | { evaluate: Evaluator; text: Evaluator })[] = [];
  let literal = "";
  let i = 0;
  for (;;) {
    const p = text.indexOf(OPEN, i);
    if (p < 0) {
      literal += text.slice(i);
      break;
    }
    if (p > i && text.charCodeAt(p - 1) === 36 /* $ */) {
      literal += text.slice(i, p - 1) + OPEN;
      i = p + OPEN.length;
      continue;
    }
    literal += text.slice(i, p);
    if (literal !== "") parts.push(literal);
    literal = "";
    const segment = compileSegment(text, p, refs);
    parts.push(segment);
    i = segment.end;
  }
  if (literal !== "") parts.push(literal);

  if (parts.length === 0) return { isTemplate: false, value: "" };
  if (parts.length === 1) {
    const only = parts[0];
    return typeof only === "string"
      ? { isTemplate: false, value: only }
      : { isTemplate: true, evaluate: only.evaluate };
  }
  return {
    isTemplate: true,
    evaluate: (scope, clock) => {
      let out = "";
      for (let k = 0; k < parts.length; k++) {
        const part = parts[k];
        out += typeof part === "string" ? part : part.text(scope, clock);
      }
      return out;
    },
  };
}

type CompiledTree =
  | { isStatic: true; value: unknown }
  | { isStatic: false; evaluate: Evaluator };

function compileTree(
  value: unknown,
  path: string[],
  refs: TemplateRefs,
  ancestors: object[],
): CompiledTree {
  if (typeof value === "string") {
    let compiled: CompiledString;
    try {
      compiled = compileString(value, refs);
    } catch (e) {
      throw e instanceof TemplateError ? withPath(e, path) : e;
    }
    if (!compiled.isTemplate) return { isStatic: true, value: compiled.value };
    const inner = compiled.evaluate;
    const at = path.slice();
    return {
      isStatic: false,
      evaluate: (scope, clock) => {
        try {
          return inner(scope, clock);
        } catch (e) {
          throw e instanceof TemplateError ? withPath(e, at) : e;
        }
      },
    };
  }
  const isArray = Array.isArray(value);
  if (!isArray && !isPlainObject(value)) return { isStatic: true, value };
  if (ancestors.includes(value as object)) {
    throw new TypeError(
      `Cannot compile templates: the value at ${formatPath(path)} refers back to itself`,
    );
  }
  ancestors.push(value as object);
  const keys: string[] = isArray
    ? (value as unknown[]).map((_, index) => String(index))
    : Object.keys(value as object);
  const children: CompiledTree[] = [];
  for (const key of keys) {
    path.push(key);
    children.push(compileTree((value as Record<string, unknown>)[key], path, refs, ancestors));
    path.pop();
  }
  ancestors.pop();

  if (children.every((child) => child.isStatic)) {
    const values = children.map((child) => (child as { value: unknown }).value);
    if (isArray) return { isStatic: true, value: values };
    const out: Record<string, unknown> = {};
    for (let k = 0; k < keys.length; k++) setOwn(out, keys[k], values[k]);
    return { isStatic: true, value: out };
  }

  const evaluators: Evaluator[] = children.map((child) => {
    if (!child.isStatic) return child.evaluate;
    const constant = child.value;
    return typeof constant === "object" && constant !== null
      ? () => copyContainers(constant)
      : () => constant;
  });
  const n = evaluators.length;
  if (isArray) {
    return {
      isStatic: false,
      evaluate: (scope, clock) => {
        const out: unknown[] = [];
        for (let k = 0; k < n; k++) out.push(evaluators[k](scope, clock));
        return out;
      },
    };
  }
  return {
    isStatic: false,
    evaluate: (scope, clock) => {
      const out: Record<string, unknown> = {};
      for (let k = 0; k < n; k++) setOwn(out, keys[k], evaluators[k](scope, clock));
      return out;
    },
  };
}

function withPath(error: TemplateError, path: readonly string[]): TemplateError {
  return new TemplateError(error.message, {
    offset: error.offset,
    length: error.length,
    source: error.source,
    path: path.slice(),
  }, { cause: error.cause });
}

function formatPath(path: readonly string[]): string {
  return path.length === 0 ? "top level" : path.join(".");
}

// ---------------------------------------------------------------------------
// One `${{ … }}` segment

function compileSegment(
  text: string,
  start: number,
  refs: TemplateRefs,
): { evaluate: Evaluator; text: Evaluator; end: number } {
  const segment = new Segment(text, start);
  const tokens = lex(segment);
  segment.end = tokens[tokens.length - 1].end;
  const ast = new Parser(tokens, segment, refs).parseTemplate();
  const inner = compileAst(ast, segment);
  const evaluate: Evaluator = (scope, clock) => {
    try {
      return inner(scope, clock);
    } catch (e) {
      if (e instanceof TemplateError) throw e;
      const reason = e instanceof Error ? e.message : String(e);
      throw segment.evalError(reason, segment.start, segment.end - segment.start, e);
    }
  };
  /** The value as text, for a string that mixes text and templates. */
  const asText: Evaluator = (scope, clock) => {
    const value = evaluate(scope, clock);
    try {
      return toText(value);
    } catch (e) {
      // JSON.stringify throws on a cycle or a BigInt: still a TemplateError.
      const reason = e instanceof Error ? e.message : String(e);
      throw segment.evalError(
        `cannot turn the value into text: ${reason}`,
        segment.start,
        segment.end - segment.start,
        e,
      );
    }
  };
  return { evaluate, text: asText, end: segment.end };
}

// ---------------------------------------------------------------------------
// Evaluation: the AST becomes a tree of closures

function compileAst(ast: Ast, segment: Segment): Evaluator {
  const fail = (node: { start: number; end: number }, message: string): never => {
    throw segment.evalError(message, node.start, node.end - node.start);
  };

  switch (ast.kind) {
    case "literal": {
      const value = ast.value;
      return () => value;
    }
    case "root":
      switch (ast.name) {
        case "inputs":
          return (scope) => scope.inputs;
        case "nodes":
          return (scope) => scope.nodes;
        case "env":
          return (scope) => scope.env;
        case "secrets":
          return (scope) => scope.secrets ?? {};
        case "run":
          return (scope) => scope.run;
        case "item":
          return (scope) => scope.item;
        case "index":
          return (scope) => scope.index;
      }
      break;
    case "member": {
      const object = compileAst(ast.object, segment);
      const { key, index } = ast;
      return (scope, clock) => readProperty(object(scope, clock), key, index);
    }
    case "index": {
      const object = compileAst(ast.object, segment);
      const keyOf = compileAst(ast.key, segment);
      const keyNode = ast.key;
      return (scope, clock) => {
        const base = object(scope, clock);
        const key = keyOf(scope, clock);
        if (typeof key === "string") return readProperty(base, key, arrayIndexOf(key));
        if (typeof key === "number") {
          if (Array.isArray(base)) {
            return Number.isInteger(key) && key >= 0 && key < base.length ? base[key] : undefined;
          }
          return readProperty(base, String(key), -1);
        }
        if (typeof base !== "object" || base === null || key === undefined || key === null) {
          return undefined;
        }
        return fail(keyNode, `[ ] takes a string or a number, got ${typeName(key)}`);
      };
    }
    case "unary": {
      const operand = compileAst(ast.operand, segment);
      if (ast.op === "!") return (scope, clock) => !operand(scope, clock);
      const node = ast;
      return (scope, clock) => {
        const value = operand(scope, clock);
        if (typeof value !== "number") {
          return fail(node, `- takes a number, got ${typeName(value)}`);
        }
        return -value;
      };
    }
    case "binary":
      return compileBinary(ast, segment);
    case "conditional": {
      const test = compileAst(ast.test, segment);
      const then = compileAst(ast.then, segment);
      const otherwise = compileAst(ast.otherwise, segment);
      return (scope, clock) => test(scope, clock) ? then(scope, clock) : otherwise(scope, clock);
    }
    case "array": {
      const items = ast.items.map((item) => compileAst(item, segment));
      return (scope, clock) => {
        const out: unknown[] = [];
        for (let k = 0; k < items.length; k++) out.push(items[k](scope, clock));
        return out;
      };
    }
    case "object": {
      const keys = ast.keys;
      const values = ast.values.map((value) => compileAst(value, segment));
      return (scope, clock) => {
        // Keys were checked at compile time: none is __proto__.
        const out: Record<string, unknown> = {};
        for (let k = 0; k < keys.length; k++) out[keys[k]] = values[k](scope, clock);
        return out;
      };
    }
    case "call":
      return compileCall(ast, ast.args.map((arg) => compileAst(arg, segment)), segment);
  }
  throw new Error(`unreachable: ${(ast as Ast).kind}`);
}

function compileBinary(ast: Extract<Ast, { kind: "binary" }>, segment: Segment): Evaluator {
  const left = compileAst(ast.left, segment);
  const right = compileAst(ast.right, segment);
  const op = ast.op;
  const fail = (message: string): never => {
    throw segment.evalError(message, ast.opStart, op.length);
  };
  const finite = (value: number, a: number, b: number): number =>
    Number.isFinite(value)
      ? value
      : fail(`${a} ${op} ${b} is ${value}, which is not a finite number`);
  switch (op) {
    case "&&":
      return (scope, clock) => {
        const a = left(scope, clock);
        return a ? right(scope, clock) : a;
      };
    case "||":
      return (scope, clock) => {
        const a = left(scope, clock);
        return a ? a : right(scope, clock);
      };
    case "==":
      return (scope, clock) => jsonEqual(left(scope, clock), right(scope, clock));
    case "!=":
      return (scope, clock) => !jsonEqual(left(scope, clock), right(scope, clock));
    case "<":
    case "<=":
    case ">":
    case ">=":
      return (scope, clock) => {
        const a = left(scope, clock);
        const b = right(scope, clock);
        const ta = typeof a;
        if (ta !== typeof b || (ta !== "number" && ta !== "string")) {
          return fail(
            `${op} compares two numbers or two strings, got ${typeName(a)} and ${typeName(b)}`,
          );
        }
        const x = a as number, y = b as number;
        return op === "<" ? x < y : op === "<=" ? x <= y : op === ">" ? x > y : x >= y;
      };
    case "+":
      return (scope, clock) => {
        const a = left(scope, clock);
        const b = right(scope, clock);
        if (typeof a === "number" && typeof b === "number") return finite(a + b, a, b);
        if (typeof a === "string" && typeof b === "string") {
          const problem = oversize(a.length + b.length, "text");
          return problem === undefined ? a + b : fail(`+ ${problem}`);
        }
        return fail(
          `+ adds two numbers or joins two strings, got ${typeName(a)} and ${typeName(b)}`,
        );
      };
    default:
      return (scope, clock) => {
        const a = left(scope, clock);
        const b = right(scope, clock);
        if (typeof a !== "number" || typeof b !== "number") {
          return fail(`${op} takes two numbers, got ${typeName(a)} and ${typeName(b)}`);
        }
        const result = op === "-" ? a - b : op === "*" ? a * b : op === "/" ? a / b : a % b;
        return finite(result, a, b);
      };
  }
}
