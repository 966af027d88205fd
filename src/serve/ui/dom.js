// DOM helpers for the inspector. Every piece of data reaches the page as text
// (textContent, attribute values set through the DOM): nothing here parses HTML.

/**
 * Make an element: `h("div.card#x", { onclick, title, dataset: {...} }, child, ...)`.
 * Children are nodes, strings (as text nodes), arrays of those, or null/false (skipped).
 */
export function h(spec, props, ...children) {
  const { tag, id, classes } = parseSpec(spec);
  const el = document.createElement(tag);
  if (id) el.id = id;
  if (classes.length > 0) el.className = classes.join(" ");
  applyProps(el, props);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Make an SVG element with attributes (values set as attributes, never parsed). */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function parseSpec(spec) {
  const match = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  if (!match) throw new Error(`bad element spec ${spec}`);
  const tag = match[1] ?? "div";
  let id;
  const classes = [];
  for (const part of match[2].match(/[.#][\w-]+/g) ?? []) {
    if (part[0] === "#") id = part.slice(1);
    else classes.push(part.slice(1));
  }
  return { tag, id, classes };
}

function applyProps(el, props) {
  if (!props) return;
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "dataset") {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (name === "class") {
      el.className = [el.className, value].filter(Boolean).join(" ");
    } else if (name === "text") {
      el.textContent = String(value);
    } else if (name in el && name !== "list" && name !== "form") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

/** Append children (nodes, strings, arrays; null/false/undefined skipped). */
export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

/** Replace every child of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A value as pretty JSON text (for a <pre>, as textContent). */
export function prettyJson(value) {
  if (value === undefined) return "";
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/** The browser's zone's short name (`EST`, `GMT+1`, `UTC`) for the formatter below. */
const zoneNames = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" });

/**
 * A time (ms since the epoch) as `YYYY-MM-DD HH:MM:SS ZONE` in the browser's zone, the
 * zone named (`EST`, `GMT+1`, `UTC`): the CLI prints UTC, a schedule has a zone of its own,
 * and a time without one is read in the wrong zone.
 */
export function formatTime(ms) {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  // A store keeps expiries past the last time a Date holds (year 275760).
  if (Number.isNaN(d.getTime())) {
    return ms > 0 ? "after the year 275760" : "before the year -271821";
  }
  const zone = zoneNames.formatToParts(d).find((p) => p.type === "timeZoneName")?.value;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${
    pad(d.getMinutes())
  }:${pad(d.getSeconds())}${zone ? ` ${zone}` : ""}`;
}

/**
 * When a run (a summary from `GET /api/runs`) really started, or `null`: a run that went
 * through the queue (it has `enqueuedAt`) when its current or last attempt was claimed
 * (`claimedAt`), none while it is queued; any other run at its `startedAt` (as
 * `runStartTime` in src/records/types.ts, and `flowstate runs ls`).
 */
export function runStart(run) {
  if (run.enqueuedAt === undefined) return run.startedAt;
  return run.status === "queued" ? null : run.claimedAt ?? null;
}

/** A time of day with milliseconds, `HH:MM:SS.mmm` (for events within a run). */
export function formatClock(ms) {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${
    pad(d.getMilliseconds(), 3)
  }`;
}

/** How long ago (or ahead) a time is, in words: `3 min ago`, `in 2 h`. */
export function relativeTime(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return "";
  const diff = ms - now;
  const abs = Math.abs(diff);
  let text;
  if (abs < 1000) return "now";
  if (abs < 60_000) text = `${Math.round(abs / 1000)} s`;
  else if (abs < 3_600_000) text = `${Math.round(abs / 60_000)} min`;
  else if (abs < 86_400_000) text = `${Math.round(abs / 3_600_000)} h`;
  else text = `${Math.round(abs / 86_400_000)} d`;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

/**
 * The props of an element whose whole text is `relativeTime(ms)` and stays true: the
 * page's ticker ({@linkcode tickRelativeTimes}) writes it again as time passes, so a
 * page left open does not say `5 s ago` of a run of last night.
 * `h("a", { href, ...ago(ms) })`.
 */
export function ago(ms) {
  if (ms === null || ms === undefined) return { text: "" };
  return { text: relativeTime(ms), dataset: { ago: String(ms) } };
}

/** `relativeTime(ms)` in a span that stays true (see {@linkcode ago}). */
export function agoSpan(ms) {
  return h("span.ago", ago(ms));
}

/** Writes every text made by {@linkcode ago} under `root` again, by the clock `now`. */
export function tickRelativeTimes(root = document, now = Date.now()) {
  for (const el of root.querySelectorAll("[data-ago]")) {
    const text = relativeTime(Number(el.dataset.ago), now);
    if (el.textContent !== text) el.textContent = text;
  }
}

/** A duration in ms as `12 ms`, `1.4 s`, `2 min 5 s`. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms === 0) return "0 ms";
  if (ms < 1) return "<1 ms";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const min = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  if (min < 60) return `${min} min ${s} s`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

/** A byte count as `812 B`, `1.2 KiB`, `3.4 MiB`. */
export function formatBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A count with thousands separators. */
export function formatCount(n) {
  if (n === null || n === undefined) return "—";
  return n.toLocaleString("en-US");
}

/** A ratio as a percentage: `100%`, `97.5%`, `0%`. */
export function formatPercent(ratio) {
  if (ratio === null || ratio === undefined) return "—";
  const p = ratio * 100;
  return Number.isInteger(p) ? `${p}%` : `${p.toFixed(1)}%`;
}

/** A status badge (`running`, `succeeded`, `failed`, …). */
export function statusBadge(status) {
  return h(`span.badge.status-${String(status ?? "unknown").replace(/[^a-z-]/g, "")}`, {
    text: status ?? "unknown",
  });
}

/** The "archived" badge of a run (or version) read from the archive (`archive`: its file). */
export function archivedBadge(archive) {
  return h("span.badge.badge-archived", {
    text: "archived",
    title: `read from ${archive} (read-only)`,
  });
}

/**
 * The "lease lapsed" badge of a queued run recorded running whose worker's claim lapsed at
 * `at` (the API's `leaseLapsedAt`): its worker is gone, and a worker that polls takes it back.
 */
export function leaseLapsedBadge(at) {
  return h("span.badge.badge-lapsed", {
    text: "lease lapsed",
    title: `Its worker wrote no heartbeat within its claim's lease (lapsed ${formatTime(at)}): ` +
      "that worker is gone (killed, stopped while its store was down, or cut off from it); the " +
      "next worker that polls the queue takes the run back and runs it again",
  });
}

/** A key (array of strings) as text: parts joined by ` / `, JSON when a part is ambiguous. */
export function keyText(key) {
  if (key.some((p) => p === "" || p.includes("/") || p.trim() !== p)) return JSON.stringify(key);
  return key.join(" / ");
}
