/**
 * The value semantics of templates: truthiness, deep JSON equality, how a
 * value becomes text, safe property reads, and fresh copies of containers.
 *
 * @module
 */
import { setOwn } from "../../_json.ts";

/**
 * JavaScript truthiness, which templates use for `if`, `!`, `&&`, `||` and
 * `? :`: `false`, `0`, `-0`, `NaN`, `""`, `null` and `undefined` are falsy;
 * everything else, including `[]`, `{}` and `"false"`, is truthy.
 *
 * @example
 * ```ts
 * import { truthy } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(truthy(""), false);
 * assert.equal(truthy([]), true);
 * assert.equal(truthy("false"), true);
 * ```
 */
export function truthy(value: unknown): boolean {
  return !!value;
}

/** Whether `value` is a plain object (its prototype is `Object.prototype` or `null`). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * An own property of a plain object or an array element; `undefined` for
 * anything else (safe navigation).
 */
export function readProperty(base: unknown, key: string, index: number): unknown {
  if (typeof base !== "object" || base === null) return undefined;
  if (Array.isArray(base)) return index >= 0 && index < base.length ? base[index] : undefined;
  const proto = Object.getPrototypeOf(base);
  if (proto !== Object.prototype && proto !== null) return undefined;
  return Object.hasOwn(base, key) ? (base as Record<string, unknown>)[key] : undefined;
}

/**
 * Deep equality of the values' JSON: a property holding `undefined` counts as
 * absent, and `undefined` elsewhere counts as `null`.
 *
 * @example
 * ```ts
 * import { jsonEqual } from "./values.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(jsonEqual({ a: [1], b: 2 }, { b: 2, a: [1] }), true);
 * assert.equal(jsonEqual({ a: undefined }, {}), true);
 * assert.equal(jsonEqual({ a: null }, {}), false);
 * assert.equal(jsonEqual(1, "1"), false);
 * ```
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || a === null || b === undefined || b === null) {
    return (a === undefined || a === null) && (b === undefined || b === null);
  }
  if (typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let k = 0; k < a.length; k++) if (!jsonEqual(a[k], b[k])) return false;
    return true;
  }
  if (Array.isArray(b) || !isPlainObject(a) || !isPlainObject(b)) return false;
  for (const key of Object.keys(a)) {
    const x = a[key];
    const y = Object.hasOwn(b, key) ? b[key] : undefined;
    if (x === undefined || y === undefined ? x !== y : !jsonEqual(x, y)) return false;
  }
  for (const key of Object.keys(b)) {
    if (b[key] !== undefined && !Object.hasOwn(a, key)) return false;
  }
  return true;
}

/**
 * How interpolation (and `string()`) turns a value into text.
 *
 * @example
 * ```ts
 * import { toText } from "./values.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(toText(1.5), "1.5");
 * assert.equal(toText(null), "null");
 * assert.equal(toText(undefined), "");
 * assert.equal(toText({ a: [1] }), '{"a":[1]}');
 * ```
 */
export function toText(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value;
    case "undefined":
      return "";
    case "object":
      return value === null ? "null" : JSON.stringify(value) ?? "";
    default:
      return String(value);
  }
}

/** A value's type for messages: `typeof`, except `null` and `array`. */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/** A canonical array index ("0", "12"), or -1. */
export function arrayIndexOf(key: string): number {
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(key)) return -1;
  const n = Number(key);
  return Number.isSafeInteger(n) ? n : -1;
}

// A property set as JSON.parse sets it (`__proto__` an own property): one helper, shared.
export { setOwn };

/** Copy arrays and plain objects deeply; everything else is kept as is. */
export function copyContainers(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let k = 0; k < value.length; k++) out.push(copyContainers(value[k]));
    return out;
  }
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key in value) setOwn(out, key, copyContainers(value[key]));
  return out;
}
