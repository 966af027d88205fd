// The custom node of docs/writing-a-node.md, tested the way a project tests its own.
import assert from "node:assert/strict";
import { openRuntime } from "@flowstate/core";

const flow = new URL("./greet.flow.yaml", import.meta.url).pathname;

Deno.test("the greet node counts greetings per name across runs", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const first = await rt.runFlow(flow, { input: { name: "Ada" } });
  assert.equal(first.status, "succeeded", first.error?.message);
  assert.equal(first.outputs?.message, "Hello, Ada! (1)");
  const second = await rt.runFlow(flow, { input: { name: "Ada" } });
  assert.equal(second.outputs?.message, "Hello, Ada! (2)");
  const other = await rt.runFlow(flow, { input: { name: "Grace" } });
  assert.equal(other.outputs?.message, "Hello, Grace! (1)");
});

Deno.test("the greet node's options are checked: a bad one fails the run and names it", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const run = await rt.runFlow(flow, { input: { name: "" } });
  assert.equal(run.status, "failed");
  assert.equal(run.error?.node, "greet");
  assert.match(
    run.error?.message ?? "",
    /greet\.flow\.yaml:\d+:\d+: nodes\[0\]\.with\.name: invalid options for \.\/nodes\/greet\.ts: /,
  );
});
