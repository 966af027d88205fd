/**
 * Re-running a run from a chosen node in the inspector, in a real browser
 * (Debian's chromium through playwright-core, against a real `serve()`): a
 * node's row in the timeline (opened from the timeline, or from its box in
 * the graph) has "Re-run from here"; it asks for a confirmation saying what
 * runs again and what keeps its output, then starts a resume from that node
 * (`POST /api/runs/{id}/resume` with `from`) and goes to the new run's page.
 * A refusal of the server is shown in the page; a run that cannot be resumed
 * offers no such button. Ignored unless FLOWSTATE_TEST_CHROMIUM names the
 * chromium binary.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page } from "playwright-core";
import type { RunRecord } from "../../src/records/types.ts";
import { CHROMIUM, type Inspector, type Watch, withPage } from "./_inspector.ts";

/** fetch → parse → enrich → report, and audit beside them (it needs fetch only). */
const PIPELINE = `id: pipeline
nodes:
  - { id: fetch, type: state.increment, with: { key: fetched } }
  - id: parse
    type: transform
    needs: [fetch]
    with: { value: "parsed #\${{ nodes.fetch.output }}" }
  - id: audit
    type: transform
    needs: [fetch]
    with: { value: "audited #\${{ nodes.fetch.output }}" }
  - id: enrich
    type: state.increment
    needs: [parse]
    with: { key: enriched }
  - id: report
    type: transform
    needs: [enrich]
    with: { value: "report #\${{ nodes.enrich.output }}" }
`;

/**
 * A browser test on an inspector (with `token`, when given) whose pipeline ran once and
 * succeeded: `fn` gets the page, the inspector, what went wrong in the page, and that run.
 */
function pipelineTest(
  name: string,
  fn: (page: Page, inspector: Inspector, watch: Watch, first: RunRecord) => Promise<void>,
  token?: string,
): void {
  Deno.test({
    name,
    ignore: CHROMIUM === undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await withPage(
        { seed: false, flows: { "pipeline.flow.yaml": PIPELINE }, ...(token ? { token } : {}) },
        async (page, inspector, watch) => {
          const file = join(inspector.dir, "flows", "pipeline.flow.yaml");
          const first = await inspector.runtime.runFlow(file);
          assert.equal(first.status, "succeeded");
          await fn(page, inspector, watch, first);
        },
      );
    },
  });
}

/** Confirms the re-run from `node` of run `first` and checks the new run, its page and record. */
async function confirmAndCheck(
  page: Page,
  inspector: Inspector,
  first: RunRecord,
  node: string,
): Promise<void> {
  const confirm = page.locator(`.node-row[data-node="${node}"] .rerun-confirm`);
  await confirm.waitFor();
  assert.equal(
    (await confirm.locator("p").textContent())?.replace(/\s+/g, " "),
    "A new run with this run's inputs runs enrich and 1 other node again; " +
      "3 nodes keep their recorded outputs (marked reused).",
  );
  // Why, as the server decides it (GET /api/runs/{id}/resume?from=…).
  assert.deepEqual(
    await confirm.locator(".rerun-why li").allTextContents(),
    ["report: needs enrich, which runs again"],
  );
  await confirm.getByRole("button", { name: `Re-run from ${node}` }).click();
  await page.waitForURL((url) =>
    url.hash.startsWith("#/runs/") && !url.hash.startsWith(`#/runs/${first.id}`)
  );
  await page.locator(".run-title .badge.status-succeeded").waitFor();
  const id = new URL(page.url()).hash.slice("#/runs/".length).split("?")[0];

  // The record: the nodes before enrich reused, enrich and report ran again.
  const again = await (await inspector.runtime.records()).getRun(id);
  assert.equal(again?.resumeOf, first.id);
  for (const reused of ["fetch", "parse", "audit"]) {
    assert.equal(again?.nodes[reused].reused, first.id, reused);
    assert.deepEqual(again?.nodes[reused].output, first.nodes[reused].output, reused);
  }
  for (const ran of ["enrich", "report"]) assert.equal(again?.nodes[ran].reused, undefined, ran);
  assert.equal(again?.nodes.fetch.output, 1, "fetch did not run again");
  assert.equal(again?.nodes.enrich.output, 2, "enrich ran again");
  assert.equal(again?.nodes.report.output, "report #2");

  // The new run's page marks the reused nodes, and links the run it resumes.
  for (const reused of ["fetch", "parse", "audit"]) {
    await page.locator(`.node-row[data-node="${reused}"] .node-reused`).waitFor();
  }
  for (const ran of ["enrich", "report"]) {
    assert.equal(await page.locator(`.node-row[data-node="${ran}"] .node-reused`).count(), 0);
  }
  assert.equal(await page.locator(".run-facts a.resumes-link").textContent(), first.id);
}

