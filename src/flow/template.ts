/**
 * The safe template language of flows: `${{ expression }}` inside the strings
 * of a node's `with`, its `if`, and the flow's `outputs`.
 *
 * Templates are compiled once ({@linkcode compileTemplate},
 * {@linkcode compileValue}) by our own lexer and recursive-descent parser into
 * a tree of small closures, and evaluated against a {@linkcode TemplateScope}.
 * Nothing is ever handed to `eval`, `new Function` or `with`, and an
 * expression can reach nothing but the scope it is given.
 *
 * ## Strings
 *
 * - A string that is exactly one template, like `"${{ inputs.by }}"`, keeps the
 *   type of its value: a number stays a number, an object stays an object.
 * - A string that mixes text and templates, like `"count is ${{ nodes.bump.output }}"`,
 *   is a string: strings go in as they are, numbers and booleans through
 *   `String()`, `null` as `"null"`, `undefined` as `""`, arrays and objects as JSON.
 * - `$${{` is a literal `${{` (it starts no template). It is the only escape.
 * - A string without templates is a constant.
 *
 * ## Expressions
 *
 * - Literals: numbers (`1`, `2.5`, `1e3`), strings in single or double quotes
 *   with the escapes `\\ \' \" \n \r \t \b \f \v \0 \/ \uXXXX \u{X…}`, `true`,
 *   `false`, `null`, arrays `[1, 2]` and objects `{ a: 1, "b c": 2 }`.
 * - Roots: `inputs.<name>`, `nodes.<id>.output`, `nodes.<id>.status`,
 *   `env.<NAME>` (only the names the flow lists under `env:`; the caller passes
 *   an already-filtered object) and `run.id`, `run.flowId`. Any other name is
 *   an error when the template is compiled, so `globalThis`, `Deno` and the
 *   like cannot even be written. `nodes` must be followed by a literal node id
 *   (`nodes.read` or `nodes["read"]`) so that every dependency is visible in
 *   {@linkcode CompiledTemplate.refs}; after the id only `output` and `status`
 *   exist.
 * - Property access: `.name` and `[expr]` (a number indexes an array, a string
 *   names an object property). After a dot a name may hold hyphens, as node ids
 *   do: `nodes.read-count.output` reads the node `read-count`, so subtract with
 *   spaces: `inputs.n - 1`. A name after a dot may also be all digits
 *   (`items.0`). Only own properties of plain objects and elements of arrays
 *   are read: arrays have no `length` (use `length(x)`), strings have no
 *   properties, and nothing reaches a prototype. `__proto__`, `constructor` and
 *   `prototype` are rejected as names when compiling; a computed key
 *   (`x[inputs.key]`) that happens to hold one reads only an own property of
 *   that name, as data parsed from JSON may have.
 * - Safe navigation: a missing property is `undefined`, and so is any property
 *   of `undefined`, `null` or a non-container value, and `x[k]` when `k` is
 *   `undefined` or `null`, so `default(nodes.a.output.x.y, 0)` is `0` when
 *   `output` has no `x`. A computed key of another type (boolean, array,
 *   object) is an error.
 * - Operators, lowest precedence first: `a ? b : c`; `||`; `&&`; `==` `!=`;
 *   `<` `<=` `>` `>=`; `+` `-`; `*` `/` `%`; unary `!` `-`; then `.`, `[ ]` and
 *   calls. Parentheses group. `a < b < c` and `a == b == c` are rejected as
 *   ambiguous.
 * - `==` and `!=` compare as JSON, deeply and without coercion: `1 == "1"` is
 *   false, `{ a: [1] } == { a: [1] }` is true, and key order does not matter.
 *   As in JSON text, a property holding `undefined` counts as absent and any
 *   other `undefined` counts as `null`, so `x == null` tests for "missing",
 *   `{ a: inputs.missing } == {}` is true but `{ a: null } == {}` is false.
 *   Numbers compare with `===` (`NaN` equals nothing).
 * - `<` `<=` `>` `>=` compare two numbers or two strings (JavaScript order:
 *   UTF-16 code units); anything else is an error that names the two types.
 * - `&&` and `||` short-circuit and return one of their operands, as in
 *   JavaScript; `!` returns a boolean. Truthiness is JavaScript's (see
 *   {@linkcode truthy}).
 * - `+` adds two numbers or joins two strings; `-` `*` `/` `%` take numbers. A
 *   result that is not a finite number (division by zero) is an error.
 * - Functions: `default(x, fallback)` (fallback, evaluated only then, when `x`
 *   is `null` or `undefined`), `length(x)` (a string's UTF-16 length, an
 *   array's length, or an object's key count), `json(x)` (JSON text; `"null"`
 *   for `undefined`), `fromJson(s)`, `now()` (ms since the epoch, from the
 *   clock given to `evaluate`), `string(x)` (as interpolation converts),
 *   `number(x)` (numbers, numeric strings, booleans as 1/0), `keys(x)` (an
 *   object's keys), `contains(h, n)` (substring of a string, deep-equal element
 *   of an array, or own key of an object), `upper(s)`, `lower(s)`. Names and
 *   argument counts are checked when compiling; argument types when evaluating.
 *
 * Results are not copied out of the scope: `${{ nodes.a.output }}` is the very
 * object in `scope.nodes.a.output`. Arrays and objects written in an expression
 * (and the static parts of a {@linkcode compileValue} value) are fresh on every
 * evaluation.
 *
 * Errors, at compile time and at evaluation, are {@linkcode TemplateError}s
 * whose `offset` and `length` point into the original string.
 *
 * @module
 */
