/**
 * The plain parts of the flow schema (id patterns, input types, value
 * descriptions and checks) without zod: what the run path needs to check a
 * run's inputs without building the flow schema. Re-exported by `schema.ts`.
 *
 * @module
 */
import { MAX_VALUE_DEPTH } from "../store/values.ts";
import type { InputType } from "./types.ts";

/** Flow ids: lowercase letters, digits, `_` and `-`. */
export const FLOW_ID_PATTERN: RegExp = /^[a-z0-9_-]+$/;
/** Node ids: letters, digits, `_` and `-`. */
export const NODE_ID_PATTERN: RegExp = /^[A-Za-z0-9_-]+$/;
/** Names under `env:`: the usual shape of environment variable names. */
export const ENV_NAME_PATTERN: RegExp = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The input types a flow may declare. */
export const INPUT_TYPES: readonly InputType[] = [
  "string",
  "number",
  "boolean",
  "object",
  "array",
  "any",
];
/**
 * Node types offered as examples (completions) by {@linkcode flowJsonSchema}
 * when it is not given the registry's own list.
 */
export const BUILTIN_NODE_TYPE_EXAMPLES: readonly string[] = [
  "state.get",
  "state.set",
  "state.delete",
  "state.increment",
  "state.list",
  "state.query",
  "state.search",
  "log",
  "transform",
  "delay",
  "fail",
  "flow",
  "queue",
  "http",
  "exec",
];

/**
 * A short description of a value for messages: `"abc"`, `5`, `true`, `null`,
 * `a list`, `a mapping`.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    case "number":
    case "boolean":
    case "bigint":
      return String(value);
    case "object": {
      const proto = Object.getPrototypeOf(value);
      return proto === Object.prototype || proto === null
        ? "a mapping"
        : `a ${(value as { constructor?: { name?: string } }).constructor?.name ?? "object"}`;
    }
    default:
      return `a ${typeof value}`;
  }
}

/**
 * Where and why `value` is not JSON-compatible (`NaN`, `Infinity`, functions,
 * class instances, cycles, `undefined` in a list…), or `undefined` when it is.
 * `undefined` object properties are allowed, as `JSON.stringify` drops them.
 */
export function jsonProblem(
  value: unknown,
): { path: (string | number)[]; message: string } | undefined {
  if (nestedDeeperThan(value, MAX_VALUE_DEPTH)) {
    // Said before the walk below, which recurses.
    return {
      path: [],
      message: `nested deeper than ${MAX_VALUE_DEPTH} levels of lists and mappings; flatten it`,
    };
  }
  const path: (string | number)[] = [];
  const seen: object[] = [];
  const walk = (v: unknown): string | undefined => {
    switch (typeof v) {
      case "string":
      case "boolean":
        return undefined;
      case "number":
        return Number.isFinite(v) ? undefined : `${v} is not a JSON value; use a finite number`;
      case "undefined":
        return "undefined is not a JSON value; use null";
      case "object": {
        if (v === null) return undefined;
        if (seen.includes(v)) return "the value refers back to itself (a cycle)";
        const proto = Object.getPrototypeOf(v);
        if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) {
          return `${describeValue(v)} is not a JSON value; use plain objects and arrays`;
        }
        seen.push(v);
        // Array.from, not map: a hole in a sparse array is an undefined item, not skipped.
        const entries: [string | number, unknown][] = Array.isArray(v)
          ? Array.from(v, (item, i) => [i, item])
          : Object.entries(v).filter(([, item]) => item !== undefined);
        for (const [key, item] of entries) {
          const problem = walk(item);
          if (problem !== undefined) {
            path.unshift(key);
            return problem;
          }
        }
        seen.pop();
        return undefined;
      }
      default:
        return `${describeValue(v)} is not a JSON value`;
    }
  };
  const message = walk(value);
  return message === undefined ? undefined : { path, message };
}

/** Whether arrays and objects in `value` nest deeper than `limit` (iterative; a cycle counts as deep). */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth + 1 > limit) return true;
    for (const item of Array.isArray(v) ? v : Object.values(v)) stack.push([item, depth + 1]);
  }
  return false;
}

/** Why `value` does not have input type `type`, or `undefined` when it does. */
export function inputTypeProblem(type: InputType, value: unknown): string | undefined {
  const ok = type === "any" ||
    (type === "string" && typeof value === "string") ||
    (type === "number" && typeof value === "number" && Number.isFinite(value)) ||
    (type === "boolean" && typeof value === "boolean") ||
    (type === "array" && Array.isArray(value)) ||
    (type === "object" && typeof value === "object" && value !== null && !Array.isArray(value));
  return ok ? undefined : `expected ${EXPECTED[type]}, got ${describeValue(value)}`;
}

/** How zod's `expected` names read in messages. */
export const EXPECTED: Readonly<Record<string, string>> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  object: "a mapping",
  record: "a mapping",
  array: "a list",
  any: "any value",
  null: "null",
};
