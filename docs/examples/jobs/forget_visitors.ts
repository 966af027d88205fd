/**
 * A custom job: forgets visitors not seen for a while. Each visitor is an
 * entry `["global", "visitors", <id>]` whose value has `lastSeen` (ms).
 * Scheduled from `flowstate.yaml` with `module: ./jobs/forget_visitors.ts`.
 *
 * @module
 */
import { defineJob } from "@flowstate/core";
import { z } from "zod";

const DAY = 24 * 60 * 60 * 1000;

export default defineJob({
  name: "forget-visitors",
  description: "deletes visitors not seen for maxAgeDays",
  optionsSchema: z.strictObject({
    maxAgeDays: z.number().positive(),
    store: z.string().optional(),
  }),
  defaults: { maxAgeDays: 30 },
  defaultSchedule: "@daily",
  async run(ctx, { maxAgeDays, store: storeName }) {
    const store = await ctx.store(storeName);
    // The injected clock, never Date.now(): tests move it.
    const cutoff = ctx.clock.now() - maxAgeDays * DAY;
    const prefix = ["global", "visitors"];
    ctx.progress.start("visitors", await store.count(prefix));
    let forgotten = 0;
    for await (const entry of store.list<{ lastSeen: number }>({ prefix })) {
      // Stop at a consistent point when cancelled (Ctrl-C, daemon shutdown).
      if (ctx.signal.aborted) break;
      ctx.progress.advance();
      if (entry.value.lastSeen >= cutoff) continue;
      forgotten++;
      if (ctx.dryRun) continue;
      // Only if nobody wrote it since we read it.
      await store.delete(entry.key, { ifVersion: entry.version });
    }
    ctx.progress.finish(`${forgotten} forgotten`);
    ctx.log(`${ctx.dryRun ? "would forget" : "forgot"} ${forgotten} visitor(s)`);
    // The job's result (JSON) is recorded as the run's outputs.
    return { forgotten, dryRun: ctx.dryRun };
  },
});
