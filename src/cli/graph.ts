/**
 * `flowstate graph <flow.yaml> [--format mermaid|dot] [--run <id>]`: print a
 * flow's graph (see `src/flow/graph.ts`) as Mermaid or Graphviz DOT, the
 * nodes coloured by a run's outcomes with `--run`. The flow is checked as
 * `validate` checks it (the same errors, exit 2).
 *
 * @module
 */
import { loadConfig } from "../config.ts";
import { FlowValidationError } from "../flow/parse.ts";
import {
  flowGraph,
  graphDot,
  graphMermaid,
  type GraphStatus,
  type GraphTextOptions,
} from "../flow/graph.ts";
import type { RunRecord } from "../records/types.ts";
import { isRunId } from "../records/run_id.ts";
import { messageOf } from "../errors.ts";
import { checkFlowFile } from "./flows.ts";
import { printErrorLines } from "./format.ts";
import {
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  type GlobalOptions,
  notFound,
  openForReading,
  unlessMissing,
} from "./common.ts";

/**
 * `graph <flow> [--format] [--run]`: the flow's graph on stdout; exit 2 for
 * an invalid flow (its problems as `error:` lines, as `validate` prints
 * them), 1 for a run not found or of another flow.
 */
export async function graphCommand(
  file: string,
  options: { format?: "mermaid" | "dot"; run?: string },
  global: GlobalOptions = {},
): Promise<number> {
  const config = await loadConfig({ config: global.config });
  let definition;
  try {
    definition = (await checkFlowFile(file, config)).parsed.definition;
  } catch (err) {
    if (!(err instanceof FlowValidationError)) throw err;
    printErrorLines(err.message);
    return EXIT_USAGE;
  }
  const graph = flowGraph(definition);
  const text: GraphTextOptions = { title: definition.id };
  if (options.run !== undefined) {
    const run = await findRun(options.run, global);
    if (typeof run === "number") return run;
    if (run.flowId !== definition.id) {
      printErrorLines(
        `Run ${run.id} is a run of flow "${run.flowId}", not of "${definition.id}" ` +
          `(${file}): give that flow's file, or a run of this flow (flowstate runs ls --flow ${definition.id})`,
      );
      return EXIT_FAILURE;
    }
    text.statuses = runStatuses(run, graph.nodes.map((n) => n.id));
    text.statusesOf = `run ${run.id}, ${run.status}`;
  }
  const out = options.format === "dot" ? graphDot(graph, text) : graphMermaid(graph, text);
  await Deno.stdout.write(new TextEncoder().encode(out));
  return EXIT_OK;
}

/** The run from the records store, or the archive; else an exit code, the error said. */
async function findRun(runId: string, global: GlobalOptions): Promise<RunRecord | number> {
  const missing = `Run ${runId} not found (list runs with: flowstate runs ls)`;
  if (!isRunId(runId)) {
    return notFound(
      false,
      `Run "${runId}" not found: run ids are 20 lowercase letters and digits, as printed by ` +
        "flowstate run, flowstate enqueue and flowstate runs ls",
    );
  }
  await using runtime = await openForReading(global);
  const records = await unlessMissing(() => runtime.records());
  let run: RunRecord | null = null;
  try {
    run = records === null ? null : await records.getRun(runId);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    return notFound(false, `Run ${runId} cannot be read: ${messageOf(err)}`);
  }
  if (run === null) {
    const { findArchivedRun } = await import("./archive.ts");
    run = (await findArchivedRun(runId, runtime.home))?.run ?? null;
  }
  return run ?? notFound(false, missing);
}

/** Each node's outcome in a run: its recorded status, else (not started, or still running) `not run`. */
export function runStatuses(
  run: Pick<RunRecord, "nodes">,
  ids: readonly string[],
): Record<string, GraphStatus> {
  const out: Record<string, GraphStatus> = {};
  for (const id of ids) out[id] = run.nodes?.[id]?.status ?? "not run";
  return out;
}
