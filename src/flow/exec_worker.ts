/**
 * The built-in `exec` node's program, as it runs in its Worker: a sandboxed
 * node module (see `sandbox.ts`) whose Worker has only the node's declared
 * `permissions: { run }`, so Deno refuses to start any other program. The
 * runner checked the options (`node_schemas.ts`) and the command against the
 * list before they crossed; this module starts the program (no shell: each
 * argument is passed as it is), with a clean environment, feeds it `stdin`,
 * logs its stderr line by line as it comes, reads at most `maxBytes` of each
 * stream, and returns `{ code, stdout, stderr }`.
 *
 * Stopping it (the node's timeout, a cancel, the run's timeout) sends the
 * program `SIGTERM`, then `SIGKILL` after {@linkcode EXEC_KILL_GRACE} ms. Only
 * the program itself is signalled: Deno lets a Worker signal only the child
 * it started (a process group needs `--allow-run` for every program), so a
 * process it started in the background is not (see the `exec` node's docs).
 *
 * @module
 */
import {
  DEFAULT_PATH,
  EXEC_KILL_GRACE,
  type ExecRequest,
  KILL_PROGRAM,
  QUOTED_STDERR_LINES,
} from "./_exec.ts";
import { PASS_THROUGH } from "./_sandbox_messages.ts";

/** What the node returns. */
export interface ExecResult {
  /** The program's exit code (one of `okCodes`). */
  code: number;
  /** Its standard output: text, parsed JSON, or its lines (`with.stdout`). */
  stdout: unknown;
  /** Its standard error, as text (the start cut when longer than `maxBytes`). */
  stderr: string;
}

/** What the program's node may log and be told. */
export interface ExecContext {
  signal: AbortSignal;
  log(message: string, level?: "debug" | "info" | "warn" | "error"): void;
}

/**
 * How long (ms) the streams of a program that exited are read on: a process
 * it left running may hold them open.
 */
const STREAM_DRAIN_MS = 1000;

/** How much of stdout an error quotes (characters). */
const QUOTED_STDOUT = 300;

const size = (n: number) => `${n.toLocaleString("en-US")} bytes`;

/**
 * Read `stream` to its end, keeping at most `max` bytes: the first ones
 * (`keep: "head"`, then `over` is called once) or the last ones
 * (`keep: "tail"`). Returns what it kept and how many bytes came.
 */
function collect(
  stream: ReadableStream<Uint8Array>,
  max: number,
  keep: "head" | "tail",
  onChunk?: (chunk: Uint8Array) => void,
  over?: () => void,
): { done: Promise<{ bytes: Uint8Array; total: number }>; cancel(): void } {
  const reader = stream.getReader();
  return { done: read(), cancel: () => reader.cancel().catch(() => {}) };
  async function read() {
    const chunks: Uint8Array[] = [];
    let kept = 0;
    let total = 0;
    for (;;) {
      const { done, value: chunk } = await reader.read().catch(() => ({
        done: true,
        value: undefined,
      }));
      if (done || chunk === undefined) break;
      total += chunk.byteLength;
      onChunk?.(chunk);
      if (keep === "head") {
        if (kept >= max) continue;
        if (kept + chunk.byteLength > max) {
          chunks.push(chunk.subarray(0, max - kept));
          kept = max;
          over?.();
          continue;
        }
        chunks.push(chunk);
        kept += chunk.byteLength;
      } else {
        chunks.push(chunk);
        kept += chunk.byteLength;
        while (kept - chunks[0].byteLength >= max) kept -= chunks.shift()!.byteLength;
      }
    }
    let bytes = new Uint8Array(kept);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.byteLength;
    }
    if (bytes.byteLength > max) bytes = bytes.subarray(bytes.byteLength - max);
    return { bytes, total };
  }
}

/** Splits stderr into lines as it comes, logging each (at most `max` bytes of them). */
function stderrLogger(ctx: ExecContext, max: number, program: string) {
  const decoder = new TextDecoder();
  let pending = "";
  let logged = 0;
  let stopped = false;
  const line = (text: string) => {
    if (stopped) return;
    logged += text.length + 1;
    if (logged > max) {
      stopped = true;
      ctx.log(
        `${program}: stderr is over maxBytes (${size(max)}); its further lines are not logged`,
        "warn",
      );
      return;
    }
    ctx.log(text.replace(/\r$/, ""), "info");
  };
  return {
    chunk(bytes: Uint8Array) {
      pending += decoder.decode(bytes, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const l of lines) line(l);
    },
    end() {
      pending += decoder.decode();
      if (pending !== "") line(pending);
      pending = "";
    },
  };
}

