/**
 * End-to-end tests of the workflow commands of the `flowstate` CLI (`run`,
 * `validate`, `runs`, `flows`, `metrics`, `schema`, scoped `state`): each test
 * runs `deno run cli.ts` as a subprocess in a temporary working directory with
 * FLOWSTATE_HOME set, on the default SQLite store.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliCommand, type Result, runCli } from "./_cli_sandbox.ts";
import { exitOf, hangGuard } from "./_deadline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const EXAMPLES = join(ROOT, "examples");
const EXPLODE_NODE = import.meta.resolve("./fixtures/nodes/explode.ts");
const NOT_A_NODE = import.meta.resolve("./fixtures/nodes/not_a_node.ts");
const MISSING_NODE = import.meta.resolve("./fixtures/nodes/missing.ts");
const TREE_FLOW = fileURLToPath(import.meta.resolve("./fixtures/flows/tree.flow.yaml"));

interface Sandbox {
  dir: string;
  home: string;
  run(...args: string[]): Promise<Result>;
  /** Run and parse stdout as JSON, asserting the exit code (default 0). */
  json<T = unknown>(args: string[], code?: number): Promise<T>;
  command(...args: string[]): Deno.Command;
  write(name: string, text: string): Promise<string>;
}

async function withSandbox(fn: (sandbox: Sandbox) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-flows-" });
  const home = join(dir, "home");
  const command = (...args: string[]) => cliCommand(dir, args, { home });
  const run = (...args: string[]): Promise<Result> => runCli(dir, args, { home });
  const json = async <T>(args: string[], code = 0): Promise<T> => {
    const result = await run(...args);
    assert.equal(result.code, code, `flowstate ${args.join(" ")}:\n${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  };
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(join(dir, name), text);
    return name;
  };
  try {
    await fn({ dir, home, run, json, command, write });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertNoStackTrace(text: string): void {
  assert.doesNotMatch(text, /^\s+at /m, `unexpected stack trace:\n${text}`);
}

function example(name: string): string {
  return join(EXAMPLES, `${name}.flow.yaml`);
}

interface RunRecordJson {
  id: string;
  flowId: string;
  flowVersion: string;
  status: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown> | null;
  startedAt: number;
  endedAt: number | null;
  durationMs: number | null;
  nodes: Record<string, { status: string; attempts: number; output?: unknown; error?: string }>;
  error: { node?: string; message: string } | null;
  parentRunId?: string;
}

interface RunSummaryJson {
  id: string;
  flowId: string;
  status: string;
  startedAt: number;
  error: { node?: string; message: string } | null;
  parentRunId?: string;
}

/** Entries in the default store: state and records alike. */
async function entryCount(sandbox: Sandbox): Promise<number> {
  const stores = await sandbox.json<{ name: string; entries: number }[]>(["stores", "--json"]);
  return stores.find((s) => s.name === "default")!.entries;
}

Deno.test("flowstate run keeps flow state across processes: the counter goes 1 then 2", async () => {
  await withSandbox(async ({ home, run }) => {
    const first = await run("run", example("counter"));
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^run: +[0-9a-z]{20}$/m);
    assert.match(first.stdout, /^flow: +counter \(version [0-9a-f]{12}\)$/m);
    assert.match(first.stdout, /^status: +succeeded$/m);
    assert.match(first.stdout, /^duration: +\d+(ms|\.?\d*s)$/m);
    assert.match(first.stdout, /^outputs:\n {2}count: 1$/m);
    assert.match(first.stderr, /^Running flow "counter" \(run [0-9a-z]{20}\)$/m);
    assert.match(first.stderr, /^\[report\] count is now 1$/m);

    const second = await run("run", example("counter"));
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^ {2}count: 2$/m);
    assert.match(second.stderr, /^\[report\] count is now 2$/m);
    assert.ok((await Deno.stat(join(home, "state.db"))).isFile, "the default sqlite store");

    const get = await run("state", "get", "count", "--scope", "flow", "--flow", "counter");
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, "2\n");
  });
});

Deno.test("flowstate run --input converts values per the flow's declared types", async () => {
  await withSandbox(async ({ json }) => {
    const run = await json<RunRecordJson>(["run", example("counter"), "--input", "by=3", "--json"]);
    assert.deepEqual(run.inputs, { by: 3 });
    assert.deepEqual(run.outputs, { count: 3 });
    const again = await json<RunRecordJson>(["run", example("counter"), "-i", "by=0.5", "--json"]);
    assert.deepEqual(again.outputs, { count: 3.5 });
    const fanOut = await json<RunRecordJson>(["run", example("fan-out"), "-i", "base=3", "--json"]);
    assert.deepEqual(fanOut.outputs, { sum: 15 });
  });
});

Deno.test("flowstate run --json prints only the run record; --quiet only the summary", async () => {
  await withSandbox(async ({ dir, run }) => {
    // A copy in the sandbox: the repository's own folder may hold a flowstate.yaml of the
    // reader's (docs/serving.md's example writes one), which a flow there would warn about.
    await Deno.copyFile(example("counter"), join(dir, "counter.flow.yaml"));
    const result = await run("run", "counter.flow.yaml", "--json");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "", "no logs with --json");
    assert.equal(result.stdout.trim().split("\n").length, 1, "one JSON document on one line");
    const record = JSON.parse(result.stdout) as RunRecordJson;
    assert.deepEqual(Object.keys(record), [
      "id",
      "flowId",
      "flowVersion",
      "status",
      "inputs",
      "outputs",
      "startedAt",
      "endedAt",
      "durationMs",
      "nodes",
      "error",
    ]);
    assert.match(record.id, /^[0-9a-z]{20}$/);
    assert.equal(record.flowId, "counter");
    assert.match(record.flowVersion, /^[0-9a-f]{64}$/);
    assert.equal(record.status, "succeeded");
    assert.deepEqual(record.inputs, { by: 1 });
    assert.deepEqual(record.outputs, { count: 1 });
    assert.equal(record.durationMs, record.endedAt! - record.startedAt);
    assert.deepEqual(record.nodes, {
      bump: { status: "succeeded", attempts: 1, output: 1 },
      report: { status: "succeeded", attempts: 1, output: "count is now 1" },
    });
    assert.equal(record.error, null);

    const quiet = await run("run", "counter.flow.yaml", "--quiet");
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, "");
    assert.match(quiet.stdout, /^status: +succeeded$/m);
    assert.match(quiet.stdout, /^ {2}count: 2$/m);
  });
});

Deno.test("flowstate run runs every example flow to success", async () => {
  await withSandbox(async ({ run, json }) => {
    const counter = await json<RunRecordJson>(["run", example("counter"), "--json"]);
    assert.deepEqual(counter.outputs, { count: 1 });

    const fanOut = await run("run", example("fan-out"));
    assert.equal(fanOut.code, 0, fanOut.stderr);
    assert.match(fanOut.stdout, /^ {2}sum: 120$/m);
    assert.match(fanOut.stderr, /^\[report\] sum 120 after 1 runs$/m);

    // Retries wait 50 ms, then 100 ms (exponential backoff).
    const retry = await run("run", example("retry"));
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, /^ {2}attempts: 3$/m);
    assert.match(retry.stderr, /^\[flaky\] attempt 1 failed: flaky: attempt 1 of 3 fails/m);
    assert.match(retry.stderr, /^\[flaky\] attempt 2 failed: flaky: attempt 2 of 3 fails/m);
    assert.match(retry.stderr, /^\[report\] flaky node succeeded on attempt 3$/m);

    const subFlow = await json<RunRecordJson>(["run", example("sub-flow"), "--json"]);
    assert.equal(subFlow.status, "succeeded");
    assert.deepEqual(subFlow.outputs, { greetings: ["hello, Ada", "hello, Grace"] });
    const children = await json<RunSummaryJson[]>(["runs", "ls", "--flow", "greet", "--json"]);
    assert.equal(children.length, 2);
    assert.ok(children.every((c) => c.parentRunId === subFlow.id));

    const before = await json<RunRecordJson>(["run", example("subscribe"), "--json"]);
    assert.deepEqual(before.outputs, {
      announcement: "nothing yet",
      announcements: 0,
      secret: null,
    });
    const publish = await json<RunRecordJson>(["run", example("publish"), "--json"]);
    assert.deepEqual(publish.outputs, { published: 1 });
    const after = await json<RunRecordJson>(["run", example("subscribe"), "--json"]);
    assert.deepEqual(after.outputs, {
      announcement: "hello from publish",
      announcements: 1,
      secret: null,
    });
    const published = await run("state", "ls", "--scope", "global");
    assert.equal(published.stdout, 'announcement\t"hello from publish"\nannouncements\t1\n');
  });
});

Deno.test("flowstate run rejects every kind of invalid flow with exit 2, all problems and no writes", async () => {
  await withSandbox(async (sandbox) => {
    const { run, write } = sandbox;
    const seed = await run("run", example("counter"), "--quiet");
    assert.equal(seed.code, 0, seed.stderr);
    const entries = await entryCount(sandbox);
    await Deno.copyFile(example("counter"), join(sandbox.dir, "counter.flow.yaml"));

    const cases: { name: string; yaml?: string; args?: string[]; errors: (string | RegExp)[] }[] = [
      {
        name: "malformed YAML",
        yaml: "id: bad\nnodes:\n  - id: a\n    type: log\n    with: { message: [unclosed\n",
        errors: [
          "malformed-yaml.flow.yaml:5:22: this [ opens a list that no ] closes: add the ] (a list that goes on over more lines needs them indented deeper than the key it belongs to)",
          "malformed-yaml.flow.yaml:5:11: this { opens a mapping that no } closes: add the } (a mapping that goes on over more lines needs them indented deeper than the key it belongs to)",
        ],
      },
      {
        name: "unknown field",
        yaml:
          "id: bad\ndescripton: typo\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
        errors: [
          'unknown-field.flow.yaml:2:1: descripton: unknown field (did you mean "description"?)',
        ],
      },
      {
        name: "unknown node type",
        yaml: "id: bad\nnodes:\n  - id: a\n    type: lgo\n    with: { message: hi }\n",
        errors: [
          /^unknown-node-type\.flow\.yaml:4:11: nodes\[0\]\.type: unknown node type "lgo" \(did you mean "log"\?\); use a built-in \(state\.get, .*\) or a module path like \.\/nodes\/thing\.ts$/,
        ],
      },
      {
        name: "other tools field names",
        yaml: "id: bad\nsteps:\n  - name: a\n    uses: log\n    depends_on: [b]\n    retries: 3\n",
        errors: [
          'other-tools-field-names.flow.yaml:1:1: missing required field "nodes"',
          'other-tools-field-names.flow.yaml:2:1: steps: unknown field (did you mean "nodes"?)',
        ],
      },
      {
        name: "other tools node field names",
        yaml: "id: bad\nnodes:\n  - name: a\n    uses: log\n    depends_on: [b]\n    retries: 3\n",
        errors: [
          'other-tools-node-field-names.flow.yaml:3:5: nodes[0]: missing required field "id"',
          'other-tools-node-field-names.flow.yaml:3:5: nodes[0]: missing required field "type"',
          'other-tools-node-field-names.flow.yaml:3:5: nodes[0].name: unknown field (did you mean "id"?)',
          'other-tools-node-field-names.flow.yaml:4:5: nodes[0].uses: unknown field (did you mean "type"?)',
          'other-tools-node-field-names.flow.yaml:5:5: nodes[0].depends_on: unknown field (did you mean "needs"?)',
          'other-tools-node-field-names.flow.yaml:6:5: nodes[0].retries: unknown field (did you mean "retry"?)',
        ],
      },
      {
        name: "inputs written short",
        yaml: "id: bad\ninputs:\n  name: string\n  n: { type: number, required: true }\n" +
          "nodes:\n  - { id: a, type: log, with: { message: hi } }\n",
        errors: [
          'inputs-written-short.flow.yaml:3:9: inputs.name: expected a mapping, got "string": declare it as name: { type: string } (add default: … to make it optional)',
          "inputs-written-short.flow.yaml:4:22: inputs.n.required: unknown field (an input without a default is required, one with a default is optional: leave required out)",
        ],
      },
      {
        name: "the config given as a flow",
        yaml: "# flowstate.yaml\nstores:\n  main: { plugin: memory }\nflows: flows/\n",
        errors: [
          "the-config-given-as-a-flow.flow.yaml:2:1: this is a Flowstate config (it has stores:), not a flow: run a flow file, one with id: and nodes: (flowstate init writes flows/hello.flow.yaml)",
        ],
      },
      {
        name: "missing colon",
        yaml: "id: bad\nnodes:\n  - id: a\n    type log\n    with: { message: hi }\n",
        errors: [
          "missing-colon.flow.yaml:4:5: `type log` has no colon after its key: write `type: log`",
        ],
      },
      {
        name: "no space after a colon",
        yaml: "id: bad\nnodes:\n  - id: a\n    type:log\n",
        errors: [
          "no-space-after-a-colon.flow.yaml:4:5: `type:log` has no space after its colon, so YAML reads it as one word: write `type: log`",
        ],
      },
      {
        name: "quote inside a string",
        yaml: 'id: bad\nnodes:\n  - id: a\n    type: log\n    if: "${{ run.id == "x" }}"\n' +
          "    with: { message: 'it's' }\n",
        errors: [
          `quote-inside-a-string.flow.yaml:5:25: the " before this ends the quoted string, so YAML cannot read what follows: to put a " inside the string, write it as \\" (or quote the whole value with ' instead)`,
          `quote-inside-a-string.flow.yaml:6:26: the ' before this ends the quoted string, so YAML cannot read what follows: to put a ' inside the string, write it twice, as '' (or quote the whole value with " instead)`,
        ],
      },
      {
        name: "if without a template",
        yaml:
          'id: bad\nnodes:\n  - id: a\n    type: log\n    if: "false"\n    with: { message: hi }\n',
        errors: [
          'if-without-a-template.flow.yaml:5:9: nodes[0].if: expected a template like "${{ inputs.enabled }}", got the text "false", which is always true: write if: "${{ false }}"',
        ],
      },
      {
        name: "needs cycle",
        yaml: "id: bad\nnodes:\n  - { id: a, type: log, needs: [b], with: { message: a } }\n" +
          "  - { id: b, type: log, needs: [a], with: { message: b } }\n",
        errors: ["needs-cycle.flow.yaml:4:33: nodes[1].needs[0]: dependency cycle: a -> b -> a"],
      },
      {
        name: "missing needs target",
        yaml: "id: bad\nnodes:\n  - id: a\n    type: log\n    needs: [nope]\n" +
          "    with: { message: a }\n",
        errors: ['missing-needs-target.flow.yaml:5:13: nodes[0].needs[0]: unknown node "nope"'],
      },
      {
        name: "bad template",
        yaml: 'id: bad\nnodes:\n  - id: a\n    type: log\n    with: { message: "${{ 1 + }}" }\n',
        errors: [
          'bad-template.flow.yaml:5:31: nodes[0].with.message: Cannot parse ${{ 1 + }}: expected a value after "+", found "}}"',
        ],
      },
      {
        name: "input of the wrong type",
        args: ["counter.flow.yaml", "--input", "by=abc"],
        errors: [
          'counter.flow.yaml:7:7: inputs.by: expected a number (decimal digits, like 42, -2.5 or 1e3), got "abc" (from --input by=abc)',
        ],
      },
      {
        name: "unknown input",
        args: ["counter.flow.yaml", "--input", "bz=1"],
        errors: [
          'counter.flow.yaml: inputs.bz: unknown input (did you mean "by"?) (from --input bz=1)',
        ],
      },
      {
        name: "missing module",
        yaml: `id: bad\nnodes:\n  - id: a\n    type: ${MISSING_NODE}\n`,
        errors: [
          `missing-module.flow.yaml:4:11: nodes[0].type: cannot load node module ${MISSING_NODE}: Module not found "${MISSING_NODE}"`,
        ],
      },
      {
        name: "module that is not a node",
        yaml: `id: bad\nnodes:\n  - id: a\n    type: ${NOT_A_NODE}\n`,
        errors: [
          `module-that-is-not-a-node.flow.yaml:4:11: nodes[0].type: module ${NOT_A_NODE} does not export a node type: its default export must be defineNode({ optionsSchema, run })`,
        ],
      },
      {
        name: "several problems",
        yaml: "id: bad\nnodes:\n  - { id: a, type: log, needs: [zz], with: { message: a } }\n" +
          "  - { id: b, type: log, with: { message: '${{ nodes.zz.output }}' } }\n" +
          "  - { id: c, tpye: log }\n",
        errors: [
          'several-problems.flow.yaml:3:33: nodes[0].needs[0]: unknown node "zz" (did you mean "a"?)',
          'several-problems.flow.yaml:4:42: nodes[1].with.message: node "b" reads nodes.zz, which is not a node of this flow (did you mean "a"?)',
          'several-problems.flow.yaml:5:5: nodes[2]: missing required field "type"',
          'several-problems.flow.yaml:5:14: nodes[2].tpye: unknown field (did you mean "type"?)',
        ],
      },
    ];
    for (const c of cases) {
      const file = c.name.toLowerCase().replaceAll(" ", "-") + ".flow.yaml";
      if (c.yaml !== undefined) await write(file, c.yaml);
      const result = await run("run", ...(c.args ?? [file]));
      assert.equal(result.code, 2, `${c.name}: exit code\n${result.stderr}`);
      assert.equal(result.stdout, "", c.name);
      const lines = result.stderr.trimEnd().split("\n");
      for (const line of lines) assert.match(line, /^error: /, `${c.name}: ${line}`);
      const messages = lines.map((line) => line.slice("error: ".length));
      for (const expected of c.errors) {
        assert.ok(
          messages.some((m) => typeof expected === "string" ? m === expected : expected.test(m)),
          `${c.name}: expected ${expected} in:\n${result.stderr}`,
        );
      }
      assert.equal(messages.length, c.errors.length, `${c.name}: every problem, once`);
      assertNoStackTrace(result.stderr);
      assert.equal(await entryCount(sandbox), entries, `${c.name}: nothing is written`);
    }
    const runs = await sandbox.json<RunSummaryJson[]>(["runs", "ls", "--json"]);
    assert.equal(runs.length, 1, "only the seed run is recorded");
  });
});

