/**
 * Value validation: only JSON-compatible values are stored, and they are
 * copied in and out as JSON text so callers never share state with the store.
 *
 * @module
 */

/**
 * Serialize `value` to JSON text after checking that it is JSON-compatible.
 * Throws a `TypeError` naming the offending path for functions, symbols,
 * `BigInt`, non-finite numbers, `undefined` (at the top or inside an array),
 * cycles and objects that are not plain (Date, Map, class instances…).
 * `undefined` object properties are omitted, as `JSON.stringify` does.
 */
export function serializeValue(value: unknown, what: string): string {
  checkValue(value, what);
  return JSON.stringify(value);
}

/**
 * The checks of {@linkcode serializeValue} without the serializing: throws
 * the same `TypeError`, naming the offending path, if a store would refuse
 * `value`.
 */
export function checkValue(value: unknown, what: string): void {
  // A string, a boolean or a finite number (a counter's value, a node's output) needs no walk.
  if (!isJsonLeaf(value) && !isPlainJson(value, 0)) {
    const path: (string | number)[] = [];
    const problem = findProblem(value, path, []);
    if (problem !== undefined) throw new TypeError(`${what}: ${formatPath(path)} ${problem}`);
  }
}

/**
 * Whether `value` is JSON that {@linkcode findProblem} accepts, without
 * keeping its path or its ancestors: a cycle shows as nesting deeper than
 * {@linkcode MAX_VALUE_DEPTH}. `false` only says to look again with
 * `findProblem`, which tells what and where (and a cycle from deep nesting).
 */
function isPlainJson(value: unknown, depth: number): boolean {
  // The leaf test of `isJsonLeaf`, here with one `typeof` per value (the walk visits every one).
  const type = typeof value;
  if (type === "string" || type === "boolean") return true;
  if (type === "number") return Number.isFinite(value);
  if (type !== "object") return false;
  if (value === null) return true;
  if (depth >= MAX_VALUE_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (item === undefined || !isPlainJson(item, depth + 1)) return false;
    }
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  // Its own enumerable keys, as JSON.stringify takes them; not a for-in loop: its keyed
  // loads fell into a deopt loop of V8's Maglev (hundreds of "wrong map" deopts a run)
  // when objects with integer-like keys (a run's metrics) came between ones with a cached
  // enum shape (event chunks), and the walk then ran unoptimized. Object.keys and a keyed
  // load: no deopt loop, and ~0.1 µs a 1 KB object cheaper than Object.values (whose copy
  // of the values made a memory set of such an object 1.2–1.4× dearer).
  const keys = Object.keys(value as object);
  for (let i = 0; i < keys.length; i++) {
    const v = (value as Record<string, unknown>)[keys[i]];
    if (v !== undefined && !isPlainJson(v, depth + 1)) return false;
  }
  return true;
}

/** Whether `value` is a string, a boolean or a finite number: JSON as it is. */
function isJsonLeaf(value: unknown): boolean {
  const type = typeof value;
  return type === "string" || type === "boolean" || (type === "number" && Number.isFinite(value));
}

/**
 * The largest value a store accepts, in bytes of its JSON text (UTF-8): the
 * same on every backend, and under each one's own limit (PostgreSQL `jsonb`
 * ~255 MB, SQLite's default 1 GB). 16 MiB holds any run's outputs or a node's
 * state many times over, and keeps one value from ballooning a jsonfile
 * document, a backup line or a cache.
 */
export const MAX_VALUE_BYTES: number = 16 * 1024 * 1024;

/**
 * The deepest nesting of arrays and objects a value may have: deep enough for
 * any data, and far from the depth at which a recursive reader (a query, a
 * template, a JSON Schema check) would exhaust the stack.
 */
export const MAX_VALUE_DEPTH = 256;

/** The UTF-8 size of `text` (well-formed or not: a lone surrogate counts as U+FFFD). */
/** The UTF-8 size of `text` in bytes, without encoding it. */
export function utf8Length(text: string): number {
  let size = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) size += 1;
    else if (c < 0x800) size += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        size += 4;
        i++;
      } else size += 3;
    } else size += 3;
  }
  return size;
}

/**
 * Throw a `RangeError` naming the size and the limit if the JSON text of a
 * value is over {@linkcode MAX_VALUE_BYTES}. The exact UTF-8 size is computed
 * only when the text could be over it.
 */
export function assertValueSize(text: string, what: string): void {
  if (text.length * 3 <= MAX_VALUE_BYTES) return;
  const size = text.length <= MAX_VALUE_BYTES ? utf8Length(text) : text.length;
  if (size <= MAX_VALUE_BYTES) return;
  throw new RangeError(
    `${what}: the value is ${size.toLocaleString("en-US")} bytes as JSON; values are at most ` +
      `${MAX_VALUE_BYTES.toLocaleString("en-US")} bytes (16 MiB) on every backend. ` +
      `Split it over several keys, or keep large files outside the store`,
  );
}

function formatPath(path: readonly (string | number)[]): string {
  let out = "value";
  if (path.length > 12) {
    // A deeply nested place: its start and its end are enough to find it.
    return `${formatPath(path.slice(0, 4))}…(${path.length - 8} more)…${
      formatPath(path.slice(-4)).slice("value".length)
    }`;
  }
  for (const seg of path) {
    out += typeof seg === "number"
      ? `[${seg}]`
      : /^[A-Za-z_$][\w$]*$/.test(seg)
      ? `.${seg}`
      : `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * Walk a value; on the first problem, leave its location in `path` and return
 * the rest of the message. Paths are only built when something is wrong.
 */
function findProblem(
  value: unknown,
  path: (string | number)[],
  ancestors: object[],
): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value)
        ? undefined
        : `is ${value}, which JSON cannot hold; store a finite number, null or a string`;
    case "object": {
      if (value === null) return undefined;
      if (ancestors.length >= MAX_VALUE_DEPTH) {
        return `is nested deeper than ${MAX_VALUE_DEPTH} levels; flatten it (every backend and ` +
          `every reader handles ${MAX_VALUE_DEPTH})`;
      }
      if (ancestors.includes(value)) {
        return "refers back to itself (a cycle); JSON cannot hold it";
      }
      ancestors.push(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const item = value[i];
          if (item === undefined) {
            path.push(i);
            return "is undefined; JSON arrays cannot hold undefined, use null";
          }
          // The common leaves without a call of findProblem.
          if (isJsonLeaf(item)) continue;
          const p = findProblem(item, path, ancestors);
          if (p !== undefined) {
            path.unshift(i);
            return p;
          }
        }
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          const type = (value as { constructor?: { name?: string } }).constructor?.name ??
            "object";
          return `is a ${type}, not a plain object; convert it to JSON first (for a Date, use toISOString())`;
        }
        // Its own keys, as isPlainJson and JSON.stringify take them.
        for (const k of Object.keys(value)) {
          const v = (value as Record<string, unknown>)[k];
          if (v === undefined || isJsonLeaf(v)) continue;
          const p = findProblem(v, path, ancestors);
          if (p !== undefined) {
            path.unshift(k);
            return p;
          }
        }
      }
      ancestors.pop();
      return undefined;
    }
    case "undefined":
      return "is undefined; store null or delete the key instead";
    case "bigint":
      return "is a BigInt, which JSON cannot hold; store it as a string or number";
    default:
      return `is a ${typeof value}, which JSON cannot hold`;
  }
}
