/**
 * A flow's shape as a graph: its nodes (id, type, `when:`, `if:`, `forEach`,
 * sub-flow) and edges (`needs`, and the wait of a node with no `needs` but
 * `when: on_failure`/`always` for the end of the rest of the run), and that
 * graph as Mermaid or Graphviz DOT text. `flowstate graph` prints it; the
 * server answers it beside a flow version's definition for the inspector,
 * which lays it out itself (`src/serve/ui/graph.js`).
 *
 * @module
 */
import type { FlowDefinition, NodeSpec, NodeWhen } from "./types.ts";

/** One node of a {@linkcode FlowGraph}. */
export interface FlowGraphNode {
  /** The node's id. */
  id: string;
  /** Its type as written (`state.increment`, `./nodes/x.ts`, `flow`). */
  type: string;
  /** Its `when:` (`on_success` when not written). */
  when: NodeWhen;
  /** Its `if:` template, or `null`. */
  if: string | null;
  /** Its `forEach` list as text (`${{ nodes.list.output }}`, `3 items`), or `null`. */
  forEach: string | null;
  /** For `type: flow`: the sub-flow's file (or `inline: <id>`), else `null`. */
  subFlow: string | null;
}

/**
 * One edge of a {@linkcode FlowGraph}: `needs` (`to` needs `from`), or `end`
 * (`to` has no `needs` and `when: on_failure`/`always`: it waits for the end
 * of the rest of the run, drawn from each last node of that rest).
 */
export interface FlowGraphEdge {
  /** The node that ends first. */
  from: string;
  /** The node that waits for it. */
  to: string;
  /** Why it waits. */
  kind: "needs" | "end";
}

/** A flow's nodes, in the definition's order, and its edges. */
export interface FlowGraph {
  /** The nodes, in the definition's order. */
  nodes: FlowGraphNode[];
  /** The edges: each node's `needs` in order, then the `end` edges. */
  edges: FlowGraphEdge[];
}

/**
 * The graph of a (valid) flow definition.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flowGraph } from "./graph.ts";
 *
 * const graph = flowGraph({
 *   id: "f",
 *   nodes: [
 *     { id: "a", type: "log", with: { message: "a" } },
 *     { id: "b", type: "log", needs: ["a"], with: { message: "b" } },
 *     { id: "tidy", type: "log", when: "always", with: { message: "done" } },
 *   ],
 * });
 * assert.deepEqual(graph.edges, [
 *   { from: "a", to: "b", kind: "needs" },
 *   { from: "b", to: "tidy", kind: "end" },
 * ]);
 * ```
 */
export function flowGraph(definition: Partial<FlowDefinition>): FlowGraph {
  // A stored definition is read as it is: what is not a node, or not a list of ids, is left out.
  const list: unknown = (definition as { nodes?: unknown } | null)?.nodes;
  const specs: readonly NodeSpec[] = (Array.isArray(list) ? list : [])
    .filter((n): n is NodeSpec =>
      n !== null && typeof n === "object" && typeof n.id === "string" && typeof n.type === "string"
    )
    .map((n) => ({
      ...n,
      needs: Array.isArray(n.needs) ? n.needs.filter((x) => typeof x === "string") : [],
    }));
  const nodes = specs.map(graphNode);
  const edges: FlowGraphEdge[] = [];
  for (const spec of specs) {
    for (const need of spec.needs ?? []) edges.push({ from: need, to: spec.id, kind: "needs" });
  }
  // A node with no needs and when: on_failure/always waits for the main part: every
  // on_success node not after such a node (the executor's rule, src/flow/_when.ts): an edge
  // from each last node of the main part.
  const watchers = specs.filter((s) =>
    (s.needs ?? []).length === 0 && (s.when ?? "on_success") !== "on_success"
  )
    .map((s) => s.id);
  if (watchers.length > 0) {
    const after = new Set(watchers);
    for (let grew = true; grew;) {
      grew = false;
      for (const spec of specs) {
        if (!after.has(spec.id) && (spec.needs ?? []).some((n) => after.has(n))) {
          after.add(spec.id);
          grew = true;
        }
      }
    }
    const rest = specs.filter((s) => !after.has(s.id) && (s.when ?? "on_success") === "on_success");
    const needed = new Set(rest.flatMap((s) => s.needs ?? []));
    const sinks = rest.filter((s) => !needed.has(s.id)).map((s) => s.id);
    for (const to of watchers) for (const from of sinks) edges.push({ from, to, kind: "end" });
  }
  return { nodes, edges };
}

