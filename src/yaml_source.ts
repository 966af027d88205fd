/**
 * One YAML text parsed with positions, for the config and for flows: its
 * syntax errors with line and column, where a path of the data it produced is
 * written (key or value side; for a missing path, its nearest existing
 * ancestor), where a character of a string is, its duplicate keys, and
 * `file:line:column` for messages.
 *
 * A path is the one of the data (`["nodes", 1, "needs", 0]`): mapping keys
 * compare as text, a number indexes a sequence. Where a key appears twice the
 * last one counts, as it does in the data.
 *
 * The two callers differ in three corners, each an option:
 *
 * | option | flows (default) | config |
 * |---|---|---|
 * | {@linkcode YamlSourceOptions.aliases} | `"follow"`: a path goes through `*alias` into its anchor | `"stop"`: at the alias |
 * | {@linkcode YamlSourceOptions.missing} | `"value"`: a missing path points at its ancestor's value | `"key"`: at its ancestor's key |
 * | {@linkcode YamlSourceOptions.empty} | `"key"`: an empty value (`a:`) points at its key (an empty list item has no position) | `"here"`: where it would start |
 *
 * This module is on the ground floor: it imports only `yaml`.
 *
 * @module
 */
import {
  Composer,
  CST,
  type Document,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  Parser,
  Scalar,
  visit,
  type YAMLError,
  YAMLParseError,
} from "yaml";

export {
  DEFAULT_MAX_YAML_BYTES,
  MAX_YAML_ALIASES,
  MAX_YAML_DEPTH,
  readYamlFile,
  YAML_SIZE_ENV,
  type YamlFileProblem,
  yamlSizeLimit,
} from "./_yaml_file.ts";
import { MAX_YAML_ALIASES, MAX_YAML_DEPTH } from "./_yaml_file.ts";

/** A path into the data of a YAML document: `["nodes", 1, "needs", 0]`. */
export type YamlPath = readonly (string | number)[];

/** A 1-based line and column in a YAML text. */
export interface SourcePosition {
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  column: number;
}

/** Which side of a mapping entry a position is wanted for. */
export type YamlSide = "key" | "value";

/** A YAML syntax error (or warning) with its position. */
export interface YamlSyntaxProblem extends SourcePosition {
  /** yaml's message, without its own ` at line L, column C:` and excerpt. */
  message: string;
  /** The error as yaml reported it. */
  error: YAMLError;
}

/** A later occurrence of a key in one mapping (see {@linkcode YamlSource.duplicateKeys}). */
export interface DuplicateKey {
  /** The path of the key (its mapping's path and the key). */
  path: (string | number)[];
  /** The key, as text. */
  key: string;
  /** Where the first occurrence is. */
  first: SourcePosition;
  /** Where this later occurrence is. */
  at: SourcePosition;
}

/** Options for {@linkcode YamlSource}. */
export interface YamlSourceOptions {
  /** The file name in {@linkcode YamlSource.where} (default `<source>`). */
  file?: string;
  /**
   * Whether a key written twice in a mapping is a syntax error (default
   * `true`). With `false` the last one counts and
   * {@linkcode YamlSource.duplicateKeys} lists the others.
   */
  uniqueKeys?: boolean;
  /**
   * Whether yaml writes the position and an excerpt into its errors'
   * messages (default `false`). {@linkcode YamlSyntaxProblem.message} never
   * has them.
   */
  prettyErrors?: boolean;
  /** What yaml itself prints while parsing and converting (default `"warn"`: warnings). */
  logLevel?: "silent" | "error" | "warn" | "debug";
  /**
   * Whether a path goes through an `*alias` into its anchor (`"follow"`, the
   * default) or stops at the alias (`"stop"`).
   */
  aliases?: "follow" | "stop";
  /**
   * For a path that does not exist, whether its nearest existing ancestor is
   * located at its value (`"value"`, the default) or its key (`"key"`; list
   * items and the document have no key and are located at their value).
   */
  missing?: YamlSide;
  /**
   * Where an empty value (`key:` with nothing after it, or `- ` alone) is:
   * at its key (`"key"`, the default; an empty list item then has no
   * position) or where the value would start (`"here"`).
   */
  empty?: "key" | "here";
  /**
   * For the message on a second document (`---` further down), what holds
   * one (default `"this file"`) and where the other could go instead: with
   * `{ file: "a flow file", elsewhere: "put the other flow in a file of its own" }`,
   * "a second YAML document starts here (`---`); a flow file holds one:
   * remove the `---` and what follows, or put the other flow in a file of its own".
   */
  oneDocument?: { file: string; elsewhere?: string };
}

interface Step {
  key?: unknown;
  value: unknown;
}

