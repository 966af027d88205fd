/**
 * A store spec read from a config file keeps its options as written there
 * (before `${env.…}` substitution), so that a check meant for what the user
 * wrote (`$HOME/state.db`, which no shell expands) does not refuse a value an
 * environment variable gave (a folder named `a$b`). Internal.
 *
 * @module
 */

/** The key of the options as written (not enumerable: no spread, JSON or comparison sees it). */
const WRITTEN_OPTIONS = Symbol("flowstate.writtenOptions");

/** `target`, carrying `written` (when given) as the options written in a config file. */
export function withWritten<T extends object>(target: T, written: unknown): T {
  if (typeof written === "object" && written !== null && !Array.isArray(written)) {
    Object.defineProperty(target, WRITTEN_OPTIONS, { value: written });
  }
  return target;
}

/** The options as written that {@linkcode withWritten} gave `source`, if any. */
export function writtenOf(source: object): Readonly<Record<string, unknown>> | undefined {
  return (source as { [WRITTEN_OPTIONS]?: Record<string, unknown> })[WRITTEN_OPTIONS];
}
