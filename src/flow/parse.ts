/**
 * Read and validate flow files. Every problem in a flow is collected and
 * reported at once, each with `file:line:column` pointing at the offending key
 * or value, e.g.
 * `flow.yaml:12:7: nodes[1].needs[0]: unknown node "bmp" (did you mean "bump"?)`.
 *
 * @module
 */
import { builtinNodes } from "./nodes.ts";
import { isMap } from "yaml";
import type { JsonValue } from "../store/types.ts";
import { didYouMean } from "../_suggest.ts";
import {
  describeValue,
  EXPECTED,
  flowZodSchema,
  INPUT_TYPES,
  inputTypeProblem,
  jsonProblem,
  knownFields,
} from "./schema.ts";
import { compileValue, TemplateError } from "./template/mod.ts";
import type { FlowDefinition, InputType } from "./types.ts";
import { namesModule } from "../loader.ts";
import { FlowValidationError, formatPath, type Problem, type ProblemPath } from "../errors.ts";
import { YamlSource } from "../yaml_source.ts";

/** A path into a flow definition: `["nodes", 1, "needs", 0]`. */
export type FlowPath = ProblemPath;

/** One thing wrong with a flow (see {@linkcode Problem}). */
export type FlowProblem = Problem;

export { FlowValidationError, formatPath };

/** A validated flow, with a way back to positions in its YAML source. */
export interface ParsedFlow {
  /** The validated definition (a fresh copy; the caller's object is not kept). */
  definition: FlowDefinition;
  /** The file it came from, if any. */
  file?: string;
  /** The YAML text, when it was parsed from YAML. */
  source?: string;
  /**
   * The position of the value at `path` in the YAML source (for a path that
   * does not exist, of its nearest existing ancestor), or `undefined` when
   * the flow did not come from YAML.
   */
  locate(path: (string | number)[]): { line: number; column: number } | undefined;
}

/** Options for {@linkcode parseFlow} and {@linkcode loadFlowFile}. */
export interface ParseFlowOptions {
  /** The file name used in messages (and kept as {@linkcode ParsedFlow.file}). */
  file?: string;
  /**
   * Known node type names. When given, a node `type` that is neither one of
   * them nor a module (starting with `./`, `../` or `/`, or containing `:`)
   * is a problem.
   */
  nodeTypes?: ReadonlySet<string>;
}

/** Options for {@linkcode validateFlow}. */
export interface ValidateFlowOptions {
  /** Known node type names; see {@linkcode ParseFlowOptions.nodeTypes}. */
  nodeTypes?: ReadonlySet<string>;
}

/**
 * Parse a flow from YAML text and validate it. Every problem is collected:
 * YAML syntax errors and duplicate keys, unknown fields (with a did-you-mean
 * suggestion), wrong types, id patterns, duplicate node ids, `needs` naming a
 * missing node or itself, `needs` cycles, unknown node types (when
 * `options.nodeTypes` is given), bad durations and ranges, template syntax,
 * template references (`nodes.X` must be an ancestor through `needs`,
 * `inputs.X` declared, `env.X` listed under `env:`), and input defaults that
 * do not match their type.
 *
 * @param text The YAML source.
 * @param options The file name for messages, and the known node types.
 * @returns The definition with a way to locate paths in the source.
 * @throws {FlowValidationError} listing every problem, each as
 *   `file:line:column: path: message`.
 *
 * @example
 * ```ts
 * import { parseFlow } from "@flowstate/core/flow";
 * const yaml = "id: hello\nnodes:\n  - id: say\n    type: log\n    with: { message: hi }\n";
 * const flow = parseFlow(yaml, { file: "hello.flow.yaml" });
 * if (flow.definition.nodes[0].with?.message !== "hi") throw new Error("expected the message");
 * const at = flow.locate(["nodes", 0, "type"]);
 * if (at?.line !== 4 || at.column !== 11) throw new Error(`type is at ${JSON.stringify(at)}`);
 * ```
 */