Deno.test("flowstate run with a malformed --input exits 2 before running", async () => {
  await withSandbox(async ({ run, home }) => {
    for (const input of ["by", "=3"]) {
      const result = await run("run", example("counter"), "--input", input);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, new RegExp(`^error: Invalid --input "${input}": .*name=value`));
    }
    const twice = await run("run", example("counter"), "-i", "by=1", "-i", "by=2");
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /input "by" is given twice/);
    await assert.rejects(Deno.stat(home), Deno.errors.NotFound, "nothing was written");
  });
});

Deno.test("flowstate run: a node that throws fails the run (exit 1) and earlier state is kept", async () => {
  await withSandbox(async ({ run, json, write }) => {
    await write(
      "crash.flow.yaml",
      `id: crash
nodes:
  - id: save
    type: state.set
    with: { key: before, value: kept }
  - id: explode
    type: ${EXPLODE_NODE}
    needs: [save]
    with: { message: kaboom }
  - id: after
    type: log
    needs: [explode]
    with: { message: never }
`,
    );
    const result = await run("run", "crash.flow.yaml");
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, /^status: +failed$/m);
    assert.match(result.stdout, /^error: +node "explode": kaboom$/m);
    assert.match(result.stderr, /^\[explode\] attempt 1 failed: kaboom$/m);
    assert.match(result.stderr, /^\[explode\] failed after 1 attempt$/m);
    assertNoStackTrace(result.stderr);

    const kept = await run("state", "get", "before", "--flow", "crash");
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(kept.stdout, '"kept"\n');

    const record = await json<RunRecordJson>(["run", "crash.flow.yaml", "--json"], 1);
    assert.equal(record.status, "failed");
    assert.deepEqual(record.error, { node: "explode", message: "kaboom" });
    assert.equal(record.outputs, null);
    assert.equal(record.nodes.save.status, "succeeded");
    assert.deepEqual(record.nodes.explode, { status: "failed", attempts: 1, error: "kaboom" });
    assert.equal(record.nodes.after.status, "skipped");
  });
});

