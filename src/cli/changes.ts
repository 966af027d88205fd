/**
 * The change feed on the command line: `flowstate changes`, `flowstate state
 * history <key>` and `flowstate state get <key> --at <time|#seq>`.
 *
 * `--json` output is one JSON object per line (a {@linkcode Change}: `seq`,
 * `at`, `key`, `op`, `value`, `version`, `previousVersion`, `expiresAt`,
 * `by`), so that `--follow` streams it.
 *
 * @module
 */
import { keyHistory } from "../store/store.ts";
import type { Change, Key } from "../store/types.ts";
import { formatKey, parseKey, UsageError } from "./input.ts";
import { parsePointInTime } from "./run_filters.ts";
import { formatTime, writeStdout as write } from "./format.ts";
import { EXIT_FAILURE, type GlobalOptions, interruptible, notFound, printError } from "./common.ts";
import { entryJson, type StateOptions, unknownFlowNote, withStore } from "./state.ts";

const MAX_VALUE_WIDTH = 80;

/** Who, for a table: `run <id> (flow/node)`, `job gc`, or the actor. */
export function formatActor(by: Change["by"]): string {
  if (by.runId !== undefined) {
    return `run ${by.runId} (${by.flowId ?? "?"}${by.nodeId ? `/${by.nodeId}` : ""})`;
  }
  if (by.job !== undefined) return `job ${by.job}`;
  return by.actor ?? "unknown";
}

/** One change as a line of a table (key relative to `prefix`). */
export function formatChange(change: Change, prefix: Key, timezone?: string): string {
  let value = change.op === "set" ? JSON.stringify(change.value) : "";
  if (value.length > MAX_VALUE_WIDTH) value = `${value.slice(0, MAX_VALUE_WIDTH - 1)}…`;
  // Held in the clear by an encrypted store's feed: written before encryption was turned on.
  if (change.unsealed) value += "  (unsealed: from before encryption; rekey seals it)";
  return [
    `#${change.seq}`,
    formatTime(change.at, timezone),
    change.op,
    formatKey(change.key.slice(prefix.length)),
    formatActor(change.by),
    value,
  ].join("\t").trimEnd();
}

function changeJson(change: Change, prefix: Key): string {
  return JSON.stringify({ ...change, key: change.key.slice(prefix.length) });
}

/** Parse `--at` of `state get` (see {@linkcode parsePointInTime}), in the config's `timezone`. */
export function parseAt(text: string, timezone?: string): { seq: number } | { time: number } {
  return parsePointInTime(text, "--at", Date.now(), timezone);
}

/** `state get <key> --at <time|#seq>`. */
export function stateGetAt(
  keyText: string,
  atText: string,
  options: StateOptions,
  global: GlobalOptions,
): Promise<number> {
  const key = parseKey(keyText);
  parseAt(atText); // bad input is refused before anything opens
  return withStore(global, options, async ({ store, prefix, label, timezone, unknownFlow }) => {
    const at = parseAt(atText, timezone);
    const when = "seq" in at ? `#${at.seq}` : new Date(at.time).toISOString();
    let entry;
    try {
      entry = await store.getAt([...prefix, ...key], at);
    } catch (err) {
      // A point the feed does not reach (trimmed, or not yet written): the message says how far.
      if (err instanceof RangeError) throw new UsageError(err.message, { cause: err });
      throw err;
    }
    if (entry === null) {
      return notFound(
        options.json,
        `Key ${formatKey(key)} was absent in ${label} at ${when}${await unknownFlowNote(
          options,
          unknownFlow,
        )}`,
      );
    }
    console.log(options.json ? entryJson(entry, prefix) : JSON.stringify(entry.value, null, 2));
    return 0;
  }, (note) => notFound(options.json, `Key ${formatKey(key)} not found. ${note}`));
}

/** `state history <key> [--limit N] [--json]`. */
export function stateHistory(
  keyText: string,
  options: StateOptions & { limit?: number },
  global: GlobalOptions,
): Promise<number> {
  const key = parseKey(keyText);
  return withStore(global, options, async ({ store, prefix, label, unknownFlow }) => {
    let n = 0;
    for await (const change of keyHistory(store, [...prefix, ...key], { limit: options.limit })) {
      write(
        `${options.json ? changeJson(change, prefix) : formatChange(change, prefix)}\n`,
      );
      n++;
    }
    if (n === 0 && options.limit !== 0) {
      const typo = await unknownFlowNote(options, unknownFlow);
      const message = `No changes of ${formatKey(key)} in the change feed of ${label}${typo}`;
      if (typo !== "") {
        printError(message);
        return EXIT_FAILURE;
      }
      console.error(message);
    }
    return 0;
  }, (note) => {
    console.error(note);
    return 0;
  });
}

/** Options of `flowstate changes`. */
export interface ChangesCommandOptions {
  /** `--store NAME`. */
  store?: string;
  /** `--since N`: after this sequence number. */
  since?: number;
  /** `--prefix KEY`: only keys under it. */
  prefix?: string;
  /** `--flow ID`: only changes made by runs of this flow. */
  flow?: string;
  /** `--run ID`: only changes made by this run. */
  run?: string;
  /** `--limit N`. */
  limit?: number;
  /** `--json`: one JSON object per line. */
  json?: boolean;
  /** `--follow`: keep printing changes as they commit, until Ctrl-C. */
  follow?: boolean;
}

/** `flowstate changes`. */
export function changesCommand(
  options: ChangesCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  const under = parseKey(options.prefix ?? "", { prefix: true });
  if (options.follow && options.limit !== undefined) {
    throw new UsageError("--limit does not apply with --follow (stop it with Ctrl-C)");
  }
  const wanted = (change: Change) =>
    (options.flow === undefined || change.by.flowId === options.flow) &&
    (options.run === undefined || change.by.runId === options.run);
  return withStore(global, { store: options.store }, async ({ store, unknownFlow }) => {
    let n = 0;
    const print = (change: Change) => {
      write(`${options.json ? changeJson(change, []) : formatChange(change, [])}\n`);
      n++;
    };
    if (!options.follow) {
      const limit = options.limit ?? Infinity;
      for await (const change of store.changes({ since: options.since, prefix: under })) {
        if (n >= limit) break;
        if (wanted(change)) print(change);
      }
      if (n === 0 && limit > 0) {
        const typo = await unknownFlowNote(options, unknownFlow);
        const message = `No changes in the change feed of store "${store.name}"${typo}`;
        if (typo !== "") {
          printError(message);
          return EXIT_FAILURE;
        }
        console.error(message);
      }
      return 0;
    }
    // Following a flow that no flow file or record names would wait for nothing.
    const typo = await unknownFlowNote(options, unknownFlow);
    if (typo !== "") {
      printError(`Cannot follow the changes of flow "${options.flow}"${typo}`);
      return EXIT_FAILURE;
    }
    const since = options.since ?? (await store.feedInfo()).lastSeq;
    const { interrupted, exitCode } = await interruptible(
      "Stopping",
      async (signal) => {
        for await (const change of store.watch([under], { since, signal })) {
          if (wanted(change)) print(change);
        }
      },
    );
    return interrupted ? exitCode : 0;
  }, (note) => {
    console.error(note);
    return 0;
  });
}
