/**
 * What the benchmarks of the encryption wrapper share: this process's CPU
 * time and the median of samples.
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
