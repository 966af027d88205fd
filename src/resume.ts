/**
 * Resuming a run (`Runtime.resumeRun`, `flowstate runs resume`): which runs
 * may be resumed, and which of their nodes a new run takes as they were
 * recorded instead of running them again.
 *
 * A node is reused only when its recorded outcome is complete and faithful
 * and would be the same now: it succeeded in the run resumed, with its output
 * recorded (not dropped for size; for a run whose process died, kept with its
 * events: see `recorder.ts`), not
 * masked (`NodeOutcome.masked`), not a mock's; its `when:` is neither
 * `on_failure` nor `always`; its definition is the same in the version the run
 * ran and in the flow now; no local file it runs (its module and the files
 * that imports, its sub-flow's files) was modified after the run started; it
 * is not the `from` node; and every node it needs is reused too (so that a
 * node run again runs again everything after it), or was skipped by its `if:`
 * (its definition the same, its own needs reused, its `if:` reading only
 * inputs and reused nodes: evaluated again, it is skipped again).
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
import { compileTemplate, type TemplateRefs } from "./flow/template/mod.ts";
import type { FlowDefinition, NodeSpec } from "./flow/types.ts";
import { canonicalJson } from "./records/flow_version.ts";
import { DEFAULT_ABANDONED_MS, judgeRun } from "./records/heartbeat.ts";
import { outcomesOfEvents } from "./records/_node_outcomes.ts";
import type { Records } from "./records/records.ts";
import type { NodeOutcome, NodeStatus, ResumeMarker, RunRecord } from "./records/types.ts";
import type { Clock, Timers } from "./clock.ts";

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
  // A run a `queue` node enqueued has a parent too, but nothing waits for it: it is resumed as
  // any queued run is.
  if (run.parentRunId !== undefined && run.queue === undefined) {
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

/** The statuses of a node (and a sub-run) whose sub-runs a resume resumes. */
const ENDED_UNDONE: ReadonlySet<string> = new Set(["failed", "timed-out", "cancelled"]);

/**
 * The sub-runs of `spec`'s outcome a resume may resume (see
 * {@linkcode subRunPlan}): those of a node that ended undone, has no
 * `forEach:` (its items have their own) and is not the `from` node (named to
 * run again whole).
 */
function resumedSubRuns(spec: NodeSpec, outcome: NodeOutcome, from: string | undefined): string[] {
  if (spec.forEach !== undefined || spec.id === from || !ENDED_UNDONE.has(outcome.status)) {
    return [];
  }
  return (outcome.subRuns ?? []).filter((id): id is string => typeof id === "string");
}

/**
 * The statuses of a sub-run a resume resumes: one that ended undone, and one
 * that succeeded under a node that failed after it (a custom node throwing
 * once its `ctx.runFlow` returned): its nodes are all reused, not run again.
 */
const SUB_RUN_ENDED: ReadonlySet<string> = new Set([...ENDED_UNDONE, "succeeded"]);

/**
 * The resume plan of the sub-run node `spec` of a run resuming `plan.run`
 * starts at its `call`-th call of a sub-flow: the sub-run of that call in
 * `plan.run`, resumed (its nodes that succeeded reused), when the node ended
 * undone there and that sub-run ended (undone, or succeeded) and may be
 * resumed (not a test's); else `undefined`, a new
 * sub-run. The sub-run checks, once its flow is loaded, that it is the same
 * flow with the same inputs ({@linkcode sameSubRun}).
 */
export async function subRunPlan(
  records: Records,
  plan: { run: RunRecord; from?: string },
  spec: NodeSpec,
  call: number,
): Promise<{ run: RunRecord; before: FlowDefinition | null; sub: true } | undefined> {
  const nodes = plan.run.nodes;
  const outcome = Object.hasOwn(nodes, spec.id) ? nodes[spec.id] : undefined;
  if (outcome === undefined || !resumedSubRuns(spec, outcome, plan.from).length) return undefined;
  const id = outcome.subRuns?.[call - 1];
  if (typeof id !== "string") return undefined;
  const sub = await records.getRun(id);
  if (
    sub === null || sub.parentRunId !== plan.run.id || !SUB_RUN_ENDED.has(sub.status) ||
    sub.mocked === true
  ) return undefined;
  const version = await records.getVersion(sub.flowId, sub.flowVersion);
  return { run: sub, before: version?.definition ?? null, sub: true };
}

