/**
 * The inspector when the server does not answer, in a real browser (Debian's
 * chromium through playwright-core, against a real `serve()`; the network
 * failure is playwright aborting the page's requests): the page says it cannot
 * reach the server and what to do, not the browser's bare "Failed to fetch",
 * and it loads again by itself once the server answers (the live feed
 * reconnects); before, it stayed on the error until reloaded by hand. Ignored
 * unless FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CHROMIUM, withPage } from "./_inspector.ts";

Deno.test({
  name: "inspector: an unreachable server is said, and the page loads again once it answers",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ seed: false }, async (page, inspector) => {
      await inspector.runtime.runFlow({
        id: "ok",
        nodes: [{ id: "a", type: "transform", with: { value: 1 } }],
      });
      // The API and the live feed do not answer (the page itself was loaded).
      const down = /\/api\//;
      await page.route(down, (route) => route.abort("connectionrefused"));
      await page.goto(new URL("#/runs", inspector.url).href);
      const panel = page.locator(".error-panel");
      await panel.waitFor();
      const text = (await panel.textContent()) ?? "";
      assert.match(text, /Cannot reach the Flowstate server \(/);
      assert.match(text, /start it again \(flowstate serve\)/);
      assert.match(text, /This page loads again as soon as the server answers\./);
      // The server answers again: the feed reconnects and the runs show, no reload by hand.
      await page.unroute(down);
      await page.locator("table tr", { hasText: "ok" }).first().waitFor();
      assert.equal(await panel.count(), 0);
    });
  },
});
