/**
 * A running `forEach` node on a live run's page, in a real browser (Debian's
 * chromium through playwright-core, against a real `serve()`): its row and
 * its graph box count the items done as they end (0 → 1 → 2, the failed one
 * named), a bar shows it, and a `when: always` node is tagged while the run
 * runs. Each item waits for its own file, which the test writes (atomically:
 * "go", or "fail" to fail it). Ignored unless FLOWSTATE_TEST_CHROMIUM names
 * the chromium binary. Saves screenshots to FLOWSTATE_FOREACH_SCREENSHOT (a
 * path; `-timeline` and `-graph` go before `.png`) when set.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { CHROMIUM, eachFlow, launchChromium, releaseItem, startInspector } from "./_inspector.ts";

const ignore = CHROMIUM === undefined;
const SCREENSHOT = Deno.env.get("FLOWSTATE_FOREACH_SCREENSHOT");

async function shot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOT) return;
  await page.mouse.move(0, 0);
  await page.screenshot({ path: SCREENSHOT.replace(/(\.png)?$/, `-${name}.png`) });
}

Deno.test({
  name:
    "inspector: a running forEach node's row and graph box count its items as they end (failed ones named), and a when: node is tagged while the run runs",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inspector = await startInspector({ seed: false });
    let browser: Browser | undefined;
    try {
      await Deno.writeTextFile(
        join(inspector.dir, "flows", "each.flow.yaml"),
        eachFlow(inspector.dir),
      );
      const release = (k: number, text: "go" | "fail") => releaseItem(inspector.dir, k, text);
      const started = await fetch(new URL("/api/flows/each/runs", inspector.url), {
        method: "POST",
        headers: { authorization: "Bearer test-client", "content-type": "application/json" },
        body: JSON.stringify({ input: { dir: inspector.dir } }),
      });
      assert.equal(started.status, 202, await started.clone().text());
      const { runId } = await started.json();

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
      context.setDefaultTimeout(20_000);
      const errors: string[] = [];
      context.on("weberror", (err) => errors.push(`pageerror: ${err.error().message}`));
      context.on("console", (msg) => {
        if (msg.type() === "error") errors.push(msg.text());
      });
      const page = await context.newPage();
      await page.goto(new URL(`#/runs/${runId}`, inspector.url).href);
      const row = page.locator('.node-row[data-node="notify"]');
      const words = row.locator(".items-progress-text");
      const bar = row.locator(".items-progress");
      await page.locator('.node-row[data-node="notify"][data-status="running"]').waitFor();
      await words.filter({ hasText: /^0 of 4 items done$/ }).waitFor();
      // The when: always node has not run, and the run's record does not say when: yet.
      await page.locator('.node-row[data-node="cleanup"] .node-when')
        .filter({ hasText: "when: always" }).waitFor();
      assert.equal(await page.locator(".run-title .badge.status-running").count(), 1);

      await release(0, "go");
      await words.filter({ hasText: /^1 of 4 items done$/ }).waitFor();
      assert.equal(await bar.getAttribute("aria-valuenow"), "1");
      await release(1, "fail");
      await words.filter({ hasText: /^2 of 4 items done, 1 failed \(item 1\)$/ }).waitFor();
      assert.equal(await bar.getAttribute("aria-valuenow"), "2");
      // Its attempts so far: one failed; the others say started, not ok (one may still be going).
      await row.locator("button.node-summary").click();
      const attempts = row.locator(".attempts li");
      await attempts.first().waitFor();
      assert.equal(await attempts.first().textContent(), "item 0 #1 started");
      assert.match((await attempts.nth(1).textContent()) ?? "", /^item 1 #1 told to fail by /);
      await shot(page, "timeline");

      // The graph shows it too, on the node's box.
      await page.locator('.view-toggle button[data-view="graph"]').click();
      const box = page.locator('.flow-graph g[data-node="notify"]');
      await box.locator(".graph-mark").filter({ hasText: "running · 2/4 · 1 failed" }).waitFor();
      assert.equal(await box.locator(".graph-progress").count(), 1);
      await shot(page, "graph");
      await release(2, "go");
      await box.locator(".graph-mark").filter({ hasText: "running · 3/4 · 1 failed" }).waitFor();
      await release(3, "go");
      // The node ended: its box says so, without a bar; its row has its final items.
      await page.locator('.flow-graph g[data-node="notify"][data-status="failed"]').waitFor();
      assert.equal(await box.locator(".graph-progress").count(), 0);
      await page.locator('.view-toggle button[data-view="timeline"]').click();
      await page.locator('.node-row[data-node="cleanup"][data-status="succeeded"]').waitFor();
      await row.locator(".node-attempts").filter({ hasText: "3/4 items ok, 1 failed (item 1)" })
        .waitFor();
      assert.equal(await row.locator(".items-progress").count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      await inspector.close();
    }
  },
});
