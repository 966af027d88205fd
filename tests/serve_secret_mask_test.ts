/**
 * A token a run obtains (an `http` node's `mask:`) through `flowstate serve`:
 * the next node sends the real token, while the API the inspector reads (the
 * run, its nodes, its events) and the event stream show `***`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withServed } from "./_serve.ts";

const TOKEN = "served-T0ken/9c8b7a6d";
const COOKIE = "served-sid-5e4f3a2b";

Deno.test("serve: the API and the event stream show a token a node obtained (mask:) as ***", async () => {
  const seen: (string | null)[] = [];
  const api = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    if (new URL(req.url).pathname === "/token") {
      const headers = new Headers({ "set-cookie": `sid=${COOKIE}; Path=/` });
      return Response.json({ access_token: TOKEN, expires_in: 60 }, { headers });
    }
    seen.push(req.headers.get("authorization"));
    return Response.json({ ok: true });
  });
  const flow = `id: obtained
nodes:
  - id: token
    type: http
    permissions: { net: ["127.0.0.1"] }
    mask: [body.access_token]
    with: { url: "http://127.0.0.1:${api.addr.port}/token", method: POST }
  - id: call
    type: http
    needs: [token]
    permissions: { net: ["127.0.0.1"] }
    with:
      url: "http://127.0.0.1:${api.addr.port}/api"
      headers: { Authorization: "Bearer \${{ nodes.token.output.body.access_token }}" }
  - { id: say, type: log, needs: [token], with: { message: "token \${{ nodes.token.output.body.access_token }}" } }
`;
  try {
    await withServed(() => ({ main: { plugin: "memory" } }), async ({ dir, server, request }) => {
      await Deno.writeTextFile(join(dir, "flows", "obtained.flow.yaml"), flow);
      const source = new EventSource(new URL("/api/events?flow=obtained", server.url));
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
        const started = await request("/api/flows/obtained/runs?wait=true", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}",
        });
        const text = await started.text();
        assert.equal(started.status, 200, text);
        const { run } = JSON.parse(text);
        assert.equal(run.status, "succeeded", text);
        assert.deepEqual(seen, [`Bearer ${TOKEN}`]);
        for (const secret of [TOKEN, COOKIE]) assert.ok(!text.includes(secret), text);
        while (!ended) {
          await new Promise<void>((resolve) => (notify = resolve));
        }
        const stream = got.join("\n");
        assert.ok(stream.includes("token ***"), stream);
        for (const secret of [TOKEN, COOKIE]) assert.ok(!stream.includes(secret), stream);
        for (
          const path of [
            `/api/runs/${run.id}`,
            `/api/runs/${run.id}/nodes`,
            `/api/runs/${run.id}?after=0`,
          ]
        ) {
          const response = await request(path);
          const body = await response.text();
          assert.equal(response.status, 200, body);
          assert.ok(body.includes("***"), `${path}: ${body}`);
          for (const secret of [TOKEN, COOKIE]) {
            assert.ok(!body.includes(secret), `${path}: ${body}`);
          }
        }
      } finally {
        source.close();
      }
    });
  } finally {
    await api.shutdown();
  }
});
