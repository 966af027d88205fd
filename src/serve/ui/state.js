// The state view: stores and their health, a lazily built key tree
// (store → scope → flow → node → key), prefix search, and a value panel with
// compare-and-set edit and delete.

import { api, ApiError } from "./api.js";
import { parseJson } from "../../_parse_json.js";
import {
  agoSpan,
  formatBytes,
  formatCount,
  formatTime,
  h,
  keyText,
  prettyJson,
  replace,
} from "./dom.js";

/** Children per tree page (the server's default is 200; never more than a page at once). */
const CHILDREN_PAGE = 200;
/** Entries per page of prefix search results. */
const SEARCH_PAGE = 50;
/** Characters of a value shown before "show all". */
const VALUE_PREVIEW_CHARS = 200_000;

/** What a key part `part` under `path` is: scope (or records, data), flow, node or key. */
export function levelOf(path, part) {
  const depth = path.length;
  if (depth === 0) {
    return ["global", "flow", "node"].includes(part)
      ? "scope"
      : part === "flowstate"
      ? "records"
      : "data";
  }
  const scope = path[0];
  if (scope === "node") return depth === 1 ? "flow" : depth === 2 ? "node" : "key";
  if (scope === "flow") return depth === 1 ? "flow" : "key";
  return "key";
}

/** Parses the prefix box: `a / b / c` or a JSON array of strings. */
export function parsePrefix(text) {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  if (trimmed.startsWith("[")) {
    let parsed;
    try {
      parsed = parseJson(trimmed);
    } catch {
      throw new Error('The prefix looks like JSON but does not parse: write ["a", "b"] or a/b');
    }
    if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === "string")) {
      throw new Error('A JSON prefix is an array of strings, like ["node", "hello"]');
    }
    return parsed;
  }
  return trimmed.split("/").map((p) => p.trim()).filter((p) => p !== "");
}

/**
 * The stores from /health (names, plugins, reachable: cheap), for the tree to
 * start at once; /api/stores (entry counts and sizes: a count over a large
 * store takes a while) fills the cards in when it answers.
 */
async function storesQuickly() {
  let health;
  try {
    health = await api.health();
  } catch (e) {
    // 503: a store does not answer; the body still lists them all.
    if (e instanceof ApiError && e.body?.stores) health = e.body;
    else return await api.stores();
  }
  return Object.entries(health.stores ?? {}).map(([name, s]) => ({
    name,
    plugin: s.plugin ?? "",
    location: null,
    entries: null,
    sizeBytes: null,
    ok: s.ok,
    ...(s.ok ? {} : { error: s.error }),
    pending: true,
  }));
}

