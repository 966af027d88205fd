// Units of the inspector's modules that need no browser: the line diff, the
// node timeline built from run events, the prefix box, read/write keys.
import assert from "node:assert/strict";
import fc from "fast-check";
import { diffLines, diffStats, hunks, MAX_CELLS, splitLines } from "./diff.js";
import {
  accessKey,
  itemsProgress,
  itemsText,
  nodeTimeline,
  progressText,
  runsPageOf,
  runsPageParams,
} from "./runs.js";
import { changesByNode, compactJson, unfedWrites } from "./changes.js";
import { levelOf, parsePrefix } from "./state.js";
import { formatTime } from "./dom.js";

type Row = { op: " " | "-" | "+"; text: string; aLine?: number; bLine?: number };

/** The lines of a (" " and "-") and of b (" " and "+") that the rows spell. */
function sides(rows: Row[]): { a: string[]; b: string[] } {
  return {
    a: rows.filter((r) => r.op !== "+").map((r) => r.text),
    b: rows.filter((r) => r.op !== "-").map((r) => r.text),
  };
}

function lcsLength(a: string[], b: string[]): number {
  const t = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      t[i][j] = a[i] === b[j] ? t[i + 1][j + 1] + 1 : Math.max(t[i + 1][j], t[i][j + 1]);
    }
  }
  return t[0][0];
}

Deno.test("diffLines: a changed line is removed then added, with both line numbers", () => {
  const rows = diffLines(
    "id: x\ndescription: old\nnodes: []\n",
    "id: x\ndescription: new\nnodes: []\n",
  );
  assert.deepEqual(rows, [
    { op: " ", text: "id: x", aLine: 1, bLine: 1 },
    { op: "-", text: "description: old", aLine: 2 },
    { op: "+", text: "description: new", bLine: 2 },
    { op: " ", text: "nodes: []", aLine: 3, bLine: 3 },
  ]);
  assert.deepEqual(diffStats(rows), { added: 1, removed: 1 });
});

Deno.test("diffLines: empty sides, identical texts, CRLF", () => {
  assert.deepEqual(diffLines("", ""), []);
  assert.deepEqual(diffLines("", "a\n"), [{ op: "+", text: "a", bLine: 1 }]);
  assert.deepEqual(diffLines("a", ""), [{ op: "-", text: "a", aLine: 1 }]);
  assert.deepEqual(diffStats(diffLines("a\r\nb\r\n", "a\nb")), { added: 0, removed: 0 });
  assert.deepEqual(splitLines("a\n\nb\n"), ["a", "", "b"]);
});

Deno.test("diffLines keeps a longest common subsequence and spells both sides", () => {
  const line = fc.constantFrom("a", "b", "c", "d", "");
  fc.assert(
    fc.property(fc.array(line, { maxLength: 30 }), fc.array(line, { maxLength: 30 }), (a, b) => {
      const rows = diffLines(a.map((l) => l + "\n").join(""), b.map((l) => l + "\n").join(""));
      assert.deepEqual(sides(rows), { a, b });
      assert.equal(rows.filter((r) => r.op === " ").length, lcsLength(a, b));
      // Line numbers count each side's lines in order.
      assert.deepEqual(rows.filter((r) => r.aLine).map((r) => r.aLine), a.map((_, i) => i + 1));
      assert.deepEqual(rows.filter((r) => r.bLine).map((r) => r.bLine), b.map((_, i) => i + 1));
    }),
    { numRuns: 300 },
  );
});

Deno.test("diffLines past MAX_CELLS still spells both sides (the middle whole)", () => {
  const n = Math.ceil(Math.sqrt(MAX_CELLS)) + 10;
  const a = Array.from({ length: n }, (_, i) => `a${i}`);
  const b = Array.from({ length: n }, (_, i) => (i % 2 ? `a${i}` : `b${i}`));
  const rows = diffLines(["same", ...a, "end"].join("\n"), ["same", ...b, "end"].join("\n"));
  assert.deepEqual(sides(rows), { a: ["same", ...a, "end"], b: ["same", ...b, "end"] });
  assert.equal(rows[0].op, " ");
  assert.equal(rows.at(-1)?.op, " ");
});

