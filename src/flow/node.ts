/**
 * Node types: `defineNode()` and the context a node's `run` receives.
 *
 * @module
 */
import type { OptionsSchema } from "../plugin.ts";
import type { StateView } from "../state/scopes.ts";
import type { Clock, JsonValue } from "../store/types.ts";
import type { RunRecord } from "../records/types.ts";
import type { LogLevel } from "../log.ts";

export type { LogLevel };

/**
 * What a node's `run` receives. It belongs to one attempt: once the attempt
 * is over (it returned or threw, timed out, or its run was cancelled), its
 * state views, `runFlow` and `log` throw `AttemptOverError`, so nothing it
 * does later lands after its run's end is recorded. A node that ignores
 * `signal` is waited for (the run's `abortGrace`, 5 s by default) before a
 * retry starts or its run is recorded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime } from "@flowstate/core";
 *
 * // A custom node module: `run` gets a NodeContext (state views, log, ids, signal…).
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/add.ts`,
 *   `import { defineNode, type NodeContext } from "@flowstate/core";
 * import { z } from "zod";
 * export default defineNode({
 *   optionsSchema: z.object({ by: z.number() }),
 *   async run(ctx: NodeContext<{ by: number }>, { by }) {
 *     const total = await ctx.flow.increment("total", by);
 *     ctx.log(\`\${ctx.nodeId} (attempt \${ctx.attempt}): total \${total}\`);
 *     return total;
 *   },
 * });
 * `,
 * );
 * {
 *   await using rt = await openRuntime({
 *     cwd: dir,
 *     config: { stores: { main: { plugin: "memory" } }, nodes: { trusted: ["./add.ts"] } },
 *   });
 *   const flow = { id: "adder", nodes: [{ id: "add", type: "./add.ts", with: { by: 2 } }] };
 *   await rt.runFlow(flow);
 *   const run = await rt.runFlow(flow);
 *   assert.equal(run.nodes.add.output, 4);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface NodeContext<I = unknown> {
  /** This node's own state (per flow id and node id). */
  node: StateView;
  /** The flow's state (per flow id). */
  flow: StateView;
  /** State shared by every flow on the same store. */
  global: StateView;
  /** The node's evaluated and validated `with` options (also the second argument of `run`). */
  input: I;
  /** The run's inputs. */
  inputs: Readonly<Record<string, JsonValue>>;
  /**
   * Write a log line into the run's events (and to the terminal, unless
   * quiet), at `level` (default `"info"`); an unknown level is a `TypeError`.
   */
  log(message: string, level?: LogLevel): void;
  /** Aborted when the run is cancelled or times out, this attempt times out, or it is over. */
  signal: AbortSignal;
  /** The run's id. */
  runId: string;
  /** The flow's id. */
  flowId: string;
  /** This node's id. */
  nodeId: string;
  /** 1 for the first attempt, 2 for the first retry… */
  attempt: number;
  /** The runtime's clock. */
  clock: Clock;
  /**
   * Wait `ms` milliseconds, rejecting with the signal's reason if it aborts
   * first. `Infinity` waits until then (the node's timeout, the run's, or a
   * cancel); a negative or NaN wait is a `RangeError`.
   */
  sleep(ms: number): Promise<void>;
  /**
   * Make `value` a secret of the run, as a flow's `secrets:` are (GitHub
   * Actions' `core.setSecret`): from this call on, it is replaced by `***` in
   * everything the run and its sub-runs record or show (this node's log lines
   * and output too, and what template functions derive from it), while nodes
   * get it as it is. Call it as soon as the node has the value, before it logs
   * it. `""` is ignored; a value of 1 to 3 characters is a `RangeError`
   * (masking it would hide those characters everywhere); not a string is a
   * `TypeError`.
   */
  mask(value: string): void;
  /**
   * Run another flow as a sub-flow of this run (a path relative to this
   * flow's file, or a definition). From a sandboxed node: a flow file in this
   * flow's folder or under the config's `flows:` only, and every node of the
   * sub-run (at every level) must stay within this node's `permissions:`,
   * else it is refused before anything in it runs.
   */
  runFlow(
    flow: string | Record<string, unknown>,
    input?: Record<string, unknown>,
  ): Promise<RunRecord>;
  /**
   * Put a run of another flow in the queue (a flow id, or a path relative to
   * this flow's file) and resolve its id at once; `existing` when its `key`
   * matched a queued or running run. Absent where runs are not recorded in a
   * runtime (and in sandboxed custom nodes).
   */
  enqueue?(
    flow: string,
    options: {
      input?: Record<string, unknown>;
      delay?: number | string;
      key?: string;
      priority?: number;
      maxAttempts?: number;
    },
  ): Promise<{ runId: string; existing: boolean }>;
  /**
   * Take the oldest signal `name` sent to this run and not taken yet (see the
   * `wait` node type): resolves its data, or `null` when there is none now.
   * Each signal is taken once. Absent where runs are not recorded in a
   * runtime (and in sandboxed custom nodes).
   */
  takeSignal?(name: string): Promise<{ data: JsonValue } | null>;
}

