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
