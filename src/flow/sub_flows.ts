/**
 * Who may start which sub-flow, and with what permissions.
 *
 * The rule (docs/security.md, "Sub-flows stay within the caller's permissions"):
 *
 * - A sub-flow written in the flow file (a `flow` node whose `flow:` is a
 *   literal path or a literal definition) runs as written: it was reviewed
 *   with its flow.
 * - A sandboxed custom node (`runs: worker`) that calls `ctx.runFlow(...)`
 *   starts a sub-run under a permission **ceiling**, its own permissions: every
 *   custom node of the sub-run (and of its sub-runs, at every level) must
 *   declare permissions within it, its flow's `env:` list must be variables
 *   the node may read, and it may hold no in-process (`trusted`) module, no
 *   node type of the program's (`openRuntime`'s `nodeTypes`) and no `queue`
 *   node. Otherwise the sub-run is refused before any of its modules is
 *   loaded, with an error naming the node, the permission and the caller.
 * - Such a node runs flow **files** only, never a definition object (its
 *   nodes, and its flow id, which decides the flow state it uses, would be
 *   chosen at run time, where no review sees them).
 * - A path from a sandboxed node, or computed by a template of a `flow` node,
 *   must name a `.yaml`/`.yml` file inside the calling flow's folder or the
 *   config's `flows:` (a file, or anywhere under a folder), also once
 *   symlinks are resolved; one that does not, or that is not a valid flow, is
 *   refused with an error that quotes nothing of the file.
 * - A `flow` node whose `flow:` is a definition computed at run time is
 *   refused: no review ever sees its nodes.
 * - A `flow` node whose `flow:` or `input:` reads the output of a sandboxed
 *   node (directly, or through built-in nodes' outputs) runs its sub-run
 *   under the ceiling of every such node: the permissions they all have. A
 *   node with no permissions cannot pick a flow file that declares more and
 *   have a `flow` node start it for it. Values passed through state are not
 *   followed (as for `env`, see `reach.ts`).
 *
 * @module
 */
import { isWithin as within, resolve } from "../_path.ts";
import { moduleUrl } from "../loader.ts";
import type { PreparedFlow, PreparedNode } from "./executor.ts";
import { builtinNodes } from "./nodes.ts";
import type { ParsedFlow } from "./parse.ts";
import type { ProgramNodeTypes } from "./program_nodes.ts";
import { PERMISSION_NAMES, type PermissionName, resolvePermissions } from "./sandbox.ts";
import { compileValue } from "./template/mod.ts";

/** The permissions a sub-run's nodes must stay within, and who set them (for messages). */
export interface PermissionCeiling {
  /** The sandboxed node's resolved permissions (every Deno name present). */
  permissions: Record<string, boolean | string[]>;
  /** The node that started the sub-run, as messages name it: `node calc (./x.ts) of flow f`. */
  caller: string;
}

/** What a sub-run started by one node is allowed (see the module doc). */
export interface SubRunRule {
  /** The ceiling its nodes must stay within (none: as the flow declares). */
  ceiling?: PermissionCeiling;
  /**
   * Set when the flow came from a sandboxed node or a template: the node that
   * asked, as messages name it. Then load errors quote nothing of the file.
   */
  untrusted?: string;
}

/** Thrown when a sub-run is refused by the rule; its message is safe to show the caller. */
export class SubFlowRefusedError extends Error {
  /** Create the error. */
  constructor(message: string) {
    super(message);
    this.name = "SubFlowRefusedError";
  }
}

/** How messages name a node of a flow: `node calc (../nodes/evil.ts) of flow innocent`. */
export function nodeName(node: PreparedNode, flowId: string): string {
  return `node ${node.spec.id} (${node.spec.type}) of flow ${flowId}`;
}

/**
 * Whether `node` is a built-in `flow` node whose `flow:` is computed at run
 * time by a template (rather than written as a literal path or definition).
 */
export function computesSubFlow(node: PreparedNode): boolean {
  if ((node.runs ?? "builtin") !== "builtin" || node.spec.type !== "flow") return false;
  const written = (node.spec.with as Record<string, unknown> | undefined)?.flow;
  return written === undefined || !compileValue(written).isStatic;
}

/**
 * The rule for a sub-run that `node` (of flow `flowId`, itself run under
 * `inherited`) starts with `flow`, and the flow to load (a path resolved
 * against `baseDir`, checked as the rule asks). Throws
 * {@linkcode SubFlowRefusedError} when the rule refuses it.
 */
