/**
 * The inspector's Workers table (on the Jobs page), in chromium: the
 * server's own worker and a `flowstate worker` process are listed live, the
 * latter with the run it holds (a link to it); once that process is killed
 * with SIGKILL, its row turns stale without a reload.
 *
 * Ignored (reported as such) unless FLOWSTATE_TEST_CHROMIUM names the
 * chromium to drive.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { CHROMIUM, launchChromium, startInspector } from "./_inspector.ts";
import { exitOf } from "../_deadline.ts";

Deno.test({
  name:
    "inspector: the Workers table lists the live workers and the run each holds; a killed one turns stale",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The server's own worker takes only greet's runs: the slow run is the other worker's.
    const inspector = await startInspector({ seed: false, worker: { flows: ["greet"] } });
    let browser: Browser | undefined;
    let child: Deno.ChildProcess | undefined;
    let other: Deno.ChildProcess | undefined;
    try {
      const enqueued = await inspector.cli("enqueue", "slow", "-i", "wait=60s");
      assert.equal(enqueued.code, 0, enqueued.stderr);
      const runId = enqueued.stdout.trim();
      // A 4 s lease: a heartbeat a second, stale after three missed.
      child = inspector.command([
        "worker",
        "--worker-id",
        "ui-worker",
        "--flows",
        "slow",
        "--lease",
        "4s",
      ]).spawn();
      void child.stdout.cancel();
      void child.stderr.cancel();

      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      page.setDefaultTimeout(30_000);
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(err.message));
      await page.goto(new URL("#/jobs", inspector.url).href);
      const row = page.locator('.workers-table tr[data-worker="ui-worker"]');
      // The table follows the workers (it reloads every few seconds and on run events).
      await row.locator(`a[href$="${runId}"]`).waitFor();
      assert.equal(await row.locator(".badge").innerText(), "live");
      assert.match(await row.innerText(), /slow · 4 at once/);
      assert.match(await row.innerText(), new RegExp(`:${child.pid} v\\d`));
      const own = inspector.server.worker!.id;
      const ownRow = page.locator(`.workers-table tr[data-worker="${own}"]`);
      assert.equal(await ownRow.locator(".badge").innerText(), "live");
      assert.match(await ownRow.innerText(), /greet · 4 at once/);
      assert.match(await ownRow.innerText(), /idle/);

      // Another worker for slow's runs: it takes the run once the killed one's lease lapses.
      other = inspector.command(["worker", "--worker-id", "ui-worker-2", "--flows", "slow"])
        .spawn();
      void other.stdout.cancel();
      void other.stderr.cancel();
      await page.locator('.workers-table tr[data-worker="ui-worker-2"]').waitFor();

      child.kill("SIGKILL");
      await exitOf(child);
      await row.locator(".badge", { hasText: "stale" }).waitFor();
      // Still the run it held when it last wrote: what an operator looks for.
      assert.equal(await row.locator(`a[href$="${runId}"]`).count(), 1);
      // Once the other worker took it, the stale row says the run is not its own any more.
      const otherRow = page.locator('.workers-table tr[data-worker="ui-worker-2"]');
      await otherRow.locator(`a[href$="${runId}"]`).waitFor();
      assert.equal(
        await row.locator(".worker-claim.claim-moved .claim-now").textContent(),
        " · lost; attempt 2 on ui-worker-2",
      );
      assert.equal(await otherRow.locator(".claim-moved").count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      try {
        child?.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await child?.status;
      try {
        other?.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      await other?.status;
      await browser?.close();
      await inspector.close();
    }
  },
});
