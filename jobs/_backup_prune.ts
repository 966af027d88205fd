/**
 * Pruning backups: deleting the backups a retention policy no longer keeps
 * (`keep`: the N newest per store; `keepFor`: those younger than an age), for
 * the `backup` job's `keep`/`keepFor` options and `flowstate backup prune`.
 * `jobs/backup.ts` re-exports the public names.
 *
 * ## What may be deleted
 *
 * Only files Flowstate itself wrote in the directory, of the stores named: a
 * file is a candidate when its name is one the backup job gives
 * (`<store>-<timestamp>[-inc][-N].fsbackup`) AND its first line is a valid
 * backup header naming that store, of the kind its name says. Anything else
 * is never touched: other files, backups named by hand (`--out`), files whose
 * header cannot be read (reported as `skipped`). A deleted backup's
 * `<file>.sha256` goes with it (when it is a checksum line).
 *
 * ## Which project
 *
 * Several projects may write into one directory (`backup --all --out
 * /srv/backups`), each with a store of the same name (`default`). The
 * backup job writes the `origin` of each backup in its header (a SHA-256 of
 * the project home's real path and the store name, see
 * `backupOrigin`); with `project` (the project's home), a file is a
 * candidate only when its `origin` is that project's store's. Another
 * project's backups are not looked at (nor its chains). A backup written by
 * an older version has no `origin`: it is a candidate only in the project's
 * own `<home>/backups`; elsewhere it is left alone and reported in
 * `skipped`. Without `project`, the header's store name alone decides (for a
 * directory only one project writes into).
 *
 * ## Chains
 *
 * An incremental backup is restored after its full backup and the increments
 * before it, so a full backup and every increment based on it (their header's
 * `base`: the full backup's SHA-256) form a chain that is kept or deleted
 * whole: when any file of a chain is kept, every file of it is. A chain is
 * kept when one of its files is among the `keep` newest candidates of its
 * store, younger than `keepFor` (by the header's `createdAt`), protected (the
 * backup just written), or a backup not named by Flowstate (a hand-named
 * increment keeps its full backup). Increments whose full backup is not in
 * the directory form a chain of their own. Within a chain, files are deleted
 * newest first, the full backup last: a run stopped half-way (Ctrl-C, a file
 * that cannot be deleted) leaves a full backup with its older increments,
 * still restorable.
 *
 * ## Increments written meanwhile
 *
 * Another process may write an increment (`backup --since F1`) while a prune
 * deletes F1's chain. Before each delete, the directory is listed again: an
 * increment written since the first listing on the chain (its `base`) keeps
 * the rest of the chain (`kept`, reason `"chain"`). The increment, for its
 * part, checks just before its rename that the backup it follows is still
 * the file it read, and fails (leaving nothing) when it is not. What is left
 * is a window of a few system calls: an increment that checks and renames
 * between the prune's last listing and its delete of that very file.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { sha256Hex } from "../src/_sha256.ts";
import { type Duration, parseDuration } from "../src/duration.ts";
import { messageOf } from "../src/errors.ts";
import { parseChecksumLine, readGzipLines, sha256File } from "../src/archive_format.ts";
import { BACKUP_EXTENSION, type BackupHeader } from "./_backup_format.ts";
import { checkBackupHeader } from "./_restore_verify.ts";

/**
 * Options for {@linkcode pruneBackups}: which stores, what to keep, and how.
 * At least one of `keep` and `keepFor` is required; with both, a backup is
 * kept when either keeps it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { backupStore, pruneBackups, type PruneBackupsOptions } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * let now = Date.UTC(2026, 0, 1);
 * for (const name of ["main-20260101T000000000Z", "main-20260102T000000000Z"]) {
 *   await backupStore(store, `${dir}/${name}.fsbackup`, { clock: { now: () => now } });
 *   now += 86_400_000;
 * }
 * const options: PruneBackupsOptions = { stores: ["main"], keepFor: "1d", now, dryRun: true };
 * const result = await pruneBackups(dir, options);
 * assert.deepEqual(result.removed.map((r) => r.name), ["main-20260101T000000000Z.fsbackup"]);
 * assert.equal((await Array.fromAsync(Deno.readDir(dir))).length, 4); // a dry run deletes nothing
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface PruneBackupsOptions {
  /** The stores whose backups to prune (their names as configured). */
  stores: readonly string[];
  /** Keep the `keep` newest backups of each store (an integer >= 1), with their chains. */
  keep?: number;
  /** Keep the backups younger than this (`"30d"`; a number is milliseconds), with their chains. */
  keepFor?: Duration;
  /** Files never deleted, nor their chains (the backups just written). */
  protect?: readonly string[];
  /**
   * The home of the project whose stores these are: only the backups it
   * wrote (their header's `origin`) are pruned, and those with no `origin`
   * (written by an older version) only in `<project>/backups`. Without it,
   * every backup whose header names one of the stores may be pruned: give it
   * for a directory other projects write into too.
   */
  project?: string;
  /**
   * Backups about to be written, counted as the newest of their store (a dry
   * run of a backup job: what it would then delete). `base`: an increment's
   * chain (the SHA-256 of its full backup), kept whole. `named: false`: one
   * written under a name of your own, which takes none of the `keep` places.
   */
  pending?: readonly { store: string; createdAt: number; base?: string; named?: boolean }[];
  /** Say what would be deleted, delete nothing. */
  dryRun?: boolean;
  /** Stops between two files: what was deleted stays deleted, the rest stays. */
  signal?: AbortSignal;
  /** The time ages are counted from (ms since the epoch; default: now). */
  now?: number;
  /** Receives a line per file deleted (or that would be), and warnings. */
  log?: (message: string, level?: "info" | "warn") => void;
}

