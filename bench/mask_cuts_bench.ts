/**
 * `SecretMasker.maskText` of log lines that hold cut marks (`...`, ` …`, `"...`) with many
 * secrets: each mark makes it look for the start of a secret cut there. 300 secrets, 3,000
 * lines of two marks each; the median of the rounds, in ms.
 *
 * With `--baseline <dir>` (a checkout of another version, e.g. from
 * `git archive 5c868dd2 | tar -x -C <dir>`), that tree's masker runs too, interleaved, and
 * must give the same texts.
 *
 * Run: deno run -A bench/mask_cuts_bench.ts [rounds] [--baseline <dir>]
 * (`deno task bench` loads this file without running it.)
 *
 * @module
 */
import { SecretMasker } from "../src/flow/secrets.ts";

/** How long masking `lines` with `masker` took (ms), and the masked lines joined. */
function timed(masker: { maskText(text: string): string }, lines: string[]): [number, string] {
  const start = performance.now();
  const out = lines.map((line) => masker.maskText(line)).join("\n");
  return [performance.now() - start, out];
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--baseline");
  const baseline = at >= 0 ? Deno.args[at + 1] : undefined;
  const rounds = Number(
    Deno.args.find((a, i) => /^\d+$/.test(a) && Deno.args[i - 1] !== "--baseline") ?? 5,
  );
  const secrets = Array.from(
    { length: 300 },
    (_, i) => `s3cr3t value ${i} ${crypto.randomUUID()}!`,
  );
  const lines = Array.from(
    { length: 3_000 },
    (_, i) => `line ${i}: fetching page ${i} ... got s3cr3t value 5 and "quoted"... done`,
  );
  const maskers: [string, { maskText(text: string): string }][] = [
    ["this tree", new SecretMasker(secrets)],
  ];
  if (baseline !== undefined) {
    const old = await import(`${baseline}/src/flow/secrets.ts`);
    maskers.push(["baseline", new old.SecretMasker(secrets)]);
  }
  const times = new Map<string, number[]>(maskers.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    const outs = new Set<string>();
    for (const [name, masker] of round % 2 === 0 ? maskers : [...maskers].reverse()) {
      const [ms, out] = timed(masker, lines);
      times.get(name)!.push(ms);
      outs.add(out);
    }
    if (outs.size !== 1) throw new Error("the maskers masked the lines differently");
  }
  for (const [name, list] of times) {
    const sorted = [...list].sort((a, b) => a - b);
    console.log(`${name}: median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} ms`);
  }
}
