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
 * Plain JavaScript with JSDoc types, so that the server (through `_json.ts`)
 * and the inspector's browser code (`serve/ui/*.js`) load this one file:
 * a `ui/` module imports it as `../../_parse_json.js`, which is this file on
 * disk and `/_parse_json.js` in the browser (a URL path cannot climb above the root),
 * where `serve/server.ts` serves it.
 *
 * @module
 */

/**
 * What a correct `JSON.parse(text)` returns. A text whose object keys hold
 * no escape (nearly all of them: most have no backslash at all) goes to the
 * native parser unchanged; otherwise the native parser validates it (so an
 * error reads exactly as `JSON.parse`'s) and {@linkcode buildJson} builds the
 * value.
 *
 * @param {string} text
 * @returns {any}
 */
export function parseJson(text) {
  const first = text.indexOf("\\");
  if (first === -1 || !hasEscapedKey(text, first)) return JSON.parse(text);
  JSON.parse(text);
  return buildJson(text);
}

/**
 * Whether a backslash at or after `from` sits in an object key. In valid JSON
 * a backslash is always inside a string, and the first backslash of a string
 * starts an escape: walk to the string's closing quote, skipping escapes, and
 * the string is a key when the next non-whitespace character is `:`. Then look
 * for the next backslash after that string. (On invalid JSON the answer does
 * not matter: both paths throw the native parser's error.)
 *
 * @param {string} text
 * @param {number} from
 * @returns {boolean}
 */
function hasEscapedKey(text, from) {
  const length = text.length;
  let at = from;
  while (at !== -1) {
    let i = at;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === BACKSLASH) i += 2;
      else if (c === QUOTE || i >= length) break;
      else i++;
    }
    i++;
    while (i < length && isWhitespace(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) === COLON) return true;
    at = text.indexOf("\\", i);
  }
  return false;
}

/**
 * Build the value of `text`, which must be valid JSON (the caller checked it
 * with the native parser). Strings and numbers are decoded on their own
 * (a lone string token is decoded correctly: only key transitions are
 * broken); objects are built by assignment, in an explicit stack (the native
 * parser accepts documents a million levels deep, and so does this).
 * `__proto__` becomes an own data property and a duplicate key keeps the
 * first one's position with the last one's value, as `JSON.parse` does.
 *
 * @param {string} text
 * @returns {unknown}
 */
export function buildJson(text) {
  // One frame per open container: the container, and for an object the key being filled.
  /** @type {(unknown[] | Record<string, unknown>)[]} */
  const containers = [];
  /** @type {(string | undefined)[]} */
  const keys = [];
  let i = 0;
  /** @type {unknown} */
  let value;
  for (;;) {
    // A value starts at `i` (after whitespace).
    i = skipWhitespace(text, i);
    const c = text.charCodeAt(i);
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      i = skipWhitespace(text, i + 1);
      const close = text.charCodeAt(i);
      if (close === CLOSE_BRACE || close === CLOSE_BRACKET) {
        value = c === OPEN_BRACE ? {} : [];
        i++;
      } else {
        if (c === OPEN_BRACE) {
          containers.push({});
          i = readKey(text, i, keys);
        } else {
          containers.push([]);
          keys.push(undefined);
        }
        continue;
      }
    } else if (c === QUOTE) {
      const end = stringEnd(text, i);
      value = decodeString(text, i, end);
      i = end;
    } else if (c === LOWER_T) {
      value = true;
      i += 4;
    } else if (c === LOWER_F) {
      value = false;
      i += 5;
    } else if (c === LOWER_N) {
      value = null;
      i += 4;
    } else {
      let end = i + 1;
      while (end < text.length && isNumberChar(text.charCodeAt(end))) end++;
      value = Number(text.slice(i, end));
      i = end;
    }
    // A value is complete: put it in its container, closing the containers that end here.
    for (;;) {
      const depth = containers.length;
      if (depth === 0) return value;
      const container = containers[depth - 1];
      const key = keys[depth - 1];
      if (key === undefined) /** @type {unknown[]} */ (container).push(value);
      else setOwn(/** @type {Record<string, unknown>} */ (container), key, value);
      i = skipWhitespace(text, i);
      if (text.charCodeAt(i) === COMMA) {
        i++;
        if (key !== undefined) {
          keys.pop();
          i = readKey(text, skipWhitespace(text, i), keys);
        }
        break;
      }
      // `}` or `]`: the container is the value completing its parent.
      i++;
      containers.pop();
      keys.pop();
      value = container;
    }
  }
}

/**
 * Set a property even when it is called `__proto__` (which `=` turns into a
 * prototype change where `Object.prototype.__proto__` exists): an own data
 * property, as `JSON.parse` makes it.
 *
 * @param {Record<string, unknown>} target
 * @param {string} key
 * @param {unknown} value
 * @returns {void}
 */
export function setOwn(target, key, value) {
  if (key === "__proto__") {
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    target[key] = value;
  }
}

/**
 * Read the key at `i` (its opening quote) and its colon; push the key; return where its value starts.
 *
 * @param {string} text
 * @param {number} i
 * @param {(string | undefined)[]} keys
 * @returns {number}
 */
function readKey(text, i, keys) {
  const end = stringEnd(text, i);
  keys.push(decodeString(text, i, end));
  // Past the colon (whitespace before it is skipped here, after it by the value).
  return skipWhitespace(text, end) + 1;
}

/**
 * The index after the closing quote of the string whose opening quote is at `start`.
 *
 * @param {string} text
 * @param {number} start
 * @returns {number}
 */
function stringEnd(text, start) {
  let i = start + 1;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === QUOTE || i >= text.length) return i + 1;
    i += c === BACKSLASH ? 2 : 1;
  }
}

/**
 * The string token `text[start, end)`, decoded (by the native parser when it has escapes).
 *
 * @param {string} text
 * @param {number} start
 * @param {number} end
 * @returns {string}
 */
function decodeString(text, start, end) {
  const token = text.slice(start, end);
  return token.indexOf("\\") === -1 ? token.slice(1, -1) : JSON.parse(token);
}

/**
 * @param {string} text
 * @param {number} i
 * @returns {number}
 */
function skipWhitespace(text, i) {
  while (isWhitespace(text.charCodeAt(i))) i++;
  return i;
}

/**
 * @param {number} c
 * @returns {boolean}
 */
function isWhitespace(c) {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * A character that may continue a number: digits, `-`, `+`, `.`, `e`, `E`.
 *
 * @param {number} c
 * @returns {boolean}
 */
function isNumberChar(c) {
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 ||
    c === 0x45;
}

const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const LOWER_T = 0x74;
const LOWER_F = 0x66;
const LOWER_N = 0x6e;
