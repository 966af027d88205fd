/**
 * `flowstate validate` says what a node reaches beyond its `permissions:`
 * (the sandbox review's findings 8, 9, 11 and 1d): the runner's environment
 * variables that reach a custom node through its `with:`, a `write:` that
 * covers a flow file, the config, a trusted module, the home, the project's
 * deno.json or deno.lock, or a store plugin's or job's module, a flow id
 * declared by two files under `flows:` (also said by the daemon), and which
 * nodes may start sub-flows.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, withSandbox } from "./_cli_sandbox.ts";
import type { ValidateResult } from "../src/cli/flows.ts";
import { exitOf, hangGuard } from "./_deadline.ts";

const NODE = `
export default {
  kind: "flowstate.node",
  optionsSchema: { "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } },
  run: (_ctx, input) => input,
};
`;

async function project(dir: string, config: string): Promise<void> {
  await Deno.writeTextFile(join(dir, "flowstate.yaml"), config);
  await Deno.mkdir(join(dir, "nodes"));
  await Deno.mkdir(join(dir, "flows"));
  await Deno.writeTextFile(join(dir, "nodes", "echo.ts"), NODE);
  await Deno.writeTextFile(join(dir, "nodes", "trusted.ts"), NODE);
}

Deno.test("validate shows the env variables that reach each custom node through its with:, and which nodes start sub-flows", async () => {
  await withSandbox(async ({ dir, runWith }) => {
    await project(dir, "flows: [./flows]\n");
    await Deno.writeTextFile(
      join(dir, "flows", "envleak.flow.yaml"),
      `id: envleak
env: [MY_DB_PASSWORD, OTHER]
nodes:
  - { id: direct, type: ../nodes/echo.ts, with: { pw: "\${{ env.MY_DB_PASSWORD }}" } }
  - { id: t, type: transform, with: { value: "\${{ env['OTHER'] }}" } }
  - { id: via, type: ../nodes/echo.ts, needs: [t], with: { v: "\${{ nodes.t.output }}" } }
  - { id: any, type: ../nodes/echo.ts, with: { v: "\${{ env[inputs.k] }}" } }
  - { id: clean, type: ../nodes/echo.ts, with: { v: 1 } }
  - { id: lit, type: flow, with: { flow: ./sub.flow.yaml } }
  - { id: computed, type: flow, with: { flow: "./\${{ inputs.k }}.flow.yaml" } }
inputs: { k: { type: string, default: sub } }
`,
    );
    await Deno.writeTextFile(
      join(dir, "flows", "sub.flow.yaml"),
      "id: sub\nnodes:\n  - { id: a, type: transform, with: { value: 1 } }\n",
    );
    const env = { MY_DB_PASSWORD: "s3cr3t", OTHER: "o" };
    const json = await runWith(env, "validate", "--json", "flows/envleak.flow.yaml");
    assert.equal(json.code, 0, json.stderr);
    const [result] = JSON.parse(json.stdout) as ValidateResult[];
    assert.deepEqual(result.env, ["MY_DB_PASSWORD", "OTHER"]);
    const byId = Object.fromEntries(result.nodes.map((n) => [n.id, n]));
    assert.deepEqual(byId.direct.withEnv, ["MY_DB_PASSWORD"]);
    assert.deepEqual(byId.via.withEnv, ["OTHER"]);
    assert.deepEqual(byId.any.withEnv, ["MY_DB_PASSWORD", "OTHER"]);
    assert.deepEqual(byId.clean.withEnv, []);
    assert.equal(byId.direct.permissions?.env, false);
    assert.equal(byId.direct.subFlows, "capped");
    assert.equal(byId.lit.subFlows, "literal");
    assert.equal(byId.computed.subFlows, "computed");
    assert.equal(byId.t.subFlows, null);

    const text = await runWith(env, "validate", "flows/envleak.flow.yaml");
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trim().split("\n");
    assert.match(lines[1], /^ {2}env: MY_DB_PASSWORD, OTHER \(read from the runner's environment/);
    assert.ok(
      lines.includes(
        "  direct (../nodes/echo.ts): worker, permissions: none; receives env through with: MY_DB_PASSWORD; may read env through state: OTHER (written by via, any); sub-flows: flow files only, within these permissions",
      ),
      text.stdout,
    );
    assert.ok(
      lines.includes(
        "  clean (../nodes/echo.ts): worker, permissions: none; may read env through state: MY_DB_PASSWORD, OTHER (written by direct, via, any); sub-flows: flow files only, within these permissions",
      ),
      text.stdout,
    );
    assert.ok(
      lines.some((l) =>
        l.startsWith("  computed (flow): starts a sub-flow whose path is computed")
      ),
      text.stdout,
    );
    assert.ok(!lines.some((l) => l.startsWith("  lit ")), text.stdout);
    assert.ok(!text.stdout.includes("s3cr3t"));
  });
});

Deno.test("validate shows the env variables that may reach each custom node through state another node wrote", async () => {
  await withSandbox(async ({ dir, runWith }) => {
    await project(dir, "flows: [./flows]\n");
    await Deno.writeTextFile(
      join(dir, "flows", "viastate.flow.yaml"),
      `id: viastate
env: [MY_DB_PASSWORD, OTHER]
nodes:
  - { id: save, type: state.set, with: { scope: flow, key: pw, value: "\${{ env.MY_DB_PASSWORD }}" } }
  - { id: given, type: ../nodes/echo.ts, with: { v: "\${{ env.OTHER }}" } }
  - { id: reader, type: ../nodes/echo.ts, needs: [save], with: { v: 1 } }
  - { id: shown, type: log, with: { message: "\${{ env.OTHER }}" } }
`,
    );
    const env = { MY_DB_PASSWORD: "s3cr3t", OTHER: "o" };
    const json = await runWith(env, "validate", "--json", "flows/viastate.flow.yaml");
    assert.equal(json.code, 0, json.stderr);
    const [result] = JSON.parse(json.stdout) as ValidateResult[];
    const byId = Object.fromEntries(result.nodes.map((n) => [n.id, n]));
    // save writes MY_DB_PASSWORD to the flow's state; given may write OTHER (it is a custom node).
    assert.deepEqual(byId.reader.stateEnv, ["MY_DB_PASSWORD", "OTHER"]);
    assert.deepEqual(byId.reader.stateEnvWriters, ["save", "given"]);
    assert.deepEqual(byId.given.stateEnv, ["MY_DB_PASSWORD"]);
    assert.deepEqual(byId.given.stateEnvWriters, ["save"]);
    // A log node writes no state; built-in nodes are given none.
    assert.deepEqual(byId.save.stateEnv, []);
    assert.deepEqual(byId.shown.stateEnv, []);

    const text = await runWith(env, "validate", "flows/viastate.flow.yaml");
    assert.equal(text.code, 0, text.stderr);
    assert.ok(
      text.stdout.includes(
        "  reader (../nodes/echo.ts): worker, permissions: none; may read env through state: MY_DB_PASSWORD, OTHER (written by save, given); sub-flows: flow files only, within these permissions",
      ),
      text.stdout,
    );
    assert.ok(!text.stdout.includes("s3cr3t"));
  });
});

Deno.test("validate warns when a node's write: covers a flow file, the flows: folder, the config, a trusted module or the home", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await project(dir, "flows: [./flows]\nnodes: { trusted: [./nodes/trusted.ts] }\n");
    await Deno.mkdir(join(dir, "data"));
    await Deno.mkdir(home, { recursive: true });
    await Deno.writeTextFile(
      join(dir, "flows", "other.flow.yaml"),
      "id: other\nnodes:\n  - { id: a, type: transform, with: { value: 1 } }\n",
    );
    await Deno.writeTextFile(
      join(dir, "flows", "w.flow.yaml"),
      `id: w
nodes:
  - { id: folder, type: ../nodes/echo.ts, permissions: { write: [./] } }
  - { id: modules, type: ../nodes/echo.ts, permissions: { write: [../nodes] } }
  - { id: inhome, type: ../nodes/echo.ts, permissions: { write: [../home/state.db] } }
  - { id: project, type: ../nodes/echo.ts, permissions: { write: [..] } }
  - { id: data, type: ../nodes/echo.ts, permissions: { write: [../data] } }
`,
    );
    const result = await run("validate", "flows/w.flow.yaml");
    assert.equal(result.code, 0, result.stderr);
    const warnings = result.stderr.trim().split("\n").filter((l) => l.startsWith("warning: "));
    const of = (id: string) => warnings.find((w) => w.includes(`: node ${id} (`)) ?? "";
    assert.match(of("folder"), /its own flow file \S+w\.flow\.yaml/);
    assert.match(of("folder"), /the flows: folder \S+flows\b/);
    assert.match(of("folder"), /the flow file of flow "other" \S+other\.flow\.yaml/);
    assert.match(of("folder"), /can give itself, or another node, any permission the runner has/);
    assert.match(of("modules"), /the trusted node module \S+trusted\.ts/);
    assert.doesNotMatch(of("modules"), /flow file/);
    assert.match(of("inhome"), /Flowstate's home/);
    assert.match(of("project"), /the config file \S+flowstate\.yaml/);
    assert.equal(of("data"), "", result.stderr);
    assert.equal(warnings.length, 4, result.stderr);
    assert.ok(warnings.every((w) => w.startsWith("warning: flows/w.flow.yaml: ")));

    const json = await run("validate", "--json", "flows/w.flow.yaml");
    const [parsed] = JSON.parse(json.stdout) as ValidateResult[];
    assert.equal(parsed.warnings.length, 4);
  });
});

Deno.test("validate warns when a node's write: covers the project's deno.json or deno.lock, a store plugin's or a job's module", async () => {
  await withSandbox(async ({ dir, run }) => {
    // Each runs in the runner, or decides what does (the import map, the tasks' flags).
    await project(
      dir,
      "flows: [./flows]\nstores:\n  main: { plugin: ./plugins/store.ts }\njobs:\n  report: { module: ./jobs/report.ts }\n",
    );
    await Deno.writeTextFile(join(dir, "deno.json"), "{}\n");
    await Deno.mkdir(join(dir, "plugins"));
    await Deno.mkdir(join(dir, "jobs"));
    await Deno.writeTextFile(join(dir, "plugins", "store.ts"), "export default {};\n");
    await Deno.writeTextFile(join(dir, "jobs", "report.ts"), "export default {};\n");
    await Deno.writeTextFile(
      join(dir, "flows", "w.flow.yaml"),
      `id: w
nodes:
  - { id: denojson, type: ../nodes/echo.ts, permissions: { write: [../deno.json] } }
  - { id: lock, type: ../nodes/echo.ts, permissions: { write: [../deno.lock] } }
  - { id: plugins, type: ../nodes/echo.ts, permissions: { write: [../plugins] } }
  - { id: jobs, type: ../nodes/echo.ts, permissions: { write: [../jobs/report.ts] } }
  - { id: fine, type: ../nodes/echo.ts, permissions: { write: [../nodes/out.txt] } }
`,
    );
    const result = await run("validate", "flows/w.flow.yaml");
    assert.equal(result.code, 0, result.stderr);
    const warnings = result.stderr.trim().split("\n").filter((l) => l.startsWith("warning: "));
    const of = (id: string) => warnings.find((w) => w.includes(`: node ${id} (`)) ?? "";
    assert.match(
      of("denojson"),
      /the project's deno\.json \(its imports and tasks decide the runner's code and flags\) \S+deno\.json:/,
    );
    assert.match(of("lock"), /the project's deno\.lock \S+deno\.lock:/);
    assert.match(of("plugins"), /the plugin module of store main \S+store\.ts:/);
    assert.match(of("jobs"), /the module of job report \S+report\.ts:/);
    assert.match(of("jobs"), /can give itself, or another node, any permission the runner has/);
    assert.equal(of("fine"), "", result.stderr);
    assert.equal(warnings.length, 4, result.stderr);
  });
});

Deno.test("validate and the daemon warn when two files under flows: declare one flow id", async () => {
  await withSandbox(async ({ dir, home, run }) => {
    await project(dir, "flows: [./flows, ./other]\n");
    await Deno.mkdir(join(dir, "other"));
    const flow = (value: number) =>
      `id: victim\nnodes:\n  - { id: a, type: transform, with: { value: ${value} } }\n`;
    await Deno.writeTextFile(join(dir, "flows", "victim.flow.yaml"), flow(1));
    await Deno.writeTextFile(join(dir, "other", "impostor.flow.yaml"), flow(2));
    await Deno.writeTextFile(
      join(dir, "flows", "alone.flow.yaml"),
      "id: alone\nnodes:\n  - { id: a, type: transform, with: { value: 1 } }\n",
    );
    const result = await run("validate", "other/impostor.flow.yaml", "flows/alone.flow.yaml");
    assert.equal(result.code, 0, result.stderr);
    const warnings = result.stderr.trim().split("\n").filter((l) => l.startsWith("warning: "));
    assert.equal(warnings.length, 1, result.stderr);
    assert.match(
      warnings[0],
      /^warning: other\/impostor\.flow\.yaml: flow id "victim" is declared by other\/impostor\.flow\.yaml and \S+flows\/victim\.flow\.yaml: a flow's id decides which flow and node state its runs use/,
    );

    // The daemon says it once, before its scheduler starts (which it prints on stdout).
    const child = cliCommand(dir, ["daemon", "--no-queue"], { home }).spawn();
    const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let printed = "";
    using _hang = hangGuard(child, () => printed);
    while (!printed.includes("Scheduler started")) {
      const { value, done } = await stdout.read();
      if (done) break;
      printed += value;
    }
    child.kill("SIGTERM");
    await stdout.cancel();
    const seen = await new Response(child.stderr).text();
    await exitOf(child);
    assert.match(
      seen,
      /warning: flow id "victim" is declared by \S+flows\/victim\.flow\.yaml and \S+other\/impostor\.flow\.yaml/,
    );
  });
});
