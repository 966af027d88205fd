/**
 * Resuming a run (`Runtime.resumeRun`, `flowstate runs resume`): which runs
 * may be resumed, and which of their nodes a new run takes as they were
 * recorded instead of running them again.
 *
 * A node is reused only when its recorded outcome is complete and faithful
 * and would be the same now: it succeeded in the run resumed, with its output
 * recorded (not dropped for size, not lost with an abandoned run's end), not
 * masked (`NodeOutcome.masked`), not a mock's; its `when:` is neither
 * `on_failure` nor `always`; its definition is the same in the version the run
 * ran and in the flow now; no local file it runs (its module and the files
 * that imports, its sub-flow's files) was modified after the run started; it
 * is not the `from` node; and every node it needs is reused too (so that a
 * node run again runs again everything after it), or was skipped by its `if:`
 * (its definition the same, its own needs reused: evaluated again, it is
 * skipped again).
 *
 * A run is resumed once: {@linkcode claimResume} writes its resume mark with
 * the records store's compare-and-set before anything else is written, and a
 * second resume finds it and is refused, pointing at the run that resumes it.
 *
 * @module
 */
import { didYouMean } from "./_suggest.ts";
import { NotFoundError, ResumeRefusedError } from "./errors.ts";
import type { ReusedNode } from "./flow/executor.ts";
import type { FlowDefinition, NodeSpec } from "./flow/types.ts";
import { canonicalJson } from "./records/flow_version.ts";
import type { Records } from "./records/records.ts";
import type { RunRecord } from "./records/types.ts";

/**
 * Why `run` cannot be resumed (with `from`, or without), thrown as a
 * {@linkcode ResumeRefusedError}; nothing when it can.
 */
export function assertResumable(run: RunRecord, from: string | undefined): void {
  const refuse = (reason: ResumeRefusedError["reason"], message: string): never => {
    throw new ResumeRefusedError(`Cannot resume run ${run.id}: ${message}`, {
      reason,
      runId: run.id,
    });
  };
  if (run.flowId.startsWith("job:")) {
    refuse(
      "job",
      `it is a run of job "${run.flowId.slice(4)}", which has no nodes to reuse; run the job again`,
    );
  }
  if (run.parentRunId !== undefined) {
    refuse(
      "sub-run",
      `it is a sub-run of run ${run.parentRunId}, whose flow node waits for its outputs; ` +
        `resume that run (flowstate runs resume ${run.parentRunId})`,
    );
  }
  if (run.status === "queued" || run.status === "running") {
    refuse(
      "running",
      `it is still ${run.status}; wait for its end (or cancel it: flowstate runs cancel ${run.id})`,
    );
  }
  if (run.mocked === true || Object.values(run.nodes ?? {}).some((n) => n?.mocked === true)) {
    refuse(
      "mocked",
      "a test's mocks stood in for some of its nodes, so its outputs are not real; run the flow again",
    );
  }
  if (run.inputsMasked === true) {
    refuse(
      "masked",
      "a secret's value in its inputs was recorded as ***, so its record does not hold the " +
        "inputs it ran with; run the flow again, giving its inputs",
    );
  }
  if (run.status === "succeeded" && from === undefined) {
    refuse(
      "succeeded",
      "it succeeded, so there is nothing to resume; to run a node and what comes after it " +
        "again, name it with --from <node> (the API's body: { from })",
    );
  }
}

/** The run `runId` of `records`, or a {@linkcode NotFoundError}. */
export function foundRun(run: RunRecord | null, runId: string): RunRecord {
  if (run !== null) return run;
  throw new NotFoundError(
    `Cannot resume run ${runId}: no such run (list runs with: flowstate runs ls)`,
    { kind: "run", id: runId },
  );
}

/** A {@linkcode ResumeRefusedError} when `from` names no node of `def`. */
export function assertFromNode(def: FlowDefinition, from: string | undefined, runId: string): void {
  if (from === undefined) return;
  const ids = def.nodes.map((n) => n.id);
  if (ids.includes(from)) return;
  throw new ResumeRefusedError(
    `Cannot resume run ${runId} from node "${from}": flow "${def.id}" has no such node${
      didYouMean(from, ids)
    }; its nodes: ${ids.join(", ")}`,
    { reason: "from", runId },
  );
}

/** A {@linkcode ResumeRefusedError} when the flow found is not the run's (another id). */
export function assertSameFlow(def: FlowDefinition, run: RunRecord): void {
  if (def.id === run.flowId) return;
  throw new ResumeRefusedError(
    `Cannot resume run ${run.id} of flow "${run.flowId}" with flow "${def.id}": ` +
      `give the file of flow "${run.flowId}"`,
    { reason: "flow", runId: run.id },
  );
}

/**
 * The nodes of `def` (the flow now) that a run resuming `run` takes as
 * recorded, by id (see the module's documentation). `before` is the
 * definition `run` ran (its flow version), `null` when no longer kept (then
 * only a flow of the same version reuses nodes); `sameVersion` says whether
 * `def` is that version. `codeChanged` says whether what a node runs beyond
 * its definition (its module and the files it imports, its sub-flow's files)
 * changed since the run: such a node runs again.
 */