/**
 * One backup file {@linkcode pruneBackups} deleted (or would delete), or
 * kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { backupStore, type PrunedBackup, pruneBackups } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * await backupStore(store, `${dir}/main-20260101T000000000Z.fsbackup`);
 * const { kept } = await pruneBackups(dir, { stores: ["main"], keep: 1 });
 * const newest: PrunedBackup = kept[0];
 * assert.deepEqual([newest.store, newest.kind, newest.reason], ["main", "full", "newest"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface PrunedBackup {
  /** The store it is a backup of. */
  store: string;
  /** The file (absolute). */
  file: string;
  /** Its name in the directory. */
  name: string;
  /** A full backup or an increment. */
  kind: "full" | "increment";
  /** When it was taken (its header's `createdAt`, ISO 8601). */
  createdAt: string;
  /** Its size plus its `.sha256` file's, in bytes. */
  bytes: number;
  /**
   * Why it is kept (on a kept backup): `"newest"` (one of the `keep` newest),
   * `"recent"` (younger than `keepFor`), `"protected"` (just written),
   * `"foreign"` (not named by Flowstate: never pruned), `"chain"` (its chain
   * holds a kept backup).
   */
  reason?: "newest" | "recent" | "protected" | "foreign" | "chain";
}

/**
 * What {@linkcode pruneBackups} did (or, in a dry run, would do).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pruneBackups, type PruneBackupsResult } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/main-20260101T000000000Z.fsbackup`, "not a backup");
 * const result: PruneBackupsResult = await pruneBackups(dir, { stores: ["main"], keep: 1 });
 * assert.deepEqual(result.removed, []);
 * assert.match(result.skipped[0].reason, /not a gzip file/); // named like one, left alone
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface PruneBackupsResult {
  /** The directory pruned (absolute). */
  dir: string;
  /** The stores pruned. */
  stores: string[];
  /** The files deleted (would be, in a dry run), in the order they were. */
  removed: PrunedBackup[];
  /** Bytes freed (would be), `.sha256` files included. */
  bytes: number;
  /** The backups of those stores kept, newest first, each with its `reason`. */
  kept: PrunedBackup[];
  /** Files named like a backup of those stores but not recognised as one: left alone. */
  skipped: { file: string; reason: string }[];
  /** Files that could not be deleted (their chain's older files were then kept). */
  failed: { file: string; error: string }[];
  /** `true` in a dry run. */
  dryRun: boolean;
  /** `true` when `signal` stopped it before every file was deleted. */
  cancelled: boolean;
}

