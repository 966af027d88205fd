/**
 * A sandboxed node's `console` as its log lines: in the node's Worker (see
 * `sandbox_worker.ts`), before the node's module is imported, every method
 * of the Worker's console (the object `node:console` exports too) is
 * replaced by one of a console of Deno's own, formatted as Deno formats
 * console arguments (`%s %d %i %f %o %O %c`, objects inspected, `group`
 * indentation, `table`, `count`, `time`, `assert`, `trace`), whose text
 * becomes a log line instead of going to the runner's stdout or stderr:
 * `debug` at `debug`, `log`, `info`, `dir`, `table`, `count`, `time*` and
 * `group` labels at `info`, `warn` at `warn`, `error`, `trace` and a failed
 * `assert` at `error`. The host records it as a `ctx.log` line (its limits,
 * its secrets masked). So are the node's own writes to stdout and stderr
 * (`process.stdout.write`, a `Console` of its own, `Deno.stdout.write`):
 * each write a line, stdout's at `info`, stderr's at `error`.
 *
 * A line belongs to the attempt whose code printed it (an async context
 * follows it through awaits and timers, so attempts running at once in one
 * Worker each get their own). A line printed outside any attempt (at the
 * module's top level, in an options check, by a timer an ended attempt left
 * running) goes, with a note saying so, to an attempt of the Worker running
 * now (of the same run, for a line an ended attempt's timer printed), or
 * waits for the next attempt to start: at most {@linkcode PENDING_LINES}
 * lines wait, more are counted, and the next attempt gets a `warn` line
 * saying how many were dropped. A Worker serves one run at a time (see
 * `sandboxedNodeType`): a line an earlier run's attempt printed is never
 * given to another run (that run would not mask the earlier run's
 * secrets), only counted.
 *
 * @module
 */
import type { AsyncLocalStorage } from "node:async_hooks";
import { logLine } from "./_context_args.ts";
import type { LogLevel } from "../log.ts";

/** At most this many lines printed outside an attempt wait for one; more are dropped and counted. */
export const PENDING_LINES = 100;

/** Deno's console levels (its print function's second argument): 4 is `trace`. */
const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "error"];

/**
 * Terminal control sequences (colors, `console.clear()`): a log line is text. Deno colors
 * what it inspects when the runner's stdout is a terminal; the record must not depend on it.
 */
// deno-lint-ignore no-control-regex
const CONTROL = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Stack frames of Flowstate's Worker code (under a trace, an error's stack): not the node's. */
const OWN_FRAMES = [import.meta.url, new URL("./sandbox_worker.ts", import.meta.url).href];

/** `text` without the stack frames of {@linkcode OWN_FRAMES}. */
function withoutOwnFrames(text: string): string {
  if (!text.includes("    at ")) return text;
  return text.split("\n").filter((line) =>
    !(line.trimStart().startsWith("at ") && OWN_FRAMES.some((url) => line.includes(url + ":")))
  ).join("\n");
}

/** An attempt running in the Worker: the host's request id and what the note names. */
export interface AttemptInfo {
  runId: string;
  nodeId: string;
  attempt: number;
}

/** A line printed outside any attempt, waiting for one. */
interface Pending {
  message: string;
  level: LogLevel;
  /** The run of the ended attempt whose timer printed it; `undefined`: no attempt's. */
  runId?: string;
}

/** The most ended attempts remembered, to say whose timer printed a line. */
const ENDED_KEPT = 64;

/**
 * Route the Worker's console to log lines: `send(run, message, level)`
 * sends one as request `run`'s `ctx.log` line. Returns what the Worker's
 * request handler calls: `attempt(run, info, fn)` runs the attempt `fn`
 * (request `run`) so that what it prints is its own; and `print(text,
 * level)`, what the console prints with (level as Deno's: 1 `info`, 3
 * `error`), for other output of the node's to go the same way.
 *
 * `internals` is `Deno[Deno.internal]` (its `Console`), taken before the
 * Worker gives it up; `Storage` is `node:async_hooks`' `AsyncLocalStorage`
 * (passed in: a static import of a Node built-in would start Deno's Node
 * compatibility in every runner that imports the Worker's module).
 */
