/**
 * `flowstate validate`, `flowstate flows ls|versions` and `flowstate schema`:
 * check flow files, list the flows and versions recorded in the records
 * store, and print the flow format as JSON Schema.
 *
 * `--json` output (one JSON document on stdout, stable):
 * - `flows ls`: `[{ "id", "head", "versions", "lastRunAt", "lastStatus", "description" }]`
 *   in id order (`head` is the full hash; `lastRunAt` ms since the epoch or `null`)
 * - `flows versions <id>`: `[{ "flowId", "hash", "parent", "seq", "createdAt" }]`,
 *   newest first (`parent` is `null` for the first version); `null` (exit 1) for an unknown flow
 * - `validate`: `[{ "file", "ok", "problems": [{ "file", "line", "column", "path", "message" }],
 *   "nodes": [{ "id", "type", "runs", "permissions" }] }]` (`line` and `column` `null` when not
 *   known; `nodes` empty when not `ok`; `runs` is `builtin`, `trusted` or `worker`, and
 *   `permissions` what a `worker` node may do, paths resolved, or `null`)
 *
 * @module
 */
import { FlowValidationError, loadFlowFile } from "../flow/parse.ts";
import { loadFlow } from "../flow/load.ts";
import { builtinNodes } from "../flow/nodes.ts";
import { flowJsonSchema } from "../flow/schema.ts";
import { loadConfig } from "../config.ts";
import { formatPath } from "../errors.ts";
import {
  formatTime,
  printable,
  printErrorLines,
  printTable,
  shortHash,
  unknownFlowMessage,
} from "./format.ts";
import { type GlobalOptions, notFound, openForReading, unlessMissing } from "./common.ts";
import { projectElsewhereWarning, withTaskCwdHint } from "./paths.ts";

/** One problem of `validate --json`. */
export interface ValidateProblem {
  /** The file the problem is in (a sub-flow's file when it is there). */
  file: string;
  /** 1-based line, or `null` when not known. */
  line: number | null;
  /** 1-based column, or `null` when not known. */
  column: number | null;
  /** Where in the document, as text (`nodes[1].needs[0]`); `""` for the whole of it. */
  path: string;
  /** What is wrong. */
  message: string;
}

/** One file of `validate --json`. */
export interface ValidateResult {
  /** The file as given. */
  file: string;
  /** Whether it is a valid flow. */
  ok: boolean;
  /** Its problems (empty when `ok`). */
  problems: ValidateProblem[];
  /** Its nodes, where each runs and what each may do (empty when not `ok`). */
  nodes: ValidateNode[];
}

/** One node of `validate --json`: where it runs and what it may do. */
export interface ValidateNode {
  /** The node's id. */
  id: string;
  /** Its type as written. */
  type: string;
  /** `builtin` and `trusted` run in-process; `worker` in a Worker with `permissions`. */
  runs: "builtin" | "trusted" | "worker";
  /** A `worker` node's permissions (Deno's names, paths resolved), else `null`. */
  permissions: Record<string, boolean | string[]> | null;
}

/**
 * `validate <flow>… [--json]`: parse and prepare each flow (node types,
 * module nodes, static options, store names against the config's stores,
 * sub-flow files) without opening a store or writing anything. Prints
 * `ok <file>` per valid file and every problem of the others as `error:`
 * lines, or with `json` one array of {@linkcode ValidateResult}; exit 2 if
 * any is invalid (or if the config is).
 */
