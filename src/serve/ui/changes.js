// A run's state changes (GET /api/runs/{id}/changes): per node, the keys it
// wrote with the value before → after, from the stores' change feeds; for a
// store without a feed, the keys of the run's write sets and why no values.

import { api } from "./api.js";
import { formatClock, h, keyText, prettyJson, replace } from "./dom.js";

/** Changes per request (the API's page). */
const PAGE = 200;
/** Pages read in a row while they come back empty (a busy feed holds others' changes). */
const EMPTY_PAGES = 10;
/** Longer compact JSON shows cut, with a button for the whole value. */
export const SHORT_JSON = 80;

/** A value as compact JSON (`undefined` as empty). */
export function compactJson(value) {
  if (value === undefined) return "";
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/**
 * The changes grouped by node, in the order of `nodeIds` (the timeline's),
 * then any other node in order of appearance: `[{ node, changes }]`.
 */
export function changesByNode(changes, nodeIds) {
  const groups = new Map(nodeIds.map((id) => [id, []]));
  for (const change of changes) {
    const id = change.by?.nodeId ?? "";
    if (!groups.has(id)) groups.set(id, []);
    groups.get(id).push(change);
  }
  return [...groups].filter(([, list]) => list.length > 0).map(([node, list]) => ({
    node,
    changes: list,
  }));
}

/**
 * The writes recorded for a node (`{ scope, key, store?, prefix? }`) that
 * went to a store without a feed (`feedless`: names), with that store:
 * `[{ store, access }]`. `scopes` maps each scope to its store.
 */
export function unfedWrites(writes, scopes, feedless) {
  const out = [];
  for (const access of writes ?? []) {
    if (!access || typeof access !== "object" || !Array.isArray(access.key)) continue;
    const store = access.store ?? scopes?.[access.scope];
    if (store !== undefined && feedless.has(store)) out.push({ store, access });
  }
  return out;
}

function stateHref(store, key) {
  const params = new URLSearchParams();
  params.set("store", store);
  params.set("key", JSON.stringify(key));
  return `#/state?${params}`;
}

/**
 * A value cell: compact JSON, cut when long, with a button to show it whole.
 * `open` holds the ids of the cells shown whole (kept across renders).
 */
function valueView(value, id, open) {
  const text = compactJson(value);
  if (text.length <= SHORT_JSON) return h("code.change-value", { text });
  const cell = h("span.change-long");
  const draw = () => {
    const whole = open.has(id);
    replace(
      cell,
      whole
        ? h("pre.json.change-full", { text: prettyJson(value) })
        : h("code.change-value", { text: text.slice(0, SHORT_JSON) + "…" }),
      h("button.link.expand", {
        type: "button",
        text: whole ? "show less" : `show all (${text.length} chars)`,
        "aria-expanded": String(whole),
        onclick: () => {
          if (open.has(id)) open.delete(id);
          else open.add(id);
          draw();
        },
      }),
    );
  };
  draw();
  return cell;
}

function tooBig(size, store, key) {
  return h(
    "span.muted",
    {},
    `${Math.round(size / 1024)} KiB, not shown here · `,
    h("a", { href: stateHref(store, key), text: "open in State" }),
  );
}

function beforeCell(change, open) {
  const before = change.before ?? { kind: "unknown", reason: "not given" };
  switch (before.kind) {
    case "value":
      return valueView(before.value, `${change.store}#${change.seq}<`, open);
    case "truncated":
      return tooBig(before.size, change.store, change.key);
    case "absent":
      return h("span.tag.tag-absent", { text: "absent", title: "the key did not exist before" });
    default:
      return h("span.muted.unknown", { text: "not in the feed", title: before.reason ?? "" });
  }
}

function afterCell(change, open) {
  if (change.op === "delete") {
    return h("span.tag.tag-deleted", { text: "deleted" });
  }
  if (change.truncated) return tooBig(change.size ?? 0, change.store, change.key);
  return valueView(change.value, `${change.store}#${change.seq}>`, open);
}

function changeRow(change, open) {
  return h(
    "tr.change-row",
    { dataset: { key: JSON.stringify(change.key), store: change.store, seq: change.seq } },
    h(
      "td.change-key.mono",
      {},
      h("a", {
        href: stateHref(change.store, change.key),
        text: keyText(change.key),
        title: `open ${keyText(change.key)} in State`,
      }),
    ),
    h("td.change-before.mono", {}, beforeCell(change, open)),
    h("td.change-arrow", { text: "→", "aria-label": "became" }),
    h("td.change-after.mono", {}, afterCell(change, open)),
    h("td.change-meta.muted", {
      text: `${change.store} #${change.seq}`,
      title: `store ${change.store}, change #${change.seq} of its feed, at ${
        formatClock(change.at)
      }`,
    }),
  );
}

function unfedRow({ store, access }, flowId, nodeId, accessKey) {
  const key = access.prefix ? null : accessKey(access, flowId, nodeId);
  const text = `${access.scope}: ${access.key.length ? keyText(access.key.map(String)) : "(all)"}${
    access.prefix ? " / …" : ""
  }`;
  return h(
    "tr.change-row.unfed",
    { dataset: { store } },
    h(
      "td.change-key.mono",
      {},
      key ? h("a", { href: stateHref(store, key), text: keyText(key) }) : h("span", { text }),
    ),
    h("td.change-unfed.muted", {
      colSpan: 3,
      text: "written; values not recorded (no change feed)",
    }),
    h("td.change-meta.muted", { text: store }),
  );
}

function changesTable(rows) {
  return h(
    "table.changes-table",
    {},
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { text: "Key" }),
        h("th", { text: "Before" }),
        h("th", { text: "", "aria-label": "became" }),
        h("th", { text: "After" }),
        h("th", { text: "Store" }),
      ),
    ),
    h("tbody", {}, rows),
  );
}

