/**
 * `flowstate run --watch <flow.yaml>`: run a flow, then run it again each
 * time a file it uses changes, until Ctrl-C (or SIGTERM, SIGHUP).
 *
 * The files watched: the flow file, the local sub-flow files its `type: flow`
 * nodes name (and theirs, recursively), the local custom node modules of
 * those flows with the local files they import (as the sandbox pool follows
 * them, `_module_files.ts`), the `--inputs` file and the config file. They
 * are found anew after each run (a sub-flow referenced by an edit is watched
 * from then on; while the flow does not parse, the files of the last run that
 * parsed stay watched). Their folders are watched (editors replace a file by
 * renaming another over it), a symlink's target's folder too, and each
 * folder's parent (a folder removed and made again is watched again), and
 * events for other names ignored; a burst of
 * events is one change once quiet for 150 ms, and only
 * a file whose status (times, size, inode) differs counts.
 *
 * Events alone can miss a change: Deno hands each watcher at most 16 events
 * that its program has not read yet and drops the rest (a busy process next
 * to a busy folder loses the one that mattered), and on network and some
 * container file systems no event comes at all. So the files' status is also
 * compared every second (`FLOWSTATE_WATCH_POLL_MS`), a few `stat` calls; with
 * `FLOWSTATE_WATCH=poll` that comparison is all there is (no file events).
 *
 * A change while a run is in progress cancels that run (recorded
 * `cancelled`, as Ctrl-C would) and starts a new one, as `deno run --watch`
 * restarts. An invalid flow, input or config is reported as `run` reports it
 * and watching goes on. The first stop signal cancels a run in progress, waits
 * for its end to be recorded and exits 130 (SIGINT), 143 (SIGTERM) or 129
 * (SIGHUP); a second one exits at once (see `onStopSignals`).
 *
 * @module
 */
import { stampOf } from "../flow/_module_files.ts";
import { nodeFiles } from "../flow/_node_files.ts";
import type { ParsedFlow } from "../flow/parse.ts";
import { envSetting } from "../_env.ts";
import { dirname, relative, resolve } from "../_path.ts";
import { type GlobalOptions, onStopSignals, STOP_SIGNALS } from "./common.ts";
import { printable } from "./format.ts";
import { UsageError } from "./input.ts";
import { jsonLogs, logEvent } from "./log_format.ts";
import { report } from "./report.ts";
import { runCommand, type RunOptions } from "./run.ts";

/** How long the watched files must be quiet after an event before a change counts. */
const WATCH_DEBOUNCE_MS = 150;

/** The environment variable that says how `--watch` notices changes: `events` (default) or `poll`. */
export const WATCH_MODE_ENV = "FLOWSTATE_WATCH";

/** The environment variable that sets how often (ms) `--watch` compares the files' status. */
export const WATCH_POLL_ENV = "FLOWSTATE_WATCH_POLL_MS";

/** How often `--watch` compares the watched files' status when {@linkcode WATCH_POLL_ENV} is unset. */
export const WATCH_POLL_MS = 1000;

/** How `--watch` notices changes: file events (or not), and the status comparison's period. */
export interface WatchMode {
  /** Whether file events are listened to (`FLOWSTATE_WATCH=poll`: no). */
  events: boolean;
  /** Every how many milliseconds the watched files' status is compared. */
  pollMs: number;
}

/**
 * The watch mode the environment asks for ({@linkcode WATCH_MODE_ENV},
 * {@linkcode WATCH_POLL_ENV}), or a problem that says which value is wrong and
 * what to write instead. Without permission to read the variables, the defaults.
 *
 * @example
 * ```ts
 * import { watchMode } from "./run_watch.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(watchMode({}), { events: true, pollMs: 1000 });
 * assert.deepEqual(
 *   watchMode({ FLOWSTATE_WATCH: "poll", FLOWSTATE_WATCH_POLL_MS: "250" }),
 *   { events: false, pollMs: 250 },
 * );
 * assert.ok("problem" in watchMode({ FLOWSTATE_WATCH: "inotify" }));
 * ```
 */
