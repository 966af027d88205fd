/**
 * Type-level tests: each `@ts-expect-error` line must fail to compile (the
 * type checker that `deno test` runs first reports an unused one), and each
 * line without it must compile. The bodies run too, against memory stores.
 */
import assert from "node:assert/strict";
import {
  type BuiltinNodeType,
  type BuiltinPluginName,
  defineNode,
  type FlowDefinition,
  type JsonValue,
  type NodeType,
  openRuntime,
  openStore,
  runJob,
  type StateView,
  type Store,
  type StoreSpec,
} from "../mod.ts";
import {
  definePlugin,
  type Key as DriverKey,
  type KeyPart as DriverKeyPart,
  type KeyRange,
  type Plugin,
} from "../plugin.ts";
import { MemoryDriver } from "../plugins/memory/mod.ts";
import { z } from "zod";
import { type BuiltinJobName, builtinJobNames, type JobOptionsFor } from "../jobs.ts";
import { builtinNodes } from "../src/flow/nodes.ts";
import { builtinPluginNames } from "../src/plugin.ts";

/** `true` when `A` and `B` are the same type. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true
  : false;
const same = <A, B>(_proof: Same<A, B>) => {};

Deno.test("runJob() types a built-in job's options by its name, and leaves other names open", async () => {
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const run = await runJob(rt, "retention", { options: { maxAge: "1d", maxRuns: 10 } });
  assert.equal(run.status, "succeeded");
  // Compile-time only: these would run (and be refused at run time).
  const refused = () => {
    // @ts-expect-error: retention has no option "maxAgee"
    runJob(rt, "retention", { options: { maxAgee: "1d" } });
    // @ts-expect-error: maxRuns is a number
    runJob(rt, "retention", { options: { maxRuns: "10" } });
    // @ts-expect-error: migrate's action is one of status, pending, up, down
    runJob(rt, "migrate", { options: { action: "sideways" } });
    // @ts-expect-error: "retentoin" is not a built-in job, and a module name must be a path
    const _n: BuiltinJobName = "retentoin";
  };
  assert.equal(typeof refused, "function");
  // Escape hatch: a job module named by a string takes any options.
  const custom: JobOptionsFor<"./jobs/report.ts"> = { anything: 1 };
  const name: string = "gc";
  const dynamic: JobOptionsFor<typeof name> = { whatever: true };
  assert.ok(custom && dynamic);
  same<JobOptionsFor<"gc">["stores"], string[] | undefined>(true);
});

Deno.test("BuiltinJobName, BuiltinPluginName and BuiltinNodeType name exactly the built-ins", () => {
  const jobs: Record<BuiltinJobName, true> = {
    retention: true,
    gc: true,
    archive: true,
    backup: true,
    restore: true,
    migrate: true,
    "migrate-store": true,
    rekey: true,
    "build-indexes": true,
  };
  assert.deepEqual(Object.keys(jobs).sort(), builtinJobNames().sort());
  const plugins: Record<BuiltinPluginName, true> = {
    memory: true,
    jsonfile: true,
    sqlite: true,
    postgres: true,
  };
  assert.deepEqual(Object.keys(plugins).sort(), builtinPluginNames().sort());
  const nodes: Record<BuiltinNodeType, true> = {
    "state.get": true,
    "state.set": true,
    "state.delete": true,
    "state.increment": true,
    "state.list": true,
    "state.query": true,
    "state.search": true,
    log: true,
    transform: true,
    delay: true,
    fail: true,
    flow: true,
    queue: true,
    http: true,
    exec: true,
    wait: true,
  };
  assert.deepEqual(Object.keys(nodes).sort(), [...builtinNodes.keys()].sort());
});

Deno.test("openStore() and openRuntime() check a built-in plugin's options at compile time", async () => {
  await using memory = await openStore({ plugin: "memory" });
  assert.equal(await memory.get(["x"]), null);
  const refused = async () => {
    // @ts-expect-error: memory has no option "snapshott"
    await openStore({ plugin: "memory", snapshott: "a.json" });
    // @ts-expect-error: durability is "full" or "relaxed"
    await openStore({ plugin: "sqlite", durability: "fast" });
    // @ts-expect-error: postgres needs a url
    await openStore({ plugin: "postgres" });
    // @ts-expect-error: jsonfile's lockTimeout is a number of ms
    await openStore({ plugin: "jsonfile", lockTimeout: "5s" });
    await openRuntime({
      // @ts-expect-error: sqlite has no option "pth"
      config: { stores: { main: { plugin: "sqlite", pth: "state.db" } } },
    });
  };
  assert.equal(typeof refused, "function");
  // Escape hatches: a module specifier, any string, a loose spec take any options.
  const typecheckOnly = async () => {
    await openStore({ plugin: "npm:@example/flowstate-redis", url: "redis://127.0.0.1" });
    const loose: StoreSpec = { plugin: "./my-plugin.ts", anything: [1, 2] };
    await openStore(loose);
    await openRuntime({
      config: {
        stores: { main: { plugin: "sqlite", path: "s.db" }, x: { plugin: "./p.ts", a: 1 } },
      },
    });
  };
  assert.equal(typeof typecheckOnly, "function");
  // The name offers the built-ins and takes any string.
  const plugin: StoreSpec["plugin"] = "sqlite";
  assert.equal(plugin, "sqlite");
});

Deno.test("openStore() and openRuntime() check a typed plugin object's options at compile time", async () => {
  interface FileOptions {
    path: string;
    pretty: boolean;
  }
  const file: Plugin<FileOptions> = definePlugin({
    name: "file",
    optionsSchema: z.strictObject({ path: z.string(), pretty: z.boolean().default(false) }),
    open: () => new MemoryDriver(),
  });
  // Its options, core options, and an option its schema defaults left out.
  await using store = await openStore({ plugin: file, path: "a.json", changes: { keep: "1d" } });
  assert.equal(await store.get(["x"]), null);
  const refused = async () => {
    // @ts-expect-error: the plugin has no option "pathh"
    await openStore({ plugin: file, pathh: "a.json" });
    // @ts-expect-error: pretty is a boolean
    await openStore({ plugin: file, path: "a.json", pretty: "yes" });
    await openRuntime({
      // @ts-expect-error: the plugin has no option "pth"
      config: { stores: { main: { plugin: file, pth: "a.json" } } },
    });
  };
  assert.equal(typeof refused, "function");
  // A plugin whose options are not known (loaded, or typed loosely) takes any options.
  const loose: Plugin = file as Plugin;
  const typecheckOnly = async () => {
    await openStore({ plugin: loose, anything: 1 });
    const open = file as unknown as Plugin<Record<string, unknown>>;
    await openStore({ plugin: open, anything: 1 });
  };
  assert.equal(typeof typecheckOnly, "function");
});

Deno.test("the driver contract's key types come from @flowstate/core/plugin", () => {
  same<DriverKey, readonly string[]>(true);
  same<DriverKeyPart, string>(true);
  const range: KeyRange = { prefix: ["a"] satisfies DriverKey };
  assert.deepEqual(range.prefix, ["a"]);
});

Deno.test("a node's type offers the built-in names and takes any string", () => {
  const flow: FlowDefinition = {
    id: "typed",
    nodes: [
      { id: "a", type: "state.increment", with: { key: "n" } },
      { id: "b", type: "./nodes/custom.ts" },
    ],
  };
  same<FlowDefinition["nodes"][number]["type"] extends string ? true : false, true>(true);
  assert.equal(flow.nodes.length, 2);
});

Deno.test("StateView.get() and Store.get() both use null for absent", () => {
  const view = {} as StateView;
  const store = {} as Store;
  type ViewGet = Awaited<ReturnType<typeof view.get<number>>>;
  type StoreGet = Awaited<ReturnType<typeof store.get<number>>>;
  same<ViewGet, number | null>(true);
  same<Extract<StoreGet, null | undefined>, null>(true);
  same<Extract<ViewGet, null | undefined>, null>(true);
});

Deno.test("defineNode() checks run's output type is JSON: a Date, a Map, a function or a bigint is a type error", async () => {
  const n = z.object({ n: z.number() });
  interface Point {
    x: number;
    y: number;
    label?: string;
  }
  // JSON outputs compile, interfaces of JSON fields and void too, and the output type is kept.
  const doubled = defineNode({ optionsSchema: n, run: (_ctx, { n }) => n * 2 });
  same<ReturnType<typeof doubled.run>, number | Promise<number>>(true);
  const point = defineNode({
    optionsSchema: n,
    run: (_ctx, { n }): Promise<Point> => Promise.resolve({ x: n, y: n }),
  });
  defineNode({ optionsSchema: n, run: () => {} });
  defineNode({ optionsSchema: n, run: () => ({ list: [1, "a", null], nested: { ok: true } }) });
  defineNode({ optionsSchema: n, run: () => null as JsonValue });
  defineNode({ optionsSchema: n, run: (_ctx, { n }) => JSON.parse(`${n}`) }); // any: the run checks
  const upper: NodeType<{ n: number }> = defineNode({ optionsSchema: n, run: () => "x" });
  // Compile-time only.
  const refused = () => {
    // @ts-expect-error: a Date is not JSON
    defineNode({ optionsSchema: n, run: (_ctx, { n }) => ({ at: new Date(n) }) });
    // @ts-expect-error: a list of Dates neither
    defineNode({ optionsSchema: n, run: (_ctx, { n }) => Promise.resolve([new Date(n)]) });
    // @ts-expect-error: a Map is not JSON
    defineNode({ optionsSchema: n, run: () => Promise.resolve(new Map([["a", 1]])) });
    // @ts-expect-error: a function is not JSON
    defineNode({ optionsSchema: n, run: () => ({ f: () => 1 }) });
    // @ts-expect-error: a bigint is not JSON
    defineNode({ optionsSchema: n, run: () => 1n });
  };
  assert.equal(typeof refused, "function");
  assert.deepEqual(await point.run({} as never, { n: 2 }), { x: 2, y: 2 });
  assert.equal(upper.kind, "flowstate.node");
});
