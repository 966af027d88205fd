/**
 * The `flowstate` command line: argument parsing and error → exit-code
 * mapping. The command definitions (`program.ts`, commander) are loaded for
 * every command line but a plain `flowstate run <flow>`, which a small parser
 * of its own reads (`plain_run.ts`), and which are imported by a specifier Deno
 * does not read at start (so a plain run does not parse them); command bodies
 * live in sibling modules and are imported only when their command runs.
 *
 * Exit codes: 0 ok, 1 failure (including "not found", and a run that failed,
 * was cancelled or timed out), 2 usage or input error (bad arguments, invalid
 * JSON, invalid config, invalid flow or flow input), 130 / 143 / 129 a run or
 * job cancelled by Ctrl-C (SIGINT) / SIGTERM / SIGHUP.
 *
 * Rules every command keeps: `--quiet` (global, accepted anywhere) drops
 * progress bars and log lines; a failure is a line on stderr starting with
 * `error:`; a lookup that finds nothing prints `null` with `--json` and exits
 * 1; the config is `--config`, else `$FLOWSTATE_CONFIG`, else
 * `./flowstate.yaml`; times in tables carry their zone (the config's
 * `timezone`, default UTC).
 *
 * @module
 */
import { EXIT_USAGE, signalRepeatMs } from "./common.ts";
import { printable } from "./format.ts";
import { UsageError } from "./input.ts";
import { plainRun } from "./plain_run.ts";
import { jsonLogs, logFormatSetting, startLogs } from "./log_format.ts";
import { report } from "./report.ts";
import { suggest } from "../_suggest.ts";
import { fromFileUrl } from "../_path.ts";
import { mayCreateHomeForOwnerLock } from "../records/owner.ts";

/**
 * The command definitions, imported by a specifier Deno cannot read before it
 * runs: Deno reads and parses, at every start, each module a literal
 * `import("…")` reaches, imported or not, and `program.ts` reaches every
 * command (~70 modules a plain `flowstate run` never loads; BENCHMARKS.md, cold
 * start). Its types still come from the `typeof import()` where it is loaded,
 * so `deno check cli.ts` and `deno publish` check it as before.
 */
const PROGRAM = new URL("./program.ts", import.meta.url).href;

/**
 * `program.ts`, by {@link PROGRAM}. Such an import is permission-checked (a
 * literal one was not): from a local copy, the CLI needs read access to its
 * own modules, which `--allow-read=flowstate.yaml,flows` alone does not give;
 * that refusal is said as what to grant.
 */
async function importProgram(): Promise<typeof import("./program.ts")> {
  try {
    return await import(PROGRAM);
  } catch (err) {
    // Deno refuses it as a TypeError ("Requires read access to …"), not as NotCapable.
    const refused = /^Requires read access to /.test((err as Error)?.message);
    if (!refused || !PROGRAM.startsWith("file:")) throw err;
    const dir = fromFileUrl(new URL("../../", PROGRAM)).replace(/[\\/]+$/, "");
    throw new Error(
      `Flowstate could not load its command definitions (${
        fromFileUrl(PROGRAM)
      }): it reads its own modules from ${dir}, and was started without read access to them; ` +
        `add --allow-read=${dir} (or --allow-read) to the command or task that runs flowstate`,
      { cause: err },
    );
  }
}

/**
 * Run the CLI with `args` (without the program name) and resolve the exit
 * code. Never throws: errors are printed to stderr (with a stack trace only
 * under `--debug`).
 */
export async function main(args: readonly string[]): Promise<number> {
  // Flowstate's own program may create its home for the owner lock of the runs it records.
  mayCreateHomeForOwnerLock();
  let exitCode = 0;
  const setExitCode = (code: number) => (exitCode = code);
  // The log format first: from here on every line on stderr is written in it (a usage error
  // too). A bad value is said as text: the format asked for is unknown.
  const logs = logFormatSetting(args);
  if ("problem" in logs) {
    console.error(`error: ${printable(logs.problem)}`);
    return EXIT_USAGE;
  }
  startLogs(logs.format, {
    debug: args.includes("--debug"),
    quiet: args.includes("--quiet") || args.includes("-q"),
  });
  try {
    // A bad setting of the environment is refused before any command does anything (migrate
    // creates its target store before it listens for signals).
    // Help and the version stay reachable, to find out what to set.
    const asking = args.length === 0 || args[0] === "help" ||
      args.some((a) => ["--help", "-h", "--version", "-V"].includes(a));
    const repeat = signalRepeatMs();
    if ("problem" in repeat && !asking) throw new UsageError(repeat.problem);
    // `run <flow>` with the options it takes: no commander, no other command's definitions.
    const run = plainRun(args);
    if (run !== undefined) {
      const { runCommand } = await import("./run.ts");
      return await runCommand(run.file, run.options, run.globals);
    }
    dashValueCheck(args);
    const { buildProgram } = await importProgram();
    const program = buildProgram(setExitCode);
    const unknown = unknownCommand(program as unknown as CommandShape, args);
    if (unknown !== undefined) {
      console.error(`error: ${unknown}`);
      return EXIT_USAGE;
    }
    await program.parseAsync([...args], { from: "user" });
    return exitCode;
  } catch (err) {
    return report(err, args.includes("--debug"));
  }
}

