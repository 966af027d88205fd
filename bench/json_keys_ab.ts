/**
 * What reading values through `parseJson` (src/_json.ts, the workaround for
 * V8's escaped-key JSON.parse bug) costs, before and after, in one process:
 * this checkout and another (`BEFORE=<path>`, default `/work/main`) each
 * `get` a 1 KB value 20,000 times from a memory store and from a sqlite
 * store, interleaved (the order alternates per round); and `parseJson`
 * against the native `JSON.parse` on 1 KB texts without a backslash, with
 * escapes in string values only (the key walk), and with one escaped key
 * (the strict builder).
 *
 * Prints the CPU time (user + system of this process) medians and the
 * after/before ratio per round (median, p25–p75).
 *
 * Run: BEFORE=/work/main deno run -A bench/json_keys_ab.ts [rounds=11]
 */
import { join } from "node:path";
import { abTrees, interleaved } from "./_chain.ts";
import { parseJson } from "../src/_json.ts";

const rounds = Number(Deno.args[0] ?? 11);
const GETS = 20_000;
const PARSES = 100_000;
const { before, after, dir } = await abTrees("flowstate-bench-json-keys-");

/** A flat object of about 1 KB: numbers and short strings, no backslash. */
const value: Record<string, unknown> = {};
for (let i = 0; JSON.stringify(value).length < 1024; i++) {
  value[`field${i}`] = i % 3 ? `value number ${i}` : i;
}

type Getter = { get(key: string[]): Promise<unknown> };
async function stores(root: string, side: string): Promise<Record<string, Getter>> {
  const { openStore } = await import(new URL(`file://${root}/mod.ts`).href);
  const out: Record<string, Getter> = {
    memory: await openStore({ plugin: "memory" }),
    sqlite: await openStore({ plugin: "sqlite", path: join(dir, `${side}.db`) }),
  };
  for (const store of Object.values(out)) await (store as never as Store).set(["k"], value);
  return out;
}
type Store = { set(key: string[], value: unknown): Promise<unknown> };
const sides = { before: await stores(before, "before"), after: await stores(after, "after") };

const gets = (store: Getter) => async () => {
  for (let i = 0; i < GETS; i++) await store.get(["k"]);
};
const parses = (parse: (text: string) => unknown, text: string) => () => {
  for (let i = 0; i < PARSES; i++) parse(text);
};
const texts: Record<string, string> = {
  "no backslash": JSON.stringify(value),
  "escapes in values": JSON.stringify({ ...value, note: 'line\nbreak "quoted" back\\slash' }),
  "an escaped key": JSON.stringify({ ...value, "line\nkey": 1 }),
};

const pairs: [label: string, before: () => unknown, after: () => unknown][] = [
  [`memory get 1 KB ×${GETS}`, gets(sides.before.memory), gets(sides.after.memory)],
  [`sqlite get 1 KB ×${GETS}`, gets(sides.before.sqlite), gets(sides.after.sqlite)],
  ...Object.entries(texts).map(([name, text]): [string, () => unknown, () => unknown] => [
    `parse 1 KB, ${name}, ×${PARSES} (JSON.parse → parseJson)`,
    parses(JSON.parse, text),
    parses(parseJson, text),
  ]),
];

const at = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.round(p * (xs.length - 1))];
for (const [label, a, b] of pairs) {
  const cpu = await interleaved({ before: a, after: b }, rounds);
  const ratios = cpu.after.map((t, i) => t / cpu.before[i]);
  console.log(
    `${label}: before ${at(cpu.before, 0.5).toFixed(1)} ms, after ${
      at(cpu.after, 0.5).toFixed(1)
    } ms; after/before median ${at(ratios, 0.5).toFixed(3)} (p25–p75 ${
      at(ratios, 0.25).toFixed(3)
    }–${at(ratios, 0.75).toFixed(3)})`,
  );
}
await Deno.remove(dir, { recursive: true });
Deno.exit(0); // the stores stay open: nothing to flush
