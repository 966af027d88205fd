/**
 * The checks of a flow definition, each problem placed in its YAML source
 * when there is one: `__proto__` keys, the structure from the zod schema
 * (with did-you-mean suggestions), node ids, `needs` and their cycles, node
 * types, input defaults and enums, and what templates read.
 *
 * @module
 */
import { didYouMean } from "../_suggest.ts";
import type { Problem, ProblemPath } from "../errors.ts";
import { mappingHint, namesModule } from "../loader.ts";
import type { YamlSource } from "../yaml_source.ts";
import { deepEqual, isRecord } from "./_values.ts";
import type { z } from "zod";
import {
  describeValue,
  EXPECTED,
  flowZodSchema,
  INPUT_TYPES,
  inputTypeProblem,
  knownFields,
} from "./schema.ts";
import { checkTemplates } from "./template/mod.ts";
import { builtinNodes } from "./nodes.ts";
import type { InputType } from "./types.ts";
import { SCHEDULED_AT_INPUT, scheduleEntries } from "./_schedule_entries.ts";

type FlowPath = ProblemPath;

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const segment of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

type Refs = {
  nodes: Set<string>;
  inputs: Set<string>;
  env: Set<string>;
  secrets: Set<string>;
  run: Set<string>;
  loop: Map<"item" | "index", number>;
};

/**
 * Collects the problems of one flow: {@linkcode Checker.check} runs every
 * check on the data, {@linkcode Checker.add} places one problem.
 *
 * @example
 * ```ts
 * import { Checker } from "./check.ts";
 * import assert from "node:assert/strict";
 * const checker = new Checker(undefined);
 * const nodes = [{ id: "fetch", type: "log" }, { id: "save", type: "log", needs: ["fetsh"] }];
 * checker.check({ id: "demo", nodes }, undefined);
 * assert.deepEqual(checker.problems, [
 *   { message: 'unknown node "fetsh" (did you mean "fetch"?)', path: ["nodes", 1, "needs", 0] },
 * ]);
 * ```
 */
export class Checker {
  /** Every problem found so far, in the order found. */
  readonly problems: Problem[] = [];
  readonly #source: YamlSource | undefined;
  readonly #baseDir: string | undefined;

