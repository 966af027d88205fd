// Small inline SVG charts built with DOM APIs (createElementNS, setAttribute).

import { formatDuration, svg } from "./dom.js";

/**
 * Bars of run durations, oldest on the left, coloured by status, with p50 and
 * p95 lines. `runs`: `[{ id, status, durationMs }]`. With `href(run)`, each bar is a
 * link (to its run).
 */
export function durationChart(runs, { p50, p95, width = 520, height = 120, href } = {}) {
  const finished = runs.filter((r) => typeof r.durationMs === "number");
  const chart = svg("svg", {
    class: "chart",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `durations of the last ${finished.length} runs`,
  });
  const top = 8;
  const bottom = height - 18;
  const left = 44;
  const right = width - 84; // room for the p50/p95 labels
  if (finished.length === 0) {
    chart.appendChild(
      svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "chart-empty" }),
    ).textContent = "no finished runs yet";
    return chart;
  }
  const max = Math.max(...finished.map((r) => r.durationMs), p95 ?? 0, 1);
  const y = (v) => bottom - (v / max) * (bottom - top);
  const step = (right - left) / finished.length;
  const barWidth = Math.max(1, Math.min(18, step - 2));
  // Axis and scale labels.
  chart.appendChild(svg("line", { x1: left, y1: bottom, x2: right, y2: bottom, class: "axis" }));
  const maxLabel = svg("text", { x: left - 4, y: top + 8, "text-anchor": "end", class: "tick" });
  maxLabel.textContent = formatDuration(max);
  chart.appendChild(maxLabel);
  const zero = svg("text", { x: left - 4, y: bottom, "text-anchor": "end", class: "tick" });
  zero.textContent = "0";
  chart.appendChild(zero);
  finished.forEach((run, i) => {
    const h = Math.max(1, bottom - y(run.durationMs));
    const bar = svg("rect", {
      x: left + i * step + (step - barWidth) / 2,
      y: bottom - h,
      width: barWidth,
      height: h,
      class: `bar status-${run.status}`,
    });
    const title = svg("title");
    title.textContent = `${run.id}: ${run.status}, ${formatDuration(run.durationMs)}`;
    bar.appendChild(title);
    chart.appendChild(href ? svg("a", { href: href(run), class: "bar-link" }, bar) : bar);
  });
  let p95LabelY = null;
  for (const [label, value] of [["p95", p95], ["p50", p50]]) {
    if (typeof value !== "number") continue;
    const ly = y(value);
    chart.appendChild(svg("line", { x1: left, y1: ly, x2: right, y2: ly, class: `mark ${label}` }));
    // Labels 11 px apart at least, p50 below p95.
    let labelY = ly + 3;
    if (label === "p95") p95LabelY = labelY;
    else if (p95LabelY !== null) labelY = Math.max(labelY, p95LabelY + 11);
    const text = svg("text", { x: right + 6, y: labelY, class: `mark-label ${label}` });
    text.textContent = `${label} ${formatDuration(value)}`;
    chart.appendChild(text);
  }
  const caption = svg("text", { x: left, y: height - 4, class: "tick" });
  caption.textContent = `last ${finished.length} finished runs, oldest first`;
  chart.appendChild(caption);
  return chart;
}

/**
 * A horizontal bar split by final status: `counts` `{ succeeded, failed, cancelled, timedOut }`.
 */
export function outcomeBar(counts, { width = 260, height = 14 } = {}) {
  const parts = [
    ["succeeded", counts.succeeded ?? 0],
    ["failed", counts.failed ?? 0],
    ["cancelled", counts.cancelled ?? 0],
    ["timed-out", counts.timedOut ?? 0],
  ];
  const total = parts.reduce((sum, [, n]) => sum + n, 0);
  const chart = svg("svg", {
    class: "chart outcome",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": "runs by final status",
  });
  if (total === 0) {
    chart.appendChild(svg("rect", { x: 0, y: 0, width, height, rx: 3, class: "bar empty" }));
    return chart;
  }
  let x = 0;
  for (const [status, n] of parts) {
    if (n === 0) continue;
    const w = (n / total) * width;
    const rect = svg("rect", { x, y: 0, width: w, height, class: `bar status-${status}` });
    const title = svg("title");
    title.textContent = `${status}: ${n}`;
    rect.appendChild(title);
    chart.appendChild(rect);
    x += w;
  }
  return chart;
}
