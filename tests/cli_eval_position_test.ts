/**
 * A template that fails as it is evaluated (in a `with`, an `if`, a
 * `forEach`, the flow's `outputs`, a `when:` node, a sub-flow) fails its
 * node with the place of the template in the flow file, as validation
 * errors give it: `file:line:column: path: message`, the column at the
 * offending part of the template, whatever the string's style (plain,
 * quoted, block). Through the CLI: `run` (progress and summary), `runs show`
 * (text and JSON), and a second run read from the flow disk cache.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliArgv, type Result, type Sandbox, withSandbox } from "./_cli_sandbox.ts";
import { QUEUE_BY_FAILS } from "./_queue_flow.ts";

/** `line:column` of the first `needle` in `text` (which holds it once). */
function at(text: string, needle: string): string {
  const i = text.indexOf(needle);
  assert.ok(i >= 0 && text.indexOf(needle, i + 1) < 0, `${needle} is in the flow once`);
  const before = text.slice(0, i).split("\n");
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

const WITH = `id: late
inputs:
  n: { type: any, default: "3" }
  z: { type: number, default: 0 }
  s: { type: string, default: soon }
nodes:
  - id: plain
    type: log
    continueOnError: true
    with:
      message: value \${{ round(inputs.n) }}
  - id: quoted
    type: log
    continueOnError: true
    with: { message: "say \\"\${{ inputs.n }}\\" then \${{ parseDate(inputs.s) }}" }
  - id: listed
    type: transform
    continueOnError: true
    with:
      value: ["\${{ 1 }}", "\${{ 2 }} \${{ fromJson(inputs.n + '}') }}"]
  - id: block
    type: log
    needs: [plain, quoted, listed]
    with:
      message: |
        first \${{ inputs.n }}
        then \${{ 10 / inputs.z }}
  - id: alert
    type: log
    when: on_failure
    with: { message: "failed: \${{ fromJson(run.failed[0].error) }}" }
`;

const ROUND = "round() takes a number as value, got string";
const PARSE_DATE = 'parseDate() cannot read "soon" as a date';

/** What the nodes of {@linkcode WITH} fail with, in `file`. */
function withErrors(file: string): Record<string, string> {
  return {
    plain: `${file}:${
      at(WITH, "round(")
    }: nodes[0].with.message: Cannot evaluate \${{ round(inputs.n) }}: ${ROUND}`,
    quoted: `${file}:${
      at(WITH, "parseDate(")
    }: nodes[1].with.message: Cannot evaluate \${{ parseDate(inputs.s) }}: ${PARSE_DATE}`,
    listed: `${file}:${
      at(WITH, "fromJson(inputs")
    }: nodes[2].with.value[1]: Cannot evaluate \${{ fromJson(inputs.n + '}') }}: fromJson() got text that is not JSON`,
    block: `${file}:${
      at(WITH, "/ inputs.z")
    }: nodes[3].with.message: Cannot evaluate \${{ 10 / inputs.z }}: 10 / 0 is Infinity, which is not a finite number`,
    alert: `${file}:${
      at(WITH, "fromJson(run")
    }: nodes[4].with.message: Cannot evaluate \${{ fromJson(run.failed[0].error) }}: fromJson() got text that is not JSON`,
  };
}

/** Each of `expected` starts the error of its node in `nodes`. */
function assertErrors(
  nodes: Record<string, { error?: string }>,
  expected: Record<string, string>,
): void {
  for (const [id, start] of Object.entries(expected)) {
    const error = nodes[id]?.error ?? "";
    assert.ok(error.startsWith(start), `${id}:\n  got      ${error}\n  expected ${start}…`);
  }
}

async function write(sandbox: Sandbox, name: string, text: string): Promise<void> {
  await Deno.mkdir(join(sandbox.dir, name, ".."), { recursive: true });
  await Deno.writeTextFile(join(sandbox.dir, name), text);
}

function runIdOf(result: Result): string {
  const id = /^run: +(\S+)$/m.exec(result.stdout)?.[1];
  assert.ok(id, result.stdout);
  return id;
}

Deno.test("cli: a with template that fails when run is placed at file:line:column in progress, summary and runs show", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, "late.flow.yaml", WITH);
    const expected = withErrors("late.flow.yaml");
    // The column of a template in a plain scalar, written out.
    assert.match(expected.plain, /^late\.flow\.yaml:11:26: nodes\[0\]\.with\.message: /);

    const result = await sandbox.run("run", "late.flow.yaml");
    assert.equal(result.code, 1, result.stderr);
    assert.ok(
      result.stderr.includes(`[plain] failed after 1 attempt: ${expected.plain}\n`),
      result.stderr,
    );
    assert.ok(
      result.stderr.includes(`[block] failed after 1 attempt: ${expected.block}\n`),
      result.stderr,
    );
    assert.ok(result.stdout.includes(`error:    node "block": ${expected.block}\n`), result.stdout);

    const id = runIdOf(result);
    const show = await sandbox.run("runs", "show", id);
    assert.equal(show.code, 0, show.stderr);
    for (const error of Object.values(expected)) {
      assert.ok(show.stdout.includes(`failed: ${error}`), `${error}\n${show.stdout}`);
    }
    const json = JSON.parse((await sandbox.run("runs", "show", id, "--json")).stdout);
    assertErrors(json.run.nodes, expected);
    assert.equal(json.run.error.node, "block");
    assert.equal(json.run.error.message, expected.block);
    const ended = json.events.filter((e: { type: string }) => e.type === "node.end");
    assertErrors(Object.fromEntries(ended.map((e: { node: string }) => [e.node, e])), expected);
  });
});

