/**
 * The jsonfile lock protocol: how processes (and stores within one process)
 * take turns writing one store file.
 *
 * - The lock is an OS advisory lock (`flock` on Unix, `LockFileEx` on
 *   Windows) on `<path>.lock` (see `lockPathOf()`), taken exclusively, for
 *   one read-modify-write of the store file, and released after it. The OS
 *   releases the lock of a process that dies, however it dies, so no lock is
 *   ever judged stale.
 * - A taker that finds the lock held tries again every few milliseconds, up
 *   to its `lockTimeout` (a blocking wait could not be cancelled), then fails
 *   naming the holder.
 * - Whoever takes the lock writes its pid, host name and time as the first
 *   line of the lock file (one JSON line, padded to 256 bytes), for that
 *   message, and for gc to tell a lock file left by a process that is gone.
 * - A lock file may be deleted only by a holder of its lock, after checking
 *   that it is still the file at the path ({@linkcode removeLockFile}, and a
 *   store that closes). A taker checks, once it holds the lock, that its
 *   open file is still the one at the path; if not (deleted, or replaced),
 *   it reopens the path and tries again. So deleting a lock file never lets
 *   two writers in.
 *
 * @module
 */
import { sameInode, statOrNull } from "./files.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The longest pause between two tries to take a lock another process holds (ms). */
const LOCK_POLL_MAX_MS = 4;
/** Bytes a holder writes into the lock file: one line, padded so that every holder writes as many. */
const HOLDER_LINE_BYTES = 256;
/**
 * How many expected turns a waiter sits through before it gives up (see
 * {@linkcode lockWaitBudget}).
 */
export const LOCK_WAIT_FACTOR = 8;
/** Weight of the newest hold in the moving average of hold times. */
const HOLD_AVERAGE_WEIGHT = 0.2;
let hostnameCache: string | undefined;

/**
 * What this process writes into a lock file it takes: one JSON line, padded
 * with spaces to {@linkcode HOLDER_LINE_BYTES} so that it replaces the last
 * holder's line without a truncate. Readers look at the first line only.
 * `holdMs` is the holder's moving average of how long it holds the lock, for
 * waiters that have not measured it themselves.
 */
function holderLine(holdMs: number | undefined): Uint8Array {
  if (hostnameCache === undefined) {
    hostnameCache = "unknown";
    try {
      hostnameCache = Deno.hostname();
    } catch { /* no --allow-sys: the message cannot name the host */ }
  }
  const hold = holdMs === undefined ? "" : `, "holdMs": ${Math.ceil(holdMs)}`;
  const line = `{"pid": ${Deno.pid}, "hostname": ${JSON.stringify(hostnameCache)}, "since": "${
    new Date().toISOString()
  }"${hold}}`;
  return encoder.encode(`${line.padEnd(HOLDER_LINE_BYTES - 1)}\n`);
}

/**
 * How long (ms) a taker waits for a lock held by others before it fails:
 * `max(floor, LOCK_WAIT_FACTOR × commitMs × contenders)`, where `floor` is
 * the store's `lockTimeout`, `commitMs` the measured time one holder keeps
 * the lock for a commit (a moving average), and `contenders` the processes
 * seen taking turns at it, the waiter included. Waiting behind `n`
 * processes that each hold the lock `c` ms takes about `n × c`; the factor
 * covers commits slower than average (one that re-reads a file another
 * process rewrote costs several plain ones) and the unfairness of a polled
 * lock: a waiter that wins each turn with chance `1/n` waits more than
 * `8n` turns with chance about `e^-8` (0.03%). A `floor` of 0 means one try
 * and no waiting at all, whatever the measurements.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lockWaitBudget } from "./lock.ts";
 *
 * // A small store: commits are quick, the configured floor decides.
 * assert.equal(lockWaitBudget(5000, 4, 6), 5000);
 * // A 15 MB store, six processes at 200 ms per commit: 8 × 200 × 6.
 * assert.equal(lockWaitBudget(5000, 200, 6), 9600);
 * // lockTimeout 0: never wait.
 * assert.equal(lockWaitBudget(0, 200, 6), 0);
 * ```
 */
