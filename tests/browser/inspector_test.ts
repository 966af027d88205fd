/**
 * The inspector page in a real browser: Debian's chromium driven by
 * playwright-core against a real `serve()` over a temporary sqlite home.
 * Ignored (reported as such) unless FLOWSTATE_TEST_CHROMIUM names the
 * chromium binary (`.ci/run` sets it to /usr/bin/chromium).
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
import {
  CHROMIUM,
  type Inspector,
  type Watch,
  withPage as withInspectorPage,
  XSS_VALUE,
} from "./_inspector.ts";
import { Records } from "../../records.ts";
import { outputOf, waitUntil } from "../_deadline.ts";
import { formatTime } from "../../src/serve/ui/dom.js";

const ignore = CHROMIUM === undefined;
const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));

/** A page on a fresh inspector (`options`: its token), watched: see `withPage` of `_inspector.ts`. */
function withPage(
  fn: (page: Page, inspector: Inspector, watch: Watch) => Promise<void>,
  options: { token?: string } = {},
): Promise<void> {
  return withInspectorPage(options, fn);
}

/** Errors the page logged, less the expected ones (a 401/409 answer logs a failed resource). */
function unexpectedErrors(watch: Watch, allowed: RegExp[] = []): string[] {
  return watch.errors.filter((e) => !allowed.some((re) => re.test(e)));
}