/**
 * A YAML text parsed with positions.
 *
 * @example Locate a path, on the key or the value side
 * ```ts
 * import { YamlSource } from "./yaml_source.ts";
 * import assert from "node:assert/strict";
 * const source = new YamlSource("stores:\n  main: { plugin: memory }\n", { file: "flowstate.yaml" });
 * assert.deepEqual(source.syntaxErrors, []);
 * assert.deepEqual(source.locate(["stores", "main", "plugin"], "key"), { line: 2, column: 11 });
 * assert.deepEqual(source.locate(["stores", "main", "plugin"]), { line: 2, column: 19 });
 * assert.equal(source.where(["stores", "main", "path"], "key"), "flowstate.yaml:2:9");
 * ```
 *
 * @example Syntax errors
 * ```ts
 * import { YamlSource } from "./yaml_source.ts";
 * import assert from "node:assert/strict";
 * const source = new YamlSource("a: 1\na: 2\n");
 * assert.equal(source.syntaxErrors[0].message, "Map keys must be unique");
 * assert.equal(source.syntaxErrors[0].line, 2);
 * ```
 */
export class YamlSource {
  /** The text that was parsed. */
  readonly text: string;
  /** The file name used by {@linkcode YamlSource.where}. */
  readonly file: string;
  /** yaml's document (call `toJS()` on it for the data). */
  readonly doc: Document.Parsed;
  /** The syntax errors, in the order yaml found them; none when the text is valid YAML. */
  readonly syntaxErrors: readonly YamlSyntaxProblem[];
  /** yaml's warnings (an unknown tag, say), which do not stop the data from being read. */
  readonly syntaxWarnings: readonly YamlSyntaxProblem[];
  readonly #lines = new LineCounter();
  readonly #aliases: "follow" | "stop";
  readonly #missing: YamlSide;
  readonly #empty: "key" | "here";