/** The last `n` non-empty lines of `text`. */
function lastLines(text: string, n: number): string[] {
  return text.split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== "").slice(
    -n,
  );
}

/**
 * Why Deno refused a program the node declares, when it is because the name
 * is found elsewhere than where the runner's `--allow-run` found it: on the
 * `PATH` of `with.env`, or (a relative path) from `cwd` rather than from the
 * runner's working directory. `undefined` otherwise.
 */
function resolvedElsewhere(request: ExecRequest): string | undefined {
  const { command } = request;
  if (!command.includes("/") && request.fullEnv.PATH !== request.killPath) {
    return `with.env sets PATH (${request.fullEnv.PATH}), on which ${
      JSON.stringify(command)
    } is not the program the runner's --allow-run granted (found on the runner's PATH); write its full path as command and in permissions: run (and in --allow-run), or leave PATH out of with.env`;
  }
  if (command.includes("/") && !command.startsWith("/") && request.cwd !== undefined) {
    return `a relative command is found from the node's cwd (${request.cwd}), but the runner's --allow-run=${command} granted the one found from the runner's working directory; write its full path as command and in permissions: run (and in --allow-run), or run flowstate from ${request.cwd}`;
  }
  return undefined;
}

/** Run the program `request` describes; `ctx.signal` stops it. */
export async function execProgram(request: ExecRequest, ctx: ExecContext): Promise<ExecResult> {
  const { command, maxBytes } = request;
  const program = JSON.stringify(command);
  const fail = (message: string, name = "Error"): never => {
    throw Object.assign(new Error(message), { name });
  };
  ctx.signal.throwIfAborted();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args: request.args,
      ...(request.cwd === undefined ? {} : { cwd: request.cwd }),
      // Its own process group (and session) when the group can be signalled: else Deno kills
      // the program itself should its Worker be terminated (a detached one it leaves running).
      detached: request.killGroup,
      clearEnv: true,
      env: request.fullEnv,
      stdin: request.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    const e = err as Error;
    if (e.name === "NotFound") {
      // (Its cwd the runner found.)
      fail(
        `program ${program} was not found${
          command.includes("/") ? "" : ` on PATH (${request.fullEnv.PATH ?? ""})`
        }`,
        "NotFound",
      );
    }
    const why = e.name === "NotCapable" && /Requires run access/.test(e.message)
      ? resolvedElsewhere(request)
      : undefined;
    if (why !== undefined) fail(`program ${program} could not be started: ${why}`, e.name);
    // A refusal keeps Deno's name and words: the runner adds the permissions: line to add.
    fail(`program ${program} could not be started: ${e.message}`, e.name);
  }
  const started = child!;
  const token = request.killGroup ? request.groupToken : undefined;
  if (token !== undefined) ctx.log(`${token} ${started.pid}`, "debug");
  let stopping: string | undefined;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const signal = async (sig: "SIGTERM" | "SIGKILL") => {
    if (request.killGroup && await signalGroup(sig)) return;
    try {
      started.kill(sig);
    } catch {
      // it has exited already
    }
  };
  /** Signal the program's group; whether kill did. */
  const signalGroup = async (sig: "SIGTERM" | "SIGKILL"): Promise<boolean> => {
    // The program's pid is its group's id (detached). The group outlives the program while a
    // process it started runs.
    try {
      const { success } = await new Deno.Command(KILL_PROGRAM, {
        args: ["-s", sig.replace(/^SIG/, ""), "--", `-${started.pid}`],
        clearEnv: true,
        // The runner's PATH, on which Deno granted it (the program's own may have none).
        env: { PATH: request.killPath ?? DEFAULT_PATH },
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).output();
      return success;
    } catch {
      return false; // kill could not be run: the program itself is signalled
    }
  };
  const stop = (why: string) => {
    if (stopping !== undefined) return;
    stopping = why;
    void signal("SIGTERM");
    killTimer = setTimeout(() => void signal("SIGKILL"), EXEC_KILL_GRACE);
  };
  const onAbort = () => stop(String(ctx.signal.reason?.message ?? ctx.signal.reason ?? "aborted"));
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  let stdoutOver = false;
  try {
    const feed = (async () => {
      if (request.stdin === undefined) return;
      const writer = started.stdin.getWriter();
      try {
        await writer.write(new TextEncoder().encode(request.stdin));
        await writer.close();
      } catch {
        // The program exited, or closed its stdin, without reading it all: its exit says how it went.
      }
    })();
    const logger = stderrLogger(ctx, maxBytes, command);
    const outStream = collect(started.stdout, maxBytes, "head", undefined, () => {
      stdoutOver = true;
      stop("stdout over maxBytes");
    });
    const errStream = collect(started.stderr, maxBytes, "tail", (chunk) => logger.chunk(chunk));
    const status = await started.status;
    // Stopped: once it exited, what is left of its group (what it started, told to stop with
    // it) is killed at once.
    if (stopping !== undefined && request.killGroup) await signalGroup("SIGKILL");
    // A process the program left running (`cmd &`) may hold its streams open: what they hold
    // by then is taken, not the end of that process.
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      Promise.all([outStream.done, errStream.done, feed]).then(() => true),
      new Promise<false>((resolve) =>
        drainTimer = setTimeout(() => resolve(false), STREAM_DRAIN_MS)
      ),
    ]);
    clearTimeout(drainTimer);
    if (!drained) {
      outStream.cancel();
      errStream.cancel();
      ctx.log(
        stopping !== undefined && !request.killGroup
          ? `${command} was stopped, but a process it started still holds its stdout or stderr open and was not: only the program itself can be signalled unless the runner may run ${KILL_PROGRAM} (add it to the runner's --allow-run)`
          : `${command} exited, but a process it started still holds its stdout or stderr open; that process was not waited for`,
        "warn",
      );
    }
    const [out, err] = await Promise.all([outStream.done, errStream.done]);
    logger.end();
    let stderr = new TextDecoder().decode(err.bytes);
    if (err.total > err.bytes.byteLength) {
      // Decoded from a cut: the first, possibly broken, line goes.
      stderr = `[stderr cut: its first ${
        size(err.total - err.bytes.byteLength)
      } are not kept (maxBytes ${size(maxBytes)})]\n${stderr.slice(stderr.indexOf("\n") + 1)}`;
    }
    const quoted = lastLines(stderr, QUOTED_STDERR_LINES);
    const tail = quoted.length === 0
      ? "; it wrote nothing to stderr"
      : `; the last lines of its stderr:\n${quoted.join("\n")}`;
    if (stdoutOver) {
      fail(
        `${program} wrote more than maxBytes (${
          size(maxBytes)
        }) to stdout, so it was stopped; raise maxBytes, or have it write to a file`,
      );
    }
    if (stopping !== undefined) {
      fail(
        `${program} was stopped (${stopping})${
          status.signal === null ? `; it exited with code ${status.code}` : ` by ${status.signal}`
        }`,
        "AbortError",
      );
    }
    if (status.signal !== null) fail(`${program} was killed by ${status.signal}${tail}`);
    if (!request.okCodes.includes(status.code)) {
      fail(
        `${program} exited with code ${status.code} (okCodes: ${
          request.okCodes.join(", ")
        })${tail}`,
      );
    }
    const text = new TextDecoder().decode(out.bytes);
    let stdout: unknown = text;
    if (request.stdout === "lines") {
      stdout = text === "" ? [] : text.replace(/\r?\n$/, "").split(/\r?\n/);
    } else if (request.stdout === "json") {
      if (text.trim() === "") stdout = null;
      else {
        try {
          stdout = JSON.parse(text);
        } catch (e) {
          fail(
            `${program}'s stdout is not JSON (${
              (e as Error).message
            }); use stdout: text to get it as text: ${
              JSON.stringify(
                text.length > QUOTED_STDOUT ? `${text.slice(0, QUOTED_STDOUT)}…` : text,
              )
            }`,
          );
        }
      }
    }
    return { code: status.code, stdout, stderr };
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    clearTimeout(killTimer);
    if (token !== undefined) ctx.log(`${token} end`, "debug");
  }
}

/** The node module the `exec` node's Worker runs (see `sandbox_worker.ts`). */
export default {
  kind: "flowstate.node",
  name: "exec",
  // Every value is taken as it is: the runner checked the options.
  optionsSchema: PASS_THROUGH,
  run: (ctx: ExecContext, request: ExecRequest): Promise<ExecResult> => execProgram(request, ctx),
};
