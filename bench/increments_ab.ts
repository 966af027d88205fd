/**
 * Where the 10k `state.increment` flow's time goes, before and after, in one
 * process (issue 14): this checkout and another (`BEFORE=<path>`, default
 * `/work/main`) each run, interleaved (the order alternates per round), on
 * sqlite stores with relaxed durability:
 *
 * - bare node:sqlite: the increment statement of `bench/runpath.ts`;
 * - the store's own increment in a loop (`increment(store, key)`);
 * - the executor alone: the prepared 10k-node flow run by `executeFlow` on
 *   that store, events handed to a no-op listener (no records);
 * - the recorded `rt.runFlow` of the same flow (what `bench/runpath.ts`
 *   measures);
 * - the same `rt.runFlow` with its event chunks serialized but not written
 *   (`Records.appendEvents` replaced by the store's own `serializeValue` of
 *   the chunk in the tree's stored form), and with them not appended at all (a no-op): the run record,
 *   its last batch and everything else as usual. These two are measured in
 *   this process by replacing the method on each tree's `Records` class
 *   for the duration of the call (the bench's own process: nothing else
 *   runs meanwhile).
 *
 * Prints the CPU time (user + system of this process) per node, medians, and
 * the after/before ratio per round. Executor minus loop is the executor and
 * the state views; runFlow minus executor is the recording; runFlow minus
 * "events not appended" is what appending the event chunks costs (their
 * JSON, the store's checks, the SQLite writes and the checkpoints they
 * cause), and "events serialized only" minus "not appended" its JSON part.
 *
 * Run: BEFORE=/work/main deno run -A --unstable-worker-options bench/increments_ab.ts [rounds=11]
 * (`ONLY="store loop;runFlow"`: only those pieces, and bare node:sqlite)
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { abTrees, incrementChain, interleaved } from "./_chain.ts";

const rounds = Number(Deno.args[0] ?? 11);
const NODES = 10_000;
const { before, after, dir } = await abTrees("flowstate-bench-increments-");

const flow = incrementChain(NODES);

/** What one tree offers this bench (its own modules, imported by path). */
interface Tree {
  openStore: typeof import("../mod.ts").openStore;
  openRuntime: typeof import("../mod.ts").openRuntime;
  loadFlowIn: typeof import("../src/flow/load.ts").loadFlowIn;
  executeFlow: typeof import("../src/flow/executor.ts").executeFlow;
  increment: typeof import("../src/state/scopes.ts").increment;
  systemClock: typeof import("../src/clock.ts").systemClock;
  Records: typeof import("../src/records/records.ts").Records;
  serializeValue: typeof import("../src/store/values.ts").serializeValue;
  /** How the tree stores an event chunk (trees before the compact chunks: as it is). */
  encodeChunk: (first: number, events: unknown[], what: string) => unknown;
}

async function load(root: string): Promise<Tree> {
  const url = (path: string) => new URL(`file://${root}/${path}`).href;
  return {
    ...await import(url("mod.ts")),
    ...await import(url("src/flow/load.ts")),
    ...await import(url("src/flow/executor.ts")),
    ...await import(url("src/state/scopes.ts")),
    ...await import(url("src/clock.ts")),
    ...await import(url("src/records/records.ts")),
    ...await import(url("src/store/values.ts")),
    encodeChunk: await import(url("src/records/_event_chunks.ts")).then(
      (m) => m.encodeChunk,
      () => (first: number, events: unknown[]) => ({ first, events }),
    ),
  };
}

const runs: Record<string, () => unknown> = {};
const closing: (() => Promise<void>)[] = [];

const db = new DatabaseSync(join(dir, "bare.db"));
db.exec("PRAGMA journal_mode = WAL");
db.exec("PRAGMA synchronous = NORMAL");
db.exec(
  "CREATE TABLE kv (key BLOB PRIMARY KEY, value TEXT NOT NULL, version TEXT NOT NULL) WITHOUT ROWID",
);
const add = db.prepare(
  "INSERT INTO kv (key, value, version) VALUES (?, 1, ?) ON CONFLICT (key) DO UPDATE " +
    "SET value = value + 1, version = excluded.version RETURNING value",
);
const bareKey = new TextEncoder().encode("flow\0increments\0count");
let seq = 0;
runs["bare"] = () => {
  for (let i = 0; i < NODES; i++) add.get(bareKey, `v${seq++}`);
};

