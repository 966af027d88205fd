/**
 * The inputs of a run: defaults applied, and every problem with the values
 * given (unknown, missing, mistyped, outside the enum, not JSON) reported at
 * once.
 *
 * @module
 */
import { didYouMean } from "../_suggest.ts";
import type { JsonValue } from "../store/types.ts";
import { FlowValidationError, formatPath, type Problem } from "../errors.ts";
import { deepEqual, isRecord } from "./_values.ts";
import { describeValue, inputTypeProblem, jsonProblem } from "./_shapes.ts";
import type { FlowDefinition, InputType } from "./types.ts";
import { parseJson } from "../_json.ts";
import { MAX_VALUE_BYTES, utf8Length } from "../store/values.ts";

/**
 * The most a run's inputs may take, in bytes of their JSON text: they are
 * kept in the run's record, one store value of at most
 * {@linkcode MAX_VALUE_BYTES}, with room left for the rest of the record.
 */
const MAX_INPUTS_BYTES = MAX_VALUE_BYTES - 1024 * 1024;

/**
 * Options for {@linkcode coerceInputs}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { coerceInputs, type CoerceInputsOptions } from "@flowstate/core/flow";
 *
 * const flow = {
 *   id: "f",
 *   inputs: { n: { type: "number" as const }, tags: { type: "array" as const } },
 *   nodes: [],
 * };
 * const fromCli: CoerceInputsOptions = { fromStrings: true, file: "f.flow.yaml" };
 * assert.deepEqual(coerceInputs(flow, { n: "3", tags: '["a"]' }, fromCli), { n: 3, tags: ["a"] });
 * ```
 */
export interface CoerceInputsOptions {
  /**
   * The given values are text (as from `--input key=value` on a command
   * line): parse each per its declared type — numbers, `true`/`false`, JSON
   * for objects and arrays, and for `any` JSON when it parses, else the text.
   * A list of names: only those inputs are text (`--input` flags over a JSON
   * `--inputs` document).
   */
  fromStrings?: boolean | readonly string[];
  /** Positions of declared inputs in the flow's source (a parsed flow's `locate`). */
  locate?: (path: (string | number)[]) => { line: number; column: number } | undefined;
  /** The flow file, for messages. */
  file?: string;
}

/**
 * Check and complete the inputs for a run of `flow`: apply defaults, and
 * reject unknown inputs (with a did-you-mean), missing required inputs
 * (those without a default), values of the wrong type, values outside the
 * `enum`, and values that are not JSON.
 *
 * @param flow The flow definition.
 * @param given The inputs given by the caller.
 * @param options `fromStrings` to parse textual values per their declared type.
 * @returns Every declared input with a value (copies, never the caller's objects).
 * @throws {FlowValidationError} listing every problem, each with the path
 *   `["inputs", name]`, e.g. `inputs.by: expected a number, got "abc"`.
 *
 * @example
 * ```ts
 * import { coerceInputs, validateFlow } from "@flowstate/core/flow";
 * import assert from "node:assert/strict";
 * const { definition } = validateFlow({
 *   id: "add",
 *   inputs: { by: { type: "number", default: 1 }, name: { type: "string" } },
 *   nodes: [{ id: "say", type: "log" }],
 * });
 * const inputs = coerceInputs(definition, { by: "5", name: "x" }, { fromStrings: true });
 * assert.deepEqual(inputs, { by: 5, name: "x" });
 * assert.equal(coerceInputs(definition, { name: "y" }).by, 1); // the default
 * ```
 */
