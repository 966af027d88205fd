/**
 * What every command module shares: the global options, exit codes, the one
 * way a command is interrupted, the store-name check and the log printer.
 * Command modules import this, never `main.ts` (which imports them).
 *
 * @module
 */
import { didYouMean } from "../_suggest.ts";
import { envSetting } from "../_env.ts";
import { StoreMissingError } from "../errors.ts";
import type { LogLevel, Warning } from "../log.ts";
import { INTERRUPT_TIMEOUT_MS, RunRecorder } from "../records/recorder.ts";
import { openRuntime, type Runtime } from "../runtime.ts";
import type { ProgressMode } from "../jobs/progress.ts";
import { printable } from "./format.ts";
import { UsageError } from "./input.ts";
import { jsonLogs, logEvent } from "./log_format.ts";

/** Options every command sees. */
export interface GlobalOptions {
  /** `--config PATH`. */
  config?: string;
  /** `--debug`: print stack traces. */
  debug?: boolean;
  /** `--quiet` (global): no progress bars and no log lines, only results, warnings and errors. */
  quiet?: boolean;
}

/** The environment variable naming the config file when `--config` is not given. */
export const CONFIG_ENV = "FLOWSTATE_CONFIG";

/**
 * The config path a command uses: `--config`, else `$FLOWSTATE_CONFIG` (when
 * set and not empty), else `undefined` (`./flowstate.yaml` if it exists).
 *
 * @example
 * ```ts
 * import { configPath } from "./common.ts";
 * import assert from "node:assert/strict";
 * assert.equal(configPath("a.yaml", { FLOWSTATE_CONFIG: "b.yaml" }), "a.yaml");
 * assert.equal(configPath(undefined, { FLOWSTATE_CONFIG: "b.yaml" }), "b.yaml");
 * assert.equal(configPath(undefined, { FLOWSTATE_CONFIG: "" }), undefined);
 * ```
 */
export function configPath(
  given: string | undefined,
  env: Readonly<Record<string, string | undefined>> = { [CONFIG_ENV]: Deno.env.get(CONFIG_ENV) },
): string | undefined {
  if (given !== undefined) return given;
  const fromEnv = env[CONFIG_ENV];
  return fromEnv === undefined || fromEnv === "" ? undefined : fromEnv;
}

/** Exit code: the command did what was asked. */
export const EXIT_OK = 0;
/** Exit code: it failed, or what was asked for was not found. */
export const EXIT_FAILURE = 1;
/** Exit code: bad arguments, invalid JSON, config, flow or flow input. */
export const EXIT_USAGE = 2;
/** Exit code: interrupted with Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

/** The signals that stop a command cleanly, and the exit code each gives (128 + its number). */
export const STOP_SIGNALS: Readonly<Record<"SIGINT" | "SIGTERM" | "SIGHUP", number>> = {
  SIGINT: EXIT_INTERRUPTED,
  SIGTERM: 143,
  SIGHUP: 129,
};

/** What {@linkcode interruptible} returns: the body's value, and whether a stop signal came. */
export interface Interruptible<T> {
  /** What the body resolved to. */
  value: T;
  /** Whether Ctrl-C (SIGINT), SIGTERM or SIGHUP came while it ran. */
  interrupted: boolean;
  /** The exit code for the first stop signal that came (130 for SIGINT, 143, 129), else 130. */
  exitCode: number;
}

const signalExitCodes = new WeakMap<AbortSignal, number>();

/**
 * The exit code for the stop signal that aborted `signal` (one made by
 * {@linkcode interruptible}), or {@linkcode EXIT_INTERRUPTED}.
 */
export function interruptedExitCode(signal: AbortSignal | undefined): number {
  return (signal && signalExitCodes.get(signal)) ?? EXIT_INTERRUPTED;
}

let outputBestEffort = false;

/**
 * After a hang-up the terminal may be gone, and every write to it fails
 * (EIO): from then on what is printed is best effort, so a line that cannot
 * be shown never cuts a clean stop short (runs left running, exit 1).
 */
function bestEffortOutput(): void {
  if (outputBestEffort) return;
  outputBestEffort = true;
  for (const method of ["log", "error", "warn", "info"] as const) {
    const original = console[method];
    console[method] = (...args: unknown[]) => {
      try {
        original.apply(console, args);
      } catch {
        // The terminal is gone.
      }
    };
  }
}