  /**
   * Parse `text`. This does not throw on bad YAML (see
   * {@linkcode YamlSource.syntaxErrors}), but yaml reads the environment
   * variables `LOG_TOKENS` and `LOG_STREAM`: without permission to,
   * `Deno.errors.NotCapable` is thrown.
   */
  constructor(text: string, options: YamlSourceOptions = {}) {
    this.text = text;
    this.file = options.file ?? "<source>";
    this.#aliases = options.aliases ?? "follow";
    this.#missing = options.missing ?? "value";
    this.#empty = options.empty ?? "key";
    // parseDocument(), in its steps: the text is checked for too many aliases before it is
    // parsed (reading aliases takes time quadratic in their number), and the tokens for depth
    // before they are composed (composing recurses).
    const bomb = aliasPastLimit(text, MAX_YAML_ALIASES);
    if (bomb !== undefined) countLines(text, this.#lines);
    let tokens: CST.Token[] = [];
    let deep: number | undefined;
    if (bomb === undefined) {
      try {
        tokens = [...new Parser(this.#lines.addNewLine).parse(text)];
        deep = tooDeep(tokens, MAX_YAML_DEPTH);
      } catch (err) {
        // yaml's parser recurses once a level of blocks opened on one line (`- - - …`): past
        // the stack, the text is nested far deeper than the limit, reported like any such.
        if (!(err instanceof RangeError)) throw err;
        tokens = [];
        this.#lines.lineStarts.length = 0;
        countLines(text, this.#lines);
        deep = deepestLine(text);
      }
    }
    const composer = new Composer({
      uniqueKeys: options.uniqueKeys ?? true,
      ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
    });
    let doc: Document.Parsed | undefined;
    for (const next of composer.compose(deep === undefined ? tokens : [], true, text.length)) {
      if (doc === undefined) doc = next;
      else {
        doc.errors.push(
          new YAMLParseError(
            [next.range[0], next.range[1]],
            "MULTIPLE_DOCS",
            secondDocument(text, next.range[0], options.oneDocument),
          ),
        );
        break;
      }
    }
    this.doc = doc!;
    if (bomb !== undefined) {
      this.doc.errors.push(
        new YAMLParseError(
          [bomb, bomb + 1],
          "RESOURCE_EXHAUSTION",
          `more than ${MAX_YAML_ALIASES} aliases (this is alias ${
            MAX_YAML_ALIASES + 1
          }): this looks like an alias bomb ("billion laughs"); write the repeated data out, ` +
            "or use fewer aliases",
        ),
      );
    }
    if (deep !== undefined) {
      this.doc.errors.push(
        new YAMLParseError(
          [deep, deep + 1],
          "RESOURCE_EXHAUSTION",
          `nested deeper than ${MAX_YAML_DEPTH} levels of mappings and lists; flatten it`,
        ),
      );
    }
    if (options.prettyErrors) {
      for (const error of [...this.doc.errors, ...this.doc.warnings]) {
        const { line, col } = this.#lines.linePos(error.pos[0]);
        error.message += ` at line ${line}, column ${col}`;
      }
    }
    const problem = (error: YAMLError): YamlSyntaxProblem => ({
      message: error.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, ""),
      ...this.position(error.pos[0]),
      error,
    });
    const at = (offset: number) => this.position(offset);
    const strings = quotesInside(unclosedStrings(this.doc.errors.map(problem), tokens, at), tokens);
    this.syntaxErrors = unclosedCollections(explained(strings, text), tokens, at);
    this.syntaxWarnings = this.doc.warnings.map(problem);
  }

  /**
   * The data of the document (yaml's `toJS`), or where and why it cannot be
   * read: aliases that expand past `maxAliasCount` (yaml's measure; default
   * 100) are an alias bomb ("billion laughs"), reported at the alias that
   * expands the most.
   *
   * @example
   * ```ts
   * import { YamlSource } from "./yaml_source.ts";
   * import assert from "node:assert/strict";
   * assert.deepEqual(new YamlSource("a: &x [1]\nb: *x\n").toData(), { data: { a: [1], b: [1] } });
   * const levels = ["a: &a [x, x, x, x, x, x, x, x, x]"];
   * for (const n of "bcdefgh") {
   *   const prev = String.fromCharCode(n.charCodeAt(0) - 1);
   *   levels.push(`${n}: &${n} [${Array(9).fill(`*${prev}`).join(", ")}]`);
   * }
   * const bomb = new YamlSource(levels.join("\n")).toData();
   * assert.ok("problem" in bomb);
   * assert.match(bomb.problem.message, /alias bomb/);
   * assert.equal(bomb.problem.line, 8);
   * ```
   */
  toData(
    options: { maxAliasCount?: number } = {},
  ): { data: unknown } | { problem: { message: string } & SourcePosition } {
    const loop = this.#aliasInsideItsAnchor();
    if (loop !== undefined) {
      return {
        problem: {
          message: `*${loop.source} is inside its own anchor &${loop.source}, so its data would ` +
            "never end; write the repeated part out instead of the alias",
          ...this.position(rangeStart(loop) ?? 0),
        },
      };
    }
    try {
      return { data: this.doc.toJS({ maxAliasCount: options.maxAliasCount ?? 100 }) };
    } catch (error) {
      if (!(error instanceof ReferenceError) || !/alias count/i.test(error.message)) {
        return {
          problem: { message: `cannot read the YAML: ${messageOf(error)}`, line: 1, column: 1 },
        };
      }
      const worst = this.#largestAlias();
      const what = worst === undefined
        ? "its aliases expand"
        : `*${worst.alias.source} expands to ${
          worst.size.toLocaleString("en-US")
        } values, and its aliases expand`;
      return {
        problem: {
          message:
            `${what} too far to be read: this looks like an alias bomb ("billion laughs"); ` +
            "write the repeated data out, or nest fewer aliases",
          ...this.position(rangeStart(worst?.alias) ?? 0),
        },
      };
    }
  }

  /**
   * The first alias written inside the node its anchor names (`&a [*a]`): its
   * data would contain itself, which nothing downstream can walk or copy.
   * Only such an alias makes a cycle, as an anchor comes before its aliases.
   */
  #aliasInsideItsAnchor(): { source: string; range?: unknown } | undefined {
    let found: { source: string; range?: unknown } | undefined;
    // One pass in document order: an alias names the latest anchor of its name before it, and
    // a node is visited before what it holds (resolving each alias walks the whole document:
    // quadratic in a file of many aliases).
    const anchors = new Map<string, { range?: [number, number, number] | null }>();
    visit(this.doc, {
      Node: (_key, node) => {
        if (node.anchor) anchors.set(node.anchor, node);
      },
      Alias: (_key, alias) => {
        const target = anchors.get(alias.source);
        const at = alias.range?.[0];
        if (target?.range === undefined || target.range === null || at === undefined) return;
        if (at >= target.range[0] && at < target.range[2]) {
          found = alias;
          return visit.BREAK;
        }
      },
    });
    return found;
  }

  /** The alias that expands to the most values (the first of equals), and how many. */
  #largestAlias(): { alias: { source: string }; size: number } | undefined {
    const sizes = new Map<unknown, number>();
    // Depth is bounded by MAX_YAML_DEPTH, so this recursion is too.
    const size = (node: unknown): number => {
      const known = sizes.get(node);
      if (known !== undefined) return known;
      sizes.set(node, 1); // an alias into its own anchor counts once
      let n = 1;
      if (isAlias(node)) n = size(node.resolve(this.doc));
      else if (isPair(node)) n = size(node.key) + size(node.value);
      else if (isCollection(node)) { for (const item of node.items) n += size(item); }
      sizes.set(node, n);
      return n;
    };
    let worst: { alias: { source: string }; size: number } | undefined;
    visit(this.doc, {
      Alias: (_key, alias) => {
        const n = size(alias);
        if (worst === undefined || n > worst.size) worst = { alias, size: n };
      },
    });
    return worst;
  }

  /** The line and column of a character offset in the text. */
  position(offset: number): SourcePosition {
    const { line, col } = this.#lines.linePos(offset);
    return { line, column: col };
  }

  /**
   * The offset where `path` is written: the key of its mapping entry or its
   * value (list items and the document have only a value). For a path that
   * does not exist, its nearest existing ancestor (see
   * {@linkcode YamlSourceOptions.missing}). `undefined` when nothing is there
   * to point at (an empty document).
   */
  offset(path: YamlPath, side: YamlSide = "value"): number | undefined {
    const steps = this.#walk(path);
    const last = steps[steps.length - 1];
    const key = rangeStart(last.key);
    const value = this.#valueStart(last.value);
    const at = steps.length - 1 === path.length ? side : this.#missing;
    return at === "key" ? key ?? value : value ?? key;
  }

  /** The position where `path` is written (see {@linkcode YamlSource.offset}). */
  locate(path: YamlPath, side: YamlSide = "value"): SourcePosition | undefined {
    const offset = this.offset(path, side);
    return offset === undefined ? undefined : this.position(offset);
  }

  /**
   * `file:line:column` where `path` is written (see
   * {@linkcode YamlSource.offset}); the start of the text when nothing is.
   */
  where(path: YamlPath, side: YamlSide = "value"): string {
    const { line, column } = this.position(this.offset(path, side) ?? 0);
    return `${this.file}:${line}:${column}`;
  }

  /**
   * Where character `index` of the string at `path` is: exact for single-line
   * plain and quoted scalars, the string's start for other strings, and
   * {@linkcode YamlSource.locate} (value side) when `path` is not a string.
   */
  inString(path: YamlPath, index: number): SourcePosition | undefined {
    const steps = this.#walk(path);
    const node = steps[steps.length - 1].value;
    if (steps.length - 1 !== path.length || !isScalar(node) || typeof node.value !== "string") {
      return this.locate(path);
    }
    const [start, end] = node.range!;
    const raw = this.text.slice(start, end);
    if (raw.includes("\n")) return this.position(start);
    if (node.type === Scalar.PLAIN) return this.position(start + index);
    if (node.type === Scalar.QUOTE_SINGLE) {
      let i = 1;
      for (let k = 0; k < index && i < raw.length - 1; k++) i += raw[i] === "'" ? 2 : 1;
      return this.position(start + i);
    }
    if (node.type === Scalar.QUOTE_DOUBLE) {
      let i = 1;
      for (let k = 0; k < index && i < raw.length - 1;) {
        if (raw[i] !== "\\") {
          i++;
          k++;
          continue;
        }
        const escape = raw[i + 1];
        if (escape === "x") [i, k] = [i + 4, k + 1];
        else if (escape === "u") [i, k] = [i + 6, k + 1];
        else if (escape === "U") {
          const codePoint = parseInt(raw.slice(i + 2, i + 10), 16);
          [i, k] = [i + 10, k + (codePoint > 0xffff ? 2 : 1)];
        } else [i, k] = [i + 2, k + 1];
      }
      return this.position(start + i);
    }
    return this.position(start);
  }

  /**
   * Every later occurrence of a key in any mapping, in document order (only
   * found with {@linkcode YamlSourceOptions.uniqueKeys} `false`; otherwise
   * they are syntax errors).
   *
   * @example
   * ```ts
   * import { YamlSource } from "./yaml_source.ts";
   * import assert from "node:assert/strict";
   * const source = new YamlSource("a:\n  b: 1\n  b: 2\n", { uniqueKeys: false });
   * assert.deepEqual(source.duplicateKeys(), [
   *   { path: ["a", "b"], key: "b", first: { line: 2, column: 3 }, at: { line: 3, column: 3 } },
   * ]);
   * ```
   */
  duplicateKeys(): DuplicateKey[] {
    const found: DuplicateKey[] = [];
    const seen = new Set<unknown>();
    const walk = (node: unknown, path: (string | number)[]) => {
      if (seen.has(node)) return;
      seen.add(node);
      if (isMap(node)) {
        const firsts = new Map<string, unknown>();
        for (const pair of node.items) {
          const key = keyText(pair.key);
          const first = firsts.get(key);
          if (first === undefined) firsts.set(key, pair.key);
          else {
            found.push({
              path: [...path, key],
              key,
              first: this.position(rangeStart(first) ?? 0),
              at: this.position(rangeStart(pair.key) ?? 0),
            });
          }
          walk(pair.value, [...path, key]);
        }
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => walk(item, [...path, i]));
      }
    };
    walk(this.doc.contents, []);
    return found;
  }

