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
  const path: (string | number)[] = [];
  const problem = findProblem(value, path, []);
  if (problem !== undefined) throw new TypeError(`${what}: ${formatPath(path)} ${problem}`);
  return JSON.stringify(value);
}

function formatPath(path: readonly (string | number)[]): string {
  let out = "value";
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
          if (typeof item === "string" || typeof item === "boolean") continue;
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
        for (const k in value) {
          const v = (value as Record<string, unknown>)[k];
          if (v === undefined || typeof v === "string" || typeof v === "boolean") continue;
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
