/**
 * The State view in a real browser (Debian's chromium through playwright-core,
 * against a real `serve()`): an entry under `flowstate/` in the records store
 * (a run's record) is shown without Edit and Delete, with a line saying it is
 * Flowstate's own (the server refuses a write there with a 403, which the
 * buttons only led to); an entry of the user's keeps them. Ignored unless
 * FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CHROMIUM, lastRun, withPage } from "./_inspector.ts";

Deno.test({
  name:
    "inspector: a run's record in the records store has no Edit or Delete, and says whose it is; a user's key keeps them",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({}, async (page, inspector, { errors }) => {
      const records = inspector.runtime.config.records;
      const runId = await lastRun(inspector, "counter");
      const open = async (key: string[]) => {
        const params = new URLSearchParams({ store: records, key: JSON.stringify(key) });
        await page.goto(new URL(`#/state?${params}`, inspector.url).href);
        await page.locator(".value-panel .value-key").filter({ hasText: key.at(-1)! }).waitFor();
      };
      await open(["flowstate", "runs", runId]);
      await page.locator(".value-panel .records-note").filter({ hasText: "Flowstate's own record" })
        .waitFor();
      assert.equal(
        await page.locator(".value-panel .records-note a").getAttribute("href"),
        `#/runs/${runId}`,
      );
      assert.equal(await page.locator(".value-panel button", { hasText: "Edit" }).count(), 0);
      assert.equal(await page.locator(".value-panel button", { hasText: "Delete" }).count(), 0);
      await page.locator(".value-panel button", { hasText: "Reload" }).waitFor();
      await open(["global", "motd"]);
      await page.getByRole("button", { name: "Edit", exact: true }).waitFor();
      await page.getByRole("button", { name: "Delete", exact: true }).waitFor();
      assert.equal(await page.locator(".value-panel .records-note").count(), 0);
      assert.deepEqual(errors, []);
    });
  },
});
