/**
 * Bytes allocated per node of the 10k `state.increment` flow (issue 14), by
 * V8's sampling heap profiler (`node:inspector`), in the steady state: a
 * runtime runs the flow 5 times, then 5 more under the profiler; the same for
 * the store's own increment in a loop. Unlike time, what a run allocates does
 * not depend on the machine's load: a before/after of the same flow shows a
 * change in objects a node even on a busy machine (±1–2 %: the profiler
 * samples every 256 bytes on average).
 *
 * Each tree (a checkout's root; default this one) is imported by path and
 * measured in turn; `TOP=n` also lists the n functions that allocate most.
 *
 * Run: deno run -A --unstable-worker-options bench/alloc_per_node.ts [memory|sqlite] [tree...]
 */
import { Session } from "node:inspector";
import { join } from "node:path";
import { incrementChain } from "./_chain.ts";

const kind = Deno.args[0] === "sqlite" ? "sqlite" : "memory";
const here = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const trees = Deno.args.length > 1 ? Deno.args.slice(1) : [here];
const top = Number(Deno.env.get("TOP") ?? 0);
const RUNS = 5;
const NODES = 10_000;
const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-alloc-" });
console.log(`load average at the start: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);

const session = new Session();
session.connect();
const post = <T>(method: string, params: object = {}) =>
  new Promise<T>((resolve, reject) =>
    session.post(method, params, (err, result) => err ? reject(err) : resolve(result as T))
  );
await post("HeapProfiler.enable");

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** Bytes `fn` allocates a call (of `RUNS` calls after as many unmeasured), in all and by function. */
async function allocated(
  fn: () => Promise<unknown>,
): Promise<{ total: number; by: [string, number][] }> {
  for (let i = 0; i < RUNS; i++) await fn();
  await post("HeapProfiler.startSampling", {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  for (let i = 0; i < RUNS; i++) await fn();
  const { profile } = await post<{ profile: { head: ProfileNode } }>("HeapProfiler.stopSampling");
  const by = new Map<string, number>();
  let total = 0;
  const walk = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const name = `${functionName || "(anonymous)"} ${url.split("/").pop()}:${lineNumber + 1}`;
    by.set(name, (by.get(name) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const child of node.children) walk(child);
  };
  walk(profile.head);
  return {
    total: total / RUNS,
    by: [...by].map(([name, bytes]): [string, number] => [name, bytes / RUNS])
      .sort((a, b) => b[1] - a[1]),
  };
}

const flow = incrementChain(NODES);
console.log(`\n${NODES}-node state.increment flow on a ${kind} store, bytes allocated per node\n`);
console.log("| tree | store loop | rt.runFlow (recorded) | runFlow − loop |");
console.log("| --- | --- | --- | --- |");
for (const [t, root] of trees.entries()) {
  const url = (path: string) => new URL(`file://${root.replace(/\/$/, "")}/${path}`).href;
  const { openRuntime, openStore } = await import(url("mod.ts")) as typeof import("../mod.ts");
  const { increment } = await import(
    url("src/state/scopes.ts")
  ) as typeof import("../src/state/scopes.ts");
  const options = (name: string) =>
    kind === "memory" ? { plugin: "memory" as const } : {
      plugin: "sqlite" as const,
      path: join(dir, `${t}-${name}.db`),
      durability: "relaxed" as const,
    };
  const store = await openStore(options("store"));
  const key = ["flow", "increments", "count"];
  const loop = await allocated(async () => {
    for (let i = 0; i < NODES; i++) await increment(store, key, 1);
  });
  await store.close();
  const rt = await openRuntime({ config: { stores: { main: options("runtime") } }, cwd: dir });
  const run = await allocated(async () => {
    const record = await rt.runFlow(flow);
    if (record.status !== "succeeded") throw new Error(`run ${record.status}`);
  });
  await rt.close();
  const b = (total: number) => `${(total / NODES).toFixed(0)} B`;
  console.log(`| ${root} | ${b(loop.total)} | ${b(run.total)} | ${b(run.total - loop.total)} |`);
  if (top > 0) {
    for (const [name, bytes] of run.by.slice(0, top)) {
      console.log(`|   ${name} | | ${b(bytes)} | |`);
    }
  }
}
session.disconnect();
await Deno.remove(dir, { recursive: true });
