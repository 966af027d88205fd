/**
 * What every command module shares: the global options, exit codes, the one
 * way a command is interrupted, the store-name check and the log printer.
 * Command modules import this, never `main.ts` (which imports them).
 *
 * @module
 */
import { didYouMean } from "../_suggest.ts";
import type { LogLevel } from "../log.ts";
import type { Runtime } from "../runtime.ts";
import { UsageError } from "./input.ts";

/** Options every command sees. */
export interface GlobalOptions {
  /** `--config PATH`. */
  config?: string;
  /** `--debug`: print stack traces. */
  debug?: boolean;
}

/** Exit code: the command did what was asked. */
export const EXIT_OK = 0;
/** Exit code: it failed, or what was asked for was not found. */
export const EXIT_FAILURE = 1;
/** Exit code: bad arguments, invalid JSON, config, flow or flow input. */
export const EXIT_USAGE = 2;
/** Exit code: interrupted with Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

/** What {@linkcode interruptible} returns: the body's value, and whether Ctrl-C was pressed. */
export interface Interruptible<T> {
  /** What the body resolved to. */
  value: T;
  /** Whether the user pressed Ctrl-C while it ran. */
  interrupted: boolean;
}

/**
 * Run `body` with a signal that the first Ctrl-C aborts, printing `notice`;
 * a second Ctrl-C exits at once with {@linkcode EXIT_INTERRUPTED}.
 */
export async function interruptible<T>(
  notice: string,
  body: (signal: AbortSignal) => Promise<T>,
): Promise<Interruptible<T>> {
  const controller = new AbortController();
  let interrupted = false;
  const onInterrupt = () => {
    if (interrupted) Deno.exit(EXIT_INTERRUPTED);
    interrupted = true;
    console.error(`${notice} (press Ctrl-C again to exit at once)…`);
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    return { value: await body(controller.signal), interrupted };
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
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
 * A job's log lines on stderr: `info` plain, other levels prefixed; with
 * `json` (stdout holds the result), only warnings and errors.
 */
export function stderrLogger(
  json: boolean | undefined,
): (message: string, level?: LogLevel) => void {
  return (message, level = "info") => {
    if (json && level !== "warn" && level !== "error") return;
    console.error(level === "info" ? message : `${level}: ${message}`);
  };
}
