// The Flowstate inspector: boot, token, hash routing, the live event feed.
// Plain ES modules, no build step. Data is always rendered as text.

import { api, ApiError, onUnauthorized, openSession } from "./api.js";
import { parseJson } from "../../_parse_json.js";
import { h, replace, tickRelativeTimes } from "./dom.js";
import { renderState } from "./state.js";
import { renderRun, renderRuns } from "./runs.js";
import { renderFlow, renderFlows } from "./flows.js";
import { renderJobs } from "./jobs.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const liveBadge = document.getElementById("live");
const toasts = document.getElementById("toasts");

// --- token --------------------------------------------------------------------------

/** Reads `token=` from the fragment (`#token=…` or `#/runs&token=…`), returns [token, rest]. */
function tokenFromHash(hash) {
  const text = hash.replace(/^#/, "");
  const match = /(?:^|[&?])token=([^&]*)/.exec(text);
  if (!match) return [null, hash];
  const rest = (text.slice(0, match.index) + text.slice(match.index + match[0].length))
    .replace(/^[&?]/, "");
  return [decodeURIComponent(match[1]), rest === "" ? "#/state" : `#${rest}`];
}

let prompting = null;

/** Shows the token prompt once; resolves when a session is open. */
function promptForToken(message) {
  if (prompting) return prompting;
  prompting = new Promise((resolve) => {
    const input = h("input#token-input", {
      type: "password",
      autocomplete: "off",
      placeholder: "token",
      "aria-label": "token",
    });
    const error = h("p.form-error", { role: "alert" });
    if (message) error.textContent = message;
    const form = h(
      "form.token-form",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          error.textContent = "";
          try {
            await openSession(input.value.trim());
            overlay.remove();
            prompting = null;
            resolve();
            live.restart();
          } catch (e) {
            error.textContent = e instanceof ApiError && e.status === 401
              ? "That token is not this server's token."
              : `Could not open a session: ${e.message}`;
            input.select();
          }
        },
      },
      h("h2", { text: "This server needs its token" }),
      h("p.muted", {
        text:
          "Paste the token printed by `flowstate serve` at start (or open the URL it printed, ending in #token=…).",
      }),
      input,
      error,
      h("button.primary", { type: "submit", text: "Open" }),
    );
    const overlay = h("div.overlay#token-prompt", {}, form);
    document.body.appendChild(overlay);
    input.focus();
  });
  return prompting;
}

onUnauthorized(() => promptForToken());

// --- toasts -------------------------------------------------------------------------

/** A short message in the corner: `kind` "ok" | "error" | "info". Children may hold links. */
export function toast(kind, ...children) {
  const el = h(
    `div.toast.toast-${kind}`,
    { role: kind === "error" ? "alert" : "status" },
    children,
  );
  toasts.appendChild(el);
  setTimeout(() => el.remove(), kind === "error" ? 9000 : 5000);
}

// --- live feed (SSE) ------------------------------------------------------------------

const live = {
  source: null,
  listeners: new Set(),
  connected: false,
  /** Calls `fn(type, data)` for every event; returns the unsubscribe function. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  },
  setConnected(connected) {
    this.connected = connected;
    liveBadge.className = connected ? "live on" : "live off";
    liveBadge.textContent = connected ? "live" : "offline";
    liveBadge.title = connected
      ? "Receiving live events from /api/events"
      : "Not connected to /api/events; retrying";
    for (const fn of this.listeners) fn("connection", { connected });
  },
  start() {
    if (typeof EventSource === "undefined") return;
    const source = new EventSource("/api/events");
    this.source = source;
    source.addEventListener("open", () => this.setConnected(true));
    source.addEventListener("error", () => {
      this.setConnected(false);
      if (source.readyState === EventSource.CLOSED) {
        // Closed for good: most likely 401. Ask the API (prompts on 401), then reconnect.
        setTimeout(() => {
          if (this.source !== source) return;
          api.stores().then(() => this.restart(), () => this.restart());
        }, 2000);
      }
    });
    source.addEventListener("reset", () => this.resync());
    source.addEventListener("dropped", () => this.resync());
    for (const type of ["run.started", "node", "run.ended", "state.changed", "job.progress"]) {
      source.addEventListener(type, (event) => {
        let data;
        try {
          data = parseJson(event.data);
        } catch {
          return;
        }
        for (const fn of this.listeners) {
          try {
            fn(type, data);
          } catch (e) {
            console.error(e);
          }
        }
      });
    }
  },
  /** Tells the views to fetch again: the feed missed events (`reset`, `dropped`). */
  resync() {
    for (const fn of this.listeners) fn("connection", { connected: this.connected });
  },
  restart() {
    this.source?.close();
    this.source = null;
    this.start();
  },
};