/**
 * `flowstate queue --help`, `flowstate runs lss --help`: commander answers
 * `--help` before it looks at the command, so an unknown command (or
 * subcommand) printed its group's help and exited 0. It is the usage error it
 * is without `--help` (exit 2, with a suggestion): its message, as commander
 * words it, or `undefined` for a known command. Words after a command that
 * takes arguments (or has no subcommands) are its arguments, not commands.
 */
function unknownCommand(program: CommandShape, args: readonly string[]): string | undefined {
  let command = program;
  let path = "flowstate";
  const takesValue = new Set<string | undefined>();
  const known = new Set<string | undefined>(["--help", "-h", "--version", "-V"]);
  const learnOptions = (c: CommandShape) => {
    for (const o of c.options) {
      known.add(o.short).add(o.long);
      if (o.required || o.optional) takesValue.add(o.short).add(o.long);
    }
  };
  learnOptions(command);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") return undefined;
    if (arg.startsWith("-")) {
      // An option this command does not take (`state --store x ls`): commander says so.
      const name = arg.split("=")[0];
      if (!known.has(name)) return undefined;
      if (takesValue.has(arg)) i++;
      continue;
    }
    if (command.commands.length === 0 || command._actionHandler) return undefined;
    const names = command.commands.flatMap((c) => [c.name(), ...c.aliases()]);
    const sub = command.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (sub !== undefined) {
      command = sub;
      path += ` ${sub.name()}`;
      learnOptions(sub);
      continue;
    }
    // `help <command> …`: the command it asks about, as `<command> … --help` names it.
    if (arg === "help") continue;
    // A group with a default command that takes arguments: the word is one of them.
    const fallback = command.commands.find((c) => c.name() === command._defaultCommandName);
    if (fallback !== undefined && fallback.registeredArguments.length > 0) return undefined;
    return unknownCommandMessage(arg, names, path);
  }
  return undefined;
}

/** What {@linkcode unknownCommand} reads of a commander command. */
interface CommandShape {
  commands: readonly CommandShape[];
  options: readonly { short?: string; long?: string; required: boolean; optional: boolean }[];
  registeredArguments: readonly unknown[];
  name(): string;
  aliases(): string[];
  /** Commander's own (not typed public): set when the command has an action. */
  _actionHandler?: unknown;
  /** Commander's own: the subcommand run when none is named (`workers` is `workers ls`). */
  _defaultCommandName?: string | null;
}

/** Commander's words for an unknown command (as it says them without `--help`). */
function unknownCommandMessage(arg: string, names: string[], path: string): string {
  const near = suggest(arg, names);
  // A JSON log line has no help hint (commander shows none then either).
  return `unknown command '${arg}'${near === undefined ? "" : `\n(Did you mean ${near}?)`}` +
    (jsonLogs() ? "" : `\n(run ${path} --help for usage)`);
}

/** Options whose values may start with "-" (`--order-by -createdAt`: descending). */
const DASH_VALUES = ["--order-by"];

/**
 * Refuse an option of {@linkcode DASH_VALUES} followed by a value that starts with "-" as a
 * word of its own: commander takes it for an option ("argument missing", or worse, a later
 * word taken for an argument), so say how to write it.
 */
function dashValueCheck(args: readonly string[]): void {
  for (let i = 0; i < args.length - 1; i++) {
    if (args[i] === "--") return;
    const value = args[i + 1];
    if (DASH_VALUES.includes(args[i]) && /^-[^-]/.test(value)) {
      throw new UsageError(
        `${args[i]} ${value}: a value that starts with "-" is read as an option; write ${
          args[i]
        }=${value}`,
      );
    }
  }
}

export { exitCodeOf } from "./report.ts";
