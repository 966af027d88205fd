/**
 * `runs.onFailure` in the inspector, in a real browser (Debian's chromium
 * through playwright-core, against a real `serve()`): a failed run's page
 * says which flow ran about it and links its run ("onFailure: alert ran as
 * run …"); that run's page says "reports on run …", linked back. Ignored
 * unless FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CHROMIUM, withPage } from "./_inspector.ts";

const ALERT = `id: alert
inputs:
  run: { type: object }
nodes:
  - id: tell
    type: log
    with: { message: "\${{ inputs.run.flow }} \${{ inputs.run.status }}" }
`;

const BOOM = `id: boom
nodes:
  - id: explode
    type: fail
    with: { message: kaboom }
`;

Deno.test({
  name: "inspector: a failed run links the onFailure flow's run about it, and that run links back",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({
      seed: false,
      config: "runs:\n  onFailure: { flow: alert }\n",
      flows: { "alert.flow.yaml": ALERT, "boom.flow.yaml": BOOM },
    }, async (page, inspector, { errors }) => {
      // The onFailure flow runs (and ends) before runFlow returns.
      const failed = await inspector.runtime.runFlow(
        join(inspector.dir, "flows", "boom.flow.yaml"),
      );
      assert.equal(failed.status, "failed");
      const marker = await (await inspector.runtime.records()).onFailureMarker(failed.id);
      const handler = marker?.runId;
      assert.ok(handler, JSON.stringify(marker));

      await page.goto(new URL(`#/runs/${failed.id}`, inspector.url).href);
      const fact = page.locator(".run-facts .fact-on-failure");
      await fact.waitFor();
      assert.equal(await fact.locator(".fact-label").textContent(), "onFailure");
      assert.equal(await fact.locator(".fact-value").textContent(), `alert ran as run ${handler}`);
      assert.equal(await page.locator(".reports-on-link").count(), 0);
      await fact.locator("a.on-failure-link").click();

      // The handler's page: "reports on run <the failed run>", linked back.
      await page.locator(`.view-title:has-text("${handler}")`).waitFor();
      const back = page.locator(".run-facts a.reports-on-link");
      await back.waitFor();
      assert.equal(await back.textContent(), failed.id);
      const reports = page.locator(".run-facts .fact").filter({
        has: page.locator("a.reports-on-link"),
      });
      assert.equal(await reports.locator(".fact-label").textContent(), "reports");
      assert.equal(await reports.locator(".fact-value").textContent(), `on run ${failed.id}`);
      assert.equal(await page.locator(".fact-on-failure").count(), 0);
      await back.click();
      await page.locator(`.view-title:has-text("${failed.id}")`).waitFor();
      await page.locator(".run-facts .fact-on-failure").waitFor();
      const shot = Deno.env.get("FLOWSTATE_ON_FAILURE_SCREENSHOT");
      if (shot) await page.screenshot({ path: shot, fullPage: true });
      assert.deepEqual(errors, []);
    });
  },
});
