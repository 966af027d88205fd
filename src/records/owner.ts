/**
 * The process that owns a run (`RunRecord.owner`), and whether it is alive.
 *
 * A run recorded by a process (not one claimed from the queue: those have
 * leases) carries the identity of that process, written with its `running`
 * record: its host name and pid, and what proves it alive or dead from
 * another process of the same machine, two ways:
 *
 * - its *owner lock*: a file under `<home>/owners/` (when the home exists:
 *   it is not created for it) that the process holds
 *   an exclusive OS lock on (`flock`) from its first run to its end; the
 *   kernel releases it when the process dies, however it dies (`kill -9`, a
 *   crash, a reboot, a container stopped), and never while it lives
 *   (stopped, stalled, in a debugger). A reader that can take the lock
 *   knows the owner is dead; one that cannot, that it lives. This needs no
 *   permission the commands lack (`--allow-write=.flowstate` covers the
 *   home), and works across pid namespaces of one kernel.
 * - where Deno may read `/proc` (only with `--allow-all`): the kernel's
 *   boot id, the pid namespace and the process's start time (field 22 of
 *   `/proc/<pid>/stat`): no such pid, a zombie, or a pid with another start
 *   time (reused) is dead.
 *
 * Where neither can be had (no home to write to, another OS, narrower
 * permissions), the owner is recorded with what could be read and is
 * *unverifiable*: such a run is judged by its heartbeat only, as before.
 *
 * {@linkcode ownerLiveness} tells, from the process reading a record:
 * `dead` (same host, and its lock free, or no such process), `alive`,
 * `here` (it is this very process), or `unknown` (anything else: another
 * host, a lock file that is not there or is another file than the one
 * locked (its inode, `lockIno`, differs: a copy of the home), an owner of
 * another boot id, a live owner that gave the run up, an unverifiable
 * owner, no owner at all). Judging takes no lock: only a run's start does. `/proc` is read through a {@linkcode ProcReader}: the default one
 * asks `Deno.permissions.querySync` first (never prompts) and keeps what it
 * read of a pid for a second, so a listing of a thousand runs of a few
 * processes reads each process once.
 *
 * @module
 */

/**
 * The process that recorded a run, as {@linkcode currentOwner} read it at
 * the run's start. Only `pid` is always there; an owner without `host`,
 * or with neither `lock` nor all of `boot`, `pidNs` and `startTicks`, is
 * unverifiable (its run is judged by its heartbeat alone).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ownerLiveness, type RunOwner } from "@flowstate/core/records";
 *
 * const owner: RunOwner = { pid: 42 }; // read where /proc could not be read
 * assert.equal(ownerLiveness(owner).state, "unknown");
 * ```
 */
export interface RunOwner {
  /** The process id (in its pid namespace). */
  pid: number;
  /** The host name of its UTS namespace. */
  host?: string;
  /** Its owner lock: the absolute path of the file it holds locked while it lives. */
  lock?: string;
  /**
   * The inode of its owner lock: a file at `lock` with another one (a copy
   * of the home put in its place, another machine's file system) is not
   * its lock, and tells nothing of it.
   */
  lockIno?: number;
  /** The kernel's boot id (`/proc/sys/kernel/random/boot_id`). */
  boot?: string;
  /** Its pid namespace (`readlink /proc/self/ns/pid`, e.g. `pid:[4026531836]`). */
  pidNs?: string;
  /** Its start time: field 22 of `/proc/<pid>/stat` (clock ticks since boot). */
  startTicks?: number;
}

