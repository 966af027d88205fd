// The checks of a flow definition (check.ts), through parseFlow: one test per
// kind of problem, each with its position.
import assert from "node:assert/strict";
import { FlowValidationError, parseFlow } from "./parse.ts";
import { flow, NODE_TYPES, problems } from "./_test_utils.ts";

Deno.test("parseFlow() accepts module node types without checking them", () => {
  const parsed = parseFlow(
    `id: demo
nodes:
  - { id: a, type: ./nodes/thing.ts }
  - { id: b, type: ../shared/node.ts }
  - { id: c, type: /abs/node.ts }
  - { id: d, type: "npm:@scope/node" }
`,
    { nodeTypes: NODE_TYPES },
  );
  assert.deepEqual(parsed.definition.nodes.map((n) => n.type), [
    "./nodes/thing.ts",
    "../shared/node.ts",
    "/abs/node.ts",
    "npm:@scope/node",
  ]);
});

Deno.test("parseFlow() accepts reads of indirect ancestors, and outputs reading any node", () => {
  const parsed = parseFlow(`id: demo
inputs:
  name: { type: string }
nodes:
  - { id: a, type: log, with: { message: "\${{ inputs.name }}" } }
  - { id: b, type: log, needs: [a] }
  - { id: c, type: log, needs: [b], if: "\${{ nodes.a.status == 'succeeded' }}" }
outputs:
  all: ["\${{ nodes.a.output }}", { deep: "\${{ nodes.c.output }}" }]
`);
  assert.equal(parsed.definition.nodes.length, 3);
});

Deno.test("parseFlow() reports unknown fields at every level, with a suggestion", () => {
  assert.deepEqual(
    problems(`id: demo
nodez: []
inputs:
  n: { type: number, defualt: 1 }
nodes:
  - id: hello
    tpye: log
    retry: { attempts: 2, backof: exponential }
    colour: red
`),
    [
      'flow.yaml:2:1: nodez: unknown field (did you mean "nodes"?)',
      'flow.yaml:4:22: inputs.n.defualt: unknown field (did you mean "default"?)',
      'flow.yaml:6:5: nodes[0]: missing required field "type"',
      'flow.yaml:7:5: nodes[0].tpye: unknown field (did you mean "type"?)',
      'flow.yaml:8:27: nodes[0].retry.backof: unknown field (did you mean "backoff"?)',
      "flow.yaml:9:5: nodes[0].colour: unknown field",
    ],
  );
});

Deno.test("parseFlow() reports wrong types and missing required fields", () => {
  assert.deepEqual(
    problems(`id: 7
concurrency: many
env: HOME
nodes:
  - id: hello
    type: log
    continueOnError: "no"
    needs: bump
    with: [1, 2]
  - just a string
`),
    [
      "flow.yaml:1:5: id: expected a string, got 7",
      'flow.yaml:2:14: concurrency: expected a number, got "many"',
      'flow.yaml:3:6: env: expected a list, got "HOME"',
      'flow.yaml:7:22: nodes[0].continueOnError: expected true or false, got "no"',
      'flow.yaml:8:12: nodes[0].needs: expected a list, got "bump"',
      "flow.yaml:9:11: nodes[0].with: expected a mapping, got a list",
      'flow.yaml:10:5: nodes[1]: expected a mapping, got "just a string"',
    ],
  );
  assert.deepEqual(problems("description: no id, no nodes\n"), [
    'flow.yaml:1:1: missing required field "id"',
    'flow.yaml:1:1: missing required field "nodes"',
  ]);
  assert.deepEqual(problems("id: demo\nnodes: []\n"), [
    "flow.yaml:2:8: nodes: a flow needs at least one node",
  ]);
});

Deno.test("parseFlow() reports ids that do not match their pattern", () => {
  assert.deepEqual(
    problems(`id: My Flow
nodes:
  - { id: "say hi", type: log }
`),
    [
      'flow.yaml:1:5: id: expected a flow id of lowercase letters, digits, "_" and "-", got "My Flow"; write it as "my-flow"',
      'flow.yaml:3:11: nodes[0].id: expected a node id of letters, digits, "_" and "-", got "say hi"; write it as "say-hi"',
    ],
  );
});

Deno.test("parseFlow() reports duplicate node ids", () => {
  assert.deepEqual(problems(flow("", "  - id: hello\n    type: log\n")), [
    'flow.yaml:6:9: nodes[1].id: duplicate node id "hello" (already used by nodes[0])',
  ]);
});

