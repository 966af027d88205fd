// The warnings of a runtime a program opened: the library never prints one (it hands it to the
// program's onWarning, and drops it without one), and a handler that throws cannot fail the run
// it warns about. An onFailure flow that could not run used to be printed with console.warn when
// the program gave no onWarning; with an onWarning that throws, runFlow rejected with the
// handler's error instead of returning the run's record.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openRuntime, type RuntimeOptions } from "../mod.ts";

/** An onFailure flow that cannot run (it declares its input `run` as a string). */
const BROKEN_ALERT = `id: alert
inputs:
  run: { type: string }
nodes:
  - { id: keep, type: state.set, with: { key: last, value: "\${{ inputs.run }}" } }
`;

async function failedRunWith(
  handler: Pick<RuntimeOptions, "onWarning">,
): Promise<{ status: string; printed: unknown[][] }> {
  const dir = await Deno.makeTempDir();
  const printed: unknown[][] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void printed.push(args);
  try {
    await Deno.writeTextFile(join(dir, "alert.flow.yaml"), BROKEN_ALERT);
    await using rt = await openRuntime({
      cwd: dir,
      config: {
        stores: { main: { plugin: "memory" } },
        runs: { onFailure: { flow: "alert.flow.yaml" } },
      },
      ...handler,
    });
    const run = await rt.runFlow({
      id: "f",
      nodes: [{ id: "x", type: "fail", with: { message: "no" } }],
    });
    return { status: run.status, printed };
  } finally {
    console.warn = warn;
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a runtime without onWarning prints nothing when its onFailure flow cannot run", async () => {
  const { status, printed } = await failedRunWith({});
  assert.equal(status, "failed");
  assert.deepEqual(printed, []);
});

Deno.test("an onWarning that throws does not fail the run it warns about", async () => {
  const told: string[] = [];
  const { status, printed } = await failedRunWith({
    onWarning: (warning) => {
      told.push(warning.code);
      throw new Error("the handler's own bug");
    },
  });
  assert.equal(status, "failed");
  assert.deepEqual(told, ["ON_FAILURE"]);
  assert.deepEqual(printed, []);
});