export function lockWaitBudget(floor: number, commitMs: number, contenders: number): number {
  if (floor <= 0) return 0;
  const measured = Number.isFinite(commitMs) && commitMs > 0 ? commitMs : 0;
  return Math.max(floor, Math.ceil(LOCK_WAIT_FACTOR * measured * Math.max(1, contenders)));
}

/** The holder a lock file names in its first line. */
export interface LockHolder {
  /** The holder's process id. */
  pid: number;
  /** The holder's host name (`"unknown"` when it may not read it: no `--allow-sys`). */
  hostname?: string;
  /** When it took the lock (an ISO time). */
  since?: string;
  /** Its moving average of how long it holds the lock (ms), when it has measured one. */
  holdMs?: number;
}

/**
 * The holder that the first line of a lock file's text names, or
 * `undefined` when it names none (an empty file, one being written, or not a
 * Flowstate lock file).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLockHolder } from "./lock.ts";
 *
 * assert.deepEqual(
 *   parseLockHolder(`{"pid": 42, "hostname": "db1", "since": "2026-01-02T03:04:05.000Z"}   \n`),
 *   { pid: 42, hostname: "db1", since: "2026-01-02T03:04:05.000Z" },
 * );
 * assert.equal(parseLockHolder("notes"), undefined);
 * ```
 */
export function parseLockHolder(text: string): LockHolder | undefined {
  const end = text.indexOf("\n");
  let parsed: { pid?: unknown; hostname?: unknown; since?: unknown; holdMs?: unknown } | null;
  try {
    parsed = JSON.parse(end < 0 ? text : text.slice(0, end));
  } catch {
    return undefined;
  }
  const pid = parsed?.pid;
  if (typeof pid !== "number" || !Number.isSafeInteger(pid)) return undefined;
  const holder: LockHolder = { pid };
  if (typeof parsed!.hostname === "string") holder.hostname = parsed!.hostname;
  if (typeof parsed!.since === "string") holder.since = parsed!.since;
  const holdMs = parsed!.holdMs;
  if (typeof holdMs === "number" && Number.isFinite(holdMs) && holdMs >= 0) holder.holdMs = holdMs;
  return holder;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Who holds a lock, from what the holder wrote into the lock file. */
function describeHolder(holder: LockHolder | undefined): string {
  if (holder === undefined) return "another process (the lock file does not say which)";
  const since = holder.since !== undefined ? ` since ${holder.since}` : "";
  return `process ${holder.pid} on host ${JSON.stringify(holder.hostname ?? "unknown")}${since}`;
}

/** The most of a lock file {@linkcode removeLockFile} reads for the holder's line (a long host name aside, it is 256 bytes). */
const HOLDER_LINE_MAX = 4096;

/** Options of {@linkcode removeLockFile}. */
export interface RemoveLockFileOptions {
  /**
   * Called while the lock is held, with the holder the file names
   * (`undefined`: it names none); the file is deleted only if it returns
   * true. Default: always.
   */
  when?: (holder: LockHolder | undefined) => boolean | Promise<boolean>;
  /** Decide, but delete nothing. */
  dryRun?: boolean;
}

/**
 * Delete the lock file at `path` the one way the protocol allows, as a
 * holder of its lock: it is opened (never created) and locked without
 * waiting, so a lock that someone holds is never touched, whatever the file
 * says; it must still be the file at `path`; then `options.when` decides.
 * The lock is released (the file closed) before this resolves. Resolves
 * whether the file was deleted (with `dryRun`, whether it would have been).
 */
export async function removeLockFile(
  path: string,
  options: RemoveLockFileOptions = {},
): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true, write: true });
  } catch {
    return false; // gone, or not ours to open
  }
  try {
    if (!file.tryLockSync(true)) return false; // held right now
    const info = file.statSync();
    const now = await Deno.lstat(path).catch(() => null);
    if (now === null || info.ino === null || !sameInode(now, info)) {
      return false; // replaced or deleted since it was opened
    }
    const head = new Uint8Array(Math.min(info.size, HOLDER_LINE_MAX));
    let got = 0;
    while (got < head.length) {
      const n = file.readSync(head.subarray(got));
      if (n === null) break;
      got += n;
    }
    const holder = parseLockHolder(new TextDecoder().decode(head.subarray(0, got)));
    if (options.when !== undefined && !(await options.when(holder))) return false;
    if (!options.dryRun) await Deno.remove(path);
    return true;
  } finally {
    file.close(); // releases the lock
  }
}