function graphNode(spec: NodeSpec): FlowGraphNode {
  const forEach = spec.forEach === undefined ? null : listText(
    typeof spec.forEach === "object" && !Array.isArray(spec.forEach) && spec.forEach !== null
      ? spec.forEach.items
      : spec.forEach,
  );
  const flow = spec.type === "flow" ? spec.with?.flow : undefined;
  return {
    id: spec.id,
    type: spec.type,
    when: spec.when ?? "on_success",
    if: spec.if ?? null,
    forEach,
    subFlow: typeof flow === "string"
      ? flow
      : flow !== null && typeof flow === "object"
      ? `inline: ${String((flow as { id?: unknown }).id ?? "flow")}`
      : null,
  };
}

function listText(items: unknown): string {
  return Array.isArray(items)
    ? `${items.length} item${items.length === 1 ? "" : "s"}`
    : String(items);
}

/**
 * A node's outcome in a run, for {@linkcode graphMermaid} and
 * {@linkcode graphDot}: a recorded node status, or `running` or `not run`.
 */
export type GraphStatus =
  | "succeeded"
  | "failed"
  | "skipped"
  | "cancelled"
  | "timed-out"
  | "running"
  | "not run";

/** The statuses, their class names and colours (fill, stroke), in the legend's order. */
const STATUS_STYLE: [GraphStatus, string, string, string][] = [
  ["succeeded", "succeeded", "#e3f4ea", "#1f8a4c"],
  ["failed", "failed", "#fbe7e5", "#c8342b"],
  ["timed-out", "timedout", "#fdf0dc", "#b86a00"],
  ["running", "running", "#e3edfc", "#2f6fd3"],
  ["cancelled", "cancelled", "#eceef2", "#7b8394"],
  ["skipped", "skipped", "#f4f5f7", "#9aa1af"],
  ["not run", "notrun", "#ffffff", "#9aa1af"],
];

/** Options of {@linkcode graphMermaid} and {@linkcode graphDot}. */
export interface GraphTextOptions {
  /** A name for the graph (the flow id): DOT's graph name, Mermaid's title comment. */
  title?: string;
  /** Each node's outcome in a run: the nodes are coloured by it, with a legend. */
  statuses?: Record<string, GraphStatus>;
  /** What the statuses are of (`run <id>`), for the legend. */
  statusesOf?: string;
}

/** The lines of a node's label: id, type (or sub-flow), then its marks. */
function labelLines(node: FlowGraphNode, status?: GraphStatus): string[] {
  const lines = [node.id, node.subFlow === null ? node.type : `flow: ${node.subFlow}`];
  if (node.when !== "on_success") lines.push(`when: ${node.when}`);
  if (node.if !== null) lines.push(`if: ${clip(node.if)}`);
  if (node.forEach !== null) lines.push(`× ${clip(node.forEach)}`);
  if (status !== undefined) lines.push(`[${status}]`);
  return lines;
}

function clip(text: string, max = 40): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * Text for a Mermaid quoted label: its quotes, `#`, `%`, `<`, `>` and `&` as entity codes (a
 * `%%{…}%%` anywhere in the text is a directive to Mermaid, whatever the quotes), a line
 * break as a space.
 */
