/**
 * A real `flowstate serve` for the browser tests, the screenshots and the
 * inspector benchmark: a temporary directory with a config (one sqlite store),
 * a few flows that have run (two versions of one of them, a failure with
 * retries, logs, state reads and writes), some state, and the server on
 * 127.0.0.1, port 0. Also launches Debian's chromium with playwright-core.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { openRuntime, type Runtime } from "../../src/runtime.ts";
import { type FlowstateServer, serve, type ServeOptions } from "../../src/serve/server.ts";
import { cliCommand, type Result, runCli } from "../_cli_sandbox.ts";

/** Chromium to drive (`FLOWSTATE_TEST_CHROMIUM`), or undefined: the browser tests are ignored. */
export const CHROMIUM: string | undefined = Deno.env.get("FLOWSTATE_TEST_CHROMIUM") || undefined;

/** A value that must show as text: it would run script if the page parsed it as HTML. */
export const XSS_VALUE = '<script>alert(1)</script><img src=x onerror="alert(2)">';

const CONFIG = `stores:
  default: { plugin: sqlite, path: state.db }
flows: [./flows]
`;

/** The config with a change feed on the store (`feed: true`). */
const CONFIG_WITH_FEED = `stores:
  default: { plugin: sqlite, path: state.db, changes: { keep: 30d } }
flows: [./flows]
`;

/** The flows, by file name. `counter` is changed after its first runs (a second version). */
export const FLOWS: Record<string, string> = {
  "greet.flow.yaml": `id: greet
description: builds a greeting and remembers the last name it greeted
inputs:
  name: { type: string, default: world }
nodes:
  - id: previous
    type: state.get
    with: { scope: flow, key: last-name, default: nobody }
  - id: remember
    type: state.set
    needs: [previous]
    with: { scope: flow, key: last-name, value: "\${{ inputs.name }}" }
  - id: greeting
    type: transform
    with: { value: "hello, \${{ inputs.name }}" }
  - id: report
    type: log
    needs: [greeting, previous]
    with: { message: "\${{ nodes.greeting.output }} (last time: \${{ nodes.previous.output }})" }
outputs:
  greeting: "\${{ nodes.greeting.output }}"
`,
  "counter.flow.yaml": `id: counter
description: counts its runs
schedule: "*/30 * * * *"
inputs:
  by: { type: number, default: 1 }
nodes:
  - id: bump
    type: state.increment
    with: { scope: flow, key: count, by: "\${{ inputs.by }}" }
  - id: report
    type: log
    needs: [bump]
    with: { message: "count is now \${{ nodes.bump.output }}" }
outputs:
  count: "\${{ nodes.bump.output }}"
`,
  "slow.flow.yaml": `id: slow
description: waits a little between its steps (for watching a run live)
inputs:
  wait: { type: string, default: 400ms }
nodes:
  - id: start
    type: log
    with: { message: "starting" }
  - id: wait
    type: delay
    needs: [start]
    with: { for: "\${{ inputs.wait }}" }
  - id: visits
    type: state.increment
    needs: [wait]
    with: { scope: node, key: visits }
  - id: done
    type: log
    needs: [visits]
    with: { message: "done after \${{ nodes.visits.output }} visits" }
`,
  "flaky.flow.yaml": `id: flaky
description: always fails, after retrying
nodes:
  - id: fetch
    type: transform
    with: { value: { url: "https://example.invalid/data" } }
  - id: parse
    type: fail
    needs: [fetch]
    with: { message: "upstream answered 503 Service Unavailable" }
    retry: { attempts: 3, delay: 10ms }
`,
};

/**
 * Flows for the graph's pictures and tests (not in the seed: other tests list the flows):
 * `nightly` has `when:` nodes with and without needs, an `if:`, a `forEach` and a sub-flow.
 */
export const GRAPH_FLOWS: Record<string, string> = {
  "nightly.flow.yaml": `id: nightly
description: imports the day's orders, notifies each customer, tidies up
nodes:
  - id: lock
    type: state.set
    with: { key: lock, value: "\${{ run.id }}" }
  - id: orders
    type: transform
    needs: [lock]
    with: { value: [{ name: Ada }, { name: Grace }] }
  - id: notify
    type: flow
    needs: [orders]
    forEach: "\${{ nodes.orders.output }}"
    with: { flow: ./notify.flow.yaml, input: { who: "\${{ item.name }}" } }
  - id: big-day
    type: log
    needs: [orders]
    if: "\${{ length(nodes.orders.output) > 100 }}"
    with: { message: "a big day" }
  - id: report
    type: log
    needs: [notify, big-day]
    with: { message: "done" }
  - id: unlock
    type: state.delete
    needs: [report]
    when: always
    with: { key: lock }
  - id: alert
    type: log
    when: on_failure
    with: { level: error, message: "\${{ run.failed[0].node }} failed" }
`,
  "notify.flow.yaml": `id: notify
inputs:
  who: { type: string }
nodes:
  - { id: say, type: log, with: { message: "hello \${{ inputs.who }}" } }
`,
};

