/**
 * The module graph keeps its shape: no import cycles, and imports point down
 * the layers.
 *
 * The layers, bottom up (an import may point to its own layer or one below):
 *
 * 0. **Ground vocabulary**: errors with codes (`src/errors.ts`), the clock and
 *    timers, durations and rates, cron expressions, log levels, the one module loader,
 *    the YAML source locator (`src/yaml_source.ts`), the archive file format
 *    (`src/archive_format.ts`: gzip'd NDJSON and its checksum, for the archive
 *    and backup jobs and the CLI), and private helpers (`src/_*.ts`). They
 *    import nothing of ours but each other (and `deno.json`, for the version).
 * 1. **The store**: the Store contract, the driver contract, `CoreStore` with
 *    its fallbacks, keys, values, queries, leases (`src/store/`).
 * 2. **On the store**: the plugin loader and `openStore` (`src/plugin.ts`), the
 *    built-in plugins (`plugins/`), the state views (`src/state/`), the
 *    wrappers (`src/wrappers/`), and the conformance suite (`src/testing/`).
 * 3. **Flows**: parsing, templates, preparing and the storage-free executor
 *    (`src/flow/`). A flow knows no store but through the state views.
 * 4. **Records**: runs, versions, metrics, run ids, pruning, the one run
 *    recorder (`src/records/`).
 * 5. **The runtime**: config, `openRuntime`, `runFlow` with its recording,
 *    the config's flow files, enqueueing (`src/queue/enqueue.ts`).
 * 6. **Jobs, the scheduler, the queue's workers and the server**: the job
 *    contract and runner (`src/jobs/`), the built-in jobs (`jobs/`), the
 *    scheduler (`src/scheduler/`), queue workers (`src/queue/`), the HTTP
 *    server (`src/serve/`).
 * 7. **The CLI** (`src/cli/`, `cli.ts`), then the public entry points
 *    (`mod.ts`, `plugin.ts`, `testing.ts`, `flow.ts`, `records.ts`,
 *    `scheduler.ts`, `jobs.ts`, `cache.ts`, `hooks.ts`, `serve.ts`), which only re-export.
 *
 * The exceptions below are named one by one, each with its reason; a new
 * upward import fails this test until it is either removed or listed here.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Layer of a module path (relative to the repository root), by the first matching prefix. */
const LAYERS: [prefix: string, layer: number][] = [
  ["src/errors.ts", 0],
  ["src/clock.ts", 0],
  ["src/duration.ts", 0],
  ["src/rate.ts", 0],
  ["src/log.ts", 0],
  ["src/loader.ts", 0],
  ["src/_", 0],
  ["src/archive_format.ts", 0],
  ["src/cron.ts", 0],
  ["src/timezone.ts", 0],
  ["src/yaml_source.ts", 0],
  ["deno.json", 0],
  ["src/store/", 1],
  ["src/plugin.ts", 2],
  ["src/plugin_define.ts", 2],
  ["plugins/", 2],
  ["src/state/", 2],
  ["src/wrappers/", 2],
  ["src/testing/", 2],
  ["src/flow/", 3],
  ["src/records/", 4],
  ["src/config", 5],
  ["src/runtime.ts", 5],
  ["src/runtime_events.ts", 5],
  ["src/run_flow.ts", 5],
  ["src/on_failure.ts", 5],
  ["src/resume.ts", 5],
  ["src/flow_files.ts", 5],
  ["src/flow_cache.ts", 5],
  ["src/flow_disk_cache.ts", 5],
  ["src/queue/enqueue.ts", 5],
  ["src/queue/", 6],
  ["src/jobs/", 6],
  ["jobs/", 6],
  ["src/scheduler/", 6],
  ["src/serve/", 6],
  ["src/cli/", 7],
  ["cli.ts", 7],
  ...["mod.ts", "plugin.ts", "testing.ts", "flow.ts", "records.ts", "scheduler.ts", "jobs.ts"]
    .map((entry): [string, number] => [entry, 8]),
  ["cache.ts", 8],
  ["encrypt.ts", 8],
  ["hooks.ts", 8],
  ["serve.ts", 8],
];

/** Upward imports that are allowed, and why. */
const EXCEPTIONS: [from: string, to: string, why: string][] = [
  [
    "src/flow/",
    "src/records/types.ts",
    "the vocabulary of runs (types only): the executor fills in a RunRecord and emits RunEvents, and never stores one",
  ],
  [
    "src/config",
    "src/jobs/builtin.ts",
    "a table of built-in job names (no code), so the config can check job names without the job runner",
  ],
  [
    "src/on_failure.ts",
    "src/jobs/builtin.ts",
    "the same table (no code): runs.onFailure.except's job:<name> entries are checked against it",
  ],
];