/**
 * The "State changes" panel of a run's page. `getNodes()` gives the
 * timeline's nodes (`{ id, writes }` in order); `accessKey` turns a write
 * set entry into its full store key; `isRunning()` whether the run still
 * runs. Returns `{ el, load, render }`: `load()` reads the first page again
 * (`load({ live: true })`, as the run goes on: not once more pages were
 * asked for), `render()` draws again what was read.
 */
export function runChangesPanel(runId, flowId, getNodes, accessKey, isRunning = () => false) {
  const el = h("div.panel.changes-panel");
  let page = null; // the last page (stores, scopes, cursor)
  let changes = [];
  let error = null;
  let loading = false;
  let serial = 0;
  const open = new Set(); // the values shown whole

  async function fetchPages(cursor, mine) {
    let answer = null;
    const found = [];
    for (let i = 0; i < EMPTY_PAGES; i++) {
      answer = await api.runChanges(runId, { limit: PAGE, cursor });
      if (mine !== serial) return null;
      found.push(...answer.changes);
      cursor = answer.cursor;
      if (found.length > 0 || cursor === undefined) break;
    }
    return { answer, found };
  }

  let more = false; // "Load more" was used: a live refresh would drop those pages
  async function load(options = {}) {
    if (options.live && more) return;
    if (!options.live) more = false;
    const mine = ++serial;
    loading = true;
    try {
      const got = await fetchPages(undefined, mine);
      if (got === null) return;
      page = got.answer;
      changes = got.found;
      error = null;
    } catch (e) {
      if (mine !== serial) return;
      error = e;
    } finally {
      if (mine === serial) loading = false;
    }
    render();
  }

  async function loadMore(button) {
    more = true;
    const mine = ++serial;
    button.disabled = true;
    button.textContent = "loading…";
    try {
      const got = await fetchPages(page.cursor, mine);
      if (got === null) return;
      page = got.answer;
      changes = changes.concat(got.found);
      error = null;
    } catch (e) {
      if (mine !== serial) return;
      error = e;
    }
    render();
  }

  function render() {
    const head = h(
      "div.panel-head",
      {},
      h("h2", { text: "State changes" }),
      page
        ? h("span.muted", {
          text: summaryText(),
        })
        : null,
    );
    if (error) {
      replace(
        el,
        head,
        h(
          "div.notice.notice-error.changes-error",
          { role: "alert" },
          `Could not load this run's state changes: ${error.message}. The rest of the run is shown above and below. `,
          h("button.link", { type: "button", text: "Try again", onclick: () => load() }),
        ),
      );
      return;
    }
    if (!page) {
      replace(el, head, h("p.muted", { text: loading ? "Loading…" : "" }));
      return;
    }
    const feedless = page.stores.filter((s) => !s.feed);
    const feedlessNames = new Set(feedless.map((s) => s.name));
    const nodes = getNodes();
    const groups = changesByNode(changes, nodes.map((n) => n.id));
    const byNode = new Map(groups.map((g) => [g.node, g.changes]));
    const sections = [];
    const order = [...nodes.map((n) => n.id), ...groups.map((g) => g.node)];
    for (const id of new Set(order)) {
      const node = nodes.find((n) => n.id === id);
      const fed = byNode.get(id) ?? [];
      const unfed = node ? unfedWrites(node.writes, page.scopes, feedlessNames) : [];
      if (fed.length === 0 && unfed.length === 0) continue;
      const count = fed.length + unfed.length;
      sections.push(h(
        "section.node-changes",
        { dataset: { node: id } },
        h(
          "h3.node-changes-title",
          {},
          h("span.mono", { text: id || "(no node)" }),
          h("span.muted.node-changes-count", {
            // The feed read so far: more pages may hold more of this node's (a "+", as above).
            text: ` · ${count}${page.cursor ? "+" : ""} key${
              count === 1 && !page.cursor ? "" : "s"
            } written${node?.writesTruncated && unfed.length ? " (more not recorded)" : ""}`,
          }),
        ),
        changesTable([
          ...fed.map((change) => changeRow(change, open)),
          ...unfed.map((w) => unfedRow(w, flowId, id, accessKey)),
        ]),
      ));
    }
    const notices = feedless.map((s) =>
      s.error
        ? h(
          "div.notice.notice-error.feedless",
          { dataset: { store: s.name } },
          h("strong", { text: `Store "${s.name}" cannot be read: ` }),
          `${s.error}. Only the keys each node wrote into it are shown (from the run record).`,
        )
        : h(
          "div.notice.notice-changed.feedless",
          { dataset: { store: s.name } },
          h("strong", { text: `Store "${s.name}" keeps no change feed,` }),
          " so only the keys each node wrote into it are shown (from the run record), not their " +
            "values. To record the values of later runs, add ",
          h("code", { text: "changes: { keep: 30d }" }),
          ` to stores.${s.name} in flowstate.yaml.`,
        )
    );
    const empty = sections.length === 0
      ? h("p.muted.changes-empty", { text: emptyText(page) })
      : null;
    replace(
      el,
      head,
      notices,
      empty,
      sections,
      page.cursor
        ? h(
          "div.pager",
          {},
          h("button", {
            type: "button",
            text: "Load more changes",
            onclick: (event) => loadMore(event.target),
          }),
          h("span.muted", { text: `${changes.length} shown so far` }),
        )
        : null,
    );
  }

  function summaryText() {
    const fed = page.stores.filter((s) => s.feed).map((s) => `"${s.name}"`);
    if (fed.length === 0) return "no store keeps a change feed";
    const n = changes.length;
    return `${n}${page.cursor ? "+" : ""} change${n === 1 ? "" : "s"} from the change feed of ${
      fed.length === 1 ? "store" : "stores"
    } ${fed.join(", ")} · click a key to open it in State`;
  }

  function emptyText(page) {
    if (page.cursor) return "No changes by this run in the part of the feed read so far.";
    if (isRunning()) return "No state changed yet: changes show here as the nodes write.";
    if (page.stores.every((s) => !s.feed)) {
      return "No keys written by this run are recorded, and no store keeps a change feed.";
    }
    return "This run changed no state: no entry of the change feed was written by it.";
  }

  render();
  return { el, load, render };
}