export function parseFlow(text: string, options: ParseFlowOptions = {}): ParsedFlow {
  if (typeof text !== "string") {
    throw new TypeError(`Cannot parse flow: expected YAML text, got ${describeValue(text)}`);
  }
  const file = options.file;
  let source: YamlSource;
  try {
    source = new YamlSource(text, {
      ...(file === undefined ? {} : { file }),
      uniqueKeys: false,
      logLevel: "error",
    });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new Deno.errors.NotCapable(
        `Cannot parse flow${
          file === undefined ? "" : ` ${file}`
        }: the yaml parser reads the LOG_TOKENS and LOG_STREAM environment variables; allow them with --allow-env=LOG_TOKENS,LOG_STREAM`,
        { cause: error },
      );
    }
    throw error;
  }
  const syntax: FlowProblem[] = [...source.syntaxErrors, ...source.syntaxWarnings].map((
    { message, line, column },
  ) => ({ message, path: [], line, column }));
  if (source.syntaxErrors.length > 0) throw new FlowValidationError(sortProblems(syntax), file);

  const checker = new Checker(source);
  for (const problem of syntax) checker.problems.push(problem);
  for (const dup of source.duplicateKeys()) {
    checker.problems.push({
      message:
        `duplicate key "${dup.key}" (first at line ${dup.first.line}, column ${dup.first.column})`,
      path: dup.path,
      ...dup.at,
    });
  }
  let data: unknown;
  try {
    data = source.doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    checker.add([], `Cannot read the YAML: ${(error as Error).message}`);
  }
  if (source.doc.contents === null || data === null || data === undefined) {
    checker.add([], "the flow is empty; expected a mapping with at least id and nodes");
  } else if (!isMap(source.doc.contents)) {
    checker.add(
      [],
      `expected a mapping (id, nodes, …) at the top level, got ${describeValue(data)}`,
    );
  } else {
    checker.check(data, options.nodeTypes);
  }
  if (checker.problems.length > 0) {
    throw new FlowValidationError(sortProblems(checker.problems), file);
  }
  const definition = flowZodSchema.parse(data);
  return {
    definition,
    ...(file === undefined ? {} : { file }),
    source: text,
    locate: (path) => source.locate(path),
  };
}

/**
 * Validate a flow given as an object (for library use): the same checks as
 * {@linkcode parseFlow}, without source positions.
 *
 * @param definition The flow, e.g. `{ id: "hello", nodes: [{ id: "say", type: "log", with: { message: "hi" } }] }`.
 * @param options The known node types.
 * @returns The validated definition (a deep copy); `locate` always returns `undefined`.
 * @throws {FlowValidationError} listing every problem as `path: message`.
 *
 * @example
 * ```ts
 * import { validateFlow } from "@flowstate/core/flow";
 * const flow = validateFlow({
 *   id: "hello",
 *   nodes: [{ id: "say", type: "log", with: { message: "hi" } }],
 * });
 * if (flow.definition.nodes[0].id !== "say") throw new Error("expected the node");
 * if (flow.locate(["nodes", 0]) !== undefined) throw new Error("an object has no positions");
 * ```
 */
export function validateFlow(definition: unknown, options: ValidateFlowOptions = {}): ParsedFlow {
  const checker = new Checker(undefined);
  if (typeof definition !== "object" || definition === null || Array.isArray(definition)) {
    checker.add([], `expected a flow object (id, nodes, …), got ${describeValue(definition)}`);
  } else {
    checker.check(definition, options.nodeTypes);
  }
  if (checker.problems.length > 0) throw new FlowValidationError(checker.problems);
  const parsed = flowZodSchema.parse(definition);
  return {
    definition: JSON.parse(JSON.stringify(parsed)) as FlowDefinition,
    locate: () => undefined,
  };
}

