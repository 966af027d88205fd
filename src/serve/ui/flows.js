// Flows: the list, and a flow's detail with metrics (inline SVG), versions, a
// line diff between two versions, and a form to start a run.

import { api, ApiError } from "./api.js";
import { parseJson } from "../../_parse_json.js";
import { durationChart, outcomeBar } from "./charts.js";
import { diffLines, diffStats, hunks } from "./diff.js";
import { graphView } from "./graph.js";
import {
  ago,
  archivedBadge,
  formatDuration,
  formatPercent,
  formatTime,
  h,
  replace,
  runStart,
  statusBadge,
} from "./dom.js";

export async function renderFlows(container, ctx) {
  const [flows, metrics] = await Promise.all([api.flows(), api.metrics().catch(() => [])]);
  const byFlow = new Map();
  for (const m of metrics) if (m.version === "*") byFlow.set(m.flowId, m);
  const tbody = h(
    "tbody",
    {},
    flows.length === 0
      ? h("tr", {}, h("td.muted.empty-row", { colSpan: 7, text: "No flows in the config." }))
      : flows.map((f) => {
        const m = byFlow.get(f.id);
        return h(
          "tr",
          { dataset: { flow: f.id } },
          h(
            "td",
            {},
            h("a.flow-link", { href: ctx.routeHash(["flows", f.id]), text: f.id }),
            f.archived ? " " : null,
            f.archived ? archivedFlowBadge() : null,
          ),
          h("td.num", { text: String(f.versions ?? 0) }),
          h("td.mono", { text: f.head ? shortHash(f.head) : "—", title: f.head ?? "" }),
          h(
            "td",
            {},
            f.lastRun
              ? h(
                "span.last-run",
                {},
                statusBadge(f.lastRun.status),
                f.lastRun.archived ? archivedBadge(f.lastRun.archive) : null,
                " ",
                h("a", {
                  href: ctx.routeHash(["runs", f.lastRun.id]),
                  ...(runStart(f.lastRun) === null
                    ? { text: "not started" }
                    : ago(runStart(f.lastRun))),
                  title: formatTime(runStart(f.lastRun)),
                }),
              )
              : h("span.muted", { text: "never run" }),
          ),
          h("td.num", { text: m ? formatDuration(m.p50DurationMs) : "—" }),
          h("td", {}, m ? successCell(m) : h("span.muted", { text: "—" })),
          h(
            "td",
            {},
            f.schedule
              ? h(
                "span",
                {},
                h("span.mono", { text: f.schedule.cron }),
                " · next ",
                h("span", {
                  ...ago(f.schedule.next),
                  title: formatTime(f.schedule.next),
                }),
              )
              : h("span.muted", { text: "—" }),
          ),
        );
      }),
  );
  replace(
    container,
    h("h1.view-title", { text: "Flows" }),
    h(
      "div.panel.table-panel",
      {},
      h(
        "table.flows-table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Flow", "Versions", "Head", "Last run", "p50", "Success", "Schedule"].map((t) =>
              h("th", { text: t })
            ),
          ),
        ),
        tbody,
      ),
    ),
  );
}

function successCell(m) {
  const rate = m.count > 0 ? m.succeeded / m.count : null;
  return h(
    "span.success",
    {},
    outcomeBar(m, { width: 80, height: 10 }),
    " ",
    h("span", { text: rate === null ? "—" : formatPercent(rate) }),
  );
}

/** Runs in a flow's duration chart. */
const RECENT = 60;

function shortHash(hash) {
  return String(hash).slice(0, 10);
}

