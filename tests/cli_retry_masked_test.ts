/**
 * `flowstate runs retry` of a run whose inputs held a secret's value: its
 * record keeps them masked (`***`), so a retry, which runs with its record's
 * inputs, is refused (as `runs resume` is) rather than run with `***`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliOk, withCliProject } from "./_cli_sandbox.ts";

const FLOW = `id: m
inputs:
  who: { type: string }
nodes:
  - id: login
    type: transform
    mask: [token]
    with: { value: { token: "tok-abcdef-123456" } }
  - id: echo
    type: transform
    needs: [login]
    with: { value: "\${{ inputs.who }}" }
  - id: boom
    type: fail
    needs: [echo]
`;

Deno.test("runs retry of a run whose inputs were recorded masked is refused: it would run with ***", async () => {
  await withCliProject("flows: [./flows]\n", async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "m.flow.yaml"), FLOW);
    const failed = await run(
      "run",
      "flows/m.flow.yaml",
      "--input",
      "who=tok-abcdef-123456",
      "--json",
    );
    assert.equal(failed.code, 1, failed.stderr);
    const id = (JSON.parse(failed.stdout) as { id: string }).id;
    assert.match(await cliOk(run, "runs", "show", id), /inputs: +\{"who":"\*\*\*"\}/);
    const retried = await run("runs", "retry", id);
    assert.equal(retried.code, 1, retried.stdout);
    assert.match(
      retried.stderr,
      /error: Cannot retry run "[0-9a-z]+": its inputs held a secret's value and were recorded masked \(\*\*\*\)/,
    );
    // Nothing was written: the run is still failed, not queued.
    assert.match(await cliOk(run, "runs", "show", id), /status: +failed/);
  });
});