/**
 * Read a flow file and {@linkcode parseFlow} it.
 *
 * @param path The file; messages name it as given.
 * @param options The known node types.
 * @throws {FlowValidationError} when the file is missing, is a directory, or
 *   holds an invalid flow. Other read errors (permissions) are thrown as they are.
 *
 * @example
 * ```ts
 * import { loadFlowFile } from "@flowstate/core/flow";
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/hello.flow.yaml`;
 * await Deno.writeTextFile(path, "id: hello\nnodes:\n  - id: say\n    type: log\n");
 * const flow = await loadFlowFile(path, { displayPath: "hello.flow.yaml" });
 * await Deno.remove(dir, { recursive: true });
 * if (flow.definition.id !== "hello") throw new Error("expected flow hello");
 * if (flow.file !== "hello.flow.yaml") throw new Error("expected the display path");
 * ```
 */
export async function loadFlowFile(
  path: string,
  options: Omit<ParseFlowOptions, "file"> & {
    /** The name used in messages and as `ParsedFlow.file` (default: `path`). */
    displayPath?: string;
  } = {},
): Promise<ParsedFlow> {
  const { displayPath, ...parseOptions } = options;
  // A file's node types are built-ins or module paths, so unknown names are
  // reported here, with every other problem of the file.
  parseOptions.nodeTypes ??= BUILTIN_NODE_NAMES;
  const shown = displayPath ?? path;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new FlowValidationError(
        [{ message: "Cannot load flow: no such file", path: [] }],
        shown,
        { cause: error },
      );
    }
    if (
      error instanceof Deno.errors.IsADirectory || (error as { code?: string }).code === "EISDIR"
    ) {
      throw new FlowValidationError(
        [{ message: "Cannot load flow: this is a directory, not a flow file", path: [] }],
        shown,
        { cause: error },
      );
    }
    throw error;
  }
  return parseFlow(text, { ...parseOptions, file: shown });
}

const BUILTIN_NODE_NAMES: ReadonlySet<string> = new Set(builtinNodes.keys());

