/**
 * The project the resume tests share: flow `pipeline` (fetch → load → report)
 * whose `load` fails while a file `FAIL` exists, its nodes appending to log
 * files (their side effects, counted by the tests).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ProjectCli, withCliProject } from "./_cli_sandbox.ts";

/** A trusted node that appends a line to `file` (its side effect) and returns the lines so far. */
export const APPEND = `export default {
  optionsSchema: { "~standard": { version: 1, vendor: "t", validate: (v) => ({ value: v }) } },
  run(_ctx, { file, line }) {
    Deno.writeTextFileSync(file, line + "\\n", { append: true });
    return Deno.readTextFileSync(file).split("\\n").filter(Boolean).length;
  },
};
`;

/** A trusted node that fails while the file FAIL exists (a flaky API, a bug fixed since). */
const FLAKY = `export default {
  optionsSchema: { "~standard": { version: 1, vendor: "t", validate: (v) => ({ value: v }) } },
  run(_ctx, { n }) {
    try {
      Deno.statSync("FAIL");
    } catch {
      return "loaded " + n;
    }
    throw new Error("the API is down");
  },
};
`;

export const FLOW = `id: pipeline
inputs:
  who: { type: string }
nodes:
  - id: fetch
    type: ../append.ts
    with: { file: fetch.log, line: "fetched for \${{ inputs.who }}" }
  - id: load
    type: ../flaky.ts
    needs: [fetch]
    with: { n: "\${{ nodes.fetch.output }}" }
  - id: report
    type: ../append.ts
    needs: [load]
    with: { file: report.log, line: "\${{ nodes.load.output }} from \${{ nodes.fetch.output }}" }
outputs:
  fetched: "\${{ nodes.fetch.output }}"
  loaded: "\${{ nodes.load.output }}"
`;

const CONFIG = "flows: [./flows]\nnodes:\n  trusted: [./append.ts, ./flaky.ts]\n";

export async function project(
  fn: (run: ProjectCli, dir: string) => Promise<void>,
  more = "",
): Promise<void> {
  await withCliProject(CONFIG + more, async (run, dir) => {
    await Deno.mkdir(join(dir, "flows"));
    await Deno.writeTextFile(join(dir, "flows", "pipeline.flow.yaml"), FLOW);
    await Deno.writeTextFile(join(dir, "append.ts"), APPEND);
    await Deno.writeTextFile(join(dir, "flaky.ts"), FLAKY);
    await fn(run, dir);
  });
}

export const lines = async (file: string) =>
  (await Deno.readTextFile(file).catch(() => "")).split("\n").filter(Boolean);

/** Run the flow so that `load` fails: the failed run's id. */
export async function failedRun(run: ProjectCli, dir: string): Promise<string> {
  await Deno.writeTextFile(join(dir, "FAIL"), "");
  const first = await run("run", "flows/pipeline.flow.yaml", "--input", "who=ada", "--json");
  assert.equal(first.code, 1, first.stderr);
  const record = JSON.parse(first.stdout);
  assert.equal(record.status, "failed");
  assert.equal(record.error.node, "load");
  await Deno.remove(join(dir, "FAIL"));
  return record.id;
}