/**
 * Whether a sub-run of flow `def` with `inputs` is sub-run `run` again (the
 * same flow, the same inputs), which it then resumes. A sub-run whose inputs
 * were recorded masked (a secret's value passed to it, `***`) is compared
 * with `inputs` masked the same way (`mask`): the call gives the real values,
 * which the resumed sub-run runs with.
 */
export function sameSubRun(
  run: RunRecord,
  def: FlowDefinition,
  inputs: unknown,
  mask: (value: unknown) => unknown,
): boolean {
  if (def.id !== run.flowId) return false;
  const given = run.inputsMasked === true ? mask(inputs) : inputs;
  return canonicalJson(given) === canonicalJson(run.inputs);
}

/**
 * `run`, or, when it is recorded `running` but its process is verifiably
 * dead on this machine (see `judgeRun`), its record once recorded abandoned
 * (as gc, `runs cancel` and signals do): it resumes at once, with no wait
 * for its heartbeat to age.
 */
export async function endedIfOwnerDead(
  records: Records,
  run: RunRecord,
  now: number,
): Promise<RunRecord> {
  if (run.status !== "running") return run;
  const judged = judgeRun(run, now, DEFAULT_ABANDONED_MS);
  if (judged.state !== "abandoned" || judged.why.by !== "process") return run;
  return await records.abandonRun(run.id, { afterMs: DEFAULT_ABANDONED_MS, now }) ??
    foundRun(await records.getRun(run.id), run.id);
}

/** The run `runId` of `records`, or a {@linkcode NotFoundError}. */
export function foundRun(run: RunRecord | null, runId: string): RunRecord {
  if (run !== null) return run;
  throw new NotFoundError(
    `Cannot resume run ${runId}: no such run (list runs with: flowstate runs ls)`,
    { kind: "run", id: runId },
  );
}

/**
 * Why the end of `run` was recorded by another process than the one that ran
 * it: `"abandoned"` (its process found gone by gc, a daemon or a worker), `"its
 * worker lost"` (its queued attempt's worker lost for the last time), or
 * `undefined` (it recorded its own end). Such an end holds its nodes'
 * outcomes from their events, without the outputs they did not keep.
 */
function lostEndOf(run: RunRecord): "abandoned" | "its worker lost" | undefined {
  return run.error?.message.startsWith("abandoned:") === true
    ? "abandoned"
    : run.queue?.attempts.at(-1)?.outcome === "lost"
    ? "its worker lost"
    : undefined;
}

/**
 * The run `runId` of `records` as a resume reads it (a
 * {@linkcode NotFoundError} when there is none). A run whose end another
 * process recorded (see {@linkcode lostEndOf}) gets, for the nodes its record
 * has no outcome for, the outcomes their events give: Flowstate 0.7 and
 * before recorded such an end with the outcomes the run had when it started
 * (none), so the nodes that succeeded before its process died, their side
 * effects made, would be said not to have run. A run recorded `running`
 * whose process is gone from this machine is recorded abandoned first
 * ({@linkcode endedIfOwnerDead}).
 *
 * @example
 * ```ts ignore
 * const run = await runToResume(records, runId, Date.now());
 * ```
 */
export async function runToResume(
  records: Records,
  runId: string,
  now: number,
): Promise<RunRecord> {
  const run = await endedIfOwnerDead(records, foundRun(await records.getRun(runId), runId), now);
  if (lostEndOf(run) === undefined) return run;
  const nodes = run.nodes ?? {};
  const fromEvents = outcomesOfEvents(await records.getEvents(run.id));
  if (Object.keys(fromEvents).every((id) => Object.hasOwn(nodes, id))) return run;
  return { ...run, nodes: { ...fromEvents, ...nodes } };
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
 * Why a node of a resume is reused or runs again (see {@linkcode ResumeDecision}):
 * `succeeded` (reused: it succeeded and nothing since changes what it did);
 * the rest run again: `from` (the node the resume starts from), `not-run`
 * (it did not run), `status` (it ended otherwise than succeeded), `output`
 * (its output was not recorded whole), `masked` (its output held a secret),
 * `mocked` (a mock stood in for it), `handler` (its `when:` is `on_failure`
 * or `always`), `definition` (its definition changed since), `code` (a
 * file it runs was modified since the run started), `needs` (a node it
 * needs runs again).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type ResumeReason } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const flow = {
 *   id: "steps",
 *   nodes: [
 *     { id: "a", type: "log", with: { message: "a" } },
 *     { id: "b", type: "log", needs: ["a"], with: { message: "b" } },
 *   ],
 * };
 * const run = await rt.runFlow(flow);
 * const reasons: ResumeReason[] = (await rt.previewResume(run.id, { flow, from: "a" })).nodes
 *   .map((n) => n.reason);
 * assert.deepEqual(reasons, ["from", "needs"]);
 * ```
 */
export type ResumeReason =
  | "succeeded"
  | "from"
  | "not-run"
  | "status"
  | "output"
  | "masked"
  | "mocked"
  | "handler"
  | "definition"
  | "code"
  | "needs";

/**
 * What a resume does with one node of the flow, and why (`Runtime.previewResume`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type ResumeDecision } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const flow = {
 *   id: "pair",
 *   nodes: [
 *     { id: "a", type: "log", with: { message: "a" } },
 *     { id: "b", type: "fail", needs: ["a"], with: { message: "down" } },
 *   ],
 * };
 * const failed = await rt.runFlow(flow);
 * const [a, b]: ResumeDecision[] = (await rt.previewResume(failed.id, { flow })).nodes;
 * assert.equal(a.reused, true);
 * assert.equal(b.message, `failed in run ${failed.id}`);
 * ```
 */