import type { Clock } from "../store/types.ts";
import { didYouMean } from "../_suggest.ts";
import { systemClock } from "../clock.ts";

/**
 * A template could not be compiled or evaluated. `offset` and `length` mark
 * the offending part of the original string (for `file:line:column`), and
 * `path` says which string inside a value compiled by
 * {@linkcode compileValue} it was (`[]` for {@linkcode compileTemplate}).
 */
export class TemplateError extends Error {
  /** Offset of the offending part in {@linkcode TemplateError.source}, in UTF-16 units. */
  readonly offset: number;
  /** Length of the offending part. */
  readonly length: number;
  /** The string holding the template. */
  readonly source: string;
  /** Keys leading to the string inside the value given to `compileValue` (indexes as strings). */
  readonly path: readonly string[];
  /** Create the error. */
  constructor(
    message: string,
    details: { offset: number; length: number; source?: string; path?: readonly string[] },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "TemplateError";
    this.offset = details.offset;
    this.length = details.length;
    this.source = details.source ?? "";
    this.path = details.path ?? [];
  }
}

/** What a template can read. Every field is read only through own properties. */
export interface TemplateScope {
  /** The run's inputs, after defaults (`inputs.<name>`). */
  inputs: Record<string, unknown>;
  /** Finished (or running) nodes by id (`nodes.<id>.output`, `nodes.<id>.status`). */
  nodes: Record<string, { output?: unknown; status?: string }>;
  /** The environment variables the flow lists under `env:`, and no others (`env.<NAME>`). */
  env: Record<string, string>;
  /** The current run (`run.id`, `run.flowId`). */
  run?: { id: string; flowId: string };
}

/** What a template references statically, for the flow validator. */
export interface TemplateRefs {
  /** Node ids read through `nodes.<id>`. */
  nodes: Set<string>;
  /** Input names read through `inputs.<name>`. */
  inputs: Set<string>;
  /** Environment variable names read through `env.<NAME>`. */
  env: Set<string>;
}

/** A compiled string. */
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

/** A compiled JSON-like value (a node's `with`, a flow's `outputs`). */
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
 * JavaScript truthiness, which templates use for `if`, `!`, `&&`, `||` and
 * `? :`: `false`, `0`, `-0`, `NaN`, `""`, `null` and `undefined` are falsy;
 * everything else, including `[]`, `{}` and `"false"`, is truthy.
 */
export function truthy(value: unknown): boolean {
  return !!value;
}

/**
 * Compile a string that may hold `${{ expression }}` templates. Throws
 * {@linkcode TemplateError} for a syntax error, an unknown root, function or
 * name, or a forbidden property name, and `TypeError` when `text` is not a
 * string.
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

// ---------------------------------------------------------------------------
// Compiling strings and values

type Evaluator = (scope: TemplateScope, clock: Clock | undefined) => unknown;

type CompiledString =
  | { isTemplate: false; value: string }
  | { isTemplate: true; evaluate: Evaluator };

const OPEN = "${{";

function emptyRefs(): TemplateRefs {
  return { nodes: new Set(), inputs: new Set(), env: new Set() };
}

function compileString(text: string, refs: TemplateRefs): CompiledString {
  const parts: (string | Evaluator)[] = [];
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
    parts.push(segment.evaluate);
    i = segment.end;
  }
  if (literal !== "") parts.push(literal);

  if (parts.length === 0) return { isTemplate: false, value: "" };
  if (parts.length === 1) {
    const only = parts[0];
    return typeof only === "string"
      ? { isTemplate: false, value: only }
      : { isTemplate: true, evaluate: only };
  }
  return {
    isTemplate: true,
    evaluate: (scope, clock) => {
      let out = "";
      for (let k = 0; k < parts.length; k++) {
        const part = parts[k];
        out += typeof part === "string" ? part : toText(part(scope, clock));
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

/**
 * Set a property even when it is called `__proto__` (which `=` turns into a
 * prototype change outside Deno, where `Object.prototype.__proto__` exists).
 */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    target[key] = value;
  }
}

