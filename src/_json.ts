/**
 * `JSON.parse` that returns object keys as written, working around a V8 bug
 * (nodejs/node#63785, chromium 521080746; present in Deno 2.9.6's V8): an
 * escaped object key can be decoded as the key of an earlier parsed object of
 * the same shape whose raw source matched a prefix —
 * `JSON.parse('{"st":1,"\\\\":1}')` then `JSON.parse('{"st":1,"\\n":2}')`
 * gives the key `"\\"` instead of `"\n"`. Stored values would read back with
 * other keys than they were written with, so every parse of user data goes
 * through {@linkcode parseJson}.
 *
 * The implementation is `_parse_json.js`, plain JavaScript that the
 * inspector's browser code loads too (one parser for both sides); this module
 * gives it its TypeScript signatures.
 *
 * @module
 */
import { buildJson as build, parseJson as parse, setOwn as set } from "./_parse_json.js";

/**
 * What a correct `JSON.parse(text)` returns. A text whose object keys hold
 * no escape (nearly all of them: most have no backslash at all) goes to the
 * native parser unchanged; otherwise the native parser validates it (so an
 * error reads exactly as `JSON.parse`'s) and {@linkcode buildJson} builds the
 * value.
 */
// deno-lint-ignore no-explicit-any
export const parseJson: (text: string) => any = parse;

/**
 * Build the value of `text`, which must be valid JSON (the caller checked it
 * with the native parser), with its object keys as written.
 */
export const buildJson: (text: string) => unknown = build;

/**
 * Set a property even when it is called `__proto__` (which `=` turns into a
 * prototype change where `Object.prototype.__proto__` exists): an own data
 * property, as `JSON.parse` makes it.
 */
export const setOwn: (target: Record<string, unknown>, key: string, value: unknown) => void = set;
