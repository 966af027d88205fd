/**
 * A node's `mask:`: the parts of its output that are secrets the run
 * obtained (an OAuth token a token endpoint returned), masked from the end
 * of the attempt that returned them like the flow's `secrets:`. Paths are
 * written as the `trigger.http.inputs` paths are: `body.access_token`,
 * `headers.set-cookie`, a list's element as `items.0` or `items[0]`, a key
 * holding a dot as `body['a.b']`; `mask: true` is the whole output.
 *
 * @module
 */
import { SECRET_MIN_LENGTH } from "./secrets.ts";

/** One step into an output: a key of an object, or a position in a list. */
export type MaskStep = string | number;

/** How a `mask:` path is written (for messages). */
export const MASK_PATH_HINT =
  "a path into the node's output such as body.access_token, headers.set-cookie, items[0] or body['a.b']";

/**
 * The steps of `path`, or what is wrong with it. A bare step of digits
 * (`items.0`) is a list's position, or a key of that name in an object.
 */
export function parseMaskPath(path: string): MaskStep[] | { problem: string } {
  const steps: MaskStep[] = [];
  let at = 0;
  const bad = (why: string) => ({
    problem: `${why} in mask path ${JSON.stringify(path)}; expected ${MASK_PATH_HINT}`,
  });
  if (path.trim() === "") return bad("nothing");
  while (at < path.length) {
    if (path[at] === "[") {
      const quoted = /^\[(?:'([^']*)'|"([^"]*)"|(\d+))\]/.exec(path.slice(at));
      if (quoted === null) return bad(`a bad [ at character ${at + 1}`);
      steps.push(quoted[3] !== undefined ? Number(quoted[3]) : quoted[1] ?? quoted[2]);
      at += quoted[0].length;
    } else {
      if (steps.length > 0) {
        if (path[at] !== ".") return bad(`an unexpected ${JSON.stringify(path[at])}`);
        at++;
      }
      const bare = /^[^.\[\]\s'"]+/.exec(path.slice(at));
      if (bare === null) {
        return bad(at >= path.length ? "a trailing ." : `an empty step at character ${at + 1}`);
      }
      steps.push(/^\d+$/.test(bare[0]) ? Number(bare[0]) : bare[0]);
      at += bare[0].length;
    }
  }
  return steps;
}

/**
 * What `mask:` found in `output`: the secret strings (each string, and each
 * number's text, at the paths or under them), the paths not in the output,
 * and the paths reaching a string or number too short to mask (its value is
 * not quoted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maskedValues } from "./_mask_paths.ts";
 *
 * const output = { body: { access_token: "t0k3n-abc", expires_in: 3600 } };
 * const found = maskedValues(["body.access_token", "body.refresh_token"], output);
 * assert.deepEqual(found.values, ["t0k3n-abc"]);
 * assert.deepEqual(found.missing, ["body.refresh_token"]);
 * ```
 */
export function maskedValues(
  paths: true | readonly string[],
  output: unknown,
): { values: string[]; missing: string[]; short: MaskedTooShort[] } {
  const values: string[] = [];
  const missing: string[] = [];
  const short: MaskedTooShort[] = [];
  let index: number | undefined;
  const collect = (value: unknown, shown: string, depth: number): void => {
    if (depth > MAX_DEPTH) return;
    let text: string | undefined;
    if (typeof value === "string") text = value;
    else if (typeof value === "number" && Number.isFinite(value)) text = String(value);
    if (text !== undefined) {
      if (text === "") return; // nothing to hide
      if (text.length < SECRET_MIN_LENGTH) {
        short.push({ path: shown, length: text.length, ...(index === undefined ? {} : { index }) });
      } else values.push(text);
    } else if (Array.isArray(value)) {
      value.forEach((v, k) => collect(v, `${shown}[${k}]`, depth + 1));
    } else if (typeof value === "object" && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        collect(v, shown === "" ? showKey(k, true) : `${shown}${showKey(k, false)}`, depth + 1);
      }
    }
  };
  if (paths === true) {
    collect(output, "", 0);
    return { values, missing, short };
  }
  for (const [k, path] of paths.entries()) {
    index = k;
    const steps = parseMaskPath(path);
    if (!Array.isArray(steps)) continue; // refused when the flow was checked
    let value: unknown = output;
    let found = true;
    for (const step of steps) {
      if (Array.isArray(value) && typeof step === "number") value = value[step];
      else if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        const key = String(step);
        value = Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
      } else value = undefined;
      if (value === undefined) {
        found = false;
        break;
      }
    }
    if (!found) missing.push(path);
    else collect(value, path, 0);
  }
  return { values, missing, short };
}

/** A value `mask:` found too short to mask: where (`index`: which of the paths), its length. */
export interface MaskedTooShort {
  /** Where it is in the output (`body.token`, `items[0]`; `""`: the output itself). */
  path: string;
  /** Its length (characters), under `SECRET_MIN_LENGTH`. */
  length: number;
  /** Which of the `mask:` paths led to it (none for `mask: true`). */
  index?: number;
}

/** Deeper than any output a node returns (the serializer's own limit is lower). */
const MAX_DEPTH = 1000;

function showKey(key: string, first: boolean): string {
  if (/^[^.\[\]\s'"]+$/.test(key)) return first ? key : `.${key}`;
  return `[${key.includes("'") ? JSON.stringify(key) : `'${key}'`}]`;
}