/** The second version of counter.flow.yaml: a node more. */
export const COUNTER_V2 = `id: counter
description: counts its runs and keeps the time of the last one
schedule: "*/30 * * * *"
inputs:
  by: { type: number, default: 1 }
nodes:
  - id: bump
    type: state.increment
    with: { scope: flow, key: count, by: "\${{ inputs.by }}" }
  - id: stamp
    type: state.set
    needs: [bump]
    with: { scope: flow, key: last-count, value: { count: "\${{ nodes.bump.output }}", by: "\${{ inputs.by }}" } }
  - id: report
    type: log
    needs: [bump]
    with: { message: "count is now \${{ nodes.bump.output }}" }
outputs:
  count: "\${{ nodes.bump.output }}"
`;

/** A running server over a temporary home. */
const WAIT_FOR_FILE = fileURLToPath(
  new URL("../fixtures/nodes/wait_for_file.ts", import.meta.url),
);

/** Flow `each`: 4 items, each waiting for `release-<index>` in `dir`; then a `when: always` node. */
export function eachFlow(dir: string): string {
  return `id: each
inputs:
  dir: { type: string }
nodes:
  - { id: list, type: transform, with: { value: [ada, bob, cy, dee] } }
  - id: notify
    type: ${WAIT_FOR_FILE}
    needs: [list]
    forEach: "\${{ nodes.list.output }}"
    continueOnError: true
    permissions: { read: [${JSON.stringify(dir)}] }
    with: { path: "\${{ inputs.dir }}/release-\${{ index }}" }
  - { id: cleanup, type: log, needs: [notify], when: always, with: { message: done } }
`;
}

/** Ends item `k` of {@linkcode eachFlow} ("go" or "fail"), written whole before the item can see it. */
export async function releaseItem(dir: string, k: number, text: "go" | "fail"): Promise<void> {
  const tmp = join(dir, `tmp-${k}`);
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, join(dir, `release-${k}`));
}

export interface Inspector {
  /** The temporary directory (config, flows, home). */
  dir: string;
  /** The FLOWSTATE_HOME inside it. */
  home: string;
  /** The runtime the server serves. */
  runtime: Runtime;
  /** The server. */
  server: FlowstateServer;
  /** Its base URL, `http://127.0.0.1:PORT/`. */
  url: string;
  /** Run the CLI in the directory (same home, same config). */
  cli(...args: string[]): Promise<Result>;
  /** A CLI command in the directory, to spawn. */
  command(args: string[]): Deno.Command;
  /** Stop the server, close the runtime, remove the directory. */
  close(): Promise<void>;
}

/** Options of {@linkcode startInspector}. */
export interface InspectorOptions {
  /** A token the server requires. */
  token?: string;
  /** Run the flows and write the example state first (default true). */
  seed?: boolean;
  /** With the seed, the values and key parts holding HTML (default true; not in screenshots). */
  hostile?: boolean;
  /** The store keeps a change feed (default false). */
  feed?: boolean;
  /** The server's own queue worker's options (default: a worker with the defaults). */
  worker?: ServeOptions["worker"];
  /** YAML added at the end of the config (`runs:\n  onFailure: …`). */
  config?: string;
  /** More flow files under `flows/`, by file name. */
  flows?: Record<string, string>;
  /** The browser's time zone (an IANA name; default the machine's), for {@linkcode withPage}. */
  timezoneId?: string;
  /** The page's width in CSS pixels (default 1280), for {@linkcode withPage}. */
  width?: number;
}

/** The id of the newest recorded run of `flowId`. */
export async function lastRun(inspector: Inspector, flowId: string): Promise<string> {
  const records = await inspector.runtime.records();
  return (await records.listRunSummaries({ flowId, limit: 1 })).runs[0].id;
}

