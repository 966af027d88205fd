/**
 * How the CLI writes its log lines on stderr: `text` (the lines people read,
 * as always) or `json` (one JSON object a line, for Loki, Elasticsearch,
 * journald…), chosen with the global `--log-format <text|json>`, else
 * `$FLOWSTATE_LOG_FORMAT`, else `text`.
 *
 * In `json` mode every line written on stderr is one JSON object: `time`
 * (ISO 8601, UTC, with milliseconds), `level` (`debug`, `info`, `warn`,
 * `error`), `msg`, and the fields that apply (`event`, `runId`, `flow`,
 * `node`, `attempt`, `item`, `worker`, `job`, `schedule`, `store`, `status`,
 * `durationMs`, `error`…). Commands emit their structured events with
 * {@linkcode logEvent}; any other line written with `console.error` (a
 * warning, a fatal error, a signal notice) is wrapped whole into an object of
 * its own, its level read from its prefix (`error:`, `warning:`), so that no
 * line is ever half text. Lines below the level (`--debug`: `debug`;
 * `--quiet`: `warn`; else `info`) are left out.
 *
 * The choice is made from the command line before anything is loaded (see
 * `main.ts`), so that even a usage error is one JSON object.
 *
 * @module
 */
import type { LogLevel } from "../log.ts";

/** A way of writing log lines on stderr. */
export type LogFormat = "text" | "json";

/** Every {@linkcode LogFormat}. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** The environment variable that sets the log format when `--log-format` is not given. */
export const LOG_FORMAT_ENV = "FLOWSTATE_LOG_FORMAT";

/** The option that sets the log format. */
export const LOG_FORMAT_FLAG = "--log-format";

/**
 * The log format `args` ask for (`--log-format json`, `--log-format=json`;
 * the last one given wins, as commander reads options), else
 * {@linkcode LOG_FORMAT_ENV} (when set and not empty), else `text`; a
 * problem (what is wrong, what is allowed) for any other value. Arguments
 * after `--` are not read.
 *
 * @example
 * ```ts
 * import { logFormatSetting } from "./log_format.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(logFormatSetting(["worker", "--log-format", "json"], {}), { format: "json" });
 * assert.deepEqual(logFormatSetting(["run", "f.yaml"], { FLOWSTATE_LOG_FORMAT: "json" }), {
 *   format: "json",
 * });
 * assert.deepEqual(logFormatSetting(["--log-format=text"], { FLOWSTATE_LOG_FORMAT: "json" }), {
 *   format: "text",
 * });
 * assert.ok("problem" in logFormatSetting(["--log-format", "yaml"], {}));
 * ```
 */
export function logFormatSetting(
  args: readonly string[],
  env?: Readonly<Record<string, string | undefined>>,
): { format: LogFormat } | { problem: string } {
  let given: string | undefined;
  let found = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") break;
    if (arg === LOG_FORMAT_FLAG) {
      found = true;
      given = args[i + 1];
      if (given === undefined || given.startsWith("-")) {
        return { problem: `${LOG_FORMAT_FLAG} needs a value: ${allowed()}` };
      }
      i++;
    } else if (arg.startsWith(`${LOG_FORMAT_FLAG}=`)) {
      found = true;
      given = arg.slice(LOG_FORMAT_FLAG.length + 1);
    }
  }
  if (found) {
    return isLogFormat(given)
      ? { format: given }
      : { problem: `Invalid ${LOG_FORMAT_FLAG} "${given}": ${allowed()}` };
  }
  const fromEnv = env === undefined ? readEnv() : env[LOG_FORMAT_ENV];
  if (fromEnv === undefined || fromEnv === "") return { format: "text" };
  return isLogFormat(fromEnv) ? { format: fromEnv } : {
    problem: `Invalid ${LOG_FORMAT_ENV}=${JSON.stringify(fromEnv)}: ${allowed()}, ` +
      `or unset it for text`,
  };
}

function allowed(): string {
  return `expected one of ${LOG_FORMATS.join(", ")} (text: lines for people, the default; ` +
    `json: one JSON object a line on stderr)`;
}

function isLogFormat(value: string | undefined): value is LogFormat {
  return value === "text" || value === "json";
}

function readEnv(): string | undefined {
  try {
    return Deno.env.get(LOG_FORMAT_ENV);
  } catch {
    // Without permission to read it: the default.
    return undefined;
  }
}

/**
 * The fields of a JSON log line besides `time`, `level` and `msg`: the
 * context where it applies (an `undefined` field is left out).
 */
export interface LogFields {
  /** A stable machine name of what happened: `run.start`, `node.log`, `worker.start`… */
  event?: string;
  /** The run. */
  runId?: string;
  /** The flow's id. */
  flow?: string;
  /** The node's id. */
  node?: string;
  /** The attempt (of a node, or of a queued run). */
  attempt?: number;
  /** The item of a `forEach` node. */
  item?: number;
  /** The queue worker. */
  worker?: string;
  /** The maintenance job (its name in the config). */
  job?: string;
  /** The schedule (`job:<name>`, `flow:<id>`). */
  schedule?: string;
  /** The store. */
  store?: string;
  /** A run's, node's or tick's status. */
  status?: string;
  /** How long it took. */
  durationMs?: number;
  /** What went wrong. */
  error?: string;
  /** Anything else the event carries. */
  [field: string]: unknown;
}

