/**
 * The command line of a plain run, `flowstate run <flow> [-i name=value]…
 * [--json]` with the global `--config`, `--quiet`, `--debug` and `--log-format` anywhere,
 * read without commander: a cold `deno task run` then loads neither commander
 * nor any other command's definitions. Anything else (help, an unknown or
 * malformed option, a missing or second argument, `--`) is left to the full
 * parser in `program.ts`, so that every message and exit code stays its own.
 *
 * @module
 */
import { configPath, type GlobalOptions } from "./common.ts";
import type { RunOptions } from "./run.ts";

/** A plain run's arguments, as the `run` command's action receives them. */
export interface PlainRun {
  /** The flow file. */
  file: string;
  /** `--input` values, `--json` and the global `--quiet`. */
  options: RunOptions;
  /** The global options. */
  globals: GlobalOptions;
}

/**
 * `args` read as a plain `run`, or `undefined` when they are anything else
 * (the full parser takes them).
 *
 * @example
 * ```ts
 * import { plainRun } from "./plain_run.ts";
 * import assert from "node:assert/strict";
 * const run = plainRun(["run", "flow.yaml", "-i", "by=2", "--quiet", "--config=c.yaml"]);
 * assert.equal(run?.file, "flow.yaml");
 * assert.deepEqual(run?.options, { input: ["by=2"], quiet: true });
 * assert.equal(run?.globals.config, "c.yaml");
 * assert.equal(plainRun(["run", "flow.yaml", "--help"]), undefined);
 * assert.equal(plainRun(["run"]), undefined); // commander says what is missing
 * ```
 */
export function plainRun(
  args: readonly string[],
  env?: Readonly<Record<string, string | undefined>>,
): PlainRun | undefined {
  let command: string | undefined;
  let file: string | undefined;
  let config: string | undefined;
  let quiet = false;
  let debug = false;
  let json = false;
  const input: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    /** The value of an option that takes one: the next argument, if it is not an option. */
    const value = (): string | undefined => {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("-")) return undefined;
      i++;
      return next;
    };
    if (arg === "-q" || arg === "--quiet") quiet = true;
    else if (arg === "--debug") debug = true;
    // Read by main.ts before anything (logFormatSetting): only stepped over here.
    else if (arg === "--log-format") {
      if (value() === undefined) return undefined;
    } else if (arg.startsWith("--log-format=")) continue;
    else if (arg === "-c" || arg === "--config" || arg.startsWith("--config=")) {
      if (config !== undefined) return undefined; // given twice: the full parser decides
      config = arg.startsWith("--config=") ? arg.slice("--config=".length) : value();
      if (config === undefined || config === "") return undefined;
    } else if (command === undefined) {
      if (arg !== "run") return undefined;
      command = arg;
    } else if (arg === "--json") json = true;
    else if (arg === "-i" || arg === "--input" || arg.startsWith("--input=")) {
      const pair = arg.startsWith("--input=") ? arg.slice("--input=".length) : value();
      if (pair === undefined) return undefined;
      input.push(pair);
    } else if (arg.startsWith("-") || arg === "" || file !== undefined) return undefined;
    else file = arg;
  }
  if (command === undefined || file === undefined) return undefined;
  const options: RunOptions = {};
  if (input.length > 0) options.input = input;
  if (json) options.json = true;
  options.quiet = quiet;
  const globals: GlobalOptions = { config: configPath(config, env), quiet: quiet || undefined };
  if (debug) globals.debug = true;
  return { file, options, globals };
}