export function watchMode(
  env?: Readonly<Record<string, string | undefined>>,
): WatchMode | { problem: string } {
  const mode = (envSetting(WATCH_MODE_ENV, env) ?? "").trim();
  if (mode !== "" && mode !== "events" && mode !== "poll") {
    return {
      problem: `${WATCH_MODE_ENV}=${JSON.stringify(mode)} is not a watch mode: write ` +
        `${WATCH_MODE_ENV}=poll (compare the files' status only, for file systems that send no ` +
        `events: network shares, some container mounts) or ${WATCH_MODE_ENV}=events, or unset it`,
    };
  }
  const raw = (envSetting(WATCH_POLL_ENV, env) ?? "").trim();
  const pollMs = raw === "" ? WATCH_POLL_MS : /^\d{1,7}$/.test(raw) ? Number(raw) : NaN;
  if (!(pollMs >= 50 && pollMs <= 3_600_000)) {
    return {
      problem: `${WATCH_POLL_ENV}=${JSON.stringify(raw)} is not a period from 50 to 3600000 ` +
        `milliseconds; write e.g. ${WATCH_POLL_ENV}=500, or unset it for ${WATCH_POLL_MS}`,
    };
  }
  return { events: mode !== "poll", pollMs };
}

/**
 * `run --watch <flow>`: runs until a stop signal; resolves the exit code it
 * brings (130, 143, 129).
 *
 * @example
 * ```ts ignore
 * const code = await runWatchCommand("flow.yaml", { quiet: false }, {});
 * Deno.exit(code); // 130 after Ctrl-C
 * ```
 */
export async function runWatchCommand(
  file: string,
  options: RunOptions,
  global: GlobalOptions,
): Promise<number> {
  if (options.inputs === "-") {
    throw new UsageError(
      "--watch cannot read --inputs from stdin (-): it reads the inputs again on every run; put them in a file (--inputs inputs.json)",
    );
  }
  const mode = watchMode();
  if ("problem" in mode) throw new UsageError(mode.problem);
  const cwd = Deno.cwd();
  const stop = new AbortController();
  let stopCode = STOP_SIGNALS.SIGINT;
  using _signals = onStopSignals(
    (name) => {
      stopCode = STOP_SIGNALS[name];
      say(
        `watch: stopping (${name}; ${
          name === "SIGINT" ? "press Ctrl-C" : `send ${name}`
        } again to exit at once)…`,
      );
      stop.abort();
    },
    (name) => `${name} again: exiting at once`,
  );
  const stopped = new Promise<"stopped">((resolve) =>
    stop.signal.addEventListener("abort", () => resolve("stopped"), { once: true })
  );
  // Always watched: what the command line names, and the config file (created later, too).
  const given = [resolve(cwd, file), resolve(cwd, global.config ?? "flowstate.yaml")];
  if (options.inputs !== undefined) given.push(resolve(cwd, options.inputs));
  let used = new Set<string>(given);
  await using watcher = new Watcher(mode);
  if (!mode.events) {
    say(`watch: comparing the files' status every ${mode.pollMs} ms (no file events)`);
  }
  let changed: string | undefined;
  while (!stop.signal.aborted) {
    if (changed !== undefined) {
      say(`watch: ${printable(shown(changed, cwd))} changed, running again (Ctrl-C to stop)`);
    }
    watcher.watch(used);
    const cancel = new AbortController();
    const onStop = () => cancel.abort("stopped");
    stop.signal.addEventListener("abort", onStop, { once: true });
    let parsed: { flow: ParsedFlow; configFile: string | null } | undefined;
    const run = runCommand(file, options, global, {
      signal: cancel.signal,
      onParsed: (flow, configFile) => {
        parsed = { flow, configFile };
        // Watched before its modules and sub-flows load: an edit of one of them during this run
        // (the first run's included, or one an edit just added) is a change, not the status the
        // watch starts from.
        watcher.watch(usedBy(given, parsed, cwd));
      },
    }).catch((err) => report(err, global.debug === true));
    const first = await Promise.race([run.then(() => "ended" as const), watcher.next()]);
    if (first !== "ended") {
      // Restarted as deno --watch does: this run is cancelled, its end recorded, then the next.
      cancel.abort("a watched file changed");
      await run;
      stop.signal.removeEventListener("abort", onStop);
      changed = first;
      continue;
    }
    stop.signal.removeEventListener("abort", onStop);
    if (stop.signal.aborted) break;
    // Found anew from this run's flow; one that did not parse keeps the last run's files.
    if (parsed !== undefined) used = usedBy(given, parsed, cwd);
    else used = new Set([...used, ...given]);
    watcher.watch(used);
    say(`watch: waiting for changes to ${used.size} file${used.size === 1 ? "" : "s"}`);
    const next = await Promise.race([watcher.next(), stopped]);
    if (next === "stopped") break;
    changed = next;
  }
  return stopCode;
}