  /** The document, then each entry (key and value) on `path`, as far as the path exists. */
  #walk(path: YamlPath): Step[] {
    const steps: Step[] = [{ value: this.doc.contents }];
    let node: unknown = this.doc.contents;
    for (const segment of path) {
      if (this.#aliases === "follow" && isAlias(node)) node = node.resolve(this.doc);
      let step: Step | undefined;
      if (isMap(node)) {
        const pair = node.items.findLast((p) => keyText(p.key) === String(segment));
        if (pair !== undefined) step = { key: pair.key, value: pair.value };
      } else if (isSeq(node) && typeof segment === "number" && node.items[segment] != null) {
        step = { value: node.items[segment] };
      }
      if (step === undefined) break;
      steps.push(step);
      node = step.value;
    }
    return steps;
  }

  /** Where a value starts; an empty one per {@linkcode YamlSourceOptions.empty}. */
  #valueStart(node: unknown): number | undefined {
    if (this.#empty === "key" && isScalar(node) && node.value === null && emptyRange(node)) {
      return undefined;
    }
    return rangeStart(node);
  }
}

/**
 * The offset of the alias past the first `limit` aliases (`*name`) in `text`,
 * if there is one: yaml's lexer, which tells an alias from a `*` in a quoted
 * or block scalar or a comment, stopped at that alias. Linear, and for a text
 * with no more than `limit` stars, one scan of the text (the common case).
 */
