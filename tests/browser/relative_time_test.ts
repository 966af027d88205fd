/**
 * "3 s ago" stays true on a page left open: the runs list, a run's page and the
 * jobs page write their relative times again as time passes (the browser's
 * clock is moved forward by playwright; no sleep). Ignored unless
 * FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CHROMIUM, lastRun, withPage } from "./_inspector.ts";

Deno.test({
  name: "inspector: relative times ('5 s ago') move on while the page stays open",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({}, async (page, inspector, { errors }) => {
      await page.clock.install();
      const id = await lastRun(inspector, "flaky");
      await page.goto(new URL("#/runs?flow=flaky", inspector.url).href);
      const started = page.locator(`tr[data-run="${id}"] td.started`);
      await started.waitFor();
      assert.match(await started.innerText(), /^(now|\d+ s ago)$/);
      await page.clock.fastForward("03:00:00");
      await page.locator(`tr[data-run="${id}"] td.started`, { hasText: /^3 h ago$/ }).waitFor();

      await page.goto(new URL(`#/runs/${id}`, inspector.url).href);
      const fact = page.locator(".run-facts .fact", { hasText: "started" }).locator(".ago");
      await fact.waitFor();
      assert.equal(await fact.innerText(), "3 h ago");
      await page.clock.fastForward("24:00:00");
      await page.locator(".run-facts .fact .ago", { hasText: /^1 d ago$/ }).waitFor();

      await page.goto(new URL("#/jobs", inspector.url).href);
      const gc = page.locator('tr[data-job="gc"] .last-run a');
      await gc.waitFor();
      assert.equal(await gc.innerText(), "1 d ago");
      await page.clock.fastForward("48:00:00");
      await page.locator('tr[data-job="gc"] .last-run a', { hasText: /^3 d ago$/ }).waitFor();
      assert.deepEqual(errors, []);
    });
  },
});