export async function subRunTarget(
  node: PreparedNode,
  flowId: string,
  flow: string | Record<string, unknown>,
  where: {
    baseDir: string;
    flowRoots: readonly string[];
    inherited?: PermissionCeiling;
    /** The flow `node` is of: a `flow` node fed by a sandboxed node runs under its ceiling. */
    flow?: PreparedFlow;
  },
): Promise<{ target: string | Record<string, unknown>; rule: SubRunRule }> {
  const caller = nodeName(node, flowId);
  const sandboxed = node.runs === "worker";
  const computed = computesSubFlow(node);
  let ceiling = sandboxed
    ? { permissions: node.permissions ?? resolvePermissions(undefined, where.baseDir), caller }
    : where.inherited;
  if (!sandboxed && where.flow !== undefined) {
    for (const steering of steeringNodes(where.flow, node)) {
      const permissions = steering.permissions ?? resolvePermissions(undefined, where.baseDir);
      ceiling = {
        permissions: ceiling === undefined
          ? permissions
          : intersectPermissions(ceiling.permissions, permissions),
        caller: `${caller}, whose with: reads the output of sandboxed ${
          nodeName(steering, flowId)
        }${ceiling === undefined ? "" : ` (and of ${ceiling.caller})`}`,
      };
    }
  }
  const rule: SubRunRule = {
    ...(ceiling === undefined ? {} : { ceiling }),
    ...(sandboxed || computed ? { untrusted: caller } : {}),
  };
  if (typeof flow !== "string") {
    if (sandboxed) {
      throw new SubFlowRefusedError(
        `Cannot start a sub-flow for ${caller}: a sandboxed node runs flow files only, not a definition it builds (its nodes and its flow id, which decides whose flow state it uses, would be chosen at run time, where no review sees them); write the sub-flow in a .flow.yaml file beside its flow and pass it input`,
      );
    }
    if (computed) {
      throw new SubFlowRefusedError(
        `Cannot start a sub-flow for ${caller}: its flow: is a definition computed at run time, which no review sees; write the definition in the flow file, or compute the path of a flow file instead`,
      );
    }
    return { target: flow, rule };
  }
  if (!sandboxed && !computed) return { target: resolve(where.baseDir, flow), rule };
  return { target: await allowedFlowFile(flow, caller, where), rule };
}

const FLOW_FILE = /\.ya?ml$/i;

/**
 * `given` (relative to `baseDir`) as a real path, when it names a flow file
 * inside `baseDir` or one of `flowRoots`, both before and after symlinks are
 * resolved. Nothing outside is touched: a path outside is refused before any
 * file system call, so that the answer says nothing about what is there.
 */
async function allowedFlowFile(
  given: string,
  caller: string,
  where: { baseDir: string; flowRoots: readonly string[] },
): Promise<string> {
  const roots = [where.baseDir, ...where.flowRoots];
  const refused = (why: string) =>
    new SubFlowRefusedError(
      `Cannot start sub-flow ${
        JSON.stringify(given)
      } for ${caller}: ${why}; a sandboxed node, or a flow: computed at run time, may only name a flow file (.yaml or .yml) in ${
        roots.join(", ")
      } (the calling flow's folder and the config's flows:)`,
    );
  const path = resolve(where.baseDir, given);
  if (!FLOW_FILE.test(path)) throw refused("it is not a .yaml or .yml file");
  if (!roots.some((root) => within(path, root))) throw refused("it is outside those places");
  let real: string;
  try {
    real = await Deno.realPath(path);
  } catch (err) {
    throw refused(
      err instanceof Deno.errors.NotFound ? "there is no such file" : "it cannot be read",
    );
  }
  const realRoots: string[] = [];
  for (const root of roots) {
    try {
      realRoots.push(await Deno.realPath(root));
    } catch {
      // A configured place that does not exist holds nothing.
    }
  }
  if (!FLOW_FILE.test(real) || !realRoots.some((root) => within(real, root))) {
    throw refused("it is a symlink to a file outside those places");
  }
  return real;
}

/**
 * Check a parsed flow against `ceiling` before any of its modules is loaded:
 * throws {@linkcode SubFlowRefusedError} naming every node (and `env:`
 * variable) outside it.
 */
