// A flow's graph as SVG: the layout (layers by longest path from the sources,
// long edges through placeholder points, order within a layer by the barycenter
// of the neighbours, a few sweeps down and up) and its drawing, with each
// node's status in a run (a class and its word: not colour alone).
// The graph comes from the API (`graph` of a version or a run's definition,
// built by src/flow/graph.ts).

import { svg } from "./dom.js";

/** Sizes of the layout, in px. */
export const GRAPH_SIZES = {
  /** A node's box. */
  width: 184,
  height: 58,
  /** Between two boxes (or an edge's point) of one layer. */
  gapX: 24,
  /** Between two layers. */
  gapY: 46,
  /** The width an edge passing through a layer takes there. */
  through: 14,
  /** Around the drawing. */
  pad: 12,
};

/** Down-then-up sweeps of the barycenter ordering. */
const SWEEPS = 4;

/**
 * The most points all edges together pass through: an edge spanning k layers takes k - 1, so
 * a long chain whose every node also needs the first would take the square of its length
 * (a 1,000-node one, half a million points: seconds of layout, a frozen page). The shortest
 * edges are routed first; the longer ones that no longer fit are drawn straight.
 */
export const MAX_THROUGH = 5000;

/**
 * Where each node's box and each edge go. `graph` is `{ nodes: [{ id }], edges: [{ from, to,
 * kind }] }` (edges naming an unknown node, or a node itself, are left out). Returns
 * `{ width, height, nodes: [{ id, x, y, width, height, layer }], edges: [{ from, to, kind,
 * points: [[x, y]…] }] }`, the nodes in the graph's order: the same graph gives the same
 * layout.
 */
