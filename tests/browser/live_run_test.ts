/**
 * A running run's page in a real browser (Debian's chromium through
 * playwright-core, against a real `serve()`): after its first answer, each
 * refresh fetches only the events recorded since (`?after=`), and it follows
 * the run to its end through a feed that drops and comes back, with every
 * node's row once and right. Ignored unless FLOWSTATE_TEST_CHROMIUM names the
 * chromium binary. Saves screenshots to FLOWSTATE_LIVEPAGE_SCREENSHOT (a path;
 * `-offline` and `-ended` go before `.png`) when set.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { CHROMIUM, launchChromium, startInspector } from "./_inspector.ts";
import { gatedFlow } from "../_gated_flow.ts";

const ignore = CHROMIUM === undefined;
const SCREENSHOT = Deno.env.get("FLOWSTATE_LIVEPAGE_SCREENSHOT");

async function shot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOT) return;
  await page.mouse.move(0, 0);
  await page.screenshot({ path: SCREENSHOT.replace(/(\.png)?$/, `-${name}.png`) });
}

/**
 * Before the page's own scripts: `EventSource` as it is, but remembered, and
 * `__dropFeed()`, which ends the feed as a lost connection the browser gave
 * up on does (closed, then an `error` event): the page reconnects by itself.
 */
const DROPPABLE_FEED = `(() => {
  const Native = globalThis.EventSource;
  const sources = [];
  globalThis.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init);
      sources.push(this);
    }
  };
  globalThis.__dropFeed = () => {
    for (const source of sources.splice(0)) {
      source.close();
      source.dispatchEvent(new Event("error"));
    }
  };
})();`;

/** One answer of `GET /api/runs/{id}` the page had. */
interface Answer {
  after: string | null;
  bytes: number;
  status: string;
}

Deno.test({
  name:
    "inspector: a running run's page fetches only what was recorded since, follows the run through a dropped feed, and ends with every row right",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const inspector = await startInspector({ seed: false });
    let browser: Browser | undefined;
    try {
      const width = 200;
      const total = width + 4;
      await Deno.writeTextFile(
        join(inspector.dir, "flows", "gated.flow.yaml"),
        gatedFlow(inspector.dir, width),
      );
      const first = join(inspector.dir, "release-first");
      const second = join(inspector.dir, "release-second");
      const api = (path: string, init: RequestInit = {}) =>
        fetch(new URL(path, inspector.url), {
          ...init,
          headers: { authorization: "Bearer test-client", "content-type": "application/json" },
        });
      const started = await api("/api/flows/gated/runs", {
        method: "POST",
        body: JSON.stringify({ input: { first, second } }),
      });
      assert.equal(started.status, 202, await started.clone().text());
      const { runId } = await started.json();

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      context.setDefaultTimeout(20_000);
      const errors: string[] = [];
      context.on("weberror", (err) => errors.push(`pageerror: ${err.error().message}`));
      context.on("console", (msg) => {
        // The feed refused while it is "down" (below) logs a failed resource: expected.
        if (msg.type() === "error" && !/503/.test(msg.text())) errors.push(msg.text());
      });
      await context.addInitScript({ content: DROPPABLE_FEED });
      const page = await context.newPage();
      // Every answer of GET /api/runs/{id} the page had: its cursor, its size, the run's status.
      const answers: Answer[] = [];
      const pending: Promise<void>[] = [];
      page.on("response", (response) => {
        const url = new URL(response.url());
        if (url.pathname !== `/api/runs/${runId}`) return;
        pending.push(
          response.body().then((body) => {
            answers.push({
              after: url.searchParams.get("after"),
              bytes: body.byteLength,
              status: JSON.parse(new TextDecoder().decode(body)).run.status,
            });
          }),
        );
      });

      await page.goto(new URL(`#/runs/${runId}`, inspector.url).href);
      await page.locator("#live.on").waitFor();
      await page.locator('.node-row[data-node="first"][data-status="running"]').waitFor();
      await page.locator(".timeline-panel").filter({ hasText: `${total} nodes ·` }).waitFor();
      // What one refresh weighed before: the whole run, every event.
      const whole = (await (await api(`/api/runs/${runId}`)).arrayBuffer()).byteLength;

      // The feed drops, and cannot come back for now: the page refreshes by itself.
      await page.route("**/api/events*", (route) => route.fulfill({ status: 503, body: "down" }));
      await page.evaluate("__dropFeed()");
      await page.locator("#live.off").waitFor();
      await Deno.writeTextFile(first, "go");
      await page.locator('.node-row[data-node="middle"][data-status="succeeded"]').waitFor();
      await page.locator('.node-row[data-node="second"][data-status="running"]').waitFor();
      await page.locator('.node-row[data-node="first"][data-status="succeeded"]').waitFor();
      await shot(page, "offline");

      // The feed comes back; the run ends.
      await page.unroute("**/api/events*");
      await page.locator("#live.on").waitFor();
      await Deno.writeTextFile(second, "go");
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      await page.locator('.node-row[data-node="last"][data-status="succeeded"]').waitFor();

      // Every node once, each succeeded; each log line once.
      const rows = await page.locator(".timeline-panel .node-row").evaluateAll((els) =>
        els.map((e) => [e.getAttribute("data-node"), e.getAttribute("data-status")])
      );
      assert.equal(rows.length, total, "a row per node");
      assert.equal(new Set(rows.map(([node]) => node)).size, total, "no node twice");
      assert.deepEqual(rows.filter(([, status]) => status !== "succeeded"), []);
      await page.locator('.node-row[data-node="first"] .node-summary').click();
      const lines = page.locator('.node-row[data-node="first"] .log-message');
      await lines.first().waitFor();
      assert.deepEqual(await lines.allTextContents(), [`waiting for ${first}`]);
      const log = page.locator("details.event-log");
      const recorded = (await (await api(`/api/runs/${runId}`)).json()).events.length;
      assert.equal(await log.locator("summary").textContent(), `Events (${recorded})`);
      await shot(page, "ended");

      // After the first answer, every refresh asked for what was recorded since, and
      // while the run ran each weighed a small part of the whole run: all but one at most,
      // the refresh that caught up with what ran before the page had its cursor (the page
      // may have loaded while the quick nodes ran; their events then come in one refresh).
      await Promise.all(pending);
      assert.ok(answers.length >= 2, `refreshes: ${JSON.stringify(answers)}`);
      for (const answer of answers) {
        assert.match(
          answer.after ?? "",
          /^\d+$/,
          `a refresh with a cursor: ${JSON.stringify(answer)}`,
        );
      }
      const running = answers.filter((a) => a.status === "running");
      assert.ok(running.length >= 1, `refreshes while it ran: ${JSON.stringify(answers)}`);
      const large = running.filter((a) => a.bytes >= whole / 10);
      assert.ok(large.length <= 1, `of ${whole} bytes: ${JSON.stringify(running)}`);
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      await inspector.close();
    }
  },
});