function aliasPastLimit(text: string, limit: number): number | undefined {
  let stars = 0;
  for (let i = text.indexOf("*"); i !== -1 && stars <= limit; i = text.indexOf("*", i + 1)) {
    stars++;
  }
  if (stars <= limit) return undefined;
  let aliases = 0;
  let offset = 0;
  let scalar = false; // the token after the scalar marker is a scalar's text, even one like `*x`
  for (const token of new Lexer().lex(text)) {
    // The markers are not in the text (the byte-order mark is).
    if (token === CST.SCALAR) scalar = true;
    else if (token !== CST.DOCUMENT && token !== CST.FLOW_END) {
      if (!scalar && token[0] === "*" && ++aliases > limit) return offset;
      scalar = false;
      offset += token.length;
    }
  }
  return undefined;
}

/**
 * The message on a second document at `offset`: where it starts (its `---`, or
 * after the `...` that ended the first) and what to do.
 */
function secondDocument(
  text: string,
  offset: number,
  one: YamlSourceOptions["oneDocument"],
): string {
  const dashes = text.startsWith("---", offset);
  const marker = dashes ? "`---`" : "`...`";
  return `a second YAML document starts here (${dashes ? marker : `after the ${marker}`}); ` +
    `${one?.file ?? "this file"} holds one: remove the ${marker} and what follows` +
    (one?.elsewhere === undefined ? "" : `, or ${one.elsewhere}`);
}

/** Where each line of `text` starts, as the parser tells `lines` while it parses. */
function countLines(text: string, lines: LineCounter): void {
  lines.addNewLine(0);
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) lines.addNewLine(i + 1);
}

/**
 * The offset where the line with the most openings of lists and mappings
 * (`- `, `[`, `{`) starts its content: where a text too deep for yaml's
 * parser is reported.
 */
function deepestLine(text: string): number {
  let best = 0;
  let bestCount = -1;
  for (let start = 0; start <= text.length;) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end);
    const count = (line.match(/- |[[{]/g) ?? []).length;
    if (count > bestCount) {
      bestCount = count;
      best = start + (line.length - line.trimStart().length);
    }
    start = end + 1;
  }
  return best;
}

/** The offset of the first collection nested deeper than `limit` in yaml's tokens, if any. */
function tooDeep(tokens: readonly CST.Token[], limit: number): number | undefined {
  // Iterative: the point is to look before anything recurses.
  const stack: [unknown, number][] = tokens.map((token): [unknown, number] => [token, 0]).reverse();
  while (stack.length > 0) {
    const [token, outer] = stack.pop()!;
    if (typeof token !== "object" || token === null) continue;
    const t = token as {
      type?: string;
      offset?: number;
      value?: unknown;
      items?: { key?: unknown; value?: unknown }[];
    };
    const collection = t.type === "block-map" || t.type === "block-seq" ||
      t.type === "flow-collection";
    const depth = collection ? outer + 1 : outer;
    if (depth > limit) return t.offset ?? 0;
    const children: unknown[] = t.value === undefined ? [] : [t.value];
    for (const item of t.items ?? []) children.push(item.key, item.value);
    // Reversed, so that the first collection too deep in document order is found.
    for (let i = children.length - 1; i >= 0; i--) {
      if (children[i] != null) stack.push([children[i], depth]);
    }
  }
  return undefined;
}

/**
 * yaml reports a string whose quote is never closed at the end of the text ("Missing closing
 * "quote"), where nothing is wrong, followed by errors that only follow from it: report it where
 * the string opens instead, with the fix, and drop the errors after it.
 */