export async function renderFlow(container, id, route, ctx) {
  const [flows, versions, metrics, recent] = await Promise.all([
    api.flows(),
    api.versions(id).catch((
      e,
    ) => (e instanceof ApiError && e.status === 404 ? [] : Promise.reject(e))),
    api.metrics(id).catch(() => []),
    api.runs({ flow: id, limit: RECENT }).catch(() => ({ runs: [] })),
  ]);
  // The chart's runs: the recorded ones, then archived ones up to RECENT (the metrics count
  // archived runs too: a flow whose runs were archived keeps its chart).
  const archivedRuns = recent.runs.length < RECENT
    ? await api.runs({ flow: id, limit: RECENT - recent.runs.length, archived: "true" })
      .catch(() => ({ runs: [] }))
    : { runs: [] };
  const charted = [
    ...recent.runs,
    ...archivedRuns.runs.filter((a) => !recent.runs.some((r) => r.id === a.id)),
  ].sort((a, b) => b.startedAt - a.startedAt || (a.id < b.id ? 1 : -1));
  const flow = flows.find((f) => f.id === id);
  if (!flow && versions.length === 0) {
    replace(
      container,
      h("p.crumbs", {}, h("a", { href: "#/flows", text: "← Flows" })),
      h("div.panel", {}, h("p", { text: `No flow ${id} in the config or the records.` })),
    );
    return;
  }
  const all = metrics.find((m) => m.version === "*") ?? null;
  const rate = all && all.count > 0 ? all.succeeded / all.count : null;

  const metricsPanel = h(
    "div.panel.metrics-panel",
    {},
    h(
      "div.panel-head",
      {},
      h("h2", { text: "Metrics" }),
      h("span.muted", { text: "all versions, archived runs included" }),
    ),
    h(
      "div.stat-cards",
      {},
      stat("runs", all ? String(all.count) : "0"),
      stat("p50", formatDuration(all?.p50DurationMs ?? null)),
      stat("p95", formatDuration(all?.p95DurationMs ?? null)),
      stat("success rate", rate === null ? "—" : formatPercent(rate)),
      stat(
        "failed",
        all ? String(all.failed) : "0",
        all?.failed > 0
          ? {
            href: ctx.routeHash(["runs"], { flow: id, status: "failed" }),
            title: "The failed runs of this flow the records keep (newest first)",
          }
          : undefined,
      ),
    ),
    all ? h("div.outcome-row", {}, outcomeBar(all, { width: 520, height: 12 })) : null,
    durationChart([...charted].reverse(), {
      width: 680,
      // A bar opens its run (a red one: why it failed).
      href: (run) => ctx.routeHash(["runs", run.id]),
      p50: all?.p50DurationMs ?? undefined,
      p95: all?.p95DurationMs ?? undefined,
    }),
  );

  // Start a run with inputs.
  const inputArea = h("textarea.mono.input-editor", {
    rows: 4,
    spellcheck: false,
    "aria-label": "inputs as JSON",
  });
  inputArea.value = "{}";
  const inputError = h("p.form-error", { role: "alert" });
  const runForm = h(
    "form.panel.run-form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        inputError.textContent = "";
        let input;
        try {
          input = parseJson(inputArea.value || "{}");
        } catch (e) {
          inputError.textContent = `Inputs are not valid JSON: ${e.message}`;
          return;
        }
        if (input === null || typeof input !== "object" || Array.isArray(input)) {
          inputError.textContent = 'Inputs are a JSON object, like { "name": "Ada" }';
          return;
        }
        try {
          const started = await api.startRun(id, input);
          ctx.navigate(ctx.routeHash(["runs", started.runId]));
        } catch (e) {
          inputError.textContent = e.message;
        }
      },
    },
    h("div.panel-head", {}, h("h2", { text: "Start a run" })),
    h("label.block", {}, "Inputs (JSON object)", inputArea),
    inputError,
    h("div.actions", {}, h("button.primary", { type: "submit", text: "Start run" })),
  );

  // Versions and diff. A version the records store no longer holds (the retention job deleted
  // it) is read from the archive when asked for by the route or as the head's parent, and
  // listed with an "archived" tag.
  const sources = new Map();
  const wanted = [route.params.get("to"), route.params.get("from")];
  const headParent = versions.find((v) => v.hash === flow?.head)?.parent;
  if (headParent) wanted.push(headParent);
  const fromArchive = [];
  for (const hash of new Set(wanted)) {
    if (!hash || versions.some((v) => v.hash === hash)) continue;
    const found = await api.version(id, hash).catch(() => null);
    if (found?.archived) {
      fromArchive.push(found);
      sources.set(hash, Promise.resolve(found.source ?? ""));
    }
  }
  const sorted = [...versions, ...fromArchive].sort((a, b) =>
    (b.createdAt ?? 0) - (a.createdAt ?? 0)
  );
  const head = flow?.head ?? sorted[0]?.hash ?? null;
  const headVersion = sorted.find((v) => v.hash === head) ?? sorted[0];
  let to = route.params.get("to") ?? headVersion?.hash ?? null;
  let from = route.params.get("from") ??
    (headVersion?.parent && sorted.some((v) => v.hash === headVersion.parent)
      ? headVersion.parent
      : sorted.find((v) => v.hash !== to)?.hash ?? null);
  const diffEl = h("div.diff-panel");
  const versionRows = h("tbody");
  const source = async (hash) => {
    if (!sources.has(hash)) {
      sources.set(hash, api.version(id, hash).then((v) => v.source ?? ""));
    }
    return await sources.get(hash);
  };

  function renderVersionRows() {
    replace(
      versionRows,
      sorted.map((v) =>
        h(
          "tr",
          { dataset: { version: v.hash } },
          h(
            "td",
            {},
            h("input", {
              type: "radio",
              name: "from",
              checked: v.hash === from,
              "aria-label": `diff from ${shortHash(v.hash)}`,
              onchange: () => choose(v.hash, to),
            }),
          ),
          h(
            "td",
            {},
            h("input", {
              type: "radio",
              name: "to",
              checked: v.hash === to,
              "aria-label": `diff to ${shortHash(v.hash)}`,
              onchange: () => choose(from, v.hash),
            }),
          ),
          h(
            "td.mono",
            { title: v.hash },
            shortHash(v.hash),
            v.hash === head ? h("span.tag", { text: "head" }) : null,
            v.archived ? archivedBadge(v.archive) : null,
          ),
          h("td.mono", { text: v.parent ? shortHash(v.parent) : "—", title: v.parent ?? "" }),
          h("td", { text: formatTime(v.createdAt) }),
        )
      ),
    );
  }

  async function choose(nextFrom, nextTo) {
    from = nextFrom;
    to = nextTo;
    ctx.replaceRoute(["flows", id], { from, to });
    renderVersionRows();
    await renderDiff();
  }

  async function renderDiff() {
    if (!to) {
      replace(
        diffEl,
        h("p.muted", {
          text: "No recorded versions yet (a version is recorded when the flow runs).",
        }),
      );
      return;
    }
    replace(diffEl, h("p.muted", { text: "loading…" }));
    try {
      const [a, b] = await Promise.all([from ? source(from) : Promise.resolve(""), source(to)]);
      const rows = diffLines(a, b);
      const stats = diffStats(rows);
      const title = h(
        "div.diff-title",
        {},
        h("span.mono", { text: from ? shortHash(from) : "(nothing)" }),
        " → ",
        h("span.mono", { text: shortHash(to) }),
        h("span.diff-added", { text: ` +${stats.added}` }),
        h("span.diff-removed", { text: ` −${stats.removed}` }),
      );
      if (from === to || (stats.added === 0 && stats.removed === 0)) {
        replace(diffEl, title, h("p.muted", { text: "The sources are the same." }), sourceBlock(b));
        return;
      }
      const table = h("table.diff");
      for (const hunk of hunks(rows, 3)) {
        if (hunk.skippedBefore > 0) {
          table.appendChild(
            h(
              "tr.diff-skip",
              {},
              h("td", {
                colSpan: 4,
                text: `⋯ ${hunk.skippedBefore} unchanged line${
                  hunk.skippedBefore === 1 ? "" : "s"
                }`,
              }),
            ),
          );
        }
        for (const row of hunk.rows) {
          const cls = row.op === "+" ? "add" : row.op === "-" ? "del" : "same";
          table.appendChild(h(
            `tr.diff-${cls}`,
            {},
            h("td.ln", { text: row.aLine ?? "" }),
            h("td.ln", { text: row.bLine ?? "" }),
            h("td.op", { text: row.op }),
            h("td.code", { text: row.text }),
          ));
        }
      }
      replace(diffEl, title, table);
    } catch (e) {
      replace(diffEl, h("p.form-error", { text: `Could not load the sources: ${e.message}` }));
    }
  }

  const versionsPanel = h(
    "div.panel.versions-panel",
    {},
    h(
      "div.panel-head",
      {},
      h("h2", { text: `Versions (${sorted.length})` }),
      h("span.muted", {
        text: "pick two to compare",
      }),
    ),
    sorted.length === 0 ? h("p.muted", { text: "No recorded versions." }) : h(
      "table.versions-table",
      {},
      h(
        "thead",
        {},
        h("tr", {}, ["from", "to", "Hash", "Parent", "Recorded"].map((t) => h("th", { text: t }))),
      ),
      versionRows,
    ),
    diffEl,
  );

  replace(
    container,
    h("p.crumbs", {}, h("a", { href: "#/flows", text: "← Flows" })),
    h(
      "div.run-title",
      {},
      h("h1.view-title", {}, "Flow ", h("span.mono", { text: id })),
      flow?.archived ? archivedFlowBadge() : null,
      flow?.schedule
        ? h("span.muted", {
          text: `${flow.schedule.cron} (${flow.schedule.timezone}) · next ${
            formatTime(flow.schedule.next)
          }`,
        })
        : null,
      h("a.button", { href: ctx.routeHash(["runs"], { flow: id }), text: "Runs of this flow" }),
    ),
    flow?.archived
      ? h(
        "div.notice.notice-archived",
        {},
        "Known only from the archive: the records store holds nothing of this flow. Its runs " +
          "and the versions they ran are shown from the archive, read-only.",
      )
      : null,
    h("div.flow-grid", {}, metricsPanel, runForm),
    graphPanel(id),
    versionsPanel,
  );
  renderVersionRows();
  await renderDiff();
}