/**
 * Exit at once with `code`, after recording the end of every run this
 * process is running (`RunRecorder.interruptAll`: recorded `cancelled`, a
 * run claimed from the queue back in the queue), without waiting for its
 * nodes, for at most {@linkcode INTERRUPT_TIMEOUT_MS}: a run whose end
 * could not be recorded in time is named on stderr.
 */
async function exitAtOnce(name: keyof typeof STOP_SIGNALS): Promise<never> {
  try {
    const { notEnded, elsewhere } = await RunRecorder.interruptAll(
      `cancelled: the process was stopped (${name} twice) before the run ended; its nodes were not waited for`,
      { timeoutMs: INTERRUPT_TIMEOUT_MS },
    );
    for (const id of notEnded) {
      console.error(
        `warning: the end of run ${id} could not be recorded in time: it stays running until found abandoned (flowstate gc)`,
      );
    }
    for (const id of elsewhere) {
      console.error(
        `note: run ${id} is another worker's now (this process's claim on it had lapsed): this process recorded nothing for it`,
      );
    }
  } finally {
    Deno.exit(STOP_SIGNALS[name]);
  }
}

/**
 * A repeat of the first stop signal within this many milliseconds of it is
 * the same stop, not a second one: one Ctrl-C in a terminal reaches `deno task`
 * and its child both, and `deno task` forwards it to the child too (a
 * service manager stopping a control group does the same with SIGTERM), so
 * the process often gets the one press twice, a few milliseconds apart.
 */
export const SIGNAL_REPEAT_MS = 500;

/** The environment variable that sets the repeat window in milliseconds (default {@linkcode SIGNAL_REPEAT_MS}). */
export const SIGNAL_REPEAT_ENV = "FLOWSTATE_SIGNAL_REPEAT_MS";

/**
 * The repeat window in milliseconds: {@linkcode SIGNAL_REPEAT_ENV} when it is
 * a whole number of milliseconds (`0` makes every repeat a second signal;
 * raise it where a supervisor passes a signal on late), else
 * {@linkcode SIGNAL_REPEAT_MS}; a problem for any other value. Without
 * permission to read the variable, the default.
 *
 * @example
 * ```ts
 * import { signalRepeatMs } from "./common.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(signalRepeatMs({}), { ms: 500 });
 * assert.deepEqual(signalRepeatMs({ FLOWSTATE_SIGNAL_REPEAT_MS: "2000" }), { ms: 2000 });
 * assert.ok("problem" in signalRepeatMs({ FLOWSTATE_SIGNAL_REPEAT_MS: "2s" }));
 * ```
 */
export function signalRepeatMs(
  env?: Readonly<Record<string, string | undefined>>,
): { ms: number } | { problem: string } {
  const raw = envSetting(SIGNAL_REPEAT_ENV, env);
  if (raw === undefined || raw.trim() === "") return { ms: SIGNAL_REPEAT_MS };
  const ms = /^\s*\d{1,9}\s*$/.test(raw) ? Number(raw) : NaN;
  if (Number.isNaN(ms)) {
    return {
      problem:
        `${SIGNAL_REPEAT_ENV}=${JSON.stringify(raw)} is not a whole number of milliseconds ` +
        `(at most 999999999); write e.g. ${SIGNAL_REPEAT_ENV}=2000, or unset it for ${SIGNAL_REPEAT_MS}`,
    };
  }
  return { ms };
}

/**
 * Listen for the stop signals (SIGINT, SIGTERM, SIGHUP): the first calls
 * `onFirst` with its name; a second one prints `again` (when given) and exits
 * at once with its code (130, 143, 129), after recording every run still in
 * flight as ended (within {@linkcode INTERRUPT_TIMEOUT_MS}; further signals
 * meanwhile change nothing). The same signal again within the repeat window
 * ({@linkcode signalRepeatMs}) of the first is not a second one. Throws a
 * {@linkcode UsageError} when {@linkcode SIGNAL_REPEAT_ENV} is not a number of
 * milliseconds. `options.signals` narrows the signals listened to (the daemon
 * off a terminal leaves SIGHUP out: it reloads on it). Dispose the result to
 * stop listening.
 *
 * @example
 * ```ts ignore
 * using _ = onStopSignals((name) => stop.resolve(name));
 * ```
 */