pipelineTest(
  "inspector: Re-run from here in a node's row re-runs it and what needs it, the rest reused",
  async (page, inspector, { errors }, first) => {
    await page.goto(new URL(`#/runs/${first.id}`, inspector.url).href);
    await page.locator(".run-title .badge.status-succeeded").waitFor();
    // A run that succeeded: nothing to resume from its failure.
    assert.equal(await page.getByRole("button", { name: "Resume from failure" }).count(), 0);
    await page.locator('.node-row[data-node="enrich"] button.node-summary').click();
    const rerun = page.locator('.node-row[data-node="enrich"] button.rerun-from');
    await rerun.click();
    // Cancel closes the confirmation and starts nothing.
    await page.locator('.node-row[data-node="enrich"] button.rerun-cancel').click();
    await page.locator(".rerun-confirm").waitFor({ state: "detached" });
    await rerun.click();
    await confirmAndCheck(page, inspector, first, "enrich");

    // The run re-run from is resumed now: its page says by which run, and offers no re-run.
    await page.goto(new URL(`#/runs/${first.id}`, inspector.url).href);
    await page.locator(".run-title a.resumed-by").waitFor();
    await page.locator('.node-row[data-node="enrich"] button.node-summary').click();
    await page.locator('.node-row[data-node="enrich"] .rerun-note').waitFor();
    assert.equal(await page.locator("button.rerun-from").count(), 0);
    assert.deepEqual(errors, []);
  },
);

const token = "rerun-test-token-0123456789abcdef";
pipelineTest(
  "inspector: a node's box in the graph leads to Re-run from here (keyboard too, with a token)",
  async (page, inspector, { errors }, first) => {
    await page.goto(new URL(`#token=${token}`, inspector.url).href);
    await page.waitForURL((url) => !url.href.includes(token));
    await page.goto(new URL(`#/runs/${first.id}`, inspector.url).href);
    await page.locator('.view-toggle button[data-view="graph"]').click();
    const box = page.locator('.run-graph .graph-node[data-node="enrich"]');
    await box.focus();
    await page.keyboard.press("Enter");
    // The box opened its row, the focus on its re-run button: Enter asks, then confirms.
    const rerun = page.locator('.node-row[data-node="enrich"] button.rerun-from');
    await page.locator('.node-row[data-node="enrich"] button.rerun-from:focus').waitFor();
    assert.equal(await rerun.getAttribute("aria-expanded"), "false");
    await page.keyboard.press("Enter");
    await page.locator("button.rerun-confirm-go:focus").waitFor();
    await confirmAndCheck(page, inspector, first, "enrich");
    assert.deepEqual(errors, []);
  },
  token,
);

pipelineTest(
  "inspector: the server's refusal of a re-run shows in the page; no re-run where refused",
  async (page, inspector, watch, first) => {
    await page.goto(new URL(`#/runs/${first.id}`, inspector.url).href);
    await page.locator('.node-row[data-node="parse"] button.node-summary').click();
    await page.locator('.node-row[data-node="parse"] button.rerun-from').click();
    const go = page.getByRole("button", { name: "Re-run from parse" });
    await go.waitFor();
    // Meanwhile another client resumes the run: the server refuses this one (409).
    const other = await inspector.runtime.resumeRun(first.id, { from: "report" });
    await go.click();
    const alert = page.locator('.node-row[data-node="parse"] .rerun-error[role="alert"]');
    await alert.waitFor();
    assert.match(
      (await alert.textContent()) ?? "",
      new RegExp(`already resumed by run ${other.id}`),
    );
    // Its open node is in its URL (`?open=`).
    assert.match(page.url(), new RegExp(`#/runs/${first.id}(\\?|$)`), "stayed on the run's page");
    assert.equal(await go.isEnabled(), true, "the button can be pressed again");
    watch.errors = watch.errors.filter((e) => !/status of 409/.test(e));
    assert.deepEqual(watch.errors, []);

    // A running run offers none: one that waits for a signal, its first node done.
    let resolveId!: (id: string) => void;
    const started = new Promise<string>((r) => resolveId = r);
    const controller = new AbortController();
    const running = inspector.runtime.runFlow({
      id: "waits",
      nodes: [
        { id: "before", type: "transform", with: { value: 1 } },
        { id: "hold", type: "wait", needs: ["before"], with: { signal: "go" } },
      ],
    }, {
      signal: controller.signal,
      onEvent: (e, run) => {
        if (e.type === "node.log" && e.node === "hold") resolveId(run.id);
      },
    });
    const waitsId = await started;
    await page.goto(new URL(`#/runs/${waitsId}`, inspector.url).href);
    await page.locator('.node-row[data-node="before"][data-status="succeeded"]').waitFor();
    await page.locator('.node-row[data-node="before"] button.node-summary').click();
    await page.locator('.node-row[data-node="before"] .node-detail').waitFor();
    assert.equal(await page.locator("button.rerun-from").count(), 0);
    controller.abort();
    await running.catch(() => {});
  },
);
