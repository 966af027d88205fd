/**
 * Helpers of the jsonfile plugin's tests (jsonfile_test.ts, lock_test.ts,
 * files_test.ts): temp directories, opening a store, and running the
 * scripts of this folder in their own processes.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { openStore } from "../../../src/plugin.ts";
import type { Clock, Key, Store } from "../../../src/store/types.ts";
import type { Warning, WarningHandler } from "../../../src/log.ts";
import { within } from "../../../tests/_deadline.ts";

/** Run `fn` with a new temp directory, removed after it. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-jsonfile-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Open the jsonfile store at `path` as store "main". */
export function open(
  path: string,
  options: Record<string, unknown> = {},
  clock?: Clock,
  onWarning?: WarningHandler,
): Promise<Store> {
  return openStore({ plugin: "jsonfile", path, ...options }, { name: "main", clock, onWarning });
}

/**
 * Collect warnings given to a handler, and fail if anything is printed with
 * `console.warn` or `console.error` meanwhile (the library never prints).
 */
export async function collectWarnings<T>(
  fn: (onWarning: WarningHandler) => Promise<T>,
): Promise<{ result: T; warnings: Warning[] }> {
  const warnings: Warning[] = [];
  const printed: string[] = [];
  const { warn, error } = console;
  console.warn = console.error = (...args: unknown[]) => void printed.push(args.join(" "));
  try {
    const result = await fn((warning) => void warnings.push(warning));
    if (printed.length > 0) throw new Error(`printed: ${printed.join("\n")}`);
    return { result, warnings };
  } finally {
    console.warn = warn;
    console.error = error;
  }
}

const CONFIG = fileURLToPath(new URL("../../../deno.json", import.meta.url));

/** Run a helper script from this folder in its own Deno process. */
export function spawnHelper(
  script: string,
  args: string[],
  permissions = ["--allow-read", "--allow-write", "--allow-env", "--allow-sys", "--allow-run"],
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      `--config=${CONFIG}`,
      ...permissions,
      fileURLToPath(new URL(`./${script}`, import.meta.url)),
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    env: { RUST_BACKTRACE: "0" },
  }).spawn();
}

/** Complete lines of a stream (a trailing partial line is dropped). */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  let read = "";
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    // A helper that neither prints nor exits fails the test with what it printed.
    const { value: chunk, done } = await within(reader.read(), "a line from a helper process", {
      details: () => `it printed:\n${read}`,
    });
    if (done) break;
    read += chunk;
    rest += chunk;
    for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
}

/** Every line left in `out`. */
export async function drain(out: AsyncGenerator<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const line of out) all.push(line);
  return all;
}

/** The names in `dir`, sorted. */
export async function files(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** A store document holding `entries`, each at version "v0" and never expiring. */
export function doc(entries: { key: Key; value: unknown }[]): string {
  return `{"format": "flowstate.jsonfile", "version": 1, "entries": [\n${
    entries.map((e) =>
      `{"key": ${JSON.stringify(e.key)}, "value": ${
        JSON.stringify(e.value)
      }, "version": "v0", "expiresAt": null}`
    ).join(",\n")
  }\n]}\n`;
}
