import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

// examples/plugin-template is a project of its own (its deno.json links this
// repository as jsr:@flowstate/core), not part of the root package, so the
// root run excludes it and runs it here, from its own directory, as its
// author would. --no-lock: the template's lock is for its authors; a run here
// must not rewrite it when the core's dependencies change.
const TEMPLATE = fileURLToPath(new URL("../examples/plugin-template/", import.meta.url));

async function inTemplate(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: TEMPLATE,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, `deno ${args.join(" ")} in ${TEMPLATE} failed:\n${out}`);
  return out;
}

Deno.test("the plugin template passes the conformance suite and its doc example", async () => {
  const out = await inTemplate(
    "test",
    "--no-lock",
    "--doc",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--allow-sys",
  );
  assert.match(out, /template: Store conformance \.\.\. ok/);
  assert.match(out, /mod\.ts#\d+-\d+\.ts \.\.\. ok/, "the module's doc example ran");
  assert.match(out, /\| 0 failed/);
});

Deno.test("the plugin template is publishable (deno publish --dry-run)", async () => {
  const out = await inTemplate("publish", "--dry-run", "--allow-dirty", "--no-lock");
  assert.match(out, /Simulating publish of @example\/flowstate-plugin-template@0\.1\.0/);
  assert.doesNotMatch(out, /mod_test\.ts/, "tests are not published");
});
