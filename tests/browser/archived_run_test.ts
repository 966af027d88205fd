/**
 * An archived run in the inspector, in a real browser (Debian's chromium
 * through playwright-core, against a real `serve()`): after the archive job
 * moved a run out of the records store, its page (as an old link leads to
 * it) shows it with an "archived" badge, read-only, with the definition the
 * archive keeps; the runs list's "archived" box lists it. Ignored unless
 * FLOWSTATE_TEST_CHROMIUM names the chromium binary. Saves screenshots to
 * FLOWSTATE_ARCHIVED_SCREENSHOT (`-list` before `.png` for the list) when set.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { runJob } from "../../mod.ts";
import { CHROMIUM, type Inspector, lastRun, withPage } from "./_inspector.ts";

const ignore = CHROMIUM === undefined;
const SCREENSHOT = Deno.env.get("FLOWSTATE_ARCHIVED_SCREENSHOT");

/** A browser test (see {@linkcode withPage}) over a seeded inspector; no page error may occur. */
function inspectorTest(name: string, fn: (inspector: Inspector, page: Page) => Promise<void>) {
  Deno.test({
    name,
    ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await withPage({ hostile: false }, async (page, inspector, { errors }) => {
        await fn(inspector, page);
        assert.deepEqual(errors, []);
      });
    },
  });
}

inspectorTest(
  "inspector: an archived run's page shows it, badged archived, with its definition",
  async (inspector, page) => {
    const greet = await lastRun(inspector, "greet");
    const archived = await runJob(inspector.runtime, "archive", { options: { olderThan: 0 } });
    assert.equal(archived.status, "succeeded");
    assert.equal(await (await inspector.runtime.records()).getRun(greet), null, "archived");

    await page.goto(new URL(`#/runs/${greet}`, inspector.url).href);
    const badge = page.locator(".run-title .badge-archived");
    await badge.waitFor();
    assert.equal(await badge.textContent(), "archived");
    assert.equal(await page.locator(".run-title .status-succeeded").textContent(), "succeeded");
    assert.match(
      (await page.locator(".notice-archived").textContent())!,
      /^Archived: .* into runs-\d{4}-\d{2}\.ndjson\.gz\. It is shown from the archive, read-only/,
    );
    const source = page.locator(".definition-panel pre.definition-source");
    await source.waitFor();
    assert.match((await source.textContent())!, /^id: greet\n/);
    assert.match(
      (await page.locator(".definition-panel summary").textContent())!,
      /from the archive/,
    );
    // Its timeline: every node of the flow, from the archived events.
    await page.locator('.node-row[data-node="report"]').waitFor();
    assert.equal(await page.locator(".node-row").count(), 4);
    assert.equal(await page.getByRole("button", { name: "Cancel run" }).count(), 0);
    if (SCREENSHOT) {
      await page.mouse.move(0, 0);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    }

    // The list of archived runs has it, badged; the link leads back to its page.
    await page.goto(new URL("#/runs", inspector.url).href);
    await page.locator(".runs-table .empty-row").or(page.locator(".runs-table tr[data-run]"))
      .first().waitFor();
    assert.equal(await page.locator(`tr[data-run="${greet}"]`).count(), 0, "not recorded");
    await page.locator("#filter-archived").check();
    const row = page.locator(`tr[data-run="${greet}"]`);
    await row.waitFor();
    assert.equal(await row.locator(".badge-archived").textContent(), "archived");
    assert.equal(await page.locator("h1.view-title").textContent(), "Archived runs");
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT.replace(/(\.png)?$/, "-list.png") });
    await row.locator(`a[href="#/runs/${greet}"]`).click();
    await page.locator(".run-title .badge-archived").waitFor();
  },
);

inspectorTest(
  "inspector: a flow whose runs were archived shows its last run, metrics chart and archived version",
  async (inspector, page) => {
    const counter = await lastRun(inspector, "counter");
    const records = await inspector.runtime.records();
    const [head, ...older] = await records.listVersions("counter");
    assert.equal(older.length, 1, "counter has two versions");
    const first = older[0].hash;
    await runJob(inspector.runtime, "archive", { options: { olderThan: 0 } });
    const retention = await runJob(inspector.runtime, "retention", { options: { maxAge: 0 } });
    assert.equal(retention.status, "succeeded");
    assert.equal(await records.getVersion("counter", first), null, "deleted from the store");

    // The flows list: counter's last run is its archived one, badged, not "never run".
    await page.goto(new URL("#/flows", inspector.url).href);
    const row = page.locator('.flows-table tr[data-flow="counter"]');
    await row.locator(".last-run").waitFor();
    assert.equal(await row.locator(".last-run .badge-archived").textContent(), "archived");
    assert.equal(
      await row.locator(`.last-run a[href="#/runs/${counter}"]`).count(),
      1,
      "links the archived run",
    );

    // Its page: the chart has the archived runs' bars; the head's parent, deleted from the
    // records store, is listed from the archive and diffed against the head.
    await page.goto(new URL("#/flows/counter", inspector.url).href);
    const archivedVersion = page.locator(`.versions-table tr[data-version="${first}"]`);
    await archivedVersion.waitFor();
    assert.equal(await archivedVersion.locator(".badge-archived").textContent(), "archived");
    await page.locator("table.diff").waitFor();
    assert.match(
      (await page.locator(".diff-title").textContent())!,
      new RegExp(`^${first.slice(0, 10)} → ${head.hash.slice(0, 10)}`),
    );
    const metrics = await (await fetch(new URL("/api/metrics?flow=counter", inspector.url)))
      .json() as { version: string; count: number }[];
    const count = metrics.find((m) => m.version === "*")!.count;
    assert.ok(count > 1);
    assert.equal(
      await page.locator('.metrics-panel svg.chart[aria-label^="durations"] rect.bar').count(),
      count,
    );
    assert.match(
      (await page.locator(".metrics-panel .panel-head").textContent())!,
      /archived runs included/,
    );

    // An archived run of the first version links its version, shown from the archive.
    const { runs } = await (await fetch(
      new URL("/api/runs?archived=true&flow=counter&limit=10", inspector.url),
    )).json() as { runs: { id: string; flowVersion: string }[] };
    const old = runs.find((r) => r.flowVersion === first)!;
    await page.goto(new URL(`#/runs/${old.id}`, inspector.url).href);
    const link = page.locator(".run-facts a.version-link");
    await link.waitFor();
    await link.click();
    await page.locator(`.versions-table tr[data-version="${first}"] input[name="to"]:checked`)
      .waitFor();
    await page.locator(".diff-panel pre.source, .diff-panel table.diff").first().waitFor();
  },
);