function mermaidText(text: string): string {
  return text.replace(/[\r\n]+/g, " ").replace(/[#%"<>&]/g, (c) => `#${c.charCodeAt(0)};`);
}

/**
 * The graph as a Mermaid flowchart (GitHub renders it in a `mermaid` code block):
 * node `n<i>` is the i-th node (ids stay in the labels, as any text may), `-->` a `needs`,
 * `-.->` an edge into a node of `when: on_failure`/`always` (an `end` edge too); classes
 * mark `when:`, `if:` and `forEach` nodes, and with `statuses` each node's outcome.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flowGraph, graphMermaid } from "./graph.ts";
 *
 * const graph = flowGraph({
 *   id: "f",
 *   nodes: [
 *     { id: "a", type: "log", with: { message: "a" } },
 *     { id: "b", type: "log", needs: ["a"], with: { message: "b" } },
 *   ],
 * });
 * assert.equal(
 *   graphMermaid(graph),
 *   'flowchart TD\n  n0["a<br/>log"]\n  n1["b<br/>log"]\n  n0 --> n1\n',
 * );
 * ```
 */
export function graphMermaid(graph: FlowGraph, options: GraphTextOptions = {}): string {
  const out = ["flowchart TD"];
  if (options.title !== undefined) out.push(`  %% flow: ${oneLine(options.title)}`);
  const index = new Map(graph.nodes.map((n, i) => [n.id, `n${i}`]));
  const classes = new Map<string, string[]>();
  const mark = (cls: string, id: string) => {
    const list = classes.get(cls) ?? [];
    list.push(id);
    classes.set(cls, list);
  };
  for (const node of graph.nodes) {
    const id = index.get(node.id)!;
    const status = options.statuses?.[node.id];
    const label = labelLines(node, status).map(mermaidText).join("<br/>");
    // A conditional node is a hexagon, a sub-flow a subroutine box, the others rectangles.
    const [open, close] = node.if !== null
      ? ["{{", "}}"]
      : node.subFlow !== null
      ? ["[[", "]]"]
      : ["[", "]"];
    out.push(`  ${id}${open}"${label}"${close}`);
    if (node.when !== "on_success") mark(node.when === "always" ? "always" : "onFailure", id);
    if (node.forEach !== null) mark("forEach", id);
    if (status !== undefined) mark(statusClass(status), id);
  }
  const when = new Map(graph.nodes.map((n) => [n.id, n.when]));
  for (const edge of graph.edges) {
    const from = index.get(edge.from), to = index.get(edge.to);
    if (from === undefined || to === undefined) continue;
    const dashed = edge.kind === "end" || when.get(edge.to) !== "on_success";
    out.push(`  ${from} ${dashed ? "-.->" : "-->"}${edge.kind === "end" ? "|end|" : ""} ${to}`);
  }
  if (classes.size > 0) {
    const defs: [string, string][] = [
      ["onFailure", "stroke-dasharray:5 3"],
      ["always", "stroke-dasharray:5 3"],
      ["forEach", "stroke-width:3px"],
    ];
    if (options.statuses !== undefined) {
      out.push(
        `  %% legend (${oneLine(options.statusesOf ?? "run")}): ${
          STATUS_STYLE.map(([s, , fill, stroke]) => `${s} ${fill}/${stroke}`).join(", ")
        }`,
      );
      for (const [, cls, fill, stroke] of STATUS_STYLE) {
        defs.push([cls, `fill:${fill},stroke:${stroke},color:#1d2330`]);
      }
    }
    for (const [cls, style] of defs) {
      if (classes.has(cls)) out.push(`  classDef ${cls} ${style}`);
    }
    for (const [cls, ids] of classes) out.push(`  class ${ids.join(",")} ${cls}`);
  }
  return out.join("\n") + "\n";
}

function statusClass(status: GraphStatus): string {
  return STATUS_STYLE.find(([s]) => s === status)?.[1] ?? "notrun";
}

/** A comment's text on one line (a newline would end the comment). */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ");
}

/** A DOT quoted string: backslashes and quotes escaped, line breaks as `\n`. */
function dotString(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\r?\n/g, "\\n")}"`;
}

/**
 * The graph as Graphviz DOT (`dot -Tsvg`): boxes labelled with id and type,
 * `needs` as edges, edges into `when: on_failure`/`always` nodes (and `end`
 * edges) dashed, `if:` nodes as hexagons, `forEach` nodes double-bordered, with
 * `statuses` each node filled by its outcome and a legend comment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flowGraph, graphDot } from "./graph.ts";
 *
 * const graph = flowGraph({
 *   id: "f",
 *   nodes: [{ id: "a", type: "log", with: { message: "a" } }],
 * });
 * assert.match(graphDot(graph, { title: "f" }), /^digraph "f" \{/);
 * ```
 */
export function graphDot(graph: FlowGraph, options: GraphTextOptions = {}): string {
  const out = [`digraph ${dotString(options.title ?? "flow")} {`];
  out.push("  rankdir=TB;");
  out.push(
    '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
  );
  if (options.statuses !== undefined) {
    out.push(
      `  // legend (${oneLine(options.statusesOf ?? "run")}): ${
        STATUS_STYLE.map(([s, , fill, stroke]) => `${s} ${fill}/${stroke}`).join(", ")
      }`,
    );
  }
  for (const node of graph.nodes) {
    const status = options.statuses?.[node.id];
    const attrs = [`label=${dotString(labelLines(node, status).join("\n"))}`];
    if (node.if !== null) attrs.push("shape=hexagon");
    const styles = ["rounded", "filled"];
    if (node.when !== "on_success") styles.push("dashed");
    if (node.forEach !== null) attrs.push("peripheries=2");
    attrs.push(`style=${dotString(styles.join(","))}`);
    if (status !== undefined) {
      const [, , fill, stroke] = STATUS_STYLE.find(([s]) => s === status)!;
      attrs.push(`fillcolor=${dotString(fill)}`, `color=${dotString(stroke)}`);
    }
    out.push(`  ${dotString(node.id)} [${attrs.join(", ")}];`);
  }
  const when = new Map(graph.nodes.map((n) => [n.id, n.when]));
  for (const edge of graph.edges) {
    const attrs: string[] = [];
    if (edge.kind === "end" || when.get(edge.to) !== "on_success") attrs.push("style=dashed");
    if (edge.kind === "end") attrs.push('label="end"');
    out.push(
      `  ${dotString(edge.from)} -> ${dotString(edge.to)}${
        attrs.length > 0 ? ` [${attrs.join(", ")}]` : ""
      };`,
    );
  }
  out.push("}");
  return out.join("\n") + "\n";
}
