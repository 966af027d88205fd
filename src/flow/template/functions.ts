/**
 * The built-in functions of the template language: their names and argument
 * counts (checked by the parser) and their evaluation (checked argument types).
 *
 * @module
 */
import { systemClock } from "../../clock.ts";
import type { Segment } from "./_segment.ts";
import type { Ast, Evaluator, TemplateScope } from "./ast.ts";
import { isPlainObject, jsonEqual, readProperty, toText, typeName } from "./values.ts";
import { parseJson } from "../../_json.ts";
import { sha256Hex } from "../../_sha256.ts";
import { parseDuration } from "../../duration.ts";
import { canonicalTimezone, parseIsoTime, timezoneProblem } from "../../timezone.ts";
import { derivedSecrets, quoteText } from "./_derived_secrets.ts";
import { decodeBase64, encodeBase64, utf8 } from "./_encoding.ts";
import { compileDatePattern, type DatePattern, formatDate } from "./_date_format.ts";

/** How a built-in function is called: its argument count and a usage line for messages. */
export interface FunctionSpec {
  /** The fewest arguments. */
  min: number;
  /** The most arguments. */
  max: number;
  /** How to call it, as in `default(value, fallback)`: its parameters' names come from it. */
  usage: string;
  /**
   * What each argument must be, by position (the last one stands for the rest):
   * `string`, `number`, `integer`, `boolean`, `array`, `object`, or several
   * joined by `|`; `any` (or nothing) takes every value. An argument written as
   * a literal is checked when compiling.
   */
  types?: readonly string[];
}

const spec = (usage: string, min: number, max: number, ...types: string[]): FunctionSpec => ({
  min,
  max,
  usage,
  ...(types.length === 0 ? {} : { types }),
});

/** The most arguments `format()`, `min()` and `max()` take. */
const MAX_VARIADIC = 32;

/** The built-in functions by name, in the order messages list them. */
export const FUNCTIONS: ReadonlyMap<string, FunctionSpec> = new Map([
  ["default", spec("default(value, fallback)", 2, 2)],
  ["length", spec("length(value)", 1, 1)],
  ["json", spec("json(value)", 1, 1)],
  ["fromJson", spec("fromJson(text)", 1, 1)],
  ["now", spec("now()", 0, 0)],
  ["string", spec("string(value)", 1, 1)],
  ["number", spec("number(value)", 1, 1)],
  ["keys", spec("keys(object)", 1, 1)],
  ["contains", spec("contains(haystack, needle)", 2, 2)],
  ["upper", spec("upper(text)", 1, 1)],
  ["lower", spec("lower(text)", 1, 1)],
  // Text
  ["startsWith", spec("startsWith(text, prefix)", 2, 2, "string", "string")],
  ["endsWith", spec("endsWith(text, suffix)", 2, 2, "string", "string")],
  ["trim", spec("trim(text)", 1, 1, "string")],
  ["split", spec("split(text, separator)", 2, 2, "string", "string")],
  ["join", spec("join(list, separator?)", 1, 2, "array", "string")],
  ["replace", spec("replace(text, search, replacement)", 3, 3, "string")],
  ["slice", spec("slice(value, start, end?)", 2, 3, "string|array", "integer")],
  ["format", spec("format(pattern, values...)", 1, MAX_VARIADIC, "string", "any")],
  ["padStart", spec("padStart(value, length, fill?)", 2, 3, "string|number", "integer", "string")],
  ["padEnd", spec("padEnd(value, length, fill?)", 2, 3, "string|number", "integer", "string")],
  // Numbers
  ["min", spec("min(numbers...)", 1, MAX_VARIADIC, "number|array", "number")],
  ["max", spec("max(numbers...)", 1, MAX_VARIADIC, "number|array", "number")],
  ["sum", spec("sum(list)", 1, 1, "array")],
  ["round", spec("round(value, digits?)", 1, 2, "number", "integer")],
  ["floor", spec("floor(value)", 1, 1, "number")],
  ["ceil", spec("ceil(value)", 1, 1, "number")],
  ["abs", spec("abs(value)", 1, 1, "number")],
  // Lists and objects
  ["values", spec("values(object)", 1, 1, "object")],
  ["entries", spec("entries(object)", 1, 1, "object")],
  ["sort", spec("sort(list, field?)", 1, 2, "array", "string")],
  ["unique", spec("unique(list)", 1, 1, "array")],
  ["reverse", spec("reverse(list)", 1, 1, "array")],
  ["flatten", spec("flatten(list)", 1, 1, "array")],
  ["range", spec("range(end) or range(start, end)", 1, 2, "integer")],
  ["pluck", spec("pluck(list, field)", 2, 2, "array", "string")],
  // Time
  ["formatDate", spec("formatDate(time, pattern, timezone?)", 2, 3, "number|string", "string")],
  ["parseDate", spec("parseDate(text, timezone?)", 1, 2, "string")],
  ["duration", spec("duration(text)", 1, 1, "string|number")],
  // Encoding
  ["base64", spec("base64(text)", 1, 1, "string")],
  ["fromBase64", spec("fromBase64(text)", 1, 1, "string")],
  ["urlEncode", spec("urlEncode(text)", 1, 1, "string")],
  ["sha256", spec("sha256(text)", 1, 1, "string")],
]);