export interface ResumeDecision {
  /** The node's id. */
  node: string;
  /** `true`: taken as recorded in the run resumed; `false`: runs again. */
  reused: boolean;
  /** Why (see {@linkcode ResumeReason}). */
  reason: ResumeReason;
  /** The reason, said for a person (`"failed in run …"`, `"needs load, which runs again"`). */
  message: string;
  /** Its status in the run resumed, when it ran there. */
  status?: NodeStatus;
  /** With reason `needs`: the node it needs that runs again. */
  need?: string;
  /**
   * For a node that failed (timed out, was cancelled) running sub-flows: its
   * sub-runs there, which the resume resumes rather than start anew, each
   * when the node calls the same sub-flow with the same inputs again (see
   * `NodeOutcome.subRuns`).
   */
  subRuns?: string[];
}

/**
 * What a resume of a run would do, found without running or writing anything
 * (`Runtime.previewResume`, `flowstate runs resume --dry-run`,
 * `GET /api/runs/{id}/resume`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRuntime, type ResumePreview } from "@flowstate/core";
 *
 * await using rt = await openRuntime({ config: { stores: { main: { plugin: "memory" } } } });
 * const flow = {
 *   id: "pay",
 *   nodes: [
 *     { id: "charge", type: "state.increment", with: { key: "charges" } },
 *     { id: "mail", type: "fail", needs: ["charge"], with: { message: "smtp down" } },
 *   ],
 * };
 * const failed = await rt.runFlow(flow);
 * const preview: ResumePreview = await rt.previewResume(failed.id, { flow });
 * assert.deepEqual(preview.nodes.map((n) => [n.node, n.reused, n.reason]), [
 *   ["charge", true, "succeeded"],
 *   ["mail", false, "status"],
 * ]);
 * ```
 */
export interface ResumePreview {
  /** The run a resume would resume. */
  runId: string;
  /** Its flow's id. */
  flowId: string;
  /** The node it would run again from, when given. */
  from?: string;
  /** Whether the flow now is the very version the run ran (else nodes are compared one by one). */
  sameVersion: boolean;
  /** Each node of the flow now, in its order: reused or run again, and why. */
  nodes: ResumeDecision[];
}

/**
 * What a run resuming `run` does with each node of `def` (the flow now), in
 * the flow's order (see the module's documentation). `before` is the
 * definition `run` ran (its flow version), `null` when no longer kept (then
 * only a flow of the same version reuses nodes); `sameVersion` says whether
 * `def` is that version. `codeChanged` says whether what a node runs beyond
 * its definition (its module and the files it imports, its sub-flow's files)
 * changed since the run: such a node runs again.
 */