/** Copy arrays and plain objects deeply; everything else is kept as is. */
function copyContainers(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let k = 0; k < value.length; k++) out.push(copyContainers(value[k]));
    return out;
  }
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key in value) setOwn(out, key, copyContainers(value[key]));
  return out;
}

// ---------------------------------------------------------------------------
// One `${{ … }}` segment

/** Where a segment sits, for messages. */
class Segment {
  constructor(readonly text: string, readonly start: number, public end = -1) {}

  /** The segment as written (cut when long), for messages. */
  display(): string {
    let end = this.end;
    if (end < 0) {
      const close = this.text.indexOf("}}", this.start + OPEN.length);
      end = close < 0 ? this.text.length : close + 2;
    }
    const shown = this.text.slice(this.start, end);
    return shown.length > 120 ? shown.slice(0, 117) + "…" : shown;
  }

  parseError(message: string, offset: number, length: number): TemplateError {
    return new TemplateError(`Cannot parse ${this.display()}: ${message}`, {
      offset,
      length: Math.max(length, 1),
      source: this.text,
    });
  }

  evalError(message: string, offset: number, length: number, cause?: unknown): TemplateError {
    return new TemplateError(
      `Cannot evaluate ${this.display()}: ${message}`,
      { offset, length: Math.max(length, 1), source: this.text },
      cause === undefined ? undefined : { cause },
    );
  }
}

function compileSegment(
  text: string,
  start: number,
  refs: TemplateRefs,
): { evaluate: Evaluator; end: number } {
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
  return { evaluate, end: segment.end };
}

// ---------------------------------------------------------------------------
// Lexer

type TokenType = "number" | "string" | "name" | "member" | "punct" | "end";

interface Token {
  type: TokenType;
  /** Operator text, name, or decoded string. */
  value: string;
  /** For numbers. */
  number: number;
  start: number;
  end: number;
}

