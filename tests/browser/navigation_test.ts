/**
 * Where the user was survives a reload, back and forward, and a shared link:
 * a run's open node rows and its Graph view are in its URL, and a run's
 * "← Runs" leads back to the list as it was filtered. Ignored unless
 * FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CHROMIUM, lastRun, withPage } from "./_inspector.ts";

Deno.test({
  name:
    "inspector: a run's open node and Graph view survive a reload and back; '← Runs' keeps the list's filters",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({}, async (page, inspector, { errors }) => {
      const id = await lastRun(inspector, "flaky");
      await page.goto(new URL("#/runs?flow=flaky&status=failed", inspector.url).href);
      await page.locator(`tr[data-run="${id}"] a`, { hasText: id }).click();
      const parse = page.locator('.node-row[data-node="parse"]');
      await parse.locator(".node-summary").click();
      await parse.locator(".node-summary[aria-expanded=true]").waitFor();
      assert.match(page.url(), new RegExp(`#/runs/${id}\\?open=parse$`));

      // A reload opens the same row.
      await page.reload();
      await page.locator('.node-row[data-node="parse"] .node-summary[aria-expanded=true]')
        .waitFor();
      await page.locator('.node-row[data-node="parse"] .node-detail').waitFor();

      // The Graph view too.
      await page.locator('.view-toggle button[data-view="graph"]').click();
      assert.match(page.url(), /\?open=parse&view=graph$/);
      await page.reload();
      await page.locator(".run-graph svg").waitFor();
      assert.equal(
        await page.locator('.view-toggle button[data-view="graph"]').getAttribute("aria-pressed"),
        "true",
      );

      // "← Runs" goes back to the list as it was filtered.
      await page.locator("a.back-to-runs").click();
      await page.locator(`tr[data-run="${id}"]`).waitFor();
      assert.match(page.url(), /#\/runs\?flow=flaky&status=failed$/);
      assert.equal(await page.locator("#filter-flow").inputValue(), "flaky");
      assert.equal(await page.locator("#filter-status").inputValue(), "failed");

      // Back: the run as it was left.
      await page.goBack();
      await page.locator(".run-graph svg").waitFor();
      assert.match(page.url(), /\?open=parse&view=graph$/);
      assert.deepEqual(errors, []);
    });
  },
});