export function resumeDecisions(
  run: RunRecord,
  def: FlowDefinition,
  before: FlowDefinition | null,
  sameVersion: boolean,
  from: string | undefined,
  codeChanged: (spec: NodeSpec) => boolean = () => false,
): ResumeDecision[] {
  const specs = new Map(def.nodes.map((n) => [n.id, n]));
  const old = new Map((before?.nodes ?? []).map((n) => [n.id, n]));
  const decided = new Map<string, ResumeDecision>();
  /** Whether the nodes after a node may be reused as far as it goes (see `passes` below). */
  const through = new Map<string, boolean>();
  const unchanged = (spec: NodeSpec): boolean => {
    if (sameVersion) return true;
    const was = old.get(spec.id);
    return was !== undefined && canonicalJson(was) === canonicalJson(spec);
  };
  const inRun = `in run ${run.id}`;
  const lostEnd = lostEndOf(run);
  /** Why `spec` cannot be reused on its own, or `undefined` when it can. */
  const own = (spec: NodeSpec): Omit<ResumeDecision, "node" | "reused"> | undefined => {
    const id = spec.id;
    const outcome = Object.hasOwn(run.nodes, id) ? run.nodes[id] : undefined;
    const status = outcome === undefined ? {} : { status: outcome.status };
    if (id === from) {
      return { reason: "from", message: "the node the resume starts from", ...status };
    }
    if (outcome === undefined) return { reason: "not-run", message: `did not run ${inRun}` };
    if (outcome.status !== "succeeded") {
      const subRuns = resumedSubRuns(spec, outcome, from);
      return {
        reason: "status",
        message: outcome.status === "skipped" && spec.if !== undefined
          ? `skipped ${inRun}: its if: is evaluated again`
          : `${outcome.status} ${inRun}${
            subRuns.length === 0
              ? ""
              : `; ${subRuns.length === 1 ? "its sub-run" : "its sub-runs"} ${subRuns.join(", ")} ${
                subRuns.length === 1 ? "is" : "are"
              } resumed (the nodes that succeeded there are reused) if called with the same inputs`
          }`,
        ...status,
        ...(subRuns.length === 0 ? {} : { subRuns }),
      };
    }
    if (!Object.hasOwn(outcome, "output") || outcome.output === undefined) {
      return {
        reason: "output",
        message: lostEnd !== undefined
          ? `succeeded ${inRun}, whose process was lost before it recorded its end ` +
            `(${lostEnd}), and its output was not kept with its events (it ended in the ` +
            `last fraction of a second, its output was over 256 KiB, or Flowstate 0.7 or ` +
            `before ran the run or recorded its end: it keeps none): it runs again, and its ` +
            `side effects happen again`
          : `its output was not recorded whole ${inRun} (too large to keep, or lost ` +
            "with the run's end)",
        ...status,
      };
    }
    if (outcome.masked === true) {
      return {
        reason: "masked",
        message: `its output held a secret and was recorded masked ${inRun}`,
        ...status,
      };
    }
    if (outcome.mocked === true) {
      return { reason: "mocked", message: `a mock stood in for it ${inRun}`, ...status };
    }
    if (spec.when === "on_failure" || spec.when === "always") {
      return {
        reason: "handler",
        message: `when: ${spec.when}: a handler is never reused, it runs again once its needs end`,
        ...status,
      };
    }
    if (!unchanged(spec)) {
      return {
        reason: "definition",
        message: before === null
          ? `the flow changed since run ${run.id}, and the version that run ran is no longer ` +
            "kept to compare its nodes with"
          : `its definition changed since run ${run.id}`,
        ...status,
      };
    }
    if (codeChanged(spec)) {
      return {
        reason: "code",
        message: `a file it runs (its module, a file that imports, its sub-flow's files) was ` +
          `modified after run ${run.id} started`,
        ...status,
      };
    }
    return undefined;
  };
  const decide = (id: string, path: Set<string>): ResumeDecision | undefined => {
    const known = decided.get(id);
    if (known !== undefined) return known;
    const spec = specs.get(id);
    // A cycle cannot pass the flow's checks; guarded all the same.
    if (spec === undefined || path.has(id)) return undefined;
    path.add(id);
    let decision: ResumeDecision;
    const why = own(spec);
    // Whether a node needing it may be reused: it is, or its if: skips it again (below).
    let passes = why === undefined;
    if (why !== undefined) {
      decision = { node: id, reused: false, ...why };
      // Skipped by its if: with its definition the same and its needs reused, it is evaluated
      // again on the same values and skipped again: the nodes after it that succeeded are
      // reused, not run (a charge made) again.
      const outcome = run.nodes[id];
      const passing = (need: string) => (decide(need, path), through.get(need) === true);
      passes = why.reason === "status" && outcome.status === "skipped" && outcome.attempts === 0 &&
        spec.if !== undefined && id !== from && spec.when !== "on_failure" &&
        spec.when !== "always" && unchanged(spec) && (spec.needs ?? []).every(passing) &&
        ifReadsOnly(spec.if, passing);
    } else {
      decision = {
        node: id,
        reused: true,
        reason: "succeeded",
        message: `succeeded ${inRun}: its recorded output is taken`,
        status: "succeeded",
      };
      for (const need of spec.needs ?? []) {
        decide(need, path);
        if (through.get(need) === true) continue;
        passes = false;
        decision = {
          node: id,
          reused: false,
          reason: "needs",
          message: `needs ${need}, which runs again`,
          status: "succeeded",
          need,
        };
        break;
      }
    }
    path.delete(id);
    decided.set(id, decision);
    through.set(id, passes);
    return decision;
  };
  return def.nodes.map((spec) =>
    decide(spec.id, new Set()) ??
      { node: spec.id, reused: false, reason: "not-run", message: `did not run ${inRun}` }
  );
}

