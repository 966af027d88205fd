/**
 * What each node of a prepared flow can reach beyond its `permissions:`, as
 * `flowstate validate` reports it: the runner's environment variables that
 * reach it through its `with:`, the sub-flows it may start, and the files its
 * `write:` covers that decide what other nodes (or itself, on its next run)
 * may do.
 *
 * @module
 */
import { fileVariableOf } from "../_env_file.ts";
import { isWithin } from "../_path.ts";
import type { Problem } from "../errors.ts";
import type { PreparedFlow, PreparedNode } from "./executor.ts";
import type { FlowDefinition } from "./types.ts";
import { computesSubFlow } from "./sub_flows.ts";
import { readSecrets } from "./secrets.ts";
import {
  ENV_ROOT,
  envWithoutDefault,
  NAMED_ENV,
  readEnvValues,
  SEGMENT,
  unsetEnvProblems,
} from "./_env_values.ts";

// What a run reads of its `env:` lives in `_env_values.ts` (every run loads it, not this module).
export { envWithoutDefault, readEnvValues, unsetEnvProblems };

/**
 * How a node may start sub-flows (see `sub_flows.ts` for the rule):
 * `literal`, a `flow` node running the flow written in the flow file;
 * `computed`, a `flow` node whose path is computed at run time (a flow file in
 * the flow's folder or `flows:`); `capped`, a sandboxed node's `ctx.runFlow`
 * (such flow files only, every node within its permissions); `any`, a trusted
 * node; `null`, none.
 */
export type SubFlowStart = "literal" | "computed" | "capped" | "any" | null;

/** How `node` may start sub-flows. */
export function subFlowStart(node: PreparedNode): SubFlowStart {
  const runs = node.runs ?? "builtin";
  if (runs === "worker") return "capped";
  if (runs === "trusted") return "any";
  if (node.spec.type !== "flow") return null;
  return computesSubFlow(node) ? "computed" : "literal";
}

