/**
 * What the store's check of values (src/store/values.ts, the walk before
 * every write) costs, before and after a change: this checkout and another
 * (`BEFORE=<path>`, default `/work/main`) each `set` values into a memory
 * store: a 1 KB object with a nested object and an array, a small
 * `{ count, at }`, and a metrics-like object with integer-like keys. The
 * values are made before the timing.
 *
 * Each sample is a process of its own, the two trees alternating (the order
 * flips every round): in one process both trees would walk objects of the
 * same hidden classes, and what one walk leaves in V8's caches (a map's
 * enum cache, inline-cache states) changes the other's cost, which made an
 * in-process A/B of this walk read 1.2–1.6× either way for the same code.
 * A child measures 12 batches of 20,000 sets after 2 of warm-up and prints
 * its median CPU time (user + system) a set.
 *
 * Prints per kind the medians over the rounds and the after/before ratio
 * per round (median, p25–p75).
 *
 * Run: BEFORE=/tmp/before deno run -A bench/value_check_ab.ts [rounds=7]
 */
import process from "node:process";

const SETS = 20_000;
const kinds: Record<string, (i: number) => unknown> = {
  "1 KB object": (i) => ({
    id: i,
    status: i % 2 ? "open" : "paid",
    note: "x".repeat(960),
    tags: ["a", "b"],
    n: { x: 1, y: [1, 2, 3] },
  }),
  "{ count, at }": (i) => ({ count: i, at: 1_700_000_000_000 + i }),
  "integer-like keys": (i) => ({ runs: i, byHour: { "70": i, "71": 2, "72": 3 } }),
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const at = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.round(p * (xs.length - 1))];

if (Deno.args[0] === "--child") {
  const [, root, kind] = Deno.args;
  const { openStore } = await import(new URL(`file://${root}/mod.ts`).href);
  const store = await openStore({ plugin: "memory" });
  const values = Array.from({ length: 1000 }, (_, i) => kinds[kind](i));
  const samples: number[] = [];
  for (let batch = 0; batch < 14; batch++) {
    const start = process.cpuUsage();
    for (let i = 0; i < SETS; i++) await store.set(["k", String(i % 1000)], values[i % 1000]);
    const used = process.cpuUsage(start);
    if (batch >= 2) samples.push((used.user + used.system) / SETS);
  }
  console.log(median(samples));
  Deno.exit(0);
}

const rounds = Number(Deno.args[0] ?? 7);
const before = (Deno.env.get("BEFORE") ?? "/work/main").replace(/\/$/, "");
const after = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
console.log(`load average at the start: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
const child = async (root: string, kind: string): Promise<number> => {
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", root, kind],
    stderr: "inherit",
  }).output();
  return Number(new TextDecoder().decode(stdout).trim());
};
for (const kind of Object.keys(kinds)) {
  const us: Record<"before" | "after", number[]> = { before: [], after: [] };
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 ? ["after", "before"] as const : ["before", "after"] as const) {
      us[side].push(await child(side === "before" ? before : after, kind));
    }
  }
  const ratios = us.after.map((t, i) => t / us.before[i]);
  console.log(
    `memory set, ${kind}: before ${median(us.before).toFixed(2)} µs, after ${
      median(us.after).toFixed(2)
    } µs a set (CPU); after/before median ${at(ratios, 0.5).toFixed(3)} (p25–p75 ${
      at(ratios, 0.25).toFixed(3)
    }–${at(ratios, 0.75).toFixed(3)})`,
  );
}
console.log(`load average at the end: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