Deno.test("flowstate validate checks flows without writing and reports every invalid one", async () => {
  await withSandbox(async ({ dir, run, write, home }) => {
    await write(
      "good.flow.yaml",
      "id: good\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    await write(
      "bad.flow.yaml",
      "id: bad\nnodes:\n  - { id: a, type: lgo }\n  - { id: b, type: log, needs: [c], with: { message: hi } }\n",
    );
    await write("not-a-node.flow.yaml", `id: nan\nnodes:\n  - { id: a, type: "${NOT_A_NODE}" }\n`);
    const ok = await run("validate", "good.flow.yaml", example("retry"), example("sub-flow"));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(
      ok.stdout,
      `ok good.flow.yaml\nok ${
        example("retry")
      }\n  flaky (./nodes/flaky.ts): worker, permissions: none; sub-flows: flow files only, within these permissions\nok ${
        example("sub-flow")
      }\n`,
    );

    const mixed = await run("validate", "good.flow.yaml", "bad.flow.yaml", "not-a-node.flow.yaml");
    assert.equal(mixed.code, 2);
    assert.equal(mixed.stdout, "ok good.flow.yaml\n");
    const lines = mixed.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 3, mixed.stderr);
    assert.match(
      lines[0],
      /^error: bad\.flow\.yaml:3:20: nodes\[0\]\.type: unknown node type "lgo" \(did you mean "log"\?\)/,
    );
    assert.equal(
      lines[1],
      'error: bad.flow.yaml:4:33: nodes[1].needs[0]: unknown node "c" (did you mean "a"?)',
    );
    assert.match(
      lines[2],
      /^error: not-a-node\.flow\.yaml:3:20: nodes\[0\]\.type: module .* does not export a node type/,
    );

    // Unknown node types are reported with every other problem of the file.
    const types = await run("validate", "types.flow.yaml");
    assert.equal(types.code, 2);
    assert.equal(
      types.stderr.trim(),
      `error: types.flow.yaml: Cannot load flow: no such file ${join(dir, "types.flow.yaml")}`,
    );
    await write(
      "types.flow.yaml",
      "id: t\nnodes:\n  - { id: a, type: lgo }\n  - { id: b, type: tranform }\n",
    );
    const unknownTypes = await run("validate", "types.flow.yaml");
    assert.equal(unknownTypes.code, 2);
    assert.match(
      unknownTypes.stderr,
      /^error: types\.flow\.yaml:3:20: nodes\[0\]\.type: unknown node type "lgo"/m,
    );
    assert.match(
      unknownTypes.stderr,
      /^error: types\.flow\.yaml:4:20: nodes\[1\]\.type: unknown node type "tranform" \(did you mean "transform"\?\)/m,
    );

    await assert.rejects(Deno.stat(home), Deno.errors.NotFound, "validate writes nothing");
  });
});

