/**
 * The `flowstate` command definitions (commander): every command, its
 * options and help. Loaded by `main.ts` for every command line but a plain
 * `flowstate run <flow>` (see `plain_run.ts`), so that a run pays nothing for
 * the definitions of the others. Command bodies live in sibling modules and
 * are imported only when their command runs.
 *
 * @module
 */
import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import denoJson from "../../deno.json" with { type: "json" };
import { configPath, type GlobalOptions } from "./common.ts";
import { addStateQueryCommands } from "./state_query_commands.ts";
import { jsonLogs, LOG_FORMAT_ENV, LOG_FORMATS } from "./log_format.ts";

const HELP_AFTER = `
Keys are a JSON array ('["flow","counter","count"]') or slash-separated
(flow/counter/count). Values are JSON: quote strings ('"hello"').

Exit codes: 0 ok, 1 failure or not found, 2 usage error or invalid config
or flow, 130 run cancelled with Ctrl-C (143 SIGTERM, 129 SIGHUP).
Config: --config PATH, else $FLOWSTATE_CONFIG, else ./flowstate.yaml if it
exists; without one, a SQLite store at $FLOWSTATE_HOME/state.db (default
home: ./.flowstate). Every relative path in a config file (home, default
.flowstate beside it; stores, modules, flows, jobs' options such as
jobs.backup.options.out) is relative to its folder, wherever the command
runs; paths given as flags are relative to the working directory.
Times in tables are shown in the config's timezone (default UTC), with it;
a time given without an offset (--at, --since, --until) is read in it too.
Failures are printed on stderr as lines starting with "error: ".`;

function integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(`${name} must be an integer ${range} (got "${value}")`);
    }
    return n;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

const RUN_STATUSES = [
  "queued",
  "running",
  "succeeded",
  "failed",
  "cancelled",
  "timed-out",
] as const;

/** `--scope`, `--flow` and `--node`, shared by the state commands. */
function scopeOption() {
  return new Option(
    "--scope <scope>",
    "keys are relative to this scope (implied by --flow, or --flow with --node)",
  ).choices(["node", "flow", "global"] as const);
}
const flowHelp = "the flow of the flow or node scope";
const nodeHelp = "the node of the node scope";

