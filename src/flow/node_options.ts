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

/** A problem with a node's options: where under the node (`["with", "key"]`) and what. */
export interface OptionProblem {
  /** The path under the node, starting with `"with"`. */
  path: (string | number)[];
  /** What is wrong. */
  message: string;
}

/**
 * The problems of static `options` (no templates) for a node of `type`
 * (named `typeName` in messages): the result of its options schema, as
 * problems. Synchronous when the schema is (as the built-in nodes' are).
 */
export function optionProblems(
  type: NodeType<unknown>,
  typeName: string,
  options: unknown,
): OptionProblem[] | Promise<OptionProblem[]> {
  const result = type.optionsSchema["~standard"].validate(options);
  const explain = (result: SchemaResult<unknown>): OptionProblem[] => {
    if (!result.issues) return [];
    const known = knownOptions(type);
    return result.issues.map((issue) => {
      const path = (issue.path ?? []).map((p) =>
        String(typeof p === "object" && p !== null ? p.key : p)
      );
      // zod names unknown keys in `keys` (one issue for all of them).
      const keys = (issue as { code?: unknown }).code === "unrecognized_keys"
        ? (issue as { keys?: unknown }).keys
        : undefined;
      const message = Array.isArray(keys) && known
        ? keys.map((k) => `unknown option "${k}" for ${typeName}${didYouMean(String(k), known)}`)
          .join("; ")
        : path.length > 0 && readPath(options, path) === undefined
        ? `missing required option "${path.join(".")}" for ${typeName}`
        : `${typeName}: ${issue.message}`;
      return { path: ["with", ...path], message };
    });
  };
  return result instanceof Promise ? result.then(explain) : explain(result);
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
