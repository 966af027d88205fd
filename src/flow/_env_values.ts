/**
 * A flow's `env:` variables as a run reads them: their values (`NAME`, or the
 * file `NAME_FILE` names), and the variables listed, unset and needed. Every
 * run reads them; the rest of what `flowstate validate` reports of what a node
 * can reach is `reach.ts`'s (not loaded by a run).
 *
 * @module
 */
import { EnvFileError, envOrFile } from "../_env_file.ts";
import type { Problem } from "../errors.ts";
import type { FlowDefinition } from "./types.ts";

/** `${{ … }}` segments of a string (an escaped `$${{` is not one). */
export const SEGMENT = /(?<!\$)\$\{\{([\s\S]*?)\}\}/g;
/** `env.NAME` and `env["NAME"]` / `env['NAME']`: a variable named in the text. */
export const NAMED_ENV =
  /(?<![.\w$])env\s*(?:\.\s*[A-Za-z_$][\w$]*|\[\s*(?:"[^"]*"|'[^']*')\s*\])/g;
/** The root `env` (not a field named `env`, as in `inputs.env`). */
export const ENV_ROOT = /(?<![.\w$])env(?![\w$])/;

/**
 * The names of the flow's `env:` list a run cannot go without: every listed
 * name except those whose every template read is `default(env.NAME, …)` (an
 * unset variable is then the fallback, which the flow chose). A name listed
 * and never read is needed: the list is what the flow says it reads.
 *
 * @example
 * ```ts
 * import { envWithoutDefault } from "./_env_values.ts";
 * import assert from "node:assert/strict";
 * const flow = {
 *   id: "f",
 *   env: ["TOKEN", "REGION"],
 *   nodes: [{ id: "a", type: "transform", with: { value: "${{ env.TOKEN }} ${{ default(env.REGION, 'eu') }}" } }],
 * };
 * assert.deepEqual(envWithoutDefault(flow), ["TOKEN"]);
 * ```
 */
export function envWithoutDefault(definition: FlowDefinition): string[] {
  const listed = definition.env ?? [];
  if (listed.length === 0) return [];
  const defaulted = new Set<string>();
  const bare = new Set<string>();
  let readsAll = false;
  const visit = (value: unknown): void => {
    if (typeof value === "string") {
      for (const match of value.matchAll(SEGMENT)) {
        const rest = match[1].replace(DEFAULTED_ENV, (_all, dotted, quoted) => {
          defaulted.add(dotted ?? quoted.slice(1, -1));
          return "default(0,";
        });
        for (const named of rest.matchAll(NAMED_ENV)) bare.add(envName(named[0]));
        if (ENV_ROOT.test(rest.replace(NAMED_ENV, ""))) readsAll = true;
      }
    } else if (Array.isArray(value)) value.forEach(visit);
    else if (typeof value === "object" && value !== null) Object.values(value).forEach(visit);
  };
  const { env: _list, ...others } = definition;
  visit(others);
  if (readsAll) return [...listed];
  return listed.filter((name) => bare.has(name) || !defaulted.has(name));
}

/** `default(env.NAME,` and `default(env["NAME"],`: a read whose unset value has a fallback. */
const DEFAULTED_ENV =
  /(?<![.\w$])default\s*\(\s*env\s*(?:\.\s*([A-Za-z_$][\w$]*)|\[\s*("[^"]*"|'[^']*')\s*\])\s*,/g;

/** The variable a {@linkcode NAMED_ENV} match names. */
function envName(text: string): string {
  const dotted = text.match(/\.\s*([A-Za-z_$][\w$]*)$/);
  return dotted ? dotted[1] : text.replace(/^env\s*\[\s*/, "").replace(/\s*\]$/, "").slice(1, -1);
}

/**
 * A problem for each variable of {@linkcode envWithoutDefault} that `env`
 * (what the run read from its environment) lacks, at its place in the `env:` list.
 *
 * @example
 * ```ts
 * import { unsetEnvProblems } from "./_env_values.ts";
 * import assert from "node:assert/strict";
 * const flow = { id: "f", env: ["TOKEN"], nodes: [] };
 * assert.deepEqual(unsetEnvProblems(flow, { TOKEN: "t" }), []);
 * assert.match(unsetEnvProblems(flow, {})[0].message, /^env TOKEN is listed in env: but not set/);
 * ```
 */
export function unsetEnvProblems(
  definition: FlowDefinition,
  env: Readonly<Record<string, string | undefined>>,
  locate?: (path: (string | number)[]) => { line: number; column: number } | undefined,
): Problem[] {
  const listed = definition.env ?? [];
  // On every run: the walk of the whole definition only when a listed variable is not set (a
  // 10,000-node flow's walk costs ~15 ms).
  const unset = listed.filter((name) => env[name] === undefined);
  if (unset.length === 0) return [];
  const needed = new Set(envWithoutDefault(definition));
  return unset.filter((name) => needed.has(name)).map((name) => {
    const path = ["env", listed.indexOf(name)];
    const at = locate?.(path);
    return {
      path,
      message:
        `env ${name} is listed in env: but not set: export it (export ${name}=…) before running, or read it as default(env.${name}, <fallback>) in every template where the flow can go without it`,
      ...(at ? { line: at.line, column: at.column } : {}),
    };
  });
}

/**
 * The values of the flow's `env:` variables that are set, read with `get`
 * (the process environment by default): `NAME`, or when it is unset, the
 * content of the file `NAME_FILE` names (see `_env_file.ts`); and the
 * problems, each at the variable's place in the `env:` list: a `NAME_FILE`
 * that cannot give a value (both set, a file missing, too large, not UTF-8…),
 * and those of {@linkcode unsetEnvProblems} for the other variables.
 *
 * @example
 * ```ts
 * import { readEnvValues } from "./_env_values.ts";
 * import assert from "node:assert/strict";
 * const flow = { id: "f", env: ["REGION", "MISSING"], nodes: [] };
 * const env: Record<string, string> = { REGION: "eu" };
 * const { values, problems } = readEnvValues(flow, (n) => env[n]);
 * assert.deepEqual(values, { REGION: "eu" });
 * assert.match(problems[0].message, /^env MISSING is listed in env: but not set/);
 * ```
 */
export function readEnvValues(
  definition: FlowDefinition,
  get: (name: string) => string | undefined = (name) => Deno.env.get(name),
  locate?: (path: (string | number)[]) => { line: number; column: number } | undefined,
): { values: Record<string, string>; problems: Problem[] } {
  const values: Record<string, string> = {};
  const problems: Problem[] = [];
  const failed = new Set<string>();
  (definition.env ?? []).forEach((name, i) => {
    try {
      const value = envOrFile(name, get);
      if (value !== undefined) values[name] = value;
    } catch (err) {
      if (!(err instanceof EnvFileError)) throw err;
      failed.add(name);
      const path = ["env", i];
      const at = locate?.(path);
      problems.push({
        path,
        message: `env ${name}: ${err.message}`,
        ...(at ? { line: at.line, column: at.column } : {}),
      });
    }
  });
  // A variable whose file failed is said once, with what is wrong with its file.
  for (const problem of unsetEnvProblems(definition, values, locate)) {
    if (!failed.has(String(definition.env?.[problem.path[1] as number]))) problems.push(problem);
  }
  return { values, problems };
}