Deno.test("hunks keep changes with their context and count what they skip", () => {
  const a = Array.from({ length: 20 }, (_, i) => `line ${i}`);
  const b = [...a];
  b[10] = "changed";
  const out = hunks(diffLines(a.join("\n"), b.join("\n")), 2);
  assert.equal(out.length, 1);
  assert.equal(out[0].skippedBefore, 8);
  assert.deepEqual(out[0].rows.map((r: Row) => r.op), [" ", " ", "-", "+", " ", " "]);
  assert.deepEqual(hunks(diffLines("x\n", "x\n")), []);
  // Two changes 5 lines apart, context 2: the 1 line between the contexts is shown, one hunk.
  const c = [...a];
  c[4] = "first";
  c[10] = "second";
  const merged = hunks(diffLines(a.join("\n"), c.join("\n")), 2);
  assert.equal(merged.length, 1);
  assert.equal(merged[0].rows.length, 2 + 2 + 5 + 2 + 2);
});

Deno.test("nodeTimeline: attempts, errors, logs, reads and writes per node, in start order", () => {
  const run = {
    status: "failed",
    nodes: {
      fetch: { status: "succeeded", attempts: 1 },
      parse: { status: "failed", attempts: 2, error: "bad" },
      never: { status: "skipped", attempts: 0 },
    },
  };
  const flow = { scope: "flow", key: ["count"] };
  const events = [
    { at: 0, type: "run.start" },
    { at: 1, type: "node.start", node: "fetch" },
    { at: 1, type: "node.attempt", node: "fetch", attempt: 1 },
    { at: 2, type: "node.log", node: "fetch", message: "<b>hi</b>", level: "info" },
    {
      at: 3,
      type: "node.end",
      node: "fetch",
      status: "succeeded",
      attempt: 1,
      durationMs: 2,
      reads: [flow],
    },
    { at: 4, type: "node.start", node: "parse" },
    { at: 4, type: "node.attempt", node: "parse", attempt: 1 },
    { at: 5, type: "node.attempt", node: "parse", attempt: 1, error: "first" },
    { at: 6, type: "node.attempt", node: "parse", attempt: 2 },
    { at: 7, type: "node.attempt", node: "parse", attempt: 2, error: "bad" },
    {
      at: 7,
      type: "node.end",
      node: "parse",
      status: "failed",
      attempt: 2,
      durationMs: 3,
      error: "bad",
      writes: [flow, flow],
      writesTruncated: true,
    },
  ];
  const nodes = nodeTimeline(run, events);
  assert.deepEqual(nodes.map((n: { id: string }) => n.id), ["fetch", "parse", "never"]);
  const [fetch, parse, never] = nodes;
  assert.equal(fetch.status, "succeeded");
  assert.equal(fetch.durationMs, 2);
  assert.deepEqual(fetch.logs, [{ at: 2, level: "info", message: "<b>hi</b>" }]);
  assert.deepEqual(fetch.reads, [flow]);
  assert.equal(parse.attempt, 2);
  assert.deepEqual(parse.attempts.map((a: { error: string }) => a.error), ["first", "bad"]);
  assert.equal(parse.error, "bad");
  assert.deepEqual(parse.writes, [flow], "deduped");
  assert.equal(parse.writesTruncated, true);
  assert.equal(never.status, "skipped");
  assert.equal(never.startedAt, null);
});

Deno.test("nodeTimeline: a running node has no end yet", () => {
  const nodes = nodeTimeline({ status: "running", nodes: {} }, [
    { at: 1, type: "node.start", node: "wait" },
    { at: 1, type: "node.attempt", node: "wait", attempt: 1 },
  ]);
  assert.equal(nodes[0].status, "running");
  assert.equal(nodes[0].endedAt, null);
});

