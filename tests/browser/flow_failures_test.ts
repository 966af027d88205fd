/**
 * From a flow's page to why it failed: its "failed" count leads to the runs
 * list filtered to the flow's failed runs, and each bar of its durations
 * chart opens that run. Ignored unless FLOWSTATE_TEST_CHROMIUM names the
 * chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CHROMIUM, lastRun, withPage } from "./_inspector.ts";

Deno.test({
  name:
    "inspector: a flow's failed count opens its failed runs, and a bar of its chart opens its run",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({}, async (page, inspector, { errors }) => {
      const id = await lastRun(inspector, "flaky");
      await page.goto(new URL("#/flows/flaky", inspector.url).href);
      const failed = page.locator("a.stat-link", { hasText: "failed" });
      assert.equal(await failed.locator(".stat-value").innerText(), "1");
      await failed.click();
      await page.locator(`tr[data-run="${id}"][data-status="failed"]`).waitFor();
      assert.match(page.url(), /#\/runs\?flow=flaky&status=failed$/);
      assert.equal(await page.locator("#filter-status").inputValue(), "failed");

      await page.goBack();
      const bar = page.locator(".chart a.bar-link");
      await bar.first().waitFor();
      assert.equal(await bar.count(), 1);
      assert.equal(await bar.getAttribute("href"), `#/runs/${id}`);
      await bar.locator("rect").click();
      await page.locator(".run-title .badge.status-failed").waitFor();
      await page.locator(".run-error", { hasText: "upstream answered 503" }).waitFor();
      assert.deepEqual(errors, []);
    });
  },
});