const NAME = /[A-Za-z_$][A-Za-z0-9_$]*/y;
const MEMBER = /[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*/y;
const NUMBER = /[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const TWO_CHAR = new Set(["==", "!=", "<=", ">=", "&&", "||"]);
const ONE_CHAR = new Set(["(", ")", "[", "]", ",", ":", "?", ".", "!", "+", "-", "*", "/", "%"]);
const ONE_CHAR_COMPARE = new Set(["<", ">"]);

function isSpace(code: number): boolean {
  return code === 32 || code === 9 || code === 10 || code === 13;
}

function isNameChar(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) ||
    code === 95 || code === 36;
}

/** Tokens of the segment starting at `segment.start`, ending with the `}}` token. */
function lex(segment: Segment): Token[] {
  const text = segment.text;
  const n = text.length;
  const tokens: Token[] = [];
  let pos = segment.start + OPEN.length;
  let depth = 0;
  const push = (type: TokenType, value: string, start: number, end: number, number = 0) => {
    tokens.push({ type, value, number, start, end });
    pos = end;
  };
  for (;;) {
    while (pos < n && isSpace(text.charCodeAt(pos))) pos++;
    if (pos >= n) {
      throw segment.parseError(`"\${{" is not closed by "}}"`, segment.start, OPEN.length);
    }
    const ch = text[pos];
    const previous = tokens.length > 0 ? tokens[tokens.length - 1] : undefined;
    if (previous?.type === "punct" && previous.value === ".") {
      MEMBER.lastIndex = pos;
      const m = MEMBER.exec(text);
      if (m === null) {
        throw segment.parseError(`expected a property name after "."`, pos, 1);
      }
      push("member", m[0], pos, pos + m[0].length);
      continue;
    }
    if (ch === "}") {
      if (depth > 0) {
        depth--;
        push("punct", "}", pos, pos + 1);
        continue;
      }
      if (text[pos + 1] === "}") {
        push("end", "}}", pos, pos + 2);
        return tokens;
      }
      throw segment.parseError(`unexpected "}" (a template ends with "}}")`, pos, 1);
    }
    if (ch === "{") {
      depth++;
      push("punct", "{", pos, pos + 1);
      continue;
    }
    if (ch === '"' || ch === "'") {
      const { value, end } = lexString(segment, pos);
      push("string", value, pos, end);
      continue;
    }
    const code = text.charCodeAt(pos);
    if (code >= 48 && code <= 57) {
      NUMBER.lastIndex = pos;
      const m = NUMBER.exec(text)!;
      const end = pos + m[0].length;
      if (end < n && isNameChar(text.charCodeAt(end))) {
        let stop = end;
        while (stop < n && isNameChar(text.charCodeAt(stop))) stop++;
        throw segment.parseError(
          `"${text.slice(pos, stop)}" is not a number`,
          pos,
          stop - pos,
        );
      }
      const value = Number(m[0]);
      if (!Number.isFinite(value)) {
        throw segment.parseError(`${m[0]} is too large for a number`, pos, m[0].length);
      }
      push("number", m[0], pos, end, value);
      continue;
    }
    if (isNameChar(code)) {
      NAME.lastIndex = pos;
      const m = NAME.exec(text)!;
      push("name", m[0], pos, pos + m[0].length);
      continue;
    }
    const two = text.slice(pos, pos + 2);
    if (TWO_CHAR.has(two)) {
      push("punct", two, pos, pos + 2);
      continue;
    }
    if (ONE_CHAR.has(ch) || ONE_CHAR_COMPARE.has(ch)) {
      push("punct", ch, pos, pos + 1);
      continue;
    }
    if (ch === "=") {
      const strict = previous?.type === "punct" &&
        (previous.value === "==" || previous.value === "!=");
      throw segment.parseError(
        strict
          ? `there is no === or !==: == and != are already strict`
          : `"=" is not an operator: compare with ==`,
        pos,
        1,
      );
    }
    if (ch === "&" || ch === "|") {
      throw segment.parseError(`"${ch}" is not an operator: use ${ch}${ch}`, pos, 1);
    }
    const cp = text.codePointAt(pos)!;
    throw segment.parseError(
      `unexpected character ${JSON.stringify(String.fromCodePoint(cp))}`,
      pos,
      cp > 0xffff ? 2 : 1,
    );
  }
}

const SIMPLE_ESCAPES: Record<string, string> = {
  "\\": "\\",
  "'": "'",
  '"': '"',
  "/": "/",
  n: "\n",
  r: "\r",
  t: "\t",
  b: "\b",
  f: "\f",
  v: "\v",
  "0": "\0",
};

function lexString(segment: Segment, start: number): { value: string; end: number } {
  const text = segment.text;
  const quote = text[start];
  let out = "";
  let chunk = start + 1;
  let i = chunk;
  while (i < text.length) {
    const c = text[i];
    if (c === quote) return { value: out + text.slice(chunk, i), end: i + 1 };
    if (c !== "\\") {
      i++;
      continue;
    }
    out += text.slice(chunk, i);
    const e = text[i + 1];
    if (e !== undefined && Object.hasOwn(SIMPLE_ESCAPES, e)) {
      out += SIMPLE_ESCAPES[e];
      i += 2;
    } else if (e === "u") {
      const m = /^\{([0-9a-fA-F]{1,6})\}|^([0-9a-fA-F]{4})/.exec(text.slice(i + 2, i + 10));
      const cp = m === null ? -1 : parseInt(m[1] ?? m[2], 16);
      if (m === null || cp > 0x10ffff) {
        throw segment.parseError(
          `bad escape: write \\u and 4 hex digits, or \\u{…} with up to 6 hex digits (at most 10FFFF)`,
          i,
          2 + (m?.[0].length ?? 0),
        );
      }
      out += String.fromCodePoint(cp);
      i += 2 + m[0].length;
    } else {
      if (e === undefined) break;
      throw segment.parseError(
        `unknown escape "\\${e}" (use \\\\ for a backslash)`,
        i,
        2,
      );
    }
    chunk = i;
  }
  throw segment.parseError(`string is not closed by ${quote}`, start, 1);
}

// ---------------------------------------------------------------------------
// Parser

type Root = "inputs" | "nodes" | "env" | "run";
const ROOTS: readonly Root[] = ["inputs", "nodes", "env", "run"];
const FORBIDDEN_NAMES = new Set(["__proto__", "constructor", "prototype"]);
const NODE_FIELDS = ["output", "status"];
const RUN_FIELDS = ["id", "flowId"];
/** Maximum nesting of an expression (and of the parser's recursion). */
const MAX_DEPTH = 200;

type BinaryOp =
  | "||"
  | "&&"
  | "=="
  | "!="
  | "<"
  | "<="
  | ">"
  | ">="
  | "+"
  | "-"
  | "*"
  | "/"
  | "%";

const PRECEDENCE: ReadonlyMap<string, number> = new Map([
  ["||", 1],
  ["&&", 2],
  ["==", 3],
  ["!=", 3],
  ["<", 4],
  ["<=", 4],
  [">", 4],
  [">=", 4],
  ["+", 5],
  ["-", 5],
  ["*", 6],
  ["/", 6],
  ["%", 6],
]);

interface FunctionSpec {
  min: number;
  max: number;
  usage: string;
}

const FUNCTIONS: ReadonlyMap<string, FunctionSpec> = new Map([
  ["default", { min: 2, max: 2, usage: "default(value, fallback)" }],
  ["length", { min: 1, max: 1, usage: "length(value)" }],
  ["json", { min: 1, max: 1, usage: "json(value)" }],
  ["fromJson", { min: 1, max: 1, usage: "fromJson(text)" }],
  ["now", { min: 0, max: 0, usage: "now()" }],
  ["string", { min: 1, max: 1, usage: "string(value)" }],
  ["number", { min: 1, max: 1, usage: "number(value)" }],
  ["keys", { min: 1, max: 1, usage: "keys(object)" }],
  ["contains", { min: 2, max: 2, usage: "contains(haystack, needle)" }],
  ["upper", { min: 1, max: 1, usage: "upper(text)" }],
  ["lower", { min: 1, max: 1, usage: "lower(text)" }],
]);

interface AstBase {
  start: number;
  end: number;
  depth: number;
}

type Ast =
  | AstBase & { kind: "literal"; value: unknown }
  | AstBase & { kind: "root"; name: Root }
  /** Property with a key known at compile time; `index` >= 0 when it can also index an array. */
  | AstBase & { kind: "member"; object: Ast; key: string; index: number }
  | AstBase & { kind: "index"; object: Ast; key: Ast }
  | AstBase & { kind: "unary"; op: "!" | "-"; operand: Ast }
  | AstBase & { kind: "binary"; op: BinaryOp; left: Ast; right: Ast; opStart: number }
  | AstBase & { kind: "conditional"; test: Ast; then: Ast; otherwise: Ast }
  | AstBase & { kind: "array"; items: Ast[] }
  | AstBase & { kind: "object"; keys: string[]; values: Ast[] }
  | AstBase & { kind: "call"; name: string; args: Ast[]; nameEnd: number };

type Distribute<T> = T extends unknown ? Omit<T, "depth"> : never;
type AstInput = Distribute<Ast>;

/** A canonical array index ("0", "12"), or -1. */
function arrayIndexOf(key: string): number {
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(key)) return -1;
  const n = Number(key);
  return Number.isSafeInteger(n) ? n : -1;
}

