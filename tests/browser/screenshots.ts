/**
 * Screenshots of the inspector's main views for the README, into `docs/`:
 *
 * ```sh
 * FLOWSTATE_TEST_CHROMIUM=/usr/bin/chromium deno run --unstable-worker-options -A \
 *   tests/browser/screenshots.ts [outDir]
 * ```
 *
 * Starts a real server over a temporary home seeded with flows, runs and
 * state (see `_inspector.ts`), and photographs: the state tree with a value
 * open, the runs list, a run's timeline, its state changes and its graph with
 * each node's status, a flow (whole: metrics, graph, the diff of two versions),
 * the graph of a flow with `when:`, `if:`, `forEach` and a sub-flow (`nightly`
 * of `GRAPH_FLOWS`), a run in progress (a `forEach` node counting its
 * items), and the jobs page whole (its queue workers below).
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  eachFlow,
  GRAPH_FLOWS,
  launchChromium,
  releaseItem,
  startInspector,
} from "./_inspector.ts";

const out = Deno.args[0] ?? fileURLToPath(new URL("../../docs/", import.meta.url));
await Deno.mkdir(out, { recursive: true });

const inspector = await startInspector({ hostile: false, feed: true, flows: GRAPH_FLOWS });
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  const shot = async (name: string, options: { fullPage?: boolean } = {}) => {
    const path = join(out, `inspector-${name}.png`);
    await page.screenshot({ path, ...options });
    console.log(path);
  };

  // State: the scopes open down to keys, global/settings shown.
  const toggle = (key: string[]) =>
    page.locator(`li.tree-node[data-key='${JSON.stringify(key)}'] > .tree-row .toggle`).click();
  const item = (key: string[]) => page.locator(`li.tree-node[data-key='${JSON.stringify(key)}']`);
  await page.goto(new URL("#/state", inspector.url).href);
  await toggle(["flow"]);
  await toggle(["flow", "counter"]);
  await item(["flow", "counter", "count"]).waitFor();
  await toggle(["global"]);
  await item(["global", "settings"]).waitFor();
  await toggle(["node"]);
  await toggle(["node", "slow"]);
  await item(["node", "slow", "visits"]).waitFor();
  await item(["global", "settings"]).locator(":scope > .tree-row .tree-label").click();
  await page.locator(".value-view").waitFor();
  await page.locator(".store-card .entries").filter({ hasText: "entries" }).waitFor();
  await page.mouse.move(0, 0);
  await shot("state");

  // Runs list.
  await page.goto(new URL("#/runs", inspector.url).href);
  await page.locator(".runs-table tbody tr[data-run]").first().waitFor();
  await shot("runs");

  // A run's timeline: the failed flaky run, its failing node open.
  const failed = (await inspector.runtime.records()).listRunSummaries({
    flowId: "flaky",
    limit: 1,
  });
  const failedId = (await failed).runs[0].id;
  await page.goto(new URL(`#/runs/${failedId}`, inspector.url).href);
  await page.locator('.node-row[data-node="parse"] .node-summary').click();
  await page.locator(".node-detail").waitFor();
  await shot("run-failed");

  const greet = (await (await inspector.runtime.records()).listRunSummaries({
    flowId: "greet",
    limit: 1,
  })).runs[0].id;
  await page.goto(new URL(`#/runs/${greet}`, inspector.url).href);
  await page.locator('.node-row[data-node="remember"] .node-summary').click();
  await page.locator('.node-row[data-node="report"] .node-summary').click();
  await page.locator('.node-row[data-node="report"] .log-message').waitFor();
  await page.mouse.move(0, 0);
  await shot("run");

  // A run's state changes (the store keeps a change feed): the counter's last run.
  const counter = (await (await inspector.runtime.records()).listRunSummaries({
    flowId: "counter",
    limit: 1,
  })).runs[0].id;
  await page.goto(new URL(`#/runs/${counter}`, inspector.url).href);
  await page.locator('.changes-panel .node-changes[data-node="stamp"]').waitFor();
  const changes = join(out, "inspector-run-changes.png");
  await page.locator(".changes-panel").screenshot({ path: changes });
  console.log(changes);

  // The greet run's nodes as a graph (the toggle beside the timeline), each with its status.
  await page.goto(new URL(`#/runs/${greet}`, inspector.url).href);
  await page.locator('.view-toggle button[data-view="graph"]').click();
  await page.locator('.run-graph .graph-node[data-node="report"][data-status="succeeded"]')
    .waitFor();
  const runGraph = join(out, "inspector-run-graph.png");
  await page.locator(".timeline-panel").screenshot({ path: runGraph });
  console.log(runGraph);

  // A flow with its graph and the diff of its two versions.
  await page.goto(new URL("#/flows/counter", inspector.url).href);
  await page.locator("table.diff").waitFor();
  await page.locator(".graph-panel .graph-node").first().waitFor();
  await page.mouse.move(0, 0);
  await shot("flow", { fullPage: true }); // the graph pushes the diff below the fold
  // The graph of a flow with when:, if:, forEach and a sub-flow.
  await page.goto(new URL("#/flows/nightly", inspector.url).href);
  await page.locator(".graph-panel .graph-node").first().waitFor();
  const flowGraph = join(out, "inspector-flow-graph.png");
  await page.locator(".graph-panel").screenshot({ path: flowGraph });
  console.log(flowGraph);

  await page.goto(new URL("#/flows", inspector.url).href);
  await page.locator(".flows-table tbody tr[data-flow]").first().waitFor();
  await shot("flows");

  // A run in progress: a forEach node part-way through its items (one failed), a when: node to come.
  const eachFile = join(inspector.dir, "flows", "each.flow.yaml");
  await Deno.writeTextFile(eachFile, eachFlow(inspector.dir));
  const each = await inspector.runtime.enqueue(eachFile, { input: { dir: inspector.dir } });
  await page.goto(new URL(`#/runs/${each.runId}`, inspector.url).href);
  const progress = page.locator('.node-row[data-node="notify"] .items-progress-text');
  await progress.filter({ hasText: /^0 of 4 items done$/ }).waitFor();
  await releaseItem(inspector.dir, 0, "go");
  await releaseItem(inspector.dir, 1, "fail");
  await progress.filter({ hasText: /^2 of 4 items done, 1 failed \(item 1\)$/ }).waitFor();
  await page.locator('.node-row[data-node="notify"] button.node-summary').click();
  await page.mouse.move(0, 0);
  await shot("run-foreach");
  await releaseItem(inspector.dir, 2, "go");
  await releaseItem(inspector.dir, 3, "go");
  await page.locator('.node-row[data-node="cleanup"][data-status="succeeded"]').waitFor();

  // Jobs, and below them the queue workers (the server's own): the whole page.
  await page.goto(new URL("#/jobs", inspector.url).href);
  await page.locator(".jobs-table tbody tr[data-job]").first().waitFor();
  await page.locator(".workers-table tbody tr[data-worker]").first().waitFor();
  await shot("jobs", { fullPage: true });
} finally {
  await browser.close();
  await inspector.close();
}