export async function renderState(container, route, ctx) {
  let stores = await storesQuickly();
  const wanted = route.params.get("store");
  let key = null;
  try {
    const raw = route.params.get("key");
    if (raw) key = parseJson(raw);
  } catch {
    key = null;
  }
  const storeNames = stores.map((s) => s.name);
  // Without a store named, the one scopes use by default: "default", else the first.
  let current = storeNames.includes(wanted)
    ? wanted
    : storeNames.includes("default")
    ? "default"
    : storeNames[0];

  const storesEl = h("section.stores", { "aria-label": "Stores" });
  const treeCol = h("section.panel.tree-panel", { "aria-label": "Keys" });
  const valueCol = h("section.panel.value-panel", { "aria-label": "Value" });
  replace(
    container,
    h("h1.view-title", { text: "State" }),
    storesEl,
    h("div.state-layout", {}, treeCol, valueCol),
  );

  const valuePanel = new ValuePanel(valueCol, ctx, {
    onDeleted: (store, k) => tree?.markDeleted(store, k),
    onSelect: (store, k) => ctx.replaceRoute(["state"], { store, key: JSON.stringify(k) }),
  });
  valuePanel.recordsStore = stores.find((s) => s.records === true)?.name ?? null;
  let tree = null;

  function renderStores() {
    replace(
      storesEl,
      stores.map((s) =>
        h(
          `button.store-card${s.name === current ? ".selected" : ""}`,
          {
            type: "button",
            dataset: { store: s.name },
            "aria-pressed": s.name === current ? "true" : "false",
            onclick: () => {
              if (current === s.name) return;
              current = s.name;
              renderStores();
              showTree();
              valuePanel.clear();
              ctx.replaceRoute(["state"], { store: current });
            },
          },
          h(
            "div.store-head",
            {},
            h(`span.health.${s.ok ? "ok" : "bad"}`, {
              title: s.ok ? "reachable" : s.error ?? "unreachable",
              text: s.ok ? "●" : "●",
            }),
            h("span.store-name", { text: s.name }),
            h("span.plugin", { text: s.plugin }),
          ),
          h("div.store-location.mono", {
            text: s.pending ? "…" : s.location ?? "",
            title: s.location ?? "",
          }),
          h(
            "div.store-stats",
            {},
            h("span.entries", {
              text: s.pending ? "counting…" : `${formatCount(s.entries)} entries`,
            }),
            s.pending ? null : h("span.size", { text: formatBytes(s.sizeBytes) }),
          ),
          s.ok ? null : h("div.store-error", { text: s.error ?? "unreachable" }),
        )
      ),
    );
  }

  function showTree() {
    tree = new KeyTree(treeCol, current, valuePanel);
    return tree.start();
  }

  if (stores.length === 0) {
    replace(storesEl, h("p.muted", { text: "No stores are configured." }));
    return;
  }
  renderStores();
  const firstPage = showTree();
  const shown = key && Array.isArray(key) && key.every((p) => typeof p === "string")
    ? valuePanel.show(current, key)
    : valuePanel.clear();
  if (stores.some((s) => s.pending)) {
    // Counting a large store keeps the server busy a while: after the tree and the value.
    Promise.all([firstPage, shown]).then(() => api.stores()).then((full) => {
      if (!storesEl.isConnected) return;
      stores = full;
      renderStores();
      // Which store holds Flowstate's records is known now: an entry of it shown meanwhile
      // loses its Edit and Delete.
      valuePanel.recordsStore = full.find((s) => s.records === true)?.name ?? null;
      valuePanel.recordsKnown();
    }, (e) => ctx.toast("error", `Could not read the stores' sizes: ${e.message}`));
  }

  ctx.live.subscribe((type, data) => {
    if (type === "state.changed") valuePanel.changed(data);
  });
}

// --- the tree ---------------------------------------------------------------------------

class KeyTree {
  constructor(el, store, valuePanel) {
    this.el = el;
    this.store = store;
    this.valuePanel = valuePanel;
    this.rows = new Map(); // JSON key → row element
  }

