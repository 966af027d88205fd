/**
 * Loading a flow for a run: from a path, a definition object, or an already
 * parsed flow, validated and prepared, without writing anything.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import type { PreparedFlow } from "./executor.ts";
import { builtinNodes } from "./nodes.ts";
import { loadFlowFile, type ParsedFlow, validateFlow } from "./parse.ts";
import { prepareFlow } from "./prepare.ts";
import type { FlowDefinition } from "./types.ts";

/** A flow given as a path, a definition object, or already parsed. */
export type FlowSource = string | FlowDefinition | Record<string, unknown> | ParsedFlow;

/**
 * Load, validate and prepare a flow without running it or writing anything.
 *
 * @example
 * ```ts
 * import { loadFlow } from "@flowstate/core/flow";
 * import assert from "node:assert/strict";
 * const { prepared } = await loadFlow({ id: "hello", nodes: [{ id: "a", type: "log", with: { message: "hi" } }] });
 * assert.equal(prepared.definition.id, "hello");
 * ```
 */
export async function loadFlow(
  flow: FlowSource,
  options: { cwd?: string } = {},
): Promise<{ parsed: ParsedFlow; prepared: PreparedFlow }> {
  const cwd = options.cwd ?? Deno.cwd();
  let parsed: ParsedFlow;
  if (typeof flow === "string") {
    parsed = await loadFlowFile(resolve(cwd, flow), { displayPath: flow });
  } else if (isParsed(flow)) parsed = flow;
  else parsed = validateFlow(flow, { nodeTypes: new Set(builtinNodes.keys()) });
  const prepared = await prepareFlow(parsed, {
    baseDir: parsed.file ? dirname(resolve(cwd, parsed.file)) : cwd,
  });
  return { parsed, prepared };
}

function isParsed(flow: unknown): flow is ParsedFlow {
  return typeof flow === "object" && flow !== null && "definition" in flow &&
    typeof (flow as ParsedFlow).locate === "function";
}