function sortProblems(problems: FlowProblem[]): FlowProblem[] {
  const placed = problems.filter((p) => p.line !== undefined);
  const unplaced = problems.filter((p) => p.line === undefined);
  placed.sort((a, b) => a.line! - b.line! || (a.column ?? 0) - (b.column ?? 0));
  return [...placed, ...unplaced];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const segment of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

type Refs = { nodes: Set<string>; inputs: Set<string>; env: Set<string> };

/** Collects problems for one flow. */
class Checker {
  readonly problems: FlowProblem[] = [];
  readonly #source: YamlSource | undefined;

  constructor(source: YamlSource | undefined) {
    this.#source = source;
  }

  /** Add a problem at the value at `path` (or its key, or a character inside the string). */
  add(path: FlowPath, message: string, at: "value" | "key" | { offset: number } = "value"): void {
    const position = this.#source === undefined
      ? undefined
      : typeof at === "string"
      ? this.#source.locate(path, at)
      : this.#source.inString(path, at.offset);
    this.problems.push({ message, path, ...position });
  }

  check(data: unknown, nodeTypes: ReadonlySet<string> | undefined): void {
    this.#protoKeys(data, []);
    this.#schema(data);
    const flow = data as Record<string, unknown>;
    const nodes = this.#nodes(flow);
    if (nodeTypes !== undefined) this.#nodeTypes(nodes, nodeTypes);
    this.#inputs(flow);
    this.#templates(flow, nodes);
  }

  /** `__proto__` keys, which would turn into prototypes when the flow is copied. */
  #protoKeys(value: unknown, path: FlowPath): void {
    if (Array.isArray(value)) value.forEach((item, i) => this.#protoKeys(item, [...path, i]));
    else if (isRecord(value)) {
      for (const key of Object.keys(value)) {
        if (key === "__proto__") {
          this.add([...path, key], 'the key "__proto__" is not allowed', "key");
        } else this.#protoKeys(value[key], [...path, key]);
      }
    }
  }

  /** Structure, types, patterns and ranges, from the zod schema. */
  #schema(data: unknown): void {
    const result = flowZodSchema.safeParse(data);
    if (result.success) return;
    for (const issue of result.error.issues) {
      const path = issue.path.map((s) => typeof s === "number" ? s : String(s));
      const value = valueAt(data, path);
      const got = `, got ${describeValue(value)}`;
      switch (issue.code) {
        case "unrecognized_keys":
          for (const key of issue.keys) {
            this.add([...path, key], `unknown field${didYouMean(key, knownFields(path))}`, "key");
          }
          break;
        case "invalid_type": {
          const parentPath = path.slice(0, -1);
          const parent = valueAt(data, parentPath);
          const last = path.at(-1);
          if (value === undefined && isRecord(parent) && last !== undefined && !(last in parent)) {
            this.add(parentPath, `missing required field "${last}"`);
          } else {
            this.add(path, `expected ${EXPECTED[issue.expected] ?? issue.expected}${got}`);
          }
          break;
        }
        case "invalid_value": {
          const allowed = issue.values.map((v) => JSON.stringify(v));
          const hint = typeof value === "string"
            ? didYouMean(value, issue.values.filter((v): v is string => typeof v === "string"))
            : "";
          this.add(path, `expected one of ${allowed.join(", ")}${got}${hint}`);
          break;
        }
        case "custom":
          this.add(path, issue.message);
          break;
        case "too_small":
        case "too_big":
          this.add(path, Array.isArray(value) ? issue.message : `${issue.message}${got}`);
          break;
        default:
          this.add(path, `${issue.message}${got}`);
      }
    }
  }

  /** Duplicate ids, `needs` references and cycles. Returns the nodes that have an id. */
  #nodes(flow: Record<string, unknown>): NodeInfo[] {
    const list = Array.isArray(flow.nodes) ? flow.nodes : [];
    const nodes: NodeInfo[] = [];
    const byId = new Map<string, NodeInfo>();
    list.forEach((raw, index) => {
      if (!isRecord(raw) || typeof raw.id !== "string") return;
      const node: NodeInfo = { index, id: raw.id, raw, needs: [] };
      nodes.push(node);
      const first = byId.get(raw.id);
      if (first === undefined) byId.set(raw.id, node);
      else {
        this.add(
          ["nodes", index, "id"],
          `duplicate node id "${raw.id}" (already used by nodes[${first.index}])`,
        );
      }
    });
    const ids = [...byId.keys()];
    for (const node of nodes) {
      if (!Array.isArray(node.raw.needs)) continue;
      node.raw.needs.forEach((name, j) => {
        if (typeof name !== "string") return;
        const path = ["nodes", node.index, "needs", j];
        if (name === node.id) this.add(path, `node "${node.id}" cannot need itself`);
        else if (!byId.has(name)) this.add(path, `unknown node "${name}"${didYouMean(name, ids)}`);
        else node.needs.push({ id: name, index: j });
      });
    }
    // Cycles, through the first node of each id.
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    // Iterative depth-first search, so a 10,000-node chain cannot overflow the stack.
    const visit = (root: NodeInfo) => {
      const frames: { node: NodeInfo; next: number }[] = [{ node: root, next: 0 }];
      state.set(root.id, "open");
      stack.push(root.id);
      while (frames.length > 0) {
        const frame = frames[frames.length - 1];
        const need = frame.node.needs[frame.next++];
        if (need === undefined) {
          frames.pop();
          stack.pop();
          state.set(frame.node.id, "done");
          continue;
        }
        const seen = state.get(need.id);
        if (seen === "open") {
          const cycle = [...stack.slice(stack.indexOf(need.id)), need.id];
          this.add(
            ["nodes", frame.node.index, "needs", need.index],
            `dependency cycle: ${cycle.join(" -> ")}`,
          );
        } else if (seen === undefined) {
          const next = byId.get(need.id)!;
          state.set(next.id, "open");
          stack.push(next.id);
          frames.push({ node: next, next: 0 });
        }
      }
    };
    for (const node of byId.values()) if (!state.has(node.id)) visit(node);
    // Ancestry through needs is answered on demand (see #reaches): materialising
    // every node's ancestor set is quadratic on long chains.
    this.#byId = byId;
    return nodes;
  }

  #byId = new Map<string, NodeInfo>();

  /** Whether `target` is an ancestor of `node` through needs (iterative DFS, direct needs first). */
  #reaches(node: NodeInfo, target: string): boolean {
    if (node.needs.some((n) => n.id === target)) return true;
    const seen = new Set<string>([node.id]);
    const stack = [node];
    while (stack.length > 0) {
      const current = stack.pop()!;
      for (const need of current.needs) {
        if (need.id === target) return true;
        if (seen.has(need.id)) continue;
        seen.add(need.id);
        const next = this.#byId.get(need.id);
        if (next) stack.push(next);
      }
    }
    return false;
  }

  #nodeTypes(nodes: NodeInfo[], known: ReadonlySet<string>): void {
    for (const node of nodes) {
      const type = node.raw.type;
      if (typeof type !== "string" || type === "" || namesModule(type) || known.has(type)) {
        continue;
      }
      const looksLikeFile = type.includes("/") || /\.[cm]?[jt]sx?$/.test(type);
      this.add(
        ["nodes", node.index, "type"],
        looksLikeFile
          ? `unknown node type "${type}": a module path must start with ./, ../ or / (write "./${type}")`
          : `unknown node type "${type}"${didYouMean(type, known)}; use a built-in (${
            [...known].join(", ")
          }) or a module path like ./nodes/thing.ts`,
      );
    }
  }

  /** Input defaults and enums against the declared type. */
  #inputs(flow: Record<string, unknown>): void {
    if (!isRecord(flow.inputs)) return;
    for (const [name, spec] of Object.entries(flow.inputs)) {
      if (!isRecord(spec)) continue;
      const type: InputType = INPUT_TYPES.includes(spec.type as InputType)
        ? spec.type as InputType
        : "any";
      const values = Array.isArray(spec.enum) ? spec.enum : undefined;
      values?.forEach((v, k) => {
        const problem = inputTypeProblem(type, v);
        if (problem !== undefined) this.add(["inputs", name, "enum", k], problem);
      });
      if (spec.default === undefined) continue;
      const problem = inputTypeProblem(type, spec.default);
      if (problem !== undefined) this.add(["inputs", name, "default"], problem);
      else if (values !== undefined && !values.some((v) => deepEqual(v, spec.default))) {
        this.add(
          ["inputs", name, "default"],
          `expected one of the enum values (${values.map(describeValue).join(", ")}), got ${
            describeValue(spec.default)
          }`,
        );
      }
    }
  }

  /** Compile every string in `with`, `if` and `outputs`, and check what they read. */
  #templates(flow: Record<string, unknown>, nodes: NodeInfo[]): void {
    const inputs = isRecord(flow.inputs) ? Object.keys(flow.inputs) : [];
    const env = Array.isArray(flow.env) ? flow.env.filter((e) => typeof e === "string") : [];
    const byId = this.#byId;
    for (const node of nodes) {
      const subject = `node "${node.id}"`;
      const checkRefs = (refs: Refs, path: FlowPath) => {
        for (const name of refs.nodes) {
          if (!byId.has(name)) {
            this.add(
              path,
              `${subject} reads nodes.${name}, which is not a node of this flow${
                didYouMean(name, byId.keys())
              }`,
            );
          } else if (name === node.id) {
            this.add(path, `${subject} reads its own output (nodes.${name})`);
          } else if (!this.#reaches(node, name)) {
            this.add(
              path,
              `${subject} reads nodes.${name} but does not list it (directly or indirectly) in needs; add needs: [${name}]`,
            );
          }
        }
        this.#checkCommonRefs(subject, refs, path, inputs, env);
      };
      if (typeof node.raw.if === "string") {
        const path = ["nodes", node.index, "if"];
        const refs = this.#compile(node.raw.if, path);
        if (refs !== undefined) checkRefs(refs, path);
      }
      if (isRecord(node.raw.with)) {
        for (const [text, path] of strings(node.raw.with, ["nodes", node.index, "with"])) {
          const refs = this.#compile(text, path);
          if (refs !== undefined) checkRefs(refs, path);
        }
      }
    }
    if (isRecord(flow.outputs)) {
      for (const [name, value] of Object.entries(flow.outputs)) {
        const subject = `output "${name}"`;
        for (const [text, path] of strings(value, ["outputs", name])) {
          const refs = this.#compile(text, path);
          if (refs === undefined) continue;
          for (const id of refs.nodes) {
            if (byId.has(id)) continue;
            this.add(
              path,
              `${subject} reads nodes.${id}, which is not a node of this flow${
                didYouMean(id, byId.keys())
              }`,
            );
          }
          this.#checkCommonRefs(subject, refs, path, inputs, env);
        }
      }
    }
  }

  #checkCommonRefs(
    subject: string,
    refs: Refs,
    path: FlowPath,
    inputs: string[],
    env: string[],
  ): void {
    for (const name of refs.inputs) {
      if (inputs.includes(name)) continue;
      this.add(
        path,
        `${subject} reads inputs.${name}, which is not declared under inputs${
          didYouMean(name, inputs)
        }`,
      );
    }
    for (const name of refs.env) {
      if (env.includes(name)) continue;
      const hint = didYouMean(name, env);
      this.add(
        path,
        `${subject} reads env.${name}, which is not listed under env${
          hint || (env.length === 0 ? `; add env: [${name}]` : `; add ${name} to env`)
        }`,
      );
    }
  }

  #compile(text: string, path: FlowPath): Refs | undefined {
    try {
      return compileValue(text).refs;
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      this.add(path, error.message, { offset: error.offset ?? 0 });
      return undefined;
    }
  }
}

