import { openRuntime } from "../mod.ts";
import { loadFlow } from "../src/flow/load.ts";
const N = Number(Deno.env.get("N") ?? 1000);
const def = { id: "chain", nodes: Array.from({ length: N }, (_, i) => ({ id: `n${i}`, type: "transform", needs: i ? [`n${i-1}`] : [], with: { value: i } })) };
await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
for (let r = 0; r < Number(Deno.env.get("R") ?? 8); r++) {
  const t = performance.now();
  const run = await rt.runFlow(def);
  const ms = performance.now() - t;
  console.log(`runFlow ${N} nodes: ${(ms * 1000 / N).toFixed(1)} us/node ${run.status}`);
}
