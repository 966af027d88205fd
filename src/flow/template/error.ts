/**
 * The one error of the template language, {@linkcode TemplateError}.
 *
 * @module
 */

/**
 * A template could not be compiled or evaluated. `offset` and `length` mark
 * the offending part of the original string (for `file:line:column`), and
 * `path` says which string inside a value compiled by
 * {@linkcode compileValue} it was (`[]` for {@linkcode compileTemplate}).
 *
 * @example
 * ```ts
 * import { compileTemplate, TemplateError } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const text = "hello ${{ nope }}";
 * assert.throws(() => compileTemplate(text), (error) => {
 *   assert.ok(error instanceof TemplateError);
 *   assert.equal(text.slice(error.offset, error.offset + error.length), "nope");
 *   return true;
 * });
 * ```
 */
export class TemplateError extends Error {
  /** Offset of the offending part in {@linkcode TemplateError.source}, in UTF-16 units. */
  readonly offset: number;
  /** Length of the offending part. */
  readonly length: number;
  /** The string holding the template. */
  readonly source: string;
  /** Keys leading to the string inside the value given to `compileValue` (indexes as strings). */
  readonly path: readonly string[];
  /** Create the error. */
  constructor(
    message: string,
    details: { offset: number; length: number; source?: string; path?: readonly string[] },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "TemplateError";
    this.offset = details.offset;
    this.length = details.length;
    this.source = details.source ?? "";
    this.path = details.path ?? [];
  }
}
