/**
 * The permissions docs/flows.md documents for scripting, proved by running a
 * child with exactly those (none): a memory store, a runtime from a config
 * object with a `home`, a flow run and a built-in job.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

Deno.test("a program with no permission flags opens a memory store, runs a flow and a built-in job, and prints nothing", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "tests/fixtures/scripting/no_permissions.ts"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(stderr, "", "the library never prints");
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), {
    store: 1,
    run: "succeeded",
    runs: 1,
    job: "succeeded",
  });
});
