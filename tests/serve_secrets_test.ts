/**
 * A flow's `secrets:` through `flowstate serve`: the run's record, its nodes
 * and the event stream show `***` where the secret's value was.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withServed } from "./_serve.ts";

const NAME = "FLOWSTATE_TEST_SERVE_SECRET";
const SECRET = "serve-S3cret-value";

const FLOW = `id: secretive
secrets: [${NAME}]
nodes:
  - { id: say, type: log, with: { message: "token \${{ secrets.${NAME} }}" } }
  - { id: keep, type: transform, with: { value: { auth: "Bearer \${{ secrets.${NAME} }}" } } }
  - { id: boom, type: fail, needs: [keep], with: { message: "denied for \${{ nodes.keep.output.auth }}" } }
`;

Deno.test("serve: the API and the event stream show a secret's value as ***", async () => {
  Deno.env.set(NAME, SECRET);
  try {
    await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, server, request }) => {
      await Deno.writeTextFile(join(dir, "flows", "secretive.flow.yaml"), FLOW);
      const source = new EventSource(new URL("/api/events?flow=secretive", server.url));
      const got: string[] = [];
      let ended = false;
      let notify = () => {};
      for (const type of ["run.started", "node", "run.ended"]) {
        source.addEventListener(type, (e) => {
          got.push((e as MessageEvent).data);
          if (type === "run.ended") ended = true;
          notify();
        });
      }
      try {
        await new Promise((resolve, reject) => {
          source.onopen = resolve;
          source.onerror = reject;
        });
        const started = await request("/api/flows/secretive/runs?wait=true", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}",
        });
        const text = await started.text();
        assert.equal(started.status, 200, text);
        assert.ok(!text.includes(SECRET), text);
        const { run } = JSON.parse(text);
        assert.equal(run.status, "failed");
        assert.equal(run.error.message, "denied for Bearer ***");
        while (!ended) {
          await new Promise<void>((resolve) => (notify = resolve));
        }
        const stream = got.join("\n");
        assert.ok(stream.includes("token ***"), stream);
        assert.ok(!stream.includes(SECRET), stream);
        for (const path of [`/api/runs/${run.id}`, `/api/runs/${run.id}/nodes`]) {
          const response = await request(path);
          const body = await response.text();
          assert.equal(response.status, 200, body);
          assert.ok(body.includes("***"), `${path}: ${body}`);
          assert.ok(!body.includes(SECRET), `${path}: ${body}`);
        }
      } finally {
        source.close();
      }
    });
  } finally {
    Deno.env.delete(NAME);
  }
});