Deno.test("nodeTimeline: nodes started in the same millisecond go by name, numbers by value", () => {
  const ids = ["n10", "n2", "n1", "b", "n0", "a10", "a9"];
  const nodes = nodeTimeline(
    { status: "succeeded", nodes: {} },
    ids.map((node) => ({ at: 5, type: "node.start", node })),
  );
  assert.deepEqual(nodes.map((n) => n.id), ["a9", "a10", "b", "n0", "n1", "n2", "n10"]);
});

Deno.test("nodeTimeline: with the flow's node ids, every node has a row; those not started follow, in the flow's order", () => {
  const events = [
    { at: 1, type: "node.start", node: "second" },
    { at: 2, type: "node.start", node: "first" },
    { at: 3, type: "node.end", node: "first", status: "succeeded", durationMs: 1 },
  ];
  const flow = ["first", "second", "z-third", "a-fourth"];
  const running = nodeTimeline({ status: "running", nodes: {} }, events, flow);
  assert.deepEqual(
    running.map((n) => [n.id, n.status ?? "pending"]),
    [["second", "running"], ["first", "succeeded"], ["z-third", "pending"], [
      "a-fourth",
      "pending",
    ]],
  );
  // Once the run ended, a node that never started did not run.
  const ended = nodeTimeline({ status: "failed", nodes: {} }, events, flow);
  assert.deepEqual(ended.slice(2).map((n) => [n.id, n.status]), [["z-third", "not-run"], [
    "a-fourth",
    "not-run",
  ]]);
});

Deno.test("runsPageOf reads back the page runsPageParams wrote: first, second and third pages", () => {
  const roundTrip = (cursor: string | undefined, stack: (string | undefined)[]) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(runsPageParams({ flow: "f" }, cursor, stack))) {
      if (v !== undefined && v !== "") params.set(k, String(v));
    }
    assert.equal(params.get("flow"), "f");
    return runsPageOf(params);
  };
  assert.deepEqual(roundTrip(undefined, []), { cursor: undefined, stack: [] });
  assert.deepEqual(roundTrip("c2", [undefined]), { cursor: "c2", stack: [undefined] });
  assert.deepEqual(roundTrip("c3", [undefined, "c2"]), { cursor: "c3", stack: [undefined, "c2"] });
  // A link with a cursor only: "← newer" leads to the first page.
  assert.deepEqual(runsPageOf(new URLSearchParams("cursor=c9")), {
    cursor: "c9",
    stack: [undefined],
  });
});

Deno.test("accessKey puts a scope's prefix before the key", () => {
  assert.deepEqual(accessKey({ scope: "global", key: ["a"] }, "f", "n"), ["global", "a"]);
  assert.deepEqual(accessKey({ scope: "flow", key: ["a", "b"] }, "f", "n"), [
    "flow",
    "f",
    "a",
    "b",
  ]);
  assert.deepEqual(accessKey({ scope: "node", key: ["a"] }, "f", "n"), ["node", "f", "n", "a"]);
});

Deno.test("parsePrefix reads a / b or a JSON array, and says what is wrong", () => {
  assert.deepEqual(parsePrefix(" node / hello /greet "), ["node", "hello", "greet"]);
  assert.deepEqual(parsePrefix('["a/b", " c"]'), ["a/b", " c"]);
  assert.deepEqual(parsePrefix(""), []);
  assert.throws(() => parsePrefix("[1, 2]"), /array of strings/);
  assert.throws(() => parsePrefix("[oops"), /does not parse/);
});

Deno.test("levelOf names the parts of the state layout", () => {
  assert.equal(levelOf([], "global"), "scope");
  assert.equal(levelOf([], "flowstate"), "records");
  assert.equal(levelOf([], "other"), "data");
  assert.equal(levelOf(["node"], "hello"), "flow");
  assert.equal(levelOf(["node", "hello"], "greet"), "node");
  assert.equal(levelOf(["node", "hello", "greet"], "count"), "key");
  assert.equal(levelOf(["flow"], "hello"), "flow");
  assert.equal(levelOf(["flow", "hello"], "count"), "key");
  assert.equal(levelOf(["global"], "x"), "key");
});

