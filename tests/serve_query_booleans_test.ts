/**
 * A boolean query parameter (`wait`, `archived`, `again`) is `true` or
 * `false`: any other value (`?wait=1`, `?wait=yes`, a bare `?wait`) is a 400
 * naming it, and nothing is enqueued — it used to be read as false in silence,
 * so a script asking to wait got a queued run back instead of its end.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { ConfigObject } from "../mod.ts";
import { documented, withServed } from "./_serve.ts";

const SQLITE = (dir: string): ConfigObject["stores"] => ({
  main: { plugin: "sqlite", path: join(dir, "state.db") },
});
const JSON_BODY = { headers: { "content-type": "application/json" }, body: "{}" };

Deno.test("serve: a boolean query parameter other than true or false is a 400, nothing enqueued", async () => {
  await withServed(SQLITE, async ({ dir, request }) => {
    await Deno.writeTextFile(
      join(dir, "flows", "hook.flow.yaml"),
      "id: hook\ntrigger: { http: { path: /hooks/go } }\nnodes:\n  - { id: a, type: log, with: { message: hi } }\n",
    );
    for (
      const [method, pattern, path] of [
        ["POST", "/api/flows/{flow}/runs", "/api/flows/hello/runs?wait=1"],
        ["POST", "/api/flows/{flow}/runs", "/api/flows/hello/runs?wait"],
        ["POST", "/api/jobs/{name}/runs", "/api/jobs/gc/runs?wait=yes"],
        ["GET", "/api/runs", "/api/runs?archived="],
        ["GET", "/api/runs", "/api/runs?archived=1"],
      ]
    ) {
      const res = await request(path, method === "POST" ? { method, ...JSON_BODY } : {});
      assert.equal(res.status, 400, path);
      const body = await documented<{ error: { message: string } }>(method, pattern, res);
      assert.match(body.error.message, /^Invalid query parameter \w+=\w*: expected true or false$/);
    }
    const hook = await request("/hooks/go?wait=1", { method: "POST", ...JSON_BODY });
    assert.equal(hook.status, 400);
    assert.equal(
      (await hook.json()).error.message,
      "Invalid query parameter wait=1: expected true or false",
    );
    const runs = await documented<{ runs: unknown[] }>(
      "GET",
      "/api/runs",
      await request("/api/runs"),
    );
    assert.deepEqual(runs.runs, []);
    // true and false are taken.
    const queued = await request("/api/flows/hello/runs?wait=false", {
      method: "POST",
      ...JSON_BODY,
    });
    assert.equal(queued.status, 202);
    await queued.body?.cancel();
    const ended = await request("/api/flows/hello/runs?wait=true", {
      method: "POST",
      ...JSON_BODY,
    });
    assert.equal(ended.status, 200);
    assert.equal((await ended.json()).run.status, "succeeded");
  });
});
