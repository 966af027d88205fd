/**
 * What the built-in `exec` node shares between the runner and its Worker:
 * its options as checked, which programs its `permissions: { run }` lets it
 * start (for messages: Deno enforces the list in the Worker), the
 * environment a program gets, and how long a stopped program has before it
 * is killed.
 *
 * @module
 */

/** The default `maxBytes` of each of a program's streams: 1 MiB. */
export const DEFAULT_EXEC_MAX_BYTES = 1024 * 1024;

/**
 * How long (ms) a program told to stop (`SIGTERM`: the node timed out, the
 * run was cancelled or timed out) has before it is killed (`SIGKILL`).
 */
export const EXEC_KILL_GRACE = 3000;

/** How many of the last stderr lines an exit outside `okCodes` quotes. */
export const QUOTED_STDERR_LINES = 10;

/** How stdout becomes the output's `stdout`. */
export const STDOUT_FORMATS = ["text", "json", "lines"] as const;

/** One of {@linkcode STDOUT_FORMATS}. */
export type StdoutFormat = typeof STDOUT_FORMATS[number];

/**
 * The variables of the runner's environment a program gets (when set), before
 * its node's `with.env`: everything else is left out (`clearEnv`).
 */
export const INHERITED_ENV = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"] as const;

/** The `PATH` a program gets when the runner has none. */
export const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

/** The `exec` node's options, as checked (defaults filled in). */
export interface ExecOptions {
  command: string;
  args: string[];
  cwd?: string;
  env: Record<string, string>;
  stdin?: string;
  okCodes: number[];
  stdout: StdoutFormat;
  maxBytes: number;
}

/** What crosses to the `exec` node's Worker: the options and what the runner adds. */
export interface ExecRequest extends ExecOptions {
  /** The environment the program gets: {@linkcode INHERITED_ENV} of the runner's, then `env`. */
  fullEnv: Record<string, string>;
  /**
   * Whether the Worker may run {@linkcode KILL_PROGRAM} (the runner has
   * `--allow-run=kill`): then the program starts in a process group of its
   * own, and stopping it signals that whole group (the processes it started
   * too), not only the program.
   */
  killGroup: boolean;
  /**
   * The `PATH` {@linkcode KILL_PROGRAM} is looked up on: the runner's (else
   * {@linkcode DEFAULT_PATH}), as Deno looked it up to grant it, whatever
   * `PATH` the node's `with.env` gives its program.
   */
  killPath: string;
  /**
   * With `killGroup`: a secret of the runner the Worker starts two log lines
   * with, which the runner keeps to itself: `<token> <pid>` once the program
   * started, `<token> end` once it and its group were dealt with. The runner
   * then kills a stopped program's group itself should the Worker be gone
   * before it could (terminated, or the process exiting, within the run's
   * abort grace).
   */
  groupToken?: string;
}

/**
 * The program that signals a process group (`kill -s TERM -- -<pgid>`): Deno
 * lets a node signal only the child it started unless it may run every
 * program, so a whole group is signalled through it, when the runner may
 * run it.
 */
export const KILL_PROGRAM = "kill";

/** An environment variable's name as `with.env` takes it. */
export const EXEC_ENV_NAME: RegExp = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The environment variables a program of an `exec` node may not be given: Deno
 * starts a program with a variable named `LD_…` or `DYLD_…` (`LD_PRELOAD`,
 * which loads code into it) only when every program may be run.
 */
export const EXEC_ENV_REFUSED: RegExp = /^(LD_|DYLD_)/;

/** Why `with.env` of an `exec` node may not hold variable `name`. */
export const EXEC_ENV_REFUSED_WHY =
  "an exec node's program may not be given a variable named LD_… or DYLD_… (it would load other code into the program; Deno starts none with one unless every program may run); to set one, declare a script that sets it and runs the program";

/** What an argument, a variable's value or a command may not hold (the OS cannot pass it). */
export const NUL: RegExp = /\0/;

/** Whether `run` (a node's `permissions: { run }`, as Deno takes it) lets it start `command`. */
export function runAllows(run: boolean | readonly string[], command: string): boolean {
  if (run === true) return true;
  if (run === false) return false;
  return run.includes(command);
}

/**
 * Why starting `command` is outside `run` (the node's declared
 * `permissions: { run }`), with the exact `permissions:` line that would
 * allow it; `undefined` when it is inside.
 *
 * @example
 * ```ts
 * import { runProblem } from "./_exec.ts";
 * import assert from "node:assert/strict";
 * assert.equal(runProblem(["date"], "date"), undefined);
 * assert.match(runProblem(["date"], "uname")!, /permissions: \{ run: \["date", "uname"\] \}$/);
 * ```
 */
export function runProblem(run: boolean | readonly string[], command: string): string | undefined {
  if (runAllows(run, command)) return undefined;
  const list = [...(Array.isArray(run) ? run : []), command];
  return `program ${JSON.stringify(command)} is not in the node's permissions: run${
    Array.isArray(run) && run.length > 0 ? ` (${run.join(", ")})` : " (none declared)"
  }; an exec node may start only the programs it declares: add to the node in its flow file: permissions: { run: [${
    list.map((c) => JSON.stringify(c)).join(", ")
  }] }`;
}

/**
 * The environment a program gets: `PATH` (the runner's, else
 * {@linkcode DEFAULT_PATH}) and the other {@linkcode INHERITED_ENV} the
 * runner has, then `env` (which wins).
 *
 * @example
 * ```ts
 * import { programEnv } from "./_exec.ts";
 * import assert from "node:assert/strict";
 * const env = programEnv({ PGHOST: "db" }, (name) => name === "PATH" ? "/bin" : undefined);
 * assert.deepEqual(env, { PATH: "/bin", PGHOST: "db" });
 * ```
 */
export function programEnv(
  env: Record<string, string>,
  get: (name: string) => string | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of INHERITED_ENV) {
    let value: string | undefined;
    try {
      value = get(name);
    } catch {
      value = undefined; // the runner may not read it (--allow-env of other names)
    }
    if (value !== undefined) out[name] = value;
  }
  out.PATH ??= DEFAULT_PATH;
  return { ...out, ...env };
}