/**
 * One driver's handle on its store's lock file `<path>.lock`, opened once and
 * kept open. The lock is an OS advisory lock on it (`flock` on Unix,
 * `LockFileEx` on Windows): exclusive between processes and between two
 * handles in one process, and released by the OS when its process dies.
 *
 * A lock file can be deleted (by a store closing, or by hand) while others
 * have it open; a lock on a deleted file would exclude no one. So taking the
 * lock checks that the path still names the file locked, and if not, reopens
 * the path and tries again; and a lock file is deleted only by a holder of its
 * lock, so no one can take the deleted one and pass that check.
 */
export class StoreLock {
  readonly path: string;
  readonly #storeName: string;
  #file: Deno.FsFile | undefined;
  /** The open file's identity, or `null` where the OS does not report inodes. */
  #info: Deno.FileInfo | null = null;
  #held = false;
  /** When the lock was taken (`performance.now()`), while it is held. */
  #heldSince = 0;
  #holdMs: number | undefined;
  #head: Uint8Array | undefined;

  private constructor(path: string, storeName: string) {
    this.path = path;
    this.#storeName = storeName;
  }

  /** Open (creating it if needed) the lock file. */
  static open(path: string, storeName: string): StoreLock {
    const lock = new StoreLock(path, storeName);
    lock.#reopen("open");
    return lock;
  }

