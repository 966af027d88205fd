/**
 * Flows: parse and validate flow files with every problem's place, check
 * inputs, load a flow (node types resolved, templates compiled) without
 * running it, and the flow file's JSON Schema for editors.
 *
 * @example
 * ```ts
 * import { parseFlow } from "@flowstate/core/flow";
 * import assert from "node:assert/strict";
 * const flow = parseFlow("id: hello\nnodes:\n  - { id: say, type: log, with: { message: hi } }\n");
 * assert.equal(flow.definition.nodes[0].id, "say");
 * ```
 *
 * @module
 */
export {
  coerceInputs,
  type CoerceInputsOptions,
  type FlowPath,
  type FlowProblem,
  FlowValidationError,
  loadFlowFile,
  type ParsedFlow,
  parseFlow,
  type ParseFlowOptions,
  validateFlow,
  type ValidateFlowOptions,
} from "./src/flow/parse.ts";
export { type FlowSource, type LoadedFlow, loadFlow } from "./src/flow/load.ts";
export { flowJsonSchema, type FlowJsonSchemaOptions, flowSchema } from "./src/flow/schema.ts";
export type {
  ChangesTrigger,
  FlowDefinition,
  FlowQueueLimits,
  FlowSchedule,
  FlowTrigger,
  ForEachSpec,
  HttpTrigger,
  InputSpec,
  InputType,
  NodePermissions,
  NodeSpec,
  NodeWhen,
  RetrySpec,
} from "./src/flow/types.ts";
export type { PreparedFlow, PreparedNode } from "./src/flow/executor.ts";
export {
  type CompiledTemplate,
  type CompiledValue,
  compileTemplate,
  compileValue,
  type SecretTracker,
  TemplateError,
  type TemplateRefs,
  type TemplateScope,
} from "./src/flow/template/mod.ts";
