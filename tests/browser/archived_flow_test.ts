/**
 * A flow known only from the archive in the inspector, in a real browser
 * (Debian's chromium through playwright-core, against a real `serve()`):
 * another runtime over the same home (its records in memory, gone when it
 * closed) ran a flow and archived its runs, so the served records store holds
 * nothing of it; the flows list lists it, badged archived, and its page says
 * it is known only from the archive, with its last run and its version from
 * the archive. Ignored unless FLOWSTATE_TEST_CHROMIUM names the chromium
 * binary.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { openRuntime, runJob } from "../../mod.ts";
import { CHROMIUM, withPage } from "./_inspector.ts";

Deno.test({
  name: "inspector: a flow known only from the archive is listed, badged, with its page",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ hostile: false }, async (page, inspector, { errors }) => {
      let run;
      {
        await using elsewhere = await openRuntime({
          home: inspector.home,
          config: { stores: { main: { plugin: "memory" } } },
        });
        run = await elsewhere.runFlow({
          id: "gone",
          nodes: [{ id: "say", type: "log", with: { message: "once" } }],
        });
        const archived = await runJob(elsewhere, "archive", { options: { olderThan: 0 } });
        assert.equal(archived.outputs?.archived, 1, JSON.stringify(archived.outputs));
      }
      assert.equal(await (await inspector.runtime.records()).getHead("gone"), null);

      await page.goto(new URL("#/flows", inspector.url).href);
      const row = page.locator('.flows-table tr[data-flow="gone"]');
      await row.waitFor();
      assert.equal(
        await row.locator("td").first().locator(".badge-archived").textContent(),
        "archived",
      );
      assert.equal(await row.locator(".last-run .badge-archived").textContent(), "archived");
      assert.equal(await row.locator(`.last-run a[href="#/runs/${run.id}"]`).count(), 1);

      await row.locator("a.flow-link").click();
      const notice = page.locator(".notice-archived");
      await notice.waitFor();
      assert.match((await notice.textContent())!, /^Known only from the archive/);
      assert.equal(await page.locator(".run-title .badge-archived").textContent(), "archived");
      const version = page.locator(`.versions-table tr[data-version="${run.flowVersion}"]`);
      await version.waitFor();
      assert.equal(await version.locator(".badge-archived").textContent(), "archived");
      // Its graph: of the version its newest archived run ran, read from the archive.
      const graph = page.locator(".graph-panel");
      await graph.locator('.graph-node[data-node="say"]').waitFor();
      assert.match(
        (await graph.locator(".panel-head").textContent())!,
        new RegExp(`1 node · version ${run.flowVersion.slice(0, 10)} \\(archived\\)`),
      );
      assert.deepEqual(errors, []);
    });
  },
});
