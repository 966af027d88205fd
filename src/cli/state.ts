/**
 * `flowstate state get|set|ls|rm`: read and write one store from the command
 * line.
 *
 * `--json` output (one JSON document on stdout, stable):
 * - `get`: `{ "key": [...], "value": ..., "version": "...", "expiresAt": number | null }`, or `null` (exit 1)
 * - `set`: `{ "key": [...], "version": "..." }`
 * - `ls`:  `[{ "key", "value", "version", "expiresAt" }, ...]` in key order
 * - `rm`:  `{ "key": [...], "deleted": true | false }` (exit 1 when false)
 *
 * With `--scope node|flow|global` (plus `--flow ID`, and `--node ID` for the
 * node scope), keys are relative to that scope's prefix (`["flow", ID]`…),
 * in arguments and in output alike, and the store defaults to the one the
 * config maps the scope to. `--flow ID` alone means `--scope flow`, and
 * `--flow ID --node ID` means `--scope node`.
 *
 * @module
 */
import { type ScopeName, scopePrefix } from "../state/scopes.ts";
import { StoreMissingError } from "../errors.ts";
import { openRuntime } from "../runtime.ts";
import type { Entry, Key, Store } from "../store/types.ts";
import { formatKey, parseJsonValue, parseKey, UsageError } from "./input.ts";
import { writeStdout } from "./format.ts";
import {
  checkStore,
  EXIT_FAILURE,
  type GlobalOptions,
  noStoreYet,
  notFound,
  openForReading,
  printError,
  printWarning,
  unlessMissing,
} from "./common.ts";
import { unknownFlow } from "./known_flows.ts";

/** Options shared by the state commands. */
export interface StateOptions {
  /** `--store NAME` (default: the store of the global scope). */
  store?: string;
  /** `--json`. */
  json?: boolean;
  /** `--scope node|flow|global`: keys are relative to the scope's prefix. */
  scope?: ScopeName;
  /** `--flow ID`: the flow of the `flow` and `node` scopes. */
  flow?: string;
  /** `--node ID`: the node of the `node` scope. */
  node?: string;
}

/** Where keys live: a store and the prefix keys are relative to. */
export interface Place {
  store: Store;
  /** `[]` without a scope. */
  prefix: Key;
  /** For messages: `store "default"` or `flow scope of "counter" (store "default")`. */
  label: string;
  /** The config's timezone: times are shown, and read without an offset, in it. */
  timezone: string;
  /** Whether the store holds Flowstate's records (the config's `records:`), under `flowstate/`. */
  records: boolean;
  /**
   * Why `flowId` names no known flow (with a did-you-mean), or `null` when it
   * does: asked when a command given `--flow` found nothing, to tell a typo
   * from a known flow with no state.
   */
  unknownFlow(flowId: string): Promise<string | null>;
}

/** The scope the options name (`--flow` alone implies `flow`), or `undefined`. */
function resolveScope(options: StateOptions): { scope: ScopeName; prefix: Key } | undefined {
  const { flow, node } = options;
  const scope = options.scope ??
    (node !== undefined ? "node" : flow !== undefined ? "flow" : undefined);
  if (scope === undefined) return undefined;
  const needs = (option: string) =>
    new UsageError(
      `${options.scope === undefined ? "--node" : `--scope ${scope}`} needs ${option} (the ${
        option.slice(2)
      } id)`,
    );
  const unused = (option: string) => new UsageError(`${option} does not apply to --scope ${scope}`);
  if (scope === "global") {
    if (flow !== undefined) throw unused("--flow");
    if (node !== undefined) throw unused("--node");
    return { scope, prefix: scopePrefix("global", "") };
  }
  if (flow === undefined || flow === "") throw needs("--flow");
  if (scope === "flow") {
    if (node !== undefined) throw unused("--node");
    return { scope, prefix: scopePrefix("flow", flow) };
  }
  if (node === undefined || node === "") throw needs("--node");
  return { scope, prefix: scopePrefix("node", flow, node) };
}

/**
 * Open the store of a state command and run `body` on it. With `whenMissing`
 * the command only reads: a store that does not exist yet is not created,
 * and `whenMissing` gives the exit code instead.
 */