export function coerceInputs(
  flow: FlowDefinition,
  given: Record<string, unknown>,
  options: CoerceInputsOptions = {},
): Record<string, JsonValue> {
  if (!isRecord(given)) {
    throw new TypeError(
      `Cannot check inputs for flow "${flow.id}": expected an object of inputs, got ${
        describeValue(given)
      }`,
    );
  }
  const declared = flow.inputs ?? {};
  const names = Object.keys(declared);
  const problems: Problem[] = [];
  const problem = (name: string, message: string) => {
    const path = ["inputs", name];
    const at = Object.hasOwn(declared, name) ? options.locate?.(path) : undefined;
    problems.push({ message, path, ...(at ? { line: at.line, column: at.column } : {}) });
  };
  for (const name of Object.keys(given)) {
    if (Object.hasOwn(declared, name) || given[name] === undefined) continue;
    const hint = didYouMean(name, names) ||
      (names.length === 0
        ? `; flow "${flow.id}" declares no inputs`
        : `; flow "${flow.id}" declares ${names.join(", ")}`);
    problem(name, `unknown input${hint}`);
  }
  const result: Record<string, JsonValue> = {};
  for (const name of names) {
    const spec = declared[name];
    const type = spec.type ?? "any";
    let value = Object.hasOwn(given, name) ? given[name] : undefined;
    if (value === undefined) {
      if (spec.default !== undefined) result[name] = structuredClone(spec.default);
      else problem(name, "required (it has no default) but not given");
      continue;
    }
    const text = Array.isArray(options.fromStrings)
      ? options.fromStrings.includes(name)
      : options.fromStrings === true;
    if (text && typeof value === "string") {
      const parsed = fromString(type, value);
      if ("error" in parsed) {
        problem(name, parsed.error);
        continue;
      }
      value = parsed.value;
    }
    const typeProblem = inputTypeProblem(type, value);
    if (typeProblem !== undefined) {
      problem(name, typeProblem);
      continue;
    }
    const notJson = jsonProblem(value);
    if (notJson !== undefined) {
      const at = formatPath(notJson.path);
      problem(name, at === "" ? notJson.message : `at ${at}: ${notJson.message}`);
      continue;
    }
    if (spec.enum !== undefined && !spec.enum.some((v) => deepEqual(v, value))) {
      problem(
        name,
        `expected one of ${spec.enum.map(describeValue).join(", ")}, got ${describeValue(value)}${
          typeof value === "string"
            ? didYouMean(value, spec.enum.filter((v): v is string => typeof v === "string"))
            : ""
        }`,
      );
      continue;
    }
    result[name] = parseJson(JSON.stringify(value));
  }
  if (problems.length === 0) {
    const tooLarge = inputsSizeProblem(result);
    if (tooLarge !== undefined) problems.push({ message: tooLarge, path: ["inputs"] });
  }
  if (problems.length > 0) throw new FlowValidationError(problems, options.file);
  return result;
}

/**
 * Why `inputs` are too large to be kept in a run's record (naming the
 * largest), or `undefined` when they fit.
 */
function inputsSizeProblem(inputs: Record<string, JsonValue>): string | undefined {
  const texts = Object.entries(inputs).map(([name, value]) => [name, JSON.stringify(value)]);
  const atMost = texts.reduce((n, [name, text]) => n + (name.length + text.length) * 3 + 4, 1);
  if (atMost <= MAX_INPUTS_BYTES) return undefined;
  const sizes = texts.map(([name, text]) => ({ name, size: utf8Length(text) }));
  // With the names, quotes, colons and commas of the object around them.
  const total = sizes.reduce((n, { name, size }) => n + utf8Length(name) + size + 4, 1);
  if (total <= MAX_INPUTS_BYTES) return undefined;
  const largest = sizes.reduce((a, b) => (b.size > a.size ? b : a));
  const bytes = (n: number) => n.toLocaleString("en-US");
  return `the inputs are ${bytes(total)} bytes as JSON (${largest.name}: ${
    bytes(largest.size)
  }), over the ${bytes(MAX_INPUTS_BYTES)} bytes (15 MiB) a run's inputs may take, ` +
    `as they are kept in its record; pass large data by reference instead ` +
    `(a file path or URL the flow reads, or a state key)`;
}

/** A decimal number as text: sign, digits with a point, exponent (`42`, `-2.5`, `.5`, `1e3`). */
const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

function fromString(type: InputType, text: string): { value: unknown } | { error: string } {
  const got = `, got ${describeValue(text)}`;
  switch (type) {
    case "string":
      return { value: text };
    case "number": {
      // Decimal only: Number() would also take 0x10, 0o17, 0b1, Infinity and "" (as 0).
      const n = DECIMAL.test(text) ? Number(text) : NaN;
      return Number.isFinite(n) ? { value: n } : {
        error: `expected a number (decimal digits, like 42, -2.5 or 1e3)${got}`,
      };
    }
    case "boolean":
      if (text === "true") return { value: true };
      if (text === "false") return { value: false };
      return { error: `expected true or false${got}` };
    case "object":
    case "array": {
      const what = type === "object" ? "a JSON object" : "a JSON array";
      try {
        return { value: parseJson(text) };
      } catch {
        return { error: `expected ${what}${got}` };
      }
    }
    case "any":
      try {
        return { value: parseJson(text) };
      } catch {
        return { value: text };
      }
  }
}
