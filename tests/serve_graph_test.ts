/**
 * The graph a flow's answers carry for the inspector: `GET
 * /api/flows/{flow}/graph` (of the config's file, else of the newest
 * recorded version), and `graph` beside the definition of a version and of a
 * run's definition — the same nodes and edges `flowstate graph` draws.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { documented, withServed } from "./_serve.ts";

const NIGHTLY = `id: nightly
nodes:
  - { id: lock, type: state.set, with: { key: lock, value: 1 } }
  - { id: each, type: log, needs: [lock], forEach: [1, 2], with: { message: "\${{ item }}" } }
  - { id: big, type: log, needs: [lock], if: "\${{ false }}", with: { message: big } }
  - { id: alert, type: log, when: on_failure, with: { message: failed } }
`;

const NODES = [
  { id: "lock", type: "state.set", when: "on_success", if: null, forEach: null, subFlow: null },
  { id: "each", type: "log", when: "on_success", if: null, forEach: "2 items", subFlow: null },
  { id: "big", type: "log", when: "on_success", if: "${{ false }}", forEach: null, subFlow: null },
  { id: "alert", type: "log", when: "on_failure", if: null, forEach: null, subFlow: null },
];
const EDGES = [
  { from: "lock", to: "each", kind: "needs" },
  { from: "lock", to: "big", kind: "needs" },
  { from: "each", to: "alert", kind: "end" },
  { from: "big", to: "alert", kind: "end" },
];

type GraphAnswer = {
  from: string;
  file?: string;
  hash?: string;
  graph: { nodes: unknown[]; edges: unknown[] };
};

Deno.test("serve API: a flow's graph, of its file, then of its newest version once the file is gone; graph beside a version's and a run's definition", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, request }) => {
    const file = join(dir, "flows", "nightly.flow.yaml");
    await Deno.writeTextFile(file, NIGHTLY);
    const fromFile = await documented<GraphAnswer>(
      "GET",
      "/api/flows/{flow}/graph",
      await request("/api/flows/nightly/graph"),
    );
    assert.deepEqual(fromFile, {
      from: "file",
      file: join("flows", "nightly.flow.yaml"),
      graph: { nodes: NODES, edges: EDGES },
    });

    const started = await request("/api/flows/nightly/runs?wait=true", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(started.status, 200, await started.clone().text());
    const runId = (await started.json()).run.id;
    const definition = await documented<GraphAnswer>(
      "GET",
      "/api/runs/{id}/definition",
      await request(`/api/runs/${runId}/definition`),
    );
    assert.deepEqual(definition.graph, { nodes: NODES, edges: EDGES });
    const version = await documented<GraphAnswer>(
      "GET",
      "/api/flows/{flow}/versions/{hash}",
      await request(`/api/flows/nightly/versions/${definition.hash}`),
    );
    assert.deepEqual(version.graph, { nodes: NODES, edges: EDGES });

    await Deno.remove(file);
    const fromVersion = await documented<GraphAnswer>(
      "GET",
      "/api/flows/{flow}/graph",
      await request("/api/flows/nightly/graph"),
    );
    assert.deepEqual(fromVersion, {
      from: "version",
      hash: definition.hash,
      graph: { nodes: NODES, edges: EDGES },
    });

    const none = await request("/api/flows/nope/graph");
    assert.equal(none.status, 404);
    assert.match(
      (await documented<{ error: { message: string } }>("GET", "/api/flows/{flow}/graph", none))
        .error.message,
      /No flow "nope" in the config's flows, nor a recorded version of it/,
    );
  });
});
