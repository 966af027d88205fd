/**
 * Helpers shared by the SQL plugins' search tests (not published).
 *
 * @module
 */
import { searchableStrings } from "../../src/store/indexes.ts";

/**
 * The words the rule of words format 1 cut (before NFKC): JavaScript lower
 * case, then runs of letters, digits and private-use characters, of every
 * string of `value`. What an index built by the previous version holds.
 */
export function format1Words(value: unknown): string[] {
  return searchableStrings(value, null).flatMap((s) =>
    s.toLowerCase().match(/[\p{L}\p{N}\p{Co}]+/gu) ?? []
  );
}

/** A search metadata value of this version, turned into what format 1 wrote. */
export function format1Meta(current: string): string {
  const old = current.replace(/ words \d+, unicode /, " words 1, unicode ");
  if (!old.includes(" words 1, unicode ")) throw new Error(`not a search meta value: ${current}`);
  return old;
}

/** Texts that the rule of format 1 cut into other words than their NFKC equivalents. */
export const NFKC_TEXTS: Record<string, string> = {
  nfd: "cafe\u0301 cre\u0300me",
  nfc: "caf\u00e9 br\u00fbl\u00e9e",
  wide: "\uff21\uff22\uff23", // ＡＢＣ
  ligature: "\ufb01le", // ﬁle
};

/** Searches of {@linkcode NFKC_TEXTS} (the other form) and the keys they must find. */
export const NFKC_SEARCHES: [string, string[]][] = [
  ["caf\u00e9", ["nfc", "nfd"]],
  ["cr\u00e8me", ["nfd"]],
  ["bru\u0302le\u0301e", ["nfc"]],
  ["abc", ["wide"]],
  ["file", ["ligature"]],
];