function describe(token: Token, text: string): string {
  if (token.type === "end") return `"}}"`;
  const raw = text.slice(token.start, token.end);
  return JSON.stringify(raw.length > 30 ? raw.slice(0, 27) + "…" : raw);
}

class Parser {
  #pos = 0;
  #nesting = 0;

  constructor(
    readonly tokens: Token[],
    readonly segment: Segment,
    readonly refs: TemplateRefs,
  ) {}

  parseTemplate(): Ast {
    const first = this.#peek();
    if (first.type === "end") {
      throw this.#error(
        "the expression is empty",
        this.segment.start,
        this.segment.end - this.segment.start,
      );
    }
    const ast = this.#parseExpression();
    const next = this.#peek();
    if (next.type !== "end") {
      throw this.#error(
        `unexpected ${describe(next, this.segment.text)}: expected an operator or "}}"`,
        next.start,
        next.end - next.start,
      );
    }
    return ast;
  }

  #peek(): Token {
    return this.tokens[this.#pos];
  }

  #next(): Token {
    const token = this.tokens[this.#pos];
    if (token.type !== "end") this.#pos++;
    return token;
  }

  #isPunct(value: string): boolean {
    const token = this.tokens[this.#pos];
    return token.type === "punct" && token.value === value;
  }

  #expectPunct(value: string, what: string): Token {
    const token = this.#peek();
    if (token.type !== "punct" || token.value !== value) {
      throw this.#error(
        `expected "${value}" ${what}, found ${describe(token, this.segment.text)}`,
        token.start,
        token.end - token.start,
      );
    }
    return this.#next();
  }

  #error(message: string, offset: number, length: number): TemplateError {
    return this.segment.parseError(message, offset, length);
  }

  #node(input: AstInput, ...children: Ast[]): Ast {
    let depth = 0;
    for (const child of children) if (child.depth > depth) depth = child.depth;
    depth++;
    if (depth > MAX_DEPTH) {
      throw this.#error(
        `the expression is nested too deeply (more than ${MAX_DEPTH} levels)`,
        input.start,
        input.end - input.start,
      );
    }
    return { ...input, depth } as Ast;
  }

  #enter(token: Token): void {
    if (++this.#nesting > MAX_DEPTH) {
      throw this.#error(
        `the expression is nested too deeply (more than ${MAX_DEPTH} levels)`,
        token.start,
        token.end - token.start,
      );
    }
  }

  #parseExpression(): Ast {
    this.#enter(this.#peek());
    const test = this.#parseBinary(1);
    let result = test;
    if (this.#isPunct("?")) {
      this.#next();
      const then = this.#parseExpression();
      this.#expectPunct(":", 'after the "then" part of "? :"');
      const otherwise = this.#parseExpression();
      result = this.#node(
        { kind: "conditional", test, then, otherwise, start: test.start, end: otherwise.end },
        test,
        then,
        otherwise,
      );
    }
    this.#nesting--;
    return result;
  }

  #parseBinary(minPrecedence: number): Ast {
    let left = this.#parseUnary();
    let previous = 0;
    for (;;) {
      const token = this.#peek();
      if (token.type !== "punct") break;
      const precedence = PRECEDENCE.get(token.value);
      if (precedence === undefined || precedence < minPrecedence) break;
      if (precedence === previous && (precedence === 3 || precedence === 4)) {
        throw this.#error(
          `chained ${token.value} is ambiguous: group with parentheses or join with &&`,
          token.start,
          token.end - token.start,
        );
      }
      this.#next();
      const right = this.#parseBinary(precedence + 1);
      left = this.#node(
        {
          kind: "binary",
          op: token.value as BinaryOp,
          left,
          right,
          opStart: token.start,
          start: left.start,
          end: right.end,
        },
        left,
        right,
      );
      previous = precedence;
    }
    return left;
  }

  #parseUnary(): Ast {
    const token = this.#peek();
    if (token.type === "punct" && (token.value === "!" || token.value === "-")) {
      this.#enter(token);
      this.#next();
      const operand = this.#parseUnary();
      this.#nesting--;
      return this.#node({
        kind: "unary",
        op: token.value,
        operand,
        start: token.start,
        end: operand.end,
      }, operand);
    }
    return this.#parsePostfix();
  }

  #parsePostfix(): Ast {
    let node = this.#parsePrimary();
    const root = node.kind === "root" ? node.name : undefined;
    let step = 0;
    for (;;) {
      const token = this.#peek();
      let key: string | undefined;
      let keyToken: Token;
      let dynamic: Ast | undefined;
      if (token.type === "punct" && token.value === ".") {
        this.#next();
        keyToken = this.#next(); // the lexer guarantees a member name after "."
        key = keyToken.value;
      } else if (token.type === "punct" && token.value === "[") {
        this.#next();
        keyToken = this.#peek();
        const inner = this.#parseExpression();
        const close = this.#expectPunct("]", "to close [");
        if (inner.kind === "literal" && typeof inner.value === "string") {
          key = inner.value;
        } else if (
          inner.kind === "literal" && typeof inner.value === "number" &&
          Number.isSafeInteger(inner.value) && inner.value >= 0
        ) {
          key = String(inner.value);
        } else {
          dynamic = inner;
        }
        if (dynamic !== undefined) {
          node = this.#node(
            { kind: "index", object: node, key: dynamic, start: node.start, end: close.end },
            node,
            dynamic,
          );
        }
      } else if (token.type === "punct" && token.value === "(") {
        throw this.#error(
          `only the built-in functions can be called (${[...FUNCTIONS.keys()].join(", ")})`,
          token.start,
          1,
        );
      } else {
        break;
      }
      if (key !== undefined) {
        if (FORBIDDEN_NAMES.has(key)) {
          throw this.#error(
            `"${key}" cannot be used as a property name`,
            keyToken.start,
            keyToken.end - keyToken.start,
          );
        }
        node = this.#node({
          kind: "member",
          object: node,
          key,
          index: arrayIndexOf(key),
          start: node.start,
          end: keyToken.end,
        }, node);
      }
      if (root !== undefined) this.#checkRootStep(root, step, key, keyToken);
      step++;
    }
    if (root === "nodes" && step === 0) {
      throw this.#error(
        "nodes must be followed by a node id, as in nodes.<id>.output",
        node.start,
        node.end - node.start,
      );
    }
    return node;
  }

  /** Record references and check the fixed parts of `nodes.<id>.output` and `run.id`. */
  #checkRootStep(root: Root, step: number, key: string | undefined, token: Token): void {
    const at = (message: string) => this.#error(message, token.start, token.end - token.start);
    if (step === 0) {
      if (key === undefined) {
        if (root === "nodes") {
          throw at("a node must be named literally, as in nodes.<id> or nodes['<id>']");
        }
        return;
      }
      if (root === "run") {
        if (!RUN_FIELDS.includes(key)) {
          throw at(
            `run has no "${key}"; it has ${RUN_FIELDS.join(" and ")}${didYouMean(key, RUN_FIELDS)}`,
          );
        }
        return;
      }
      this.refs[root].add(key);
    } else if (step === 1 && root === "nodes" && key !== undefined) {
      if (!NODE_FIELDS.includes(key)) {
        throw at(
          `a node has no "${key}"; it has ${NODE_FIELDS.join(" and ")}${
            didYouMean(key, NODE_FIELDS)
          }`,
        );
      }
    }
  }

  #parsePrimary(): Ast {
    const token = this.#next();
    const text = this.segment.text;
    switch (token.type) {
      case "number":
        return this.#node({
          kind: "literal",
          value: token.number,
          start: token.start,
          end: token.end,
        });
      case "string":
        return this.#node({
          kind: "literal",
          value: token.value,
          start: token.start,
          end: token.end,
        });
      case "name":
        return this.#parseName(token);
      case "punct":
        if (token.value === "(") {
          const inner = this.#parseExpression();
          this.#expectPunct(")", "to close (");
          return inner;
        }
        if (token.value === "[") return this.#parseArray(token);
        if (token.value === "{") return this.#parseObject(token);
        break;
      case "end": {
        const before = this.tokens[this.#pos - 1];
        throw this.#error(
          before === undefined
            ? "expected a value"
            : `expected a value after ${describe(before, text)}, found "}}"`,
          token.start,
          2,
        );
      }
    }
    throw this.#error(
      `expected a value, found ${describe(token, text)}`,
      token.start,
      token.end - token.start,
    );
  }

  #parseName(token: Token): Ast {
    const name = token.value;
    const at = (message: string) => this.#error(message, token.start, token.end - token.start);
    if (FORBIDDEN_NAMES.has(name)) throw at(`"${name}" is not allowed as a name`);
    if (name === "true" || name === "false" || name === "null") {
      return this.#node({
        kind: "literal",
        value: name === "null" ? null : name === "true",
        start: token.start,
        end: token.end,
      });
    }
    if (this.#isPunct("(")) return this.#parseCall(token);
    if ((ROOTS as readonly string[]).includes(name)) {
      return this.#node({ kind: "root", name: name as Root, start: token.start, end: token.end });
    }
    if (FUNCTIONS.has(name)) {
      throw at(`${name} is a function: call it as ${FUNCTIONS.get(name)!.usage}`);
    }
    throw at(
      `unknown name "${name}": an expression starts from inputs, nodes, env or run, ` +
        `a literal, or a function call${didYouMean(name, [...ROOTS, "true", "false", "null"])}`,
    );
  }

  #parseCall(nameToken: Token): Ast {
    const name = nameToken.value;
    const spec = FUNCTIONS.get(name);
    if (spec === undefined) {
      throw this.#error(
        `unknown function "${name}"${didYouMean(name, FUNCTIONS.keys())}; the functions are ${
          [...FUNCTIONS.keys()].join(", ")
        }`,
        nameToken.start,
        nameToken.end - nameToken.start,
      );
    }
    this.#next(); // (
    const args: Ast[] = [];
    while (!this.#isPunct(")")) {
      args.push(this.#parseExpression());
      if (!this.#isPunct(",")) break;
      this.#next();
    }
    const close = this.#expectPunct(")", `to close ${name}(`);
    if (args.length < spec.min || args.length > spec.max) {
      const want = spec.min === spec.max ? `${spec.min}` : `${spec.min} to ${spec.max}`;
      throw this.#error(
        `${name}() takes ${want} argument${
          spec.max === 1 ? "" : "s"
        }, got ${args.length}: ${spec.usage}`,
        nameToken.start,
        close.end - nameToken.start,
      );
    }
    return this.#node({
      kind: "call",
      name,
      args,
      nameEnd: nameToken.end,
      start: nameToken.start,
      end: close.end,
    }, ...args);
  }

  #parseArray(open: Token): Ast {
    const items: Ast[] = [];
    while (!this.#isPunct("]")) {
      items.push(this.#parseExpression());
      if (!this.#isPunct(",")) break;
      this.#next();
    }
    const close = this.#expectPunct("]", "to close the array");
    return this.#node({ kind: "array", items, start: open.start, end: close.end }, ...items);
  }

  #parseObject(open: Token): Ast {
    const keys: string[] = [];
    const values: Ast[] = [];
    while (!this.#isPunct("}")) {
      const keyToken = this.#next();
      if (keyToken.type !== "name" && keyToken.type !== "string") {
        throw this.#error(
          `expected a key (a name or a quoted string), found ${
            describe(keyToken, this.segment.text)
          }`,
          keyToken.start,
          keyToken.end - keyToken.start,
        );
      }
      const key = keyToken.value;
      const at = (message: string) =>
        this.#error(message, keyToken.start, keyToken.end - keyToken.start);
      if (FORBIDDEN_NAMES.has(key)) throw at(`"${key}" cannot be used as a key`);
      if (keys.includes(key)) throw at(`duplicate key "${key}"`);
      this.#expectPunct(":", `after the key "${key}"`);
      keys.push(key);
      values.push(this.#parseExpression());
      if (!this.#isPunct(",")) break;
      this.#next();
    }
    const close = this.#expectPunct("}", "to close the object");
    return this.#node(
      { kind: "object", keys, values, start: open.start, end: close.end },
      ...values,
    );
  }
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
        case "run":
          return (scope) => scope.run;
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
      return compileCall(ast, segment);
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
        if (typeof a === "string" && typeof b === "string") return a + b;
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