Deno.test("flowstate runs ls lists runs newest first and filters by flow, status, time and limit", async () => {
  await withSandbox(async ({ run, json, write }) => {
    await write(
      "fails.flow.yaml",
      "id: fails\nnodes:\n  - { id: no, type: fail, with: { message: nope } }\n",
    );
    const ids: string[] = [];
    for (const file of [example("counter"), "fails.flow.yaml", example("counter")]) {
      const result = await run("run", file, "--json");
      ids.push(JSON.parse(result.stdout).id);
    }
    const all = await json<RunSummaryJson[]>(["runs", "ls", "--json"]);
    assert.deepEqual(all.map((r) => r.id), [...ids].reverse());
    assert.deepEqual(Object.keys(all[0]), [
      "id",
      "flowId",
      "flowVersion",
      "status",
      "startedAt",
      "endedAt",
      "durationMs",
      "error",
    ]);
    assert.deepEqual(all[1].error, { node: "no", message: "nope" });

    const counter = await json<RunSummaryJson[]>(["runs", "ls", "--flow", "counter", "--json"]);
    assert.deepEqual(counter.map((r) => r.id), [ids[2], ids[0]]);
    const failed = await json<RunSummaryJson[]>(["runs", "ls", "--status", "failed", "--json"]);
    assert.deepEqual(failed.map((r) => r.id), [ids[1]]);
    const both = await json<RunSummaryJson[]>([
      "runs",
      "ls",
      "--flow",
      "counter",
      "--status",
      "failed",
      "--json",
    ]);
    assert.deepEqual(both, []);
    const limited = await json<RunSummaryJson[]>(["runs", "ls", "--limit", "2", "--json"]);
    assert.deepEqual(limited.map((r) => r.id), [ids[2], ids[1]]);

    assert.equal((await json<unknown[]>(["runs", "ls", "--since", "1h", "--json"])).length, 3);
    assert.equal((await json<unknown[]>(["runs", "ls", "--until", "1h", "--json"])).length, 0);
    assert.equal(
      (await json<unknown[]>(["runs", "ls", "--since", "2000-01-01", "--json"])).length,
      3,
    );
    assert.equal(
      (await json<unknown[]>(["runs", "ls", "--until", "2000-01-01T00:00:00Z", "--json"])).length,
      0,
    );
    const middle = all[1].startedAt;
    const since = await json<RunSummaryJson[]>([
      "runs",
      "ls",
      "--since",
      new Date(middle).toISOString(),
      "--json",
    ]);
    assert.deepEqual(since.map((r) => r.id), [ids[2], ids[1]], "--since is inclusive");

    const bad = await run("runs", "ls", "--since", "yesterday");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: Invalid --since "yesterday": expected an ISO date/);
    const badStatus = await run("runs", "ls", "--status", "done");
    assert.equal(badStatus.code, 2);
    assert.match(
      badStatus.stderr,
      /Allowed choices are queued, running, succeeded, failed, cancelled/,
    );

    const table = await run("runs", "ls");
    assert.equal(table.code, 0, table.stderr);
    const rows = table.stdout.trimEnd().split("\n");
    assert.match(rows[0], /^ID\s+FLOW\s+STATUS\s+STARTED\s+DURATION$/);
    assert.match(
      rows[2],
      new RegExp(
        `^${ids[1]}\\s+fails\\s+failed\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\s+\\d+ms$`,
      ),
    );
  });
});