/** The program: every command, calling `setExitCode` with its exit code. */
export function buildProgram(setExitCode: (code: number) => void) {
  const program = new Command()
    .name("flowstate")
    .description("Flowstate: a headless job runner for Deno with storage plugins.")
    .version(denoJson.version, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .option(
      "-c, --config <path>",
      "config file (default: $FLOWSTATE_CONFIG, else ./flowstate.yaml if it exists)",
    )
    .option("-q, --quiet", "no progress bars, no log lines: only results and errors")
    .option("--debug", "print stack traces of errors (and debug log lines with --log-format json)")
    .addOption(
      new Option(
        "--log-format <format>",
        `log lines on stderr: text, or json (one JSON object a line); default: $${LOG_FORMAT_ENV}, else text`,
      ).choices(LOG_FORMATS),
    )
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    // With --log-format json a usage error is one line: its message.
    .showHelpAfterError(jsonLogs() ? false : "(run flowstate --help for usage)")
    .addHelpText("after", HELP_AFTER);
  // With --log-format json, commander's messages on stderr are log lines too (one object each).
  if (jsonLogs()) {
    program.configureOutput({ writeErr: (text) => console.error(text.replace(/\n$/, "")) });
  }

  const globals = (command: { optsWithGlobals(): GlobalOptions }): GlobalOptions => {
    const { config, debug, quiet } = command.optsWithGlobals();
    return { config: configPath(config), debug, quiet };
  };
  /** `--quiet` is a global option: wherever it is written, the program takes it. */
  const quiet = (command: { optsWithGlobals(): GlobalOptions }) =>
    command.optsWithGlobals().quiet === true;

  const stores = program
    .command("stores")
    .description("list the configured stores: name, plugin, entries, scopes, location")
    .option("--json", "print a JSON array")
    .action(async (options, command) => {
      const { listStores } = await import("./stores.ts");
      setExitCode(await listStores(options, globals(command)));
    });
  stores
    .command("repair")
    .description(
      "set a store's damaged file aside (as <file>.corrupt-<time>) so that the store starts empty",
    )
    .argument("<store>", "the store, by its name in the config")
    .option("--json", "print { store, path, movedTo } (movedTo null when nothing was wrong)")
    .addHelpText(
      "after",
      "\nA damaged store file is never moved or overwritten by any other command: every open\n" +
        "refuses it until you act. Restore a backup into the empty store afterwards with\n" +
        "`flowstate restore --store <store> <file>`. A file a newer Flowstate wrote, one that is\n" +
        "not a store (another application's database) and a postgres or Redis store are left\n" +
        "as they are, with what to do instead. A SQLite file that opens but fails SQLite's\n" +
        "integrity check (run here) is reported, not moved: back up what it still reads first.\n" +
        "Exit 0 repaired or healthy, 1 otherwise.",
    )
    .action(async (name, _options, command) => {
      const { repairStore } = await import("./stores.ts");
      // `--json` is also an option of `stores`, which takes it wherever it is written.
      const json = command.optsWithGlobals().json === true;
      setExitCode(await repairStore(name, { json }, globals(command)));
    });

  const state = program
    .command("state")
    .description("read and write state in a store")
    .addHelpText("after", HELP_AFTER);

  const storeHelp = "store to use (default: the store of the scope, or of the global scope)";
  state
    .command("get")
    .description("print the value at a key (exit 1 if absent)")
    .argument("<key>", "the key")
    .option("--store <name>", storeHelp)
    .addOption(scopeOption())
    .option("--flow <id>", flowHelp)
    .option("--node <id>", nodeHelp)
    .option("--json", "print the entry as JSON: { key, value, version, expiresAt } or null")
    .option(
      "--at <when>",
      "the value as it was: #<seq> (a change's sequence number), a time " +
        "(2026-12-04T21:15:00Z), how long ago (30m, 1h, 7d) or ms since the epoch; " +
        "needs the store's change feed",
    )
    .action(async (key, options, command) => {
      if (options.at !== undefined) {
        const { stateGetAt } = await import("./changes.ts");
        setExitCode(await stateGetAt(key, options.at, options, globals(command)));
        return;
      }
      const { stateGet } = await import("./state.ts");
      setExitCode(await stateGet(key, options, globals(command)));
    });
  state
    .command("set")
    .description("write a JSON value at a key")
    .argument("<key>", "the key")
    .argument("<json-value>", `the value as JSON; quote strings: '"hello"'`)
    .option("--expire-in <ms>", "expire after this many milliseconds", integer("--expire-in", 1))
    .option("--store <name>", storeHelp)
    .addOption(scopeOption())
    .option("--flow <id>", flowHelp)
    .option("--node <id>", nodeHelp)
    .option("--force", "write a key under flowstate/ in the records store (Flowstate's own)")
    .option("--json", "print { key, version }")
    .action(async (key, value, options, command) => {
      const { stateSet } = await import("./state.ts");
      setExitCode(await stateSet(key, value, options, globals(command)));
    });
  state
    .command("ls")
    .description("list entries under a prefix, in key order")
    .argument("[prefix]", "only keys under this prefix (default: every key)")
    .option("--limit <n>", "at most n entries", integer("--limit", 0))
    .option("--store <name>", storeHelp)
    .addOption(scopeOption())
    .option("--flow <id>", flowHelp)
    .option("--node <id>", nodeHelp)
    .option("--json", "print a JSON array of { key, value, version, expiresAt }")
    .action(async (prefix, options, command) => {
      const { stateList } = await import("./state.ts");
      setExitCode(await stateList(prefix, options, globals(command)));
    });
  state
    .command("rm")
    .description("delete a key (exit 1 if it was absent)")
    .argument("<key>", "the key")
    .option("--store <name>", storeHelp)
    .addOption(scopeOption())
    .option("--flow <id>", flowHelp)
    .option("--node <id>", nodeHelp)
    .option("--force", "delete a key under flowstate/ in the records store (Flowstate's own)")
    .option("--json", "print { key, deleted }")
    .action(async (key, options, command) => {
      const { stateRemove } = await import("./state.ts");
      setExitCode(await stateRemove(key, options, globals(command)));
    });
  state
    .command("history")
    .description(
      "who changed a key, when, and to what (from the store's change feed), oldest first",
    )
    .argument("<key>", "the key")
    .option("--limit <n>", "at most n changes", integer("--limit", 0))
    .option("--store <name>", storeHelp)
    .addOption(scopeOption())
    .option("--flow <id>", flowHelp)
    .option("--node <id>", nodeHelp)
    .option("--json", "print one JSON object per change (seq, at, key, op, value, version, by…)")
    .action(async (key, options, command) => {
      const { stateHistory } = await import("./changes.ts");
      setExitCode(await stateHistory(key, options, globals(command)));
    });
  addStateQueryCommands(state, { setExitCode, globals });

  program
    .command("changes")
    .description(
      "print a store's change feed (who changed what, when), oldest first; --follow to watch",
    )
    .option("--store <name>", "the store (default: the store of the global scope)")
    .option("--since <seq>", "only changes after this sequence number", integer("--since", 0))
    .option("--prefix <key>", "only keys under this prefix")
    .option("--flow <id>", "only changes made by runs of this flow")
    .option("--run <id>", "only changes made by this run")
    .option("--limit <n>", "at most n changes", integer("--limit", 0))
    .option("--json", "print one JSON object per change (seq, at, key, op, value, version, by…)")
    .option("--follow", "keep printing changes as they commit, in any process, until Ctrl-C")
    .action(async (options, command) => {
      const { changesCommand } = await import("./changes.ts");
      setExitCode(await changesCommand(options, globals(command)));
    });

  program
    .command("run")
    .description("run a flow once: print its logs as they happen, then its outcome")
    .argument("<flow>", "the flow file (YAML)")
    .option(
      "-i, --input <name=value>",
      "an input (repeatable), converted to the type the flow declares; overrides that key of " +
        "--inputs",
      collect,
    )
    .option(
      "--inputs <file>",
      "a JSON object of every input (- reads stdin); --input name=value overrides single keys",
    )
    .option("--json", "print the run record as one JSON document (no logs)")
    .option(
      "--watch",
      "run again whenever the flow file, a sub-flow or node module it uses, the --inputs file " +
        "or the config changes (a run in progress is cancelled and restarted), until Ctrl-C",
    )
    .addHelpText(
      "after",
      "\nExit codes: 0 succeeded, 1 failed, cancelled or timed out, 2 invalid flow or input\n" +
        "(nothing is written), 130 cancelled with Ctrl-C (press it twice to exit at once),\n" +
        "143 with SIGTERM, 129 with SIGHUP. With --watch: 130, 143 or 129 once stopped.",
    )
    .action(async (file, { watch, ...options }, command) => {
      if (watch) {
        const { runWatchCommand } = await import("./run_watch.ts");
        setExitCode(
          await runWatchCommand(file, { ...options, quiet: quiet(command) }, globals(command)),
        );
        return;
      }
      const { runCommand } = await import("./run.ts");
      setExitCode(
        await runCommand(file, { ...options, quiet: quiet(command) }, globals(command)),
      );
    });

  program
    .command("validate")
    .description("check flow files without running them or writing anything")
    .argument(
      "[flow...]",
      "flow files (YAML), or folders of *.flow.yaml files (default: the config's flows:)",
    )
    .option(
      "--json",
      "print [{ file, ok, problems: [{ file, line, column, path, message }], nodes: [{ id, type, runs, permissions }] }]",
    )
    .action(async (files, options, command) => {
      const { validateFlows } = await import("./flows.ts");
      setExitCode(await validateFlows(files, globals(command), options));
    });

  program
    .command("graph")
    .description("print a flow's graph (its nodes and needs) as Mermaid or Graphviz DOT")
    .argument("<flow>", "the flow file (YAML)")
    .addOption(
      new Option("--format <format>", "mermaid (GitHub renders it in markdown) or dot (Graphviz)")
        .choices(["mermaid", "dot"] as const).default("mermaid" as const),
    )
    .option("--run <run-id>", "colour the nodes by this run's outcome (a run of this flow)")
    .addHelpText(
      "after",
      "\nExit codes: 0 printed, 1 run not found or of another flow, 2 invalid flow (the errors\n" +
        "validate prints).",
    )
    .action(async (file, options, command) => {
      const { graphCommand } = await import("./graph.ts");
      setExitCode(await graphCommand(file, options, globals(command)));
    });

  const runs = program.command("runs").description("list and inspect recorded runs");
  runs
    .command("ls")
    .description("list runs, newest first")
    .option("--flow <id>", "only runs of this flow")
    .addOption(new Option("--status <status>", "only runs with this status").choices(RUN_STATUSES))
    .option("--since <time>", "only runs started at or after: an ISO date, or a duration ago (7d)")
    .option("--until <time>", "only runs started before: an ISO date, or a duration ago (1h)")
    .option("--limit <n>", "at most n runs (default 20)", integer("--limit", 1))
    .option("--archived", "list runs moved to <home>/archive by the archive job")
    .option("--json", "print a JSON array of run summaries")
    .action(async (options, command) => {
      if (options.archived) {
        const { listArchivedRuns } = await import("./archive.ts");
        setExitCode(await listArchivedRuns(options, globals(command)));
        return;
      }
      const { listRuns } = await import("./runs.ts");
      setExitCode(await listRuns(options, globals(command)));
    });
  runs
    .command("cancel")
    .description(
      "cancel a queued run (it never starts) or a running one, of this machine or another process sharing the store",
    )
    .argument("<id>", "the run id")
    .addHelpText(
      "after",
      "\nThe process running it sees the request within a second and records the run\n" +
        "cancelled. Exit 0 when the request is recorded, 1 when the run already ended or is unknown.",
    )
    .action(async (id, _options, command) => {
      const { cancelRun } = await import("./runs.ts");
      setExitCode(await cancelRun(id, globals(command)));
    });
  runs
    .command("signal")
    .description(
      "send a signal to a run's wait node (an approval, a callback), from any process sharing the store",
    )
    .argument("<run-id>", "the run id")
    .argument("<name>", "the signal's name (the wait node's signal:)")
    .option(
      "--data <json>",
      "the signal's data, a JSON value (the wait node's output; default null)",
    )
    .option(
      "--json",
      "print { runId, flowId, signal, waiting } (waiting: the nodes waiting for it now)",
    )
    .addHelpText(
      "after",
      "\nA node waiting for it goes on within a second; a signal sent before its node waits is\n" +
        "kept for the run until then. Each signal is taken by one waiting node, oldest first.\n" +
        "Exit 0 when sent, 1 when the run already ended or is unknown, 2 for a bad name or --data.",
    )
    .action(async (id, name, options, command) => {
      const { signalCommand } = await import("./signal.ts");
      setExitCode(await signalCommand(id, name, options, globals(command)));
    });
  runs
    .command("retry")
    .description(
      "queue a failed, cancelled or timed-out run again: one more attempt on the same run id",
    )
    .argument("<id>", "the run id")
    .option("--json", "print { runId, status }")
    .addHelpText(
      "after",
      "\nA worker (flowstate worker, or the daemon) runs it. Its earlier attempts and events\n" +
        "stay in its record. Exit 1 when the run is unknown, queued, running or succeeded.",
    )
    .action(async (id, options, command) => {
      const { retryCommand } = await import("./queue.ts");
      setExitCode(await retryCommand(id, options, globals(command)));
    });
  runs
    .command("resume")
    .description(
      "run a failed, cancelled, timed-out or abandoned run again from where it failed: a new " +
        "run with its inputs, reusing the outputs of the nodes that succeeded",
    )
    .argument("<run-id>", "the run id")
    .option(
      "--from <node>",
      "run this node and every node that needs it again (allowed on a run that succeeded)",
    )
    .option(
      "--flow <file>",
      "the flow file, when no file under the config's flows: has the run's flow id",
    )
    .option(
      "--again",
      "resume the run although an earlier resume of it ended (by default refused: resume that " +
        "run instead, it holds the newer outputs)",
    )
    .option(
      "--dry-run",
      "print what the resume would do: each node reused or run again, and why; run and write " +
        "nothing (refused as the resume would be)",
    )
    .option(
      "--json",
      "print the new run's record as one JSON document (no logs); with --dry-run, the preview",
    )
    .addHelpText(
      "after",
      "\nA node is reused (not run again) when it succeeded, its output was recorded whole and\n" +
        "unmasked, its definition is unchanged, it has no when: on_failure/always, and every\n" +
        "node it needs is reused. Exit codes as flowstate run; 1 also when the run cannot be\n" +
        "resumed (unknown, archived, still running, succeeded without --from, a job's, a\n" +
        "sub-run's, mocked, already resumed by another run: see --again),\n" +
        "2 when --from names no node of the flow or --flow is another flow.",
    )
    .action(async (id, options, command) => {
      const { resumeCommand } = await import("./run.ts");
      setExitCode(
        await resumeCommand(id, { ...options, quiet: quiet(command) }, globals(command)),
      );
    });
  runs
    .command("show")
    .description("show a run: its record and a timeline per node (exit 1 if unknown)")
    .argument("<run-id>", "the run id")
    .option("--json", "print { run, events } (with --follow: one JSON object a line)")
    .option(
      "--definition",
      "print only the flow definition the run ran (its file as it was), from the records or " +
        "the archive (with --json: its flow version)",
    )
    .option(
      "--follow",
      "then print each new event as it is recorded (any worker, any process), until the run " +
        "ends; exit as flowstate run does for its status",
    )
    .option("--timeout <duration>", "with --follow: stop following after this long (10m)")
    .addHelpText(
      "after",
      "\nWith --follow, a queued run is waited for (stderr says why it waits), an attempt lost\n" +
        "with its worker is followed into the next one, and an ended or archived run is shown\n" +
        "at once. Ctrl-C or SIGTERM stops following, not the run.\n" +
        "Exit codes: 0 shown (with --follow: the run succeeded), 1 unknown run (with --follow:\n" +
        "it failed, was cancelled or timed out), 2 bad arguments, 124 --timeout passed first\n" +
        "(the run goes on), 130/143/129 following stopped by Ctrl-C, SIGTERM or SIGHUP.",
    )
    .action(async (runId, options, command) => {
      const { showRun } = await import("./runs.ts");
      setExitCode(await showRun(runId, options, globals(command)));
    });

  const flows = program.command("flows").description("list recorded flows and their versions");
  flows
    .command("ls")
    .description(
      "list flows: head version, versions, last run and its status (an archived one marked so)",
    )
    .option("--json", "print a JSON array")
    .action(async (options, command) => {
      const { listFlows } = await import("./flows.ts");
      setExitCode(await listFlows(options, globals(command)));
    });
  flows
    .command("versions")
    .description("list a flow's versions, newest first (exit 1 if unknown)")
    .argument("<flow-id>", "the flow id")
    .option("--json", "print a JSON array")
    .action(async (flowId, options, command) => {
      const { listFlowVersions } = await import("./flows.ts");
      setExitCode(await listFlowVersions(flowId, options, globals(command)));
    });

  program
    .command("metrics")
    .description(
      "run counts and durations (p50, p95, mean) per flow, or per version of one flow: every " +
        "finished run, archived runs and runs the retention job deleted included",
    )
    .argument("[flow-id]", "only this flow, with a row per version")
    .option("--json", "print a JSON array")
    .action(async (flowId, options, command) => {
      const { showMetrics } = await import("./metrics.ts");
      setExitCode(await showMetrics(flowId, options, globals(command)));
    });

  const backup = program
    .command("backup")
    .description("write a compressed, checksummed snapshot of a store (or of each) to a file")
    .option(
      "--store <name>",
      "store to back up (default: jobs.backup.options, else the store of the global scope)",
    )
    .option("--all", "back up every configured store, one file each")
    .option(
      "--out <path>",
      "file to write (with --all, or ending in /: a directory), relative to the working " +
        "directory; default jobs.backup.options.out for the stores it backs up, else " +
        "<home>/backups/<store>-<time>.fsbackup",
    )
    .option("--per-key", "read once, without the snapshot check (for a store that is never quiet)")
    .option(
      "--since <file>",
      "an incremental backup: only the changes after this earlier backup of the store (its change feed)",
    )
    .option(
      "--keep <n>",
      "then delete older backups, keeping the n newest of each store backed up (with their chains)",
      integer("--keep", 1),
    )
    .option(
      "--keep-for <age>",
      "then delete backups older than age (30d, 12h), keeping the rest (with --keep: either keeps)",
    )
    .option(
      "--no-config-options",
      "leave jobs.backup.options out: back up with the flags given and the job's defaults only",
    )
    .option("--dry-run", "say what would be written (and pruned), write nothing")
    .option(
      "--json",
      "print { files: [...], entries, bytes, dryRun, pruned, warnings, notCovered, policy }",
    )
    .addHelpText(
      "after",
      "\nA flag left out is taken from jobs.backup.options in the config (what the daemon's backup\n" +
        "job runs with): --keep/--keep-for replace its keep and keepFor together; --store/--all its\n" +
        "store and all; --out its out (taken only for the stores it backs up); --per-key its\n" +
        'consistency. A "policy:" line (policy in --json) says which options came from where.\n' +
        "--no-config-options leaves all of jobs.backup.options out (a one-off backup).\n" +
        "Paths in jobs.backup.options (out, since) are relative to the config file's folder;\n" +
        "--out and --since, to the working directory. Both are shown absolute.\n" +
        "\nPruning (--keep, --keep-for) deletes only backups this command named\n" +
        "(<store>-<time>[-inc].fsbackup, a valid header of that store) in the directory written to,\n" +
        "never the backup just written, and a full backup with its increments or not at all.\n" +
        "A prune that fails is a warning: the backup still succeeded. Not backed up: the runs the\n" +
        "archive job moved to <home>/archive (said in the output when there are any).",
    )
    .action(async (options, command) => {
      const { backupCommand } = await import("./backup.ts");
      setExitCode(await backupCommand(options, globals(command)));
    });
  backup
    .command("prune")
    // Its global options are the program's: backup's own are not prune's (some are parsed for it).
    .configureHelp({
      showGlobalOptions: true,
      visibleGlobalOptions: () =>
        program.createHelp().visibleOptions(program).filter((o) => o.long !== "--help"),
    })
    .description(
      "delete old backups by a retention policy: only files the backup command named, chains whole",
    )
    .option(
      "--store <name>",
      "prune this store's backups (default: jobs.backup.options, else the global scope's store)",
    )
    .option("--all", "prune the backups of every configured store")
    .option("--keep <n>", "keep the n newest backups of each store", integer("--keep", 1))
    .option("--keep-for <age>", "keep the backups younger than age (30d, 12h); with --keep: either")
    .option(
      "--dir <dir>",
      "where the backups are, relative to the working directory (default: where " +
        "jobs.backup.options.out writes, else <home>/backups)",
    )
    .option(
      "--no-config-options",
      "leave jobs.backup.options out: prune by the flags given only (in <home>/backups by default)",
    )
    .option("--dry-run", "say what would be deleted, delete nothing")
    .option(
      "--json",
      "print { dir, stores, removed, bytes, kept, skipped, failed, dryRun, cancelled, policy }",
    )
    .addHelpText(
      "after",
      "\nWithout --keep and --keep-for, the policy is jobs.backup.options' keep and keepFor in the\n" +
        'config (the daemon\'s backup job prunes by them); either flag replaces both. A "policy:"\n' +
        "line (policy in --json) says which options came from where; --no-config-options\n" +
        "leaves all of jobs.backup.options out.\n" +
        "\nOnly files named <store>-<time>[-inc][-N].fsbackup whose header names that store are\n" +
        "deleted (with their .sha256); a full backup and its increments are kept or deleted\n" +
        "together, and backups named by hand are never deleted (they keep their chains).\n" +
        "Only this project's backups are deleted (their header's origin): another project's in\n" +
        "a shared --dir are left alone, and so are backups written by versions up to 0.5 (no\n" +
        "origin) outside <home>/backups (reported: delete them by hand).\n" +
        "Exit codes: 0 done, 1 a file could not be deleted, 2 bad arguments, 130/143/129 stopped\n" +
        "(Ctrl-C, SIGTERM, SIGHUP) between two files.",
    )
    .action(async (options, command) => {
      const { backupPruneCommand } = await import("./backup.ts");
      // The options prune shares with backup (--keep, --all…) are parsed by backup, wherever
      // they are written (commander's options are not positional here): take both.
      const { out, perKey, since, ...shared } = backup.opts();
      const given = { out, "per-key": perKey, since };
      const wrong = Object.entries(given).find(([, value]) => value !== undefined);
      if (wrong !== undefined) {
        command.error(`error: --${wrong[0]} is not an option of backup prune`);
      }
      // --no-config-options, wherever it is written (each command defaults it to true).
      const configOptions = shared.configOptions && options.configOptions;
      setExitCode(
        await backupPruneCommand({ ...shared, ...options, configOptions }, globals(command)),
      );
    });
  program
    .command("restore")
    .description(
      "verify a backup file (and its increments), then load it into a store (empty, or cleared " +
        "with --force); --at: the store as it was at a time, into a new, empty store",
    )
    .argument("<file>", "the full backup file (.fsbackup)")
    .argument("[increments...]", "incremental backups after it, in the order they were taken")
    .option("--store <name>", "store to restore into")
    .option("--into <name>", "same as --store (reads better with --at)")
    .option(
      "--at <when>",
      "point-in-time restore: replay the changes up to a time (2026-01-01T12:00:00Z), how long " +
        "ago (30m, 1h, 7d), ms since the epoch, or #<seq> (as --at-seq), as state get --at takes",
    )
    .option("--at-seq <n>", "point-in-time restore up to this sequence number of the feed")
    .option(
      "--from <store>",
      "the live store whose feed continues the files (default with --at: the backed-up store, if configured with a feed)",
    )
    .option("--force", "delete everything in the store first if it is not empty")
    .option("--dry-run", "verify the file and check the store, write nothing")
    .option("--json", "print the result as JSON")
    .action(async (file, increments, options, command) => {
      const { restoreCommand } = await import("./backup.ts");
      setExitCode(await restoreCommand(file, { ...options, increments }, globals(command)));
    });

  const jobs = program.command("jobs").description("maintenance jobs: list them, run one now");
  jobs
    .command("ls")
    .description(
      "list the jobs (built-in and configured): schedule, time zone, last and next run " +
        "(jobs and flows the daemon runs: flowstate schedules ls)",
    )
    .option("--json", "print a JSON array")
    .action(async (options, command) => {
      const { jobsList } = await import("./jobs.ts");
      setExitCode(await jobsList(options, globals(command)));
    });
  jobs
    .command("run")
    .description("run a job now (recorded as flow job:<name>)")
    .argument("<name>", "a built-in job (retention, gc, …) or one configured under jobs:")
    .option(
      "-o, --option <name=value>",
      "a job option (repeatable): JSON if it parses, else a string; over jobs.<name>.options " +
        "(a path: relative to the working directory; in the config, to its folder)",
      collect,
    )
    .option("--dry-run", "report what would be done without changing anything")
    .option("--json", "print the run record as one JSON document")
    .addHelpText(
      "after",
      "\nExit codes: 0 succeeded, 1 failed or cancelled, 2 unknown job or invalid option, " +
        "130 cancelled with Ctrl-C, 143 with SIGTERM, 129 with SIGHUP",
    )
    .action(async (name, options, command) => {
      const { jobsRun } = await import("./jobs.ts");
      setExitCode(await jobsRun(name, { ...options, quiet: quiet(command) }, globals(command)));
    });

  program
    .command("schedules")
    .description("what the daemon runs, jobs and flows: schedule, time zone, next tick, last run")
    .command("ls")
    .description("list the schedules, jobs first, then flows (as the daemon starts them)")
    .option("--json", "print a JSON array")
    .action(async (options, command) => {
      const { listSchedules } = await import("./schedules.ts");
      setExitCode(await listSchedules(options, globals(command)));
    });

  program
    .command("enqueue")
    .description("put a run of a flow in the queue and print its id; a worker runs it")
    .argument("<flow>", "a flow id (from the config's flows:) or a flow file")
    .option(
      "-i, --input <name=value>",
      "an input (repeatable), converted to the type the flow declares; overrides that key of " +
        "--inputs",
      collect,
    )
    .option(
      "--inputs <file>",
      "a JSON object of every input (- reads stdin); --input name=value overrides single keys",
    )
    .option("--delay <duration>", "do not start before this long from now (10m, 1h)")
    .option("--at <time>", "do not start before this time (ISO 8601, 2026-05-01T12:00:00Z)")
    .option("--priority <n>", "higher runs first among due runs (whole number, default 0)")
    .option("--key <key>", "dedupe key: while a run with it is queued or running, print that run")
    .option("--max-attempts <n>", "attempts in all if attempts fail (default 1)")
    .option("--backoff <duration>", "wait before a retry, doubling each time (default none)")
    .option("--json", "print { runId, existing } (with --wait or --follow: one JSON object a line)")
    .option(
      "--wait",
      "then wait until the run ends (any worker runs it) and print its outcome; exit as " +
        "flowstate run does",
    )
    .option("--follow", "as --wait, printing its timeline and each event as it is recorded")
    .option("--timeout <duration>", "with --wait or --follow: stop waiting after this long (10m)")
    .addHelpText(
      "after",
      "\nWith --key, --wait and --follow wait for the existing run. Ctrl-C or SIGTERM stops\n" +
        "waiting, not the run (follow it again with: flowstate runs show <id> --follow).\n" +
        "Exit codes: 0 queued (or an existing run for --key; with --wait or --follow: the run\n" +
        "succeeded), 1 it failed, was cancelled or timed out, 2 invalid flow, input or option\n" +
        "(nothing is written), 124 --timeout passed first (the run goes on), 130/143/129\n" +
        "waiting stopped by Ctrl-C, SIGTERM or SIGHUP.",
    )
    .action(async (flow, options, command) => {
      const { enqueueCommand } = await import("./queue.ts");
      setExitCode(await enqueueCommand(flow, options, globals(command)));
    });

  program
    .command("worker")
    .description(
      "run queued runs until SIGINT/SIGTERM (any number of workers may share a store)",
    )
    .option("--concurrency <n>", "runs at once (default 4)", integer("--concurrency", 1))
    .option("--flows <ids>", "only runs of these flows (comma-separated ids)")
    .option("--lease <duration>", "a claim without heartbeat lapses after this long", "30s")
    .option("--poll <duration>", "look for due runs this often (with jitter)", "500ms")
    .option(
      "--grace <duration>",
      "when stopping, wait this long for running runs, then release them to the queue (default: runs.abortGrace)",
    )
    .option("--worker-id <id>", "this worker's id in claims (default: <hostname>:<pid>:<random>)")
    .option(
      "--wait-for-store <duration>",
      "wait at most this long for a records store that cannot be reached at start (default: no limit; 0s: fail at once)",
    )
    .option("--json", "print each event as one JSON object a line (stdout)")
    .addHelpText(
      "after",
      "\nOutput: one line per run that ends. With --quiet: only errors and runs that did not succeed.",
    )
    .action(async (options, command) => {
      const { workerCommand } = await import("./queue.ts");
      setExitCode(await workerCommand({ ...options, quiet: quiet(command) }, globals(command)));
    });

  program
    .command("workers")
    .description(
      "the queue workers sharing the records store: live or stale, what they serve and hold",
    )
    .command("ls", { isDefault: true })
    .description("list the workers (flowstate workers is the same)")
    .option("--json", "print a JSON array (as GET /api/workers)")
    .addHelpText(
      "after",
      "\nA worker is stale when it wrote no heartbeat for three heartbeat intervals (15 s with the\n" +
        "default 30 s lease): killed, paused or cut off from the store. A clean stop removes it;\n" +
        "the gc job deletes stale ones (option staleWorkersAfter, default 1h).",
    )
    .action(async (options, command) => {
      const { workersCommand } = await import("./workers.ts");
      setExitCode(await workersCommand(options, globals(command)));
    });

  program
    .command("daemon")
    .description(
      "run scheduled jobs and flows until SIGINT/SIGTERM (several daemons may share a store)",
    )
    .option("--grace <duration>", "when stopping, wait this long for running work", "30s")
    .option("--runner-id <id>", "this runner's id in leases (default: <hostname>:<pid>:<random>)")
    .option("--json", "print each event as one JSON object a line (stdout), for log collectors")
    .option("--serve", "also serve the HTTP API and the inspector (settings: serve: in the config)")
    .option("--no-queue", "do not run queued runs (by default the daemon works the queue too)")
    .option("--concurrency <n>", "queued runs at once (default 4)", integer("--concurrency", 1))
    .option(
      "--wait-for-store <duration>",
      "wait at most this long for a records store that cannot be reached at start (default: no limit; 0s: fail at once)",
    )
    .addHelpText("after", "\nWith --quiet: only errors and failed ticks.")
    .action(async (options, command) => {
      const { daemonCommand } = await import("./daemon.ts");
      setExitCode(
        await daemonCommand({ ...options, quiet: quiet(command) }, globals(command)),
      );
    });

  program
    .command("serve")
    .description("serve the HTTP API, /metrics and the inspector page until SIGINT/SIGTERM")
    .option(
      "--port <n>",
      "port (default: serve.port in the config, else 8377; 0 picks one)",
      integer("--port", 0, 65535),
    )
    .option("--host <address>", "address to bind (default 127.0.0.1; any other requires a token)")
    .option(
      "--token <token>",
      "token requests must carry (default: $FLOWSTATE_SERVE_TOKEN or the file $FLOWSTATE_SERVE_TOKEN_FILE names, serve.token)",
    )
    .option(
      "--no-worker",
      "run no queue worker here: runs started over HTTP wait for workers elsewhere",
    )
    .option(
      "--concurrency <n>",
      "the worker's runs at once (default 4)",
      integer("--concurrency", 1),
    )
    .option(
      "--wait-for-store <duration>",
      "the worker waits at most this long for a records store that cannot be reached at start (default: no limit; 0s: fail at once)",
    )
    .addHelpText(
      "after",
      "\nRuns started over HTTP and by webhooks are enqueued; the server's worker runs them\n" +
        "(and any other queued run), unless --no-worker.\n" +
        "On any host but 127.0.0.1 a token is required: without one, one is generated and\n" +
        'printed once. Clients send "Authorization: Bearer <token>"; the page takes it from\n' +
        "the URL printed at start (#token=…). The API is described at /api/openapi.json.",
    )
    .action(async (options, command) => {
      const { serveCommand } = await import("./serve.ts");
      setExitCode(await serveCommand({ ...options, quiet: quiet(command) }, globals(command)));
    });

  program
    .command("init")
    .description("write a starter project (deno.json, flowstate.yaml, a flow, a node, a test)")
    .argument("[dir]", "the project directory (default: the working directory)")
    .option("--json", "print { dir, written, kept, failed }")
    .addHelpText("after", "\nNever overwrites a file: one that exists is kept and listed.")
    .action(async (dir, options) => {
      const { initCommand } = await import("./init.ts");
      setExitCode(await initCommand(dir, options));
    });

  program
    .command("schema")
    .description("print the flow format as JSON Schema (for editors)")
    .action(async () => {
      const { printFlowSchema } = await import("./flows.ts");
      setExitCode(printFlowSchema());
    });

  const migrate = program
    .command("migrate")
    .description(
      "data migrations (migrate data …) and moving a whole store to another backend (migrate store)",
    );
  const data = migrate
    .command("data")
    .description(
      "apply, revert and inspect data migrations (modules like migrations/0001_name.ts)",
    );
  const dirHelp = "migrations folder (default: migrations/ beside the config)";
  const migrateStoreHelp = "store to migrate (default: the store of the global scope)";
  data
    .command("status")
    .description("list every migration (applied, pending, missing) and warn about changed modules")
    .option("--dir <dir>", dirHelp)
    .option("--store <name>", migrateStoreHelp)
    .option("--json", "print { store, dir, migrations, pending, warnings, lock }")
    .action(async (options, command) => {
      const { migrateDataStatus } = await import("./migrate.ts");
      setExitCode(await migrateDataStatus(options, globals(command)));
    });
  data
    .command("pending")
    .description("print the ids of the migrations not applied yet, in the order up applies them")
    .option("--dir <dir>", dirHelp)
    .option("--store <name>", migrateStoreHelp)
    .option("--json", "print { store, dir, pending }")
    .action(async (options, command) => {
      const { migrateDataPending } = await import("./migrate.ts");
      setExitCode(await migrateDataPending(options, globals(command)));
    });
  data
    .command("up")
    .description("apply the pending migrations in order, under a lock, recording each")
    .option("--to <id>", "stop after this migration (its id, or its number)")
    .option("--dir <dir>", dirHelp)
    .option("--store <name>", migrateStoreHelp)
    .option("--dry-run", "print the plan and change nothing")
    .option("--json", "print { action, store, dryRun, plan, done, cancelled, warnings }")
    .action(async (options, command) => {
      const { migrateDataUp } = await import("./migrate.ts");
      setExitCode(await migrateDataUp(options, globals(command)));
    });
  data
    .command("down")
    .description("revert the most recent migrations, newest first, and delete their records")
    .option("--step <n>", "how many to revert (default 1)", integer("--step", 1))
    .option("--dir <dir>", dirHelp)
    .option("--store <name>", migrateStoreHelp)
    .option("--dry-run", "print the plan and change nothing")
    .option("--json", "print { action, store, dryRun, plan, done, cancelled, warnings }")
    .action(async (options, command) => {
      const { migrateDataDown } = await import("./migrate.ts");
      setExitCode(await migrateDataDown(options, globals(command)));
    });
  migrate
    .command("store")
    .description(
      "copy every entry of one store into another (any backends) in resumable batches, then verify",
    )
    .requiredOption("--from <name>", "the store to copy (it is only read)")
    .requiredOption("--to <name>", "the store to fill (must be empty unless --resume or --force)")
    .option("--batch <n>", "entries per atomic commit (default 1000)", integer("--batch", 1))
    .option("--resume", "continue an interrupted move from the checkpoint in the target")
    .option("--force", "clear the target first and start over")
    .option("--dry-run", "print what would be done and change nothing")
    .option("--json", "print the result: { from, to, status, total, count, checksum, … }")
    .action(async (options, command) => {
      const { migrateStoreCommand } = await import("./migrate.ts");
      setExitCode(await migrateStoreCommand(options, globals(command)));
    });

  refuseEmptyValues(program);
  // A usage error names the help of the command it is about (`flowstate runs show --help`
  // lists runs show's options; the program's help does not).
  if (!jsonLogs()) {
    const hint = (command: Command, path: string) => {
      for (const sub of command.commands as Command[]) {
        sub.showHelpAfterError(`(run ${path} ${sub.name()} --help for usage)`);
        hint(sub, `${path} ${sub.name()}`);
      }
    };
    hint(program, "flowstate");
  }
  return program;
}

/** What commander keeps of an option or an argument, as far as {@linkcode refuseEmptyValues} needs it. */
/**
 * Arguments and options whose own checks say more about an empty value: a
 * key (`Invalid key "": part 1 is empty…`), a JSON value (`'""'` stores the
 * empty string), the words of a search.
 */
const KEEP_EMPTY = new Set(["key", "json-value", "text", "--key", "--prefix"]);

interface ValueTaker {
  required?: boolean;
  variadic: boolean;
  defaultValue?: unknown;
  parseArg?: (value: string, previous: unknown) => unknown;
}

/**
 * Make every option value, required argument and list of arguments of every
 * command refuse an empty string (`--config ""`, `run ""`, an unset shell variable), as the
 * usage error it is, instead of meaning the working directory or "not found".
 */
function refuseEmptyValues(command: unknown): void {
  const { options, registeredArguments, commands } = command as {
    options: readonly (ValueTaker & { optional?: boolean; long?: string })[];
    registeredArguments: readonly (ValueTaker & { name(): string })[];
    commands: readonly unknown[];
  };
  const refuse = (taker: ValueTaker) => {
    const inner = taker.parseArg;
    taker.parseArg = (value, previous) => {
      if (value === "") {
        throw new InvalidArgumentError(
          "It is empty; give a value (an unset shell variable?)",
        );
      }
      if (inner !== undefined) return inner(value, previous);
      if (!taker.variadic) return value;
      return previous === taker.defaultValue || !Array.isArray(previous)
        ? [value]
        : [...previous, value];
    };
  };
  for (const option of options) {
    if ((option.required || option.optional) && !KEEP_EMPTY.has(option.long ?? "")) refuse(option);
  }
  for (const argument of registeredArguments) {
    // A list of files (`validate [flow...]`, `restore <file> [increments...]`) holds no empty one.
    if ((argument.required || argument.variadic) && !KEEP_EMPTY.has(argument.name())) {
      refuse(argument);
    }
  }
  for (const sub of commands) refuseEmptyValues(sub);
}