Deno.test("parseFlow() reports needs naming a missing node, with a suggestion, or itself", () => {
  assert.deepEqual(
    problems(`id: demo
nodes:
  - id: bump
    type: log
  - id: report
    type: log
    needs: [bmp, report, zzz]
`),
    [
      'flow.yaml:7:13: nodes[1].needs[0]: unknown node "bmp" (did you mean "bump"?)',
      'flow.yaml:7:18: nodes[1].needs[1]: node "report" cannot need itself',
      'flow.yaml:7:26: nodes[1].needs[2]: unknown node "zzz"',
    ],
  );
});

Deno.test("parseFlow() reports needs cycles, naming the cycle", () => {
  assert.deepEqual(
    problems(`id: demo
nodes:
  - { id: a, type: log, needs: [c] }
  - { id: b, type: log, needs: [a] }
  - { id: c, type: log, needs: [b] }
  - { id: d, type: log, needs: [e] }
  - { id: e, type: log, needs: [d] }
`),
    [
      "flow.yaml:4:33: nodes[1].needs[0]: dependency cycle: a -> c -> b -> a",
      "flow.yaml:7:33: nodes[4].needs[0]: dependency cycle: d -> e -> d",
    ],
  );
});

Deno.test("parseFlow() reports unknown node types only when nodeTypes is given", () => {
  const text = `id: demo
nodes:
  - { id: a, type: lgo }
  - { id: b, type: whatever }
`;
  assert.deepEqual(problems(text, { nodeTypes: NODE_TYPES }), [
    'flow.yaml:3:20: nodes[0].type: unknown node type "lgo" (did you mean "log"?); use a built-in (state.increment, log, delay) or a module path like ./nodes/thing.ts',
    `flow.yaml:4:20: nodes[1].type: unknown node type "whatever"; use a built-in (state.increment, log, delay) or a module path like ./nodes/thing.ts (a node type a program defines with openRuntime({ nodeTypes }) is known only to that program's runtime)`,
  ]);
  // Names known beyond the built-ins are the program's node types (openRuntime's nodeTypes).
  assert.deepEqual(problems(text, { nodeTypes: new Set([...NODE_TYPES, "acme.lgo"]) }), [
    'flow.yaml:3:20: nodes[0].type: unknown node type "lgo" (did you mean "log"?); use a built-in (state.increment, log, delay), a node type of this program (acme.lgo) or a module path like ./nodes/thing.ts',
    'flow.yaml:4:20: nodes[1].type: unknown node type "whatever"; use a built-in (state.increment, log, delay), a node type of this program (acme.lgo) or a module path like ./nodes/thing.ts',
  ]);
  assert.equal(parseFlow(text).definition.nodes[0].type, "lgo");
});

Deno.test("parseFlow() and prepareFlow() agree on what names a module: lib/a:b.ts is no module", async () => {
  const text = `id: demo
nodes:
  - { id: a, type: "lib/a:b.ts" }
`;
  // Once, the parser took any name with a colon for a module and prepareFlow() then
  // failed with "unknown node type": now both use the loader's one rule.
  assert.deepEqual(problems(text, { nodeTypes: NODE_TYPES }), [
    'flow.yaml:3:20: nodes[0].type: unknown node type "lib/a:b.ts": a module path must start with ./, ../ or / (write "./lib/a:b.ts")',
  ]);
  const { prepareFlow } = await import("./prepare.ts");
  await assert.rejects(
    () => prepareFlow(parseFlow(text, { file: "flow.yaml" })),
    (err) =>
      err instanceof FlowValidationError && /unknown node type "lib\/a:b.ts"/.test(err.message),
  );
});

Deno.test("parseFlow() reports bad durations", () => {
  assert.deepEqual(
    problems(flow(
      'timeout: "10"\n',
      "    timeout: 0s\n    retry: { attempts: 2, delay: 10x, maxDelay: -5 }\n",
    )),
    [
      'flow.yaml:6:14: nodes[0].timeout: must be longer than 0, got "0s"',
      'flow.yaml:7:34: nodes[0].retry.delay: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got "10x"',
      'flow.yaml:7:49: nodes[0].retry.maxDelay: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got -5',
      'flow.yaml:8:10: timeout: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got "10" (add a unit, e.g. "10ms", or write a number of milliseconds without quotes)',
    ],
  );
  assert.deepEqual(problems(flow("timeout: [1s]\n")), [
    'flow.yaml:6:10: timeout: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got a list',
  ]);
  assert.equal(parseFlow(flow("timeout: 1500\n")).definition.timeout, 1500);
});