function compileCall(ast: Extract<Ast, { kind: "call" }>, segment: Segment): Evaluator {
  const args = ast.args.map((arg) => compileAst(arg, segment));
  const name = ast.name;
  const fail = (message: string, cause?: unknown): never => {
    throw segment.evalError(`${name}() ${message}`, ast.start, ast.nameEnd - ast.start, cause);
  };
  const [first, second] = args;
  switch (name) {
    case "default":
      return (scope, clock) => {
        const value = first(scope, clock);
        return value === undefined || value === null ? second(scope, clock) : value;
      };
    case "length":
      return (scope, clock) => {
        const value = first(scope, clock);
        if (typeof value === "string" || Array.isArray(value)) return value.length;
        if (isPlainObject(value)) return Object.keys(value).length;
        return fail(`takes a string, an array or an object, got ${typeName(value)}`);
      };
    case "json":
      return (scope, clock) => {
        const value = first(scope, clock);
        try {
          return JSON.stringify(value) ?? "null";
        } catch (e) {
          return fail(`cannot write the value as JSON: ${(e as Error).message}`, e);
        }
      };
    case "fromJson":
      return (scope, clock) => {
        const value = first(scope, clock);
        if (typeof value !== "string") return fail(`takes a string, got ${typeName(value)}`);
        try {
          return JSON.parse(value);
        } catch (e) {
          return fail(`got text that is not JSON: ${(e as Error).message}`, e);
        }
      };
    case "now":
      return (_scope, clock) => (clock ?? systemClock).now();
    case "string":
      return (scope, clock) => toText(first(scope, clock));
    case "number":
      return (scope, clock) => {
        const value = first(scope, clock);
        if (typeof value === "number") return value;
        if (typeof value === "boolean") return value ? 1 : 0;
        if (typeof value === "string") {
          const n = value.trim() === "" ? NaN : Number(value);
          if (Number.isFinite(n)) return n;
          const shown = value.length > 40 ? value.slice(0, 37) + "…" : value;
          return fail(`cannot read ${JSON.stringify(shown)} as a number`);
        }
        return fail(`takes a number, a string or a boolean, got ${typeName(value)}`);
      };
    case "keys":
      return (scope, clock) => {
        const value = first(scope, clock);
        if (isPlainObject(value)) return Object.keys(value);
        return fail(`takes an object, got ${typeName(value)}`);
      };
    case "contains":
      return (scope, clock) => {
        const haystack = first(scope, clock);
        const needle = second(scope, clock);
        if (typeof haystack === "string") {
          if (typeof needle !== "string") {
            return fail(`looks for a string in a string, got ${typeName(needle)}`);
          }
          return haystack.includes(needle);
        }
        if (Array.isArray(haystack)) {
          for (const item of haystack) if (jsonEqual(item, needle)) return true;
          return false;
        }
        if (isPlainObject(haystack)) {
          if (typeof needle !== "string") {
            return fail(`looks for a key (a string) in an object, got ${typeName(needle)}`);
          }
          return Object.hasOwn(haystack, needle);
        }
        return fail(`takes a string, an array or an object to look in, got ${typeName(haystack)}`);
      };
    case "upper":
    case "lower":
      return (scope, clock) => {
        const value = first(scope, clock);
        if (typeof value !== "string") return fail(`takes a string, got ${typeName(value)}`);
        return name === "upper" ? value.toUpperCase() : value.toLowerCase();
      };
  }
  throw new Error(`unreachable: function ${name}`);
}