/** A line of the watch on stderr (a JSON log line with `--log-format json`). */
function say(line: string): void {
  if (jsonLogs()) logEvent("info", line, { event: "watch" });
  else console.error(line);
}

/** `path` as a message shows it: relative to `cwd` when inside it. */
function shown(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel !== "" && !rel.startsWith("..") ? rel : path;
}

/** The files watched for a run of `parsed`: those `given`, its config file and {@linkcode filesOf} it. */
function usedBy(
  given: readonly string[],
  parsed: { flow: ParsedFlow; configFile: string | null },
  cwd: string,
): Set<string> {
  return new Set([
    ...given,
    ...(parsed.configFile === null ? [] : [parsed.configFile]),
    ...filesOf(parsed.flow, cwd),
  ]);
}

/**
 * The files a flow uses, besides itself: its local sub-flow files (a `type:
 * flow` node's literal `with.flow` path, followed into theirs) and the local
 * custom node modules of each, with the local files those import.
 */
function filesOf(parsed: ParsedFlow, cwd: string): Set<string> {
  const top = resolve(cwd, parsed.file ?? "");
  const files = new Set<string>([top]);
  const seen = new Set<string>([top]);
  const nodes = (parsed.definition as { nodes?: unknown } | null)?.nodes;
  if (!Array.isArray(nodes)) return files;
  for (const node of nodes) {
    for (const file of nodeFiles(node, dirname(top), seen)) files.add(file);
  }
  return files;
}

/**
 * Watches files through their folders: {@linkcode Watcher.next} resolves
 * with the first watched file whose status changed, once events have been
 * quiet for `WATCH_DEBOUNCE_MS`. A symlink's target folder is watched too (an
 * edit of the target changes the link's file), and each folder's parent (a
 * folder removed and made again, or made after the watch began, is watched
 * again; its files' status is then compared). Every `mode.pollMs` the
 * files' status is compared as well, as an event would make it (events can be
 * dropped, or never come); without `mode.events` only that.
 */
class Watcher implements AsyncDisposable {
  /** The watched files and their status when they were (last) taken. */
  #stamps = new Map<string, string>();
  /** The paths whose events count: the files, their symlinks' targets, and their folders. */
  #names = new Set<string>();
  /** The folders the files are in (and their targets'), watched when they exist. */
  #dirs = new Set<string>();
  /** One watcher per folder. */
  #folders = new Map<string, Deno.FsWatcher>();
  #waiting: ((path: string) => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pending = false;
  readonly #events: boolean;
  readonly #poll: ReturnType<typeof setInterval>;
  #disposed = false;

  constructor(mode: WatchMode) {
    this.#events = mode.events;
    this.#poll = setInterval(() => this.#check(), mode.pollMs);
  }

