/**
 * Node types a program defines (`openRuntime({ nodeTypes })`), used by name
 * in its flows: a YAML flow file and a definition run them in-process with
 * their scoped state, sub-flows and the runtime's queue worker know them,
 * runs record them as any node; a clashing, module-like or non-node entry is
 * refused when the runtime opens; an unknown name, bad options and a
 * `permissions:` are validation errors at their place in the file; a
 * sandboxed node's sub-flow may not hold one; the CLI, which cannot know
 * them, says so.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  defineNode,
  FlowValidationError,
  type NodeType,
  openRuntime,
  type Runtime,
  type RuntimeOptions,
  startWorker,
} from "../mod.ts";
import type { JsonValue } from "../mod.ts";
import { Scheduler } from "../scheduler.ts";
import { z } from "zod";
import { withSandbox } from "./_cli_sandbox.ts";
import { within } from "./_deadline.ts";

const nameSchema = z.strictObject({ name: z.string() });

/** Counts greetings in its node, flow and global state; returns what it saw. */
const greet = defineNode({
  description: "greets and counts",
  optionsSchema: nameSchema,
  async run(ctx, { name }) {
    const mine = await ctx.node.increment("greeted", 1);
    const flow = await ctx.flow.increment(["by", name], 1);
    const before = await ctx.global.get<string>("last");
    await ctx.global.set("last", name);
    ctx.log(`hello ${name}`);
    return { greeting: `hello ${name}`, mine, flow, before, runId: ctx.runId, node: ctx.nodeId };
  },
});

const GREET_FLOW = [
  "id: greeter",
  "inputs:",
  "  who: { type: string, default: Ada }",
  "nodes:",
  "  - id: hi",
  "    type: acme.greet",
  '    with: { name: "${{ inputs.who }}" }',
  "  - id: after",
  "    type: transform",
  "    needs: [hi]",
  '    with: { value: "${{ nodes.hi.output.greeting }}" }',
  "outputs:",
  '  greeting: "${{ nodes.after.output }}"',
  "",
].join("\n");

/**
 * `fn` with a runtime whose program defines `acme.greet` (or `extra.nodeTypes`), working in a
 * fresh folder holding `files` (name → text), removed afterwards.
 */
async function withRuntime(
  files: Record<string, string>,
  fn: (rt: Runtime, dir: string) => Promise<void>,
  extra: (dir: string) => Partial<RuntimeOptions> = () => ({}),
): Promise<void> {
  await withSandbox(async ({ dir, home }) => {
    for (const [name, text] of Object.entries(files)) {
      await Deno.mkdir(dirname(join(dir, name)), { recursive: true });
      await Deno.writeTextFile(join(dir, name), text);
    }
    await using rt = await openRuntime({
      cwd: dir,
      home,
      config: { stores: { main: { plugin: "memory" } } },
      nodeTypes: { "acme.greet": greet },
      ...extra(dir),
    });
    await fn(rt, dir);
  });
}

/** The rejection of `promise`, which must be a FlowValidationError. */
async function validationError(promise: Promise<unknown>): Promise<FlowValidationError> {
  const error = await promise.then(() => null, (err) => err);
  assert.ok(error instanceof FlowValidationError, `expected a FlowValidationError, got ${error}`);
  return error;
}

Deno.test("a program's node type runs in a YAML flow file: scoped state, logs, record, metrics", async () => {
  await withRuntime({ "greet.flow.yaml": GREET_FLOW }, async (rt) => {
    const logs: string[] = [];
    const first = await rt.runFlow("greet.flow.yaml", {
      onEvent: (event) => {
        if (event.type === "node.log") logs.push(`${event.node}: ${event.message}`);
      },
    });
    assert.equal(first.status, "succeeded", JSON.stringify(first.error));
    assert.deepEqual(first.outputs, { greeting: "hello Ada" });
    assert.deepEqual(logs, ["hi: hello Ada"]);
    const second = await rt.runFlow("greet.flow.yaml", { input: { who: "Bob" } });
    assert.equal(second.status, "succeeded");
    assert.deepEqual(second.nodes.hi, {
      status: "succeeded",
      attempts: 1,
      output: {
        greeting: "hello Bob",
        mine: 2,
        flow: 1,
        before: "Ada",
        runId: second.id,
        node: "hi",
      } as JsonValue,
    });
    // Its writes landed in the scopes' keys of the store, as a built-in node's do.
    const store = await rt.store("main");
    assert.equal((await store.get(["flow", "greeter", "by", "Ada"]))?.value, 1);
    assert.equal((await store.get(["global", "last"]))?.value, "Bob");
    // Recorded as any run: its record, one flow version, the metrics.
    const records = await rt.records();
    assert.equal((await records.getRun(second.id))?.nodes.hi.status, "succeeded");
    assert.equal(first.flowVersion, second.flowVersion);
    const metrics = await records.getMetrics("greeter");
    assert.equal(metrics?.count, 2);
    assert.equal(metrics?.succeeded, 2);
  });
});