  /**
   * A checker placing problems in `source`, or without positions; package
   * names in node types resolve through the project around `baseDir`
   * (default: the working directory).
   */
  constructor(source: YamlSource | undefined, baseDir?: string) {
    this.#source = source;
    this.#baseDir = baseDir;
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

  /** Run every check on a flow's data (a mapping); `nodeTypes` are the known node types, if any. */
  check(data: unknown, nodeTypes: ReadonlySet<string> | undefined): void {
    this.#protoKeys(data, []);
    this.#schema(data);
    const flow = data as Record<string, unknown>;
    const nodes = this.#nodes(flow);
    if (nodeTypes !== undefined) this.#nodeTypes(nodes, nodeTypes);
    this.#inputs(flow);
    this.#scheduleEntries(flow);
    this.#secretsList(flow);
    this.#templates(flow, nodes);
  }

  /** A name under both `env:` and `secrets:`, which would be read unmasked as `env.NAME`. */
  #secretsList(flow: Record<string, unknown>): void {
    if (!Array.isArray(flow.secrets) || !Array.isArray(flow.env)) return;
    const env = flow.env;
    flow.secrets.forEach((name, i) => {
      if (typeof name !== "string" || !env.includes(name)) return;
      this.add(
        ["secrets", i],
        `${name} is listed under both env: and secrets:; a secret read as env.${name} would not be masked: remove it from env: and read it as secrets.${name}`,
      );
    });
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
    for (const issue of matchingOption(result.error.issues)) {
      const path = issue.path.map((s) => typeof s === "number" ? s : String(s));
      const value = valueAt(data, path);
      const got = `, got ${describeValue(value)}`;
      if (issue.code === "invalid_type" || issue.code === "invalid_union") {
        // A field that is not there at all: said so, whatever its type would be.
        const parentPath = path.slice(0, -1);
        const parent = valueAt(data, parentPath);
        const last = path.at(-1);
        if (value === undefined && isRecord(parent) && last !== undefined && !(last in parent)) {
          this.add(parentPath, `missing required field "${last}"`);
          continue;
        }
      }
      switch (issue.code) {
        case "unrecognized_keys":
          for (const key of issue.keys) {
            this.add([...path, key], `unknown field${fieldHint(key, path)}`, "key");
          }
          break;
        case "invalid_type": {
          if (path.join(".") === "trigger.http.secret") {
            this.add(
              path,
              `expected { env: NAME }, the name of the environment variable holding the secret (never the secret itself)${got}`,
            );
          } else {
            this.add(
              path,
              `expected ${EXPECTED[issue.expected] ?? issue.expected}${got}${
                inputShapeHint(path, value)
              }`,
            );
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
        case "invalid_union":
          this.add(
            path,
            path[0] === "schedule" &&
              (path.length === 1 || (path.length === 2 && typeof path[1] === "number"))
              ? `expected a cron expression ("0 * * * *", @daily) or a mapping like { cron: "0 * * * *", missed: run-once }${got}`
              : `${issue.message}${got}`,
          );
          break;
        case "too_small":
        case "too_big":
          this.add(path, Array.isArray(value) ? issue.message : `${issue.message}${got}`);
          break;
        default:
          this.add(path, `${issue.message}${got}${idHint(path, value)}`);
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
      if (
        typeof type !== "string" || type === "" || known.has(type) ||
        namesModule(type, this.#baseDir)
      ) {
        continue;
      }
      const looksLikeFile = type.includes("/") || /\.[cm]?[jt]sx?$/.test(type);
      this.add(
        ["nodes", node.index, "type"],
        type.startsWith("@")
          ? `unknown node type "${type}": a package name must be in the project's import map; ${
            mappingHint(type, this.#baseDir ?? Deno.cwd())
          }`
          : looksLikeFile
          ? `unknown node type "${type}": a module path must start with ./, ../ or / (write "./${type}")`
          : unknownTypeMessage(type, known),
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

  /**
   * The entries of `schedule:`: their ids unique (at most one without), and
   * the inputs each gives its runs against the declared ones: every name
   * declared, every value of its type and enum, literal (no template), and
   * every required input given (`scheduledAt` excepted: the scheduler gives
   * it the tick's time), so that a scheduled run cannot fail on its inputs.
   */
  #scheduleEntries(flow: Record<string, unknown>): void {
    const entries = scheduleEntries(flow.schedule);
    if (entries.length === 0) return;
    const declared = isRecord(flow.inputs) ? flow.inputs : {};
    const names = Object.keys(declared);
    const tickInput = declared[SCHEDULED_AT_INPUT];
    if (
      isRecord(tickInput) && tickInput.type !== undefined &&
      !["string", "number", "any"].includes(String(tickInput.type))
    ) {
      this.add(
        ["inputs", SCHEDULED_AT_INPUT, "type"],
        `a scheduled flow's input ${SCHEDULED_AT_INPUT} is given the tick's time: declare it type: string (ISO 8601) or number (ms since the epoch), or read run.scheduledAt instead`,
      );
    }
    if (isRecord(tickInput) && tickInput.enum !== undefined) {
      this.add(
        ["inputs", SCHEDULED_AT_INPUT, "enum"],
        `a scheduled flow's input ${SCHEDULED_AT_INPUT} is given the tick's time, which no enum: can list; remove the enum, or read run.scheduledAt instead`,
      );
    }
    const where = (path: readonly (string | number)[]) =>
      path.length === 1 ? "schedule" : `schedule[${path[1]}]`;
    const seen = new Map<string | null, readonly (string | number)[]>();
    for (const entry of entries) {
      const first = seen.get(entry.id);
      if (first === undefined) {
        seen.set(entry.id, entry.path);
      } else if (entry.id === null) {
        this.add(
          entry.path,
          `a second schedule entry without id: (the first is ${
            where(first)
          }); give every entry but one an id, like { id: nightly, cron: "0 2 * * *" }, to tell their ticks apart`,
        );
      } else {
        this.add(
          [...entry.path, "id"],
          `duplicate schedule id "${entry.id}" (first at ${
            where(first)
          }); each entry of schedule: needs its own id`,
        );
      }
    }
    for (const entry of entries) {
      const given = typeof entry.raw === "string" || !isRecord(entry.raw.inputs)
        ? {}
        : entry.raw.inputs;
      for (const [name, value] of Object.entries(given)) {
        const at = [...entry.path, "inputs", name];
        if (!Object.hasOwn(declared, name)) {
          const hint = didYouMean(name, names) ||
            (names.length === 0
              ? "; the flow declares no inputs (declare it under inputs:)"
              : `; the flow declares ${names.join(", ")}`);
          this.add(at, `unknown input${hint}`, "key");
          continue;
        }
        if (name === SCHEDULED_AT_INPUT) {
          this.add(
            at,
            `${SCHEDULED_AT_INPUT} is given the tick's time by the scheduler; remove it here`,
            "key",
          );
          continue;
        }
        const templated = [...strings(value, at)].find(([text]) => text.includes("${{"));
        if (templated !== undefined) {
          this.add(
            templated[1],
            "a schedule's inputs are literal values, not templates; read the tick's time in the flow as run.scheduledAt (a number of ms, like now())",
          );
          continue;
        }
        const spec = declared[name];
        if (!isRecord(spec)) continue;
        const type: InputType = INPUT_TYPES.includes(spec.type as InputType)
          ? spec.type as InputType
          : "any";
        const problem = inputTypeProblem(type, value);
        if (problem !== undefined) {
          this.add(at, problem);
        } else if (Array.isArray(spec.enum) && !spec.enum.some((v) => deepEqual(v, value))) {
          this.add(
            at,
            `expected one of ${spec.enum.map(describeValue).join(", ")}, got ${
              describeValue(value)
            }`,
          );
        }
      }
      const missing = names.filter((name) =>
        name !== SCHEDULED_AT_INPUT && isRecord(declared[name]) &&
        declared[name].default === undefined && !Object.hasOwn(given, name)
      );
      if (missing.length === 0) continue;
      const example = missing.map((name) => `${name}: …`).join(", ");
      this.add(
        entry.path,
        `the flow's input${missing.length === 1 ? "" : "s"} ${missing.join(", ")} ${
          missing.length === 1 ? "is" : "are"
        } required (no default) but this schedule gives no value, so each of its runs would fail; add inputs: { ${example} } to ${
          entry.path.length === 1 ? "the schedule" : "this entry"
        }${
          typeof entry.raw === "string"
            ? ` (written as { cron: ${JSON.stringify(entry.cron)}, inputs: { ${example} } })`
            : ""
        }, or a default: under inputs.${missing[0]}`,
      );
    }
  }

  /** Compile every string in `with`, `if` and `outputs`, and check what they read. */
  #templates(flow: Record<string, unknown>, nodes: NodeInfo[]): void {
    const inputs = isRecord(flow.inputs) ? Object.keys(flow.inputs) : [];
    const env = Array.isArray(flow.env) ? flow.env.filter((e) => typeof e === "string") : [];
    const secrets = Array.isArray(flow.secrets)
      ? flow.secrets.filter((e) => typeof e === "string")
      : [];
    const lists = { inputs, env, secrets };
    const byId = this.#byId;
    const { handles, watches } = whenRoles(byId);
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
          } else if (!this.#reaches(node, name) && !watches(node, byId.get(name)!)) {
            this.add(
              path,
              `${subject} reads nodes.${name} but does not list it (directly or indirectly) in needs; add needs: [${name}]`,
            );
          }
        }
        if (refs.run.has("failed") && !handles(node)) {
          this.add(
            path,
            `${subject} reads run.failed, which only a node with when: on_failure or always (or one after it) can see filled; add when: on_failure`,
          );
        }
        this.#checkCommonRefs(subject, refs, path, lists);
      };
      const forEach = node.raw.forEach;
      const loops = forEach !== undefined;
      const noLoop = (name: string) =>
        `${subject} reads ${name}, which is set only in a node with forEach; add forEach: "\${{ … }}" (the list to run the node for) to the node`;
      if (typeof node.raw.if === "string" && !node.raw.if.includes("${{")) {
        // A text is always truthy, "false" and "no" too: the node would always run.
        this.add(
          ["nodes", node.index, "if"],
          `expected a template like "\${{ inputs.enabled }}", got the text ${
            JSON.stringify(node.raw.if)
          }, which is always true: write if: "\${{ ${node.raw.if} }}"`,
        );
      } else if (typeof node.raw.if === "string") {
        const path = ["nodes", node.index, "if"];
        const refs = this.#compile(node.raw.if, path);
        checkRefs(refs, path);
        this.#loopRefs(
          refs,
          path,
          (name) =>
            loops
              ? `${subject}: if cannot read ${name}: it is evaluated once for the whole node, before its items run; to skip some items, leave them out of the list (forEach: "\${{ … }}")`
              : noLoop(name),
        );
      }
      if (isRecord(node.raw.with)) {
        for (const [text, path] of strings(node.raw.with, ["nodes", node.index, "with"])) {
          const refs = this.#compile(text, path);
          checkRefs(refs, path);
          if (!loops) this.#loopRefs(refs, path, noLoop);
        }
      }
      if (loops) {
        const listPath = ["nodes", node.index, "forEach"];
        const list = isRecord(forEach) ? forEach.items : forEach;
        const path = isRecord(forEach) ? [...listPath, "items"] : listPath;
        if (typeof list === "string" && !list.includes("${{")) {
          this.add(
            path,
            `expected a template like "\${{ nodes.list.output }}" or a list, got the text ${
              JSON.stringify(list)
            }`,
          );
        }
        for (const [text, at] of strings(list, path)) {
          const refs = this.#compile(text, at);
          checkRefs(refs, at);
          this.#loopRefs(
            refs,
            at,
            (name) =>
              `${subject}: forEach cannot read ${name}: ${name} is taken from the list forEach gives`,
          );
        }
      }
    }
    if (isRecord(flow.queue) && typeof flow.queue.by === "string") {
      const path = ["queue", "by"];
      const refs = this.#compile(flow.queue.by, path);
      for (const id of refs.nodes) {
        this.add(
          path,
          `queue.by reads nodes.${id}: it may read only inputs (it is computed at enqueue)`,
        );
      }
      if (refs.run.has("failed")) {
        this.add(
          path,
          `queue.by reads run.failed: it may read only inputs (it is computed at enqueue)`,
        );
      }
      this.#noSecrets(
        "queue.by",
        refs,
        path,
        "it is computed at enqueue and stored with the queued run, in the clear",
      );
      this.#checkCommonRefs("queue.by", refs, path, lists);
      this.#loopRefs(refs, path, (name) => `queue.by cannot read ${name}: it reads only inputs`);
    }
    if (isRecord(flow.outputs)) {
      for (const [name, value] of Object.entries(flow.outputs)) {
        const subject = `output "${name}"`;
        for (const [text, path] of strings(value, ["outputs", name])) {
          const refs = this.#compile(text, path);
          if (refs.run.has("failed")) {
            this.add(
              path,
              `${subject} reads run.failed: outputs are computed only when the run succeeded, when it is empty`,
            );
          }
          for (const id of refs.nodes) {
            if (byId.has(id)) continue;
            this.add(
              path,
              `${subject} reads nodes.${id}, which is not a node of this flow${
                didYouMean(id, byId.keys())
              }`,
            );
          }
          this.#noSecrets(
            subject,
            refs,
            path,
            "a run's outputs leave it (recorded, returned to its caller) and would only ever hold ***",
          );
          this.#checkCommonRefs(subject, refs, path, lists);
          this.#loopRefs(
            refs,
            path,
            (item) =>
              `${subject} reads ${item}, which is set only in a node with forEach; read that node's output (a list) instead`,
          );
        }
      }
    }
  }

  /** `secrets.NAME` read where a template's value would leave the run. */
  #noSecrets(subject: string, refs: Refs, path: FlowPath, why: string): void {
    for (const name of refs.secrets) {
      this.add(
        path,
        `${subject} reads secrets.${name}, which it may not: ${why}; read secrets only in a node's with: or if:`,
      );
    }
  }

  /** A problem at each of `item` and `index` that `refs` read (where they may not be read). */
  #loopRefs(refs: Refs, path: FlowPath, message: (name: string) => string): void {
    for (const [name, offset] of refs.loop) this.add(path, message(name), { offset });
  }

  #checkCommonRefs(
    subject: string,
    refs: Refs,
    path: FlowPath,
    lists: { inputs: string[]; env: string[]; secrets: string[] },
  ): void {
    const { inputs, env, secrets } = lists;
    for (const name of refs.inputs) {
      if (inputs.includes(name)) continue;
      this.add(
        path,
        `${subject} reads inputs.${name}, which is not declared under inputs${
          didYouMean(name, inputs)
        }`,
      );
    }
    for (const [root, listed] of [["env", env], ["secrets", secrets]] as const) {
      for (const name of refs[root]) {
        if (listed.includes(name)) continue;
        const hint = didYouMean(name, listed) ||
          (root === "env" && secrets.includes(name)
            ? `; ${name} is a secret: read it as secrets.${name}`
            : listed.length === 0
            ? `; add ${root}: [${name}]`
            : `; add ${name} to ${root}`);
        this.add(
          path,
          `${subject} reads ${root}.${name}, which is not listed under ${root}${hint}`,
        );
      }
    }
  }

  /** Every template problem of the string, each at its place; what its good templates read. */
  #compile(text: string, path: FlowPath): Refs {
    const { refs, errors } = checkTemplates(text);
    for (const error of errors) this.add(path, error.message, { offset: error.offset });
    return refs;
  }
}

