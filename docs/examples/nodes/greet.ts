/**
 * A custom node: greets someone and remembers how often it greeted them.
 * Used by `greet.flow.yaml` as `type: ./nodes/greet.ts`.
 *
 * @module
 */
import { defineNode } from "@flowstate/core";
import { z } from "zod";

export default defineNode({
  description: "greets someone and counts the greetings per name",
  // Checks the node's `with`, after its templates are evaluated.
  optionsSchema: z.strictObject({
    name: z.string().min(1),
    punctuation: z.enum([".", "!"]).default("!"),
  }),
  async run(ctx, { name, punctuation }) {
    // This flow's state, kept between runs; increment is compare-and-set.
    const times = await ctx.flow.increment(["greeted", name]);
    ctx.log(`greeting ${name} (time ${times}, attempt ${ctx.attempt})`);
    // Long work waits with ctx.sleep or checks ctx.signal: a cancelled or
    // timed-out run aborts it.
    ctx.signal.throwIfAborted();
    // The returned value (JSON) is the node's output.
    return { greeting: `Hello, ${name}${punctuation}`, times };
  },
});
