/**
 * The parser of the template language: a recursive-descent parser from the
 * tokens of one segment to an {@linkcode Ast}, recording what the expression
 * references in {@linkcode TemplateRefs} and rejecting, at compile time, every
 * name that is not a root, a literal or a built-in function.
 *
 * @module
 */
import { didYouMean } from "../../_suggest.ts";
import type { Segment } from "./_segment.ts";
import type { Ast, BinaryOp, Root } from "./ast.ts";
import { FUNCTIONS } from "./functions.ts";
import type { TemplateError } from "./error.ts";
import type { Token } from "./lex.ts";
import { arrayIndexOf } from "./values.ts";

/**
 * What a template references statically, for the flow validator.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileTemplate, type TemplateRefs } from "@flowstate/core/flow";
 *
 * const refs: TemplateRefs = compileTemplate("${{ nodes.fetch.output }} for ${{ inputs.user }} on ${{ env.REGION }}").refs;
 * assert.deepEqual([...refs.nodes], ["fetch"]);
 * assert.deepEqual([...refs.inputs], ["user"]);
 * assert.deepEqual([...refs.env], ["REGION"]);
 * ```
 */
export interface TemplateRefs {
  /** Node ids read through `nodes.<id>`. */
  nodes: Set<string>;
  /** Input names read through `inputs.<name>`. */
  inputs: Set<string>;
  /** Environment variable names read through `env.<NAME>`. */
  env: Set<string>;
  /** Fields of the run read through `run.<field>` (`id`, `flowId`, `failed`, `scheduledAt`, `schedule`). */
  run: Set<string>;
  /**
   * `item` and `index` (set only in a node with `forEach:`), each with the
   * offset of its first use in the text.
   */
  loop: Map<"item" | "index", number>;
  /** Secret names read through `secrets.<NAME>`. */
  secrets: Set<string>;
}

/** The names an expression may start from. */
const ROOTS: readonly Root[] = ["inputs", "nodes", "env", "secrets", "run", "item", "index"];
const FORBIDDEN_NAMES = new Set(["__proto__", "constructor", "prototype"]);
const NODE_FIELDS = ["output", "status", "error"];
const RUN_FIELDS = ["id", "flowId", "failed", "scheduledAt", "schedule"];
/** Maximum nesting of an expression (and of the parser's recursion). */
const MAX_DEPTH = 200;

const PRECEDENCE: ReadonlyMap<string, number> = new Map([
  ["||", 1],
  ["&&", 2],
  ["==", 3],
  ["!=", 3],
  ["<", 4],
  ["<=", 4],
  [">", 4],
  [">=", 4],
  ["+", 5],
  ["-", 5],
  ["*", 6],
  ["/", 6],
  ["%", 6],
]);

type Distribute<T> = T extends unknown ? Omit<T, "depth"> : never;
type AstInput = Distribute<Ast>;

function describe(token: Token, text: string): string {
  if (token.type === "end") return `"}}"`;
  const raw = text.slice(token.start, token.end);
  return JSON.stringify(raw.length > 30 ? raw.slice(0, 27) + "…" : raw);
}

/**
 * A recursive-descent parser of one segment's tokens. It records what the
 * expression references in `refs` and throws a {@linkcode TemplateError} for
 * a syntax error, an unknown name or function, or a forbidden property name.
 */
export class Parser {
  #pos = 0;
  #nesting = 0;

  constructor(
    readonly tokens: Token[],
    readonly segment: Segment,
    readonly refs: TemplateRefs,
  ) {}