Deno.test("flowstate runs show prints a run with a timeline per node, and exits 1 for an unknown id", async () => {
  await withSandbox(async ({ run, json }) => {
    const record = await json<RunRecordJson>(["run", example("retry"), "--json"]);
    const shown = await run("runs", "show", record.id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`^run: +${record.id}$`, "m"));
    assert.match(shown.stdout, /^status: +succeeded$/m);
    assert.match(shown.stdout, /^outputs: +\{"attempts":3\}$/m);
    assert.match(shown.stdout, /^ {2}flaky: succeeded, 3 attempts, \d+ms$/m);
    assert.match(shown.stdout, /^ {4}\+\d+ms +attempt 1 failed: flaky: attempt 1 of 3 fails/m);
    assert.match(shown.stdout, /^ {4}\+\d+ms +log: succeeded on attempt 3$/m);
    assert.match(shown.stdout, /^ {2}report: succeeded, 1 attempt, \d+ms$/m);
    const flaky = shown.stdout.indexOf("  flaky:");
    assert.ok(flaky !== -1 && flaky < shown.stdout.indexOf("  report:"), "nodes in run order");

    const full = await json<{ run: RunRecordJson; events: { type: string; node?: string }[] }>([
      "runs",
      "show",
      record.id,
      "--json",
    ]);
    assert.deepEqual(Object.keys(full), ["run", "events"]);
    assert.deepEqual(full.run, record);
    assert.equal(full.events[0].type, "run.start");
    assert.equal(full.events.at(-1)!.type, "run.end");
    assert.equal(
      full.events.filter((e) => e.type === "node.attempt" && e.node === "flaky").length,
      5,
      "three attempts, two of them failed",
    );

    const unknown = await run("runs", "show", "0000000000zzzzzzzzzz");
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout, "");
    assert.equal(
      unknown.stderr.trim(),
      'error: Run 0000000000zzzzzzzzzz not found in store "default" (list runs with: flowstate runs ls)',
    );
    // Not found with --json: null on stdout, exit 1 (the rule of every lookup).
    const unknownJson = await run("runs", "show", "0000000000zzzzzzzzzz", "--json");
    assert.equal(unknownJson.code, 1);
    assert.equal(unknownJson.stdout, "null\n");
    const malformed = await run("runs", "show", "latest");
    assert.equal(malformed.code, 1);
    assert.match(
      malformed.stderr,
      /^error: Run "latest" not found: run ids are 20 lowercase letters/,
    );
    assert.equal((await run("runs", "show", "latest", "--json")).stdout, "null\n");
  });
});

Deno.test("flowstate flows ls and flows versions show versions with their lineage", async () => {
  await withSandbox(async ({ run, json, write }) => {
    const flow = (message: string) =>
      `id: edited\nnodes:\n  - { id: say, type: log, with: { message: ${message} } }\n`;
    await write("edited.flow.yaml", flow("first"));
    const first = await json<RunRecordJson>(["run", "edited.flow.yaml", "--json"]);
    await write("edited.flow.yaml", flow("first") + "# a comment does not make a version\n");
    const same = await json<RunRecordJson>(["run", "edited.flow.yaml", "--json"]);
    assert.equal(same.flowVersion, first.flowVersion);
    await write("edited.flow.yaml", flow("second"));
    const second = await json<RunRecordJson>(["run", "edited.flow.yaml", "--json"]);
    assert.notEqual(second.flowVersion, first.flowVersion);
    await json(["run", example("counter"), "--json"]);

    const versions = await json<Record<string, unknown>[]>([
      "flows",
      "versions",
      "edited",
      "--json",
    ]);
    assert.equal(versions.length, 2);
    assert.deepEqual(Object.keys(versions[0]), ["flowId", "hash", "parent", "seq", "createdAt"]);
    assert.equal(versions[0].hash, second.flowVersion);
    assert.equal(versions[0].parent, first.flowVersion);
    assert.equal(versions[0].seq, 2);
    assert.equal(versions[1].hash, first.flowVersion);
    assert.equal(versions[1].parent, null);
    assert.equal(versions[1].seq, 1);

    const table = await run("flows", "versions", "edited");
    assert.equal(table.code, 0, table.stderr);
    const rows = table.stdout.trimEnd().split("\n");
    assert.match(rows[0], /^VERSION\s+HASH\s+PARENT\s+CREATED$/);
    assert.match(
      rows[1],
      new RegExp(
        `^2\\s+${second.flowVersion.slice(0, 12)}\\s+${first.flowVersion.slice(0, 12)}\\s+\\d{4}-`,
      ),
    );
    assert.match(rows[2], new RegExp(`^1\\s+${first.flowVersion.slice(0, 12)}\\s+-\\s+\\d{4}-`));

    const flows = await json<Record<string, unknown>[]>(["flows", "ls", "--json"]);
    assert.deepEqual(flows.map((f) => f.id), ["counter", "edited"]);
    assert.deepEqual(Object.keys(flows[1]), [
      "id",
      "head",
      "versions",
      "prunedVersions",
      "lastRunAt",
      "lastStatus",
      "description",
      "lastRunArchive",
    ]);
    assert.equal(flows[1].lastRunArchive, null, "its last run is recorded");
    assert.equal(flows[1].head, second.flowVersion);
    assert.equal(flows[1].versions, 2);
    assert.equal(flows[1].lastRunAt, second.startedAt);
    assert.equal(flows[1].lastStatus, "succeeded");
    assert.equal(flows[0].description, "counts its runs");
    const list = await run("flows", "ls");
    assert.match(list.stdout, /^ID\s+HEAD\s+VERSIONS\s+LAST RUN\s+LAST STATUS$/m);
    assert.match(
      list.stdout,
      /^edited\s+[0-9a-f]{12}\s+2\s+\d{4}-\d\d-\d\d [\d:]{8} UTC\s+succeeded$/m,
    );

    const unknown = await run("flows", "versions", "edted");
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /^error: Flow "edted" has no recorded versions \(did you mean "edited"\?\)/,
    );
    const unknownJson = await run("flows", "versions", "edted", "--json");
    assert.equal(unknownJson.code, 1);
    assert.equal(unknownJson.stdout, "null\n");
  });
});

