/**
 * `flowstate runs signal <run-id> <name> [--data <json>] [--json]`: send a
 * signal to a run's `wait` node, from any process sharing the records store.
 *
 * @module
 */
import {
  type GlobalOptions,
  openForReading,
  printError,
  printWarning,
  unlessMissing,
} from "./common.ts";
import { jsonProblem, UsageError } from "./input.ts";
import { isRunId } from "../records/run_id.ts";
import { signalData, signalNameProblem, unexpectedSignalWarning } from "../records/_signals.ts";
import { parseJson } from "../_json.ts";

/** The options of `runs signal`. */
export interface SignalCommandOptions {
  /** The signal's data, as JSON text (default: none, `null`). */
  data?: string;
  /**
   * Print `{ runId, flowId, signal, waiting, expected, waitSignals, warning? }` instead of a
   * sentence (`warning` when no `wait` node of the run's flow waits for the name).
   */
  json?: boolean;
}

/**
 * `runs signal`: store signal `name` for run `id` (its `wait` node takes it
 * within a second, now or when it comes to wait). Exit 0 when sent, 1 when
 * the run ended or is unknown; a bad name or `--data` is a usage error (2),
 * and nothing is written.
 */
export async function signalCommand(
  id: string,
  name: string,
  options: SignalCommandOptions,
  global: GlobalOptions,
): Promise<number> {
  const problem = signalNameProblem(name);
  if (problem !== undefined) throw new UsageError(`Cannot send a signal: ${problem}`);
  let data: unknown = null;
  if (options.data !== undefined) {
    try {
      data = parseJson(options.data);
    } catch (err) {
      throw new UsageError(
        `Cannot send signal ${name}: --data is not valid JSON: ${
          jsonProblem(options.data, err as SyntaxError)
        }; pass a JSON value in single quotes, like --data '{"approved":true}' or --data '"yes"'`,
      );
    }
    try {
      data = signalData(data);
    } catch (err) {
      throw new UsageError(`Cannot send signal ${name}: ${(err as Error).message}`);
    }
  }
  await using runtime = await openForReading(global);
  const records = await unlessMissing(() => runtime.records());
  if (records === null || !isRunId(id)) {
    printError(`unknown run ${id}: nothing sent`);
    return 1;
  }
  const outcome = await runtime.signalRun(id, name, data);
  switch (outcome.kind) {
    case "unknown":
      printError(`unknown run ${id}: nothing sent`);
      return 1;
    case "ended":
      printError(
        `run ${id} already ended (${outcome.run.status}${
          outcome.run.error?.message.startsWith("abandoned:")
            ? `, ${outcome.run.error.message}; recorded now`
            : ""
        }): signal ${name} not sent (a signal is for a queued or running run)`,
      );
      return 1;
    case "stored": {
      const run = outcome.run;
      const waiting = outcome.waiting;
      const { expected, waitSignals } = outcome.expectation;
      const warning = unexpectedSignalWarning(name, run.flowId, outcome.expectation);
      if (options.json) {
        console.log(JSON.stringify({
          runId: id,
          flowId: run.flowId,
          signal: name,
          waiting,
          expected,
          waitSignals,
          ...(warning === undefined ? {} : { warning }),
        }));
      } else if (waiting.length > 0) {
        console.log(
          `Sent signal ${name} to run ${id} (${run.flowId}): node ${
            waiting[0]
          } waits for it and goes on within a second`,
        );
      } else if (expected) {
        console.log(
          `Sent signal ${name} to run ${id} (${run.flowId}): no node waits for it now; it is kept for the run, and its wait node takes it when it waits (it is dropped if the run ends first)`,
        );
      } else {
        // The warning below says why no wait node will take it.
        console.log(`Sent signal ${name} to run ${id} (${run.flowId}): kept for the run`);
      }
      if (warning !== undefined && !options.json) {
        printWarning({ code: "SIGNAL_NOT_WAITED_FOR", message: warning });
      }
      return 0;
    }
  }
}