Deno.test("parseFlow() reports retry.attempts and concurrency below 1", () => {
  assert.deepEqual(
    problems(flow("concurrency: 0\n", "    retry: { attempts: 0 }\n")),
    [
      "flow.yaml:6:24: nodes[0].retry.attempts: must be at least 1, got 0",
      "flow.yaml:7:14: concurrency: must be at least 1, got 0",
    ],
  );
  assert.deepEqual(problems(flow("concurrency: 2.5\n")), [
    "flow.yaml:6:14: concurrency: expected a whole number, got 2.5",
  ]);
});

Deno.test("parseFlow() reports a schedule that does not look like cron", () => {
  assert.deepEqual(problems(flow('schedule: "every day"\n')), [
    'flow.yaml:6:11: schedule: invalid cron expression "every day": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), got 2',
  ]);
  assert.deepEqual(problems(flow("schedule: '@sometimes'\n")), [
    'flow.yaml:6:11: schedule: unknown cron nickname "@sometimes"; the nicknames are @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly',
  ]);
  // One cron checker for flows, config and the scheduler: a date that never comes is refused too.
  assert.deepEqual(problems(flow("schedule: '0 0 30 2 *'\n")), [
    'flow.yaml:6:11: schedule: cron expression "0 0 30 2 *" never matches a date',
  ]);
  parseFlow(flow("schedule: '@daily'\n"));
  parseFlow(flow("schedule: '*/5 * * * * *'\n"));
});

Deno.test("parseFlow() reports template syntax errors at the exact column", () => {
  assert.deepEqual(
    problems(`id: demo
nodes:
  - id: a
    type: log
    if: \${{ 1 + }}
    with:
      plain: text \${{ inputs. }}
      double: "a\\tb \${{ bad }}"
      single: 'it''s \${{ nope }}'
      nested: [ok, { deep: "\${{ nodes.a.output ) }}" }]
      block: |
        line one \${{ oops }}
`),
    [
      'flow.yaml:5:17: nodes[0].if: Cannot parse ${{ 1 + }}: expected a value after "+", found "}}"',
      'flow.yaml:7:31: nodes[0].with.plain: Cannot parse ${{ inputs. }}: expected a property name after "."',
      'flow.yaml:8:25: nodes[0].with.double: Cannot parse ${{ bad }}: unknown name "bad": an expression starts from inputs, nodes, env, secrets, run, item or index, a literal, or a function call',
      'flow.yaml:9:26: nodes[0].with.single: Cannot parse ${{ nope }}: unknown name "nope": an expression starts from inputs, nodes, env, secrets, run, item or index, a literal, or a function call (did you mean "nodes"?)',
      'flow.yaml:10:48: nodes[0].with.nested[1].deep: Cannot parse ${{ nodes.a.output ) }}: unexpected ")": expected an operator or "}}"',
      'flow.yaml:11:14: nodes[0].with.block: Cannot parse ${{ oops }}: unknown name "oops": an expression starts from inputs, nodes, env, secrets, run, item or index, a literal, or a function call',
    ],
  );
});

Deno.test("parseFlow() reports templates in outputs", () => {
  assert.deepEqual(problems(flow('outputs:\n  x: "${{ nodes.hello.output + }}"\n')), [
    'flow.yaml:7:32: outputs.x: Cannot parse ${{ nodes.hello.output + }}: expected a value after "+", found "}}"',
  ]);
});

Deno.test("parseFlow() reports nodes.X that is not an ancestor through needs", () => {
  assert.deepEqual(
    problems(`id: demo
nodes:
  - id: bump
    type: log
  - id: report
    type: log
    if: "\${{ nodes.bump.output > 0 }}"
    with: { message: "\${{ nodes.bump.output }} \${{ nodes.report.output }}" }
  - id: other
    type: log
    needs: [report]
    with: { message: "\${{ nodes.bmp.output }}" }
`),
    [
      'flow.yaml:7:9: nodes[1].if: node "report" reads nodes.bump but does not list it (directly or indirectly) in needs; add needs: [bump]',
      'flow.yaml:8:22: nodes[1].with.message: node "report" reads nodes.bump but does not list it (directly or indirectly) in needs; add needs: [bump]',
      'flow.yaml:8:22: nodes[1].with.message: node "report" reads its own output (nodes.report)',
      'flow.yaml:12:22: nodes[2].with.message: node "other" reads nodes.bmp, which is not a node of this flow (did you mean "bump"?)',
    ],
  );
});

Deno.test("parseFlow() reports outputs reading a node that does not exist", () => {
  assert.deepEqual(problems(flow('outputs:\n  x: "${{ nodes.helo.output }}"\n')), [
    'flow.yaml:7:6: outputs.x: output "x" reads nodes.helo, which is not a node of this flow (did you mean "hello"?)',
  ]);
});

