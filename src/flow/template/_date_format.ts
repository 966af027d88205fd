/**
 * The date patterns of `formatDate()`: a small, fixed set of tokens (a subset
 * of Unicode's date field symbols) turned into text in a time zone, without
 * locales. Private to the template language.
 *
 * | Token  | Meaning                       | Example   |
 * | ------ | ----------------------------- | --------- |
 * | `yyyy` | year, at least 4 digits       | `2026`    |
 * | `yy`   | year, last 2 digits           | `26`      |
 * | `MM`/`M` | month 01–12 / 1–12          | `03`/`3`  |
 * | `MMM`  | month, English, 3 letters     | `Mar`     |
 * | `dd`/`d` | day of the month            | `07`/`7`  |
 * | `EEE`  | weekday, English, 3 letters   | `Mon`     |
 * | `HH`/`H` | hour 00–23 / 0–23           | `09`/`9`  |
 * | `hh`/`h` | hour 01–12 / 1–12           | `09`/`9`  |
 * | `a`    | `AM` or `PM`                  | `AM`      |
 * | `mm`/`m` | minute                      | `05`/`5`  |
 * | `ss`/`s` | second                      | `08`/`8`  |
 * | `SSS`  | millisecond                   | `042`     |
 * | `XXX`  | offset: `Z` or `±hh:mm`       | `+01:00`  |
 *
 * Text in single quotes is copied (`''` is a quote); any other ASCII letter
 * is an error, so that a typo never silently becomes text.
 *
 * @module
 */
import { DEFAULT_TIMEZONE, offsetAt } from "../../timezone.ts";

/** A compiled pattern: literal text and fields, in order. */
export type DatePattern = readonly (string | Field)[];

type Field = (wall: Date, offset: number) => string;

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

const pad = (n: number, width: number): string => {
  const text = String(Math.abs(n)).padStart(width, "0");
  return n < 0 ? "-" + text : text;
};
const hour12 = (wall: Date): number => (wall.getUTCHours() + 11) % 12 + 1;

/** The tokens by letter and run length. */
const TOKENS: Record<string, Record<number, Field>> = {
  y: {
    2: (w) => pad(((w.getUTCFullYear() % 100) + 100) % 100, 2),
    4: (w) => pad(w.getUTCFullYear(), 4),
  },
  M: {
    1: (w) => String(w.getUTCMonth() + 1),
    2: (w) => pad(w.getUTCMonth() + 1, 2),
    3: (w) => MONTHS[w.getUTCMonth()],
  },
  d: { 1: (w) => String(w.getUTCDate()), 2: (w) => pad(w.getUTCDate(), 2) },
  E: { 3: (w) => DAYS[w.getUTCDay()] },
  H: { 1: (w) => String(w.getUTCHours()), 2: (w) => pad(w.getUTCHours(), 2) },
  h: { 1: (w) => String(hour12(w)), 2: (w) => pad(hour12(w), 2) },
  a: { 1: (w) => (w.getUTCHours() < 12 ? "AM" : "PM") },
  m: { 1: (w) => String(w.getUTCMinutes()), 2: (w) => pad(w.getUTCMinutes(), 2) },
  s: { 1: (w) => String(w.getUTCSeconds()), 2: (w) => pad(w.getUTCSeconds(), 2) },
  S: { 3: (w) => pad(w.getUTCMilliseconds(), 3) },
  X: {
    3: (_w, offset) => {
      if (offset === 0) return "Z";
      const minutes = Math.round(Math.abs(offset) / 60_000);
      return `${offset < 0 ? "-" : "+"}${pad(Math.floor(minutes / 60), 2)}:${pad(minutes % 60, 2)}`;
    },
  },
};

/**
 * Compile a pattern; a `RangeError` saying what is wrong with it (an unknown
 * letter, a run of a known letter of the wrong length, an unclosed quote).
 */
export function compileDatePattern(pattern: string): DatePattern {
  const parts: (string | Field)[] = [];
  let literal = "";
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === "'") {
      if (pattern[i + 1] === "'") {
        literal += "'";
        i += 2;
        continue;
      }
      let j = i + 1;
      for (;;) {
        const close = pattern.indexOf("'", j);
        if (close < 0) {
          throw new RangeError(`the quote at position ${i} is not closed (write '' for a quote)`);
        }
        literal += pattern.slice(j, close);
        if (pattern[close + 1] === "'") {
          literal += "'";
          j = close + 2;
          continue;
        }
        i = close + 1;
        break;
      }
      continue;
    }
    if (!/[A-Za-z]/.test(c)) {
      literal += c;
      i++;
      continue;
    }
    let j = i;
    while (pattern[j] === c) j++;
    const run = pattern.slice(i, j);
    const byLength = TOKENS[c];
    if (byLength === undefined) {
      throw new RangeError(
        `"${c}" is not a date token (${TOKEN_LIST}); put text in single quotes, as in 'T'`,
      );
    }
    const field = byLength[run.length];
    if (field === undefined) {
      const allowed = Object.keys(byLength).map((n) => c.repeat(Number(n))).join(" or ");
      throw new RangeError(`"${run}" is not a date token: write ${allowed}`);
    }
    if (literal !== "") parts.push(literal);
    literal = "";
    parts.push(field);
    i = j;
  }
  if (literal !== "") parts.push(literal);
  return parts;
}

const TOKEN_LIST = "yyyy yy MMM MM M dd d EEE HH H hh h a mm m ss s SSS XXX";

/** `time` (ms since the epoch) as `pattern` shows it in `timezone` (a valid IANA name). */
export function formatDate(
  time: number,
  pattern: DatePattern,
  timezone: string = DEFAULT_TIMEZONE,
): string {
  const offset = timezone === "UTC" ? 0 : offsetAt(time, timezone);
  const wall = new Date(time + offset);
  let out = "";
  for (const part of pattern) out += typeof part === "string" ? part : part(wall, offset);
  return out;
}
