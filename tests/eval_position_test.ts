/**
 * A template that fails as it is evaluated says where it is: in a flow given
 * to `runtime.runFlow()` as a definition (no file), by its path in the
 * definition; in a flow file run through the HTTP API, at file:line:column.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime } from "../mod.ts";
import { withServed } from "./_serve.ts";

Deno.test("runFlow() of a definition: a template that fails when run is placed by its path, without a position", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const run = await rt.runFlow({
    id: "defined",
    inputs: { n: { type: "any", default: "3" }, z: { type: "number", default: 0 } },
    nodes: [
      { id: "a", type: "log", with: { message: "hi" } },
      {
        id: "b",
        type: "transform",
        continueOnError: true,
        with: { value: { lines: ["ok", "${{ round(inputs.n) }}"] } },
      },
      {
        id: "c",
        type: "log",
        continueOnError: true,
        if: "${{ 1 / inputs.z }}",
        with: { message: "x" },
      },
      {
        id: "d",
        type: "log",
        continueOnError: true,
        forEach: "${{ inputs.n }}",
        with: { message: "${{ item }}" },
      },
    ],
    outputs: { fine: "${{ inputs.z }}", "my total": "${{ round(inputs.n) }}" },
  });
  assert.equal(run.status, "failed");
  assert.equal(
    run.nodes.b.error,
    "nodes[1].with.value.lines[1]: Cannot evaluate ${{ round(inputs.n) }}: round() takes a number as value, got string",
  );
  assert.equal(
    run.nodes.c.error,
    "nodes[2].if: Cannot evaluate ${{ 1 / inputs.z }}: 1 / 0 is Infinity, which is not a finite number",
  );
  assert.equal(run.nodes.d.error, 'nodes[3].forEach: expected a list, got "3"');
  assert.deepEqual(run.error, {
    message:
      'outputs["my total"]: Cannot evaluate ${{ round(inputs.n) }}: round() takes a number as value, got string',
  });
});

Deno.test("serve: the API shows a node's evaluation error with its place in the flow file", async () => {
  await withServed(
    (dir) => ({ main: { plugin: "sqlite", path: join(dir, "state.db") } }),
    async ({ dir, request }) => {
      await Deno.writeTextFile(
        join(dir, "flows", "late.flow.yaml"),
        'id: late\ninputs:\n  n: { type: any, default: "3" }\nnodes:\n  - id: r\n    type: log\n    with: { message: "n is ${{ round(inputs.n) }}" }\n',
      );
      const response = await request("/api/flows/late/runs?wait=true", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      const body = await response.json();
      assert.equal(response.status, 200, JSON.stringify(body));
      const message = body.run.nodes.r.error;
      assert.match(
        message,
        /^\S*late\.flow\.yaml:7:32: nodes\[0\]\.with\.message: Cannot evaluate \$\{\{ round\(inputs\.n\) \}\}: round\(\) takes/,
      );
      const shown = await (await request(`/api/runs/${body.run.id}`)).json();
      assert.equal(shown.run.nodes.r.error, message);
    },
  );
});
