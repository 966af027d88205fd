/**
 * The checks of a `set` or `delete` call's arguments, shared by the store and
 * the wrappers that must refuse bad input before they act on it (a cache
 * that answers a write-behind `set` at once, hooks that must not see a write
 * the store would refuse).
 *
 * @module
 */
import { assertKey, assertKeySize } from "./keys.ts";
import type { DeleteOptions, Key, SetOptions } from "./types.ts";
import { assertValueSize, serializeValue } from "./values.ts";

/** Throw a `RangeError` unless `expireIn` is a positive, finite number of milliseconds. */
export function checkExpireIn(expireIn: unknown, what: string): void {
  if (typeof expireIn !== "number" || !Number.isFinite(expireIn) || expireIn <= 0) {
    throw new RangeError(
      `${what}: expireIn must be a positive number of milliseconds (got ${String(expireIn)})`,
    );
  }
}

/**
 * Check everything a `set(key, value, options)` would refuse (the key, its
 * size, the value as JSON and its size, `expireIn`, `ifVersion`) and return
 * the value's JSON text.
 */
export function checkSetArgs(
  key: Key,
  value: unknown,
  options: SetOptions | undefined,
  what: string,
): string {
  assertKey(key, what);
  assertKeySize(key, what);
  const text = serializeValue(value, what);
  assertValueSize(text, what);
  if (options?.expireIn !== undefined) checkExpireIn(options.expireIn, what);
  const ifVersion = options?.ifVersion;
  if (ifVersion !== undefined && ifVersion !== null && typeof ifVersion !== "string") {
    throw new TypeError(`${what}: ifVersion must be a version string or null`);
  }
  return text;
}

/** Check everything a `delete(key, options)` would refuse. */
export function checkDeleteArgs(key: Key, options: DeleteOptions | undefined, what: string): void {
  assertKey(key, what);
  if (options?.ifVersion !== undefined && typeof options.ifVersion !== "string") {
    throw new TypeError(`${what}: ifVersion must be a version string`);
  }
}