/** An API call from "another client" (Bearer: no same-origin check). */
async function api(
  inspector: Inspector,
  method: string,
  path: string,
  init: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  return await fetch(new URL(path, inspector.url), {
    method,
    headers: {
      authorization: "Bearer test-client",
      ...(init.body === undefined ? {} : { "content-type": "application/json" }),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
}

function treeItem(page: Page, key: string[]) {
  return page.locator(`li.tree-node[data-key='${JSON.stringify(key)}']`);
}

async function expand(page: Page, key: string[]): Promise<void> {
  await treeItem(page, key).locator(":scope > .tree-row .toggle").click();
}

async function openValue(page: Page, key: string[]): Promise<void> {
  await treeItem(page, key).locator(":scope > .tree-row .tree-label").click();
}

Deno.test({
  name: "inspector: the tree leads store → scope → key to a value with its version",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      await page.goto(new URL("#/state", inspector.url).href);
      // The store card shows the plugin and the count.
      const card = page.locator('.store-card[data-store="default"]');
      await card.filter({ hasText: "sqlite" }).waitFor();
      // The count arrives after the tree (counting a large store takes a while).
      const count = await (await inspector.runtime.store("default")).count();
      await card.locator(".entries").filter({ hasText: `${count} entries` }).waitFor();
      await expand(page, ["global"]);
      await openValue(page, ["global", "settings"]);
      const value = page.locator(".value-panel pre.value-view");
      await value.filter({ hasText: '"region": "eu-west-1"' }).waitFor();
      const entry = await (await inspector.runtime.store("default")).get(["global", "settings"]);
      assert.ok(entry);
      assert.equal(await value.textContent(), JSON.stringify(entry.value, null, 2));
      assert.equal(await page.locator(".value-panel .version").textContent(), entry.version);
      assert.equal(await page.locator(".value-panel .expiry").textContent(), "never");
      // The URL names the value: a reload opens it again.
      assert.match(decodeURIComponent(page.url()), /key=\["global","settings"\]/);
      await page.reload();
      await page.locator(".value-panel pre.value-view").filter({ hasText: "eu-west-1" }).waitFor();

      // Scope → flow → node → key: the node-scoped counter of the slow flow.
      await expand(page, ["node"]);
      await expand(page, ["node", "slow"]);
      await treeItem(page, ["node", "slow", "visits"]).waitFor();
      assert.equal(
        await treeItem(page, ["node", "slow"]).locator(":scope > .tree-row .level").textContent(),
        "flow",
      );
      assert.equal(
        await treeItem(page, ["node", "slow", "visits"]).locator(":scope > .tree-row .level")
          .textContent(),
        "node",
      );
      await expand(page, ["flow"]);
      await expand(page, ["flow", "counter"]);
      await openValue(page, ["flow", "counter", "count"]);
      // 1 + 2 + 3 then 4 × 2.
      await page.locator(".value-panel pre.value-view").filter({ hasText: /^14$/ }).waitFor();
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name: "inspector: the prefix box lists entries under a prefix, a page at a time",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      await page.goto(new URL("#/state", inspector.url).href);
      await page.locator(".prefix-input").fill("global / users");
      await page.getByRole("button", { name: "Find" }).click();
      const rows = page.locator(".entry-list li");
      await rows.first().waitFor();
      // 30 users, 50 a page: one page, no "next".
      assert.equal(await rows.count(), 30);
      assert.equal(await page.getByRole("button", { name: "next page" }).count(), 0);
      await rows.filter({ hasText: "user-007" }).locator("button").click();
      await page.locator(".value-panel pre.value-view").filter({ hasText: '"name": "User 7"' })
        .waitFor();

      // 260 keys under one prefix: the tree loads 200 and offers the rest.
      const store = await inspector.runtime.store("default");
      for (let i = 0; i < 260; i++) {
        await store.set(["global", "many", `k${String(i).padStart(4, "0")}`], i);
      }
      await page.goto(new URL("#/state", inspector.url).href);
      await expand(page, ["global"]);
      await expand(page, ["global", "many"]);
      const children = treeItem(page, ["global", "many"]).locator("li.tree-node");
      await children.nth(199).waitFor();
      assert.equal(await children.count(), 200);
      await treeItem(page, ["global", "many"]).getByRole("button", { name: /load more/ }).click();
      await children.nth(259).waitFor();
      assert.equal(await children.count(), 260);
      assert.equal(
        await children.nth(259).locator(".part").textContent(),
        "k0259",
      );
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

/**
 * V8's JSON.parse bug (nodejs/node#63785), emulated over the page's `JSON.parse` and
 * `Response#json` (run in the page before its scripts): an escaped key that follows the same
 * keys as an escaped key of an earlier parsed object reads as that earlier key. Debian's
 * chromium 156 parses right, so without this the test could not fail on it; on a chromium
 * with the bug the real parser does the same.
 */
function emulateKeyBug(): void {
  const native = JSON.parse;
  const earlier = new Map<string, string>();
  const rekey = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rekey);
    if (value === null || typeof value !== "object") return value;
    const out: Record<string, unknown> = {};
    const before: string[] = [];
    for (const [key, v] of Object.entries(value)) {
      let k = key;
      if (JSON.stringify(key).includes("\\")) {
        const shape = JSON.stringify(before);
        k = earlier.get(shape) ?? key;
        earlier.set(shape, k);
      }
      out[k] = rekey(v);
      before.push(k);
    }
    return out;
  };
  JSON.parse = (text: string) => rekey(native(text));
  Response.prototype.json = async function () {
    return JSON.parse(await this.text());
  };
}

Deno.test({
  name: "inspector: a value with escaped keys saves back unchanged after a poisoning JSON.parse",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      // V8's JSON.parse may decode the escaped key "a\n" of an object shaped like an earlier
      // one as that one's "a\\" (nodejs/node#63785): the page must parse with the server's
      // parser, or the editor shows and saves back other keys than were stored.
      await page.addInitScript(emulateKeyBug);
      const store = await inspector.runtime.store("default");
      await store.set(["global", "escaped", "first"], { st: 1, "a\\": 1 });
      await store.set(["global", "escaped", "second"], { st: 1, "a\n": 2 });
      await page.goto(new URL("#/state", inspector.url).href);
      await expand(page, ["global"]);
      await expand(page, ["global", "escaped"]);
      // The page reads the first entry (its parse may poison the native parser), then a
      // poisoning parse of the same shape for certain.
      await openValue(page, ["global", "escaped", "first"]);
      const value = page.locator(".value-panel pre.value-view");
      await value.filter({ hasText: '"st": 1' }).waitFor();
      assert.equal(await value.textContent(), JSON.stringify({ st: 1, "a\\": 1 }, null, 2));
      await page.evaluate(() => JSON.parse('{"st":1,"a\\\\":1}'));

      await openValue(page, ["global", "escaped", "second"]);
      await value.filter({ hasText: '": 2' }).waitFor();
      const shown = JSON.stringify({ st: 1, "a\n": 2 }, null, 2);
      assert.equal(await value.textContent(), shown);
      // Saved back as shown: the stored value keeps its key "a\n".
      await page.getByRole("button", { name: "Edit", exact: true }).click();
      assert.equal(await page.locator("textarea.value-editor").inputValue(), shown);
      await page.getByRole("button", { name: "Save" }).click();
      await page.locator(".value-panel .notice-ok").filter({ hasText: "Saved" }).waitFor();
      const saved = await store.get(["global", "escaped", "second"]);
      assert.deepEqual(saved?.value, { st: 1, "a\n": 2 });
      assert.deepEqual(Object.keys(saved?.value as object), ["st", "a\n"]);
      assert.equal(await value.textContent(), shown);
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name: "inspector: an edit that meets a concurrent change shows both and overwrites nothing",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      const key = ["global", "motd"];
      const store = await inspector.runtime.store("default");
      await page.goto(new URL("#/state", inspector.url).href);
      await expand(page, ["global"]);
      await openValue(page, key);
      await page.locator(".value-panel pre.value-view").filter({ hasText: "Fridays" }).waitFor();
      const loaded = await store.get(key);
      assert.ok(loaded);
      await page.getByRole("button", { name: "Edit", exact: true }).click();
      await page.locator("textarea.value-editor").fill('"Deploys are welcome any day."');

      // Another client changes the value between load and save.
      const put = await api(inspector, "PUT", `/api/stores/default/entry?key=global&key=motd`, {
        body: { value: "Changed by someone else." },
        headers: { "if-match": `"${loaded.version}"` },
      });
      assert.equal(put.status, 200, await put.clone().text());
      const theirs = await put.json();

      await page.getByRole("button", { name: "Save" }).click();
      const conflict = page.locator(".notice-conflict");
      await conflict.waitFor();
      assert.match(await conflict.textContent() ?? "", /Nothing was overwritten/);
      assert.equal(
        await page.locator("pre.conflict-current").textContent(),
        '"Changed by someone else."',
      );
      assert.equal(
        await page.locator("pre.conflict-mine").textContent(),
        '"Deploys are welcome any day."',
      );
      assert.equal(await page.locator(".current-version").textContent(), theirs.version);
      // Nothing was written.
      const after = await store.get(key);
      assert.equal(after?.value, "Changed by someone else.");
      assert.equal(after?.version, theirs.version);

      // The user overwrites deliberately: compare-and-set against the version shown.
      await page.getByRole("button", { name: `Overwrite version ${theirs.version} with mine` })
        .click();
      await page.locator(".value-panel .notice-ok").filter({ hasText: "Saved" }).waitFor();
      const saved = await store.get(key);
      assert.equal(saved?.value, "Deploys are welcome any day.");
      assert.equal(await page.locator(".value-panel .version").textContent(), saved?.version);

      // A delete that meets a change: shown, nothing deleted; "discard" shows the current value.
      await page.getByRole("button", { name: "Delete", exact: true }).click();
      const change = await api(inspector, "PUT", `/api/stores/default/entry?key=global&key=motd`, {
        body: { value: "Changed again." },
        headers: { "if-match": `"${saved?.version}"` },
      });
      assert.equal(change.status, 200);
      await page.getByRole("button", { name: "Yes, delete" }).click();
      await page.locator(".notice-conflict").filter({ hasText: "Nothing was deleted" }).waitFor();
      assert.equal((await store.get(key))?.value, "Changed again.");
      await page.getByRole("button", { name: "Discard mine, show current" }).click();
      await page.locator(".value-panel pre.value-view").filter({ hasText: "Changed again." })
        .waitFor();
      // Then a delete with nothing in between: done. A listener of the page's own sees the
      // feed's events (the page's delete comes back through it).
      await page.evaluate(() => {
        const g = globalThis as unknown as {
          seen: string[];
          EventSource: new (url: string) => {
            addEventListener(t: string, f: (e: { data: string }) => void): void;
          };
        };
        g.seen = [];
        new g.EventSource("/api/events").addEventListener("state.changed", (e) => {
          const data = JSON.parse(e.data);
          g.seen.push(`${data.op} ${data.key.join("/")}`);
        });
      });
      await page.getByRole("button", { name: "Delete", exact: true }).click();
      const deletedVersion = (await store.get(key))?.version;
      await page.getByRole("button", { name: "Yes, delete" }).click();
      await page.locator(".value-panel .notice-ok").filter({ hasText: "Deleted" }).waitFor();
      assert.equal(await store.get(key), null);
      // The feed's echo of that delete (and of a later write, so the page had the first) is
      // not taken for someone else's change: no "deleted while you edit it".
      const other = await api(inspector, "PUT", "/api/stores/default/entry?key=global&key=other", {
        body: { value: 1 },
        headers: { "if-none-match": "*" },
      });
      assert.ok(other.ok, await other.text());
      await page.waitForFunction(() =>
        (globalThis as unknown as { seen: string[] }).seen.includes("set global/other")
      );
      assert.ok(
        await page.evaluate(() =>
          (globalThis as unknown as { seen: string[] }).seen.includes("delete global/motd")
        ),
      );
      assert.equal(await page.locator(".value-panel .notice-changed").count(), 0);
      // What was deleted stays shown, and can be put back (create only).
      assert.equal(
        await page.locator(".value-panel .notice-ok").innerText(),
        `Deleted (it was version ${deletedVersion}). The value it held:`,
      );
      assert.equal(await page.locator("pre.value-deleted").textContent(), '"Changed again."');
      await page.getByRole("button", { name: "Restore it" }).click();
      await page.locator(".value-panel pre.value-view").filter({ hasText: "Changed again." })
        .waitFor();
      assert.equal((await store.get(key))?.value, "Changed again.");
      // The 409 answers are logged by the browser as failed resources; nothing else.
      assert.deepEqual(unexpectedErrors(watch, [/409/]), []);
    });
  },
});

