/**
 * The standalone maintenance commands (`backup`, `restore`, `migrate data
 * up|down`, `migrate store`) run their built-in job through `runJob`, as
 * `flowstate jobs run` does, so each is recorded as a run of flow
 * `job:<name>` (`flowstate runs ls --flow job:backup`). They print their own
 * result on stdout; where the job's `info` log lines say the same (a
 * backup's, a restore's, a store move's), they are not printed (they are
 * recorded as the run's events). Warnings and errors always are.
 *
 * @module
 */
import { runJob } from "../jobs/run.ts";
import type { RunRecord } from "../records/types.ts";
import { type Runtime, setRunSource } from "../runtime.ts";
import { interruptible, printError, progressMode, stderrLogger } from "./common.ts";

/** How to run one recorded maintenance job. */
export interface RecordedJobOptions {
  /** The job's options. */
  options: Record<string, unknown>;
  /** `--dry-run`. */
  dryRun?: boolean;
  /** `--quiet` or `--json`: no progress bar and no `info` log lines. */
  quiet?: boolean;
  /** Print the job's `info` log lines (unless `quiet`); default: warnings and errors only. */
  infoLogs?: boolean;
  /** What the first Ctrl-C prints (`Stopping the backup at the next consistent point`). */
  notice: string;
  /** Called once the run is recorded `running`, before the job starts. */
  onStart?: (runId: string) => void;
}

/** What {@linkcode runRecordedJob} resolves to. */
export interface RecordedJob<T> {
  /** The job's result (its outputs), or `null` when it failed before returning one. */
  result: T | null;
  /** The run record. */
  record: RunRecord;
  /** The exit code when the run did not succeed: 130/143/129 for a stop signal, else 1. */
  failureCode: number;
}

/**
 * Run the built-in job `name` now, recorded, stopping at the first stop
 * signal. A run that failed without a result has its error printed as an
 * `error:` line.
 */
export async function runRecordedJob<T>(
  runtime: Runtime,
  name: string,
  how: RecordedJobOptions,
): Promise<RecordedJob<T>> {
  // A backup, restore or migration from the command line (for runs.onFailure's `source`).
  setRunSource(runtime, "cli");
  const { value: record, interrupted, exitCode } = await interruptible(
    how.notice,
    (signal) =>
      runJob(runtime, name, {
        options: how.options,
        dryRun: how.dryRun ?? false,
        signal,
        progress: progressMode(how.quiet),
        onLog: stderrLogger(how.quiet || !how.infoLogs),
        ...(how.onStart === undefined ? {} : { onStart: how.onStart }),
      }),
  );
  const failureCode = interrupted && record.status === "cancelled" ? exitCode : 1;
  if (record.outputs === null) {
    printError(record.error?.message ?? `the ${name} job ${record.status} (run ${record.id})`);
    return { result: null, record, failureCode };
  }
  return { result: record.outputs as T, record, failureCode };
}