  start() {
    const input = h("input.prefix-input", {
      type: "search",
      placeholder: 'prefix: node / hello  or  ["node","hello"]',
      "aria-label": "Key prefix",
      spellcheck: false,
    });
    const error = h("p.form-error", { role: "alert" });
    const form = h(
      "form.prefix-form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          error.textContent = "";
          let prefix;
          try {
            prefix = parsePrefix(input.value);
          } catch (e) {
            error.textContent = e.message;
            return;
          }
          if (prefix.length === 0) this.showRoot();
          else this.showSearch(prefix);
        },
      },
      input,
      h("button", { type: "submit", text: "Find" }),
    );
    this.body = h("div.tree-body");
    replace(
      this.el,
      h("div.panel-head", {}, h("h2", { text: `Keys in ${this.store}` })),
      form,
      error,
      this.body,
    );
    return this.showRoot();
  }

  /** The first level of the tree; resolves once its first page is shown. */
  showRoot() {
    this.rows.clear();
    const list = h("ul.tree", { role: "tree", "aria-label": `keys of ${this.store}` });
    replace(this.body, list);
    return this.loadChildren([], list, undefined);
  }

  /** Loads one page of the children of `prefix` into `list` (a "load more" button for the next). */
  async loadChildren(prefix, list, cursor) {
    const loading = h("li.tree-loading.muted", { text: "loading…" });
    list.appendChild(loading);
    let page;
    try {
      page = await api.children(this.store, prefix, cursor, CHILDREN_PAGE);
    } catch (e) {
      loading.remove();
      list.appendChild(h("li.form-error", { text: e.message }));
      return;
    }
    loading.remove();
    if (page.children.length === 0 && cursor === undefined) {
      list.appendChild(h("li.muted.tree-empty", { text: prefix.length ? "(nothing)" : "(empty)" }));
    }
    for (const child of page.children) list.appendChild(this.node(prefix, child));
    if (page.cursor) {
      const more = h(
        "li.tree-more",
        {},
        h("button.link", {
          type: "button",
          text: `load more under ${prefix.length ? keyText(prefix) : "the root"}`,
          onclick: () => {
            more.remove();
            this.loadChildren(prefix, list, page.cursor);
          },
        }),
      );
      list.appendChild(more);
    }
  }

  node(prefix, child) {
    const path = [...prefix, child.part];
    const level = levelOf(prefix, child.part);
    const li = h("li.tree-node", { role: "treeitem", dataset: { key: JSON.stringify(path) } });
    let expanded = false;
    let sub = null;
    const toggle = h("button.toggle", {
      type: "button",
      text: child.hasChildren ? "▸" : "",
      disabled: !child.hasChildren,
      "aria-label": child.hasChildren ? `expand ${child.part}` : undefined,
      tabIndex: child.hasChildren ? 0 : -1,
    });
    const expand = () => {
      if (!child.hasChildren) return;
      expanded = !expanded;
      toggle.textContent = expanded ? "▾" : "▸";
      li.setAttribute("aria-expanded", String(expanded));
      if (expanded) {
        sub = h("ul.tree", { role: "group" });
        li.appendChild(sub);
        this.loadChildren(path, sub, undefined);
      } else {
        sub?.remove();
        sub = null;
      }
    };
    toggle.addEventListener("click", expand);
    const label = h(
      "button.tree-label",
      {
        type: "button",
        title: JSON.stringify(path),
        onclick: () => {
          if (child.isEntry) this.select(path, li);
          else expand();
        },
      },
      h("span.part", { text: child.part === "" ? '""' : child.part }),
      level === "key" ? null : h(`span.level.level-${level}`, { text: level }),
      child.isEntry ? h("span.entry-dot", { title: "holds a value", text: "=" }) : null,
    );
    if (child.hasChildren) li.setAttribute("aria-expanded", "false");
    li.appendChild(h("div.tree-row", {}, toggle, label));
    this.rows.set(JSON.stringify(path), li);
    return li;
  }

  select(path, li) {
    for (const el of this.el.querySelectorAll(".tree-row.selected")) {
      el.classList.remove("selected");
    }
    li?.querySelector(".tree-row")?.classList.add("selected");
    this.valuePanel.show(this.store, path);
  }

  markDeleted(store, key) {
    if (store !== this.store) return;
    const li = this.rows.get(JSON.stringify(key));
    li?.querySelector(".tree-row")?.classList.add("deleted");
  }

  async showSearch(prefix, cursor, pageNumber = 1) {
    const results = h("div.search-results");
    replace(
      this.body,
      h(
        "div.search-head",
        {},
        h("span", { text: `Entries under ${keyText(prefix)}` }),
        h("button.link", {
          type: "button",
          text: "back to the tree",
          onclick: () => this.showRoot(),
        }),
      ),
      results,
    );
    results.appendChild(h("p.muted", { text: "loading…" }));
    let page;
    try {
      page = await api.entries(this.store, prefix, cursor, SEARCH_PAGE);
    } catch (e) {
      replace(results, h("p.form-error", { text: e.message }));
      return;
    }
    const list = h("ul.entry-list");
    for (const entry of page.entries) {
      const rel = entry.key.slice(prefix.length);
      const preview = entry.truncated
        ? `(large value, ${formatBytes(entry.size)})`
        : previewText(entry.value);
      const li = h(
        "li",
        {},
        h(
          "button.entry-link",
          {
            type: "button",
            title: JSON.stringify(entry.key),
            onclick: () => {
              for (const el of list.querySelectorAll(".selected")) el.classList.remove("selected");
              li.classList.add("selected");
              this.valuePanel.show(this.store, entry.key);
            },
          },
          h("span.mono.entry-key", { text: keyText(rel) }),
          h("span.mono.entry-preview", { text: preview }),
        ),
      );
      list.appendChild(li);
    }
    replace(
      results,
      page.entries.length === 0
        ? h("p.muted", { text: cursor ? "No more entries." : "No entries under this prefix." })
        : list,
      h(
        "div.pager",
        {},
        pageNumber > 1
          ? h("button", {
            type: "button",
            text: "first page",
            onclick: () => this.showSearch(prefix),
          })
          : null,
        h("span.muted", { text: `page ${pageNumber}` }),
        page.cursor
          ? h("button", {
            type: "button",
            text: "next page",
            onclick: () => this.showSearch(prefix, page.cursor, pageNumber + 1),
          })
          : null,
      ),
    );
  }
}