  /** The expression of the whole segment, up to its `}}`. */
  parseTemplate(): Ast {
    const first = this.#peek();
    if (first.type === "end") {
      throw this.#error(
        "the expression is empty",
        this.segment.start,
        this.segment.end - this.segment.start,
      );
    }
    const ast = this.#parseExpression();
    const next = this.#peek();
    if (next.type !== "end") {
      throw this.#error(
        `unexpected ${describe(next, this.segment.text)}: expected an operator or "}}"`,
        next.start,
        next.end - next.start,
      );
    }
    return ast;
  }

  #peek(): Token {
    return this.tokens[this.#pos];
  }

  #next(): Token {
    const token = this.tokens[this.#pos];
    if (token.type !== "end") this.#pos++;
    return token;
  }

  #isPunct(value: string): boolean {
    const token = this.tokens[this.#pos];
    return token.type === "punct" && token.value === value;
  }

  #expectPunct(value: string, what: string): Token {
    const token = this.#peek();
    if (token.type !== "punct" || token.value !== value) {
      throw this.#error(
        `expected "${value}" ${what}, found ${describe(token, this.segment.text)}`,
        token.start,
        token.end - token.start,
      );
    }
    return this.#next();
  }

  #error(message: string, offset: number, length: number): TemplateError {
    return this.segment.parseError(message, offset, length);
  }

  #node(input: AstInput, ...children: Ast[]): Ast {
    let depth = 0;
    for (const child of children) if (child.depth > depth) depth = child.depth;
    depth++;
    if (depth > MAX_DEPTH) {
      throw this.#error(
        `the expression is nested too deeply (more than ${MAX_DEPTH} levels)`,
        input.start,
        input.end - input.start,
      );
    }
    return { ...input, depth } as Ast;
  }

  #enter(token: Token): void {
    if (++this.#nesting > MAX_DEPTH) {
      throw this.#error(
        `the expression is nested too deeply (more than ${MAX_DEPTH} levels)`,
        token.start,
        token.end - token.start,
      );
    }
  }

  #parseExpression(): Ast {
    this.#enter(this.#peek());
    const test = this.#parseBinary(1);
    let result = test;
    if (this.#isPunct("?")) {
      this.#next();
      const then = this.#parseExpression();
      this.#expectPunct(":", 'after the "then" part of "? :"');
      const otherwise = this.#parseExpression();
      result = this.#node(
        { kind: "conditional", test, then, otherwise, start: test.start, end: otherwise.end },
        test,
        then,
        otherwise,
      );
    }
    this.#nesting--;
    return result;
  }

  #parseBinary(minPrecedence: number): Ast {
    let left = this.#parseUnary();
    let previous = 0;
    for (;;) {
      const token = this.#peek();
      if (token.type !== "punct") break;
      const precedence = PRECEDENCE.get(token.value);
      if (precedence === undefined || precedence < minPrecedence) break;
      if (precedence === previous && (precedence === 3 || precedence === 4)) {
        throw this.#error(
          `chained ${token.value} is ambiguous: group with parentheses or join with &&`,
          token.start,
          token.end - token.start,
        );
      }
      this.#next();
      const right = this.#parseBinary(precedence + 1);
      left = this.#node(
        {
          kind: "binary",
          op: token.value as BinaryOp,
          left,
          right,
          opStart: token.start,
          start: left.start,
          end: right.end,
        },
        left,
        right,
      );
      previous = precedence;
    }
    return left;
  }

  #parseUnary(): Ast {
    const token = this.#peek();
    if (token.type === "punct" && (token.value === "!" || token.value === "-")) {
      this.#enter(token);
      this.#next();
      const operand = this.#parseUnary();
      this.#nesting--;
      return this.#node({
        kind: "unary",
        op: token.value,
        operand,
        start: token.start,
        end: operand.end,
      }, operand);
    }
    return this.#parsePostfix();
  }

  #parsePostfix(): Ast {
    let node = this.#parsePrimary();
    const root = node.kind === "root" ? node.name : undefined;
    let step = 0;
    for (;;) {
      const token = this.#peek();
      let key: string | undefined;
      let keyToken: Token;
      let dynamic: Ast | undefined;
      if (token.type === "punct" && token.value === ".") {
        this.#next();
        keyToken = this.#next(); // the lexer guarantees a member name after "."
        key = keyToken.value;
      } else if (token.type === "punct" && token.value === "[") {
        this.#next();
        keyToken = this.#peek();
        const inner = this.#parseExpression();
        const close = this.#expectPunct("]", "to close [");
        if (inner.kind === "literal" && typeof inner.value === "string") {
          key = inner.value;
        } else if (
          inner.kind === "literal" && typeof inner.value === "number" &&
          Number.isSafeInteger(inner.value) && inner.value >= 0
        ) {
          key = String(inner.value);
        } else {
          dynamic = inner;
        }
        if (dynamic !== undefined) {
          node = this.#node(
            { kind: "index", object: node, key: dynamic, start: node.start, end: close.end },
            node,
            dynamic,
          );
        }
      } else if (token.type === "punct" && token.value === "(") {
        throw this.#error(
          `only the built-in functions can be called (${[...FUNCTIONS.keys()].join(", ")})`,
          token.start,
          1,
        );
      } else {
        break;
      }
      if (key !== undefined) {
        if (FORBIDDEN_NAMES.has(key)) {
          throw this.#error(
            `"${key}" cannot be used as a property name`,
            keyToken.start,
            keyToken.end - keyToken.start,
          );
        }
        node = this.#node({
          kind: "member",
          object: node,
          key,
          index: arrayIndexOf(key),
          start: node.start,
          end: keyToken.end,
        }, node);
      }
      if (root !== undefined) this.#checkRootStep(root, step, key, keyToken);
      step++;
    }
    if (root === "nodes" && step === 0) {
      throw this.#error(
        "nodes must be followed by a node id, as in nodes.<id>.output",
        node.start,
        node.end - node.start,
      );
    }
    return node;
  }

  /** Record references and check the fixed parts of `nodes.<id>.output` and `run.id`. */
  #checkRootStep(root: Root, step: number, key: string | undefined, token: Token): void {
    if (root === "item" || root === "index") return; // any value: nothing fixed to check
    const at = (message: string) => this.#error(message, token.start, token.end - token.start);
    if (step === 0) {
      if (key === undefined) {
        if (root === "nodes") {
          throw at("a node must be named literally, as in nodes.<id> or nodes['<id>']");
        }
        if (root === "secrets") {
          throw at("a secret must be named literally, as in secrets.NAME or secrets['NAME']");
        }
        return;
      }
      if (root === "run") {
        if (!RUN_FIELDS.includes(key)) {
          throw at(
            `run has no "${key}"; it has ${RUN_FIELDS.slice(0, -1).join(", ")} and ${
              RUN_FIELDS.at(-1)
            }${didYouMean(key, RUN_FIELDS)}`,
          );
        }
        this.refs.run.add(key);
        return;
      }
      this.refs[root].add(key);
    } else if (step === 1 && root === "nodes" && key !== undefined) {
      if (!NODE_FIELDS.includes(key)) {
        throw at(
          `a node has no "${key}"; it has ${NODE_FIELDS.slice(0, -1).join(", ")} and ${
            NODE_FIELDS.at(-1)
          }${didYouMean(key, NODE_FIELDS)}`,
        );
      }
    }
  }

  #parsePrimary(): Ast {
    const token = this.#next();
    const text = this.segment.text;
    switch (token.type) {
      case "number":
        return this.#node({
          kind: "literal",
          value: token.number,
          start: token.start,
          end: token.end,
        });
      case "string":
        return this.#node({
          kind: "literal",
          value: token.value,
          start: token.start,
          end: token.end,
        });
      case "name":
        return this.#parseName(token);
      case "punct":
        if (token.value === "(") {
          const inner = this.#parseExpression();
          this.#expectPunct(")", "to close (");
          return inner;
        }
        if (token.value === "[") return this.#parseArray(token);
        if (token.value === "{") return this.#parseObject(token);
        break;
      case "end": {
        const before = this.tokens[this.#pos - 1];
        throw this.#error(
          before === undefined
            ? "expected a value"
            : `expected a value after ${describe(before, text)}, found "}}"`,
          token.start,
          2,
        );
      }
    }
    throw this.#error(
      `expected a value, found ${describe(token, text)}`,
      token.start,
      token.end - token.start,
    );
  }

  #parseName(token: Token): Ast {
    const name = token.value;
    const at = (message: string) => this.#error(message, token.start, token.end - token.start);
    if (FORBIDDEN_NAMES.has(name)) throw at(`"${name}" is not allowed as a name`);
    if (name === "true" || name === "false" || name === "null") {
      return this.#node({
        kind: "literal",
        value: name === "null" ? null : name === "true",
        start: token.start,
        end: token.end,
      });
    }
    if (this.#isPunct("(")) return this.#parseCall(token);
    if ((ROOTS as readonly string[]).includes(name)) {
      if (name === "item" || name === "index") {
        if (!this.refs.loop.has(name)) this.refs.loop.set(name, token.start);
      }
      return this.#node({ kind: "root", name: name as Root, start: token.start, end: token.end });
    }
    if (FUNCTIONS.has(name)) {
      throw at(`${name} is a function: call it as ${FUNCTIONS.get(name)!.usage}`);
    }
    throw at(
      `unknown name "${name}": an expression starts from inputs, nodes, env, secrets, run, item or index, ` +
        `a literal, or a function call${didYouMean(name, [...ROOTS, "true", "false", "null"])}`,
    );
  }

  #parseCall(nameToken: Token): Ast {
    const name = nameToken.value;
    const spec = FUNCTIONS.get(name);
    if (spec === undefined) {
      throw this.#error(
        `unknown function "${name}"${didYouMean(name, FUNCTIONS.keys())}; the functions are ${
          [...FUNCTIONS.keys()].join(", ")
        }`,
        nameToken.start,
        nameToken.end - nameToken.start,
      );
    }
    this.#next(); // (
    const args: Ast[] = [];
    while (!this.#isPunct(")")) {
      args.push(this.#parseExpression());
      if (!this.#isPunct(",")) break;
      this.#next();
    }
    const close = this.#expectPunct(")", `to close ${name}(`);
    if (args.length < spec.min || args.length > spec.max) {
      const want = spec.min === spec.max ? `${spec.min}` : `${spec.min} to ${spec.max}`;
      throw this.#error(
        `${name}() takes ${want} argument${
          spec.max === 1 ? "" : "s"
        }, got ${args.length}: ${spec.usage}`,
        nameToken.start,
        close.end - nameToken.start,
      );
    }
    return this.#node({
      kind: "call",
      name,
      args,
      nameEnd: nameToken.end,
      start: nameToken.start,
      end: close.end,
    }, ...args);
  }

  #parseArray(open: Token): Ast {
    const items: Ast[] = [];
    while (!this.#isPunct("]")) {
      items.push(this.#parseExpression());
      if (!this.#isPunct(",")) break;
      this.#next();
    }
    const close = this.#expectPunct("]", "to close the array");
    return this.#node({ kind: "array", items, start: open.start, end: close.end }, ...items);
  }

  #parseObject(open: Token): Ast {
    const keys: string[] = [];
    const values: Ast[] = [];
    while (!this.#isPunct("}")) {
      const keyToken = this.#next();
      if (keyToken.type !== "name" && keyToken.type !== "string") {
        throw this.#error(
          `expected a key (a name or a quoted string), found ${
            describe(keyToken, this.segment.text)
          }`,
          keyToken.start,
          keyToken.end - keyToken.start,
        );
      }
      const key = keyToken.value;
      const at = (message: string) =>
        this.#error(message, keyToken.start, keyToken.end - keyToken.start);
      if (FORBIDDEN_NAMES.has(key)) throw at(`"${key}" cannot be used as a key`);
      if (keys.includes(key)) throw at(`duplicate key "${key}"`);
      this.#expectPunct(":", `after the key "${key}"`);
      keys.push(key);
      values.push(this.#parseExpression());
      if (!this.#isPunct(",")) break;
      this.#next();
    }
    const close = this.#expectPunct("}", "to close the object");
    return this.#node(
      { kind: "object", keys, values, start: open.start, end: close.end },
      ...values,
    );
  }
}