  #reopen(what: string): Deno.FsFile {
    this.#file?.close();
    this.#file = undefined;
    try {
      this.#file = Deno.openSync(this.path, { read: true, write: true, create: true });
      const info = this.#file.statSync();
      this.#info = info.ino === null ? null : info;
      return this.#file;
    } catch (err) {
      this.#file?.close();
      this.#file = undefined;
      throw new Error(
        `Cannot ${what} store "${this.#storeName}": could not open the lock file ${this.path}: ${
          (err as Error)?.message ?? err
        }`,
        { cause: err },
      );
    }
  }

  /**
   * This handle's moving average of how long it holds the lock (ms), from
   * taking it to releasing it; `undefined` until it has held it once.
   */
  get holdMs(): number | undefined {
    return this.#holdMs;
  }

  /**
   * Take the lock, trying again every few milliseconds while another handle
   * holds it, for up to {@linkcode lockWaitBudget}`(timeout, …)` ms: the
   * measured hold time (this handle's, or the one the holders publish) times
   * the processes seen taking turns. (Polling, rather than a blocking
   * `lock()` raced against a timer: a blocking lock cannot be cancelled, so
   * after a timeout it would keep a thread, and the process, waiting for the
   * holder.)
   */
  acquire(what: string, timeout: number): Promise<void> | undefined {
    // Taken at once (the usual case): no promise, no turn of the event loop.
    return this.#tryAcquire(what) ? undefined : this.#wait(what, timeout);
  }

  async #wait(what: string, timeout: number): Promise<void> {
    const started = performance.now();
    /** The holders seen during this wait (pid and host), and the longest hold time they publish. */
    const holders = new Set<string>();
    let published = 0;
    let holder: LockHolder | undefined;
    for (let pause = 1;; pause = Math.min(pause * 2, LOCK_POLL_MAX_MS)) {
      holder = this.#readHolder() ?? holder;
      if (holder !== undefined) {
        holders.add(`${holder.pid}@${holder.hostname}`);
        published = Math.max(published, holder.holdMs ?? 0);
      }
      const commitMs = Math.max(this.#holdMs ?? 0, published);
      const budget = lockWaitBudget(timeout, commitMs, holders.size + 1);
      const remaining = started + budget - performance.now();
      if (remaining <= 0) {
        const raised = budget > timeout
          ? `lockTimeout ${timeout} ms, raised for ${
            holders.size + 1
          } processes taking turns at about ${Math.ceil(commitMs)} ms per commit`
          : "lockTimeout";
        throw new Deno.errors.TimedOut(
          `Cannot ${what} store "${this.#storeName}": the lock file ${this.path} is held by ${
            describeHolder(holder)
          }, and it was not released within ${budget} ms (${raised}). If that process is ` +
            `stuck, stop it: the lock is released when it exits`,
        );
      }
      await sleep(Math.min(pause * (0.5 + Math.random()), remaining));
      if (this.#tryAcquire(what)) return;
    }
  }

  /** The holder the lock file names now (read through our own handle), if it names one. */
  #readHolder(): LockHolder | undefined {
    const file = this.#file;
    if (file === undefined) return undefined;
    try {
      const head = this.#head ??= new Uint8Array(HOLDER_LINE_BYTES * 2);
      file.seekSync(0, Deno.SeekMode.Start);
      let got = 0;
      while (got < head.length) {
        const n = file.readSync(head.subarray(got));
        if (n === null || n === 0) break;
        got += n;
      }
      return parseLockHolder(decoder.decode(head.subarray(0, got)));
    } catch {
      return undefined; // only informational
    }
  }

  /** One try: `false` when another handle holds the lock. */
  #tryAcquire(what: string): boolean {
    let file = this.#file ?? this.#reopen(what);
    for (let attempt = 1;; attempt++) {
      let taken: boolean;
      try {
        taken = file.tryLockSync(true);
      } catch (err) {
        throw new Error(
          `Cannot ${what} store "${this.#storeName}": could not lock ${this.path}: ${
            (err as Error)?.message ?? err
          }`,
          { cause: err },
        );
      }
      if (!taken) return false;
      if (this.#info === null || this.#stillAtPath(this.#info)) break;
      // Deleted or replaced since we opened it: take the lock on the file now at the path.
      file.unlockSync();
      if (attempt === 10) {
        throw new Error(
          `Cannot ${what} store "${this.#storeName}": the lock file ${this.path} keeps being deleted or replaced`,
        );
      }
      file = this.#reopen(what);
    }
    this.#held = true;
    this.#heldSince = performance.now();
    // For whoever waits for us: who holds the lock, since when, and for how long it usually does.
    try {
      const line = holderLine(this.#holdMs);
      file.seekSync(0, Deno.SeekMode.Start);
      for (let written = 0; written < line.length;) {
        written += file.writeSync(line.subarray(written));
      }
      // Only a host name too long for the usual line leaves a longer line behind.
      if (line.length > HOLDER_LINE_BYTES) file.truncateSync(line.length);
    } catch { /* only informational: a full disk must not stop the commit from trying */ }
    return true;
  }

  #stillAtPath(info: Deno.FileInfo): boolean {
    const now = statOrNull(this.path);
    return now !== null && sameInode(now, info);
  }

  /**
   * Release the lock. Never throws: what the lock guarded is done by now, and
   * a failure here must not turn a commit that landed into one reported
   * failed. If unlocking fails, the file is closed instead (which releases
   * the lock) and the next taker reopens it.
   */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    const held = performance.now() - this.#heldSince;
    this.#holdMs = this.#holdMs === undefined
      ? held
      : this.#holdMs + HOLD_AVERAGE_WEIGHT * (held - this.#holdMs);
    try {
      this.#file!.unlockSync();
    } catch {
      try {
        this.#file?.close();
      } catch { /* closed already */ }
      this.#file = undefined;
    }
  }

  /**
   * Close the lock file; delete it first if no one holds it, so that an unused
   * store leaves no lock file behind (only a holder may delete it, see above).
   */
  close(): void {
    const file = this.#file;
    this.#file = undefined;
    if (file === undefined) return;
    try {
      if (this.#info !== null && file.tryLockSync(true) && this.#stillAtPath(this.#info)) {
        Deno.removeSync(this.path);
      }
    } catch { /* left in place: harmless, the next store reuses it */ }
    file.close(); // releases the lock
  }
}