export function onStopSignals(
  onFirst: (name: keyof typeof STOP_SIGNALS) => void,
  again?: (name: keyof typeof STOP_SIGNALS) => string,
  options: { signals?: readonly (keyof typeof STOP_SIGNALS)[] } = {},
): Disposable {
  let received: { name: keyof typeof STOP_SIGNALS; at: number } | undefined;
  let exiting = false;
  const window = signalRepeatMs();
  if ("problem" in window) throw new UsageError(window.problem);
  const repeatMs = window.ms;
  const listeners: [Deno.Signal, () => void][] = [];
  const names = options.signals ?? Object.keys(STOP_SIGNALS) as (keyof typeof STOP_SIGNALS)[];
  for (const name of names) {
    const listener = () => {
      if (name === "SIGHUP") bestEffortOutput();
      if (exiting) return;
      if (received) {
        // The one press delivered twice (deno task forwards it): not "again".
        if (name === received.name && performance.now() - received.at < repeatMs) return;
        exiting = true;
        if (again && jsonLogs()) {
          logEvent("warn", again(name), { event: "signal", signal: name, action: "exit" });
        } else if (again) console.error(again(name));
        void exitAtOnce(name);
        return;
      }
      received = { name, at: performance.now() };
      onFirst(name);
    };
    try {
      Deno.addSignalListener(name, listener);
      listeners.push([name, listener]);
    } catch {
      // Not every signal exists on every system (SIGHUP, SIGTERM on Windows).
    }
  }
  return {
    [Symbol.dispose]() {
      for (const [name, listener] of listeners) Deno.removeSignalListener(name, listener);
    },
  };
}

/**
 * Run `body` with a signal that the first SIGINT (Ctrl-C), SIGTERM or SIGHUP
 * aborts, printing `notice`, so the work stops at a consistent point and is
 * recorded as cancelled; a second stop signal exits at once with its code,
 * after recording the runs still in flight as ended (see {@linkcode onStopSignals}).
 */
export async function interruptible<T>(
  notice: string,
  body: (signal: AbortSignal) => Promise<T>,
): Promise<Interruptible<T>> {
  const controller = new AbortController();
  let received: keyof typeof STOP_SIGNALS | undefined;
  using _signals = onStopSignals((name) => {
    received = name;
    signalExitCodes.set(controller.signal, STOP_SIGNALS[name]);
    const again = name === "SIGINT" ? "press Ctrl-C again" : `send ${name} again`;
    const line = `${notice} (${name}; ${again} to exit at once)…`;
    if (jsonLogs()) logEvent("info", line, { event: "signal", signal: name, action: "stop" });
    else console.error(line);
    controller.abort();
  });
  const value = await body(controller.signal);
  return {
    value,
    interrupted: received !== undefined,
    exitCode: received === undefined ? EXIT_INTERRUPTED : STOP_SIGNALS[received],
  };
}

/**
 * Throw a {@linkcode UsageError} unless `name` is a configured store; `flag`,
 * when given, names the option in the message.
 */
export function checkStore(runtime: Runtime, name: string | undefined, flag?: string): void {
  if (name !== undefined && !runtime.storeNames.includes(name)) {
    throw new UsageError(
      `Unknown store "${name}"${flag ? ` (${flag})` : ""}${
        didYouMean(name, runtime.storeNames)
      }: ` +
        `the configured stores are ${runtime.storeNames.join(", ")}`,
    );
  }
}

/**
 * The runtime of a command that only reads (`runs ls`, `state get`, `stores`…):
 * it creates no store, no file and no directory (see `createStores`).
 */
export function openForReading(global: GlobalOptions): Promise<Runtime> {
  return openRuntime({ config: global.config, onWarning: printWarning, createStores: false });
}

/**
 * What `open` resolves to, or `null` when the store it opens does not exist
 * yet (a {@linkcode StoreMissingError} from a runtime made by
 * {@linkcode openForReading}), after saying so on stderr: the command then
 * shows an empty result.
 */
export async function unlessMissing<T>(open: () => Promise<T>): Promise<T | null> {
  try {
    return await open();
  } catch (err) {
    if (!(err instanceof StoreMissingError)) throw err;
    console.error(noStoreYet(err));
    return null;
  }
}