interface NodeInfo {
  index: number;
  id: string;
  raw: Record<string, unknown>;
  needs: { id: string; index: number }[];
}

/** Every string inside `value`, with its path. */
function* strings(value: unknown, path: FlowPath): Generator<[string, FlowPath]> {
  if (typeof value === "string") yield [value, path];
  else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) yield* strings(value[i], [...path, i]);
  } else if (isRecord(value)) {
    for (const [key, item] of Object.entries(value)) yield* strings(item, [...path, key]);
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  if (isRecord(a) && isRecord(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length &&
      keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

/** Options for {@linkcode coerceInputs}. */
export interface CoerceInputsOptions {
  /**
   * The given values are text (as from `--input key=value` on a command
   * line): parse each per its declared type — numbers, `true`/`false`, JSON
   * for objects and arrays, and for `any` JSON when it parses, else the text.
   */
  fromStrings?: boolean;
  /** Positions of declared inputs in the flow's source (a parsed flow's `locate`). */
  locate?: ParsedFlow["locate"];
  /** The flow file, for messages. */
  file?: string;
}

/**
 * Check and complete the inputs for a run of `flow`: apply defaults, and
 * reject unknown inputs (with a did-you-mean), missing required inputs
 * (those without a default), values of the wrong type, values outside the
 * `enum`, and values that are not JSON.
 *
 * @param flow The flow definition.
 * @param given The inputs given by the caller.
 * @param options `fromStrings` to parse textual values per their declared type.
 * @returns Every declared input with a value (copies, never the caller's objects).
 * @throws {FlowValidationError} listing every problem, each with the path
 *   `["inputs", name]`, e.g. `inputs.by: expected a number, got "abc"`.
 *
 * @example
 * ```ts
 * import { coerceInputs, validateFlow } from "@flowstate/core/flow";
 * const { definition } = validateFlow({
 *   id: "add",
 *   inputs: { by: { type: "number", default: 1 }, name: { type: "string" } },
 *   nodes: [{ id: "say", type: "log" }],
 * });
 * const inputs = coerceInputs(definition, { by: "5", name: "x" }, { fromStrings: true });
 * if (inputs.by !== 5 || inputs.name !== "x") throw new Error("expected by=5, name=x");
 * if (coerceInputs(definition, { name: "y" }).by !== 1) throw new Error("expected the default");
 * ```
 */
export function coerceInputs(
  flow: FlowDefinition,
  given: Record<string, unknown>,
  options: CoerceInputsOptions = {},
): Record<string, JsonValue> {
  if (!isRecord(given)) {
    throw new TypeError(
      `Cannot check inputs for flow "${flow.id}": expected an object of inputs, got ${
        describeValue(given)
      }`,
    );
  }
  const declared = flow.inputs ?? {};
  const names = Object.keys(declared);
  const problems: FlowProblem[] = [];
  const problem = (name: string, message: string) => {
    const path = ["inputs", name];
    const at = Object.hasOwn(declared, name) ? options.locate?.(path) : undefined;
    problems.push({ message, path, ...(at ? { line: at.line, column: at.column } : {}) });
  };
  for (const name of Object.keys(given)) {
    if (Object.hasOwn(declared, name) || given[name] === undefined) continue;
    const hint = didYouMean(name, names) ||
      (names.length === 0
        ? `; flow "${flow.id}" declares no inputs`
        : `; flow "${flow.id}" declares ${names.join(", ")}`);
    problem(name, `unknown input${hint}`);
  }
  const result: Record<string, JsonValue> = {};
  for (const name of names) {
    const spec = declared[name];
    const type = spec.type ?? "any";
    let value = Object.hasOwn(given, name) ? given[name] : undefined;
    if (value === undefined) {
      if (spec.default !== undefined) result[name] = structuredClone(spec.default);
      else problem(name, "required (it has no default) but not given");
      continue;
    }
    if (options.fromStrings && typeof value === "string") {
      const parsed = fromString(type, value);
      if ("error" in parsed) {
        problem(name, parsed.error);
        continue;
      }
      value = parsed.value;
    }
    const typeProblem = inputTypeProblem(type, value);
    if (typeProblem !== undefined) {
      problem(name, typeProblem);
      continue;
    }
    const notJson = jsonProblem(value);
    if (notJson !== undefined) {
      const at = formatPath(notJson.path);
      problem(name, at === "" ? notJson.message : `at ${at}: ${notJson.message}`);
      continue;
    }
    if (spec.enum !== undefined && !spec.enum.some((v) => deepEqual(v, value))) {
      problem(
        name,
        `expected one of ${spec.enum.map(describeValue).join(", ")}, got ${describeValue(value)}${
          typeof value === "string"
            ? didYouMean(value, spec.enum.filter((v): v is string => typeof v === "string"))
            : ""
        }`,
      );
      continue;
    }
    result[name] = JSON.parse(JSON.stringify(value));
  }
  if (problems.length > 0) throw new FlowValidationError(problems, options.file);
  return result;
}

function fromString(type: InputType, text: string): { value: unknown } | { error: string } {
  const got = `, got ${describeValue(text)}`;
  switch (type) {
    case "string":
      return { value: text };
    case "number": {
      const n = text.trim() === "" ? NaN : Number(text);
      return Number.isFinite(n) ? { value: n } : { error: `expected a number${got}` };
    }
    case "boolean":
      if (text === "true") return { value: true };
      if (text === "false") return { value: false };
      return { error: `expected true or false${got}` };
    case "object":
    case "array": {
      const what = type === "object" ? "a JSON object" : "a JSON array";
      try {
        return { value: JSON.parse(text) };
      } catch {
        return { error: `expected ${what}${got}` };
      }
    }
    case "any":
      try {
        return { value: JSON.parse(text) };
      } catch {
        return { value: text };
      }
  }
}
