/**
 * Resuming a failed run in the inspector, in a real browser (Debian's
 * chromium through playwright-core, against a real `serve()`): a failed run's
 * page has a "Resume from failure" button beside "Re-run with the same
 * inputs"; it starts a new run and goes to its page, which links the run it
 * resumes and marks the nodes it reused. A run that succeeded has no such
 * button, and the failed run, once resumed, links the run that resumes it
 * instead ("Resumed by run …"). Ignored unless FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CHROMIUM, withPage } from "./_inspector.ts";
import { waitUntil } from "../_deadline.ts";

const BILLING = (failing: boolean) =>
  `id: billing
nodes:
  - { id: charge, type: state.increment, with: { key: charged } }
  - id: mail
    type: ${failing ? "fail" : "transform"}
    needs: [charge]
    with: ${failing ? "{ message: smtp down }" : '{ value: "mailed #${{ nodes.charge.output }}" }'}
`;

Deno.test({
  name:
    "inspector: Resume from failure starts a run that reuses what succeeded, and its page says so",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({
      seed: false,
      flows: { "billing.flow.yaml": BILLING(true) },
    }, async (page, inspector, { errors }) => {
      const file = join(inspector.dir, "flows", "billing.flow.yaml");
      const failed = await inspector.runtime.runFlow(file);
      assert.equal(failed.status, "failed");
      // The bug is fixed: mail works now.
      await Deno.writeTextFile(file, BILLING(false));

      await page.goto(new URL(`#/runs/${failed.id}`, inspector.url).href);
      await page.getByRole("button", { name: "Re-run with the same inputs" }).waitFor();
      await page.getByRole("button", { name: "Resume from failure" }).click();
      await page.waitForURL((url) =>
        url.hash.startsWith("#/runs/") && !url.hash.endsWith(failed.id)
      );
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      const id = new URL(page.url()).hash.slice("#/runs/".length).split("?")[0];
      const resumed = await (await inspector.runtime.records()).getRun(id);
      assert.equal(resumed?.resumeOf, failed.id);
      assert.equal(resumed?.nodes.mail.output, "mailed #1", "charged once");

      // The page links the run it resumes and marks the reused node in the timeline.
      const link = page.locator(".run-facts a.resumes-link");
      await link.waitFor();
      assert.equal(await link.textContent(), failed.id);
      const reused = page.locator('.node-row[data-node="charge"] .node-reused');
      await reused.waitFor();
      assert.equal(await reused.textContent(), ` reused from ${failed.id}`);
      assert.equal(await page.locator('.node-row[data-node="mail"] .node-reused').count(), 0);
      // It succeeded: nothing to resume.
      assert.equal(await page.getByRole("button", { name: "Resume from failure" }).count(), 0);

      // The run it resumes is resumed already: a link to the run that resumes it, no button.
      await link.click();
      await page.locator(`.view-title:has-text("${failed.id}")`).waitFor();
      const resumedBy = page.getByRole("link", { name: `Resumed by run ${id}` });
      await resumedBy.waitFor();
      assert.equal(await page.getByRole("button", { name: "Resume from failure" }).count(), 0);
      await resumedBy.click();
      await page.locator(`.view-title:has-text("${id}")`).waitFor();
      assert.deepEqual(errors, []);
    });
  },
});

Deno.test({
  name:
    "inspector: a failed run a queue node enqueued has Resume from failure (nothing waits for it: it is not a sub-run)",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({
      seed: false,
      flows: {
        "billing.flow.yaml": BILLING(true),
        "nightly.flow.yaml":
          "id: nightly\nnodes:\n  - { id: bill, type: queue, with: { flow: billing } }\n",
      },
    }, async (page, inspector, { errors }) => {
      const nightly = await inspector.runtime.runFlow(
        join(inspector.dir, "flows", "nightly.flow.yaml"),
      );
      assert.equal(nightly.status, "succeeded");
      const childId = (nightly.nodes.bill.output as { runId: string }).runId;
      const records = await inspector.runtime.records();
      await waitUntil(
        "the server's worker ran the enqueued run",
        async () => (await records.getRun(childId))?.status === "failed",
      );
      await Deno.writeTextFile(join(inspector.dir, "flows", "billing.flow.yaml"), BILLING(false));

      await page.goto(new URL(`#/runs/${childId}`, inspector.url).href);
      await page.getByRole("button", { name: "Resume from failure" }).click();
      await page.waitForURL((url) => url.hash.startsWith("#/runs/") && !url.hash.endsWith(childId));
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      const id = new URL(page.url()).hash.slice("#/runs/".length).split("?")[0];
      const resumed = await records.getRun(id);
      assert.equal(resumed?.resumeOf, childId);
      assert.equal(resumed?.nodes.charge.reused, childId, "charged once");
      assert.deepEqual(errors, []);
    });
  },
});

Deno.test({
  name:
    "inspector: a flow node's row links its sub-run; resuming a run whose sub-flow failed resumes the sub-run (its charge reused)",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({
      seed: false,
      flows: {
        "billing.flow.yaml": BILLING(true),
        "order.flow.yaml":
          "id: order\nnodes:\n  - { id: bill, type: flow, with: { flow: ./billing.flow.yaml } }\n",
      },
    }, async (page, inspector, { errors }) => {
      const file = join(inspector.dir, "flows", "order.flow.yaml");
      const failed = await inspector.runtime.runFlow(file);
      assert.equal(failed.status, "failed");
      const [sub] = failed.nodes.bill.subRuns!;
      await Deno.writeTextFile(join(inspector.dir, "flows", "billing.flow.yaml"), BILLING(false));

      await page.goto(new URL(`#/runs/${failed.id}`, inspector.url).href);
      const subLink = page.locator('.node-row[data-node="bill"] .node-sub-runs a');
      await subLink.waitFor();
      assert.equal(await subLink.textContent(), sub);
      await page.getByRole("button", { name: "Resume from failure" }).click();
      await page.waitForURL((url) =>
        url.hash.startsWith("#/runs/") && !url.hash.endsWith(failed.id)
      );
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      const id = new URL(page.url()).hash.slice("#/runs/".length).split("?")[0];
      const records = await inspector.runtime.records();
      const resumed = (await records.getRun(id))!;
      const [again] = resumed.nodes.bill.subRuns!;
      // The new sub-run's page, through the row's link: its charge is the first one's.
      const againLink = page.locator('.node-row[data-node="bill"] .node-sub-runs a');
      await againLink.waitFor();
      assert.equal(await againLink.textContent(), again);
      await againLink.click();
      await page.locator(`.view-title:has-text("${again}")`).waitFor();
      const reused = page.locator('.node-row[data-node="charge"] .node-reused');
      await reused.waitFor();
      assert.equal(await reused.textContent(), ` reused from ${sub}`);
      assert.equal((await records.getRun(again!))?.nodes.mail.output, "mailed #1", "charged once");
      assert.deepEqual(errors, []);
    });
  },
});
