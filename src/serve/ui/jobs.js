// Jobs and schedules: last and next run, "run now". The queue workers: live or stale, what
// they serve and the runs they hold.

import { api } from "./api.js";
import {
  ago,
  agoSpan,
  archivedBadge,
  formatDuration,
  formatTime,
  h,
  replace,
  statusBadge,
} from "./dom.js";

/**
 * A text input written as it is (as `flowstate schedules ls` writes it): no
 * line break or tab, no `,` or `=` (which would read as another input), no
 * `"` or space at an end; else it is quoted as JSON.
 */
// deno-lint-ignore no-control-regex
const BARE = /^(?![\s"])[^\x00-\x1f\x7f,=]+(?<!\s)$/;

/** A schedule's inputs as one line: `db=a, n=2` (JSON for values other than text, and for text BARE refuses). */
function inputsText(inputs) {
  return Object.entries(inputs).map(([name, value]) =>
    `${name}=${typeof value === "string" && BARE.test(value) ? value : JSON.stringify(value)}`
  ).join(", ");
}

export async function renderJobs(container, ctx) {
  const loading = () => h("tr", {}, h("td.muted.empty-row", { colSpan: 6, text: "loading…" }));
  const jobsBody = h("tbody", {}, loading());
  const schedulesBody = h("tbody", {}, loading());
  const workersBody = h(
    "tbody",
    {},
    h(
      "tr",
      {},
      h("td.muted.empty-row", {
        colSpan: 6,
        text: "loading…",
      }),
    ),
  );
  replace(
    container,
    h("h1.view-title", { text: "Jobs" }),
    tablePanel("jobs-table", ["Job", "Enabled", "Schedule", "Next run", "Last run", ""], jobsBody),
    h("h2.section-title", { text: "Schedules" }),
    tablePanel(
      "schedules-table",
      ["Id", "Kind", "Cron", "Time zone", "Next run", "Last run"],
      schedulesBody,
    ),
    h("h2.section-title", { text: "Workers" }),
    tablePanel(
      "workers-table",
      ["Worker", "Status", "Process", "Serves", "Heartbeat", "Runs"],
      workersBody,
    ),
  );

  async function load() {
    // Each table as soon as its answer comes (the schedules take longer).
    await Promise.all([
      api.jobs().then(drawJobs),
      api.schedules().then(drawSchedules),
      loadWorkers(),
    ]);
  }

  function loadWorkers() {
    return api.workers().then(drawWorkers);
  }

  function drawWorkers(workers) {
    // Which worker holds each run now, at which attempt (the newest claim of it listed).
    const heldBy = new Map();
    for (const w of workers) {
      for (const c of w.claims) {
        if ((heldBy.get(c.runId)?.attempt ?? 0) < c.attempt) {
          heldBy.set(c.runId, { worker: w.id, attempt: c.attempt });
        }
      }
    }
    replace(
      workersBody,
      workers.length === 0
        ? h(
          "tr",
          {},
          h("td.muted.empty-row", {
            colSpan: 6,
            text: "No workers (start one with flowstate worker).",
          }),
        )
        : workers.map((w) =>
          h(
            "tr",
            { dataset: { worker: w.id, status: w.status } },
            h("td.mono", { text: w.id }),
            h(
              "td",
              {},
              h(`span.badge.${w.status === "live" ? "status-succeeded" : "status-failed"}`, {
                text: w.status === "live" && w.stopping ? "stopping" : w.status,
                title: w.status === "live"
                  ? "Its heartbeat is recent"
                  : `No heartbeat for over ${
                    formatDuration(w.staleAfterMs)
                  }: killed, paused or cut off from the store (gc removes it)`,
              }),
            ),
            h(
              "td.nowrap",
              {},
              h("span.mono", { text: `${w.host}:${w.pid}` }),
              h("span.muted", {
                text: ` v${w.version}`,
              }),
            ),
            h("td", {
              text: `${
                w.flows === null ? "any flow" : w.flows.join(", ")
              } · ${w.concurrency} at once`,
            }),
            h("td.nowrap", {
              ...ago(w.heartbeatAt),
              title: `${formatTime(w.heartbeatAt)} · started ${formatTime(w.startedAt)}`,
            }),
            h(
              "td",
              {},
              w.claims.length === 0 ? h("span.muted", { text: "idle" }) : w.claims.map((c) => {
                // A stale worker's claims are those of its last heartbeat: one another worker
                // took since (its lease lapsed) is not this worker's any more, and says so.
                const now = w.status === "stale" ? heldBy.get(c.runId) : undefined;
                const moved = now !== undefined && now.worker !== w.id && now.attempt > c.attempt;
                return h(
                  `div.worker-claim${moved ? ".claim-moved" : ""}`,
                  {
                    title: w.status === "stale"
                      ? `held at its last heartbeat (attempt ${c.attempt})`
                      : `attempt ${c.attempt}, claimed ${formatTime(c.claimedAt)}`,
                  },
                  h("a.mono", { href: ctx.routeHash(["runs", c.runId]), text: c.runId }),
                  h("span.muted", { text: ` ${c.flowId}` }),
                  moved
                    ? h("span.muted.claim-now", {
                      text: ` · lost; attempt ${now.attempt} on ${now.worker}`,
                    })
                    : null,
                );
              }),
            ),
          )
        ),
    );
  }

  /** The jobs whose "Run now" asks for a confirmation (kept while the table draws again). */
  const confirming = new Set();
  let shownJobs = [];

  function drawJobs(jobs) {
    shownJobs = jobs;
    replace(
      jobsBody,
      jobs.length === 0
        ? h("tr", {}, h("td.muted.empty-row", { colSpan: 6, text: "No jobs." }))
        : jobs.map((job) =>
          h(
            "tr",
            { dataset: { job: job.name } },
            h(
              "td",
              {},
              h("div.mono.job-name", { text: job.name }),
              job.description ? h("div.muted.job-description", { text: job.description }) : null,
              job.error ? h("div.error-text.job-error", { text: job.error }) : null,
            ),
            h(
              "td",
              {},
              h(`span.badge.${job.enabled ? "status-succeeded" : "status-cancelled"}`, {
                text: job.enabled ? "enabled" : "disabled",
              }),
            ),
            h(
              "td.nowrap",
              {},
              job.schedule
                ? h(
                  "span",
                  {},
                  h("span.mono", { text: job.schedule }),
                  h("span.muted", { text: ` ${job.timezone ?? ""}` }),
                )
                : h("span.muted", { text: "manual" }),
            ),
            h("td.nowrap", {
              ...(job.next
                ? ago(job.next)
                : { text: job.schedule && job.enabled ? "not scheduled" : "—" }),
              title: job.next
                ? formatTime(job.next)
                : "Not in the config's jobs: the daemon does not run it (add it under jobs:)",
            }),
            h("td.nowrap", {}, lastRun(job.last, ctx)),
            h(
              "td.actions-cell",
              {},
              confirming.has(job.name) ? runConfirmation(job) : h("button.run-job", {
                type: "button",
                text: "Run now",
                // Asks first: a job deletes, moves or rewrites data (retention, migrate, restore…).
                onclick: () => {
                  confirming.add(job.name);
                  drawJobs(shownJobs);
                  jobRow(job.name)?.querySelector("button.run-job-keep")?.focus();
                },
              }),
            ),
          )
        ),
    );
  }

  const jobRow = (name) => jobsBody.querySelector(`tr[data-job="${CSS.escape(name)}"]`);

  /** "Run gc now? It removes expired entries…": the job's description, and the two choices. */
  function runConfirmation(job) {
    const close = (focus) => {
      confirming.delete(job.name);
      drawJobs(shownJobs);
      jobRow(job.name)?.querySelector(focus)?.focus();
    };
    return h(
      "div.run-confirm",
      { role: "group", "aria-label": `Run ${job.name} now?` },
      h("p.confirm-text", {
        text: `Run ${job.name} now?` +
          (job.description
            ? ` ${job.description[0].toUpperCase()}${job.description.slice(1)}.`
            : ""),
      }),
      h(
        "div.actions",
        {},
        h("button.danger.run-job-go", {
          type: "button",
          text: `Run ${job.name}`,
          onclick: async (event) => {
            event.target.disabled = true;
            try {
              const started = await api.runJob(job.name);
              ctx.toast(
                "ok",
                `Started ${job.name}: `,
                h("a", { href: ctx.routeHash(["runs", started.runId]), text: started.runId }),
              );
              close("button.run-job");
            } catch (e) {
              event.target.disabled = false;
              ctx.toast("error", `Could not run ${job.name}: ${e.message}`);
            }
          },
        }),
        h("button.run-job-keep", {
          type: "button",
          text: "Cancel",
          onclick: () => close("button.run-job"),
        }),
      ),
    );
  }

  function drawSchedules(schedules) {
    replace(
      schedulesBody,
      schedules.length === 0
        ? h("tr", {}, h("td.muted.empty-row", { colSpan: 6, text: "Nothing is scheduled." }))
        : schedules.map((s) =>
          h(
            "tr",
            { dataset: { schedule: s.id } },
            h(
              "td.mono",
              {},
              s.kind === "flow" && s.id.startsWith("flow:")
                ? h("a", {
                  href: ctx.routeHash(["flows", s.flow ?? s.id.replace(/^flow:/, "")]),
                  text: s.id,
                })
                : s.id,
              // One entry of a flow's schedule: the inputs each of its runs gets.
              s.inputs && Object.keys(s.inputs).length > 0
                ? h("div.muted.schedule-inputs", { text: `inputs: ${inputsText(s.inputs)}` })
                : null,
              // A flow file that cannot be used: its schedule (if any) is the one it had. A job
              // that cannot be scheduled has no file: its error says where in the config.
              s.error
                ? h("div.error-text.schedule-error", {
                  text: s.file ? `${s.file}: ${s.error}` : s.error,
                })
                : null,
            ),
            h("td", { text: s.kind }),
            h("td.mono", { text: s.cron ?? "-" }),
            h("td", { text: s.timezone }),
            h(
              "td",
              {},
              s.nextRun ? [`${formatTime(s.nextRun)} (`, agoSpan(s.nextRun), ")"] : "never",
            ),
            h("td", {}, lastRun(s.lastRun, ctx)),
          )
        ),
    );
  }

  await load();
  let pending = null;
  // Workers write their heartbeat every few seconds: the table follows.
  const workersTimer = setInterval(() => loadWorkers().catch(() => {}), 5_000);
  let pendingWorkers = null;
  ctx.live.subscribe((type, data) => {
    const flowId = data?.flowId ?? data?.run?.flowId ?? "";
    if (type === "run.ended" || type === "run.started") {
      // A worker writes its changed claims within a second.
      clearTimeout(pendingWorkers);
      pendingWorkers = setTimeout(() => loadWorkers().catch(() => {}), 1_200);
    }
    if ((type === "run.ended" || type === "run.started") && String(flowId).startsWith("job:")) {
      clearTimeout(pending);
      pending = setTimeout(() => load().catch(() => {}), 300);
    }
  });
  return () => {
    clearTimeout(pending);
    clearTimeout(pendingWorkers);
    clearInterval(workersTimer);
  };
}

/** A panel holding a table of class `className` with these column titles and `body`. */
function tablePanel(className, titles, body) {
  return h(
    "div.panel.table-panel",
    {},
    h(
      `table.${className}`,
      {},
      h("thead", {}, h("tr", {}, titles.map((t) => h("th", { text: t })))),
      body,
    ),
  );
}

function lastRun(last, ctx) {
  if (!last) return h("span.muted", { text: "never" });
  return h(
    "span.last-run",
    {},
    statusBadge(last.status),
    last.archived ? archivedBadge(last.archive) : null,
    " ",
    h("a", {
      href: ctx.routeHash(["runs", last.id]),
      ...ago(last.startedAt),
      title: `${formatTime(last.startedAt)} · ${formatDuration(last.durationMs)}`,
    }),
  );
}
