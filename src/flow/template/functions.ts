/**
 * The built-in functions of the template language: their names and argument
 * counts (checked by the parser) and their evaluation (checked argument types).
 *
 * @module
 */
import { systemClock } from "../../clock.ts";
import type { Segment } from "./_segment.ts";
import type { Ast, Evaluator } from "./ast.ts";
import { isPlainObject, jsonEqual, toText, typeName } from "./values.ts";
import { parseJson } from "../../_json.ts";

/** How a built-in function is called: its argument count and a usage line for messages. */
export interface FunctionSpec {
  /** The fewest arguments. */
  min: number;
  /** The most arguments. */
  max: number;
  /** How to call it, as in `default(value, fallback)`. */
  usage: string;
}

/** The built-in functions by name, in the order messages list them. */
export const FUNCTIONS: ReadonlyMap<string, FunctionSpec> = new Map([
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

/**
 * The evaluator of a call to a built-in function, given its arguments already
 * compiled (in order). The parser has checked the name and the argument count;
 * the evaluator checks the argument types and throws a `TemplateError` that
 * points at the function's name.
 */
export function compileCall(
  ast: Extract<Ast, { kind: "call" }>,
  args: readonly Evaluator[],
  segment: Segment,
): Evaluator {
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
          return parseJson(value);
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