/** The flow's graph (of its file, else its newest version), drawn once loaded. */
function graphPanel(id) {
  const body = h("div.graph-scroll", {}, h("p.muted", { text: "Loading…" }));
  const note = h("span.muted");
  api.flowGraph(id).then((answer) => {
    note.textContent = `${answer.graph.nodes.length} node${
      answer.graph.nodes.length === 1 ? "" : "s"
    } · ${answer.from === "file" ? answer.file : `version ${shortHash(answer.hash)}`}${
      answer.archived ? " (archived)" : ""
    }`;
    replace(
      body,
      answer.graph.nodes.length === 0
        ? h("p.muted", { text: "No nodes." })
        : graphView(answer.graph).el,
    );
  }).catch((e) => replace(body, h("p.muted.graph-missing", { text: e.message })));
  return h(
    "div.panel.graph-panel",
    {},
    h("div.panel-head", {}, h("h2", { text: "Graph" }), note),
    body,
    graphLegend(),
  );
}

/** What the lines and marks of a graph mean. */
export function graphLegend() {
  return h(
    "p.graph-legend.muted",
    {},
    "Arrows: needs; dashed: into a when: on_failure / always node; dotted: it waits for the " +
      "end of the rest of the run. Marks: if (conditional), × forEach (once per item), " +
      "flow: a sub-flow.",
  );
}

/** The badge of a flow known only from the archive. */
function archivedFlowBadge() {
  return h("span.badge.badge-archived", {
    text: "archived",
    title: "known only from the archive: the records store holds nothing of this flow",
  });
}

function stat(label, value, link) {
  const children = [h("div.stat-value", { text: value }), h("div.stat-label", { text: label })];
  // A count that lists runs leads to them (the runs list, filtered).
  return link
    ? h("a.stat.stat-link", { href: link.href, title: link.title }, children)
    : h("div.stat", {}, children);
}

function sourceBlock(text) {
  return h("pre.source", { text });
}