Deno.test("cli: an if or forEach that fails when run is placed at its value", async () => {
  await withSandbox(async (sandbox) => {
    const flow = `id: gates
inputs:
  z: { type: number, default: 0 }
  list: { type: any, default: "abc" }
nodes:
  - id: check
    type: log
    continueOnError: true
    if: "\${{ 10 / inputs.z > 1 }}"
    with: { message: hi }
  - id: notList
    type: log
    continueOnError: true
    forEach:
      "\${{ inputs.list }}"
    with: { message: "\${{ item }}" }
  - id: items
    type: log
    continueOnError: true
    forEach: { concurrency: 2, items: "\${{ inputs.list }} " }
    with: { message: "\${{ item }}" }
  - id: badJson
    type: log
    forEach: >-
      \${{ fromJson(inputs.list) }}
    with: { message: "\${{ item }}" }
`;
    await write(sandbox, "gates.flow.yaml", flow);
    const result = await sandbox.run("run", "gates.flow.yaml", "--json");
    assert.equal(result.code, 1, result.stderr);
    const record = JSON.parse(result.stdout);
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(record.nodes as Record<string, { error?: string }>).map((
          [id, n],
        ) => [id, n.error]),
      ),
      {
        check: `gates.flow.yaml:${
          at(flow, "/ inputs.z")
        }: nodes[0].if: Cannot evaluate \${{ 10 / inputs.z > 1 }}: 10 / 0 is Infinity, which is not a finite number`,
        notList: `gates.flow.yaml:${
          at(flow, '"${{ inputs.list }}"')
        }: nodes[1].forEach: expected a list, got "abc"`,
        items: `gates.flow.yaml:${
          at(flow, '"${{ inputs.list }} "')
        }: nodes[2].forEach.items: expected a list, got "abc "`,
        badJson: `gates.flow.yaml:${
          at(flow, "fromJson(")
        }: nodes[3].forEach: Cannot evaluate \${{ fromJson(inputs.list) }}: fromJson() got text that is not JSON: Unexpected token 'a', "abc" is not valid JSON`,
      },
    );
  });
});

Deno.test("cli: outputs that fail when the run ends are placed at the output", async () => {
  await withSandbox(async (sandbox) => {
    const flow = `id: out
inputs:
  n: { type: any, default: "3" }
nodes:
  - { id: a, type: log, with: { message: hi } }
outputs:
  ok: "\${{ inputs.n }}"
  total:
    "\${{ round(inputs.n) }}"
`;
    await write(sandbox, "out.flow.yaml", flow);
    const expected = `out.flow.yaml:${
      at(flow, "round(")
    }: outputs.total: Cannot evaluate \${{ round(inputs.n) }}: ${ROUND}`;
    const result = await sandbox.run("run", "out.flow.yaml");
    assert.equal(result.code, 1, result.stderr);
    assert.ok(result.stdout.includes(`error:    ${expected}\n`), result.stdout);
    const json = JSON.parse((await sandbox.run("runs", "show", runIdOf(result), "--json")).stdout);
    assert.deepEqual(json.run.error, { message: expected });
  });
});