export function layoutGraph(graph, sizes = GRAPH_SIZES) {
  const s = { ...GRAPH_SIZES, ...sizes };
  const ids = graph.nodes.map((n) => n.id);
  const index = new Map(ids.map((id, i) => [id, i]));
  const edges = (graph.edges ?? []).filter((e) =>
    index.has(e.from) && index.has(e.to) && e.from !== e.to
  );
  const parents = ids.map(() => []);
  for (const e of edges) parents[index.get(e.to)].push(index.get(e.from));

  // Layers: the longest path from a source (Kahn's order; a node on a cycle, which a valid flow
  // has not, goes below the others).
  const layer = new Array(ids.length).fill(0);
  const left = parents.map((p) => p.length);
  const children = ids.map(() => []);
  for (const e of edges) children[index.get(e.from)].push(index.get(e.to));
  const queue = [];
  for (let i = 0; i < ids.length; i++) if (left[i] === 0) queue.push(i);
  const done = new Uint8Array(ids.length);
  for (let head = 0; head < queue.length; head++) {
    const i = queue[head];
    done[i] = 1;
    for (const c of children[i]) {
      layer[c] = Math.max(layer[c], layer[i] + 1);
      if (--left[c] === 0) queue.push(c);
    }
  }
  const deepest = layer.reduce((m, l) => Math.max(m, l), 0);
  for (let i = 0; i < ids.length; i++) if (!done[i]) layer[i] = deepest + 1;

  // Items of each layer: the nodes, and a point per layer an edge passes through.
  const layers = [];
  const items = [];
  const add = (item) => {
    items.push(item);
    (layers[item.layer] ??= []).push(item);
    return item;
  };
  const nodeItems = ids.map((_id, i) =>
    add({ node: i, layer: layer[i], width: s.width, ups: [], downs: [] })
  );
  // Which edges pass through the layers between their ends (the shortest first, within
  // MAX_THROUGH points in all); the others go straight.
  const spans = edges.map((e) =>
    Math.max(0, layer[index.get(e.to)] - layer[index.get(e.from)] - 1)
  );
  const routed = new Set();
  let through = 0;
  for (const k of spans.map((_, k) => k).sort((a, b) => spans[a] - spans[b] || a - b)) {
    if (through + spans[k] > MAX_THROUGH) break;
    through += spans[k];
    routed.add(k);
  }
  const chains = edges.map((e, k) => {
    const from = nodeItems[index.get(e.from)], to = nodeItems[index.get(e.to)];
    const chain = [from];
    for (let l = from.layer + 1; routed.has(k) && l < to.layer; l++) {
      chain.push(add({ node: -1, layer: l, width: s.through, ups: [], downs: [] }));
    }
    chain.push(to);
    for (let k = 1; k < chain.length; k++) {
      chain[k].ups.push(chain[k - 1]);
      chain[k - 1].downs.push(chain[k]);
    }
    return chain;
  });
  for (let l = 0; l < layers.length; l++) layers[l] ??= [];
  const position = (list) => list.forEach((item, k) => (item.pos = k));
  layers.forEach(position);

  // Order: by the mean position of the neighbours in the layer swept from (an item with none
  // keeps its place); a stable sort, so ties keep the order before.
  const reorder = (list, key) => {
    const keyed = list.map((item) => {
      const near = key(item);
      return {
        item,
        k: near.length === 0 ? item.pos : near.reduce((a, n) => a + n.pos, 0) / near.length,
      };
    });
    keyed.sort((a, b) => a.k - b.k || a.item.pos - b.item.pos);
    const sorted = keyed.map((x) => x.item);
    position(sorted);
    return sorted;
  };
  for (let sweep = 0; sweep < SWEEPS; sweep++) {
    for (let l = 1; l < layers.length; l++) layers[l] = reorder(layers[l], (i) => i.ups);
    for (let l = layers.length - 2; l >= 0; l--) layers[l] = reorder(layers[l], (i) => i.downs);
  }

  // x: the first layer packed; then, sweeping down, up and down again, each item as near the
  // mean centre of its neighbours in the layer swept from as its layer's order allows: the
  // mean of a left-to-right and a right-to-left greedy placement (each keeps the gaps, so
  // their mean does too). Then everything shifted so the leftmost starts at pad.
  for (const list of layers) {
    let right = -s.gapX;
    for (const item of list) {
      item.x = right + s.gapX;
      right = item.x + item.width;
    }
  }
  const centre = (item) => item.x + item.width / 2;
  const place = (list, near) => {
    const wanted = list.map((item) => {
      const n = near(item);
      return n.length === 0
        ? item.x
        : n.reduce((a, u) => a + centre(u), 0) / n.length - item.width / 2;
    });
    const fromLeft = [];
    for (let k = 0; k < list.length; k++) {
      fromLeft[k] = k === 0
        ? wanted[k]
        : Math.max(wanted[k], fromLeft[k - 1] + list[k - 1].width + s.gapX);
    }
    const fromRight = [];
    for (let k = list.length - 1; k >= 0; k--) {
      fromRight[k] = k === list.length - 1
        ? wanted[k]
        : Math.min(wanted[k], fromRight[k + 1] - list[k].width - s.gapX);
    }
    list.forEach((item, k) => (item.x = (fromLeft[k] + fromRight[k]) / 2));
  };
  for (let sweep = 0; sweep < 2; sweep++) {
    for (let l = 1; l < layers.length; l++) place(layers[l], (i) => i.ups);
    for (let l = layers.length - 2; l >= 0; l--) place(layers[l], (i) => i.downs);
  }
  for (let l = 1; l < layers.length; l++) place(layers[l], (i) => i.ups);
  const minX = items.reduce((m, i) => Math.min(m, i.x), Infinity);
  let width = s.pad * 2;
  for (const item of items) {
    item.x += s.pad - minX;
    item.y = s.pad + item.layer * (s.height + s.gapY);
    width = Math.max(width, item.x + item.width + s.pad);
  }
  const height = s.pad * 2 + layers.length * s.height + Math.max(0, layers.length - 1) * s.gapY;

  return {
    width,
    height,
    nodes: nodeItems.map((item, i) => ({
      id: ids[i],
      x: item.x,
      y: item.y,
      width: s.width,
      height: s.height,
      layer: item.layer,
    })),
    edges: edges.map((e, k) => {
      const chain = chains[k];
      const points = [];
      const first = chain[0], last = chain[chain.length - 1];
      points.push([first.x + first.width / 2, first.y + s.height]);
      for (const through of chain.slice(1, -1)) {
        const x = through.x + through.width / 2;
        points.push([x, through.y], [x, through.y + s.height]);
      }
      points.push([last.x + last.width / 2, last.y]);
      return { from: e.from, to: e.to, kind: e.kind, points };
    }),
  };
}