/** A flow whose node waits until the file `inputs.release` exists (under the inspector's dir). */
async function writeGateFlow(inspector: Inspector): Promise<void> {
  await Deno.writeTextFile(
    join(inspector.dir, "flows", "gate.flow.yaml"),
    `id: gate
inputs:
  release: { type: string }
nodes:
  - id: wait
    type: ${join(FIXTURES, "nodes", "wait_for_file.ts")}
    with: { path: "\${{ inputs.release }}" }
    permissions: { read: [${JSON.stringify(inspector.dir)}] }
  - id: after
    type: log
    needs: [wait]
    with: { message: released }
`,
  );
}

Deno.test({
  name: "inspector: at phone width nothing scrolls sideways; diff line numbers stay on one line",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      await page.setViewportSize({ width: 390, height: 800 });
      const { runs } = await (await inspector.runtime.records()).listRunSummaries({
        flowId: "greet",
        limit: 1,
      });
      for (const view of ["state", "runs", "flows", "jobs", `runs/${runs[0].id}`]) {
        await page.goto(new URL(`#/${view}`, inspector.url).href);
        await page.locator("h1.view-title").first().waitFor();
        assert.equal(
          await page.evaluate("document.documentElement.scrollWidth"),
          390,
          `#/${view} is wider than the phone`,
        );
      }
      await page.goto(new URL("#/flows/counter", inspector.url).href);
      const numbers = page.locator("table.diff td.ln");
      await numbers.first().waitFor();
      // One line box per number: "10" is not "1" above "0".
      const lines = await page.evaluate(`[...document.querySelectorAll("table.diff td.ln")]
        .filter((cell) => cell.textContent.length > 1)
        .map((cell) => {
          const range = document.createRange();
          range.selectNodeContents(cell);
          return cell.textContent + ":" + range.getClientRects().length;
        })`) as string[];
      assert.ok(lines.length > 0);
      assert.deepEqual(lines.filter((l) => !l.endsWith(":1")), []);
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name: "inspector: jobs and flows say loading…; the jobs table draws before the schedules come",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      // Hold the answers until the test lets them through. The page says "loading…" before
      // its request reaches the route's handler: release only once one is held (releasing
      // when the page showed "loading…" raced it under load, and the request stayed held).
      const held: (() => void)[] = [];
      let heldOne = () => {};
      const hold = async (pattern: string) => {
        const first = new Promise<void>((resolve) => heldOne = resolve);
        await page.route(pattern, (route) => {
          held.push(() => route.continue().catch(() => {}));
          heldOne();
        });
        return { first };
      };
      // Let the held answers through, and any later request of `pattern` at once.
      const release = async (pattern: string, { first }: { first: Promise<void> }) => {
        await first;
        await page.unroute(pattern);
        while (held.length) held.shift()!();
      };
      const schedules = await hold("**/api/schedules*");
      await page.goto(new URL("#/jobs", inspector.url).href);
      await page.locator('.jobs-table tr[data-job="gc"]').waitFor();
      await page.locator(".schedules-table td").filter({ hasText: "loading…" }).waitFor();
      await release("**/api/schedules*", schedules);
      await page.locator(".schedules-table tr[data-schedule]").first().waitFor();

      const flows = await hold("**/api/flows*");
      await page.goto(new URL("#/flows", inspector.url).href);
      await page.locator("#main .view-loading").filter({ hasText: "loading…" }).waitFor();
      await release("**/api/flows*", flows);
      await page.locator('.flows-table tr[data-flow="counter"]').waitFor();
      assert.equal(await page.locator("#main .view-loading").count(), 0);
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name:
    "inspector: a flow file that cannot be used is a row of the schedules table saying why; the other schedules draw",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      await Deno.writeTextFile(
        join(inspector.dir, "flows", "broken.flow.yaml"),
        'id: broken\nschedule: "0 3 * * *"\nnodes:\n  - { id: a, type: nope.nope }\n',
      );
      await page.goto(new URL("#/jobs", inspector.url).href);
      const row = page.locator('.schedules-table tr[data-schedule="file:flows/broken.flow.yaml"]');
      await row.waitFor();
      assert.match(await row.innerText(), /flows\/broken\.flow\.yaml: .*unknown node type/);
      assert.ok(await page.locator('.schedules-table tr[data-schedule="job:gc"]').count() === 1);
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name:
    "inspector: each entry of a flow's schedule is a row of the schedules table with its inputs, linking to the flow",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      await Deno.writeTextFile(
        join(inspector.dir, "flows", "backup.flow.yaml"),
        [
          "id: backup",
          "inputs: { db: { type: string }, keep: { type: number, default: 7 } }",
          "schedule:",
          '  - { id: a, cron: "0 2 * * *", inputs: { db: a } }',
          '  - { id: b, cron: "0 3 * * *", inputs: { db: b, keep: 30 } }',
          "nodes:\n  - { id: say, type: log, with: { message: '${{ inputs.db }}' } }\n",
        ].join("\n"),
      );
      await page.goto(new URL("#/jobs", inspector.url).href);
      const a = page.locator('.schedules-table tr[data-schedule="flow:backup#a"]');
      const b = page.locator('.schedules-table tr[data-schedule="flow:backup#b"]');
      await a.waitFor();
      assert.equal(await a.locator(".schedule-inputs").innerText(), "inputs: db=a");
      assert.equal(await b.locator(".schedule-inputs").innerText(), "inputs: db=b, keep=30");
      assert.equal(await a.locator("a").getAttribute("href"), "#/flows/backup");
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

/**
 * A flow of `count` transform nodes, then two gates (files the test writes) one after the other.
 * One node at a time (`concurrency: 1`): they start in the order they are listed. With the
 * default 16 side by side, the order of their starts is the executor's (a node that yields to
 * the event loop first starts a few ms after the ones behind it): n16 started before n1 once
 * under load.
 */
async function writeWideFlow(inspector: Inspector, count: number): Promise<void> {
  const nodes = Array.from(
    { length: count },
    (_, i) => `  - id: n${i}\n    type: transform\n    with: { value: ${i} }\n`,
  );
  const gate = (id: string, needs: string, input: string) =>
    `  - id: ${id}
    type: ${join(FIXTURES, "nodes", "wait_for_file.ts")}
    needs: [${needs}]
    with: { path: "\${{ inputs.${input} }}" }
    permissions: { read: [${JSON.stringify(inspector.dir)}] }
`;
  await Deno.writeTextFile(
    join(inspector.dir, "flows", "wide.flow.yaml"),
    `id: wide
concurrency: 1
inputs:
  first: { type: string }
  second: { type: string }
nodes:
${nodes.join("")}${gate("first", `n${count - 1}`, "first")}${gate("second", "first", "second")}`,
  );
}

Deno.test({
  name:
    "inspector: a run of many nodes shows the first ones, the running ones, and the rest on demand",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      const count = 600;
      await writeWideFlow(inspector, count);
      const first = join(inspector.dir, "release-first");
      const second = join(inspector.dir, "release-second");
      // Listened to before the run starts: none of its events is missed.
      const events = inspector.runtime.events();
      const started = await api(inspector, "POST", "/api/flows/wide/runs", {
        body: { input: { first, second } },
      });
      assert.equal(started.status, 202, await started.clone().text());
      const { runId } = await started.json();
      // The page opens once the run waits in `first` (its 600 nodes ran, its module loaded):
      // the server's work takes as long as it takes (seconds under load), none of it inside
      // the page's waits below, which are for the page only.
      for await (const e of events) {
        if (e.type !== "node" || e.runId !== runId) continue;
        if (e.event.type === "node.log" && e.event.node === "first") break;
      }
      await page.goto(new URL(`#/runs/${runId}`, inspector.url).href);
      await page.locator("#live.on").waitFor();
      await page.locator('.node-row[data-node="first"][data-status="running"]').waitFor();
      // Every node of the flow, `second` (not started) too, once the pages after the first came.
      await page.locator(".timeline-panel").filter({ hasText: `${count + 2} nodes ·` }).waitFor();
      // The first 500 in start order (n2 before n10), then only the running one.
      const rows = page.locator(".timeline-panel .node-row");
      const names = await rows.evaluateAll((els) => els.map((e) => e.getAttribute("data-node")));
      assert.equal(names.length, 501);
      assert.deepEqual(names.slice(0, 12), Array.from({ length: 12 }, (_, i) => `n${i}`));
      assert.equal(names.at(-1), "first");
      const showAll = page.locator(".timeline-panel button.show-all");
      assert.equal(await showAll.textContent(), `show all ${count + 2} nodes (101 more)`);

      // The collapsed event log holds no lines; opened, a page of them and a "show more".
      const log = page.locator("details.event-log");
      assert.equal(await log.locator("li").count(), 0);
      await log.locator("summary").click();
      await log.locator("li").first().waitFor();
      assert.equal(await log.locator("li").count(), 500);
      await log.locator("button.show-more-events").click();
      await log.locator("li").nth(500).waitFor();
      // Closed: the lines go when the <details> fires its `toggle`, a task after the click
      // (asserting at once raced it: 1000 lines still there).
      await log.locator("summary").click();
      await log.locator("li").first().waitFor({ state: "detached" });
      assert.equal(await log.evaluate((el) => el.open), false);
      assert.equal(await log.locator("li").count(), 0);

      // A live event redraws its node's row only: a mark on another row stays.
      await page.locator('.node-row[data-node="n3"]').evaluate((el) => el.classList.add("mark"));
      await Deno.writeTextFile(first, "go");
      await page.locator('.node-row[data-node="second"][data-status="running"]').waitFor();
      // Past the first 500, a node that ended well leaves the short list.
      await page.locator('.node-row[data-node="first"]').waitFor({ state: "detached" });
      assert.equal(await page.locator(".node-row.mark").count(), 1);
      // n1's output is `1`: one byte, said so.
      await page.locator('.node-row[data-node="n1"] .node-summary').click();
      const facts = page.locator('.node-row[data-node="n1"] .node-facts');
      await facts.filter({ hasText: "output1 byte" }).waitFor();
      assert.doesNotMatch(await facts.textContent() ?? "", /bytes/);
      assert.equal(await showAll.textContent(), `show all ${count + 2} nodes (101 more)`);

      await showAll.click();
      await page.locator('.node-row[data-node="n599"]').waitFor();
      assert.equal(await rows.count(), count + 2);
      assert.equal(await showAll.isVisible(), false);

      await Deno.writeTextFile(second, "go");
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name: "inspector: a run started by the CLI appears live, and its detail follows it to the end",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      await writeGateFlow(inspector);
      const release = join(inspector.dir, "release-cli");
      await page.goto(new URL("#/runs", inspector.url).href);
      await page.locator(".runs-table tbody tr[data-run]").first().waitFor();
      await page.locator("#live.on").waitFor();
      // A marker that a reload would lose.
      await page.evaluate(() => (globalThis as unknown as { marker: number }).marker = 42);

      const child = inspector.command([
        "run",
        "flows/gate.flow.yaml",
        "--input",
        `release=${release}`,
      ])
        .spawn();
      try {
        // Another process's run: seen by the feed polling the records.
        const row = page.locator('.runs-table tr[data-flow="gate"]');
        await row.locator(".badge.status-running").waitFor();
        // Its detail, in a second tab, while it runs.
        const href = await row.locator("a").first().getAttribute("href");
        const detail = await page.context().newPage();
        await detail.goto(new URL(href!, inspector.url).href);
        await detail.locator(".run-title .badge.status-running").waitFor();
        assert.equal(await detail.getByRole("button", { name: "Cancel run" }).count(), 1);
        await detail.evaluate(() => (globalThis as unknown as { marker: number }).marker = 7);

        await Deno.writeTextFile(release, "go");
        // Both tabs follow the run to its end without a reload.
        await row.locator(".badge.status-succeeded").waitFor();
        await detail.locator(".run-title .badge.status-succeeded").waitFor();
        await detail.locator('.node-row[data-node="wait"][data-status="succeeded"]').waitFor();
        await detail.locator('.node-row[data-node="after"][data-status="succeeded"]').waitFor();
        assert.equal(await detail.getByRole("button", { name: "Cancel run" }).count(), 0);
        assert.equal(
          await detail.evaluate(() => (globalThis as unknown as { marker?: number }).marker),
          7,
          "the detail was not reloaded",
        );
        const status = await outputOf(child);
        assert.equal(status.code, 0, status.stderr);
      } finally {
        try {
          child.kill();
        } catch {
          // already ended
        }
      }
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker),
        42,
        "the list was not reloaded",
      );
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name: "inspector: a run's detail shows each node as it starts and ends, live",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      await writeGateFlow(inspector);
      const release = join(inspector.dir, "release-api");
      // Started in the server's process: its node events reach the feed as they happen.
      const started = await api(inspector, "POST", "/api/flows/gate/runs", {
        body: { input: { release } },
      });
      assert.equal(started.status, 202, await started.clone().text());
      const { runId } = await started.json();
      await page.goto(new URL(`#/runs/${runId}`, inspector.url).href);
      await page.locator("#live.on").waitFor();
      await page.locator(".run-title .badge.status-running").waitFor();
      await page.locator('.node-row[data-node="wait"][data-status="running"]').waitFor();
      await page.locator('.node-row[data-node="wait"] .node-summary').click();
      await page.locator('.node-row[data-node="wait"] .log-message')
        .filter({ hasText: `waiting for ${release}` }).waitFor();
      // A node not started yet is listed all the same, as pending, after the running one.
      await page.locator('.node-row[data-node="after"][data-status="pending"]').waitFor();
      assert.deepEqual(
        await page.locator(".node-row").evaluateAll((rows) =>
          rows.map((r) => r.getAttribute("data-node"))
        ),
        ["wait", "after"],
      );
      await page.evaluate(() => (globalThis as unknown as { marker: number }).marker = 9);

      await Deno.writeTextFile(release, "go");
      await page.locator('.node-row[data-node="wait"][data-status="succeeded"]').waitFor();
      await page.locator('.node-row[data-node="after"][data-status="succeeded"]').waitFor();
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker),
        9,
        "the page was not reloaded",
      );

      // Cancel a running run from its page.
      const second = await api(inspector, "POST", "/api/flows/gate/runs", {
        body: { input: { release: join(inspector.dir, "never") } },
      });
      assert.equal(second.status, 202);
      const { runId: cancelId } = await second.json();
      await page.goto(new URL(`#/runs/${cancelId}`, inspector.url).href);
      await page.locator('.node-row[data-node="wait"][data-status="running"]').waitFor();
      // Cancelling asks first, saying what stops; "No" keeps it running, nothing sent.
      await page.getByRole("button", { name: "Cancel run" }).click();
      const confirm = page.getByRole("alertdialog", { name: "Cancel this run?" });
      assert.match(
        await confirm.locator(".confirm-text").innerText(),
        new RegExp(`^Cancel run ${cancelId} of gate\\? Its running node \\(wait\\) stops`),
      );
      assert.equal(
        await page.locator(":focus").textContent(),
        "No, keep it running",
        "the safe choice has the focus",
      );
      await page.keyboard.press("Enter");
      await confirm.waitFor({ state: "detached" });
      assert.equal(
        await page.locator(":focus").textContent(),
        "Cancel run",
        "the focus goes back to the button",
      );
      const records = await inspector.runtime.records();
      assert.equal((await records.getRun(cancelId))?.status, "running");
      assert.equal(await records.cancelRequested(cancelId), false, "no cancel request recorded");
      await page.getByRole("button", { name: "Cancel run" }).click();
      await confirm.getByRole("button", { name: "Yes, cancel the run" }).click();
      await page.locator(".run-title .badge.status-cancelled").waitFor();
      await confirm.waitFor({ state: "detached" });
      assert.equal(
        (await (await inspector.runtime.records()).getRun(cancelId))?.status,
        "cancelled",
      );
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name: "inspector: a run's timeline shows statuses, attempts, errors, logs, reads and writes",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      const records = await inspector.runtime.records();
      const flaky = (await records.listRunSummaries({ flowId: "flaky", limit: 1 })).runs[0];
      await page.goto(new URL("#/runs", inspector.url).href);
      await page.locator(".runs-table tr[data-flow=flaky] a").first().click();
      await page.locator(".run-title .badge.status-failed").waitFor();
      assert.ok(page.url().endsWith(`#/runs/${flaky.id}`));
      const parse = page.locator('.node-row[data-node="parse"]');
      assert.equal(await parse.getAttribute("data-status"), "failed");
      assert.equal(await parse.locator(".node-attempts").textContent(), "3 attempts");
      assert.equal(
        await parse.locator(".node-error").textContent(),
        "upstream answered 503 Service Unavailable",
      );
      await parse.locator(".node-summary").click();
      assert.equal(await parse.locator(".attempts li").count(), 3);
      assert.equal(
        await page.locator('.node-row[data-node="fetch"]').getAttribute("data-status"),
        "succeeded",
      );

      // greet: reads and writes of flow state, and the log line.
      const greet = (await records.listRunSummaries({ flowId: "greet", limit: 1 })).runs[0];
      await page.goto(new URL(`#/runs/${greet.id}`, inspector.url).href);
      const remember = page.locator('.node-row[data-node="remember"]');
      await remember.locator(".node-summary").click();
      await remember.locator(".keyset.writes li").filter({ hasText: "flow: last-name" }).waitFor();
      const previous = page.locator('.node-row[data-node="previous"]');
      await previous.locator(".node-summary").click();
      await previous.locator(".keyset.reads li").filter({ hasText: "flow: last-name" }).waitFor();
      const report = page.locator('.node-row[data-node="report"]');
      await report.locator(".node-summary").click();
      await report.locator(".log-message").filter({ hasText: "hello, Edsger (last time: Grace)" })
        .waitFor();
      // A written key links to its value in the state view.
      await remember.locator(".keyset.writes a").click();
      await page.locator(".value-panel pre.value-view").filter({ hasText: '"Edsger"' }).waitFor();

      // Re-run with the same inputs: a new run of greet with name Edsger.
      await page.goto(new URL(`#/runs/${greet.id}`, inspector.url).href);
      await page.getByRole("button", { name: "Re-run with the same inputs" }).click();
      await page.waitForURL((url) =>
        url.hash.startsWith("#/runs/") && !url.hash.startsWith(`#/runs/${greet.id}`)
      );
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      const id = new URL(page.url()).hash.slice("#/runs/".length).split("?")[0];
      const rerun = await records.getRun(id);
      assert.deepEqual(rerun?.inputs, { name: "Edsger" });
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name: "inspector: values, key parts, inputs and logs holding HTML show as text; no dialog",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      const hostile = "<img src=x onerror=alert(4)><script>alert(5)</script>";
      const started = await api(inspector, "POST", "/api/flows/greet/runs?wait=true", {
        body: { input: { name: hostile } },
      });
      assert.equal(started.status, 200, await started.clone().text());
      const { run } = await started.json();

      await page.goto(new URL("#/state", inspector.url).href);
      await expand(page, ["global"]);
      await openValue(page, ["global", "xss"]);
      const value = page.locator(".value-panel pre.value-view");
      await value.filter({ hasText: "<script>" }).waitFor();
      assert.equal(await value.textContent(), JSON.stringify(XSS_VALUE));
      // A key part holding HTML is a label, not markup.
      const hostileKey = ["global", "<img src=x onerror=alert(3)>"];
      assert.equal(
        await treeItem(page, hostileKey).locator(".part").textContent(),
        "<img src=x onerror=alert(3)>",
      );
      await openValue(page, hostileKey);
      await page.locator(".value-panel .value-key").filter({ hasText: "onerror=alert(3)" })
        .waitFor();
      await page.locator(".value-panel pre.value-view").filter({ hasText: "<script>" }).waitFor();
      // Editing shows it as text in the textarea too.
      await page.getByRole("button", { name: "Edit", exact: true }).click();
      assert.match(await page.locator("textarea.value-editor").inputValue(), /<script>alert\(1\)/);

      await page.goto(new URL(`#/runs/${run.id}`, inspector.url).href);
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      await page.locator('.node-row[data-node="report"] .node-summary').click();
      await page.locator(".log-message").filter({ hasText: "<script>alert(5)</script>" }).waitFor();
      await page.locator(".io-grid pre").filter({ hasText: "onerror=alert(4)" }).first().waitFor();

      // Nothing of it became markup: no <img>, no <script> but the app's own module.
      assert.equal(await page.locator("main img").count(), 0);
      assert.deepEqual(
        await page.evaluate(
          '[...document.querySelectorAll("script")].map((s) => s.getAttribute("src"))',
        ),
        ["/ui/app.js"],
      );
      assert.deepEqual(watch.dialogs, []);
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name: "inspector: with a token, #token= opens a session and leaves the address bar",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const token = "inspector-test-token-0123456789";
    await withPage(async (page, inspector, watch) => {
      await page.goto(new URL(`#token=${token}`, inspector.url).href);
      await page.locator('.store-card[data-store="default"]').waitFor();
      assert.ok(!page.url().includes(token), page.url());
      assert.ok(page.url().endsWith("#/state"), page.url());
      await expand(page, ["global"]);
      await openValue(page, ["global", "motd"]);
      await page.locator(".value-panel pre.value-view").filter({ hasText: "Fridays" }).waitFor();
      // The cookie carries the session; the token is nowhere in the page's storage.
      const cookies = await page.context().cookies();
      const session = cookies.find((c) => c.name === "flowstate_token");
      assert.ok(session?.httpOnly, JSON.stringify(cookies));
      assert.equal(await page.evaluate("document.cookie"), "");
      assert.deepEqual(unexpectedErrors(watch), []);
    }, { token });

    await withPage(async (page, inspector, watch) => {
      // Without it: the prompt; a wrong token is refused, the right one opens the page.
      await page.goto(new URL("#/runs", inspector.url).href);
      const prompt = page.locator("#token-prompt");
      await prompt.waitFor();
      await page.locator("#token-input").fill("not-the-token");
      await prompt.getByRole("button", { name: "Open" }).click();
      await prompt.locator(".form-error").filter({ hasText: "not this server's token" }).waitFor();
      await page.locator("#token-input").fill(token);
      await prompt.getByRole("button", { name: "Open" }).click();
      await page.locator(".runs-table tbody tr[data-run]").first().waitFor();
      assert.equal(await prompt.count(), 0);
      assert.deepEqual(unexpectedErrors(watch, [/401/]), []);
    }, { token });
  },
});