Deno.test("cli: a sub-flow's template that fails is placed in the sub-flow's own file", async () => {
  await withSandbox(async (sandbox) => {
    const child = `id: child
inputs:
  x: { type: any }
nodes:
  - id: inner
    type: log
    with: { message: "\${{ round(inputs.x) }}" }
`;
    await write(sandbox, "sub/child.flow.yaml", child);
    await write(
      sandbox,
      "parent.flow.yaml",
      `id: parent
nodes:
  - id: call
    type: flow
    with: { flow: ./sub/child.flow.yaml, input: { x: "three" } }
`,
    );
    const result = await sandbox.run("run", "parent.flow.yaml", "--json");
    assert.equal(result.code, 1, result.stderr);
    const record = JSON.parse(result.stdout);
    const where = `sub/child.flow.yaml:${at(child, "round(")}: nodes[0].with.message: `;
    assert.ok(record.nodes.call.error.includes(`${where}Cannot evaluate`), record.nodes.call.error);
    const runs = JSON.parse((await sandbox.run("runs", "ls", "--json")).stdout);
    const sub = runs.find((r: { flowId: string }) => r.flowId === "child");
    const shown = JSON.parse((await sandbox.run("runs", "show", sub.id, "--json")).stdout);
    assert.match(
      shown.run.nodes.inner.error,
      new RegExp(`^/\\S+/${where.replace(/[.[\]]/g, "\\$&")}Cannot evaluate `),
    );
  });
});

/** The CLI denied the variables the YAML parser reads: it runs only a flow it does not parse. */
async function runUnparsed(dir: string, home: string, args: string[]): Promise<Result> {
  const argv = cliArgv(args);
  argv.splice(argv.indexOf("--allow-read"), 0, "--deny-env=LOG_TOKENS,LOG_STREAM");
  const [program, ...rest] = argv;
  const out = await new Deno.Command(program, {
    args: rest,
    cwd: dir,
    env: { FLOWSTATE_HOME: home, NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("cli: a run of a flow read from the flow disk cache places its errors as an uncached run does", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, "late.flow.yaml", WITH);
    const expected = withErrors("late.flow.yaml");
    const first = await sandbox.run("run", "late.flow.yaml");
    assert.equal(first.code, 1, first.stderr);
    const entries = [...Deno.readDirSync(join(sandbox.home, "cache", "flows"))];
    assert.equal(entries.length, 1);

    const second = await runUnparsed(sandbox.dir, sandbox.home, ["run", "late.flow.yaml"]);
    assert.equal(second.code, 1, second.stderr);
    const show = async (r: Result) =>
      JSON.parse((await sandbox.run("runs", "show", runIdOf(r), "--json")).stdout).run;
    const [a, b] = [await show(first), await show(second)];
    assertErrors(a.nodes, expected);
    assert.deepEqual(b.nodes, a.nodes);
    assert.deepEqual(b.error, a.error);
    // The progress lines are the same, but for the run's id.
    const progress = (r: Result) => r.stderr.replace(/\(run \w+\)/, "");
    assert.equal(progress(second), progress(first));
  });
});

Deno.test("cli: enqueue of a flow whose queue.by fails on its inputs says where the template is, exits 2, and queues nothing", async () => {
  await withSandbox(async (sandbox) => {
    const flow = QUEUE_BY_FAILS;
    await write(sandbox, "q.flow.yaml", flow);
    const result = await sandbox.run("enqueue", "q.flow.yaml");
    // Bad input, as inputs the flow refuses are: exit 2.
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `^error: \\S*q\\.flow\\.yaml:${
          at(flow, "round(")
        }: queue\\.by: Cannot evaluate \\$\\{\\{ round\\(inputs\\.x\\) \\}\\}: round\\(\\) takes a number`,
        "m",
      ),
    );
    assert.equal((await sandbox.run("runs", "ls", "--json")).stdout.trim(), "[]");
  });
});

