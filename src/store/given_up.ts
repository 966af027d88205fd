/**
 * The error of a store call given up because the signal it was given
 * aborted (`GetOptions.signal`): the core refuses a call whose signal aborted
 * before it started, and a driver with `capabilities.abort` ends one that
 * waits. Its `name` is `"AbortError"`, as `fetch` names its own; its `cause`
 * is the signal's reason.
 *
 * @module
 */

/**
 * `Cannot set: store "main" (…): given up, its signal aborted (nothing was written)`.
 * `where` names the store (`store "main" (location)`); `wrote`: what was
 * left undone, for a write (`"nothing was written"`), none for a read.
 */
export function givenUpError(
  what: string,
  where: string,
  signal: AbortSignal,
  undone?: string,
): Error {
  const err = new Error(
    `${what}: ${where}: given up, its signal aborted${undone === undefined ? "" : ` (${undone})`}`,
    { cause: signal.reason },
  );
  err.name = "AbortError";
  return err;
}