/** A backup file found in the directory, with what its header says. */
interface Found extends PrunedBackup {
  header: BackupHeader;
  at: number;
  /** Flowstate named it (a candidate for deletion). */
  ours: boolean;
  /** The name's timestamp and `-N` suffix, to order files taken in the same ms. */
  order: [string, number];
}

/** The most a header line may take, decompressed (a header is ~300 bytes). */
const MAX_HEADER_CHARS = 64 * 1024;

/** Which store a name the backup job gives is of, and its parts. */
function nameParts(
  name: string,
): { prefix: string; stamp: string; increment: boolean; n: number } | undefined {
  const match = /^(.+)-(\d{8}T\d{9}Z)(-inc)?(?:-(\d+))?\.fsbackup$/.exec(name);
  if (match === null) return undefined;
  return {
    prefix: match[1],
    stamp: match[2],
    increment: match[3] !== undefined,
    n: match[4] === undefined ? 0 : Number(match[4]),
  };
}

/** A store name made safe for a file name (as the backup job names its files). */
export function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, "_");
}

/**
 * The `origin` the backup job writes in a backup's header: a SHA-256 (hex) of
 * the project home's real path (as given when it does not exist) and the
 * store name. The same for every run of one project; another project's
 * differs (another home), so does another store's.
 */
export async function backupOrigin(home: string, store: string): Promise<string> {
  return sha256Hex(`flowstate.backup.origin\0${await realPathOf(home)}\0${store}`);
}

/** The real path of `path` (symlinks resolved), or its absolute path when it does not exist. */
async function realPathOf(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return resolve(path);
    throw err;
  }
}

/** The header of a backup file, checked; throws with the reason it is not one. */
async function readHeader(path: string): Promise<BackupHeader> {
  let line: string | undefined;
  try {
    // Only the first line is read (the generator's return stops the stream).
    for await (const first of readGzipLines(path, { what: "", maxLineChars: MAX_HEADER_CHARS })) {
      line = first;
      break;
    }
  } catch (err) {
    throw new Error(messageOf(err).replace(/^: /, ""));
  }
  if (line === undefined) throw new Error("it is empty");
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new Error("its first line is not JSON (not a Flowstate backup)");
  }
  try {
    return checkBackupHeader(parsed, "", path);
  } catch (err) {
    throw new Error(messageOf(err).replace(/^: /, ""));
  }
}

/** The size of `path`, or 0 when it is gone. */
async function sizeOf(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}