/** The one line that says a store does not exist yet. */
export function noStoreYet(err: StoreMissingError): string {
  return printable(
    `No store yet at ${err.address} (store "${err.store}"): nothing has been written to it`,
  );
}

/**
 * The library's warnings (a large jsonfile store, a failed directory flush…)
 * on stderr, as the CLI has always printed them: the library itself never
 * prints, so every runtime the CLI opens passes this as `onWarning`.
 */
export function printWarning(warning: Warning): void {
  let message = printable(warning.message);
  // A plugin's own warning (`context.warn`) need not name its store: the core hands the name
  // beside it, and with several stores the line must say which one.
  const store = warning.store;
  if (store !== undefined && !message.includes(`"${store}"`)) {
    message = `store "${printable(store)}": ${message.replace(/^warning:\s*/, "")}`;
  }
  console.error(message.startsWith("warning:") ? message : `warning: ${message}`);
}

/**
 * How a job's progress shows on stderr: nothing with `--quiet` (or `--json`),
 * a bar on a terminal, plain lines otherwise. The library shows none unless
 * asked, so every command that runs a job asks with this.
 */
export function progressMode(quiet: boolean | undefined): ProgressMode {
  // A bar or a progress line is not one JSON object: none with --log-format json.
  return quiet || jsonLogs() ? "quiet" : Deno.stderr.isTerminal() ? "tty" : "plain";
}

/**
 * A job's log lines on stderr: `info` plain, others prefixed (`warning:`,
 * `error:`, as every command prints them); with
 * `warningsOnly` (stdout holds the result, or `--quiet`, or the command
 * prints its own summary of what the info lines say), only warnings and
 * errors.
 */
export function stderrLogger(
  warningsOnly: boolean | undefined,
): (message: string, level?: LogLevel) => void {
  return (message, level = "info") => {
    if (warningsOnly && level !== "warn" && level !== "error") return;
    const prefix = level === "info" ? "" : `${level === "warn" ? "warning" : level}: `;
    console.error(printable(`${prefix}${message}`));
  };
}

/** Print one failure line on stderr: `error: <message>` (first line only, printable). */
export function printError(message: string): void {
  console.error(`error: ${printable(message.split("\n")[0])}`);
  printPermissionHint(message);
}

/**
 * A job's error arrives as its recorded message: for Deno's permission error
 * (known by its words), print where to grant it, as for a thrown one.
 */
export function printPermissionHint(message: string): void {
  if (!/^Requires \w+ access to /.test(message)) return;
  const hint = permissionHint(Object.assign(new Error(message), { name: "NotCapable" }));
  if (hint !== undefined) console.error(`hint: ${hint}`);
}

/**
 * For a permission this process lacks (Deno's `NotCapable`), where to grant
 * it: the `flowstate` and `run` tasks grant writes to `.flowstate` only, and
 * the host name of the system information.
 *
 * @example
 * ```ts
 * import { permissionHint } from "./common.ts";
 * import assert from "node:assert/strict";
 * const err = Object.assign(new Error('Requires write access to "/data/x.db", run again with the --allow-write flag'), { name: "NotCapable" });
 * assert.match(permissionHint(err)!, /--allow-write=\.flowstate,\/data\/x\.db/);
 * ```
 */
export function permissionHint(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.name !== "NotCapable" && e.name !== "PermissionDenied") continue;
    const m = /Requires (\w+) access to "?([^",]*)"?/.exec(e.message);
    if (!m) return undefined;
    const [, kind, what] = m;
    const flag = `--allow-${kind}`;
    const example = kind === "write" ? `--allow-write=.flowstate,${what}` : `${flag}=${what}`;
    return `Flowstate was started without ${flag} for ${what}; add it to the flags of the command or task that runs flowstate (deno.json "tasks"), e.g. ${example}`;
  }
  return undefined;
}

/**
 * The one rule of every lookup that finds nothing (`runs show`, `state get`,
 * `flows versions`, `metrics <flow>`): with `--json`, `null` on stdout; the
 * reason on stderr as an `error:` line; exit 1.
 */
export function notFound(json: boolean | undefined, message: string): number {
  if (json) console.log("null");
  printError(message);
  return EXIT_FAILURE;
}
