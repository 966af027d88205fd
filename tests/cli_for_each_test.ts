/**
 * `forEach:` through the CLI and the HTTP API: `flowstate run` of a flow whose
 * node runs per item (the example, and a flow whose second item fails),
 * its exit code, progress and `runs show`; `flowstate validate` placing
 * `forEach` problems at file:line:column; `flowstate schema` knowing the
 * field; the API's run detail carrying the items.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { withSandbox } from "./_cli_sandbox.ts";
import { documented, withServed } from "./_serve.ts";

const EXAMPLE = fileURLToPath(new URL("../examples/for-each.flow.yaml", import.meta.url));
const SHOUT = fileURLToPath(new URL("./fixtures/nodes/shout.ts", import.meta.url));

/** A flow whose `parse` node fails on its second item (`fromJson` of text that is not JSON). */
const FAILING = `id: parse
nodes:
  - id: parse
    type: transform
    forEach: ["1", "oops", "3"]
    with: { value: "\${{ fromJson(item) }}" }
`;

Deno.test("flowstate run runs the forEach example; runs show counts its items", async () => {
  await withSandbox(async ({ run }) => {
    const result = await run("run", EXAMPLE);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^ {2}greetings: \[\{"greeting":"hello, Ada \(#0\)"\},\{"greeting":"hello, Alan \(#1\)"\},\{"greeting":"hello, Grace \(#2\)"\}\]$/m,
    );
    assert.match(result.stderr, /^\[report\] 3 greetings$/m);
    const id = /^run: +(\S+)$/m.exec(result.stdout)![1];
    const show = await run("runs", "show", id);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^ {2}save: succeeded, 3 items, 3 attempts, /m);
    assert.match(show.stdout, /^ {2}greet: succeeded, 3 items, 3 attempts, /m);
    assert.match(show.stdout, /^ {4}\+\S+ +started \(3 items\)$/m);
    assert.match(show.stdout, /^ {4}\+\S+ +item 2 attempt 1$/m);
    const json = JSON.parse((await run("runs", "show", id, "--json")).stdout);
    assert.deepEqual(json.run.nodes.greet.items, { count: 3, succeeded: 3, failed: 0 });
  });
});

Deno.test("flowstate run of a flow whose item fails: exit 1, the item named in progress and runs show", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "parse.flow.yaml"), FAILING);
    const result = await run("run", "parse.flow.yaml");
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, /^status: +failed$/m);
    assert.match(result.stdout, /^error: +node "parse": item 1: .*fromJson/m);
    assert.match(
      result.stderr,
      /^\[parse\] failed \(3 items: 1 succeeded, 1 failed \(item 1\), 1 stopped or not started\): item 1: /m,
    );
    const id = /^run: +(\S+)$/m.exec(result.stdout)![1];
    const show = await run("runs", "show", id);
    assert.match(
      show.stdout,
      /^ {2}parse: failed, 3 items: 1 succeeded, 1 failed \(item 1\), 1 stopped or not started, 2 attempts, /m,
    );
    assert.match(show.stdout, /^ {4}\+\S+ +item 1 attempt 1$/m);
    assert.doesNotMatch(show.stdout, /item 2 attempt/);
  });
});

Deno.test("a custom node in a Worker runs per item, two at a time; its logs name their item", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "shout.flow.yaml"),
      `id: shout
nodes:
  - id: shout
    type: ${SHOUT}
    forEach: { items: [a, b, c], concurrency: 2 }
    with: { text: "\${{ item }}\${{ index }}" }
`,
    );
    const result = await run("run", "shout.flow.yaml");
    assert.equal(result.code, 0, result.stderr);
    const id = /^run: +(\S+)$/m.exec(result.stdout)![1];
    const record = JSON.parse((await run("runs", "show", id, "--json")).stdout).run;
    const output = record.nodes.shout.output as { text: string; count: number }[];
    assert.deepEqual(output.map((o) => o.text), ["A0", "B1", "C2"]);
    // One node scope for every item: each increment of the counter is seen once.
    assert.deepEqual(output.map((o) => o.count).sort(), [1, 2, 3]);
    assert.match(result.stderr, /^\[shout item 1\] shouting b1$/m);
    const show = await run("runs", "show", record.id);
    assert.match(show.stdout, /^ {4}\+\S+ +item 2 log: shouting c2$/m);
  });
});

Deno.test("flowstate validate places forEach problems at file:line:column", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "bad.flow.yaml"),
      `id: bad
nodes:
  - id: a
    type: log
    with: { message: "hi \${{ item.name }}" }
  - id: b
    type: log
    forEach: { items: [1, 2], concurrency: 0, limit: 3 }
    with: { message: "\${{ index }}" }
  - id: c
    type: log
    forEach: "just text"
    with: { message: x }
  - id: d
    type: log
    forEach: "\${{ [1, }}"
    with: { message: x }
`,
    );
    const result = await run("validate", "bad.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    const lines = result.stderr.trim().split("\n");
    assert.deepEqual(lines.slice(0, 5), [
      'error: bad.flow.yaml:5:30: nodes[0].with.message: node "a" reads item, which is set only in a node with forEach; add forEach: "${{ … }}" (the list to run the node for) to the node',
      "error: bad.flow.yaml:8:44: nodes[1].forEach.concurrency: must be at least 1, got 0",
      "error: bad.flow.yaml:8:47: nodes[1].forEach.limit: unknown field",
      'error: bad.flow.yaml:12:14: nodes[2].forEach: expected a template like "${{ nodes.list.output }}" or a list, got the text "just text"',
      'error: bad.flow.yaml:16:23: nodes[3].forEach: Cannot parse ${{ [1, }}: expected a value after ",", found "}}"',
    ]);
  });
});

Deno.test("flowstate schema describes forEach", async () => {
  await withSandbox(async ({ run }) => {
    const result = await run("schema");
    assert.equal(result.code, 0, result.stderr);
    const schema = JSON.parse(result.stdout);
    const text = JSON.stringify(schema);
    const at = text.indexOf('"forEach":');
    assert.ok(at > 0, "the node schema has forEach");
    assert.match(text.slice(at, at + 3000), /"concurrency":\{[^}]*"minimum":1/);
    assert.match(text.slice(at, at + 3000), /"required":\["items"\],"additionalProperties":false/);
  });
});

Deno.test("the API's run detail carries a forEach node's items and its events' item", async () => {
  await withServed(() => ({ main: { plugin: "memory" } }), async ({ runtime, dir, request }) => {
    await Deno.writeTextFile(join(dir, "parse.flow.yaml"), FAILING);
    const run = await runtime.runFlow(join(dir, "parse.flow.yaml"));
    const body = await documented<{
      run: { nodes: Record<string, { items?: unknown }> };
      events: { type: string; item?: number; items?: unknown; error?: string }[];
    }>("GET", "/api/runs/{id}", await request(`/api/runs/${run.id}`));
    assert.deepEqual(body.run.nodes.parse.items, {
      count: 3,
      succeeded: 1,
      failed: 1,
      failedIndex: 1,
    });
    const attempts = body.events.filter((e) => e.type === "node.attempt");
    assert.deepEqual(attempts.map((e) => [e.item, e.error !== undefined]), [
      [0, false],
      [1, false],
    ]);
    assert.deepEqual(body.events.find((e) => e.type === "node.start")?.items, 3);
    const page = await documented<{ run: { nodes: Record<string, { items?: unknown }> } }>(
      "GET",
      "/api/runs/{id}/nodes",
      await request(`/api/runs/${run.id}/nodes`),
    );
    assert.deepEqual(page.run.nodes.parse.items, body.run.nodes.parse.items);
  });
});
