/**
 * The types the template modules share: the syntax tree, what a template can
 * read, and a compiled expression. Types only, so the parser, the compiler and
 * the built-in functions all import it and not each other.
 *
 * @module
 */
import type { Clock } from "../../clock.ts";

/** The names an expression may start with. */
export type Root = "inputs" | "nodes" | "env" | "secrets" | "run" | "item" | "index";

/** The binary operators. */
export type BinaryOp =
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

/** What every syntax-tree node has: its place in the original string and its depth. */
export interface AstBase {
  /** Offset of the node's first character in the original string. */
  start: number;
  /** Offset just past the node's last character. */
  end: number;
  /** Height of the subtree (a leaf is 1), bounded by the maximum nesting. */
  depth: number;
}

/** A node of the syntax tree of one expression. */
export type Ast =
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

/**
 * What a template can read. Every field is read only through own properties.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileTemplate, type TemplateScope } from "@flowstate/core/flow";
 *
 * const scope: TemplateScope = {
 *   inputs: { name: "Ada" },
 *   nodes: { count: { output: 3, status: "succeeded" } },
 *   env: {},
 * };
 * const greeting = compileTemplate("hello ${{ inputs.name }}, run ${{ nodes.count.output }}");
 * assert.equal(greeting.evaluate(scope), "hello Ada, run 3");
 * ```
 */
export interface TemplateScope {
  /** The run's inputs, after defaults (`inputs.<name>`). */
  inputs: Record<string, unknown>;
  /** Finished (or running) nodes by id (`nodes.<id>.output`, `nodes.<id>.status`). */
  nodes: Record<string, { output?: unknown; status?: string; error?: string }>;
  /** The environment variables the flow lists under `env:`, and no others (`env.<NAME>`). */
  env: Record<string, string>;
  /** The values of the flow's `secrets:` variables (`secrets.<NAME>`); none when absent. */
  secrets?: Record<string, string>;
  /**
   * The current run (`run.id`, `run.flowId`), and the failures that failed it
   * so far (`run.failed`: read by the nodes that run because of `when:`).
   */
  run?: {
    id: string;
    flowId: string;
    failed?: { node: string; error: string }[];
    /** The tick's time (ms since the epoch) of a run a schedule started, else `null`. */
    scheduledAt?: number | null;
    /** The id of the schedule that started the run (`flow:<flow>`, `flow:<flow>#<entry>`), else `null`. */
    schedule?: string | null;
  };
  /** In a node with `forEach:`, the element of the list this item runs for (`item`). */
  item?: unknown;
  /** In a node with `forEach:`, the item's position in the list, from 0 (`index`). */
  index?: number;
  /**
   * The run's secret masker: a function that turns text holding a secret into
   * other text (`base64`, `sha256`, `upper`, a `slice` that cuts it…) adds
   * what it returns to it, so that the derived value is masked in the records
   * too. Without it, derived values are not tracked.
   */
  masker?: SecretTracker;
}

/**
 * What templates need of the run's secret masker (a `SecretMasker` is one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileTemplate, type SecretTracker } from "@flowstate/core/flow";
 *
 * const added: string[] = [];
 * const masker: SecretTracker = {
 *   find: (text) => [...text.matchAll(/hunter22/g)].map((m) => [m.index, m.index + 8]),
 *   add: (values) => void added.push(...values),
 * };
 * const scope = { inputs: {}, nodes: {}, env: {}, secrets: { PASS: "hunter22" }, masker };
 * compileTemplate("${{ base64('ada:' + secrets.PASS) }}").evaluate(scope);
 * assert.deepEqual(added, ["YWRhOmh1bnRlcjIy"]);
 * ```
 */
export interface SecretTracker {
  /** Where secret values (in every form masked) occur in `text`: `[start, end)` pairs, in order. */
  find(text: string): [number, number][];
  /** Mask these strings too: each was derived from a secret. */
  add(values: Iterable<string>): void;
}

/** A compiled expression: its value in a scope, read with an optional clock. */
export type Evaluator = (scope: TemplateScope, clock: Clock | undefined) => unknown;
