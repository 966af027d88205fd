/**
 * Values derived from secrets by the template functions, registered with the
 * run's masker (`TemplateScope.masker`). Private to the template language.
 *
 * @module
 */
import { SECRET_MASK, SECRET_MIN_LENGTH } from "../secrets.ts";
import type { TemplateScope } from "./ast.ts";
import { isPlainObject } from "./values.ts";

/**
 * `text` as an error quotes it: at most 40 characters (37 and `…`), each
 * secret in it replaced by `***` first, so that the cut never leaves a piece
 * of one that the records would not mask.
 */
export function quoteText(scope: TemplateScope, text: string): string {
  let shown = text;
  const found = scope.masker?.find(text) ?? [];
  for (let k = found.length - 1; k >= 0; k--) {
    const [start, end] = found[k];
    shown = shown.slice(0, start) + SECRET_MASK + shown.slice(end);
  }
  return JSON.stringify(shown.length > 40 ? shown.slice(0, 37) + "…" : shown);
}

/**
 * What the functions do with the run's secret masker (`scope.masker`): a
 * function that turns text holding a secret into other text registers the
 * new text, so that the records mask it as they mask the secret itself.
 */
export function derivedSecrets(fail: (message: string) => never) {
  const tooShort = (piece: string): never =>
    fail(
      `would return ${piece.length} character(s) of a secret, too few to be masked in the records (under ${SECRET_MIN_LENGTH}); take the whole secret or at least ${SECRET_MIN_LENGTH} characters of it`,
    );
  return {
    /** `out` was computed from all of `input` (an encoding, a hash, a case change). */
    whole(scope: TemplateScope, input: string, out: string): void {
      const masker = scope.masker;
      if (masker === undefined || out === "" || masker.find(input).length === 0) return;
      if (out.length < SECRET_MIN_LENGTH) tooShort(out);
      masker.add([out]);
    },
    /** Each `[start, end)` of `input` is returned as it is: one that cuts a secret is registered. */
    cut(scope: TemplateScope, input: string, pieces: readonly [number, number][]): void {
      const masker = scope.masker;
      if (masker === undefined) return;
      const found = masker.find(input);
      if (found.length === 0) return;
      const partial: string[] = [];
      for (const [a, b] of pieces) {
        const cuts = found.some(([s, e]) => a < e && s < b && !(a <= s && e <= b));
        if (!cuts) continue;
        const piece = input.slice(a, b);
        if (piece.length < SECRET_MIN_LENGTH) tooShort(piece);
        partial.push(piece);
      }
      if (partial.length > 0) masker.add(partial);
    },
    /**
     * `out` was read from JSON text holding a secret: its strings and numbers
     * that are not written in the text outside the secrets (a secret that is
     * itself JSON, or a number) are registered (a number as its text, which
     * the records then mask where that number is a value).
     */
    parsed(scope: TemplateScope, input: string, out: unknown): void {
      const masker = scope.masker;
      if (masker === undefined || out === null) return;
      if (typeof out !== "object" && typeof out !== "number") return;
      const found = masker.find(input);
      if (found.length === 0) return;
      let outside = "";
      let at = 0;
      for (const [s, e] of found) {
        outside += input.slice(at, s) + "\0";
        at = e;
      }
      outside += input.slice(at);
      const strings: string[] = [];
      const visit = (v: unknown): void => {
        if (typeof v === "string") {
          if (!outside.includes(JSON.stringify(v))) strings.push(v);
        } else if (typeof v === "number") {
          if (!outside.includes(String(v))) strings.push(String(v));
        } else if (Array.isArray(v)) v.forEach(visit);
        else if (isPlainObject(v)) Object.values(v).forEach(visit);
      };
      visit(out);
      masker.add(strings);
    },
  };
}
