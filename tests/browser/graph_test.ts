/**
 * A flow's graph in the inspector, in a real browser (Debian's chromium
 * through playwright-core, against a real `serve()`): the flow page draws
 * every node and edge of the flow with no boxes overlapping; a run's page
 * shows the same graph behind a toggle with each node's status as class and
 * text, updated live as the run's nodes end; a 600-node flow scrolls inside
 * its panel. Ignored unless FLOWSTATE_TEST_CHROMIUM names the chromium
 * binary.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Locator, Page } from "playwright-core";
import { CHROMIUM, GRAPH_FLOWS, withPage } from "./_inspector.ts";
import { gatedFlow } from "../_gated_flow.ts";

const ignore = CHROMIUM === undefined;

/** The boxes of the graph in `scope`, by node id, as the browser laid them out. */
async function boxes(
  scope: Locator,
): Promise<Map<string, { x: number; y: number; w: number; h: number }>> {
  const nodes = scope.locator(".graph-node");
  const out = new Map<string, { x: number; y: number; w: number; h: number }>();
  for (let i = 0; i < await nodes.count(); i++) {
    const node = nodes.nth(i);
    const box = await node.locator("rect").boundingBox();
    assert.ok(box, "a box is drawn");
    out.set((await node.getAttribute("data-node"))!, {
      x: box.x,
      y: box.y,
      w: box.width,
      h: box.height,
    });
  }
  return out;
}

function assertNoOverlap(drawn: Map<string, { x: number; y: number; w: number; h: number }>) {
  const list = [...drawn];
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const [ia, a] = list[i], [ib, b] = list[j];
      const apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
      assert.ok(apart, `${ia} ${JSON.stringify(a)} overlaps ${ib} ${JSON.stringify(b)}`);
    }
  }
}

/**
 * The errors but the failed load a flow never run logs (its versions: 404), after checking
 * that the 404s `page` had were those.
 */
function besidesNoVersions(page: Page, errors: string[]): () => string[] {
  const missing: string[] = [];
  page.on("response", (response) => {
    if (response.status() === 404) missing.push(new URL(response.url()).pathname);
  });
  return () => {
    for (const path of missing) assert.match(path, /^\/api\/flows\/[\w-]+\/versions$/);
    return errors.filter((e) =>
      !(missing.length > 0 && /Failed to load resource: .* 404 \(Not Found\)/.test(e))
    );
  };
}

/** The edges drawn in `scope`: `from -> to (kind)`. */
function edges(scope: Locator): Promise<string[]> {
  return scope.locator("path.graph-edge").evaluateAll((els) =>
    els.map((e) =>
      `${e.getAttribute("data-from")} -> ${e.getAttribute("data-to")} (${
        e.getAttribute("data-kind")
      })`
    )
  );
}