Deno.test("UI_FILES names every file of the inspector (a remote package serves only those)", async () => {
  const { UI_FILES } = await import("../server.ts");
  const onDisk: string[] = [];
  for await (const entry of Deno.readDir(new URL(".", import.meta.url))) {
    if (entry.isFile && !entry.name.endsWith("_test.ts")) onDisk.push(entry.name);
  }
  assert.deepEqual([...UI_FILES].sort(), onDisk.sort());
});

Deno.test("changesByNode groups a run's changes by node in the timeline's order, others after", () => {
  const c = (node: string | undefined, seq: number) => ({ seq, by: node ? { nodeId: node } : {} });
  const groups = changesByNode(
    [c("b", 1), c("a", 2), c("b", 3), c("x", 4), c(undefined, 5)],
    ["a", "b", "quiet"],
  );
  assert.deepEqual(groups.map((g) => [g.node, g.changes.map((x: { seq: number }) => x.seq)]), [
    ["a", [2]],
    ["b", [1, 3]],
    ["x", [4]],
    ["", [5]],
  ]);
  assert.deepEqual(changesByNode([], ["a"]), []);
});

Deno.test("unfedWrites keeps the writes that went to a store without a feed (named or by scope)", () => {
  const scopes = { node: "main", flow: "main", global: "shared" };
  const writes = [
    { scope: "flow", key: ["a"] },
    { scope: "global", key: ["b"] },
    { scope: "flow", key: ["c"], store: "shared" },
    { scope: "node", key: [], prefix: true },
    "not an access",
  ];
  assert.deepEqual(
    unfedWrites(writes, scopes, new Set(["shared"])).map((w) => [w.store, w.access.key]),
    [["shared", ["b"]], ["shared", ["c"]]],
  );
  assert.deepEqual(unfedWrites(writes, scopes, new Set()), []);
  assert.deepEqual(unfedWrites(undefined, scopes, new Set(["main"])), []);
  assert.equal(compactJson({ a: [1, "x"] }), '{"a":[1,"x"]}');
  assert.equal(compactJson(undefined), "");
});

Deno.test("ui: a time past what a Date holds (an expiry beyond 2^53 ms) reads as such, not NaN-NaN-NaN", () => {
  assert.equal(formatTime(Number.MAX_SAFE_INTEGER), "after the year 275760");
  assert.match(formatTime(0), /^19(69|70)-\d\d-\d\d \d\d:\d\d:\d\d [A-Z][A-Za-z0-9+:-]*$/);
  assert.equal(formatTime(null), "—");
});