/** Start a server over a fresh temporary home with flows (seeded with runs and state by default). */
export async function startInspector(options: InspectorOptions = {}): Promise<Inspector> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-inspector-" });
  const home = join(dir, "home");
  await Deno.mkdir(join(dir, "flows"));
  await Deno.writeTextFile(
    join(dir, "flowstate.yaml"),
    (options.feed ? CONFIG_WITH_FEED : CONFIG) + (options.config ?? ""),
  );
  for (const [name, text] of Object.entries({ ...FLOWS, ...options.flows })) {
    await Deno.writeTextFile(join(dir, "flows", name), text);
  }
  const runtime = await openRuntime({ config: "flowstate.yaml", cwd: dir, home });
  let server: FlowstateServer | undefined;
  try {
    if (options.seed ?? true) await seed(runtime, dir, options.hostile ?? true);
    server = await serve(runtime, {
      port: 0,
      ...(options.token ? { token: options.token } : {}),
      ...(options.worker === undefined ? {} : { worker: options.worker }),
    });
    if (options.seed ?? true) {
      // A job run through the API, so the jobs page has a last run.
      const response = await fetch(new URL("/api/jobs/gc/runs?wait=true", server.url), {
        method: "POST",
        headers: {
          "content-type": "application/json",
          // A non-browser client: Bearer (any value when the server has no token).
          authorization: `Bearer ${options.token ?? "seed"}`,
        },
        body: "{}",
      });
      if (!response.ok) throw new Error(`gc job: HTTP ${response.status} ${await response.text()}`);
    }
  } catch (err) {
    await runtime.close();
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
  const running = server;
  return {
    dir,
    home,
    runtime,
    server: running,
    url: running.url,
    cli: (...args) => runCli(dir, args, { home }),
    command: (args) => cliCommand(dir, args, { home }),
    async close() {
      await running.shutdown();
      await runtime.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Runs and state for the pages to show. */
async function seed(runtime: Runtime, dir: string, hostile: boolean): Promise<void> {
  const flow = (name: string) => join(dir, "flows", `${name}.flow.yaml`);
  for (const name of ["Ada", "Grace", "Edsger"]) {
    await runtime.runFlow(flow("greet"), { input: { name } });
  }
  for (let i = 0; i < 3; i++) await runtime.runFlow(flow("counter"), { input: { by: i + 1 } });
  await Deno.writeTextFile(flow("counter"), COUNTER_V2);
  for (let i = 0; i < 4; i++) await runtime.runFlow(flow("counter"), { input: { by: 2 } });
  await runtime.runFlow(flow("slow"), { input: { wait: "20ms" } });
  await runtime.runFlow(flow("flaky"));
  const store = await runtime.store("default");
  await store.set(["global", "settings"], {
    region: "eu-west-1",
    retries: 3,
    features: { darkMode: true, beta: ["inspector", "webhooks"] },
    owners: [{ name: "Ada", email: "ada@example.com" }],
  });
  await store.set(["global", "motd"], "Deploys are frozen on Fridays.");
  await store.set(["global", "session", "abc123"], { user: "ada" }, { expireIn: 3_600_000 });
  if (hostile) {
    await store.set(["global", "xss"], XSS_VALUE);
    await store.set(["global", "<img src=x onerror=alert(3)>"], { note: XSS_VALUE });
  }
  for (let i = 0; i < 30; i++) {
    await store.set(["global", "users", `user-${String(i).padStart(3, "0")}`], {
      id: i,
      name: `User ${i}`,
      visits: (i * 7) % 13,
    });
  }
}

/**
 * Launch headless chromium (the path in FLOWSTATE_TEST_CHROMIUM).
 *
 * playwright-core is imported here, not at the top: when loaded it asks
 * whether it runs under WSL by probing `/proc/sys/fs/binfmt_misc/WSLInterop`,
 * which Deno answers only under --allow-all (NotCapable otherwise, even with
 * --allow-read). With `__IS_WSL_TEST__` set it skips that probe at load
 * (its bundled `is-wsl` becomes a function instead of a boolean, read only
 * by the code that opens URLs in a desktop app, which launching a browser
 * never calls), so the test task's permissions (no -A) suffice.
 */
export async function launchChromium(): Promise<Browser> {
  if (CHROMIUM === undefined) {
    throw new Error("Set FLOWSTATE_TEST_CHROMIUM to a chromium binary (apt-get install chromium)");
  }
  Deno.env.set("__IS_WSL_TEST__", "1");
  const { chromium } = await import("playwright-core");
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox"],
  });
}

/** What a page did that it must not: dialogs (dismissed), uncaught errors, console errors (CSP reports). */
export interface Watch {
  /** The dialogs that opened. */
  dialogs: string[];
  /** Page errors and console errors. */
  errors: string[];
}

/**
 * Run `fn` with a page (1280×900, 20 s timeouts) of chromium on a fresh
 * inspector (see {@linkcode startInspector} for `options`), then close both.
 * `watch` collects what went wrong in every tab of the page's context; a
 * dialog fails the test, the errors are for `fn` to judge (a 404 answer logs
 * a failed resource).
 */
export async function withPage(
  options: InspectorOptions,
  fn: (page: Page, inspector: Inspector, watch: Watch) => Promise<void>,
): Promise<void> {
  const inspector = await startInspector(options);
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const context = await browser.newContext({
      viewport: { width: options.width ?? 1280, height: 900 },
      ...(options.timezoneId ? { timezoneId: options.timezoneId } : {}),
    });
    context.setDefaultTimeout(20_000);
    // On the context: every tab of the test is watched.
    const watch: Watch = { dialogs: [], errors: [] };
    context.on("dialog", (dialog) => {
      watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      dialog.dismiss().catch(() => {});
    });
    context.on("weberror", (err) => watch.errors.push(`pageerror: ${err.error().message}`));
    context.on("console", (msg) => {
      if (msg.type() === "error") watch.errors.push(`console: ${msg.text()}`);
    });
    await fn(await context.newPage(), inspector, watch);
    if (watch.dialogs.length > 0) {
      throw new Error(`No dialog may open; these did: ${watch.dialogs.join("; ")}`);
    }
  } finally {
    await browser?.close();
    await inspector.close();
  }
}
