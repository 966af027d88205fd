/**
 * One tree's `@flowstate/redis` get of a key that exists and of one that does not, in µs per get
 * (medians of 5 blocks of 3,000): prints `hit miss`. Run from each tree, alternating:
 *
 *   for r in 1 2 3 4 5 6 7 8; do for t in <before> <after>; do
 *     (cd $t && deno run -A --config deno.json packages/redis/bench/get_miss_ab.ts); done; done
 *
 * (copy this file into the other tree first). Needs Redis at 127.0.0.1:6379; keys under
 * `rab:<pid>:`, deleted at the end.
 *
 * @module
 */
import { openStore } from "@flowstate/core";
import redis from "@flowstate/redis";
const N = 3000;
const store = await openStore({
  plugin: redis,
  url: "redis://127.0.0.1:6379",
  prefix: `rab:${Deno.pid}:`,
});
await store.set(["hit"], { v: 1 });
for (let i = 0; i < 500; i++) {
  await store.get(["hit"]);
  await store.get(["miss"]);
}
const med = (a: number[]) => a.toSorted((x, y) => x - y)[a.length >> 1];
const out: Record<string, number[]> = { hit: [], miss: [] };
for (let b = 0; b < 5; b++) {
  for (const kind of ["hit", "miss"]) {
    const t = performance.now();
    for (let i = 0; i < N; i++) await store.get([kind]);
    out[kind].push((performance.now() - t) / N * 1000);
  }
}
await store.delete(["hit"]);
await store.close();
console.log(med(out.hit).toFixed(2), med(out.miss).toFixed(2));
