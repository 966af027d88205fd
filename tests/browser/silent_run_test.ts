/**
 * A run whose process was killed (kill -9: it could record nothing) stays
 * `running` in the records until gc or a daemon records it abandoned; its page
 * says that its heartbeat stopped, rather than only "running for 9 h". The
 * browser's clock is moved past a minute by playwright (no sleep). Ignored
 * unless FLOWSTATE_TEST_CHROMIUM names the chromium binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CHROMIUM, withPage } from "./_inspector.ts";
import { exitOf } from "../_deadline.ts";

Deno.test({
  name: "inspector: a running run whose process stopped its heartbeat (killed) says so on its page",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ seed: false }, async (page, inspector, { errors }) => {
      const child = inspector.command(["run", "flows/slow.flow.yaml", "-i", "wait=10m"]).spawn();
      void child.stdout.cancel();
      void child.stderr.cancel();
      const records = await inspector.runtime.records();
      let id: string | undefined;
      try {
        // Recorded running (with its first heartbeat), then killed: nothing more is written.
        while (id === undefined) {
          id = (await records.listRunSummaries({ flowId: "slow", limit: 1 })).runs[0]?.id;
          if (id === undefined) await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        child.kill("SIGKILL");
        await exitOf(child);
      }
      assert.equal((await records.getRun(id))?.status, "running");

      await page.clock.install();
      await page.goto(new URL(`#/runs/${id}`, inspector.url).href);
      await page.locator(".run-title .badge.status-running").waitFor();
      assert.equal(await page.locator(".silent-run").count(), 0, "a fresh heartbeat: nothing said");
      await page.clock.fastForward("02:00");
      const note = page.locator(".silent-run");
      await note.waitFor();
      assert.match(
        await note.innerText(),
        /^No heartbeat for 2 min \d+ s: the process running this run writes one every 5 s, so it has most likely died/,
      );
      assert.deepEqual(errors, []);
    });
  },
});