function previewText(value) {
  const text = JSON.stringify(value) ?? "";
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

// --- the value panel --------------------------------------------------------------------

class ValuePanel {
  constructor(el, ctx, { onDeleted, onSelect }) {
    this.el = el;
    this.ctx = ctx;
    this.onDeleted = onDeleted;
    this.onSelect = onSelect;
    this.store = null;
    this.key = null;
    this.entry = null;
    this.editing = false;
    /** The entry this panel deleted last (shown, with Restore), until another is shown. */
    this.deleted = null;
    this.serial = 0;
    /** The records store's name, once known (`/api/stores`). */
    this.recordsStore = null;
  }

  /** Whether the entry shown is one of Flowstate's records (written by Flowstate only). */
  isRecord() {
    return this.store !== null && this.store === this.recordsStore &&
      Array.isArray(this.key) && this.key.length >= 2 && this.key[0] === "flowstate";
  }

  /** The records store became known: an entry of it shown, not being edited, is drawn again. */
  recordsKnown() {
    if (this.entry && !this.editing && this.isRecord()) this.renderEntry();
  }

  clear() {
    this.store = null;
    this.key = null;
    this.entry = null;
    this.editing = false;
    replace(
      this.el,
      h("div.panel-head", {}, h("h2", { text: "Value" })),
      h("p.muted.placeholder", {
        text: "Choose a key in the tree (entries are marked =) or find entries by prefix.",
      }),
    );
  }

  async show(store, key) {
    const serial = ++this.serial;
    this.deleted = null;
    this.store = store;
    this.key = key;
    this.editing = false;
    this.onSelect(store, key);
    replace(this.el, this.head(), h("p.muted", { text: "loading…" }));
    try {
      const entry = await api.entry(store, key);
      if (serial !== this.serial) return;
      this.entry = entry;
      this.renderEntry();
    } catch (e) {
      if (serial !== this.serial) return;
      this.entry = null;
      replace(
        this.el,
        this.head(),
        h("p.muted", {
          text: e instanceof ApiError && e.status === 404 ? "No entry at this key." : e.message,
        }),
      );
    }
  }

  head() {
    return h(
      "div.panel-head",
      {},
      h("h2", { text: "Value" }),
      this.key
        ? h("div.value-key.mono", { title: JSON.stringify(this.key), text: keyText(this.key) })
        : null,
    );
  }

  meta(entry) {
    return h(
      "dl.meta",
      {},
      h("dt", { text: "store" }),
      h("dd", { text: this.store }),
      h("dt", { text: "version" }),
      h("dd.mono.version", { text: entry.version }),
      h("dt", { text: "expires" }),
      h(
        "dd.expiry",
        {},
        entry.expiresAt === null
          ? "never"
          : [`${formatTime(entry.expiresAt)} (`, agoSpan(entry.expiresAt), ")"],
      ),
    );
  }

  renderEntry(notice) {
    const entry = this.entry;
    // Flowstate's own records (a run, a flow version, a lease): a value written by hand breaks
    // what it belongs to, and the server refuses it.
    const record = this.isRecord();
    const actions = h(
      "div.actions",
      {},
      record
        ? null
        : h("button.primary", { type: "button", text: "Edit", onclick: () => this.edit() }),
      record ? null : h("button.danger", {
        type: "button",
        text: "Delete",
        onclick: () => this.confirmDelete(actions),
      }),
      h("button", {
        type: "button",
        text: "Reload",
        onclick: () => this.show(this.store, this.key),
      }),
    );
    replace(
      this.el,
      this.head(),
      notice ?? null,
      this.meta(entry),
      record
        ? h(
          "p.muted.records-note",
          {},
          "Flowstate's own record (runs, flow versions, metrics, leases): written by Flowstate " +
            "only, never by hand. Change runs and flows on their pages",
          // A run's record: its page.
          this.key.length === 3 && this.key[1] === "runs"
            ? [
              ": ",
              h("a", { href: `#/runs/${encodeURIComponent(this.key[2])}`, text: "this run" }),
            ]
            : null,
          ".",
        )
        : null,
      actions,
      valueBlock(entry.value, "value-view"),
    );
  }

  confirmDelete(actions) {
    // A pending action: a change meanwhile is announced, not loaded over it.
    this.editing = true;
    const version = this.entry.version;
    replace(
      actions,
      h("span.confirm-text", { text: `Delete this entry (version ${version})?` }),
      h("button.danger", {
        type: "button",
        text: "Yes, delete",
        onclick: () => this.remove(version),
      }),
      h("button", {
        type: "button",
        text: "Cancel",
        onclick: () => {
          this.editing = false;
          this.renderEntry();
        },
      }),
    );
  }

  async remove(version, { deliberate = false } = {}) {
    // What is deleted stays on screen (with a way back) once it is gone from the store.
    const gone = this.entry;
    try {
      await api.deleteEntry(this.store, this.key, version);
      this.entry = null;
      this.editing = false;
      this.deleted = gone;
      this.onDeleted(this.store, this.key);
      this.ctx.toast("ok", `Deleted ${keyText(this.key)}`);
      this.renderDeleted(gone, version);
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        this.conflict({ kind: "delete", current: e.body?.current ?? null, deliberate });
      } else {
        this.ctx.toast("error", `Could not delete: ${e.message}`);
      }
    }
  }

  /** The entry just deleted: the value it held, and Restore (create only: nothing written since). */
  renderDeleted(gone, version) {
    const problem = h("p.form-error", { role: "alert" });
    const restore = h("button.restore-entry", {
      type: "button",
      text: "Restore it",
      title: "Write this value back at this key (only if nothing was written there since)",
      onclick: async () => {
        restore.disabled = true;
        problem.textContent = "";
        const left = gone?.expiresAt == null ? undefined : gone.expiresAt - Date.now();
        if (left !== undefined && left <= 0) {
          problem.textContent = "Its expiry has passed: it would be gone at once.";
          return;
        }
        try {
          await api.putEntry(this.store, this.key, gone.value, null, left);
          this.deleted = null;
          this.ctx.toast("ok", `Restored ${keyText(this.key)}`);
          this.onDeleted(this.store, this.key);
          await this.show(this.store, this.key);
        } catch (e) {
          restore.disabled = false;
          problem.textContent = e instanceof ApiError && (e.status === 412 || e.status === 409)
            ? "Something was written at this key since: open it to see what."
            : `Could not restore: ${e.message}`;
        }
      },
    });
    replace(
      this.el,
      this.head(),
      h("p.notice.notice-ok", {
        role: "status",
        text: gone ? `Deleted (it was version ${version}). The value it held:` : "Deleted.",
      }),
      gone ? valueBlock(gone.value, "value-deleted") : null,
      gone ? h("div.actions", {}, restore) : null,
      problem,
    );
  }

  edit(text) {
    this.editing = true;
    const entry = this.entry;
    const area = h("textarea.value-editor.mono", {
      spellcheck: false,
      "aria-label": "value as JSON",
      rows: 16,
    });
    area.value = text ?? prettyJson(entry.value);
    const error = h("p.form-error", { role: "alert" });
    const form = h(
      "form.edit-form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          let value;
          try {
            value = parseJson(area.value);
          } catch (e) {
            error.textContent = `Not valid JSON: ${e.message}. Strings need quotes: "text".`;
            return;
          }
          this.save(value, area.value, entry.version);
        },
      },
      h("p.muted", {
        text: `Editing version ${entry.version}. Saving is compare-and-set: ` +
          "if the value changed since, nothing is overwritten and you are shown both.",
      }),
      area,
      error,
      h(
        "div.actions",
        {},
        h("button.primary", { type: "submit", text: "Save" }),
        h("button", {
          type: "button",
          text: "Cancel",
          onclick: () => {
            this.editing = false;
            this.renderEntry();
          },
        }),
      ),
    );
    replace(this.el, this.head(), this.meta(entry), form);
    area.focus();
  }

  /** Compare-and-set write of `value` over `version` (null: create only). */
  async save(value, text, version) {
    try {
      const entry = await api.putEntry(this.store, this.key, value, version);
      this.entry = entry;
      this.editing = false;
      this.ctx.toast("ok", `Saved ${keyText(this.key)} (version ${entry.version})`);
      this.renderEntry(h("p.notice.notice-ok", { role: "status", text: "Saved." }));
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        this.conflict({ kind: "edit", current: e.body?.current ?? null, value, text });
      } else {
        this.ctx.toast("error", `Could not save: ${e.message}`);
      }
    }
  }

  /** Both sides of a lost compare-and-set: nothing was written; the user chooses. */
  conflict({ kind, current, value, text }) {
    this.editing = true;
    const mine = kind === "edit"
      ? h(
        "div.conflict-side.mine",
        {},
        h("h3", { text: "Your edit (not saved)" }),
        h("p.muted", { text: `based on version ${this.entry?.version ?? "?"}` }),
        valueBlock(value, "conflict-mine"),
      )
      : h(
        "div.conflict-side.mine",
        {},
        h("h3", { text: "Your delete (not done)" }),
        h("p.muted", { text: `of version ${this.entry?.version ?? "?"}` }),
      );
    const theirs = h(
      "div.conflict-side.theirs",
      {},
      h("h3", { text: current ? "Current value in the store" : "The entry is gone" }),
      current
        ? h("p.muted", {}, "version ", h("span.mono.current-version", { text: current.version }))
        : h("p.muted", { text: "deleted since you loaded it" }),
      current ? valueBlock(current.value, "conflict-current") : null,
    );
    const buttons = [
      h("button.primary", {
        type: "button",
        text: "Discard mine, show current",
        onclick: () => this.show(this.store, this.key),
      }),
    ];
    if (kind === "edit") {
      buttons.push(
        h("button", {
          type: "button",
          text: "Edit again from current",
          disabled: !current,
          onclick: () => {
            this.entry = current;
            this.edit(text);
          },
        }),
        h("button.danger", {
          type: "button",
          text: current
            ? `Overwrite version ${current.version} with mine`
            : "Create it again with mine",
          onclick: () => this.save(value, text, current ? current.version : null),
        }),
      );
    } else if (current) {
      buttons.push(h("button.danger", {
        type: "button",
        text: `Delete version ${current.version} anyway`,
        onclick: () => {
          this.entry = current;
          this.remove(current.version, { deliberate: true });
        },
      }));
    }
    replace(
      this.el,
      this.head(),
      h(
        "div.notice.notice-conflict",
        { role: "alert" },
        h("strong", { text: "Conflict: " }),
        kind === "edit"
          ? "the value changed after you loaded it. Nothing was overwritten."
          : "the value changed after you loaded it. Nothing was deleted.",
      ),
      h("div.conflict", {}, mine, theirs),
      h("div.actions", {}, buttons),
    );
  }

  /** A `state.changed` event from the live feed. */
  changed(data) {
    if (!this.key || data.store !== this.store) return;
    if (JSON.stringify(data.key) !== JSON.stringify(this.key)) return;
    // The page's own delete, coming back through the feed: the deleted value stays shown.
    if (this.entry === null && this.deleted && data.op === "delete") return;
    if (this.entry && data.version && data.version === this.entry.version) return;
    if (!this.editing) {
      this.show(this.store, this.key);
      return;
    }
    if (this.el.querySelector(".notice-changed")) return;
    const note = h(
      "p.notice.notice-changed",
      { role: "status" },
      data.op === "delete"
        ? "This entry was deleted while you edit it. "
        : `This entry changed while you edit it (now version ${data.version ?? "?"}). `,
      "Saving will show you both values.",
    );
    this.el.insertBefore(note, this.el.children[1] ?? null);
  }
}

/** A value as pretty JSON in a <pre> (textContent), cut with "show all" past a limit. */
function valueBlock(value, className) {
  const text = prettyJson(value);
  const pre = h(`pre.json.${className}`);
  if (text.length <= VALUE_PREVIEW_CHARS) {
    pre.textContent = text;
    return pre;
  }
  pre.textContent = text.slice(0, VALUE_PREVIEW_CHARS);
  const more = h("button.link", {
    type: "button",
    text: `show all ${formatCount(text.length)} characters`,
    onclick: () => {
      pre.textContent = text;
      more.remove();
    },
  });
  return h("div", {}, pre, more);
}
