// Runs: the list (filters, cursor paging, live) and a run's detail (node
// timeline with attempts, durations, errors, logs, reads and writes).

import { api, ApiError } from "./api.js";
import {
  ago,
  agoSpan,
  archivedBadge,
  formatClock,
  formatDuration,
  formatTime,
  h,
  keyText,
  leaseLapsedBadge,
  prettyJson,
  relativeTime,
  replace,
  runStart,
  statusBadge,
} from "./dom.js";
import { runChangesPanel } from "./changes.js";
import { parseJson } from "../../_parse_json.js";
import { graphView } from "./graph.js";

const PAGE = 50;

/** A `wait` node's log line as it begins to wait: its signal, then `: message` when it has one. */
const WAITING_LINE =
  /^waiting for signal "([A-Za-z0-9_-]{1,64})" \(flowstate runs signal \S+ [A-Za-z0-9_-]+\)(?:: ([\s\S]*))?$/;

/**
 * The signal a node waits for, from one of its events: `{ signal, message }`
 * when the event is a `wait` node's waiting line, `null` when the event ends
 * the waiting (the node ended, or its attempt failed), `undefined` otherwise.
 */
export function waitingOf(event) {
  if (event?.type === "node.log") {
    const m = WAITING_LINE.exec(event.message ?? "");
    return m === null ? undefined : { signal: m[1], message: m[2] ?? null };
  }
  if (event?.type === "node.end" || (event?.type === "node.attempt" && event.error)) return null;
  return undefined;
}
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "timed-out"];

/** Calls `fn` at most once per `ms`, trailing. */
function throttle(fn, ms) {
  let timer = null;
  let again = false;
  return () => {
    if (timer) {
      again = true;
      return;
    }
    fn();
    timer = setTimeout(function tick() {
      timer = null;
      if (again) {
        again = false;
        fn();
        timer = setTimeout(tick, ms);
      }
    }, ms);
  };
}

// --- the list ---------------------------------------------------------------------------

/**
 * The page of the runs list a route names: its `cursor` (none: the first page)
 * and `newer`, the cursors of the pages between the first and this one (comma
 * separated run ids), so that a reload, back and forward, and a shared link
 * show the same page, and "← newer" leads back page by page.
 * Returns `{ cursor, stack }`: `stack` holds the cursor of each page before
 * this one (the first page's: `undefined`).
 */
export function runsPageOf(params) {
  const cursor = params.get("cursor") || undefined;
  if (cursor === undefined) return { cursor, stack: [] };
  const newer = (params.get("newer") ?? "").split(",").filter((c) => c !== "");
  return { cursor, stack: [undefined, ...newer] };
}

/** The route params of the runs list's page at `cursor`, after the pages of `stack`. */
export function runsPageParams(filters, cursor, stack) {
  return {
    ...filters,
    cursor,
    newer: cursor === undefined ? undefined : stack.slice(1).join(","),
  };
}

/**
 * The runs list's route last shown in this tab (its filters and page), kept across a
 * reload in the tab's sessionStorage: a run's "← Runs" leads back there, not to the
 * unfiltered first page.
 */
const RUNS_LIST_KEY = "flowstate.runsList";
function runsListHash() {
  try {
    const hash = sessionStorage.getItem(RUNS_LIST_KEY);
    if (hash !== null && hash.startsWith("#/runs")) return hash;
  } catch {
    // storage refused (a privacy setting): the first page
  }
  return "#/runs";
}
function keepRunsListHash(hash) {
  try {
    sessionStorage.setItem(RUNS_LIST_KEY, hash);
  } catch {
    // storage refused: "← Runs" leads to the first page
  }
}

export async function renderRuns(container, route, ctx) {
  const flow = route.params.get("flow") ?? "";
  const status = route.params.get("status") ?? "";
  /** The archived runs (moved to <home>/archive by the archive job) instead of the recorded ones. */
  const archived = route.params.get("archived") === "true" ? "true" : undefined;
  // Cursors of the pages before this one, to go back ("newer"): kept in the URL.
  const { cursor, stack } = runsPageOf(route.params);
  keepRunsListHash(
    ctx.routeHash(["runs"], runsPageParams({ flow, status, archived }, cursor, stack)),
  );
  let nextCursor = undefined;
  const goTo = (pageCursor, pageStack) =>
    ctx.navigate(
      ctx.routeHash(["runs"], runsPageParams({ flow, status, archived }, pageCursor, pageStack)),
    );

  const flows = await api.flows().catch(() => []);
  const flowSelect = h(
    "select#filter-flow",
    { "aria-label": "flow" },
    h("option", { value: "", text: "all flows" }),
    flows.map((f) => h("option", { value: f.id, text: f.id, selected: f.id === flow })),
  );
  if (flow && !flows.some((f) => f.id === flow)) {
    flowSelect.appendChild(h("option", { value: flow, text: flow, selected: true }));
  }
  const statusSelect = h(
    "select#filter-status",
    { "aria-label": "status" },
    h("option", { value: "", text: "any status" }),
    STATUSES.map((s) => h("option", { value: s, text: s, selected: s === status })),
  );
  const archivedBox = h("input#filter-archived", {
    type: "checkbox",
    checked: archived !== undefined,
    title: "runs the archive job moved to <home>/archive",
  });
  const onFilter = () =>
    ctx.navigate(ctx.routeHash(["runs"], {
      flow: flowSelect.value,
      status: statusSelect.value,
      archived: archivedBox.checked ? "true" : undefined,
    }));
  flowSelect.addEventListener("change", onFilter);
  statusSelect.addEventListener("change", onFilter);
  archivedBox.addEventListener("change", onFilter);

  const tbody = h("tbody");
  const pager = h("div.pager");
  const table = h(
    "table.runs-table",
    {},
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Status", "Run", "Flow", "Started", "Duration", "Error"].map((t) => h("th", { text: t })),
      ),
    ),
    tbody,
  );
  replace(
    container,
    h("h1.view-title", { text: archived ? "Archived runs" : "Runs" }),
    h(
      "div.toolbar",
      {},
      h("label", {}, "Flow ", flowSelect),
      h("label", {}, "Status ", statusSelect),
      h("label", {}, archivedBox, " archived"),
    ),
    h("div.panel.table-panel", {}, table),
    pager,
  );

  let loads = 0;
  async function load() {
    const serial = ++loads;
    const page = await api.runs({ flow, status, limit: PAGE, cursor, archived });
    if (serial !== loads) return; // a later load answers
    nextCursor = page.cursor;
    replace(
      tbody,
      page.runs.length === 0
        ? h(
          "tr",
          {},
          h("td.muted.empty-row", {
            colSpan: 6,
            text: archived ? "No archived runs." : "No runs.",
          }),
        )
        : page.runs.map(runRow),
    );
    replace(
      pager,
      stack.length > 0
        ? h("button", {
          type: "button",
          text: "← newer",
          onclick: () => goTo(stack[stack.length - 1], stack.slice(0, -1)),
        })
        : null,
      h("span.muted", { text: `page ${stack.length + 1}` }),
      nextCursor
        ? h("button", {
          type: "button",
          text: "older →",
          onclick: () => goTo(nextCursor, [...stack, cursor]),
        })
        : null,
    );
  }

  function runRow(run) {
    return h(
      "tr",
      { dataset: { run: run.id, status: run.status, flow: run.flowId } },
      h(
        "td",
        {},
        statusBadge(run.status),
        run.leaseLapsedAt === undefined ? null : leaseLapsedBadge(run.leaseLapsedAt),
        run.archived ? archivedBadge(run.archive) : null,
      ),
      h("td.mono", {}, h("a", { href: ctx.routeHash(["runs", run.id]), text: run.id })),
      h(
        "td",
        {},
        h("a", {
          href: run.flowId.startsWith("job:") ? "#/jobs" : ctx.routeHash(["flows", run.flowId]),
          text: run.flowId,
        }),
        // A sub-run says so (as `runs ls` does), and leads to the run that started it; so does
        // a run a queue node enqueued (it has enqueuedAt), which is no sub-run: nothing waits for it.
        run.parentRunId
          ? run.enqueuedAt === undefined
            ? h("a.muted.sub-run", {
              href: ctx.routeHash(["runs", run.parentRunId]),
              title: `a sub-flow of run ${run.parentRunId}`,
              text: " (sub-flow)",
            })
            : h("a.muted.enqueued-by", {
              href: ctx.routeHash(["runs", run.parentRunId]),
              title: `enqueued by run ${run.parentRunId} (a queue node): nothing waits for it`,
              text: " (enqueued)",
            })
          : null,
      ),
      // When it really started: a queued run's attempt's claim, not its enqueue time.
      h("td.started", {
        title: formatTime(runStart(run)),
        ...(runStart(run) === null ? { text: "—" } : ago(runStart(run))),
      }),
      h("td.num", { text: formatDuration(run.durationMs) }),
      h("td.error-cell", {
        text: run.error ? `${run.error.node ? run.error.node + ": " : ""}${run.error.message}` : "",
        title: run.error?.message ?? "",
      }),
    );
  }

  // Live (listening before the first load): a run started or ended anywhere refreshes the first page.
  const refresh = throttle(() => {
    // Archived runs do not change as runs start and end.
    if (stack.length === 0 && !archived) load().catch(() => {});
  }, 400);
  ctx.live.subscribe((type, data) => {
    if (type === "run.started" || type === "run.ended") {
      if (flow && data?.flowId !== undefined && data.flowId !== flow) return;
      refresh();
    } else if (type === "node" && data?.runId) {
      // A run we have not seen yet (its run.started was missed): refresh.
      if (!tbody.querySelector(`tr[data-run="${CSS.escape(data.runId)}"]`)) refresh();
    } else if (type === "connection" && data.connected) {
      refresh();
    }
  });
  await load();
}