Deno.test({
  name: "inspector: a flow's versions diff, its metrics, and a job run now",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      await page.goto(new URL("#/flows", inspector.url).href);
      const counter = page.locator('.flows-table tr[data-flow="counter"]');
      await counter.waitFor();
      assert.equal(await counter.locator("td").nth(1).textContent(), "2");
      await counter.locator("a.flow-link").click();
      // The head against its parent: the changed description, the added node.
      const diff = page.locator("table.diff");
      await diff.waitFor();
      assert.match(await page.locator(".diff-title").textContent() ?? "", /\+5 −1/);
      assert.deepEqual(
        await diff.locator("tr.diff-del td.code").allTextContents(),
        ["description: counts its runs"],
      );
      assert.ok(
        (await diff.locator("tr.diff-add td.code").allTextContents()).includes("  - id: stamp"),
      );
      // Metrics: 7 runs, all succeeded; one bar per run in the chart.
      await page.locator(".stat").filter({ hasText: "runs" }).filter({ hasText: "7" }).waitFor();
      await page.locator(".stat").filter({ hasText: "success rate" }).filter({ hasText: "100%" })
        .waitFor();
      assert.equal(await page.locator("svg.chart:not(.outcome) rect.bar").count(), 7);
      // The same version on both sides: no difference.
      const head = await page.locator(".versions-table tbody tr").first().getAttribute(
        "data-version",
      );
      await page.getByRole("radio", { name: `diff from ${head!.slice(0, 10)}` }).check();
      await page.locator(".diff-panel").filter({ hasText: "The sources are the same." }).waitFor();

      // Jobs: run gc now; its run appears with a link.
      await page.goto(new URL("#/jobs", inspector.url).href);
      const gc = page.locator('.jobs-table tr[data-job="gc"]');
      await gc.getByRole("button", { name: "Run now" }).click();
      // It asks first, saying what the job does; Cancel runs nothing.
      const ask = gc.getByRole("group", { name: "Run gc now?" });
      assert.match(
        await ask.locator(".confirm-text").innerText(),
        /^Run gc now\? Removes expired entries/,
      );
      assert.equal(await page.locator(":focus").textContent(), "Cancel");
      const gcRuns = async () =>
        (await (await inspector.runtime.records()).listRunSummaries({ flowId: "job:gc" })).runs
          .length;
      const before = await gcRuns();
      await page.keyboard.press("Enter");
      await ask.waitFor({ state: "detached" });
      assert.equal(await page.locator(":focus").textContent(), "Run now");
      assert.equal(await gcRuns(), before, "nothing ran");
      await gc.getByRole("button", { name: "Run now" }).click();
      await ask.getByRole("button", { name: "Run gc" }).click();
      const link = page.locator(".toast a");
      await link.waitFor();
      const runId = await link.textContent();
      await link.click();
      await page.locator(".run-title .badge.status-succeeded").waitFor();
      assert.equal((await (await inspector.runtime.records()).getRun(runId!))?.flowId, "job:gc");
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name: "inspector: the runs list marks a sub-run, and its mark leads to the run that started it",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      const parent = await inspector.runtime.runFlow({
        id: "caller",
        nodes: [{
          id: "call",
          type: "flow",
          with: {
            flow: { id: "callee", nodes: [{ id: "hi", type: "log", with: { message: "hi" } }] },
          },
        }],
      });
      assert.equal(parent.status, "succeeded", JSON.stringify(parent.error));
      const { runs } = await (await inspector.runtime.records()).listRunSummaries({
        flowId: "callee",
      });
      assert.equal(runs.length, 1);
      const child = runs[0];
      assert.equal(child.parentRunId, parent.id);
      await page.goto(new URL("#/runs", inspector.url).href);
      const childRow = page.locator(`tr[data-run="${child.id}"]`);
      const mark = childRow.locator("a.sub-run");
      await mark.waitFor();
      assert.equal(await mark.textContent(), " (sub-flow)");
      assert.equal(await mark.getAttribute("title"), `a sub-flow of run ${parent.id}`);
      assert.equal(await page.locator(`tr[data-run="${parent.id}"] a.sub-run`).count(), 0);
      await mark.click();
      await page.waitForURL(new RegExp(`#/runs/${parent.id}$`));
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name:
    "inspector: the runs list marks a run a queue node enqueued (enqueued), not (sub-flow), and shows when its attempt started, not when it was enqueued",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      const greet = join(inspector.dir, "flows", "greet.flow.yaml");
      const parent = await inspector.runtime.runFlow(greet);
      // Due seconds after it is enqueued (`delay` counts from before the flow loads, the record's
      // time from after): its start (the server's worker claims it) and its enqueue time never
      // read the same.
      const { runId } = await inspector.runtime.enqueue(greet, {
        parentRunId: parent.id,
        delay: "3s",
      });
      const records = await inspector.runtime.records();
      await waitUntil(
        "the server's worker ran the enqueued run",
        async () => (await records.getRun(runId))?.status === "succeeded",
      );
      const run = (await records.getRun(runId))!;
      const claimedAt = run.queue!.attempts[0].startedAt;
      assert.ok(claimedAt - run.startedAt >= 1000, JSON.stringify(run.queue));
      await page.goto(new URL("#/runs", inspector.url).href);
      const row = page.locator(`tr[data-run="${runId}"]`);
      const mark = row.locator("a.enqueued-by");
      await mark.waitFor();
      assert.equal(await mark.textContent(), " (enqueued)");
      assert.equal(
        await mark.getAttribute("title"),
        `enqueued by run ${parent.id} (a queue node): nothing waits for it`,
      );
      assert.equal(await row.locator("a.sub-run").count(), 0);
      assert.equal(await row.locator("td.started").getAttribute("title"), formatTime(claimedAt));
      await mark.click();
      await page.waitForURL(new RegExp(`#/runs/${parent.id}$`));
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name:
    "inspector: the runs list keeps its page and filters in the URL: reload, back and forward show the same page",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      // Three pages of succeeded counter runs (50 a page), beside the seeded ones.
      const flow = join(inspector.dir, "flows", "counter.flow.yaml");
      for (let i = 0; i < 110; i++) await inspector.runtime.runFlow(flow);
      const rows = page.locator(".runs-table tbody tr[data-run]");
      const ids = () => rows.evaluateAll((els) => els.map((e) => e.getAttribute("data-run")));
      const pager = page.locator(".pager");
      await page.goto(new URL("#/runs?flow=counter&status=succeeded", inspector.url).href);
      await rows.first().waitFor();
      const first = await ids();
      assert.equal(first.length, 50);

      await pager.getByRole("button", { name: "older →" }).click();
      await pager.getByText("page 2").waitFor();
      await page.locator(`tr[data-run="${first[0]}"]`).waitFor({ state: "detached" });
      const second = await ids();
      assert.equal(second.length, 50);
      assert.ok(!second.includes(first[0]));
      await pager.getByRole("button", { name: "older →" }).click();
      await pager.getByText("page 3").waitFor();
      await page.locator(`tr[data-run="${second[0]}"]`).waitFor({ state: "detached" });
      const third = await ids();
      const thirdUrl = page.url();
      assert.match(thirdUrl, /[?&]cursor=/);
      assert.match(thirdUrl, /[?&]flow=counter/);
      assert.match(thirdUrl, /[?&]status=succeeded/);

      // A reload shows the same page, with its filters, and "← newer" still leads back.
      await page.reload();
      await pager.getByText("page 3").waitFor();
      await rows.first().waitFor();
      assert.deepEqual(await ids(), third);
      assert.equal(await page.locator("#filter-flow").inputValue(), "counter");
      assert.equal(await page.locator("#filter-status").inputValue(), "succeeded");
      await pager.getByRole("button", { name: "← newer" }).click();
      await pager.getByText("page 2").waitFor();
      await page.locator(`tr[data-run="${second[0]}"]`).waitFor();
      assert.deepEqual(await ids(), second);

      // Back and forward move between the pages as they were seen.
      await page.goBack();
      await pager.getByText("page 3").waitFor();
      await page.locator(`tr[data-run="${third[0]}"]`).waitFor();
      await page.goForward();
      await pager.getByText("page 2").waitFor();
      await page.locator(`tr[data-run="${second[0]}"]`).waitFor();

      // A link to the third page, opened in another tab, shows it.
      const other = await page.context().newPage();
      await other.goto(thirdUrl);
      await other.locator(".pager").getByText("page 3").waitFor();
      await other.locator(".runs-table tbody tr[data-run]").first().waitFor();
      assert.deepEqual(
        await other.locator(".runs-table tbody tr[data-run]").evaluateAll((els) =>
          els.map((e) => e.getAttribute("data-run"))
        ),
        third,
      );
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name:
    "inspector: a big run's page asks for its first nodes, then the others, and ends up showing every node",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      const nodes = Array.from({ length: 650 }, (_, i) => ({
        id: `n${i}`,
        type: "transform",
        ...(i % 50 === 0 ? {} : { needs: [`n${i - 1}`] }),
        with: { value: i },
      }));
      const run = await inspector.runtime.runFlow({ id: "big", nodes });
      assert.equal(run.status, "succeeded");
      const asked: string[] = [];
      page.on("request", (request) => {
        const url = new URL(request.url());
        if (url.pathname.startsWith(`/api/runs/${run.id}`)) {
          asked.push(url.pathname.slice(`/api/runs/${run.id}`.length) + url.search);
        }
      });
      await page.goto(new URL(`#/runs/${run.id}`, inspector.url).href);
      const head = page.locator(".timeline-panel .panel-head");
      await head.getByText("650 nodes · click a node").waitFor();
      // The first answer held 500 nodes; the others came after; never the whole run at once.
      assert.equal(asked[0], "/nodes?limit=500");
      assert.ok(asked.includes("/nodes?offset=500&limit=2000"), asked.join(" "));
      assert.ok(!asked.includes(""), asked.join(" "));
      await page.getByRole("button", { name: "show all 650 nodes (150 more)" }).click();
      await page.locator('.node-row[data-node="n649"][data-status="succeeded"]').waitFor();
      assert.equal(await page.locator(".node-row").count(), 650);
      const events = (await (await inspector.runtime.records()).getEvents(run.id)).length;
      await page.locator(".event-log summary").getByText(`Events (${events})`).waitFor();
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name:
    "inspector: a queued run's page says it has not started (not 'running for'), when it is due, its attempts, and cancels it",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      const rt = inspector.runtime;
      // One lost once by a worker that died: claimed (first: the higher priority) and taken back
      // "two hours on" (a clock of its own), so it is queued again, due then, with that attempt.
      const lost = await rt.enqueue("greet", { delay: "1h", priority: 5 });
      const other = (await rt.enqueue("greet", { delay: "1h", priority: 3 })).runId;
      const later = new Records(await rt.store(), { clock: { now: () => Date.now() + 7_200_000 } });
      const claimed = await later.claimRun({ worker: "gone-worker", leaseMs: 1_000 });
      assert.equal(claimed?.id, lost.runId);
      const again = new Records(await rt.store(), { clock: { now: () => Date.now() + 7_300_000 } });
      assert.deepEqual(await again.reclaimLost(), [lost.runId]);

      await page.goto(new URL(`#/runs/${lost.runId}`, inspector.url).href);
      await page.locator(".run-title .badge.status-queued").waitFor();
      const attempt = page.locator(".queue-attempt");
      await attempt.filter({ hasText: "on gone-worker" }).waitFor();
      assert.equal(await attempt.locator(".badge.status-lost").count(), 1);
      assert.match(await attempt.innerText(), /no heartbeat from worker gone-worker/);

      await page.goto(new URL(`#/runs/${other}`, inspector.url).href);
      await page.locator(".run-title .badge.status-queued").waitFor();
      const duration = await page.locator(".run-duration").innerText();
      assert.match(duration, /^not started: due in (59|60) min$/, "not 'running for'");
      assert.match(await page.locator(".run-facts").innerText(), /due .*, priority 3/);
      assert.equal(await page.locator(".queue-attempt").count(), 0);
      await page.getByRole("button", { name: "Cancel run" }).click();
      assert.match(
        await page.locator(".cancel-confirm .confirm-text").innerText(),
        /It has not started: it leaves the queue and never runs\./,
      );
      await page.getByRole("button", { name: "Yes, cancel the run" }).click();
      await page.locator(".run-title .badge.status-cancelled").waitFor();
      assert.equal((await (await rt.records()).getRun(other))?.status, "cancelled");
      assert.deepEqual(unexpectedErrors(watch), []);
    }, {});
  },
});

