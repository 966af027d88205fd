/**
 * A run's "State changes" in the inspector, in a real browser (Debian's
 * chromium through playwright-core, against a real `serve()`): per node, the
 * keys it wrote with before → after from the change feed; keys only, and
 * why, for a store without a feed; the empty and the error states. Ignored
 * unless FLOWSTATE_TEST_CHROMIUM names the chromium binary. Saves a
 * screenshot of the view to FLOWSTATE_RUNVIEW_SCREENSHOT when set.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { withActor } from "../../mod.ts";
import { CHROMIUM, lastRun, withPage } from "./_inspector.ts";
import { within } from "../_deadline.ts";

const ignore = CHROMIUM === undefined;
const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
const SCREENSHOT = Deno.env.get("FLOWSTATE_RUNVIEW_SCREENSHOT");

/** Save a screenshot when FLOWSTATE_RUNVIEW_SCREENSHOT is set (`name` goes before `.png`). */
async function shot(page: Page, name: string, panelOnly: boolean): Promise<void> {
  if (!SCREENSHOT) return;
  const path = name ? SCREENSHOT.replace(/(\.png)?$/, `-${name}.png`) : SCREENSHOT;
  await page.mouse.move(0, 0);
  if (panelOnly) await page.locator(".changes-panel").screenshot({ path });
  else await page.screenshot({ path, fullPage: true });
}

Deno.test({
  name: "inspector: a run's state changes show, per node, each key's value before → after",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ feed: true, hostile: false }, async (page, inspector, { errors }) => {
      // greet ran for Ada, Grace, Edsger: the last run's remember node set last-name.
      const greet = await lastRun(inspector, "greet");
      await page.goto(new URL(`#/runs/${greet}`, inspector.url).href);
      const remember = page.locator('.changes-panel .node-changes[data-node="remember"]');
      const row = remember.locator(`tr.change-row[data-key='["flow","greet","last-name"]']`);
      await row.waitFor();
      assert.equal(await row.locator(".change-key").textContent(), "flow / greet / last-name");
      assert.equal(await row.locator(".change-before").textContent(), '"Grace"');
      assert.equal(await row.locator(".change-after").textContent(), '"Edsger"');
      assert.match((await row.locator(".change-meta").textContent())!, /^default #\d+$/);
      // Only the node that wrote has a section; the summary counts the change.
      assert.equal(await page.locator(".changes-panel .node-changes").count(), 1);
      assert.match(
        (await page.locator(".changes-panel .panel-head").textContent())!,
        /1 change from the change feed of store "default"/,
      );
      assert.equal(await page.locator(".changes-panel .feedless").count(), 0);

      // The counter's second version: bump (from 6 on) and stamp, in node order.
      const counter = await lastRun(inspector, "counter");
      await page.goto(new URL(`#/runs/${counter}`, inspector.url).href);
      const sections = page.locator(".changes-panel .node-changes");
      await sections.nth(1).waitFor();
      assert.deepEqual(await sections.evaluateAll((els) => els.map((e) => e.dataset.node)), [
        "bump",
        "stamp",
      ]);
      const bump = sections.nth(0).locator("tr.change-row");
      assert.equal(await bump.locator(".change-before").textContent(), "12");
      assert.equal(await bump.locator(".change-after").textContent(), "14");
      const stamp = sections.nth(1).locator("tr.change-row");
      assert.equal(await stamp.locator(".change-before").textContent(), '{"count":12,"by":2}');
      assert.equal(await stamp.locator(".change-after").textContent(), '{"count":14,"by":2}');
      await shot(page, "", false);

      // A long value is cut, with a button for all of it.
      const long = "Ada Lovelace, Countess of Lovelace, who wrote the first program ".repeat(3);
      const file = join(inspector.dir, "flows", "greet.flow.yaml");
      const run = await inspector.runtime.runFlow(file, { input: { name: long } });
      await page.goto(new URL(`#/runs/${run.id}`, inspector.url).href);
      const after = page.locator(".changes-panel tr.change-row .change-after");
      await after.waitFor();
      assert.ok((await after.locator("code").textContent())!.endsWith("…"));
      assert.equal(await after.locator("pre").count(), 0);
      await shot(page, "long", true);
      await after.getByRole("button", { name: /show all/ }).click();
      assert.equal(await after.locator("pre.change-full").textContent(), JSON.stringify(long));
      await after.getByRole("button", { name: "show less" }).click();
      await after.locator("code").waitFor();

      // The key leads to its value in the state view.
      await page.locator(".changes-panel tr.change-row .change-key a").click();
      await page.locator(".value-panel pre.value-view").filter({ hasText: "Countess" }).waitFor();

      // A run that wrote nothing says so.
      const flaky = await lastRun(inspector, "flaky");
      await page.goto(new URL(`#/runs/${flaky}`, inspector.url).href);
      await page.locator(".changes-panel .changes-empty").filter({
        hasText: "This run changed no state",
      }).waitFor();
      assert.deepEqual(errors, []);
    });
  },
});

