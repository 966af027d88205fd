import assert from "node:assert/strict";
import { apiRoutes } from "./api.ts";
import { openApiDocument } from "./openapi.ts";
import { pathParams, Router } from "./router.ts";

type Operation = {
  parameters: { name: string; in: string; required: boolean }[];
  responses: Record<string, unknown>;
  requestBody?: unknown;
};

Deno.test("openApiDocument() describes every route of the table with its method and parameters", () => {
  const doc = openApiDocument(apiRoutes) as {
    openapi: string;
    paths: Record<string, Record<string, Operation>>;
  };
  assert.equal(doc.openapi, "3.1.0");
  for (const route of apiRoutes) {
    const op = doc.paths[route.path]?.[route.method.toLowerCase()];
    assert.ok(op, `${route.method} ${route.path} is missing from the document`);
    const inPath = op.parameters.filter((p) => p.in === "path").map((p) => p.name);
    assert.deepEqual(
      inPath,
      pathParams(route.path),
      `${route.method} ${route.path}: path parameters`,
    );
    const inQuery = op.parameters.filter((p) => p.in === "query").map((p) => p.name);
    assert.deepEqual(inQuery, (route.query ?? []).map((q) => q.name), `${route.path}: query`);
    assert.deepEqual(
      Object.keys(op.responses).sort(),
      Object.keys(route.responses).sort(),
      `${route.method} ${route.path}: responses`,
    );
    assert.equal(op.requestBody !== undefined, route.body !== undefined, `${route.path}: body`);
  }
  // And nothing in the document that the router does not serve.
  const router = new Router(apiRoutes);
  for (const [path, operations] of Object.entries(doc.paths)) {
    if (path === "/hooks/{path}") continue; // webhooks: src/serve/webhooks_test.ts
    for (const method of Object.keys(operations)) {
      const concrete = path.replace(/\{[^}]+\}/g, "x");
      const match = router.match(method.toUpperCase(), concrete);
      assert.ok(
        match !== null && match !== "method",
        `${method} ${path} is documented but not routed`,
      );
      assert.equal(match.route.path, path);
    }
  }
});

Deno.test("Router.match() decodes path parameters and tells an unknown method from an unknown path", () => {
  const router = new Router(apiRoutes);
  const match = router.match("GET", "/api/runs/a%20b");
  assert.ok(match !== null && match !== "method");
  assert.equal(match.route.path, "/api/runs/{id}");
  assert.deepEqual(match.params, { id: "a b" });
  assert.equal(router.match("DELETE", "/api/runs/x"), "method");
  assert.equal(router.match("GET", "/api/nope"), null);
  assert.equal(router.match("GET", "/api/runs/"), null, "an empty parameter matches nothing");
});

Deno.test("openApiDocument(): every route that takes query parameters documents the 400 an unknown one gets; the error codes include precondition_required", () => {
  for (const route of apiRoutes) {
    if ((route.query ?? []).length === 0) continue;
    assert.ok(route.responses[400], `${route.method} ${route.path} does not document 400`);
  }
  const doc = JSON.stringify(openApiDocument(apiRoutes));
  assert.match(doc, /"precondition_required"/, "the error codes are listed");
});

Deno.test("openApiDocument(): every route that reads or writes a store documents the 503 store_unavailable, with the store's name", () => {
  // Routes that touch no store, or answer a store that cannot be reached in their own body.
  const noStore = new Set(["/health", "/api/openapi.json", "/api/session", "/api/stores"]);
  for (const route of apiRoutes) {
    if (noStore.has(route.path)) continue;
    assert.ok(route.responses[503], `${route.method} ${route.path} does not document 503`);
  }
  const doc = JSON.stringify(openApiDocument(apiRoutes));
  assert.match(doc, /"store_unavailable"/, "the error codes list store_unavailable");
  const runs = (openApiDocument(apiRoutes) as {
    paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  }).paths["/api/runs"].get.responses["503"];
  assert.match(JSON.stringify(runs), /"store"/, "the 503 body names the store");
});
