/**
 * Bytes a run's events take in the records (issue 14): the 10k `state.increment`
 * chain run once by each tree given (this checkout by default), on a relaxed
 * sqlite runtime; prints the run's event chunks (their count and the length
 * of their JSON, as the store keeps it) and the run record, per node.
 *
 * Run: deno run -A --unstable-worker-options bench/event_bytes.ts [tree…]
 * (a tree is a checkout's root, e.g. `/tmp/before`: run with this checkout's
 * `--config deno.json` so that its imports resolve)
 */
import { join } from "node:path";
import { incrementChain } from "./_chain.ts";

const NODES = 10_000;
const flow = incrementChain(NODES);
const here = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

console.log("| tree | chunks | events | chunk JSON | per node | run record |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const root of Deno.args.length > 0 ? Deno.args : [here]) {
  const { openRuntime }: typeof import("../mod.ts") = await import(
    new URL(`file://${root.replace(/\/$/, "")}/mod.ts`).href
  );
  const dir = await Deno.makeTempDir({ prefix: "flowstate-bench-event-bytes-" });
  try {
    await using rt = await openRuntime({
      config: {
        stores: {
          main: { plugin: "sqlite", path: join(dir, "main.db"), durability: "relaxed" },
        },
      },
      cwd: dir,
    });
    const run = await rt.runFlow(flow);
    const store = await rt.store(rt.config.records);
    let bytes = 0;
    let chunks = 0;
    for await (const e of store.list({ prefix: ["flowstate", "events", run.id] })) {
      bytes += JSON.stringify(e.value).length;
      chunks++;
    }
    const record = await store.get(["flowstate", "runs", run.id]);
    const events = (await (await rt.records()).getEvents(run.id)).length;
    console.log(
      `| ${root} | ${chunks} | ${events} | ${bytes} B | ${(bytes / NODES).toFixed(1)} B | ${
        JSON.stringify(record?.value).length
      } B |`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
