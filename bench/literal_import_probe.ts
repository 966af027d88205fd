/**
 * What a module reachable only by a never-taken `import()` costs a cold start:
 * four tiny scripts (in a temporary directory), each writing one file, run
 * cold in turn (the order rotates per round): `bare`; `literal`, which also
 * has `if (never) await import("<checkout>/src/cli/program.ts")` (program.ts
 * reaches every CLI command); `computed`, the same import through
 * `new URL(…).href` (as `src/cli/main.ts` does); and `literal` run with
 * `--unstable-lazy-dynamic-imports`. Deno reads and parses every module a
 * literal specifier reaches when it starts, taken or not. Prints the median
 * (p25–p75) CPU (user + system, bash's `times`) and wall time of each, and
 * the per-round CPU ratio to `bare`.
 *
 *   deno run -A bench/literal_import_probe.ts [rounds=15]
 */
import { loadAverage, medianSpread, timeDeno } from "./_cpu.ts";

const rounds = Number(Deno.args[0] ?? 15);
const program = new URL("../src/cli/program.ts", import.meta.url).href;
const dir = await Deno.makeTempDir({ prefix: "literal-import-probe-" });
const body = (load: string) =>
  `const never = Deno.args.length > 99;\nif (never) ${load}\n` +
  `Deno.writeTextFileSync(${JSON.stringify(`${dir}/out.txt`)}, "x");\n`;
const scripts = {
  bare: body(""),
  literal: body(`await import(${JSON.stringify(program)});`),
  computed: body(`await import(new URL(${JSON.stringify(program)}).href);`),
};
for (const [name, text] of Object.entries(scripts)) {
  await Deno.writeTextFile(`${dir}/${name}.ts`, text);
}
const cases: Record<string, string[]> = {
  bare: ["bare.ts"],
  literal: ["literal.ts"],
  computed: ["computed.ts"],
  "literal, lazy flag": ["--unstable-lazy-dynamic-imports", "literal.ts"],
};
const flags = ["run", "--v8-flags=--no-lazy", "--allow-read", `--allow-write=${dir}`];

/** Wall and CPU time (ms) of one cold `deno run` of a probe script; throws on a failure. */
const time = (args: string[]) => timeDeno(dir, [...flags, ...args]);
const fmt = medianSpread;
const load = loadAverage;

console.log(`${rounds} rounds; load average ${load()}`);
const names = Object.keys(cases);
for (const name of names) await time(cases[name]); // warm the code cache of each
const results = new Map(names.map((n) => [n, [] as { wall: number; cpu: number }[]]));
for (let r = 0; r < rounds; r++) {
  const order = names.map((_, i) => names[(i + r) % names.length]);
  for (const name of order) results.get(name)!.push(await time(cases[name]));
}
const bare = results.get("bare")!;
for (const name of names) {
  const xs = results.get(name)!;
  const ratio = xs.map((x, i) => x.cpu / bare[i].cpu);
  console.log(
    `${name.padEnd(20)} CPU ${fmt(xs.map((x) => x.cpu))} ms, wall ${
      fmt(xs.map((x) => x.wall))
    } ms; CPU / bare ${fmt(ratio, 2)}`,
  );
}
console.log(`load average ${load()}`);
await Deno.remove(dir, { recursive: true });