// --- a run's detail -----------------------------------------------------------------------

/** Node ids in name order, numbers by value (n2 before n10). */
const byName = new Intl.Collator(undefined, { numeric: true });

/**
 * Node rows from a run's events and record: start, attempts, end, logs, reads, writes.
 * With `nodeIds` (every node of the run, as `GET /api/runs/{id}/nodes` lists them:
 * those not started in the flow's order), every node has a row: one that has not
 * started is `pending` while the run runs and `not-run` once it ended (when its record
 * says nothing of it); rows that have not started follow the started ones, in that order.
 * With `whens` (node id → `on_failure`/`always`, from the run's flow definition), a node
 * shows its `when:` before the run's record has it (while the run runs).
 */
export function nodeTimeline(run, events, nodeIds, whens) {
  const nodes = new Map();
  const get = (id) => {
    let node = nodes.get(id);
    if (!node) {
      node = {
        id,
        startedAt: null,
        endedAt: null,
        status: null,
        attempts: [],
        attempt: 0,
        durationMs: null,
        error: null,
        logs: [],
        reads: [],
        writes: [],
        // A node with forEach: its items' outcome ({ count, succeeded, failed, failedIndex? }).
        items: null,
        // A running forEach node's last `node.progress`: { count, succeeded, failed, running,
        // failedItems? }.
        progress: null,
      };
      nodes.set(id, node);
    }
    return node;
  };
  const seen = new Map();
  const addKeys = (node, field, list) => {
    if (!Array.isArray(list)) return;
    let set = seen.get(node.id + "\u0000" + field);
    if (!set) seen.set(node.id + "\u0000" + field, set = new Set());
    for (const item of list) {
      const id = JSON.stringify(item);
      if (set.has(id)) continue;
      set.add(id);
      node[field].push(item);
    }
  };
  // A run that went back to the queue (released by a stopping worker, lost, retried) starts
  // again: its nodes run again from the start. What an earlier attempt did is in the queue's
  // attempts and the event log; the timeline is the current attempt's.
  let starts = 0;
  for (const event of events) {
    if (event?.type === "run.start" && ++starts > 1) {
      nodes.clear();
      seen.clear();
    }
    if (!event || typeof event.node !== "string") continue;
    const node = get(event.node);
    addKeys(node, "reads", event.reads);
    addKeys(node, "writes", event.writes);
    if (event.readsTruncated) node.readsTruncated = true;
    if (event.writesTruncated) node.writesTruncated = true;
    switch (event.type) {
      case "node.start":
        node.startedAt = event.at;
        node.status = node.status ?? "running";
        // A test's mock stands in for it (runFlow's mocks): nothing it would do happens.
        if (event.mocked === true) node.mocked = true;
        if (typeof event.items === "number") {
          node.items ??= { count: event.items, succeeded: 0, failed: 0 };
        }
        break;
      case "node.attempt": {
        // An item's attempt (a node with forEach) carries the item's index.
        const item = typeof event.item === "number" ? event.item : null;
        if (event.error === undefined) {
          node.attempts.push({ attempt: event.attempt, item, startedAt: event.at, error: null });
        } else {
          const a = node.attempts.findLast((x) => x.attempt === event.attempt && x.item === item);
          if (a) {
            a.error = event.error;
            a.endedAt = event.at;
          } else {
            node.attempts.push({
              attempt: event.attempt,
              item,
              endedAt: event.at,
              error: event.error,
            });
          }
        }
        // A forEach node's attempts are its items' together.
        node.attempt = item === null
          ? Math.max(node.attempt, event.attempt)
          : node.attempts.filter((x) => x.startedAt !== undefined).length;
        break;
      }
      case "node.end":
        node.status = event.status;
        node.endedAt = event.at;
        node.durationMs = event.durationMs;
        node.attempt = Math.max(node.attempt, event.attempt ?? 0);
        node.error = event.error ?? null;
        node.outputBytes = event.outputBytes;
        if (event.items && typeof event.items === "object") node.items = event.items;
        // A resumed run's node taken from the run it resumes: it did not run here.
        if (typeof event.reused === "string") node.reused = event.reused;
        if (node.startedAt === null && typeof event.durationMs === "number") {
          node.startedAt = event.at - event.durationMs;
        }
        break;
      case "node.progress":
        if (typeof event.count === "number") {
          node.progress = {
            count: event.count,
            succeeded: event.succeeded ?? 0,
            failed: event.failed ?? 0,
            running: event.running ?? 0,
            failedItems: Array.isArray(event.failedItems) ? event.failedItems : [],
          };
        }
        break;
      case "node.subrun":
        // A sub-run the node started: linked while the node runs, before its outcome lists
        // them. A forEach node's item's goes with the item's attempt (one per attempt), linked
        // in its Attempts, not beside the node (there may be thousands).
        if (typeof event.run === "string" && typeof event.item !== "number") {
          node.subRuns ??= [];
          if (!node.subRuns.includes(event.run)) node.subRuns.push(event.run);
        } else if (typeof event.run === "string") {
          const a = node.attempts.findLast((x) => x.item === event.item);
          if (a) a.run = event.run;
        }
        break;
      case "node.log":
        node.logs.push({
          at: event.at,
          level: event.level,
          message: event.message,
          ...(typeof event.item === "number" ? { item: event.item } : {}),
        });
        break;
    }
  }
  // Nodes in the record that left no events (skipped before starting, or an old record).
  // While a run that started again runs, its record's outcomes are the ended attempt's
  // (kept for a queued run to show) until each node ends again: the events tell this one.
  const againRunning = starts > 1 && run?.status === "running";
  for (const [id, outcome] of Object.entries(run?.nodes ?? {})) {
    if (againRunning) {
      if (outcome?.when && nodes.has(id)) nodes.get(id).when = outcome.when;
      continue;
    }
    const node = get(id);
    if (node.status === null || node.status === "running") {
      if (run.status !== "running" || outcome.status) node.status = outcome.status ?? node.status;
    }
    if (!node.attempt) node.attempt = outcome.attempts ?? 0;
    if (!node.error && outcome.error) node.error = outcome.error;
    if (outcome.when) node.when = outcome.when;
    if (outcome.mocked === true) node.mocked = true;
    if (typeof outcome.reused === "string") node.reused = outcome.reused;
    if (outcome.items && typeof outcome.items === "object") node.items = outcome.items;
    if (Array.isArray(outcome.subRuns)) {
      node.subRuns = outcome.subRuns.filter((id) => typeof id === "string");
    }
  }
  const order = new Map();
  const ended = run && run.status !== "running" && run.status !== "queued";
  for (const id of nodeIds ?? []) {
    if (order.has(id)) continue;
    order.set(id, order.size);
    const node = get(id);
    if (ended && node.status === null && node.startedAt === null) node.status = "not-run";
  }
  for (const [id, when] of whens ?? []) {
    const node = nodes.get(id);
    if (node && !node.when && when !== "on_success") node.when = when;
  }
  const place = (id) => order.get(id) ?? Infinity;
  return [...nodes.values()].sort((a, b) =>
    (a.startedAt ?? Infinity) - (b.startedAt ?? Infinity) ||
    (place(a.id) - place(b.id) || 0) ||
    byName.compare(a.id, b.id)
  );
}

/** Nodes the timeline shows before "show all": the first ones, plus every running or failed one. */
/**
 * A forEach node's items for its row: `3 items` when every one succeeded (or
 * while none ended), else `2/5 items ok, 1 failed (item 3)`; "" for other nodes.
 */
export function itemsText(items) {
  if (!items || typeof items !== "object" || typeof items.count !== "number") return "";
  const { count, succeeded, failed, failedIndex } = items;
  const total = `${count} ${count === 1 ? "item" : "items"}`;
  if (succeeded === count || (!succeeded && !failed)) return total;
  const parts = [`${succeeded}/${total} ok`];
  if (failed) {
    parts.push(
      `${failed} failed${typeof failedIndex === "number" ? ` (item ${failedIndex})` : ""}`,
    );
  }
  return parts.join(", ");
}

/**
 * A running forEach node's progress, from its last `node.progress` (or, before
 * the first, its start's count): `{ count, done, succeeded, failed, running,
 * failedItems }`; null for a node that is not a running forEach node.
 */
