/**
 * `flowstate graph`'s Mermaid: text from the flow (an `if:` template, a
 * node's type or sub-flow path) cannot add a Mermaid directive or break a
 * label's line.
 */
import assert from "node:assert/strict";
import { flowGraph, graphMermaid } from "../src/flow/graph.ts";

Deno.test("graph (Mermaid): %%{…}%% and line breaks in a node's text stay inside its label", () => {
  const text = graphMermaid(flowGraph({
    id: "f",
    nodes: [
      { id: "a", type: "log", with: { message: "a" } },
      {
        id: "b",
        type: "log",
        needs: ["a"],
        if: "${{ '%%{init: {}}%%' == 'x' }}",
        with: { message: "b" },
      },
      { id: "c", type: "./odd\nname %%{init: {}}%%.ts", needs: ["a"] },
    ],
  }));
  // Mermaid reads a directive from `%%{` anywhere in the text.
  assert.doesNotMatch(text, /%%\{/);
  assert.doesNotMatch(text, /%/);
  const lines = text.split("\n");
  assert.equal(
    lines.find((l) => l.startsWith("  n1")),
    "  n1{{\"b<br/>log<br/>if: ${{ '#37;#37;{init: {}}#37;#37;' == 'x' }}\"}}",
  );
  assert.equal(
    lines.find((l) => l.startsWith("  n2")),
    '  n2["c<br/>./odd name #37;#37;{init: {}}#37;#37;.ts"]',
  );
});