/** A custom node (run in a Worker) whose schema wants a string `name` and a number `count`. */
const PICKY = `import { defineNode } from ${
  JSON.stringify(new URL("../mod.ts", import.meta.url).href)
};
export default defineNode({
  optionsSchema: {
    "~standard": {
      version: 1,
      vendor: "test",
      validate(value) {
        const issues = [];
        if (typeof value?.name !== "string") issues.push({ message: "expected a string", path: [{ key: "name" }] });
        if (typeof value?.count !== "number") issues.push({ message: "expected a number", path: ["count"] });
        return issues.length ? { issues } : { value };
      },
    },
  },
  run(_ctx, input) {
    return input.name;
  },
});
`;

const REFUSED = `id: refused
inputs:
  level: { type: string, default: loud }
  word: { type: string, default: many }
  n: { type: number, default: 5 }
nodes:
  - id: level
    type: log
    continueOnError: true
    with:
      message: hi
      level: "\${{ inputs.level }}"
  - id: by
    type: state.increment
    continueOnError: true
    with: { key: k, by: "\${{ inputs.word }}" }
  - id: picky
    type: ./nodes/picky.ts
    with:
      count: "\${{ inputs.word }}"
      name: "\${{ inputs.n }}"
`;

Deno.test("cli: options a template yields that the node refuses are placed at the offending with field, built-in or in a Worker", async () => {
  await withSandbox(async (sandbox) => {
    await write(sandbox, "refused.flow.yaml", REFUSED);
    await write(sandbox, "nodes/picky.ts", PICKY);
    assert.equal((await sandbox.run("validate", "refused.flow.yaml")).code, 0);
    const expected = {
      level: `refused.flow.yaml:${
        at(REFUSED, '"${{ inputs.level }}"')
      }: nodes[0].with.level: invalid options for log: expected one of "debug", "info", "warn", "error", got "loud"`,
      by: `refused.flow.yaml:${
        at(REFUSED, '"${{ inputs.word }}" }')
      }: nodes[1].with.by: invalid options for state.increment: `,
      // The Worker's issues, the first placed, the others after it.
      picky: `refused.flow.yaml:${
        at(REFUSED, '"${{ inputs.n }}"')
      }: nodes[2].with.name: invalid options for ./nodes/picky.ts: expected a string; with.count: expected a number`,
    };
    const result = await sandbox.run("run", "refused.flow.yaml");
    assert.equal(result.code, 1, result.stderr);
    assert.ok(
      result.stderr.includes(`[level] failed after 1 attempt: ${expected.level}\n`),
      result.stderr,
    );
    assert.ok(
      result.stderr.includes(`[picky] attempt 1 failed: ${expected.picky}\n`),
      result.stderr,
    );
    const json = JSON.parse((await sandbox.run("runs", "show", runIdOf(result), "--json")).stdout);
    assertErrors(json.run.nodes, expected);
    assert.equal(json.run.nodes.picky.error, expected.picky);
    assert.ok(result.stdout.includes(`error:    node "picky": ${expected.picky}\n`), result.stdout);
  });
});

Deno.test("cli: a template reached through a YAML alias is placed at the alias, not at a later template", async () => {
  await withSandbox(async (sandbox) => {
    const flow = `id: aliased
inputs:
  s: { type: string, default: "{bad" }
nodes:
  - id: first
    type: log
    if: "\${{ false }}"
    with: { message: &bad "\${{ fromJson(inputs.s) }}" }
  - id: again
    type: log
    continueOnError: true
    with: { message: *bad }
  - id: later
    type: log
    needs: [again]
    with: { message: "\${{ fromJson(inputs.s + 'x') }}" }
`;
    await write(sandbox, "aliased.flow.yaml", flow);
    // The second run reads the flow from the flow disk cache.
    for (let i = 0; i < 2; i++) {
      const result = await sandbox.run("run", "aliased.flow.yaml");
      assert.equal(result.code, 1, result.stderr);
      const { run } = JSON.parse(
        (await sandbox.run("runs", "show", runIdOf(result), "--json")).stdout,
      );
      assertErrors(run.nodes, {
        again: `aliased.flow.yaml:${
          at(flow, "*bad")
        }: nodes[1].with.message: Cannot evaluate \${{ fromJson(inputs.s) }}`,
        later: `aliased.flow.yaml:${at(flow, "fromJson(inputs.s + ")}: nodes[2].with.message`,
      });
    }
  });
});
