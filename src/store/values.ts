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
  checkJson(value, "value", what, []);
  return JSON.stringify(value);
}

function checkJson(value: unknown, path: string, what: string, ancestors: object[]): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(
          `${what}: ${path} is ${value}, which JSON cannot hold; store a finite number, null or a string`,
        );
      }
      return;
    case "object": {
      if (value === null) return;
      if (ancestors.includes(value)) {
        throw new TypeError(
          `${what}: ${path} refers back to itself (a cycle); JSON cannot hold it`,
        );
      }
      ancestors.push(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value) || value[i] === undefined) {
            throw new TypeError(
              `${what}: ${path}[${i}] is undefined; JSON arrays cannot hold undefined, use null`,
            );
          }
          checkJson(value[i], `${path}[${i}]`, what, ancestors);
        }
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          const type = (value as { constructor?: { name?: string } }).constructor?.name ??
            "object";
          throw new TypeError(
            `${what}: ${path} is a ${type}, not a plain object; convert it to JSON first (for a Date, use toISOString())`,
          );
        }
        for (const k in value) {
          const v = (value as Record<string, unknown>)[k];
          if (v === undefined) continue;
          checkJson(
            v,
            /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`,
            what,
            ancestors,
          );
        }
      }
      ancestors.pop();
      return;
    }
    case "undefined":
      throw new TypeError(`${what}: ${path} is undefined; store null or delete the key instead`);
    case "bigint":
      throw new TypeError(
        `${what}: ${path} is a BigInt, which JSON cannot hold; store it as a string or number`,
      );
    default:
      throw new TypeError(`${what}: ${path} is a ${typeof value}, which JSON cannot hold`);
  }
}
