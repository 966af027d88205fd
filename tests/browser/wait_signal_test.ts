/**
 * A run waiting for a signal in the inspector, in a real browser (Debian's
 * chromium through playwright-core, against a real `serve()`): the waiting
 * node shows its signal and message; "Send signal" with JSON data posts it,
 * and the page follows the run to its end. Bad JSON is said at the textarea,
 * nothing sent. Ignored unless FLOWSTATE_TEST_CHROMIUM names the chromium
 * binary.
 *
 * No sleeps: every wait is a playwright locator waiting for what the page
 * must show.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CHROMIUM, withPage } from "./_inspector.ts";

Deno.test({
  name:
    "inspector: a waiting node shows its signal and message; Send signal posts it and the run goes on",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ seed: false }, async (page, inspector, { errors }) => {
      let resolveId!: (id: string) => void;
      const started = new Promise<string>((r) => resolveId = r);
      const running = inspector.runtime.runFlow({
        id: "deploy",
        inputs: { version: { type: "string" } },
        nodes: [
          {
            id: "approve",
            type: "wait",
            with: { signal: "approve", message: "Deploy ${{ inputs.version }}?" },
          },
          {
            id: "after",
            type: "log",
            needs: ["approve"],
            with: { message: "by ${{ nodes.approve.output.by }}" },
          },
        ],
      }, {
        input: { version: "1.2" },
        onEvent: (e, run) => {
          if (e.type === "node.log" && e.node === "approve") resolveId(run.id);
        },
      });
      const id = await started;
      await page.goto(new URL(`#/runs/${id}`, inspector.url).href);
      const panel = page.locator('.waiting-signal[data-node="approve"]');
      await panel.waitFor();
      assert.equal(
        await panel.locator(".waiting-what").textContent(),
        "Node approve is waiting for signal approve",
      );
      assert.equal(await panel.locator(".waiting-message").textContent(), "Deploy 1.2?");
      // Not JSON: said, nothing sent.
      await panel.locator("textarea").fill("{by:");
      await panel.getByRole("button", { name: "Send signal" }).click();
      await panel.locator(".form-error", { hasText: "The data is not valid JSON" }).waitFor();
      await panel.locator("textarea").fill('{"by": "ada"}');
      await panel.getByRole("button", { name: "Send signal" }).click();
      const run = await running;
      assert.equal(run.status, "succeeded");
      assert.deepEqual(run.nodes.approve.output, { by: "ada" });
      // The page follows: the run ends, the waiting panel goes.
      await page.locator('.node-row[data-node="after"][data-status="succeeded"]').waitFor();
      await panel.waitFor({ state: "detached" });
      assert.deepEqual(errors, []);
    });
  },
});

Deno.test({
  name:
    "inspector: Send a signal by name says the CLI's warning when no wait node waits for it, then which node goes on",
  ignore: CHROMIUM === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage({ seed: false }, async (page, inspector, { errors }) => {
      let resolveId!: (id: string) => void;
      const started = new Promise<string>((r) => resolveId = r);
      const running = inspector.runtime.runFlow({
        id: "deploy",
        nodes: [
          { id: "approve", type: "wait", with: { signal: "approve" } },
          // Waits on after approve: the run, and so its panel, outlive the answer.
          { id: "ship", type: "wait", needs: ["approve"], with: { signal: "ship" } },
        ],
      }, {
        onEvent: (e, run) => {
          if (e.type === "node.log" && e.node === "approve") resolveId(run.id);
        },
      });
      const id = await started;
      await page.goto(new URL(`#/runs/${id}`, inspector.url).href);
      await page.locator('.waiting-signal[data-node="approve"]').waitFor();
      const panel = page.locator(".send-signal");
      await panel.locator("summary").click();
      const send = panel.getByRole("button", { name: "Send signal" });
      // No name: said, nothing sent.
      await send.click();
      await panel.locator(".form-error", { hasText: "Give the signal's name" }).waitFor();
      // A typo: kept for the run, and the warning `runs signal` gives.
      await panel.getByLabel("signal name").fill("aprove");
      await send.click();
      const warning = panel.locator(".signal-said.signal-warning");
      await warning.waitFor();
      const text = (await warning.textContent()) ?? "";
      assert.match(text, /^Warning: no wait node of flow deploy waits for "aprove"/);
      assert.match(text, /its wait nodes wait for: approve, ship \(did you mean "approve"\?\)/);
      assert.match(text, /kept for the run all the same/);
      assert.equal(await panel.locator(".form-error").textContent(), "");
      // The right name: the waiting node goes on, and the page says which.
      await panel.getByLabel("signal name").fill("approve");
      await panel.getByLabel("data of the signal, as JSON").fill('{"by":"ada"}');
      await send.click();
      await panel.locator(".signal-said", { hasText: "Sent: node approve goes on within a second" })
        .waitFor();
      assert.equal(await warning.count(), 0);
      await page.locator('.waiting-signal[data-node="ship"]').waitFor();
      await inspector.runtime.signalRun(id, "ship", null);
      const run = await running;
      assert.equal(run.status, "succeeded");
      assert.deepEqual(run.nodes.approve.output, { by: "ada" });
      // Ended: nothing more to send.
      await panel.waitFor({ state: "detached" });
      assert.deepEqual(errors, []);
    });
  },
});
