/**
 * Live heap per postgres store open + close (the "~400 B creep" of an earlier session).
 *
 *   deno run -A --v8-flags=--expose-gc bench/pg_open_close_heap.ts <postgres-url> [rounds] [per]
 *
 * Opens and closes a store `per` times, `rounds` times; after each round a
 * forced GC, then the live heap. Prints bytes kept per open, from the second
 * round on (the first warms the module, the client and the JIT).
 */
import { openStore } from "../mod.ts";

const url = Deno.args[0];
const rounds = Number(Deno.args[1] ?? 6);
const per = Number(Deno.args[2] ?? 200);
const gc = (globalThis as { gc?: () => void }).gc;
if (url === undefined || gc === undefined) {
  throw new Error("usage: deno run -A --v8-flags=--expose-gc bench/pg_open_close_heap.ts <url>");
}
const spec = { plugin: "postgres", url, schema: "flowstate_heap_bench", table: "t" };
async function settle(): Promise<number> {
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 50));
    gc!();
  }
  return Deno.memoryUsage().heapUsed;
}
const heaps: number[] = [];
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < per; i++) {
    const store = await openStore(spec as { plugin: string });
    await store.get(["k"]);
    await store.close();
  }
  heaps.push(await settle());
  console.log(`round ${r + 1}: heap ${heaps.at(-1)} B`);
}
const d = (heaps.at(-1)! - heaps[0]) / ((rounds - 1) * per);
console.log(`kept per open+close (rounds 2..${rounds}): ${d.toFixed(0)} B`);
