import assert from "node:assert/strict";
import { join } from "node:path";
import {
  coerceInputs,
  FlowValidationError,
  formatPath,
  loadFlowFile,
  parseFlow,
  validateFlow,
} from "./parse.ts";
import { flowJsonSchema, flowSchema } from "./schema.ts";
import type { FlowDefinition } from "./types.ts";

const EXAMPLE = `id: counter                 # required; [a-z0-9_-]+
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

const NODE_TYPES = new Set(["state.increment", "log", "delay"]);

/** The lines of the FlowValidationError that parsing `text` as flow.yaml throws. */
function problems(text: string, options: { nodeTypes?: ReadonlySet<string> } = {}): string[] {
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
function flow(extra: string, node = ""): string {
  return `id: demo
nodes:
  - id: hello
    type: log
    with: { message: hi }
${node}${extra}`;
}

// ---------------------------------------------------------------------------
// The happy path

Deno.test("parseFlow() reads the example flow", () => {
  const parsed = parseFlow(EXAMPLE, { file: "flows/counter.yaml", nodeTypes: NODE_TYPES });
  const expected: FlowDefinition = {
    id: "counter",
    description: "counts its runs",
    schedule: "0 * * * *",
    env: ["HOME_REGION"],
    inputs: { by: { type: "number", default: 1 } },
    concurrency: 16,
    timeout: "10m",
    nodes: [
      {
        id: "bump",
        type: "state.increment",
        with: { scope: "flow", key: "count", by: "${{ inputs.by }}" },
      },
      {
        id: "report",
        type: "log",
        needs: ["bump"],
        if: "${{ nodes.bump.output > 0 }}",
        retry: { attempts: 3, delay: "1s", backoff: "exponential", maxDelay: "30s" },
        timeout: "5s",
        continueOnError: false,
        with: { message: "count is now ${{ nodes.bump.output }}" },
      },
    ],
    outputs: { count: "${{ nodes.bump.output }}" },
  };
  assert.deepEqual(parsed.definition, expected);
  assert.equal(parsed.file, "flows/counter.yaml");
  assert.equal(parsed.source, EXAMPLE);
});

Deno.test("ParsedFlow.locate() finds values, and the nearest ancestor of missing paths", () => {
  const parsed = parseFlow(EXAMPLE);
  assert.equal(parsed.file, undefined);
  assert.deepEqual(parsed.locate([]), { line: 1, column: 1 });
  assert.deepEqual(parsed.locate(["nodes", 1, "retry", "delay"]), { line: 17, column: 34 });
  assert.deepEqual(parsed.locate(["nodes", 1, "needs", 0]), { line: 15, column: 13 });
  assert.deepEqual(parsed.locate(["nodes", 0, "with", "by"]), { line: 12, column: 42 });
  // no such option: the node's `with` mapping
  assert.deepEqual(parsed.locate(["nodes", 1, "with", "level"]), { line: 20, column: 11 });
  assert.deepEqual(parsed.locate(["nodes", 7]), { line: 10, column: 3 });
});

Deno.test("ParsedFlow.locate() follows YAML aliases to their anchor", () => {
  const aliased = parseFlow(`id: demo
nodes:
  - id: a
    type: log
    retry: &r { attempts: 2 }
  - { id: b, type: log, retry: *r }
