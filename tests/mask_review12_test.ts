/**
 * Review 12: a value a run masks (`mask:`, `ctx.mask`) that is also one of
 * its inputs.
 *
 * @module
 */
import assert from "node:assert/strict";
import { openRuntime, ResumeRefusedError } from "../mod.ts";

const memory = { stores: { main: { plugin: "memory" as const } } };

Deno.test("runFlow: an input whose value a node masks (mask:) is *** in the run's record at its end, which says inputsMasked (a resume is refused)", async () => {
  await using rt = await openRuntime({ config: memory });
  const flow = {
    id: "masks-input",
    inputs: { password: { type: "string" } },
    nodes: [
      { id: "login", type: "transform", mask: true, with: { value: "${{ inputs.password }}" } },
      { id: "use", type: "log", needs: ["login"], with: { message: "pw ${{ inputs.password }}" } },
      { id: "down", type: "fail", needs: ["use"], with: { message: "smtp down" } },
    ],
  };
  const run = await rt.runFlow(flow, { input: { password: "hunter22-pw" } });
  assert.equal(run.nodes.login.output, "***");
  assert.deepEqual(run.inputs, { password: "***" }, "the record runFlow returns");
  assert.equal(run.inputsMasked, true);
  const stored = (await (await rt.records()).getRun(run.id))!;
  assert.deepEqual(stored.inputs, { password: "***" }, "the record stored");
  assert.equal(stored.inputsMasked, true);
  await assert.rejects(
    rt.previewResume(run.id, { flow }),
    (err: Error) => err instanceof ResumeRefusedError && err.reason === "masked",
  );
});
