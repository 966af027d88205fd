/**
 * Sub-flows cannot lift a sandboxed node's permissions (the sandbox review's
 * finding 1): through the CLI, a hostile custom node with narrow permissions
 * tries `ctx.runFlow` with a definition it builds (another flow's id, a node
 * asking for `read: true`), with paths to files it may not read, with flow
 * files whose nodes ask for more than it has, and through a `flow` node fed
 * what it computed. Every attempt fails with a clear error, quotes nothing of
 * the files, and the victim flow's state is unchanged.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";

/** A node module needing no imports: runs each of `with.calls` and reports how each went. */
const PROBER = `
const schema = { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } };
export default {
  kind: "flowstate.node",
  optionsSchema: schema,
  async run(ctx, input) {
    if (input.read !== undefined) return await Deno.readTextFile(input.read);
    if (input.give !== undefined) return input.give;
    const out = {};
    for (const [name, call] of Object.entries(input.calls ?? {})) {
      try {
        const run = await ctx.runFlow(call.flow, call.input);
        out[name] = { status: run.status, outputs: run.outputs, error: run.error?.message ?? null };
      } catch (e) {
        out[name] = { refused: e.message };
      }
    }
    return out;
  },
};
`;

interface RunJson {
  status: string;
  nodes: Record<string, { status: string; output?: unknown; error?: string }>;
}

async function runJson(
  run: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>,
  file: string,
): Promise<RunJson> {
  const result = await run("run", file, "--json");
  assert.ok(result.stdout.trim() !== "", `no output: ${result.stderr}`);
  return JSON.parse(result.stdout) as RunJson;
}