`);
  assert.deepEqual(aliased.definition.nodes[1].retry, { attempts: 2 });
  assert.deepEqual(aliased.locate(["nodes", 1, "retry", "attempts"]), { line: 5, column: 27 });
});

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

// ---------------------------------------------------------------------------
// One test per kind of problem

Deno.test("parseFlow() reports malformed YAML at yaml's own position", () => {
  assert.deepEqual(problems("id: demo\nnodes: [1,\n"), [
    "flow.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]",
  ]);
  assert.deepEqual(problems("id: demo\n---\nid: other\n"), [
    "flow.yaml:2:1: Source contains multiple documents; please use YAML.parseAllDocuments()",
  ]);
  assert.deepEqual(problems("id: demo\nnodes:\n  - { id: a, type: !custom log }\n"), [
    "flow.yaml:3:20: Unresolved tag: !custom",
  ]);
});

Deno.test("parseFlow() reports a top level that is not a mapping", () => {
  assert.deepEqual(problems("- id: demo\n"), [
    "flow.yaml:1:1: expected a mapping (id, nodes, …) at the top level, got a list",
  ]);
  assert.deepEqual(problems("just text\n"), [
    'flow.yaml:1:1: expected a mapping (id, nodes, …) at the top level, got "just text"',
  ]);
  assert.deepEqual(problems("# nothing but a comment\n"), [
    "flow.yaml: the flow is empty; expected a mapping with at least id and nodes",
  ]);
});

Deno.test("parseFlow() reports duplicate YAML keys at the second one", () => {
  assert.deepEqual(problems(flow("", "    type: delay\n")), [
    'flow.yaml:6:5: nodes[0].type: duplicate key "type" (first at line 4, column 5)',
  ]);
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
      'flow.yaml:1:5: id: expected a flow id of lowercase letters, digits, "_" and "-", got "My Flow"',
      'flow.yaml:3:11: nodes[0].id: expected a node id of letters, digits, "_" and "-", got "say hi"',
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
    'flow.yaml:4:20: nodes[1].type: unknown node type "whatever"; use a built-in (state.increment, log, delay) or a module path like ./nodes/thing.ts',
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
      'flow.yaml:8:10: timeout: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got "10" (add a unit, e.g. "10ms")',
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
      'flow.yaml:8:25: nodes[0].with.double: Cannot parse ${{ bad }}: unknown name "bad": an expression starts from inputs, nodes, env or run, a literal, or a function call',
      'flow.yaml:9:26: nodes[0].with.single: Cannot parse ${{ nope }}: unknown name "nope": an expression starts from inputs, nodes, env or run, a literal, or a function call (did you mean "nodes"?)',
      'flow.yaml:10:48: nodes[0].with.nested[1].deep: Cannot parse ${{ nodes.a.output ) }}: unexpected ")": expected an operator or "}}"',
      'flow.yaml:11:14: nodes[0].with.block: Cannot parse ${{ oops }}: unknown name "oops": an expression starts from inputs, nodes, env or run, a literal, or a function call',
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

Deno.test("parseFlow() collects every problem, in source order", () => {
  const lines = problems(
    `id: Demo
nodes:
  - id: a
    type: lgo
    needs: [b]
    timeout: soon
  - id: b
    type: log
    needs: [a]
    with: { x: "\${{ inputs.missing }}" }
colour: blue
`,
    { nodeTypes: NODE_TYPES },
  );
  assert.deepEqual(lines, [
    'flow.yaml:1:5: id: expected a flow id of lowercase letters, digits, "_" and "-", got "Demo"',
    'flow.yaml:4:11: nodes[0].type: unknown node type "lgo" (did you mean "log"?); use a built-in (state.increment, log, delay) or a module path like ./nodes/thing.ts',
    'flow.yaml:6:14: nodes[0].timeout: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got "soon"',
    "flow.yaml:9:13: nodes[1].needs[0]: dependency cycle: a -> b -> a",
    'flow.yaml:10:16: nodes[1].with.x: node "b" reads inputs.missing, which is not declared under inputs',
    "flow.yaml:11:1: colour: unknown field",
  ]);
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

Deno.test("parseFlow() explains the env permission the yaml parser needs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = join(dir, "parse.ts");
    await Deno.writeTextFile(
      script,
      `import { parseFlow } from ${JSON.stringify(new URL("./parse.ts", import.meta.url).href)};
