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
