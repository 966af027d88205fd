/**
 * Text formatting shared by the CLI commands: aligned tables, durations and
 * times for people, and flow problems as `error:` lines.
 *
 * @module
 */

/** Print rows as columns separated by two spaces; the last column is not padded. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const table = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) {
    console.log(
      row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i])).join("  "),
    );
  }
}

/** A duration for people: `18ms`, `1.25s`, `3m 4s`, `2h 5m`; `-` for `null`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(2))}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  const m = Math.round(s / 60);
  if (m < 24 * 60) return `${Math.floor(m / 60)}h ${m % 60}m`;
  return `${Math.floor(m / 1440)}d ${Math.floor((m % 1440) / 60)}h`;
}

/** A time (ms since the epoch) as local `YYYY-MM-DD HH:MM:SS`; `-` for `null`. */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The first 12 hex digits of a version hash (`-` for `null`). */
export function shortHash(hash: string | null | undefined): string {
  return hash ? hash.slice(0, 12) : "-";
}

/** Print each line of a multi-line error message to stderr as `error: <line>`. */
export function printErrorLines(message: string): void {
  for (const line of message.split("\n")) console.error(`error: ${line}`);
}

/**
 * Terminal control characters (C0 but tab and newline, DEL, C1) and the
 * characters that reorder text (bidi overrides and isolates, line and
 * paragraph separators), as escapes: text from flows, nodes, stores and
 * errors cannot clear the screen, move the cursor or disguise itself.
 */
const UNPRINTABLE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` for a terminal, with control characters escaped (`\x1b`, `\u202e`). */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}
