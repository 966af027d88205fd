/**
 * Command-line input: keys, JSON values, and the usage error the CLI maps to
 * exit code 2.
 *
 * @module
 */
import type { Key } from "../store/types.ts";
import { formatKey } from "../store/keys.ts";
import { serializeValue } from "../store/values.ts";
import { shellQuote } from "../_shell.ts";
import { parseJson } from "../_json.ts";

/** Bad command-line input: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  /** Create the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/**
 * Parse a key written on the command line: a JSON array of strings
 * (`'["flow","counter","count"]'`) or slash-separated (`flow/counter/count`).
 * With `prefix`, an empty string or `[]` is the empty prefix and one trailing
 * slash is allowed (`flow/`).
 */
export function parseKey(text: string, options: { prefix?: boolean } = {}): Key {
  const what = options.prefix ? "prefix" : "key";
  let parts: unknown;
  if (text.trimStart().startsWith("[")) {
    try {
      parts = JSON.parse(text);
    } catch {
      throw new UsageError(
        `Invalid ${what} ${text}: it starts with "[" but is not a JSON array; write '["flow","counter"]' or flow/counter`,
      );
    }
    if (!Array.isArray(parts) || !parts.every((p) => typeof p === "string")) {
      throw new UsageError(
        `Invalid ${what} ${text}: a JSON ${what} must be an array of strings, like '["flow","counter"]'`,
      );
    }
  } else {
    const body = options.prefix && text.endsWith("/") ? text.slice(0, -1) : text;
    if (body === "" && options.prefix) return [];
    parts = body.split("/");
    const empty = (parts as string[]).findIndex((p) => p === "");
    if (empty !== -1) {
      throw new UsageError(
        `Invalid ${what} "${text}": part ${
          empty + 1
        } is empty; for keys with empty parts or slashes write a JSON array, like '["a","","b"]'`,
      );
    }
  }
  const key = parts as string[];
  if (key.length === 0 && !options.prefix) {
    throw new UsageError(`Invalid key []: a key needs at least one part, like flow/counter`);
  }
  if (!key.every((p) => p.isWellFormed())) {
    throw new UsageError(`Invalid ${what} ${text}: it contains malformed Unicode`);
  }
  return key;
}

// Format a key for people: kept in store/keys.ts (the change triggers use it too), here for the CLI.
export { formatKey };

/** The longest suggestion of what to type that an error spells out. */
const MAX_SUGGESTION = 200;

/**
 * Parse a JSON value from the command line, or explain where it is not JSON
 * and what to type in a POSIX shell to store the same text as a string.
 */
export function parseJsonValue(text: string, key: Key): unknown {
  let value: unknown;
  try {
    value = parseJson(text);
  } catch (err) {
    const head = text.length > 40 ? `${text.slice(0, 40)}…` : text;
    const shown = head.replaceAll("\n", "\\n").replaceAll("\r", "\\r");
    const typed = shellQuote(jsonForTerminal(text));
    throw new UsageError(
      `Cannot set ${formatKey(key)}: ${shown} is not valid JSON: ${
        printableProblem(jsonProblem(text, err as SyntaxError))
      }; to store it as a string, ${
        typed.length <= MAX_SUGGESTION
          ? `type (JSON in shell quotes): ${typed}`
          : `pass it as a JSON string in single quotes (each ' written as '\\'')`
      }`,
    );
  }
  try {
    serializeValue(value, `Cannot set ${formatKey(key)}`); // nesting: a usage error, not a crash
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(err.message, { cause: err });
    throw err;
  }
  return value;
}

/**
 * The parser's message with where it went wrong: V8 gives the position for
 * most problems; for an unexpected token (whose message quotes the text
 * instead) it is the shortest prefix that fails for a reason other than its
 * end, for an unexpected end the text's length.
 */
export function jsonProblem(text: string, err: SyntaxError): string {
  if (/ at position \d+/.test(err.message)) return err.message;
  const token = /^(Unexpected token '[\s\S]*?'), [\s\S]* is not valid JSON$/.exec(err.message);
  if (token === null) return `${err.message}${at(text, text.length)}`;
  const failsBeforeEnd = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return false;
    } catch (e) {
      const position = / at position (\d+)/.exec((e as Error).message);
      return !(e as Error).message.startsWith("Unexpected end") &&
        (position === null || Number(position[1]) < n);
    }
  };
  let low = 1;
  let high = text.length; // fails before its end, as the whole text does
  while (low < high) {
    const mid = (low + high) >> 1;
    if (failsBeforeEnd(mid)) high = mid;
    else low = mid + 1;
  }
  return `${token[1]} in JSON${at(text, low - 1)}`;
}

/** ` at position P (line L column C)`, as V8 says it. */
function at(text: string, position: number): string {
  const before = text.slice(0, position);
  const line = before.split("\n").length;
  const column = position - before.lastIndexOf("\n");
  return ` at position ${position} (line ${line} column ${column})`;
}

/**
 * `text` as a JSON string whose characters a terminal would not show as
 * themselves (C1 controls, bidi and line separators) are `\uXXXX` escapes.
 */
function jsonForTerminal(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Read `--inputs <file>`: a JSON object of a flow's inputs, from a file or
 * (`-`) stdin. A missing or unreadable file, text that is not JSON (said
 * with its line and column), JSON that is not an object, or `-` with stdin
 * empty or a terminal is a {@linkcode UsageError}.
 */
export async function readInputsDocument(file: string): Promise<Record<string, unknown>> {
  const where = file === "-" ? "--inputs - (stdin)" : `--inputs ${file}`;
  let text: string;
  if (file === "-") {
    if (Deno.stdin.isTerminal()) {
      throw new UsageError(
        `${where}: stdin is a terminal; pipe the JSON object of inputs in, like ` +
          `echo '{"by":3}' | flowstate run flow.yaml --inputs -, or give a file: --inputs inputs.json`,
      );
    }
    text = await new Response(Deno.stdin.readable).text();
  } else {
    try {
      text = await Deno.readTextFile(file);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new UsageError(`${where}: no such file; give a JSON file of inputs, or - for stdin`);
      }
      if (err instanceof Deno.errors.IsADirectory) {
        throw new UsageError(`${where}: is a directory; give a JSON file of inputs`);
      }
      throw new UsageError(`${where}: cannot read it: ${(err as Error).message}`, { cause: err });
    }
  }
  if (text.trim() === "") {
    throw new UsageError(
      `${where} is empty; expected a JSON object of inputs, like {"by": 3}`,
    );
  }
  let value: unknown;
  try {
    value = parseJson(text);
  } catch (err) {
    throw new UsageError(
      `${where} is not valid JSON: ${
        printableProblem(jsonProblem(text, err as SyntaxError))
      }; expected a JSON object of inputs, like {"by": 3}`,
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(
      `${where}: expected a JSON object of inputs, like {"by": 3}, got ${
        Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`
      }`,
    );
  }
  return value as Record<string, unknown>;
}

/** A parser message on one line. */
function printableProblem(message: string): string {
  return message.replaceAll("\n", "\\n").replaceAll("\r", "\\r");
}