const LEVEL_RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

/** The mark that tells the console wrapper a structured event from a line of text. */
const EVENT = Symbol("flowstate.logEvent");

let format: LogFormat = "text";
let minLevel: LogLevel = "info";
let lastLevel: LogLevel = "info";

/** The log format in use (set by {@linkcode startLogs}; `text` until then). */
export function logFormat(): LogFormat {
  return format;
}

/** Whether log lines are JSON objects ({@linkcode startLogs} chose `json`). */
export function jsonLogs(): boolean {
  return format === "json";
}

/**
 * Use `chosen` for every log line from now on, leaving out those below
 * `debug` with `options.debug`, `warn` with `options.quiet`, else `info`
 * (json only: the text lines stay as each command prints them). In `json`
 * mode `console.error` and `console.warn` write one JSON object a line.
 * Called once, by `main.ts`, before any command runs.
 *
 * @example
 * ```ts ignore
 * startLogs("json", { quiet: false, debug: false });
 * console.error("warning: disk almost full"); // {"time":…,"level":"warn","msg":"disk almost full"}
 * ```
 */
export function startLogs(chosen: LogFormat, options: { quiet?: boolean; debug?: boolean }): void {
  format = chosen;
  minLevel = options.debug ? "debug" : options.quiet ? "warn" : "info";
  if (chosen !== "json") return;
  const write = console.error.bind(console);
  const wrapped = (...args: unknown[]) => {
    const line = args[0] === EVENT
      ? eventLine(args[1] as LogRecord)
      : textLine(args.map((a) => typeof a === "string" ? a : Deno.inspect(a)).join(" "));
    if (line !== undefined) write(line);
  };
  console.error = wrapped;
  console.warn = wrapped;
}

/** A structured event as {@linkcode logEvent} hands it to the console. */
interface LogRecord {
  level: LogLevel;
  msg: string;
  fields: LogFields;
}

/** The JSON line of an event, or `undefined` below the level. */
function eventLine({ level, msg, fields }: LogRecord): string | undefined {
  lastLevel = level;
  if (LEVEL_RANK[level] < LEVEL_RANK[minLevel]) return undefined;
  return JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
}

/** A line of text as a JSON line: its level from its prefix (a `hint:` takes the line's before). */
function textLine(text: string): string | undefined {
  const prefix = /^(error|warning|hint|note): /.exec(text);
  const level: LogLevel = prefix === null
    ? "info"
    : prefix[1] === "error"
    ? "error"
    : prefix[1] === "warning"
    ? "warn"
    : prefix[1] === "hint"
    ? lastLevel
    : "info";
  const fields: LogFields = prefix?.[1] === "hint" ? { event: "hint" } : {};
  return eventLine({ level, msg: prefix === null ? text : text.slice(prefix[0].length), fields });
}

/**
 * Write one structured log line on stderr, in `json` mode: `time`, `level`,
 * `msg` and `fields`. Nothing in `text` mode: there the command prints its
 * line of text (see {@linkcode jsonLogs}).
 *
 * @example
 * ```ts
 * import { jsonLogs, logEvent } from "./log_format.ts";
 * if (jsonLogs()) logEvent("info", "worker started", { event: "worker.start", worker: "w1" });
 * ```
 */
export function logEvent(level: LogLevel, msg: string, fields: LogFields = {}): void {
  if (format !== "json") return;
  console.error(EVENT, { level, msg, fields } satisfies LogRecord);
}

/**
 * Where a command's lines go: `out` for its progress lines (stdout in text
 * mode), `err` for its log lines (stderr). In `json` mode both are JSON log
 * lines on stderr with `fields`, at `level` (else read from the line's
 * `error:` / `warning:` prefix, which `msg` leaves out): a service's log is
 * then all JSON, and stdout holds only what `--json` asks for.
 */
export interface LineSink {
  /** A progress line: stdout as text, a JSON log line on stderr in `json` mode. */
  out(text: string, fields?: LogFields, level?: LogLevel): void;
  /** A log line: stderr, as text or as a JSON log line. */
  err(text: string, fields?: LogFields, level?: LogLevel): void;
}

/**
 * The {@linkcode LineSink} of the log format in use.
 *
 * @example
 * ```ts
 * import { lineSink } from "./log_format.ts";
 * const sink = lineSink();
 * sink.out("Worker w1 started", { event: "worker.start", worker: "w1" });
 * ```
 */
export function lineSink(): LineSink {
  if (format !== "json") {
    return { out: (text) => console.log(text), err: (text) => console.error(text) };
  }
  const emit = (text: string, fields: LogFields = {}, level?: LogLevel) => {
    const prefix = /^(error|warning): /.exec(text);
    const read: LogLevel = prefix?.[1] === "error"
      ? "error"
      : prefix?.[1] === "warning"
      ? "warn"
      : "info";
    logEvent(level ?? read, prefix === null ? text : text.slice(prefix[0].length), fields);
  };
  return { out: emit, err: emit };
}
