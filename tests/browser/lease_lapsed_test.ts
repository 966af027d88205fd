/**
 * The inspector on a queued run whose worker's claim lapsed (the worker is gone, no worker
 * took the run back yet), in chromium: the runs list and the run's page badge it "lease
 * lapsed" beside its `running` status (the API's `leaseLapsedAt`), as `flowstate runs ls`
 * says `running? (lease lapsed)`; they showed it plain `running`.
 *
 * Ignored (reported as such) unless FLOWSTATE_TEST_CHROMIUM names the chromium to drive.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { CHROMIUM, launchChromium, startInspector } from "./_inspector.ts";
import { waitUntil } from "../_deadline.ts";

Deno.test({
  name:
    "inspector: a queued run whose worker's lease lapsed is badged 'lease lapsed' in the runs list and on its page",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // No worker of the server's own: nothing takes the run back.
    const inspector = await startInspector({ seed: false, worker: false });
    let browser: Browser | undefined;
    try {
      const { runId } = await inspector.runtime.enqueue("greet");
      const { runId: healthy } = await inspector.runtime.enqueue("greet");
      const records = await inspector.runtime.records();
      const [gone] = await records.claimRuns({ worker: "gone", leaseMs: 300 }, 1);
      assert.equal(gone.id, runId);
      const [held] = await records.claimRuns({ worker: "alive", leaseMs: 600_000 }, 1);
      assert.equal(held.id, healthy);
      const lapsesAt = (gone.heartbeatAt ?? gone.queue!.claim!.at) + 300;
      await waitUntil("the lease's end", () => Date.now() > lapsesAt);

      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      page.setDefaultTimeout(30_000);
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(err.message));
      await page.goto(new URL("#/runs", inspector.url).href);
      const row = page.locator(`tr[data-run="${runId}"]`);
      await row.waitFor();
      assert.equal(await row.locator(".badge.status-running").textContent(), "running");
      assert.equal(await row.locator(".badge-lapsed").textContent(), "lease lapsed");
      assert.match(
        (await row.locator(".badge-lapsed").getAttribute("title"))!,
        /no heartbeat within its claim's lease .*the next worker that polls the queue takes the run back/,
      );
      // A run whose worker is alive is plain running.
      const other = page.locator(`tr[data-run="${healthy}"]`);
      await other.waitFor();
      assert.equal(await other.locator(".badge-lapsed").count(), 0);

      await row.locator(`a[href="#/runs/${runId}"]`).click();
      await page.locator(".run-title .badge-lapsed").waitFor();
      assert.equal(await page.locator(".run-title .badge.status-running").textContent(), "running");
      await page.goto(new URL(`#/runs/${healthy}`, inspector.url).href);
      await page.locator(".run-title .badge.status-running").waitFor();
      assert.equal(await page.locator(".run-title .badge-lapsed").count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      await inspector.close();
    }
  },
});
