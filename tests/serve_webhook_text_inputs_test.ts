/**
 * A webhook's inputs given as text — a query parameter, a header, a form
 * field — reach an input of type number, boolean, object or array as
 * `flowstate run --input key=value` gives them (`"5"` → 5, `"true"` → true,
 * JSON); a string or `any` input keeps the text as it is. A form or a query
 * string can give only text: such a webhook was refused (400 "expected a
 * number, got \"5\"") whatever the sender did. A JSON body keeps its types.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { ConfigObject } from "../mod.ts";
import { withServed } from "./_serve.ts";

const SQLITE = (dir: string): ConfigObject["stores"] => ({
  main: { plugin: "sqlite", path: join(dir, "state.db") },
});

const MAPPED = `id: mapped
trigger:
  http:
    path: /hooks/mapped
    inputs: { count: query.count, dry: headers.x-dry, tags: query.tags, note: query.note, any: query.any }
inputs:
  count: { type: number }
  dry: { type: boolean, default: false }
  tags: { type: array, default: [] }
  note: { type: string, default: "" }
  any: { type: any, default: null }
nodes:
  - { id: a, type: log, with: { message: hi } }
`;

const FORM = `id: form
trigger: { http: { path: /hooks/form } }
inputs:
  n: { type: number }
  name: { type: string }
nodes:
  - { id: a, type: log, with: { message: hi } }
`;

Deno.test("serve: a webhook's text inputs (query, header, form) reach number, boolean and array inputs parsed", async () => {
  await withServed(SQLITE, async ({ dir, request }) => {
    await Deno.writeTextFile(join(dir, "flows", "mapped.flow.yaml"), MAPPED);
    await Deno.writeTextFile(join(dir, "flows", "form.flow.yaml"), FORM);
    const mapped = await request(
      "/hooks/mapped?wait=true&count=5&tags=%5B%22a%22%5D&note=007&any=12",
      { method: "POST", headers: { "x-dry": "true" } },
    );
    assert.equal(mapped.status, 200, await mapped.clone().text());
    assert.deepEqual((await mapped.json()).run.inputs, {
      count: 5,
      dry: true,
      tags: ["a"],
      note: "007",
      any: "12",
    });
    const form = await request("/hooks/form?wait=true", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "n=2.5&name=42",
    });
    assert.equal(form.status, 200, await form.clone().text());
    assert.deepEqual((await form.json()).run.inputs, { n: 2.5, name: "42" });
    // Text that is no number is still refused, saying so; a JSON body keeps its types.
    const bad = await request("/hooks/mapped?count=five", { method: "POST" });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /inputs\.count: expected a number/);
    const typed = await request("/hooks/form", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ n: "2", name: "x" }),
    });
    assert.equal(typed.status, 400);
    assert.match((await typed.json()).error.message, /inputs\.n: expected a number, got "2"/);
  });
});
