/**
 * Keyboard use: the focused button shows it plainly. A ring of the page's
 * pale accent (#e8eefc on white, contrast 1.1:1) was all a borderless button
 * (a key tree's arrow, a run's node row) showed. Checked as WCAG's 3:1 for a
 * focus indicator against the panel it sits on, reached with Tab as a
 * keyboard user does. Ignored unless FLOWSTATE_TEST_CHROMIUM names the
 * chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { CHROMIUM, lastRun, withPage } from "./_inspector.ts";

/** The relative luminance of `rgb(r, g, b)` (WCAG 2). */
function luminance(css: string): number {
  const [r, g, b] = css.match(/\d+(\.\d+)?/g)!.slice(0, 3).map((c) => {
    const v = Number(c) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** Tab until `selector` has the focus (at most 60 presses); its ring and its panel's colour. */
async function tabTo(page: Page, selector: string) {
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press("Tab");
    const found = await page.locator(selector).evaluateAll((els) =>
      els.some((el) => el === el.ownerDocument.activeElement)
    );
    if (found) {
      return await page.locator(`${selector}:focus-visible`).evaluate((el) => {
        // The page's own window (the test's types have no DOM).
        const style = (element: unknown) =>
          (globalThis as unknown as {
            getComputedStyle(e: unknown): Record<string, string>;
          }).getComputedStyle(element);
        const own = style(el);
        let bg = "rgba(0, 0, 0, 0)";
        for (
          let p = el.parentElement;
          p && /rgba\(0, 0, 0, 0\)|transparent/.test(bg);
          p = p.parentElement
        ) {
          bg = style(p).backgroundColor;
        }
        return {
          outline: own.outlineColor,
          width: own.outlineWidth,
          styleName: own.outlineStyle,
          bg,
        };
      });
    }
  }
  throw new Error(`Tab never reached ${selector}`);
}

Deno.test({
  name: "inspector: a focused button's ring is visible (3:1 against its panel), reached with Tab",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({}, async (page, inspector, { errors }) => {
      await page.goto(new URL("#/state", inspector.url).href);
      await page.locator("[role=tree] button.toggle").first().waitFor();
      const toggle = await tabTo(page, "[role=tree] button.toggle");
      assert.notEqual(toggle.styleName, "none");
      assert.ok(parseFloat(toggle.width) >= 2, toggle.width);
      assert.ok(contrast(toggle.outline, toggle.bg) >= 3, JSON.stringify(toggle));

      const id = await lastRun(inspector, "flaky");
      await page.goto(new URL(`#/runs/${id}`, inspector.url).href);
      await page.locator(".node-row .node-summary").first().waitFor();
      const row = await tabTo(page, ".node-row .node-summary");
      assert.ok(contrast(row.outline, row.bg) >= 3, JSON.stringify(row));
      assert.deepEqual(errors, []);
    });
  },
});