  /** The periodic comparison: a file whose status differs is an event (then settled as one). */
  #check(): void {
    // A settle is coming (or kept for the next wait): this comparison would only delay it.
    if (this.#disposed || this.#pending) return;
    // A folder made since (its parent's event lost): watched from now on.
    if (this.#events) this.#follow();
    for (const [file, stamp] of this.#stamps) {
      if (stampOf(file) === stamp) continue;
      this.#event();
      return;
    }
  }

  /** Something happened: settle once quiet for `WATCH_DEBOUNCE_MS`. */
  #event(): void {
    this.#pending = true;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#settle(), WATCH_DEBOUNCE_MS);
  }

  /** Watch exactly `files` from now on; their status now is what a change differs from. */
  watch(files: Iterable<string>): void {
    const next = new Map<string, string>();
    for (const file of files) next.set(file, this.#stamps.get(file) ?? stampOf(file));
    this.#stamps = next;
    this.#follow();
  }

  /** Find the folders (and symlinks' targets) of the files anew, and watch what exists of them. */
  #follow(): void {
    const names = new Set<string>();
    const dirs = new Set<string>();
    for (const file of this.#stamps.keys()) {
      names.add(file);
      dirs.add(dirname(file));
      let real: string | undefined;
      try {
        real = Deno.realPathSync(file);
      } catch {
        real = undefined; // missing (yet), or a dangling link: its folder is watched all the same
      }
      if (real !== undefined && real !== file) {
        names.add(real);
        dirs.add(dirname(real));
      }
    }
    for (const dir of dirs) names.add(dir);
    this.#names = names;
    this.#dirs = dirs;
    if (!this.#events) return;
    const folders = new Set<string>();
    for (const dir of dirs) {
      folders.add(dir);
      const parent = dirname(dir);
      if (parent !== dir) folders.add(parent);
    }
    for (const [folder, watcher] of this.#folders) {
      if (folders.has(folder)) continue;
      watcher.close();
      this.#folders.delete(folder);
    }
    for (const folder of folders) this.#open(folder);
  }

  /** Watch `folder` if it is not yet and exists. */
  #open(folder: string): void {
    if (this.#disposed || this.#folders.has(folder)) return;
    let watcher: Deno.FsWatcher;
    try {
      watcher = Deno.watchFs(folder, { recursive: false });
    } catch {
      return; // a folder that does not exist (yet): its parent's events say when it does
    }
    this.#folders.set(folder, watcher);
    void this.#listen(watcher);
  }

  /** Resolves with the first watched file that changed (its new status is then the one kept). */
  next(): Promise<string> {
    return new Promise((resolve) => {
      this.#waiting = resolve;
      // Events came while nobody waited, and are quiet now.
      if (this.#pending && this.#timer === undefined) this.#settle();
    });
  }

  async #listen(watcher: Deno.FsWatcher): Promise<void> {
    try {
      for await (const event of watcher) {
        if (this.#disposed) return;
        if (event.kind === "access") continue;
        if (!event.paths.some((path) => this.#names.has(path))) continue;
        for (const path of event.paths) {
          if (!this.#dirs.has(path)) continue;
          // A watched folder removed or made (again): the old watcher sees nothing of the new one.
          this.#folders.get(path)?.close();
          this.#folders.delete(path);
          this.#open(path);
        }
        this.#event();
      }
    } catch {
      // Closed, or the folder went away: its files are looked at when watched again.
    }
  }

  /** After a quiet spell: the first file whose status changed goes to whoever waits. */
  #settle(): void {
    this.#timer = undefined;
    if (this.#disposed) return;
    if (this.#waiting === undefined) return; // kept until next() asks
    this.#pending = false;
    let first: string | undefined;
    for (const [file, stamp] of this.#stamps) {
      const now = stampOf(file);
      if (now === stamp) continue;
      this.#stamps.set(file, now);
      first ??= file;
    }
    // A symlink pointed elsewhere: its new target's folder is watched from now on.
    this.#follow();
    if (first === undefined) return; // touched, not changed: still waiting
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting(first);
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.#disposed = true;
    clearInterval(this.#poll);
    clearTimeout(this.#timer);
    for (const watcher of this.#folders.values()) watcher.close();
    this.#folders.clear();
    return Promise.resolve();
  }
}
