/**
 * A run whose node has a long id, in a real browser (Debian's chromium through
 * playwright-core, against a real `serve()`): the id wraps inside its column
 * of the timeline, so it never runs over the node's status, attempts and
 * duration beside it (it used to be drawn across them). Ignored unless
 * FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CHROMIUM, withPage } from "./_inspector.ts";

const LONG = "node_with_a_really_long_identifier_".repeat(3) + "end";

Deno.test({
  name: "inspector: a long node id wraps in its timeline column, clear of its status and duration",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ seed: false }, async (page, inspector, { errors }) => {
      const run = await inspector.runtime.runFlow({
        id: "long",
        nodes: [{ id: LONG, type: "transform", with: { value: 1 } }],
      });
      await page.goto(new URL(`#/runs/${run.id}`, inspector.url).href);
      const row = page.locator(`.node-row[data-node="${LONG}"]`);
      await row.locator(".badge", { hasText: "succeeded" }).waitFor();
      const name = await row.locator(".node-name").boundingBox();
      const badge = await row.locator(".node-summary .badge").boundingBox();
      const attempts = await row.locator(".node-attempts").boundingBox();
      assert.ok(name && badge && attempts);
      // The whole id is shown, and ends before the badge begins.
      assert.equal(await row.locator(".node-name").textContent(), LONG);
      const nameRight = await row.locator(".node-name").evaluate((el) => {
        const range = el.ownerDocument.createRange();
        range.selectNodeContents(el);
        return Math.max(...[...range.getClientRects()].map((r) => r.right));
      });
      assert.ok(
        nameRight <= badge.x,
        `the id's text ends at x=${nameRight}, over the badge at x=${badge.x}`,
      );
      assert.ok(name.x + name.width <= badge.x);
      assert.ok(badge.x + badge.width <= attempts.x);
      assert.deepEqual(errors, []);
    });
  },
});
