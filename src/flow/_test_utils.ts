/**
 * Shared fixtures of the flow parsing tests: an example flow, known node
 * types, and helpers that parse a flow and return its problems.
 *
 * @module
 */
import assert from "node:assert/strict";
import { FlowValidationError, parseFlow } from "./parse.ts";

/** A flow using every field, with comments. */
export const EXAMPLE: string = `id: counter                 # required; [a-z0-9_-]+
description: counts its runs
schedule: "0 * * * *"
env: [HOME_REGION]
inputs:
  by: { type: number, default: 1 }
concurrency: 16
timeout: 10m
nodes:
  - id: bump
    type: state.increment
    with: { scope: flow, key: count, by: "\${{ inputs.by }}" }
  - id: report
    type: log
    needs: [bump]
    if: "\${{ nodes.bump.output > 0 }}"
    retry: { attempts: 3, delay: 1s, backoff: exponential, maxDelay: 30s }
    timeout: 5s
    continueOnError: false
    with: { message: "count is now \${{ nodes.bump.output }}" }
outputs:
  count: "\${{ nodes.bump.output }}"
`;

/** The node types of {@linkcode EXAMPLE}. */
export const NODE_TYPES: ReadonlySet<string> = new Set(["state.increment", "log", "delay"]);

/** The lines of the FlowValidationError that parsing `text` as flow.yaml throws. */
export function problems(
  text: string,
  options: { nodeTypes?: ReadonlySet<string> } = {},
): string[] {
  let error: unknown;
  try {
    parseFlow(text, { file: "flow.yaml", ...options });
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof FlowValidationError, `expected a FlowValidationError, got ${error}`);
  assert.equal(error.name, "FlowValidationError");
  assert.equal(error.file, "flow.yaml");
  return error.message.split("\n");
}

/** A flow with one `log` node (`nodes[0]`, line 4) and the given extra lines. */
export function flow(extra: string, node = ""): string {
  return `id: demo
nodes:
  - id: hello
    type: log
    with: { message: hi }
${node}${extra}`;
}