interface NodeInfo {
  index: number;
  id: string;
  raw: Record<string, unknown>;
  needs: { id: string; index: number }[];
}

/**
 * The roles `when:` gives the nodes of a flow: `handles(n)`, whether `n` has
 * `when: on_failure` or `always` or comes after such a node (through needs),
 * so it may run after the run failed and read `run.failed`; `watches(w, n)`,
 * whether `w` is a watcher (such a node without needs: it waits for the rest
 * of the run) and `n` one it waits for (neither `on_failure`/`always` nor
 * after a watcher), so that it may read `nodes.<n>`.
 */
function whenRoles(byId: ReadonlyMap<string, NodeInfo>): {
  handles(node: NodeInfo): boolean;
  watches(watcher: NodeInfo, node: NodeInfo): boolean;
} {
  const isWatcher = (node: NodeInfo) => whenOf(node) !== "on_success" && node.needs.length === 0;
  const handles = after(byId, (node) => whenOf(node) !== "on_success");
  const afterWatcher = after(byId, isWatcher);
  const watches = (watcher: NodeInfo, node: NodeInfo) =>
    isWatcher(watcher) && whenOf(node) === "on_success" && !afterWatcher(node);
  return { handles, watches };
}

/** Whether a node is `source` or comes after one through needs (memoized). */
function after(
  byId: ReadonlyMap<string, NodeInfo>,
  source: (node: NodeInfo) => boolean,
): (node: NodeInfo) => boolean {
  const known = new Map<string, boolean>();
  return (root: NodeInfo): boolean => {
    // Iterative, so that a long chain cannot overflow the stack; a cycle (reported elsewhere) ends.
    const stack = [root];
    const open = new Set<string>();
    while (stack.length > 0) {
      const node = stack[stack.length - 1];
      if (known.has(node.id)) {
        stack.pop();
        continue;
      }
      if (source(node)) {
        known.set(node.id, true);
        stack.pop();
        continue;
      }
      const pending = open.has(node.id)
        ? []
        : node.needs.map((n) => byId.get(n.id)!).filter((n) => !known.has(n.id));
      if (pending.length > 0) {
        open.add(node.id);
        stack.push(...pending);
        continue;
      }
      known.set(node.id, node.needs.some((n) => known.get(n.id) === true));
      stack.pop();
    }
    return known.get(root.id)!;
  };
}

