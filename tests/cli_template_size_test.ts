/**
 * The template functions through the CLI cannot make a text or a list that
 * takes the process's memory: `replace()`, `join()`, `format()` and `+` are
 * refused, at their place, before they make more than `MAX_TEXT` characters
 * (a `replace()` of each character by 10,000 others used to make 100,000,000
 * characters, and splitting that killed the process, out of memory).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";

const TEN_K = "padStart('', 10000, 'a')";

const CASES: [string, string, RegExp][] = [
  [
    "replace",
    `replace(${TEN_K}, 'a', ${TEN_K})`,
    /replace\(\) would make text of 100,000,000 characters, over the limit of 4,194,304/,
  ],
  [
    "join",
    `join(range(10000), ${TEN_K})`,
    /join\(\) would make text of [\d,]+ characters, over the limit of 4,194,304/,
  ],
  [
    "format",
    `format('${"{0}".repeat(500)}', ${TEN_K})`,
    /format\(\) would make text of 5,000,000 characters, over the limit of 4,194,304/,
  ],
];

for (const [name, expression, message] of CASES) {
  Deno.test(`cli: ${name}() may not make text over the limit: the node fails at its place`, async () => {
    await withSandbox(async (sandbox) => {
      await Deno.writeTextFile(
        join(sandbox.dir, "big.flow.yaml"),
        `id: big\nnodes:\n  - id: a\n    type: transform\n    with: { value: "\${{ length(${expression}) }}" }\n`,
      );
      const result = await sandbox.run("run", "big.flow.yaml", "--json");
      assert.equal(result.code, 1, result.stderr);
      const record = JSON.parse(result.stdout);
      assert.equal(record.status, "failed");
      assert.match(record.error.message, /^big\.flow\.yaml:5:\d+: nodes\[0\]\.with\.value: /);
      assert.match(record.error.message, message);
    });
  });
}

Deno.test("cli: + may not join texts over the limit", async () => {
  await withSandbox(async (sandbox) => {
    const big = `join(range(1000), padStart('', 4000, 'b'))`; // 3,998,890 characters
    await Deno.writeTextFile(
      join(sandbox.dir, "plus.flow.yaml"),
      `id: plus\nnodes:\n  - id: a\n    type: transform\n    with: { value: "\${{ length(${big} + ${big}) }}" }\n`,
    );
    const result = await sandbox.run("run", "plus.flow.yaml", "--json");
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      JSON.parse(result.stdout).error.message,
      /\+ would make text of 7,997,780 characters, over the limit of 4,194,304/,
    );
  });
});