Deno.test("a sandboxed node's ctx.runFlow: no definitions, only flow files in its places, within its own permissions", async () => {
  await withSandbox(async ({ dir, run }) => {
    const outside = await Deno.makeTempDir({ prefix: "flowstate-outside-" });
    try {
      await Deno.writeTextFile(join(dir, "flowstate.yaml"), "flows: [./flows]\n");
      await Deno.mkdir(join(dir, "nodes"));
      await Deno.mkdir(join(dir, "flows"));
      await Deno.mkdir(join(dir, "data", "inner"), { recursive: true });
      await Deno.writeTextFile(join(dir, "nodes", "prober.ts"), PROBER);
      await Deno.writeTextFile(join(dir, "data", "inner", "note.txt"), "inner note");
      await Deno.writeTextFile(join(outside, "secret.txt"), "TOP-SECRET-TEXT");
      await Deno.writeTextFile(join(outside, "creds.yaml"), "password: TOP-SECRET-YAML\n");
      await Deno.writeTextFile(
        join(outside, "elsewhere.flow.yaml"),
        "id: elsewhere\nnodes:\n  - { id: t, type: transform, with: { value: 1 } }\n",
      );
      const flows = join(dir, "flows");
      const write = (name: string, text: string) => Deno.writeTextFile(join(flows, name), text);
      await write(
        "victim.flow.yaml",
        "id: victim\nnodes:\n  - id: s\n    type: state.set\n    with: { key: apiToken, value: victim-secret }\n",
      );
      await write("notflow.yaml", "password: HUNTER2-IN-FOLDER\napi_key: HUNTER3\n");
      await Deno.symlink(join(outside, "elsewhere.flow.yaml"), join(flows, "link.flow.yaml"));
      await write(
        "fine.flow.yaml",
        "id: fine\nnodes:\n  - { id: t, type: transform, with: { value: 42 } }\noutputs: { v: '${{ nodes.t.output }}' }\n",
      );
      await write(
        "within.flow.yaml",
        `id: within\nnodes:\n  - id: r\n    type: ../nodes/prober.ts\n    with: { read: ${
          join(dir, "data", "inner", "note.txt")
        } }\n    permissions: { read: [../data/inner] }\noutputs: { v: '\${{ nodes.r.output }}' }\n`,
      );
      await write(
        "escalate.flow.yaml",
        "id: escalate\nnodes:\n  - id: x\n    type: ../nodes/prober.ts\n    with: { read: /etc/hostname }\n    permissions: { read: true, env: [HOME] }\n",
      );
      await write(
        "envy.flow.yaml",
        "id: envy\nenv: [HOME]\nnodes:\n  - { id: t, type: transform, with: { value: '${{ env.HOME }}' } }\noutputs: { home: '${{ nodes.t.output }}' }\n",
      );
      await write(
        "nested.flow.yaml",
        "id: nested\nnodes:\n  - { id: inner, type: flow, with: { flow: ./escalate.flow.yaml } }\n",
      );
      await write(
        "enqueue.flow.yaml",
        "id: enqueue\nnodes:\n  - { id: q, type: queue, with: { flow: victim } }\n",
      );
      const definition = (nodes: unknown[]) => ({ flow: { id: "victim", nodes } });
      const calls = {
        stealState: definition([
          { id: "g", type: "state.get", with: { key: "apiToken" } },
          {
            id: "w",
            type: "state.set",
            with: { key: "apiToken", value: "overwritten-by-attacker" },
            needs: ["g"],
          },
        ]),
        escalateInline: definition([
          {
            id: "x",
            type: "../nodes/prober.ts",
            with: { read: "/etc/hostname" },
            permissions: { read: true },
          },
        ]),
        passwd: { flow: "/etc/passwd" },
        outsideText: { flow: join(outside, "secret.txt") },
        outsideYaml: { flow: join(outside, "creds.yaml") },
        dotdot: { flow: "../../" + join(outside, "creds.yaml") },
        notAFlow: { flow: "./notflow.yaml" },
        symlink: { flow: "./link.flow.yaml" },
        missing: { flow: "./nope.flow.yaml" },
        escalate: { flow: "./escalate.flow.yaml" },
        envy: { flow: "./envy.flow.yaml" },
        nested: { flow: "./nested.flow.yaml" },
        enqueue: { flow: "./enqueue.flow.yaml" },
        fine: { flow: "./fine.flow.yaml" },
        within: { flow: "./within.flow.yaml" },
      };
      await write(
        "attack.flow.yaml",
        // warm: the flow node runs envy as written first, so the runtime's flow cache holds it.
        `id: attack\nnodes:\n  - { id: warm, type: flow, with: { flow: ./envy.flow.yaml } }\n  - id: p\n    needs: [warm]\n    type: ../nodes/prober.ts\n    permissions: { read: [../data] }\n    with: ${
          JSON.stringify({ calls })
        }\n`,
      );

      assert.equal((await runJson(run, "flows/victim.flow.yaml")).status, "succeeded");
      const record = await runJson(run, "flows/attack.flow.yaml");
      const text = JSON.stringify(record);
      for (const secret of ["TOP-SECRET", "HUNTER2", "HUNTER3", "root:x", "victim-secret"]) {
        assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
      }
      assert.equal(record.nodes.p.status, "succeeded", text);
      const out = record.nodes.p.output as Record<string, { refused?: string; status?: string }>;
      const refused = (name: string, pattern: RegExp) =>
        assert.match(out[name].refused ?? `(not refused: ${JSON.stringify(out[name])})`, pattern);
      const caller = /node p \(\.\.\/nodes\/prober\.ts\) of flow attack/;
      for (const name of ["stealState", "escalateInline"]) {
        refused(name, /a sandboxed node runs flow files only, not a definition it builds/);
        refused(name, caller);
      }
      for (const name of ["passwd", "outsideText"]) {
        refused(name, /it is not a \.yaml or \.yml file/);
      }
      for (const name of ["outsideYaml", "dotdot"]) refused(name, /it is outside those places/);
      refused("symlink", /symlink to a file outside those places/);
      refused("missing", /there is no such file/);
      refused("notAFlow", /it is not a valid flow; its problems are not shown/);
      refused("escalate", /node x \(\.\.\/nodes\/prober\.ts\) declares read: true/);
      refused("escalate", /declares env: \[HOME\]/);
      refused("escalate", caller);
      refused("escalate", /within that node's own permissions \(read=/);
      // From the runtime's flow cache (the warm node loaded it), checked all the same.
      refused("envy", /its env: or secrets: list HOME/);
      refused("nested", /Cannot start sub-flow escalate .* declares read: true/);
      refused("enqueue", /node q \(queue\) enqueues runs/);
      assert.deepEqual(out.fine, { status: "succeeded", outputs: { v: 42 }, error: null });
      assert.deepEqual(out.within, {
        status: "succeeded",
        outputs: { v: "inner note" },
        error: null,
      });

      // The victim's state is as the victim left it.
      const state = await run("state", "get", "--flow", "victim", "apiToken");
      assert.equal(state.code, 0, state.stderr);
      assert.equal(JSON.parse(state.stdout), "victim-secret");
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("a flow node: a definition computed at run time is refused, a computed path must name a flow file in its places, literal definitions resolve beside the flow", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.mkdir(join(dir, "nodes"));
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "nodes", "prober.ts"), PROBER);
    await Deno.writeTextFile(
      join(dir, "flows", "fine.flow.yaml"),
      "id: fine\nnodes:\n  - { id: t, type: transform, with: { value: 42 } }\noutputs: { v: '${{ nodes.t.output }}' }\n",
    );
    const plan = {
      id: "report",
      nodes: [{
        id: "r",
        type: "../nodes/prober.ts",
        with: { read: "/etc/hostname" },
        permissions: { read: true },
      }],
      outputs: { got: "$${{ nodes.r.output }}" },
    };
    await Deno.writeTextFile(
      join(dir, "flows", "plan.flow.yaml"),
      `id: plan
nodes:
  - id: compute
    type: ../nodes/prober.ts
    with: { give: ${JSON.stringify(plan)} }
  - id: report
    type: flow
    needs: [compute]
    continueOnError: true
    with: { flow: "\${{ nodes.compute.output }}" }
  - id: path
    type: flow
    continueOnError: true
    with: { flow: "./\${{ 'fine' }}.flow.yaml" }
  - id: passwd
    type: flow
    continueOnError: true
    with: { flow: "\${{ '/etc/' + 'passwd' }}" }
  - id: literal
    type: flow
    continueOnError: true
    with:
      flow:
        id: literal
        nodes: [{ id: g, type: ../nodes/prober.ts, with: { give: beside } }]
        outputs: { g: "$\${{ nodes.g.output }}" }
`,
    );
    const record = await runJson(run, "flows/plan.flow.yaml");
    const text = JSON.stringify(record);
    assert.ok(!text.includes("root:x"), text);
    assert.equal(record.nodes.report.status, "failed", text);
    assert.match(
      record.nodes.report.error ?? "",
      /node report \(flow\) of flow plan: its flow: is a definition computed at run time/,
    );
    assert.equal(record.nodes.path.status, "succeeded", text);
    assert.deepEqual(record.nodes.path.output, { v: 42 });
    assert.equal(record.nodes.passwd.status, "failed", text);
    assert.match(record.nodes.passwd.error ?? "", /it is not a \.yaml or \.yml file/);
    // An inline definition's relative type: is relative to the calling flow's folder.
    assert.equal(record.nodes.literal.status, "succeeded", text);
    assert.deepEqual(record.nodes.literal.output, { g: "beside" });
  });
});