Deno.test({
  name:
    "inspector: the flow page draws every node and edge of the flow, boxes apart, each with its id, type and marks",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ seed: false, flows: GRAPH_FLOWS }, async (page, inspector, { errors }) => {
      const errorsNow = besidesNoVersions(page, errors);
      await page.goto(new URL("#/flows/nightly", inspector.url).href);
      const panel = page.locator(".graph-panel");
      await panel.locator('.graph-node[data-node="alert"]').waitFor();
      const drawn = await boxes(panel);
      assert.deepEqual([...drawn.keys()], [
        "lock",
        "orders",
        "notify",
        "big-day",
        "report",
        "unlock",
        "alert",
      ]);
      assertNoOverlap(drawn);
      // Each edge goes down: its target's box below its source's.
      const drawnEdges = await edges(panel);
      assert.deepEqual(drawnEdges.sort(), [
        "big-day -> report (needs)",
        "lock -> orders (needs)",
        "notify -> report (needs)",
        "orders -> big-day (needs)",
        "orders -> notify (needs)",
        "report -> alert (end)",
        "report -> unlock (needs)",
      ]);
      for (const edge of drawnEdges) {
        const [, from, to] = /^(\S+) -> (\S+)/.exec(edge)!;
        assert.ok(drawn.get(from)!.y + drawn.get(from)!.h < drawn.get(to)!.y, edge);
      }
      const text = (id: string) =>
        panel.locator(`.graph-node[data-node="${id}"] text`).allTextContents();
      assert.deepEqual(await text("lock"), ["lock", "state.set", ""]);
      assert.deepEqual(await text("notify"), [
        "notify",
        "flow: ./notify.flow.yaml",
        "× ${{ nodes.orders.outp…",
      ]);
      assert.deepEqual(await text("big-day"), ["big-day", "log", "if"]);
      assert.deepEqual(await text("alert"), ["alert", "log", "when: on_failure"]);
      assert.equal(
        await panel.locator('.graph-node[data-node="notify"] title').textContent(),
        "notify\ntype: flow (./notify.flow.yaml)\nforEach: ${{ nodes.orders.output }}",
      );
      // The edges into a when: node are dashed, the wait for the end of the run dotted.
      assert.equal(
        await panel.locator('path[data-from="report"][data-to="unlock"]').getAttribute("class"),
        "graph-edge graph-edge-dashed",
      );
      assert.equal(
        await panel.locator('path[data-from="report"][data-to="alert"]').getAttribute("class"),
        "graph-edge graph-edge-end",
      );
      assert.match(
        await panel.locator(".panel-head").textContent() ?? "",
        /7 nodes · flows\/nightly\.flow\.yaml/,
      );
      assert.deepEqual(errorsNow(), []);
    });
  },
});

/** The status each box of the run graph shows: its data-status, and the word on its third line. */
async function statuses(page: Page): Promise<Record<string, string>> {
  return Object.fromEntries(
    await page.locator(".run-graph .graph-node").evaluateAll((els) =>
      els.map((e) => [
        e.getAttribute("data-node"),
        `${e.getAttribute("data-status")}: ${e.querySelector(".graph-mark")?.textContent}`,
      ])
    ),
  );
}

Deno.test({
  name:
    "inspector: a running run's graph shows each node's status, in words too, and follows the run live as its nodes end",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ seed: false }, async (page, inspector, { errors }) => {
      await Deno.writeTextFile(
        join(inspector.dir, "flows", "gated.flow.yaml"),
        gatedFlow(inspector.dir, 3),
      );
      const first = join(inspector.dir, "release-first");
      const second = join(inspector.dir, "release-second");
      const started = await fetch(new URL("/api/flows/gated/runs", inspector.url), {
        method: "POST",
        headers: { authorization: "Bearer test-client", "content-type": "application/json" },
        body: JSON.stringify({ input: { first, second } }),
      });
      assert.equal(started.status, 202, await started.clone().text());
      const { runId } = await started.json();

      await page.goto(new URL(`#/runs/${runId}`, inspector.url).href);
      await page.locator("#live.on").waitFor();
      await page.locator('.node-row[data-node="first"][data-status="running"]').waitFor();
      await page.locator('.view-toggle button[data-view="graph"]').click();
      assert.equal(
        await page.locator('.view-toggle button[data-view="graph"]').getAttribute("aria-pressed"),
        "true",
      );
      await page.locator('.run-graph .graph-node[data-node="first"][data-status="running"]')
        .waitFor();
      assert.deepEqual(await statuses(page), {
        n0: "succeeded: succeeded",
        n1: "succeeded: succeeded",
        n2: "succeeded: succeeded",
        first: "running: running",
        middle: "pending: pending",
        second: "pending: pending",
        last: "pending: pending",
      });
      assert.equal(
        await page.locator('.run-graph .graph-node[data-node="first"] title').textContent(),
        `first\ntype: ${gatedType(inspector.dir)}\nstatus: running`,
      );
      assertNoOverlap(await boxes(page.locator(".run-graph")));
      // The graph is drawn once: the same element takes the next statuses.
      await page.locator(".run-graph svg").evaluate((el) => el.setAttribute("data-marked", "1"));

      await Deno.writeTextFile(first, "go");
      await page.locator('.run-graph .graph-node[data-node="second"][data-status="running"]')
        .waitFor();
      const now = await statuses(page);
      assert.equal(now.first, "succeeded: succeeded");
      assert.equal(now.middle, "succeeded: succeeded");
      assert.equal(now.last, "pending: pending");

      await Deno.writeTextFile(second, "go");
      await page.locator('.run-graph .graph-node[data-node="last"][data-status="succeeded"]')
        .waitFor();
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      assert.deepEqual(
        Object.values(await statuses(page)).filter((s) => s !== "succeeded: succeeded"),
        [],
      );
      assert.equal(await page.locator(".run-graph svg[data-marked]").count(), 1);

      // A box opens its node's row in the timeline.
      await page.locator('.run-graph .graph-node[data-node="middle"]').click();
      await page.locator('.node-row[data-node="middle"] .node-detail').waitFor();
      assert.equal(
        await page.locator('.view-toggle button[data-view="timeline"]').getAttribute(
          "aria-pressed",
        ),
        "true",
      );
      assert.deepEqual(errors, []);
    });
  },
});

