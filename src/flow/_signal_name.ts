/**
 * The name of a signal a `wait` node waits for (shared by the flow checks and
 * the records, which refuse any other name).
 *
 * @module
 */

/** What a signal's name may be: letters, digits, `_` and `-`, 1 to 64 of them. */
export const SIGNAL_NAME: RegExp = /^[A-Za-z0-9_-]{1,64}$/;

/** How often a waiting `wait` node looks for its signal, in ms (as a run looks for a cancel). */
export const SIGNAL_POLL_MS = 1_000;

/**
 * How the log line of a `wait` node that begins to wait starts: `waiting for
 * signal "NAME" (flowstate runs signal RUN NAME)`, then `: MESSAGE` when it has one.
 */
export const WAITING_FOR_SIGNAL = "waiting for signal";

/** The signal name and message of a `wait` node's waiting line, or `undefined` for any other line. */
export function waitingLine(line: string): { signal: string; message?: string } | undefined {
  const m =
    /^waiting for signal "([A-Za-z0-9_-]{1,64})" \(flowstate runs signal \S+ [A-Za-z0-9_-]+\)(?:: ([\s\S]*))?$/
      .exec(line);
  if (m === null) return undefined;
  return m[2] === undefined ? { signal: m[1] } : { signal: m[1], message: m[2] };
}