/**
 * How {@linkcode currentOwner} and {@linkcode ownerLiveness} read `/proc`:
 * `readText` gives a file's text, `null` when it does not exist (a pid's
 * files: no such process), `""` when it exists but cannot be read;
 * `readLink` a link's target, or `null`. Tests inject one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ownerLiveness, type ProcReader } from "@flowstate/core/records";
 *
 * const files: Record<string, string> = {
 *   "/proc/sys/kernel/hostname": "box\n",
 *   "/proc/sys/kernel/random/boot_id": "b1\n",
 *   "/proc/self/stat": "7 (deno) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0",
 *   "/proc/self/mountinfo": "22 27 0:21 / /proc rw - proc proc rw\n",
 * };
 * const reader: ProcReader = {
 *   pid: 7,
 *   readText: (path) => files[path] ?? null,
 *   readLink: (path) => path === "/proc/self/ns/pid" ? "pid:[1]" : null,
 * };
 * const owner = { pid: 9, host: "box", boot: "b1", pidNs: "pid:[1]", startTicks: 5 };
 * assert.equal(ownerLiveness(owner, reader).state, "dead"); // no /proc/9/stat
 * ```
 */
export interface ProcReader {
  /** The pid of the process reading (`Deno.pid`). */
  readonly pid: number;
  /** The text of a file under `/proc`: `null` if there is none, `""` if it cannot be read. */
  readText(path: string): string | null;
  /** The target of a symbolic link under `/proc`, or `null`. */
  readLink(path: string): string | null;
}

/**
 * What {@linkcode ownerLiveness} found of a run's owner: `dead`, `alive`,
 * `here` (this very process), or `unknown` (not verifiable from here: the
 * heartbeat decides); `why` says it in words.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type OwnerLiveness, ownerLiveness } from "@flowstate/core/records";
 *
 * const found: OwnerLiveness = ownerLiveness(undefined);
 * assert.deepEqual(found, { state: "unknown", why: "no owner recorded" });
 * ```
 */
export interface OwnerLiveness {
  /** The verdict. */
  state: "dead" | "alive" | "here" | "unknown";
  /** Why, in a few words (`"no process 1234"`, `"pid 1234 is another process now"`, …). */
  why: string;
}

/** How long the default reader keeps what it read of a pid, in ms. */
const PID_CACHE_MS = 1_000;

/** The part of a `stat` line after the command name (which may hold spaces and parentheses). */
function statFields(stat: string): string[] | null {
  const close = stat.lastIndexOf(")");
  if (close < 0) return null;
  return stat.slice(close + 1).trim().split(/\s+/);
}

/** The pid, state and start time of a `/proc/<pid>/stat` line, or `null` if it is not one. */
function parseStat(stat: string): { pid: number; state: string; startTicks: number } | null {
  const fields = statFields(stat);
  const pid = Number.parseInt(stat, 10);
  // Field 3 (state) is fields[0]; field 22 (starttime) is fields[19].
  if (fields === null || fields.length < 20 || !Number.isSafeInteger(pid)) return null;
  const startTicks = Number(fields[19]);
  if (!Number.isSafeInteger(startTicks)) return null;
  return { pid, state: fields[0], startTicks };
}

/** Whether the `/proc` mount hides other processes (`hidepid`, `subset=pid`): absence proves nothing. */
function procHidesPids(mountinfo: string): boolean {
  for (const line of mountinfo.split("\n")) {
    const parts = line.split(" ");
    if (parts[4] !== "/proc") continue;
    const options = line.slice(line.indexOf(" - ") + 3);
    if (/hidepid=(?!0\b|off\b)/.test(options) || /subset=pid/.test(options)) return true;
  }
  return false;
}

/** Read `path`: `null` when it does not exist, `""` when it cannot be read. */
function readTextOrNull(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? null : "";
  }
}

let procReadable: boolean | undefined;

/** Whether this process may read `/proc` (asked once, never prompting). */
function mayReadProc(): boolean {
  if (procReadable === undefined) {
    try {
      procReadable = Deno.build.os === "linux" &&
        Deno.permissions.querySync({ name: "read", path: "/proc" }).state === "granted";
    } catch {
      procReadable = false;
    }
  }
  return procReadable;
}

const pidCache = new Map<string, { at: number; text: string | null }>();

/**
 * The default reader: nothing where `/proc` may not be read; a pid's files
 * kept for {@linkcode PID_CACHE_MS}.
 */
