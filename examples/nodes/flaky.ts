/**
 * A custom node that fails its first `failures` attempts in each run, then
 * succeeds: used by examples/retry.flow.yaml to show retries.
 */
import { defineNode } from "@flowstate/core";
import { z } from "zod";

export default defineNode({
  description: "fails the first N attempts, then returns how many it took",
  optionsSchema: z.strictObject({ failures: z.number().int().nonnegative().default(2) }),
  run(ctx, { failures }) {
    if (ctx.attempt <= failures) {
      throw new Error(`flaky: attempt ${ctx.attempt} of ${failures + 1} fails on purpose`);
    }
    ctx.log(`succeeded on attempt ${ctx.attempt}`);
    return ctx.attempt;
  },
});