Deno.test("flowstate jobs run retention deletes unused old versions; runs, flows and metrics show what is left", async () => {
  await withSandbox(async ({ run, json, write }) => {
    const flow = (type: string, message: string) =>
      `id: edited\nnodes:\n  - { id: say, type: ${type}, with: { message: ${message} } }\n`;
    // Three versions: the first fails (its run is kept 90 days), the second succeeds (its run
    // goes with maxAge=0s, and so does its version), the third is the head.
    await write("edited.flow.yaml", flow("fail", "one"));
    const failed = await json<RunRecordJson>(["run", "edited.flow.yaml", "--json"], 1);
    await write("edited.flow.yaml", flow("log", "two"));
    const second = await json<RunRecordJson>(["run", "edited.flow.yaml", "--json"]);
    await write("edited.flow.yaml", flow("log", "three"));
    const third = await json<RunRecordJson>(["run", "edited.flow.yaml", "--json"]);

    const job = await json<{ status: string; outputs: Record<string, number> }>([
      "jobs",
      "run",
      "retention",
      "--option",
      "maxAge=0s",
      "--json",
      "--quiet",
    ]);
    assert.equal(job.status, "succeeded");
    assert.equal(job.outputs.deleted, 2);
    assert.equal(job.outputs.versionsDeleted, 1);

    const versions = await json<{ hash: string }[]>(["flows", "versions", "edited", "--json"]);
    assert.deepEqual(versions.map((v) => v.hash), [third.flowVersion, failed.flowVersion]);
    const table = await run("flows", "versions", "edited");
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stderr, /^1 older versions were deleted by the retention job/);
    // The run left still shows its version, which is still there.
    const shown = await run("runs", "show", failed.id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`version ${failed.flowVersion.slice(0, 12)}`));
    const version = await run("flows", "versions", "edited", "--json");
    assert.ok(version.stdout.includes(failed.flowVersion));

    const flows = await json<{ versions: number; prunedVersions: number }[]>([
      "flows",
      "ls",
      "--json",
    ]);
    assert.deepEqual([flows[0].versions, flows[0].prunedVersions], [3, 1]);
    const list = await run("flows", "ls");
    assert.match(list.stdout, /^edited\s+[0-9a-f]{12}\s+2 \(1 pruned\)\s+/m);

    // The total is unchanged; the versions left and "pruned" add up to it.
    const metrics = await json<{ version: string; count: number }[]>([
      "metrics",
      "edited",
      "--json",
    ]);
    assert.deepEqual(metrics.map((m) => [m.version, m.count]), [
      ["*", 3],
      [third.flowVersion, 1],
      [failed.flowVersion, 1],
      ["*pruned", 1],
    ]);
    assert.equal(metrics.some((m) => m.version === second.flowVersion), false);
    const shownMetrics = await run("metrics", "edited");
    assert.match(shownMetrics.stdout, /^edited\s+pruned\s+1\s+1\s+0\s/m);
  });
});

Deno.test("flowstate metrics counts runs per flow with p50, p95 and mean durations", async () => {
  await withSandbox(async ({ run, json, write }) => {
    const none = await json<unknown[]>(["metrics", "--json"]);
    assert.deepEqual(none, []);
    await write("fails.flow.yaml", "id: fails\nnodes:\n  - { id: no, type: fail }\n");
    const durations: number[] = [];
    for (const file of [example("counter"), example("counter"), "fails.flow.yaml"]) {
      const result = await run("run", file, "--json");
      durations.push(JSON.parse(result.stdout).durationMs);
    }
    const rows = await json<Record<string, unknown>[]>(["metrics", "--json"]);
    assert.deepEqual(rows.map((r) => [r.flowId, r.version, r.count, r.succeeded, r.failed]), [
      ["counter", "*", 2, 2, 0],
      ["fails", "*", 1, 0, 1],
    ]);
    assert.deepEqual(Object.keys(rows[0]), [
      "flowId",
      "version",
      "count",
      "succeeded",
      "failed",
      "cancelled",
      "timedOut",
      "p50DurationMs",
      "p95DurationMs",
      "meanDurationMs",
      "minDurationMs",
      "maxDurationMs",
      "lastRunAt",
      "lastStatus",
    ]);
    assert.equal(rows[0].meanDurationMs, (durations[0] + durations[1]) / 2);
    assert.equal(rows[0].minDurationMs, Math.min(durations[0], durations[1]));
    assert.equal(rows[0].maxDurationMs, Math.max(durations[0], durations[1]));
    assert.equal(typeof rows[0].p50DurationMs, "number");
    assert.equal(typeof rows[0].p95DurationMs, "number");
    assert.equal(rows[1].lastStatus, "failed");

    const one = await json<Record<string, unknown>[]>(["metrics", "counter", "--json"]);
    assert.deepEqual(one.map((r) => r.version === "*" ? "*" : "hash"), ["*", "hash"]);
    assert.equal(one[1].count, 2);

    const table = await run("metrics");
    assert.equal(table.code, 0, table.stderr);
    assert.match(
      table.stdout,
      /^FLOW\s+RUNS\s+SUCCEEDED\s+FAILED\s+CANCELLED\s+TIMED-OUT\s+P50\s+P95\s+MEAN$/m,
    );
    assert.match(table.stdout, /^counter\s+2\s+2\s+0\s+0\s+0\s+\d+ms\s+\d+ms\s+\d+ms$/m);
    assert.match(table.stdout, /^fails\s+1\s+0\s+1\s+0\s+0\s/m);

    const unknown = await run("metrics", "countr");
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /^error: Flow "countr" has no recorded runs \(did you mean "counter"\?\)/,
    );
    const unknownJson = await run("metrics", "countr", "--json");
    assert.equal(unknownJson.code, 1);
    assert.equal(unknownJson.stdout, "null\n");
  });
});