/** A node's `when:` (`on_success` unless it says another valid value). */
function whenOf(node: NodeInfo): string {
  const when = node.raw.when;
  return when === "on_failure" || when === "always" ? when : "on_success";
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

type ZodIssue = z.core.$ZodIssue;

/**
 * A union's issues are those of the option the value has the shape of: a
 * `schedule:` mapping with a bad field is reported at that field
 * (`schedule.abandoned: expected one of "skip", "rerun"`), not as "Invalid
 * input" for the whole union. Issues of other unions are kept as they are.
 */
function matchingOption(issues: readonly ZodIssue[]): ZodIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== "invalid_union") return [issue];
    const shaped = issue.errors.filter((option) =>
      !option.some((inner) => inner.path.length === 0 && inner.code === "invalid_type")
    );
    if (shaped.length !== 1) return [issue];
    return matchingOption(
      shaped[0].map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }) as ZodIssue),
    );
  });
}

/**
 * Why `type`, a bare name, is not a node type: the closest known name, the
 * built-ins, the program's own node types (the known names that are not
 * built-ins: `openRuntime`'s `nodeTypes`). Where there are none (the CLI) and
 * nothing is close, a name may be a program's node type: said so.
 */
function unknownTypeMessage(type: string, known: ReadonlySet<string>): string {
  const suggestion = didYouMean(type, known);
  const builtins = [...known].filter((name) => builtinNodes.has(name));
  const own = [...known].filter((name) => !builtinNodes.has(name));
  return `unknown node type "${type}"${suggestion}; use a built-in (${builtins.join(", ")})${
    own.length === 0 ? "" : `, a node type of this program (${own.join(", ")})`
  } or a module path like ./nodes/thing.ts${
    own.length === 0 && suggestion === ""
      ? ` (a node type a program defines with openRuntime({ nodeTypes }) is known only to that program's runtime)`
      : ""
  }`;
}

/**
 * The names other workflow tools give a flow's and a node's fields (GitHub Actions' `steps`,
 * `uses`, `depends_on`…), and Flowstate's for them: a newcomer's first guesses.
 */
const FIELD_SYNONYMS: Record<"flow" | "node", Record<string, string>> = {
  flow: { name: "id", steps: "nodes", jobs: "nodes", tasks: "nodes", input: "inputs" },
  node: {
    name: "id",
    uses: "type",
    run: "type",
    depends_on: "needs",
    dependsOn: "needs",
    depends: "needs",
    after: "needs",
    requires: "needs",
    retries: "retry",
    condition: "if",
    args: "with",
    params: "with",
    options: "with",
    inputs: "with",
    input: "with",
  },
};

/** For a flow or node id of characters ids do not take (`My Flow`), the id to write instead. */
function idHint(path: readonly (string | number)[], value: unknown): string {
  const flow = path.length === 1 && path[0] === "id";
  const node = path.length === 3 && path[0] === "nodes" && path[2] === "id";
  if ((!flow && !node) || typeof value !== "string") return "";
  const id = (flow ? value.toLowerCase() : value).replace(/[^A-Za-z0-9_-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return id === "" ? "" : `; write it as ${JSON.stringify(id)}`;
}

/**
 * How to write an input declared the way it reads (`name: string`, `inputs: [name]`), after
 * "expected a mapping, got …"; `""` for any other value.
 */
function inputShapeHint(path: readonly (string | number)[], value: unknown): string {
  if (path.length === 2 && path[0] === "inputs" && typeof value === "string") {
    const type = (INPUT_TYPES as readonly string[]).includes(value) ? value : "string";
    return `: declare it as ${path[1]}: { type: ${type} } (add default: … to make it optional)`;
  }
  if (path.length === 1 && path[0] === "inputs" && Array.isArray(value)) {
    const name = typeof value[0] === "string" ? value[0] : "name";
    return `: declare each input by name, like ${name}: { type: string }`;
  }
  return "";
}

/** ` (did you mean "x"?)` for an unknown field at `path`: a near spelling, or Flowstate's name. */
function fieldHint(key: string, path: readonly (string | number)[]): string {
  const near = didYouMean(key, knownFields(path));
  if (near !== "") return near;
  if (key === "required" && path.length === 2 && path[0] === "inputs") {
    return " (an input without a default is required, one with a default is optional: " +
      "leave required out)";
  }
  const level = path.length === 0
    ? "flow"
    : path.length === 2 && path[0] === "nodes" && typeof path[1] === "number"
    ? "node"
    : undefined;
  const name = level === undefined
    ? undefined
    : Object.hasOwn(FIELD_SYNONYMS[level], key)
    ? FIELD_SYNONYMS[level][key]
    : undefined;
  return name === undefined ? "" : ` (did you mean "${name}"?)`;
}