export function itemsProgress(node) {
  if (node?.status !== "running") return null;
  const p = node.progress ??
    (node.items && typeof node.items.count === "number"
      ? { count: node.items.count, succeeded: 0, failed: 0, running: 0, failedItems: [] }
      : null);
  if (p === null) return null;
  return { ...p, done: p.succeeded + p.failed };
}

const counted = new Intl.NumberFormat("en-US");

/**
 * A running forEach node's progress as words: `312 of 1,000 items done, 2 failed (items
 * 4, 17)` (`…` after the items named when more failed).
 */
export function progressText(p) {
  const noun = p.count === 1 ? "item" : "items";
  let text = `${counted.format(p.done)} of ${counted.format(p.count)} ${noun} done`;
  if (p.failed > 0) {
    const named = p.failedItems.length === 0
      ? ""
      : ` (${p.failedItems.length === 1 ? "item" : "items"} ${p.failedItems.join(", ")}${
        p.failed > p.failedItems.length ? ", …" : ""
      })`;
    text += `, ${counted.format(p.failed)} failed${named}`;
  }
  return text;
}

/** A running forEach node's bar: done (failed in red) out of its items, with its words. */
function progressBar(p) {
  const pct = (n) => `${p.count === 0 ? 100 : Math.min(100, (n / p.count) * 100)}%`;
  return h(
    "div.items-progress",
    {
      role: "progressbar",
      "aria-valuemin": "0",
      "aria-valuemax": String(p.count),
      "aria-valuenow": String(p.done),
      "aria-valuetext": progressText(p),
    },
    h(
      "span.items-progress-track",
      {},
      h("span.items-progress-ok", { style: `width: ${pct(p.succeeded)}` }),
      h("span.items-progress-failed", { style: `width: ${pct(p.failed)}` }),
    ),
    h("span.items-progress-text", { text: progressText(p) }),
  );
}

export const TIMELINE_CAP = 500;
/** Nodes of a run's first page (its first answer), then of each page after it. */
export const FIRST_NODES = TIMELINE_CAP;
export const REST_NODES = 2_000;
/** Lines of the event log shown at a time (opened). */
export const EVENT_PAGE = 500;

/** Which of `nodes` (in timeline order) to show: all up to `cap`, then only the running and failed ones. */
export function shownNodes(nodes, cap = TIMELINE_CAP) {
  if (nodes.length <= cap) return nodes;
  return nodes.filter((node, i) => i < cap || notable(node));
}

function notable(node) {
  return node.status === "running" || node.status === "failed" || node.status === "timed-out";
}

/**
 * Why a queued run is not starting (as `flowstate runs show` says it): its rate window is full,
 * or its partition is at its concurrency limit; empty otherwise.
 */
function queueWaitText(queue) {
  const limit = queue.limit;
  if (limit === undefined) return "";
  const partition = limit.partition === "*" ? "" : `, partition ${JSON.stringify(limit.partition)}`;
  if (queue.waiting === "rate") return ", waiting for its rate limit";
  if (queue.waiting === "slot" && limit.concurrency !== undefined) {
    return `, waiting for a slot (concurrency ${limit.concurrency} reached${partition})`;
  }
  return "";
}

/**
 * A queued run's attempts, one line each (as `flowstate runs show` lists them): which worker,
 * when, how long, how it ended and why; lost and released ones too. Null without any.
 */
function queueAttempts(run) {
  const attempts = run.queue?.attempts ?? [];
  if (attempts.length === 0) return null;
  return h(
    "ol.queue-attempts",
    { "aria-label": "Attempts" },
    attempts.map((a) =>
      h(
        "li.queue-attempt",
        {},
        h("span.fact-label", { text: `attempt ${a.attempt}` }),
        statusBadge(a.outcome),
        ` on ${a.worker} at ${formatTime(a.startedAt)} (${
          formatDuration(Math.max(0, a.endedAt - a.startedAt))
        })`,
        a.error ? h("span.attempt-error", { text: `: ${a.error}` }) : null,
      )
    ),
  );
}

/**
 * How long a running run's process has written no heartbeat, in ms, once that is longer than
 * gc's `abandonedAfter` default (DEFAULT_ABANDONED_MS in src/records/heartbeat.ts: a minute,
 * twelve missed beats); else null. A live process writes one every 5 s (HEARTBEAT_MS).
 */
export function silentFor(run, now = Date.now()) {
  if (run?.status !== "running" || typeof run.heartbeatAt !== "number") return null;
  const silent = now - run.heartbeatAt;
  return silent > 60_000 ? silent : null;
}

/** The ends of a run that may start the config's `runs.onFailure` flow about it. */
const MAY_FIRE_ON_FAILURE = new Set(["failed", "timed-out", "cancelled"]);

/**
 * A run's page. Its route keeps what the page shows (`#/runs/ID?open=a,b&view=graph`): the
 * nodes whose rows are open and the Graph view, so that a reload, back and forward, and a
 * shared link show the same.
 */