export function checkCeiling(
  parsed: ParsedFlow,
  ceiling: PermissionCeiling,
  where: {
    baseDir: string;
    trusted?: readonly string[];
    trustedBaseDir?: string;
    /** The program's node types (in-process): never within a ceiling. */
    nodeTypes?: ProgramNodeTypes;
  },
): void {
  const def = parsed.definition;
  const trustedBase = where.trustedBaseDir ?? Deno.cwd();
  const trusted = new Set(
    (where.trusted ?? []).map((t) => moduleUrl(t, trustedBase)).filter((u) => u !== undefined),
  );
  const outside: string[] = [];
  for (const spec of def.nodes) {
    const node = `node ${spec.id} (${spec.type})`;
    if (where.nodeTypes?.has(spec.type)) {
      outside.push(
        `${node} is defined by the program (in-process, with every permission of the runner)`,
      );
      continue;
    }
    // An http node reaches the hosts its permissions: net lists, an exec node starts the programs
    // its permissions: run lists: checked as a custom node's are.
    if (builtinNodes.has(spec.type) && spec.type !== "http" && spec.type !== "exec") {
      if (spec.type === "queue") {
        outside.push(`${node} enqueues runs, which would run outside the caller's permissions`);
      }
      continue;
    }
    const url = moduleUrl(spec.type, where.baseDir);
    if (url !== undefined && trusted.has(url)) {
      outside.push(`${node} is trusted (in-process, with every permission of the runner)`);
      continue;
    }
    const wanted = resolvePermissions(spec.permissions, where.baseDir);
    for (const name of PERMISSION_NAMES) {
      const over = beyond(name, wanted[name], ceiling.permissions[name] ?? false);
      if (over !== undefined) outside.push(`${node} declares ${name}: ${over}`);
    }
  }
  const env = [...def.env ?? [], ...def.secrets ?? []].filter((name) =>
    beyond("env", [name], ceiling.permissions.env ?? false) !== undefined
  );
  if (env.length > 0) {
    outside.push(
      `its env: or secrets: list ${env.join(", ")}, which templates would pass to its nodes`,
    );
  }
  if (outside.length === 0) return;
  throw new SubFlowRefusedError(
    `Cannot start sub-flow ${def.id}${
      parsed.file === undefined ? "" : ` (${parsed.file})`
    } for ${ceiling.caller}: ${
      outside.join("; ")
    }; a sub-flow started by a sandboxed node runs within that node's own permissions (${
      describePermissions(ceiling.permissions)
    }), at every level`,
  );
}

/**
 * The part of `wanted` that `ceiling` does not cover, as written in a
 * message (`true`, `[/etc, /home]`), or `undefined` when it covers it all.
 */
function beyond(
  name: PermissionName,
  wanted: boolean | string[],
  ceiling: boolean | string[],
): string | undefined {
  if (wanted === false || ceiling === true) return undefined;
  if (wanted === true) return "true";
  const items = wanted.filter((item) =>
    ceiling === false || !ceiling.some((allowed) => covers(name, allowed, item))
  );
  return items.length === 0 ? undefined : `[${items.join(", ")}]`;
}

/** Whether the permission entry `allowed` grants everything `item` does. */
function covers(name: PermissionName, allowed: string, item: string): boolean {
  if (allowed === item) return true;
  switch (name) {
    case "read":
    case "write":
    case "ffi":
      return within(resolve(item), resolve(allowed));
    case "net":
    case "import":
      // A host without a port allows every port of it.
      return !/:\d+$/.test(allowed) && item.replace(/:\d+$/, "") === allowed;
    case "env":
      return allowed.endsWith("*") && item.startsWith(allowed.slice(0, -1));
    default:
      return false;
  }
}

/**
 * The sandboxed nodes whose output reaches the `with:` of the built-in
 * `node` of `flow`: read there directly, or by a built-in node whose output
 * it reads, at any distance (a trusted node's output is its own: it has
 * every permission anyway).
 */
export function steeringNodes(flow: PreparedFlow, node: PreparedNode): PreparedNode[] {
  const byId = new Map(flow.nodes.map((n) => [n.spec.id, n]));
  const found = new Set<PreparedNode>();
  const seen = new Set<string>();
  const visit = (from: PreparedNode) => {
    for (const id of from.with.refs.nodes) {
      if (seen.has(id)) continue;
      seen.add(id);
      const source = byId.get(id);
      if (source === undefined) continue;
      if (source.runs === "worker") found.add(source);
      else if ((source.runs ?? "builtin") === "builtin") visit(source);
    }
  };
  visit(node);
  return [...found];
}

/** The permissions both `a` and `b` grant (each Deno name present in either). */
export function intersectPermissions(
  a: Record<string, boolean | string[]>,
  b: Record<string, boolean | string[]>,
): Record<string, boolean | string[]> {
  const out: Record<string, boolean | string[]> = {};
  for (const name of PERMISSION_NAMES) {
    const x = a[name] ?? false;
    const y = b[name] ?? false;
    if (x === false || y === false) out[name] = false;
    else if (x === true) out[name] = y;
    else if (y === true) out[name] = x;
    else {
      const both = new Set([
        ...x.filter((item) => y.some((allowed) => covers(name, allowed, item))),
        ...y.filter((item) => x.some((allowed) => covers(name, allowed, item))),
      ]);
      out[name] = both.size === 0 ? false : [...both];
    }
  }
  return out;
}

/** `read=/data net=api.example.com:443`, or `none`. */
export function describePermissions(permissions: Record<string, boolean | string[]>): string {
  const granted = Object.entries(permissions).filter(([, v]) => v !== false);
  return granted.length === 0
    ? "none"
    : granted.map(([k, v]) => v === true ? k : `${k}=${(v as string[]).join(",")}`).join(" ");
}