Deno.test("flowstate schema prints the flow JSON Schema with the built-in node types", async () => {
  await withSandbox(async ({ run }) => {
    const result = await run("schema");
    assert.equal(result.code, 0, result.stderr);
    const schema = JSON.parse(result.stdout);
    assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
    assert.equal(schema.type, "object");
    assert.ok(schema.required.includes("nodes"));
    const text = JSON.stringify(schema);
    for (const type of ["state.increment", "log", "delay", "flow"]) {
      assert.ok(text.includes(JSON.stringify(type)), `node type ${type} is listed`);
    }
  });
});

Deno.test("flowstate state --scope reads and writes keys relative to a scope", async () => {
  await withSandbox(async ({ run, json }) => {
    await json(["run", example("counter"), "--json"]);
    await json(["run", example("fan-out"), "--json"]);
    const flowState = await json<{ key: string[]; value: unknown }[]>([
      "state",
      "ls",
      "--scope",
      "flow",
      "--flow",
      "counter",
      "--json",
    ]);
    assert.deepEqual(flowState.map((e) => [e.key, e.value]), [[["count"], 1]]);
    const implied = await run("state", "ls", "--flow", "counter");
    assert.equal(implied.stdout, "count\t1\n");

    const visits = await run("state", "get", "visits", "--flow", "fan-out", "--node", "visits");
    assert.equal(visits.code, 0, visits.stderr);
    assert.equal(visits.stdout, "1\n");
    const unscoped = await run("state", "get", "node/fan-out/visits/visits");
    assert.equal(unscoped.stdout, "1\n", "the same entry, by its full key");

    const set = await run("state", "set", "count", "41", "--scope", "flow", "--flow", "counter");
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout.trim(), 'Set count in flow scope of "counter" (store "default")');
    const next = await json<RunRecordJson>(["run", example("counter"), "--json"]);
    assert.deepEqual(next.outputs, { count: 42 });
    const entry = await json<{ key: string[]; value: unknown }>([
      "state",
      "get",
      "count",
      "--flow",
      "counter",
      "--json",
    ]);
    assert.deepEqual([entry.key, entry.value], [["count"], 42]);

    assert.equal((await run("state", "set", "motd", '"hi"', "--scope", "global")).code, 0);
    assert.equal((await run("state", "get", "global/motd")).stdout, '"hi"\n');
    const removed = await json(["state", "rm", "motd", "--scope", "global", "--json"]);
    assert.deepEqual(removed, { key: ["motd"], deleted: true });

    const misuses: [string[], string][] = [
      [["--scope", "flow"], "error: --scope flow needs --flow (the flow id)"],
      [["--scope", "node", "--flow", "x"], "error: --scope node needs --node (the node id)"],
      [["--node", "x"], "error: --node needs --flow (the flow id)"],
      [["--scope", "global", "--flow", "x"], "error: --flow does not apply to --scope global"],
      [
        ["--scope", "flow", "--flow", "x", "--node", "y"],
        "error: --node does not apply to --scope flow",
      ],
    ];
    for (const [args, message] of misuses) {
      const result = await run("state", "ls", ...args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.trim(), message);
    }
    const badScope = await run("state", "ls", "--scope", "flows");
    assert.equal(badScope.code, 2);
    assert.match(badScope.stderr, /Allowed choices are node, flow, global/);
  });
});

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
  Deno.test(`flowstate run: ${signal} cancels the run, records it as cancelled and exits ${code}`, async () => {
    await withSandbox(async ({ command, json, write }) => {
      await write(
        "slow.flow.yaml",
        `id: slow
nodes:
  - { id: hello, type: log, with: { message: waiting } }
  - { id: wait, type: delay, needs: [hello], with: { for: 60s } }
`,
      );
      const child = command("run", "slow.flow.yaml").spawn();
      const stdout = new Response(child.stdout).text();
      let stderr = "";
      using _hang = hangGuard(child, () => stderr);
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      while (!stderr.includes("[hello] waiting\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += value;
      }
      assert.match(stderr, /\[hello\] waiting\n/, stderr);
      child.kill(signal);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += value;
      }
      const status = await exitOf(child);
      assert.equal(status.code, code, stderr);
      assert.match(stderr, new RegExp(`Cancelling the run \\(${signal}`));
      assert.match(await stdout, /^status: +cancelled$/m);

      const runs = await json<RunSummaryJson[]>(["runs", "ls", "--json"]);
      assert.equal(runs.length, 1);
      assert.equal(runs[0].flowId, "slow");
      assert.equal(runs[0].status, "cancelled", "no run is left running");
      const shown = await json<{ run: RunRecordJson }>(["runs", "show", runs[0].id, "--json"]);
      assert.equal(shown.run.nodes.hello.status, "succeeded");
      assert.equal(shown.run.nodes.wait.status, "cancelled");
    });
  });
}