Deno.test("every import of the inspector's modules is served at the URL the browser asks for", async () => {
  const { openRuntime } = await import("../../runtime.ts");
  const { serve, UI_FILES } = await import("../server.ts");
  await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
  const server = await serve(rt, { port: 0, worker: false });
  try {
    const specifiers = new Set<string>();
    for (const name of UI_FILES.filter((n) => n.endsWith(".js"))) {
      const text = await Deno.readTextFile(new URL(name, import.meta.url));
      for (const [, specifier] of text.matchAll(/^import [^;]* from "([^"]+)";$/gm)) {
        specifiers.add(new URL(specifier, new URL(`ui/${name}`, server.url)).pathname);
      }
    }
    // The shared JSON parser (../../_parse_json.js from ui/) among them, at the root.
    assert.ok(specifiers.has("/_parse_json.js"), [...specifiers].join(", "));
    for (const path of specifiers) {
      const res = await fetch(new URL(path, server.url));
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get("content-type"), "text/javascript; charset=utf-8", path);
      const onDisk = path === "/_parse_json.js"
        ? new URL("../../_parse_json.js", import.meta.url)
        : new URL(`.${path.slice("/ui".length)}`, import.meta.url);
      assert.deepEqual(await res.bytes(), await Deno.readFile(onDisk), path);
    }
    // Nothing else beside ui/ is served.
    const other = await fetch(new URL("/_json.ts", server.url));
    assert.equal(other.status, 404);
    await other.body?.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test("nodeTimeline: a node of when: on_failure or always carries its when: from the record", () => {
  const run = {
    status: "failed",
    nodes: {
      work: { status: "failed", attempts: 1, error: "broke" },
      alert: { status: "succeeded", attempts: 1, when: "on_failure" },
      cleanup: { status: "skipped", attempts: 0, when: "always" },
    },
  };
  const events = [
    { at: 1, type: "node.start", node: "work" },
    { at: 2, type: "node.end", node: "work", status: "failed", attempt: 1, durationMs: 1 },
    { at: 3, type: "node.start", node: "alert" },
    { at: 4, type: "node.end", node: "alert", status: "succeeded", attempt: 1, durationMs: 1 },
  ];
  const nodes = nodeTimeline(run, events, ["work", "alert", "cleanup"]);
  assert.deepEqual(
    nodes.map((n: { id: string; status: string; when?: string }) => [n.id, n.status, n.when]),
    [["work", "failed", undefined], ["alert", "succeeded", "on_failure"], [
      "cleanup",
      "skipped",
      "always",
    ]],
  );
});

Deno.test("nodeTimeline: a forEach node's items, its items' attempts and logs", () => {
  const run = {
    status: "failed",
    nodes: {
      each: {
        status: "failed",
        attempts: 3,
        error: "item 1: bad",
        items: { count: 3, succeeded: 1, failed: 1, failedIndex: 1 },
      },
    },
  };
  const events = [
    { at: 1, type: "node.start", node: "each", items: 3 },
    { at: 1, type: "node.attempt", node: "each", attempt: 1, item: 0 },
    { at: 2, type: "node.log", node: "each", message: "hi", level: "info", item: 0 },
    { at: 3, type: "node.attempt", node: "each", attempt: 1, item: 1 },
    { at: 4, type: "node.attempt", node: "each", attempt: 1, item: 1, error: "first" },
    { at: 5, type: "node.attempt", node: "each", attempt: 2, item: 1 },
    { at: 6, type: "node.attempt", node: "each", attempt: 2, item: 1, error: "bad" },
  ];
  const [live] = nodeTimeline({ status: "running", nodes: {} }, events);
  assert.deepEqual(live.items, { count: 3, succeeded: 0, failed: 0 });
  assert.equal(itemsText(live.items), "3 items");
  assert.equal(live.attempt, 3, "the items' attempts together");
  const [each] = nodeTimeline(run, events);
  assert.deepEqual(
    each.attempts.map((a: { item: number; attempt: number; error: string | null }) => [
      a.item,
      a.attempt,
      a.error,
    ]),
    [[0, 1, null], [1, 1, "first"], [1, 2, "bad"]],
  );
  assert.deepEqual(each.logs, [{ at: 2, level: "info", message: "hi", item: 0 }]);
  assert.equal(itemsText(each.items), "1/3 items ok, 1 failed (item 1)");
  assert.equal(itemsText(null), "");
  assert.equal(itemsText({ count: 2, succeeded: 2, failed: 0 }), "2 items");
});

Deno.test("nodeTimeline: a mocked node says so, from its events or from the record", () => {
  const run = {
    status: "succeeded",
    nodes: {
      notify: { status: "succeeded", attempts: 1, output: 1, mocked: true },
      report: { status: "succeeded", attempts: 1, output: 2 },
      old: { status: "succeeded", attempts: 1, mocked: true },
    },
  };
  const events = [
    { at: 1, type: "node.start", node: "notify", mocked: true },
    { at: 2, type: "node.end", node: "notify", status: "succeeded", attempt: 1, durationMs: 1 },
    { at: 3, type: "node.start", node: "report" },
    { at: 4, type: "node.end", node: "report", status: "succeeded", attempt: 1, durationMs: 1 },
  ];
  const nodes = nodeTimeline(run, events, ["notify", "report", "old"]);
  assert.deepEqual(
    nodes.map((n: { id: string; mocked?: boolean }) => [n.id, n.mocked === true]),
    [["notify", true], ["report", false], ["old", true]],
  );
  // Live, before the record's end: the event alone marks it.
  const live = nodeTimeline({ status: "running", nodes: {} }, events.slice(0, 1), ["notify"]);
  assert.equal((live[0] as { mocked?: boolean }).mocked, true);
});
Deno.test("nodeTimeline: a running forEach node's progress comes from its last node.progress, and goes with its end", () => {
  const start = { at: 1, type: "node.start", node: "each", items: 1000 };
  const progress = (at: number, succeeded: number, failed: number, failedItems?: number[]) => ({
    at,
    type: "node.progress",
    node: "each",
    count: 1000,
    succeeded,
    failed,
    running: 4,
    ...(failedItems ? { failedItems } : {}),
  });
  const running = { status: "running", nodes: {} };
  // Before the first progress event: nothing done yet, out of the start's count.
  const [fresh] = nodeTimeline(running, [start]);
  assert.deepEqual(itemsProgress(fresh), {
    count: 1000,
    succeeded: 0,
    failed: 0,
    running: 0,
    failedItems: [],
    done: 0,
  });
  assert.equal(progressText(itemsProgress(fresh)), "0 of 1,000 items done");
  const [node] = nodeTimeline(running, [
    start,
    progress(1001, 100, 0),
    progress(2001, 310, 2, [4, 17]),
  ]);
  const p = itemsProgress(node);
  assert.equal(p.done, 312);
  assert.equal(progressText(p), "312 of 1,000 items done, 2 failed (items 4, 17)");
  // More failed than named: the list says so.
  assert.equal(
    progressText({ ...p, failed: 30, done: 340 }),
    "340 of 1,000 items done, 30 failed (items 4, 17, …)",
  );
  assert.equal(
    progressText({ ...p, failed: 1, failedItems: [4], done: 311 }),
    "311 of 1,000 items done, 1 failed (item 4)",
  );
  // Ended: its items say how it went; no progress.
  const end = {
    at: 3001,
    type: "node.end",
    node: "each",
    status: "succeeded",
    attempt: 1000,
    durationMs: 3000,
    items: { count: 1000, succeeded: 1000, failed: 0 },
  };
  const [ended] = nodeTimeline(running, [start, progress(1001, 100, 0), end]);
  assert.equal(itemsProgress(ended), null);
  assert.equal(itemsText(ended.items), "1000 items");
  // A node without forEach has no progress.
  const [plain] = nodeTimeline(running, [{ at: 1, type: "node.start", node: "a" }]);
  assert.equal(itemsProgress(plain), null);
});

Deno.test("nodeTimeline: a running run's nodes show their when: from the definition before the record has it", () => {
  const whens = new Map([["alert", "on_failure"], ["unlock", "always"]]);
  const run = { status: "running", nodes: {} };
  const nodes = nodeTimeline(run, [{ at: 1, type: "node.start", node: "work" }], [
    "work",
    "alert",
    "unlock",
  ], whens);
  assert.deepEqual(nodes.map((n) => [n.id, n.when ?? null]), [
    ["work", null],
    ["alert", "on_failure"],
    ["unlock", "always"],
  ]);
  // The record's own when: (once ended) is kept.
  const ended = nodeTimeline(
    {
      status: "failed",
      nodes: { alert: { status: "succeeded", attempts: 1, when: "on_failure" } },
    },
    [],
    ["alert"],
  );
  assert.equal(ended[0].when, "on_failure");
});