/** The type of the gated flow's gates: the wait_for_file fixture's path. */
function gatedType(dir: string): string {
  return /type: (\S+)/.exec(gatedFlow(dir, 1).split("- id: first")[1])![1];
}

Deno.test({
  name: "inspector: a 600-node flow's graph scrolls inside its panel, its boxes apart",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const nodes = ["  - { id: root, type: log, with: { message: r } }"];
    for (let i = 0; i < 200; i++) {
      nodes.push(
        `  - { id: a${i}, type: log, needs: [root], with: { message: a } }`,
        `  - { id: b${i}, type: log, needs: [a${i}], with: { message: b } }`,
      );
    }
    for (let i = 0; i < 199; i++) {
      nodes.push(`  - { id: c${i}, type: log, needs: [b${i}, b${i + 1}], with: { message: c } }`);
    }
    const flow = `id: wide\nnodes:\n${nodes.join("\n")}\n`;
    await withPage(
      { seed: false, flows: { "wide.flow.yaml": flow } },
      async (page, inspector, { errors }) => {
        const errorsNow = besidesNoVersions(page, errors);
        await page.goto(new URL("#/flows/wide", inspector.url).href);
        const panel = page.locator(".graph-panel");
        await panel.locator('.graph-node[data-node="c198"]').waitFor();
        assert.equal(await panel.locator(".graph-node").count(), 600);
        const scroll = panel.locator(".graph-scroll");
        const size = await scroll.evaluate((el) => ({
          client: el.clientWidth,
          scroll: el.scrollWidth,
          page: el.ownerDocument.documentElement.scrollWidth,
          viewport: el.ownerDocument.documentElement.clientWidth,
        }));
        assert.ok(size.scroll > size.client, JSON.stringify(size));
        assert.ok(
          size.page <= size.viewport,
          `the page itself does not scroll sideways: ${JSON.stringify(size)}`,
        );
        // The layout's boxes, apart (read from the SVG: most are scrolled out of view).
        const rects = await panel.locator(".graph-node rect").evaluateAll((els) =>
          els.map((r) => ({
            x: Number(r.getAttribute("x")),
            y: Number(r.getAttribute("y")),
            w: Number(r.getAttribute("width")),
            h: Number(r.getAttribute("height")),
          }))
        );
        const byRow = new Map<number, { x: number; w: number }[]>();
        for (const r of rects) byRow.set(r.y, [...(byRow.get(r.y) ?? []), r]);
        for (const row of byRow.values()) {
          row.sort((a, b) => a.x - b.x);
          for (let i = 1; i < row.length; i++) assert.ok(row[i - 1].x + row[i - 1].w <= row[i].x);
        }
        assert.deepEqual([...byRow.keys()].length, 4);
        await scroll.evaluate((el) => (el.scrollLeft = el.scrollWidth));
        await panel.locator('.graph-node[data-node="b199"]').scrollIntoViewIfNeeded();
        assert.ok(await panel.locator('.graph-node[data-node="b199"]').isVisible());
        assert.deepEqual(errorsNow(), []);
      },
    );
  },
});
