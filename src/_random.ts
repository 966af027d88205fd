/**
 * Random bytes for what must differ between processes: run ids, the tag in
 * every version a store writes, worker, runner and shard ids, temp file
 * names. Never from `crypto.getRandomValues`, `crypto.randomUUID`,
 * node:crypto's `randomUUID` or `Math.random`: under `deno run --seed N`
 * those repeat the same values in every process started with N (so two such
 * processes made the same run ids and version tokens). Jitter and sampling
 * may keep `Math.random`.
 *
 * The bytes come from the system's CSPRNG, which `--seed` does not touch:
 * read from `/dev/urandom` when this process may read it (a cold start pays
 * nothing for it), else through node:crypto's `randomFillSync` (loaded only
 * then: importing node:crypto costs a cold `flowstate run` about half its
 * CPU time again).
 *
 * @module
 */

const URANDOM = "/dev/urandom";

/** Whether `/dev/urandom` can be read without a permission prompt. */
function urandomReadable(): boolean {
  if (Deno.build.os === "windows") return false;
  try {
    return Deno.permissions.querySync({ name: "read", path: URANDOM }).state === "granted";
  } catch {
    return false;
  }
}

/** Fill `buf` from `/dev/urandom`; `false` if it could not. */
function readUrandom(buf: Uint8Array): boolean {
  try {
    using file = Deno.openSync(URANDOM);
    for (let at = 0; at < buf.length;) {
      const n = file.readSync(buf.subarray(at));
      if (n === null || n === 0) return false;
      at += n;
    }
    return true;
  } catch {
    return false;
  }
}

type Fill = (buf: Uint8Array) => void;

/** node:crypto's `randomFillSync`, when `/dev/urandom` cannot be read. */
const nodeFill: Fill | undefined = urandomReadable()
  ? undefined
  : (await import("node:crypto")).randomFillSync;

function fill(buf: Uint8Array): void {
  if (nodeFill !== undefined) nodeFill(buf);
  // Read permission revoked since: the system's CSPRNG all the same, through WebCrypto
  // (repeated by --seed only if the process was started with it, and it then lost --allow-read).
  else if (!readUrandom(buf)) crypto.getRandomValues(buf);
}

/** Filled 1 KiB at a time: one read of the system's CSPRNG for about a hundred run ids. */
const pool = new Uint8Array(1024);
let used = pool.length;

/** `n` random bytes (a fresh array) that no other process draws, `--seed` or not. */
export function uniqueRandomBytes(n: number): Uint8Array {
  if (n > pool.length) {
    const bytes = new Uint8Array(n);
    fill(bytes);
    return bytes;
  }
  if (used + n > pool.length) {
    fill(pool);
    used = 0;
  }
  const bytes = pool.slice(used, used + n);
  used += n;
  return bytes;
}

/** `n` random bytes as `2n` lowercase hex digits (see {@linkcode uniqueRandomBytes}). */
export function uniqueRandomHex(n: number): string {
  let out = "";
  for (const b of uniqueRandomBytes(n)) out += b.toString(16).padStart(2, "0");
  return out;
}
