/**
 * Whether a flow id a command was given (`--flow ID`) names a flow at all, for
 * a did-you-mean when it found nothing: a flow is known when a run of it is
 * recorded, a version of it is recorded (or archived), or a flow file of the
 * config's `flows:` declares it.
 *
 * @module
 */
import type { Runtime } from "../runtime.ts";
import type { Records } from "../records/records.ts";
import { archiveReaderOf } from "../records/_archive_read.ts";
import { ConfigError } from "../errors.ts";
import { declaredFlowIds } from "../flow_files.ts";
import { knownJobNames } from "../jobs/builtin.ts";
import { didYouMean } from "../_suggest.ts";
import { unknownFlowMessage } from "./format.ts";

/**
 * Why `flowId` is no flow at all (no run of it, recorded flow or flow file
 * declares it; for `job:<name>`, no run of it and no built-in or configured
 * job has that name), or `null` if something knows it. `records` is `null`
 * when the records store does not exist yet. `what` is what the command found
 * none of, for the message (`runs`, `state`).
 */
export async function unknownFlow(
  runtime: Runtime,
  records: Records | null,
  flowId: string,
  what = "runs",
): Promise<string | null> {
  if (records !== null && (await records.listRunSummaries({ flowId, limit: 1 })).runs.length > 0) {
    return null;
  }
  // The records' flows include those known only from the archive; with no records store, the archive's.
  const recorded = records === null
    ? [...(await archiveReaderOf(runtime).lastRuns(() => {})).keys()]
    : (await records.listFlows()).map((f) => f.id);
  // A job's runs have the flow id job:<name>, which no flow file declares: judged by job name.
  if (flowId.startsWith("job:")) {
    const names = knownJobNames(runtime.config.jobs);
    if (names.includes(flowId.slice("job:".length))) return null;
    const jobs = [...new Set([...names.map((n) => `job:${n}`), ...recorded])]
      .filter((id) => id.startsWith("job:"));
    if (jobs.includes(flowId)) return null;
    return `Job "${flowId.slice("job:".length)}" has no recorded ${what}${
      didYouMean(flowId, jobs)
    }: no built-in or configured job has that name; give --flow job:<name> with one of ${
      jobs.join(", ")
    }`;
  }
  // A config whose flows: cannot be read is reported by the commands that run flows.
  const declared = await declaredFlowIds(runtime.config).catch((err) => {
    if (err instanceof ConfigError) return [];
    throw err;
  });
  const known = [...new Set([...recorded, ...declared])].sort();
  return known.includes(flowId) ? null : unknownFlowMessage(flowId, what, known, "declared");
}
