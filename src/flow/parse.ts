/**
 * Read and validate flow files. Every problem in a flow is collected and
 * reported at once, each with `file:line:column` pointing at the offending key
 * or value, e.g.
 * `flow.yaml:12:7: nodes[1].needs[0]: unknown node "bmp" (did you mean "bump"?)`.
 *
 * The YAML is read through {@linkcode YamlSource} (`src/yaml_source.ts`), the
 * checks are the {@linkcode Checker}'s (`check.ts`), and the inputs of a run
 * are checked by {@linkcode coerceInputs} (`inputs.ts`, re-exported here).
 *
 * @module
 */
import { CST, isMap, Parser } from "yaml";
import { FlowValidationError, formatPath, type Problem, type ProblemPath } from "../errors.ts";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { deniedReading } from "../_fs.ts";
import { MAX_YAML_DEPTH, readYamlFile, YamlSource } from "../yaml_source.ts";
import { isRecord } from "./_values.ts";
import type { NodeType } from "./node.ts";
import {
  optionProblems,
  type ReferenceContext,
  referenceProblems,
  staticOptions,
} from "./node_options.ts";
import { Checker } from "./check.ts";
import { builtinNodes, execOptionsSchema, httpOptionsSchema } from "./nodes.ts";
import { describeValue, flowZodSchema, nestedDeeperThan } from "./schema.ts";
import type { FlowDefinition } from "./types.ts";
import { parseJson } from "../_json.ts";

/**
 * A path into a flow definition: `["nodes", 1, "needs", 0]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPath } from "@flowstate/core";
 * import type { FlowPath } from "@flowstate/core/flow";
 *
 * const path: FlowPath = ["nodes", 0, "with", "key"];
 * assert.equal(formatPath(path), "nodes[0].with.key");
 * ```
 */
export type FlowPath = ProblemPath;

/**
 * One thing wrong with a flow (see {@linkcode Problem}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FlowProblem, FlowValidationError, parseFlow } from "@flowstate/core/flow";
 *
 * let problems: readonly FlowProblem[] = [];
 * try {
 *   parseFlow("id: x\nnodes:\n  - { id: a, type: log, needs: [b] }\n");
 * } catch (err) {
 *   if (err instanceof FlowValidationError) problems = err.problems;
 * }
 * assert.equal(problems[0]?.line, 3);
 * assert.deepEqual(problems[0]?.path.slice(0, 2), ["nodes", 0]);
 * ```
 */
export type FlowProblem = Problem;

export { FlowValidationError, formatPath };
export { coerceInputs, type CoerceInputsOptions } from "./inputs.ts";

/**
 * A validated flow, with a way back to positions in its YAML source.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ParsedFlow, parseFlow } from "@flowstate/core/flow";
 *
 * const parsed: ParsedFlow = parseFlow(
 *   "id: hello\nnodes:\n  - id: say\n    type: log\n    with: { message: hi }\n",
 *   { file: "hello.flow.yaml" },
 * );
 * assert.equal(parsed.definition.id, "hello");
 * assert.deepEqual(parsed.locate(["nodes", 0, "type"]), { line: 4, column: 11 });
 * ```
 */
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
   * the flow did not come from YAML. With `side` `"key"`, the position of
   * the key the value is written under (where there is one and it is known).
   */
  locate(
    path: (string | number)[],
    side?: "key" | "value",
  ): { line: number; column: number } | undefined;
}

/**
 * Options for {@linkcode parseFlow} and {@linkcode loadFlowFile}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FlowValidationError, parseFlow, type ParseFlowOptions } from "@flowstate/core/flow";
 *
 * const options: ParseFlowOptions = { file: "x.flow.yaml", nodeTypes: new Set(["log"]) };
 * assert.throws(
 *   () => parseFlow("id: x\nnodes:\n  - { id: a, type: lgo }\n", options),
 *   (err) => err instanceof FlowValidationError && err.message.startsWith("x.flow.yaml:3:"),
 * );
 * ```
 */
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