try { parseFlow("id: x", { file: "x.yaml" }); } catch (e) { console.log(e.name + ": " + e.message); }`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--no-lock",
        `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
        "--allow-read",
        script,
      ],
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    }).output();
    assert.equal(
      new TextDecoder().decode(output.stdout).trim(),
      "NotCapable: Cannot parse flow x.yaml: the yaml parser reads the LOG_TOKENS and LOG_STREAM environment variables; allow them with --allow-env=LOG_TOKENS,LOG_STREAM",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FlowValidationError carries structured problems", () => {
  try {
    parseFlow(flow("concurrency: 0\n"), { file: "x.yaml" });
    assert.fail("no error");
  } catch (error) {
    assert.ok(error instanceof FlowValidationError);
    assert.equal(error.file, "x.yaml");
    assert.deepEqual(error.problems, [
      { message: "must be at least 1, got 0", path: ["concurrency"], line: 6, column: 14 },
    ]);
  }
  const bare = new FlowValidationError([{ message: "bad", path: ["nodes", 0, "a b"] }]);
  assert.equal(bare.message, 'nodes[0]["a b"]: bad');
  assert.equal(bare.file, undefined);
  assert.equal(formatPath(["inputs", "my-input", "default"]), "inputs.my-input.default");
});

Deno.test("parseFlow() without a file name reports <flow>", () => {
  assert.throws(() => parseFlow("id: demo\n"), {
    name: "FlowValidationError",
    message: '<flow>:1:1: missing required field "nodes"',
  });
});

Deno.test("parseFlow() rejects a non-string argument with a TypeError", () => {
  assert.throws(() => parseFlow({} as unknown as string), TypeError);
});

// ---------------------------------------------------------------------------
// validateFlow and loadFlowFile

Deno.test("validateFlow() checks an object, without positions", () => {
  assert.throws(
    () =>
      validateFlow({
        id: "demo",
        nodes: [
          { id: "a", type: "log", needs: ["b"], with: { when: new Date(0) } },
          { id: "b", type: "log", needs: ["a"], retry: { attempts: 0 } },
        ],
        outputs: { x: "${{ nodes.zzz.output }}" },
      }),
    {
      name: "FlowValidationError",
      message: [
        "nodes[0].with.when: a Date is not a JSON value; use plain objects and arrays",
        "nodes[1].retry.attempts: must be at least 1, got 0",
        "nodes[1].needs[0]: dependency cycle: a -> b -> a",
        'outputs.x: output "x" reads nodes.zzz, which is not a node of this flow',
      ].join("\n"),
    },
  );
  assert.throws(() => validateFlow([]), {
    message: "expected a flow object (id, nodes, …), got a list",
  });
});

Deno.test("validateFlow() returns a copy, and locate() finds nothing", () => {
  const input = {
    id: "demo",
    nodes: [{ id: "a", type: "log", with: { list: [1, 2] } }],
    timeout: undefined,
  };
  const parsed = validateFlow(input, { nodeTypes: NODE_TYPES });
  assert.deepEqual(parsed.definition, {
    id: "demo",
    nodes: [{ id: "a", type: "log", with: { list: [1, 2] } }],
  });
  assert.notEqual(parsed.definition.nodes[0].with, input.nodes[0].with);
  assert.equal(parsed.locate(["nodes", 0]), undefined);
  assert.equal(parsed.source, undefined);
});

