/**
 * The inspector's files (`src/serve/ui/`): their names, content types, and a
 * loader that reads them once, for the server to serve `GET /` (index.html)
 * and `GET /ui/<name>`. Plain ES modules and CSS, no build step.
 *
 * @module
 */

/** Every file of the inspector, by name under `/ui/`. */
export const UI_FILES: readonly string[] = [
  "index.html",
  "style.css",
  "app.js",
  "api.js",
  "dom.js",
  "diff.js",
  "charts.js",
  "state.js",
  "runs.js",
  "flows.js",
  "jobs.js",
];

/** One loaded file: its text and the `Content-Type` to serve it with. */
export interface UiAsset {
  /** The file's text. */
  body: string;
  /** Its content type, with charset. */
  contentType: string;
}

/**
 * The `Content-Type` of a UI file by its extension.
 *
 * @example
 * ```ts
 * import { uiContentType } from "./assets.ts";
 * console.assert(uiContentType("app.js") === "text/javascript; charset=utf-8");
 * ```
 */
export function uiContentType(name: string): string {
  if (name.endsWith(".html")) return "text/html; charset=utf-8";
  if (name.endsWith(".js")) return "text/javascript; charset=utf-8";
  if (name.endsWith(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

async function readUiFile(name: string): Promise<string> {
  const url = new URL(import.meta.resolve(`./${name}`));
  if (url.protocol === "file:") return await Deno.readTextFile(url);
  // Imported from a registry (https:): fetch the file beside this module.
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`Cannot load the inspector file ${url}: HTTP ${response.status}`);
  }
  return await response.text();
}

/**
 * Reads every file of {@linkcode UI_FILES} (once, at server start) into a
 * map from name to text and content type.
 *
 * @example
 * ```ts
 * import { loadUiAssets } from "./assets.ts";
 * const assets = await loadUiAssets();
 * console.assert(assets.get("index.html")?.body.includes("/ui/app.js"));
 * ```
 */
export async function loadUiAssets(): Promise<Map<string, UiAsset>> {
  const entries = await Promise.all(
    UI_FILES.map(async (name) =>
      [name, { body: await readUiFile(name), contentType: uiContentType(name) }] as const
    ),
  );
  return new Map(entries);
}