function unclosedStrings(
  problems: YamlSyntaxProblem[],
  tokens: readonly CST.Token[],
  position: (offset: number) => SourcePosition,
): YamlSyntaxProblem[] {
  const missing = problems.find((p) =>
    p.error.code === "MISSING_CHAR" && /^Missing closing ["']quote/.test(p.message)
  );
  if (missing === undefined) return problems;
  const quote = missing.message.charAt("Missing closing ".length);
  const end = missing.error.pos[0];
  let opened: number | undefined;
  for (const token of quotedScalars(tokens)) {
    const source = token.source.trimEnd();
    const closed = source.length > 1 && source.endsWith(quote);
    if (token.source.startsWith(quote) && !closed && token.offset < end) opened = token.offset;
  }
  if (opened === undefined) return problems;
  const at = opened;
  return problems.flatMap((p) => {
    if (p === missing) {
      return [{
        ...p,
        ...position(at),
        message:
          `a string opens here with ${quote} and is never closed, so YAML reads the rest of the text into it: add the closing ${quote}`,
      }];
    }
    // Anything from the string on only follows from it.
    return p.error.pos[0] >= at ? [] : [p];
  });
}

/** Every node among yaml's tokens, in document order (iteratively, as `tooDeep`). */
function* cstNodes(tokens: readonly CST.Token[]): Generator<CstNode> {
  const stack: unknown[] = [...tokens].reverse();
  while (stack.length > 0) {
    const token = stack.pop();
    if (typeof token !== "object" || token === null) continue;
    const t = token as CstNode;
    yield t;
    const children: unknown[] = t.value === undefined ? [] : [t.value];
    for (const item of t.items ?? []) children.push(item.key, item.value);
    for (let i = children.length - 1; i >= 0; i--) {
      if (children[i] != null) stack.push(children[i]);
    }
  }
}

/** What {@linkcode cstNodes} reads of a token. */
interface CstNode {
  type?: string;
  offset?: number;
  source?: string;
  value?: unknown;
  items?: { key?: unknown; value?: unknown }[];
  start?: { source?: string };
  end?: { source?: string }[];
}

/**
 * yaml reports a `[` or `{` that is never closed at the end of the text, or at the first line
 * indented no deeper than its key ("Flow sequence in block collection must be sufficiently
 * indented and end with a ]"): report it where it opens instead, with the fix; and a `]` or `}`
 * that closes nothing ("Unexpected flow-seq-end token") with the fix.
 */
function unclosedCollections(
  problems: YamlSyntaxProblem[],
  tokens: readonly CST.Token[],
  position: (offset: number) => SourcePosition,
): YamlSyntaxProblem[] {
  const pattern =
    /^Flow (sequence|map) in block collection must be sufficiently indented and end with a [\]}]$/;
  const extra = /^Unexpected flow-(seq|map)-end token in YAML stream: "[\]}]"$/;
  problems = problems.map((p) => {
    const kind = extra.exec(p.message)?.[1];
    if (kind === undefined) return p;
    const [open, close] = kind === "seq" ? ["[", "]"] : ["{", "}"];
    return {
      ...p,
      message: `this ${close} closes no ${open}: remove it, or add the ${open} it closes`,
    };
  });
  if (!problems.some((p) => pattern.test(p.message))) return problems;
  const unclosed = [...cstNodes(tokens)].filter((t) => {
    if (t.type !== "flow-collection") return false;
    const close = t.start?.source === "[" ? "]" : "}";
    return !(t.end ?? []).some((end) => end.source === close);
  });
  const reported = new Set<number>();
  return problems.flatMap((p) => {
    const kind = pattern.exec(p.message)?.[1];
    if (kind === undefined) return [p];
    const open = kind === "sequence" ? "[" : "{";
    const at = unclosed.findLast((t) =>
      t.start?.source === open && (t.offset ?? 0) < p.error.pos[0]
    )?.offset;
    if (at === undefined) return [p];
    if (reported.has(at)) return [];
    reported.add(at);
    const [what, close] = open === "[" ? ["list", "]"] : ["mapping", "}"];
    return [{
      ...p,
      ...position(at),
      message:
        `this ${open} opens a ${what} that no ${close} closes: add the ${close} (a ${what} ` +
        `that goes on over more lines needs them indented deeper than the key it belongs to)`,
    }];
  });
}

/**
 * A quote inside a quoted string (`"say "hi""`, `'it's'`, `"${{ inputs.s == "a" }}"`) ends it
 * early, and yaml reports the text right after it as "Unexpected scalar at node end": say so,
 * with how to write the quote, and drop the errors after it on that line (they follow from it).
 */
function quotesInside(
  problems: YamlSyntaxProblem[],
  tokens: readonly CST.Token[],
): YamlSyntaxProblem[] {
  const unexpected = problems.filter((p) => p.message === "Unexpected scalar at node end");
  if (unexpected.length === 0) return problems;
  const endings = new Map<number, string>();
  for (const { offset, source } of quotedScalars(tokens)) {
    endings.set(offset + source.length, source.charAt(0));
  }
  const lines = new Set<number>();
  return problems.flatMap((p) => {
    if (lines.has(p.line)) return [];
    const quote = unexpected.includes(p) ? endings.get(p.error.pos[0]) : undefined;
    if (quote === undefined) return [p];
    lines.add(p.line);
    const fix = quote === '"'
      ? "write it as \\\" (or quote the whole value with ' instead)"
      : "write it twice, as '' (or quote the whole value with \" instead)";
    return [{
      ...p,
      message: `the ${quote} before this ends the quoted string, so YAML cannot read what ` +
        `follows: to put a ${quote} inside the string, ${fix}`,
    }];
  });
}

