/**
 * Is the inspector page responsive on a store of 1,000,000 keys? A real
 * server over a sqlite store filled with `N` keys (default 1,000,000:
 * `global/users/u0000000…` flat under one prefix, the worst case for the
 * tree, plus a few node-scoped keys), driven by Debian's chromium:
 *
 * ```sh
 * FLOWSTATE_TEST_CHROMIUM=/usr/bin/chromium deno run --unstable-worker-options -A \
 *   bench/inspector_1m.ts [N] [rounds]
 * ```
 *
 * Prints the API calls behind the page (from this process), then per page
 * step the median and max over `rounds` (default 5) of the time measured in
 * the page from the click to the result in the DOM: open the state view
 * (navigation start to the first tree row), expand the 1M-child prefix (its
 * first page), load the next page, open a value, a prefix search's first
 * page; and the page's DOM size and JS heap, to show nothing grows with the
 * store.
 *
 * @module
 */
import { launchChromium, startInspector } from "../tests/browser/_inspector.ts";

const N = Number(Deno.args[0] ?? 1_000_000);
const ROUNDS = Number(Deno.args[1] ?? 5);
const BATCH = 5_000;

const inspector = await startInspector({ seed: false });
const browser = await launchChromium();
try {
  const store = await inspector.runtime.store("default");
  const fillStart = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    const op = store.atomic();
    for (let j = i; j < Math.min(N, i + BATCH); j++) {
      op.set(["global", "users", `u${String(j).padStart(7, "0")}`], {
        id: j,
        name: `User ${j}`,
        plan: j % 3 === 0 ? "pro" : "free",
      });
    }
    const result = await op.commit();
    if (!result.ok) throw new Error(`fill: batch at ${i} did not commit`);
  }
  for (const flow of ["import", "report"]) {
    for (const node of ["fetch", "store"]) {
      await store.set(["node", flow, node, "cursor"], { at: 123 });
    }
  }
  const fillMs = performance.now() - fillStart;
  console.log(
    `store: ${N.toLocaleString("en-US")} keys (+4) filled in ${(fillMs / 1000).toFixed(1)} s`,
  );

  // The API calls behind the steps, from this process (no browser).
  const apiTimes: Record<string, number[]> = {};
  const calls: [string, string][] = [
    ["GET /health", "/health"],
    ["GET /api/stores (counts 1M entries)", "/api/stores"],
    ["GET children of [] (root)", "/api/stores/default/children"],
    [
      "GET children of global/users (200 of 1M)",
      "/api/stores/default/children?prefix=global&prefix=users",
    ],
    [
      "GET entries under global/users (50)",
      "/api/stores/default/entries?prefix=global&prefix=users&limit=50",
    ],
  ];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, path] of calls) {
      const start = performance.now();
      const response = await fetch(new URL(path, inspector.url));
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      (apiTimes[name] ??= []).push(performance.now() - start);
    }
  }

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // In the page: the time from navigation start to the first tree row (set by
  // an observer installed before the page's scripts), and a helper that clicks
  // and resolves with the ms until a selector matches (measured in the page,
  // so playwright's own waits are not counted).
  await page.addInitScript(`
    window.__firstTree = null;
    new MutationObserver((_, observer) => {
      if (window.__firstTree === null && document.querySelector("li.tree-node")) {
        window.__firstTree = performance.now();
        observer.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
    window.__clickUntil = (click, until) => new Promise((resolve) => {
      const start = performance.now();
      document.querySelector(click).click();
      const check = () => document.querySelector(until)
        ? resolve(performance.now() - start)
        : requestAnimationFrame(check);
      check();
    });
  `);
  const times: Record<string, number[]> = {};
  const record = (name: string, ms: number) => (times[name] ??= []).push(ms);
  const sel = (key: string[]) => `li.tree-node[data-key='${JSON.stringify(key)}']`;
  const clickUntil = async (name: string, click: string, until: string) => {
    record(
      name,
      await page.evaluate(
        `window.__clickUntil(${JSON.stringify(click)}, ${JSON.stringify(until)})`,
      ) as number,
    );
    await page.locator(until).first().waitFor();
  };
  const last = `u${String(N - 1).padStart(7, "0")}`;
  let domAfterTree = 0;
  for (let round = 0; round < ROUNDS; round++) {
    await page.goto("about:blank");
    await page.goto(new URL("#/state", inspector.url).href);
    await page.locator(sel(["global"])).waitFor();
    record(
      "open #/state: navigation start to the first tree row",
      await page.evaluate("window.__firstTree") as number,
    );
    await clickUntil(
      "expand global",
      `${sel(["global"])} > .tree-row .toggle`,
      sel(["global", "users"]),
    );
    await clickUntil(
      "expand global/users (its first 200 of 1M children)",
      `${sel(["global", "users"])} > .tree-row .toggle`,
      sel(["global", "users", "u0000199"]),
    );
    await clickUntil(
      "load more (children 201-400)",
      `${sel(["global", "users"])} .tree-more button`,
      sel(["global", "users", "u0000399"]),
    );
    if (round === 0) {
      domAfterTree = await page.evaluate("document.getElementsByTagName('*').length") as number;
    }
    await clickUntil(
      "open a value",
      `${sel(["global", "users", "u0000321"])} > .tree-row .tree-label`,
      ".value-panel pre.value-view",
    );
    await page.locator(".prefix-input").fill("global/users");
    await clickUntil(
      "prefix search global/users (first 50 entries)",
      ".prefix-form button",
      ".entry-list li:nth-child(50)",
    );
    const start = performance.now();
    await page.goto(
      new URL(
        `#/state?key=${encodeURIComponent(JSON.stringify(["global", "users", last]))}`,
        inspector.url,
      ).href,
    );
    await page.locator(".value-panel pre.value-view").filter({ hasText: `"User ${N - 1}"` })
      .waitFor();
    record(
      "open the last key by its URL (wall time, with playwright's wait)",
      performance.now() - start,
    );
  }
  const dom = await page.evaluate("document.getElementsByTagName('*').length");
  const heap = await page.evaluate(
    "performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1048576) : null",
  );
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`\n| API call | median | max |\n| --- | ---: | ---: |`);
  for (const [name, xs] of Object.entries(apiTimes)) {
    console.log(`| ${name} | ${median(xs).toFixed(0)} ms | ${Math.max(...xs).toFixed(0)} ms |`);
  }
  console.log(`\n| page step | median | max |\n| --- | ---: | ---: |`);
  for (const [name, xs] of Object.entries(times)) {
    console.log(`| ${name} | ${median(xs).toFixed(0)} ms | ${Math.max(...xs).toFixed(0)} ms |`);
  }
  console.log(
    `\nDOM elements with 400 children shown: ${domAfterTree}; after the last step: ${dom}, JS heap ${heap} MiB`,
  );
} finally {
  await browser.close();
  await inspector.close();
}
