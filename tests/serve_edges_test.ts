/**
 * Error answers of the HTTP API a new user hits: a run id that is not one,
 * a job's bad options; one clear message each, no prefix said twice.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { documented, withServed } from "./_serve.ts";

const SQLITE = (dir: string) => ({ main: { plugin: "sqlite", path: join(dir, "state.db") } });

Deno.test("a run id that is not one is a 400 with one message; a well-formed unknown id is a 404", async () => {
  await withServed(SQLITE, async ({ request }) => {
    for (
      const [method, pattern, path] of [
        ["POST", "/api/runs/{id}/cancel", "/api/runs/nope/cancel"],
        ["GET", "/api/runs/{id}", "/api/runs/nope"],
        ["GET", "/api/runs/{id}/changes", "/api/runs/nope/changes"],
      ]
    ) {
      const res = await request(path, { method });
      assert.equal(res.status, 400, path);
      const body = await documented<{ error: { code: string; message: string } }>(
        method,
        pattern,
        res,
      );
      assert.equal(body.error.code, "bad_request");
      assert.equal(
        body.error.message,
        '"nope" is not a run id: expected 20 lowercase letters or digits, as `flowstate runs ls` shows',
      );
      const unknown = await request(path.replace("nope", "0mjuw3ms0abcdefghijk"), { method });
      assert.equal(unknown.status, 404, path);
      assert.equal(
        (await documented<{ error: { message: string } }>(method, pattern, unknown)).error.message,
        "No run 0mjuw3ms0abcdefghijk",
      );
    }
  });
});

Deno.test("POST /api/jobs/{name}/runs with bad options: 400, the job named once", async () => {
  await withServed(SQLITE, async ({ request }) => {
    const res = await request("/api/jobs/gc/runs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ options: { bogus: 1 } }),
    });
    assert.equal(res.status, 400);
    const body = await documented<{ error: { message: string } }>(
      "POST",
      "/api/jobs/{name}/runs",
      res,
    );
    assert.match(body.error.message, /^Cannot start job "gc": /);
    assert.equal(body.error.message.match(/job "gc"/g)?.length, 1, body.error.message);
  });
});

Deno.test("serve: a method a route does not take is a 405 whose Allow header and message name those it takes", async () => {
  await withServed(SQLITE, async ({ request }) => {
    for (
      const [method, path, allow] of [
        ["DELETE", "/api/runs", "GET, HEAD"],
        ["PATCH", "/api/stores/main/entry?key=a", "GET, HEAD, PUT, DELETE"],
        ["GET", "/api/session", "POST"],
      ]
    ) {
      const res = await request(path, { method });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
      const body = await res.json();
      assert.equal(body.error.code, "bad_request");
      assert.match(body.error.message, new RegExp(`does not take ${method}: it takes ${allow}`));
    }
  });
});

Deno.test("serve: an unknown field inside a body's object names that object's fields; a missing one is said missing", async () => {
  await withServed(SQLITE, async ({ request }) => {
    const res = await request("/api/flows/hello/runs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ backoff: { dealy: "1s" } }),
    });
    assert.equal(res.status, 400);
    const body = await documented<{ error: { message: string } }>(
      "POST",
      "/api/flows/{flow}/runs",
      res,
    );
    assert.equal(
      body.error.message,
      "Invalid body of POST /api/flows/hello/runs: backoff.delay: missing required field; " +
        'backoff.dealy: unknown field (did you mean "delay"?); the fields are delay, factor, max',
    );
  });
});

Deno.test("serve: a query parameter on a route that takes none is a 400; /health and /metrics take any", async () => {
  await withServed(SQLITE, async ({ request }) => {
    for (
      const [method, pattern, path] of [
        ["GET", "/api/flows/{flow}/versions", "/api/flows/hello/versions?limit=1"],
        ["GET", "/api/stores", "/api/stores?store=main"],
        ["POST", "/api/runs/{id}/cancel", "/api/runs/0mxdnsxmsoeb0cho4hon/cancel?wait=true"],
      ]
    ) {
      const res = await request(
        path,
        method === "POST"
          ? { method, headers: { "content-type": "application/json" }, body: "{}" }
          : {},
      );
      assert.equal(res.status, 400, path);
      const body = await documented<{ error: { message: string } }>(method, pattern, res);
      assert.match(
        body.error.message,
        new RegExp(`^Unknown query parameter "\\w+" for ${method} \\S+: it takes none$`),
      );
    }
    for (const path of ["/health?probe=1", "/metrics?name[]=x"]) {
      const res = await request(path);
      assert.equal(res.status, 200, path);
      await res.body?.cancel();
    }
  });
});

Deno.test("serve: a query parameter that takes one value, given twice, is a 400; a repeatable one takes many", async () => {
  await withServed(SQLITE, async ({ request }) => {
    const res = await request("/api/runs?status=running&status=failed");
    assert.equal(res.status, 400);
    const body = await documented<{ error: { message: string } }>("GET", "/api/runs", res);
    assert.equal(
      body.error.message,
      "Query parameter status is given 2 times (status=running&status=failed) for GET /api/runs, which takes one: give it once",
    );
    const events = await request("/api/events?flow=a&flow=b&run=0mxdnsxmsoeb0cho4hon");
    assert.equal(events.status, 200);
    await events.body?.cancel();
    const keys = await request("/api/stores/main/entry?key=a&key=b");
    assert.equal(keys.status, 404);
    await keys.body?.cancel();
  });
});

Deno.test("serve: a JSON body that is not UTF-8 is a 400 naming the byte, nothing stored (it was stored with U+FFFD in its place)", async () => {
  await withServed(SQLITE, async ({ runtime, request }) => {
    const latin1 = new Uint8Array([...new TextEncoder().encode('{"value":"caf'), 0xe9, 0x22, 0x7d]);
    const res = await request("/api/stores/main/entry?key=latin", {
      method: "PUT",
      headers: { "content-type": "application/json; charset=latin1", "if-none-match": "*" },
      body: latin1,
    });
    assert.equal(res.status, 400);
    const body = await documented<{ error: { message: string } }>(
      "PUT",
      "/api/stores/{store}/entry",
      res,
    );
    assert.match(
      body.error.message,
      /^Cannot read the request body: it is not UTF-8 \(byte 14 is 0xe9\); JSON is UTF-8/,
    );
    assert.equal(await (await runtime.store("main")).get(["latin"]), null);
    // UTF-8 is taken as it is.
    const utf8 = await request("/api/stores/main/entry?key=latin", {
      method: "PUT",
      headers: { "content-type": "application/json", "if-none-match": "*" },
      body: JSON.stringify({ value: "café" }),
    });
    assert.equal(utf8.status, 200);
    assert.equal((await utf8.json()).value, "café");
  });
});

Deno.test("serve() over a runtime that was closed answers 503 runtime_closed, and /health says the runtime is closed", async () => {
  await withServed(SQLITE, async ({ request, runtime }) => {
    assert.equal((await request("/api/runs")).status, 200);
    await runtime.close();
    for (
      const [pattern, path] of [
        ["/api/runs", "/api/runs"],
        ["/api/flows", "/api/flows"],
        ["/api/stores/{store}/entry", "/api/stores/main/entry?key=k"],
        ["/api/workers", "/api/workers"],
        ["/metrics", "/metrics"],
      ]
    ) {
      const res = await request(path);
      assert.equal(res.status, 503, path);
      const body = await documented<{ error: { code: string; message: string } }>(
        "GET",
        pattern,
        res,
      );
      assert.equal(body.error.code, "runtime_closed", path);
      assert.match(body.error.message, /^The runtime this server serves is closed: /, path);
    }
    const health = await request("/health");
    assert.equal(health.status, 503);
    const body = await documented<{ status: string; error?: string }>("GET", "/health", health);
    assert.equal(body.status, "unavailable");
    assert.match(body.error ?? "", /^The runtime this server serves is closed/);
  }, { worker: false });
});
