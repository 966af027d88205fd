/**
 * What the benchmarks share: this process's CPU time, the median of samples
 * and their p25–p75.
 *
 * @module
 */
import process from "node:process";

/** This process's CPU time (every thread: WebCrypto's pool too), in µs. */
export function cpuUs(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The p25–p75 of `xs`, as text (`0.91–1.04`). */
export function spread(xs: number[]): string {
  const r = [...xs].sort((a, b) => a - b);
  const at = (p: number) => r[Math.floor((r.length - 1) * p)].toFixed(2);
  return `${at(0.25)}–${at(0.75)}`;
}

/**
 * Wall and CPU time (ms; CPU is user + system, from bash's `times`) of one
 * `deno <args>` run in `cwd`, its stdout discarded; throws with its stderr
 * on a failure.
 */
export async function timeDeno(
  cwd: string,
  args: string[],
): Promise<{ wall: number; cpu: number }> {
  const start = performance.now();
  const out = await new Deno.Command("/bin/bash", {
    args: ["-c", '"$@"; s=$?; times >&2; exit $s', "bash", Deno.execPath(), ...args],
    cwd,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const wall = performance.now() - start;
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`deno ${args.join(" ")} failed in ${cwd}:\n${stderr}`);
  const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(stderr);
  if (!m) throw new Error(`no times in: ${stderr}`);
  return { wall, cpu: ((+m[1] + +m[3]) * 60 + +m[2] + +m[4]) * 1000 };
}

/** The `q` quantile of `xs` (the sample at that rank). */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** The median of `xs` and its p25–p75, as text (`12.3 (11.9–13.0)`). */
export function medianSpread(xs: number[], digits = 1): string {
  return `${quantile(xs, 0.5).toFixed(digits)} (${quantile(xs, 0.25).toFixed(digits)}–${
    quantile(xs, 0.75).toFixed(digits)
  })`;
}

/** The machine's load averages (1, 5, 15 minutes), as text. */
export function loadAverage(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}
