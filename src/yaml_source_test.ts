import assert from "node:assert/strict";
import { MAX_YAML_ALIASES, MAX_YAML_DEPTH, readYamlFile, YamlSource } from "./yaml_source.ts";

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
    const source = new YamlSource("a: !!int [1]\nb: [2]]\n", { prettyErrors });
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

/** The syntax errors of `text`, as `line:column: message`. */
function errors(text: string): string[] {
  return new YamlSource(text).syntaxErrors.map((e) => `${e.line}:${e.column}: ${e.message}`);
}

Deno.test("YamlSource.syntaxErrors: an unclosed [ or { is reported where it opens; a ] or } too many where it is", () => {
  const unclosed = (open: string, close: string, what: string) =>
    `this ${open} opens a ${what} that no ${close} closes: add the ${close} (a ${what} that goes ` +
    "on over more lines needs them indented deeper than the key it belongs to)";
  assert.deepEqual(errors("id: a\nnodes:\n  - id: x\n    with: {message: hi\n"), [
    `4:11: ${unclosed("{", "}", "mapping")}`,
  ]);
  assert.deepEqual(errors("a: [1, 2\nb: 3\n"), [`1:4: ${unclosed("[", "]", "list")}`]);
  // Closed, but on a line indented no deeper than its key.
  assert.deepEqual(errors("a:\n  b: [1,\n2]\n")[0], `2:6: ${unclosed("[", "]", "list")}`);
  assert.deepEqual(errors("a: [1]]\n"), [
    "1:7: this ] closes no [: remove it, or add the [ it closes",
  ]);
  assert.deepEqual(errors("a: {b: 1}}\n"), [
    "1:10: this } closes no {: remove it, or add the { it closes",
  ]);
});

Deno.test("YamlSource.syntaxErrors: a key without its colon, or without a space after it, is named with the line to write", () => {
  assert.deepEqual(errors("id a\nnodes: []\n"), [
    "1:1: `id a` has no colon after its key: write `id: a`",
  ]);
  assert.deepEqual(errors("id: a\nnodes:\n  - id x\n    type: log\n"), [
    "3:5: `id x` has no colon after its key: write `id: x`",
  ]);
  assert.deepEqual(errors("id: a\nnodes\n  - id: x\n"), [
    "2:1: `nodes` has no colon after it: write `nodes:`",
  ]);
  assert.deepEqual(errors("id: a\nnodes:\n  - id: x\n    type:log\n    with: {}\n"), [
    "4:5: `type:log` has no space after its colon, so YAML reads it as one word: write `type: log`",
  ]);
});

Deno.test("YamlSource.syntaxErrors: a quote inside a quoted string says so, alone on its line", () => {
  assert.deepEqual(errors('a: {message: "${{ inputs.s == "a" }}"}\n'), [
    `1:32: the " before this ends the quoted string, so YAML cannot read what follows: to put a " inside the string, write it as \\" (or quote the whole value with ' instead)`,
  ]);
  // Text after a closed string, with a space between, is another slip: yaml's words stay.
  assert.deepEqual(errors('a:\n  message: "x" y\n'), ["2:16: Unexpected scalar at node end"]);
});

Deno.test("YamlSource.syntaxErrors: an unclosed quote is reported where its string opens, alone (not at the end of the text)", () => {
  const cases: [string, string, [number, number]][] = [
    // In a flow mapping: yaml also reported "Flow map … must be sufficiently indented" at the end.
    ['id: syn3\nnodes:\n  - id: a\n    type: log\n    with: { message: "hi }\n', '"', [5, 22]],
    ['id: x\nnodes:\n  - id: a\n    with:\n      message: "hi\n  - id: b\n', '"', [5, 16]],
    ["id: x\ndescription: 'oops\nnodes: []\n", "'", [2, 14]],
  ];
  for (const [text, quote, [line, column]] of cases) {
    const errors = new YamlSource(text).syntaxErrors;
    assert.deepEqual(
      errors.map((e) => [e.line, e.column, e.message]),
      [[
        line,
        column,
        `a string opens here with ${quote} and is never closed, so YAML reads the rest of the text into it: add the closing ${quote}`,
      ]],
      text,
    );
  }
  // An error before the string is kept.
  assert.deepEqual(
    new YamlSource("a: b: c\nd: 'x\n").syntaxErrors.map((e) => [e.line, e.column]),
    [[1, 4], [2, 4]],
  );
});