export async function renderRun(container, id, ctx, route) {
  // Listen before fetching: events that arrive meanwhile are applied after.
  let onEvent = null;
  const early = [];
  ctx.live.subscribe((type, data) => {
    if (onEvent) onEvent(type, data);
    else early.push([type, data]);
  });
  let data;
  try {
    // The first nodes only: a 10,000-node run's whole answer is ~3 MB (the rest comes after).
    data = await api.runNodes(id, { limit: FIRST_NODES });
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      replace(
        container,
        h("p", {}, h("a.back-to-runs", { href: runsListHash(), text: "← Runs" })),
        h("div.panel", {}, h("p", { text: `No run with id ${id}.` })),
      );
      return;
    }
    throw e;
  }
  let run = data.run;
  /**
   * The config's `runs.onFailure` flow started about this run (`{ flow, runId?, host, pid, at }`),
   * or null: refreshed with the run.
   */
  let onFailure = data.onFailure ?? null;
  /** The run that resumes this one (`resumedBy`), or null: refreshed with the run. */
  let resumedBy = data.resumedBy ?? null;
  /**
   * When the claim of this queued run recorded running lapsed (`leaseLapsedAt`: its worker is
   * gone), or null: refreshed with the run.
   */
  let leaseLapsedAt = data.leaseLapsedAt ?? null;
  /** The archive file of a run the archive job moved out of the records (read-only), or null. */
  const archive = data.archived ? data.archive ?? "the archive" : null;
  /**
   * The run's nodes as its pages list them (every node of its flow version,
   * those not started too, then any other); grows as the pages come.
   */
  const runNodeIds = [...data.nodeIds];
  const listed = new Set(runNodeIds);
  /** Every node of the run, and the offset of the page not fetched yet (none: all are here). */
  const nodesTotal = data.total;
  let nextNodes = data.next;
  /**
   * How many of the run's recorded events this page holds or will (the first
   * page's nodes' events are here, the other pages bring their nodes'): a
   * refresh asks only for the events from there on (`?after=`). Not known
   * (an older server): a refresh fetches them all.
   */
  let eventCursor = data.eventCount;
  const events = [];
  /** The events of each node, in arrival order: one node's row is redrawn from its own. */
  const eventsByNode = new Map();
  const seen = new Set();
  /** Adds an event unless the run already has it (from the records and the feed both). */
  const addEvent = (event) => {
    const key = JSON.stringify(event);
    if (seen.has(key)) return false;
    seen.add(key);
    events.push(event);
    if (event && typeof event.node === "string") {
      let list = eventsByNode.get(event.node);
      if (!list) eventsByNode.set(event.node, list = []);
      list.push(event);
    }
    return true;
  };
  /**
   * The `wait` nodes waiting for a signal now, in the run and in its running sub-runs
   * (`{ runId, node, signal, message?, since }`), as the server says: only it knows which
   * nodes are `wait` nodes (any node may log a waiting line).
   */
  let waiting = data.waiting ?? [];
  /**
   * The waits a feed event announced that the server's answer does not list yet
   * (`runId node` → refreshes left): its events reach the records within a moment.
   */
  const announced = new Map();
  for (const event of data.events ?? []) addEvent(event);
  // The nodes whose rows are open, and the view: from the route, kept in it (keepRoute).
  const expanded = new Set((route?.params.get("open") ?? "").split(",").filter((n) => n !== ""));
  const header = h("div.run-header");
  const timeline = h("div.panel.timeline-panel");
  const waitingEl = h("div.waiting-signals");
  const io = h("div.io-grid");
  const eventLog = h("details.panel.event-log");
  const definition = archive === null ? null : definitionPanel(run.id);
  const changes = runChangesPanel(
    run.id,
    run.flowId,
    () => nodeTimeline(run, events),
    accessKey,
    () => run.status === "running" || run.status === "queued",
  );
  replace(
    container,
    h("p.crumbs", {}, h("a.back-to-runs", { href: runsListHash(), text: "← Runs" })),
    header,
    waitingEl,
    timeline,
    definition,
    changes.el,
    io,
    eventLog,
  );

  /** The header's duration: "running for" grows on the 1 s tick; a queued run is not running. */
  const durationText = () =>
    run.status === "queued"
      ? (run.queue?.runAt ?? 0) > Date.now()
        ? `not started: due ${relativeTime(run.queue.runAt)}`
        : run.queue?.waiting === "slot"
        ? "not started: waiting for a slot"
        : "not started: waiting for a worker"
      : run.durationMs === null || run.durationMs === undefined
      ? `running for ${formatDuration(Date.now() - run.startedAt)}`
      : formatDuration(run.durationMs);
  let headerDuration = null;
  /** Says so when a running run's process has written no heartbeat for a while (see silentFor). */
  const silentNote = h("div.silent-run-slot");
  function updateSilent() {
    const silent = silentFor(run);
    if (silent === null) {
      if (silentNote.firstChild) replace(silentNote);
      return;
    }
    const text = `No heartbeat for ${formatDuration(silent)}: the process running this run ` +
      "writes one every 5 s, so it has most likely died (killed, or its machine is down). " +
      "It reads running until Cancel run, the gc job (Run now on the Jobs page) or a daemon " +
      "records it abandoned (failed); then it can be resumed.";
    const note = silentNote.firstChild;
    if (note) note.textContent = text;
    else replace(silentNote, h("div.notice.notice-conflict.silent-run", { role: "status", text }));
  }

  /**
   * Whether the server would resume this run (with `from`, it may have succeeded): what
   * src/resume.ts's assertResumable and claimResume refuse is not offered. Not a job's run, a
   * sub-run, a running or queued one, one a test's mocks stood in for (in it or its sub-runs),
   * one whose inputs were recorded masked (a secret's value in them), an archived one, or one a
   * run resumes already (resume that one; `by`: that run, or null).
   */
  const resumeAllowed = (by = resumedBy) =>
    !run.flowId.startsWith("job:") && (!run.parentRunId || run.queue) && archive === null &&
    by === null && run.status !== "running" && run.status !== "queued" &&
    run.inputsMasked !== true && run.mocked !== true &&
    !Object.values(run.nodes ?? {}).some((n) => n?.mocked === true);

  /**
   * Resumes this run (`from`: runs that node and those that need it again) and goes to the new
   * run's page; `button` is disabled meanwhile. A refusal goes to `onError`, else to a toast.
   */
  async function startResume(button, from, onError) {
    button.disabled = true;
    try {
      const started = await api.resumeRun(run.id, from);
      ctx.toast(
        "ok",
        from === undefined ? "Resumed as " : `Re-running from ${from} as `,
        h("a", { href: ctx.routeHash(["runs", started.runId]) }, started.runId),
      );
      ctx.navigate(ctx.routeHash(["runs", started.runId]));
    } catch (e) {
      button.disabled = false;
      if (onError) onError(e.message);
      else ctx.toast("error", `Could not resume: ${e.message}`);
    }
  }

  /** The run's flow version (`GET /api/runs/{id}/definition`), fetched once (again after a failure). */
  let versionLoad = null;
  const runVersion = () =>
    versionLoad ??= api.runDefinition(run.id).catch((e) => {
      versionLoad = null;
      throw e;
    });

  /** "Cancel run" was chosen: its confirmation shows (kept while the header draws again). */
  let confirmingCancel = false;

  /** What cancelling stops (the nodes running now, or a queued run's start), and the two choices. */
  function cancelConfirmation() {
    // The nodes running now, as the timeline shows them (from the run's events).
    const running = nodeTimeline(run, events).filter((n) => n.status === "running")
      .map((n) => n.id);
    const what = run.status === "queued"
      ? "It has not started: it leaves the queue and never runs."
      : running.length > 0
      ? `Its running node${running.length === 1 ? "" : "s"} (${running.join(", ")}) stop${
        running.length === 1 ? "s" : ""
      }, the nodes after them do not run.`
      : "The nodes still to run do not run.";
    const keep = () => {
      confirmingCancel = false;
      renderHeader();
      header.querySelector("button.cancel-run")?.focus();
    };
    return h(
      "div.cancel-confirm",
      { role: "alertdialog", "aria-label": "Cancel this run?" },
      h("p.confirm-text", {
        text: `Cancel run ${run.id} of ${run.flowId}? ${what} ` +
          "It is recorded cancelled; this cannot be undone (resume it or run it again).",
      }),
      h(
        "div.actions",
        {},
        h("button.danger.cancel-run-go", {
          type: "button",
          text: "Yes, cancel the run",
          onclick: async (event) => {
            event.target.disabled = true;
            try {
              const answer = await api.cancelRun(run.id);
              confirmingCancel = false;
              ctx.toast("info", `Cancelling ${run.id} (${answer?.status ?? "requested"})`);
              renderHeader();
              // A queued run is cancelled at once (no process of it to send an event): show it.
              if (run.status === "queued") reload();
            } catch (e) {
              event.target.disabled = false;
              ctx.toast("error", `Could not cancel: ${e.message}`);
            }
          },
        }),
        h("button.cancel-run-keep", { type: "button", text: "No, keep it running", onclick: keep }),
      ),
    );
  }

  function renderHeader() {
    const actions = h("div.actions");
    actions.appendChild(h("button.primary", {
      type: "button",
      text: "Re-run with the same inputs",
      // Inputs recorded masked (a secret's value in them) are not the ones the run had.
      title: run.inputsMasked === true
        ? "This run's inputs held a secret's value, recorded as ***: start a run with its inputs " +
          "from the flow's page"
        : "Start a new run of this flow with this run's inputs",
      disabled: run.flowId.startsWith("job:") || run.inputsMasked === true,
      onclick: async () => {
        try {
          const started = await api.startRun(run.flowId, run.inputs);
          ctx.toast(
            "ok",
            "Started ",
            h("a", { href: ctx.routeHash(["runs", started.runId]) }, started.runId),
          );
          ctx.navigate(ctx.routeHash(["runs", started.runId]));
        } catch (e) {
          ctx.toast("error", `Could not start a run: ${e.message}`);
        }
      },
    }));
    // A run that did not succeed (an abandoned one is recorded failed): resumed from where it
    // failed, the nodes that succeeded not run again. An archived run's outputs are not there.
    const resumable = ["failed", "cancelled", "timed-out"].includes(run.status) &&
      resumeAllowed();
    if (resumedBy !== null && !run.flowId.startsWith("job:") && (!run.parentRunId || run.queue)) {
      // Resumed already: resuming it again is refused (the run that resumes it has the newer outputs).
      actions.appendChild(h("a.resumed-by", {
        href: ctx.routeHash(["runs", resumedBy]),
        text: `Resumed by run ${resumedBy}`,
        title: "A run resumes this one: resume that run if it fails",
      }));
    } else if (resumable) {
      actions.appendChild(h("button.resume-run", {
        type: "button",
        text: "Resume from failure",
        title: "Start a new run with this run's inputs that reuses the outputs of the nodes " +
          "that succeeded and runs the rest",
        onclick: (event) => startResume(event.target),
      }));
    }
    if ((run.status === "running" || run.status === "queued") && !confirmingCancel) {
      actions.appendChild(h("button.danger.cancel-run", {
        type: "button",
        text: "Cancel run",
        // Asks first (a cancel cannot be undone): the confirmation says what stops.
        onclick: () => {
          confirmingCancel = true;
          renderHeader();
          header.querySelector("button.cancel-run-keep")?.focus();
        },
      }));
    }
    const fact = (label, ...value) =>
      h("span.fact", {}, h("span.fact-label", { text: label }), h("span.fact-value", {}, value));
    headerDuration = h("span.run-duration", { text: durationText() });
    // Ended meanwhile (here or anywhere): nothing left to confirm.
    if (run.status !== "running" && run.status !== "queued") confirmingCancel = false;
    replace(
      header,
      h(
        "div.run-title",
        {},
        h("h1.view-title", {}, "Run ", h("span.mono", { text: run.id })),
        statusBadge(run.status),
        leaseLapsedAt === null ? null : leaseLapsedBadge(leaseLapsedAt),
        archive === null ? null : archivedBadge(archive),
        actions,
      ),
      confirmingCancel ? cancelConfirmation() : null,
      h(
        "div.run-facts",
        {},
        fact(
          run.flowId.startsWith("job:") ? "job" : "flow",
          h("a", {
            href: run.flowId.startsWith("job:") ? "#/jobs" : ctx.routeHash(["flows", run.flowId]),
            text: run.flowId,
          }),
        ),
        fact(
          "version",
          run.flowId.startsWith("job:")
            ? h("span.mono", { text: run.flowVersion.slice(0, 10), title: run.flowVersion })
            : h("a.mono.version-link", {
              // The flow's page shows the version (from the archive when only it keeps it).
              href: ctx.routeHash(["flows", run.flowId], { to: run.flowVersion }),
              text: run.flowVersion.slice(0, 10),
              title: run.flowVersion,
            }),
        ),
        fact(
          run.queue ? "enqueued" : "started",
          [`${formatTime(run.startedAt)} (`, agoSpan(run.startedAt), ")"],
        ),
        fact("duration", headerDuration),
        run.queue
          ? fact(
            "queue",
            `${run.status === "queued" ? "due" : "ran at"} ${formatTime(run.queue.runAt)}` +
              `, priority ${run.queue.priority}, at most ${run.queue.maxAttempts} ` +
              `attempt${run.queue.maxAttempts === 1 ? "" : "s"}` +
              (run.queue.claim ? `, claimed by ${run.queue.claim.worker}` : "") +
              (run.status === "queued" ? queueWaitText(run.queue) : ""),
          )
          : null,
        run.parentRunId
          ? fact(
            "parent",
            h("a.mono", { href: ctx.routeHash(["runs", run.parentRunId]), text: run.parentRunId }),
          )
          : null,
        onFailure ? onFailureFact(onFailure) : null,
        run.resumeOf
          ? fact(
            "resumes",
            "run ",
            h("a.mono.resumes-link", {
              href: ctx.routeHash(["runs", run.resumeOf]),
              text: run.resumeOf,
              title: "this run resumes that one: the nodes marked reused did not run again",
            }),
          )
          : null,
        run.onFailureOf
          ? fact(
            "reports",
            "on run ",
            h("a.mono.reports-on-link", {
              href: ctx.routeHash(["runs", run.onFailureOf]),
              text: run.onFailureOf,
              title: "this is a run of the config's runs.onFailure flow, about that run",
            }),
          )
          : null,
      ),
      archive === null ? null : h(
        "div.notice.notice-archived",
        {},
        "Archived: the archive job moved this run out of the records store into ",
        h("span.mono", { text: archive }),
        ". It is shown from the archive, read-only; its definition is kept with it.",
      ),
      run.error
        ? h(
          "div.notice.notice-error.run-error",
          { role: "alert" },
          h("strong", { text: run.error.node ? `${run.error.node}: ` : "Error: " }),
          run.error.message,
        )
        : null,
      queueAttempts(run),
      silentNote,
    );
    updateSilent();
  }

  /** "onFailure: alert ran as run <link>" (or who started it, when its run is not recorded). */
  function onFailureFact(marker) {
    const value = marker.runId
      ? [
        `${marker.flow} ran as run `,
        h("a.mono.on-failure-link", {
          href: ctx.routeHash(["runs", marker.runId]),
          text: marker.runId,
          title: "the run of the config's runs.onFailure flow about this run",
        }),
      ]
      : [
        `${marker.flow} started by ${marker.host} (pid ${marker.pid}) at ${formatTime(marker.at)}` +
        ", its run not recorded",
      ];
    return h(
      "span.fact.fact-on-failure",
      {},
      h("span.fact-label", { text: "onFailure" }),
      h("span.fact-value", {}, value),
    );
  }

  // The timeline: rows drawn once, a node's row redrawn when its events come; the bars
  // and running durations move on the 1 s tick (their style and text only).
  let showAll = false;
  /** Shown rows by node id: `{ node, row, bar, duration }`. */
  const shown = new Map();
  /** Every node id the timeline knows (shown or not). */
  const known = new Set();
  /** The first nodes, shown whatever their status (the others show while running or failed). */
  const first = new Set();
  let latestEnd = 0;
  let nodesEl = null;
  let countEl = null;
  let moreEl = null;
  // The graph beside the timeline (one panel, a toggle): loaded on its first showing, drawn
  // once; a node's box takes its status as the node's row is redrawn.
  let view = route?.params.get("view") === "graph" ? "graph" : "timeline";
  /** Writes the open rows and the view into the URL (no new history entry, no render). */
  const keepRoute = () =>
    ctx.replaceRoute(["runs", id], {
      open: [...expanded].join(","),
      view: view === "graph" ? "graph" : undefined,
    });
  /** The graph view (`graphView`), once the run's definition came. */
  let graph = null;
  /** The nodes' `when:` (other than on_success) from the run's definition, once it came. */
  let whens = null;
  let graphLoading = false;
  const graphEl = h("div.graph-scroll.run-graph");
  const graphNote = h("p.graph-legend.muted");
  const nodeStatus = (node) => node.status ?? "pending";
  /** A graph box's status, with a running forEach node's progress. */
  const setGraphStatus = (node) => graph.setStatus(node.id, nodeStatus(node), itemsProgress(node));
  function loadGraph() {
    if (graphLoading || graph !== null) return;
    graphLoading = true;
    replace(graphEl, h("p.muted", { text: "Loading…" }));
    runVersion().then((version) => {
      if (closed) return;
      graph = graphView(version.graph, {
        statuses: {},
        // A box opens its node's row in the timeline, its re-run button focused when it has one.
        onSelect: (nodeId) => {
          view = "timeline";
          expanded.add(nodeId);
          keepRoute();
          renderTimeline();
          const row = shown.get(nodeId)?.row;
          row?.scrollIntoView({ block: "center" });
          row?.querySelector("button.rerun-from")?.focus();
        },
      });
      for (const node of nodeTimeline(run, events, runNodeIds, whens)) setGraphStatus(node);
      replace(graphEl, graph.el);
    }).catch((e) => {
      graphLoading = false;
      replace(graphEl, h("p.muted.graph-missing", { text: e.message }));
    });
  }
  function viewToggle() {
    const button = (name, text) =>
      h("button", {
        type: "button",
        text,
        "aria-pressed": String(view === name),
        dataset: { view: name },
        onclick: () => {
          if (view === name) return;
          view = name;
          keepRoute();
          renderTimeline();
        },
      });
    return h(
      "span.view-toggle",
      { role: "group", "aria-label": "show the nodes as" },
      button("timeline", "Timeline"),
      button("graph", "Graph"),
    );
  }

  /** One node's row as the run's events tell it now. */
  function nodeNow(nodeId) {
    const only = { ...run, nodes: { [nodeId]: run.nodes?.[nodeId] ?? {} } };
    return nodeTimeline(
      only,
      eventsByNode.get(nodeId) ?? [],
      listed.has(nodeId) ? [nodeId] : [],
      whens,
    )[0];
  }

  function timelineSpan() {
    const start = run.startedAt;
    const end = run.endedAt ?? Math.max(Date.now(), latestEnd);
    return { start, span: Math.max(1, end - start), end };
  }

  function placeBar(entry, { start, span, end }) {
    const { node, bar } = entry;
    const left = node.startedAt === null ? 0 : ((node.startedAt - start) / span) * 100;
    const stop = node.endedAt ?? (node.status === "running" ? end : node.startedAt ?? start);
    const width = node.startedAt === null
      ? 0
      : Math.max(0.5, ((stop - node.startedAt) / span) * 100);
    bar.style.left = `${Math.min(99.5, Math.max(0, left))}%`;
    bar.style.width = `${Math.min(100 - Math.min(99.5, left), width)}%`;
  }

  const nodeDuration = (node) =>
    node.durationMs !== null
      ? formatDuration(node.durationMs)
      : node.status === "running" && node.startedAt !== null
      ? formatDuration(Date.now() - node.startedAt)
      : "";

  function nodeRow(node, span) {
    const bar = h(`div.gantt-bar.status-${node.status ?? "pending"}`);
    const duration = h("span.node-duration.num", { text: nodeDuration(node) });
    const open = expanded.has(node.id);
    const row = h(
      "div.node-row",
      { dataset: { node: node.id, status: node.status ?? "pending" } },
      h(
        "button.node-summary",
        {
          type: "button",
          "aria-expanded": String(open),
          onclick: () => {
            if (expanded.has(node.id)) expanded.delete(node.id);
            else expanded.add(node.id);
            keepRoute();
            updateNode(node.id);
          },
        },
        h(
          "span.node-name.mono",
          {},
          node.id,
          // A node of `when: on_failure` or `always`: why it ran, or was skipped.
          node.when ? h("span.node-when.muted", { text: ` when: ${node.when}` }) : null,
          // A test's mock stood in for it: what it shows did not happen.
          node.mocked
            ? h("span.node-when.muted", {
              text: " mocked",
              title: "a test's mock stood in for this node: it did not run",
            })
            : null,
          // A resumed run's node that did not run: its output is the resumed run's.
          node.reused
            ? h("span.node-when.muted.node-reused", {
              text: ` reused from ${node.reused}`,
              title: `not run again: its output is the one run ${node.reused} recorded`,
            })
            : null,
        ),
        statusBadge(node.status ?? "pending"),
        h("span.node-attempts", {
          text: [
            itemsProgress(node) === null ? itemsText(node.items) : "",
            node.attempt > 1 ? `${node.attempt} attempts` : node.attempt === 1 ? "1 attempt" : "",
          ].filter(Boolean).join(", "),
        }),
        duration,
        h("span.gantt", {}, bar),
      ),
      itemsProgress(node) === null ? null : progressBar(itemsProgress(node)),
      node.error ? h("div.node-error", { text: node.error }) : null,
      // The runs of its sub-flows (a link each: the button above toggles the node's detail).
      node.subRuns?.length
        ? h(
          "div.node-sub-runs.muted",
          {},
          node.subRuns.length === 1 ? "sub-run " : "sub-runs ",
          node.subRuns.map((id, i) => [
            i === 0 ? null : ", ",
            h("a.mono", {
              href: ctx.routeHash(["runs", id]),
              text: id,
              title: "its sub-flow's run",
            }),
          ]),
        )
        : null,
      open ? nodeDetail(node) : null,
    );
    const entry = { node, row, bar, duration };
    placeBar(entry, span);
    return entry;
  }

  function noteNode(node) {
    known.add(node.id);
    if (node.endedAt !== null && node.endedAt > latestEnd) latestEnd = node.endedAt;
  }

  function renderCounts() {
    if (countEl) {
      countEl.textContent = nextNodes !== undefined
        ? `${known.size} of ${nodesTotal} nodes · loading the others…`
        : `${known.size} node${
          known.size === 1 ? "" : "s"
        } · click a node for attempts, logs, reads and writes`;
    }
    if (moreEl) {
      const hidden = known.size - shown.size;
      moreEl.style.display = hidden > 0 ? "" : "none";
      moreEl.textContent = `show all ${known.size} nodes (${hidden} more)`;
    }
  }

  function renderTimeline() {
    const nodes = nodeTimeline(run, events, runNodeIds, whens);
    shown.clear();
    known.clear();
    first.clear();
    latestEnd = 0;
    for (const node of nodes) noteNode(node);
    for (const node of nodes.slice(0, TIMELINE_CAP)) first.add(node.id);
    const span = timelineSpan();
    const rows = (showAll ? nodes : shownNodes(nodes)).map((node) => {
      const entry = nodeRow(node, span);
      shown.set(node.id, entry);
      return entry.row;
    });
    countEl = h("span.muted");
    moreEl = h("button.show-all", {
      type: "button",
      onclick: () => {
        showAll = true;
        renderTimeline();
      },
    });
    nodesEl = nodes.length === 0 ? null : h("div.nodes", {}, rows);
    const graphShown = view === "graph";
    if (graphShown) {
      loadGraph();
      if (graph !== null) { for (const node of nodes) setGraphStatus(node); }
      graphNote.textContent = "Each box: the node, its type and its status (click it for its " +
        (resumeAllowed()
          ? "row in the timeline, where you can re-run from it). "
          : "row in the timeline). ") +
        "Arrows: needs; dashed: into a when: on_failure / always node; " +
        "dotted: it waits for the end of the rest of the run.";
    }
    replace(
      timeline,
      h(
        "div.panel-head",
        {},
        h("h2", { text: graphShown ? "Graph" : "Timeline" }),
        countEl,
        viewToggle(),
      ),
      graphShown ? graphEl : nodesEl ?? h("p.muted", { text: "No node has started yet." }),
      graphShown ? graphNote : h("p.timeline-more", {}, moreEl),
    );
    renderCounts();
  }

  /** Redraws one node's row from its events (adds it, when it is new and would show). */
  function updateNode(nodeId) {
    const node = nodeNow(nodeId);
    if (graph !== null) setGraphStatus(node);
    const isNew = !known.has(nodeId);
    noteNode(node);
    if (isNew && first.size < TIMELINE_CAP) first.add(nodeId);
    const old = shown.get(nodeId);
    if (!(showAll || first.has(nodeId) || notable(node))) {
      // Past the first ones, a node shows while it runs (or once it failed).
      if (old) {
        old.row.remove();
        shown.delete(nodeId);
      }
      renderCounts();
      return;
    }
    if (!nodesEl) {
      renderTimeline();
      return;
    }
    const entry = nodeRow(node, timelineSpan());
    shown.set(nodeId, entry);
    if (old) old.row.replaceWith(entry.row);
    else nodesEl.appendChild(entry.row);
    if (!old) renderCounts();
  }

  /** The 1 s tick of a running run: bars, running durations, the header's "running for". */
  function tick() {
    if (headerDuration) headerDuration.textContent = durationText();
    updateSilent();
    const span = timelineSpan();
    for (const entry of shown.values()) {
      placeBar(entry, span);
      if (entry.node.status === "running") entry.duration.textContent = nodeDuration(entry.node);
    }
  }

  /** The node whose "Re-run from here" asks for a confirmation, and what the page says then. */
  let rerunAsk = null;

  /**
   * A node's "Re-run from here" (a resume from it, when the server would take one), its
   * confirmation (what runs again, what keeps its output) and the server's refusal.
   */
  function rerunControl(node) {
    if (resumedBy !== null && resumeAllowed(null)) {
      return h(
        "p.muted.rerun-note",
        {},
        "Run ",
        h("a.mono", { href: ctx.routeHash(["runs", resumedBy]), text: resumedBy }),
        " resumes this one: re-run from a node on its page.",
      );
    }
    if (!resumeAllowed()) return null;
    const ask = rerunAsk?.node === node.id ? rerunAsk : null;
    /** Redraws the node's row as `next` says, the focus on what it asks next. */
    const redraw = (next) => {
      rerunAsk = next;
      updateNode(node.id);
      const row = shown.get(node.id)?.row;
      (row?.querySelector("button.rerun-confirm-go") ?? row?.querySelector("button.rerun-from"))
        ?.focus();
    };
    const open = h("button.rerun-from", {
      type: "button",
      text: "Re-run from here",
      title: `Start a new run with this run's inputs that runs ${node.id} and every node ` +
        "that needs it again; the others keep their recorded outputs",
      "aria-expanded": String(ask !== null),
      disabled: ask?.loading === true,
      onclick: async () => {
        if (ask !== null) return redraw(null);
        redraw({ node: node.id, loading: true });
        try {
          // The server says what the resume would do (GET /api/runs/{id}/resume?from=…).
          const preview = await api.resumePreview(run.id, node.id);
          if (rerunAsk?.node === node.id) redraw({ node: node.id, preview });
        } catch (e) {
          if (rerunAsk?.node === node.id) redraw({ node: node.id, error: e.message });
        }
      },
    });
    const error = h("p.notice.notice-error.rerun-error", {
      role: "alert",
      text: ask?.error ?? "",
      hidden: ask?.error === undefined,
    });
    const preview = ask?.preview;
    const count = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;
    const again = preview ? preview.nodes.filter((n) => !n.reused && n.node !== node.id) : [];
    const kept = preview ? preview.nodes.filter((n) => n.reused).length : 0;
    const confirm = preview
      ? h(
        "div.rerun-confirm",
        { role: "group", "aria-label": `Re-run from ${node.id}` },
        h(
          "p",
          {},
          "A new run with this run's inputs runs ",
          h("strong.mono", { text: node.id }),
          again.length === 0 ? " again" : ` and ${count(again.length, "other node")} again`,
          kept === 0
            ? "; no node keeps its recorded output."
            : `; ${count(kept, "node")} ${kept === 1 ? "keeps its" : "keep their"} recorded ` +
              "outputs (marked reused).",
        ),
        again.length === 0 ? null : h(
          "details.rerun-why",
          { open: again.length <= 8 },
          h("summary", { text: "Why they run again" }),
          h(
            "ul",
            {},
            ...again.map((n) =>
              h("li", {}, h("span.mono", { text: n.node }), ": ", h("span", { text: n.message }))
            ),
          ),
        ),
        h(
          "div.actions",
          {},
          h("button.primary.rerun-confirm-go", {
            type: "button",
            text: `Re-run from ${node.id}`,
            onclick: (event) =>
              startResume(event.target, node.id, (message) => {
                error.textContent = message;
                error.hidden = false;
              }),
          }),
          h("button.rerun-cancel", {
            type: "button",
            text: "Cancel",
            onclick: () => redraw(null),
          }),
        ),
      )
      : null;
    return h("div.rerun", {}, open, confirm, error);
  }

  function nodeDetail(node) {
    const outcome = run.nodes?.[node.id];
    return h(
      "div.node-detail",
      {},
      rerunControl(node),
      h(
        "div.node-facts",
        {},
        h("span", {}, h("span.fact-label", { text: "started" }), formatClock(node.startedAt)),
        h("span", {}, h("span.fact-label", { text: "ended" }), formatClock(node.endedAt)),
        node.outputBytes !== undefined
          ? h(
            "span",
            {},
            h("span.fact-label", { text: "output" }),
            `${node.outputBytes} byte${node.outputBytes === 1 ? "" : "s"}`,
          )
          : null,
      ),
      // Shown when one failed, or when each item ran a sub-flow (its run linked here).
      node.attempts.some((a) => a.error || a.run)
        ? h(
          "div.attempts",
          {},
          h("h3", { text: "Attempts" }),
          h(
            "ol",
            {},
            // A forEach node's in item order (they start in any order when run concurrently).
            [...node.attempts].sort((a, b) => (a.item ?? 0) - (b.item ?? 0)).map((a) =>
              h(
                "li",
                { dataset: a.item === null || a.item === undefined ? {} : { item: a.item } },
                a.item === null || a.item === undefined
                  ? `#${a.attempt} `
                  : `item ${a.item} #${a.attempt} `,
                a.run
                  ? [
                    h("a.mono.item-run", {
                      href: ctx.routeHash(["runs", a.run]),
                      text: a.run,
                      title: `the sub-flow's run of item ${a.item}, attempt ${a.attempt}`,
                    }),
                    " ",
                  ]
                  : null,
                // Without an error: ok once the node ended; while it runs, it may still be going.
                a.error
                  ? h("span.error-text", { text: a.error })
                  : node.status === "running"
                  ? h("span.muted", { text: "started" })
                  : "ok",
              )
            ),
          ),
        )
        : null,
      h(
        "div.keysets",
        {},
        keyList("Reads", node.reads, node.readsTruncated, run, node, "reads"),
        keyList("Writes", node.writes, node.writesTruncated, run, node, "writes"),
      ),
      h(
        "div.logs",
        {},
        h("h3", { text: `Logs (${node.logs.length})` }),
        node.logs.length === 0 ? h("p.muted.none", { text: "none" }) : h(
          "ol.log-lines.mono",
          {},
          node.logs.map((l) =>
            h(
              `li.log-${l.level}`,
              {},
              h("span.log-time", { text: formatClock(l.at) }),
              h("span.log-level", { text: l.level }),
              l.item === undefined ? null : h("span.log-item", { text: `item ${l.item}` }),
              h("span.log-message", { text: l.message }),
            )
          ),
        ),
      ),
      outcome && outcome.output !== undefined
        ? h(
          "div",
          {},
          h("h3", { text: "Output" }),
          h("pre.json", { text: prettyJson(outcome.output) }),
        )
        : null,
    );
  }

  function renderIo() {
    replace(
      io,
      h(
        "div.panel",
        {},
        h("h2", { text: "Inputs" }),
        h("pre.json", { text: prettyJson(run.inputs) }),
      ),
      h(
        "div.panel",
        {},
        h("h2", { text: "Outputs" }),
        run.outputs === null
          ? h("p.muted", { text: run.status === "running" ? "Not yet." : "None." })
          : h("pre.json", { text: prettyJson(run.outputs) }),
      ),
    );
  }

  // The event log: its lines are drawn only while it is open, a page at a time.
  let eventLimit = EVENT_PAGE;
  const eventSummary = h("summary");
  const eventLines = h("div.event-lines-holder");
  eventLog.append(eventSummary, eventLines);
  eventLog.addEventListener("toggle", () => renderEventLog());
  function renderEventLog() {
    eventSummary.textContent = `Events (${events.length})`;
    if (!eventLog.open) {
      eventLines.replaceChildren();
      return;
    }
    const more = events.length - eventLimit;
    replace(
      eventLines,
      h(
        "ol.event-lines.mono",
        {},
        events.slice(0, eventLimit).map((e) => {
          const { at, type, ...rest } = e;
          return h(
            "li",
            {},
            h("span.log-time", { text: formatClock(at) }),
            h("span.event-type", { text: type }),
            h("span", { text: JSON.stringify(rest) }),
          );
        }),
      ),
      more > 0
        ? h("button.show-more-events", {
          type: "button",
          text: `show ${Math.min(more, EVENT_PAGE)} more of ${more}`,
          onclick: () => {
            eventLimit += EVENT_PAGE;
            renderEventLog();
          },
        })
        : null,
    );
  }
  const eventLogLater = throttle(renderEventLog, 1000);

  /** What the waiting panels show (redrawn only when it changes: a textarea keeps its text). */
  let waitingShown = "";

  /**
   * A JSON data box, a "Send signal" button and, once sent, what the server said of it (as
   * `flowstate runs signal` says it): which node goes on, that no node waits for it now (it is
   * kept for the run), or its warning when no `wait` node of the run's flow waits for the name (a
   * typo, most often). `nameOf()` is the name, or undefined after saying why there is none in
   * `problem`; `once`: the button stays disabled after a signal went (a waiting node's panel).
   */
  function signalForm(nameOf, once) {
    const area = h("textarea.mono.signal-data", {
      rows: 2,
      spellcheck: false,
      placeholder: "optional data, as JSON",
    });
    const problem = h("p.form-error", { role: "alert" });
    const said = h("p.signal-said", { role: "status" });
    const send = h("button.primary", {
      type: "button",
      text: "Send signal",
      onclick: async () => {
        problem.textContent = "";
        said.textContent = "";
        said.classList.remove("signal-warning");
        const signal = nameOf(problem);
        if (signal === undefined) return;
        let data;
        if (area.value.trim() !== "") {
          try {
            data = parseJson(area.value);
          } catch (e) {
            problem.textContent = `The data is not valid JSON: ${e.message}`;
            return;
          }
        }
        send.disabled = true;
        let answer;
        try {
          answer = await api.signalRun(run.id, signal, data);
        } catch (e) {
          send.disabled = false;
          problem.textContent = `Could not send the signal: ${e.message}`;
          return;
        }
        ctx.toast("ok", `Sent signal ${signal} to ${run.id}`);
        const nodes = answer?.waiting ?? [];
        if (answer?.warning) {
          said.classList.add("signal-warning");
          said.textContent = `Warning: ${answer.warning}`;
        } else if (nodes.length === 0) {
          said.textContent = `No node waits for signal ${signal} now: it is kept for the run, ` +
            "and its wait node takes it when it waits (it is dropped if the run ends first)";
        }
        if (once && nodes.length > 0) send.textContent = "Sent: the run goes on within a second";
        else {
          send.disabled = false;
          if (nodes.length > 0) said.textContent = `Sent: node ${nodes[0]} goes on within a second`;
        }
      },
    });
    return { area, problem, said, send };
  }

  /**
   * "Send a signal" by name, to a queued or running run: sent early, a signal is kept until its
   * node waits; a custom node may take any name (`ctx.takeSignal`). Made once: what is typed stays.
   */
  let anySignal = null;
  function anySignalPanel() {
    if (anySignal !== null) return anySignal;
    const name = h("input.mono.signal-name", {
      type: "text",
      placeholder: "approve",
      autocomplete: "off",
      spellcheck: false,
      "aria-label": "signal name",
    });
    const form = signalForm((problem) => {
      const text = name.value.trim();
      if (text === "") {
        problem.textContent = "Give the signal's name (the one its wait node waits for)";
        return undefined;
      }
      return text;
    }, false);
    form.area.setAttribute("aria-label", "data of the signal, as JSON");
    anySignal = h(
      "details.panel.send-signal",
      {},
      h("summary", { text: "Send a signal" }),
      h("p.muted", {
        text: "A signal sent before its wait node waits is kept for the run until it does.",
      }),
      h("label.block", {}, "Name ", name),
      form.area,
      form.problem,
      form.said,
      h("div.actions", {}, form.send),
    );
    return anySignal;
  }

  /**
   * A panel a node waiting for a signal: its signal, its message, and "Send signal" (to this
   * run, also for a node of a sub-run: its wait takes the signals sent to its ancestors); and,
   * while the run is queued or running, "Send a signal" by name.
   */
  function renderWaiting() {
    const live = run.status === "running" || run.status === "queued";
    const now = run.status === "running"
      ? waiting.map((w) => [w.runId === run.id ? w.node : `${w.runId} ${w.node}`, w])
        .sort(([a], [b]) => a < b ? -1 : 1)
      : [];
    const key = JSON.stringify([live, now]);
    if (key === waitingShown) return;
    waitingShown = key;
    replace(
      waitingEl,
      now.map(([, { runId, node: nodeId, signal, message }]) => {
        const form = signalForm(() => signal, true);
        form.area.setAttribute("aria-label", `data of signal ${signal}, as JSON`);
        return h(
          "div.panel.waiting-signal",
          { dataset: runId === run.id ? { node: nodeId } : { node: nodeId, run: runId } },
          h(
            "p.waiting-what",
            {},
            "Node ",
            h("span.mono", { text: nodeId }),
            runId === run.id ? null : " of sub-run ",
            runId === run.id
              ? null
              : h("a.mono", { href: ctx.routeHash(["runs", runId]), text: runId }),
            " is waiting for signal ",
            h("code", { text: signal }),
          ),
          message ? h("p.waiting-message", { text: message }) : null,
          form.area,
          form.problem,
          form.said,
          h("div.actions", {}, form.send),
        );
      }),
      live ? anySignalPanel() : null,
    );
  }

  function renderAll() {
    renderHeader();
    renderWaiting();
    renderTimeline();
    renderIo();
    renderEventLog();
  }
  renderAll();
  // A link (or a reload) naming an open node: its row is shown.
  if (expanded.size > 0 && view === "timeline") {
    shown.get([...expanded][0])?.row.scrollIntoView({ block: "center" });
  }
  // A running run's record says no node's `when:` yet: its flow definition does.
  if (run.status === "running" || run.status === "queued") {
    runVersion().then((version) => {
      const defined = new Map();
      for (const spec of version?.definition?.nodes ?? []) {
        if (
          typeof spec?.id === "string" && (spec.when === "on_failure" || spec.when === "always")
        ) {
          defined.set(spec.id, spec.when);
        }
      }
      if (closed || defined.size === 0) return;
      whens = defined;
      renderTimeline();
    }, () => {}); // no definition (an old record): the tags come with the run's end
  }
  changes.load();

  // The other pages of nodes, one after the other, each drawn as it comes.
  let closed = false;
  (async () => {
    while (nextNodes !== undefined && !closed) {
      let page;
      try {
        page = await api.runNodes(id, { offset: nextNodes, limit: REST_NODES });
      } catch {
        nextNodes = undefined; // what came is shown
        renderCounts();
        return;
      }
      if (closed) return;
      for (const nodeId of page.nodeIds) {
        if (listed.has(nodeId)) continue;
        listed.add(nodeId);
        runNodeIds.push(nodeId);
      }
      // A node's outcome as the record said it (a reload may have brought a fresher one).
      for (const [nodeId, outcome] of Object.entries(page.run.nodes ?? {})) {
        if (!Object.hasOwn(run.nodes, nodeId)) run.nodes[nodeId] = outcome;
      }
      let added = 0;
      for (const event of page.events ?? []) if (addEvent(event)) added++;
      if (added > 0) events.sort((a, b) => a.at - b.at);
      nextNodes = page.next;
      renderTimeline();
      renderEventLog();
    }
  })();

  /**
   * The run's record and the events recorded since the last refresh (from
   * `eventCursor` on: a poll of a long run brings what changed, not the whole
   * run). The feed's events come sooner, and the same events come here too
   * once recorded: `addEvent` keeps one of each. Events the feed missed
   * (while it was down, or dropped) come here, so the page misses none. Once
   * the run ended, its record holds every node's outcome: every row is drawn
   * from it (a node whose end event was missed too).
   */
  async function refresh() {
    let fresh;
    try {
      fresh = await api.run(id, eventCursor);
    } catch (e) {
      // A cursor the server does not know (the run's events were rewritten): all of them.
      if (!(e instanceof ApiError && e.status === 400 && eventCursor !== undefined)) throw e;
      eventCursor = undefined;
      fresh = await api.run(id);
    }
    if (typeof fresh.eventCount === "number") eventCursor = fresh.eventCount;
    return fresh;
  }

  // One refresh at a time (an answer never overtakes a later one); one more if asked meanwhile.
  let refreshing = false;
  let refreshAgain = false;
  async function reloadNow() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    try {
      do {
        refreshAgain = false;
        await reloadOnce();
      } while (refreshAgain && !closed);
    } finally {
      refreshing = false;
    }
  }

  async function reloadOnce() {
    try {
      const wasRunning = run.status === "running" || run.status === "queued";
      const wasStatus = run.status;
      const fresh = await refresh();
      if (closed) return;
      run = fresh.run;
      onFailure = fresh.onFailure ?? null;
      resumedBy = fresh.resumedBy ?? null;
      leaseLapsedAt = fresh.leaseLapsedAt ?? null;
      waiting = fresh.waiting ?? [];
      for (const w of waiting) announced.delete(`${w.runId} ${w.node}`);
      for (const [key, left] of announced) {
        if (left <= 1) announced.delete(key);
        else announced.set(key, left - 1);
      }
      const touched = new Set();
      let added = 0;
      for (const event of fresh.events ?? []) {
        if (!addEvent(event)) continue;
        added++;
        if (typeof event?.node === "string") touched.add(event.node);
      }
      if (added > 0) events.sort((a, b) => a.at - b.at);
      renderHeader();
      renderWaiting();
      // Few new events while it runs: redraw their nodes' rows; else the whole timeline.
      if (run.status !== wasStatus || touched.size > 200) renderTimeline();
      else for (const nodeId of touched) updateNode(nodeId);
      renderIo();
      if (added > 0 || run.status !== wasStatus) renderEventLog();
      // The changes grow while the run runs (and once more as it ends).
      if (wasRunning) changes.load({ live: true });
      else changes.render();
    } catch {
      // keep what is shown
    }
  }
  const reload = throttle(reloadNow, 300);

  const reloadChanges = throttle(() => changes.load({ live: true }), 300);
  onEvent = (type, data) => {
    if (type === "connection") {
      // (Re)connected: what the feed missed. An ended run changes no more.
      if (data.connected && (run.status === "running" || run.status === "queued")) reload();
      return;
    }
    // The runs.onFailure flow starts after this run ended, in whichever process saw it end:
    // a run started after its bad end may be it (the next answer carries its marker).
    if (
      type === "run.started" && data?.runId !== id && onFailure?.runId === undefined &&
      MAY_FIRE_ON_FAILURE.has(run.status)
    ) {
      reload();
      return;
    }
    if (type === "node" && data?.event && run.status === "running") {
      // A node logs a waiting line (here or in a sub-run), or a waiting one goes on: whether a
      // `wait` node waits, the server says.
      const waits = waitingOf(data.event);
      const key = `${data.runId} ${data.event.node}`;
      if (waits) announced.set(key, 5);
      else if (waits === null) announced.delete(key);
      if (waits || waits === null && waiting.some((w) => `${w.runId} ${w.node}` === key)) reload();
    }
    if (data?.runId !== id && data?.run?.id !== id && data?.id !== id) return;
    if (type === "node" && data.event) {
      if (!addEvent(data.event)) return;
      if (data.event.type === "run.end") reload();
      else {
        if (typeof data.event.node === "string") updateNode(data.event.node);
        eventSummary.textContent = `Events (${events.length})`;
        if (eventLog.open) eventLogLater();
        if (data.event.type === "node.end" && data.event.writes) reloadChanges();
      }
    } else if (type === "run.ended" || type === "run.started") {
      reload();
    }
  };
  for (const [type, data] of early.splice(0)) onEvent(type, data);
  // A running run's durations grow (the tick moves them). Its record is fetched
  // again while it runs: events it emitted before this page listened, and not
  // yet in the records when it was first fetched, come with it (the feed brings
  // the rest at once): every 2 s without the feed, every 5 s with it.
  let ticks = 0;
  const timer = setInterval(() => {
    // A queued run: its "due in" moves; it starts or is cancelled in any process.
    if (run.status !== "running" && run.status !== "queued") return;
    tick();
    // A wait the feed announced and the records did not hold yet: asked again each second.
    if (++ticks % (ctx.live.connected ? 5 : 2) === 0 || announced.size > 0) reload();
  }, 1000);
  return () => {
    closed = true;
    clearInterval(timer);
  };
}