Deno.test("a program's node type runs in a definition, in sub-flows, and in runs its worker claims", async () => {
  await withRuntime({ "greet.flow.yaml": GREET_FLOW }, async (rt) => {
    const run = await rt.runFlow({
      id: "outer",
      nodes: [
        { id: "direct", type: "acme.greet", with: { name: "Cy" } },
        { id: "sub", type: "flow", with: { flow: "./greet.flow.yaml", input: { who: "Di" } } },
      ],
      outputs: { direct: "${{ nodes.direct.output.greeting }}", sub: "${{ nodes.sub.output }}" },
    });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.deepEqual(run.outputs, { direct: "hello Cy", sub: { greeting: "hello Di" } });

    const { runId } = await rt.enqueue("./greet.flow.yaml", { input: { who: "Eve" } });
    const done = Promise.withResolvers<void>();
    const worker = startWorker(rt, { onEvent: (e) => e.type === "end" && done.resolve() });
    await within(done.promise, "the done event");
    await worker.stop();
    const ended = await (await rt.records()).getRun(runId);
    assert.equal(ended?.status, "succeeded", JSON.stringify(ended?.error));
    assert.deepEqual(ended?.outputs, { greeting: "hello Eve" });
  });
});

Deno.test("the library Scheduler runs a scheduled flow file using a program's node type", async () => {
  const flow =
    'id: greeter\nschedule: "0 3 * * *"\nnodes:\n  - { id: hi, type: acme.greet, with: { name: Ada } }\n';
  const config = {
    stores: { main: { plugin: "memory" as const } },
    flows: ["./flows"],
    jobs: { retention: { enabled: false }, gc: { enabled: false } },
  };
  await withRuntime({ "flows/greet.flow.yaml": flow }, async (rt) => {
    const ends: string[] = [];
    const scheduler = new Scheduler(rt, {
      clock: { now: () => Date.UTC(2026, 0, 1, 3) },
      onEvent: (event) => void (event.type === "tick.end" && ends.push(event.status)),
    });
    await scheduler.start();
    await scheduler.stop();
    assert.deepEqual(scheduler.schedules.map((s) => s.id), ["flow:greeter"]);
    assert.deepEqual(ends, ["succeeded"]);
    assert.equal((await (await rt.store()).get(["global", "last"]))?.value, "Ada");
  }, () => ({ config }));
});

Deno.test("openRuntime refuses a nodeTypes entry named like a built-in or a module, or not a node type", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { log: greet },
      /^Cannot open runtime: option nodeTypes\["log"\]: "log" is a built-in node type, which a flow's type: "log" always means; give yours a name of its own, such as "app\.log"$/,
    ],
    [
      { "./greet.ts": greet },
      /nodeTypes\["\.\/greet\.ts"\]: a flow would read type: "\.\/greet\.ts" as a module path/,
    ],
    [
      { "npm:greet": greet },
      /nodeTypes\["npm:greet"\]: a flow would read type: "npm:greet" as a module specifier/,
    ],
    [{ "": greet }, /nodeTypes\[""\]: a node type's name must not be empty/],
    [
      { "acme.greet": { run: () => 1 } },
      /nodeTypes\["acme\.greet"\]: expected a node type made by defineNode\(\{ optionsSchema, run \}\), got object/,
    ],
  ];
  for (const [nodeTypes, message] of cases) {
    await assert.rejects(
      openRuntime({
        config: { stores: { main: { plugin: "memory" } } },
        nodeTypes: nodeTypes as Record<string, NodeType>,
      }),
      (err: Error) => err instanceof TypeError && message.test(err.message),
      JSON.stringify(Object.keys(nodeTypes)),
    );
  }
});

Deno.test("an unknown node type names the program's node types, with a did-you-mean, at its place", async () => {
  const typo = "id: typo\nnodes:\n  - id: hi\n    type: acme.gret\n    with: { name: Ada }\n";
  await withRuntime({ "typo.flow.yaml": typo }, async (rt) => {
    const error = await validationError(rt.runFlow("typo.flow.yaml"));
    assert.match(
      error.message,
      /typo\.flow\.yaml:4:11: nodes\[0\]\.type: unknown node type "acme\.gret" \(did you mean "acme\.greet"\?\); use a built-in \(state\.get, .*, queue, http, exec, wait\), a node type of this program \(acme\.greet\) or a module path like \.\/nodes\/thing\.ts$/m,
    );
    // A definition gets the same (without a place).
    const fromObject = await validationError(
      rt.runFlow({ id: "typo", nodes: [{ id: "hi", type: "acme.gret" }] }),
    );
    assert.match(
      fromObject.message,
      /unknown node type "acme\.gret" \(did you mean "acme\.greet"\?\)/,
    );
    // Nothing was recorded.
    assert.deepEqual(await (await rt.records()).listFlows(), []);
  });
});