Deno.test("loadFlowFile() reads and parses a file, naming it in problems", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = join(dir, "counter.yaml");
    await Deno.writeTextFile(good, EXAMPLE);
    const parsed = await loadFlowFile(good, { nodeTypes: NODE_TYPES });
    assert.equal(parsed.definition.id, "counter");
    assert.equal(parsed.file, good);
    const bad = join(dir, "bad.yaml");
    await Deno.writeTextFile(bad, "id: demo\nnodes: []\n");
    await assert.rejects(() => loadFlowFile(bad), {
      name: "FlowValidationError",
      message: `${bad}:2:8: nodes: a flow needs at least one node`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadFlowFile() reports a missing file or a directory as a FlowValidationError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = join(dir, "nope.yaml");
    await assert.rejects(() => loadFlowFile(missing), (error: unknown) => {
      assert.ok(error instanceof FlowValidationError);
      assert.equal(error.message, `${missing}: Cannot load flow: no such file`);
      assert.equal(error.file, missing);
      assert.ok(error.cause instanceof Deno.errors.NotFound);
      return true;
    });
    await assert.rejects(() => loadFlowFile(dir), {
      name: "FlowValidationError",
      message: `${dir}: Cannot load flow: this is a directory, not a flow file`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// The schemas

Deno.test("flowSchema checks the structure of the example flow", () => {
  const definition = parseFlow(EXAMPLE).definition;
  assert.deepEqual(flowSchema.parse(definition), definition);
  assert.equal(flowSchema.safeParse({ id: "x" }).success, false);
});

Deno.test("flowJsonSchema() describes the flow format as JSON Schema 2020-12", () => {
  const schema = flowJsonSchema() as {
    $schema: string;
    $id: string;
    title: string;
    required: string[];
    additionalProperties: boolean;
    properties: Record<string, Record<string, unknown>>;
  };
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.equal(schema.$id, "https://jsr.io/@flowstate/core/flow.schema.json");
  assert.equal(schema.title, "Flowstate flow");
  assert.deepEqual(schema.required, ["id", "nodes"]);
  assert.equal(schema.additionalProperties, false);
  assert.equal(schema.properties.id.pattern, "^[a-z0-9_-]+$");
  assert.equal(typeof schema.properties.concurrency.markdownDescription, "string");

  const nodes = schema.properties.nodes as {
    items: { required: string[]; properties: Record<string, Record<string, unknown>> };
  };
  assert.deepEqual(nodes.items.required, ["id", "type"]);
  for (const field of ["id", "type", "with", "needs", "if", "retry", "timeout"]) {
    assert.ok(field in nodes.items.properties, field);
  }
  assert.deepEqual(nodes.items.properties.needs.type, "array");
  assert.ok((nodes.items.properties.type.examples as string[]).includes("state.increment"));

  const timeout = schema.properties.timeout as { anyOf: { type: string; pattern?: string }[] };
  const pattern = new RegExp(timeout.anyOf.find((a) => a.type === "string")!.pattern!);
  assert.ok(pattern.test("10m") && pattern.test("1.5s") && !pattern.test("10x"));

  // Every top-level field of the example is described, and nothing it lacks is required.
  const example = parseFlow(EXAMPLE).definition as unknown as Record<string, unknown>;
  for (const key of Object.keys(example)) assert.ok(key in schema.properties, key);
  for (const key of schema.required) assert.ok(key in example, key);
  assert.doesNotThrow(() => JSON.stringify(schema));
});

Deno.test("flowJsonSchema() with nodeTypes restricts node types to them or modules", () => {
  const schema = flowJsonSchema({ nodeTypes: ["log", "delay", "log"], id: "urn:test" });
  assert.equal(schema.$id, "urn:test");
  const type = (schema.properties as { nodes: { items: { properties: { type: unknown } } } })
    .nodes.items.properties.type as { examples: string[]; anyOf: Record<string, unknown>[] };
  assert.deepEqual(type.examples, ["delay", "log"]);
  assert.deepEqual(type.anyOf[0], { enum: ["delay", "log"] });
  const modulePattern = new RegExp(type.anyOf[1].pattern as string);
  assert.ok(modulePattern.test("./x.ts") && modulePattern.test("npm:@a/b"));
  assert.ok(!modulePattern.test("lgo"));
});

// ---------------------------------------------------------------------------
// coerceInputs

const INPUT_FLOW: FlowDefinition = {
  id: "demo",
  inputs: {
    by: { type: "number", default: 1 },
    name: { type: "string" },
    verbose: { type: "boolean", default: false },
    tags: { type: "array", default: ["a"] },
    options: { type: "object", default: {} },
    color: { type: "string", enum: ["red", "blue"], default: "red" },
    anything: { default: null },
  },
  nodes: [{ id: "a", type: "log" }],
};

Deno.test("coerceInputs() applies defaults and keeps given values", () => {
  const result = coerceInputs(INPUT_FLOW, { name: "ada", by: 5 });
  assert.deepEqual(result, {
    by: 5,
    name: "ada",
    verbose: false,
    tags: ["a"],
    options: {},
    color: "red",
    anything: null,
  });
  (result.tags as string[]).push("changed");
  assert.deepEqual(INPUT_FLOW.inputs!.tags.default, ["a"]);
});

Deno.test("coerceInputs() reports unknown, missing and mistyped inputs together", () => {
  assert.throws(
    () => coerceInputs(INPUT_FLOW, { bye: 2, by: "abc", verbose: 1, color: "rde" }),
    {
      name: "FlowValidationError",
      message: [
        'inputs.bye: unknown input (did you mean "by"?)',
        'inputs.by: expected a number, got "abc"',
        "inputs.name: required (it has no default) but not given",
        "inputs.verbose: expected true or false, got 1",
        'inputs.color: expected one of "red", "blue", got "rde" (did you mean "red"?)',
      ].join("\n"),
    },
  );
  assert.throws(() => coerceInputs({ id: "bare", nodes: [] }, { x: 1 }), {
    message: 'inputs.x: unknown input; flow "bare" declares no inputs',
  });
  assert.throws(() => coerceInputs(INPUT_FLOW, { name: "n", zzzzzz: 1 }), {
    message:
      'inputs.zzzzzz: unknown input; flow "demo" declares by, name, verbose, tags, options, color, anything',
  });
});

Deno.test("coerceInputs() rejects values that are not JSON", () => {
  assert.throws(() => coerceInputs(INPUT_FLOW, { name: "n", options: { when: new Date(0) } }), {
    message: "inputs.options: at when: a Date is not a JSON value; use plain objects and arrays",
  });
  assert.throws(() => coerceInputs(INPUT_FLOW, { name: "n", by: NaN }), {
    message: "inputs.by: expected a number, got NaN",
  });
});

Deno.test("coerceInputs() with fromStrings parses values per declared type", () => {
  const result = coerceInputs(INPUT_FLOW, {
    by: "3",
    name: "42",
    verbose: "true",
    tags: '["x", "y"]',
    options: '{"deep": {"a": 1}}',
    anything: "[1, 2]",
  }, { fromStrings: true });
  assert.deepEqual(result, {
    by: 3,
    name: "42",
    verbose: true,
    tags: ["x", "y"],
    options: { deep: { a: 1 } },
    color: "red",
    anything: [1, 2],
  });
  assert.equal(
    coerceInputs(INPUT_FLOW, { name: "n", anything: "plain text" }, { fromStrings: true })
      .anything,
    "plain text",
  );
});

Deno.test("coerceInputs() with fromStrings reports text that does not parse", () => {
  assert.throws(
    () =>
      coerceInputs(INPUT_FLOW, {
        by: "abc",
        name: "n",
        verbose: "yes",
        tags: "{not json",
        options: "[1]",
        color: "green",
      }, { fromStrings: true }),
    {
      name: "FlowValidationError",
      message: [
        'inputs.by: expected a number, got "abc"',
        'inputs.verbose: expected true or false, got "yes"',
        'inputs.tags: expected a JSON array, got "{not json"',
        "inputs.options: expected a mapping, got a list",
        'inputs.color: expected one of "red", "blue", got "green"',
      ].join("\n"),
    },
  );
  assert.throws(
    () => coerceInputs(INPUT_FLOW, { name: "n", by: "" }, { fromStrings: true }),
    { message: 'inputs.by: expected a number, got ""' },
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
    /nightly\.flow\.yaml:2:\d+: .*IANA time zone/,
  );
});
