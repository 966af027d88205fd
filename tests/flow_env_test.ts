/**
 * A flow's `env:` list: a listed variable that is not set stops the run
 * before anything is written (unless every read of it has a `default(…)`),
 * and `validate` warns about it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";

const NAME = "FLOWSTATE_TEST_UNSET_TOKEN";

const FLOW = `id: envy
env: [${NAME}, FLOWSTATE_TEST_UNSET_REGION]
nodes:
  - id: a
    type: transform
    with:
      value:
        token: "\${{ env.${NAME} }}"
        region: "\${{ default(env.FLOWSTATE_TEST_UNSET_REGION, 'eu') }}"
outputs: { out: "\${{ nodes.a.output }}" }
`;

Deno.test("a variable listed in env: but not set fails the run before it starts; one read through default() may be unset", async () => {
  assert.equal(Deno.env.get(NAME), undefined, `${NAME} must not be set for this test`);
  await withSandbox(async ({ dir, run, runWith }) => {
    await Deno.writeTextFile(join(dir, "envy.flow.yaml"), FLOW);
    const failed = await run("run", "envy.flow.yaml");
    assert.equal(failed.code, 2, failed.stderr);
    assert.equal(
      failed.stderr.trim(),
      `error: envy.flow.yaml:2:7: env[0]: env ${NAME} is listed in env: but not set: export it (export ${NAME}=…) before running, or read it as default(env.${NAME}, <fallback>) in every template where the flow can go without it`,
    );
    const runs = await run("runs", "ls", "--json");
    assert.deepEqual(JSON.parse(runs.stdout || "[]"), [], "no run was recorded");

    const validate = await run("validate", "envy.flow.yaml");
    assert.equal(validate.code, 0, validate.stderr);
    assert.match(
      validate.stderr,
      new RegExp(
        `^warning: envy\\.flow\\.yaml: env ${NAME} is listed in env: but not set: .*a run started from this environment would fail before it starts\\)$`,
        "m",
      ),
    );
    assert.doesNotMatch(validate.stderr, /FLOWSTATE_TEST_UNSET_REGION/);

    const ok = await runWith({ [NAME]: "t0k" }, "run", "envy.flow.yaml", "--json");
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout).outputs, { out: { token: "t0k", region: "eu" } });
  });
});
