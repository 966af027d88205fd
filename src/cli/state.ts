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
 * @module
 */
import { didYouMean } from "../_suggest.ts";
import { openRuntime } from "../runtime.ts";
import type { Entry, Store } from "../store/types.ts";
import { formatKey, parseJsonValue, parseKey, UsageError } from "./input.ts";
import type { GlobalOptions } from "./main.ts";

/** Options shared by the state commands. */
export interface StateOptions {
  /** `--store NAME` (default: the store of the global scope). */
  store?: string;
  /** `--json`. */
  json?: boolean;
}

async function withStore(
  global: GlobalOptions,
  storeName: string | undefined,
  body: (store: Store) => Promise<number>,
): Promise<number> {
  await using runtime = await openRuntime({ config: global.config });
  if (storeName !== undefined && !runtime.storeNames.includes(storeName)) {
    throw new UsageError(
      `Unknown store "${storeName}"${didYouMean(storeName, runtime.storeNames)}: ` +
        `the configured stores are ${runtime.storeNames.join(", ")}`,
    );
  }
  return await body(await runtime.store(storeName));
}

function entryJson(entry: Entry): string {
  return JSON.stringify({
    key: entry.key,
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
  return withStore(global, options.store, async (store) => {
    const entry = await store.get(key);
    if (entry === null) {
      if (options.json) console.log("null");
      console.error(`Key ${formatKey(key)} not found in store "${store.name}"`);
      return 1;
    }
    console.log(options.json ? entryJson(entry) : JSON.stringify(entry.value, null, 2));
    return 0;
  });
}

/** `state set <key> <json-value> [--expire-in MS]`. */
export function stateSet(
  keyText: string,
  valueText: string,
  options: StateOptions & { expireIn?: number },
  global: GlobalOptions,
): Promise<number> {
  const key = parseKey(keyText);
  const value = parseJsonValue(valueText, key);
  return withStore(global, options.store, async (store) => {
    const result = await store.set(key, value, { expireIn: options.expireIn });
    if (!result.ok) {
      console.error(`Cannot set ${formatKey(key)} in store "${store.name}": the write conflicted`);
      return 1;
    }
    if (options.json) {
      console.log(JSON.stringify({ key, version: result.version }));
    } else {
      const expiry = options.expireIn === undefined ? "" : ` (expires in ${options.expireIn} ms)`;
      console.log(`Set ${formatKey(key)} in store "${store.name}"${expiry}`);
    }
    return 0;
  });
}

const MAX_VALUE_WIDTH = 120;

/** `state ls [prefix] [--limit N]`. */
export function stateList(
  prefixText: string | undefined,
  options: StateOptions & { limit?: number },
  global: GlobalOptions,
): Promise<number> {
  const prefix = parseKey(prefixText ?? "", { prefix: true });
  return withStore(global, options.store, async (store) => {
    const entries = store.list({ prefix, limit: options.limit });
    if (options.json) {
      // Stream the array so a large store does not have to fit in memory.
      let first = true;
      const encoder = new TextEncoder();
      const write = (text: string) => Deno.stdout.writeSync(encoder.encode(text));
      write("[");
      for await (const entry of entries) {
        write(`${first ? "" : ",\n"}${entryJson(entry)}`);
        first = false;
      }
      write("]\n");
      return 0;
    }
    let n = 0;
    for await (const entry of entries) {
      let value = JSON.stringify(entry.value);
      if (value.length > MAX_VALUE_WIDTH) value = `${value.slice(0, MAX_VALUE_WIDTH - 1)}…`;
      console.log(`${formatKey(entry.key)}\t${value}`);
      n++;
    }
    if (n === 0) {
      console.error(
        `No entries${
          prefix.length > 0 ? ` under ${formatKey(prefix)}` : ""
        } in store "${store.name}"`,
      );
    }
    return 0;
  });
}

/** `state rm <key>`. */
export function stateRemove(
  keyText: string,
  options: StateOptions,
  global: GlobalOptions,
): Promise<number> {
  const key = parseKey(keyText);
  return withStore(global, options.store, async (store) => {
    const existed = (await store.get(key)) !== null;
    if (existed) await store.delete(key);
    if (options.json) console.log(JSON.stringify({ key, deleted: existed }));
    if (!existed) {
      console.error(`Key ${formatKey(key)} not found in store "${store.name}"; nothing deleted`);
      return 1;
    }
    if (!options.json) console.log(`Deleted ${formatKey(key)} from store "${store.name}"`);
    return 0;
  });
}