// --- routing ----------------------------------------------------------------------------

/** The current route: `#/runs/ID?flow=x` → { parts: ["runs", "ID"], params }. */
export function currentRoute() {
  const hash = location.hash.replace(/^#\/?/, "");
  const q = hash.indexOf("?");
  const path = q === -1 ? hash : hash.slice(0, q);
  const params = new URLSearchParams(q === -1 ? "" : hash.slice(q + 1));
  const parts = path.split("/").filter((p) => p !== "").map((p) => decodeURIComponent(p));
  return { parts, params };
}

/** A hash for a route: `routeHash(["runs", id], { flow })`. */
export function routeHash(parts, params) {
  const path = parts.map((p) => encodeURIComponent(p)).join("/");
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v !== undefined && v !== null && v !== "") search.set(k, String(v));
  }
  const text = search.toString();
  return `#/${path}${text ? `?${text}` : ""}`;
}

/** Change the URL's route without rendering again (state kept in the page). */
export function replaceRoute(parts, params) {
  history.replaceState(null, "", routeHash(parts, params));
}

const views = {
  state: (el, route, ctx) => renderState(el, route, ctx),
  stores: (el, route, ctx) => renderState(el, route, ctx),
  runs: (el, route, ctx) =>
    route.parts.length > 1 ? renderRun(el, route.parts[1], ctx, route) : renderRuns(el, route, ctx),
  flows: (el, route, ctx) =>
    route.parts.length > 1 ? renderFlow(el, route.parts[1], route, ctx) : renderFlows(el, ctx),
  jobs: (el, _route, ctx) => renderJobs(el, ctx),
};

let cleanup = null;
let renderCount = 0;

async function render() {
  const route = currentRoute();
  const name = route.parts[0] ?? "state";
  if (!(name in views)) {
    location.replace("#/state");
    return;
  }
  for (const link of nav.querySelectorAll("a")) {
    link.classList.toggle("active", link.dataset.view === (name === "stores" ? "state" : name));
  }
  const subscriptions = [];
  const ctx = {
    live: {
      subscribe(fn) {
        const off = live.subscribe(fn);
        subscriptions.push(off);
        return off;
      },
      get connected() {
        return live.connected;
      },
    },
    toast,
    routeHash,
    replaceRoute,
    navigate: (hash) => {
      location.hash = hash;
    },
  };
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
  }
  const token = ++renderCount;
  // Until the view draws itself (its first answers can take a second): "loading…".
  const container = h("div.view", {}, h("p.muted.view-loading", { text: "loading…" }));
  replace(main, container);
  main.setAttribute("aria-busy", "true");
  try {
    const done = await views[name](container, route, ctx);
    if (token !== renderCount) return;
    cleanup = () => {
      for (const off of subscriptions) off();
      if (typeof done === "function") done();
    };
  } catch (e) {
    if (token !== renderCount) return;
    for (const off of subscriptions) off();
    // A server that did not answer: the page loads again as soon as the live feed reconnects.
    const unreachable = e instanceof ApiError && e.status === 0;
    const off = unreachable
      ? live.subscribe((type, data) => {
        if (type === "connection" && data.connected && token === renderCount) render();
      })
      : null;
    cleanup = off;
    replace(
      container,
      h(
        "div.panel.error-panel",
        { role: "alert" },
        h("h2", { text: "Could not load this page" }),
        h("p", { text: e?.message ?? String(e) }),
        unreachable
          ? h("p.muted", { text: "This page loads again as soon as the server answers." })
          : null,
        h("div.actions", {}, h("button", { type: "button", text: "Try again", onclick: render })),
      ),
    );
  } finally {
    if (token === renderCount) main.removeAttribute("aria-busy");
  }
}

async function boot() {
  const [token, rest] = tokenFromHash(location.hash);
  if (token !== null) {
    // Drop the token from the address bar and history before anything else.
    history.replaceState(null, "", location.pathname + location.search + rest);
    try {
      await openSession(token);
    } catch (e) {
      await promptForToken(
        e instanceof ApiError && e.status === 401
          ? "The token in the link is not this server's token."
          : `Could not open a session: ${e.message}`,
      );
    }
  }
  if (location.hash === "" || location.hash === "#" || location.hash === "#/") {
    history.replaceState(null, "", location.pathname + location.search + "#/state");
  }
  globalThis.addEventListener("hashchange", render);
  live.setConnected(false);
  live.start();
  // "3 s ago" stays true on a page left open: every such text is written again as time passes.
  setInterval(() => tickRelativeTimes(), 10_000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") tickRelativeTimes();
  });
  await render();
}

boot();