Deno.test("a program node's options are checked before the run, at their place; a bad output fails the node", async () => {
  const bad = "id: bad\nnodes:\n  - id: hi\n    type: acme.greet\n    with: { name: 5 }\n" +
    "  - id: ho\n    type: acme.greet\n    with: { name: Ada, nmae: Bob }\n";
  const dated = defineNode({
    optionsSchema: nameSchema,
    run: () => ({ at: new Date(0) }) as never,
  });
  await withRuntime({ "bad.flow.yaml": bad }, async (rt) => {
    const error = await validationError(rt.runFlow("bad.flow.yaml"));
    const lines = error.problems.map((p) =>
      `${p.line}:${p.column}: ${p.path.join(".")}: ${p.message}`
    );
    assert.equal(lines.length, 2, error.message);
    assert.match(
      lines[0],
      /^5:19: nodes\.0\.with\.name: acme\.greet: Invalid input: expected string, received number$/,
    );
    assert.match(
      lines[1],
      /^8:24: nodes\.1\.with\.nmae: unknown option "nmae" for acme\.greet \(did you mean "name"\?\)$/,
    );
    // A templated value is checked when the run evaluates it: the node fails, the run records it.
    const run = await rt.runFlow({
      id: "late",
      inputs: { n: { type: "number", default: 5 } },
      nodes: [
        { id: "hi", type: "acme.greet", with: { name: "${{ inputs.n }}" } },
        { id: "when", type: "acme.dated", with: { name: "x" } },
      ],
    });
    assert.equal(run.status, "failed");
    assert.equal(run.nodes.hi.status, "failed");
    assert.equal(
      run.nodes.hi.error,
      // A definition (no YAML): its path in the definition.
      "nodes[0].with.name: invalid options for acme.greet: Invalid input: expected string, received number",
    );
    assert.equal(run.nodes.when.status, "failed");
    assert.match(
      run.nodes.when.error ?? "",
      /^node when returned a value that is not JSON: .*Date/,
    );
  }, () => ({ nodeTypes: { "acme.greet": greet, "acme.dated": dated } }));
});

Deno.test("permissions: on a program's node type is a validation error at its place", async () => {
  const perm =
    "id: perm\nnodes:\n  - id: hi\n    type: acme.greet\n    with: { name: Ada }\n    permissions: { net: true }\n";
  await withRuntime({ "perm.flow.yaml": perm }, async (rt) => {
    const error = await validationError(rt.runFlow("perm.flow.yaml"));
    assert.match(
      error.message,
      /perm\.flow\.yaml:6:18: nodes\[0\]\.permissions: node type "acme\.greet" is defined by the program running this flow \(openRuntime's nodeTypes\) and runs in-process with all of its permissions, so permissions: would restrict nothing; remove it/,
    );
  });
});

Deno.test("a sandboxed node may not start a sub-flow holding a program's node type", async () => {
  // A sandboxed module (no permissions) that runs the flow file beside it.
  const caller = `export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  run: async (ctx) => (await ctx.runFlow("greet.flow.yaml")).status,
};
`;
  const files = {
    "greet.flow.yaml": GREET_FLOW,
    "caller.js": caller,
    "outer.flow.yaml": "id: outer\nnodes:\n  - id: call\n    type: ./caller.js\n",
  };
  await withRuntime(files, async (rt) => {
    const run = await rt.runFlow("outer.flow.yaml");
    assert.equal(run.status, "failed");
    assert.match(
      run.nodes.call.error ?? "",
      /Cannot start sub-flow greeter \(.*greet\.flow\.yaml\) for node call \(\.\/caller\.js\) of flow outer: node hi \(acme\.greet\) is defined by the program \(in-process, with every permission of the runner\)/,
    );
  });
});

Deno.test("flowstate validate and run: a program's node type is unknown to the CLI, which says where such names come from", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "greet.flow.yaml"), GREET_FLOW);
    const expected =
      /greet\.flow\.yaml:6:11: nodes\[0\]\.type: unknown node type "acme\.greet"; use a built-in \(state\.get, .*\) or a module path like \.\/nodes\/thing\.ts \(a node type a program defines with openRuntime\(\{ nodeTypes \}\) is known only to that program's runtime\)/;
    const validated = await run("validate", "greet.flow.yaml");
    assert.equal(validated.code, 2, validated.stderr);
    assert.match(validated.stderr, expected);
    const ran = await run("run", "greet.flow.yaml");
    assert.equal(ran.code, 2, ran.stderr);
    assert.match(ran.stderr, expected);
  });
});
