import assert from "node:assert/strict";
import { YamlSource } from "./yaml_source.ts";

const TEXT = `stores:
  main:
    plugin: memory
    path: ./state
flows:
  - ./a.flow.yaml
  - ./b.flow.yaml
`;

Deno.test("YamlSource.locate() points at the key or the value of an entry", () => {
  const source = new YamlSource(TEXT);
  assert.deepEqual(source.locate([]), { line: 1, column: 1 });
  assert.deepEqual(source.locate(["stores", "main", "plugin"], "key"), { line: 3, column: 5 });
  assert.deepEqual(source.locate(["stores", "main", "plugin"], "value"), { line: 3, column: 13 });
  assert.deepEqual(source.locate(["stores", "main"]), { line: 3, column: 5 });
  // a list item has no key: both sides are the item
  assert.deepEqual(source.locate(["flows", 1], "key"), { line: 7, column: 5 });
  assert.deepEqual(source.locate(["flows", 1], "value"), { line: 7, column: 5 });
  assert.equal(source.offset(["flows", 1]), TEXT.indexOf("./b.flow.yaml"));
});

Deno.test("YamlSource.locate() of a missing path points at its nearest ancestor's value, or key with missing: key", () => {
  const byValue = new YamlSource(TEXT);
  assert.deepEqual(byValue.locate(["stores", "main", "nope", "deeper"]), { line: 3, column: 5 });
  assert.deepEqual(byValue.locate(["stores", "main", "nope"], "key"), { line: 3, column: 5 });
  assert.deepEqual(byValue.locate(["flows", 9]), { line: 6, column: 3 });
  const byKey = new YamlSource(TEXT, { missing: "key" });
  assert.deepEqual(byKey.locate(["stores", "main", "nope", "deeper"]), { line: 2, column: 3 });
  assert.deepEqual(byKey.locate(["stores", "main", "nope"], "value"), { line: 2, column: 3 });
  assert.deepEqual(byKey.locate(["flows", 9]), { line: 5, column: 1 });
  // an existing path is located on the side asked for either way
  assert.deepEqual(byKey.locate(["stores", "main"], "value"), { line: 3, column: 5 });
});

Deno.test("YamlSource.locate() follows aliases into their anchor, or stops at the alias with aliases: stop", () => {
  const text = "base: &b\n  retry: 3\nnode:\n  settings: *b\n";
  const follow = new YamlSource(text);
  assert.deepEqual(follow.locate(["node", "settings", "retry"]), { line: 2, column: 10 });
  assert.deepEqual(follow.locate(["node", "settings"]), { line: 4, column: 13 });
  const stop = new YamlSource(text, { aliases: "stop", missing: "key" });
  assert.deepEqual(stop.locate(["node", "settings", "retry"]), { line: 4, column: 3 });
  assert.deepEqual(stop.locate(["node", "settings", "retry"], "key"), { line: 4, column: 3 });
});

Deno.test("YamlSource.locate() places an empty value at its key, or where it would start with empty: here", () => {
  const text = "a:\nlist:\n  - \n  - x\n";
  const atKey = new YamlSource(text);
  assert.deepEqual(atKey.locate(["a"]), { line: 1, column: 1 });
  assert.equal(atKey.locate(["list", 0]), undefined);
  const here = new YamlSource(text, { empty: "here" });
  assert.deepEqual(here.locate(["a"]), { line: 1, column: 3 });
  assert.deepEqual(here.locate(["list", 0]), { line: 3, column: 5 });
});

Deno.test("YamlSource.syntaxErrors give yaml's message without its position, and the position", () => {
  for (const prettyErrors of [false, true]) {
    const source = new YamlSource("a: [1\nb: 2\n", { prettyErrors });
    assert.equal(source.syntaxErrors.length > 0, true);
    const [first] = source.syntaxErrors;
    assert.equal(first.message.includes(" at line "), false);
    assert.equal(first.message.includes("\n"), false);
    assert.equal(first.error.message.includes(" at line "), prettyErrors);
    assert.deepEqual(
      { line: first.line, column: first.column },
      source.position(first.error.pos[0]),
    );
  }
  assert.deepEqual(new YamlSource("a: 1\n").syntaxErrors, []);
});

Deno.test("YamlSource with uniqueKeys: false lets the last key count and lists the earlier ones", () => {
  const text = "a: 1\nb:\n  c: 1\n  c: 2\na: 3\n";
  assert.equal(new YamlSource(text).syntaxErrors[0].message, "Map keys must be unique");
  const source = new YamlSource(text, { uniqueKeys: false });
  assert.deepEqual(source.syntaxErrors, []);
  assert.deepEqual(source.doc.toJS(), { a: 3, b: { c: 2 } });
  assert.deepEqual(source.locate(["a"]), { line: 5, column: 4 });
  assert.deepEqual(source.duplicateKeys(), [
    { path: ["b", "c"], key: "c", first: { line: 3, column: 3 }, at: { line: 4, column: 3 } },
    { path: ["a"], key: "a", first: { line: 1, column: 1 }, at: { line: 5, column: 1 } },
  ]);
});

Deno.test("YamlSource.where() formats file:line:column, from the start for an empty document", () => {
  const named = new YamlSource(TEXT, { file: "flowstate.yaml" });
  assert.equal(named.where(["stores", "main", "path"], "key"), "flowstate.yaml:4:5");
  assert.equal(new YamlSource(TEXT).where(["flows"]), "<source>:6:3");
  const empty = new YamlSource("", { file: "empty.yaml" });
  assert.equal(empty.locate([]), undefined);
  assert.equal(empty.where(["anything"]), "empty.yaml:1:1");
});

Deno.test("YamlSource.inString() finds a character in plain, quoted and multi-line strings", () => {
  const text = [
    "plain: one ${{ x }}",
    "single: 'it''s ${{ x }}'",
    'double: "\\u00e9\\t${{ x }}"',
    "block: |\n  line ${{ x }}",
    "number: 12",
  ].join("\n") + "\n";
  const source = new YamlSource(text);
  assert.deepEqual(source.inString(["plain"], 4), { line: 1, column: 12 });
  assert.deepEqual(source.inString(["single"], 5), { line: 2, column: 16 });
  assert.deepEqual(source.inString(["double"], 2), { line: 3, column: 18 });
  assert.deepEqual(source.inString(["block"], 5), { line: 4, column: 8 });
  assert.deepEqual(source.inString(["number"], 1), { line: 6, column: 9 });
  assert.deepEqual(source.inString(["missing"], 1), { line: 1, column: 1 });
});