/** The most elements `range()` makes, and the longest text `padStart()`/`padEnd()` make. */
export const MAX_GENERATED = 10_000;

/**
 * The longest text a function makes (characters), and the most elements of a
 * list it makes: `replace()`, `join()` and `format()` are checked before they
 * build their text (a text made of many copies of another could otherwise take
 * the process's whole memory), the other functions on what they return.
 */
export const MAX_TEXT = 4 * 1024 * 1024;

const sizeText = (n: number) => n.toLocaleString("en-US");

/**
 * Why a result of `size` (characters of text, or elements of a list) is over
 * {@linkcode MAX_TEXT}, or `undefined`.
 */
export function oversize(size: number, what: "text" | "list"): string | undefined {
  if (size <= MAX_TEXT) return undefined;
  return what === "text"
    ? `would make text of ${sizeText(size)} characters, over the limit of ${
      sizeText(MAX_TEXT)
    }; make it from smaller pieces, or do this in a node`
    : `would make a list of ${sizeText(size)} elements, over the limit of ${
      sizeText(MAX_TEXT)
    }; do this in a node`;
}

/** The times dates handle: from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z. */
const MIN_TIME = -62_135_596_800_000;
const MAX_TIME = 253_402_300_799_999;

type Call = Extract<Ast, { kind: "call" }>;

/** What an argument written as a literal is, or `undefined` when it is known only when evaluating. */
function staticValue(ast: Ast): { value: unknown } | { type: string } | undefined {
  if (ast.kind === "literal") return { value: ast.value };
  if (ast.kind === "array") return { type: "array" };
  if (ast.kind === "object") return { type: "object" };
  return undefined;
}

/** Whether `value` is one of the `|`-separated `types`. */
function hasType(value: unknown, types: string): boolean {
  if (types === "any") return true;
  const name = typeName(value);
  for (const type of types.split("|")) {
    if (type === name) return true;
    if (type === "integer" && Number.isSafeInteger(value)) return true;
  }
  return false;
}

/** `string|array` → `a string or an array`. */
function describeTypes(types: string): string {
  return types.split("|").map((t) => (/^[aeiou]/.test(t) ? "an " : "a ") + t).join(" or ");
}

/** What a value is, for "got …": its type, or the number itself when a type was right but not its value. */
function describeValue(value: unknown, types: string): string {
  const name = typeName(value);
  return name === "number" && types.includes("integer") ? String(value) : name;
}

/** The name of parameter `k` of a call with `count` arguments, from the function's usage. */
function paramName(spec: FunctionSpec, k: number, count: number): string {
  const open = spec.usage.lastIndexOf("(");
  const names = spec.usage.slice(open + 1, -1).split(", ").map((n) => n.replace(/[?.]+$/, ""));
  if (spec.usage.startsWith("range(") && count === 1) return "end";
  return names[Math.min(k, names.length - 1)];
}

