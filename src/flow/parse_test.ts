import assert from "node:assert/strict";
import { join } from "node:path";
import { FlowValidationError, formatPath, loadFlowFile, parseFlow, validateFlow } from "./parse.ts";
import type { FlowDefinition } from "./types.ts";
import { EXAMPLE, flow, NODE_TYPES, problems } from "./_test_utils.ts";

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

Deno.test("parseFlow() reports malformed YAML where it goes wrong", () => {
  assert.deepEqual(problems("id: demo\nnodes: [1,\n"), [
    "flow.yaml:2:8: this [ opens a list that no ] closes: add the ] (a list that goes on over more lines needs them indented deeper than the key it belongs to)",
  ]);
  assert.deepEqual(problems("id: demo\n---\nid: other\n"), [
    "flow.yaml:2:1: a second YAML document starts here (`---`); a flow file holds one: remove the `---` and what follows, or put the other flow in a file of its own",
  ]);
  assert.deepEqual(problems("id: demo\nnodes:\n  - { id: a, type: !custom log }\n"), [
    "flow.yaml:3:20: Unresolved tag: !custom",
  ]);
});

Deno.test("parseFlow() reports a badly indented key or item at its column, once, with the columns to use", () => {
  const node = "  - id: a\n    type: log\n";
  // Each of these made yaml report at column 1, in its own words, and again on later lines.
  assert.deepEqual(problems(`id: demo\nnodes:\n${node}   with: { message: hi }\n`), [
    "flow.yaml:5:4: `with:` is indented 3 spaces; the keys beside it use 4: indent it like them",
  ]);
  assert.deepEqual(problems(`id: demo\nnodes:\n${node}  with: { message: hi }\n  - id: b\n`), [
    "flow.yaml:5:3: `with:` is indented 2 spaces; the keys beside it use 4: indent it like them",
  ]);
  assert.deepEqual(problems(`id: demo\nnodes:\n${node} - id: b\n   type: log\n`), [
    "flow.yaml:5:2: `- id: b` is indented 1 space; the list items beside it use 2: indent it like them",
  ]);
  // A nested block: the keys beside it are the ones of the innermost block it is near.
  assert.deepEqual(
    problems(`id: demo\nnodes:\n${node}    with:\n      message: hi\n     level: info\n`),
    [
      "flow.yaml:7:6: `level:` is indented 5 spaces; the keys beside it use 6: indent it like them",
    ],
  );
  // A key below a complete value, deeper than the keys beside it.
  assert.deepEqual(problems(`id: demo\nnodes:\n${node}    needs: []\n     with: {}\n`), [
    "flow.yaml:6:6: `with:` is indented 5 spaces; the keys beside it use 4: indent it like them",
  ]);
  // Two slips in two nodes: both.
  assert.deepEqual(
    problems(`id: demo\nnodes:\n${node}   with: {}\n  - id: b\n    type: log\n   with: {}\n`),
    [
      "flow.yaml:5:4: `with:` is indented 3 spaces; the keys beside it use 4: indent it like them",
      "flow.yaml:8:4: `with:` is indented 3 spaces; the keys beside it use 4: indent it like them",
    ],
  );
  // A block scalar's lines and a flow mapping's over several lines are no keys to line up with.
  assert.deepEqual(
    problems(
      `id: demo\nnodes:\n  - id: a\n    type: log\n    with: {\n        message: x,\n    }\n` +
        `  - id: b\n    type: log\n    with:\n      message: |\n        a: b\n   needs: [a]\n`,
    ),
    [
      "flow.yaml:13:4: `needs:` is indented 3 spaces; the keys beside it use 4: indent it like them",
    ],
  );
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
    'flow.yaml:1:5: id: expected a flow id of lowercase letters, digits, "_" and "-", got "Demo"; write it as "demo"',
    'flow.yaml:4:11: nodes[0].type: unknown node type "lgo" (did you mean "log"?); use a built-in (state.increment, log, delay) or a module path like ./nodes/thing.ts',
    'flow.yaml:6:14: nodes[0].timeout: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got "soon"',
    "flow.yaml:9:13: nodes[1].needs[0]: dependency cycle: a -> b -> a",
    'flow.yaml:10:16: nodes[1].with.x: node "b" reads inputs.missing, which is not declared under inputs',
    "flow.yaml:11:1: colour: unknown field",
  ]);
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
      assert.equal(error.message, `${missing}: Cannot load flow: no such file ${missing}`);
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

Deno.test("validateFlow: an object nested thousands deep is a problem, not a stack overflow", () => {
  let value: unknown = 1;
  for (let i = 0; i < 20_000; i++) value = { value };
  assert.throws(
    () => validateFlow({ id: "deep", nodes: [{ id: "a", type: "transform", with: { value } }] }),
    (err) =>
      err instanceof FlowValidationError &&
      /^nested deeper than 256 levels/.test(err.problems[0].message),
  );
});

Deno.test("parseFlow() checks a schedule's abandoned policy", () => {
  const text = (policy: string) =>
    `id: demo\nschedule: { cron: "0 * * * *", abandoned: ${policy} }\nnodes:\n  - { id: a, type: log }\n`;
  const schedule = parseFlow(text("rerun"), { nodeTypes: NODE_TYPES }).definition.schedule;
  assert.deepEqual(schedule, { cron: "0 * * * *", abandoned: "rerun" });
  // Refused at the field itself, with the values it takes (it was "schedule: Invalid input").
  const refused = problems(text("retry"), { nodeTypes: NODE_TYPES });
  assert.deepEqual(refused, [
    'flow.yaml:2:43: schedule.abandoned: expected one of "skip", "rerun", got "retry"',
  ]);
});

Deno.test("parseFlow() names what a schedule may be when it is neither a string nor a mapping", () => {
  const refused = problems("id: demo\nschedule: 5\nnodes:\n  - { id: a, type: log }\n", {
    nodeTypes: NODE_TYPES,
  });
  assert.equal(refused.length, 1);
  assert.match(refused[0], /^flow\.yaml:2:11: schedule: expected a cron expression .* got 5$/);
});

Deno.test("parseFlow(): a template where a duration must be written says templates are not evaluated there", () => {
  const text = [
    "id: t",
    'timeout: "${{ inputs.d }}"',
    "inputs: { d: { default: 1s } }",
    "nodes:",
    "  - id: a",
    "    type: log",
    '    timeout: "${{ inputs.d }}"',
    '    retry: { attempts: 2, delay: "${{ inputs.d }}" }',
    "    with: { message: hi }",
    "",
  ].join("\n");
  const because = "a template is not evaluated here (only in with, if, forEach and outputs); " +
    "write the duration itself";
  const got = '"${{ inputs.d }}"';
  assert.deepEqual(problems(text, { nodeTypes: NODE_TYPES }), [
    `flow.yaml:2:10: timeout: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got ${got}: ${because}`,
    `flow.yaml:7:14: nodes[0].timeout: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got ${got}: ${because}`,
    `flow.yaml:8:34: nodes[0].retry.delay: expected a duration like "500ms", "2s", "1.5m", "1h", "1d" or a number of milliseconds, got ${got}: ${because}`,
  ]);
});
