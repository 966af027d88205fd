/**
 * Secrets: the values of a flow's `secrets:` variables, replaced by
 * {@linkcode SECRET_MASK} in everything a run records or shows (node outputs,
 * errors, log lines, run inputs and outputs, events), while nodes get the
 * real values in memory.
 *
 * What is masked: each value as it is, JSON-escaped (once and twice: a value
 * inside a serialized object, inside another one) and URL-encoded (as
 * `encodeURIComponent` and as a form or a query string encode it), anywhere in
 * a string (object keys too), and what template functions derived from them
 * (`base64(…)`, `sha256(…)`, a `slice` that cuts one: they {@linkcode SecretMasker.add}
 * it, see `TemplateScope.masker`). Forms derived elsewhere (by a node's code, a
 * value split across strings) are not found. A value with spaces around it
 * is masked without them too.
 *
 * @module
 */

import { EnvFileError, envOrFile } from "../_env_file.ts";
import type { Problem } from "../errors.ts";
import type { FlowDefinition } from "./types.ts";

/** What replaces a secret's value. */
export const SECRET_MASK = "***";

/**
 * The shortest secret value a run accepts: a shorter one would mask every
 * occurrence of a common few characters in the records (and give its value away).
 */
export const SECRET_MIN_LENGTH = 4;

/**
 * Replaces secret values in strings and in JSON-like values (plain objects,
 * arrays, `Error`s), without changing what it is given.
 *
 * @example
 * ```ts
 * import { SecretMasker } from "./secrets.ts";
 * import assert from "node:assert/strict";
 * const masker = new SecretMasker(["s3cr3t-token"]);
 * assert.equal(masker.maskText("Bearer s3cr3t-token"), "Bearer ***");
 * assert.deepEqual(masker.mask({ headers: { auth: "s3cr3t-token" }, n: 1 }), { headers: { auth: "***" }, n: 1 });
 * assert.ok(masker.contains(["x", "s3cr3t-token"]));
 * assert.deepEqual(masker.find("a s3cr3t-token"), [[2, 14]]);
 * ```
 */
export class SecretMasker {
  #forms = new Set<string>();
  /** The forms up to {@linkcode LONG_FORM} characters, longest first. */
  #pattern: RegExp | undefined;
  /** The longer forms (a regular expression holds none so long), longest first. */
  #long: string[] = [];
  /** The forms by their first character's code, for {@linkcode SecretMasker.maskText}'s cuts. */
  #byFirst = new Map<number, string[]>();

  /** A masker of `values` (more may be added). */
  constructor(values: Iterable<string> = []) {
    this.add(values);
  }

  /**
   * How many forms of secret values it masks (each value as it is, escaped,
   * encoded…): it grows when a value it did not mask is added.
   */
  get size(): number {
    return this.#forms.size;
  }

  /** Whether it masks anything. */
  get empty(): boolean {
    return this.#pattern === undefined && this.#long.length === 0;
  }

