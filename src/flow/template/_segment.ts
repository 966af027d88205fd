/**
 * One `${{ … }}` segment of a string, shared by the lexer, the parser and the
 * compiler so that every error points into the original string. Private to
 * the template language.
 *
 * @module
 */
import { TemplateError } from "./error.ts";

/** What opens a template. */
export const OPEN = "${{";

/** Where a segment sits, for messages. */
export class Segment {
  /** A segment of `text` that starts at `start` and, once lexed, ends at `end`. */
  constructor(readonly text: string, readonly start: number, public end = -1) {}

  /** The segment as written (cut when long), for messages. */
  display(): string {
    let end = this.end;
    if (end < 0) {
      const close = this.text.indexOf("}}", this.start + OPEN.length);
      end = close < 0 ? this.text.length : close + 2;
    }
    const shown = this.text.slice(this.start, end);
    return shown.length > 120 ? shown.slice(0, 117) + "…" : shown;
  }

  /** A compile-time error about `length` characters at `offset`. */
  parseError(message: string, offset: number, length: number): TemplateError {
    return new TemplateError(`Cannot parse ${this.display()}: ${message}`, {
      offset,
      length: Math.max(length, 1),
      source: this.text,
    });
  }

  /** An evaluation error about `length` characters at `offset`. */
  evalError(message: string, offset: number, length: number, cause?: unknown): TemplateError {
    return new TemplateError(
      `Cannot evaluate ${this.display()}: ${message}`,
      { offset, length: Math.max(length, 1), source: this.text },
      cause === undefined ? undefined : { cause },
    );
  }
}
