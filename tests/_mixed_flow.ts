/**
 * A flow whose run records every kind of event and outcome the compact forms hold: retries, a
 * failure, logs, a state write and a skip (its nodes' modules are under `examples/`: run it with
 * that directory as `cwd`). Shared by the tests of the stored forms.
 *
 * @module
 */

/** The flow (see the module's documentation). */
export const MIXED_FLOW = {
  id: "mixed",
  nodes: [
    {
      id: "flaky",
      type: "./nodes/flaky.ts",
      with: { failures: 2 },
      retry: { attempts: 4, delay: "1ms" },
    },
    { id: "inc", type: "state.increment", with: { scope: "flow", key: "count" } },
    { id: "say", type: "log", with: { message: "hi" }, needs: ["inc"] },
    { id: "skip", type: "log", with: { message: "no" }, if: "${{ false }}" },
    {
      id: "bad",
      type: "./nodes/flaky.ts",
      with: { failures: 5 },
      retry: { attempts: 2, delay: "1ms" },
      needs: ["flaky"],
    },
  ],
};