Deno.test("parseFlow() reports inputs.X that is not declared", () => {
  assert.deepEqual(
    problems(flow(
      "inputs:\n  count: { type: number }\n",
      '    if: "${{ inputs.cout > 1 }}"\n',
    )),
    [
      'flow.yaml:6:9: nodes[0].if: node "hello" reads inputs.cout, which is not declared under inputs (did you mean "count"?)',
    ],
  );
});

Deno.test("parseFlow() reports env.X that is not listed under env", () => {
  assert.deepEqual(
    problems(flow(
      'outputs:\n  region: "${{ env.HOME_REGION }}"\n  user: "${{ env.USER }}"\n',
    )),
    [
      'flow.yaml:7:11: outputs.region: output "region" reads env.HOME_REGION, which is not listed under env; add env: [HOME_REGION]',
      'flow.yaml:8:9: outputs.user: output "user" reads env.USER, which is not listed under env; add env: [USER]',
    ],
  );
  assert.deepEqual(
    problems(flow('env: [HOME_REGON, PATH]\noutputs:\n  region: "${{ env.HOME_REGION }}"\n')),
    [
      'flow.yaml:8:11: outputs.region: output "region" reads env.HOME_REGION, which is not listed under env (did you mean "HOME_REGON"?)',
    ],
  );
  assert.deepEqual(problems(flow('env: [PATH]\noutputs:\n  home: "${{ env.HOME }}"\n')), [
    'flow.yaml:8:9: outputs.home: output "home" reads env.HOME, which is not listed under env; add HOME to env',
  ]);
  assert.deepEqual(problems(flow("env: [HOME REGION]\n")), [
    'flow.yaml:6:7: env[0]: expected an environment variable name (letters, digits and "_"), got "HOME REGION"',
  ]);
});

Deno.test("parseFlow() reports input types, defaults and enums that do not match", () => {
  assert.deepEqual(
    problems(flow(`inputs:
  a: { type: strng }
  b: { type: number, default: "1" }
  c: { type: string, enum: [red, 2] }
  d: { type: string, enum: [red, blue], default: green }
  e: { type: object, default: [] }
  f: { default: .nan }
`)),
    [
      'flow.yaml:7:14: inputs.a.type: expected one of "string", "number", "boolean", "object", "array", "any", got "strng" (did you mean "string"?)',
      'flow.yaml:8:31: inputs.b.default: expected a number, got "1"',
      "flow.yaml:9:34: inputs.c.enum[1]: expected a string, got 2",
      'flow.yaml:10:50: inputs.d.default: expected one of the enum values ("red", "blue"), got "green"',
      "flow.yaml:11:31: inputs.e.default: expected a mapping, got a list",
      "flow.yaml:12:17: inputs.f.default: NaN is not a JSON value; use a finite number",
    ],
  );
});

Deno.test("parseFlow() reports __proto__ keys and values that are not JSON", () => {
  assert.deepEqual(
    problems(
      flow("", "    retry: { attempts: 2 }\n    description: !!binary aGk=\n").replace(
        "with: { message: hi }",
        "with: { message: hi, __proto__: { polluted: true } }",
      ),
    ),
    [
      'flow.yaml:5:26: nodes[0].with.__proto__: the key "__proto__" is not allowed',
      "flow.yaml:7:27: nodes[0].description: expected a string, got a Buffer",
    ],
  );
});

Deno.test("parseFlow() accepts a schedule object and checks its fields", () => {
  const ok = parseFlow(
    [
      "id: nightly",
      "schedule: { cron: '0 3 * * *', timezone: Europe/Paris, overlap: queue, missed: run-once, jitter: 30s }",
      "nodes:",
      "  - { id: a, type: log, with: { message: hi } }",
    ].join("\n"),
    { file: "nightly.flow.yaml" },
  );
  assert.deepEqual(ok.definition.schedule, {
    cron: "0 3 * * *",
    timezone: "Europe/Paris",
    overlap: "queue",
    missed: "run-once",
    jitter: "30s",
  });
  assert.throws(
    () =>
      parseFlow(
        [
          "id: nightly",
          "schedule: { cron: '0 3 * * *', timezone: Mars/Olympus }",
          "nodes:",
          "  - { id: a, type: log, with: { message: hi } }",
        ].join("\n"),
        { file: "nightly.flow.yaml" },
      ),
    /nightly\.flow\.yaml:2:\d+: .*unknown time zone "Mars\/Olympus"; use an IANA name/,
  );
});