Deno.test("YamlSource.syntaxErrors: a badly indented key or item at its column; the quote-it hint only after a key", () => {
  const at = (text: string) =>
    new YamlSource(text).syntaxErrors.map((p) => `${p.line}:${p.column} ${p.message}`);
  assert.deepEqual(at("a:\n  - b: 1\n    c: 2\n - d: 3\n"), [
    "4:2 `- d: 3` is indented 1 space; the list items beside it use 2: indent it like them",
  ]);
  assert.deepEqual(at("a:\n  b: 1\nc:\n    d: 2\n e: 3\n"), [
    "5:2 `e:` is indented 1 space; the keys beside it are not indented: indent it like them",
  ]);
  // A value holding ": " after its key keeps the hint.
  assert.deepEqual(at("a:\n  b: x: y\n"), [
    '2:6 this value holds ": ", which YAML reads as one more key: quote it, like b: "x: y"',
  ]);
  // A second document, by default.
  assert.deepEqual(at("a: 1\n---\nb: 2\n"), [
    "2:1 a second YAML document starts here (`---`); this file holds one: remove the `---` and what follows",
  ]);
  assert.deepEqual(at("a: 1\n...\nb: 2\n"), [
    "3:1 a second YAML document starts here (after the `...`); this file holds one: remove the `...` and what follows",
  ]);
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

Deno.test("YamlSource: nesting up to MAX_YAML_DEPTH is read, one level more is a syntax error at that collection", () => {
  const nested = (depth: number) => "a: " + "[".repeat(depth - 1) + "]".repeat(depth - 1);
  const ok = new YamlSource(nested(MAX_YAML_DEPTH)); // the mapping is one level
  assert.deepEqual(ok.syntaxErrors, []);
  const deep = new YamlSource(nested(MAX_YAML_DEPTH + 1));
  assert.equal(deep.syntaxErrors.length, 1);
  assert.match(deep.syntaxErrors[0].message, /^nested deeper than 256 levels/);
  assert.deepEqual(
    { line: deep.syntaxErrors[0].line, column: deep.syntaxErrors[0].column },
    { line: 1, column: 3 + MAX_YAML_DEPTH },
  );
  assert.equal(deep.doc.contents, null, "nothing deeper was composed");
});

Deno.test("YamlSource: MAX_YAML_ALIASES aliases are read, one more is a syntax error at that alias, nothing composed", () => {
  const text = (aliases: number) =>
    "x: &x 1\nall:\n" + Array.from({ length: aliases }, () => "  - *x\n").join("");
  const ok = new YamlSource(text(MAX_YAML_ALIASES));
  assert.deepEqual(ok.syntaxErrors, []);
  assert.equal(
    (ok.toData({ maxAliasCount: -1 }) as { data: { all: number[] } }).data.all.length,
    1000,
  );
  const bomb = new YamlSource(text(MAX_YAML_ALIASES + 50), { file: "bomb.yaml" });
  assert.equal(bomb.syntaxErrors.length, 1);
  assert.match(
    bomb.syntaxErrors[0].message,
    /^more than 1000 aliases \(this is alias 1001\): this looks like an alias bomb .*write the repeated data out/,
  );
  // The 1001st alias is on line 2 + 1001, after "  - ".
  assert.deepEqual(
    { line: bomb.syntaxErrors[0].line, column: bomb.syntaxErrors[0].column },
    { line: 2 + MAX_YAML_ALIASES + 1, column: 5 },
  );
  assert.equal(bomb.doc.contents, null, "nothing was composed");
});

Deno.test("YamlSource: a * in quoted, plain and block scalars or in comments is no alias", () => {
  const many = MAX_YAML_ALIASES + 10;
  const text = [
    "x: &x 1",
    `double: "${"*x ".repeat(many)}"`,
    `single: '${"*x ".repeat(many)}'`,
    `plain: a ${"*x ".repeat(many)}`,
    "block: |",
    ...Array.from({ length: many }, () => "  *x"),
    ...Array.from({ length: many }, () => "# *x"),
    "real: *x",
  ].join("\n") + "\n";
  const source = new YamlSource(text);
  assert.deepEqual(source.syntaxErrors, []);
  const read = source.toData() as { data: Record<string, unknown> };
  assert.equal(read.data.real, 1);
  assert.equal(read.data.double, "*x ".repeat(many));
  assert.equal((read.data.block as string).split("\n").length, many + 1);
});

Deno.test("YamlSource.toData(): an alias bomb is a problem at the alias that expands most; plain aliases read", () => {
  const plain = new YamlSource("base: &b { retry: 3 }\nnode: *b\n");
  assert.deepEqual(plain.toData(), { data: { base: { retry: 3 }, node: { retry: 3 } } });
  const lines = ["a: &a [x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 6; i++) {
    const [name, prev] = [String.fromCharCode(97 + i), String.fromCharCode(96 + i)];
    lines.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(", ")}]`);
  }
  const bomb = new YamlSource(lines.join("\n") + "\n").toData({ maxAliasCount: 100 });
  assert.ok("problem" in bomb);
  assert.match(
    bomb.problem.message,
    /^\*e expands to [\d,]+ values.*alias bomb \("billion laughs"\)/,
  );
  assert.deepEqual([bomb.problem.line, bomb.problem.column], [6, 8]);
});

Deno.test("readYamlFile(): UTF-8 problems at the first bad byte, a BOM dropped, the size limit before reading", async () => {
  const dir = await Deno.makeTempDir();
  const read = async (bytes: number[], options?: { maxBytes?: number }) => {
    await Deno.writeFile(`${dir}/f.yaml`, new Uint8Array(bytes));
    return await readYamlFile(`${dir}/f.yaml`, options);
  };
  const text = (s: string) => [...new TextEncoder().encode(s)];
  try {
    assert.deepEqual(await read([0xef, 0xbb, 0xbf, ...text("a: é\n")]), { text: "a: é\n" });
    for (
      const [bytes, line, column] of [
        [[...text("a: 1\nb: é"), 0xc3], 2, 5], // cut off at the end
        [[...text("x\nyz: "), 0xc0, 0x80], 2, 5], // overlong
        [[...text("k: "), 0xed, 0xa0, 0x80], 1, 4], // a UTF-16 surrogate
        [[...text("é: "), 0xf5, 0x80, 0x80, 0x80], 1, 4], // past U+10FFFF
      ] as const
    ) {
      const result = await read([...bytes]);
      assert.ok("problem" in result, JSON.stringify(bytes));
      assert.deepEqual([result.problem.line, result.problem.column], [line, column]);
      assert.match(
        result.problem.message,
        /^the file is not UTF-8 text: byte 0x[0-9A-F]{2} at offset \d+/,
      );
    }
    const big = await read(text("a: 1\n".repeat(100)), { maxBytes: 499 });
    assert.ok("problem" in big);
    assert.match(
      big.problem.message,
      /^the file is 500 bytes, over the 499 bytes limit/,
    );
    assert.deepEqual(await read(text("a: 1\n".repeat(100)), { maxBytes: 500 }), {
      text: "a: 1\n".repeat(100),
    });
    await assert.rejects(() => readYamlFile(`${dir}/none.yaml`), Deno.errors.NotFound);
    await assert.rejects(() => readYamlFile(dir), Deno.errors.IsADirectory);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("YamlSource.toData(): an alias inside its own anchor is a problem at the alias, at any depth", () => {
  for (
    const [text, line, column] of [
      ["a: &a {b: {c: [1, *a]}}\n", 1, 19],
      ["&r {a: *r}\n", 1, 8],
      ["a: &x [1]\nb: &x [*x]\n", 2, 8], // the nearer anchor of the name counts
    ] as const
  ) {
    const read = new YamlSource(text).toData();
    assert.ok("problem" in read, text);
    assert.match(read.problem.message, /^\*\w is inside its own anchor &\w/);
    assert.deepEqual([read.problem.line, read.problem.column], [line, column], text);
  }
  assert.deepEqual(new YamlSource("a: &a [1]\nb: [*a, *a]\n").toData(), {
    data: { a: [1], b: [[1], [1]] },
  });
});

Deno.test("YamlSource: blocks opened on one line too deep for yaml's parser are the same syntax error, on that line", () => {
  // `- - - …` 100,000 times then a less indented line: yaml's parser recursed past the stack.
  const text = "id: x\nnodes:\n  " + "- ".repeat(100_000) + "a\n b: 1\n";
  const deep = new YamlSource(text, { file: "deep.flow.yaml" });
  assert.equal(deep.syntaxErrors.length, 1);
  assert.match(deep.syntaxErrors[0].message, /^nested deeper than 256 levels/);
  assert.deepEqual(
    { line: deep.syntaxErrors[0].line, column: deep.syntaxErrors[0].column },
    { line: 3, column: 3 },
  );
});
