/**
 * `flowstate stores`: every configured store with its plugin, entry count,
 * the scopes that use it and where it lives.
 *
 * `--json` prints one array, in config order:
 * `[{ "name", "plugin", "location", "entries", "scopes": ["global", ...], "error"?, "missing"? }]`;
 * a store that cannot be opened has `location` and `entries` `null` and an
 * `error` message; a store that does not exist yet has `"missing": true` and
 * 0 entries. Listing changes nothing: it creates no store, and a damaged
 * store file is reported, never moved.
 *
 * `flowstate stores repair <store>`: the one step that sets a damaged store
 * file aside (with the files a backend keeps beside it, like SQLite's `-wal`
 * and `-shm`), so that the next open starts an empty store. It never moves a
 * file a newer Flowstate wrote, nor one that is not a store (another
 * application's database), and a server's store (postgres, Redis) has no file
 * to set aside: those are refused with what to do instead.
 *
 * @module
 */
import { withWritten, writtenOf } from "../_written.ts";
import { SCOPES } from "../state/scopes.ts";
import { setAside } from "../_fs.ts";
import { ConfigError, messageOf, StoreCorruptError, StoreMissingError } from "../errors.ts";
import { openRuntime } from "../runtime.ts";
import { openStore } from "../plugin.ts";
import { checkStore, type GlobalOptions, openForReading, printWarning } from "./common.ts";

/** One row of `flowstate stores`. */
export interface StoreRow {
  /** The store's name in the config. */
  name: string;
  /** The plugin it uses: its own name once opened, else as written in the config. */
  plugin: string;
  /** Where its data lives (path, URL without password, "memory"), or `null` if it did not open. */
  location: string | null;
  /** How many live entries it holds, or `null` if it did not open. */
  entries: number | null;
  /** The scopes mapped to it. */
  scopes: string[];
  /** Why it could not be opened. */
  error?: string;
  /** `true` when the store does not exist yet (nothing was created to list it); `entries` is 0. */
  missing?: true;
}

/** `stores [--json]`. Exit 1 if a store failed to open, 2 if its options are invalid. */
export async function listStores(
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  const rows: StoreRow[] = [];
  let exitCode = 0;
  for (const name of runtime.storeNames) {
    const spec = runtime.config.stores[name];
    const row: StoreRow = {
      name,
      plugin: typeof spec.plugin === "string" ? spec.plugin : spec.plugin.name,
      location: null,
      entries: null,
      scopes: SCOPES.filter((scope) => runtime.config.scopes[scope] === name),
    };
    try {
      const store = await runtime.store(name);
      row.plugin = store.plugin; // a plugin module's own name, not its path
      row.location = store.location;
      row.entries = await store.count();
    } catch (err) {
      if (err instanceof StoreMissingError) {
        row.location = err.address;
        row.entries = 0;
        row.missing = true;
      } else {
        row.error = messageOf(err);
        exitCode = Math.max(exitCode, err instanceof ConfigError ? 2 : 1);
      }
    }
    rows.push(row);
  }
  if (options.json) {
    console.log(JSON.stringify(rows));
  } else {
    printTable(rows);
    for (const row of rows) {
      if (row.error !== undefined) console.error(`error: store "${row.name}": ${row.error}`);
    }
  }
  return exitCode;
}

function printTable(rows: StoreRow[]): void {
  const table = [
    ["NAME", "PLUGIN", "ENTRIES", "SCOPES", "LOCATION"],
    ...rows.map((r) => [
      r.name,
      r.plugin,
      r.entries === null ? "-" : String(r.entries),
      r.scopes.join(",") || "-",
      r.missing ? `${r.location} (not created yet)` : r.location ?? "(not opened: see below)",
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) {
    console.log(
      row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i])).join("  "),
    );
  }
}

/** Whether `path` names a file (a server's store names a location, not a file). */
async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.lstat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Files a backend keeps beside its main file, set aside with it. */
const SIDE_FILES = ["-wal", "-shm", "-journal"];

/**
 * `stores repair <store> [--json]`: if the store refuses to open because its
 * file is damaged (a `StoreCorruptError` with reason `"damaged"`), move the
 * file and its side files aside as `<file>.corrupt-<time>` and say where; a
 * store that opens is left alone, and so is a newer Flowstate's file, a file
 * that is not a store, or a server's store (refused). Exit 0 repaired or
 * healthy, 1 otherwise.
 */
export async function repairStore(
  name: string,
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openRuntime({ config: global.config, onWarning: printWarning });
  checkStore(runtime, name);
  let damaged: StoreCorruptError;
  try {
    await runtime.store(name);
    // It opens: the backend's own integrity check (sqlite: quick_check) may still find damage.
    // Such a file is reported, not moved: what it still reads can be backed up first.
    try {
      const spec = runtime.config.stores[name];
      await using _checked = await openStore(withWritten({ ...spec }, writtenOf(spec)), {
        name,
        home: runtime.home,
        baseDir: runtime.config.baseDir,
        mustExist: true,
        verify: true,
      });
    } catch (err) {
      if (!(err instanceof StoreCorruptError)) throw err;
      if (options.json) {
        console.log(JSON.stringify({
          store: name,
          path: err.path,
          movedTo: null,
          reason: err.reason,
          error: err.message,
        }));
      } else console.error(`error: ${err.message}`);
      return 1;
    }
    if (options.json) console.log(JSON.stringify({ store: name, path: null, movedTo: null }));
    else console.log(`Store "${name}" opens cleanly: nothing to repair.`);
    return 0;
  } catch (err) {
    if (!(err instanceof StoreCorruptError)) throw err;
    damaged = err;
  }
  const path = damaged.path;
  const refusal = damaged.reason === "newer"
    ? "a newer Flowstate wrote it, so it is not damaged: upgrade Flowstate to open it"
    : damaged.reason === "foreign"
    ? `it is not a Flowstate store, so it is someone else's data: point store "${name}" at a new ` +
      "place in the config"
    : await isFile(path)
    ? undefined
    : "it is not kept in a file, so there is nothing to set aside: restore it from a backup " +
      `(flowstate restore --store ${name} <file>), or fix it where it lives`;
  if (refusal !== undefined) {
    const message = `Store "${name}" was left as it is: ${refusal}.`;
    if (options.json) {
      console.log(JSON.stringify({
        store: name,
        path,
        movedTo: null,
        reason: damaged.reason,
        error: `${message}\n${damaged.message}`,
      }));
    } else console.error(`${damaged.message}\n${message}`);
    return 1;
  }
  const { movedTo, sideFiles } = await setAside(path, SIDE_FILES);
  const moved = [movedTo, ...sideFiles];
  if (options.json) {
    console.log(JSON.stringify({ store: name, path, movedTo, sideFiles: moved.slice(1) }));
  } else {
    console.log(`Store "${name}": ${damaged.message.split("\n")[0]}`);
    console.log(
      `Moved ${path} to ${movedTo}${
        moved.length > 1 ? ` (and ${moved.length - 1} side file${moved.length > 2 ? "s" : ""})` : ""
      }.`,
    );
    console.log(
      `The next open of store "${name}" starts empty; restore a backup into it with ` +
        `flowstate restore --store ${name} <file>.`,
    );
  }
  return 0;
}