for (const [name, root] of [["before", before], ["after", after]] as const) {
  const tree = await load(root);
  const store = await tree.openStore({
    plugin: "sqlite",
    path: join(dir, `${name}-store.db`),
    durability: "relaxed",
  });
  const rt = await tree.openRuntime({
    config: {
      stores: {
        main: { plugin: "sqlite", path: join(dir, `${name}-runtime.db`), durability: "relaxed" },
      },
    },
    cwd: dir,
  });
  closing.push(() => store.close(), () => rt.close());
  const { prepared } = await tree.loadFlowIn(flow, { cwd: dir });
  const resolver = { forScope: () => Promise.resolve(store), byName: () => Promise.resolve(store) };
  const key = ["flow", "increments", "count"];
  runs[`${name} store loop`] = async () => {
    for (let i = 0; i < NODES; i++) await tree.increment(store, key, 1);
  };
  runs[`${name} executor alone`] = () =>
    tree.executeFlow(prepared, {
      runId: "0mjuw3ms0abcdefghijk",
      flowVersion: "bench",
      inputs: {},
      resolver,
      clock: tree.systemClock,
      onEvent: () => {},
    });
  const runFlow = async () => {
    const run = await rt.runFlow(flow);
    if (run.status !== "succeeded") throw new Error(`run ${run.status}: ${run.error?.message}`);
  };
  runs[`${name} runFlow`] = runFlow;
  const proto = tree.Records.prototype;
  const appendEvents = proto.appendEvents;
  /** `runFlow` with `Records.appendEvents` replaced by `instead` for the call. */
  const without = (instead: typeof appendEvents) => async () => {
    proto.appendEvents = instead;
    try {
      await runFlow();
    } finally {
      proto.appendEvents = appendEvents;
    }
  };
  runs[`${name} runFlow, events serialized only`] = without((_runId, events) => {
    tree.serializeValue(tree.encodeChunk(0, events, "bench"), "bench");
    return Promise.resolve();
  });
  runs[`${name} runFlow, events not appended`] = without(() => Promise.resolve());
}

for (const run of Object.values(runs)) await run(); // warm-up (and the flow caches)
// ONLY="store loop;runFlow" measures those pieces alone (more rounds in the same time).
const only = Deno.env.get("ONLY")?.split(";").map((piece) => piece.trim());
const cpu = await interleaved(
  Object.fromEntries(
    Object.entries(runs).filter(([name]) =>
      only === undefined || name === "bare" || only.includes(name.replace(/^(before|after) /, ""))
    ),
  ),
  rounds,
);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const perNode = (ms: number) => `${(ms * 1000 / NODES).toFixed(2)} µs`;
console.log(`\n${NODES} increments, sqlite, relaxed; CPU per node, ${rounds} interleaved rounds\n`);
console.log(`bare node:sqlite: ${perNode(median(cpu["bare"]))}\n`);
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.round(q * (xs.length - 1))];
console.log("| piece | before | after | after/before (median, p25–p75, range) | bare/after |");
console.log("| --- | --- | --- | --- | --- |");
for (
  const piece of [
    "store loop",
    "executor alone",
    "runFlow, events not appended",
    "runFlow, events serialized only",
    "runFlow",
  ].filter((piece) => only === undefined || only.includes(piece))
) {
  const b = cpu[`before ${piece}`];
  const a = cpu[`after ${piece}`];
  const ratios = a.map((x, i) => x / b[i]);
  const bare = cpu["bare"].map((x, i) => x / a[i]);
  console.log(
    `| ${piece} | ${perNode(median(b))} | ${perNode(median(a))} | ${median(ratios).toFixed(2)} (${
      quantile(ratios, 0.25).toFixed(2)
    }–${quantile(ratios, 0.75).toFixed(2)}, ${Math.min(...ratios).toFixed(2)}–${
      Math.max(...ratios).toFixed(2)
    }) | ${median(bare).toFixed(2)} |`,
  );
}
if (cpu["before store loop"] && cpu["before runFlow"]) {
  // Issue 14's target: the store's own increment in a loop / the recorded flow, per round.
  for (const tree of ["before", "after"]) {
    const ratios = cpu[`${tree} store loop`].map((x, i) => x / cpu[`${tree} runFlow`][i]);
    console.log(
      `${tree}: store loop/runFlow ${median(ratios).toFixed(2)} (p25–p75 ${
        quantile(ratios, 0.25).toFixed(2)
      }–${quantile(ratios, 0.75).toFixed(2)})`,
    );
  }
}
for (const close of closing) await close();
db.close();
console.log(`\nload average at the end: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
await Deno.remove(dir, { recursive: true });