Deno.test({
  name: "inspector: a queued run set aside for a slot of its partition says it waits for one",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // No worker of the server's own (and no seed runs): the test's claims are the only ones.
    await withInspectorPage({ worker: false, seed: false }, async (page, inspector, watch) => {
      const records = await inspector.runtime.records();
      // Three greet runs of partition "acme", at most two at once; the test claims (no worker).
      const { runId } = await inspector.runtime.enqueue("greet", { delay: "1h" });
      const { flowVersion, queue } = (await records.getRun(runId))!;
      const limit = { concurrency: 2, partition: "acme" };
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const init = { flowId: "greet", flowVersion, inputs: {}, flowPath: queue!.flowPath, limit };
        ids.push((await records.enqueueRun(init)).runId);
      }
      const lease = { worker: "test", leaseMs: 3_600_000 };
      assert.equal((await records.claimRun(lease))?.id, ids[0]);
      assert.equal((await records.claimRun(lease))?.id, ids[1]);
      assert.equal(await records.claimRun(lease), null, "acme is at its limit");
      await page.goto(new URL(`#/runs/${ids[2]}`, inspector.url).href);
      await page.locator(".run-title .badge.status-queued").waitFor();
      const facts = await page.locator(".run-facts").innerText();
      assert.match(
        facts,
        /due .*, priority 0, at most 1 attempt, waiting for a slot \(concurrency 2 reached, partition "acme"\)/,
      );
      assert.match(facts, /not started: waiting for a slot/);
      assert.deepEqual(unexpectedErrors(watch), []);
    });
  },
});

