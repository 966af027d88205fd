/**
 * memory plugin vs a bare Map holding JSON copies (values copied in and out).
 * Run: deno task bench
 */
import { openStore } from "../mod.ts";

const N = 1000;
const value = { name: "counter", count: 0, tags: ["a", "b"], nested: { ok: true } };
const store = await openStore({ plugin: "memory" });
const map = new Map<string, string>();
let i = 0;

Deno.bench({
  name: "memory: set (baseline Map + JSON copy)",
  group: "memory set",
  baseline: true,
  fn() {
    for (let j = 0; j < N; j++) {
      const key = ["flow", "bench", `k${j}`];
      map.set(JSON.stringify(key), JSON.stringify({ ...value, count: i++ }));
    }
  },
});
Deno.bench({
  name: "memory: set (memory plugin)",
  group: "memory set",
  async fn() {
    for (let j = 0; j < N; j++) {
      await store.set(["flow", "bench", `k${j}`], { ...value, count: i++ });
    }
  },
});
Deno.bench({
  name: "memory: get (baseline Map + JSON copy)",
  group: "memory get",
  baseline: true,
  fn() {
    for (let j = 0; j < N; j++) {
      const text = map.get(JSON.stringify(["flow", "bench", `k${j}`]));
      if (text === undefined || JSON.parse(text).count < 0) throw new Error("missing");
    }
  },
});
Deno.bench({
  name: "memory: get (memory plugin)",
  group: "memory get",
  async fn() {
    for (let j = 0; j < N; j++) {
      const entry = await store.get<typeof value>(["flow", "bench", `k${j}`]);
      if (entry === null || entry.value.count < 0) throw new Error("missing");
    }
  },
});
