/**
 * Reading a Flowstate setting from the environment.
 *
 * @module
 */

/**
 * The value of the environment variable `name`: from `env` when it is given
 * (tests, a caller's own environment), else from the process's; `undefined`
 * when it is not set or this process may not read it (a setting then keeps
 * its default).
 *
 * @example
 * ```ts
 * import { envSetting } from "./_env.ts";
 * import assert from "node:assert/strict";
 * assert.equal(envSetting("FLOWSTATE_X", { FLOWSTATE_X: "1" }), "1");
 * assert.equal(envSetting("FLOWSTATE_X", {}), undefined);
 * ```
 */
export function envSetting(
  name: string,
  env?: Readonly<Record<string, string | undefined>>,
): string | undefined {
  if (env !== undefined) return Object.hasOwn(env, name) ? env[name] : undefined;
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // not allowed to look: the default
  }
}
