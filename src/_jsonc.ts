/**
 * JSON with comments and trailing commas (deno.jsonc), and finding the
 * deno.json Deno itself reads for a directory.
 *
 * @module
 */
import { dirname, join, resolve } from "./_path.ts";

/** JSON with comments and trailing commas (deno.jsonc), parsed; `undefined` when not JSON. */
export function parseJsonc(text: string): unknown {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      out += text.slice(start, i + 1);
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 1;
      out += " ";
    } else out += c;
  }
  try {
    return JSON.parse(out.replace(/,(\s*[}\]])/g, "$1"));
  } catch {
    return undefined;
  }
}

/** A file's text; `undefined` when absent, unreadable or not permitted (never prompts). */
export function readTextIfAllowed(path: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return undefined;
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** A deno.json (or deno.jsonc) read as JSON: its path and its top-level object. */
export interface DenoConfigFile {
  file: string;
  json: Record<string, unknown>;
}

/** `file` read as a deno.json(c) object; `undefined` when it is not one (or cannot be read). */
export function readDenoConfig(file: string): DenoConfigFile | undefined {
  const text = readTextIfAllowed(file);
  const json = text === undefined ? undefined : parseJsonc(text);
  return typeof json === "object" && json !== null && !Array.isArray(json)
    ? { file, json: json as Record<string, unknown> }
    : undefined;
}

/**
 * The deno.json(c) Deno applies to `dir`, as it discovers one: the nearest in
 * `dir` or above it, then the workspace root above that one (if any), whose
 * settings apply to its members.
 */
export function denoConfigsAround(dir: string): DenoConfigFile[] {
  const found: DenoConfigFile[] = [];
  for (let at = resolve(dir);; at = dirname(at)) {
    const config = readDenoConfig(join(at, "deno.json")) ?? readDenoConfig(join(at, "deno.jsonc"));
    if (config !== undefined && (found.length === 0 || config.json.workspace !== undefined)) {
      found.push(config);
      if (config.json.workspace !== undefined) break;
    }
    if (dirname(at) === at) break;
  }
  return found;
}