export async function withStore(
  global: GlobalOptions,
  options: StateOptions,
  body: (place: Place) => Promise<number>,
  whenMissing?: (note: string) => number,
): Promise<number> {
  const scoped = resolveScope(options);
  const storeName = options.store;
  await using runtime = whenMissing === undefined
    ? await openRuntime({ config: global.config, onWarning: printWarning })
    : await openForReading(global);
  checkStore(runtime, storeName);
  let store: Store;
  try {
    store = scoped === undefined || storeName !== undefined
      ? await runtime.store(storeName)
      : await runtime.storeFor(scoped.scope);
  } catch (err) {
    if (!(err instanceof StoreMissingError) || whenMissing === undefined) throw err;
    return whenMissing(noStoreYet(err));
  }
  const unknown = async (flowId: string) =>
    await unknownFlow(runtime, await unlessMissing(() => runtime.records()), flowId, "state");
  if (scoped === undefined) {
    return await body({
      store,
      prefix: [],
      label: `store "${store.name}"`,
      timezone: runtime.config.timezone,
      records: store.name === runtime.config.records,
      unknownFlow: unknown,
    });
  }
  const owner = scoped.scope === "global"
    ? ""
    : scoped.scope === "flow"
    ? ` of "${options.flow}"`
    : ` of node "${options.node}" in flow "${options.flow}"`;
  return await body({
    store,
    prefix: scoped.prefix,
    label: `${scoped.scope} scope${owner} (store "${store.name}")`,
    timezone: runtime.config.timezone,
    records: false, // a scope's keys are under its prefix, never the records'
    unknownFlow: unknown,
  });
}

/**
 * `": Flow "x" has no recorded state (did you mean "y"?); …"` when the
 * command's `--flow` names no known flow, else `""`.
 */
export async function unknownFlowNote(
  options: { flow?: string },
  unknownFlow: Place["unknownFlow"],
): Promise<string> {
  if (options.flow === undefined) return "";
  const unknown = await unknownFlow(options.flow);
  return unknown === null ? "" : `: ${unknown}`;
}

/** An entry as one line of `--json` output, its key relative to `prefix`. */
export function entryJson(entry: Entry, prefix: Key): string {
  return JSON.stringify({
    key: entry.key.slice(prefix.length),
    value: entry.value,
    version: entry.version,
    expiresAt: entry.expiresAt,
  });
}

/** `state get <key>`. */
export function stateGet(
  keyText: string,
  options: StateOptions,
  global: GlobalOptions,
): Promise<number> {
  const key = parseKey(keyText);
  return withStore(global, options, async ({ store, prefix, label, unknownFlow }) => {
    const entry = await store.get([...prefix, ...key]);
    if (entry === null) {
      return notFound(
        options.json,
        `Key ${formatKey(key)} not found in ${label}${await unknownFlowNote(options, unknownFlow)}`,
      );
    }
    console.log(options.json ? entryJson(entry, prefix) : JSON.stringify(entry.value, null, 2));
    return 0;
  }, (note) => notFound(options.json, `Key ${formatKey(key)} not found. ${note}`));
}

/** `state set <key> <json-value> [--expire-in MS]`. */
export function stateSet(
  keyText: string,
  valueText: string,
  options: StateOptions & { expireIn?: number; force?: boolean },
  global: GlobalOptions,
): Promise<number> {
  const key = parseKey(keyText);
  const value = parseJsonValue(valueText, key);
  return withStore(global, options, async ({ store, prefix, label, records }) => {
    if (records && options.force !== true) refuseRecordsWrite(key, store.name, "set");
    const result = await store.set([...prefix, ...key], value, { expireIn: options.expireIn });
    if (!result.ok) {
      printError(`Cannot set ${formatKey(key)} in ${label}: the write conflicted`);
      return 1;
    }
    if (options.json) {
      console.log(JSON.stringify({ key, version: result.version }));
    } else {
      const expiry = options.expireIn === undefined ? "" : ` (expires in ${options.expireIn} ms)`;
      console.log(`Set ${formatKey(key)} in ${label}${expiry}`);
    }
    return 0;
  });
}

const MAX_VALUE_WIDTH = 120;

/** Where Flowstate keeps its records (runs, versions, metrics, leases) in a store. */
const RECORDS_ROOT = "flowstate";

