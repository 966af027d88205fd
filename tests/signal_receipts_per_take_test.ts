/**
 * A node's receipts of signals (see `Records.takeSignal`'s `receiver`) are
 * kept per take: a custom node that takes several signals in one attempt
 * gets each one once, in the order sent (several names too), and its next attempt gets the same
 * ones again in the same order (through mod.ts).
 */
import assert from "node:assert/strict";
import { defineNode, openRuntime, type RunEvent } from "../mod.ts";

const anyOptions = {
  "~standard": { version: 1 as const, vendor: "t", validate: (v: unknown) => ({ value: v }) },
};

Deno.test("takeSignal (mod.ts): a node taking a signal name twice in one attempt gets two signals, and its retry the same two", async () => {
  const seen: unknown[][] = [];
  // Opened once the three signals are stored: the takes below then find them (or not) at once.
  let allSent!: () => void;
  const stored = new Promise<void>((resolve) => allSent = resolve);
  await using rt = await openRuntime({
    config: { stores: { main: { plugin: "memory" } } },
    nodeTypes: {
      "app.votes": defineNode({
        optionsSchema: anyOptions,
        async run(ctx) {
          ctx.log("ready for votes");
          await stored;
          const take = async (name: string) => (await ctx.takeSignal!(name))?.data ?? null;
          const votes = [await take("vote"), await take("vote")];
          const note = await take("note");
          seen.push([...votes, note]);
          if (ctx.attempt === 1) throw new Error("first attempt fails after its takes");
          return [...votes, note];
        },
      }),
    },
  });
  let sent: Promise<unknown> | undefined;
  const run = await rt.runFlow({
    id: "ballot",
    nodes: [{ id: "count", type: "app.votes", retry: { attempts: 2 } }],
  }, {
    onEvent(event: RunEvent, { id }) {
      if (event.type === "node.log" && event.message === "ready for votes" && sent === undefined) {
        sent = (async () => {
          await rt.signalRun(id, "vote", "ada");
          await rt.signalRun(id, "vote", "bob");
          await rt.signalRun(id, "note", "late");
          allSent();
        })();
      }
    },
  });
  await sent;
  assert.equal(run.status, "succeeded", JSON.stringify(run.error));
  assert.deepEqual(seen, [["ada", "bob", "late"], ["ada", "bob", "late"]]);
  assert.deepEqual(run.nodes.count.output, ["ada", "bob", "late"]);
});