/** `secrets.NAME` and `secrets["NAME"]`, and the root `secrets` otherwise (all of them). */
const NAMED_SECRET =
  /(?<![.\w$])secrets\s*(?:\.\s*[A-Za-z_$][\w$]*|\[\s*(?:"[^"]*"|'[^']*')\s*\])/g;
const SECRETS_ROOT = /(?<![.\w$])secrets(?![\w$])/;

/**
 * For each node, the flow's `env:` variables whose values can reach its input
 * through templates: those its `with:` reads, and those that reached a node
 * whose output it reads (`nodes.<id>`), at any distance. A `with:` that reads
 * `env` other than by a written name (`env[inputs.k]`, all of `env`) counts
 * as reading every variable of the flow's `env:` list. Its `secrets:` count
 * as `env:` variables here (their values reach the node as well). Values that pass
 * through state (a `state.set` then a `state.get`) are
 * {@linkcode envThroughState}'s.
 */
export function envThroughWith(prepared: PreparedFlow): string[][] {
  const env = prepared.definition.env ?? [];
  const secrets = prepared.definition.secrets ?? [];
  const listed = [...env, ...secrets];
  const index = new Map(prepared.nodes.map((n, i) => [n.spec.id, i]));
  const reach: (Set<string> | undefined)[] = [];
  const visit = (i: number): Set<string> => {
    const known = reach[i];
    if (known !== undefined) return known;
    const found = new Set<string>();
    reach[i] = found; // a cycle is a validation error already; this ends it
    const node = prepared.nodes[i];
    const direct = [
      ...readsAll(node.spec.with, NAMED_ENV, ENV_ROOT) ? env : node.with.refs.env,
      ...readsAll(node.spec.with, NAMED_SECRET, SECRETS_ROOT) ? secrets : node.with.refs.secrets,
    ];
    for (const name of direct) if (listed.includes(name)) found.add(name);
    for (const id of node.with.refs.nodes) {
      const j = index.get(id);
      if (j !== undefined) { for (const name of visit(j)) found.add(name); }
    }
    return found;
  };
  return prepared.nodes.map((_, i) => [...visit(i)].sort());
}

/** Built-in nodes that write state: what reaches their `with:` may land in a key or a value. */
const STATE_WRITERS = new Set(["state.set", "state.delete", "state.increment"]);

/** The `env:` variables that may reach a custom node through state, and the nodes that write them. */
export interface EnvThroughState {
  /** The variables (not those that reach it through its own `with:`), sorted. */
  env: string[];
  /** The ids of the nodes that may write them to state. */
  writers: string[];
}

/**
 * For each node, the flow's `env:` variables whose values may reach it
 * through state: those that reach (through `with:`, see
 * {@linkcode envThroughWith}) another node able to write state (a custom
 * node, or a built-in `state.set`, `state.delete` or `state.increment`). A
 * custom node can read every key of its flow's state and of the global
 * scope, so each custom node gets them all; a built-in node gets none.
 * What a node writes to the global scope, nodes of other flows can read too.
 */
export function envThroughState(
  prepared: PreparedFlow,
  withEnv: readonly string[][] = envThroughWith(prepared),
): EnvThroughState[] {
  const custom = (node: PreparedNode) => (node.runs ?? "builtin") !== "builtin";
  const writers = prepared.nodes
    .map((node, i) => ({ node, env: withEnv[i] }))
    .filter(({ node, env }) =>
      env.length > 0 && (custom(node) || STATE_WRITERS.has(node.spec.type))
    );
  return prepared.nodes.map((node, i) => {
    const env = new Set<string>();
    const by: string[] = [];
    if (!custom(node)) return { env: [], writers: [] };
    for (const writer of writers) {
      if (writer.node === node) continue;
      const reaching = writer.env.filter((name) => !withEnv[i].includes(name));
      if (reaching.length === 0) continue;
      for (const name of reaching) env.add(name);
      by.push(writer.node.spec.id);
    }
    return { env: [...env].sort(), writers: by };
  });
}

/** Whether a template in `value` reads the root (`env`, `secrets`) other than by a written name. */
function readsAll(value: unknown, named: RegExp, root: RegExp): boolean {
  if (typeof value === "string") {
    for (const match of value.matchAll(SEGMENT)) {
      if (root.test(match[1].replace(named, ""))) return true;
    }
    return false;
  }
  if (Array.isArray(value)) return value.some((v) => readsAll(v, named, root));
  if (typeof value === "object" && value !== null) {
    return Object.values(value).some((v) => readsAll(v, named, root));
  }
  return false;
}

/** A file or folder whose content decides what nodes may do, for {@linkcode writeOverlaps}. */
export interface GuardedPath {
  /** Absolute path. */
  path: string;
  /** Whether it is a folder (a `write:` inside it overlaps it too). */
  folder: boolean;
  /** What it is, as a warning names it: `its own flow file`, `the config file`… */
  what: string;
}

/**
 * One warning for each node whose `write:` permission covers any of `guarded`
 * (or lies inside a guarded folder), naming the node, its `write:` and what
 * it covers. A node that may rewrite a flow file, the config, a trusted
 * module, a store plugin's or a job's module, the project's `deno.json` or
 * `deno.lock`, or Flowstate's home may give itself (or another node) any
 * permission the runner has on a later run.
 */
export function writeOverlaps(prepared: PreparedFlow, guarded: readonly GuardedPath[]): string[] {
  const warnings: string[] = [];
  for (const node of prepared.nodes) {
    const write = node.permissions?.write ?? false;
    if (write === false) continue;
    const covered = guarded.filter((target) =>
      write === true ||
      write.some((w) => isWithin(target.path, w) || (target.folder && isWithin(w, target.path)))
    );
    if (covered.length === 0) continue;
    warnings.push(
      `node ${node.spec.id} (${node.spec.type}) may write (write: ${
        write === true ? "true" : write.join(", ")
      }) ${
        covered.map((t) => `${t.what} ${t.path}`).join(", ")
      }: a node that can change these can give itself, or another node, any permission the runner has on a later run`,
    );
  }
  return warnings;
}

/**
 * {@linkcode unsetEnvProblems} for this process's environment: a variable
 * this process may not read (no `--allow-env` for it) is not a problem (it
 * cannot tell). What `validate` and the daemon warn about.
 *
 * @example
 * ```ts
 * import { unsetEnvHere } from "./reach.ts";
 * import assert from "node:assert/strict";
 * const flow = { id: "f", env: ["SURELY_UNSET_VARIABLE_X"], nodes: [] };
 * assert.ok(unsetEnvHere(flow).length <= 1); // 1 with --allow-env, else 0
 * ```
 */
export function unsetEnvHere(
  definition: FlowDefinition,
  locate?: (path: (string | number)[]) => { line: number; column: number } | undefined,
): Problem[] {
  const granted = (variable: string) =>
    Deno.permissions.querySync({ name: "env", variable }).state === "granted";
  // A variable this process may not read: cannot tell, no problem (its _FILE is not looked at).
  const readable: Record<string, string | undefined> = {};
  const secrets: Record<string, string | undefined> = {};
  for (
    const [names, unknown, into] of [
      [definition.env ?? [], "", readable],
      [definition.secrets ?? [], "(cannot tell)", secrets],
    ] as const
  ) {
    for (const name of names) {
      if (!granted(name)) into[name] = unknown;
      else {
        into[name] = Deno.env.get(name);
        const fileVariable = fileVariableOf(name);
        if (granted(fileVariable)) into[fileVariable] = Deno.env.get(fileVariable);
      }
    }
  }
  return [
    ...readEnvValues(definition, (name) => readable[name], locate).problems,
    ...readSecrets(definition, secrets, locate).problems,
  ];
}