/** An archived run's definition (the flow file as it was), loaded from the API. */
function definitionPanel(runId) {
  const body = h("div.definition-body", {}, h("p.muted", { text: "Loading…" }));
  const head = h("span.muted");
  api.runDefinition(runId).then((version) => {
    head.textContent = `version ${version.seq}, ${version.hash.slice(0, 10)} · saved ${
      formatTime(version.createdAt)
    } · from the ${version.from === "archive" ? "archive" : "records store"}`;
    replace(
      body,
      h("pre.source.definition-source", {
        text: version.source ?? JSON.stringify(version.definition, null, 2),
      }),
    );
  }).catch((e) => {
    replace(body, h("p.muted.definition-missing", { text: e.message }));
  });
  return h(
    "details.panel.definition-panel",
    { open: true },
    h("summary", {}, h("h2", { text: "Definition" }), " ", head),
    body,
  );
}

function keyList(title, keys, truncated, run, node, className) {
  return h(
    `div.keyset.${className}`,
    {},
    h("h3", { text: `${title} (${keys.length}${truncated ? "+" : ""})` }),
    keys.length === 0 ? h("p.muted.none", { text: "none" }) : h(
      "ul.mono",
      {},
      keys.map((k) => h("li", {}, accessLink(k, run, node))),
    ),
    truncated ? h("p.muted", { text: `only the first ${keys.length} are recorded` }) : null,
  );
}

/** The full store key of a node's state access `{ scope, key, store?, prefix? }`. */
export function accessKey(access, flowId, nodeId) {
  const prefix = access.scope === "global"
    ? ["global"]
    : access.scope === "flow"
    ? ["flow", flowId]
    : ["node", flowId, nodeId];
  return [...prefix, ...access.key.map(String)];
}

/** One read or write: `scope: a / b`, a link to the value in the state view. */
function accessLink(item, run, node) {
  if (!item || typeof item !== "object" || !Array.isArray(item.key)) {
    return h("span", { text: JSON.stringify(item) });
  }
  const scope = typeof item.scope === "string" ? item.scope : "?";
  const text = `${scope}: ${item.key.length ? keyText(item.key.map(String)) : "(all)"}${
    item.prefix ? " / …" : ""
  }${item.store ? ` (store ${item.store})` : ""}`;
  if (item.prefix || !["node", "flow", "global"].includes(scope)) return h("span", { text });
  const params = new URLSearchParams();
  if (item.store) params.set("store", item.store);
  params.set("key", JSON.stringify(accessKey(item, run.flowId, node.id)));
  return h("a", { href: `#/state?${params}`, text, title: "open in State" });
}