/** The longest text of a line in a box, in characters (12px monospace and sans). */
const LINE_CHARS = 24;

function clip(text) {
  return text.length > LINE_CHARS ? `${text.slice(0, LINE_CHARS - 1)}…` : text;
}

/** What marks a node: its `when:`, `if:` and `forEach` in words. */
export function nodeMarks(node) {
  const marks = [];
  if (node.when && node.when !== "on_success") marks.push(`when: ${node.when}`);
  if (node.if) marks.push("if");
  if (node.forEach) marks.push(`× ${node.forEach}`);
  return marks;
}

/** The full description of a node, for its tooltip. */
function nodeTitle(node, status) {
  return [
    node.id,
    node.subFlow ? `type: flow (${node.subFlow})` : `type: ${node.type}`,
    node.when && node.when !== "on_success" ? `when: ${node.when}` : null,
    node.if ? `if: ${node.if}` : null,
    node.forEach ? `forEach: ${node.forEach}` : null,
    status ? `status: ${status}` : null,
  ].filter(Boolean).join("\n");
}

let drawn = 0;

/**
 * The graph drawn as an `<svg>` in a scrolling box. With `statuses` (`{ [id]: status }`, or
 * `{}`), each node shows its status (a class, its word, its tooltip); `setStatus(id,
 * status)` redraws one node's (its class and text only). With `onSelect(id)`, a box is a
 * button (click, Enter or Space). Returns `{ el, layout, setStatus }`.
 */
export function graphView(graph, { statuses, onSelect } = {}) {
  const layout = layoutGraph(graph);
  const marker = `graph-arrow-${++drawn}`;
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const dashed = (e) => e.kind === "end" || (byId.get(e.to)?.when ?? "on_success") !== "on_success";
  const edgePaths = layout.edges.map((e) => {
    const [start, ...rest] = e.points;
    let d = `M${start[0]},${start[1]}`;
    let prev = start;
    for (const p of rest) {
      const mid = (prev[1] + p[1]) / 2;
      d += p[0] === prev[0]
        ? ` L${p[0]},${p[1]}`
        : ` C${prev[0]},${mid} ${p[0]},${mid} ${p[0]},${p[1]}`;
      prev = p;
    }
    return svg(
      "path",
      {
        class: `graph-edge${
          e.kind === "end" ? " graph-edge-end" : dashed(e) ? " graph-edge-dashed" : ""
        }`,
        d,
        "marker-end": `url(#${marker})`,
        "data-from": e.from,
        "data-to": e.to,
        "data-kind": e.kind,
      },
      svg(
        "title",
        {},
        e.kind === "end"
          ? `${e.to} waits for the end of the rest of the run (${e.from} is one of its last nodes)`
          : `${e.to} needs ${e.from}`,
      ),
    );
  });
  const boxes = new Map();
  const nodeEls = layout.nodes.map((box) => {
    const node = byId.get(box.id);
    const status = statuses ? statuses[box.id] ?? "pending" : null;
    const title = svg("title", {}, nodeTitle(node, status));
    const third = svg("text", { class: "graph-mark", x: box.x + 10, y: box.y + 49 });
    const g = svg(
      "g",
      {
        class: nodeClass(node, status),
        "data-node": box.id,
        "data-status": status,
        tabindex: 0,
        role: onSelect ? "button" : "img",
        "aria-label": nodeTitle(node, status).replace(/\n/g, ", "),
      },
      title,
      svg("rect", { x: box.x, y: box.y, width: box.width, height: box.height, rx: 6 }),
      svg("text", { class: "graph-id", x: box.x + 10, y: box.y + 18 }, clip(node.id)),
      svg(
        "text",
        { class: "graph-type", x: box.x + 10, y: box.y + 34 },
        clip(node.subFlow ? `flow: ${node.subFlow}` : node.type),
      ),
      third,
    );
    if (onSelect) {
      g.addEventListener("click", () => onSelect(box.id));
      g.addEventListener("keydown", (event) => {
        if (event.key !== "Enter" && event.key !== " ") return;
        event.preventDefault();
        onSelect(box.id);
      });
    }
    boxes.set(box.id, { g, title, third, node, rect: box, bar: null, progress: "" });
    setThird(third, node, status);
    return g;
  });
  const el = svg(
    "svg",
    {
      class: "flow-graph",
      width: layout.width,
      height: layout.height,
      viewBox: `0 0 ${layout.width} ${layout.height}`,
      role: "group",
      "aria-label": `flow graph: ${graph.nodes.length} nodes, ${graph.edges.length} edges`,
    },
    svg(
      "defs",
      {},
      svg(
        "marker",
        {
          id: marker,
          viewBox: "0 0 10 10",
          refX: 9,
          refY: 5,
          markerWidth: 7,
          markerHeight: 7,
          orient: "auto-start-reverse",
        },
        svg("path", { class: "graph-arrow", d: "M0,0 L10,5 L0,10 z" }),
      ),
    ),
    svg("g", { class: "graph-edges" }, edgePaths),
    svg("g", { class: "graph-nodes" }, nodeEls),
  );
  return {
    el,
    layout,
    setStatus(id, status, progress = null) {
      const box = boxes.get(id);
      if (!box) return;
      const said = progress === null ? "" : `${progress.done}/${progress.count}/${progress.failed}`;
      if (box.g.getAttribute("data-status") === status && (box.progress ?? "") === said) return;
      box.progress = said;
      box.g.setAttribute("class", nodeClass(box.node, status));
      box.g.setAttribute("data-status", status);
      const title = nodeTitle(box.node, status) +
        (progress === null ? "" : `\n${eachText(progress)}`);
      box.title.textContent = title;
      box.g.setAttribute("aria-label", title.replace(/\n/g, ", "));
      setThird(box.third, box.node, status, progress);
      setBar(box, progress);
    },
  };
}

