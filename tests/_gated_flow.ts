/**
 * A flow a test releases step by step, for watching a run live: `width`
 * quick log nodes, then (once they all ended) a gate, a log, a second gate,
 * a log. A gate waits until the file its input names exists
 * (`fixtures/nodes/wait_for_file.ts`). Shared by the tests of a running
 * run's page (over HTTP and in a browser).
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const WAIT_FOR_FILE = fileURLToPath(new URL("./fixtures/nodes/wait_for_file.ts", import.meta.url));

/**
 * The YAML of flow `gated`, for a flows folder under `dir` (the gates may
 * read there): inputs `first` and `second`, the paths its gates wait for;
 * nodes `n0`…, `first`, `middle`, `second`, `last`.
 */
export function gatedFlow(dir: string, width: number): string {
  const gate = (id: string, needs: string, input: string) =>
    `  - id: ${id}
    type: ${WAIT_FOR_FILE}
    needs: [${needs}]
    with: { path: "\${{ inputs.${input} }}" }
    permissions: { read: [${JSON.stringify(dir)}] }
`;
  const ids = Array.from({ length: width }, (_, i) => `n${i}`);
  const quick = ids.map((id) =>
    `  - { id: ${id}, type: log, with: { message: "${id} says hi" } }\n`
  );
  return `id: gated
inputs:
  first: { type: string }
  second: { type: string }
nodes:
${quick.join("")}${
    gate("first", ids.join(", "), "first")
  }  - { id: middle, type: log, needs: [first], with: { message: between } }
${
    gate("second", "middle", "second")
  }  - { id: last, type: log, needs: [second], with: { message: done } }
`;
}