export async function validateFlows(
  files: readonly string[],
  global: GlobalOptions = {},
  options: { json?: boolean } = {},
): Promise<number> {
  // The config is read for its store names only: no store is opened.
  const config = await loadConfig({ config: global.config });
  const stores = Object.keys(config.stores);
  const trusted = config.nodes.trusted;
  const trustedBaseDir = config.baseDir;
  const results: ValidateResult[] = [];
  const warned = new Set<string>();
  for (const file of files) {
    // Outside its project, a flow is checked against the default config: said once per project.
    const elsewhere = await projectElsewhereWarning(file, config);
    if (elsewhere !== undefined && !warned.has(elsewhere)) {
      warned.add(elsewhere);
      console.error(printable(`warning: ${elsewhere}`));
    }
    try {
      const parsed = await withTaskCwdHint(file, () => loadFlowFile(file, { stores }));
      const { prepared } = await loadFlow(parsed, {
        stores,
        trusted,
        trustedBaseDir,
      });
      if (parsed.definition.trigger?.changes !== undefined) {
        // A change trigger the daemon would refuse: its store, and the store's feed, as the
        // config declares them (no store is opened).
        const { triggerProblems } = await import("../scheduler/change_triggers.ts");
        const problems = await triggerProblems(
          parsed,
          config,
          (store) => config.stores[store]?.changes !== undefined,
        );
        if (problems.length > 0) throw new FlowValidationError(problems, file);
      }
      const nodes = prepared.nodes.map((n): ValidateNode => ({
        id: n.spec.id,
        type: n.spec.type,
        runs: n.runs ?? "builtin",
        permissions: n.permissions ?? null,
      }));
      results.push({ file, ok: true, problems: [], nodes });
      if (!options.json) {
        console.log(`ok ${file}`);
        for (const n of nodes) {
          if (n.runs === "builtin") continue;
          console.log(`  ${n.id} (${n.type}): ${describeRuns(n)}`);
        }
      }
    } catch (err) {
      if (!(err instanceof FlowValidationError)) throw err;
      results.push({
        file,
        ok: false,
        nodes: [],
        problems: err.problems.map((p) => ({
          file: err.file ?? file,
          line: p.line ?? null,
          column: p.line === undefined ? null : p.column ?? 1,
          path: formatPath(p.path),
          message: p.message,
        })),
      });
      if (!options.json) printErrorLines(err.message);
    }
  }
  if (options.json) console.log(JSON.stringify(results));
  return results.some((r) => !r.ok) ? 2 : 0;
}

function describeRuns(node: ValidateNode): string {
  if (node.runs === "trusted") return "trusted: in-process with every permission of the runner";
  const granted = Object.entries(node.permissions ?? {}).filter(([, v]) => v !== false);
  return `worker, permissions: ${
    granted.length === 0
      ? "none"
      : granted.map(([k, v]) => v === true ? k : `${k}=${(v as string[]).join(",")}`).join(" ")
  }`;
}

/** `flows ls [--json]`. */
export async function listFlows(
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  const records = await unlessMissing(() => runtime.records());
  if (records === null) {
    if (options.json) console.log("[]");
    return 0;
  }
  const flows = await records.listFlows();
  if (options.json) {
    console.log(JSON.stringify(flows));
  } else if (flows.length === 0) {
    console.error("No flows recorded yet; run one with: flowstate run <flow.yaml>");
  } else {
    printTable(
      ["ID", "HEAD", "VERSIONS", "LAST RUN", "LAST STATUS"],
      flows.map((f) => [
        f.id,
        shortHash(f.head),
        String(f.versions),
        formatTime(f.lastRunAt, runtime.config.timezone),
        f.lastStatus ?? "-",
      ]),
    );
  }
  return 0;
}

/** `flows versions <id> [--json]`: newest first; exit 1 for an unknown flow. */
export async function listFlowVersions(
  flowId: string,
  options: { json?: boolean },
  global: GlobalOptions,
): Promise<number> {
  await using runtime = await openForReading(global);
  const records = await unlessMissing(() => runtime.records());
  const versions = records === null ? [] : await records.listVersions(flowId);
  if (versions.length === 0) {
    const known = records === null ? [] : (await records.listFlows()).map((f) => f.id);
    return notFound(options.json, unknownFlowMessage(flowId, "versions", known));
  }
  if (options.json) {
    console.log(JSON.stringify(versions.map((v) => ({
      flowId: v.flowId,
      hash: v.hash,
      parent: v.parent,
      seq: v.seq,
      createdAt: v.createdAt,
    }))));
  } else {
    printTable(
      ["VERSION", "HASH", "PARENT", "CREATED"],
      versions.map((v) => [
        String(v.seq),
        shortHash(v.hash),
        shortHash(v.parent),
        formatTime(v.createdAt, runtime.config.timezone),
      ]),
    );
  }
  return 0;
}

/** `schema`: the flow JSON Schema, with the built-in node type names. */
export function printFlowSchema(): number {
  console.log(JSON.stringify(flowJsonSchema({ nodeTypes: builtinNodes.keys() }), null, 2));
  return 0;
}
