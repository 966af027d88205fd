/**
 * What the encryption cache (`encrypt.cache`) costs when it does not help
 * and gains when it does: CPU time per `get` of 1 KB values on a memory
 * store, plain, encrypted with the default cache (8 MiB) and with
 * `cache: 0`, each round writing N fresh values then reading each once, the
 * three interleaved; medians over 15 rounds. With N = 2500 the round's values
 * do not fit in 8 MiB (every read is a miss: the cost of keeping what is
 * read); with N = 500 they do (every read a hit).
 *
 * Run: deno run -A bench/encrypt_cache_probe.ts [n=2500]
 * (`deno task bench` loads this file without running it.)
 */
import process from "node:process";
import { openStore, type Store } from "../mod.ts";
import { encrypted } from "../encrypt.ts";

const KEY = "0f".repeat(32);
const N = Number(Deno.args[0] ?? 2500);
const value = (i: number) => ({ id: i, status: i % 2 ? "open" : "paid", note: "x".repeat(960) });

/** CPU µs per get of a round's N fresh values, read once each after they are written. */
async function round(store: Store, r: number): Promise<number> {
  const keys = Array.from({ length: N }, (_, i) => ["bench", `r${r}`, String(i).padStart(6, "0")]);
  for (let i = 0; i < N; i++) await store.set(keys[i], value(i));
  const before = process.cpuUsage();
  for (let i = 0; i < N; i++) await store.get(keys[i]);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / N;
}

if (import.meta.main) {
  const stores: Record<string, Store> = {
    plain: await openStore({ plugin: "memory" }),
    "cache 8 MiB": await encrypted(await openStore({ plugin: "memory" }), { key: KEY }),
    "cache 0": await encrypted(await openStore({ plugin: "memory" }), { key: KEY, cache: 0 }),
  };
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < 15; r++) {
    const names = Object.keys(stores);
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + r) % names.length]; // each takes each place in turn
      (samples[name] ??= []).push(await round(stores[name], r));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`load average: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
  console.log(`${N} values of 1 KB, memory store, CPU µs per get (median of 15 rounds):`);
  for (const [name, xs] of Object.entries(samples)) {
    console.log(`  ${name}: ${median(xs).toFixed(2)}`);
  }
  for (const store of Object.values(stores)) await store.close();
}
