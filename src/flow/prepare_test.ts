import assert from "node:assert/strict";
import { FlowValidationError } from "../errors.ts";
import { parseFlow } from "./parse.ts";
import { prepareFlow } from "./prepare.ts";

async function problemsOf(yaml: string): Promise<string[]> {
  const err = await prepareFlow(parseFlow(yaml, { file: "flow.yaml" })).catch((e) => e);
  assert.ok(err instanceof FlowValidationError, `expected a FlowValidationError, got ${err}`);
  return err.problems.map((p) => `${p.line}:${p.column} ${p.path.join(".")}: ${p.message}`);
}

Deno.test("prepareFlow() names unknown static node options, with a suggestion, at their place", async () => {
  assert.deepEqual(
    await problemsOf(`id: demo
nodes:
  - { id: a, type: log, with: { mesage: hi, levle: info } }
`),
    [
      '3:31 nodes.0.with.message: missing required option "message" for log',
      '3:33 nodes.0.with.mesage: unknown option "mesage" for log (did you mean "message"?)',
      '3:45 nodes.0.with.levle: unknown option "levle" for log (did you mean "level"?)',
    ],
  );
});

Deno.test("prepareFlow() checks the keys of templated node options, and their static values", async () => {
  assert.deepEqual(
    await problemsOf(`id: demo
inputs:
  who: { type: string }
  n: { type: number }
nodes:
  - { id: a, type: log, with: { mesage: "hi \${{ inputs.who }}" } }
  - { id: b, type: log, with: { message: "\${{ inputs.who }}", level: loud } }
  - { id: c, type: state.query, with: { where: [{ path: "\${{ inputs.who }}", op: eq, valu: 1 }] } }
`),
    [
      '6:31 nodes.0.with.message: missing required option "message" for log',
      '6:33 nodes.0.with.mesage: unknown option "mesage" for log (did you mean "message"?)',
      '7:70 nodes.1.with.level: log: expected one of "debug", "info", "warn", "error", got "loud"',
      '8:86 nodes.2.with.where.0.valu: unknown option "valu" for state.query',
    ],
  );
  // Templated values are checked when the run evaluates them: none of these is a problem yet.
  const prepared = await prepareFlow(parseFlow(
    `id: demo
inputs:
  who: { type: string }
  n: { type: number }
nodes:
  - { id: a, type: state.increment, with: { key: k, by: "\${{ inputs.n }}" } }
  - { id: b, type: delay, with: { for: "\${{ inputs.n }}s" } }
  - { id: c, type: queue, with: { flow: "\${{ inputs.who }}", priority: "\${{ inputs.n }}" } }
  - { id: d, type: state.get, with: { key: k, store: "\${{ inputs.who }}" } }
`,
    { file: "flow.yaml" },
  ));
  assert.equal(prepared.nodes.length, 4);
});

Deno.test("prepareFlow() reports a missing required node option by its path", async () => {
  const problems = await problemsOf(`id: demo
nodes:
  - { id: a, type: state.set, with: { scope: flow, value: 1 } }
`);
  assert.equal(problems.length, 1, problems.join("\n"));
  assert.match(problems[0], /nodes\.0\.with\.key: missing required option "key" for state\.set$/);
});

Deno.test("prepareFlow() passes a node option's own message on for a wrong value", async () => {
  const problems = await problemsOf(`id: demo
nodes:
  - { id: a, type: delay, with: { for: [1] } }
`);
  assert.equal(problems.length, 1, problems.join("\n"));
  assert.match(problems[0], /nodes\.0\.with\.for: delay: /);
});

Deno.test("prepareFlow() checks static durations of built-in nodes (delay for, state.set expireIn)", async () => {
  const problems = await problemsOf(`id: demo
nodes:
  - { id: a, type: delay, with: { for: 5 parsecs } }
  - { id: b, type: state.set, with: { key: k, value: 1, expireIn: soon } }
  - { id: c, type: delay, with: { for: 1h30m } }
`);
  assert.equal(problems.length, 2, problems.join("\n"));
  assert.match(
    problems[0],
    /^3:\d+ nodes\.0\.with\.for: delay: expected a duration .*got "5 parsecs"$/,
  );
  assert.match(
    problems[1],
    /^4:\d+ nodes\.1\.with\.expireIn: state\.set: expected a duration .*got "soon"$/,
  );
});

Deno.test("prepareFlow() names, for an option value not among a fixed set, the set, what was written and the closest", async () => {
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
