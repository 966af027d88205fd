/**
 * The inspector's Schedules table (on the Jobs page), in chromium: an
 * entry's inputs are one line that reads as `schedules ls` prints them (a
 * text with a comma, an `=` or a line break quoted), and a long one wraps
 * inside the page instead of widening the table past it.
 *
 * Ignored (reported as such) unless FLOWSTATE_TEST_CHROMIUM names the
 * chromium to drive.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CHROMIUM, withPage } from "./_inspector.ts";

Deno.test({
  name:
    "inspector: a schedule entry's odd inputs are quoted as schedules ls quotes them; a long one wraps",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({}, async (page, inspector, watch) => {
      const long = "x".repeat(3000);
      await Deno.writeTextFile(
        join(inspector.dir, "flows", "notes.flow.yaml"),
        [
          "id: notes",
          "inputs: { text: { type: string } }",
          "schedule:",
          '  - { id: a, cron: "0 2 * * *", inputs: { text: "x, keep=1" } }',
          '  - { id: b, cron: "0 3 * * *", inputs: { text: "two\\nlines" } }',
          `  - { id: c, cron: "0 4 * * *", inputs: { text: ${long} } }`,
          "nodes:\n  - { id: say, type: log, with: { message: hi } }\n",
        ].join("\n"),
      );
      await page.goto(new URL("#/jobs", inspector.url).href);
      const row = (id: string) =>
        page.locator(`.schedules-table tr[data-schedule="flow:notes#${id}"]`);
      await row("a").waitFor();
      assert.equal(
        await row("a").locator(".schedule-inputs").innerText(),
        'inputs: text="x, keep=1"',
      );
      assert.equal(
        await row("b").locator(".schedule-inputs").innerText(),
        'inputs: text="two\\nlines"',
      );
      // The page does not scroll sideways: the long input wraps in its cell.
      const [scroll, client] = [
        await page.evaluate("document.documentElement.scrollWidth"),
        await page.evaluate("document.documentElement.clientWidth"),
      ] as number[];
      assert.ok(scroll <= client, `the page is ${scroll} px wide in a ${client} px window`);
      assert.deepEqual(watch.errors, []);
    });
  },
});