function layerOf(path: string): number {
  const found = LAYERS.find(([prefix]) => path.startsWith(prefix));
  if (found === undefined) throw new Error(`no layer for ${path}: add it to LAYERS`);
  return found[1];
}

async function entryPoints(): Promise<string[]> {
  const entries = [
    "mod.ts",
    "plugin.ts",
    "testing.ts",
    "flow.ts",
    "records.ts",
    "scheduler.ts",
    "jobs.ts",
    "cache.ts",
    "encrypt.ts",
    "hooks.ts",
    "serve.ts",
    "cli.ts",
  ];
  for (const dir of ["jobs", "plugins"]) {
    for await (const e of Deno.readDir(`${ROOT}${dir}`)) {
      if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) {
        entries.push(`${dir}/${e.name}`);
      } else if (e.isDirectory && !e.name.startsWith("_") && e.name !== "testdata") {
        try {
          await Deno.stat(`${ROOT}${dir}/${e.name}/mod.ts`);
          entries.push(`${dir}/${e.name}/mod.ts`);
        } catch { /* not a module folder */ }
      }
    }
  }
  return entries;
}

/** `deno info --json <entry>` (a path from the repository's root), parsed. */
async function denoInfo(entry: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `deno info ${entry}: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Our own modules and the modules each imports (code or types), from `deno info --json`. */
async function moduleGraph(): Promise<Map<string, Set<string>>> {
  const prefix = new URL("../", import.meta.url).href;
  const own = (s: string | undefined): s is string => s !== undefined && s.startsWith(prefix);
  const edges = new Map<string, Set<string>>();
  const infos = await Promise.all((await entryPoints()).map(denoInfo));
  for (const graph of infos) {
    for (const m of graph.modules ?? []) {
      if (!own(m.specifier)) continue;
      const from = m.specifier.slice(prefix.length);
      const to = edges.get(from) ?? new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) {
          if (own(s)) to.add(s.slice(prefix.length));
        }
      }
      edges.set(from, to);
    }
  }
  return edges;
}

function cycles(edges: Map<string, Set<string>>): string[] {
  const state = new Map<string, "open" | "done">();
  const found: string[] = [];
  const visit = (n: string, stack: string[]) => {
    state.set(n, "open");
    stack.push(n);
    for (const t of edges.get(n) ?? []) {
      if (state.get(t) === "open") found.push([...stack.slice(stack.indexOf(t)), t].join(" -> "));
      else if (!state.has(t)) visit(t, stack);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of [...edges.keys()].sort()) if (!state.has(n)) visit(n, []);
  return found;
}

const graph = await moduleGraph();

Deno.test("the module graph has no import cycle", () => {
  assert.ok(graph.size > 50, `read ${graph.size} modules`);
  assert.deepEqual(cycles(graph), []);
});

Deno.test("imports point down the layers, or are a named exception", () => {
  const upward: string[] = [];
  for (const [from, tos] of graph) {
    for (const to of tos) {
      if (layerOf(to) <= layerOf(from)) continue;
      if (EXCEPTIONS.some(([f, t]) => from.startsWith(f) && to === t)) continue;
      upward.push(`${from} (layer ${layerOf(from)}) -> ${to} (layer ${layerOf(to)})`);
    }
  }
  assert.deepEqual(upward, []);
});

Deno.test("every export of deno.json is an entry point the graph is read from", async () => {
  const entries = await entryPoints();
  const missing = Object.values(denoJson.exports).map((p) => p.replace(/^\.\//, ""))
    .filter((p) => !entries.includes(p));
  assert.deepEqual(missing, []);
});

Deno.test("cycles() finds a cycle, and the layer check an upward import (the checks can fail)", () => {
  const g = new Map([["a.ts", new Set(["b.ts"])], ["b.ts", new Set(["a.ts"])]]);
  assert.deepEqual(cycles(g), ["a.ts -> b.ts -> a.ts"]);
  assert.ok(layerOf("src/cli/main.ts") > layerOf("src/store/store.ts"));
});

/**
 * The run path: cli.ts, the run command and the default store's plugin (each
 * loaded by a dynamic import), with what they import statically (code, not
 * types): the modules a cold `flowstate run` loads, ours and `node:` ones.
 */
async function runPath(): Promise<{ modules: Set<string>; nodeImports: string[] }> {
  const roots = ["cli.ts", "src/cli/run.ts", "plugins/sqlite/mod.ts"];
  const prefix = new URL("../", import.meta.url).href;
  const infos = await Promise.all(roots.map(denoInfo));
  type Dep = { specifier: string; isDynamic?: boolean; code?: { specifier: string } };
  const deps = new Map<string, Dep[]>();
  for (const graph of infos) {
    for (const m of graph.modules ?? []) deps.set(m.specifier, m.dependencies ?? []);
  }
  const modules = new Set<string>();
  const nodeImports: string[] = [];
  const visit = (specifier: string) => {
    const own = specifier.slice(prefix.length);
    if (modules.has(own)) return;
    modules.add(own);
    for (const d of deps.get(specifier) ?? []) {
      const to = d.code?.specifier;
      if (to === undefined || d.isDynamic) continue; // type-only, or loaded when needed
      if (to.startsWith("node:")) nodeImports.push(`${own} imports ${to}`);
      else if (to.startsWith(prefix)) visit(to);
    }
  };
  for (const root of roots) visit(new URL(root, prefix).href);
  assert.ok(modules.size > 50, `the run path was walked (${modules.size} modules)`);
  return { modules, nodeImports };
}

Deno.test("a cold `flowstate run` loads no Node built-in but node:sqlite (Node compatibility costs every run ~15-30 ms)", async () => {
  // A `node:` module on the run path (node:path, say) starts Deno's Node compatibility on every
  // cold run; node:sqlite does not.
  const { nodeImports } = await runPath();
  assert.deepEqual(nodeImports.filter((i) => !i.endsWith(" imports node:sqlite")), []);
});

Deno.test("a cold `flowstate run` loads the modules of features it does not use only when used", async () => {
  // Each is a dynamic import at its point of use: a run that does not use the feature does not
  // parse it (BENCHMARKS.md, cold start).
  const { modules } = await runPath();
  const lazy = [
    "src/on_failure.ts", // runs.onFailure (runtime.ts)
    "src/flow/mocks.ts", // a run given mocks (run_flow.ts)
    "src/flow/exec_node.ts", // a flow with a `type: exec` node (prepare.ts)
    "src/flow/http_node.ts", // a flow with a `type: http` node (prepare.ts)
    "src/resume.ts", // resuming a run, or previewing a resume (run_flow.ts, runtime.ts)
    "src/records/_signals.ts", // sending, taking or listing signals (records.ts)
    "src/queue/enqueue.ts", // enqueueing a run (runtime.ts)
    "src/records/workers.ts", // the queue workers' registry (records.ts)
    "src/flow/_mask_paths.ts", // a flow with a node with `mask:` (executor.ts)
    "src/flow/_for_each.ts", // a flow with a `forEach` node (executor.ts)
    "src/flow/_when.ts", // a flow with a `when:` other than on_success (executor.ts)
    "src/flow/sub_flows.ts", // starting a sub-run, and the sub-run (run_flow.ts)
    "src/flow/reach.ts", // what validate reports a node can reach (a run reads _env_values.ts)
    "src/flow/sandbox_worker.ts", // a sandboxed node's Worker: loaded there, not by the host
    "src/flow/_sandbox_console.ts", // the same Worker's console
  ];
  assert.deepEqual(lazy.filter((m) => modules.has(m)), []);
});

/**
 * What Deno reads and parses when a cold `flowstate` starts: our modules
 * `cli.ts` reaches by literal specifiers, static imports and literal dynamic
 * `import()` alike (Deno reads those whether the run imports them or not).
 */
async function readAtStart(): Promise<Set<string>> {
  const prefix = new URL("../", import.meta.url).href;
  type Dep = { code?: { specifier: string } };
  const deps = new Map<string, Dep[]>();
  for (const m of (await denoInfo("cli.ts")).modules ?? []) {
    deps.set(m.specifier, m.dependencies ?? []);
  }
  const modules = new Set<string>();
  const visit = (specifier: string) => {
    const own = specifier.slice(prefix.length);
    if (modules.has(own)) return;
    modules.add(own);
    for (const d of deps.get(specifier) ?? []) {
      const to = d.code?.specifier; // types are not read at start
      if (to !== undefined && to.startsWith(prefix)) visit(to);
    }
  };
  visit(new URL("cli.ts", prefix).href);
  return modules;
}

Deno.test("a cold `flowstate` start does not read the modules of the other commands", async () => {
  // main.ts imports program.ts (every command's definition, and through it each command's
  // module) by a computed specifier: with a literal one, each cold run read and parsed ~70 more
  // of our modules (~30 ms CPU; BENCHMARKS.md, cold start). The run path stays readable.
  const modules = await readAtStart();
  assert.ok(modules.has("src/cli/run.ts") && modules.size > 50, `${modules.size} modules`);
  const others = [
    "src/cli/program.ts",
    "src/cli/serve.ts",
    "src/cli/daemon.ts",
    "src/cli/migrate.ts",
    "src/cli/backup.ts",
    "src/cli/init.ts",
    "src/cli/queue.ts",
  ];
  assert.deepEqual(others.filter((m) => modules.has(m)), [], `of ${modules.size} modules`);
});