/**
 * The evaluator of a call to a built-in function, given its arguments already
 * compiled (in order). The parser has checked the name and the argument count;
 * arguments written as literals are checked here (a compile-time error), the
 * rest when evaluating: a `TemplateError` that points at the function's name
 * and says which argument was wrong and what it got.
 */
export function compileCall(ast: Call, args: readonly Evaluator[], segment: Segment): Evaluator {
  const evaluate = compileUnchecked(ast, args, segment);
  return (scope, clock) => {
    const value = evaluate(scope, clock);
    const problem = typeof value === "string"
      ? oversize(value.length, "text")
      : Array.isArray(value)
      ? oversize(value.length, "list")
      : undefined;
    if (problem === undefined) return value;
    throw segment.evalError(`${ast.name}() ${problem}`, ast.start, ast.nameEnd - ast.start);
  };
}

/** {@linkcode compileCall} without the check of the size of what it returns. */
function compileUnchecked(ast: Call, args: readonly Evaluator[], segment: Segment): Evaluator {
  const name = ast.name;
  const spec = FUNCTIONS.get(name)!;
  const fail = (message: string, cause?: unknown): never => {
    throw segment.evalError(`${name}() ${message}`, ast.start, ast.nameEnd - ast.start, cause);
  };
  const typeOf = (k: number): string | undefined => {
    const types = spec.types;
    return types === undefined ? undefined : types[Math.min(k, types.length - 1)];
  };
  const wrongType = (k: number, types: string, value: unknown): string => {
    const as = spec.max === 1 ? "" : ` as ${paramName(spec, k, ast.args.length)}`;
    return `takes ${describeTypes(types)}${as}, got ${describeValue(value, types)}`;
  };
  // Arguments written as literals are checked now.
  ast.args.forEach((arg, k) => {
    const types = typeOf(k);
    const known = staticValue(arg);
    if (types === undefined || known === undefined) return;
    const ok = "value" in known ? hasType(known.value, types) : hasType(
      known.type === "array" ? [] : {},
      types,
    );
    if (!ok) {
      const got = "value" in known ? known.value : known.type === "array" ? [] : {};
      throw segment.parseError(
        `${name}() ${wrongType(k, types, got)}`,
        arg.start,
        arg.end - arg.start,
      );
    }
  });
  /** Argument `k`, checked against the function's types. */
  const arg = <T>(k: number, scope: TemplateScope, clock: Parameters<Evaluator>[1]): T => {
    const value = args[k](scope, clock);
    const types = typeOf(k);
    if (types !== undefined && !hasType(value, types)) fail(wrongType(k, types, value));
    return value as T;
  };
  const literal = (k: number): unknown => {
    const a = ast.args[k];
    return a !== undefined && a.kind === "literal" ? a.value : undefined;
  };
  const compileError = (k: number, message: string): never => {
    const a = ast.args[k];
    throw segment.parseError(`${name}() ${message}`, a.start, a.end - a.start);
  };
  const derived = derivedSecrets(fail);
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
        let parsed: unknown;
        try {
          parsed = parseJson(value);
        } catch (e) {
          // V8 quotes up to 10 characters of the text where it found an unexpected token
          // (`Unexpected token 'M', ..."e_key": MIIEvQIBAD"... is not valid JSON`): a cut of a
          // secret, which no masking finds. Not quoted when the text holds one.
          let message = (e as Error).message;
          if (/ is not valid JSON$/.test(message) && (scope.masker?.find(value).length ?? 0) > 0) {
            message = "Unexpected token in JSON (not quoted: the text holds a secret)";
          }
          return fail(`got text that is not JSON: ${message}`, e);
        }
        if (!isFiniteJson(parsed)) {
          const huge = value.match(/-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g)?.find((n) =>
            !Number.isFinite(Number(n))
          );
          // (Not quoted from a secret: it would be a cut of it.)
          const secret = (scope.masker?.find(value).length ?? 0) > 0;
          const shown = huge === undefined || huge.length > 40 || secret ? "" : ` (${huge})`;
          return fail(
            `got a number too large to hold${shown}: the largest is about 1.8e308; write it as a string`,
          );
        }
        derived.parsed(scope, value, parsed);
        return parsed;
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
          if (Number.isFinite(n)) {
            // A number read from a secret: the records mask it where it is a value.
            derived.whole(scope, value, String(n));
            return n;
          }
          return fail(`cannot read ${quoteText(scope, value)} as a number`);
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
        const out = name === "upper" ? value.toUpperCase() : value.toLowerCase();
        if (out !== value) derived.whole(scope, value, out);
        return out;
      };

    // -- Text
    case "startsWith":
    case "endsWith":
      return (scope, clock) => {
        const text = arg<string>(0, scope, clock);
        const part = arg<string>(1, scope, clock);
        return name === "startsWith" ? text.startsWith(part) : text.endsWith(part);
      };
    case "trim":
      return (scope, clock) => {
        const text = arg<string>(0, scope, clock);
        const out = text.trim();
        if (out.length !== text.length) {
          const start = text.length - text.trimStart().length;
          derived.cut(scope, text, [[start, start + out.length]]);
        }
        return out;
      };
    case "split": {
      if (literal(1) === "") compileError(1, "takes a separator of at least one character");
      return (scope, clock) => {
        const text = arg<string>(0, scope, clock);
        const separator = arg<string>(1, scope, clock);
        if (separator === "") return fail('takes a separator of at least one character, got ""');
        if (text === "") return [];
        const pieces: [number, number][] = [];
        let at = 0;
        for (;;) {
          const next = text.indexOf(separator, at);
          if (next < 0) break;
          pieces.push([at, next]);
          at = next + separator.length;
        }
        pieces.push([at, text.length]);
        derived.cut(scope, text, pieces);
        return pieces.map(([a, b]) => text.slice(a, b));
      };
    }
    case "join":
      return (scope, clock) => {
        const list = arg<unknown[]>(0, scope, clock);
        const separator = args.length > 1 ? arg<string>(1, scope, clock) : ",";
        let out = "";
        for (let k = 0; k < list.length; k++) {
          const item = list[k];
          if (typeof item === "object" && item !== null) {
            return fail(`joins strings, numbers and booleans, got ${typeName(item)} at [${k}]`);
          }
          const piece = (k === 0 ? "" : separator) + toText(item);
          const problem = oversize(out.length + piece.length, "text");
          if (problem !== undefined) return fail(problem);
          out += piece;
        }
        return out;
      };
    case "replace": {
      if (literal(1) === "") compileError(1, "takes a search text of at least one character");
      return (scope, clock) => {
        const text = arg<string>(0, scope, clock);
        const search = arg<string>(1, scope, clock);
        const replacement = arg<string>(2, scope, clock);
        if (search === "") return fail('takes a search text of at least one character, got ""');
        const parts = text.split(search);
        const problem = oversize(
          text.length + (parts.length - 1) * (replacement.length - search.length),
          "text",
        );
        if (problem !== undefined) return fail(problem);
        const out = parts.join(replacement);
        if (out !== text) derived.whole(scope, text, out);
        return out;
      };
    }
    case "slice":
      return (scope, clock) => {
        const value = arg<string | unknown[]>(0, scope, clock);
        const length = value.length;
        const bound = (n: number) => (n < 0 ? Math.max(length + n, 0) : Math.min(n, length));
        const start = bound(arg<number>(1, scope, clock));
        const end = args.length > 2 ? bound(arg<number>(2, scope, clock)) : length;
        if (typeof value !== "string") return value.slice(start, end);
        if (end > start) derived.cut(scope, value, [[start, end]]);
        return value.slice(start, end);
      };
    case "format": {
      const pattern = literal(0);
      if (typeof pattern === "string") {
        const problem = formatProblem(pattern, args.length - 1);
        if (problem !== undefined) compileError(0, problem);
      }
      return (scope, clock) => {
        const text = arg<string>(0, scope, clock);
        const values: unknown[] = [];
        for (let k = 1; k < args.length; k++) values.push(args[k](scope, clock));
        const problem = formatProblem(text, values.length);
        if (problem !== undefined) return fail(problem);
        const texts = values.map(toText);
        // Its length before it is made: each {N} becomes its value, each {{ or }} one brace.
        let size = text.length;
        for (const m of text.matchAll(/\{\{|\}\}|\{(\d+)\}/g)) {
          size += m[1] === undefined ? -1 : texts[Number(m[1])].length - m[0].length;
        }
        const tooLarge = oversize(size, "text");
        if (tooLarge !== undefined) return fail(tooLarge);
        return text.replace(
          /\{\{|\}\}|\{(\d+)\}/g,
          (match, index?: string) => index === undefined ? match[0] : texts[Number(index)],
        );
      };
    }
    case "padStart":
    case "padEnd":
      return (scope, clock) => {
        const value = arg<string | number>(0, scope, clock);
        const text = typeof value === "number" ? String(value) : value;
        const length = arg<number>(1, scope, clock);
        const fill = args.length > 2 ? arg<string>(2, scope, clock) : " ";
        if (length > MAX_GENERATED) {
          return fail(`makes text of at most ${MAX_GENERATED} characters, got length ${length}`);
        }
        if (fill === "") return fail('takes a fill of at least one character, got ""');
        const out = name === "padStart" ? text.padStart(length, fill) : text.padEnd(length, fill);
        if (out !== text) derived.whole(scope, fill, out);
        return out;
      };

    // -- Numbers
    case "min":
    case "max":
      return (scope, clock) => {
        let numbers: unknown[];
        if (args.length === 1) {
          const only = arg<number | unknown[]>(0, scope, clock);
          numbers = typeof only === "number" ? [only] : only;
        } else {
          numbers = [];
          for (let k = 0; k < args.length; k++) {
            const value = args[k](scope, clock);
            if (typeof value !== "number") {
              return fail(`takes numbers, got ${typeName(value)} as argument ${k + 1}`);
            }
            numbers.push(value);
          }
        }
        if (numbers.length === 0) return null;
        let best = numbers[0] as number;
        for (let k = 0; k < numbers.length; k++) {
          const n = numbers[k];
          if (typeof n !== "number") {
            return fail(`takes a list of numbers, got ${typeName(n)} at [${k}]`);
          }
          if (name === "min" ? n < best : n > best) best = n;
        }
        return best;
      };
    case "sum":
      return (scope, clock) => {
        const list = arg<unknown[]>(0, scope, clock);
        let total = 0;
        for (let k = 0; k < list.length; k++) {
          const n = list[k];
          if (typeof n !== "number") {
            return fail(`takes a list of numbers, got ${typeName(n)} at [${k}]`);
          }
          total += n;
        }
        if (!Number.isFinite(total)) return fail(`got ${total}, which is not a finite number`);
        return total;
      };
    case "round":
      return (scope, clock) => {
        const x = arg<number>(0, scope, clock);
        const digits = args.length > 1 ? arg<number>(1, scope, clock) : 0;
        if (digits < -15 || digits > 15) return fail(`takes digits from -15 to 15, got ${digits}`);
        return roundHalfAway(x, digits);
      };
    case "floor":
    case "ceil":
    case "abs":
      return (scope, clock) => {
        const x = arg<number>(0, scope, clock);
        const out = name === "floor" ? Math.floor(x) : name === "ceil" ? Math.ceil(x) : Math.abs(x);
        return out === 0 ? 0 : out; // never -0
      };

    // -- Lists and objects
    case "values":
      return (scope, clock) => Object.values(arg<Record<string, unknown>>(0, scope, clock));
    case "entries":
      return (scope, clock) =>
        Object.entries(arg<Record<string, unknown>>(0, scope, clock)).map(([key, value]) => ({
          key,
          value,
        }));
    case "sort":
      return (scope, clock) => {
        const list = arg<unknown[]>(0, scope, clock);
        const field = args.length > 1 ? arg<string>(1, scope, clock) : undefined;
        const keyOf = (item: unknown, k: number): number | string => {
          const key = field === undefined ? item : readProperty(item, field, -1);
          if (typeof key === "number" || typeof key === "string") return key;
          const what = field === undefined ? `[${k}]` : `[${k}].${field}`;
          return fail(`sorts numbers or strings, got ${typeName(key)} at ${what}`);
        };
        const keyed = list.map((item, k) => ({ key: keyOf(item, k), item }));
        const isNumber = keyed.length > 0 && typeof keyed[0].key === "number";
        const mixed = keyed.findIndex((e) => (typeof e.key === "number") !== isNumber);
        if (mixed >= 0) {
          const [a, b] = isNumber ? ["number", "string"] : ["string", "number"];
          const at = field === undefined ? "" : `.${field}`;
          return fail(
            `sorts numbers or strings, not both: got ${a} at [0]${at} and ${b} at [${mixed}]${at}`,
          );
        }
        // Array.prototype.sort is stable; strings compare by UTF-16 code units, as < does.
        keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        return keyed.map((e) => e.item);
      };
    case "unique":
      return (scope, clock) => {
        const list = arg<unknown[]>(0, scope, clock);
        const seen = new Set<string>();
        const out: unknown[] = [];
        for (const item of list) {
          const key = canonicalJson(item);
          if (seen.has(key)) continue;
          seen.add(key);
          out.push(item);
        }
        return out;
      };
    case "reverse":
      return (scope, clock) => arg<unknown[]>(0, scope, clock).slice().reverse();
    case "flatten":
      return (scope, clock) => {
        const out: unknown[] = [];
        for (const item of arg<unknown[]>(0, scope, clock)) {
          if (Array.isArray(item)) out.push(...item);
          else out.push(item);
        }
        return out;
      };
    case "range":
      return (scope, clock) => {
        const start = args.length > 1 ? arg<number>(0, scope, clock) : 0;
        const end = arg<number>(args.length - 1, scope, clock);
        const count = Math.max(end - start, 0);
        if (count > MAX_GENERATED) {
          return fail(`makes at most ${MAX_GENERATED} numbers, got ${start} to ${end}`);
        }
        const out: number[] = [];
        for (let n = start; n < end; n++) out.push(n);
        return out;
      };
    case "pluck":
      return (scope, clock) => {
        const list = arg<unknown[]>(0, scope, clock);
        const field = arg<string>(1, scope, clock);
        return list.map((item) => readProperty(item, field, -1) ?? null);
      };

    // -- Time
    case "formatDate": {
      const pattern = literal(1);
      let fixed: DatePattern | undefined;
      if (typeof pattern === "string") {
        try {
          fixed = compileDatePattern(pattern);
        } catch (e) {
          compileError(1, `cannot use the pattern: ${(e as Error).message}`);
        }
      }
      const zone = checkedZone(2);
      return (scope, clock) => {
        const timezone = zone ??
          (args.length > 2 ? timezoneOf(arg<string>(2, scope, clock)) : "UTC");
        const time = timeOf(scope, arg<number | string>(0, scope, clock), timezone);
        let compiled = fixed;
        if (compiled === undefined) {
          try {
            compiled = compileDatePattern(arg<string>(1, scope, clock));
          } catch (e) {
            return fail(`cannot use the pattern: ${(e as Error).message}`);
          }
        }
        return formatDate(time, compiled, timezone);
      };
    }
    case "parseDate": {
      const zone = checkedZone(1);
      return (scope, clock) => {
        const text = arg<string>(0, scope, clock);
        const timezone = zone ??
          (args.length > 1 ? timezoneOf(arg<string>(1, scope, clock)) : "UTC");
        return timeOf(scope, text, timezone);
      };
    }
    case "duration": {
      const text = literal(0);
      const read = (text: string | number) => parseDuration(text, JSON.stringify(text));
      const reason = (e: unknown) => (e as Error).message.replace(/^Cannot/, "cannot");
      if (typeof text === "string" || typeof text === "number") {
        try {
          const ms = read(text);
          return () => ms;
        } catch (e) {
          compileError(0, reason(e));
        }
      }
      return (scope, clock) => {
        try {
          return read(arg<string | number>(0, scope, clock));
        } catch (e) {
          return fail(reason(e), e);
        }
      };
    }

    // -- Encoding
    case "base64":
      return (scope, clock) => {
        const text = arg<string>(0, scope, clock);
        const out = encodeBase64(utf8(text, fail));
        derived.whole(scope, text, out);
        return out;
      };
    case "fromBase64":
      return (scope, clock) => {
        const text = arg<string>(0, scope, clock);
        const out = decodeBase64(text, fail);
        derived.whole(scope, text, out);
        return out;
      };
    case "urlEncode":
      return (scope, clock) => {
        const text = arg<string>(0, scope, clock);
        utf8(text, fail);
        const out = encodeURIComponent(text);
        if (out !== text) derived.whole(scope, text, out);
        return out;
      };
    case "sha256":
      return (scope, clock) => {
        const text = arg<string>(0, scope, clock);
        const out = sha256Hex(utf8(text, fail));
        derived.whole(scope, text, out);
        return out;
      };
  }
  throw new Error(`unreachable: function ${name}`);

  /** The time zone argument `k` when written as a literal (checked now), else `undefined`. */
  function checkedZone(k: number): string | undefined {
    const zone = literal(k);
    if (typeof zone !== "string") return undefined;
    const problem = timezoneProblem(zone);
    if (problem !== undefined) compileError(k, problem);
    return canonicalTimezone(zone);
  }

  function timezoneOf(zone: string): string {
    const problem = timezoneProblem(zone);
    return problem === undefined ? canonicalTimezone(zone) : fail(problem);
  }

  /** A time (ms since the epoch, or an ISO 8601 text read in `timezone`) as ms. */
  function timeOf(scope: TemplateScope, value: number | string, timezone: string): number {
    if (typeof value === "number") {
      if (!(value >= MIN_TIME && value <= MAX_TIME)) {
        return fail(
          `takes a time (ms since the epoch) from year 1 to 9999, ${MIN_TIME} to ${MAX_TIME}, got ${value}`,
        );
      }
      return value;
    }
    const time = parseIsoTime(value, timezone);
    if (time === undefined || !(time >= MIN_TIME && time <= MAX_TIME)) {
      return fail(
        `cannot read ${
          quoteText(scope, value)
        } as a date: write it in ISO 8601, as in 2026-12-07, 2026-12-07T14:30:00 or 2026-12-07T14:30:00Z`,
      );
    }
    return time;
  }
}

