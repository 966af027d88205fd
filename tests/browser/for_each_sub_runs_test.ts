/**
 * A forEach node running a sub-flow per item links each item's sub-run from
 * its Attempts (in item order), so that a failed item's run, and why it
 * failed, is a click away; a list whose items all succeeded links them too.
 * Ignored unless FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CHROMIUM, withPage } from "./_inspector.ts";

const FLOWS = {
  "batch.flow.yaml": `id: batch
nodes:
  - { id: list, type: transform, with: { value: [0, 1, 2, 3, 4, 5] } }
  - id: each
    type: flow
    needs: [list]
    forEach: { items: "\${{ nodes.list.output }}", concurrency: 3 }
    continueOnError: true
    with: { flow: ./item.flow.yaml, input: { n: "\${{ item }}" } }
`,
  "item.flow.yaml": `id: item
inputs:
  n: { type: number }
nodes:
  - id: check
    type: fail
    if: "\${{ inputs.n == 4 }}"
    with: { message: "item \${{ inputs.n }} is malformed" }
`,
};

Deno.test({
  name:
    "inspector: a forEach node's Attempts link each item's sub-run, in item order; a failed item's run is a click away",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ seed: false, flows: FLOWS }, async (page, inspector, { errors }) => {
      const run = await inspector.runtime.runFlow(join(inspector.dir, "flows", "batch.flow.yaml"));
      const events = await (await inspector.runtime.records()).getEvents(run.id);
      const subRun = new Map<number, string>();
      for (const e of events) {
        const ev = e as { type: string; item?: number; run?: string };
        if (ev.type === "node.subrun" && typeof ev.item === "number") subRun.set(ev.item, ev.run!);
      }
      assert.equal(subRun.size, 6);

      await page.goto(new URL(`#/runs/${run.id}`, inspector.url).href);
      await page.locator('.node-row[data-node="each"] .node-summary').click();
      const attempts = page.locator('.node-row[data-node="each"] .attempts li');
      await attempts.first().waitFor();
      assert.deepEqual(
        await attempts.evaluateAll((items) => items.map((li) => li.getAttribute("data-item"))),
        ["0", "1", "2", "3", "4", "5"],
      );
      for (const [item, id] of subRun) {
        assert.equal(
          await page.locator(`.attempts li[data-item="${item}"] a.item-run`).getAttribute("href"),
          `#/runs/${id}`,
        );
      }
      await page.locator('.attempts li[data-item="4"] a.item-run').click();
      await page.locator(".run-title .badge.status-failed").waitFor();
      await page.locator(".run-error, [role=alert]", { hasText: "item 4 is malformed" }).first()
        .waitFor();
      assert.equal(page.url(), new URL(`#/runs/${subRun.get(4)}`, inspector.url).href);
      assert.deepEqual(errors, []);
    });
  },
});