/** `state ls [prefix] [--limit N]`. */
export function stateList(
  prefixText: string | undefined,
  options: StateOptions & { limit?: number },
  global: GlobalOptions,
): Promise<number> {
  const under = parseKey(prefixText ?? "", { prefix: true });
  return withStore(global, options, async ({ store, prefix, label, unknownFlow }) => {
    const whole = prefix.length === 0 && under.length === 0;
    // Nothing listed for a --flow that names no flow: a typo, said as the error it is.
    const typo = async () => {
      const note = await unknownFlowNote(options, unknownFlow);
      if (note === "") return 0;
      printError(
        `No entries${under.length > 0 ? ` under ${formatKey(under)}` : ""} in ${label}${note}`,
      );
      return EXIT_FAILURE;
    };
    const entries = whole
      ? await withoutRecords(store, options.limit)
      : store.list({ prefix: [...prefix, ...under], limit: options.limit });
    if (options.json) {
      // Stream the array so a large store does not have to fit in memory.
      let first = true;
      writeStdout("[");
      for await (const entry of entries) {
        writeStdout(`${first ? "" : ",\n"}${entryJson(entry, prefix)}`);
        first = false;
      }
      writeStdout("]\n");
      return first && options.limit !== 0 ? await typo() : 0;
    }
    let n = 0;
    for await (const entry of entries) {
      let value = JSON.stringify(entry.value);
      if (value.length > MAX_VALUE_WIDTH) value = `${value.slice(0, MAX_VALUE_WIDTH - 1)}…`;
      console.log(`${formatKey(entry.key.slice(prefix.length))}\t${value}`);
      n++;
    }
    // --limit 0 asks for nothing: no note that there is nothing (as changes and history).
    if (n === 0 && options.limit !== 0) {
      if (await typo() !== 0) return EXIT_FAILURE;
      console.error(
        `No entries${under.length > 0 ? ` under ${formatKey(under)}` : ""} in ${label}`,
      );
    }
    return 0;
  }, (note) => {
    if (options.json) console.log("[]");
    console.error(note);
    return 0;
  });
}

/**
 * Every entry of `store` but Flowstate's own records (under `["flowstate"]`:
 * runs, versions, metrics, leases), which would bury a user's keys; says on
 * stderr how to list them when there are any.
 */
async function withoutRecords(
  store: Store,
  limit: number | undefined,
): Promise<AsyncIterable<Entry>> {
  const hidden = (await store.list({ prefix: [RECORDS_ROOT], limit: 1 }).nextPage()).length > 0;
  if (hidden) {
    console.error(
      `(Flowstate's records under ${RECORDS_ROOT}/ are not listed: \`state ls ${RECORDS_ROOT}\` lists them)`,
    );
  }
  return (async function* () {
    let left = limit ?? Infinity;
    // The key ["flowstate"] itself is a user's; ["flowstate", …] are the records.
    for await (const entry of store.list({ end: [RECORDS_ROOT, ""], limit })) {
      left--;
      yield entry;
    }
    if (left <= 0) return;
    const after = store.list({
      start: [`${RECORDS_ROOT}\0`],
      ...(limit === undefined ? {} : { limit: left }),
    });
    for await (const entry of after) yield entry;
  })();
}

/**
 * A {@linkcode UsageError} for `state set`/`state rm` of a key under
 * `flowstate/` in the records store: Flowstate's own records, which a value
 * written by hand breaks (a run that cannot be shown, a worker's lease lost).
 */
function refuseRecordsWrite(key: Key, storeName: string, command: "set" | "rm"): void {
  // The key ["flowstate"] itself is a user's (`state ls` lists it): the records are under it.
  if (key.length < 2 || key[0] !== RECORDS_ROOT) return;
  throw new UsageError(
    `${formatKey(key)} in store "${storeName}" is one of Flowstate's records (runs, flow ` +
      `versions, metrics, leases under ${RECORDS_ROOT}/), written by Flowstate only: a value ` +
      `written by hand breaks what it belongs to. Change them with the runs, flows and gc ` +
      `commands; to ${command === "set" ? "write" : "delete"} it anyway, add --force`,
  );
}

/** `state rm <key>`. */
export function stateRemove(
  keyText: string,
  options: StateOptions & { force?: boolean },
  global: GlobalOptions,
): Promise<number> {
  const key = parseKey(keyText);
  return withStore(global, options, async ({ store, prefix, label, records }) => {
    if (records && options.force !== true) refuseRecordsWrite(key, store.name, "rm");
    const full = [...prefix, ...key];
    const existed = (await store.get(full)) !== null;
    if (existed) await store.delete(full);
    if (options.json) console.log(JSON.stringify({ key, deleted: existed }));
    if (!existed) {
      printError(`Key ${formatKey(key)} not found in ${label}; nothing deleted`);
      return 1;
    }
    if (!options.json) console.log(`Deleted ${formatKey(key)} from ${label}`);
    return 0;
  }, (note) => {
    // Nothing to delete, and no store is created to find that out.
    if (options.json) console.log(JSON.stringify({ key, deleted: false }));
    printError(`Key ${formatKey(key)} not found; nothing deleted. ${note}`);
    return 1;
  });
}