Deno.test({
  name: "inspector: a queued run put off by its flow's rate limit says it waits for it",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async (page, inspector, watch) => {
      const records = await inspector.runtime.records();
      // A greet run's version and file, for two runs limited to one start an hour.
      const { runId } = await inspector.runtime.enqueue("greet", { delay: "1h" });
      const { flowVersion, queue } = (await records.getRun(runId))!;
      const limit = { rate: { limit: 1, perMs: 3_600_000 }, partition: "*" };
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const init = { flowId: "greet", flowVersion, inputs: {}, flowPath: queue!.flowPath, limit };
        ids.push((await records.enqueueRun(init)).runId);
      }
      // The server's worker starts one and puts the other off.
      let waiting: string | undefined;
      const deadline = Date.now() + 60_000;
      while (waiting === undefined) {
        if (Date.now() > deadline) throw new Error("no run was put off by its rate limit");
        for (const id of ids) {
          if ((await records.getRun(id))?.queue?.waiting === "rate") waiting = id;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      await page.goto(new URL(`#/runs/${waiting}`, inspector.url).href);
      await page.locator(".run-title .badge.status-queued").waitFor();
      assert.match(
        await page.locator(".run-facts").innerText(),
        /due .*, priority 0, at most 1 attempt, waiting for its rate limit/,
      );
      assert.deepEqual(unexpectedErrors(watch), []);
    }, {});
  },
});
