/**
 * The static checks of one node's `with`, shared by the flow parser (for the
 * built-in node types, alongside the flow's other problems) and by
 * `prepareFlow` (for every node type): options against the node type's
 * schema, store names against the configured stores, and sub-flow files.
 *
 * @module
 */
import { resolve } from "../_path.ts";
import { didYouMean } from "../_suggest.ts";
import { readPath } from "../store/query.ts";
import type { SchemaResult } from "../plugin.ts";
import type { NodeType } from "./node.ts";
import { builtinNodes } from "./nodes.ts";
import { issueMessage } from "./_options_error.ts";

/** A problem with a node's options: where under the node (`["with", "key"]`) and what. */
export interface OptionProblem {
  /** The path under the node, starting with `"with"`. */
  path: (string | number)[];
  /** What is wrong. */
  message: string;
  /** `"key"` when the problem is the key at `path` itself (an unknown option), not its value. */
  at?: "key";
}

/** Whether a value holds a `${{ … }}` template anywhere (its value is known only at run time). */
export function holdsTemplate(value: unknown): boolean {
  if (typeof value === "string") return value.includes("${{");
  if (Array.isArray(value)) return value.some(holdsTemplate);
  return typeof value === "object" && value !== null && Object.values(value).some(holdsTemplate);
}

/**
 * `options` without the entries whose value holds a template: what can be
 * checked of them before a run (for {@linkcode referenceProblems}).
 */
export function staticOptions(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => !holdsTemplate(v)));
}

/**
 * The problems of `options` as written for a node of `type` (named
 * `typeName` in messages): the result of its options schema, as problems.
 * Synchronous when the schema is (as the built-in nodes' are).
 *
 * Options holding templates (`message: "hi ${{ inputs.who }}"`) are checked
 * as far as they are known before a run: their keys always (unknown options,
 * missing required ones), and, with `staticValues` (the built-in nodes, whose
 * schemas check each option on its own), the values that hold no template.
 * A templated value is checked when the run evaluates it.
 */
export function optionProblems(
  type: NodeType<unknown>,
  typeName: string,
  options: unknown,
  { staticValues = false }: { staticValues?: boolean } = {},
): OptionProblem[] | Promise<OptionProblem[]> {
  const result = type.optionsSchema["~standard"].validate(options);
  const explain = (result: SchemaResult<unknown>): OptionProblem[] =>
    issueProblems(result.issues ?? [], options, typeName, {
      known: knownOptions(type),
      staticValues,
    });
  return result instanceof Promise ? result.then(explain) : explain(result);
}

/** One issue of a Standard Schema's result, as much of it as is read here. */
export interface OptionIssue {
  /** What is wrong. */
  readonly message: string;
  /** Where: keys, or `{ key }` segments. */
  readonly path?: ReadonlyArray<unknown>;
}

/**
 * {@linkcode optionProblems} for the issues an options schema gave for
 * `options` (a custom node's, checked in its Worker): `known`, the node's
 * option names when known, for a did-you-mean.
 */
export function issueProblems(
  issues: readonly OptionIssue[],
  options: unknown,
  typeName: string,
  { known, staticValues = false }: { known?: readonly string[]; staticValues?: boolean } = {},
): OptionProblem[] {
  const templated = holdsTemplate(options);
  return issues.flatMap((issue): OptionProblem[] => {
    const path = (issue.path ?? []).map((p) => {
      const key = typeof p === "object" && p !== null ? (p as { key: unknown }).key : p;
      return typeof key === "number" ? key : String(key);
    });
    // zod names unknown keys in `keys` (one issue for all of them).
    const keys = (issue as { code?: unknown }).code === "unrecognized_keys"
      ? (issue as { keys?: unknown }).keys
      : undefined;
    if (Array.isArray(keys)) {
      // Keys are never templates: each is reported at its own place.
      return keys.map((k) => ({
        path: ["with", ...path, String(k)],
        message: `unknown option "${k}" for ${typeName}${
          known && path.length === 0 ? didYouMean(String(k), known) : ""
        }`,
        at: "key",
      }));
    }
    const missing = readPath(options, path.map(String)) === undefined;
    // An issue at an absent key says the key is required, unless it is a rule across options
    // (zod's "custom": `url` required unless `mode` is "offline"), which a templated value may
    // decide at run time. With templates, only a zod issue is known to mean a required key.
    const code = (issue as { code?: unknown }).code;
    const requiredKey = path.length > 0 && missing && code !== "custom";
    const knownRequired = requiredKey && typeof code === "string";
    if (templated && !knownBeforeRun(options, path, knownRequired || (staticValues && !missing))) {
      return [];
    }
    const message = requiredKey
      ? `missing required option "${path.join(".")}" for ${typeName}`
      : `${typeName}: ${issueMessage(issue)}`;
    return [{ path: ["with", ...path], message }];
  });
}

/**
 * Whether an issue at `path` of options holding templates says something
 * true of every run: no value on the way to it is a template (whose value
 * could be anything), `staticValue` is set, and the value there holds none.
 */
function knownBeforeRun(
  options: unknown,
  path: readonly (string | number)[],
  staticValue: boolean,
): boolean {
  let value = options;
  for (const key of path) {
    if (typeof value === "string" && holdsTemplate(value)) return false;
    if (typeof value !== "object" || value === null) {
      value = undefined;
      break;
    }
    value = (value as Record<string, unknown>)[key];
  }
  return staticValue && !holdsTemplate(value);
}

function knownOptions(type: NodeType<unknown>): string[] | undefined {
  const shape = (type.optionsSchema as unknown as { shape?: Record<string, unknown> }).shape;
  return shape && typeof shape === "object" ? Object.keys(shape) : undefined;
}

/** What {@linkcode referenceProblems} checks against. */
export interface ReferenceContext {
  /** The configured store names; without them, store names are not checked. */
  stores?: readonly string[];
  /** The directory sub-flow paths resolve against; without it, sub-flows are not checked. */
  baseDir?: string;
}

/**
 * What a built-in node's static options name that does not exist: a store
 * (`state.*` nodes' `store`) that is not configured, or a sub-flow file
 * (`flow` nodes' `flow`) that is not there.
 */
export async function referenceProblems(
  type: NodeType<unknown>,
  options: Record<string, unknown>,
  context: ReferenceContext,
): Promise<OptionProblem[]> {
  const problems: OptionProblem[] = [];
  const stores = context.stores;
  if (STATE_NODES.has(type) && typeof options.store === "string" && stores !== undefined) {
    const name = options.store;
    if (!stores.includes(name)) {
      problems.push({
        path: ["with", "store"],
        message: `unknown store "${name}"${didYouMean(name, stores)}; the configured stores are ${
          stores.map((s) => `"${s}"`).join(", ")
        }`,
      });
    }
  }
  if (
    type === (builtinNodes.get("flow") as unknown) && typeof options.flow === "string" &&
    context.baseDir !== undefined
  ) {
    const file = resolve(context.baseDir, options.flow);
    let problem: string | undefined;
    try {
      if ((await Deno.stat(file)).isDirectory) problem = "is a directory, not a flow file";
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      problem = "does not exist";
    }
    if (problem !== undefined) {
      problems.push({
        path: ["with", "flow"],
        message: `sub-flow ${options.flow} ${problem} (looked for ${file})`,
      });
    }
  }
  return problems;
}

const STATE_NODES: ReadonlySet<unknown> = new Set<unknown>(
  [...builtinNodes].filter(([name]) => name.startsWith("state.")).map(([, type]) => type),
);
