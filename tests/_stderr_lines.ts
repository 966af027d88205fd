/**
 * Helpers of tests that read a `flowstate serve` process's stderr as it
 * comes: wait for a line, then read the rest once it exits.
 *
 * @module
 */
import assert from "node:assert/strict";
import { within } from "./_deadline.ts";

/** Read `reader` until `pattern` matches what was read (kept in `seen`); resolves the match. */
export function waitFor(
  reader: ReadableStreamDefaultReader<string>,
  pattern: RegExp,
  seen = { text: "" },
): Promise<RegExpExecArray> {
  return within(
    (async () => {
      for (;;) {
        const match = pattern.exec(seen.text);
        if (match) return match;
        const { value, done } = await reader.read();
        if (done) assert.fail(`the process ended before printing ${pattern}: ${seen.text}`);
        seen.text += value;
      }
    })(),
    `a line matching ${pattern}`,
    { details: () => seen.text },
  );
}

/** Read the rest of `reader` into `seen`. */
export async function drain(
  reader: ReadableStreamDefaultReader<string>,
  seen: { text: string },
): Promise<void> {
  await within(
    (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        seen.text += value;
      }
    })(),
    "the end of the output",
    { details: () => seen.text },
  );
}
