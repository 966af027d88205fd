// The inspector's graph layout (graph.js) without a browser: layers follow the edges, boxes
// never overlap, the same graph gives the same layout; on random DAGs and on flows' graphs.
import assert from "node:assert/strict";
import fc from "fast-check";
import { GRAPH_SIZES, layoutGraph as layoutJs, MAX_THROUGH } from "./graph.js";
import { flowGraph } from "../../flow/graph.ts";

type Graph = {
  nodes: { id: string }[];
  edges: { from: string; to: string; kind: string }[];
};
type Box = { id: string; x: number; y: number; width: number; height: number; layer: number };
type Layout = {
  width: number;
  height: number;
  nodes: Box[];
  edges: { from: string; to: string; kind: string; points: [number, number][] }[];
};
/** graph.js's layout, typed (the module is plain JS). */
const layoutGraph = layoutJs as unknown as (graph: Graph) => Layout;

/** A random DAG: an edge only from a node to a later one. */
const dags = fc.integer({ min: 1, max: 40 }).chain((n) =>
  fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: n * 2 }).map((pairs): Graph => {
    const edges = new Map<string, [number, number]>();
    for (const [a, b] of pairs) {
      if (a !== b) {
        edges.set(`${Math.min(a, b)}>${Math.max(a, b)}`, [Math.min(a, b), Math.max(a, b)]);
      }
    }
    return {
      nodes: Array.from({ length: n }, (_, i) => ({ id: `n${i}` })),
      edges: [...edges.values()].map(([a, b]) => ({ from: `n${a}`, to: `n${b}`, kind: "needs" })),
    };
  })
);

function assertLayered(graph: Graph, layout: Layout): void {
  const layer = new Map(layout.nodes.map((n) => [n.id, n.layer]));
  for (const e of graph.edges) {
    assert.ok(
      layer.get(e.from)! < layer.get(e.to)!,
      `${e.from} (layer ${layer.get(e.from)}) -> ${e.to} (layer ${layer.get(e.to)})`,
    );
  }
  // Longest path: a node with parents sits right below its deepest one; one without, on top.
  for (const n of layout.nodes) {
    const parents = graph.edges.filter((e) => e.to === n.id).map((e) => layer.get(e.from)!);
    assert.equal(n.layer, parents.length === 0 ? 0 : Math.max(...parents) + 1, n.id);
  }
}

function assertNoOverlap(layout: Layout): void {
  const boxes = layout.nodes;
  for (let i = 0; i < boxes.length; i++) {
    const a = boxes[i];
    assert.ok(a.x >= 0 && a.y >= 0, `${a.id} inside`);
    assert.ok(a.x + a.width <= layout.width && a.y + a.height <= layout.height, `${a.id} inside`);
    for (let j = i + 1; j < boxes.length; j++) {
      const b = boxes[j];
      const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y ||
        b.y + b.height <= a.y;
      assert.ok(apart, `${a.id} ${JSON.stringify(a)} overlaps ${b.id} ${JSON.stringify(b)}`);
    }
  }
}

