/**
 * The definitions of `flowstate state query` and `flowstate state search`,
 * added to the `state` command by `main.ts`; the commands themselves load
 * `state_query.ts` only when they run.
 *
 * @module
 */
import { type Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import type { GlobalOptions } from "./common.ts";

function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer >= ${min} (got "${value}")`);
    }
    return n;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** What the `state` commands share with the program. */
export interface StateCommandHooks {
  /** Set the process's exit code. */
  setExitCode(code: number): void;
  /** The global options of a command. */
  globals(command: { optsWithGlobals(): object }): GlobalOptions;
}

/** Add `query` and `search` to the `state` command. */
export function addStateQueryCommands(
  state: Pick<Command, "command">,
  hooks: StateCommandHooks,
): void {
  const storeHelp = "store to use (default: the store of the scope, or of the global scope)";
  const scope = () =>
    new Option(
      "--scope <scope>",
      "keys are relative to this scope (implied by --flow, or --flow with --node)",
    ).choices(["node", "flow", "global"] as const);
  state
    .command("query")
    .description("filter and sort values under a prefix (uses the store's declared indexes)")
    .option("--prefix <prefix>", "only keys under this prefix (default: every key)")
    .option(
      "--where <clause>",
      "a condition (repeatable): path=value, path!=value, path<value, path<=value, path>value, " +
        "path>=value, path~value (contains), path? (exists), !path? (absent); values are JSON " +
        "when they parse, else strings",
      collect,
    )
    .option(
      "--order-by <paths>",
      "sort by these paths: path or path:asc, path:desc or --order-by=-path for descending (repeatable, or comma-separated)",
      collect,
    )
    .option("--limit <n>", "at most n entries", integer("--limit", 0))
    .option("--offset <n>", "skip n matching entries first", integer("--offset", 0))
    .option(
      "--explain",
      "print which index the query uses and whether it scans, instead of running it",
    )
    .option("--store <name>", storeHelp)
    .addOption(scope())
    .option("--flow <id>", "the flow of the flow or node scope")
    .option("--node <id>", "the node of the node scope")
    .option("--json", "print a JSON array of { key, value, version, expiresAt } (or the plan)")
    .action(async (options, command) => {
      const { stateQuery } = await import("./state_query.ts");
      hooks.setExitCode(await stateQuery(options, hooks.globals(command)));
    });
  state
    .command("search")
    .description("full-text search: entries holding every word of <text>, best first")
    .argument("<text>", "the words to find (case-insensitive, compared in Unicode NFKC)")
    .option(
      "--prefix <prefix>",
      "only keys under this prefix (default: the declared search prefix)",
    )
    .option("--fields <paths>", "only these declared fields, comma-separated")
    .option("--limit <n>", "at most n hits (default 20)", integer("--limit", 1))
    .option("--store <name>", storeHelp)
    .addOption(scope())
    .option("--flow <id>", "the flow of the flow or node scope")
    .option("--node <id>", "the node of the node scope")
    .option("--json", "print a JSON array of { key, value, version, expiresAt, score }")
    .action(async (text, options, command) => {
      const { stateSearch } = await import("./state_query.ts");
      hooks.setExitCode(await stateSearch(text, options, hooks.globals(command)));
    });
}
