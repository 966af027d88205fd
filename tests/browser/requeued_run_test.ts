/**
 * A queued run that went back to the queue (its worker stopped and released
 * it) and runs again: its timeline shows this attempt's nodes (the wait node
 * running, the next one pending), not the ended attempt's outcomes its record
 * keeps until each node ends again (the wait read `cancelled` while it waited).
 * Ignored unless FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startWorker } from "../../mod.ts";
import { CHROMIUM, withPage } from "./_inspector.ts";
import { waitUntil } from "../_deadline.ts";

const DEPLOY = `id: deploy
nodes:
  - { id: approve, type: wait, with: { signal: approve, message: "Deploy?" } }
  - { id: ship, type: log, needs: [approve], with: { message: shipped } }
`;

Deno.test({
  name:
    "inspector: a run released to the queue and running again shows its running node as running, not the ended attempt's cancelled",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({
      seed: false,
      worker: false,
      config: "runs:\n  abortGrace: 100ms\n",
      flows: { "deploy.flow.yaml": DEPLOY },
    }, async (page, inspector, { errors }) => {
      const rt = inspector.runtime;
      const records = await rt.records();
      const { runId } = await rt.enqueue("deploy");
      const waiting = async (starts: number) => {
        const events = await records.getEvents(runId);
        return events.filter((e) => e.type === "run.start").length === starts &&
          events.at(-1)?.type === "node.log";
      };
      // The first worker runs it to its wait, then stops: the run goes back to the queue.
      const first = startWorker(rt, { workerId: "first" });
      await waitUntil("the first attempt waits", () => waiting(1));
      await first.stop();
      const after = await records.getRun(runId);
      assert.equal(after?.status, "queued");
      assert.equal(after?.nodes.approve?.status, "cancelled", "the ended attempt's, kept");
      // The second runs it again, to its wait.
      const second = startWorker(rt, { workerId: "second" });
      try {
        await waitUntil("the second attempt waits", () => waiting(2));
        await page.goto(new URL(`#/runs/${runId}`, inspector.url).href);
        await page.locator(".run-title .badge.status-running").waitFor();
        await page.locator('.waiting-signal[data-node="approve"]').waitFor();
        assert.equal(
          await page.locator('.node-row[data-node="approve"]').getAttribute("data-status"),
          "running",
        );
        assert.equal(
          await page.locator('.node-row[data-node="ship"]').getAttribute("data-status"),
          "pending",
        );
        // Cancelling says what stops: the node running now.
        await page.getByRole("button", { name: "Cancel run" }).click();
        assert.match(
          await page.locator(".cancel-confirm .confirm-text").innerText(),
          /Its running node \(approve\) stops/,
        );
      } finally {
        await second.stop();
      }
      assert.deepEqual(errors, []);
    });
  },
});
