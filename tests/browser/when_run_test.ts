/**
 * A run with `when:` nodes in the inspector, in a real browser (Debian's
 * chromium through playwright-core, against a real `serve()`): the node that
 * ran on failure and the one skipped because nothing it watched failed show
 * their status and their `when:`. Ignored unless FLOWSTATE_TEST_CHROMIUM
 * names the chromium binary.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CHROMIUM, withPage } from "./_inspector.ts";

Deno.test({
  name: "inspector: a node of when: on_failure shows its status and its when:",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ seed: false }, async (page, inspector, { errors }) => {
      const run = await inspector.runtime.runFlow({
        id: "alerting",
        nodes: [
          { id: "work", type: "fail", with: { message: "broke" } },
          { id: "next", type: "log", needs: ["work"], with: { message: "never" } },
          { id: "alert", type: "log", when: "on_failure", with: { message: "alerted" } },
        ],
      });
      assert.equal(run.status, "failed");
      await page.goto(new URL(`#/runs/${run.id}`, inspector.url).href);
      const alert = page.locator('.node-row[data-node="alert"][data-status="succeeded"]');
      await alert.waitFor();
      assert.equal(await alert.locator(".node-when").textContent(), " when: on_failure");
      assert.equal(await alert.locator(".node-name").textContent(), "alert when: on_failure");
      await page.locator('.node-row[data-node="work"][data-status="failed"]').waitFor();
      const next = page.locator('.node-row[data-node="next"]');
      await next.waitFor();
      assert.equal(await next.getAttribute("data-status"), "skipped");
      assert.equal(await next.locator(".node-when").count(), 0);
      const shot = Deno.env.get("FLOWSTATE_WHEN_SCREENSHOT");
      if (shot) await page.screenshot({ path: shot, fullPage: true });
      assert.deepEqual(errors, []);
    });
  },
});