export function routeConsole(
  internals: { Console?: new (print: (text: string, level: number) => void) => object } | undefined,
  Storage: typeof AsyncLocalStorage,
  send: (run: number, message: string, level: LogLevel) => void,
): {
  attempt<T>(run: number, info: AttemptInfo, fn: () => Promise<T>): Promise<T>;
  print(text: string, level: number): void;
} {
  const context = new Storage<number>();
  // Taken now: the node may replace what AsyncLocalStorage's prototype holds.
  const store = context.getStore.bind(context);
  const within = context.run.bind(context) as <T>(run: number, fn: () => T) => T;
  const running = new Map<number, AttemptInfo>();
  const ended = new Map<number, AttemptInfo>();
  let pending: Pending[] = [];
  let overflow = 0;

  /** Send what waits to attempts running now that may take it. */
  const flush = () => {
    if (running.size === 0 || pending.length === 0) return;
    const live = [...running];
    pending = pending.filter((line) => {
      const target = live.findLast(([, a]) => line.runId === undefined || a.runId === line.runId);
      if (target === undefined) return true;
      send(target[0], logLine(line.message), line.level);
      return false;
    });
  };

  const print = (text: string, level: number) => {
    let message = withoutOwnFrames(String(text).replace(CONTROL, ""));
    if (message.endsWith("\n")) message = message.slice(0, -1);
    // console.trace() ends its stack with a print of its own, of the line break only;
    // console.clear() prints terminal escapes only. An empty console.log() is an empty line.
    if (message === "" && (level === 4 || text !== "\n")) return;
    const logLevel = LEVELS[level] ?? "error";
    const run = store();
    if (run !== undefined && running.has(run)) return send(run, logLine(message), logLevel);
    const gone = run === undefined ? undefined : ended.get(run);
    const note = gone === undefined
      ? "(printed by the node's module outside an attempt) "
      : `(printed after node ${gone.nodeId}'s attempt ${gone.attempt} ended) `;
    if (pending.length >= PENDING_LINES) overflow++;
    else {
      // Cut now: a waiting line is never bigger than one sent.
      pending.push({ message: logLine(note + message), level: logLevel, runId: gone?.runId });
    }
    flush();
  };

  const routed =
    (typeof internals?.Console === "function"
      ? new internals.Console(print)
      : plainConsole(print)) as Record<string, unknown>;
  // In place: `node:console` exports this same object, and npm code holds it.
  const global = globalThis.console as unknown as Record<string, unknown>;
  for (const name of Object.keys(routed)) {
    if (typeof routed[name] === "function") global[name] = routed[name];
  }

  return {
    print,
    async attempt<T>(run: number, info: AttemptInfo, fn: () => Promise<T>): Promise<T> {
      // The Worker serves one run at a time: what an earlier run's attempt left is not this run's.
      const before = pending.length;
      pending = pending.filter((line) => line.runId === undefined || line.runId === info.runId);
      const otherRun = before - pending.length;
      running.set(run, info);
      flush();
      const dropped = (n: number, why: string) => {
        if (n > 0) send(run, `${n} console ${n === 1 ? "line" : "lines"} ${why}`, "warn");
      };
      dropped(
        overflow,
        `printed outside an attempt dropped: at most ${PENDING_LINES} wait for the next attempt`,
      );
      dropped(
        otherRun,
        "printed after an attempt of an earlier run ended dropped: they could hold that run's secrets, which this run would not mask",
      );
      overflow = 0;
      // No promise methods: the node may replace them.
      try {
        return await within(run, fn);
      } finally {
        running.delete(run);
        ended.set(run, info);
        if (ended.size > ENDED_KEPT) ended.delete(ended.keys().next().value!);
      }
    },
  };
}

/**
 * A console that prints through `print` when Deno's own `Console` is not
 * among its internals (another Deno version): each argument inspected as
 * `Deno.inspect` does (strings as they are), joined by spaces; no format
 * specifiers, tables or groups. A node's output then still becomes its log
 * lines, never the runner's stdout.
 */
function plainConsole(print: (text: string, level: number) => void): object {
  const text = (args: unknown[]) =>
    args.map((a) => typeof a === "string" ? a : Deno.inspect(a)).join(" ") + "\n";
  const at = (level: number) => (...args: unknown[]) => print(text(args), level);
  return {
    log: at(1),
    info: at(1),
    debug: at(0),
    warn: at(2),
    error: at(3),
    trace: at(4),
    dir: at(1),
    dirxml: at(1),
    table: at(1),
    assert: (ok: unknown, ...args: unknown[]) => {
      if (!ok) print(text(["Assertion failed", ...args]), 3);
    },
  };
}