/** The quoted scalars among yaml's tokens, in document order. */
function* quotedScalars(
  tokens: readonly CST.Token[],
): Generator<{ offset: number; source: string }> {
  for (const t of cstNodes(tokens)) {
    if (t.type === "double-quoted-scalar" || t.type === "single-quoted-scalar") {
      yield { offset: t.offset ?? 0, source: t.source ?? "" };
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

/**
 * yaml's errors for the commonest slips, worded with their fix, without the
 * errors it reports after them on the same line (they only follow from them):
 * a tab that indents a line; a key or list item indented unlike the ones
 * beside it (at the key or item, and without the errors yaml then reports on
 * the well-indented lines after it); a value holding `": "` (read as one more
 * key); a line indented more than the one above it.
 */
function explained(problems: YamlSyntaxProblem[], text: string): YamlSyntaxProblem[] {
  const lines = text.split(/\r?\n/);
  const slips = new Set(
    problems.filter((p) => indentationSlip(p) && atIndentation(p, lines[p.line - 1] ?? ""))
      .map((p) => p.line),
  );
  const alignment = blockAlignment(lines, slips);
  let misaligned = false;
  const explainedLines = new Set<number>();
  const out: YamlSyntaxProblem[] = [];
  for (const p of problems) {
    if (explainedLines.has(p.line)) continue;
    const line = lines[p.line - 1] ?? "";
    const aligned = slips.has(p.line) ? alignment.get(p.line) : undefined;
    if (p.error.code === "TAB_AS_INDENT") {
      explainedLines.add(p.line);
      out.push({
        ...p,
        message:
          "a tab indents this line, and YAML indents with spaces only: replace the tab with spaces",
      });
    } else if (aligned !== undefined && aligned !== true) {
      explainedLines.add(p.line);
      misaligned = true;
      out.push({ ...p, message: aligned.message, column: indent(line) + 1 });
    } else if (aligned === true && misaligned) {
      // A well-indented line yaml stumbles on only after a badly indented one above it.
      explainedLines.add(p.line);
    } else if (p.error.code === "BLOCK_AS_IMPLICIT_KEY") {
      explainedLines.add(p.line);
      const value = line.slice(p.column - 1).trim();
      const key = line.slice(0, p.column - 1).trim().replace(/^-\s*/, "");
      const next = lines.findIndex((l, i) => i >= p.line && l.trim() !== "");
      if (key.endsWith(":") && /:(\s|$)/.test(value) && !/^["'[{]/.test(value)) {
        out.push({
          ...p,
          message:
            `this value holds ": ", which YAML reads as one more key: quote it, like ${key} ${
              JSON.stringify(value)
            }`,
        });
      } else if (next >= 0 && indent(lines[next]) > indent(line)) {
        explainedLines.add(next + 1);
        misaligned = true;
        out.push({
          ...p,
          message: "this line is indented more than the line above it, so YAML reads it as " +
            "part of that line's value: indent it like the keys beside it",
          line: next + 1,
          column: indent(lines[next]) + 1,
        });
      } else out.push(p);
    } else {
      const colon = p.error.code === "MULTILINE_IMPLICIT_KEY" ||
          /^Implicit map keys need to be followed by map values/.test(p.message)
        ? missingColon(line.slice(p.column - 1))
        : undefined;
      if (colon !== undefined) explainedLines.add(p.line);
      out.push(colon === undefined ? p : { ...p, message: colon });
    }
  }
  return out;
}

/**
 * What is wrong with a line yaml could not read as `key: value` (`type log`, `type:log`,
 * `nodes`), and its fix; `undefined` for another kind of line.
 */
function missingColon(text: string): string | undefined {
  const rest = text.trimEnd().replace(/^-\s+/, "");
  const glued = /^([\w.-]+):(\S.*)$/.exec(rest);
  if (glued !== null && !glued[2].startsWith(":")) {
    return `\`${rest}\` has no space after its colon, so YAML reads it as one word: ` +
      `write \`${glued[1]}: ${glued[2]}\``;
  }
  const spaced = /^([\w.-]+)\s+([^:#]*)$/.exec(rest);
  if (spaced !== null) {
    return `\`${rest}\` has no colon after its key: write \`${spaced[1]}: ${spaced[2]}\``;
  }
  if (/^[\w.-]+$/.test(rest)) return `\`${rest}\` has no colon after it: write \`${rest}:\``;
  return undefined;
}

/** Whether yaml's error is one it reports for a line indented unlike the lines beside it. */
function indentationSlip(p: YamlSyntaxProblem): boolean {
  const code = p.error.code;
  return code === "BAD_INDENT" || code === "BLOCK_AS_IMPLICIT_KEY" ||
    code === "MULTILINE_IMPLICIT_KEY" ||
    (code === "MISSING_CHAR" &&
      /^(Sequence item without - indicator|Implicit map keys need to be followed)/.test(
        p.message,
      ));
}

/** Whether `p` is at the start of `line`, before or at what it holds (not after a key on it). */
function atIndentation(p: SourcePosition, line: string): boolean {
  return line.trim() !== "" && p.column <= indent(line) + 1;
}

/** A column where the keys of a block mapping, or the `-` of a block list's items, start. */
interface Level {
  column: number;
  item: boolean;
}

/** How a line that yaml stumbles on at its start is indented (see {@linkcode blockAlignment}). */
type Alignment = true | { message: string };

// A key and its `:` at the start of a text (each character matched one way: linear).
const KEY =
  /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#,[\]{}&*!|>'"%@`](?:[^\s:]|:(?=\S)|\s+(?=[^\s#:]|:\S))*)[ \t]*:(?=[ \t]|$)/;
const DASH = /-( +|$)/y;

/**
 * For each line of `wanted` (1-based), whether it is a key or list item
 * indented like the keys or items beside it (`true`: lined up with an open
 * block, or deeper than all of them where the line above leaves its value
 * to the lines below, as a nested block starts) or, when it is not, the
 * message for it. The lines before it are read as blocks of
 * keys and items by their indentation (block scalars and flow collections
 * written over several lines skipped); a badly indented line counts as
 * written at the nearest column of its kind, so the lines after it are
 * measured against the lines before it. Lines it cannot tell are left out.
 */
function blockAlignment(
  lines: readonly string[],
  wanted: ReadonlySet<number>,
): Map<number, Alignment> {
  const found = new Map<number, Alignment>();
  if (wanted.size === 0) return found;
  const last = Math.max(...wanted);
  let stack: Level[] = [];
  let scalarAbove: number | undefined; // a block scalar's lines are deeper than this column
  let brackets = 0; // unclosed [ and { of a flow collection written over several lines
  let opens = true; // whether the line above leaves a value to be written below it (`key:`)
  // The last badly indented line, while the lines after it stay at its column or deeper than
  // where it belongs: the next ones at its column are the same slip, reported once.
  let slip: { at: number; want: number } | undefined;
  for (let i = 0; i < last && i < lines.length; i++) {
    const line = lines[i];
    const rest = line.trimStart();
    const at = line.length - rest.length;
    if (rest === "" || rest.startsWith("#")) continue;
    if (scalarAbove !== undefined && at > scalarAbove) continue;
    scalarAbove = undefined;
    if (brackets > 0) {
      brackets = bracketDepth(rest, brackets);
      continue;
    }
    if (/^(---|\.\.\.)(\s|$)/.test(rest) && at === 0) {
      stack = [];
      opens = true;
      continue;
    }
    // The `-` of each list item on the line (`- - a`), then what they hold.
    const items: number[] = [];
    let content = at;
    for (DASH.lastIndex = content; DASH.exec(line) !== null; content = DASH.lastIndex) {
      items.push(content);
    }
    const key = KEY.exec(line.slice(content));
    const kind = items.length > 0 ? "item" : key !== null ? "key" : undefined;
    let shift = 0;
    if (slip !== undefined && at !== slip.at && at <= slip.want) slip = undefined;
    if (wanted.has(i + 1) && kind !== undefined && line[content] !== "\t") {
      const verdict = aligned(stack, at, kind === "item", opens);
      if (verdict === true) found.set(i + 1, true);
      else if (verdict !== undefined) {
        const text = kind === "item" ? excerpt(line.slice(at)) : `${key![1]}:`;
        const same = slip?.at === at && slip.want === verdict.column;
        found.set(
          i + 1,
          same ? true : {
            message:
              `\`${text}\` is ${indented(at)}; the ${
                verdict.item ? "list items" : "keys"
              } beside it ${
                verdict.column === 0 ? "are not indented" : `use ${verdict.column}`
              }: ` +
              "indent it like them",
          },
        );
        slip = { at, want: verdict.column };
        shift = verdict.column - at;
      }
    }
    while (stack.length > 0 && stack[stack.length - 1].column > at + shift) stack.pop();
    if (kind === "key") {
      const top = stack[stack.length - 1];
      if (top?.column === at + shift && top.item) stack.pop(); // `key:` ends its list of `- `
      const under = stack[stack.length - 1];
      if (under?.column !== at + shift || under.item) {
        stack.push({ column: at + shift, item: false });
      }
    }
    for (const [n, column] of items.entries()) {
      const top = stack[stack.length - 1];
      if (n > 0 || top?.column !== column + shift || !top.item) {
        stack.push({ column: column + shift, item: true });
      }
    }
    if (items.length > 0 && key !== null) stack.push({ column: content + shift, item: false });
    const value = line.slice(content + (key?.[0].length ?? 0)).replace(/(^|\s)#.*$/, "").trim();
    opens = kind !== undefined && value === "";
    if (/^[|>][-+0-9]*(\s+#.*)?$/.test(value)) scalarAbove = at;
    else if (/^[[{]/.test(value)) brackets = bracketDepth(value, 0);
  }
  return found;
}

/**
 * Whether a key (or list item, `item`) at `column` lines up with the open
 * blocks on `stack` (or starts a deeper one where the line above `opens`
 * one), or else the nearest level of its kind (ties: the deeper), if any.
 */
function aligned(
  stack: readonly Level[],
  column: number,
  item: boolean,
  opens: boolean,
): true | Level | undefined {
  const top = stack[stack.length - 1];
  if (top === undefined || (column > top.column && opens)) return true;
  if (stack.some((l) => l.column === column && l.item === item)) return true;
  // A list's `- ` may start at its key's column (`nodes:\n- id: a`).
  if (item && opens && top.column === column) return true;
  let best: Level | undefined;
  for (const level of stack.filter((l) => l.item === item)) {
    const d = Math.abs(level.column - column);
    if (best === undefined || d <= Math.abs(best.column - column)) best = level;
  }
  return best;
}

/** `depth` plus the `[` and `{` that `text` opens, less those it closes, outside strings and comments. */
function bracketDepth(text: string, depth: number): number {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== undefined) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]))) break;
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") depth = Math.max(0, depth - 1);
  }
  return depth;
}

function excerpt(text: string): string {
  const trimmed = text.trim();
  return trimmed.length <= 30 ? trimmed : `${trimmed.slice(0, 29)}…`;
}

function indented(n: number): string {
  return n === 0 ? "not indented" : `indented ${n} space${n === 1 ? "" : "s"}`;
}

function indent(line: string): number {
  return line.length - line.trimStart().length;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range?.[0];
}

function emptyRange(node: { range?: [number, number, number] | null }): boolean {
  return node.range != null && node.range[0] === node.range[1];
}
