/**
 * The lexer of the template language: the tokens of one `${{ … }}` segment,
 * up to and including its closing `}}`.
 *
 * @module
 */
import { OPEN, type Segment } from "./_segment.ts";

/** The kinds of token; `member` is a property name after a dot, `end` the closing `}}`. */
export type TokenType = "number" | "string" | "name" | "member" | "punct" | "end";

/** One token, with its place in the original string. */
export interface Token {
  /** What kind of token it is. */
  type: TokenType;
  /** Operator text, name, or decoded string. */
  value: string;
  /** For numbers. */
  number: number;
  /** Offset of the token's first character in the original string. */
  start: number;
  /** Offset just past the token's last character. */
  end: number;
}

const NAME = /[A-Za-z_$][A-Za-z0-9_$]*/y;
const MEMBER = /[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*/y;
const NUMBER = /[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const TWO_CHAR = new Set(["==", "!=", "<=", ">=", "&&", "||"]);
const ONE_CHAR = new Set(["(", ")", "[", "]", ",", ":", "?", ".", "!", "+", "-", "*", "/", "%"]);
const ONE_CHAR_COMPARE = new Set(["<", ">"]);

function isSpace(code: number): boolean {
  return code === 32 || code === 9 || code === 10 || code === 13;
}

function isNameChar(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) ||
    code === 95 || code === 36;
}

/** Tokens of the segment starting at `segment.start`, ending with the `}}` token. */
export function lex(segment: Segment): Token[] {
  const text = segment.text;
  const n = text.length;
  const tokens: Token[] = [];
  let pos = segment.start + OPEN.length;
  let depth = 0;
  const push = (type: TokenType, value: string, start: number, end: number, number = 0) => {
    tokens.push({ type, value, number, start, end });
    pos = end;
  };
  for (;;) {
    while (pos < n && isSpace(text.charCodeAt(pos))) pos++;
    if (pos >= n) {
      throw segment.parseError(`"\${{" is not closed by "}}"`, segment.start, OPEN.length);
    }
    const ch = text[pos];
    const previous = tokens.length > 0 ? tokens[tokens.length - 1] : undefined;
    if (previous?.type === "punct" && previous.value === ".") {
      MEMBER.lastIndex = pos;
      const m = MEMBER.exec(text);
      if (m === null) {
        throw segment.parseError(`expected a property name after "."`, pos, 1);
      }
      push("member", m[0], pos, pos + m[0].length);
      continue;
    }
    if (ch === "}") {
      if (depth > 0) {
        depth--;
        push("punct", "}", pos, pos + 1);
        continue;
      }
      if (text[pos + 1] === "}") {
        push("end", "}}", pos, pos + 2);
        return tokens;
      }
      throw segment.parseError(`unexpected "}" (a template ends with "}}")`, pos, 1);
    }
    if (ch === "{") {
      depth++;
      push("punct", "{", pos, pos + 1);
      continue;
    }
    if (ch === '"' || ch === "'") {
      const { value, end } = lexString(segment, pos);
      push("string", value, pos, end);
      continue;
    }
    const code = text.charCodeAt(pos);
    if (code >= 48 && code <= 57) {
      NUMBER.lastIndex = pos;
      const m = NUMBER.exec(text)!;
      const end = pos + m[0].length;
      if (end < n && isNameChar(text.charCodeAt(end))) {
        let stop = end;
        while (stop < n && isNameChar(text.charCodeAt(stop))) stop++;
        throw segment.parseError(
          `"${text.slice(pos, stop)}" is not a number`,
          pos,
          stop - pos,
        );
      }
      const value = Number(m[0]);
      if (!Number.isFinite(value)) {
        throw segment.parseError(`${m[0]} is too large for a number`, pos, m[0].length);
      }
      push("number", m[0], pos, end, value);
      continue;
    }
    if (isNameChar(code)) {
      NAME.lastIndex = pos;
      const m = NAME.exec(text)!;
      push("name", m[0], pos, pos + m[0].length);
      continue;
    }
    const two = text.slice(pos, pos + 2);
    if (TWO_CHAR.has(two)) {
      push("punct", two, pos, pos + 2);
      continue;
    }
    if (ONE_CHAR.has(ch) || ONE_CHAR_COMPARE.has(ch)) {
      push("punct", ch, pos, pos + 1);
      continue;
    }
    if (ch === "=") {
      const strict = previous?.type === "punct" &&
        (previous.value === "==" || previous.value === "!=");
      throw segment.parseError(
        strict
          ? `there is no === or !==: == and != are already strict`
          : `"=" is not an operator: compare with ==`,
        pos,
        1,
      );
    }
    if (ch === "&" || ch === "|") {
      throw segment.parseError(`"${ch}" is not an operator: use ${ch}${ch}`, pos, 1);
    }
    const cp = text.codePointAt(pos)!;
    throw segment.parseError(
      `unexpected character ${JSON.stringify(String.fromCodePoint(cp))}`,
      pos,
      cp > 0xffff ? 2 : 1,
    );
  }
}

const SIMPLE_ESCAPES: Record<string, string> = {
  "\\": "\\",
  "'": "'",
  '"': '"',
  "/": "/",
  n: "\n",
  r: "\r",
  t: "\t",
  b: "\b",
  f: "\f",
  v: "\v",
  "0": "\0",
};

function lexString(segment: Segment, start: number): { value: string; end: number } {
  const text = segment.text;
  const quote = text[start];
  let out = "";
  let chunk = start + 1;
  let i = chunk;
  while (i < text.length) {
    const c = text[i];
    if (c === quote) return { value: out + text.slice(chunk, i), end: i + 1 };
    if (c !== "\\") {
      i++;
      continue;
    }
    out += text.slice(chunk, i);
    const e = text[i + 1];
    if (e !== undefined && Object.hasOwn(SIMPLE_ESCAPES, e)) {
      out += SIMPLE_ESCAPES[e];
      i += 2;
    } else if (e === "u") {
      const m = /^\{([0-9a-fA-F]{1,6})\}|^([0-9a-fA-F]{4})/.exec(text.slice(i + 2, i + 10));
      const cp = m === null ? -1 : parseInt(m[1] ?? m[2], 16);
      if (m === null || cp > 0x10ffff) {
        throw segment.parseError(
          `bad escape: write \\u and 4 hex digits, or \\u{…} with up to 6 hex digits (at most 10FFFF)`,
          i,
          2 + (m?.[0].length ?? 0),
        );
      }
      out += String.fromCodePoint(cp);
      i += 2 + m[0].length;
    } else {
      if (e === undefined) break;
      throw segment.parseError(
        `unknown escape "\\${e}" (use \\\\ for a backslash)`,
        i,
        2,
      );
    }
    chunk = i;
  }
  throw segment.parseError(`string is not closed by ${quote}`, start, 1);
}
