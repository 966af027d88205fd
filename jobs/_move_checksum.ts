/**
 * The checksum of a store move (jobs/migrate_store.ts): an order-independent
 * sum (mod 2^128) of a 128-bit MurmurHash3 of each entry's key, value text and
 * `expiresAt`, so a running sum can be kept in a checkpoint and compared with
 * one computed over the source in any order.
 *
 * @module
 */
import type { Key } from "../src/store/types.ts";

/** Four 32-bit lanes, least significant first. */
type Sum = [number, number, number, number];

/** The checksum of no entries. */
export const ZERO = "0".repeat(32);

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** MurmurHash3 x86_128 over the UTF-16 code units of `s` (two per 32-bit word). */
function hash128(s: string, out: Sum): void {
  let h1 = 0x9747b28c, h2 = 0x9747b28c, h3 = 0x9747b28c, h4 = 0x9747b28c;
  const c1 = 0x239b961b, c2 = 0xab0e9789, c3 = 0x38b34ae5, c4 = 0xa1e38b93;
  const n = s.length;
  const blocks = n - (n % 8);
  let i = 0;
  for (; i < blocks; i += 8) {
    let k1 = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    let k2 = s.charCodeAt(i + 2) | (s.charCodeAt(i + 3) << 16);
    let k3 = s.charCodeAt(i + 4) | (s.charCodeAt(i + 5) << 16);
    let k4 = s.charCodeAt(i + 6) | (s.charCodeAt(i + 7) << 16);
    k1 = Math.imul(rotl(Math.imul(k1, c1), 15), c2);
    h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, c2), 16), c3);
    h2 ^= k2;
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, c3), 17), c4);
    h3 ^= k3;
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, c4), 18), c1);
    h4 ^= k4;
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  if (i < n) {
    const t = [0, 0, 0, 0];
    for (let j = 0; i + j < n; j++) t[j >> 1] |= s.charCodeAt(i + j) << ((j & 1) * 16);
    h1 ^= Math.imul(rotl(Math.imul(t[0], c1), 15), c2);
    h2 ^= Math.imul(rotl(Math.imul(t[1], c2), 16), c3);
    h3 ^= Math.imul(rotl(Math.imul(t[2], c3), 17), c4);
    h4 ^= Math.imul(rotl(Math.imul(t[3], c4), 18), c1);
  }
  const len = n * 2;
  h1 ^= len, h2 ^= len, h3 ^= len, h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0, h3 = (h3 + h1) | 0, h4 = (h4 + h1) | 0;
  h1 = fmix(h1), h2 = fmix(h2), h3 = fmix(h3), h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0, h3 = (h3 + h1) | 0, h4 = (h4 + h1) | 0;
  out[0] = h1 >>> 0, out[1] = h2 >>> 0, out[2] = h3 >>> 0, out[3] = h4 >>> 0;
}

/** A running order-independent checksum over entries. */
export class Checksum {
  #sum: Sum = [0, 0, 0, 0];
  #h: Sum = [0, 0, 0, 0];

  constructor(hex: string = ZERO) {
    if (!/^[0-9a-f]{32}$/.test(hex)) throw new TypeError(`Invalid checksum ${hex}`);
    for (let i = 0; i < 4; i++) this.#sum[i] = parseInt(hex.slice(24 - i * 8, 32 - i * 8), 16);
  }

  /** Add an entry; returns its hash, which {@linkcode addHash} can add to another sum. */
  add(key: Key, valueText: string, expiresAt: number | null): Readonly<Sum> {
    hash128(`${JSON.stringify(key)}\n${valueText}\n${expiresAt ?? ""}`, this.#h);
    this.addHash(this.#h);
    return this.#h;
  }

  addHash(h: Readonly<Sum>): void {
    let carry = 0;
    for (let i = 0; i < 4; i++) {
      const s = this.#sum[i] + h[i] + carry;
      this.#sum[i] = s >>> 0;
      carry = s > 0xffffffff ? 1 : 0;
    }
  }

  toString(): string {
    let hex = "";
    for (let i = 3; i >= 0; i--) hex += this.#sum[i].toString(16).padStart(8, "0");
    return hex;
  }
}

/** A key as the checksum hashes it and as messages show it. */
export function keyText(key: Key): string {
  return JSON.stringify(key);
}
