/**
 * UTF-8 and base64 for the template functions `base64()`, `fromBase64()`,
 * `urlEncode()` and `sha256()`: errors go through the caller's `fail`, so
 * that they name the function. Private to the template language.
 *
 * @module
 */

/** `text` as UTF-8; a lone surrogate (which has no UTF-8) is an error. */
export function utf8(text: string, fail: (message: string) => never): Uint8Array {
  if (!text.isWellFormed()) {
    return fail("takes text without lone surrogates (half of a UTF-16 pair): it has no UTF-8");
  }
  return new TextEncoder().encode(text);
}

/** Base64 (standard alphabet, padded) of `bytes`. */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let k = 0; k < bytes.length; k += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
  }
  return btoa(binary);
}

/** The UTF-8 text whose base64 (padded or not, standard or URL alphabet) is `text`. */
export function decodeBase64(text: string, fail: (message: string) => never): string {
  // The standard alphabet, padding optional; base64url's - and _ accepted too.
  const clean = text.replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.replace(/=+$/, "").length % 4 === 1) {
    return fail("got text that is not base64");
  }
  const padded = clean.replace(/=+$/, "");
  let binary: string;
  try {
    binary = atob(padded + "=".repeat((4 - padded.length % 4) % 4));
  } catch {
    return fail("got text that is not base64");
  }
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return fail("decoded bytes that are not UTF-8 text");
  }
}