/** Whether every number in `value` (a parsed JSON value) is finite. */
function isFiniteJson(value: unknown): boolean {
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isFiniteJson);
  if (isPlainObject(value)) return Object.values(value).every(isFiniteJson);
  return true;
}

/** Why `pattern` is not a `format()` pattern for `count` values, or `undefined`. */
function formatProblem(pattern: string, count: number): string | undefined {
  const token = /\{\{|\}\}|\{(\d+)\}|[{}]/g;
  for (let m = token.exec(pattern); m !== null; m = token.exec(pattern)) {
    if (m[0] === "{" || m[0] === "}") {
      return `cannot use the pattern: "${m[0]}" at position ${m.index} is not part of {N}; write ${
        m[0]
      }${m[0]} for a brace`;
    }
    if (m[1] !== undefined && Number(m[1]) >= count) {
      return `cannot use the pattern: {${m[1]}} refers to value ${m[1]}, but ${
        count === 1 ? "1 value is" : `${count} values are`
      } given (they count from {0})`;
    }
  }
  return undefined;
}

/** `x` rounded to `digits` decimals, halves away from zero, without binary noise (1.005 → 1.01). */
function roundHalfAway(x: number, digits: number): number {
  const factor = 10 ** digits;
  const scaled = Number((Math.abs(x) * factor).toPrecision(15));
  const out = Math.sign(x) * Math.round(scaled) / factor;
  if (!Number.isFinite(out)) return x;
  return out === 0 ? 0 : out;
}

/** A text that is the same for JSON-equal values (keys sorted; `undefined` properties left out). */
function canonicalJson(value: unknown): string {
  if (value === undefined || value === null) return "null";
  if (typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (!isPlainObject(value)) return JSON.stringify(value) ?? "null";
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
}
