/**
 * A project's flow run from another folder (no `--config`, no
 * `$FLOWSTATE_CONFIG`, no `./flowstate.yaml`) runs on the default store of
 * that folder, as every other command there would: never silently. The CLI
 * says so on stderr, naming the store it uses, the project's config and how
 * to use it; the run summary names the store every run is recorded in.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "./_cli_sandbox.ts";

const FLOW = `id: hello
nodes:
  - id: count
    type: state.increment
    with: { key: greetings }
outputs:
  count: \${{ nodes.count.output }}
`;

async function withProjectAndElsewhere(
  fn: (paths: { project: string; elsewhere: string; flow: string; home: string }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-elsewhere-" });
  const project = join(dir, "project");
  const elsewhere = join(dir, "elsewhere");
  await Deno.mkdir(join(project, "flows"), { recursive: true });
  await Deno.mkdir(elsewhere);
  await Deno.writeTextFile(
    join(project, "flowstate.yaml"),
    "stores:\n  default:\n    plugin: sqlite\n    path: .flowstate/state.db\n",
  );
  const flow = join(project, "flows", "hello.flow.yaml");
  await Deno.writeTextFile(flow, FLOW);
  try {
    await fn({ project, elsewhere, flow, home: join(dir, "home") });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("run from another folder than the flow's project: a warning naming both configs and the fix", async () => {
  await withProjectAndElsewhere(async ({ project, elsewhere, flow, home }) => {
    const config = join(project, "flowstate.yaml");
    const projectStore = join(project, ".flowstate", "state.db");
    // In the project: its store, no warning.
    const inProject = await runCli(project, ["run", "flows/hello.flow.yaml"], { home });
    assert.equal(inProject.code, 0, inProject.stderr);
    assert.doesNotMatch(inProject.stderr, /warning/);
    assert.match(inProject.stdout, /^store: +default \(sqlite\) (.*)$/m);
    assert.equal(inProject.stdout.match(/^store: +default \(sqlite\) (.*)$/m)?.[1], projectStore);
    assert.match(inProject.stdout, /^ {2}count: 1$/m);

    // Elsewhere: the default store there (the home's), and a warning that says so.
    const defaultStore = join(home, "state.db");
    const warning = `warning: no flowstate.yaml in ${elsewhere}: this uses the default store ` +
      `${defaultStore}, not the stores of the flow's project, ${config}; ` +
      `run it from ${project}, or with --config ${config} from here`;
    const outside = await runCli(elsewhere, ["run", flow], { home });
    assert.equal(outside.code, 0, outside.stderr);
    assert.equal(outside.stderr.split("\n")[0], warning);
    assert.equal(outside.stdout.match(/^store: +default \(sqlite\) (.*)$/m)?.[1], defaultStore);
    assert.match(outside.stdout, /^ {2}count: 1$/m);
    // validate and enqueue say the same, once.
    const validated = await runCli(elsewhere, ["validate", flow, flow], { home });
    assert.equal(validated.code, 0, validated.stderr);
    assert.equal(validated.stderr.trim(), warning);
    const queued = await runCli(elsewhere, ["enqueue", flow], { home });
    assert.equal(queued.code, 0, queued.stderr);
    assert.equal(queued.stderr.trim(), warning);

    // With --config (or $FLOWSTATE_CONFIG): the project's store, no warning.
    const given = await runCli(elsewhere, ["--config", config, "run", flow], { home });
    assert.equal(given.code, 0, given.stderr);
    assert.doesNotMatch(given.stderr, /warning/);
    assert.equal(given.stdout.match(/^store: +default \(sqlite\) (.*)$/m)?.[1], projectStore);
    assert.match(given.stdout, /^ {2}count: 2$/m);
    const fromEnv = await runCli(elsewhere, ["run", flow], {
      home,
      env: { FLOWSTATE_CONFIG: config },
    });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.doesNotMatch(fromEnv.stderr, /warning/);
    assert.match(fromEnv.stdout, /^ {2}count: 3$/m);
  });
});

Deno.test("run from another folder: no warning when the flow has no project", async () => {
  await withProjectAndElsewhere(async ({ elsewhere, home }) => {
    const loose = join(elsewhere, "loose.flow.yaml");
    await Deno.writeTextFile(loose, FLOW);
    const result = await runCli(elsewhere, ["run", loose], { home });
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /warning/);
  });
});

Deno.test("a config from elsewhere naming an unmapped package: the hint names the project's deno.json, which exists", async () => {
  await withProjectAndElsewhere(async ({ project, elsewhere, home }) => {
    await Deno.writeTextFile(
      join(project, "deno.json"),
      JSON.stringify({
        imports: { "@example/flowstate-mapfile": "jsr:@example/flowstate-mapfile@^0.1" },
      }),
    );
    const config = join(elsewhere, "typo.yaml");
    await Deno.writeTextFile(
      config,
      'stores:\n  default: { plugin: "@example/flowstate-mapfil", path: x.json }\n',
    );
    const result = await runCli(project, ["stores", "--config", config], { home });
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /did you mean "@example\/flowstate-mapfile" \(mapped in \.\/deno\.json\)\? Or add "@example\/flowstate-mapfil": "jsr:@example\/flowstate-mapfil@<version>" to the imports of \.\/deno\.json\)$/m,
    );
    // No deno.json was ever beside the config.
    assert.doesNotMatch(result.stderr, new RegExp(`${join(elsewhere, "deno.json")}`));
  });
});
