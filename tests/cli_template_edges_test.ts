/**
 * Template functions at the edges of what they take, through the CLI: a time
 * in the first century shown in a zone other than UTC (its offset was read as
 * a 20th-century year's, and the date came out as 1901 with an offset of
 * thousands of hours), and `fromJson()` of a number too large for a double
 * (it gave `Infinity`, which is no JSON value).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { withSandbox } from "./_cli_sandbox.ts";

async function outputOf(value: string): Promise<{ code: number; record: Record<string, unknown> }> {
  let out = { code: -1, record: {} };
  await withSandbox(async (sandbox) => {
    await Deno.writeTextFile(
      join(sandbox.dir, "edge.flow.yaml"),
      `id: edge\nnodes:\n  - id: a\n    type: transform\n    with: { value: ${
        JSON.stringify(value)
      } }\n`,
    );
    const result = await sandbox.run("run", "edge.flow.yaml", "--json");
    out = { code: result.code, record: JSON.parse(result.stdout) };
  });
  return out;
}

Deno.test("cli: formatDate() of a time in the first century in a zone with an offset", async () => {
  // 0001-01-01T00:00:00Z is 0000-12-31 19:03:58 in New York (local mean time, -4:56:02).
  const { code, record } = await outputOf(
    "${{ [formatDate(-62135596800000, 'yyyy-MM-dd HH:mm:ss XXX', 'America/New_York'), formatDate(parseDate('0050-06-01T12:00:00', 'Europe/Paris'), 'yyyy-MM-dd HH:mm XXX', 'Europe/Paris')] }}",
  );
  assert.equal(code, 0, JSON.stringify(record));
  const nodes = record.nodes as Record<string, { output: unknown }>;
  assert.deepEqual(nodes.a.output, ["0000-12-31 19:03:58 -04:56", "0050-06-01 12:00 +00:09"]);
});

Deno.test("cli: fromJson() of a number too large for a double fails, naming it", async () => {
  const { code, record } = await outputOf("${{ fromJson('[1e999]') }}");
  assert.equal(code, 1);
  assert.match(
    (record.error as { message: string }).message,
    /fromJson\(\) got a number too large to hold \(1e999\)/,
  );
});
