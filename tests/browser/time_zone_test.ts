/**
 * Times in the inspector name their zone: the page shows times in the
 * browser's zone, the CLI prints UTC and a schedule has a zone of its own, so a
 * time without its zone is read in the wrong one. Ignored unless
 * FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CHROMIUM, lastRun, withPage } from "./_inspector.ts";

/** `YYYY-MM-DD HH:MM:SS ZONE` of `ms` in `timeZone`, computed here, apart from the page's code. */
function inZone(ms: number, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      timeZoneName: "short",
    }).formatToParts(ms).map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName}`;
}

Deno.test({
  name:
    "inspector: a run's start and a schedule's next run are shown in the browser's zone, named (not UTC's digits unlabelled)",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ timezoneId: "Asia/Kolkata" }, async (page, inspector, { errors }) => {
      const id = await lastRun(inspector, "flaky");
      const run = await (await inspector.runtime.records()).getRun(id);
      await page.goto(new URL(`#/runs/${id}`, inspector.url).href);
      const started = page.locator(".run-facts .fact").filter({ hasText: "started" });
      await started.waitFor();
      const expected = inZone(run!.startedAt, "Asia/Kolkata");
      assert.match(expected, / GMT\+5:30$/);
      assert.equal(
        (await started.locator(".fact-value").innerText()).replace(/ \(.*\)$/, ""),
        expected,
      );

      await page.goto(new URL("#/jobs", inspector.url).href);
      const gc = page.locator("tr", { has: page.locator("td", { hasText: "job:gc" }) });
      await gc.waitFor();
      const schedules = await (await fetch(new URL("/api/schedules", inspector.url))).json();
      const next = schedules.find((s: { id: string }) => s.id === "job:gc").nextRun;
      assert.equal(
        (await gc.locator("td").nth(4).innerText()).replace(/ \(.*\)$/, ""),
        inZone(next, "Asia/Kolkata"),
      );
      assert.deepEqual(errors, []);
    });
  },
});
