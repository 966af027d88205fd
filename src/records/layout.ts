/**
 * The key layout of the records, shared by {@linkcode Records} and the jobs
 * that work on many runs at once (retention). Internal: not exported from
 * `mod.ts`. See the table in `records.ts`.
 *
 * @module
 */
import type { RunStatus } from "./types.ts";
import type { Key } from "../store/types.ts";

/**
 * The statuses that have entries in the status indexes: every status but
 * `succeeded`. Succeeded runs are the great majority, so indexing them would
 * add two rows to almost every run; they are found by filtering the
 * time-ordered lists instead (where they are most of what is read).
 */
export const INDEXED_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>([
  "queued",
  "running",
  "failed",
  "cancelled",
  "timed-out",
]);

/** Every status a run can have. */
export const RUN_STATUSES: readonly RunStatus[] = [
  "queued",
  "running",
  "succeeded",
  "failed",
  "cancelled",
  "timed-out",
];

/**
 * A run whose end is later than its id's time (its enqueue or start) by more
 * than this, in ms, has an entry in the `runs-ended-late` index
 * ({@linkcode RecordsLayout.endedLate}): retention ages runs from their end,
 * and this is how it finds, without reading every run, those whose id looks
 * older than their end (a run queued for long, a long run). Every other
 * run ended at most this long after its id's time.
 */
export const LATE_END_MS = 60_000;

/** What the `runs-ended-late` index holds of a run. */
export interface EndedLate {
  flowId: string;
  status: RunStatus;
  endedAt: number;
}

/**
 * The `version` of a flow's metrics entry (`P, "metrics", flowId, "*pruned"`)
 * that counts the runs of the versions retention deleted: their per-version
 * metrics are folded into it, so the per-version entries and it add up to the
 * flow's `"*"`. No run may have it as its `flowVersion`.
 */
export const PRUNED_METRICS = "*pruned";

/** The property of a stored run record that holds its events once inlined. */
export const EVENTS_FIELD = "@events";

/** Width of an event chunk's number in its key. */
const CHUNK_DIGITS = 8;

/** What a run's index keys depend on. */
export type RunKeyParts = { id: string; flowId: string; status: RunStatus };

/** Builds the keys of the records layout under one prefix. */
export class RecordsLayout {
  /** The prefix every record key starts with. */
  readonly prefix: Key;

  /** The layout under `prefix`. */
  constructor(prefix: Key) {
    this.prefix = [...prefix];
  }

  /** `prefix` followed by `parts`. */
  key(...parts: string[]): Key {
    return [...this.prefix, ...parts];
  }

  /** The run record (`runs, id`), or the prefix of every run record. */
  run(id?: string): Key {
    return id === undefined ? this.key("runs") : this.key("runs", id);
  }

  /** A run's entry in its flow's index, or the prefix of that index. */
  byFlow(flowId: string, id?: string): Key {
    return id === undefined
      ? this.key("runs-by-flow", flowId)
      : this.key("runs-by-flow", flowId, id);
  }

  /** A run's entry in a status index, or the prefix of that index. */
  byStatus(status: RunStatus, id?: string): Key {
    return id === undefined
      ? this.key("runs-by-status", status)
      : this.key("runs-by-status", status, id);
  }

  /** A run's entry in a flow's status index, or the prefix of that index. */
  byFlowStatus(flowId: string, status: RunStatus, id?: string): Key {
    return id === undefined
      ? this.key("runs-by-flow-status", flowId, status)
      : this.key("runs-by-flow-status", flowId, status, id);
  }

  /** The prefix of a run's event chunks, or of every run's. */
  events(id?: string): Key {
    return id === undefined ? this.key("events") : this.key("events", id);
  }

  /**
   * A run's entry in the index of runs that ended late (see {@linkcode LATE_END_MS}), or the
   * prefix of that index.
   */
  endedLate(id?: string): Key {
    return id === undefined ? this.key("runs-ended-late") : this.key("runs-ended-late", id);
  }

  /** A run's cancel request (see `Records.requestCancel`), or the prefix of every one. */
  cancel(id?: string): Key {
    return id === undefined ? this.key("cancel") : this.key("cancel", id);
  }

  /**
   * A signal sent to a run and not taken yet (see `_signals.ts`): the prefix of
   * every one of the run's (`name` absent), of its signals `name`, or one signal.
   */
  signal(id: string, name?: string, seq?: string): Key {
    if (name === undefined) return this.key("signals", id);
    return seq === undefined ? this.key("signals", id, name) : this.key("signals", id, name, seq);
  }

  /**
   * The `runs.onFailure` marker of a failed run (see `Records.claimOnFailure`),
   * or the prefix of every one.
   */
  onFailure(id?: string): Key {
    return id === undefined ? this.key("on-failure") : this.key("on-failure", id);
  }

  /**
   * The mark that a run is resumed (see `Records.claimResume`), or the
   * prefix of every one.
   */
  resumed(id?: string): Key {
    return id === undefined ? this.key("resumed") : this.key("resumed", id);
  }

  /** A queue worker's entry in the registry (see `workers.ts`), or the prefix of every one. */
  worker(id?: string): Key {
    return id === undefined ? this.key("workers") : this.key("workers", id);
  }

  /** One event chunk of a run. */
  chunk(id: string, n: number): Key {
    return this.key("events", id, String(n).padStart(CHUNK_DIGITS, "0"));
  }

  /** The index entries a run with this status has. */
  indexKeys(run: RunKeyParts): Key[] {
    const keys = [this.byFlow(run.flowId, run.id)];
    if (INDEXED_STATUSES.has(run.status)) {
      keys.push(
        this.byStatus(run.status, run.id),
        this.byFlowStatus(run.flowId, run.status, run.id),
      );
    }
    return keys;
  }

  /**
   * Every index entry a run with this status may have, including the status
   * entries of a `succeeded` run written by Flowstate before 0.2 (which
   * indexed every status): deleting these removes a run of either layout.
   */
  allIndexKeys(run: RunKeyParts): Key[] {
    return [
      this.byFlow(run.flowId, run.id),
      this.byStatus(run.status, run.id),
      this.byFlowStatus(run.flowId, run.status, run.id),
    ];
  }
}