  /**
   * Mask `values` too (those shorter than {@linkcode SECRET_MIN_LENGTH} are
   * ignored), and each line of a value of several lines that has at least
   * {@linkcode SECRET_MIN_LENGTH} characters besides spaces; a value or line
   * with spaces around it is masked without them too.
   */
  add(values: Iterable<string>): void {
    const before = this.#forms.size;
    for (const whole of values) {
      // A value of several lines (a PEM key) is masked line by line too: a program's stderr,
      // and stdout: lines, give it one line at a time.
      if (whole.length >= SECRET_MIN_LENGTH) this.#addForms(whole);
      // Without the spaces around it too (a file's "token \n"): a shell's unquoted
      // echo, a header, a parser drops them and would print the rest unmasked.
      const trimmed = whole.trim();
      if (trimmed !== whole && trimmed.length >= SECRET_MIN_LENGTH) this.#addForms(trimmed);
      if (!/[\r\n]/.test(whole)) continue;
      for (const line of whole.split(/\r?\n|\r/)) {
        if (line.trim().length >= SECRET_MIN_LENGTH) this.#addForms(line);
        if (line.trim() !== line && line.trim().length >= SECRET_MIN_LENGTH) {
          this.#addForms(line.trim());
        }
      }
    }
    if (this.#forms.size === before) return;
    // Longest first: a value that contains another is masked whole.
    const sorted = [...this.#forms].sort((a, b) => b.length - a.length);
    const short = sorted.filter((form) => form.length <= LONG_FORM);
    this.#long = sorted.filter((form) => form.length > LONG_FORM);
    this.#byFirst.clear();
    for (const form of sorted) {
      const first = form.charCodeAt(0);
      const list = this.#byFirst.get(first);
      if (list === undefined) this.#byFirst.set(first, [form]);
      else list.push(form);
    }
    this.#pattern = short.length === 0
      ? undefined
      : new RegExp(short.map(escapeRegExp).join("|"), "g");
  }

  /**
   * `value` as it is, JSON-escaped (once and twice) and URL-encoded: as
   * `encodeURIComponent` does and as a form or a URL's `searchParams` does
   * (a space as `+`, `!'()~` as `%21`…: the `http` node's `query:`).
   */
  #addForms(value: string): void {
    const escaped = JSON.stringify(value).slice(1, -1);
    for (const form of [value, escaped, JSON.stringify(escaped).slice(1, -1)]) {
      this.#forms.add(form);
    }
    // A lone surrogate (half of a character a slice cut) has no URL-encoded form.
    if (!value.isWellFormed()) return;
    this.#forms.add(encodeURIComponent(value));
    this.#forms.add(new URLSearchParams([["", value]]).toString().slice(1));
  }

  /**
   * `text` with every secret value replaced by {@linkcode SECRET_MASK}, and
   * the start of one cut by a message that quotes text up to a length (the
   * last {@linkcode SECRET_MIN_LENGTH} or more characters before `…` or `...`, or a space or
   * a quote and one, that begin a secret value) too.
   */
  maskText(text: string): string {
    if (this.empty || text.length < SECRET_MIN_LENGTH) return text;
    let masked = text;
    for (const form of this.#long) {
      if (masked.includes(form)) masked = masked.split(form).join(SECRET_MASK);
    }
    if (this.#pattern !== undefined) masked = masked.replace(this.#pattern, SECRET_MASK);
    return masked.includes("…") || masked.includes("...") ? this.#maskCuts(masked) : masked;
  }

  /**
   * `text` with the start of a secret value cut by `…` or `...` masked, also
   * with a space before the mark (a log line or error cut to its size ends
   * `… (cut: N bytes, …)`) or a quote, JSON-escaped or not (`console.log` of
   * an object cuts a string in it at 10,000 characters: `"... 8 more characters`).
   */
  #maskCuts(text: string): string {
    const marks = [...text.matchAll(/(?: |\\?["'`])?(?:…|\.\.\.)/g)].map((m) => m.index);
    let out = text;
    for (const at of marks.reverse()) {
      // The longest cut start: from the farthest character back, the first that begins a form
      // (of more characters than the cut) whose start is the text from there to the mark.
      let longest = 0;
      for (let k = Math.min(at, MAX_CUT_QUOTE); k >= SECRET_MIN_LENGTH; k--) {
        const forms = this.#byFirst.get(out.charCodeAt(at - k));
        if (forms === undefined) continue;
        const cut = out.slice(at - k, at);
        if (forms.some((form) => form.length > k && form.startsWith(cut))) {
          longest = k;
          break;
        }
      }
      if (longest > 0) out = out.slice(0, at - longest) + SECRET_MASK + out.slice(at);
    }
    return out;
  }

  /**
   * A copy of `value` with every string masked (keys too); the same value when
   * there is nothing to mask. Objects other than plain ones, arrays and
   * `Error`s are returned as they are.
   */
  mask<T>(value: T): T {
    if (this.empty) return value;
    return this.#mask(value, 0) as T;
  }

  /**
   * Where secret values (in every form masked) occur in `text`: `[start, end)`
   * pairs, in order, as {@linkcode SecretMasker.maskText} would replace them.
   */
  find(text: string): [number, number][] {
    if (this.empty || text.length < SECRET_MIN_LENGTH) return [];
    const out: [number, number][] = [];
    const overlaps = (start: number, end: number) => out.some(([s, e]) => start < e && s < end);
    for (const form of this.#long) {
      for (let at = text.indexOf(form); at >= 0; at = text.indexOf(form, at + form.length)) {
        if (!overlaps(at, at + form.length)) out.push([at, at + form.length]);
      }
    }
    const pattern = this.#pattern;
    if (pattern !== undefined) {
      const long = out.length;
      pattern.lastIndex = 0; // matchAll starts where contains()'s last test() stopped
      for (const m of text.matchAll(pattern)) {
        const end = m.index + m[0].length;
        if (long === 0 || !out.slice(0, long).some(([s, e]) => m.index < e && s < end)) {
          out.push([m.index, end]);
        }
      }
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  /** Whether a string in `value` (a key too) holds a secret value. */
  contains(value: unknown): boolean {
    if (this.empty) return false;
    let found = false;
    const visit = (v: unknown, depth: number): void => {
      if (found || depth > MAX_DEPTH) return;
      if (typeof v === "string") {
        found = this.#long.some((form) => v.includes(form));
        if (!found && this.#pattern !== undefined) {
          this.#pattern.lastIndex = 0;
          found = this.#pattern.test(v);
        }
      } else if (typeof v === "number") found = this.#forms.has(String(v));
      else if (Array.isArray(v)) v.forEach((x) => visit(x, depth + 1));
      else if (isPlain(v)) {
        for (const [k, x] of Object.entries(v)) {
          visit(k, depth + 1);
          visit(x, depth + 1);
        }
      }
    };
    visit(value, 0);
    return found;
  }

  #mask(value: unknown, depth: number): unknown {
    if (typeof value === "string") return this.maskText(value);
    if (typeof value === "number" && this.#forms.has(String(value))) return SECRET_MASK;
    if (depth > MAX_DEPTH || typeof value !== "object" || value === null) return value;
    if (Array.isArray(value)) return value.map((v) => this.#mask(v, depth + 1));
    if (value instanceof Error) {
      const copy = new Error(this.maskText(value.message));
      copy.name = value.name;
      copy.stack = value.stack === undefined ? undefined : this.maskText(value.stack);
      return copy;
    }
    if (!isPlain(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[this.maskText(k)] = this.#mask(v, depth + 1);
    return out;
  }
}

/**
 * The longest form of a secret masked through a regular expression: longer
 * ones (a value derived from a long text holding a secret) are looked for as
 * text, since V8 refuses a regular expression with so long an alternative.
 */
const LONG_FORM = 1024;

/**
 * The most characters of a secret before a cut mark that are masked: more
 * than any message quotes (they quote at most a few hundred characters).
 */
const MAX_CUT_QUOTE = 1024;

/** Deeper than any JSON value a run records (the serializer's own limit is lower). */
const MAX_DEPTH = 1000;

function isPlain(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/**
 * The values of the flow's `secrets:` read from `env` (the process
 * environment by default), and a problem for each one not set or shorter
 * than {@linkcode SECRET_MIN_LENGTH}, at its place in the `secrets:` list.
 * A secret `NAME` that is unset is read from the file `NAME_FILE` names, when
 * that is set (Docker and Kubernetes secrets); a file that cannot be read, or
 * both set, is a problem too.
 *
 * @example
 * ```ts
 * import { readSecrets } from "./secrets.ts";
 * import assert from "node:assert/strict";
 * const flow = { id: "f", secrets: ["API_TOKEN"], nodes: [] };
 * assert.deepEqual(readSecrets(flow, { API_TOKEN: "t0ken" }).values, { API_TOKEN: "t0ken" });
 * assert.match(readSecrets(flow, {}).problems[0].message, /^secret API_TOKEN is not set/);
 * ```
 */
export function readSecrets(
  definition: FlowDefinition,
  env?: Readonly<Record<string, string | undefined>>,
  locate?: (path: (string | number)[]) => { line: number; column: number } | undefined,
): { values: Record<string, string>; problems: Problem[] } {
  const values: Record<string, string> = {};
  const problems: Problem[] = [];
  const listed = definition.secrets ?? [];
  listed.forEach((name, i) => {
    let value: string | undefined;
    let message: string | undefined;
    try {
      value = envOrFile(name, env ? (n) => env[n] : (n) => Deno.env.get(n));
    } catch (err) {
      if (!(err instanceof EnvFileError)) throw err;
      message = `secret ${name}: ${err.message}`;
    }
    if (message === undefined && value === undefined) {
      message =
        `secret ${name} is not set: export it (export ${name}=…), or name a file holding it with ${name}_FILE, before running; a secret has no fallback`;
    } else if (value !== undefined && value.length < SECRET_MIN_LENGTH) {
      message =
        `secret ${name} is ${value.length} character(s) long, under ${SECRET_MIN_LENGTH}: masking so short a value would hide those characters wherever they appear in the records; use a longer secret, or list it under env: if it is not secret`;
    } else if (value !== undefined) values[name] = value;
    if (message === undefined) return;
    const path = ["secrets", i];
    const at = locate?.(path);
    problems.push({ path, message, ...(at ? { line: at.line, column: at.column } : {}) });
  });
  return { values, problems };
}