Deno.test("flowstate run and runs show escape terminal control characters from logs and errors", async () => {
  await withSandbox(async ({ run, json, write }) => {
    // A node's log and failure carry an escape sequence, a bell and a bidi override.
    await write(
      "noisy.flow.yaml",
      `id: noisy
nodes:
  - { id: say, type: log, with: { message: "\\e[2Jcleared\\a and \\u202Eevil" } }
  - { id: boom, type: fail, needs: [say], with: { message: "\\e[31mred\\e[0m" } }
`,
    );
    // deno-lint-ignore no-control-regex
    const unprintable = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;
    const result = await run("run", "noisy.flow.yaml");
    assert.equal(result.code, 1, result.stderr);
    assert.doesNotMatch(result.stderr, unprintable, "run's stderr");
    assert.doesNotMatch(result.stdout, unprintable, "run's stdout");
    assert.match(result.stderr, /\[say\] \\x1b\[2Jcleared\\x07 and \\u202eevil/);
    assert.match(result.stdout, /error: +node "boom": \\x1b\[31mred\\x1b\[0m/);

    const [listed] = await json<RunSummaryJson[]>(["runs", "ls", "--json"]);
    const shown = await run("runs", "show", listed.id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.doesNotMatch(shown.stdout, unprintable, "runs show");
    assert.match(shown.stdout, /log: \\x1b\[2Jcleared/);
    // JSON output stays exact: the escapes are for terminals only.
    const exact = await json<{ run: RunRecordJson }>(["runs", "show", listed.id, "--json"]);
    assert.equal(exact.run.nodes.boom.error, "\u001b[31mred\u001b[0m");
  });
});

Deno.test("flowstate runs ls and runs show survive a malformed run record", async () => {
  await withSandbox(async ({ run, json }) => {
    for (let i = 0; i < 3; i++) {
      assert.equal((await run("run", join(ROOT, "examples/counter.flow.yaml"))).code, 0);
    }
    const runs = await json<RunSummaryJson[]>(["runs", "ls", "--json"]);
    assert.equal(runs.length, 3);
    const bad = runs[1].id;
    // A record damaged by hand: it takes --force now (Flowstate's own keys are refused without).
    const wrote = await run(
      "state",
      "set",
      JSON.stringify(["flowstate", "runs", bad]),
      "{}",
      "--force",
    );
    assert.equal(wrote.code, 0, wrote.stderr);

    const listed = await run("runs", "ls");
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(runs[0].id));
    assert.match(listed.stdout, new RegExp(runs[2].id));
    assert.doesNotMatch(listed.stdout, new RegExp(bad));
    assert.match(listed.stderr, new RegExp(`warning: skipped 1 malformed run record: ${bad}`));
    assert.doesNotMatch(listed.stderr, /Cannot read properties/);

    const shown = await run("runs", "show", bad);
    assert.equal(shown.code, 1);
    assert.match(
      shown.stderr,
      new RegExp(`Run ${bad} is recorded but malformed \\(id is not a string\\)`),
    );
    assert.doesNotMatch(shown.stderr, /Cannot read properties|--debug/);
    assert.equal((await run("runs", "show", runs[0].id)).code, 0, "the others still show");

    // A record whose node outcomes are of a newer format: said so, with the same hint.
    const newer = runs[2].id;
    const raw = await json<Record<string, unknown>>([
      "state",
      "get",
      JSON.stringify(["flowstate", "runs", newer]),
      "--json",
    ]);
    const record = (raw.value ?? raw) as Record<string, unknown>;
    assert.equal(record.nodes, null, "stored compact");
    const rewrote = await run(
      "state",
      "set",
      JSON.stringify(["flowstate", "runs", newer]),
      JSON.stringify({ ...record, "@nodes": { format: 3 } }),
      "--force",
    );
    assert.equal(rewrote.code, 0, rewrote.stderr);
    const unreadable = await run("runs", "show", newer);
    assert.equal(unreadable.code, 1);
    assert.match(
      unreadable.stderr,
      new RegExp(
        `Run ${newer} is recorded but its node outcomes cannot be read \\(format 3, written by a ` +
          `newer Flowstate: read it with that version or later\\), so it cannot be shown; see ` +
          `its raw entry with: flowstate state get flowstate/runs/${newer}`,
      ),
    );
    assert.doesNotMatch(unreadable.stderr, /--debug/);
  });
});

/** Read `reader` into `text` until `done(text)` holds or the stream ends. */
async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  text: string,
  done: (text: string) => boolean,
): Promise<string> {
  while (!done(text)) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    text += value;
  }
  return text;
}

for (const how of ["SIGINT", "timeout"] as const) {
  Deno.test(`flowstate run: a flow with parallel flow nodes ended by ${how} leaves no sub-run running`, async () => {
    await withSandbox(async ({ command, json, write }) => {
      await write(
        "slow.flow.yaml",
        `id: slow
inputs: { n: { type: number } }
nodes:
  - { id: hello, type: log, with: { message: "waiting \${{ inputs.n }}" } }
  - { id: wait, type: delay, needs: [hello], with: { for: 60s } }
`,
      );
      await write(
        "parent.flow.yaml",
        `id: parent
${how === "timeout" ? "timeout: 1s\n" : ""}nodes:
  - { id: a, type: flow, with: { flow: ./slow.flow.yaml, input: { n: 1 } } }
  - { id: b, type: flow, with: { flow: ./slow.flow.yaml, input: { n: 2 } } }
  - { id: c, type: flow, with: { flow: ./slow.flow.yaml, input: { n: 3 } } }
`,
      );
      const child = command("run", "parent.flow.yaml").spawn();
      using _hang = hangGuard(child);
      const stdout = new Response(child.stdout).text();
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      const started = (text: string) => [1, 2, 3].every((n) => text.includes(`waiting ${n}`));
      let stderr = await readUntil(reader, "", started);
      assert.ok(started(stderr), stderr);
      if (how === "SIGINT") child.kill("SIGINT");
      stderr = await readUntil(reader, stderr, () => false);
      const status = await exitOf(child);
      assert.equal(status.code, how === "SIGINT" ? 130 : 1, stderr);
      assert.match(await stdout, how === "SIGINT" ? /cancelled/ : /timed-out/);

      const runs = await json<RunSummaryJson[]>(["runs", "ls", "--json"]);
      assert.equal(runs.length, 4, JSON.stringify(runs));
      const parent = runs.find((r) => r.flowId === "parent")!;
      assert.equal(parent.status, how === "SIGINT" ? "cancelled" : "timed-out");
      for (const sub of runs.filter((r) => r.flowId === "slow")) {
        assert.equal(sub.parentRunId, parent.id);
        assert.equal(sub.status, "cancelled", `sub-run ${sub.id} is not left running`);
      }
    });
  });
}

Deno.test("flowstate run: a flow fanning out past runs.maxSubRuns fails, naming the limit and how to raise it", async () => {
  await withSandbox(async ({ run, json, write }) => {
    await write("flowstate.yaml", "runs: { maxSubRuns: 3 }\n");
    // Each run starts two more of itself: from left=2, 2 + 4 sub-runs wanted, 3 allowed.
    await write("tree.flow.yaml", await Deno.readTextFile(TREE_FLOW));
    const result = await run("run", "tree.flow.yaml", "--input", "left=2");
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, /^status: +failed$/m);
    assert.match(
      result.stdout,
      /over the limit of 3 sub-runs per root run .*raise it with "runs: \{ maxSubRuns: N \}" in the config/,
    );
    const runs = await json<RunSummaryJson[]>(["runs", "ls", "--json"]);
    assert.equal(runs.length, 4, "the root run and 3 sub-runs");
    for (const r of runs) assert.notEqual(r.status, "running");
  });
});
