/**
 * Text for a command a message suggests the user type.
 *
 * @module
 */

/** `text` single-quoted for a POSIX shell (each `'` written as `'\''`): safe with spaces and `$`. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}