function nodeClass(node, status) {
  return [
    "graph-node",
    node.when && node.when !== "on_success" ? "graph-node-when" : null,
    node.if ? "graph-node-if" : null,
    node.forEach ? "graph-node-each" : null,
    status ? `status-${String(status).replace(/[^a-z-]/g, "-")}` : null,
  ].filter(Boolean).join(" ");
}

/** The third line: the status (in a run) then the marks. */
function setThird(el, node, status, progress = null) {
  el.textContent = clip(
    (progress === null ? [status, ...nodeMarks(node)] : [
      status,
      `${progress.done.toLocaleString("en-US")}/${progress.count.toLocaleString("en-US")}`,
      progress.failed > 0 ? `${progress.failed.toLocaleString("en-US")} failed` : null,
    ]).filter(Boolean).join(" · "),
  );
}

/** A running forEach node's progress in a box's tooltip: `312 of 1000 items done, 2 failed`. */
function eachText(p) {
  return `${p.done} of ${p.count} ${p.count === 1 ? "item" : "items"} done${
    p.failed > 0 ? `, ${p.failed} failed` : ""
  }`;
}

/** A running forEach node's bar along its box's foot (gone once it ended). */
function setBar(box, progress) {
  if (progress === null) {
    box.bar?.remove();
    box.bar = null;
    return;
  }
  const { x, y, width, height } = box.rect;
  if (!box.bar) {
    box.bar = svg(
      "g",
      { class: "graph-progress" },
      svg("rect", {
        class: "graph-progress-track",
        x: x + 6,
        y: y + height - 5,
        height: 2,
        width: width - 12,
        rx: 1,
      }),
      svg("rect", { class: "graph-progress-ok", x: x + 6, y: y + height - 5, height: 2, rx: 1 }),
      svg("rect", { class: "graph-progress-failed", y: y + height - 5, height: 2 }),
    );
    box.g.appendChild(box.bar);
  }
  const span = width - 12;
  const part = (n) => (progress.count === 0 ? 1 : Math.min(1, n / progress.count)) * span;
  const [, ok, failed] = box.bar.children;
  ok.setAttribute("width", String(part(progress.succeeded)));
  failed.setAttribute("x", String(x + 6 + part(progress.succeeded)));
  failed.setAttribute("width", String(part(progress.failed)));
}