/**
 * Options for {@linkcode validateFlow}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FlowValidationError, validateFlow, type ValidateFlowOptions } from "@flowstate/core/flow";
 *
 * const options: ValidateFlowOptions = { nodeTypes: new Set(["log", "transform"]) };
 * const flow = { id: "x", nodes: [{ id: "a", type: "lgo" }] };
 * assert.throws(() => validateFlow(flow, options), FlowValidationError);
 * assert.equal(validateFlow(flow).definition.id, "x"); // without nodeTypes, any type name passes
 * ```
 */
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
 * import assert from "node:assert/strict";
 * const yaml = "id: hello\nnodes:\n  - id: say\n    type: log\n    with: { message: hi }\n";
 * const flow = parseFlow(yaml, { file: "hello.flow.yaml" });
 * assert.equal(flow.definition.nodes[0].with?.message, "hi");
 * assert.deepEqual(flow.locate(["nodes", 0, "type"]), { line: 4, column: 11 });
 * ```
 */
export function parseFlow(text: string, options: ParseFlowOptions = {}): ParsedFlow {
  const read = readFlow(text, options);
  if (read.checker.problems.length > 0) {
    throw new FlowValidationError(sortProblems(read.checker.problems), options.file);
  }
  return parsedFlow(read, text, options.file);
}

/** A flow's text read and checked: the problems found, and the data when it could be read. */
interface FlowRead {
  source: YamlSource;
  checker: Checker;
  /** The data, when it is a mapping that was checked. */
  data?: Record<string, unknown>;
}

function parsedFlow(read: FlowRead, text: string, file: string | undefined): ParsedFlow {
  const definition = flowZodSchema.parse(read.data);
  return {
    definition,
    ...(file === undefined ? {} : { file }),
    source: text,
    locate: (path, side) => read.source.locate(path, side),
  };
}

/**
 * On a line with syntax errors, an unquoted `${{ … }}` is their cause (YAML
 * reads `{` as a mapping inside `{ … }`): one problem saying to quote it
 * replaces them.
 */
function unquotedTemplates(text: string, problems: FlowProblem[]): FlowProblem[] {
  const lines = text.split("\n");
  const hints = new Map<number, FlowProblem>();
  let flows: [number, number][] | undefined;
  for (const p of problems) {
    if (p.line === undefined || hints.has(p.line)) continue;
    const line = lines[p.line - 1] ?? "";
    const at = line.indexOf("${{");
    if (at < 0) continue;
    const before = line.slice(0, at);
    // Inside a quoted string the template is fine: count the quotes before it.
    if ((before.split('"').length - 1) % 2 === 1 || (before.split("'").length - 1) % 2 === 1) {
      continue;
    }
    // Only inside a flow mapping or sequence ({ … } or [ … ], opened on this line or an earlier
    // one): in a block value an unquoted template is plain YAML, and the error is another one
    // (a tab, a ": " in the value), which its own explanation gives.
    flows ??= flowCollections(text);
    const offset = lineStart(lines, p.line) + at;
    if (!flows.some(([start, end]) => start < offset && offset < end)) continue;
    const end = line.indexOf("}}", at);
    const template = end < 0 ? "${{ … }}" : line.slice(at, end + 2);
    hints.set(p.line, {
      message:
        `\${{ … }} must be quoted here: YAML reads its { and } as a mapping; write "${template}"`,
      path: [],
      line: p.line,
      column: at + 1,
    });
  }
  if (hints.size === 0) return problems;
  return [
    ...problems.filter((p) => p.line === undefined || !hints.has(p.line)),
    ...hints.values(),
  ];
}

/** The offset at which 1-based line `line` of `lines` starts. */
function lineStart(lines: readonly string[], line: number): number {
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  return offset;
}

/**
 * The `[start, end)` offsets of every flow collection (`{ … }`, `[ … ]`) in
 * `text`, from yaml's concrete syntax tree, which keeps them even where the
 * text has syntax errors. A collection never closed runs to the end.
 */
function flowCollections(text: string): [number, number][] {
  const ranges: [number, number][] = [];
  for (const token of new Parser().parse(text)) {
    if (token.type !== "document") continue;
    CST.visit(token, ({ value }) => {
      if (value?.type !== "flow-collection") return;
      const close = value.end.find((t) => t.type === "flow-map-end" || t.type === "flow-seq-end");
      ranges.push([value.offset, close === undefined ? text.length : close.offset + 1]);
    });
  }
  return ranges;
}

/** Parse and check; throws only for YAML syntax errors and unreadable data. */
function readFlow(text: string, options: ParseFlowOptions): FlowRead {
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
      oneDocument: { file: "a flow file", elsewhere: "put the other flow in a file of its own" },
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
  const syntax: FlowProblem[] = unquotedTemplates(
    text,
    [...source.syntaxErrors, ...source.syntaxWarnings].map((
      { message, line, column },
    ) => ({ message, path: [], line, column })),
  );
  if (source.syntaxErrors.length > 0) throw new FlowValidationError(sortProblems(syntax), file);

  const checker = new Checker(source, file === undefined ? undefined : dirname(resolve(file)));
  for (const problem of syntax) checker.problems.push(problem);
  for (const dup of source.duplicateKeys()) {
    checker.problems.push({
      message:
        `duplicate key "${dup.key}" (first at line ${dup.first.line}, column ${dup.first.column})`,
      path: dup.path,
      ...dup.at,
    });
  }
  const read = source.toData({ maxAliasCount: 100 });
  if ("problem" in read) {
    // Nothing more can be said about data that cannot be read.
    checker.problems.push({ path: [], ...read.problem });
    throw new FlowValidationError(sortProblems(checker.problems), file);
  }
  const data = read.data;
  if (source.doc.contents === null || data === null || data === undefined) {
    checker.add([], "the flow is empty; expected a mapping with at least id and nodes");
  } else if (!isMap(source.doc.contents)) {
    checker.add(
      [],
      `expected a mapping (id, nodes, …) at the top level, got ${describeValue(data)}`,
    );
  } else if (
    !("id" in (data as object)) && !("nodes" in (data as object)) && "stores" in (data as object)
  ) {
    // The config given as a flow (run flowstate.yaml): its every field is "unknown".
    checker.add(
      [],
      "this is a Flowstate config (it has stores:), not a flow: run a flow file, one with id: " +
        "and nodes: (flowstate init writes flows/hello.flow.yaml)",
    );
  } else {
    checker.check(data, options.nodeTypes);
    return { source, checker, data: data as Record<string, unknown> };
  }
  return { source, checker };
}

/**
 * The built-in nodes' option and reference problems of a flow that has other
 * problems (a valid flow gets them from `prepareFlow`, for every node type):
 * so that one run of `validate` reports every independent problem. A node
 * with a problem inside its `with` already is left to be checked once those
 * are fixed; of templated options, what is known before a run is checked
 * (see {@linkcode optionProblems}).
 */
async function nodeProblems(read: FlowRead, context: ReferenceContext): Promise<void> {
  const nodes = Array.isArray(read.data?.nodes) ? read.data.nodes : [];
  const placed = read.checker.problems.map((p) => p.path);
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i] as Record<string, unknown> | null;
    if (typeof node !== "object" || node === null || typeof node.type !== "string") continue;
    let type = builtinNodes.get(node.type) as NodeType<unknown> | undefined;
    const net = isRecord(node.permissions) ? node.permissions.net ?? false : false;
    if (
      type !== undefined && node.type === "http" &&
      (typeof net === "boolean" || (Array.isArray(net) && net.every((h) => typeof h === "string")))
    ) {
      // Its url's host is checked against the hosts it declares, as prepareFlow checks it.
      type = {
        ...type,
        optionsSchema: httpOptionsSchema(net) as NodeType<unknown>["optionsSchema"],
      };
    }
    const run = isRecord(node.permissions) ? node.permissions.run ?? false : false;
    if (
      type !== undefined && node.type === "exec" &&
      (typeof run === "boolean" || (Array.isArray(run) && run.every((c) => typeof c === "string")))
    ) {
      // Its command is checked against the programs it declares, as prepareFlow checks it.
      type = {
        ...type,
        optionsSchema: execOptionsSchema(run) as NodeType<unknown>["optionsSchema"],
      };
    }
    const values = node.with ?? {};
    if (type === undefined || !isRecord(values)) continue;
    if (placed.some((p) => p[0] === "nodes" && p[1] === i && p[2] === "with")) continue;
    const found = [
      ...await optionProblems(type, node.type, values, { staticValues: true }),
      ...await referenceProblems(type, staticOptions(values), context),
    ];
    for (const problem of found) {
      read.checker.add(["nodes", i, ...problem.path], problem.message, problem.at);
    }
  }
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
 * import assert from "node:assert/strict";
 * const flow = validateFlow({
 *   id: "hello",
 *   nodes: [{ id: "say", type: "log", with: { message: "hi" } }],
 * });
 * assert.equal(flow.definition.nodes[0].id, "say");
 * assert.equal(flow.locate(["nodes", 0]), undefined); // an object has no positions
 * ```
 */
export function validateFlow(definition: unknown, options: ValidateFlowOptions = {}): ParsedFlow {
  const checker = new Checker(undefined);
  if (typeof definition !== "object" || definition === null || Array.isArray(definition)) {
    checker.add([], `expected a flow object (id, nodes, …), got ${describeValue(definition)}`);
  } else if (nestedDeeperThan(definition, MAX_YAML_DEPTH)) {
    // As for a flow file, before the checks (which recurse) see it.
    checker.add(
      [],
      `nested deeper than ${MAX_YAML_DEPTH} levels of objects and arrays; flatten it`,
    );
  } else {
    checker.check(definition, options.nodeTypes);
  }
  if (checker.problems.length > 0) throw new FlowValidationError(checker.problems);
  const parsed = flowZodSchema.parse(definition);
  return {
    definition: parseJson(JSON.stringify(parsed)) as FlowDefinition,
    locate: () => undefined,
  };
}

/**
 * Read a flow file and {@linkcode parseFlow} it.
 *
 * @param path The file; messages name it as given.
 * @param options The known node types.
 * @throws {FlowValidationError} when the file is missing, is a directory, is
 *   over the size limit (4 MiB unless `FLOWSTATE_MAX_YAML_SIZE` says otherwise;
 *   checked before it is read), is not UTF-8 (with the position of the first
 *   bad byte), or holds an invalid flow. Other read errors (permissions) are
 *   thrown as they are.
 *
 * @example
 * ```ts
 * import { loadFlowFile } from "@flowstate/core/flow";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/hello.flow.yaml`;
 * await Deno.writeTextFile(path, "id: hello\nnodes:\n  - id: say\n    type: log\n");
 * const flow = await loadFlowFile(path, { displayPath: "hello.flow.yaml" });
 * await Deno.remove(dir, { recursive: true });
 * assert.equal(flow.definition.id, "hello");
 * assert.equal(flow.file, "hello.flow.yaml");
 * ```
 */
export async function loadFlowFile(
  path: string,
  options: Omit<ParseFlowOptions, "file"> & {
    /** The name used in messages and as `ParsedFlow.file` (default: `path`). */
    displayPath?: string;
    /**
     * The configured store names. When the flow has problems, the `store` of
     * its `state.*` nodes is checked against them too (and its sub-flow files
     * for existence), so that every problem is reported at once; a valid flow
     * gets these checks from `loadFlow`.
     */
    stores?: readonly string[];
  } = {},
): Promise<ParsedFlow> {
  const { displayPath, stores, ...parseOptions } = options;
  // A file's node types are built-ins or module paths, so unknown names are
  // reported here, with every other problem of the file.
  parseOptions.nodeTypes ??= BUILTIN_NODE_NAMES;
  const shown = displayPath ?? path;
  if (path.includes("\n")) {
    throw new FlowValidationError([{
      message: "Cannot load flow: a flow given as a string is the path of its file, and this " +
        "one holds a line break (is it the flow's YAML text?): pass the path, or " +
        'parseFlow(text) from "@flowstate/core/flow"',
      path: [],
    }]);
  }
  let text: string;
  try {
    const read = await readYamlFile(path);
    if ("problem" in read) {
      throw new FlowValidationError([{ path: [], ...read.problem }], shown);
    }
    text = read.text;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new FlowValidationError(
        [{ message: await missingFlowMessage(path), path: [] }],
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
    if (error instanceof Deno.errors.PermissionDenied) {
      // The file system's no (its mode or owner), not Deno's: --allow-read is not the fix.
      throw new FlowValidationError(
        [{
          message: `Cannot load flow: ${deniedReading(resolve(path))}`,
          path: [],
        }],
        shown,
        { cause: error },
      );
    }
    throw error;
  }
  const read = readFlow(text, { ...parseOptions, file: shown });
  if (read.checker.problems.length > 0) {
    await nodeProblems(read, {
      baseDir: dirname(resolve(path)),
      ...(stores === undefined ? {} : { stores }),
    });
    throw new FlowValidationError(sortProblems(read.checker.problems), shown);
  }
  return parsedFlow(read, text, shown);
}

/**
 * `Cannot load flow: no such file /abs/path`, with the closest existing file
 * (as a path from the working directory, the way it was given) when one is close.
 */
async function missingFlowMessage(path: string): Promise<string> {
  const absolute = resolve(path);
  const { closestPath } = await import("../_nearby.ts");
  const found = await closestPath(absolute);
  const shown = found === undefined ? undefined : isAbsolute(path) ? found : relative(".", found);
  return `Cannot load flow: no such file ${absolute}${
    shown === undefined ? "" : ` (did you mean ${shown}?)`
  }`;
}

const BUILTIN_NODE_NAMES: ReadonlySet<string> = new Set(builtinNodes.keys());

function sortProblems(problems: FlowProblem[]): FlowProblem[] {
  const placed = problems.filter((p) => p.line !== undefined);
  const unplaced = problems.filter((p) => p.line === undefined);
  placed.sort((a, b) => a.line! - b.line! || (a.column ?? 0) - (b.column ?? 0));
  return [...placed, ...unplaced];
}