export function reusableNodes(
  run: RunRecord,
  def: FlowDefinition,
  before: FlowDefinition | null,
  sameVersion: boolean,
  from: string | undefined,
  codeChanged: (spec: NodeSpec) => boolean = () => false,
): Map<string, ReusedNode> {
  const specs = new Map(def.nodes.map((n) => [n.id, n]));
  const old = new Map((before?.nodes ?? []).map((n) => [n.id, n]));
  const decided = new Map<string, boolean>();
  const reused = new Map<string, ReusedNode>();
  const unchanged = (spec: NodeSpec): boolean => {
    if (sameVersion) return true;
    const was = old.get(spec.id);
    return was !== undefined && canonicalJson(was) === canonicalJson(spec);
  };
  const decide = (id: string, path: Set<string>): boolean => {
    const known = decided.get(id);
    if (known !== undefined) return known;
    const spec = specs.get(id);
    // A cycle cannot pass the flow's checks; guarded all the same.
    if (spec === undefined || path.has(id)) return false;
    path.add(id);
    const outcome = Object.hasOwn(run.nodes, id) ? run.nodes[id] : undefined;
    const kept = id !== from && spec.when !== "on_failure" && spec.when !== "always" &&
      unchanged(spec);
    let ok = kept && outcome !== undefined && outcome.status === "succeeded" &&
      Object.hasOwn(outcome, "output") && outcome.output !== undefined &&
      outcome.masked !== true && outcome.mocked !== true && !codeChanged(spec);
    // Skipped by its `if:` (its needs reused, so it is skipped again): no output to reuse, but
    // the nodes after it that succeeded are reused, not run (and charged) again.
    const skipped = !ok && kept && spec.if !== undefined && outcome?.status === "skipped" &&
      outcome.attempts === 0;
    ok ||= skipped;
    for (const need of spec.needs ?? []) {
      if (!ok) break;
      ok = decide(need, path);
    }
    path.delete(id);
    decided.set(id, ok);
    if (ok && !skipped) {
      const node: ReusedNode = {
        from: run.id,
        attempts: outcome!.attempts,
        output: outcome!.output!,
      };
      if (outcome!.items !== undefined) node.items = outcome!.items;
      reused.set(id, node);
    }
    return ok;
  };
  for (const spec of def.nodes) decide(spec.id, new Set());
  return reused;
}

/**
 * Claim `run` for this resume (see `Records.claimResume`): the version of the
 * mark written, or a {@linkcode ResumeRefusedError} (reason `"resumed"`) when
 * another resume has it. With `again`, a mark whose resuming run ended (or
 * never started, or is gone) is taken over, with the same compare-and-set:
 * of two resumes `again` at once, one goes on.
 */
export async function claimResume(
  records: Records,
  run: RunRecord,
  again: boolean,
  now: number,
): Promise<string> {
  for (;;) {
    const found = await records.resumeMarker(run.id);
    if (found === null) {
      const version = await records.claimResume(run.id, { at: now });
      if (version !== null) return version;
      continue; // Another resume's mark landed first: read it.
    }
    const by = found.marker.runId;
    const resuming = by === undefined ? null : await records.getRun(by);
    const live = resuming !== null &&
      (resuming.status === "queued" || resuming.status === "running");
    if (again && !live) {
      const version = await records.claimResume(run.id, { at: now }, found.version);
      if (version !== null) return version;
      continue;
    }
    throw new ResumeRefusedError(resumedMessage(run.id, by, resuming), {
      reason: "resumed",
      runId: run.id,
      ...(by === undefined ? {} : { resumedBy: by }),
    });
  }
}

/** Why a resume of `runId` is refused when run `by` (`resuming`, its record) resumes it. */
function resumedMessage(runId: string, by: string | undefined, resuming: RunRecord | null): string {
  const head = `Cannot resume run ${runId}`;
  if (by === undefined) {
    return `${head}: another resume of it is starting its run; wait for that run ` +
      `(flowstate runs ls), or, if that resume was stopped before its run started, give --again`;
  }
  if (resuming === null) {
    return `${head}: it was resumed by run ${by}, which is no longer in the records store; ` +
      "to resume it anyway, give --again";
  }
  const status = resuming.status;
  if (status === "queued" || status === "running") {
    return `${head}: run ${runId} is already resumed by run ${by} (${status}); ` +
      `resume ${by} if it fails (flowstate runs resume ${by})`;
  }
  if (status === "succeeded") {
    return `${head}: run ${runId} was already resumed by run ${by} (succeeded); ` +
      `to run it again from a node, resume ${by} with --from <node>, or give --again`;
  }
  return `${head}: run ${runId} was already resumed by run ${by} (${status}); ` +
    `resume ${by} instead (flowstate runs resume ${by}): it holds the newer outputs; ` +
    "or give --again to resume this run once more";
}
