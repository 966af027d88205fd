/**
 * Limits of what the CLI reads (issue 9): YAML nested thousands deep, alias
 * bombs, invalid UTF-8 and oversized files in flows and configs, and deeply
 * nested `--input` JSON are usage errors (exit 2) with a position, never a
 * stack overflow.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";

const FLOW_HEAD = "id: limits\nnodes:\n  - id: a\n    type: transform\n    with:\n      value: ";

function assertClean(stderr: string): void {
  assert.doesNotMatch(stderr, /Maximum call stack|^\s+at /m, stderr);
  assert.ok(stderr.length < 1000, `a short message, got ${stderr.length} characters`);
}

/** Billion laughs: nine levels of nine aliases each. */
function aliasBomb(indent: string): string {
  const lines = [`a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]`];
  for (let i = 1; i < 9; i++) {
    const name = String.fromCharCode(97 + i);
    const prev = String.fromCharCode(96 + i);
    lines.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(", ")}]`);
  }
  return lines.map((line) => indent + line).join("\n") + "\n";
}

for (
  const [style, value] of [
    ["flow lists", "[".repeat(5000) + "]".repeat(5000)],
    ["flow mappings", "{a: ".repeat(5000) + "1" + "}".repeat(5000)],
    [
      "block mappings",
      "\n" + Array.from({ length: 1500 }, (_, i) => " ".repeat(8 + i) + "k:").join("\n") + " 1",
    ],
  ] as const
) {
  Deno.test(`validate: a flow nested thousands deep (${style}) is a usage error at its place`, async () => {
    await withSandbox(async ({ dir, run }) => {
      await Deno.writeTextFile(join(dir, "deep.flow.yaml"), FLOW_HEAD + value + "\n");
      const result = await run("validate", "deep.flow.yaml");
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        result.stderr,
        /^error: deep\.flow\.yaml:\d+:\d+: nested deeper than 256 levels of mappings and lists; flatten it\n$/,
      );
      assertClean(result.stderr);
    });
  });
}

Deno.test("a config nested thousands deep is a usage error at its place", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: memory, x: " + "[".repeat(5000) + "]".repeat(5000) + " }\n",
    );
    const result = await run("stores");
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error: flowstate\.yaml:2:\d+: .*nested deeper than 256 levels/);
    assertClean(result.stderr);
  });
});

Deno.test("run --input with JSON nested thousands deep is a usage error, not a stack overflow", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "in.flow.yaml"),
      "id: in\ninputs:\n  x: { type: any }\nnodes:\n  - id: a\n    type: log\n    with: { message: hi }\n",
    );
    const deep = "[".repeat(20_000) + "]".repeat(20_000);
    const result = await run("run", "in.flow.yaml", "--input", `x=${deep}`);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^error: in\.flow\.yaml:3:6: inputs\.x: nested deeper than 256 levels of lists and mappings; flatten it \(from --input x=\[\[\[/,
    );
    assertClean(result.stderr);
  });
});

Deno.test("validate: an alias bomb is reported as such, at the alias, and nothing else", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(join(dir, "bomb.flow.yaml"), FLOW_HEAD + "\n" + aliasBomb("        "));
    const result = await run("validate", "bomb.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^error: bomb\.flow\.yaml:15:16: \*h expands to [\d,]+ values, and its aliases expand too far to be read: this looks like an alias bomb \("billion laughs"\)/,
    );
    assert.doesNotMatch(result.stderr, /empty/);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  });
});

Deno.test("an alias bomb in the config is reported as such, at the alias", async () => {
  await withSandbox(async ({ dir, run }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: memory }\nx:\n" + aliasBomb("  "),
    );
    const result = await run("stores");
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error: flowstate\.yaml:12:\d+: \*h expands to .*alias bomb/);
  });
});

Deno.test("validate: invalid UTF-8 in a flow is an error at the first bad byte", async () => {
  await withSandbox(async ({ dir, run }) => {
    const head = new TextEncoder().encode(
      'id: u\nnodes:\n  - id: a\n    type: log\n    with: { message: "héllo ',
    );
    const bytes = new Uint8Array([...head, 0xff, 0xfe, ...new TextEncoder().encode('" }\n')]);
    await Deno.writeFile(join(dir, "bad.flow.yaml"), bytes);
    const result = await run("validate", "bad.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^error: bad\.flow\.yaml:5:29: the file is not UTF-8 text: byte 0xFF at offset \d+ does not fit a UTF-8 character; save the file as UTF-8\n$/,
    );
  });
});

Deno.test("validate: a flow saved as UTF-16 says so at 1:1, not at its last line", async () => {
  await withSandbox(async ({ dir, run }) => {
    const text = "id: u\nnodes:\n  - id: a\n    type: log\n    with: { message: hi }\n";
    for (
      const [name, bom, le] of [["le", [0xff, 0xfe], true], ["be", [0xfe, 0xff], false]] as const
    ) {
      const units = [...text].flatMap((c) => {
        const code = c.charCodeAt(0);
        return le ? [code & 0xff, code >> 8] : [code >> 8, code & 0xff];
      });
      await Deno.writeFile(join(dir, `${name}.flow.yaml`), new Uint8Array([...bom, ...units]));
      const result = await run("validate", `${name}.flow.yaml`);
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `^error: ${name}\\.flow\\.yaml:1:1: the file is UTF-16 text \\(it starts with a UTF-16 ` +
            `byte order mark\\), not UTF-8: save it as UTF-8\n$`,
        ),
      );
    }
    // A bad first byte without a byte order mark is at 1:1 too.
    await Deno.writeFile(join(dir, "first.flow.yaml"), new Uint8Array([0xc0, 0x0a, 0x0a, 0x61]));
    const first = await run("validate", "first.flow.yaml");
    assert.equal(first.code, 2, first.stderr);
    assert.match(
      first.stderr,
      /^error: first\.flow\.yaml:1:1: the file is not UTF-8 text: byte 0xC0 at offset 0 /,
    );
  });
});

Deno.test("invalid UTF-8 in the config is an error at the first bad byte", async () => {
  await withSandbox(async ({ dir, run }) => {
    const bytes = new Uint8Array([
      ...new TextEncoder().encode("stores:\n  main: { plugin: memory }\n# caf"),
      0xc3, // a cut-off two-byte sequence
      0x0a,
    ]);
    await Deno.writeFile(join(dir, "flowstate.yaml"), bytes);
    const result = await run("stores");
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^error: flowstate\.yaml:3:6: the file is not UTF-8 text: byte 0xC3/,
    );
  });
});

Deno.test("validate: a flow file over the size limit is refused before parsing, naming the limit and how to raise it", async () => {
  await withSandbox(async ({ dir, run, runWith }) => {
    const padding = "# " + "x".repeat(98) + "\n";
    const flow = "id: big\nnodes:\n  - id: a\n    type: log\n    with: { message: hi }\n" +
      padding.repeat(5 * 10_486); // > 5 MiB
    await Deno.writeTextFile(join(dir, "big.flow.yaml"), flow);
    const result = await run("validate", "big.flow.yaml");
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^error: big\.flow\.yaml: the file is 5\.1 MiB \([\d,]+ bytes\), over the 4 MiB limit for flow and config files; make it smaller, or raise the limit with FLOWSTATE_MAX_YAML_SIZE \(for example FLOWSTATE_MAX_YAML_SIZE=11MiB\)\n$/,
    );
    const raised = await runWith({ FLOWSTATE_MAX_YAML_SIZE: "8MiB" }, "validate", "big.flow.yaml");
    assert.equal(raised.code, 0, raised.stderr);
    const lowered = await runWith({ FLOWSTATE_MAX_YAML_SIZE: "100" }, "validate", "big.flow.yaml");
    assert.match(lowered.stderr, /over the 100 bytes limit/);
    const bad = await runWith({ FLOWSTATE_MAX_YAML_SIZE: "lots" }, "validate", "big.flow.yaml");
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /FLOWSTATE_MAX_YAML_SIZE="lots" is not a size; write bytes/);
  });
});

Deno.test("a config file over the size limit is refused before parsing", async () => {
  await withSandbox(async ({ dir, runWith }) => {
    await Deno.writeTextFile(
      join(dir, "flowstate.yaml"),
      "stores:\n  main: { plugin: memory }\n" + "# padding\n".repeat(200),
    );
    const result = await runWith({ FLOWSTATE_MAX_YAML_SIZE: "1KiB" }, "stores");
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^error: flowstate\.yaml: the file is 2 KiB \([\d,]+ bytes\), over the 1 KiB limit .*FLOWSTATE_MAX_YAML_SIZE/,
    );
  });
});