/** `<file>.sha256` when it is a checksum line (what the backup job writes), else `undefined`. */
async function checksumFileOf(file: string): Promise<string | undefined> {
  const path = `${file}.sha256`;
  try {
    const info = await Deno.lstat(path);
    if (!info.isFile || info.size > 4096) return undefined;
    return parseChecksumLine(await Deno.readTextFile(path)) === undefined ? undefined : path;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * Check a retention policy (and the store names): `keepFor` in ms, or a
 * `TypeError`/`RangeError` saying what is wrong.
 */
export function checkPrunePolicy(options: PruneBackupsOptions): number | undefined {
  const what = "Cannot prune backups";
  if (!Array.isArray(options.stores) || options.stores.some((s) => typeof s !== "string")) {
    throw new TypeError(`${what}: stores must be an array of store names`);
  }
  if (options.keep === undefined && options.keepFor === undefined) {
    throw new TypeError(
      `${what}: say what to keep: keep (the N newest backups of each store), keepFor (an age ` +
        `like "30d"), or both`,
    );
  }
  if (
    options.keep !== undefined &&
    (typeof options.keep !== "number" || !Number.isInteger(options.keep) || options.keep < 1)
  ) {
    throw new RangeError(
      `${what}: keep must be an integer >= 1 (the newest backup of a store is always kept), got ${
        JSON.stringify(options.keep)
      }`,
    );
  }
  return options.keepFor === undefined ? undefined : parseDuration(options.keepFor, "keepFor");
}

/**
 * Delete the backups in `dir` that the policy no longer keeps: for each
 * store of `options.stores`, the backup files Flowstate named there
 * (`<store>-<timestamp>[-inc][-N].fsbackup`, with a valid header naming the
 * store) that are neither among its `keep` newest nor younger than
 * `keepFor`, a full backup and its increments together (see the module
 * documentation). Never touches any other file; never deletes a `protect`ed
 * file nor its chain. A file that cannot be deleted is reported in `failed`
 * (and its chain's older files are kept); `signal` stops it between two
 * files. A directory that does not exist has nothing to prune.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@flowstate/core";
 * import { backupStore, pruneBackups } from "@flowstate/core/jobs";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await openStore({ plugin: "memory" }, { name: "main" });
 * for (const day of ["01", "02", "03"]) {
 *   await backupStore(store, `${dir}/main-202601${day}T040000000Z.fsbackup`);
 * }
 * await Deno.writeTextFile(`${dir}/notes.txt`, "mine");
 * const result = await pruneBackups(dir, { stores: ["main"], keep: 2 });
 * assert.equal(result.removed.length, 1); // the oldest, with its .sha256 file
 * assert.ok(result.bytes > 0);
 * const left = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
 * assert.deepEqual(left, [
 *   "main-20260102T040000000Z.fsbackup",
 *   "main-20260102T040000000Z.fsbackup.sha256",
 *   "main-20260103T040000000Z.fsbackup",
 *   "main-20260103T040000000Z.fsbackup.sha256",
 *   "notes.txt",
 * ]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function pruneBackups(
  dir: string,
  options: PruneBackupsOptions,
): Promise<PruneBackupsResult> {
  const keepForMs = checkPrunePolicy(options);
  const root = resolve(dir);
  const stores = [...new Set(options.stores)];
  const result: PruneBackupsResult = {
    dir: root,
    stores,
    removed: [],
    bytes: 0,
    kept: [],
    skipped: [],
    failed: [],
    dryRun: options.dryRun ?? false,
    cancelled: false,
  };
  const now = options.now ?? Date.now();
  const protect = new Set((options.protect ?? []).map((f) => resolve(f)));
  const byPrefix = new Map<string, string[]>();
  for (const store of stores) {
    byPrefix.set(fileSafe(store), [...(byPrefix.get(fileSafe(store)) ?? []), store]);
  }
  const found = new Map<string, Found[]>(stores.map((s) => [s, []]));
  // With a project: its stores' origins, and whether this is its own backups directory.
  const origins = options.project === undefined ? undefined : new Map(
    await Promise.all(
      stores.map(async (s) => [s, await backupOrigin(options.project!, s)] as const),
    ),
  );
  const ownDir = options.project === undefined ||
    await realPathOf(root) === await realPathOf(join(options.project, "backups"));
  let names: string[];
  try {
    names = (await Array.fromAsync(Deno.readDir(root)))
      .filter((e) => e.isFile && e.name.endsWith(BACKUP_EXTENSION)).map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return result;
    throw err;
  }
  for (const name of names) {
    const file = join(root, name);
    const parts = nameParts(name);
    // Named by the job for one of the stores: a candidate, once its header agrees.
    const named = parts === undefined ? undefined : byPrefix.get(parts.prefix);
    let header: BackupHeader;
    try {
      header = await readHeader(file);
    } catch (err) {
      if (named !== undefined) result.skipped.push({ file, reason: messageOf(err) });
      continue; // not a backup: never ours to judge
    }
    if (!found.has(header.store)) continue; // another store's
    if (origins !== undefined && header.origin !== origins.get(header.store)) {
      const namedOurs = named?.includes(header.store) ?? false;
      if (header.origin === undefined) {
        // Written before backups said whose they are: ours only in the project's own directory.
        if (!ownDir) {
          if (namedOurs) {
            result.skipped.push({
              file,
              reason: `was written by an older version, no project identity (other projects ` +
                `may write into ${root}); delete it by hand if it is this project's and not needed`,
            });
          }
          continue;
        }
      } else {
        // Another project's: not looked at, but said when it is in this project's own directory.
        if (ownDir && namedOurs) {
          result.skipped.push({
            file,
            reason: `was written by another project (its header's origin is not this project's ` +
              `store's: another home, or this one moved); delete it by hand if it is not needed`,
          });
        }
        continue;
      }
    }
    const at = Date.parse(header.createdAt);
    const kind = header.kind === "increment" ? "increment" : "full";
    let ours = named !== undefined && named.includes(header.store);
    if (ours && (Number.isNaN(at) || parts!.increment !== (kind === "increment"))) {
      result.skipped.push({
        file,
        reason: Number.isNaN(at)
          ? `its header's createdAt is not a time (${JSON.stringify(header.createdAt)})`
          : `its name says ${parts!.increment ? "an increment" : "a full backup"}, its header ${
            kind === "full" ? "a full backup" : "an increment"
          }`,
      });
      ours = false;
    }
    found.get(header.store)!.push({
      store: header.store,
      file,
      name,
      kind,
      createdAt: header.createdAt,
      bytes: 0,
      header,
      at: Number.isNaN(at) ? Infinity : at,
      ours,
      order: parts === undefined ? ["", 0] : [parts.stamp, parts.n],
    });
  }

  // The names listed (their headers were read above), then those found since.
  const seen = new Map<string, BackupHeader | null>(names.map((n) => [n, null]));
  for (const store of stores) {
    const files = found.get(store)!;
    const plan = await planStore(files, {
      keep: options.keep,
      keepForMs,
      now,
      protect,
      pending: (options.pending ?? []).filter((p) => p.store === store),
    });
    for (const f of plan.kept) {
      result.kept.push(await withBytes(f));
    }
    chains: for (const chain of plan.doomed) {
      // Newest first, the full backup last: a stop half-way leaves a restorable chain.
      for (const f of chain) {
        if (options.signal?.aborted) {
          result.cancelled = true;
          return result;
        }
        if (!result.dryRun) {
          // An increment of this chain written since the listing (`backup --since` in another
          // process) needs the rest of it: it is kept.
          const joined = await joinedSince(root, seen, store, chain);
          if (joined !== undefined) {
            options.log?.(
              `kept the rest of the chain of ${f.file}: ${joined} was written on it meanwhile`,
            );
            for (const rest of chain.slice(chain.indexOf(f))) {
              result.kept.push({ ...(await withBytes(rest)), reason: "chain" });
            }
            continue chains;
          }
        }
        const entry = await withBytes(f);
        if (!result.dryRun) {
          try {
            const sidecar = await checksumFileOf(f.file);
            await Deno.remove(f.file);
            if (sidecar !== undefined) await Deno.remove(sidecar).catch(() => {});
          } catch (err) {
            if (!(err instanceof Deno.errors.NotFound)) {
              result.failed.push({ file: f.file, error: messageOf(err) });
              options.log?.(`could not delete backup ${f.file}: ${messageOf(err)}`, "warn");
              // The rest of this chain (older, the full backup) is kept: still restorable.
              for (const rest of chain.slice(chain.indexOf(f) + 1)) {
                result.kept.push({ ...(await withBytes(rest)), reason: "chain" });
              }
              break;
            }
          }
        }
        const { reason: _, ...removed } = entry;
        result.removed.push(removed);
        result.bytes += entry.bytes;
        options.log?.(
          `${
            result.dryRun ? "would delete" : "deleted"
          } backup ${f.file} (${f.kind} of store "${store}", taken ${f.createdAt})`,
        );
      }
    }
  }
  return result;
}

/**
 * A backup file in `root` that was not there when it was listed (`seen`:
 * the names listed, then each new one with its header, or `null` when it is
 * not a backup) and is an increment of `store` on `chain` (based on its full
 * backup): its path, or `undefined`.
 */
async function joinedSince(
  root: string,
  seen: Map<string, BackupHeader | null>,
  store: string,
  chain: Found[],
): Promise<string | undefined> {
  for await (const e of Deno.readDir(root)) {
    if (!e.isFile || !e.name.endsWith(BACKUP_EXTENSION) || seen.has(e.name)) continue;
    seen.set(e.name, await readHeader(join(root, e.name)).catch(() => null));
  }
  let base: string | undefined;
  for (const [name, header] of [...seen].sort(([a], [b]) => a.localeCompare(b))) {
    if (header?.kind !== "increment" || header.store !== store) continue;
    const full = chain.find((f) => f.kind === "full");
    base ??= full !== undefined
      ? (await sha256File(full.file).catch(() => undefined))?.sha256
      : chain.find((f) => f.kind === "increment")!.header.base;
    if (header.base === base) return join(root, name);
  }
  return undefined;
}

/** The public fields of a found file, with its bytes (and its `.sha256`'s). */
async function withBytes(f: Found): Promise<PrunedBackup> {
  const sidecar = await checksumFileOf(f.file);
  const bytes = await sizeOf(f.file) + (sidecar === undefined ? 0 : await sizeOf(sidecar));
  return {
    store: f.store,
    file: f.file,
    name: f.name,
    kind: f.kind,
    createdAt: f.createdAt,
    bytes,
    ...(f.reason !== undefined ? { reason: f.reason } : {}),
  };
}

/** Newest first: by `createdAt`, then by the name's timestamp and `-N`. */
function newestFirst(a: { at: number; order: [string, number] }, b: typeof a): number {
  return b.at - a.at || b.order[0].localeCompare(a.order[0]) || b.order[1] - a.order[1];
}

/**
 * Which backups of one store are kept (each with its reason) and which
 * chains are deleted (each newest first, its full backup last).
 */
async function planStore(
  files: Found[],
  policy: {
    keep: number | undefined;
    keepForMs: number | undefined;
    now: number;
    protect: Set<string>;
    pending: readonly { createdAt: number; base?: string; named?: boolean }[];
  },
): Promise<{ kept: Found[]; doomed: Found[][] }> {
  // Chains: a full backup is keyed by its SHA-256 (what its increments name as `base`), but
  // only read when the store has increments; an increment by its `base`.
  const hasIncrements = files.some((f) => f.kind === "increment") ||
    policy.pending.some((p) => p.base !== undefined);
  const chainOf = new Map<Found, string>();
  for (const f of files) {
    chainOf.set(
      f,
      f.kind === "increment"
        ? f.header.base!
        : hasIncrements
        ? (await sha256File(f.file)).sha256
        : `file:${f.file}`,
    );
  }
  const keptChains = new Set<string>();
  for (const p of policy.pending) if (p.base !== undefined) keptChains.add(p.base);
  const candidates = files.filter((f) => f.ours).sort(newestFirst);
  // The newest backup is always kept (keepFor alone never empties a store's backups, even
  // after weeks without one). A pending backup is the newest: it takes one of the places.
  const named = policy.pending.filter((p) => p.named !== false).length;
  const places = Math.max(0, (policy.keep ?? 1) - named);
  candidates.forEach((f, i) => {
    if (policy.protect.has(f.file)) f.reason = "protected";
    else if (i < places) f.reason = "newest";
    else if (policy.keepForMs !== undefined && policy.now - f.at < policy.keepForMs) {
      f.reason = "recent";
    }
  });
  for (const f of files) {
    if (!f.ours) f.reason = "foreign";
    if (f.reason !== undefined) keptChains.add(chainOf.get(f)!);
  }
  const kept: Found[] = [];
  const doomed = new Map<string, Found[]>();
  for (const f of [...files].sort(newestFirst)) {
    const chain = chainOf.get(f)!;
    if (keptChains.has(chain)) {
      f.reason ??= "chain";
      kept.push(f);
    } else {
      doomed.set(chain, [...(doomed.get(chain) ?? []), f]);
    }
  }
  // Within a chain: increments newest first, then the full backup.
  const chains = [...doomed.values()].map((chain) => [
    ...chain.filter((f) => f.kind === "increment"),
    ...chain.filter((f) => f.kind === "full"),
  ]);
  // The oldest chain first.
  return { kept, doomed: chains.reverse() };
}