Deno.test({
  name:
    "inspector: without a change feed the run's written keys show, with why there are no values",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ hostile: false }, async (page, inspector, { errors }) => {
      const greet = await lastRun(inspector, "greet");
      await page.goto(new URL(`#/runs/${greet}`, inspector.url).href);
      const notice = page.locator('.changes-panel .feedless[data-store="default"]');
      await notice.waitFor();
      assert.match(
        (await notice.textContent())!,
        /^Store "default" keeps no change feed, so only the keys .* add changes: \{ keep: 30d \} to stores\.default in flowstate\.yaml\.$/,
      );
      const row = page.locator('.changes-panel .node-changes[data-node="remember"] tr.unfed');
      assert.equal(await row.locator(".change-key").textContent(), "flow / greet / last-name");
      assert.match((await row.textContent())!, /values not recorded/);
      await shot(page, "nofeed", true);
      await row.locator(".change-key a").click();
      await page.locator(".value-panel pre.value-view").filter({ hasText: '"Edsger"' }).waitFor();

      // An API that fails: the panel says so and offers to try again; the rest of the run shows.
      let fail = true;
      await page.route("**/api/runs/*/changes*", (route) =>
        fail
          ? route.fulfill({
            status: 500,
            contentType: "application/json",
            body: JSON.stringify({ error: { code: "internal", message: "the store is down" } }),
          })
          : route.continue());
      await page.goto(new URL(`#/runs/${greet}`, inspector.url).href);
      const error = page.locator(".changes-panel .changes-error");
      await error.filter({ hasText: "Could not load this run's state changes: the store is down" })
        .waitFor();
      await page.locator('.node-row[data-node="remember"]').waitFor();
      fail = false;
      await error.getByRole("button", { name: "Try again" }).click();
      await notice.waitFor();
      assert.equal(await error.count(), 0);
      assert.deepEqual(
        errors.filter((e) => !/status of 500/.test(e)),
        [],
      );
    });
  },
});

Deno.test({
  name: "inspector: a running run's state changes appear as its nodes write them",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ feed: true, seed: false }, async (page, inspector, { errors }) => {
      const release = join(inspector.dir, "release");
      const file = join(inspector.dir, "flows", "steps.flow.yaml");
      await Deno.writeTextFile(
        file,
        `id: steps
nodes:
  - id: hold
    type: ${join(FIXTURES, "nodes", "wait_for_file.ts")}
    with: { path: ${JSON.stringify(release)} }
    permissions: { read: [${JSON.stringify(inspector.dir)}] }
  - id: first
    type: state.set
    needs: [hold]
    with: { scope: flow, key: step, value: one }
  - id: gate
    type: ${join(FIXTURES, "nodes", "wait_for_file.ts")}
    needs: [first]
    with: { path: ${JSON.stringify(release + "-2")} }
    permissions: { read: [${JSON.stringify(inspector.dir)}] }
  - id: second
    type: state.set
    needs: [gate]
    with: { scope: flow, key: step, value: two }
`,
      );
      const started = Promise.withResolvers<string>();
      // In the server's process: its node events reach the page as they happen.
      const ended = inspector.runtime.runFlow(file, { onStart: (id) => started.resolve(id) });
      const id = await within(started.promise, "the started event");
      await page.goto(new URL(`#/runs/${id}`, inspector.url).href);
      await page.locator("#live.on").waitFor();
      await page.locator(".changes-panel .changes-empty").filter({
        hasText: "No state changed yet",
      }).waitFor();
      await Deno.writeTextFile(release, "go");
      const first = page.locator('.node-changes[data-node="first"] tr.change-row');
      await first.locator(".change-after").filter({ hasText: '"one"' }).waitFor();
      assert.equal(await first.locator(".change-before").textContent(), "absent");
      assert.equal(await page.locator('.node-changes[data-node="second"]').count(), 0);
      await Deno.writeTextFile(release + "-2", "go");
      const second = page.locator('.node-changes[data-node="second"] tr.change-row');
      await second.locator(".change-after").filter({ hasText: '"two"' }).waitFor();
      assert.equal(await second.locator(".change-before").textContent(), '"one"');
      assert.equal((await ended).status, "succeeded");
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      assert.deepEqual(errors, []);
    });
  },
});

Deno.test({
  name: "inspector: a run with more changes than a page loads the rest on demand",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ feed: true, seed: false }, async (page, inspector, { errors }) => {
      const release = join(inspector.dir, "release");
      const file = join(inspector.dir, "flows", "bulk.flow.yaml");
      await Deno.writeTextFile(
        file,
        `id: bulk
nodes:
  - id: load
    type: ${join(FIXTURES, "nodes", "wait_for_file.ts")}
    with: { path: ${JSON.stringify(release)} }
    permissions: { read: [${JSON.stringify(inspector.dir)}] }
`,
      );
      const started = Promise.withResolvers<string>();
      const ended = inspector.runtime.runFlow(file, { onStart: (id) => started.resolve(id) });
      const id = await within(started.promise, "the started event");
      // 250 changes made in the run's name while it runs (as its node would through state).
      const store = await inspector.runtime.store("default");
      const op = store.atomic();
      for (let i = 0; i < 250; i++) op.set(["flow", "bulk", `k${String(i).padStart(3, "0")}`], i);
      await withActor({ runId: id, flowId: "bulk", nodeId: "load" }, () => op.commit());
      await Deno.writeTextFile(release, "go");
      assert.equal((await ended).status, "succeeded");

      await page.goto(new URL(`#/runs/${id}`, inspector.url).href);
      const rows = page.locator('.node-changes[data-node="load"] tr.change-row');
      await rows.nth(199).waitFor();
      assert.equal(await rows.count(), 200);
      // A count of the feed read so far says so: not "200 keys written" of a node that wrote 250.
      const count = page.locator('.node-changes[data-node="load"] .node-changes-title');
      assert.equal(await count.textContent(), "load · 200+ keys written");
      await page.getByRole("button", { name: "Load more changes" }).click();
      await rows.nth(249).waitFor();
      assert.equal(await rows.count(), 250);
      assert.equal(await count.textContent(), "load · 250 keys written");
      assert.equal(await rows.nth(249).locator(".change-key").textContent(), "flow / bulk / k249");
      assert.equal(await page.getByRole("button", { name: "Load more changes" }).count(), 0);
      assert.deepEqual(errors, []);
    });
  },
});