/**
 * What `defineNode` takes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineNode, type NodeDefinition } from "@flowstate/core";
 * import { z } from "zod";
 *
 * const definition: NodeDefinition<{ a: number; b: number }> = {
 *   description: "adds two numbers",
 *   optionsSchema: z.object({ a: z.number(), b: z.number() }),
 *   run: (_ctx, { a, b }) => a + b,
 * };
 * const add = defineNode(definition); // a module's default export
 * assert.equal(add.description, "adds two numbers");
 * ```
 */
export interface NodeDefinition<I, O = unknown> {
  /** Optional name for messages (default: the `type` used in the flow). */
  name?: string;
  /** One line of help. */
  description?: string;
  /** Validates the node's evaluated `with` options. */
  optionsSchema: OptionsSchema<I>;
  /**
   * Do the work; the resolved value is the node's output: JSON (`undefined`
   * is recorded as `null`, and `undefined` properties are left out). Through
   * {@linkcode defineNode}, an output type JSON cannot hold (a `Date`, a
   * `Map`, a function…) is a type error; at run time such a value fails the
   * attempt, naming where it is.
   */
  run(ctx: NodeContext<I>, input: I): Promise<O> | O;
}

/**
 * `T` itself where JSON can hold it, and where it cannot (a `Date`, a `Map`
 * or `Set`, a `bigint`, a function, a class instance with methods) a type
 * that says why: what {@linkcode defineNode} checks a node's output type
 * against. `unknown` and `any` pass (nothing to check at compile time; the
 * run checks the value).
 *
 * @example
 * ```ts
 * import type { JsonOutput } from "@flowstate/core";
 *
 * interface Point { x: number; y: number; label?: string }
 * const ok: JsonOutput<Point> = { x: 1, y: 2 }; // interfaces of JSON fields are JSON
 * // Where JSON cannot hold a value, the type says why (and a Date is not assignable to it):
 * type Why = JsonOutput<{ at: Date }>["at"];
 * const why: Why = "a Date is not JSON: return date.toISOString() or date.getTime()";
 * console.log(ok, why);
 * ```
 */
export type JsonOutput<T> = 0 extends (1 & T) ? T // any
  : unknown extends T ? T
  : [T] extends [JsonValue | undefined | void] ? T
  : T extends string | number | boolean | null | undefined | void ? T
  : T extends Date ? "a Date is not JSON: return date.toISOString() or date.getTime()"
  : T extends ReadonlyMap<unknown, unknown> | ReadonlySet<unknown>
    ? "a Map or Set is not JSON: return a plain object or an array"
  : T extends bigint ? "a bigint is not JSON: return a number or a string"
  : T extends (...args: never[]) => unknown ? "a function is not JSON"
  : T extends symbol ? "a symbol is not JSON"
  : T extends object ? { [K in keyof T]: JsonOutput<T[K]> }
  : never;

/**
 * A node type made by {@linkcode defineNode}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineNode, type NodeType } from "@flowstate/core";
 * import { z } from "zod";
 *
 * const upper: NodeType<{ text: string }> = defineNode({
 *   optionsSchema: z.object({ text: z.string() }),
 *   run: (_ctx, { text }) => text.toUpperCase(),
 * });
 * assert.equal(upper.kind, "flowstate.node");
 * ```
 */
export interface NodeType<I = unknown, O = unknown> extends NodeDefinition<I, O> {
  /** Marks the object as a Flowstate node type. */
  readonly kind: "flowstate.node";
}

/**
 * Define a node type. A custom node module's default export is the result;
 * a flow uses it as `type: ./nodes/thing.ts`. `run`'s output type must be one
 * JSON can hold (see {@linkcode JsonOutput}): returning a `Date`, a `Map` or a
 * function is a type error here, not a failed run later.
 *
 * @example
 * ```ts
 * import { defineNode } from "@flowstate/core";
 * import { z } from "zod";
 *
 * export default defineNode({
 *   description: "adds two numbers",
 *   optionsSchema: z.object({ a: z.number(), b: z.number() }),
 *   run: (_ctx, { a, b }) => a + b,
 * });
 * ```
 */
export function defineNode<I, O>(
  definition: NodeDefinition<I, O> & {
    run(ctx: NodeContext<I>, input: I): Promise<JsonOutput<Awaited<O>>> | JsonOutput<Awaited<O>>;
  },
): NodeType<I, O> {
  if (typeof definition?.run !== "function") {
    throw new TypeError("Cannot define node: run must be a function");
  }
  if (typeof definition.optionsSchema?.["~standard"]?.validate !== "function") {
    throw new TypeError(
      "Cannot define node: optionsSchema must be a Standard Schema (for example a zod schema)",
    );
  }
  return Object.freeze({ ...definition, kind: "flowstate.node" as const });
}

/** Whether a value is a node type (duck-typed, so copies of the library interoperate). */
export function isNodeType(value: unknown): value is NodeType {
  const v = value as Partial<NodeType> | null;
  return typeof v === "object" && v !== null && typeof v.run === "function" &&
    typeof v.optionsSchema?.["~standard"]?.validate === "function";
}