const defaultReader: ProcReader = {
  pid: Deno.pid,
  readText(path) {
    if (!mayReadProc()) return null;
    if (!/^\/proc\/\d+\//.test(path)) return readTextOrNull(path);
    const now = performance.now();
    const kept = pidCache.get(path);
    if (kept !== undefined && now - kept.at < PID_CACHE_MS) return kept.text;
    const text = readTextOrNull(path);
    if (pidCache.size > 10_000) pidCache.clear();
    pidCache.set(path, { at: now, text });
    return text;
  },
  readLink(path) {
    if (!mayReadProc()) return null;
    try {
      return Deno.readLinkSync(path);
    } catch {
      return null;
    }
  },
};

let current: RunOwner | undefined;

/**
 * The homes this process's runtimes named, in the order they were opened
 * (at most {@linkcode MAX_LOCK_HOMES}): its owner lock goes in the first
 * that exists at a run's start. Each is read when a lock is first needed
 * (then `home` holds it, `null` if it could not be read or may not be
 * written).
 */
const lockHomes: { of: () => string; home?: string | null }[] = [];
/** Enough for a program's few runtimes; a loop opening runtimes adds no more. */
const MAX_LOCK_HOMES = 8;
/** This process's owner lock, once taken: its path, and the open file that holds the lock. */
let held: { path: string; file: Deno.FsFile; ino: number | null } | undefined;
/** Taking it failed (no permission, a read-only disk): not tried again. */
let lockFailed = false;
/** The home may be created for the lock (the CLI's own process: Flowstate owns its home). */
let mayCreateHome = false;

/**
 * Let this process create its home for its owner lock (the CLI does; a
 * library's runtime never creates a home for it). The lock, its `owners/`
 * folder and a home made for it alone are removed at a clean exit.
 * Internal.
 */
export function mayCreateHomeForOwnerLock(): void {
  mayCreateHome = true;
}

/**
 * Name a home where this process may take its owner lock (in `owners/`,
 * once the home exists: it is never created for it): at a run's start, the
 * first home named (in the order the runtimes were opened) that exists
 * then; once taken, the lock stays where it is. Internal: called by
 * `openRuntime`.
 */
export function useOwnerLockDir(home: string | (() => string)): void {
  if (held !== undefined || lockHomes.length >= MAX_LOCK_HOMES) return;
  // Given as a function, read when a lock is first needed: a program that records no run (or
  // needs no home) is not made to read $FLOWSTATE_HOME.
  lockHomes.push({ of: typeof home === "string" ? () => home : home });
}

/** The first home named that exists (or, where the CLI may create it, the first named at all). */
function homeForLock(): string | undefined {
  const usable: string[] = [];
  for (const named of lockHomes) {
    if (named.home === undefined) {
      try {
        const home = named.of().replace(/[/\\]+$/, "");
        const dir = `${home}/owners`;
        // Where the lock may not be written or read, it is not taken (judged by heartbeats).
        named.home = hasPermission({ name: "write", path: dir }) &&
            hasPermission({ name: "read", path: dir })
          ? home
          : null;
      } catch {
        named.home = null; // its home cannot be known here ($FLOWSTATE_HOME not readable)
      }
    }
    if (named.home === null) continue;
    usable.push(named.home);
    // A library's runtime never creates its home for it: a runtime whose stores keep no file
    // there (memory, postgres) leaves no home behind. Looked at again at the next run's start: a
    // store may create it meanwhile.
    try {
      if (Deno.statSync(named.home).isDirectory) return named.home;
    } catch {
      // not there (yet)
    }
  }
  return mayCreateHome ? usable[0] : undefined;
}

function hasPermission(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/**
 * This process's owner lock, taken at the first call (when a runtime named
 * a directory and it may be written): its path, or `undefined`.
 */
function ownerLock(host: string | undefined): typeof held {
  if (held !== undefined) return held;
  if (lockFailed) return undefined;
  const home = homeForLock();
  if (home === undefined) return undefined;
  const dir = `${home}/owners`;
  let madeHome = false;
  try {
    if (!Deno.statSync(home).isDirectory) return undefined;
  } catch {
    madeHome = true; // the CLI's (`homeForLock` gives a missing home to it alone)
  }
  const random = crypto.getRandomValues(new Uint32Array(2)).join("");
  const name = `${(host ?? "host").replace(/[^A-Za-z0-9.-]/g, "_")}.${Deno.pid}.${random}.lock`;
  // Tried again when another process's clean exit removed the empty folder meanwhile.
  for (let tries = 0; tries < 3; tries++) {
    let file: Deno.FsFile | undefined;
    try {
      Deno.mkdirSync(dir, { recursive: true });
      const path = Deno.realPathSync(dir) + "/" + name;
      file = Deno.openSync(path, { read: true, write: true, createNew: true });
      if (!file.tryLockSync(true)) throw new Error("locked");
      const ino = file.statSync().ino;
      held = { path, file, ino };
      globalThis.addEventListener(
        "unload",
        () => removeOwnerLock(path, dir, madeHome ? home : null),
      );
      return held;
    } catch (err) {
      file?.close();
      if (err instanceof Deno.errors.NotFound) continue;
      break;
    }
  }
  lockFailed = true;
  return undefined;
}

/** At a clean exit: this process's lock, then its folder and a home made for it, if empty. */
function removeOwnerLock(path: string, dir: string, home: string | null): void {
  for (const gone of [path, dir, home]) {
    if (gone === null) continue;
    try {
      Deno.removeSync(gone); // a folder only when empty: others' locks keep it
    } catch {
      return; // gone already, or not empty: a lock file left behind is free, so read as dead
    }
  }
}

/**
 * This process, as a run it starts records it (see {@linkcode RunOwner}):
 * read once with the default reader, each time with another. The owner
 * lock is taken here, at the first run's start.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { currentOwner } from "@flowstate/core/records";
 *
 * const me = currentOwner();
 * assert.equal(me.pid, Deno.pid);
 * ```
 */
export function currentOwner(reader: ProcReader = defaultReader): RunOwner {
  if (reader !== defaultReader) return readOwner(reader);
  current ??= readOwner(reader);
  return withLock(current, ownerLock(current.host));
}

/** `owner` with its owner lock, if it holds one. */
function withLock(owner: RunOwner, lock: typeof held): RunOwner {
  if (lock === undefined) return owner;
  return typeof lock.ino === "number"
    ? { ...owner, lock: lock.path, lockIno: lock.ino }
    : { ...owner, lock: lock.path };
}

function readOwner(reader: ProcReader): RunOwner {
  const owner: RunOwner = { pid: reader.pid };
  const host = reader.readText("/proc/sys/kernel/hostname")?.trim() || hostnameIfAllowed();
  if (host) owner.host = host;
  const self = reader.readText("/proc/self/stat");
  const stat = self === null ? null : parseStat(self);
  const mounts = reader.readText("/proc/self/mountinfo");
  // A /proc of another pid namespace (its `self` is not our pid), or one that hides processes:
  // nothing read from it tells whether a pid lives.
  if (stat === null || stat.pid !== reader.pid || mounts === null || procHidesPids(mounts)) {
    return owner;
  }
  const boot = reader.readText("/proc/sys/kernel/random/boot_id")?.trim();
  const pidNs = reader.readLink("/proc/self/ns/pid");
  if (!boot || !pidNs) return owner;
  return { ...owner, boot, pidNs, startTicks: stat.startTicks };
}

function hostnameIfAllowed(): string | undefined {
  if (!hasPermission({ name: "sys", kind: "hostname" })) return undefined;
  try {
    return Deno.hostname();
  } catch {
    return undefined;
  }
}

/** Whether `owner` and `me` have all it takes to be compared through `/proc`. */
function procVerifiable(owner: RunOwner): owner is RunOwner & Required<Omit<RunOwner, "lock">> {
  return typeof owner.pid === "number" && typeof owner.host === "string" &&
    typeof owner.boot === "string" && typeof owner.pidNs === "string" &&
    typeof owner.startTicks === "number";
}

/**
 * Whether the process `owner` (a run's, see {@linkcode RunOwner}) is alive,
 * as seen from this process (see the module documentation). Never throws:
 * a malformed owner is `unknown`. With `runId`, an owner alive that gave
 * that run up (see `RunRecorder.close`) is `unknown`: its heartbeat decides.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { currentOwner, ownerLiveness } from "@flowstate/core/records";
 *
 * const me = currentOwner();
 * assert.equal(ownerLiveness({ ...me, host: "elsewhere" }).state, "unknown");
 * assert.equal(ownerLiveness({ pid: me.pid }).state, "unknown"); // nothing to verify it by
 * ```
 */
export function ownerLiveness(
  owner: RunOwner | undefined,
  reader: ProcReader = defaultReader,
  runId?: string,
): OwnerLiveness {
  if (typeof owner !== "object" || owner === null || typeof owner.pid !== "number") {
    return { state: "unknown", why: "no owner recorded" };
  }
  if (typeof owner.host !== "string") {
    return { state: "unknown", why: "its owner could not be verified" };
  }
  // This process as it would record itself, without taking its lock: judging a run (`runs ls`,
  // `state get`) creates no file; only a run's start does.
  const me = reader === defaultReader ? ownIdentity() : readOwner(reader);
  if (owner.host !== me.host) {
    return { state: "unknown", why: `its process ${owner.pid} is on another host` };
  }
  const lock = owner.lock;
  let found: OwnerLiveness;
  // Same host name, same kernel boot, same pid namespace: the pid is one of ours.
  if (
    procVerifiable(owner) && procVerifiable(me) && owner.boot === me.boot &&
    owner.pidNs === me.pidNs
  ) found = byProc(owner, me, reader);
  else if (
    typeof lock === "string" && typeof owner.boot === "string" && typeof me.boot === "string" &&
    owner.boot !== me.boot
  ) {
    // Another kernel (another machine with this host name, whose file system may not share its
    // locks with this one), or before a reboot (its heartbeat is old then): a free lock proves
    // nothing.
    return { state: "unknown", why: `its process ${owner.pid} ran under another boot` };
  } else if (typeof lock === "string") found = byLock(owner, lock, me);
  else return { state: "unknown", why: "its owner could not be verified" };
  // Alive, by `/proc` or by its lock, but it gave the run up (its end could not be stored): it
  // runs it no more, its heartbeat decides.
  return found.state === "alive" && runId !== undefined && typeof lock === "string" &&
      givenUp(lock, runId)
    ? { state: "unknown", why: `its process ${owner.pid} gave it up` }
    : found;
}

/** This process, read once, with its owner lock if it holds one (never taking it). */
function ownIdentity(): RunOwner {
  current ??= readOwner(defaultReader);
  return withLock(current, held);
}

/** `ownerLiveness` by `/proc`, for an owner and a reader that both could read it. */
function byProc(
  owner: Required<Omit<RunOwner, "lock">>,
  me: Required<Omit<RunOwner, "lock">>,
  reader: ProcReader,
): OwnerLiveness {
  if (owner.pid === me.pid && owner.startTicks === me.startTicks) {
    return { state: "here", why: "this process" };
  }
  const text = reader.readText(`/proc/${owner.pid}/stat`);
  if (text === null) return { state: "dead", why: `its process ${owner.pid} is gone` };
  // Unreadable (not absent): nothing is known.
  const stat = parseStat(text);
  if (stat === null) return { state: "unknown", why: `cannot read process ${owner.pid}` };
  if (stat.startTicks !== owner.startTicks) {
    return { state: "dead", why: `its process ${owner.pid} is gone (the pid is another's now)` };
  }
  // A zombie (or a process being reaped) runs nothing any more.
  if (stat.state === "Z" || stat.state === "X" || stat.state === "x") {
    return { state: "dead", why: `its process ${owner.pid} has exited` };
  }
  return { state: "alive", why: `its process ${owner.pid} is alive on this host` };
}

/** `ownerLiveness` by the owner's lock file: free, its process is dead; held, alive. */
function byLock(owner: RunOwner, lock: string, me: RunOwner): OwnerLiveness {
  if (lock === me.lock) return { state: "here", why: "this process" };
  const ino = typeof owner.lockIno === "number" ? owner.lockIno : undefined;
  // A free lock stays free (its process is gone for good); a held one is looked at again after
  // a second. A listing of a thousand runs of a few processes locks each file once.
  const now = performance.now();
  const key = `${lock}\0${ino ?? ""}`;
  const kept = lockCache.get(key);
  if (kept !== undefined && (kept.found.state === "dead" || now - kept.at < PID_CACHE_MS)) {
    return kept.found;
  }
  const found = probeLock(owner.pid, lock, ino);
  if (found.state !== "unknown") {
    if (lockCache.size > 10_000) lockCache.clear();
    lockCache.set(key, { at: now, found });
  }
  return found;
}

const lockCache = new Map<string, { at: number; found: OwnerLiveness }>();

/** Take the lock `lock` without waiting, and release it at once: free, its process is dead. */
function probeLock(pid: number, lock: string, ino: number | undefined): OwnerLiveness {
  if (!hasPermission({ name: "read", path: lock })) {
    return { state: "unknown", why: "its owner lock may not be read" };
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(lock, { read: true });
  } catch {
    // Not there: another machine's path, or deleted; nothing is known.
    return { state: "unknown", why: `its process ${pid}'s owner lock is not here` };
  }
  try {
    // Another file at its path (a copy of the home, another machine's file system): not its lock.
    const found = ino === undefined ? null : file.statSync().ino;
    if (found !== null && found !== ino) {
      return { state: "unknown", why: `its process ${pid}'s owner lock is not here` };
    }
    return file.tryLockSync(true)
      ? { state: "dead", why: `its process ${pid} is gone` }
      : { state: "alive", why: `its process ${pid} is alive on this host` };
  } catch {
    return { state: "unknown", why: `cannot lock its process ${pid}'s owner lock` };
  } finally {
    file.close(); // releases the lock, if taken
  }
}

/**
 * Say, in this process's owner lock, that it gave up run `id` without
 * recording its end (`RunRecorder.close`): it lives on, but runs it no
 * more, so a reader does not take the run for a live one. Internal.
 */
export function runGivenUp(id: string): void {
  if (held === undefined) return;
  try {
    held.file.seekSync(0, Deno.SeekMode.End);
    const line = new TextEncoder().encode(`${id}\n`);
    let written = 0;
    while (written < line.length) written += held.file.writeSync(line.subarray(written));
  } catch {
    // Not said: the run reads as alive while this process lives, as a stalled one.
  }
}

/** Whether the owner lock at `path` (held by a live process) says it gave up run `id`. */
function givenUp(path: string, id: string): boolean {
  try {
    return Deno.readTextFileSync(path).split("\n").includes(id);
  } catch {
    return false;
  }
}

/** Whether run `id` is being run by this process (set by `recorder.ts`). */
let inFlightHere: (id: string) => boolean = () => false;

/**
 * Tell {@linkcode ownerLiveness}'s callers which runs this process is
 * running: a run whose owner is this very process is alive only while its
 * recorder is (a run given up without its end, `RunRecorder.close`, is not).
 * Internal: `recorder.ts` calls it once.
 */
export function setRunsInFlightHere(isInFlight: (id: string) => boolean): void {
  inFlightHere = isInFlight;
}

/** Whether run `id` is in flight in this process (see {@linkcode setRunsInFlightHere}). */
export function runInFlightHere(id: string): boolean {
  return inFlightHere(id);
}