// ---------------------------------------------------------------------------
// Value helpers

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * An own property of a plain object or an array element; `undefined` for
 * anything else (safe navigation).
 */
function readProperty(base: unknown, key: string, index: number): unknown {
  if (typeof base !== "object" || base === null) return undefined;
  if (Array.isArray(base)) return index >= 0 && index < base.length ? base[index] : undefined;
  const proto = Object.getPrototypeOf(base);
  if (proto !== Object.prototype && proto !== null) return undefined;
  return Object.hasOwn(base, key) ? (base as Record<string, unknown>)[key] : undefined;
}

/**
 * Deep equality of the values' JSON: a property holding `undefined` counts as
 * absent, and `undefined` elsewhere counts as `null`.
 */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || a === null || b === undefined || b === null) {
    return (a === undefined || a === null) && (b === undefined || b === null);
  }
  if (typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let k = 0; k < a.length; k++) if (!jsonEqual(a[k], b[k])) return false;
    return true;
  }
  if (Array.isArray(b) || !isPlainObject(a) || !isPlainObject(b)) return false;
  for (const key of Object.keys(a)) {
    const x = a[key];
    const y = Object.hasOwn(b, key) ? b[key] : undefined;
    if (x === undefined || y === undefined ? x !== y : !jsonEqual(x, y)) return false;
  }
  for (const key of Object.keys(b)) {
    if (b[key] !== undefined && !Object.hasOwn(a, key)) return false;
  }
  return true;
}

/** How interpolation (and `string()`) turns a value into text. */
function toText(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value;
    case "undefined":
      return "";
    case "object":
      return value === null ? "null" : JSON.stringify(value) ?? "";
    default:
      return String(value);
  }
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}
