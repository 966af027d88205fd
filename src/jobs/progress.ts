/**
 * Progress of long work: a redrawn bar with counts, rate and ETA on a
 * terminal, a plain line every few seconds otherwise, nothing when quiet.
 *
 * @module
 */
import { describeValue } from "../flow/_shapes.ts";

/**
 * Reports progress of one job.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createProgress, type Progress } from "@flowstate/core/jobs";
 *
 * const progress: Progress = createProgress({ mode: "quiet" });
 * progress.start("copying entries", 10);
 * progress.advance(4);
 * progress.advance();
 * assert.deepEqual(progress.state, { label: "copying entries", done: 5, total: 10 });
 * progress.finish("copied");
 * ```
 */
export interface Progress {
  /** Start a phase; `total` when known. */
  start(label: string, total?: number): void;
  /** Add `n` (default 1) to the done count. */
  advance(n?: number): void;
  /** Set the done count. */
  update(done: number): void;
  /** End the phase, with an optional closing message. */
  finish(message?: string): void;
  /** Done count and total of the current phase (for tests and records). */
  readonly state: { label: string; done: number; total: number | undefined };
}

/**
 * How progress is shown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createProgress, type ProgressMode } from "@flowstate/core/jobs";
 *
 * const lines: string[] = [];
 * const mode: ProgressMode = "plain"; // lines, not a redrawn bar
 * const progress = createProgress({ mode, write: (text) => lines.push(text) });
 * progress.start("scanning", 2);
 * progress.finish("done");
 * assert.ok(lines.some((line) => line.includes("scanning")));
 * ```
 */
export type ProgressMode = "tty" | "plain" | "quiet";

/**
 * Options for {@linkcode createProgress}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createProgress, type ProgressOptions } from "@flowstate/core/jobs";
 *
 * let now = 0;
 * const out: string[] = [];
 * const options: ProgressOptions = {
 *   mode: "plain",
 *   write: (text) => out.push(text),
 *   now: () => now,
 *   plainInterval: 1_000,
 * };
 * const progress = createProgress(options);
 * progress.start("indexing", 100);
 * now = 5_000;
 * progress.update(50);
 * progress.finish();
 * assert.ok(out.length >= 1);
 * ```
 */
export interface ProgressOptions {
  /** Default: `tty` when stderr is a terminal, else `plain`. */
  mode?: ProgressMode;
  /** Where text goes (default: stderr, best effort: a write that fails stops the output, not the job). */
  write?: (text: string) => void;
  /** Time source (default: `Date.now`). */
  now?: () => number;
  /** Minimum ms between two plain lines (default 2000). */
  plainInterval?: number;
}

const encoder = new TextEncoder();

function format(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function duration(ms: number): string {
  if (!Number.isFinite(ms)) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/**
 * The default writer: stderr, best effort. A terminal that hung up (EIO), a
 * closed pipe (EPIPE) or any other write error must not fail the job whose
 * progress it shows; after the first failure nothing more is written.
 */
function stderrWriter(): (text: string) => void {
  let broken = false;
  return (text) => {
    if (broken) return;
    try {
      const bytes = encoder.encode(text);
      for (let written = 0; written < bytes.length;) {
        const n = Deno.stderr.writeSync(bytes.subarray(written));
        if (!(n > 0)) break;
        written += n;
      }
    } catch {
      broken = true;
    }
  };
}

/**
 * `value` if it is a finite number (at least 0 with `nonNegative`); else a
 * TypeError (not a number) or RangeError naming the call: a job's `NaN` or
 * `"3"` would otherwise show as `NaN` or `03` for the rest of its phase.
 */
function count(value: unknown, call: string, nonNegative: boolean): number {
  if (typeof value !== "number") {
    throw new TypeError(`${call} must be a number, got ${describeValue(value)}`);
  }
  if (!Number.isFinite(value) || (nonNegative && value < 0)) {
    throw new RangeError(
      `${call} must be a finite number${nonNegative ? " >= 0" : ""}, got ${value}`,
    );
  }
  return value;
}

/**
 * Make a progress reporter: a redrawn bar on a terminal, a plain line at most
 * every `plainInterval` ms otherwise, nothing in `quiet` mode.
 *
 * @example
 * ```ts
 * import { createProgress } from "@flowstate/core/jobs";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * let now = 0;
 * const progress = createProgress({ mode: "plain", write: (t) => lines.push(t), now: () => now });
 * progress.start("copy", 10);
 * now = 2000;
 * progress.advance(4);
 * progress.finish("copied");
 * assert.equal(progress.state.done, 4);
 * assert.equal(lines[1], "copy 40% 4/10 ETA 3s 2/s\n");
 * ```
 */
export function createProgress(options: ProgressOptions = {}): Progress {
  const mode = options.mode ?? (Deno.stderr.isTerminal() ? "tty" : "plain");
  const write = options.write ?? stderrWriter();
  const now = options.now ?? (() => Date.now());
  const plainInterval = options.plainInterval ?? 2000;
  const state = { label: "", done: 0, total: undefined as number | undefined };
  let started = 0;
  let lastDraw = 0;
  let drawn = false;
  /** The last plain line written: finish() does not write the same line twice. */
  let lastLine = "";

  const line = (): string => {
    const elapsed = now() - started;
    const rate = elapsed > 0 ? (state.done * 1000) / elapsed : 0;
    const parts = [state.label];
    if (state.total !== undefined && state.total > 0) {
      const ratio = Math.min(1, state.done / state.total);
      if (mode === "tty") {
        const width = 24;
        const filled = Math.round(ratio * width);
        parts.push(`[${"#".repeat(filled)}${".".repeat(width - filled)}]`);
      }
      parts.push(`${Math.floor(ratio * 100)}%`, `${format(state.done)}/${format(state.total)}`);
      if (rate > 0 && state.done < state.total) {
        parts.push(`ETA ${duration(((state.total - state.done) / rate) * 1000)}`);
      }
    } else {
      parts.push(format(state.done));
    }
    parts.push(`${format(rate)}/s`);
    return parts.join(" ");
  };

  const draw = (force = false) => {
    if (mode === "quiet") return;
    const t = now();
    if (!force && t - lastDraw < (mode === "tty" ? 100 : plainInterval)) return;
    lastDraw = t;
    if (mode === "tty") write(`\r\x1b[2K${line()}`);
    else write(`${lastLine = line()}\n`);
    drawn = true;
  };

  return {
    state,
    start(label, total) {
      if (typeof label !== "string") {
        throw new TypeError(
          `progress.start(label, total): label must be a string, got ${describeValue(label)}`,
        );
      }
      state.label = label;
      state.total = total === undefined
        ? undefined
        : count(total, "progress.start(label, total): total", true);
      state.done = 0;
      started = now();
      lastDraw = 0;
      drawn = false;
      draw(true);
    },
    advance(n = 1) {
      state.done += count(n, "progress.advance(n): n", false);
      draw();
    },
    update(done) {
      state.done = count(done, "progress.update(done): done", true);
      draw();
    },
    finish(message) {
      if (mode === "quiet") return;
      if (mode === "tty") {
        write(`\r\x1b[2K${line()}\n`);
      } else if (drawn || message === undefined) {
        const last = line();
        if (!drawn || last !== lastLine) write(`${last}\n`);
      }
      if (message !== undefined) write(`${message}\n`);
    },
  };
}
