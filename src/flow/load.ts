/**
 * Loading a flow for a run: from a path, a definition object, or an already
 * parsed flow, validated and prepared, without writing anything.
 *
 * @module
 */
import { dirname, resolve } from "../_path.ts";
import type { PreparedFlow } from "./executor.ts";
import { builtinNodes } from "./nodes.ts";
import type { ParsedFlow } from "./parse.ts";
import { prepareFlow } from "./prepare.ts";
import type { SandboxPool } from "./sandbox.ts";
import type { ProgramNodeTypes } from "./program_nodes.ts";
import type { FlowDefinition } from "./types.ts";

/**
 * A flow parsed, validated and prepared: what {@linkcode loadFlow} returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type LoadedFlow, loadFlow } from "@flowstate/core/flow";
 *
 * const loaded: LoadedFlow = await loadFlow({
 *   id: "hello",
 *   nodes: [{ id: "say", type: "log", with: { message: "hi" } }],
 * });
 * assert.equal(loaded.parsed.definition.id, "hello");
 * assert.equal(loaded.prepared.nodes.length, 1);
 * ```
 */
export interface LoadedFlow {
  /** The validated flow, with positions in its source. */
  parsed: ParsedFlow;
  /** Node types resolved and templates compiled. */
  prepared: PreparedFlow;
}

/**
 * A flow given as a path, a definition object, already parsed, or already loaded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FlowSource, openRuntime } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * // a path to a YAML file, a definition object, or a parsed or loaded flow
 * const source: FlowSource = { id: "hi", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] };
 * assert.equal((await rt.runFlow(source)).status, "succeeded");
 * ```
 */
export type FlowSource =
  | string
  | FlowDefinition
  | Record<string, unknown>
  | ParsedFlow
  | LoadedFlow;

/**
 * Load, validate and prepare a flow without running it or writing anything.
 * A flow loaded already is returned as it is, so it is validated once.
 *
 * @example
 * ```ts
 * import { loadFlow } from "@flowstate/core/flow";
 * import assert from "node:assert/strict";
 * const { prepared } = await loadFlow({ id: "hello", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * assert.equal(prepared.definition.id, "hello");
 * ```
 */
export function loadFlow(
  flow: FlowSource,
  options: {
    /** The directory a path (and a definition's sub-flows) resolve against (default: `Deno.cwd()`). */
    cwd?: string;
    /** The configured store names, to check the `store` of `state.*` nodes against. */
    stores?: readonly string[];
    /** Module node types that run in-process (the config's `nodes.trusted`). */
    trusted?: readonly string[];
    /** Directory `trusted` paths resolve against (the config's directory). */
    trustedBaseDir?: string;
  } = {},
): Promise<LoadedFlow> {
  return loadFlowIn(flow, options);
}

/**
 * {@linkcode loadFlow}, taking sandboxed nodes' Workers from `options.pool`,
 * and calling `options.beforePrepare` with the parsed flow before any of its
 * modules is loaded (internal).
 */
export async function loadFlowIn(
  flow: FlowSource,
  options: Parameters<typeof loadFlow>[1] & {
    pool?: SandboxPool;
    beforePrepare?: (parsed: ParsedFlow, baseDir: string) => void;
    /** Gives up waiting for a turn to check custom nodes in Workers. */
    signal?: AbortSignal;
    /** Node types the program defines, by name (in-process, like the built-ins). */
    nodeTypes?: ProgramNodeTypes;
    /** Ids of the nodes a test mocks (see `PrepareOptions.mocked`). */
    mocked?: ReadonlySet<string>;
  } = {},
): Promise<LoadedFlow> {
  if (isLoaded(flow)) return flow;
  const cwd = options.cwd ?? Deno.cwd();
  let parsed: ParsedFlow;
  if (isParsed(flow)) parsed = flow;
  else {
    // The parser (and the YAML library) is loaded only when a flow is parsed.
    const { loadFlowFile, validateFlow } = await import("./parse.ts");
    const nodeTypes = new Set([...builtinNodes.keys(), ...options.nodeTypes?.keys() ?? []]);
    parsed = typeof flow === "string"
      ? await loadFlowFile(resolve(cwd, flow), { displayPath: flow, nodeTypes })
      : validateFlow(flow, { nodeTypes });
  }
  const baseDir = parsed.file ? dirname(resolve(cwd, parsed.file)) : cwd;
  options.beforePrepare?.(parsed, baseDir);
  const prepared = await prepareFlow(parsed, {
    baseDir,
    ...(options.stores === undefined ? {} : { stores: options.stores }),
    ...(options.trusted === undefined ? {} : { trusted: options.trusted }),
    ...(options.trustedBaseDir === undefined ? {} : { trustedBaseDir: options.trustedBaseDir }),
    ...(options.pool === undefined ? {} : { pool: options.pool }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.nodeTypes === undefined ? {} : { nodeTypes: options.nodeTypes }),
    ...(options.mocked === undefined ? {} : { mocked: options.mocked }),
  });
  return { parsed, prepared };
}

function isLoaded(flow: unknown): flow is LoadedFlow {
  return typeof flow === "object" && flow !== null && "prepared" in flow && "parsed" in flow &&
    isParsed((flow as LoadedFlow).parsed);
}

function isParsed(flow: unknown): flow is ParsedFlow {
  return typeof flow === "object" && flow !== null && "definition" in flow &&
    typeof (flow as ParsedFlow).locate === "function";
}

/** Whether `flow` names a flow file (a path, or a name ending in `.yaml`) rather than a flow id. */
export function isFlowPath(flow: string): boolean {
  return flow.includes("/") || flow.includes("\\") || /\.ya?ml$/.test(flow);
}
