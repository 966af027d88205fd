import assert from "node:assert/strict";
import { parseFlow } from "./parse.ts";
import { flowJsonSchema, flowSchema } from "./schema.ts";
import { EXAMPLE } from "./_test_utils.ts";

Deno.test("flowSchema checks the structure of the example flow", () => {
  const definition = parseFlow(EXAMPLE).definition;
  assert.deepEqual(flowSchema.parse(definition), definition);
  assert.equal(flowSchema.safeParse({ id: "x" }).success, false);
});

Deno.test("flowJsonSchema() describes the flow format as JSON Schema 2020-12", () => {
  const schema = flowJsonSchema() as {
    $schema: string;
    $id: string;
    title: string;
    required: string[];
    additionalProperties: boolean;
    properties: Record<string, Record<string, unknown>>;
  };
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.equal(schema.$id, "https://jsr.io/@flowstate/core/flow.schema.json");
  assert.equal(schema.title, "Flowstate flow");
  assert.deepEqual(schema.required, ["id", "nodes"]);
  assert.equal(schema.additionalProperties, false);
  assert.equal(schema.properties.id.pattern, "^[a-z0-9_-]+$");
  assert.equal(typeof schema.properties.concurrency.markdownDescription, "string");

  const nodes = schema.properties.nodes as {
    items: { required: string[]; properties: Record<string, Record<string, unknown>> };
  };
  assert.deepEqual(nodes.items.required, ["id", "type"]);
  for (const field of ["id", "type", "with", "needs", "if", "retry", "timeout"]) {
    assert.ok(field in nodes.items.properties, field);
  }
  assert.deepEqual(nodes.items.properties.needs.type, "array");
  assert.ok((nodes.items.properties.type.examples as string[]).includes("state.increment"));

  const timeout = schema.properties.timeout as { anyOf: { type: string; pattern?: string }[] };
  const pattern = new RegExp(timeout.anyOf.find((a) => a.type === "string")!.pattern!);
  assert.ok(pattern.test("10m") && pattern.test("1.5s") && !pattern.test("10x"));

  // Every top-level field of the example is described, and nothing it lacks is required.
  const example = parseFlow(EXAMPLE).definition as unknown as Record<string, unknown>;
  for (const key of Object.keys(example)) assert.ok(key in schema.properties, key);
  for (const key of schema.required) assert.ok(key in example, key);
  assert.doesNotThrow(() => JSON.stringify(schema));
});

Deno.test("flowJsonSchema() with nodeTypes restricts node types to them or modules", () => {
  const schema = flowJsonSchema({ nodeTypes: ["log", "delay", "log"], id: "urn:test" });
  assert.equal(schema.$id, "urn:test");
  const type = (schema.properties as { nodes: { items: { properties: { type: unknown } } } })
    .nodes.items.properties.type as { examples: string[]; anyOf: Record<string, unknown>[] };
  assert.deepEqual(type.examples, ["delay", "log"]);
  assert.deepEqual(type.anyOf[0], { enum: ["delay", "log"] });
  const modulePattern = new RegExp(type.anyOf[1].pattern as string);
  assert.ok(modulePattern.test("./x.ts") && modulePattern.test("npm:@a/b"));
  assert.ok(!modulePattern.test("lgo"));
});

Deno.test("flowJsonSchema() describes an http node's with: every option the node takes, url required", async () => {
  const { nodeSchemas } = await import("./node_schemas.ts");
  const schema = flowJsonSchema() as {
    properties: { nodes: { items: { allOf: Record<string, unknown>[]; properties: never } } };
  };
  const items = schema.properties.nodes.items;
  const http = items.allOf[0] as {
    if: { properties: { type: { const: string } } };
    then: { properties: { with: { required: string[]; properties: Record<string, unknown> } } };
  };
  assert.equal(http.if.properties.type.const, "http");
  const withSchema = http.then.properties.with;
  assert.deepEqual(withSchema.required, ["url"]);
  assert.deepEqual(
    Object.keys(withSchema.properties).sort(),
    Object.keys(nodeSchemas.http.shape).sort(),
  );
  const type = (items.properties as { type: { examples: string[] } }).type;
  assert.ok(type.examples.includes("http"));
});
