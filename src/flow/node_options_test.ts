// The options of built-in nodes as `prepareFlow` checks them (node_options.ts).
import assert from "node:assert/strict";
import { FlowValidationError } from "../errors.ts";
import { parseFlow } from "./parse.ts";
import { prepareFlow } from "./prepare.ts";

async function problemsOf(yaml: string): Promise<string[]> {
  const err = await prepareFlow(parseFlow(yaml, { file: "flow.yaml" })).catch((e) => e);
  assert.ok(err instanceof FlowValidationError, `expected a FlowValidationError, got ${err}`);
  return err.problems.map((p) => `${p.line}:${p.column} ${p.path.join(".")}: ${p.message}`);
}

Deno.test("prepareFlow(): an option value not among a fixed set names the set, what was written and the closest", async () => {
  assert.deepEqual(
    await problemsOf(
      "id: demo\nnodes:\n  - id: d\n    type: state.set\n    with: { scope: flw, key: x, value: 1 }\n",
    ),
    [
      '5:20 nodes.0.with.scope: state.set: expected one of "node", "flow", "global", got "flw" (did you mean "flow"?)',
    ],
  );
  // Nothing close: the set and the value, no guess.
  assert.deepEqual(
    await problemsOf(
      "id: demo\nnodes:\n  - id: d\n    type: state.get\n    with: { scope: 3, key: x }\n",
    ),
    ['5:20 nodes.0.with.scope: state.get: expected one of "node", "flow", "global", got 3'],
  );
});
