/**
 * Review 12: resume and its preview against what a resume then does.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withCliProject } from "./_cli_sandbox.ts";
import { openRuntime } from "../mod.ts";

const memory = { stores: { main: { plugin: "memory" as const } } };

Deno.test("resumeRun: a node after an if:-skipped node whose if: reads env. is run again when the resume runs that node", async () => {
  await using rt = await openRuntime({ config: memory });
  const flow = (fail: boolean) => ({
    id: "skipping-env",
    env: ["R12_EXPRESS"],
    nodes: [
      { id: "order", type: "transform", with: { value: 1 } },
      {
        id: "express",
        type: "transform",
        needs: ["order"],
        if: '${{ env.R12_EXPRESS == "yes" }}',
        with: { value: "fast" },
      },
      {
        id: "label",
        type: "transform",
        needs: ["express"],
        with: { value: "${{ nodes.express.output }}" },
      },
      {
        id: "mail",
        type: fail ? "fail" : "transform",
        needs: ["label"],
        with: fail ? { message: "smtp down" } : { value: "sent" },
      },
    ],
  });
  Deno.env.set("R12_EXPRESS", "no");
  try {
    const failed = await rt.runFlow(flow(true));
    assert.equal(failed.nodes.express.status, "skipped");
    Deno.env.set("R12_EXPRESS", "yes");
    const preview = await rt.previewResume(failed.id, { flow: flow(false) });
    const resumed = await rt.resumeRun(failed.id, { flow: flow(false) });
    assert.equal(resumed.nodes.express.status, "succeeded", "its if: is true now");
    assert.equal(resumed.nodes.express.output, "fast");
    // label reads express's output: reused, it would keep the output of a run where express was skipped.
    assert.equal(resumed.nodes.label.output, "fast");
    assert.equal(resumed.nodes.label.reused, undefined);
    const label = preview.nodes.find((n) => n.node === "label")!;
    assert.equal(label.reused, false, "the preview says label runs again");
  } finally {
    Deno.env.delete("R12_EXPRESS");
  }
});

Deno.test("previewResume: refused as the resume is when the flow now needs an input the run did not have", async () => {
  await using rt = await openRuntime({ config: memory });
  const flow = (later: boolean) => ({
    id: "grown",
    ...(later ? { inputs: { who: { type: "string" } }, env: ["R12_UNSET_REGION"] } : {}),
    nodes: [
      { id: "a", type: "transform", with: { value: 1 } },
      later
        ? { id: "b", type: "transform", needs: ["a"], with: { value: "${{ inputs.who }}" } }
        : { id: "b", type: "fail", needs: ["a"], with: { message: "down" } },
    ],
  });
  const failed = await rt.runFlow(flow(false));
  assert.equal(failed.status, "failed");
  const resumed = await rt.resumeRun(failed.id, { flow: flow(true) }).then(
    () => undefined,
    (err: Error) => err,
  );
  assert.ok(resumed instanceof Error, "the resume is refused");
  const previewed = await rt.previewResume(failed.id, { flow: flow(true) }).then(
    () => undefined,
    (err: Error) => err,
  );
  assert.ok(previewed instanceof Error, "the preview is refused as the resume is");
  assert.equal(previewed.constructor, resumed.constructor);
  assert.equal(previewed.message, resumed.message);
});

Deno.test("runs resume --dry-run: exits 2 with the resume's own error when the run's inputs no longer fit the flow", async () => {
  await withCliProject("flows: [./flows]\n", async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    const file = join(dir, "flows", "grown.flow.yaml");
    await Deno.writeTextFile(
      file,
      "id: grown\nnodes:\n  - { id: a, type: transform, with: { value: 1 } }\n" +
        "  - { id: b, type: fail, needs: [a], with: { message: down } }\n",
    );
    const first = await run("run", "flows/grown.flow.yaml", "--json");
    assert.equal(first.code, 1, first.stderr);
    const id = JSON.parse(first.stdout).id;
    await Deno.writeTextFile(
      file,
      "id: grown\ninputs:\n  who: { type: string }\nnodes:\n" +
        "  - { id: a, type: transform, with: { value: 1 } }\n" +
        '  - { id: b, type: transform, needs: [a], with: { value: "${{ inputs.who }}" } }\n',
    );
    const dry = await run("runs", "resume", id, "--dry-run");
    const resumed = await run("runs", "resume", id);
    assert.equal(resumed.code, 2, resumed.stderr);
    assert.match(resumed.stderr, /inputs\.who: required/);
    assert.equal(dry.code, 2, dry.stdout);
    assert.equal(dry.stderr, resumed.stderr);
  });
});