/**
 * Whether the `if:` text `when` reads nothing but the run's inputs and the
 * nodes `passing` says are reused (or skipped again): evaluated again in a
 * resume, it gives the same answer. One that reads `env.`, `secrets.`,
 * `run.` or calls `now()` may not (the environment changed, the resume is
 * another run), nor one that does not compile.
 */
function ifReadsOnly(when: string, passing: (node: string) => boolean): boolean {
  let refs: TemplateRefs;
  try {
    refs = compileTemplate(when).refs;
  } catch {
    return false;
  }
  return refs.env.size === 0 && refs.secrets.size === 0 && refs.run.size === 0 &&
    !/\bnow\s*\(/.test(when) && [...refs.nodes].every(passing);
}

/**
 * The nodes of `def` that a run resuming `run` takes as recorded, by id:
 * those {@linkcode resumeDecisions} reuses, with their recorded outcomes.
 */
export function reusableNodes(
  run: RunRecord,
  def: FlowDefinition,
  before: FlowDefinition | null,
  sameVersion: boolean,
  from: string | undefined,
  codeChanged: (spec: NodeSpec) => boolean = () => false,
): Map<string, ReusedNode> {
  const reused = new Map<string, ReusedNode>();
  for (const d of resumeDecisions(run, def, before, sameVersion, from, codeChanged)) {
    if (!d.reused) continue;
    const outcome = run.nodes[d.node]!;
    const node: ReusedNode = { from: run.id, attempts: outcome.attempts, output: outcome.output! };
    if (outcome.items !== undefined) node.items = outcome.items;
    if (outcome.subRuns !== undefined) node.subRuns = outcome.subRuns;
    reused.set(d.node, node);
  }
  return reused;
}

/**
 * How long a resume's claim lasts before its run starts (ms): the resume
 * renews it every {@linkcode RESUME_RENEW_MS} while it starts its run, so a
 * claim past its `until` is one whose resume was stopped (killed, its machine
 * gone), and `again` may take it over; a claim within it is never taken over.
 */
export const RESUME_CLAIM_MS = 30_000;

/** How often a starting resume renews its claim (ms): a third of its length. */
export const RESUME_RENEW_MS = 10_000;

/** The process a claim names (its host when this process may read it, and its pid). */
function claimant(): { host?: string; pid: number } {
  try {
    return { host: Deno.hostname(), pid: Deno.pid };
  } catch {
    return { pid: Deno.pid }; // Without --allow-sys.
  }
}

/**
 * Claim `run` for this resume (see `Records.claimResume`): the version of the
 * mark written, or a {@linkcode ResumeRefusedError} (reason `"resumed"`) when
 * another resume has it. With `again`, a mark whose resuming run ended (or
 * whose resume was stopped before its run started, or is gone) is taken
 * over, with the same compare-and-set: of two resumes `again` at once, one
 * goes on. The claim lasts {@linkcode RESUME_CLAIM_MS} from `now` unless
 * {@linkcode holdResumeClaim} renews it.
 */
export async function claimResume(
  records: Records,
  run: RunRecord,
  again: boolean,
  now: number,
): Promise<string> {
  const marker = { at: now, until: now + RESUME_CLAIM_MS, ...claimant() };
  for (;;) {
    const found = await records.resumeMarker(run.id);
    if (found === null) {
      const version = await records.claimResume(run.id, marker);
      if (version !== null) return version;
      continue; // Another resume's mark landed first: read it.
    }
    await refuseUnlessTakeable(records, run, found.marker, again, now);
    const version = await records.claimResume(run.id, marker, found.version);
    if (version !== null) return version;
  }
}

/** A claim a starting resume holds (see {@linkcode holdResumeClaim}). */
export interface HeldClaim {
  /** Aborts when the claim was lost (taken over once lapsed): the resume must not start its run. */
  readonly lost: AbortSignal;
  /**
   * Renew it now, just before the resume starts its run: a process stalled
   * past its claim (suspended, its machine asleep) may go on before its
   * renewal's timer fires; `lost` then aborts if another resume took it over.
   */
  confirm(): Promise<void>;
  /** Stop renewing, once any renewal under way has landed: the claim's version then. */
  release(): Promise<string>;
}

/**
 * Keep the claim of `runId` (version `version`) from lapsing while its
 * resume starts its run: renewed every {@linkcode RESUME_RENEW_MS} of
 * `timers` to `clock.now()` + {@linkcode RESUME_CLAIM_MS}. A renewal that
 * finds the mark changed (a process stalled past its claim, which another
 * resume took over `again`) aborts `lost`; one the store fails is tried again
 * at the next turn (the claim lasts three of them).
 */
export function holdResumeClaim(
  records: Records,
  runId: string,
  version: string,
  host: { timers: Timers; clock: Clock },
): HeldClaim {
  const stop = new AbortController();
  const lost = new AbortController();
  let current = version;
  /** One renewal at a time (the timer's and `confirm`'s): each with the version the last wrote. */
  let last: Promise<void> = Promise.resolve();
  const renew = () =>
    last = last.then(async () => {
      if (lost.signal.aborted) return;
      let next: string | null;
      try {
        next = await records.renewResume(runId, current, host.clock.now() + RESUME_CLAIM_MS);
      } catch {
        return; // The store failed: the claim still has two turns.
      }
      if (next !== null) {
        current = next;
        return;
      }
      lost.abort(
        new ResumeRefusedError(
          `Cannot resume run ${runId}: this resume was stalled past its claim ` +
            `(${
              RESUME_CLAIM_MS / 1000
            } s) and another resume took the run over; its run was not started`,
          { reason: "resumed", runId },
        ),
      );
    });
  const renewing = (async () => {
    while (!stop.signal.aborted && !lost.signal.aborted) {
      try {
        await host.timers.sleep(RESUME_RENEW_MS, stop.signal);
      } catch {
        return; // released
      }
      await renew();
    }
  })();
  return {
    lost: lost.signal,
    confirm: renew,
    release: async () => {
      stop.abort();
      await renewing;
      await last;
      return current;
    },
  };
}

/**
 * The {@linkcode ResumeRefusedError} {@linkcode claimResume} would throw for
 * `run` at `now`, found by reading only (a preview of a resume writes nothing).
 */
export async function assertNotResumed(
  records: Records,
  run: RunRecord,
  again: boolean,
  now: number,
): Promise<void> {
  const found = await records.resumeMarker(run.id);
  if (found !== null) await refuseUnlessTakeable(records, run, found.marker, again, now);
}

/**
 * Refused (reason `"resumed"`) when `run`'s resume mark cannot be taken
 * over: always without `again`; with it while the run it names is queued or
 * running, or, before its run started, while its claim has not lapsed.
 */
async function refuseUnlessTakeable(
  records: Records,
  run: RunRecord,
  marker: ResumeMarker,
  again: boolean,
  now: number,
): Promise<void> {
  const by = marker.runId;
  const resuming = by === undefined ? null : await records.getRun(by);
  const live = by === undefined
    ? marker.until !== undefined && marker.until > now
    : resuming !== null && (resuming.status === "queued" || resuming.status === "running");
  if (again && !live) return;
  throw new ResumeRefusedError(resumedMessage(run.id, marker, resuming, now), {
    reason: "resumed",
    runId: run.id,
    ...(by === undefined ? {} : { resumedBy: by }),
  });
}

/** Why a resume of `runId` is refused when the resume that marked it (`resuming`, its run) holds it. */
function resumedMessage(
  runId: string,
  marker: ResumeMarker,
  resuming: RunRecord | null,
  now: number,
): string {
  const head = `Cannot resume run ${runId}`;
  const by = marker.runId;
  if (by === undefined) {
    const who = marker.pid === undefined
      ? ""
      : ` (process ${marker.pid}${marker.host === undefined ? "" : ` on ${marker.host}`})`;
    const claimed = `claimed at ${new Date(marker.at).toISOString()}`;
    if (marker.until !== undefined && marker.until > now) {
      return `${head}: another resume of it is starting its run${who}, ${claimed}; wait for ` +
        `that run (flowstate runs ls); if that resume was stopped, its claim lapses at ` +
        `${new Date(marker.until).toISOString()} and --again may then take the run over`;
    }
    return `${head}: another resume of it${who}, ${claimed}, was stopped before its run ` +
      `started; give --again to resume it`;
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
