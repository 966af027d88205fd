/**
 * `GET /api/flows/{flow}/graph` of a flow whose file under the config's
 * flows is not valid (and was never run): a 400 saying what is wrong, at
 * file:line:column, not "no flow".
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { documented, withServed } from "./_serve.ts";

Deno.test("serve API: the graph of a flow whose file is invalid says why (400, file:line:column), not 404", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, request }) => {
    await Deno.writeTextFile(
      join(dir, "flows", "broken.flow.yaml"),
      "id: broken\nnodes:\n  - { id: a, type: log, needs: [nope], with: { message: hi } }\n",
    );
    const answer = await documented<{ error: { message: string } }>(
      "GET",
      "/api/flows/{flow}/graph",
      await request("/api/flows/broken/graph"),
    );
    assert.match(
      answer.error.message,
      /^Cannot draw flow "broken": its file is not a valid flow: .*broken\.flow\.yaml:3:\d+: nodes\[0\]\.needs\[0\]: unknown node "nope"; fix it \(flowstate validate flows\/broken\.flow\.yaml says the same\)$/,
    );
    // A flow that is nowhere is still 404.
    const missing = await request("/api/flows/nowhere/graph");
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });
});
