/**
 * The OpenAPI 3.1 document of `flowstate serve`, built from the route table
 * the router serves (`api.ts`), so that it cannot drift from the routes.
 *
 * @module
 */
import { z } from "zod";
import denoJson from "../../deno.json" with { type: "json" };
import { pathParams, type Route } from "./router.ts";

type Json = Record<string, unknown>;

function schemaOf(schema: z.ZodType): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    io: "output",
    unrepresentable: "any",
  }) as Json;
  return rest;
}

/** The OpenAPI document of `routes`. */
export function openApiDocument<S>(routes: readonly Route<S>[]): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of routes) {
    const parameters: Json[] = [
      ...pathParams(route.path).map((name) => ({
        name,
        in: "path",
        required: true,
        schema: { type: "string" },
      })),
      ...(route.query ?? []).map((q) => ({
        name: q.name,
        in: "query",
        description: q.description,
        required: q.required ?? false,
        ...(q.repeated
          ? { schema: { type: "array", items: { type: q.type } }, style: "form", explode: true }
          : { schema: { type: q.type } }),
      })),
      ...(route.headers ?? []).map((h) => ({
        name: h.name,
        in: "header",
        description: h.description,
        required: false,
        schema: { type: "string" },
      })),
    ];
    const responses: Record<string, Json> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.schema
          ? { content: { "application/json": { schema: schemaOf(response.schema) } } }
          : response.contentType
          ? { content: { [response.contentType]: {} } }
          : {}),
      };
    }
    const operation: Json = {
      operationId: `${route.method.toLowerCase()}${
        route.path.replace(/[{}]/g, "").split(/[/.]/).map((p) =>
          p.charAt(0).toUpperCase() + p.slice(1)
        ).join("")
      }`,
      summary: route.summary,
      tags: [route.tag],
      parameters,
      responses,
      ...(route.open ? { security: [] } : {}),
      ...(route.body
        ? {
          requestBody: {
            required: true,
            content: { "application/json": { schema: schemaOf(route.body) } },
          },
        }
        : {}),
    };
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  // Webhooks: answered by src/serve/webhooks.ts, for the paths flows declare.
  const webhook = (method: string): Json => ({
    summary: `Run the flow declaring trigger: { http: { path: /hooks/{path}, method: ${method} } }`,
    description:
      "No token: a flow's `secret: { env: NAME }` requires `X-Flowstate-Signature: sha256=<hex HMAC-SHA256 of the raw body>` " +
      "(or `X-Hub-Signature-256`). The body (JSON, form fields or text; at most 1 MiB, within 10 s) " +
      "becomes inputs through the flow's `trigger.http.inputs`.",
    security: [],
    parameters: [
      { name: "path", in: "path", required: true, schema: { type: "string" } },
      { name: "wait", in: "query", required: false, schema: { type: "boolean" } },
    ],
    requestBody: { required: false, content: { "*/*": { schema: {} } } },
    responses: {
      200: { description: "With wait=true: `{ run }` at the run's end" },
      202: { description: "`{ runId }` once the run started; Location: /api/runs/{id}" },
      400: { description: "Bad body or inputs" },
      401: { description: "Missing or wrong signature" },
      404: { description: "No flow declares this path" },
      405: { description: "The flow declares the other method" },
      408: { description: "The body did not arrive within 10 s" },
      413: { description: "The body is over 1 MiB" },
      503: {
        description:
          "A store the run needs cannot be reached: `{ error: { code: store_unavailable }, store }`",
      },
    },
  });
  paths["/hooks/{path}"] = { post: webhook("POST"), put: webhook("PUT") };
  return {
    openapi: "3.1.0",
    info: {
      title: "Flowstate",
      version: denoJson.version,
      description:
        "The HTTP API of `flowstate serve`: state, runs, flows, jobs, metrics. Errors are " +
        "`{ error: { code, message } }`; keys are arrays of strings, passed as repeated query " +
        "parameters. Writes are compare-and-set (If-Match).",
    },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer" },
        cookie: { type: "apiKey", in: "cookie", name: "flowstate_token" },
      },
    },
    security: [{ bearer: [] }, { cookie: [] }],
    paths,
  };
}