Deno.test("layoutGraph: on random DAGs, every edge goes down a layer or more, no boxes overlap, the same graph lays out the same", () => {
  fc.assert(
    fc.property(dags, (graph) => {
      const layout = layoutGraph(graph);
      assertLayered(graph, layout);
      assertNoOverlap(layout);
      assert.deepEqual(layoutGraph(structuredClone(graph)), layout);
      // Each edge starts at the bottom of its source's box and ends at the top of its target's.
      const box = new Map(layout.nodes.map((n) => [n.id, n]));
      assert.equal(layout.edges.length, graph.edges.length);
      for (const e of layout.edges) {
        const [x0, y0] = e.points[0], [x1, y1] = e.points[e.points.length - 1];
        const from = box.get(e.from)!, to = box.get(e.to)!;
        assert.equal(y0, from.y + from.height);
        assert.equal(x0, from.x + from.width / 2);
        assert.equal(y1, to.y);
        assert.equal(x1, to.x + to.width / 2);
        // One bend a layer crossed (in at its top, out at its bottom).
        assert.equal(e.points.length, 2 + 2 * (to.layer - from.layer - 1));
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("layoutGraph: a chain is one column, a fork's children share the layer below, a diamond's join is centred", () => {
  const chain = layoutGraph({
    nodes: [{ id: "a" }, { id: "b" }, { id: "c" }],
    edges: [{ from: "a", to: "b", kind: "needs" }, { from: "b", to: "c", kind: "needs" }],
  });
  assert.deepEqual(chain.nodes.map((n) => [n.layer, n.x]), [
    [0, GRAPH_SIZES.pad],
    [1, GRAPH_SIZES.pad],
    [2, GRAPH_SIZES.pad],
  ]);
  const diamond = layoutGraph({
    nodes: [{ id: "top" }, { id: "l" }, { id: "r" }, { id: "join" }],
    edges: [
      { from: "top", to: "l", kind: "needs" },
      { from: "top", to: "r", kind: "needs" },
      { from: "l", to: "join", kind: "needs" },
      { from: "r", to: "join", kind: "needs" },
    ],
  });
  const at = new Map(diamond.nodes.map((n) => [n.id, n]));
  assert.deepEqual(diamond.nodes.map((n) => n.layer), [0, 1, 1, 2]);
  assert.ok(at.get("l")!.x < at.get("r")!.x);
  const mid = (at.get("l")!.x + at.get("r")!.x) / 2;
  assert.equal(at.get("top")!.x, mid);
  assert.equal(at.get("join")!.x, mid);
});

Deno.test("layoutGraph: edges naming an unknown node or the node itself are left out; no nodes is an empty drawing", () => {
  const layout = layoutGraph({
    nodes: [{ id: "a" }],
    edges: [{ from: "a", to: "ghost", kind: "needs" }, { from: "a", to: "a", kind: "needs" }],
  });
  assert.deepEqual(layout.edges, []);
  assert.equal(layout.nodes[0].layer, 0);
  const empty = layoutGraph({ nodes: [], edges: [] });
  assert.deepEqual(empty.nodes, []);
  assert.ok(empty.width > 0 && empty.height > 0);
});

Deno.test("layoutGraph: a flow's graph: when: nodes without needs come below the last nodes of the rest", () => {
  const graph = flowGraph({
    nodes: [
      { id: "lock", type: "state.set", with: { key: "l", value: 1 } },
      { id: "work", type: "log", needs: ["lock"], with: { message: "w" } },
      { id: "alert", type: "log", when: "on_failure", with: { message: "a" } },
      { id: "after", type: "log", needs: ["alert"], with: { message: "b" } },
    ],
  });
  const layout = layoutGraph(graph);
  assert.deepEqual(layout.nodes.map((n) => [n.id, n.layer]), [
    ["lock", 0],
    ["work", 1],
    ["alert", 2],
    ["after", 3],
  ]);
  assertNoOverlap(layout);
});

Deno.test("layoutGraph: 600 nodes (fan-out, chains, fan-in) lay out without overlaps", () => {
  const nodes = [{ id: "root" }];
  const edges: Graph["edges"] = [];
  for (let i = 0; i < 200; i++) {
    nodes.push({ id: `a${i}` }, { id: `b${i}` }, { id: `c${i}` });
    edges.push(
      { from: "root", to: `a${i}`, kind: "needs" },
      { from: `a${i}`, to: `b${i}`, kind: "needs" },
      { from: i % 2 === 0 ? `b${i}` : `a${i}`, to: `c${i}`, kind: "needs" },
    );
  }
  const graph = { nodes, edges };
  const layout = layoutGraph(graph);
  assertLayered(graph, layout);
  assertNoOverlap(layout);
});

Deno.test("layoutGraph: a 1,000-node chain whose every node also needs the first: edges pass through at most MAX_THROUGH points", () => {
  // Routed through every layer between their ends, its edges would take 500,000 points.
  const n = 1000;
  const nodes = Array.from({ length: n }, (_, i) => ({ id: `n${i}` }));
  const edges: Graph["edges"] = [];
  for (let i = 1; i < n; i++) {
    edges.push({ from: `n${i - 1}`, to: `n${i}`, kind: "needs" });
    if (i > 1) edges.push({ from: "n0", to: `n${i}`, kind: "needs" });
  }
  const graph = { nodes, edges };
  const layout = layoutGraph(graph);
  assertLayered(graph, layout);
  assertNoOverlap(layout);
  // Each edge: its two ends, and two points per layer it passes through.
  const through = layout.edges.reduce((sum, e) => sum + (e.points.length - 2) / 2, 0);
  assert.ok(through <= MAX_THROUGH, `${through} points`);
  // The shortest edges are still routed: n0 -> n2 passes through n1's layer.
  assert.equal(layout.edges.find((e) => e.from === "n0" && e.to === "n2")?.points.length, 4);
});

Deno.test("layoutGraph: the barycenter sweeps undo a crossing the definition's order makes", () => {
  // In the definition's order, c (needs b) comes before d (needs a): their edges would cross.
  const layout = layoutGraph({
    nodes: [{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d" }],
    edges: [{ from: "b", to: "c", kind: "needs" }, { from: "a", to: "d", kind: "needs" }],
  });
  const x = new Map(layout.nodes.map((n) => [n.id, n.x]));
  assert.ok(x.get("a")! < x.get("b")!);
  assert.ok(x.get("d")! < x.get("c")!, JSON.stringify(layout.nodes));
});
