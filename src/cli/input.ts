/**
 * Command-line input: keys, JSON values, and the usage error the CLI maps to
 * exit code 2.
 *
 * @module
 */
import type { Key } from "../store/types.ts";
import { serializeValue } from "../store/values.ts";

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

/** Format a key for people: slash-separated when that is unambiguous, else JSON. */
export function formatKey(key: Key): string {
  const plain = key.length > 0 && !key[0].startsWith("[") &&
    key.every((p) => p !== "" && !p.includes("/") && !/[\s\p{Cc}]/u.test(p));
  return plain ? key.join("/") : JSON.stringify(key);
}

/** Parse a JSON value from the command line, or explain how to quote it. */
export function parseJsonValue(text: string, key: Key): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
    throw new UsageError(
      `Cannot set ${formatKey(key)}: ${shown} is not valid JSON; to store a string, ` +
        `quote it for the shell and for JSON: '"${shown.replaceAll(/['"]/g, "")}"'`,
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
