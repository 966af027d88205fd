import assert from "node:assert/strict";
import { parseFlow } from "./parse.ts";
import { compileValue, TemplateError } from "./template/mod.ts";
import { placedError, placedMessage } from "./_eval_place.ts";
import { YamlSource } from "../yaml_source.ts";

const SCOPE = { inputs: { n: "3", z: 0 }, nodes: {}, env: {} };

/** The error of evaluating the `with` of node 0 of a flow file `text` (as `f.yaml`). */
function withError(text: string): string {
  const parsed = parseFlow(text, { file: "f.yaml" });
  const flow = { ...parsed, definition: parsed.definition };
  try {
    compileValue(parsed.definition.nodes[0].with).evaluate(SCOPE);
  } catch (err) {
    assert.ok(err instanceof TemplateError);
    return placedError(flow, ["nodes", 0, "with"], err);
  }
  assert.fail("no error");
}

/** `line:column` of the first `needle` in `text`. */
function at(text: string, needle: string): string {
  const before = text.slice(0, text.indexOf(needle)).split("\n");
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

const HEAD =
  "id: f\ninputs:\n  n: { type: any }\n  z: { type: number }\nnodes:\n  - id: a\n    type: transform\n    with:\n";
const ROUND = "Cannot evaluate ${{ round(inputs.n) }}: round() takes a number as value, got string";

Deno.test("placedError: the offending part of a template, in every style of string", () => {
  const cases: [string, string, string][] = [
    ["plain", "      value: a ${{ round(inputs.n) }}\n", "round("],
    ["double-quoted after escapes", '      value: "\\"\\t${{ round(inputs.n) }}"\n', "round("],
    ["single-quoted", "      value: 'it''s ${{ round(inputs.n) }}'\n", "round("],
    [
      "block literal",
      "      value: |\n        one\n        two ${{ round(inputs.n) }}\n",
      "round(",
    ],
    ["folded", "      value: >-\n        one\n        two ${{ round(inputs.n) }}\n", "round("],
    [
      "plain over two lines",
      "      value: one\n        two ${{ round(inputs.n) }}\n",
      "round(",
    ],
  ];
  for (const [name, body, needle] of cases) {
    const text = HEAD + body;
    assert.equal(
      withError(text),
      `f.yaml:${at(text, needle)}: nodes[0].with.value: ${ROUND}`,
      name,
    );
  }
});

Deno.test("placedError: the n-th of the same templates, in a list, is the n-th written", () => {
  const text = HEAD +
    '      value: ["${{ inputs.n }}", "${{ round(inputs.n) }} ${{ round(inputs.n) }}"]\n';
  const first = text.indexOf("round(");
  const before = text.slice(0, first).split("\n");
  assert.equal(
    withError(text),
    `f.yaml:${before.length}:${before.at(-1)!.length + 1}: nodes[0].with.value[1]: ${ROUND}`,
  );
  // The second template of the string fails first when the first is fine.
  const second = HEAD +
    '      value: "${{ round(inputs.z) }} ${{ round(inputs.n) }}"\n';
  const i = second.lastIndexOf("round(");
  assert.equal(
    withError(second),
    `f.yaml:${second.slice(0, i).split("\n").length}:${
      i - second.lastIndexOf("\n", i)
    }: nodes[0].with.value: ${ROUND}`,
  );
});

Deno.test("placedError: an escape inside the template before its offending part: the ${{", () => {
  const text = HEAD + '      value: "${{ \\u0020round(inputs.n) }}"\n';
  assert.match(withError(text), new RegExp(`^f\\.yaml:${at(text, "${{")}: nodes\\[0\\]`));
});

Deno.test("placedError: without the YAML text, the value's position; without positions, the path", () => {
  const text = HEAD + "      value: a ${{ round(inputs.n) }}\n";
  const source = new YamlSource(text);
  const definition = parseFlow(text).definition;
  const err = (() => {
    try {
      compileValue(definition.nodes[0].with).evaluate(SCOPE);
    } catch (e) {
      return e;
    }
  })();
  assert.equal(
    placedError({ definition, file: "f.yaml", locate: (p) => source.locate(p) }, [
      "nodes",
      0,
      "with",
    ], err),
    `f.yaml:9:14: nodes[0].with.value: ${ROUND}`,
  );
  assert.equal(
    placedError({ definition }, ["nodes", 0, "with"], err),
    `nodes[0].with.value: ${ROUND}`,
  );
  // A locator that throws loses the position, not the error.
  const broken = () => {
    throw new Error("no");
  };
  assert.equal(
    placedError({ definition, file: "f.yaml", locate: broken }, ["nodes", 0, "with"], err),
    `f.yaml: nodes[0].with.value: ${ROUND}`,
  );
  assert.equal(
    placedMessage({ definition, file: "f.yaml", locate: (p) => source.locate(p) }, [
      "nodes",
      0,
      "type",
    ], "bad"),
    "f.yaml:7:11: nodes[0].type: bad",
  );
});
