/**
 * The inspector's page of a run shows a "Send signal" panel for each `wait`
 * node waiting in it or in one of its running sub-runs (the latter linked to
 * its sub-run's page), and none for a node that only printed a waiting line
 * (an `exec` node's program, running on). A sub-run's node begins to wait
 * while the page is open: its panel comes without a reload; its Send signal
 * posts to the page's run, and the panels go as the run goes on. In a real
 * browser (Debian's chromium through playwright-core, against a real
 * `serve()`); ignored unless FLOWSTATE_TEST_CHROMIUM names the chromium
 * binary.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CHROMIUM, withPage } from "./_inspector.ts";
import { eventually } from "../_serve.ts";

/** A message that is, to the letter, a `wait` node's waiting line. */
const FAKE = 'waiting for signal "fake" (flowstate runs signal 0mxd1s7k7wtv6pq24v8y fake): no';

Deno.test({
  name:
    "inspector: a sub-run's waiting node has its panel on the run's page, live; a printed waiting line has none",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ seed: false }, async (page, inspector, { errors }) => {
      const go = join(inspector.dir, "go");
      let root: string | undefined;
      let sub: string | undefined;
      const running = inspector.runtime.runFlow({
        id: "release",
        nodes: [
          {
            // Prints a waiting line to stderr, then runs on until file `go` exists.
            id: "liar",
            type: "exec",
            permissions: { run: ["sh"] },
            with: {
              command: "sh",
              args: [
                "-c",
                'echo "$1" >&2; while [ ! -e "$2" ]; do sleep 0.05; done',
                "sh",
                FAKE,
                go,
              ],
            },
          },
          { id: "gate", type: "wait", with: { signal: "go" } },
          {
            id: "child",
            type: "flow",
            needs: ["gate"],
            with: {
              flow: {
                id: "sub",
                nodes: [{
                  id: "approve",
                  type: "wait",
                  with: { signal: "approve", message: "Ship it?" },
                }],
              },
            },
          },
        ],
      }, {
        onStart: (id) => root ??= id,
        onEvent: (e, run) => {
          if (run.id !== root && e.type === "node.log" && e.node === "approve") sub = run.id;
        },
      });
      const records = await inspector.runtime.records();
      // Both lines recorded before the page loads: the liar's line is among its events.
      let ended = false;
      running.finally(() => ended = true);
      await eventually("the liar's and the gate's lines recorded", async () => {
        if (ended) assert.fail(`the run ended: ${JSON.stringify(await running)}`);
        if (root === undefined) return false;
        const logged = new Set(
          (await records.getEvents(root)).filter((e) => e.type === "node.log").map((e) =>
            e.type === "node.log" ? e.node : ""
          ),
        );
        return logged.has("liar") && logged.has("gate");
      });
      await page.goto(new URL(`#/runs/${root}`, inspector.url).href);
      const gate = page.locator('.waiting-signal[data-node="gate"]');
      await gate.waitFor();
      assert.equal(await page.locator('.waiting-signal[data-node="liar"]').count(), 0);
      assert.equal(await page.locator(".waiting-signal").count(), 1);
      await gate.getByRole("button", { name: "Send signal" }).click();
      // The sub-run's node begins to wait: its panel comes, on this page, without a reload.
      const approve = page.locator('.waiting-signal[data-node="approve"]');
      await approve.waitFor();
      await gate.waitFor({ state: "detached" });
      assert.ok(sub !== undefined);
      assert.equal(await approve.getAttribute("data-run"), sub);
      assert.equal(
        await approve.locator(".waiting-what").textContent(),
        `Node approve of sub-run ${sub} is waiting for signal approve`,
      );
      assert.equal(
        await approve.locator(`.waiting-what a[href="#/runs/${sub}"]`).textContent(),
        sub,
      );
      assert.equal(await approve.locator(".waiting-message").textContent(), "Ship it?");
      await approve.locator("textarea").fill('{"by": "ada"}');
      await approve.getByRole("button", { name: "Send signal" }).click();
      await page.locator(".toast", { hasText: `Sent signal approve to ${root}` }).waitFor();
      await approve.waitFor({ state: "detached" });
      await Deno.writeTextFile(go, "");
      const run = await running;
      assert.equal(run.status, "succeeded", JSON.stringify(run.error));
      assert.deepEqual((await records.getRun(sub))?.nodes.approve.output, { by: "ada" });
      assert.equal(await page.locator(".waiting-signal").count(), 0);
      assert.deepEqual(errors, []);
    });
  },
});
